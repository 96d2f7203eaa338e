//! Portal sign-in state: signed session cookies, CSRF tokens, password
//! hashing and rules, and the sign-in attempt throttle.
//!
//! A session cookie is `base64(uid \n epoch \n expiry) . base64(HMAC)`,
//! signed with the portal key (`data_dir/portal.key`). It is valid while
//! its expiry is ahead, the user is active, and the user's
//! `sessionEpoch` is still the one it was minted with (changing the
//! password or blocking the user signs every session out).
//!
//! CSRF: every visitor carries a random `tp_csrf` cookie; forms carry
//! `HMAC("csrf" \n cookie)`. A cross-site page can neither read the cookie
//! nor compute the token.

use crate::error::Secret;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::hmac;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "tp_session";
/// Name of the CSRF cookie.
pub const CSRF_COOKIE: &str = "tp_csrf";

/// The portal's signing key.
pub struct Keys {
    key: hmac::Key,
}

/// What a valid session cookie says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub uid: String,
    pub epoch: u64,
    pub expiry: u64,
}

impl Keys {
    pub fn new(secret: &Secret) -> Keys {
        Keys {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret.expose().as_bytes()),
        }
    }

    fn sign(&self, data: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.key, data).as_ref())
    }

    fn verify(&self, data: &[u8], sig: &str) -> bool {
        URL_SAFE_NO_PAD
            .decode(sig)
            .is_ok_and(|tag| hmac::verify(&self.key, data, &tag).is_ok())
    }

    /// A session cookie value for `claims`.
    pub fn mint(&self, claims: &Claims) -> String {
        let payload = format!("{}\n{}\n{}", claims.uid, claims.epoch, claims.expiry);
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload.as_bytes()),
            self.sign(format!("session\n{payload}").as_bytes())
        )
    }

    /// The claims of a well-signed, unexpired cookie value.
    pub fn open(&self, value: &str, now: u64) -> Option<Claims> {
        let (payload, sig) = value.split_once('.')?;
        let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        if !self.verify(format!("session\n{payload}").as_bytes(), sig) {
            return None;
        }
        let mut parts = payload.split('\n');
        let claims = Claims {
            uid: parts.next()?.to_string(),
            epoch: parts.next()?.parse().ok()?,
            expiry: parts.next()?.parse().ok()?,
        };
        (parts.next().is_none() && claims.expiry > now).then_some(claims)
    }

    /// The form token that goes with a CSRF cookie value.
    pub fn csrf_token(&self, cookie: &str) -> String {
        self.sign(format!("csrf\n{cookie}").as_bytes())
    }

    /// Whether `token` is the form token of `cookie`.
    pub fn csrf_ok(&self, cookie: &str, token: &str) -> bool {
        !cookie.is_empty() && self.verify(format!("csrf\n{cookie}").as_bytes(), token)
    }
}

/// The value of cookie `name` in a `Cookie` header set.
pub fn cookie<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, path `/`, `Secure` when
/// the portal is served over TLS. `max_age` `None` = session cookie,
/// `Some(0)` = delete.
pub fn set_cookie(name: &str, value: &str, max_age: Option<u64>, secure: bool) -> String {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    c
}

/// Most keys the sign-in throttle remembers (see [`Throttle::failed`]).
pub const THROTTLE_MAX_KEYS: usize = 100_000;

/// Failed sign-in attempts per key (email, client address) in a sliding
/// window. Not on the gateway's hot path; the lock is never held across
/// an await.
pub struct Throttle {
    limit: u32,
    window: Duration,
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

impl Throttle {
    pub fn new(limit: u32, window: Duration) -> Throttle {
        Throttle {
            limit,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(wait)` while `key` has used up its attempts.
    pub fn blocked(&self, key: &str) -> Option<Duration> {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let list = map.get_mut(key)?;
        list.retain(|t| now.duration_since(*t) < self.window);
        if list.len() < self.limit as usize {
            return None;
        }
        let oldest = list.first().copied()?;
        Some(self.window.saturating_sub(now.duration_since(oldest)))
    }

    /// Counts a failed attempt for `key`. Memory is bounded: a key keeps
    /// at most `limit` attempts, and past [`THROTTLE_MAX_KEYS`] keys the
    /// expired ones are forgotten, then, if that was not enough, those
    /// whose last failure is oldest, down to three quarters of the cap
    /// (so the sweep runs once per quarter-cap new keys, not per call).
    pub fn failed(&self, key: &str) {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= THROTTLE_MAX_KEYS && !map.contains_key(key) {
            map.retain(|_, l| {
                l.last()
                    .is_some_and(|t| now.duration_since(*t) < self.window)
            });
            let keep = THROTTLE_MAX_KEYS / 4 * 3;
            if map.len() > keep {
                let mut last: Vec<Instant> =
                    map.values().filter_map(|l| l.last().copied()).collect();
                let cut = map.len() - keep;
                let (_, nth, _) = last.select_nth_unstable(cut - 1);
                let threshold = *nth;
                map.retain(|_, l| l.last().is_some_and(|t| *t > threshold));
            }
        }
        let list = map.entry(key.to_string()).or_default();
        list.retain(|t| now.duration_since(*t) < self.window);
        if list.len() >= self.limit.max(1) as usize {
            list.remove(0);
        }
        list.push(now);
    }

    /// Keys currently remembered.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// Forgets `key` (after a successful sign-in).
    pub fn clear(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::new(&Secret::new("k".repeat(64)))
    }

    #[test]
    fn session_round_trips_and_rejects_tampering() {
        let k = keys();
        let c = Claims {
            uid: "u1".into(),
            epoch: 3,
            expiry: 100,
        };
        let v = k.mint(&c);
        assert_eq!(k.open(&v, 50), Some(c.clone()));
        assert_eq!(k.open(&v, 100), None, "expired");
        let forged = Keys::new(&Secret::new("x".repeat(64))).mint(&c);
        assert_eq!(k.open(&forged, 50), None);
        let (p, s) = v.split_once('.').unwrap();
        let other = URL_SAFE_NO_PAD.encode(b"admin\n3\n100");
        assert_eq!(k.open(&format!("{other}.{s}"), 50), None);
        assert_eq!(k.open(p, 50), None);
    }

    #[test]
    fn csrf_tokens_bind_to_the_cookie() {
        let k = keys();
        let t = k.csrf_token("abc");
        assert!(k.csrf_ok("abc", &t));
        assert!(!k.csrf_ok("abd", &t));
        assert!(!k.csrf_ok("", &k.csrf_token("")));
    }

    #[test]
    fn throttle_memory_is_bounded() {
        let t = Throttle::new(3, Duration::from_secs(600));
        for _ in 0..10 {
            t.failed("same");
        }
        assert!(t.blocked("same").is_some());
        assert_eq!(t.failures.lock().unwrap()["same"].len(), 3);
        for i in 0..THROTTLE_MAX_KEYS + 10 {
            t.failed(&format!("k{i}"));
            assert!(t.len() <= THROTTLE_MAX_KEYS, "at {i}");
        }
        assert!(t.len() >= THROTTLE_MAX_KEYS / 4 * 3);
        // The newest keys are the ones kept.
        let last = format!("k{}", THROTTLE_MAX_KEYS + 9);
        assert!(t.failures.lock().unwrap().contains_key(&last));
    }

    #[test]
    fn throttle_blocks_after_the_limit() {
        let t = Throttle::new(2, Duration::from_secs(60));
        assert!(t.blocked("a").is_none());
        t.failed("a");
        t.failed("a");
        assert!(t.blocked("a").is_some());
        assert!(t.blocked("b").is_none());
        t.clear("a");
        assert!(t.blocked("a").is_none());
    }

    #[test]
    fn cookies_are_parsed_from_every_header() {
        let mut h = http::HeaderMap::new();
        h.append(http::header::COOKIE, "a=1; tp_csrf=xyz".parse().unwrap());
        h.append(http::header::COOKIE, "tp_session=s.t".parse().unwrap());
        assert_eq!(cookie(&h, "tp_csrf"), Some("xyz"));
        assert_eq!(cookie(&h, "tp_session"), Some("s.t"));
        assert_eq!(cookie(&h, "nope"), None);
    }
}
