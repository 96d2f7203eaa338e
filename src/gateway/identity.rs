//! Tokens for `authentication-managed-identity`, off Azure as on it.
//!
//! Owns: the `[identity]` token source, either an OAuth2 token endpoint
//! called with the client-credentials grant (`grant_type`, `client_id`,
//! `client_secret`, `scope` = the policy's `resource` + `/.default`, the
//! Entra ID convention; a resource already ending in `/.default` is sent
//! as is) or an Azure IMDS-compatible endpoint (`GET ?api-version=
//! 2018-02-01&resource=...&client_id=...` with `Metadata: true`); and the
//! token cache per (resource, client-id), kept until 5 minutes (or a tenth
//! of the lifetime, whichever is shorter) before the token expires.
//!
//! **Invariants:** the client secret and tokens are never logged or put in
//! error messages; the cache is read without a lock (`ArcSwap`) and
//! replaced copy-on-write on a miss; nothing is locked across an await.
//! Concurrent misses for one key may each fetch (the last answer wins).

use super::proxy::Upstream;
use crate::config::Identity as IdentityConfig;
use crate::error::Secret;
use crate::policy::builtin::authentication_managed_identity::TokenRequest;
use arc_swap::ArcSwap;
use http::Request;
use http_body_util::{BodyExt, Full};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Time allowed for one token request.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Largest token response read.
const MAX_BODY: usize = 64 * 1024;

enum Source {
    ClientCredentials {
        endpoint: String,
        client_id: String,
        secret: Secret,
    },
    Imds {
        endpoint: String,
    },
}

#[derive(Clone)]
struct Cached {
    token: Arc<Secret>,
    refresh_at: Instant,
}

/// The gateway's token source and cache.
#[derive(Default)]
pub struct Identity {
    source: Option<Source>,
    cache: ArcSwap<HashMap<(String, String), Cached>>,
}

impl Identity {
    pub fn new(cfg: &IdentityConfig) -> Identity {
        let source = match (&cfg.token_endpoint, &cfg.imds_endpoint) {
            (Some(endpoint), _) => Some(Source::ClientCredentials {
                endpoint: endpoint.clone(),
                client_id: cfg.client_id.clone().unwrap_or_default(),
                secret: cfg.client_secret.clone().unwrap_or_default(),
            }),
            (None, Some(endpoint)) => Some(Source::Imds {
                endpoint: endpoint.clone(),
            }),
            (None, None) => None,
        };
        Identity {
            source,
            cache: ArcSwap::default(),
        }
    }
}

/// The scope asked of a client-credentials provider for `resource`.
pub fn scope_of(resource: &str) -> String {
    if resource.ends_with("/.default") || resource.contains(' ') {
        resource.to_string()
    } else {
        format!("{}/.default", resource.trim_end_matches('/'))
    }
}

/// How long before expiry a token is refreshed.
fn refresh_margin(lifetime: Duration) -> Duration {
    (lifetime / 10).min(Duration::from_secs(300))
}

/// A token for `req`: from the cache, or fetched. Errors are messages
/// without secrets.
pub async fn token(upstream: &Upstream, req: &TokenRequest) -> Result<Arc<Secret>, String> {
    let id = &upstream.identity;
    let key = (
        req.resource.clone(),
        req.client_id.clone().unwrap_or_default(),
    );
    if let Some(c) = id.cache.load().get(&key) {
        if c.refresh_at > Instant::now() {
            return Ok(c.token.clone());
        }
    }
    let Some(source) = &id.source else {
        return Err("no token source: configure [identity] token_endpoint or imds_endpoint".into());
    };
    let (token, lifetime) = fetch(upstream, source, req).await?;
    let token = Arc::new(token);
    let cached = Cached {
        token: token.clone(),
        refresh_at: Instant::now() + lifetime.saturating_sub(refresh_margin(lifetime)),
    };
    id.cache.rcu(|m| {
        let mut m = HashMap::clone(m);
        m.retain(|_, c| c.refresh_at > Instant::now());
        m.insert(key.clone(), cached.clone());
        m
    });
    Ok(token)
}

async fn fetch(
    upstream: &Upstream,
    source: &Source,
    req: &TokenRequest,
) -> Result<(Secret, Duration), String> {
    let enc = |t: &str| {
        percent_encoding::utf8_percent_encode(t, crate::expr::context::COMPONENT).to_string()
    };
    let (http_req, endpoint) = match source {
        Source::ClientCredentials {
            endpoint,
            client_id,
            secret,
        } => {
            let form = format!(
                "grant_type=client_credentials&client_id={}&client_secret={}&scope={}",
                enc(client_id),
                enc(secret.expose()),
                enc(&scope_of(&req.resource))
            );
            let r = Request::post(endpoint.as_str())
                .header("content-type", "application/x-www-form-urlencoded")
                .header("accept", "application/json")
                .body(
                    Full::new(bytes::Bytes::from(form))
                        .map_err(|e| match e {})
                        .boxed_unsync(),
                );
            (r, endpoint)
        }
        Source::Imds { endpoint } => {
            let mut url = format!(
                "{endpoint}{}api-version=2018-02-01&resource={}",
                if endpoint.contains('?') { '&' } else { '?' },
                enc(&req.resource)
            );
            if let Some(c) = &req.client_id {
                url.push_str("&client_id=");
                url.push_str(&enc(c));
            }
            let r = Request::get(url)
                .header("metadata", "true")
                .header("accept", "application/json")
                .body(super::empty_body());
            (r, endpoint)
        }
    };
    let http_req = http_req.map_err(|_| format!("{endpoint} is not a valid URL"))?;
    let resp = upstream
        .send(http_req, Some(TIMEOUT), "managed-identity")
        .await
        .map_err(|e| format!("{endpoint}: {}", e.message))?;
    let status = resp.status();
    let mut body = resp.into_body();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(TIMEOUT, async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| "the response failed")?;
            if let Ok(data) = frame.into_data() {
                if buf.len() + data.len() > MAX_BODY {
                    return Err("the response is too large");
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(())
    })
    .await;
    match read {
        Err(_) => return Err(format!("{endpoint}: the response took too long")),
        Ok(Err(m)) => return Err(format!("{endpoint}: {m}")),
        Ok(Ok(())) => {}
    }
    if !status.is_success() {
        // The provider's error code (not its description, which may echo
        // request values).
        let code = serde_json::from_slice::<serde_json::Value>(&buf)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or_default();
        return Err(format!("{endpoint} answered {status} {code}")
            .trim()
            .to_string());
    }
    let v: serde_json::Value =
        serde_json::from_slice(&buf).map_err(|_| format!("{endpoint}: the answer is not JSON"))?;
    let token = v
        .get("access_token")
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| format!("{endpoint}: the answer has no access_token"))?;
    // IMDS sends expires_in as a string.
    let expires_in = match v.get("expires_in") {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
    .unwrap_or(300);
    Ok((Secret::new(token), Duration::from_secs(expires_in)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_and_margins() {
        assert_eq!(
            scope_of("https://vault.azure.net"),
            "https://vault.azure.net/.default"
        );
        assert_eq!(scope_of("api://x/"), "api://x/.default");
        assert_eq!(scope_of("api://x/.default"), "api://x/.default");
        assert_eq!(
            refresh_margin(Duration::from_secs(3600)),
            Duration::from_secs(300)
        );
        assert_eq!(
            refresh_margin(Duration::from_secs(60)),
            Duration::from_secs(6)
        );
    }
}
