//! The access log, the request id header and W3C trace context through the
//! real gateway: access records are captured through
//! `[telemetry] access_log_file` and read back as JSON lines.

mod common;

use common::backend;
use common::TestApp;
use serde_json::Value;
use std::time::Duration;

const LOG: &str = "logs/access.jsonl";

async fn app() -> TestApp {
    TestApp::spawn_with(|s| {
        s.telemetry.access_log_file = Some(LOG.into());
        s.node.region = "West Europe".into();
    })
    .await
}

fn log_text(app: &TestApp) -> String {
    std::fs::read_to_string(app.dir.as_ref().unwrap().path().join(LOG)).unwrap_or_default()
}

/// Waits (the writer thread appends asynchronously) for the record with
/// `request_id`.
async fn record(app: &TestApp, request_id: &str) -> Value {
    for _ in 0..100 {
        for line in log_text(app).lines() {
            let v: Value = serde_json::from_str(line).expect("a JSON line");
            if v["request_id"] == request_id {
                return v;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no access record for {request_id}:\n{}", log_text(app));
}

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .unwrap_or_else(|| panic!("{name} on the response"))
        .to_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_proxied_request_logs_every_field_without_the_key_or_query() {
    let app = app().await;
    app.standard().await;
    app.put_ok(
        "/users/bob",
        serde_json::json!({"email": "bob@example.com"}),
    )
    .await;
    app.put_ok(
        "/subscriptions/bobs",
        serde_json::json!({"scope": "/products/starter", "ownerId": "/users/bob", "state": "active"}),
    )
    .await;
    let key = app.key_of("bobs").await;
    let body = "x".repeat(1000);
    let r = app
        .client
        .post(format!("{}/echo/things/7?secret=q1&b=2", app.gw))
        .header("Ocp-Apim-Subscription-Key", &key)
        .header("x-request-id", "req-proxied-1")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-request-id"), "req-proxied-1");
    let sent = r.bytes().await.unwrap();
    let v = record(&app, "req-proxied-1").await;
    assert_eq!(v["status"], 200);
    assert_eq!(v["method"], "POST");
    assert_eq!(v["path"], "/echo/things/7", "no query by default: {v}");
    assert_eq!(v["host"], app.gw.trim_start_matches("http://"));
    assert_eq!(v["client_ip"], "127.0.0.1");
    assert_eq!(v["api"], "echo");
    assert_eq!(v["operation"], "all");
    assert_eq!(v["product"], "starter");
    assert_eq!(v["subscription"], "bobs");
    assert_eq!(v["user"], "bob");
    assert_eq!(v["region"], "West Europe");
    assert_eq!(v["gateway_id"], "managed");
    assert_eq!(v["cache"], "none");
    assert_eq!(v["error_reason"], "");
    assert_eq!(v["bytes_in"], 1000);
    assert_eq!(v["bytes_out"], sent.len() as u64);
    assert!(v["duration_us"].as_u64().unwrap() >= v["backend_duration_us"].as_u64().unwrap());
    assert!(v["backend_duration_us"].as_u64().unwrap() > 0);
    assert_eq!(v["trace_id"].as_str().unwrap().len(), 32);
    assert!(v["timestamp"].as_str().unwrap().ends_with('Z'));
    let text = log_text(&app);
    assert!(!text.contains(&key), "the key is in the access log");
    assert!(
        !text.contains(&key[..8]),
        "part of the key is in the access log"
    );
    assert!(!text.contains("secret=q1"));
}

#[tokio::test]
async fn a_missing_key_logs_the_error_and_echoes_the_request_id() {
    let app = app().await;
    app.standard().await;
    let r = app
        .client
        .get(format!("{}/echo/a?x=1", app.gw))
        .header("x-request-id", "req-401")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(header(&r, "x-request-id"), "req-401");
    assert!(r.headers().contains_key("traceparent"));
    let v = record(&app, "req-401").await;
    assert_eq!(v["status"], 401);
    assert_eq!(v["error_source"], "authorization");
    assert!(
        v["error_reason"].as_str().unwrap().contains("Subscription"),
        "{v}"
    );
    assert_eq!(v["subscription"], "");
    assert_eq!(v["api"], "echo", "the API of a refused request: {v}");
    assert_eq!(v["operation"], "all");
    assert_eq!(v["backend_duration_us"], 0);

    // A wrong key: refused, and not in the file.
    let wrong = "0123456789abcdef0123456789abcdef";
    let r = app
        .client
        .get(format!("{}/echo/a", app.gw))
        .header("Ocp-Apim-Subscription-Key", wrong)
        .header("x-request-id", "req-401-wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v = record(&app, "req-401-wrong").await;
    assert_eq!(v["status"], 401);
    assert!(!log_text(&app).contains(&wrong[..6]));

    // No API: a 404 gets a generated request id, also logged.
    let r = app.call("/nowhere", None).await;
    assert_eq!(r.status(), 404);
    let id = header(&r, "x-request-id");
    assert_eq!(id.len(), 36, "a GUID: {id}");
    let v = record(&app, &id).await;
    assert_eq!(v["error_reason"], "OperationNotFound");
    assert_eq!(v["api"], "");
}

#[tokio::test]
async fn trace_context_and_request_id_reach_the_backend_and_come_back() {
    let app = app().await;
    let key = app.standard().await;
    let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let r = app
        .client
        .get(format!("{}/echo/t", app.gw))
        .header("Ocp-Apim-Subscription-Key", &key)
        .header("traceparent", incoming)
        .header("tracestate", "vendor=abc")
        .header("x-request-id", "req-trace")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let returned = header(&r, "traceparent");
    let echoed: Value = r.json().await.unwrap();
    let seen = echoed["headers"]["traceparent"].as_str().unwrap();
    let parts: Vec<&str> = seen.split('-').collect();
    assert_eq!(parts.len(), 4, "{seen}");
    assert_eq!(parts[0], "00");
    assert_eq!(parts[1], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_ne!(parts[2], "00f067aa0ba902b7", "a new span id for the hop");
    assert_eq!(parts[3], "01");
    assert_eq!(returned, seen);
    assert_eq!(echoed["headers"]["tracestate"], "vendor=abc");
    assert_eq!(echoed["headers"]["x-request-id"], "req-trace");
    let v = record(&app, "req-trace").await;
    assert_eq!(v["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");

    // An invalid traceparent starts a new trace (and drops tracestate).
    let r = app
        .client
        .get(format!("{}/echo/t", app.gw))
        .header("Ocp-Apim-Subscription-Key", &key)
        .header(
            "traceparent",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        )
        .header("tracestate", "vendor=abc")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let id = header(&r, "x-request-id");
    let echoed: Value = r.json().await.unwrap();
    let seen = echoed["headers"]["traceparent"].as_str().unwrap();
    let parts: Vec<&str> = seen.split('-').collect();
    assert_eq!(parts.len(), 4, "{seen}");
    assert_ne!(parts[1].to_uppercase(), "4BF92F3577B34DA6A3CE929D0E0E4736");
    assert_eq!(parts[1].len(), 32);
    assert!(echoed["headers"].get("tracestate").is_none());
    // The generated request id went to the backend too.
    assert_eq!(echoed["headers"]["x-request-id"], id.as_str());
    let v = record(&app, &id).await;
    assert_eq!(v["trace_id"], parts[1]);
}

#[tokio::test]
async fn the_request_id_is_the_context_request_id_when_it_is_a_guid() {
    let app = app().await;
    let key = app.standard().await;
    let r = app
        .put_xml(
            "/apis/echo/policy",
            r#"<policies><inbound><base /></inbound><backend><base /></backend><outbound><base /><set-header name="X-Ctx-Id" exists-action="override"><value>@(context.RequestId.ToString())</value></set-header></outbound><on-error><base /></on-error></policies>"#,
        )
        .await;
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let guid = "0f8fad5b-d9cb-469f-a165-70867728950e";
    let r = app
        .client
        .get(format!("{}/echo/g", app.gw))
        .header("Ocp-Apim-Subscription-Key", &key)
        .header("x-request-id", guid)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-ctx-id"), guid);
    assert_eq!(header(&r, "x-request-id"), guid);
}

#[tokio::test]
async fn access_log_query_keeps_the_query_string() {
    let app = TestApp::spawn_with(|s| {
        s.telemetry.access_log_file = Some(LOG.into());
        s.telemetry.access_log_query = true;
    })
    .await;
    app.api("open", "open", &app.echo_url()).await;
    app.put_ok(
        "/apis/open",
        serde_json::json!({"displayName": "open", "path": "open", "serviceUrl": app.echo_url(), "subscriptionRequired": false}),
    )
    .await;
    let r = app
        .client
        .get(format!("{}/open/q?a=1&b=two", app.gw))
        .header("x-request-id", "req-query")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v = record(&app, "req-query").await;
    assert_eq!(v["path"], "/open/q?a=1&b=two");
    assert_eq!(v["api"], "open");
    assert_eq!(v["product"], "");

    // A subscription key in the query is cut to a 4-character hint, on a
    // served request and on a refused one.
    let key = app.standard().await;
    let r = app
        .client
        .get(format!("{}/echo/q?a=1&subscription-key={key}&b=2", app.gw))
        .header("x-request-id", "req-query-key")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v = record(&app, "req-query-key").await;
    assert_eq!(
        v["path"],
        format!("/echo/q?a=1&subscription-key={}…&b=2", &key[..4])
    );
    let wrong = "wrong-key-0123456789abcdef";
    let r = app
        .client
        .get(format!("{}/echo/q?subscription-key={wrong}", app.gw))
        .header("x-request-id", "req-query-wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v = record(&app, "req-query-wrong").await;
    assert_eq!(v["path"], "/echo/q?subscription-key=wron…");
    let text = log_text(&app);
    assert!(!text.contains(&key) && !text.contains(wrong), "{text}");
}

#[tokio::test]
async fn streamed_bytes_and_cache_hits_are_recorded() {
    let app = app().await;
    let key = app.standard().await;
    // A 1 MiB body streamed by the backend 64 KiB at a time.
    let big =
        backend::spawn(|_req| async { hyper::Response::new(backend::generated(1 << 20)) }).await;
    app.api("big", "big", &format!("http://{big}")).await;
    app.product("bigs", &["big"], false).await;
    let r = app
        .client
        .get(format!("{}/big/x", app.gw))
        .header("x-request-id", "req-big")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().len(), 1 << 20);
    let v = record(&app, "req-big").await;
    assert_eq!(v["bytes_out"], 1 << 20);
    assert_eq!(v["api"], "big");

    let r = app
        .put_xml(
            "/apis/echo/policy",
            r#"<policies><inbound><base /><cache-lookup vary-by-developer="false" vary-by-developer-groups="false" /></inbound><outbound><base /><cache-store duration="60" /></outbound></policies>"#,
        )
        .await;
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    for (id, cache) in [("req-c1", "miss"), ("req-c2", "hit")] {
        let r = app
            .client
            .get(format!("{}/echo/cached", app.gw))
            .header("Ocp-Apim-Subscription-Key", &key)
            .header("x-request-id", id)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let n = r.bytes().await.unwrap().len() as u64;
        let v = record(&app, id).await;
        assert_eq!(v["cache"], cache, "{v}");
        assert_eq!(v["bytes_out"], n);
        if cache == "hit" {
            assert_eq!(v["backend_duration_us"], 0, "{v}");
        }
    }
}
