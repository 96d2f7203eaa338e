//! Custom hostnames on the gateway's HTTPS listener: the certificate is
//! chosen by SNI (exact, wildcard, default hostname, the listener's own),
//! changes apply to the next handshake without a restart, a client
//! certificate is asked for only on hostnames that negotiate it, HTTP/2
//! and session resumption work on a custom hostname, and the management
//! resource refuses bad input.

mod common;

use bytes::Bytes;
use common::{assert_mgmt_error, TestApp};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// A test CA and the certificates it issues.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl Ca {
    fn new() -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "Turnpike Test CA");
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A leaf for `name`: (PEM chain + key for `/mgmt/certificates`, the
    /// leaf's DER).
    fn issue(&self, name: &str) -> (String, Vec<u8>) {
        let mut params = CertificateParams::new(vec![name.to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (
            format!("{}{}{}", cert.pem(), self.pem, key.serialize_pem()),
            cert.der().to_vec(),
        )
    }
}

async fn spawn_https(negotiate: bool) -> (TestApp, SocketAddr) {
    let app = TestApp::spawn_with(|s| {
        s.gateway.https = Some(toml::Spanned::new(0..0, "127.0.0.1:0".parse().unwrap()));
        s.gateway.negotiate_client_certificate = negotiate;
    })
    .await;
    let addr = app.running_addr("gateway-https").unwrap();
    (app, addr)
}

/// The listener's own (generated) certificate.
fn own_leaf(app: &TestApp) -> Vec<u8> {
    let path = app.dir.as_ref().unwrap().path().join("tls/gateway.crt");
    CertificateDer::pem_file_iter(&path)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

/// Accepts whatever the server presents: the tests compare the leaf.
#[derive(Debug)]
struct AnyServerCert(Arc<rustls::crypto::CryptoProvider>);

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

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Records whether the server asked for a client certificate (rustls
/// calls `resolve` only on a CertificateRequest); presents none.
#[derive(Debug, Default)]
struct AskedSpy(AtomicBool);

impl rustls::client::ResolvesClientCert for AskedSpy {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.0.store(true, Ordering::SeqCst);
        None
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A client config offering `alpn`, limited to `version` when given,
/// with a spy for certificate requests.
fn client(
    alpn: &[&[u8]],
    version: Option<&'static rustls::SupportedProtocolVersion>,
) -> (Arc<rustls::ClientConfig>, Arc<AskedSpy>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone());
    let builder = match version {
        Some(v) => builder.with_protocol_versions(&[v]).unwrap(),
        None => builder.with_safe_default_protocol_versions().unwrap(),
    };
    let spy = Arc::new(AskedSpy::default());
    let mut config = builder
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServerCert(provider)))
        .with_client_cert_resolver(spy.clone());
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    (Arc::new(config), spy)
}

/// Connects with SNI `sni` (`None`: no server name is sent).
async fn connect(
    config: &Arc<rustls::ClientConfig>,
    addr: SocketAddr,
    sni: Option<&str>,
) -> TlsStream<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = match sni {
        Some(n) => ServerName::try_from(n.to_string()).unwrap(),
        None => ServerName::IpAddress(addr.ip().into()),
    };
    TlsConnector::from(config.clone())
        .connect(name, tcp)
        .await
        .unwrap()
}

/// The leaf (DER) the server presents for `sni`.
async fn leaf_for(addr: SocketAddr, sni: Option<&str>) -> Vec<u8> {
    let (config, _) = client(&[b"http/1.1"], None);
    let tls = connect(&config, addr, sni).await;
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

/// One GET over `tls` (HTTP/2 when ALPN chose it).
async fn get(
    tls: TlsStream<tokio::net::TcpStream>,
    host: &str,
    path: &str,
    key: &str,
) -> (http::StatusCode, http::Version, Value) {
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let io = TokioIo::new(tls);
    let req = http::Request::get(format!("https://{host}{path}"))
        .header("host", host)
        .header("Ocp-Apim-Subscription-Key", key)
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = if h2 {
        let (mut send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .unwrap();
        tokio::spawn(conn);
        send.send_request(req).await.unwrap()
    } else {
        let (mut send, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(conn);
        send.send_request(req).await.unwrap()
    };
    let status = resp.status();
    let version = resp.version();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        version,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

/// Uploads a certificate for `name` as `id`; returns the leaf's DER.
async fn upload(app: &TestApp, ca: &Ca, id: &str, name: &str) -> Vec<u8> {
    let (pem, der) = ca.issue(name);
    app.put_ok(&format!("/certificates/{id}"), json!({ "pem": pem }))
        .await;
    der
}

#[tokio::test]
async fn sni_selects_exact_wildcard_default_and_own_certificates() {
    let (app, addr) = spawn_https(false).await;
    let own = own_leaf(&app);
    let ca = Ca::new();
    let api = upload(&app, &ca, "api", "api.example.com").await;
    let internal = upload(&app, &ca, "internal", "*.internal.test").await;
    let other = upload(&app, &ca, "other", "other.example.com").await;

    // No hostnames: the listener's own certificate for every name.
    assert_eq!(leaf_for(addr, Some("api.example.com")).await, own);

    // Host names are case-insensitive and stored lowercase.
    let r = app
        .put(
            "/hostnames/API.Example.com",
            json!({ "certificateId": "api" }),
        )
        .await;
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["hostName"], "api.example.com");
    assert_eq!(v["negotiateClientCertificate"], false);
    assert_eq!(v["defaultSslBinding"], false);
    app.put_ok(
        "/hostnames/*.internal.test",
        json!({ "certificateId": "/certificates/internal" }),
    )
    .await;
    let v = app.get_json("/hostnames/*.INTERNAL.test").await;
    assert_eq!(v["certificateId"], "internal");

    assert_eq!(leaf_for(addr, Some("api.example.com")).await, api);
    assert_eq!(leaf_for(addr, Some("API.EXAMPLE.COM")).await, api);
    assert_eq!(leaf_for(addr, Some("a.internal.test")).await, internal);
    // The wildcard covers one label, not two, nor the bare parent.
    assert_eq!(leaf_for(addr, Some("a.b.internal.test")).await, own);
    assert_eq!(leaf_for(addr, Some("internal.test")).await, own);
    // Unknown and absent names: no default hostname, the listener's own.
    assert_eq!(leaf_for(addr, Some("unknown.test")).await, own);
    assert_eq!(leaf_for(addr, None).await, own);

    // A default hostname answers unknown and absent names.
    app.put_ok(
        "/hostnames/other.example.com",
        json!({ "certificateId": "other", "defaultSslBinding": true }),
    )
    .await;
    assert_eq!(leaf_for(addr, Some("unknown.test")).await, other);
    assert_eq!(leaf_for(addr, None).await, other);
    assert_eq!(leaf_for(addr, Some("a.b.internal.test")).await, other);
    assert_eq!(leaf_for(addr, Some("api.example.com")).await, api);

    // A PUT swapping the certificate is seen by the next handshake.
    app.put_ok(
        "/hostnames/api.example.com",
        json!({ "certificateId": "internal" }),
    )
    .await;
    assert_eq!(leaf_for(addr, Some("api.example.com")).await, internal);

    let list = app.get_json("/hostnames").await;
    assert_eq!(list["count"], 3, "{list}");

    // DELETE falls back: to the default, then to the listener's own.
    assert_eq!(app.delete("/hostnames/api.example.com").await.status(), 204);
    assert_eq!(leaf_for(addr, Some("api.example.com")).await, other);
    assert_eq!(
        app.delete("/hostnames/other.example.com").await.status(),
        204
    );
    assert_eq!(leaf_for(addr, Some("api.example.com")).await, own);
    assert_eq!(leaf_for(addr, None).await, own);
    assert_eq!(app.get("/hostnames/api.example.com").await.status(), 404);
}

#[tokio::test]
async fn the_default_binding_moves_to_the_last_hostname_given_it() {
    let (app, addr) = spawn_https(false).await;
    let ca = Ca::new();
    let a = upload(&app, &ca, "a", "a.example.com").await;
    let b = upload(&app, &ca, "b", "b.example.com").await;
    app.put_ok(
        "/hostnames/a.example.com",
        json!({ "certificateId": "a", "defaultSslBinding": true }),
    )
    .await;
    assert_eq!(leaf_for(addr, None).await, a);
    app.put_ok(
        "/hostnames/b.example.com",
        json!({ "certificateId": "b", "defaultSslBinding": true }),
    )
    .await;
    assert_eq!(
        app.get_json("/hostnames/a.example.com").await["defaultSslBinding"],
        false
    );
    assert_eq!(
        app.get_json("/hostnames/b.example.com").await["defaultSslBinding"],
        true
    );
    assert_eq!(leaf_for(addr, None).await, b);
    assert_eq!(leaf_for(addr, Some("nobody.test")).await, b);
    assert_eq!(leaf_for(addr, Some("a.example.com")).await, a);
}

#[tokio::test]
async fn client_certificate_is_asked_for_only_where_negotiated() {
    let (app, addr) = spawn_https(false).await;
    let key = app.standard().await;
    let ca = Ca::new();
    upload(&app, &ca, "api", "api.example.com").await;
    upload(&app, &ca, "internal", "*.internal.test").await;
    app.put_ok(
        "/hostnames/api.example.com",
        json!({ "certificateId": "api", "negotiateClientCertificate": true }),
    )
    .await;
    app.put_ok(
        "/hostnames/*.internal.test",
        json!({ "certificateId": "internal" }),
    )
    .await;

    let asked = |sni: Option<&'static str>| async move {
        let (config, spy) = client(&[b"http/1.1"], None);
        let tls = connect(&config, addr, sni).await;
        (spy.0.load(Ordering::SeqCst), tls)
    };
    let (yes, tls) = asked(Some("api.example.com")).await;
    assert!(yes, "api.example.com negotiates a client certificate");
    // Asked, not required: served without one.
    let (status, _, body) = get(tls, "api.example.com", "/echo/a", &key).await;
    assert_eq!(status, 200, "{body}");
    let (no, _) = asked(Some("x.internal.test")).await;
    assert!(!no, "*.internal.test does not negotiate");
    // The listener's own certificate follows [gateway]
    // negotiate_client_certificate (false here).
    let (no, _) = asked(Some("unknown.test")).await;
    assert!(!no);

    // Turning it off applies to the next handshake.
    app.put_ok(
        "/hostnames/api.example.com",
        json!({ "certificateId": "api" }),
    )
    .await;
    let (no, _) = asked(Some("api.example.com")).await;
    assert!(!no);
    // The default hostname's setting answers unknown names.
    app.put_ok(
        "/hostnames/*.internal.test",
        json!({ "certificateId": "internal", "negotiateClientCertificate": true, "defaultSslBinding": true }),
    )
    .await;
    let (yes, _) = asked(Some("unknown.test")).await;
    assert!(yes);
}

#[tokio::test]
async fn the_listener_setting_applies_where_no_hostname_answers() {
    let (app, addr) = spawn_https(true).await;
    let ca = Ca::new();
    upload(&app, &ca, "api", "api.example.com").await;
    app.put_ok(
        "/hostnames/api.example.com",
        json!({ "certificateId": "api" }),
    )
    .await;
    let (config, spy) = client(&[b"h2"], None);
    connect(&config, addr, Some("unknown.test")).await;
    assert!(spy.0.load(Ordering::SeqCst));
    let (config, spy) = client(&[b"h2"], None);
    connect(&config, addr, Some("api.example.com")).await;
    assert!(!spy.0.load(Ordering::SeqCst));
}

#[tokio::test]
async fn h2_and_session_resumption_on_a_custom_hostname() {
    let (app, addr) = spawn_https(false).await;
    let key = app.standard().await;
    let ca = Ca::new();
    let api = upload(&app, &ca, "api", "api.example.com").await;
    let internal = upload(&app, &ca, "internal", "*.internal.test").await;
    app.put_ok(
        "/hostnames/api.example.com",
        json!({ "certificateId": "api", "negotiateClientCertificate": true }),
    )
    .await;
    app.put_ok(
        "/hostnames/*.internal.test",
        json!({ "certificateId": "internal" }),
    )
    .await;

    // HTTP/2 by ALPN on a custom hostname.
    let (config, _) = client(&[b"h2", b"http/1.1"], None);
    let tls = connect(&config, addr, Some("api.example.com")).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    assert_eq!(
        tls.get_ref().1.peer_certificates().unwrap()[0].as_ref(),
        api
    );
    let (status, version, body) = get(tls, "api.example.com", "/echo/h2", &key).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(version, http::Version::HTTP_2);
    assert_eq!(body["headers"]["x-forwarded-proto"], "https");

    // Resumption, TLS 1.3 (tickets) and 1.2, on a hostname that asks for
    // a client certificate and on one that does not.
    for (sni, leaf) in [("api.example.com", &api), ("b.internal.test", &internal)] {
        for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
            let (config, _) = client(&[b"http/1.1"], Some(version));
            let first = connect(&config, addr, Some(sni)).await;
            assert_eq!(
                first.get_ref().1.handshake_kind(),
                Some(rustls::HandshakeKind::Full)
            );
            assert_eq!(
                first.get_ref().1.peer_certificates().unwrap()[0].as_ref(),
                &leaf[..]
            );
            // TLS 1.3 tickets arrive after the handshake: use the
            // connection before opening the next.
            let (status, _, _) = get(first, sni, "/echo/a", &key).await;
            assert_eq!(status, 200);
            let second = connect(&config, addr, Some(sni)).await;
            assert_eq!(
                second.get_ref().1.handshake_kind(),
                Some(rustls::HandshakeKind::Resumed),
                "{sni} {version:?}"
            );
            let (status, _, _) = get(second, sni, "/echo/b", &key).await;
            assert_eq!(status, 200);
        }
    }
}

#[tokio::test]
async fn hostname_writes_are_validated() {
    let (app, _addr) = spawn_https(false).await;
    let ca = Ca::new();
    upload(&app, &ca, "api", "api.example.com").await;
    app.put_ok("/certificates/root", json!({ "pem": ca.pem, "isCa": true }))
        .await;

    for bad in [
        "bad_host.example.com",
        "*.com",
        "a.*.example.com",
        "127.0.0.1",
        "-a.example.com",
    ] {
        let r = app
            .put(
                &format!("/hostnames/{bad}"),
                json!({ "certificateId": "api" }),
            )
            .await;
        assert_mgmt_error(r, 400, "ValidationError").await;
    }
    // The certificate must exist...
    let v = assert_mgmt_error(
        app.put(
            "/hostnames/api.example.com",
            json!({ "certificateId": "missing" }),
        )
        .await,
        400,
        "ValidationError",
    )
    .await;
    assert!(v.to_string().contains("missing"), "{v}");
    // ... and not be a CA certificate.
    let v = assert_mgmt_error(
        app.put(
            "/hostnames/api.example.com",
            json!({ "certificateId": "root" }),
        )
        .await,
        400,
        "ValidationError",
    )
    .await;
    assert!(v.to_string().contains("root"), "{v}");
    assert!(v.to_string().contains("CA"), "{v}");
    // Unknown properties are refused.
    assert_mgmt_error(
        app.put(
            "/hostnames/api.example.com",
            json!({ "certificateId": "api", "tls10Enabled": true }),
        )
        .await,
        400,
        "ValidationError",
    )
    .await;
    assert_eq!(app.get_json("/hostnames").await["count"], 0);

    // A certificate a hostname uses cannot be deleted, nor replaced by a
    // CA certificate.
    app.put_ok(
        "/hostnames/api.example.com",
        json!({ "certificateId": "api" }),
    )
    .await;
    let v = assert_mgmt_error(app.delete("/certificates/api").await, 409, "Conflict").await;
    assert!(v.to_string().contains("api.example.com"), "{v}");
    let r = app
        .put("/certificates/api", json!({ "pem": ca.pem, "isCa": true }))
        .await;
    let v = assert_mgmt_error(r, 400, "ValidationError").await;
    assert!(v.to_string().contains("hostnames/api.example.com"), "{v}");
    assert_eq!(app.delete("/hostnames/api.example.com").await.status(), 204);
    assert_eq!(app.delete("/certificates/api").await.status(), 204);
}

#[tokio::test]
async fn hostnames_survive_a_restart() {
    let (app, addr) = spawn_https(false).await;
    let ca = Ca::new();
    let api = upload(&app, &ca, "api", "api.example.com").await;
    app.put_ok(
        "/hostnames/api.example.com",
        json!({ "certificateId": "api" }),
    )
    .await;
    assert_eq!(leaf_for(addr, Some("api.example.com")).await, api);
    let dir = app.stop().await;
    let mut settings = common::test_settings(dir.path());
    settings.gateway.https = Some(toml::Spanned::new(0..0, "127.0.0.1:0".parse().unwrap()));
    let app = TestApp::start(dir, settings).await;
    let addr = app.running_addr("gateway-https").unwrap();
    assert_eq!(leaf_for(addr, Some("api.example.com")).await, api);
}

#[tokio::test]
async fn a_secondary_presents_the_primarys_hostnames() {
    let (primary, _) = spawn_https(false).await;
    let ca = Ca::new();
    let api = upload(&primary, &ca, "api", "api.example.com").await;
    let other = upload(&primary, &ca, "other", "other.example.com").await;
    primary
        .put_ok(
            "/hostnames/api.example.com",
            json!({ "certificateId": "api" }),
        )
        .await;
    primary
        .put_ok(
            "/gateways/west",
            json!({"locationData": {"name": "West US"}}),
        )
        .await;
    let r = primary
        .client
        .post(format!("{}/gateways/west/token", primary.mgmt))
        .bearer_auth(common::ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let token: Value = r.json().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut s = common::test_settings(dir.path());
    s.node.role = toml::Spanned::new(0..0, turnpike::config::Role::Secondary);
    s.gateway.https = Some(toml::Spanned::new(0..0, "127.0.0.1:0".parse().unwrap()));
    s.cluster.primary = Some(primary.mgmt.trim_end_matches("/mgmt").to_string());
    s.cluster.gateway_id = Some("west".into());
    s.cluster.token = Some(turnpike::error::Secret::new(
        token["value"].as_str().unwrap(),
    ));
    s.cluster.poll_interval = std::time::Duration::from_millis(200);
    s.cluster.backup = false;
    let (_trigger, never) = turnpike::shutdown::channel();
    let secondary = turnpike::run(s, turnpike::Options::default(), never)
        .await
        .unwrap();
    let addr = secondary.addr("gateway-https").unwrap();
    assert_eq!(leaf_for(addr, Some("api.example.com")).await, api);

    // A change on the primary reaches the secondary's handshakes.
    primary
        .put_ok(
            "/hostnames/api.example.com",
            json!({ "certificateId": "other" }),
        )
        .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while leaf_for(addr, Some("api.example.com")).await != other {
        assert!(
            std::time::Instant::now() < deadline,
            "the secondary did not follow the primary's hostname"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    secondary.shutdown();
}

/// A client certificate presented on a hostname that negotiates it reaches
/// the policies: `context.Request.Certificate` and
/// `validate-client-certificate` trusting a stored CA certificate.
#[tokio::test]
async fn a_client_certificate_on_a_negotiating_hostname_reaches_the_policies() {
    let (app, addr) = spawn_https(false).await;
    let key = app.standard().await;
    let ca = Ca::new();
    upload(&app, &ca, "api", "api.example.com").await;
    app.put_ok(
        "/hostnames/api.example.com",
        json!({ "certificateId": "api", "negotiateClientCertificate": true }),
    )
    .await;
    app.put_ok(
        "/certificates/clients-ca",
        json!({ "pem": ca.pem, "isCa": true }),
    )
    .await;
    let r = app
        .put_xml(
            "/apis/echo/policy",
            r#"<policies><inbound><validate-client-certificate validate-revocation="false"><identities><identity issuer-certificate-id="clients-ca" /></identities></validate-client-certificate><set-header name="x-client-thumbprint" exists-action="override"><value>@(context.Request.Certificate.Thumbprint)</value></set-header></inbound></policies>"#,
        )
        .await;
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());

    // A client certificate the stored CA issued.
    let mut params = CertificateParams::new(vec!["client.example".to_string()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "client.example");
    let client_key = KeyPair::generate().unwrap();
    let client_cert = params.signed_by(&client_key, &ca.issuer).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServerCert(provider)))
        .with_client_auth_cert(
            vec![client_cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(client_key.serialize_der().into()),
        )
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let config = Arc::new(config);

    let tls = connect(&config, addr, Some("api.example.com")).await;
    let (status, _, body) = get(tls, "api.example.com", "/echo/a", &key).await;
    assert_eq!(status, 200, "{body}");
    let digest = ring::digest::digest(
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        client_cert.der().as_ref(),
    );
    let expected: String = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    assert_eq!(body["headers"]["x-client-thumbprint"], expected.as_str());

    // Without a certificate the policy refuses (asked, not required).
    let (config, _) = client(&[b"http/1.1"], None);
    let tls = connect(&config, addr, Some("api.example.com")).await;
    let (status, _, _) = get(tls, "api.example.com", "/echo/b", &key).await;
    assert_eq!(status, 401);
}
