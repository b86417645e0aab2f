//! `GET {graphite_url}/render?target=…&from=…&until=…&format=json` over reqwest.
//!
//! - Credentials: basic auth from the settings or from `user:pass@` in the URL (taken out of
//!   the URL). They are never formatted: [`RenderClient`]'s `Debug` hides them and every
//!   [`RenderError`] names the target and the host only.
//! - `https` is never downgraded: an `https` base allows only `https` connections (redirects
//!   included); any redirect from `https` to `http` is refused. Redirects to another host do
//!   not carry the `Authorization` header (reqwest drops it).
//! - A 400 carries graphite-web's message (`Invalid parameters (…)`) into
//!   [`RenderError::BadRequest`].

use std::time::Duration;

use reqwest::{StatusCode, Url};

use super::model::{from_json, RenderedSeries};

/// The longest error body kept in an error message.
const MAX_ERROR_TEXT: usize = 300;

/// A render API client. Cheap to clone.
#[derive(Clone)]
pub struct RenderClient {
    http: reqwest::Client,
    render: Url,
    host: String,
    auth: Option<(String, String)>,
    timeout: Duration,
}

impl std::fmt::Debug for RenderClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RenderClient")
            .field("render", &self.render.as_str())
            .field("auth", &self.auth.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// Why a render request failed. Messages name the target and host, never credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// No answer within the timeout.
    #[error("render {target:?} from {host}: timed out after {timeout:?}")]
    Timeout {
        target: String,
        host: String,
        timeout: Duration,
    },
    /// Connection refused, DNS, TLS, refused redirect.
    #[error("render {target:?} from {host}: {message}")]
    Transport {
        target: String,
        host: String,
        message: String,
    },
    /// 400: the server rejected the target (graphite-web's `Invalid parameters (…)` text).
    #[error("render {target:?} from {host}: bad request: {message}")]
    BadRequest {
        target: String,
        host: String,
        message: String,
    },
    /// Any other non-2xx answer.
    #[error("render {target:?} from {host}: HTTP {status}: {message}")]
    Status {
        target: String,
        host: String,
        status: u16,
        message: String,
    },
    /// A 2xx answer that is not render JSON.
    #[error("render {target:?} from {host}: {message}")]
    Decode {
        target: String,
        host: String,
        message: String,
    },
}

/// Client settings.
#[derive(Clone, Default)]
pub struct ClientOptions {
    /// Basic-auth user (wins over `user@` in the URL).
    pub user: Option<String>,
    /// Basic-auth password.
    pub password: Option<String>,
    /// Per-request timeout (connect + answer); default 10 s.
    pub timeout: Option<Duration>,
}

impl RenderClient {
    /// `base` is the Graphite root (`https://graphite.example.com`, or with a path prefix).
    pub fn new(base: &str, opts: ClientOptions) -> Result<RenderClient, String> {
        let mut url = Url::parse(base).map_err(|e| format!("graphite_url: {e}"))?;
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            s => return Err(format!("graphite_url: scheme {s:?} is not http or https")),
        };
        let url_user = (!url.username().is_empty()).then(|| percent_decode(url.username()));
        let url_pass = url.password().map(percent_decode);
        let _ = url.set_username("");
        let _ = url.set_password(None);
        url.set_query(None);
        url.set_fragment(None);
        let host = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or("")),
            None => url.host_str().unwrap_or("").to_string(),
        };
        let path = format!("{}/render", url.path().trim_end_matches('/'));
        url.set_path(&path);
        let user = opts.user.or(url_user);
        let password = opts.password.or(url_pass);
        let auth = user.map(|u| (u, password.unwrap_or_default()));
        let timeout = opts.timeout.unwrap_or(Duration::from_secs(10));
        let policy = reqwest::redirect::Policy::custom(|attempt| {
            let downgrade = attempt.url().scheme() == "http"
                && attempt.previous().iter().any(|u| u.scheme() == "https");
            if downgrade {
                attempt.error("refused a redirect from https to http")
            } else if attempt.previous().len() >= 5 {
                attempt.error("too many redirects")
            } else {
                attempt.follow()
            }
        });
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .https_only(https)
            .redirect(policy)
            .user_agent(concat!("carbide/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(RenderClient {
            http,
            render: url,
            host,
            auth,
            timeout,
        })
    }

    /// The render endpoint (without credentials).
    pub fn endpoint(&self) -> &str {
        self.render.as_str()
    }

    /// Fetch one target. `from` / `until` are passed as given (`-10min`, epochs, `now`).
    pub async fn render(
        &self,
        target: &str,
        from: &str,
        until: Option<&str>,
    ) -> Result<Vec<RenderedSeries>, RenderError> {
        let mut url = self.render.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("target", target).append_pair("from", from);
            if let Some(u) = until {
                q.append_pair("until", u);
            }
            q.append_pair("format", "json");
        }
        let mut req = self.http.get(url);
        if let Some((u, p)) = &self.auth {
            req = req.basic_auth(u, Some(p));
        }
        let host = || self.host.clone();
        let resp = req.send().await.map_err(|e| self.transport(target, e))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| self.transport(target, e))?;
        if status.is_success() {
            return from_json(&body).map_err(|e| RenderError::Decode {
                target: target.to_string(),
                host: host(),
                message: e.to_string(),
            });
        }
        let message = error_text(&body, self.auth.as_ref());
        Err(if status == StatusCode::BAD_REQUEST {
            RenderError::BadRequest {
                target: target.to_string(),
                host: host(),
                message,
            }
        } else {
            RenderError::Status {
                target: target.to_string(),
                host: host(),
                status: status.as_u16(),
                message,
            }
        })
    }

    /// A PNG of `targets` over `from`..`until` at `width`×`height` (`/render` without
    /// `format`, as graphite-web and carbide draw it), at most `max_bytes` long.
    pub async fn picture(
        &self,
        targets: &[String],
        from: &str,
        until: &str,
        (width, height): (u32, u32),
        max_bytes: usize,
    ) -> Result<Vec<u8>, RenderError> {
        let target = targets.first().map_or("", String::as_str);
        let mut url = self.render.clone();
        {
            let mut q = url.query_pairs_mut();
            for t in targets {
                q.append_pair("target", t);
            }
            q.append_pair("from", from)
                .append_pair("until", until)
                .append_pair("width", &width.to_string())
                .append_pair("height", &height.to_string())
                .append_pair("format", "png");
        }
        let mut req = self.http.get(url);
        if let Some((u, p)) = &self.auth {
            req = req.basic_auth(u, Some(p));
        }
        let decode = |message: String| RenderError::Decode {
            target: target.to_string(),
            host: self.host.clone(),
            message,
        };
        let mut resp = req.send().await.map_err(|e| self.transport(target, e))?;
        let status = resp.status();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.transport(target, e))? {
            if body.len() + chunk.len() > max_bytes {
                return Err(decode(format!("the picture is over {max_bytes} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            return Err(RenderError::Status {
                target: target.to_string(),
                host: self.host.clone(),
                status: status.as_u16(),
                message: error_text(&body, self.auth.as_ref()),
            });
        }
        if !body.starts_with(b"\x89PNG\r\n\x1a\n") {
            return Err(decode("the answer is not a PNG".into()));
        }
        Ok(body)
    }

    fn transport(&self, target: &str, e: reqwest::Error) -> RenderError {
        if e.is_timeout() {
            return RenderError::Timeout {
                target: target.to_string(),
                host: self.host.clone(),
                timeout: self.timeout,
            };
        }
        let e = e.without_url();
        let mut message = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            message.push_str(": ");
            message.push_str(&s.to_string());
            src = s.source();
        }
        if let Some((u, p)) = &self.auth {
            for secret in [u, p] {
                if !secret.is_empty() {
                    message = message.replace(secret.as_str(), "[redacted]");
                }
            }
        }
        RenderError::Transport {
            target: target.to_string(),
            host: self.host.clone(),
            message,
        }
    }
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// The first line-ish part of an error body, trimmed, capped, credentials blanked.
fn error_text(body: &[u8], auth: Option<&(String, String)>) -> String {
    let text = String::from_utf8_lossy(body);
    let mut t: String = text.trim().chars().take(MAX_ERROR_TEXT).collect();
    if let Some((u, p)) = auth {
        for secret in [u, p] {
            if !secret.is_empty() {
                t = t.replace(secret.as_str(), "[redacted]");
            }
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_the_url_move_to_auth_and_never_print() {
        let c = RenderClient::new(
            "https://bob:s%40cret@g.example.com:8443/graphite/",
            ClientOptions::default(),
        )
        .unwrap();
        assert_eq!(c.endpoint(), "https://g.example.com:8443/graphite/render");
        assert_eq!(c.auth, Some(("bob".into(), "s@cret".into())));
        assert!(!format!("{c:?}").contains("cret"));
        assert!(RenderClient::new("ftp://x", ClientOptions::default()).is_err());
    }
}
