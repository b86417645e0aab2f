//! What carbonapi (go-graphite's front end; its `zipper/protocols/`) reads from a backend
//! node, written with prost over go-graphite's own `.proto` files (`graphite/proto/`,
//! compiled by `graphite/build.rs`):
//!
//! - `carbonapi_v2_pb` (carbonapi's `protocol: "protobuf"`; `format=protobuf`, `protobuf3` or
//!   `carbonapi_v2_pb`): a GET with graphite-web's query string (`target`, `from`, `until`;
//!   `query` for find). Render answers a `MultiFetchResponse`, an absent point as `0` with
//!   `isAbsent` set; find a `GlobResponse` named after the query.
//! - `carbonapi_v3_pb` (`format=carbonapi_v3_pb` or `Accept: application/x-carbonapi-v3-pb`):
//!   the request is a `MultiFetchRequest` / `MultiGlobRequest` in the body of a GET (or
//!   POST). Each fetch has its own window and `pathExpression`, echoed in its answers with
//!   `requestStartTime`/`requestStopTime`; an absent point is NaN.
//! - `/_internal/capabilities/`: a `CapabilityResponse` whose first protocol,
//!   `carbonapi_v3_pb`, is the one carbonapi's `protocol: "auto"` then speaks.
//!
//! carbonapi's msgpack flavour (`protocol: "msgpack"`) is graphite-web's `format=msgpack`
//! with an `isLeaf` key in find answers: [`super::remote`] writes both spellings.
//!
//! A body that is not the message it should be is a 400; so is one asking for more fetches
//! or globs than `max_targets` (the body itself is bounded by `max_body_bytes`, which bounds
//! what decoding it allocates).

use prost::Message;

use crate::series::Series;

/// go-graphite's `carbonapi_v2_pb` messages.
#[allow(clippy::all, missing_docs)]
pub mod v2 {
    include!(concat!(env!("OUT_DIR"), "/carbonapi_v2_pb.rs"));
}

/// go-graphite's `carbonapi_v3_pb` messages.
#[allow(clippy::all, missing_docs)]
pub mod v3 {
    include!(concat!(env!("OUT_DIR"), "/carbonapi_v3_pb.rs"));
}

/// carbonapi's `Accept` header (and Content-Type) for `carbonapi_v3_pb`.
pub const V3_CONTENT_TYPE: &str = "application/x-carbonapi-v3-pb";
/// The Content-Type of `carbonapi_v2_pb` answers.
pub const V2_CONTENT_TYPE: &str = "application/x-protobuf";

/// A carbonapi protobuf protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    V2,
    V3,
}

impl Wire {
    /// The request's protocol: `Accept: application/x-carbonapi-v3-pb` is v3 whatever the
    /// format says (as go-carbon decides), else the `format` parameter's.
    pub fn of(format: Option<&str>, accept: &[&str]) -> Option<Wire> {
        if accept.contains(&V3_CONTENT_TYPE) {
            return Some(Wire::V3);
        }
        match format? {
            "protobuf" | "protobuf3" | "carbonapi_v2_pb" => Some(Wire::V2),
            "carbonapi_v3_pb" => Some(Wire::V3),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Wire::V2 => V2_CONTENT_TYPE,
            Wire::V3 => V3_CONTENT_TYPE,
        }
    }
}

fn decode<M: Message + Default>(what: &str, body: &[u8]) -> Result<M, String> {
    M::decode(body).map_err(|e| {
        format!("the request body is not a carbonapi_v3_pb {what} ({e}); carbonapi sends one with format=carbonapi_v3_pb")
    })
}

fn at_most(what: &str, n: usize, max: usize) -> Result<(), String> {
    if n > max {
        return Err(format!(
            "{n} {what} in one request, more than the limit of {max}; split the request (the limit is max_targets)"
        ));
    }
    Ok(())
}

/// One fetch of a v3 render request.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetch {
    /// What to fetch: a metric path or glob (any target carbide evaluates).
    pub name: String,
    /// carbonapi's target the fetch serves, echoed in each answer (`name` if empty).
    pub path_expression: String,
    pub start: i64,
    pub stop: i64,
}

/// The fetches of a v3 `MultiFetchRequest` body, at most `max` of them.
pub fn fetch_request(body: &[u8], max: usize) -> Result<Vec<Fetch>, String> {
    let req: v3::MultiFetchRequest = decode("MultiFetchRequest", body)?;
    at_most("fetches", req.metrics.len(), max)?;
    if req.metrics.is_empty() {
        return Err("the MultiFetchRequest asks for no metrics".into());
    }
    Ok(req
        .metrics
        .into_iter()
        .map(|m| Fetch {
            path_expression: if m.path_expression.is_empty() {
                m.name.clone()
            } else {
                m.path_expression
            },
            name: m.name,
            start: m.start_time,
            stop: m.stop_time,
        })
        .collect())
}

/// The queries of a v3 `MultiGlobRequest` body, at most `max` of them.
pub fn glob_request(body: &[u8], max: usize) -> Result<Vec<String>, String> {
    let req: v3::MultiGlobRequest = decode("MultiGlobRequest", body)?;
    at_most("globs", req.metrics.len(), max)?;
    if req.metrics.is_empty() {
        return Err("the MultiGlobRequest asks for no metrics".into());
    }
    Ok(req.metrics)
}

/// A `CapabilityRequest` body (carbonapi sends an empty one).
pub fn capability_request(body: &[u8]) -> Result<(), String> {
    decode::<v3::CapabilityRequest>("CapabilityRequest", body).map(|_| ())
}

fn v2_time(t: i64) -> i32 {
    t.clamp(i32::MIN.into(), i32::MAX.into()) as i32
}

/// A v2 render answer: the series of every target, absent points `0` with `isAbsent`.
pub fn render_v2(series: &[Series]) -> Vec<u8> {
    let metrics = series
        .iter()
        .map(|s| v2::FetchResponse {
            name: s.name.clone(),
            start_time: v2_time(s.start),
            stop_time: v2_time(s.end),
            step_time: v2_time(s.step),
            values: s.values.iter().map(|v| v.unwrap_or(0.0)).collect(),
            is_absent: s.values.iter().map(Option::is_none).collect(),
        })
        .collect();
    v2::MultiFetchResponse { metrics }.encode_to_vec()
}

/// One v3 answer: a series, the fetch it answers and its store schema's rollup.
pub struct Answer<'a> {
    pub fetch: &'a Fetch,
    pub series: Series,
    /// whisper's aggregation method name of the series (`average`, `sum`, …).
    pub consolidation: &'static str,
    pub x_files_factor: f64,
}

/// A v3 render answer: absent points NaN, the fetch's `pathExpression` and window echoed.
pub fn render_v3(answers: &[Answer<'_>]) -> Vec<u8> {
    let metrics = answers
        .iter()
        .map(|a| v3::FetchResponse {
            name: a.series.name.clone(),
            path_expression: a.fetch.path_expression.clone(),
            consolidation_func: a.consolidation.into(),
            start_time: a.series.start,
            stop_time: a.series.end,
            step_time: a.series.step,
            x_files_factor: a.x_files_factor as f32,
            high_precision_timestamps: false,
            values: a
                .series
                .values
                .iter()
                .map(|v| v.unwrap_or(f64::NAN))
                .collect(),
            applied_functions: Vec::new(),
            request_start_time: a.fetch.start,
            request_stop_time: a.fetch.stop,
        })
        .collect();
    v3::MultiFetchResponse { metrics }.encode_to_vec()
}

/// A find match: path and whether it is a leaf.
pub type Match<'a> = (&'a str, bool);

/// A v2 find answer for `query`.
pub fn find_v2(query: &str, matches: &[Match<'_>]) -> Vec<u8> {
    v2::GlobResponse {
        name: query.into(),
        matches: matches
            .iter()
            .map(|&(path, is_leaf)| v2::GlobMatch {
                path: path.into(),
                is_leaf,
            })
            .collect(),
    }
    .encode_to_vec()
}

/// A v3 find answer: one `GlobResponse` per query, in the request's order.
pub fn find_v3(per_query: &[(&str, Vec<Match<'_>>)]) -> Vec<u8> {
    v3::MultiGlobResponse {
        metrics: per_query
            .iter()
            .map(|(query, matches)| v3::GlobResponse {
                name: (*query).into(),
                matches: matches
                    .iter()
                    .map(|&(path, is_leaf)| v3::GlobMatch {
                        path: path.into(),
                        is_leaf,
                    })
                    .collect(),
            })
            .collect(),
    }
    .encode_to_vec()
}

/// The protocols carbide answers carbonapi in, best first (carbonapi's `auto` takes the
/// first).
pub const PROTOCOLS: [&str; 3] = ["carbonapi_v3_pb", "carbonapi_v2_pb", "msgpack"];

/// `/_internal/capabilities/`'s answer.
pub fn capabilities() -> Vec<u8> {
    v3::CapabilityResponse {
        supported_protocols: PROTOCOLS.iter().map(|p| (*p).into()).collect(),
        name: "carbide".into(),
        high_precision_timestamps: false,
        support_filtering_functions: false,
        // Any split of a request by carbonapi's maxBatchSize answers the same.
        like_splitted_requests: true,
        support_streaming: false,
    }
    .encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_from_format_and_accept() {
        for f in ["protobuf", "protobuf3", "carbonapi_v2_pb"] {
            assert_eq!(Wire::of(Some(f), &[]), Some(Wire::V2), "{f}");
        }
        assert_eq!(Wire::of(Some("carbonapi_v3_pb"), &[]), Some(Wire::V3));
        assert_eq!(Wire::of(None, &[V3_CONTENT_TYPE]), Some(Wire::V3));
        assert_eq!(Wire::of(Some("json"), &[V3_CONTENT_TYPE]), Some(Wire::V3));
        assert_eq!(Wire::of(Some("json"), &["application/json"]), None);
        assert_eq!(Wire::of(None, &[]), None);
    }

    #[test]
    fn v2_marks_absent_points() {
        let s = Series::new("a.b", 60, 240, 60, vec![Some(1.5), None, Some(-2.0)]);
        let r = v2::MultiFetchResponse::decode(&render_v2(&[s])[..]).unwrap();
        let m = &r.metrics[0];
        assert_eq!(
            (m.name.as_str(), m.start_time, m.stop_time, m.step_time),
            ("a.b", 60, 240, 60)
        );
        assert_eq!(m.values, [1.5, 0.0, -2.0]);
        assert_eq!(m.is_absent, [false, true, false]);
    }

    #[test]
    fn v3_echoes_the_request() {
        let body = v3::MultiFetchRequest {
            metrics: vec![v3::FetchRequest {
                name: "a.*".into(),
                start_time: 100,
                stop_time: 400,
                path_expression: "sum(a.*)".into(),
                ..Default::default()
            }],
        }
        .encode_to_vec();
        let fetches = fetch_request(&body, 10).unwrap();
        let a = Answer {
            fetch: &fetches[0],
            series: Series::new("a.b", 120, 420, 60, vec![None, Some(3.0)]),
            consolidation: "sum",
            x_files_factor: 0.5,
        };
        let r = v3::MultiFetchResponse::decode(&render_v3(&[a])[..]).unwrap();
        let m = &r.metrics[0];
        assert_eq!(m.path_expression, "sum(a.*)");
        assert_eq!((m.request_start_time, m.request_stop_time), (100, 400));
        assert_eq!((m.start_time, m.stop_time, m.step_time), (120, 420, 60));
        assert!(m.values[0].is_nan());
        assert_eq!(m.values[1], 3.0);
        assert_eq!(
            (m.consolidation_func.as_str(), m.x_files_factor),
            ("sum", 0.5)
        );
    }

    #[test]
    fn bad_bodies_are_refused_with_a_reason() {
        assert!(fetch_request(b"\xff\xff\xff", 10)
            .unwrap_err()
            .contains("MultiFetchRequest"));
        // Truncated: a length-delimited field longer than the body.
        assert!(glob_request(b"\x0a\x10abc", 10).is_err());
        assert!(fetch_request(b"", 10).unwrap_err().contains("no metrics"));
        let many = v3::MultiGlobRequest {
            metrics: vec!["a".into(); 11],
            ..Default::default()
        }
        .encode_to_vec();
        assert!(glob_request(&many, 10).unwrap_err().contains("max_targets"));
        assert!(capability_request(b"").is_ok());
        assert!(capability_request(b"\x0a").is_err());
    }
}
