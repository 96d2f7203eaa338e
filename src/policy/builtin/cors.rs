//! `<cors allow-credentials terminate-unmatched-request>` with
//! `<allowed-origins>`, `<allowed-methods preflight-result-max-age>`,
//! `<allowed-headers>`, `<expose-headers>`: answers CORS preflights itself
//! (only cors policies run for them) and adds `Access-Control-*` headers
//! to responses for allowed origins. Sections: inbound.

use super::{Compiler, CorsHeaders, Outcome, PolicyError, Section, State};
use crate::policy::xml::Element;

/// The sections this policy may appear in.
pub const SECTIONS: &[Section] = &[Section::Inbound];

#[derive(Debug)]
pub struct Cors {
    credentials: bool,
    terminate_unmatched: bool,
    origins: Vec<String>,
    methods: Vec<String>,
    max_age: Option<u64>,
    headers: Vec<String>,
    expose: Vec<String>,
}

fn list(cx: &Compiler, e: &Element, group: &str, item: &str) -> Vec<String> {
    e.elements()
        .filter(|c| c.name == group)
        .flat_map(|g| {
            g.elements()
                .filter(|c| c.name == item)
                .map(|c| cx.substitute(&c.text()))
                .collect::<Vec<_>>()
        })
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

impl Cors {
    pub fn parse(cx: &mut Compiler, e: &Element) -> Option<Cors> {
        let origins = list(cx, e, "allowed-origins", "origin");
        if origins.is_empty() {
            cx.error(
                e.span.start,
                "<cors> needs at least one <allowed-origins><origin>".into(),
            );
            return None;
        }
        let methods = list(cx, e, "allowed-methods", "method");
        let max_age = e
            .elements()
            .find(|c| c.name == "allowed-methods")
            .and_then(|m| cx.literal(m, "preflight-result-max-age"))
            .and_then(|v| v.trim().parse().ok());
        Some(Cors {
            credentials: cx.flag(e, "allow-credentials", false),
            terminate_unmatched: cx.flag(e, "terminate-unmatched-request", true),
            origins,
            methods: if methods.is_empty() {
                vec!["GET".into(), "POST".into()]
            } else {
                methods
            },
            max_age,
            headers: list(cx, e, "allowed-headers", "header"),
            expose: list(cx, e, "expose-headers", "header"),
        })
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        self.origins
            .iter()
            .any(|o| o == "*" || o.eq_ignore_ascii_case(origin.trim_end_matches('/')))
    }

    /// The value of `Access-Control-Allow-Origin` for an allowed origin.
    fn allow_origin(&self, origin: &str) -> String {
        if self.origins.iter().any(|o| o == "*") && !self.credentials {
            "*".into()
        } else {
            origin.to_string()
        }
    }

    pub fn apply(&self, st: &mut State) -> Result<Outcome, PolicyError> {
        let headers = &st.ctx.request.message.headers;
        let Some(origin) = headers.joined("origin") else {
            return Ok(Outcome::Continue);
        };
        if st.preflight {
            let method = headers
                .joined("access-control-request-method")
                .unwrap_or_default();
            let requested: Vec<String> = headers
                .joined("access-control-request-headers")
                .unwrap_or_default()
                .split(',')
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect();
            let method_ok = self
                .methods
                .iter()
                .any(|m| m == "*" || m.eq_ignore_ascii_case(&method));
            let headers_ok = requested.iter().all(|h| {
                self.headers
                    .iter()
                    .any(|a| a == "*" || a.eq_ignore_ascii_case(h))
            });
            if !(self.origin_allowed(&origin) && method_ok && headers_ok) {
                if self.terminate_unmatched {
                    let r = st.response_mut();
                    r.status = 200;
                    r.message = Default::default();
                    return Ok(Outcome::Respond);
                }
                return Ok(Outcome::Continue);
            }
            let allow_origin = self.allow_origin(&origin);
            let allow_methods = if self.methods.iter().any(|m| m == "*") {
                method.clone()
            } else {
                self.methods.join(",")
            };
            let allow_headers = if self.headers.iter().any(|h| h == "*") {
                requested.join(",")
            } else {
                self.headers.join(",")
            };
            let (credentials, max_age) = (self.credentials, self.max_age);
            let r = st.response_mut();
            r.status = 200;
            r.message = Default::default();
            let h = &mut r.message.headers;
            h.set("Access-Control-Allow-Origin", allow_origin);
            h.set("Access-Control-Allow-Methods", allow_methods);
            if !allow_headers.is_empty() {
                h.set("Access-Control-Allow-Headers", allow_headers);
            }
            if credentials {
                h.set("Access-Control-Allow-Credentials", "true".into());
            }
            if let Some(age) = max_age {
                h.set("Access-Control-Max-Age", age.to_string());
            }
            h.set("Vary", "Origin".into());
            return Ok(Outcome::Respond);
        }
        if self.origin_allowed(&origin) {
            let mut out = vec![(
                "Access-Control-Allow-Origin".to_string(),
                self.allow_origin(&origin),
            )];
            if self.credentials {
                out.push(("Access-Control-Allow-Credentials".into(), "true".into()));
            }
            if !self.expose.is_empty() {
                out.push((
                    "Access-Control-Expose-Headers".into(),
                    self.expose.join(","),
                ));
            }
            out.push(("Vary".into(), "Origin".into()));
            st.cors = Some(CorsHeaders(out));
        }
        Ok(Outcome::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;

    const DOC: &str = r#"<policies><inbound><cors allow-credentials="true">
        <allowed-origins><origin>https://app.example</origin></allowed-origins>
        <allowed-methods preflight-result-max-age="300"><method>GET</method><method>PUT</method></allowed-methods>
        <allowed-headers><header>content-type</header><header>x-trace</header></allowed-headers>
        <expose-headers><header>x-request-id</header></expose-headers>
    </cors><set-variable name="ran" value="yes" /></inbound></policies>"#;

    #[test]
    fn preflight_is_answered_and_nothing_else_runs() {
        let doc = test_doc(DOC).unwrap();
        let mut st = test_state(Section::Inbound);
        st.preflight = true;
        let h = &mut st.ctx.request.message.headers;
        h.append("Origin", "https://app.example".into());
        h.append("Access-Control-Request-Method", "PUT".into());
        h.append(
            "Access-Control-Request-Headers",
            "Content-Type, X-Trace".into(),
        );
        assert_eq!(
            run_plain(doc.section(Section::Inbound).unwrap(), &mut st).unwrap(),
            Outcome::Respond
        );
        assert!(!st.ctx.variables.contains_key("ran"));
        let r = st.ctx.response.unwrap();
        assert_eq!(
            r.message.headers.get_all("access-control-allow-origin"),
            vec!["https://app.example"]
        );
        assert_eq!(
            r.message.headers.get_all("access-control-allow-methods"),
            vec!["GET,PUT"]
        );
        assert_eq!(
            r.message.headers.get_all("access-control-max-age"),
            vec!["300"]
        );
    }

    #[test]
    fn simple_requests_get_headers_for_allowed_origins_only() {
        let doc = test_doc(DOC).unwrap();
        let mut st = test_state(Section::Inbound);
        st.ctx
            .request
            .message
            .headers
            .append("Origin", "https://app.example".into());
        run_plain(doc.section(Section::Inbound).unwrap(), &mut st).unwrap();
        let cors = st.cors.unwrap().0;
        assert!(cors.contains(&(
            "Access-Control-Expose-Headers".into(),
            "x-request-id".into()
        )));
        let mut st = test_state(Section::Inbound);
        st.ctx
            .request
            .message
            .headers
            .append("Origin", "https://evil.example".into());
        run_plain(doc.section(Section::Inbound).unwrap(), &mut st).unwrap();
        assert!(st.cors.is_none());
    }
}
