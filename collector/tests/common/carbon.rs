//! A real carbon-cache (Debian's `graphite-carbon`) for tests: foreground process, every
//! file in a temporary directory, line receiver on a free 127.0.0.1 port, schema `1s:1h`.
//! [`Carbon::fetch`] reads points back with `whisper-fetch --json`. Killed on drop.
//!
//! ```ignore
//! let carbon = Carbon::start();
//! // send "a.b 1 <now>\n" to carbon.addr() ...
//! let points = carbon.fetch_until("a.b", |p| p.iter().any(|(_, v)| v.is_some()));
//! ```

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::free_port;

pub struct Carbon {
    child: Child,
    /// Line receiver port on 127.0.0.1.
    pub port: u16,
    dir: tempfile::TempDir,
}

/// How long to wait for carbon to listen, or for a metric to appear.
pub const WAIT: Duration = Duration::from_secs(30);

impl Carbon {
    /// Start carbon-cache and wait until its line receiver accepts connections.
    pub fn start() -> Carbon {
        Self::start_with_schema("1s:1h")
    }

    /// Start with another retention (`10s:1d`, ...).
    pub fn start_with_schema(retentions: &str) -> Carbon {
        let dir = tempfile::tempdir().expect("tempdir for carbon");
        let d = dir.path();
        for sub in ["storage/whisper", "log", "lists"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        let (line, pickle, query) = (free_port(), free_port(), free_port());
        let conf = format!(
            "[cache]\n\
             STORAGE_DIR = {d}/storage/\n\
             LOCAL_DATA_DIR = {d}/storage/whisper/\n\
             WHITELISTS_DIR = {d}/lists/\n\
             CONF_DIR = {d}/\n\
             LOG_DIR = {d}/log/\n\
             PID_DIR = {d}/\n\
             ENABLE_LOGROTATION = False\n\
             USER =\n\
             DATABASE = whisper\n\
             MAX_CACHE_SIZE = inf\n\
             MAX_UPDATES_PER_SECOND = inf\n\
             MAX_CREATES_PER_MINUTE = inf\n\
             LINE_RECEIVER_INTERFACE = 127.0.0.1\n\
             LINE_RECEIVER_PORT = {line}\n\
             ENABLE_UDP_LISTENER = False\n\
             PICKLE_RECEIVER_INTERFACE = 127.0.0.1\n\
             PICKLE_RECEIVER_PORT = {pickle}\n\
             CACHE_QUERY_INTERFACE = 127.0.0.1\n\
             CACHE_QUERY_PORT = {query}\n\
             ENABLE_TAGS = False\n\
             LOG_LISTENER_CONNECTIONS = False\n\
             CACHE_WRITE_STRATEGY = sorted\n\
             WHISPER_AUTOFLUSH = True\n\
             WHISPER_FALLOCATE_CREATE = False\n",
            d = d.display()
        );
        std::fs::write(d.join("carbon.conf"), conf).unwrap();
        std::fs::write(
            d.join("storage-schemas.conf"),
            format!("[all]\npattern = .*\nretentions = {retentions}\n"),
        )
        .unwrap();
        let child = spawn(d);
        let mut carbon = Carbon {
            child,
            port: line,
            dir,
        };
        carbon.wait_listening();
        carbon
    }

    fn wait_listening(&mut self) {
        let end = Instant::now() + WAIT;
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "carbon-cache exited ({status}) before listening:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < end,
                "carbon-cache not listening on 127.0.0.1:{} after {WAIT:?}:\n{}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Send a signal to the carbon-cache process (`SIGSTOP`: it stops reading; `SIGCONT`).
    pub fn signal(&self, sig: i32) {
        // SAFETY: a signal to our own child process.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, sig) }, 0);
    }

    /// Stop carbon the way an operator does (SIGTERM: it closes its connections, unread data
    /// or not, and writes its cache to whisper), then start it again on the same port and
    /// storage.
    pub fn restart(&mut self) {
        self.signal(libc::SIGCONT);
        self.signal(libc::SIGTERM);
        let end = Instant::now() + WAIT;
        while self.child.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < end,
                "carbon-cache did not stop:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_file(self.dir.path().join("carbon.pid"));
        self.child = spawn(self.dir.path());
        self.wait_listening();
    }

    /// `127.0.0.1:<port>` of the line receiver.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The temporary directory holding config, logs and storage.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// carbon's console output so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log/console.log")).unwrap_or_default()
    }

    /// Where carbon stores `metric` (`a.b.c` → `storage/whisper/a/b/c.wsp`).
    pub fn wsp_path(&self, metric: &str) -> PathBuf {
        let mut p = self.dir.path().join("storage/whisper");
        for part in metric.split('.') {
            p.push(part);
        }
        p.set_extension("wsp");
        p
    }

    /// Points of `metric` over the last hour as `(timestamp, value)`, once carbon has written
    /// at least one non-null point (polls up to [`WAIT`]).
    pub fn fetch(&self, metric: &str) -> Vec<(i64, Option<f64>)> {
        self.fetch_until(metric, |p| p.iter().any(|(_, v)| v.is_some()))
    }

    /// Poll `whisper-fetch` until `done(points)` holds (up to [`WAIT`]); return the points.
    pub fn fetch_until(
        &self,
        metric: &str,
        done: impl Fn(&[(i64, Option<f64>)]) -> bool,
    ) -> Vec<(i64, Option<f64>)> {
        let path = self.wsp_path(metric);
        let end = Instant::now() + WAIT;
        loop {
            let points = if path.exists() {
                whisper_fetch(&path)
            } else {
                Vec::new()
            };
            if done(&points) {
                return points;
            }
            assert!(
                Instant::now() < end,
                "metric {metric} not as expected in {} after {WAIT:?} (points: {:?})\ncarbon log:\n{}",
                path.display(),
                points.iter().filter(|(_, v)| v.is_some()).collect::<Vec<_>>(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Start carbon-cache in the foreground with the configuration written in `d`.
fn spawn(d: &Path) -> Child {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(d.join("log/console.log"))
        .unwrap();
    Command::new("/usr/bin/carbon-cache")
        .arg("--nodaemon")
        .arg(format!("--config={}", d.join("carbon.conf").display()))
        .arg(format!("--pidfile={}", d.join("carbon.pid").display()))
        .arg(format!("--logdir={}", d.join("log").display()))
        .arg("start")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("starting /usr/bin/carbon-cache (apt-get install graphite-carbon)")
}

/// `whisper-fetch --json` over the last hour of one file.
pub fn whisper_fetch(path: &Path) -> Vec<(i64, Option<f64>)> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let out = Command::new("/usr/bin/whisper-fetch")
        .arg("--json")
        .arg(format!("--from={}", now - 3599))
        .arg(format!("--until={}", now + 1))
        .arg(path)
        .output()
        .expect("running whisper-fetch (apt-get install python3-whisper)");
    if !out.status.success() {
        // Carbon may be creating the file right now; the caller polls again.
        return Vec::new();
    }
    let v: serde_json::Value = match serde_json::from_slice(&out.stdout) {
        Ok(v) => v,
        Err(_) => return Vec::new(),
    };
    let start = v["start"].as_i64().unwrap_or(0);
    let step = v["step"].as_i64().unwrap_or(1);
    v["values"]
        .as_array()
        .map(|vals| {
            vals.iter()
                .enumerate()
                .map(|(i, x)| (start + i as i64 * step, x.as_f64()))
                .collect()
        })
        .unwrap_or_default()
}

impl Drop for Carbon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
