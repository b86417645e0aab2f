//! `carbide serve` as a node of a real Graphite cluster: graphite-web 1.1.10 (the venv of
//! `tests/graphite-web/setup.sh`) with `CLUSTER_SERVERS` = three `carbide serve` nodes, fed
//! through Debian's carbon-c-relay with `carbon_ch replication 2`, each configured by the
//! blocks of docs/cluster.md as written there (addresses made 127.0.0.1 ports). Every target renders through
//! the cluster front end as through one carbide node holding all the data; with one node
//! stopped, every series is still complete (its replica answers). The nodes are asked in
//! `format=pickle` (graphite-web's restricted unpickler reads them), `format=msgpack`
//! (graphite-web's bundled umsgpack: the venv has no pip msgpack) and with
//! `REMOTE_STORE_USE_POST` (multipart/form-data).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::conformance::{self, check_graphite_web, fixture_lines, goldens, request, SCHEMAS};
use common::{docs, enc, get_bytes, http, now, send_lines, wait_until, Carbide};

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn venv_python() -> PathBuf {
    let venv = std::env::var_os("GRAPHITE_WEB_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME"))
                .join(".cache/carbide-graphite-web-venv")
        });
    let py = venv.join("bin/python");
    assert!(
        py.exists() && venv.join(".carbide-setup-ok").exists(),
        "no graphite-web 1.1.10 venv at {}: build it with tests/graphite-web/setup.sh (tests/run does)",
        venv.display()
    );
    py
}

/// graphite-web as the cluster front end over `nodes`: docs/cluster.md's `local_settings.py`
/// lines with the nodes' addresses, asking for `format`, by POST if `post`; its clock frozen
/// at `now` if given.
fn front_end(
    storage: &std::path::Path,
    format: &str,
    post: bool,
    nodes: &[SocketAddr],
    now: Option<i64>,
) -> (Proc, SocketAddr) {
    let documented = docs::block("cluster.md", "graphite-web");
    let mut subs: Vec<(String, String)> = nodes
        .iter()
        .enumerate()
        .map(|(k, n)| {
            (
                format!("http://10.0.0.{}:8080/", k + 1),
                format!("http://{n}/"),
            )
        })
        .collect();
    if format != "pickle" {
        subs.push(("format=pickle".into(), format!("format={format}")));
    }
    if post {
        subs.push((
            "REMOTE_STORE_USE_POST = False".into(),
            "REMOTE_STORE_USE_POST = True".into(),
        ));
    }
    let mut settings = docs::with(&documented, &subs);
    // This machine's allowances, not the deployment's: a node stopped on purpose is asked
    // again at once, and a loaded CI machine gets longer timeouts.
    settings.push_str("REMOTE_RETRY_DELAY = 0\nFIND_TIMEOUT = 5\nFETCH_TIMEOUT = 10\n");
    std::fs::create_dir_all(storage).unwrap();
    let file = storage.join("cluster_settings.py");
    std::fs::write(&file, settings).unwrap();
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/graphite-web/cluster_server.py");
    let mut child = Command::new(venv_python())
        .arg(script)
        .arg(storage)
        .arg(&file)
        .args(now.map(|n| n.to_string()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line
        .trim()
        .strip_prefix("READY ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("graphite-web did not start: {line:?}"));
    (Proc(child), ([127, 0, 0, 1], port).into())
}

/// A node as docs/cluster.md configures one, on free loopback ports.
fn serve(dir: &std::path::Path) -> Carbide {
    common::node(dir, &[])
}

/// carbon-c-relay in front of `nodes` with docs/cluster.md's configuration, listening.
fn c_relay(dir: &std::path::Path, nodes: &[Carbide]) -> (Proc, SocketAddr) {
    let relay_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut subs = vec![(
        "10.0.0.10:2003".to_string(),
        format!("127.0.0.1:{relay_port}"),
    )];
    for (k, n) in nodes.iter().enumerate() {
        subs.push((
            format!("10.0.0.{}:2003=", k + 1),
            format!("127.0.0.1:{}=", n.carbon.port()),
        ));
    }
    let conf = docs::with(&docs::block("cluster.md", "relay"), &subs);
    std::fs::write(dir.join("relay.conf"), &conf).unwrap();
    let relay = Proc(
        Command::new("carbon-c-relay")
            .arg("-f")
            .arg(dir.join("relay.conf"))
            .arg("-l")
            .arg(dir.join("relay.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("running carbon-c-relay (tests/run installs it)"),
    );
    let addr: SocketAddr = ([127, 0, 0, 1], relay_port).into();
    assert!(
        wait_until(Duration::from_secs(30), || std::net::TcpStream::connect(
            addr
        )
        .is_ok()),
        "carbon-c-relay did not listen"
    );
    (relay, addr)
}

const TARGETS: &[&str] = &[
    "servers.h1.cpu",
    "servers.*.cpu",
    "servers.h[0-4].mem",
    "sumSeries(servers.*.mem)",
    "aliasByNode(servers.*.cpu,1)",
    "averageSeries(servers.{h1,h7,h11}.cpu)",
    "groupByNode(servers.*.*,2,'sum')",
    "scale(servers.h3.cpu,2)",
    "servers.nothing.here",
];

/// The render answer as (name, datapoints) pairs sorted by name: graphite-web merges the
/// nodes' series in no fixed order.
fn answer(
    addr: SocketAddr,
    target: &str,
    from: i64,
    until: i64,
) -> (u16, Vec<(String, serde_json::Value)>) {
    let q = format!(
        "/render?format=json&target={}&from={from}&until={until}",
        enc(target)
    );
    let (st, body) = http(addr, "GET", &q, &[], None);
    if st != 200 {
        return (st, vec![(body, serde_json::Value::Null)]);
    }
    let v: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    let mut out: Vec<(String, serde_json::Value)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["target"].as_str().unwrap().to_string(),
                s["datapoints"].clone(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    (st, out)
}

#[test]
fn graphite_web_renders_through_three_carbide_nodes_as_through_one() {
    let dir = tempfile::tempdir().unwrap();
    let nodes: Vec<Carbide> = (0..3)
        .map(|i| serve(&dir.path().join(format!("n{i}"))))
        .collect();
    let single = serve(&dir.path().join("single"));

    let (_relay, relay_addr) = c_relay(dir.path(), &nodes);
    let t = now() / 60 * 60;
    let (from, until) = (t - 600, t);
    let mut lines = String::new();
    let mut series = Vec::new();
    for h in 0..16 {
        for m in ["cpu", "mem"] {
            series.push(format!("servers.h{h}.{m}"));
            for k in 1..=8 {
                let v = h * 10 + k + if m == "mem" { 1000 } else { 0 };
                lines.push_str(&format!("servers.h{h}.{m} {v} {}\n", t - 60 * k));
            }
        }
    }
    send_lines(single.carbon, &lines);
    send_lines(relay_addr, &lines);

    // Every series on exactly two nodes, all its points there.
    let points = |addr: SocketAddr, s: &str| -> usize {
        let (_, v) = answer(addr, s, from, until);
        v.first()
            .and_then(|(_, d)| {
                d.as_array()
                    .map(|a| a.iter().filter(|p| !p[0].is_null()).count())
            })
            .unwrap_or(0)
    };
    assert!(
        wait_until(Duration::from_secs(60), || series.iter().all(|s| {
            points(single.http, s) == 8
                && nodes.iter().filter(|n| points(n.http, s) == 8).count() == 2
        })),
        "every series on the single node and on two cluster nodes"
    );

    let want: Vec<_> = TARGETS
        .iter()
        .map(|t| answer(single.http, t, from, until))
        .collect();
    for (k, w) in want.iter().enumerate() {
        assert_eq!(w.0, 200, "{}", TARGETS[k]);
    }
    assert!(want[0].1.len() == 1 && want[1].1.len() == 16 && want[8].1.is_empty());

    let addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.http).collect();
    let check = |fe: SocketAddr, what: &str| {
        for (t, w) in TARGETS.iter().zip(&want) {
            let got = answer(fe, t, from, until);
            assert_eq!(&got, w, "{t} through the cluster ({what})");
        }
    };
    for (format, post) in [("pickle", false), ("msgpack", false), ("pickle", true)] {
        let (_gw, fe) = front_end(
            &dir.path().join(format!("gw-{format}-{post}")),
            format,
            post,
            &addrs,
            None,
        );
        check(fe, &format!("{format}, post={post}"));
    }

    // The node answers graphite-web reads: pickle and msgpack, find and render, `//` paths.
    let n = nodes[0].http;
    let (st, ct, body) = get_bytes(n, "//render/?format=msgpack&local=1&noCache=1&target=servers.nothing&from=-1h&until=now&now=1700000000");
    assert_eq!(
        (st, ct.as_str(), body.as_slice()),
        (200, "application/x-msgpack", &[0x90u8][..])
    );
    let (st, ct, _) = get_bytes(n, "//metrics/find/?format=pickle&local=1&query=servers.*");
    assert_eq!((st, ct.as_str()), (200, "application/pickle"));

    // One node stopped: every series is still complete through the front end.
    let mut nodes = nodes;
    let stopped = nodes.remove(1);
    let addrs_all = addrs.clone();
    assert!(stopped.stop());
    let (_gw, fe) = front_end(
        &dir.path().join("gw-degraded"),
        "pickle",
        false,
        &addrs_all,
        None,
    );
    check(fe, "one node stopped");
    let _ = std::io::stdout().flush();
}

/// carbon-relay 1.1.7 (Debian's graphite-carbon) in front of three nodes with docs/cluster.md's
/// `[relay]` section, plaintext to the nodes: each node holds exactly the series the agent's
/// `carbon_ch_py` placement (docs/cluster.md's agent block for it) puts there, with all their
/// points. The nodes' hosts are three spellings of 127.0.0.1, so that carbon-relay's diverse
/// replicas (distinct hosts) still give every series two nodes.
#[test]
fn carbon_relay_puts_each_series_on_the_nodes_the_agent_computes() {
    let dir = tempfile::tempdir().unwrap();
    let nodes: Vec<Carbide> = (0..3)
        .map(|i| serve(&dir.path().join(format!("n{i}"))))
        .collect();
    let hosts = ["127.0.0.1", "localhost", "127.1"];

    let relay_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let pickle_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut subs = vec![
        (
            "LINE_RECEIVER_INTERFACE = 10.0.0.10".to_string(),
            "LINE_RECEIVER_INTERFACE = 127.0.0.1".to_string(),
        ),
        (
            "LINE_RECEIVER_PORT = 2003".to_string(),
            format!("LINE_RECEIVER_PORT = {relay_port}"),
        ),
    ];
    for (k, n) in nodes.iter().enumerate() {
        subs.push((
            format!("10.0.0.{}:2003:", k + 1),
            format!("{}:{}:", hosts[k], n.carbon.port()),
        ));
    }
    let relay_section = docs::with(&docs::block("cluster.md", "carbon-relay"), &subs);
    // What Debian's /etc/carbon/carbon.conf holds besides: where carbon keeps its files (here
    // the test's directory), and this machine's allowances (no pickle listener on 2004, no
    // self-metrics).
    let d = dir.path().display();
    let conf = format!(
        "[cache]\nSTORAGE_DIR = {d}/carbon\nLOCAL_DATA_DIR = {d}/carbon/whisper\nWHITELISTS_DIR = {d}/carbon/lists\nCONF_DIR = {d}\nLOG_DIR = {d}/carbon/log\nPID_DIR = {d}/carbon\n\n{relay_section}PICKLE_RECEIVER_INTERFACE = 127.0.0.1\nPICKLE_RECEIVER_PORT = {pickle_port}\nCARBON_METRIC_INTERVAL = 0\n"
    );
    std::fs::write(dir.path().join("carbon.conf"), &conf).unwrap();
    // carbon-relay writes its pid file there and does not create it itself.
    std::fs::create_dir_all(dir.path().join("carbon")).unwrap();
    std::fs::write(
        dir.path().join("storage-schemas.conf"),
        "[default]\npattern = .*\nretentions = 60s:1d\n",
    )
    .unwrap();
    let _relay = Proc(
        Command::new("carbon-relay")
            .arg(format!("--config={d}/carbon.conf"))
            .arg(format!("--pidfile={d}/carbon/relay.pid"))
            .arg("--debug")
            .arg("start")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("relay.log")).unwrap())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("relay.err")).unwrap(),
            ))
            .spawn()
            .expect("running carbon-relay (tests/run installs graphite-carbon)"),
    );
    let relay_addr: SocketAddr = ([127, 0, 0, 1], relay_port).into();
    assert!(
        wait_until(Duration::from_secs(60), || std::net::TcpStream::connect(
            relay_addr
        )
        .is_ok()),
        "carbon-relay did not listen: {}",
        std::fs::read_to_string(dir.path().join("relay.err")).unwrap_or_default()
    );

    // The agent's placement, from its documented configuration.
    let mut subs = Vec::new();
    for (k, n) in nodes.iter().enumerate() {
        subs.push((
            format!("10.0.0.{}:2003=", k + 1),
            format!("{}:{}=", hosts[k], n.carbon.port()),
        ));
    }
    let agent = docs::with(&docs::block("cluster.md", "agent-carbon-relay"), &subs);
    let agent_dir = dir.path().join("agent");
    std::fs::create_dir_all(agent_dir.join("collectors.d")).unwrap();
    std::fs::write(agent_dir.join("collector.yml"), agent).unwrap();
    let sender = collector::config::load(&collector::config::Sources {
        config: Some(agent_dir.join("collector.yml")),
        collectors_dir: None,
    })
    .unwrap_or_else(|e| panic!("docs/cluster.md's agent block: {e:?}"))
    .settings
    .sender;
    let members = sender
        .destinations
        .iter()
        .map(|d| collector::sender::Target::parse_member(d).unwrap().1)
        .collect();
    let placement =
        collector::sender::placement::Placement::new(sender.placement, members, sender.replication)
            .unwrap();

    let t = now() / 60 * 60;
    let (from, until) = (t - 600, t);
    let mut lines = String::new();
    let mut names = Vec::new();
    for h in 0..20 {
        for m in ["cpu", "mem", "disk.sda.reads"] {
            let name = format!("servers.host{h}.{m}");
            for k in 1..=5 {
                lines.push_str(&format!("{name} {} {}\n", h * 10 + k, t - 60 * k));
            }
            names.push(name);
        }
    }
    send_lines(relay_addr, &lines);

    let points = |addr: SocketAddr, s: &str| -> usize {
        let (_, v) = answer(addr, s, from, until);
        v.first()
            .and_then(|(_, d)| {
                d.as_array()
                    .map(|a| a.iter().filter(|p| !p[0].is_null()).count())
            })
            .unwrap_or(0)
    };
    let (mut buf, mut out) = (Vec::new(), Vec::new());
    let want: Vec<Vec<usize>> = names
        .iter()
        .map(|n| {
            placement.place(n.as_bytes(), |_| true, &mut buf, &mut out);
            let mut o = out.clone();
            o.sort();
            o
        })
        .collect();
    assert!(want.iter().all(|w| w.len() == 2), "{want:?}");
    let held = || -> Vec<Vec<usize>> {
        names
            .iter()
            .map(|s| (0..3).filter(|&k| points(nodes[k].http, s) == 5).collect())
            .collect()
    };
    let mut got = Vec::new();
    let done = wait_until(Duration::from_secs(60), || {
        got = held();
        got == want
    });
    let share: Vec<usize> = (0..3)
        .map(|k| want.iter().filter(|w| w.contains(&k)).count())
        .collect();
    assert!(
        done,
        "each series on the nodes carbon_ch_py computes (shares {share:?}):\n{}",
        names
            .iter()
            .zip(got.iter().zip(&want))
            .filter(|(_, (g, w))| g != w)
            .map(|(n, (g, w))| format!("{n}: on {g:?}, computed {w:?}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // And nothing else of ours anywhere: a node's index holds only its share.
    for (k, n) in nodes.iter().enumerate() {
        let (st, body) = http(n.http, "GET", "/metrics/index.json", &[], None);
        assert_eq!(st, 200, "{body}");
        let index: Vec<String> = serde_json::from_str(&body).unwrap();
        let ours: Vec<&String> = index.iter().filter(|p| p.starts_with("servers.")).collect();
        assert_eq!(ours.len(), share[k], "node {k}: {ours:?}");
    }
}

/// graphite-web's whole recorded conformance corpus (`graphite/tests/conformance/`) through
/// graphite-web over three nodes fed by carbon-c-relay (replication 2): every answer is the one
/// graphite-web recorded over one whisper store holding all the data, with pickle, msgpack and
/// POST, and again with one node stopped. Nodes and front end run with their clocks frozen at
/// the recording's `NOW`, the nodes with the recording's schemas. graphite-web evaluates every
/// function here (the nodes answer only the series of each path expression, `seriesByTag`
/// included), so carbide's known evaluator differences do not apply; skipped are only the
/// targets reading series that never received a point (`special.allnull`, also through
/// `special.*`: graphite-web had an empty whisper file, carbide has no such series). Tag
/// autocomplete answers as recorded too (graphite-web asks the nodes with `local=1`), and
/// `/metrics/index.json` through the front end is the nodes' series, each once.
#[test]
fn the_conformance_corpus_renders_through_the_cluster_as_graphite_web_recorded_it() {
    let fixtures: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(conformance::conformance_dir().join("fixtures.json")).unwrap(),
    )
    .unwrap();
    let now = fixtures["now"].as_i64().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let schemas = dir.path().join("schemas.conf");
    std::fs::write(&schemas, SCHEMAS).unwrap();
    let frozen = now.to_string();
    let schemas = schemas.to_str().unwrap();
    let nodes: Vec<Carbide> = (0..3)
        .map(|i| {
            common::node(
                &dir.path().join(format!("n{i}")),
                &["--schemas", schemas, "--frozen-clock", &frozen],
            )
        })
        .collect();
    let (_relay, relay_addr) = c_relay(dir.path(), &nodes);

    // The fixtures, then sentinels: a node that shows a sentinel has every line the relay
    // sent it before (one connection per node, read in order). 40 sentinels, each on two nodes.
    let mut text = fixture_lines(&fixtures, now);
    for i in 0..40 {
        text.push_str(&format!("zz.sentinel.s{i} 1 {now}\n"));
    }
    send_lines(relay_addr, &text);
    let sentinels = || -> usize {
        nodes
            .iter()
            .map(|n| {
                let (_, body) = http(n.http, "GET", "/metrics/index.json", &[], None);
                body.matches("zz.sentinel.s").count()
            })
            .sum()
    };
    assert!(
        wait_until(Duration::from_secs(120), || sentinels() == 80),
        "every node got its share of the fixtures ({} of 80 sentinel copies)",
        sentinels()
    );

    let corpus: Vec<(String, serde_json::Value)> = goldens()
        .into_iter()
        .flat_map(|(family, entries)| entries.into_iter().map(move |e| (family.clone(), e)))
        .filter(|(_, e)| {
            let t = e["target"].as_str().unwrap();
            !(t.contains("allnull") || t.contains("special.*"))
        })
        .collect();
    assert!(corpus.len() > 600, "only {} goldens", corpus.len());
    // Tag autocomplete goes through the nodes (`/tags/autoComplete/*?local=1`); the rest of
    // graphite-web's /tags API reads the front end's own tag database.
    let tags_api: Vec<serde_json::Value> = serde_json::from_str::<serde_json::Value>(
        &std::fs::read_to_string(conformance::conformance_dir().join("tags_api.json")).unwrap(),
    )
    .unwrap()
    .as_array()
    .unwrap()
    .iter()
    .filter(|e| {
        e["path"]
            .as_str()
            .unwrap()
            .starts_with("/tags/autoComplete/")
    })
    .cloned()
    .collect();
    assert!(tags_api.len() >= 8, "{tags_api:?}");
    // The index through the front end (`/metrics/index.json?local=1` of each node) is every
    // node's series once.
    // (The nodes' own `carbide.*` self-metrics left out: they keep appearing.)
    let index = |addr: SocketAddr| -> Vec<String> {
        let (st, body) = http(addr, "GET", "/metrics/index.json", &[], None);
        assert_eq!(st, 200, "{body}");
        let names: Vec<String> =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        names
            .into_iter()
            .filter(|n| !n.starts_with("carbide."))
            .collect()
    };
    let mut all: Vec<String> = nodes.iter().flat_map(|n| index(n.http)).collect();
    all.sort();
    all.dedup();
    assert!(all.len() > 50, "{all:?}");

    let addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.http).collect();
    let replay = |fe: SocketAddr, what: &str| {
        let started = std::time::Instant::now();
        let mut failures = Vec::new();
        for (family, e) in &corpus {
            let (status, body) = http(fe, "GET", &request(e, now), &[], None);
            if let Err(why) = check_graphite_web(e, status, &body) {
                failures.push(format!("[{family}] {}: {why}", e["target"]));
            }
        }
        for e in &tags_api {
            let path = e["path"].as_str().unwrap();
            let got = http(fe, "GET", path, &[], None);
            let want = (
                e["status"].as_u64().unwrap() as u16,
                e["body"].as_str().unwrap(),
            );
            if (got.0, got.1.as_str()) != want {
                failures.push(format!("[tags API] {path}: got {got:?}, want {want:?}"));
            }
        }
        let through = index(fe);
        if through != all {
            failures.push(format!(
                "[index] through the front end {through:?}, on the nodes {all:?}"
            ));
        }
        eprintln!(
            "cluster replay ({what}): {} targets in {:.1}s",
            corpus.len(),
            started.elapsed().as_secs_f64()
        );
        assert!(
            failures.is_empty(),
            "{} of {} goldens differ through the cluster ({what}):\n{}",
            failures.len(),
            corpus.len(),
            failures.join("\n")
        );
    };
    for (format, post) in [("pickle", false), ("msgpack", false), ("pickle", true)] {
        let (_gw, fe) = front_end(
            &dir.path().join(format!("gw-{format}-{post}")),
            format,
            post,
            &addrs,
            Some(now),
        );
        replay(fe, &format!("{format}, post={post}"));
    }
    let mut nodes = nodes;
    assert!(nodes.remove(1).stop());
    let (_gw, fe) = front_end(
        &dir.path().join("gw-degraded"),
        "pickle",
        false,
        &addrs,
        Some(now),
    );
    replay(fe, "one node stopped");
}

/// The alerter (in process, its real run loop with an injected clock) against graphite-web's
/// cluster front end over three nodes pages exactly as against one node holding all the data:
/// the same level changes (alert, series, levels, value) and the same messages per notifier,
/// cycle after cycle, including with one node stopped.
#[test]
fn the_alerter_pages_through_the_cluster_as_through_one_node() {
    use alerter::daemon::{run_with, Ticks};
    use alerter::pipeline::engine::CycleReport;
    use alerter::pipeline::evaluate::RenderBackend;

    let dir = tempfile::tempdir().unwrap();
    let mut nodes: Vec<Carbide> = (0..3)
        .map(|i| serve(&dir.path().join(format!("n{i}"))))
        .collect();
    let single = serve(&dir.path().join("single"));
    let (_relay, relay_addr) = c_relay(dir.path(), &nodes);

    // Ten hosts' cpu rising over ten minutes: some hosts end CRITICAL, some WARNING, some OK.
    let t = now() / 60 * 60;
    let mut lines = String::new();
    let mut series = Vec::new();
    for h in 0..10 {
        let name = format!("servers.h{h}.cpu");
        for k in 0..10 {
            let v = (h * 10 + k) as f64 / 1.5;
            lines.push_str(&format!("{name} {v} {}\n", t - 60 * (10 - k)));
        }
        series.push(name);
    }
    send_lines(single.carbon, &lines);
    send_lines(relay_addr, &lines);
    let points = |addr: SocketAddr, s: &str| -> usize {
        let (_, v) = answer(addr, s, t - 900, t);
        v.first()
            .and_then(|(_, d)| {
                d.as_array()
                    .map(|a| a.iter().filter(|p| !p[0].is_null()).count())
            })
            .unwrap_or(0)
    };
    assert!(
        wait_until(Duration::from_secs(60), || series.iter().all(|s| {
            points(single.http, s) == 10
                && nodes.iter().filter(|n| points(n.http, s) == 10).count() == 2
        })),
        "every series on the single node and on two cluster nodes"
    );
    let addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.http).collect();
    let (_gw, fe) = front_end(&dir.path().join("gw"), "pickle", false, &addrs, None);

    // Cycles at three instants: the levels change as the window moves over the rising data.
    let cycles = [t - 240, t - 120, t];
    let run = |name: &str, url: String| -> Vec<CycleReport> {
        let d = dir.path().join(format!("alerter-{name}"));
        std::fs::create_dir_all(&d).unwrap();
        let file = d.join("alerts.yml");
        let text = format!(
            "graphite_url: {url}\nstate_file: {}\napi_listen: off\n\
             notifiers:\n  console: {{type: console}}\n\
             alerts:\n  - {{name: cpu, target: servers.*.cpu, warning: 30, critical: 50, from: -5min}}\n  \
             - {{name: busiest, target: 'maxSeries(servers.*.cpu)', warning: 40, critical: 55, from: -3min}}\n  \
             - {{name: total, target: 'sumSeries(servers.*.cpu)', warning: 200, critical: 300, from: -5min, reduce: avg}}\n",
            d.join("state.db").display()
        );
        let cfg = std::sync::Arc::new(
            alerter::config::Config::from_str_with_env(&file, &text, &|_| None)
                .unwrap_or_else(|e| panic!("{e}")),
        );
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let backend = std::sync::Arc::new(
                RenderBackend::from_settings(&cfg.graphite, Duration::from_secs(20)).unwrap(),
            );
            let (at_tx, at) = tokio::sync::mpsc::channel(1);
            let (reports_tx, mut reports) = tokio::sync::mpsc::channel(1);
            let (_sd_tx, sd) = tokio::sync::watch::channel(false);
            let run = run_with(
                cfg.clone(),
                backend,
                alerter::outbox::RetryPolicy::default(),
                sd,
                Ticks::Manual {
                    at,
                    reports: reports_tx,
                },
                None,
                None,
            );
            let drive = async {
                let mut out = Vec::new();
                for &c in &cycles {
                    at_tx.send(c).await.unwrap();
                    let r = reports.recv().await.expect("a report per cycle");
                    assert_eq!(r.fetch_errors, 0, "{name}: {r:?}");
                    out.push(r);
                }
                out
            };
            tokio::pin!(run);
            tokio::select! {
                r = &mut run => panic!("{name}: the run loop ended: {r:?}"),
                out = drive => out,
            }
        })
    };
    let summary = |r: &[CycleReport]| -> Vec<(Vec<String>, Vec<String>)> {
        r.iter()
            .map(|c| {
                (
                    c.changes.iter().map(|h| format!("{h:?}")).collect(),
                    c.messages
                        .iter()
                        .map(|(n, m)| format!("{n}: {:?} {}", m.action, m.notification.summary))
                        .collect(),
                )
            })
            .collect()
    };
    let want = summary(&run("single", format!("http://{}", single.http)));
    let changes: usize = want.iter().map(|(c, _)| c.len()).sum();
    assert!(changes >= 8, "the data moves levels: {want:?}");
    assert_eq!(
        summary(&run("cluster", format!("http://{fe}"))),
        want,
        "through the cluster"
    );
    assert!(nodes.remove(0).stop());
    let (_gw2, fe2) = front_end(&dir.path().join("gw2"), "pickle", false, &addrs, None);
    assert_eq!(
        summary(&run("degraded", format!("http://{fe2}"))),
        want,
        "through the cluster with one node stopped"
    );
}

/// A leaf's find `intervals` are the ranges its node holds (the store's chunks and cache), not
/// the retention: two nodes each holding another hour of `held.both` and the same old hour of
/// `held.old` answer their own ranges, and graphite-web 1.1.10 over them (docs/cluster.md's
/// settings) merges a leaf's nodes into one whose intervals are the union of theirs
/// (`readers/multi.py` `get_intervals`), which its own `format=json` find shows.
/// (graphite-web's render asks every node whatever their intervals; its find reads them.)
#[test]
fn find_intervals_are_what_each_node_holds_and_graphite_web_merges_them() {
    let dir = tempfile::tempdir().unwrap();
    let nodes: Vec<Carbide> = (0..2)
        .map(|i| serve(&dir.path().join(format!("n{i}"))))
        .collect();
    let t = now() / 3600 * 3600;
    let hour = |name: &str, from: i64| -> String {
        (from..from + 3600)
            .step_by(10)
            .map(|ts| format!("{name} {} {ts}\n", ts % 7))
            .collect()
    };
    let old = t - 3 * 3600;
    send_lines(
        nodes[0].carbon,
        &(hour("held.both", old) + &hour("held.old", old)),
    );
    send_lines(
        nodes[1].carbon,
        &(hour("held.both", t - 3600) + &hour("held.old", old)),
    );
    let count = |n: &Carbide, target: &str| {
        let path = format!(
            "/render?format=json&target={target}&from={}&until={t}",
            old - 1
        );
        common::series(&n.get(&path).1)
            .first()
            .map_or(0, |s| s.1.iter().filter(|p| p.0.is_some()).count())
    };
    assert!(
        wait_until(Duration::from_secs(30), || nodes.iter().all(|n| count(
            n,
            "held.both"
        ) == 360
            && count(n, "held.old") == 360)),
        "the points reached the nodes"
    );
    // The nodes' own answers, as graphite-web asks them: from the cache, then from the
    // chunks once flushed (a restart flushes everything).
    let intervals = |n: &Carbide, query: &str| {
        let (st, _, body) = get_bytes(
            n.http,
            &format!("//metrics/find/?local=1&format=msgpack&query={query}"),
        );
        assert_eq!(st, 200);
        let v: serde_json::Value = rmp_serde::from_slice(&body).unwrap();
        serde_json::from_value::<Vec<(i64, i64)>>(v[0]["intervals"].clone()).unwrap()
    };
    let mut nodes = nodes;
    for round in ["cached", "flushed"] {
        assert_eq!(
            intervals(&nodes[0], "held.both"),
            [(old, old + 3600)],
            "{round}"
        );
        assert_eq!(
            intervals(&nodes[1], "held.both"),
            [(t - 3600, t)],
            "{round}"
        );
        assert_eq!(
            intervals(&nodes[1], "held.old"),
            [(old, old + 3600)],
            "{round}"
        );
        assert_eq!(intervals(&nodes[0], "held"), [], "{round}: a branch");
        if round == "cached" {
            nodes = nodes
                .into_iter()
                .enumerate()
                .map(|(i, n)| {
                    assert!(n.stop(), "node {i} stops cleanly");
                    serve(&dir.path().join(format!("n{i}")))
                })
                .collect();
        }
    }

    let addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.http).collect();
    let (_gw, fe) = front_end(&dir.path().join("gw"), "msgpack", false, &addrs, None);
    let (st, body) = http(
        fe,
        "GET",
        &format!("/metrics/find?query=held.*&format=json&from={old}&until={t}"),
        &[],
        None,
    );
    assert_eq!(st, 200, "{body}");
    let mut found: serde_json::Value = serde_json::from_str(&body).unwrap();
    // In the order of graphite-web's set of nodes: its `Interval.__lt__` compares a start
    // with itself, so `MultiReader.get_intervals`'s `sorted` keeps that order.
    for node in found.as_array_mut().unwrap() {
        if let Some(list) = node["intervals"].as_array_mut() {
            list.sort_by_key(|i| i["start"].as_i64());
        }
    }
    let span = |a: i64, b: i64| serde_json::json!({"start": a, "end": b});
    assert_eq!(
        found,
        serde_json::json!([
            {"path": "held.both", "is_leaf": true,
             "intervals": [span(old, old + 3600), span(t - 3600, t)]},
            {"path": "held.old", "is_leaf": true, "intervals": [span(old, old + 3600)]},
        ]),
        "graphite-web's merged intervals"
    );
}
