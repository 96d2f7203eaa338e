//! The Dapr policies through the real gateway against a fake Dapr sidecar
//! (`[dapr] sidecar_url`): service invocation by `set-backend-service`,
//! `publish-to-dapr`, `invoke-dapr-binding`, `ignore-error`, and the
//! compile error without a sidecar.

mod common;

use common::backend::{self, full};
use common::{assert_mgmt_error, TestApp};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// What the fake sidecar saw: method, path with query, content type, body.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    content_type: String,
    body: String,
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// A sidecar that records each request; publish and bindings answer 204
/// and 200, invocations answer `{"invoked": path}`.
async fn sidecar() -> (SocketAddr, Log) {
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    let addr = backend::spawn(move |req| {
        let l = l.clone();
        async move {
            let method = req.method().to_string();
            let path = req
                .uri()
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default();
            let content_type = req
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            let body = req.into_body().collect().await.unwrap().to_bytes();
            l.lock().unwrap().push(Seen {
                method,
                path: path.clone(),
                content_type,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
            let mut r = if path.starts_with("/v1.0/publish/") {
                hyper::Response::new(full(""))
            } else {
                hyper::Response::new(full(json!({ "invoked": path }).to_string()))
            };
            if path.starts_with("/v1.0/publish/") {
                *r.status_mut() = hyper::StatusCode::NO_CONTENT;
            }
            r
        }
    })
    .await;
    (addr, log)
}

async fn app_with_sidecar(url: String) -> TestApp {
    TestApp::spawn_with(move |s| s.dapr.sidecar_url = Some(url)).await
}

/// An API `id` on `backend` in the starter product; the key.
async fn api_on(app: &TestApp, id: &str, backend: &str) -> String {
    app.api(id, id, backend).await;
    app.product("starter", &[id], true).await;
    app.subscription("s1", "/products/starter").await
}

async fn policy(app: &TestApp, path: &str, xml: &str) {
    let r = app.put_xml(path, xml).await;
    let status = r.status();
    let body = r.text().await.unwrap();
    assert!(status.is_success(), "PUT {path}: {status} {body}");
}

/// A port nothing listens on.
async fn closed_port() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
async fn set_backend_service_dapr_invokes_the_app_through_the_sidecar() {
    let (addr, log) = sidecar().await;
    let app = app_with_sidecar(format!("http://{addr}")).await;
    let key = api_on(&app, "orders", &app.echo_url()).await;
    policy(
        &app,
        "/apis/orders/policy",
        r#"<policies><inbound><base />
  <set-backend-service backend-id="dapr" dapr-app-id="orders" dapr-namespace="prod" dapr-method="list" />
</inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>"#,
    )
    .await;
    let r = app.call("/orders/items?x=1", Some(&key)).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["invoked"], "/v1.0/invoke/orders.prod/method/list?x=1",
        "{v}"
    );

    // Without dapr-method the method is the path after the API's path.
    policy(
        &app,
        "/apis/orders/policy",
        r#"<policies><inbound><base />
  <set-backend-service backend-id="dapr" dapr-app-id="@(&quot;inventory&quot;)" />
</inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>"#,
    )
    .await;
    let r = app
        .client
        .post(format!("{}/orders/items/7", app.gw))
        .header("Ocp-Apim-Subscription-Key", &key)
        .body("payload")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["invoked"], "/v1.0/invoke/inventory/method/items/7", "{v}");
    let seen = log.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[1].method, "POST");
    assert_eq!(seen[1].body, "payload");
}

#[tokio::test]
async fn publish_to_dapr_posts_the_message_and_stores_the_answer() {
    let (addr, log) = sidecar().await;
    let app = app_with_sidecar(format!("http://{addr}")).await;
    let key = api_on(&app, "shop", &app.echo_url()).await;
    policy(
        &app,
        "/apis/shop/policy",
        r#"<policies><inbound><base />
  <publish-to-dapr pubsub-name="pubsub" topic="new-orders" content-type="application/json" response-variable-name="pub">@(context.Request.Body.As<string>(preserveContent: true))</publish-to-dapr>
  <return-response>
    <set-status code="202" reason="Accepted" />
    <set-header name="X-Dapr-Status" exists-action="override"><value>@(((IResponse)context.Variables["pub"]).StatusCode.ToString())</value></set-header>
  </return-response>
</inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>"#,
    )
    .await;
    let r = app
        .client
        .post(format!("{}/shop/orders", app.gw))
        .header("Ocp-Apim-Subscription-Key", &key)
        .body(r#"{"id":42}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["x-dapr-status"], "204");
    let seen = log.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].path, "/v1.0/publish/pubsub/new-orders");
    assert_eq!(seen[0].content_type, "application/json");
    assert_eq!(seen[0].body, r#"{"id":42}"#);
}

#[tokio::test]
async fn invoke_dapr_binding_posts_the_envelope_with_metadata() {
    let (addr, log) = sidecar().await;
    let app = app_with_sidecar(format!("http://{addr}")).await;
    let key = api_on(&app, "shop", &app.echo_url()).await;
    policy(
        &app,
        "/apis/shop/policy",
        r#"<policies><inbound><base />
  <invoke-dapr-binding name="order-queue" operation="create" response-variable-name="b">
    <metadata>
      <item key="ttlInSeconds">60</item>
      <item key="from">@(context.Request.Headers.GetValueOrDefault("X-From", ""))</item>
    </metadata>
    <data>@(context.Request.Body.As<string>(preserveContent: true))</data>
  </invoke-dapr-binding>
  <set-header name="X-Binding" exists-action="override"><value>@(((IResponse)context.Variables["b"]).Body.As<string>())</value></set-header>
</inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>"#,
    )
    .await;
    let r = app
        .client
        .post(format!("{}/shop/orders", app.gw))
        .header("Ocp-Apim-Subscription-Key", &key)
        .header("X-From", "web")
        .body(r#"{"id":7,"qty":2}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let echoed: Value = r.json().await.unwrap();
    // The sidecar's answer was readable, and the request went on to the backend.
    assert_eq!(
        echoed["headers"]["x-binding"], r#"{"invoked":"/v1.0/bindings/order-queue"}"#,
        "{echoed}"
    );
    let seen = log.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].path, "/v1.0/bindings/order-queue");
    assert_eq!(seen[0].content_type, "application/json");
    let sent: Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!(
        sent,
        json!({
            "operation": "create",
            "metadata": {"ttlInSeconds": "60", "from": "web"},
            "data": {"id": 7, "qty": 2}
        })
    );
}

#[tokio::test]
async fn ignore_error_decides_between_null_and_on_error() {
    let port = closed_port().await;
    let app = app_with_sidecar(format!("http://127.0.0.1:{port}")).await;
    let key = api_on(&app, "shop", &app.echo_url()).await;
    let doc = |ignore: bool| {
        format!(
            r#"<policies><inbound><base />
  <publish-to-dapr pubsub-name="p" topic="t" response-variable-name="r" ignore-error="{ignore}">hello</publish-to-dapr>
  <set-header name="X-R" exists-action="override"><value>@(context.Variables["r"] == null ? "null" : "set")</value></set-header>
</inbound><backend><base /></backend><outbound><base /></outbound>
<on-error><return-response>
  <set-status code="599" reason="Failed" />
  <set-body>@(context.LastError.Source + "|" + context.LastError.Reason + "|" + context.LastError.Path)</set-body>
</return-response></on-error></policies>"#
        )
    };
    policy(&app, "/apis/shop/policy", &doc(true)).await;
    let r = app.call("/shop/x", Some(&key)).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["headers"]["x-r"], "null", "{v}");

    policy(&app, "/apis/shop/policy", &doc(false)).await;
    let r = app.call("/shop/x", Some(&key)).await;
    assert_eq!(r.status(), 599);
    assert_eq!(
        r.text().await.unwrap(),
        "publish-to-dapr|BackendConnectionFailure|publish-to-dapr[1]"
    );
}

#[tokio::test]
async fn an_error_status_from_the_sidecar_goes_to_on_error() {
    let addr = backend::spawn(|_req| async move {
        let mut r = hyper::Response::new(full(r#"{"errorCode":"ERR_PUBSUB_NOT_FOUND"}"#));
        *r.status_mut() = hyper::StatusCode::NOT_FOUND;
        r
    })
    .await;
    let app = app_with_sidecar(format!("http://{addr}")).await;
    let key = api_on(&app, "shop", &app.echo_url()).await;
    policy(
        &app,
        "/apis/shop/policy",
        r#"<policies><inbound><base />
  <invoke-dapr-binding name="missing"><data>x</data></invoke-dapr-binding>
</inbound><backend><base /></backend><outbound><base /></outbound>
<on-error><return-response>
  <set-status code="599" reason="Failed" />
  <set-body>@(context.LastError.Source + "|" + context.LastError.Reason)</set-body>
</return-response></on-error></policies>"#,
    )
    .await;
    let r = app.call("/shop/x", Some(&key)).await;
    assert_eq!(r.status(), 599);
    assert_eq!(r.text().await.unwrap(), "invoke-dapr-binding|DaprError");
}

#[tokio::test]
async fn without_a_sidecar_the_dapr_policies_name_the_setting() {
    let app = TestApp::spawn().await;
    app.api("echo", "echo", &app.echo_url()).await;
    for xml in [
        r#"<publish-to-dapr pubsub-name="p" topic="t">x</publish-to-dapr>"#,
        r#"<invoke-dapr-binding name="b"><data>x</data></invoke-dapr-binding>"#,
        r#"<set-backend-service backend-id="dapr" dapr-app-id="orders" dapr-method="get" />"#,
    ] {
        let doc = format!("<policies><inbound>{xml}</inbound></policies>");
        let r = app.put_xml("/apis/echo/policy", &doc).await;
        let v = assert_mgmt_error(r, 400, "ValidationError").await;
        assert!(v.to_string().contains("[dapr] sidecar_url"), "{xml}: {v}");
    }
}
