//! Counter figures: nanoseconds per rate-limit check (sliding log), per
//! quota check (fixed window) and per concurrency acquire/release, on one
//! thread and on two threads over distinct keys; then, when
//! `redis-server` is installed, a rate-limit-by-key check through Redis
//! (one script round trip on loopback) one at a time and 32 in flight.
//! Figures only, no assertions on timing. Run with
//! `cargo bench --bench limits`.
#[path = "support/redis.rs"]
mod support;
use support::redis_server;

use std::sync::Arc;
use std::time::{Duration, Instant};
use turnpike::policy::counters::{Counters, QuotaLimits, RateCheck, Window};

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
    redis_figures();
}

fn redis_figures() {
    let Some((mut child, port, _dir)) = redis_server() else {
        println!("redis figures skipped: redis-server is not installed");
        return;
    };
    let Ok(rt) = tokio::runtime::Runtime::new() else {
        return;
    };
    rt.block_on(async {
        let mut cfg = turnpike::config::Settings::defaults().redis;
        cfg.url = Some(turnpike::error::Secret::new(format!(
            "redis://127.0.0.1:{port}"
        )));
        let Ok(Some(r)) = turnpike::redis::Redis::from_config(&cfg) else {
            println!("redis figures skipped: no client");
            return;
        };
        let c = Arc::new(Counters::shared(r));
        let check = |i: u64| {
            vec![RateCheck {
                key: format!("rate-limit-by-key\0key-{}", i % 1000),
                limit: 1_000_000,
                period: Duration::from_secs(60),
                add: 1,
            }]
        };
        // Warm up: connect and load the script.
        c.rate_all(&check(0), true).await;
        const M: u64 = 20_000;
        let t = Instant::now();
        for i in 0..M {
            std::hint::black_box(c.rate_all(&check(i), true).await);
        }
        let ns = t.elapsed().as_nanos() as f64 / M as f64;
        println!(
            "{:<48} {ns:>8.0} ns/op",
            "redis rate check+record, 1 in flight"
        );
        let t = Instant::now();
        let tasks: Vec<_> = (0..32u64)
            .map(|w| {
                let c = c.clone();
                tokio::spawn(async move {
                    for i in 0..M / 32 {
                        let k = vec![RateCheck {
                            key: format!("rate-limit-by-key\0w{w}-{}", i % 100),
                            limit: 1_000_000,
                            period: Duration::from_secs(60),
                            add: 1,
                        }];
                        std::hint::black_box(c.rate_all(&k, true).await);
                    }
                })
            })
            .collect();
        for t in tasks {
            let _ = t.await;
        }
        let ns = t.elapsed().as_nanos() as f64 / (M / 32 * 32) as f64;
        println!(
            "{:<48} {ns:>8.0} ns/op",
            "redis rate check+record, 32 in flight"
        );
    });
    let _ = child.kill();
    let _ = child.wait();
}
