//! A time series as graphite-web's `TimeSeries` models it, plus the helpers every function
//! shares: consolidation, step normalisation (`normalize()`), tag parsing and Python-compatible
//! number formatting for series names (`%g`, `str(float)`).
//!
//! Semantics follow graphite-web 1.1.10 (`webapp/graphite/render/datalib.py`):
//! - `values[i]` is the value at `start + i * step`; `end` is carried as given (whisper's
//!   `untilInterval`, exclusive), so usually `values.len() == (end - start) / step`, but
//!   functions may set `end` independently, exactly as graphite-web does.
//! - consolidation groups `valuesPerPoint` consecutive values from index 0 with the series'
//!   consolidation function, honouring `xFilesFactor`.

use std::borrow::Cow;
use std::collections::BTreeMap;

/// How a series folds several points into one (graphite-web's `consolidationFunc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consolidation {
    Average,
    AvgZero,
    Sum,
    Min,
    Max,
    First,
    Last,
}

impl Consolidation {
    /// Parses graphite-web's names (`avg` is an alias of `average`).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "average" | "avg" => Self::Average,
            "avg_zero" => Self::AvgZero,
            "sum" => Self::Sum,
            "min" => Self::Min,
            "max" => Self::Max,
            "first" => Self::First,
            "last" => Self::Last,
            _ => return None,
        })
    }

    /// Folds one bucket of `total` raw points, of which `usable` are the non-null ones
    /// (with `avg_zero`, nulls count as zeros).
    fn fold(self, usable: &[f64]) -> f64 {
        match self {
            Self::Average | Self::AvgZero => usable.iter().sum::<f64>() / usable.len() as f64,
            Self::Sum => usable.iter().sum(),
            Self::Min => usable.iter().copied().fold(f64::INFINITY, f64::min),
            Self::Max => usable.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            Self::First => usable[0],
            Self::Last => usable[usable.len() - 1],
        }
    }
}

/// One named series of evenly spaced points; nulls are `None`.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The display name (graphite-web's `target` in JSON output).
    pub name: String,
    /// The path expression the series came from; functions that rename a series via
    /// `series.copy(name=...)` or set `pathExpression = name` reset it to the new name.
    pub path_expression: String,
    /// Timestamp of `values[0]`, epoch seconds.
    pub start: i64,
    /// End of the series, epoch seconds (exclusive, as whisper's `untilInterval`).
    pub end: i64,
    /// Seconds between points.
    pub step: i64,
    /// The points; `None` is a null.
    pub values: Vec<Option<f64>>,
    /// How the series consolidates when combined with coarser series or rendered.
    pub consolidation: Consolidation,
    /// Fraction of non-null points a consolidated bucket needs to be non-null.
    pub x_files_factor: f64,
    /// Tags: at least `name`; parsed from `name;k=v` names; functions add their own.
    pub tags: BTreeMap<String, String>,
    /// How the series is drawn in a picture (set by the Graph functions); never in JSON.
    pub draw: Draw,
}

/// graphite-web's `series.color` and `series.options`: what the Graph functions (`color`,
/// `alpha`, `lineWidth`, `dashed`, `secondYAxis`, `drawAsInfinite`, `stacked`,
/// `areaBetween`, `threshold`) ask of the picture. `format=json` ignores it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Draw {
    /// A colour name, `rrggbb` or `rrggbbaa` (graphite-web's `series.color`).
    pub color: Option<String>,
    pub alpha: Option<f64>,
    pub line_width: Option<f64>,
    /// Dash length in pixels.
    pub dashed: Option<f64>,
    pub second_y_axis: bool,
    pub draw_as_infinite: bool,
    /// Filled down to the previous stacked series (or zero).
    pub stacked: bool,
    /// Drawn fully transparent (the lower series of `areaBetween`).
    pub invisible: bool,
}

impl Series {
    /// A series as graphite-web's `TimeSeries(name, start, end, step, values)` builds it:
    /// path expression = name, average consolidation, xFilesFactor 0, tags parsed from name.
    pub fn new(
        name: impl Into<String>,
        start: i64,
        end: i64,
        step: i64,
        values: Vec<Option<f64>>,
    ) -> Self {
        let name = name.into();
        Self {
            path_expression: name.clone(),
            tags: parse_tags(&name),
            name,
            start,
            end,
            step,
            values,
            consolidation: Consolidation::Average,
            x_files_factor: 0.0,
            draw: Draw::default(),
        }
    }

    /// graphite-web's `series.copy(name=..., values=...)`: same times, consolidation,
    /// xFilesFactor and tags; the path expression becomes the new name. The drawing options
    /// are kept too (graphite-web drops them here but keeps them through its in-place
    /// transforms; carbide keeps them through both, so `scale(color(x,'red'),2)` stays red).
    pub fn derive(&self, name: String, values: Vec<Option<f64>>) -> Self {
        Self {
            path_expression: name.clone(),
            name,
            start: self.start,
            end: self.end,
            step: self.step,
            values,
            consolidation: self.consolidation,
            x_files_factor: self.x_files_factor,
            tags: self.tags.clone(),
            draw: self.draw.clone(),
        }
    }

    /// Renames the series and resets its path expression, as graphite-web's in-place
    /// transforms do (`series.name = ...; series.pathExpression = series.name`).
    pub fn rename(&mut self, name: String) {
        self.path_expression.clone_from(&name);
        self.name = name;
    }

    /// Sets a tag (graphite-web's `Tags.__setitem__` stores `str(value)`).
    pub fn tag(&mut self, key: &str, value: impl Into<String>) {
        self.tags.insert(key.to_string(), value.into());
    }

    /// The values consolidated `vpp` points at a time (graphite-web's
    /// `__consolidatingGenerator`); `vpp <= 1` returns them unchanged.
    pub fn consolidated(&self, vpp: usize) -> Vec<Option<f64>> {
        if vpp <= 1 {
            return self.values.clone();
        }
        let mut out = Vec::with_capacity(self.values.len().div_ceil(vpp));
        // A bucket holds at most the series' points (an LCM step can make `vpp` huge).
        let mut buf = Vec::with_capacity(vpp.min(self.values.len()));
        for chunk in self.values.chunks(vpp) {
            buf.clear();
            let mut non_null = 0usize;
            for v in chunk {
                match v {
                    Some(x) => {
                        buf.push(*x);
                        non_null += 1;
                    }
                    None if self.consolidation == Consolidation::AvgZero => buf.push(0.0),
                    None => {}
                }
            }
            // graphite-web divides by valuesPerPoint even for a short trailing chunk.
            if non_null > 0 && non_null as f64 / vpp as f64 >= self.x_files_factor {
                out.push(Some(self.consolidation.fold(&buf)));
            } else {
                out.push(None);
            }
        }
        out
    }
}

/// Tags of a series name as graphite-web's tag database parses them: `a.b;k=v;k2=v2` gives
/// `{name: a.b, k: v, k2: v2}`; a name that looks like a function call (`^[a-z]+\(.+\)$`) or
/// does not parse keeps only `{name: <name>}`.
pub fn parse_tags(name: &str) -> BTreeMap<String, String> {
    if !looks_like_call(name) {
        if let Ok(tags) = crate::tags::parse(name) {
            return tags;
        }
    }
    BTreeMap::from([("name".to_string(), name.to_string())])
}

/// `re.match('^[a-z]+[(].+[)]$', name, re.IGNORECASE)`.
fn looks_like_call(name: &str) -> bool {
    let letters = name.bytes().take_while(u8::is_ascii_alphabetic).count();
    letters > 0
        && name.len() >= letters + 3
        && name[letters..].starts_with('(')
        && name.ends_with(')')
}

/// The result of [`normalize`]: every series' values consolidated to the common step
/// (borrowed when a series already has that step).
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized<'a> {
    pub values: Vec<Cow<'a, [Option<f64>]>>,
    pub start: i64,
    pub end: i64,
    pub step: i64,
}

impl Normalized<'_> {
    /// Length of the longest consolidated series (graphite-web zips with `izip_longest`).
    pub fn len(&self) -> usize {
        self.values.iter().map(|v| v.len()).max().unwrap_or(0)
    }

    /// True when there are no points at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row `i` across all series, `None` past the end of a shorter one.
    pub fn row(&self, i: usize, buf: &mut Vec<Option<f64>>) {
        buf.clear();
        buf.extend(self.values.iter().map(|v| v.get(i).copied().flatten()));
    }
}

/// graphite-web's `normalize()`: the LCM of all steps, each series consolidated to it,
/// start = min start, end = max end trimmed to a whole number of steps. Values are then
/// combined by index (graphite-web does not align differing starts). `None` when empty.
pub fn normalize<'a>(series: &[&'a Series]) -> Option<Normalized<'a>> {
    if series.is_empty() {
        return None;
    }
    let step = series.iter().map(|s| s.step).fold(series[0].step, lcm);
    let start = series.iter().map(|s| s.start).min().unwrap_or(0);
    let mut end = series.iter().map(|s| s.end).max().unwrap_or(0);
    if step > 0 {
        end -= end.saturating_sub(start).rem_euclid(step);
    }
    let values = series
        .iter()
        .map(|s| {
            let vpp = if s.step > 0 {
                usize::try_from(step / s.step).unwrap_or(usize::MAX)
            } else {
                1
            };
            if vpp <= 1 {
                Cow::Borrowed(s.values.as_slice())
            } else {
                Cow::Owned(s.consolidated(vpp))
            }
        })
        .collect();
    Some(Normalized {
        values,
        start,
        end,
        step,
    })
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Least common multiple as graphite-web computes it (saturating at `i64::MAX`: a step that
/// large consolidates every series to one point).
pub fn lcm(a: i64, b: i64) -> i64 {
    if a == b {
        return a;
    }
    let (a, b) = if a < b { (b, a) } else { (a, b) };
    let g = gcd(a, b);
    if g == 0 {
        return 0;
    }
    (a / g).saturating_mul(b)
}

/// Python's `'%g' % x`.
pub fn fmt_g(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if x == 0.0 {
        return if x.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    // Six significant digits, rounded exactly; the exponent after rounding decides the form.
    let sci = format!("{x:.5e}");
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        let decimals = (5 - exp).max(0) as usize;
        strip_zeros(format!("{x:.decimals$}"))
    } else {
        let mant = strip_zeros(mant.to_string());
        format!("{mant}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    }
}

fn strip_zeros(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Python's `str(float)` / `repr(float)`: shortest round-trip digits, `2.0`, `0.0001`,
/// `1e-05`, `1e+16`, `inf`, `nan`.
pub fn py_float(x: f64) -> String {
    let mut out = String::new();
    push_py_float(&mut out, x);
    out
}

/// [`py_float`] appended to `out`, without allocating on the common path (render bodies
/// format every point).
pub fn push_py_float(out: &mut String, x: f64) {
    // Where both use positional notation, the shortest round-trip text (Schubfach/Żmij, the
    // same digits as ryu, about twice as fast: ~30 % of a render's JSON encoding was ryu) is
    // Python's (`5.0`, `0.1`, `-0.0`, `123.456`).
    let a = x.abs();
    if a == 0.0 || (1e-4..1e15).contains(&a) {
        out.push_str(zmij::Buffer::new().format_finite(x));
    } else {
        out.push_str(&py_float_general(x));
    }
}

/// `x`'s shortest round-trip digits (no leading or trailing zeros; "0" for zero) and the decimal
/// exponent of the first one, read from zmij's text ("123.456", "0.0001", "1.5e+300").
fn shortest_digits(x: f64) -> (bool, String, i32) {
    let mut buf = zmij::Buffer::new();
    let text = buf.format_finite(x);
    let (neg, text) = match text.strip_prefix('-') {
        Some(t) => (true, t),
        None => (false, text),
    };
    let (mant, exp10) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (text, 0),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    let all: String = int.chars().chain(frac.chars()).collect();
    let lead = all.bytes().take_while(|&b| b == b'0').count();
    let digits = all[lead..].trim_end_matches('0');
    if digits.is_empty() {
        return (neg, "0".into(), 0);
    }
    (
        neg,
        digits.into(),
        int.len() as i32 - 1 - lead as i32 + exp10,
    )
}

/// The general rule behind [`py_float`], without the fast path.
pub(crate) fn py_float_general(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    // Shortest round-trip digits, with ties broken to even as Python's repr does. Rust's `{:e}`
    // breaks an exact tie the other way (677851467263348.25 -> "...348.3", Python "...348.2").
    let (neg, digits, exp) = shortest_digits(x);
    let sign = if neg { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let n = digits.len() as i32;
        let body = if exp < 0 {
            format!("0.{}{}", "0".repeat((-exp - 1) as usize), digits)
        } else if exp + 1 >= n {
            format!("{}{}.0", digits, "0".repeat((exp + 1 - n) as usize))
        } else {
            let (a, b) = digits.split_at((exp + 1) as usize);
            format!("{a}.{b}")
        };
        format!("{sign}{body}")
    } else {
        let (a, b) = digits.split_at(1);
        let m = if b.is_empty() {
            a.to_string()
        } else {
            format!("{a}.{b}")
        };
        format!(
            "{sign}{m}e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fmt_g_matches_python() {
        for (x, want) in [
            (2.0, "2"),
            (2.5, "2.5"),
            (100.0, "100"),
            (0.1, "0.1"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (123456.0, "123456"),
            (1234567.0, "1.23457e+06"),
            (-3.25, "-3.25"),
            (1.0 / 3.0, "0.333333"),
            (1e100, "1e+100"),
            (999999.5, "1e+06"),
            (f64::INFINITY, "inf"),
            (0.0, "0"),
        ] {
            assert_eq!(fmt_g(x), want, "{x}");
        }
    }

    #[test]
    fn py_float_matches_python() {
        for (x, want) in [
            (2.0, "2.0"),
            (2.5, "2.5"),
            (0.1, "0.1"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (1e16, "1e+16"),
            (1234567.0, "1234567.0"),
            (-0.5, "-0.5"),
            (1.5e300, "1.5e+300"),
            (f64::NEG_INFINITY, "-inf"),
            // An exact tie between two shortest texts: Python's repr rounds half to even.
            (f64::from_bits(4828778012651908002), "677851467263348.2"),
            (
                f64::from_bits(4828778012651908002) * 10.0,
                "6778514672633482.0",
            ),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1e22, "1e+22"),
            (5e-324, "5e-324"),
        ] {
            assert_eq!(py_float(x), want, "{x}");
            assert_eq!(py_float_general(x), want, "general rule for {x}");
        }
    }

    proptest::proptest! {
        /// The fast path (zmij's shortest digits) writes what the general rule writes, for
        /// any bit pattern and for values with few decimals (the usual metric).
        #[test]
        fn fast_path_is_the_general_rule(bits in proptest::prelude::any::<u64>(), k in -10_000_000i64..10_000_000, d in 0i32..6) {
            for x in [f64::from_bits(bits), k as f64 / 10f64.powi(d)] {
                if x.is_finite() {
                    let mut fast = String::new();
                    push_py_float(&mut fast, x);
                    proptest::prop_assert_eq!(fast, py_float_general(x), "{}", x);
                }
            }
        }
    }

    #[test]
    fn tags_from_name() {
        let t = parse_tags("cpu.load;host=a;dc=x");
        assert_eq!(t.get("name").map(String::as_str), Some("cpu.load"));
        assert_eq!(t.get("host").map(String::as_str), Some("a"));
        let t = parse_tags("sumSeries(a;b=c)");
        assert_eq!(t.len(), 1);
        assert_eq!(t["name"], "sumSeries(a;b=c)");
    }

    #[test]
    fn consolidation_honours_xff_and_func() {
        let mut s = Series::new(
            "a",
            0,
            60,
            10,
            vec![Some(1.0), None, Some(3.0), None, None, Some(6.0)],
        );
        assert_eq!(s.consolidated(2), vec![Some(1.0), Some(3.0), Some(6.0)]);
        s.consolidation = Consolidation::Sum;
        assert_eq!(s.consolidated(4), vec![Some(4.0), Some(6.0)]);
        s.x_files_factor = 0.6;
        assert_eq!(s.consolidated(4), vec![None, None]);
        s.consolidation = Consolidation::AvgZero;
        s.x_files_factor = 0.0;
        assert_eq!(s.consolidated(3), vec![Some(4.0 / 3.0), Some(2.0)]);
    }

    #[test]
    fn normalize_uses_lcm_and_trims_end() {
        let a = Series::new("a", 0, 60, 10, vec![Some(1.0); 6]);
        let b = Series::new("b", 0, 75, 15, vec![Some(2.0); 5]);
        let n = normalize(&[&a, &b]).unwrap();
        assert_eq!((n.start, n.end, n.step), (0, 60, 30));
        assert_eq!(n.values[0].len(), 2);
        assert_eq!(n.values[1].len(), 3);
        assert_eq!(n.len(), 3);
        assert!(normalize(&[]).is_none());
    }
}
