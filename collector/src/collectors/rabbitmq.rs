//! RabbitMQ (`type: rabbitmq`) through the management plugin's HTTP API.
//!
//! Per run: `/api/overview` (`queue_totals.*`, `message_stats.*`, `object_totals.*`),
//! `/api/nodes` (`health.*` for the node that answers, `cluster.*`), `/api/vhosts`, then each
//! selected vhost's queues page by page (`/api/queues/<vhost>?page=N&page_size=…&columns=…`),
//! so thousands of queues are read in bounded pieces with only the columns published.
//!
//! Names follow Diamond: `queues.<queue>.<key>` (Diamond's default layout) or, with
//! `queue_paths: vhost`, `vhosts.<vhost>.queues.<queue>.<key>`; nested objects become levels
//! (`message_stats.publish_details.rate`), booleans 0/1. A vhost or queue name is one path
//! level: every character outside `[A-Za-z0-9_-]` becomes `_` (the default vhost `/` is `_`).

use std::collections::HashSet;

use anyhow::Context;
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;

use super::service::{self, segment, Endpoint, Secret};
use super::{Batch, Collector, CollectorConfig, Kind, Pattern};

pub const KIND: Kind = Kind {
    name: "rabbitmq",
    default_path: "rabbitmq",
    sample: include_str!("rabbitmq.sample.yml"),
    build: super::build::<RabbitmqConfig>,
    circuit_breaker: true,
};

/// Largest response body accepted for one request (a page of queues is far smaller).
const MAX_BYTES: usize = 32 << 20;
/// The queue columns asked for (and so published).
const QUEUE_COLUMNS: &str = "name,messages,messages_ready,messages_unacknowledged,consumers,\
consumer_utilisation,memory,messages_details,messages_ready_details,\
messages_unacknowledged_details,message_stats";
/// The node columns asked for; `health.*` publishes these (Diamond's ten first).
const NODE_COLUMNS: &str = "name,running,fd_used,fd_total,mem_used,mem_limit,sockets_used,\
sockets_total,disk_free_limit,disk_free,proc_used,proc_total,mem_alarm,disk_free_alarm,\
uptime,partitions";
const HEALTH: &[&str] = &[
    "fd_used",
    "fd_total",
    "mem_used",
    "mem_limit",
    "sockets_used",
    "sockets_total",
    "disk_free_limit",
    "disk_free",
    "proc_used",
    "proc_total",
    "running",
    "mem_alarm",
    "disk_free_alarm",
    "uptime",
];

fn default_url() -> String {
    "http://127.0.0.1:15672".into()
}
fn default_page_size() -> u32 {
    500
}

/// Where queue metrics go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueuePaths {
    /// `queues.<queue>.*` (Diamond without a `[vhosts]` section). A queue name present in
    /// several vhosts is published once, from the first vhost in name order.
    #[default]
    Flat,
    /// `vhosts.<vhost>.queues.<queue>.*` (Diamond with `[vhosts]`).
    Vhost,
}

crate::collector_config! {
    /// Options of the RabbitMQ collector.
    pub struct RabbitmqConfig {
        /// Base URL of the management API.
        #[serde(default = "default_url")]
        pub url: String,
        /// User for basic auth; the `monitoring` tag is enough. When neither `username`,
        /// `password` nor credentials in `url` are given, RabbitMQ's `guest` / `guest`.
        #[serde(default)]
        pub username: Option<String>,
        /// Its password; never logged.
        #[serde(default)]
        pub password: Option<Secret>,
        /// `flat` (`queues.<queue>.*`, the default) or `vhost` (`vhosts.<vhost>.queues.<queue>.*`).
        #[serde(default)]
        pub queue_paths: QueuePaths,
        /// Regexes; when non-empty, only vhosts whose name matches one are read for queues.
        #[serde(default)]
        pub vhosts: Vec<Pattern>,
        /// Regexes; vhosts whose name matches any are not read for queues.
        #[serde(default)]
        pub exclude_vhosts: Vec<Pattern>,
        /// Regexes; when non-empty, only queues whose name matches one are published.
        #[serde(default)]
        pub queues: Vec<Pattern>,
        /// Regexes; queues whose name matches any are not published (Diamond's `queues_ignored`).
        #[serde(default)]
        pub exclude_queues: Vec<Pattern>,
        /// Queues per page of the queue listing (1 to 500, RabbitMQ's maximum).
        #[serde(default = "default_page_size")]
        pub page_size: u32,
    }
}

/// The configured credentials, or RabbitMQ's default user `guest` / `guest` when none is
/// configured at all (here or in the URL): a `username:` without `password:` must not
/// silently send guest's password.
fn credentials(
    url: &str,
    username: Option<String>,
    password: Option<Secret>,
) -> (Option<String>, Option<Secret>) {
    let url_has_user = reqwest::Url::parse(url).is_ok_and(|u| !u.username().is_empty());
    match (username, password) {
        (None, None) if !url_has_user => (Some("guest".into()), Some(Secret::new("guest"))),
        given => given,
    }
}

impl CollectorConfig for RabbitmqConfig {
    fn into_collector(self) -> anyhow::Result<Box<dyn Collector>> {
        if !(1..=500).contains(&self.page_size) {
            anyhow::bail!(
                "page_size {} is out of range: RabbitMQ serves 1 to 500 queues per page",
                self.page_size
            );
        }
        let (username, password) = credentials(&self.url, self.username, self.password);
        let endpoint = Endpoint::parse(&self.url, username, password)?;
        Ok(Box::new(Rabbitmq {
            client: service::http_client(service::CONNECT_TIMEOUT)?,
            endpoint,
            queue_paths: self.queue_paths,
            vhosts: Select {
                include: self.vhosts,
                exclude: self.exclude_vhosts,
            },
            queues: Select {
                include: self.queues,
                exclude: self.exclude_queues,
            },
            page_size: self.page_size,
            warned_collision: false,
        }))
    }
}

/// Include/exclude regexes (search semantics, like `whitelist`/`blacklist`).
struct Select {
    include: Vec<Pattern>,
    exclude: Vec<Pattern>,
}

impl Select {
    fn allows(&self, name: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|p| p.0.is_match(name)))
            && !self.exclude.iter().any(|p| p.0.is_match(name))
    }
}

pub struct Rabbitmq {
    client: reqwest::Client,
    endpoint: Endpoint,
    queue_paths: QueuePaths,
    vhosts: Select,
    queues: Select,
    page_size: u32,
    warned_collision: bool,
}

#[derive(Deserialize)]
struct Overview {
    node: Option<String>,
    #[serde(default)]
    queue_totals: Value,
    #[serde(default)]
    message_stats: Value,
    #[serde(default)]
    object_totals: Value,
}

#[derive(Deserialize)]
struct Vhost {
    name: String,
}

#[derive(Deserialize)]
struct QueuePage {
    #[serde(default)]
    items: Vec<serde_json::Map<String, Value>>,
    #[serde(default)]
    page_count: u64,
}

impl Rabbitmq {
    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
    ) -> anyhow::Result<T> {
        let mut url = self.endpoint.join(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let shown = url.to_string();
        let body = service::get(&self.client, &self.endpoint, url, MAX_BYTES).await?;
        serde_json::from_slice(&body).with_context(|| {
            format!("GET {shown}: not the expected JSON (is this the RabbitMQ management API?)")
        })
    }

    async fn collect_queues(
        &mut self,
        vhost: &str,
        seen: &mut HashSet<String>,
        out: &mut Batch,
    ) -> anyhow::Result<()> {
        let page_size = self.page_size.to_string();
        let mut page = 1u64;
        let mut prefix = String::new();
        loop {
            let p = page.to_string();
            let listing: QueuePage = match self
                .get_json(
                    &["api", "queues", vhost],
                    &[
                        ("page", &p),
                        ("page_size", &page_size),
                        ("columns", QUEUE_COLUMNS),
                    ],
                )
                .await
            {
                Ok(listing) => listing,
                // Queues were deleted since the previous page: RabbitMQ answers 400
                // (page_out_of_range) for a page past the new end. Everything is listed.
                Err(e)
                    if page > 1
                        && e.downcast_ref::<service::StatusError>()
                            .is_some_and(|s| s.status == 400) =>
                {
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
            for item in &listing.items {
                let Some(name) = item.get("name").and_then(Value::as_str) else {
                    continue;
                };
                if !self.queues.allows(name) {
                    continue;
                }
                let queue = segment(name, false);
                prefix.clear();
                match self.queue_paths {
                    QueuePaths::Flat => {
                        if !seen.insert(queue.clone()) {
                            if !self.warned_collision {
                                self.warned_collision = true;
                                tracing::warn!(
                                    "rabbitmq: queue {name:?} exists in several vhosts; with `queue_paths: flat` only the first is published (set `queue_paths: vhost`)"
                                );
                            }
                            continue;
                        }
                        prefix.push_str("queues.");
                    }
                    QueuePaths::Vhost => {
                        prefix.push_str("vhosts.");
                        prefix.push_str(&segment(vhost, false));
                        prefix.push_str(".queues.");
                    }
                }
                prefix.push_str(&queue);
                for (key, value) in item {
                    if key != "name" {
                        flatten(out, &mut prefix, key, value);
                    }
                }
            }
            if page >= listing.page_count {
                return Ok(());
            }
            page += 1;
        }
    }
}

/// Publish every number (and boolean, as 0/1) under `prefix.key`, recursing into objects.
fn flatten(out: &mut Batch, prefix: &mut String, key: &str, value: &Value) {
    let len = prefix.len();
    if !prefix.is_empty() {
        prefix.push('.');
    }
    prefix.push_str(&segment(key, false));
    match value {
        Value::Number(n) => {
            if let Some(v) = n.as_f64() {
                out.gauge(prefix.as_str(), v);
            }
        }
        Value::Bool(b) => out.gauge(prefix.as_str(), if *b { 1.0 } else { 0.0 }),
        Value::Object(map) => {
            for (k, v) in map {
                flatten(out, prefix, k, v);
            }
        }
        _ => {}
    }
    prefix.truncate(len);
}

#[async_trait]
impl Collector for Rabbitmq {
    async fn collect(&mut self, out: &mut Batch) -> anyhow::Result<()> {
        let overview: Overview = self.get_json(&["api", "overview"], &[]).await?;
        let mut prefix = String::new();
        flatten(out, &mut prefix, "queue_totals", &overview.queue_totals);
        flatten(out, &mut prefix, "message_stats", &overview.message_stats);
        flatten(out, &mut prefix, "object_totals", &overview.object_totals);

        let nodes: Vec<serde_json::Map<String, Value>> = self
            .get_json(&["api", "nodes"], &[("columns", NODE_COLUMNS)])
            .await?;
        let running = nodes
            .iter()
            .filter(|n| n.get("running").and_then(Value::as_bool) == Some(true))
            .count();
        out.gauge("cluster.nodes", nodes.len() as f64);
        out.gauge("cluster.running_nodes", running as f64);
        let this = nodes
            .iter()
            .find(|n| n.get("name").and_then(Value::as_str) == overview.node.as_deref());
        if let Some(node) = this {
            for key in HEALTH {
                if let Some(v) = node.get(*key) {
                    prefix.clear();
                    prefix.push_str("health");
                    flatten(out, &mut prefix, key, v);
                }
            }
            let partitions = node
                .get("partitions")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            out.gauge("cluster.partitions", partitions as f64);
        }

        let vhosts: Vec<Vhost> = self
            .get_json(&["api", "vhosts"], &[("columns", "name")])
            .await?;
        let mut names: Vec<String> = vhosts
            .into_iter()
            .map(|v| v.name)
            .filter(|v| self.vhosts.allows(v))
            .collect();
        names.sort();
        let mut seen = HashSet::new();
        for vhost in &names {
            self.collect_queues(vhost, &mut seen, out).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flatten_nests_and_skips_non_numbers() {
        let v: Value = serde_json::json!({
            "messages": 5, "name": "x", "durable": true,
            "message_stats": {"publish": 7, "publish_details": {"rate": 0.5}},
            "samples": [1, 2]
        });
        let mut out = Batch::default();
        let mut prefix = String::from("queues.orders");
        for (k, v) in v.as_object().unwrap() {
            flatten(&mut out, &mut prefix, k, v);
        }
        assert_eq!(prefix, "queues.orders");
        let mut got: Vec<(String, f64)> =
            out.samples.into_iter().map(|s| (s.name, s.value)).collect();
        got.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            got,
            [
                ("queues.orders.durable".to_string(), 1.0),
                ("queues.orders.message_stats.publish".to_string(), 7.0),
                (
                    "queues.orders.message_stats.publish_details.rate".to_string(),
                    0.5
                ),
                ("queues.orders.messages".to_string(), 5.0),
            ]
        );
    }

    #[test]
    fn select_is_include_then_exclude() {
        let p = |s: &str| Pattern(regex_lite::Regex::new(s).unwrap());
        let s = Select {
            include: vec![],
            exclude: vec![p("^amq\\.gen-")],
        };
        assert!(s.allows("orders"));
        assert!(!s.allows("amq.gen-123"));
        let s = Select {
            include: vec![p("^ord")],
            exclude: vec![p("tmp$")],
        };
        assert!(s.allows("orders"));
        assert!(!s.allows("orders.tmp"));
        assert!(!s.allows("jobs"));
    }

    #[test]
    fn guest_is_the_default_only_without_any_credential() {
        let local = "http://127.0.0.1:15672";
        let cases = [
            (local, None, None, Some("guest"), Some("guest")),
            (local, Some("mon"), None, Some("mon"), None),
            (local, None, Some("pw"), None, Some("pw")),
            (local, Some("mon"), Some("pw"), Some("mon"), Some("pw")),
            ("http://mon:pw@127.0.0.1:15672", None, None, None, None),
        ];
        for (url, user, pass, want_user, want_pass) in cases {
            let (u, p) = credentials(url, user.map(String::from), pass.map(Secret::new));
            assert_eq!(
                (u.as_deref(), p.as_ref().map(Secret::expose)),
                (want_user, want_pass),
                "{url} {user:?} {pass:?}"
            );
        }
    }

    #[test]
    fn page_size_is_validated() {
        let cfg: RabbitmqConfig = conf::from_str(
            std::path::Path::new("t.yml"),
            "type: rabbitmq\npage_size: 1000\n",
        )
        .unwrap();
        let err = cfg.into_collector().err().unwrap();
        assert!(err.to_string().contains("1 to 500"), "{err}");
    }
}
