//! Metrics figures: nanoseconds per request recorded into the Prometheus
//! families (one lock-free map load, a lookup and relaxed atomics), from
//! one and two threads, and the cost of rendering a scrape. Figures only,
//! no assertions on timing. Run with `cargo bench --bench metrics`.

use std::sync::Arc;
use std::time::{Duration, Instant};
use turnpike::telemetry::prometheus::{render, Metrics, NodeInfo, Observed};
use turnpike::telemetry::registry::Registry;

const N: u64 = 500_000;

const APIS: [&str; 10] = ["a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9"];

fn per_op(label: &str, ops: u64, f: impl FnOnce()) {
    let t = Instant::now();
    f();
    let ns = t.elapsed().as_nanos() as f64 / ops as f64;
    println!("{label:<56} {ns:>8.0} ns/op");
}

fn observed(i: u64) -> Observed<'static> {
    Observed {
        api: APIS[(i % 10) as usize],
        operation: "get-item",
        product: "starter",
        status: if i.is_multiple_of(7) { 404 } else { 200 },
        total: Duration::from_micros(300 + i % 5000),
        backend: Some(Duration::from_micros(200 + i % 4000)),
        request_bytes: 0,
        response_bytes: 512,
    }
}

fn main() {
    let m = Arc::new(Metrics::default());
    per_op("observe request, 20 series, 1 thread", N, || {
        for i in 0..N {
            m.observe(&observed(i));
        }
    });
    per_op(
        "observe request, 20 series, 2 threads (per op)",
        2 * N,
        || {
            let hs: Vec<_> = (0..2)
                .map(|_| {
                    let m = m.clone();
                    std::thread::spawn(move || {
                        for i in 0..N {
                            m.observe(&observed(i));
                        }
                    })
                })
                .collect();
            for h in hs {
                let _ = h.join();
            }
        },
    );
    per_op("limit rejection counter, 1 thread", N, || {
        for i in 0..N {
            m.rejected(APIS[(i % 10) as usize], "rate-limit");
        }
    });
    let reg = Registry::default();
    for i in 0..100 {
        reg.record("shop", "calls", vec![("tier".into(), i.to_string())], 1.0);
    }
    let node = NodeInfo {
        region: "default",
        revision: 7,
        ..NodeInfo::default()
    };
    let text = render(&m, &reg, &node);
    per_op(
        &format!("render scrape ({} bytes, 20 request series)", text.len()),
        200,
        || {
            for _ in 0..200 {
                std::hint::black_box(render(&m, &reg, &node));
            }
        },
    );
}
