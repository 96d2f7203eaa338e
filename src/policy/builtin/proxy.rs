//! `<proxy url username password>`: routes this request's
//! `forward-request` through an HTTP proxy (also a child of
//! `send-request` / `send-one-way-request`, for their call only). The
//! proxy itself is spoken to in plain HTTP: `http://` backends get
//! absolute-form requests, `https://` backends a `CONNECT` tunnel.
//! Sections: inbound.

use super::{Compiler, Outcome, PolicyError, Section, State, Val};
use crate::expr::context::Url;
use crate::policy::xml::Element;

/// The sections this policy may appear in.
pub const SECTIONS: &[Section] = &[Section::Inbound];

pub struct Proxy {
    url: Val,
    username: Option<Val>,
    password: Option<Val>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("url", &self.url)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// A proxy as evaluated for one request. `Debug` never shows the password.
#[derive(Clone, PartialEq)]
pub struct ProxyTarget {
    pub url: Url,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for ProxyTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyTarget")
            .field("url", &self.url.to_string())
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Proxy {
    pub fn parse(cx: &mut Compiler, e: &Element) -> Option<Proxy> {
        let Some(url) = cx.attr(e, "url") else {
            cx.error(e.span.start, "<proxy> needs url".into());
            return None;
        };
        if let Val::Lit(u) = &url {
            if let Err(m) = check_url(u) {
                cx.error(e.span.start, m);
                return None;
            }
        }
        Some(Proxy {
            url,
            username: cx.attr(e, "username"),
            password: cx.attr(e, "password"),
        })
    }

    /// Evaluates the proxy for this request.
    pub fn target(&self, st: &State) -> Result<ProxyTarget, PolicyError> {
        let raw = self.url.text(st)?;
        let url = check_url(&raw).map_err(|m| PolicyError::new(500, "InvalidProxyUrl", m))?;
        let opt = |v: &Option<Val>| -> Result<Option<String>, PolicyError> {
            Ok(match v {
                Some(v) => Some(v.text(st)?).filter(|s| !s.is_empty()),
                None => None,
            })
        };
        Ok(ProxyTarget {
            url,
            username: opt(&self.username)?,
            password: opt(&self.password)?,
        })
    }

    pub fn apply(&self, st: &mut State) -> Result<Outcome, PolicyError> {
        st.proxy = Some(self.target(st)?);
        Ok(Outcome::Continue)
    }
}

fn check_url(raw: &str) -> Result<Url, String> {
    match Url::parse(raw.trim()) {
        Some(u) if u.scheme == "http" => Ok(u),
        Some(_) => Err(format!(
            "proxy url '{}' must be http://: the gateway speaks plain HTTP to proxies",
            raw.trim()
        )),
        None => Err(format!(
            "proxy url '{}' is not an absolute http:// URL",
            raw.trim()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;

    #[test]
    fn sets_the_proxy_and_checks_the_url() {
        let doc = test_doc(r#"<policies><inbound><proxy url="http://proxy.local:3128" username="u" password="p" /></inbound></policies>"#).unwrap();
        let mut st = test_state(Section::Inbound);
        run_plain(doc.section(Section::Inbound).unwrap(), &mut st).unwrap();
        let p = st.proxy.clone().unwrap();
        assert_eq!((p.url.host.as_str(), p.url.port), ("proxy.local", 3128));
        assert_eq!(p.password.as_deref(), Some("p"));
        assert!(!format!("{p:?}").contains("\"p\""), "no password in Debug");
        let e = test_doc(
            r#"<policies><inbound><proxy url="https://proxy.local" /></inbound></policies>"#,
        )
        .unwrap_err();
        assert!(e[0].message.contains("must be http://"), "{e:?}");
        assert!(
            test_doc(r#"<policies><outbound><proxy url="http://p" /></outbound></policies>"#)
                .is_err()
        );
    }
}
