//! PostgreSQL server statistics (`type: postgres`): `pg_stat_database` per database (with
//! its size), `pg_stat_bgwriter`, connections by state, longest transaction and query, and
//! replication (replicas and their lag on a primary, replay lag on a standby), through sqlx
//! in read-only transactions. Names follow Diamond's PostgresqlCollector
//! (`database.<db>.xact_commit`, `bgwriter.checkpoints_timed`, …); its counters become
//! per-second rates in the runtime.


use async_trait::async_trait;

use super::dbserver::{self, Server};
use super::segment;
use super::{Batch, Collector, CollectorConfig, Kind};
use crate::sql::dsn::Driver;
use crate::sql::value::Cell;

pub const KIND: Kind = Kind {
    name: "postgres",
    default_path: "postgres",
    sample: include_str!("postgres.sample.yml"),
    build: super::build::<PostgresConfig>,
    circuit_breaker: true,
};

crate::collector_config! {
    /// Options of the PostgreSQL collector.
    pub struct PostgresConfig with dsn {}
}

impl CollectorConfig for PostgresConfig {
    fn into_collector(self) -> anyhow::Result<Box<dyn Collector>> {
        let dsn = dbserver::resolve_dsn(
            self.dsn,
            self.dsn_env,
            Driver::Postgres,
            "postgres://carbide:password@127.0.0.1:5432/postgres",
        )?;
        Ok(Box::new(Postgres {
            server: Server::new(dsn, self.timeout),
        }))
    }
}

pub struct Postgres {
    server: Server,
}

/// Per database. `size` only where the user may connect (or reads all stats).
const DATABASES: &str = "SELECT d.datname, s.numbackends, s.xact_commit, s.xact_rollback, \
    s.blks_read, s.blks_hit, s.tup_returned, s.tup_fetched, s.tup_inserted, s.tup_updated, \
    s.tup_deleted, s.conflicts, s.deadlocks, s.temp_files, s.temp_bytes, \
    CASE WHEN has_database_privilege(d.oid, 'CONNECT') \
         THEN pg_database_size(d.oid) END AS size \
    FROM pg_database d JOIN pg_stat_database s ON s.datid = d.oid \
    WHERE NOT d.datistemplate";

/// `pg_stat_database` columns that are totals (published as rates).
const DB_COUNTERS: &[&str] = &[
    "xact_commit",
    "xact_rollback",
    "blks_read",
    "blks_hit",
    "tup_returned",
    "tup_fetched",
    "tup_inserted",
    "tup_updated",
    "tup_deleted",
    "conflicts",
    "deadlocks",
    "temp_files",
    "temp_bytes",
];

/// Client connections (not the agent's own) by state, and how many wait for a lock.
const ACTIVITY: &str = "SELECT COALESCE(state, 'unknown') AS state, count(*) AS n, \
    count(*) FILTER (WHERE wait_event_type = 'Lock') AS waiting, \
    COALESCE(max(EXTRACT(EPOCH FROM now() - xact_start)), 0) AS longest_xact, \
    COALESCE(max(EXTRACT(EPOCH FROM now() - query_start)) FILTER (WHERE state = 'active'), 0) \
        AS longest_query \
    FROM pg_stat_activity \
    WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() \
    GROUP BY 1";

/// The states `pg_stat_activity.state` can have, each published (0 when none).
const STATES: &[&str] = &[
    "active",
    "idle",
    "idle_in_transaction",
    "idle_in_transaction_aborted",
    "fastpath_function_call",
    "disabled",
];

/// Server-wide: the connection limit and replication, on a primary or a standby. A replica's
/// `replay_lsn` is NULL to a user without `pg_monitor`: its lag is then left out, never
/// reported as 0.
const SERVER: &str = "SELECT current_setting('max_connections')::int AS max_connections, \
    pg_is_in_recovery() AS standby, \
    CASE WHEN pg_is_in_recovery() \
         THEN COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) END \
         AS replay_lag_seconds, \
    (SELECT count(*) FROM pg_stat_replication) AS replicas, \
    CASE WHEN NOT pg_is_in_recovery() THEN \
         (SELECT CASE WHEN count(*) = 0 THEN 0 \
                      ELSE max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)) END \
          FROM pg_stat_replication) END AS replica_lag_bytes";

/// Every numeric column is a total (`stats_reset`, a timestamp, is skipped).
const BGWRITER: &str = "SELECT * FROM pg_stat_bgwriter";

#[async_trait]
impl Collector for Postgres {
    async fn collect(&mut self, out: &mut Batch) -> anyhow::Result<()> {
        let rows = self.server.query("pg_stat_database", DATABASES).await?;
        for row in &rows.rows {
            let Some(db) = dbserver::name(&rows, row, "datname") else {
                continue;
            };
            let db = segment(&db, false);
            for (col, cell) in rows.columns.iter().zip(row) {
                let Cell::Number(v) = cell else { continue };
                match col.as_str() {
                    "numbackends" => {
                        out.gauge(format!("database.{db}.numbackends"), *v);
                        // Diamond's DatabaseConnectionCount
                        out.gauge(format!("database.{db}.connections"), *v);
                    }
                    "size" => out.gauge(format!("database.{db}.size"), *v),
                    c if DB_COUNTERS.contains(&c) => out.counter(format!("database.{db}.{c}"), *v),
                    _ => {}
                }
            }
        }

        let rows = self.server.query("pg_stat_activity", ACTIVITY).await?;
        let mut counts = vec![0.0; STATES.len()];
        let (mut total, mut waiting, mut xact, mut query) = (0.0, 0.0, 0.0_f64, 0.0_f64);
        for row in &rows.rows {
            let state = dbserver::name(&rows, row, "state").unwrap_or_default();
            let state = segment(&state.replace(" (aborted)", "_aborted"), true);
            let n = dbserver::number(&rows, row, "n").unwrap_or(0.0);
            total += n;
            waiting += dbserver::number(&rows, row, "waiting").unwrap_or(0.0);
            xact = xact.max(dbserver::number(&rows, row, "longest_xact").unwrap_or(0.0));
            query = query.max(dbserver::number(&rows, row, "longest_query").unwrap_or(0.0));
            match STATES.iter().position(|s| *s == state) {
                Some(i) => counts[i] += n,
                None => out.gauge(format!("connections.{state}"), n),
            }
        }
        for (state, n) in STATES.iter().zip(counts) {
            out.gauge(format!("connections.{state}"), n);
        }
        out.gauge("connections.total", total);
        out.gauge("connections.waiting", waiting);
        out.gauge("longest_running.transaction", xact);
        out.gauge("longest_running.query", query);

        let rows = self.server.query("server settings", SERVER).await?;
        if let Some(row) = rows.rows.first() {
            for (col, cell) in rows.columns.iter().zip(row) {
                let Cell::Number(v) = cell else { continue };
                match col.as_str() {
                    "max_connections" => out.gauge("connections.max", *v),
                    "standby" => out.gauge("replication.standby", *v),
                    "replay_lag_seconds" => out.gauge("replication.replay_lag_seconds", *v),
                    "replicas" => out.gauge("replication.replicas", *v),
                    "replica_lag_bytes" => out.gauge("replication.replica_lag_bytes", *v),
                    _ => {}
                }
            }
        }

        let rows = self.server.query("pg_stat_bgwriter", BGWRITER).await?;
        if let Some(row) = rows.rows.first() {
            for (col, cell) in rows.columns.iter().zip(row) {
                if let Cell::Number(v) = cell {
                    out.counter(format!("bgwriter.{}", segment(col, true)), *v);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;


    #[test]
    fn config_errors() {
        for (text, want) in [
            ("type: postgres\n", "missing the server"),
            (
                "type: postgres\ndsn: mysql://u:pw1@h/db\n",
                "is a mysql DSN; this collector reads postgres servers",
            ),
            (
                "type: postgres\ndsn_env: CARBIDE_SURELY_UNSET_VAR\n",
                "CARBIDE_SURELY_UNSET_VAR is not set",
            ),
        ] {
            let e = KIND.load(text).err().unwrap().to_string();
            assert!(e.contains(want), "{text}: {e}");
            assert!(!e.contains("pw1"), "{e}");
        }
        KIND.load("type: postgres\ndsn: postgres://u:pw1@127.0.0.1/postgres\n").unwrap();
    }


}
