//! TLS to backends beyond the default client: a client certificate
//! (`authentication-certificate`, a backend's `credentials.certificateIds`),
//! a backend's relaxed server checks (`tls.validateCertificateChain =
//! false`: any server certificate, the handshake signature still checked;
//! `tls.validateCertificateName = false`: the chain checked, not the name),
//! its SNI override (`tls.serverName`: sent as SNI and checked instead of
//! the URL's host) and the stored CA certificates (`isCa`) trusted beside
//! the webpki roots.
//!
//! Owns: [`TlsChoice`] (what one forwarded request needs) and [`Clients`],
//! one pooled hyper client per distinct choice (trust set, certificate
//! thumbprint, server checks, server name), built on first use with the
//! same ALPN as the default client (`h2`, `http/1.1`: HTTP/2 when the
//! backend picks it), and kept by the gateway across configuration swaps;
//! clients for a trust set the configuration no longer has are dropped.
//! The roots themselves are built at snapshot compile
//! (`snapshot::backends::Trust`), never per request. Reads are lock-free (`ArcSwap`); a mutex only serialises the
//! rare build of a missing client and is never held across an await.

use super::Body;
use crate::model::ClientCert;
use crate::snapshot::backends::{BackendDef, Kind, Trust};
use arc_swap::ArcSwap;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Connector = hyper_rustls::HttpsConnector<super::pool_gauge::Counting<HttpConnector>>;
pub(super) type HttpClient = Client<Connector, Body>;

/// Distinct clients kept at most (certificates replaced over time leave
/// stale entries; past this the set starts afresh).
const MAX_CLIENTS: usize = 64;

/// The TLS a forwarded request needs.
#[derive(Debug, Default, Clone)]
pub struct TlsChoice {
    pub cert: Option<Arc<ClientCert>>,
    pub skip_chain: bool,
    pub skip_name: bool,
    /// `tls.serverName` of the backend.
    pub server_name: Option<ServerName<'static>>,
    /// The configuration's roots when it stores CA certificates.
    pub trust: Option<Arc<Trust>>,
}

impl TlsChoice {
    /// What a request presents: the policy's certificate wins over the
    /// backend's `certificateIds`; the server checks are the backend's.
    pub fn of(
        policy_cert: Option<&Arc<ClientCert>>,
        backend: Option<&BackendDef>,
        trust: &Arc<Trust>,
    ) -> TlsChoice {
        let single = backend.and_then(|d| match &d.kind {
            Kind::Single(s) => Some(s),
            Kind::Pool(_) => None,
        });
        TlsChoice {
            cert: policy_cert
                .cloned()
                .or_else(|| single.and_then(|s| s.client_cert.clone())),
            skip_chain: single.is_some_and(|s| s.skip_chain_validation),
            skip_name: single.is_some_and(|s| s.skip_name_validation),
            server_name: single.and_then(|s| s.server_name.clone()),
            trust: (trust.id != 0).then(|| trust.clone()),
        }
    }

    /// What a `send-request` / `send-one-way-request` call needs: the
    /// configuration's stored CA certificates beside the public roots.
    pub fn trusting(trust: &Arc<Trust>) -> TlsChoice {
        TlsChoice {
            trust: (trust.id != 0).then(|| trust.clone()),
            ..TlsChoice::default()
        }
    }

    /// Whether the default client serves it.
    pub fn is_default(&self) -> bool {
        self.cert.is_none()
            && !self.skip_chain
            && !self.skip_name
            && self.server_name.is_none()
            && self.trust.is_none()
    }

    fn key(&self) -> Key {
        Key {
            thumbprint: self.cert.as_ref().map(|c| c.thumbprint.clone()),
            skip_chain: self.skip_chain,
            skip_name: self.skip_name && !self.skip_chain,
            server_name: self.server_name.as_ref().map(|n| n.to_str().into_owned()),
            trust: if self.skip_chain {
                0
            } else {
                self.trust.as_ref().map_or(0, |t| t.id)
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    thumbprint: Option<String>,
    skip_chain: bool,
    skip_name: bool,
    server_name: Option<String>,
    /// [`Trust::id`] (0: the webpki roots only).
    trust: u64,
}

/// The gateway's TLS clients beyond the default one.
pub struct Clients {
    map: ArcSwap<HashMap<Key, HttpClient>>,
    building: Mutex<()>,
    connect_timeout: Duration,
    pool_max_idle_per_host: usize,
    /// Where their connections are counted.
    gauge: Arc<crate::telemetry::flow::Connections>,
}

impl Clients {
    /// Counts the connections of these clients into `gauge`.
    pub fn counting(mut self, gauge: Arc<crate::telemetry::flow::Connections>) -> Clients {
        self.gauge = gauge;
        self
    }

    pub fn new(connect_timeout: Duration, pool_max_idle_per_host: usize) -> Clients {
        Clients {
            map: ArcSwap::from_pointee(HashMap::new()),
            building: Mutex::new(()),
            connect_timeout,
            pool_max_idle_per_host,
            gauge: Arc::default(),
        }
    }

    /// The client for `choice`, built on first use.
    pub fn get(&self, choice: &TlsChoice) -> Result<HttpClient, rustls::Error> {
        let key = choice.key();
        if let Some(c) = self.map.load().get(&key) {
            return Ok(c.clone());
        }
        let _guard = self.building.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = self.map.load().get(&key) {
            return Ok(c.clone());
        }
        let client = self.build(choice)?;
        let mut next = if self.map.load().len() >= MAX_CLIENTS {
            HashMap::new()
        } else {
            HashMap::clone(&self.map.load())
        };
        // A new trust set replaces the old one: its clients (and their
        // pooled connections) are no longer used.
        if key.trust != 0 {
            next.retain(|k, _| k.trust == 0 || k.trust == key.trust);
        }
        next.insert(key, client.clone());
        self.map.store(Arc::new(next));
        Ok(client)
    }

    fn build(&self, choice: &TlsChoice) -> Result<HttpClient, rustls::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = match choice.trust.as_ref().and_then(|t| t.roots.clone()) {
            Some(r) => r,
            None => Arc::new(RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            }),
        };
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let builder = if choice.skip_chain {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyServerCert(provider)))
        } else if choice.skip_name {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyServerName::new(roots, provider)?))
        } else {
            builder.with_root_certificates(roots)
        };
        let config = match &choice.cert {
            Some(c) => builder.with_client_auth_cert(c.chain.clone(), c.key.clone_key())?,
            None => builder.with_no_client_auth(),
        };
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(self.connect_timeout));
        http.set_nodelay(true);
        let builder = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http();
        let builder = match &choice.server_name {
            Some(n) => builder
                .with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(n.clone())),
            None => builder,
        };
        let https = builder
            .enable_http1()
            .enable_http2()
            .wrap_connector(super::pool_gauge::Counting::new(http, self.gauge.clone()));
        Ok(Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(self.pool_max_idle_per_host)
            .pool_idle_timeout(Duration::from_secs(90))
            .build(https))
    }
}

/// `validateCertificateChain = false`: any server certificate is accepted,
/// but the handshake must still be signed by its key.
#[derive(Debug)]
struct AnyServerCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `validateCertificateName = false`: the chain is checked against the
/// roots, the host name is not.
#[derive(Debug)]
struct AnyServerName(Arc<WebPkiServerVerifier>);

impl AnyServerName {
    fn new(
        roots: Arc<RootCertStore>,
        provider: Arc<CryptoProvider>,
    ) -> Result<AnyServerName, rustls::Error> {
        WebPkiServerVerifier::builder_with_provider(roots, provider)
            .build()
            .map(AnyServerName)
            .map_err(|e| rustls::Error::General(e.to_string()))
    }
}

impl ServerCertVerifier for AnyServerName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

    fn ca() -> (rcgen::Certificate, Issuer<'static, KeyPair>) {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let cert = p.self_signed(&key).unwrap();
        (cert, Issuer::new(p, key))
    }

    fn server(issuer: &Issuer<'static, KeyPair>) -> CertificateDer<'static> {
        let p = CertificateParams::new(vec!["backend.test".into()]).unwrap();
        let key = KeyPair::generate().unwrap();
        p.signed_by(&key, issuer).unwrap().der().clone()
    }

    #[test]
    fn name_checks_can_be_skipped_but_not_chain_checks() {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (ca_cert, issuer) = ca();
        let mut roots = RootCertStore::empty();
        roots.add(ca_cert.der().clone()).unwrap();
        let v = AnyServerName::new(Arc::new(roots), provider.clone()).unwrap();
        let leaf = server(&issuer);
        let now = UnixTime::now();
        let name = |n: &str| ServerName::try_from(n.to_string()).unwrap();
        assert!(v
            .verify_server_cert(&leaf, &[], &name("backend.test"), &[], now)
            .is_ok());
        // Another name: accepted.
        assert!(v
            .verify_server_cert(&leaf, &[], &name("127.0.0.1"), &[], now)
            .is_ok());
        // A chain to another CA: still refused.
        let (_, stranger) = ca();
        let other = server(&stranger);
        assert!(v
            .verify_server_cert(&other, &[], &name("backend.test"), &[], now)
            .is_err());
        // Without chain validation anything goes (signatures are still
        // checked during the handshake).
        let any = AnyServerCert(provider);
        assert!(any
            .verify_server_cert(&other, &[], &name("x.test"), &[], now)
            .is_ok());
        assert!(!any.supported_verify_schemes().is_empty());
    }

    #[test]
    fn choices_share_clients_by_certificate_and_checks() {
        let a = TlsChoice {
            skip_chain: true,
            skip_name: true,
            ..TlsChoice::default()
        };
        let b = TlsChoice {
            skip_chain: true,
            ..TlsChoice::default()
        };
        assert_eq!(a.key(), b.key());
        assert!(TlsChoice::default().is_default());
        let clients = Clients::new(Duration::from_secs(1), 1);
        clients.get(&a).unwrap();
        clients.get(&b).unwrap();
        assert_eq!(clients.map.load().len(), 1);

        // A trust set or a server name makes a distinct client; a new
        // trust set drops the clients of the older one.
        let trusted = |id| TlsChoice {
            trust: Some(Arc::new(Trust { id, roots: None })),
            ..TlsChoice::default()
        };
        assert!(!trusted(7).is_default());
        let named = TlsChoice {
            server_name: Some(ServerName::try_from("backend.test").unwrap()),
            ..TlsChoice::default()
        };
        assert!(!named.is_default());
        clients.get(&named).unwrap();
        clients.get(&trusted(7)).unwrap();
        assert_eq!(clients.map.load().len(), 3);
        clients.get(&trusted(8)).unwrap();
        let keys: Vec<u64> = clients.map.load().keys().map(|k| k.trust).collect();
        assert_eq!(keys.len(), 3);
        assert!(keys.contains(&8) && !keys.contains(&7));
    }
}
