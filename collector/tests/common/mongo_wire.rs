//! A small MongoDB wire-protocol server for tests (MongoDB itself cannot be installed on the
//! test machines). It listens on 127.0.0.1:0 and speaks OP_MSG (opcode 2013), the only
//! opcode the official Rust driver 3.x sends — its first handshake is an OP_MSG `isMaster`
//! with `helloOk: true`, then `hello` — and, for older clients, the legacy OP_QUERY
//! `isMaster` (opcode 2004, answered with OP_REPLY).
//!
//! Answers come from JSON fixtures (MongoDB extended JSON) in
//! `tests/testdata/mongodb/<version>/`: `hello`, `buildInfo`, `serverStatus`,
//! `listDatabases`, `dbStats` (by database), `collections` (collStats by database and
//! collection), `replSetGetStatus` (a status or a `NoReplicationEnabled` error). Every
//! `serverStatus` reply advances the counters in [`STEPS`], so rates can be checked against
//! exactly what was served. `saslStart` always fails (authentication is not emulated).
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use mongodb::bson::{doc, Bson, DateTime, Document};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const OP_REPLY: i32 = 1;
const OP_QUERY: i32 = 2004;
const OP_MSG: i32 = 2013;
const CHECKSUM_PRESENT: u32 = 1;
const MORE_TO_COME: u32 = 1 << 1;

/// Counters that grow by this step on every `serverStatus` reply (reply `n`, counted from
/// 0, serves the fixture's value + `n * step`), where the fixture has them.
pub const STEPS: &[(&str, i64)] = &[
    ("opcounters.insert", 100),
    ("opcounters.query", 40),
    ("opcounters.update", 20),
    ("opcounters.delete", 10),
    ("opcounters.getmore", 5),
    ("opcounters.command", 300),
    ("opcountersRepl.insert", 30),
    ("network.bytesIn", 64_000),
    ("network.bytesOut", 256_000),
    ("network.numRequests", 350),
    ("extra_info.page_faults", 7),
    ("backgroundFlushing.flushes", 1),
    // 10 s of server time per reply, of which the global lock was held 2.5 s: 25 %.
    ("globalLock.totalTime", 10_000_000),
    ("globalLock.lockTime", 2_500_000),
    ("uptimeMillis", 10_000),
    // 1000 index accesses per reply, 10 of them misses: 1 %.
    ("indexCounters.accesses", 1000),
    ("indexCounters.misses", 10),
];

/// The fixture documents of one MongoDB version.
#[derive(Debug, Clone)]
pub struct Fixture {
    pub version: String,
    docs: HashMap<String, Document>,
}

impl Fixture {
    pub fn dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/mongodb")
    }

    pub fn load(version: &str) -> Fixture {
        let dir = Self::dir().join(version);
        let mut docs = HashMap::new();
        for name in [
            "hello",
            "buildInfo",
            "serverStatus",
            "listDatabases",
            "dbStats",
            "collections",
            "replSetGetStatus",
        ] {
            let path = dir.join(format!("{name}.json"));
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let doc: Document =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            docs.insert(name.to_string(), doc);
        }
        Fixture {
            version: version.into(),
            docs,
        }
    }

    pub fn doc(&self, name: &str) -> &Document {
        &self.docs[name]
    }

    /// The `serverStatus` reply number `n` (from 0).
    pub fn server_status(&self, n: u64) -> Document {
        let mut d = self.docs["serverStatus"].clone();
        for (path, step) in STEPS {
            add_at(&mut d, path, step * n as i64);
        }
        d
    }

    /// The number at a dotted path of reply `n`, as the collector reads it.
    pub fn status_number(&self, n: u64, path: &str) -> Option<f64> {
        let d = self.server_status(n);
        let (parent, key) = match path.rsplit_once('.') {
            Some((p, k)) => (
                p.split('.')
                    .try_fold(&d, |cur, part| cur.get_document(part).ok())?,
                k,
            ),
            None => (&d, path),
        };
        match parent.get(key)? {
            Bson::Int32(i) => Some(f64::from(*i)),
            Bson::Int64(i) => Some(*i as f64),
            Bson::Double(f) => Some(*f),
            Bson::Boolean(b) => Some(f64::from(u8::from(*b))),
            _ => None,
        }
    }
}

fn add_at(d: &mut Document, path: &str, by: i64) {
    let mut parts = path.split('.').peekable();
    let mut cur = d;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            match cur.get_mut(part) {
                Some(Bson::Int64(v)) => *v += by,
                Some(Bson::Int32(v)) => *v += by as i32,
                Some(Bson::Double(v)) => *v += by as f64,
                _ => {}
            }
            return;
        }
        match cur.get_mut(part) {
            Some(Bson::Document(next)) => cur = next,
            _ => return,
        }
    }
}

/// How the server behaves.
#[derive(Debug, Clone)]
enum Mode {
    Serve(Arc<Fixture>),
    /// Accept connections and read, never answer (a hung server).
    Silent,
}

/// A running test server; stops when dropped.
pub struct MongoWire {
    pub addr: SocketAddr,
    /// `serverStatus` replies served so far.
    pub status_calls: Arc<AtomicU64>,
    /// Every command received, in order (`hello`, `serverStatus`, `dbStats shop`…).
    pub commands: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MongoWire {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MongoWire {
    /// Serve the fixtures of `version` (`4.4`, `6.0`, `7.0`, `3.x`).
    pub async fn start(version: &str) -> MongoWire {
        Self::spawn(Mode::Serve(Arc::new(Fixture::load(version)))).await
    }

    /// A server that accepts connections and never answers.
    pub async fn start_silent() -> MongoWire {
        Self::spawn(Mode::Silent).await
    }

    pub fn uri(&self) -> String {
        format!("mongodb://{}/", self.addr)
    }

    pub fn commands(&self) -> Vec<String> {
        self.commands.lock().unwrap().clone()
    }

    async fn spawn(mode: Mode) -> MongoWire {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let status_calls = Arc::new(AtomicU64::new(0));
        let commands = Arc::new(Mutex::new(Vec::new()));
        let state = Shared {
            mode,
            status_calls: status_calls.clone(),
            commands: commands.clone(),
            connections: Arc::new(AtomicU64::new(0)),
        };
        let task = tokio::spawn(async move {
            let mut open = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = state.clone();
                open.spawn(async move {
                    let _ = serve(stream, state).await;
                });
            }
        });
        MongoWire {
            addr,
            status_calls,
            commands,
            task,
        }
    }
}

#[derive(Clone)]
struct Shared {
    mode: Mode,
    status_calls: Arc<AtomicU64>,
    commands: Arc<Mutex<Vec<String>>>,
    connections: Arc<AtomicU64>,
}

async fn serve(mut stream: TcpStream, state: Shared) -> std::io::Result<()> {
    let connection_id = state.connections.fetch_add(1, Ordering::Relaxed) + 1;
    let mut next_id = 1_i32;
    loop {
        let mut header = [0u8; 16];
        stream.read_exact(&mut header).await?;
        let len = i32_at(&header, 0) as usize;
        let request_id = i32_at(&header, 4);
        let opcode = i32_at(&header, 12);
        if !(16..=48_000_000).contains(&len) {
            return Ok(());
        }
        let mut body = vec![0u8; len - 16];
        stream.read_exact(&mut body).await?;
        let Mode::Serve(fixture) = &state.mode else {
            continue; // silent: read everything, answer nothing
        };
        match opcode {
            OP_MSG => {
                let flags = u32::from_le_bytes(body[0..4].try_into().unwrap());
                let end = body.len() - if flags & CHECKSUM_PRESENT != 0 { 4 } else { 0 };
                let command = parse_sections(&body[4..end]);
                let reply = answer(&command, fixture, &state, connection_id);
                if flags & MORE_TO_COME != 0 {
                    continue;
                }
                let mut payload = vec![0, 0, 0, 0, 0]; // flags, section kind 0
                reply.to_writer(&mut payload).unwrap();
                write_message(&mut stream, &mut next_id, request_id, OP_MSG, &payload).await?;
            }
            OP_QUERY => {
                // flags, full collection name, skip, return, query
                let name_end = 4 + body[4..].iter().position(|b| *b == 0).unwrap();
                let query = Document::from_reader(&body[name_end + 9..]).unwrap_or_default();
                let reply = answer(&query, fixture, &state, connection_id);
                let mut payload = Vec::new();
                payload.extend_from_slice(&0i32.to_le_bytes()); // response flags
                payload.extend_from_slice(&0i64.to_le_bytes()); // cursor id
                payload.extend_from_slice(&0i32.to_le_bytes()); // starting from
                payload.extend_from_slice(&1i32.to_le_bytes()); // number returned
                reply.to_writer(&mut payload).unwrap();
                write_message(&mut stream, &mut next_id, request_id, OP_REPLY, &payload).await?;
            }
            _ => return Ok(()),
        }
    }
}

fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// The command document of an OP_MSG: the kind-0 body, with kind-1 document sequences
/// added as arrays.
fn parse_sections(mut b: &[u8]) -> Document {
    let mut command = Document::new();
    let mut sequences = Vec::new();
    while !b.is_empty() {
        let kind = b[0];
        b = &b[1..];
        let size = i32_at(b, 0) as usize;
        if kind == 0 {
            command = Document::from_reader(&b[..size]).unwrap_or_default();
        } else {
            let ident_end = 4 + b[4..].iter().position(|c| *c == 0).unwrap();
            let ident = String::from_utf8_lossy(&b[4..ident_end]).into_owned();
            let mut docs = Vec::new();
            let mut rest = &b[ident_end + 1..size];
            while !rest.is_empty() {
                let n = i32_at(rest, 0) as usize;
                docs.push(Bson::Document(
                    Document::from_reader(&rest[..n]).unwrap_or_default(),
                ));
                rest = &rest[n..];
            }
            sequences.push((ident, docs));
        }
        b = &b[size..];
    }
    for (ident, docs) in sequences {
        command.insert(ident, docs);
    }
    command
}

async fn write_message(
    stream: &mut TcpStream,
    next_id: &mut i32,
    response_to: i32,
    opcode: i32,
    payload: &[u8],
) -> std::io::Result<()> {
    let mut msg = Vec::with_capacity(16 + payload.len());
    msg.extend_from_slice(&((16 + payload.len()) as i32).to_le_bytes());
    msg.extend_from_slice(&next_id.to_le_bytes());
    msg.extend_from_slice(&response_to.to_le_bytes());
    msg.extend_from_slice(&opcode.to_le_bytes());
    msg.extend_from_slice(payload);
    *next_id += 1;
    stream.write_all(&msg).await
}

fn error(code: i32, name: &str, msg: &str) -> Document {
    doc! { "ok": 0.0, "errmsg": msg, "code": code, "codeName": name }
}

fn answer(command: &Document, f: &Fixture, state: &Shared, connection_id: u64) -> Document {
    let Some((name, arg)) = command.iter().next() else {
        return error(59, "CommandNotFound", "no command");
    };
    let db = command.get_str("$db").unwrap_or("admin");
    let label = match name.as_str() {
        "dbStats" | "listCollections" => format!("{name} {db}"),
        "collStats" => format!("{name} {db}.{}", arg.as_str().unwrap_or("?")),
        _ => name.clone(),
    };
    state.commands.lock().unwrap().push(label);
    match name.as_str() {
        "hello" | "isMaster" | "ismaster" => {
            let mut d = f.doc("hello").clone();
            d.insert("localTime", DateTime::now());
            d.insert("connectionId", connection_id as i64);
            if name != "hello" {
                d.insert("ismaster", true);
                d.insert("helloOk", true);
            }
            d
        }
        "buildInfo" | "buildinfo" => f.doc("buildInfo").clone(),
        "ping" | "endSessions" => doc! { "ok": 1.0 },
        "serverStatus" => {
            let n = state.status_calls.fetch_add(1, Ordering::SeqCst);
            f.server_status(n)
        }
        "listDatabases" => {
            let mut d = f.doc("listDatabases").clone();
            if command.get_bool("nameOnly").unwrap_or(false) {
                if let Ok(dbs) = d.get_array_mut("databases") {
                    for db in dbs.iter_mut() {
                        if let Bson::Document(x) = db {
                            let name = x.get("name").cloned().unwrap_or(Bson::Null);
                            *x = doc! { "name": name };
                        }
                    }
                }
            }
            d
        }
        "dbStats" => match f.doc("dbStats").get_document(db) {
            Ok(d) => d.clone(),
            Err(_) => doc! { "db": db, "collections": 0, "objects": 0, "dataSize": 0.0, "ok": 1.0 },
        },
        "listCollections" => {
            let batch: Vec<Bson> = f
                .doc("collections")
                .get_document(db)
                .map(|colls| {
                    colls
                        .keys()
                        .map(|c| Bson::Document(doc! { "name": c, "type": "collection" }))
                        .collect()
                })
                .unwrap_or_default();
            doc! {
                "cursor": { "id": 0_i64, "ns": format!("{db}.$cmd.listCollections"), "firstBatch": batch },
                "ok": 1.0,
            }
        }
        "collStats" => {
            let coll = arg.as_str().unwrap_or_default();
            match f
                .doc("collections")
                .get_document(db)
                .and_then(|d| d.get_document(coll))
            {
                Ok(d) => d.clone(),
                Err(_) => error(26, "NamespaceNotFound", "ns not found"),
            }
        }
        "replSetGetStatus" => f.doc("replSetGetStatus").clone(),
        "saslStart" | "saslContinue" | "authenticate" => {
            error(18, "AuthenticationFailed", "Authentication failed.")
        }
        other => error(
            59,
            "CommandNotFound",
            &format!("no such command: '{other}'"),
        ),
    }
}
