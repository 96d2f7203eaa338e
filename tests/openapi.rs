//! OpenAPI / Swagger import through the management API: every corpus
//! document, service URL derivation, export, byte-order marks, operation
//! ids, re-import keeping policies, refused documents (nothing stored),
//! `$ref` problems, linked documents, mock responses from imported
//! examples, and a large generated definition.

mod common;

use common::backend::{self, full};
use common::{assert_mgmt_error, TestApp};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Tests run from the crate root; CI keeps `shared/` beside the checkout.
const CORPUS: &str = "../shared/corpus/openapi";

/// Operations per corpus document, counted by hand (path × method pairs
/// under `paths`; callbacks and webhooks are not operations).
const EXPECTED: [(&str, usize); 9] = [
    ("httpbin-swagger2.json", 22),
    ("oai-v2.0-petstore.json", 3),
    ("oai-v2.0-uber.json", 5),
    ("oai-v3.0-callback-example.yaml", 1),
    ("oai-v3.0-link-example.yaml", 6),
    ("oai-v3.0-petstore-expanded.yaml", 4),
    ("oai-v3.0-uspto.yaml", 3),
    ("oai-v3.1-webhook-example.yaml", 0),
    ("swagger-petstore-v3.yaml", 19),
];

fn corpus(name: &str) -> String {
    std::fs::read_to_string(format!("{CORPUS}/{name}"))
        .unwrap_or_else(|e| panic!("{CORPUS}/{name}: {e}"))
}

fn format_of(name: &str, text: &str) -> &'static str {
    if !name.ends_with(".json") {
        "openapi"
    } else if text.contains("\"swagger\"") {
        "swagger-json"
    } else {
        "openapi+json"
    }
}

/// Imports `text` as API `id` at `path`; returns the API as PUT answers it.
async fn import(app: &TestApp, id: &str, path: &str, format: &str, text: &str) -> Value {
    app.put_ok(
        &format!("/apis/{id}"),
        json!({"format": format, "value": text, "path": path}),
    )
    .await
}

/// The operations of API `id`, by operation id.
async fn operations(app: &TestApp, id: &str) -> BTreeMap<String, Value> {
    let v = app.get_json(&format!("/apis/{id}/operations")).await;
    assert_eq!(
        v["count"].as_u64().unwrap() as usize,
        v["value"].as_array().unwrap().len()
    );
    v["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|op| (op["id"].as_str().unwrap().to_string(), op.clone()))
        .collect()
}

async fn revision(app: &TestApp) -> u64 {
    app.get_json("/revision").await["revision"]
        .as_u64()
        .unwrap()
}

/// A 400 whose details name `target`; returns the detail's message.
async fn refused(r: reqwest::Response, target: &str) -> String {
    let v = assert_mgmt_error(r, 400, "ValidationError").await;
    let details = v["error"]["details"].as_array().unwrap();
    details
        .iter()
        .find(|d| d["target"] == target)
        .unwrap_or_else(|| panic!("no detail on {target}: {v}"))["message"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn every_corpus_document_imports() {
    let app = TestApp::spawn().await;
    let mut files: Vec<String> = std::fs::read_dir(CORPUS)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|f| f != "SOURCES.tsv")
        .collect();
    files.sort();
    let names: Vec<&str> = EXPECTED.iter().map(|(f, _)| *f).collect();
    assert_eq!(files, names, "a corpus document without an expected count");
    for (i, (file, count)) in EXPECTED.iter().enumerate() {
        let text = corpus(file);
        let format = format_of(file, &text);
        let id = format!("api{i}");
        let r = app
            .put(
                &format!("/apis/{id}"),
                json!({"format": format, "value": text, "path": format!("p{i}")}),
            )
            .await;
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        assert_eq!(status, 201, "{file}: {body}");
        assert!(body.get("format").is_none() && body.get("value").is_none());
        let ops = operations(&app, &id).await;
        assert_eq!(ops.len(), *count, "{file}: {:?}", ops.keys());
        for (op_id, op) in &ops {
            // Every template parameter is documented, and only those.
            let template = op["urlTemplate"].as_str().unwrap();
            let braces = template.matches('{').count();
            let documented = op
                .get("templateParameters")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            assert_eq!(braces, documented, "{file} {op_id}: {op}");
        }
        // Export gives back the document as received.
        let r = app.get(&format!("/apis/{id}?export=openapi")).await;
        assert_eq!(r.status(), 200);
        let ct = r.headers()["content-type"].to_str().unwrap().to_string();
        let expected_ct = if file.ends_with(".json") {
            "application/json"
        } else {
            "application/yaml"
        };
        assert_eq!(ct, expected_ct, "{file}");
        assert_eq!(r.text().await.unwrap(), text, "{file}");
    }

    // Swagger 2.0: schemes/host/basePath.
    let api = app.get_json("/apis/api1").await;
    assert_eq!(api["serviceUrl"], "http://petstore.swagger.io/v1");
    assert_eq!(api["displayName"], "Swagger Petstore");
    assert_eq!(api["tags"], json!(["pets"]));
    let ops = operations(&app, "api1").await;
    let list = &ops["listPets"];
    assert_eq!(list["method"], "GET");
    assert_eq!(list["urlTemplate"], "/pets");
    assert_eq!(list["displayName"], "List all pets");
    assert_eq!(list["request"]["queryParameters"][0]["name"], "limit");
    assert_eq!(list["request"]["queryParameters"][0]["type"], "integer");
    assert_eq!(list["request"]["queryParameters"][0]["required"], false);
    let ok = &list["responses"][0];
    assert_eq!(ok["statusCode"], 200);
    assert_eq!(ok["headers"][0]["name"], "x-next");
    let rep = &ok["representations"][0];
    assert_eq!(rep["contentType"], "application/json");
    assert_eq!(rep["schema"]["type"], "array");
    assert_eq!(rep["schema"]["items"]["required"], json!(["id", "name"]));
    assert_eq!(
        rep["examples"]["default"]["value"],
        json!([{"id": 0, "name": "string", "tag": "string"}])
    );
    // "default" documents the error here: a 200 exists, so it is left out.
    assert_eq!(list["responses"].as_array().unwrap().len(), 1);
    let show = &ops["showPetById"];
    assert_eq!(show["urlTemplate"], "/pets/{petId}");
    assert_eq!(show["templateParameters"][0]["name"], "petId");
    assert_eq!(show["templateParameters"][0]["required"], true);
    assert_eq!(show["templateParameters"][0]["type"], "string");

    // No operationId: ids from method and path.
    let api = app.get_json("/apis/api2").await;
    assert_eq!(api["serviceUrl"], "https://api.uber.com/v1");
    let ops = operations(&app, "api2").await;
    let ids: Vec<&str> = ops.keys().map(String::as_str).collect();
    assert_eq!(
        ids,
        [
            "get-estimates-price",
            "get-estimates-time",
            "get-history",
            "get-me",
            "get-products"
        ]
    );
    assert_eq!(ops["get-products"]["displayName"], "Product Types");

    // httpbin: both schemes listed → https; "/status" ids sanitised.
    let api = app.get_json("/apis/api0").await;
    assert_eq!(api["serviceUrl"], "https://httpbin.org");
    let ops = operations(&app, "api0").await;
    assert_eq!(ops["status"]["urlTemplate"], "/status/{code}");
    assert_eq!(
        ops["status"]["templateParameters"][0]["values"],
        json!(["200"])
    );
    assert_eq!(ops["user-agent"]["method"], "GET");

    // Callbacks are not operations.
    let ops = operations(&app, "api3").await;
    assert_eq!(ops.keys().collect::<Vec<_>>(), ["post-streams"]);
    assert_eq!(
        ops["post-streams"]["request"]["queryParameters"][0]["name"],
        "callbackUrl"
    );

    // Links are not operations either; templates come from the path keys.
    let ops = operations(&app, "api4").await;
    assert_eq!(
        ops["mergePullRequest"]["urlTemplate"],
        "/2.0/repositories/{username}/{slug}/pullrequests/{pid}/merge"
    );
    assert_eq!(ops["mergePullRequest"]["method"], "POST");

    // 3.0 without variables; allOf inlined.
    let api = app.get_json("/apis/api5").await;
    assert_eq!(api["serviceUrl"], "http://petstore.swagger.io/api");
    let ops = operations(&app, "api5").await;
    // "find pet by id" is sanitised.
    assert_eq!(
        ops.keys().collect::<Vec<_>>(),
        ["addPet", "deletePet", "find-pet-by-id", "findPets"]
    );
    let schema = &ops["findPets"]["responses"][0]["representations"][0]["schema"];
    assert_eq!(schema["items"]["allOf"][0]["required"], json!(["name"]));
    assert_eq!(ops["find-pet-by-id"]["urlTemplate"], "/pets/{id}");
    assert_eq!(
        ops["find-pet-by-id"]["templateParameters"][0]["type"],
        "integer"
    );

    // Server variables at their defaults.
    let api = app.get_json("/apis/api6").await;
    assert_eq!(api["serviceUrl"], "https://developer.uspto.gov/ds-api");
    assert_eq!(api["tags"], json!(["metadata", "search"]));
    let ops = operations(&app, "api6").await;
    assert_eq!(
        ops["list-searchable-fields"]["urlTemplate"],
        "/{dataset}/{version}/fields"
    );
    assert_eq!(ops["list-data-sets"]["urlTemplate"], "/");
    let search = &ops["perform-search"];
    let form = &search["request"]["representations"][0];
    assert_eq!(form["contentType"], "application/x-www-form-urlencoded");
    assert_eq!(form["formParameters"][0]["name"], "criteria");

    // 3.1 with only webhooks: an API with no operations.
    let api = app.get_json("/apis/api7").await;
    assert_eq!(api["displayName"], "Webhook Example");
    assert!(app.get_json("/apis/api7/operations").await["count"] == 0);

    let api = app.get_json("/apis/api8").await;
    assert_eq!(api["serviceUrl"], "https://petstore3.swagger.io/api/v3");
    assert_eq!(api["tags"], json!(["pet", "store", "user"]));
    let ops = operations(&app, "api8").await;
    assert_eq!(ops["getPetById"]["urlTemplate"], "/pet/{petId}");
    assert_eq!(ops["getPetById"]["displayName"], "Find pet by ID.");
    assert_eq!(ops["getPetById"]["tags"], json!(["pet"]));
    assert_eq!(
        ops["loginUser"]["request"]["queryParameters"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let reps = ops["getPetById"]["responses"][0]["representations"]
        .as_array()
        .unwrap();
    let types: Vec<&str> = reps
        .iter()
        .map(|r| r["contentType"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["application/json", "application/xml"]);
    assert_eq!(
        reps[0]["schema"]["properties"]["category"]["properties"]["name"]["example"],
        "Dogs"
    );
    assert_eq!(reps[0]["examples"]["default"]["value"]["name"], "doggie");
    assert!(reps[1].get("examples").is_none(), "no made-up XML examples");

    // YAML converts to JSON on request.
    let r = app.get("/apis/api6?export=openapi%2Bjson").await;
    assert_eq!(r.headers()["content-type"], "application/json");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["openapi"], "3.0.1");
    // An API that was not imported has nothing to export.
    app.put_ok("/apis/plain", json!({"path": "plain"})).await;
    assert_mgmt_error(
        app.get("/apis/plain?export=openapi").await,
        404,
        "ResourceNotFound",
    )
    .await;
    assert_mgmt_error(
        app.get("/apis/none?export=openapi").await,
        404,
        "ResourceNotFound",
    )
    .await;
    refused(app.get("/apis/api6?export=wsdl").await, "export").await;
}

const PETS: &str = r##"openapi: 3.0.3
info:
  title: Pets
  description: A few pets.
servers:
  - url: "{scheme}://{host}/v{major}"
    variables:
      scheme: {default: http}
      host: {default: pets.example.com}
      major: {default: "2"}
paths:
  /pets/{petId}:
    parameters:
      - name: petId
        in: path
        required: true
        schema: {type: integer}
    get:
      operationId: getPet
      summary: One pet
      tags: [pets]
      parameters:
        - name: verbose
          in: query
          schema: {type: boolean, default: false}
        - name: X-Trace
          in: header
          schema: {type: string, enum: [on, off]}
      responses:
        "200":
          description: The pet
          content:
            application/json:
              schema: {$ref: "#/components/schemas/Pet"}
              example: {id: 7, name: Rex}
        "404":
          description: No such pet
  /search?q={term}:
    get:
      operationId: search
      parameters:
        - name: q
          in: query
          required: true
          schema: {type: string}
      responses:
        2XX: {description: Found}
components:
  schemas:
    Pet:
      type: object
      properties:
        id: {type: integer}
        name: {type: string}
        friends:
          type: array
          items: {$ref: "#/components/schemas/Pet"}
"##;

#[tokio::test]
async fn templates_parameters_and_service_urls() {
    let app = TestApp::spawn().await;
    let api = import(&app, "pets", "pets", "openapi", PETS).await;
    assert_eq!(api["serviceUrl"], "http://pets.example.com/v2");
    assert_eq!(api["description"], "A few pets.");
    let ops = operations(&app, "pets").await;
    let get = &ops["getPet"];
    assert_eq!(get["displayName"], "One pet");
    assert_eq!(get["templateParameters"][0]["name"], "petId");
    assert_eq!(get["templateParameters"][0]["type"], "integer");
    assert_eq!(
        get["request"]["queryParameters"][0]["defaultValue"],
        "false"
    );
    assert_eq!(get["request"]["headers"][0]["values"], json!(["on", "off"]));
    let reps = &get["responses"][0]["representations"][0];
    assert_eq!(
        reps["examples"]["default"]["value"],
        json!({"id": 7, "name": "Rex"})
    );
    // The cycle is cut where the schema repeats.
    assert_eq!(
        reps["schema"]["properties"]["friends"]["items"],
        json!({"$ref": "#/components/schemas/Pet", "circular": true})
    );
    assert_eq!(get["responses"][1]["statusCode"], 404);
    // The query part of a path key stays in the template.
    let search = &ops["search"];
    assert_eq!(search["urlTemplate"], "/search?q={term}");
    assert_eq!(search["templateParameters"][0]["name"], "term");
    assert_eq!(search["templateParameters"][0]["required"], true);
    assert_eq!(search["request"], Value::Null);
    assert_eq!(search["responses"][0]["statusCode"], 200);

    // Body fields override what the document says.
    let api = app
        .put_ok(
            "/apis/pets",
            json!({"format": "openapi", "value": PETS, "displayName": "Mine",
                   "serviceUrl": app.echo_url(), "subscriptionRequired": false}),
        )
        .await;
    assert_eq!(api["displayName"], "Mine");
    assert_eq!(api["path"], "pets", "the path is kept on re-import");
    // The gateway routes the imported templates.
    let r = app.call("/pets/pets/42?verbose=true", None).await;
    assert_eq!(r.status(), 200);
    let echoed: Value = r.json().await.unwrap();
    assert_eq!(echoed["path"], "/pets/42");
    let r = app.call("/pets/search?q=rex", None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(app.call("/pets/search", None).await.status(), 404);
}

#[tokio::test]
async fn byte_order_marks_are_accepted() {
    let app = TestApp::spawn().await;
    let yaml = corpus("oai-v3.0-petstore-expanded.yaml");
    import(&app, "y", "y", "openapi", &format!("\u{FEFF}{yaml}")).await;
    assert_eq!(operations(&app, "y").await.len(), 4);
    let r = app.get("/apis/y?export=openapi").await;
    assert_eq!(r.text().await.unwrap(), yaml);
    let json = corpus("oai-v2.0-petstore.json");
    import(&app, "j", "j", "swagger-json", &format!("\u{FEFF}{json}")).await;
    assert_eq!(operations(&app, "j").await.len(), 3);
}

#[tokio::test]
async fn duplicate_operation_ids_are_made_unique() {
    let app = TestApp::spawn().await;
    let doc = json!({
        "openapi": "3.1.0",
        "info": {"title": "Dups"},
        "paths": {
            "/a": {"get": {"operationId": "fetch"}, "put": {"operationId": "fetch"}},
            "/b": {"get": {"operationId": "Fetch"}, "post": {"operationId": "do it!"}},
            "/c/{id}": {"delete": {}}
        }
    });
    import(&app, "d", "d", "openapi+json", &doc.to_string()).await;
    let ops = operations(&app, "d").await;
    let mut summary: Vec<(String, String, String)> = ops
        .iter()
        .map(|(id, op)| {
            (
                id.clone(),
                op["method"].as_str().unwrap().to_string(),
                op["displayName"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    summary.sort();
    let expected = [
        ("Fetch-3", "GET", "Fetch"),
        ("delete-c-id", "DELETE", "DELETE /c/{id}"),
        ("do-it", "POST", "do it!"),
        ("fetch", "GET", "fetch"),
        ("fetch-2", "PUT", "fetch"),
    ];
    let expected: Vec<(String, String, String)> = expected
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    assert_eq!(summary, expected);
}

const POLICY: &str = r#"<policies><inbound><base /><set-header name="X-Op" exists-action="override"><value>kept</value></set-header></inbound></policies>"#;

#[tokio::test]
async fn reimport_keeps_the_policies_of_surviving_operations() {
    let app = TestApp::spawn().await;
    let v1 = json!({"swagger": "2.0", "info": {"title": "V1"}, "paths": {
        "/a": {"get": {"operationId": "a"}},
        "/b": {"get": {"operationId": "b"}}
    }});
    app.put_ok(
        "/apis/r",
        json!({"format": "swagger-json", "value": v1.to_string(), "path": "r",
               "serviceUrl": app.echo_url(), "subscriptionRequired": false}),
    )
    .await;
    for op in ["a", "b"] {
        let r = app
            .put_xml(&format!("/apis/r/operations/{op}/policy"), POLICY)
            .await;
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }
    let v2 = json!({"swagger": "2.0", "info": {"title": "V2"}, "paths": {
        "/a/{x}": {"get": {"operationId": "a"}},
        "/c": {"get": {"operationId": "c"}}
    }});
    let before = revision(&app).await;
    let r = app
        .put(
            "/apis/r",
            json!({"format": "swagger-json", "value": v2.to_string()}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(revision(&app).await, before + 1, "one write");
    let api = app.get_json("/apis/r").await;
    assert_eq!(api["displayName"], "V2");
    assert_eq!(
        api["subscriptionRequired"], false,
        "settings survive a re-import"
    );
    assert_eq!(api["serviceUrl"], app.echo_url());
    let ops = operations(&app, "r").await;
    assert_eq!(ops.keys().collect::<Vec<_>>(), ["a", "c"]);
    assert_eq!(ops["a"]["urlTemplate"], "/a/{x}");
    assert_eq!(app.get("/apis/r/operations/a/policy").await.status(), 200);
    assert_eq!(app.get("/apis/r/operations/b/policy").await.status(), 404);
    assert_eq!(app.get("/apis/r/operations/b").await.status(), 404);
    // The kept policy still runs.
    let r = app.call("/r/a/1", None).await;
    let echoed: Value = r.json().await.unwrap();
    assert_eq!(echoed["headers"]["x-op"], "kept");
    // Deleting the API deletes its definition.
    assert_eq!(app.delete("/apis/r").await.status(), 204);
    app.put_ok("/apis/r", json!({"path": "r"})).await;
    assert_mgmt_error(
        app.get("/apis/r?export=openapi").await,
        404,
        "ResourceNotFound",
    )
    .await;
}

#[tokio::test]
async fn refused_documents_store_nothing() {
    let app = TestApp::spawn().await;
    let before = revision(&app).await;
    let cases: Vec<(&str, String, &str, &str)> = vec![
        ("openapi", "openapi: 3.0.0\npaths: {/a: [unclosed\n".into(), "value", "line"),
        ("openapi+json", "{\"openapi\": \"3.0.0\",\n \"paths\": }".into(), "value", "line 2"),
        ("openapi", "openapi: 4.0.0\npaths: {}\n".into(), "/openapi", "4.0.0"),
        ("swagger-json", r#"{"swagger": "1.2", "paths": {}}"#.into(), "/swagger", "1.2"),
        ("openapi", "info: {title: none}\n".into(), "/openapi", "missing"),
        ("openapi", "- just\n- a list\n".into(), "value", "object"),
        (
            "openapi",
            "openapi: 3.0.0\npaths:\n  /pets:\n    get:\n      responses:\n        '200':\n          description: ok\n          content:\n            application/json:\n              schema: {$ref: '#/components/schemas/Nope'}\n".into(),
            "/paths/~1pets/get/responses/200/content/application~1json/schema/$ref",
            "does not resolve",
        ),
        (
            "openapi",
            "openapi: 3.0.0\npaths:\n  /pets:\n    get:\n      responses: [1, 2]\n".into(),
            "/paths/~1pets/get/responses",
            "object",
        ),
        (
            "openapi",
            "openapi: 3.0.0\npaths:\n  /pets:\n    get:\n      responses: {abc: {description: x}}\n".into(),
            "/paths/~1pets/get/responses/abc",
            "status code",
        ),
        (
            "openapi",
            "openapi: 3.0.0\npaths:\n  /files/{name}.{ext}:\n    get: {}\n".into(),
            "/paths/~1files~1{name}.{ext}",
            "one {parameter}",
        ),
        (
            "openapi",
            "openapi: 3.0.0\npaths:\n  /a/{x}:\n    get: {}\n  /a/{y}:\n    get: {}\n".into(),
            "/paths/~1a~1{y}/get",
            "same requests",
        ),
        (
            "openapi",
            "openapi: 3.0.0\npaths:\n  /a:\n    get:\n      parameters: [{$ref: '#/components/parameters/p'}]\ncomponents:\n  parameters:\n    p: {$ref: '#/components/parameters/q'}\n    q: {$ref: '#/components/parameters/p'}\n".into(),
            "/paths/~1a/get/parameters/0/$ref",
            "circular",
        ),
        (
            "openapi",
            "openapi: 3.0.0\npaths:\n  /a:\n    $ref: 'other.yaml#/paths/a'\n".into(),
            "/paths/~1a/$ref",
            "not supported",
        ),
        (
            "openapi",
            "openapi: 3.0.0\npaths:\n  /a:\n    get:\n      parameters: [{in: query}]\n".into(),
            "/paths/~1a/get/parameters/0/name",
            "required",
        ),
    ];
    for (format, value, target, needle) in cases {
        let r = app
            .put(
                "/apis/bad",
                json!({"format": format, "value": value, "path": "bad"}),
            )
            .await;
        let message = refused(r, target).await;
        assert!(message.contains(needle), "{target}: {message}");
        assert_eq!(app.get("/apis/bad").await.status(), 404);
        assert_eq!(revision(&app).await, before);
    }
    // The body itself: format, value, path, unknown fields.
    let doc = "openapi: 3.0.0\npaths: {}\n";
    let bad_bodies = [
        (
            json!({"format": "wsdl", "value": doc, "path": "x"}),
            "format",
        ),
        (json!({"format": 3, "value": doc, "path": "x"}), "format"),
        (json!({"format": "openapi", "path": "x"}), "value"),
        (json!({"format": "openapi", "value": doc}), "path"),
        (
            json!({"format": "openapi", "value": doc, "path": "x", "colour": "red"}),
            "colour",
        ),
        (
            json!({"format": "openapi", "value": doc, "path": "x", "id": "other"}),
            "id",
        ),
    ];
    for (body, target) in bad_bodies {
        refused(app.put("/apis/bad", body).await, target).await;
    }
    assert_eq!(revision(&app).await, before);
    // A path taken by another API is a conflict, as for any PUT.
    app.put_ok("/apis/first", json!({"path": "taken"})).await;
    let r = app
        .put(
            "/apis/second",
            json!({"format": "openapi", "value": doc, "path": "taken"}),
        )
        .await;
    assert_mgmt_error(r, 409, "Conflict").await;
}

#[tokio::test]
async fn ref_cycles_and_bombs_are_bounded() {
    let app = TestApp::spawn().await;
    // Mutually recursive schemas import; the cycle is cut.
    let cyclic = r##"openapi: 3.1.0
paths:
  /tree:
    get:
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema: {$ref: "#/components/schemas/Node"}
components:
  schemas:
    Node:
      type: object
      properties:
        children: {type: array, items: {$ref: "#/components/schemas/Forest"}}
    Forest: {$ref: "#/components/schemas/Node"}
"##;
    let started = std::time::Instant::now();
    import(&app, "tree", "tree", "openapi", cyclic).await;
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    let ops = operations(&app, "tree").await;
    let schema = &ops["get-tree"]["responses"][0]["representations"][0]["schema"];
    assert_eq!(schema["properties"]["children"]["items"]["circular"], true);

    // Each schema referring to the previous one ten times: refused, named.
    let mut schemas = serde_json::Map::new();
    schemas.insert("s0".into(), json!({"type": "string"}));
    for i in 1..12 {
        let r = json!({"$ref": format!("#/components/schemas/s{}", i - 1)});
        schemas.insert(
            format!("s{i}"),
            json!({"type": "object", "allOf": vec![r; 10]}),
        );
    }
    let bomb = json!({"openapi": "3.0.0", "paths": {"/b": {"get": {"responses": {"200": {
        "description": "x",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/s11"}}}
    }}}}}, "components": {"schemas": schemas}});
    let r = app
        .put(
            "/apis/bomb",
            json!({"format": "openapi+json", "value": bomb.to_string(), "path": "bomb"}),
        )
        .await;
    let v = assert_mgmt_error(r, 400, "ValidationError").await;
    let detail = &v["error"]["details"][0];
    assert!(
        detail["target"]
            .as_str()
            .unwrap()
            .starts_with("/components/schemas/s"),
        "{v}"
    );
    assert!(
        detail["message"].as_str().unwrap().contains("exceed"),
        "{v}"
    );

    // A YAML alias bomb is refused too.
    let mut lol =
        String::from("openapi: 3.0.0\nx-a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..9 {
        let p = i - 1;
        lol.push_str(&format!(
            "x-a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    lol.push_str("paths: {}\n");
    let r = app
        .put(
            "/apis/lol",
            json!({"format": "openapi", "value": lol, "path": "lol"}),
        )
        .await;
    refused(r, "value").await;
}

#[tokio::test]
async fn mock_response_returns_the_imported_example() {
    let app = TestApp::spawn().await;
    app.put_ok(
        "/apis/mock",
        json!({"format": "openapi", "value": PETS, "path": "mock", "subscriptionRequired": false}),
    )
    .await;
    let r = app
        .put_xml(
            "/apis/mock/policy",
            r#"<policies><inbound><mock-response status-code="200" content-type="application/json"/></inbound></policies>"#,
        )
        .await;
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let r = app.call("/mock/pets/7", None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"id": 7, "name": "Rex"})
    );

    // Without an example in the document, one made from the schema.
    let doc = corpus("oai-v2.0-petstore.json");
    app.put_ok(
        "/apis/store",
        json!({"format": "swagger-json", "value": doc, "path": "store"}),
    )
    .await;
    let key = app.subscription("s", "/apis/store").await;
    let r = app
        .put_xml(
            "/apis/store/operations/showPetById/policy",
            r#"<policies><inbound><mock-response status-code="200" content-type="application/json"/></inbound></policies>"#,
        )
        .await;
    assert!(r.status().is_success());
    let r = app.call("/store/pets/1", Some(&key)).await;
    assert_eq!(r.status(), 200);
    // (The document answers showPetById with the `Pets` array.)
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!([{"id": 0, "name": "string", "tag": "string"}])
    );
}

/// A local server for linked documents.
async fn spec_server(doc: String, big: usize) -> std::net::SocketAddr {
    backend::spawn(move |req| {
        let doc = doc.clone();
        async move {
            let path = req.uri().path().to_string();
            let redirect = |to: &str| {
                hyper::Response::builder()
                    .status(302)
                    .header("location", to)
                    .body(full(""))
                    .unwrap()
            };
            match path.as_str() {
                "/specs/pets.yaml" => hyper::Response::new(full(doc)),
                "/r1" => redirect("/r2"),
                "/r2" => redirect("specs/pets.yaml"),
                "/loop" => redirect("/loop"),
                "/big" => hyper::Response::new(backend::generated(big)),
                "/slow" => {
                    tokio::time::sleep(std::time::Duration::from_secs(30)).await;
                    hyper::Response::new(full(doc))
                }
                _ => hyper::Response::builder()
                    .status(404)
                    .body(full("no"))
                    .unwrap(),
            }
        }
    })
    .await
}

#[tokio::test]
async fn linked_documents_are_fetched() {
    let app = TestApp::spawn_with(|s| s.management.max_body_bytes = 64 * 1024).await;
    let doc = PETS.replace("{scheme}://{host}/v{major}", "/v{major}");
    let addr = spec_server(doc.clone(), 100 * 1024).await;
    let base = format!("http://{addr}");
    let api = app
        .put_ok(
            "/apis/linked",
            json!({"format": "openapi-link", "value": format!("{base}/specs/pets.yaml"), "path": "linked"}),
        )
        .await;
    // A relative server URL is resolved against the link.
    assert_eq!(api["serviceUrl"], format!("{base}/v2"));
    assert_eq!(operations(&app, "linked").await.len(), 2);
    let r = app.get("/apis/linked?export=openapi").await;
    assert_eq!(r.text().await.unwrap(), doc);
    // Redirects: up to three.
    app.put_ok(
        "/apis/redirected",
        json!({"format": "openapi-link", "value": format!("{base}/r1"), "path": "redirected"}),
    )
    .await;
    let before = revision(&app).await;
    let cases = [
        (format!("{base}/loop"), "redirects"),
        (format!("{base}/missing"), "404"),
        (format!("{base}/big"), "larger than 65536 bytes"),
        ("ftp://example.com/spec.yaml".to_string(), "http"),
        ("not a url".to_string(), "http"),
        ("http://127.0.0.1:1/spec.yaml".to_string(), "cannot fetch"),
    ];
    for (url, needle) in cases {
        let r = app
            .put(
                "/apis/l2",
                json!({"format": "openapi-link", "value": url, "path": "l2"}),
            )
            .await;
        let message = refused(r, "value").await;
        assert!(message.contains(needle), "{url}: {message}");
    }
    // A linked Swagger document must be JSON.
    let r = app
        .put(
            "/apis/l2",
            json!({"format": "swagger-link-json", "value": format!("{base}/specs/pets.yaml"), "path": "l2"}),
        )
        .await;
    assert!(refused(r, "value").await.contains("JSON"));
    assert_eq!(revision(&app).await, before);
}

#[tokio::test]
async fn slow_links_time_out() {
    let app = TestApp::spawn().await;
    let addr = spec_server(PETS.to_string(), 0).await;
    let started = std::time::Instant::now();
    let r = app
        .put(
            "/apis/slow",
            json!({"format": "openapi-link", "value": format!("http://{addr}/slow"), "path": "slow"}),
        )
        .await;
    let message = refused(r, "value").await;
    assert!(message.contains("longer than 10 s"), "{message}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

#[tokio::test]
async fn definitions_survive_a_restart() {
    let app = TestApp::spawn().await;
    let text = corpus("oai-v3.0-uspto.yaml");
    import(&app, "u", "u", "openapi", &text).await;
    let dir = app.stop().await;
    let settings = common::test_settings(dir.path());
    let app = TestApp::start(dir, settings).await;
    let r = app.get("/apis/u?export=openapi").await;
    assert_eq!(r.text().await.unwrap(), text);
    assert_eq!(operations(&app, "u").await.len(), 3);
}

#[tokio::test]
async fn a_large_definition_imports() {
    let app = TestApp::spawn_with(|s| s.management.max_body_bytes = 32 * 1024 * 1024).await;
    let doc = common::large_spec::large_spec(500, 40);
    assert!(doc.len() > 3_000_000, "{}", doc.len());
    import(&app, "large", "large", "openapi+json", &doc).await;
    let ops = operations(&app, "large").await;
    assert_eq!(ops.len(), 1000);
    assert_eq!(ops["getThing499"]["urlTemplate"], "/things499/{id}");
    assert_eq!(ops["putThing0"]["method"], "PUT");
    let rep = &ops["getThing7"]["responses"][0]["representations"][0];
    assert_eq!(
        rep["schema"]["properties"]["owner"]["properties"]["email"]["format"],
        "email"
    );
    assert_eq!(rep["examples"]["default"]["value"]["field1"], "value 1");
    assert_eq!(
        ops["putThing3"]["request"]["representations"][0]["schema"]["required"],
        json!(["field0"])
    );
    let api = app.get_json("/apis/large").await;
    assert_eq!(api["tags"].as_array().unwrap().len(), 10);
    let r = app.get("/apis/large?export=openapi").await;
    assert_eq!(r.text().await.unwrap(), doc);
}
