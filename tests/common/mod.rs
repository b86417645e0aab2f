//! Helpers shared by the end-to-end tests: run `carbide` in a directory, find the ports it
//! chose, talk HTTP/1.1 and carbon plaintext to it. Real processes, real sockets.
#![allow(dead_code)]

pub mod conformance;
pub mod docs;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const CARBIDE: &str = env!("CARGO_BIN_EXE_carbide");

/// `carbide up` on free loopback ports with its store in `./data` and no UDP listener: the
/// flags every `up` test starts from (append the rest).
pub const UP: &[&str] = &[
    "up",
    "--data-dir",
    "data",
    "--carbon-tcp",
    "127.0.0.1:0",
    "--carbon-udp",
    "off",
    "--http-listen",
    "127.0.0.1:0",
];

/// [`UP`] followed by `extra`.
pub fn up_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    UP.iter().copied().chain(extra.iter().copied()).collect()
}

/// The agent files of a `carbide up` test in `d`: `collectors.d/host.yml` (every second) and a
/// `collector.yml` naming the host `uphost`.
pub fn up_host_agent(d: &Path) {
    host_agent_named(d, "uphost");
}

/// [`up_host_agent`] with the host named `host`.
pub fn host_agent_named(d: &Path, host: &str) {
    std::fs::create_dir_all(d.join("collectors.d")).unwrap();
    std::fs::write(
        d.join("collectors.d/host.yml"),
        "type: host\ninterval: 1s\n",
    )
    .unwrap();
    std::fs::write(
        d.join("collector.yml"),
        format!("hostname_method: fixed\nhostname: {host}\n"),
    )
    .unwrap();
}

/// A running `carbide` child and the addresses it printed.
pub struct Carbide {
    pub child: Child,
    pub carbon: SocketAddr,
    pub http: SocketAddr,
}

impl Carbide {
    /// Start `carbide <args>` in `dir` and wait for its address line.
    pub fn start(dir: &Path, args: &[&str]) -> Carbide {
        Self::start_env(dir, args, &[])
    }

    pub fn start_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Carbide {
        Self::start_with(dir, args, env, None)
    }

    /// Start `carbide <args>` under an address-space cap (`RLIMIT_AS`, bytes): an allocation
    /// beyond it fails (and aborts the process) instead of swapping the machine.
    pub fn start_capped(dir: &Path, args: &[&str], address_space: u64) -> Carbide {
        Self::start_with(dir, args, &[], Some((libc::RLIMIT_AS, address_space)))
    }

    /// Start `carbide <args>` with the soft limit of open files lowered to `soft` (the hard
    /// limit kept).
    pub fn start_with_open_files(dir: &Path, args: &[&str], soft: u64) -> Carbide {
        Self::start_with(dir, args, &[], Some((libc::RLIMIT_NOFILE, soft)))
    }

    fn start_with(
        dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        limit: Option<(libc::__rlimit_resource_t, u64)>,
    ) -> Carbide {
        let mut cmd = Command::new(CARBIDE);
        if let Some((resource, cap)) = limit {
            use std::os::unix::process::CommandExt;
            // SAFETY: getrlimit/setrlimit are async-signal-safe; nothing else runs between
            // fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    let mut l = libc::rlimit {
                        rlim_cur: 0,
                        rlim_max: 0,
                    };
                    if libc::getrlimit(resource, &mut l) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    // The address space is capped hard; open files only softly (the process
                    // may raise them back to the hard limit).
                    l.rlim_cur = cap.min(l.rlim_max);
                    if resource == libc::RLIMIT_AS {
                        l.rlim_max = l.rlim_cur;
                    }
                    if libc::setrlimit(resource, &l) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        cmd.args(args)
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.join("carbide.log"))
                    .unwrap(),
            ));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert!(
            line.starts_with("carbide: carbon tcp"),
            "carbide did not start: {line:?}\n{}",
            std::fs::read_to_string(dir.join("carbide.log")).unwrap_or_default()
        );
        // "carbide: carbon tcp A udp B, http http://H, data D"
        let words: Vec<&str> = line.split_whitespace().collect();
        let carbon = words[3].parse().unwrap();
        let http = words[7]
            .trim_start_matches("http://")
            .trim_end_matches(',')
            .parse()
            .unwrap();
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = out.read_to_end(&mut sink);
        });
        Carbide {
            child,
            carbon,
            http,
        }
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(self.child.id() as i32, sig) };
        assert_eq!(rc, 0);
    }

    /// SIGTERM and wait; returns whether it exited with status 0.
    pub fn stop(mut self) -> bool {
        self.signal(libc::SIGTERM);
        self.child.wait().unwrap().success()
    }

    /// SIGTERM and wait at most `limit`; the exit status, or `None` if it was still running
    /// (then it is killed on drop).
    pub fn stop_within(mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        self.signal(libc::SIGTERM);
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// SIGKILL and reap.
    pub fn kill9(mut self) {
        self.signal(libc::SIGKILL);
        let _ = self.child.wait();
    }

    pub fn get(&self, path_and_query: &str) -> (u16, String) {
        http(self.http, "GET", path_and_query, &[], None)
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// A line of `/proc/PID/status` in kB (`VmRSS`, `VmPeak`, `VmHWM`).
    pub fn status_kb(&self, key: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    /// The last value of a self-metric (`carbide.store.bad_lines.too_long`), if reported.
    pub fn metric(&self, name: &str) -> Option<f64> {
        let (st, body) = self.get(&format!(
            "/render?target={}&from=-10min&format=json",
            enc(name)
        ));
        if st != 200 {
            return None;
        }
        series(&body)
            .into_iter()
            .flat_map(|(_, pts)| pts)
            .filter_map(|(v, _)| v)
            .next_back()
    }
}

impl Drop for Carbide {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One HTTP/1.1 request with `Connection: close`; returns status and body.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, &[u8])>,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req =
        format!("{method} {path_and_query} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some((ct, b)) = body {
        req.push_str(&format!(
            "Content-Type: {ct}\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    if let Some((_, b)) = body {
        // The server may answer (413) before reading everything.
        let _ = s.write_all(b);
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    (status, body)
}

/// A GET whose body is bytes (pictures): status, `Content-Type`, body.
pub fn get_bytes(addr: SocketAddr, path_and_query: &str) -> (u16, String, Vec<u8>) {
    request_bytes(addr, "GET", path_and_query, &[], None)
}

/// One HTTP/1.1 request with `Connection: close` whose bodies are bytes (a body is sent with
/// its `Content-Length` only, as Go's client sends carbonapi's protobuf bodies): status,
/// `Content-Type`, body.
pub fn request_bytes(
    addr: SocketAddr,
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req =
        format!("{method} {path_and_query} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    if let Some(b) = body {
        // The server may answer (413) before reading everything.
        let _ = s.write_all(b);
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let body = raw.get(split + 4..).unwrap_or_default().to_vec();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let content_type = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    (status, content_type, body)
}

/// A cluster node as docs/cluster.md configures one (its `node` block), on free loopback
/// ports, with more flags.
pub fn node(dir: &Path, extra: &[&str]) -> Carbide {
    std::fs::create_dir_all(dir).unwrap();
    let node = docs::with(
        &docs::block("cluster.md", "node"),
        &[
            ("10.0.0.1:2003", "127.0.0.1:0"),
            ("10.0.0.1:8080", "127.0.0.1:0"),
            ("/var/lib/carbide", "data"),
        ],
    );
    std::fs::write(dir.join("node.yml"), node).unwrap();
    let mut args = vec!["serve", "--config", "node.yml"];
    args.extend_from_slice(extra);
    Carbide::start(dir, &args)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Percent-encode a query value (everything but unreserved characters).
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Send carbon plaintext lines over one TCP connection and close it.
pub fn send_lines(addr: SocketAddr, text: &str) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(text.as_bytes()).unwrap();
    s.flush().unwrap();
}

/// Poll `cond` every 100 ms until it is true or `limit` passes (a safety net, not a timing
/// assertion: the tests assert what the condition sees).
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    cond()
}

/// One rendered series: target and `(value, timestamp)` points.
pub type Rendered = (String, Vec<(Option<f64>, i64)>);

/// `format=json` body → `(target, [(value, ts)])`.
pub fn series(body: &str) -> Vec<Rendered> {
    let v: serde_json::Value = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", &body[..body.len().min(300)]));
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let pts = s["datapoints"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p[0].as_f64(), p[1].as_i64().unwrap()))
                .collect();
            (s["target"].as_str().unwrap_or("").to_string(), pts)
        })
        .collect()
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A small tmpfs mounted for one test (we run as root, CI too): a disk that really fills up.
/// `fill` takes every free byte with a file, `free` removes it; unmounted on drop.
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mount a tmpfs of `size` (`mount -o size=…`, e.g. `16m`).
    pub fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount(8)");
        assert!(
            st.success(),
            "mount -t tmpfs failed: these tests need root (a real full disk)"
        );
        Tmpfs { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Write a filler file until the disk is full; returns its size.
    pub fn fill(&self) -> u64 {
        let mut f = std::fs::File::create(self.path().join("filler")).unwrap();
        let mut n = 0u64;
        for chunk in [1 << 20, 4096, 1] {
            let buf = vec![0u8; chunk];
            while f.write_all(&buf).is_ok() {
                n += chunk as u64;
            }
        }
        let _ = f.sync_all();
        n
    }

    /// Remove the filler file.
    pub fn free(&self) {
        std::fs::remove_file(self.path().join("filler")).unwrap();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// RGBA pixels of a PNG: (width, height, pixels).
pub fn decode_png(bytes: &[u8]) -> (u32, u32, Vec<[u8; 4]>) {
    let mut d = png::Decoder::new(bytes);
    d.set_transformations(png::Transformations::EXPAND | png::Transformations::ALPHA);
    let mut r = d.read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size()];
    let info = r.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    let px = buf.chunks(4).map(|p| [p[0], p[1], p[2], p[3]]).collect();
    (info.width, info.height, px)
}

/// A real SMTP server (`alerter/tests/smtp_server.py`, python3-aiosmtpd) on 127.0.0.1,
/// plain, no auth; stops on drop.
pub struct Smtp {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

/// One leaf MIME part of a received message, as Python's email package parsed it.
#[derive(Debug, Clone)]
pub struct MailPart {
    pub content_type: String,
    /// `Content-ID` (with its angle brackets), or `-`.
    pub content_id: String,
    /// The content types of the multiparts around it, outermost first, joined by `>`.
    pub parents: String,
    pub body: Vec<u8>,
}

impl Smtp {
    pub fn start() -> Smtp {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("alerter/tests/smtp_server.py");
        let mut child = Command::new("/usr/bin/python3")
            .arg(script)
            .arg(port.to_string())
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "READY", "the SMTP server did not start");
        Smtp { child, port, dir }
    }

    /// The leaf parts of every message received so far, in arrival order.
    pub fn messages(&self) -> Vec<Vec<MailPart>> {
        let mut names: Vec<std::path::PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|eml| {
                let parts = std::fs::read_to_string(eml.with_extension("parts")).unwrap();
                parts
                    .lines()
                    .map(|l| {
                        let f: Vec<&str> = l.split(' ').collect();
                        MailPart {
                            content_type: f[1].to_string(),
                            content_id: f[2].to_string(),
                            parents: f[3].to_string(),
                            body: std::fs::read(eml.with_extension(format!("part{}", f[0])))
                                .unwrap(),
                        }
                    })
                    .collect()
            })
            .collect()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        drop(self.child.stdin.take()); // the server stops when stdin closes
        let _ = self.child.wait();
    }
}

/// Checks an email carries the alert's graph as the issue asks: its text as a plain part,
/// and an HTML part inside `multipart/related` whose `<img src="cid:…">` names the PNG part
/// beside it; returns the decoded picture (width, height, pixels).
pub fn graph_of_email(parts: &[MailPart]) -> (u32, u32, Vec<[u8; 4]>) {
    let find = |t: &str| {
        parts
            .iter()
            .find(|p| p.content_type == t)
            .unwrap_or_else(|| panic!("no {t} part in {parts:?}"))
    };
    let text = find("text/plain");
    assert!(
        text.parents.starts_with("multipart/alternative"),
        "{text:?}"
    );
    let html = find("text/html");
    let png = find("image/png");
    assert_eq!(html.parents, "multipart/alternative>multipart/related");
    assert_eq!(png.parents, html.parents);
    let cid = png.content_id.trim_matches(|c| c == '<' || c == '>');
    let page = String::from_utf8_lossy(&html.body);
    assert!(page.contains(&format!("src=\"cid:{cid}\"")), "{page}");
    decode_png(&png.body)
}

/// Whether `px` holds a pixel of `rgb` (exactly, opaque).
pub fn has_colour(px: &[[u8; 4]], rgb: [u8; 3]) -> bool {
    px.iter().any(|p| p[..3] == rgb && p[3] == 255)
}
