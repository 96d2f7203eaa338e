//! Debug tokens of the API inspector (`POST /mgmt/apis/{id}/debug-token`,
//! presented in `Apim-Debug-Authorization`).
//!
//! A token is `{apiId}&{expiry}&{signature}`: the expiry in Unix seconds,
//! the signature HMAC-SHA256 over `"debug\n{apiId}\n{expiry}"` under the
//! catalog's debug signing key (base64url, no padding). The key is a random
//! secret kept in the store (sealed at rest like every record) and shipped
//! in the export, so every node verifies tokens from its snapshot alone.
//! A token names one API: it traces that API and no other.

use crate::error::Secret;
use base64::Engine;
use std::time::Duration;

/// The request header carrying a debug token.
pub const HEADER: &str = "apim-debug-authorization";

/// The longest a debug token lives (APIM's maximum, `PT1H`).
pub const MAX_LIFETIME: Duration = Duration::from_secs(3600);

/// The signing key as the gateway holds it (compiled once per snapshot).
pub struct DebugKey(ring::hmac::Key);

impl std::fmt::Debug for DebugKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DebugKey(***)")
    }
}

impl DebugKey {
    pub fn new(secret: &Secret) -> DebugKey {
        DebugKey(ring::hmac::Key::new(
            ring::hmac::HMAC_SHA256,
            secret.expose().as_bytes(),
        ))
    }

    fn message(api_id: &str, expiry: u64) -> String {
        format!("debug\n{api_id}\n{expiry}")
    }

    /// A token for `api_id` valid until `expiry` (Unix seconds).
    pub fn mint(&self, api_id: &str, expiry: u64) -> String {
        let tag = ring::hmac::sign(&self.0, DebugKey::message(api_id, expiry).as_bytes());
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.as_ref());
        format!("{api_id}&{expiry}&{sig}")
    }

    /// Whether `token` is an unexpired token for `api_id` signed with this
    /// key (the comparison of signatures is constant-time).
    pub fn verify(&self, token: &str, api_id: &str, now: u64) -> bool {
        let mut parts = token.trim().rsplitn(3, '&');
        let (Some(sig), Some(expiry), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
            return false;
        };
        if id != api_id {
            return false;
        }
        let Ok(expiry) = expiry.parse::<u64>() else {
            return false;
        };
        if expiry <= now {
            return false;
        }
        let Ok(sig) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(sig) else {
            return false;
        };
        ring::hmac::verify(&self.0, DebugKey::message(id, expiry).as_bytes(), &sig).is_ok()
    }
}

/// Reads a token lifetime: an ISO 8601 duration (`PT15M`) or a number of
/// seconds; longer than [`MAX_LIFETIME`] is capped. `Err` names the problem.
pub fn parse_lifetime(value: &serde_json::Value) -> Result<Duration, String> {
    let d = match value {
        serde_json::Value::String(s) => super::duration::parse_iso8601(s)
            .ok_or_else(|| "must be an ISO 8601 duration such as PT1H, or seconds".to_string())?,
        serde_json::Value::Number(n) => match n.as_f64() {
            Some(s) if s.is_finite() && s > 0.0 => Duration::from_secs_f64(s.min(1e9)),
            _ => return Err("must be a positive number of seconds".into()),
        },
        _ => return Err("must be an ISO 8601 duration such as PT1H, or seconds".into()),
    };
    if d < Duration::from_secs(1) {
        return Err("must be at least 1 second".into());
    }
    Ok(d.min(MAX_LIFETIME))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(s: &str) -> DebugKey {
        DebugKey::new(&Secret::new(s))
    }

    #[test]
    fn tokens_verify_for_their_api_until_they_expire() {
        let k = key("0123456789abcdef0123456789abcdef");
        let t = k.mint("echo", 1000);
        assert!(t.starts_with("echo&1000&"));
        assert!(k.verify(&t, "echo", 999));
        assert!(!k.verify(&t, "echo", 1000), "expired at its expiry");
        assert!(!k.verify(&t, "other", 999), "another API");
        assert!(!key("another key").verify(&t, "echo", 999), "another key");
    }

    #[test]
    fn tampered_tokens_do_not_verify() {
        let k = key("k");
        let t = k.mint("echo", 1000);
        // A later expiry with the old signature.
        let forged = t.replacen("&1000&", "&9999&", 1);
        assert!(!k.verify(&forged, "echo", 999));
        let mut flipped = t.clone();
        let last = flipped.pop().unwrap();
        flipped.push(if last == 'A' { 'B' } else { 'A' });
        assert!(!k.verify(&flipped, "echo", 999));
        for bad in ["", "echo", "echo&1000", "echo&x&abc", "&&", "echo&1000&!!"] {
            assert!(!k.verify(bad, "echo", 999), "{bad:?}");
        }
        // An API id cannot be smuggled in front.
        assert!(!k.verify(&format!("x&{t}"), "echo", 999));
    }

    #[test]
    fn lifetimes_parse_and_cap_at_an_hour() {
        assert_eq!(parse_lifetime(&json!("PT1H")), Ok(MAX_LIFETIME));
        assert_eq!(
            parse_lifetime(&json!("PT15M")),
            Ok(Duration::from_secs(900))
        );
        assert_eq!(parse_lifetime(&json!(30)), Ok(Duration::from_secs(30)));
        assert_eq!(parse_lifetime(&json!("P1D")), Ok(MAX_LIFETIME));
        assert_eq!(parse_lifetime(&json!(86400)), Ok(MAX_LIFETIME));
        for bad in [
            json!("soon"),
            json!("PT0S"),
            json!(0),
            json!(-5),
            json!(true),
            json!("1h"),
        ] {
            assert!(parse_lifetime(&bad).is_err(), "{bad}");
        }
    }
}
