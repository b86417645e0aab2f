//! MongoDB (`type: mongodb`): `serverStatus` flattened with Diamond's names (path `mongo`),
//! per-second rates of the counters Diamond rates, lock/ticket/cache percentages, and
//! optionally `dbStats`, `collStats` and replica-set health. Talks to the server through the
//! official driver; the connection string may carry credentials, which never reach a log or
//! an error message (see [`Secrets`]).

use std::future::{Future, IntoFuture};
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use anyhow::anyhow;
use async_trait::async_trait;
use mongodb::bson::{rawdoc, Bson, Document};
use mongodb::error::ErrorKind;
use mongodb::options::{ClientOptions, Credential};
use mongodb::Client;

use conf::Secret;
use super::{Batch, Collector, CollectorConfig, Kind, Pattern};

pub const KIND: Kind = Kind {
    name: "mongodb",
    default_path: DEFAULT_PATH,
    sample: include_str!("mongodb.sample.yml"),
    build: super::build::<MongoConfig>,
    circuit_breaker: true,
};

/// Diamond's path segment for this collector (`servers.<host>.mongo.connections.current`).
pub const DEFAULT_PATH: &str = "mongo";

fn default_uri() -> MongoUri {
    MongoUri("mongodb://127.0.0.1:27017".into())
}

/// A connection string from a config file. `Debug` hides its `user:password@` part, so a
/// debug-printed config never shows a credential; [`MongoUri::as_str`] gives it whole.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct MongoUri(String);

impl MongoUri {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for MongoUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match uri_userinfo(&self.0) {
            Some(userinfo) => write!(f, "{:?}", self.0.replacen(userinfo, "[redacted]", 1)),
            None => write!(f, "{:?}", self.0),
        }
    }
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(3)
}
fn default_server_selection_timeout() -> Duration {
    Duration::from_secs(3)
}
fn default_ignore_collections() -> Pattern {
    // A constant pattern: cannot fail.
    Pattern(regex_lite::Regex::new(r"^tmp\.mr\.|^system\.").expect("constant regex"))
}
fn default_max_collections() -> usize {
    100
}

crate::collector_config! {
    /// Options of the MongoDB collector.
    pub struct MongoConfig {
        /// MongoDB connection string (`mongodb://[user:password@]host[:port][,host…]/[?options]`),
        /// TLS and auth options included (`tls=true`, `tlsCAFile=…`, `authSource=…`). A single
        /// host is connected to directly (`directConnection=true` unless the URI says otherwise
        /// or names a `replicaSet`). `mongodb+srv://` is not supported.
        #[serde(default = "default_uri")]
        pub uri: MongoUri,
        /// User name; overrides one in the URI (keeps the URI free of credentials).
        #[serde(default)]
        pub username: Option<String>,
        /// Password; overrides one in the URI. Never logged.
        #[serde(default)]
        pub password: Option<Secret>,
        /// TCP connect (and handshake) timeout, unless the URI sets `connectTimeoutMS`.
        #[serde(default = "default_connect_timeout", with = "humantime_serde")]
        pub connect_timeout: Duration,
        /// How long to wait for a usable server, unless the URI sets
        /// `serverSelectionTimeoutMS`. Keep it below the run's `timeout`.
        #[serde(default = "default_server_selection_timeout", with = "humantime_serde")]
        pub server_selection_timeout: Duration,
        /// When set, `dbStats` of every database whose name matches this regex, under
        /// `databases.<db>.*`. Unset: no per-database statistics.
        #[serde(default)]
        pub databases: Option<Pattern>,
        /// Also `collStats` of the collections of those databases, under
        /// `databases.<db>.<collection>.*` (needs `databases`).
        #[serde(default)]
        pub collections: bool,
        /// Collections whose name matches this regex are skipped (default: map-reduce
        /// temporaries and `system.*`).
        #[serde(default = "default_ignore_collections")]
        pub ignore_collections: Pattern,
        /// At most this many `collStats` calls per run (databases and collections in the
        /// server's order); the rest are skipped.
        #[serde(default = "default_max_collections")]
        pub max_collections: usize,
        /// Replica-set health from `replSetGetStatus` under `replset.*`: healthy/total node
        /// counts, each member's state, health and lag behind the primary. A server that is
        /// not in a replica set publishes nothing there.
        #[serde(default)]
        pub replica_set: bool,
    }
}

impl CollectorConfig for MongoConfig {
    fn into_collector(self) -> anyhow::Result<Box<dyn Collector>> {
        if self.collections && self.databases.is_none() {
            anyhow::bail!(
                "collections: true needs `databases:` (a regex of the databases to look into, e.g. '.*')"
            );
        }
        let secrets = Secrets::new(
            self.uri.as_str(),
            self.password.as_ref().map(Secret::expose),
        );
        let options = client_options(&self).map_err(|e| anyhow!(secrets.scrub(&e)))?;
        let hosts = options
            .hosts
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        Ok(Box::new(MongoDb {
            options,
            client: None,
            hosts,
            secrets,
            databases: self.databases,
            collections: self.collections,
            ignore_collections: self.ignore_collections,
            max_collections: self.max_collections,
            replica_set: self.replica_set,
            deltas: DELTA_PERCENTS.iter().map(|_| None).collect(),
        }))
    }
}

/// Parse and complete the driver options, at load time: a bad URI is a config error, not a
/// failure on every run. Parsing a `mongodb://` URI does no I/O, so its future completes on
/// its first poll and no runtime is needed.
fn client_options(cfg: &MongoConfig) -> Result<ClientOptions, String> {
    if cfg.uri.as_str().starts_with("mongodb+srv://") {
        return Err(
            "uri: mongodb+srv:// needs DNS SRV lookups, which this build leaves out; \
                    list the hosts instead: mongodb://host1,host2/?replicaSet=NAME"
                .into(),
        );
    }
    let parse = ClientOptions::parse(cfg.uri.as_str()).into_future();
    let mut parse = pin!(parse);
    let mut cx = Context::from_waker(Waker::noop());
    let mut options = match parse.as_mut().poll(&mut cx) {
        Poll::Ready(Ok(o)) => o,
        Poll::Ready(Err(e)) => return Err(format!("uri: invalid MongoDB connection string: {e}")),
        Poll::Pending => {
            return Err(
                "uri: this connection string needs DNS lookups to parse; list the hosts instead"
                    .into(),
            )
        }
    };
    if cfg.username.is_some() || cfg.password.is_some() {
        let cred = options.credential.get_or_insert_with(Credential::default);
        if let Some(u) = &cfg.username {
            cred.username = Some(u.clone());
        }
        if let Some(p) = &cfg.password {
            cred.password = Some(p.expose().to_string());
        }
    }
    if options.connect_timeout.is_none() {
        options.connect_timeout = Some(cfg.connect_timeout);
    }
    if options.server_selection_timeout.is_none() {
        options.server_selection_timeout = Some(cfg.server_selection_timeout);
    }
    // Monitoring watches this node, whatever its role: talk to it directly, never follow
    // the replica set to its primary.
    if options.direct_connection.is_none()
        && options.hosts.len() == 1
        && options.repl_set_name.is_none()
        && options.load_balanced != Some(true)
    {
        options.direct_connection = Some(true);
    }
    // The runtime owns retries (a collector never retries).
    if options.retry_reads.is_none() {
        options.retry_reads = Some(false);
    }
    if options.app_name.is_none() {
        options.app_name = Some("carbide-collector".into());
    }
    Ok(options)
}

/// The secrets of one instance (the password, as configured and as it appears in the URI,
/// raw and percent-decoded), scrubbed from every message this collector produces.
#[derive(Debug, Default)]
pub struct Secrets(Vec<String>);

impl Secrets {
    pub fn new(uri: &str, password: Option<&str>) -> Self {
        let mut found = Vec::new();
        if let Some(p) = password {
            found.push(p.to_string());
        }
        if let Some(userinfo) = uri_userinfo(uri) {
            if let Some((_, p)) = userinfo.split_once(':') {
                found.push(p.to_string());
                found.push(percent_decode(p));
            }
            // The whole userinfo too: a URI parser may echo it back.
            found.push(userinfo.to_string());
        }
        found.retain(|s| !s.is_empty());
        // Longest first, so a secret containing another is replaced whole.
        found.sort_by_key(|s| std::cmp::Reverse(s.len()));
        found.dedup();
        Secrets(found)
    }

    /// `msg` with every secret replaced by `<redacted>`.
    pub fn scrub(&self, msg: &str) -> String {
        let mut out = msg.to_string();
        for s in &self.0 {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "<redacted>");
            }
        }
        out
    }
}

/// The `user:password` part of a `mongodb://` URI, if any.
fn uri_userinfo(uri: &str) -> Option<&str> {
    let rest = uri.split_once("://")?.1;
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    // The password may contain '@' if not encoded: the host list follows the last one.
    authority.rfind('@').map(|i| &authority[..i])
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = s
            .get(i + 1..i + 3)
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percentages from the deltas of two counters between runs (Diamond's
/// `percent.<value>`): `(value path, total path)`. Both need a previous sample.
const DELTA_PERCENTS: &[(&str, &str)] = &[
    // MongoDB ≤ 2.x: time the global lock was held over time since start, both in µs.
    ("globalLock.lockTime", "globalLock.totalTime"),
    ("indexCounters.btree.misses", "indexCounters.btree.accesses"),
    ("indexCounters.misses", "indexCounters.accesses"),
];

/// Diamond's per-second rates: `(serverStatus section, published prefix, only this field)`.
const RATES: &[(&str, &str, Option<&str>)] = &[
    ("opcounters", "opcounters_per_sec", None),
    ("opcountersRepl", "opcountersRepl_per_sec", None),
    ("network", "network_per_sec", None),
    (
        "backgroundFlushing",
        "backgroundFlushing_per_sec",
        Some("flushes"),
    ),
    ("extra_info", "extra_info_per_sec", Some("page_faults")),
];

/// One configured MongoDB instance.
pub struct MongoDb {
    options: ClientOptions,
    /// Created on the first run (it starts background monitoring tasks), then kept.
    client: Option<Client>,
    /// For error messages: `host:port[,…]`.
    hosts: String,
    secrets: Secrets,
    databases: Option<Pattern>,
    collections: bool,
    ignore_collections: Pattern,
    max_collections: usize,
    replica_set: bool,
    /// Previous `(value, total)` of each [`DELTA_PERCENTS`] entry.
    deltas: Vec<Option<(f64, f64)>>,
}

impl MongoDb {
    fn error(&self, what: &str, e: impl std::fmt::Display) -> anyhow::Error {
        anyhow!(self
            .secrets
            .scrub(&format!("{what} on {}: {e}", self.hosts)))
    }

    fn client(&mut self) -> anyhow::Result<Client> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        let c = Client::with_options(self.options.clone())
            .map_err(|e| self.error("creating the MongoDB client", e))?;
        self.client = Some(c.clone());
        Ok(c)
    }
}

#[async_trait]
impl Collector for MongoDb {
    async fn collect(&mut self, out: &mut Batch) -> anyhow::Result<()> {
        let client = self.client()?;
        let admin = client.database("admin");
        let status = admin
            .run_raw_command(rawdoc! { "serverStatus": 1 })
            .await
            .map_err(|e| self.error("serverStatus", e))?;
        publish_server_status(&status, &mut self.deltas, out);

        // The optional parts: one failing does not stop the others; the first error is
        // returned once everything else is published.
        let mut first_error: Option<anyhow::Error> = None;
        if self.replica_set {
            match admin
                .run_raw_command(rawdoc! { "replSetGetStatus": 1 })
                .await
            {
                Ok(doc) => publish_replset(&doc, out),
                // Not a replica-set member (standalone, or not initiated yet): nothing to say.
                Err(e) if matches!(command_code(&e), Some(76 | 94)) => {}
                Err(e) => {
                    first_error.get_or_insert(self.error("replSetGetStatus", e));
                }
            }
        }
        if let Some(filter) = self.databases.clone() {
            if let Err(e) = self.database_stats(&client, &filter.0, out).await {
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl MongoDb {
    async fn database_stats(
        &self,
        client: &Client,
        filter: &regex_lite::Regex,
        out: &mut Batch,
    ) -> anyhow::Result<()> {
        let names = client
            .list_database_names()
            .await
            .map_err(|e| self.error("listDatabases", e))?;
        let mut budget = self.max_collections;
        let mut name = String::new();
        for db_name in names.iter().filter(|n| filter.is_match(n)) {
            let db = client.database(db_name);
            let stats = db
                .run_raw_command(rawdoc! { "dbStats": 1 })
                .await
                .map_err(|e| self.error(&format!("dbStats of {db_name}"), e))?;
            name.clear();
            name.push_str("databases.");
            push_name(&mut name, db_name);
            name.push('.');
            flatten(&stats, &mut name, out, &[]);
            if !self.collections || budget == 0 {
                continue;
            }
            let collections = db
                .list_collection_names()
                .filter(mongodb::bson::doc! { "type": "collection" })
                .await
                .map_err(|e| self.error(&format!("listCollections of {db_name}"), e))?;
            for coll in collections
                .iter()
                .filter(|c| !self.ignore_collections.0.is_match(c))
            {
                if budget == 0 {
                    break;
                }
                budget -= 1;
                let stats = db
                    .run_raw_command(rawdoc! { "collStats": coll.as_str() })
                    .await
                    .map_err(|e| self.error(&format!("collStats of {db_name}.{coll}"), e))?;
                name.clear();
                name.push_str("databases.");
                push_name(&mut name, db_name);
                name.push('.');
                push_name(&mut name, coll);
                name.push('.');
                // The storage engine's own per-collection sections are hundreds of values
                // per collection: left out.
                flatten(&stats, &mut name, out, &["wiredTiger", "indexDetails"]);
            }
        }
        Ok(())
    }
}

/// The server error code of a failed command, if that is what failed.
fn command_code(e: &mongodb::error::Error) -> Option<i32> {
    match &*e.kind {
        ErrorKind::Command(c) => Some(c.code),
        _ => None,
    }
}

/// Everything from one `serverStatus` reply: the flattened document, Diamond's rates and
/// the percentages.
pub fn publish_server_status(
    status: &Document,
    deltas: &mut [Option<(f64, f64)>],
    out: &mut Batch,
) {
    let mut name = String::with_capacity(128);
    flatten(status, &mut name, out, &["$clusterTime", "operationTime"]);

    for (section, prefix, only) in RATES {
        let Some(doc) = document_at(status, section) else {
            continue;
        };
        for (key, value) in doc {
            if only.is_some_and(|o| o != key) {
                continue;
            }
            if let Some(v) = number(value) {
                name.clear();
                name.push_str(prefix);
                name.push('.');
                push_key(&mut name, key);
                out.counter(name.as_str(), v);
            }
        }
    }

    for ((value_path, total_path), prev) in DELTA_PERCENTS.iter().zip(deltas.iter_mut()) {
        let (Some(value), Some(total)) =
            (number_at(status, value_path), number_at(status, total_path))
        else {
            *prev = None;
            continue;
        };
        if let Some((pv, pt)) = prev.replace((value, total)) {
            let (dv, dt) = (value - pv, total - pt);
            if dt > 0.0 && dv >= 0.0 {
                out.gauge(format!("percent.{value_path}"), dv / dt * 100.0);
            }
        }
    }

    // The modern equivalents of the lock percentage. Read/write tickets in use: WiredTiger's
    // own section until 6.0, the execution-control queues from 7.0 (same published name, so
    // graphs survive an upgrade).
    for op in ["read", "write"] {
        let tickets = document_at(status, &format!("wiredTiger.concurrentTransactions.{op}"))
            .or_else(|| document_at(status, &format!("queues.execution.{op}")));
        if let Some(t) = tickets {
            let out_n = number_at(t, "out");
            let total = number_at(t, "totalTickets").or_else(|| {
                let (o, a) = (out_n?, number_at(t, "available")?);
                Some(o + a)
            });
            if let (Some(o), Some(total)) = (out_n, total) {
                if total > 0.0 {
                    out.gauge(
                        format!("percent.wiredTiger.concurrentTransactions.{op}"),
                        o / total * 100.0,
                    );
                }
            }
        }
    }
    if let Some(cache) = document_at(status, "wiredTiger.cache") {
        if let Some(max) = number_at(cache, "maximum bytes configured").filter(|m| *m > 0.0) {
            if let Some(used) = number_at(cache, "bytes currently in the cache") {
                out.gauge("percent.wiredTiger.cache.used", used / max * 100.0);
            }
            if let Some(dirty) = number_at(cache, "tracked dirty bytes in the cache") {
                out.gauge("percent.wiredTiger.cache.dirty", dirty / max * 100.0);
            }
        }
    }
}

/// `replSetGetStatus`: its numbers under `replset.`, Diamond's `healthy_nodes` /
/// `total_nodes`, and per member (`replset.node.<host_port>.`) its numbers plus
/// `lag_seconds` behind the primary.
pub fn publish_replset(doc: &Document, out: &mut Batch) {
    let mut name = String::from("replset.");
    flatten(
        doc,
        &mut name,
        out,
        &["members", "$clusterTime", "operationTime"],
    );
    let Ok(members) = doc.get_array("members") else {
        return;
    };
    let mut healthy = 0.0;
    let mut total = 0.0;
    let mut primary_optime = None;
    for m in members.iter().filter_map(Bson::as_document) {
        total += 1.0;
        healthy += number_at(m, "health").unwrap_or(0.0);
        if number_at(m, "state") == Some(1.0) {
            primary_optime = optime_millis(m);
        }
    }
    out.gauge("replset.healthy_nodes", healthy);
    out.gauge("replset.total_nodes", total);
    for m in members.iter().filter_map(Bson::as_document) {
        let Ok(member) = m.get_str("name") else {
            continue;
        };
        name.clear();
        name.push_str("replset.node.");
        push_name(&mut name, member);
        name.push('.');
        let len = name.len();
        flatten(m, &mut name, out, &[]);
        // An arbiter (7) holds no data; a member without an optime has none to compare.
        if number_at(m, "state") != Some(7.0) {
            if let (Some(p), Some(own)) = (primary_optime, optime_millis(m)) {
                name.truncate(len);
                name.push_str("lag_seconds");
                out.gauge(name.as_str(), ((p - own) as f64 / 1000.0).max(0.0));
            }
        }
    }
}

fn optime_millis(member: &Document) -> Option<i64> {
    match member.get("optimeDate")? {
        Bson::DateTime(d) => Some(d.timestamp_millis()),
        _ => None,
    }
}

/// Publish every numeric leaf of `doc` as a gauge named `prefix` + the key path. Numbers as
/// they are, booleans as 0/1, dates as epoch seconds (as Diamond); strings, arrays, ids and
/// replication timestamps are skipped. Top-level keys in `skip` are left out.
fn flatten(doc: &Document, prefix: &mut String, out: &mut Batch, skip: &[&str]) {
    let len = prefix.len();
    for (key, value) in doc {
        if skip.contains(&key.as_str()) {
            continue;
        }
        match value {
            Bson::Document(d) => {
                push_key(prefix, key);
                prefix.push('.');
                flatten(d, prefix, out, &[]);
            }
            v => {
                if let Some(n) = number(v) {
                    push_key(prefix, key);
                    out.gauge(prefix.as_str(), n);
                }
            }
        }
        prefix.truncate(len);
    }
}

fn number(v: &Bson) -> Option<f64> {
    match v {
        Bson::Double(f) => Some(*f),
        Bson::Int32(i) => Some(f64::from(*i)),
        Bson::Int64(i) => Some(*i as f64),
        Bson::Boolean(b) => Some(if *b { 1.0 } else { 0.0 }),
        Bson::DateTime(d) => Some(d.timestamp_millis().div_euclid(1000) as f64),
        _ => None,
    }
}

/// The document at a dotted path (`wiredTiger.cache`), if there is one.
fn document_at<'a>(doc: &'a Document, path: &str) -> Option<&'a Document> {
    path.split('.')
        .try_fold(doc, |cur, part| cur.get_document(part).ok())
}

/// The number at a dotted path whose last key may contain spaces but no dots.
fn number_at(doc: &Document, path: &str) -> Option<f64> {
    let (parent, key) = match path.rsplit_once('.') {
        Some((p, k)) => (document_at(doc, p)?, k),
        None => (doc, path),
    };
    parent.get(key).and_then(number)
}

/// Append a serverStatus key the Diamond way: spaces become `_`, `-` becomes a path level
/// (`block-manager` → `block.manager`), and an empty level becomes `_` so no metric is lost
/// to an empty path component. MMAPv1's `locks` key `.` is Diamond's `_global_`.
fn push_key(out: &mut String, key: &str) {
    if key == "." {
        out.push_str("_global_");
        return;
    }
    let mut at_start = true;
    for c in key.chars() {
        let c = match c {
            ' ' => '_',
            '-' => '.',
            c => c,
        };
        if c == '.' && at_start {
            out.push('_');
        }
        at_start = c == '.';
        out.push(c);
    }
    if at_start {
        out.push('_');
    }
}

/// Append a database, collection or member name as one path level (`.` and `:` → `_`).
fn push_name(out: &mut String, name: &str) {
    if name.is_empty() {
        out.push('_');
    }
    out.extend(
        name.chars()
            .map(|c| if c == '.' || c == ':' { '_' } else { c }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::{doc, DateTime};

    fn names(b: &Batch) -> Vec<(String, f64)> {
        b.samples
            .iter()
            .map(|s| (s.name.clone(), s.value))
            .collect()
    }


    #[test]
    fn keys_follow_diamond() {
        let mut s = String::new();
        push_key(&mut s, "bytes currently in the cache");
        assert_eq!(s, "bytes_currently_in_the_cache");
        s.clear();
        push_key(&mut s, "block-manager");
        assert_eq!(s, "block.manager");
        s.clear();
        push_key(&mut s, "-x-");
        assert_eq!(s, "_.x._");
        s.clear();
        push_key(&mut s, "");
        assert_eq!(s, "_");
        s.clear();
        push_key(&mut s, ".");
        assert_eq!(s, "_global_");
        s.clear();
        push_name(&mut s, "db1.example.net:27017");
        assert_eq!(s, "db1_example_net_27017");
    }

    #[test]
    fn flatten_numbers_bools_dates_skip_the_rest() {
        let doc = doc! {
            "host": "h",
            "uptime": 12.5,
            "connections": { "current": 3_i32, "totalCreated": 40_i64 },
            "flowControl": { "enabled": true, "isLagged": false },
            "localTime": DateTime::from_millis(1_700_000_000_999),
            "list": [1, 2],
            "ok": 1.0,
        };
        let mut out = Batch::default();
        let mut p = String::new();
        flatten(&doc, &mut p, &mut out, &[]);
        assert_eq!(
            names(&out),
            [
                ("uptime".to_string(), 12.5),
                ("connections.current".into(), 3.0),
                ("connections.totalCreated".into(), 40.0),
                ("flowControl.enabled".into(), 1.0),
                ("flowControl.isLagged".into(), 0.0),
                ("localTime".into(), 1_700_000_000.0),
                ("ok".into(), 1.0),
            ]
        );
    }

    #[test]
    fn lock_percent_from_deltas_first_run_silent() {
        let mut deltas = vec![None; DELTA_PERCENTS.len()];
        let run = |lock: i64, total: i64, deltas: &mut Vec<Option<(f64, f64)>>| {
            let doc = doc! { "globalLock": { "totalTime": total, "lockTime": lock } };
            let mut out = Batch::default();
            publish_server_status(&doc, deltas, &mut out);
            out.samples
                .iter()
                .find(|s| s.name == "percent.globalLock.lockTime")
                .map(|s| s.value)
        };
        assert_eq!(run(1_000, 10_000, &mut deltas), None);
        assert_eq!(run(3_500, 20_000, &mut deltas), Some(25.0));
        // a restart (counters back to small values) publishes nothing, then resumes
        assert_eq!(run(10, 100, &mut deltas), None);
        assert_eq!(run(60, 200, &mut deltas), Some(50.0));
    }

    #[test]
    fn secrets_are_scrubbed_raw_and_decoded() {
        let s = Secrets::new(
            "mongodb://mon:p%40ss%3Aw0rd@db1:27017/?tls=true",
            Some("cfgpass"),
        );
        let msg = "auth as mon:p%40ss%3Aw0rd failed: p@ss:w0rd / cfgpass";
        let scrubbed = s.scrub(msg);
        assert!(
            !scrubbed.contains("w0rd") && !scrubbed.contains("cfgpass"),
            "{scrubbed}"
        );
        assert_eq!(uri_userinfo("mongodb://db1:27017/?x=1"), None);
        assert_eq!(uri_userinfo("mongodb://u:a@b@h/"), Some("u:a@b"));
        assert_eq!(percent_decode("a%20b%zz%4"), "a b%zz%4");
    }

    #[test]
    fn debug_print_of_the_config_shows_no_credential() {
        let cfg: MongoConfig = conf::from_str(
            std::path::Path::new("t.yml"),
            "type: mongodb\nuri: mongodb://mon:s3cr3t-uri@db1:27018/\npassword: s3cr3t-field\n",
        )
        .unwrap();
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("mongodb://[redacted]@db1:27018/"), "{shown}");
        let plain: MongoConfig =
            conf::from_str(std::path::Path::new("t.yml"), "type: mongodb\n").unwrap();
        assert!(format!("{plain:?}").contains("\"mongodb://127.0.0.1:27017\""));
    }

    #[test]
    fn options_are_completed_at_load_time() {
        let cfg: MongoConfig = conf::from_str(
            std::path::Path::new("t.yml"),
            "type: mongodb\nuri: mongodb://mon:secret@db1:27018/?tls=true\nusername: other\n",
        )
        .unwrap();
        let o = client_options(&cfg).unwrap();
        assert_eq!(o.direct_connection, Some(true));
        assert_eq!(o.connect_timeout, Some(Duration::from_secs(3)));
        assert_eq!(o.retry_reads, Some(false));
        let cred = o.credential.unwrap();
        assert_eq!(cred.username.as_deref(), Some("other"));
        assert_eq!(cred.password.as_deref(), Some("secret"));
        assert_eq!((cfg.path.clone(), KIND.default_path), (None, "mongo"));

        let cfg: MongoConfig = conf::from_str(
            std::path::Path::new("t.yml"),
            "type: mongodb\nuri: mongodb://a,b/?replicaSet=rs0&connectTimeoutMS=500\n",
        )
        .unwrap();
        let o = client_options(&cfg).unwrap();
        assert_eq!(o.direct_connection, None);
        assert_eq!(o.connect_timeout, Some(Duration::from_millis(500)));

        for bad in [
            "mongodb+srv://u:pw@cluster0.example.net/",
            "mongodb://u:pw@/x",
            "http://u:pw@h",
        ] {
            let cfg: MongoConfig = conf::from_str(
                std::path::Path::new("t.yml"),
                &format!("type: mongodb\nuri: \"{bad}\"\n"),
            )
            .unwrap();
            let err = match cfg.into_collector() {
                Err(e) => format!("{e:#}"),
                Ok(_) => panic!("{bad} accepted"),
            };
            assert!(err.starts_with("uri: "), "{err}");
            assert!(!err.contains("pw"), "{err}");
        }
    }
}
