//! Gateway hot-path micro-benchmarks (criterion): routing (API by path
//! prefix, then the operation table) and the subscription-key lookup, on a
//! one-API snapshot and on one holding 10,000 APIs and 100,000
//! subscriptions (`support/catalog.rs`, the configuration of
//! `vs-nginx.sh`'s `scale` variant). Also prints the compile time of each
//! snapshot. Figures only; `cargo bench --bench gateway`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use std::time::Instant;
use turnpike::model::Catalog;

#[path = "support/catalog.rs"]
mod catalog;

const KEY: &str = "bench0123456789abcdef0123456789ab";

fn snapshot(apis: usize, subs: usize) -> turnpike::snapshot::Snapshot {
    let mut c = Catalog::new();
    for change in catalog::changes(apis, subs, "http://127.0.0.1:9", KEY) {
        c.apply(&change);
    }
    let t = Instant::now();
    let snap = turnpike::snapshot::compile(&c).expect("compiles");
    println!(
        "snapshot compile, {apis} APIs / {subs} subscriptions: {:.1} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    snap
}

/// What `gateway::admit` does to route: API by path, then operation.
fn route(snap: &turnpike::snapshot::Snapshot, path: &str) -> Option<(usize, usize)> {
    let m = snap.match_api(path)?;
    let segments: Vec<&str> = m.rest.split('/').filter(|s| !s.is_empty()).collect();
    let op = m.api.table.find("GET", &segments, None)?;
    Some((m.index, op))
}

fn benches(c: &mut Criterion) {
    for (apis, subs) in [(1, 1), (10_000, 100_000)] {
        let snap = snapshot(apis, subs);
        let label = format!("{apis} APIs / {subs} subscriptions");
        assert!(route(&snap, "/api/x").is_some());
        c.bench_function(&format!("route /api/x ({label})"), |b| {
            b.iter(|| route(black_box(&snap), black_box("/api/x")))
        });
        if apis > 1 {
            assert!(route(&snap, "/services/svc-05000/items/42").is_some());
            c.bench_function(
                &format!("route /services/svc-05000/items/42 ({label})"),
                |b| b.iter(|| route(black_box(&snap), black_box("/services/svc-05000/items/42"))),
            );
        }
        assert!(snap.key(KEY).is_some());
        c.bench_function(&format!("subscription key lookup ({label})"), |b| {
            b.iter(|| snap.key(black_box(KEY)).is_some())
        });
        c.bench_function(&format!("unknown key lookup ({label})"), |b| {
            b.iter(|| {
                snap.key(black_box("ffffffffffffffffffffffffffffffff"))
                    .is_none()
            })
        });
    }
}

criterion_group!(gateway, benches);
criterion_main!(gateway);
