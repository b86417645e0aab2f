//! Graphite 1.1 tags end to end: tagged lines over the carbon port (in both spellings), then
//! `seriesByTag` / `groupByTags` / `aliasByTags` through `/render` and the `/tags` API over a
//! real HTTP server, and the tag index after a restart.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use graphite::server::{router, serve, HttpConfig};
use graphite::store::listen::{Server, ServerConfig};
use graphite::store::unix_now;

fn config(dir: &Path) -> ServerConfig {
    ServerConfig {
        tcp_listen: Some("127.0.0.1:0".parse().unwrap()),
        udp_listen: None,
        data_dir: dir.to_path_buf(),
        flush_interval: Duration::from_secs(3600),
        self_metrics_interval: Duration::ZERO,
        ..ServerConfig::default()
    }
}

/// One HTTP/1.1 GET (or POST with a form body): status and body.
fn http(addr: SocketAddr, method: &str, path: &str, form: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp[9..12].parse().unwrap();
    let body = resp.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    // Bodies here are small: axum sends them with a Content-Length, not chunked.
    (status, body.to_string())
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `"id": 123` → `"id": N`.
fn ids_masked(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some(i) = rest.find("\"id\": ") {
        out.push_str(&rest[..i + 6]);
        rest = &rest[i + 6..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        assert!(digits > 0, "{body}");
        out.push('N');
        rest = &rest[digits..];
    }
    out + rest
}

async fn wait_received(server: &Server, n: u64) {
    for _ in 0..2000 {
        if server.store().stats.points_received.load(Relaxed) >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the server did not receive {n} points");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tagged_lines_over_carbon_are_queryable_by_tag() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path())).await.unwrap();
    let now = unix_now() / 60 * 60;
    let t0 = now - 120;
    // Four series; web1's cpu arrives in two spellings (one series), db1 has no `role`.
    let mut lines = String::new();
    for k in 0..6 {
        let ts = t0 + 10 * k;
        let spelling = if k % 2 == 0 {
            "cpu.usage;host=web1;dc=east;role=web"
        } else {
            "cpu.usage;dc=east;role=web;host=web1"
        };
        lines += &format!("{spelling} 1 {ts}\n");
        lines += &format!("cpu.usage;dc=east;host=web2;role=web 3 {ts}\n");
        lines += &format!("cpu.usage;dc=west;host=db1 5 {ts}\n");
        lines += &format!("mem.free;dc=west;host=db1 7 {ts}\n");
        lines += &format!("plain.series 9 {ts}\n");
    }
    let mut c = TcpStream::connect(server.tcp_addr().unwrap()).unwrap();
    c.write_all(lines.as_bytes()).unwrap();
    drop(c);
    wait_received(&server, 30).await;
    assert_eq!(server.store().series_count(), 5);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(Arc::clone(server.store()), &HttpConfig::default());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let http_task = tokio::spawn(serve(listener, app, async {
        let _ = stop_rx.await;
    }));

    let checks = tokio::task::spawn_blocking(move || {
        let get = |p: &str| http(addr, "GET", p, "");
        let render = |target: &str| {
            let (st, body) = get(&format!(
                "/render?format=json&from={}&until={}&target={}",
                t0 - 1,
                t0 + 59,
                enc(target)
            ));
            assert_eq!(st, 200, "{target}: {body}");
            body
        };
        // seriesByTag: names sorted, the call text as pathExpression is internal; the
        // tags come from the canonical name.
        let body = render("seriesByTag('name=cpu.usage','dc=east')");
        assert!(body.starts_with(
            r#"[{"target": "cpu.usage;dc=east;host=web1;role=web", "tags": {"dc": "east", "host": "web1", "role": "web", "name": "cpu.usage"}, "datapoints": [[1.0, "#
        ), "{body}");
        assert!(body.contains(r#"{"target": "cpu.usage;dc=east;host=web2;role=web""#));
        // Both spellings landed in one series: six points of 1.0.
        assert_eq!(body.matches("[1.0, ").count(), 6, "{body}");
        // != matches the series without the tag.
        let body = render("seriesByTag('name=cpu.usage','role!=web')");
        assert!(
            body.starts_with(r#"[{"target": "cpu.usage;dc=west;host=db1""#),
            "{body}"
        );
        assert_eq!(body.matches("\"target\"").count(), 1);
        let body = render("seriesByTag('dc=~we')|groupByTags('sum','dc')");
        assert!(body.starts_with(r#"[{"target": "sum;dc=west", "tags": {"dc": "west", "name": "sum"}, "datapoints": [[12.0, "#), "{body}");
        let body = render("aliasByTags(seriesByTag('name=cpu.usage','host=~web'),'host',1)");
        assert!(
            body.contains(r#""target": "web1.usage""#)
                && body.contains(r#""target": "web2.usage""#),
            "{body}"
        );
        // A plain target naming a tagged series (either spelling) reads it too.
        let body = render("cpu.usage;role=web;host=web2;dc=east");
        assert!(
            body.starts_with(r#"[{"target": "cpu.usage;dc=east;host=web2;role=web""#),
            "{body}"
        );
        // A query of only empty-matching expressions is a 400 with graphite-web's message.
        let (st, body) = get(&format!(
            "/render?target={}",
            enc("seriesByTag('role!=web')")
        ));
        assert_eq!(st, 400);
        assert!(
            body.contains("At least one tagspec must not match the empty string"),
            "{body}"
        );

        // The /tags API, in graphite-web's shapes.
        // Ids are assigned in the order series were first seen (as graphite-web's tables).
        assert_eq!(
            ids_masked(&get("/tags").1),
            r#"[{"id": N, "tag": "dc"}, {"id": N, "tag": "host"}, {"id": N, "tag": "name"}, {"id": N, "tag": "role"}]"#
        );
        assert_eq!(
            ids_masked(&get("/tags?filter=h|r&limit=1").1),
            r#"[{"id": N, "tag": "host"}]"#
        );
        let (st, body) = get("/tags/dc");
        assert_eq!(st, 200);
        assert_eq!(
            ids_masked(&body),
            r#"{"id": N, "tag": "dc", "values": [{"id": N, "value": "east", "count": 2}, {"id": N, "value": "west", "count": 2}]}"#
        );
        assert_eq!(get("/tags/nosuch"), (200, "null".into()));
        assert_eq!(
            get(&format!(
                "/tags/findSeries?expr={}&expr={}",
                enc("name=~cpu"),
                enc("host!=web2")
            ))
            .1,
            r#"["cpu.usage;dc=east;host=web1;role=web", "cpu.usage;dc=west;host=db1"]"#
        );
        let (st, body) = http(
            addr,
            "POST",
            "/tags/findSeries",
            &format!("expr[]={}", enc("name=mem.free")),
        );
        assert_eq!(
            (st, body.as_str()),
            (200, r#"["mem.free;dc=west;host=db1"]"#)
        );
        assert_eq!(
            get("/tags/findSeries"),
            (400, r#"{"error": "no tag expressions specified"}"#.into())
        );
        assert_eq!(
            get(&format!("/tags/findSeries?expr={}", enc("dc!=x"))).0,
            400
        );
        assert_eq!(get("/tags/autoComplete/tags?tagPrefix=r").1, r#"["role"]"#);
        assert_eq!(
            get(&format!(
                "/tags/autoComplete/tags?expr={}",
                enc("name=mem.free")
            ))
            .1,
            r#"["dc", "host"]"#
        );
        assert_eq!(
            get(&format!(
                "/tags/autoComplete/values?tag=host&expr={}&valuePrefix=web",
                enc("dc=east")
            ))
            .1,
            r#"["web1", "web2"]"#
        );
        assert_eq!(
            get("/tags/autoComplete/values?tag=name&limit=2").1,
            r#"["cpu.usage", "mem.free"]"#
        );
        assert_eq!(get("/tags/autoComplete/values").0, 400);
        assert_eq!(get("/tags/delSeries").0, 405);
        assert_eq!(http(addr, "POST", "/tags", "").0, 405);
        assert_eq!(
            ids_masked(&get("/tags?jsonp=cb&limit=1").1),
            r#"cb([{"id": N, "tag": "dc"}])"#
        );
    });
    checks.await.unwrap();
    let _ = stop_tx.send(());
    http_task.await.unwrap().unwrap();
    server.shutdown().await.unwrap();

    // After a restart the index is rebuilt from the stored series.
    let server = Server::start(config(dir.path())).await.unwrap();
    assert_eq!(
        server.store().find_tagged(&["host=db1"]).unwrap(),
        ["cpu.usage;dc=west;host=db1", "mem.free;dc=west;host=db1"]
    );
    assert_eq!(server.store().tag_index().len(), 5);
    server.shutdown().await.unwrap();
}
