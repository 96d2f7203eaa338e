//! Management REST API through real sockets: CRUD per resource, ETags,
//! validation, auth, referential checks, cascades, secrets, bad input.

mod common;

use common::{assert_mgmt_error, TestApp, ADMIN};
use serde_json::{json, Value};

#[tokio::test]
async fn auth_is_required_and_constant() {
    let app = TestApp::spawn().await;
    let url = format!("{}/apis", app.mgmt);
    let r = app.client.get(&url).send().await.unwrap();
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    assert_mgmt_error(r, 401, "Unauthorized").await;
    let r = app
        .client
        .get(&url)
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_mgmt_error(r, 401, "Unauthorized").await;
    let r = app
        .client
        .get(&url)
        .bearer_auth(&ADMIN[..ADMIN.len() - 1])
        .send()
        .await
        .unwrap();
    assert_mgmt_error(r, 401, "Unauthorized").await;
    let r = app
        .client
        .get(&url)
        .header("authorization", ADMIN)
        .send()
        .await
        .unwrap();
    assert_mgmt_error(r, 401, "Unauthorized").await;
    // Writes are refused too, and change nothing.
    let r = app
        .client
        .put(format!("{}/apis/x", app.mgmt))
        .json(&json!({"path": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(app.get_json("/revision").await["revision"], 0);
    let r = app
        .client
        .get(&url)
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The scheme is case-insensitive (RFC 9110).
    let r = app
        .client
        .get(&url)
        .header("authorization", format!("bearer {ADMIN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn api_crud_with_etags() {
    let app = TestApp::spawn().await;
    let r = app.get("/apis/petstore").await;
    assert_mgmt_error(r, 404, "ResourceNotFound").await;

    let body =
        json!({"displayName": "Pets", "path": "/pets/", "serviceUrl": "http://example.com/v1"});
    let r = app.put("/apis/petstore", body.clone()).await;
    assert_eq!(r.status(), 201);
    let etag1 = r.headers()["etag"].to_str().unwrap().to_string();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["id"], "petstore");
    assert_eq!(v["path"], "pets", "path is stored without slashes");
    assert_eq!(v["subscriptionRequired"], true);
    assert_eq!(
        v["subscriptionKeyParameterNames"]["header"],
        "Ocp-Apim-Subscription-Key"
    );
    assert_eq!(
        v["subscriptionKeyParameterNames"]["query"],
        "subscription-key"
    );

    let r = app.get("/apis/petstore").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["etag"].to_str().unwrap(), etag1);
    let got: Value = r.json().await.unwrap();
    assert_eq!(got, v);

    // Replace: 200; a stale If-Match is refused with 412 and changes nothing.
    let rev = app.get_json("/revision").await["revision"]
        .as_u64()
        .unwrap();
    let r = app
        .client
        .put(format!("{}/apis/petstore", app.mgmt))
        .bearer_auth(ADMIN)
        .header("if-match", "\"0000000000000000\"")
        .json(&json!({"displayName": "Pets 2", "path": "pets"}))
        .send()
        .await
        .unwrap();
    assert_mgmt_error(r, 412, "PreconditionFailed").await;
    assert_eq!(
        app.get_json("/revision").await["revision"]
            .as_u64()
            .unwrap(),
        rev
    );
    let r = app
        .client
        .put(format!("{}/apis/petstore", app.mgmt))
        .bearer_auth(ADMIN)
        .header("if-match", &etag1)
        .json(&json!({"displayName": "Pets 2", "path": "pets"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let etag2 = r.headers()["etag"].to_str().unwrap().to_string();
    assert_ne!(etag1, etag2);
    assert_eq!(
        app.get_json("/revision").await["revision"]
            .as_u64()
            .unwrap(),
        rev + 1
    );

    // A GET body can be PUT back as is (id and read-only fields accepted).
    let r = app.put("/apis/petstore", got).await;
    assert_eq!(r.status(), 200);

    let list = app.get_json("/apis").await;
    assert_eq!(list["count"], 1);
    assert_eq!(list["value"][0]["id"], "petstore");

    // DELETE with a stale If-Match: 412; then 204; then 404.
    let r = app
        .client
        .delete(format!("{}/apis/petstore", app.mgmt))
        .bearer_auth(ADMIN)
        .header("if-match", &etag2)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);
    let r = app.delete("/apis/petstore").await;
    assert_eq!(r.status(), 204);
    assert_mgmt_error(app.delete("/apis/petstore").await, 404, "ResourceNotFound").await;
    assert_eq!(app.get_json("/apis").await["count"], 0);
}

#[tokio::test]
async fn validation_errors_name_their_target() {
    let app = TestApp::spawn().await;
    let v = assert_mgmt_error(
        app.put("/apis/a", json!({"path": "a", "bogus": 1})).await,
        400,
        "ValidationError",
    )
    .await;
    assert_eq!(v["error"]["details"][0]["target"], "bogus");
    let v = assert_mgmt_error(
        app.put("/apis/a", json!({"path": 7})).await,
        400,
        "ValidationError",
    )
    .await;
    assert_eq!(v["error"]["details"][0]["target"], "path");
    let v = assert_mgmt_error(
        app.put(
            "/apis/a",
            json!({"path": "a", "subscriptionKeyParameterNames": {"header": "bad header"}}),
        )
        .await,
        400,
        "ValidationError",
    )
    .await;
    assert_eq!(
        v["error"]["details"][0]["target"],
        "subscriptionKeyParameterNames.header"
    );
    let v = assert_mgmt_error(
        app.put("/apis/a", json!({"path": "a", "serviceUrl": "ftp://x"}))
            .await,
        400,
        "ValidationError",
    )
    .await;
    assert_eq!(v["error"]["details"][0]["target"], "serviceUrl");
    let v = assert_mgmt_error(
        app.put("/apis/a", json!({"displayName": "x"})).await,
        400,
        "ValidationError",
    )
    .await;
    assert!(
        v["error"]["message"].as_str().unwrap().contains("path"),
        "{v}"
    );
    let v = assert_mgmt_error(
        app.put("/apis/a", json!({"path": "a", "id": "b"})).await,
        400,
        "ValidationError",
    )
    .await;
    assert_eq!(v["error"]["details"][0]["target"], "id");
    assert_mgmt_error(
        app.put("/apis/a", json!([1, 2])).await,
        400,
        "ValidationError",
    )
    .await;
    // Bad ids.
    let v = assert_mgmt_error(
        app.put("/apis/-bad", json!({"path": "a"})).await,
        400,
        "ValidationError",
    )
    .await;
    assert_eq!(v["error"]["details"][0]["target"], "id");
    let long = "a".repeat(81);
    assert_mgmt_error(
        app.put(&format!("/apis/{long}"), json!({"path": "a"}))
            .await,
        400,
        "ValidationError",
    )
    .await;
    // Nothing was written.
    assert_eq!(app.get_json("/revision").await["revision"], 0);
    assert_eq!(app.get_json("/apis").await["count"], 0);
}

#[tokio::test]
async fn malformed_and_oversized_bodies() {
    let app = TestApp::spawn_with(|s| s.management.max_body_bytes = 64 * 1024).await;
    let put_raw = |body: Vec<u8>| {
        app.client
            .put(format!("{}/apis/a", app.mgmt))
            .bearer_auth(ADMIN)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let v = assert_mgmt_error(
        put_raw(b"{\"path\": ".to_vec()).await.unwrap(),
        400,
        "MalformedBody",
    )
    .await;
    assert!(
        v["error"]["message"].as_str().unwrap().contains("JSON"),
        "{v}"
    );
    assert_mgmt_error(
        put_raw(b"\xff\xfe".to_vec()).await.unwrap(),
        400,
        "MalformedBody",
    )
    .await;
    assert_mgmt_error(put_raw(Vec::new()).await.unwrap(), 400, "MalformedBody").await;
    let mut huge = b"{\"path\":\"a\",\"description\":\"".to_vec();
    huge.extend(std::iter::repeat_n(b'x', 200 * 1024));
    huge.extend(b"\"}");
    assert_mgmt_error(put_raw(huge).await.unwrap(), 413, "PayloadTooLarge").await;
    // Chunked (no Content-Length) oversized body is cut off too.
    let stream = futures_util::stream::iter(
        (0..100).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b' '; 4096]))),
    );
    let r = app
        .client
        .put(format!("{}/apis/a", app.mgmt))
        .bearer_auth(ADMIN)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_mgmt_error(r, 413, "PayloadTooLarge").await;
    assert_eq!(app.get_json("/revision").await["revision"], 0);
}

#[tokio::test]
async fn unknown_routes_and_methods() {
    let app = TestApp::spawn().await;
    assert_mgmt_error(app.get("/nope").await, 404, "ResourceNotFound").await;
    // Without the key even unknown routes answer 401 (nothing is revealed).
    let r = app
        .client
        .get(format!("{}/nope", app.mgmt))
        .send()
        .await
        .unwrap();
    assert_mgmt_error(r, 401, "Unauthorized").await;
    let r = app.post("/apis/x").await;
    assert_mgmt_error(r, 405, "MethodNotAllowed").await;
    let r = app
        .client
        .get(format!("{}/../other", app.mgmt))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn operations_crud_and_template_validation() {
    let app = TestApp::spawn().await;
    let r = app
        .put(
            "/apis/nope/operations/o",
            json!({"method": "GET", "urlTemplate": "/"}),
        )
        .await;
    assert_mgmt_error(r, 404, "ResourceNotFound").await;
    app.put_ok("/apis/a", json!({"path": "a"})).await;
    let r = app
        .put(
            "/apis/a/operations/get-user",
            json!({"method": "get", "urlTemplate": "/users/{id}"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["method"], "GET");
    assert_eq!(v["apiId"], "a");
    assert_eq!(v["displayName"], "get-user");
    let v = assert_mgmt_error(
        app.put(
            "/apis/a/operations/bad",
            json!({"method": "GET", "urlTemplate": "/users/{id"}),
        )
        .await,
        400,
        "ValidationError",
    )
    .await;
    assert_eq!(
        v["error"]["details"][0]["target"],
        "apis/a/operations/bad.urlTemplate"
    );
    assert_mgmt_error(
        app.put(
            "/apis/a/operations/bad",
            json!({"method": "GE T", "urlTemplate": "/"}),
        )
        .await,
        400,
        "ValidationError",
    )
    .await;
    // Same method + equivalent template as another operation: refused.
    assert_mgmt_error(
        app.put(
            "/apis/a/operations/dup",
            json!({"method": "GET", "urlTemplate": "/users/{other}"}),
        )
        .await,
        400,
        "ValidationError",
    )
    .await;
    assert_eq!(app.get_json("/apis/a/operations").await["count"], 1);
    assert_eq!(
        app.get_json("/apis/a/operations/get-user").await["urlTemplate"],
        "/users/{id}"
    );
    assert_eq!(
        app.delete("/apis/a/operations/get-user").await.status(),
        204
    );
    assert_mgmt_error(
        app.get("/apis/a/operations/get-user").await,
        404,
        "ResourceNotFound",
    )
    .await;
}

#[tokio::test]
async fn duplicate_api_paths_are_refused() {
    let app = TestApp::spawn().await;
    app.put_ok("/apis/a", json!({"path": "shop"})).await;
    let v = assert_mgmt_error(
        app.put("/apis/b", json!({"path": "Shop/"})).await,
        409,
        "Conflict",
    )
    .await;
    assert_eq!(v["error"]["details"][0]["target"], "path");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("\"a\""),
        "{v}"
    );
    assert_mgmt_error(app.get("/apis/b").await, 404, "ResourceNotFound").await;
}

#[tokio::test]
async fn products_links_and_cascades() {
    let app = TestApp::spawn().await;
    app.put_ok("/apis/a", json!({"path": "a"})).await;
    let p = app
        .put_ok("/products/gold", json!({"displayName": "Gold"}))
        .await;
    assert_eq!(p["state"], "notPublished");
    assert_eq!(p["subscriptionRequired"], true);
    // New products are visible to administrators.
    let groups = app.get_json("/products/gold/groups").await;
    assert_eq!(groups["value"][0]["id"], "administrators");
    // Links: unknown API 404, then 201, then 200 (idempotent).
    assert_mgmt_error(
        app.put("/products/gold/apis/zzz", json!({})).await,
        404,
        "ResourceNotFound",
    )
    .await;
    assert_mgmt_error(
        app.put("/products/none/apis/a", json!({})).await,
        404,
        "ResourceNotFound",
    )
    .await;
    assert_eq!(
        app.put("/products/gold/apis/a", json!({})).await.status(),
        201
    );
    assert_eq!(
        app.put("/products/gold/apis/a", json!({})).await.status(),
        200
    );
    assert_eq!(
        app.get_json("/products/gold/apis").await["value"][0]["id"],
        "a"
    );
    assert_eq!(app.get_json("/products/gold/apis/a").await["id"], "a");
    assert_eq!(
        app.get_json("/apis/a/products").await["value"][0]["id"],
        "gold"
    );
    assert_eq!(
        app.put("/products/gold/groups/developers", json!({}))
            .await
            .status(),
        201
    );
    assert_mgmt_error(
        app.put("/products/gold/groups/nope", json!({})).await,
        404,
        "ResourceNotFound",
    )
    .await;

    // A product with subscriptions is not deleted without deleteSubscriptions=true.
    app.subscription("s1", "/products/gold").await;
    assert_mgmt_error(app.delete("/products/gold").await, 409, "Conflict").await;
    assert_eq!(
        app.get_json("/products/gold/subscriptions").await["count"],
        1
    );
    assert_eq!(
        app.delete("/products/gold?deleteSubscriptions=true")
            .await
            .status(),
        204
    );
    assert_mgmt_error(app.get("/subscriptions/s1").await, 404, "ResourceNotFound").await;
    assert_eq!(app.get_json("/apis/a/products").await["count"], 0);

    // Deleting an API removes its operations, policies, links and API-scoped subscriptions.
    app.product("silver", &["a"], true).await;
    app.put_ok(
        "/apis/a/operations/o",
        json!({"method": "GET", "urlTemplate": "/"}),
    )
    .await;
    assert_eq!(
        app.put_xml(
            "/apis/a/policy",
            "<policies><inbound><base/></inbound></policies>"
        )
        .await
        .status(),
        201
    );
    app.subscription("s2", "/apis/a").await;
    assert_eq!(app.delete("/apis/a").await.status(), 204);
    assert_eq!(app.get_json("/products/silver/apis").await["count"], 0);
    assert_mgmt_error(app.get("/subscriptions/s2").await, 404, "ResourceNotFound").await;
    // Re-creating the API does not resurrect its old operations or policy.
    app.put_ok("/apis/a", json!({"path": "a"})).await;
    assert_eq!(app.get_json("/apis/a/operations").await["count"], 0);
    assert_mgmt_error(app.get("/apis/a/policy").await, 404, "ResourceNotFound").await;
}

#[tokio::test]
async fn one_open_product_per_api() {
    let app = TestApp::spawn().await;
    app.put_ok("/apis/a", json!({"path": "a"})).await;
    app.product("open1", &["a"], false).await;
    app.put_ok("/products/open2", json!({"subscriptionRequired": false}))
        .await;
    assert_mgmt_error(
        app.put("/products/open2/apis/a", json!({})).await,
        409,
        "Conflict",
    )
    .await;
    app.product("closed", &["a"], true).await;
    assert_mgmt_error(
        app.put("/products/closed", json!({"subscriptionRequired": false}))
            .await,
        409,
        "Conflict",
    )
    .await;
    assert_mgmt_error(
        app.put(
            "/products/x",
            json!({"subscriptionRequired": false, "approvalRequired": true}),
        )
        .await,
        400,
        "ValidationError",
    )
    .await;
}

#[tokio::test]
async fn subscriptions_keys_and_referential_checks() {
    let app = TestApp::spawn().await;
    app.put_ok("/apis/a", json!({"path": "a"})).await;
    let v = assert_mgmt_error(
        app.put("/subscriptions/s", json!({"scope": "/apis/zzz"}))
            .await,
        400,
        "ValidationError",
    )
    .await;
    assert_eq!(v["error"]["details"][0]["target"], "scope");
    assert_mgmt_error(
        app.put("/subscriptions/s", json!({"scope": "/products/zzz"}))
            .await,
        400,
        "ValidationError",
    )
    .await;
    assert_mgmt_error(
        app.put("/subscriptions/s", json!({"scope": "/things/1"}))
            .await,
        400,
        "ValidationError",
    )
    .await;
    let v = assert_mgmt_error(
        app.put(
            "/subscriptions/s",
            json!({"scope": "/apis", "ownerId": "/users/ghost"}),
        )
        .await,
        400,
        "ValidationError",
    )
    .await;
    assert_eq!(v["error"]["details"][0]["target"], "ownerId");

    // Created without a state: "submitted", as in APIM. Keys are generated and hidden.
    let r = app
        .put(
            "/subscriptions/s",
            json!({"scope": "/apis/a", "displayName": "S"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let text = r.text().await.unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["state"], "submitted");
    assert!(
        v.get("primaryKey").is_none() && v.get("secondaryKey").is_none(),
        "{v}"
    );
    assert!(v["createdDate"].as_str().unwrap().ends_with('Z'));
    let secrets: Value = app
        .post("/subscriptions/s/listSecrets")
        .await
        .json()
        .await
        .unwrap();
    let (p1, s1) = (
        secrets["primaryKey"].as_str().unwrap().to_string(),
        secrets["secondaryKey"].as_str().unwrap().to_string(),
    );
    assert!(
        p1.len() >= 32 && p1.chars().all(|c| c.is_ascii_hexdigit()),
        "{p1}"
    );
    assert_ne!(p1, s1);
    // No key anywhere in GET bodies.
    for path in ["/subscriptions/s", "/subscriptions", "/apis/a"] {
        let body = app.get(path).await.text().await.unwrap();
        assert!(
            !body.contains(&p1) && !body.contains(&s1),
            "{path} leaks a key"
        );
    }
    // A replace keeps the keys and the creation date.
    app.put_ok(
        "/subscriptions/s",
        json!({"scope": "/apis/a", "state": "active"}),
    )
    .await;
    let again: Value = app
        .post("/subscriptions/s/listSecrets")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again, secrets);
    assert_eq!(
        app.get_json("/subscriptions/s").await["createdDate"],
        v["createdDate"]
    );

    // Regenerate: 204 and only that key changes.
    assert_eq!(
        app.post("/subscriptions/s/regeneratePrimaryKey")
            .await
            .status(),
        204
    );
    let after: Value = app
        .post("/subscriptions/s/listSecrets")
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(after["primaryKey"], secrets["primaryKey"]);
    assert_eq!(after["secondaryKey"], secrets["secondaryKey"]);
    assert_eq!(
        app.post("/subscriptions/s/regenerateSecondaryKey")
            .await
            .status(),
        204
    );
    let after2: Value = app
        .post("/subscriptions/s/listSecrets")
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(after2["secondaryKey"], secrets["secondaryKey"]);
    assert_mgmt_error(
        app.post("/subscriptions/ghost/listSecrets").await,
        404,
        "ResourceNotFound",
    )
    .await;

    // Supplied keys: accepted; too short refused; duplicates conflict.
    app.put_ok(
        "/subscriptions/t",
        json!({"scope": "/apis", "primaryKey": "my-own-primary-key-1", "secondaryKey": "my-own-secondary-key-1"}),
    )
    .await;
    assert_eq!(app.key_of("t").await, "my-own-primary-key-1");
    let v = assert_mgmt_error(
        app.put(
            "/subscriptions/u",
            json!({"scope": "/apis", "primaryKey": "short"}),
        )
        .await,
        400,
        "ValidationError",
    )
    .await;
    assert_eq!(v["error"]["details"][0]["target"], "primaryKey");
    assert_mgmt_error(
        app.put(
            "/subscriptions/u",
            json!({"scope": "/apis", "primaryKey": "my-own-secondary-key-1"}),
        )
        .await,
        409,
        "Conflict",
    )
    .await;
    assert_mgmt_error(app.get("/subscriptions/u").await, 404, "ResourceNotFound").await;
    assert_eq!(app.delete("/subscriptions/t").await.status(), 204);
}

#[tokio::test]
async fn subscriptions_limit_per_user() {
    let app = TestApp::spawn().await;
    app.put_ok("/products/p", json!({"subscriptionsLimit": 1}))
        .await;
    app.put_ok("/users/u1", json!({"email": "u1@example.com"}))
        .await;
    app.put_ok(
        "/subscriptions/a",
        json!({"scope": "/products/p", "ownerId": "/users/u1"}),
    )
    .await;
    assert_mgmt_error(
        app.put(
            "/subscriptions/b",
            json!({"scope": "/products/p", "ownerId": "/users/u1"}),
        )
        .await,
        409,
        "Conflict",
    )
    .await;
    // Replacing the existing one is fine.
    app.put_ok(
        "/subscriptions/a",
        json!({"scope": "/products/p", "ownerId": "/users/u1", "state": "active"}),
    )
    .await;
    assert_eq!(app.get_json("/users/u1/subscriptions").await["count"], 1);
    // A cancelled subscription gives its place back (the portal counts the
    // same way); it cannot come back while the place is taken.
    app.put_ok(
        "/subscriptions/a",
        json!({"scope": "/products/p", "ownerId": "/users/u1", "state": "cancelled"}),
    )
    .await;
    app.put_ok(
        "/subscriptions/b",
        json!({"scope": "/products/p", "ownerId": "/users/u1"}),
    )
    .await;
    assert_mgmt_error(
        app.put(
            "/subscriptions/a",
            json!({"scope": "/products/p", "ownerId": "/users/u1", "state": "active"}),
        )
        .await,
        409,
        "Conflict",
    )
    .await;
    assert_eq!(app.get_json("/users/u1/subscriptions").await["count"], 2);
}

#[tokio::test]
async fn users_groups_and_membership() {
    let app = TestApp::spawn().await;
    let groups = app.get_json("/groups").await;
    let ids: Vec<&str> = groups["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["administrators", "developers", "guests"]);
    assert_eq!(groups["value"][0]["builtIn"], true);
    assert_eq!(groups["value"][0]["type"], "system");
    assert_mgmt_error(app.delete("/groups/developers").await, 409, "Conflict").await;
    assert_mgmt_error(
        app.put("/groups/guests", json!({"displayName": "G"})).await,
        409,
        "Conflict",
    )
    .await;

    let v = assert_mgmt_error(
        app.put("/users/u1", json!({"email": "not-an-email"})).await,
        400,
        "ValidationError",
    )
    .await;
    assert_eq!(v["error"]["details"][0]["target"], "email");
    let u = app
        .put_ok(
            "/users/u1",
            json!({"email": "ann@example.com", "firstName": "Ann", "lastName": "Lee"}),
        )
        .await;
    assert_eq!(u["state"], "active");
    assert!(u["registrationDate"].as_str().is_some());
    assert_mgmt_error(
        app.put("/users/u2", json!({"email": "ANN@example.com"}))
            .await,
        409,
        "Conflict",
    )
    .await;
    // Every user is a developer.
    assert_eq!(
        app.get_json("/groups/developers/users").await["value"][0]["id"],
        "u1"
    );
    assert_eq!(
        app.get_json("/users/u1/groups").await["value"][0]["id"],
        "developers"
    );

    app.put_ok(
        "/groups/partners",
        json!({"displayName": "Partners", "description": "External partners"}),
    )
    .await;
    assert_mgmt_error(
        app.put("/groups/x", json!({"type": "system"})).await,
        400,
        "ValidationError",
    )
    .await;
    assert_eq!(
        app.put("/groups/partners/users/u1", json!({}))
            .await
            .status(),
        201
    );
    assert_eq!(
        app.put("/groups/partners/users/u1", json!({}))
            .await
            .status(),
        200
    );
    assert_mgmt_error(
        app.put("/groups/partners/users/ghost", json!({})).await,
        404,
        "ResourceNotFound",
    )
    .await;
    assert_mgmt_error(
        app.put("/groups/guests/users/u1", json!({})).await,
        400,
        "ValidationError",
    )
    .await;
    assert_eq!(
        app.get_json("/groups/partners/users/u1").await["email"],
        "ann@example.com"
    );
    assert_eq!(app.delete("/groups/partners/users/u1").await.status(), 204);
    assert_mgmt_error(
        app.delete("/groups/partners/users/u1").await,
        404,
        "ResourceNotFound",
    )
    .await;
    assert_eq!(
        app.put("/groups/partners/users/u1", json!({}))
            .await
            .status(),
        201
    );

    // Deleting a group removes its memberships and product links.
    app.put_ok("/products/p", json!({})).await;
    app.put("/products/p/groups/partners", json!({})).await;
    assert_eq!(app.delete("/groups/partners").await.status(), 204);
    assert_eq!(app.get_json("/users/u1/groups").await["count"], 1);
    let pg = app.get_json("/products/p/groups").await;
    assert!(pg["value"]
        .as_array()
        .unwrap()
        .iter()
        .all(|g| g["id"] != "partners"));

    // A user with subscriptions needs deleteSubscriptions=true.
    app.put_ok(
        "/subscriptions/s",
        json!({"scope": "/apis", "ownerId": "/users/u1"}),
    )
    .await;
    assert_mgmt_error(app.delete("/users/u1").await, 409, "Conflict").await;
    assert_eq!(
        app.delete("/users/u1?deleteSubscriptions=true")
            .await
            .status(),
        204
    );
    assert_mgmt_error(app.get("/subscriptions/s").await, 404, "ResourceNotFound").await;
    assert_eq!(app.get_json("/groups/developers/users").await["count"], 0);
}

#[tokio::test]
async fn named_values_hide_secrets() {
    let app = TestApp::spawn().await;
    let v = app
        .put_ok(
            "/named-values/plain",
            json!({"displayName": "plain", "value": "visible"}),
        )
        .await;
    assert_eq!(v["value"], "visible");
    let v = app
        .put_ok(
            "/named-values/pw",
            json!({"displayName": "backend-password", "value": "s3cr3t-value!", "secret": true}),
        )
        .await;
    assert!(v.get("value").is_none(), "{v}");
    for path in ["/named-values/pw", "/named-values"] {
        let body = app.get(path).await.text().await.unwrap();
        assert!(!body.contains("s3cr3t-value!"), "{path} leaks the secret");
    }
    let listed: Value = app
        .post("/named-values/pw/listValue")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["value"], "s3cr3t-value!");
    assert_mgmt_error(
        app.put(
            "/named-values/other",
            json!({"displayName": "Backend-Password", "value": "x"}),
        )
        .await,
        409,
        "Conflict",
    )
    .await;
    assert_mgmt_error(
        app.put(
            "/named-values/bad",
            json!({"displayName": "has space", "value": "x"}),
        )
        .await,
        400,
        "ValidationError",
    )
    .await;
    assert_mgmt_error(
        app.put("/named-values/novalue", json!({"displayName": "nv"}))
            .await,
        400,
        "ValidationError",
    )
    .await;
    assert_eq!(app.delete("/named-values/pw").await.status(), 204);
}

#[tokio::test]
async fn backends_and_locations() {
    let app = TestApp::spawn().await;
    let v = app
        .put_ok(
            "/backends/orders",
            json!({
                "url": "https://orders.internal/api",
                "protocol": "http",
                "credentials": {"header": {"x-team": ["a"]}, "authorization": {"scheme": "Basic", "parameter": "dXNlcjpwYXNz"}},
                "circuitBreaker": {"rules": [{"name": "r", "failureCondition": {"count": 3, "interval": "PT1M", "statusCodeRanges": [{"min": 500, "max": 599}]}, "tripDuration": "PT1M"}]}
            }),
        )
        .await;
    assert_eq!(v["credentials"]["authorization"]["scheme"], "Basic");
    assert!(
        v["credentials"]["authorization"].get("parameter").is_none(),
        "{v}"
    );
    let body = app.get("/backends").await.text().await.unwrap();
    assert!(!body.contains("dXNlcjpwYXNz"));
    assert_mgmt_error(
        app.put("/backends/b", json!({"url": "not a url"})).await,
        400,
        "ValidationError",
    )
    .await;
    let v = assert_mgmt_error(
        app.put("/backends/b", json!({"url": "http://x", "circuitBreaker": {"rules": [{"name": "r", "failureCondition": {"statusCodeRanges": [{"min": 600, "max": 1}]}}]}})).await,
        400,
        "ValidationError",
    )
    .await;
    assert!(v["error"]["details"][0]["target"]
        .as_str()
        .unwrap()
        .starts_with("circuitBreaker.rules[0]"));
    let l = app
        .put_ok("/locations/West%20US", json!({"disableGateway": true}))
        .await;
    assert_eq!(l["id"], "West US");
    assert_eq!(app.get_json("/locations").await["count"], 1);
    assert_mgmt_error(
        app.put("/locations/a%2Fb", json!({})).await,
        400,
        "ValidationError",
    )
    .await;
}

#[tokio::test]
async fn policies_at_every_scope() {
    let app = TestApp::spawn().await;
    app.put_ok("/apis/a", json!({"path": "a"})).await;
    app.put_ok(
        "/apis/a/operations/o",
        json!({"method": "GET", "urlTemplate": "/"}),
    )
    .await;
    app.put_ok("/products/p", json!({})).await;
    let doc = "<policies>\n  <inbound><base /></inbound>\n  <backend><base /></backend>\n  <outbound><base /></outbound>\n  <on-error><base /></on-error>\n</policies>";
    for path in [
        "/policy",
        "/products/p/policy",
        "/apis/a/policy",
        "/apis/a/operations/o/policy",
    ] {
        let r = app.put_xml(path, doc).await;
        assert_eq!(r.status(), 201, "{path}");
        let r = app.get(path).await;
        assert_eq!(r.status(), 200);
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/xml"));
        assert!(r.headers().contains_key("etag"));
        assert_eq!(r.text().await.unwrap(), doc);
        assert_eq!(app.put_xml(path, doc).await.status(), 200, "{path}");
    }
    // APIM's rawxml: expressions with unescaped `&&`, `<` and quotes are accepted as written.
    let raw = r#"<policies><inbound><choose><when condition="@(context.Request.Headers.GetValueOrDefault("x","") != "" && 1 < 2)"><set-variable name="v" value="@{ return "<b>"; }" /></when></choose></inbound></policies>"#;
    assert_eq!(app.put_xml("/apis/a/policy", raw).await.status(), 200);
    assert_eq!(app.get("/apis/a/policy").await.text().await.unwrap(), raw);
    // APIM's JSON form.
    let r = app
        .put(
            "/apis/a/policy",
            json!({"format": "rawxml", "value": "<policies><inbound/></policies>"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        app.get("/apis/a/policy").await.text().await.unwrap(),
        "<policies><inbound/></policies>"
    );
    // Bad XML: 400 with line:col targets; the stored document is unchanged.
    let rev = app.get_json("/revision").await["revision"].clone();
    let v = assert_mgmt_error(
        app.put_xml(
            "/apis/a/policy",
            "<policies>\n  <inbound>\n  </outbound>\n</policies>",
        )
        .await,
        400,
        "ValidationError",
    )
    .await;
    assert!(
        v["error"]["details"][0]["target"]
            .as_str()
            .unwrap()
            .starts_with("3:"),
        "{v}"
    );
    let v = assert_mgmt_error(
        app.put_xml("/apis/a/policy", "<policies><inbond/></policies>")
            .await,
        400,
        "ValidationError",
    )
    .await;
    assert_eq!(v["error"]["details"][0]["target"], "1:11", "{v}");
    assert_eq!(app.get_json("/revision").await["revision"], rev);
    assert_eq!(
        app.get("/apis/a/policy").await.text().await.unwrap(),
        "<policies><inbound/></policies>"
    );
    // Policies are checked against the catalogue of APIM policies: every
    // problem with its line:col, a hint for typos, nothing stored.
    let v = assert_mgmt_error(
        app.put_xml(
            "/apis/a/policy",
            "<policies>\n<inbound>\n<set-hedaer name=\"x\" />\n<rate-limit calls=\"@(5)\" renewal-period=\"60\" />\n</inbound>\n</policies>",
        )
        .await,
        400,
        "ValidationError",
    )
    .await;
    let details = v["error"]["details"].as_array().unwrap();
    assert_eq!(details.len(), 2, "{v}");
    assert_eq!(details[0]["target"], "3:1");
    assert_eq!(
        details[0]["message"],
        "unknown policy <set-hedaer> (did you mean 'set-header'?)"
    );
    assert_eq!(details[1]["target"], "4:20");
    assert!(details[1]["message"]
        .as_str()
        .unwrap()
        .contains("does not take a policy expression"));
    assert_eq!(
        app.get("/apis/a/policy").await.text().await.unwrap(),
        "<policies><inbound/></policies>"
    );
    // Owner must exist.
    assert_mgmt_error(
        app.put_xml("/apis/zzz/policy", doc).await,
        404,
        "ResourceNotFound",
    )
    .await;
    assert_mgmt_error(
        app.put_xml("/apis/a/operations/zzz/policy", doc).await,
        404,
        "ResourceNotFound",
    )
    .await;
    // Unsupported media type.
    let r = app
        .client
        .put(format!("{}/policy", app.mgmt))
        .bearer_auth(ADMIN)
        .header("content-type", "application/octet-stream")
        .body(doc)
        .send()
        .await
        .unwrap();
    assert_mgmt_error(r, 415, "UnsupportedMediaType").await;
    assert_eq!(app.delete("/policy").await.status(), 204);
    assert_mgmt_error(app.get("/policy").await, 404, "ResourceNotFound").await;
    // Deleting the operation removes its policy.
    assert_eq!(app.delete("/apis/a/operations/o").await.status(), 204);
    app.put_ok(
        "/apis/a/operations/o",
        json!({"method": "GET", "urlTemplate": "/"}),
    )
    .await;
    assert_mgmt_error(
        app.get("/apis/a/operations/o/policy").await,
        404,
        "ResourceNotFound",
    )
    .await;
}

#[tokio::test]
async fn lists_page_with_top_and_skip() {
    let app = TestApp::spawn().await;
    for i in 0..5 {
        app.put_ok(&format!("/apis/a{i}"), json!({"path": format!("p{i}")}))
            .await;
    }
    let v = app.get_json("/apis?$top=2&$skip=1").await;
    assert_eq!(v["count"], 5);
    let ids: Vec<&str> = v["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a1", "a2"]);
    assert_mgmt_error(app.get("/apis?$top=-1").await, 400, "ValidationError").await;
}

#[tokio::test]
async fn writes_survive_restart_and_revision_grows() {
    let app = TestApp::spawn().await;
    app.standard().await;
    let rev = app.get_json("/revision").await["revision"]
        .as_u64()
        .unwrap();
    assert!(rev >= 5, "{rev}");
    let key = app.key_of("s1").await;
    let dir = app.stop().await;
    let settings = common::test_settings(dir.path());
    let app = TestApp::start(dir, settings).await;
    assert_eq!(
        app.get_json("/revision").await["revision"]
            .as_u64()
            .unwrap(),
        rev
    );
    assert_eq!(app.key_of("s1").await, key);
    // The gateway serves the stored configuration right away (echo moved, so 502 is fine: routing and key pass).
    let r = app.call("/echo/x", Some(&key)).await;
    assert_ne!(r.status(), 401);
    assert_ne!(r.status(), 404);
}

#[tokio::test]
async fn named_values_referenced_by_policies() {
    let app = TestApp::spawn().await;
    app.put_ok("/apis/a", json!({"path": "a"})).await;
    let doc = "<policies>\n<inbound>\n<set-header name=\"x-key\" exists-action=\"override\"><value>{{backend-key}}</value></set-header>\n</inbound>\n</policies>";
    // Unknown named value: 400 naming it at its position; nothing stored.
    let v = assert_mgmt_error(
        app.put_xml("/apis/a/policy", doc).await,
        400,
        "ValidationError",
    )
    .await;
    assert_eq!(v["error"]["details"][0]["target"], "3:58", "{v}");
    assert_eq!(
        v["error"]["details"][0]["message"],
        "named value 'backend-key' does not exist"
    );
    assert_mgmt_error(app.get("/apis/a/policy").await, 404, "ResourceNotFound").await;
    // Once it exists the policy is accepted (names match case-insensitively).
    app.put_ok(
        "/named-values/bk",
        json!({"displayName": "Backend-Key", "value": "s3cret", "secret": true}),
    )
    .await;
    assert_eq!(app.put_xml("/apis/a/policy", doc).await.status(), 201);
    // A referenced named value cannot be deleted, nor renamed away.
    let v = assert_mgmt_error(app.delete("/named-values/bk").await, 409, "Conflict").await;
    assert!(
        v["error"]["message"].as_str().unwrap().contains("api/a"),
        "{v}"
    );
    let v = assert_mgmt_error(
        app.put(
            "/named-values/bk",
            json!({"displayName": "renamed", "value": "s3cret"}),
        )
        .await,
        400,
        "ValidationError",
    )
    .await;
    assert!(
        v["error"]["details"][0]["message"]
            .as_str()
            .unwrap()
            .contains("backend-key"),
        "{v}"
    );
    // Without the reference it can go.
    assert_eq!(app.delete("/apis/a/policy").await.status(), 204);
    assert_eq!(app.delete("/named-values/bk").await.status(), 204);
}

#[tokio::test]
async fn policy_fragments_and_includes() {
    let app = TestApp::spawn().await;
    app.put_ok("/apis/a", json!({"path": "a"})).await;
    let auth = "<fragment>\n  <set-header name=\"x-team\" exists-action=\"override\"><value>core</value></set-header>\n</fragment>";
    let r = app.put_xml("/policy-fragments/auth", auth).await;
    assert_eq!(r.status(), 201);
    assert_eq!(
        app.put_xml("/policy-fragments/auth", auth).await.status(),
        200
    );
    assert_eq!(
        app.get("/policy-fragments/auth")
            .await
            .text()
            .await
            .unwrap(),
        auth
    );
    let list = app.get_json("/policy-fragments").await;
    assert_eq!(list["count"], 1);
    assert_eq!(list["value"][0]["id"], "auth");
    assert_eq!(list["value"][0]["value"], auth);
    assert_mgmt_error(
        app.get("/policy-fragments/none").await,
        404,
        "ResourceNotFound",
    )
    .await;
    // A fragment is a <fragment> document, checked like any policy.
    let v = assert_mgmt_error(
        app.put_xml("/policy-fragments/bad", "<policies><inbound/></policies>")
            .await,
        400,
        "ValidationError",
    )
    .await;
    assert!(
        v["error"]["details"][0]["message"]
            .as_str()
            .unwrap()
            .contains("<fragment>"),
        "{v}"
    );
    assert_mgmt_error(
        app.put_xml("/policy-fragments/-bad", auth).await,
        400,
        "ValidationError",
    )
    .await;

    // Includes must resolve, at their position.
    let doc = "<policies>\n<inbound>\n<include-fragment fragment-id=\"auth\" />\n<include-fragment fragment-id=\"missing\" />\n</inbound>\n</policies>";
    let v = assert_mgmt_error(
        app.put_xml("/apis/a/policy", doc).await,
        400,
        "ValidationError",
    )
    .await;
    assert_eq!(v["error"]["details"][0]["target"], "4:32", "{v}");
    assert_eq!(
        v["error"]["details"][0]["message"],
        "policy fragment 'missing' does not exist"
    );
    let ok =
        "<policies>\n<inbound>\n<include-fragment fragment-id=\"auth\" />\n</inbound>\n</policies>";
    assert_eq!(app.put_xml("/apis/a/policy", ok).await.status(), 201);

    // A fragment in use cannot be deleted.
    let v = assert_mgmt_error(app.delete("/policy-fragments/auth").await, 409, "Conflict").await;
    assert!(
        v["error"]["message"].as_str().unwrap().contains("api/a"),
        "{v}"
    );

    // Fragments may include fragments, but not in a cycle.
    let inc = |id: &str| format!("<fragment><include-fragment fragment-id=\"{id}\" /></fragment>");
    assert_eq!(
        app.put_xml("/policy-fragments/outer", &inc("auth"))
            .await
            .status(),
        201
    );
    let v = assert_mgmt_error(
        app.put_xml("/policy-fragments/auth", &inc("outer")).await,
        400,
        "ValidationError",
    )
    .await;
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("auth → outer → auth"),
        "{v}"
    );
    assert_mgmt_error(
        app.put_xml("/policy-fragments/self", &inc("self")).await,
        400,
        "ValidationError",
    )
    .await;
    assert_eq!(
        app.get("/policy-fragments/auth")
            .await
            .text()
            .await
            .unwrap(),
        auth
    );

    // Named values inside fragments are checked too.
    let v = assert_mgmt_error(
        app.put_xml(
            "/policy-fragments/nv",
            "<fragment><set-variable name=\"v\" value=\"{{nope}}\" /></fragment>",
        )
        .await,
        400,
        "ValidationError",
    )
    .await;
    assert_eq!(
        v["error"]["details"][0]["message"],
        "named value 'nope' does not exist"
    );

    // Unused again, it can go.
    assert_eq!(app.delete("/apis/a/policy").await.status(), 204);
    assert_eq!(app.delete("/policy-fragments/outer").await.status(), 204);
    assert_eq!(app.delete("/policy-fragments/auth").await.status(), 204);
}
