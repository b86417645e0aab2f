//! What the service collectors (HAProxy, RabbitMQ, …) share: a [`Secret`] that never prints
//! itself, an HTTP client with short timeouts, and errors that name the URL without its
//! credentials. Not a collector itself.

use std::fmt;
use std::time::Duration;

pub use super::segment;
pub use conf::Secret;

/// Basic-auth credentials for an HTTP endpoint.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub username: String,
    pub password: Option<Secret>,
}

/// An HTTP endpoint: the URL without userinfo (safe to print) and the credentials apart.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub url: reqwest::Url,
    pub auth: Option<Credentials>,
}

impl Endpoint {
    /// Parse `url` (http or https). Credentials embedded in the URL (`http://u:p@host/`) are
    /// moved out of it; explicit `username`/`password` settings take precedence.
    pub fn parse(
        url: &str,
        username: Option<String>,
        password: Option<Secret>,
    ) -> anyhow::Result<Endpoint> {
        let mut parsed = reqwest::Url::parse(url).map_err(|e| {
            // The URL may hold a password: name the problem, not the text.
            anyhow::anyhow!("url: invalid URL ({e}); expected e.g. http://127.0.0.1:8404/stats;csv")
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            anyhow::bail!(
                "url: scheme {:?} is not supported (expected http or https)",
                parsed.scheme()
            );
        }
        let url_user = (!parsed.username().is_empty()).then(|| parsed.username().to_string());
        let url_pass = parsed.password().map(Secret::new);
        // Infallible for http(s) URLs with a host.
        let _ = parsed.set_username("");
        let _ = parsed.set_password(None);
        let username = username.or(url_user);
        let password = password.or(url_pass);
        let auth = match (username, password) {
            (Some(username), password) => Some(Credentials { username, password }),
            (None, Some(_)) => anyhow::bail!("password is set but username is not"),
            (None, None) => None,
        };
        Ok(Endpoint { url: parsed, auth })
    }

    /// `base` joined with `path` segments (each percent-encoded, so a vhost `/` becomes `%2F`).
    pub fn join(&self, segments: &[&str]) -> reqwest::Url {
        let mut url = self.url.clone();
        if let Ok(mut s) = url.path_segments_mut() {
            s.pop_if_empty().extend(segments);
        }
        url
    }
}

/// How long a TCP/TLS connection attempt may take before the run fails with `cannot connect`.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// An HTTP client for one collector instance. Only the connection attempt has its own
/// timeout (`connect_timeout`, for a clearer error than a missed deadline); the run's deadline
/// (the instance's `timeout:`) bounds the whole exchange and cancels it, so there is no
/// competing request timeout. reqwest drops the Authorization header on cross-host redirects.
pub fn http_client(connect_timeout: Duration) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .pool_max_idle_per_host(1)
        .user_agent(concat!("carbide-collector/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| anyhow::anyhow!("cannot build the HTTP client: {}", e.without_url()))
}

/// A response with a non-success status; the message names the URL without credentials.
/// Callers that expect a status (RabbitMQ's 400 for a page past the end) downcast to it.
#[derive(Debug)]
pub struct StatusError {
    pub message: String,
    pub status: u16,
}

impl fmt::Display for StatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StatusError {}

/// GET `url` with the endpoint's credentials; the body as bytes, at most `max_bytes`. Errors
/// name the URL without credentials and never include the response body.
///
/// A request that fails before any response because the server closed the kept-alive
/// connection it went out on (HAProxy closes idle ones at `timeout http-keep-alive`; the close
/// can cross the next request: "connection closed before message completed") is sent once more,
/// on a fresh connection — the failed one left the pool, which keeps one idle connection at
/// most. GET is idempotent; this is the transport recovering a connection, not a collection
/// retry (a connect error or a timeout is not repeated).
pub async fn get(
    client: &reqwest::Client,
    endpoint: &Endpoint,
    url: reqwest::Url,
    max_bytes: usize,
) -> anyhow::Result<Vec<u8>> {
    let shown = url.to_string();
    let request = || {
        let req = client.get(url.clone());
        match &endpoint.auth {
            Some(c) => req.basic_auth(&c.username, c.password.as_ref().map(Secret::expose)),
            None => req,
        }
    };
    let first = request().send().await;
    let sent = match first {
        Err(e) if stale_connection(&e) => {
            tracing::debug!(url = %shown, error = %describe(e), "kept-alive connection closed by the server; sending again on a new one");
            request().send().await
        }
        other => other,
    };
    let mut resp = sent.map_err(|e| anyhow::anyhow!("GET {shown}: {}", describe(e)))?;
    let status = resp.status();
    if !status.is_success() {
        let hint = match status.as_u16() {
            401 | 403 => ": check username and password (and the user's permissions)",
            404 => ": check the url",
            _ => "",
        };
        return Err(StatusError {
            message: format!("GET {shown}: HTTP {status}{hint}"),
            status: status.as_u16(),
        }
        .into());
    }
    let mut body = Vec::with_capacity(resp.content_length().unwrap_or(0).min(1 << 20) as usize);
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| anyhow::anyhow!("GET {shown}: reading the body: {}", describe(e)))?
    {
        if body.len() + chunk.len() > max_bytes {
            anyhow::bail!("GET {shown}: response larger than {max_bytes} bytes");
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A request that failed on an established connection before any response: the server closed
/// it (a connection attempt that failed, or a timeout, is something else).
fn stale_connection(e: &reqwest::Error) -> bool {
    e.is_request() && !e.is_connect() && !e.is_timeout()
}

/// A reqwest error without its URL (which could carry userinfo), with its causes.
fn describe(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let e = e.without_url();
    let mut text = String::from(kind);
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_credentials_move_out_of_the_url() {
        let e =
            Endpoint::parse("http://admin:hunter2@127.0.0.1:8404/stats;csv", None, None).unwrap();
        assert_eq!(e.url.as_str(), "http://127.0.0.1:8404/stats;csv");
        let auth = e.auth.unwrap();
        assert_eq!(auth.username, "admin");
        assert_eq!(auth.password.unwrap().expose(), "hunter2");
        // explicit settings win
        let e = Endpoint::parse("http://a:b@h/", Some("u".into()), Some(Secret::new("p"))).unwrap();
        assert_eq!(e.auth.unwrap().password.unwrap().expose(), "p");
        assert!(Endpoint::parse("ftp://h/", None, None).is_err());
        let err = Endpoint::parse("http://u:hunter2@[::1", None, None).unwrap_err();
        assert!(!format!("{err:#}").contains("hunter2"));
        let err = Endpoint::parse("http://h/", None, Some(Secret::new("x"))).unwrap_err();
        assert!(format!("{err}").contains("username"));
    }

    #[test]
    fn join_encodes_vhosts() {
        let e = Endpoint::parse("http://127.0.0.1:15672", None, None).unwrap();
        assert_eq!(
            e.join(&["api", "queues", "/"]).as_str(),
            "http://127.0.0.1:15672/api/queues/%2F"
        );
        let e = Endpoint::parse("http://h/rabbit/", None, None).unwrap();
        assert_eq!(
            e.join(&["api", "overview"]).as_str(),
            "http://h/rabbit/api/overview"
        );
    }

    #[test]
    fn segments() {
        assert_eq!(segment("Web.1 (eu)", true), "web_1__eu_");
        assert_eq!(segment("/", false), "_");
        assert_eq!(segment("a-b_C", false), "a-b_C");
    }

    /// A server that answers the first request of each connection and, like HAProxy at its
    /// keep-alive timeout, closes the connection when the next one arrives on it.
    #[tokio::test]
    async fn a_kept_alive_connection_closed_by_the_server_is_replaced_once() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let n = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut seen = Vec::new();
                    let mut answered = false;
                    loop {
                        let Ok(k) = s.read(&mut buf).await else {
                            return;
                        };
                        if k == 0 {
                            return;
                        }
                        seen.extend_from_slice(&buf[..k]);
                        if !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                            continue;
                        }
                        seen.clear();
                        if answered {
                            return; // close with the second request unanswered
                        }
                        answered = true;
                        let _ = s
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                            .await;
                    }
                });
            }
        });
        let e = Endpoint::parse(&format!("http://127.0.0.1:{port}/stats"), None, None).unwrap();
        let client = http_client(CONNECT_TIMEOUT).unwrap();
        for _ in 0..3 {
            let body = get(&client, &e, e.url.clone(), 100).await.unwrap();
            assert_eq!(body, b"ok");
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn connection_errors_hide_credentials() {
        // A port nothing listens on: bind, take the port, drop the listener.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = Endpoint::parse(
            &format!("http://admin:hunter2@127.0.0.1:{port}/x"),
            None,
            None,
        )
        .unwrap();
        let client = http_client(CONNECT_TIMEOUT).unwrap();
        let err = get(&client, &e, e.url.clone(), 1000).await.unwrap_err();
        let text = format!("{err:#}");
        assert!(
            !text.contains("hunter2") && !text.contains("admin"),
            "{text}"
        );
        assert!(
            text.starts_with(&format!("GET http://127.0.0.1:{port}/x: cannot connect")),
            "{text}"
        );
    }
}
