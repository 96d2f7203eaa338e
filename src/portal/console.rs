//! The try-it console's server side: `POST /console/send`.
//!
//! The operation page's script posts the request a developer filled in
//! (JSON, with the page's CSRF token in `X-CSRF-Token`); the portal sends
//! it to this node's own gateway and answers with what came back. The
//! browser never talks to the gateway, so an API needs no CORS policy to
//! be tried.
//!
//! The request can only ever go to this node's gateway: the target address
//! is fixed, the path must be a plain absolute path that this builds under
//! the API's path, and `Host` and hop-by-hop headers are refused. Only
//! signed-in developers may use it; sizes and time are bounded.

use super::{PortalState, Visitor};
use crate::model::Catalog;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use serde_json::{json, Value};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Largest request body the console sends.
pub const MAX_REQUEST_BODY: usize = 1024 * 1024;
/// Largest response body it reads back; the rest is cut.
pub const MAX_RESPONSE_BODY: usize = 1024 * 1024;
/// Largest console envelope (the body is a JSON string inside it, so
/// escapes may make it larger than the body).
const MAX_ENVELOPE: usize = 3 * MAX_REQUEST_BODY;
/// Time allowed for the whole exchange with the gateway.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// Most query parameters and headers one request may carry.
const MAX_PAIRS: usize = 100;

/// Headers the console never lets a developer set: they describe the
/// connection (RFC 9110 §7.6.1), or the target, or the body's framing.
const REFUSED_HEADERS: [&str; 11] = [
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
];

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn client() -> &'static HttpClient {
    static CLIENT: OnceLock<HttpClient> = OnceLock::new();
    CLIENT.get_or_init(|| {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(Duration::from_secs(5)));
        http.set_nodelay(true);
        Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(8)
            .build(http)
    })
}

/// What the console script posts.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    api_id: String,
    operation_id: String,
    #[serde(default)]
    method: String,
    path: String,
    #[serde(default)]
    query: Vec<(String, String)>,
    #[serde(default)]
    headers: Vec<(String, String)>,
    #[serde(default)]
    body: Option<String>,
}

/// A refusal, as JSON: `{"error": "..."}`.
fn refuse(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// Where this node's gateway can be reached from here: its address, with
/// a wildcard address replaced by loopback.
pub fn gateway_target(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), addr.port())
        }
        _ => addr,
    }
}

const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'[')
    .add(b']')
    .add(b'^')
    .add(b'|')
    .add(b'%');

const QUERY_COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Checks the path the developer filled in: a plain absolute path (no
/// scheme, no authority, no query or fragment, no dot segments, no
/// backslashes or control characters). Returns it with unsafe characters
/// percent-encoded.
pub fn check_path(path: &str) -> Result<String, &'static str> {
    if !path.starts_with('/') {
        return Err("The path must start with /.");
    }
    if path.starts_with("//") {
        return Err("The path must not name a host.");
    }
    if path.contains(['\\', '?', '#']) || path.chars().any(char::is_control) {
        return Err("The path must not contain backslashes, '?', '#' or control characters.");
    }
    if path.len() > 8192 {
        return Err("The path is too long.");
    }
    let dot = |seg: &str| {
        let decoded = percent_encoding::percent_decode_str(seg).decode_utf8_lossy();
        decoded == "." || decoded == ".."
    };
    if path.split('/').any(dot) {
        return Err("The path must not contain . or .. segments.");
    }
    // Keep valid escapes, encode everything a request line cannot carry.
    let mut out = String::with_capacity(path.len());
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < path.len() {
        let ch = path[i..].chars().next().unwrap_or('/');
        if ch == '%'
            && bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
            && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
        {
            out.push_str(&path[i..i + 3]);
            i += 3;
            continue;
        }
        let mut buf = [0u8; 4];
        out.extend(percent_encoding::utf8_percent_encode(
            ch.encode_utf8(&mut buf),
            PATH_SEGMENT,
        ));
        i += ch.len_utf8();
    }
    Ok(out)
}

/// The path and query of the request: the API's path, then the filled
/// template, then the query pairs.
fn path_and_query(api_path: &str, path: &str, query: &[(String, String)]) -> String {
    let mut pq = if api_path.is_empty() {
        path.to_string()
    } else {
        format!("/{api_path}{path}")
    };
    if !query.is_empty() {
        let parts: Vec<String> = query
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    percent_encoding::utf8_percent_encode(k, QUERY_COMPONENT),
                    percent_encoding::utf8_percent_encode(v, QUERY_COMPONENT)
                )
            })
            .collect();
        pq.push('?');
        pq.push_str(&parts.join("&"));
    }
    pq
}

/// The developer's headers, checked.
fn headers_of(pairs: &[(String, String)]) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        let name = name.trim();
        let lower = name.to_ascii_lowercase();
        if REFUSED_HEADERS.contains(&lower.as_str()) {
            return Err(format!(
                "The header {name:?} cannot be set here: the console sets it, or it belongs to the connection."
            ));
        }
        let n = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("{name:?} is not a valid header name."))?;
        let v = HeaderValue::from_str(value)
            .map_err(|_| format!("The value of {name} is not a valid header value."))?;
        map.append(n, v);
    }
    Ok(map)
}

/// What came back from the gateway.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    truncated: bool,
}

async fn exchange(req: http::Request<Full<Bytes>>) -> Result<Answer, String> {
    let resp = client()
        .request(req)
        .await
        .map_err(|e| format!("The gateway could not be reached: {e}"))?;
    let (parts, mut body) = resp.into_parts();
    let mut kept: Vec<u8> = Vec::new();
    let mut truncated = false;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("The gateway's answer broke off: {e}"))?;
        if let Ok(data) = frame.into_data() {
            let room = MAX_RESPONSE_BODY - kept.len();
            if data.len() > room {
                kept.extend_from_slice(&data[..room]);
                truncated = true;
                break;
            }
            kept.extend_from_slice(&data);
        }
    }
    Ok(Answer {
        status: parts.status.as_u16(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: kept,
        truncated,
    })
}

/// Checks the envelope against the catalog: the API must be one the
/// visitor sees, the operation must exist, the method must be the
/// operation's (or any for `*`). Returns the API's path and the method, or
/// the refusal's status and message.
fn resolve(
    c: &Catalog,
    v: &Visitor,
    e: &Envelope,
) -> Result<(String, Method), (StatusCode, String)> {
    let api = c
        .apis
        .get(&e.api_id)
        .filter(|_| v.viewer(c).sees_api(c, &e.api_id))
        .ok_or((StatusCode::NOT_FOUND, "There is no such API.".to_string()))?;
    let op = c
        .operations
        .get(&e.api_id)
        .and_then(|ops| ops.get(&e.operation_id))
        .ok_or((
            StatusCode::NOT_FOUND,
            "This API has no such operation.".to_string(),
        ))?;
    let asked = if e.method.trim().is_empty() {
        op.method.clone()
    } else {
        e.method.trim().to_ascii_uppercase()
    };
    if op.method != "*" && asked != op.method {
        return Err((
            StatusCode::BAD_REQUEST,
            format!("This operation takes {} requests.", op.method),
        ));
    }
    let method = Method::from_bytes(asked.as_bytes())
        .ok()
        .filter(|_| asked != "*" && asked != "CONNECT")
        .ok_or((
            StatusCode::BAD_REQUEST,
            "Choose a valid HTTP method.".to_string(),
        ))?;
    Ok((api.path.clone(), method))
}

/// `POST /console/send`.
pub async fn send(State(s): State<PortalState>, v: Visitor, req: Request) -> Response {
    let Some(user) = v.user.clone() else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "Sign in to try operations from the portal.",
        );
    };
    let token = req
        .headers()
        .get("x-csrf-token")
        .and_then(|t| t.to_str().ok())
        .unwrap_or("");
    if !s.inner.keys.csrf_ok(&v.csrf_cookie, token) {
        return refuse(
            StatusCode::FORBIDDEN,
            "This page is out of date (or the request did not come from it). Reload the page and try again.",
        );
    }
    let raw = match axum::body::to_bytes(req.into_body(), MAX_ENVELOPE).await {
        Ok(b) => b,
        Err(_) => {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                "The request body is larger than the console sends (1 MiB).",
            )
        }
    };
    let e: Envelope = match serde_json::from_slice(&raw) {
        Ok(e) => e,
        Err(err) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                &format!("The console request is not valid: {err}"),
            )
        }
    };
    if e.body.as_ref().is_some_and(|b| b.len() > MAX_REQUEST_BODY) {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The request body is larger than the console sends (1 MiB).",
        );
    }
    if e.query.len() > MAX_PAIRS || e.headers.len() > MAX_PAIRS {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Too many query parameters or headers.",
        );
    }
    let (api_path, method) = match resolve(&s.catalog(), &v, &e) {
        Ok(r) => r,
        Err((status, msg)) => return refuse(status, &msg),
    };
    let path = match check_path(&e.path) {
        Ok(p) => p,
        Err(msg) => return refuse(StatusCode::BAD_REQUEST, msg),
    };
    let headers = match headers_of(&e.headers) {
        Ok(h) => h,
        Err(msg) => return refuse(StatusCode::BAD_REQUEST, &msg),
    };
    let target = gateway_target(s.inner.gateway_addr);
    let uri = format!(
        "http://{target}{}",
        path_and_query(&api_path, &path, &e.query)
    );
    let body = Bytes::from(e.body.unwrap_or_default());
    let mut out = match http::Request::builder()
        .method(method.clone())
        .uri(&uri)
        .body(Full::new(body))
    {
        Ok(r) => r,
        Err(_) => return refuse(StatusCode::BAD_REQUEST, "The request is not valid."),
    };
    *out.headers_mut() = headers;
    if !out.headers().contains_key(http::header::USER_AGENT) {
        out.headers_mut().insert(
            http::header::USER_AGENT,
            HeaderValue::from_static(concat!(
                "turnpike-portal-console/",
                env!("CARGO_PKG_VERSION")
            )),
        );
    }
    let started = Instant::now();
    let answer = tokio::time::timeout(TIMEOUT, exchange(out)).await;
    let elapsed = started.elapsed();
    let answer = match answer {
        Ok(Ok(a)) => a,
        Ok(Err(msg)) => {
            tracing::warn!(user = %user.uid, api = %e.api_id, error = %msg, "portal console");
            return refuse(StatusCode::BAD_GATEWAY, &msg);
        }
        Err(_) => {
            return refuse(
                StatusCode::GATEWAY_TIMEOUT,
                "The gateway did not answer within 30 seconds.",
            )
        }
    };
    tracing::info!(
        user = %user.uid,
        api = %e.api_id,
        operation = %e.operation_id,
        method = %method,
        status = answer.status,
        "portal console"
    );
    let headers: Vec<Value> = answer
        .headers
        .into_iter()
        .map(|(k, v)| json!([k, v]))
        .collect();
    let mut resp = Json(json!({
        "status": answer.status,
        "headers": headers,
        "body": String::from_utf8_lossy(&answer.body),
        "truncated": answer.truncated,
        "elapsedMs": elapsed.as_millis() as u64,
    }))
    .into_response();
    resp.headers_mut().insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_on_this_gateway() {
        assert_eq!(check_path("/users/42").as_deref(), Ok("/users/42"));
        assert_eq!(check_path("/a b/ü").as_deref(), Ok("/a%20b/%C3%BC"));
        assert_eq!(check_path("/a%2Fb/100%").as_deref(), Ok("/a%2Fb/100%25"));
        for bad in [
            "http://evil.example/x",
            "//evil.example/x",
            "evil.example/x",
            "",
            "/a/../b",
            "/a/%2e%2e/b",
            "/a/./b",
            "/a\\b",
            "/a?x=1",
            "/a#f",
            "/a\nb",
        ] {
            assert!(check_path(bad).is_err(), "{bad:?}");
        }
        assert_eq!(path_and_query("", "/x", &[]), "/x");
        assert_eq!(
            path_and_query("echo", "/x", &[("a b".into(), "1&2".into())]),
            "/echo/x?a%20b=1%262"
        );
    }

    #[test]
    fn wildcard_gateway_addresses_become_loopback() {
        let v4: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(gateway_target(v4).to_string(), "127.0.0.1:8080");
        let v6: SocketAddr = "[::]:8080".parse().unwrap();
        assert_eq!(gateway_target(v6).to_string(), "[::1]:8080");
        let fixed: SocketAddr = "10.0.0.5:81".parse().unwrap();
        assert_eq!(gateway_target(fixed), fixed);
    }

    #[test]
    fn connection_headers_are_refused() {
        for h in ["Host", "Connection", "transfer-encoding", "Upgrade", "TE"] {
            assert!(headers_of(&[(h.into(), "x".into())]).is_err(), "{h}");
        }
        assert!(headers_of(&[("bad name".into(), "x".into())]).is_err());
        assert!(headers_of(&[("X-Ok".into(), "a\nb".into())]).is_err());
        let ok = headers_of(&[("X-Ok".into(), "1".into()), ("x-ok".into(), "2".into())]);
        assert_eq!(ok.map(|h| h.get_all("x-ok").iter().count()).ok(), Some(2));
    }
}
