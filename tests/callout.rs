//! send-request, send-one-way-request, retry, wait and proxy through the
//! real gateway, against small local backends (and a tiny HTTP proxy).
//! Nothing asserts how long anything took.

mod common;

use common::backend::{self, full};
use common::TestApp;
use http_body_util::BodyExt;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

/// An API `id` on `backend` in the starter product; the key.
async fn api_on(app: &TestApp, id: &str, backend: &str) -> String {
    app.api(id, id, backend).await;
    app.product("starter", &[id], true).await;
    app.subscription("s1", "/products/starter").await
}

/// A port nothing listens on.
async fn closed_port() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

/// A backend answering 503 to its first `failures` calls, then 200; it
/// counts calls and keeps the request bodies.
async fn flaky(failures: usize) -> (SocketAddr, Arc<AtomicUsize>, Arc<Mutex<Vec<String>>>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let (c, b) = (calls.clone(), bodies.clone());
    let addr = backend::spawn(move |req| {
        let (c, b) = (c.clone(), b.clone());
        async move {
            let n = c.fetch_add(1, Ordering::SeqCst) + 1;
            let body = req.into_body().collect().await.unwrap().to_bytes();
            b.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&body).into_owned());
            let mut r = hyper::Response::new(full(format!("{{\"call\":{n}}}")));
            if n <= failures {
                *r.status_mut() = hyper::StatusCode::SERVICE_UNAVAILABLE;
            }
            r
        }
    })
    .await;
    (addr, calls, bodies)
}

#[tokio::test]
async fn send_request_response_is_read_in_expressions() {
    let app = TestApp::spawn().await;
    let svc = backend::spawn(|req| async move {
        assert_eq!(req.method(), "POST");
        let auth = req
            .headers()
            .get("x-auth")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let body = req.into_body().collect().await.unwrap().to_bytes();
        let mut r = hyper::Response::new(full(format!(
            r#"{{"token":"tok-{auth}","sent":{},"items":[1,2,3]}}"#,
            String::from_utf8_lossy(&body)
        )));
        *r.status_mut() = hyper::StatusCode::CREATED;
        r.headers_mut()
            .insert("x-svc", hyper::header::HeaderValue::from_static("svc-1"));
        r
    })
    .await;
    let key = api_on(&app, "echo", &app.echo_url()).await;
    policy(
        &app,
        "/apis/echo/policy",
        &format!(
            r#"<policies><inbound><base />
  <send-request mode="new" response-variable-name="tok" timeout="10" ignore-error="false">
    <set-url>http://{svc}/token</set-url>
    <set-method>POST</set-method>
    <set-header name="X-Auth" exists-action="override"><value>@(context.Request.Headers.GetValueOrDefault("X-User", "none"))</value></set-header>
    <set-body>@(new JObject(new JProperty("user", context.Request.Headers.GetValueOrDefault("X-User", ""))).ToString())</set-body>
  </send-request>
  <set-header name="X-Token" exists-action="override"><value>@((string)((IResponse)context.Variables["tok"]).Body.As<JObject>()["token"])</value></set-header>
  <set-variable name="status" value="@(((IResponse)context.Variables["tok"]).StatusCode)" />
</inbound><backend><base /></backend><outbound><base />
  <set-header name="X-Svc" exists-action="override"><value>@(context.Variables.GetValueOrDefault<IResponse>("tok").Headers.GetValueOrDefault("x-svc", "missing"))</value></set-header>
  <set-header name="X-Status" exists-action="override"><value>@(context.Variables["status"].ToString() + " " + ((IResponse)context.Variables["tok"]).StatusReason)</value></set-header>
  <set-header name="X-Sent" exists-action="override"><value>@((string)((IResponse)context.Variables["tok"]).Body.As<JObject>()["sent"]["user"])</value></set-header>
  <set-header name="X-Items" exists-action="override"><value>@(((IResponse)context.Variables["tok"]).Body.As<JObject>()["items"].Count().ToString())</value></set-header>
</outbound></policies>"#
        ),
    )
    .await;
    let r = app
        .client
        .get(format!("{}/echo/x", app.gw))
        .header("Ocp-Apim-Subscription-Key", &key)
        .header("X-User", "ann")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-svc").as_deref(), Some("svc-1"));
    assert_eq!(header(&r, "x-status").as_deref(), Some("201 Created"));
    assert_eq!(header(&r, "x-sent").as_deref(), Some("ann"));
    assert_eq!(header(&r, "x-items").as_deref(), Some("3"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["headers"]["x-token"], "tok-ann", "{v}");
}

#[tokio::test]
async fn ignore_error_decides_between_null_and_on_error() {
    let app = TestApp::spawn().await;
    let key = api_on(&app, "echo", &app.echo_url()).await;
    let port = closed_port().await;
    let doc = |ignore: bool| {
        format!(
            r#"<policies><inbound><base />
  <send-request mode="new" response-variable-name="r" timeout="5" ignore-error="{ignore}">
    <set-url>http://127.0.0.1:{port}/nothing</set-url>
  </send-request>
  <set-header name="X-R" exists-action="override"><value>@(context.Variables["r"] == null ? "null" : "set")</value></set-header>
</inbound><backend><base /></backend><outbound><base /></outbound>
<on-error><return-response>
  <set-status code="599" reason="Failed" />
  <set-body>@(context.LastError.Source + "|" + context.LastError.Reason + "|" + context.LastError.Path)</set-body>
</return-response></on-error></policies>"#
        )
    };
    policy(&app, "/apis/echo/policy", &doc(true)).await;
    let r = app.call("/echo/x", Some(&key)).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["headers"]["x-r"], "null", "{v}");

    policy(&app, "/apis/echo/policy", &doc(false)).await;
    let r = app.call("/echo/x", Some(&key)).await;
    assert_eq!(r.status(), 599);
    assert_eq!(
        r.text().await.unwrap(),
        "send-request|BackendConnectionFailure|send-request[1]"
    );
}

#[tokio::test]
async fn copy_mode_carries_the_request_and_return_response_answers_with_it() {
    let app = TestApp::spawn().await;
    let key = api_on(&app, "echo", &app.echo_url()).await;
    let echo = app.echo_url();
    policy(
        &app,
        "/apis/echo/policy",
        &format!(
            r#"<policies><inbound><base />
  <send-request mode="copy" response-variable-name="copied" timeout="10">
    <set-url>{echo}/copied?q=1</set-url>
    <set-header name="X-Added" exists-action="append"><value>yes</value></set-header>
  </send-request>
  <return-response response-variable-name="copied">
    <set-header name="X-Answered-By" exists-action="override"><value>return-response</value></set-header>
  </return-response>
</inbound></policies>"#
        ),
    )
    .await;
    let r = app
        .client
        .post(format!("{}/echo/original", app.gw))
        .header("Ocp-Apim-Subscription-Key", &key)
        .header("X-Orig", "o1")
        .body("the body")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "x-answered-by").as_deref(),
        Some("return-response")
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["method"], "POST", "{v}");
    assert_eq!(v["path"], "/copied", "{v}");
    assert_eq!(v["headers"]["x-orig"], "o1", "{v}");
    assert_eq!(v["headers"]["x-added"], "yes", "{v}");
    assert_eq!(v["body"], "the body", "{v}");
}

#[tokio::test]
async fn send_one_way_request_arrives_without_holding_the_request() {
    let app = TestApp::spawn().await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, String)>();
    let svc = backend::spawn(move |req| {
        let tx = tx.clone();
        async move {
            let h = req
                .headers()
                .get("x-event")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            let body = req.into_body().collect().await.unwrap().to_bytes();
            tx.send((h, String::from_utf8_lossy(&body).into_owned()))
                .unwrap();
            hyper::Response::new(full("ok"))
        }
    })
    .await;
    let key = api_on(&app, "echo", &app.echo_url()).await;
    policy(
        &app,
        "/apis/echo/policy",
        &format!(
            r#"<policies><inbound><base />
  <send-one-way-request mode="new" timeout="10">
    <set-url>http://{svc}/events</set-url>
    <set-method>PUT</set-method>
    <set-header name="X-Event" exists-action="override"><value>@(context.Request.Url.Path)</value></set-header>
    <set-body>@("event for " + context.Request.Method)</set-body>
  </send-one-way-request>
</inbound></policies>"#
        ),
    )
    .await;
    let r = app.call("/echo/evt", Some(&key)).await;
    assert_eq!(r.status(), 200);
    let (h, body) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("the one-way request arrives")
        .unwrap();
    assert_eq!(h, "/evt");
    assert_eq!(body, "event for GET");
}

#[tokio::test]
async fn retry_repeats_forward_request_until_the_backend_recovers() {
    let app = TestApp::spawn().await;
    let (addr, calls, _) = flaky(2).await;
    let key = api_on(&app, "flaky", &format!("http://{addr}")).await;
    policy(
        &app,
        "/apis/flaky/policy",
        r#"<policies><inbound><base /></inbound><backend>
  <retry condition="@(context.Response.StatusCode == 503)" count="3" interval="0" first-fast-retry="true">
    <forward-request />
  </retry>
</backend></policies>"#,
    )
    .await;
    let r = app.call("/flaky/a", Some(&key)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), r#"{"call":3}"#);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn retry_count_exhausted_passes_the_last_failure_through() {
    let app = TestApp::spawn().await;
    let (addr, calls, _) = flaky(100).await;
    let key = api_on(&app, "flaky", &format!("http://{addr}")).await;
    policy(
        &app,
        "/apis/flaky/policy",
        r#"<policies><inbound><base /></inbound><backend>
  <retry condition="@(context.Response.StatusCode >= 500)" count="2" interval="1" delta="1" max-interval="1">
    <forward-request />
  </retry>
</backend></policies>"#,
    )
    .await;
    let r = app.call("/flaky/a", Some(&key)).await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.text().await.unwrap(), r#"{"call":3}"#);
    assert_eq!(calls.load(Ordering::SeqCst), 3, "one run and two retries");
}

#[tokio::test]
async fn retry_resends_the_request_body() {
    let app = TestApp::spawn().await;
    let (addr, calls, bodies) = flaky(1).await;
    let key = api_on(&app, "flaky", &format!("http://{addr}")).await;
    policy(
        &app,
        "/apis/flaky/policy",
        r#"<policies><inbound><base /></inbound><backend>
  <retry condition="@(context.Response.StatusCode == 503)" count="2" interval="0">
    <forward-request />
  </retry>
</backend></policies>"#,
    )
    .await;
    let payload = "x".repeat(100_000);
    let r = app
        .client
        .post(format!("{}/flaky/a", app.gw))
        .header("Ocp-Apim-Subscription-Key", &key)
        .body(payload.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let bodies = bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 2);
    assert!(
        bodies.iter().all(|b| *b == payload),
        "both attempts carry the body"
    );
}

#[tokio::test]
async fn retry_around_send_request() {
    let app = TestApp::spawn().await;
    let (addr, calls, _) = flaky(2).await;
    let key = api_on(&app, "echo", &app.echo_url()).await;
    policy(
        &app,
        "/apis/echo/policy",
        &format!(
            r#"<policies><inbound><base />
  <retry condition="@(((IResponse)context.Variables["r"]).StatusCode != 200)" count="5" interval="0">
    <send-request mode="new" response-variable-name="r"><set-url>http://{addr}/s</set-url></send-request>
  </retry>
  <return-response response-variable-name="r" />
</inbound></policies>"#
        ),
    )
    .await;
    let r = app.call("/echo/a", Some(&key)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), r#"{"call":3}"#);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

/// Two backends that each wait (up to 10 s) until both have a request:
/// they answer "together" only if the calls were in flight at once.
async fn paired() -> (SocketAddr, SocketAddr) {
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let mk = |name: &'static str, b: Arc<tokio::sync::Barrier>| {
        backend::spawn(move |_req| {
            let b = b.clone();
            async move {
                let met = tokio::time::timeout(Duration::from_secs(10), b.wait())
                    .await
                    .is_ok();
                let how = if met { "together" } else { "alone" };
                hyper::Response::new(full(format!(r#"{{"name":"{name}","how":"{how}"}}"#)))
            }
        })
    };
    let a = mk("a", barrier.clone()).await;
    let b = mk("b", barrier).await;
    (a, b)
}

#[tokio::test]
async fn wait_all_sends_its_requests_together() {
    let app = TestApp::spawn().await;
    let (a, b) = paired().await;
    let key = api_on(&app, "echo", &app.echo_url()).await;
    policy(
        &app,
        "/apis/echo/policy",
        &format!(
            r#"<policies><inbound><base />
  <wait for="all">
    <send-request mode="new" response-variable-name="a" timeout="20"><set-url>http://{a}/</set-url></send-request>
    <send-request mode="new" response-variable-name="b" timeout="20"><set-url>http://{b}/</set-url></send-request>
  </wait>
  <return-response>
    <set-body>@(((IResponse)context.Variables["a"]).Body.As<string>() + "|" + ((IResponse)context.Variables["b"]).Body.As<string>())</set-body>
  </return-response>
</inbound></policies>"#
        ),
    )
    .await;
    let r = app.call("/echo/x", Some(&key)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"name":"a","how":"together"}|{"name":"b","how":"together"}"#
    );
}

#[tokio::test]
async fn wait_any_goes_on_with_the_first_response() {
    let app = TestApp::spawn().await;
    let fast = backend::spawn(|_req| async move { hyper::Response::new(full("fast")) }).await;
    let slow = backend::spawn(|_req| async move {
        tokio::time::sleep(Duration::from_secs(30)).await;
        hyper::Response::new(full("slow"))
    })
    .await;
    let key = api_on(&app, "echo", &app.echo_url()).await;
    policy(
        &app,
        "/apis/echo/policy",
        &format!(
            r#"<policies><inbound><base />
  <wait for="any">
    <send-request mode="new" response-variable-name="slow" timeout="60"><set-url>http://{slow}/</set-url></send-request>
    <send-request mode="new" response-variable-name="fast" timeout="60"><set-url>http://{fast}/</set-url></send-request>
  </wait>
  <return-response>
    <set-body>@(((IResponse)context.Variables["fast"]).Body.As<string>() + "|" + context.Variables.ContainsKey("slow"))</set-body>
  </return-response>
</inbound></policies>"#
        ),
    )
    .await;
    let r = app.call("/echo/x", Some(&key)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "fast|False");
}

/// A tiny forward proxy: counts requests, keeps their request lines and
/// `Proxy-Authorization`, relays plain HTTP and refuses `CONNECT`.
async fn tiny_proxy() -> (SocketAddr, Arc<Mutex<Vec<(String, String)>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let s = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                continue;
            };
            let s = s.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                while !head.ends_with(b"\r\n\r\n") {
                    let mut b = [0u8; 1];
                    if client.read_exact(&mut b).await.is_err() {
                        return;
                    }
                    head.push(b[0]);
                }
                let text = String::from_utf8_lossy(&head).into_owned();
                let line = text.lines().next().unwrap_or("").to_string();
                let auth = text
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .starts_with("proxy-authorization:")
                            .then(|| l[20..].trim().to_string())
                    })
                    .unwrap_or_default();
                s.lock().unwrap().push((line.clone(), auth));
                if line.starts_with("CONNECT ") {
                    let _ = client
                        .write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")
                        .await;
                    return;
                }
                // `GET http://host:port/path HTTP/1.1`: relay to host:port.
                let target = line.split(' ').nth(1).unwrap_or("");
                let authority = target
                    .trim_start_matches("http://")
                    .split('/')
                    .next()
                    .unwrap_or("")
                    .to_string();
                let Ok(mut upstream) = tokio::net::TcpStream::connect(authority).await else {
                    return;
                };
                if upstream.write_all(&head).await.is_err() {
                    return;
                }
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    (addr, seen)
}

#[tokio::test]
async fn proxy_routes_forward_request_and_send_request() {
    let app = TestApp::spawn().await;
    let (proxy, seen) = tiny_proxy().await;
    let key = api_on(&app, "echo", &app.echo_url()).await;
    let echo = app.echo_url();
    policy(
        &app,
        "/apis/echo/policy",
        &format!(
            r#"<policies><inbound><base />
  <proxy url="http://{proxy}" username="user" password="pass" />
  <send-request mode="new" response-variable-name="side" timeout="10">
    <set-url>{echo}/side</set-url>
    <proxy url="http://{proxy}" />
  </send-request>
  <set-header name="X-Side" exists-action="override"><value>@((string)((IResponse)context.Variables["side"]).Body.As<JObject>()["path"])</value></set-header>
</inbound><backend><base /></backend></policies>"#
        ),
    )
    .await;
    let r = app.call("/echo/main", Some(&key)).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["path"], "/main", "{v}");
    assert_eq!(v["headers"]["x-side"], "/side", "{v}");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(
        seen[0].0.starts_with(&format!("GET {echo}/side ")),
        "{seen:?}"
    );
    assert_eq!(seen[0].1, "", "the send-request proxy has no credentials");
    assert!(
        seen[1].0.starts_with(&format!("GET {echo}/main ")),
        "{seen:?}"
    );
    // base64("user:pass")
    assert_eq!(seen[1].1, "Basic dXNlcjpwYXNz");
}

#[tokio::test]
async fn https_backends_go_through_a_connect_tunnel() {
    let app = TestApp::spawn().await;
    let (proxy, seen) = tiny_proxy().await;
    let key = api_on(&app, "tls", "https://backend.invalid:8443").await;
    policy(
        &app,
        "/apis/tls/policy",
        &format!(
            r#"<policies><inbound><base /><proxy url="http://{proxy}" username="u" password="p" /></inbound>
<on-error><return-response><set-status code="599" reason="x" /><set-body>@(context.LastError.Reason)</set-body></return-response></on-error></policies>"#
        ),
    )
    .await;
    let r = app.call("/tls/a", Some(&key)).await;
    assert_eq!(r.status(), 599);
    assert_eq!(r.text().await.unwrap(), "BackendConnectionFailure");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![(
            "CONNECT backend.invalid:8443 HTTP/1.1".to_string(),
            "Basic dTpw".to_string()
        )]
    );
}

#[tokio::test]
async fn slow_and_oversized_answers_fail_the_call() {
    let app = TestApp::spawn().await;
    let slow = backend::spawn(|_req| async move {
        tokio::time::sleep(Duration::from_secs(10)).await;
        hyper::Response::new(full("late"))
    })
    .await;
    let huge =
        backend::spawn(
            |_req| async move { hyper::Response::new(backend::generated((16 << 20) + 1)) },
        )
        .await;
    let key = api_on(&app, "echo", &app.echo_url()).await;
    for (url, attrs, reason) in [
        (format!("http://{slow}/"), r#"timeout-ms="300""#, "Timeout"),
        (
            format!("http://{huge}/"),
            r#"timeout="30""#,
            "ResponseTooLarge",
        ),
    ] {
        policy(
            &app,
            "/apis/echo/policy",
            &format!(
                r#"<policies><inbound><base />
  <send-request mode="new" response-variable-name="r" {attrs}><set-url>{url}</set-url></send-request>
</inbound><on-error><return-response><set-status code="599" reason="x" /><set-body>@(context.LastError.Source + "|" + context.LastError.Reason)</set-body></return-response></on-error></policies>"#
            ),
        )
        .await;
        let r = app.call("/echo/x", Some(&key)).await;
        assert_eq!(r.status(), 599);
        assert_eq!(r.text().await.unwrap(), format!("send-request|{reason}"));
    }
}

#[tokio::test]
async fn children_the_gateway_does_not_run_are_refused_when_written() {
    let app = TestApp::spawn().await;
    api_on(&app, "echo", &app.echo_url()).await;
    let r = app
        .put_xml(
            "/apis/echo/policy",
            r#"<policies><inbound><send-request mode="new" response-variable-name="r"><set-url>http://x/</set-url><authentication-token resource-url="https://vault.azure.net" /></send-request></inbound></policies>"#,
        )
        .await;
    let v = common::assert_mgmt_error(r, 400, "ValidationError").await;
    assert!(
        v.to_string()
            .contains("<authentication-token> inside <send-request>"),
        "{v}"
    );
}

/// A backend recording each request's `traceparent` and `x-request-id`.
async fn trace_recorder() -> (SocketAddr, Arc<Mutex<Vec<(String, String)>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let addr = backend::spawn(move |req| {
        let s = s.clone();
        async move {
            let h = |n: &str| {
                req.headers()
                    .get(n)
                    .map(|v| v.to_str().unwrap().to_string())
                    .unwrap_or_default()
            };
            s.lock()
                .unwrap()
                .push((h("traceparent"), h("x-request-id")));
            hyper::Response::new(full("{}"))
        }
    })
    .await;
    (addr, seen)
}

/// `(trace id, span id)` of a `traceparent`.
fn trace_parts(tp: &str) -> (String, String) {
    let p: Vec<&str> = tp.split('-').collect();
    assert_eq!(p.len(), 4, "traceparent {tp:?}");
    assert_eq!(p[0], "00", "{tp}");
    assert_eq!((p[1].len(), p[2].len()), (32, 16), "{tp}");
    (p[1].to_string(), p[2].to_string())
}

#[tokio::test]
async fn send_request_carries_the_request_id_and_a_child_traceparent() {
    let app = TestApp::spawn().await;
    let key = api_on(&app, "svc", &app.echo_url()).await;
    let (target, seen) = trace_recorder().await;
    policy(
        &app,
        "/apis/svc/policy",
        &format!(
            r#"<policies>
  <inbound><base />
    <send-request mode="new" response-variable-name="a" timeout="10">
      <set-url>http://{target}/a</set-url>
    </send-request>
    <send-request mode="copy" response-variable-name="b" timeout="10">
      <set-url>http://{target}/b</set-url>
    </send-request>
    <send-one-way-request mode="new">
      <set-url>http://{target}/c</set-url>
    </send-one-way-request>
  </inbound>
  <backend><base /></backend>
  <outbound><base /></outbound>
</policies>"#
        ),
    )
    .await;
    let client_trace = "0af7651916cd43dd8448eb211c80319c";
    let client_span = "b7ad6b7169203331";
    let r = app
        .client
        .get(format!("{}/svc/x", app.gw))
        .header("Ocp-Apim-Subscription-Key", &key)
        .header("x-request-id", "req-callout-7")
        .header("traceparent", format!("00-{client_trace}-{client_span}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, hop_span) = trace_parts(&header(&r, "traceparent").unwrap());
    let echoed: Value = r.json().await.unwrap();
    let backend_tp = echoed["headers"]["traceparent"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| echoed["headers"]["traceparent"][0].as_str().unwrap().into());
    let (_, backend_span) = trace_parts(&backend_tp);
    for _ in 0..100 {
        if seen.lock().unwrap().len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let calls = seen.lock().unwrap().clone();
    assert_eq!(calls.len(), 3, "{calls:?}");
    let mut spans = vec![client_span.to_string(), hop_span.clone(), backend_span];
    for (tp, id) in &calls {
        assert_eq!(id, "req-callout-7", "{calls:?}");
        let (trace, span) = trace_parts(tp);
        assert_eq!(trace, client_trace, "{calls:?}");
        assert!(tp.ends_with("-01"), "sampled flag kept: {tp}");
        assert!(!spans.contains(&span), "a new span id per call: {calls:?}");
        spans.push(span);
    }

    // Without a client trace: the gateway's trace id, a generated request id.
    seen.lock().unwrap().clear();
    let r = app.call("/svc/y", Some(&key)).await;
    assert_eq!(r.status(), 200);
    let (trace, hop_span) = trace_parts(&header(&r, "traceparent").unwrap());
    let request_id = header(&r, "x-request-id").unwrap();
    for _ in 0..100 {
        if seen.lock().unwrap().len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let calls = seen.lock().unwrap().clone();
    assert_eq!(calls.len(), 3, "{calls:?}");
    for (tp, id) in &calls {
        assert_eq!(id, &request_id);
        let (t, s) = trace_parts(tp);
        assert_eq!(t, trace);
        assert_ne!(s, hop_span);
    }
}
