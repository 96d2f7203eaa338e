//! The gateway's HTTPS listener: self-signed certificate on first start,
//! the same service as plain HTTP (`https` scheme), HTTP/2 by ALPN,
//! session resumption, and a bad key stopping start-up.

mod common;

use bytes::Bytes;
use common::TestApp;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

async fn spawn_https() -> (TestApp, SocketAddr) {
    let app = TestApp::spawn_with(|s| {
        s.gateway.https = Some(toml::Spanned::new(0..0, "127.0.0.1:0".parse().unwrap()));
    })
    .await;
    let addr = app
        .running_addr("gateway-https")
        .expect("gateway-https bound");
    (app, addr)
}

/// A client trusting only the generated certificate.
fn client_config(app: &TestApp, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let cert = app.dir.as_ref().unwrap().path().join("tls/gateway.crt");
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(&cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

async fn connect(
    config: &Arc<rustls::ClientConfig>,
    addr: SocketAddr,
) -> TlsStream<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    TlsConnector::from(config.clone())
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}

/// One GET over `tls` (HTTP/2 when ALPN chose it, else HTTP/1.1).
async fn get(
    tls: TlsStream<tokio::net::TcpStream>,
    path: &str,
    key: &str,
) -> (http::StatusCode, http::Version, Value) {
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let io = TokioIo::new(tls);
    let req = http::Request::get(format!("https://localhost{path}"))
        .header("host", "localhost")
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

#[tokio::test]
async fn https_serves_the_gateway_with_h2_and_https_scheme() {
    let (app, addr) = spawn_https().await;
    let key = app.standard().await;
    let r = app
        .put_xml(
            "/apis/echo/policy",
            r#"<policies><inbound><set-header name="x-original-url" exists-action="override"><value>@(context.Request.OriginalUrl.Scheme + "://" + context.Request.OriginalUrl.Host)</value></set-header></inbound></policies>"#,
        )
        .await;
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());

    // HTTP/2 when offered.
    let config = client_config(&app, &[b"h2", b"http/1.1"]);
    let tls = connect(&config, addr).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (status, version, body) = get(tls, "/echo/a", &key).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(version, http::Version::HTTP_2);
    assert_eq!(body["headers"]["x-forwarded-proto"], "https");
    assert_eq!(body["headers"]["x-original-url"], "https://localhost");

    // HTTP/1.1 when that is all the client speaks.
    let config = client_config(&app, &[b"http/1.1"]);
    let (status, version, body) = get(connect(&config, addr).await, "/echo/b", &key).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(version, http::Version::HTTP_11);
    assert_eq!(body["headers"]["x-forwarded-proto"], "https");

    // The plain listener still says http.
    let r = app.call("/echo/c", Some(&key)).await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["headers"]["x-forwarded-proto"], "http");
}

#[tokio::test]
async fn https_resumes_sessions() {
    let (app, addr) = spawn_https().await;
    let key = app.standard().await;
    for versions in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let cert = app.dir.as_ref().unwrap().path().join("tls/gateway.crt");
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(&cert).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[versions])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let config = Arc::new(config);
        // The first connection is full; TLS 1.3 tickets arrive after the
        // handshake, so a request is made before the second connection.
        let first = connect(&config, addr).await;
        assert_eq!(
            first.get_ref().1.handshake_kind(),
            Some(rustls::HandshakeKind::Full)
        );
        let (status, _, _) = get(first, "/echo/a", &key).await;
        assert_eq!(status, 200);
        let second = connect(&config, addr).await;
        assert_eq!(
            second.get_ref().1.handshake_kind(),
            Some(rustls::HandshakeKind::Resumed),
            "{versions:?}"
        );
        let (status, _, _) = get(second, "/echo/b", &key).await;
        assert_eq!(status, 200);
    }
}

#[tokio::test]
async fn https_survives_a_failed_handshake() {
    let (app, addr) = spawn_https().await;
    let key = app.standard().await;
    // A plain-HTTP request instead of a ClientHello: a readable 400.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("https://"), "{answer}");
    // Garbage, then a clean close.
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(&[0x16, 0x03, 0x01, 0x00, 0x02, 0xff, 0xff])
        .await
        .unwrap();
    drop(tcp);
    let config = client_config(&app, &[b"h2"]);
    let (status, _, _) = get(connect(&config, addr).await, "/echo/a", &key).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn https_with_a_bad_key_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("c.pem");
    let key = dir.path().join("k.pem");
    turnpike::tls::generate_self_signed(&cert, &key, vec!["localhost".into()]).unwrap();
    std::fs::write(
        &key,
        "-----BEGIN PRIVATE KEY-----\nbm90YWtleQ==\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let mut settings = common::test_settings(dir.path());
    settings.gateway.https = Some(toml::Spanned::new(0..0, "127.0.0.1:0".parse().unwrap()));
    settings.gateway.tls_cert = Some("c.pem".into());
    settings.gateway.tls_key = Some("k.pem".into());
    let (_t, never) = turnpike::shutdown::channel();
    let err = match turnpike::run(settings, turnpike::Options::default(), never).await {
        Ok(_) => panic!("started with a bad key"),
        Err(e) => e,
    };
    assert!(matches!(err, turnpike::app::StartError::Tls(_)), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("k.pem"), "{msg}");
    assert!(!msg.contains("bm90YWtleQ"), "{msg}");
}

#[tokio::test]
async fn https_uses_a_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("mine");
    turnpike::tls::generate_self_signed(
        &tls.join("cert.pem"),
        &tls.join("key.pem"),
        vec!["localhost".into()],
    )
    .unwrap();
    let mut settings = common::test_settings(dir.path());
    settings.gateway.https = Some(toml::Spanned::new(0..0, "127.0.0.1:0".parse().unwrap()));
    settings.gateway.tls_cert = Some("mine/cert.pem".into());
    settings.gateway.tls_key = Some("mine/key.pem".into());
    let app = TestApp::start(dir, settings).await;
    let key = app.standard().await;
    assert!(!app.dir.as_ref().unwrap().path().join("tls").exists());
    // Trust the configured certificate only.
    std::fs::create_dir_all(app.dir.as_ref().unwrap().path().join("tls")).unwrap();
    std::fs::copy(
        tls.join("cert.pem"),
        app.dir.as_ref().unwrap().path().join("tls/gateway.crt"),
    )
    .unwrap();
    let addr = app.running_addr("gateway-https").unwrap();
    let config = client_config(&app, &[b"h2"]);
    let (status, _, _) = get(connect(&config, addr).await, "/echo/a", &key).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn https_asks_for_but_does_not_require_a_client_certificate() {
    let app = TestApp::spawn_with(|s| {
        s.gateway.https = Some(toml::Spanned::new(0..0, "127.0.0.1:0".parse().unwrap()));
        s.gateway.negotiate_client_certificate = true;
    })
    .await;
    let addr = app.running_addr("gateway-https").unwrap();
    let key = app.standard().await;

    // Without a certificate: served.
    let config = client_config(&app, &[b"http/1.1"]);
    let (status, _, body) = get(connect(&config, addr).await, "/echo/a", &key).await;
    assert_eq!(status, 200, "{body}");

    // With a self-signed one nobody trusts: the handshake completes (trust
    // is the policies' decision) and the request is served.
    let pair = rcgen::generate_simple_self_signed(vec!["client.example".to_string()]).unwrap();
    let cert = app.dir.as_ref().unwrap().path().join("tls/gateway.crt");
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(&cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut with_cert = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(
            vec![pair.cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(pair.signing_key.serialize_der().into()),
        )
        .unwrap();
    with_cert.alpn_protocols = vec![b"h2".to_vec()];
    let with_cert = Arc::new(with_cert);
    let (status, version, body) = get(connect(&with_cert, addr).await, "/echo/b", &key).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(version, http::Version::HTTP_2);
}

/// A client that completes the handshake and then sends nothing is
/// dropped after `header_read_timeout`, over HTTP/1.1 and over HTTP/2;
/// one that sends its request in time is served.
#[tokio::test]
async fn https_drops_clients_that_send_nothing_after_the_handshake() {
    use tokio::io::AsyncReadExt;
    let app = TestApp::spawn_with(|s| {
        s.gateway.https = Some(toml::Spanned::new(0..0, "127.0.0.1:0".parse().unwrap()));
        s.gateway.header_read_timeout = std::time::Duration::from_millis(400);
    })
    .await;
    let addr = app.running_addr("gateway-https").unwrap();
    let key = app.standard().await;
    for alpn in [&b"h2"[..], &b"http/1.1"[..]] {
        let config = client_config(&app, &[alpn]);
        let mut tls = connect(&config, addr).await;
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(alpn));
        let mut buf = [0u8; 256];
        // Closed by the server: EOF (or a reset), long before 10 s.
        let read = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            loop {
                match tls.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => continue, // HTTP/2 SETTINGS, GOAWAY
                }
            }
        })
        .await;
        assert!(read.is_ok(), "{alpn:?}: an idle connection was held open");
        // A prompt client on the same listener is served.
        let (status, _, body) = get(connect(&config, addr).await, "/echo/a", &key).await;
        assert_eq!(status, 200, "{alpn:?}: {body}");
    }
}
