//! The sender loses nothing across receiver outages, shutdowns and abrupt stops. Real TCP
//! receivers on 127.0.0.1 count lines; waits are bounded, durations never asserted.

mod common;

use std::time::Duration;

use collector::sender::{self, Chunk, FsyncPolicy, SenderConfig, SenderHandle};
use common::receiver::{Receiver, Sink};
use common::{assert_lines_eq, free_port, wait_until};

const LIMIT: Duration = Duration::from_secs(60);

fn config(dests: &[u16], spool: Option<&std::path::Path>) -> SenderConfig {
    SenderConfig {
        destinations: dests.iter().map(|p| format!("127.0.0.1:{p}")).collect(),
        spool_dir: spool.map(Into::into),
        reconnect_min: Duration::from_millis(20),
        reconnect_max: Duration::from_millis(100),
        replay_lines_per_second: 50_000,
        fsync: FsyncPolicy::Never,
        ..SenderConfig::default()
    }
}

/// Produces numbered lines `test.outage.m<i%4> <i> <ts>` and remembers them.
#[derive(Default)]
struct Producer {
    produced: Vec<String>,
}

impl Producer {
    fn chunk(&mut self, lines: u32) -> Chunk {
        let mut data = Vec::new();
        for _ in 0..lines {
            let i = self.produced.len();
            let line = format!("test.outage.m{} {i} {}", i % 4, 1_700_000_000 + i);
            data.extend_from_slice(line.as_bytes());
            data.push(b'\n');
            self.produced.push(line);
        }
        Chunk { data, lines }
    }

    /// `chunks` chunks of 5 lines at a steady pace.
    async fn send(&mut self, h: &SenderHandle, chunks: usize) {
        for _ in 0..chunks {
            h.submit(self.chunk(5));
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_loses_nothing_and_the_spool_drains() {
    let spool = tempfile::tempdir().unwrap();
    let sink = Sink::default();
    let recv = Receiver::start(0, sink.clone()).await;
    let port = recv.port();
    let h = sender::spawn(config(&[port], Some(spool.path()))).unwrap();
    let mut p = Producer::default();

    p.send(&h, 50).await;
    // Received, and known to be: a stop with lines in flight would send them again.
    wait_until("lines before the outage", LIMIT, || {
        sink.len() == p.produced.len() && h.stats().inflight_lines == 0
    })
    .await;

    recv.stop().await;
    let before_outage = sink.len();
    p.send(&h, 100).await;
    wait_until("lines spooled during the outage", LIMIT, || {
        h.stats().spool_lines == 500
    })
    .await;
    assert_eq!(sink.len(), before_outage, "receiver is down");

    let recv = Receiver::start(port, sink.clone()).await;
    p.send(&h, 50).await;
    wait_until("everything delivered and the spool drained", LIMIT, || {
        let s = h.stats();
        sink.len() >= p.produced.len()
            && s.spool_bytes == 0
            && s.queued_lines == 0
            && s.inflight_lines == 0
    })
    .await;

    // Exactly once, in order.
    assert_lines_eq(&sink.lines(), &p.produced, "received");
    let s = h.stats();
    assert_eq!(s.lines_sent, p.produced.len() as u64);
    assert_eq!(s.lines_dropped, 0);
    assert_eq!(s.spool_lines, 0);
    assert!(s.reconnects >= 1);
    h.shutdown(Duration::from_secs(5)).await.unwrap();
    recv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spool_survives_shutdown_and_is_replayed_by_the_next_sender() {
    let spool = tempfile::tempdir().unwrap();
    let port = free_port();
    let h = sender::spawn(config(&[port], Some(spool.path()))).unwrap();
    let mut p = Producer::default();
    p.send(&h, 40).await;
    let watcher = h.clone();
    h.shutdown(Duration::from_millis(500)).await.unwrap();
    let s = watcher.stats();
    assert_eq!(s.spool_lines, 200);
    assert!(s.spool_bytes > 0);
    assert_eq!((s.queued_lines, s.lines_dropped, s.lines_sent), (0, 0, 0));
    // Lines submitted after shutdown are counted, not silently lost.
    watcher.submit(Chunk {
        data: b"late 1 1\n".to_vec(),
        lines: 1,
    });
    assert_eq!(watcher.stats().lines_dropped, 1);
    drop(watcher);

    let sink = Sink::default();
    let recv = Receiver::start(port, sink.clone()).await;
    let h = sender::spawn(config(&[port], Some(spool.path()))).unwrap();
    p.send(&h, 10).await;
    wait_until("spooled lines replayed after restart", LIMIT, || {
        sink.len() >= p.produced.len() && h.stats().spool_bytes == 0
    })
    .await;
    assert_lines_eq(&sink.lines(), &p.produced, "received");
    h.shutdown(Duration::from_secs(5)).await.unwrap();
    recv.stop().await;
}

/// The replay pace (`replay_lines_per_second`, docs/sender.md): spooled lines go at most that
/// fast, paced per batch (a batch goes, then the sender waits its share of time). Checked as
/// bounds a slow machine can only make easier, never as a duration it must meet: lines
/// received by any moment ≤ rate × time since the receiver started + one batch, sampled every
/// 10 ms throughout the replay (received ≤ sent, and the first send comes after the start).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_goes_at_most_replay_lines_per_second() {
    const RATE: u64 = 2_000;
    const BATCH: u64 = 4096;
    let spool = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = SenderConfig {
        replay_lines_per_second: RATE,
        batch_bytes: BATCH,
        ..config(&[port], Some(spool.path()))
    };
    let h = sender::spawn(cfg).unwrap();
    let mut p = Producer::default();
    for _ in 0..300 {
        h.submit(p.chunk(20));
    }
    let n = p.produced.len();
    wait_until(
        "every line spooled while the receiver is down",
        LIMIT,
        || h.stats().spool_lines == n as u64,
    )
    .await;
    // A batch holds whole chunks of at most BATCH bytes (a chunk here is ~600 bytes).
    let shortest = p.produced.iter().map(|l| l.len() + 1).min().unwrap() as u64;
    let batch_lines = BATCH / shortest;

    let sink = Sink::default();
    let start = tokio::time::Instant::now();
    let recv = Receiver::start(port, sink.clone()).await;
    let mut samples = 0;
    loop {
        let got = sink.len() as u64;
        let allowed = (RATE as f64 * start.elapsed().as_secs_f64()) as u64 + batch_lines;
        assert!(
            got <= allowed,
            "{got} lines received {:?} after the receiver started: the pace allows {allowed}",
            start.elapsed()
        );
        samples += 1;
        if got == n as u64 {
            break;
        }
        assert!(start.elapsed() < LIMIT, "replay incomplete: {got} of {n}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The last sample says the replay took at least (n - one batch) / rate.
    assert!(
        samples > 1,
        "the whole replay arrived before the first sample"
    );
    assert_lines_eq(&sink.lines(), &p.produced, "replayed");
    h.shutdown(Duration::from_secs(5)).await.unwrap();
    recv.stop().await;
}

/// Child half of `spool_survives_kill_9`: spool 150 lines, say so, then wait to be killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by spool_survives_kill_9 in a child process"]
async fn kill_9_child() {
    let (Ok(dir), Ok(port)) = (
        std::env::var("SPOOL_CHILD_DIR"),
        std::env::var("SPOOL_CHILD_PORT"),
    ) else {
        return; // run directly (e.g. --include-ignored): nothing to do
    };
    let port: u16 = port.parse().unwrap();
    let h = sender::spawn(config(&[port], Some(std::path::Path::new(&dir)))).unwrap();
    let mut p = Producer::default();
    p.send(&h, 30).await;
    wait_until("lines spooled", LIMIT, || h.stats().spool_lines == 150).await;
    println!("SPOOLED {}", p.produced.len());
    tokio::time::sleep(Duration::from_secs(600)).await;
}

/// A sender process killed with SIGKILL (no shutdown, no fsync by the sender) while its
/// destination is down: a new sender on the same spool delivers every line once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spool_survives_kill_9() {
    use std::io::BufRead;
    let spool = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "kill_9_child", "--ignored", "--nocapture"])
        .env("SPOOL_CHILD_DIR", spool.path())
        .env("SPOOL_CHILD_PORT", port.to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let said = tokio::task::spawn_blocking(move || {
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find(|l| l.starts_with("SPOOLED"))
    });
    let said = tokio::time::timeout(LIMIT, said).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_eq!(said.unwrap().unwrap().as_deref(), Some("SPOOLED 150"));

    let mut p = Producer::default();
    for _ in 0..30 {
        p.chunk(5);
    }
    let sink = Sink::default();
    let recv = Receiver::start(port, sink.clone()).await;
    let h = sender::spawn(config(&[port], Some(spool.path()))).unwrap();
    wait_until("replay after kill -9", LIMIT, || {
        sink.len() >= p.produced.len() && h.stats().spool_bytes == 0
    })
    .await;
    assert_lines_eq(&sink.lines(), &p.produced, "received");
    assert_eq!(h.stats().lines_dropped, 0);
    h.shutdown(Duration::from_secs(5)).await.unwrap();
    recv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_destination_does_not_hold_back_the_up_one() {
    let spool = tempfile::tempdir().unwrap();
    let (sink_a, sink_b) = (Sink::default(), Sink::default());
    let recv_a = Receiver::start(0, sink_a.clone()).await;
    let port_b = free_port();
    let h = sender::spawn(config(&[recv_a.port(), port_b], Some(spool.path()))).unwrap();
    let mut p = Producer::default();
    p.send(&h, 60).await;
    wait_until("the up destination has everything", LIMIT, || {
        sink_a.len() == p.produced.len()
    })
    .await;
    assert_lines_eq(&sink_a.lines(), &p.produced, "received");
    assert_eq!(sink_b.len(), 0);
    // The up one's lines leave its spool once it has read them.
    wait_until("only the down one's lines are spooled", LIMIT, || {
        h.stats().spool_lines == 300
    })
    .await;

    let recv_b = Receiver::start(port_b, sink_b.clone()).await;
    wait_until("the other destination catches up", LIMIT, || {
        sink_b.len() >= p.produced.len()
            && h.stats().spool_bytes == 0
            && h.stats().inflight_lines == 0
    })
    .await;
    assert_lines_eq(&sink_b.lines(), &p.produced, "received");
    assert_lines_eq(&sink_a.lines(), &p.produced, "no duplicates on the up one");
    assert_eq!(h.stats().lines_sent, 2 * p.produced.len() as u64);
    h.shutdown(Duration::from_secs(5)).await.unwrap();
    recv_a.stop().await;
    recv_b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_spool_the_memory_queue_bridges_an_outage() {
    let port = free_port();
    let h = sender::spawn(config(&[port], None)).unwrap();
    let mut p = Producer::default();
    p.send(&h, 20).await;
    assert_eq!(h.stats().queued_lines, 100);
    let sink = Sink::default();
    let recv = Receiver::start(port, sink.clone()).await;
    wait_until("queued lines delivered", LIMIT, || {
        sink.len() >= p.produced.len()
    })
    .await;
    assert_lines_eq(&sink.lines(), &p.produced, "received");
    wait_until("queue empty", LIMIT, || {
        h.stats().queued_lines == 0 && h.stats().inflight_lines == 0
    })
    .await;
    h.shutdown(Duration::from_secs(5)).await.unwrap();
    recv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spool_cap_drops_the_oldest_and_counts_them() {
    let spool = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = SenderConfig {
        spool_max_bytes: 8 << 10,
        ..config(&[port], Some(spool.path()))
    };
    let h = sender::spawn(cfg).unwrap();
    let mut p = Producer::default();
    p.send(&h, 200).await; // ~1000 lines, ~35 KB: far over the cap
    let s = h.stats();
    assert!(s.lines_dropped > 0);
    assert!(s.spool_bytes <= 8 << 10);
    let kept = s.spool_lines;
    assert_eq!(kept + s.lines_dropped, 1000);

    let sink = Sink::default();
    let recv = Receiver::start(port, sink.clone()).await;
    wait_until("the newest lines delivered", LIMIT, || {
        sink.len() as u64 >= kept && h.stats().spool_bytes == 0
    })
    .await;
    // What survives is the newest lines, in order.
    assert_lines_eq(
        &sink.lines(),
        &p.produced[(1000 - kept as usize)..],
        "newest lines",
    );
    h.shutdown(Duration::from_secs(5)).await.unwrap();
    recv.stop().await;
}

/// Carbon under flow control stops reading: the write times out, the connection is replaced,
/// and once reading resumes every line arrives, in order, duplicates limited to the one batch
/// whose write timed out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_stops_reading_triggers_write_timeout_and_retry() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.bind(([127, 0, 0, 1], 0).into()).unwrap();
    let listener = sock.listen(16).unwrap();
    let port = listener.local_addr().unwrap().port();
    let cfg = SenderConfig {
        write_timeout: Duration::from_millis(200),
        batch_bytes: 16 << 10,
        inflight_max_bytes: 64 << 10,
        queue_max_bytes: 64 << 20,
        ..config(&[port], None)
    };
    let h = sender::spawn(cfg).unwrap();
    let (stalled, _) = listener.accept().await.unwrap();
    let mut p = Producer::default();
    // ~7 MB: more than the socket buffers hold (4 MiB send buffer at most on Linux); the
    // receiver reads nothing.
    for _ in 0..2000 {
        h.submit(p.chunk(100));
    }
    wait_until(
        "a write timed out and the sender reconnected",
        LIMIT,
        || h.stats().reconnects >= 1,
    )
    .await;
    // Resume: first what reached the stalled connection, then the new one.
    let mut received = Vec::new();
    let mut lines = BufReader::new(stalled).lines();
    while let Ok(Some(l)) = lines.next_line().await {
        received.push(l);
    }
    let want = p.produced.len();
    // The partial line at the cut of a timed-out write is not a valid line: carbon drops it,
    // and so do we.
    let valid: std::collections::HashSet<String> = p.produced.iter().cloned().collect();
    let mut distinct: std::collections::HashSet<String> = received
        .iter()
        .filter(|l| valid.contains(*l))
        .cloned()
        .collect();
    // The sender uses one connection at a time, so reading them in accept order, each to its
    // end, gives the send order. A connection still in the accept queue may time out too.
    'conns: while distinct.len() < want {
        let (next, _) = tokio::time::timeout(LIMIT, listener.accept())
            .await
            .expect("the sender reconnects")
            .unwrap();
        let mut lines = BufReader::new(next).lines();
        while distinct.len() < want {
            let l = tokio::time::timeout(LIMIT, lines.next_line())
                .await
                .expect("lines after resuming");
            let Ok(Some(l)) = l else { continue 'conns };
            if valid.contains(&l) {
                distinct.insert(l.clone());
            }
            received.push(l);
        }
    }
    received.retain(|l| valid.contains(l));
    let mut first_seen = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for l in &received {
        if seen.insert(l.clone()) {
            first_seen.push(l.clone());
        }
    }
    assert_lines_eq(&first_seen, &p.produced, "every line, in order");
    // What was in flight when a connection was replaced is sent again: at most
    // `inflight_max_bytes` plus the batch being written (lines of at least 20 bytes).
    let dups = received.len() - want;
    let bound = h.stats().reconnects as usize * ((80 << 10) / 20);
    assert!(dups <= bound, "{dups} duplicates, more than {bound}");
    assert_eq!(h.stats().lines_dropped, 0);
    // Keep reading (whatever was in flight when we stopped comes again) until the sender
    // knows everything was read: without a spool, what it cannot confirm at shutdown is lost.
    let drain = tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 1 << 16];
                while matches!(tokio::io::AsyncReadExt::read(&mut s, &mut buf).await, Ok(n) if n > 0)
                {
                }
            });
        }
    });
    wait_until("everything confirmed", LIMIT, || {
        h.stats().inflight_lines == 0 && h.stats().queued_lines == 0
    })
    .await;
    h.shutdown(Duration::from_secs(5)).await.unwrap();
    drain.abort();
}

/// A peer that reads everything at once through a small receive buffer (so no window
/// scaling): after reading a small batch its window never shows it, since a window that
/// reopens by less than a segment is not advertised again. Acknowledged lines are not a
/// stalled peer: once `write_timeout` passes without evidence, the sender asks the peer
/// (close, wait for its FIN) instead of giving the connection up and sending them again.
/// Each batch is confirmed, and every line arrives once. (Giving up meant sending the same
/// lines forever: the last phase of the test above hit it now and then.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_lines_without_read_evidence_are_confirmed_by_the_peer_not_resent() {
    use tokio::io::AsyncBufReadExt;
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.bind(([127, 0, 0, 1], 0).into()).unwrap();
    let listener = sock.listen(16).unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let got = received.clone();
    let peer = tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let got = got.clone();
            tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(s).lines();
                while let Ok(Some(l)) = lines.next_line().await {
                    got.lock().unwrap().push(l);
                }
            });
        }
    });
    let cfg = SenderConfig {
        write_timeout: Duration::from_millis(200),
        ..config(&[port], None)
    };
    let h = sender::spawn(cfg).unwrap();
    let mut p = Producer::default();
    for _ in 0..5 {
        h.submit(p.chunk(20));
        wait_until("the batch confirmed", LIMIT, || {
            let s = h.stats();
            s.inflight_lines == 0 && s.queued_lines == 0
        })
        .await;
    }
    let got = received.lock().unwrap().clone();
    assert_lines_eq(&got, &p.produced, "every line once, in order");
    assert_eq!(h.stats().reconnects, 0, "no connection was given up");
    h.shutdown(Duration::from_secs(5)).await.unwrap();
    peer.abort();
}

/// UDP: datagrams cut at line boundaries, none larger than `udp_max_datagram`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_destination_gets_whole_lines_in_small_datagrams() {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = sock.local_addr().unwrap().port();
    let cfg = SenderConfig {
        destinations: vec![format!("udp://127.0.0.1:{port}")],
        ..config(&[], None)
    };
    let h = sender::spawn(cfg).unwrap();
    let mut p = Producer::default();
    // Paced so the loopback socket buffer never overflows (UDP has no flow control).
    for _ in 0..20 {
        h.submit(p.chunk(50));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    let mut largest = 0;
    while got.len() < p.produced.len() {
        let n = tokio::time::timeout(LIMIT, sock.recv(&mut buf))
            .await
            .expect("datagrams")
            .unwrap();
        largest = largest.max(n);
        let text = std::str::from_utf8(&buf[..n]).unwrap();
        assert!(text.ends_with('\n'), "a datagram ends at a line end");
        got.extend(text.lines().map(String::from));
    }
    assert!(largest <= 1400, "datagram of {largest} bytes");
    assert_lines_eq(&got, &p.produced, "udp");
    assert_eq!(h.stats().lines_sent, 1000);
    h.shutdown(Duration::from_secs(5)).await.unwrap();
}
