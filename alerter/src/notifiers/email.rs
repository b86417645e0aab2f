//! `email`: SMTP through lettre (tokio transport, rustls when TLS is used).
//!
//! Subject: `[{prefix}] {summary}` (`RESOLVED: ` first for a resolve). Body: the `body`
//! template, then the runbook and graph links. With the alert's graph (drawn at the cycle,
//! [`crate::notification::Notification::graph_png`]) the message is `multipart/alternative`:
//! that text, and an HTML version showing the PNG inline (`multipart/related`, `cid:`). `Message-ID` is derived from the outbox's
//! idempotency key, so a re-sent copy carries the same id (mail clients fold duplicates).

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::{header::ContentType, Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde::Deserialize;

use super::{Message, Notifier, NotifierConfig, NotifierKind, NotifyError};
use crate::notification::Action;
use conf::Secret;

pub const KIND: NotifierKind = NotifierKind {
    name: "email",
    summary: "SMTP (STARTTLS, TLS or plain; optional auth)",
    decode: super::decode::<EmailConfig>,
    default_levels: &[],
    legacy: None,
    sample: "host: 127.0.0.1\nport: {smtp}\ntls: none\nusername: alerts\npassword: {secret}\nfrom: carbide <alerts@example.com>\nto: [oncall@example.com]\ntimeout: 5s\n",
};

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain connection upgraded with STARTTLS (refuses to go on without it). Port 587.
    #[default]
    Starttls,
    /// TLS from the first byte ("SMTPS"). Port 465.
    Tls,
    /// No encryption at all; only for a relay on localhost. Port 25.
    None,
}

/// `type: email`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// SMTP server host name.
    pub host: String,
    /// SMTP port; default 587 (starttls), 465 (tls), 25 (none).
    #[serde(default)]
    pub port: Option<u16>,
    /// `starttls` (default), `tls` or `none`.
    #[serde(default)]
    pub tls: TlsMode,
    /// PEM file with an extra CA certificate to trust (private relays).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// SMTP user name (auth is used when set).
    #[serde(default)]
    pub username: Option<String>,
    /// SMTP password.
    #[serde(default)]
    pub password: Option<Secret>,
    /// Sender address, e.g. `Alerts <alerts@example.com>`.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
    /// Put before every subject, in brackets.
    #[serde(default = "default_prefix")]
    pub subject_prefix: String,
    /// Per-message timeout (connect + send).
    #[serde(default = "super::default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_prefix() -> String {
    "carbide".to_string()
}

impl NotifierConfig for EmailConfig {
    /// Check addresses at load time; the error names the bad one.
    fn validate(&self) -> Result<(), String> {
        self.from
            .parse::<Mailbox>()
            .map_err(|e| format!("from: \"{}\" is not an email address: {e}", self.from))?;
        if self.to.is_empty() {
            return Err("to: needs at least one recipient".into());
        }
        for t in &self.to {
            t.parse::<Mailbox>()
                .map_err(|e| format!("to: \"{t}\" is not an email address: {e}"))?;
        }
        if self.password.is_some() && self.username.is_none() {
            return Err("password is set but username is not".into());
        }
        if self.ca_file.is_some() {
            if self.tls == TlsMode::None {
                return Err("ca_file is set but tls is none: use tls: starttls or tls".into());
            }
            self.ca_certificate()?;
        }
        Ok(())
    }

    fn build(&self) -> anyhow::Result<Box<dyn Notifier>> {
        Ok(Box::new(Email::new(self.clone())?))
    }
}

impl EmailConfig {
    /// The `ca_file` certificate, read and parsed (errors name the file and the fix).
    fn ca_certificate(&self) -> Result<Option<Certificate>, String> {
        let Some(ca) = &self.ca_file else {
            return Ok(None);
        };
        let pem =
            std::fs::read(ca).map_err(|e| format!("ca_file {}: cannot read: {e}", ca.display()))?;
        let not_pem = |why: String| {
            format!(
                "ca_file {}: not a PEM certificate ({why}); give the CA's certificate in PEM form (-----BEGIN CERTIFICATE-----)",
                ca.display()
            )
        };
        // lettre takes a file without any certificate block as an empty list: refuse it here.
        if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
            return Err(not_pem("no CERTIFICATE block".into()));
        }
        Certificate::from_pem(&pem)
            .map(Some)
            .map_err(|e| not_pem(e.to_string()))
    }
}

#[derive(Debug)]
pub struct Email {
    cfg: EmailConfig,
    from: Mailbox,
    to: Vec<Mailbox>,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl Email {
    pub fn new(cfg: EmailConfig) -> anyhow::Result<Self> {
        cfg.validate().map_err(anyhow::Error::msg)?;
        let tls_params = || -> anyhow::Result<TlsParameters> {
            // Verification always on: ca_file adds a trusted root, it never turns checks off.
            let mut b = TlsParameters::builder(cfg.host.clone());
            if let Some(cert) = cfg.ca_certificate().map_err(anyhow::Error::msg)? {
                b = b.add_root_certificate(cert);
            }
            Ok(b.build_rustls()?)
        };
        let (tls, port) = match cfg.tls {
            TlsMode::Starttls => (Tls::Required(tls_params()?), 587),
            TlsMode::Tls => (Tls::Wrapper(tls_params()?), 465),
            TlsMode::None => (Tls::None, 25),
        };
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.host)
            .port(cfg.port.unwrap_or(port))
            .tls(tls)
            .timeout(Some(cfg.timeout));
        if let Some(user) = &cfg.username {
            let pass = cfg
                .password
                .as_ref()
                .map(|p| p.expose().to_string())
                .unwrap_or_default();
            b = b.credentials(Credentials::new(user.clone(), pass));
        }
        let from = cfg.from.parse()?;
        let to = cfg.to.iter().map(|t| t.parse()).collect::<Result<_, _>>()?;
        Ok(Email {
            transport: b.build(),
            from,
            to,
            cfg,
        })
    }
}

/// Subject line of a message.
pub fn subject(prefix: &str, msg: &Message) -> String {
    let n = &msg.notification;
    let resolved = if msg.action == Action::Resolve {
        "RESOLVED: "
    } else {
        ""
    };
    let line = n.summary.lines().next().unwrap_or_default();
    if prefix.is_empty() {
        format!("{resolved}{line}")
    } else {
        format!("[{prefix}] {resolved}{line}")
    }
}

/// Plain-text body of a message.
pub fn body(msg: &Message) -> String {
    let n = &msg.notification;
    let mut out = n.body.clone();
    out.push_str("\n\n");
    if let Some(u) = &n.runbook_url {
        out.push_str(&format!("Runbook: {u}\n"));
    }
    if let Some(u) = &n.graph_url {
        out.push_str(&format!("Graph: {u}\n"));
    }
    out.push_str(&format!(
        "Alert: {} / series: {} / level: {} (was {})\n",
        n.alert, n.series, n.level, n.previous
    ));
    out
}

/// The `Content-ID` of the graph in a message.
pub const GRAPH_CID: &str = "graph@carbide.alerter";

/// A message with its graph: `multipart/alternative` of the plain text and a
/// `multipart/related` HTML version showing the PNG inline (`<img src="cid:…">`).
fn with_graph(msg: &Message, png: &[u8]) -> MultiPart {
    let text = body(msg);
    let html = format!(
        "<html><body><pre style=\"font-family: monospace\">{}</pre>\
         <p><img src=\"cid:{GRAPH_CID}\" alt=\"graph of {}\" width=\"{}\" height=\"{}\"></p>\
         </body></html>",
        html_escape(&text),
        html_escape(&msg.notification.alert),
        crate::notification::GRAPH_SIZE.0,
        crate::notification::GRAPH_SIZE.1,
    );
    let image = Attachment::new_inline(GRAPH_CID.to_string())
        .body(png.to_vec(), ContentType::parse("image/png").unwrap_or(ContentType::TEXT_PLAIN));
    MultiPart::alternative()
        .singlepart(SinglePart::plain(text))
        .multipart(
            MultiPart::related()
                .singlepart(SinglePart::html(html))
                .singlepart(image),
        )
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

#[async_trait]
impl Notifier for Email {
    async fn send(&self, msg: &Message) -> Result<(), NotifyError> {
        let mut b = lettre::Message::builder()
            .from(self.from.clone())
            .subject(subject(&self.cfg.subject_prefix, msg))
            .message_id(Some(format!(
                "<{}@carbide.alerter>",
                msg.idempotency_key.replace(' ', "_")
            )));
        for t in &self.to {
            b = b.to(t.clone());
        }
        let built = match &msg.notification.graph_png {
            None => b.header(ContentType::TEXT_PLAIN).body(body(msg)),
            Some(png) => b.multipart(with_graph(msg, png)),
        };
        let email = built
            .map_err(|e| NotifyError::Permanent(format!("email: cannot build message: {e}")))?;
        self.transport.send(email).await.map(|_| ()).map_err(|e| {
            let text = format!("email via {}: {e}", self.cfg.host);
            if e.is_permanent() {
                NotifyError::Permanent(text)
            } else {
                NotifyError::Retryable(text)
            }
        })
    }
}
