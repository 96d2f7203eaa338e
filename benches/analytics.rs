//! Analytics figures: nanoseconds per recorded request (the gateway's hot
//! path: one shard lock, one map update), per stored row (a flush), and
//! the time of a report over a day of minutes. Figures only, no
//! assertions on timing. Run with `cargo bench --bench analytics`.

use std::sync::Arc;
use std::time::{Duration, Instant};
use turnpike::analytics::{report, AnalyticsDb, GroupBy, Recorder, ReportQuery, Sample};

const N: u64 = 500_000;

fn per_op(label: &str, ops: u64, f: impl FnOnce()) {
    let t = Instant::now();
    f();
    let ns = t.elapsed().as_nanos() as f64 / ops as f64;
    println!("{label:<56} {ns:>10.0} ns/op");
}

const APIS: [&str; 10] = ["a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9"];

fn sample(i: u64) -> Sample<'static> {
    Sample {
        api: APIS[(i % 10) as usize],
        operation: "get-items",
        product: "starter",
        subscription: "sub-0001",
        user: "alice",
        status: if i.is_multiple_of(17) { 429 } else { 200 },
        bytes_in: 120,
        bytes_out: 2048,
        total: Duration::from_micros(800 + i % 5000),
        backend: Some(Duration::from_micros(500 + i % 3000)),
        cache: None,
    }
}

fn main() {
    let rec = Arc::new(Recorder::new("West US", 10_000));
    per_op("record, 10 keys, 1 thread", N, || {
        for i in 0..N {
            rec.record(&sample(i));
        }
    });
    rec.drain();
    per_op("record, 10 keys, 2 threads (per op)", 2 * N, || {
        let hs: Vec<_> = (0..2)
            .map(|_| {
                let r = rec.clone();
                std::thread::spawn(move || {
                    for i in 0..N {
                        r.record(&sample(i));
                    }
                })
            })
            .collect();
        for h in hs {
            let _ = h.join();
        }
    });
    println!(
        "  dropped (every shard busy), overflowed: {:?}",
        rec.losses()
    );
    rec.drain();

    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store = turnpike::store::Store::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let db = AnalyticsDb::open(&store).unwrap_or_else(|e| panic!("{e}"));
    // A day of minutes, 10 keys each.
    let start = 29_000_000u64;
    let mut rows = Vec::new();
    for m in 0..1440 {
        for i in 0..10 {
            rec.record_at(start + m, &sample(i));
        }
        rows.extend(rec.drain());
    }
    let n = rows.len() as u64;
    per_op("flush: merge a stored row (a day, 14,400 rows)", n, || {
        for chunk in rows.chunks(500) {
            db.merge(chunk).unwrap_or_else(|e| panic!("{e}"));
        }
    });
    println!("  stored bytes: {}", db.bytes());
    let catalog = store.catalog();
    for by in [GroupBy::Api, GroupBy::Time] {
        let mut q = ReportQuery::new(start * 60, (start + 1439) * 60, by);
        q.interval_minutes = 60;
        let t = Instant::now();
        let rows = report(&db, &catalog, &q).unwrap_or_else(|e| panic!("{e}"));
        println!(
            "report {by:?} over a day ({} rows out)                 {:>10.2} ms",
            rows.len(),
            t.elapsed().as_secs_f64() * 1000.0
        );
    }
}
