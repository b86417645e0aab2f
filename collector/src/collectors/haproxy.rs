//! HAProxy statistics (`type: haproxy`): the stats CSV, read from the stats page over HTTP
//! (`url:`) or from the stats unix socket (`socket:`, command `show stat`).
//!
//! Names are Diamond's: `<pxname>.<svname>.<field>`, each part lowercased with every character
//! outside `[a-z0-9_-]` replaced by `_`. Numeric fields are gauges (or rates, for the fields
//! listed in `counters:`). Unlike Diamond (which drops them), the status strings are kept as
//! one-hot gauges (`status.up 1`, `status.down 0`, …; `check_status.l4con 1`, …), and each
//! backend row gets `up_servers` / `down_servers` / `maint_servers` counts.

use std::path::{Path, PathBuf};

use anyhow::Context;
use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::service::{self, segment, Endpoint, Secret};
use super::{Batch, Collector, CollectorConfig, Kind};

pub const KIND: Kind = Kind {
    name: "haproxy",
    default_path: "haproxy",
    sample: include_str!("haproxy.sample.yml"),
    build: super::build::<HaproxyConfig>,
    circuit_breaker: true,
};

/// The most stats output read in one run (a guard against a runaway peer, far above the size
/// of any real stats page).
const MAX_BYTES: usize = 64 << 20;

crate::collector_config! {
    /// Options of the HAProxy collector.
    pub struct HaproxyConfig {
        /// The stats page in CSV form, e.g. `http://127.0.0.1:8404/stats;csv`. One of `url`
        /// and `socket` is required.
        #[serde(default)]
        pub url: Option<String>,
        /// The stats unix socket (`stats socket` in haproxy.cfg), e.g. `/run/haproxy/admin.sock`.
        #[serde(default)]
        pub socket: Option<PathBuf>,
        /// Basic-auth user for `url` (`stats auth` in haproxy.cfg).
        #[serde(default)]
        pub username: Option<String>,
        /// Basic-auth password for `url`; never logged.
        #[serde(default)]
        pub password: Option<Secret>,
        /// CSV fields published as per-second rates instead of raw values (e.g. `stot`,
        /// `bin`, `bout`, `hrsp_5xx`). Empty (Diamond's behaviour): every field is a gauge.
        #[serde(default)]
        pub counters: Vec<String>,
        /// Publish only FRONTEND and BACKEND rows, not one per server (Diamond's
        /// `ignore_servers`). The backends' server counts are still computed.
        #[serde(default)]
        pub ignore_servers: bool,
    }
}

impl CollectorConfig for HaproxyConfig {
    fn into_collector(self) -> anyhow::Result<Box<dyn Collector>> {
        let source = match (self.url, self.socket) {
            (Some(url), None) => {
                let endpoint = Endpoint::parse(&url, self.username, self.password)?;
                Source::Http {
                    client: service::http_client(service::CONNECT_TIMEOUT)?,
                    endpoint,
                }
            }
            (None, Some(path)) => {
                if self.username.is_some() || self.password.is_some() {
                    anyhow::bail!("username/password apply to `url:` only, not to `socket:`");
                }
                Source::Socket(path)
            }
            (Some(_), Some(_)) => anyhow::bail!("set either `url:` or `socket:`, not both"),
            (None, None) => anyhow::bail!(
                "set `url:` (the stats page as CSV, e.g. http://127.0.0.1:8404/stats;csv) or `socket:` (the stats socket path)"
            ),
        };
        let counters = self.counters.iter().map(|c| segment(c, true)).collect();
        Ok(Box::new(Haproxy {
            source,
            options: ParseOptions {
                counters,
                ignore_servers: self.ignore_servers,
            },
            buf: Vec::new(),
        }))
    }
}

enum Source {
    Http {
        client: reqwest::Client,
        endpoint: Endpoint,
    },
    Socket(PathBuf),
}

pub struct ParseOptions {
    /// Sanitised field names published as counters.
    pub counters: Vec<String>,
    pub ignore_servers: bool,
}

pub struct Haproxy {
    source: Source,
    options: ParseOptions,
    /// The socket's read buffer, kept between runs.
    buf: Vec<u8>,
}

#[async_trait]
impl Collector for Haproxy {
    async fn collect(&mut self, out: &mut Batch) -> anyhow::Result<()> {
        let Haproxy {
            source,
            options,
            buf,
        } = self;
        match source {
            Source::Http { client, endpoint } => {
                let data = service::get(client, endpoint, endpoint.url.clone(), MAX_BYTES).await?;
                parse_stats(&data, options, out)
            }
            Source::Socket(path) => {
                read_socket(path, buf).await?;
                parse_stats(buf, options, out)
            }
        }
    }
}

/// `show stat` on the stats socket, into `buf`. All I/O is async so the deadline cancels it.
async fn read_socket(path: &Path, buf: &mut Vec<u8>) -> anyhow::Result<()> {
    let shown = path.display();
    let mut stream = tokio::net::UnixStream::connect(path)
        .await
        .with_context(|| format!("stats socket {shown}: cannot connect"))?;
    stream
        .write_all(b"show stat\n")
        .await
        .with_context(|| format!("stats socket {shown}: cannot send `show stat`"))?;
    buf.clear();
    let n = (&mut stream)
        .take(MAX_BYTES as u64 + 1)
        .read_to_end(buf)
        .await
        .with_context(|| format!("stats socket {shown}: reading the answer"))?;
    if n > MAX_BYTES {
        anyhow::bail!("stats socket {shown}: answer larger than {MAX_BYTES} bytes");
    }
    if buf.starts_with(b"Unknown command") || buf.starts_with(b"Permission denied") {
        let line =
            String::from_utf8_lossy(buf.split(|&b| b == b'\n').next().unwrap_or(&[])).into_owned();
        anyhow::bail!("stats socket {shown}: haproxy answered {line:?}");
    }
    Ok(())
}

/// Statuses each kind of row can have, published one-hot (normalised: lowercased, up to the
/// first space or parenthesis, so `UP 1/3` is `up` and `MAINT(via)` is `maint`).
const FRONTEND_STATUSES: &[&str] = &["open", "full", "stop", "paused"];
const BACKEND_STATUSES: &[&str] = &["up", "down"];
const SERVER_STATUSES: &[&str] = &["up", "down", "nolb", "maint", "drain", "no_check"];
/// Health-check results (`check_status`, without the `* ` of a check in progress).
const CHECK_STATUSES: &[&str] = &[
    "unk", "ini", "sockerr", "l4ok", "l4tout", "l4con", "l6ok", "l6tout", "l6rsp", "l7ok", "l7okc",
    "l7tout", "l7rsp", "l7sts", "procerr", "proctout", "procok",
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum RowKind {
    Frontend,
    Backend,
    Server,
}

/// `status` normalised to one word.
fn normalise_status(s: &str) -> String {
    let s = s.trim();
    if s.len() >= 8 && s[..8].eq_ignore_ascii_case("no check") {
        return "no_check".into();
    }
    let word = s.split([' ', '(']).next().unwrap_or_default();
    segment(word, true)
}

/// `check_status` normalised: `* L7OK` (check in progress) → `l7ok`.
fn normalise_check(s: &str) -> String {
    let s = s.trim();
    segment(s.strip_prefix('*').unwrap_or(s).trim(), true)
}

/// Publish `<prefix><what>.<s>` for each known status (1 for the current one, 0 otherwise),
/// plus `<prefix><what>.<current> 1` when the current one is not among them.
fn one_hot(out: &mut Batch, prefix: &str, what: &str, known: &[&str], current: &str) {
    for s in known {
        out.gauge(
            format!("{prefix}{what}.{s}"),
            if *s == current { 1.0 } else { 0.0 },
        );
    }
    if !current.is_empty() && !known.contains(&current) {
        out.gauge(format!("{prefix}{what}.{current}"), 1.0);
    }
}

/// Per backend: how many of its servers are up / down / in maintenance.
#[derive(Default)]
struct ServerCounts {
    up: u32,
    down: u32,
    maint: u32,
}

/// Turn one stats CSV (header line `# pxname,svname,…`) into samples.
pub fn parse_stats(data: &[u8], opts: &ParseOptions, out: &mut Batch) -> anyhow::Result<()> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(data);
    let mut record = csv::ByteRecord::new();
    if !reader.read_byte_record(&mut record)? {
        anyhow::bail!("the stats output is empty (expected a CSV header `# pxname,svname,…`)");
    }
    let headers: Vec<String> = record
        .iter()
        .map(|h| {
            let h = String::from_utf8_lossy(h);
            segment(h.trim().trim_start_matches('#').trim(), true)
        })
        .collect();
    if headers.len() < 2 || headers[0] != "pxname" || headers[1] != "svname" {
        anyhow::bail!(
            "not HAProxy stats CSV: the first line does not start with `# pxname,svname` (for `url:`, end the stats URI with `;csv`)"
        );
    }
    let col = |name: &str| headers.iter().position(|h| h == name);
    let (type_col, status_col) = (col("type"), col("status"));
    let is_counter: Vec<bool> = headers
        .iter()
        .map(|h| opts.counters.iter().any(|c| c == h))
        .collect();
    // (pxname, prefix of its BACKEND row, counts), in order of appearance.
    let mut backends: Vec<(String, Option<String>, ServerCounts)> = Vec::new();
    let mut prefix = String::new();
    while reader.read_byte_record(&mut record)? {
        let (Some(px), Some(sv)) = (record.get(0), record.get(1)) else {
            continue;
        };
        if px.starts_with(b"#") {
            continue;
        }
        let px = String::from_utf8_lossy(px);
        let sv = String::from_utf8_lossy(sv);
        let field = |i: Option<usize>| {
            i.and_then(|i| record.get(i))
                .map(|v| String::from_utf8_lossy(v).trim().to_string())
                .unwrap_or_default()
        };
        let kind = match field(type_col).as_str() {
            "0" | "3" => RowKind::Frontend,
            "1" => RowKind::Backend,
            "2" => RowKind::Server,
            _ if sv == "FRONTEND" => RowKind::Frontend,
            _ if sv == "BACKEND" => RowKind::Backend,
            _ => RowKind::Server,
        };
        prefix.clear();
        prefix.push_str(&segment(&px, true));
        prefix.push('.');
        prefix.push_str(&segment(&sv, true));
        prefix.push('.');
        let status = normalise_status(&field(status_col));
        if kind != RowKind::Frontend {
            let i = match backends.iter().position(|(name, _, _)| *name == *px) {
                Some(i) => i,
                None => {
                    backends.push((px.to_string(), None, ServerCounts::default()));
                    backends.len() - 1
                }
            };
            let entry = &mut backends[i];
            if kind == RowKind::Backend {
                entry.1 = Some(prefix.clone());
            } else {
                match status.as_str() {
                    "up" | "no_check" | "nolb" | "drain" => entry.2.up += 1,
                    "down" => entry.2.down += 1,
                    "maint" => entry.2.maint += 1,
                    _ => {}
                }
            }
        }
        if kind == RowKind::Server && opts.ignore_servers {
            continue;
        }
        for (i, value) in record.iter().enumerate().skip(2) {
            let Some(name) = headers.get(i).filter(|h| !h.is_empty()) else {
                continue;
            };
            match name.as_str() {
                "status" => {
                    let known = match kind {
                        RowKind::Frontend => FRONTEND_STATUSES,
                        RowKind::Backend => BACKEND_STATUSES,
                        RowKind::Server => SERVER_STATUSES,
                    };
                    if !status.is_empty() {
                        one_hot(out, &prefix, "status", known, &status);
                    }
                }
                "check_status" | "agent_status" => {
                    let v = normalise_check(&String::from_utf8_lossy(value));
                    if !v.is_empty() {
                        one_hot(out, &prefix, name, CHECK_STATUSES, &v);
                    }
                }
                _ => {
                    let Some(v) = std::str::from_utf8(value)
                        .ok()
                        .map(str::trim)
                        .filter(|v| !v.is_empty())
                        .and_then(|v| v.parse::<f64>().ok())
                    else {
                        continue;
                    };
                    let metric = format!("{prefix}{name}");
                    if is_counter[i] {
                        out.counter(metric, v);
                    } else {
                        out.gauge(metric, v);
                    }
                }
            }
        }
    }
    for (_, row, counts) in backends {
        if let Some(p) = row {
            out.gauge(format!("{p}up_servers"), f64::from(counts.up));
            out.gauge(format!("{p}down_servers"), f64::from(counts.down));
            out.gauge(format!("{p}maint_servers"), f64::from(counts.maint));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::SampleKind;

    // Trimmed HAProxy 2.6 output: a frontend, a backend with one server up, one down (in a
    // check), one in maintenance, and a proxy whose name needs sanitising.
    const CSV: &str = "\
# pxname,svname,qcur,scur,stot,bin,status,weight,check_status,check_duration,type,lastchg,
web,FRONTEND,,3,120,5000,OPEN,,,,0,,
app,web1,0,1,40,100,UP,1,L4OK,0,2,12,
app,web2,0,0,0,0,DOWN 1/2,1,* L4CON,,2,3,
app,web3,0,0,0,0,MAINT(via),1,,,2,,
app,BACKEND,0,1,40,100,UP,2,,,1,12,
My.Proxy,BACKEND,0,0,0,0,DOWN,0,,,1,,
";

    fn parse(opts: ParseOptions) -> Batch {
        let mut b = Batch::default();
        parse_stats(CSV.as_bytes(), &opts, &mut b).unwrap();
        b
    }

    fn value(b: &Batch, name: &str) -> Option<(f64, SampleKind)> {
        b.samples
            .iter()
            .find(|s| s.name == name)
            .map(|s| (s.value, s.kind))
    }

    fn default_opts() -> ParseOptions {
        ParseOptions {
            counters: vec![],
            ignore_servers: false,
        }
    }

    #[test]
    fn fields_statuses_and_counts() {
        let b = parse(default_opts());
        let g = |n: &str| value(&b, n).map(|(v, _)| v);
        assert_eq!(g("web.frontend.scur"), Some(3.0));
        assert_eq!(g("web.frontend.status.open"), Some(1.0));
        assert_eq!(g("web.frontend.status.stop"), Some(0.0));
        assert_eq!(g("app.web1.stot"), Some(40.0));
        assert_eq!(g("app.web1.status.up"), Some(1.0));
        assert_eq!(g("app.web1.status.down"), Some(0.0));
        assert_eq!(g("app.web1.check_status.l4ok"), Some(1.0));
        assert_eq!(g("app.web1.check_status.l4con"), Some(0.0));
        assert_eq!(g("app.web2.status.down"), Some(1.0));
        assert_eq!(g("app.web2.status.up"), Some(0.0));
        assert_eq!(g("app.web2.check_status.l4con"), Some(1.0));
        assert_eq!(g("app.web3.status.maint"), Some(1.0));
        assert_eq!(g("app.web3.check_status.unk"), None); // no check, no one-hot
        assert_eq!(g("app.backend.status.up"), Some(1.0));
        assert_eq!(g("app.backend.up_servers"), Some(1.0));
        assert_eq!(g("app.backend.down_servers"), Some(1.0));
        assert_eq!(g("app.backend.maint_servers"), Some(1.0));
        assert_eq!(g("my_proxy.backend.status.down"), Some(1.0));
        assert_eq!(g("my_proxy.backend.up_servers"), Some(0.0));
        // strings and empty fields are not published as numbers
        assert_eq!(g("app.web1.status"), None);
        assert_eq!(g("app.web2.check_duration"), None);
        assert!(b.samples.iter().all(|s| s.kind == SampleKind::Gauge));
        // the frontend has one-hot over its own statuses only
        assert_eq!(g("web.frontend.status.up"), None);
    }

    #[test]
    fn counters_and_ignore_servers() {
        let b = parse(ParseOptions {
            counters: vec!["stot".into(), "bin".into()],
            ignore_servers: true,
        });
        assert_eq!(
            value(&b, "app.backend.stot"),
            Some((40.0, SampleKind::Counter))
        );
        assert_eq!(
            value(&b, "app.backend.scur"),
            Some((1.0, SampleKind::Gauge))
        );
        assert!(b.samples.iter().all(|s| !s.name.starts_with("app.web")));
        // counts still come from the server rows
        assert_eq!(value(&b, "app.backend.up_servers").unwrap().0, 1.0);
        assert_eq!(value(&b, "app.backend.down_servers").unwrap().0, 1.0);
    }

    #[test]
    fn unknown_status_is_kept() {
        let csv = "# pxname,svname,status,type\nx,s1,WEIRD,2\nx,BACKEND,UP,1\n";
        let mut b = Batch::default();
        parse_stats(csv.as_bytes(), &default_opts(), &mut b).unwrap();
        assert_eq!(value(&b, "x.s1.status.weird").unwrap().0, 1.0);
        assert_eq!(value(&b, "x.s1.status.up").unwrap().0, 0.0);
    }

    #[test]
    fn normalising() {
        assert_eq!(normalise_status("no check"), "no_check");
        assert_eq!(normalise_status("UP 1/3"), "up");
        assert_eq!(normalise_status("MAINT(resolution)"), "maint");
        assert_eq!(normalise_status(""), "");
        assert_eq!(normalise_check("* L7OK"), "l7ok");
        assert_eq!(normalise_check("L4TOUT"), "l4tout");
    }

    #[test]
    fn not_csv_is_an_error() {
        let mut b = Batch::default();
        let err = parse_stats(b"<html>stats</html>\n", &default_opts(), &mut b).unwrap_err();
        assert!(err.to_string().contains(";csv"), "{err}");
        assert!(parse_stats(b"", &default_opts(), &mut b).is_err());
    }
}
