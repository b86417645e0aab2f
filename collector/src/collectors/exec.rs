//! Any command's output as metrics (`type: exec`): Diamond's UserScriptsCollector and
//! Telegraf's `inputs.exec`. The command runs once per interval, without a shell unless
//! `shell: true`; each line of its standard output is `name value` or Graphite plaintext
//! `name value timestamp` (the timestamp is ignored: every metric of a run gets the run's
//! timestamp), published under the instance's path.
//!
//! The command runs in its own process group; when the run's deadline cancels it, the whole
//! group is killed (a shell's children too), so a hung script never outlives its run. Output
//! is read asynchronously and bounded, so it cannot stall the agent's other collectors or
//! grow its memory. A non-zero exit is a failed run (what it printed before is kept); lines
//! that are not metrics are counted in the instance's `dropped` self-metric and logged.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;

use anyhow::Context;
use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::{Batch, Collector, CollectorConfig, Kind};

pub const KIND: Kind = Kind {
    name: "exec",
    default_path: "exec",
    sample: include_str!("exec.sample.yml"),
    build: super::build::<ExecConfig>,
    circuit_breaker: true,
};

/// The most standard output read from one run; more is a failed run (the metrics before the
/// cut are kept).
const MAX_STDOUT: u64 = 4 << 20;
/// The most standard error kept for the failure message (its last line is shown).
const MAX_STDERR: u64 = 64 << 10;

crate::collector_config! {
    /// Options of the exec collector.
    pub struct ExecConfig {
        /// The program and its arguments, e.g. `[/usr/local/bin/queue-depth, --all]`; no
        /// shell is involved. With `shell: true`, a single string run by `/bin/sh -c`.
        pub command: Command,
        /// Run `command` through `/bin/sh -c` (pipes, globs, variables). Off by default.
        #[serde(default)]
        pub shell: bool,
        /// Extra environment variables for the command (the agent's environment is kept).
        #[serde(default)]
        pub env: BTreeMap<String, String>,
        /// Working directory of the command; the agent's when unset.
        #[serde(default)]
        pub cwd: Option<PathBuf>,
    }
}

/// `command:` as a list (argv) or one string (split on whitespace, or given to the shell).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(untagged)]
pub enum Command {
    Argv(Vec<String>),
    Line(String),
}

impl CollectorConfig for ExecConfig {
    fn into_collector(self) -> anyhow::Result<Box<dyn Collector>> {
        let argv = match (self.command, self.shell) {
            (Command::Line(line), true) => {
                vec!["/bin/sh".to_string(), "-c".to_string(), line]
            }
            (Command::Argv(_), true) => anyhow::bail!(
                "command: with `shell: true`, give the command as one string (it is run by /bin/sh -c)"
            ),
            (Command::Argv(argv), false) => argv,
            (Command::Line(line), false) => {
                line.split_whitespace().map(str::to_string).collect()
            }
        };
        if argv.first().is_none_or(|p| p.is_empty()) {
            anyhow::bail!("command: empty; give the program to run (and its arguments)");
        }
        if let Some(dir) = &self.cwd {
            if !dir.is_dir() {
                anyhow::bail!("cwd: {} is not a directory", dir.display());
            }
        }
        Ok(Box::new(Exec {
            argv,
            env: self.env,
            cwd: self.cwd,
        }))
    }
}

pub struct Exec {
    argv: Vec<String>,
    env: BTreeMap<String, String>,
    cwd: Option<PathBuf>,
}

/// Kills the command's whole process group when the run ends, however it ends (finished,
/// failed, or cancelled at its deadline, when this guard is dropped with the run's future).
struct GroupGuard {
    child: tokio::process::Child,
    pgid: Option<i32>,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid {
            // SAFETY: signalling the process group this run created (setpgid at spawn).
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
        // Reaped in the background by tokio (kill_on_drop), so no zombie stays behind.
        let _ = self.child.start_kill();
    }
}

#[async_trait]
impl Collector for Exec {
    async fn collect(&mut self, out: &mut Batch) -> anyhow::Result<()> {
        let program = &self.argv[0];
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(&self.argv[1..])
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot run {program:?}"))?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let pgid = child.id().and_then(|id| i32::try_from(id).ok());
        let mut guard = GroupGuard { child, pgid };
        let (stdout, stderr) = tokio::join!(
            read_bounded(stdout, MAX_STDOUT),
            read_bounded(stderr, MAX_STDERR)
        );
        let (stdout, truncated) =
            stdout.with_context(|| format!("{program}: reading its output"))?;
        let status = guard
            .child
            .wait()
            .await
            .with_context(|| format!("{program}: waiting for it to exit"))?;
        // The command is done; its group may not be (a daemonised child): the guard kills it.
        parse_output(&stdout, out);
        if truncated {
            anyhow::bail!(
                "{program}: more than {MAX_STDOUT} bytes of output; the rest was not read"
            );
        }
        if !status.success() {
            let stderr = stderr.map(|(s, _)| s).unwrap_or_default();
            let last = String::from_utf8_lossy(&stderr);
            let last = last
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            let last: String = last.chars().take(300).collect();
            let how = match status.code() {
                Some(code) => format!("exited with status {code}"),
                None => "was killed by a signal".to_string(),
            };
            if last.is_empty() {
                anyhow::bail!("{program} {how}");
            }
            anyhow::bail!("{program} {how}: {last}");
        }
        Ok(())
    }
}

/// Everything from `r` up to `max` bytes; true when there was more (not read).
async fn read_bounded<R: AsyncRead + Unpin>(
    r: Option<R>,
    max: u64,
) -> std::io::Result<(Vec<u8>, bool)> {
    let Some(r) = r else {
        return Ok((Vec::new(), false));
    };
    let mut buf = Vec::new();
    let n = r.take(max + 1).read_to_end(&mut buf).await?;
    let truncated = n as u64 > max;
    buf.truncate(max as usize);
    Ok((buf, truncated))
}

/// `name value [timestamp]` lines into gauges; anything else is rejected (counted, and the
/// first one given as the example). Blank lines and `#` comments are skipped.
pub fn parse_output(text: &[u8], out: &mut Batch) {
    for (i, line) in text.split(|&b| b == b'\n').enumerate() {
        let line = String::from_utf8_lossy(line);
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_line(line) {
            Ok((name, value)) => out.gauge(name, value),
            Err(why) => {
                let shown: String = line.chars().take(120).collect();
                out.reject(format!("line {}: {why}: {shown:?}", i + 1));
            }
        }
    }
}

fn parse_line(line: &str) -> Result<(&str, f64), &'static str> {
    let mut fields = line.split_ascii_whitespace();
    let (Some(name), Some(value)) = (fields.next(), fields.next()) else {
        return Err("expected `name value` or `name value timestamp`");
    };
    if let Some(ts) = fields.next() {
        if ts.parse::<f64>().is_err() {
            return Err("the third field is not a timestamp");
        }
    }
    if fields.next().is_some() {
        return Err("more than three fields");
    }
    let value: f64 = value.parse().map_err(|_| "the value is not a number")?;
    if !value.is_finite() {
        return Err("the value is not finite");
    }
    Ok((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;


    #[test]
    fn parses_name_value_and_plaintext_lines() {
        let mut b = Batch::default();
        parse_output(
            b"queue.depth 12\n# comment\n\nqueue.age 1.5 1700000000\r\nnot-a-metric\nx abc\ny 1 2 3\nz inf\nw 3 x\n",
            &mut b,
        );
        let got: Vec<_> = b
            .samples
            .iter()
            .map(|s| (s.name.as_str(), s.value))
            .collect();
        assert_eq!(got, [("queue.depth", 12.0), ("queue.age", 1.5)]);
        assert_eq!(b.rejected, 5);
        let example = b.rejected_example.unwrap();
        assert!(example.starts_with("line 5: expected"), "{example}");
    }

    #[test]
    fn config_errors() {
        let cases = [
            ("type: exec\n", "missing field `command`"),
            ("type: exec\ncommand: []\n", "command: empty"),
            (
                "type: exec\ncommand: [sh, -c, x]\nshell: true\n",
                "one string",
            ),
            (
                "type: exec\ncommand: x\ncwd: /nonexistent-dir\n",
                "not a directory",
            ),
            ("type: exec\ncommand: x\nshel: true\n", "unknown key"),
        ];
        for (text, want) in cases {
            let e = KIND.load(text).err().unwrap().to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
        KIND.load("type: exec\ncommand: echo a 1\n").unwrap();
        KIND.load("type: exec\ncommand: echo a 1 | cat\nshell: true\n").unwrap();
    }



    #[tokio::test]
    async fn runs_argv_and_shell_commands() {
        let mut c = KIND.load("type: exec\ncommand: [printf, 'a 1\\nb 2\\nbad\\n']\n")
            .unwrap()
            .collector;
        let mut b = Batch::default();
        c.collect(&mut b).await.unwrap();
        assert_eq!(b.samples.len(), 2);
        assert_eq!(b.rejected, 1);

        let mut c =
            KIND.load("type: exec\ncommand: 'echo x $((40+2)); echo oops >&2; exit 3'\nshell: true\n")
                .unwrap()
                .collector;
        let mut b = Batch::default();
        let e = c.collect(&mut b).await.unwrap_err().to_string();
        assert_eq!(e, "/bin/sh exited with status 3: oops");
        assert_eq!(b.samples[0].name, "x");
        assert_eq!(b.samples[0].value, 42.0);

        let mut c = KIND.load("type: exec\ncommand: [/nonexistent/prog]\n")
            .unwrap()
            .collector;
        let e = format!("{:#}", c.collect(&mut b).await.unwrap_err());
        assert!(e.starts_with("cannot run \"/nonexistent/prog\""), "{e}");
    }
}
