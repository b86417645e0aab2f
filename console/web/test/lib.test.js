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
