//! The one place this binary touches `serde_yaml` (archived upstream: swap it here only).
//!
//! Every config file goes through [`from_str`], which turns a decoding failure into a
//! [`ConfigError`] naming `file:line:column`, what is wrong and, where we know it, what to
//! change.

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
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.column,
                self.message
            )
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

/// serde_yaml appends " at line X column Y" to its messages; we print the position first, so
/// strip it, and turn serde's "expected one of `a`, `b`" into a hint people can act on.
fn tidy_message(msg: &str) -> String {
    let msg = match msg.find(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    };
    // serde_yaml puts the path of a nested key first: `sender: unknown field ...`.
    let (path, msg) = match msg.find("unknown field ") {
        Some(i) => msg.split_at(i),
        None => ("", msg),
    };
    if let Some(rest) = msg.strip_prefix("unknown field ") {
        if let Some((field, expected)) = rest.split_once(", expected ") {
            let choices = expected
                .trim_start_matches("one of ")
                .replace(" or ", ", ")
                .replace('`', "");
            return format!(
                "{path}unknown field \"{}\": this is either a typo or this option does not exist here (expected: {choices})",
                field.trim_matches('`')
            );
        }
    }
    if msg.ends_with("expected a duration") {
        return format!("{path}{msg} such as `10s`, `1m30s` or `500ms`");
    }
    format!("{path}{msg}")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Demo {
        url: String,
        #[serde(default)]
        interval: Option<u32>,
    }

    #[test]
    fn unknown_field_names_position_and_choices() {
        let err = from_str::<Demo>(Path::new("c.yml"), "url: x\nurll: y\n").unwrap_err();
        assert_eq!((err.line, err.column), (2, 1));
        let text = err.to_string();
        assert!(
            text.starts_with("c.yml:2:1: unknown field \"urll\""),
            "{text}"
        );
        assert!(text.contains("(expected: url, interval)"), "{text}");
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        inner: Demo,
    }

    #[test]
    fn nested_unknown_field_keeps_its_path() {
        let err =
            from_str::<Outer>(Path::new("c.yml"), "inner:\n  url: x\n  urll: y\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "c.yml:3:3: inner: unknown field \"urll\": this is either a typo or this option does not exist here (expected: url, interval)"
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
        let err = from_str::<Demo>(Path::new("c.yml"), "url: x\ninterval: soon\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.message.contains("invalid type"), "{}", err.message);
    }
}
