//! `carbide serve` / `carbide up` configuration end to end, with the real binary: one style of
//! error (`file:line:column: message`, one per line) for the serve file, the collector's files
//! and alerts.yml together, exit 2 for every configuration error, and `${ENV}` substitution.

mod common;

use std::path::Path;
use std::process::Command;

use common::Carbide;

fn carbide(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let out = Command::new(common::CARBIDE)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(dir: &Path, name: &str, text: &str) {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

#[test]
fn serve_file_errors_have_positions_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases: &[(&str, &str)] = &[
        (
            "data_dir: d\nhttp_lisen: 127.0.0.1:0\n",
            "serve.yml:2:1: unknown key \"http_lisen\": did you mean \"http_listen\"?",
        ),
        (
            "limits:\n  render_timeout: 10\n",
            "serve.yml:2:19: limits.render_timeout: invalid value: string \"10\", expected a duration: a bare number has no unit; did you mean `10s`?",
        ),
        (
            "carbon_udp: 2003\n",
            "serve.yml:1:13: carbon_udp: \"2003\": invalid socket address syntax",
        ),
        (
            "limits:\n  max_targets: 5\n  render_timeout: 0s\n",
            "serve.yml:3:19: limits.render_timeout must be more than zero",
        ),
        (
            "auth:\n  user: grafana\n",
            "serve.yml:2:9: HTTP basic auth: a user is set but no password",
        ),
        (
            "auth:\n  user: grafana\n  password: ${CARBIDE_TEST_UNSET_PASSWORD}\n",
            "serve.yml:3:13: auth.password: environment variable CARBIDE_TEST_UNSET_PASSWORD is not set",
        ),
    ];
    for (text, want) in cases {
        write(d, "serve.yml", text);
        let (code, err) = carbide(d, &["serve", "--config", "serve.yml"], &[]);
        assert_eq!(code, Some(2), "{text}: {err}");
        assert!(err.starts_with(want), "{text}:\nwant {want}\ngot  {err}");
        assert!(
            err.contains("carbide: 1 configuration error(s); nothing was started"),
            "{err}"
        );
        assert!(!d.join("data").exists(), "the store was opened");
    }
}

/// Secrets and addresses come from the environment; `null` disables a listener as `off` does.
#[test]
fn serve_file_takes_env_and_null_listeners() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "serve.yml",
        "carbon_tcp: ${CARBIDE_TEST_CARBON:-127.0.0.1:0}\ncarbon_udp: null\nhttp_listen: ${CARBIDE_TEST_HTTP}\n\
         data_dir: data\nauth:\n  user: grafana\n  password: ${CARBIDE_TEST_PASSWORD}\n",
    );
    let c = Carbide::start_env(
        d,
        &["serve", "--config", "serve.yml"],
        &[
            ("CARBIDE_TEST_HTTP", "127.0.0.1:0"),
            ("CARBIDE_TEST_PASSWORD", "p#ss: w0rd"),
        ],
    );
    let get = |auth: Option<&str>| {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(c.http).unwrap();
        let header = auth.map_or(String::new(), |a| format!("Authorization: Basic {a}\r\n"));
        write!(
            s,
            "GET /version HTTP/1.1\r\nHost: x\r\n{header}Connection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    assert!(get(None).starts_with("HTTP/1.1 401"), "{}", get(None));
    // base64("grafana:p#ss: w0rd")
    let ok = get(Some("Z3JhZmFuYTpwI3NzOiB3MHJk"));
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    drop(c);
}

/// `carbide up` reports the errors of all three files at once, in one style, and exits 2
/// before anything listens.
#[test]
fn up_reports_every_files_errors_in_one_style() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "serve.yml", "data_dir: data\nflush_intervall: 5s\n");
    write(d, "collectors.d/host.yml", "type: host\ninterval: 10\n");
    write(
        d,
        "alerts.yml",
        "alerts:\n  - name: A\n    target: a.b\n    warning: 1\n    critcal: 2\n",
    );
    let (code, err) = carbide(
        d,
        &[
            "up",
            "--config",
            "serve.yml",
            "--http-listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    assert_eq!(code, Some(2), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines.iter().any(|l| l.starts_with(
            "serve.yml:2:1: unknown key \"flush_intervall\": did you mean \"flush_interval\"?"
        )),
        "{err}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with(
            "collectors.d/host.yml:2:11: interval: invalid value: string \"10\", expected a duration: a bare number has no unit; did you mean `10s`?"
        )),
        "{err}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with(
            "alerts.yml:5:5: alerts[0]: unknown key \"critcal\": did you mean \"critical\"?"
        )),
        "{err}"
    );
    assert!(
        err.contains("carbide: 3 configuration error(s); nothing was started"),
        "{err}"
    );
    assert!(!d.join("data").exists(), "the store was opened");
}

/// `carbide up` keeps everything under its data directory: the collector's spool too (as
/// root the agent's default would be /var/lib/carbide/spool, shared with a standalone agent).
#[test]
fn up_spools_under_its_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "collectors.d/host.yml", "type: host\ninterval: 1s\n");
    let c = Carbide::start(d, &common::up_args(&["--alerts", "off"]));
    let lock = d.join(format!("data/spool/127.0.0.1_{}/lock", c.carbon.port()));
    let want = format!("pid {}: ", c.child.id());
    let ok = common::wait_until(std::time::Duration::from_secs(30), || {
        std::fs::read_to_string(&lock).is_ok_and(|t| t.starts_with(&want))
    });
    assert!(ok, "no spool under the data directory: {}", lock.display());
    drop(c);
}

/// The command-line manner shared by every binary: `--version`, `--log-level`, a value that
/// looks like a flag taken as the value, exit 2 on a configuration error.
#[test]
fn cli_manner() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = Command::new(common::CARBIDE)
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("carbide "),
        "{out:?}"
    );
    // `-admin` is the user's name, not a flag; without a password that is a config error.
    let (code, err) = carbide(
        d,
        &["--log-level", "debug", "serve", "--http-user", "-admin"],
        &[],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("HTTP basic auth: a user is set but no password"),
        "{err}"
    );
    assert!(!err.contains('\x1b'), "ANSI escapes on a pipe: {err:?}");
}

/// `carbide up` logs (its own lines, the agent's and the alerter's) without ANSI escapes when
/// stderr is not a terminal (a file here, as under systemd): `conf::logging`, the one log
/// setup of every binary.
#[test]
fn logs_carry_no_ansi_escapes_off_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "collectors.d/host.yml", "type: host\ninterval: 1s\n");
    let c = Carbide::start_env(
        d,
        &common::up_args(&["--alerts", "off"]),
        &[("RUST_LOG", "debug")],
    );
    let log = d.join("carbide.log");
    let ok = common::wait_until(std::time::Duration::from_secs(30), || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains(" DEBUG "))
    });
    drop(c);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(ok, "no debug line in carbide.log: {text}");
    assert!(
        !text.contains('\x1b'),
        "ANSI escapes in a log file: {text:?}"
    );
}
