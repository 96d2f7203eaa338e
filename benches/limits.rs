//! Counter figures: nanoseconds per rate-limit check (sliding log), per
//! quota check (fixed window) and per concurrency acquire/release, on one
//! thread and on two threads over distinct keys. Figures only, no
//! assertions on timing. Run with `cargo bench --bench limits`.

use std::sync::Arc;
use std::time::{Duration, Instant};
use turnpike::policy::counters::{Counters, QuotaLimits, Window};

const N: u64 = 200_000;

fn per_op(label: &str, ops: u64, f: impl FnOnce()) {
    let t = Instant::now();
    f();
    let ns = t.elapsed().as_nanos() as f64 / ops as f64;
    println!("{label:<48} {ns:>8.0} ns/op");
}

fn main() {
    let c = Arc::new(Counters::local());
    let keys: Vec<String> = (0..1000).map(|i| format!("key-{i}")).collect();
    per_op("rate check+record, 1000 keys, 1 thread", N, || {
        for i in 0..N {
            let k = &keys[(i % 1000) as usize];
            std::hint::black_box(c.rate(k, 1_000_000, Duration::from_secs(60), 1, true));
        }
    });
    let limits = QuotaLimits {
        calls: Some(u64::MAX),
        bytes: None,
    };
    let window = Window {
        period: 3600.0,
        anchor: None,
    };
    per_op("quota check+record, 1000 keys, 1 thread", N, || {
        for i in 0..N {
            let k = &keys[(i % 1000) as usize];
            std::hint::black_box(c.quota(k, limits, window, 1, 0, true));
        }
    });
    per_op("concurrency acquire+release, 1 thread", N, || {
        for i in 0..N {
            let k = &keys[(i % 1000) as usize];
            drop(std::hint::black_box(c.acquire(k, 10)));
        }
    });
    let c2 = Arc::new(Counters::local());
    per_op(
        "rate check+record, 2 threads (per op overall)",
        2 * N,
        || {
            let handles: Vec<_> = (0..2)
                .map(|t| {
                    let c = c2.clone();
                    std::thread::spawn(move || {
                        for i in 0..N {
                            let k = format!("t{t}-{}", i % 1000);
                            std::hint::black_box(c.rate(
                                &k,
                                1_000_000,
                                Duration::from_secs(60),
                                1,
                                true,
                            ));
                        }
                    })
                })
                .collect();
            for h in handles {
                let _ = h.join();
            }
        },
    );
    println!("counters held: {}", c.len() + c2.len());
}
