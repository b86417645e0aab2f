// The console's state lives in the URL's hash: `#/page?key=value&key=value`, so a link to any
// view can be shared or put in a runbook (the server only ever serves `/`).

/** `#/graph?target=a&from=-1h` → { page: 'graph', params: URLSearchParams } */
export function parseHash(hash) {
  const s = String(hash ?? '').replace(/^#\/?/, '');
  const q = s.indexOf('?');
  return {
    page: q < 0 ? s : s.slice(0, q),
    params: new URLSearchParams(q < 0 ? '' : s.slice(q + 1)),
  };
}

/** The hash of `page` with the [key, value] pairs (keys may repeat; empty values left out). */
export function makeHash(page, pairs = []) {
  const p = new URLSearchParams();
  for (const [k, v] of pairs) if (v !== undefined && v !== null && v !== '') p.append(k, String(v));
  const s = p.toString();
  return `#/${page}${s ? `?${s}` : ''}`;
}
