//! The caching policies (APIM §3.5): `<cache-lookup>` (inbound) and
//! `<cache-store>` (outbound) cache whole responses; `<cache-lookup-value>`,
//! `<cache-store-value>` and `<cache-remove-value>` (any section) cache
//! values under keys of the document's choosing. The store is the
//! gateway's [`Cache`](crate::policy::cache::Cache).
//!
//! A response is keyed by the API, operation and product, the path and
//! query the client sent (only the `vary-by-query-parameter` parameters
//! when some are listed; never the subscription-key parameter), the values
//! of the `vary-by-header` headers, and, with `vary-by-developer` /
//! `vary-by-developer-groups`, the user's id / group ids (the user's id
//! when the user has no groups, which the gateway never produces: every
//! user is in `developers`). Only `GET`
//! requests are looked up and stored, and only when they carry no
//! `Authorization` header unless `allow-private-response-caching` is true.
//! On a hit `cache-lookup` answers with the cached response: the rest of
//! `inbound` and `backend` are skipped, `outbound` runs (its `cache-store`
//! does nothing). On a miss it leaves its key in the request's state for
//! `cache-store`, which stores a `200` (any status when `cache-response` is
//! true) for `duration` seconds, unless the response says
//! `Cache-Control: no-store` (or `private`, without
//! `allow-private-response-caching`). `Set-Cookie` is never stored.
//! `downstream-caching-type` `private` / `public` sets `Cache-Control` on
//! what the client gets (`max-age` the entry's time left, plus
//! `must-revalidate` unless `must-revalidate="false"`).

use super::counting::whole;
use super::{Compiler, Outcome, PolicyError, State, Val};
use super::{Policy, Step};
use crate::expr::Value;
use crate::policy::cache::{Cache, Cached, CachedResponse, CachingType, Tier};
use crate::policy::xml::Element;
use bytes::Bytes;
use std::fmt::Write;
use std::time::Duration;

// Sections (`sections_of`): `cache-lookup` inbound, `cache-store` outbound,
// the value policies anywhere.

/// What `cache-lookup` leaves for `cache-store` on the request's state.
#[derive(Debug, Clone, Default)]
pub struct Lookup {
    /// The response's key, when the request may be cached.
    pub key: Option<String>,
    pub tier: Option<Tier>,
    /// The response came from the cache.
    pub hit: bool,
    pub allow_private: bool,
    pub downstream: Downstream,
    pub must_revalidate: bool,
}

/// `downstream-caching-type`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Downstream {
    #[default]
    None,
    Private,
    Public,
}

fn caching_type(cx: &mut Compiler, e: &Element) -> CachingType {
    match cx.literal(e, "caching-type") {
        None => CachingType::default(),
        Some(v) => CachingType::parse(&v).unwrap_or_else(|| {
            let at = e
                .attr("caching-type")
                .map_or(e.span.start, |a| a.value_span.start);
            cx.error(
                at,
                format!("'caching-type' must be prefer-external, external or internal, not '{v}'"),
            );
            CachingType::default()
        }),
    }
}

fn required(cx: &mut Compiler, e: &Element, name: &str) -> Option<Val> {
    let v = cx.attr(e, name);
    if v.is_none() {
        cx.error(e.span.start, format!("<{}> needs {name}", e.name));
    }
    v
}

/// `<cache-lookup>`.
#[derive(Debug)]
pub struct CacheLookup {
    vary_by_developer: Val,
    vary_by_groups: Val,
    downstream: Option<Val>,
    must_revalidate: Option<Val>,
    allow_private: Option<Val>,
    caching_type: CachingType,
    headers: Vec<Val>,
    query: Vec<Val>,
}

impl CacheLookup {
    pub fn parse(cx: &mut Compiler, e: &Element) -> Option<CacheLookup> {
        let dev = required(cx, e, "vary-by-developer");
        let groups = required(cx, e, "vary-by-developer-groups");
        let mut headers = Vec::new();
        let mut query = Vec::new();
        for c in e.elements() {
            match c.name.as_str() {
                "vary-by-header" => headers.push(cx.text(c)),
                "vary-by-query-parameter" => query.push(cx.text(c)),
                _ => {}
            }
        }
        Some(CacheLookup {
            vary_by_developer: dev?,
            vary_by_groups: groups?,
            downstream: cx.attr(e, "downstream-caching-type"),
            must_revalidate: cx.attr(e, "must-revalidate"),
            allow_private: cx.attr(e, "allow-private-response-caching"),
            caching_type: caching_type(cx, e),
            headers,
            query,
        })
    }

    pub fn apply(&self, st: &mut State) -> Result<Outcome, PolicyError> {
        let Some(tier) = self.begin(st)? else {
            return Ok(Outcome::Continue);
        };
        let hit = match (tier, st.cached.key.as_deref()) {
            (Tier::Internal, Some(key)) => st.cache.get(key).and_then(|e| match &e.content {
                Cached::Response(r) => Some((r.clone(), e.remaining())),
                Cached::Value(_) => None,
            }),
            // The pipeline looks the external tier up (`plan`, `finish`);
            // run without it, nothing is found there.
            _ => None,
        };
        Ok(answer(st, hit))
    }

    /// Whether this request is looked up, and in which tier: on `Some`,
    /// `st.cached` holds the key and options (a miss until [`answer`]).
    fn begin(&self, st: &mut State) -> Result<Option<Tier>, PolicyError> {
        if !st.ctx.request.method.eq_ignore_ascii_case("GET") {
            return Ok(None);
        }
        let allow_private = match &self.allow_private {
            Some(v) => v.truth(st)?,
            None => false,
        };
        if !allow_private && st.ctx.request.message.headers.contains("authorization") {
            return Ok(None);
        }
        let Some(tier) = st.cache.tier(self.caching_type) else {
            // `external` without an external cache: no caching.
            return Ok(None);
        };
        let key = self.key(st)?;
        let downstream = match &self.downstream {
            Some(v) => match v.text(st)?.trim() {
                "private" => Downstream::Private,
                "public" => Downstream::Public,
                _ => Downstream::None,
            },
            None => Downstream::None,
        };
        let must_revalidate = match &self.must_revalidate {
            Some(v) => v.truth(st)?,
            None => true,
        };
        st.cached = Lookup {
            key: Some(key),
            tier: Some(tier),
            hit: false,
            allow_private,
            downstream,
            must_revalidate,
        };
        Ok(Some(tier))
    }

    /// The response's cache key for this request.
    pub fn key(&self, st: &State) -> Result<String, PolicyError> {
        let mut k = String::from("response");
        let c = &st.ctx;
        part(&mut k, c.api.as_ref().map_or("", |a| a.id.as_str()));
        part(&mut k, c.operation.as_ref().map_or("", |o| o.id.as_str()));
        part(&mut k, c.product.as_ref().map_or("", |p| p.id.as_str()));
        part(&mut k, &c.request.original_url.path);
        let key_param = c.api.as_ref().map_or("", |a| a.query_name.as_str());
        let mut wanted = Vec::with_capacity(self.query.len());
        for q in &self.query {
            wanted.push(q.text(st)?);
        }
        let mut params: Vec<&(String, String)> = c
            .request
            .original_url
            .query
            .iter()
            .filter(|(n, _)| key_param.is_empty() || !n.eq_ignore_ascii_case(key_param))
            .filter(|(n, _)| wanted.is_empty() || wanted.iter().any(|w| w.eq_ignore_ascii_case(n)))
            .collect();
        params.sort();
        part(&mut k, &params.len().to_string());
        for (n, v) in params {
            part(&mut k, n);
            part(&mut k, v);
        }
        part(&mut k, &self.headers.len().to_string());
        for h in &self.headers {
            let name = h.text(st)?;
            match c.request.message.headers.joined(&name) {
                Some(v) => part(&mut k, &format!("={v}")),
                None => part(&mut k, "-"),
            }
        }
        if self.vary_by_developer.truth(st)? {
            part(&mut k, c.user.as_ref().map_or("", |u| u.id.as_str()));
        } else {
            part(&mut k, "*");
        }
        if self.vary_by_groups.truth(st)? {
            match c.user.as_ref() {
                Some(u) if !u.groups.is_empty() => {
                    let mut groups: Vec<&str> =
                        u.groups.iter().map(|(id, _)| id.as_str()).collect();
                    groups.sort_unstable();
                    part(&mut k, &format!("groups:{}", groups.join(",")));
                }
                // Group memberships not known for this request: keyed by
                // the user instead, so no response crosses users.
                Some(u) => part(&mut k, &format!("user:{}", u.id)),
                None => part(&mut k, ""),
            }
        } else {
            part(&mut k, "*");
        }
        Ok(k)
    }
}

/// Appends one length-prefixed part to a key (so no part can pose as two).
fn part(k: &mut String, s: &str) {
    let _ = write!(k, "|{}:{s}", s.len());
}

/// Ends `cache-lookup` with what was found: a hit answers with the
/// stored response (and its time left), a miss continues.
fn answer(st: &mut State, hit: Option<(CachedResponse, Duration)>) -> Outcome {
    st.cached.hit = hit.is_some();
    let api = st.ctx.api.as_ref().map_or("", |a| a.id.as_str());
    st.telemetry.prometheus.cache_lookup(api, st.cached.hit);
    let Some((r, left)) = hit else {
        return Outcome::Continue;
    };
    let resp = st.response_mut();
    resp.status = r.status;
    resp.reason = r.reason;
    resp.message.headers = crate::expr::context::Headers(r.headers);
    resp.message.body = Some(r.body);
    downstream_header(st, left);
    Outcome::Respond
}

/// Sets `Cache-Control` for `downstream-caching-type` private / public.
fn downstream_header(st: &mut State, left: Duration) {
    let l = &st.cached;
    let kind = match l.downstream {
        Downstream::None => return,
        Downstream::Private => "private",
        Downstream::Public => "public",
    };
    let mut v = format!("{kind}, max-age={}", left.as_secs());
    if l.must_revalidate {
        v.push_str(", must-revalidate");
    }
    st.response_mut().message.headers.set("Cache-Control", v);
}

/// `<cache-store>`.
#[derive(Debug)]
pub struct CacheStore {
    duration: Val,
    cache_response: Option<Val>,
}

impl CacheStore {
    pub fn parse(cx: &mut Compiler, e: &Element) -> Option<CacheStore> {
        // The response is stored whole, so the backend's body is buffered.
        cx.note_response_body();
        Some(CacheStore {
            duration: required(cx, e, "duration")?,
            cache_response: cx.attr(e, "cache-response"),
        })
    }

    pub fn apply(&self, st: &mut State) -> Result<Outcome, PolicyError> {
        let (Some(key), Some(tier)) = (st.cached.key.clone(), st.cached.tier) else {
            return Ok(Outcome::Continue);
        };
        if st.cached.hit {
            return Ok(Outcome::Continue);
        }
        let status = st.ctx.response.as_ref().map_or(200, |r| r.status);
        let wanted = match &self.cache_response {
            Some(v) => v.truth(st)?,
            None => status == 200,
        };
        if !wanted {
            return Ok(Outcome::Continue);
        }
        let resp = st.response_mut();
        let control = resp
            .message
            .headers
            .joined("cache-control")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let directives: Vec<&str> = control.split(',').map(str::trim).collect();
        if directives.contains(&"no-store")
            || (directives.iter().any(|d| d.starts_with("private")) && !st.cached.allow_private)
        {
            return Ok(Outcome::Continue);
        }
        let secs = whole(&self.duration, st, "duration")?;
        let resp = st.response_mut();
        let headers = resp
            .message
            .headers
            .0
            .iter()
            .filter(|(k, _)| {
                !k.eq_ignore_ascii_case("set-cookie") && !k.eq_ignore_ascii_case("content-length")
            })
            .cloned()
            .collect();
        let cached = CachedResponse {
            status: resp.status,
            reason: resp.reason.clone(),
            headers,
            body: resp.message.body.clone().unwrap_or_default(),
        };
        let ttl = Duration::from_secs(secs);
        let stored = match tier {
            Tier::Internal => st.cache.put(&key, Cached::Response(cached), ttl),
            // Stored in the background: the response is not held back.
            Tier::External => st.cache.store_later(&key, &Cached::Response(cached), ttl),
        };
        if stored {
            downstream_header(st, ttl);
        }
        Ok(Outcome::Continue)
    }
}

fn value_key(key: &str) -> String {
    format!("value|{key}")
}

/// `<cache-lookup-value>`.
#[derive(Debug)]
pub struct CacheLookupValue {
    key: Val,
    default: Option<Val>,
    variable: String,
    caching_type: CachingType,
}

impl CacheLookupValue {
    pub fn parse(cx: &mut Compiler, e: &Element) -> Option<CacheLookupValue> {
        let key = required(cx, e, "key");
        let variable = cx.literal(e, "variable-name");
        if variable.is_none() {
            cx.error(
                e.span.start,
                "<cache-lookup-value> needs variable-name".into(),
            );
        }
        Some(CacheLookupValue {
            key: key?,
            default: cx.attr(e, "default-value"),
            variable: variable?,
            caching_type: caching_type(cx, e),
        })
    }

    pub fn apply(&self, st: &mut State) -> Result<Outcome, PolicyError> {
        let key = value_key(&self.key.text(st)?);
        let found = match st.cache.tier(self.caching_type) {
            Some(Tier::Internal) => st.cache.get_value(&key),
            _ => None,
        };
        self.answer(st, found)
    }

    /// Sets the variable to what was found, else to `default-value`.
    fn answer(&self, st: &mut State, found: Option<Value>) -> Result<Outcome, PolicyError> {
        let value = match (found, &self.default) {
            (Some(v), _) => v,
            (None, Some(d)) => d.eval(st)?,
            // A miss without default-value leaves the variable unset.
            (None, None) => return Ok(Outcome::Continue),
        };
        st.ctx.variables.insert(self.variable.clone(), value);
        Ok(Outcome::Continue)
    }
}

/// `<cache-store-value>`.
#[derive(Debug)]
pub struct CacheStoreValue {
    key: Val,
    value: Val,
    duration: Val,
    caching_type: CachingType,
}

impl CacheStoreValue {
    pub fn parse(cx: &mut Compiler, e: &Element) -> Option<CacheStoreValue> {
        let key = required(cx, e, "key");
        let value = required(cx, e, "value");
        let duration = required(cx, e, "duration");
        Some(CacheStoreValue {
            key: key?,
            value: value?,
            duration: duration?,
            caching_type: caching_type(cx, e),
        })
    }

    pub fn apply(&self, st: &mut State) -> Result<Outcome, PolicyError> {
        let Some(tier) = st.cache.tier(self.caching_type) else {
            return Ok(Outcome::Continue);
        };
        let key = value_key(&self.key.text(st)?);
        let value = self.value.eval(st)?;
        let secs = whole(&self.duration, st, "duration")?;
        if tier == Tier::Internal {
            st.cache
                .put(&key, Cached::Value(value), Duration::from_secs(secs));
        }
        Ok(Outcome::Continue)
    }

    /// The external store: the key, the value's byte form and its time to
    /// live (`None` when nothing is stored: zero duration, too large).
    fn external(&self, st: &mut State) -> Result<Option<Ext>, PolicyError> {
        let key = value_key(&self.key.text(st)?);
        let value = self.value.eval(st)?;
        let ttl = Duration::from_secs(whole(&self.duration, st, "duration")?);
        Ok(Cache::external_entry(&key, &Cached::Value(value), ttl)
            .map(|bytes| Ext::Store(key, bytes, ttl)))
    }
}

/// `<cache-remove-value>`.
#[derive(Debug)]
pub struct CacheRemoveValue {
    key: Val,
    caching_type: CachingType,
}

impl CacheRemoveValue {
    pub fn parse(cx: &mut Compiler, e: &Element) -> Option<CacheRemoveValue> {
        Some(CacheRemoveValue {
            key: required(cx, e, "key")?,
            caching_type: caching_type(cx, e),
        })
    }

    pub fn apply(&self, st: &mut State) -> Result<Outcome, PolicyError> {
        if st.cache.tier(self.caching_type) == Some(Tier::Internal) {
            let key = value_key(&self.key.text(st)?);
            st.cache.remove(&key);
        }
        Ok(Outcome::Continue)
    }
}

/// An operation on the external tier a caching policy leaves to the
/// pipeline, which awaits it ([`run`]) and then calls [`finish`].
#[derive(Debug)]
pub enum Ext {
    /// `cache-lookup`: the response under the key.
    Lookup(String),
    /// `cache-lookup-value`: the value under the key.
    LookupValue(String),
    /// `cache-store-value`: the entry's byte form and time to live. Awaited
    /// (one round trip) so later policies and requests find it.
    Store(String, Bytes, Duration),
    /// `cache-remove-value`.
    Remove(String),
}

/// What [`plan`] made of a caching policy.
#[derive(Debug)]
pub enum Plan {
    /// It ran (internal tier, or nothing to do).
    Ready(Outcome),
    /// Its external operation, to await.
    External(Ext),
}

/// Runs `cache-lookup` or a value policy whose tier is internal (or none)
/// at once, as `Step::apply` does; for the external tier, evaluates what
/// the operation needs and leaves the operation to the pipeline.
/// (`cache-store` needs no plan: it stores in the background.)
pub fn plan(step: &Step, st: &mut State) -> Result<Plan, PolicyError> {
    let ty = match &step.policy {
        Policy::CacheLookup(p) => p.caching_type,
        Policy::CacheLookupValue(p) => p.caching_type,
        Policy::CacheStoreValue(p) => p.caching_type,
        Policy::CacheRemoveValue(p) => p.caching_type,
        _ => return step.apply(st).map(Plan::Ready),
    };
    if st.preflight || st.cache.tier(ty) != Some(Tier::External) {
        return step.apply(st).map(Plan::Ready);
    }
    let op = match &step.policy {
        Policy::CacheLookup(p) => p
            .begin(st)
            .map(|t| t.and_then(|_| st.cached.key.clone()).map(Ext::Lookup)),
        Policy::CacheLookupValue(p) => p
            .key
            .text(st)
            .map(|k| Some(Ext::LookupValue(value_key(&k)))),
        Policy::CacheStoreValue(p) => p.external(st),
        Policy::CacheRemoveValue(p) => p.key.text(st).map(|k| Some(Ext::Remove(value_key(&k)))),
        _ => Ok(None),
    };
    Ok(match op.map_err(|e| step.locate(e))? {
        Some(op) => Plan::External(op),
        None => Plan::Ready(Outcome::Continue),
    })
}

/// Performs `op` on the external tier: what a lookup found (a miss when
/// the tier fails or times out), `None` for the others.
pub async fn run(cache: &Cache, op: Ext) -> Option<(Cached, Duration)> {
    match op {
        Ext::Lookup(k) | Ext::LookupValue(k) => cache.fetch(&k).await,
        Ext::Store(k, bytes, ttl) => {
            cache.store(&k, bytes, ttl).await;
            None
        }
        Ext::Remove(k) => {
            cache.delete(&k).await;
            None
        }
    }
}

/// Ends a planned policy with what [`run`] found.
pub fn finish(
    step: &Step,
    st: &mut State,
    found: Option<(Cached, Duration)>,
) -> Result<Outcome, PolicyError> {
    let r = match &step.policy {
        Policy::CacheLookup(_) => Ok(answer(
            st,
            match found {
                Some((Cached::Response(r), left)) => Some((r, left)),
                _ => None,
            },
        )),
        Policy::CacheLookupValue(p) => p.answer(
            st,
            match found {
                Some((Cached::Value(v), _)) => Some(v),
                _ => None,
            },
        ),
        _ => Ok(Outcome::Continue),
    };
    r.map_err(|e| step.locate(e))
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use crate::expr::context::{ApiInfo, Url, UserInfo};

    fn state(url: &str) -> State {
        let mut st = test_state(Section::Inbound);
        st.cache = Arc::new(crate::policy::cache::Cache::new(1 << 20));
        st.ctx.request.method = "GET".into();
        st.ctx.request.original_url = Url::parse(url).unwrap();
        st.ctx.api = Some(std::sync::Arc::new(ApiInfo {
            id: "echo".into(),
            query_name: "subscription-key".into(),
            ..Default::default()
        }));
        st
    }

    fn lookup(doc: &Doc) -> &caching::CacheLookup {
        match &doc.section(Section::Inbound).unwrap()[0].policy {
            Policy::CacheLookup(l) => l,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn keys_vary_as_configured() {
        let doc = test_doc(r#"<policies><inbound><cache-lookup vary-by-developer="true" vary-by-developer-groups="false"><vary-by-header>Accept</vary-by-header><vary-by-query-parameter>page</vary-by-query-parameter></cache-lookup></inbound></policies>"#).unwrap();
        let l = lookup(&doc);
        let key = |url: &str, accept: Option<&str>, user: &str| {
            let mut st = state(url);
            if let Some(a) = accept {
                st.ctx.request.message.headers.set("accept", a.into());
            }
            if !user.is_empty() {
                st.ctx.user = Some(UserInfo {
                    id: user.into(),
                    ..Default::default()
                });
            }
            l.key(&st).unwrap()
        };
        let base = key("http://h/e/items?page=1", None, "");
        // Unlisted parameters and the subscription key do not count.
        assert_eq!(
            base,
            key(
                "http://h/e/items?other=2&page=1&subscription-key=k",
                None,
                ""
            )
        );
        assert_ne!(base, key("http://h/e/items?page=2", None, ""));
        assert_ne!(base, key("http://h/e/other?page=1", None, ""));
        assert_ne!(base, key("http://h/e/items?page=1", Some("text/xml"), ""));
        assert_ne!(
            key("http://h/e/items", Some("a"), ""),
            key("http://h/e/items", Some("b"), "")
        );
        assert_ne!(base, key("http://h/e/items?page=1", None, "u1"));
        assert_ne!(
            key("http://h/e/items", None, "u1"),
            key("http://h/e/items", None, "u2")
        );
    }

    #[test]
    fn groups_key_by_membership_or_else_by_user() {
        let doc = test_doc(r#"<policies><inbound><cache-lookup vary-by-developer="false" vary-by-developer-groups="true" /></inbound></policies>"#).unwrap();
        let l = lookup(&doc);
        let key = |user: &str, groups: &[&str]| {
            let mut st = state("http://h/e");
            st.ctx.user = Some(UserInfo {
                id: user.into(),
                groups: groups
                    .iter()
                    .map(|g| (g.to_string(), g.to_string()))
                    .collect(),
                ..Default::default()
            });
            l.key(&st).unwrap()
        };
        assert_eq!(
            key("a", &["developers", "gold"]),
            key("b", &["gold", "developers"])
        );
        assert_ne!(key("a", &["developers"]), key("b", &["gold"]));
        assert_ne!(key("a", &[]), key("b", &[]));
    }

    #[test]
    fn without_listed_parameters_the_whole_query_counts_in_any_order() {
        let doc = test_doc(r#"<policies><inbound><cache-lookup vary-by-developer="false" vary-by-developer-groups="false" /></inbound></policies>"#).unwrap();
        let l = lookup(&doc);
        let a = l.key(&state("http://h/e?a=1&b=2")).unwrap();
        assert_eq!(a, l.key(&state("http://h/e?b=2&a=1")).unwrap());
        assert_ne!(a, l.key(&state("http://h/e?a=1&b=3")).unwrap());
    }

    #[test]
    fn a_stored_response_is_found_and_answers() {
        let doc = test_doc(r#"<policies><inbound><cache-lookup vary-by-developer="false" vary-by-developer-groups="false" downstream-caching-type="public" /></inbound><outbound><cache-store duration="60" /></outbound></policies>"#).unwrap();
        assert!(doc.reads_response_body);
        let cache = Arc::new(crate::policy::cache::Cache::new(1 << 20));
        let mut st = state("http://h/e");
        st.cache = cache.clone();
        let o = run_plain(doc.section(Section::Inbound).unwrap(), &mut st).unwrap();
        assert_eq!(o, Outcome::Continue);
        st.section = Section::Outbound;
        st.response_mut().message.body = Some(bytes::Bytes::from_static(b"hi"));
        run_plain(doc.section(Section::Outbound).unwrap(), &mut st).unwrap();
        assert_eq!(
            st.ctx
                .response
                .as_ref()
                .unwrap()
                .message
                .headers
                .joined("cache-control"),
            Some("public, max-age=60, must-revalidate".into())
        );
        let mut again = state("http://h/e");
        again.cache = cache.clone();
        let o = run_plain(doc.section(Section::Inbound).unwrap(), &mut again).unwrap();
        assert_eq!(o, Outcome::Respond);
        assert!(again.cached.hit);
        let r = again.ctx.response.unwrap();
        assert_eq!(r.message.body.as_deref(), Some(&b"hi"[..]));
        // Not for POST, nor with Authorization (allow-private-response-caching is false).
        let mut post = state("http://h/e");
        post.cache = cache.clone();
        post.ctx.request.method = "POST".into();
        let o = run_plain(doc.section(Section::Inbound).unwrap(), &mut post).unwrap();
        assert_eq!(o, Outcome::Continue);
        let mut auth = state("http://h/e");
        auth.cache = cache;
        auth.ctx
            .request
            .message
            .headers
            .set("Authorization", "Bearer x".into());
        let o = run_plain(doc.section(Section::Inbound).unwrap(), &mut auth).unwrap();
        assert_eq!(o, Outcome::Continue);
        assert!(auth.cached.key.is_none());
    }

    #[test]
    fn no_store_and_errors_are_not_stored() {
        let doc = test_doc(r#"<policies><inbound><cache-lookup vary-by-developer="false" vary-by-developer-groups="false" /></inbound><outbound><cache-store duration="60" /></outbound></policies>"#).unwrap();
        let run = |status: u16, control: Option<&str>| {
            let cache = Arc::new(crate::policy::cache::Cache::new(1 << 20));
            let mut st = state("http://h/e");
            st.cache = cache.clone();
            run_plain(doc.section(Section::Inbound).unwrap(), &mut st).unwrap();
            st.section = Section::Outbound;
            let r = st.response_mut();
            r.status = status;
            if let Some(c) = control {
                r.message.headers.set("Cache-Control", c.into());
            }
            run_plain(doc.section(Section::Outbound).unwrap(), &mut st).unwrap();
            cache.len()
        };
        assert_eq!(run(200, None), 1);
        assert_eq!(run(404, None), 0);
        assert_eq!(run(200, Some("no-store")), 0);
        assert_eq!(run(200, Some("private, max-age=5")), 0);
        assert_eq!(run(200, Some("public, max-age=5")), 1);
    }

    #[test]
    fn cache_response_and_downstream_options() {
        let doc = test_doc(r#"<policies><inbound><cache-lookup vary-by-developer="false" vary-by-developer-groups="false" downstream-caching-type="private" must-revalidate="false" /></inbound><outbound><cache-store duration="@(5 * 2)" cache-response="@(context.Response.StatusCode == 404)" /></outbound></policies>"#).unwrap();
        let mut st = state("http://h/e");
        let cache = st.cache.clone();
        run_plain(doc.section(Section::Inbound).unwrap(), &mut st).unwrap();
        st.section = Section::Outbound;
        st.response_mut().status = 404;
        run_plain(doc.section(Section::Outbound).unwrap(), &mut st).unwrap();
        assert_eq!(cache.len(), 1);
        assert_eq!(
            st.ctx
                .response
                .as_ref()
                .unwrap()
                .message
                .headers
                .joined("cache-control"),
            Some("private, max-age=10".into())
        );
        let mut again = state("http://h/e");
        again.cache = cache;
        let o = run_plain(doc.section(Section::Inbound).unwrap(), &mut again).unwrap();
        assert_eq!(o, Outcome::Respond);
        assert_eq!(again.ctx.response.as_ref().unwrap().status, 404);
    }

    #[test]
    fn values_round_trip() {
        let doc = test_doc(r#"<policies><inbound><cache-store-value key="@("k-" + "1")" value="@(41 + 1)" duration="30" /><cache-lookup-value key="k-1" variable-name="v" /><cache-remove-value key="k-1" /><cache-lookup-value key="k-1" variable-name="w" default-value="none" /><cache-lookup-value key="k-1" variable-name="x" /></inbound></policies>"#).unwrap();
        let mut st = test_state(Section::Inbound);
        st.cache = Arc::new(crate::policy::cache::Cache::new(1 << 20));
        run_plain(doc.section(Section::Inbound).unwrap(), &mut st).unwrap();
        assert!(matches!(st.ctx.variables["v"], Value::Int(42)));
        assert!(matches!(&st.ctx.variables["w"], Value::Str(s) if &**s == "none"));
        assert!(!st.ctx.variables.contains_key("x"));
    }

    #[test]
    fn external_without_an_external_cache_skips() {
        let doc = test_doc(r#"<policies><inbound><cache-store-value key="k" value="v" duration="30" caching-type="external" /><cache-lookup-value key="k" variable-name="v" caching-type="internal" /></inbound></policies>"#).unwrap();
        let mut st = test_state(Section::Inbound);
        st.cache = Arc::new(crate::policy::cache::Cache::new(1 << 20));
        run_plain(doc.section(Section::Inbound).unwrap(), &mut st).unwrap();
        assert!(!st.ctx.variables.contains_key("v"));
    }

    /// An in-memory external store (what Redis is to the gateway).
    #[derive(Debug, Default)]
    struct Mem(std::sync::Mutex<std::collections::HashMap<String, bytes::Bytes>>);

    impl crate::policy::cache::External for Mem {
        fn get<'a>(
            &'a self,
            key: &'a str,
        ) -> crate::policy::cache::ExternalFuture<'a, Option<bytes::Bytes>> {
            let v = self.0.lock().unwrap().get(key).cloned();
            Box::pin(async move { v })
        }
        fn set<'a>(
            &'a self,
            key: &'a str,
            value: bytes::Bytes,
            _ttl: std::time::Duration,
        ) -> crate::policy::cache::ExternalFuture<'a, ()> {
            self.0.lock().unwrap().insert(key.to_string(), value);
            Box::pin(async {})
        }
        fn del<'a>(&'a self, key: &'a str) -> crate::policy::cache::ExternalFuture<'a, ()> {
            self.0.lock().unwrap().remove(key);
            Box::pin(async {})
        }
    }

    /// Runs `steps` as the pipeline does with an external tier.
    fn run_external(steps: &[Step], st: &mut State) -> Outcome {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        for step in steps {
            let o = match caching::plan(step, st).unwrap() {
                caching::Plan::Ready(o) => o,
                caching::Plan::External(op) => {
                    let cache = st.cache.clone();
                    let found = rt.block_on(caching::run(&cache, op));
                    caching::finish(step, st, found).unwrap()
                }
            };
            if o == Outcome::Respond {
                return o;
            }
        }
        Outcome::Continue
    }

    #[test]
    fn the_external_tier_is_shared_and_internal_is_not() {
        let mem: Arc<Mem> = Arc::default();
        let cache = || {
            let mut c = crate::policy::cache::Cache::new(1 << 20);
            c.external = Some(mem.clone());
            Arc::new(c)
        };
        let (a, b) = (cache(), cache());
        let doc = test_doc(r#"<policies><inbound><cache-store-value key="k" value="@(new JObject(new JProperty(&quot;n&quot;, 7)))" duration="30" /><cache-store-value key="i" value="local" duration="30" caching-type="internal" /><cache-lookup-value key="k" variable-name="v" /><cache-lookup-value key="i" variable-name="w" default-value="none" caching-type="internal" /></inbound></policies>"#).unwrap();
        let steps = doc.section(Section::Inbound).unwrap();
        let mut sa = test_state(Section::Inbound);
        sa.cache = a.clone();
        run_external(steps, &mut sa);
        assert!(matches!(&sa.ctx.variables["w"], Value::Str(s) if &**s == "local"));
        // b finds the external value (a JSON object again), not a's internal one.
        let lookups = &steps[2..];
        let mut sb = test_state(Section::Inbound);
        sb.cache = b.clone();
        run_external(lookups, &mut sb);
        assert_eq!(
            sb.ctx.variables["v"].to_display().replace([' ', '\n'], ""),
            r#"{"n":7}"#
        );
        assert!(matches!(&sb.ctx.variables["w"], Value::Str(s) if &**s == "none"));
        // A response looked up on b after a stored it (directly, as the
        // background store would).
        let doc = test_doc(r#"<policies><inbound><cache-lookup vary-by-developer="false" vary-by-developer-groups="false" /></inbound></policies>"#).unwrap();
        let inbound = doc.section(Section::Inbound).unwrap();
        let mut miss = state("http://h/e");
        miss.cache = a.clone();
        assert_eq!(run_external(inbound, &mut miss), Outcome::Continue);
        let key = miss.cached.key.clone().unwrap();
        assert_eq!(miss.cached.tier, Some(crate::policy::cache::Tier::External));
        let entry = crate::policy::cache::Cache::external_entry(
            &key,
            &crate::policy::cache::Cached::Response(crate::policy::cache::CachedResponse {
                status: 200,
                reason: "OK".into(),
                headers: vec![],
                body: bytes::Bytes::from_static(b"shared"),
            }),
            std::time::Duration::from_secs(30),
        )
        .unwrap();
        mem.0.lock().unwrap().insert(key, entry);
        let mut hit = state("http://h/e");
        hit.cache = b.clone();
        assert_eq!(run_external(inbound, &mut hit), Outcome::Respond);
        assert!(hit.cached.hit);
        assert_eq!(
            hit.ctx.response.unwrap().message.body.as_deref(),
            Some(&b"shared"[..])
        );
        // Corrupt bytes are a miss.
        for v in mem.0.lock().unwrap().values_mut() {
            *v = bytes::Bytes::from_static(b"\x01garbage");
        }
        let mut again = state("http://h/e");
        again.cache = b;
        assert_eq!(run_external(inbound, &mut again), Outcome::Continue);
        assert!(!again.cached.hit);
    }

    #[test]
    fn placement_and_required_attributes() {
        let e = test_doc(r#"<policies><outbound><cache-lookup vary-by-developer="false" vary-by-developer-groups="false" /></outbound></policies>"#).unwrap_err();
        assert!(e[0].message.contains("not allowed in <outbound>"), "{e:?}");
        let e = test_doc(r#"<policies><inbound><cache-store duration="5" /></inbound></policies>"#)
            .unwrap_err();
        assert!(e[0].message.contains("not allowed in <inbound>"), "{e:?}");
        let e = test_doc(
            r#"<policies><inbound><cache-store-value key="k" value="v" /></inbound></policies>"#,
        )
        .unwrap_err();
        assert!(e[0].message.contains("needs duration"), "{e:?}");
    }
}
