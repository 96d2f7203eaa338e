//! `validate-jwt`'s `<openid-config>`: the provider's metadata and JWKS,
//! fetched on the gateway's async path and cached per URL.
//!
//! An entry is kept for an hour. A token whose `kid` matches no key (or a
//! failed fetch) causes a refetch at most every 5 minutes per URL; in
//! between, the keys last fetched stay in use. Each fetch is bounded in
//! time and size, and nothing fetched is logged.

use super::proxy::Upstream;
use crate::policy::builtin::validate_jwt::{jwks_keys, Discovered, ValidateJwt};
use crate::policy::builtin::{Outcome, PolicyError, State};
use http::Request;
use http_body_util::BodyExt;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long fetched keys are used before they are fetched again.
pub const TTL: Duration = Duration::from_secs(3600);
/// The least time between two fetches of one URL.
pub const MIN_REFETCH: Duration = Duration::from_secs(300);
/// The bound on each of the two requests of a fetch.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The largest metadata or JWKS document read.
const MAX_BODY: usize = 256 * 1024;

struct Entry {
    found: Arc<Discovered>,
    fetched: Option<Instant>,
    attempted: Instant,
}

/// Discovered keys by metadata URL.
pub struct OidcCache {
    entries: Mutex<HashMap<String, Entry>>,
    /// One fetch at a time per URL: the others wait for its result.
    gates: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    ttl: Duration,
    min_refetch: Duration,
}

impl Default for OidcCache {
    fn default() -> Self {
        OidcCache::new(TTL, MIN_REFETCH)
    }
}

impl OidcCache {
    pub fn new(ttl: Duration, min_refetch: Duration) -> OidcCache {
        OidcCache {
            entries: Mutex::new(HashMap::new()),
            gates: Mutex::new(HashMap::new()),
            ttl,
            min_refetch,
        }
    }

    /// What to use for `url` now, or `Err(last keys)` when it must be
    /// fetched; with `record`, the attempt is noted (it counts for the
    /// 5-minute bound whether or not it succeeds).
    fn lookup(
        &self,
        url: &str,
        refresh: bool,
        record: bool,
    ) -> Result<Arc<Discovered>, Option<Arc<Discovered>>> {
        let now = Instant::now();
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let Some(e) = map.get_mut(url) else {
            if !record {
                return Err(None);
            }
            map.insert(
                url.to_string(),
                Entry {
                    found: Arc::new(Discovered::default()),
                    fetched: None,
                    attempted: now,
                },
            );
            return Err(None);
        };
        let fresh = e.fetched.is_some_and(|t| now.duration_since(t) < self.ttl);
        let may_fetch = now.duration_since(e.attempted) >= self.min_refetch;
        if (fresh && !refresh) || !may_fetch {
            return Ok(e.found.clone());
        }
        if record {
            e.attempted = now;
        }
        Err(Some(e.found.clone()))
    }

    fn gate(&self, url: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut gates = self.gates.lock().unwrap_or_else(|p| p.into_inner());
        gates.entry(url.to_string()).or_default().clone()
    }

    fn store(&self, url: String, found: Arc<Discovered>) {
        let now = Instant::now();
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(
            url,
            Entry {
                found,
                fetched: Some(now),
                attempted: now,
            },
        );
    }
}

/// The keys and issuer of `url`: cached, or fetched when stale (or, with
/// `refresh`, when a key was missing) and the last attempt is old enough.
/// (A free function: the gateway's boxed futures must not hold a borrow
/// of the cache itself across the fetch.)
pub async fn discover(upstream: &Upstream, url: String, refresh: bool) -> Arc<Discovered> {
    if let Ok(found) = upstream.oidc.lookup(&url, refresh, false) {
        return found;
    }
    let gate = upstream.oidc.gate(&url);
    let _fetching = gate.lock().await;
    // Another request may have fetched while this one waited.
    let old = match upstream.oidc.lookup(&url, refresh, true) {
        Ok(found) => return found,
        Err(old) => old,
    };
    match fetch(upstream, url.clone()).await {
        Ok(found) => {
            let found = Arc::new(found);
            upstream.oidc.store(url, found.clone());
            found
        }
        Err(why) => {
            tracing::warn!(url, "openid-config: {why}");
            old.unwrap_or_default()
        }
    }
}

/// Reads at most `MAX_BODY` bytes of a body (`None` past that or on error).
async fn read_capped(mut body: super::Body) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.ok()?.into_data() {
            if buf.len() + data.len() > MAX_BODY {
                return None;
            }
            buf.extend_from_slice(&data);
        }
    }
    Some(buf)
}

/// GETs a JSON document of at most `MAX_BODY` bytes within `TIMEOUT`.
async fn get_json(upstream: &Upstream, url: String) -> Result<serde_json::Value, String> {
    let req = Request::get(url.as_str())
        .header("accept", "application/json")
        .body(super::empty_body())
        .map_err(|_| format!("'{url}' is not a valid URL"))?;
    let resp = upstream
        .send(req, Some(TIMEOUT), "openid-config")
        .await
        .map_err(|e| format!("{url}: {}", e.message))?;
    if !resp.status().is_success() {
        return Err(format!("{url} answered {}", resp.status()));
    }
    let body = tokio::time::timeout(TIMEOUT, read_capped(resp.into_body()))
        .await
        .map_err(|_| format!("{url}: the body took too long"))?
        .ok_or_else(|| format!("{url}: the body failed or exceeded {MAX_BODY} bytes"))?;
    serde_json::from_slice(&body).map_err(|_| format!("{url}: the answer is not JSON"))
}

/// Fetches the metadata at `url`, then its `jwks_uri`.
async fn fetch(upstream: &Upstream, url: String) -> Result<Discovered, String> {
    let meta = get_json(upstream, url.clone()).await?;
    let jwks_uri = meta
        .get("jwks_uri")
        .and_then(|v| v.as_str())
        .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
        .map(str::to_string)
        .ok_or_else(|| format!("{url}: no http(s) jwks_uri in the metadata"))?;
    let jwks = get_json(upstream, jwks_uri.clone()).await?;
    let keys = jwks_keys(&jwks);
    if keys.is_empty() {
        return Err(format!("{jwks_uri}: no usable signing keys"));
    }
    Ok(Discovered {
        issuer: meta
            .get("issuer")
            .and_then(|v| v.as_str())
            .map(str::to_string),
        keys,
    })
}

/// Runs a `validate-jwt` with `openid-config`: the discovered keys first,
/// then, if the token's key is unknown, once more after a refetch (when
/// the 5-minute bound allows one).
/// (Boxed and `Send` here, where the lifetimes are concrete, for the
/// pipeline's boxed step futures.)
pub fn validate<'a>(
    st: &'a mut State,
    upstream: &'a Upstream,
    v: Arc<ValidateJwt>,
) -> Pin<Box<dyn Future<Output = Result<Outcome, PolicyError>> + Send + 'a>> {
    Box::pin(async move {
        let urls: Vec<String> = v.discovery_urls().to_vec();
        let mut found = Vec::with_capacity(urls.len());
        for url in urls.clone() {
            found.push(discover(upstream, url, false).await);
        }
        match v.apply_with(st, &found) {
            Err(e) if e.reason == "TokenSignatureKeyNotFound" => {
                let mut changed = false;
                for (i, url) in urls.into_iter().enumerate() {
                    let again = discover(upstream, url, true).await;
                    changed |= !Arc::ptr_eq(&again, &found[i]);
                    found[i] = again;
                }
                if changed {
                    v.apply_with(st, &found)
                } else {
                    Err(e)
                }
            }
            r => r,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetches(r: Result<Arc<Discovered>, Option<Arc<Discovered>>>) -> bool {
        r.is_err()
    }

    #[test]
    fn fetches_when_missing_stale_or_a_key_is_missing_but_not_too_often() {
        let c = OidcCache::new(TTL, MIN_REFETCH);
        assert!(
            matches!(c.lookup("u", false, false), Err(None)),
            "first use fetches"
        );
        assert!(
            matches!(c.lookup("u", false, false), Err(None)),
            "nothing noted yet"
        );
        assert!(matches!(c.lookup("u", false, true), Err(None)));
        assert!(!fetches(c.lookup("u", false, true)), "a failed fetch waits");
        c.store("u".into(), Arc::new(Discovered::default()));
        assert!(!fetches(c.lookup("u", false, true)));
        assert!(
            !fetches(c.lookup("u", true, true)),
            "unknown kid: not within 5 min"
        );

        let c = OidcCache::new(TTL, Duration::ZERO);
        c.store("u".into(), Arc::new(Discovered::default()));
        assert!(!fetches(c.lookup("u", false, true)), "fresh keys are used");
        assert!(
            matches!(c.lookup("u", true, true), Err(Some(_))),
            "unknown kid refetches"
        );

        let c = OidcCache::new(Duration::ZERO, Duration::ZERO);
        c.store("u".into(), Arc::new(Discovered::default()));
        assert!(
            fetches(c.lookup("u", false, true)),
            "stale keys are refetched"
        );
    }
}
