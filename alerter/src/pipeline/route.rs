//! From a decided level to messages: which notifiers (via [`Routes::plan`]), what each
//! notification says (templates, runbook and graph links), and silences holding them back.
//!
//! What is sent is driven by the difference between the level receivers were last told
//! (`notified_level`) and the current level, so a change held by a silence is sent when the
//! silence ends (if the level still differs then), and nothing is sent twice.

use crate::config::{Alert, Routes};
use crate::notification::{Action, GraphLinks, Level, Notification};
use crate::notifiers::Message;
use crate::template::Context;

use super::state::{SeriesState, Silence};

/// What a series' state asks for this cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Tell receivers `from → to` (`from` is what they were last told).
    Change { from: Level, to: Level },
    /// Re-send the current firing level (`repeat_interval`).
    Repeat,
}

/// Whether `state` asks for a notification at `now`, ignoring silences.
pub fn due(alert: &Alert, state: &SeriesState, now: i64) -> Option<Due> {
    if state.level != state.notified_level {
        Some(Due::Change {
            from: state.notified_level,
            to: state.level,
        })
    } else if state.repeat_due(alert, now) {
        Some(Due::Repeat)
    } else {
        None
    }
}

/// The first silence holding `alert` × `series` at `now`.
pub fn silenced<'a>(
    silences: &'a [Silence],
    alert: &str,
    series: &str,
    now: i64,
) -> Option<&'a Silence> {
    silences.iter().find(|s| s.matches(alert, series, now))
}

/// Build the notification for `series` at `level` (after `previous`). `reason`: why the
/// level is ERROR or NO_DATA (the render error), added to the body as a last line. A line
/// of the body that is only a label whose link is missing (`Graph:`, `Documentation:`) is
/// left out.
#[allow(clippy::too_many_arguments)]
pub fn notification(
    alert: &Alert,
    links: &GraphLinks,
    series: &str,
    previous: Level,
    level: Level,
    value: Option<f64>,
    now: i64,
    reason: Option<&str>,
) -> Notification {
    let reason = reason.filter(|_| matches!(level, Level::Error | Level::NoData));
    let runbook_url = alert.runbook_url(series);
    let (graph_url, graph_image_url) = links.urls(
        &alert.name,
        series,
        &alert.target,
        alert.warning,
        alert.critical,
        now,
    );
    let threshold = alert.threshold_for(level);
    let value = value.filter(|_| matches!(level, Level::Ok | Level::Warning | Level::Critical));
    let cx = Context {
        alert: &alert.name,
        series,
        level: Some(level),
        previous: Some(previous),
        value,
        threshold,
        runbook_url: runbook_url.as_deref(),
        graph_url: graph_url.as_deref(),
        timestamp: now,
        reason,
        labels: Some(&alert.labels),
        annotations: Some(&alert.annotations),
    };
    Notification {
        alert: alert.name.clone(),
        series: series.to_string(),
        level,
        previous,
        value,
        threshold,
        summary: alert.templates.summary.render(&cx),
        body: {
            let template = match level {
                Level::NoData | Level::Error => &alert.templates.body_missing,
                _ => &alert.templates.body,
            };
            let body = drop_empty_links(&template.render(&cx));
            match reason {
                Some(r) => format!("{body}\nReason: {r}"),
                None => body,
            }
        },
        reason: reason.map(str::to_string),
        runbook_url,
        graph_url,
        graph_image_url,
        labels: alert.labels.clone(),
        annotations: alert.annotations.clone(),
        timestamp: now,
        graph_png: None,
    }
}

/// `text` without the lines that are only a link's label (`Graph: ` with no graph link).
fn drop_empty_links(text: &str) -> String {
    let empty = |l: &str| matches!(l.trim(), "Graph:" | "Documentation:" | "Runbook:");
    if !text.lines().any(empty) {
        return text.to_string();
    }
    text.lines()
        .filter(|l| !empty(l))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The messages for one due notification: `(notifier, message)`. `held`: the firing level
/// whose receivers still have an open incident (see [`Routes::plan_held`]); returns the
/// messages and the new `held`.
pub fn messages(
    routes: &Routes,
    due: Due,
    n: &Notification,
    held: Option<Level>,
    keep_open: bool,
) -> (Vec<(String, Message)>, Option<Level>) {
    let (plan, held): (Vec<(String, Action)>, Option<Level>) = match due {
        Due::Change { from, to } => routes.plan_held(from, to, held, keep_open),
        Due::Repeat => (
            routes
                .for_level(n.level)
                .iter()
                .map(|r| (r.clone(), Action::Trigger))
                .collect(),
            held,
        ),
    };
    let msgs = plan
        .into_iter()
        .map(|(notifier, action)| {
            let msg = Message {
                action,
                idempotency_key: n.idempotency_key(&notifier),
                notification: n.clone(),
            };
            (notifier, msg)
        })
        .collect();
    (msgs, held)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    #[test]
    fn change_plans_triggers_and_resolves_with_runbook() {
        let text = "docs_url: https://wiki/alerts\npagerduty_key: k\nslack_url: https://hooks/x\nalerts:\n  - {name: Disk free, target: a, warning: 20, critical: 10}\n";
        let cfg = Config::from_str_with_env(Path::new("a.yml"), text, &|_| None).unwrap();
        let a = &cfg.alerts[0];
        let links = GraphLinks {
            base: Some("https://g".into()),
            ..GraphLinks::default()
        };
        let n = notification(
            a,
            &links,
            "web 1",
            Level::Warning,
            Level::Critical,
            Some(5.0),
            100,
            None,
        );
        assert_eq!(
            n.runbook_url.as_deref(),
            Some("https://wiki/alerts/Disk%20free#web%201")
        );
        assert_eq!(n.threshold, Some(10.0));
        assert_eq!(n.summary, "CRITICAL alert for Disk free web 1");
        assert!(n.body.contains("\nGraph: https://g/render/?"), "{}", n.body);
        assert!(
            n.body.contains("passes the critical value of 10"),
            "{}",
            n.body
        );
        let m = messages(
            &a.routes,
            Due::Change {
                from: Level::Warning,
                to: Level::Critical,
            },
            &n,
            None,
            true,
        )
        .0;
        let plan: Vec<(&str, Action)> = m.iter().map(|(k, m)| (k.as_str(), m.action)).collect();
        assert_eq!(
            plan,
            vec![
                ("console", Action::Trigger),
                ("slack", Action::Trigger),
                ("pagerduty", Action::Trigger)
            ]
        );
        let ok = notification(
            a,
            &GraphLinks::default(),
            "web 1",
            Level::Critical,
            Level::Ok,
            Some(50.0),
            200,
            None,
        );
        // No graph link: no "Graph:" line.
        assert_eq!(ok.graph_url, None);
        assert!(!ok.body.contains("Graph:"), "{}", ok.body);
        assert!(
            ok.body.contains("Documentation: https://wiki"),
            "{}",
            ok.body
        );
        let m = messages(
            &a.routes,
            Due::Change {
                from: Level::Critical,
                to: Level::Ok,
            },
            &ok,
            None,
            true,
        )
        .0;
        assert!(m.iter().all(|(_, m)| m.action == Action::Resolve));
        assert_eq!(m.len(), 3);
        let r = messages(&a.routes, Due::Repeat, &n, None, true).0;
        assert_eq!(r.len(), 3);
    }

    /// NO_DATA and ERROR have no value that passed a threshold: their default body says what
    /// happened (Graphite Pager's missing-data message), an ERROR's with its reason; a body
    /// the file sets is used for every level.
    #[test]
    fn no_data_and_error_bodies_claim_no_value() {
        let links = GraphLinks {
            base: Some("https://g".into()),
            ..GraphLinks::default()
        };
        let text = "docs_url: https://wiki/alerts\nalerts:\n  - {name: Load, target: a, warning: 10, critical: 20}\n";
        let cfg = Config::from_str_with_env(Path::new("a.yml"), text, &|_| None).unwrap();
        let a = &cfg.alerts[0];
        let error = notification(
            a,
            &links,
            "web1",
            Level::Ok,
            Level::Error,
            None,
            100,
            Some("render: 500 Internal Server Error"),
        );
        let lines: Vec<&str> = error.body.lines().collect();
        assert_eq!(lines[0], "ERROR alert for Load web1.", "{}", error.body);
        assert!(
            lines[1].starts_with("Graph: https://g/render/?"),
            "{}",
            error.body
        );
        assert_eq!(lines[2], "Documentation: https://wiki/alerts/Load#web1");
        assert_eq!(lines[3], "Reason: render: 500 Internal Server Error");
        assert_eq!(lines.len(), 4, "{}", error.body);
        let no_data = notification(a, &links, "web1", Level::Ok, Level::NoData, None, 100, None);
        assert!(
            no_data
                .body
                .starts_with("NO_DATA alert for Load web1.\nGraph: "),
            "{}",
            no_data.body
        );
        assert!(!no_data.body.contains("current value"), "{}", no_data.body);
        // A CRITICAL still says which value passed which threshold.
        let critical = notification(
            a,
            &links,
            "web1",
            Level::Ok,
            Level::Critical,
            Some(25.0),
            100,
            None,
        );
        assert!(
            critical
                .body
                .contains("The current value is 25 which passes the critical value of 20."),
            "{}",
            critical.body
        );
        // A body of the file's own is every level's, globally or per alert.
        for text in [
            "templates: {body: \"{level} {alert}: {reason}\"}\nalerts:\n  - {name: Load, target: a, warning: 10, critical: 20}\n",
            "alerts:\n  - {name: Load, target: a, warning: 10, critical: 20, templates: {body: \"{level} {alert}: {reason}\"}}\n",
        ] {
            let cfg = Config::from_str_with_env(Path::new("a.yml"), text, &|_| None).unwrap();
            let n = notification(&cfg.alerts[0], &links, "s", Level::Ok, Level::Error, None, 1, Some("boom"));
            assert_eq!(n.body, "ERROR Load: boom\nReason: boom", "{text}");
        }
    }
}
