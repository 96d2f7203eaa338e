//! Telemetry figures: nanoseconds per custom-metric record (registry), per
//! logger send (the request path's non-blocking queue push to a file
//! logger), per prompt estimate of a chat request and per byte of a
//! scanned event stream; for OTLP export, nanoseconds per span queued
//! and encoded, and a whole gateway request (demo echo API over
//! loopback) with `otlp_endpoint` off and on. Figures only, no
//! assertions on timing. Run with `cargo bench --bench telemetry`.

use std::sync::Arc;
use std::time::{Duration, Instant};
use turnpike::policy::builtin::llm::{estimate_prompt, parse_sse};
use turnpike::telemetry::loggers::{LoggerDefs, Loggers, Record, SinkConfig};
use turnpike::telemetry::otlp::{encode_spans, AttrValue, Exporter, SpanData, SpanKind};
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
    otlp();
}

/// The five spans of one traced request.
fn request_spans(i: u64) -> Vec<SpanData> {
    let span = |n: u8, kind: SpanKind, name: &str| SpanData {
        trace_id: [7; 16],
        span_id: [n; 8],
        parent_id: Some([1; 8]),
        name: name.to_string(),
        kind,
        start_ns: i,
        end_ns: i + 1000,
        attributes: vec![
            ("http.request.method", AttrValue::Str("GET".into())),
            ("turnpike.api_id", AttrValue::Str("echo".into())),
            ("http.response.status_code", AttrValue::Int(200)),
        ],
        error: None,
    };
    vec![
        span(2, SpanKind::Internal, "inbound"),
        span(3, SpanKind::Internal, "backend"),
        span(4, SpanKind::Client, "GET"),
        span(5, SpanKind::Internal, "outbound"),
        span(6, SpanKind::Server, "GET /echo/*"),
    ]
}

/// A collector that accepts everything.
async fn null_collector() -> std::net::SocketAddr {
    use hyper::service::service_fn;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                    use http_body_util::BodyExt;
                    let _ = req.into_body().collect().await;
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(
                        http_body_util::Full::new(bytes::Bytes::from_static(b"{}")),
                    ))
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

/// Mean microseconds per sequential request through the demo echo API.
async fn gateway_us(otlp: Option<std::net::SocketAddr>, n: u32) -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = turnpike::Settings::defaults();
    s.gateway.http = "127.0.0.1:0".parse().expect("addr");
    s.management.listen = "127.0.0.1:0".parse().expect("addr");
    s.portal.enabled = false;
    s.node.data_dir = dir.path().to_path_buf();
    s.telemetry.access_log = false;
    s.telemetry.otlp_endpoint = otlp.map(|a| format!("http://{a}"));
    s.telemetry.otlp_export_interval = Duration::from_millis(200);
    let (_keep, never) = turnpike::shutdown::channel();
    let running = turnpike::run(s, turnpike::Options { demo: true }, never)
        .await
        .expect("run");
    let key = running
        .demo
        .as_ref()
        .map(|d| d.key.clone())
        .unwrap_or_default();
    let url = format!(
        "http://{}/echo/items/7",
        running.addr("gateway-http").expect("gateway")
    );
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let call = || async {
        let r = client
            .get(&url)
            .header("Ocp-Apim-Subscription-Key", &key)
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 200);
        let _ = r.bytes().await;
    };
    for _ in 0..200 {
        call().await;
    }
    let t = Instant::now();
    for _ in 0..n {
        call().await;
    }
    let us = t.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    running.shutdown();
    running.wait().await;
    us
}

fn otlp() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let collector = null_collector().await;
        let cfg = turnpike::config::Telemetry {
            otlp_endpoint: Some(format!("http://{collector}")),
            ..Default::default()
        };
        let exporter = Exporter::start(&cfg, "default", "managed").expect("exporter");
        // Built and queued as the request path does, 1000 requests at a
        // time with pauses (untimed) so the exporter keeps up.
        let mut timed = Duration::ZERO;
        let rounds = 20u64;
        for r in 0..rounds {
            let t = Instant::now();
            for i in 0..1000 {
                exporter.submit(request_spans(r * 1000 + i));
            }
            timed += t.elapsed();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        println!(
            "{:<52} {:>8.0} ns/span ({} dropped)",
            "OTLP span built and queued (5-span request)",
            timed.as_nanos() as f64 / (5 * 1000 * rounds) as f64,
            exporter.dropped()
        );
        let batch: Vec<SpanData> = (0..103).flat_map(request_spans).take(512).collect();
        let resource = r#"{"attributes":[]}"#;
        let rounds = 200u64;
        per_op(
            "OTLP JSON encoding, per span (512-span batch)",
            rounds * 512,
            || {
                for _ in 0..rounds {
                    std::hint::black_box(encode_spans(resource, &batch));
                }
            },
        );

        let n = 3000;
        let mut off = f64::MAX;
        let mut on = f64::MAX;
        for _ in 0..3 {
            off = off.min(gateway_us(None, n).await);
            on = on.min(gateway_us(Some(collector), n).await);
        }
        println!(
            "{:<52} {:>8.1} us/request",
            "gateway request, otlp_endpoint unset", off
        );
        println!(
            "{:<52} {:>8.1} us/request",
            "gateway request, OTLP on (5 spans exported)", on
        );
        println!(
            "{:<52} {:>8.0} ns/span",
            "OTLP cost per span on the request path (on - off) / 5",
            (on - off) * 1000.0 / 5.0
        );
    });
}
