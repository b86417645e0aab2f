//! `carbide serve` as a node of a real Graphite cluster: graphite-web 1.1.10 (the venv of
//! `tests/graphite-web/setup.sh`) with `CLUSTER_SERVERS` = three `carbide serve` nodes, fed
//! through Debian's carbon-c-relay with `carbon_ch replication 2`. Every target renders through
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

use common::{enc, get_bytes, http, now, send_lines, wait_until, Carbide};

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

/// graphite-web as the cluster front end over `nodes`.
fn front_end(
    storage: &std::path::Path,
    format: &str,
    post: bool,
    nodes: &[SocketAddr],
) -> (Proc, SocketAddr) {
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/graphite-web/cluster_server.py");
    let mut child = Command::new(venv_python())
        .arg(script)
        .arg(storage)
        .arg(format)
        .arg(if post { "1" } else { "0" })
        .args(nodes.iter().map(|n| format!("http://{n}")))
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

fn serve(dir: &std::path::Path) -> Carbide {
    std::fs::create_dir_all(dir).unwrap();
    Carbide::start(
        dir,
        &[
            "serve",
            "--data-dir",
            "data",
            "--carbon-tcp",
            "127.0.0.1:0",
            "--carbon-udp",
            "off",
            "--http-listen",
            "127.0.0.1:0",
        ],
    )
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

    // carbon-c-relay in front of the nodes, carbon_ch replication 2.
    let listen = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let relay_port = listen.local_addr().unwrap().port();
    drop(listen);
    let mut conf = format!(
        "listen\n    type linemode\n        127.0.0.1:{relay_port} proto tcp\n    ;\ncluster nodes\n    carbon_ch replication 2\n"
    );
    for (i, n) in nodes.iter().enumerate() {
        conf.push_str(&format!("        127.0.0.1:{}=n{i}\n", n.carbon.port()));
    }
    conf.push_str("    ;\nmatch * send to nodes stop;\n");
    std::fs::write(dir.path().join("relay.conf"), &conf).unwrap();
    let _relay = Proc(
        Command::new("carbon-c-relay")
            .arg("-f")
            .arg(dir.path().join("relay.conf"))
            .arg("-l")
            .arg(dir.path().join("relay.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("running carbon-c-relay (tests/run installs it)"),
    );

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
    let relay_addr: SocketAddr = ([127, 0, 0, 1], relay_port).into();
    assert!(
        wait_until(Duration::from_secs(30), || std::net::TcpStream::connect(
            relay_addr
        )
        .is_ok()),
        "carbon-c-relay did not listen"
    );
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
    let (_gw, fe) = front_end(&dir.path().join("gw-degraded"), "pickle", false, &addrs_all);
    check(fe, "one node stopped");
    let _ = std::io::stdout().flush();
}
