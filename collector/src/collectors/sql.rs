//! SQL business metrics (`type: sql`): the queries of `sql-to-graphite`'s queries file, run
//! by the agent on the instance's interval through the shared [`crate::sql`] code.

use std::path::Path;

use async_trait::async_trait;

use super::{Batch, Collector, CollectorConfig, Kind};
use crate::sql::db::Database;
use crate::sql::dsn::Dsn;
use crate::sql::queries::{Query, QuerySpec};
use crate::sql::run_query;
use conf::ConfigError;

pub const KIND: Kind = Kind {
    name: "sql",
    default_path: "sql",
    sample: include_str!("sql.sample.yml"),
    build: super::build::<SqlConfig>,
    circuit_breaker: true,
};

crate::collector_config! {
    /// Options of the sql collector.
    pub struct SqlConfig with dsn {
        /// The queries, run in order at every interval (see docs/collectors/sql.md).
        pub queries: Vec<QuerySpec>,
    }
}

/// A DSN decoded from the config file; its `Debug` form is redacted.
#[derive(Clone)]
pub struct SecretDsn(pub Dsn);

impl std::fmt::Debug for SecretDsn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de> serde::Deserialize<'de> for SecretDsn {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Dsn::parse(&s)
            .map(SecretDsn)
            .map_err(serde::de::Error::custom)
    }
}

/// The DSN of an instance's `dsn:`, or of the environment variable its `dsn_env:` names
/// (exactly one of the two; `missing` is the error when neither is set).
pub fn dsn_of(dsn: Option<SecretDsn>, dsn_env: Option<String>, missing: &str) -> anyhow::Result<Dsn> {
    match (dsn, dsn_env) {
        (Some(d), None) => Ok(d.0),
        (None, Some(var)) => {
            let text = std::env::var(&var).map_err(|_| {
                anyhow::anyhow!("dsn_env: the environment variable {var} is not set (export it in the agent's environment, or use `dsn:`)")
            })?;
            Dsn::parse(&text).map_err(|e| anyhow::anyhow!("dsn_env {var}: {e}"))
        }
        (Some(_), Some(_)) => anyhow::bail!("set one of `dsn` or `dsn_env`, not both"),
        (None, None) => anyhow::bail!("{missing}"),
    }
}

impl CollectorConfig for SqlConfig {
    fn check(&self, file: &Path, text: &str) -> Result<(), ConfigError> {
        crate::sql::queries::validate(file, text, &self.queries, false)?;
        for q in &self.queries {
            let unused = if q.schedule.is_some() {
                Some("schedule")
            } else if q.prefix.is_some() {
                Some("prefix")
            } else {
                None
            };
            if let Some(key) = unused {
                return Err(ConfigError::whole_file(
                    file,
                    format!(
                        "query {:?}: `{key}` is not used by the sql collector (the instance's `interval` and `path` apply); remove it, or run this query with sql-to-graphite --schedule",
                        q.name.0
                    ),
                ));
            }
        }
        Ok(())
    }

    fn into_collector(self) -> anyhow::Result<Box<dyn Collector>> {
        let dsn = dsn_of(
            self.dsn,
            self.dsn_env,
            "missing the database: set `dsn_env: VARIABLE` (or `dsn: postgres://user:password@host/db`)",
        )?;
        Ok(Box::new(Sql {
            dsn,
            db: None,
            queries: self.queries.into_iter().map(Query::from).collect(),
        }))
    }
}

pub struct Sql {
    dsn: Dsn,
    /// Made on the first run (pools need the async runtime; building a collector does not).
    db: Option<Database>,
    queries: Vec<Query>,
}

#[async_trait]
impl Collector for Sql {
    async fn collect(&mut self, out: &mut Batch) -> anyhow::Result<()> {
        let db = match &mut self.db {
            Some(db) => db,
            empty => empty
                .insert(Database::connect_lazy(&self.dsn, 1).map_err(|e| anyhow::anyhow!("{e}"))?),
        };
        let mut failures = Vec::new();
        for q in &self.queries {
            match run_query(db, q).await {
                Ok(samples) => {
                    for (name, value) in samples {
                        out.gauge(name, value);
                    }
                }
                Err(e) => failures.push(format!("query {} failed: {e}", q.label)),
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            anyhow::bail!("{}", failures.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;


    #[test]
    fn config_errors() {
        let q = "queries:\n- name: a\n  query: SELECT 1\n";
        let cases = [
            (format!("type: sql\n{q}"), "missing the database"),
            (format!("type: sql\ndsn: oracle://u:pw1@h/db\n{q}"), "unsupported scheme"),
            (
                format!("type: sql\ndsn: sqlite:///x.db\ndsn_env: X\n{q}"),
                "not both",
            ),
            (
                format!("type: sql\ndsn_env: CARBIDE_SURELY_UNSET_VAR\n{q}"),
                "CARBIDE_SURELY_UNSET_VAR is not set",
            ),
            (
                "type: sql\ndsn: sqlite:///x.db\nqueries:\n- name: a\n  query: q\n  schedule: '* * * * *'\n".to_string(),
                "`schedule` is not used by the sql collector",
            ),
            ("type: sql\ndsn: sqlite:///x.db\nqueries: []\n".to_string(), "no queries"),
        ];
        for (text, want) in cases {
            let e = KIND.load(&text).err().unwrap().to_string();
            assert!(e.contains(want), "{text}: {e}");
            assert!(!e.contains("pw1"), "{e}");
        }
        let ok = KIND.load(&format!(
            "type: sql\ndsn: postgres://u:pw1@127.0.0.1/db\n{q}"
        ))
        .unwrap();
        assert_eq!(ok.common.kind, "sql");
    }


}
