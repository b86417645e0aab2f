//! The `exec` collector through the real `collector` binary: paths and values from a script's
//! output, bad lines counted, a failing command's message, and a hung command killed at its
//! deadline (with what it started) while another instance keeps its schedule.

mod service_kit;

use service_kit::*;

#[test]
fn script_output_becomes_metrics_under_the_instance_path() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "collector.yml", &global(closed_port()));
    write(
        tmp.path(),
        "collectors.d/queues.yml",
        "type: exec\ncommand: \"printf 'orders.depth 12\\\\nbad line here x\\\\norders.age 4.5 1700000000\\\\nnan_value NaN\\\\n'\"\nshell: true\n",
    );
    write(
        tmp.path(),
        "collectors.d/argv.yml",
        "type: exec\npath: userscripts\ncommand: [echo, \"files.count\", \"7\"]\n",
    );
    let out = run(tmp.path(), &["test", "queues"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let m = metrics(&stdout);
    assert_eq!(m.get(&format!("{HOST}.exec.orders.depth")), Some(&12.0));
    assert_eq!(m.get(&format!("{HOST}.exec.orders.age")), Some(&4.5));
    assert_eq!(m.len(), 2, "{stdout}");
    // both bad lines are counted in one warning naming the first
    assert!(
        stderr.contains("ignored 2 line(s) that are not metrics, e.g. line 2"),
        "{stderr}"
    );
    // the run's timestamp, not the script's
    assert!(!stdout.contains("1700000000"), "{stdout}");

    let out = run(tmp.path(), &["test", "argv"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let m = metrics(&text(&out.stdout));
    assert_eq!(
        m.get(&format!("{HOST}.userscripts.files.count")),
        Some(&7.0)
    );
}

#[test]
fn a_failing_command_is_a_failed_run_with_its_message() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "collector.yml", &global(closed_port()));
    write(
        tmp.path(),
        "collectors.d/fail.yml",
        "type: exec\ncommand: 'echo partial 1; echo \"no database\" >&2; exit 4'\nshell: true\n",
    );
    let out = run(tmp.path(), &["test", "fail"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("/bin/sh exited with status 4: no database"),
        "{stderr}"
    );
    // what it printed before failing is kept
    assert_eq!(
        metrics(&stdout).get(&format!("{HOST}.exec.partial")),
        Some(&1.0)
    );
}

/// A command that hangs (a shell that started a long `sleep` and waits for it) is cancelled
/// at each deadline and its whole process group killed; another exec instance in the same
/// agent runs every interval meanwhile.
#[test]
fn a_hung_command_is_killed_at_its_deadline_and_blocks_nothing() {
    let rx = Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    let pids = tmp.path().join("pids");
    write(tmp.path(), "collector.yml", &global(rx.port));
    write(
        tmp.path(),
        "collectors.d/hang.yml",
        &format!(
            "type: exec\npath: hang\ncommand: 'sleep 1000 & echo $! >> {}; wait'\nshell: true\ninterval: 1s\ntimeout: 500ms\n",
            pids.display()
        ),
    );
    write(
        tmp.path(),
        "collectors.d/fast.yml",
        "type: exec\npath: fast\ncommand: [echo, up, \"1\"]\ninterval: 1s\n",
    );
    let agent = Agent::start(tmp.path());
    let fast = format!("{HOST}.fast.up 1 ");
    let timeouts = format!("{HOST}.carbide.collector.hang.timeouts ");
    rx.wait_until("3 timeouts of the hung command", |r| {
        r.sum(&timeouts) >= 3.0
    });
    let fast_before = rx.runs(&fast).len();
    let t_before = rx.sum(&timeouts);
    rx.wait_until("3 more timeouts", |r| r.sum(&timeouts) >= t_before + 3.0);
    let fast_during = rx.runs(&fast).len() - fast_before;
    assert!(fast_during >= 2, "fast ran {fast_during} times");
    let log = agent.stop();
    assert!(log.contains("collector run cancelled"), "{log}");
    // Every `sleep` the hung runs started is gone (killed with its group at the deadline).
    let started: Vec<i32> = std::fs::read_to_string(&pids)
        .unwrap()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    assert!(started.len() >= 3, "{started:?}");
    let gone = |pid: i32| match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // killed, not yet reaped by its (orphan) reaper
        Ok(stat) => stat.contains(") Z "),
    };
    for pid in started {
        let dead = (0..50).any(|_| {
            gone(pid) || {
                std::thread::sleep(std::time::Duration::from_millis(100));
                false
            }
        });
        assert!(dead, "sleep {pid} outlived its run");
    }
}
