"""The conformance corpus: targets grouped by family, each with its time range.

A family becomes one golden file `graphite/tests/conformance/golden/<family>.json`.
Ranges are absolute epochs around fixtures.NOW unless a case deliberately tests relative
times (recorded with the frozen clock). Cases marked multi_archive read a multi-archive whisper
file over a range that makes whisper pick a coarser archive: replay must use whisper's
archive choice (first archive whose retention covers now - from).
"""

from collections import namedtuple

from fixtures import NOW

Case = namedtuple("Case", "target frm until extra multi_archive")

H1 = (NOW - 3600, NOW)  # last hour, 10 s tree
H3 = (NOW - 3 * 3600, NOW)
M20 = (NOW - 1200, NOW)  # default: last 20 min, 10 s tree (120 points)
S6H = (NOW - 6 * 3600, NOW)  # 60 s tree
D1 = (NOW - 86400, NOW)
ODD = (NOW - 1200 - 7, NOW - 13)  # unaligned from/until

AGG = ["average", "avg", "avg_zero", "count", "current", "diff", "last", "max", "median", "min",
       "multiply", "range", "rangeOf", "stddev", "sum", "total"]

LOAD = "servers.*.loadavg.01"
WLOAD = "servers.web*.loadavg.01"
WUSER = "servers.web*.cpu.total.user"
USER = "servers.*.cpu.total.user"
W1 = "servers.web1.cpu.total.user"
W3 = "servers.web3.cpu.total.user"  # has gaps
HAP = "servers.*.haproxy.*.*.check_duration"
LOCK = "servers.db1.mongo.globalLock.lockTime"
TOTAL = "servers.db1.mongo.globalLock.totalTime"
RX = "servers.*.network.eth0.rx_byte"
REQ = "stats.web.requests"


def _c(target, rng=M20, extra=None, multi=False):
    return Case(target, str(rng[0]), str(rng[1]), extra, multi)


def examples():
    return [
        _c("scale(divideSeries(derivative(%s),derivative(%s)),100)" % (LOCK, TOTAL)),
        _c('aliasByNode(movingMedian(groupByNode(%s,3,"averageSeries"),10),0)' % HAP),
        _c("scale(divideSeries(derivative(%s),derivative(%s)),100)" % (LOCK, TOTAL), H3),
        _c('aliasByNode(movingMedian(groupByNode(%s,3,"averageSeries"),10),0)' % HAP, H3),
    ]


def combine():
    out = []
    for f in ["sumSeries", "averageSeries", "maxSeries", "minSeries", "diffSeries", "multiplySeries",
              "countSeries", "rangeOfSeries", "stddevSeries", "sum", "avg", "powSeries", "unique"]:
        out.append(_c("%s(%s)" % (f, LOAD)))
        out.append(_c("%s(%s)" % (f, W3)))
    out += [
        _c("sumSeries(%s,servers.db1.loadavg.01)" % W1),
        _c("sumSeries(servers.web1.loadavg.01,stats.web.requests)"),  # 10 s + 60 s -> LCM
        _c("averageSeries(servers.web1.loadavg.01,stats.web.requests)", ODD),
        _c("diffSeries(stats.web.requests,servers.*.loadavg.01)"),
        _c("maxSeries(special.allnull,special.zeros)"),
        _c("sumSeries(special.allnull)"),
        _c("averageSeries(special.gaps,special.sparse)"),
        _c("multiplySeries(special.negative,special.constant)"),
        _c("countSeries()"),
        _c("countSeries(special.*)"),
        _c("countSeries(nonexistent.*)"),
        _c("sumSeries(nonexistent.*)"),
        _c("divideSeries(%s,servers.web1.cpu.total.system)" % WUSER),
        _c("divideSeries(special.constant,special.zeros)"),
        _c("divideSeries(special.gaps,special.sparse)"),
        _c("divideSeries(servers.web1.loadavg.01,stats.web.requests)"),
        _c("divideSeriesLists(servers.web*.cpu.total.user,servers.web*.cpu.total.system)"),
        _c("divideSeriesLists(special.negative,special.zeros)"),
        _c("sumSeriesLists(servers.web*.cpu.total.user,servers.web*.cpu.total.system)"),
        _c("diffSeriesLists(servers.web*.cpu.total.user,servers.web*.cpu.total.system)"),
        _c("multiplySeriesLists(servers.web*.cpu.total.user,servers.web*.cpu.total.system)"),
        _c("group(servers.web1.loadavg.01,special.constant,stats.web.requests)"),
        _c("group()"),
        _c("sumSeriesWithWildcards(servers.*.cpu.total.*,1)"),
        _c("sumSeriesWithWildcards(%s,1,3)" % HAP),
        _c("averageSeriesWithWildcards(servers.*.cpu.total.*,1)"),
        _c("averageSeriesWithWildcards(%s,1,4)" % HAP),
        _c("multiplySeriesWithWildcards(servers.web*.cpu.total.*,1)"),
        _c("aggregateWithWildcards(%s,'max',1)" % HAP),
        _c("aggregateWithWildcards(servers.*.cpu.total.*,'sum',1,3)"),
        _c("weightedAverage(servers.*.cpu.total.user,servers.*.loadavg.01,1)"),
        _c("fallbackSeries(nonexistent.metric,special.constant)"),
        _c("fallbackSeries(special.constant,servers.web1.loadavg.01)"),
    ]
    for f in AGG:
        out.append(_c("aggregate(%s,'%s')" % (LOAD, f)))
    out += [
        _c("aggregate(%s,'sum',0.5)" % W3),
        _c("aggregate(special.*,'avg_zero')"),
        _c("aggregate(servers.web*.cpu.total.user,'median',xFilesFactor=0.9)"),
        _c("aggregateSeriesLists(servers.web*.cpu.total.user,servers.web*.cpu.total.system,'max')"),
        _c("aggregateLine(%s)" % LOAD),
        _c("aggregateLine(%s,'max')" % W1),
        _c("aggregateLine(%s,'sum',True)" % W1),
    ]
    # asPercent: every form
    out += [
        _c("asPercent(%s)" % WLOAD),
        _c("asPercent(%s,100)" % WLOAD),
        _c("asPercent(%s,sumSeries(%s))" % (WLOAD, LOAD)),
        _c("asPercent(servers.web*.cpu.total.user,servers.web*.cpu.total.system)"),
        _c("asPercent(servers.web*.cpu.total.user,servers.db*.cpu.total.user)"),  # length mismatch
        _c("asPercent(servers.web*.cpu.total.*,None,1)"),
        _c("asPercent(servers.web*.cpu.total.*,servers.*.loadavg.01,1)"),
        _c("asPercent(%s,None,3)" % HAP),
        _c("asPercent(special.constant,special.zeros)"),
        _c("asPercent(special.gaps)"),
        _c("asPercent(servers.web1.loadavg.01,0)"),
        _c("pct(%s,10)" % WLOAD),
        # groupByNode / groupByNodes with callbacks
        _c("groupByNode(%s,1)" % USER),
        _c("groupByNode(%s,3)" % HAP),
        _c("groupByNode(%s,3,'sumSeries')" % HAP),
        _c("groupByNode(%s,3,'maxSeries')" % HAP),
        _c("groupByNode(%s,4,'minSeries')" % HAP),
        _c("groupByNode(%s,3,'sum')" % HAP),
        _c("groupByNode(%s,3,'median')" % HAP),
        _c("groupByNode(%s,-2,'count')" % HAP),
        _c("groupByNode(servers.*.cpu.total.*,4,'diffSeries')"),
        _c("groupByNodes(%s,'sum',1,3)" % HAP),
        _c("groupByNodes(%s,'averageSeries',3,4)" % HAP),
        _c("groupByNodes(%s,'max')" % HAP),
        _c("groupByNodes(servers.*.cpu.total.*,'multiply',4)"),
        _c("groupByNodes(servers.*.cpu.total.*,'stddev',0,4)"),
        _c("applyByNode(servers.*.cpu.total.user,1,'sumSeries(%.cpu.total.*)')"),
        _c("applyByNode(servers.*.cpu.total.user,1,'sumSeries(%.cpu.total.*)','%.cpu.sum')"),
        _c("reduceSeries(mapSeries(servers.web*.cpu.total.*,1),'divideSeries',4,'user','system')"),
        _c("reduce(map(servers.web*.cpu.total.*,1),'asPercent',4,'user','system')"),
        _c("percentileOfSeries(%s,50)" % LOAD),
        _c("percentileOfSeries(%s,90,True)" % LOAD),
        _c("percentileOfSeries(%s,95)" % HAP),
    ]
    return out


def transform():
    out = []
    for t in [W1, W3, "special.negative", "special.allnull"]:
        for f in ["scale(%s,2.5)", "scale(%s,-1)", "scaleToSeconds(%s,1)", "scaleToSeconds(%s,60)",
                  "offset(%s,-10)", "absolute(%s)", "invert(%s)", "pow(%s,2)", "pow(%s,0.5)",
                  "squareRoot(%s)", "log(%s)", "log(%s,2)", "log(%s,10)"]:
            out.append(_c(f % t))
    out += [
        _c("add(%s,1.5)" % W1),
        _c("exp(servers.web1.loadavg.01)"),
        _c("sigmoid(servers.web1.loadavg.01)"),
        _c("logit(scale(servers.web1.cpu.total.user,0.01))"),
        _c("offsetToZero(%s)" % WLOAD),
        _c("minMax(%s)" % WLOAD),
        _c("round(%s)" % W1),
        _c("round(%s,1)" % W1),
        _c("round(special.negative,-1)"),
        _c("invert(special.zeros)"),
        _c("keepLastValue(%s)" % W3),
        _c("keepLastValue(special.gaps,3)"),
        _c("keepLastValue(special.sparse,inf)"),
        _c("interpolate(special.gaps)"),
        _c("interpolate(special.sparse,2)"),
        _c("transformNull(special.gaps)"),
        _c("transformNull(special.gaps,-1)"),
        _c("transformNull(special.gaps,0,special.constant)"),
        _c("transformNull(special.allnull,5)"),
        _c("isNonNull(special.gaps)"),
        _c("isNonNull(%s)" % W3),
        _c("changed(special.constant)"),
        _c("changed(special.gaps)"),
        _c("changed(servers.web1.haproxy.app.s1.check_duration)"),
        _c("removeBelowValue(%s,20)" % W1),
        _c("removeAboveValue(%s,20)" % W1),
        _c("removeBelowPercentile(%s,30)" % W1),
        _c("removeAbovePercentile(%s,70)" % W1),
        _c("removeBetweenPercentile(%s,30)" % LOAD),  # graphite-web crashes on None (Python 3)
        _c("removeBetweenPercentile(servers.web[12].loadavg.01,30)"),
        _c("removeAbovePercentile(special.gaps,50)"),
        _c("nPercentile(%s,50)" % W1),
        _c("nPercentile(%s,95)" % LOAD),
        _c("nPercentile(special.gaps,99.9)"),
        _c("nPercentile(special.allnull,50)"),
        _c("consolidateBy(%s,'max')" % W1),
        _c("consolidateBy(%s,'sum')" % W1),
        _c("consolidateBy(%s,'min')" % W1, H1, {"maxDataPoints": "60"}),
        _c("consolidateBy(%s,'last')" % W1, H1, {"maxDataPoints": "50"}),
        _c("consolidateBy(%s,'first')" % W1, H1, {"maxDataPoints": "7"}),
        _c(W1, H1, {"maxDataPoints": "100"}),
        _c(W3, H1, {"maxDataPoints": "1"}),
        _c("setXFilesFactor(%s,0.5)" % W3),
        _c("xFilesFactor(special.sparse,0.9)"),
        _c("cumulative(%s)" % W1),
        _c("cumulative(%s)" % W1, H1, {"maxDataPoints": "30"}),
        _c("timeShift(%s,'10min')" % W1),
        _c("timeShift(%s,'-10min')" % W1),
        _c("timeShift(%s,'1h')" % WLOAD),
        _c("timeShift(%s,'+1h')" % W1),
        _c("timeShift(%s,'1h',false)" % W1),
        _c("timeShift(%s,'1d')" % REQ, S6H),
        _c("timeShift(%s,'1w')" % REQ, S6H),
        _c("timeStack(%s,'1h',0,3)" % W1),
        _c("timeStack(%s,'1d',0,2)" % REQ, S6H),
        _c("timeSlice(%s,'%d','%d')" % (W1, NOW - 1800, NOW - 600)),
        _c("timeSlice(%s,'%d','%d')" % (W1, NOW - 900, NOW - 300)),
        _c("delay(%s,3)" % W1),
        _c("delay(%s,-3)" % W1),
        _c("delay(special.gaps,1)"),
        _c("stdev(%s,10)" % W1),
        _c("stdev(special.gaps,5,0.5)"),
        _c("exponentialMovingAverage(%s,10)" % W1),
        _c("exponentialMovingAverage(%s,'5min')" % W1),
        _c("linearRegression(%s)" % W1),
        _c("linearRegression(%s,'%d','%d')" % (W1, NOW - 3600, NOW - 1800)),
        _c("compressPeriodicGaps(special.sparse)"),
        _c("useSeriesAbove(servers.*.cpu.total.user,30,'user','system')"),  # crashes on None
        _c("useSeriesAbove(servers.web[12].cpu.total.user,20,'user','system')"),
        _c("identity('the.time')"),
        _c("time('t',120)"),
        _c("timeFunction('t')"),
        _c("sin('s',2,60)"),
        _c("sinFunction('s')"),
        _c("constantLine(42)"),
        _c("constantLine(-1.5)"),
        _c("constantLine(1e3)"),
        _c("threshold(50)"),
        _c("threshold(50,'max','red')"),
        _c("integralByInterval(%s,'10min')" % W1),
        _c("integralByInterval(%s,'1h')" % REQ, S6H),
        _c("integral(%s)" % W1),
        _c("integral(special.gaps)"),
    ]
    return out


def calculus():
    out = []
    for t in [LOCK, TOTAL, RX, "special.counter32", "special.gaps", "special.negative"]:
        out.append(_c("derivative(%s)" % t))
        out.append(_c("nonNegativeDerivative(%s)" % t))
        out.append(_c("perSecond(%s)" % t))
    out += [
        _c("nonNegativeDerivative(special.counter32,4294967295)"),
        _c("perSecond(special.counter32,4294967295)"),
        _c("nonNegativeDerivative(%s,minValue=0)" % LOCK),
        _c("nonNegativeDerivative(%s,None,0)" % TOTAL),
        _c("perSecond(%s,maxValue=1e12,minValue=0)" % LOCK),
        _c("derivative(%s)" % REQ, S6H),
        _c("perSecond(%s)" % REQ, S6H),
        _c("integral(nonNegativeDerivative(%s))" % LOCK),
        _c("derivative(%s)" % LOCK, H3),
        _c("nonNegativeDerivative(%s)" % TOTAL, H3),
        _c("scaleToSeconds(nonNegativeDerivative(%s),1)" % RX),
    ]
    return out


def moving():
    out = []
    for f in ["movingAverage", "movingMedian", "movingSum", "movingMin", "movingMax"]:
        for t in [W1, W3]:
            out.append(_c("%s(%s,10)" % (f, t)))
            out.append(_c("%s(%s,'5min')" % (f, t)))
        out.append(_c("%s(special.gaps,6)" % f))
        out.append(_c("%s(special.gaps,6,0.5)" % f))
        out.append(_c("%s(%s,'1h')" % (f, REQ), S6H))
        out.append(_c("%s(%s,360)" % (f, W1)))  # large window
    out += [
        _c("movingAverage(%s,1)" % W1),
        _c("movingAverage(%s,'30s')" % W1),
        _c("movingAverage(%s,'1min')" % REQ, S6H),
        _c("movingMedian(%s,7)" % WLOAD),
        _c("movingMedian(special.sparse,5)"),
        _c("movingAverage(special.allnull,5)"),
        _c("movingSum(%s,'15s')" % W1),
        _c("movingMax(%s,'1h')" % W1),  # window reaches 1 h before from
        _c("movingAverage(%s,'5min')" % W1, ODD),
    ]
    for f in AGG:
        out.append(_c("movingWindow(%s,'2min','%s')" % (W3, f)))
    out += [
        _c("movingWindow(%s,6)" % W1),
        _c("movingWindow(%s,6,'median',0.5)" % W3),
        _c("movingWindow(special.gaps,'1min','sum',0.8)"),
    ]
    return out


def summarize():
    out = []
    for f in AGG:
        out.append(_c("summarize(%s,'5min','%s')" % (W3, f)))
    out += [
        _c("summarize(%s,'5min')" % W1),
        _c("summarize(%s,'5min','sum',true)" % W1),
        _c("summarize(%s,'5min','avg',alignToFrom=true)" % W1, ODD),
        _c("summarize(%s,'5min','avg')" % W1, ODD),
        _c("summarize(%s,'1h')" % LOAD, H3),
        _c("summarize(%s,'1h','max',true)" % LOAD, H3),
        _c("summarize(%s,'7min','last')" % W1),
        _c("summarize(%s,'1d')" % REQ, D1),
        _c("summarize(%s,'1d','sum',true)" % REQ, D1),
        _c("summarize(special.allnull,'10min')"),
        _c("summarize(special.sparse,'10min','count')"),
        _c("summarize(%s,'30s')" % W1),
        _c("summarize(%s,'1min','avg')" % REQ, S6H),
        _c("hitcount(%s,'5min')" % W1),
        _c("hitcount(%s,'5min',true)" % W1),
        _c("hitcount(%s,'5min',true)" % W1, ODD),
        _c("hitcount(%s,'7min')" % W1, ODD),
        _c("hitcount(%s,'1h',true)" % REQ, S6H),
        _c("hitcount(%s,'1h')" % REQ, S6H),
        _c("hitcount(special.gaps,'10min')"),
        _c("hitcount(%s,'30s')" % REQ, S6H),
        _c("smartSummarize(%s,'5min')" % W1),
        _c("smartSummarize(%s,'5min','avg')" % W1, ODD),
        _c("smartSummarize(%s,'1h','sum','hours')" % REQ, S6H),
        _c("smartSummarize(%s,'1d','max','days')" % REQ, D1),
        _c("smartSummarize(%s,'10min','min','minutes')" % W3),
        _c("smartSummarize(special.gaps,'10min','count')"),
        _c("smartSummarize(%s,'5min','median')" % LOAD),
    ]
    return out


def filters():
    out = []
    for f, n in [("highestCurrent", 2), ("highestAverage", 2), ("highestMax", 3), ("lowestCurrent", 2),
                 ("lowestAverage", 1), ("currentAbove", 20), ("currentBelow", 20), ("averageAbove", 20),
                 ("averageBelow", 20), ("maximumAbove", 40), ("maximumBelow", 40), ("minimumAbove", 10),
                 ("minimumBelow", 10), ("limit", 3), ("mostDeviant", 2), ("averageOutsidePercentile", 30)]:
        out.append(_c("%s(%s,%s)" % (f, USER, n)))
    out += [
        _c("highestCurrent(%s,0)" % USER),
        _c("limit(%s,100)" % USER),
        _c("highestAverage(special.*,3)"),
        _c("lowestCurrent(special.*,3)"),
        _c("currentAbove(special.*,0)"),
        _c("averageBelow(special.*,0)"),
        _c("maximumAbove(%s,100)" % HAP),
        _c("highest(%s,2,'max')" % HAP),
        _c("highest(%s)" % USER),
        _c("lowest(%s,2,'median')" % HAP),
        _c("lowest(%s,1,'current')" % USER),
        _c("filterSeries(%s,'max','>',100)" % HAP),
        _c("filterSeries(%s,'average','<=',20)" % USER),
        _c("filterSeries(special.*,'sum','=',0)"),
        _c("filterSeries(special.*,'last','!=',42)"),
        _c("exclude(%s,'web')" % USER),
        _c("exclude(%s,'^servers\\.db')" % USER),
        _c("grep(%s,'web[12]')" % USER),
        _c("grep(%s,'api')" % HAP),
        _c("removeEmptySeries(special.*)"),
        _c("removeEmptySeries(special.*,0.5)"),
        _c("removeEmptySeries(special.*,0.99)"),
        _c("unique(%s,%s)" % (USER, "servers.web*.cpu.total.user")),
    ]
    return out


def sort():
    return [
        _c("sortByMaxima(%s)" % USER),
        _c("sortByMinima(%s)" % USER),
        _c("sortByTotal(%s)" % USER),
        _c("sortByName(%s)" % USER),
        _c("sortByName(%s,true)" % HAP),
        _c("sortByName(%s,false,true)" % USER),
        _c("sortByName(group(servers.web10.x,servers.web2.cpu.total.user,servers.web1.cpu.total.user),true)"),
        _c("sortBy(%s)" % USER),
        _c("sortBy(%s,'max',true)" % USER),
        _c("sortBy(%s,'last')" % HAP),
        _c("sortBy(special.*,'stddev')"),
        _c("sortByMaxima(special.*)"),
        _c("sortByMinima(special.*)"),
        _c("sortByTotal(special.*)"),
    ]


def alias():
    return [
        _c("alias(%s,'cpu')" % W1),
        _c("alias(%s,\"all hosts\")" % USER),
        _c("aliasByNode(%s,1)" % USER),
        _c("aliasByNode(%s,1,4)" % USER),
        _c("aliasByNode(%s,-1)" % USER),
        _c("aliasByNode(%s,1,3,4)" % HAP),
        _c("aliasByNode(sumSeries(%s),1)" % USER),
        _c("aliasByNode(scale(%s,2),1)" % USER),
        _c("aliasByMetric(%s)" % USER),
        _c("aliasByMetric(scale(%s,2))" % USER),
        _c("aliasSub(%s,'servers\\.([^.]+)\\..*','\\1')" % USER),
        _c("aliasSub(%s,'cpu','CPU')" % USER),
        _c("aliasSub(scale(%s,1),'^.*\\((.*)\\).*$','\\1')" % W1),
        _c("aliasQuery(%s,'servers\\.([^.]+)\\..*','servers.\\1.loadavg.01','load %%g')" % USER),
        _c("legendValue(%s,'avg')" % W1),
        _c("legendValue(%s,'last','max','si')" % USER),
        _c("legendValue(%s,'total','binary')" % W1),
        _c("cactiStyle(%s)" % USER),
        _c("cactiStyle(%s,'si','b')" % W1),
        _c("upper(%s)" % W1),
        _c("upper(%s,1)" % W1),
        _c("lower(alias(%s,'ABC'))" % W1),
        _c("substr(%s,1,3)" % USER),
        _c("substr(%s,2)" % USER),
        _c("substr(%s,-2)" % USER),
        _c("aliasByNode(%s,1)" % RX),
        _c("alias(sumSeries(%s),'total %%d')" % LOAD),
        # names of wrapped numbers: %g formatting
        _c("scale(%s,0.000001)" % W1),
        _c("scale(%s,1e20)" % W1),
        _c("scale(%s,100)" % W1),
        _c("scale(%s,1.0)" % W1),
        _c("offset(%s,1.5e-7)" % W1),
        _c("pow(%s,3)" % W1),
        _c("removeBelowValue(%s,12.0)" % W1),
        _c("keepLastValue(%s,5)" % W3),
        _c("movingAverage(%s,2.5)" % W1),
    ]


def graph():
    out = []
    for f in ["color(%s,'red')", "color(%s,'#ff00aa')", "lineWidth(%s,3)", "dashed(%s)",
              "dashed(%s,2.5)", "stacked(%s)", "stacked(%s,'mystack')", "secondYAxis(%s)",
              "drawAsInfinite(%s)", "areaBetween(%s)", "alpha(%s,0.5)"]:
        out.append(_c(f % W1))
    out.append(_c("color(%s,'blue')" % WUSER))
    out += [
        _c("areaBetween(group(servers.web1.cpu.total.user,servers.web1.cpu.total.system))"),
        _c("verticalLine('%d')" % (NOW - 600)),
        _c("verticalLine('%d')" % (NOW - 1800)),  # before the range: 400
        _c("verticalLine('%d','deploy','blue')" % (NOW - 600)),
        _c("color(scale(%s,2),'green')" % W1),
    ]
    return out


def holtwinters():
    out = []
    for t in [REQ, "stats.api.latency", "stats.queue.depth"]:
        out.append(_c("holtWintersForecast(%s)" % t, S6H))
        out.append(_c("holtWintersConfidenceBands(%s)" % t, S6H))
        out.append(_c("holtWintersAberration(%s)" % t, S6H))
    out += [
        _c("holtWintersConfidenceBands(%s,5)" % REQ, S6H),
        _c("holtWintersAberration(%s,2)" % REQ, S6H),
        _c("holtWintersForecast(%s,'3d')" % REQ, S6H),
        _c("holtWintersForecast(%s,'7d','1h')" % REQ, S6H),
        _c("holtWintersConfidenceBands(%s,3,'2d','6h')" % REQ, S6H),
        _c("holtWintersConfidenceArea(%s)" % REQ, S6H),
        _c("holtWintersForecast(%s,'1h','10min')" % W1),
        _c("holtWintersAberration(stats.web.errors,3,'1d')", S6H),
    ]
    return out


def grammar():
    return [
        _c("servers.web1.loadavg.01"),
        _c("servers.web?.loadavg.01"),
        _c("servers.web[12].loadavg.01"),
        _c("servers.web[1-3].loadavg.01"),
        _c("servers.[a-z]*.loadavg.01"),
        _c("servers.web[!1].loadavg.01"),
        _c("servers.{web1,db1}.loadavg.01"),
        _c("servers.{web,db}*.loadavg.01"),
        _c("servers.*1.loadavg.{01,05}"),
        _c("servers.*.cpu.*.user"),
        _c("servers.web*.*.total.*"),
        _c("*.web1.loadavg.01"),
        _c("servers.*"),
        _c("servers.web1.haproxy.*.s?.check_duration"),
        _c("servers.web*.haproxy.a[pq][ip].*.check_duration"),
        _c("special.{gaps,constant,zeros}"),
        _c("nonexistent.metric"),
        _c("nonexistent.*.metric"),
        _c("servers.web1.loadavg"),
        _c("servers.web1.loadavg.01.deeper"),
        _c("sumSeries(servers.{web1,web2}.loadavg.01)"),
        _c("scale(servers.web1.loadavg.01,1e-3)"),
        _c("scale(servers.web1.loadavg.01,2E2)"),
        _c("scale(servers.web1.loadavg.01,-2.5e+1)"),
        _c("scale(servers.web1.loadavg.01,.5)"),
        _c("offset(servers.web1.loadavg.01,-3)"),
        _c("alias(servers.web1.loadavg.01,'single quoted')"),
        _c('alias(servers.web1.loadavg.01,"double quoted")'),
        _c("alias(servers.web1.loadavg.01,\"it's\")"),
        _c("alias(servers.web1.loadavg.01,'say \"hi\"')"),
        _c("alias(servers.web1.loadavg.01,'a,b(c)')"),
        _c("alias(servers.web1.loadavg.01,'')"),
        _c("summarize(servers.web1.loadavg.01,'5min',func='max')"),
        _c("summarize(servers.web1.loadavg.01,intervalString='5min',func='max',alignToFrom=true)"),
        _c("summarize(servers.web1.loadavg.01,'5min','max',True)"),
        _c("summarize(servers.web1.loadavg.01,'5min','max',False)"),
        _c("summarize(servers.web1.loadavg.01,'5min','max',TRUE)"),
        _c("keepLastValue(special.gaps,inf)"),
        _c("keepLastValue(special.gaps,INF)"),
        _c("nonNegativeDerivative(special.counter32,None)"),
        _c("transformNull(special.gaps,default=-1)"),
        _c("sumSeries(servers.web1.loadavg.01, servers.web2.loadavg.01)"),
        _c(" scale( servers.web1.loadavg.01 , 2 ) "),
        _c("scale(scale(scale(scale(scale(servers.web1.loadavg.01,2),2),2),2),2)"),
        _c("aliasByNode(sumSeries(group(servers.web1.loadavg.01,servers.web2.loadavg.01)),1)"),
        _c("servers.web1.loadavg.01|scale(2)"),
        _c("servers.*.loadavg.01|sumSeries()"),
        _c("servers.*.loadavg.01|sumSeries()|alias('total')"),
        _c("servers.*.cpu.total.user|aliasByNode(1)|sortByName()"),
        _c("scale(servers.web1.loadavg.01,2)|offset(1)"),
        _c("template(servers.$host.loadavg.01,host='web1')"),
        _c("template(servers.$1.loadavg.01,'web2')"),
        _c("template(sumSeries(servers.$host.cpu.total.$kind),host='web*',kind='user')"),
        _c("template(servers.$host.loadavg.01)", H1, {"template[host]": "db1"}),
        _c("template(servers.$host.loadavg.01,host='web1')", H1, {"template[host]": "db1"}),
        _c("sumSeries(1h)"),
        _c(r"servers.web1.loadavg\.01"),
        _c(r"servers.web\1.loadavg.01"),
        _c(r"alias(servers.web1.loadavg.01,'it\'s')"),
        _c(r'alias(servers.web1.loadavg.01,"a\"b")'),
        _c(r"alias(servers.web1.loadavg.01,'back\\slash')"),
        _c("scale(servers.web1.loadavg.01,2x)"),
        _c("nonNegativeDerivative(special.counter32,none)"),
        _c("removeBelowValue(special.negative,-inf)"),
        _c("removeAboveValue(special.negative,inf)"),
        _c("scale(servers.web1.loadavg.01,-0)"),
        _c("scale(servers.web1.loadavg.01,007)"),
        _c("sumSeries(servers.web1.loadavg.01,)"),
        _c("special.constant"),
        _c("special.allnull"),
        _c("special.gaps"),
        _c("stats.web.requests"),
        _c("stats.*.*"),
        _c("servers.web1.loadavg.01", ODD),
        _c("servers.web1.loadavg.01", (NOW - 600, NOW - 595)),
        _c("stats.web.requests", (NOW - 600, NOW - 599)),
        _c("servers.web1.loadavg.01", (NOW - 600, NOW + 600)),
        _c("servers.web1.loadavg.01", (NOW - 3 * 86400, NOW - 86400 * 2 - 3600)),  # no data
        _c("servers.web1.loadavg.01", ("-1h", "now")),
        _c("servers.web1.loadavg.01", ("-30min", "-10min")),
        _c("servers.web1.loadavg.01", ("-1h30min", "-1h")),
        _c("summarize(stats.web.requests,'1h','sum',true)", ("-2d", "-1d")),
        _c("summarize(stats.web.requests,'1h','sum',true)", ("-1w", "-6d")),
        _c("servers.web1.loadavg.01", ("now-20min", "now")),
        _c("servers.web1.loadavg.01", ("21:30_20231114", "22:00_20231114")),
        _c("summarize(stats.web.requests,'1h','sum',true)", ("20231112", "20231113")),
        _c("summarize(stats.web.requests,'1h','sum',true)", ("11/12/23", "11/13/23")),
        _c("summarize(stats.web.requests,'1h','sum',true)", ("midnight", "now")),
        _c("stats.web.requests", ("noon", "now")),
        _c("summarize(stats.web.requests,'1h','sum',true)", ("yesterday", "today")),
        _c("stats.web.requests", ("noon yesterday", "6pm yesterday")),
        _c("servers.web1.loadavg.01", (str(NOW), str(NOW - 600))),  # swapped
    ]


def errors():
    return [
        _c("foo(servers.web1.loadavg.01)"),
        _c("sumSeries(servers.web1.loadavg.01"),
        _c("sumSeries(servers.web1.loadavg.01))"),
        _c("scale(servers.web1.loadavg.01,'abc')"),
        _c("scale(servers.web1.loadavg.01)"),
        _c("scale(2,servers.web1.loadavg.01)"),
        _c("movingAverage(servers.web1.loadavg.01,'bogus')"),
        _c("movingAverage(servers.web1.loadavg.01,-5)"),
        _c("summarize(servers.web1.loadavg.01,'5min','nosuchfunc')"),
        _c("aggregate(servers.web1.loadavg.01,'nosuchfunc')"),
        _c("consolidateBy(servers.web1.loadavg.01,'nosuch')"),
        _c("groupByNode(servers.*.loadavg.01,1,'nosuchfunc')"),
        _c("alias(servers.web1.loadavg.01)"),
        _c("alias(servers.web1.loadavg.01,'a','b')"),
        _c("alias(servers.web1.loadavg.01,nosuchkw='x')"),
        _c("summarize(servers.web1.loadavg.01,func='max','5min')"),
        _c("alias(servers.web1.loadavg.01,'unterminated)"),
        _c("divideSeries(servers.web1.loadavg.01,servers.*.loadavg.01)"),
        _c("divideSeries(servers.web1.loadavg.01,nonexistent.metric)"),
        _c("divideSeriesLists(servers.web*.loadavg.01,servers.*.loadavg.01)"),
        _c("timeShift(servers.web1.loadavg.01,'1x')"),
        _c("hitcount(servers.web1.loadavg.01,'bogus')"),
        _c("nPercentile(servers.web1.loadavg.01,'x')"),
        _c("highestCurrent(servers.*.loadavg.01,'x')"),
        _c("sortByName(servers.*.loadavg.01,'notabool')"),
        _c("holtWintersForecast(servers.web1.loadavg.01,'bogus')"),
        _c("asPercent(servers.*.loadavg.01,'x')"),
        _c("asPercent(servers.*.loadavg.01,servers.web*.loadavg.01,servers.db*.loadavg.01)"),
        _c("scale(servers.web1.loadavg.01,2"),
        _c("scale(servers.web1.loadavg.01,,2)"),
        _c("(servers.web1.loadavg.01)"),
        _c(""),
        _c("servers.web1.loadavg.01,"),
        _c("scale(servers.web1.loadavg.01,1e)"),
        _c("servers.web1.loadavg.01|"),
        _c("servers.web1.loadavg.01|nosuch()"),
        _c("sumSeries(servers.web1.loadavg.01)extra"),
        _c("template(servers.$host.loadavg.01)"),
        _c("mapSeries(servers.*.cpu.total.*,1)"),  # a list of lists is not renderable
        _c("servers.web1.loadavg.01", ("-1m", "now")),
        _c("servers.web1.loadavg.01", ("bogus", "now")),
        _c("servers.web1.loadavg.01", (str(NOW), str(NOW))),
        _c("logarithm(servers.web1.loadavg.01)"),  # not a graphite-web 1.1.10 function (it is log)
        _c("smartSummarize(servers.web1.loadavg.01,'5min','sum','bogus')"),
        _c("filterSeries(servers.*.loadavg.01,'max','~',1)"),
        _c("integralByInterval(servers.web1.loadavg.01,'bogus')"),
    ]


def multi_archive():
    m = "multi.rollup.requests"
    out = []
    for rng in [H1, (NOW - 5 * 3600, NOW), (NOW - 7 * 3600, NOW), (NOW - 86400, NOW - 86400 + 7200),
                (NOW - 3 * 86400, NOW - 2 * 86400 - 36000), (NOW - 6 * 86400, NOW - 6 * 86400 + 36000)]:
        out.append(_c(m, rng, None, True))
    out += [
        _c("summarize(%s,'1h')" % m, (NOW - 86400, NOW), None, True),
        _c("movingAverage(%s,5)" % m, (NOW - 86400, NOW - 86400 + 7200), None, True),
        _c("sumSeries(%s,servers.web1.loadavg.01)" % m, (NOW - 7 * 3600, NOW), None, True),
        _c("derivative(%s)" % m, (NOW - 3 * 86400, NOW - 2 * 86400 - 36000), None, True),
        _c("timeShift(%s,'5h')" % m, H1, None, True),
    ]
    return out


def tags():
    """Graphite 1.1 tags: seriesByTag (every operator, quoting and spacing kept in the
    pathExpression, untagged series by their name tag), groupByTags, aliasByTags, tagged
    series through other functions, and the error cases."""
    cpu = "seriesByTag('name=cpu.load')"
    out = [
        _c(cpu),
        _c("seriesByTag('name=cpu.load','dc=east')"),
        _c('seriesByTag("name=cpu.load","host=~web")'),
        _c("seriesByTag( 'name=cpu.load' , 'host=~web' )"),
        _c("seriesByTag('name=cpu.load','role!=web')"),
        _c("seriesByTag('name=cpu.load','role!=')"),
        _c("seriesByTag('name=cpu.load','role=')"),
        _c("seriesByTag('name=cpu.load','host!=~web')"),
        _c("seriesByTag('name=cpu.load','host=~eb')"),
        _c("seriesByTag('name=cpu.load','host=~b1$')"),
        _c("seriesByTag('host=~^db|web1')"),
        _c("seriesByTag('name=cpu.load','role=~.*')"),
        _c("seriesByTag('name=cpu.load','role!=~w')"),
        _c("seriesByTag('dc=east')"),
        _c("seriesByTag('dc=west','name!=cpu.load')"),
        _c("seriesByTag('a=y')"),
        _c("seriesByTag('name=quirk.m')"),
        _c("seriesByTag('name=stats.web.requests')"),
        _c("seriesByTag('name=~servers.web1.cpu')"),
        _c("seriesByTag('name=nosuch')"),
        _c("seriesByTag('name=cpu.load',1)"),
        _c("seriesByTag('name=cpu.load','dc=east')", H1),
        _c("cpu.load;dc=east;host=web1;role=web"),
        _c("quirk.m;a.b=x;a=y"),
        # Functions over tagged series (names, tags and their order).
        _c("sumSeries(%s)" % cpu),
        _c("averageSeries(seriesByTag('name=cpu.load','dc=east'))"),
        _c("countSeries(%s)" % cpu),
        _c("scale(seriesByTag('name=cpu.load','host=web1'),2)"),
        _c("offset(scale(seriesByTag('name=mem.free'),2),1)"),
        _c("movingAverage(seriesByTag('name=cpu.load','dc=east'),5)"),
        _c("movingAverage(seriesByTag('name=cpu.load','dc=east'),'1min')"),
        _c("highestMax(%s,2)" % cpu),
        _c("sortByName(seriesByTag('dc=west'))"),
        _c("groupByNode(%s,'dc','sum')" % cpu),
        _c("groupByNodes(%s,'max','dc','role')" % cpu),
        # groupByTags.
        _c("%s|groupByTags('sum','dc')" % cpu),
        _c("groupByTags(%s,'average','dc')" % cpu),
        _c("groupByTags(%s,'sumSeries','dc')" % cpu),
        _c("groupByTags(%s,'median','host')" % cpu),
        _c("groupByTags(%s,'count','dc','host')" % cpu),
        _c("groupByTags(seriesByTag('dc=west'),'max','name')"),
        _c("groupByTags(seriesByTag('host=db1'),'sum','dc')"),
        _c("groupByTags(seriesByTag('host=~web'),'avg','name','dc')"),
        _c("groupByTags(seriesByTag('name=cpu.load','dc=east'),'sum','role')"),
        _c("groupByTags(seriesByTag('name=quirk.m'),'last','a','a.b')"),
        # aliasByTags (nodes and tags mixed).
        _c("aliasByTags(%s,'host','dc')" % cpu),
        _c("seriesByTag('name=cpu.load','dc=west')|aliasByTags('name',1,'role')"),
        _c("aliasByTags(seriesByTag('name=mem.free'),0,'host')"),
        _c("aliasByNode(seriesByTag('name=mem.free'),'host',0)"),
        _c("aliasByTags(sumSeries(%s),'name')" % cpu),
        _c("aliasByTags(seriesByTag('name=~servers.web1.cpu'),1,'name')"),
        _c("aliasByTags(servers.web1.cpu.total.user,'name',4)"),
        # Errors: every expression matches empty, bad tagspec, bad regex, no tags, a group
        # key graphite-web cannot parse (an empty value).
        _c("seriesByTag('role!=web')"),
        _c("seriesByTag()"),
        _c("seriesByTag('name')"),
        _c("seriesByTag('host=~(')"),
        _c("groupByTags(%s,'sum')" % cpu),
        _c("groupByTags(%s,'average','dc','role')" % cpu),
    ]
    return out


FAMILIES = [
    ("examples", examples),
    ("combine", combine),
    ("transform", transform),
    ("calculus", calculus),
    ("moving", moving),
    ("summarize", summarize),
    ("filter", filters),
    ("sort", sort),
    ("alias", alias),
    ("graph", graph),
    ("holtwinters", holtwinters),
    ("grammar", grammar),
    ("errors", errors),
    ("multi_archive", multi_archive),
    ("tags", tags),
]


def families():
    for name, fn in FAMILIES:
        yield name, fn()


# The functions issue 3 requires (record.py checks each is called by some case).
ISSUE_FUNCTIONS = """
sumSeries averageSeries maxSeries minSeries diffSeries multiplySeries countSeries divideSeries
divideSeriesLists asPercent sumSeriesWithWildcards averageSeriesWithWildcards groupByNode
groupByNodes group aggregate scale scaleToSeconds offset absolute invert pow squareRoot logarithm
derivative nonNegativeDerivative perSecond integral movingAverage movingMedian movingSum movingMin
movingMax movingWindow summarize hitcount smartSummarize keepLastValue transformNull timeShift
delay consolidateBy isNonNull changed nPercentile percentileOfSeries holtWintersForecast
holtWintersConfidenceBands holtWintersAberration constantLine threshold removeBelowValue
removeAboveValue removeBelowPercentile removeAbovePercentile highestCurrent highestAverage
highestMax lowestCurrent lowestAverage currentAbove currentBelow averageAbove averageBelow
maximumAbove maximumBelow minimumAbove limit sortByMaxima sortByMinima sortByName sortByTotal
mostDeviant exclude grep removeEmptySeries alias aliasByNode aliasByMetric aliasSub legendValue
color lineWidth dashed stacked secondYAxis
""".split()
