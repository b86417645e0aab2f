// The target builder's logic (the graph page's "Build a target"): which functions of
// `/functions` can wrap a series list, and a function call with typed arguments — strings
// quoted, numbers checked, series lists and booleans as written — as graphite-web's parser
// reads it.

const SERIES = new Set(['seriesList', 'seriesLists']);
const NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

/**
 * The functions whose first parameter takes a series list, from `/functions`' answer
 * (`{name: {name, group, params: [{name, type, required, multiple, options, default,
 * suggestions}]}}`): `[{name, group, params}]` sorted by group then name; `params` are the
 * ones after the wrapped series list.
 */
export function wrappable(functions) {
  return Object.values(functions ?? {})
    .filter((f) => f && typeof f.name === 'string' && SERIES.has(f.params?.[0]?.type))
    .map((f) => ({ name: f.name, group: f.group ?? 'Other', params: f.params.slice(1) }))
    .sort((a, b) => a.group.localeCompare(b.group) || a.name.localeCompare(b.name));
}

/**
 * A string argument: in single quotes, or double quotes when it holds a single one. graphite's
 * parser keeps escapes verbatim (graphite-web's pyparsing `quotedString`), so a backslash or
 * both quote kinds cannot be written: an Error.
 */
export function quote(s) {
  const v = String(s);
  if (v.includes('\\')) throw new Error(`${JSON.stringify(v)}: a backslash cannot be written in a target's string`);
  if (!v.includes("'")) return `'${v}'`;
  if (!v.includes('"')) return `"${v}"`;
  throw new Error(`${JSON.stringify(v)}: a string cannot hold both ' and "`);
}

/**
 * One parameter's text (as typed) → the argument(s) it makes, or throws an Error naming the
 * parameter. Empty → []: left out (an error when required). A `multiple` parameter takes a
 * comma-separated list.
 */
export function argsOf(param, text) {
  const raw = String(text ?? '').trim();
  if (raw === '') {
    if (param.required) throw new Error(`${param.name} is required`);
    return [];
  }
  const parts = param.multiple && !SERIES.has(param.type) ? raw.split(',').map((p) => p.trim()).filter((p) => p !== '') : [raw];
  return parts.map((p) => argOf(param, p));
}

function argOf(param, v) {
  const num = () => {
    if (!NUMBER.test(v)) throw new Error(`${param.name}: ${JSON.stringify(v)} is not a number`);
    return String(Number(v));
  };
  switch (param.type) {
    case 'seriesList':
    case 'seriesLists':
      return v;
    case 'integer':
    case 'node': {
      const n = num();
      if (!Number.isInteger(Number(n))) throw new Error(`${param.name}: ${v} is not a whole number`);
      return n;
    }
    case 'float':
      return num();
    case 'intOrInf':
      return /^[-+]?inf$/i.test(v) ? quote(v) : num();
    case 'boolean':
      if (!/^(true|false)$/i.test(v)) throw new Error(`${param.name}: ${JSON.stringify(v)} is not true or false`);
      return v.toLowerCase();
    case 'intOrInterval':
    case 'nodeOrTag':
    case 'any':
      return NUMBER.test(v) ? String(Number(v)) : quote(v);
    default: // string, interval, aggFunc, aggOrSeriesFunc, date, tag
      if (param.options && !param.options.includes(v)) {
        throw new Error(`${param.name}: ${JSON.stringify(v)} is not one of ${param.options.join(', ')}`);
      }
      return quote(v);
  }
}

/**
 * `fn` applied to `inner` (a target) with `values` (text per parameter, by position):
 * `movingAverage(a.b,'5min')`. An optional parameter left empty before a given one is an
 * error (positional arguments cannot skip). Throws an Error naming the parameter.
 */
export function wrap(inner, fn, values) {
  const target = String(inner ?? '').trim();
  if (target === '') throw new Error('pick a metric (or type a target) first');
  const args = [target];
  let skipped = null;
  fn.params.forEach((p, i) => {
    const a = argsOf(p, values[i]);
    if (a.length === 0) {
      skipped ??= p.name;
      return;
    }
    if (skipped) throw new Error(`${p.name} is given but ${skipped} before it is not (arguments are positional)`);
    args.push(...a);
  });
  return `${fn.name}(${args.join(',')})`;
}

/** The hint of a parameter's field: its default, else its first suggestions. */
export function hintOf(param) {
  if (param.default !== undefined && param.default !== null) return `default ${param.default}`;
  if (param.suggestions?.length) return `e.g. ${param.suggestions.slice(0, 4).join(', ')}`;
  if (param.multiple) return 'comma-separated';
  return param.type;
}
