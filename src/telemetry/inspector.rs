//! The API inspector's trace store and masking rules.
//!
//! Owns: [`TraceRing`], the bounded in-memory ring of finished traces
//! (rendered JSON by trace id; the oldest go first past the count or the
//! byte cap), owned by the `Gateway` and read by `GET /mgmt/traces/{id}`;
//! and the masking every trace goes through: [`mask`] (first 4 characters
//! and "…", or `***` for short values), [`secret_header`] /
//! [`secret_param`] (which names are masked), and [`Redactor`], which
//! replaces known secret values (subscription key, debug token, secret
//! named values, credentials) wherever they appear in a trace.
//!
//! Only traced requests touch the ring (one short std-mutex section per
//! finished trace and per read): untraced requests never see it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

/// The ring's byte cap (rendered JSON of all kept traces).
pub const MAX_RING_BYTES: usize = 16 << 20;

/// Finished traces by id, oldest first.
pub struct TraceRing {
    max_traces: usize,
    max_bytes: usize,
    inner: Mutex<Ring>,
}

#[derive(Default)]
struct Ring {
    traces: VecDeque<(String, Arc<str>)>,
    bytes: usize,
}

impl TraceRing {
    /// A ring keeping at most `max_traces` traces (0: the inspector is off).
    pub fn new(max_traces: usize) -> TraceRing {
        TraceRing::with_bytes(max_traces, MAX_RING_BYTES)
    }

    pub fn with_bytes(max_traces: usize, max_bytes: usize) -> TraceRing {
        TraceRing {
            max_traces,
            max_bytes,
            inner: Mutex::new(Ring::default()),
        }
    }

    /// Whether traces are kept at all.
    pub fn enabled(&self) -> bool {
        self.max_traces > 0
    }

    fn lock(&self) -> MutexGuard<'_, Ring> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Keeps `json` under `id`, evicting the oldest traces past the bounds.
    /// A trace larger than the whole byte cap is not kept.
    pub fn insert(&self, id: String, json: String) {
        if !self.enabled() || json.len() > self.max_bytes {
            return;
        }
        let mut ring = self.lock();
        ring.bytes += json.len();
        ring.traces.push_back((id, Arc::from(json)));
        while ring.traces.len() > self.max_traces || ring.bytes > self.max_bytes {
            match ring.traces.pop_front() {
                Some((_, old)) => ring.bytes -= old.len(),
                None => break,
            }
        }
    }

    /// The trace `id`, while the ring still holds it.
    pub fn get(&self, id: &str) -> Option<Arc<str>> {
        self.lock()
            .traces
            .iter()
            .find(|(k, _)| k == id)
            .map(|(_, v)| v.clone())
    }

    /// How many traces the ring holds.
    pub fn len(&self) -> usize {
        self.lock().traces.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A secret shown in a trace: its first 4 characters and "…" when it is
/// long enough that they say little, else `***`.
pub fn mask(value: &str) -> String {
    if value.chars().count() < 16 {
        return "***".into();
    }
    let mut out: String = value.chars().take(4).collect();
    out.push('…');
    out
}

/// Words that make a header or parameter name secret.
const SECRET_WORDS: [&str; 8] = [
    "auth",
    "key",
    "token",
    "secret",
    "password",
    "signature",
    "credential",
    "cookie",
];

fn secret_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|w| lower.contains(w))
}

/// Whether a header's value is masked in traces: credentials by name
/// (`Authorization`, cookies, anything naming a key, token, secret,
/// password, signature or credential) and the API's subscription key
/// header.
pub fn secret_header(name: &str, key_header: &str) -> bool {
    name.eq_ignore_ascii_case(key_header) || secret_name(name)
}

/// Whether a query parameter's value is masked: the API's subscription key
/// parameter and names like [`secret_header`]'s, plus `sig` / `code`
/// (SAS signatures, function keys).
pub fn secret_param(name: &str, key_query: &str) -> bool {
    name.eq_ignore_ascii_case(key_query)
        || name.eq_ignore_ascii_case("sig")
        || name.eq_ignore_ascii_case("code")
        || secret_name(name)
}

/// Replaces known secret values wherever they appear.
#[derive(Default)]
pub struct Redactor {
    /// Longest first, so a value containing another is replaced whole.
    values: Vec<String>,
}

/// What a redacted value becomes.
pub const REDACTED: &str = "***";

impl Redactor {
    /// Adds a value to hide (values under 4 characters are too short to
    /// find safely and are left alone).
    pub fn add(&mut self, value: &str) {
        let v = value.trim();
        if v.chars().count() >= 4 && !self.values.iter().any(|x| x == v) {
            self.values.push(v.to_string());
            self.values.sort_by_key(|x| std::cmp::Reverse(x.len()));
        }
    }

    /// `text` with every known secret replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for v in &self.values {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), REDACTED);
            }
        }
        out
    }

    /// Redacts every string (and object key) of a JSON document in place.
    pub fn redact_json(&self, value: &mut serde_json::Value) {
        use serde_json::Value;
        match value {
            Value::String(s) if self.values.iter().any(|v| s.contains(v.as_str())) => {
                *s = self.redact(s);
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.redact_json(v)),
            Value::Object(map) => {
                let hit = |k: &String| self.values.iter().any(|v| k.contains(v.as_str()));
                if map.keys().any(hit) {
                    // Rebuilt in order, with the keys redacted too.
                    for (k, mut v) in std::mem::take(map) {
                        self.redact_json(&mut v);
                        map.insert(self.redact(&k), v);
                    }
                } else {
                    map.values_mut().for_each(|v| self.redact_json(v));
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn masks_keep_four_characters_of_long_values_only() {
        assert_eq!(mask("0123456789abcdef0123"), "0123…");
        assert_eq!(mask("short"), "***");
        assert_eq!(mask(""), "***");
        assert_eq!(mask("ééééééééééééééééé"), "éééé…");
    }

    #[test]
    fn secret_names() {
        for h in [
            "Authorization",
            "Proxy-Authorization",
            "Cookie",
            "Set-Cookie",
            "Apim-Debug-Authorization",
            "Ocp-Apim-Subscription-Key",
            "x-api-key",
            "X-Functions-Key",
            "x-client-secret",
            "x-auth-token",
        ] {
            assert!(secret_header(h, "ocp-apim-subscription-key"), "{h}");
        }
        assert!(secret_header("X-My-Sub", "x-my-sub"));
        for h in ["Accept", "Content-Type", "X-Forwarded-For", "traceparent"] {
            assert!(!secret_header(h, "ocp-apim-subscription-key"), "{h}");
        }
        assert!(secret_param("subscription-key", "subscription-key"));
        assert!(secret_param("sig", "subscription-key"));
        assert!(secret_param("access_token", "subscription-key"));
        assert!(!secret_param("page", "subscription-key"));
    }

    #[test]
    fn redactor_replaces_values_everywhere() {
        let mut r = Redactor::default();
        r.add("s3cr3t-value");
        r.add("abc"); // too short: ignored
        r.add("s3cr3t-value-longer");
        assert_eq!(r.redact("x s3cr3t-value-longer y"), "x *** y");
        assert_eq!(r.redact("a s3cr3t-value b abc"), "a *** b abc");
        let mut doc = json!({"h": ["s3cr3t-value"], "s3cr3t-value": {"n": 1, "t": "ok"}});
        r.redact_json(&mut doc);
        assert_eq!(doc, json!({"h": ["***"], "***": {"n": 1, "t": "ok"}}));
        let mut plain = json!({"b": "x s3cr3t-value", "a": 1});
        r.redact_json(&mut plain);
        assert_eq!(plain.to_string(), r#"{"b":"x ***","a":1}"#, "order kept");
        assert!(!doc.to_string().contains("s3cr3t"));
    }

    #[test]
    fn ring_evicts_the_oldest_past_its_bounds() {
        let ring = TraceRing::with_bytes(3, 100);
        for i in 0..5 {
            ring.insert(format!("t{i}"), format!("{{\"n\":{i}}}"));
        }
        assert_eq!(ring.len(), 3);
        assert!(ring.get("t0").is_none() && ring.get("t1").is_none());
        assert_eq!(ring.get("t4").as_deref(), Some("{\"n\":4}"));
        // The byte cap: a 60-byte trace pushes out older ones.
        ring.insert("big".into(), "x".repeat(60));
        assert!(ring.get("big").is_some());
        assert!(ring.get("t2").is_none());
        // Larger than the cap: not kept at all.
        ring.insert("huge".into(), "x".repeat(101));
        assert!(ring.get("huge").is_none());
        let off = TraceRing::new(0);
        off.insert("a".into(), "{}".into());
        assert!(!off.enabled() && off.is_empty());
    }
}
