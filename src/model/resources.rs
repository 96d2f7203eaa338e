//! One serde type per management resource, with its defaults and its
//! stand-alone validation (checks that need no other resource).
//!
//! Cross-resource checks (does the scope's product exist?) live in `mgmt`.

use crate::error::{Detail, Secret};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

fn yes() -> bool {
    true
}

fn check_len(details: &mut Vec<Detail>, target: &str, value: &str, min: usize, max: usize) {
    let n = value.chars().count();
    if n < min || n > max {
        details.push(Detail::new(
            target,
            format!("must be {min} to {max} characters long (is {n})"),
        ));
    }
}

/// Checks an absolute http(s) URL, as used by `serviceUrl` and backends.
pub fn check_url(details: &mut Vec<Detail>, target: &str, url: &str) {
    match url.parse::<http::Uri>() {
        Ok(uri)
            if matches!(uri.scheme_str(), Some("http" | "https"))
                && uri.authority().is_some()
                && url.len() <= 2000 =>
        {
            if uri.query().is_some() {
                details.push(Detail::new(target, "must not carry a query string"));
            }
        }
        _ => details.push(Detail::new(
            target,
            "must be an absolute http:// or https:// URL of at most 2000 characters",
        )),
    }
}

/// A front-end protocol an API accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Http,
    Https,
    Ws,
    Wss,
}

fn default_protocols() -> Vec<Protocol> {
    vec![Protocol::Http, Protocol::Https]
}

/// Where the gateway looks for the subscription key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct KeyParameterNames {
    pub header: String,
    pub query: String,
}

impl Default for KeyParameterNames {
    fn default() -> Self {
        KeyParameterNames {
            header: "Ocp-Apim-Subscription-Key".into(),
            query: "subscription-key".into(),
        }
    }
}

/// An API (`/mgmt/apis/{apiId}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Api {
    #[serde(default)]
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// URL suffix after the gateway host; may be empty. Stored without
    /// leading or trailing slashes.
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_url: Option<String>,
    #[serde(default = "default_protocols")]
    pub protocols: Vec<Protocol>,
    #[serde(default = "yes")]
    pub subscription_required: bool,
    #[serde(default)]
    pub subscription_key_parameter_names: KeyParameterNames,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Free-form labels (the portal filters its catalog by them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

impl Default for Api {
    fn default() -> Self {
        Api {
            display_name: String::new(),
            description: None,
            path: String::new(),
            service_url: None,
            protocols: default_protocols(),
            subscription_required: true,
            subscription_key_parameter_names: KeyParameterNames::default(),
            api_version: None,
            tags: Vec::new(),
        }
    }
}

impl Api {
    /// Normalises and checks the API on its own.
    pub fn normalize(&mut self, id: &str, details: &mut Vec<Detail>) {
        if self.display_name.is_empty() {
            self.display_name = id.to_string();
        }
        check_len(details, "displayName", &self.display_name, 1, 300);
        self.path = self.path.trim_matches('/').to_string();
        check_len(details, "path", &self.path, 0, 400);
        if self.path.contains(['?', '#', '{', '}', ' ']) || self.path.contains("//") {
            details.push(Detail::new(
                "path",
                "must be a plain URL path: no '?', '#', '{', '}', spaces or empty segments",
            ));
        }
        if let Some(url) = &self.service_url {
            check_url(details, "serviceUrl", url);
        }
        if self.protocols.is_empty() {
            details.push(Detail::new("protocols", "must name at least one protocol"));
        }
        let names = &self.subscription_key_parameter_names;
        if names.header.parse::<http::HeaderName>().is_err() {
            details.push(Detail::new(
                "subscriptionKeyParameterNames.header",
                "must be a valid HTTP header name",
            ));
        }
        if names.query.is_empty() || names.query.contains(['&', '=', '#', ' ']) {
            details.push(Detail::new(
                "subscriptionKeyParameterNames.query",
                "must be a non-empty query parameter name",
            ));
        }
    }
}

/// An operation of an API (`/mgmt/apis/{apiId}/operations/{opId}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Operation {
    #[serde(default)]
    pub display_name: String,
    /// An HTTP method, or `*` for any.
    pub method: String,
    /// e.g. `/customers/{cid}/orders?date={date}`; `/*` matches any rest.
    pub url_template: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Documentation of the template's parameters (APIM ParameterContract).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub template_parameters: Vec<serde_json::Value>,
    /// Request documentation (query parameters, headers, representations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<serde_json::Value>,
    /// Response documentation, used by the portal and `mock-response`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub responses: Vec<serde_json::Value>,
    /// Labels the portal groups operations by (OpenAPI `tags`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

impl Operation {
    pub fn normalize(&mut self, id: &str, details: &mut Vec<Detail>) {
        if self.display_name.is_empty() {
            self.display_name = id.to_string();
        }
        check_len(details, "displayName", &self.display_name, 1, 300);
        if self.method != "*" {
            if self.method.parse::<http::Method>().is_err() || self.method.is_empty() {
                details.push(Detail::new("method", "must be an HTTP method or \"*\""));
            }
            self.method = self.method.to_ascii_uppercase();
        }
        if !self.url_template.starts_with('/') {
            self.url_template.insert(0, '/');
        }
        check_len(details, "urlTemplate", &self.url_template, 1, 1000);
    }
}

/// A product's publication state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ProductState {
    #[default]
    NotPublished,
    Published,
}

/// A product (`/mgmt/products/{productId}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Product {
    #[serde(default)]
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terms: Option<String>,
    /// `false` makes an open product: its APIs are callable without a key.
    #[serde(default = "yes")]
    pub subscription_required: bool,
    #[serde(default)]
    pub approval_required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscriptions_limit: Option<u32>,
    #[serde(default)]
    pub state: ProductState,
}

impl Product {
    pub fn normalize(&mut self, id: &str, details: &mut Vec<Detail>) {
        if self.display_name.is_empty() {
            self.display_name = id.to_string();
        }
        check_len(details, "displayName", &self.display_name, 1, 300);
        if !self.subscription_required
            && (self.approval_required || self.subscriptions_limit.is_some())
        {
            details.push(Detail::new(
                "approvalRequired",
                "approvalRequired and subscriptionsLimit apply only when subscriptionRequired is true",
            ));
        }
    }
}

/// A subscription's lifecycle state; only `active` passes the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SubscriptionState {
    Active,
    Suspended,
    /// APIM's initial state for a subscription created without one.
    #[default]
    Submitted,
    Rejected,
    Cancelled,
    Expired,
}

impl SubscriptionState {
    /// Whether a subscription in this state takes one of its owner's
    /// places under a product's `subscriptionsLimit`: active, suspended and
    /// submitted ones do; cancelled, rejected and expired ones do not.
    pub fn holds_a_place(self) -> bool {
        matches!(
            self,
            SubscriptionState::Active | SubscriptionState::Suspended | SubscriptionState::Submitted
        )
    }
}

/// A subscription (`/mgmt/subscriptions/{sid}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Subscription {
    /// `/apis`, `/apis/{apiId}` or `/products/{productId}`.
    pub scope: String,
    #[serde(default)]
    pub display_name: String,
    /// `/users/{userId}`; absent for a standalone subscription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
    #[serde(default)]
    pub state: SubscriptionState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_comment: Option<String>,
    #[serde(default)]
    pub allow_tracing: bool,
    /// Generated when not supplied; never returned by GET.
    #[serde(default)]
    pub primary_key: Secret,
    #[serde(default)]
    pub secondary_key: Secret,
    /// Set by the server (RFC 3339).
    #[serde(default)]
    pub created_date: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_date: Option<String>,
}

/// What a subscription's `scope` grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionScope {
    AllApis,
    Api(String),
    Product(String),
}

impl SubscriptionScope {
    pub fn parse(scope: &str) -> Option<SubscriptionScope> {
        let s = scope.trim_end_matches('/');
        if s == "/apis" {
            return Some(SubscriptionScope::AllApis);
        }
        if let Some(id) = s.strip_prefix("/apis/") {
            return (!id.is_empty() && !id.contains('/'))
                .then(|| SubscriptionScope::Api(id.into()));
        }
        if let Some(id) = s.strip_prefix("/products/") {
            return (!id.is_empty() && !id.contains('/'))
                .then(|| SubscriptionScope::Product(id.into()));
        }
        None
    }
}

/// Checks a supplied subscription key.
pub fn check_key(details: &mut Vec<Detail>, target: &str, key: &str) {
    if key.len() < 16 || key.len() > 256 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        details.push(Detail::new(
            target,
            "must be 16 to 256 visible ASCII characters",
        ));
    }
}

impl Subscription {
    pub fn normalize(&mut self, id: &str, details: &mut Vec<Detail>) {
        if self.display_name.is_empty() {
            self.display_name = id.to_string();
        }
        check_len(details, "displayName", &self.display_name, 1, 100);
        if SubscriptionScope::parse(&self.scope).is_none() {
            details.push(Detail::new(
                "scope",
                "must be \"/apis\", \"/apis/{apiId}\" or \"/products/{productId}\"",
            ));
        }
        if let Some(owner) = &self.owner_id {
            if user_of_owner(owner).is_none() {
                details.push(Detail::new("ownerId", "must be \"/users/{userId}\""));
            }
        }
        for (target, key) in [
            ("primaryKey", &self.primary_key),
            ("secondaryKey", &self.secondary_key),
        ] {
            if !key.is_empty() {
                check_key(details, target, key.expose());
            }
        }
        if !self.primary_key.is_empty() && self.primary_key == self.secondary_key {
            details.push(Detail::new("secondaryKey", "must differ from primaryKey"));
        }
    }
}

/// The user id in an `ownerId` of the form `/users/{userId}`.
pub fn user_of_owner(owner: &str) -> Option<&str> {
    owner
        .strip_prefix("/users/")
        .filter(|u| !u.is_empty() && !u.contains('/'))
}

/// A user's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum UserState {
    #[default]
    Active,
    Blocked,
    Pending,
    Deleted,
}

/// A user (`/mgmt/users/{uid}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct User {
    pub email: String,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    #[serde(default)]
    pub state: UserState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Set by the server (RFC 3339).
    #[serde(default)]
    pub registration_date: String,
    /// Write-only: a portal password given on PUT. Never stored here (it
    /// becomes the user's [`UserCredentials`]) and never shown.
    #[serde(default, skip_serializing)]
    pub password: Option<Secret>,
}

impl User {
    pub fn normalize(&mut self, details: &mut Vec<Detail>) {
        self.email = self.email.trim().to_string();
        let valid = self.email.len() <= 254
            && self
                .email
                .split_once('@')
                .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.starts_with('.'))
            && !self.email.contains(char::is_whitespace);
        if !valid {
            details.push(Detail::new("email", "must be an email address"));
        }
        check_len(details, "firstName", &self.first_name, 0, 100);
        check_len(details, "lastName", &self.last_name, 0, 100);
    }
}

/// What kind of group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum GroupType {
    System,
    #[default]
    Custom,
    External,
}

/// A group (`/mgmt/groups/{gid}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Group {
    #[serde(default)]
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, rename = "type")]
    pub group_type: GroupType,
    /// Set by the server: true for administrators, developers, guests.
    #[serde(default)]
    pub built_in: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

impl Group {
    pub fn normalize(&mut self, id: &str, details: &mut Vec<Detail>) {
        if self.display_name.is_empty() {
            self.display_name = id.to_string();
        }
        check_len(details, "displayName", &self.display_name, 1, 300);
        if self.group_type == GroupType::System {
            details.push(Detail::new(
                "type",
                "only built-in groups are of type \"system\"",
            ));
        }
    }
}

/// A named value (`/mgmt/named-values/{id}`), referenced as `{{displayName}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamedValue {
    #[serde(default)]
    pub display_name: String,
    pub value: Secret,
    /// A secret's value is never returned by GET (use `listValue`).
    #[serde(default)]
    pub secret: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

impl NamedValue {
    pub fn normalize(&mut self, id: &str, details: &mut Vec<Detail>) {
        if self.display_name.is_empty() {
            self.display_name = id.to_string();
        }
        check_len(details, "displayName", &self.display_name, 1, 256);
        if !self
            .display_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        {
            details.push(Detail::new(
                "displayName",
                "may contain only letters, digits, '.', '-' and '_'",
            ));
        }
        check_len(details, "value", self.value.expose(), 0, 4096);
        // A value that is a policy expression must compile: policies using
        // it evaluate it. (The message names the problem, never the value.)
        let v = self.value.expose().trim();
        if v.starts_with("@(") || v.starts_with("@{") {
            if let Err(errors) = crate::expr::compile(v, 0) {
                if self.secret {
                    details.push(Detail::new("value", "the expression does not compile"));
                } else {
                    for e in errors {
                        details.push(Detail::new(
                            "value",
                            format!("the expression does not compile: {}", e.message),
                        ));
                    }
                }
            }
        }
        if self.tags.len() > 32 {
            details.push(Detail::new("tags", "at most 32 tags"));
        }
    }
}

/// How a backend is spoken to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendProtocol {
    #[default]
    Http,
    Soap,
}

/// TLS checks toward a backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct BackendTls {
    pub validate_certificate_chain: bool,
    pub validate_certificate_name: bool,
    /// The name sent as SNI and checked against the backend's certificate
    /// instead of the URL's host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
}

impl Default for BackendTls {
    fn default() -> Self {
        BackendTls {
            validate_certificate_chain: true,
            validate_certificate_name: true,
            server_name: None,
        }
    }
}

/// `Authorization` header a backend is called with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendAuthorization {
    pub scheme: String,
    /// Secret: never shown by GET; a PUT that omits it keeps the stored one.
    #[serde(default)]
    pub parameter: Secret,
}

/// Credentials sent to a backend.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct BackendCredentials {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub certificate_ids: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub header: BTreeMap<String, Vec<String>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<String, Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization: Option<BackendAuthorization>,
}

/// A status range that counts as a failure for a circuit breaker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatusCodeRange {
    pub min: u16,
    pub max: u16,
}

/// When a circuit-breaker rule trips.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct FailureCondition {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percentage: Option<u32>,
    /// ISO 8601 duration, e.g. `PT1M`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub status_code_ranges: Vec<StatusCodeRange>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub error_reasons: Vec<String>,
}

/// One circuit-breaker rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CircuitBreakerRule {
    pub name: String,
    #[serde(default)]
    pub failure_condition: FailureCondition,
    /// ISO 8601 duration, e.g. `PT1H`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trip_duration: Option<String>,
    #[serde(default)]
    pub accept_retry_after: bool,
}

/// A backend's circuit breaker.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct CircuitBreaker {
    pub rules: Vec<CircuitBreakerRule>,
}

/// Whether a backend is one service or a load-balanced pool of backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum BackendType {
    #[default]
    Single,
    Pool,
}

/// One member of a pool: a `Single` backend, by id (`backend-a` or APIM's
/// resource form `/backends/backend-a`, stored as the plain id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PoolMember {
    pub id: String,
    /// Lower numbers are preferred; a group is used while any of its
    /// members is healthy (0-100, default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    /// Share of the group's traffic (1-1000, default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
}

/// The members of a `Pool` backend.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct BackendPool {
    pub services: Vec<PoolMember>,
}

/// Most members a pool may have.
pub const MAX_POOL_MEMBERS: usize = 30;

/// A backend (`/mgmt/backends/{id}`), used by `set-backend-service`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Backend {
    /// Required for `Single`; optional for a `Pool`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
    #[serde(default, rename = "type")]
    pub kind: BackendType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<BackendPool>,
    #[serde(default)]
    pub protocol: BackendProtocol,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub tls: BackendTls,
    #[serde(default)]
    pub credentials: BackendCredentials,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub circuit_breaker: Option<CircuitBreaker>,
}

impl Backend {
    pub fn normalize(&mut self, details: &mut Vec<Detail>) {
        if self.kind == BackendType::Single || !self.url.is_empty() {
            check_url(details, "url", &self.url);
        }
        match (self.kind, &mut self.pool) {
            (BackendType::Single, Some(_)) => details.push(Detail::new(
                "pool",
                "only a backend of type Pool has a pool",
            )),
            (BackendType::Pool, None) => details.push(Detail::new(
                "pool.services",
                "a Pool backend needs at least one service",
            )),
            (BackendType::Pool, Some(pool)) => {
                if pool.services.is_empty() || pool.services.len() > MAX_POOL_MEMBERS {
                    details.push(Detail::new(
                        "pool.services",
                        format!("a pool has between 1 and {MAX_POOL_MEMBERS} services"),
                    ));
                }
                let mut seen = std::collections::BTreeSet::new();
                for (i, m) in pool.services.iter_mut().enumerate() {
                    if let Some(pos) = m.id.rfind("/backends/") {
                        m.id = m.id[pos + "/backends/".len()..].to_string();
                    }
                    if m.id.is_empty() || !seen.insert(m.id.to_ascii_lowercase()) {
                        details.push(Detail::new(
                            format!("pool.services[{i}].id"),
                            "must name a backend, each at most once",
                        ));
                    }
                    if m.priority.is_some_and(|p| p > 100) {
                        details.push(Detail::new(
                            format!("pool.services[{i}].priority"),
                            "must be between 0 and 100",
                        ));
                    }
                    if m.weight.is_some_and(|w| w == 0 || w > 1000) {
                        details.push(Detail::new(
                            format!("pool.services[{i}].weight"),
                            "must be between 1 and 1000",
                        ));
                    }
                }
            }
            (BackendType::Single, None) => {}
        }
        for name in self.credentials.header.keys() {
            if name.parse::<http::HeaderName>().is_err() {
                details.push(Detail::new(
                    format!("credentials.header.{name}"),
                    "must be a valid HTTP header name",
                ));
            }
        }
        if let Some(cb) = &self.circuit_breaker {
            for (i, rule) in cb.rules.iter().enumerate() {
                let at = |k: &str| format!("circuitBreaker.rules[{i}].{k}");
                let fc = &rule.failure_condition;
                if fc.count.is_none() && fc.percentage.is_none() {
                    details.push(Detail::new(
                        at("failureCondition"),
                        "needs count or percentage",
                    ));
                }
                if fc.count == Some(0) {
                    details.push(Detail::new(
                        at("failureCondition.count"),
                        "must be at least 1",
                    ));
                }
                if fc.percentage.is_some_and(|p| p == 0 || p > 100) {
                    details.push(Detail::new(
                        at("failureCondition.percentage"),
                        "must be between 1 and 100",
                    ));
                }
                match fc.interval.as_deref().map(super::duration::parse_iso8601) {
                    Some(Some(d)) if !d.is_zero() => {}
                    _ => details.push(Detail::new(
                        at("failureCondition.interval"),
                        "must be an ISO 8601 duration such as PT1M",
                    )),
                }
                match rule
                    .trip_duration
                    .as_deref()
                    .map(super::duration::parse_iso8601)
                {
                    Some(Some(d)) if !d.is_zero() => {}
                    _ => details.push(Detail::new(
                        at("tripDuration"),
                        "must be an ISO 8601 duration such as PT1M",
                    )),
                }
                for (j, r) in rule.failure_condition.status_code_ranges.iter().enumerate() {
                    if r.min > r.max || r.min < 100 || r.max > 599 {
                        details.push(Detail::new(
                            format!(
                                "circuitBreaker.rules[{i}].failureCondition.statusCodeRanges[{j}]"
                            ),
                            "min and max must be HTTP statuses (100-599) with min <= max",
                        ));
                    }
                }
            }
        }
    }
}

/// A region's settings (`/mgmt/locations/{region}`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Location {
    /// When set, gateways of this region answer the status probe with 503.
    #[serde(default)]
    pub disable_gateway: bool,
}

/// A stored policy document (raw XML).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyDoc {
    pub xml: String,
}

/// The definition an API was imported from, kept as received
/// (`GET /mgmt/apis/{apiId}?export=openapi` returns it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiSpec {
    /// The import format: `openapi`, `openapi+json`, `swagger-json`.
    pub format: String,
    /// The document text (without a byte-order mark).
    pub document: String,
}

/// A portal user's sign-in secret: an argon2 PHC string, and a counter
/// that signs out every session when bumped (password change, blocking).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserCredentials {
    pub password_hash: Secret,
    #[serde(default)]
    pub session_epoch: u64,
}
