//! Decoding: every config file goes through [`from_str`] (or [`load`]), which substitutes
//! `${NAME}` (see [`crate::env`]) and turns a failure into a [`ConfigError`] naming
//! `file:line:column`, what is wrong and, where we know it, what to write instead.

use std::fmt;
use std::path::Path;

use serde::de::DeserializeOwned;

use crate::env::Subst;
use crate::{closest, ConfigError};

/// Decode `text` (the contents of `file`) into `T`, mapping errors to positions. An empty
/// document decodes as YAML `null` (so `Option<T>` gives `None`).
pub fn from_str<T: DeserializeOwned>(file: &Path, text: &str) -> Result<T, ConfigError> {
    let de = serde_yaml::Deserializer::from_str(text);
    T::deserialize(Subst::new(de)).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        ConfigError::new(file, line, column, tidy_message(&e.to_string()))
    })
}

/// Read and decode a file.
pub fn load<T: DeserializeOwned>(file: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| ConfigError::whole_file(file, format!("cannot read: {e}")))?;
    from_str(file, &text)
}

/// Deserialize a `FromStr` type from a YAML string so that a parse error is raised while the
/// scalar is being read (serde_yaml then reports the scalar's own line:column, which
/// `#[serde(try_from = "String")]` would lose).
pub fn deserialize_from_str<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr<Err = String>,
{
    struct V<T>(std::marker::PhantomData<T>);
    impl<T: std::str::FromStr<Err = String>> serde::de::Visitor<'_> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
            v.parse().map_err(E::custom)
        }
    }
    d.deserialize_str(V(std::marker::PhantomData))
}

/// Implement `Deserialize` through [`deserialize_from_str`].
#[macro_export]
macro_rules! deserialize_via_from_str {
    ($t:ty) => {
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $crate::deserialize_from_str(d)
            }
        }
    };
}

/// What a file says its `type:` is, read before the rest so the right options struct can
/// decode it. `Ok(None)`: the file is a mapping (or empty) without `type`. The position is
/// that of the value (or 1:1 when it cannot be found in the text).
pub fn read_type(file: &Path, text: &str) -> Result<Option<(String, usize, usize)>, ConfigError> {
    let value: serde_yaml::Value = from_str(file, text)?;
    let map = match value {
        serde_yaml::Value::Null => return Ok(None),
        serde_yaml::Value::Mapping(m) => m,
        _ => {
            return Err(ConfigError::new(
                file,
                1,
                1,
                "expected a mapping of settings (`type: <name>` and options), found another kind of YAML document",
            ))
        }
    };
    let Some(v) = map.get("type") else {
        return Ok(None);
    };
    let (line, column) = value_position(text, "type").unwrap_or((1, 1));
    match v {
        serde_yaml::Value::String(s) => Ok(Some((s.clone(), line, column))),
        _ => Err(ConfigError::new(
            file,
            line,
            column,
            "invalid type: `type` must be a string naming the collector type",
        )),
    }
}

/// Position (1-based line, column) of the value of a top-level `key:` in `text`, found by
/// scanning lines; `None` when the key is not written at the start of a line.
pub fn value_position(text: &str, key: &str) -> Option<(usize, usize)> {
    for (i, line) in text.lines().enumerate() {
        if let Some(rest) = line.strip_prefix(key) {
            if let Some(after) = rest.strip_prefix(':') {
                let ws = after.len() - after.trim_start().len();
                return Some((i + 1, key.len() + 2 + ws));
            }
        }
    }
    None
}

/// One step of a path into a YAML document, for [`locate`].
#[derive(Debug, Clone, Copy)]
pub enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

/// Best-effort `(line, column)` (1-based) of the node at `path` in a block-style YAML text, for
/// errors found after decoding (serde_yaml keeps no positions). `None` for flow style or when
/// the path is not found; callers then still name what is wrong.
pub fn locate(text: &str, path: &[Seg]) -> Option<(usize, usize)> {
    // (line index, indent, content, is_item_inner): "- k: v" yields the dash entry and an
    // inner entry two columns further right.
    let mut entries: Vec<(usize, usize, &str, bool)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        if t.is_empty() || t.starts_with('#') || t.starts_with("---") {
            continue;
        }
        let ind = line.len() - t.len();
        entries.push((i, ind, t, false));
        if let Some(inner) = t.strip_prefix("- ") {
            let inner_t = inner.trim_start();
            entries.push((i, ind + 2 + inner.len() - inner_t.len(), inner_t, true));
        }
    }
    let (mut lo, mut hi) = (0usize, entries.len());
    let mut found = None;
    for seg in path {
        let scope = &entries[lo..hi];
        match *seg {
            Seg::Key(k) => {
                let keys = scope
                    .iter()
                    .filter(|e| !e.2.starts_with("- ") && e.2 != "-");
                let min = keys.clone().map(|e| e.1).min()?;
                let at = scope.iter().position(|e| {
                    e.1 == min
                        && !e.2.starts_with("- ")
                        && (e.2.strip_prefix(k).is_some_and(|r| r.starts_with(':'))
                            || e.2
                                .strip_prefix(&format!("\"{k}\""))
                                .is_some_and(|r| r.starts_with(':')))
                })?;
                let (line, ind, content, _) = scope[at];
                let empty_value = content[k.len()..]
                    .trim_start_matches([':', '"'])
                    .trim()
                    .is_empty();
                let end = scope[at + 1..]
                    .iter()
                    .position(|e| {
                        !e.3 && (e.1 < ind
                            || (e.1 == ind && !(empty_value && e.2.starts_with('-'))))
                    })
                    .map_or(hi, |p| lo + at + 1 + p);
                found = Some((line + 1, ind + 1));
                (lo, hi) = (lo + at + 1, end);
            }
            Seg::Index(n) => {
                let min = scope.iter().filter(|e| !e.3).map(|e| e.1).min()?;
                let mut items = scope
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| !e.3 && e.1 == min && (e.2.starts_with("- ") || e.2 == "-"));
                let (at, &(line, ind, _, _)) = items.nth(n)?;
                let end = scope[at + 1..]
                    .iter()
                    .position(|e| !e.3 && e.1 <= ind)
                    .map_or(hi, |p| lo + at + 1 + p);
                found = Some((line + 1, ind + 1));
                (lo, hi) = (lo + at + 1, end);
            }
        }
    }
    found
}

/// serde_yaml appends " at line X column Y"; we print the position first, so strip it. Turn
/// serde's "unknown field `a`, expected one of `b`, `c`" into a hint with the closest key, and
/// a bare number (or a size with a unit) where a duration (or a byte count) is expected into
/// the value to write instead.
fn tidy_message(msg: &str) -> String {
    let msg = match msg.find(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    };
    // serde_yaml puts the path of a nested key first ("sender: unknown field ..."); keep it.
    let (path, msg) = match msg.split_once(": ") {
        Some((path, rest)) if !path.contains(' ') && !path.is_empty() => {
            (format!("{path}: "), rest)
        }
        _ => (String::new(), msg),
    };
    for (prefix, what) in [("unknown field ", "key"), ("unknown variant ", "value")] {
        let Some(rest) = msg.strip_prefix(prefix) else {
            continue;
        };
        let Some((word, expected)) = rest.split_once(", expected ") else {
            continue;
        };
        let word = word.trim_matches('`');
        let choices: Vec<&str> = expected
            .trim_start_matches("one of ")
            .split([',', ' '])
            .map(|c| c.trim_matches('`'))
            .filter(|c| !c.is_empty() && *c != "or")
            .collect();
        let hint = match closest(word, choices.iter().copied()) {
            Some(k) => format!(": did you mean \"{k}\"? "),
            None => " ".to_string(),
        };
        return format!(
            "{path}unknown {what} \"{word}\"{hint}(this is either a typo or this option does not exist here; expected one of: {})",
            choices.join(", ")
        );
    }
    if msg.ends_with("expected a duration") {
        // serde_yaml shows a bare `10` to a duration field as the string "10".
        let number = ["invalid value: string \"", "invalid type: integer `"]
            .iter()
            .find_map(|p| msg.strip_prefix(p))
            .and_then(|r| r.split_once(['"', '`']))
            .map(|(n, _)| n)
            .filter(|n| !n.is_empty() && n.parse::<f64>().is_ok());
        return match number {
            Some(n) => format!(
                "{path}{msg}: a bare number has no unit; did you mean `{n}s`? (durations are written like `10s`, `1m30s` or `500ms`)"
            ),
            None => format!("{path}{msg} such as `10s`, `1m30s` or `500ms`"),
        };
    }
    if let Some(hint) = size_hint(msg) {
        return format!("{path}{msg}; {hint}");
    }
    format!("{path}{msg}")
}

/// `invalid type: string "1GB", expected u64` → a hint with the byte count.
fn size_hint(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("invalid type: string \"")?;
    let (value, expected) = rest.split_once("\", expected ")?;
    if !matches!(expected, "u64" | "u32" | "usize" | "an integer") {
        return None;
    }
    let bytes = parse_size(value)?;
    Some(format!(
        "sizes are written in bytes: did you mean {bytes} (= {value})?"
    ))
}

/// `1GB`, `512MiB`, `64k` → bytes (binary multiples: config sizes are memory and disk).
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.')?;
    let (num, unit) = s.split_at(split);
    let num: f64 = num.parse().ok()?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return None,
    };
    let bytes = num * mult as f64;
    (bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Demo {
        warning: f64,
        #[serde(default)]
        critical: Option<f64>,
    }

    #[test]
    fn unknown_key_suggests_closest() {
        let err = from_str::<Demo>(Path::new("a.yml"), "warning: 1\ncritcal: 2\n").unwrap_err();
        assert_eq!((err.line, err.column), (2, 1));
        let text = err.to_string();
        assert!(
            text.starts_with("a.yml:2:1: unknown key \"critcal\": did you mean \"critical\"?"),
            "{text}"
        );
        assert!(
            text.contains("expected one of: warning, critical)"),
            "{text}"
        );
    }

    #[test]
    fn far_away_key_gets_no_suggestion() {
        let err = from_str::<Demo>(Path::new("a.yml"), "warning: 1\nzzzzzzzz: 2\n").unwrap_err();
        assert!(!err.message.contains("did you mean"), "{}", err.message);
        assert!(err.message.contains("expected one of: warning, critical"));
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        inner: Demo,
        #[serde(default, with = "humantime_serde")]
        interval: Option<Duration>,
        #[serde(default)]
        max_bytes: Option<u64>,
    }

    #[test]
    fn nested_unknown_key_keeps_its_path() {
        let err = from_str::<Outer>(Path::new("c.yml"), "inner:\n  warning: 1\n  critcal: y\n")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "c.yml:3:3: inner: unknown key \"critcal\": did you mean \"critical\"? (this is either a typo or this option does not exist here; expected one of: warning, critical)"
        );
    }

    #[test]
    fn bare_numbers_get_unit_hints() {
        let f = Path::new("c.yml");
        let err = from_str::<Outer>(f, "inner: {warning: 1}\ninterval: 10\n").unwrap_err();
        assert_eq!((err.line, err.column), (2, 11), "{err}");
        assert!(err.message.contains("did you mean `10s`?"), "{err}");
        let err = from_str::<Outer>(f, "inner: {warning: 1}\nmax_bytes: 1GB\n").unwrap_err();
        assert_eq!(err.line, 2, "{err}");
        assert!(
            err.message.contains("did you mean 1073741824 (= 1GB)?"),
            "{err}"
        );
        assert_eq!(parse_size("512MiB"), Some(512 << 20));
        assert_eq!(parse_size("64k"), Some(64 << 10));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("10"), None);
    }

    #[test]
    fn locate_finds_keys_in_list_items() {
        let text = "docs_url: x\nalerts:\n  - name: A\n    warning: 1\n  # c\n  - name: B\n    target: t\n    warning: 2\nother: 1\n";
        use Seg::*;
        assert_eq!(locate(text, &[Key("alerts")]), Some((2, 1)));
        assert_eq!(locate(text, &[Key("alerts"), Index(1)]), Some((6, 3)));
        assert_eq!(
            locate(text, &[Key("alerts"), Index(1), Key("name")]),
            Some((6, 5))
        );
        assert_eq!(
            locate(text, &[Key("alerts"), Index(1), Key("warning")]),
            Some((8, 5))
        );
        assert_eq!(
            locate(text, &[Key("alerts"), Index(0), Key("target")]),
            None
        );
        assert_eq!(locate(text, &[Key("other")]), Some((9, 1)));
        let flush = "alerts:\n- name: A\n  warning: 1\n- name: B\n  warning: 2\n";
        assert_eq!(
            locate(flush, &[Key("alerts"), Index(1), Key("warning")]),
            Some((5, 3))
        );
    }

    #[test]
    fn type_is_read_first_with_its_position() {
        let f = Path::new("c.yml");
        let (t, l, c) = read_type(f, "# x\ntype: hosst\nurl: 1\n").unwrap().unwrap();
        assert_eq!((t.as_str(), l, c), ("hosst", 2, 7));
        assert_eq!(read_type(f, "url: 1\n").unwrap(), None);
        assert_eq!(read_type(f, "").unwrap(), None);
        assert!(read_type(f, "- a\n").is_err());
        assert!(read_type(f, "type: [a]\n").is_err());
    }

    #[test]
    fn wrong_type_has_position() {
        let err = from_str::<Demo>(Path::new("a.yml"), "warning: lots\n").unwrap_err();
        assert_eq!(err.line, 1);
        assert!(err.message.contains("invalid type"), "{}", err.message);
    }

    #[test]
    fn empty_document_is_none() {
        let v: Option<Demo> = from_str(Path::new("a.yml"), "").unwrap();
        assert!(v.is_none());
        let v: Option<Demo> = from_str(Path::new("a.yml"), "# only a comment\n").unwrap();
        assert!(v.is_none());
    }

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Env {
        password: crate::Secret,
        #[serde(default)]
        port: Option<u16>,
        #[serde(default)]
        url: Option<String>,
        #[serde(default)]
        list: Vec<String>,
        #[serde(default)]
        mode: Option<Mode>,
    }

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum Mode {
        Fast,
        Slow,
    }

    #[test]
    fn env_is_substituted_in_scalars_and_typed_in_place() {
        // Names unique to this test: the process environment is shared by the test threads.
        std::env::set_var("CONF_T1_PASS", "p#ss: word");
        std::env::set_var("CONF_T1_PORT", "2003");
        std::env::set_var("CONF_T1_MODE", "slow");
        let f = Path::new("e.yml");
        let text =
            "password: ${CONF_T1_PASS}\nport: ${CONF_T1_PORT}\nurl: http://h:${CONF_T1_PORT}/\n\
                    list: [\"${CONF_T1_PORT}\", x]\nmode: ${CONF_T1_MODE}\n";
        let e: Env = from_str(f, text).unwrap();
        assert_eq!(e.password.expose(), "p#ss: word");
        assert_eq!(e.port, Some(2003));
        assert_eq!(e.url.as_deref(), Some("http://h:2003/"));
        assert_eq!(e.list, ["2003", "x"]);
        assert_eq!(e.mode, Some(Mode::Slow));
        let v: serde_yaml::Value = from_str(f, "a: ${CONF_T1_PORT}\n").unwrap();
        assert_eq!(v["a"].as_u64(), Some(2003));
    }

    #[test]
    fn unset_env_names_the_variable_at_its_position() {
        let f = Path::new("e.yml");
        let err = from_str::<Env>(f, "# c\npassword:  ${CONF_T2_UNSET_VARIABLE}\n").unwrap_err();
        assert_eq!((err.line, err.column), (2, 12), "{err}");
        assert!(
            err.message
                .starts_with("password: environment variable CONF_T2_UNSET_VARIABLE is not set"),
            "{err}"
        );
        let err = from_str::<Env>(f, "password: x\nport: ${CONF_T2_UNSET_PORT}\n").unwrap_err();
        assert_eq!((err.line, err.column), (2, 7), "{err}");
        assert!(err.message.contains("CONF_T2_UNSET_PORT"), "{err}");
    }
}
