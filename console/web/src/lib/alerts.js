// Alert states as the pages show them.

/** Worst first. */
export const LEVEL_ORDER = ['CRITICAL', 'ERROR', 'WARNING', 'NO_DATA', 'OK'];
const rank = (l) => {
  const i = LEVEL_ORDER.indexOf(l);
  return i < 0 ? LEVEL_ORDER.length : i;
};

/**
 * `/api/alerts` rows → `[{alert, worst, series: [...]}]`, groups and series worst first (then
 * by name); OK series left out unless `showOk` (a group of only OK series too).
 */
export function groupAlerts(states, showOk) {
  const groups = new Map();
  for (const s of states) {
    if (!showOk && s.level === 'OK') continue;
    if (!groups.has(s.alert)) groups.set(s.alert, []);
    groups.get(s.alert).push(s);
  }
  return [...groups].map(([alert, series]) => {
    series.sort((a, b) => rank(a.level) - rank(b.level) || a.series.localeCompare(b.series));
    return { alert, worst: series[0].level, series };
  }).sort((a, b) => rank(a.worst) - rank(b.worst) || a.alert.localeCompare(b.alert));
}
