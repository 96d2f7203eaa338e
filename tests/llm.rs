//! `llm-token-limit` / `azure-openai-token-limit` and the token metrics
//! through the real gateway, against fake OpenAI- and Anthropic-shaped
//! backends (JSON and server-sent events); `emit-metric` into the
//! registry.

mod common;

use common::backend::{self, full};
use common::{assert_gateway_error, TestApp};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

async fn policy(app: &TestApp, path: &str, xml: &str) {
    let r = app.put_xml(path, xml).await;
    let status = r.status();
    let body = r.text().await.unwrap();
    assert!(status.is_success(), "PUT {path}: {status} {body}");
}

fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
}

/// A backend answering every request with `body` (and `content_type`),
/// counting the calls.
async fn fake(body: &'static str, content_type: &'static str) -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let addr = backend::spawn(move |_req| {
        let c = c.clone();
        async move {
            c.fetch_add(1, Ordering::SeqCst);
            hyper::Response::builder()
                .header("content-type", content_type)
                .body(full(body))
                .unwrap()
        }
    })
    .await;
    (format!("http://{addr}"), calls)
}

async fn chat(app: &TestApp, key: &str, body: Value) -> reqwest::Response {
    app.client
        .post(format!("{}/llm/chat/completions", app.gw))
        .header("Ocp-Apim-Subscription-Key", key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn setup(app: &TestApp, url: &str, inbound: &str) -> String {
    app.api("llm", "llm", url).await;
    app.product("ai", &["llm"], true).await;
    let key = app.subscription("s1", "/products/ai").await;
    policy(
        app,
        "/apis/llm/policy",
        &format!("<policies><inbound><base />{inbound}</inbound></policies>"),
    )
    .await;
    key
}

const OPENAI: &str = r#"{"id":"c1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"}}],"usage":{"prompt_tokens":30,"completion_tokens":20,"total_tokens":50}}"#;

#[tokio::test]
async fn token_limit_counts_usage_and_refuses_past_tokens_per_minute() {
    let (url, calls) = fake(OPENAI, "application/json").await;
    let app = TestApp::spawn().await;
    let key = setup(
        &app,
        &url,
        r#"<llm-token-limit counter-key="@(context.Subscription.Id)" tokens-per-minute="100" estimate-prompt-tokens="false" tokens-consumed-header-name="x-consumed" remaining-tokens-header-name="x-remaining" tokens-consumed-variable-name="consumed" retry-after-variable-name="retry" />"#,
    )
    .await;
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "hello"}]});
    let r = chat(&app, &key, body.clone()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-consumed").as_deref(), Some("50"));
    assert_eq!(header(&r, "x-remaining").as_deref(), Some("50"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["usage"]["total_tokens"], 50, "the body passes through");
    let r = chat(&app, &key, body.clone()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-remaining").as_deref(), Some("0"));
    // 100 tokens used in this minute: the next call is refused up front.
    let r = chat(&app, &key, body.clone()).await;
    let secs: u64 = header(&r, "retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=60).contains(&secs), "{secs}");
    assert_gateway_error(
        r,
        429,
        &format!("Token limit is exceeded. Try again in {secs} seconds."),
    )
    .await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    // The azure-openai- name behaves the same and shares the counter key.
    policy(
        &app,
        "/apis/llm/policy",
        r#"<policies><inbound><base /><azure-openai-token-limit counter-key="@(context.Subscription.Id)" tokens-per-minute="100" estimate-prompt-tokens="false" retry-after-header-name="x-retry" /></inbound></policies>"#,
    )
    .await;
    let r = chat(&app, &key, body).await;
    assert_eq!(r.status(), 429);
    assert!(header(&r, "x-retry").is_some());
}

#[tokio::test]
async fn estimated_prompts_are_refused_before_the_backend_is_called() {
    let (url, calls) = fake(OPENAI, "application/json").await;
    let app = TestApp::spawn().await;
    let key = setup(
        &app,
        &url,
        r#"<llm-token-limit counter-key="k" tokens-per-minute="50" estimate-prompt-tokens="true" />"#,
    )
    .await;
    // 400 characters: about 100 tokens, more than the minute allows.
    let big = json!({"messages": [{"role": "user", "content": "x".repeat(400)}]});
    let r = chat(&app, &key, big).await;
    assert_eq!(r.status(), 429);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    let small = json!({"messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(chat(&app, &key, small).await.status(), 200);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

const SSE_1: &str =
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"0123456789\"}}]}\n\n";
const SSE_2: &str = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"0123456789\"}}]}\n\ndata: [DONE]\n\n";

type Feeds = Arc<std::sync::Mutex<Vec<tokio::sync::mpsc::UnboundedSender<&'static str>>>>;

/// A backend streaming server-sent events the test feeds (one feed per
/// request, in order).
async fn streaming() -> (String, Feeds) {
    let feeds: Feeds = Arc::default();
    let f = feeds.clone();
    let addr = backend::spawn(move |_req| {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<&'static str>();
        f.lock().unwrap().push(tx);
        async move {
            let stream = futures_util::stream::unfold(rx, |mut rx| async move {
                let chunk = rx.recv().await?;
                Some((
                    Ok::<_, std::io::Error>(hyper::body::Frame::data(bytes::Bytes::from(chunk))),
                    rx,
                ))
            });
            hyper::Response::builder()
                .header("content-type", "text/event-stream")
                .body(http_body_util::BodyExt::boxed_unsync(
                    http_body_util::StreamBody::new(stream),
                ))
                .unwrap()
        }
    })
    .await;
    (format!("http://{addr}"), feeds)
}

/// Waits (up to 10 s) until the registry holds `metric` in `namespace`.
async fn metric(app: &TestApp, namespace: &str, metric: &str) -> (u64, f64) {
    for _ in 0..200 {
        let got = app.telemetry().metrics.total(namespace, metric, &[]);
        if got.0 > 0 {
            return got;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{namespace}/{metric} never recorded");
}

#[tokio::test]
async fn streamed_responses_pass_through_and_are_counted_by_estimate() {
    let (url, feeds) = streaming().await;
    let app = TestApp::spawn().await;
    let key = setup(
        &app,
        &url,
        r#"<llm-token-limit counter-key="k" tokens-per-minute="1000" estimate-prompt-tokens="false" tokens-consumed-header-name="x-consumed" remaining-tokens-header-name="x-remaining" /><llm-emit-token-metric namespace="ai"><dimension name="API ID" /></llm-emit-token-metric>"#,
    )
    .await;
    // Prompt: 400 characters in one message = 100 + 4 tokens; the stream's
    // 20 characters = 5 tokens.
    let body = json!({"stream": true, "messages": [{"role": "user", "content": "x".repeat(400)}]});
    let mut r = chat(&app, &key, body.clone()).await;
    assert_eq!(r.status(), 200);
    assert!(header(&r, "content-type")
        .unwrap()
        .starts_with("text/event-stream"));
    // While streaming, the response reports the prompt estimate.
    assert_eq!(header(&r, "x-consumed").as_deref(), Some("104"));
    assert_eq!(header(&r, "x-remaining").as_deref(), Some("896"));
    // The first event reaches the client before the backend sends more.
    feeds.lock().unwrap()[0].send(SSE_1).unwrap();
    let first = r.chunk().await.unwrap().unwrap();
    assert_eq!(&first[..], SSE_1.as_bytes());
    {
        let tx = feeds.lock().unwrap().remove(0);
        tx.send(SSE_2).unwrap();
    }
    let rest = r.text().await.unwrap();
    assert_eq!(rest, SSE_2);
    // At the end of the stream the estimate is charged: 104 + 5.
    assert_eq!(metric(&app, "ai", "Total Tokens").await, (1, 109.0));
    let m = &app.telemetry().metrics;
    assert_eq!(
        m.total("ai", "Total Tokens", &[("API ID", "llm")]),
        (1, 109.0)
    );
    assert_eq!(m.total("ai", "Prompt Tokens", &[]), (1, 104.0));
    assert_eq!(m.total("ai", "Completion Tokens", &[]), (1, 5.0));
    let feeder = tokio::spawn({
        let feeds = feeds.clone();
        async move {
            loop {
                if let Some(tx) = feeds.lock().unwrap().pop() {
                    tx.send(SSE_2).unwrap();
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    });
    let r = chat(&app, &key, body).await;
    assert_eq!(header(&r, "x-remaining").as_deref(), Some("787"));
    r.text().await.unwrap();
    feeder.await.unwrap();
}

const SSE_WITH_USAGE: &str = "data: {\"choices\":[{\"delta\":{\"content\":\"abcd\"}}]}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3,\"total_tokens\":10}}\n\ndata: [DONE]\n\n";

#[tokio::test]
async fn a_final_usage_event_of_a_stream_is_charged() {
    let (url, _calls) = fake(SSE_WITH_USAGE, "text/event-stream").await;
    let app = TestApp::spawn().await;
    let key = setup(
        &app,
        &url,
        r#"<llm-token-limit counter-key="k" tokens-per-minute="1000" estimate-prompt-tokens="true" remaining-tokens-header-name="x-remaining" /><llm-emit-token-metric namespace="ai" value-type="total-tokens" />"#,
    )
    .await;
    let body = json!({"stream": true, "messages": [{"role": "user", "content": "x".repeat(400)}]});
    let r = chat(&app, &key, body.clone()).await;
    assert_eq!(header(&r, "x-remaining").as_deref(), Some("896"));
    assert_eq!(r.text().await.unwrap(), SSE_WITH_USAGE);
    assert_eq!(metric(&app, "ai", "Total Tokens").await, (1, 10.0));
    let r = chat(&app, &key, body).await;
    assert_eq!(header(&r, "x-remaining").as_deref(), Some("886"));
}

const ANTHROPIC: &str = r#"{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":"hi"}],"usage":{"input_tokens":10,"output_tokens":5}}"#;

#[tokio::test]
async fn anthropic_usage_counts_against_a_token_quota() {
    let (url, calls) = fake(ANTHROPIC, "application/json").await;
    let app = TestApp::spawn().await;
    let key = setup(
        &app,
        &url,
        r#"<llm-token-limit counter-key="@(context.Subscription.Id)" token-quota="20" token-quota-period="Hourly" estimate-prompt-tokens="false" tokens-consumed-header-name="x-consumed" remaining-quota-tokens-header-name="x-quota-left" remaining-quota-tokens-variable-name="left" />"#,
    )
    .await;
    let body = json!({"model": "claude", "max_tokens": 10, "system": "be brief", "messages": [{"role": "user", "content": [{"type": "text", "text": "hello"}]}]});
    let r = chat(&app, &key, body.clone()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-consumed").as_deref(), Some("15"));
    assert_eq!(header(&r, "x-quota-left").as_deref(), Some("5"));
    // Room for one more (usage is charged after the response) ...
    let r = chat(&app, &key, body.clone()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-quota-left").as_deref(), Some("0"));
    // ... then the quota is spent until the hour renews.
    let r = chat(&app, &key, body).await;
    assert_eq!(r.status(), 403);
    let secs: u64 = header(&r, "retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&secs));
    let v: Value = r.json().await.unwrap();
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("Token quota is exceeded. Quota will be replenished in "),
        "{v}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn emit_metric_and_token_metrics_land_in_the_registry() {
    let (url, _calls) = fake(OPENAI, "application/json").await;
    let app = TestApp::spawn().await;
    let key = setup(
        &app,
        &url,
        r#"<emit-metric name="requests" namespace="shop" value="@(2.5)"><dimension name="Subscription ID" /><dimension name="tier" value="@(context.Request.Headers.GetValueOrDefault("x-tier", "free"))" /></emit-metric><azure-openai-emit-token-metric namespace="openai" value-type="total-tokens"><dimension name="Product ID" /></azure-openai-emit-token-metric><trace source="llm" severity="information"><message>called</message></trace>"#,
    )
    .await;
    for _ in 0..2 {
        let r = app
            .client
            .post(format!("{}/llm/chat/completions", app.gw))
            .header("Ocp-Apim-Subscription-Key", &key)
            .header("x-tier", "gold")
            .json(&json!({"messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let m = &app.telemetry().metrics;
    assert_eq!(
        m.total(
            "shop",
            "requests",
            &[("Subscription ID", "s1"), ("tier", "gold")]
        ),
        (2, 5.0)
    );
    assert_eq!(
        m.total("openai", "Total Tokens", &[("Product ID", "ai")]),
        (2, 100.0)
    );
    assert_eq!(m.total("openai", "Prompt Tokens", &[]), (0, 0.0));
    assert_eq!(
        m.total(
            "turnpike",
            "trace",
            &[("source", "llm"), ("severity", "information")]
        ),
        (2, 2.0)
    );
}
