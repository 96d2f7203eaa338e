//! Backend TLS through the real gateway: stored CA certificates (`isCa`)
//! trusted beside the webpki roots (a private-CA backend refused without
//! its CA, served once it is stored, refused again once it is deleted, no
//! restart), `tls.serverName` (SNI and the name checked), HTTP/2 to
//! backends that pick it by ALPN, PKCS#12 uploads (`data` + `password`)
//! and `expiresInDays`. The test backends speak TLS with a certificate
//! from a private test CA, record the SNI they got, optionally ask for a
//! client certificate from that CA, and answer with what they saw.

mod common;

use base64::Engine;
use bytes::Bytes;
use common::backend::full;
use common::{assert_mgmt_error, TestApp};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use p12_keystore::{KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{json, Value};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// A private CA and a server certificate it signed.
struct Pki {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

fn pki() -> Pki {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "Private Test CA");
    let key = KeyPair::generate().unwrap();
    let cert = ca.self_signed(&key).unwrap();
    Pki {
        ca_pem: cert.pem(),
        ca_der: cert.der().clone(),
        issuer: Issuer::new(ca, key),
    }
}

/// A leaf signed by the CA for `sans` (IP addresses or DNS names).
fn leaf(pki: &Pki, cn: &str, sans: &[&str]) -> (rcgen::Certificate, KeyPair) {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    for s in sans {
        p.subject_alt_names.push(match s.parse() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName((*s).try_into().unwrap()),
        });
    }
    p.distinguished_name.push(DnType::CommonName, cn);
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, &pki.issuer).unwrap();
    (cert, key)
}

/// A TLS backend with a certificate for `sans` from the private CA,
/// offering `alpn`; it asks for (but does not require) a client
/// certificate from the CA. Answers `{"sni", "version", "client",
/// "alpn"}`, or on `/stream` an event stream whose second event waits for
/// `release`.
async fn tls_backend(pki: &Pki, sans: &[&str], alpn: &[&[u8]]) -> u16 {
    tls_backend_with(pki, sans, alpn, Arc::new(Notify::new())).await
}

async fn tls_backend_with(pki: &Pki, sans: &[&str], alpn: &[&[u8]], release: Arc<Notify>) -> u16 {
    let (cert, key) = leaf(pki, "backend", sans);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca_der.clone()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .allow_unauthenticated()
    .build()
    .unwrap();
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (acceptor, release) = (acceptor.clone(), release.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let conn = tls.get_ref().1;
                let sni = conn.server_name().unwrap_or("").to_string();
                let alpn = conn
                    .alpn_protocol()
                    .map(|p| String::from_utf8_lossy(p).into_owned())
                    .unwrap_or_default();
                let client = conn
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .and_then(|c| turnpike::model::leaf_info(c.as_ref()))
                    .map(|i| i.subject)
                    .unwrap_or_default();
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let version = format!("{:?}", req.version());
                    if req.uri().path().ends_with("/stream") {
                        let release = release.clone();
                        let events = futures_util::stream::unfold(0u8, move |n| {
                            let release = release.clone();
                            async move {
                                let event: &'static [u8] = match n {
                                    0 => b"data: one\n\n",
                                    1 => {
                                        release.notified().await;
                                        b"data: two\n\n"
                                    }
                                    _ => return None,
                                };
                                Some((
                                    Ok::<_, std::io::Error>(Frame::data(Bytes::from(event))),
                                    n + 1,
                                ))
                            }
                        });
                        let resp = hyper::Response::builder()
                            .header("content-type", "text/event-stream")
                            .header("x-version", version)
                            .body(StreamBody::new(events).boxed_unsync())
                            .unwrap();
                        return std::future::ready(Ok::<_, Infallible>(resp));
                    }
                    let body = json!({
                        "sni": sni,
                        "alpn": alpn,
                        "client": client,
                        "version": version,
                    })
                    .to_string();
                    std::future::ready(Ok::<_, Infallible>(hyper::Response::new(full(body))))
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    port
}

const H2_AND_1: &[&[u8]] = &[b"h2", b"http/1.1"];
const ONLY_1: &[&[u8]] = &[b"http/1.1"];

/// An open API `id` (path `id`) sent to the backend entity `id`.
async fn api_via_backend(app: &TestApp, id: &str, backend: Value) {
    app.put_ok(&format!("/backends/{id}"), backend).await;
    app.api(id, id, "http://unused.invalid").await;
    app.product(&format!("p-{id}"), &[id], false).await;
    let xml = format!(
        r#"<policies><inbound><base /><set-backend-service backend-id="{id}" /></inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>"#
    );
    let r = app.put_xml(&format!("/apis/{id}/policy"), &xml).await;
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
}

/// Calls `/{path}`: the status and the JSON body (Null when not JSON).
async fn call(app: &TestApp, path: &str) -> (u16, Value) {
    let r = app.call(path, None).await;
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_private_ca_backend_is_trusted_only_while_its_ca_is_stored() {
    let pki = pki();
    let port = tls_backend(&pki, &["127.0.0.1"], H2_AND_1).await;
    let app = TestApp::spawn().await;
    // A plain API (no backend entity): the stored CAs apply to every
    // forwarded request.
    app.api("plain", "plain", &format!("https://127.0.0.1:{port}"))
        .await;
    app.product("p-plain", &["plain"], false).await;

    let (status, _) = call(&app, "/plain/x").await;
    assert_eq!(status, 502, "refused without the CA");

    let stored = app
        .put_ok(
            "/certificates/myca",
            json!({"pem": pki.ca_pem, "isCa": true}),
        )
        .await;
    assert_eq!(stored["isCa"], true);
    assert_eq!(stored["subject"], "CN=Private Test CA");
    let days = stored["expiresInDays"].as_i64().unwrap();
    assert!(days > 300, "{stored}");
    let (status, body) = call(&app, "/plain/x").await;
    assert_eq!(status, 200, "served with the CA stored: {body}");
    // The backend offered h2: the gateway spoke HTTP/2.
    assert_eq!(body["version"], "HTTP/2.0", "{body}");
    assert_eq!(body["alpn"], "h2");

    assert_eq!(app.delete("/certificates/myca").await.status(), 204);
    let (status, _) = call(&app, "/plain/x").await;
    assert_eq!(status, 502, "refused again once the CA is deleted");
}

#[tokio::test]
async fn http2_when_the_backend_picks_it_and_http1_otherwise() {
    let pki = pki();
    let h2 = tls_backend(&pki, &["127.0.0.1"], H2_AND_1).await;
    let h1 = tls_backend(&pki, &["127.0.0.1"], ONLY_1).await;
    let app = TestApp::spawn().await;
    app.put_ok(
        "/certificates/myca",
        json!({"pem": pki.ca_pem, "isCa": true}),
    )
    .await;
    api_via_backend(
        &app,
        "two",
        json!({"url": format!("https://127.0.0.1:{h2}"), "protocol": "http"}),
    )
    .await;
    api_via_backend(
        &app,
        "one",
        json!({"url": format!("https://127.0.0.1:{h1}"), "protocol": "http"}),
    )
    .await;
    for _ in 0..3 {
        let (status, body) = call(&app, "/two/x").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["version"], "HTTP/2.0", "{body}");
        let (status, body) = call(&app, "/one/x").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["version"], "HTTP/1.1", "{body}");
        assert_eq!(body["alpn"], "http/1.1");
    }
}

#[tokio::test]
async fn event_streams_pass_through_over_http2_unbuffered() {
    let pki = pki();
    let release = Arc::new(Notify::new());
    let port = tls_backend_with(&pki, &["127.0.0.1"], H2_AND_1, release.clone()).await;
    let app = TestApp::spawn().await;
    app.put_ok(
        "/certificates/myca",
        json!({"pem": pki.ca_pem, "isCa": true}),
    )
    .await;
    app.api("sse", "sse", &format!("https://127.0.0.1:{port}"))
        .await;
    app.product("p-sse", &["sse"], false).await;
    let mut r = app.call("/sse/stream", None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-version"], "HTTP/2.0");
    // The first event arrives while the backend still holds the second:
    // the gateway streams, it does not buffer.
    let mut got = String::new();
    while !got.contains("data: one") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), r.chunk())
            .await
            .expect("the first event was held back")
            .unwrap()
            .expect("the stream ended early");
        got.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(!got.contains("two"));
    release.notify_one();
    while let Some(chunk) = r.chunk().await.unwrap() {
        got.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert_eq!(got, "data: one\n\ndata: two\n\n");
}

#[tokio::test]
async fn server_name_is_sent_as_sni_and_checked_instead_of_the_host() {
    let pki = pki();
    // The certificate names backend.test only; the URL has an IP address.
    let port = tls_backend(&pki, &["backend.test"], H2_AND_1).await;
    let url = format!("https://127.0.0.1:{port}");
    let app = TestApp::spawn().await;
    app.put_ok(
        "/certificates/myca",
        json!({"pem": pki.ca_pem, "isCa": true}),
    )
    .await;
    api_via_backend(&app, "sni", json!({"url": url, "protocol": "http"})).await;
    let (status, _) = call(&app, "/sni/x").await;
    assert_eq!(status, 502, "the IP address is not in the certificate");

    let back = app
        .put_ok(
            "/backends/sni",
            json!({"url": url, "protocol": "http", "tls": {"serverName": "backend.test"}}),
        )
        .await;
    assert_eq!(back["tls"]["serverName"], "backend.test", "{back}");
    let (status, body) = call(&app, "/sni/x").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sni"], "backend.test");

    // Another name: sent, and refused by the name check.
    app.put_ok(
        "/backends/sni",
        json!({"url": url, "protocol": "http", "tls": {"serverName": "other.test"}}),
    )
    .await;
    let (status, _) = call(&app, "/sni/x").await;
    assert_eq!(status, 502);
    // ... unless the name check is off.
    app.put_ok(
        "/backends/sni",
        json!({"url": url, "protocol": "http",
               "tls": {"serverName": "other.test", "validateCertificateName": false}}),
    )
    .await;
    let (status, body) = call(&app, "/sni/x").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sni"], "other.test");

    let r = app
        .put(
            "/backends/bad",
            json!({"url": url, "protocol": "http", "tls": {"serverName": "not a name"}}),
        )
        .await;
    let v = assert_mgmt_error(r, 400, "ValidationError").await;
    assert!(v.to_string().contains("serverName"), "{v}");
}

fn pfx(password: &str, entries: Vec<(&str, KeyStoreEntry)>) -> String {
    let mut ks = KeyStore::new();
    for (alias, e) in entries {
        ks.add_entry(alias, e);
    }
    let der = ks.writer(password).write().unwrap();
    base64::engine::general_purpose::STANDARD.encode(der)
}

#[tokio::test]
async fn pkcs12_uploads_are_stored_as_the_key_and_chain() {
    let pki = pki();
    let port = tls_backend(&pki, &["127.0.0.1"], H2_AND_1).await;
    let (client, client_key) = leaf(&pki, "pfx-client", &["client.test"]);
    let p12 = |d: &[u8]| p12_keystore::Certificate::from_der(d).unwrap();
    let data = pfx(
        "Pfx-Pass-123",
        vec![(
            "client",
            KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(
                "k1",
                PrivateKey::from_der(&client_key.serialize_der()).unwrap(),
                vec![p12(client.der()), p12(&pki.ca_der)],
            )),
        )],
    );
    let app = TestApp::spawn().await;

    // Wrong password, not PKCS#12, not base64: 400s naming the problem,
    // never quoting the input.
    let cases = [
        (json!({"data": data, "password": "nope"}), "password"),
        (
            json!({"data": "aGVsbG8gd29ybGQ=", "password": "x"}),
            "not a PKCS#12",
        ),
        (json!({"data": "%%%", "password": "x"}), "base64"),
        (
            json!({"data": data, "password": "Pfx-Pass-123", "isCa": true}),
            "without its key",
        ),
    ];
    for (body, want) in cases {
        let r = app.put("/certificates/bad", body).await;
        let v = assert_mgmt_error(r, 400, "ValidationError").await;
        let text = v.to_string();
        assert!(text.contains(want), "{want}: {text}");
        assert!(!text.contains("Pfx-Pass-123") && !text.contains(&data[..40]));
    }

    let stored = app
        .put_ok(
            "/certificates/pfx",
            json!({"data": data, "password": "Pfx-Pass-123"}),
        )
        .await;
    assert_eq!(stored["subject"], "CN=pfx-client");
    assert_eq!(stored["issuer"], "CN=Private Test CA");
    assert_eq!(stored["hasPrivateKey"], true);
    let got = app.get_json("/certificates/pfx").await;
    let text = got.to_string();
    for hidden in ["data", "password", "pem"] {
        assert!(got.get(hidden).is_none(), "{text}");
    }
    assert!(!text.contains("Pfx-Pass-123"));

    // The key works: presented to the backend as the client certificate.
    app.put_ok(
        "/certificates/myca",
        json!({"pem": pki.ca_pem, "isCa": true}),
    )
    .await;
    api_via_backend(
        &app,
        "mtls",
        json!({"url": format!("https://127.0.0.1:{port}"), "protocol": "http",
               "credentials": {"certificateIds": ["pfx"]}}),
    )
    .await;
    let (status, body) = call(&app, "/mtls/x").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["client"], "CN=pfx-client", "{body}");

    // A PFX holding only certificates is a CA upload.
    let ca_only = pfx(
        "ca-pass",
        vec![("ca", KeyStoreEntry::Certificate(p12(&pki.ca_der)))],
    );
    let ca = app
        .put_ok(
            "/certificates/pfxca",
            json!({"data": ca_only, "password": "ca-pass", "isCa": true}),
        )
        .await;
    assert_eq!(ca["isCa"], true);
    assert_eq!(ca["hasPrivateKey"], false);
    let r = app
        .put(
            "/certificates/bad",
            json!({"data": ca_only, "password": "ca-pass"}),
        )
        .await;
    let v = assert_mgmt_error(r, 400, "ValidationError").await;
    assert!(v.to_string().contains("no private key"), "{v}");
}

#[tokio::test]
async fn expires_in_days_is_shown_and_expired_certificates_are_accepted() {
    let pki = pki();
    let mut p = CertificateParams::new(vec!["old.test".to_string()]).unwrap();
    p.distinguished_name.push(DnType::CommonName, "expired");
    p.not_before = rcgen::date_time_ymd(2020, 1, 1);
    p.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let key = KeyPair::generate().unwrap();
    let old = p.signed_by(&key, &pki.issuer).unwrap();
    let app = TestApp::spawn().await;
    let stored = app
        .put_ok(
            "/certificates/old",
            json!({"pem": format!("{}{}", old.pem(), key.serialize_pem())}),
        )
        .await;
    assert_eq!(stored["expirationDate"], "2021-01-01T00:00:00Z");
    let days = stored["expiresInDays"].as_i64().unwrap();
    assert!(days < -1000, "{stored}");
    let list = app.get_json("/certificates").await;
    assert_eq!(list["value"][0]["id"], "old");
    assert_eq!(list["value"][0]["expiresInDays"], days);
    // Sent back with its read-only properties: accepted.
    let again = app.put_ok("/certificates/old", {
        let mut v = stored.clone();
        v["pem"] = json!(format!("{}{}", old.pem(), key.serialize_pem()));
        v
    });
    assert_eq!(again.await["expiresInDays"], days);
}

/// The `x-called` header of `/caller/x`.
async fn called(app: &TestApp) -> String {
    let r = app.call("/caller/x", None).await;
    assert_eq!(r.status(), 200);
    r.headers()["x-called"].to_str().unwrap().to_string()
}

/// `send-request` trusts the stored CA certificates as forwarded requests
/// do.
#[tokio::test]
async fn send_request_trusts_stored_ca_certificates() {
    let pki = pki();
    let port = tls_backend(&pki, &["127.0.0.1"], H2_AND_1).await;
    let app = TestApp::spawn().await;
    app.api("caller", "caller", "http://unused.invalid").await;
    app.product("p-caller", &["caller"], false).await;
    let xml = format!(
        r#"<policies><inbound><send-request mode="new" response-variable-name="r" timeout="10" ignore-error="true"><set-url>https://127.0.0.1:{port}/called</set-url><set-method>GET</set-method></send-request><return-response><set-status code="200" reason="OK" /><set-header name="x-called" exists-action="override"><value>@(context.Variables.GetValueOrDefault<IResponse>("r") == null ? "failed" : context.Variables.GetValueOrDefault<IResponse>("r").StatusCode.ToString())</value></set-header></return-response></inbound></policies>"#
    );
    let r = app.put_xml("/apis/caller/policy", &xml).await;
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    assert_eq!(called(&app).await, "failed", "refused without the CA");
    app.put_ok(
        "/certificates/myca",
        json!({"pem": pki.ca_pem, "isCa": true}),
    )
    .await;
    assert_eq!(called(&app).await, "200", "trusted with the CA stored");
}
