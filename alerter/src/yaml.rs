//! The one place this crate touches `serde_yaml` (archived upstream: swap it here only).
//!
//! Every decoding failure becomes a [`ConfigError`] naming `file:line:column`, what is wrong
//! and, for an unknown key, the closest known key.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// A configuration error with its position. Printed as `file:line:column: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based; 0 when the error concerns the whole file.
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl ConfigError {
    pub fn new(file: &Path, line: usize, column: usize, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_path_buf(),
            line,
            column,
            message: message.into(),
        }
    }

    /// An error about a whole file (unreadable, wrong kind of document).
    pub fn whole_file(file: &Path, message: impl Into<String>) -> Self {
        Self::new(file, 0, 0, message)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            let (file, line, col) = (self.file.display(), self.line, self.column);
            write!(f, "{file}:{line}:{col}: {}", self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Decode `text` (the contents of `file`) into `T`, mapping errors to positions.
pub fn from_str<T: DeserializeOwned>(file: &Path, text: &str) -> Result<T, ConfigError> {
    serde_yaml::from_str(text).map_err(|e| {
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

/// The known name closest to `word`, if one is close enough to be a likely typo.
pub fn closest<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .map(|k| (strsim::levenshtein(word, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
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
                $crate::yaml::deserialize_from_str(d)
            }
        }
    };
}

/// One step of a path into a YAML document, for [`locate`].
#[derive(Debug, Clone, Copy)]
pub enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

/// Best-effort `(line, column)` (1-based) of the node at `path` in a block-style YAML text, for
/// errors found after decoding (serde_yaml keeps no positions). `None` for flow style or when
/// the path is not found; callers then still name the alert.
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
/// serde's "unknown field `a`, expected one of `b`, `c`" into a hint with the closest key.
fn tidy_message(msg: &str) -> String {
    let msg = match msg.find(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    };
    // serde_yaml puts the path first ("notifiers.ops: unknown field ..."); keep it.
    let (path, msg) = match msg.split_once(": unknown ") {
        Some((path, _)) if !path.contains(' ') => (format!("{path}: "), &msg[path.len() + 2..]),
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
            Some(k) => format!("did you mean \"{k}\"? "),
            None => String::new(),
        };
        return format!(
            "{path}unknown {what} \"{word}\": {hint}(this is either a typo or this option does not exist here; expected one of: {})",
            choices.join(", ")
        );
    }
    format!("{path}{msg}")
}

#[cfg(test)]
mod tests {
    use super::*;

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
            text.starts_with("a.yml:2:1: unknown key \"critcal\""),
            "{text}"
        );
        assert!(text.contains("did you mean \"critical\"?"), "{text}");
    }

    #[test]
    fn far_away_key_gets_no_suggestion() {
        let err = from_str::<Demo>(Path::new("a.yml"), "warning: 1\nzzzzzzzz: 2\n").unwrap_err();
        assert!(!err.message.contains("did you mean"), "{}", err.message);
        assert!(err.message.contains("expected one of: warning, critical"));
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
    fn wrong_type_has_position() {
        let err = from_str::<Demo>(Path::new("a.yml"), "warning: lots\n").unwrap_err();
        assert_eq!(err.line, 1);
        assert!(err.message.contains("invalid type"), "{}", err.message);
    }
}
