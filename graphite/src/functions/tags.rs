//! Tag functions: `seriesByTag` (described here, fetched by the evaluator: the parser turns it
//! into [`Expr::SeriesByTag`](crate::expr::ast::Expr::SeriesByTag) and
//! [`crate::tags::fetch`] resolves it) and `groupByTags`. `aliasByTags` is in `alias.rs`.

use std::collections::HashMap;

use super::aggregate::aggregate;
use super::{req, Args, Function, ParamType as T, SERIES};
use crate::eval::EvalError;
use crate::series::Series;

pub const SERIES_BY_TAG: Function = Function::new(
    "seriesByTag",
    "Special",
    &[req("tagExpressions", T::String).multiple()],
    // Never called: the parser makes `seriesByTag(...)` a fetch, as graphite-web's
    // evaluator does.
    |cx, _| Err(cx.input_error("seriesByTag is evaluated as a fetch")),
);

pub const GROUP_BY_TAGS: Function = Function::new(
    "groupByTags",
    "Combine",
    &[
        SERIES,
        req("callback", T::AggOrSeriesFunc),
        req("tags", T::Tag).multiple(),
    ],
    |cx, mut a| {
        let callback = a.str("callback")?.to_string();
        let tags: Vec<String> = a.all("tags").iter().map(|v| v.py_str()).collect();
        if tags.is_empty() {
            return Err(cx.input_error("groupByTags(): no tags specified"));
        }
        let series = a.series("seriesList");
        // graphite-web: if every series has the same `name` tag the groups are named after
        // it, otherwise after the callback; grouping by `name` always uses each series' own.
        let by_name = tags.iter().any(|t| t == "name");
        let common = {
            let mut names: Vec<&str> = series
                .iter()
                .map(|s| s.tags.get("name").map_or("", String::as_str))
                .collect();
            names.sort_unstable();
            names.dedup();
            match names.as_slice() {
                [one] => one.to_string(),
                _ => callback.clone(),
            }
        };
        let mut keys: Vec<String> = Vec::new();
        let mut groups: HashMap<String, Vec<Series>> = HashMap::new();
        for s in series {
            let name = if by_name {
                s.tags.get("name").cloned().unwrap_or_default()
            } else {
                common.clone()
            };
            let mut parts: Vec<String> = tags
                .iter()
                .filter(|t| t.as_str() != "name")
                .map(|t| format!("{t}={}", s.tags.get(t).map_or("", String::as_str)))
                .collect();
            parts.sort_unstable();
            let key = std::iter::once(name)
                .chain(parts)
                .collect::<Vec<_>>()
                .join(";");
            match groups.get_mut(&key) {
                Some(g) => g.push(s),
                None => {
                    keys.push(key.clone());
                    groups.insert(key, vec![s]);
                }
            }
        }
        let func = super::lookup(&callback).filter(|f| f.aggregator);
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let g = groups.remove(&key).unwrap_or_default();
            let res = match func {
                Some(f) => (f.run)(cx, Args::from_slots(f, vec![vec![super::Value::Series(g)]]))?,
                None => aggregate(cx, vec![g], &callback, None)?,
            };
            // graphite-web's `STORE.tagdb.parse(key)` raises for a key it cannot parse
            // (e.g. an empty tag value when a series lacks a grouped tag).
            let tags = crate::tags::parse(&key)
                .map_err(|e| cx.input_error(format!("group {key}: {e}")))?;
            if let Some(mut s) = res.into_iter().next() {
                s.name.clone_from(&key);
                s.path_expression = key;
                s.tags = tags;
                out.push(s);
            }
        }
        Ok::<_, EvalError>(out)
    },
);

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::series::Series;

    fn data() -> Vec<Series> {
        vec![
            ser("cpu;dc=east;host=web1", &vals(&[1.0, 2.0])),
            ser("cpu;dc=east;host=web2", &vals(&[3.0, 4.0])),
            ser("cpu;dc=west;host=db1", &vals(&[5.0, 6.0])),
            ser("mem;dc=west;host=db1", &vals(&[7.0, 8.0])),
            ser("servers.web1.load", &vals(&[9.0, 9.0])),
        ]
    }

    #[test]
    fn series_by_tag_fetches_matching_series_sorted_with_the_call_as_path_expression() {
        let target = "seriesByTag( 'name=cpu',\"dc=~e\" )";
        let out = run(&data(), t(target));
        assert_eq!(
            names(&out),
            ["cpu;dc=east;host=web1", "cpu;dc=east;host=web2"]
        );
        assert!(out.iter().all(|s| s.path_expression == target));
        assert_eq!(out[0].tags["host"], "web1");
        // Untagged series are found by their name tag.
        let out = run(&data(), t("seriesByTag('name=~servers')"));
        assert_eq!(names(&out), ["servers.web1.load"]);
        // No match is no series; a query of only empty-matching expressions is an error.
        assert!(run(&data(), t("seriesByTag('name=nosuch')")).is_empty());
        assert!(run_err(&data(), t("seriesByTag('dc!=east')")).contains("At least one tagspec"));
        assert!(run_err(&data(), t("seriesByTag('bad')")).contains("Invalid tagspec"));
    }

    #[test]
    fn group_by_tags_table() {
        type Want<'a> = &'a [(&'a str, &'a [Option<f64>])];
        let cases: &[(&str, Want)] = &[
            (
                "seriesByTag('name=cpu')|groupByTags('sum','dc')",
                &[
                    ("cpu;dc=east", &[Some(4.0), Some(6.0)]),
                    ("cpu;dc=west", &[Some(5.0), Some(6.0)]),
                ],
            ),
            (
                "groupByTags(seriesByTag('dc=west'),'sumSeries','name')",
                &[
                    ("cpu", &[Some(5.0), Some(6.0)]),
                    ("mem", &[Some(7.0), Some(8.0)]),
                ],
            ),
            // Different names: the groups are named after the callback.
            (
                "groupByTags(seriesByTag('host=db1'),'max','dc')",
                &[("max;dc=west", &[Some(7.0), Some(8.0)])],
            ),
            (
                "groupByTags(seriesByTag('name=cpu'),'average','host','dc')",
                &[
                    ("cpu;dc=east;host=web1", &[Some(1.0), Some(2.0)]),
                    ("cpu;dc=east;host=web2", &[Some(3.0), Some(4.0)]),
                    ("cpu;dc=west;host=db1", &[Some(5.0), Some(6.0)]),
                ],
            ),
        ];
        for (target, want) in cases {
            let out = run(&data(), t(target));
            check(&out, want);
            for s in &out {
                assert_eq!(s.path_expression, s.name, "{target}");
                assert_eq!(crate::tags::format(&s.tags), s.name, "{target}");
            }
        }
        // A series without a grouped tag makes an unparseable group name (graphite-web: 500).
        assert!(run_err(
            &data(),
            t("groupByTags(seriesByTag('dc=west'),'sum','role')")
        )
        .contains("may not be empty"));
    }

    #[test]
    fn alias_by_tags_on_fetched_tagged_series() {
        let out = run(
            &data(),
            t("aliasByTags(seriesByTag('name=cpu','dc=east'),'host',0,'nosuch')"),
        );
        assert_eq!(names(&out), ["web1.cpu.", "web2.cpu."]);
    }
}
