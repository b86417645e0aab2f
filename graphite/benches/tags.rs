//! Tag index benchmarks over 100k tagged series (`m<0..100>;dc=dc<0..7>;host=h<00000..01000>`):
//! building the index (what `Store::open` adds per series), and `find` with an exact match,
//! a regex over a small tag (100 names), a regex over a large one (1000 hosts), and a `!=`
//! filter.

use criterion::{criterion_group, criterion_main, Criterion};
use graphite::tags::{canonical, TagIndex};

fn names() -> Vec<String> {
    (0..100_000)
        .map(|i| {
            canonical(&format!("m{};host=h{:05};dc=dc{}", i % 100, i / 100, i % 7))
                .unwrap()
                .into_owned()
        })
        .collect()
}

fn tags(c: &mut Criterion) {
    let names = names();
    let mut g = c.benchmark_group("tags");
    g.sample_size(10);
    g.bench_function("index_100k_series", |b| {
        b.iter(|| {
            let mut ix = TagIndex::default();
            for n in &names {
                ix.insert(n.as_str().into());
            }
            ix
        })
    });
    let mut ix = TagIndex::default();
    for n in &names {
        ix.insert(n.as_str().into());
    }
    for (label, exprs) in [
        ("find_name_eq_host_re", &["name=m7", "host=~h0001"][..]),
        ("find_name_re", &["name=~m1[0-9]$"][..]),
        ("find_host_re_1000_values", &["host=~h00[0-4]"][..]),
        ("find_dc_eq_name_ne_14k", &["dc=dc3", "name!=m3"][..]),
    ] {
        g.bench_function(label, |b| b.iter(|| ix.find(exprs).unwrap()));
    }
    g.finish();
}

criterion_group!(benches, tags);
criterion_main!(benches);
