// The status page (`#/status`): the pipeline's own metrics — the store's, every agent's and
// the alerter's `carbide.*` self-metrics — each with its latest value, its age and its last
// hour as a small line; each opens on the graph page. Refreshed every 10 s. `?agents=GLOB`
// names the agents' `<path_prefix>.<host>` (default `servers.*`).
import uPlot from 'uplot';
import { getJson, qs } from '../api.js';
import { h, put, note } from '../dom.js';
import { makeHash } from '../lib/route.js';
import { toUplot, ago } from '../lib/series.js';
import { statusSections, latest, fmtKind, sanitizeGlob, DEFAULT_AGENTS } from '../lib/status.js';

const REFRESH_MS = 10_000;

export async function statusPage(main, params) {
  const agents = sanitizeGlob(params.get('agents')) || DEFAULT_AGENTS;
  const sections = statusSections(agents);
  const agentsInput = h('input', { id: 'status-agents', name: 'agents', value: agents, size: 16, spellcheck: 'false', 'aria-label': 'Agents (path prefix and host glob)' });
  const updated = h('span', { class: 'muted', id: 'status-updated', 'aria-live': 'polite' });
  const form = h('form', { class: 'row', onsubmit: (e) => {
    e.preventDefault();
    location.hash = makeHash('status', [['agents', agentsInput.value.trim() === DEFAULT_AGENTS ? '' : agentsInput.value.trim()]]);
  } }, h('label', {}, 'agents ', agentsInput), h('button', { type: 'submit' }, 'Show'), updated);
  main.append(h('h1', {}, 'Status'), form);
  const bodies = new Map();
  for (const s of sections) {
    const tbody = h('tbody', {});
    bodies.set(s.id, tbody);
    main.append(h('section', { class: 'status', id: `status-${s.id}`, 'data-section': s.id },
      h('h2', {}, s.title), h('p', { class: 'muted' }, s.help),
      h('table', { class: 'wide' },
        h('thead', {}, h('tr', {}, ['Metric', 'Series', 'Latest', 'Last hour', ''].map((t) => h('th', { scope: 'col' }, t)))),
        tbody)));
  }
  let charts = [];
  const load = async () => {
    const rows = sections.flatMap((s) => s.rows.map((r) => ({ ...r, section: s.id })));
    const answers = await Promise.all(rows.map((r) => getJson(`/render?${qs([['target', r.target], ['from', '-1h'], ['format', 'json'], ['maxDataPoints', 120]])}`)
      .then((list) => ({ list: list ?? [] }), (e) => ({ error: e.message }))));
    const fresh = [];
    for (const s of sections) {
      const trs = [];
      rows.forEach((r, i) => {
        if (r.section === s.id) trs.push(...statusRows(r, answers[i], fresh));
      });
      put(bodies.get(s.id), trs);
    }
    charts.forEach((c) => c.destroy());
    charts = fresh.map(([box, data]) => sparkline(box, data));
    put(updated, `updated ${new Date().toLocaleTimeString()}`);
  };
  await load();
  const timer = setInterval(load, REFRESH_MS);
  return () => {
    clearInterval(timer);
    charts.forEach((c) => c.destroy());
  };
}

function statusRows(row, answer, fresh) {
  const graph = h('a', { href: makeHash('graph', [['target', row.target], ['from', '-6h']]), 'aria-label': `graph ${row.label}` }, 'graph');
  if (answer.error) {
    return [h('tr', { 'data-row': row.id }, h('td', {}, row.label), h('td', { colspan: 3 }, note('error', answer.error)), h('td', {}, graph))];
  }
  if (answer.list.length === 0) {
    return [h('tr', { 'data-row': row.id }, h('td', {}, row.label), h('td', { class: 'muted', colspan: 3 }, 'no data in the last hour'), h('td', {}, graph))];
  }
  const now = Date.now() / 1000;
  return answer.list.map((s) => {
    const last = latest(s.datapoints);
    const box = h('div', { class: 'sparkline', 'aria-hidden': 'true' });
    const { data } = toUplot([s]);
    if (last) fresh.push([box, data]);
    return h('tr', { 'data-row': row.id, 'data-series': String(s.target) },
      h('td', {}, row.label),
      h('td', {}, h('code', {}, String(s.target))),
      h('td', { class: 'latest' }, last ? [h('strong', {}, fmtKind(last.value, row.kind)), h('span', { class: 'muted' }, ` ${ago(last.at, now)}`)] : h('span', { class: 'muted' }, 'no value in the last hour')),
      h('td', {}, box),
      h('td', {}, graph));
  });
}

function sparkline(box, data) {
  const stroke = getComputedStyle(document.documentElement).getPropertyValue('--accent').trim() || '#1f6feb';
  // A few values (a process that just started) are dots: no two of them may be adjacent.
  const values = data[1].filter((v) => v !== null).length;
  return new uPlot({
    width: 160, height: 32, pxAlign: 0,
    series: [{}, { stroke, width: 1, spanGaps: false, points: { show: values < 30, size: 4, fill: stroke } }],
    legend: { show: false }, cursor: { show: false }, select: { show: false },
    axes: [{ show: false }, { show: false }],
    scales: { x: { time: false } },
  }, data, box);
}
