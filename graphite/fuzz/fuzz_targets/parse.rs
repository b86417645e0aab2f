//! Feeds arbitrary text to the target parser, the glob compiler and the time parser: none may
//! panic, hang or allocate without bound; a parsed target must print and re-parse.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    match graphite::expr::parse(s) {
        Ok(expr) => {
            let _ = expr.to_string();
        }
        Err(e) => {
            assert!(e.column() >= 1 && e.column() <= s.chars().count() + 1);
            let _ = e.to_string();
        }
    }
    let _ = graphite::expr::parse_prefix(s, &[("x", "1")]);
    if let Ok(g) = graphite::glob::GlobPattern::new(s) {
        let _ = g.matches("servers.web1.cpu.user");
        let _ = g.matches(s);
    }
    let _ = graphite::attime::parse_time(s, 1_700_000_000, &graphite::attime::TimeZone::utc());
});
