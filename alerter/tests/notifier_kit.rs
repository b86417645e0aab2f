//! The shared notifier kit: every kind in `NOTIFIERS`, made from its own `sample` through
//! the real `alerts.yml` loader, sends one message to a real receiver (HTTP on 127.0.0.1, or
//! the aiosmtpd SMTP server) answering each status class — delivered, retryable, refused,
//! down. Checks the outcome's retry classification and that the sample's secret shows in no
//! error, no `Debug` string, and no warning of the loaded file.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use alerter::config::Config;
use alerter::notification::{Action, Level};
use alerter::notifiers::{NotifierKind, NOTIFIERS};
use common::*;

const SECRET: &str = "SEKRET-kit-5e1f";

/// What the receiver does.
#[derive(Debug, Clone, Copy)]
enum Class {
    Delivered,
    /// HTTP status / SMTP reply code worth another try.
    Retry(u16, u16),
    /// Refused: retrying cannot help.
    Refuse(u16, u16),
    /// Nothing listens.
    Down,
}

const CLASSES: &[Class] = &[
    Class::Delivered,
    Class::Retry(500, 451),
    Class::Retry(503, 421),
    Class::Retry(429, 452),
    Class::Refuse(400, 554),
    Class::Refuse(404, 550),
    Class::Down,
];

/// A real SMTP server (tests/smtp_server.py) requiring the kit's login, answering `reply`.
struct Smtp {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Smtp {
    fn start(reply: Option<u16>) -> Smtp {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_server.py");
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.arg(script)
            .arg(port.to_string())
            .arg(dir.path())
            .args(["alerts", SECRET]);
        if let Some(r) = reply {
            cmd.args(["--reply", &r.to_string()]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "READY");
        Smtp {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// The receivers one kind's sample needs, answering `class`.
struct Receivers {
    http: Option<Receiver>,
    smtp: Option<Smtp>,
    values: Vec<(&'static str, String)>,
}

async fn receivers(kind: &NotifierKind, class: Class) -> Receivers {
    let mut r = Receivers {
        http: None,
        smtp: None,
        values: vec![("{secret}", SECRET.to_string())],
    };
    if kind.sample.contains("{http}") {
        let base = match class {
            Class::Down => format!("http://{}", free_addr()),
            _ => {
                let status = match class {
                    Class::Retry(s, _) | Class::Refuse(s, _) => s,
                    _ => 200,
                };
                let rx = Receiver::start(vec![status]).await;
                let base = rx.url("");
                r.http = Some(rx);
                base
            }
        };
        r.values.push(("{http}", base));
    }
    if kind.sample.contains("{smtp}") {
        let port = match class {
            Class::Down => free_port(),
            Class::Delivered => {
                let s = Smtp::start(None);
                let p = s.port;
                r.smtp = Some(s);
                p
            }
            Class::Retry(_, code) | Class::Refuse(_, code) => {
                let s = Smtp::start(Some(code));
                let p = s.port;
                r.smtp = Some(s);
                p
            }
        };
        r.values.push(("{smtp}", port.to_string()));
    }
    r
}

/// `alerts.yml` with one notifier of `kind` named `n` from its sample, routed to.
fn file_for(kind: &NotifierKind, values: &[(&str, String)]) -> String {
    let mut sample = kind.sample.to_string();
    for (k, v) in values {
        sample = sample.replace(k, v);
    }
    let options: String = sample.lines().map(|l| format!("    {l}\n")).collect();
    format!(
        "graphite_url: http://127.0.0.1:1\nnotifiers:\n  n:\n    type: {}\n{options}routes:\n  critical: [n]\nalerts:\n  - {{name: HAProxy check duration, target: a.b, warning: 500, critical: 1000}}\n",
        kind.name
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_notifier_over_every_status_class_and_no_secret_leaks() {
    // Every kind is walked here from its sample: a new one needs no edit of this test.
    for name in ["console", "email", "slack", "pagerduty", "webhook"] {
        assert!(
            NOTIFIERS.iter().any(|k| k.name == name),
            "{name} is not registered"
        );
    }
    for kind in NOTIFIERS {
        let needs_receiver = kind.sample.contains("{http}") || kind.sample.contains("{smtp}");
        for &class in CLASSES {
            if !needs_receiver && !matches!(class, Class::Delivered) {
                continue; // console: no receiver, nothing to refuse
            }
            let what = format!("{} {class:?}", kind.name);
            let rx = receivers(kind, class).await;
            let text = file_for(kind, &rx.values);
            let cfg = Config::from_str_with_env(Path::new("kit.yml"), &text, &|_| None)
                .unwrap_or_else(|e| panic!("{what}: the sample does not load: {e}"));
            assert!(text.contains(SECRET) || !kind.sample.contains("{secret}"));
            let spec = &cfg.notifiers["n"];
            assert_eq!(spec.kind(), kind.name);
            let n = spec.build().unwrap();
            for shown in [
                format!("{cfg:?}"),
                format!("{n:?}"),
                cfg.warnings.join("\n"),
            ] {
                assert!(!shown.contains(SECRET), "{what}: leaks: {shown}");
            }
            let m = message(Action::Trigger, Level::Critical, Level::Ok, "n");
            let got = n.send(&m).await;
            match (class, &got) {
                (Class::Delivered, Ok(())) => {}
                (Class::Retry(..) | Class::Down, Err(e)) if e.is_retryable() => {}
                (Class::Refuse(..), Err(e)) if !e.is_retryable() => {}
                _ => panic!("{what}: {got:?}"),
            }
            if let Err(e) = &got {
                assert!(!e.to_string().contains(SECRET), "{what} leaks: {e}");
                assert!(!format!("{e:?}").contains(SECRET), "{what} leaks in Debug");
                if let Class::Retry(s, c) | Class::Refuse(s, c) = class {
                    let code = if rx.http.is_some() { s } else { c };
                    assert!(e.to_string().contains(&code.to_string()), "{what}: {e}");
                }
            }
            if let Some(h) = &rx.http {
                assert_eq!(h.requests().len(), 1, "{what}: one request per send");
            }
        }
    }
}
