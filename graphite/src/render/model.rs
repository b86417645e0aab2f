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
    push_series_head(out, target, tags);
    push_points(out, points);
    out.push_str("]}");
}

/// [`push_series`] for points at `start`, `start + step`, ... (`values[i]` at `start + i *
/// step`, the timestamps within `i64`), written by [`push_values`].
pub fn push_series_values(
    out: &mut String,
    target: &str,
    tags: &[(String, String)],
    values: &[Option<f64>],
    start: i64,
    step: i64,
) {
    push_series_head(out, target, tags);
    push_values(out, values, start, step);
    out.push_str("]}");
}

/// `{"target": ..., "tags": {...}, "datapoints": [` of [`push_series`].
fn push_series_head(out: &mut String, target: &str, tags: &[(String, String)]) {
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
}

/// The points of [`push_series`] from any `(value, timestamp)` list, one piece at a time.
fn push_points(out: &mut String, points: impl Iterator<Item = (Option<f64>, i64)>) {
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
}

/// The datapoints `[value, timestamp], ...` of evenly spaced values (`values[i]` at `start +
/// i * step`), the bytes [`push_points`] writes for them. A 289 KB body is 8,640 of these, so
/// each is written straight into the buffer's spare capacity with fixed-size moves instead of
/// a call to `memcpy` per piece: a number's text as two overlapping 16/8/4-byte copies, the
/// timestamp as one 16-byte store of digits kept in a register (stepped by a decimal add,
/// [`Stamps`]), the separators as 2- and 4-byte stores. The numbers are formatted
/// [`BATCH`] at a time before their points are written: a copy loading a number's text right
/// after zmij stored it waits for those stores to complete (store forwarding fails on the
/// mixed sizes), which cost as much as the formatting itself.
pub fn push_values(out: &mut String, values: &[Option<f64>], start: i64, step: i64) {
    let mut stamps = Stamps::new(start, step);
    let mut numbers: [zmij::Buffer; BATCH] = std::array::from_fn(|_| zmij::Buffer::new());
    let mut general: [String; BATCH] = Default::default();
    // SAFETY: only ASCII is written, so `out` stays UTF-8.
    let buf = unsafe { out.as_mut_vec() };
    for (g, group) in values.chunks(BATCH).enumerate() {
        let mut texts: [&[u8]; BATCH] = [b""; BATCH];
        for (t, (v, (number, general))) in texts
            .iter_mut()
            .zip(group.iter().zip(numbers.iter_mut().zip(general.iter_mut())))
        {
            *t = number_text(*v, number, general);
        }
        for (k, text) in texts[..group.len()].iter().enumerate() {
            if g + k > 0 {
                stamps.advance();
            }
            // Python's repr of a float is at most 24 bytes (`-1.2345678901234567e-308`).
            assert!(text.len() <= NUMBER_BYTES, "a float's text over 24 bytes");
            buf.reserve(POINT_BYTES);
            let len = buf.len();
            // SAFETY: `reserve` left at least POINT_BYTES (64) bytes of spare capacity, and
            // the writes below end by byte 1 + 24 + 2 + 24 = 51 (a number of at most 24 bytes,
            // a timestamp of at most 20 written as 16 or 24, a 4-byte store after it); the
            // bytes counted in the new length are all written (each store starts where the
            // text before it ends, and the last one ends past it).
            unsafe {
                let p = buf.as_mut_ptr().add(len);
                p.write(b'[');
                let mut at = 1 + put(p.add(1), text);
                p.add(at).cast::<[u8; 2]>().write_unaligned(*b", ");
                at += 2;
                at += stamps.write(p.add(at));
                p.add(at).cast::<[u8; 4]>().write_unaligned(*b"], [");
                buf.set_len(len + at + 3);
            }
        }
    }
    // The last point's `, `.
    if !values.is_empty() {
        out.truncate(out.len() - 2);
    }
}

/// How many numbers [`push_values`] formats before writing their points.
const BATCH: usize = 16;
/// The spare capacity [`push_values`] writes a point into.
const POINT_BYTES: usize = 64;
/// The longest text of a number in a point.
const NUMBER_BYTES: usize = 24;

/// A point's value as graphite-web writes it: `null` for None and NaN, `1e9999` / `-1e9999`
/// for ±∞, else Python's `repr` (zmij's shortest digits where both write positional
/// notation, as [`crate::series::push_py_float`]).
fn number_text<'a>(
    v: Option<f64>,
    number: &'a mut zmij::Buffer,
    general: &'a mut String,
) -> &'a [u8] {
    match v {
        None => b"null",
        Some(x) if x.is_nan() => b"null",
        Some(x) if x.is_infinite() => {
            if x > 0.0 {
                b"1e9999"
            } else {
                b"-1e9999"
            }
        }
        Some(x) => {
            let a = x.abs();
            if a == 0.0 || (1e-4..1e15).contains(&a) {
                number.format_finite(x).as_bytes()
            } else {
                *general = crate::series::py_float(x);
                general.as_bytes()
            }
        }
    }
}

/// Copies `src` (at most 32 bytes) to `dst` with two fixed-size moves that overlap in the
/// middle; returns its length.
///
/// # Safety
/// `dst` is valid for writes of `src.len()` bytes, and `src.len() <= 32`.
#[inline(always)]
unsafe fn put(dst: *mut u8, src: &[u8]) -> usize {
    let n = src.len();
    let s = src.as_ptr();
    // SAFETY: each pair of moves reads and writes within the first `n` bytes.
    unsafe {
        match n {
            16.. => put_pair::<16>(dst, s, n),
            8..=15 => put_pair::<8>(dst, s, n),
            4..=7 => put_pair::<4>(dst, s, n),
            1..=3 => {
                *dst = *s;
                *dst.add(n / 2) = *s.add(n / 2);
                *dst.add(n - 1) = *s.add(n - 1);
            }
            0 => {}
        }
    }
    n
}

/// [`put`]'s two `N`-byte moves: the first `N` bytes of `src` and its last `N` (they overlap
/// when `n < 2 * N`), both loaded before either is stored.
///
/// # Safety
/// `N <= n`, `src` is valid for reads and `dst` for writes of `n` bytes.
#[inline(always)]
unsafe fn put_pair<const N: usize>(dst: *mut u8, src: *const u8, n: usize) {
    // SAFETY: both moves are within the first `n` bytes, as the caller says `N <= n`.
    unsafe {
        let (a, b) = (
            src.cast::<[u8; N]>().read_unaligned(),
            src.add(n - N).cast::<[u8; N]>().read_unaligned(),
        );
        dst.cast::<[u8; N]>().write_unaligned(a);
        dst.add(n - N).cast::<[u8; N]>().write_unaligned(b);
    }
}

/// Evenly spaced timestamps as decimal text. A time of at most 16 digits is kept as its
/// ASCII bytes in a `u128` (first digit in the top byte) and the next one is a decimal add
/// of `step`'s digits across all bytes at once: each digit byte is biased by 246, so a digit
/// sum of 10 or more carries into the next byte as a binary carry, and the bias is taken
/// back from the bytes that did not carry. A negative or longer time, or a carry out of the
/// first digit, formats it afresh.
struct Stamps {
    now: i64,
    step: i64,
    /// `step`'s digits, one per byte, the last one in the lowest byte (`None`: more than 16).
    step_digits: Option<u128>,
    /// The text of `now`, and its length.
    text: [u8; 24],
    len: usize,
    /// Whether `now` is in `digits` (else only in `text`).
    fast: bool,
    digits: u128,
    /// Masks of the digit bytes: each `0x30`, `0xf6` and `0x80`.
    zeros: u128,
    bias: u128,
    high: u128,
    /// `step_digits` shifted onto the last digits of `digits`.
    step_at: u128,
}

impl Stamps {
    fn new(start: i64, step: i64) -> Self {
        let step_digits = u64::try_from(step).ok().filter(|&s| s > 0).and_then(|s| {
            let (mut rest, mut d, mut k) = (s, 0u128, 0);
            while rest > 0 {
                if k == 16 {
                    return None;
                }
                d |= u128::from(rest % 10) << (8 * k);
                rest /= 10;
                k += 1;
            }
            Some(d)
        });
        let mut s = Self {
            now: start,
            step,
            step_digits,
            text: [b'0'; 24],
            len: 0,
            fast: false,
            digits: 0,
            zeros: 0,
            bias: 0,
            high: 0,
            step_at: 0,
        };
        s.set(start);
        s
    }

    fn set(&mut self, ts: i64) {
        let mut b = itoa::Buffer::new();
        let t = b.format(ts).as_bytes();
        self.text = [0; 24];
        self.text[..t.len()].copy_from_slice(t);
        self.len = t.len();
        self.now = ts;
        let step_len = self
            .step_digits
            .map_or(usize::MAX, |d| 16 - (d.leading_zeros() as usize / 8));
        self.fast = ts >= 0 && self.len <= 16 && step_len <= self.len;
        if self.fast {
            let mut be = [0u8; 16];
            be.copy_from_slice(&self.text[..16]);
            self.digits = u128::from_be_bytes(be);
            let shift = 8 * (16 - self.len) as u32;
            let every = |b: u8| (u128::MAX / 255 * u128::from(b)) << shift;
            (self.zeros, self.bias, self.high) = (every(0x30), every(0xf6), every(0x80));
            self.step_at = self.step_digits.unwrap_or(0) << shift;
        }
    }

    /// Writes the current time's text at `dst` (16 or 24 bytes written); returns its length.
    ///
    /// # Safety
    /// `dst` is valid for writes of 24 bytes.
    #[inline(always)]
    unsafe fn write(&self, dst: *mut u8) -> usize {
        // SAFETY: the caller's.
        unsafe {
            if self.fast {
                dst.cast::<[u8; 16]>()
                    .write_unaligned(self.digits.to_be_bytes());
            } else {
                dst.cast::<[u8; 24]>().write_unaligned(self.text);
            }
        }
        self.len
    }

    /// The next time (the caller never steps past the last one, so no overflow).
    fn advance(&mut self) {
        let next = self.now.saturating_add(self.step);
        if self.fast {
            let (sum, carried_out) =
                (self.digits - self.zeros + self.step_at).overflowing_add(self.bias);
            if !carried_out {
                // Bytes with the high bit still set did not carry: take their bias back.
                let kept = (sum & self.high) >> 7;
                self.digits = sum - kept * 0xf6 + self.zeros;
                self.now = next;
                return;
            }
        }
        self.set(next);
    }
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
    use proptest::prelude::Strategy as _;

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

    proptest::proptest! {
        /// Evenly spaced points written with fixed-size moves and stepped timestamp text are
        /// the bytes of the general writer: any value (nulls, NaN, ±∞, long and short
        /// numbers), negative times, carries into a new digit, large steps.
        #[test]
        fn push_values_is_push_points(
            bits in proptest::collection::vec(proptest::prelude::any::<(u8, u64, i32)>(), 0..40),
            start in proptest::prop_oneof![
                -2_000i64..2_000,
                9_999_999_000i64..10_000_001_000,
                proptest::prelude::any::<i32>().prop_map(i64::from),
            ],
            step in proptest::prop_oneof![1i64..100, 1i64..1_000_000_000],
        ) {
            let values: Vec<Option<f64>> = bits
                .iter()
                .map(|&(kind, b, k)| match kind % 6 {
                    0 => None,
                    1 => Some(f64::from_bits(b)),
                    2 => Some(f64::from(k) / 100.0),
                    3 => Some(f64::from(k)),
                    4 => Some([f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0, -0.0][b as usize % 5]),
                    _ => Some(f64::from(k) * 1e-7),
                })
                .collect();
            let mut fast = String::from("x");
            push_values(&mut fast, &values, start, step);
            let mut slow = String::from("x");
            push_points(
                &mut slow,
                values.iter().enumerate().map(|(i, v)| (*v, start + i as i64 * step)),
            );
            proptest::prop_assert_eq!(fast, slow);
        }
    }

    #[test]
    fn stepped_timestamps_carry_into_new_digits() {
        let values = vec![Some(1.5); 4];
        let mut out = String::new();
        push_values(&mut out, &values, 9_999_999_980, 10);
        assert_eq!(
            out,
            "[1.5, 9999999980], [1.5, 9999999990], [1.5, 10000000000], [1.5, 10000000010]"
        );
        out.clear();
        push_values(&mut out, &values[..3], -15, 10);
        assert_eq!(out, "[1.5, -15], [1.5, -5], [1.5, 5]");
        out.clear();
        push_values(&mut out, &[], 0, 10);
        assert_eq!(out, "");
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
