//! Server-side TLS for the gateway's HTTPS listener: reads the PEM
//! certificate chain and private key, generates a self-signed pair on first
//! start when none is configured, and builds the rustls `ServerConfig`
//! (ring provider, TLS 1.2 and 1.3, ALPN `h2` / `http/1.1`, session
//! resumption by cache and tickets, optionally asking for a client
//! certificate). Errors never carry key material.
//! Certificates chosen by SNI (custom hostnames) and client certificates
//! asked for per hostname: [`sni`].

pub mod accept;
pub mod ca;
pub mod sni;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::ServerSessionMemoryCache;
use rustls::ServerConfig;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Sessions remembered for TLS 1.2 session-id resumption (and TLS 1.3
/// when tickets are unavailable).
const SESSION_CACHE: usize = 4096;

/// The default certificate and key paths under the data directory.
pub fn default_paths(data_dir: &Path) -> (PathBuf, PathBuf) {
    let dir = data_dir.join("tls");
    (dir.join("gateway.crt"), dir.join("gateway.key"))
}

/// The names a generated certificate covers: `localhost`, `127.0.0.1`,
/// `::1` and the machine's hostname.
pub fn default_names() -> Vec<String> {
    let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    if let Ok(h) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let h = h.trim();
        if !h.is_empty() && !names.iter().any(|n| n == h) {
            names.push(h.to_string());
        }
    }
    names
}

/// Writes a self-signed certificate for `names` to `cert` and its key to
/// `key` (mode 0600), creating the parent directories.
pub fn generate_self_signed(cert: &Path, key: &Path, names: Vec<String>) -> Result<(), String> {
    let pair = rcgen::generate_simple_self_signed(names)
        .map_err(|e| format!("cannot generate a self-signed certificate: {e}"))?;
    for p in [cert, key] {
        if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
    }
    crate::durable::write_private(key, pair.signing_key.serialize_pem().as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", key.display()))?;
    std::fs::write(cert, pair.cert.pem())
        .map_err(|e| format!("cannot write {}: {e}", cert.display()))?;
    Ok(())
}

/// Generates the self-signed pair when neither file exists. Returns
/// whether it did.
pub fn ensure_self_signed(cert: &Path, key: &Path) -> Result<bool, String> {
    match (cert.exists(), key.exists()) {
        (false, false) => generate_self_signed(cert, key, default_names()).map(|_| true),
        (true, true) => Ok(false),
        (true, false) => Err(format!(
            "{} is missing (the certificate exists)",
            key.display()
        )),
        (false, true) => Err(format!("{} is missing (the key exists)", cert.display())),
    }
}

/// Reads the PEM certificate chain (leaf first).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("certificate {}: {}", path.display(), pem_error(&e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("certificate {}: {}", path.display(), pem_error(&e)))?;
    if certs.is_empty() {
        return Err(format!(
            "certificate {}: no PEM CERTIFICATE found",
            path.display()
        ));
    }
    Ok(certs)
}

/// Reads the PEM private key (PKCS#8, PKCS#1 or SEC1).
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| format!("private key {}: {}", path.display(), pem_error(&e)))
}

/// A PEM error in words that never quote the file's contents.
fn pem_error(e: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    match e {
        Error::Io(io) => io.to_string(),
        Error::NoItemsFound => "no PEM item of the expected kind found".into(),
        _ => "not valid PEM".into(),
    }
}

/// A listener's rustls configuration from a certificate chain and key in
/// PEM files (the management and portal listeners; the gateway's goes
/// through [`sni::SniAcceptor`]).
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let certs = load_certs(cert)?;
    let key_der = load_key(key)?;
    let certified = sni::certified_key(certs, &key_der).map_err(|e| {
        format!(
            "certificate {} and key {} do not make a usable pair: {e}",
            cert.display(),
            key.display()
        )
    })?;
    let (sessions, ticketer) = session_state()?;
    listener_config(
        Arc::new(rustls::sign::SingleCertAndKey::from(certified)),
        false,
        sessions,
        ticketer,
    )
}

/// Where a listener keeps sessions for resumption by session id.
pub type Sessions = Arc<dyn rustls::server::StoresServerSessions>;
/// What issues a listener's session tickets.
pub type Tickets = Arc<dyn rustls::server::ProducesTickets>;

/// A session cache and a ticketer, for session resumption (share them
/// between configurations of one listener).
pub fn session_state() -> Result<(Sessions, Tickets), String> {
    let ticketer =
        rustls::crypto::ring::Ticketer::new().map_err(|e| format!("TLS session tickets: {e}"))?;
    Ok((ServerSessionMemoryCache::new(SESSION_CACHE), ticketer))
}

/// The rustls configuration every TLS listener uses around `resolver`:
/// ring provider, TLS 1.3 and 1.2, ALPN `h2` / `http/1.1`, resumption
/// through `sessions` and `ticketer`; with `ask_client_certificate`, a
/// client certificate is asked for (never required; see
/// [`RequestClientCert`]).
pub fn listener_config(
    resolver: Arc<dyn rustls::server::ResolvesServerCert>,
    ask_client_certificate: bool,
    sessions: Sessions,
    ticketer: Tickets,
) -> Result<Arc<ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS configuration: {e}"))?;
    let builder = if ask_client_certificate {
        builder.with_client_cert_verifier(Arc::new(RequestClientCert::new(&provider)))
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder.with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config.session_storage = sessions;
    config.ticketer = ticketer;
    Ok(Arc::new(config))
}

/// Asks the client for a certificate and accepts whatever it presents
/// (or nothing), as APIM does: whether the certificate is trusted is the
/// policies' decision (`validate-client-certificate`,
/// `context.Request.Certificate.Verify()`). The handshake still proves the
/// client holds the certificate's private key (the signatures are
/// checked).
#[derive(Debug)]
pub struct RequestClientCert {
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl RequestClientCert {
    pub fn new(provider: &rustls::crypto::CryptoProvider) -> Self {
        RequestClientCert {
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

impl rustls::server::danger::ClientCertVerifier for RequestClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        Ok(rustls::server::danger::ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_pair_loads_and_key_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = default_paths(dir.path());
        assert!(ensure_self_signed(&cert, &key).unwrap());
        assert!(!ensure_self_signed(&cert, &key).unwrap());
        let config = server_config(&cert, &key).unwrap();
        assert_eq!(config.alpn_protocols[0], b"h2");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn bad_key_is_an_error_without_its_contents() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = default_paths(dir.path());
        ensure_self_signed(&cert, &key).unwrap();
        std::fs::write(
            &key,
            "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let e = server_config(&cert, &key).unwrap_err();
        assert!(e.contains("gateway.key"), "{e}");
        assert!(!e.contains("c2VjcmV0"), "{e}");
        std::fs::remove_file(&key).unwrap();
        assert!(ensure_self_signed(&cert, &key)
            .unwrap_err()
            .contains("missing"));
    }
}
