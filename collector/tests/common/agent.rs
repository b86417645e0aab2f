//! The real `collector` binary as a child process: a temporary config directory, stderr
//! captured into a shared log, signals, and the numbers the agent logs.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_collector");

/// Write `text` to `dir/name`, creating parent directories.
pub fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, text).unwrap();
}

/// A running agent. Killed (SIGKILL) on drop if still running.
pub struct Agent {
    child: Child,
    log: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Agent {
    /// Start the binary in `dir` (which holds `collector.yml` and `collectors.d/`) with a
    /// debug log for the runtime's events.
    pub fn start(dir: &Path) -> Agent {
        Agent::start_under(dir, &[])
    }

    /// [`Agent::start`] with the binary run by `wrapper` (e.g. `["strace", "-f", …]`); no
    /// wrapper runs it directly.
    pub fn start_under(dir: &Path, wrapper: &[&str]) -> Agent {
        // The agent spools into the test's directory, never the user's or the system's
        // default spool (as root `/var/lib/carbide/spool`, one directory per test's port).
        let global = std::fs::read_to_string(dir.join("collector.yml")).unwrap_or_default();
        assert!(
            global.contains("spool_dir:"),
            "{}/collector.yml sets no sender.spool_dir",
            dir.display()
        );
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        let mut child = cmd
            .args(["--log-level", "info,collector::events=debug"])
            .current_dir(dir)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let l = log.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                l.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Agent {
            child,
            log,
            reader: Some(reader),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The log so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: sending a signal to our own child process.
        let rc = unsafe { libc::kill(self.child.id() as i32, sig) };
        assert_eq!(rc, 0, "kill({sig}) failed");
    }

    /// Wait (bounded) for the process to exit; returns its status and complete log.
    pub fn wait(mut self, limit: Duration) -> (ExitStatus, String) {
        let end = Instant::now() + limit;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                Instant::now() < end,
                "agent did not exit within {limit:?}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        if let Some(r) = self.reader.take() {
            r.join().unwrap();
        }
        (status, self.log())
    }

    /// SIGTERM, then wait; asserts exit code 0 and returns `lines_submitted` from the
    /// `collector stopped` log line, with the log.
    pub fn stop(self, limit: Duration) -> (u64, String) {
        self.signal(libc::SIGTERM);
        let (status, log) = self.wait(limit);
        assert_eq!(status.code(), Some(0), "agent exit status; log:\n{log}");
        let n = stopped_lines_submitted(&log)
            .unwrap_or_else(|| panic!("no `collector stopped lines_submitted=` in log:\n{log}"));
        (n, log)
    }

    /// SIGKILL, then wait.
    pub fn kill9(self, limit: Duration) -> String {
        self.signal(libc::SIGKILL);
        self.wait(limit).1
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `N` from the log line `collector stopped lines_submitted=N`.
pub fn stopped_lines_submitted(log: &str) -> Option<u64> {
    log.lines()
        .filter(|l| l.contains("collector stopped"))
        .find_map(|l| field(l, "lines_submitted"))
}

/// Lines the runtime handed to the sender, summed from its debug events
/// (`submitted lines collector=... lines=N`), and how many of those events came from
/// `collector` (`None`: all).
pub fn submitted_events(log: &str, collector: Option<&str>) -> (u64, usize) {
    let mut lines = 0;
    let mut events = 0;
    for l in log.lines().filter(|l| l.contains("submitted lines")) {
        if let Some(c) = collector {
            if !l.contains(&format!("collector=\"{c}\"")) && !l.contains(&format!("collector={c} "))
            {
                continue;
            }
        }
        if let Some(n) = field(l, "lines") {
            lines += n;
            events += 1;
        }
    }
    (lines, events)
}

fn field(line: &str, key: &str) -> Option<u64> {
    let pat = format!(" {key}=");
    let at = line.find(&pat)? + pat.len();
    let digits: String = line[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The spool directory of destination `dest` under `spool_dir`.
pub fn spool_dest_dir(spool_dir: &Path, dest: &str) -> PathBuf {
    spool_dir.join(collector::sender::config::spool_subdir(dest))
}

/// Bytes in the `*.seg` files of a destination's spool directory.
pub fn spool_segment_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "seg"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}
