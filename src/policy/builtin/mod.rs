//! The executable policy tree: checked XML → [`Doc`]s of [`Step`]s, one
//! [`Policy`] variant per built-in policy (each in its own file: parse,
//! apply, the sections it may appear in, tests).
//!
//! Compilation happens once, when the snapshot is built: `{{named values}}`
//! are substituted, `<include-fragment>`s are inlined, expressions are
//! parsed and bound. Running a step touches only the request's [`State`].
//! `<base/>`, `<choose>` and `<forward-request>` steer the pipeline and are
//! run by the gateway, which owns the sections' order and the network.

// `PolicyError` carries what `context.LastError` shows; it travels only on
// the failure path, so its size does not matter.
#![allow(clippy::result_large_err)]

pub mod authentication_basic;
pub mod authentication_certificate;
pub mod authentication_managed_identity;
pub mod azure_only;
pub mod caching;
pub mod check_header;
pub mod choose;
pub mod cors;
pub mod counting;
pub mod dapr;
pub mod emit_metric;
pub mod find_and_replace;
pub mod forward_request;
pub mod ip_filter;
pub mod json_to_xml;
pub mod jsonp;
pub mod limit_concurrency;
pub mod llm;
pub mod log_to_eventhub;
pub mod mock_response;
pub mod proxy;
pub mod quota;
pub mod rate_limit;
pub mod retry;
pub mod return_response;
pub mod rewrite_uri;
pub mod send_request;
pub mod set_backend_service;
pub mod set_body;
pub mod set_header;
pub mod set_method;
pub mod set_query_parameter;
pub mod set_status;
pub mod set_variable;
pub mod trace;
pub mod validate_client_certificate;
pub mod validate_jwt;
pub mod wait;
pub mod xml_to_json;

use super::xml::{Element, Node};
use super::{cache, counters, line_col, Diagnostic};
use crate::expr::context::{Ctx, Url};
use crate::expr::{self, Compiled, Limits, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// A section of a policy document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Section {
    Inbound,
    Backend,
    Outbound,
    OnError,
}

impl Section {
    pub const ALL: [Section; 4] = [
        Section::Inbound,
        Section::Backend,
        Section::Outbound,
        Section::OnError,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Section::Inbound => "inbound",
            Section::Backend => "backend",
            Section::Outbound => "outbound",
            Section::OnError => "on-error",
        }
    }

    pub fn from_name(n: &str) -> Option<Section> {
        Section::ALL.into_iter().find(|s| s.name() == n)
    }

    /// Whether policies here act on the request (else on the response).
    pub fn on_request(self) -> bool {
        matches!(self, Section::Inbound | Section::Backend)
    }

    fn index(self) -> usize {
        self as usize
    }
}

use Section::{Inbound as I, Outbound as O};

/// Where APIM lets each policy appear (apim.md §2.6, §3): each built-in
/// declares its own `SECTIONS`; policies of later releases are listed here
/// so documents using them are placed correctly already. Policies not
/// listed may appear in any section.
pub fn sections_of(policy: &str) -> Option<&'static [Section]> {
    Some(match policy {
        "choose" => choose::SECTIONS,
        "set-variable" => set_variable::SECTIONS,
        "set-header" => set_header::SECTIONS,
        "set-query-parameter" => set_query_parameter::SECTIONS,
        "rewrite-uri" => rewrite_uri::SECTIONS,
        "set-backend-service" => set_backend_service::SECTIONS,
        "set-method" => set_method::SECTIONS,
        "set-status" => set_status::SECTIONS,
        "set-body" => set_body::SECTIONS,
        "return-response" => return_response::SECTIONS,
        "mock-response" => mock_response::SECTIONS,
        "forward-request" => forward_request::SECTIONS,
        "find-and-replace" => find_and_replace::SECTIONS,
        "json-to-xml" => json_to_xml::SECTIONS,
        "xml-to-json" => xml_to_json::SECTIONS,
        "check-header" => check_header::SECTIONS,
        "ip-filter" => ip_filter::SECTIONS,
        "cors" => cors::SECTIONS,
        "trace" => trace::SECTIONS,
        "jsonp" => jsonp::SECTIONS,
        "validate-jwt" | "validate-azure-ad-token" => validate_jwt::SECTIONS,
        "validate-client-certificate" => validate_client_certificate::SECTIONS,
        "rate-limit" | "rate-limit-by-key" => rate_limit::SECTIONS,
        "quota" | "quota-by-key" => quota::SECTIONS,
        "limit-concurrency" => limit_concurrency::SECTIONS,
        "send-request" | "send-one-way-request" => send_request::SECTIONS,
        "retry" => retry::SECTIONS,
        "wait" => wait::SECTIONS,
        "proxy" => proxy::SECTIONS,
        "log-to-eventhub" => log_to_eventhub::SECTIONS,
        "emit-metric" => emit_metric::SECTIONS,
        "llm-token-limit" | "azure-openai-token-limit" => llm::LIMIT_SECTIONS,
        "llm-emit-token-metric" | "azure-openai-emit-token-metric" => llm::METRIC_SECTIONS,
        "cache-lookup"
        | "authentication-basic"
        | "authentication-certificate"
        | "authentication-managed-identity" => &[I],
        "cache-store" => &[O],
        "publish-to-dapr" => dapr::PUBLISH_SECTIONS,
        "invoke-dapr-binding" => dapr::BINDING_SECTIONS,
        _ => return None,
    })
}

/// A value as written in a policy: literal text or an expression.
#[derive(Debug, Clone)]
pub enum Val {
    Lit(Arc<str>),
    Expr(Arc<Compiled>),
}

impl Val {
    pub fn lit(s: &str) -> Val {
        Val::Lit(s.into())
    }

    /// Evaluates to a value (a literal is a string).
    pub fn eval(&self, st: &State) -> Result<Value, PolicyError> {
        match self {
            Val::Lit(s) => Ok(Value::Str(s.clone())),
            Val::Expr(c) => c.eval(&st.ctx, st.limits).map_err(PolicyError::expression),
        }
    }

    /// Evaluates to text (`null` is "").
    pub fn text(&self, st: &State) -> Result<String, PolicyError> {
        Ok(match self {
            Val::Lit(s) => s.to_string(),
            Val::Expr(_) => self.eval(st)?.to_display(),
        })
    }

    /// Evaluates a boolean (conditions): literal `true`/`false`, or an
    /// expression that yields a bool.
    pub fn truth(&self, st: &State) -> Result<bool, PolicyError> {
        match self.eval(st)? {
            Value::Bool(b) => Ok(b),
            Value::Str(s) if s.trim().eq_ignore_ascii_case("true") => Ok(true),
            Value::Str(s) if s.trim().eq_ignore_ascii_case("false") => Ok(false),
            other => Err(PolicyError::new(
                500,
                "ExpressionValueEvaluationFailure",
                format!(
                    "Expression evaluation failed. A condition must be true or false, not a {}.",
                    other.type_name()
                ),
            )),
        }
    }

    pub fn reads_request_body(&self) -> bool {
        matches!(self, Val::Expr(c) if c.facts.reads_request_body)
    }

    pub fn reads_response_body(&self) -> bool {
        matches!(self, Val::Expr(c) if c.facts.reads_response_body)
    }
}

/// A failure inside the pipeline: what `context.LastError` will show and
/// the status the caller gets unless `on-error` decides otherwise.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyError {
    pub status: u16,
    /// The policy element name, or a built-in step.
    pub source: String,
    pub reason: String,
    pub message: String,
    pub path: String,
    pub policy_id: String,
    /// The scope (`global`, `product`, `api`, `operation`) and section the
    /// failing policy belongs to; filled by the pipeline.
    pub scope: String,
    pub section: String,
    /// Extra headers for the default error response (`Retry-After`, ...).
    pub headers: Vec<(String, String)>,
}

impl PolicyError {
    pub fn new(status: u16, reason: &str, message: impl Into<String>) -> PolicyError {
        PolicyError {
            status,
            source: String::new(),
            reason: reason.to_string(),
            message: message.into(),
            path: String::new(),
            policy_id: String::new(),
            scope: String::new(),
            section: String::new(),
            headers: Vec::new(),
        }
    }

    /// An exception thrown by an expression.
    pub fn expression(e: expr::EvalError) -> PolicyError {
        PolicyError::new(
            500,
            "ExpressionValueEvaluationFailure",
            format!("Expression evaluation failed. {}", e.message),
        )
    }
}

/// What a step tells the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Continue,
    /// Stop and answer with `ctx.response` (return-response, mock-response,
    /// a CORS preflight).
    Respond,
}

/// CORS headers to put on the final response.
#[derive(Debug, Clone, Default)]
pub struct CorsHeaders(pub Vec<(String, String)>);

/// One request's state as policies see and change it.
pub struct State {
    pub ctx: Ctx,
    pub section: Section,
    pub limits: Limits,
    /// The backend base URL (`set-backend-service` replaces it).
    pub backend_base: Option<Url>,
    /// The path after the base (`rewrite-uri` replaces it).
    pub suffix: String,
    /// Backend entities by id (for `set-backend-service backend-id`).
    pub backends: Arc<HashMap<String, Url>>,
    /// The operation's documented responses (for `mock-response`).
    pub responses: Arc<Vec<serde_json::Value>>,
    /// Headers `cors` adds to the final response.
    pub cors: Option<CorsHeaders>,
    /// Whether the request is a CORS preflight the pipeline answers.
    pub preflight: bool,
    /// The gateway's counters (rate limits, quotas, concurrency); they
    /// outlive snapshots.
    pub counters: Arc<counters::Counters>,
    /// Counting work left for the end of the request.
    pub pending: counting::Pending,
    /// The backend entity `set-backend-service backend-id` chose: its
    /// credentials, circuit breaker and pool apply to `forward-request`.
    pub backend_id: Option<String>,
    /// The HTTP proxy `forward-request` goes through (`<proxy>`).
    pub proxy: Option<proxy::ProxyTarget>,
    /// The client certificate `forward-request` presents to the backend
    /// (`authentication-certificate`; it wins over the backend's own).
    pub client_cert: Option<Arc<crate::model::ClientCert>>,
    /// The gateway's custom metrics and loggers (they outlive snapshots).
    pub telemetry: Arc<crate::telemetry::Telemetry>,
    /// Token counting and token metrics left for the end of the request.
    pub llm: llm::Pending,
    /// The gateway's cache (responses and values); it outlives snapshots.
    pub cache: Arc<cache::Cache>,
    /// The client certificate presented on the HTTPS listener
    /// (`validate-client-certificate`).
    pub peer_cert: Option<Arc<crate::model::PeerCert>>,
    /// What `cache-lookup` found, for `cache-store` and the pipeline.
    pub cached: caching::Lookup,
    /// `trace` messages for the API inspector: `Some` only while a debug
    /// token traces the request.
    pub trace_log: Option<Vec<trace::Message>>,
}

impl State {
    /// Recomputes `ctx.request.url` from the base, suffix and current query.
    pub fn update_url(&mut self) {
        let Some(base) = &self.backend_base else {
            return;
        };
        let mut url = base.clone();
        let base_path = url.path.trim_end_matches('/');
        url.path = if self.suffix.is_empty() {
            if base_path.is_empty() {
                "/".to_string()
            } else {
                base_path.to_string()
            }
        } else {
            format!("{base_path}{}", self.suffix)
        };
        url.query = std::mem::take(&mut self.ctx.request.url.query);
        self.ctx.request.url = url;
    }

    /// Whether the client's `Accept` header mentions `kind` (`xml`, `json`).
    pub fn client_accepts(&self, kind: &str) -> bool {
        self.ctx
            .request
            .message
            .headers
            .joined("accept")
            .is_some_and(|a| a.to_ascii_lowercase().contains(kind))
    }

    /// The response policies act on (created empty 200 when absent).
    pub fn response_mut(&mut self) -> &mut expr::context::Response {
        self.ctx
            .response
            .get_or_insert_with(|| expr::context::Response {
                status: 200,
                reason: "OK".into(),
                ..Default::default()
            })
    }

    /// The message (headers and body) of the current direction.
    pub fn message_mut(&mut self) -> &mut expr::context::Message {
        if self.section.on_request() {
            &mut self.ctx.request.message
        } else {
            &mut self.response_mut().message
        }
    }

    pub fn message(&self) -> Option<&expr::context::Message> {
        if self.section.on_request() {
            Some(&self.ctx.request.message)
        } else {
            self.ctx.response.as_ref().map(|r| &r.message)
        }
    }
}

/// A policy and where it sits.
#[derive(Debug)]
pub struct Step {
    pub policy: Policy,
    pub name: Arc<str>,
    pub id: Option<Arc<str>>,
    /// `choose[1]/when[2]/set-header[1]`.
    pub path: Arc<str>,
}

/// The built-in policies.
#[derive(Debug)]
pub enum Policy {
    Base,
    Choose(choose::Choose),
    SetVariable(set_variable::SetVariable),
    SetHeader(set_header::SetHeader),
    SetQueryParameter(set_query_parameter::SetQueryParameter),
    RewriteUri(rewrite_uri::RewriteUri),
    SetBackendService(set_backend_service::SetBackendService),
    SetMethod(set_method::SetMethod),
    SetStatus(set_status::SetStatus),
    SetBody(set_body::SetBody),
    ReturnResponse(return_response::ReturnResponse),
    MockResponse(mock_response::MockResponse),
    ForwardRequest(forward_request::ForwardRequest),
    FindAndReplace(find_and_replace::FindAndReplace),
    JsonToXml(json_to_xml::JsonToXml),
    XmlToJson(xml_to_json::XmlToJson),
    CheckHeader(check_header::CheckHeader),
    IpFilter(ip_filter::IpFilter),
    Cors(cors::Cors),
    Trace(trace::Trace),
    Jsonp(jsonp::Jsonp),
    /// Shared: the gateway holds it across the await of key discovery.
    ValidateJwt(Arc<validate_jwt::ValidateJwt>),
    ValidateClientCertificate(validate_client_certificate::ValidateClientCertificate),
    RateLimit(rate_limit::RateLimit),
    RateLimitByKey(rate_limit::RateLimitByKey),
    Quota(quota::Quota),
    QuotaByKey(quota::QuotaByKey),
    LimitConcurrency(limit_concurrency::LimitConcurrency),
    AuthenticationBasic(authentication_basic::AuthenticationBasic),
    AuthenticationCertificate(authentication_certificate::AuthenticationCertificate),
    /// Shared: the gateway holds it across the await of the token fetch.
    ManagedIdentity(Arc<authentication_managed_identity::ManagedIdentity>),
    /// Shared: the gateway holds them across the call's await.
    SendRequest(Arc<send_request::SendRequest>),
    SendOneWayRequest(Arc<send_request::SendRequest>),
    Retry(retry::Retry),
    Wait(wait::Wait),
    Proxy(proxy::Proxy),
    LogToEventHub(log_to_eventhub::LogToEventHub),
    EmitMetric(emit_metric::EmitMetric),
    TokenLimit(llm::TokenLimit),
    EmitTokenMetric(llm::EmitTokenMetric),
    CacheLookup(caching::CacheLookup),
    CacheStore(caching::CacheStore),
    CacheLookupValue(caching::CacheLookupValue),
    CacheStoreValue(caching::CacheStoreValue),
    CacheRemoveValue(caching::CacheRemoveValue),
    /// `publish-to-dapr`, `invoke-dapr-binding`: shared like `SendRequest`.
    Dapr(Arc<dapr::DaprCall>),
}

impl Step {
    /// Runs a policy that needs nothing but the state (everything except
    /// `base`, `choose` and `forward-request`, which the gateway runs).
    pub fn apply(&self, st: &mut State) -> Result<Outcome, PolicyError> {
        if st.preflight && !matches!(self.policy, Policy::Cors(_)) {
            // A CORS preflight runs only the cors policies (APIM §3.7).
            return Ok(Outcome::Continue);
        }
        let r = match &self.policy {
            Policy::Base
            | Policy::Choose(_)
            | Policy::ForwardRequest(_)
            | Policy::LimitConcurrency(_)
            | Policy::ManagedIdentity(_) => Ok(Outcome::Continue),
            Policy::AuthenticationBasic(p) => p.apply(st),
            Policy::AuthenticationCertificate(p) => p.apply(st),
            Policy::SendRequest(_)
            | Policy::SendOneWayRequest(_)
            | Policy::Retry(_)
            | Policy::Wait(_)
            | Policy::Dapr(_) => Ok(Outcome::Continue),
            Policy::Proxy(p) => p.apply(st),
            Policy::SetVariable(p) => p.apply(st),
            Policy::SetHeader(p) => p.apply(st),
            Policy::SetQueryParameter(p) => p.apply(st),
            Policy::RewriteUri(p) => p.apply(st),
            Policy::SetBackendService(p) => p.apply(st),
            Policy::SetMethod(p) => p.apply(st),
            Policy::SetStatus(p) => p.apply(st),
            Policy::SetBody(p) => p.apply(st),
            Policy::ReturnResponse(p) => p.apply(st),
            Policy::MockResponse(p) => p.apply(st),
            Policy::FindAndReplace(p) => p.apply(st),
            Policy::JsonToXml(p) => p.apply(st),
            Policy::XmlToJson(p) => p.apply(st),
            Policy::CheckHeader(p) => p.apply(st),
            Policy::IpFilter(p) => p.apply(st),
            Policy::Cors(p) => p.apply(st),
            Policy::Trace(p) => p.apply(st),
            Policy::Jsonp(p) => p.apply(st),
            Policy::ValidateJwt(p) => p.apply(st),
            Policy::ValidateClientCertificate(p) => p.apply(st),
            Policy::RateLimit(p) => p.apply(st),
            Policy::RateLimitByKey(p) => p.apply(st),
            Policy::Quota(p) => p.apply(st),
            Policy::QuotaByKey(p) => p.apply(st),
            Policy::LogToEventHub(p) => p.apply(st),
            Policy::EmitMetric(p) => p.apply(st),
            Policy::TokenLimit(p) => p.apply(st),
            Policy::EmitTokenMetric(p) => p.apply(st),
            Policy::CacheLookup(p) => p.apply(st),
            Policy::CacheStore(p) => p.apply(st),
            Policy::CacheLookupValue(p) => p.apply(st),
            Policy::CacheStoreValue(p) => p.apply(st),
            Policy::CacheRemoveValue(p) => p.apply(st),
        };
        r.map_err(|mut e| {
            if e.source.is_empty() {
                e.source = self.name.to_string();
            }
            e.path = self.path.to_string();
            e.policy_id = self.id.as_deref().unwrap_or("").to_string();
            e
        })
    }
}

/// A compiled policy document.
#[derive(Debug, Default)]
pub struct Doc {
    /// Per section: `None` when the document omits it (acts as `<base/>`).
    pub sections: [Option<Vec<Step>>; 4],
    pub reads_request_body: bool,
    pub reads_response_body: bool,
}

impl Doc {
    pub fn section(&self, s: Section) -> Option<&[Step]> {
        self.sections[s.index()].as_deref()
    }

    /// The document APIM uses at global scope when none is set:
    /// `<backend><forward-request/></backend>`, other sections empty.
    pub fn default_global() -> Doc {
        let mut d = Doc::default();
        for s in Section::ALL {
            d.sections[s.index()] = Some(Vec::new());
        }
        d.sections[Section::Backend.index()] = Some(vec![Step {
            policy: Policy::ForwardRequest(forward_request::ForwardRequest::default()),
            name: "forward-request".into(),
            id: None,
            path: "forward-request[1]".into(),
        }]);
        d
    }
}

/// Compiles checked documents; collects problems with positions.
pub struct Compiler<'a> {
    xml: &'a str,
    named_values: &'a dyn Fn(&str) -> Option<String>,
    fragments: &'a dyn Fn(&str) -> Option<String>,
    /// Whether a logger id exists (`log-to-eventhub`).
    loggers: &'a dyn Fn(&str) -> bool,
    /// Stored certificates (`authentication-certificate`); `None`: not
    /// resolved (compiled without the catalog).
    pub certificates: Option<&'a CertLookup<'a>>,
    /// `[dapr] sidecar_url`, when configured (the Dapr policies).
    pub dapr: Option<&'a Url>,
    /// The stored certificates prepared for `validate-client-certificate`
    /// (`None`: compiled without the catalog).
    pub client_trust: Option<Arc<validate_client_certificate::Trust>>,
    pub problems: Vec<Diagnostic>,
    reads_request_body: bool,
    reads_response_body: bool,
    depth: usize,
}

impl<'a> Compiler<'a> {
    pub fn error(&mut self, offset: usize, message: String) {
        let (line, col) = line_col(self.xml, offset);
        self.problems.push(Diagnostic { line, col, message });
    }

    /// `{{name}}` → its value (unknown names stay as written).
    pub fn substitute(&self, text: &str) -> String {
        if !text.contains("{{") {
            return text.to_string();
        }
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            match after.find("}}") {
                Some(end) => {
                    let name = &after[..end];
                    match (self.named_values)(name.trim()) {
                        Some(v) => out.push_str(&v),
                        None => {
                            out.push_str("{{");
                            out.push_str(name);
                            out.push_str("}}");
                        }
                    }
                    rest = &after[end + 2..];
                }
                None => {
                    out.push_str(&rest[start..]);
                    rest = "";
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// A value: an expression when the (substituted) text is `@(...)` or
    /// `@{...}`, else literal text.
    pub fn val(&mut self, raw: &str, offset: usize) -> Val {
        let text = self.substitute(raw);
        let t = text.trim();
        if t.starts_with("@(") || t.starts_with("@{") {
            match expr::compile(t, 0) {
                Ok(c) => {
                    self.reads_request_body |= c.facts.reads_request_body;
                    self.reads_response_body |= c.facts.reads_response_body;
                    Val::Expr(Arc::new(c))
                }
                Err(errs) => {
                    for e in errs {
                        self.error(offset, format!("expression: {}", e.message));
                    }
                    Val::lit("")
                }
            }
        } else {
            Val::Lit(text.into())
        }
    }

    /// The attribute `name` as a value.
    pub fn attr(&mut self, e: &Element, name: &str) -> Option<Val> {
        let a = e.attr(name)?;
        let (value, at) = (a.value.clone(), a.value_span.start);
        Some(self.val(&value, at))
    }

    /// A literal attribute (substituted; expressions are not allowed here).
    pub fn literal(&self, e: &Element, name: &str) -> Option<String> {
        e.attr(name).map(|a| self.substitute(&a.value))
    }

    /// A literal boolean attribute.
    pub fn flag(&mut self, e: &Element, name: &str, default: bool) -> bool {
        match self.literal(e, name) {
            None => default,
            Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                "true" => true,
                "false" => false,
                _ => {
                    let at = e
                        .attr(name)
                        .map(|a| a.value_span.start)
                        .unwrap_or(e.span.start);
                    self.error(at, format!("'{name}' must be true or false, not '{v}'"));
                    default
                }
            },
        }
    }

    /// A literal number attribute.
    pub fn number(&mut self, e: &Element, name: &str) -> Option<f64> {
        let v = self.literal(e, name)?;
        match v.trim().parse::<f64>() {
            Ok(n) if n.is_finite() => Some(n),
            _ => {
                let at = e
                    .attr(name)
                    .map(|a| a.value_span.start)
                    .unwrap_or(e.span.start);
                self.error(at, format!("'{name}' must be a number, not '{v}'"));
                None
            }
        }
    }

    /// The element's text content as a value.
    pub fn text(&mut self, e: &Element) -> Val {
        let mut raw = String::new();
        let mut at = e.span.end;
        for n in &e.children {
            if let Node::Text(t, span) = n {
                if raw.is_empty() {
                    at = span.start;
                }
                raw.push_str(t);
            }
        }
        // A named value may itself hold an expression.
        let substituted = self.substitute(&raw);
        let t = substituted.trim();
        if t.starts_with("@(") || t.starts_with("@{") {
            self.val(raw.trim(), at)
        } else {
            Val::Lit(substituted.into())
        }
    }

    /// The `<value>` children of `e` (set-header, set-query-parameter, ...).
    pub fn values(&mut self, e: &Element) -> Vec<Val> {
        e.elements()
            .filter(|c| c.name == "value")
            .map(|c| self.text(c))
            .collect()
    }

    /// Records that a policy in `section` reads the body it acts on.
    pub fn note_body(&mut self, section: Section) {
        if section.on_request() {
            self.reads_request_body = true;
        } else {
            self.reads_response_body = true;
        }
    }

    pub fn note_request_body(&mut self) {
        self.reads_request_body = true;
    }

    pub fn note_response_body(&mut self) {
        self.reads_response_body = true;
    }

    /// Compiles the policies inside `parent` (a section, `when`, ...).
    pub fn steps(&mut self, parent: &Element, section: Section, prefix: &str) -> Vec<Step> {
        let mut out = Vec::new();
        let mut counts: HashMap<String, usize> = HashMap::new();
        for child in parent.elements() {
            let n = counts.entry(child.name.clone()).or_insert(0);
            *n += 1;
            let path = if prefix.is_empty() {
                format!("{}[{n}]", child.name)
            } else {
                format!("{prefix}/{}[{n}]", child.name)
            };
            if let Some(allowed) = sections_of(&child.name) {
                if !allowed.contains(&section) {
                    let names: Vec<&str> = allowed.iter().map(|s| s.name()).collect();
                    self.error(
                        child.span.start,
                        format!(
                            "<{}> is not allowed in <{}>; it may appear in: {}",
                            child.name,
                            section.name(),
                            names.join(", ")
                        ),
                    );
                    continue;
                }
            }
            if child.name == "include-fragment" {
                self.include(child, section, &path, &mut out);
                continue;
            }
            if let Some(policy) = self.policy(child, section, &path) {
                out.push(Step {
                    policy,
                    name: child.name.as_str().into(),
                    id: child.attr("id").map(|a| Arc::from(a.value.as_str())),
                    path: path.into(),
                });
            }
        }
        out
    }

    fn include(&mut self, e: &Element, section: Section, path: &str, out: &mut Vec<Step>) {
        let Some(id) = self.literal(e, "fragment-id") else {
            self.error(e.span.start, "<include-fragment> needs fragment-id".into());
            return;
        };
        let Some(text) = (self.fragments)(&id) else {
            self.error(
                e.span.start,
                format!("policy fragment '{id}' does not exist"),
            );
            return;
        };
        if self.depth >= 16 {
            self.error(
                e.span.start,
                "policy fragments nest deeper than 16 levels".into(),
            );
            return;
        }
        let root = match super::xml::parse(&text) {
            Ok(r) => r,
            Err(d) => {
                self.error(e.span.start, format!("policy fragment '{id}': {d}"));
                return;
            }
        };
        // The fragment's own positions refer to its own text.
        let mut inner = Compiler {
            xml: &text,
            named_values: self.named_values,
            fragments: self.fragments,
            loggers: self.loggers,
            certificates: self.certificates,
            dapr: self.dapr,
            client_trust: self.client_trust.clone(),
            problems: Vec::new(),
            reads_request_body: false,
            reads_response_body: false,
            depth: self.depth + 1,
        };
        let steps = inner.steps(&root, section, path);
        self.reads_request_body |= inner.reads_request_body;
        self.reads_response_body |= inner.reads_response_body;
        for p in inner.problems {
            self.error(e.span.start, format!("in policy fragment '{id}' at {p}"));
        }
        out.extend(steps);
    }

    fn policy(&mut self, e: &Element, section: Section, path: &str) -> Option<Policy> {
        Some(match e.name.as_str() {
            "base" => Policy::Base,
            "choose" => Policy::Choose(choose::Choose::parse(self, e, section, path)?),
            "set-variable" => Policy::SetVariable(set_variable::SetVariable::parse(self, e)?),
            "set-header" => Policy::SetHeader(set_header::SetHeader::parse(self, e)?),
            "set-query-parameter" => {
                Policy::SetQueryParameter(set_query_parameter::SetQueryParameter::parse(self, e)?)
            }
            "rewrite-uri" => Policy::RewriteUri(rewrite_uri::RewriteUri::parse(self, e)?),
            "set-backend-service" if e.attr("dapr-app-id").is_some() => {
                let Some(sidecar) = self.dapr else {
                    self.error(e.span.start, azure_only::DAPR.into());
                    return None;
                };
                if section != Section::Inbound {
                    self.error(
                        e.span.start,
                        "<set-backend-service dapr-app-id> is allowed only in <inbound>".into(),
                    );
                    return None;
                }
                Policy::SetBackendService(set_backend_service::SetBackendService::parse_dapr(
                    self,
                    e,
                    sidecar.clone(),
                )?)
            }
            "publish-to-dapr" | "invoke-dapr-binding" if self.dapr.is_some() => {
                Policy::Dapr(Arc::new(dapr::DaprCall::parse(self, e, section)?))
            }
            "set-backend-service" => {
                Policy::SetBackendService(set_backend_service::SetBackendService::parse(self, e)?)
            }
            "set-method" => Policy::SetMethod(set_method::SetMethod::parse(self, e)?),
            "set-status" => Policy::SetStatus(set_status::SetStatus::parse(self, e)?),
            "set-body" => Policy::SetBody(set_body::SetBody::parse(self, e, section)?),
            "return-response" => {
                Policy::ReturnResponse(return_response::ReturnResponse::parse(self, e, section)?)
            }
            "mock-response" => Policy::MockResponse(mock_response::MockResponse::parse(self, e)?),
            "forward-request" => {
                Policy::ForwardRequest(forward_request::ForwardRequest::parse(self, e)?)
            }
            "find-and-replace" => {
                Policy::FindAndReplace(find_and_replace::FindAndReplace::parse(self, e, section)?)
            }
            "json-to-xml" => Policy::JsonToXml(json_to_xml::JsonToXml::parse(self, e, section)?),
            "xml-to-json" => Policy::XmlToJson(xml_to_json::XmlToJson::parse(self, e, section)?),
            "check-header" => Policy::CheckHeader(check_header::CheckHeader::parse(self, e)?),
            "ip-filter" => Policy::IpFilter(ip_filter::IpFilter::parse(self, e)?),
            "cors" => Policy::Cors(cors::Cors::parse(self, e)?),
            "trace" => Policy::Trace(trace::Trace::parse(self, e)?),
            "jsonp" => {
                self.note_response_body();
                Policy::Jsonp(jsonp::Jsonp::parse(self, e)?)
            }
            "validate-jwt" => {
                Policy::ValidateJwt(Arc::new(validate_jwt::ValidateJwt::parse(self, e)?))
            }
            "validate-client-certificate" => Policy::ValidateClientCertificate(
                validate_client_certificate::ValidateClientCertificate::parse(self, e)?,
            ),
            "validate-azure-ad-token" => {
                Policy::ValidateJwt(Arc::new(validate_jwt::ValidateJwt::parse_entra(self, e)?))
            }
            "rate-limit" => Policy::RateLimit(rate_limit::RateLimit::parse(self, e)?),
            "rate-limit-by-key" => {
                Policy::RateLimitByKey(rate_limit::RateLimitByKey::parse(self, e)?)
            }
            "quota" => Policy::Quota(quota::Quota::parse(self, e)?),
            "quota-by-key" => Policy::QuotaByKey(quota::QuotaByKey::parse(self, e)?),
            "limit-concurrency" => Policy::LimitConcurrency(
                limit_concurrency::LimitConcurrency::parse(self, e, section, path)?,
            ),
            "authentication-basic" => Policy::AuthenticationBasic(
                authentication_basic::AuthenticationBasic::parse(self, e)?,
            ),
            "authentication-managed-identity" => Policy::ManagedIdentity(Arc::new(
                authentication_managed_identity::ManagedIdentity::parse(self, e)?,
            )),
            "authentication-certificate" => Policy::AuthenticationCertificate(
                authentication_certificate::AuthenticationCertificate::parse(self, e)?,
            ),
            "send-request" => {
                Policy::SendRequest(Arc::new(send_request::SendRequest::parse(self, e, false)?))
            }
            "send-one-way-request" => Policy::SendOneWayRequest(Arc::new(
                send_request::SendRequest::parse(self, e, true)?,
            )),
            "retry" => Policy::Retry(retry::Retry::parse(self, e, section, path)?),
            "wait" => Policy::Wait(wait::Wait::parse(self, e, section, path)?),
            "proxy" => Policy::Proxy(proxy::Proxy::parse(self, e)?),
            "log-to-eventhub" => {
                Policy::LogToEventHub(log_to_eventhub::LogToEventHub::parse(self, e)?)
            }
            "emit-metric" => Policy::EmitMetric(emit_metric::EmitMetric::parse(self, e)?),
            "llm-token-limit" | "azure-openai-token-limit" => {
                Policy::TokenLimit(llm::TokenLimit::parse(self, e)?)
            }
            "llm-emit-token-metric" | "azure-openai-emit-token-metric" => {
                Policy::EmitTokenMetric(llm::EmitTokenMetric::parse(self, e)?)
            }
            "cache-lookup" => Policy::CacheLookup(caching::CacheLookup::parse(self, e)?),
            "cache-store" => Policy::CacheStore(caching::CacheStore::parse(self, e)?),
            "cache-lookup-value" => {
                Policy::CacheLookupValue(caching::CacheLookupValue::parse(self, e)?)
            }
            "cache-store-value" => {
                Policy::CacheStoreValue(caching::CacheStoreValue::parse(self, e)?)
            }
            "cache-remove-value" => {
                Policy::CacheRemoveValue(caching::CacheRemoveValue::parse(self, e)?)
            }
            other => {
                if let Some(reason) = azure_only::reason(e) {
                    self.error(e.span.start, format!("<{other}> {reason}"));
                    return None;
                }
                self.error(
                    e.span.start,
                    format!("<{other}> is a valid APIM policy that this gateway does not run yet"),
                );
                return None;
            }
        })
    }
}

/// Compiles a checked `<policies>` document. `named_values` resolves
/// `{{name}}` (case-insensitively), `fragments` a fragment id to its XML.
pub fn compile_document(
    xml: &str,
    named_values: &dyn Fn(&str) -> Option<String>,
    fragments: &dyn Fn(&str) -> Option<String>,
) -> Result<Doc, Vec<Diagnostic>> {
    compile_document_with(xml, named_values, fragments, &|_| true)
}

/// [`compile_document_with`] that also knows the Dapr sidecar (`[dapr]
/// sidecar_url`); without one the Dapr policies are compile errors.
pub fn compile_document_opts(
    xml: &str,
    named_values: &dyn Fn(&str) -> Option<String>,
    fragments: &dyn Fn(&str) -> Option<String>,
    loggers: &dyn Fn(&str) -> bool,
    dapr: Option<&Url>,
) -> Result<Doc, Vec<Diagnostic>> {
    compile_document_certs(xml, named_values, fragments, loggers, None, dapr)
}

/// [`compile_document`] that also checks `log-to-eventhub logger-id`s
/// against `loggers` (the snapshot passes the catalog's loggers).
pub fn compile_document_with(
    xml: &str,
    named_values: &dyn Fn(&str) -> Option<String>,
    fragments: &dyn Fn(&str) -> Option<String>,
    loggers: &dyn Fn(&str) -> bool,
) -> Result<Doc, Vec<Diagnostic>> {
    compile_document_certs(xml, named_values, fragments, loggers, None, None)
}

/// Looks up a stored certificate by id or thumbprint.
pub type CertLookup<'a> =
    dyn Fn(authentication_certificate::CertRef<'_>) -> Option<Arc<crate::model::ClientCert>> + 'a;

/// [`compile_document_with`] that also resolves `authentication-certificate`
/// against `certificates` (the snapshot passes the catalog's) and knows
/// the Dapr sidecar (`[dapr] sidecar_url`; without one the Dapr policies
/// are compile errors).
pub fn compile_document_certs<'a>(
    xml: &'a str,
    named_values: &'a dyn Fn(&str) -> Option<String>,
    fragments: &'a dyn Fn(&str) -> Option<String>,
    loggers: &'a dyn Fn(&str) -> bool,
    certificates: Option<&'a CertLookup<'a>>,
    dapr: Option<&'a Url>,
) -> Result<Doc, Vec<Diagnostic>> {
    compile_document_trust(
        xml,
        named_values,
        fragments,
        loggers,
        certificates,
        dapr,
        None,
    )
}

/// [`compile_document_certs`] that also knows the stored certificates
/// prepared for `validate-client-certificate` (trust anchors, CRLs,
/// `issuer-certificate-id`).
pub fn compile_document_trust<'a>(
    xml: &'a str,
    named_values: &'a dyn Fn(&str) -> Option<String>,
    fragments: &'a dyn Fn(&str) -> Option<String>,
    loggers: &'a dyn Fn(&str) -> bool,
    certificates: Option<&'a CertLookup<'a>>,
    dapr: Option<&'a Url>,
    client_trust: Option<Arc<validate_client_certificate::Trust>>,
) -> Result<Doc, Vec<Diagnostic>> {
    let root = super::xml::parse(xml).map_err(|d| vec![d])?;
    let mut cx = Compiler {
        xml,
        named_values,
        fragments,
        loggers,
        certificates,
        dapr,
        client_trust,
        problems: Vec::new(),
        reads_request_body: false,
        reads_response_body: false,
        depth: 0,
    };
    let mut doc = Doc::default();
    for section_el in root.elements() {
        let Some(section) = Section::from_name(&section_el.name) else {
            continue;
        };
        let steps = cx.steps(section_el, section, "");
        doc.sections[section.index()] = Some(steps);
    }
    doc.reads_request_body = cx.reads_request_body;
    doc.reads_response_body = cx.reads_response_body;
    if cx.problems.is_empty() {
        Ok(doc)
    } else {
        cx.problems.sort_by_key(|d| (d.line, d.col));
        Err(cx.problems)
    }
}

/// Checks section placement in a document (for `policy check` and writes).
pub fn check_placement(xml: &str, root: &Element, out: &mut Vec<Diagnostic>) {
    fn walk(xml: &str, parent: &Element, section: Section, out: &mut Vec<Diagnostic>) {
        for child in parent.elements() {
            if let Some(allowed) = sections_of(&child.name) {
                if !allowed.contains(&section) {
                    let (line, col) = line_col(xml, child.span.start);
                    let names: Vec<&str> = allowed.iter().map(|s| s.name()).collect();
                    out.push(Diagnostic {
                        line,
                        col,
                        message: format!(
                            "<{}> is not allowed in <{}>; it may appear in: {}",
                            child.name,
                            section.name(),
                            names.join(", ")
                        ),
                    });
                }
            }
            if matches!(
                child.name.as_str(),
                "choose" | "when" | "otherwise" | "retry" | "wait" | "limit-concurrency"
            ) {
                walk(xml, child, section, out);
            }
        }
    }
    for s in root.elements() {
        if let Some(section) = Section::from_name(&s.name) {
            walk(xml, s, section, out);
        }
    }
}

/// A state over a default context (tests, benchmarks and tools).
pub fn test_state(section: Section) -> State {
    State {
        ctx: Ctx::default(),
        section,
        limits: Limits::default(),
        backend_base: None,
        suffix: String::new(),
        backends: Arc::new(HashMap::new()),
        responses: Arc::new(Vec::new()),
        cors: None,
        preflight: false,
        counters: Arc::new(counters::Counters::local()),
        pending: counting::Pending::default(),
        backend_id: None,
        proxy: None,
        client_cert: None,
        telemetry: Arc::new(crate::telemetry::Telemetry::default()),
        llm: llm::Pending::default(),
        cache: shared_test_cache(),
        cached: caching::Lookup::default(),
        peer_cert: None,
        trace_log: None,
    }
}

/// One cache for every [`test_state`] (building a cache per state would
/// weigh on the benchmarks that make a state per iteration).
fn shared_test_cache() -> Arc<cache::Cache> {
    static CACHE: std::sync::OnceLock<Arc<cache::Cache>> = std::sync::OnceLock::new();
    CACHE
        .get_or_init(|| Arc::new(cache::Cache::new(16 << 20)))
        .clone()
}

/// A test helper: compiles one document with no named values or fragments.
#[cfg(test)]
pub fn test_doc(xml: &str) -> Result<Doc, Vec<Diagnostic>> {
    compile_document(xml, &|_| None, &|_| None)
}

/// Runs the steps of one section without the network (`choose` included,
/// `base` and `forward-request` skipped): for tests, benchmarks and tools.
pub fn run_plain(steps: &[Step], st: &mut State) -> Result<Outcome, PolicyError> {
    for s in steps {
        let o = match &s.policy {
            Policy::Choose(c) => match c.select(st)? {
                Some(branch) => run_plain(branch, st)?,
                None => Outcome::Continue,
            },
            Policy::LimitConcurrency(l) => {
                let _permit = l.enter(st)?;
                run_plain(&l.steps, st)?
            }
            // Without the network: their policies run once.
            Policy::Retry(r) => run_plain(&r.steps, st)?,
            Policy::Wait(w) => run_plain(&w.steps, st)?,
            _ => s.apply(st)?,
        };
        if o == Outcome::Respond {
            return Ok(o);
        }
    }
    Ok(Outcome::Continue)
}
