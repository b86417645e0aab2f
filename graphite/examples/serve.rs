//! A minimal front end to `graphite::store::listen` (the carbon listeners and the store, no
//! HTTP API), for profiling the ingest path alone. `benches/ingest-vs-carbon.sh` used it until
//! session 10; it now runs the real `carbide serve`.
//!
//! ```text
//! cargo run --release -p graphite --features store --example serve -- \
//!     --data DIR [--tcp 127.0.0.1:2003] [--udp 127.0.0.1:2003] [--schemas FILE] \
//!     [--aggregation FILE] [--flush-secs 5]
//! ```
//! Prints `LISTENING tcp=ADDR udp=ADDR`, then answers commands on stdin, one per line:
//! `stats` → `RECEIVED n BAD n CACHE n SERIES n`; `count PATTERN FROM UNTIL` → `COUNT n`
//! (non-null points of every matching series); `flush` → `FLUSHED points seconds`;
//! `quit` or end of input → flush, close, `BYE`.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use graphite::store::listen::{Server, ServerConfig};
use graphite::store::unix_now;

fn usage(msg: &str) -> ! {
    eprintln!("serve: {msg}\nusage: serve --data DIR [--tcp ADDR|none] [--udp ADDR|none] [--schemas FILE] [--aggregation FILE] [--flush-secs N]");
    std::process::exit(2)
}

fn main() {
    let mut cfg = ServerConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        let addr = |v: &str| {
            (v != "none").then(|| {
                v.parse()
                    .unwrap_or_else(|_| usage(&format!("bad address {v}")))
            })
        };
        match flag.as_str() {
            "--data" => cfg.data_dir = PathBuf::from(value),
            "--tcp" => cfg.tcp_listen = addr(&value),
            "--udp" => cfg.udp_listen = addr(&value),
            "--schemas" => cfg.schemas = Some(value.into()),
            "--aggregation" => cfg.aggregation = Some(value.into()),
            "--flush-secs" => {
                let s: u64 = value.parse().unwrap_or_else(|_| usage("bad --flush-secs"));
                cfg.flush_interval = Duration::from_secs(s.max(1));
            }
            _ => usage(&format!("unknown flag {flag}")),
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| usage(&format!("tokio: {e}")));
    rt.block_on(async move {
        let server = Server::start(cfg)
            .await
            .unwrap_or_else(|e| usage(&e.to_string()));
        let show =
            |a: Option<std::net::SocketAddr>| a.map_or("none".to_string(), |a| a.to_string());
        println!(
            "LISTENING tcp={} udp={}",
            show(server.tcp_addr()),
            show(server.udp_addr())
        );
        let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(16);
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if tx.blocking_send(line).is_err() {
                    break;
                }
            }
        });
        while let Some(cmd) = rx.recv().await {
            let words: Vec<&str> = cmd.split_whitespace().collect();
            let store = server.store();
            match words.as_slice() {
                ["stats"] => println!(
                    "RECEIVED {} BAD {} CACHE {} SERIES {}",
                    store.stats.points_received.load(Relaxed),
                    server.bad_lines().total(),
                    store.stats.cache_points.load(Relaxed),
                    store.series_count()
                ),
                ["count", pattern, from, until] => {
                    let (Ok(from), Ok(until)) = (from.parse(), until.parse()) else {
                        println!("ERROR from/until must be epoch seconds");
                        continue;
                    };
                    match store.fetch(pattern, from, until, unix_now()).await {
                        Ok(series) => println!(
                            "COUNT {}",
                            series
                                .iter()
                                .map(|s| s.values.iter().flatten().count())
                                .sum::<usize>()
                        ),
                        Err(e) => println!("ERROR {e}"),
                    }
                }
                ["flush"] => {
                    let t = Instant::now();
                    match store.flush().await {
                        Ok(r) => println!("FLUSHED {} {:.3}", r.points, t.elapsed().as_secs_f64()),
                        Err(e) => println!("ERROR {e}"),
                    }
                }
                ["quit"] => break,
                _ => println!("ERROR unknown command {cmd:?}"),
            }
            let _ = std::io::stdout().flush();
        }
        match server.shutdown().await {
            Ok(_) => println!("BYE"),
            Err(e) => println!("ERROR {e}"),
        }
    });
}
