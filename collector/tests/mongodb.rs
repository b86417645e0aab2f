//! The MongoDB collector against the wire-protocol test server (`common/mongo_wire.rs`)
//! serving MongoDB 4.4, 6.0 and 7.0 documents (and a 2.x/3.x-era one for the old
//! `globalLock.lockTime`): exact paths and values, rates over what was served, optional
//! sections, the real binary, and failure isolation without leaking credentials.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use collector::collectors::{self, Batch, Collector, SampleKind};
use collector::config::{self, Sources};
use collector::events::AgentStats;
use collector::paths::PathBuilder;
use collector::rates::Rates;
use collector::runtime::Worker;
use common::mongo_wire::{Fixture, MongoWire, STEPS};
use std::sync::atomic::Ordering::Relaxed;

const BIN: &str = env!("CARGO_BIN_EXE_collector");
const SECRET: &str = "Sup3rS3cretPw";

fn collector_from(yaml: &str) -> Box<dyn Collector> {
    let kind = collectors::kind("mongodb").unwrap();
    (kind.build)(Path::new("collectors.d/mongo.yml"), yaml)
        .unwrap_or_else(|e| panic!("{e}"))
        .collector
}

async fn collect(c: &mut Box<dyn Collector>) -> Batch {
    let mut b = Batch::default();
    c.collect(&mut b).await.unwrap();
    b
}

fn by_name(b: &Batch) -> HashMap<&str, (f64, SampleKind)> {
    let mut m = HashMap::new();
    for s in &b.samples {
        assert!(
            m.insert(s.name.as_str(), (s.value, s.kind)).is_none(),
            "duplicate metric {}",
            s.name
        );
    }
    m
}

fn gauge(m: &HashMap<&str, (f64, SampleKind)>, name: &str) -> f64 {
    match m.get(name) {
        Some((v, SampleKind::Gauge)) => *v,
        other => panic!("{name}: {other:?}"),
    }
}

fn step(path: &str) -> f64 {
    STEPS.iter().find(|(p, _)| *p == path).unwrap().1 as f64
}

#[tokio::test]
async fn every_version_exact_values_rates_and_percentages() {
    for version in ["4.4", "6.0", "7.0", "3.x"] {
        let server = MongoWire::start(version).await;
        let fx = Fixture::load(version);
        let mut c = collector_from(&format!("type: mongodb\nuri: {}\n", server.uri()));
        let first = collect(&mut c).await;
        let second = collect(&mut c).await;
        assert_eq!(server.status_calls.load(Relaxed), 2, "{version}");
        let (m1, m2) = (by_name(&first), by_name(&second));

        // gauges: exactly the served values, Diamond's names
        for path in [
            "connections.current",
            "connections.available",
            "mem.resident",
            "mem.virtual",
            "globalLock.currentQueue.total",
            "globalLock.activeClients.readers",
            "asserts.user",
            "uptime",
        ] {
            assert_eq!(
                gauge(&m1, path),
                fx.status_number(0, path).unwrap(),
                "{version} {path}"
            );
        }
        assert_eq!(gauge(&m1, "mem.supported"), 1.0, "{version} boolean as 1");
        assert_eq!(
            gauge(&m1, "opcounters.insert"),
            fx.status_number(0, "opcounters.insert").unwrap()
        );
        assert_eq!(
            gauge(&m2, "opcounters.insert"),
            fx.status_number(1, "opcounters.insert").unwrap()
        );
        // strings and arrays are skipped; dates are epoch seconds
        assert!(!m1.contains_key("host") && !m1.contains_key("version"));
        assert!(!m1.keys().any(|k| k.starts_with("repl.hosts")));
        assert!(m1["localTime"].0 > 1.7e9 && m1["localTime"].0 < 1.8e9);

        // counters: raw values, as Batch::counter, rated by the runtime's logic
        for (path, published) in [
            ("opcounters.insert", "opcounters_per_sec.insert"),
            ("opcounters.command", "opcounters_per_sec.command"),
            ("network.bytesIn", "network_per_sec.bytesIn"),
            ("network.bytesOut", "network_per_sec.bytesOut"),
            ("extra_info.page_faults", "extra_info_per_sec.page_faults"),
        ] {
            let (v1, k1) = m1[published];
            let (v2, _) = m2[published];
            assert_eq!(k1, SampleKind::Counter, "{published}");
            assert_eq!(
                v1,
                fx.status_number(0, path).unwrap(),
                "{version} {published}"
            );
            let mut rates = Rates::default();
            let t0 = tokio::time::Instant::now();
            rates.begin_run();
            assert_eq!(rates.rate(published, v1, t0), None);
            rates.begin_run();
            let rate = rates.rate(published, v2, t0 + Duration::from_secs(10));
            assert_eq!(rate, Some(step(path) / 10.0), "{version} {published}");
        }

        // every name survives path building (no metric dropped for its name)
        let paths = PathBuilder::new("servers.h", "mongo", None);
        for s in &second.samples {
            assert!(paths.metric(&s.name).is_ok(), "{version}: {}", s.name);
        }

        if version == "3.x" {
            // lock percentage from the deltas: 2.5 s of 10 s
            assert!(!m1.contains_key("percent.globalLock.lockTime"));
            assert_eq!(gauge(&m2, "percent.globalLock.lockTime"), 25.0);
            assert_eq!(gauge(&m2, "percent.indexCounters.misses"), 1.0);
            assert_eq!(
                m2["backgroundFlushing_per_sec.flushes"].1,
                SampleKind::Counter
            );
            assert_eq!(
                gauge(&m1, "locks._global_.timeLockedMicros.W"),
                1039050538.0
            );
            continue;
        }
        assert!(!m2.contains_key("percent.globalLock.lockTime"), "{version}");
        // WiredTiger: Diamond names (spaces → _, '-' → level) and the percentages
        let cache = |k: &str| {
            fx.status_number(0, &format!("wiredTiger.cache.{k}"))
                .unwrap()
        };
        assert_eq!(
            gauge(&m1, "wiredTiger.cache.bytes_currently_in_the_cache"),
            cache("bytes currently in the cache")
        );
        assert_eq!(
            gauge(&m1, "wiredTiger.block.manager.blocks_read"),
            fx.status_number(0, "wiredTiger.block-manager.blocks read")
                .unwrap()
        );
        assert_eq!(
            gauge(&m1, "percent.wiredTiger.cache.used"),
            cache("bytes currently in the cache") / cache("maximum bytes configured") * 100.0
        );
        assert_eq!(
            gauge(&m1, "percent.wiredTiger.cache.dirty"),
            cache("tracked dirty bytes in the cache") / cache("maximum bytes configured") * 100.0
        );
        let tickets = if version == "7.0" {
            "queues.execution"
        } else {
            "wiredTiger.concurrentTransactions"
        };
        for op in ["read", "write"] {
            let out = fx.status_number(0, &format!("{tickets}.{op}.out")).unwrap();
            let total = fx
                .status_number(0, &format!("{tickets}.{op}.totalTickets"))
                .unwrap();
            assert_eq!(
                gauge(
                    &m1,
                    &format!("percent.wiredTiger.concurrentTransactions.{op}")
                ),
                out / total * 100.0,
                "{version} {op}"
            );
        }
        assert_eq!(gauge(&m1, "flowControl.enabled"), 1.0);
        assert_eq!(gauge(&m1, "storageEngine.readOnly"), 0.0);
        eprintln!("{version}: {} metrics per run", second.samples.len());
    }
}

#[tokio::test]
async fn databases_collections_and_replica_set() {
    let server = MongoWire::start("6.0").await;
    let mut c = collector_from(&format!(
        "type: mongodb\nuri: {}\ndatabases: '^(shop|test)$'\ncollections: true\nmax_collections: 2\nreplica_set: true\n",
        server.uri()
    ));
    let b = collect(&mut c).await;
    let m = by_name(&b);
    // dbStats of the matching databases only
    assert_eq!(gauge(&m, "databases.shop.objects"), 2304.0);
    assert_eq!(gauge(&m, "databases.test.dataSize"), 220.0);
    assert_eq!(gauge(&m, "databases.shop.fsTotalSize"), 105088212992.0);
    assert!(!m.keys().any(|k| k.starts_with("databases.admin.")));
    // collStats: system.* ignored, capped at 2 calls, storage-engine sections left out
    assert_eq!(gauge(&m, "databases.shop.orders.count"), 2000.0);
    assert_eq!(
        gauge(&m, "databases.shop.orders.indexSizes.customer_1"),
        45056.0
    );
    assert_eq!(gauge(&m, "databases.shop.customers.size"), 102332.0);
    assert!(!m
        .keys()
        .any(|k| k.starts_with("databases.shop.system_views.")));
    assert!(!m.keys().any(|k| k.starts_with("databases.test.t.")));
    assert!(!m
        .keys()
        .any(|k| k.contains(".wiredTiger.") && k.starts_with("databases.")));
    let cmds = server.commands();
    assert_eq!(
        cmds.iter().filter(|c| c.starts_with("collStats")).count(),
        2
    );
    // replica set: Diamond's counts, members by host, lag behind the primary
    assert_eq!(gauge(&m, "replset.healthy_nodes"), 2.0);
    assert_eq!(gauge(&m, "replset.total_nodes"), 3.0);
    assert_eq!(gauge(&m, "replset.myState"), 1.0);
    assert_eq!(gauge(&m, "replset.node.mongo1_example_net_27017.self"), 1.0);
    assert_eq!(
        gauge(&m, "replset.node.mongo1_example_net_27017.lag_seconds"),
        0.0
    );
    assert_eq!(
        gauge(&m, "replset.node.mongo2_example_net_27017.lag_seconds"),
        7.0
    );
    assert_eq!(
        gauge(&m, "replset.node.mongo2_example_net_27017.state"),
        2.0
    );
    assert_eq!(
        gauge(&m, "replset.node.mongo3_example_net_27017.health"),
        0.0
    );
    assert_eq!(
        gauge(&m, "replset.node.mongo3_example_net_27017.state"),
        8.0
    );
    assert!(!m.contains_key("replset.node.mongo3_example_net_27017.lag_seconds"));

    // a standalone server: replica_set publishes nothing and is no error
    let standalone = MongoWire::start("7.0").await;
    let mut c = collector_from(&format!(
        "type: mongodb\nuri: {}\nreplica_set: true\n",
        standalone.uri()
    ));
    let b = collect(&mut c).await;
    assert!(!b.samples.iter().any(|s| s.name.starts_with("replset.")));
    assert!(standalone
        .commands()
        .contains(&"replSetGetStatus".to_string()));
}

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

const GLOBAL: &str = "hostname_method: fixed\nhostname: testhost\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_test_command_prints_diamond_paths() {
    let server = MongoWire::start("6.0").await;
    let fx = Fixture::load("6.0");
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "collector.yml", GLOBAL);
    write(
        tmp.path(),
        "collectors.d/mongo.yml",
        &format!("type: mongodb\nuri: {}\n", server.uri()),
    );
    let dir = tmp.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(["test", "mongodb"])
            .current_dir(dir)
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: HashMap<&str, f64> = stdout
        .lines()
        .map(|l| {
            let mut p = l.split(' ');
            (p.next().unwrap(), p.next().unwrap().parse().unwrap())
        })
        .collect();
    assert_eq!(
        lines["servers.testhost.mongo.connections.current"],
        fx.status_number(0, "connections.current").unwrap()
    );
    // the second sample's lines: its opcounters, and the rate over the ≥ 1 s gap
    assert_eq!(
        lines["servers.testhost.mongo.opcounters.insert"],
        fx.status_number(1, "opcounters.insert").unwrap()
    );
    let rate = lines["servers.testhost.mongo.opcounters_per_sec.insert"];
    assert!(rate > 0.0 && rate <= step("opcounters.insert"), "{rate}");
    assert!(lines.contains_key("servers.testhost.mongo.network_per_sec.bytesOut"));
    assert!(lines.contains_key("servers.testhost.mongo.percent.wiredTiger.cache.used"));
    assert_eq!(server.status_calls.load(Relaxed), 2);
}

/// A server that accepts and never answers: only the MongoDB instance misses its deadline
/// (counted), the host collector next to it runs, and the password is nowhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_server_misses_only_its_own_deadline() {
    let hung = MongoWire::start_silent().await;
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "collector.yml", GLOBAL);
    write(
        tmp.path(),
        "collectors.d/host.yml",
        "type: host\ninterval: 1s\n",
    );
    write(
        tmp.path(),
        "collectors.d/mongo.yml",
        &format!(
            "type: mongodb\nuri: mongodb://carbide:{SECRET}@{}/?authSource=admin\ninterval: 1s\n",
            hung.addr
        ),
    );
    let loaded = config::load(&Sources {
        config: Some(tmp.path().join("collector.yml")),
        collectors_dir: Some(tmp.path().join("collectors.d")),
    })
    .unwrap();
    let agent = Arc::new(AgentStats::default());
    let mut workers: Vec<Worker> = loaded
        .instances
        .into_iter()
        .map(|i| Worker::new(i, &loaded.settings, agent.clone()))
        .collect();
    assert_eq!(workers[1].name, "mongo");
    let (host, mongo) = workers.split_at_mut(1);
    let (h, m) = tokio::join!(host[0].run_once(1), mongo[0].run_once(1));
    assert!(!h.failed && h.chunk.lines > 0);
    assert!(m.failed && m.chunk.lines == 0);
    assert_eq!(mongo[0].stats.timeouts.load(Relaxed), 1);
    assert_eq!(mongo[0].stats.runs.load(Relaxed), 0);
    assert_eq!(host[0].stats.timeouts.load(Relaxed), 0);
    assert_eq!(host[0].stats.runs.load(Relaxed), 1);

    // the real binary: exit 1, host lines on stdout, the timeout logged, no password
    let dir = tmp.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .arg("--once")
            .current_dir(dir)
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stdout.contains("servers.testhost.loadavg.01 "), "{stdout}");
    assert!(!stdout.contains(".mongo."));
    assert!(
        stderr.contains("collector=\"mongo\"") && stderr.contains("cancelled"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(SECRET) && !stdout.contains(SECRET),
        "{stderr}"
    );
}

/// Failures that return (no server, refused authentication) name the server and the
/// command, never the password.
#[tokio::test]
async fn errors_never_carry_the_password() {
    // nothing listens: server selection gives up after its (short) timeout
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap();
    drop(free);
    let pct = "p%40ss%3A".to_string() + SECRET; // "p@ss:" + SECRET, percent-encoded
    let mut c = collector_from(&format!(
        "type: mongodb\nuri: mongodb://carbide:{pct}@{addr}/\nserver_selection_timeout: 300ms\nconnect_timeout: 300ms\n"
    ));
    let mut b = Batch::default();
    let err = format!("{:#}", c.collect(&mut b).await.unwrap_err());
    assert!(
        err.starts_with(&format!("serverStatus on {addr}: ")),
        "{err}"
    );
    assert!(!err.contains(SECRET), "{err}");

    // a server that refuses the credentials (password given separately)
    let server = MongoWire::start("4.4").await;
    let mut c = collector_from(&format!(
        "type: mongodb\nuri: {}\nusername: carbide\npassword: {SECRET}\n",
        server.uri()
    ));
    let err = format!("{:#}", c.collect(&mut b).await.unwrap_err());
    assert!(err.contains("Authentication failed"), "{err}");
    assert!(!err.contains(SECRET), "{err}");
    assert!(server.commands().contains(&"saslStart".to_string()));
    assert_eq!(server.status_calls.load(Relaxed), 0);
}

/// The legacy OP_QUERY handshake (not sent by the driver 3.x, answered for older clients).
#[tokio::test]
async fn legacy_op_query_is_master() {
    use mongodb::bson::{doc, Document};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = MongoWire::start("4.4").await;
    let mut s = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut body = Vec::new();
    body.extend_from_slice(&0i32.to_le_bytes());
    body.extend_from_slice(b"admin.$cmd\0");
    body.extend_from_slice(&0i32.to_le_bytes());
    body.extend_from_slice(&(-1i32).to_le_bytes());
    doc! { "isMaster": 1 }.to_writer(&mut body).unwrap();
    let mut msg = Vec::new();
    msg.extend_from_slice(&((16 + body.len()) as i32).to_le_bytes());
    msg.extend_from_slice(&7i32.to_le_bytes());
    msg.extend_from_slice(&0i32.to_le_bytes());
    msg.extend_from_slice(&2004i32.to_le_bytes());
    msg.extend_from_slice(&body);
    s.write_all(&msg).await.unwrap();
    let mut header = [0u8; 16];
    s.read_exact(&mut header).await.unwrap();
    let len = i32::from_le_bytes(header[0..4].try_into().unwrap()) as usize;
    assert_eq!(i32::from_le_bytes(header[8..12].try_into().unwrap()), 7);
    assert_eq!(i32::from_le_bytes(header[12..16].try_into().unwrap()), 1);
    let mut rest = vec![0u8; len - 16];
    s.read_exact(&mut rest).await.unwrap();
    let reply = Document::from_reader(&rest[20..]).unwrap();
    assert_eq!(reply.get_i32("maxWireVersion").unwrap(), 9);
    assert!(reply.get_bool("ismaster").unwrap());
}
