//! `carbide serve` end to end: data across a clean restart and a kill -9, the HTTP API's
//! shapes, limits against hostile requests, authentication, and the collector binary
//! sending to it.

mod common;

use std::time::Duration;

use common::{decode_png, enc, get_bytes, http, now, send_lines, series, wait_until, Carbide};

const PORTS: [&str; 6] = [
    "--carbon-tcp",
    "127.0.0.1:0",
    "--carbon-udp",
    "off",
    "--http-listen",
    "127.0.0.1:0",
];

fn serve(dir: &std::path::Path, extra: &[&str]) -> Carbide {
    let mut args = vec!["serve", "--data-dir", "data"];
    args.extend(PORTS);
    args.extend(extra);
    Carbide::start(dir, &args)
}

/// `n` points of `path` every 10 s ending at `end`: value = index.
fn lines(path: &str, n: i64, end: i64) -> String {
    (0..n)
        .map(|i| format!("{path} {i} {}\n", end - (n - 1 - i) * 10))
        .collect()
}

fn values_of(c: &Carbide, target: &str, from: &str) -> Vec<(Option<f64>, i64)> {
    let (st, body) = c.get(&format!(
        "/render?target={}&from={from}&format=json",
        enc(target)
    ));
    assert_eq!(st, 200, "{body}");
    series(&body).into_iter().flat_map(|(_, p)| p).collect()
}

fn known(c: &Carbide, target: &str) -> Vec<(f64, i64)> {
    values_of(c, target, "-1h")
        .into_iter()
        .filter_map(|(v, t)| v.map(|v| (v, t)))
        .collect()
}

#[test]
fn clean_restart_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let end = now() - now() % 10 - 10;
    let c = serve(dir.path(), &["--flush-interval", "1h"]);
    send_lines(
        c.carbon,
        &(lines("r.a", 100, end) + &lines("r.b", 100, end)),
    );
    assert!(wait_until(Duration::from_secs(30), || known(&c, "r.*")
        .len()
        == 200));
    let before = known(&c, "r.*");
    assert!(c.stop(), "carbide serve did not exit cleanly");
    let log = std::fs::read_to_string(dir.path().join("carbide.log")).unwrap();
    assert!(log.contains("store flushed and closed"), "{log}");

    let c = serve(dir.path(), &[]);
    let after = known(&c, "r.*");
    assert_eq!(after, before, "points differ after a clean restart");
    assert_eq!(after.len(), 200);
    assert!(c.stop());
}

/// The documented bound: a point is durable once a flush that started after it was received
/// has committed. Points confirmed flushed must survive kill -9.
#[test]
fn kill_9_keeps_flushed_points() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("serve.yml"),
        "flush_interval: 200ms\nself_metrics_interval: 200ms\n",
    )
    .unwrap();
    let end = now() - now() % 10 - 10;
    let c = serve(dir.path(), &["--config", "serve.yml"]);
    send_lines(c.carbon, &lines("k.flushed", 200, end));
    assert!(wait_until(Duration::from_secs(30), || known(
        &c,
        "k.flushed"
    )
    .len()
        == 200));
    let flushes = |c: &Carbide| -> f64 {
        values_of(c, "carbide.store.flushes", "-5min")
            .into_iter()
            .filter_map(|(v, _)| v)
            .fold(0.0, f64::max)
    };
    // The reported counter lags by at most one report; three more flushes than reported
    // after the points were visible means at least two started after they were received.
    let f0 = flushes(&c);
    assert!(wait_until(Duration::from_secs(60), || flushes(&c) >= f0 + 3.0));
    send_lines(c.carbon, &lines("k.tail", 50, end));
    c.kill9();

    let c = serve(dir.path(), &[]);
    let got = known(&c, "k.flushed");
    assert_eq!(got.len(), 200, "flushed points lost by kill -9");
    assert!(got.iter().enumerate().all(|(i, (v, _))| *v == i as f64));
    // The unflushed tail may be lost, never corrupted.
    let tail = known(&c, "k.tail");
    assert!(tail.len() <= 50 && tail.iter().all(|(v, _)| v.fract() == 0.0));
    assert!(c.stop());
}

#[test]
fn api_shapes_and_errors_as_graphite_web() {
    let dir = tempfile::tempdir().unwrap();
    let c = serve(dir.path(), &[]);
    let end = now() - now() % 10 - 10;
    send_lines(
        c.carbon,
        &(lines("web.host1.cpu", 6, end) + &lines("web.host2.cpu", 6, end)),
    );
    assert!(wait_until(Duration::from_secs(30), || known(
        &c,
        "web.*.cpu"
    )
    .len()
        == 12));

    let (st, body) = c.get("/version");
    assert_eq!((st, body.as_str()), (200, "1.1.10"));
    let (st, body) = c.get("/metrics/find?query=web.*");
    assert_eq!(st, 200);
    assert_eq!(
        body,
        r#"[{"text": "host1", "id": "web.host1", "allowChildren": 1, "expandable": 1, "leaf": 0}, {"text": "host2", "id": "web.host2", "allowChildren": 1, "expandable": 1, "leaf": 0}]"#
    );
    let (_, body) = c.get("/metrics/find?query=web.host1.&format=completer");
    assert_eq!(
        body,
        r#"{"metrics": [{"path": "web.host1.cpu", "name": "cpu", "is_leaf": "1"}]}"#
    );
    let (_, body) = c.get("/metrics/expand?query=web.*.cpu&leavesOnly=1");
    assert_eq!(body, r#"{"results": ["web.host1.cpu", "web.host2.cpu"]}"#);
    let (_, body) = c.get("/metrics/index.json");
    assert!(
        body.contains(r#""web.host1.cpu", "web.host2.cpu""#),
        "{body}"
    );
    let (st, body) = c.get("/metrics/find");
    assert_eq!(
        (st, body.as_str()),
        (400, "Missing required parameter 'query'")
    );

    // POSTed form, repeated targets, maxDataPoints, noNullPoints, csv, jsonp.
    let form = format!(
        "target={}&target=web.host2.cpu&from=-5min&maxDataPoints=2",
        enc("sumSeries(web.*.cpu)")
    );
    let (st, body) = http(
        c.http,
        "POST",
        "/render?format=json",
        &[],
        Some(("application/x-www-form-urlencoded", form.as_bytes())),
    );
    assert_eq!(st, 200, "{body}");
    let s = series(&body);
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].0, "sumSeries(web.*.cpu)");
    assert!(s.iter().all(|(_, p)| p.len() <= 3), "{body}");
    let (_, body) = c.get("/render?target=web.host1.cpu&from=-5min&noNullPoints=1&format=json");
    let s = series(&body);
    assert_eq!(s[0].1.len(), 6);
    let (_, csv) = c.get("/render?target=web.host1.cpu&from=-2min&format=csv");
    assert!(
        csv.lines().all(|l| l.starts_with("web.host1.cpu,")),
        "{csv}"
    );
    assert!(csv.contains("\r\n"));
    let (_, body) = c.get("/render?target=web.host1.cpu&from=-1min&jsonp=cb&format=json");
    assert!(body.starts_with("cb([{") && body.ends_with(")"), "{body}");

    // No match → [], bad target → 400 with the parser's message.
    let (st, body) = c.get("/render?target=nothing.here&format=json");
    assert_eq!((st, body.as_str()), (200, "[]"));
    let (st, body) = c.get(&format!("/render?target={}", enc("sumSeries(web.*")));
    assert_eq!(st, 400);
    assert!(body.contains("sumSeries(web.*"), "{body}");
    let (st, body) = c.get("/render?target=nosuchfunction(web.*.cpu)");
    assert_eq!(st, 400);
    assert!(body.contains("nosuchfunction"), "{body}");
    let (st, _) = c.get("/render?target=web.*.cpu&from=yesterdayish");
    assert_eq!(st, 400);
    let (st, body) = c.get("/functions/sumSeries");
    assert_eq!(st, 200);
    assert!(body.starts_with("{\"") && body.contains("\"name\": \"sumSeries\""));
    let (st, _) = c.get("/functions/nosuch");
    assert_eq!(st, 404);
    assert!(c.stop());
}

#[test]
fn render_draws_graphite_web_pictures() {
    let dir = tempfile::tempdir().unwrap();
    let end = now() - now() % 10 - 10;
    let c = serve(dir.path(), &[]);
    // pic.low is 1, pic.high 3, for the last ten minutes.
    let data: String = (0..60)
        .map(|i| {
            let t = end - (59 - i) * 10;
            format!("pic.low 1 {t}\npic.high 3 {t}\n")
        })
        .collect();
    send_lines(c.carbon, &data);
    assert!(wait_until(Duration::from_secs(30), || known(&c, "pic.*")
        .len()
        >= 100));

    // No format: a PNG, as graphite-web answers.
    let (st, ct, body) = get_bytes(
        c.http,
        "/render?target=pic.low&target=pic.high&from=-10min&yMin=0&yMax=4",
    );
    assert_eq!(
        (st, ct.as_str()),
        (200, "image/png"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    if let Ok(d) = std::env::var("CARBIDE_PICTURE_DIR") {
        std::fs::write(format!("{d}/serve-default.png"), &body).unwrap();
    }
    let (w, h, px) = decode_png(&body);
    assert_eq!((w, h), (330, 250));
    assert_eq!(px[0], [255, 255, 255, 255], "white background");
    // Blue (graphite-web's first colour) for pic.low lies below green for pic.high.
    let x = 250u32;
    let column = |rgb: [u8; 3]| -> Vec<u32> {
        (0..h)
            .filter(|&y| {
                let p = px[(y * w + x) as usize].map(i32::from);
                let d: i32 = (0..3).map(|i| (p[i] - i32::from(rgb[i])).abs()).sum();
                // Solid or anti-aliased towards white (a 1 px line between two pixel rows is two rows of
                // about (172, 167, 249)): the hue's channel ordering holds.
                d < 60
                    || (rgb == [100, 100, 255]
                        && p[2] > 240
                        && p[0] < 215
                        && (p[0] - p[1]).abs() < 16)
                    || (rgb == [0, 200, 0] && p[1] > p[0] + 40 && p[1] > p[2] + 40)
            })
            .collect()
    };
    let (blue, green) = (column([100, 100, 255]), column([0, 200, 0]));
    assert!(
        !blue.is_empty() && !green.is_empty(),
        "blue {blue:?} green {green:?}"
    );
    // 1 and 3 on a 0..4 axis: a quarter and three quarters of the way up the plot.
    assert!(blue[0] > green[0] + 60, "blue {blue:?} green {green:?}");

    // Graph parameters and functions change it.
    let q = format!(
        "/render?target={}&from=-10min&width=500&height=200&bgcolor=000000&hideLegend=true",
        enc("color(pic.low,'ff0000')")
    );
    let (st, _, body) = get_bytes(c.http, &q);
    assert_eq!(st, 200);
    let (w, h, px) = decode_png(&body);
    assert_eq!((w, h), (500, 200));
    assert_eq!(px[0], [0, 0, 0, 255]);
    assert!(
        // Solid, or a 1 px line between two pixel rows: two rows of about half red on black.
        px.iter().any(|p| p[0] > 100 && p[1] < 40 && p[2] < 40),
        "a red line"
    );

    // SVG: parsed, with the legend's names and the series' colours.
    let (st, ct, body) = get_bytes(
        c.http,
        "/render?target=pic.*&from=-10min&format=svg&title=Pics",
    );
    assert_eq!((st, ct.as_str()), (200, "image/svg+xml"));
    let text = String::from_utf8(body).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    let texts: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .collect();
    assert!(
        texts.contains(&"Pics") && texts.contains(&"pic.low") && texts.contains(&"pic.high"),
        "{texts:?}"
    );
    assert!(doc
        .descendants()
        .any(|n| n.attribute("stroke") == Some("#6464ff")));

    // A bad graph parameter is a 400 naming it; JSON and CSV still answer when asked.
    for (q, name) in [
        ("width=0", "width"),
        ("width=100000", "width"),
        ("bgcolor=nope", "bgcolor"),
        ("lineMode=wavy", "lineMode"),
        ("format=pdf", "format"),
    ] {
        let (st, body) = c.get(&format!("/render?target=pic.low&{q}"));
        assert_eq!(st, 400, "{q}: {body}");
        assert!(body.contains(name), "{q}: {body}");
    }
    assert!(values_of(&c, "pic.low", "-10min").len() >= 50);
    assert!(c.stop());
}

#[test]
fn hostile_requests_get_400s_and_the_server_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("schemas.conf"),
        "[fine]\npattern = ^fine\\.\nretentions = 1s:5y\n[default]\npattern = .*\nretentions = 10s:1d\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("serve.yml"),
        "limits: {max_targets: 5, max_body_bytes: 4096, max_points_per_request: 1000000,\n  \
         max_picture_side: 600, max_picture_pixels: 200000, max_picture_text_chars: 20}\n",
    )
    .unwrap();
    let c = serve(
        dir.path(),
        &["--config", "serve.yml", "--schemas", "schemas.conf"],
    );
    send_lines(c.carbon, &format!("fine.a 1 {}\n", now() - 5));
    assert!(wait_until(Duration::from_secs(30), || known(&c, "fine.a")
        .len()
        == 1));

    // Years of 1 s data.
    let (st, body) = c.get("/render?target=fine.a&from=-4y");
    assert_eq!(st, 400);
    assert!(body.contains("max_points_per_request"), "{body}");
    // Brace bomb (in a target and in find), deep nesting, too many targets, huge body.
    let bomb = "{a,b,c,d,e,f,g,h,i,j}".repeat(8);
    let (st, _) = c.get(&format!("/render?target=x.{}", enc(&bomb)));
    assert_eq!(st, 400);
    let (st, _) = c.get(&format!("/metrics/find?query=x.{}", enc(&bomb)));
    assert_eq!(st, 400);
    let deep = format!("{}fine.a{}", "absolute(".repeat(500), ")".repeat(500));
    let (st, _) = c.get(&format!("/render?target={}", enc(&deep)));
    assert_eq!(st, 400);
    let many: String = (0..6).map(|_| "target=fine.a&").collect();
    let (st, body) = c.get(&format!("/render?{many}"));
    assert_eq!(st, 400);
    assert!(body.contains("max_targets"), "{body}");
    let big = format!("target=fine.a&pad={}", "x".repeat(10_000));
    let (st, _) = http(
        c.http,
        "POST",
        "/render",
        &[],
        Some(("application/x-www-form-urlencoded", big.as_bytes())),
    );
    assert_eq!(st, 413);
    let (st, _) = c.get("/render?target=fine.a&maxDataPoints=-3");
    assert_eq!(st, 400);
    let (st, _) = c.get("/render?target=fine.a&jsonp=alert(1)");
    assert_eq!(st, 400);
    // The picture limits of the file.
    for (q, limit) in [
        ("width=601", "max_picture_side"),
        ("width=500&height=401", "max_picture_pixels"),
        ("title=012345678901234567890", "max_picture_text_chars"),
    ] {
        let (st, body) = c.get(&format!("/render?target=fine.a&{q}"));
        assert_eq!(st, 400, "{q}: {body}");
        assert!(body.contains(limit), "{q}: {body}");
    }
    let (st, ct, png) = get_bytes(
        c.http,
        "/render?target=fine.a&width=600&height=300&title=01234567890123456789",
    );
    assert_eq!((st, ct.as_str()), (200, "image/png"));
    let (w, h, _) = decode_png(&png);
    assert_eq!((w, h), (600, 300));
    // Still serving.
    assert_eq!(known(&c, "fine.a").len(), 1);
    assert!(c.stop());
}

#[test]
fn basic_auth_and_bearer_token() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["serve", "--data-dir", "data", "--http-user", "grafana"];
    args.extend(PORTS);
    let c = Carbide::start_env(
        dir.path(),
        &args,
        &[
            ("CARBIDE_HTTP_PASSWORD", "s3cret-pass"),
            ("CARBIDE_HTTP_TOKEN", "tok-abc"),
        ],
    );
    let (st, body) = c.get("/version");
    assert_eq!(st, 401);
    assert!(!body.contains("s3cret") && !body.contains("tok-abc"));
    // "grafana:s3cret-pass"
    let (st, _) = http(
        c.http,
        "GET",
        "/version",
        &[("Authorization", "Basic Z3JhZmFuYTpzM2NyZXQtcGFzcw==")],
        None,
    );
    assert_eq!(st, 200);
    let (st, _) = http(
        c.http,
        "GET",
        "/version",
        &[("Authorization", "Bearer tok-abc")],
        None,
    );
    assert_eq!(st, 200);
    let (st, _) = http(
        c.http,
        "GET",
        "/version",
        &[("Authorization", "Bearer tok-abd")],
        None,
    );
    assert_eq!(st, 401);
    assert!(c.stop());
    let log = std::fs::read_to_string(dir.path().join("carbide.log")).unwrap();
    assert!(!log.contains("s3cret") && !log.contains("tok-abc"), "{log}");
}

/// The `collector` binary of the carbide-collector package (built on demand: cargo builds
/// only this package's binaries for its tests).
/// The agent binary started in `dir` with `collectors.d/host.yml` = `host_yml` and
/// `collector.yml` = `collector_yml`.
fn start_agent(
    bin: &std::path::Path,
    dir: &std::path::Path,
    host_yml: &str,
    collector_yml: &str,
) -> std::process::Child {
    std::fs::create_dir(dir.join("collectors.d")).unwrap();
    std::fs::write(dir.join("collectors.d/host.yml"), host_yml).unwrap();
    std::fs::write(dir.join("collector.yml"), collector_yml).unwrap();
    std::process::Command::new(bin)
        .current_dir(dir)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

fn collector_bin() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir.join("collector");
    // A workspace run builds the agent first; a run of this file alone does not, so build it
    // here when it is missing or older than its sources (the agent and the graphite crate).
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let built = std::fs::metadata(&bin).and_then(|m| m.modified()).ok();
    let newest = ["collector", "graphite"]
        .iter()
        .filter_map(|c| newest_mtime(&root.join(c)))
        .max();
    if built.is_none() || newest > built {
        let st = std::process::Command::new(env!("CARGO"))
            .args(["build", "-p", "carbide-collector", "--bin", "collector"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(st.success());
    }
    assert!(bin.exists(), "{} not built", bin.display());
    bin
}

/// The newest modification time of the files under `dir` (its `src/` and `Cargo.toml`).
fn newest_mtime(dir: &std::path::Path) -> Option<std::time::SystemTime> {
    let mut newest = std::fs::metadata(dir.join("Cargo.toml"))
        .and_then(|m| m.modified())
        .ok();
    let mut stack = vec![dir.join("src")];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                stack.push(e.path());
            } else if let Ok(t) = meta.modified() {
                newest = newest.max(Some(t));
            }
        }
    }
    newest
}

/// The agent's `tags:` (global, and per instance over it) reach a real `carbide serve` as
/// Graphite 1.1 tagged series that `seriesByTag` finds; the self-metrics carry the global tags.
#[test]
fn collector_tags_are_found_by_series_by_tag() {
    let bin = collector_bin();
    let dir = tempfile::tempdir().unwrap();
    let c = serve(dir.path(), &[]);
    let mut agent = start_agent(
        &bin,
        dir.path(),
        "type: host\ntags: {role: db, tier: \"1\"}\n",
        &format!(
            "hostname_method: fixed\nhostname: taghost\ninterval: 1s\ntags:\n  dc: eu\n  role: web\nsender:\n  destinations: [\"{}\"]\n  spool_dir: spool\n",
            c.carbon
        ),
    );
    let load = "seriesByTag('dc=eu','name=servers.taghost.loadavg.01')";
    let selfm =
        "seriesByTag('dc=eu','role=web','name=~^servers\\.taghost\\.carbide\\.collector\\.')";
    let ok = wait_until(Duration::from_secs(60), || {
        !known(&c, load).is_empty() && !known(&c, selfm).is_empty()
    });
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(agent.id() as i32, libc::SIGTERM) };
    let status = agent.wait().unwrap();
    assert!(ok, "tagged metrics never became queryable by seriesByTag");
    assert!(status.success());
    let names = |target: &str| -> Vec<String> {
        let (st, body) = c.get(&format!(
            "/render?target={}&from=-1h&format=json",
            enc(target)
        ));
        assert_eq!(st, 200, "{body}");
        series(&body).into_iter().map(|(n, _)| n).collect()
    };
    // The instance's `role` wins over the global one; its own `tier` is added; sorted.
    assert_eq!(
        names(load),
        ["servers.taghost.loadavg.01;dc=eu;role=db;tier=1"]
    );
    // No host metric kept the global role, and none is untagged.
    assert!(names("seriesByTag('role=web','name=~^servers\\.taghost\\.loadavg')").is_empty());
    assert!(known(&c, "servers.taghost.loadavg.01").is_empty());
    // Self-metrics: the global tags only.
    let own = names(selfm);
    assert!(!own.is_empty());
    assert!(
        own.iter().all(|n| n.ends_with(";dc=eu;role=web")),
        "{own:?}"
    );
    assert!(c.stop());
}

#[test]
fn collector_binary_sends_to_carbide_serve() {
    let bin = collector_bin();
    let dir = tempfile::tempdir().unwrap();
    let c = serve(dir.path(), &[]);
    let mut agent = start_agent(
        &bin,
        dir.path(),
        "type: host\ninterval: 1s\n",
        // spool_dir: in the test's directory (as root the default is the system's spool).
        &format!(
            "hostname_method: fixed\nhostname: e2ehost\nsender:\n  destinations: [\"{}\"]\n  spool_dir: spool\n",
            c.carbon
        ),
    );
    let ok = wait_until(Duration::from_secs(60), || {
        !known(&c, "servers.e2ehost.loadavg.01").is_empty()
    });
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(agent.id() as i32, libc::SIGTERM) };
    let status = agent.wait().unwrap();
    assert!(ok, "host metrics never became queryable");
    assert!(status.success());
    let (_, body) = c.get("/metrics/find?query=servers.e2ehost.*");
    assert!(body.contains("\"id\": \"servers.e2ehost.cpu\""), "{body}");
    assert!(c.stop());
}
