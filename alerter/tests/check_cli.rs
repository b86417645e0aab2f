//! `alerter check`: real Graphite Pager files load; every bad-config kind exits 2 with its
//! message and position.

use std::path::Path;
use std::process::Command;

use alerter::config::Config;
use alerter::notification::Level;
use alerter::notifiers::pagerduty::PagerDutyConfig;

fn check(path: &Path, env: &[(&str, &str)]) -> (i32, String, String) {
    check_with(path, env, &[])
}

fn check_with(path: &Path, env: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_alerter"));
    cmd.arg("check").args(args).arg(path);
    for v in alerter::config::env_vars() {
        cmd.env_remove(v);
    }
    cmd.envs(env.iter().copied());
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn example() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/graphite_pager.yml")
}

#[test]
fn graphite_pager_file_loads_unchanged() {
    let (code, out, err) = check(&example(), &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("OK: 5 alerts, notifiers: console, pagerduty, slack"),
        "{out}"
    );
    assert!(
        err.contains("\"redis_url\" is a Graphite Pager setting carbide does not use"),
        "{err}"
    );
    assert!(err.contains("\"hipchat_room\""), "{err}");
    assert!(!err.contains("0123456789abcdef") && !out.contains("0123456789abcdef"));

    let c = Config::load_with_env(&example(), &|_| None).unwrap();
    let disk = &c.alerts[3];
    assert_eq!(disk.level_for(5.0), Level::Critical);
    assert_eq!(disk.level_for(15.0), Level::Warning);
    assert_eq!(
        disk.runbook_url("web-1").as_deref(),
        Some("https://runbooks.example.com/Disk%20free#web-1")
    );
    assert!(disk.exclude.contains("build-1"));
    let pd = c.notifiers["pagerduty"]
        .config::<PagerDutyConfig>()
        .unwrap();
    assert_eq!(
        pd.key_for("Checkout errors", Level::Critical)
            .unwrap()
            .expose(),
        "11112222333344445555666677778888"
    );
    assert_eq!(
        pd.key_for("Load", Level::Critical).unwrap().expose(),
        "fedcba9876543210fedcba9876543210"
    );
    assert_eq!(
        c.graphite.url.as_deref(),
        Some("https://graphite.example.com")
    );
}

/// The repository's alerts.yml is carbide up's: no graphite_url, checked with --embedded.
#[test]
fn repo_alerts_yml_passes() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../alerts.yml");
    let (code, out, err) = check_with(&repo, &[], &["--embedded"]);
    assert_eq!(code, 0, "{out}{err}");
    // Without it, the alerter alone would have nothing to evaluate against.
    let (code, _, err) = check(&repo, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("alerts.yml: graphite_url is not set (nor GRAPHITE_URL)"),
        "{err}"
    );
    assert!(err.contains("alerter check --embedded"), "{err}");
    let (code, _, err) = check(&repo, &[("GRAPHITE_URL", "http://127.0.0.1:8080")]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn bad_configs_exit_2_with_position() {
    let dir = tempfile::tempdir().unwrap();
    let head = "alerts:\n  - name: A\n    target: a.b\n";
    let cases: &[(&str, &str, &str)] = &[
        ("yaml", "docs_url: x: y\nalerts: []\n", "yaml.yml:1:12: mapping values are not allowed"),
        ("typo", "alerts:\n  - name: A\n    target: a.b\n    warning: 1\n    critcal: 2\n", "5:5: alerts[0]: unknown key \"critcal\": did you mean \"critical\"?"),
        ("equal", &format!("{head}    warning: 3\n    critical: 3\n"), "5:5: alert \"A\" (#1): warning and critical are both 3"),
        ("target", "alerts:\n  - name: A\n    target: sum(a.b\n    warning: 1\n    critical: 2\n", "3:5: alert \"A\" (#1): target: invalid target: expected ',' or ')', found the end of the target at column 8\n  sum(a.b\n         ^"),
        ("unknownfn", "alerts:\n  - name: A\n    target: scale(sumSeriez(a.*),2)\n    warning: 1\n    critical: 2\n", "3:5: alert \"A\" (#1): target: invalid target: unknown function \"sumSeriez\" at column 7\n  scale(sumSeriez(a.*),2)\n        ^"),
        ("argtype", "alerts:\n  - name: A\n    target: movingAverage(a.b, \"x\")\n    warning: 1\n    critical: 2\n", "3:5: alert \"A\" (#1): target: invalid target: Invalid \"intOrInterval\" value specified for function \"movingAverage\" parameter \"windowSize\": 'x' at column 20\n  movingAverage(a.b, \"x\")\n                     ^"),
        ("arity", "alerts:\n  - name: A\n    target: aliasByNode(scale(a.b),1)\n    warning: 1\n    critical: 2\n", "3:5: alert \"A\" (#1): target: invalid target: Missing required parameter \"factor\" for function \"scale\" at column 13\n  aliasByNode(scale(a.b),1)\n              ^"),
        ("extra", "alerts:\n  - name: A\n    target: scale(a.b,2,3)\n    warning: 1\n    critical: 2\n", "Too many parameters specified for function \"scale\" at column 13\n  scale(a.b,2,3)\n              ^"),
        ("notifier", &format!("routes:\n  critical: [pager]\n{head}    warning: 1\n    critical: 2\n"), "2:3: alert \"A\" (#1): CRITICAL is routed to unknown notifier \"pager\""),
        ("secret", &format!("pagerduty:\n  warning: w\nroutes:\n  critical: [pagerduty]\n{head}    warning: 1\n    critical: 2\n"), "no PagerDuty routing key"),
        ("type", "notifiers:\n  x:\n    type: sms\nalerts: []\n", "unknown value \"sms\""),
        ("email", "notifiers:\n  m:\n    type: email\n    host: h\n    from: nobody\n    to: [a@b.c]\nalerts: []\n", "2:3: notifier \"m\": from: \"nobody\" is not an email address"),
        ("cafile", "notifiers:\n  m:\n    type: email\n    host: h\n    from: a@b.c\n    to: [a@b.c]\n    ca_file: /nonexistent/ca.pem\nalerts: []\n", "2:3: notifier \"m\": ca_file /nonexistent/ca.pem: cannot read: "),
        ("notpem", &format!("notifiers:\n  m:\n    type: email\n    host: h\n    from: a@b.c\n    to: [a@b.c]\n    ca_file: {}\nalerts: []\n", dir.path().join("notpem.yml").display()), "notpem.yml: not a PEM certificate"),
        ("op", &format!("{head}    warning: 1\n    critical: 2\n    op: '<'\n"), "6:5: alert \"A\" (#1): with op \"<\" warning (1) must not be below critical (2)"),
        // What a run needs: absolute http(s) URLs, Graphite times, known notifier types.
        ("webhook", "notifiers:\n  hook:\n    type: webhook\n    url: hooks.example.com/x\nalerts: []\n", "2:3: notifier \"hook\": url is not an absolute http:// or https:// URL"),
        ("slackurl", &format!("slack_url: not-a-url\n{head}    warning: 1\n    critical: 2\n"), "1:1: slack_url is not an absolute http:// or https:// URL"),
        ("from", &format!("{head}    warning: 1\n    critical: 2\n    from: 5min\n"), "6:5: alert \"A\" (#1): from: "),
        ("until", &format!("{head}    warning: 1\n    critical: 2\n    until: yesterday-ish\n"), "6:5: alert \"A\" (#1): until: "),
        ("graphiteurl", "graphite_url: graphite.example.com\nalerts: []\n", "1:1: graphite_url is not an absolute http:// or https:// URL"),
        ("pagerdutty", "notifiers:\n  ops:\n    type: pagerdutty\nalerts: []\n", "unknown value \"pagerdutty\": did you mean \"pagerduty\"?"),
        ("nographite", &format!("{head}    warning: 1\n    critical: 2\n"), "nographite.yml: graphite_url is not set (nor GRAPHITE_URL)"),
    ];
    for (name, text, want) in cases {
        let p = dir.path().join(format!("{name}.yml"));
        std::fs::write(&p, text).unwrap();
        let (code, _, err) = check(&p, &[]);
        assert_eq!(code, 2, "{name}: {err}");
        assert!(err.contains(want), "{name}: wanted {want:?} in {err}");
        assert!(
            err.contains(&format!("{name}.yml:")),
            "{name}: no file in {err}"
        );
    }
}

/// Graphite Pager's per-level maps may leave out levels (that level is not sent there).
#[test]
fn per_level_maps_leaving_out_levels_are_valid() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("gp.yml");
    std::fs::write(&p, "graphite_url: http://127.0.0.1:8080\npagerduty:\n  critical: SEKRET-PD\nslack:\n  warning: https://hooks.slack.com/services/T/B/SEKRET\nalerts:\n  - {name: A, target: a, warning: 1, critical: 2}\n").unwrap();
    let (code, out, err) = check(&p, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains("SEKRET") && !err.contains("SEKRET"));
}

#[test]
fn env_supplies_the_missing_secret() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.yml");
    std::fs::write(&p, "routes:\n  critical: [pagerduty]\nalerts:\n  - {name: A, target: a, warning: 1, critical: 2}\n").unwrap();
    let (code, _, err) = check(&p, &[]);
    assert_eq!(code, 2, "{err}");
    let (code, out, err) = check(
        &p,
        &[
            ("PAGERDUTY_KEY", "SEKRET-ENV-KEY"),
            ("GRAPHITE_URL", "http://127.0.0.1:8080"),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("SEKRET") && !err.contains("SEKRET"));
}
