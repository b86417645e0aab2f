//! The email notifier against a real SMTP server (python3-aiosmtpd, started by the test).

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use alerter::notification::{Action, Level};
use alerter::notifiers::email::{Email, EmailConfig, TlsMode};
use alerter::notifiers::{Notifier, NotifyError};
use alerter::secret::Secret;
use common::*;

const PASSWORD: &str = "SMTP-SEKRET-41";

struct Smtp {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Smtp {
    fn start(auth: bool) -> Smtp {
        let dir = tempfile::tempdir().unwrap();
        let port = free_addr().port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_server.py");
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.arg(script).arg(port.to_string()).arg(dir.path());
        if auth {
            cmd.args(["alerts", PASSWORD]);
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
        Smtp { child, port, dir }
    }

    fn messages(&self) -> Vec<String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        drop(self.child.stdin.take()); // the server stops when stdin closes
        let _ = self.child.wait();
    }
}

fn config(port: u16, password: Option<&str>) -> EmailConfig {
    EmailConfig {
        host: "127.0.0.1".into(),
        port: Some(port),
        tls: TlsMode::None,
        ca_file: None,
        username: password.map(|_| "alerts".to_string()),
        password: password.map(Secret::new),
        from: "carbide <alerts@example.com>".into(),
        to: vec!["oncall@example.com".into(), "team@example.com".into()],
        subject_prefix: "carbide".into(),
        timeout: Duration::from_secs(10),
    }
}

/// Unfold RFC 5322 header continuation lines and undo quoted-printable soft breaks.
fn flat(raw: &str) -> String {
    raw.replace("=\r\n", "")
        .replace("\r\n ", " ")
        .replace("=3D", "=")
}

#[tokio::test]
async fn email_delivered_with_subject_body_and_runbook_link() {
    let smtp = Smtp::start(false);
    let email = Email::new(config(smtp.port, None)).unwrap();
    let m = message(Action::Trigger, Level::Critical, Level::Warning, "email");
    email.send(&m).await.unwrap();
    email
        .send(&message(
            Action::Resolve,
            Level::Ok,
            Level::Critical,
            "email",
        ))
        .await
        .unwrap();
    let got = smtp.messages();
    assert_eq!(got.len(), 2);
    let first = flat(&got[0]);
    assert!(
        first.contains("X-Rcpt-To: oncall@example.com, team@example.com"),
        "{first}"
    );
    assert!(
        first.contains("Subject: [carbide] CRITICAL alert for HAProxy check duration lb-1"),
        "{first}"
    );
    assert!(
        first.contains("Runbook: https://wiki.example.com/alerts/HAProxy%20check%20duration#lb-1"),
        "{first}"
    );
    assert!(
        first.contains("Graph: https://graphite.example.com/render/?"),
        "{first}"
    );
    assert!(first.contains("The current value is 1234"), "{first}");
    assert!(
        first.contains(&format!(
            "Message-ID: <{}@carbide.alerter>",
            m.idempotency_key.replace(' ', "_")
        )),
        "{first}"
    );
    assert!(
        flat(&got[1]).contains("Subject: [carbide] RESOLVED: OK alert for"),
        "{}",
        got[1]
    );
}

#[tokio::test]
async fn email_with_auth_and_a_wrong_password_is_permanent_and_secret() {
    let smtp = Smtp::start(true);
    let ok = Email::new(config(smtp.port, Some(PASSWORD))).unwrap();
    ok.send(&message(
        Action::Trigger,
        Level::Warning,
        Level::Ok,
        "email",
    ))
    .await
    .unwrap();
    assert_eq!(smtp.messages().len(), 1);

    let bad = Email::new(config(smtp.port, Some("wrong-SEKRET"))).unwrap();
    let err = bad
        .send(&message(
            Action::Trigger,
            Level::Warning,
            Level::Ok,
            "email",
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, NotifyError::Permanent(_)), "{err}");
    assert!(!err.to_string().contains("wrong-SEKRET"), "{err}");
    assert!(!format!("{bad:?}").contains(PASSWORD) && !format!("{ok:?}").contains(PASSWORD));
    assert_eq!(smtp.messages().len(), 1);
}

#[tokio::test]
async fn email_server_down_is_retryable() {
    let port = free_addr().port();
    let email = Email::new(config(port, Some(PASSWORD))).unwrap();
    let err = email
        .send(&message(
            Action::Trigger,
            Level::Critical,
            Level::Ok,
            "email",
        ))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(!err.to_string().contains(PASSWORD));
}
