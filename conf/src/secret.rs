//! [`Secret`]: a string (password, token, routing key, webhook URL with a token) that never
//! shows itself in logs, errors or `Debug` output. Only [`Secret::expose`] gives the value,
//! and only the code that puts it on the wire calls it.

use std::fmt;

use serde::Deserialize;

/// A secret string. `Debug` and `Display` print `[redacted]`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself, for the request that needs it. Never format it into a message.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let s = Secret::new("R0UTING-KEY");
        assert_eq!(format!("{s}"), "[redacted]");
        assert!(!format!("{s:?}").contains("R0UTING"));
        assert!(!format!("{:?}", Some(&s)).contains("R0UTING"));
        assert_eq!(s.expose(), "R0UTING-KEY");
        assert!(!s.is_empty());
    }
}
