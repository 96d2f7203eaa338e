//! API inspector figures: microseconds per gateway request (real sockets,
//! sequential, keep-alive) through an API with a policy at every scope,
//! without a debug token, with one (traced, kept in the ring) and the size
//! of one trace; then microseconds per `GET /mgmt/traces/{id}`. Figures
//! only, no assertions on timing. Run with `cargo bench --bench inspector`.

use serde_json::{json, Value};
use std::time::Instant;

const ADMIN: &str = "bench-admin-key-0123456789abcdef";
const N: u32 = 2_000;

async fn put(c: &reqwest::Client, mgmt: &str, path: &str, body: Value) {
    let r = c
        .put(format!("{mgmt}{path}"))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .expect("PUT");
    assert!(r.status().is_success(), "PUT {path}: {}", r.status());
}

async fn put_xml(c: &reqwest::Client, mgmt: &str, path: &str, xml: &str) {
    let r = c
        .put(format!("{mgmt}{path}"))
        .bearer_auth(ADMIN)
        .header("content-type", "application/xml")
        .body(xml.to_string())
        .send()
        .await
        .expect("PUT");
    assert!(r.status().is_success(), "PUT {path}: {}", r.status());
}

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = turnpike::Settings::defaults();
        s.gateway.http = "127.0.0.1:0".parse().expect("addr");
        s.management.listen = "127.0.0.1:0".parse().expect("addr");
        s.portal.enabled = false;
        s.management.admin_key = Some(turnpike::error::Secret::new(ADMIN));
        s.node.data_dir = dir.path().to_path_buf();
        s.telemetry.access_log = false;
        let (_stop, never) = turnpike::shutdown::channel();
        let running = turnpike::run(s, turnpike::Options::default(), never)
            .await
            .expect("run");
        let (_echo_stop, echo_rx) = turnpike::shutdown::channel();
        let echo = turnpike::app::echo::spawn(echo_rx).await.expect("echo");
        let gw = format!("http://{}", running.addr("gateway-http").expect("gw"));
        let mgmt = format!("http://{}/mgmt", running.addr("management").expect("mgmt"));
        let c = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");

        put(&c, &mgmt, "/apis/echo", json!({"displayName": "echo", "path": "echo", "serviceUrl": format!("http://{echo}"), "subscriptionRequired": false})).await;
        put(&c, &mgmt, "/apis/echo/operations/all", json!({"method": "*", "urlTemplate": "/*"})).await;
        put_xml(&c, &mgmt, "/policy", r#"<policies><inbound><set-header name="X-Global" exists-action="override"><value>g</value></set-header></inbound><outbound /><on-error /></policies>"#).await;
        put_xml(&c, &mgmt, "/apis/echo/policy", r#"<policies><inbound><base /><set-variable name="v" value="@(context.Request.Method)" /><trace source="bench"><message>@((string)context.Variables["v"])</message></trace></inbound><outbound><base /><set-status code="201" reason="Created" /></outbound></policies>"#).await;
        put_xml(&c, &mgmt, "/apis/echo/operations/all/policy", r#"<policies><inbound><base /><rewrite-uri template="/r" /></inbound><outbound><base /><set-header name="X-Out" exists-action="override"><value>o</value></set-header></outbound></policies>"#).await;
        let token = c
            .post(format!("{mgmt}/apis/echo/debug-token"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .expect("token")
            .json::<Value>()
            .await
            .expect("json")["token"]
            .as_str()
            .expect("token")
            .to_string();

        let call = |traced: bool| {
            let mut r = c.get(format!("{gw}/echo/a"));
            if traced {
                r = r.header("Apim-Debug-Authorization", &token);
            }
            r.send()
        };
        for _ in 0..200 {
            let _ = call(false).await.expect("warm").bytes().await;
        }
        for (label, traced) in [("untraced request", false), ("traced request", true)] {
            let t = Instant::now();
            for _ in 0..N {
                let r = call(traced).await.expect("call");
                let _ = r.bytes().await;
            }
            let us = t.elapsed().as_micros() as f64 / f64::from(N);
            println!("{label:<44} {us:>8.1} µs/request");
        }
        let r = call(true).await.expect("call");
        let id = r
            .headers()
            .get("apim-trace-id")
            .and_then(|v| v.to_str().ok())
            .expect("trace id")
            .to_string();
        let t = Instant::now();
        let mut size = 0;
        for _ in 0..N {
            size = c
                .get(format!("{mgmt}/traces/{id}"))
                .bearer_auth(ADMIN)
                .send()
                .await
                .expect("get")
                .bytes()
                .await
                .expect("body")
                .len();
        }
        let us = t.elapsed().as_micros() as f64 / f64::from(N);
        println!("{:<44} {us:>8.1} µs/request", "GET /mgmt/traces/{id}");
        println!("{:<44} {size:>8} bytes", "one trace (7 policies + backend)");
        running.shutdown();
    });
}
