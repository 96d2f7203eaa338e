//! OpenAPI and Swagger import: a definition document in, an API's
//! documentation and one [`Operation`] per path and method out.
//!
//! Owns: reading the document (JSON or YAML, a UTF-8 byte-order mark
//! allowed, YAML aliases bounded: `parse.rs`), checking its version
//! (Swagger 2.0, OpenAPI 3.0.x and 3.1.x), resolving `$ref`s within the
//! document (`refs.rs`), inlining schemas with cycles cut and the total
//! size bounded, synthesising examples and APIM's ParameterContract
//! (`schema.rs`), the two dialects (`v2.rs`, `v3.rs`), URL templates as
//! the gateway's router accepts them (`template.rs`) and operation ids
//! (`ids.rs`).
//!
//! [`import`] is pure: no network, no store. Fetching a linked document is
//! the management plane's job; it hands the bytes (and the URL they came
//! from, for relative server URLs) to [`import`] and turns the result into
//! one atomic write.
//!
//! Every problem is a [`Detail`] whose target is the JSON pointer of the
//! offending node (`/paths/~1pets/get/responses`), or `value` for the
//! document as a whole (syntax errors carry the line and column). No input
//! panics; the work is bounded by the document's size and by
//! [`schema::MAX_NODES`].
//!
//! Layer 1: imports only `error` and `model`.

mod ids;
mod params;
mod parse;
mod refs;
mod schema;
mod template;
mod v2;
mod v3;

use crate::error::Detail;
use crate::model::{check_url, ApiSpec, Operation};
use serde_json::Value;
use std::collections::HashMap;

/// The import formats of `PUT /mgmt/apis/{id}` (APIM's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenAPI (or Swagger) as YAML; JSON is accepted too.
    OpenApi,
    /// OpenAPI as JSON.
    OpenApiJson,
    /// Swagger 2.0 as JSON.
    SwaggerJson,
    /// `value` is a URL to fetch; YAML or JSON.
    OpenApiLink,
    /// `value` is a URL to fetch; JSON.
    SwaggerLinkJson,
}

impl Format {
    /// Every accepted name, for messages.
    pub const NAMES: &'static str =
        "openapi, openapi+json, swagger-json, openapi-link, swagger-link-json";

    pub fn parse(name: &str) -> Option<Format> {
        Some(match name.to_ascii_lowercase().as_str() {
            "openapi" => Format::OpenApi,
            "openapi+json" => Format::OpenApiJson,
            "swagger-json" => Format::SwaggerJson,
            "openapi-link" => Format::OpenApiLink,
            "swagger-link-json" => Format::SwaggerLinkJson,
            _ => return None,
        })
    }

    /// Whether `value` is a URL to fetch the document from.
    pub fn is_link(self) -> bool {
        matches!(self, Format::OpenApiLink | Format::SwaggerLinkJson)
    }

    fn json_only(self) -> bool {
        matches!(
            self,
            Format::OpenApiJson | Format::SwaggerJson | Format::SwaggerLinkJson
        )
    }
}

/// The media type of a stored document of `format` (see [`ApiSpec`]).
pub fn content_type(format: &str) -> &'static str {
    if format == "openapi" {
        "application/yaml"
    } else {
        "application/json"
    }
}

/// A stored document as JSON (for `?export=openapi+json`).
pub fn to_json(document: &str) -> Result<String, Detail> {
    let (v, _) = parse::parse(document, false)?;
    serde_json::to_string_pretty(&v).map_err(|e| Detail::new("value", e.to_string()))
}

/// What a document defines.
#[derive(Debug, Clone)]
pub struct Imported {
    /// `info.title`.
    pub display_name: Option<String>,
    /// `info.description`.
    pub description: Option<String>,
    /// From `servers[0]` (variables at their defaults) or 2.0's
    /// `schemes`/`host`/`basePath`; `None` when that gives no absolute
    /// http(s) URL.
    pub service_url: Option<String>,
    /// The operations' tags in document order, else the top-level tags.
    pub tags: Vec<String>,
    /// (id, operation) in document order.
    pub operations: Vec<(String, Operation)>,
    /// The document as received (without a byte-order mark) and its
    /// format: `openapi` for YAML, `openapi+json` or `swagger-json` for
    /// JSON.
    pub spec: ApiSpec,
}

/// Reads and converts one document. `base_url` is where a linked document
/// came from: relative server URLs are resolved against it.
pub fn import(
    format: Format,
    bytes: &[u8],
    base_url: Option<&str>,
) -> Result<Imported, Vec<Detail>> {
    let one = |d: Detail| vec![d];
    let text = parse::text(bytes).map_err(one)?;
    let (doc, syntax) = parse::parse(text, format.json_only()).map_err(one)?;
    if !doc.is_object() {
        return Err(one(Detail::new(
            "value",
            "the document must be an object (a mapping) at the top",
        )));
    }
    let version = version(&doc).map_err(one)?;
    let dangling = refs::check_all(&doc, version == Version::Swagger2);
    if !dangling.is_empty() {
        return Err(dangling);
    }
    let mut cx = Cx::new(&doc);
    let converted = match version {
        Version::Swagger2 => v2::convert(&mut cx, base_url),
        Version::OpenApi3 => v3::convert(&mut cx, base_url),
    }
    .map_err(one)?;
    let stored_format = match (syntax, version) {
        (parse::Syntax::Yaml, _) => "openapi",
        (parse::Syntax::Json, Version::Swagger2) => "swagger-json",
        (parse::Syntax::Json, Version::OpenApi3) => "openapi+json",
    };
    let document = text.strip_prefix('\u{FEFF}').unwrap_or(text).to_string();
    finish(converted, stored_format, document).map_err(one)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    Swagger2,
    OpenApi3,
}

fn version(doc: &Value) -> Result<Version, Detail> {
    if let Some(v) = doc.get("openapi") {
        let Some(s) = v.as_str() else {
            return Err(Detail::new(
                "/openapi",
                "must be a string such as \"3.0.3\"",
            ));
        };
        let known = ["3.0", "3.1"].iter().any(|p| {
            s.strip_prefix(p)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
        });
        return if known {
            Ok(Version::OpenApi3)
        } else {
            Err(Detail::new(
                "/openapi",
                format!(
                    "unsupported OpenAPI version {:?}: 3.0.x and 3.1.x are supported, and Swagger 2.0",
                    ids::clip(s, 40)
                ),
            ))
        };
    }
    if let Some(v) = doc.get("swagger") {
        // `swagger: 2.0` unquoted in YAML is a number.
        let two = v.as_str() == Some("2.0") || v.as_f64() == Some(2.0);
        return if two {
            Ok(Version::Swagger2)
        } else {
            Err(Detail::new(
                "/swagger",
                format!(
                    "unsupported Swagger version {}: only 2.0 is supported, and OpenAPI 3.0.x and 3.1.x",
                    ids::clip(&schema::as_text(v), 40)
                ),
            ))
        };
    }
    Err(Detail::new(
        "/openapi",
        "missing: an OpenAPI document has \"openapi\": \"3.x.y\", a Swagger document \"swagger\": \"2.0\"",
    ))
}

/// The conversion context: the document and the node budget of inlined
/// schemas (see `schema.rs`).
pub(crate) struct Cx<'a> {
    pub doc: &'a Value,
    pub left: usize,
}

impl<'a> Cx<'a> {
    pub fn new(doc: &'a Value) -> Cx<'a> {
        Cx {
            doc,
            left: schema::MAX_NODES,
        }
    }
}

/// A position in the document, rendered as a JSON pointer only when a
/// problem is reported.
#[derive(Clone, Copy)]
pub(crate) enum Loc<'p> {
    At(&'p str),
    Key(&'p Loc<'p>, &'p str),
    Index(&'p Loc<'p>, usize),
}

impl Loc<'_> {
    pub fn render(&self) -> String {
        match self {
            Loc::At(p) => p.to_string(),
            Loc::Key(parent, k) => ptr(&parent.render(), k),
            Loc::Index(parent, i) => format!("{}/{i}", parent.render()),
        }
    }
}

/// `base` + `/` + `key` escaped as a JSON pointer token.
pub(crate) fn ptr(base: &str, key: &str) -> String {
    let mut out = String::with_capacity(base.len() + key.len() + 1);
    out.push_str(base);
    out.push('/');
    for c in key.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c => out.push(c),
        }
    }
    out
}

/// One operation as a dialect converter found it.
pub(crate) struct Draft {
    /// Pointer of the operation object.
    pub at: String,
    /// The path key, starting with `/`.
    pub path: String,
    pub shape: String,
    /// Lowercase, as the document writes it.
    pub method: &'static str,
    pub operation_id: Option<String>,
    pub summary: Option<String>,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub template_parameters: Vec<Value>,
    pub request: Option<Value>,
    pub responses: Vec<Value>,
}

/// What a dialect converter returns.
pub(crate) struct Converted {
    pub title: Option<String>,
    pub description: Option<String>,
    pub service_url: Option<String>,
    /// Names of the top-level `tags`.
    pub tags: Vec<String>,
    pub drafts: Vec<Draft>,
}

/// The string at `key` of object `v`, if any and not blank.
pub(crate) fn text_of(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .map(str::to_string)
}

/// The strings of the array at `key` of `v` (others ignored).
pub(crate) fn strings_of(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Names of the top-level `tags` list.
pub(crate) fn tag_names(doc: &Value) -> Vec<String> {
    doc.get("tags")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|t| t.get("name").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The methods a path item may hold, lowercase.
pub(crate) const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The path key as a template path: starting with `/`.
pub(crate) fn path_key(key: &str) -> String {
    if key.starts_with('/') {
        key.to_string()
    } else {
        format!("/{key}")
    }
}

/// `url` if it is an absolute http(s) URL a `serviceUrl` may be, without
/// a trailing slash.
pub(crate) fn service_url(url: &str) -> Option<String> {
    let url = url.trim().trim_end_matches('/');
    let mut problems = Vec::new();
    check_url(&mut problems, "serviceUrl", url);
    problems.is_empty().then(|| url.to_string())
}

/// `reference` resolved against the absolute URL `base` (RFC 3986, the
/// cases documents use: absolute, `//host/...`, `/path`, `path`).
pub fn join_url(base: &str, reference: &str) -> Option<String> {
    let lower = reference.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Some(reference.to_string());
    }
    let uri: http::Uri = base.parse().ok()?;
    let scheme = uri.scheme_str()?;
    let authority = uri.authority()?;
    if let Some(rest) = reference.strip_prefix("//") {
        return Some(format!("{scheme}://{rest}"));
    }
    if reference.starts_with('/') {
        return Some(format!("{scheme}://{authority}{reference}"));
    }
    let path = uri.path();
    let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    let dir = if dir.is_empty() { "/" } else { dir };
    Some(format!("{scheme}://{authority}{dir}{reference}"))
}

/// Whether examples made up from a schema suit `content_type` (JSON).
pub(crate) fn is_json(content_type: &str) -> bool {
    let ct = content_type.to_ascii_lowercase();
    let essence = ct.split(';').next().unwrap_or("").trim();
    essence == "application/json" || essence == "text/json" || essence.ends_with("+json")
}

/// Whether `content_type` is a form (its fields become `formParameters`).
pub(crate) fn is_form(content_type: &str) -> bool {
    let ct = content_type.to_ascii_lowercase();
    ct.starts_with("application/x-www-form-urlencoded") || ct.starts_with("multipart/form-data")
}

/// The responses of an operation to import, in document order: each
/// (key, status code). A range (`2XX`) counts as its first code unless that
/// code is listed too; `default` counts as 200 when the operation lists no
/// success (2xx) response and is left out otherwise (it documents errors).
/// Keys that are neither are refused with their pointer; `x-` keys are
/// extensions.
pub(crate) fn status_codes<'k>(
    keys: impl Iterator<Item = &'k String> + Clone,
    at: &str,
) -> Result<Vec<(&'k str, u16)>, Detail> {
    enum Code {
        Exact(u16),
        Range(u16),
        Default,
    }
    let mut parsed = Vec::new();
    for k in keys {
        if k.starts_with("x-") {
            continue;
        }
        let code = if k == "default" {
            Code::Default
        } else {
            let b = k.as_bytes();
            let range = b.len() == 3 && b[1..].eq_ignore_ascii_case(b"XX");
            match (k.parse::<u16>(), range) {
                (Ok(n @ 100..=599), _) if k.len() == 3 => Code::Exact(n),
                (_, true) if (b'1'..=b'5').contains(&b[0]) => {
                    Code::Range(u16::from(b[0] - b'0') * 100)
                }
                _ => return Err(Detail::new(
                    ptr(at, k),
                    "not a response key: an HTTP status code (200), a range (2XX) or \"default\"",
                )),
            }
        };
        parsed.push((k.as_str(), code));
    }
    let exact: Vec<u16> = parsed
        .iter()
        .filter_map(|(_, c)| match c {
            Code::Exact(n) => Some(*n),
            _ => None,
        })
        .collect();
    let mut out: Vec<(&str, u16)> = Vec::new();
    for (k, c) in &parsed {
        let n = match c {
            Code::Exact(n) => *n,
            Code::Range(n) if !exact.contains(n) && !out.iter().any(|(_, m)| m == n) => *n,
            _ => continue,
        };
        out.push((k, n));
    }
    if !out.iter().any(|(_, n)| (200..300).contains(n)) {
        if let Some((k, _)) = parsed.iter().find(|(_, c)| matches!(c, Code::Default)) {
            out.push((k, 200));
        }
    }
    Ok(out)
}

/// Ids, display names, the router's view of the templates, and the API.
fn finish(c: Converted, format: &str, document: String) -> Result<Imported, Detail> {
    let mut ids = ids::Ids::default();
    let mut shapes: HashMap<(&str, &str), &str> = HashMap::new();
    let mut tags: Vec<String> = Vec::new();
    for d in &c.drafts {
        if let Some(other) = shapes.insert((d.method, &d.shape), &d.at) {
            return Err(Detail::new(
                &d.at,
                format!(
                    "{} {} matches the same requests as the operation at {other}; the gateway could not tell them apart",
                    d.method.to_ascii_uppercase(),
                    d.path
                ),
            ));
        }
    }
    let mut operations = Vec::with_capacity(c.drafts.len());
    for d in c.drafts {
        let method = d.method.to_ascii_uppercase();
        let base = d
            .operation_id
            .as_deref()
            .map(ids::sanitize)
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| ids::derived(&method, &d.path));
        let id = ids.claim(&base);
        let display = d
            .summary
            .clone()
            .or_else(|| d.operation_id.clone())
            .unwrap_or_else(|| format!("{method} {}", d.path));
        for t in &d.tags {
            if !tags.contains(t) {
                tags.push(t.clone());
            }
        }
        let mut op = Operation {
            display_name: ids::clip(display.trim(), 300),
            method,
            url_template: d.path,
            description: d.description,
            template_parameters: d.template_parameters,
            request: d.request,
            responses: d.responses,
            tags: d.tags,
        };
        let mut problems = Vec::new();
        op.normalize(&id, &mut problems);
        if let Some(p) = problems.into_iter().next() {
            return Err(Detail::new(d.at, format!("{}: {}", p.target, p.message)));
        }
        operations.push((id, op));
    }
    if tags.is_empty() {
        tags = c.tags;
    }
    Ok(Imported {
        display_name: c
            .title
            .map(|t| ids::clip(t.trim(), 300))
            .filter(|t| !t.is_empty()),
        description: c.description,
        service_url: c.service_url,
        tags,
        operations,
        spec: ApiSpec {
            format: format.to_string(),
            document,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_escape() {
        assert_eq!(ptr("/paths", "/pets/{id}"), "/paths/~1pets~1{id}");
        assert_eq!(ptr("", "a~b"), "/a~0b");
    }

    #[test]
    fn urls() {
        assert_eq!(
            join_url("https://h.example/specs/api.yaml", "/v1").as_deref(),
            Some("https://h.example/v1")
        );
        assert_eq!(
            join_url("https://h.example/specs/api.yaml", "v1").as_deref(),
            Some("https://h.example/specs/v1")
        );
        assert_eq!(
            join_url("http://h.example:8080/a", "//other.example/x").as_deref(),
            Some("http://other.example/x")
        );
        assert_eq!(
            join_url("http://h.example/a", "HTTPS://x.example").as_deref(),
            Some("HTTPS://x.example")
        );
        assert_eq!(join_url("not a url", "/x"), None);
        assert_eq!(
            service_url("https://api.example.com/v1/").as_deref(),
            Some("https://api.example.com/v1")
        );
        assert_eq!(
            service_url("https://api.example.com/").as_deref(),
            Some("https://api.example.com")
        );
        assert_eq!(service_url("/api/v3"), None);
        assert_eq!(service_url("ftp://x.example"), None);
        assert_eq!(service_url("{scheme}://x.example"), None);
    }

    #[test]
    fn versions() {
        use serde_json::json;
        assert_eq!(version(&json!({"openapi": "3.0.3"})), Ok(Version::OpenApi3));
        assert_eq!(version(&json!({"openapi": "3.1.0"})), Ok(Version::OpenApi3));
        assert_eq!(version(&json!({"swagger": "2.0"})), Ok(Version::Swagger2));
        assert_eq!(version(&json!({"swagger": 2.0})), Ok(Version::Swagger2));
        assert_eq!(
            version(&json!({"openapi": "4.0.0"})).unwrap_err().target,
            "/openapi"
        );
        assert_eq!(
            version(&json!({"openapi": "3.10.0"})).unwrap_err().target,
            "/openapi"
        );
        assert_eq!(
            version(&json!({"swagger": "1.2"})).unwrap_err().target,
            "/swagger"
        );
        assert_eq!(
            version(&json!({"info": {}})).unwrap_err().target,
            "/openapi"
        );
    }
}
