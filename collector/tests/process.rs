//! The `process` collector through the real agent, against children this test spawns: a
//! sleeping one (also found by pid file and user), a busy one, one with 10 threads and 50
//! open files; each field is checked against `/proc`. A group that matches nothing reports
//! `workers_count 0`, and processes that exit between scans are no error.

mod service_kit;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use service_kit::*;

struct Kid(Child);

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(args: &[&str]) -> Kid {
    Kid(Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap())
}

fn status_field(pid: u32, field: &str) -> f64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = text.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn fds(pid: u32) -> f64 {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count() as f64
}

#[test]
fn groups_match_children_and_fields_agree_with_proc() {
    let tag = std::process::id();
    let sleeper = spawn(&["sleep", &format!("1{tag}")]);
    let busy = spawn(&["sh", "-c", &format!("while :; do :; done # busy-{tag}")]);
    let threaded = spawn(&[
        "python3",
        "-c",
        "import threading, time\nfs = [open('/dev/null') for _ in range(50)]\nfor _ in range(10): threading.Thread(target=time.sleep, args=(1000,), daemon=True).start()\ntime.sleep(1000)",
        &format!("threaded-{tag}"),
    ]);
    // Short-lived processes matching a group come and go during the scans.
    let churn = spawn(&[
        "sh",
        "-c",
        &format!("while :; do sh -c 'exit 0 # churn-{tag}'; done"),
    ]);
    let tmp = tempfile::tempdir().unwrap();
    let pidfile = tmp.path().join("sleeper.pid");
    std::fs::write(&pidfile, format!("{}\n", sleeper.0.id())).unwrap();
    let rx = Receiver::start();
    write(tmp.path(), "collector.yml", &global(rx.port));
    write(
        tmp.path(),
        "collectors.d/process.yml",
        &format!(
            "type: process\ninterval: 1s\ngroups:\n  sleeper:\n    cmdline: '^sleep 1{tag}$'\n  by_pidfile:\n    pidfile: {}\n  root_sleeper:\n    cmdline: '^sleep 1{tag}$'\n    user: root\n  nobody_sleeper:\n    cmdline: '^sleep 1{tag}$'\n    user: nobody\n  busy:\n    cmdline: 'busy-{tag}'\n  threaded:\n    cmdline: 'threaded-{tag}$'\n  churn:\n    cmdline: 'churn-{tag}'\n  nothing:\n    name: '^no-such-process-{tag}$'\n  agent:\n    selfmon: true\n",
            pidfile.display()
        ),
    );
    let agent = Agent::start(tmp.path());
    let prefix = format!("{HOST}.process.");
    let m = {
        let mut found = None;
        for _ in 0..300 {
            let m = latest(&rx, &prefix);
            let ready = m.get("busy.cpu_percent").is_some_and(|&v| v > 20.0)
                && m.contains_key("threaded.io_counters.read_bytes")
                && m.get("threaded.num_threads") == Some(&11.0)
                && rx.runs(&format!("{prefix}churn.workers_count ")).len() >= 3;
            if ready {
                found = Some(m);
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        found.unwrap_or_else(|| panic!("{:#?}", latest(&rx, &prefix)))
    };
    // Every documented field of a group with processes.
    for name in documented("process") {
        let path = format!("threaded.{name}");
        assert!(m.contains_key(&path), "{path} missing: {m:#?}");
    }
    for g in [
        "sleeper",
        "by_pidfile",
        "root_sleeper",
        "busy",
        "threaded",
        "agent",
    ] {
        assert_eq!(m[&format!("{g}.workers_count")], 1.0, "{g}: {m:#?}");
    }
    // 0 is published, not silence
    assert_eq!(m["nothing.workers_count"], 0.0);
    assert_eq!(m["nothing.ext_memory_info.rss"], 0.0);
    assert_eq!(m["nobody_sleeper.workers_count"], 0.0);
    assert!(m["sleeper.cpu_percent"] < 5.0, "{m:#?}");

    let tpid = threaded.0.id();
    assert_eq!(m["threaded.num_threads"], status_field(tpid, "Threads:"));
    // 50 files and the three standard streams
    assert_eq!(m["threaded.num_fds"], fds(tpid));
    assert!(m["threaded.num_fds"] >= 53.0, "{m:#?}");
    let rss = status_field(tpid, "VmRSS:") * 1024.0;
    let got = m["threaded.ext_memory_info.rss"];
    assert!((got - rss).abs() <= rss * 0.1, "rss {got} vs /proc {rss}");
    let vms = status_field(tpid, "VmSize:") * 1024.0;
    let got = m["threaded.ext_memory_info.vms"];
    assert!((got - vms).abs() <= vms * 0.1, "vms {got} vs /proc {vms}");
    assert!(m["threaded.uptime"] >= 1.0 && m["threaded.uptime"] < 600.0);
    assert!(m["threaded.memory_percent"] > 0.0 && m["threaded.memory_percent"] < 100.0);
    assert_eq!(
        m["sleeper.ext_memory_info.rss"],
        m["by_pidfile.ext_memory_info.rss"]
    );

    drop(churn);
    // Processes exiting mid-scan are no error. (A run may miss its 1 s deadline on a loaded
    // machine: that is a timeout, not an error, and not what this checks.)
    let errors = rx.sum(&format!("{HOST}.carbide.collector.process.errors "));
    let log = agent.stop();
    assert_eq!(errors, 0.0, "{log}");
    assert!(!log.contains("collector run failed"), "{log}");
    drop((sleeper, busy, threaded));
}
