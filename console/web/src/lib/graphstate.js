// The graph page's state (targets, time range, refresh) to and from the URL.

export const DEFAULT_FROM = '-1h';
export const DEFAULT_UNTIL = 'now';
/** Auto-refresh choices: label → seconds. */
export const REFRESH = { off: 0, '10s': 10, '30s': 30, '1m': 60, '5m': 300 };

export function graphState(params) {
  const refresh = params.get('refresh') ?? 'off';
  return {
    targets: params.getAll('target').filter((t) => t.trim() !== ''),
    from: params.get('from')?.trim() || DEFAULT_FROM,
    until: params.get('until')?.trim() || DEFAULT_UNTIL,
    refresh: refresh in REFRESH ? refresh : 'off',
  };
}

export function graphPairs(state) {
  return [
    ...state.targets.map((t) => ['target', t]),
    ['from', state.from === DEFAULT_FROM ? '' : state.from],
    ['until', state.until === DEFAULT_UNTIL ? '' : state.until],
    ['refresh', state.refresh === 'off' ? '' : state.refresh],
  ];
}

/** A range ending now moves with the clock (auto-refresh redraws it); an absolute one not. */
export function isLive(state) {
  return state.until === 'now' && !/^\d+$/.test(state.from);
}

/** The state zoomed to [min, max] (unix seconds): an absolute range, refresh off. */
export function zoomed(state, min, max) {
  const from = Math.floor(Math.min(min, max));
  let until = Math.ceil(Math.max(min, max));
  if (until <= from) until = from + 1;
  return { ...state, from: String(from), until: String(until), refresh: 'off' };
}

/** The `/render` query of the state, for `format=json`; `points` caps each series. */
export function renderPairs(state, points) {
  return [
    ...state.targets.map((t) => ['target', t]),
    ['from', state.from],
    ['until', state.until],
    ['format', 'json'],
    ['maxDataPoints', points > 0 ? Math.round(points) : ''],
  ];
}
