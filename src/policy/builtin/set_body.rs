//! `<set-body>`: replaces the request body (inbound, backend) or the
//! response body (outbound, on-error) with text, an expression's value, or
//! a Liquid template (`template="liquid"`, rendered with `body` and
//! `context`; APIM's PascalCase filter names are accepted). Sections: all.

use super::{Compiler, Outcome, PolicyError, Section, State, Val};
use crate::expr::value::to_serde;
use crate::expr::Value;
use crate::policy::xml::Element;
use std::sync::Arc;

/// The sections this policy may appear in.
pub const SECTIONS: &[Section] = &Section::ALL;

pub enum Body {
    Value(Val),
    Liquid(Arc<liquid::Template>),
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Body::Value(v) => write!(f, "Value({v:?})"),
            Body::Liquid(_) => f.write_str("Liquid"),
        }
    }
}

#[derive(Debug)]
pub struct SetBody {
    body: Body,
}

/// `{{ x | Upcase }}` → `{{ x | upcase }}`, `StripHtml` → `strip_html`.
fn snake_filters(template: &str) -> String {
    let mut out = String::with_capacity(template.len());
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '|' {
            while let Some(&' ') = chars.peek() {
                out.push(' ');
                chars.next();
            }
            let mut first = true;
            while let Some(&n) = chars.peek() {
                if !(n.is_ascii_alphanumeric() || n == '_') {
                    break;
                }
                chars.next();
                if n.is_ascii_uppercase() {
                    if !first {
                        out.push('_');
                    }
                    out.push(n.to_ascii_lowercase());
                } else {
                    out.push(n);
                }
                first = false;
            }
        }
    }
    out
}

/// Whether a Content-Type is JSON.
pub fn is_json(ct: &str) -> bool {
    let ct = ct.to_ascii_lowercase();
    ct.contains("application/json") || ct.contains("text/json") || ct.contains("+json")
}

impl SetBody {
    pub fn parse(cx: &mut Compiler, e: &Element, section: Section) -> Option<SetBody> {
        let liquid = cx
            .literal(e, "template")
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("liquid"));
        let body = if liquid {
            let raw = cx.substitute(&e.text());
            let parser = match liquid::ParserBuilder::with_stdlib().build() {
                Ok(p) => p,
                Err(err) => {
                    cx.error(e.span.start, format!("liquid: {err}"));
                    return None;
                }
            };
            match parser.parse(&snake_filters(&raw)) {
                Ok(t) => {
                    if raw.contains("body") {
                        if section.on_request() {
                            cx.note_request_body();
                        } else {
                            cx.note_response_body();
                        }
                    }
                    Body::Liquid(Arc::new(t))
                }
                Err(err) => {
                    cx.error(
                        e.span.start,
                        format!(
                            "liquid template: {}",
                            err.to_string().lines().next().unwrap_or("syntax error")
                        ),
                    );
                    return None;
                }
            }
        } else {
            Body::Value(cx.text(e))
        };
        Some(SetBody { body })
    }

    pub fn apply(&self, st: &mut State) -> Result<Outcome, PolicyError> {
        let bytes = self.bytes(st)?;
        st.message_mut().body = Some(bytes::Bytes::from(bytes));
        Ok(Outcome::Continue)
    }

    /// The body this policy produces (also for a `send-request`'s request).
    pub fn bytes(&self, st: &State) -> Result<Vec<u8>, PolicyError> {
        Ok(match &self.body {
            Body::Value(v) => match v.eval(st)? {
                Value::Bytes(b) => b.lock().clone(),
                Value::Json(j) => crate::expr::value::json_to_string(&j, false).into_bytes(),
                other => other.to_display().into_bytes(),
            },
            Body::Liquid(t) => render(t, st)?.into_bytes(),
        })
    }
}

fn headers_json(h: &crate::expr::context::Headers) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for n in h.names() {
        m.insert(
            n.to_string(),
            serde_json::Value::String(h.get_all(n).join(",")),
        );
    }
    serde_json::Value::Object(m)
}

fn render(t: &liquid::Template, st: &State) -> Result<String, PolicyError> {
    let ctx = &st.ctx;
    let message = st.message();
    let body_json = message.and_then(|m| {
        let ct = m.headers.joined("content-type").unwrap_or_default();
        let b = m.body.as_ref()?;
        if is_json(&ct) {
            serde_json::from_slice::<serde_json::Value>(b).ok()
        } else {
            Some(serde_json::Value::String(
                String::from_utf8_lossy(b).into_owned(),
            ))
        }
    });
    let vars: serde_json::Map<String, serde_json::Value> = ctx
        .variables
        .iter()
        .map(|(k, v)| (k.clone(), to_serde(v)))
        .collect();
    let model = serde_json::json!({
        "body": body_json.unwrap_or(serde_json::Value::Null),
        "context": {
            "Request": {
                "Url": ctx.request.url.to_string(),
                "Method": ctx.request.method,
                "OriginalUrl": ctx.request.original_url.to_string(),
                "IpAddress": ctx.request.ip_address,
                "MatchedParameters": ctx.request.matched_parameters.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect::<serde_json::Map<_, _>>(),
                "Headers": headers_json(&ctx.request.message.headers),
                "HasBody": ctx.request.message.body.as_ref().is_some_and(|b| !b.is_empty()),
            },
            "Response": ctx.response.as_ref().map(|r| serde_json::json!({
                "StatusCode": r.status,
                "StatusReason": r.reason,
                "Headers": headers_json(&r.message.headers),
            })),
            "Variables": vars,
            "Deployment": {"Region": ctx.deployment.region, "ServiceName": ctx.deployment.service_name},
            "Api": ctx.api.as_ref().map(|a| serde_json::json!({"Id": a.id, "Name": a.name, "Path": a.path})),
            "Operation": ctx.operation.as_ref().map(|o| serde_json::json!({"Id": o.id, "Name": o.name, "Method": o.method, "UrlTemplate": o.url_template})),
            "Subscription": ctx.subscription.as_ref().map(|s| serde_json::json!({"Id": s.id, "Name": s.name})),
            "User": ctx.user.as_ref().map(|u| serde_json::json!({"Id": u.id, "Email": u.email, "FirstName": u.first_name, "LastName": u.last_name})),
            "Product": ctx.product.as_ref().map(|p| serde_json::json!({"Id": p.id, "Name": p.name})),
        }
    });
    let globals = match liquid::model::to_value(&model) {
        Ok(liquid::model::Value::Object(o)) => o,
        _ => liquid::Object::new(),
    };
    t.render(&globals).map_err(|e| {
        PolicyError::new(
            500,
            "LiquidRenderFailure",
            format!(
                "liquid template: {}",
                e.to_string().lines().next().unwrap_or("render failed")
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use super::snake_filters;

    #[test]
    fn pascal_case_filters_become_liquid_names() {
        assert_eq!(
            snake_filters("{{ a | Upcase }}{{ b|StripHtml }}"),
            "{{ a | upcase }}{{ b|strip_html }}"
        );
    }

    #[test]
    fn text_expression_and_liquid_bodies() {
        let doc = test_doc(r#"<policies><inbound><set-body>@("n=" + context.Variables["n"])</set-body></inbound>
            <outbound><set-body template="liquid">{"name": "{{body.name | Upcase}}", "m": "{{context.Request.Method}}"}</set-body></outbound></policies>"#).unwrap();
        let mut st = test_state(Section::Inbound);
        st.ctx.variables.insert("n".into(), Value::Int(3));
        st.ctx.request.method = "GET".into();
        run_plain(doc.section(Section::Inbound).unwrap(), &mut st).unwrap();
        assert_eq!(st.ctx.request.message.body.as_deref(), Some(&b"n=3"[..]));
        st.section = Section::Outbound;
        let r = st.response_mut();
        r.message
            .headers
            .append("Content-Type", "application/json".into());
        r.message.body = Some(bytes::Bytes::from_static(br#"{"name":"widget"}"#));
        run_plain(doc.section(Section::Outbound).unwrap(), &mut st).unwrap();
        let body = st.ctx.response.unwrap().message.body.unwrap();
        assert_eq!(&body[..], br#"{"name": "WIDGET", "m": "GET"}"#);
        assert!(doc.reads_response_body);
        assert!(test_doc(r#"<policies><inbound><set-body template="liquid">{% if %}</set-body></inbound></policies>"#).is_err());
    }
}
