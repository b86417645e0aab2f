//! Graphite's plaintext line protocol: `path value timestamp\n`.
//!
//! This module does no I/O. It holds the one copy of the rules carbide applies to metric
//! paths (Diamond-compatible sanitising), to Graphite 1.1 tags (carbon's validation), to
//! values (shortest round-trip decimal, never NaN or ±Inf) and to timestamps (integer epoch
//! seconds). The encoder and the parser are exact inverses for every line the encoder accepts.

use std::borrow::Cow;
use std::fmt;

/// Longest line (without the trailing newline) the encoder writes and the parser accepts.
pub const MAX_LINE_LEN: usize = 4096;

/// Why a metric could not be encoded. Allocation-free so the hot path can count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("value is NaN or infinite")]
    NotFinite,
    #[error("metric path is empty or has an empty component")]
    EmptyComponent,
    #[error("line would exceed {MAX_LINE_LEN} bytes")]
    TooLong,
    #[error("invalid tag (carbon rules: name non-empty without ';!^=', value non-empty without ';', not starting with '~')")]
    BadTag,
}

/// Why a received line was rejected. Each variant is one counter in the store's self-metrics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("expected 3 fields `path value timestamp`, found {0}")]
    FieldCount(usize),
    #[error("value {0:?} is not a finite number")]
    BadValue(String),
    #[error("timestamp {0:?} is not a number of epoch seconds")]
    BadTimestamp(String),
    #[error("path {0:?} has an empty component")]
    BadPath(String),
    #[error("bad tag in {0:?} (carbon rules: name non-empty without ';!^=', value non-empty without ';', not starting with '~')")]
    BadTag(String),
    #[error("line is longer than {MAX_LINE_LEN} bytes")]
    TooLong,
    #[error("line is not valid UTF-8")]
    NotUtf8,
    /// A NUL or another control character (below 0x20, or 0x7f) in the path.
    #[error("path {0:?} has a control character (NUL, escape, ...)")]
    ControlByte(String),
}

impl LineError {
    /// A short, stable name for counting rejects by kind (`carbide.store.bad_lines.<kind>`).
    pub fn kind(&self) -> &'static str {
        match self {
            LineError::FieldCount(_) => "field_count",
            LineError::BadValue(_) => "bad_value",
            LineError::BadTimestamp(_) => "bad_timestamp",
            LineError::BadPath(_) => "bad_path",
            LineError::BadTag(_) => "bad_tag",
            LineError::TooLong => "too_long",
            LineError::NotUtf8 => "not_utf8",
            LineError::ControlByte(_) => "control_byte",
        }
    }
}

/// A NUL or another ASCII control character: never part of a path.
#[inline]
fn is_control(b: u8) -> bool {
    b < b' ' || b == 0x7f
}

/// Is `c` kept as-is in a path component? Diamond's rule: `[A-Za-z0-9_:-]`.
#[inline]
fn is_path_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b':' | b'-')
}

/// Sanitise one path component: every character outside `[A-Za-z0-9_:-]` becomes `_`
/// (one `_` per character, multi-byte characters included). Borrowed when nothing changes.
pub fn sanitize_component(component: &str) -> Cow<'_, str> {
    if component.bytes().all(is_path_char) {
        return Cow::Borrowed(component);
    }
    Cow::Owned(
        component
            .chars()
            .map(|c| {
                if c.is_ascii() && is_path_char(c as u8) {
                    c
                } else {
                    '_'
                }
            })
            .collect(),
    )
}

/// Sanitise a dotted path component by component. Empty components (`a..b`, a leading or
/// trailing dot, an empty path) are an error: they would be silently merged by carbon.
pub fn sanitize_path(path: &str) -> Result<Cow<'_, str>, EncodeError> {
    if path.is_empty() || path.split('.').any(str::is_empty) {
        return Err(EncodeError::EmptyComponent);
    }
    if path.bytes().all(|b| b == b'.' || is_path_char(b)) {
        return Ok(Cow::Borrowed(path));
    }
    let mut out = String::with_capacity(path.len());
    for (i, comp) in path.split('.').enumerate() {
        if i > 0 {
            out.push('.');
        }
        out.push_str(&sanitize_component(comp));
    }
    Ok(Cow::Owned(out))
}

/// The characters carbon 1.1 refuses in a tag name (`TaggedSeries.validateTagAndValue`).
pub const TAG_NAME_FORBIDDEN: [char; 4] = [';', '!', '^', '='];

/// Carbon 1.1's rule for a tag name; [`crate::tags::parse`] applies the same rule with
/// graphite-web's messages.
pub fn valid_tag_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(TAG_NAME_FORBIDDEN)
}

/// Carbon 1.1's rule for a tag value.
pub fn valid_tag_value(value: &str) -> bool {
    !value.is_empty() && !value.starts_with('~') && !value.contains(';')
}

/// A series name split into its name and its `(tag, value)` pairs.
pub type Tagged<'a> = (&'a str, Vec<(&'a str, &'a str)>);

/// A tag that breaks carbon's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid tag")]
pub struct BadTag;

/// Split a (possibly tagged) series name `name;k=v;k2=v2` into its name and tags, checking
/// the tags by carbon's rules. An untagged name yields no tags.
pub fn split_tags(series: &str) -> Result<Tagged<'_>, BadTag> {
    let mut parts = series.split(';');
    let name = parts.next().unwrap_or_default();
    let mut tags = Vec::new();
    for part in parts {
        let (k, v) = part.split_once('=').ok_or(BadTag)?;
        if !valid_tag_name(k) || !valid_tag_value(v) {
            return Err(BadTag);
        }
        tags.push((k, v));
    }
    Ok((name, tags))
}

/// Append the shortest decimal text that parses back to exactly `value`.
/// Integral values up to 2^53 print without a fraction (`42`, not `42.0`).
#[inline]
pub fn write_value(buf: &mut Vec<u8>, value: f64) -> Result<(), EncodeError> {
    if !value.is_finite() {
        return Err(EncodeError::NotFinite);
    }
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if value == value.trunc() && value.abs() <= EXACT {
        if value == 0.0 {
            // Normalise -0 to 0: carbon stores them alike and "-0" surprises people.
            buf.push(b'0');
        } else {
            buf.extend_from_slice(itoa::Buffer::new().format(value as i64).as_bytes());
        }
    } else {
        buf.extend_from_slice(ryu::Buffer::new().format_finite(value).as_bytes());
    }
    Ok(())
}

/// Append one line `path value timestamp\n` to `buf`. `path` must already be a valid path
/// (see [`sanitize_path`]); tags after `;` are checked. On error `buf` is left unchanged.
pub fn encode_line(
    buf: &mut Vec<u8>,
    path: &str,
    value: f64,
    timestamp: i64,
) -> Result<(), EncodeError> {
    if !value.is_finite() {
        return Err(EncodeError::NotFinite);
    }
    let (name, _) = if let Some((_, tags)) = path.split_once(';') {
        // The line protocol splits fields on whitespace, so a tag holding any could not be
        // read back (carbon would reject the line); the parser refuses control characters.
        if tags.contains(char::is_whitespace) || tags.bytes().any(is_control) {
            return Err(EncodeError::BadTag);
        }
        split_tags(path).map_err(|_| EncodeError::BadTag)?
    } else {
        (path, Vec::new())
    };
    if name.is_empty() || name.split('.').any(str::is_empty) {
        return Err(EncodeError::EmptyComponent);
    }
    let start = buf.len();
    buf.extend_from_slice(path.as_bytes());
    buf.push(b' ');
    write_value(buf, value)?;
    buf.push(b' ');
    buf.extend_from_slice(itoa::Buffer::new().format(timestamp).as_bytes());
    if buf.len() - start > MAX_LINE_LEN {
        buf.truncate(start);
        return Err(EncodeError::TooLong);
    }
    buf.push(b'\n');
    Ok(())
}

/// One parsed line. `path` may carry tags (`name;k=v`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Line<'a> {
    pub path: &'a str,
    pub value: f64,
    pub timestamp: i64,
}

impl fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = Vec::with_capacity(64);
        write_value(&mut buf, self.value).map_err(|_| fmt::Error)?;
        write!(
            f,
            "{} {} {}",
            self.path,
            String::from_utf8_lossy(&buf),
            self.timestamp
        )
    }
}

/// Parse one line (without or with its trailing `\n` / `\r\n`), as carbon's plaintext
/// receiver does: whitespace-separated fields, a float value, a float timestamp truncated to
/// whole seconds. NaN and infinite values are rejected (carbon drops them too).
///
/// The common line (three fields, an ASCII path, an integer timestamp) takes a single pass
/// over the bytes: only the path is checked for UTF-8, the timestamp is read as an integer.
/// Anything else goes through [`parse_line_slow`], which holds the rules and the errors.
#[inline]
pub fn parse_line(line: &[u8]) -> Result<Line<'_>, LineError> {
    match parse_fast(line) {
        Some(l) => Ok(l),
        None => parse_line_slow(line),
    }
}

/// The fast path of [`parse_line`], for the canonical line `path value timestamp` with
/// single spaces, a [`plain_path`] and an integer timestamp: the path's end found with
/// `memchr`, the rest read by [`parse_value_ts`]. `None` for anything else (then the slow
/// path decides, so behaviour and errors are the slow path's).
#[inline]
fn parse_fast(line: &[u8]) -> Option<Line<'_>> {
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    let line = line.get(..end)?;
    if line.len() > MAX_LINE_LEN {
        return None;
    }
    let sp1 = memchr::memchr(b' ', line)?;
    let (path, rest) = (&line[..sp1], &line[sp1 + 1..]);
    if !plain_path(path) {
        return None;
    }
    let (value, timestamp, used) = parse_value_ts(rest)?;
    if used != rest.len() {
        return None;
    }
    // SAFETY: `plain_path` checked every byte of `path` to be printable ASCII (0x21..=0x7e),
    // which is valid UTF-8.
    let path = unsafe { std::str::from_utf8_unchecked(path) };
    Some(Line {
        path,
        value,
        timestamp,
    })
}

/// [`parse_line`]'s fast path for the first line of `text`, whose end is not known yet (a
/// listener's read: whole lines, each ended by a newline): the line and the index of its
/// newline, found while it is parsed rather than by a scan for the newline first. `None`
/// where the fast path would not take the line; the caller then finds its end and calls
/// [`parse_line`], so a line gives what [`parse_line`] gives either way. Every scan stops
/// at the line's first space or newline, or (a value only the general float parser reads)
/// at the next space, which lies in the next line that has one: no byte is scanned twice
/// for any number of lines.
#[inline]
pub fn parse_next_line(text: &[u8]) -> Option<(Line<'_>, usize)> {
    let sp = memchr::memchr2(b' ', b'\n', text)?;
    if text[sp] != b' ' {
        return None;
    }
    let path = &text[..sp];
    if !plain_path(path) {
        return None;
    }
    let (value, timestamp, n) = parse_value_ts(&text[sp + 1..])?;
    let nl = sp + 1 + n;
    if nl > MAX_LINE_LEN || text.get(nl) != Some(&b'\n') {
        return None;
    }
    // SAFETY: `plain_path` checked every byte of `path` to be printable ASCII (0x21..=0x7e),
    // which is valid UTF-8.
    let path = unsafe { std::str::from_utf8_unchecked(path) };
    Some((
        Line {
            path,
            value,
            timestamp,
        },
        nl,
    ))
}

/// Is `path` a path the fast path takes as it is: printable ASCII without `;` (no other
/// whitespace, no tags) and no empty component (no leading or trailing dot, no two dots in
/// a row)? Such a path is also valid UTF-8.
#[inline]
pub fn plain_path(path: &[u8]) -> bool {
    let bad = |b: u8| (b <= b' ') | (b >= 0x7f) | (b == b';');
    let Some((&first, tail)) = path.split_first() else {
        return false;
    };
    // Each byte against the one before it: no loop-carried state, so it vectorises.
    let odd = path.iter().zip(tail).fold(false, |acc, (&a, &b)| {
        acc | bad(b) | ((a == b'.') & (b == b'.'))
    });
    !(odd || bad(first) || first == b'.' || path.last() == Some(&b'.'))
}

/// What follows a canonical line's path and its one space: `value timestamp`, one space
/// between, ended by `\n` or by the end of `rest`. Returns the value, the timestamp and the
/// length read (the index of that `\n`, or `rest.len()`). The timestamp is whole epoch
/// seconds below 1e11; the value is read by [`plain_decimal`] or else `fast_float2` (the same
/// grammar and the same correctly rounded result as `str::parse::<f64>`), and must be
/// finite. `None` for anything else: the general parser decides then.
///
/// [`parse_line`]'s fast path reads every line's rest with this, so a listener that already
/// knows a line's path (it compared the bytes) and reads the rest with this gets exactly
/// what [`parse_line`] would return.
#[inline]
pub fn parse_value_ts(rest: &[u8]) -> Option<(f64, i64, usize)> {
    let (value, sp) = match plain_decimal(rest) {
        Some((v, n)) if rest.get(n) == Some(&b' ') => (v, n),
        _ => {
            let sp = memchr::memchr(b' ', rest)?;
            let value = &rest[..sp];
            // Digits, signs, dots and exponents only: `inf`/`nan` spellings go the slow way.
            if !value
                .iter()
                .all(|&b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
            {
                return None;
            }
            let v: f64 = fast_float2::parse(value).ok()?;
            if !v.is_finite() {
                return None;
            }
            (v, sp)
        }
    };
    let ts = &rest[sp + 1..];
    let (n, t) = digits(ts, 12);
    if n == 0 || n > 11 || t >= 100_000_000_000 || ts.get(n).is_some_and(|&b| b != b'\n') {
        return None;
    }
    Some((value, t as i64, sp + 1 + n))
}

/// The ASCII digits at the start of `b`, at most `max` (≤ 20) of them: how many, and their
/// value (wrapped modulo 2^64 beyond 19 digits). The first eight are read as one word when
/// `b` has eight bytes, without a branch per digit.
#[inline]
fn digits(b: &[u8], max: usize) -> (usize, u64) {
    debug_assert!(max >= 8);
    const ZEROS: u64 = 0x3030_3030_3030_3030;
    let (mut n, mut m) = match b.first_chunk::<8>() {
        Some(chunk) => {
            let x = u64::from_le_bytes(*chunk);
            // A byte's high bit is set here if it is not a digit: below '0' the subtraction
            // wraps, above '9' the addition reaches 0x80. Only bytes after the first
            // non-digit can be disturbed (by its borrow), and they are not looked at.
            let not_digit = (x.wrapping_sub(ZEROS) | x.wrapping_add(0x4646_4646_4646_4646))
                & 0x8080_8080_8080_8080;
            let n = (not_digit.trailing_zeros() / 8) as usize;
            if n == 0 {
                return (0, 0);
            }
            // The n digits moved to the top (the first one is the lowest byte: little
            // endian), zero bytes above as leading zeros, then combined pairwise.
            let d = x.wrapping_sub(ZEROS) << (64 - 8 * n);
            let d = d.wrapping_mul(10).wrapping_add(d >> 8);
            const MASK: u64 = 0x0000_00FF_0000_00FF;
            let d = ((d & MASK).wrapping_mul(100 + (1_000_000 << 32)))
                .wrapping_add(((d >> 16) & MASK).wrapping_mul(1 + (10_000 << 32)))
                >> 32;
            (n.min(max), d)
        }
        None => (0, 0),
    };
    if n < 8 && b.len() >= 8 {
        return (n, m);
    }
    while let Some(&c) = b.get(n) {
        if !c.is_ascii_digit() || n == max {
            break;
        }
        m = m.wrapping_mul(10).wrapping_add((c - b'0') as u64);
        n += 1;
    }
    (n, m)
}

/// Exact powers of ten up to the largest one an f64 holds exactly.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// The value at the start of `v` in the commonest spelling, `[-]digits[.digits]`, and its
/// length: read up to the first byte that cannot continue it. With at most 19 digits, whose
/// digits as an integer `m` fit in 53 bits and with at most 22 decimals, `m / 10^k` is one
/// correctly rounded division of two exact f64s, the same result as `str::parse` (Clinger's
/// fast path). `None` for anything else (the general parser decides).
#[inline]
fn plain_decimal(v: &[u8]) -> Option<(f64, usize)> {
    let neg = v.first() == Some(&b'-');
    let sign = usize::from(neg);
    // 20 digits are enough to refuse more than 19.
    let (int, mut m) = digits(&v[sign..], 20);
    let mut len = sign + int;
    let mut decimals = 0;
    if v.get(len) == Some(&b'.') {
        let (frac, f) = digits(&v[len + 1..], 20);
        if frac > 0 {
            m = m.wrapping_mul(*POW10_INT.get(frac)?).wrapping_add(f);
        }
        decimals = frac;
        len += 1 + frac;
    }
    let count = int + decimals;
    if count == 0 || count > 19 || m > 1 << 53 {
        return None;
    }
    let x = m as f64 / *POW10.get(decimals)?;
    Some((if neg { -x } else { x }, len))
}

/// Powers of ten as integers (up to 10^19, the largest below 2^64).
const POW10_INT: [u64; 20] = {
    let mut p = [1u64; 20];
    let mut i = 1;
    while i < 20 {
        p[i] = p[i - 1] * 10;
        i += 1;
    }
    p
};

/// [`parse_line`] for every line: the rules and their errors.
pub fn parse_line_slow(line: &[u8]) -> Result<Line<'_>, LineError> {
    if line.len() > MAX_LINE_LEN + 2 {
        return Err(LineError::TooLong);
    }
    let text = std::str::from_utf8(line).map_err(|_| LineError::NotUtf8)?;
    let text = text.trim_end_matches(['\n', '\r']);
    if text.len() > MAX_LINE_LEN {
        return Err(LineError::TooLong);
    }
    let mut fields = text.split_ascii_whitespace();
    let (Some(path), Some(value), Some(ts)) = (fields.next(), fields.next(), fields.next()) else {
        return Err(LineError::FieldCount(text.split_ascii_whitespace().count()));
    };
    if fields.next().is_some() {
        return Err(LineError::FieldCount(text.split_ascii_whitespace().count()));
    }
    if path.bytes().any(is_control) {
        return Err(LineError::ControlByte(path.to_owned()));
    }
    let value_f: f64 = value
        .parse()
        .map_err(|_| LineError::BadValue(value.to_owned()))?;
    if !value_f.is_finite() {
        return Err(LineError::BadValue(value.to_owned()));
    }
    let ts_f: f64 = ts
        .parse()
        .map_err(|_| LineError::BadTimestamp(ts.to_owned()))?;
    if !(0.0..1e11).contains(&ts_f) {
        return Err(LineError::BadTimestamp(ts.to_owned()));
    }
    let name = if path.contains(';') {
        split_tags(path)
            .map_err(|_| LineError::BadTag(path.to_owned()))?
            .0
    } else {
        path
    };
    if name.is_empty() || name.split('.').any(str::is_empty) {
        return Err(LineError::BadPath(path.to_owned()));
    }
    Ok(Line {
        path,
        value: value_f,
        timestamp: ts_f as i64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ARCHITECTURE.md's invariant: the line codec does no I/O.
    #[test]
    fn does_no_io() {
        let src = include_str!("protocol.rs");
        let code = &src[..src.find("#[cfg(test)]").unwrap_or(src.len())];
        for io in [
            "std::io", "std::net", "std::fs", "tokio", "File", "Socket", "Tcp", "Udp",
        ] {
            assert!(
                !code.contains(io),
                "protocol.rs mentions {io}: it must do no I/O"
            );
        }
    }

    fn enc(path: &str, v: f64, ts: i64) -> Result<String, EncodeError> {
        let mut buf = Vec::new();
        encode_line(&mut buf, path, v, ts)?;
        Ok(String::from_utf8(buf).unwrap())
    }

    #[test]
    fn encodes_values_shortest_round_trip() {
        let cases: &[(f64, &str)] = &[
            (0.0, "a 0 1\n"),
            (-0.0, "a 0 1\n"),
            (42.0, "a 42 1\n"),
            (-7.0, "a -7 1\n"),
            (0.1, "a 0.1 1\n"),
            (1.0 / 3.0, "a 0.3333333333333333 1\n"),
            (1e300, "a 1e300 1\n"),
            (9_007_199_254_740_993.0, "a 9007199254740992 1\n"),
            (1.5e-7, "a 1.5e-7 1\n"),
        ];
        for (v, want) in cases {
            assert_eq!(enc("a", *v, 1).unwrap(), *want, "value {v}");
        }
    }

    #[test]
    fn rejects_what_carbon_would_mangle() {
        assert_eq!(enc("a", f64::NAN, 1), Err(EncodeError::NotFinite));
        assert_eq!(enc("a", f64::INFINITY, 1), Err(EncodeError::NotFinite));
        assert_eq!(enc("a..b", 1.0, 1), Err(EncodeError::EmptyComponent));
        assert_eq!(enc("", 1.0, 1), Err(EncodeError::EmptyComponent));
        assert_eq!(enc("a;=b", 1.0, 1), Err(EncodeError::BadTag));
        assert_eq!(enc("a;k=~b", 1.0, 1), Err(EncodeError::BadTag));
        assert_eq!(
            enc(&"x".repeat(MAX_LINE_LEN), 1.0, 1),
            Err(EncodeError::TooLong)
        );
        assert_eq!(enc("a;k=v;dc=eu-1", 1.0, 1).unwrap(), "a;k=v;dc=eu-1 1 1\n");
    }

    #[test]
    fn sanitises_diamond_style() {
        let cases = [
            (
                "servers.web-1.cpu.total.user",
                "servers.web-1.cpu.total.user",
            ),
            (
                "diskspace./var/log.byte_free",
                "diskspace._var_log.byte_free",
            ),
            ("a b.c(d)", "a_b.c_d_"),
            ("iface.eth0:1.rx", "iface.eth0:1.rx"),
            ("q.héllo", "q.h_llo"),
        ];
        for (input, want) in cases {
            assert_eq!(sanitize_path(input).unwrap(), want);
        }
        assert_eq!(sanitize_path("a..b"), Err(EncodeError::EmptyComponent));
        assert_eq!(sanitize_path(".a"), Err(EncodeError::EmptyComponent));
        assert_eq!(sanitize_component("/"), "_");
    }

    #[test]
    fn parses_lines_with_typed_errors() {
        let ok = parse_line(b"a.b 1.5 1700000000\n").unwrap();
        assert_eq!(
            ok,
            Line {
                path: "a.b",
                value: 1.5,
                timestamp: 1_700_000_000
            }
        );
        assert_eq!(
            parse_line(b"a.b 2 1700000000.9\r\n").unwrap().timestamp,
            1_700_000_000
        );
        let bad: &[(&[u8], &str)] = &[
            (b"a.b 1", "field_count"),
            (b"a.b 1 2 3", "field_count"),
            (b"a.b x 1", "bad_value"),
            (b"a.b nan 1", "bad_value"),
            (b"a.b 1 soon", "bad_timestamp"),
            (b"a..b 1 1", "bad_path"),
            (b"a;k 1 1", "bad_tag"),
            (b"\xff 1 1", "not_utf8"),
            (b"a\0b 1 1", "control_byte"),
            (b"a.\x1b[2Jb 1 1", "control_byte"),
            (b"a;k=v\x7f 1 1", "control_byte"),
        ];
        for (line, kind) in bad {
            assert_eq!(
                parse_line(line).unwrap_err().kind(),
                *kind,
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        let long = format!("{} 1 1", "x".repeat(MAX_LINE_LEN));
        assert_eq!(parse_line(long.as_bytes()), Err(LineError::TooLong));
    }

    #[test]
    fn tags_with_whitespace_are_not_encoded() {
        assert_eq!(enc("a;k=x y", 1.0, 1), Err(EncodeError::BadTag));
        assert_eq!(enc("a;k=x\ty", 1.0, 1), Err(EncodeError::BadTag));
        assert_eq!(enc("a;k=x\0y", 1.0, 1), Err(EncodeError::BadTag));
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        fn name() -> impl Strategy<Value = String> {
            prop::collection::vec("[A-Za-z0-9_:-]{1,16}", 1..8).prop_map(|c| c.join("."))
        }

        /// Tags by carbon's rules (and no whitespace, which the line protocol cannot carry).
        fn tags() -> impl Strategy<Value = Vec<(String, String)>> {
            prop::collection::vec(
                (
                    "[^;!^=\\s\\p{Cc}]{1,8}",
                    "[^;~\\s\\p{Cc}][^;\\s\\p{Cc}]{0,8}",
                ),
                0..4,
            )
        }

        fn value() -> impl Strategy<Value = f64> {
            prop_oneof![
                prop::num::f64::NORMAL | prop::num::f64::SUBNORMAL | prop::num::f64::ZERO,
                (-1_000_000i64..1_000_000).prop_map(|i| i as f64),
            ]
        }

        /// Timestamps the parser accepts: epoch seconds below 1e11.
        fn timestamp() -> impl Strategy<Value = i64> {
            0i64..100_000_000_000
        }

        proptest! {
            #[test]
            fn encode_then_parse_round_trips(
                name in name(), tags in tags(), v in value(), ts in timestamp()
            ) {
                let mut path = name.clone();
                for (k, val) in &tags {
                    path.push(';');
                    path.push_str(k);
                    path.push('=');
                    path.push_str(val);
                }
                let mut buf = Vec::new();
                encode_line(&mut buf, &path, v, ts).unwrap();
                prop_assert_eq!(buf.last(), Some(&b'\n'));
                let line = parse_line(&buf).unwrap();
                prop_assert_eq!(line.path, path.as_str());
                prop_assert_eq!(line.value, v);
                prop_assert_eq!(line.timestamp, ts);
                let (n, t) = split_tags(line.path).unwrap();
                prop_assert_eq!(n, name.as_str());
                prop_assert_eq!(t.len(), tags.len());
                // Display writes the same text back.
                prop_assert_eq!(format!("{line}\n").into_bytes(), buf);
            }

            #[test]
            fn fast_path_agrees_with_the_rules(
                line in prop_oneof![
                    prop::collection::vec(any::<u8>(), 0..40),
                    "[a-z.;=]{0,12}[ \t]{1,2}[-+0-9.eEnaif]{1,8}[ \t\r]{1,2}[-+0-9.]{0,13}[\r\n ]{0,2}"
                        .prop_map(String::into_bytes),
                ]
            ) {
                prop_assert_eq!(parse_line(&line), parse_line_slow(&line));
            }

            /// The first line of a text of whole lines parses as `parse_line` parses it, and
            /// its end is the first newline; `None` only for lines the fast path leaves to the
            /// general parser (or takes only once a `\r` is dropped).
            #[test]
            fn next_line_is_parse_line_of_the_first_line(
                lines in prop::collection::vec(
                    prop_oneof![
                        prop::collection::vec(any::<u8>(), 0..40),
                        "[a-z.;=]{0,12}[ \t]{1,2}[-+0-9.eEnaif]{1,8}[ \t\r]{1,2}[-+0-9.]{0,13}[\r ]{0,2}"
                            .prop_map(String::into_bytes),
                        "[a-z]{1,5}(\\.[a-z0-9]{1,5}){0,4} -?[0-9]{1,6}([.][0-9]{1,4})? [0-9]{1,11}"
                            .prop_map(String::into_bytes),
                    ],
                    1..4,
                )
            ) {
                let mut text = Vec::new();
                for l in &lines {
                    text.extend_from_slice(l);
                    text.push(b'\n');
                }
                let nl = text.iter().position(|&b| b == b'\n').unwrap();
                match parse_next_line(&text) {
                    Some((l, n)) => {
                        prop_assert_eq!(n, nl);
                        prop_assert_eq!(Ok(l), parse_line(&text[..nl]));
                    }
                    // Only a line the fast path takes after dropping a `\r` is left to it.
                    None => prop_assert!(
                        text[..nl].contains(&b'\r') || parse_fast(&text[..nl]).is_none()
                    ),
                }
            }

            #[test]
            fn plain_decimal_agrees_with_std(v in "-?[0-9]{0,12}[.]?[0-9]{0,10}") {
                let ours = plain_decimal(v.as_bytes()).filter(|&(_, n)| n == v.len());
                if let Some((x, _)) = ours {
                    prop_assert_eq!(Some(x.to_bits()), v.parse::<f64>().ok().map(f64::to_bits));
                }
            }

            #[test]
            fn fast_float_agrees_with_std(v in "[-+0-9.eE]{0,12}") {
                let ours: Option<f64> = fast_float2::parse(v.as_bytes()).ok();
                prop_assert_eq!(ours.map(f64::to_bits), v.parse::<f64>().ok().map(f64::to_bits));
            }

            #[test]
            fn sanitized_paths_always_parse(raw in "\\PC{0,40}", v in value()) {
                match sanitize_path(&raw) {
                    Err(e) => {
                        prop_assert_eq!(e, EncodeError::EmptyComponent);
                        prop_assert!(raw.is_empty() || raw.split('.').any(str::is_empty));
                    }
                    Ok(p) => {
                        prop_assert_eq!(p.split('.').count(), raw.split('.').count());
                        prop_assert!(p.bytes().all(|b| b == b'.' || is_path_char(b)));
                        let mut buf = Vec::new();
                        encode_line(&mut buf, &p, v, 1_700_000_000).unwrap();
                        let line = parse_line(&buf).unwrap();
                        prop_assert_eq!(line.path, &*p);
                        prop_assert_eq!(line.value, v);
                    }
                }
            }
        }
    }
}
