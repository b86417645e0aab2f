//! Every YAML example in `docs/` goes through the real loader of the file it shows, so the
//! docs cannot drift from what the binaries accept: `carbide serve`'s settings file
//! (store.md, and cluster.md's node: a block with a serve file's listener keys), the agent's global file and collector files (configuration.md, sender.md,
//! collectors/*.md), sql-to-graphite's queries file (collectors/sql.md), alerts.yml
//! (alerts.md, notifiers.md; fragments are completed with a minimal alert), install.md's
//! Ansible tasks (YAML; the agent settings they write load) and cluster.md's carbonapi.yaml
//! (YAML, each backend's protocol one carbide answers).

use std::path::{Path, PathBuf};

/// The ```yaml blocks of a Markdown file, with the line each starts on.
fn yaml_blocks(md: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut cur: Option<(usize, String)> = None;
    for (i, line) in md.lines().enumerate() {
        match (&mut cur, line.trim_start()) {
            (None, l) if l.starts_with("```yaml") => cur = Some((i + 2, String::new())),
            (Some(_), l) if l.starts_with("```") => out.extend(cur.take()),
            (Some((_, text)), _) => {
                text.push_str(line);
                text.push('\n');
            }
            _ => {}
        }
    }
    out
}

fn docs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    let mut files = Vec::new();
    for dir in [root.clone(), root.join("collectors")] {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "md") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

/// Top-level keys of a block (lines starting with a letter and holding `:`).
fn top_keys(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_alphabetic()))
        .filter_map(|l| l.split_once(':').map(|(k, _)| k.trim()))
        .collect()
}

/// Keys only `carbide serve`'s settings file has.
const SERVE_KEYS: &[&str] = &["carbon_tcp", "carbon_udp", "http_listen"];

const ALERTER_KEYS: &[&str] = &[
    "alerts",
    "notifiers",
    "routes",
    "templates",
    "no_data",
    "docs_url",
    "graphite_url",
];

fn check(doc: &Path, line: usize, text: &str) -> Result<&'static str, String> {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let keys = top_keys(text);
    let name = doc.file_name().unwrap().to_string_lossy();
    let at = |e: &dyn std::fmt::Display| format!("{}:{line}: {e}", doc.display());
    if name == "store.md" || SERVE_KEYS.iter().any(|k| keys.contains(k)) {
        let f = d.join("serve.yml");
        std::fs::write(&f, text).unwrap();
        carbide::config::Loaded::load(Some(&f)).map_err(|e| at(&e))?;
        return Ok("serve file");
    }
    if name == "install.md" && text.trim_start().starts_with("- ") {
        // An Ansible task list (or handler): YAML, and the agent settings it writes load
        // with the agent's loader.
        let f = d.join("tasks.yml");
        let tasks: Vec<serde_json::Value> = conf::from_str(&f, text).map_err(|e| at(&e))?;
        for task in &tasks {
            let copy = task.get("ansible.builtin.copy");
            let dest = copy.and_then(|c| c.get("dest")).and_then(|d| d.as_str());
            let content = copy.and_then(|c| c.get("content")).and_then(|c| c.as_str());
            if let (Some("/etc/carbide/collector.yml"), Some(content)) = (dest, content) {
                std::fs::create_dir(d.join("collectors.d")).unwrap();
                let g = d.join("collector.yml");
                std::fs::write(&g, content).unwrap();
                collector::config::load(&collector::config::Sources {
                    config: Some(g),
                    collectors_dir: None,
                })
                .map_err(|e| at(&conf::ConfigErrors(e)))?;
            }
        }
        return Ok("Ansible task list");
    }
    if keys.contains(&"type") {
        std::fs::create_dir(d.join("collectors.d")).unwrap();
        std::fs::write(d.join("collectors.d/example.yml"), text).unwrap();
        let g = d.join("collector.yml");
        std::fs::write(&g, "hostname_method: fixed\nhostname: docs\n").unwrap();
        collector::config::load(&collector::config::Sources {
            config: Some(g),
            collectors_dir: Some(d.join("collectors.d")),
        })
        .map_err(|e| at(&conf::ConfigErrors(e)))?;
        return Ok("collector file");
    }
    if keys == ["upstreams"] {
        // carbonapi's own carbonapi.yaml (cluster.md; tests/carbonapi.rs replays its
        // requests): YAML whose every backend speaks a protocol carbide answers.
        let f = d.join("carbonapi.yaml");
        let v: serde_json::Value = conf::from_str(&f, text).map_err(|e| at(&e))?;
        let backends = v["upstreams"]["backendsv2"]["backends"]
            .as_array()
            .ok_or_else(|| at(&"no upstreams.backendsv2.backends list"))?;
        for b in backends {
            let p = b["protocol"].as_str().unwrap_or_default();
            if !graphite::server::carbonapi::PROTOCOLS.contains(&p) && p != "auto" {
                return Err(at(&format!("protocol {p:?} is not one carbide answers")));
            }
        }
        return Ok("carbonapi.yaml");
    }
    if keys == ["queries"] {
        let f = d.join("queries.yml");
        std::fs::write(&f, text).unwrap();
        // Without --schedule: a query without `schedule:` is fine there.
        collector::sql::queries::load_file(&f, false).map_err(|e| at(&e))?;
        return Ok("queries file");
    }
    if keys.iter().any(|k| ALERTER_KEYS.contains(k)) {
        // The example's CA file is the system's bundle here.
        let mut full = text.replace(
            "/etc/ssl/private-ca.pem",
            "/etc/ssl/certs/ca-certificates.crt",
        );
        if keys == ["no_data"] {
            // A key of one alert (docs/alerts.md, "Alert keys").
            let indented: String = full.lines().map(|l| format!("    {l}\n")).collect();
            full = format!(
                "alerts:\n  - name: A\n    target: a.b\n    warning: 1\n    critical: 2\n{indented}"
            );
        } else if !keys.contains(&"alerts") {
            full.push_str("alerts:\n  - {name: A, target: a.b, warning: 1, critical: 2}\n");
        }
        if keys.contains(&"routes") && !keys.contains(&"notifiers") {
            // The notifiers a routes example names.
            full.push_str("notifiers:\n");
            full.push_str("  pagerduty: {type: pagerduty, routing_key: KEY}\n");
            full.push_str(
                "  slack: {type: slack, url: \"https://hooks.slack.com/services/T/B/X\"}\n",
            );
            full.push_str("  ops-mail: {type: console}\n");
        }
        let f = d.join("alerts.yml");
        alerter::config::Config::from_str_with_env(&f, &full, &|_| None).map_err(|e| at(&e))?;
        return Ok("alerts.yml");
    }
    // The agent's global file (or its sender: section).
    std::fs::create_dir(d.join("collectors.d")).unwrap();
    let g = d.join("collector.yml");
    std::fs::write(&g, text).unwrap();
    collector::config::load(&collector::config::Sources {
        config: Some(g),
        collectors_dir: Some(d.join("collectors.d")),
    })
    .map_err(|e| at(&conf::ConfigErrors(e)))?;
    Ok("collector.yml")
}

#[test]
fn every_yaml_example_in_docs_loads() {
    // The variables the examples name, as a user would set them.
    for (v, value) in [
        ("HAPROXY_PASSWORD", "example"),
        ("GRAFANA_PASSWORD", "example"),
        ("ALERTER_API_PASSWORD", "example"),
        ("SHOP_DSN", "postgres://metrics:secret@127.0.0.1/shop"),
        (
            "CARBIDE_PG_DSN",
            "postgres://metrics:secret@127.0.0.1/postgres",
        ),
        (
            "CARBIDE_MYSQL_DSN",
            "mysql://metrics:secret@127.0.0.1/mysql",
        ),
    ] {
        std::env::set_var(v, value);
    }
    let mut errors = Vec::new();
    let mut seen = 0;
    for doc in docs() {
        let md = std::fs::read_to_string(&doc).unwrap();
        for (line, text) in yaml_blocks(&md) {
            seen += 1;
            if let Err(e) = check(&doc, line, &text) {
                errors.push(e);
            }
        }
    }
    assert!(seen >= 25, "only {seen} YAML examples found");
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}
