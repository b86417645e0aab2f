//! The `haproxy` collector against a real HAProxy (Debian's `haproxy`), started by each test
//! with its own config in a temp dir: a stats page with basic auth on 127.0.0.1, a stats
//! socket, a backend with one server up (a listener in the test) and one down (a closed port).

mod service_kit;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use service_kit::*;

const PASSWORD: &str = "s3cret-stats-pw";

struct Haproxy {
    child: Child,
    stats_port: u16,
    _up: TcpListener,
}

impl Haproxy {
    /// `defaults`: extra lines for the `defaults` section.
    fn start_with(dir: &Path, defaults: &str) -> Haproxy {
        // The "up" server: the kernel completes TCP handshakes for a listening socket, which
        // is all a layer-4 health check needs.
        let up = TcpListener::bind("127.0.0.1:0").unwrap();
        let up_port = up.local_addr().unwrap().port();
        let down_port = closed_port();
        let stats_port = closed_port();
        let web_port = closed_port();
        let sock = dir.join("admin.sock");
        let cfg = format!(
            "global
  stats socket {sock} mode 600 level user
defaults
  mode tcp
  timeout connect 1s
  timeout client 5s
  timeout server 5s
{defaults}frontend stats
  mode http
  bind 127.0.0.1:{stats_port}
  stats enable
  stats uri /stats
  stats auth monitor:{PASSWORD}
frontend web
  bind 127.0.0.1:{web_port}
  default_backend app
backend app
  server web1 127.0.0.1:{up_port} check inter 100ms fall 1 rise 1
  server web2 127.0.0.1:{down_port} check inter 100ms fall 1 rise 1
",
            sock = sock.display()
        );
        std::fs::write(dir.join("haproxy.cfg"), cfg).unwrap();
        let bin = ["/usr/sbin/haproxy", "haproxy"]
            .into_iter()
            .find(|b| Path::new(b).exists())
            .unwrap_or("haproxy");
        let child = Command::new(bin)
            .arg("-f")
            .arg(dir.join("haproxy.cfg"))
            .arg("-db")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start haproxy (Debian package `haproxy`)");
        Haproxy {
            child,
            stats_port,
            _up: up,
        }
    }

    fn signal(&self, sig: i32) {
        // SAFETY: signalling our own child.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, sig) }, 0);
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        // SAFETY: signalling our own child (it may be gone already: then this is a no-op).
        unsafe { libc::kill(self.child.id() as i32, libc::SIGCONT) };
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A temp dir with haproxy running, `collector.yml` sending to `carbon_port`, and two
/// collector instances: `web` (HTTP, counters stot/bin) and `sock` (stats socket).
fn setup(carbon_port: u16) -> (tempfile::TempDir, Haproxy) {
    setup_with(carbon_port, "")
}

fn setup_with(carbon_port: u16, defaults: &str) -> (tempfile::TempDir, Haproxy) {
    let tmp = tempfile::tempdir().unwrap();
    let h = Haproxy::start_with(tmp.path(), defaults);
    write(tmp.path(), "collector.yml", &global(carbon_port));
    write(
        tmp.path(),
        "collectors.d/web.yml",
        &format!(
            "type: haproxy\nurl: http://127.0.0.1:{}/stats;csv\nusername: monitor\npassword: {PASSWORD}\ncounters: [stot, bin]\ninterval: 1s\ntimeout: 500ms\n",
            h.stats_port
        ),
    );
    write(
        tmp.path(),
        "collectors.d/sock.yml",
        &format!(
            "type: haproxy\npath: haproxy_sock\nsocket: {}\n",
            tmp.path().join("admin.sock").display()
        ),
    );
    // Wait for haproxy to listen and its first health checks to mark web2 down.
    let settled = (0..100).any(|_| {
        let out = run(tmp.path(), &["test", "sock"]);
        let m = metrics(&text(&out.stdout));
        if m.get(&format!("{HOST}.haproxy_sock.app.web2.status.down")) == Some(&1.0) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        false
    });
    assert!(settled, "haproxy never reported web2 down");
    (tmp, h)
}

#[test]
fn stats_over_http_and_socket_have_exact_paths_and_values() {
    let (tmp, _h) = setup(closed_port());
    for (name, base) in [("web", "haproxy"), ("sock", "haproxy_sock")] {
        let out = run(tmp.path(), &["test", name]);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(0), "{name}: {stderr}");
        assert!(!stdout.contains(PASSWORD) && !stderr.contains(PASSWORD));
        let m = metrics(&stdout);
        let p = |s: &str| format!("{HOST}.{base}.{s}");
        let expect = [
            ("app.web1.status.up", 1.0),
            ("app.web1.status.down", 0.0),
            ("app.web1.check_status.l4ok", 1.0),
            ("app.web2.status.down", 1.0),
            ("app.web2.status.up", 0.0),
            ("app.web2.check_status.l4con", 1.0),
            ("app.web2.check_status.l4ok", 0.0),
            ("app.backend.status.up", 1.0),
            ("app.backend.up_servers", 1.0),
            ("app.backend.down_servers", 1.0),
            ("app.backend.maint_servers", 0.0),
            ("app.backend.act", 1.0),
            ("app.web2.weight", 1.0),
            ("web.frontend.status.open", 1.0),
            ("web.frontend.scur", 0.0),
            ("stats.frontend.status.open", 1.0),
        ];
        for (path, want) in expect {
            assert_eq!(m.get(&p(path)), Some(&want), "{name}: {path} in\n{stdout}");
        }
        // every line is `path value timestamp` with one timestamp per run
        let stamps: std::collections::BTreeSet<&str> =
            stdout.lines().filter_map(|l| l.split(' ').nth(2)).collect();
        assert_eq!(stamps.len(), 1, "{stdout}");
    }
    // `web` lists stot/bin as counters: `test` samples twice and prints their rates. No
    // traffic went through the `web` frontend between the samples.
    let out = run(tmp.path(), &["test", "web"]);
    let m = metrics(&text(&out.stdout));
    assert_eq!(
        m.get(&format!("{HOST}.haproxy.web.frontend.stot")),
        Some(&0.0)
    );
    assert_eq!(m.get(&format!("{HOST}.haproxy.app.web1.bin")), Some(&0.0));
}

#[test]
fn wrong_password_fails_without_showing_it() {
    let (tmp, h) = setup(closed_port());
    write(
        tmp.path(),
        "collectors.d/web.yml",
        &format!(
            "type: haproxy\nurl: http://monitor:not-{PASSWORD}@127.0.0.1:{}/stats;csv\n",
            h.stats_port
        ),
    );
    let out = run(tmp.path(), &["test", "web"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("HTTP 401"), "{stderr}");
    assert!(stderr.contains(&format!("GET http://127.0.0.1:{}/stats;csv", h.stats_port)));
    assert!(
        !stderr.contains(PASSWORD) && !stderr.contains("monitor:"),
        "{stderr}"
    );
    assert!(text(&out.stdout).is_empty());
}

#[test]
fn bad_configs_are_rejected_at_load() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "collector.yml", &global(closed_port()));
    for (body, msg) in [
        ("type: haproxy\n", "set `url:`"),
        (
            "type: haproxy\nurl: http://h/;csv\nsocket: /x.sock\n",
            "either `url:` or `socket:`",
        ),
        ("type: haproxy\nurl: ftp://h/\n", "scheme \"ftp\""),
        (
            "type: haproxy\nsocket: /x.sock\npassword: pw\n",
            "`url:` only",
        ),
        ("type: haproxy\nurll: http://h/\n", "unknown key \"urll\""),
    ] {
        write(tmp.path(), "collectors.d/h.yml", body);
        let out = run(tmp.path(), &["check"]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{body}: {stderr}");
        assert!(stderr.contains("collectors.d/h.yml"), "{stderr}");
        assert!(stderr.contains(msg), "{body}: {stderr}");
    }
}

/// haproxy is frozen (SIGSTOP: connections are accepted by the kernel, never answered), then
/// thawed, then killed. Only the haproxy instance misses its deadlines; the host collector in
/// the same agent keeps running every interval; the log says so once per state change.
#[test]
fn a_hung_or_dead_haproxy_delays_only_its_own_collector() {
    let rx = Receiver::start();
    let (tmp, h) = setup(rx.port);
    std::fs::remove_file(tmp.path().join("collectors.d/sock.yml")).unwrap();
    write(
        tmp.path(),
        "collectors.d/host.yml",
        "type: host\npath: host\ninterval: 1s\n",
    );
    let agent = Agent::start(tmp.path());
    let hap = format!("{HOST}.haproxy.app.web1.status.up ");
    let host = format!("{HOST}.host.");
    let self_m = format!("{HOST}.carbide.collector.");
    rx.wait_until("haproxy and host lines", |r| {
        r.runs(&hap).len() >= 2 && r.runs(&host).len() >= 2
    });

    h.signal(libc::SIGSTOP);
    let hap_before = rx.runs(&hap).len();
    let host_before = rx.runs(&host).len();
    let timeouts_before = rx.sum(&format!("{self_m}haproxy.timeouts "));
    rx.wait_until("3 haproxy timeouts", |r| {
        r.sum(&format!("{self_m}haproxy.timeouts ")) >= timeouts_before + 3.0
    });
    let host_during = rx.runs(&host).len() - host_before;
    let hap_during = rx.runs(&hap).len() - hap_before;
    // Each missed haproxy deadline spans one interval in which host ran (the run already
    // in flight when haproxy froze may or may not have completed).
    assert!(
        host_during >= 3,
        "host ran {host_during} times during 3 haproxy timeouts"
    );
    assert!(
        hap_during <= 1,
        "{hap_during} haproxy runs while it was frozen"
    );
    assert_eq!(rx.sum(&format!("{self_m}host.timeouts ")), 0.0);
    assert_eq!(rx.sum(&format!("{self_m}host.errors ")), 0.0);

    h.signal(libc::SIGCONT);
    let hap_before = rx.runs(&hap).len();
    rx.wait_until("haproxy lines again", |r| {
        r.runs(&hap).len() > hap_before + 1
    });

    // Dead: connections refused, each run fails at once (an error, not a timeout).
    let mut h = h;
    let _ = h.child.kill();
    let _ = h.child.wait();
    let errors_before = rx.sum(&format!("{self_m}haproxy.errors "));
    let host_before = rx.runs(&host).len();
    rx.wait_until("3 haproxy errors", |r| {
        r.sum(&format!("{self_m}haproxy.errors ")) >= errors_before + 3.0
    });
    assert!(rx.runs(&host).len() - host_before >= 2);
    assert_eq!(rx.sum(&format!("{self_m}host.timeouts ")), 0.0);
    assert_eq!(rx.sum(&format!("{self_m}host.errors ")), 0.0);

    let log = agent.stop();
    // Logged once per state change, not once per run.
    let cancelled = log.matches("collector run cancelled").count();
    let failed = log.matches("collector run failed").count();
    let recovered = log.matches("collector runs succeed again").count();
    assert_eq!((cancelled, recovered, failed), (1, 1, 1), "{log}");
    assert!(log.contains("cannot connect"), "{log}");
    assert!(!log.contains(PASSWORD), "{log}");
}

/// HAProxy closes a kept-alive stats connection after `timeout http-keep-alive`; with that
/// equal to the collector's interval, the close often crosses the next request ("connection
/// closed before message completed"). The request goes again on a fresh connection: no run
/// fails.
#[test]
fn keep_alive_closes_by_haproxy_fail_no_run() {
    let rx = Receiver::start();
    let (tmp, _h) = setup_with(rx.port, "  timeout http-keep-alive 1s\n");
    std::fs::remove_file(tmp.path().join("collectors.d/sock.yml")).unwrap();
    let agent = Agent::start(tmp.path());
    let runs = format!("{HOST}.carbide.collector.haproxy.runs ");
    let errors = format!("{HOST}.carbide.collector.haproxy.errors ");
    rx.wait_until("25 haproxy runs", |r| r.sum(&runs) >= 25.0);
    let log = agent.stop();
    assert_eq!(rx.sum(&errors), 0.0, "failed runs; log:\n{log}");
    assert!(!log.contains("collector run failed"), "{log}");
}
