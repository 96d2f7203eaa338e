//! Swagger 2.0: `schemes`/`host`/`basePath`, path items, parameters
//! (`body` and `formData` become request representations), `consumes` ×
//! body schema and `produces` × response schemas.

use super::params::{merge, parameters, template_parameters, P};
use super::schema::{default_example, example, type_of, Param};
use super::{
    is_form, is_json, path_key, ptr, service_url, status_codes, strings_of, tag_names, template,
    text_of, Converted, Cx, Draft, METHODS,
};
use crate::error::Detail;

/// Where a parameter may be (`in`).
const LOCATIONS: &[&str] = &["path", "query", "header", "body", "formData"];
use serde_json::{json, Map, Value};

/// The methods Swagger 2.0 path items may hold (no `trace`).
fn is_method(key: &str) -> Option<&'static str> {
    METHODS.iter().copied().find(|m| *m == key && *m != "trace")
}

pub(super) fn convert(cx: &mut Cx<'_>, base: Option<&str>) -> Result<Converted, Detail> {
    let doc = cx.doc;
    let info = doc.get("info");
    let media = Media {
        consumes: media_list(doc, "consumes"),
        produces: media_list(doc, "produces"),
    };
    let mut drafts = Vec::new();
    match doc.get("paths") {
        None | Some(Value::Null) => {}
        Some(Value::Object(paths)) => {
            for (key, item) in paths {
                if !key.starts_with("x-") {
                    path_item(cx, &media, key, item, &mut drafts)?;
                }
            }
        }
        Some(_) => return Err(Detail::new("/paths", "must be an object")),
    }
    Ok(Converted {
        title: info.and_then(|i| text_of(i, "title")),
        description: info.and_then(|i| text_of(i, "description")),
        service_url: server_url(doc, base),
        tags: tag_names(doc),
        drafts,
    })
}

/// `{scheme}://{host}{basePath}`: https when listed, else the first
/// scheme; the host (and the scheme when none is listed) of the URL the
/// document came from when it names none.
pub(super) fn server_url(doc: &Value, base: Option<&str>) -> Option<String> {
    let base: Option<http::Uri> = base.and_then(|b| b.parse().ok());
    let schemes: Vec<String> = strings_of(doc, "schemes")
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let scheme = if schemes.iter().any(|s| s == "https") {
        "https".to_string()
    } else if let Some(first) = schemes.first() {
        first.clone()
    } else if let Some(s) = base.as_ref().and_then(|b| b.scheme_str()) {
        s.to_string()
    } else {
        "http".to_string()
    };
    let host = match doc.get("host").and_then(Value::as_str) {
        Some(h) => h.to_string(),
        None => base.as_ref()?.authority()?.to_string(),
    };
    let base_path = doc.get("basePath").and_then(Value::as_str).unwrap_or("");
    let sep = if base_path.starts_with('/') || base_path.is_empty() {
        ""
    } else {
        "/"
    };
    service_url(&format!("{scheme}://{host}{sep}{base_path}"))
}

/// The document's `consumes` and `produces`.
struct Media {
    consumes: Option<Vec<String>>,
    produces: Option<Vec<String>>,
}

fn media_list(v: &Value, key: &str) -> Option<Vec<String>> {
    v.get(key)
        .is_some_and(Value::is_array)
        .then(|| strings_of(v, key))
}

fn path_item<'a>(
    cx: &mut Cx<'a>,
    media: &Media,
    key: &str,
    item: &'a Value,
    out: &mut Vec<Draft>,
) -> Result<(), Detail> {
    let at = ptr("/paths", key);
    let (item, item_at) = cx.deref(item, &at)?;
    let Some(obj) = item.as_object() else {
        return Err(Detail::new(item_at, "a path item must be an object"));
    };
    let path = path_key(key);
    let t = template::parse(&path).map_err(|m| Detail::new(&at, m))?;
    let shared = parameters(
        cx,
        obj.get("parameters"),
        &ptr(&item_at, "parameters"),
        LOCATIONS,
    )?;
    for (method_key, op) in obj {
        let Some(method) = is_method(method_key) else {
            continue;
        };
        let op_at = ptr(&item_at, method_key);
        if !op.is_object() {
            return Err(Detail::new(op_at, "an operation must be an object"));
        }
        let own = parameters(
            cx,
            op.get("parameters"),
            &ptr(&op_at, "parameters"),
            LOCATIONS,
        )?;
        let params = merge(&shared, own, |q, p| {
            (q.name == p.name && q.location == p.location)
                || (q.location == "body" && p.location == "body")
        });
        out.push(operation(cx, media, &path, &t, method, op, op_at, &params)?);
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn operation<'a>(
    cx: &mut Cx<'a>,
    media: &Media,
    path: &str,
    t: &template::Template,
    method: &'static str,
    op: &'a Value,
    at: String,
    params: &[P<'a>],
) -> Result<Draft, Detail> {
    let consumes = media_list(op, "consumes")
        .or_else(|| media.consumes.clone())
        .unwrap_or_default();
    let produces = media_list(op, "produces")
        .or_else(|| media.produces.clone())
        .unwrap_or_default();
    let template_parameters = template_parameters(cx, t, params, contract)?;
    let mut query = Vec::new();
    let mut headers = Vec::new();
    let mut form = Vec::new();
    let mut description = None;
    let mut representations = Vec::new();
    for p in params {
        match p.location.as_str() {
            "query" if !t.query_params.iter().any(|(q, _)| *q == p.name) => {
                query.push(contract(cx, p)?)
            }
            "header"
                if !["accept", "content-type", "authorization"]
                    .contains(&p.name.to_ascii_lowercase().as_str()) =>
            {
                headers.push(contract(cx, p)?)
            }
            "formData" => form.push(contract(cx, p)?),
            "body" => {
                description = text_of(p.v, "description");
                representations = body(cx, p, &consumes)?;
            }
            _ => {}
        }
    }
    if !form.is_empty() {
        let file = params.iter().any(|p| {
            p.location == "formData" && p.v.get("type").and_then(Value::as_str) == Some("file")
        });
        let mut types: Vec<String> = consumes.iter().filter(|c| is_form(c)).cloned().collect();
        if types.is_empty() {
            types.push(if file {
                "multipart/form-data".into()
            } else {
                "application/x-www-form-urlencoded".into()
            });
        }
        for ct in types {
            representations.push(json!({"contentType": ct, "formParameters": form.clone()}));
        }
    }
    let request = (description.is_some()
        || !query.is_empty()
        || !headers.is_empty()
        || !representations.is_empty())
    .then(|| {
        let mut r = Map::new();
        if let Some(d) = description {
            r.insert("description".into(), Value::String(d));
        }
        r.insert("queryParameters".into(), Value::Array(query));
        r.insert("headers".into(), Value::Array(headers));
        r.insert("representations".into(), Value::Array(representations));
        Value::Object(r)
    });
    let responses = responses(cx, &produces, op.get("responses"), &ptr(&at, "responses"))?;
    Ok(Draft {
        path: path.to_string(),
        shape: t.shape.clone(),
        method,
        operation_id: text_of(op, "operationId"),
        summary: text_of(op, "summary"),
        description: text_of(op, "description"),
        tags: strings_of(op, "tags"),
        template_parameters,
        request,
        responses,
        at,
    })
}

/// The `in: body` parameter as one representation per `consumes` type
/// (`application/json` when none is declared).
fn body<'a>(cx: &mut Cx<'a>, p: &P<'a>, consumes: &[String]) -> Result<Vec<Value>, Detail> {
    let schema = match p.v.get("schema") {
        Some(s) => Some(cx.schema(s, &ptr(&p.at, "schema"))?),
        None => None,
    };
    let named = match p.v.get("x-examples") {
        Some(Value::Object(m)) => Some(m),
        _ => None,
    };
    let types: Vec<String> = if consumes.is_empty() {
        vec!["application/json".into()]
    } else {
        consumes.to_vec()
    };
    let mut out = Vec::with_capacity(types.len());
    for ct in types {
        let examples = match named.and_then(|m| m.get(&ct)) {
            Some(e) => Some(default_example(
                cx.copy(e, &ptr(&ptr(&p.at, "x-examples"), &ct))?,
            )),
            None => schema
                .as_ref()
                .filter(|_| is_json(&ct))
                .and_then(example)
                .map(default_example),
        };
        out.push(representation(ct, schema.clone(), examples));
    }
    Ok(out)
}

fn representation(ct: String, schema: Option<Value>, examples: Option<Value>) -> Value {
    let mut rep = Map::new();
    rep.insert("contentType".into(), Value::String(ct));
    if let Some(e) = examples {
        rep.insert("examples".into(), e);
    }
    if let Some(s) = schema {
        rep.insert("schema".into(), s);
    }
    Value::Object(rep)
}

/// The keywords of a non-body parameter (or a header) that describe its
/// value: they make its schema.
const VALUE_KEYWORDS: [&str; 16] = [
    "type",
    "format",
    "items",
    "collectionFormat",
    "enum",
    "default",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "uniqueItems",
];

fn contract<'a>(cx: &mut Cx<'a>, p: &P<'a>) -> Result<Value, Detail> {
    described(cx, p.v, &p.at, p.name.clone(), p.location == "path")
}

/// A non-body Parameter or a Header Object as a ParameterContract.
fn described<'a>(
    cx: &mut Cx<'a>,
    v: &'a Value,
    at: &str,
    name: String,
    always_required: bool,
) -> Result<Value, Detail> {
    let mut schema = Map::new();
    for k in VALUE_KEYWORDS {
        if let Some(x) = v.get(k) {
            schema.insert(k.to_string(), cx.copy(x, &ptr(at, k))?);
        }
    }
    let examples = match v.get("x-example") {
        Some(e) => Some(default_example(cx.copy(e, &ptr(at, "x-example"))?)),
        None => None,
    };
    let required = always_required || v.get("required").and_then(Value::as_bool).unwrap_or(false);
    let schema = Value::Object(schema);
    Ok(Param {
        name,
        kind: type_of(&schema),
        required,
        description: text_of(v, "description"),
        default: schema.get("default").cloned(),
        values: schema
            .get("enum")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        schema: Some(schema),
        examples,
    }
    .into_contract())
}

fn responses<'a>(
    cx: &mut Cx<'a>,
    produces: &[String],
    v: Option<&'a Value>,
    at: &str,
) -> Result<Vec<Value>, Detail> {
    let map = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(map)) => map,
        Some(_) => {
            return Err(Detail::new(
                at,
                "must be an object mapping status codes to responses",
            ))
        }
    };
    let mut out = Vec::new();
    for (key, status) in status_codes(map.keys(), at)? {
        let Some(r) = map.get(key) else { continue };
        let (r, r_at) = cx.deref(r, &ptr(at, key))?;
        if !r.is_object() {
            return Err(Detail::new(r_at, "a response must be an object"));
        }
        let mut headers = Vec::new();
        if let Some(Value::Object(hs)) = r.get("headers") {
            let hs_at = ptr(&r_at, "headers");
            for (name, h) in hs {
                if name.eq_ignore_ascii_case("content-type") {
                    continue;
                }
                headers.push(described(cx, h, &ptr(&hs_at, name), name.clone(), false)?);
            }
        }
        let schema = match r.get("schema") {
            Some(s) => Some(cx.schema(s, &ptr(&r_at, "schema"))?),
            None => None,
        };
        let examples = match r.get("examples") {
            Some(Value::Object(m)) => Some(m),
            _ => None,
        };
        let mut types: Vec<String> = if produces.is_empty() && schema.is_some() {
            vec!["application/json".into()]
        } else if schema.is_some() || examples.is_some() {
            produces.to_vec()
        } else {
            Vec::new()
        };
        for ct in examples.into_iter().flat_map(|m| m.keys()) {
            if !types.contains(ct) {
                types.push(ct.clone());
            }
        }
        let mut representations = Vec::with_capacity(types.len());
        for ct in types {
            let given = match examples.and_then(|m| m.get(&ct)) {
                Some(e) => Some(default_example(
                    cx.copy(e, &ptr(&ptr(&r_at, "examples"), &ct))?,
                )),
                None => None,
            };
            let examples = given.or_else(|| {
                schema
                    .as_ref()
                    .filter(|_| is_json(&ct))
                    .and_then(example)
                    .map(default_example)
            });
            representations.push(representation(ct, schema.clone(), examples));
        }
        out.push(json!({
            "statusCode": status,
            "description": text_of(r, "description").unwrap_or_default(),
            "representations": representations,
            "headers": headers,
        }));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_urls() {
        let doc = json!({"schemes": ["http", "https"], "host": "httpbin.org"});
        assert_eq!(
            server_url(&doc, None).as_deref(),
            Some("https://httpbin.org")
        );
        let doc = json!({"schemes": ["http"], "host": "petstore.swagger.io", "basePath": "/v1"});
        assert_eq!(
            server_url(&doc, None).as_deref(),
            Some("http://petstore.swagger.io/v1")
        );
        let doc = json!({"basePath": "/api"});
        assert_eq!(server_url(&doc, None), None);
        assert_eq!(
            server_url(&doc, Some("https://spec.example:8443/swagger.json")).as_deref(),
            Some("https://spec.example:8443/api")
        );
        let doc = json!({"schemes": ["ws"], "host": "x.example"});
        assert_eq!(server_url(&doc, None), None);
    }
}
