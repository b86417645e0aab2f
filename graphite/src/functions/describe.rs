//! The registry as graphite-web's `/functions` endpoint describes it: a JSON object keyed by
//! function name, each `{name, function, description, module, group, params}` with params
//! `{name, type, required, default?, options?, multiple?}`. Pure: the HTTP server serves it.

use serde_json::{json, Map, Value as Json};

use super::{Default, Function, Param, FUNCTIONS};

/// graphite-web's module name: clients (Grafana) expect every function to come from here.
pub const MODULE: &str = "graphite.render.functions";

fn default_json(d: Default) -> Json {
    match d {
        Default::Int(i) => json!(i),
        // JSON has no infinity (graphite-web writes a non-JSON `1e9999`): "inf", as
        // functions.json records graphite-web's.
        Default::Float(f) if f.is_infinite() => {
            json!(if f > 0.0 { "inf" } else { "-inf" })
        }
        Default::Float(f) => json!(f),
        Default::Str(s) => json!(s),
        Default::Bool(b) => json!(b),
    }
}

/// One parameter as graphite-web's `Param.toJSON()`: optional keys only when set.
pub fn param_json(p: &Param) -> Json {
    let mut o = Map::new();
    o.insert("name".into(), json!(p.name));
    o.insert("type".into(), json!(p.ty.name()));
    if p.required {
        o.insert("required".into(), json!(true));
    }
    if p.multiple {
        o.insert("multiple".into(), json!(true));
    }
    // graphite-web describes no default for a required parameter, even where its function
    // has one (`highest`'s `n=1`).
    if let Some(d) = p.doc_default.or(p.default).filter(|_| !p.required) {
        o.insert("default".into(), default_json(d));
    }
    let mut options: Vec<&str> = match p.ty {
        super::ParamType::AggFunc if p.options.is_empty() => AGG_OPTIONS.to_vec(),
        // graphite-web lists the aggregation names and every aggregator function.
        super::ParamType::AggOrSeriesFunc if p.options.is_empty() => AGG_OPTIONS
            .iter()
            .copied()
            .chain(FUNCTIONS.iter().filter(|f| f.aggregator).map(|f| f.name))
            .collect(),
        _ => p.options.to_vec(),
    };
    // graphite-web sorts options (by their Python `str`); "True"/"False" are booleans there.
    options.sort_unstable();
    options.dedup();
    if !options.is_empty() {
        let json_option = |o: &str| match o {
            "True" => json!(true),
            "False" => json!(false),
            other => json!(other),
        };
        o.insert(
            "options".into(),
            Json::Array(options.into_iter().map(json_option).collect()),
        );
    }
    Json::Object(o)
}

/// graphite-web's aggregation function names (`aggFuncNames`).
const AGG_OPTIONS: &[&str] = &[
    "average", "avg", "avg_zero", "count", "current", "diff", "last", "max", "median", "min",
    "multiply", "range", "rangeOf", "stddev", "sum", "total",
];

/// `name(param, param=default, *multiple)`: the call signature, in graphite-web's style.
pub fn signature(f: &Function) -> String {
    let params: Vec<String> = f
        .params
        .iter()
        .map(|p| {
            let mut s = if p.multiple {
                format!("*{}", p.name)
            } else {
                p.name.to_string()
            };
            if let Some(d) = p.default {
                s.push('=');
                s.push_str(&match d {
                    Default::Str(v) => format!("'{v}'"),
                    Default::Bool(true) => "True".into(),
                    Default::Bool(false) => "False".into(),
                    Default::Int(i) => i.to_string(),
                    Default::Float(x) => crate::series::py_float(x),
                });
            }
            s
        })
        .collect();
    format!("{}({})", f.name, params.join(", "))
}

/// One function's entry.
pub fn function_json(f: &Function) -> Json {
    let mut o = Map::new();
    o.insert("name".into(), json!(f.name));
    o.insert("function".into(), json!(signature(f)));
    o.insert(
        "description".into(),
        json!(format!(
            "{} ({}). Behaves as graphite-web 1.1.10's function of the same name; see docs/functions.md.",
            signature(f),
            f.group
        )),
    );
    o.insert("module".into(), json!(MODULE));
    o.insert("group".into(), json!(f.group));
    if f.aggregator {
        o.insert("aggregator".into(), json!(true));
    }
    o.insert(
        "params".into(),
        Json::Array(f.params.iter().map(param_json).collect()),
    );
    Json::Object(o)
}

/// The whole `/functions` answer, keyed (and so sorted) by name.
pub fn functions_json() -> Json {
    Json::Object(
        FUNCTIONS
            .iter()
            .map(|f| (f.name.to_string(), function_json(f)))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_function_is_described_in_graphite_webs_shape() {
        let all = functions_json();
        let all = all.as_object().unwrap();
        assert_eq!(all.len(), FUNCTIONS.len());
        for (name, f) in all {
            assert_eq!(f["name"], json!(name));
            for key in ["function", "description", "module", "group"] {
                assert!(f[key].is_string(), "{name}: {key}");
            }
            for p in f["params"].as_array().unwrap() {
                assert!(
                    p["name"].is_string() && p["type"].is_string(),
                    "{name}: {p}"
                );
            }
        }
        let scale = &all["summarize"];
        assert_eq!(scale["group"], "Transform");
        assert_eq!(
            scale["params"][0],
            json!({"name": "seriesList", "type": "seriesList", "required": true})
        );
        assert_eq!(
            scale["params"][3],
            json!({"name": "alignToFrom", "type": "boolean", "default": false})
        );
        assert_eq!(scale["params"][2]["options"][0], "average");
        assert_eq!(
            scale["function"],
            "summarize(seriesList, intervalString, func='sum', alignToFrom=False)"
        );
        assert_eq!(all["sumSeries"]["aggregator"], true);
    }
}
