//! The API catalog and reference: the list with search and tags
//! (`/apis`), an API's page, an operation's page (reference, code samples
//! and the try-it form) and the download of the definition an API was
//! imported from.
//!
//! Every page checks visibility first: an API the visitor cannot see is a
//! 404, exactly like one that does not exist.

use super::reference::{self, Param, RequestDoc, ResponseDoc, SampleRequest, Samples};
use super::{render, Chrome, PortalError, PortalState, Visitor};
use crate::model::{Api, Catalog, Operation, SubscriptionScope, SubscriptionState};
use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde_json::Value;
use std::collections::BTreeMap;

/// The decoded `key=value` pairs of a query string (`+` is a space).
pub fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    raw.unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(kv), String::new()),
        })
        .collect()
}

fn enc(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

fn method_class(method: &str) -> String {
    match method {
        "*" => "any".into(),
        m => m.to_ascii_lowercase(),
    }
}

fn method_label(method: &str) -> String {
    match method {
        "*" => "ANY".into(),
        m => m.to_string(),
    }
}

/// The first `max` characters of `s`, with an ellipsis when cut.
fn excerpt(s: &str, max: usize) -> String {
    let s = s.trim();
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", s[..at].trim_end()),
        None => s.to_string(),
    }
}

/// The tags of an API: its own and its operations', first spelling wins,
/// compared case-insensitively, sorted.
fn tags_of(c: &Catalog, id: &str, api: &Api) -> Vec<String> {
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let ops = c.operations.get(id);
    let op_tags = ops
        .into_iter()
        .flat_map(|o| o.values())
        .flat_map(|o| &o.tags);
    for t in api.tags.iter().chain(op_tags) {
        let t = t.trim();
        if !t.is_empty() {
            seen.entry(t.to_lowercase())
                .or_insert_with(|| t.to_string());
        }
    }
    seen.into_values().collect()
}

/// Whether every search term occurs in the API's name, description, path
/// or one of its operations' names (case-insensitive).
fn matches(c: &Catalog, id: &str, api: &Api, terms: &[String]) -> bool {
    if terms.is_empty() {
        return true;
    }
    let mut hay = vec![
        api.display_name.to_lowercase(),
        api.description.as_deref().unwrap_or("").to_lowercase(),
        api.path.to_lowercase(),
    ];
    if let Some(ops) = c.operations.get(id) {
        hay.extend(ops.values().map(|o| o.display_name.to_lowercase()));
    }
    terms
        .iter()
        .all(|t| hay.iter().any(|h| h.contains(t.as_str())))
}

/// An API as the catalog lists it.
pub struct ApiCard {
    pub id: String,
    pub name: String,
    pub description: String,
    pub path: String,
    pub op_count: usize,
    pub tags: Vec<String>,
    pub version: String,
}

/// A tag in the filter list.
pub struct TagLink {
    pub name: String,
    pub count: usize,
    pub active: bool,
    pub href: String,
}

#[derive(Template)]
#[template(path = "portal/apis.html")]
struct CatalogPage {
    chrome: Chrome,
    q: String,
    tag: String,
    apis: Vec<ApiCard>,
    tags: Vec<TagLink>,
    /// How many APIs the visitor sees at all.
    visible: usize,
    /// The list without the tag filter (keeps the search).
    clear_tag_href: String,
}

fn catalog_href(q: &str, tag: &str) -> String {
    let mut parts = Vec::new();
    if !q.is_empty() {
        parts.push(format!("q={}", enc(q)));
    }
    if !tag.is_empty() {
        parts.push(format!("tag={}", enc(tag)));
    }
    if parts.is_empty() {
        "/apis".into()
    } else {
        format!("/apis?{}", parts.join("&"))
    }
}

/// `GET /apis?q=...&tag=...`.
pub async fn list(State(s): State<PortalState>, v: Visitor, RawQuery(raw): RawQuery) -> Response {
    let pairs = query_pairs(raw.as_deref());
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().chars().take(200).collect::<String>())
            .unwrap_or_default()
    };
    let (q, tag) = (get("q"), get("tag"));
    let terms: Vec<String> = q.split_whitespace().map(str::to_lowercase).collect();
    let c = s.catalog();
    let viewer = v.viewer(&c);
    let visible = viewer.apis(&c);
    let mut counts: BTreeMap<String, (String, usize)> = BTreeMap::new();
    let mut apis = Vec::new();
    for (id, api) in &visible {
        if !matches(&c, id, api, &terms) {
            continue;
        }
        let tags = tags_of(&c, id, api);
        for t in &tags {
            counts.entry(t.to_lowercase()).or_insert((t.clone(), 0)).1 += 1;
        }
        if !tag.is_empty() && !tags.iter().any(|t| t.eq_ignore_ascii_case(&tag)) {
            continue;
        }
        apis.push(ApiCard {
            id: id.to_string(),
            name: api.display_name.clone(),
            description: excerpt(api.description.as_deref().unwrap_or(""), 240),
            path: api.path.clone(),
            op_count: c.operations.get(id.as_str()).map_or(0, |o| o.len()),
            tags,
            version: api.api_version.clone().unwrap_or_default(),
        });
    }
    apis.sort_by(|a, b| {
        a.name
            .to_lowercase()
            .cmp(&b.name.to_lowercase())
            .then(a.id.cmp(&b.id))
    });
    let mut tags: Vec<TagLink> = counts
        .into_values()
        .map(|(name, count)| TagLink {
            active: name.eq_ignore_ascii_case(&tag),
            href: catalog_href(&q, &name),
            name,
            count,
        })
        .collect();
    if !tag.is_empty() && !tags.iter().any(|t| t.active) {
        tags.push(TagLink {
            name: tag.clone(),
            count: 0,
            active: true,
            href: catalog_href(&q, &tag),
        });
    }
    render(&CatalogPage {
        chrome: v.chrome("APIs"),
        clear_tag_href: catalog_href(&q, ""),
        visible: visible.len(),
        q,
        tag,
        apis,
        tags,
    })
}

/// An operation in a list.
pub struct OpLink {
    pub id: String,
    pub name: String,
    pub method: String,
    pub method_class: String,
    pub url_template: String,
    pub current: bool,
}

/// Operations under one tag ("Operations" for those without one).
pub struct OpGroup {
    pub name: String,
    pub ops: Vec<OpLink>,
}

/// The operations of an API grouped by tag: tags in alphabetical order,
/// untagged operations last under "Operations"; names sorted within.
fn groups(c: &Catalog, api_id: &str, current: Option<&str>) -> Vec<OpGroup> {
    let mut by_tag: BTreeMap<String, (String, Vec<OpLink>)> = BTreeMap::new();
    let mut untagged = Vec::new();
    let link = |id: &str, o: &Operation| OpLink {
        id: id.to_string(),
        name: o.display_name.clone(),
        method: method_label(&o.method),
        method_class: method_class(&o.method),
        url_template: o.url_template.clone(),
        current: current == Some(id),
    };
    for (id, o) in c.operations.get(api_id).into_iter().flatten() {
        let mut tagged = false;
        let mut seen: Vec<String> = Vec::new();
        for t in &o.tags {
            let t = t.trim();
            if t.is_empty() || seen.contains(&t.to_lowercase()) {
                continue;
            }
            seen.push(t.to_lowercase());
            tagged = true;
            by_tag
                .entry(t.to_lowercase())
                .or_insert_with(|| (t.to_string(), Vec::new()))
                .1
                .push(link(id, o));
        }
        if !tagged {
            untagged.push(link(id, o));
        }
    }
    let sort = |ops: &mut Vec<OpLink>| {
        ops.sort_by(|a, b| {
            a.name
                .to_lowercase()
                .cmp(&b.name.to_lowercase())
                .then(a.id.cmp(&b.id))
        })
    };
    let mut out: Vec<OpGroup> = by_tag
        .into_values()
        .map(|(name, mut ops)| {
            sort(&mut ops);
            OpGroup { name, ops }
        })
        .collect();
    if !untagged.is_empty() {
        sort(&mut untagged);
        out.push(OpGroup {
            name: "Operations".into(),
            ops: untagged,
        });
    }
    out
}

/// A registered regional gateway, as the API page lists it.
pub struct RegionRow {
    pub region: String,
    pub gateway: String,
    pub status: String,
}

fn regions(s: &PortalState) -> Vec<RegionRow> {
    let mut rows: Vec<RegionRow> = (s.inner.gateways)()
        .iter()
        .map(|g| {
            let str_at = |ptr: &str| {
                g.pointer(ptr)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            RegionRow {
                region: str_at("/locationData/name"),
                gateway: str_at("/id"),
                status: match str_at("/status") {
                    st if st.is_empty() => "unknown".into(),
                    st => st,
                },
            }
        })
        .collect();
    rows.sort_by(|a, b| a.region.cmp(&b.region).then(a.gateway.cmp(&b.gateway)));
    rows
}

/// How a visitor authenticates to an API, and the key to show them.
pub struct KeyInfo {
    /// Whether calls need a subscription key.
    pub required: bool,
    pub header: String,
    pub query: String,
    pub signed_in: bool,
    /// The visitor's primary key for this API (first active subscription
    /// that covers it).
    pub key: Option<String>,
    pub subscription: String,
}

impl KeyInfo {
    /// The key, or the placeholder.
    pub fn shown(&self) -> String {
        self.key
            .clone()
            .unwrap_or_else(|| reference::KEY_PLACEHOLDER.to_string())
    }
}

/// The primary key and name of `uid`'s first active subscription that
/// covers `api_id` (scope `/apis`, `/apis/{id}` or a product holding it).
pub fn user_key(c: &Catalog, uid: &str, api_id: &str) -> Option<(String, String)> {
    let owner = format!("/users/{uid}");
    c.subscriptions.values().find_map(|sub| {
        if sub.owner_id.as_deref() != Some(owner.as_str())
            || sub.state != SubscriptionState::Active
            || sub.primary_key.is_empty()
        {
            return None;
        }
        let covers = match SubscriptionScope::parse(&sub.scope)? {
            SubscriptionScope::AllApis => true,
            SubscriptionScope::Api(a) => a == api_id,
            SubscriptionScope::Product(p) => {
                c.product_apis.get(&p).is_some_and(|a| a.contains(api_id))
            }
        };
        covers.then(|| {
            (
                sub.primary_key.expose().to_string(),
                sub.display_name.clone(),
            )
        })
    })
}

fn key_info(c: &Catalog, v: &Visitor, api_id: &str, api: &Api) -> KeyInfo {
    // An open product lets calls through without a key (as the gateway does).
    let open = c
        .products_of_api(api_id)
        .any(|p| c.products.get(p).is_some_and(|p| !p.subscription_required));
    let found = v.user.as_ref().and_then(|u| user_key(c, &u.uid, api_id));
    let (key, subscription) = match found {
        Some((k, n)) => (Some(k), n),
        None => (None, String::new()),
    };
    KeyInfo {
        required: api.subscription_required && !open,
        header: api.subscription_key_parameter_names.header.clone(),
        query: api.subscription_key_parameter_names.query.clone(),
        signed_in: v.user.is_some(),
        key,
        subscription,
    }
}

/// A product holding the API that the visitor sees.
pub struct ProductLink {
    pub id: String,
    pub name: String,
}

fn products_of(c: &Catalog, v: &Visitor, api_id: &str) -> Vec<ProductLink> {
    let viewer = v.viewer(c);
    c.products_of_api(api_id)
        .filter(|p| viewer.sees_product(c, p))
        .filter_map(|p| {
            c.products.get(p).map(|prod| ProductLink {
                id: p.to_string(),
                name: prod.display_name.clone(),
            })
        })
        .collect()
}

/// The base URL of an API on this node's gateway.
fn base_url(s: &PortalState, v: &Visitor, api: &Api) -> String {
    let gw = s.gateway_url(v.host.as_deref());
    if api.path.is_empty() {
        gw
    } else {
        format!("{gw}/{}", api.path)
    }
}

/// The API and operation a page is about, or the 404 page.
fn visible_api<'c>(c: &'c Catalog, v: &Visitor, id: &str) -> Result<&'c Api, PortalError> {
    match c.apis.get(id) {
        Some(api) if v.viewer(c).sees_api(c, id) => Ok(api),
        _ => Err(PortalError::not_found(v, "There is no such API.")),
    }
}

#[derive(Template)]
#[template(path = "portal/api.html")]
struct ApiPage {
    chrome: Chrome,
    id: String,
    name: String,
    description: String,
    version: String,
    tags: Vec<String>,
    base_url: String,
    regions: Vec<RegionRow>,
    key: KeyInfo,
    products: Vec<ProductLink>,
    groups: Vec<OpGroup>,
    spec_format: Option<String>,
}

/// `GET /apis/{apiId}`.
pub async fn api(
    State(s): State<PortalState>,
    v: Visitor,
    Path(id): Path<String>,
) -> Result<Response, PortalError> {
    let c = s.catalog();
    let api = visible_api(&c, &v, &id)?;
    let groups = groups(&c, &id, None);
    Ok(render(&ApiPage {
        chrome: v.chrome(api.display_name.clone()),
        name: api.display_name.clone(),
        description: api.description.clone().unwrap_or_default(),
        version: api.api_version.clone().unwrap_or_default(),
        tags: api.tags.clone(),
        base_url: base_url(&s, &v, api),
        regions: regions(&s),
        key: key_info(&c, &v, &id, api),
        products: products_of(&c, &v, &id),
        groups,
        spec_format: c
            .api_specs
            .get(&id)
            .map(|sp| spec_kind(&sp.format).2.to_string()),
        id,
    }))
}

/// A form field of the try-it console.
pub struct Field {
    pub id: String,
    pub name: String,
    pub label: String,
    pub value: String,
    pub required: bool,
    pub hint: String,
}

/// The try-it console of an operation.
pub struct ConsoleForm {
    /// The operation's method, or empty when it takes any (then the
    /// visitor picks one from `methods`).
    pub method: String,
    pub methods: Vec<&'static str>,
    /// The operation's URL template: its path part and its query part.
    pub path_template: String,
    pub query_template: String,
    pub params: Vec<Field>,
    pub query: Vec<Field>,
    pub headers: Vec<Field>,
    /// The request body pre-filled (the first request example); `None`
    /// hides the body field (GET, HEAD, ...).
    pub body: Option<String>,
}

fn field(kind: &str, i: usize, p: &Param, value: String) -> Field {
    let mut hint = p.type_label.clone();
    if !p.values.is_empty() {
        hint.push_str(&format!(" · one of: {}", p.values.join(", ")));
    }
    if !p.description.is_empty() {
        hint.push_str(" · ");
        hint.push_str(&excerpt(&p.description, 160));
    }
    Field {
        id: format!("console-{kind}-{i}"),
        name: format!("{kind}:{}", p.name),
        label: p.name.clone(),
        value,
        required: p.required,
        hint,
    }
}

const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

fn console_form(op: &Operation, req: &RequestDoc, key: &KeyInfo) -> ConsoleForm {
    let (path_template, query_template) = match op.url_template.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (op.url_template.clone(), String::new()),
    };
    let default = |p: &Param| p.default.clone().unwrap_or_default();
    let mut params: Vec<Field> = req
        .template
        .iter()
        .enumerate()
        .map(|(i, p)| field("param", i, p, default(p)))
        .collect();
    // A trailing `*` (APIM's `/*`) takes the rest of the path.
    if path_template.ends_with('*') {
        params.push(Field {
            id: "console-param-rest".into(),
            name: "param:*".into(),
            label: "Rest of the path".into(),
            value: String::new(),
            required: false,
            hint: format!("Replaces * in {path_template}, e.g. items/42"),
        });
    }
    let query = req
        .query
        .iter()
        .enumerate()
        .map(|(i, p)| field("query", i, p, default(p)))
        .collect();
    let mut headers: Vec<Field> = Vec::new();
    if key.required {
        headers.push(Field {
            id: "console-key".into(),
            name: format!("header:{}", key.header),
            label: key.header.clone(),
            value: key.key.clone().unwrap_or_default(),
            required: false,
            hint: if key.key.is_some() {
                format!("Your subscription key ({})", key.subscription)
            } else {
                "Your subscription key: subscribe to a product containing this API to get one"
                    .into()
            },
        });
    }
    let mut content_type = req
        .representations
        .first()
        .map(|r| r.content_type.clone())
        .filter(|ct| !ct.is_empty());
    for (i, p) in req.headers.iter().enumerate() {
        if p.name.eq_ignore_ascii_case(&key.header) && key.required {
            continue;
        }
        let value = if p.name.eq_ignore_ascii_case("content-type") {
            content_type.take().unwrap_or_else(|| default(p))
        } else {
            default(p)
        };
        headers.push(field("header", i, p, value));
    }
    let body_allowed = op.method == "*" || reference::has_body(&op.method);
    if let (Some(ct), true) = (content_type, body_allowed) {
        headers.push(Field {
            id: "console-content-type".into(),
            name: "header:Content-Type".into(),
            label: "Content-Type".into(),
            value: ct,
            required: false,
            hint: "The media type of the body".into(),
        });
    }
    let body = body_allowed.then(|| {
        req.representations
            .iter()
            .find_map(|r| r.examples.first())
            .map(|e| e.text.clone())
            .unwrap_or_default()
    });
    ConsoleForm {
        method: if op.method == "*" {
            String::new()
        } else {
            op.method.clone()
        },
        methods: METHODS.to_vec(),
        path_template,
        query_template,
        params,
        query,
        headers,
        body,
    }
}

/// The request code samples show: template and query parameters filled
/// with their defaults (else left as `{name}`), required query parameters
/// and headers, the key header, and the first request example.
fn sample_request(base: &str, op: &Operation, req: &RequestDoc, key: &KeyInfo) -> SampleRequest {
    let value = |p: &Param| {
        p.default
            .clone()
            .or_else(|| p.example.clone())
            .unwrap_or_else(|| format!("{{{}}}", p.name))
    };
    let mut url = op.url_template.clone();
    for p in &req.template {
        if let Some(d) = p.default.clone().or_else(|| p.example.clone()) {
            url = url.replace(&format!("{{{}}}", p.name), &enc(&d));
        }
    }
    let method = if op.method == "*" {
        "GET".to_string()
    } else {
        op.method.clone()
    };
    let mut headers = Vec::new();
    if key.required {
        headers.push((key.header.clone(), key.shown()));
    }
    for p in &req.headers {
        if p.required && !(key.required && p.name.eq_ignore_ascii_case(&key.header)) {
            headers.push((p.name.clone(), value(p)));
        }
    }
    let rep = req.representations.first();
    let body = if reference::has_body(&method) {
        rep.and_then(|r| r.examples.first()).map(|e| e.text.clone())
    } else {
        None
    };
    let content_type = rep.map(|r| r.content_type.clone()).unwrap_or_default();
    if body.is_some()
        && !content_type.is_empty()
        && !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        headers.push(("Content-Type".into(), content_type.clone()));
    }
    SampleRequest {
        method,
        url: format!("{base}{url}"),
        query: req
            .query
            .iter()
            .filter(|p| p.required)
            .map(|p| (p.name.clone(), value(p)))
            .collect(),
        headers,
        json_body: content_type.to_ascii_lowercase().contains("json"),
        body,
    }
}

#[derive(Template)]
#[template(path = "portal/operation.html")]
struct OperationPage {
    chrome: Chrome,
    api_id: String,
    api_name: String,
    op_id: String,
    name: String,
    description: String,
    method: String,
    method_class: String,
    url_template: String,
    request_url: String,
    groups: Vec<OpGroup>,
    /// Template and query parameters.
    parameters: Vec<Param>,
    /// The key header (when a key is needed) and the documented headers.
    headers: Vec<Param>,
    req: RequestDoc,
    responses: Vec<ResponseDoc>,
    key: KeyInfo,
    samples: Samples,
    console: ConsoleForm,
    signin_href: String,
}

/// `GET /apis/{apiId}/operations/{opId}`.
pub async fn operation(
    State(s): State<PortalState>,
    v: Visitor,
    Path((api_id, op_id)): Path<(String, String)>,
) -> Result<Response, PortalError> {
    let c = s.catalog();
    let api = visible_api(&c, &v, &api_id)?;
    let op = c
        .operations
        .get(&api_id)
        .and_then(|ops| ops.get(&op_id))
        .ok_or_else(|| PortalError::not_found(&v, "This API has no such operation."))?;
    let req = reference::request_doc(op);
    let key = key_info(&c, &v, &api_id, api);
    let base = base_url(&s, &v, api);
    let samples = sample_request(&base, op, &req, &key).samples();
    let console = console_form(op, &req, &key);
    let here = format!("/apis/{}/operations/{}", enc(&api_id), enc(&op_id));
    let parameters = req.template.iter().chain(&req.query).cloned().collect();
    let mut headers = Vec::new();
    if key.required {
        headers.push(Param {
            name: key.header.clone(),
            location: "header",
            type_label: "string".into(),
            required: true,
            description: format!(
                "Your subscription key (or send it in the {} query parameter).",
                key.query
            ),
            ..Param::default()
        });
    }
    headers.extend(
        req.headers
            .iter()
            .filter(|h| !(key.required && h.name.eq_ignore_ascii_case(&key.header)))
            .cloned(),
    );
    let signed_in = v.user.is_some();
    let mut resp = render(&OperationPage {
        chrome: v.chrome(format!("{} · {}", op.display_name, api.display_name)),
        api_name: api.display_name.clone(),
        name: op.display_name.clone(),
        description: op.description.clone().unwrap_or_default(),
        method: method_label(&op.method),
        method_class: method_class(&op.method),
        url_template: op.url_template.clone(),
        request_url: format!("{base}{}", op.url_template),
        groups: groups(&c, &api_id, Some(&op_id)),
        parameters,
        headers,
        responses: reference::responses(op),
        signin_href: format!("/signin?returnUrl={}", enc(&here)),
        req,
        key,
        samples,
        console,
        api_id,
        op_id,
    });
    if signed_in {
        // The page may carry the developer's key: keep it out of caches.
        resp.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        );
    }
    Ok(resp)
}

/// The content type, file extension and label of an import format.
fn spec_kind(format: &str) -> (&'static str, &'static str, &'static str) {
    match format {
        "openapi" => ("application/yaml", "yaml", "OpenAPI (YAML)"),
        "swagger-json" => ("application/json", "json", "Swagger 2.0 (JSON)"),
        f if f.contains("json") => ("application/json", "json", "OpenAPI (JSON)"),
        _ => ("application/yaml", "yaml", "OpenAPI"),
    }
}

/// `GET /apis/{apiId}/openapi`: the document the API was imported from,
/// as received.
pub async fn openapi(
    State(s): State<PortalState>,
    v: Visitor,
    Path(id): Path<String>,
) -> Result<Response, PortalError> {
    let c = s.catalog();
    visible_api(&c, &v, &id)?;
    let spec = c.api_specs.get(&id).ok_or_else(|| {
        PortalError::not_found(
            &v,
            "This API was not imported from a definition, so there is none to download.",
        )
    })?;
    let (content_type, ext, _) = spec_kind(&spec.format);
    let stem: String = id
        .chars()
        .map(|ch| {
            if ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.') {
                ch
            } else {
                '_'
            }
        })
        .collect();
    let disposition = format!("attachment; filename=\"{stem}.{ext}\"");
    let mut resp = spec.document.clone().into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(d) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, d);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_decode() {
        assert_eq!(
            query_pairs(Some("q=hello+world&tag=a%26b&x")),
            [
                ("q".to_string(), "hello world".to_string()),
                ("tag".to_string(), "a&b".to_string()),
                ("x".to_string(), String::new()),
            ]
        );
        assert!(query_pairs(None).is_empty());
        assert_eq!(query_pairs(Some("q=%ZZ%")), [("q".into(), "%ZZ%".into())]);
    }

    #[test]
    fn excerpts_cut_on_characters() {
        assert_eq!(excerpt("héllo wörld", 5), "héllo…");
        assert_eq!(excerpt("short", 10), "short");
    }
}
