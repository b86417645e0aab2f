// Helpers of the target input: function-name completion and the server's parse errors.

const IDENT = /[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Where a function name is being typed at `caret`: the identifier ending there, when it
 * starts the target or follows `(`, `,` or a space (not a metric path segment after `.`).
 * Returns `{start, prefix}` or null.
 */
export function completionContext(value, caret) {
  const before = value.slice(0, caret);
  const m = IDENT.exec(before);
  if (!m) return null;
  const start = m.index;
  const prev = before.slice(0, start).replace(/\s+$/, '');
  if (prev !== '' && !/[(,]$/.test(prev)) return null;
  // The rest of the identifier after the caret is replaced too.
  return { start, prefix: m[0] };
}

/** Function names starting with `prefix` (case-insensitive), shortest first, at most `n`. */
export function matchFunctions(names, prefix, n = 12) {
  const p = prefix.toLowerCase();
  return names
    .filter((f) => f.toLowerCase().startsWith(p))
    .sort((a, b) => a.length - b.length || a.localeCompare(b))
    .slice(0, n);
}

/** `value` with the identifier at `start..caret` replaced by `name(`; the new caret. */
export function applyCompletion(value, start, caret, name) {
  let end = caret;
  while (end < value.length && /[A-Za-z0-9_]/.test(value[end])) end++;
  const open = value[end] === '(' ? '' : '(';
  const next = value.slice(0, start) + name + open + value.slice(end);
  return { value: next, caret: start + name.length + 1 };
}

/**
 * The parser's error `invalid target: … at column N\n  <target>\n  <caret>`: its column and
 * the index of the target it is about (the one containing the echoed text; else 0).
 * Null when the message names no column.
 */
export function errorAt(message, targets) {
  const m = /at column (\d+)/.exec(message);
  if (!m) return null;
  const echo = (message.split('\n')[1] ?? '').replace(/^ {2}/, '').replace(/^…|…$/g, '');
  let index = targets.findIndex((t) => echo !== '' && t.includes(echo));
  if (index < 0) index = 0;
  return { column: Number(m[1]), index };
}
