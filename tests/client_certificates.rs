//! Client certificates presented to the gateway's HTTPS listener
//! (`[gateway] negotiate_client_certificate`): `context.Request.Certificate`
//! in expressions (Subject, Thumbprint, SerialNumber, NotAfter, Verify())
//! and the `validate-client-certificate` policy (trust in a stored CA
//! certificate, dates, revocation by the CA's CRL, identities, ignore-error)
//! through real TLS connections. A test CA issues the client certificates
//! (one valid, one expired, one revoked, one more valid); another CA issues
//! a certificate the gateway does not trust.

mod common;

use bytes::Bytes;
use common::{assert_mgmt_error, TestApp};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType, IsCa, Issuer,
    KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams, SerialNumber,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_rustls::TlsConnector;

struct Ca {
    pem: String,
    der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str) -> Ca {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().unwrap();
    let cert = p.self_signed(&key).unwrap();
    Ca {
        pem: cert.pem(),
        der: cert.der().clone(),
        issuer: Issuer::new(p, key),
    }
}

/// A client certificate (chain and key) valid from `from` to `to` days
/// from now.
struct Client {
    chain: Vec<CertificateDer<'static>>,
    key: Vec<u8>,
}

fn client(ca: &Ca, cn: &str, serial: u64, from: i64, to: i64) -> Client {
    let mut p = CertificateParams::new(vec![format!("{cn}.clients.example")]).unwrap();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name
        .push(DnType::OrganizationName, "Turnpike Tests");
    p.distinguished_name.push(DnType::CommonName, cn);
    p.serial_number = Some(SerialNumber::from(serial));
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now + time::Duration::days(from);
    p.not_after = now + time::Duration::days(to);
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, &ca.issuer).unwrap();
    Client {
        chain: vec![cert.der().clone()],
        key: key.serialize_der(),
    }
}

fn thumbprint(der: &[u8]) -> String {
    turnpike::model::thumbprint(der)
}

/// A TLS client trusting the gateway's generated certificate, presenting
/// `cert` when given.
fn tls_config(app: &TestApp, cert: Option<&Client>) -> Arc<rustls::ClientConfig> {
    let path = app.dir.as_ref().unwrap().path().join("tls/gateway.crt");
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(&path).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match cert {
        Some(c) => builder
            .with_client_auth_cert(c.chain.clone(), PrivateKeyDer::Pkcs8(c.key.clone().into()))
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// GET `path` over HTTPS: status, response headers and JSON body.
async fn get(
    app: &TestApp,
    addr: SocketAddr,
    cert: Option<&Client>,
    path: &str,
    key: &str,
) -> (u16, http::HeaderMap, Value) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = TlsConnector::from(tls_config(app, cert))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get(format!("https://localhost{path}"))
        .header("host", "localhost")
        .header("Ocp-Apim-Subscription-Key", key)
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

struct Setup {
    app: TestApp,
    addr: SocketAddr,
    key: String,
    good: Ca,
    alice: Client,
    bob: Client,
    expired: Client,
    revoked: Client,
    stranger: Client,
}

async fn setup() -> Setup {
    let app = TestApp::spawn_with(|s| {
        s.gateway.https = Some(toml::Spanned::new(0..0, "127.0.0.1:0".parse().unwrap()));
        s.gateway.negotiate_client_certificate = true;
    })
    .await;
    let addr = app.running_addr("gateway-https").unwrap();
    let key = app.standard().await;
    let good = ca("Turnpike Test CA");
    let other = ca("Other CA");
    let alice = client(&good, "alice", 0x0a11ce, -1, 30);
    let bob = client(&good, "bob", 0x0b0b, -1, 30);
    let expired = client(&good, "old", 0x01d, -30, -1);
    let revoked = client(&good, "eve", 0x0bad, -1, 30);
    let stranger = client(&other, "mallory", 0x0a11ce, -1, 30);

    let now = time::OffsetDateTime::now_utc();
    let crl = CertificateRevocationListParams {
        this_update: now - time::Duration::days(1),
        next_update: now + time::Duration::days(30),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: vec![RevokedCertParams {
            serial_number: SerialNumber::from(0x0badu64),
            revocation_time: now - time::Duration::hours(1),
            reason_code: None,
            invalidity_date: None,
        }],
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&good.issuer)
    .unwrap();
    let v = app
        .put_ok(
            "/certificates/ca",
            json!({"pem": good.pem, "isCa": true, "crl": crl.pem().unwrap()}),
        )
        .await;
    assert_eq!(v["thumbprint"], thumbprint(good.der.as_ref()));
    Setup {
        app,
        addr,
        key,
        good,
        alice,
        bob,
        expired,
        revoked,
        stranger,
    }
}

/// The echo API's policy: `inbound` and an on-error that names the reason.
async fn policy(app: &TestApp, inbound: &str) {
    let xml = format!(
        r#"<policies><inbound><base />{inbound}</inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /><set-header name="X-Reason" exists-action="override"><value>@(context.LastError.Reason)</value></set-header></on-error></policies>"#
    );
    let r = app.put_xml("/apis/echo/policy", &xml).await;
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
}

fn reason(h: &http::HeaderMap) -> &str {
    h.get("x-reason").map_or("", |v| v.to_str().unwrap())
}

#[tokio::test]
async fn expressions_see_the_client_certificate() {
    let s = setup().await;
    policy(
        &s.app,
        r#"<set-header name="x-cert" exists-action="override"><value>@{
            var c = context.Request.Certificate;
            if (c == null) { return "none"; }
            return c.Subject + "|" + c.Issuer + "|" + c.Thumbprint + "|" + c.SerialNumber + "|"
                + c.NotAfter.ToString("yyyy-MM-dd") + "|" + c.SubjectName.Name + "|" + c.Verify();
        }</value></set-header>"#,
    )
    .await;
    let (status, _, body) = get(&s.app, s.addr, Some(&s.alice), "/echo/a", &s.key).await;
    assert_eq!(status, 200, "{body}");
    let not_after = (time::OffsetDateTime::now_utc() + time::Duration::days(30)).date();
    let want = format!(
        "CN=alice, O=Turnpike Tests|CN=Turnpike Test CA|{}|0A11CE|{}|CN=alice, O=Turnpike Tests|True",
        thumbprint(s.alice.chain[0].as_ref()),
        not_after
    );
    assert_eq!(body["headers"]["x-cert"], want.as_str());

    // Verify(): false for a CA nobody stored, an expired or a revoked one.
    for c in [&s.stranger, &s.expired, &s.revoked] {
        let (status, _, body) = get(&s.app, s.addr, Some(c), "/echo/a", &s.key).await;
        assert_eq!(status, 200, "{body}");
        let v = body["headers"]["x-cert"].as_str().unwrap();
        assert!(v.ends_with("|False"), "{v}");
    }

    // No certificate over HTTPS, and plain HTTP: null.
    let (_, _, body) = get(&s.app, s.addr, None, "/echo/a", &s.key).await;
    assert_eq!(body["headers"]["x-cert"], "none");
    let r = s.app.call("/echo/a", Some(&s.key)).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["headers"]["x-cert"], "none");
}

#[tokio::test]
async fn validate_client_certificate_accepts_and_rejects() {
    let s = setup().await;
    let alice_thumb = thumbprint(s.alice.chain[0].as_ref());

    // By thumbprint: alice only.
    policy(
        &s.app,
        &format!(
            r#"<validate-client-certificate><identities><identity thumbprint="{alice_thumb}" /></identities></validate-client-certificate>"#
        ),
    )
    .await;
    let (status, _, body) = get(&s.app, s.addr, Some(&s.alice), "/echo/a", &s.key).await;
    assert_eq!(status, 200, "{body}");
    let cases: [(Option<&Client>, &str); 5] = [
        (None, "ClientCertificateMissing"),
        (Some(&s.bob), "ClientCertificateIdentityMismatch"),
        (Some(&s.stranger), "ClientCertificateNotTrusted"),
        (Some(&s.expired), "ClientCertificateExpired"),
        (Some(&s.revoked), "ClientCertificateRevoked"),
    ];
    for (cert, want) in cases {
        let (status, headers, body) = get(&s.app, s.addr, cert, "/echo/a", &s.key).await;
        assert_eq!(status, 401, "{want}: {body}");
        assert_eq!(reason(&headers), want);
        assert_eq!(body["statusCode"], 401);
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .starts_with("Invalid client certificate."),
            "{body}"
        );
    }
    // Plain HTTP has no certificate.
    let r = s.app.call("/echo/a", Some(&s.key)).await;
    assert_eq!(r.status(), 401);

    // By the issuing CA certificate's id: every trusted, valid client.
    policy(
        &s.app,
        r#"<validate-client-certificate validate-revocation="false"><identities><identity issuer-certificate-id="ca" /></identities></validate-client-certificate>"#,
    )
    .await;
    for c in [&s.alice, &s.bob, &s.revoked] {
        let (status, _, body) = get(&s.app, s.addr, Some(c), "/echo/a", &s.key).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, headers, _) = get(&s.app, s.addr, Some(&s.stranger), "/echo/a", &s.key).await;
    assert_eq!(
        (status, reason(&headers)),
        (401, "ClientCertificateNotTrusted")
    );

    // By common name, trust not required: the other CA's "mallory" is
    // refused by name, bob accepted.
    policy(
        &s.app,
        r#"<validate-client-certificate validate-trust="false"><identities><identity common-name="mallory" issuer-subject="CN=Turnpike Test CA" /><identity common-name="bob" /></identities></validate-client-certificate>"#,
    )
    .await;
    let (status, _, body) = get(&s.app, s.addr, Some(&s.bob), "/echo/a", &s.key).await;
    assert_eq!(status, 200, "{body}");
    let (status, headers, _) = get(&s.app, s.addr, Some(&s.stranger), "/echo/a", &s.key).await;
    assert_eq!(
        (status, reason(&headers)),
        (401, "ClientCertificateIdentityMismatch")
    );

    // Dates not checked: the expired certificate passes.
    policy(
        &s.app,
        r#"<validate-client-certificate validate-not-after="false" />"#,
    )
    .await;
    let (status, _, body) = get(&s.app, s.addr, Some(&s.expired), "/echo/a", &s.key).await;
    assert_eq!(status, 200, "{body}");

    // ignore-error: failures let the request through.
    policy(
        &s.app,
        r#"<validate-client-certificate ignore-error="true"><identities><identity thumbprint="00" /></identities></validate-client-certificate>"#,
    )
    .await;
    for c in [None, Some(&s.stranger), Some(&s.alice)] {
        let (status, _, body) = get(&s.app, s.addr, c, "/echo/a", &s.key).await;
        assert_eq!(status, 200, "{body}");
    }
}

#[tokio::test]
async fn bad_documents_and_certificates_are_refused() {
    let s = setup().await;
    // An unknown issuer-certificate-id is a compile error: 400.
    let r = s
        .app
        .put_xml(
            "/apis/echo/policy",
            r#"<policies><inbound><validate-client-certificate><identities><identity issuer-certificate-id="missing" /></identities></validate-client-certificate></inbound></policies>"#,
        )
        .await;
    let v = assert_mgmt_error(r, 400, "ValidationError").await;
    assert!(v.to_string().contains("does not exist"), "{v}");
    // Not in outbound.
    let r = s
        .app
        .put_xml(
            "/apis/echo/policy",
            r#"<policies><inbound><base /></inbound><outbound><validate-client-certificate /></outbound></policies>"#,
        )
        .await;
    assert_mgmt_error(r, 400, "ValidationError").await;

    // A CA certificate a policy names cannot be deleted (the policy would
    // not compile): 400, and the certificate stays.
    policy(
        &s.app,
        r#"<validate-client-certificate><identities><identity issuer-certificate-id="ca" /></identities></validate-client-certificate>"#,
    )
    .await;
    let r = s.app.delete("/certificates/ca").await;
    assert_mgmt_error(r, 400, "ValidationError").await;
    let (status, _, body) = get(&s.app, s.addr, Some(&s.alice), "/echo/a", &s.key).await;
    assert_eq!(status, 200, "{body}");

    // A CRL that does not parse, or on a certificate that is not a CA.
    let r = s
        .app
        .put(
            "/certificates/ca2",
            json!({"pem": s.good.pem, "isCa": true, "crl": "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"}),
        )
        .await;
    let v = assert_mgmt_error(r, 400, "ValidationError").await;
    assert!(v.to_string().contains("crl"), "{v}");
    let r = s
        .app
        .put("/certificates/ca3", json!({"pem": s.good.pem, "crl": "x"}))
        .await;
    assert_mgmt_error(r, 400, "ValidationError").await;
}
