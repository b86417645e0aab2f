// The public APIs the console reads, same origin (the browser sends the API's credentials).
// Every request has a timeout; an error carries the server's own message.

const TIMEOUT_MS = 30_000;

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function request(path, { method = 'GET', body, signal, timeout = TIMEOUT_MS } = {}) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(new Error(`no answer from ${path} within ${timeout / 1000}s`)), timeout);
  signal?.addEventListener('abort', () => ctl.abort(signal.reason));
  try {
    const init = { method, signal: ctl.signal, headers: {} };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers['Content-Type'] = 'application/json';
    }
    let resp;
    try {
      resp = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, ctl.signal.aborted ? String(ctl.signal.reason?.message ?? 'aborted') : `cannot reach the server: ${e.message}`);
    }
    const text = await resp.text();
    if (!resp.ok) {
      let msg = text.trim();
      try {
        const j = JSON.parse(text);
        if (j && typeof j.error === 'string') msg = j.error;
      } catch {
        // a plain-text message
      }
      throw new ApiError(resp.status, msg || `${resp.status} ${resp.statusText}`);
    }
    return text;
  } finally {
    clearTimeout(timer);
  }
}

export async function getJson(path, opts) {
  const text = await request(path, opts);
  return text === '' ? null : JSON.parse(text);
}

export async function sendJson(method, path, body) {
  const text = await request(path, { method, body });
  return text === '' ? null : JSON.parse(text);
}

/** A query string from [key, value] pairs (keys may repeat). */
export function qs(pairs) {
  const p = new URLSearchParams();
  for (const [k, v] of pairs) if (v !== undefined && v !== null && v !== '') p.append(k, v);
  return p.toString();
}
