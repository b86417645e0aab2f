//! Configurations the tests take from `docs/` as they are written there, so the documented
//! deployments are the tested ones: a block is the fenced block after an
//! `<!-- test: NAME -->` line. Shared by the root package's tests (`common::docs`) and
//! `collector/tests/placement_relays.rs` (by path).
#![allow(dead_code)]

use std::path::Path;

/// The text of the block marked `<!-- test: NAME -->` in `docs/FILE` (from the workspace root).
pub fn block(file: &str, name: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // The root package's tests run from the workspace root; collector's one level down.
    let path = [
        root.join("docs").join(file),
        root.join("../docs").join(file),
    ]
    .into_iter()
    .find(|p| p.exists())
    .unwrap_or_else(|| panic!("no docs/{file}"));
    let md = std::fs::read_to_string(&path).unwrap();
    let marker = format!("<!-- test: {name} -->");
    let mut lines = md.lines().skip_while(|l| l.trim() != marker);
    assert!(lines.next().is_some(), "no {marker} in docs/{file}");
    let fence = lines.next().unwrap_or_default();
    assert!(
        fence.starts_with("```"),
        "{marker} in docs/{file} is not followed by a fenced block"
    );
    let mut text = String::new();
    for l in lines.by_ref() {
        if l.starts_with("```") {
            return text;
        }
        text.push_str(l);
        text.push('\n');
    }
    panic!("{marker} in docs/{file}: the block is not closed")
}

/// `text` with each `from` replaced by its `to` (the documented addresses by the test's), each
/// `from` required to be there: a doc that changed its addresses fails here, not later.
pub fn with<F: AsRef<str>, T: AsRef<str>>(text: &str, subs: &[(F, T)]) -> String {
    let mut out = text.to_string();
    for (from, to) in subs {
        let (from, to) = (from.as_ref(), to.as_ref());
        assert!(
            out.contains(from),
            "{from:?} is not in the documented block:\n{text}"
        );
        out = out.replace(from, to);
    }
    out
}
