//! The alerter's own metrics, sent to carbon over plaintext TCP after every cycle (lines
//! built with [`graphite::protocol::encode_line`]): evaluation duration, fetch errors,
//! alert × series per level, notifications enqueued / pending / delivered / failed, and a
//! heartbeat (always 1) for a deadman alert such as
//! `- {name: Alerter down, target: "transformNull(carbide.alerter.heartbeat, 0)", warning: 0.5, critical: 0.5, op: "<", reduce: max, from: -5min}`.

use std::time::Duration;

use tokio::io::AsyncWriteExt;

use crate::notification::Level;
use crate::outbox::Counts;
use crate::pipeline::engine::CycleReport;

/// The lines for one cycle (`prefix.name value timestamp`).
pub fn lines(prefix: &str, report: &CycleReport, counts: Counts) -> Vec<u8> {
    let mut buf = Vec::new();
    let t = report.at;
    let mut put = |name: &str, v: f64| {
        let path = format!("{prefix}.{name}");
        if let Err(e) = graphite::protocol::encode_line(&mut buf, &path, v, t) {
            tracing::warn!("self-metric {path}: {e}");
        }
    };
    put("heartbeat", 1.0);
    put(
        "evaluation.duration_ms",
        report.duration.as_secs_f64() * 1000.0,
    );
    put("evaluation.fetch_errors", report.fetch_errors as f64);
    put("evaluation.level_changes", report.changes.len() as f64);
    for level in Level::ALL {
        let n = report.levels.get(&level).copied().unwrap_or(0);
        put(
            &format!("alerts.{}", level.as_str().to_ascii_lowercase()),
            n as f64,
        );
    }
    put("notifications.enqueued", report.messages.len() as f64);
    put("notifications.held", report.held as f64);
    put("notifications.queued", counts.pending as f64);
    put("notifications.sent", counts.delivered as f64);
    put("notifications.failed", counts.failed as f64);
    put("notifications.expired", counts.expired as f64);
    buf
}

/// Write `buf` to carbon at `addr` (connect + write bounded by `timeout`).
pub async fn send(addr: &str, buf: &[u8], timeout: Duration) -> anyhow::Result<()> {
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(buf).await?;
        s.shutdown().await?;
        anyhow::Ok(())
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| anyhow::anyhow!("self-metrics to {addr}: timed out"))?
        .map_err(|e| anyhow::anyhow!("self-metrics to {addr}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn lines_reach_a_real_listener() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let report = CycleReport {
            at: 1_700_000_000,
            duration: Duration::from_millis(250),
            levels: [(Level::Critical, 2)].into(),
            ..Default::default()
        };
        let buf = lines(
            "carbide.alerter",
            &report,
            Counts {
                pending: 1,
                delivered: 5,
                failed: 0,
                expired: 0,
            },
        );
        let server = tokio::spawn(async move {
            let (mut c, _) = l.accept().await.unwrap();
            let mut text = String::new();
            c.read_to_string(&mut text).await.unwrap();
            text
        });
        send(&addr, &buf, Duration::from_secs(5)).await.unwrap();
        let text = server.await.unwrap();
        for want in [
            "carbide.alerter.heartbeat 1 1700000000\n",
            "carbide.alerter.evaluation.duration_ms 250 1700000000\n",
            "carbide.alerter.alerts.critical 2 1700000000\n",
            "carbide.alerter.alerts.no_data 0 1700000000\n",
            "carbide.alerter.notifications.queued 1 1700000000\n",
            "carbide.alerter.notifications.sent 5 1700000000\n",
            "carbide.alerter.notifications.expired 0 1700000000\n",
        ] {
            assert!(text.contains(want), "{want} in {text}");
        }
        assert_eq!(text.lines().count(), 15);
    }
}
