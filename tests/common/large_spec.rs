//! A generated OpenAPI 3.0 definition for size tests and the import bench:
//! `paths` paths with a GET and a PUT each, one schema of `props`
//! documented properties per path, shared error responses.

use serde_json::{json, Map, Value};

pub fn large_spec(paths: usize, props: usize) -> String {
    let mut p = Map::new();
    let mut schemas = Map::new();
    for i in 0..paths {
        let mut properties = Map::new();
        for j in 0..props {
            properties.insert(
                format!("field{j}"),
                json!({
                    "type": if j % 3 == 0 { "integer" } else { "string" },
                    "description": format!("Field {j} of thing {i}: what it holds, its unit and when it may be absent."),
                    "example": if j % 3 == 0 { json!(j) } else { json!(format!("value {j}")) }
                }),
            );
        }
        properties.insert(
            "owner".into(),
            json!({"$ref": "#/components/schemas/Owner"}),
        );
        schemas.insert(
            format!("Thing{i}"),
            json!({"type": "object", "required": ["field0"], "properties": properties}),
        );
        let thing = json!({"$ref": format!("#/components/schemas/Thing{i}")});
        p.insert(
            format!("/things{i}/{{id}}"),
            json!({
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "get": {
                    "operationId": format!("getThing{i}"),
                    "summary": format!("Get thing {i}"),
                    "tags": [format!("group{}", i % 10)],
                    "parameters": [{"name": "expand", "in": "query", "schema": {"type": "boolean"}}],
                    "responses": {
                        "200": {"description": "The thing", "content": {"application/json": {"schema": thing.clone()}}},
                        "404": {"$ref": "#/components/responses/NotFound"}
                    }
                },
                "put": {
                    "operationId": format!("putThing{i}"),
                    "requestBody": {"content": {"application/json": {"schema": thing}}},
                    "responses": {"204": {"description": "Stored"}, "404": {"$ref": "#/components/responses/NotFound"}}
                }
            }),
        );
    }
    schemas.insert(
        "Owner".into(),
        json!({"type": "object", "properties": {
            "id": {"type": "string", "format": "uuid"}, "email": {"type": "string", "format": "email"}
        }}),
    );
    schemas.insert(
        "Error".into(),
        json!({"type": "object", "properties": {"code": {"type": "integer"}, "message": {"type": "string"}}}),
    );
    let doc: Value = json!({
        "openapi": "3.0.3",
        "info": {"title": "Large", "version": "1"},
        "servers": [{"url": "https://large.example.com/api"}],
        "paths": p,
        "components": {
            "schemas": schemas,
            "responses": {"NotFound": {"description": "Not found", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Error"}}}}}
        }
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}
