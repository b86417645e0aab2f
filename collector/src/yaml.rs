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
    if let Some(rest) = msg.strip_prefix("unknown field ") {
        if let Some((field, expected)) = rest.split_once(", expected ") {
            let choices = expected
                .trim_start_matches("one of ")
                .replace(" or ", ", ")
                .replace('`', "");
            return format!(
                "unknown field \"{}\": this is either a typo or this option does not exist here (expected: {choices})",
                field.trim_matches('`')
            );
        }
    }
    msg.to_string()
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

    #[test]
    fn wrong_type_has_position() {
        let err = from_str::<Demo>(Path::new("c.yml"), "url: x\ninterval: soon\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.message.contains("invalid type"), "{}", err.message);
    }
}
