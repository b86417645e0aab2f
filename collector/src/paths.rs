//! Metric paths: `<prefix>.<host>.<path-or-type>.<name>[.<suffix>]`, every component
//! sanitised by `graphite::protocol` (the one copy of the rules).

use graphite::protocol::{sanitize_path, EncodeError};

/// Sanitise a configured dotted path (prefix, host, collector path, suffix); the error
/// message says what to fix.
pub fn sanitize(path: &str) -> Result<String, String> {
    sanitize_path(path).map(|p| p.into_owned()).map_err(|_| {
        format!("\"{path}\" is empty or has an empty component (a leading, trailing or double dot)")
    })
}

/// Builds full paths for one collector instance. `base` (`<prefix>.<host>`), `segment` and
/// `suffix` are already sanitised.
#[derive(Debug, Clone)]
pub struct PathBuilder {
    /// `<prefix>.<host>.<segment>.`
    head: String,
    /// `.<suffix>` or empty.
    tail: String,
}

impl PathBuilder {
    /// An empty `segment` puts names right under `base` (Diamond's host-level collectors).
    pub fn new(base: &str, segment: &str, suffix: Option<&str>) -> Self {
        PathBuilder {
            head: if segment.is_empty() {
                format!("{base}.")
            } else {
                format!("{base}.{segment}.")
            },
            tail: suffix.map(|s| format!(".{s}")).unwrap_or_default(),
        }
    }

    /// The full path of a collector-relative `name` (sanitised component by component).
    pub fn metric(&self, name: &str) -> Result<String, EncodeError> {
        let name = sanitize_path(name)?;
        let mut out = String::with_capacity(self.head.len() + name.len() + self.tail.len());
        out.push_str(&self.head);
        out.push_str(&name);
        out.push_str(&self.tail);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_diamond_paths() {
        let p = PathBuilder::new("servers.web01", "mongo", None);
        assert_eq!(
            p.metric("connections.current").unwrap(),
            "servers.web01.mongo.connections.current"
        );
        let p = PathBuilder::new("servers.web01", "", None);
        assert_eq!(
            p.metric("diskspace./var/lib.free").unwrap(),
            "servers.web01.diskspace._var_lib.free"
        );
        let p = PathBuilder::new("servers.web01", "", None);
        assert_eq!(p.metric("loadavg.01").unwrap(), "servers.web01.loadavg.01");
        let p = PathBuilder::new("servers.web01", "db", Some("prod"));
        assert_eq!(p.metric("x y").unwrap(), "servers.web01.db.x_y.prod");
    }

    #[test]
    fn empty_components_rejected() {
        let p = PathBuilder::new("servers.h", "host", None);
        assert_eq!(p.metric("a..b"), Err(EncodeError::EmptyComponent));
        assert_eq!(p.metric(""), Err(EncodeError::EmptyComponent));
        assert!(sanitize("a.").is_err());
        assert_eq!(sanitize("web01.example.com").unwrap(), "web01.example.com");
        assert_eq!(sanitize("my host").unwrap(), "my_host");
    }
}
