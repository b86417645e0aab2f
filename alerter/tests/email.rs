//! The email notifier against a real SMTP server (python3-aiosmtpd, started by the test).

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use alerter::notification::{Action, Level};
use alerter::notifiers::email::{Email, EmailConfig, TlsMode};
use alerter::notifiers::{Message, Notifier, NotifyError};
use common::*;
use conf::Secret;

const PASSWORD: &str = "SMTP-SEKRET-41";

struct Smtp {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Smtp {
    fn start(auth: bool) -> Smtp {
        Self::start_tls(auth, "none")
    }

    /// `tls`: `none`, `starttls` (required before anything else) or `implicit` (SMTPS); with
    /// TLS the server makes a private CA at start and writes it to [`Smtp::ca_file`].
    fn start_tls(auth: bool, tls: &str) -> Smtp {
        let dir = tempfile::tempdir().unwrap();
        let port = free_addr().port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_server.py");
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.arg(script).arg(port.to_string()).arg(dir.path());
        if auth {
            cmd.args(["alerts", PASSWORD]);
        }
        cmd.args(["--tls", tls]);
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

    /// The private CA the server's certificate chains to (TLS modes only).
    fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
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
    let err = email.send(&critical_page()).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(!err.to_string().contains(PASSWORD));
}

fn tls_config(smtp: &Smtp, tls: TlsMode, password: &str) -> EmailConfig {
    EmailConfig {
        tls,
        ca_file: Some(smtp.ca_file()),
        ..config(smtp.port, Some(password))
    }
}

#[tokio::test]
async fn starttls_and_implicit_tls_with_auth_and_a_private_ca() {
    for (server_mode, mode) in [("starttls", TlsMode::Starttls), ("implicit", TlsMode::Tls)] {
        let smtp = Smtp::start_tls(true, server_mode);
        let email = Email::new(tls_config(&smtp, mode, PASSWORD)).unwrap();
        email
            .send(&critical_page())
            .await
            .unwrap_or_else(|e| panic!("{server_mode}: {e}"));
        let got = smtp.messages();
        assert_eq!(got.len(), 1, "{server_mode}");
        let m = flat(&got[0]);
        assert!(
            m.contains("X-TLS: TLSv1."),
            "{server_mode}: not over TLS: {m}"
        );
        assert!(m.contains("X-Auth: alerts\r\n"), "{server_mode}: {m}");
        assert!(
            m.contains("Subject: [carbide] CRITICAL alert for HAProxy check duration lb-1"),
            "{server_mode}: {m}"
        );
        assert!(
            m.contains("Runbook: https://wiki.example.com/alerts/HAProxy%20check%20duration#lb-1"),
            "{server_mode}: {m}"
        );
        assert!(!m.contains(PASSWORD), "{server_mode}");

        // A wrong password over TLS: refused, not retried, not in the error.
        let bad = Email::new(tls_config(&smtp, mode, "wrong-SEKRET")).unwrap();
        let err = bad.send(&critical_page()).await.unwrap_err();
        assert!(
            matches!(err, NotifyError::Permanent(_)),
            "{server_mode}: {err}"
        );
        assert!(!err.to_string().contains("wrong-SEKRET"), "{err}");
        assert_eq!(smtp.messages().len(), 1, "{server_mode}");
    }
}

#[tokio::test]
async fn tls_verification_is_on_by_default() {
    for (server_mode, mode) in [("starttls", TlsMode::Starttls), ("implicit", TlsMode::Tls)] {
        let smtp = Smtp::start_tls(true, server_mode);
        // Without ca_file the private CA is not trusted: no message, no password in the error.
        let email = Email::new(config_mode(smtp.port, mode)).unwrap();
        let err = email.send(&critical_page()).await.unwrap_err();
        let text = err.to_string();
        assert!(
            text.to_ascii_lowercase().contains("certificate"),
            "{server_mode}: {text}"
        );
        assert!(!text.contains(PASSWORD), "{text}");
        assert!(smtp.messages().is_empty(), "{server_mode}");
    }
    // STARTTLS mode never falls back to plain text: a server without STARTTLS gets nothing.
    let plain = Smtp::start(true);
    let email = Email::new(config_mode(plain.port, TlsMode::Starttls)).unwrap();
    let err = email.send(&critical_page()).await.unwrap_err();
    assert!(!err.to_string().contains(PASSWORD), "{err}");
    assert!(plain.messages().is_empty());
}

fn config_mode(port: u16, tls: TlsMode) -> EmailConfig {
    EmailConfig {
        tls,
        ..config(port, Some(PASSWORD))
    }
}

/// The real binary over STARTTLS: a page arrives through the outbox; a second notifier with a
/// wrong password fails permanently; at debug level neither password is in the logs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerter_run_sends_over_starttls_and_never_logs_the_password() {
    let smtp = Smtp::start_tls(true, "starttls");
    let render = common::render::RenderServer::start().await;
    render.set("servers.web-1.loadavg.01", Some(25.0));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("alerts.yml");
    let mail = |name: &str, password: &str| {
        format!(
            "  {name}:\n    type: email\n    host: 127.0.0.1\n    port: {}\n    tls: starttls\n    ca_file: {}\n    username: alerts\n    password: {password}\n    from: alerts@example.com\n    to: [oncall@example.com]\n",
            smtp.port,
            smtp.ca_file().display()
        )
    };
    std::fs::write(
        &file,
        format!(
            "docs_url: https://wiki.example.com/alerts\ngraphite_url: {}\nstate_file: {}\ninterval: 1s\napi_listen: off\nnotifiers:\n{}{}routes:\n  critical: [mail, badmail]\nalerts:\n  - name: Load\n    target: aliasByNode(servers.*.loadavg.01,1)\n    warning: 10\n    critical: 20\n",
            render.url(),
            dir.path().join("state.db").display(),
            mail("mail", PASSWORD),
            mail("badmail", "wrong-SEKRET"),
        ),
    )
    .unwrap();
    let log = dir.path().join("stderr.log");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_alerter"));
    for v in alerter::config::env_vars() {
        cmd.env_remove(v);
    }
    let mut child = cmd
        .env("RUST_LOG", "debug")
        .arg("run")
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let mut done = false;
    for _ in 0..600 {
        if smtp.messages().len() == 1 && read_log().contains("notification dropped") {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = read_log();
    assert!(done, "no page or no failure logged; log:\n{text}");
    let m = flat(&smtp.messages()[0]);
    assert!(
        m.contains("X-TLS: TLSv1.") && m.contains("X-Auth: alerts\r\n"),
        "{m}"
    );
    assert!(
        m.contains("Subject: [carbide] CRITICAL alert for Load web-1"),
        "{m}"
    );
    assert!(
        text.contains("badmail") && text.contains("535"),
        "the refusal is logged: {text}"
    );
    assert!(
        !text.contains(PASSWORD) && !text.contains("wrong-SEKRET"),
        "a password in the log:\n{text}"
    );
}

/// The page every email test sends: a CRITICAL trigger (from OK) for the `email` notifier.
fn critical_page() -> Message {
    message(Action::Trigger, Level::Critical, Level::Ok, "email")
}
