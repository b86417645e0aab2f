//! The standing hostile suite (issue 15; limits in docs/limits.md): the real `carbide serve`
//! under a 2 GiB address-space cap, attacked the ways a careless dashboard or a hostile client
//! would, while a normal client keeps getting answers.
//!
//! - listeners: 2000 idle carbon connections over a cap of 1500, 10 MB lines without a
//!   newline, NUL and control bytes in paths (rejected and counted), slowloris and slow-body
//!   HTTP clients, more HTTP connections than the cap;
//! - renders: the deadline (504 naming `render_timeout`), SIGTERM with renders running;
//! - a corpus generated from the function registry ([`graphite::functions::FUNCTIONS`]):
//!   every function called with extreme arguments built from its typed signature, over
//!   generators and over real data, plus the examples verbatim. After each request
//!   the process is alive, `/version` answers within a second, its resident memory is under
//!   the cap, and the answer is 2xx or 4xx.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use common::{enc, http, wait_until, Carbide};

/// The address-space cap every server of this suite runs under (and its RSS limit).
const CAP: u64 = 2 << 30;

/// `carbide serve` in `dir` with `yaml` as its settings file, on free ports, capped.
fn serve(dir: &Path, yaml: &str) -> Carbide {
    std::fs::write(dir.join("serve.yml"), yaml).unwrap();
    Carbide::start_capped(
        dir,
        &[
            "serve",
            "--config",
            "serve.yml",
            "--data-dir",
            "data",
            "--carbon-tcp",
            "127.0.0.1:0",
            "--carbon-udp",
            "off",
            "--http-listen",
            "127.0.0.1:0",
        ],
        CAP,
    )
}

/// `GET /version` on a new connection answers 200 within a second.
fn version_answers(addr: SocketAddr) -> bool {
    let second = Duration::from_secs(1);
    let Ok(mut s) = TcpStream::connect_timeout(&addr, second) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(second));
    let _ = s.set_write_timeout(Some(second));
    let req = format!("GET /version HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    text.starts_with("HTTP/1.1 200") && text.ends_with("1.1.10")
}

/// The process is alive, `/version` answers within a second, RSS is under the cap.
fn healthy(c: &mut Carbide) -> Result<(), String> {
    if !c.alive() {
        return Err("the process died".into());
    }
    if !version_answers(c.http) {
        return Err("/version did not answer within a second".into());
    }
    let rss = c.status_kb("VmRSS") * 1024;
    if rss >= CAP {
        return Err(format!("RSS {rss} bytes is over the cap"));
    }
    Ok(())
}

/// Whether the server closed `s` (a read returns EOF or an error other than a timeout);
/// what it sent before closing is appended to `seen`.
fn closed_by_server(s: &mut TcpStream, seen: &mut Vec<u8>) -> bool {
    let _ = s.set_read_timeout(Some(Duration::from_millis(20)));
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

fn metric(c: &Carbide, name: &str) -> f64 {
    c.metric(name).unwrap_or(0.0)
}

#[test]
fn carbon_caps_idle_connections_and_closes_them_while_http_answers() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = serve(
        dir.path(),
        "self_metrics_interval: 1s\nlimits:\n  max_carbon_connections: 1500\n  carbon_idle_timeout: 10s\n",
    );
    let mut idle = Vec::new();
    for _ in 0..2000 {
        idle.push(TcpStream::connect(c.carbon).unwrap());
    }
    healthy(&mut c).unwrap();
    // Every connection ends refused at the cap or closed idle, and each is counted.
    let mut last = (0.0, 0.0);
    let all = wait_until(Duration::from_secs(120), || {
        last = (
            metric(&c, "carbide.store.connections.refused"),
            metric(&c, "carbide.store.connections.idle_closed"),
        );
        last.0 + last.1 == 2000.0
    });
    assert!(all, "refused + idle_closed = {last:?}, not 2000");
    assert!(last.0 >= 1.0, "none refused at the cap of 1500: {last:?}");
    let mut shut = 0;
    for s in &mut idle {
        if closed_by_server(s, &mut Vec::new()) {
            shut += 1;
        }
    }
    assert_eq!(
        shut, 2000,
        "the server closed only {shut} of 2000 idle connections"
    );
    healthy(&mut c).unwrap();
    drop(idle);
    // A normal sender is served again.
    let now = common::now();
    common::send_lines(c.carbon, &format!("after.flood 7 {now}\n"));
    assert!(wait_until(Duration::from_secs(30), || c
        .metric("after.flood")
        .is_some()));
    assert!(c.stop(), "carbide serve did not exit 0 on SIGTERM");
}

#[test]
fn carbon_skips_10mb_lines_and_control_bytes_without_growing() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = serve(dir.path(), "self_metrics_interval: 1s\n");
    let now = common::now();
    common::send_lines(c.carbon, &format!("warm.up 1 {now}\n"));
    assert!(wait_until(Duration::from_secs(30), || c
        .metric("warm.up")
        .is_some()));
    let before = c.status_kb("VmHWM");
    let mut s = TcpStream::connect(c.carbon).unwrap();
    let chunk = vec![b'x'; 1 << 20];
    for round in 0..3 {
        // 10 MiB without a newline, then a good line on the same connection.
        for _ in 0..10 {
            s.write_all(&chunk).unwrap();
        }
        s.write_all(format!("\ngood.after.long{round} 1 {now}\n").as_bytes())
            .unwrap();
    }
    s.write_all(format!("nul\0in.path 1 {now}\nesc.\x1b[2J.path 1 {now}\ndel\x7f.path 1 {now}\ngood.after.control 1 {now}\n").as_bytes())
        .unwrap();
    drop(s);
    assert!(wait_until(Duration::from_secs(30), || {
        c.metric("good.after.control").is_some()
            && metric(&c, "carbide.store.bad_lines.control_byte") == 3.0
            && metric(&c, "carbide.store.bad_lines.too_long") == 3.0
    }));
    for round in 0..3 {
        assert!(c.metric(&format!("good.after.long{round}")).is_some());
    }
    let (st, body) = c.get("/metrics/find?query=*");
    assert_eq!(st, 200);
    for bad in ["nul", "esc", "del", "xxx"] {
        assert!(!body.contains(&format!("\"{bad}")), "{body}");
    }
    // 30 MiB of over-long lines went through one connection; its buffers stay bounded.
    let grown = c.status_kb("VmHWM").saturating_sub(before);
    assert!(grown < 16 * 1024, "peak RSS grew by {grown} kB");
    healthy(&mut c).unwrap();
    assert!(c.stop());
}

#[test]
fn http_sheds_slowloris_slow_bodies_and_excess_connections() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = serve(
        dir.path(),
        "self_metrics_interval: 1s\nlimits:\n  http_read_timeout: 1s\n  max_http_connections: 50\n",
    );
    // Slowloris: headers that never end, one byte at a time.
    let mut slow: Vec<TcpStream> = (0..30)
        .map(|_| {
            let mut s = TcpStream::connect(c.http).unwrap();
            s.write_all(b"GET /version HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .unwrap();
            s
        })
        .collect();
    let mut open = slow.len();
    let shed = wait_until(Duration::from_secs(60), || {
        for s in &mut slow {
            let _ = s.write_all(b"a");
        }
        // A normal client is answered all along (30 slow ones leave room under the cap).
        assert!(version_answers(c.http), "/version refused during slowloris");
        open = 0;
        for s in &mut slow {
            if !closed_by_server(s, &mut Vec::new()) {
                open += 1;
            }
        }
        open == 0
    });
    assert!(shed, "{open} slowloris connections still open");
    drop(slow);

    // A body that never arrives: 408 naming the limit.
    let mut s = TcpStream::connect(c.http).unwrap();
    s.write_all(
        b"POST /render HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\ntarget=a",
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 408") && answer.contains("read_timeout"),
        "{answer}"
    );

    // More connections than the cap: those beyond it are answered 503 and closed at once;
    // the rest are closed by the read timeout, and then normal clients are served again.
    let mut held: Vec<TcpStream> = (0..60)
        .map(|_| TcpStream::connect(c.http).unwrap())
        .collect();
    let mut seen = vec![Vec::new(); held.len()];
    let mut closed = 0;
    let all_closed = wait_until(Duration::from_secs(60), || {
        closed = 0;
        for (s, seen) in held.iter_mut().zip(&mut seen) {
            if closed_by_server(s, seen) {
                closed += 1;
            }
        }
        closed == held.len()
    });
    let refused = seen
        .iter()
        .filter(|s| s.starts_with(b"HTTP/1.1 503"))
        .count();
    assert!(all_closed, "{closed} of 60 closed");
    assert!(
        refused >= 1,
        "none of 60 connections refused at a cap of 50"
    );
    assert!(wait_until(Duration::from_secs(30), || version_answers(
        c.http
    )));
    assert!(wait_until(Duration::from_secs(30), || metric(
        &c,
        "carbide.http.connections.refused"
    ) >= 1.0));
    healthy(&mut c).unwrap();
    assert!(c.stop());
}

/// Requests that take long, or that nothing but the deadline stops.
fn slow_targets() -> Vec<String> {
    let mut nested = "sin('a',1,1)".to_string();
    for _ in 0..30 {
        nested = format!("movingAverage({nested},1)");
    }
    vec![
        nested,
        "movingMedian(sin('a',1,1),100000)".into(),
        "timeStack(timeStack(sin('a',1,1),'1s',0,100),'1s',0,100)".into(),
    ]
}

#[test]
fn renders_stop_at_the_deadline_and_sigterm_does_not_wait_for_them() {
    let dir = tempfile::tempdir().unwrap();
    // Every render is past a deadline of 1 ns: 504 naming the limit.
    let mut c = serve(dir.path(), "limits:\n  render_timeout: 1ns\n");
    let (st, body) = c.get("/render?target=sin('a')&from=-1h");
    assert_eq!(st, 504, "{body}");
    assert!(body.contains("render_timeout"), "{body}");
    healthy(&mut c).unwrap();
    assert!(c.stop());

    let dir = tempfile::tempdir().unwrap();
    let mut c = serve(
        dir.path(),
        "limits:\n  render_timeout: 2s\n  max_concurrent_renders: 2\n  render_queue_timeout: 1s\n",
    );
    let http_addr = c.http;
    // Each slow request ends with 504 (stopped) or a 4xx naming a limit, never a 5xx else.
    let clients: Vec<_> = slow_targets()
        .into_iter()
        .map(|t| {
            std::thread::spawn(move || {
                let q = format!("/render?target={}&from=-1d", enc(&t));
                http(http_addr, "GET", &q, &[], None)
            })
        })
        .collect();
    for (i, client) in clients.into_iter().enumerate() {
        let (st, body) = client.join().unwrap();
        let ok = (400..500).contains(&st)
            || (st == 504 && body.contains("render_timeout"))
            || (st == 503 && body.contains("render_queue_timeout"));
        assert!(ok, "slow target {i}: {st} {body}");
        healthy(&mut c).unwrap();
    }
    // SIGTERM with renders running: the process exits 0, flushed, without waiting for them.
    let running: Vec<_> = slow_targets()
        .into_iter()
        .map(|t| {
            std::thread::spawn(move || {
                let q = format!("/render?target={}&from=-1d", enc(&t));
                http(http_addr, "GET", &q, &[], None)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    assert!(c.stop(), "carbide serve did not exit 0 on SIGTERM");
    let log = std::fs::read_to_string(dir.path().join("carbide.log")).unwrap();
    assert!(log.contains("store flushed and closed"), "{log}");
    for r in running {
        let (st, _) = r.join().unwrap();
        assert!(st != 500, "a render cut by SIGTERM answered 500");
    }
}
