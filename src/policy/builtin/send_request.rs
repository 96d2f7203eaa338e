//! `<send-request>` and `<send-one-way-request>`: a call to another
//! service. Parsed and prepared here (mode `new`|`copy`, `<set-url>`,
//! `<set-method>`, `<set-header>`*, `<set-body>`, `<proxy>`,
//! `<authentication-managed-identity>` (the
//! token is fetched by the gateway just before the call), `timeout`
//! (s, default 60) or `timeout-ms`); the gateway sends it and hands the
//! result back to [`SendRequest::store`]: the response goes into
//! `context.Variables[response-variable-name]` as an `IResponse`.
//! `ignore-error="true"`: a failure leaves `null` there and the pipeline
//! goes on; otherwise it goes to `on-error`. `fail-on-error-status-code`
//! turns a 4xx/5xx answer into such a failure. Sections: all.

use super::authentication_managed_identity::{ManagedIdentity, TokenRequest};
use super::proxy::{Proxy, ProxyTarget};
use super::set_body::SetBody;
use super::set_header::{valid_name, SetHeader};
use super::{Compiler, Outcome, PolicyError, Section, State, Val};
use crate::expr::context::{Headers, Response, Url};
use crate::expr::lib::stored;
use crate::expr::Value;
use crate::policy::xml::Element;
use std::time::Duration;

/// The sections this policy may appear in.
pub const SECTIONS: &[Section] = &Section::ALL;

/// APIM's default `timeout` for both policies.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct SendRequest {
    pub one_way: bool,
    mode: Option<Val>,
    variable: Option<Val>,
    timeout: Option<Val>,
    timeout_ms: Option<Val>,
    pub ignore_error: bool,
    fail_on_error_status_code: bool,
    url: Option<Val>,
    method: Option<Val>,
    headers: Vec<SetHeader>,
    body: Option<SetBody>,
    proxy: Option<Proxy>,
    identity: Option<ManagedIdentity>,
}

/// A request ready to send: everything evaluated against the state.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub method: String,
    pub url: Url,
    pub headers: Headers,
    pub body: Option<bytes::Bytes>,
    /// Bounds the whole call (response head and body).
    pub timeout: Duration,
    pub proxy: Option<ProxyTarget>,
    /// A managed-identity token to fetch and send as `Authorization:
    /// Bearer`, and whether a failure to get one is ignored.
    pub identity: Option<(TokenRequest, bool)>,
}

impl SendRequest {
    pub fn parse(cx: &mut Compiler, e: &Element, one_way: bool) -> Option<SendRequest> {
        let mode = cx.attr(e, "mode");
        match &mode {
            Some(Val::Lit(m)) if !matches!(m.trim(), "new" | "copy") => {
                cx.error(
                    e.span.start,
                    format!("mode must be new or copy, not '{}'", m.trim()),
                );
                return None;
            }
            // `copy` (or a mode only known at run time) sends the current
            // request's body, so it must be buffered.
            Some(Val::Lit(m)) if m.trim() == "new" => {}
            Some(_) => cx.note_request_body(),
            None => {}
        }
        let mut p = SendRequest {
            one_way,
            mode,
            variable: cx.attr(e, "response-variable-name"),
            timeout: cx.attr(e, "timeout"),
            timeout_ms: cx.attr(e, "timeout-ms"),
            ignore_error: cx.flag(e, "ignore-error", false),
            fail_on_error_status_code: cx.flag(e, "fail-on-error-status-code", false),
            url: None,
            method: None,
            headers: Vec::new(),
            body: None,
            proxy: None,
            identity: None,
        };
        // `buffer-response` is accepted: the response is always buffered
        // (capped), as an `IResponse` must be readable.
        let _ = cx.flag(e, "buffer-response", true);
        for c in e.elements() {
            match c.name.as_str() {
                "set-url" => p.url = Some(cx.text(c)),
                "set-method" => {
                    let m = cx.text(c);
                    if let Val::Lit(l) = &m {
                        if !valid_name(l.trim()) {
                            cx.error(c.span.start, format!("'{}' is not an HTTP method", l.trim()));
                        }
                    }
                    p.method = Some(m);
                }
                "set-header" => {
                    if let Some(h) = SetHeader::parse(cx, c) {
                        p.headers.push(h);
                    }
                }
                "set-body" => p.body = SetBody::parse(cx, c, Section::Inbound),
                "proxy" => p.proxy = Proxy::parse(cx, c),
                "authentication-managed-identity" => {
                    if c.attr("output-token-variable-name").is_some() {
                        cx.error(
                            c.span.start,
                            format!("<authentication-managed-identity> inside <{}> takes no output-token-variable-name: the token goes on this call only", e.name),
                        );
                    }
                    p.identity = ManagedIdentity::parse(cx, c);
                }
                other => cx.error(
                    c.span.start,
                    format!(
                        "<{other}> inside <{}> is a valid APIM policy that this gateway does not run yet",
                        e.name
                    ),
                ),
            }
        }
        Some(p)
    }

    fn copy(&self, st: &State) -> Result<bool, PolicyError> {
        Ok(match &self.mode {
            None => false,
            Some(m) => match m.text(st)?.trim() {
                "new" => false,
                "copy" => true,
                other => {
                    return Err(PolicyError::new(
                        500,
                        "ExpressionValueEvaluationFailure",
                        format!("mode must be new or copy, not '{other}'"),
                    ))
                }
            },
        })
    }

    /// Evaluates everything against the state: the request to send.
    pub fn prepare(&self, st: &State) -> Result<Outgoing, PolicyError> {
        let copy = self.copy(st)?;
        let (mut method, mut url, mut headers, mut body) = if copy {
            let r = &st.ctx.request;
            (
                r.method.clone(),
                Some(r.url.clone()),
                r.message.headers.clone(),
                r.message.body.clone(),
            )
        } else {
            ("GET".to_string(), None, Headers::default(), None)
        };
        if let Some(u) = &self.url {
            let text = u.text(st)?;
            url = Some(Url::parse(text.trim()).ok_or_else(|| {
                PolicyError::new(
                    500,
                    "InvalidUrl",
                    format!("'{}' is not an absolute http(s) URL", text.trim()),
                )
            })?);
        }
        let Some(url) = url else {
            return Err(PolicyError::new(
                500,
                "InvalidUrl",
                "send-request with mode=\"new\" needs <set-url>",
            ));
        };
        if let Some(m) = &self.method {
            let m = m.text(st)?.trim().to_ascii_uppercase();
            if !valid_name(&m) {
                return Err(PolicyError::new(
                    500,
                    "InvalidMethod",
                    format!("'{m}' is not an HTTP method"),
                ));
            }
            method = m;
        }
        for h in &self.headers {
            h.apply_to(st, &mut headers)?;
        }
        if let Some(b) = &self.body {
            body = Some(bytes::Bytes::from(b.bytes(st)?));
        }
        let identity = match &self.identity {
            Some(m) => Some((m.request(st)?, m.ignore_error)),
            None => None,
        };
        let number = |v: &Val, what: &str| -> Result<f64, PolicyError> {
            let t = v.text(st)?;
            t.trim()
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite() && *n >= 0.0)
                .ok_or_else(|| {
                    PolicyError::new(
                        500,
                        "ExpressionValueEvaluationFailure",
                        format!("{what} must be a non-negative number, not '{t}'"),
                    )
                })
        };
        let timeout = match (&self.timeout_ms, &self.timeout) {
            (Some(ms), _) => {
                Duration::from_millis(number(ms, "timeout-ms")?.min(86_400_000.0) as u64)
            }
            (None, Some(s)) => Duration::from_secs_f64(number(s, "timeout")?.min(86_400.0)),
            (None, None) => DEFAULT_TIMEOUT,
        };
        let proxy = match &self.proxy {
            Some(p) => Some(p.target(st)?),
            None => None,
        };
        Ok(Outgoing {
            method,
            url,
            headers,
            body,
            timeout,
            proxy,
            identity,
        })
    }

    /// Puts the outcome of the call into the state.
    pub fn store(
        &self,
        st: &mut State,
        result: Result<Response, PolicyError>,
    ) -> Result<Outcome, PolicyError> {
        let result = match result {
            Ok(r) if self.fail_on_error_status_code && r.status >= 400 => Err(PolicyError::new(
                r.status,
                "BackendResponseStatusCode",
                format!("The service responded with status code {}.", r.status),
            )),
            other => other,
        };
        let name = match &self.variable {
            Some(v) => Some(v.text(st)?),
            None => None,
        };
        let value = match result {
            Ok(r) => stored::value(r),
            Err(_) if self.ignore_error => Value::Null,
            Err(e) => return Err(e),
        };
        if let Some(name) = name.filter(|n| !n.is_empty()) {
            st.ctx.variables.insert(name, value);
        }
        Ok(Outcome::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use crate::expr::context::{Message, Response};

    fn send(xml: &str) -> std::sync::Arc<super::SendRequest> {
        let doc = test_doc(&format!("<policies><inbound>{xml}</inbound></policies>")).unwrap();
        match &doc.section(Section::Inbound).unwrap()[0].policy {
            Policy::SendRequest(s) | Policy::SendOneWayRequest(s) => s.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn prepares_new_and_copy_requests() {
        let mut st = test_state(Section::Inbound);
        st.ctx.request.method = "POST".into();
        st.ctx.request.url = crate::expr::context::Url::parse("http://backend/a?x=1").unwrap();
        st.ctx.request.message.headers.append("X-Orig", "o".into());
        st.ctx.request.message.body = Some(bytes::Bytes::from_static(b"orig"));
        let s = send(
            r#"<send-request mode="new" response-variable-name="r" timeout="5">
                <set-url>@("http://svc/" + context.Request.Headers.GetValueOrDefault("X-Orig", ""))</set-url>
                <set-method>PUT</set-method>
                <set-header name="X-A" exists-action="override"><value>1</value></set-header>
                <set-body>hello</set-body>
            </send-request>"#,
        );
        let o = s.prepare(&st).unwrap();
        assert_eq!(
            (o.method.as_str(), o.url.to_string().as_str()),
            ("PUT", "http://svc/o")
        );
        assert_eq!(o.headers.get_all("x-a"), vec!["1"]);
        assert!(!o.headers.contains("x-orig"));
        assert_eq!(o.body.as_deref(), Some(&b"hello"[..]));
        assert_eq!(o.timeout, std::time::Duration::from_secs(5));
        let s = send(
            r#"<send-request mode="copy" response-variable-name="r"><set-header name="X-B" exists-action="append"><value>2</value></set-header></send-request>"#,
        );
        let o = s.prepare(&st).unwrap();
        assert_eq!(o.method, "POST");
        assert_eq!(o.url.to_string(), "http://backend/a?x=1");
        assert_eq!(o.headers.get_all("x-orig"), vec!["o"]);
        assert_eq!(o.body.as_deref(), Some(&b"orig"[..]));
        assert_eq!(o.timeout, super::DEFAULT_TIMEOUT);
        let e = send(r#"<send-request response-variable-name="r" />"#)
            .prepare(&st)
            .unwrap_err();
        assert_eq!(e.reason, "InvalidUrl");
    }

    #[test]
    fn stores_responses_and_ignores_errors_on_request() {
        let mut st = test_state(Section::Inbound);
        let s = send(
            r#"<send-request response-variable-name="r" ignore-error="true"><set-url>http://x</set-url></send-request>"#,
        );
        s.store(
            &mut st,
            Err(PolicyError::new(500, "BackendConnectionFailure", "x")),
        )
        .unwrap();
        assert!(st.ctx.variables["r"].is_null());
        let r = Response {
            status: 200,
            reason: "OK".into(),
            message: Message::default(),
        };
        s.store(&mut st, Ok(r)).unwrap();
        assert_eq!(st.ctx.variables["r"].type_name(), "IResponse");
        let s = send(
            r#"<send-request response-variable-name="r" fail-on-error-status-code="true"><set-url>http://x</set-url></send-request>"#,
        );
        let r = Response {
            status: 503,
            ..Default::default()
        };
        assert_eq!(
            s.store(&mut st, Ok(r)).unwrap_err().reason,
            "BackendResponseStatusCode"
        );
    }

    #[test]
    fn children_it_does_not_run_are_named() {
        let e = test_doc(r#"<policies><inbound><send-request response-variable-name="r"><set-url>http://x</set-url><authentication-certificate thumbprint="ab" /></send-request></inbound></policies>"#).unwrap_err();
        assert!(
            e[0].message
                .contains("<authentication-certificate> inside <send-request>"),
            "{e:?}"
        );
        assert!(test_doc(
            r#"<policies><inbound><send-request mode="twice" /></inbound></policies>"#
        )
        .is_err());
        let s = send(
            r#"<send-one-way-request mode="new"><set-url>http://x</set-url><proxy url="http://p:1" /></send-one-way-request>"#,
        );
        assert!(s.one_way);
        let o = s.prepare(&test_state(Section::Inbound)).unwrap();
        assert_eq!(o.proxy.unwrap().url.port, 1);
    }
}
