//! The certificate resource (`/mgmt/certificates/{id}`): a certificate
//! chain with its private key, presented as a client certificate to
//! backends (`credentials.certificateIds`, `authentication-certificate`).
//!
//! Owns: the [`Certificate`] type (written as `{"pem": ...}`, read back as
//! metadata only: `subject`, `issuer`, `thumbprint`, `expirationDate`,
//! `hasPrivateKey`), PEM parsing and validation ([`parse_pem`]: at least
//! one certificate, exactly one PKCS#8 / PKCS#1 / SEC1 private key that
//! matches the leaf, checked with rustls' `ring` provider), the metadata
//! read from the leaf with a small DER walk ([`LeafInfo`]), and
//! [`ClientCert`], the parsed chain and key the gateway's TLS clients use.
//! A certificate with `isCa: true` is a trust anchor: PEM certificates
//! only, no key ([`parse_ca_pem`]). [`PeerCert`] is a client certificate
//! presented on the gateway's HTTPS listener.
//! The PEM (with the key) is a secret: never in GET bodies, logs or error
//! messages. PKCS#12 uploads (`data` + `password`) are turned into that PEM
//! on write (`model::pkcs12`); `expiresInDays` is computed at read time
//! ([`days_until`]).

use crate::error::{Detail, Secret};
use rustls::pki_types::pem::SectionKind;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A stored certificate (`/mgmt/certificates/{id}`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Certificate {
    /// The certificate chain (leaf first) and the private key, as PEM.
    /// Secret: never shown by GET.
    #[serde(default)]
    pub pem: Secret,
    /// A PKCS#12 (PFX) archive, base64: decoded on write into `pem`, then
    /// dropped with its password (never stored, never shown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// Read-only, computed from the leaf on write.
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub issuer: String,
    /// SHA-1 of the leaf's DER, uppercase hex (as APIM shows it).
    #[serde(default)]
    pub thumbprint: String,
    /// The leaf's `notAfter`, RFC 3339.
    #[serde(default)]
    pub expiration_date: String,
    #[serde(default)]
    pub has_private_key: bool,
    /// A CA certificate: PEM certificates only (no key), used as a trust
    /// anchor (client-certificate validation, backend TLS).
    #[serde(default)]
    pub is_ca: bool,
}

impl Certificate {
    /// Checks the PUT body and fills in the metadata from the PEM.
    pub fn normalize(&mut self, details: &mut Vec<Detail>) {
        if !self.take_pkcs12(details) {
            return;
        }
        if self.is_ca {
            match parse_ca_pem(self.pem.expose()) {
                Ok(chain) => {
                    let info = leaf_info(chain[0].as_ref());
                    let info = info.unwrap_or_default();
                    self.subject = info.subject;
                    self.issuer = info.issuer;
                    self.thumbprint = thumbprint(chain[0].as_ref());
                    self.expiration_date = info.not_after;
                    self.has_private_key = false;
                }
                Err(d) => details.extend(d),
            }
            return;
        }
        match parse_pem(self.pem.expose()) {
            Ok(c) => {
                self.subject = c.info.subject.clone();
                self.issuer = c.info.issuer.clone();
                self.thumbprint = c.thumbprint.clone();
                self.expiration_date = c.info.not_after.clone();
                self.has_private_key = true;
            }
            Err(d) => details.extend(d),
        }
    }

    /// A PKCS#12 upload (`data` + `password`) decoded into `pem`; the data
    /// and password are dropped. `false` (with details) when it is refused.
    fn take_pkcs12(&mut self, details: &mut Vec<Detail>) -> bool {
        let data = self.data.take();
        let password = self.password.take();
        let Some(data) = data else {
            if password.is_some() {
                details.push(Detail::new(
                    "password",
                    "is only used with \"data\" (a PKCS#12 file)",
                ));
                return false;
            }
            return true;
        };
        if !self.pem.is_empty() {
            details.push(Detail::new(
                "data",
                "send either \"pem\" or \"data\" (PKCS#12), not both",
            ));
            return false;
        }
        let password = password.as_ref().map_or("", Secret::expose);
        match super::pkcs12::to_pem(data.expose(), password, self.is_ca) {
            Ok(pem) => {
                self.pem = Secret::new(pem);
                true
            }
            Err(d) => {
                details.extend(d);
                false
            }
        }
    }

    /// Whole days from `now` (Unix seconds) until the leaf's `notAfter`
    /// (negative once expired); `None` when the date is unreadable.
    pub fn expires_in_days(&self, now: u64) -> Option<i64> {
        let now = i64::try_from(now).unwrap_or(i64::MAX);
        days_until(&self.expiration_date, now)
    }

    /// The parsed chain and key (`None` if the stored PEM does not parse
    /// or is a CA certificate without a key).
    pub fn client_cert(&self) -> Option<Arc<ClientCert>> {
        if self.is_ca {
            return None;
        }
        parse_pem(self.pem.expose()).ok().map(Arc::new)
    }

    /// A CA certificate's certificates (empty for other certificates or
    /// when the stored PEM does not parse).
    pub fn ca_certs(&self) -> Vec<CertificateDer<'static>> {
        if !self.is_ca {
            return Vec::new();
        }
        parse_ca_pem(self.pem.expose()).unwrap_or_default()
    }
}

/// A client certificate presented on the gateway's HTTPS listener (the
/// listener puts an `Arc<PeerCert>` in the request's extensions). Not
/// verified: that is for the policies to decide.
#[derive(Debug, Clone)]
pub struct PeerCert {
    /// SHA-1 of the leaf's DER, uppercase hex.
    pub thumbprint: String,
    pub info: LeafInfo,
    /// As presented, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
}

impl PeerCert {
    /// `None` when the chain is empty or its leaf is not a readable X.509
    /// certificate.
    pub fn from_chain(chain: &[CertificateDer<'_>]) -> Option<PeerCert> {
        let leaf = chain.first()?;
        Some(PeerCert {
            thumbprint: thumbprint(leaf.as_ref()),
            info: leaf_info(leaf.as_ref())?,
            chain: chain.iter().map(|c| c.clone().into_owned()).collect(),
        })
    }
}

/// SHA-1 of a DER certificate, uppercase hex (as APIM shows thumbprints).
pub fn thumbprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, der);
    digest.as_ref().iter().map(|b| format!("{b:02X}")).collect()
}

/// Parses a CA certificate upload: one or more PEM certificates, no
/// private key. Errors never quote the input.
pub fn parse_ca_pem(pem: &str) -> Result<Vec<CertificateDer<'static>>, Vec<Detail>> {
    let bad = |m: &str| vec![Detail::new("pem", m)];
    if pem.trim().is_empty() {
        return Err(bad("is required: the CA certificate(s), as PEM"));
    }
    let mut chain = Vec::new();
    let mut rd = pem.as_bytes();
    loop {
        match rustls::pki_types::pem::from_buf(&mut rd) {
            Ok(None) => break,
            Ok(Some((SectionKind::Certificate, der))) => chain.push(CertificateDer::from(der)),
            Ok(Some((
                SectionKind::PrivateKey | SectionKind::RsaPrivateKey | SectionKind::EcPrivateKey,
                _,
            ))) => {
                return Err(bad(
                    "holds a private key: a CA certificate (isCa) is uploaded without its key",
                ))
            }
            Ok(Some(_)) => {}
            Err(_) => {
                return Err(bad(
                    "is not valid PEM (a section is malformed or not base64)",
                ))
            }
        }
    }
    if chain.is_empty() {
        return Err(bad("holds no CERTIFICATE section"));
    }
    if chain.iter().any(|c| leaf_info(c.as_ref()).is_none()) {
        return Err(bad(
            "holds a certificate that is not a valid X.509 certificate",
        ));
    }
    Ok(chain)
}

/// The certificate id a backend's `certificateIds` entry names: the id
/// itself or a resource path ending in `/certificates/{id}`.
pub fn certificate_ref_id(entry: &str) -> &str {
    match entry.rsplit_once("/certificates/") {
        Some((_, id)) => id,
        None => entry,
    }
}

/// A parsed certificate chain and its private key, ready for TLS.
pub struct ClientCert {
    /// Identifies the certificate (the TLS clients are keyed by it).
    pub thumbprint: String,
    pub info: LeafInfo,
    /// Leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for ClientCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("ClientCert")
            .field("thumbprint", &self.thumbprint)
            .field("subject", &self.info.subject)
            .finish_non_exhaustive()
    }
}

/// What GET shows of a leaf certificate.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LeafInfo {
    pub subject: String,
    pub issuer: String,
    pub not_after: String,
}

/// Parses a PEM chain + key. Errors never quote the input.
pub fn parse_pem(pem: &str) -> Result<ClientCert, Vec<Detail>> {
    let bad = |m: &str| vec![Detail::new("pem", m)];
    if pem.trim().is_empty() {
        return Err(bad(
            "is required: the certificate chain (leaf first) and its private key, as PEM",
        ));
    }
    let mut chain = Vec::new();
    let mut keys = Vec::new();
    let mut rd = pem.as_bytes();
    loop {
        match rustls::pki_types::pem::from_buf(&mut rd) {
            Ok(None) => break,
            Ok(Some((kind, der))) => match kind {
                SectionKind::Certificate => chain.push(CertificateDer::from(der)),
                SectionKind::PrivateKey => keys.push(PrivateKeyDer::Pkcs8(der.into())),
                SectionKind::RsaPrivateKey => keys.push(PrivateKeyDer::Pkcs1(der.into())),
                SectionKind::EcPrivateKey => keys.push(PrivateKeyDer::Sec1(der.into())),
                _ => {}
            },
            Err(_) => {
                return Err(bad(
                    "is not valid PEM (a section is malformed or not base64)",
                ))
            }
        }
    }
    if chain.is_empty() {
        return Err(bad("holds no CERTIFICATE section"));
    }
    let key = match keys.len() {
        1 => keys.remove(0),
        0 => {
            return Err(bad(
                "holds no private key (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY section)",
            ))
        }
        _ => return Err(bad("holds more than one private key")),
    };
    let signing = rustls::crypto::ring::sign::any_supported_type(&key).map_err(|_| {
        bad("the private key is not a supported RSA, ECDSA (P-256/P-384) or Ed25519 key")
    })?;
    let certified = rustls::sign::CertifiedKey::new(chain.clone(), signing);
    if certified.keys_match().is_err() {
        return Err(bad(
            "the private key does not match the first certificate (the leaf must come first)",
        ));
    }
    let info = leaf_info(chain[0].as_ref())
        .ok_or_else(|| bad("the first certificate is not a valid X.509 certificate"))?;
    let thumbprint = thumbprint(chain[0].as_ref());
    Ok(ClientCert {
        thumbprint,
        info,
        chain,
        key,
    })
}

/// Whole days (rounded down) from `now` (Unix seconds) until an RFC 3339
/// UTC time (`YYYY-MM-DDTHH:MM:SSZ`, as [`leaf_info`] writes it): 0 on the
/// last day, -1 from the first second after it.
pub fn days_until(rfc3339: &str, now: i64) -> Option<i64> {
    let t = unix_seconds(rfc3339)?;
    Some((t - now).div_euclid(86_400))
}

/// `YYYY-MM-DDTHH:MM:SSZ` as Unix seconds.
fn unix_seconds(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[19] != b'Z' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        if !t.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (hh, mm, ss) = (n(11..13)?, n(14..16)?, n(17..19)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from civil (H. Hinnant), proleptic Gregorian.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3_600 + mm * 60 + ss)
}

/// Reads one DER TLV at the start of `input`: (tag, content, rest).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let mut len = 0usize;
        for &b in &rest[..n] {
            len = (len << 8) | usize::from(b);
        }
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// Subject, issuer and `notAfter` of a DER certificate.
pub fn leaf_info(der: &[u8]) -> Option<LeafInfo> {
    let (0x30, cert, _) = tlv(der)? else {
        return None;
    };
    let (0x30, tbs, _) = tlv(cert)? else {
        return None;
    };
    let mut rest = tbs;
    let (tag, _, r) = tlv(rest)?;
    // [0] version, then serialNumber.
    if tag == 0xa0 {
        rest = r;
        let (_, _, r) = tlv(rest)?;
        rest = r;
    } else {
        rest = r;
    }
    let (_, _, r) = tlv(rest)?; // signature algorithm
    let (0x30, issuer, r) = tlv(r)? else {
        return None;
    };
    let (0x30, validity, r) = tlv(r)? else {
        return None;
    };
    let (0x30, subject, _) = tlv(r)? else {
        return None;
    };
    let (_, _, after) = tlv(validity)?; // notBefore
    let (ttag, not_after, _) = tlv(after)?;
    Some(LeafInfo {
        subject: name(subject)?,
        issuer: name(issuer)?,
        not_after: time(ttag, not_after)?,
    })
}

/// A distinguished name as .NET prints it: `CN=a, O=b, C=c` (most
/// specific first).
fn name(mut seq: &[u8]) -> Option<String> {
    let mut parts = Vec::new();
    while !seq.is_empty() {
        let (0x31, mut set, r) = tlv(seq)? else {
            return None;
        };
        seq = r;
        let mut rdn = Vec::new();
        while !set.is_empty() {
            let (0x30, atv, r) = tlv(set)? else {
                return None;
            };
            set = r;
            let (0x06, oid, r) = tlv(atv)? else {
                return None;
            };
            let (_, value, _) = tlv(r)?;
            rdn.push(format!(
                "{}={}",
                attr_name(oid),
                String::from_utf8_lossy(value)
            ));
        }
        parts.push(rdn.join(" + "));
    }
    parts.reverse();
    Some(parts.join(", "))
}

fn attr_name(oid: &[u8]) -> String {
    match oid {
        [0x55, 0x04, 0x03] => "CN".into(),
        [0x55, 0x04, 0x05] => "SERIALNUMBER".into(),
        [0x55, 0x04, 0x06] => "C".into(),
        [0x55, 0x04, 0x07] => "L".into(),
        [0x55, 0x04, 0x08] => "S".into(),
        [0x55, 0x04, 0x09] => "STREET".into(),
        [0x55, 0x04, 0x0a] => "O".into(),
        [0x55, 0x04, 0x0b] => "OU".into(),
        [0x55, 0x04, 0x0c] => "T".into(),
        [0x55, 0x04, 0x2a] => "G".into(),
        [0x55, 0x04, 0x04] => "SN".into(),
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01] => "E".into(),
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19] => "DC".into(),
        _ => format!("OID.{}", oid_text(oid)),
    }
}

fn oid_text(oid: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut cur = 0u64;
    for &b in oid {
        cur = (cur << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (cur / 40).min(2);
                arcs.push(first);
                arcs.push(cur - first * 40);
            } else {
                arcs.push(cur);
            }
            cur = 0;
        }
    }
    arcs.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`) as
/// RFC 3339.
fn time(tag: u8, v: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(v).ok()?;
    let s = s.strip_suffix('Z')?;
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let full = match (tag, s.len()) {
        (0x17, 12) => {
            let yy: u32 = s[..2].parse().ok()?;
            let century = if yy >= 50 { "19" } else { "20" };
            format!("{century}{s}")
        }
        (0x18, 14) => s.to_string(),
        _ => return None,
    };
    Some(format!(
        "{}-{}-{}T{}:{}:{}Z",
        &full[..4],
        &full[4..6],
        &full[6..8],
        &full[8..10],
        &full[10..12],
        &full[12..14]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_oids() {
        assert_eq!(
            time(0x17, b"270102030405Z").as_deref(),
            Some("2027-01-02T03:04:05Z")
        );
        assert_eq!(
            time(0x18, b"20991231235959Z").as_deref(),
            Some("2099-12-31T23:59:59Z")
        );
        assert!(time(0x17, b"2701020304Z").is_none());
        assert_eq!(
            oid_text(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d]),
            "1.2.840.113549"
        );
    }

    #[test]
    fn refuses_what_is_not_a_chain_with_its_key() {
        let msg = |pem: &str| format!("{:?}", parse_pem(pem).unwrap_err());
        assert!(msg("").contains("required"));
        assert!(msg("hello").contains("no CERTIFICATE"));
        assert!(
            msg("-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n")
                .contains("not valid PEM")
        );
        let mut c = Certificate {
            data: Some(Secret::new("MIIK")),
            ..Certificate::default()
        };
        let mut d = Vec::new();
        c.normalize(&mut d);
        assert!(format!("{d:?}").contains("PKCS#12"), "{d:?}");
        assert!(c.data.is_none() && c.password.is_none());
    }

    #[test]
    fn expiry_day_arithmetic() {
        assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(unix_seconds("2000-03-01T00:00:00Z"), Some(951_868_800));
        assert_eq!(unix_seconds("2024-02-29T12:00:00Z"), Some(1_709_208_000));
        assert_eq!(unix_seconds("2024-13-01T00:00:00Z"), None);
        assert_eq!(unix_seconds("not a date"), None);
        let now = 1_709_208_000; // 2024-02-29T12:00:00Z
        assert_eq!(days_until("2024-02-29T12:00:00Z", now), Some(0));
        assert_eq!(days_until("2024-03-01T11:59:59Z", now), Some(0));
        assert_eq!(days_until("2024-03-01T12:00:00Z", now), Some(1));
        assert_eq!(days_until("2024-03-30T12:00:00Z", now), Some(30));
        assert_eq!(days_until("2024-02-29T11:59:59Z", now), Some(-1));
        assert_eq!(days_until("2024-02-27T12:00:00Z", now), Some(-2));
        assert_eq!(days_until("2025-02-28T12:00:00Z", now), Some(365));
        assert_eq!(days_until("", now), None);
    }

    #[test]
    fn ca_certificates_and_peer_certificates() {
        let pair = rcgen::generate_simple_self_signed(vec!["ca.example".to_string()]).unwrap();
        let mut c = Certificate {
            pem: Secret::new(pair.cert.pem()),
            is_ca: true,
            ..Certificate::default()
        };
        let mut d = Vec::new();
        c.normalize(&mut d);
        assert!(d.is_empty(), "{d:?}");
        assert!(!c.has_private_key);
        assert_eq!(c.thumbprint.len(), 40);
        assert_eq!(c.ca_certs().len(), 1);
        assert!(c.client_cert().is_none());

        // A CA upload with a key is refused, without quoting it.
        let key = pair.signing_key.serialize_pem();
        let e = parse_ca_pem(&format!("{}{key}", pair.cert.pem())).unwrap_err();
        assert!(format!("{e:?}").contains("without its key"));
        assert!(!format!("{e:?}").contains("PRIVATE KEY-----"));

        let peer = PeerCert::from_chain(&[pair.cert.der().clone()]).unwrap();
        assert_eq!(peer.thumbprint, c.thumbprint);
        assert!(peer.info.subject.contains("CN="), "{}", peer.info.subject);
        assert!(PeerCert::from_chain(&[]).is_none());
    }
}
