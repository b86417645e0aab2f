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
//!   generators and over real data, plus the issue's examples verbatim. After each request
//!   the process is alive, `/version` answers within 5 s, its resident memory is under
//!   the cap, and the answer is 2xx or 4xx;
//! - the cluster protocols: graphite-web's pickle/msgpack (query strings, multipart bodies)
//!   and carbonapi's (`protobuf` query strings; truncated, garbage, deeply nested and huge
//!   `carbonapi_v3_pb` bodies; the capabilities probe).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use common::{enc, http, request_bytes, wait_until, Carbide};
use graphite::functions::{Function, ParamType, FUNCTIONS};
use graphite::server::carbonapi::v3;
use prost::Message;

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

/// `GET /version` on a new connection answers 200 within 5 s: a stalled server never does,
/// and a debug build on two loaded cores once missed a 1 s bound while a render ran.
fn version_answers(addr: SocketAddr) -> bool {
    let limit = Duration::from_secs(5);
    let Ok(mut s) = TcpStream::connect_timeout(&addr, limit) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(limit));
    let _ = s.set_write_timeout(Some(limit));
    let req = format!("GET /version HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    text.starts_with("HTTP/1.1 200") && text.ends_with("1.1.10")
}

/// The process is alive, `/version` answers within 5 s, RSS is under the cap.
fn healthy(c: &mut Carbide) -> Result<(), String> {
    if !c.alive() {
        return Err("the process died".into());
    }
    if !version_answers(c.http) {
        return Err("/version did not answer within 5 s".into());
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
    // Each slow request ends with 504 (stopped) or a 4xx naming a limit, never a 5xx else;
    // on a fast machine one may finish within the deadline (200): the deadline itself is
    // checked by the 1 ns case above, and this part checks that nothing else comes back.
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
        let ok = (200..300).contains(&st)
            || (400..500).contains(&st)
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

// ---- The generated corpus ----

/// The most hostile values of a parameter type, as target text (two or three per type: the
/// evaluator's own suite, graphite/tests/hostile_eval.rs, goes through many more in process;
/// this one goes through HTTP, the store and the real binary).
fn extremes(ty: ParamType) -> &'static [&'static str] {
    use ParamType as T;
    match ty {
        T::SeriesList | T::SeriesLists => &[
            "sin('g',1,1)",
            "time('t',1)",
            "nosuch.*",
            "hostile.**.**.**.**.**",
        ],
        T::Int => &["-1000000000", "0", "2147483647"],
        T::Float => &["-1e308", "1e308"],
        T::IntOrInf => &["-1", "inf"],
        T::Bool => &["true"],
        T::Node => &["-1000", "1000"],
        T::NodeOrTag => &["-1000", "'nosuch'"],
        T::String => &[
            "'\\1\\1\\1\\1\\1\\1\\1\\1\\1\\1'",
            "'(a+)+$'",
            "'a{1000}{1000}'",
        ],
        T::Interval => &["'-30d'", "'1000y'", "'0s'"],
        T::IntOrInterval => &["-1000000000", "'-30d'", "'1000y'"],
        T::AggFunc => &["'multiply'", "'nosuch'"],
        T::AggOrSeriesFunc => &["'diff'"],
        T::Any => &["-1", "hostile.*.cpu"],
        T::Date => &["'-1000y'", "'20991231'"],
        T::Tag => &["''"],
    }
}

/// An ordinary value of a parameter type (series: the real data fed over carbon).
fn normal(ty: ParamType, options: &[&str]) -> String {
    use ParamType as T;
    if let Some(o) = options.first() {
        return format!("'{o}'");
    }
    match ty {
        T::SeriesList | T::SeriesLists => "hostile.*.cpu",
        T::Int | T::IntOrInf => "2",
        T::Float => "1.5",
        T::Bool => "false",
        T::Node | T::NodeOrTag => "1",
        T::String => "'x'",
        T::Interval => "'5min'",
        T::IntOrInterval => "3",
        T::AggFunc | T::AggOrSeriesFunc => "'sum'",
        T::Any => "1",
        T::Date => "'-1h'",
        T::Tag => "'name'",
    }
    .to_string()
}

/// One hostile request: form parameters of a POST to `/render` (no URL length limit).
type Case = Vec<(String, String)>;

fn render_case(target: String, from: &str) -> Case {
    vec![
        ("target".into(), target),
        ("from".into(), from.into()),
        ("format".into(), "json".into()),
    ]
}

/// The cases for one function of the registry: its required arguments over real data and
/// over a generator, each parameter set to each of its extreme values, its `multiple`
/// parameter repeated, nesting and pipes, 200 targets at once, a template whose value is
/// substituted past the length limit, from the epoch and reversed.
fn cases(f: &Function) -> Vec<Case> {
    let params = f.params;
    let normals: Vec<String> = params.iter().map(|p| normal(p.ty, p.options)).collect();
    let required = params.iter().take_while(|p| p.required).count();
    let call = |args: &[String]| format!("{}({})", f.name, args.join(","));
    let base_args: Vec<String> = normals[..required].to_vec();
    let base = call(&base_args);
    let series_first = params
        .first()
        .is_some_and(|p| matches!(p.ty, ParamType::SeriesList | ParamType::SeriesLists));
    let mut out = vec![render_case(base.clone(), "-1h")];
    for (i, p) in params.iter().enumerate() {
        let values: Vec<String> = if p.options.is_empty() {
            extremes(p.ty).iter().map(|v| v.to_string()).collect()
        } else {
            vec![format!("'{}'", p.options[p.options.len() - 1])]
        };
        for v in values {
            let mut args: Vec<String> = normals[..i].to_vec();
            args.push(v);
            out.push(render_case(call(&args), "-1h"));
        }
        if p.multiple {
            let mut args: Vec<String> = normals[..i].to_vec();
            args.extend(std::iter::repeat_n(normals[i].clone(), 100));
            out.push(render_case(call(&args), "-1h"));
        }
    }
    if series_first {
        let rest = &normals[1..required.max(1)];
        let mut nested = "hostile.*.cpu".to_string();
        for _ in 0..12 {
            let mut args = vec![nested];
            args.extend(rest.iter().cloned());
            nested = call(&args);
        }
        out.push(render_case(nested, "-1h"));
        let piece = format!("|{}({})", f.name, rest.join(","));
        out.push(render_case(
            format!("hostile.*.cpu{}", piece.repeat(3000)),
            "-1h",
        ));
        // A template whose value is substituted past the 16 KB limit.
        let mut args = vec!["hostile.$h.cpu".to_string()];
        args.extend(rest.iter().cloned());
        let mut c = render_case(format!("template({}, h='*')", call(&args)), "-1h");
        c.push(("template[h]".into(), "*".repeat(20_000)));
        out.push(c);
    }
    // From the epoch, over generators; reversed; 200 targets at once.
    let mut gen_args = base_args.clone();
    if let (true, Some(first)) = (series_first, gen_args.first_mut()) {
        *first = "sin('g',1,1)".into();
    }
    out.push(render_case(call(&gen_args), "0"));
    let mut c = render_case(base.clone(), "now");
    c.push(("until".into(), "-1d".into()));
    out.push(c);
    let mut c: Case = vec![("from".into(), "-1d".into())];
    c.extend((0..200).map(|_| ("target".to_string(), base.clone())));
    out.push(c);
    out
}

/// The issue's examples, verbatim where they are targets.
fn issue_examples() -> Vec<(&'static str, Case)> {
    let mut moving = "hostile.h0.cpu".to_string();
    for _ in 0..60 {
        moving = format!("movingAverage({moving},1)");
    }
    let mut alias = "hostile.h0.cpu".to_string();
    for _ in 0..8 {
        alias = format!("aliasSub({alias},'(.*)','\\1\\1\\1\\1\\1\\1\\1\\1')");
    }
    let globs: Vec<String> = (0..1000).map(|i| format!("hostile.h{i}.*")).collect();
    let mut many: Case = vec![("from".into(), "-1d".into())];
    many.extend((0..200).map(|_| ("target".to_string(), "servers.*.cpu.*".to_string())));
    vec![
        (
            "time from the epoch",
            render_case("time('t',1)".into(), "0"),
        ),
        (
            "negative window",
            render_case("movingAverage(constantLine(1),-1000000000)".into(), "-1h"),
        ),
        (
            "LCM step",
            render_case(
                "sumSeries(sin('a',1,1),sin('b',1,2147483647))".into(),
                "-1h",
            ),
        ),
        (
            "3000 pipes",
            render_case(format!("constantLine(1){}", "|sum()".repeat(3000)), "-1h"),
        ),
        ("200 globs over a day", many),
        (
            "group of 1000 globs",
            render_case(format!("group({})", globs.join(",")), "-1d"),
        ),
        (
            "timeStack 1000",
            render_case("timeStack(hostile.*.cpu,'1s',0,1000)".into(), "-1h"),
        ),
        (
            "nested timeStack",
            render_case(
                "timeStack(timeStack(timeStack(hostile.*.cpu,'1s',0,100),'1s',0,100),'1s',0,100)"
                    .into(),
                "-1h",
            ),
        ),
        ("60 nested movingAverage", render_case(moving, "-1h")),
        ("nested aliasSub", render_case(alias, "-1h")),
        (
            "summarize 1s over 69 days",
            render_case("summarize(hostile.*.*,'1s')".into(), "-69d"),
        ),
        (
            "five ** in a glob",
            render_case("sumSeries(hostile.**.**.**.**.**)".into(), "-1h"),
        ),
        (
            "a glob of 300 nodes",
            render_case(format!("hostile{}", ".*".repeat(300)), "-1h"),
        ),
        (
            "reversed window",
            render_case("holtWintersForecast(hostile.h0.cpu,'-30d')".into(), "-1h"),
        ),
    ]
}

fn form(case: &Case) -> String {
    case.iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[test]
fn generated_corpus_from_the_function_registry() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = serve(
        dir.path(),
        "limits:\n  max_points_per_request: 2000000\n  render_timeout: 3s\n",
    );
    // Real data: 20 hosts × 3 metrics over the last hour at 10 s, Diamond-style series and
    // tagged ones.
    let now = common::now();
    let mut lines = String::new();
    for h in 0..20 {
        for t in (now - 3600..now).step_by(10) {
            let v = (t % 97) as f64 + h as f64;
            lines.push_str(&format!(
                "hostile.h{h}.cpu {v} {t}\nhostile.h{h}.mem {v} {t}\n"
            ));
            lines.push_str(&format!("servers.h{h}.cpu.user {v} {t}\n"));
            lines.push_str(&format!("cpu;host=h{h};dc=x {v} {t}\n"));
        }
    }
    common::send_lines(c.carbon, &lines);
    assert!(wait_until(Duration::from_secs(60), || {
        let (_, body) = c.get("/render?target=countSeries(hostile.*.cpu)&from=-5min&format=json");
        body.contains("20.0")
    }));

    let mut all: Vec<(String, Case)> = issue_examples()
        .into_iter()
        .map(|(n, c)| (n.to_string(), c))
        .collect();
    for f in FUNCTIONS {
        for (i, case) in cases(f).into_iter().enumerate() {
            all.push((format!("{}#{i}", f.name), case));
        }
    }
    let mut failures = Vec::new();
    let (mut ok, mut client, mut stopped) = (0, 0, 0);
    let mut peak_rss = 0;
    for (name, case) in &all {
        let body = form(case);
        let (st, answer) = http(
            c.http,
            "POST",
            "/render",
            &[],
            Some(("application/x-www-form-urlencoded", body.as_bytes())),
        );
        match st {
            200..=299 => ok += 1,
            400..=499 => client += 1,
            // Stopped at the deadline or refused for a busy slot: bounded, named refusals.
            503 | 504 if answer.contains("render_timeout") || answer.contains("render_queue") => {
                stopped += 1;
                eprintln!("stopped at a limit: {name}: {st}");
            }
            _ => failures.push(format!(
                "{name}: status {st}: {}",
                answer.chars().take(300).collect::<String>()
            )),
        }
        if let Err(e) = healthy(&mut c) {
            panic!(
                "after {name} ({st}): {e}\nrequest: {}",
                &body[..body.len().min(500)]
            );
        }
        peak_rss = peak_rss.max(c.status_kb("VmRSS"));
    }
    eprintln!(
        "hostile corpus: {} requests ({} functions): {ok} answered, {client} refused (4xx), \
         {stopped} stopped at a limit (503/504); peak RSS {peak_rss} kB",
        all.len(),
        FUNCTIONS.len()
    );
    // A tag query of 500 regexes, and the tag and index endpoints under their limits.
    let exprs: String = (0..500)
        .map(|i| format!("expr={}&", enc(&format!("host=~h{i}.*"))))
        .collect();
    let (st, answer) = http(
        c.http,
        "POST",
        "/tags/findSeries",
        &[],
        Some(("application/x-www-form-urlencoded", exprs.as_bytes())),
    );
    assert!((400..500).contains(&st), "500 regexes: {st} {answer}");
    let deep_glob = ".*".repeat(300);
    let endpoints = [
        "/tags".to_string(),
        "/tags/host".into(),
        "/metrics/index.json".into(),
        "/metrics/find?query=**".into(),
        "/metrics/find?query=hostile.**.**.**.**.**".into(),
        format!("/metrics/find?query=hostile{deep_glob}"),
        "/metrics/find?query=..&format=completer".into(),
        "/metrics/expand?query=hostile.**.**.**.**.**&query=*".into(),
        format!("/tags?filter={}", enc("(a+)+$")),
        format!("/tags?filter={}", enc("a{1000}{1000}")),
        format!("/tags/host?filter={}", enc("(")),
        "/tags/host?limit=-5".into(),
        "/tags/host?limit=99999999999999999999".into(),
        format!("/tags/findSeries?expr={}", enc("host=~(")),
        "/tags/findSeries?expr=".into(),
        format!(
            "/tags/autoComplete/tags?tagPrefix=%00&expr={}",
            enc("host=h1")
        ),
        format!(
            "/tags/autoComplete/values?tag=host&expr={}",
            enc("host=~a{1000}{1000}")
        ),
        "/render?target=hostile.*.cpu&from=-999999999y".into(),
        "/render?target=hostile.*.cpu&from=99999999999999999999".into(),
        "/render?target=hostile.*.cpu&maxDataPoints=1e308".into(),
        "/render?target=hostile.*.cpu&format=csv&tz=Nowhere/Nope".into(),
        "/render?target=hostile.*.cpu&now=-99999y".into(),
        // Graph parameters (format=png is the default): each refused with a 400 naming it,
        // or drawn within the picture limits.
        "/render?target=hostile.*.cpu&width=999999999&height=999999999".into(),
        "/render?target=hostile.*.cpu&width=8192&height=8192".into(),
        "/render?target=hostile.*.cpu&width=-1".into(),
        "/render?target=hostile.*.cpu&fontSize=1e308&lineWidth=1e308".into(),
        "/render?target=hostile.*.cpu&yStep=0.0000000000001&yMin=0&yMax=1e300".into(),
        "/render?target=hostile.*.cpu&logBase=1.0000000001".into(),
        "/render?target=hostile.*.cpu&logBase=1.0000000001&yMin=1e-300&yMax=1e300".into(),
        "/render?target=hostile.*.cpu&minXStep=0.0000001&margin=100000".into(),
        "/render?target=hostile.*.cpu&yDivisors=1,100,7,3&minorY=100".into(),
        "/render?target=hostile.*.cpu&xFormat=%25Q%25%25%25".into(),
        format!("/render?target=hostile.*.cpu&title={}", "T".repeat(5000)),
        format!("/render?target=hostile.*.cpu&colorList={}", "red,".repeat(5000)),
        "/render?target=hostile.*.cpu&format=svg&title=%3Cscript%3E&vtitle=%00%01".into(),
        "/render?target=hostile.*.cpu&bgcolor=%23zz&fgcolor=%2523".into(),
        "/render?target=color(hostile.*.cpu,'nonsense')".into(),
        "/render?target=drawAsInfinite(hostile.*.cpu)&areaMode=stacked&areaAlpha=0.5&lineMode=connected&connectedLimit=1".into(),
        "/render?target=secondYAxis(hostile.h1.cpu)&target=hostile.*.mem&yMinRight=5&yMaxRight=1&vtitleRight=x".into(),
        "/events/get_data?from=-999999999y&until=99999999999999999999".into(),
        "/events/get_data?jsonp=%3Cscript%3E&tags=%00".into(),
        "/events/99999999999999999999999999/".into(),
        "/events/-1/".into(),
        "/functions/%00".into(),
        "/tags/%00".into(),
        // The cluster formats graphite-web's front end reads, at `//` paths too.
        "/render?target=hostile.*.cpu&format=pickle&from=-999999999y".into(),
        "//render/?target=hostile.**&format=msgpack&local=1&noCache=1&now=99999999999999999999".into(),
        "//render/?target=sumSeries(hostile.*.*)&target=hostile.*.cpu&format=pickle&local=1".into(),
        "//metrics/find/?query=**&format=pickle&local=1".into(),
        format!("//metrics/find/?query=hostile{deep_glob}&format=msgpack&local=1"),
        "//metrics/index.json?local=1".into(),
        format!(
            "//tags/autoComplete/tags?local=1&limit=99999999999999999999&expr={}",
            enc("host=~(a+)+$")
        ),
        format!(
            "//tags/autoComplete/values?local=1&tag=%00&expr={}",
            enc("host=~a{1000}{1000}")
        ),
        // carbonapi's carbonapi_v2_pb (format=protobuf) and msgpack query strings.
        "/render/?format=protobuf&target=hostile.**&from=-999999999y&until=99999999999999999999".into(),
        "//render/?format=carbonapi_v2_pb&target=sumSeries(hostile.*.*)&target=hostile.*.cpu".into(),
        "/metrics/find/?format=protobuf3&query=**".into(),
        format!("/metrics/find/?format=protobuf&query=hostile{deep_glob}"),
        "/metrics/find/?format=msgpack&query=hostile.*.*".into(),
        "/_internal/capabilities/?format=pickle".into(),
    ];
    for q in &endpoints {
        let (st, answer) = c.get(q);
        assert!(
            (200..500).contains(&st),
            "{q}: {st} {}",
            &answer[..answer.len().min(300)]
        );
        healthy(&mut c).unwrap();
    }
    // multipart/form-data bodies (graphite-web's REMOTE_STORE_USE_POST) to every endpoint its
    // cluster front end POSTs to: more targets than allowed, a truncated body, no boundary.
    let many: String = (0..5000)
        .map(|i| {
            format!("--b\r\nContent-Disposition: form-data; name=\"target\"\r\n\r\nhostile.h{i}.cpu\r\n")
        })
        .collect::<String>()
        + "--b--\r\n";
    let bodies: [(&str, &[u8]); 3] = [
        ("multipart/form-data; boundary=b", many.as_bytes()),
        (
            "multipart/form-data; boundary=b",
            b"--b\r\nContent-Disposition: form-data; name=\"target\"\r\n\r\nx",
        ),
        ("multipart/form-data", b"--x\r\n"),
    ];
    for (k, (ct, body)) in bodies.into_iter().enumerate() {
        for path in [
            "//render/?format=pickle&local=1",
            "//metrics/find/?format=msgpack",
            "//metrics/index.json?local=1",
            "//tags/autoComplete/tags?local=1",
            "//tags/autoComplete/values?local=1",
        ] {
            // Well-formed, the many targets are over render's limit and find's `query` is
            // missing; the index and autocomplete take no `target` and may answer.
            let lowest = if k == 0 && !path.contains("render") && !path.contains("find") {
                200
            } else {
                400
            };
            let (st, answer) = http(c.http, "POST", path, &[], Some((ct, body)));
            assert!(
                (lowest..500).contains(&st),
                "{path} {ct}: {st} {}",
                &answer[..answer.len().min(300)]
            );
            healthy(&mut c).unwrap();
        }
    }
    carbonapi_v3_bodies(&mut c, &deep_glob);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(c.stop(), "carbide serve did not exit 0 after the corpus");
}

/// carbonapi_v3_pb bodies (the request is the body of a GET) to render, find and the
/// capabilities probe: each a 2xx or a 4xx, the server healthy after each.
fn carbonapi_v3_bodies(c: &mut Carbide, deep_glob: &str) {
    let fetch = |name: &str, start: i64, stop: i64| v3::FetchRequest {
        name: name.into(),
        path_expression: name.into(),
        start_time: start,
        stop_time: stop,
        max_data_points: i64::MAX,
        ..Default::default()
    };
    let fetches =
        |metrics: Vec<v3::FetchRequest>| v3::MultiFetchRequest { metrics }.encode_to_vec();
    let globs = |metrics: Vec<String>| {
        v3::MultiGlobRequest {
            metrics,
            start_time: i64::MIN,
            stop_time: i64::MAX,
        }
        .encode_to_vec()
    };
    let now = common::now();
    // Field 1 nested in itself 10 000 deep: past prost's recursion limit.
    let mut nested = Vec::new();
    for _ in 0..10_000 {
        let mut outer = vec![0x0a];
        prost::encoding::encode_varint(nested.len() as u64, &mut outer);
        outer.extend_from_slice(&nested);
        nested = outer;
    }
    let valid = fetches(vec![fetch("hostile.*.cpu", now - 600, now)]);
    let bodies: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "render",
            "over max_targets",
            fetches(vec![v3::FetchRequest::default(); 100_000]),
        ),
        (
            "render",
            "huge window",
            fetches(vec![fetch("hostile.**", i64::MIN, i64::MAX)]),
        ),
        (
            "render",
            "every series",
            fetches(vec![fetch("hostile.**", now - 3600, now); 150]),
        ),
        (
            "render",
            "functions",
            fetches(vec![
                fetch("sumSeries(hostile.*.*)", now - 3600, now),
                fetch("seriesByTag('host=~h.*')", 0, now),
            ]),
        ),
        (
            "render",
            "deep glob",
            fetches(vec![fetch(&format!("hostile{deep_glob}"), now - 60, now)]),
        ),
        (
            "render",
            "bad target",
            fetches(vec![fetch("sumSeries(", now - 60, now)]),
        ),
        (
            "render",
            "empty window",
            fetches(vec![fetch("hostile.*.cpu", now, now)]),
        ),
        ("render", "truncated", valid[..valid.len() - 3].to_vec()),
        (
            "render",
            "garbage",
            b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff".to_vec(),
        ),
        ("render", "nested", nested.clone()),
        ("render", "empty", Vec::new()),
        (
            "find",
            "over max_targets",
            globs(vec!["**".into(); 200_000]),
        ),
        ("find", "every node", globs(vec!["**".into(); 100])),
        (
            "find",
            "deep glob",
            globs(vec![format!("hostile{deep_glob}")]),
        ),
        ("find", "nested", nested.clone()),
        (
            "find",
            "truncated",
            globs(vec!["hostile.*".into()])[..5].to_vec(),
        ),
        ("capabilities", "nested", nested),
        ("capabilities", "garbage", b"\x0a\xff".to_vec()),
    ];
    for (endpoint, what, body) in &bodies {
        let path = match *endpoint {
            "render" => "//render/?format=carbonapi_v3_pb",
            "find" => "//metrics/find/?format=carbonapi_v3_pb",
            _ => "/_internal/capabilities/",
        };
        let (st, _, answer) = request_bytes(
            c.http,
            "GET",
            path,
            &[("Accept", "application/x-carbonapi-v3-pb")],
            Some(body),
        );
        eprintln!("carbonapi_v3_pb {endpoint} {what}: {st}");
        assert!(
            (200..500).contains(&st),
            "{endpoint} {what}: {st} {}",
            String::from_utf8_lossy(&answer[..answer.len().min(300)])
        );
        healthy(c).unwrap();
    }
    // A body over max_body_bytes (1 MiB) is refused before it is decoded.
    let big = fetches(vec![fetch(&"h".repeat(1 << 20), now - 60, now)]);
    let (st, _, _) = request_bytes(
        c.http,
        "POST",
        "/render/?format=carbonapi_v3_pb",
        &[],
        Some(&big),
    );
    assert_eq!(st, 413);
    healthy(c).unwrap();
}

// ---- carbide up isolates its parts ----

/// Whatever render requests do, the agent keeps collecting and the alerter keeps paging: a
/// `carbide up` whose alert fires and resolves while clients hammer `/render` with requests
/// that take every render slot, run to the deadline, or are refused. `HOSTILE_LOG=1` prints
/// the whole log at the end.
#[test]
fn up_keeps_collecting_and_paging_under_hostile_renders() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    common::host_agent_named(d, "isolated");
    std::fs::write(
        d.join("alerts.yml"),
        "interval: 1s\nnotifiers:\n  console: {type: console, stderr: true}\nalerts:\n  - name: Signal\n    target: test.signal\n    warning: 5\n    critical: 10\n    from: -30s\n",
    )
    .unwrap();
    std::fs::write(
        d.join("serve.yml"),
        "limits:\n  render_timeout: 2s\n  render_queue_timeout: 500ms\n  max_concurrent_renders: 2\n",
    )
    .unwrap();
    let mut c = Carbide::start_capped(
        d,
        &[
            "up",
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
            "--alerter-api",
            "off",
        ],
        CAP,
    );
    let log = || std::fs::read_to_string(d.join("carbide.log")).unwrap_or_default();

    // Hostile clients, more of them than render slots, until the end of the test.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let http_addr = c.http;
    let mut hostile: Vec<Case> = slow_targets()
        .into_iter()
        .map(|t| render_case(t, "-1d"))
        .collect();
    hostile.extend(issue_examples().into_iter().map(|(_, c)| c));
    let hammers: Vec<_> = (0..6)
        .map(|k| {
            let (stop, sent, hostile) = (stop.clone(), sent.clone(), hostile.clone());
            std::thread::spawn(move || {
                let mut i = k;
                while !stop.load(Ordering::Relaxed) {
                    let body = form(&hostile[i % hostile.len()]);
                    let _ = http(
                        http_addr,
                        "POST",
                        "/render",
                        &[],
                        Some(("application/x-www-form-urlencoded", body.as_bytes())),
                    );
                    sent.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    assert!(wait_until(Duration::from_secs(30), || sent
        .load(Ordering::Relaxed)
        >= 6));

    // The signal goes critical: the alert fires.
    let signal = |v: f64| {
        let now = common::now();
        common::send_lines(c.carbon, &format!("test.signal {v} {now}\n"));
    };
    // Generous: under a loaded CI machine the agent's first cycle (which starts the
    // alerter) may take long; the test asserts what happens, not when.
    let fired = wait_until(Duration::from_secs(300), || {
        signal(20.0);
        log()
            .lines()
            .any(|l| l.contains("CRITICAL") && l.contains("Signal"))
    });
    assert!(
        fired,
        "the alert never fired under hostile load:\n{}",
        log()
    );
    // The agent kept collecting meanwhile: its points keep arriving in the store (checked
    // in process-independent terms: a point newer than the firing).
    let fired_at = common::now();
    let collecting = wait_until(Duration::from_secs(120), || {
        let (st, body) = c.get("/render?target=servers.isolated.loadavg.01&from=-2min&format=json");
        st == 200
            && common::series(&body)
                .iter()
                .any(|(_, pts)| pts.iter().any(|(v, t)| v.is_some() && *t > fired_at))
    });
    assert!(
        collecting,
        "the agent stopped collecting under hostile load"
    );
    // The signal goes back to normal: the alert resolves.
    let resolved = wait_until(Duration::from_secs(120), || {
        signal(0.0);
        log()
            .lines()
            .any(|l| l.contains("RESOLVED") && l.contains("Signal"))
    });
    assert!(
        resolved,
        "the alert never resolved under hostile load:\n{}",
        log()
    );
    assert!(
        sent.load(Ordering::Relaxed) > 6,
        "the hostile clients stalled"
    );
    stop.store(true, Ordering::Relaxed);
    for h in hammers {
        h.join().unwrap();
    }
    let pages: Vec<String> = log()
        .lines()
        .filter(|l| l.contains("Signal") || std::env::var("HOSTILE_LOG").is_ok())
        .map(str::to_string)
        .collect();
    eprintln!(
        "carbide up under {} hostile renders paged:\n{}",
        sent.load(Ordering::Relaxed),
        pages.join("\n")
    );
    healthy(&mut c).unwrap();
    assert!(c.stop(), "carbide up did not exit 0 on SIGTERM");
}

#[test]
fn index_and_tag_answers_respect_max_find_results() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = serve(dir.path(), "limits:\n  max_find_results: 5\n");
    let now = common::now();
    let lines: String = (0..8)
        .map(|i| format!("many.s{i} 1 {now}\ncpu;host=h{i} 1 {now}\n"))
        .collect();
    common::send_lines(c.carbon, &lines);
    assert!(wait_until(Duration::from_secs(30), || {
        let (_, body) = c.get("/render?target=countSeries(many.*)&from=-5min&format=json");
        body.contains("8.0")
    }));
    for q in [
        "/metrics/index.json",
        "/metrics/find?query=many.*",
        "/tags/findSeries?expr=name=cpu",
        "/tags/host",
    ] {
        let (st, body) = c.get(q);
        assert_eq!(st, 400, "{q}: {body}");
        assert!(body.contains("max_find_results"), "{q}: {body}");
    }
    // Under the limit, answered.
    let (st, body) = c.get("/tags/host?limit=3");
    assert_eq!(st, 200, "{body}");
    healthy(&mut c).unwrap();
    assert!(c.stop());
}

#[test]
fn the_open_files_limit_is_raised_to_the_hard_limit() {
    let dir = tempfile::tempdir().unwrap();
    let c = Carbide::start_with_open_files(
        dir.path(),
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
        256,
    );
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", c.child.id())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let v: Vec<&str> = line.split_whitespace().collect();
    // "Max open files <soft> <hard> files"
    assert_eq!(v[3], v[4], "{line}");
    assert!(c.stop());
}
