//! nginx (`type: nginx`): the `stub_status` page over HTTP, with Diamond's NginxCollector
//! names (`active_connections`, `conn_accepted`, `conn_handled`, `req_handled`, `act_reads`,
//! `act_writes`, `act_waits`). The three totals become per-second rates in the runtime.


use async_trait::async_trait;

use super::service::{self, Endpoint, Secret};
use super::{Batch, Collector, CollectorConfig, Kind};

pub const KIND: Kind = Kind {
    name: "nginx",
    default_path: "nginx",
    sample: include_str!("nginx.sample.yml"),
    build: super::build::<NginxConfig>,
    circuit_breaker: true,
};

/// A stub_status page is about 100 bytes.
const MAX_BYTES: usize = 64 << 10;

crate::collector_config! {
    /// Options of the nginx collector.
    pub struct NginxConfig {
        /// The `stub_status` page, e.g. `http://127.0.0.1:8080/nginx_status`.
        pub url: String,
        /// Basic-auth user, when the location is protected (`auth_basic`).
        #[serde(default)]
        pub username: Option<String>,
        /// Basic-auth password; never logged.
        #[serde(default)]
        pub password: Option<Secret>,
    }
}

impl CollectorConfig for NginxConfig {
    fn into_collector(self) -> anyhow::Result<Box<dyn Collector>> {
        Ok(Box::new(Nginx {
            endpoint: Endpoint::parse(&self.url, self.username, self.password)?,
            client: service::http_client(service::CONNECT_TIMEOUT)?,
        }))
    }
}

pub struct Nginx {
    endpoint: Endpoint,
    client: reqwest::Client,
}

#[async_trait]
impl Collector for Nginx {
    async fn collect(&mut self, out: &mut Batch) -> anyhow::Result<()> {
        let body = service::get(
            &self.client,
            &self.endpoint,
            self.endpoint.url.clone(),
            MAX_BYTES,
        )
        .await?;
        parse_status(&String::from_utf8_lossy(&body), out).map_err(|why| {
            anyhow::anyhow!(
                "GET {}: not a stub_status page ({why}); check the url and `stub_status;` in its location",
                self.endpoint.url
            )
        })
    }
}

/// The stub_status text:
///
/// ```text
/// Active connections: 2
/// server accepts handled requests
///  10 10 20
/// Reading: 0 Writing: 1 Waiting: 1
/// ```
pub fn parse_status(text: &str, out: &mut Batch) -> Result<(), &'static str> {
    let mut lines = text.lines().map(str::trim);
    let active = lines
        .next()
        .and_then(|l| l.strip_prefix("Active connections:"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .ok_or("no `Active connections:` line")?;
    if lines.next() != Some("server accepts handled requests") {
        return Err("no `server accepts handled requests` line");
    }
    let totals: Vec<f64> = lines
        .next()
        .unwrap_or_default()
        .split_ascii_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| "the totals are not numbers")?;
    let [accepted, handled, requests] = totals[..] else {
        return Err("expected three totals");
    };
    let states: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_ascii_whitespace()
        .collect();
    let [("Reading:", r), ("Writing:", w), ("Waiting:", wa)] = [
        (states.first(), states.get(1)),
        (states.get(2), states.get(3)),
        (states.get(4), states.get(5)),
    ]
    .map(|(k, v)| {
        (
            k.copied().unwrap_or_default(),
            v.and_then(|v| v.parse::<f64>().ok()),
        )
    }) else {
        return Err("no `Reading: Writing: Waiting:` line");
    };
    let (Some(r), Some(w), Some(wa)) = (r, w, wa) else {
        return Err("the connection states are not numbers");
    };
    out.gauge("active_connections", active);
    out.counter("conn_accepted", accepted);
    out.counter("conn_handled", handled);
    out.counter("req_handled", requests);
    out.gauge("act_reads", r);
    out.gauge("act_writes", w);
    out.gauge("act_waits", wa);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;


    #[test]
    fn parses_stub_status() {
        let mut b = Batch::default();
        parse_status(
            "Active connections: 2 \nserver accepts handled requests\n 10 9 20 \nReading: 0 Writing: 1 Waiting: 1 \n",
            &mut b,
        )
        .unwrap();
        let got: Vec<_> = b
            .samples
            .iter()
            .map(|s| (s.name.as_str(), s.value))
            .collect();
        assert_eq!(
            got,
            [
                ("active_connections", 2.0),
                ("conn_accepted", 10.0),
                ("conn_handled", 9.0),
                ("req_handled", 20.0),
                ("act_reads", 0.0),
                ("act_writes", 1.0),
                ("act_waits", 1.0)
            ]
        );
        for bad in [
            "<html>hello</html>",
            "Active connections: 2\nserver accepts handled requests\n 1 2\nReading: 0 Writing: 1 Waiting: 1\n",
            "Active connections: 2\nserver accepts handled requests\n 1 2 3\nReading: 0 Writing: 1\n",
        ] {
            assert!(parse_status(bad, &mut Batch::default()).is_err(), "{bad}");
        }
    }

    #[test]
    fn config_errors() {
        for (text, want) in [
            ("type: nginx\n", "missing field `url`"),
            ("type: nginx\nurl: ftp://h/\n", "scheme"),
        ] {
            let e = KIND.load(text).err().unwrap().to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
    }


}
