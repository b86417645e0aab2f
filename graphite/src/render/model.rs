//! The `format=json` render body.
//!
//! graphite-web 1.1.10 (`render/views.py` `renderViewJson`) builds
//! `[dict(target=name, tags=dict(series.tags), datapoints=[[value, timestamp], ...])]`, runs
//! Python's `json.dumps` over it (separators `", "` / `": "`, `ensure_ascii`, `repr` floats,
//! `NaN` / `Infinity` / `-Infinity` for the non-finite ones) and then replaces the text
//! `NaN,` with `null,` and `Infinity,` with `1e9999,`. So in a datapoint a NaN arrives as
//! `null`, +∞ as `1e9999` and −∞ as `-1e9999`. [`to_json`] reproduces those bytes;
//! [`from_json`] reads them back (and also the raw `NaN`/`Infinity` tokens, integers, compact
//! or pretty spacing, keys in any order, unknown keys skipped), since carbonapi and other
//! render servers differ in these details.

use std::fmt::Write as _;

use crate::series::push_py_float;

/// One series of a render answer.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedSeries {
    /// The series name (`target` in the JSON): the path or the function's name for it
    /// (empty when graphite-web wrote `null`).
    pub target: String,
    /// Tags in the order graphite-web emitted them (`name` first for plain series).
    pub tags: Vec<(String, String)>,
    /// `(value, timestamp)`; `None` where graphite-web wrote `null` (no data, or NaN).
    pub datapoints: Vec<(Option<f64>, i64)>,
}

impl RenderedSeries {
    /// The values alone, oldest first.
    pub fn values(&self) -> impl Iterator<Item = Option<f64>> + '_ {
        self.datapoints.iter().map(|(v, _)| *v)
    }

    /// The value of tag `key`, if present.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A render body that is not the expected JSON shape: where and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("render JSON at byte {offset}: {message}")]
pub struct ModelError {
    /// Byte offset of the problem in the body.
    pub offset: usize,
    /// What was expected.
    pub message: String,
}

/// Encode as graphite-web 1.1.10 does for `format=json` (without `pretty`).
pub fn to_json(series: &[RenderedSeries]) -> String {
    let mut out = String::with_capacity(
        2 + series
            .iter()
            .map(|s| json_capacity(&s.target, &s.tags, s.datapoints.len()))
            .sum::<usize>(),
    );
    out.push('[');
    for (i, s) in series.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        push_series(&mut out, &s.target, &s.tags, s.datapoints.iter().copied());
    }
    out.push(']');
    out
}

/// A guess of the bytes [`push_series`] writes for a series of `points` points (with the
/// `", "` before it): `[12.345678901234567, 1796569990], ` is 35 bytes, and a smaller guess
/// made the body of a long series grow (and be copied) once or twice.
pub fn json_capacity(target: &str, tags: &[(String, String)], points: usize) -> usize {
    points * 36
        + target.len()
        + tags
            .iter()
            .map(|(k, v)| k.len() + v.len() + 8)
            .sum::<usize>()
        + 40
}

/// One series' object of a [`to_json`] body, `{"target": ..., "tags": {...}, "datapoints":
/// [...]}`, appended to `out`; the points are `(value, timestamp)` as graphite-web writes them.
/// A body written straight from the evaluated series (no [`RenderedSeries`] in between) is
/// byte for byte the one [`to_json`] writes.
pub fn push_series(
    out: &mut String,
    target: &str,
    tags: &[(String, String)],
    points: impl Iterator<Item = (Option<f64>, i64)>,
) {
    out.push_str("{\"target\": ");
    write_py_str(out, target);
    out.push_str(", \"tags\": {");
    for (j, (k, v)) in tags.iter().enumerate() {
        if j > 0 {
            out.push_str(", ");
        }
        write_py_str(out, k);
        out.push_str(": ");
        write_py_str(out, v);
    }
    out.push_str("}, \"datapoints\": [");
    let mut ts_buf = itoa::Buffer::new();
    for (j, (v, ts)) in points.enumerate() {
        if j > 0 {
            out.push_str(", ");
        }
        out.push('[');
        match v {
            None => out.push_str("null"),
            Some(x) if x.is_nan() => out.push_str("null"),
            Some(x) if x.is_infinite() => out.push_str(if x > 0.0 { "1e9999" } else { "-1e9999" }),
            Some(x) => push_py_float(out, x),
        }
        out.push_str(", ");
        out.push_str(ts_buf.format(ts));
        out.push(']');
    }
    out.push_str("]}");
}

/// Python's `json.dumps` string encoding with `ensure_ascii=True`.
pub fn write_py_str(out: &mut String, s: &str) {
    out.push('"');
    write_py_str_body(out, s);
    out.push('"');
}

/// [`write_py_str`] without the quotes.
pub fn write_py_str_body(out: &mut String, s: &str) {
    // Most names need no escape: copied whole.
    if s.bytes()
        .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
    {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (' '..='~').contains(&c) => out.push(c),
            c => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
}

/// Decode a render body. Tag values that are not strings are kept as their JSON text.
pub fn from_json(body: &[u8]) -> Result<Vec<RenderedSeries>, ModelError> {
    let mut p = Parser { s: body, i: 0 };
    let mut out = Vec::new();
    p.ws();
    p.expect(b'[')?;
    p.ws();
    if p.eat(b']') {
        p.end()?;
        return Ok(out);
    }
    loop {
        out.push(p.series()?);
        p.ws();
        if p.eat(b',') {
            p.ws();
            continue;
        }
        p.expect(b']')?;
        break;
    }
    p.end()?;
    Ok(out)
}

/// Nesting deeper than this in skipped values is refused (hostile bodies).
const MAX_SKIP_DEPTH: usize = 64;

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn err<T>(&self, message: impl Into<String>) -> Result<T, ModelError> {
        Err(ModelError {
            offset: self.i,
            message: message.into(),
        })
    }

    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\n' | b'\r' | b'\t') {
            self.i += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.s.get(self.i) == Some(&b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, b: u8) -> Result<(), ModelError> {
        if self.eat(b) {
            Ok(())
        } else {
            self.err(format!("expected '{}'", b as char))
        }
    }

    fn end(&mut self) -> Result<(), ModelError> {
        self.ws();
        if self.i == self.s.len() {
            Ok(())
        } else {
            self.err("trailing data after the series list")
        }
    }

    fn series(&mut self) -> Result<RenderedSeries, ModelError> {
        self.expect(b'{')?;
        let (mut target, mut tags, mut datapoints) = (None, Vec::new(), None);
        self.ws();
        if !self.eat(b'}') {
            loop {
                self.ws();
                let key = self.string()?;
                self.ws();
                self.expect(b':')?;
                self.ws();
                match key.as_str() {
                    // graphite-web writes `null` when a function set the name to None.
                    "target" if self.s[self.i..].starts_with(b"null") => {
                        self.i += 4;
                        target = Some(String::new());
                    }
                    "target" => target = Some(self.string()?),
                    "tags" => tags = self.tags()?,
                    "datapoints" => datapoints = Some(self.datapoints()?),
                    _ => self.skip(0)?,
                }
                self.ws();
                if self.eat(b',') {
                    continue;
                }
                self.expect(b'}')?;
                break;
            }
        }
        let Some(target) = target else {
            return self.err("a series without \"target\"");
        };
        Ok(RenderedSeries {
            target,
            tags,
            datapoints: datapoints.unwrap_or_default(),
        })
    }

    fn tags(&mut self) -> Result<Vec<(String, String)>, ModelError> {
        let mut tags = Vec::new();
        if self.eat(b'n') {
            return self.lit(b"ull").map(|_| tags);
        }
        self.expect(b'{')?;
        self.ws();
        if self.eat(b'}') {
            return Ok(tags);
        }
        loop {
            self.ws();
            let k = self.string()?;
            self.ws();
            self.expect(b':')?;
            self.ws();
            let v = if self.s.get(self.i) == Some(&b'"') {
                self.string()?
            } else {
                let start = self.i;
                self.skip(0)?;
                String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
            };
            tags.push((k, v));
            self.ws();
            if self.eat(b',') {
                continue;
            }
            self.expect(b'}')?;
            return Ok(tags);
        }
    }

    fn datapoints(&mut self) -> Result<Vec<(Option<f64>, i64)>, ModelError> {
        let mut pts = Vec::new();
        self.expect(b'[')?;
        self.ws();
        if self.eat(b']') {
            return Ok(pts);
        }
        loop {
            self.ws();
            self.expect(b'[')?;
            self.ws();
            let v = self.value()?;
            self.ws();
            self.expect(b',')?;
            self.ws();
            let ts = match self.value()? {
                Some(t) if t.is_finite() && t.fract() == 0.0 => t as i64,
                _ => return self.err("a datapoint timestamp must be an integer"),
            };
            self.ws();
            self.expect(b']')?;
            pts.push((v, ts));
            self.ws();
            if self.eat(b',') {
                continue;
            }
            self.expect(b']')?;
            return Ok(pts);
        }
    }

    fn lit(&mut self, rest: &[u8]) -> Result<(), ModelError> {
        if self.s[self.i..].starts_with(rest) {
            self.i += rest.len();
            Ok(())
        } else {
            self.err("unknown literal")
        }
    }

    /// A number, `null`, or Python's `NaN` / `Infinity` / `-Infinity`. NaN is `None`.
    fn value(&mut self) -> Result<Option<f64>, ModelError> {
        let rest = &self.s[self.i..];
        for (word, v) in [
            (&b"null"[..], None),
            (b"NaN", None),
            (b"Infinity", Some(f64::INFINITY)),
            (b"-Infinity", Some(f64::NEG_INFINITY)),
        ] {
            if rest.starts_with(word) {
                self.i += word.len();
                return Ok(v);
            }
        }
        let start = self.i;
        while self.i < self.s.len()
            && matches!(
                self.s[self.i],
                b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'
            )
        {
            self.i += 1;
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
        // Rust's parser turns an out-of-range exponent (`1e9999`) into ±∞, as Python does.
        match text.parse::<f64>() {
            Ok(v) if !text.is_empty() => Ok(Some(v)),
            _ => {
                self.i = start;
                self.err("expected a number or null")
            }
        }
    }

    fn string(&mut self) -> Result<String, ModelError> {
        self.expect(b'"')?;
        let mut out = String::new();
        loop {
            let start = self.i;
            while self.i < self.s.len() && !matches!(self.s[self.i], b'"' | b'\\') {
                self.i += 1;
            }
            match std::str::from_utf8(&self.s[start..self.i]) {
                Ok(t) => out.push_str(t),
                Err(_) => return self.err("invalid UTF-8 in a string"),
            }
            match self.s.get(self.i) {
                None => return self.err("unterminated string"),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                _ => {
                    self.i += 1;
                    let Some(&e) = self.s.get(self.i) else {
                        return self.err("unterminated string");
                    };
                    self.i += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let c = if (0xD800..0xDC00).contains(&hi)
                                && self.s[self.i..].starts_with(b"\\u")
                            {
                                self.i += 2;
                                let lo = self.hex4()?;
                                char::from_u32(
                                    0x10000
                                        + ((hi - 0xD800) << 10)
                                        + (lo.wrapping_sub(0xDC00) & 0x3FF),
                                )
                            } else {
                                char::from_u32(hi)
                            };
                            out.push(c.unwrap_or('\u{FFFD}'));
                        }
                        _ => return self.err("bad escape in a string"),
                    }
                }
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, ModelError> {
        let h = self
            .s
            .get(self.i..self.i + 4)
            .and_then(|h| std::str::from_utf8(h).ok());
        match h.and_then(|h| u32::from_str_radix(h, 16).ok()) {
            Some(v) => {
                self.i += 4;
                Ok(v)
            }
            None => self.err("bad \\u escape"),
        }
    }

    /// Skip any JSON value (unknown keys).
    fn skip(&mut self, depth: usize) -> Result<(), ModelError> {
        if depth > MAX_SKIP_DEPTH {
            return self.err("nested too deeply");
        }
        self.ws();
        match self.s.get(self.i) {
            Some(b'"') => self.string().map(|_| ()),
            Some(b'[') | Some(b'{') => {
                let close = if self.s[self.i] == b'[' { b']' } else { b'}' };
                self.i += 1;
                self.ws();
                if self.eat(close) {
                    return Ok(());
                }
                loop {
                    if close == b'}' {
                        self.ws();
                        self.string()?;
                        self.ws();
                        self.expect(b':')?;
                    }
                    self.skip(depth + 1)?;
                    self.ws();
                    if self.eat(b',') {
                        continue;
                    }
                    return self.expect(close);
                }
            }
            Some(b't') => self.lit(b"true"),
            Some(b'f') => self.lit(b"false"),
            _ => self.value().map(|_| ()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_graphite_web() {
        // The expected text is what graphite-web 1.1.10's renderViewJson produces (Python 3
        // json.dumps plus its two replaces) for the same series.
        let s = RenderedSeries {
            target: "a\u{e9}\"b".into(),
            tags: vec![("name".into(), "x".into())],
            datapoints: vec![
                (Some(1.0), 1),
                (None, 2),
                (Some(f64::NAN), 3),
                (Some(f64::INFINITY), 4),
                (Some(f64::NEG_INFINITY), 5),
                (Some(1e-05), 6),
                (Some(1.5e+20), 7),
                (Some(0.1), 8),
                (Some(100.0), 9),
                (Some(123456789012345678.0), 10),
            ],
        };
        let want = r#"[{"target": "a\u00e9\"b", "tags": {"name": "x"}, "datapoints": [[1.0, 1], [null, 2], [null, 3], [1e9999, 4], [-1e9999, 5], [1e-05, 6], [1.5e+20, 7], [0.1, 8], [100.0, 9], [1.2345678901234568e+17, 10]]}]"#;
        assert_eq!(to_json(std::slice::from_ref(&s)), want);
        let back = from_json(want.as_bytes()).unwrap();
        assert_eq!(back[0].target, s.target);
        assert_eq!(back[0].datapoints[2], (None, 3), "NaN arrives as null");
        assert_eq!(back[0].datapoints[3], (Some(f64::INFINITY), 4));
        assert_eq!(back[0].datapoints[4], (Some(f64::NEG_INFINITY), 5));
        assert_eq!(back[0].datapoints[9], (Some(123456789012345678.0), 10));
        assert_eq!(to_json(&[]), "[]");
    }

    #[test]
    fn decodes_variants_other_servers_send() {
        let body = br#" [ {"datapoints":[[1,10],[NaN,20],[Infinity,30],[-Infinity, 40]],"extra":{"a":[1,{"b":null}]},"target":"x\ud83d\ude00","tags":{"n":1,"s":"v"}} , {"target":"y","datapoints":[]} ] "#;
        let s = from_json(body).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].target, "x\u{1F600}");
        assert_eq!(s[0].tag("n"), Some("1"));
        assert_eq!(s[0].tag("s"), Some("v"));
        assert_eq!(
            s[0].values().collect::<Vec<_>>(),
            vec![
                Some(1.0),
                None,
                Some(f64::INFINITY),
                Some(f64::NEG_INFINITY)
            ]
        );
        assert!(s[1].datapoints.is_empty() && s[1].tags.is_empty());
        assert_eq!(from_json(b"[]").unwrap(), vec![]);
    }

    #[test]
    fn bad_bodies_say_where() {
        for (body, at) in [
            (&b"{\"error\": \"x\"}"[..], 0),
            (b"[{\"tags\": {}}]", 13),
            (b"[{\"target\": \"a\", \"datapoints\": [[1, 1.5]]}]", 39),
            (b"[{\"target\": \"a\"}] x", 18),
            (b"[{\"target\": \"a", 14),
        ] {
            let e = from_json(body).unwrap_err();
            assert_eq!(e.offset, at, "{e} for {}", String::from_utf8_lossy(body));
        }
        let deep = format!(
            "[{{\"target\": \"a\", \"x\": {}{}}}]",
            "[".repeat(100),
            "]".repeat(100)
        );
        assert!(from_json(deep.as_bytes())
            .unwrap_err()
            .message
            .contains("deeply"));
    }

    #[test]
    fn golden_bodies_round_trip() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/conformance/golden");
        let mut checked = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            let cases: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
            for case in cases {
                if case["status"] != 200 {
                    continue;
                }
                let body = serde_json::to_string(&case["body"]).unwrap();
                let series = from_json(body.as_bytes())
                    .unwrap_or_else(|e| panic!("{e}: {}", &body[..body.len().min(200)]));
                assert_eq!(series.len(), case["body"].as_array().unwrap().len());
                let again = from_json(to_json(&series).as_bytes()).unwrap();
                // Equal, NaN-free: NaN never survives (graphite-web writes null).
                assert_eq!(again, series);
                checked += 1;
            }
        }
        assert!(checked > 50, "{checked}");
    }
}
