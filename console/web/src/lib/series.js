// graphite-web's `format=json` answer → uPlot's columns.

/**
 * `[{target, datapoints: [[value, ts], ...]}]` → `{labels, data: [xs, ys...]}`: one x column
 * (every timestamp of any series, ascending), each series' values at those times, `null`
 * where it has none or its value is null (uPlot draws nulls as gaps).
 */
export function toUplot(list) {
  const times = new Set();
  for (const s of list) for (const p of s.datapoints ?? []) times.add(p[1]);
  const xs = [...times].sort((a, b) => a - b);
  const at = new Map(xs.map((t, i) => [t, i]));
  const ys = list.map((s) => {
    const y = new Array(xs.length).fill(null);
    for (const [v, t] of s.datapoints ?? []) y[at.get(t)] = typeof v === 'number' && Number.isFinite(v) ? v : null;
    return y;
  });
  return { labels: list.map((s) => String(s.target)), data: [xs, ...ys] };
}

/** A compact number for tables and legends (1234567 → 1.23M). */
export function fmtValue(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '—';
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e15 || a < 1e-3)) return v.toExponential(2);
  for (const [n, s] of [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k']]) {
    if (a >= n) return `${+(v / n).toFixed(2)}${s}`;
  }
  return String(+v.toFixed(3));
}

/** "3m ago"-style age of a unix time `t` at `now` (seconds). */
export function ago(t, now) {
  let d = Math.max(0, Math.round(now - t));
  if (d < 60) return `${d}s ago`;
  d = Math.floor(d / 60);
  if (d < 60) return `${d}m ago`;
  const hrs = Math.floor(d / 60);
  if (hrs < 48) return `${hrs}h ${d % 60}m ago`;
  return `${Math.floor(hrs / 24)}d ${hrs % 24}h ago`;
}
