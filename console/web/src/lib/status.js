// The status page's rows: the pipeline's own `carbide.*` self-metrics (docs/store.md,
// docs/configuration.md "Self-metrics", docs/alerts.md "Self-metrics"), each a render target,
// and the latest value of a series.

/** The agents' path prefix glob: `<path_prefix>.<host>` (collector.yml's `path_prefix`). */
export const DEFAULT_AGENTS = 'servers.*';

/**
 * The sections of the status page. `agents` is the glob of the agents' `<prefix>.<host>`
 * nodes; their series are named by the host node. `kind`: 'rate' (per second), 'count',
 * 'bytes', 'seconds', 'ms', 'gauge'.
 */
export function statusSections(agents = DEFAULT_AGENTS) {
  const a = sanitizeGlob(agents) || DEFAULT_AGENTS;
  const host = a.split('.').length - 1;
  const agent = (m) => `aliasByNode(${a}.carbide.collector.sender.${m},${host})`;
  const store = (m) => `carbide.store.${m}`;
  const alerter = (m) => `carbide.alerter.${m}`;
  return [
    {
      id: 'store', title: 'Store', help: 'carbide.store.* — written by carbide serve / up every 10 s',
      rows: [
        { id: 'points-received', label: 'points received /s', target: `alias(perSecond(${store('points_received')}),'points received')`, kind: 'rate' },
        { id: 'bad-lines', label: 'bad lines (since start)', target: `alias(${store('bad_lines.total')},'bad lines')`, kind: 'count' },
        { id: 'points-dropped', label: 'points dropped (since start)', target: `alias(sumSeries(${store('points_dropped_*')}),'points dropped')`, kind: 'count' },
        { id: 'cache-points', label: 'points in the write cache', target: `alias(${store('cache_points')},'cache points')`, kind: 'gauge' },
        { id: 'series', label: 'series stored', target: `alias(${store('series')},'series')`, kind: 'gauge' },
        { id: 'flush-seconds', label: 'last flush took', target: `alias(${store('flush_seconds')},'flush seconds')`, kind: 'seconds' },
        { id: 'flush-errors', label: 'flush errors (since start)', target: `alias(${store('flush_errors')},'flush errors')`, kind: 'count' },
      ],
    },
    {
      id: 'agents', title: 'Agents', help: `${a}.carbide.collector.sender.* — per agent, every collection interval`,
      rows: [
        { id: 'spool-bytes', label: 'spool size', target: agent('spool_bytes'), kind: 'bytes' },
        { id: 'spool-lines', label: 'lines in the spool', target: agent('spool_lines'), kind: 'gauge' },
        { id: 'queued-lines', label: 'lines queued in memory', target: agent('queued_lines'), kind: 'gauge' },
        { id: 'lines-sent', label: 'lines sent (last interval)', target: agent('lines_sent'), kind: 'count' },
        { id: 'lines-dropped', label: 'lines dropped (last interval)', target: agent('lines_dropped'), kind: 'count' },
      ],
    },
    {
      id: 'alerter', title: 'Alerter', help: 'carbide.alerter.* — after every cycle (metrics_carbon; carbide up sends them)',
      rows: [
        { id: 'notifications-pending', label: 'notifications pending', target: `alias(${alerter('notifications.queued')},'pending')`, kind: 'gauge' },
        { id: 'notifications-failed', label: 'notifications failed', target: `alias(${alerter('notifications.failed')},'failed')`, kind: 'gauge' },
        { id: 'alerts-critical', label: 'series CRITICAL', target: `alias(${alerter('alerts.critical')},'critical')`, kind: 'gauge' },
        { id: 'alerts-warning', label: 'series WARNING', target: `alias(${alerter('alerts.warning')},'warning')`, kind: 'gauge' },
        { id: 'fetch-errors', label: 'fetch errors (last cycle)', target: `alias(${alerter('evaluation.fetch_errors')},'fetch errors')`, kind: 'count' },
        { id: 'evaluation-ms', label: 'evaluation took', target: `alias(${alerter('evaluation.duration_ms')},'evaluation ms')`, kind: 'ms' },
      ],
    },
  ];
}

/** A glob of path nodes only (letters, digits, `_-*?[]{},.`): nothing that makes a target. */
export function sanitizeGlob(s) {
  const t = String(s ?? '').trim();
  return /^[A-Za-z0-9_\-*?[\]{},.]+$/.test(t) && !t.startsWith('.') && !t.endsWith('.') ? t : '';
}

/** The newest non-null point of `datapoints` (`[[value, ts], …]`): `{value, at}` or null. */
export function latest(datapoints) {
  for (let i = (datapoints?.length ?? 0) - 1; i >= 0; i--) {
    const [v, t] = datapoints[i];
    if (typeof v === 'number' && Number.isFinite(v)) return { value: v, at: t };
  }
  return null;
}

/** A value of `kind` for a person: 1536 bytes → "1.5 KiB", 0.25 seconds → "250 ms". */
export function fmtKind(v, kind) {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—';
  switch (kind) {
    case 'bytes': {
      const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
      let x = v;
      let i = 0;
      while (Math.abs(x) >= 1024 && i < units.length - 1) {
        x /= 1024;
        i++;
      }
      return `${i === 0 ? x : +x.toFixed(1)} ${units[i]}`;
    }
    case 'seconds':
      return v < 1 ? `${+(v * 1000).toFixed(1)} ms` : `${+v.toFixed(2)} s`;
    case 'ms':
      return v < 1000 ? `${+v.toFixed(1)} ms` : `${+(v / 1000).toFixed(2)} s`;
    case 'rate':
      return `${+v.toFixed(v < 10 ? 2 : 0)}/s`;
    default:
      return String(Number.isInteger(v) ? v : +v.toFixed(2));
  }
}
