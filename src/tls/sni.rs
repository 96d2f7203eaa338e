//! Certificate selection by server name (SNI) on the gateway's HTTPS
//! listener, and client-certificate negotiation per hostname.
//!
//! Owns: [`HostTable`], the compiled custom hostnames (exact names, `*.`
//! wildcards of one label, the `defaultSslBinding` hostname), each with its
//! ready `CertifiedKey` (PEM parsed once, when the configuration is
//! compiled, never per handshake); [`HostSource`], where the listener reads
//! the current table (the gateway's snapshot, so a change applies to the
//! next handshake without a restart); and [`SniAcceptor`]: it reads the
//! ClientHello first (`LazyConfigAcceptor`), then finishes the handshake
//! with one of two prebuilt `ServerConfig`s, one asking for a client
//! certificate and one not, that share the certificate resolver, the
//! session cache and the ticketer (so resumption works whichever config a
//! connection gets).
//!
//! Selection: exact name, then the wildcard of the name's parent, then the
//! default hostname, then the listener's own certificate (`tls_cert`, or
//! the self-signed one). The hostname that answers decides whether a
//! client certificate is asked for; the listener's own certificate goes
//! with `[gateway] negotiate_client_certificate`.

use super::{load_certs, load_key};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{Acceptor, ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::server::TlsStream;
use tokio_rustls::LazyConfigAcceptor;

/// One custom hostname, compiled.
#[derive(Debug)]
pub struct HostCert {
    /// As configured (lowercase; `*.` for a wildcard).
    pub host: String,
    pub key: Arc<CertifiedKey>,
    /// Ask the client for a certificate.
    pub negotiate: bool,
}

/// The custom hostnames, ready for lookups by server name.
#[derive(Debug, Default)]
pub struct HostTable {
    exact: HashMap<String, Arc<HostCert>>,
    /// Keyed by the name under the `*.` (`*.a.b` → `a.b`).
    wildcard: HashMap<String, Arc<HostCert>>,
    default: Option<Arc<HostCert>>,
}

impl HostTable {
    /// Adds `host` (lowercase, as `model::normalize_host` makes it).
    pub fn insert(&mut self, host: &str, key: Arc<CertifiedKey>, negotiate: bool, default: bool) {
        let entry = Arc::new(HostCert {
            host: host.to_string(),
            key,
            negotiate,
        });
        if default {
            self.default = Some(entry.clone());
        }
        match host.strip_prefix("*.") {
            Some(parent) => self.wildcard.insert(parent.to_string(), entry),
            None => self.exact.insert(host.to_string(), entry),
        };
    }

    /// The hostname that answers `server_name`: exact, then wildcard (one
    /// label), then the default hostname; `None` means the listener's own
    /// certificate.
    pub fn lookup(&self, server_name: Option<&str>) -> Option<&Arc<HostCert>> {
        if let Some(name) = server_name {
            let lower;
            let name = if name.bytes().any(|b| b.is_ascii_uppercase()) {
                lower = name.to_ascii_lowercase();
                lower.as_str()
            } else {
                name
            };
            let name = name.strip_suffix('.').unwrap_or(name);
            if let Some(h) = self.exact.get(name) {
                return Some(h);
            }
            if let Some(h) = name
                .split_once('.')
                .and_then(|(_, parent)| self.wildcard.get(parent))
            {
                return Some(h);
            }
        }
        self.default.as_ref()
    }

    /// Number of hostnames.
    pub fn len(&self) -> usize {
        self.exact.len() + self.wildcard.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A certificate chain (leaf first) and its key as rustls signs with them
/// (ring provider); refuses a key that does not match the leaf.
pub fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: &PrivateKeyDer<'_>,
) -> Result<Arc<CertifiedKey>, String> {
    let signing = rustls::crypto::ring::sign::any_supported_type(key)
        .map_err(|_| "the private key is not a supported RSA, ECDSA or Ed25519 key".to_string())?;
    let certified = CertifiedKey::new(chain, signing);
    certified
        .keys_match()
        .map_err(|_| "the private key does not match the certificate".to_string())?;
    Ok(Arc::new(certified))
}

/// Where the listener reads the current hostnames (the gateway's
/// snapshot). Called once or twice per handshake: it must be cheap.
pub trait HostSource: Send + Sync {
    fn hosts(&self) -> Arc<HostTable>;
}

/// rustls' certificate choice: the table's, else the listener's own.
struct Resolver {
    source: Arc<dyn HostSource>,
    fallback: Arc<CertifiedKey>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver").finish_non_exhaustive()
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let table = self.source.hosts();
        Some(match table.lookup(hello.server_name()) {
            Some(h) => h.key.clone(),
            None => self.fallback.clone(),
        })
    }
}

/// The HTTPS listener's handshake: certificate by SNI, client certificate
/// asked for per hostname.
pub struct SniAcceptor {
    /// Does not ask for a client certificate.
    plain: Arc<ServerConfig>,
    /// Asks for (never requires) one: [`RequestClientCert`].
    asking: Arc<ServerConfig>,
    source: Arc<dyn HostSource>,
    /// `[gateway] negotiate_client_certificate`: for connections the
    /// listener's own certificate answers.
    negotiate_default: bool,
}

impl SniAcceptor {
    /// Loads the listener's own certificate and key (PEM files) and builds
    /// both configurations. Errors name the files, never their contents.
    pub fn new(
        cert: &Path,
        key: &Path,
        negotiate_client_certificate: bool,
        source: Arc<dyn HostSource>,
    ) -> Result<SniAcceptor, String> {
        let chain = load_certs(cert)?;
        let key_der = load_key(key)?;
        let fallback = certified_key(chain, &key_der).map_err(|e| {
            format!(
                "certificate {} and key {} do not make a usable pair: {e}",
                cert.display(),
                key.display()
            )
        })?;
        let resolver: Arc<dyn ResolvesServerCert> = Arc::new(Resolver {
            source: source.clone(),
            fallback,
        });
        let (sessions, ticketer) = super::session_state()?;
        let build = |ask: bool| {
            super::listener_config(resolver.clone(), ask, sessions.clone(), ticketer.clone())
        };
        Ok(SniAcceptor {
            plain: build(false)?,
            asking: build(true)?,
            source,
            negotiate_default: negotiate_client_certificate,
        })
    }

    /// The configuration for a ClientHello naming `server_name`.
    pub fn config_for(&self, server_name: Option<&str>) -> Arc<ServerConfig> {
        let table = self.source.hosts();
        let ask = match table.lookup(server_name) {
            Some(h) => h.negotiate,
            None => self.negotiate_default,
        };
        if ask {
            self.asking.clone()
        } else {
            self.plain.clone()
        }
    }

    /// Runs the whole handshake on `io`: reads the ClientHello, picks the
    /// configuration, completes the handshake.
    pub async fn accept<IO>(&self, io: IO) -> std::io::Result<TlsStream<IO>>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let start = LazyConfigAcceptor::new(Acceptor::default(), io).await?;
        let config = self.config_for(start.client_hello().server_name());
        start.into_stream(config).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> Arc<CertifiedKey> {
        let pair = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
        let der = PrivateKeyDer::Pkcs8(pair.signing_key.serialize_der().into());
        certified_key(vec![pair.cert.der().clone()], &der).unwrap()
    }

    #[test]
    fn lookup_order() {
        let mut t = HostTable::default();
        assert!(t.lookup(Some("api.example.com")).is_none());
        t.insert("api.example.com", key("api.example.com"), true, false);
        t.insert("*.internal.test", key("*.internal.test"), false, false);
        assert_eq!(t.len(), 2);
        let host = |t: &HostTable, n: Option<&str>| t.lookup(n).map(|h| h.host.clone());
        assert_eq!(
            host(&t, Some("API.example.com")).as_deref(),
            Some("api.example.com")
        );
        assert!(t.lookup(Some("api.example.com")).unwrap().negotiate);
        assert_eq!(
            host(&t, Some("a.internal.test")).as_deref(),
            Some("*.internal.test")
        );
        // One label only; the bare parent is not covered.
        assert_eq!(host(&t, Some("a.b.internal.test")), None);
        assert_eq!(host(&t, Some("internal.test")), None);
        assert_eq!(host(&t, None), None);
        t.insert("*.example.com", key("*.example.com"), false, true);
        // Exact beats wildcard; unknown and absent names get the default.
        assert_eq!(
            host(&t, Some("api.example.com")).as_deref(),
            Some("api.example.com")
        );
        assert_eq!(
            host(&t, Some("other.test")).as_deref(),
            Some("*.example.com")
        );
        assert_eq!(host(&t, None).as_deref(), Some("*.example.com"));
    }

    #[test]
    fn mismatched_key_is_refused() {
        let a = rcgen::generate_simple_self_signed(vec!["a".to_string()]).unwrap();
        let b = rcgen::generate_simple_self_signed(vec!["b".to_string()]).unwrap();
        let der = PrivateKeyDer::Pkcs8(b.signing_key.serialize_der().into());
        assert!(certified_key(vec![a.cert.der().clone()], &der).is_err());
    }
}
