//! Data source names: which driver a DSN selects, and keeping its password out of every
//! message. Anything that may echo a DSN or a driver message passes through
//! [`Dsn::redact`] before it is logged or returned as an error.

use std::fmt;

/// The database families `sql-to-graphite` speaks (through `sqlx`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    Postgres,
    /// MySQL and MariaDB (`mysql://`, `mariadb://`).
    MySql,
    Sqlite,
}

impl Driver {
    pub fn name(self) -> &'static str {
        match self {
            Driver::Postgres => "postgres",
            Driver::MySql => "mysql",
            Driver::Sqlite => "sqlite",
        }
    }
}

/// A parsed DSN. Its `Display` is the redacted form; the secret is only reachable through
/// [`Dsn::connect_url`].
#[derive(Clone)]
pub struct Dsn {
    driver: Driver,
    /// The URL handed to the driver (`mariadb://` rewritten to `mysql://`).
    url: String,
    /// The URL with its password replaced by `***`.
    redacted: String,
    /// The password as written and percent-decoded; removed from any text by [`Dsn::redact`].
    secrets: Vec<String>,
}

/// The redacted stand-in for a password.
pub const MASK: &str = "***";

impl Dsn {
    /// Parse a DSN: `postgres://`, `postgresql://`, `mysql://`, `mariadb://` or `sqlite://`.
    /// The error never contains the password.
    pub fn parse(text: &str) -> Result<Dsn, String> {
        let text = text.trim();
        // sqlx's own short form for a file: `sqlite:shop.db` (relative), `sqlite::memory:`.
        if let Some(path) = text
            .strip_prefix("sqlite:")
            .filter(|p| !p.starts_with("//"))
        {
            if path.is_empty() {
                return Err(format!(
                    "DSN {text:?}: no database file: write sqlite:path/to.db or sqlite:///absolute/path.db"
                ));
            }
            return Ok(Dsn {
                driver: Driver::Sqlite,
                url: text.to_string(),
                redacted: text.to_string(),
                secrets: Vec::new(),
            });
        }
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err(format!(
                "DSN {:?} has no scheme: write postgres://user:password@host/db, mysql://…, mariadb://… or sqlite:path",
                redact_userinfo(text).0
            ));
        };
        let (driver, url_scheme) = match scheme.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" => (Driver::Postgres, scheme.to_string()),
            "mysql" | "mariadb" => (Driver::MySql, "mysql".to_string()),
            "sqlite" => (Driver::Sqlite, "sqlite".to_string()),
            other => {
                return Err(format!(
                    "DSN {:?}: unsupported scheme {other:?} (expected postgres, postgresql, mysql, mariadb or sqlite)",
                    redact_userinfo(text).0
                ))
            }
        };
        let url = format!("{url_scheme}://{rest}");
        let (redacted, password) = redact_userinfo(text);
        let mut secrets = Vec::new();
        if let Some(p) = password.filter(|p| !p.is_empty()) {
            let decoded = percent_decode(&p);
            if decoded != p {
                secrets.push(decoded);
            }
            secrets.push(p);
        }
        Ok(Dsn {
            driver,
            url,
            redacted,
            secrets,
        })
    }

    pub fn driver(&self) -> Driver {
        self.driver
    }

    /// The URL with its password, for the driver only. Never log it.
    pub fn connect_url(&self) -> &str {
        &self.url
    }

    /// `text` with every occurrence of this DSN's password replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), MASK);
            }
        }
        out
    }
}

impl fmt::Display for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl fmt::Debug for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dsn({})", self.redacted)
    }
}

/// Replace the password of `scheme://user:password@host…` with `***`; returns the new text
/// and the password found (as written).
fn redact_userinfo(text: &str) -> (String, Option<String>) {
    let (head, rest) = match text.find("://") {
        Some(i) => text.split_at(i + 3),
        None => ("", text),
    };
    // The authority ends at the first '/', '?' or '#'; userinfo ends at its last '@'.
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..auth_end];
    let Some(at) = authority.rfind('@') else {
        return (text.to_string(), None);
    };
    let userinfo = &authority[..at];
    let Some((user, password)) = userinfo.split_once(':') else {
        return (text.to_string(), None);
    };
    let out = format!("{head}{user}:{MASK}{}", &rest[at..]);
    (out, Some(password.to_string()))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drivers_by_scheme() {
        let cases = [
            (
                "postgres://u:p@h/db",
                Driver::Postgres,
                "postgres://u:p@h/db",
            ),
            ("postgresql://h/db", Driver::Postgres, "postgresql://h/db"),
            (
                "mysql://u:p@h:3306/db",
                Driver::MySql,
                "mysql://u:p@h:3306/db",
            ),
            ("mariadb://u:p@h/db", Driver::MySql, "mysql://u:p@h/db"),
            ("sqlite:///tmp/x.db", Driver::Sqlite, "sqlite:///tmp/x.db"),
            ("sqlite:shop.db", Driver::Sqlite, "sqlite:shop.db"),
        ];
        for (text, driver, url) in cases {
            let d = Dsn::parse(text).unwrap();
            assert_eq!(d.driver(), driver, "{text}");
            assert_eq!(d.connect_url(), url, "{text}");
        }
        let e = Dsn::parse("oracle://scott:tiger@h/db").unwrap_err();
        assert!(e.contains("unsupported scheme \"oracle\""), "{e}");
        assert!(!e.contains("tiger"), "{e}");
        let e = Dsn::parse("scott:tiger@h").unwrap_err();
        assert!(e.contains("no scheme") && !e.contains("tiger"), "{e}");
    }

    #[test]
    fn passwords_are_redacted() {
        let d =
            Dsn::parse("postgres://app:s%40cret@db.example.com:5432/shop?sslmode=disable").unwrap();
        assert_eq!(
            d.to_string(),
            "postgres://app:***@db.example.com:5432/shop?sslmode=disable"
        );
        assert_eq!(
            format!("{d:?}"),
            "Dsn(postgres://app:***@db.example.com:5432/shop?sslmode=disable)"
        );
        assert_eq!(
            d.redact("auth failed for s%40cret (s@cret)"),
            "auth failed for *** (***)"
        );
        // No password: nothing to hide, text unchanged.
        let d = Dsn::parse("mysql://app@h/db").unwrap();
        assert_eq!(d.to_string(), "mysql://app@h/db");
        assert_eq!(d.redact("app@h"), "app@h");
        // A password with '@' and ':' (unencoded): the last '@' ends the userinfo.
        let d = Dsn::parse("mysql://app:p:w@d@h/db").unwrap();
        assert_eq!(d.to_string(), "mysql://app:***@h/db");
        assert_eq!(d.redact("x p:w@d y"), "x *** y");
    }
}
