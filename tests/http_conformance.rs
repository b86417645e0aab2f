//! graphite-web 1.1.10's recorded answers (`graphite/tests/conformance/golden/*.json`) replayed
//! through `carbide serve`'s HTTP API, on the recorded fixtures loaded through the carbon
//! port: the whole path a dashboard sees (carbon listener → cache → fetch → evaluator →
//! `format=json` bytes). The server runs with its clock frozen at the recording's `NOW` and
//! carbon's schemas of the fixtures; every golden entry is requested with the recorded
//! `from`/`until`/`now` and parameters, and a 200 body must equal graphite-web's (same names,
//! tags, timestamps, null for null, values within 1e-9 relative, as the in-process conformance
//! test compares); graphite-web's errors must be errors.
//!
//! Skipped, with reasons: `common::conformance::skipped`.

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use common::conformance::{
    self, check, conformance_dir, fixture_lines, goldens, known_differences, request, SCHEMAS,
};
use common::Carbide;
use serde_json::Value as Json;

/// `"id": 123` → `"id": N`.
fn mask_ids(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some(i) = rest.find("\"id\": ") {
        out.push_str(&rest[..i + 6]);
        rest = &rest[i + 6..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        out.push('N');
        rest = &rest[digits..];
    }
    out + rest
}

#[test]
fn goldens_replayed_through_the_http_api() {
    let fixtures: Json = serde_json::from_str(
        &std::fs::read_to_string(conformance_dir().join("fixtures.json")).unwrap(),
    )
    .unwrap();
    let now = fixtures["now"].as_i64().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("schemas.conf"), SCHEMAS).unwrap();
    let c = Carbide::start(
        dir.path(),
        &[
            "serve",
            "--data-dir",
            "data",
            "--carbon-tcp",
            "127.0.0.1:0",
            "--carbon-udp",
            "off",
            "--http-listen",
            "127.0.0.1:0",
            "--schemas",
            "schemas.conf",
            "--frozen-clock",
            &now.to_string(),
        ],
    );
    // Everything on one connection, a sentinel last: once it is visible, all is cached.
    let mut text = fixture_lines(&fixtures, now);
    let _ = writeln!(text, "zz.sentinel 1 {now}");
    common::send_lines(c.carbon, &text);
    assert!(common::wait_until(
        std::time::Duration::from_secs(60),
        || {
            let (_, b) = c.get("/metrics/expand?query=zz.sentinel");
            b.contains("zz.sentinel")
        }
    ));

    let skip = known_differences();
    let (mut passed, mut skipped) = (0, 0);
    let mut failures = Vec::new();
    let mut per_family: BTreeMap<String, usize> = BTreeMap::new();
    for (family, entries) in goldens() {
        for e in &entries {
            let target = e["target"].as_str().unwrap();
            if conformance::skipped(target, &skip) {
                skipped += 1;
                continue;
            }
            let (status, body) = c.get(&request(e, now));
            match check(e, status, &body) {
                Ok(()) => {
                    passed += 1;
                    *per_family.entry(family.clone()).or_default() += 1;
                }
                Err(why) => failures.push(format!("[{family}] {target}: {why}")),
            }
        }
    }
    // graphite-web's /tags API answers (recorded by record.py), byte for byte but for the
    // ids, which each side assigns in its own insertion order.
    let api: Json = serde_json::from_str(
        &std::fs::read_to_string(conformance_dir().join("tags_api.json")).unwrap(),
    )
    .unwrap();
    let mut api_passed = 0;
    for e in api.as_array().unwrap() {
        let path = e["path"].as_str().unwrap();
        let (status, body) = c.get(path);
        let want = (
            e["status"].as_u64().unwrap() as u16,
            e["body"].as_str().unwrap(),
        );
        if (status, mask_ids(&body)) == (want.0, mask_ids(want.1)) {
            api_passed += 1;
        } else {
            failures.push(format!(
                "[tags API] {path}: got {status} {body}, want {} {}",
                want.0, want.1
            ));
        }
    }
    eprintln!("HTTP replay: {passed} passed, {skipped} skipped, per family {per_family:?}; tags API {api_passed}");
    assert!(
        failures.is_empty(),
        "{} of {} goldens differ through the HTTP API:\n{}",
        failures.len(),
        passed + failures.len(),
        failures.join("\n")
    );
    assert!(passed > 500, "only {passed} goldens replayed");
    assert!(c.stop());
}
