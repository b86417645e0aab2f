// The graph page's target builder ("Build a target"): pick a metric from the tree over
// `/metrics/find`, wrap it in a function of `/functions` with its parameters (one field each,
// typed as the function declares them), wrap again as often as needed, and write the result
// into a target field. Everything it makes is text the target field could have been typed.
import { getJson } from '../api.js';
import { h, put, note } from '../dom.js';
import { expandTree } from './metrics.js';
import { wrappable, wrap, hintOf } from '../lib/builder.js';

let described = null;
/** `/functions` (every function's description), fetched once per page load. */
export function functionInfo() {
  if (!described) described = getJson('/functions').then((f) => f ?? {}).catch(() => ({}));
  return described;
}

/** The builder; `use(target)` writes a built target into the graph form. */
export function builderPanel(use) {
  const expr = h('input', {
    id: 'builder-expr', class: 'mono', name: 'builder-expr', spellcheck: 'false', autocomplete: 'off',
    placeholder: 'pick a metric below, or type one', 'aria-label': 'Target being built',
  });
  const tree = h('ul', { role: 'tree', class: 'tree', id: 'builder-tree', 'aria-label': 'Pick a metric' });
  const fn = h('select', { id: 'builder-fn', name: 'builder-fn', 'aria-label': 'Function' });
  const params = h('div', { id: 'builder-params', class: 'grid-form' });
  const msg = h('div', { id: 'builder-message', 'aria-live': 'polite' });
  let fns = [];
  let fields = [];

  const showParams = () => {
    const f = fns.find((x) => x.name === fn.value);
    fields = [];
    put(msg);
    if (!f) {
      put(params);
      return;
    }
    put(params, f.params.length === 0 ? h('p', { class: 'muted' }, `${f.name} takes no other argument.`) : null,
      f.params.map((p) => {
        const id = `builder-param-${p.name}`;
        const label = `${p.name}${p.required ? ' *' : ''}${p.multiple ? ' (…)' : ''}`;
        let control;
        if (p.options?.length || p.type === 'boolean') {
          const opts = p.type === 'boolean' ? ['true', 'false'] : p.options.map(String);
          control = h('select', { id, name: p.name },
            p.required ? null : h('option', { value: '' }, p.default !== undefined && p.default !== null ? `(default ${p.default})` : '(none)'),
            opts.map((o) => h('option', { value: o }, o)));
        } else {
          control = h('input', { id, name: p.name, placeholder: hintOf(p), autocomplete: 'off', spellcheck: 'false' });
        }
        fields.push(control);
        return h('label', { class: 'field' }, h('span', {}, label, ' ', h('small', { class: 'muted' }, p.type)), control);
      }));
  };
  fn.addEventListener('change', showParams);

  const doWrap = () => {
    const f = fns.find((x) => x.name === fn.value);
    if (!f) {
      put(msg, note('error', 'choose a function to wrap the target in'));
      fn.focus();
      return;
    }
    try {
      expr.value = wrap(expr.value, f, fields.map((c) => c.value));
      put(msg, note('info', `wrapped in ${f.name}`));
      expr.focus();
    } catch (e) {
      put(msg, note('error', e.message));
    }
  };
  const form = h('form', { id: 'builder-form', onsubmit: (e) => { e.preventDefault(); doWrap(); } },
    h('label', { class: 'label', for: 'builder-expr' }, 'Target'), expr,
    h('div', { class: 'row' },
      h('label', {}, 'function ', fn),
      h('button', { type: 'submit', id: 'builder-wrap' }, 'Wrap'),
      h('button', { type: 'button', id: 'builder-use', class: 'primary', onclick: () => {
        const t = expr.value.trim();
        if (t === '') {
          put(msg, note('error', 'nothing built yet: pick a metric'));
          return;
        }
        use(t);
        put(msg, note('info', 'written into the target field'));
      } }, 'Use as target')),
    params, msg);

  let loaded = false;
  const details = h('details', { id: 'builder', class: 'builder' },
    h('summary', {}, 'Build a target'),
    h('div', { class: 'builder-body' },
      h('div', { class: 'builder-tree' }, h('p', { class: 'muted' }, 'Pick a metric:'), tree),
      form));
  details.addEventListener('toggle', async () => {
    if (!details.open || loaded) return;
    loaded = true;
    const [info] = await Promise.all([
      functionInfo(),
      expandTree(tree, '*', (n) => h('button', { type: 'button', class: 'leaf', 'aria-label': `pick ${n.id}`, onclick: () => {
        expr.value = n.id;
        put(msg, note('info', `picked ${n.id}`));
        fn.focus();
      } }, n.text)),
    ]);
    fns = wrappable(info);
    const groups = [...new Set(fns.map((f) => f.group))];
    put(fn, h('option', { value: '' }, 'choose…'),
      groups.map((g) => h('optgroup', { label: g }, fns.filter((f) => f.group === g).map((f) => h('option', { value: f.name }, f.name)))));
  });
  return details;
}
