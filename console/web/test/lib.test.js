import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseHash, makeHash } from '../src/lib/route.js';
import { graphState, graphPairs, renderPairs, zoomed, isLive } from '../src/lib/graphstate.js';
import { toUplot, fmtValue, ago } from '../src/lib/series.js';
import { completionContext, matchFunctions, applyCompletion, errorAt } from '../src/lib/target.js';

test('the hash carries the page and repeated keys, both ways', () => {
  const hash = makeHash('graph', [['target', 'a.b'], ['target', 'sum(c.*, 1)'], ['from', '-6h'], ['until', '']]);
  assert.equal(hash, '#/graph?target=a.b&target=sum%28c.*%2C+1%29&from=-6h');
  const { page, params } = parseHash(hash);
  assert.equal(page, 'graph');
  assert.deepEqual(params.getAll('target'), ['a.b', 'sum(c.*, 1)']);
  assert.equal(parseHash('').page, '');
  assert.equal(parseHash('#/alerts').page, 'alerts');
});

test('graph state: defaults, round trip, zoom to an absolute range', () => {
  const s = graphState(new URLSearchParams('target=a&target=&from=-6h&refresh=bogus'));
  assert.deepEqual(s, { targets: ['a'], from: '-6h', until: 'now', refresh: 'off' });
  assert.deepEqual(graphState(new URLSearchParams(makeHash('graph', graphPairs(s)).split('?')[1])), s);
  assert.ok(isLive(s));
  const z = zoomed({ ...s, refresh: '30s' }, 1700000100.7, 1700000000.2);
  assert.deepEqual([z.from, z.until, z.refresh], ['1700000000', '1700000101', 'off']);
  assert.ok(!isLive(z));
  assert.deepEqual(renderPairs(s, 640.4).slice(-2), [['format', 'json'], ['maxDataPoints', 640]]);
});

test('render json becomes one x column with nulls as gaps', () => {
  const { labels, data } = toUplot([
    { target: 'a', datapoints: [[1, 10], [null, 20], [3, 30]] },
    { target: 'b', datapoints: [[5, 20], [6, 40]] },
  ]);
  assert.deepEqual(labels, ['a', 'b']);
  assert.deepEqual(data, [[10, 20, 30, 40], [1, null, 3, null], [null, 5, null, 6]]);
  assert.deepEqual(toUplot([]).data, [[]]);
});

test('numbers and ages read compactly', () => {
  assert.equal(fmtValue(null), '—');
  assert.equal(fmtValue(1234567), '1.23M');
  assert.equal(fmtValue(0.5), '0.5');
  assert.equal(fmtValue(-2500), '-2.5k');
  assert.equal(ago(100, 130), '30s ago');
  assert.equal(ago(0, 7260), '2h 1m ago');
});

test('function completion happens where a function name can stand', () => {
  assert.deepEqual(completionContext('sum', 3), { start: 0, prefix: 'sum' });
  assert.deepEqual(completionContext('alias(sumS', 10), { start: 6, prefix: 'sumS' });
  assert.deepEqual(completionContext('a(b.c, mov', 10), { start: 7, prefix: 'mov' });
  assert.equal(completionContext('carbide.sto', 11), null, 'a path segment');
  assert.equal(completionContext('a(', 2), null);
  assert.deepEqual(matchFunctions(['sumSeries', 'sum', 'sortByName', 'summarize'], 'su'), ['sum', 'summarize', 'sumSeries']);
  assert.deepEqual(applyCompletion('alias(sumS, 1)', 6, 10, 'sumSeries'), { value: 'alias(sumSeries(, 1)', caret: 16 });
  assert.deepEqual(applyCompletion('sumS(a)', 0, 2, 'sumSeries'), { value: 'sumSeries(a)', caret: 10 });
});

test('a parse error names its column and its target', () => {
  const msg = "invalid target: expected ',' or ')', found the end of the target at column 14\n  sumSeries(a.b\n               ^";
  assert.deepEqual(errorAt(msg, ['x.y', 'sumSeries(a.b']), { column: 14, index: 1 });
  assert.equal(errorAt('no such series', ['a']), null);
});

test('alerts group worst first and hide OK series unless asked', async () => {
  const { groupAlerts } = await import('../src/lib/alerts.js');
  const states = [
    { alert: 'Disk', series: 'b', level: 'OK' },
    { alert: 'Load', series: 'y', level: 'WARNING' },
    { alert: 'Load', series: 'x', level: 'CRITICAL' },
    { alert: 'Disk', series: 'a', level: 'NO_DATA' },
    { alert: 'Quiet', series: 'q', level: 'OK' },
  ];
  const g = groupAlerts(states, false);
  assert.deepEqual(g.map((x) => [x.alert, x.worst, x.series.map((s) => s.series)]),
    [['Load', 'CRITICAL', ['x', 'y']], ['Disk', 'NO_DATA', ['a']]]);
  assert.equal(groupAlerts(states, true).length, 3);
});

test('status rows: targets per section, agents glob, latest values, units', async () => {
  const { statusSections, latest, fmtKind, sanitizeGlob } = await import('../src/lib/status.js');
  const sections = statusSections();
  assert.deepEqual(sections.map((s) => s.id), ['store', 'agents', 'alerter']);
  const target = (sec, row) => sections.find((s) => s.id === sec).rows.find((r) => r.id === row).target;
  assert.equal(target('agents', 'spool-bytes'), 'aliasByNode(servers.*.carbide.collector.sender.spool_bytes,1)');
  assert.equal(target('alerter', 'notifications-pending'), "alias(carbide.alerter.notifications.queued,'pending')");
  assert.match(target('store', 'bad-lines'), /carbide\.store\.bad_lines\.total/);
  assert.match(target('store', 'points-received'), /perSecond\(carbide\.store\.points_received\)/);
  // Another path prefix: the host is the last node of the glob.
  assert.equal(statusSections('dc1.web.*').find((s) => s.id === 'agents').rows[0].target,
    'aliasByNode(dc1.web.*.carbide.collector.sender.spool_bytes,2)');
  // Anything but a glob of nodes is refused (it would make another target).
  for (const bad of ['servers.*),evil(', "a'b", '', '.servers', 'servers.']) assert.equal(sanitizeGlob(bad), '', bad);
  assert.equal(statusSections('x),y(').find((s) => s.id === 'agents').rows[0].target,
    'aliasByNode(servers.*.carbide.collector.sender.spool_bytes,1)');
  assert.deepEqual(latest([[1, 10], [2, 20], [null, 30]]), { value: 2, at: 20 });
  assert.equal(latest([[null, 10]]), null);
  assert.equal(latest(undefined), null);
  assert.equal(fmtKind(1536, 'bytes'), '1.5 KiB');
  assert.equal(fmtKind(12, 'bytes'), '12 B');
  assert.equal(fmtKind(0.25, 'seconds'), '250 ms');
  assert.equal(fmtKind(2500, 'ms'), '2.5 s');
  assert.equal(fmtKind(3.14159, 'rate'), '3.14/s');
  assert.equal(fmtKind(7, 'count'), '7');
  assert.equal(fmtKind(null, 'count'), '—');
});

test('target builder: wrappable functions, typed arguments, positional checks', async () => {
  const { wrappable, wrap, argsOf, quote, hintOf } = await import('../src/lib/builder.js');
  const fns = {
    movingAverage: { name: 'movingAverage', group: 'Calculate', params: [
      { name: 'seriesList', type: 'seriesList', required: true },
      { name: 'windowSize', type: 'intOrInterval', required: true, suggestions: [5, '1min'] },
      { name: 'xFilesFactor', type: 'float' }] },
    aliasByNode: { name: 'aliasByNode', group: 'Alias', params: [
      { name: 'seriesList', type: 'seriesList', required: true },
      { name: 'nodes', type: 'nodeOrTag', required: true, multiple: true }] },
    aggregate: { name: 'aggregate', group: 'Combine', params: [
      { name: 'seriesList', type: 'seriesList', required: true },
      { name: 'func', type: 'aggFunc', required: true, options: ['avg', 'sum'] },
      { name: 'xFilesFactor', type: 'float' }] },
    alias: { name: 'alias', group: 'Alias', params: [
      { name: 'seriesList', type: 'seriesList', required: true }, { name: 'newName', type: 'string', required: true }] },
    keepLastValue: { name: 'keepLastValue', group: 'Transform', params: [
      { name: 'seriesList', type: 'seriesList', required: true }, { name: 'limit', type: 'intOrInf', default: 'inf' }] },
    constantLine: { name: 'constantLine', group: 'Special', params: [{ name: 'value', type: 'float', required: true }] },
  };
  const w = wrappable(fns);
  assert.deepEqual(w.map((f) => f.name), ['alias', 'aliasByNode', 'movingAverage', 'aggregate', 'keepLastValue']);
  const by = Object.fromEntries(w.map((f) => [f.name, f]));
  assert.equal(wrap('a.b', by.movingAverage, ['5']), 'movingAverage(a.b,5)');
  assert.equal(wrap('a.b', by.movingAverage, ['5min', '0.5']), "movingAverage(a.b,'5min',0.5)");
  assert.equal(wrap('a.*', by.aliasByNode, ['1, 3']), 'aliasByNode(a.*,1,3)');
  assert.equal(wrap('x', by.alias, ["it's here"]), 'alias(x,"it\'s here")');
  assert.throws(() => wrap('x', by.alias, ['a\\b']), /backslash/);
  assert.throws(() => wrap('x', by.alias, ['\'"']), /both/);
  assert.equal(wrap(wrap('a.b', by.aggregate, ['sum']), by.alias, ['total']), "alias(aggregate(a.b,'sum'),'total')");
  assert.equal(wrap('a', by.keepLastValue, ['inf']), "keepLastValue(a,'inf')");
  assert.throws(() => wrap('a.b', by.movingAverage, ['']), /windowSize is required/);
  assert.throws(() => wrap('', by.movingAverage, ['5']), /pick a metric/);
  assert.throws(() => wrap('a', by.aggregate, ['mean']), /func: "mean" is not one of avg, sum/);
  assert.throws(() => wrap('a', by.aggregate, ['sum', 'lots']), /xFilesFactor: "lots" is not a number/);
  assert.throws(() => argsOf({ name: 'n', type: 'integer' }, '1.5'), /not a whole number/);
  assert.throws(() => argsOf({ name: 'b', type: 'boolean' }, 'yes'), /not true or false/);
  assert.deepEqual(argsOf({ name: 'b', type: 'boolean' }, 'True'), ['true']);
  assert.throws(() => wrap('a', { name: 'f', params: [{ name: 'x', type: 'float' }, { name: 'y', type: 'float' }] }, ['', '2']),
    /y is given but x before it is not/);
  assert.equal(quote("a'b"), '"a\'b"');
  assert.equal(quote('5min'), "'5min'");
  assert.equal(hintOf({ type: 'intOrInterval', suggestions: [5, 7, '1min', '5min', '1h'] }), 'e.g. 5, 7, 1min, 5min');
  assert.equal(hintOf({ type: 'float', default: 0 }), 'default 0');
});
