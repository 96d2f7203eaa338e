//! Policies through real sockets: scope composition with `<base/>`,
//! on-error and `context.LastError`, routing by region, URL rewriting,
//! CORS, Liquid, JSON/XML conversion and the rest of the built-ins.

mod common;

use common::backend::{self, full};
use common::{assert_gateway_error, assert_mgmt_error, TestApp};
use serde_json::{json, Value};

async fn policy(app: &TestApp, path: &str, xml: &str) {
    let r = app.put_xml(path, xml).await;
    let status = r.status();
    let body = r.text().await.unwrap();
    assert!(status.is_success(), "PUT {path}: {status} {body}");
}

/// The echo backend's view of the request.
async fn echoed(r: reqwest::Response) -> Value {
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn scopes_compose_through_base() {
    let app = TestApp::spawn().await;
    let key = app.standard().await;
    let trail = |v: &str| {
        format!(
            r#"<set-header name="X-Trail" exists-action="append"><value>{v}</value></set-header>"#
        )
    };
    policy(
        &app,
        "/policy",
        &format!(
            "<policies><inbound>{}</inbound></policies>",
            trail("global")
        ),
    )
    .await;
    policy(
        &app,
        "/products/starter/policy",
        &format!(
            "<policies><inbound><base />{}</inbound></policies>",
            trail("product")
        ),
    )
    .await;
    policy(
        &app,
        "/apis/echo/policy",
        &format!(
            "<policies><inbound>{}<base />{}</inbound><backend><base /></backend><outbound><base /></outbound></policies>",
            trail("api-before"),
            trail("api-after")
        ),
    )
    .await;
    policy(
        &app,
        "/apis/echo/operations/all/policy",
        &format!(
            "<policies><inbound><base />{}</inbound></policies>",
            trail("operation")
        ),
    )
    .await;
    let v = echoed(app.call("/echo/x", Some(&key)).await).await;
    assert_eq!(
        v["headers"]["x-trail"],
        "api-before, global, product, api-after, operation"
    );

    // Without <base/> the operation drops everything inherited.
    policy(
        &app,
        "/apis/echo/operations/all/policy",
        &format!("<policies><inbound>{}</inbound></policies>", trail("alone")),
    )
    .await;
    let v = echoed(app.call("/echo/x", Some(&key)).await).await;
    assert_eq!(v["headers"]["x-trail"], "alone");

    // Product policies apply only in a product's context: an API-scoped key
    // runs without the product scope.
    policy(
        &app,
        "/apis/echo/operations/all/policy",
        "<policies><inbound><base /></inbound></policies>",
    )
    .await;
    let api_key = app.subscription("s2", "/apis/echo").await;
    let v = echoed(app.call("/echo/x", Some(&api_key)).await).await;
    assert_eq!(v["headers"]["x-trail"], "api-before, global, api-after");
}

#[tokio::test]
async fn on_error_sees_last_error() {
    let app = TestApp::spawn().await;
    let key = app.standard().await;
    policy(
        &app,
        "/apis/echo/policy",
        r#"<policies>
  <inbound><base /><set-variable id="parse" name="n" value="@(int.Parse(&quot;nope&quot;))" /></inbound>
  <backend><base /></backend>
  <outbound><base /></outbound>
  <on-error>
    <set-variable name="status" value="@(context.Response.StatusCode)" />
    <return-response>
      <set-header name="X-Status" exists-action="override"><value>@(context.Variables["status"].ToString())</value></set-header>
      <set-status code="418" reason="Oops" />
      <set-body>@{ var e = context.LastError; return string.Join("|", e.Source, e.Reason, e.Scope, e.Section, e.Path, e.PolicyId); }</set-body>
    </return-response>
  </on-error>
</policies>"#,
    )
    .await;
    let r = app.call("/echo/x", Some(&key)).await;
    assert_eq!(r.status(), 418);
    assert_eq!(r.headers()["x-status"], "500");
    assert_eq!(
        r.text().await.unwrap(),
        "set-variable|ExpressionValueEvaluationFailure|api|inbound|set-variable[1]|parse"
    );

    // Without an on-error section the caller gets APIM's default body, and
    // the expression's details stay in the log.
    policy(
        &app,
        "/apis/echo/policy",
        r#"<policies><inbound><set-variable name="n" value="@(int.Parse(&quot;nope&quot;))" /></inbound></policies>"#,
    )
    .await;
    assert_gateway_error(
        app.call("/echo/x", Some(&key)).await,
        500,
        "Internal server error",
    )
    .await;

    // A runaway expression is stopped, not waited for.
    policy(
        &app,
        "/apis/echo/policy",
        r#"<policies><inbound><set-variable name="n" value="@{ while (true) { } return 1; }" /></inbound></policies>"#,
    )
    .await;
    assert_gateway_error(
        app.call("/echo/x", Some(&key)).await,
        500,
        "Internal server error",
    )
    .await;
}

#[tokio::test]
async fn backend_errors_reach_on_error() {
    let app = TestApp::spawn().await;
    let slow = backend::spawn(|req| async move {
        if req.uri().path() == "/slow" {
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        }
        let mut r = hyper::Response::new(full("nope"));
        *r.status_mut() = hyper::StatusCode::NOT_FOUND;
        r
    })
    .await;
    app.api("b", "b", &format!("http://{slow}")).await;
    app.put_ok(
        "/apis/b",
        json!({"path": "b", "serviceUrl": format!("http://{slow}"), "subscriptionRequired": false}),
    )
    .await;
    policy(
        &app,
        "/apis/b/policy",
        r#"<policies><backend><forward-request timeout="1" fail-on-error-status-code="true" /></backend>
  <on-error><set-header name="X-Reason" exists-action="override"><value>@(context.LastError.Reason + "/" + context.LastError.Source)</value></set-header></on-error></policies>"#,
    )
    .await;
    let r = app.call("/b/slow", None).await;
    assert_eq!(r.status(), 504);
    assert_eq!(r.headers()["x-reason"], "Timeout/forward-request");
    let r = app.call("/b/missing", None).await;
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.headers()["x-reason"],
        "BackendResponseStatusCode/forward-request"
    );
}

#[tokio::test]
async fn routes_by_deployment_region() {
    let eu = backend::spawn(|_| async { hyper::Response::new(full("eu")) }).await;
    let us = backend::spawn(|_| async { hyper::Response::new(full("us")) }).await;
    let doc = format!(
        r#"<policies><inbound><base />
  <choose>
    <when condition="@(context.Deployment.Region.Equals(&quot;West Europe&quot;, StringComparison.OrdinalIgnoreCase))">
      <set-backend-service base-url="http://{eu}" />
    </when>
    <otherwise><set-backend-service base-url="http://{us}" /></otherwise>
  </choose>
</inbound></policies>"#
    );
    for (region, want) in [("west europe", "eu"), ("East US", "us")] {
        let app = TestApp::spawn_with(|s| s.node.region = region.to_string()).await;
        let key = app.standard().await;
        policy(&app, "/apis/echo/policy", &doc).await;
        let r = app.call("/echo/anything", Some(&key)).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap(), want, "{region}");
    }
}

#[tokio::test]
async fn rewrite_uri_fills_template_parameters() {
    let app = TestApp::spawn().await;
    app.put_ok(
        "/apis/shop",
        json!({"path": "shop", "serviceUrl": format!("{}/base", app.echo_url()), "subscriptionRequired": false}),
    )
    .await;
    app.put_ok(
        "/apis/shop/operations/get",
        json!({"method": "GET", "urlTemplate": "/items/{id}"}),
    )
    .await;
    policy(
        &app,
        "/apis/shop/operations/get/policy",
        r#"<policies><inbound><base /><rewrite-uri template="/v2/products/{id}?src=gw" /></inbound></policies>"#,
    )
    .await;
    let v = echoed(app.call("/shop/items/42?x=1", None).await).await;
    assert_eq!(v["path"], "/base/v2/products/42");
    assert_eq!(v["query"], "src=gw&x=1");

    policy(
        &app,
        "/apis/shop/operations/get/policy",
        r#"<policies><inbound><base /><rewrite-uri template="@(&quot;/v3/&quot; + context.Request.MatchedParameters[&quot;id&quot;])" copy-unmatched-params="false" />
  <set-query-parameter name="added" exists-action="override"><value>yes</value></set-query-parameter></inbound></policies>"#,
    )
    .await;
    let v = echoed(app.call("/shop/items/7?x=1", None).await).await;
    assert_eq!(v["path"], "/base/v3/7");
    assert_eq!(v["query"], "added=yes");
}

#[tokio::test]
async fn cors_preflight_and_simple_requests() {
    let app = TestApp::spawn().await;
    let key = app.standard().await;
    policy(
        &app,
        "/apis/echo/policy",
        r#"<policies><inbound><base />
  <cors allow-credentials="true">
    <allowed-origins><origin>https://app.example</origin></allowed-origins>
    <allowed-methods preflight-result-max-age="600"><method>GET</method><method>POST</method></allowed-methods>
    <allowed-headers><header>content-type</header><header>ocp-apim-subscription-key</header></allowed-headers>
    <expose-headers><header>x-total</header></expose-headers>
  </cors>
</inbound></policies>"#,
    )
    .await;
    // The preflight carries no key and is answered by the gateway.
    let r = app
        .client
        .request(reqwest::Method::OPTIONS, format!("{}/echo/items", app.gw))
        .header("Origin", "https://app.example")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers();
    assert_eq!(h["access-control-allow-origin"], "https://app.example");
    assert_eq!(h["access-control-allow-methods"], "GET,POST");
    assert_eq!(h["access-control-allow-credentials"], "true");
    assert_eq!(h["access-control-max-age"], "600");

    // A preflight from an unknown origin gets no CORS headers.
    let r = app
        .client
        .request(reqwest::Method::OPTIONS, format!("{}/echo/items", app.gw))
        .header("Origin", "https://evil.example")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(!r.headers().contains_key("access-control-allow-origin"));

    let r = app
        .client
        .get(format!("{}/echo/items", app.gw))
        .header("Origin", "https://app.example")
        .header("Ocp-Apim-Subscription-Key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    assert_eq!(r.headers()["access-control-expose-headers"], "x-total");
}

#[tokio::test]
async fn liquid_and_json_xml_conversions() {
    let app = TestApp::spawn().await;
    let key = app.standard().await;
    policy(
        &app,
        "/apis/echo/policy",
        r#"<policies><inbound><base /></inbound><backend><base /></backend>
<outbound><base /><set-body template="liquid">{"method": "{{body.method}}", "path": "{{body.path | Upcase}}", "api": "{{context.Api.Name}}"}</set-body></outbound></policies>"#,
    )
    .await;
    let r = app.call("/echo/items", Some(&key)).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v, json!({"method": "GET", "path": "/ITEMS", "api": "echo"}));

    policy(
        &app,
        "/apis/echo/policy",
        r#"<policies><outbound><base /><json-to-xml apply="content-type-json" consider-accept-header="true" /></outbound></policies>"#,
    )
    .await;
    let r = app
        .client
        .get(format!("{}/echo/x?y=1", app.gw))
        .header("Ocp-Apim-Subscription-Key", &key)
        .header("Accept", "application/xml")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/xml");
    let text = r.text().await.unwrap();
    assert!(
        text.starts_with("<Document><method>GET</method><path>/x</path><query>y=1</query>"),
        "{text}"
    );
    // Without Accept: application/xml the JSON passes through.
    let v = echoed(app.call("/echo/x", Some(&key)).await).await;
    assert_eq!(v["path"], "/x");

    let xml = backend::spawn(|_| async {
        let mut r = hyper::Response::new(full(
            r#"<order id="9"><line>a</line><line>b</line></order>"#,
        ));
        r.headers_mut()
            .insert("content-type", "application/xml".parse().unwrap());
        r
    })
    .await;
    app.put_ok(
        "/apis/x",
        json!({"path": "x", "serviceUrl": format!("http://{xml}"), "subscriptionRequired": false}),
    )
    .await;
    app.put_ok(
        "/apis/x/operations/all",
        json!({"method": "*", "urlTemplate": "/*"}),
    )
    .await;
    policy(&app, "/apis/x/policy", r#"<policies><outbound><xml-to-json kind="javascript-friendly" apply="always" consider-accept-header="false" /></outbound></policies>"#).await;
    let r = app.call("/x/order", None).await;
    assert_eq!(r.headers()["content-type"], "application/json");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v, json!({"order": {"@id": "9", "line": ["a", "b"]}}));
}

#[tokio::test]
async fn transformation_policies() {
    let app = TestApp::spawn().await;
    let key = app.standard().await;
    policy(
        &app,
        "/apis/echo/policy",
        r#"<policies>
  <inbound><base />
    <set-variable name="who" value="@(context.Subscription.Name + &quot;:&quot; + context.Request.Headers.GetValueOrDefault(&quot;X-User&quot;, &quot;anon&quot;))" />
    <set-header name="X-Who" exists-action="override"><value>@((string)context.Variables["who"])</value></set-header>
    <set-header name="Ocp-Apim-Subscription-Key" exists-action="delete" />
    <set-method>POST</set-method>
    <set-body>@{ var o = new JObject(); o["op"] = context.Operation.Id; o["ip"] = context.Request.IpAddress; return o.ToString(Newtonsoft.Json.Formatting.None); }</set-body>
    <trace source="test"><message>hello</message></trace>
  </inbound>
  <backend><base /></backend>
  <outbound><base />
    <find-and-replace from="127.0.0.1" to="client" />
    <set-status code="202" reason="Accepted" />
    <set-header name="X-Elapsed" exists-action="override"><value>@((context.Elapsed.TotalMilliseconds &gt;= 0).ToString())</value></set-header>
  </outbound>
</policies>"#,
    )
    .await;
    let r = app
        .client
        .get(format!("{}/echo/t", app.gw))
        .header("Ocp-Apim-Subscription-Key", &key)
        .header("X-User", "ada")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["x-elapsed"], "True");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["method"], "POST");
    assert_eq!(v["headers"]["x-who"], "s1:ada");
    assert!(v["headers"].get("ocp-apim-subscription-key").is_none());
    assert_eq!(v["body"], r#"{"op":"all","ip":"client"}"#);
}

#[tokio::test]
async fn access_control_policies() {
    let app = TestApp::spawn().await;
    let key = app.standard().await;
    policy(
        &app,
        "/apis/echo/policy",
        r#"<policies><inbound><base />
  <check-header name="X-Tenant" failed-check-httpcode="403" failed-check-error-message="Unknown tenant" ignore-case="true"><value>blue</value></check-header>
</inbound></policies>"#,
    )
    .await;
    assert_gateway_error(app.call("/echo/x", Some(&key)).await, 403, "Unknown tenant").await;
    let r = app
        .client
        .get(format!("{}/echo/x", app.gw))
        .header("Ocp-Apim-Subscription-Key", &key)
        .header("X-Tenant", "BLUE")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    policy(
        &app,
        "/apis/echo/policy",
        r#"<policies><inbound><base /><ip-filter action="forbid"><address-range from="127.0.0.0" to="127.255.255.255" /></ip-filter></inbound></policies>"#,
    )
    .await;
    assert_gateway_error(
        app.call("/echo/x", Some(&key)).await,
        403,
        "Caller IP address 127.0.0.1 is blocked. Access denied.",
    )
    .await;
}

#[tokio::test]
async fn responses_without_the_backend() {
    let app = TestApp::spawn().await;
    app.put_ok(
        "/apis/m",
        json!({"path": "m", "subscriptionRequired": false}),
    )
    .await;
    app.put_ok(
        "/apis/m/operations/get",
        json!({"method": "GET", "urlTemplate": "/pets/{id}", "responses": [{
            "statusCode": 200,
            "representations": [{"contentType": "application/json", "examples": {"default": {"value": {"id": 1, "name": "Rex"}}}}]
        }]}),
    )
    .await;
    policy(&app, "/apis/m/operations/get/policy", r#"<policies><inbound><mock-response status-code="200" content-type="application/json" /></inbound></policies>"#).await;
    let r = app.call("/m/pets/1", None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"id": 1, "name": "Rex"})
    );

    policy(
        &app,
        "/apis/m/operations/get/policy",
        r#"<policies><inbound><return-response><set-status code="201" /><set-header name="Location" exists-action="override"><value>@("/m/pets/" + context.Request.MatchedParameters["id"])</value></set-header></return-response></inbound></policies>"#,
    )
    .await;
    let r = app.call("/m/pets/5", None).await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["location"], "/m/pets/5");

    // jsonp wraps what the backend says.
    app.put_ok(
        "/apis/m",
        json!({"path": "m", "subscriptionRequired": false, "serviceUrl": app.echo_url()}),
    )
    .await;
    policy(&app, "/apis/m/policy", r#"<policies><outbound><base /><jsonp callback-parameter-name="cb" /></outbound></policies>"#).await;
    policy(
        &app,
        "/apis/m/operations/get/policy",
        "<policies><inbound><base /></inbound></policies>",
    )
    .await;
    let r = app.call("/m/pets/1?cb=show", None).await;
    assert_eq!(r.headers()["content-type"], "application/javascript");
    let text = r.text().await.unwrap();
    assert!(
        text.starts_with(r#"show({"method":"GET","path":"/pets/1""#),
        "{text}"
    );
    assert!(text.ends_with(')'), "{text}");
}

#[tokio::test]
async fn named_values_and_fragments_are_compiled_in() {
    let app = TestApp::spawn().await;
    let key = app.standard().await;
    app.put_ok(
        "/named-values/greeting",
        json!({"displayName": "greeting", "value": "hello"}),
    )
    .await;
    app.put_ok(
        "/named-values/stamp",
        json!({"displayName": "stamp", "value": "@(\"computed-\" + (6 * 7))"}),
    )
    .await;
    let r = app
        .put_xml(
            "/policy-fragments/tag",
            r#"<fragment><set-header name="X-Tag" exists-action="override"><value>{{greeting}}-tag</value></set-header></fragment>"#,
        )
        .await;
    assert!(r.status().is_success());
    policy(
        &app,
        "/apis/echo/policy",
        r#"<policies><inbound><base /><include-fragment fragment-id="tag" />
  <set-header name="X-Stamp" exists-action="override"><value>{{stamp}}</value></set-header>
  <set-header name="X-Len" exists-action="override"><value>@("{{greeting}}".Length.ToString())</value></set-header>
</inbound></policies>"#,
    )
    .await;
    let v = echoed(app.call("/echo/x", Some(&key)).await).await;
    assert_eq!(v["headers"]["x-tag"], "hello-tag");
    assert_eq!(v["headers"]["x-stamp"], "computed-42");
    assert_eq!(v["headers"]["x-len"], "5");

    // A named value holding an expression must compile.
    let r = app
        .put(
            "/named-values/bad",
            json!({"displayName": "bad", "value": "@(context.Nope)"}),
        )
        .await;
    let v = assert_mgmt_error(r, 400, "ValidationError").await;
    assert!(v.to_string().contains("IProxyContext"), "{v}");

    // Changing the named value recompiles the policy.
    app.put_ok(
        "/named-values/greeting",
        json!({"displayName": "greeting", "value": "hi"}),
    )
    .await;
    let v = echoed(app.call("/echo/x", Some(&key)).await).await;
    assert_eq!(v["headers"]["x-tag"], "hi-tag");
}

#[tokio::test]
async fn documents_the_gateway_cannot_run_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let key = app.standard().await;
    policy(&app, "/apis/echo/policy", r#"<policies><inbound><base /><set-header name="X-V" exists-action="override"><value>1</value></set-header></inbound></policies>"#).await;
    // A policy of a later release, a policy in the wrong section, a member
    // the expression language does not have.
    for (doc, fragment) in [
        (
            r#"<policies><outbound><validate-status-code unspecified-status-code-action="ignore" /></outbound></policies>"#,
            "does not run yet",
        ),
        (
            r#"<policies><outbound><rewrite-uri template="/x" /></outbound></policies>"#,
            "not allowed in <outbound>",
        ),
        (
            r#"<policies><inbound><set-variable name="v" value="@(context.Request.Heders)" /></inbound></policies>"#,
            "did you mean 'Headers'",
        ),
    ] {
        let r = app.put_xml("/apis/echo/policy", doc).await;
        let v = assert_mgmt_error(r, 400, "ValidationError").await;
        assert!(v.to_string().contains(fragment), "{v}");
    }
    let v = echoed(app.call("/echo/x", Some(&key)).await).await;
    assert_eq!(v["headers"]["x-v"], "1", "the running policy is untouched");
}
