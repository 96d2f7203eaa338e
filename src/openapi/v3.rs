//! OpenAPI 3.0.x and 3.1.x: servers, path items, parameters, request
//! bodies and responses.
//!
//! Callbacks, links and 3.1 `webhooks` describe requests the API makes,
//! not requests it serves: they are not operations (a webhook-only
//! document imports with none). Header parameters named `Accept`,
//! `Content-Type` or `Authorization` are ignored, as the specification
//! says; cookie parameters are not documented (APIM has no place for them).

use super::params::{merge, parameters, template_parameters, P};
use super::schema::{default_example, example, type_of, Param};
use super::{
    is_form, is_json, join_url, path_key, ptr, service_url, status_codes, strings_of, tag_names,
    template, text_of, Converted, Cx, Draft, METHODS,
};
use crate::error::Detail;

/// Where a parameter may be (`in`).
const LOCATIONS: &[&str] = &["path", "query", "header", "cookie"];
use serde_json::{json, Map, Value};

pub(super) fn convert(cx: &mut Cx<'_>, base: Option<&str>) -> Result<Converted, Detail> {
    let doc = cx.doc;
    let info = doc.get("info");
    let mut drafts = Vec::new();
    match doc.get("paths") {
        None | Some(Value::Null) => {}
        Some(Value::Object(paths)) => {
            for (key, item) in paths {
                if !key.starts_with("x-") {
                    path_item(cx, key, item, &mut drafts)?;
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

/// `servers[0].url` with its variables at their defaults, resolved
/// against `base` when relative (a document without servers is served
/// from `/`).
fn server_url(doc: &Value, base: Option<&str>) -> Option<String> {
    let first = doc
        .get("servers")
        .and_then(Value::as_array)
        .and_then(|s| s.first());
    let url = match first {
        Some(server) => substitute(server.get("url")?.as_str()?, server.get("variables")),
        None => "/".to_string(),
    };
    match service_url(&url) {
        Some(u) => Some(u),
        None => service_url(&join_url(base?, &url)?),
    }
}

/// Replaces each `{name}` of a server URL by its variable's default;
/// unknown names stay as they are.
pub(super) fn substitute(url: &str, variables: Option<&Value>) -> String {
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(open) = rest.find('{') {
        let Some(len) = rest[open..].find('}') else {
            break;
        };
        let name = &rest[open + 1..open + len];
        out.push_str(&rest[..open]);
        match variables
            .and_then(|v| v.get(name))
            .and_then(|v| v.get("default"))
            .and_then(Value::as_str)
        {
            Some(value) => out.push_str(value),
            None => out.push_str(&rest[open..=open + len]),
        }
        rest = &rest[open + len + 1..];
    }
    out.push_str(rest);
    out
}

fn path_item<'a>(
    cx: &mut Cx<'a>,
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
        let Some(method) = METHODS.iter().find(|m| **m == method_key.as_str()) else {
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
            q.name == p.name && q.location == p.location
        });
        out.push(operation(cx, &path, &t, method, op, op_at, &params)?);
    }
    Ok(())
}

fn operation<'a>(
    cx: &mut Cx<'a>,
    path: &str,
    t: &template::Template,
    method: &'static str,
    op: &'a Value,
    at: String,
    params: &[P<'a>],
) -> Result<Draft, Detail> {
    let template_parameters = template_parameters(cx, t, params, contract)?;
    let mut query = Vec::new();
    let mut headers = Vec::new();
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
            _ => {}
        }
    }
    let mut description = None;
    let mut representations = Vec::new();
    if let Some(body) = op.get("requestBody") {
        let (body, body_at) = cx.deref(body, &ptr(&at, "requestBody"))?;
        if !body.is_object() {
            return Err(Detail::new(body_at, "a request body must be an object"));
        }
        description = text_of(body, "description");
        representations = content(cx, body.get("content"), &ptr(&body_at, "content"))?;
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
    let responses = responses(cx, op.get("responses"), &ptr(&at, "responses"))?;
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

/// A parameter or header as a ParameterContract.
fn contract<'a>(cx: &mut Cx<'a>, p: &P<'a>) -> Result<Value, Detail> {
    described(cx, p.v, &p.at, p.name.clone(), p.location == "path")
}

/// A Parameter or Header Object (`v`, at `at`) as a ParameterContract.
fn described<'a>(
    cx: &mut Cx<'a>,
    v: &'a Value,
    at: &str,
    name: String,
    always_required: bool,
) -> Result<Value, Detail> {
    let schema = match (v.get("schema"), v.get("content")) {
        (Some(s), _) => Some(cx.schema(s, &ptr(at, "schema"))?),
        (None, Some(Value::Object(content))) => match content.iter().next() {
            Some((ct, media)) => match media.get("schema") {
                Some(s) => Some(cx.schema(s, &ptr(&ptr(&ptr(at, "content"), ct), "schema"))?),
                None => None,
            },
            None => None,
        },
        _ => None,
    };
    let mut examples = match (v.get("example"), v.get("examples")) {
        (Some(e), _) => Some(default_example(cx.copy(e, &ptr(at, "example"))?)),
        (None, Some(Value::Object(map))) => examples_map(cx, map, &ptr(at, "examples"))?,
        _ => None,
    };
    if examples.is_none() {
        examples = schema
            .as_ref()
            .and_then(|s| s.get("example"))
            .map(|e| default_example(e.clone()));
    }
    let required = always_required || v.get("required").and_then(Value::as_bool).unwrap_or(false);
    Ok(Param {
        name,
        kind: schema.as_ref().map_or_else(|| "string".into(), type_of),
        required,
        description: text_of(v, "description"),
        default: schema.as_ref().and_then(|s| s.get("default")).cloned(),
        values: schema
            .as_ref()
            .and_then(|s| s.get("enum"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        schema,
        examples,
    }
    .into_contract())
}

/// A map of Example Objects as APIM's examples: name → {summary,
/// description, value, externalValue}.
fn examples_map<'a>(
    cx: &mut Cx<'a>,
    map: &'a Map<String, Value>,
    at: &str,
) -> Result<Option<Value>, Detail> {
    let mut out = Map::new();
    for (name, ex) in map {
        let (ex, ex_at) = cx.deref(ex, &ptr(at, name))?;
        let mut entry = Map::new();
        for k in ["summary", "description", "externalValue"] {
            if let Some(s) = ex.get(k).and_then(Value::as_str) {
                entry.insert(k.into(), Value::String(s.to_string()));
            }
        }
        if let Some(v) = ex.get("value") {
            entry.insert("value".into(), cx.copy(v, &ptr(&ex_at, "value"))?);
        }
        out.insert(name.clone(), Value::Object(entry));
    }
    Ok((!out.is_empty()).then_some(Value::Object(out)))
}

/// A `content` map as representations: content type, schema (inlined),
/// examples (the document's, else one made from the schema for JSON),
/// and the fields of a form as `formParameters`.
fn content<'a>(cx: &mut Cx<'a>, v: Option<&'a Value>, at: &str) -> Result<Vec<Value>, Detail> {
    let map = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(map)) => map,
        Some(_) => {
            return Err(Detail::new(
                at,
                "must map media types to Media Type Objects",
            ))
        }
    };
    let mut out = Vec::with_capacity(map.len());
    for (ct, media) in map {
        let m_at = ptr(at, ct);
        let (media, m_at) = cx.deref(media, &m_at)?;
        if !media.is_object() {
            return Err(Detail::new(m_at, "a media type entry must be an object"));
        }
        let schema = match media.get("schema") {
            Some(s) => Some(cx.schema(s, &ptr(&m_at, "schema"))?),
            None => None,
        };
        let examples = match (media.get("example"), media.get("examples")) {
            (Some(e), _) => Some(default_example(cx.copy(e, &ptr(&m_at, "example"))?)),
            (None, Some(Value::Object(map))) => examples_map(cx, map, &ptr(&m_at, "examples"))?,
            _ => None,
        };
        let examples = examples.or_else(|| {
            schema
                .as_ref()
                .filter(|_| is_json(ct))
                .and_then(example)
                .map(default_example)
        });
        let mut rep = Map::new();
        rep.insert("contentType".into(), Value::String(ct.clone()));
        if let Some(e) = examples {
            rep.insert("examples".into(), e);
        }
        if let (true, Some(s)) = (is_form(ct), &schema) {
            let fields = form_parameters(s);
            if !fields.is_empty() {
                rep.insert("formParameters".into(), Value::Array(fields));
            }
        }
        if let Some(s) = schema {
            rep.insert("schema".into(), s);
        }
        out.push(Value::Object(rep));
    }
    Ok(out)
}

/// The properties of a form's (inlined) schema as ParameterContracts.
fn form_parameters(schema: &Value) -> Vec<Value> {
    let required = strings_of(schema, "required");
    let Some(Value::Object(props)) = schema.get("properties") else {
        return Vec::new();
    };
    props
        .iter()
        .map(|(name, prop)| {
            Param {
                name: name.clone(),
                kind: type_of(prop),
                required: required.contains(name),
                description: text_of(prop, "description"),
                default: prop.get("default").cloned(),
                values: prop
                    .get("enum")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
                schema: None,
                examples: None,
            }
            .into_contract()
        })
        .collect()
}

fn responses<'a>(cx: &mut Cx<'a>, v: Option<&'a Value>, at: &str) -> Result<Vec<Value>, Detail> {
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
                let (h, h_at) = cx.deref(h, &ptr(&hs_at, name))?;
                headers.push(described(cx, h, &h_at, name.clone(), false)?);
            }
        }
        let representations = content(cx, r.get("content"), &ptr(&r_at, "content"))?;
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
    fn server_variables() {
        let vars = json!({"scheme": {"default": "https", "enum": ["https", "http"]},
                          "port": {"default": "8443"}});
        assert_eq!(
            substitute("{scheme}://api.example.com:{port}/v1", Some(&vars)),
            "https://api.example.com:8443/v1"
        );
        assert_eq!(
            substitute("{scheme}://x/{unknown}/", Some(&vars)),
            "https://x/{unknown}/"
        );
        assert_eq!(substitute("http://x/{open", None), "http://x/{open");
        let doc = json!({"servers": [{"url": "{scheme}://developer.uspto.gov/ds-api",
                                      "variables": {"scheme": {"default": "https"}}}]});
        assert_eq!(
            server_url(&doc, None).as_deref(),
            Some("https://developer.uspto.gov/ds-api")
        );
        let doc = json!({"servers": [{"url": "/api/v3"}]});
        assert_eq!(server_url(&doc, None), None);
        assert_eq!(
            server_url(&doc, Some("http://127.0.0.1:9/spec/openapi.yaml")).as_deref(),
            Some("http://127.0.0.1:9/api/v3")
        );
        assert_eq!(
            server_url(&json!({}), Some("http://127.0.0.1:9/openapi.json")).as_deref(),
            Some("http://127.0.0.1:9")
        );
    }
}
