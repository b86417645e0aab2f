//! What to run and how to name its results: queries read from stdin (the original tool's
//! form) or from a YAML queries file (the richer form), and turning result rows into
//! `(name, value)` samples.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

use super::db::Rows;
use super::value::Cell;
use conf::{self as yaml, ConfigError};

/// Default per-query deadline.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A YAML queries file (`sql-to-graphite --queries FILE` or `--schedule FILE`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueriesFile {
    /// The queries, run in order (`--queries`) or each on its own schedule (`--schedule`).
    pub queries: Vec<QuerySpec>,
}

/// One query of a queries file (or of a `sql` collector instance).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuerySpec {
    /// Metric name under the prefix (dotted: `orders.pending`).
    pub name: DottedName,
    /// The SQL: one statement, run in a read-only transaction.
    pub query: String,
    /// Replaces `--graphite-prefix` for this query (not used by the `sql` collector, whose
    /// path comes from the agent).
    #[serde(default)]
    pub prefix: Option<DottedName>,
    /// Column whose value names each row: `<name>.<row name>`. Without it the query must
    /// return one row (extra rows are ignored with a warning).
    #[serde(default)]
    pub name_column: Option<String>,
    /// Columns sent as values (default: every column except `name_column`). One value
    /// column is sent as `<name>`, several as `<name>.<column>`.
    #[serde(default)]
    pub value_columns: Vec<String>,
    /// Deadline for the query (`10s`, `1m`); enforced by the database where it can.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Cron schedule for `--schedule`: 5 fields (`*/5 * * * *`, on the minute) or 6 with
    /// seconds first (`*/10 * * * * *`). Not used by the `sql` collector (its interval is).
    #[serde(default)]
    pub schedule: Option<CronSchedule>,
}

fn default_timeout() -> Duration {
    DEFAULT_TIMEOUT
}

/// A dotted metric name, valid by the line-protocol rules once sanitised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DottedName(pub String);

impl<'de> Deserialize<'de> for DottedName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        graphite::protocol::sanitize_path(&s)
            .map(|p| DottedName(p.into_owned()))
            .map_err(|_| {
                serde::de::Error::custom(format!(
                    "{s:?} is empty or has an empty component (a leading, trailing or double dot)"
                ))
            })
    }
}

/// A parsed cron expression with the text it came from.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    pub text: String,
    pub schedule: cron::Schedule,
}

impl CronSchedule {
    /// Parse 5-field (minute first, runs at second 0) or 6/7-field (seconds first) cron.
    pub fn parse(text: &str) -> Result<CronSchedule, String> {
        let fields = text.split_whitespace().count();
        let full = if fields == 5 {
            format!("0 {text}")
        } else {
            text.to_string()
        };
        cron::Schedule::from_str(&full)
            .map(|schedule| CronSchedule {
                text: text.to_string(),
                schedule,
            })
            .map_err(|e| {
                format!("invalid cron schedule {text:?}: {e} (expected `min hour day month weekday`, or `sec min hour day month weekday`)")
            })
    }
}

impl<'de> Deserialize<'de> for CronSchedule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        CronSchedule::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// How rows become samples.
#[derive(Debug, Clone)]
pub enum Mapping {
    /// The original tool: first column the name, second the value, the rest ignored.
    Pairs,
    /// The queries file: see [`QuerySpec`].
    Named {
        name: String,
        name_column: Option<String>,
        value_columns: Vec<String>,
    },
}

/// A query ready to run.
#[derive(Debug, Clone)]
pub struct Query {
    /// How messages name it: `line 3` (stdin) or its `name`.
    pub label: String,
    pub sql: String,
    /// Overrides the run's prefix when set.
    pub prefix: Option<String>,
    pub mapping: Mapping,
    pub timeout: Duration,
    pub schedule: Option<CronSchedule>,
}

impl From<QuerySpec> for Query {
    fn from(s: QuerySpec) -> Query {
        Query {
            label: s.name.0.clone(),
            sql: trim_sql(&s.query).to_string(),
            prefix: s.prefix.map(|p| p.0),
            mapping: Mapping::Named {
                name: s.name.0,
                name_column: s.name_column,
                value_columns: s.value_columns,
            },
            timeout: s.timeout,
            schedule: s.schedule,
        }
    }
}

/// A query without its trailing `;` and whitespace (prepared statements are one statement).
fn trim_sql(sql: &str) -> &str {
    sql.trim()
        .trim_end_matches(|c: char| c == ';' || c.is_whitespace())
}

/// Queries from the original tool's input: one per line; blank lines and `--` comments
/// skipped.
pub fn from_lines(text: &str, timeout: Duration) -> Vec<Query> {
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let sql = trim_sql(line);
            if sql.is_empty() || sql.starts_with("--") {
                return None;
            }
            Some(Query {
                label: format!("line {}", i + 1),
                sql: sql.to_string(),
                prefix: None,
                mapping: Mapping::Pairs,
                timeout,
                schedule: None,
            })
        })
        .collect()
}

/// Read and validate a YAML queries file. With `scheduled`, every query needs a `schedule`.
pub fn load_file(file: &Path, scheduled: bool) -> Result<Vec<Query>, ConfigError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| ConfigError::whole_file(file, format!("cannot read: {e}")))?;
    let parsed: QueriesFile = yaml::from_str(file, &text)?;
    validate(file, &text, &parsed.queries, scheduled)?;
    Ok(parsed.queries.into_iter().map(Query::from).collect())
}

/// Checks that need more than one field: names unique, schedules present when needed.
pub fn validate(
    file: &Path,
    text: &str,
    queries: &[QuerySpec],
    scheduled: bool,
) -> Result<(), ConfigError> {
    let at = |name: &str| position_of(text, name).unwrap_or((0, 0));
    if queries.is_empty() {
        return Err(ConfigError::whole_file(
            file,
            "no queries: add at least one under `queries:` (name, query)",
        ));
    }
    for (i, q) in queries.iter().enumerate() {
        let (l, c) = at(&q.name.0);
        if queries[..i]
            .iter()
            .any(|p| p.name == q.name && p.prefix == q.prefix)
        {
            return Err(ConfigError::new(
                file,
                l,
                c,
                format!(
                    "query name {:?} is used twice; names become metric paths and must be unique",
                    q.name.0
                ),
            ));
        }
        if scheduled && q.schedule.is_none() {
            return Err(ConfigError::new(
                file,
                l,
                c,
                format!(
                    "query {:?} has no `schedule:` (cron, e.g. \"*/5 * * * *\"); --schedule runs each query on its own",
                    q.name.0
                ),
            ));
        }
        if q.timeout.is_zero() {
            return Err(ConfigError::new(
                file,
                l,
                c,
                format!("query {:?}: timeout must be above 0", q.name.0),
            ));
        }
        if q.query.trim().is_empty() {
            return Err(ConfigError::new(
                file,
                l,
                c,
                format!("query {:?}: `query:` is empty", q.name.0),
            ));
        }
    }
    Ok(())
}

/// Where `name: <value>` is written, for errors found after decoding.
fn position_of(text: &str, value: &str) -> Option<(usize, usize)> {
    text.lines().enumerate().find_map(|(i, line)| {
        let at = line.find("name:")?;
        let rest = line[at + 5..].trim();
        (rest.trim_matches(['"', '\'']) == value).then(|| (i + 1, at + 1))
    })
}

/// Turn a query's rows into `(relative name, value)` samples. Cells that are not numbers
/// are skipped and reported through `warn` (naming the query and the row). An `Err` means
/// the result does not have the shape the query's mapping asks for.
pub fn samples(
    q: &Query,
    rows: &Rows,
    warn: &mut dyn FnMut(String),
) -> Result<Vec<(String, f64)>, String> {
    let mut out = Vec::new();
    match &q.mapping {
        Mapping::Pairs => {
            for (r, row) in rows.rows.iter().enumerate() {
                let n = r + 1;
                if row.len() < 2 {
                    warn(format!(
                        "query {}: row {n} has {} column(s), expected a name and a value; skipped",
                        q.label,
                        row.len()
                    ));
                    continue;
                }
                let Some(name) = row[0].as_name() else {
                    warn(format!(
                        "query {}: row {n}: the name (first column) is {}; skipped",
                        q.label,
                        row[0].describe()
                    ));
                    continue;
                };
                match &row[1] {
                    Cell::Number(v) => out.push((name, *v)),
                    other => warn(format!(
                        "query {}: row {n} ({name}): the value is {}; skipped",
                        q.label,
                        other.describe()
                    )),
                }
            }
        }
        Mapping::Named {
            name,
            name_column,
            value_columns,
        } => {
            if rows.rows.is_empty() {
                return Ok(out);
            }
            let find = |col: &str| {
                rows.columns
                    .iter()
                    .position(|c| c == col)
                    .or_else(|| {
                        rows.columns
                            .iter()
                            .position(|c| c.eq_ignore_ascii_case(col))
                    })
                    .ok_or_else(|| {
                        format!(
                            "column {col:?} is not in the result (columns: {})",
                            rows.columns.join(", ")
                        )
                    })
            };
            let name_idx = name_column.as_deref().map(find).transpose()?;
            let values: Vec<usize> = if value_columns.is_empty() {
                (0..rows.columns.len())
                    .filter(|i| Some(*i) != name_idx)
                    .collect()
            } else {
                value_columns
                    .iter()
                    .map(|c| find(c))
                    .collect::<Result<_, _>>()?
            };
            if values.is_empty() {
                return Err("the result has no value column (only the name column)".into());
            }
            if name_idx.is_none() && rows.rows.len() > 1 {
                warn(format!(
                    "query {}: returned {} rows but has no `name_column`; only the first row is sent",
                    q.label,
                    rows.rows.len()
                ));
            }
            let take = if name_idx.is_some() {
                rows.rows.len()
            } else {
                1
            };
            for (r, row) in rows.rows.iter().take(take).enumerate() {
                let n = r + 1;
                let base = match name_idx {
                    None => name.clone(),
                    Some(i) => match row[i].as_name() {
                        Some(row_name) => format!("{name}.{row_name}"),
                        None => {
                            warn(format!(
                                "query {}: row {n}: the name column {:?} is {}; skipped",
                                q.label,
                                rows.columns[i],
                                row[i].describe()
                            ));
                            continue;
                        }
                    },
                };
                for &c in &values {
                    let metric = if values.len() == 1 {
                        base.clone()
                    } else {
                        let col = graphite::protocol::sanitize_component(&rows.columns[c]);
                        format!("{base}.{col}")
                    };
                    match &row[c] {
                        Cell::Number(v) => out.push((metric, *v)),
                        other => warn(format!(
                            "query {}: row {n} ({metric}): column {:?} is {}; skipped",
                            q.label,
                            rows.columns[c],
                            other.describe()
                        )),
                    }
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(columns: &[&str], rows: Vec<Vec<Cell>>) -> Rows {
        Rows {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows,
        }
    }

    fn run(q: &Query, r: &Rows) -> (Vec<(String, f64)>, Vec<String>) {
        let mut warnings = Vec::new();
        let s = samples(q, r, &mut |w| warnings.push(w)).unwrap();
        (s, warnings)
    }

    #[test]
    fn stdin_lines() {
        let qs = from_lines(
            "SELECT 'a', 1;\n\n  -- a comment\nSELECT 'b', 2 ;  \n   \n",
            DEFAULT_TIMEOUT,
        );
        let got: Vec<_> = qs
            .iter()
            .map(|q| (q.label.as_str(), q.sql.as_str()))
            .collect();
        assert_eq!(
            got,
            [("line 1", "SELECT 'a', 1"), ("line 4", "SELECT 'b', 2")]
        );
    }

    #[test]
    fn pairs_skip_what_is_not_a_number() {
        let q = &from_lines("SELECT x", DEFAULT_TIMEOUT)[0];
        let r = rows(
            &["name", "value", "extra"],
            vec![
                vec![Cell::Text("ok".into()), Cell::Number(1.5), Cell::Null],
                vec![Cell::Text("null".into()), Cell::Null, Cell::Null],
                vec![Cell::Null, Cell::Number(1.0), Cell::Null],
                vec![Cell::Number(7.0), Cell::Number(2.0), Cell::Null],
                vec![Cell::Text("when".into()), Cell::Other("TIMESTAMPTZ".into())],
                vec![Cell::Text("one".into())],
            ],
        );
        let (s, w) = run(q, &r);
        assert_eq!(s, [("ok".to_string(), 1.5), ("7".to_string(), 2.0)]);
        assert_eq!(w.len(), 4, "{w:?}");
        assert!(
            w[0].contains("query line 1: row 2 (null): the value is NULL"),
            "{w:?}"
        );
        assert!(
            w[1].contains("row 3: the name (first column) is NULL"),
            "{w:?}"
        );
        assert!(
            w[2].contains("row 5 (when): the value is a non-numeric TIMESTAMPTZ value"),
            "{w:?}"
        );
        assert!(w[3].contains("row 6 has 1 column(s)"), "{w:?}");
    }

    fn spec(yaml: &str) -> Query {
        let f: QueriesFile = yaml::from_str(Path::new("q.yml"), yaml).unwrap();
        f.queries.into_iter().next().unwrap().into()
    }

    #[test]
    fn named_mappings() {
        let one = spec("queries:\n- name: orders.pending\n  query: SELECT count(*) AS n;\n");
        assert_eq!(one.sql, "SELECT count(*) AS n");
        let r = rows(
            &["n"],
            vec![vec![Cell::Number(3.0)], vec![Cell::Number(4.0)]],
        );
        let (s, w) = run(&one, &r);
        assert_eq!(s, [("orders.pending".to_string(), 3.0)]);
        assert!(w[0].contains("returned 2 rows"), "{w:?}");

        let multi =
            spec("queries:\n- name: orders\n  query: q\n  name_column: status\n  timeout: 5s\n");
        assert_eq!(multi.timeout, Duration::from_secs(5));
        let r = rows(
            &["status", "n", "total sum"],
            vec![
                vec![
                    Cell::Text("new".into()),
                    Cell::Number(2.0),
                    Cell::Number(9.5),
                ],
                vec![Cell::Null, Cell::Number(1.0), Cell::Number(1.0)],
                vec![Cell::Text("paid".into()), Cell::Number(5.0), Cell::Null],
            ],
        );
        let (s, w) = run(&multi, &r);
        assert_eq!(
            s,
            [
                ("orders.new.n".to_string(), 2.0),
                ("orders.new.total_sum".to_string(), 9.5),
                ("orders.paid.n".to_string(), 5.0),
            ]
        );
        assert_eq!(w.len(), 2, "{w:?}");

        let picked =
            spec("queries:\n- name: o\n  query: q\n  name_column: STATUS\n  value_columns: [n]\n");
        let (s, _) = run(&picked, &r);
        assert_eq!(s[0], ("o.new".to_string(), 2.0));

        let missing = spec("queries:\n- name: o\n  query: q\n  name_column: nope\n");
        let e = samples(&missing, &r, &mut |_| {}).unwrap_err();
        assert!(
            e.contains("column \"nope\" is not in the result (columns: status, n, total sum)"),
            "{e}"
        );
    }

    #[test]
    fn file_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("q.yml");
        let cases = [
            ("queries: []\n", false, "no queries"),
            (
                "queries:\n- name: a\n  query: q\n  scedule: x\n",
                false,
                "unknown key \"scedule\"",
            ),
            (
                "queries:\n- name: a..b\n  query: q\n",
                false,
                "empty component",
            ),
            (
                "queries:\n- name: a\n  query: q\n  schedule: every day\n",
                false,
                "invalid cron",
            ),
            (
                "queries:\n- name: a\n  query: q\n",
                true,
                "has no `schedule:`",
            ),
            (
                "queries:\n- name: a\n  query: q\n- name: a\n  query: r\n",
                false,
                "used twice",
            ),
        ];
        for (text, scheduled, want) in cases {
            std::fs::write(&f, text).unwrap();
            let e = load_file(&f, scheduled).unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
            assert!(e.starts_with(&f.display().to_string()), "{e}");
        }
        std::fs::write(
            &f,
            "queries:\n- name: a\n  query: q\n  schedule: '*/5 * * * *'\n  prefix: biz\n",
        )
        .unwrap();
        let q = load_file(&f, true).unwrap();
        assert_eq!(q[0].prefix.as_deref(), Some("biz"));
        assert_eq!(q[0].schedule.as_ref().unwrap().text, "*/5 * * * *");
    }
}
