//! Telemetry figures: nanoseconds per custom-metric record (registry), per
//! logger send (the request path's non-blocking queue push to a file
//! logger), per prompt estimate of a chat request and per byte of a
//! scanned event stream. Figures only, no assertions on timing. Run with
//! `cargo bench --bench telemetry`.

use std::sync::Arc;
use std::time::{Duration, Instant};
use turnpike::policy::builtin::llm::{estimate_prompt, parse_sse};
use turnpike::telemetry::loggers::{LoggerDefs, Loggers, Record, SinkConfig};
use turnpike::telemetry::registry::Registry;

const N: u64 = 200_000;

fn per_op(label: &str, ops: u64, f: impl FnOnce()) {
    let t = Instant::now();
    f();
    let ns = t.elapsed().as_nanos() as f64 / ops as f64;
    println!("{label:<52} {ns:>8.0} ns/op");
}

fn dims(i: u64) -> Vec<(String, String)> {
    vec![
        ("API ID".into(), format!("api-{}", i % 10)),
        ("Operation ID".into(), format!("op-{}", i % 10)),
        ("Subscription ID".into(), "s1".into()),
    ]
}

fn main() {
    let r = Arc::new(Registry::default());
    per_op(
        "registry record, 3 dimensions, 10 series, 1 thread",
        N,
        || {
            for i in 0..N {
                r.record("API Management", "requests", dims(i), 1.0);
            }
        },
    );
    per_op(
        "registry record, 10 series, 2 threads (per op)",
        2 * N,
        || {
            let hs: Vec<_> = (0..2)
                .map(|_| {
                    let r = r.clone();
                    std::thread::spawn(move || {
                        for i in 0..N {
                            r.record("API Management", "requests", dims(i), 1.0);
                        }
                    })
                })
                .collect();
            for h in hs {
                let _ = h.join();
            }
        },
    );

    let dir = std::env::temp_dir().join(format!("turnpike-bench-{}", std::process::id()));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let loggers = Loggers::new(dir.clone());
        let mut defs = LoggerDefs::new();
        defs.insert(
            "f".into(),
            SinkConfig::File {
                path: "bench.log".into(),
                max_bytes: 64 << 20,
                max_files: 1,
            },
        );
        loggers.sync(&Arc::new(defs));
        let n = 5_000u64;
        let mut sent = 0;
        per_op("logger send (queue push), file logger", n, || {
            for i in 0..n {
                let rec = Record::new("f", Some(i.to_string()), None, "GET /orders/7 200".into());
                sent += u64::from(loggers.send("f", rec));
            }
        });
        let t = Instant::now();
        loggers.close(Duration::from_secs(30)).await;
        println!(
            "{:<52} {:>8.0} ns/record ({sent} queued, {} dropped)",
            "file logger drain to disk",
            t.elapsed().as_nanos() as f64 / n as f64,
            loggers.dropped()
        );
    });
    let _ = std::fs::remove_dir_all(&dir);

    let body = serde_json::json!({
        "model": "m",
        "messages": (0..8).map(|i| serde_json::json!({"role": "user", "content": "lorem ipsum ".repeat(40 + i)})).collect::<Vec<_>>(),
    })
    .to_string();
    let n = 20_000;
    per_op(
        &format!("prompt estimate, {} B chat request", body.len()),
        n,
        || {
            for _ in 0..n {
                std::hint::black_box(estimate_prompt(body.as_bytes()));
            }
        },
    );
    let event = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"token \"}}]}\n\n";
    let stream = event.repeat(65_536 / event.len());
    let n = 500;
    per_op(
        &format!("event-stream scan, {} B stream", stream.len()),
        n,
        || {
            for _ in 0..n {
                std::hint::black_box(parse_sse(stream.as_bytes()));
            }
        },
    );
}
