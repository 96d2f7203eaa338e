//! Zero-drop configuration changes: constant traffic on loopback (new
//! connections, kept-alive HTTP/1.1 and HTTP/2) while the
//! configuration changes every 100 ms, a slow event stream that outlives
//! several changes, and a SIGTERM that lets an in-flight request finish.
//!
//! The load test prints p50/p99 before and during the changes and the
//! process's RSS before and after; it asserts only what must hold (no
//! failed request on the unchanged API, every change applied), never a
//! timing. In-process (`TestApp`), so the RSS is the test process's.
//!
//! Existing neighbours, not repeated here: `tests/gateway.rs`
//! `shutdown_drains_in_flight_requests_then_stops_accepting` (in-process
//! drain), `changes_apply_without_restart_and_in_flight_requests_finish`
//! (an API deleted under an in-flight request) and
//! `many_swaps_under_traffic_break_nothing` (30 writes, one client).

mod common;

use bytes::Bytes;
use common::backend::{self, full, Body};
use common::procs::Proc;
use common::TestApp;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One test at a time, so the load test's figures are its own.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const CLIENTS: usize = 4;
const WARM_UP: Duration = Duration::from_secs(1);
const BASELINE: Duration = Duration::from_secs(3);
const CHURN: Duration = Duration::from_secs(10);
const EVERY: Duration = Duration::from_millis(100);

/// The unchanged API's policy. `edit` changes an unused variable only, so
/// every edit leaves its responses as they were.
fn steady_policy(edit: u64) -> String {
    format!(
        r#"<policies>
  <inbound><base /><set-variable name="edit" value="{edit}" /></inbound>
  <backend><base /></backend>
  <outbound><base /><set-header name="x-steady" exists-action="override"><value>ok</value></set-header></outbound>
  <on-error><base /></on-error>
</policies>"#
    )
}

fn versioned_policy(version: u64) -> String {
    format!(
        r#"<policies>
  <inbound><base /></inbound>
  <backend><base /></backend>
  <outbound><base /><set-header name="x-version" exists-action="override"><value>{version}</value></set-header></outbound>
  <on-error><base /></on-error>
</policies>"#
    )
}

fn global_policy(edit: u64) -> String {
    format!(
        r#"<policies>
  <inbound><set-variable name="global-edit" value="{edit}" /></inbound>
  <backend><forward-request /></backend>
  <outbound />
  <on-error />
</policies>"#
    )
}

/// Resident set size of this process, KiB.
fn rss_kib() -> u64 {
    rss_of("self")
}

fn rss_of(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i] as f64 / 1000.0
}

#[derive(Default)]
struct Tally {
    /// Latencies in µs, by phase (0 warm-up, 1 before the changes, 2
    /// during).
    latencies: [Vec<u64>; 3],
    failures: Vec<String>,
}

/// One client: GET the unchanged API until `stop`, checking each answer.
async fn traffic(
    client: reqwest::Client,
    url: String,
    phase: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    tally: Arc<Mutex<Tally>>,
) {
    let mut mine: [Vec<u64>; 3] = Default::default();
    let mut failures = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let p = phase.load(Ordering::Relaxed) as usize;
        let t = Instant::now();
        let outcome = async {
            let r = client.get(&url).send().await.map_err(|e| e.to_string())?;
            let status = r.status();
            let steady = r
                .headers()
                .get("x-steady")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body: Value = r.json().await.map_err(|e| e.to_string())?;
            if status != 200 || steady.as_deref() != Some("ok") || body["path"] != "/ping" {
                return Err(format!("{status} x-steady={steady:?} {body}"));
            }
            Ok(())
        }
        .await;
        match outcome {
            Ok(()) => mine[p].push(t.elapsed().as_micros() as u64),
            Err(e) => failures.push(format!("phase {p}: {e}")),
        }
    }
    let mut t = tally.lock().unwrap();
    for (all, m) in t.latencies.iter_mut().zip(mine) {
        all.extend(m);
    }
    t.failures.extend(failures);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn constant_traffic_survives_a_change_every_100_ms() {
    let _serial = SERIAL.lock().await;
    let app = TestApp::spawn().await;
    app.put_ok(
        "/apis/steady",
        json!({"path": "steady", "serviceUrl": app.echo_url(), "subscriptionRequired": false}),
    )
    .await;
    app.put_ok(
        "/apis/steady/operations/all",
        json!({"method": "*", "urlTemplate": "/*"}),
    )
    .await;
    assert!(app
        .put_xml("/apis/steady/policy", &steady_policy(0))
        .await
        .status()
        .is_success());
    app.put_ok(
        "/apis/other",
        json!({"path": "other", "serviceUrl": app.echo_url(), "subscriptionRequired": false}),
    )
    .await;
    app.put_ok(
        "/apis/other/operations/all",
        json!({"method": "*", "urlTemplate": "/*"}),
    )
    .await;

    let rss_before = rss_kib();
    let phase = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let url = format!("{}/steady/ping", app.gw);
    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        // One client opens a new connection per request, one speaks
        // HTTP/2; the others keep HTTP/1.1 connections alive across every
        // change.
        let mut b = reqwest::Client::builder().no_proxy();
        if i == 0 {
            b = b.pool_max_idle_per_host(0);
        } else if i == 1 {
            b = b.http2_prior_knowledge();
        }
        clients.push(tokio::spawn(traffic(
            b.build().unwrap(),
            url.clone(),
            phase.clone(),
            stop.clone(),
            tally.clone(),
        )));
    }
    tokio::time::sleep(WARM_UP).await;
    phase.store(1, Ordering::Relaxed);
    tokio::time::sleep(BASELINE).await;

    // Every 100 ms one change, in turn: add an API, remove an older one,
    // edit another API's policy, edit the unchanged API's policy without
    // changing its responses.
    phase.store(2, Ordering::Relaxed);
    let started = Instant::now();
    let mut tick = tokio::time::interval(EVERY);
    let (mut changes, mut added, mut removed, mut version) = (0u64, 0u64, 0u64, 0u64);
    while started.elapsed() < CHURN {
        tick.tick().await;
        let ok = match changes % 4 {
            0 => {
                added += 1;
                app.put(
                    &format!("/apis/churn-{added}"),
                    json!({"path": format!("churn/{added}"), "serviceUrl": app.echo_url(),
                           "subscriptionRequired": false}),
                )
                .await
                .status()
                .is_success()
            }
            1 if added > 2 => {
                removed += 1;
                app.delete(&format!("/apis/churn-{removed}"))
                    .await
                    .status()
                    .is_success()
            }
            1 | 2 => {
                version += 1;
                app.put_xml("/apis/other/policy", &versioned_policy(version))
                    .await
                    .status()
                    .is_success()
            }
            _ => app
                .put_xml("/apis/steady/policy", &steady_policy(changes))
                .await
                .status()
                .is_success(),
        };
        assert!(ok, "change {changes} was refused");
        changes += 1;
    }
    let churn_secs = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let rss_after = rss_kib();

    // Every change took effect.
    let r = app.call("/other/x", None).await;
    assert_eq!(r.headers()["x-version"], version.to_string().as_str());
    let apis = app.get_json("/apis").await;
    let churned = apis["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["id"].as_str().is_some_and(|id| id.starts_with("churn-")))
        .count() as u64;
    assert_eq!(churned, added - removed);

    let mut t = tally.lock().unwrap();
    for l in t.latencies.iter_mut() {
        l.sort_unstable();
    }
    let [_, before, during] = &t.latencies;
    println!(
        "reload under load: {CLIENTS} clients on loopback, {changes} changes in {churn_secs:.1} s \
         ({added} APIs added, {removed} removed, {version} policy edits on another API, \
         the rest on the unchanged API)"
    );
    println!(
        "  before: {} requests, p50 {:.2} ms, p99 {:.2} ms",
        before.len(),
        percentile(before, 0.5),
        percentile(before, 0.99)
    );
    println!(
        "  during: {} requests, p50 {:.2} ms, p99 {:.2} ms",
        during.len(),
        percentile(during, 0.5),
        percentile(during, 0.99)
    );
    println!(
        "  failed: {}; RSS {} KiB before, {} KiB after",
        t.failures.len(),
        rss_before,
        rss_after
    );
    assert!(
        t.failures.is_empty(),
        "{} failed requests on the unchanged API, e.g. {:?}",
        t.failures.len(),
        &t.failures[..t.failures.len().min(5)]
    );
    assert!(!before.is_empty() && !during.is_empty());
    assert!(changes >= 50, "only {changes} changes");
}

/// A backend that answers with `n` server-sent events, one every `gap`.
async fn event_source(n: usize, gap: Duration) -> std::net::SocketAddr {
    backend::spawn(move |_req| async move {
        let events = futures_util::stream::unfold(0usize, move |i| async move {
            if i == n {
                return None;
            }
            if i > 0 {
                tokio::time::sleep(gap).await;
            }
            let frame = Frame::data(Bytes::from(format!("data: event {i}\n\n")));
            Some((Ok::<_, std::io::Error>(frame), i + 1))
        });
        let body: Body = StreamBody::new(events).boxed_unsync();
        hyper::Response::builder()
            .header("content-type", "text/event-stream")
            .body(body)
            .unwrap()
    })
    .await
}

#[tokio::test]
async fn an_event_stream_survives_configuration_changes() {
    let _serial = SERIAL.lock().await;
    const EVENTS: usize = 8;
    let app = TestApp::spawn().await;
    let source = event_source(EVENTS, Duration::from_millis(150)).await;
    app.put_ok(
        "/apis/events",
        json!({"path": "events", "serviceUrl": format!("http://{source}"),
               "subscriptionRequired": false}),
    )
    .await;
    app.put_ok(
        "/apis/events/operations/all",
        json!({"method": "*", "urlTemplate": "/*"}),
    )
    .await;
    assert!(app
        .put_xml("/apis/events/policy", &versioned_policy(0))
        .await
        .status()
        .is_success());
    app.api("doomed", "doomed", &app.echo_url()).await;

    let mut r = app.call("/events/stream", None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-version"], "0");
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let mut got = String::new();
    let mut swaps = 0;
    let mut seen = 0;
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(10), r.chunk())
        .await
        .expect("the stream stalled")
        .expect("the stream broke")
    {
        got.push_str(&String::from_utf8_lossy(&chunk));
        // After each event, change the configuration: the stream's own
        // API's policy, a new API, the removal of another, the global
        // policy.
        while seen < got.matches("\n\n").count() {
            seen += 1;
            let ok = match seen % 4 {
                1 => app
                    .put_xml("/apis/events/policy", &versioned_policy(seen as u64))
                    .await
                    .status()
                    .is_success(),
                2 => app
                    .put(
                        &format!("/apis/extra-{seen}"),
                        json!({"path": format!("extra/{seen}")}),
                    )
                    .await
                    .status()
                    .is_success(),
                3 => {
                    let r = app.delete("/apis/doomed").await.status();
                    app.api("doomed", "doomed", &app.echo_url()).await;
                    r.is_success()
                }
                _ => app
                    .put_xml("/policy", &global_policy(seen as u64))
                    .await
                    .status()
                    .is_success(),
            };
            assert!(ok, "change {seen} was refused");
            swaps += 1;
        }
    }
    let want: String = (0..EVENTS)
        .map(|i| format!("data: event {i}\n\n"))
        .collect();
    assert_eq!(got, want);
    assert!(swaps >= EVENTS - 1, "{swaps} changes during the stream");
    // A new request sees the latest policy of the stream's API.
    let r = app.call("/events/stream", None).await;
    assert_ne!(r.headers()["x-version"], "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_in_flight_request_finish() {
    let _serial = SERIAL.lock().await;
    const ADMIN: &str = "drain-admin-key-0123456789abcdef";
    let slow = backend::spawn(|_req| async {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        hyper::Response::new(full("drained"))
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let config = format!(
        "[node]\ndata_dir = \"{}\"\nshutdown_timeout = \"10s\"\n\
         [gateway]\nhttp = \"127.0.0.1:0\"\n\
         [management]\nlisten = \"127.0.0.1:0\"\nadmin_key = \"{ADMIN}\"\n\
         [portal]\nlisten = \"127.0.0.1:0\"\n\
         [telemetry]\naccess_log = false\n",
        dir.join("data").display()
    );
    let d = dir.clone();
    let mut proc = tokio::task::spawn_blocking(move || {
        Proc::start(&d, "turnpike", &config, &["gateway-http", "management"])
    })
    .await
    .unwrap();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mgmt = proc.url("management");
    for (path, body) in [
        (
            "/apis/slow",
            json!({"path": "slow", "serviceUrl": format!("http://{slow}"),
                   "subscriptionRequired": false}),
        ),
        (
            "/apis/slow/operations/all",
            json!({"method": "*", "urlTemplate": "/*"}),
        ),
    ] {
        let r = client
            .put(format!("{mgmt}/mgmt{path}"))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
    let gw = proc.url("gateway-http");
    let in_flight = {
        let (client, url) = (client.clone(), format!("{gw}/slow/x"));
        tokio::spawn(async move { client.get(url).send().await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = Instant::now();
    let stopping = tokio::task::spawn_blocking(move || {
        let exit = proc.stop();
        (exit, proc.log_text())
    });
    let r = in_flight
        .await
        .unwrap()
        .expect("the in-flight request was cut");
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "drained");
    let answered = t.elapsed();
    let (exit, log) = stopping.await.unwrap();
    assert_eq!(exit.map(|s| s.success()), Some(true), "{log}");
    assert!(
        reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .get(format!("{gw}/slow/x"))
            .send()
            .await
            .is_err(),
        "the listener is closed"
    );
    println!(
        "SIGTERM: the in-flight request answered 200 {:.0} ms after the signal, then exit 0 \
         ({:.0} ms)",
        answered.as_secs_f64() * 1e3,
        t.elapsed().as_secs_f64() * 1e3
    );
}
