// The graph page: targets (with function completion from `/functions`), a time range
// (graphite's from/until syntax), auto-refresh, and a uPlot chart drawn from
// `/render?format=json`: hover shows names and values, drag zooms (to an absolute range in
// the URL), the legend toggles series, nulls are gaps. All state is in the URL.
import uPlot from 'uplot';
import { getJson, qs, ApiError } from '../api.js';
import { h, put, note } from '../dom.js';
import { makeHash } from '../lib/route.js';
import { graphState, graphPairs, renderPairs, isLive, zoomed, REFRESH } from '../lib/graphstate.js';
import { toUplot, fmtValue } from '../lib/series.js';
import { completionContext, matchFunctions, applyCompletion, errorAt } from '../lib/target.js';
import { builderPanel, functionInfo } from './builder.js';

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#bcbd22', '#7f7f7f'];
const QUICK = [['-15min', '15m'], ['-1h', '1h'], ['-6h', '6h'], ['-1d', '1d'], ['-7d', '7d']];

let functionNames = null;
async function functions() {
  if (!functionNames) {
    functionNames = functionInfo().then((f) => Object.keys(f).sort());
  }
  return functionNames;
}

export async function graphPage(main, params) {
  const state = graphState(params);
  const go = (s) => { location.hash = makeHash('graph', graphPairs(s)); };

  const rows = h('div', { class: 'targets' });
  const addRow = (value) => rows.append(targetRow(value, rows));
  (state.targets.length ? state.targets : ['']).forEach(addRow);

  const from = h('input', { id: 'from', name: 'from', value: state.from, size: 14, spellcheck: 'false', 'aria-label': 'From (e.g. -1h, 20261207, 12:00_yesterday)' });
  const until = h('input', { id: 'until', name: 'until', value: state.until, size: 14, spellcheck: 'false', 'aria-label': 'Until (e.g. now, -5min)' });
  const refresh = h('select', { id: 'refresh', name: 'refresh', 'aria-label': 'Auto-refresh' },
    Object.keys(REFRESH).map((k) => h('option', { value: k, selected: k === state.refresh }, k === 'off' ? 'no refresh' : `every ${k}`)));
  const current = () => ({
    targets: [...rows.querySelectorAll('input.target')].map((i) => i.value.trim()).filter(Boolean),
    from: from.value.trim(), until: until.value.trim(), refresh: refresh.value,
  });
  refresh.addEventListener('change', () => go(current()));

  const form = h('form', { id: 'graph-form', onsubmit: (e) => { e.preventDefault(); go(current()); } },
    h('label', { class: 'label' }, 'Targets'),
    rows,
    h('div', { class: 'row' },
      h('button', { type: 'button', id: 'add-target', onclick: () => { addRow(''); rows.lastChild.querySelector('input').focus(); } }, '+ target'),
      h('button', { type: 'submit', id: 'draw', class: 'primary' }, 'Graph')),
    h('div', { class: 'row range' },
      h('label', {}, 'from ', from), h('label', {}, 'until ', until), refresh,
      h('span', { class: 'quick', role: 'group', 'aria-label': 'Quick ranges' },
        QUICK.map(([f, label]) => h('button', { type: 'button', onclick: () => go({ ...current(), from: f, until: 'now' }) }, label)))));

  // The builder writes into the first empty target field, else a new one.
  const builder = builderPanel((t) => {
    let input = [...rows.querySelectorAll('input.target')].find((i) => i.value.trim() === '');
    if (!input) {
      addRow('');
      input = rows.lastChild.querySelector('input.target');
    }
    input.value = t;
    input.focus();
  });
  const status = h('div', { id: 'graph-status', 'aria-live': 'polite' });
  const chartBox = h('div', { id: 'chart', class: 'chart' });
  main.append(h('h1', {}, 'Graph'), form, builder, status, chartBox);

  if (state.targets.length === 0) {
    put(status, note('empty', 'Type a target (e.g. carbide.store.points_received or sumSeries(carbide.*.*)) or pick a metric on the Metrics page.'));
    rows.querySelector('input').focus();
    return null;
  }

  let chart = null;
  let inflight = null;
  const draw = async () => {
    inflight?.abort();
    const ctl = new AbortController();
    inflight = ctl;
    const width = Math.max(chartBox.clientWidth, 280);
    let list;
    try {
      list = await getJson(`/render?${qs(renderPairs(state, width))}`, { signal: ctl.signal });
    } catch (e) {
      if (ctl.signal.aborted && !(e instanceof ApiError && e.status)) return;
      showError(e, state.targets, rows, status);
      chart?.destroy();
      chart = null;
      return;
    }
    const { labels, data } = toUplot(list ?? []);
    put(status, labels.length === 0 ? note('empty', 'No series matched.') : null);
    if (chart && chart.series.length === labels.length + 1 && labels.every((l, i) => chart.series[i + 1].label === l)) {
      chart.setData(data);
      return;
    }
    chart?.destroy();
    chart = labels.length === 0 ? null : makeChart(chartBox, labels, data, (min, max) => go(zoomed(state, min, max)));
  };
  await draw();

  const onResize = () => chart?.setSize(size(chartBox));
  window.addEventListener('resize', onResize);
  const secs = REFRESH[state.refresh];
  const timer = secs > 0 && isLive(state) ? setInterval(draw, secs * 1000) : null;
  return () => {
    if (timer) clearInterval(timer);
    inflight?.abort();
    window.removeEventListener('resize', onResize);
    chart?.destroy();
  };
}

function showError(e, targets, rows, status) {
  const at = errorAt(e.message, targets);
  const inputs = [...rows.querySelectorAll('input.target')].filter((i) => i.value.trim() !== '');
  put(status, h('div', { class: 'note error', role: 'alert' },
    h('pre', { class: 'parse-error', id: 'parse-error' }, e.message)));
  if (at && inputs[at.index]) {
    const input = inputs[at.index];
    input.setAttribute('aria-invalid', 'true');
    input.setAttribute('aria-describedby', 'parse-error');
    input.dataset.errorColumn = String(at.column);
    input.focus();
    // The caret at the column the parser reports (1-based, in characters).
    const col = Math.min(at.column - 1, input.value.length);
    input.setSelectionRange(col, Math.min(col + 1, input.value.length));
  }
}

function size(box) {
  const w = Math.max(box.clientWidth, 280);
  return { width: w, height: Math.round(Math.min(420, Math.max(220, w * 0.45))) };
}

function css(name, fallback) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

function makeChart(box, labels, data, onZoom) {
  const fg = css('--fg', '#222');
  const grid = css('--grid', 'rgba(128,128,128,0.2)');
  const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
  const opts = {
    ...size(box),
    series: [
      { label: 'time', value: (u, v) => (v === null ? '—' : new Date(v * 1000).toLocaleString()) },
      ...labels.map((label, i) => ({
        label, stroke: PALETTE[i % PALETTE.length], width: 1.5, spanGaps: false,
        value: (u, v) => fmtValue(v),
      })),
    ],
    axes: [axis, { ...axis, size: 60, values: (u, vals) => vals.map(fmtValue) }],
    scales: { x: { time: true } },
    cursor: { drag: { x: true, y: false, setScale: false } },
    legend: { live: true },
    hooks: {
      setSelect: [(u) => {
        if (u.select.width < 5) return;
        const min = u.posToVal(u.select.left, 'x');
        const max = u.posToVal(u.select.left + u.select.width, 'x');
        u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
        onZoom(min, max);
      }],
    },
  };
  return new uPlot(opts, data, box);
}

/** One target input with its completion list and a remove button. */
function targetRow(value, rows) {
  const listId = `fn-${Math.random().toString(36).slice(2, 8)}`;
  const list = h('ul', { role: 'listbox', id: listId, class: 'completions', hidden: true });
  const input = h('input', {
    class: 'target', name: 'target', value, spellcheck: 'false', autocomplete: 'off',
    role: 'combobox', 'aria-autocomplete': 'list', 'aria-expanded': 'false', 'aria-controls': listId,
    'aria-label': 'Target', placeholder: 'sumSeries(carbide.*.points_received)',
  });
  let items = [];
  let active = -1;
  let ctx = null;
  const close = () => {
    list.hidden = true;
    input.setAttribute('aria-expanded', 'false');
    input.removeAttribute('aria-activedescendant');
    items = [];
    active = -1;
  };
  const pick = (name) => {
    const r = applyCompletion(input.value, ctx.start, input.selectionStart, name);
    input.value = r.value;
    input.setSelectionRange(r.caret, r.caret);
    close();
    input.focus();
  };
  const highlight = (i) => {
    active = i;
    [...list.children].forEach((li, j) => li.setAttribute('aria-selected', String(j === i)));
    if (i >= 0) input.setAttribute('aria-activedescendant', `${listId}-${i}`);
  };
  input.addEventListener('input', async () => {
    input.removeAttribute('aria-invalid');
    ctx = completionContext(input.value, input.selectionStart);
    if (!ctx) return close();
    const names = matchFunctions(await functions(), ctx.prefix);
    if (names.length === 0 || (names.length === 1 && names[0] === ctx.prefix)) return close();
    items = names;
    put(list, names.map((n, i) => h('li', {
      role: 'option', id: `${listId}-${i}`, 'aria-selected': 'false',
      onmousedown: (e) => { e.preventDefault(); pick(n); },
    }, n)));
    list.hidden = false;
    input.setAttribute('aria-expanded', 'true');
    highlight(-1);
  });
  input.addEventListener('keydown', (e) => {
    if (list.hidden || items.length === 0) return;
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      const d = e.key === 'ArrowDown' ? 1 : -1;
      highlight((active + d + items.length) % items.length);
    } else if ((e.key === 'Enter' || e.key === 'Tab') && active >= 0) {
      e.preventDefault();
      pick(items[active]);
    } else if (e.key === 'Tab' && items.length === 1) {
      e.preventDefault();
      pick(items[0]);
    } else if (e.key === 'Escape') {
      e.preventDefault();
      close();
    }
  });
  input.addEventListener('blur', () => setTimeout(close, 150));
  const remove = h('button', { type: 'button', class: 'remove', 'aria-label': 'Remove this target', onclick: () => {
    if (rows.children.length > 1) row.remove();
    else input.value = '';
  } }, '×');
  const row = h('div', { class: 'target-row' }, h('div', { class: 'combo' }, input, list), remove);
  return row;
}
