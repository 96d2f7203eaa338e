//! `<publish-to-dapr>` and `<invoke-dapr-binding>`: calls to the Dapr
//! sidecar named by `[dapr] sidecar_url` (without one they are compile
//! errors, see `azure_only.rs`). Parsed and prepared here; the gateway
//! sends the call like a `send-request` and hands the result back to
//! [`DaprCall::store`].
//!
//! - `publish-to-dapr pubsub-name topic`: the element's content (text, an
//!   expression, or a Liquid template with `template="liquid"`) is POSTed
//!   to `{sidecar}/v1.0/publish/{pubsub-name}/{topic}`, with
//!   `content-type` when given. Without `pubsub-name`, `topic` is
//!   `pubsub-name/topic-name`. Section: inbound.
//! - `invoke-dapr-binding name operation` (default `create`): POSTs
//!   `{"operation": ..., "metadata": {<item key>: value, ...}, "data": ...}`
//!   to `{sidecar}/v1.0/bindings/{name}`; `<data>` that is JSON goes in as
//!   JSON, other text as a string.
//!
//! `timeout` is in seconds (default 5). `response-variable-name` receives
//! the sidecar's answer as an `IResponse`. A failure (no answer, timeout,
//! or a 4xx/5xx status) goes to `on-error` unless `ignore-error="true"`:
//! then the variable holds the answer, or `null` when there was none.
//! `invoke-dapr-binding` sections: inbound, outbound, on-error.

use super::send_request::Outgoing;
use super::set_body::SetBody;
use super::{Compiler, Outcome, PolicyError, Section, State, Val};
use crate::expr::context::{Headers, Response, Url};
use crate::expr::lib::stored;
use crate::expr::Value;
use crate::policy::xml::Element;
use std::time::Duration;

/// The sections `publish-to-dapr` may appear in.
pub const PUBLISH_SECTIONS: &[Section] = &[Section::Inbound];

/// The sections `invoke-dapr-binding` may appear in.
pub const BINDING_SECTIONS: &[Section] = &[Section::Inbound, Section::Outbound, Section::OnError];

/// APIM's default `timeout` for the Dapr policies.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug)]
enum Kind {
    Publish {
        /// Absent: `topic` is `pubsub-name/topic-name`.
        pubsub: Option<Val>,
        topic: Val,
        body: Option<SetBody>,
    },
    Binding {
        name: Val,
        operation: Option<Val>,
        metadata: Vec<(String, Val)>,
        data: Option<SetBody>,
    },
}

#[derive(Debug)]
pub struct DaprCall {
    sidecar: Url,
    kind: Kind,
    pub ignore_error: bool,
    variable: Option<Val>,
    timeout: Option<Val>,
    content_type: Option<String>,
}

impl DaprCall {
    pub fn parse(cx: &mut Compiler, e: &Element, section: Section) -> Option<DaprCall> {
        let sidecar = cx.dapr?.clone();
        let required = |cx: &mut Compiler, name: &str| -> Option<Val> {
            let v = cx.attr(e, name);
            if v.is_none() {
                cx.error(e.span.start, format!("<{}> needs {name}", e.name));
            }
            v
        };
        let kind = if e.name == "publish-to-dapr" {
            let pubsub = cx.attr(e, "pubsub-name");
            let topic = required(cx, "topic")?;
            if let (None, Val::Lit(t)) = (&pubsub, &topic) {
                if !t.trim().contains('/') {
                    cx.error(
                        e.span.start,
                        "<publish-to-dapr> without pubsub-name needs topic=\"pubsub-name/topic-name\"".into(),
                    );
                    return None;
                }
            }
            let body = SetBody::parse(cx, e, section);
            Kind::Publish {
                pubsub,
                topic,
                body,
            }
        } else {
            let name = required(cx, "name")?;
            let mut metadata = Vec::new();
            let mut data = None;
            for c in e.elements() {
                match c.name.as_str() {
                    "metadata" => {
                        for item in c.elements() {
                            let key = match (item.name.as_str(), cx.literal(item, "key")) {
                                ("item", Some(k)) if !k.trim().is_empty() => k,
                                _ => {
                                    cx.error(
                                        item.span.start,
                                        "<metadata> holds only <item key=\"...\">value</item>"
                                            .into(),
                                    );
                                    continue;
                                }
                            };
                            let value = cx.text(item);
                            metadata.push((key, value));
                        }
                    }
                    "data" => {
                        // The template attribute sits on the policy.
                        let mut d = c.clone();
                        if let Some(t) = e.attr("template") {
                            d.attrs.push(t.clone());
                        }
                        data = SetBody::parse(cx, &d, section);
                    }
                    other => cx.error(
                        c.span.start,
                        format!("<{other}> is not allowed inside <invoke-dapr-binding>"),
                    ),
                }
            }
            Kind::Binding {
                name,
                operation: cx.attr(e, "operation"),
                metadata,
                data,
            }
        };
        if let Some(t) = cx.literal(e, "timeout") {
            if !t.trim().starts_with('@')
                && !t
                    .trim()
                    .parse::<f64>()
                    .is_ok_and(|n| (1.0..=240.0).contains(&n))
            {
                cx.error(
                    e.span.start,
                    format!("timeout must be 1 to 240 seconds, not '{}'", t.trim()),
                );
                return None;
            }
        }
        Some(DaprCall {
            sidecar,
            kind,
            ignore_error: cx.flag(e, "ignore-error", false),
            variable: cx.attr(e, "response-variable-name"),
            timeout: cx.attr(e, "timeout"),
            content_type: cx.literal(e, "content-type").map(|c| c.trim().to_string()),
        })
    }

    /// Evaluates everything against the state: the call to send.
    pub fn prepare(&self, st: &State) -> Result<Outgoing, PolicyError> {
        let mut headers = Headers::default();
        let mut url = self.sidecar.clone();
        url.query = Vec::new();
        let body = match &self.kind {
            Kind::Publish {
                pubsub,
                topic,
                body,
            } => {
                let topic = topic.text(st)?;
                let (pubsub, topic) = match pubsub {
                    Some(p) => (p.text(st)?, topic),
                    None => match topic.trim().split_once('/') {
                        Some((p, t)) => (p.to_string(), t.to_string()),
                        None => {
                            return Err(PolicyError::new(
                                500,
                                "ExpressionValueEvaluationFailure",
                                format!("without pubsub-name, topic must be pubsub-name/topic-name, not '{topic}'"),
                            ))
                        }
                    },
                };
                url.path = format!(
                    "/v1.0/publish/{}/{}",
                    segment(&pubsub, "pubsub-name")?,
                    segment(&topic, "topic")?
                );
                if let Some(ct) = self.content_type.as_ref().filter(|c| !c.is_empty()) {
                    headers.append("Content-Type", ct.clone());
                }
                match body {
                    Some(b) => b.bytes(st)?,
                    None => Vec::new(),
                }
            }
            Kind::Binding {
                name,
                operation,
                metadata,
                data,
            } => {
                url.path = format!("/v1.0/bindings/{}", segment(&name.text(st)?, "name")?);
                let operation = match operation {
                    Some(o) => o.text(st)?.trim().to_string(),
                    None => "create".to_string(),
                };
                let mut meta = serde_json::Map::new();
                for (k, v) in metadata {
                    meta.insert(k.clone(), serde_json::Value::String(v.text(st)?));
                }
                let data = match data {
                    Some(d) => {
                        let bytes = d.bytes(st)?;
                        match serde_json::from_slice::<serde_json::Value>(&bytes) {
                            Ok(j) => j,
                            Err(_) => serde_json::Value::String(
                                String::from_utf8_lossy(&bytes).into_owned(),
                            ),
                        }
                    }
                    None => serde_json::Value::Null,
                };
                let envelope = serde_json::json!({
                    "operation": operation,
                    "metadata": meta,
                    "data": data,
                });
                headers.append("Content-Type", "application/json".into());
                serde_json::to_vec(&envelope).map_err(|e| {
                    PolicyError::new(500, "DaprError", format!("the binding request: {e}"))
                })?
            }
        };
        let timeout = match &self.timeout {
            None => DEFAULT_TIMEOUT,
            Some(v) => {
                let t = v.text(st)?;
                let secs = t
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite() && *n > 0.0)
                    .ok_or_else(|| {
                        PolicyError::new(
                            500,
                            "ExpressionValueEvaluationFailure",
                            format!("timeout must be a positive number of seconds, not '{t}'"),
                        )
                    })?;
                Duration::from_secs_f64(secs.min(240.0))
            }
        };
        Ok(Outgoing {
            method: "POST".into(),
            url,
            headers,
            body: Some(bytes::Bytes::from(body)),
            timeout,
            proxy: None,
            identity: None,
        })
    }

    /// Puts the outcome of the call into the state.
    pub fn store(
        &self,
        st: &mut State,
        result: Result<Response, PolicyError>,
    ) -> Result<Outcome, PolicyError> {
        let name = match &self.variable {
            Some(v) => Some(v.text(st)?),
            None => None,
        };
        let value = match result {
            Ok(r) if r.status >= 400 && !self.ignore_error => {
                return Err(PolicyError::new(
                    500,
                    "DaprError",
                    format!("The Dapr sidecar responded with status code {}.", r.status),
                ))
            }
            Ok(r) => stored::value(r),
            Err(_) if self.ignore_error => Value::Null,
            Err(mut e) => {
                e.message = e.message.replace("the service", "the Dapr sidecar");
                return Err(e);
            }
        };
        if let Some(name) = name.filter(|n| !n.is_empty()) {
            st.ctx.variables.insert(name, value);
        }
        Ok(Outcome::Continue)
    }
}

/// One path segment, percent-encoded; empty is refused.
fn segment(text: &str, what: &str) -> Result<String, PolicyError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(PolicyError::new(
            500,
            "ExpressionValueEvaluationFailure",
            format!("{what} must not be empty"),
        ));
    }
    let mut out = String::new();
    for b in t.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use crate::expr::context::{Message, Response, Url};

    fn call(xml: &str) -> Result<Arc<super::DaprCall>, Vec<crate::policy::Diagnostic>> {
        let sidecar = Url::parse("http://127.0.0.1:3500").unwrap();
        let doc = compile_document_opts(
            &format!("<policies><inbound>{xml}</inbound></policies>"),
            &|_| None,
            &|_| None,
            &|_| true,
            Some(&sidecar),
        )?;
        match &doc.section(Section::Inbound).unwrap()[0].policy {
            Policy::Dapr(d) => Ok(d.clone()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn publish_posts_the_content_to_the_topic() {
        let mut st = test_state(Section::Inbound);
        st.ctx.variables.insert("id".into(), Value::str("7"));
        let c = call(r#"<publish-to-dapr pubsub-name="orders" topic="new order" content-type="application/json" timeout="2">@("{\"id\":" + context.Variables["id"] + "}")</publish-to-dapr>"#).unwrap();
        let o = c.prepare(&st).unwrap();
        assert_eq!(o.method, "POST");
        assert_eq!(
            o.url.to_string(),
            "http://127.0.0.1:3500/v1.0/publish/orders/new%20order"
        );
        assert_eq!(o.body.as_deref(), Some(&br#"{"id":7}"#[..]));
        assert_eq!(o.headers.get_all("content-type"), vec!["application/json"]);
        assert_eq!(o.timeout, std::time::Duration::from_secs(2));
        let d = call(r#"<publish-to-dapr pubsub-name="p" topic="t">x</publish-to-dapr>"#).unwrap();
        assert_eq!(d.prepare(&st).unwrap().timeout, super::DEFAULT_TIMEOUT);
        assert!(call(r#"<publish-to-dapr pubsub-name="p">x</publish-to-dapr>"#).is_err());
        assert!(call(r#"<publish-to-dapr topic="t">x</publish-to-dapr>"#).is_err());
        assert!(call(
            r#"<publish-to-dapr pubsub-name="p" topic="t" timeout="300">x</publish-to-dapr>"#
        )
        .is_err());
        let c = call(r#"<publish-to-dapr topic="orders/new">x</publish-to-dapr>"#).unwrap();
        assert_eq!(c.prepare(&st).unwrap().url.path, "/v1.0/publish/orders/new");
    }

    #[test]
    fn binding_posts_the_envelope() {
        let st = test_state(Section::Inbound);
        let c = call(
            r#"<invoke-dapr-binding name="store" operation="create"><metadata><item key="key">k1</item><item key="ttl">@((60).ToString())</item></metadata><data>{"a":1}</data></invoke-dapr-binding>"#,
        )
        .unwrap();
        let o = c.prepare(&st).unwrap();
        assert_eq!(
            o.url.to_string(),
            "http://127.0.0.1:3500/v1.0/bindings/store"
        );
        let v: serde_json::Value = serde_json::from_slice(o.body.as_deref().unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"operation":"create","metadata":{"key":"k1","ttl":"60"},"data":{"a":1}})
        );
        let c =
            call(r#"<invoke-dapr-binding name="b"><data>plain text</data></invoke-dapr-binding>"#)
                .unwrap();
        let v: serde_json::Value =
            serde_json::from_slice(c.prepare(&st).unwrap().body.as_deref().unwrap()).unwrap();
        assert_eq!(v["operation"], "create");
        assert_eq!(v["data"], "plain text");
        assert!(call(
            r#"<invoke-dapr-binding name="b"><metadata><x/></metadata></invoke-dapr-binding>"#
        )
        .is_err());
    }

    #[test]
    fn failures_and_ignore_error() {
        let mut st = test_state(Section::Inbound);
        let strict = call(r#"<publish-to-dapr pubsub-name="p" topic="t" response-variable-name="r">x</publish-to-dapr>"#).unwrap();
        let bad = Response {
            status: 404,
            reason: "Not Found".into(),
            message: Message::default(),
        };
        assert_eq!(
            strict.store(&mut st, Ok(bad.clone())).unwrap_err().reason,
            "DaprError"
        );
        let lax = call(r#"<publish-to-dapr pubsub-name="p" topic="t" response-variable-name="r" ignore-error="true">x</publish-to-dapr>"#).unwrap();
        lax.store(&mut st, Ok(bad)).unwrap();
        assert_eq!(st.ctx.variables["r"].type_name(), "IResponse");
        lax.store(
            &mut st,
            Err(PolicyError::new(502, "BackendConnectionFailure", "x")),
        )
        .unwrap();
        assert!(st.ctx.variables["r"].is_null());
    }

    #[test]
    fn without_a_sidecar_they_name_the_setting() {
        let e = test_doc(r#"<policies><inbound><publish-to-dapr pubsub-name="p" topic="t">x</publish-to-dapr></inbound></policies>"#).unwrap_err();
        assert!(e[0].message.contains("[dapr] sidecar_url"), "{e:?}");
    }
}
