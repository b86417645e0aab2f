//! Metric paths: `<prefix>.<host>.<path-or-type>.<name>[.<suffix>]`, every component
//! sanitised by `graphite::protocol` (the one copy of the rules).

use graphite::protocol::{sanitize_path, valid_tag_name, valid_tag_value, EncodeError};

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
    /// `.<suffix>` or empty, then the rendered tags (`;k=v…`, see [`render_tags`]) or empty.
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

    /// The same paths as Graphite 1.1 tagged series: `rendered` is [`render_tags`]'s output
    /// (empty for untagged series).
    pub fn tagged(mut self, rendered: &str) -> Self {
        self.tail.push_str(rendered);
        self
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

/// Check one configured tag by carbon 1.1's rules (`graphite::protocol`, the one copy), plus
/// what the line protocol and carbon's parser add: no whitespace (it ends the name on a
/// plaintext line) and not the name `name` (carbon replaces that tag with the metric's name).
pub fn check_tag(name: &str, value: &str) -> Result<(), String> {
    if !valid_tag_name(name) {
        return Err(format!(
            "tag name \"{name}\" is not allowed: Graphite tag names are non-empty and contain none of ; ! ^ ="
        ));
    }
    if name == "name" {
        return Err(
            "tag name \"name\" is reserved: Graphite sets it to the metric's name".to_string(),
        );
    }
    if !valid_tag_value(value) {
        return Err(format!(
            "value \"{value}\" of tag \"{name}\" is not allowed: Graphite tag values are non-empty, contain no ; and do not start with ~"
        ));
    }
    if name.contains(char::is_whitespace) || value.contains(char::is_whitespace) {
        return Err(format!(
            "tag \"{name}\" = \"{value}\" contains whitespace, which ends a series name on a plaintext line"
        ));
    }
    Ok(())
}

/// `;k=v` for every tag, ordered as carbon 1.1 formats a tagged series (it sorts the `;k=v`
/// strings themselves, so `a-b` sorts before `a`). Empty for no tags. The tags must have
/// passed [`check_tag`].
pub fn render_tags<'a>(tags: impl IntoIterator<Item = (&'a String, &'a String)>) -> String {
    let mut parts: Vec<String> = tags.into_iter().map(|(k, v)| format!(";{k}={v}")).collect();
    parts.sort();
    parts.concat()
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

    #[test]
    fn tag_rules_are_carbons() {
        // (name, value, accepted)
        let cases: &[(&str, &str, bool)] = &[
            ("dc", "eu", true),
            ("role", "web-01.a_b", true),
            ("dc", "a=b", true), // carbon allows `=` in a value
            ("dc", "x~", true),  // `~` only at the start of a value is refused
            ("", "eu", false),
            ("dc", "", false),
            ("d;c", "eu", false),
            ("d!c", "eu", false),
            ("d^c", "eu", false),
            ("d=c", "eu", false),
            ("dc", "e;u", false),
            ("dc", "~eu", false),
            ("name", "x", false),
            ("d c", "eu", false),
            ("dc", "e u", false),
            ("dc", "eu\t", false),
        ];
        for &(name, value, ok) in cases {
            assert_eq!(check_tag(name, value).is_ok(), ok, "{name:?}={value:?}");
        }
    }

    #[test]
    fn tags_render_sorted_like_carbon() {
        use std::collections::BTreeMap;
        let tags: BTreeMap<String, String> =
            [("role", "web"), ("dc", "eu"), ("a", "1"), ("a-b", "2")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        let r = render_tags(&tags);
        assert_eq!(r, ";a-b=2;a=1;dc=eu;role=web");
        assert_eq!(render_tags(&BTreeMap::new()), "");
        let p = PathBuilder::new("servers.h", "cpu", Some("prod")).tagged(&r);
        assert_eq!(
            p.metric("user").unwrap(),
            "servers.h.cpu.user.prod;a-b=2;a=1;dc=eu;role=web"
        );
        let full = p.metric("user").unwrap();
        let (name, parsed) = graphite::protocol::split_tags(&full).unwrap();
        assert_eq!(name, "servers.h.cpu.user.prod");
        assert_eq!(parsed.len(), 4);
    }
}
