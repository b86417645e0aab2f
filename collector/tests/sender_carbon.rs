//! Lines go through the sender into a real carbon-cache and are read back from whisper.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use collector::sender::{self, Chunk, SenderConfig};
use common::carbon::Carbon;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sender_delivers_to_carbon_cache() {
    let carbon = Carbon::start();
    let spool = tempfile::tempdir().unwrap();
    let h = sender::spawn(SenderConfig {
        destinations: vec![carbon.addr()],
        spool_dir: Some(spool.path().into()),
        ..SenderConfig::default()
    })
    .unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let points: Vec<(&str, f64, i64)> = vec![
        ("carbide.test.sender.a", 1.5, now - 30),
        ("carbide.test.sender.a", -2.25, now - 20),
        ("carbide.test.sender.b-1", 42.0, now - 10),
        ("carbide.test.sender.c_x:y", 0.1, now - 5),
    ];
    let mut data = Vec::new();
    for (path, v, ts) in &points {
        graphite::protocol::encode_line(&mut data, path, *v, *ts).unwrap();
    }
    h.submit(Chunk {
        data,
        lines: points.len() as u32,
    });
    for metric in [
        "carbide.test.sender.a",
        "carbide.test.sender.b-1",
        "carbide.test.sender.c_x:y",
    ] {
        let want: Vec<(i64, Option<f64>)> = points
            .iter()
            .filter(|(p, _, _)| *p == metric)
            .map(|(_, v, ts)| (*ts, Some(*v)))
            .collect();
        let got = carbon.fetch_until(metric, |p| {
            p.iter().filter(|(_, v)| v.is_some()).count() == want.len()
        });
        let got: Vec<_> = got.into_iter().filter(|(_, v)| v.is_some()).collect();
        assert_eq!(got, want, "{metric}");
    }
    assert_eq!(h.stats().lines_sent, 4);
    h.shutdown(Duration::from_secs(5)).await.unwrap();
}
