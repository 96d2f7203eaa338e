//! `<ip-filter action="allow|forbid"><address/>*<address-range from to/>*`:
//! admits or refuses callers by IP address (403, `CallerIpNotAllowed` /
//! `CallerIpBlocked`). Sections: inbound.

use super::{Compiler, Outcome, PolicyError, Section, State};
use crate::policy::xml::Element;
use std::net::IpAddr;

/// The sections this policy may appear in.
pub const SECTIONS: &[Section] = &[Section::Inbound];

#[derive(Debug)]
pub struct IpFilter {
    allow: bool,
    ranges: Vec<(IpAddr, IpAddr)>,
}

fn ip(cx: &mut Compiler, e: &Element, text: &str) -> Option<IpAddr> {
    match text.trim().parse::<IpAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            cx.error(
                e.span.start,
                format!("'{}' is not an IP address", text.trim()),
            );
            None
        }
    }
}

/// Orders addresses within one family (IPv4-mapped IPv6 compares as IPv4).
fn key(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v4) => u32::from(v4) as u128,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => u32::from(v4) as u128,
            None => u128::from(v6) | (1u128 << 127),
        },
    }
}

impl IpFilter {
    pub fn parse(cx: &mut Compiler, e: &Element) -> Option<IpFilter> {
        let allow = match cx.literal(e, "action").as_deref().map(str::trim) {
            Some("allow") => true,
            Some("forbid") => false,
            other => {
                cx.error(
                    e.span.start,
                    format!("action must be allow or forbid, not {other:?}"),
                );
                return None;
            }
        };
        let mut ranges = Vec::new();
        for c in e.elements() {
            match c.name.as_str() {
                "address" => {
                    let t = cx.substitute(&c.text());
                    if let Some(a) = ip(cx, c, &t) {
                        ranges.push((a, a));
                    }
                }
                "address-range" => {
                    let (Some(from), Some(to)) = (cx.literal(c, "from"), cx.literal(c, "to"))
                    else {
                        cx.error(c.span.start, "<address-range> needs from and to".into());
                        continue;
                    };
                    if let (Some(f), Some(t)) = (ip(cx, c, &from), ip(cx, c, &to)) {
                        ranges.push((f, t));
                    }
                }
                other => cx.error(
                    c.span.start,
                    format!("<ip-filter> cannot contain <{other}>"),
                ),
            }
        }
        Some(IpFilter { allow, ranges })
    }

    pub fn apply(&self, st: &mut State) -> Result<Outcome, PolicyError> {
        let raw = st.ctx.request.ip_address.clone();
        let Ok(addr) = raw.parse::<IpAddr>() else {
            return Err(PolicyError::new(
                403,
                "FailedToParseCallerIP",
                format!("Failed to parse caller IP address {raw}."),
            ));
        };
        let k = key(addr);
        let listed = self
            .ranges
            .iter()
            .any(|(f, t)| (key(*f)..=key(*t)).contains(&k));
        match (self.allow, listed) {
            (true, false) => Err(PolicyError::new(
                403,
                "CallerIpNotAllowed",
                format!("Caller IP address {raw} is not allowed. Access denied."),
            )),
            (false, true) => Err(PolicyError::new(
                403,
                "CallerIpBlocked",
                format!("Caller IP address {raw} is blocked. Access denied."),
            )),
            _ => Ok(Outcome::Continue),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;

    #[test]
    fn allow_and_forbid() {
        let doc = test_doc(r#"<policies><inbound><ip-filter action="allow"><address>10.0.0.1</address><address-range from="192.168.1.0" to="192.168.1.255" /></ip-filter></inbound></policies>"#).unwrap();
        let steps = doc.section(Section::Inbound).unwrap();
        let mut st = test_state(Section::Inbound);
        for (ip, ok) in [
            ("10.0.0.1", true),
            ("192.168.1.77", true),
            ("192.168.2.1", false),
            ("::ffff:10.0.0.1", true),
        ] {
            st.ctx.request.ip_address = ip.into();
            assert_eq!(run_plain(steps, &mut st).is_ok(), ok, "{ip}");
        }
        let e = {
            st.ctx.request.ip_address = "8.8.8.8".into();
            run_plain(steps, &mut st).unwrap_err()
        };
        assert_eq!(
            e.message,
            "Caller IP address 8.8.8.8 is not allowed. Access denied."
        );
        assert!(test_doc(r#"<policies><inbound><ip-filter action="allow"><address>nope</address></ip-filter></inbound></policies>"#).is_err());
    }
}
