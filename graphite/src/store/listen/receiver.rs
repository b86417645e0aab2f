//! The receiver: one connection's (or UDP socket's) bytes parsed into a batch of points and
//! cached, with what the connection sent before ([`Recent`]).

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;

use super::bad_lines::{reject, BadLines};
use crate::protocol::{parse_line, parse_next_line, parse_value_ts, MAX_LINE_LEN};
use crate::store::{same_bytes, Point, Recent, SeriesRef, Store};

/// What a carbon listener does with the bytes it reads, for one connection (or one UDP
/// socket): parse the lines, cache their points, count and log the bad ones. It keeps what
/// the connection sent before ([`Recent`]) and its batch allocations from one read to the
/// next. Public for benchmarks and for embedders that receive lines their own way.
pub struct Receiver<'a> {
    store: &'a Store,
    bad: &'a BadLines,
    pub(super) peer: SocketAddr,
    recent: Recent,
    /// The points of the lines parsed last (paths as offsets into the bytes read).
    pub(super) batch: Vec<Point>,
    /// Indexes in `batch` of points whose series the connection had not sent before.
    unknown: Vec<u32>,
    /// Some points of `batch` are deferred (their values not read yet).
    deferred: bool,
    /// The allocations of a batch that was cached, for the next one.
    spare: Option<(Vec<Point>, Vec<u32>)>,
}

impl<'a> Receiver<'a> {
    /// Lines from `peer` (named in the log of bad lines), cached in `store`.
    pub fn new(store: &'a Store, bad: &'a BadLines, peer: SocketAddr) -> Receiver<'a> {
        Receiver {
            store,
            bad,
            peer,
            recent: Recent::new(store),
            batch: Vec::new(),
            unknown: Vec::new(),
            deferred: false,
            spare: None,
        }
    }

    /// Let go of the spare batch allocations (a bulk sender slowed down).
    pub(super) fn shrink(&mut self) {
        self.spare = None;
    }

    /// The parsed batch, its list of unknown series and whether some of its points are
    /// deferred, taken out for caching.
    pub(super) fn take_parsed(&mut self) -> (Vec<Point>, Vec<u32>, bool) {
        (
            std::mem::take(&mut self.batch),
            std::mem::take(&mut self.unknown),
            std::mem::take(&mut self.deferred),
        )
    }

    /// Handle the complete lines in `buf` (received at `now`), returning how many bytes were
    /// consumed: up to and including the last newline. The whole buffer is parsed first,
    /// then cached as one batch (each shard locked once).
    pub fn lines(&mut self, buf: &[u8], now: i64) -> usize {
        let used = self.parse(buf, false);
        self.cache_parsed(&buf[..used], now);
        used
    }

    /// Cache the batch just parsed from `text` here, on this thread.
    pub(super) fn cache_parsed(&mut self, text: &[u8], now: i64) {
        let (mut batch, unknown, deferred) = self.take_parsed();
        cache(
            self.store, self.bad, self.peer, text, &mut batch, now, deferred,
        );
        self.parsed_cached(text, batch, unknown);
    }

    /// Parse the complete lines in `buf` into the batch (empty before), returning how many
    /// bytes that is: up to and including the last newline. Bad lines are counted and
    /// logged.
    ///
    /// A line of the series the connection is expected to send next ([`Recent`]) is
    /// matched by its bytes and only its value and timestamp are read, or with `defer`
    /// not even those: the point is marked deferred, for [`finish_lines`] on the thread
    /// that caches the batch (a connection handing its reads to the [`Cacher`] parses
    /// its next read meanwhile: this evens out the two threads' work). Any other line is
    /// parsed whole. Either way the point is the one [`parse_line`] gives.
    pub(super) fn parse(&mut self, buf: &[u8], defer: bool) -> usize {
        let Some(last) = memchr::memrchr(b'\n', buf) else {
            return 0;
        };
        let end = last + 1;
        let buf = &buf[..end];
        if self.batch.capacity() == 0 {
            if let Some((batch, unknown)) = self.spare.take() {
                (self.batch, self.unknown) = (batch, unknown);
            }
        }
        let (batch, recent) = (&mut self.batch, &mut self.recent);
        batch.reserve(end / 32);
        let began = recent.begin_read();
        let mut remembering = began;
        let mut at = 0;
        while at < end {
            // Lines in no stable order: parse the rest of the read plainly.
            remembering &= !recent.unpredictable();
            if let Some((path, series)) = recent.expected().filter(|_| remembering) {
                let after = at + path.len();
                if buf.get(after) == Some(&b' ') && same_bytes(&buf[at..after], path) {
                    if defer {
                        // `buf` ends with a newline.
                        let n = memchr::memchr(b'\n', &buf[after + 1..]).unwrap_or(0);
                        let nl = after + 1 + n;
                        if nl - at <= MAX_LINE_LEN {
                            batch.push(Point {
                                hash: 0,
                                off: (after + 1) as u32,
                                len: n as u32,
                                value: 0.0,
                                ts: 0,
                                series,
                                line: at as u32,
                                created: false,
                                deferred: true,
                            });
                            self.deferred = true;
                            recent.advance();
                            at = nl + 1;
                            continue;
                        }
                    }
                    // The rest ends at a newline at the latest (`buf` ends with one).
                    if let Some((value, ts, n)) = parse_value_ts(&buf[after + 1..]) {
                        let nl = after + 1 + n;
                        if nl - at <= MAX_LINE_LEN {
                            batch.push(Point {
                                hash: 0,
                                off: 0,
                                len: 0,
                                value,
                                ts,
                                series,
                                line: 0,
                                created: false,
                                deferred: false,
                            });
                            recent.advance();
                            at = nl + 1;
                            continue;
                        }
                    }
                }
            }
            // The common line is parsed in one pass that finds its end too.
            let (parsed, nl) = match parse_next_line(&buf[at..]) {
                Some((l, n)) => (Ok(l), at + n),
                None => {
                    let nl = memchr::memchr(b'\n', &buf[at..]).map_or(end, |n| at + n);
                    (parse_line(&buf[at..nl]), nl)
                }
            };
            let line = &buf[at..nl];
            match parsed {
                Ok(l) => {
                    let hash = self.store.hash_path(l.path);
                    let mut series = SeriesRef::NONE;
                    if remembering {
                        series = recent.find(hash, l.path);
                        if series.is_none() {
                            self.unknown.push(batch.len() as u32);
                        }
                    }
                    // The path is a part of `line`: the parser borrows, never copies.
                    let off = (l.path.as_ptr() as usize).wrapping_sub(buf.as_ptr() as usize);
                    debug_assert!(off + l.path.len() <= end);
                    batch.push(Point {
                        hash,
                        off: off as u32,
                        len: l.path.len() as u32,
                        value: l.value,
                        ts: l.timestamp,
                        series,
                        line: 0,
                        created: false,
                        deferred: false,
                    });
                }
                Err(e) => reject(self.bad, self.peer, line, e),
            }
            at = nl + 1;
        }
        if began {
            recent.end_read();
        }
        end
    }

    /// A batch parsed from `text` (`unknown`: the indexes of its points whose series the
    /// connection had not sent before) is cached: remember those series, in the order they
    /// came, and keep the allocations.
    pub(super) fn parsed_cached(
        &mut self,
        text: &[u8],
        mut batch: Vec<Point>,
        mut unknown: Vec<u32>,
    ) {
        for &i in unknown.iter() {
            if let Some(p) = batch.get(i as usize) {
                self.recent
                    .remember(p.hash, p.path(text), p.series, p.created);
            }
        }
        if batch.capacity() <= MAX_SPARE {
            batch.clear();
            unknown.clear();
            self.spare = Some((batch, unknown));
        }
    }

    /// Handle one line without its newline (the last one of a connection, or of a
    /// datagram).
    pub fn last_line(&mut self, line: &[u8], now: i64) {
        match parse_line(line) {
            Ok(l) => {
                self.store
                    .cache_by_path([(l.path, l.value, l.timestamp)], now);
                self.store.stats.points_received.fetch_add(1, Relaxed);
            }
            Err(e) => reject(self.bad, self.peer, line, e),
        }
    }
}

/// Read the values and timestamps of the deferred points of `batch` (parsed from `text` by
/// [`Receiver::parse`]). A line whose rest is not what [`parse_value_ts`] reads is parsed
/// whole by [`parse_line`], as [`Receiver::parse`] does; a bad one is counted and logged
/// and its point emptied (not cached). Returns how many lines were bad.
fn finish_lines(bad: &BadLines, peer: SocketAddr, text: &[u8], batch: &mut [Point]) -> u64 {
    let mut rejected = 0;
    for p in batch.iter_mut().filter(|p| p.deferred) {
        p.deferred = false;
        let (start, off, len) = (p.line as usize, p.off as usize, p.len as usize);
        let rest = text.get(off..off + len).unwrap_or_default();
        if let Some((value, ts, n)) = parse_value_ts(rest).filter(|&(_, _, n)| n == len) {
            debug_assert_eq!(n, len);
            (p.value, p.ts) = (value, ts);
            continue;
        }
        let line = text.get(start..off + len).unwrap_or_default();
        match parse_line(line) {
            Ok(l) => (p.value, p.ts) = (l.value, l.timestamp),
            Err(e) => {
                reject(bad, peer, line, e);
                rejected += 1;
                (p.series, p.off, p.len) = (SeriesRef::NONE, 0, 0);
            }
        }
    }
    rejected
}

/// Cache `batch` (parsed from `text` by a [`Receiver`] of `peer`; with `deferred`, some
/// points are, and [`finish_lines`] reads them first) and count its points as received,
/// less the bad lines among the deferred ones (not cached).
pub(super) fn cache(
    store: &Store,
    bad: &BadLines,
    peer: SocketAddr,
    text: &[u8],
    batch: &mut [Point],
    now: i64,
    deferred: bool,
) {
    if batch.is_empty() {
        return;
    }
    let rejected = match deferred {
        true => finish_lines(bad, peer, text, batch),
        false => 0,
    };
    // Counted once cached: whoever sees the count can query the points.
    store.cache_batch(text, batch, now);
    store
        .stats
        .points_received
        .fetch_add(batch.len() as u64 - rejected, Relaxed);
}

/// A spare batch allocation larger than this (entries) is not kept between reads.
const MAX_SPARE: usize = 16 * 1024;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::schema::Schemas;
    use proptest::prelude::*;
    use std::collections::HashMap;

    /// Parse `text` in reads cut at `cuts` (bytes per read, cycled) through `rx`, caching
    /// each read; returns the points as `(path, value bits, timestamp)`, paths of points
    /// cached by reference named through `names` (filled from the points cached by path),
    /// and how many lines were matched by their bytes. With `defer`, values of matched
    /// lines are read by [`finish_lines`], as on the cacher thread.
    fn receive(
        rx: &mut Receiver<'_>,
        names: &mut HashMap<SeriesRef, String>,
        text: &[u8],
        cuts: &[usize],
        defer: bool,
    ) -> (Vec<(String, u64, i64)>, usize) {
        // As a listener: each read appends to what is left of the last one.
        let (mut got, mut rest, mut filled, mut k) = (Vec::new(), text.to_vec(), 0, 0);
        let mut matched = 0;
        loop {
            filled = rest.len().min(filled + cuts[k % cuts.len()]);
            k += 1;
            let used = rx.parse(&rest[..filled], defer);
            let (mut batch, unknown, deferred) = rx.take_parsed();
            assert!(defer || !deferred);
            let by_bytes: Vec<bool> = batch
                .iter()
                .map(|p| p.deferred || (p.len == 0 && !p.series.is_none()))
                .collect();
            let now = 1_700_000_000;
            cache(
                rx.store,
                rx.bad,
                rx.peer,
                &rest[..used],
                &mut batch,
                now,
                deferred,
            );
            for (p, by_bytes) in batch.iter().zip(by_bytes) {
                if p.series.is_none() && p.len == 0 {
                    continue; // a bad line (deferred, then rejected)
                }
                let path = match names.get(&p.series) {
                    Some(name) if by_bytes => {
                        matched += 1;
                        name.clone()
                    }
                    _ => p.path(&rest[..used]).to_string(),
                };
                if !p.series.is_none() {
                    names.entry(p.series).or_insert(path.clone());
                }
                got.push((path, p.value.to_bits(), p.ts));
            }
            rx.parsed_cached(&rest[..used], batch, unknown);
            rest.drain(..used);
            filled -= used;
            if filled == rest.len() && used == 0 {
                break;
            }
        }
        (got, matched)
    }

    /// What `parse_line` makes of each complete line of `text`.
    fn parsed(text: &[u8]) -> Vec<(String, u64, i64)> {
        let end = text.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
        text[..end]
            .split(|&b| b == b'\n')
            .filter_map(|l| parse_line(l).ok())
            .map(|l| (l.path.to_string(), l.value.to_bits(), l.timestamp))
            .collect()
    }

    fn test_store(rt: &tokio::runtime::Runtime, dir: &std::path::Path) -> Store {
        let schemas =
            Schemas::parse("[all]\npattern = .*\nretentions = 1s:100y\n", "s", "", "a").unwrap();
        rt.block_on(Store::open(dir, schemas, u64::MAX)).unwrap()
    }

    /// A connection that sends its series in the same order every interval is followed
    /// (lines matched by bytes); one that inserts, drops, reorders or respells lines is
    /// resynchronised; every point is what `parse_line` gives, in order.
    #[test]
    fn remembered_lines_parse_as_parse_line_does() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = test_store(&rt, dir.path());
        let bad = BadLines::default();
        let peer = SocketAddr::from(([127, 0, 0, 1], 9));
        let interval = |t: i64, names: &[&str]| -> String {
            names
                .iter()
                .enumerate()
                .map(|(i, n)| format!("{n} {}.5 {t}\n", i as i64 + t))
                .collect()
        };
        let abc = ["a.b", "a.c", "a.d", "x"];
        let names: Vec<String> = (0..200).map(|i| format!("m.s{i}")).collect();
        let many: Vec<&str> = names.iter().map(String::as_str).collect();
        let stride: Vec<&str> = (0..200).map(|i| many[(i * 7) % 200]).collect();
        let cases: &[(&str, String)] = &[
            ("same order", interval(100, &abc) + &interval(110, &abc)),
            (
                "new series inserted",
                interval(120, &["a.b", "a.new", "a.c", "a.d", "x"]),
            ),
            ("series dropped", interval(130, &["a.b", "a.d", "x"])),
            ("reordered", interval(140, &["x", "a.d", "a.c", "a.b"])),
            (
                "other spellings of the rest",
                "a.b 1e3 150\na.c  2 150\na.d 3 150\r\nx nan 150\nx 4 150 5\na.b 5.25 150\n"
                    .to_string(),
            ),
            (
                "prefix of a remembered path",
                "a 1 160\na.b.c 2 160\na.bb 3 160\n".to_string(),
            ),
            (
                "tagged",
                "t;k=v 1 170\nt;k=v 2 171\na.b 3 172\n".to_string(),
            ),
            (
                // Jumps on every line: the memory stops after 32 and pauses.
                "no stable order",
                interval(180, &many) + &interval(190, &stride) + &interval(200, &many),
            ),
        ];
        for defer in [false, true] {
            let mut rx = Receiver::new(&store, &bad, peer);
            let mut names = HashMap::new();
            let mut good = 0;
            for (what, text) in cases {
                for cuts in [&[1 << 20][..], &[7, 13, 64]] {
                    let (got, matched) = receive(&mut rx, &mut names, text.as_bytes(), cuts, defer);
                    let want = parsed(text.as_bytes());
                    good += want.len() as u64;
                    assert_eq!(got, want, "{what}, reads of {cuts:?}, defer {defer}");
                    if *what == "same order" {
                        // Series are remembered once their read is cached: none matched in
                        // the first read, all 8 lines when sent again.
                        assert_eq!(matched, if cuts.len() == 1 { 0 } else { 8 }, "{what}");
                    }
                }
            }
            // Untagged paths only: a.b a.c a.d x a.new a a.b.c a.bb, and the 200.
            assert_eq!(rx.recent.len(), 208);
            // Bad lines (`x nan 150`, `x 4 150 5`) are not counted as received.
            assert_eq!(store.stats.points_received.swap(0, Relaxed), good);
        }
    }

    /// Lines of remembered series in no order, each read led by a new series (a shuffled
    /// stream, intervals mixed): the memory pauses as it does when every line is a jump,
    /// though `find` looks nothing up after a new series (the lookups are `remember`'s).
    #[test]
    fn a_shuffled_stream_with_new_series_pauses_the_memory() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = test_store(&rt, dir.path());
        let bad = BadLines::default();
        let mut rx = Receiver::new(&store, &bad, SocketAddr::from(([127, 0, 0, 1], 9)));
        let now = 1_700_000_000;
        let known: String = (0..5000).map(|s| format!("m.s{s} 1 100\n")).collect();
        rx.lines(known.as_bytes(), now);
        assert_eq!(rx.recent.len(), 5000);
        let mut paused = 0;
        for read in 0..20 {
            let mut text = format!("m.new{read} 1 110\n");
            for k in 0..200 {
                text += &format!("m.s{} 2 110\n", (k * 37 + read * 1009 + 1) % 5000);
            }
            let used = rx.lines(text.as_bytes(), now);
            assert_eq!(used, text.len());
            paused += usize::from(rx.recent.paused());
        }
        assert!(paused >= 10, "paused after {paused} of 20 reads");
        // Every point cached: 5000 + 20 × 201.
        assert_eq!(store.stats.points_received.load(Relaxed), 5000 + 20 * 201);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn same_bytes_is_slice_equality(a in prop::collection::vec(0u8..4, 0..40), flip in 0usize..48) {
            let mut b = a.clone();
            if let Some(x) = b.get_mut(flip) {
                *x ^= 1;
            }
            prop_assert_eq!(same_bytes(&a, &b), a == b);
            prop_assert!(same_bytes(&a, &a));
            prop_assert!(!same_bytes(&a, &a[..a.len().saturating_sub(1)]) || a.is_empty());
        }

        #[test]
        fn receiver_agrees_with_parse_line(
            lines in prop::collection::vec(
                (
                    prop::sample::select(vec!["a.b", "a.b.c", "a", "c.d", "t;k=v", "a..b"]),
                    "[ \t]{1,2}",
                    "-?[0-9]{0,22}[.]?[0-9]{0,20}|[-+0-9.eEnaif]{1,8}",
                    "[ \t]{1,2}",
                    "[0-9]{0,13}[.]?[0-9]{0,2}",
                    "[\r\n ]{0,2}\n",
                ),
                0..40,
            ),
            cuts in prop::collection::vec(1usize..300, 1..4),
        ) {
            let text: String = lines
                .iter()
                .map(|(p, s1, v, s2, t, end)| format!("{p}{s1}{v}{s2}{t}{end}"))
                .collect();
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let dir = tempfile::tempdir().unwrap();
            let store = test_store(&rt, dir.path());
            let bad = BadLines::default();
            for defer in [false, true] {
                let mut rx = Receiver::new(&store, &bad, SocketAddr::from(([127, 0, 0, 1], 9)));
                let mut names = HashMap::new();
                // Twice: the second time the series are remembered.
                for _ in 0..2 {
                    let (got, _) = receive(&mut rx, &mut names, text.as_bytes(), &cuts, defer);
                    let want = parsed(text.as_bytes());
                    prop_assert_eq!(store.stats.points_received.swap(0, Relaxed), want.len() as u64);
                    prop_assert_eq!(got, want);
                }
            }
        }
    }
}
