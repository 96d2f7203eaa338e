//! `<validate-client-certificate>`: refuses requests whose TLS client
//! certificate does not pass the configured checks (apim.md §3.2), and the
//! trust store behind it and behind `context.Request.Certificate.Verify()`.
//!
//! Owns: [`Trust`], built once per snapshot from the stored certificates
//! (every `isCa` certificate is a trust anchor, their CRLs parsed, every
//! certificate's leaf by id for `issuer-certificate-id`); the policy
//! ([`ValidateClientCertificate`]: `validate-trust`, `validate-not-before`,
//! `validate-not-after`, `validate-revocation`, `ignore-error`, up to 10
//! `<identity>` elements, each matching when all of its attributes match);
//! and [`request_certificate`], the `context.Request.Certificate` the
//! gateway builds from the certificate the HTTPS listener saw.
//!
//! Chains, validity and revocation are checked with rustls-webpki (ring
//! algorithms, client-auth usage); a chain's verdict is reused for 60 s
//! within a snapshot (the leaf's dates are checked every time). Revocation is checked against the CRLs
//! stored with CA certificates (`crl`); a certificate whose issuer has no
//! CRL configured passes (the gateway fetches nothing online). A failure
//! is a 401 "Invalid client certificate." whose `context.LastError.Reason`
//! names the check; `ignore-error="true"` lets the request through.
//! Section: inbound.

use super::{Compiler, Outcome, PolicyError, Section, State};
use crate::expr::context::{CertVerifier, Certificate as CtxCertificate};
use crate::expr::time::DateTime;
use crate::model::{Certificate, PeerCert};
use crate::policy::xml::Element;
use rustls::pki_types::{CertificateDer, SignatureVerificationAlgorithm, TrustAnchor, UnixTime};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The sections this policy may appear in.
pub const SECTIONS: &[Section] = &[Section::Inbound];

/// The status of a failed validation (APIM answers 401).
pub const STATUS: u16 = 401;

/// The message of a failed validation.
pub const MESSAGE: &str = "Invalid client certificate.";

/// Signature algorithms accepted in client certificate chains (ring).
static ALGS: &[&dyn SignatureVerificationAlgorithm] = &[
    webpki::ring::ECDSA_P256_SHA256,
    webpki::ring::ECDSA_P256_SHA384,
    webpki::ring::ECDSA_P384_SHA256,
    webpki::ring::ECDSA_P384_SHA384,
    webpki::ring::ED25519,
    webpki::ring::RSA_PKCS1_2048_8192_SHA256,
    webpki::ring::RSA_PKCS1_2048_8192_SHA384,
    webpki::ring::RSA_PKCS1_2048_8192_SHA512,
    webpki::ring::RSA_PKCS1_2048_8192_SHA256_ABSENT_PARAMS,
    webpki::ring::RSA_PKCS1_2048_8192_SHA384_ABSENT_PARAMS,
    webpki::ring::RSA_PKCS1_2048_8192_SHA512_ABSENT_PARAMS,
    webpki::ring::RSA_PKCS1_3072_8192_SHA384,
    webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
    webpki::ring::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
    webpki::ring::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
];

/// A stored certificate as an issuer candidate.
struct Issuer {
    thumbprint: String,
    anchor: TrustAnchor<'static>,
}

/// The stored certificates prepared for client-certificate validation,
/// once per snapshot.
#[derive(Default)]
pub struct Trust {
    /// Every certificate of every `isCa` upload.
    anchors: Vec<TrustAnchor<'static>>,
    /// Their thumbprints, in the same order.
    anchor_thumbprints: Vec<String>,
    crls: Vec<webpki::CertRevocationList<'static>>,
    /// Every stored certificate's first certificate, by id.
    by_id: HashMap<String, Arc<Issuer>>,
    /// Chain verdicts already reached in this snapshot.
    verdicts: Verdicts,
}

/// How long a chain verdict is reused. The leaf's own dates are checked
/// on every request; this bounds how late an intermediate's expiry is
/// noticed.
const VERDICT_TTL: Duration = Duration::from_secs(60);

/// Chain verdicts by (leaf thumbprint, hash of the intermediates the
/// client sent, revocation checked): a certificate seen again (every
/// request on a kept-alive or HTTP/2 connection, every reconnect of the
/// same client) skips the signature checks. Dropped with the snapshot, so
/// a configuration change (new CA, new CRL) is judged afresh.
struct Verdicts(moka::sync::Cache<(String, u64, bool), Verdict>);

impl Default for Verdicts {
    fn default() -> Self {
        Verdicts(
            moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(VERDICT_TTL)
                .build(),
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Verdict {
    Trusted,
    Revoked,
    Untrusted,
}

impl Verdict {
    fn of(r: Result<(), webpki::Error>) -> Verdict {
        match r {
            Ok(()) => Verdict::Trusted,
            Err(webpki::Error::CertRevoked) => Verdict::Revoked,
            Err(_) => Verdict::Untrusted,
        }
    }
}

/// A hash of the intermediates a client sent (they may differ between
/// clients presenting the same leaf).
fn intermediates_hash(peer: &PeerCert) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for c in peer.chain.iter().skip(1) {
        c.as_ref().hash(&mut h);
    }
    h.finish()
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trust")
            .field("anchors", &self.anchors.len())
            .field("crls", &self.crls.len())
            .field("certificates", &self.by_id.len())
            .finish()
    }
}

/// The first CERTIFICATE section of a PEM text.
fn first_cert(pem: &str) -> Option<CertificateDer<'static>> {
    let mut rd = pem.as_bytes();
    loop {
        match rustls::pki_types::pem::from_buf(&mut rd) {
            Ok(Some((rustls::pki_types::pem::SectionKind::Certificate, der))) => {
                return Some(CertificateDer::from(der))
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return None,
        }
    }
}

fn anchor(der: &CertificateDer<'_>) -> Option<TrustAnchor<'static>> {
    webpki::anchor_from_trusted_cert(der)
        .ok()
        .map(|a| a.to_owned())
}

impl Trust {
    /// Prepares the stored certificates (those that do not parse are
    /// skipped: the catalog's own checks report them).
    pub fn new<'a>(certs: impl IntoIterator<Item = (&'a String, &'a Certificate)>) -> Trust {
        let mut t = Trust::default();
        for (id, c) in certs {
            if c.is_ca {
                let chain = c.ca_certs();
                for der in &chain {
                    if let Some(a) = anchor(der) {
                        t.anchors.push(a);
                        t.anchor_thumbprints
                            .push(crate::model::thumbprint(der.as_ref()));
                    }
                }
                if let Some(crl) = c.revocation_list() {
                    t.crls.push(crl.into());
                }
            }
            let first = first_cert(c.pem.expose());
            if let Some((der, a)) = first.and_then(|d| anchor(&d).map(|a| (d, a))) {
                t.by_id.insert(
                    id.clone(),
                    Arc::new(Issuer {
                        thumbprint: crate::model::thumbprint(der.as_ref()),
                        anchor: a,
                    }),
                );
            }
        }
        t
    }

    /// Whether a stored certificate has this id.
    pub fn has(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    /// [`Trust::chain`], reusing a verdict reached in the last
    /// [`VERDICT_TTL`] for the same chain.
    fn verdict(&self, peer: &PeerCert, time: UnixTime, revocation: bool) -> Verdict {
        let key = (
            peer.thumbprint.clone(),
            intermediates_hash(peer),
            revocation,
        );
        if let Some(v) = self.verdicts.0.get(&key) {
            return v;
        }
        let v = Verdict::of(self.chain(peer, time, revocation));
        self.verdicts.0.insert(key, v);
        v
    }

    /// Checks `peer`'s chain against the stored CA certificates at `time`:
    /// `Ok` when it chains to one (and, with `revocation`, no configured
    /// CRL revokes a certificate of the chain).
    fn chain(
        &self,
        peer: &PeerCert,
        time: UnixTime,
        revocation: bool,
    ) -> Result<(), webpki::Error> {
        let Some(leaf) = peer.chain.first() else {
            return Err(webpki::Error::BadDer);
        };
        let ee = webpki::EndEntityCert::try_from(leaf)?;
        let crls: Vec<&webpki::CertRevocationList<'_>> = self.crls.iter().collect();
        let options = if revocation {
            webpki::RevocationOptionsBuilder::new(&crls).ok().map(|b| {
                b.with_status_policy(webpki::UnknownStatusPolicy::Allow)
                    .build()
            })
        } else {
            None
        };
        ee.verify_for_usage(
            ALGS,
            &self.anchors,
            &peer.chain[1..],
            time,
            webpki::KeyUsage::client_auth(),
            options,
            None,
        )
        .map(|_| ())
    }
}

/// Whether `issuer` issued `peer`'s leaf (its signature checks out).
fn issued_by(peer: &PeerCert, issuer: &TrustAnchor<'_>, time: UnixTime) -> bool {
    let Some(leaf) = peer.chain.first() else {
        return false;
    };
    let Ok(ee) = webpki::EndEntityCert::try_from(leaf) else {
        return false;
    };
    ee.verify_for_usage(
        ALGS,
        std::slice::from_ref(issuer),
        &[],
        time,
        webpki::KeyUsage::client_auth(),
        None,
        None,
    )
    .is_ok()
}

/// An RFC 3339 `…Z` time as seconds since the Unix epoch.
fn unix_seconds(rfc3339: &str) -> Option<i64> {
    let (d, _) = DateTime::parse(rfc3339)?;
    Some(d.unix_millis().div_euclid(1000))
}

fn unix_time(secs: i64) -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(secs.max(0) as u64))
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The leaf's validity period as Unix seconds.
fn validity(peer: &PeerCert) -> (Option<i64>, Option<i64>) {
    (
        unix_seconds(&peer.info.not_before),
        unix_seconds(&peer.info.not_after),
    )
}

/// `now` moved into the leaf's validity period: chain checks at this time
/// judge trust apart from the leaf's own dates (checked separately).
fn within_validity(peer: &PeerCert, now: i64) -> i64 {
    let (nb, na) = validity(peer);
    let mut t = now;
    if let Some(na) = na {
        t = t.min(na);
    }
    if let Some(nb) = nb {
        t = t.max(nb);
    }
    t
}

/// `Verify()` / `VerifyNoRevocation()` of `context.Request.Certificate`.
#[derive(Debug)]
struct Verifier {
    peer: Arc<PeerCert>,
    trust: Arc<Trust>,
}

impl CertVerifier for Verifier {
    fn verify(&self, revocation: bool) -> bool {
        let now = now_secs();
        let (nb, na) = validity(&self.peer);
        if nb.is_none_or(|nb| now < nb) || na.is_none_or(|na| now > na) {
            return false;
        }
        self.trust.verdict(
            &self.peer,
            unix_time(within_validity(&self.peer, now)),
            revocation,
        ) == Verdict::Trusted
    }
}

/// `context.Request.Certificate` for the certificate a client presented.
pub fn request_certificate(peer: &Arc<PeerCert>, trust: &Arc<Trust>) -> CtxCertificate {
    let date = |s: &str| DateTime::parse(s).map(|(d, _)| d);
    CtxCertificate {
        subject: peer.info.subject.clone(),
        issuer: peer.info.issuer.clone(),
        thumbprint: peer.thumbprint.clone(),
        serial_number: peer.info.serial_number.clone(),
        not_before: date(&peer.info.not_before),
        not_after: date(&peer.info.not_after),
        verifier: Some(Arc::new(Verifier {
            peer: peer.clone(),
            trust: trust.clone(),
        })),
    }
}

/// Uppercase hex without separators (thumbprints, serial numbers).
fn hex_key(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, ':' | ' ' | '-'))
        .collect::<String>()
        .to_ascii_uppercase()
}

/// A serial number without leading zero digits.
fn serial_key(s: &str) -> String {
    let k = hex_key(s);
    let t = k.trim_start_matches('0');
    if t.is_empty() {
        "0".into()
    } else {
        t.to_string()
    }
}

/// A distinguished name compared loosely: RDNs trimmed, case ignored.
fn dn_key(s: &str) -> String {
    s.split(',')
        .map(|p| p.trim().to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(",")
}

/// One `<identity>`: every attribute given must match.
#[derive(Debug, Default)]
struct Identity {
    thumbprint: Option<String>,
    serial_number: Option<String>,
    common_name: Option<String>,
    subject: Option<String>,
    dns_name: Option<String>,
    issuer_subject: Option<String>,
    issuer_thumbprint: Option<String>,
    /// `issuer-certificate-id`, resolved when compiling (`None` inside:
    /// compiled without the catalog).
    issuer_certificate: Option<Option<Arc<Issuer>>>,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("thumbprint", &self.thumbprint)
            .finish_non_exhaustive()
    }
}

impl Identity {
    fn matches(&self, peer: &PeerCert, trust: &Trust, time: UnixTime) -> bool {
        let info = &peer.info;
        if let Some(t) = &self.thumbprint {
            if hex_key(t) != peer.thumbprint {
                return false;
            }
        }
        if let Some(s) = &self.serial_number {
            if serial_key(s) != serial_key(&info.serial_number) {
                return false;
            }
        }
        if let Some(cn) = &self.common_name {
            if !cn.eq_ignore_ascii_case(info.common_name()) {
                return false;
            }
        }
        if let Some(s) = &self.subject {
            if dn_key(s) != dn_key(&info.subject) {
                return false;
            }
        }
        if let Some(d) = &self.dns_name {
            if !info.dns_names.iter().any(|n| n.eq_ignore_ascii_case(d)) {
                return false;
            }
        }
        if let Some(s) = &self.issuer_subject {
            if dn_key(s) != dn_key(&info.issuer) {
                return false;
            }
        }
        if let Some(t) = &self.issuer_thumbprint {
            let want = hex_key(t);
            if !issuer_with_thumbprint(peer, trust, &want, time) {
                return false;
            }
        }
        match &self.issuer_certificate {
            Some(Some(issuer)) => issued_by(peer, &issuer.anchor, time),
            // Compiled without the catalog: nothing to match against.
            Some(None) => false,
            None => true,
        }
    }
}

/// Whether the leaf's issuer (a stored CA certificate or a certificate the
/// client sent with it) has the thumbprint `want`.
fn issuer_with_thumbprint(peer: &PeerCert, trust: &Trust, want: &str, time: UnixTime) -> bool {
    let stored = trust
        .anchor_thumbprints
        .iter()
        .zip(&trust.anchors)
        .any(|(t, a)| t == want && issued_by(peer, a, time));
    stored
        || peer.chain.iter().skip(1).any(|der| {
            crate::model::thumbprint(der.as_ref()) == want
                && anchor(der).is_some_and(|a| issued_by(peer, &a, time))
        })
}

/// Why a certificate failed: `context.LastError.Reason` and the detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Missing,
    NotYetValid,
    Expired,
    Untrusted,
    Revoked,
    NoIdentity,
}

impl Failure {
    pub fn reason(self) -> &'static str {
        match self {
            Failure::Missing => "ClientCertificateMissing",
            Failure::NotYetValid => "ClientCertificateNotYetValid",
            Failure::Expired => "ClientCertificateExpired",
            Failure::Untrusted => "ClientCertificateNotTrusted",
            Failure::Revoked => "ClientCertificateRevoked",
            Failure::NoIdentity => "ClientCertificateIdentityMismatch",
        }
    }

    fn detail(self) -> &'static str {
        match self {
            Failure::Missing => "No client certificate was presented.",
            Failure::NotYetValid => "The certificate is not valid yet (notBefore).",
            Failure::Expired => "The certificate has expired (notAfter).",
            Failure::Untrusted => "The certificate does not chain to a trusted CA certificate.",
            Failure::Revoked => "The certificate has been revoked.",
            Failure::NoIdentity => "The certificate matches none of the allowed identities.",
        }
    }
}

#[derive(Debug)]
pub struct ValidateClientCertificate {
    revocation: bool,
    trust_required: bool,
    not_before: bool,
    not_after: bool,
    ignore_error: bool,
    identities: Vec<Identity>,
    trust: Arc<Trust>,
}

/// Identity attributes, in the XSD's order.
const IDENTITY_ATTRS: &[&str] = &[
    "thumbprint",
    "serial-number",
    "common-name",
    "subject",
    "dns-name",
    "issuer-subject",
    "issuer-thumbprint",
    "issuer-certificate-id",
];

/// A literal attribute (APIM allows no expressions in this policy).
fn literal(cx: &mut Compiler, e: &Element, name: &str, ok: &mut bool) -> Option<String> {
    let v = cx.literal(e, name)?;
    let t = v.trim();
    if t.starts_with("@(") || t.starts_with("@{") {
        let at = e.attr(name).map_or(e.span.start, |a| a.value_span.start);
        cx.error(
            at,
            format!("<validate-client-certificate> does not allow expressions in '{name}'"),
        );
        *ok = false;
        return None;
    }
    if t.is_empty() {
        let at = e.attr(name).map_or(e.span.start, |a| a.value_span.start);
        cx.error(at, format!("'{name}' must not be empty"));
        *ok = false;
        return None;
    }
    Some(t.to_string())
}

impl ValidateClientCertificate {
    pub fn parse(cx: &mut Compiler, e: &Element) -> Option<ValidateClientCertificate> {
        let mut ok = true;
        for flag in [
            "validate-revocation",
            "validate-trust",
            "validate-not-before",
            "validate-not-after",
            "ignore-error",
        ] {
            if cx
                .literal(e, flag)
                .is_some_and(|v| v.trim().starts_with('@'))
            {
                let at = e.attr(flag).map_or(e.span.start, |a| a.value_span.start);
                cx.error(
                    at,
                    format!("<validate-client-certificate> does not allow expressions in '{flag}'"),
                );
                ok = false;
            }
        }
        let revocation = cx.flag(e, "validate-revocation", true);
        let trust_required = cx.flag(e, "validate-trust", true);
        let not_before = cx.flag(e, "validate-not-before", true);
        let not_after = cx.flag(e, "validate-not-after", true);
        let ignore_error = cx.flag(e, "ignore-error", false);
        let trust = cx.client_trust.clone();
        let mut identities = Vec::new();
        for c in e.elements() {
            if c.name != "identities" {
                cx.error(
                    c.span.start,
                    format!(
                        "<validate-client-certificate> has no <{}> element; expected <identities>",
                        c.name
                    ),
                );
                ok = false;
                continue;
            }
            for i in c.elements() {
                if i.name != "identity" {
                    cx.error(
                        i.span.start,
                        format!("<identities> holds <identity> elements, not <{}>", i.name),
                    );
                    ok = false;
                    continue;
                }
                if let Some(unknown) = i
                    .attrs
                    .iter()
                    .find(|a| !IDENTITY_ATTRS.contains(&a.name.as_str()))
                {
                    cx.error(
                        unknown.value_span.start,
                        format!(
                            "<identity> has no attribute '{}'; expected one of: {}",
                            unknown.name,
                            IDENTITY_ATTRS.join(", ")
                        ),
                    );
                    ok = false;
                    continue;
                }
                let mut id = Identity {
                    thumbprint: literal(cx, i, "thumbprint", &mut ok),
                    serial_number: literal(cx, i, "serial-number", &mut ok),
                    common_name: literal(cx, i, "common-name", &mut ok),
                    subject: literal(cx, i, "subject", &mut ok),
                    dns_name: literal(cx, i, "dns-name", &mut ok),
                    issuer_subject: literal(cx, i, "issuer-subject", &mut ok),
                    issuer_thumbprint: literal(cx, i, "issuer-thumbprint", &mut ok),
                    issuer_certificate: None,
                };
                if let Some(cid) = literal(cx, i, "issuer-certificate-id", &mut ok) {
                    let cid = crate::model::certificate_ref_id(&cid).to_string();
                    id.issuer_certificate = Some(match &trust {
                        Some(t) => match t.by_id.get(&cid) {
                            Some(issuer) => Some(issuer.clone()),
                            None => {
                                let at = i
                                    .attr("issuer-certificate-id")
                                    .map_or(i.span.start, |a| a.value_span.start);
                                cx.error(
                                    at,
                                    format!("certificate '{cid}' does not exist (create it at /mgmt/certificates/{cid})"),
                                );
                                ok = false;
                                None
                            }
                        },
                        None => None,
                    });
                }
                if i.attrs.is_empty() {
                    cx.error(
                        i.span.start,
                        "<identity> needs at least one attribute (thumbprint, serial-number, common-name, subject, dns-name, issuer-subject, issuer-thumbprint or issuer-certificate-id)".into(),
                    );
                    ok = false;
                }
                identities.push(id);
            }
            if identities.len() > 10 {
                cx.error(
                    c.span.start,
                    "<identities> holds at most 10 <identity> elements".into(),
                );
                ok = false;
            }
        }
        ok.then(|| ValidateClientCertificate {
            revocation,
            trust_required,
            not_before,
            not_after,
            ignore_error,
            identities,
            trust: trust.unwrap_or_default(),
        })
    }

    /// Checks `peer` (what the listener saw; `None`: no certificate) at
    /// `now` (Unix seconds).
    pub fn check(&self, peer: Option<&PeerCert>, now: i64) -> Result<(), Failure> {
        let Some(peer) = peer else {
            return Err(Failure::Missing);
        };
        let (nb, na) = validity(peer);
        if self.not_before && nb.is_none_or(|nb| now < nb) {
            return Err(Failure::NotYetValid);
        }
        if self.not_after && na.is_none_or(|na| now > na) {
            return Err(Failure::Expired);
        }
        let at = unix_time(within_validity(peer, now));
        if self.trust_required || self.revocation {
            match self.trust.verdict(peer, at, self.revocation) {
                Verdict::Trusted => {}
                Verdict::Revoked => return Err(Failure::Revoked),
                Verdict::Untrusted if self.trust_required => return Err(Failure::Untrusted),
                // Without validate-trust an unknown issuer leaves the
                // revocation status unknown: it passes.
                Verdict::Untrusted => {}
            }
        }
        if !self.identities.is_empty()
            && !self
                .identities
                .iter()
                .any(|i| i.matches(peer, &self.trust, at))
        {
            return Err(Failure::NoIdentity);
        }
        Ok(())
    }

    pub fn apply(&self, st: &mut State) -> Result<Outcome, PolicyError> {
        match self.check(st.peer_cert.as_deref(), now_secs()) {
            Ok(()) => Ok(Outcome::Continue),
            Err(_) if self.ignore_error => Ok(Outcome::Continue),
            Err(f) => Err(PolicyError::new(
                STATUS,
                f.reason(),
                format!("{MESSAGE} {}", f.detail()),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Secret;
    use rcgen::{
        BasicConstraints, CertificateParams, CertificateRevocationListParams, IsCa,
        Issuer as RcIssuer, KeyIdMethod, KeyPair, RevokedCertParams, SerialNumber,
    };

    struct Ca {
        pem: String,
        issuer: RcIssuer<'static, KeyPair>,
    }

    fn ca(name: &str) -> Ca {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, name);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = p.self_signed(&key).unwrap();
        Ca {
            pem: cert.pem(),
            issuer: RcIssuer::new(p, key),
        }
    }

    fn leaf(ca: &Ca, cn: &str, serial: u64, days: (i64, i64)) -> Arc<PeerCert> {
        let mut p = CertificateParams::new(vec![format!("{cn}.example")]).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        p.serial_number = Some(SerialNumber::from(serial));
        let now = time::OffsetDateTime::now_utc();
        p.not_before = now + time::Duration::days(days.0);
        p.not_after = now + time::Duration::days(days.1);
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &ca.issuer).unwrap();
        Arc::new(PeerCert::from_chain(&[cert.der().clone()]).unwrap())
    }

    fn trust(cas: &[(&str, &Ca, Option<String>)]) -> Arc<Trust> {
        let certs: Vec<(String, Certificate)> = cas
            .iter()
            .map(|(id, ca, crl)| {
                let mut c = Certificate {
                    pem: Secret::new(ca.pem.clone()),
                    is_ca: true,
                    crl: crl.clone(),
                    ..Certificate::default()
                };
                let mut d = Vec::new();
                c.normalize(&mut d);
                assert!(d.is_empty(), "{d:?}");
                (id.to_string(), c)
            })
            .collect();
        Arc::new(Trust::new(certs.iter().map(|(i, c)| (i, c))))
    }

    fn policy(xml: &str, trust: &Arc<Trust>) -> Result<ValidateClientCertificate, String> {
        let doc = format!("<policies><inbound>{xml}</inbound></policies>");
        let mut d = super::super::compile_document_trust(
            &doc,
            &|_| None,
            &|_| None,
            &|_| true,
            None,
            None,
            Some(trust.clone()),
        )
        .map_err(|e| format!("{e:?}"))?;
        let step = d.sections[0].take().unwrap().remove(0);
        match step.policy {
            super::super::Policy::ValidateClientCertificate(p) => Ok(p),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn checks_trust_dates_identities_and_revocation() {
        let good = ca("Good CA");
        let other = ca("Other CA");
        let t = trust(&[("ca", &good, None)]);
        let now = now_secs();
        let alice = leaf(&good, "alice", 0x1234, (-1, 30));
        let expired = leaf(&good, "old", 7, (-30, -1));
        let future = leaf(&good, "soon", 8, (2, 30));
        let stranger = leaf(&other, "mallory", 9, (-1, 30));

        let plain = policy(
            "<validate-client-certificate validate-revocation=\"false\"/>",
            &t,
        )
        .unwrap();
        assert_eq!(plain.check(Some(&alice), now), Ok(()));
        assert_eq!(plain.check(None, now), Err(Failure::Missing));
        assert_eq!(plain.check(Some(&expired), now), Err(Failure::Expired));
        assert_eq!(plain.check(Some(&future), now), Err(Failure::NotYetValid));
        assert_eq!(plain.check(Some(&stranger), now), Err(Failure::Untrusted));

        let lax = policy(
            "<validate-client-certificate validate-trust=\"false\" validate-not-after=\"false\" validate-revocation=\"false\"/>",
            &t,
        )
        .unwrap();
        assert_eq!(lax.check(Some(&stranger), now), Ok(()));
        assert_eq!(lax.check(Some(&expired), now), Ok(()));
        // Trust is judged apart from the leaf's own dates.
        let trust_only = policy(
            "<validate-client-certificate validate-not-after=\"false\"/>",
            &t,
        )
        .unwrap();
        assert_eq!(trust_only.check(Some(&expired), now), Ok(()));

        let ids = |x: &str| {
            policy(
                &format!("<validate-client-certificate><identities>{x}</identities></validate-client-certificate>"),
                &t,
            )
            .unwrap()
        };
        let ok = |x: &str| ids(x).check(Some(&alice), now);
        assert_eq!(
            ok(&format!(
                "<identity thumbprint=\"{}\"/>",
                alice.thumbprint.to_lowercase()
            )),
            Ok(())
        );
        assert_eq!(ok("<identity serial-number=\"1234\"/>"), Ok(()));
        assert_eq!(ok("<identity serial-number=\"00:12:34\"/>"), Ok(()));
        assert_eq!(ok("<identity common-name=\"alice\"/>"), Ok(()));
        assert_eq!(ok("<identity subject=\"CN=alice\"/>"), Ok(()));
        assert_eq!(ok("<identity dns-name=\"ALICE.example\"/>"), Ok(()));
        assert_eq!(ok("<identity issuer-subject=\"CN=Good CA\"/>"), Ok(()));
        assert_eq!(ok("<identity issuer-certificate-id=\"ca\"/>"), Ok(()));
        let ca_thumb = crate::model::thumbprint(first_cert(&good.pem).unwrap().as_ref());
        assert_eq!(
            ok(&format!("<identity issuer-thumbprint=\"{ca_thumb}\"/>")),
            Ok(())
        );
        // Every attribute of one identity must match; any identity may.
        assert_eq!(
            ok("<identity common-name=\"alice\" serial-number=\"99\"/>"),
            Err(Failure::NoIdentity)
        );
        assert_eq!(
            ok("<identity common-name=\"bob\"/><identity common-name=\"alice\"/>"),
            Ok(())
        );
        assert_eq!(
            ok("<identity dns-name=\"bob.example\"/>"),
            Err(Failure::NoIdentity)
        );

        // Revocation: a CRL of the good CA revoking serial 0x1234.
        let now_t = time::OffsetDateTime::now_utc();
        let crl = CertificateRevocationListParams {
            this_update: now_t - time::Duration::days(1),
            next_update: now_t + time::Duration::days(30),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: vec![RevokedCertParams {
                serial_number: SerialNumber::from(0x1234u64),
                revocation_time: now_t - time::Duration::hours(1),
                reason_code: None,
                invalidity_date: None,
            }],
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(&good.issuer)
        .unwrap();
        let t2 = trust(&[("ca", &good, Some(crl.pem().unwrap()))]);
        let strict = policy("<validate-client-certificate/>", &t2).unwrap();
        assert_eq!(strict.check(Some(&alice), now), Err(Failure::Revoked));
        let bob = leaf(&good, "bob", 0x99, (-1, 30));
        assert_eq!(strict.check(Some(&bob), now), Ok(()));
        let no_rev = policy(
            "<validate-client-certificate validate-revocation=\"false\"/>",
            &t2,
        )
        .unwrap();
        assert_eq!(no_rev.check(Some(&alice), now), Ok(()));

        // Verify() / VerifyNoRevocation().
        let v = |p: &Arc<PeerCert>, t: &Arc<Trust>, rev: bool| {
            request_certificate(p, t).verifier.unwrap().verify(rev)
        };
        assert!(v(&alice, &t, true));
        assert!(!v(&alice, &t2, true));
        assert!(v(&alice, &t2, false));
        assert!(!v(&expired, &t, true));
        assert!(!v(&stranger, &t, true));
    }

    #[test]
    fn refuses_bad_documents() {
        let good = ca("Good CA");
        let t = trust(&[("ca", &good, None)]);
        let err = |x: &str| policy(x, &t).unwrap_err();
        assert!(
            err("<validate-client-certificate validate-trust=\"maybe\"/>")
                .contains("true or false")
        );
        assert!(err("<validate-client-certificate><identities><identity issuer-certificate-id=\"nope\"/></identities></validate-client-certificate>").contains("does not exist"));
        assert!(err("<validate-client-certificate><identities><identity/></identities></validate-client-certificate>").contains("at least one attribute"));
        assert!(err("<validate-client-certificate><identities><identity color=\"red\"/></identities></validate-client-certificate>").contains("no attribute 'color'"));
        assert!(err("<validate-client-certificate><identities><identity thumbprint=\"@(context.Variables[&quot;t&quot;])\"/></identities></validate-client-certificate>").contains("expressions"));
        let many: String = (0..11)
            .map(|i| format!("<identity common-name=\"c{i}\"/>"))
            .collect();
        assert!(err(&format!("<validate-client-certificate><identities>{many}</identities></validate-client-certificate>")).contains("at most 10"));
    }

    #[test]
    fn expressions_read_the_certificate() {
        let good = ca("Good CA");
        let t = trust(&[("ca", &good, None)]);
        let alice = leaf(&good, "alice", 0xa11ce, (-1, 30));
        let mut ctx = crate::expr::Ctx::default();
        let ev = |ctx: &crate::expr::Ctx, src: &str| {
            let c = crate::expr::compile(src, 0).unwrap_or_else(|e| panic!("{src}: {e:?}"));
            match c.eval(ctx, crate::expr::Limits::default()) {
                Ok(v) => v.to_display(),
                Err(e) => format!("error {}", e.message),
            }
        };
        assert_eq!(ev(&ctx, "@(context.Request.Certificate == null)"), "True");
        assert_eq!(
            ev(
                &ctx,
                "@(context.Request.Certificate?.Thumbprint ?? \"none\")"
            ),
            "none"
        );
        ctx.request.certificate = Some(Arc::new(request_certificate(&alice, &t)));
        assert_eq!(
            ev(&ctx, "@(context.Request.Certificate.Subject)"),
            "CN=alice"
        );
        assert_eq!(
            ev(&ctx, "@(context.Request.Certificate.IssuerName.Name)"),
            "CN=Good CA"
        );
        assert_eq!(
            ev(&ctx, "@(context.Request.Certificate.SerialNumber)"),
            "0A11CE"
        );
        assert_eq!(
            ev(&ctx, "@(context.Request.Certificate.Thumbprint)"),
            alice.thumbprint
        );
        assert_eq!(
            ev(
                &ctx,
                "@(context.Request.Certificate.NotAfter > DateTime.UtcNow)"
            ),
            "True"
        );
        assert_eq!(ev(&ctx, "@(context.Request.Certificate.Verify())"), "True");
        assert_eq!(
            ev(&ctx, "@(context.Request.Certificate.VerifyNoRevocation())"),
            "True"
        );
        assert_eq!(
            ev(&ctx, "@{ X509Certificate2 c = context.Request.Certificate; return c.NotBefore < c.NotAfter; }"),
            "True"
        );
        // Members are checked when compiling.
        let err = crate::expr::compile("@(context.Request.Certificate.Subjekt)", 0).unwrap_err();
        assert!(err[0].message.contains("Subject"), "{err:?}");
        assert!(crate::expr::compile("@(context.Request.Certificate.Verify)", 0).is_err());
    }
}
