//! Names from names: graphite-web's `getNodeOrTag`, `aggKey`, `_getFirstPathExpression` and
//! `formatPathExpressions`, shared by the grouping and aliasing functions.

use super::args::Value;
use crate::series::Series;

/// graphite-web's `getNodeOrTag`: node `n` of the name (tags split off, negative counts from
/// the end), or, for a string or out-of-range node, the tag of that name (`""` if none).
pub fn node_or_tag(series: &Series, n: &Value, path: Option<&str>) -> String {
    if let Value::Int(i) = n {
        let name = path.unwrap_or(&series.name);
        let base = name.split(';').next().unwrap_or(name);
        let nodes: Vec<&str> = base.split('.').collect();
        let idx = if *i < 0 { nodes.len() as i64 + i } else { *i };
        if idx >= 0 && (idx as usize) < nodes.len() {
            return nodes[idx as usize].to_string();
        }
    }
    series.tags.get(&n.py_str()).cloned().unwrap_or_default()
}

/// graphite-web's `aggKey`: the nodes/tags joined with `.`; a name that looks like a function
/// call is first reduced to its first path expression.
pub fn agg_key(series: &Series, nodes: &[Value]) -> String {
    let first = if series.name.ends_with(')') {
        first_path_expression(&series.name)
    } else {
        None
    };
    nodes
        .iter()
        .map(|n| node_or_tag(series, n, first.as_deref()))
        .collect::<Vec<_>>()
        .join(".")
}

/// The first path expression inside a function-call name: `f(g(a.b,c),2)` → `a.b`
/// (graphite-web's `_getFirstPathExpression`).
pub fn first_path_expression(name: &str) -> Option<String> {
    let mut s = name.trim();
    loop {
        let Some(open) = s.find('(') else {
            let first = s.as_bytes().first()?;
            if matches!(first, b'"' | b'\'') || s.parse::<f64>().is_ok() {
                return None;
            }
            return Some(s.to_string());
        };
        let inner = s[open + 1..].strip_suffix(')')?;
        // first top-level argument
        let mut depth = 0i32;
        let mut quote = None;
        let mut end = inner.len();
        for (i, c) in inner.char_indices() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '"' | '\'') => quote = Some(c),
                (None, '(' | '{') => depth += 1,
                (None, ')' | '}') => depth -= 1,
                (None, ',') if depth == 0 => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        s = inner[..end].trim();
    }
}

/// graphite-web's `formatPathExpressions`: distinct path expressions in order, comma-joined.
pub fn format_path_expressions<'a>(series: impl IntoIterator<Item = &'a Series>) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for s in series {
        if !seen.contains(&s.path_expression.as_str()) {
            seen.push(&s.path_expression);
        }
    }
    seen.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_path_expression_digs_into_first_args() {
        assert_eq!(
            first_path_expression("f(g(a.b,c),2)").as_deref(),
            Some("a.b")
        );
        assert_eq!(
            first_path_expression("sumSeries(a.{b,c}.d)").as_deref(),
            Some("a.{b,c}.d")
        );
        assert_eq!(first_path_expression("constantLine(5)"), None);
    }
}
