//! OTLP export through the real appliance: a fake collector on
//! 127.0.0.1:0 receives `/v1/traces` and `/v1/metrics` (JSON mapping) and
//! the tests decode what it got: one SERVER span per request with child
//! spans per policy section and a CLIENT span per backend call, chained
//! to the client's and the backend's `traceparent`; parent-based
//! sampling; error status; a collector that is down; the flush on
//! shutdown; no secret in any payload; metrics counters.

mod common;

use common::backend::{self, full};
use common::TestApp;
use http_body_util::BodyExt;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use turnpike::error::Secret;
use turnpike::Settings;

const TOKEN: &str = "collector-token-5ecret-value";

/// One POST the collector received.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    token: Option<String>,
    content_type: Option<String>,
    raw: String,
    json: Value,
}

#[derive(Clone, Default)]
struct Collector {
    got: Arc<Mutex<Vec<Received>>>,
}

impl Collector {
    /// Serves on `listener` until the test ends.
    fn serve(&self, listener: tokio::net::TcpListener) {
        let got = self.got.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let got = got.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let got = got.clone();
                        async move {
                            let path = req.uri().path().to_string();
                            let header = |n: &str| {
                                req.headers()
                                    .get(n)
                                    .and_then(|v| v.to_str().ok())
                                    .map(str::to_string)
                            };
                            let token = header("x-collector-token");
                            let content_type = header("content-type");
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let raw = String::from_utf8_lossy(&body).into_owned();
                            let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
                            got.lock().unwrap().push(Received {
                                path,
                                token,
                                content_type,
                                raw,
                                json,
                            });
                            Ok::<_, Infallible>(hyper::Response::new(full("{}")))
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
    }

    async fn spawn() -> (Collector, SocketAddr) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let c = Collector::default();
        c.serve(listener);
        (c, addr)
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Every span received so far.
    fn spans(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for r in self.received().iter().filter(|r| r.path == "/v1/traces") {
            for rs in r.json["resourceSpans"].as_array().into_iter().flatten() {
                for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                    out.extend(ss["spans"].as_array().into_iter().flatten().cloned());
                }
            }
        }
        out
    }

    fn trace(&self, trace_id: &str) -> Vec<Value> {
        self.spans()
            .into_iter()
            .filter(|s| s["traceId"] == trace_id)
            .collect()
    }

    /// Waits (up to 30 s) until the trace has `n` spans.
    async fn wait_trace(&self, trace_id: &str, n: usize) -> Vec<Value> {
        for _ in 0..300 {
            let t = self.trace(trace_id);
            if t.len() >= n {
                return t;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "trace {trace_id} has {} spans, wanted {n}",
            self.trace(trace_id).len()
        );
    }
}

fn attr(span: &Value, key: &str) -> Value {
    for a in span["attributes"].as_array().into_iter().flatten() {
        if a["key"] == key {
            let v = &a["value"];
            for k in ["stringValue", "intValue", "boolValue"] {
                if !v[k].is_null() {
                    return v[k].clone();
                }
            }
        }
    }
    Value::Null
}

fn by_kind(spans: &[Value], kind: i64) -> Vec<Value> {
    spans
        .iter()
        .filter(|s| s["kind"] == kind)
        .cloned()
        .collect()
}

fn named<'a>(spans: &'a [Value], name: &str) -> &'a Value {
    spans
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no span {name} in {spans:#?}"))
}

fn otlp(s: &mut Settings, collector: SocketAddr) {
    s.telemetry.otlp_endpoint = Some(format!("http://{collector}"));
    s.telemetry.otlp_export_interval = Duration::from_millis(100);
    s.telemetry.otlp_metrics_interval = Duration::ZERO;
    s.telemetry
        .otlp_headers
        .insert("x-collector-token".into(), Secret::new(TOKEN));
}

/// A backend that answers 200 and records the `traceparent` it received.
async fn recording_backend() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let addr = backend::spawn(move |req| {
        let s = s.clone();
        async move {
            if let Some(tp) = req.headers().get("traceparent") {
                s.lock()
                    .unwrap()
                    .push(tp.to_str().unwrap_or("").to_string());
            }
            hyper::Response::new(full("ok"))
        }
    })
    .await;
    (addr, seen)
}

/// API `svc` on `backend` in product `p1`; the subscription `s1`'s key.
async fn svc(app: &TestApp, backend: &str) -> String {
    app.api("svc", "svc", backend).await;
    app.product("p1", &["svc"], true).await;
    app.subscription("s1", "/products/p1").await
}

fn hex32() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).unwrap();
    b[0] |= 1;
    b.iter().map(|x| format!("{x:02x}")).collect()
}

async fn get(app: &TestApp, path: &str, key: &str, traceparent: Option<&str>) -> reqwest::Response {
    let mut r = app
        .client
        .get(format!("{}{path}", app.gw))
        .header("Ocp-Apim-Subscription-Key", key);
    if let Some(tp) = traceparent {
        r = r.header("traceparent", tp);
    }
    r.send().await.unwrap()
}

fn assert_no_secrets(c: &Collector, secrets: &[&str]) {
    let got = c.received();
    assert!(!got.is_empty());
    for r in &got {
        assert_eq!(
            r.token.as_deref(),
            Some(TOKEN),
            "the header reaches the collector"
        );
        assert_eq!(r.content_type.as_deref(), Some("application/json"));
        for s in secrets {
            assert!(!r.raw.contains(s), "{s} in an exported payload: {}", r.raw);
        }
    }
}

#[tokio::test]
async fn a_request_is_a_server_span_with_section_and_backend_children() {
    let (collector, caddr) = Collector::spawn().await;
    let (backend_addr, seen) = recording_backend().await;
    let app = TestApp::spawn_with(|s| otlp(s, caddr)).await;
    let key = svc(&app, &format!("http://{backend_addr}")).await;

    let trace_id = hex32();
    let incoming = format!("00-{trace_id}-00f067aa0ba902b7-01");
    let r = get(
        &app,
        "/svc/items/42?code=query-5ecret",
        &key,
        Some(&incoming),
    )
    .await;
    assert_eq!(r.status(), 200);
    let returned = r.headers()["traceparent"].to_str().unwrap().to_string();
    let gateway_span = returned.split('-').nth(2).unwrap().to_string();

    let spans = collector.wait_trace(&trace_id, 5).await;
    assert_eq!(spans.len(), 5, "{spans:#?}");
    let servers = by_kind(&spans, 2);
    assert_eq!(servers.len(), 1, "one server span per request");
    let server = &servers[0];
    assert_eq!(server["name"], "GET /svc/*");
    assert_eq!(server["spanId"], gateway_span.as_str());
    assert_eq!(server["parentSpanId"], "00f067aa0ba902b7");
    assert_eq!(attr(server, "http.request.method"), "GET");
    assert_eq!(attr(server, "url.path"), "/svc/items/42");
    assert_eq!(attr(server, "http.response.status_code"), "200");
    assert_eq!(attr(server, "server.address"), "127.0.0.1");
    assert_eq!(attr(server, "client.address"), "127.0.0.1");
    assert_eq!(attr(server, "turnpike.api_id"), "svc");
    assert_eq!(attr(server, "turnpike.operation_id"), "all");
    assert_eq!(attr(server, "turnpike.product_id"), "p1");
    assert_eq!(attr(server, "turnpike.subscription_id"), "s1");
    assert_eq!(attr(server, "turnpike.region"), "default");
    assert_eq!(attr(server, "turnpike.cache"), "none");
    assert_eq!(server["status"]["code"], 0);

    for section in ["inbound", "backend", "outbound"] {
        let s = named(&spans, section);
        assert_eq!(s["kind"], 1);
        assert_eq!(s["parentSpanId"], server["spanId"], "{section}");
        assert_eq!(s["traceId"], trace_id.as_str());
    }
    let clients = by_kind(&spans, 3);
    assert_eq!(clients.len(), 1);
    let client = &clients[0];
    assert_eq!(
        client["parentSpanId"],
        named(&spans, "backend")["spanId"],
        "the backend call runs in the backend section"
    );
    assert_eq!(
        attr(client, "url.full"),
        format!("http://{backend_addr}/items/42").as_str()
    );
    assert_eq!(attr(client, "http.response.status_code"), "200");
    assert_eq!(attr(client, "server.address"), "127.0.0.1");

    // The backend's parent is the client span.
    let got = seen.lock().unwrap().clone();
    assert_eq!(
        got,
        vec![format!(
            "00-{trace_id}-{}-01",
            client["spanId"].as_str().unwrap()
        )]
    );
    // Times are ordered: the children lie inside the server span.
    let t = |s: &Value, k: &str| s[k].as_str().unwrap().parse::<u64>().unwrap();
    for s in &spans {
        assert!(t(s, "startTimeUnixNano") >= t(server, "startTimeUnixNano"));
        assert!(t(s, "endTimeUnixNano") <= t(server, "endTimeUnixNano"));
    }
    // The resource names the service.
    let traces = collector
        .received()
        .into_iter()
        .find(|r| r.path == "/v1/traces")
        .unwrap();
    let res = &traces.json["resourceSpans"][0]["resource"];
    assert_eq!(attr(res, "service.name"), "turnpike");
    assert!(attr(res, "service.version").is_string());
    assert!(attr(res, "host.name").is_string());

    // A new trace (no traceparent) is sampled (ratio 1) and says so.
    let r = get(&app, "/svc/x", &key, None).await;
    let tp = r.headers()["traceparent"].to_str().unwrap().to_string();
    assert!(tp.ends_with("-01"), "{tp}");
    let new_trace = tp.split('-').nth(1).unwrap();
    let spans = collector.wait_trace(new_trace, 5).await;
    assert!(by_kind(&spans, 2)[0].get("parentSpanId").is_none());

    assert_no_secrets(&collector, &[&key, TOKEN, "query-5ecret"]);
}

#[tokio::test]
async fn sampling_is_parent_based() {
    let (collector, caddr) = Collector::spawn().await;
    let (backend_addr, _) = recording_backend().await;
    let app = TestApp::spawn_with(|s| {
        otlp(s, caddr);
        s.telemetry.otlp_sample_ratio = 0.0;
    })
    .await;
    let key = svc(&app, &format!("http://{backend_addr}")).await;

    let unsampled = hex32();
    let r = get(
        &app,
        "/svc/a",
        &key,
        Some(&format!("00-{unsampled}-00f067aa0ba902b7-00")),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = get(&app, "/svc/b", &key, None).await;
    let root = r.headers()["traceparent"].to_str().unwrap().to_string();
    assert!(
        root.ends_with("-00"),
        "ratio 0 samples no new trace: {root}"
    );
    let root = root.split('-').nth(1).unwrap().to_string();
    // A sampled parent is honoured even at ratio 0.
    let sampled = hex32();
    get(
        &app,
        "/svc/c",
        &key,
        Some(&format!("00-{sampled}-00f067aa0ba902b7-01")),
    )
    .await;
    collector.wait_trace(&sampled, 5).await;
    // Requests are exported in order: the earlier ones would be there.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(collector.trace(&unsampled).is_empty());
    assert!(collector.trace(&root).is_empty());
    assert_eq!(collector.spans().len(), 5);
}

#[tokio::test]
async fn failures_set_error_status() {
    let (collector, caddr) = Collector::spawn().await;
    let app = TestApp::spawn_with(|s| otlp(s, caddr)).await;
    // Nothing listens on port 9 of the loopback.
    let key = svc(&app, "http://127.0.0.1:9").await;
    let trace_id = hex32();
    let r = get(
        &app,
        "/svc/down",
        &key,
        Some(&format!("00-{trace_id}-00f067aa0ba902b7-01")),
    )
    .await;
    assert!(r.status().is_server_error(), "{}", r.status());
    let spans = collector.wait_trace(&trace_id, 5).await;
    let server = &by_kind(&spans, 2)[0];
    assert_eq!(server["status"]["code"], 2, "{server:#}");
    let message = server["status"]["message"].as_str().unwrap();
    assert!(message.contains("BackendConnectionFailure"), "{message}");
    assert_eq!(
        attr(server, "http.response.status_code"),
        r.status().as_u16().to_string().as_str()
    );
    let client = &by_kind(&spans, 3)[0];
    assert_eq!(client["status"]["code"], 2);
    assert_eq!(named(&spans, "backend")["status"]["code"], 2);
    let on_error = named(&spans, "on-error");
    assert_eq!(on_error["parentSpanId"], server["spanId"]);
    assert_eq!(named(&spans, "inbound")["status"]["code"], 0);

    // A request refused before the pipeline (no key) is a span too.
    let trace_id = hex32();
    let r = app
        .client
        .get(format!("{}/svc/x", app.gw))
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let spans = collector.wait_trace(&trace_id, 1).await;
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0]["status"]["code"], 2);
    assert_eq!(attr(&spans[0], "http.response.status_code"), "401");
}

#[tokio::test]
async fn a_collector_that_is_down_fails_no_request_and_export_recovers() {
    // Reserve a port, then leave it closed.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let caddr = listener.local_addr().unwrap();
    drop(listener);
    let (backend_addr, _) = recording_backend().await;
    let app = TestApp::spawn_with(|s| otlp(s, caddr)).await;
    let key = svc(&app, &format!("http://{backend_addr}")).await;
    let mut traces = Vec::new();
    for i in 0..20 {
        let r = get(&app, &format!("/svc/{i}"), &key, None).await;
        assert_eq!(r.status(), 200);
        let tp = r.headers()["traceparent"].to_str().unwrap().to_string();
        traces.push(tp.split('-').nth(1).unwrap().to_string());
    }
    // Let a few exports fail.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let collector = Collector::default();
    collector.serve(tokio::net::TcpListener::bind(caddr).await.unwrap());
    // The spans kept while it was down arrive once it is back.
    for t in &traces {
        collector.wait_trace(t, 5).await;
    }
    let r = get(&app, "/svc/after", &key, None).await;
    assert_eq!(r.status(), 200);
    let tp = r.headers()["traceparent"].to_str().unwrap().to_string();
    collector.wait_trace(tp.split('-').nth(1).unwrap(), 5).await;
}

#[tokio::test]
async fn shutdown_flushes_what_is_queued() {
    let (collector, caddr) = Collector::spawn().await;
    let (backend_addr, _) = recording_backend().await;
    let app = TestApp::spawn_with(|s| {
        otlp(s, caddr);
        // The timer alone would not send before the test ends.
        s.telemetry.otlp_export_interval = Duration::from_secs(3600);
    })
    .await;
    let key = svc(&app, &format!("http://{backend_addr}")).await;
    let trace_id = hex32();
    let r = get(
        &app,
        "/svc/last",
        &key,
        Some(&format!("00-{trace_id}-00f067aa0ba902b7-01")),
    )
    .await;
    assert_eq!(r.status(), 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(collector.trace(&trace_id).is_empty());
    let _dir = app.stop().await;
    assert_eq!(collector.trace(&trace_id).len(), 5);
}

/// `turnpike_requests` points matching `labels`, summed over the last
/// metrics payload.
fn requests_in(last: &Value, labels: &[(&str, &str)]) -> Option<f64> {
    let metrics = last["resourceMetrics"][0]["scopeMetrics"][0]["metrics"].as_array()?;
    let m = metrics.iter().find(|m| m["name"] == "turnpike_requests")?;
    assert_eq!(m["sum"]["aggregationTemporality"], 2);
    assert_eq!(m["sum"]["isMonotonic"], true);
    Some(
        m["sum"]["dataPoints"]
            .as_array()?
            .iter()
            .filter(|p| labels.iter().all(|(k, v)| attr(p, k) == *v))
            .map(|p| p["asDouble"].as_f64().unwrap_or(0.0))
            .sum(),
    )
}

#[tokio::test]
async fn metrics_are_exported_as_cumulative_sums() {
    let (collector, caddr) = Collector::spawn().await;
    let (backend_addr, _) = recording_backend().await;
    let app = TestApp::spawn_with(|s| {
        otlp(s, caddr);
        s.telemetry.otlp_metrics_interval = Duration::from_millis(200);
    })
    .await;
    let key = svc(&app, &format!("http://{backend_addr}")).await;
    let labels = [("api", "svc"), ("status_class", "2xx"), ("product", "p1")];
    let last_count = |c: &Collector| {
        c.received()
            .iter()
            .rev()
            .find(|r| r.path == "/v1/metrics")
            .and_then(|r| requests_in(&r.json, &labels))
    };
    for n in [3.0, 5.0] {
        let target = if n == 3.0 { 3 } else { 2 };
        for _ in 0..target {
            assert_eq!(get(&app, "/svc/m", &key, None).await.status(), 200);
        }
        let mut seen = None;
        for _ in 0..100 {
            seen = last_count(&collector);
            if seen == Some(n) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(seen, Some(n));
    }
    let last = collector
        .received()
        .into_iter()
        .rev()
        .find(|r| r.path == "/v1/metrics")
        .unwrap();
    let metrics = last.json["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]
        .as_array()
        .unwrap()
        .clone();
    let h = metrics
        .iter()
        .find(|m| m["name"] == "turnpike_request_duration_seconds")
        .expect("the duration histogram");
    let p = h["histogram"]["dataPoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| attr(p, "api") == "svc" && attr(p, "status_class") == "2xx")
        .unwrap();
    assert_eq!(p["count"], "5");
    let buckets: u64 = p["bucketCounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_str().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(buckets, 5);
    assert!(metrics
        .iter()
        .any(|m| m["name"] == "turnpike_build_info" && !m["gauge"].is_null()));
    assert_no_secrets(&collector, &[&key, TOKEN]);
}

#[test]
fn bad_otlp_settings_stop_start_up_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    for (text, line, needle) in [
        (
            "[telemetry]\naccess_log = true\notlp_endpoint = \"collector:4318\"\n",
            3,
            "otlp_endpoint",
        ),
        (
            "[telemetry]\notlp_endpoint = \"http://c:4318\"\notlp_sample_ratio = 2.0\n",
            3,
            "otlp_sample_ratio must be between 0 and 1",
        ),
    ] {
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).unwrap();
        let e = Settings::load(&path).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("{}:{line}: ", path.display())),
            "{e}"
        );
        assert!(e.contains(needle), "{e}");
    }
}
