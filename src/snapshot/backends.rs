//! Backends compiled for the gateway: each backend's base URL, the
//! credentials it is called with (headers, query parameters, the
//! `Authorization` header, the client certificate of `certificateIds`),
//! its TLS checks (`tls.validateCertificateChain` / `Name`) and SNI
//! override (`tls.serverName`), its
//! circuit-breaker rules with durations parsed, and a pool's members with
//! their priority and weight. Also the stored certificates parsed for TLS
//! ([`client_certs`]), which `authentication-certificate` resolves against,
//! and the roots backend TLS trusts ([`Trust`]: webpki roots plus every
//! stored CA certificate, `isCa`).
//!
//! Compiled once per configuration change; the runtime state (breaker
//! counts, trips, round-robin cursors) is the gateway's, keyed by backend id
//! and the definition's `fingerprint`, so it survives configuration swaps
//! that leave a backend unchanged.

use crate::error::Detail;
use crate::expr::context::Url;
use crate::model::{duration::parse_iso8601, Backend, BackendType, Catalog, ClientCert};
use crate::policy::builtin::authentication_certificate::CertRef;
use http::{HeaderName, HeaderValue};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

/// One compiled backend.
#[derive(Debug)]
pub struct BackendDef {
    pub id: String,
    /// Changes whenever the stored definition changes (the gateway resets
    /// the backend's breaker and cursor then).
    pub fingerprint: u64,
    /// The base URL (`None` for a pool stored without one).
    pub url: Option<Url>,
    pub kind: Kind,
}

#[derive(Debug)]
pub enum Kind {
    Single(Single),
    /// Members sorted by priority (lowest number first).
    Pool(Vec<Member>),
}

/// What a single backend adds to each request, and when it trips.
#[derive(Debug, Default)]
pub struct Single {
    /// Set on the backend request (replacing what policies left).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Appended to the backend URL's query.
    pub query: Vec<(String, String)>,
    /// `{scheme} {parameter}`, marked sensitive.
    pub authorization: Option<HeaderValue>,
    pub breaker: Vec<BreakerRule>,
    /// The client certificate presented over TLS (`certificateIds[0]`).
    pub client_cert: Option<Arc<ClientCert>>,
    /// `tls.validateCertificateChain = false`.
    pub skip_chain_validation: bool,
    /// `tls.validateCertificateName = false`.
    pub skip_name_validation: bool,
    /// `tls.serverName`: SNI and the name checked, instead of the URL's host.
    pub server_name: Option<rustls::pki_types::ServerName<'static>>,
}

/// The roots backend TLS trusts: the webpki roots plus every stored CA
/// certificate. Built once per configuration; `id` is 0 when no CA
/// certificate is stored (the default client serves then) and otherwise
/// identifies the set (the gateway keys its TLS clients by it).
#[derive(Debug, Default)]
pub struct Trust {
    pub id: u64,
    pub roots: Option<Arc<rustls::RootCertStore>>,
}

/// The backend trust of `catalog`; a stored CA certificate that does not
/// parse or is not a usable trust anchor is a problem naming it.
pub fn trust(catalog: &Catalog, problems: &mut Vec<Detail>) -> Arc<Trust> {
    let mut extra = Vec::new();
    for (id, c) in catalog.certificates.iter().filter(|(_, c)| c.is_ca) {
        let certs = c.ca_certs();
        if certs.is_empty() {
            problems.push(Detail::new(
                format!("certificates/{id}"),
                "the stored CA certificate does not parse",
            ));
        }
        extra.extend(certs.into_iter().map(|d| (id, d)));
    }
    if extra.is_empty() {
        return Arc::new(Trust::default());
    }
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for (id, der) in extra {
        der.as_ref().hash(&mut h);
        if roots.add(der).is_err() {
            problems.push(Detail::new(
                format!("certificates/{id}"),
                "the CA certificate is not usable as a trust anchor",
            ));
        }
    }
    Arc::new(Trust {
        id: h.finish().max(1),
        roots: Some(Arc::new(roots)),
    })
}

/// A circuit-breaker rule.
#[derive(Debug, Clone)]
pub struct BreakerRule {
    pub name: String,
    pub count: Option<u32>,
    pub percentage: Option<u32>,
    pub interval: Duration,
    /// Inclusive status ranges that count as failures.
    pub ranges: Vec<(u16, u16)>,
    /// Gateway error reasons (`BackendConnectionFailure`, `Timeout`) that
    /// count as failures; empty: both do.
    pub error_reasons: Vec<String>,
    pub trip: Duration,
    pub accept_retry_after: bool,
}

impl BreakerRule {
    /// Whether a backend response status counts as a failure.
    pub fn status_fails(&self, status: u16) -> bool {
        self.ranges
            .iter()
            .any(|&(lo, hi)| lo <= status && status <= hi)
    }

    /// Whether a failure to get a response (by its reason) counts.
    pub fn error_fails(&self, reason: &str) -> bool {
        self.error_reasons.is_empty()
            || self
                .error_reasons
                .iter()
                .any(|r| r.eq_ignore_ascii_case(reason))
    }
}

/// A pool member.
#[derive(Debug, Clone)]
pub struct Member {
    pub id: String,
    pub priority: u32,
    pub weight: u32,
}

/// Backends by id.
pub type Backends = HashMap<String, Arc<BackendDef>>;

fn fingerprint(b: &Backend) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(b).unwrap_or_default().hash(&mut h);
    h.finish()
}

/// Stored certificates parsed for TLS, by id.
pub type ClientCerts = HashMap<String, Arc<ClientCert>>;

/// Parses every stored certificate; problems name `certificates/{id}`.
pub fn client_certs(catalog: &Catalog, problems: &mut Vec<Detail>) -> ClientCerts {
    let mut out = HashMap::new();
    for (id, c) in catalog.certificates.iter().filter(|(_, c)| !c.is_ca) {
        match c.client_cert() {
            Some(cert) => {
                out.insert(id.clone(), cert);
            }
            None => problems.push(Detail::new(
                format!("certificates/{id}"),
                "the stored certificate does not parse",
            )),
        }
    }
    out
}

/// A stored certificate by id, or by thumbprint (case and `:`/space
/// separators ignored).
pub fn find_cert(certs: &ClientCerts, r: CertRef<'_>) -> Option<Arc<ClientCert>> {
    match r {
        CertRef::Id(id) => certs.get(id).cloned(),
        CertRef::Thumbprint(t) => {
            let want: String = t
                .chars()
                .filter(|c| !matches!(c, ':' | ' '))
                .collect::<String>()
                .to_ascii_uppercase();
            certs.values().find(|c| c.thumbprint == want).cloned()
        }
    }
}

/// Compiles every backend; problems name `backends/{id}...`.
pub fn compile(catalog: &Catalog, certs: &ClientCerts, problems: &mut Vec<Detail>) -> Backends {
    let mut out = HashMap::new();
    for (id, b) in &catalog.backends {
        let url = if b.url.is_empty() {
            None
        } else {
            Url::parse(&b.url)
        };
        let kind = match b.kind {
            BackendType::Pool => {
                let mut members = Vec::new();
                for m in b.pool.iter().flat_map(|p| p.services.iter()) {
                    match catalog.backends.get(&m.id) {
                        Some(t) if t.kind == BackendType::Single && m.id != *id => {
                            members.push(Member {
                                id: m.id.clone(),
                                priority: m.priority.unwrap_or(1),
                                weight: m.weight.unwrap_or(1).max(1),
                            })
                        }
                        _ => problems.push(Detail::new(
                            format!("backends/{id}.pool"),
                            format!("member {:?} is not a single backend", m.id),
                        )),
                    }
                }
                if members.is_empty() {
                    problems.push(Detail::new(
                        format!("backends/{id}.pool"),
                        "a pool needs at least one member",
                    ));
                }
                members.sort_by_key(|m| m.priority);
                Kind::Pool(members)
            }
            BackendType::Single => Kind::Single(single(id, b, certs, problems)),
        };
        out.insert(
            id.clone(),
            Arc::new(BackendDef {
                id: id.clone(),
                fingerprint: fingerprint(b),
                url,
                kind,
            }),
        );
    }
    out
}

fn single(id: &str, b: &Backend, certs: &ClientCerts, problems: &mut Vec<Detail>) -> Single {
    let mut s = Single {
        skip_chain_validation: !b.tls.validate_certificate_chain,
        skip_name_validation: !b.tls.validate_certificate_name,
        ..Single::default()
    };
    if let Some(name) = b.tls.server_name.as_deref().filter(|n| !n.is_empty()) {
        match rustls::pki_types::ServerName::try_from(name.to_string()) {
            Ok(n) => s.server_name = Some(n),
            Err(_) => problems.push(Detail::new(
                format!("backends/{id}.tls.serverName"),
                format!("{name:?} is not a valid DNS name or IP address"),
            )),
        }
    }
    let c = &b.credentials;
    for (name, values) in &c.header {
        let Ok(n) = HeaderName::try_from(name.as_str()) else {
            problems.push(Detail::new(
                format!("backends/{id}.credentials.header"),
                format!("{name:?} is not a valid header name"),
            ));
            continue;
        };
        for v in values {
            match HeaderValue::try_from(v.as_str()) {
                Ok(mut v) => {
                    v.set_sensitive(true);
                    s.headers.push((n.clone(), v));
                }
                Err(_) => problems.push(Detail::new(
                    format!("backends/{id}.credentials.header.{name}"),
                    "a value is not a valid header value",
                )),
            }
        }
    }
    for (name, values) in &c.query {
        for v in values {
            s.query.push((name.clone(), v.clone()));
        }
    }
    if let Some(a) = &c.authorization {
        let text = if a.parameter.is_empty() {
            a.scheme.clone()
        } else {
            format!("{} {}", a.scheme, a.parameter.expose())
        };
        match HeaderValue::try_from(text) {
            Ok(mut v) => {
                v.set_sensitive(true);
                s.authorization = Some(v);
            }
            // Never echo the parameter: it is a credential.
            Err(_) => problems.push(Detail::new(
                format!("backends/{id}.credentials.authorization"),
                "scheme and parameter must be valid in a header",
            )),
        }
    }
    // The first certificate id is the client certificate.
    if let Some(cid) = c.certificate_ids.first() {
        match certs.get(crate::model::certificate_ref_id(cid)) {
            Some(cert) => s.client_cert = Some(cert.clone()),
            None => problems.push(Detail::new(
                format!("backends/{id}.credentials.certificateIds"),
                format!("certificate {cid:?} does not exist"),
            )),
        }
    }
    // A rule stored before its durations were checked is skipped, so an
    // older store still loads.
    for rule in b.circuit_breaker.iter().flat_map(|cb| cb.rules.iter()) {
        let fc = &rule.failure_condition;
        let interval = fc.interval.as_deref().and_then(parse_iso8601);
        let trip = rule.trip_duration.as_deref().and_then(parse_iso8601);
        let (Some(interval), Some(trip)) = (interval, trip) else {
            continue;
        };
        s.breaker.push(BreakerRule {
            name: rule.name.clone(),
            count: fc.count,
            percentage: fc.percentage,
            interval,
            ranges: fc
                .status_code_ranges
                .iter()
                .map(|r| (r.min, r.max))
                .collect(),
            error_reasons: fc.error_reasons.clone(),
            trip,
            accept_retry_after: rule.accept_retry_after,
        });
    }
    s
}
