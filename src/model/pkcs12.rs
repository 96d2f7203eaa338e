//! PKCS#12 (PFX) certificate uploads: `PUT /mgmt/certificates/{id}` with
//! `{"data": "<base64 PFX>", "password": "..."}` (APIM's shape).
//!
//! Owns: decoding the archive ([`to_pem`], pure Rust via `p12-keystore`:
//! MAC checked, PBES2 and the legacy PBES1 ciphers), taking the private key
//! and its chain (leaf first: the certificate whose local key id matches
//! the key, then its issuers), and re-encoding them as the PEM the
//! certificate resource stores. The data and password are never stored,
//! logged or quoted in errors.

use crate::error::Detail;
use base64::Engine;

/// The PEM (certificates, then the key when `ca` is false) held by a
/// base64 PKCS#12 archive. A CA upload (`ca`) must hold certificates only.
pub fn to_pem(data_b64: &str, password: &str, ca: bool) -> Result<String, Vec<Detail>> {
    let bad = |m: &str| vec![Detail::new("data", m)];
    let compact: String = data_b64.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.is_empty() {
        return Err(bad("is required: the PKCS#12 (PFX) file, base64-encoded"));
    }
    let der = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| bad("is not valid base64"))?;
    let archive = p12_keystore::Pkcs12Archive::from_pkcs12(&der, password).map_err(|e| {
        use p12_keystore::error::Error as E;
        match e {
            E::MacError(_) => vec![Detail::new(
                "password",
                "is wrong: the PKCS#12 integrity check failed",
            )],
            E::DerError(_) | E::InvalidVersion | E::UnsupportedContentType => {
                bad("is not a PKCS#12 (PFX) file")
            }
            E::UnsupportedEncryptionScheme | E::UnsupportedMacAlgorithm => {
                bad("uses a PKCS#12 encryption or integrity scheme that is not supported")
            }
            _ => vec![Detail::new(
                "password",
                "could not decrypt the PKCS#12 file (wrong password or damaged file)",
            )],
        }
    })?;
    if archive.certs.is_empty() {
        return Err(bad("holds no certificate"));
    }
    let mut out = String::new();
    if ca {
        if !archive.keys.is_empty() {
            return Err(bad(
                "holds a private key: a CA certificate (isCa) is uploaded without its key",
            ));
        }
        for c in &archive.certs {
            push_pem(&mut out, "CERTIFICATE", c.cert.as_der());
        }
        return Ok(out);
    }
    let key = match archive.keys.as_slice() {
        [k] => k,
        [] => return Err(bad("holds no private key")),
        _ => return Err(bad("holds more than one private key")),
    };
    for der in chain_order(
        &archive.certs,
        key.local_key_id.as_ref().map(|k| k.as_ref()),
    ) {
        push_pem(&mut out, "CERTIFICATE", der);
    }
    push_pem(&mut out, "PRIVATE KEY", key.key.as_der());
    Ok(out)
}

/// The certificates leaf first: the one with the key's local key id (or
/// the first), then each issuer found in the archive, then the rest.
fn chain_order<'a>(
    certs: &'a [p12_keystore::CertificateBag],
    key_id: Option<&[u8]>,
) -> Vec<&'a [u8]> {
    let leaf = key_id
        .and_then(|id| {
            certs
                .iter()
                .position(|c| c.local_key_id.as_deref() == Some(id))
        })
        .unwrap_or(0);
    let mut used = vec![false; certs.len()];
    let mut order = vec![leaf];
    used[leaf] = true;
    let mut cur = leaf;
    loop {
        let issuer = certs[cur].cert.issuer();
        if issuer == certs[cur].cert.subject() {
            break;
        }
        match (0..certs.len()).find(|&i| !used[i] && certs[i].cert.subject() == issuer) {
            Some(i) => {
                used[i] = true;
                order.push(i);
                cur = i;
            }
            None => break,
        }
    }
    order.extend((0..certs.len()).filter(|&i| !used[i]));
    order.into_iter().map(|i| certs[i].cert.as_der()).collect()
}

fn push_pem(out: &mut String, label: &str, der: &[u8]) {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    out.push_str(&format!("-----BEGIN {label}-----\n"));
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use p12_keystore::{KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain};

    fn pfx(password: &str, with_key: bool) -> (String, rcgen::CertifiedKey<rcgen::KeyPair>) {
        pfx_with(password, with_key, false)
    }

    fn pfx_with(
        password: &str,
        with_key: bool,
        legacy: bool,
    ) -> (String, rcgen::CertifiedKey<rcgen::KeyPair>) {
        let pair = rcgen::generate_simple_self_signed(vec!["p12.example".to_string()]).unwrap();
        let cert = p12_keystore::Certificate::from_der(pair.cert.der()).unwrap();
        let mut ks = KeyStore::new();
        if with_key {
            let key = PrivateKey::from_der(&pair.signing_key.serialize_der()).unwrap();
            ks.add_entry(
                "k",
                KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new("id1", key, vec![cert])),
            );
        } else {
            ks.add_entry("ca", KeyStoreEntry::Certificate(cert));
        }
        let mut w = ks.writer(password);
        if legacy {
            w = w
                .encryption_algorithm(
                    p12_keystore::EncryptionAlgorithm::PbeWithShaAnd3KeyTripleDesCbc,
                )
                .mac_algorithm(p12_keystore::MacAlgorithm::HmacSha1);
        }
        let der = w.write().unwrap();
        (base64::engine::general_purpose::STANDARD.encode(der), pair)
    }

    #[test]
    fn decodes_key_and_chain_and_names_problems() {
        let (data, pair) = pfx("s3cret", true);
        let pem = to_pem(&data, "s3cret", false).unwrap();
        let parsed = crate::model::parse_pem(&pem).unwrap();
        assert_eq!(parsed.chain[0].as_ref(), pair.cert.der().as_ref());

        let msg = |r: Result<String, Vec<Detail>>| format!("{:?}", r.unwrap_err());
        assert!(msg(to_pem(&data, "wrong", false)).contains("wrong"));
        assert!(msg(to_pem("!!!", "x", false)).contains("base64"));
        assert!(msg(to_pem("aGVsbG8=", "x", false)).contains("not a PKCS#12"));
        assert!(msg(to_pem(&data, "s3cret", true)).contains("without its key"));
        // Never quotes the password.
        assert!(!msg(to_pem(&data, "wrong", false)).contains("s3cret"));

        // Legacy (3DES, SHA-1 MAC) files, as older Windows exports write.
        let (legacy, pair) = pfx_with("old", true, true);
        let pem = to_pem(&legacy, "old", false).unwrap();
        let parsed = crate::model::parse_pem(&pem).unwrap();
        assert_eq!(parsed.chain[0].as_ref(), pair.cert.der().as_ref());

        let (ca, _) = pfx("pw", false);
        assert!(msg(to_pem(&ca, "pw", false)).contains("no private key"));
        let pem = to_pem(&ca, "pw", true).unwrap();
        assert_eq!(crate::model::parse_ca_pem(&pem).unwrap().len(), 1);
    }
}
