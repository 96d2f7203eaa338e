//! Loggers (`/mgmt/loggers/{id}`) and `log-to-eventhub` through the real
//! gateway: file and http loggers receive what policies send, validation
//! refuses bad definitions, secrets stay hidden, and policies that need
//! Azure-only services are refused with the reason.

mod common;

use common::backend::{self, full};
use common::{assert_mgmt_error, TestApp};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

async fn policy(app: &TestApp, path: &str, xml: &str) {
    let r = app.put_xml(path, xml).await;
    let status = r.status();
    let body = r.text().await.unwrap();
    assert!(status.is_success(), "PUT {path}: {status} {body}");
}

/// Waits (up to 10 s) until `path` holds at least `n` lines; returns them.
async fn lines(path: &std::path::Path, n: usize) -> Vec<Value> {
    for _ in 0..200 {
        if let Ok(text) = std::fs::read_to_string(path) {
            let got: Vec<Value> = text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            if got.len() >= n {
                return got;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{} never held {n} lines", path.display());
}

#[tokio::test]
async fn logger_crud_validation_and_hidden_secrets() {
    let app = TestApp::spawn().await;
    let r = app
        .put(
            "/loggers/f1",
            json!({"loggerType": "file", "description": "events", "settings": {"path": "events/f1.log", "maxBytes": 4096, "maxFiles": 2}}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let v = app.get_json("/loggers/f1").await;
    assert_eq!(v["id"], "f1");
    assert_eq!(v["loggerType"], "file");
    assert_eq!(v["settings"]["path"], "events/f1.log");
    assert_eq!(v["settings"]["maxBytes"], 4096);

    // Bad definitions: unknown type, an Azure type, a path escaping the
    // data directory, a key of another type, an unknown key, a missing URL.
    for (body, fragment) in [
        (
            json!({"loggerType": "kafka"}),
            "must be file, http or stdout",
        ),
        (json!({"loggerType": "azureEventHub"}), "Azure service"),
        (
            json!({"loggerType": "file", "settings": {"path": "../x.log"}}),
            "settings.path",
        ),
        (
            json!({"loggerType": "file", "settings": {"path": "/etc/x.log"}}),
            "settings.path",
        ),
        (
            json!({"loggerType": "file", "settings": {"path": "x.log", "url": "http://a"}}),
            "not a setting of a file logger",
        ),
        (
            json!({"loggerType": "http", "settings": {}}),
            "settings.url",
        ),
        (
            json!({"loggerType": "stdout", "settings": {"path": "x"}}),
            "not a setting of a stdout logger",
        ),
        (
            json!({"loggerType": "http", "settings": {"url": "http://a", "batchSize": 0}}),
            "settings.batchSize",
        ),
    ] {
        let r = app.put("/loggers/bad", body.clone()).await;
        let v = assert_mgmt_error(r, 400, "ValidationError").await;
        assert!(v.to_string().contains(fragment), "{body}: {v}");
    }
    let r = app
        .put(
            "/loggers/bad",
            json!({"loggerType": "file", "settings": {"path": "x", "bogus": 1}}),
        )
        .await;
    let v = assert_mgmt_error(r, 400, "ValidationError").await;
    assert!(v.to_string().contains("bogus"), "{v}");
    let r = app
        .put("/loggers/bad", json!({"loggerType": "file", "extra": 1}))
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(app.get("/loggers/bad").await.status(), 404);

    // Header values are secrets: hidden by GET, kept by a PUT that sends "".
    app.put_ok(
        "/loggers/h1",
        json!({"loggerType": "http", "settings": {"url": "http://127.0.0.1:9/ingest", "headers": {"Authorization": "Bearer s3cret-token"}}}),
    )
    .await;
    let v = app.get_json("/loggers/h1").await;
    assert_eq!(v["settings"]["headers"]["Authorization"], "");
    assert!(!v.to_string().contains("s3cret"));
    let list = app.get_json("/loggers").await;
    assert_eq!(list["count"], 2);
    assert!(!list.to_string().contains("s3cret"));
    app.put_ok(
        "/loggers/h1",
        json!({"loggerType": "http", "description": "kept", "settings": {"url": "http://127.0.0.1:9/ingest", "headers": {"Authorization": ""}}}),
    )
    .await;
    let r = app
        .put(
            "/loggers/h1",
            json!({"loggerType": "http", "settings": {"url": "http://127.0.0.1:9/ingest", "headers": {"X-New": ""}}}),
        )
        .await;
    assert_mgmt_error(r, 400, "ValidationError").await;

    assert_eq!(app.delete("/loggers/h1").await.status(), 204);
    assert_eq!(app.get("/loggers/h1").await.status(), 404);
}

#[tokio::test]
async fn log_to_eventhub_lands_in_a_file_logger() {
    let app = TestApp::spawn().await;
    let key = app.standard().await;
    // An unknown logger id is refused when the document is written.
    let r = app
        .put_xml(
            "/apis/echo/policy",
            r#"<policies><inbound><base /><log-to-eventhub logger-id="audit">x</log-to-eventhub></inbound></policies>"#,
        )
        .await;
    let v = assert_mgmt_error(r, 400, "ValidationError").await;
    assert!(
        v.to_string().contains("logger 'audit' does not exist"),
        "{v}"
    );

    app.put_ok(
        "/loggers/audit",
        json!({"loggerType": "file", "settings": {"path": "audit/events.log"}}),
    )
    .await;
    policy(
        &app,
        "/apis/echo/policy",
        r#"<policies><inbound><base /><log-to-eventhub logger-id="audit" partition-id="1">@(context.Request.Method + " " + context.Request.Url.Path)</log-to-eventhub></inbound><outbound><base /><log-to-eventhub logger-id="audit" partition-key="@(context.Subscription.Id)">@("status " + context.Response.StatusCode)</log-to-eventhub></outbound></policies>"#,
    )
    .await;
    let r = app.call("/echo/orders/7", Some(&key)).await;
    assert_eq!(r.status(), 200);
    let file = app
        .dir
        .as_ref()
        .unwrap()
        .path()
        .join("logs/audit/events.log");
    let got = lines(&file, 2).await;
    assert_eq!(got[0]["loggerId"], "audit");
    assert_eq!(got[0]["partitionId"], "1");
    assert_eq!(got[0]["partitionKey"], Value::Null);
    assert_eq!(got[0]["message"], "GET /orders/7");
    assert!(got[0]["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(got[1]["partitionKey"], "s1");
    assert_eq!(got[1]["message"], "status 200");

    // A logger a policy uses cannot be deleted.
    let r = app.delete("/loggers/audit").await;
    let v = assert_mgmt_error(r, 400, "ValidationError").await;
    assert!(v.to_string().contains("audit"), "{v}");
}

/// The batches an http logger POSTed: `Authorization` and the JSON array.
type Batches = Vec<(Option<String>, Value)>;

#[tokio::test]
async fn http_logger_posts_batches() {
    let received: Arc<Mutex<Batches>> = Arc::default();
    let sink = received.clone();
    let addr = backend::spawn(move |req: hyper::Request<hyper::body::Incoming>| {
        let sink = sink.clone();
        async move {
            let auth = req
                .headers()
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_string());
            let body = req.into_body().collect().await.unwrap().to_bytes();
            let v: Value = serde_json::from_slice(&body).unwrap();
            sink.lock().unwrap().push((auth, v));
            hyper::Response::new(full(""))
        }
    })
    .await;
    let app = TestApp::spawn().await;
    let key = app.standard().await;
    app.put_ok(
        "/loggers/remote",
        json!({"loggerType": "http", "settings": {"url": format!("http://{addr}/ingest"), "headers": {"Authorization": "Bearer ingest-key"}, "batchSize": 3, "flushIntervalMs": 200}}),
    )
    .await;
    policy(
        &app,
        "/apis/echo/policy",
        r#"<policies><inbound><base /><log-to-eventhub logger-id="remote">@(context.Request.Url.Path)</log-to-eventhub></inbound></policies>"#,
    )
    .await;
    for i in 0..3 {
        let r = app.call(&format!("/echo/m{i}"), Some(&key)).await;
        assert_eq!(r.status(), 200);
    }
    let mut messages = Vec::new();
    for _ in 0..200 {
        messages = received
            .lock()
            .unwrap()
            .iter()
            .flat_map(|(_, v)| v.as_array().unwrap().clone())
            .map(|r| r["message"].as_str().unwrap().to_string())
            .collect::<Vec<_>>();
        if messages.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    messages.sort();
    assert_eq!(messages, vec!["/m0", "/m1", "/m2"]);
    let got = received.lock().unwrap();
    assert!(got
        .iter()
        .all(|(auth, _)| auth.as_deref() == Some("Bearer ingest-key")));
    assert!(got.iter().all(|(_, v)| v[0]["loggerId"] == "remote"));
}

#[tokio::test]
async fn policies_needing_azure_only_services_are_refused_with_the_reason() {
    let app = TestApp::spawn().await;
    app.api("echo", "echo", &app.echo_url()).await;
    for (xml, fragment) in [
        (
            r#"<get-authorization-context provider-id="p" authorization-id="a" context-variable-name="c" />"#,
            "credential manager",
        ),
        (
            r#"<llm-content-safety backend-id="cs"><categories><category name="Hate" threshold="4" /></categories></llm-content-safety>"#,
            "Azure AI Content Safety",
        ),
        (
            r#"<azure-openai-semantic-cache-lookup score-threshold="0.8" embeddings-backend-id="e" embeddings-backend-auth="system-assigned" />"#,
            "embeddings backend",
        ),
        (
            r#"<llm-semantic-cache-lookup score-threshold="0.8" embeddings-backend-id="e" embeddings-backend-auth="system-assigned" />"#,
            "embeddings backend",
        ),
        (
            r#"<publish-to-dapr topic="t/orders">@(context.Request.Body.As<string>())</publish-to-dapr>"#,
            "Dapr sidecar",
        ),
        (
            r#"<set-backend-service backend-id="x" dapr-app-id="orders" dapr-method="get" />"#,
            "Dapr sidecar",
        ),
    ] {
        let doc = format!("<policies><inbound>{xml}</inbound></policies>");
        let r = app.put_xml("/apis/echo/policy", &doc).await;
        let v = assert_mgmt_error(r, 400, "ValidationError").await;
        assert!(v.to_string().contains(fragment), "{xml}: {v}");
    }
    let r = app
        .put_xml(
            "/apis/echo/policy",
            r#"<policies><inbound><invoke-dapr-binding name="b" operation="create"><data>x</data></invoke-dapr-binding></inbound></policies>"#,
        )
        .await;
    let v = assert_mgmt_error(r, 400, "ValidationError").await;
    assert!(v.to_string().contains("Dapr sidecar"), "{v}");
}
