//! Message templates: `{placeholder}` substitution, checked at load time.
//!
//! Placeholders: `{alert}`, `{series}`, `{level}`, `{previous}`, `{value}`, `{threshold}`,
//! `{threshold_level}`, `{runbook_url}`, `{graph_url}`, `{timestamp}`, `{reason}`, `{labels.KEY}`,
//! `{annotations.KEY}`. `{{` and `}}` are literal braces. Absent values render empty.

use std::collections::BTreeMap;

use crate::notification::Level;

/// The names a template may use (besides `labels.*` / `annotations.*`).
pub const PLACEHOLDERS: &[&str] = &[
    "alert",
    "series",
    "level",
    "previous",
    "value",
    "threshold",
    "threshold_level",
    "runbook_url",
    "graph_url",
    "timestamp",
    "reason",
];

/// Graphite Pager's one-line description.
pub const DEFAULT_SUMMARY: &str = "{level} alert for {alert} {series}";
/// Graphite Pager's long description, with both links.
pub const DEFAULT_BODY: &str = "{level} alert for {alert} {series}. The current value is {value} which passes the {threshold_level} value of {threshold}.\nGraph: {graph_url}\nDocumentation: {runbook_url}";
/// The default body of a NO_DATA or ERROR notification: no value passed a threshold, so no
/// sentence says one did (Graphite Pager's `ALERT_MISSING_TEMPLATE`). An ERROR's reason
/// follows as a `Reason:` line.
pub const DEFAULT_MISSING_BODY: &str =
    "{level} alert for {alert} {series}.\nGraph: {graph_url}\nDocumentation: {runbook_url}";

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Var(String),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pieces: Vec<Piece>,
}

/// Everything a template can refer to.
#[derive(Debug, Clone, Default)]
pub struct Context<'a> {
    pub alert: &'a str,
    pub series: &'a str,
    pub level: Option<Level>,
    pub previous: Option<Level>,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub runbook_url: Option<&'a str>,
    pub graph_url: Option<&'a str>,
    pub timestamp: i64,
    /// Why the level is ERROR / NO_DATA (the render error).
    pub reason: Option<&'a str>,
    pub labels: Option<&'a BTreeMap<String, String>>,
    pub annotations: Option<&'a BTreeMap<String, String>>,
}

impl Template {
    /// Parse and check every placeholder; the error names the bad one and the choices.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|p| p.1) == Some('{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek().map(|p| p.1) == Some('}') => {
                    chars.next();
                    lit.push('}');
                }
                '{' => {
                    let rest = &text[i + 1..];
                    let end = rest.find('}').ok_or_else(|| {
                        format!("unclosed \"{{\" at byte {i} (write \"{{{{\" for a literal brace)")
                    })?;
                    let name = rest[..end].trim();
                    let known = PLACEHOLDERS.contains(&name)
                        || name.strip_prefix("labels.").is_some_and(|k| !k.is_empty())
                        || name
                            .strip_prefix("annotations.")
                            .is_some_and(|k| !k.is_empty());
                    if !known {
                        let hint = conf::closest(name, PLACEHOLDERS.iter().copied())
                            .map(|k| format!("did you mean \"{{{k}}}\"? "))
                            .unwrap_or_default();
                        return Err(format!(
                            "unknown placeholder \"{{{name}}}\": {hint}(known: {}, labels.KEY, annotations.KEY)",
                            PLACEHOLDERS.join(", ")
                        ));
                    }
                    if !lit.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut lit)));
                    }
                    pieces.push(Piece::Var(name.to_string()));
                    for _ in 0..rest[..=end].chars().count() {
                        chars.next();
                    }
                }
                '}' => {
                    return Err(format!(
                        "stray \"}}\" at byte {i} (write \"}}}}\" for a literal brace)"
                    ))
                }
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            pieces.push(Piece::Text(lit));
        }
        Ok(Template { pieces })
    }

    pub fn render(&self, cx: &Context) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Var(v) => out.push_str(&lookup(cx, v)),
            }
        }
        out
    }
}

fn lookup(cx: &Context, name: &str) -> String {
    let num = |v: Option<f64>| v.map(crate::notification::human_value).unwrap_or_default();
    match name {
        "alert" => cx.alert.to_string(),
        "series" => cx.series.to_string(),
        "level" => cx.level.map(|l| l.to_string()).unwrap_or_default(),
        "previous" => cx.previous.map(|l| l.to_string()).unwrap_or_default(),
        "value" => num(cx.value),
        "threshold" => num(cx.threshold),
        // Graphite Pager says "warning" for OK (the value it has gone back under).
        "threshold_level" => match cx.level {
            Some(Level::Critical) => "critical".into(),
            _ => "warning".into(),
        },
        "runbook_url" => cx.runbook_url.unwrap_or_default().to_string(),
        "graph_url" => cx.graph_url.unwrap_or_default().to_string(),
        "timestamp" => cx.timestamp.to_string(),
        "reason" => cx.reason.unwrap_or_default().to_string(),
        _ => {
            let (map, key) = match name.split_once('.') {
                Some(("labels", k)) => (cx.labels, k),
                Some((_, k)) => (cx.annotations, k),
                None => (None, ""),
            };
            map.and_then(|m| m.get(key)).cloned().unwrap_or_default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_placeholders_and_braces() {
        let labels = BTreeMap::from([("team".to_string(), "db".to_string())]);
        let t =
            Template::parse("{{x}} {level} {alert}/{series} v={value} {labels.team}{labels.none}")
                .unwrap();
        let cx = Context {
            alert: "Load",
            series: "web1",
            level: Some(Level::Critical),
            value: Some(2.5),
            labels: Some(&labels),
            ..Context::default()
        };
        assert_eq!(t.render(&cx), "{x} CRITICAL Load/web1 v=2.5 db");
    }

    #[test]
    fn unknown_placeholder_is_an_error_with_hint() {
        let e = Template::parse("{levle} x").unwrap_err();
        assert!(e.contains("did you mean \"{level}\"?"), "{e}");
        assert!(Template::parse("{level").unwrap_err().contains("unclosed"));
        assert!(Template::parse(DEFAULT_BODY).is_ok());
        assert!(Template::parse(DEFAULT_MISSING_BODY).is_ok());
    }
}
