//! Faulty receivers: a peer that accepts and never reads, then resets; a peer that closes with
//! unread data, twenty times; a real carbon-cache stalled and restarted under load. Lines
//! leave the sender only once the peer has read them, so each case counts every line: lines
//! produced = lines received (distinct) + lines the sender counted as dropped (none here),
//! with duplicates only within the documented window. Waits are bounded; no duration is
//! asserted.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use collector::sender::{self, Chunk, FsyncPolicy, SenderConfig, SenderHandle};
use common::receiver::Sink;
use common::wait_until;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const LIMIT: Duration = Duration::from_secs(90);

fn config(port: u16, spool: &std::path::Path) -> SenderConfig {
    SenderConfig {
        destinations: vec![format!("127.0.0.1:{port}")],
        spool_dir: Some(spool.into()),
        reconnect_min: Duration::from_millis(20),
        reconnect_max: Duration::from_millis(200),
        write_timeout: Duration::from_secs(1),
        replay_lines_per_second: 0,
        fsync: FsyncPolicy::Never,
        ..SenderConfig::default()
    }
}

/// Numbered lines `test.faults.m<i % 10> <i> <base + i / 10>`: each (metric, timestamp) once.
struct Producer {
    produced: Vec<String>,
    base: i64,
}

impl Producer {
    fn new(base: i64) -> Producer {
        Producer {
            produced: Vec::new(),
            base,
        }
    }

    fn chunk(&mut self, lines: u32) -> Chunk {
        let mut data = Vec::new();
        for _ in 0..lines {
            let i = self.produced.len();
            let line = format!("test.faults.m{} {i} {}", i % 10, self.base + i as i64 / 10);
            data.extend_from_slice(line.as_bytes());
            data.push(b'\n');
            self.produced.push(line);
        }
        Chunk { data, lines }
    }

    /// Submit `chunks` chunks of 20 lines, one every millisecond.
    async fn send(&mut self, h: &SenderHandle, chunks: usize) {
        for _ in 0..chunks {
            h.submit(self.chunk(20));
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// Read lines from `s` into `sink` until EOF or an error.
async fn read_all(s: TcpStream, sink: Sink) {
    let mut lines = BufReader::new(s).lines();
    while let Ok(Some(l)) = lines.next_line().await {
        sink.push(l);
    }
}

/// Every produced line arrived, nothing was counted as dropped or sent twice in the counters,
/// and the duplicates stay within `bound` lines.
fn check(sink: &Sink, p: &Producer, h: &SenderHandle, bound: usize) {
    let valid: HashSet<&str> = p.produced.iter().map(String::as_str).collect();
    let got = sink.lines();
    // A line cut by a reset is not a line carbon would accept; neither do we.
    let whole: Vec<&String> = got.iter().filter(|l| valid.contains(l.as_str())).collect();
    let distinct: HashSet<&str> = whole.iter().map(|l| l.as_str()).collect();
    let missing = p.produced.len() - distinct.len();
    let gone: Vec<usize> = p
        .produced
        .iter()
        .enumerate()
        .filter(|(_, l)| !distinct.contains(l.as_str()))
        .map(|(i, _)| i)
        .collect();
    if !gone.is_empty() {
        let runs: Vec<(usize, usize)> = gone.iter().fold(Vec::new(), |mut v, &i| {
            match v.last_mut() {
                Some((_, end)) if *end + 1 == i => *end = i,
                _ => v.push((i, i)),
            }
            v
        });
        eprintln!("missing line numbers (runs): {runs:?}");
    }
    let s = h.stats();
    assert_eq!(
        (missing as u64, s.lines_dropped),
        (0, 0),
        "lines produced {} = received {} + dropped {}",
        p.produced.len(),
        distinct.len(),
        s.lines_dropped
    );
    assert_eq!(
        s.lines_sent,
        p.produced.len() as u64,
        "each line counted sent once"
    );
    let dups = whole.len() - distinct.len();
    assert!(dups <= bound, "{dups} duplicate lines, more than {bound}");
}

/// Lines are at least 26 bytes: at most this many lines fit in `bytes`.
fn lines_in(bytes: u64) -> usize {
    (bytes / 26) as usize
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_reads_then_resets_loses_nothing() {
    let spool = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let h = sender::spawn(config(port, spool.path())).unwrap();
    let base = now() - 3000;
    let mut p = Producer::new(base);

    // The first connection is accepted and never read: the sender's writes stall, nothing is
    // released, and after write_timeout it tries again (into the accept queue, not read
    // either).
    let (stalled, _) = listener.accept().await.unwrap();
    p.send(&h, 600).await; // 12,000 lines, ~400 KB
    wait_until(
        "the sender gave up on the stalled connection",
        LIMIT,
        || h.stats().reconnects >= 1,
    )
    .await;
    assert_eq!(
        h.stats().lines_sent,
        0,
        "nothing was read, nothing counts as sent"
    );
    // Reset it: what sat in its receive buffer is gone. (A zero linger does not block.)
    #[allow(deprecated)]
    stalled.set_linger(Some(Duration::ZERO)).unwrap();
    drop(stalled);

    // From now on the peer reads every connection, in accept order.
    let sink = Sink::default();
    let serving = Arc::new(AtomicBool::new(true));
    let server = {
        let (sink, serving) = (sink.clone(), serving.clone());
        tokio::spawn(async move {
            while serving.load(Ordering::Relaxed) {
                let Ok(Ok((s, _))) =
                    tokio::time::timeout(Duration::from_millis(100), listener.accept()).await
                else {
                    continue;
                };
                tokio::spawn(read_all(s, sink.clone()));
            }
        })
    };
    p.send(&h, 100).await;
    wait_until("every line delivered and released", LIMIT, || {
        let s = h.stats();
        s.lines_sent == p.produced.len() as u64 && s.spool_lines == 0 && s.queued_lines == 0
    })
    .await;
    let s = h.stats();
    // Each abandoned connection may have had everything in flight read later.
    let bound = (s.reconnects as usize + 1) * lines_in((1 << 20) + (64 << 10));
    check(&sink, &p, &h, bound);
    serving.store(false, Ordering::Relaxed);
    h.shutdown(Duration::from_secs(5)).await.unwrap();
    let _ = server.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_closing_with_unread_data_twenty_times_loses_nothing() {
    let spool = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let sink = Sink::default();
    let closes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let server = {
        let (sink, closes) = (sink.clone(), closes.clone());
        tokio::spawn(async move {
            loop {
                let (s, _) = listener.accept().await.unwrap();
                if closes.load(Ordering::Relaxed) >= 20 {
                    tokio::spawn(read_all(s, sink.clone()));
                    continue;
                }
                // Read for a while, stop reading, then close with what arrived meanwhile
                // still unread (the kernel answers with a reset).
                let mut r = BufReader::new(s);
                let read_for = Duration::from_millis(50 + fastrand::u64(0..100));
                let _ = tokio::time::timeout(read_for, async {
                    let mut line = String::new();
                    loop {
                        line.clear();
                        match r.read_line(&mut line).await {
                            Ok(0) | Err(_) => break,
                            Ok(_) => {
                                if let Some(l) = line.strip_suffix('\n') {
                                    sink.push(l.to_string());
                                }
                            }
                        }
                    }
                })
                .await;
                // What the reader had taken from the socket was read: keep its whole lines
                // (a real carbon processes what it read). A cut line comes again whole, with
                // the batch it belongs to.
                let buffered = String::from_utf8_lossy(r.buffer()).into_owned();
                let mut whole = buffered.split('\n').collect::<Vec<_>>();
                whole.pop();
                for l in whole {
                    sink.push(l.to_string());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                let mut rest = [0u8; 1];
                // Make sure something is unread: wait (bounded) until a byte is there.
                let s = r.into_inner();
                let _ = tokio::time::timeout(Duration::from_secs(2), s.peek(&mut rest)).await;
                drop(s);
                closes.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let h = sender::spawn(config(port, spool.path())).unwrap();
    // Timestamps go one per 10 lines from an hour ago: at most 35,000 lines fit.
    let mut p = Producer::new(now() - 3500);
    while closes.load(Ordering::Relaxed) < 20 {
        p.send(&h, 5).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            p.produced.len() < 34_000,
            "twenty closes take too many lines"
        );
    }
    p.send(&h, 50).await;
    wait_until("every line delivered and released", LIMIT, || {
        let s = h.stats();
        s.lines_sent == p.produced.len() as u64 && s.spool_lines == 0 && s.queued_lines == 0
    })
    .await;
    let bound = 21 * lines_in((1 << 20) + (64 << 10));
    check(&sink, &p, &h, bound);
    h.shutdown(Duration::from_secs(5)).await.unwrap();
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carbon_cache_stalled_and_restarted_under_load_stores_every_line() {
    let mut carbon = tokio::task::block_in_place(common::carbon::Carbon::start);
    let spool = tempfile::tempdir().unwrap();
    let h = sender::spawn(config(carbon.port, spool.path())).unwrap();
    let mut p = Producer::new(now() - 3000);
    for round in 0..3 {
        p.send(&h, 150).await;
        // Carbon stops reading (SIGSTOP) while lines keep coming, then is restarted: it
        // closes its connections with unread data.
        carbon.signal(libc::SIGSTOP);
        p.send(&h, 150).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        // It resumes and, while lines keep coming, is restarted: it shuts its connections
        // down (FIN) and closes them over what it has not read (reset).
        carbon.signal(libc::SIGCONT);
        p.send(&h, 50).await;
        tokio::task::block_in_place(|| carbon.restart());
        assert!(round < 3);
    }
    p.send(&h, 150).await;
    wait_until("every line released", LIMIT, || {
        let s = h.stats();
        s.lines_sent == p.produced.len() as u64 && s.spool_lines == 0 && s.queued_lines == 0
    })
    .await;
    let s = h.stats();
    assert_eq!(s.lines_dropped, 0);
    // Count what carbon stored: one point per line, its value the line's number.
    let want = p.produced.len();
    // Carbon writes its cache to whisper in the background: poll (bounded) until every point
    // is there, then report exactly what is missing.
    let stored_points = || {
        let mut got = Vec::new();
        for m in 0..10 {
            let path = carbon.wsp_path(&format!("test.faults.m{m}"));
            if !path.exists() {
                continue;
            }
            for (ts, v) in common::carbon::whisper_fetch(&path) {
                if let Some(v) = v {
                    got.push((m, ts, v as usize));
                }
            }
        }
        got
    };
    let end = std::time::Instant::now() + LIMIT;
    let got = loop {
        let got = tokio::task::block_in_place(stored_points);
        if got.len() >= want || std::time::Instant::now() > end {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    for (m, ts, i) in &got {
        assert_eq!(i % 10, *m, "test.faults.m{m} at {ts}: {i}");
        assert_eq!(
            *ts,
            p.base + (i / 10) as i64,
            "test.faults.m{m}: {i} at {ts}"
        );
    }
    let have: HashSet<usize> = got.iter().map(|(_, _, i)| *i).collect();
    let missing: Vec<usize> = (0..want).filter(|i| !have.contains(i)).collect();
    assert!(
        missing.is_empty(),
        "lines produced {want} = points stored by carbon {} + lines dropped (0); missing {} from line {:?} to {:?}\ncarbon log:\n{}",
        have.len(),
        missing.len(),
        missing.first(),
        missing.last(),
        carbon.log()
    );
    h.shutdown(Duration::from_secs(5)).await.unwrap();
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
