//! [`ConfigError`]: one configuration error with its position.

use std::fmt;
use std::path::{Path, PathBuf};

/// A configuration error with its position. Printed as `file:line:column: message`, or
/// `file: message` when it concerns the whole file.
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

    /// An error at the position of `key:`'s value in `text` (a top-level key written at the
    /// start of a line), or about the whole file when the key is not found there.
    pub fn at_key(file: &Path, text: &str, key: &str, message: impl Into<String>) -> Self {
        let (line, column) = crate::value_position(text, key).unwrap_or((0, 0));
        Self::new(file, line, column, message)
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

/// Several configuration errors (all a load found, sorted), printed one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> Self {
        ConfigErrors(vec![e])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_with_and_without_position() {
        let f = Path::new("a.yml");
        assert_eq!(
            ConfigError::new(f, 2, 5, "bad").to_string(),
            "a.yml:2:5: bad"
        );
        assert_eq!(
            ConfigError::whole_file(f, "gone").to_string(),
            "a.yml: gone"
        );
        let e = ConfigError::at_key(f, "x: 1\nport:  7\n", "port", "bad port");
        assert_eq!(e.to_string(), "a.yml:2:8: bad port");
        let all = ConfigErrors(vec![
            ConfigError::new(f, 1, 1, "a"),
            ConfigError::new(f, 2, 1, "b"),
        ]);
        assert_eq!(all.to_string(), "a.yml:1:1: a\na.yml:2:1: b");
    }
}
