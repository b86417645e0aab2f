// The metrics page: a tree over `/metrics/find` (lazily expanded) and a glob search.
import { getJson, qs } from '../api.js';
import { h, put, note } from '../dom.js';
import { makeHash } from '../lib/route.js';

/** Results shown of one search (the server caps it too: max_find_results). */
const MAX_SHOWN = 500;

const find = (query) => getJson(`/metrics/find?${qs([['query', query], ['format', 'treejson']])}`);
const graphLink = (target, text) => h('a', { href: makeHash('graph', [['target', target]]), class: 'leaf' }, text);

export async function metricsPage(main, params) {
  const query = params.get('query') ?? '';
  const input = h('input', {
    type: 'search', id: 'metric-search', name: 'query', value: query, placeholder: 'carbide.*.points*',
    'aria-label': 'Glob over metric names', autocomplete: 'off', spellcheck: 'false',
  });
  const form = h('form', { class: 'row', role: 'search', onsubmit: (e) => {
    e.preventDefault();
    location.hash = makeHash('metrics', [['query', input.value.trim()]]);
  } }, input, h('button', { type: 'submit' }, 'Search'));
  const results = h('section', { id: 'search-results', 'aria-live': 'polite' });
  const tree = h('ul', { role: 'tree', class: 'tree', id: 'tree', 'aria-label': 'Metrics' });
  main.append(h('h1', {}, 'Metrics'), form, results, h('h2', {}, 'Browse'), tree);
  if (query !== '') search(query, results);
  await expandTree(tree, '*', (n) => graphLink(n.id, n.text));
  if (query === '') tree.querySelector('button,a')?.focus();
}

async function search(query, out) {
  put(out, note('info', `Searching ${query}…`));
  try {
    const nodes = await find(query);
    if (nodes.length === 0) {
      put(out, note('empty', `No metric matches ${query}.`));
      return;
    }
    const leaves = nodes.filter((n) => n.leaf);
    put(out,
      h('p', {}, `${nodes.length} match${nodes.length === 1 ? '' : 'es'}`,
        leaves.length > 0 ? [' · ', graphLink(query, `graph all ${leaves.length} series`)] : null),
      h('ul', { class: 'results' }, nodes.slice(0, MAX_SHOWN).map((n) => h('li', {},
        n.leaf ? graphLink(n.id, n.id)
          : h('a', { href: makeHash('metrics', [['query', `${n.id}.*`]]), class: 'branch' }, `${n.id}.*`)))),
      nodes.length > MAX_SHOWN ? note('info', `… and ${nodes.length - MAX_SHOWN} more: narrow the glob.`) : null);
  } catch (e) {
    put(out, note('error', e.message));
  }
}

/**
 * Fill `ul` with the children of `query` (a `prefix.*` glob): branches are buttons that open
 * (loading their children), a leaf is what `leaf(node)` makes (the metrics page: a link to
 * its graph; the target builder: a button picking it).
 */
export async function expandTree(ul, query, leaf) {
  put(ul, h('li', { class: 'muted' }, 'loading…'));
  let nodes;
  try {
    nodes = await find(query);
  } catch (e) {
    put(ul, h('li', {}, note('error', e.message)));
    return;
  }
  if (nodes.length === 0) {
    put(ul, h('li', { class: 'muted' }, query === '*' ? 'No metrics stored yet.' : 'empty'));
    return;
  }
  put(ul, nodes.slice(0, MAX_SHOWN).map((n) => node(n, leaf)));
}

function node(n, leaf) {
  if (n.leaf) {
    return h('li', { role: 'treeitem', 'data-id': n.id }, leaf(n));
  }
  const children = h('ul', { role: 'group', hidden: true });
  const li = h('li', { role: 'treeitem', 'aria-expanded': 'false', 'data-id': n.id });
  const toggle = h('button', { type: 'button', class: 'branch', 'aria-label': `${n.id} (expand)`, onclick: async () => {
    const open = li.getAttribute('aria-expanded') === 'true';
    li.setAttribute('aria-expanded', String(!open));
    toggle.setAttribute('aria-label', `${n.id} (${open ? 'expand' : 'collapse'})`);
    children.hidden = open;
    if (!open && !children.dataset.loaded) {
      children.dataset.loaded = '1';
      await expandTree(children, `${n.id}.*`, leaf);
    }
  } }, n.text);
  li.append(toggle, children);
  return li;
}
