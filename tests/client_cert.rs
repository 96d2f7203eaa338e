//! Client certificates to backends through the real gateway: the
//! certificates resource (PEM chain + key, metadata-only reads), a
//! backend's `credentials.certificateIds`, `authentication-certificate`
//! (`certificate-id`, `thumbprint`) and the backend TLS options. The test
//! backend speaks TLS with a certificate from a test CA the gateway does
//! not trust (so `tls.validateCertificateChain = false` is needed), demands
//! a client certificate signed by that CA, and answers with the subject
//! of the certificate it got; it counts refused handshakes.

mod common;

use common::backend::full;
use common::{assert_mgmt_error, TestApp};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{json, Value};
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A test CA, the backend's server certificate and client certificates.
struct Pki {
    ca_der: CertificateDer<'static>,
    server_der: CertificateDer<'static>,
    server_key: Vec<u8>,
    /// Signed by the CA: chain PEM + key PEM.
    client_pem: String,
    client_der: Vec<u8>,
    /// Another client signed by the CA.
    other_pem: String,
    /// Self-signed: the backend does not accept it.
    stranger_pem: String,
    /// The server's private key PEM (matches no client certificate).
    server_key_pem: String,
}

fn leaf(cn: &str, issuer: &Issuer<'_, KeyPair>) -> (rcgen::Certificate, KeyPair) {
    let mut p = CertificateParams::new(vec!["localhost".into()]).unwrap();
    // DER order O then CN: printed most specific first, as .NET does.
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name
        .push(DnType::OrganizationName, "Turnpike Tests");
    p.distinguished_name.push(DnType::CommonName, cn);
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, issuer).unwrap();
    (cert, key)
}

fn pki() -> Pki {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "Test CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let (server, server_key) = leaf("backend", &issuer);
    let (client, client_key) = leaf("gateway-client", &issuer);
    let (other, other_key) = leaf("other-client", &issuer);
    let mut sp = CertificateParams::new(vec!["x".into()]).unwrap();
    sp.distinguished_name.push(DnType::CommonName, "stranger");
    let sk = KeyPair::generate().unwrap();
    let stranger = sp.self_signed(&sk).unwrap();
    Pki {
        ca_der: ca_cert.der().clone(),
        server_der: server.der().clone(),
        server_key: server_key.serialize_der(),
        client_pem: format!(
            "{}{}{}",
            client.pem(),
            ca_cert.pem(),
            client_key.serialize_pem()
        ),
        client_der: client.der().to_vec(),
        other_pem: format!("{}{}", other.pem(), other_key.serialize_pem()),
        stranger_pem: format!("{}{}", stranger.pem(), sk.serialize_pem()),
        server_key_pem: server_key.serialize_pem(),
    }
}

/// A TLS backend requiring a client certificate from the test CA; answers
/// `{"subject": ...}`. Returns its URL and the count of refused handshakes.
async fn tls_backend(pki: &Pki) -> (String, Arc<AtomicUsize>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca_der.clone()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![pki.server_der.clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.server_key.clone())),
        )
        .unwrap();
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let refused = Arc::new(AtomicUsize::new(0));
    let r = refused.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (acceptor, r) = (acceptor.clone(), r.clone());
            tokio::spawn(async move {
                let tls = match acceptor.accept(stream).await {
                    Ok(t) => t,
                    Err(_) => {
                        r.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                };
                let subject = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .and_then(|c| turnpike::model::leaf_info(c.as_ref()))
                    .map(|i| i.subject)
                    .unwrap_or_default();
                let svc = service_fn(move |_req| {
                    let body = json!({ "subject": subject }).to_string();
                    async move { Ok::<_, Infallible>(hyper::Response::new(full(body))) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    (format!("https://127.0.0.1:{}", addr.port()), refused)
}

const DOC_TAIL: &str =
    "</inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>";

async fn policy(app: &TestApp, path: &str, inbound: &str) -> reqwest::Response {
    app.put_xml(
        path,
        &format!("<policies><inbound><base />{inbound}{DOC_TAIL}"),
    )
    .await
}

async fn policy_ok(app: &TestApp, path: &str, inbound: &str) {
    let r = policy(app, path, inbound).await;
    let status = r.status();
    let body = r.text().await.unwrap();
    assert!(status.is_success(), "PUT {path}: {status} {body}");
}

/// An open API `id` (path `id`) through the backend entity `backend`.
async fn api_via(app: &TestApp, id: &str, backend: &str, url: &str, inbound: &str) {
    app.api(id, id, url).await;
    app.product(&format!("p-{id}"), &[id], false).await;
    policy_ok(
        app,
        &format!("/apis/{id}/policy"),
        &format!(r#"<set-backend-service backend-id="{backend}" />{inbound}"#),
    )
    .await;
}

async fn subject_of(app: &TestApp, path: &str) -> String {
    let r = app.call(path, None).await;
    let status = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(status, 200, "{path}: {text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    v["subject"].as_str().unwrap().to_string()
}

fn sha1_hex(der: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

#[tokio::test]
async fn certificates_are_validated_and_read_back_as_metadata_only() {
    let pki = pki();
    let app = TestApp::spawn().await;
    let created = app
        .put_ok("/certificates/client", json!({"pem": pki.client_pem}))
        .await;
    let got = app.get_json("/certificates/client").await;
    assert_eq!(created, got);
    assert_eq!(got["id"], "client");
    assert_eq!(got["subject"], "CN=gateway-client, O=Turnpike Tests");
    assert_eq!(got["issuer"], "CN=Test CA");
    assert_eq!(got["thumbprint"], sha1_hex(&pki.client_der));
    assert_eq!(got["expirationDate"], "4096-01-01T00:00:00Z");
    assert_eq!(got["hasPrivateKey"], true);
    let text = got.to_string();
    assert!(
        !text.contains("PRIVATE KEY") && !text.contains("BEGIN"),
        "{text}"
    );
    let list = app.get_json("/certificates").await;
    assert!(!list.to_string().contains("PRIVATE KEY"));
    assert_eq!(list["value"][0]["thumbprint"], got["thumbprint"]);

    // A key line must never come back in an error.
    let key_line = pki.server_key_pem.lines().nth(1).unwrap().to_string();
    let cert_only: String = pki
        .client_pem
        .split("-----BEGIN PRIVATE KEY-----")
        .next()
        .unwrap()
        .to_string();
    let cases = [
        (json!({"pem": cert_only.clone()}), "no private key"),
        (
            json!({"pem": format!("{cert_only}{}", pki.server_key_pem)}),
            "does not match",
        ),
        (json!({"pem": pki.server_key_pem}), "no CERTIFICATE"),
        (
            json!({"data": "MIIKbase64", "password": "p"}),
            "not valid base64",
        ),
        (json!({"pem": ""}), "required"),
        (
            json!({"pem": format!("{}{}", pki.client_pem, pki.server_key_pem)}),
            "more than one private key",
        ),
    ];
    for (body, want) in cases {
        let r = app.put("/certificates/bad", body).await;
        let v = assert_mgmt_error(r, 400, "ValidationError").await;
        let text = v.to_string();
        assert!(text.contains(want), "{want}: {text}");
        assert!(!text.contains(&key_line), "{text}");
    }
    assert_eq!(app.get("/certificates/bad").await.status(), 404);
    // Read-only properties sent back are ignored.
    let mut back = got.clone();
    back["pem"] = json!(pki.other_pem);
    back["thumbprint"] = json!("00");
    let replaced = app.put_ok("/certificates/client", back).await;
    assert_eq!(replaced["subject"], "CN=other-client, O=Turnpike Tests");
    assert_ne!(replaced["thumbprint"], "00");
    assert_eq!(app.delete("/certificates/client").await.status(), 204);
    assert_eq!(app.get("/certificates/client").await.status(), 404);
}

#[tokio::test]
async fn backend_certificate_ids_present_the_client_certificate() {
    let pki = pki();
    let (url, refused) = tls_backend(&pki).await;
    let app = TestApp::spawn().await;
    // Unknown certificate ids are refused.
    let r = app
        .put(
            "/backends/mtls",
            json!({"url": url, "protocol": "http", "credentials": {"certificateIds": ["nope"]}}),
        )
        .await;
    let v = assert_mgmt_error(r, 400, "ValidationError").await;
    assert!(v.to_string().contains("certificateIds"), "{v}");

    app.put_ok("/certificates/client", json!({"pem": pki.client_pem}))
        .await;
    app.put_ok(
        "/backends/mtls",
        json!({"url": url, "protocol": "http",
               "tls": {"validateCertificateChain": false},
               "credentials": {"certificateIds": ["client"]}}),
    )
    .await;
    api_via(&app, "mtls", "mtls", &url, "").await;
    assert_eq!(
        subject_of(&app, "/mtls/x").await,
        "CN=gateway-client, O=Turnpike Tests"
    );
    assert_eq!(refused.load(Ordering::SeqCst), 0);

    // The same backend without a client certificate: the handshake is
    // refused and the gateway answers 502.
    app.put_ok(
        "/backends/plain",
        json!({"url": url, "protocol": "http", "tls": {"validateCertificateChain": false}}),
    )
    .await;
    api_via(&app, "plain", "plain", &url, "").await;
    let r = app.call("/plain/x", None).await;
    assert_eq!(r.status(), 502);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["message"].as_str().unwrap().contains("Bad gateway"),
        "{v}"
    );
    assert!(refused.load(Ordering::SeqCst) >= 1);

    // A client certificate the backend's CA did not sign is refused too.
    app.put_ok("/certificates/stranger", json!({"pem": pki.stranger_pem}))
        .await;
    app.put_ok(
        "/backends/plain",
        json!({"url": url, "protocol": "http", "tls": {"validateCertificateChain": false},
               "credentials": {"certificateIds": ["stranger"]}}),
    )
    .await;
    assert_eq!(app.call("/plain/x", None).await.status(), 502);

    // With chain validation on (the default), the test CA is not trusted.
    app.put_ok(
        "/backends/checked",
        json!({"url": url, "protocol": "http", "credentials": {"certificateIds": ["client"]}}),
    )
    .await;
    api_via(&app, "checked", "checked", &url, "").await;
    assert_eq!(app.call("/checked/x", None).await.status(), 502);

    // A certificate a backend uses cannot be deleted.
    let r = app.delete("/certificates/client").await;
    let v = assert_mgmt_error(r, 409, "Conflict").await;
    assert!(v.to_string().contains("mtls"), "{v}");

    // Certificates are persisted: after a restart the backend still
    // presents its certificate.
    let dir = app.stop().await;
    let settings = common::test_settings(dir.path());
    let app = TestApp::start(dir, settings).await;
    assert_eq!(
        app.get_json("/certificates/client").await["subject"],
        "CN=gateway-client, O=Turnpike Tests"
    );
    assert_eq!(
        subject_of(&app, "/mtls/x").await,
        "CN=gateway-client, O=Turnpike Tests"
    );
}

#[tokio::test]
async fn authentication_certificate_by_id_and_thumbprint() {
    let pki = pki();
    let (url, refused) = tls_backend(&pki).await;
    let app = TestApp::spawn().await;
    app.put_ok("/certificates/client", json!({"pem": pki.client_pem}))
        .await;
    let other = app
        .put_ok("/certificates/other", json!({"pem": pki.other_pem}))
        .await;
    app.put_ok(
        "/backends/b",
        json!({"url": url, "protocol": "http", "tls": {"validateCertificateChain": false}}),
    )
    .await;
    // Without the policy: refused by the backend.
    api_via(&app, "none", "b", &url, "").await;
    assert_eq!(app.call("/none/x", None).await.status(), 502);
    assert!(refused.load(Ordering::SeqCst) >= 1);

    api_via(
        &app,
        "byid",
        "b",
        &url,
        r#"<authentication-certificate certificate-id="client" />"#,
    )
    .await;
    assert_eq!(
        subject_of(&app, "/byid/x").await,
        "CN=gateway-client, O=Turnpike Tests"
    );
    let thumb = other["thumbprint"].as_str().unwrap().to_ascii_lowercase();
    api_via(
        &app,
        "bythumb",
        "b",
        &url,
        &format!(r#"<authentication-certificate thumbprint="{thumb}" />"#),
    )
    .await;
    assert_eq!(
        subject_of(&app, "/bythumb/x").await,
        "CN=other-client, O=Turnpike Tests"
    );
    // Calls keep working (the per-certificate client is reused).
    assert_eq!(
        subject_of(&app, "/byid/x").await,
        "CN=gateway-client, O=Turnpike Tests"
    );

    // The policy's certificate wins over the backend's certificateIds.
    app.put_ok(
        "/backends/withcert",
        json!({"url": url, "protocol": "http", "tls": {"validateCertificateChain": false},
               "credentials": {"certificateIds": ["/certificates/client"]}}),
    )
    .await;
    api_via(
        &app,
        "override",
        "withcert",
        &url,
        r#"<authentication-certificate certificate-id="other" />"#,
    )
    .await;
    assert_eq!(
        subject_of(&app, "/override/x").await,
        "CN=other-client, O=Turnpike Tests"
    );

    // An inline PEM body (chain and key written into the document).
    api_via(
        &app,
        "inline",
        "b",
        &url,
        &format!(r#"<authentication-certificate body="{}" />"#, pki.other_pem),
    )
    .await;
    assert_eq!(
        subject_of(&app, "/inline/x").await,
        "CN=other-client, O=Turnpike Tests"
    );
    // The policy document, with its key, is not what a compile error shows.
    let r = policy(
        &app,
        "/apis/inline/policy",
        &format!(
            r#"<authentication-certificate body="{}{}" />"#,
            pki.other_pem, pki.server_key_pem
        ),
    )
    .await;
    let v = assert_mgmt_error(r, 400, "ValidationError").await;
    let key_line = pki.server_key_pem.lines().nth(1).unwrap();
    assert!(!v.to_string().contains(key_line), "{v}");
    assert!(v.to_string().contains("more than one private key"), "{v}");

    // Unknown ids and thumbprints are compile errors on PUT.
    let r = policy(
        &app,
        "/apis/byid/policy",
        r#"<authentication-certificate certificate-id="missing" />"#,
    )
    .await;
    let v = assert_mgmt_error(r, 400, "ValidationError").await;
    assert!(
        v.to_string()
            .contains("certificate 'missing' does not exist"),
        "{v}"
    );
    let r = policy(
        &app,
        "/apis/byid/policy",
        r#"<authentication-certificate thumbprint="ABCDEF" />"#,
    )
    .await;
    assert_mgmt_error(r, 400, "ValidationError").await;

    // A certificate a policy uses cannot be deleted: the policy is named.
    let r = app.delete("/certificates/other").await;
    let v = assert_mgmt_error(r, 400, "ValidationError").await;
    assert!(v.to_string().contains("bythumb"), "{v}");
    assert_eq!(
        subject_of(&app, "/bythumb/x").await,
        "CN=other-client, O=Turnpike Tests"
    );
}
