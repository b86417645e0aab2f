//! Response bodies as graphite-web 1.1.10 writes them. Pure functions; no I/O.
//!
//! - `format=json` (`renderViewJson`): with `maxDataPoints`, each series is consolidated to at
//!   most that many points (its start nudged so buckets align across refreshes, values folded
//!   with the series' consolidation function); otherwise with `noNullPoints`, null and NaN
//!   points are left out and series with no points dropped; then [`crate::render::to_json`].
//! - `format=csv` (`renderViewCsv`): `name,YYYY-mm-dd HH:MM:SS,value\r\n` per point (Python's
//!   `csv` excel dialect, local time of `tz`, empty value for null), never consolidated.
//! - `/metrics/find` (`treejson`, `completer`), `/metrics/expand`, `/metrics/index.json`:
//!   Python `json.dumps` text (`", "` and `": "` separators, ASCII escapes, dict key order as
//!   graphite-web builds the dicts).

use std::fmt::Write as _;

use crate::attime::TimeZone;
use crate::render::model;
use crate::series::{py_float, Series};
use crate::store::{Found, FoundNode};

/// graphite-web's `renderViewJson` datapoints for every series.
pub fn json_series(
    series: &[Series],
    max_data_points: Option<usize>,
    no_null_points: bool,
) -> Vec<model::RenderedSeries> {
    let start = series.iter().map(|s| s.start).min().unwrap_or(0);
    let end = series.iter().map(|s| s.end).max().unwrap_or(0);
    let range = end - start;
    let mut out = Vec::with_capacity(series.len());
    for s in series {
        let step = s.step.max(1);
        let points: Vec<(Option<f64>, i64)> = match max_data_points {
            Some(max) if !series.is_empty() => {
                let mut start = s.start;
                let mut values: &[Option<f64>] = &s.values;
                let mut vpp = 1usize;
                if max == 1 {
                    vpp = values.len().max(1);
                } else {
                    let n = range as f64 / step as f64;
                    if (max as f64) < n {
                        vpp = (n / max.max(1) as f64).ceil() as usize;
                        let spp = vpp as i64 * step;
                        let nudge = spp + start.rem_euclid(step) - start.rem_euclid(spp);
                        start += nudge;
                        let lose = (nudge / step) as usize;
                        if lose > 1 {
                            values = &values[(lose - 1).min(values.len())..];
                        }
                    }
                }
                let mut c = s.clone();
                c.values = values.to_vec();
                let spp = step * vpp as i64;
                c.consolidated(vpp)
                    .into_iter()
                    .zip((start..=s.end).step_by(spp as usize))
                    .collect()
            }
            _ if no_null_points => {
                let pts: Vec<(Option<f64>, i64)> = s
                    .values
                    .iter()
                    .enumerate()
                    .filter_map(|(i, v)| match v {
                        Some(x) if !x.is_nan() => Some((Some(*x), s.start + i as i64 * step)),
                        _ => None,
                    })
                    .collect();
                if pts.is_empty() {
                    continue;
                }
                pts
            }
            _ => s
                .values
                .iter()
                .copied()
                .zip((s.start..=s.end).step_by(step as usize))
                .collect(),
        };
        out.push(model::RenderedSeries {
            target: s.name.clone(),
            tags: tags_in_order(s),
            datapoints: points,
        });
    }
    out
}

/// The `format=json` body of [`json_series`], [`model::to_json`]'s bytes. Without
/// `maxDataPoints` and `noNullPoints` (the usual render) each series is written straight from
/// its values into one buffer sized for the whole answer: no `(value, timestamp)` list per
/// series in between.
pub fn json_body(
    series: &[Series],
    max_data_points: Option<usize>,
    no_null_points: bool,
) -> String {
    if max_data_points.is_some() || no_null_points {
        return model::to_json(&json_series(series, max_data_points, no_null_points));
    }
    let tags: Vec<Vec<(String, String)>> = series.iter().map(tags_in_order).collect();
    let mut out = String::with_capacity(
        2 + series
            .iter()
            .zip(&tags)
            .map(|(s, t)| model::json_capacity(&s.name, t, s.values.len()))
            .sum::<usize>(),
    );
    out.push('[');
    for (i, (s, t)) in series.iter().zip(&tags).enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        // graphite-web zips the values with `range(start, end + 1, step)`: the points up to
        // `end`, whose times are all within `i64`.
        let step = s.step.max(1);
        let stamps = if s.end >= s.start {
            (i128::from(s.end) - i128::from(s.start)) / i128::from(step) + 1
        } else {
            0
        };
        let n = usize::try_from(stamps).map_or(s.values.len(), |n| n.min(s.values.len()));
        model::push_series_values(&mut out, &s.name, t, &s.values[..n], s.start, step);
    }
    out.push(']');
    out
}

/// graphite-web's tag dict order ([`crate::tags::json_order`]).
fn tags_in_order(s: &Series) -> Vec<(String, String)> {
    crate::tags::json_order(&s.name, &s.tags)
}

/// graphite-web's `renderViewCsv`.
pub fn csv(series: &[Series], tz: &TimeZone) -> String {
    let mut out = String::new();
    for s in series {
        let name = csv_field(&s.name);
        for (i, v) in s.values.iter().enumerate() {
            let ts = s.start + i as i64 * s.step;
            let when = jiff::Timestamp::from_second(ts)
                .map(|t| {
                    t.to_zoned(tz.as_jiff().clone())
                        .strftime("%Y-%m-%d %H:%M:%S")
                        .to_string()
                })
                .unwrap_or_default();
            let value = v.map(py_float).unwrap_or_default();
            let _ = write!(out, "{name},{when},{value}\r\n");
        }
    }
    out
}

/// Python csv's QUOTE_MINIMAL.
fn csv_field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\"")).into()
    } else {
        s.into()
    }
}

/// A JSON value built in graphite-web's dict order.
#[derive(Debug, Clone, PartialEq)]
pub enum Py {
    /// Python's `None`.
    Null,
    Str(String),
    Int(i64),
    List(Vec<Py>),
    Dict(Vec<(String, Py)>),
}

impl Py {
    fn dict<const N: usize>(pairs: [(&str, Py); N]) -> Py {
        Py::Dict(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }

    /// Python's `json.dumps(value)` (ensure_ascii, default separators).
    pub fn dumps(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            Py::Null => out.push_str("null"),
            Py::Str(s) => write_py_str(out, s),
            Py::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Py::List(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    v.write(out);
                }
                out.push(']');
            }
            Py::Dict(pairs) => {
                out.push('{');
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write_py_str(out, k);
                    out.push_str(": ");
                    v.write(out);
                }
                out.push('}');
            }
        }
    }
}

pub use model::{write_py_str, write_py_str_body};

/// Sorted by node name as graphite-web's `find_view` sorts (stable: branch before leaf for
/// a path that is both, as the index returns them). The index answers sorted by path, so
/// the nodes of one parent (`servers.*`) are in name order already: that is checked in one
/// pass and they are not sorted again.
fn sorted(nodes: &Found) -> Vec<FoundNode<'_>> {
    let mut v: Vec<FoundNode<'_>> = nodes.iter().collect();
    if !v.windows(2).all(|w| w[0].name <= w[1].name) {
        v.sort_by(|a, b| a.name.cmp(b.name));
    }
    v
}

/// One treejson node, `{"text": name, "id": base + name, …}`, written into `out`.
fn write_tree_node(out: &mut String, base: &str, name: &str, leaf: bool) {
    out.push_str("{\"text\": ");
    write_py_str(out, name);
    out.push_str(", \"id\": ");
    // `base + name` as one string: each part escaped alone is the same text.
    write_py_str(out, base);
    out.pop();
    write_py_str_body(out, name);
    out.push('"');
    out.push_str(if leaf {
        ", \"allowChildren\": 0, \"expandable\": 0, \"leaf\": 1}"
    } else {
        ", \"allowChildren\": 1, \"expandable\": 1, \"leaf\": 0}"
    });
}

/// `/metrics/find?format=treejson`: `query` is the query as given (its part before the last
/// `.` is the base of every `id`). Written straight into one buffer (~100 bytes a node, and
/// `servers.*` of a fleet is 100k nodes): the same bytes as [`Py::dumps`] of graphite-web's
/// list of dicts.
pub fn find_treejson(query: &str, nodes: &Found, wildcards: bool) -> String {
    let base = match query.rsplit_once('.') {
        Some((b, _)) => format!("{b}."),
        None => String::new(),
    };
    let mut out = String::with_capacity(2 + nodes.len() * (90 + 2 * base.len()));
    out.push('[');
    let mut first = true;
    let mut sep = |out: &mut String| {
        if !std::mem::take(&mut first) {
            out.push_str(", ");
        }
    };
    if nodes.len() > 1 && wildcards {
        let any_branch = nodes.iter().any(|n| !n.is_leaf);
        sep(&mut out);
        write_tree_node(&mut out, &base, "*", !any_branch);
    }
    // Each name once (graphite-web's `nodes_info` set): in name order, a repeated name is
    // next to its first. Branches first, then leaves, each in name order.
    let nodes = sorted(nodes);
    for leaves in [false, true] {
        let mut last: Option<&str> = None;
        for n in &nodes {
            let name = n.name;
            if last == Some(name) {
                continue;
            }
            last = Some(name);
            if n.is_leaf == leaves {
                sep(&mut out);
                write_tree_node(&mut out, &base, name, leaves);
            }
        }
    }
    out.push(']');
    out
}

/// `/metrics/find?format=completer`, written straight into one buffer as [`find_treejson`].
pub fn find_completer(nodes: &Found, wildcards: bool) -> String {
    let mut out = String::with_capacity(32 + nodes.len() * 80);
    out.push_str("{\"metrics\": [");
    for (i, n) in sorted(nodes).into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str("{\"path\": ");
        write_py_str(&mut out, n.path);
        if !n.is_leaf {
            out.pop();
            out.push_str(".\"");
        }
        out.push_str(", \"name\": ");
        write_py_str(&mut out, n.name);
        out.push_str(if n.is_leaf {
            ", \"is_leaf\": \"1\"}"
        } else {
            ", \"is_leaf\": \"0\"}"
        });
    }
    if nodes.len() > 1 && wildcards {
        out.push_str(", {\"name\": \"*\"}");
    }
    out.push_str("]}");
    out
}

/// `/metrics/expand`: `per_query` is each query with its matching paths (sorted, deduplicated).
pub fn expand(per_query: &[(String, Vec<String>)], group_by_expr: bool) -> Py {
    let results = if group_by_expr {
        let mut d: Vec<(String, Py)> = Vec::new();
        for (q, paths) in per_query {
            let list = Py::List(paths.iter().map(|p| Py::Str(p.clone())).collect());
            match d.iter_mut().find(|(k, _)| k == q) {
                Some(slot) => slot.1 = list,
                None => d.push((q.clone(), list)),
            }
        }
        Py::Dict(d)
    } else {
        let all: std::collections::BTreeSet<&String> =
            per_query.iter().flat_map(|(_, p)| p).collect();
        Py::List(all.into_iter().map(|p| Py::Str(p.clone())).collect())
    };
    Py::dict([("results", results)])
}

/// `/metrics/index.json`: every series path, sorted.
pub fn index(paths: &[String]) -> Py {
    Py::List(paths.iter().map(|p| Py::Str(p.clone())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::FindNode;

    fn found(nodes: &[FindNode]) -> Found {
        nodes.iter().cloned().collect()
    }

    fn node(path: &str, is_leaf: bool) -> FindNode {
        FindNode {
            path: path.into(),
            is_leaf,
        }
    }

    #[test]
    fn treejson_matches_graphite_webs_bytes() {
        let nodes = [node("a.b.y", true), node("a.b.x", false)];
        assert_eq!(
            find_treejson("a.b.*", &found(&nodes), false),
            r#"[{"text": "x", "id": "a.b.x", "allowChildren": 1, "expandable": 1, "leaf": 0}, {"text": "y", "id": "a.b.y", "allowChildren": 0, "expandable": 0, "leaf": 1}]"#
        );
        let wild = find_treejson("a.b.*", &found(&nodes), true);
        assert!(wild.starts_with(r#"[{"text": "*", "id": "a.b.*", "allowChildren": 1"#));
        assert_eq!(find_treejson("*", &Found::default(), true), "[]");
    }

    #[test]
    fn treejson_lists_each_name_once_in_graphite_webs_order() {
        // As the index answers `*.*`: sorted by path, a path both branch and leaf listed
        // twice (branch first), one name under two parents, and names out of name order.
        let nodes = [
            node("a.x", true),
            node("a.y", false),
            node("a.y", true),
            node("b.\u{e9}\"", true),
            node("b.w", false),
            node("b.x", false),
        ];
        let text = |name: &str, id: &str, leaf: bool| {
            let (a, l) = if leaf { (0, 1) } else { (1, 0) };
            format!(
                r#"{{"text": {name}, "id": {id}, "allowChildren": {a}, "expandable": {a}, "leaf": {l}}}"#
            )
        };
        let want = [
            text(r#""*""#, r#""q.*""#, false),
            text(r#""w""#, r#""q.w""#, false),
            text(r#""y""#, r#""q.y""#, false),
            text(r#""x""#, r#""q.x""#, true),
            text(r#""\u00e9\"""#, r#""q.\u00e9\"""#, true),
        ];
        assert_eq!(
            find_treejson("q.*", &found(&nodes), true),
            format!("[{}]", want.join(", "))
        );
        // Without a base (a query of one node), the id is the name.
        assert_eq!(
            find_treejson("*", &found(&nodes[..1]), false),
            format!("[{}]", text(r#""x""#, r#""x""#, true))
        );
    }

    #[test]
    fn completer_marks_branches_with_a_trailing_dot() {
        let nodes = [node("a.y", true), node("a.x", false)];
        assert_eq!(
            find_completer(&found(&nodes), true),
            r#"{"metrics": [{"path": "a.x.", "name": "x", "is_leaf": "0"}, {"path": "a.y", "name": "y", "is_leaf": "1"}, {"name": "*"}]}"#
        );
    }

    #[test]
    fn expand_unions_or_groups() {
        let q = vec![
            (
                "a.*".to_string(),
                vec!["a.b".to_string(), "a.c".to_string()],
            ),
            ("x".to_string(), vec!["a.b".to_string()]),
        ];
        assert_eq!(expand(&q, false).dumps(), r#"{"results": ["a.b", "a.c"]}"#);
        assert_eq!(
            expand(&q, true).dumps(),
            r#"{"results": {"a.*": ["a.b", "a.c"], "x": ["a.b"]}}"#
        );
    }

    #[test]
    fn json_consolidates_like_render_view_json() {
        let s = Series::new("a", 60, 660, 60, (0..10).map(|i| Some(i as f64)).collect());
        let out = json_series(std::slice::from_ref(&s), Some(5), false);
        let pts = &out[0].datapoints;
        assert!(pts.len() <= 6, "{pts:?}");
        assert_eq!(pts[0].1 % 120, 0, "buckets aligned to 2 steps: {pts:?}");
        let plain = json_series(std::slice::from_ref(&s), None, false);
        assert_eq!(plain[0].datapoints.len(), 10);
        assert_eq!(plain[0].datapoints[9], (Some(9.0), 600));
    }

    #[test]
    fn no_null_points_drops_nulls_and_empty_series() {
        let a = Series::new("a", 0, 30, 10, vec![None, Some(1.0), Some(f64::NAN)]);
        let b = Series::new("b", 0, 20, 10, vec![None, None]);
        let out = json_series(&[a, b], None, true);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].datapoints, vec![(Some(1.0), 10)]);
        assert_eq!(
            model::to_json(&out),
            r#"[{"target": "a", "tags": {"name": "a"}, "datapoints": [[1.0, 10]]}]"#
        );
    }

    #[test]
    fn json_body_is_to_json_of_json_series() {
        let values = vec![
            None,
            Some(1.0),
            Some(f64::NAN),
            Some(f64::INFINITY),
            Some(-0.1),
            Some(1e300),
            Some(12.345678901234567),
        ];
        let a = Series::new("a", 0, 70, 10, values);
        let b = Series::new(
            "seriesByTag('x=\"y\"');k=v",
            5,
            45,
            20,
            vec![Some(2.5), None],
        );
        let empty = Series::new("e", 0, 0, 10, vec![]);
        for series in [vec![], vec![a.clone()], vec![a, b, empty]] {
            for (max, no_null) in [(None, false), (Some(3), false), (None, true)] {
                assert_eq!(
                    json_body(&series, max, no_null),
                    model::to_json(&json_series(&series, max, no_null)),
                    "{max:?} {no_null}"
                );
            }
        }
    }

    #[test]
    fn csv_is_pythons_excel_dialect() {
        let s = Series::new("a,b", 60, 180, 60, vec![Some(1.5), None]);
        assert_eq!(
            csv(&[s], &TimeZone::utc()),
            "\"a,b\",1970-01-01 00:01:00,1.5\r\n\"a,b\",1970-01-01 00:02:00,\r\n"
        );
    }
}
