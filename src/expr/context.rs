//! The `context` object model (apim.md §4.3) as plain data.
//!
//! Owns [`Ctx`], what expressions read: the request as the pipeline has
//! transformed it so far, the response once there is one, variables, the
//! matched API/operation/product/subscription/user, the deployment and
//! `LastError`. The gateway fills it and applies policies to it; the CLI's
//! `expr eval` builds one from a sample JSON file. [`Host`] values are
//! handles into it (`context.Request.Headers` is `Host::RequestHeaders`),
//! so reading a header allocates nothing.

use super::time::DateTime;
use super::value::Value;
use std::collections::HashMap;
use std::time::Instant;

/// A URL as `IUrl` shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Url {
    pub scheme: String,
    pub host: String,
    pub port: u16,
    /// Starts with `/`.
    pub path: String,
    /// Decoded query parameters in order.
    pub query: Vec<(String, String)>,
}

impl Url {
    /// Parses an absolute `http(s)` URL.
    pub fn parse(s: &str) -> Option<Url> {
        let (scheme, rest) = s.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        let (authority, path_query) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() && !p.contains(']') => (h, p.parse().ok()?),
            _ => (authority, default_port),
        };
        if host.is_empty() {
            return None;
        }
        let (path, query) = match path_query.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path_query, None),
        };
        let path = if path.is_empty() { "/" } else { path };
        Some(Url {
            scheme,
            host: host.to_string(),
            port,
            path: path.to_string(),
            query: query.map(parse_query).unwrap_or_default(),
        })
    }

    /// `?a=1&b=2`, or "" without parameters.
    pub fn query_string(&self) -> String {
        if self.query.is_empty() {
            return String::new();
        }
        let mut s = String::from("?");
        s.push_str(&encode_query(&self.query));
        s
    }

    pub fn default_port(&self) -> bool {
        (self.scheme == "http" && self.port == 80) || (self.scheme == "https" && self.port == 443)
    }

    /// Path and query, as sent on the request line.
    pub fn path_and_query(&self) -> String {
        format!("{}{}", self.path, self.query_string())
    }

    /// Values of a query parameter (names compare case-insensitively, as APIM does).
    pub fn query_values(&self, name: &str) -> Vec<&str> {
        self.query
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", self.scheme, self.host)?;
        if !self.default_port() {
            write!(f, ":{}", self.port)?;
        }
        write!(f, "{}{}", self.path, self.query_string())
    }
}

/// Splits and decodes `a=1&b=x%20y`.
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode_component(k), decode_component(v))
        })
        .collect()
}

fn decode_component(s: &str) -> String {
    let s = s.replace('+', " ");
    percent_encoding::percent_decode_str(&s)
        .decode_utf8_lossy()
        .into_owned()
}

/// What `Uri.EscapeDataString` leaves alone: RFC 3986 unreserved.
pub const COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub fn encode_query(q: &[(String, String)]) -> String {
    q.iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                percent_encoding::utf8_percent_encode(k, COMPONENT),
                percent_encoding::utf8_percent_encode(v, COMPONENT)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Headers in order; names compare case-insensitively.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Headers(pub Vec<(String, String)>);

impl Headers {
    pub fn get_all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The values joined with commas (APIM's `GetValueOrDefault`).
    pub fn joined(&self, name: &str) -> Option<String> {
        let all = self.get_all(name);
        (!all.is_empty()).then(|| all.join(","))
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k.eq_ignore_ascii_case(name))
    }

    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    }

    pub fn set(&mut self, name: &str, value: String) {
        self.remove(name);
        self.0.push((name.to_string(), value));
    }

    pub fn append(&mut self, name: &str, value: String) {
        self.0.push((name.to_string(), value));
    }

    /// Distinct names in first-seen order.
    pub fn names(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for (k, _) in &self.0 {
            if !out.iter().any(|n| n.eq_ignore_ascii_case(k)) {
                out.push(k);
            }
        }
        out
    }
}

/// A request or response message.
#[derive(Debug, Clone, Default)]
pub struct Message {
    pub headers: Headers,
    /// The buffered body; `None` when it has not been read (streaming) or
    /// there is none.
    pub body: Option<bytes::Bytes>,
}

/// `context.Request`.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    pub url: Url,
    pub original_url: Url,
    pub ip_address: String,
    pub matched_parameters: Vec<(String, String)>,
    pub message: Message,
    /// The client certificate presented over TLS (`context.Request.Certificate`).
    pub certificate: Option<std::sync::Arc<Certificate>>,
}

/// `context.Request.Certificate`: the client's certificate as an
/// `X509Certificate2` shows it (plain data, filled by the gateway).
#[derive(Debug, Clone, Default)]
pub struct Certificate {
    pub subject: String,
    pub issuer: String,
    /// SHA-1, uppercase hex.
    pub thumbprint: String,
    /// Uppercase hex, as .NET prints it.
    pub serial_number: String,
    pub not_before: Option<DateTime>,
    pub not_after: Option<DateTime>,
    /// `Verify()` / `VerifyNoRevocation()`; `None`: they return false.
    pub verifier: Option<std::sync::Arc<dyn CertVerifier>>,
}

/// Chain verification behind `X509Certificate2.Verify()`: the gateway
/// supplies it (the trust store lives outside the expression language).
pub trait CertVerifier: std::fmt::Debug + Send + Sync {
    /// Whether the certificate chains to a trusted CA and is valid now;
    /// `revocation`: also not revoked by a configured CRL.
    fn verify(&self, revocation: bool) -> bool;
}

/// `context.Response`.
#[derive(Debug, Clone, Default)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub message: Message,
}

/// `context.LastError`.
#[derive(Debug, Clone, Default)]
pub struct LastError {
    pub source: String,
    pub reason: String,
    pub message: String,
    pub scope: String,
    pub section: String,
    pub path: String,
    pub policy_id: String,
}

/// `context.Api`.
#[derive(Debug, Clone, Default)]
pub struct ApiInfo {
    pub id: String,
    pub name: String,
    pub path: String,
    pub protocols: Vec<String>,
    pub service_url: Option<Url>,
    pub header_name: String,
    pub query_name: String,
    pub version: String,
    pub revision: String,
}

/// `context.Operation`.
#[derive(Debug, Clone, Default)]
pub struct OperationInfo {
    pub id: String,
    pub name: String,
    pub method: String,
    pub url_template: String,
}

/// `context.Product`.
#[derive(Debug, Clone, Default)]
pub struct ProductInfo {
    pub id: String,
    pub name: String,
    pub approval_required: bool,
    pub subscription_required: bool,
    pub subscriptions_limit: Option<i64>,
    pub state: String,
    pub groups: Vec<(String, String)>,
}

/// `context.Subscription`.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionInfo {
    pub id: String,
    pub name: String,
    pub key: String,
    pub primary_key: String,
    pub secondary_key: String,
    pub created: Option<DateTime>,
    pub start_date: Option<DateTime>,
    pub end_date: Option<DateTime>,
}

/// `context.User`.
#[derive(Debug, Clone, Default)]
pub struct UserInfo {
    pub id: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub note: String,
    pub registration_date: Option<DateTime>,
    pub groups: Vec<(String, String)>,
}

/// `context.Deployment`.
#[derive(Debug, Clone, Default)]
pub struct Deployment {
    pub region: String,
    pub service_name: String,
    pub gateway_id: String,
}

/// Everything `context` shows.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub request: Request,
    pub response: Option<Response>,
    pub variables: HashMap<String, Value>,
    /// Shared with the snapshot, which builds it once per API.
    pub api: Option<std::sync::Arc<ApiInfo>>,
    /// Shared with the snapshot, which builds it once per operation.
    pub operation: Option<std::sync::Arc<OperationInfo>>,
    /// Shared with the snapshot, which builds it once per product.
    pub product: Option<std::sync::Arc<ProductInfo>>,
    pub subscription: Option<SubscriptionInfo>,
    pub user: Option<UserInfo>,
    pub deployment: Deployment,
    pub last_error: Option<LastError>,
    pub request_id: u128,
    pub timestamp: DateTime,
    pub started: Instant,
    pub tracing: bool,
    /// Messages from `trace` and `context.Trace(...)`.
    pub traces: Vec<(String, String)>,
}

impl Default for Ctx {
    fn default() -> Self {
        Ctx {
            request: Request::default(),
            response: None,
            variables: HashMap::new(),
            api: None,
            operation: None,
            product: None,
            subscription: None,
            user: None,
            deployment: Deployment::default(),
            last_error: None,
            request_id: 0,
            timestamp: DateTime::now_utc(),
            started: Instant::now(),
            tracing: false,
            traces: Vec::new(),
        }
    }
}

/// A handle to a part of the context (a value of an interface type).
#[derive(Debug, Clone, PartialEq)]
pub enum Host {
    Context,
    Request,
    Response,
    RequestHeaders,
    ResponseHeaders,
    Url,
    OriginalUrl,
    ServiceUrl,
    UrlQuery(UrlWhich),
    RequestBody,
    ResponseBody,
    MatchedParameters,
    Variables,
    Api,
    SubscriptionKeyParameterNames,
    Operation,
    Product,
    Subscription,
    User,
    Deployment,
    LastError,
    UserGroups,
    ProductGroups,
    /// A group of `UserGroups`/`ProductGroups` by index.
    Group(bool, usize),
    /// `context.Request.Certificate` (`X509Certificate2`).
    Certificate,
    /// `Certificate.SubjectName` (`false`) / `IssuerName` (`true`).
    CertificateName(bool),
}

/// Which URL a `Query` handle reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum UrlWhich {
    Url,
    Original,
    Service,
}

impl Host {
    pub fn type_name(&self) -> &'static str {
        match self {
            Host::Context => "IProxyContext",
            Host::Request => "IRequest",
            Host::Response => "IResponse",
            Host::RequestHeaders | Host::ResponseHeaders => "IHeaders",
            Host::Url | Host::OriginalUrl | Host::ServiceUrl => "IUrl",
            Host::UrlQuery(_) => "IQuery",
            Host::RequestBody | Host::ResponseBody => "IMessageBody",
            Host::MatchedParameters => "IMatchedParameters",
            Host::Variables => "IVariables",
            Host::Api => "IApi",
            Host::SubscriptionKeyParameterNames => "ISubscriptionKeyParameterNames",
            Host::Operation => "IOperation",
            Host::Product => "IProduct",
            Host::Subscription => "ISubscription",
            Host::User => "IUser",
            Host::Deployment => "IDeployment",
            Host::LastError => "ILastError",
            Host::UserGroups | Host::ProductGroups => "IGroups",
            Host::Group(..) => "IGroup",
            Host::Certificate => "X509Certificate2",
            Host::CertificateName(_) => "X500DistinguishedName",
        }
    }
}

// === the sample context of `turnpike expr eval --context FILE` ===

fn obj<'a>(
    v: &'a serde_json::Value,
    path: &str,
    allowed: &[&str],
) -> Result<&'a serde_json::Map<String, serde_json::Value>, String> {
    let m = v
        .as_object()
        .ok_or_else(|| format!("{path}: expected an object"))?;
    for k in m.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(format!(
                "{path}: unknown key '{k}' (expected one of: {})",
                allowed.join(", ")
            ));
        }
    }
    Ok(m)
}

fn text(
    m: &serde_json::Map<String, serde_json::Value>,
    path: &str,
    k: &str,
) -> Result<String, String> {
    match m.get(k) {
        None | Some(serde_json::Value::Null) => Ok(String::new()),
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(serde_json::Value::Number(n)) => Ok(n.to_string()),
        Some(serde_json::Value::Bool(b)) => Ok(b.to_string()),
        Some(_) => Err(format!("{path}.{k}: expected a string")),
    }
}

fn headers_of(v: Option<&serde_json::Value>, path: &str) -> Result<Headers, String> {
    let mut h = Headers::default();
    let Some(v) = v else { return Ok(h) };
    let m = v
        .as_object()
        .ok_or_else(|| format!("{path}: expected an object of header names to values"))?;
    for (k, v) in m {
        match v {
            serde_json::Value::String(s) => h.append(k, s.clone()),
            serde_json::Value::Array(items) => {
                for i in items {
                    let s = i
                        .as_str()
                        .ok_or_else(|| format!("{path}.{k}: expected strings"))?;
                    h.append(k, s.to_string());
                }
            }
            _ => {
                return Err(format!(
                    "{path}.{k}: expected a string or an array of strings"
                ))
            }
        }
    }
    Ok(h)
}

fn body_of(v: Option<&serde_json::Value>) -> Option<bytes::Bytes> {
    match v {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(bytes::Bytes::from(s.clone())),
        Some(other) => Some(bytes::Bytes::from(other.to_string())),
    }
}

/// A sample value → expression value (objects and arrays become JSON tokens).
pub fn value_of_json(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(0.0)),
        },
        serde_json::Value::String(s) => Value::str(s.as_str()),
        other => Value::json(super::value::JNode::from_serde(other)),
    }
}

/// A sample `request.certificate` (no trust store: `Verify()` is false).
fn certificate_of(v: &serde_json::Value) -> Result<Certificate, String> {
    let path = "request.certificate";
    let m = obj(
        v,
        path,
        &[
            "subject",
            "issuer",
            "thumbprint",
            "serialNumber",
            "notBefore",
            "notAfter",
        ],
    )?;
    let date = |k: &str| -> Result<Option<DateTime>, String> {
        let t = text(m, path, k)?;
        if t.is_empty() {
            return Ok(None);
        }
        DateTime::parse(&t)
            .map(|(d, _)| Some(d))
            .ok_or_else(|| format!("{path}.{k}: '{t}' is not a date"))
    };
    Ok(Certificate {
        subject: text(m, path, "subject")?,
        issuer: text(m, path, "issuer")?,
        thumbprint: text(m, path, "thumbprint")?,
        serial_number: text(m, path, "serialNumber")?,
        not_before: date("notBefore")?,
        not_after: date("notAfter")?,
        verifier: None,
    })
}

impl Ctx {
    /// Builds a context from the sample JSON of DESIGN §7; unknown keys
    /// and wrong shapes are errors naming the path.
    pub fn from_sample(v: &serde_json::Value) -> Result<Ctx, String> {
        let root = obj(
            v,
            "context",
            &[
                "request",
                "response",
                "deployment",
                "variables",
                "subscription",
                "user",
                "api",
                "operation",
                "product",
                "lastError",
            ],
        )?;
        let mut ctx = Ctx::default();
        if let Some(r) = root.get("request") {
            let m = obj(
                r,
                "request",
                &[
                    "method",
                    "url",
                    "headers",
                    "body",
                    "ipAddress",
                    "matchedParameters",
                    "certificate",
                ],
            )?;
            ctx.request.method = match text(m, "request", "method")? {
                s if s.is_empty() => "GET".into(),
                s => s,
            };
            let url = text(m, "request", "url")?;
            if !url.is_empty() {
                ctx.request.url = Url::parse(&url).ok_or_else(|| {
                    format!("request.url: '{url}' is not an absolute http(s) URL")
                })?;
            }
            ctx.request.original_url = ctx.request.url.clone();
            ctx.request.message.headers = headers_of(m.get("headers"), "request.headers")?;
            ctx.request.message.body = body_of(m.get("body"));
            ctx.request.ip_address = text(m, "request", "ipAddress")?;
            if let Some(c) = m.get("certificate") {
                ctx.request.certificate = Some(std::sync::Arc::new(certificate_of(c)?));
            }
            if let Some(p) = m.get("matchedParameters") {
                let p = p
                    .as_object()
                    .ok_or_else(|| "request.matchedParameters: expected an object".to_string())?;
                for (k, _) in p {
                    ctx.request
                        .matched_parameters
                        .push((k.clone(), text(p, "request.matchedParameters", k)?));
                }
            }
        }
        if let Some(r) = root.get("response") {
            let m = obj(r, "response", &["statusCode", "reason", "headers", "body"])?;
            ctx.response = Some(Response {
                status: m
                    .get("statusCode")
                    .map(|s| {
                        s.as_u64()
                            .filter(|s| (100..=999).contains(s))
                            .map(|s| s as u16)
                            .ok_or_else(|| {
                                "response.statusCode: expected a number 100-999".to_string()
                            })
                    })
                    .transpose()?
                    .unwrap_or(200),
                reason: text(m, "response", "reason")?,
                message: Message {
                    headers: headers_of(m.get("headers"), "response.headers")?,
                    body: body_of(m.get("body")),
                },
            });
        }
        if let Some(d) = root.get("deployment") {
            let m = obj(d, "deployment", &["region", "serviceName", "gatewayId"])?;
            ctx.deployment = Deployment {
                region: text(m, "deployment", "region")?,
                service_name: text(m, "deployment", "serviceName")?,
                gateway_id: text(m, "deployment", "gatewayId")?,
            };
        }
        if let Some(vars) = root.get("variables") {
            let m = vars
                .as_object()
                .ok_or_else(|| "variables: expected an object".to_string())?;
            for (k, v) in m {
                ctx.variables.insert(k.clone(), value_of_json(v));
            }
        }
        if let Some(s) = root.get("subscription") {
            let m = obj(
                s,
                "subscription",
                &["id", "key", "name", "primaryKey", "secondaryKey"],
            )?;
            ctx.subscription = Some(SubscriptionInfo {
                id: text(m, "subscription", "id")?,
                key: text(m, "subscription", "key")?,
                name: text(m, "subscription", "name")?,
                primary_key: text(m, "subscription", "primaryKey")?,
                secondary_key: text(m, "subscription", "secondaryKey")?,
                ..Default::default()
            });
        }
        if let Some(u) = root.get("user") {
            let m = obj(u, "user", &["id", "email", "firstName", "lastName", "note"])?;
            ctx.user = Some(UserInfo {
                id: text(m, "user", "id")?,
                email: text(m, "user", "email")?,
                first_name: text(m, "user", "firstName")?,
                last_name: text(m, "user", "lastName")?,
                note: text(m, "user", "note")?,
                ..Default::default()
            });
        }
        if let Some(a) = root.get("api") {
            let m = obj(a, "api", &["id", "name", "path", "serviceUrl", "version"])?;
            let service = text(m, "api", "serviceUrl")?;
            ctx.api = Some(std::sync::Arc::new(ApiInfo {
                id: text(m, "api", "id")?,
                name: text(m, "api", "name")?,
                path: text(m, "api", "path")?,
                service_url: if service.is_empty() {
                    None
                } else {
                    Some(Url::parse(&service).ok_or_else(|| {
                        format!("api.serviceUrl: '{service}' is not an absolute http(s) URL")
                    })?)
                },
                version: text(m, "api", "version")?,
                header_name: "Ocp-Apim-Subscription-Key".into(),
                query_name: "subscription-key".into(),
                protocols: vec!["https".into()],
                ..Default::default()
            }));
        }
        if let Some(o) = root.get("operation") {
            let m = obj(o, "operation", &["id", "name", "method", "urlTemplate"])?;
            ctx.operation = Some(std::sync::Arc::new(OperationInfo {
                id: text(m, "operation", "id")?,
                name: text(m, "operation", "name")?,
                method: text(m, "operation", "method")?,
                url_template: text(m, "operation", "urlTemplate")?,
            }));
        }
        if let Some(p) = root.get("product") {
            let m = obj(p, "product", &["id", "name"])?;
            ctx.product = Some(std::sync::Arc::new(ProductInfo {
                id: text(m, "product", "id")?,
                name: text(m, "product", "name")?,
                state: "published".into(),
                subscription_required: true,
                ..Default::default()
            }));
        }
        if let Some(e) = root.get("lastError") {
            let m = obj(
                e,
                "lastError",
                &[
                    "source", "reason", "message", "scope", "section", "path", "policyId",
                ],
            )?;
            ctx.last_error = Some(LastError {
                source: text(m, "lastError", "source")?,
                reason: text(m, "lastError", "reason")?,
                message: text(m, "lastError", "message")?,
                scope: text(m, "lastError", "scope")?,
                section: text(m, "lastError", "section")?,
                path: text(m, "lastError", "path")?,
                policy_id: text(m, "lastError", "policyId")?,
            });
        }
        Ok(ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_print() {
        let u = Url::parse("https://api.contoso.com:8443/echo/a?x=1&y=a%20b").unwrap();
        assert_eq!(u.port, 8443);
        assert_eq!(u.path, "/echo/a");
        assert_eq!(u.query_values("Y"), vec!["a b"]);
        assert_eq!(
            u.to_string(),
            "https://api.contoso.com:8443/echo/a?x=1&y=a%20b"
        );
        let u = Url::parse("http://h").unwrap();
        assert_eq!((u.port, u.path.as_str()), (80, "/"));
        assert!(Url::parse("ftp://h/").is_none());
        assert!(Url::parse("nonsense").is_none());
    }

    #[test]
    fn headers_are_case_insensitive() {
        let mut h = Headers::default();
        h.append("Accept", "a".into());
        h.append("accept", "b".into());
        assert_eq!(h.joined("ACCEPT").as_deref(), Some("a,b"));
        h.set("Accept", "c".into());
        assert_eq!(h.get_all("accept"), vec!["c"]);
        assert_eq!(h.names(), vec!["Accept"]);
    }

    #[test]
    fn sample_certificates() {
        let v = serde_json::json!({"request": {"certificate": {
            "subject": "CN=a", "thumbprint": "AB", "notAfter": "2030-01-02T03:04:05Z"}}});
        let ctx = Ctx::from_sample(&v).unwrap();
        let c = ctx.request.certificate.unwrap();
        assert_eq!((c.subject.as_str(), c.thumbprint.as_str()), ("CN=a", "AB"));
        assert_eq!(c.not_after.map(|d| d.year()), Some(2030));
        assert!(c.not_before.is_none() && c.verifier.is_none());
        let bad = serde_json::json!({"request": {"certificate": {"notAfter": "soon"}}});
        assert!(Ctx::from_sample(&bad).unwrap_err().contains("notAfter"));
        let bad = serde_json::json!({"request": {"certificate": {"color": "red"}}});
        assert!(Ctx::from_sample(&bad)
            .unwrap_err()
            .contains("unknown key 'color'"));
    }
}
