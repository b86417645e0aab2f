// The alert pages over the alerter's JSON API (`/api/*`): every alert × series with its
// level, value, threshold, since and runbook, a small graph of each alert's target with its
// thresholds (when this server also answers `/render`), silences (list, add, expire), the
// history of level changes and the outbox.
import uPlot from 'uplot';
import { getJson, sendJson, qs } from '../api.js';
import { h, put, note } from '../dom.js';
import { makeHash } from '../lib/route.js';
import { toUplot, fmtValue, ago } from '../lib/series.js';
import { LEVEL_ORDER, groupAlerts } from '../lib/alerts.js';

const REFRESH_MS = 10_000;
const now = () => Date.now() / 1000;
const when = (t) => h('time', { datetime: new Date(t * 1000).toISOString(), title: new Date(t * 1000).toLocaleString() }, ago(t, now()));
const level = (l) => h('span', { class: `level ${l}` }, l);

/** `#/alerts`: the states, grouped by alert, worst first. */
export async function alertsPage(main, params, features) {
  const showOk = params.get('ok') === '1';
  const summary = h('p', { id: 'alert-summary', 'aria-live': 'polite' });
  const list = h('div', { id: 'alerts' });
  const toggle = h('a', { href: makeHash('alerts', [['ok', showOk ? '' : '1']]) }, showOk ? 'hide OK series' : 'show OK series');
  main.append(h('h1', {}, 'Alerts'), h('div', { class: 'row' }, summary, toggle), list);
  const charts = [];
  const load = async () => {
    let states;
    try {
      states = await getJson('/api/alerts');
    } catch (e) {
      put(list, note('error', e.message));
      return;
    }
    const counts = {};
    for (const s of states) counts[s.level] = (counts[s.level] ?? 0) + 1;
    put(summary, states.length === 0 ? 'No alert has been evaluated yet.'
      : LEVEL_ORDER.filter((l) => counts[l]).map((l) => [level(l), ` ${counts[l]}  `]));
    charts.splice(0).forEach((c) => c.destroy());
    const groups = groupAlerts(states, showOk);
    put(list, groups.length === 0 && states.length > 0 ? note('empty', 'Every series is OK.') : null,
      groups.map((g) => alertGroup(g, features, charts)));
  };
  await load();
  const timer = setInterval(load, REFRESH_MS);
  return () => {
    clearInterval(timer);
    charts.forEach((c) => c.destroy());
  };
}

function alertGroup(g, features, charts) {
  const first = g.series[0];
  const graph = h('div', { class: 'mini-chart', 'aria-label': `graph of ${first.target ?? g.alert}` });
  const box = h('section', { class: 'alert', 'data-alert': g.alert },
    h('h2', {}, level(g.worst), ' ', g.alert),
    first.target ? h('p', { class: 'muted' },
      h('code', {}, first.target), ` — warning ${first.op ?? '>'} ${fmtValue(first.warning)}, critical ${first.op ?? '>'} ${fmtValue(first.critical)} `,
      features.has('metrics') ? h('a', { href: makeHash('graph', [['target', first.target], ['from', '-6h']]) }, 'open in graph') : null) : null,
    h('table', { class: 'wide' },
      h('thead', {}, h('tr', {}, ['Series', 'Level', 'Value', 'Threshold', 'Since', 'Runbook', ''].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, g.series.map((s) => h('tr', { 'data-series': s.series },
        h('td', {}, s.series),
        h('td', {}, level(s.level), s.pending ? h('span', { class: 'muted' }, ` → ${s.pending}?`) : null,
          s.silenced_by ? h('span', { class: 'muted' }, ` (silenced #${s.silenced_by})`) : null),
        h('td', {}, fmtValue(s.value)),
        h('td', {}, s.threshold === null || s.threshold === undefined ? '—' : `${s.op ?? '>'} ${fmtValue(s.threshold)}`),
        h('td', {}, when(s.since)),
        h('td', {}, s.runbook ? h('a', { href: s.runbook, rel: 'noopener noreferrer', target: '_blank' }, 'runbook') : '—'),
        h('td', {}, h('a', {
          class: 'silence-link',
          href: makeHash('silences', [['alert', g.alert], ['series', s.series]]),
          'aria-label': `Silence ${g.alert} ${s.series}`,
        }, 'silence')))))),
    features.has('metrics') && first.target ? graph : null);
  if (features.has('metrics') && first.target) miniGraph(graph, first, charts);
  return box;
}

async function miniGraph(box, s, charts) {
  let list;
  try {
    list = await getJson(`/render?${qs([['target', s.target], ['from', '-1h'], ['format', 'json'], ['maxDataPoints', 300]])}`);
  } catch (e) {
    box.append(note('error', `graph: ${e.message}`));
    return;
  }
  const { labels, data } = toUplot(list ?? []);
  if (data[0].length === 0) {
    box.append(note('empty', 'no data in the last hour'));
    return;
  }
  // The thresholds as flat dashed lines across the range.
  const flat = (v) => data[0].map(() => v);
  const series = [{}, ...labels.map((label) => ({ label, stroke: '#1f77b4', width: 1 })),
    { label: 'warning', stroke: '#d29922', dash: [6, 4], width: 1 },
    { label: 'critical', stroke: '#cf222e', dash: [6, 4], width: 1 }];
  const width = Math.min(Math.max(box.clientWidth, 260), 900);
  const fg = getComputedStyle(document.documentElement).getPropertyValue('--fg').trim() || '#222';
  const axis = { stroke: fg, grid: { stroke: 'rgba(128,128,128,0.2)' }, ticks: { show: false } };
  charts.push(new uPlot({
    width, height: 140, series, legend: { show: false }, cursor: { drag: { x: false, y: false } },
    axes: [axis, { ...axis, size: 50, values: (u, vals) => vals.map(fmtValue) }],
  }, [...data, flat(s.warning), flat(s.critical)], box));
}

/** `#/silences`: active silences, expire buttons, and the add form (prefilled from the URL). */
export async function silencesPage(main, params) {
  const out = h('div', { id: 'silences', 'aria-live': 'polite' });
  const msg = h('div', { id: 'silence-message', 'aria-live': 'assertive' });
  const field = (name, label, value, extra = {}) => h('label', { class: 'field' }, h('span', {}, label),
    h('input', { name, id: `silence-${name}`, value, autocomplete: 'off', spellcheck: 'false', ...extra }));
  const form = h('form', { id: 'silence-form', class: 'grid-form', onsubmit: async (e) => {
    e.preventDefault();
    const f = new FormData(form);
    const body = Object.fromEntries(['alert', 'series', 'duration', 'comment', 'created_by'].map((k) => [k, String(f.get(k) ?? '').trim()]));
    try {
      const r = await sendJson('POST', '/api/silences', body);
      put(msg, note('info', `Silence #${r.id} added until ${new Date(r.expires_at * 1000).toLocaleString()}.`));
      await load();
    } catch (err) {
      put(msg, note('error', err.message));
    }
  } },
  field('alert', 'Alert (glob)', params.get('alert') ?? '*', { required: true }),
  field('series', 'Series (glob)', params.get('series') ?? '*', { required: true }),
  field('duration', 'Duration', params.get('duration') ?? '2h', { required: true, placeholder: '2h, 30m, 1d' }),
  field('comment', 'Comment', '', { placeholder: 'why' }),
  field('created_by', 'By', '', { placeholder: 'who' }),
  h('button', { type: 'submit', class: 'primary', id: 'silence-add' }, 'Add silence'));
  main.append(h('h1', {}, 'Silences'), h('h2', {}, 'Add'), form, msg, h('h2', {}, 'Active'), out);
  const load = async () => {
    let list;
    try {
      list = await getJson('/api/silences');
    } catch (e) {
      put(out, note('error', e.message));
      return;
    }
    put(out, list.length === 0 ? note('empty', 'No active silence.') : h('table', { class: 'wide' },
      h('thead', {}, h('tr', {}, ['#', 'Alert', 'Series', 'Until', 'Comment', 'By', ''].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, list.map((s) => h('tr', { 'data-silence': s.id },
        h('td', {}, String(s.id)), h('td', {}, s.alert_glob), h('td', {}, s.series_glob),
        h('td', {}, new Date(s.expires_at * 1000).toLocaleString()), h('td', {}, s.comment), h('td', {}, s.created_by),
        h('td', {}, h('button', { type: 'button', 'aria-label': `Expire silence ${s.id}`, onclick: async () => {
          try {
            await sendJson('DELETE', `/api/silences/${s.id}`);
            put(msg, note('info', `Silence #${s.id} expired.`));
          } catch (err) {
            put(msg, note('error', err.message));
          }
          await load();
        } }, 'expire')))))));
  };
  await load();
  if (params.get('alert')) form.querySelector('#silence-duration').focus();
  return null;
}

/** `#/history`: level changes, newest first, and the outbox of notifications. */
export async function historyPage(main) {
  const hist = h('div', { id: 'history' });
  const outbox = h('div', { id: 'outbox' });
  main.append(h('h1', {}, 'History'), hist, h('h2', {}, 'Outbox'), outbox);
  const load = async () => {
    try {
      const rows = await getJson('/api/history?limit=200');
      put(hist, rows.length === 0 ? note('empty', 'No level change yet.') : h('table', { class: 'wide' },
        h('thead', {}, h('tr', {}, ['When', 'Alert', 'Series', 'Change', 'Value'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, rows.map((r) => h('tr', {},
          h('td', {}, when(r.at)), h('td', {}, r.alert), h('td', {}, r.series),
          h('td', {}, level(r.previous), ' → ', level(r.level), r.silenced ? ' (silenced)' : ''),
          h('td', {}, fmtValue(r.value)))))));
    } catch (e) {
      put(hist, note('error', e.message));
    }
    try {
      const o = await getJson('/api/outbox?limit=100');
      put(outbox,
        h('p', { id: 'outbox-counts' }, `pending ${o.counts.pending} · retrying ${o.counts.retrying} · delivered ${o.counts.delivered} · failed ${o.counts.failed}`),
        o.notifications.length === 0 ? note('empty', 'No notification yet.') : h('table', { class: 'wide' },
          h('thead', {}, h('tr', {}, ['#', 'Created', 'Notifier', 'Alert', 'Series', 'Level', 'Status', 'Attempts', 'Last error'].map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', {}, o.notifications.map((n) => h('tr', {},
            h('td', {}, String(n.id)), h('td', {}, when(n.created_at / 1000)), h('td', {}, n.notifier),
            h('td', {}, n.alert ?? ''), h('td', {}, n.series ?? ''), h('td', {}, n.level ? level(n.level) : ''),
            h('td', {}, n.status), h('td', {}, String(n.attempts)), h('td', {}, n.last_error ?? ''))))));
    } catch (e) {
      put(outbox, note('error', e.message));
    }
  };
  await load();
  const timer = setInterval(load, REFRESH_MS);
  return () => clearInterval(timer);
}
