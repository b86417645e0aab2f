// The console's entry: which pages this server answers (its <meta name="carbide-features">),
// the navigation, and the hash router (`#/page?state`).
import { h, put } from './dom.js';
import { parseHash } from './lib/route.js';
import { metricsPage } from './pages/metrics.js';
import { graphPage } from './pages/graph.js';
import { statusPage } from './pages/status.js';
import { alertsPage, silencesPage, historyPage } from './pages/alerts.js';

const features = new Set(
  (document.querySelector('meta[name="carbide-features"]')?.content ?? '').split(/\s+/).filter(Boolean),
);

const PAGES = [
  { id: 'metrics', title: 'Metrics', needs: 'metrics', show: metricsPage },
  { id: 'graph', title: 'Graph', needs: 'metrics', show: graphPage },
  { id: 'status', title: 'Status', needs: 'metrics', show: statusPage },
  { id: 'alerts', title: 'Alerts', needs: 'alerts', show: alertsPage },
  { id: 'silences', title: 'Silences', needs: 'alerts', show: silencesPage },
  { id: 'history', title: 'History', needs: 'alerts', show: historyPage },
];

const available = PAGES.filter((p) => features.has(p.needs));
const main = document.getElementById('main');
const nav = document.getElementById('nav');
let stop = null;

function showNav(current) {
  put(nav, h('ul', {}, available.map((p) => h('li', {},
    h('a', { href: `#/${p.id}`, 'aria-current': p.id === current ? 'page' : undefined }, p.title)))));
}

async function route() {
  const { page, params } = parseHash(location.hash);
  const p = available.find((x) => x.id === page) ?? available[0];
  if (stop) {
    stop();
    stop = null;
  }
  showNav(p?.id);
  if (!p) {
    put(main, h('p', { class: 'note error' }, 'This server answers no console page.'));
    return;
  }
  document.title = `${p.title} · carbide`;
  main.replaceChildren();
  main.dataset.page = p.id;
  try {
    stop = (await p.show(main, params, features)) ?? null;
  } catch (e) {
    put(main, h('p', { class: 'note error', role: 'alert' }, String(e?.message ?? e)));
  }
}

window.addEventListener('hashchange', route);
route();
