//! What a graphite-web 1.1 cluster front end (`CLUSTER_SERVERS`: its `RemoteFinder` and
//! `RemoteReader`) reads from a node: `/render` and `/metrics/find` answers in
//! `format=pickle` (protocol 2, primitives only — graphite-web's restricted unpickler refuses
//! anything else) and `format=msgpack` (Content-Type exactly `application/x-msgpack`, which
//! is how graphite-web tells the two apart). Written with serde-pickle and rmp-serde; carbide
//! never reads pickle.
//!
//! - render: a list of `{name, pathExpression, start, end, step, values}`, `values` floats or
//!   `None`; `pathExpression` is the `target` the series answered (graphite-web files results
//!   under it and drops any other);
//! - find: a list of `{path, is_leaf, isLeaf, intervals}` (`isLeaf` for carbonapi's msgpack
//!   flavour, [`super::carbonapi`]), `intervals` a list of `(start, end)`: for a
//!   leaf, the ranges this node holds of it ([`crate::store::Store::held`]); none for a
//!   branch.
//!
//! Nothing found is an empty list (any other status makes graphite-web disable the node for
//! `REMOTE_RETRY_DELAY`).

use serde::Serialize;

use crate::series::Series;

/// A cluster format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pickle,
    Msgpack,
}

impl Format {
    /// `format=pickle` or `format=msgpack`.
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "pickle" => Some(Format::Pickle),
            "msgpack" => Some(Format::Msgpack),
            _ => None,
        }
    }

    /// graphite-web's Content-Type for the format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Pickle => "application/pickle",
            Format::Msgpack => "application/x-msgpack",
        }
    }

    fn encode<T: Serialize>(self, v: &T) -> Result<Vec<u8>, String> {
        match self {
            Format::Pickle => serde_pickle::to_vec(v, serde_pickle::SerOptions::new().proto_v2())
                .map_err(|e| e.to_string()),
            Format::Msgpack => rmp_serde::to_vec_named(v).map_err(|e| e.to_string()),
        }
    }
}

#[derive(Serialize)]
struct SeriesInfo<'a> {
    name: &'a str,
    #[serde(rename = "pathExpression")]
    path_expression: &'a str,
    start: i64,
    end: i64,
    step: i64,
    values: &'a [Option<f64>],
}

/// One `/metrics/find` node as graphite-web's remote finder reads it, with carbonapi's
/// `isLeaf` beside graphite-web's `is_leaf` (carbonapi's msgpack flavour reads `path` and
/// `isLeaf` and skips the rest; graphite-web reads `is_leaf`, else `isLeaf`).
#[derive(Debug, Serialize)]
pub struct NodeInfo<'a> {
    pub path: &'a str,
    pub is_leaf: bool,
    #[serde(rename = "isLeaf")]
    pub is_leaf_carbonapi: bool,
    /// `(start, end)` pairs: a leaf's data, none for a branch.
    pub intervals: Vec<(i64, i64)>,
}

/// A render answer: each series with the target it answered (`pathExpression`).
pub fn render(series: &[(&str, Series)], format: Format) -> Result<Vec<u8>, String> {
    let infos: Vec<SeriesInfo<'_>> = series
        .iter()
        .map(|(target, s)| SeriesInfo {
            name: &s.name,
            path_expression: target,
            start: s.start,
            end: s.end,
            step: s.step,
            values: &s.values,
        })
        .collect();
    format.encode(&infos)
}

/// A find answer.
pub fn find(nodes: &[NodeInfo<'_>], format: Format) -> Result<Vec<u8>, String> {
    format.encode(&nodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series() -> Series {
        let mut s = Series::new("a.b", 60, 180, 60, vec![Some(1.5), None]);
        s.path_expression = "a.*".into();
        s
    }

    #[test]
    fn pickle_is_protocol_2_with_primitives_only() {
        let body = render(&[("a.*", series())], Format::Pickle).unwrap();
        // PROTO 2; graphite-web's own unpickler reads it in `tests/cluster.rs`.
        assert_eq!(&body[..2], b"\x80\x02");
        let v: serde_pickle::Value =
            serde_pickle::from_slice(&body, serde_pickle::DeOptions::new()).unwrap();
        let text = format!("{v:?}");
        for want in [
            "\"pathExpression\"",
            "\"a.*\"",
            "\"a.b\"",
            "F64(1.5)",
            "None",
        ] {
            assert!(text.contains(want), "{want} in {text}");
        }
        let empty = render(&[], Format::Pickle).unwrap();
        let v: serde_pickle::Value =
            serde_pickle::from_slice(&empty, serde_pickle::DeOptions::new()).unwrap();
        assert_eq!(v, serde_pickle::Value::List(vec![]));
    }

    #[test]
    fn msgpack_maps_with_nil_for_nulls() {
        let body = render(&[("a.*", series())], Format::Msgpack).unwrap();
        let v: serde_json::Value = rmp_serde::from_slice(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!([{"name": "a.b", "pathExpression": "a.*", "start": 60, "end": 180,
                "step": 60, "values": [1.5, null]}])
        );
        let nodes = [
            NodeInfo {
                path: "a.b",
                is_leaf: true,
                is_leaf_carbonapi: true,
                intervals: vec![(10, 20)],
            },
            NodeInfo {
                path: "a",
                is_leaf: false,
                is_leaf_carbonapi: false,
                intervals: vec![],
            },
        ];
        let nodes = find(&nodes, Format::Msgpack).unwrap();
        let v: serde_json::Value = rmp_serde::from_slice(&nodes).unwrap();
        assert_eq!(
            v,
            serde_json::json!([{"path": "a.b", "is_leaf": true, "isLeaf": true, "intervals": [[10, 20]]},
                {"path": "a", "is_leaf": false, "isLeaf": false, "intervals": []}])
        );
    }
}
