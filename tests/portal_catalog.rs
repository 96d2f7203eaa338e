//! The developer portal's catalog, API reference and try-it console
//! through real sockets: visibility, search and tags, reference pages,
//! code samples with the developer's key, the definition download and the
//! console's forwarding through this node's gateway.

mod common;

use common::portal::Browser;
use common::TestApp;
use serde_json::{json, Value};

const PASSWORD: &str = "correct horse 42";

/// Links `product` to `groups` (so those groups see it in the portal).
async fn show_to(app: &TestApp, product: &str, groups: &[&str]) {
    for g in groups {
        let r = app
            .put(&format!("/products/{product}/groups/{g}"), json!({}))
            .await;
        assert!(r.status().is_success(), "{product}/{g}: {}", r.status());
    }
}

/// Three APIs: `pets` for everyone (guests and developers), `weather` for
/// developers only, `internal` for nobody but administrators.
async fn seed(app: &TestApp) {
    let echo = app.echo_url();
    app.put_ok(
        "/apis/pets",
        json!({
            "displayName": "Pet Store",
            "description": "Pets and their owners. <script>alert(1)</script>\nSecond line.",
            "path": "pets",
            "serviceUrl": echo,
            "tags": ["animals"]
        }),
    )
    .await;
    app.put_ok(
        "/apis/pets/operations/list-pets",
        json!({
            "displayName": "List pets",
            "method": "GET",
            "urlTemplate": "/pets",
            "tags": ["pets"],
            "request": {
                "queryParameters": [
                    {"name": "limit", "type": "integer", "required": false,
                     "description": "How many to return", "defaultValue": "10"}
                ]
            },
            "responses": [{
                "statusCode": 200,
                "description": "A page of pets",
                "representations": [{
                    "contentType": "application/json",
                    "schema": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["id"],
                            "properties": {
                                "id": {"type": "integer", "format": "int64", "description": "Unique id"},
                                "name": {"type": "string"},
                                "status": {"type": "string", "enum": ["available", "sold"]},
                                "tags": {"type": "array", "items": {"type": "string"}},
                                "owner": {"type": "object", "required": ["email"], "properties": {
                                    "email": {"type": "string", "format": "email",
                                              "description": "<b>Owner</b> mail"}
                                }}
                            }
                        }
                    },
                    "examples": {"default": {"value": [{"id": 1, "name": "Rex"}]}}
                }]
            }]
        }),
    )
    .await;
    app.put_ok(
        "/apis/pets/operations/get-pet",
        json!({
            "displayName": "Get a pet",
            "method": "GET",
            "urlTemplate": "/pets/{petId}",
            "description": "Finds one pet. <script>alert(1)</script>",
            "tags": ["pets"],
            "templateParameters": [
                {"name": "petId", "type": "integer", "required": true,
                 "description": "Identifier of the pet"}
            ],
            "request": {
                "headers": [{"name": "X-Trace", "type": "string", "description": "A trace id"}]
            },
            "responses": [{"statusCode": 404, "description": "No such pet"}]
        }),
    )
    .await;
    app.put_ok(
        "/apis/pets/operations/create-pet",
        json!({
            "displayName": "Create a pet",
            "method": "POST",
            "urlTemplate": "/pets",
            "tags": ["pets", "admin"],
            "request": {
                "description": "The new pet.",
                "representations": [{
                    "contentType": "application/json",
                    "schema": {"type": "object", "required": ["name"], "properties": {
                        "name": {"type": "string", "maxLength": 40},
                        "kind": {"type": "string", "enum": ["cat", "dog"], "default": "dog"}
                    }},
                    "examples": {"rex": {"summary": "A dog", "value": {"name": "Rex", "kind": "dog"}}}
                }]
            },
            "responses": [{"statusCode": 201, "description": "Created it"}]
        }),
    )
    .await;
    app.put_ok(
        "/apis/pets/operations/health",
        json!({"displayName": "Health check", "method": "GET", "urlTemplate": "/health"}),
    )
    .await;

    app.put_ok(
        "/apis/weather",
        json!({
            "displayName": "Weather",
            "description": "Forecasts by city",
            "path": "weather",
            "serviceUrl": echo,
            "tags": ["climate"]
        }),
    )
    .await;
    app.put_ok(
        "/apis/weather/operations/forecast",
        json!({"displayName": "Daily outlook", "method": "GET",
               "urlTemplate": "/forecast/{city}", "tags": ["forecasts"]}),
    )
    .await;

    app.put_ok(
        "/apis/internal",
        json!({"displayName": "Internal Billing", "path": "billing",
               "serviceUrl": echo, "tags": ["payments"]}),
    )
    .await;
    app.put_ok(
        "/apis/internal/operations/charge",
        json!({"displayName": "Charge card", "method": "POST", "urlTemplate": "/charge"}),
    )
    .await;

    app.product("public", &["pets"], true).await;
    show_to(app, "public", &["guests", "developers"]).await;
    app.product("members", &["weather"], true).await;
    show_to(app, "members", &["developers"]).await;
    app.product("secret", &["internal"], true).await;
}

/// The id of the user with `email`.
async fn uid_of(app: &TestApp, email: &str) -> String {
    let users = app.get_json("/users").await;
    users["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == email)
        .and_then(|u| u["id"].as_str())
        .unwrap_or_else(|| panic!("no user {email}: {users}"))
        .to_string()
}

/// A subscription `sid` owned by `uid`; returns its primary key.
async fn subscribe(app: &TestApp, sid: &str, uid: &str, scope: &str, state: &str) -> String {
    app.put_ok(
        &format!("/subscriptions/{sid}"),
        json!({"scope": scope, "ownerId": format!("/users/{uid}"), "state": state}),
    )
    .await;
    app.key_of(sid).await
}

/// A signed-up developer.
async fn developer(app: &TestApp, email: &str) -> Browser {
    let b = Browser::new(&app.portal);
    let r = b.sign_up(email, PASSWORD).await;
    assert_eq!(r.status, 303, "{}", r.body);
    b
}

fn gateway_port(app: &TestApp) -> u16 {
    app.gw.rsplit(':').next().unwrap().parse().unwrap()
}

/// Whether the catalog page links the API `id`'s card.
fn lists(body: &str, id: &str) -> bool {
    body.contains(&format!("href=\"/apis/{id}\""))
}

#[tokio::test]
async fn catalog_shows_only_what_the_visitor_may_see() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    let anon = Browser::new(&app.portal);
    let page = anon.get("/apis").await;
    assert_eq!(page.status, 200);
    assert!(lists(&page.body, "pets"), "{}", page.body);
    assert!(!lists(&page.body, "weather"));
    assert!(!lists(&page.body, "internal"));
    assert!(!page.body.contains("Internal Billing"));
    assert!(!page.body.contains("payments"), "no tag of a hidden API");
    assert!(!page.body.contains("climate"));

    // Search never finds what the visitor cannot see.
    for q in ["billing", "charge", "weather", "outlook"] {
        let r = anon.get(&format!("/apis?q={q}")).await;
        assert!(
            !lists(&r.body, "internal") && !lists(&r.body, "weather"),
            "{q}"
        );
        assert!(r.body.contains("No API matches"), "{q}");
    }
    let r = anon.get("/apis?tag=payments").await;
    assert!(!lists(&r.body, "internal"));

    // Hidden or missing: the same 404 page, for every page of the API.
    for path in [
        "/apis/weather",
        "/apis/internal",
        "/apis/internal/operations/charge",
        "/apis/internal/openapi",
        "/apis/nope",
        "/apis/pets/operations/nope",
    ] {
        let r = anon.get(path).await;
        assert_eq!(r.status, 404, "{path}");
        assert!(r.body.contains("Not found"), "{path}");
        assert!(!r.body.contains("Internal Billing"), "{path}");
    }

    let dev = developer(&app, "dev@example.com").await;
    let page = dev.get("/apis").await;
    assert!(lists(&page.body, "pets") && lists(&page.body, "weather"));
    assert!(!lists(&page.body, "internal"));
    assert_eq!(dev.get("/apis/weather").await.status, 200);
    assert_eq!(
        dev.get("/apis/weather/operations/forecast").await.status,
        200
    );
    assert_eq!(dev.get("/apis/internal").await.status, 404);
    assert!(!dev.get("/apis?q=billing").await.body.contains("Internal"));
}

#[tokio::test]
async fn search_and_tags_filter_the_catalog() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    let dev = developer(&app, "dev@example.com").await;
    let only = |body: &str, id: &str| {
        assert!(lists(body, id), "{id} missing: {body}");
        for other in ["pets", "weather", "internal"] {
            if other != id {
                assert!(!lists(body, other), "{other} listed for {id}");
            }
        }
    };
    // Display name, description, path, operation names; any case; every
    // word must match.
    only(&dev.get("/apis?q=Pet+Store").await.body, "pets");
    only(&dev.get("/apis?q=forecasts").await.body, "weather");
    only(&dev.get("/apis?q=OWNERS").await.body, "pets");
    only(&dev.get("/apis?q=weather").await.body, "weather");
    only(&dev.get("/apis?q=outlook").await.body, "weather");
    only(&dev.get("/apis?q=health+check").await.body, "pets");
    let none = dev.get("/apis?q=health+outlook").await;
    assert!(none.body.contains("No API matches"));

    // Tags: the API's own and its operations'.
    let all = dev.get("/apis").await.body;
    for tag in ["animals", "climate", "forecasts", "pets", "admin"] {
        assert!(
            all.contains(&format!("href=\"/apis?tag={tag}\"")),
            "{tag}: {all}"
        );
    }
    only(&dev.get("/apis?tag=animals").await.body, "pets");
    only(&dev.get("/apis?tag=Forecasts").await.body, "weather");
    only(&dev.get("/apis?tag=admin").await.body, "pets");
    only(&dev.get("/apis?q=city&tag=climate").await.body, "weather");
    let r = dev.get("/apis?q=city&tag=animals").await;
    assert!(r.body.contains("No API matches"));
    assert!(
        r.body.contains("aria-current=\"true\""),
        "active tag marked"
    );

    // What was typed comes back escaped.
    let r = dev.get("/apis?q=%3Cb%3Ex%3C%2Fb%3E").await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("&#60;b&#62;x&#60;/b&#62;"));
    assert!(!r.body.contains("<b>x</b>"));
}

#[tokio::test]
async fn api_page_groups_operations_by_tag_and_shows_base_urls() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    let anon = Browser::new(&app.portal);
    let page = anon.get("/apis/pets").await;
    assert_eq!(page.status, 200);
    let body = &page.body;
    let base = format!("http://127.0.0.1:{}/pets", gateway_port(&app));
    assert!(body.contains(&base), "base URL {base}: {body}");
    assert!(body.contains("Ocp-Apim-Subscription-Key"));

    // Tags in order, untagged operations last under "Operations"; an
    // operation with two tags is under both.
    let at = |needle: &str| {
        body.find(needle)
            .unwrap_or_else(|| panic!("{needle} missing: {body}"))
    };
    let admin = at(">admin</h2>");
    let pets = at(">pets</h2>");
    let ops = at(">Operations</h2>");
    assert!(admin < pets && pets < ops);
    let health = at("Health check");
    assert!(health > ops);
    let list = at("List pets");
    assert!(pets < list && list < ops);
    assert_eq!(body.matches("Create a pet").count(), 2);
    assert!(body.contains("href=\"/apis/pets/operations/get-pet\""));

    // The description is text, escaped, with its line break kept by CSS.
    assert!(body.contains("&#60;script&#62;alert(1)&#60;/script&#62;"));
    assert!(!body.contains("<script>alert(1)</script>"));
    assert!(body.contains("class=\"prose\""));
    // Products the visitor sees that hold the API; no download without a
    // definition; no regional table without registered gateways.
    assert!(body.contains("href=\"/products/public\""));
    assert!(!body.contains("/apis/pets/openapi"));
    assert!(!body.contains("Regional gateways"));

    // With cluster gateways registered, their regions and states show.
    app.put_ok(
        "/gateways/west-1",
        json!({"locationData": {"name": "West Europe"}}),
    )
    .await;
    let body = anon.get("/apis/pets").await.body;
    assert!(body.contains("Regional gateways"));
    assert!(body.contains("West Europe"));
    assert!(body.contains("<code>west-1</code>"));
    assert!(body.contains(">registered</span>"));
}

#[tokio::test]
async fn operation_page_documents_parameters_schemas_and_examples() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    let anon = Browser::new(&app.portal);

    let page = anon.get("/apis/pets/operations/get-pet").await;
    assert_eq!(page.status, 200);
    let body = &page.body;
    assert!(body.contains("<h1>Get a pet</h1>"));
    assert!(body.contains("<span class=\"method get\">GET</span>"));
    assert!(body.contains("/pets/{petId}"));
    let url = format!(
        "http://127.0.0.1:{}/pets/pets/{{petId}}",
        gateway_port(&app)
    );
    assert!(body.contains(&url), "{url}");
    // Parameters: name, where, type, required, description.
    assert!(body.contains("<code>petId</code>"));
    assert!(body.contains("<td data-label=\"In\">template</td>"));
    assert!(body.contains("<code>integer</code>"));
    assert!(body.contains("Identifier of the pet"));
    // Headers: the key header (from the API's names) and the documented one.
    assert!(body.contains("<code>Ocp-Apim-Subscription-Key</code>"));
    assert!(body.contains("<code>X-Trace</code>"));
    assert!(body.contains("No such pet"));
    assert!(body.contains("Not Found"));
    // Escaped everywhere.
    assert!(body.contains("Finds one pet. &#60;script&#62;alert(1)&#60;/script&#62;"));
    assert!(!body.contains("<script>alert"));
    // The console script is loaded from the portal (CSP allows nothing
    // inline), and the sidebar marks this operation.
    assert!(body.contains("<script src=\"/static/console.js\" defer></script>"));
    assert!(body.contains("aria-current=\"page\" class=\"current\""));

    let body = anon.get("/apis/pets/operations/list-pets").await.body;
    assert!(body.contains("<code>limit</code>"));
    assert!(body.contains("<td data-label=\"In\">query</td>"));
    assert!(body.contains("Default: <code>10</code>"));
    // The response schema: an array of objects, nested properties indented
    // with their path, types with formats and item types, enums, required.
    assert!(
        body.contains("Type: <code>array of object</code>"),
        "{body}"
    );
    assert!(body.contains("<code>integer (int64)</code>"));
    assert!(body.contains("<code>array of string</code>"));
    assert!(body.contains("One of: available, sold"));
    assert!(body.contains(
        "<tr class=\"depth-1\">\n      <th scope=\"row\" class=\"prop\"><span class=\"prop-prefix\">owner.</span><code>email</code>"
    ));
    assert!(body.contains("<code>string (email)</code>"));
    assert!(body.contains("&#60;b&#62;Owner&#60;/b&#62; mail"));
    assert!(body.contains("<span class=\"req\">required</span>"));
    // The example, pretty-printed.
    assert!(
        body.contains("[\n  {\n    &#34;id&#34;: 1,\n    &#34;name&#34;: &#34;Rex&#34;\n  }\n]"),
        "{body}"
    );
    assert!(body.contains("200</span> OK"));

    let body = anon.get("/apis/pets/operations/create-pet").await.body;
    assert!(body.contains("The new pet."));
    assert!(body.contains("<code>application/json</code>"));
    assert!(body.contains("Maximum length: 40"));
    assert!(body.contains("Default: dog"));
    assert!(body.contains("Example: rex · A dog"));
    assert!(body.contains("201</span> Created"));

    // Documents of odd shapes still make a page; what it cannot read is
    // shown as JSON.
    app.put_ok(
        "/apis/pets/operations/odd",
        json!({
            "displayName": "Odd one",
            "method": "PATCH",
            "urlTemplate": "/odd/{x}",
            "templateParameters": [null, 3, {"name": ["x"]}],
            "request": "just <text>",
            "responses": [42, {"statusCode": "2XX", "representations": "no",
                               "headers": [{"name": "X-A", "schema": {"type": ["string", "null"]}}]},
                          {"representations": [{"contentType": "text/plain",
                                                "schema": {"anything": true},
                                                "examples": [{"value": "hi"}]}]}]
        }),
    )
    .await;
    let page = anon.get("/apis/pets/operations/odd").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("&#34;just &#60;text&#62;&#34;"));
    assert!(page.body.contains("<pre><code>42</code></pre>"));
    assert!(page.body.contains("<code>string | null</code>"));
    assert!(page.body.contains("&#34;anything&#34;: true"));
    assert!(
        page.body.contains("<code>x</code>"),
        "the template names it"
    );
}

#[tokio::test]
async fn code_samples_carry_the_key_of_an_active_subscription() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    let placeholder = "&#60;your-subscription-key&#62;";

    let anon = Browser::new(&app.portal);
    let body = anon.get("/apis/pets/operations/create-pet").await.body;
    assert!(body.contains(&format!(
        "-H &#39;Ocp-Apim-Subscription-Key: {placeholder}&#39;"
    )));
    assert!(body.contains("Sign in</a> and subscribe"));
    assert!(body.contains("curl -X POST"));
    assert!(body.contains("import requests"));
    assert!(body.contains("await fetch("));
    assert!(
        !body.contains("id=\"console\""),
        "the console is for signed-in users"
    );
    assert!(body.contains("to send requests to this operation"));

    let dev = developer(&app, "dev@example.com").await;
    let body = dev.get("/apis/pets/operations/create-pet").await.body;
    assert!(body.contains(placeholder));
    assert!(body.contains("href=\"/products\">subscribe to a product</a>"));
    assert!(body.contains("id=\"console\""));
    assert!(body.contains("name=\"header:Ocp-Apim-Subscription-Key\" type=\"text\" value=\"\""));

    let uid = uid_of(&app, "dev@example.com").await;
    // Not active, or not covering the API: not used.
    let suspended = subscribe(&app, "a-suspended", &uid, "/apis", "suspended").await;
    let elsewhere = subscribe(&app, "b-weather", &uid, "/apis/weather", "active").await;
    let body = dev.get("/apis/pets/operations/create-pet").await.body;
    assert!(body.contains(placeholder));
    assert!(!body.contains(&suspended) && !body.contains(&elsewhere));

    let key = subscribe(&app, "c-public", &uid, "/products/public", "active").await;
    let page = dev.get("/apis/pets/operations/create-pet").await;
    assert_eq!(page.headers["cache-control"], "private, no-store");
    let body = page.body;
    assert!(!body.contains(placeholder), "{body}");
    assert!(body.contains(&format!("-H &#39;Ocp-Apim-Subscription-Key: {key}&#39;")));
    assert!(body.contains(&format!(
        "&#34;Ocp-Apim-Subscription-Key&#34;: &#34;{key}&#34;"
    )));
    assert!(body.contains(&format!(
        "name=\"header:Ocp-Apim-Subscription-Key\" type=\"text\" value=\"{key}\""
    )));
    // The body field starts with the request example.
    assert!(body.contains("<textarea id=\"console-body\""));
    assert!(body.contains("&#34;name&#34;: &#34;Rex&#34;"));
    // Python gets a dict, JavaScript JSON.stringify.
    assert!(body.contains("json=payload"));
    assert!(body.contains("body: JSON.stringify({"));
    let api_page = dev.get("/apis/pets").await.body;
    assert!(api_page.contains("<strong>c-public</strong>"));

    // Somebody else's key is never shown.
    let other = developer(&app, "other@example.com").await;
    let body = other.get("/apis/pets/operations/create-pet").await.body;
    assert!(body.contains(placeholder));
    assert!(!body.contains(&key));
    assert!(!anon
        .get("/apis/pets/operations/create-pet")
        .await
        .body
        .contains(&key));

    // An API without subscriptions shows no key at all; an API with its own
    // key names uses them.
    app.put_ok(
        "/apis/free",
        json!({"displayName": "Free", "path": "free", "subscriptionRequired": false}),
    )
    .await;
    app.put_ok(
        "/apis/free/operations/ping",
        json!({"method": "GET", "urlTemplate": "/ping"}),
    )
    .await;
    app.put_ok(
        "/apis/custom",
        json!({"displayName": "Custom", "path": "custom",
               "subscriptionKeyParameterNames": {"header": "X-Api-Key", "query": "apikey"}}),
    )
    .await;
    app.put_ok(
        "/apis/custom/operations/ping",
        json!({"method": "GET", "urlTemplate": "/ping"}),
    )
    .await;
    for a in ["free", "custom"] {
        let r = app
            .put(&format!("/products/public/apis/{a}"), json!({}))
            .await;
        assert!(r.status().is_success());
    }
    let body = dev.get("/apis/free/operations/ping").await.body;
    assert!(!body.contains("Ocp-Apim-Subscription-Key"), "{body}");
    assert!(!body.contains(placeholder));
    assert!(!body.contains(&key));
    let body = dev.get("/apis/custom/operations/ping").await.body;
    assert!(body.contains(&format!("-H &#39;X-Api-Key: {key}&#39;")));
    assert!(body.contains("<code>apikey</code>") || body.contains("apikey query parameter"));
    assert!(!body.contains("Ocp-Apim-Subscription-Key"));
}

#[tokio::test]
async fn definition_download_is_a_404_without_an_imported_definition() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    let anon = Browser::new(&app.portal);
    let r = anon.get("/apis/pets/openapi").await;
    assert_eq!(r.status, 404);
    assert!(r.body.contains("not imported from a definition"));
    assert!(!anon
        .get("/apis/pets")
        .await
        .body
        .contains("Download the definition"));
}

/// Writes an API with a stored definition straight into a fresh store (the
/// management API stores definitions only through an import).
fn seed_store_with_definitions(dir: &std::path::Path) {
    use turnpike::model::{Api, ApiSpec, Change, Product, ProductState};
    let store = turnpike::store::Store::open(dir).unwrap();
    let api = |path: &str| Api {
        display_name: path.to_uppercase(),
        path: path.into(),
        ..Api::default()
    };
    let changes = vec![
        Change::Api("yaml-api".into(), Some(api("y"))),
        Change::Api("json-api".into(), Some(api("j"))),
        Change::ApiSpec(
            "yaml-api".into(),
            Some(ApiSpec {
                format: "openapi".into(),
                document: "openapi: 3.0.1\ninfo:\n  title: Y\n  version: '1'\npaths: {}\n".into(),
            }),
        ),
        Change::ApiSpec(
            "json-api".into(),
            Some(ApiSpec {
                format: "openapi+json".into(),
                document: r#"{"openapi":"3.0.1","info":{"title":"J","version":"1"},"paths":{}}"#
                    .into(),
            }),
        ),
        Change::Product(
            "p".into(),
            Some(Product {
                display_name: "P".into(),
                description: None,
                terms: None,
                subscription_required: true,
                approval_required: false,
                subscriptions_limit: None,
                state: ProductState::Published,
            }),
        ),
        Change::ProductApi("p".into(), "yaml-api".into(), true),
        Change::ProductApi("p".into(), "json-api".into(), true),
        Change::ProductGroup("p".into(), "guests".into(), true),
    ];
    store
        .write(move |_| Ok::<_, String>(changes), |_| Ok::<_, String>(()))
        .map_err(|_| "write failed")
        .unwrap();
    store.flush().unwrap();
}

#[tokio::test]
async fn definition_download_serves_the_stored_document() {
    let dir = tempfile::tempdir().unwrap();
    seed_store_with_definitions(dir.path());
    let settings = common::test_settings(dir.path());
    let app = TestApp::start(dir, settings).await;
    let anon = Browser::new(&app.portal);

    let page = anon.get("/apis/yaml-api").await;
    assert!(page.body.contains("href=\"/apis/yaml-api/openapi\""));
    assert!(page.body.contains("OpenAPI (YAML)"));

    let r = anon.get("/apis/yaml-api/openapi").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "application/yaml");
    assert_eq!(
        r.headers["content-disposition"],
        "attachment; filename=\"yaml-api.yaml\""
    );
    assert!(r.body.starts_with("openapi: 3.0.1\n"));

    let r = anon.get("/apis/json-api/openapi").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(
        r.headers["content-disposition"],
        "attachment; filename=\"json-api.json\""
    );
    let v: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["info"]["title"], "J");
}

#[tokio::test]
async fn definition_download_of_an_imported_api() {
    let app = TestApp::spawn().await;
    let doc = json!({
        "openapi": "3.0.1",
        "info": {"title": "Imported", "version": "1"},
        "paths": {"/things": {"get": {"operationId": "list-things", "responses": {"200": {"description": "ok"}}}}}
    })
    .to_string();
    app.put_ok(
        "/apis/imported",
        json!({"format": "openapi+json", "value": doc, "path": "imported"}),
    )
    .await;
    app.product("open-imports", &["imported"], true).await;
    show_to(&app, "open-imports", &["guests"]).await;
    let anon = Browser::new(&app.portal);
    assert!(anon
        .get("/apis/imported")
        .await
        .body
        .contains("href=\"/apis/imported/openapi\""));
    let r = anon.get("/apis/imported/openapi").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "application/json");
    assert!(r.headers["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    assert_eq!(r.body, doc);
}

/// The echo API (any method, any path) in a product developers see, and a
/// developer subscribed to it: (browser, key).
async fn echo_setup(app: &TestApp) -> (Browser, String) {
    app.api("echo", "echo", &app.echo_url()).await;
    app.product("starter", &["echo"], true).await;
    show_to(app, "starter", &["developers"]).await;
    let dev = developer(app, "dev@example.com").await;
    let uid = uid_of(app, "dev@example.com").await;
    let key = subscribe(app, "s1", &uid, "/products/starter", "active").await;
    (dev, key)
}

fn send_body(key: &str) -> Value {
    json!({
        "apiId": "echo",
        "operationId": "all",
        "method": "POST",
        "path": "/things/42",
        "query": [["a", "1 2"], ["b", "x&y"]],
        "headers": [["Ocp-Apim-Subscription-Key", key], ["X-Test", "yes"],
                    ["Content-Type", "application/json"]],
        "body": "{\"hello\": \"world\"}"
    })
}

#[tokio::test]
async fn console_requires_sign_in_and_the_page_token() {
    let app = TestApp::spawn().await;
    let (dev, key) = echo_setup(&app).await;

    let anon = Browser::new(&app.portal);
    let token = anon.get("/signin").await.csrf();
    let (status, v) = anon
        .post_json("/console/send", &send_body(&key), Some(&token))
        .await;
    assert_eq!(status, 401);
    assert!(v["error"].as_str().unwrap().contains("Sign in"));

    let (status, v) = dev.post_json("/console/send", &send_body(&key), None).await;
    assert_eq!(status, 403);
    assert!(v["error"].is_string());
    let (status, _) = dev
        .post_json("/console/send", &send_body(&key), Some("AAAA"))
        .await;
    assert_eq!(status, 403);
    // Another visitor's token does not fit this visitor's cookie.
    let (status, _) = dev
        .post_json("/console/send", &send_body(&key), Some(&token))
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn console_sends_through_this_nodes_gateway() {
    let app = TestApp::spawn().await;
    let (dev, key) = echo_setup(&app).await;
    let page = dev.get("/apis/echo/operations/all").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("id=\"console-method\""),
        "any-method operation"
    );
    assert!(page.body.contains("name=\"param:*\""));
    let token = page.csrf();

    let (status, v) = dev
        .post_json("/console/send", &send_body(&key), Some(&token))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], 200);
    assert_eq!(v["truncated"], false);
    assert!(v["elapsedMs"].is_u64(), "{v}");
    let headers = v["headers"].as_array().unwrap();
    assert!(headers
        .iter()
        .any(|h| h[0] == "content-type" && h[1].as_str().unwrap().contains("json")));
    let echoed: Value = serde_json::from_str(v["body"].as_str().unwrap()).unwrap();
    assert_eq!(echoed["method"], "POST");
    assert_eq!(echoed["path"], "/things/42");
    assert_eq!(echoed["query"], "a=1%202&b=x%26y");
    assert_eq!(echoed["headers"]["x-test"], "yes");
    assert_eq!(echoed["body"], "{\"hello\": \"world\"}");
    assert!(
        echoed["headers"].get("cookie").is_none(),
        "portal cookies stay"
    );

    // The gateway's own answers come back as they are.
    let mut no_key = send_body(&key);
    no_key["headers"] = json!([]);
    let (status, v) = dev.post_json("/console/send", &no_key, Some(&token)).await;
    assert_eq!(status, 200);
    assert_eq!(v["status"], 401);
    assert!(v["body"].as_str().unwrap().contains("subscription key"));

    // Only operations of visible APIs, with their own method.
    let mut hidden = send_body(&key);
    hidden["apiId"] = json!("nope");
    let (status, v) = dev.post_json("/console/send", &hidden, Some(&token)).await;
    assert_eq!(status, 404, "{v}");
    app.put_ok(
        "/apis/echo/operations/read",
        json!({"method": "GET", "urlTemplate": "/read/{id}"}),
    )
    .await;
    let mut wrong = send_body(&key);
    wrong["operationId"] = json!("read");
    let (status, v) = dev.post_json("/console/send", &wrong, Some(&token)).await;
    assert_eq!(status, 400, "{v}");
}

#[tokio::test]
async fn console_refuses_other_targets_and_oversized_bodies() {
    let app = TestApp::spawn().await;
    let (dev, key) = echo_setup(&app).await;
    let token = dev.get("/apis/echo/operations/all").await.csrf();
    let send = |body: Value| {
        let dev = &dev;
        let token = token.clone();
        async move { dev.post_json("/console/send", &body, Some(&token)).await }
    };

    for path in [
        "http://evil.example/x",
        "//evil.example/x",
        "evil.example/x",
        "/a/../../b",
        "/a/%2e%2e/b",
        "/a\\b",
        "/x?y=1",
    ] {
        let mut b = send_body(&key);
        b["path"] = json!(path);
        let (status, v) = send(b).await;
        assert_eq!(status, 400, "{path}: {v}");
        assert!(v["error"].is_string());
    }
    for header in [
        "Host",
        "Connection",
        "Transfer-Encoding",
        "Upgrade",
        "Content-Length",
    ] {
        let mut b = send_body(&key);
        b["headers"] = json!([[header, "x"]]);
        let (status, v) = send(b).await;
        assert_eq!(status, 400, "{header}: {v}");
    }

    // Request bodies over 1 MiB: 413, whether the envelope itself is
    // within reach or not.
    let mut b = send_body(&key);
    b["body"] = json!("a".repeat(1024 * 1024 + 1));
    let (status, v) = send(b).await;
    assert_eq!(status, 413, "{v}");
    let mut b = send_body(&key);
    b["body"] = json!("a".repeat(4 * 1024 * 1024));
    let (status, v) = send(b).await;
    assert_eq!(status, 413, "{v}");

    // A body of exactly 1 MiB goes; its echo is longer than 1 MiB and is
    // cut there.
    let mut b = send_body(&key);
    b["body"] = json!("a".repeat(1024 * 1024));
    let (status, v) = send(b).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], 200);
    assert_eq!(v["truncated"], true);
    assert_eq!(v["body"].as_str().unwrap().len(), 1024 * 1024);
}

/// The console in a real headless Chromium: the script fills the
/// template, adds query parameters and headers, posts with the page's
/// token, and shows status, headers, body and time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_works_in_a_browser() {
    let Some(b) = common::chrome::start().await else {
        return;
    };
    let app = TestApp::spawn().await;
    seed(&app).await;
    let (_dev, _key) = echo_setup(&app).await;
    app.put_ok(
        "/apis/echo/operations/read",
        json!({"displayName": "Read one", "method": "GET", "urlTemplate": "/read/{id}",
               "templateParameters": [{"name": "id", "type": "string", "required": true}]}),
    )
    .await;
    let portal = &app.portal;

    b.goto(&format!("{portal}/apis")).await;
    b.shot("catalog").await;
    b.goto(&format!("{portal}/signin")).await;
    b.fill("#email", "dev@example.com").await;
    b.fill("#password", PASSWORD).await;
    b.click("form.form button[type=submit]").await;
    b.css("footer").await;
    assert!(b.page().await.contains("Signed in as dev@example.com"));
    b.goto(&format!("{portal}/apis/pets")).await;
    b.shot("api").await;
    b.goto(&format!("{portal}/apis/pets/operations/list-pets"))
        .await;
    b.shot("operation").await;

    // Any-method operation: pick POST, fill the rest of the path, add a
    // query parameter and a header, send a body.
    b.goto(&format!("{portal}/apis/echo/operations/all")).await;
    b.css("#console-method")
        .await
        .select_by_value("POST")
        .await
        .unwrap();
    b.fill("input[name='param:*']", "things/7").await;
    b.click("#console-add-query").await;
    b.fill(".extra-row[data-kind=query] .extra-name", "color")
        .await;
    b.fill(".extra-row[data-kind=query] .extra-value", "dark blue")
        .await;
    b.click("#console-add-header").await;
    b.fill(".extra-row[data-kind=header] .extra-name", "X-Test")
        .await;
    b.fill(
        ".extra-row[data-kind=header] .extra-value",
        "from the browser",
    )
    .await;
    b.fill("#console-body", "{\"hello\": \"browser\"}").await;
    assert_eq!(
        b.text("#console-preview").await,
        "POST /things/7?color=dark%20blue"
    );
    b.click("#console-send").await;
    b.css("#console-output:not([hidden])").await;
    b.client
        .execute(
            "document.getElementById('console-result').scrollIntoView()",
            vec![],
        )
        .await
        .unwrap();
    b.shot("console").await;
    assert_eq!(b.text("#console-status").await, "200");
    let time = b.text("#console-time").await;
    assert!(time.ends_with(" ms"), "{time}");
    let headers = b.text("#console-headers").await;
    assert!(
        headers.contains("content-type: application/json"),
        "{headers}"
    );
    let text = b.text("#console-response").await;
    let echoed: Value = serde_json::from_str(&text).expect("pretty JSON body");
    assert_eq!(echoed["method"], "POST");
    assert_eq!(echoed["path"], "/things/7");
    assert_eq!(echoed["query"], "color=dark%20blue");
    assert_eq!(echoed["headers"]["x-test"], "from the browser");
    assert_eq!(echoed["body"], "{\"hello\": \"browser\"}");
    let live = b
        .css("#console-result")
        .await
        .attr("aria-live")
        .await
        .unwrap();
    assert_eq!(live.as_deref(), Some("polite"));

    // A template parameter is encoded into its segment; without the key
    // the gateway's own 401 is what shows.
    b.goto(&format!("{portal}/apis/echo/operations/read")).await;
    b.fill("input[name='param:id']", "a b/c").await;
    b.css("input[name='header:Ocp-Apim-Subscription-Key']")
        .await
        .clear()
        .await
        .unwrap();
    assert_eq!(b.text("#console-preview").await, "GET /read/a%20b%2Fc");
    b.click("#console-send").await;
    b.css("#console-output:not([hidden])").await;
    assert_eq!(b.text("#console-status").await, "401");
    b.close().await;
}
