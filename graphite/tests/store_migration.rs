//! A database written by the dense-chunk store (format 1: `fixtures/store-v1.sqlite`, made by
//! `fixtures/make-store-v1.sh` with a real `carbide serve` of that format) is migrated to
//! compressed chunks when opened, and answers every query as that server rendered it
//! (`fixtures/store-v1.expected.json`): several archives, tagged and untagged series, nulls,
//! sparse and dense chunks, sum/max/average rollups.

use std::path::{Path, PathBuf};

use graphite::store::schema::Schemas;
use graphite::store::Store;
use serde_json::Value as Json;
use sqlx::{Connection as _, Row as _};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// (format version, chunks per blob tag, total chunk bytes) of the database in `dir`.
async fn inspect(dir: &Path) -> (i64, Vec<(u8, i64)>, i64) {
    let mut c = sqlx::SqliteConnection::connect(&format!(
        "sqlite://{}?mode=ro",
        dir.join("carbide.db").display()
    ))
    .await
    .unwrap();
    let version: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(&mut c)
        .await
        .unwrap();
    let tags = sqlx::query(
        "SELECT CAST(substr(hex(data), 1, 2) AS INTEGER), count(*) FROM chunks GROUP BY 1",
    )
    .fetch_all(&mut c)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get::<i64, _>(0) as u8, r.get::<i64, _>(1)))
    .collect();
    let bytes: i64 = sqlx::query_scalar("SELECT sum(length(data)) FROM chunks")
        .fetch_one(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
    (version, tags, bytes)
}

/// Every recorded render answer, fetched from `store`: same name, timestamps and values.
async fn same_answers(store: &Store, expected: &Json) -> usize {
    let now = expected["now"].as_i64().unwrap();
    let mut points = 0;
    for case in expected["cases"].as_array().unwrap() {
        let target = case["target"].as_str().unwrap();
        let (from, until) = (
            case["from"].as_i64().unwrap(),
            case["until"].as_i64().unwrap(),
        );
        let got = store.fetch(target, from, until, now).await.unwrap();
        let want = case["answer"].as_array().unwrap();
        assert_eq!(got.len(), want.len(), "{target} {from}..{until}");
        for (g, w) in got.iter().zip(want) {
            let ctx = format!("{target} {from}..{until}");
            assert_eq!(g.path, w["name"].as_str().unwrap(), "{ctx}");
            assert_eq!(g.start, w["start"].as_i64().unwrap(), "{ctx}");
            let values = w["values"].as_array().unwrap();
            if values.len() > 1 {
                assert_eq!(g.step, w["step"].as_i64().unwrap(), "{ctx}");
            }
            let values: Vec<Option<f64>> = values
                .iter()
                .map(|v| v.as_str().map(|s| s.parse().unwrap()))
                .collect();
            assert_eq!(g.values, values, "{ctx}");
            points += values.iter().flatten().count();
        }
    }
    points
}

#[tokio::test]
async fn a_format_1_database_is_migrated_on_open_and_answers_as_before() {
    let expected: Json =
        serde_json::from_str(&std::fs::read_to_string(fixture("store-v1.expected.json")).unwrap())
            .unwrap();
    let now = expected["now"].as_i64().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("store-v1.sqlite"), dir.path().join("carbide.db")).unwrap();
    let (version, tags, before) = inspect(dir.path()).await;
    assert_eq!(version, 0, "the fixture predates format versions");
    assert!(
        tags.iter().any(|t| t.0 == 0) && tags.iter().any(|t| t.0 == 1),
        "dense and sparse format-1 chunks: {tags:?}"
    );

    let store = Store::open(dir.path(), Schemas::default(), 1_000_000)
        .await
        .unwrap();
    let (version, tags, after) = inspect(dir.path()).await;
    assert_eq!(version, 2);
    assert!(
        tags.iter().all(|t| t.0 == 2),
        "every chunk re-encoded: {tags:?}"
    );
    assert!(
        after * 3 < before,
        "{before} bytes of chunks became {after}"
    );
    let points = same_answers(&store, &expected).await;
    assert!(points > 2000, "{points} points compared");

    // Values known by construction, in every archive: the constant, the tagged series sent
    // in a non-canonical spelling, the gauge's few values.
    for (from, step) in [(now - 1800, 10), (now - 3 * 3600, 60), (now - 86_400, 600)] {
        let c = &store.fetch("fx.const", from, now, now).await.unwrap()[0];
        assert_eq!(c.step, step);
        assert!(c.values.iter().flatten().all(|v| *v == 42.0));
        assert!(c.values.iter().flatten().count() >= 15);
    }
    let b = &store
        .fetch("fx.cpu;host=b;dc=x", now - 1800, now, now)
        .await
        .unwrap()[0];
    assert_eq!(b.path, "fx.cpu;dc=x;host=b");
    assert!(b.values.iter().flatten().all(|v| v.fract() == 0.0));

    // New points merge into migrated chunks; reopening migrates nothing more.
    assert!(store.insert_at("fx.const", now - 5, 43.5, now));
    store.flush_at(now).await.unwrap();
    drop(store);
    let store = Store::open(dir.path(), Schemas::default(), 1_000_000)
        .await
        .unwrap();
    let c = &store.fetch("fx.const", now - 60, now, now).await.unwrap()[0];
    let want = [
        Some(42.0),
        Some(42.0),
        Some(42.0),
        Some(42.0),
        Some(43.5),
        None,
    ];
    assert_eq!(c.values, want);
    let m = &store
        .fetch("fx.walk", now - 3 * 3600, now, now)
        .await
        .unwrap()[0];
    assert!(m.values.iter().any(Option::is_none), "nulls kept");
}
