//! The developer's whole journey in a real headless Chromium: find an
//! imported API, read an operation's reference, sign up, subscribe, see the
//! key, and call the operation from the try-it console, getting the
//! backend's answer. (Approvals by an administrator are driven in
//! `browser_account.rs`.) Screenshots: `target/portal-screenshots/journey-*`.

mod common;

use common::TestApp;
use serde_json::{json, Value};

const CORPUS: &str = "../shared/corpus/openapi";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_developer_finds_subscribes_and_calls_an_api_in_the_browser() {
    let Some(b) = common::chrome::start().await else {
        return;
    };
    let app = TestApp::spawn().await;
    // The administrator imports the Swagger Petstore (OpenAPI 3.0, YAML),
    // served by the echo backend, and publishes it in a product.
    let doc = std::fs::read_to_string(format!("{CORPUS}/swagger-petstore-v3.yaml")).unwrap();
    app.put_ok(
        "/apis/petstore",
        json!({"format": "openapi", "value": doc, "path": "petstore",
               "serviceUrl": app.echo_url()}),
    )
    .await;
    app.put_ok(
        "/products/starter",
        json!({"displayName": "Starter", "state": "published",
               "description": "Everything you need to start."}),
    )
    .await;
    app.put_ok("/products/starter/apis/petstore", json!({}))
        .await;
    for g in ["guests", "developers"] {
        app.put_ok(&format!("/products/starter/groups/{g}"), json!({}))
            .await;
    }
    let portal = &app.portal;

    // Find it.
    b.goto(&format!("{portal}/")).await;
    b.shot("journey-home").await;
    b.click("a[href='/apis']").await;
    b.wait_url("/apis").await;
    b.fill("#q", "petstore").await;
    b.click("form.search button").await;
    b.wait_url("/apis?q=petstore").await;
    b.click("a[href='/apis/petstore']").await;
    b.wait_url("/apis/petstore").await;
    assert!(b.text("h1").await.contains("Swagger Petstore"));
    b.shot("journey-api").await;

    // Read the reference of one operation.
    b.click("a[href='/apis/petstore/operations/findPetsByStatus']")
        .await;
    b.wait_url("/apis/petstore/operations/findPetsByStatus")
        .await;
    let page = b.page().await;
    assert!(page.contains("Finds Pets by status."));
    assert!(page.contains("/pet/findByStatus"));
    assert!(page.contains("&lt;your-subscription-key&gt;"), "no key yet");
    b.shot("journey-operation").await;

    // Sign up, subscribe, see the key.
    b.goto(&format!("{portal}/signup")).await;
    b.fill("#email", "ada@example.com").await;
    b.fill("#firstName", "Ada").await;
    b.fill("#lastName", "Lovelace").await;
    b.fill("#password", "analytical engine 1843").await;
    b.fill("#confirm", "analytical engine 1843").await;
    b.click("form.form button[type=submit]").await;
    b.wait_url("/profile").await;
    b.goto(&format!("{portal}/products/starter")).await;
    b.fill("#sub-name", "Ada's app").await;
    b.shot("journey-product").await;
    b.click("#subscribe button[type=submit]").await;
    b.wait_url("/profile?done=subscribed").await;
    let sid = b
        .css("li.sub")
        .await
        .attr("id")
        .await
        .unwrap()
        .unwrap()
        .trim_start_matches("sub-")
        .to_string();
    b.click(&format!("#sub-{sid} tr:first-child summary")).await;
    let key = b.text(&format!("#key-primary-{sid}")).await;
    assert_eq!(key.len(), 32, "{key}");
    b.shot("journey-profile").await;

    // Back on the operation page the samples and the console carry the key.
    b.goto(&format!(
        "{portal}/apis/petstore/operations/findPetsByStatus"
    ))
    .await;
    assert!(b.page().await.contains(&key));
    b.fill("#console-query-fields input[name='query:status']", "sold")
        .await;
    b.click("#console-send").await;
    b.css("#console-output:not([hidden])").await;
    b.client
        .execute(
            "document.getElementById('console-result').scrollIntoView()",
            vec![],
        )
        .await
        .unwrap();
    b.shot("journey-console").await;
    assert_eq!(b.text("#console-status").await, "200");
    let echoed: Value = serde_json::from_str(&b.text("#console-response").await).unwrap();
    assert_eq!(echoed["method"], "GET");
    assert_eq!(echoed["path"], "/pet/findByStatus");
    assert_eq!(echoed["query"], "status=sold");
    assert_eq!(echoed["headers"]["ocp-apim-subscription-key"], key.as_str());
    b.close().await;
}
