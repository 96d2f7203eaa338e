//! The API reference as pages show it: operation documents (APIM's
//! parameter, request and response contracts, with inlined JSON Schemas)
//! turned into plain rows for tables, examples as pretty-printed text, and
//! code samples.
//!
//! Documents come from imports and from hand-written management calls, so
//! any field may be missing or odd: nothing here panics, every walk is
//! bounded, and a shape it does not understand is shown as JSON.

use crate::model::Operation;
use serde_json::{Map, Value};

/// Deepest nesting of object properties shown as rows.
pub const MAX_DEPTH: usize = 5;
/// Most rows one schema table shows.
const MAX_ROWS: usize = 400;
/// Longest example (or raw schema) text shown, in bytes.
const MAX_TEXT: usize = 256 * 1024;
/// Placeholder for the key in code samples when the visitor has none.
pub const KEY_PLACEHOLDER: &str = "<your-subscription-key>";

/// One documented parameter or header.
#[derive(Debug, Clone, Default)]
pub struct Param {
    pub name: String,
    /// `template`, `query`, `header` or `form`.
    pub location: &'static str,
    pub type_label: String,
    pub required: bool,
    pub description: String,
    pub default: Option<String>,
    /// Allowed values.
    pub values: Vec<String>,
    pub example: Option<String>,
}

/// One property row of a schema table.
#[derive(Debug, Clone)]
pub struct SchemaRow {
    /// 0 for top-level properties; capped by [`MAX_DEPTH`].
    pub depth: usize,
    /// Where the property sits (`address.`, `items[].`), shown muted.
    pub prefix: String,
    pub name: String,
    pub type_label: String,
    pub required: bool,
    pub description: String,
    /// Enum values, format details, defaults, bounds, flags.
    pub notes: Vec<String>,
}

/// A schema as a table.
#[derive(Debug, Clone, Default)]
pub struct SchemaView {
    /// The type of the whole document (`object`, `array of object`, ...).
    pub summary: String,
    /// Notes about the whole document (enum values, bounds).
    pub notes: Vec<String>,
    pub rows: Vec<SchemaRow>,
    /// Something was left out (too deep or too many rows).
    pub truncated: bool,
    /// A schema this page cannot read as a table, as JSON.
    pub raw: Option<String>,
}

/// A named example, ready to print.
#[derive(Debug, Clone)]
pub struct Example {
    pub name: String,
    pub summary: String,
    pub text: String,
}

/// One request or response representation (a content type).
#[derive(Debug, Clone, Default)]
pub struct Representation {
    pub content_type: String,
    /// `typeName` / `schemaId` when the document names its schema.
    pub type_name: String,
    pub schema: Option<SchemaView>,
    pub form: Vec<Param>,
    pub examples: Vec<Example>,
}

/// One documented response.
#[derive(Debug, Clone, Default)]
pub struct ResponseDoc {
    pub status: String,
    pub reason: String,
    /// `ok`, `redirect`, `client`, `server` or `other` (for styling).
    pub class: &'static str,
    pub description: String,
    pub headers: Vec<Param>,
    pub representations: Vec<Representation>,
    /// A response entry this page cannot read, as JSON.
    pub raw: Option<String>,
}

/// Everything the operation page shows about the request.
#[derive(Debug, Clone, Default)]
pub struct RequestDoc {
    pub description: String,
    pub template: Vec<Param>,
    pub query: Vec<Param>,
    pub headers: Vec<Param>,
    pub representations: Vec<Representation>,
    /// A request document this page cannot read, as JSON.
    pub raw: Option<String>,
}

fn text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => compact(other),
    }
}

/// A JSON value in one line; strings without quotes.
fn compact(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn cut(mut s: String) -> String {
    if s.len() > MAX_TEXT {
        let mut end = MAX_TEXT;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str("\n… (cut: the example is too long to show in full)");
    }
    s
}

fn pretty(v: &Value) -> String {
    cut(serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string()))
}

fn truthy(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

fn list(v: Option<&Value>) -> &[Value] {
    v.and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

/// A short type for a schema: `string (date-time)`, `array of integer`,
/// `Pet`, `string | null`.
pub fn type_label(schema: &Value) -> String {
    label_at(schema, 0)
}

fn label_at(schema: &Value, depth: usize) -> String {
    let Some(s) = schema.as_object() else {
        return "any".into();
    };
    if depth > 4 {
        return "…".into();
    }
    if let Some(Value::String(r)) = s.get("$ref") {
        return r.rsplit('/').next().unwrap_or(r).to_string();
    }
    let with_format = |base: String| match s.get("format").and_then(Value::as_str) {
        Some(f) if !f.is_empty() => format!("{base} ({f})"),
        _ => base,
    };
    let one = |t: &str| -> String {
        match t {
            "array" => match s.get("items") {
                Some(items) if items.is_object() => {
                    format!("array of {}", label_at(items, depth + 1))
                }
                _ => "array".into(),
            },
            "object" => match (s.get("properties"), s.get("additionalProperties")) {
                (None, Some(extra)) if extra.is_object() => {
                    format!("map of {}", label_at(extra, depth + 1))
                }
                _ => "object".into(),
            },
            other => with_format(other.to_string()),
        }
    };
    match s.get("type") {
        Some(Value::String(t)) => {
            let base = one(t);
            if truthy(s.get("nullable")) {
                format!("{base} | null")
            } else {
                base
            }
        }
        Some(Value::Array(ts)) => {
            let parts: Vec<String> = ts.iter().filter_map(Value::as_str).map(one).collect();
            if parts.is_empty() {
                "any".into()
            } else {
                parts.join(" | ")
            }
        }
        _ => {
            for key in ["oneOf", "anyOf"] {
                let variants = list(s.get(key));
                if !variants.is_empty() {
                    let parts: Vec<String> = variants
                        .iter()
                        .take(8)
                        .map(|v| label_at(v, depth + 1))
                        .collect();
                    return parts.join(" | ");
                }
            }
            if s.contains_key("properties") || s.contains_key("allOf") {
                return "object".into();
            }
            if let Some(first) = list(s.get("enum")).first() {
                return match first {
                    Value::String(_) => with_format("string".into()),
                    Value::Number(n) if n.is_i64() || n.is_u64() => "integer".into(),
                    Value::Number(_) => "number".into(),
                    Value::Bool(_) => "boolean".into(),
                    _ => "any".into(),
                };
            }
            if s.contains_key("items") {
                return one("array");
            }
            with_format("any".into())
        }
    }
}

/// Enum values, defaults, bounds and flags of a schema, as short notes.
fn notes(s: &Map<String, Value>) -> Vec<String> {
    let mut out = Vec::new();
    let values = list(s.get("enum"));
    if !values.is_empty() {
        let shown: Vec<String> = values.iter().take(50).map(compact).collect();
        let more = if values.len() > 50 { ", …" } else { "" };
        out.push(format!("One of: {}{more}", shown.join(", ")));
    }
    if let Some(c) = s.get("const") {
        out.push(format!("Always: {}", compact(c)));
    }
    if let Some(d) = s.get("default") {
        out.push(format!("Default: {}", compact(d)));
    }
    let num = |k: &str| s.get(k).filter(|v| v.is_number()).map(Value::to_string);
    match (num("minimum"), num("maximum")) {
        (Some(a), Some(b)) => out.push(format!("Range: {a} to {b}")),
        (Some(a), None) => out.push(format!("Minimum: {a}")),
        (None, Some(b)) => out.push(format!("Maximum: {b}")),
        _ => {}
    }
    for (k, label) in [
        ("exclusiveMinimum", "Greater than"),
        ("exclusiveMaximum", "Less than"),
        ("multipleOf", "Multiple of"),
    ] {
        if let Some(v) = num(k) {
            out.push(format!("{label}: {v}"));
        }
    }
    match (num("minLength"), num("maxLength")) {
        (Some(a), Some(b)) => out.push(format!("Length: {a} to {b}")),
        (Some(a), None) => out.push(format!("Minimum length: {a}")),
        (None, Some(b)) => out.push(format!("Maximum length: {b}")),
        _ => {}
    }
    match (num("minItems"), num("maxItems")) {
        (Some(a), Some(b)) => out.push(format!("Items: {a} to {b}")),
        (Some(a), None) => out.push(format!("At least {a} items")),
        (None, Some(b)) => out.push(format!("At most {b} items")),
        _ => {}
    }
    if truthy(s.get("uniqueItems")) {
        out.push("Unique items".into());
    }
    if let Some(Value::String(p)) = s.get("pattern") {
        out.push(format!("Pattern: {p}"));
    }
    if let Some(e) = s.get("example") {
        out.push(format!("Example: {}", compact(e)));
    } else if let Some(e) = list(s.get("examples")).first() {
        out.push(format!("Example: {}", compact(e)));
    }
    for (k, label) in [
        ("readOnly", "Read-only"),
        ("writeOnly", "Write-only"),
        ("deprecated", "Deprecated"),
    ] {
        if truthy(s.get(k)) {
            out.push(label.into());
        }
    }
    out
}

/// The properties and required names of an object schema, with `allOf`
/// parts merged in (bounded).
fn properties(s: &Map<String, Value>) -> (Vec<(String, Value)>, Vec<String>) {
    let mut props: Vec<(String, Value)> = Vec::new();
    let mut required: Vec<String> = Vec::new();
    fn gather(
        s: &Map<String, Value>,
        props: &mut Vec<(String, Value)>,
        required: &mut Vec<String>,
        depth: usize,
    ) {
        if depth > 4 {
            return;
        }
        for part in list(s.get("allOf")) {
            if let Some(p) = part.as_object() {
                gather(p, props, required, depth + 1);
            }
        }
        if let Some(Value::Object(ps)) = s.get("properties") {
            for (k, v) in ps {
                match props.iter_mut().find(|(n, _)| n == k) {
                    Some(slot) => slot.1 = v.clone(),
                    None => props.push((k.clone(), v.clone())),
                }
            }
        }
        required.extend(
            list(s.get("required"))
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string),
        );
    }
    gather(s, &mut props, &mut required, 0);
    (props, required)
}

fn has_properties(s: &Map<String, Value>) -> bool {
    s.get("properties").is_some_and(Value::is_object)
        || list(s.get("allOf"))
            .iter()
            .any(|p| p.as_object().is_some_and(has_properties))
}

/// The object schema whose properties a property's rows continue with:
/// the property itself, its array items, or its map values.
fn nested(s: &Map<String, Value>) -> Option<(&Map<String, Value>, &'static str)> {
    if has_properties(s) {
        return Some((s, "."));
    }
    if let Some(items) = s.get("items").and_then(Value::as_object) {
        if has_properties(items) {
            return Some((items, "[]."));
        }
    }
    if let Some(extra) = s.get("additionalProperties").and_then(Value::as_object) {
        if has_properties(extra) {
            return Some((extra, "{*}."));
        }
    }
    None
}

fn rows(s: &Map<String, Value>, depth: usize, prefix: &str, view: &mut SchemaView) {
    let (props, required) = properties(s);
    for (name, prop) in props {
        if view.rows.len() >= MAX_ROWS {
            view.truncated = true;
            return;
        }
        let empty = Map::new();
        let p = prop.as_object().unwrap_or(&empty);
        view.rows.push(SchemaRow {
            depth,
            prefix: prefix.to_string(),
            name: name.clone(),
            type_label: type_label(&prop),
            required: required.contains(&name),
            description: text(p.get("description").or_else(|| p.get("title"))),
            notes: notes(p),
        });
        if let Some((inner, sep)) = nested(p) {
            if depth + 1 > MAX_DEPTH {
                view.truncated = true;
                if let Some(last) = view.rows.last_mut() {
                    last.notes
                        .push("Nested properties not shown here: see the definition".into());
                }
            } else {
                rows(inner, depth + 1, &format!("{prefix}{name}{sep}"), view);
            }
        }
    }
}

/// A schema as a table (or as JSON when it is not a schema this reads).
pub fn schema_view(schema: &Value) -> SchemaView {
    let mut view = SchemaView::default();
    let Some(s) = schema.as_object() else {
        view.raw = Some(pretty(schema));
        return view;
    };
    view.summary = type_label(schema);
    view.notes = notes(s);
    match nested(s) {
        Some((inner, _)) => rows(inner, 0, "", &mut view),
        None => {
            let known = [
                "type", "$ref", "enum", "format", "oneOf", "anyOf", "items", "const",
            ];
            if !s.is_empty() && !known.iter().any(|k| s.contains_key(*k)) {
                view.raw = Some(pretty(schema));
            }
        }
    }
    view
}

/// One APIM ParameterContract.
pub fn param(v: &Value, location: &'static str) -> Option<Param> {
    let p = v.as_object()?;
    let name = text(p.get("name"));
    if name.is_empty() {
        return None;
    }
    let schema = p.get("schema").filter(|s| s.is_object());
    let mut type_label = text(p.get("type"));
    if type_label.is_empty() {
        type_label = match schema {
            Some(s) => self::type_label(s),
            None => text(p.get("typeName")),
        };
    }
    if type_label.is_empty() {
        type_label = "string".into();
    }
    let mut values: Vec<String> = list(p.get("values")).iter().map(compact).collect();
    if values.is_empty() {
        if let Some(s) = schema {
            values = list(s.get("enum")).iter().map(compact).collect();
        }
    }
    let default = p
        .get("defaultValue")
        .or_else(|| schema.and_then(|s| s.get("default")))
        .filter(|d| !d.is_null())
        .map(compact);
    let example = first_example(p.get("examples"))
        .or_else(|| p.get("example").cloned())
        .or_else(|| schema.and_then(|s| s.get("example")).cloned())
        .map(|e| compact(&e));
    Some(Param {
        name,
        location,
        type_label,
        required: truthy(p.get("required")) || location == "template",
        description: text(p.get("description")),
        default,
        values,
        example,
    })
}

fn params(v: Option<&Value>, location: &'static str) -> Vec<Param> {
    list(v).iter().filter_map(|p| param(p, location)).collect()
}

/// The value of the first example of an APIM `examples` map (or list).
fn first_example(v: Option<&Value>) -> Option<Value> {
    let one = |e: &Value| match e {
        Value::Object(m) if m.contains_key("value") => m.get("value").cloned(),
        other => Some(other.clone()),
    };
    match v? {
        Value::Object(m) => m.values().next().and_then(one),
        Value::Array(a) => a.first().and_then(one),
        _ => None,
    }
}

fn is_json_type(content_type: &str) -> bool {
    let ct = content_type.to_ascii_lowercase();
    ct.is_empty() || ct.contains("json")
}

/// An example value as text: JSON pretty-printed; a string that holds JSON
/// (for a JSON content type) pretty-printed too; other strings as they are.
fn example_text(v: &Value, content_type: &str) -> String {
    match v {
        Value::String(s) => {
            if is_json_type(content_type) {
                if let Ok(parsed) = serde_json::from_str::<Value>(s) {
                    if parsed.is_object() || parsed.is_array() {
                        return pretty(&parsed);
                    }
                }
            }
            cut(s.clone())
        }
        other => pretty(other),
    }
}

fn examples(r: &Map<String, Value>, content_type: &str) -> Vec<Example> {
    let single;
    let mut found: Vec<(String, &Value)> = Vec::new();
    match r.get("examples") {
        Some(Value::Object(m)) => {
            found.extend(m.iter().take(20).map(|(name, e)| (name.clone(), e)));
        }
        Some(Value::Array(a)) => {
            found.extend(
                a.iter()
                    .take(20)
                    .enumerate()
                    .map(|(i, e)| (format!("Example {}", i + 1), e)),
            );
        }
        _ => {}
    }
    if found.is_empty() {
        if let Some(e) = ["sample", "example"]
            .iter()
            .find_map(|k| r.get(*k).filter(|e| !e.is_null()))
        {
            single = Value::Object(Map::from_iter([("value".to_string(), e.clone())]));
            found.push(("Example".into(), &single));
        }
    }
    found
        .into_iter()
        .map(|(name, e)| {
            let (value, summary) = match e {
                Value::Object(m) if m.contains_key("value") => (
                    m.get("value").cloned().unwrap_or(Value::Null),
                    text(m.get("summary").or_else(|| m.get("description"))),
                ),
                Value::Object(m) if m.contains_key("externalValue") => {
                    let url = text(m.get("externalValue"));
                    (
                        Value::String(format!("(external example: {url})")),
                        String::new(),
                    )
                }
                other => (other.clone(), String::new()),
            };
            Example {
                name,
                summary,
                text: example_text(&value, content_type),
            }
        })
        .collect()
}

fn representation(v: &Value) -> Option<Representation> {
    let r = v.as_object()?;
    let content_type = text(r.get("contentType"));
    Some(Representation {
        type_name: text(r.get("typeName").or_else(|| r.get("schemaId"))),
        schema: r
            .get("schema")
            .filter(|s| !s.is_null())
            .map(schema_view)
            .filter(|s| !s.rows.is_empty() || s.raw.is_some() || !s.summary.is_empty()),
        form: params(r.get("formParameters"), "form"),
        examples: examples(r, &content_type),
        content_type,
    })
}

fn representations(v: Option<&Value>) -> Vec<Representation> {
    list(v).iter().filter_map(representation).collect()
}

/// The request side of an operation.
pub fn request_doc(op: &Operation) -> RequestDoc {
    let empty = Value::Object(Map::new());
    let req = op.request.as_ref().unwrap_or(&empty);
    let mut template: Vec<Param> = op
        .template_parameters
        .iter()
        .filter_map(|p| param(p, "template"))
        .collect();
    // Parameters the template names but the document does not describe.
    for name in template_names(&op.url_template) {
        if !template.iter().any(|p| p.name == name) {
            template.push(Param {
                name,
                location: "template",
                type_label: "string".into(),
                required: true,
                ..Param::default()
            });
        }
    }
    RequestDoc {
        description: text(req.get("description")),
        template,
        query: params(req.get("queryParameters"), "query"),
        headers: params(req.get("headers"), "header"),
        representations: representations(req.get("representations")),
        raw: (!req.is_object() && !req.is_null()).then(|| pretty(req)),
    }
}

/// The responses of an operation.
pub fn responses(op: &Operation) -> Vec<ResponseDoc> {
    op.responses
        .iter()
        .map(|entry| {
            let Some(r) = entry.as_object() else {
                return ResponseDoc {
                    status: "?".into(),
                    class: "other",
                    raw: Some(pretty(entry)),
                    ..ResponseDoc::default()
                };
            };
            let status = text(r.get("statusCode"));
            let code = status.parse::<u16>().ok();
            let reason = code
                .and_then(|c| http::StatusCode::from_u16(c).ok())
                .and_then(|c| c.canonical_reason())
                .unwrap_or("")
                .to_string();
            let class = match code {
                Some(200..=299) => "ok",
                Some(300..=399) => "redirect",
                Some(400..=499) => "client",
                Some(500..=599) => "server",
                _ => "other",
            };
            ResponseDoc {
                status: if status.is_empty() {
                    "default".into()
                } else {
                    status
                },
                reason,
                class,
                description: text(r.get("description")),
                headers: params(r.get("headers"), "header"),
                representations: representations(r.get("representations")),
                raw: None,
            }
        })
        .collect()
}

/// The `{names}` of a URL template (path and query parts), in order.
pub fn template_names(template: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else { break };
        let name = after[..close].trim_start_matches(['*', '+']).to_string();
        if !name.is_empty() && !out.contains(&name) {
            out.push(name);
        }
        rest = &after[close + 1..];
    }
    out
}

/// Whether a method usually carries a request body.
pub fn has_body(method: &str) -> bool {
    !matches!(
        method.to_ascii_uppercase().as_str(),
        "GET" | "HEAD" | "OPTIONS" | "DELETE" | "TRACE"
    )
}

/// What code samples are made of.
#[derive(Debug, Clone, Default)]
pub struct SampleRequest {
    pub method: String,
    /// Absolute URL without the query.
    pub url: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    /// Whether `body` is JSON (samples then send it as structured data).
    pub json_body: bool,
}

/// Code samples in three languages.
#[derive(Debug, Clone)]
pub struct Samples {
    pub curl: String,
    pub python: String,
    pub javascript: String,
}

const QUERY: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'{')
    .remove(b'}');

impl SampleRequest {
    /// The URL with its query string.
    pub fn full_url(&self) -> String {
        if self.query.is_empty() {
            return self.url.clone();
        }
        let q: Vec<String> = self
            .query
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    percent_encoding::utf8_percent_encode(k, QUERY),
                    percent_encoding::utf8_percent_encode(v, QUERY)
                )
            })
            .collect();
        let sep = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{sep}{}", self.url, q.join("&"))
    }

    pub fn samples(&self) -> Samples {
        Samples {
            curl: self.curl(),
            python: self.python(),
            javascript: self.javascript(),
        }
    }

    fn curl(&self) -> String {
        let url = self.full_url();
        let mut lines = Vec::new();
        let glob = if url.contains(['{', '}', '[', ']']) {
            "-g "
        } else {
            ""
        };
        lines.push(format!(
            "curl {glob}-X {} {}",
            self.method,
            shell_quote(&url)
        ));
        for (k, v) in &self.headers {
            lines.push(format!("  -H {}", shell_quote(&format!("{k}: {v}"))));
        }
        if let Some(b) = &self.body {
            lines.push(format!("  --data-raw {}", shell_quote(b)));
        }
        lines.join(" \\\n")
    }

    fn python(&self) -> String {
        let mut out = String::from("import requests\n\n");
        out.push_str(&format!("url = {}\n", py_str(&self.url)));
        let dict = |pairs: &[(String, String)]| -> String {
            let mut s = String::from("{\n");
            for (k, v) in pairs {
                s.push_str(&format!("    {}: {},\n", py_str(k), py_str(v)));
            }
            s.push('}');
            s
        };
        let mut args = vec!["url".to_string()];
        if !self.query.is_empty() {
            out.push_str(&format!("params = {}\n", dict(&self.query)));
            args.push("params=params".into());
        }
        if !self.headers.is_empty() {
            let headers: Vec<(String, String)> = self
                .headers
                .iter()
                .filter(|(k, _)| !(self.json_body && k.eq_ignore_ascii_case("content-type")))
                .cloned()
                .collect();
            if !headers.is_empty() {
                out.push_str(&format!("headers = {}\n", dict(&headers)));
                args.push("headers=headers".into());
            }
        }
        if let Some(b) = &self.body {
            match serde_json::from_str::<Value>(b) {
                Ok(v) if self.json_body => {
                    out.push_str(&format!("payload = {}\n", py_value(&v, 0)));
                    args.push("json=payload".into());
                }
                _ => {
                    out.push_str(&format!("payload = {}\n", py_str(b)));
                    args.push("data=payload.encode(\"utf-8\")".into());
                }
            }
        }
        out.push_str(&format!(
            "\nresponse = requests.request({}, {})\n",
            py_str(&self.method),
            args.join(", ")
        ));
        out.push_str("print(response.status_code)\nprint(response.text)\n");
        out
    }

    fn javascript(&self) -> String {
        let mut out = format!(
            "const response = await fetch({}, {{\n  method: {},\n",
            js_str(&self.full_url()),
            js_str(&self.method)
        );
        if !self.headers.is_empty() {
            out.push_str("  headers: {\n");
            for (k, v) in &self.headers {
                out.push_str(&format!("    {}: {},\n", js_str(k), js_str(v)));
            }
            out.push_str("  },\n");
        }
        if let Some(b) = &self.body {
            match serde_json::from_str::<Value>(b) {
                Ok(v) if self.json_body => {
                    let json = serde_json::to_string_pretty(&v).unwrap_or_default();
                    out.push_str(&format!(
                        "  body: JSON.stringify({}),\n",
                        json.replace('\n', "\n  ")
                    ));
                }
                _ => out.push_str(&format!("  body: {},\n", js_str(b))),
            }
        }
        out.push_str("});\nconsole.log(response.status);\nconsole.log(await response.text());\n");
        out
    }
}

/// A single-quoted POSIX shell word.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// A JSON string literal, which is also a valid JavaScript one (with the
/// two line separators escaped).
fn js_str(s: &str) -> String {
    serde_json::to_string(s)
        .unwrap_or_else(|_| "\"\"".into())
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// A Python string literal.
fn py_str(s: &str) -> String {
    // JSON string escapes are valid in Python string literals.
    js_str(s)
}

/// A JSON value as a Python literal (dicts, lists, True/False/None).
fn py_value(v: &Value, indent: usize) -> String {
    let pad = "    ".repeat(indent + 1);
    let end = "    ".repeat(indent);
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => py_str(s),
        Value::Array(a) if a.is_empty() => "[]".into(),
        Value::Array(a) => {
            let items: Vec<String> = a
                .iter()
                .map(|x| format!("{pad}{},", py_value(x, indent + 1)))
                .collect();
            format!("[\n{}\n{end}]", items.join("\n"))
        }
        Value::Object(m) if m.is_empty() => "{}".into(),
        Value::Object(m) => {
            let items: Vec<String> = m
                .iter()
                .map(|(k, x)| format!("{pad}{}: {},", py_str(k), py_value(x, indent + 1)))
                .collect();
            format!("{{\n{}\n{end}}}", items.join("\n"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_objects_arrays_and_enums_become_rows() {
        let s = json!({
            "type": "object",
            "required": ["id"],
            "properties": {
                "id": {"type": "integer", "format": "int64", "description": "The id"},
                "status": {"type": "string", "enum": ["available", "sold"]},
                "tags": {"type": "array", "items": {"type": "object", "properties": {
                    "name": {"type": "string"}
                }}},
                "owner": {"allOf": [{"type": "object", "required": ["email"],
                    "properties": {"email": {"type": "string", "format": "email"}}}]}
            }
        });
        let v = schema_view(&s);
        let got: Vec<(usize, String, String, bool)> = v
            .rows
            .iter()
            .map(|r| {
                (
                    r.depth,
                    format!("{}{}", r.prefix, r.name),
                    r.type_label.clone(),
                    r.required,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (0, "id".into(), "integer (int64)".into(), true),
                (0, "status".into(), "string".into(), false),
                (0, "tags".into(), "array of object".into(), false),
                (1, "tags[].name".into(), "string".into(), false),
                (0, "owner".into(), "object".into(), false),
                (1, "owner.email".into(), "string (email)".into(), true),
            ]
        );
        assert_eq!(v.rows[1].notes, ["One of: available, sold"]);
        assert_eq!(v.summary, "object");
    }

    #[test]
    fn depth_is_bounded_and_odd_shapes_do_not_panic() {
        let mut s = json!({"type": "string"});
        for _ in 0..20 {
            s = json!({"type": "object", "properties": {"x": s}});
        }
        let v = schema_view(&s);
        assert!(v.truncated);
        assert!(v.rows.iter().all(|r| r.depth <= MAX_DEPTH));
        for odd in [
            json!(null),
            json!("text"),
            json!([1, 2]),
            json!({"properties": 3}),
            json!({"properties": {"a": 1, "b": [true]}, "required": "a"}),
            json!({"type": 7, "items": "x", "enum": {}}),
            json!({"weird": true}),
        ] {
            let _ = schema_view(&odd);
        }
        assert!(schema_view(&json!({"weird": true})).raw.is_some());
        assert!(schema_view(&json!("text")).raw.is_some());
    }

    #[test]
    fn parameters_and_examples_are_read_tolerantly() {
        let op: Operation = serde_json::from_value(json!({
            "method": "POST",
            "urlTemplate": "/pets/{petId}/photos/{photo}",
            "templateParameters": [{"name": "petId", "type": "integer", "description": "Pet"}, 42, {}],
            "request": {
                "queryParameters": [{"name": "limit", "schema": {"type": "integer"}, "defaultValue": "10",
                    "values": ["10", "20"]}],
                "headers": "nope",
                "representations": [
                    {"contentType": "application/json",
                     "examples": {"default": {"value": {"a": [1, 2]}}}},
                    {"contentType": "application/xml", "examples": {"x": {"value": "<a/>"}}},
                    {"contentType": "application/json", "examples": [{"value": "{\"b\":1}"}]},
                    "junk"
                ]
            },
            "responses": [{"statusCode": 201}, {"statusCode": "default"}, "junk"]
        }))
        .unwrap();
        let r = request_doc(&op);
        let names: Vec<&str> = r.template.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["petId", "photo"]);
        assert!(r.template.iter().all(|p| p.required));
        assert_eq!(r.query[0].type_label, "integer");
        assert_eq!(r.query[0].default.as_deref(), Some("10"));
        assert!(r.headers.is_empty());
        assert_eq!(r.representations.len(), 3);
        assert_eq!(
            r.representations[0].examples[0].text,
            "{\n  \"a\": [\n    1,\n    2\n  ]\n}"
        );
        assert_eq!(r.representations[1].examples[0].text, "<a/>");
        assert_eq!(r.representations[2].examples[0].text, "{\n  \"b\": 1\n}");
        let resp = responses(&op);
        assert_eq!(resp.len(), 3);
        assert_eq!(resp[2].raw.as_deref(), Some("\"junk\""));
        assert_eq!((resp[0].reason.as_str(), resp[0].class), ("Created", "ok"));
        assert_eq!(resp[1].status, "default");
    }

    #[test]
    fn samples_quote_what_they_embed() {
        let req = SampleRequest {
            method: "POST".into(),
            url: "http://gw:8080/pets/it's".into(),
            query: vec![("q".into(), "a b&c".into())],
            headers: vec![
                ("Ocp-Apim-Subscription-Key".into(), KEY_PLACEHOLDER.into()),
                ("Content-Type".into(), "application/json".into()),
            ],
            body: Some("{\"ok\": true, \"n\": null}".into()),
            json_body: true,
        };
        let s = req.samples();
        assert!(s
            .curl
            .starts_with("curl -X POST 'http://gw:8080/pets/it'\\''s?q=a%20b%26c'"));
        assert!(s
            .curl
            .contains("-H 'Ocp-Apim-Subscription-Key: <your-subscription-key>'"));
        assert!(s.python.contains("\"ok\": True"), "{}", s.python);
        assert!(s.python.contains("\"n\": None"));
        assert!(s.python.contains("json=payload"));
        assert!(
            !s.python.contains("Content-Type"),
            "requests sets it for json="
        );
        assert!(s.javascript.contains("body: JSON.stringify({"));
        assert_eq!(template_names("/a/{x}/b/{y}?z={z}&x={x}"), ["x", "y", "z"]);
    }
}
