//! MySQL / MariaDB server statistics (`type: mysql`): `SHOW GLOBAL STATUS` (InnoDB included),
//! a subset of `SHOW GLOBAL VARIABLES` (limits to compare the status against) and, when asked,
//! `SHOW SLAVE STATUS` (replica lag and thread state), through sqlx in read-only
//! transactions. Names follow Diamond's MySQLCollector (`status.Threads_connected`,
//! `status.Com_select`, `slave.Seconds_Behind_Master`); status totals become per-second rates
//! in the runtime.


use async_trait::async_trait;

use super::dbserver::{self, Server};
use super::segment;
use super::{Batch, Collector, CollectorConfig, Kind};
use crate::sql::dsn::Driver;
use crate::sql::value::Cell;

pub const KIND: Kind = Kind {
    name: "mysql",
    default_path: "mysql",
    sample: include_str!("mysql.sample.yml"),
    build: super::build::<MysqlConfig>,
    circuit_breaker: true,
};

crate::collector_config! {
    /// Options of the MySQL / MariaDB collector.
    pub struct MysqlConfig with dsn {
        /// Also read `SHOW SLAVE STATUS` (needs the REPLICATION CLIENT / SLAVE MONITOR
        /// privilege); for replicas.
        #[serde(default)]
        pub replica: bool,
    }
}

impl CollectorConfig for MysqlConfig {
    fn into_collector(self) -> anyhow::Result<Box<dyn Collector>> {
        let dsn = dbserver::resolve_dsn(
            self.dsn,
            self.dsn_env,
            Driver::MySql,
            "mysql://carbide:password@127.0.0.1:3306/",
        )?;
        Ok(Box::new(Mysql {
            server: Server::new(dsn, self.timeout),
            replica: self.replica,
        }))
    }
}

pub struct Mysql {
    server: Server,
    replica: bool,
}

/// Status variables that are levels, not totals (Diamond's `_GAUGE_KEYS` that still exist,
/// and the newer ones of the same nature). Every other numeric status is a total.
const STATUS_GAUGES: &[&str] = &[
    "Innodb_buffer_pool_bytes_data",
    "Innodb_buffer_pool_bytes_dirty",
    "Innodb_buffer_pool_pages_data",
    "Innodb_buffer_pool_pages_dirty",
    "Innodb_buffer_pool_pages_free",
    "Innodb_buffer_pool_pages_misc",
    "Innodb_buffer_pool_pages_total",
    "Innodb_data_pending_fsyncs",
    "Innodb_data_pending_reads",
    "Innodb_data_pending_writes",
    "Innodb_os_log_pending_fsyncs",
    "Innodb_os_log_pending_writes",
    "Innodb_page_size",
    "Innodb_row_lock_current_waits",
    "Innodb_row_lock_time_avg",
    "Innodb_row_lock_time_max",
    "Innodb_history_list_length",
    "Innodb_num_open_files",
    "Key_blocks_not_flushed",
    "Key_blocks_unused",
    "Key_blocks_used",
    "Max_used_connections",
    "Memory_used",
    "Open_files",
    "Open_streams",
    "Open_table_definitions",
    "Open_tables",
    "Prepared_stmt_count",
    "Qcache_free_blocks",
    "Qcache_free_memory",
    "Qcache_queries_in_cache",
    "Qcache_total_blocks",
    "Slave_open_temp_tables",
    "Slaves_connected",
    "Slaves_running",
    "Threads_cached",
    "Threads_connected",
    "Threads_running",
    "Uptime",
    "Uptime_since_flush_status",
];

/// The server settings published under `variables.` (limits to compare the status with).
const VARIABLES: &str = "SHOW GLOBAL VARIABLES WHERE Variable_name IN \
    ('max_connections', 'innodb_buffer_pool_size', 'table_open_cache', 'open_files_limit', \
     'thread_cache_size', 'query_cache_size', 'max_allowed_packet', 'innodb_log_file_size', \
     'key_buffer_size', 'read_only')";

/// Numeric columns of `SHOW SLAVE STATUS` worth a metric, and the yes/no ones.
const SLAVE_NUMBERS: &[&str] = &[
    "Seconds_Behind_Master",
    "Read_Master_Log_Pos",
    "Exec_Master_Log_Pos",
    "Relay_Log_Space",
    "Last_IO_Errno",
    "Last_SQL_Errno",
];
const SLAVE_FLAGS: &[&str] = &["Slave_IO_Running", "Slave_SQL_Running"];

#[async_trait]
impl Collector for Mysql {
    async fn collect(&mut self, out: &mut Batch) -> anyhow::Result<()> {
        let rows = self
            .server
            .query("SHOW GLOBAL STATUS", "SHOW GLOBAL STATUS")
            .await?;
        for row in &rows.rows {
            let (Some(name), Some(Cell::Number(v))) =
                (row.first().and_then(Cell::as_name), row.get(1))
            else {
                continue;
            };
            let metric = format!("status.{}", segment(&name, false));
            // MariaDB and MySQL differ in case for a few (`Innodb_…` vs `INNODB_…`).
            if STATUS_GAUGES.iter().any(|g| g.eq_ignore_ascii_case(&name)) {
                out.gauge(metric, *v);
            } else {
                out.counter(metric, *v);
            }
        }

        let rows = self
            .server
            .query("SHOW GLOBAL VARIABLES", VARIABLES)
            .await?;
        for row in &rows.rows {
            let Some(name) = row.first().and_then(Cell::as_name) else {
                continue;
            };
            let value = match row.get(1) {
                Some(Cell::Number(v)) => *v,
                Some(Cell::Text(t)) if t.eq_ignore_ascii_case("on") => 1.0,
                Some(Cell::Text(t)) if t.eq_ignore_ascii_case("off") => 0.0,
                _ => continue,
            };
            out.gauge(format!("variables.{}", segment(&name, true)), value);
        }

        if self.replica {
            let rows = self
                .server
                .query("SHOW SLAVE STATUS", "SHOW SLAVE STATUS")
                .await?;
            // One row per replication channel; the first is the default one.
            if let Some(row) = rows.rows.first() {
                for col in SLAVE_NUMBERS {
                    if let Some(v) = dbserver::number(&rows, row, col) {
                        out.gauge(format!("slave.{col}"), v);
                    }
                }
                for col in SLAVE_FLAGS {
                    if let Some(t) = dbserver::name(&rows, row, col) {
                        out.gauge(format!("slave.{col}"), f64::from(t == "Yes"));
                    }
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
            ("type: mysql\n", "missing the server"),
            (
                "type: mysql\ndsn: postgres://u:pw1@h/db\n",
                "is a postgres DSN; this collector reads mysql servers",
            ),
            (
                "type: mysql\ndsn: mysql://u:pw1@h/\nslave: true\n",
                "unknown key",
            ),
        ] {
            let e = KIND.load(text).err().unwrap().to_string();
            assert!(e.contains(want), "{text}: {e}");
            assert!(!e.contains("pw1"), "{e}");
        }
        KIND.load("type: mysql\ndsn: mariadb://u:pw1@127.0.0.1/\n").unwrap();
    }


}
