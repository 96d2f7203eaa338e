//! Self-hosted gateways: their registration, their signing keys, the
//! gateway tokens secondaries present, and the heartbeat they send.
//!
//! A token is `{gatewayId}&{expiry}&{signature}`: the expiry in Unix
//! seconds, the signature HMAC-SHA256 over `"{gatewayId}\n{expiry}"` under
//! one of the gateway's two keys (base64url, no padding). Regenerating a key
//! revokes every token signed with it; the other key's tokens stay valid, so
//! keys can be rolled without an outage (APIM's primary/secondary scheme).

use crate::error::{Detail, Secret};
use base64::Engine;
use serde::{Deserialize, Serialize};

/// The `Authorization` scheme secondaries use: `GatewayKey <token>`.
pub const TOKEN_SCHEME: &str = "GatewayKey";

/// The id APIM reserves for its own (managed) gateway; a primary reports
/// itself under it, so no registration may take it.
pub const MANAGED_GATEWAY: &str = "managed";

/// A registered self-hosted gateway (`/mgmt/gateways/{gid}`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Gateway {
    pub location_data: LocationData,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Where a gateway runs (APIM's `locationData`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocationData {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub district: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country_or_region: Option<String>,
}

impl Gateway {
    pub fn normalize(&mut self, details: &mut Vec<Detail>) {
        self.location_data.name = self.location_data.name.trim().to_string();
        if self.location_data.name.is_empty() || self.location_data.name.len() > 256 {
            details.push(Detail::new(
                "locationData.name",
                "is required: where the gateway runs (1-256 characters)",
            ));
        }
    }
}

/// The two signing keys of a gateway. Stored on the primary only: never
/// exported, never shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayKeys {
    pub primary: Secret,
    pub secondary: Secret,
}

/// Which of the two keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    #[default]
    Primary,
    Secondary,
}

impl GatewayKeys {
    pub fn get(&self, which: KeyType) -> &Secret {
        match which {
            KeyType::Primary => &self.primary,
            KeyType::Secondary => &self.secondary,
        }
    }
}

fn signature(key: &Secret, gateway_id: &str, expiry: u64) -> ring::hmac::Tag {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.expose().as_bytes());
    ring::hmac::sign(&key, format!("{gateway_id}\n{expiry}").as_bytes())
}

/// Mints a token for `gateway_id` valid until `expiry` (Unix seconds).
pub fn mint_token(gateway_id: &str, keys: &GatewayKeys, which: KeyType, expiry: u64) -> String {
    let tag = signature(keys.get(which), gateway_id, expiry);
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.as_ref());
    format!("{gateway_id}&{expiry}&{sig}")
}

/// Why a token was refused. The message names the gateway and the reason,
/// never the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error(
        "the gateway token is malformed: expected GatewayKey <gatewayId>&<expiry>&<signature>"
    )]
    Malformed,
    #[error("no gateway {0:?} is registered on this primary")]
    UnknownGateway(String),
    #[error("the gateway token's signature matches neither key of gateway {0:?} (tampered, or signed with a key that was regenerated since)")]
    BadSignature(String),
    #[error("the gateway token of {gateway:?} expired at {expired}; mint a new one with POST /mgmt/gateways/{gateway}/token")]
    Expired { gateway: String, expired: String },
}

/// A token that passed [`verify_token`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub gateway_id: String,
    /// Unix seconds.
    pub expiry: u64,
}

/// Checks a token (the part after `GatewayKey `) against the keys
/// `keys_of` finds for its gateway.
pub fn verify_token<'k>(
    token: &str,
    keys_of: impl FnOnce(&str) -> Option<&'k GatewayKeys>,
    now: u64,
) -> Result<Verified, TokenError> {
    let mut parts = token.trim().split('&');
    let (Some(gid), Some(expiry), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let expiry: u64 = expiry.parse().map_err(|_| TokenError::Malformed)?;
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| TokenError::Malformed)?;
    if gid.is_empty() {
        return Err(TokenError::Malformed);
    }
    let keys = keys_of(gid).ok_or_else(|| TokenError::UnknownGateway(gid.to_string()))?;
    let message = format!("{gid}\n{expiry}");
    let valid = [&keys.primary, &keys.secondary].iter().any(|key| {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.expose().as_bytes());
        ring::hmac::verify(&key, message.as_bytes(), &sig).is_ok()
    });
    if !valid {
        return Err(TokenError::BadSignature(gid.to_string()));
    }
    if expiry <= now {
        return Err(TokenError::Expired {
            gateway: gid.to_string(),
            expired: rfc3339(expiry),
        });
    }
    Ok(Verified {
        gateway_id: gid.to_string(),
        expiry,
    })
}

/// `seconds` since the Unix epoch as RFC 3339 (UTC, whole seconds).
pub fn rfc3339(seconds: u64) -> String {
    humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds),
    )
    .to_string()
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// What a secondary reports every `heartbeat_interval`
/// (`POST /cluster/v1/heartbeat`). Unknown fields are ignored, so newer
/// secondaries can report more to an older primary.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Heartbeat {
    pub gateway_id: String,
    pub region: String,
    /// The configuration revision the gateway serves.
    pub revision: u64,
    /// `turnpike --version` of the gateway.
    pub version: String,
    pub uptime_seconds: u64,
    pub hostname: String,
    /// How often it beats; the primary calls it stale after three misses.
    pub heartbeat_interval_seconds: f64,
    /// Where its configuration came from: `primary` or `backup`.
    #[serde(default)]
    pub config_source: String,
    /// Requests since the previous acknowledged heartbeat.
    #[serde(default)]
    pub requests: RequestCounts,
    /// Requests since this process started. With `instanceId` and
    /// `sequence` it lets the primary count exactly once, even when a beat
    /// it never acknowledged arrives late (after a partition heals).
    #[serde(default)]
    pub requests_since_start: Option<RequestCounts>,
    /// Random per process start.
    #[serde(default)]
    pub instance_id: String,
    /// 1, 2, 3, ... per process; a beat not newer than the last one
    /// recorded from the same instance is stale and ignored.
    #[serde(default)]
    pub sequence: u64,
    /// Traffic aggregate batches (`crate::analytics::Batch`) the primary
    /// has not acknowledged yet; each counted once by its sequence.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub analytics: Vec<serde_json::Value>,
}

/// Gateway request counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestCounts {
    pub total: u64,
    /// Answered with a 5xx.
    pub failed: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> GatewayKeys {
        GatewayKeys {
            primary: Secret::new("k1-0123456789"),
            secondary: Secret::new("k2-0123456789"),
        }
    }

    #[test]
    fn tokens_verify_expire_and_refuse_tampering() {
        let k = keys();
        for which in [KeyType::Primary, KeyType::Secondary] {
            let t = mint_token("west-1", &k, which, 2_000);
            assert_eq!(
                verify_token(&t, |_| Some(&k), 1_000),
                Ok(Verified {
                    gateway_id: "west-1".into(),
                    expiry: 2_000
                })
            );
            assert!(matches!(
                verify_token(&t, |_| Some(&k), 2_000),
                Err(TokenError::Expired { .. })
            ));
        }
        let t = mint_token("west-1", &k, KeyType::Primary, 2_000);
        // A later expiry under the same signature, another gateway's name.
        let longer = t.replacen("&2000&", "&3000&", 1);
        assert_eq!(
            verify_token(&longer, |_| Some(&k), 1_000),
            Err(TokenError::BadSignature("west-1".into()))
        );
        let other = t.replacen("west-1", "east-1", 1);
        assert!(matches!(
            verify_token(&other, |_| Some(&k), 1_000),
            Err(TokenError::BadSignature(_))
        ));
        assert_eq!(
            verify_token(&t, |_| None, 1_000),
            Err(TokenError::UnknownGateway("west-1".into()))
        );
        for bad in ["", "x", "a&b&c", "a&1&!!", "a&1&c&d", "&1&AAAA"] {
            assert_eq!(
                verify_token(bad, |_| Some(&k), 0),
                Err(TokenError::Malformed),
                "{bad}"
            );
        }
        // Regenerating the key that signed it revokes it.
        let rolled = GatewayKeys {
            primary: Secret::new("new"),
            ..keys()
        };
        assert!(verify_token(&t, |_| Some(&rolled), 1_000).is_err());
        let by_secondary = mint_token("west-1", &k, KeyType::Secondary, 2_000);
        assert!(verify_token(&by_secondary, |_| Some(&rolled), 1_000).is_ok());
    }

    #[test]
    fn messages_never_carry_the_token() {
        let k = keys();
        let t = mint_token("west-1", &k, KeyType::Primary, 10);
        let sig = t.rsplit('&').next().unwrap().to_string();
        for e in [
            verify_token(&t, |_| Some(&k), 20).unwrap_err(),
            verify_token(&t.replacen("&10&", "&11&", 1), |_| Some(&k), 0).unwrap_err(),
        ] {
            assert!(!e.to_string().contains(&sig), "{e}");
        }
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
