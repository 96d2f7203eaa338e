//! The gateway through real sockets: matching, subscription keys, proxying,
//! errors, streaming and configuration changes without restart.

mod common;

use common::backend::{self, full, generated};
use common::{assert_gateway_error, TestApp};
use serde_json::{json, Value};
use std::time::Duration;

const MISSING: &str = "Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API.";
const INVALID: &str = "Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription.";

#[tokio::test]
async fn not_found_without_api_or_operation() {
    let app = TestApp::spawn().await;
    let key = app.standard().await;
    assert_gateway_error(
        app.call("/nothing/here", Some(&key)).await,
        404,
        "Resource not found",
    )
    .await;
    assert_gateway_error(app.call("/", Some(&key)).await, 404, "Resource not found").await;
    assert_gateway_error(
        app.call("/echoes", Some(&key)).await,
        404,
        "Resource not found",
    )
    .await;
    // An API whose only operation is GET /items: other paths and methods are 404.
    app.put_ok(
        "/apis/shop",
        json!({"path": "shop", "serviceUrl": app.echo_url()}),
    )
    .await;
    app.put_ok(
        "/apis/shop/operations/list",
        json!({"method": "GET", "urlTemplate": "/items"}),
    )
    .await;
    app.put("/products/starter/apis/shop", json!({})).await;
    assert_eq!(app.call("/shop/items", Some(&key)).await.status(), 200);
    assert_gateway_error(
        app.call("/shop/other", Some(&key)).await,
        404,
        "Resource not found",
    )
    .await;
    let r = app
        .client
        .post(format!("{}/shop/items", app.gw))
        .header("Ocp-Apim-Subscription-Key", &key)
        .send()
        .await
        .unwrap();
    assert_gateway_error(r, 404, "Resource not found").await;
}

#[tokio::test]
async fn subscription_key_rules() {
    let app = TestApp::spawn().await;
    let key = app.standard().await;
    assert_gateway_error(app.call("/echo/a", None).await, 401, MISSING).await;
    assert_gateway_error(app.call("/echo/a", Some("not-a-key")).await, 401, INVALID).await;
    assert_gateway_error(app.call("/echo/a", Some("")).await, 401, INVALID).await;
    // Header.
    let r = app.call("/echo/a", Some(&key)).await;
    assert_eq!(r.status(), 200);
    // Query parameter, when the header is absent.
    let r = app
        .client
        .get(format!("{}/echo/a?subscription-key={key}", app.gw))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The header wins over the query parameter, even when the header is wrong.
    let r = app
        .client
        .get(format!("{}/echo/a?subscription-key={key}", app.gw))
        .header("Ocp-Apim-Subscription-Key", "wrong")
        .send()
        .await
        .unwrap();
    assert_gateway_error(r, 401, INVALID).await;
    // The secondary key works too.
    let secrets: Value = app
        .post("/subscriptions/s1/listSecrets")
        .await
        .json()
        .await
        .unwrap();
    let r = app.call("/echo/a", secrets["secondaryKey"].as_str()).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn key_scopes_product_api_and_all() {
    let app = TestApp::spawn().await;
    app.api("one", "one", &app.echo_url()).await;
    app.api("two", "two", &app.echo_url()).await;
    app.product("p1", &["one"], true).await;
    let product_key = app.subscription("sp", "/products/p1").await;
    let api_key = app.subscription("sa", "/apis/two").await;
    let all_key = app.subscription("sall", "/apis").await;
    assert_eq!(app.call("/one/x", Some(&product_key)).await.status(), 200);
    assert_gateway_error(app.call("/two/x", Some(&product_key)).await, 401, INVALID).await;
    assert_eq!(app.call("/two/x", Some(&api_key)).await.status(), 200);
    assert_gateway_error(app.call("/one/x", Some(&api_key)).await, 401, INVALID).await;
    assert_eq!(app.call("/one/x", Some(&all_key)).await.status(), 200);
    assert_eq!(app.call("/two/x", Some(&all_key)).await.status(), 200);
    // Adding the API to the product grants the product's keys at once.
    app.put("/products/p1/apis/two", json!({})).await;
    assert_eq!(app.call("/two/x", Some(&product_key)).await.status(), 200);
}

#[tokio::test]
async fn inactive_subscriptions_and_blocked_users_are_refused() {
    let app = TestApp::spawn().await;
    let key = app.standard().await;
    for state in ["suspended", "submitted", "cancelled", "expired", "rejected"] {
        app.put_ok(
            "/subscriptions/s1",
            json!({"scope": "/products/starter", "state": state}),
        )
        .await;
        assert_gateway_error(app.call("/echo/a", Some(&key)).await, 401, INVALID).await;
    }
    app.put_ok(
        "/subscriptions/s1",
        json!({"scope": "/products/starter", "state": "active"}),
    )
    .await;
    assert_eq!(app.call("/echo/a", Some(&key)).await.status(), 200);
    // Regenerating the key invalidates the old one.
    app.post("/subscriptions/s1/regeneratePrimaryKey").await;
    assert_gateway_error(app.call("/echo/a", Some(&key)).await, 401, INVALID).await;
    let new_key = app.key_of("s1").await;
    assert_eq!(app.call("/echo/a", Some(&new_key)).await.status(), 200);
    // A blocked owner's keys stop working.
    app.put_ok("/users/bob", json!({"email": "bob@example.com"}))
        .await;
    let bob_key = {
        app.put_ok(
            "/subscriptions/sb",
            json!({"scope": "/apis", "ownerId": "/users/bob", "state": "active"}),
        )
        .await;
        app.key_of("sb").await
    };
    assert_eq!(app.call("/echo/a", Some(&bob_key)).await.status(), 200);
    app.put_ok(
        "/users/bob",
        json!({"email": "bob@example.com", "state": "blocked"}),
    )
    .await;
    assert_gateway_error(app.call("/echo/a", Some(&bob_key)).await, 401, INVALID).await;
}

#[tokio::test]
async fn open_products_and_keyless_apis() {
    let app = TestApp::spawn().await;
    app.api("free", "free", &app.echo_url()).await;
    app.api("public", "public", &app.echo_url()).await;
    app.api("closed", "closed", &app.echo_url()).await;
    app.product("open", &["free"], false).await;
    app.put_ok(
        "/apis/public",
        json!({"path": "public", "serviceUrl": app.echo_url(), "subscriptionRequired": false}),
    )
    .await;
    assert_eq!(app.call("/free/x", None).await.status(), 200);
    assert_eq!(app.call("/public/x", None).await.status(), 200);
    assert_gateway_error(app.call("/closed/x", None).await, 401, MISSING).await;
    // A key that is given must still be valid.
    assert_gateway_error(app.call("/free/x", Some("bogus")).await, 401, INVALID).await;
    let all = app.subscription("s", "/apis").await;
    assert_eq!(app.call("/free/x", Some(&all)).await.status(), 200);
}

#[tokio::test]
async fn custom_key_names() {
    let app = TestApp::spawn().await;
    app.put_ok(
        "/apis/c",
        json!({"path": "c", "serviceUrl": app.echo_url(), "subscriptionKeyParameterNames": {"header": "X-Api-Key", "query": "apikey"}}),
    )
    .await;
    app.put_ok(
        "/apis/c/operations/all",
        json!({"method": "*", "urlTemplate": "/*"}),
    )
    .await;
    let key = app.subscription("s", "/apis/c").await;
    let r = app
        .client
        .get(format!("{}/c/x", app.gw))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app
        .client
        .get(format!("{}/c/x?apikey={key}", app.gw))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_gateway_error(app.call("/c/x", Some(&key)).await, 401, MISSING).await;
}

#[tokio::test]
async fn request_is_forwarded_faithfully() {
    let app = TestApp::spawn().await;
    app.put_ok(
        "/apis/svc",
        json!({"path": "svc/v1", "serviceUrl": format!("{}/base/", app.echo_url())}),
    )
    .await;
    app.put_ok(
        "/apis/svc/operations/all",
        json!({"method": "*", "urlTemplate": "/*"}),
    )
    .await;
    let key = app.subscription("s", "/apis/svc").await;
    let r = app
        .client
        .post(format!("{}/svc/v1/orders/42?expand=items&x=%20y", app.gw))
        .header("Ocp-Apim-Subscription-Key", &key)
        .header("x-custom", "kept")
        .header("x-forwarded-for", "198.51.100.1")
        .header("connection", "keep-alive, x-hop")
        .header("x-hop", "dropped")
        .header("keep-alive", "timeout=5")
        .header("proxy-authorization", "Basic abc")
        .header("te", "trailers")
        .body("hello body")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["method"], "POST");
    assert_eq!(v["path"], "/base/orders/42");
    assert_eq!(v["query"], "expand=items&x=%20y");
    assert_eq!(v["body"], "hello body");
    let h = &v["headers"];
    // As in APIM the key is forwarded unless a policy removes it.
    assert_eq!(h["ocp-apim-subscription-key"], key.as_str());
    assert_eq!(h["x-custom"], "kept");
    assert_eq!(h["x-forwarded-for"], "198.51.100.1, 127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-host"], app.gw.trim_start_matches("http://"));
    assert!(
        h["forwarded"]
            .as_str()
            .unwrap()
            .contains("for=127.0.0.1;proto=http"),
        "{h}"
    );
    assert_eq!(h["host"], app.echo.to_string(), "Host is the backend's");
    for hop in ["x-hop", "keep-alive", "proxy-authorization", "te"] {
        assert!(h.get(hop).is_none(), "{hop} was forwarded: {h}");
    }
}

#[tokio::test]
async fn an_api_at_the_root_path_forwards_the_whole_path() {
    let app = TestApp::spawn().await;
    let base = format!("{}/base", app.echo_url());
    app.put_ok("/apis/root", json!({"path": "", "serviceUrl": base}))
        .await;
    app.put_ok(
        "/apis/root/operations/all",
        json!({"method": "*", "urlTemplate": "/*"}),
    )
    .await;
    app.api("other", "other", &app.echo_url()).await;
    let key = app.subscription("s", "/apis").await;
    let v: Value = app
        .call("/hello/x?q=1", Some(&key))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["path"], "/base/hello/x");
    assert_eq!(v["query"], "q=1");
    // A longer API path still wins over the root API.
    let v: Value = app.call("/other/y", Some(&key)).await.json().await.unwrap();
    assert_eq!(v["path"], "/y");
    let v: Value = app.call("/", Some(&key)).await.json().await.unwrap();
    assert_eq!(v["path"], "/base/");
}
#[tokio::test]
async fn hop_by_hop_response_headers_are_stripped() {
    let app = TestApp::spawn().await;
    let addr = backend::spawn(|_req| async {
        let mut r = hyper::Response::new(full("ok"));
        r.headers_mut()
            .insert("connection", "x-internal".parse().unwrap());
        r.headers_mut()
            .insert("x-internal", "secret".parse().unwrap());
        r.headers_mut().insert("x-visible", "yes".parse().unwrap());
        r.headers_mut()
            .insert("proxy-authenticate", "Basic".parse().unwrap());
        r
    })
    .await;
    app.api("h", "h", &format!("http://{addr}")).await;
    let key = app.subscription("s", "/apis/h").await;
    let r = app.call("/h/x", Some(&key)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-visible"], "yes");
    assert!(r.headers().get("x-internal").is_none());
    assert!(r.headers().get("proxy-authenticate").is_none());
    assert_eq!(r.text().await.unwrap(), "ok");
}

#[tokio::test]
async fn backend_down_is_502_and_slow_is_504() {
    let app = TestApp::spawn_with(|s| s.gateway.backend_timeout = Duration::from_millis(300)).await;
    // A port with nothing listening.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    app.api("down", "down", &format!("http://{dead}")).await;
    let slow = backend::spawn(|_req| async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        hyper::Response::new(full("late"))
    })
    .await;
    app.api("slow", "slow", &format!("http://{slow}")).await;
    app.api("nourl", "nourl", &app.echo_url()).await;
    app.put_ok("/apis/nourl", json!({"path": "nourl"})).await;
    let key = app.subscription("s", "/apis").await;
    let r = app.call("/down/x", Some(&key)).await;
    assert_eq!(r.status(), 502);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["statusCode"], 502);
    let started = std::time::Instant::now();
    let r = app.call("/slow/x", Some(&key)).await;
    assert_eq!(r.status(), 504);
    assert!(started.elapsed() < Duration::from_secs(3));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["statusCode"], 504);
    let r = app.call("/nourl/x", Some(&key)).await;
    assert_eq!(r.status(), 500);
}

#[tokio::test]
async fn large_bodies_stream_both_ways() {
    const SIZE: usize = 50 * 1024 * 1024;
    let app = TestApp::spawn().await;
    let addr = backend::spawn(|req: hyper::Request<hyper::body::Incoming>| async move {
        if req.method() == hyper::Method::GET {
            hyper::Response::new(generated(SIZE))
        } else {
            backend::count_body(req).await
        }
    })
    .await;
    app.api("big", "big", &format!("http://{addr}")).await;
    let key = app.subscription("s", "/apis/big").await;
    // Upload 50 MB as a stream.
    let r = app
        .client
        .post(format!("{}/big/up", app.gw))
        .header("Ocp-Apim-Subscription-Key", &key)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            (0..SIZE / 65536)
                .map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'y'; 65536]))),
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["received"], SIZE);
    // Download 50 MB, counting as it arrives.
    let mut r = app.call("/big/down", Some(&key)).await;
    assert_eq!(r.status(), 200);
    let mut n = 0;
    while let Some(chunk) = r.chunk().await.unwrap() {
        n += chunk.len();
    }
    assert_eq!(n, SIZE);
}

#[tokio::test]
async fn changes_apply_without_restart_and_in_flight_requests_finish() {
    let app = TestApp::spawn().await;
    let slow = backend::spawn(|_req| async {
        tokio::time::sleep(Duration::from_millis(700)).await;
        hyper::Response::new(full("finished"))
    })
    .await;
    app.api("s", "s", &format!("http://{slow}")).await;
    let key = app.subscription("sub", "/apis").await;
    let url = format!("{}/s/x", app.gw);
    let client = app.client.clone();
    let k = key.clone();
    let in_flight = tokio::spawn(async move {
        client
            .get(url)
            .header("Ocp-Apim-Subscription-Key", k)
            .send()
            .await
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Remove the API while the request is at the backend.
    assert_eq!(app.delete("/apis/s").await.status(), 204);
    assert_gateway_error(
        app.call("/s/x", Some(&key)).await,
        404,
        "Resource not found",
    )
    .await;
    let r = in_flight.await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "finished");
    // A new API is served at once.
    app.api("n", "new", &app.echo_url()).await;
    assert_eq!(app.call("/new/x", Some(&key)).await.status(), 200);
}

#[tokio::test]
async fn many_swaps_under_traffic_break_nothing() {
    let app = TestApp::spawn().await;
    let key = app.standard().await;
    let gw = app.gw.clone();
    let client = app.client.clone();
    let traffic = tokio::spawn(async move {
        let mut ok = 0;
        for _ in 0..200 {
            let r = client
                .get(format!("{gw}/echo/loop"))
                .header("Ocp-Apim-Subscription-Key", &key)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            ok += 1;
        }
        ok
    });
    for i in 0..30 {
        app.put_ok(
            &format!("/apis/extra{i}"),
            json!({"path": format!("extra/{i}")}),
        )
        .await;
    }
    assert_eq!(traffic.await.unwrap(), 200);
}

#[tokio::test]
async fn operation_matching_and_precedence() {
    let app = TestApp::spawn().await;
    let addr = backend::spawn(|req: hyper::Request<hyper::body::Incoming>| async move {
        hyper::Response::new(full(req.uri().path().to_string()))
    })
    .await;
    app.put_ok(
        "/apis/u",
        json!({"path": "users", "serviceUrl": format!("http://{addr}")}),
    )
    .await;
    app.put_ok(
        "/apis/u/operations/me",
        json!({"method": "GET", "urlTemplate": "/me"}),
    )
    .await;
    app.put_ok(
        "/apis/u/operations/one",
        json!({"method": "GET", "urlTemplate": "/{id}"}),
    )
    .await;
    app.put_ok(
        "/apis/u/operations/orders",
        json!({"method": "GET", "urlTemplate": "/{id}/orders?status={s}"}),
    )
    .await;
    let key = app.subscription("s", "/apis/u").await;
    assert_eq!(app.call("/users/me", Some(&key)).await.status(), 200);
    assert_eq!(app.call("/USERS/42", Some(&key)).await.status(), 200);
    assert_eq!(
        app.call("/users/42/orders?status=open", Some(&key))
            .await
            .status(),
        200
    );
    assert_gateway_error(
        app.call("/users/42/orders", Some(&key)).await,
        404,
        "Resource not found",
    )
    .await;
    assert_gateway_error(
        app.call("/users/42/x/y", Some(&key)).await,
        404,
        "Resource not found",
    )
    .await;
}

#[tokio::test]
async fn protocols_are_enforced() {
    let app = TestApp::spawn().await;
    app.put_ok("/apis/tls", json!({"path": "tls", "serviceUrl": app.echo_url(), "protocols": ["https"], "subscriptionRequired": false})).await;
    app.put_ok(
        "/apis/tls/operations/all",
        json!({"method": "*", "urlTemplate": "/*"}),
    )
    .await;
    assert_gateway_error(app.call("/tls/x", None).await, 404, "Resource not found").await;
}

#[tokio::test]
async fn status_endpoint_follows_location() {
    let app = TestApp::spawn_with(|s| s.node.region = "West US".into()).await;
    let status = format!("{}/status-0123456789abcdef", app.gw);
    assert_eq!(app.client.get(&status).send().await.unwrap().status(), 200);
    app.put_ok("/locations/East%20US", json!({"disableGateway": true}))
        .await;
    assert_eq!(app.client.get(&status).send().await.unwrap().status(), 200);
    app.put_ok("/locations/West%20US", json!({"disableGateway": true}))
        .await;
    assert_eq!(app.client.get(&status).send().await.unwrap().status(), 503);
    app.put_ok("/locations/West%20US", json!({"disableGateway": false}))
        .await;
    assert_eq!(app.client.get(&status).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn http2_clients_are_served() {
    let app = TestApp::spawn().await;
    let key = app.standard().await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .no_proxy()
        .build()
        .unwrap();
    let r = h2
        .get(format!("{}/echo/h2", app.gw))
        .header("Ocp-Apim-Subscription-Key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["path"], "/h2");
}

#[tokio::test]
async fn shutdown_drains_in_flight_requests_then_stops_accepting() {
    let app = TestApp::spawn().await;
    let slow = backend::spawn(|_req| async {
        tokio::time::sleep(Duration::from_millis(600)).await;
        hyper::Response::new(full("drained"))
    })
    .await;
    app.api("s", "s", &format!("http://{slow}")).await;
    let key = app.subscription("sub", "/apis").await;
    let (client, url, gw) = (
        app.client.clone(),
        format!("{}/s/x", app.gw),
        app.gw.clone(),
    );
    let in_flight = tokio::spawn(async move {
        client
            .get(url)
            .header("Ocp-Apim-Subscription-Key", key)
            .send()
            .await
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let started = std::time::Instant::now();
    let _dir = app.stop().await;
    let r = in_flight.await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "drained");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "drain is bounded"
    );
    let fresh = reqwest::Client::builder().no_proxy().build().unwrap();
    assert!(
        fresh.get(format!("{gw}/s/x")).send().await.is_err(),
        "listener is closed"
    );
}
