//! The `rabbitmq` collector against a real RabbitMQ with the management plugin, started once
//! for the whole suite by `tests/services/rabbitmq-up.sh`, which also loads the fixture:
//! vhost `/`: orders (5 messages), empty (0), ignored.tmp (1); vhost `test`: jobs (3),
//! orders (2). The tests read `CARBIDE_RABBITMQ_URL`, `CARBIDE_RABBITMQ_USER` and
//! `CARBIDE_RABBITMQ_PASSWORD` (printed by the script for `eval`).

mod service_kit;

use std::net::TcpListener;

use service_kit::*;

struct Rabbit {
    url: String,
    user: String,
    password: String,
}

fn rabbit() -> Rabbit {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!(
                "{name} is not set: start the test RabbitMQ first with \
                 `eval \"$(tests/services/rabbitmq-up.sh)\"` (tests/run does this)"
            )
        })
    };
    Rabbit {
        url: var("CARBIDE_RABBITMQ_URL"),
        user: var("CARBIDE_RABBITMQ_USER"),
        password: var("CARBIDE_RABBITMQ_PASSWORD"),
    }
}

fn instance(r: &Rabbit, extra: &str) -> String {
    format!(
        "type: rabbitmq\nurl: {}\nusername: {}\npassword: {}\n{extra}",
        r.url, r.user, r.password
    )
}

fn dir_with(files: &[(&str, String)], carbon_port: u16) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "collector.yml", &global(carbon_port));
    for (name, body) in files {
        write(tmp.path(), &format!("collectors.d/{name}.yml"), body);
    }
    tmp
}

#[test]
fn per_vhost_queues_overview_and_health_have_exact_paths_and_values() {
    let r = rabbit();
    // page_size 2: vhost `/` has 3 queues, so its listing takes two pages.
    let tmp = dir_with(
        &[(
            "rabbitmq",
            instance(
                &r,
                "queue_paths: vhost\npage_size: 2\nexclude_queues: ['\\.tmp$']\n",
            ),
        )],
        closed_port(),
    );
    let out = run(tmp.path(), &["test", "rabbitmq"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stdout.contains(&r.password) && !stderr.contains(&r.password));
    let m = metrics(&stdout);
    let p = |s: &str| format!("{HOST}.rabbitmq.{s}");
    let expect = [
        ("vhosts._.queues.orders.messages", 5.0),
        ("vhosts._.queues.orders.messages_ready", 5.0),
        ("vhosts._.queues.orders.messages_unacknowledged", 0.0),
        ("vhosts._.queues.orders.consumers", 0.0),
        ("vhosts._.queues.empty.messages", 0.0),
        ("vhosts.test.queues.jobs.messages", 3.0),
        ("vhosts.test.queues.orders.messages", 2.0),
        ("queue_totals.messages", 11.0),
        ("queue_totals.messages_ready", 11.0),
        ("queue_totals.messages_unacknowledged", 0.0),
        ("object_totals.queues", 5.0),
        ("object_totals.consumers", 0.0),
        ("health.running", 1.0),
        ("health.mem_alarm", 0.0),
        ("health.disk_free_alarm", 0.0),
        ("cluster.nodes", 1.0),
        ("cluster.running_nodes", 1.0),
        ("cluster.partitions", 0.0),
    ];
    for (path, want) in expect {
        assert_eq!(m.get(&p(path)), Some(&want), "{path} in\n{stdout}");
    }
    for present in [
        "health.fd_used",
        "health.fd_total",
        "health.mem_used",
        "health.mem_limit",
        "health.sockets_used",
        "health.sockets_total",
        "health.disk_free",
        "health.disk_free_limit",
        "health.proc_used",
        "health.proc_total",
        "queue_totals.messages_details.rate",
        "vhosts._.queues.orders.messages_details.rate",
    ] {
        assert!(
            m.contains_key(&p(present)),
            "{present} missing in\n{stdout}"
        );
    }
    assert!(m.get(&p("health.fd_total")).unwrap() > &0.0);
    // RabbitMQ's stats database drops the message_stats of objects idle for a while (the fixture
    // is published once, when tests/run starts): when it reports them, they are exact.
    if let Some(v) = m.get(&p("vhosts.test.queues.orders.message_stats.publish")) {
        assert_eq!(*v, 2.0, "{stdout}");
    }
    // excluded by regex; no flat layout in vhost mode
    assert!(!stdout.contains("ignored"), "{stdout}");
    assert!(!stdout.contains(".rabbitmq.queues."), "{stdout}");
}

#[test]
fn flat_layout_and_vhost_filter() {
    let r = rabbit();
    let tmp = dir_with(
        &[
            ("all", instance(&r, "path: rmq_all\n")),
            (
                "only_test",
                instance(
                    &r,
                    "path: rmq_test\nvhosts: ['^test$']\nqueues: ['^(orders|jobs)$']\n",
                ),
            ),
        ],
        closed_port(),
    );
    let out = run(tmp.path(), &["test", "all"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let m = metrics(&stdout);
    // Diamond's default layout; `orders` exists in both vhosts: `/` (first by name) wins.
    assert_eq!(
        m.get(&format!("{HOST}.rmq_all.queues.orders.messages")),
        Some(&5.0)
    );
    assert_eq!(
        m.get(&format!("{HOST}.rmq_all.queues.jobs.messages")),
        Some(&3.0)
    );
    assert_eq!(
        m.get(&format!("{HOST}.rmq_all.queues.ignored_tmp.messages")),
        Some(&1.0)
    );
    assert!(stderr.contains("exists in several vhosts"), "{stderr}");

    let out = run(tmp.path(), &["test", "only_test"]);
    let stdout = text(&out.stdout);
    let m = metrics(&stdout);
    assert_eq!(
        m.get(&format!("{HOST}.rmq_test.queues.orders.messages")),
        Some(&2.0)
    );
    assert_eq!(
        m.get(&format!("{HOST}.rmq_test.queues.jobs.messages")),
        Some(&3.0)
    );
    let queues: Vec<&String> = m.keys().filter(|k| k.contains(".queues.")).collect();
    assert!(
        queues
            .iter()
            .all(|k| k.contains(".queues.orders.") || k.contains(".queues.jobs.")),
        "{queues:?}"
    );
}

#[test]
fn wrong_password_fails_without_showing_it() {
    let r = rabbit();
    let wrong = Rabbit {
        password: format!("not-{}", r.password),
        ..rabbit()
    };
    let tmp = dir_with(&[("rabbitmq", instance(&wrong, ""))], closed_port());
    let out = run(tmp.path(), &["test", "rabbitmq"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("HTTP 401"), "{stderr}");
    assert!(stderr.contains("check username and password"), "{stderr}");
    assert!(!stderr.contains(&wrong.password), "{stderr}");
}

/// A second instance points at a listener that accepts connections and never answers. It
/// misses every deadline; the real RabbitMQ instance and the host collector in the same agent
/// keep running every interval, and the hang is logged once.
#[test]
fn a_hung_server_delays_only_its_own_collector() {
    let r = rabbit();
    let hole = TcpListener::bind("127.0.0.1:0").unwrap();
    let hole_port = hole.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in hole.incoming() {
            held.push(s); // keep it open, never read or write
        }
    });
    let rx = Receiver::start();
    let tmp = dir_with(
        &[
            ("real", instance(&r, "path: rmq\ninterval: 1s\nqueues: ['^orders$']\n")),
            (
                "hung",
                format!("type: rabbitmq\npath: rmq_hung\nurl: http://127.0.0.1:{hole_port}\ninterval: 1s\ntimeout: 500ms\n"),
            ),
            ("host", "type: host\npath: host\ninterval: 1s\n".to_string()),
        ],
        rx.port,
    );
    let agent = Agent::start(tmp.path());
    let real = format!("{HOST}.rmq.health.running ");
    let host = format!("{HOST}.host.");
    let selfm = format!("{HOST}.carbide.collector.");
    rx.wait_until("first runs", |r| {
        !r.runs(&real).is_empty() && !r.runs(&host).is_empty()
    });
    let (real0, host0) = (rx.runs(&real).len(), rx.runs(&host).len());
    let t0 = rx.sum(&format!("{selfm}rmq_hung.timeouts "));
    rx.wait_until("4 timeouts of the hung instance", |r| {
        r.sum(&format!("{selfm}rmq_hung.timeouts ")) >= t0 + 4.0
    });
    let real_during = rx.runs(&real).len() - real0;
    let host_during = rx.runs(&host).len() - host0;
    let log = agent.stop();
    assert!(
        real_during >= 3,
        "real rabbitmq ran {real_during} times\n{log}"
    );
    assert!(host_during >= 3, "host ran {host_during} times\n{log}");
    for other in ["rmq", "host"] {
        assert_eq!(
            rx.sum(&format!("{selfm}{other}.timeouts ")),
            0.0,
            "{other}\n{log}"
        );
        assert_eq!(
            rx.sum(&format!("{selfm}{other}.errors ")),
            0.0,
            "{other}\n{log}"
        );
    }
    assert!(rx.with_prefix(&format!("{HOST}.rmq_hung.")).is_empty());
    assert_eq!(log.matches("collector run cancelled").count(), 1, "{log}");
    assert!(!log.contains(&r.password), "{log}");
}
