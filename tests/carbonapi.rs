//! `carbide serve` as a carbonapi backend. carbonapi cannot run here (no Go toolchain), so
//! this replays the requests its backend clients build, byte for byte in shape, against three
//! real nodes configured by docs/cluster.md's `node` and `carbonapi` blocks (the servers of the
//! carbonapi block, made 127.0.0.1 ports), and decodes every answer with go-graphite's
//! `.proto` definitions (`graphite::server::carbonapi::{v2, v3}`, generated from
//! `graphite/proto/`). Where each request shape comes from, in go-graphite/carbonapi:
//!
//! - `carbonapi_v3_pb`: `zipper/protocols/v3/protobuf_group.go` — `GET /render/?format=carbonapi_v3_pb`
//!   and `GET /metrics/find/?format=carbonapi_v3_pb` with the marshalled `MultiFetchRequest` /
//!   `MultiGlobRequest` as the body, `Accept: application/x-carbonapi-v3-pb`
//!   (`zipper/helper/requests.go` `doRequest`: no Content-Type); each fetch is
//!   `{name, pathExpression = name, startTime, stopTime, maxDataPoints}` as
//!   `expr/expr.go` `Fetch` fills it.
//! - `carbonapi_v2_pb`: `zipper/protocols/v2/protobuf_group.go` — `url.Values{target…, format:
//!   protobuf, from, until}.Encode()` on `/render/` (Go sorts the keys), `{query, format}` on
//!   `/metrics/find/`, `Accept: application/x-protobuf`.
//! - msgpack: `zipper/protocols/graphite/graphite_group.go` — the same query strings with
//!   `format=msgpack`, answers read as `zipper/protocols/graphite/msgpack/type.go`'s
//!   `{start, end, step (uint32), name, pathExpression, values}` and `{isLeaf, path}`.
//! - the probe: `zipper/protocols/auto/auto_group.go` — `GET /_internal/capabilities/` with an
//!   empty `CapabilityRequest`, protocol = the answer's first `supportedProtocols`.

mod common;

use std::net::SocketAddr;

use graphite::server::carbonapi::{v2, v3};
use prost::Message;

use common::{docs, enc, now, request_bytes, send_lines, wait_until, Carbide};

const V3: &str = "application/x-carbonapi-v3-pb";
const V2: &str = "application/x-protobuf";

/// Go's `url.Values.Encode`: keys sorted, each value escaped.
fn go_query(pairs: &[(&str, &str)]) -> String {
    let mut pairs = pairs.to_vec();
    pairs.sort_by_key(|(k, _)| *k);
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The documented carbonapi block's protocol and servers, with `nodes` for the addresses.
fn documented(nodes: &[SocketAddr]) -> (String, Vec<SocketAddr>) {
    let subs: Vec<(String, String)> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (format!("10.0.0.{}:8080", i + 1), n.to_string()))
        .collect();
    let text = docs::with(&docs::block("cluster.md", "carbonapi"), &subs);
    let value = |l: &str| l.split('"').nth(1).unwrap_or_default().to_string();
    let protocol = text
        .lines()
        .find(|l| l.trim_start().starts_with("protocol:"))
        .map(value)
        .expect("a protocol in the carbonapi block");
    let servers = text
        .lines()
        .filter(|l| l.trim_start().starts_with("- \"http://"))
        .map(|l| value(l).trim_start_matches("http://").parse().unwrap())
        .collect();
    (protocol, servers)
}

fn get(addr: SocketAddr, path: &str, accept: &str, body: Option<&[u8]>) -> (u16, String, Vec<u8>) {
    request_bytes(addr, "GET", path, &[("Accept", accept)], body)
}

fn ok<'a>(answer: &'a (u16, String, Vec<u8>), content_type: &str) -> &'a [u8] {
    assert_eq!(
        (answer.0, answer.1.as_str()),
        (200, content_type),
        "{}",
        String::from_utf8_lossy(&answer.2)
    );
    &answer.2
}

struct Data {
    /// First point, aligned to the default 10 s step; ten points, the fifth absent.
    t0: i64,
}

impl Data {
    fn values(&self, scale: f64) -> Vec<Option<f64>> {
        (0..10)
            .map(|k| (k != 4).then_some(scale * (k as f64 + 0.5)))
            .collect()
    }

    fn lines(&self, name: &str, scale: f64) -> String {
        self.values(scale)
            .iter()
            .enumerate()
            .filter_map(|(k, v)| v.map(|v| format!("{name} {v} {}\n", self.t0 + 10 * k as i64)))
            .collect()
    }
}

/// NaN-aware: carbonapi_v3_pb's absent points are NaN.
fn nan_as_none(values: &[f64]) -> Vec<Option<f64>> {
    values.iter().map(|v| (!v.is_nan()).then_some(*v)).collect()
}

#[test]
fn carbonapi_backend_requests_against_three_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let nodes: Vec<Carbide> = (0..3)
        .map(|i| common::node(&dir.path().join(format!("n{i}")), &[]))
        .collect();
    let https: Vec<SocketAddr> = nodes.iter().map(|n| n.http).collect();
    let (protocol, servers) = documented(&https);
    assert_eq!(servers, https, "the block's servers are the three nodes");

    // Node 0 holds carbonapi.a.x, node 1 carbonapi.b.x, both carbonapi.both.y (a replica);
    // node 2 nothing.
    let t0 = (now() - 300) / 10 * 10;
    let data = Data { t0 };
    send_lines(
        nodes[0].carbon,
        &(data.lines("carbonapi.a.x", 1.0) + &data.lines("carbonapi.both.y", 3.0)),
    );
    send_lines(
        nodes[1].carbon,
        &(data.lines("carbonapi.b.x", 2.0) + &data.lines("carbonapi.both.y", 3.0)),
    );
    let (from, until) = (t0 - 1, t0 + 99);
    let json = |n: &Carbide, t: &str| {
        let path = format!("/render?format=json&target={t}&from={from}&until={until}");
        common::series(&n.get(&path).1)
            .first()
            .map(|s| s.1.iter().filter(|p| p.0.is_some()).count())
    };
    assert!(
        wait_until(std::time::Duration::from_secs(30), || {
            json(&nodes[0], "carbonapi.a.x") == Some(9)
                && json(&nodes[0], "carbonapi.both.y") == Some(9)
                && json(&nodes[1], "carbonapi.b.x") == Some(9)
                && json(&nodes[1], "carbonapi.both.y") == Some(9)
        }),
        "the points reached the nodes"
    );
    let holds: [&[(&str, f64)]; 3] = [
        &[("carbonapi.a.x", 1.0), ("carbonapi.both.y", 3.0)],
        &[("carbonapi.b.x", 2.0), ("carbonapi.both.y", 3.0)],
        &[],
    ];

    // The probe carbonapi's `auto` sends, and the protocol the block names.
    for &n in &servers {
        let answer = get(n, "/_internal/capabilities/", V3, Some(b""));
        let caps = v3::CapabilityResponse::decode(ok(&answer, V3)).unwrap();
        assert_eq!(caps.supported_protocols[0], "carbonapi_v3_pb");
        assert!(caps.supported_protocols.iter().any(|p| p == &protocol));
    }
    assert_eq!(protocol, "carbonapi_v3_pb");

    for (i, &n) in servers.iter().enumerate() {
        let held = holds[i];
        let x = held.iter().find(|(name, _)| name.ends_with(".x"));

        // carbonapi_v3_pb find: two globs in one body.
        let globs = v3::MultiGlobRequest {
            metrics: vec!["carbonapi.*".into(), "carbonapi.*.x".into()],
            start_time: from,
            stop_time: until,
        };
        let answer = get(
            n,
            "/metrics/find/?format=carbonapi_v3_pb",
            V3,
            Some(&globs.encode_to_vec()),
        );
        let found = v3::MultiGlobResponse::decode(ok(&answer, V3)).unwrap();
        let names: Vec<&str> = found.metrics.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["carbonapi.*", "carbonapi.*.x"], "node {i}");
        let mut branches: Vec<(&str, bool)> = found.metrics[0]
            .matches
            .iter()
            .map(|m| (m.path.as_str(), m.is_leaf))
            .collect();
        branches.sort();
        let children: Vec<(&str, bool)> = match i {
            0 => vec![("carbonapi.a", false), ("carbonapi.both", false)],
            1 => vec![("carbonapi.b", false), ("carbonapi.both", false)],
            _ => vec![],
        };
        assert_eq!(branches, children, "node {i}");
        let leaves: Vec<(&str, bool)> = found.metrics[1]
            .matches
            .iter()
            .map(|m| (m.path.as_str(), m.is_leaf))
            .collect();
        assert_eq!(
            leaves,
            x.map(|(p, _)| (*p, true)).into_iter().collect::<Vec<_>>()
        );

        // carbonapi_v3_pb render: two fetches on different windows, by GET and by POST.
        let fetch = |name: &str, start: i64, stop: i64| v3::FetchRequest {
            name: name.into(),
            path_expression: name.into(),
            start_time: start,
            stop_time: stop,
            max_data_points: 1000,
            ..Default::default()
        };
        let req = v3::MultiFetchRequest {
            metrics: vec![
                fetch("carbonapi.*.x", from, until),
                fetch("carbonapi.both.y", from + 50, until),
            ],
        }
        .encode_to_vec();
        for (method, path) in [
            ("GET", "/render/?format=carbonapi_v3_pb"),
            ("POST", "//render/?format=carbonapi_v3_pb"),
        ] {
            let answer = request_bytes(n, method, path, &[("Accept", V3)], Some(&req));
            let r = v3::MultiFetchResponse::decode(ok(&answer, V3)).unwrap();
            let mut want = Vec::new();
            if let Some((name, scale)) = x {
                want.push((
                    name.to_string(),
                    "carbonapi.*.x",
                    from,
                    t0,
                    data.values(*scale),
                ));
            }
            if let Some((_, scale)) = held.iter().find(|(name, _)| *name == "carbonapi.both.y") {
                // From t0 + 49: whisper's alignment starts at t0 + 50, the sixth point.
                want.push((
                    "carbonapi.both.y".into(),
                    "carbonapi.both.y",
                    from + 50,
                    t0 + 50,
                    data.values(*scale)[5..].to_vec(),
                ));
            }
            let got: Vec<_> = r
                .metrics
                .iter()
                .map(|m| {
                    assert_eq!(
                        (m.step_time, m.stop_time, m.request_stop_time),
                        (10, t0 + 100, until),
                        "{m:?}"
                    );
                    assert_eq!(
                        (m.consolidation_func.as_str(), m.x_files_factor),
                        ("average", 0.5)
                    );
                    (
                        m.name.clone(),
                        m.path_expression.as_str(),
                        m.request_start_time,
                        m.start_time,
                        nan_as_none(&m.values),
                    )
                })
                .collect();
            assert_eq!(got, want, "node {i} {method} {path}");
        }

        // carbonapi_v2_pb: graphite-web's query string, format=protobuf.
        let q = go_query(&[("query", "carbonapi.*"), ("format", "protobuf")]);
        let answer = get(n, &format!("/metrics/find/?{q}"), V2, None);
        let g = v2::GlobResponse::decode(ok(&answer, V2)).unwrap();
        assert_eq!(g.name, "carbonapi.*");
        let mut paths: Vec<(&str, bool)> = g
            .matches
            .iter()
            .map(|m| (m.path.as_str(), m.is_leaf))
            .collect();
        paths.sort();
        assert_eq!(paths, children, "node {i}");
        let q = go_query(&[
            ("target", "carbonapi.*.x"),
            ("target", "carbonapi.both.y"),
            ("format", "protobuf"),
            ("from", &from.to_string()),
            ("until", &until.to_string()),
        ]);
        let answer = get(n, &format!("/render/?{q}"), V2, None);
        let r = v2::MultiFetchResponse::decode(ok(&answer, V2)).unwrap();
        let got: Vec<_> = r
            .metrics
            .iter()
            .map(|m| {
                assert_eq!(
                    (m.start_time, m.stop_time, m.step_time),
                    (t0 as i32, t0 as i32 + 100, 10)
                );
                // An absent point is 0 with isAbsent set.
                let values = m
                    .values
                    .iter()
                    .zip(&m.is_absent)
                    .map(|(v, absent)| {
                        assert!(!absent || *v == 0.0);
                        (!absent).then_some(*v)
                    })
                    .collect::<Vec<_>>();
                (m.name.clone(), values)
            })
            .collect();
        let want: Vec<_> = held
            .iter()
            .map(|(name, scale)| (name.to_string(), data.values(*scale)))
            .collect();
        assert_eq!(got, want, "node {i}");

        // msgpack, as carbonapi's graphite group reads it.
        let q = go_query(&[("query", "carbonapi.*.x"), ("format", "msgpack")]);
        let answer = get(n, &format!("/metrics/find/?{q}"), V2, None);
        let v: serde_json::Value =
            rmp_serde::from_slice(ok(&answer, "application/x-msgpack")).unwrap();
        let leaves: Vec<(&str, bool)> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["path"].as_str().unwrap(), m["isLeaf"].as_bool().unwrap()))
            .collect();
        assert_eq!(
            leaves,
            x.map(|(p, _)| (*p, true)).into_iter().collect::<Vec<_>>()
        );
        let q = go_query(&[
            ("target", "carbonapi.*.x"),
            ("format", "msgpack"),
            ("from", &from.to_string()),
            ("until", &until.to_string()),
        ]);
        let answer = get(n, &format!("/render/?{q}"), V2, None);
        let v: serde_json::Value =
            rmp_serde::from_slice(ok(&answer, "application/x-msgpack")).unwrap();
        let got: Vec<_> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                // msgp reads them as uint32.
                let u32_of = |k: &str| u32::try_from(m[k].as_u64().unwrap()).unwrap() as i64;
                assert_eq!(
                    (u32_of("start"), u32_of("end"), u32_of("step")),
                    (t0, t0 + 100, 10)
                );
                assert_eq!(m["pathExpression"], "carbonapi.*.x");
                let values: Vec<Option<f64>> = m["values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64())
                    .collect();
                (m["name"].as_str().unwrap().to_string(), values)
            })
            .collect();
        let want: Vec<_> = x
            .iter()
            .map(|(name, scale)| (name.to_string(), data.values(*scale)))
            .collect();
        assert_eq!(got, want, "node {i}");
    }

    // What a carbonapi could send wrong: a clear 400 each.
    let n = servers[0];
    let cases: [(&str, &str, Vec<u8>); 4] = [
        (
            "/render/?format=carbonapi_v3_pb",
            "MultiFetchRequest",
            b"\x0a\xff\xff".to_vec(),
        ),
        (
            "/metrics/find/?format=carbonapi_v3_pb",
            "MultiGlobRequest",
            b"garbage".to_vec(),
        ),
        ("/render/?format=carbonapi_v3_pb", "no metrics", Vec::new()),
        (
            "/_internal/capabilities/",
            "CapabilityRequest",
            b"\x0a".to_vec(),
        ),
    ];
    for (path, says, body) in cases {
        let (status, _, text) = get(n, path, V3, Some(&body));
        let text = String::from_utf8_lossy(&text);
        assert_eq!(status, 400, "{path}: {text}");
        assert!(text.contains(says), "{path}: {text}");
    }
}
