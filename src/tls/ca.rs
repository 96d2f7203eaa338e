//! A small private certificate authority for `turnpike init --ca`: one CA
//! (`{data_dir}/tls/ca.crt` + `ca.key`) and the node certificate it issues
//! (`tls/gateway.crt` + `gateway.key`, used by the gateway's HTTPS, the
//! management and the portal listeners). Secondaries trust the CA with
//! `[cluster] ca_cert`. Keys are written mode 0600; errors never carry key
//! material.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use std::path::{Path, PathBuf};

/// How long the CA certificate is valid, in years.
const CA_YEARS: i32 = 10;

/// How long an issued node certificate is valid, in years.
const NODE_YEARS: i32 = 5;

/// The CA's certificate and key paths under the data directory.
pub fn paths(data_dir: &Path) -> (PathBuf, PathBuf) {
    let dir = data_dir.join("tls");
    (dir.join("ca.crt"), dir.join("ca.key"))
}

/// The files [`create`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The current calendar year (UTC), from the clock.
fn this_year() -> i32 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // Days since 1970-01-01 to a civil year (Howard Hinnant's algorithm).
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2)) as i32
}

fn rcgen_error(what: &str) -> impl Fn(rcgen::Error) -> String + '_ {
    move |e| format!("cannot {what}: {e}")
}

fn write(path: &Path, data: &[u8], private: bool) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let written = if private {
        crate::durable::write_private(path, data)
    } else {
        std::fs::write(path, data)
    };
    written.map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Creates the CA under `data_dir/tls` and issues the node certificate for
/// `names` (DNS names or IP addresses) at `cert`/`key`. Refuses to
/// overwrite any existing file.
pub fn create(
    data_dir: &Path,
    cert: &Path,
    key: &Path,
    names: Vec<String>,
) -> Result<Issued, String> {
    let (ca_cert, ca_key) = paths(data_dir);
    for p in [&ca_cert, &ca_key, &cert.to_path_buf(), &key.to_path_buf()] {
        if p.exists() {
            return Err(format!(
                "{} already exists; not overwriting it",
                p.display()
            ));
        }
    }
    let year = this_year();

    let mut params = CertificateParams::new(Vec::<String>::new())
        .map_err(rcgen_error("build the CA certificate"))?;
    let mut dn = DistinguishedName::new();
    // A name of its own: two CAs made by `init --ca` never share an
    // issuer name (a verifier would otherwise match the wrong one).
    let mut tag = [0u8; 6];
    getrandom::fill(&mut tag).map_err(|e| format!("cannot name the CA: {e}"))?;
    let tag: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    dn.push(DnType::CommonName, format!("turnpike CA {tag}"));
    dn.push(DnType::OrganizationName, "turnpike");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
    params.not_after = rcgen::date_time_ymd(year + CA_YEARS, 1, 1);
    let ca_pair = KeyPair::generate().map_err(rcgen_error("generate the CA key"))?;
    let ca_key_pem = ca_pair.serialize_pem();
    let ca = CertifiedIssuer::self_signed(params, ca_pair)
        .map_err(rcgen_error("sign the CA certificate"))?;

    let first = names.first().cloned().unwrap_or_else(|| "localhost".into());
    let mut leaf = CertificateParams::new(names).map_err(rcgen_error("build the certificate"))?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, first);
    leaf.distinguished_name = dn;
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.use_authority_key_identifier_extension = true;
    leaf.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
    leaf.not_after = rcgen::date_time_ymd(year + NODE_YEARS, 1, 1);
    let leaf_pair = KeyPair::generate().map_err(rcgen_error("generate the key"))?;
    let issued = leaf
        .signed_by(&leaf_pair, &ca)
        .map_err(rcgen_error("sign the certificate"))?;

    write(&ca_key, ca_key_pem.as_bytes(), true)?;
    write(&ca_cert, ca.pem().as_bytes(), false)?;
    write(key, leaf_pair.serialize_pem().as_bytes(), true)?;
    // The chain: the node certificate, then the CA (clients that trust the
    // CA need only the leaf; sending the CA too is harmless).
    write(
        cert,
        format!("{}{}", issued.pem(), ca.pem()).as_bytes(),
        false,
    )?;
    Ok(Issued {
        ca_cert,
        ca_key,
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
    })
}

/// A rustls root store holding every certificate in the PEM file at
/// `path` (a CA bundle). Errors name the file, never its contents.
pub fn root_store(path: &Path) -> Result<rustls::RootCertStore, String> {
    let certs = super::load_certs(path)?;
    let mut roots = rustls::RootCertStore::empty();
    for c in certs {
        roots.add(c).map_err(|e| {
            format!(
                "certificate {}: not a usable CA certificate: {e}",
                path.display()
            )
        })?;
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_year_is_plausible() {
        let y = this_year();
        assert!((2024..3000).contains(&y), "{y}");
    }

    #[test]
    fn create_writes_a_chain_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = super::super::default_paths(dir.path());
        let issued = create(dir.path(), &cert, &key, vec!["localhost".into()]).unwrap();
        assert_eq!(super::super::load_certs(&cert).unwrap().len(), 2);
        assert_eq!(root_store(&issued.ca_cert).unwrap().len(), 1);
        super::super::server_config(&cert, &key).unwrap();
        let e = create(dir.path(), &cert, &key, vec!["localhost".into()]).unwrap_err();
        assert!(e.contains("already exists"), "{e}");
        std::fs::write(&issued.ca_cert, "not pem").unwrap();
        let e = root_store(&issued.ca_cert).unwrap_err();
        assert!(e.contains("ca.crt"), "{e}");
    }
}
