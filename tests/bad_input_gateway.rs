//! Bad input at the gateway: malformed and hostile HTTP/1.1 and HTTP/2
//! written as raw bytes on real sockets. Each case checks the clear status
//! (or the closed connection), that the backend saw nothing it should not
//! have, and that the gateway still serves afterwards.

mod common;

use common::backend::{self, full};
use common::TestApp;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What the recording backend saw: `METHOD path?query` and the body size.
type Seen = Arc<Mutex<Vec<(String, usize)>>>;

/// A backend that records every request it receives and answers 200 with
/// `{"uri": ..., "body": n}`.
async fn recorder() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let addr = backend::spawn(move |req| {
        let log = log.clone();
        async move {
            use http_body_util::BodyExt;
            let line = format!("{} {}", req.method(), req.uri());
            let body = req.into_body().collect().await.map(|b| b.to_bytes().len());
            let n = body.unwrap_or(usize::MAX);
            log.lock().unwrap().push((line.clone(), n));
            hyper::Response::new(full(json!({"uri": line, "body": n}).to_string()))
        }
    })
    .await;
    (format!("http://{addr}"), seen)
}

fn lines(seen: &Seen) -> Vec<String> {
    seen.lock()
        .unwrap()
        .iter()
        .map(|(l, _)| l.clone())
        .collect()
}

/// An app with keyless APIs `a` (at `/a`, backend `{rec}/base-a`) and `b`
/// (at `/b`, backend `{rec}/base-b`), each with one catch-all operation.
async fn two_apis(app: &TestApp, rec: &str) {
    for id in ["a", "b"] {
        app.put_ok(
            &format!("/apis/{id}"),
            json!({"path": id, "serviceUrl": format!("{rec}/base-{id}"), "subscriptionRequired": false}),
        )
        .await;
        app.put_ok(
            &format!("/apis/{id}/operations/all"),
            json!({"method": "*", "urlTemplate": "/*"}),
        )
        .await;
    }
}

fn addr(app: &TestApp) -> String {
    app.gw.trim_start_matches("http://").to_string()
}

/// Writes `bytes` on a fresh connection and reads until the gateway
/// closes it (or 10 s pass): the whole exchange as text.
async fn raw(app: &TestApp, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr(app)).await.unwrap();
    // The gateway may answer and close before it has read everything.
    let _ = s.write_all(bytes).await;
    read_all(&mut s, Duration::from_secs(10)).await
}

async fn read_all(s: &mut TcpStream, limit: Duration) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(limit, async {
        let mut buf = [0u8; 8192];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    String::from_utf8_lossy(&out).into_owned()
}

/// The status code of the first response in `text`.
fn status(text: &str) -> u16 {
    text.get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"))
}

/// How many responses `text` holds.
fn responses(text: &str) -> usize {
    text.matches("HTTP/1.1 ").count()
}

/// The gateway still answers a normal request on API `a`.
async fn still_serves(app: &TestApp) {
    let r = app.call("/a/ok", None).await;
    assert_eq!(r.status(), 200, "the gateway still serves");
}

/// The JSON body of the first response in `text`.
fn json_body(text: &str) -> Value {
    let body = &text[text.find("\r\n\r\n").expect("a body") + 4..];
    let start = body.find('{').expect("a JSON body");
    let end = body.rfind('}').expect("a JSON body");
    serde_json::from_str(&body[start..=end]).unwrap()
}

#[tokio::test]
async fn an_oversized_request_line_is_431() {
    let app = TestApp::spawn().await;
    let (rec, seen) = recorder().await;
    two_apis(&app, &rec).await;
    let long = "x".repeat(40 * 1024);
    let text = raw(
        &app,
        format!("GET /a/{long} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await;
    assert_eq!(status(&text), 431, "{}", &text[..text.len().min(200)]);
    assert!(lines(&seen).is_empty());
    still_serves(&app).await;
}

#[tokio::test]
async fn oversized_headers_are_431_and_the_limit_is_configurable() {
    let app = TestApp::spawn_with(|s| s.gateway.max_header_bytes = 16 * 1024).await;
    let (rec, seen) = recorder().await;
    two_apis(&app, &rec).await;
    let header = |n: usize| {
        format!(
            "GET /a/h HTTP/1.1\r\nHost: h\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
            "v".repeat(n)
        )
    };
    // Under the limit: served.
    let text = raw(&app, header(8 * 1024).as_bytes()).await;
    assert_eq!(status(&text), 200, "{text}");
    // Over it: 431, the backend sees nothing more.
    let text = raw(&app, header(20 * 1024).as_bytes()).await;
    assert_eq!(status(&text), 431, "{}", &text[..text.len().min(200)]);
    assert_eq!(lines(&seen), vec!["GET /base-a/h"]);
    // The default (32 KiB) takes a 20 KiB header.
    let roomy = TestApp::spawn().await;
    two_apis(&roomy, &rec).await;
    assert_eq!(
        status(&raw(&roomy, header(20 * 1024).as_bytes()).await),
        200
    );
    still_serves(&app).await;
}

#[tokio::test]
async fn too_many_headers_are_431_and_the_limit_is_configurable() {
    let app = TestApp::spawn_with(|s| s.gateway.max_headers = 20).await;
    let (rec, seen) = recorder().await;
    two_apis(&app, &rec).await;
    let with = |n: usize| {
        let mut req = String::from("GET /a/n HTTP/1.1\r\nHost: h\r\nConnection: close\r\n");
        for i in 0..n {
            req.push_str(&format!("X-H{i}: {i}\r\n"));
        }
        req.push_str("\r\n");
        req
    };
    assert_eq!(status(&raw(&app, with(10).as_bytes()).await), 200);
    let text = raw(&app, with(30).as_bytes()).await;
    assert_eq!(status(&text), 431, "{text}");
    assert_eq!(lines(&seen).len(), 1);
    // The default (100) refuses a header flood too.
    let default = TestApp::spawn().await;
    two_apis(&default, &rec).await;
    assert_eq!(status(&raw(&default, with(500).as_bytes()).await), 431);
    assert_eq!(lines(&seen).len(), 1);
    still_serves(&app).await;
}

#[tokio::test]
async fn invalid_header_bytes_are_400() {
    let app = TestApp::spawn().await;
    let (rec, seen) = recorder().await;
    two_apis(&app, &rec).await;
    for bad in [
        &b"GET /a/x HTTP/1.1\r\nHost: h\r\nX-Bad: a\x00b\r\n\r\n"[..],
        b"GET /a/x HTTP/1.1\r\nHost: h\r\nBad Name: v\r\n\r\n",
        b"GET /a/x HTTP/1.1\r\nHost: h\r\nX-Bad: a\rb\r\n\r\n",
        b"GET /a/x HTTP/1.1\r\nHost: h\r\nX-Fold: a\r\n folded\r\n\r\n",
        b"GET /a/x HTTP/1.1\r\nHost: h\r\n: no-name\r\n\r\n",
    ] {
        let text = raw(&app, bad).await;
        assert_eq!(status(&text), 400, "{bad:?} -> {text}");
        assert_eq!(responses(&text), 1, "{text}");
    }
    assert!(lines(&seen).is_empty(), "{:?}", lines(&seen));
    still_serves(&app).await;
}

#[tokio::test]
async fn invalid_request_lines_are_400() {
    let app = TestApp::spawn().await;
    let (rec, seen) = recorder().await;
    two_apis(&app, &rec).await;
    for bad in [
        &b"G(T /a/x HTTP/1.1\r\nHost: h\r\n\r\n"[..],
        b"GET /a/x HTTP/9.9\r\nHost: h\r\n\r\n",
        b"GET /a/\xff\xfe HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET /a/x y HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET\r\n\r\n",
    ] {
        let text = raw(&app, bad).await;
        assert_eq!(status(&text), 400, "{bad:?} -> {text}");
    }
    assert!(lines(&seen).is_empty(), "{:?}", lines(&seen));
    still_serves(&app).await;
}

#[tokio::test]
async fn cl_te_smuggling_reaches_the_backend_once_and_closes() {
    let app = TestApp::spawn().await;
    let (rec, seen) = recorder().await;
    two_apis(&app, &rec).await;
    // CL.TE: a front end trusting Content-Length would pass the smuggled
    // request inside the body; the gateway follows Transfer-Encoding and
    // closes the connection after answering, so the rest is never parsed.
    let smuggled = "0\r\n\r\nGET /b/smuggled HTTP/1.1\r\nHost: h\r\n\r\n";
    let req = format!(
        "POST /a/front HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n{smuggled}",
        smuggled.len()
    );
    let text = raw(&app, req.as_bytes()).await;
    assert_eq!(status(&text), 200, "{text}");
    assert_eq!(responses(&text), 1, "one answer, then close: {text}");
    assert_eq!(lines(&seen), vec!["POST /base-a/front"]);
    assert_eq!(seen.lock().unwrap()[0].1, 0, "the chunked body is empty");
    // TE before CL: the same.
    let req = format!(
        "POST /a/front HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: {}\r\n\r\n{smuggled}",
        smuggled.len()
    );
    let text = raw(&app, req.as_bytes()).await;
    assert_eq!(responses(&text), 1, "{text}");
    assert!(!lines(&seen).iter().any(|l| l.contains("smuggled")));
    still_serves(&app).await;
}

#[tokio::test]
async fn te_cl_smuggling_forwards_only_the_chunked_body() {
    let app = TestApp::spawn().await;
    let (rec, seen) = recorder().await;
    two_apis(&app, &rec).await;
    // TE.CL: a front end trusting Content-Length: 4 would stop after the
    // chunk size; the gateway reads the whole chunk as body bytes.
    let inner = "GET /b/smuggled HTTP/1.1\r\nHost: h\r\n\r\n";
    let req = format!(
        "POST /a/front HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{inner}\r\n0\r\n\r\n",
        inner.len()
    );
    let text = raw(&app, req.as_bytes()).await;
    assert_eq!(status(&text), 200, "{text}");
    assert_eq!(responses(&text), 1, "{text}");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0], ("POST /base-a/front".to_string(), inner.len()));
    still_serves(&app).await;
}

#[tokio::test]
async fn conflicting_or_invalid_content_lengths_are_400() {
    let app = TestApp::spawn().await;
    let (rec, seen) = recorder().await;
    two_apis(&app, &rec).await;
    for cl in [
        "Content-Length: 5\r\nContent-Length: 6",
        "Content-Length: 5, 6",
        "Content-Length: -1",
        "Content-Length: abc",
        "Content-Length: 99999999999999999999999",
    ] {
        let req = format!(
            "POST /a/x HTTP/1.1\r\nHost: h\r\n{cl}\r\n\r\nhello!GET /b/smuggled HTTP/1.1\r\n\r\n"
        );
        let text = raw(&app, req.as_bytes()).await;
        assert_eq!(status(&text), 400, "{cl} -> {text}");
        assert_eq!(responses(&text), 1, "{text}");
    }
    assert!(lines(&seen).is_empty(), "{:?}", lines(&seen));
    still_serves(&app).await;
}

#[tokio::test]
async fn unsupported_transfer_encodings_are_400() {
    let app = TestApp::spawn().await;
    let (rec, seen) = recorder().await;
    two_apis(&app, &rec).await;
    for req in [
        // chunked must be the final coding of a request.
        &b"POST /a/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\nxx"[..],
        b"POST /a/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\nxx",
        // HTTP/1.0 has no Transfer-Encoding.
        b"POST /a/x HTTP/1.0\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ] {
        let text = raw(&app, req).await;
        assert_eq!(status(&text), 400, "{req:?} -> {text}");
    }
    assert!(lines(&seen).is_empty(), "{:?}", lines(&seen));
    still_serves(&app).await;
}

#[tokio::test]
async fn bad_chunked_encoding_is_refused() {
    let app = TestApp::spawn().await;
    let (rec, seen) = recorder().await;
    two_apis(&app, &rec).await;
    for body in [
        "zz\r\nhello\r\n0\r\n\r\n",
        "5\r\nhelloXX0\r\n\r\n",
        "ffffffffffffffffffff\r\nx\r\n",
    ] {
        let req = format!(
            "POST /a/chunks HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n{body}"
        );
        let text = raw(&app, req.as_bytes()).await;
        assert_eq!(status(&text), 400, "{body:?} -> {text}");
        assert_eq!(
            json_body(&text),
            json!({"statusCode": 400, "message": "Bad request: the request body could not be read."})
        );
        assert_eq!(responses(&text), 1, "{text}");
    }
    // Whatever reached the backend carried no complete body.
    for (line, n) in seen.lock().unwrap().iter() {
        assert_eq!(line, "POST /base-a/chunks");
        assert_eq!(*n, usize::MAX, "the backend saw the body fail");
    }
    still_serves(&app).await;
}

#[tokio::test]
async fn a_body_over_the_buffering_cap_is_413() {
    let app = TestApp::spawn().await;
    let (rec, seen) = recorder().await;
    two_apis(&app, &rec).await;
    let r = app
        .put_xml(
            "/apis/a/policy",
            r#"<policies><inbound><base /><set-variable name="b" value="@(context.Request.Body.As<string>(preserveContent: true))" /></inbound></policies>"#,
        )
        .await;
    assert!(r.status().is_success());
    let r = app
        .client
        .post(format!("{}/a/big", app.gw))
        .body(vec![b'x'; 17 << 20])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["statusCode"], 413, "{v}");
    assert!(lines(&seen).is_empty(), "{:?}", lines(&seen));
    // A body under the cap passes.
    let r = app
        .client
        .post(format!("{}/a/small", app.gw))
        .body(vec![b'x'; 1 << 20])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(lines(&seen), vec!["POST /base-a/small"]);
}

#[tokio::test]
async fn slowloris_headers_are_cut_off() {
    let app =
        TestApp::spawn_with(|s| s.gateway.header_read_timeout = Duration::from_millis(500)).await;
    let (rec, seen) = recorder().await;
    two_apis(&app, &rec).await;
    let mut s = TcpStream::connect(addr(&app)).await.unwrap();
    s.write_all(b"GET /a/slow HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n")
        .await
        .unwrap();
    // The rest never comes: the gateway closes the connection.
    let text = read_all(&mut s, Duration::from_secs(20)).await;
    assert!(
        text.is_empty() || status(&text) == 408,
        "closed without a request: {text}"
    );
    let mut buf = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "the connection is closed"
    );
    assert!(lines(&seen).is_empty());
    still_serves(&app).await;
}

#[tokio::test]
async fn connections_that_send_nothing_are_closed() {
    let app =
        TestApp::spawn_with(|s| s.gateway.header_read_timeout = Duration::from_millis(500)).await;
    let (rec, _seen) = recorder().await;
    two_apis(&app, &rec).await;
    // Nothing at all, and half of the HTTP/2 preface.
    for first in [&b""[..], b"PRI * HTTP/2.0\r\n"] {
        let mut s = TcpStream::connect(addr(&app)).await.unwrap();
        s.write_all(first).await.unwrap();
        let mut buf = [0u8; 64];
        let r = tokio::time::timeout(Duration::from_secs(20), s.read(&mut buf)).await;
        assert!(
            matches!(r, Ok(Ok(0)) | Ok(Err(_))),
            "{first:?}: closed by the gateway, got {r:?}"
        );
    }
    still_serves(&app).await;
}

#[tokio::test]
async fn dot_segments_are_400_and_never_reach_the_backend() {
    let app = TestApp::spawn().await;
    let (rec, seen) = recorder().await;
    two_apis(&app, &rec).await;
    for path in [
        "/a/../b/x",
        "/a/./x",
        "/a/x/..",
        "/a/%2e%2e/b/x",
        "/a/%2E%2e/%2e%2e/x",
        "/a/.%2e/b/x",
        "/a/..%2fb/x",
        "/a/..%2Fb/x",
        "/a/..%5cb/x",
        "/a/x%2f..%2f..%2fb",
    ] {
        let text = raw(
            &app,
            format!("GET {path} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await;
        assert_eq!(status(&text), 400, "{path} -> {text}");
        assert_eq!(
            json_body(&text),
            json!({"statusCode": 400, "message": "Bad request: the path has a '.' or '..' segment."}),
            "{path}"
        );
    }
    assert!(lines(&seen).is_empty(), "{:?}", lines(&seen));
    still_serves(&app).await;
}

#[tokio::test]
async fn encoded_slashes_and_dots_in_names_stay_under_the_base_path() {
    let app = TestApp::spawn().await;
    let (rec, seen) = recorder().await;
    two_apis(&app, &rec).await;
    for (path, forwarded) in [
        ("/a/x%2fy", "GET /base-a/x%2fy"),
        ("/a/...", "GET /base-a/..."),
        ("/a/.well-known/x", "GET /base-a/.well-known/x"),
        ("/a/x..y", "GET /base-a/x..y"),
        ("/a//b/x", "GET /base-a//b/x"),
    ] {
        let text = raw(
            &app,
            format!("GET {path} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await;
        assert_eq!(status(&text), 200, "{path} -> {text}");
        assert_eq!(json_body(&text)["uri"], forwarded, "{path}");
    }
    for l in lines(&seen) {
        assert!(l.starts_with("GET /base-a/"), "{l}");
    }
}

#[tokio::test]
async fn invalid_utf8_in_paths_and_queries_is_forwarded_verbatim() {
    let app = TestApp::spawn().await;
    let (rec, seen) = recorder().await;
    two_apis(&app, &rec).await;
    let text = raw(
        &app,
        b"GET /a/%ff%fe/x?q=%ff%c3%28 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status(&text), 200, "{text}");
    // The path goes on verbatim; query values are decoded (as
    // context.Request.Url.Query shows them) and encoded again, so bytes
    // that are not UTF-8 become U+FFFD, as .NET decodes them.
    assert_eq!(
        lines(&seen),
        vec!["GET /base-a/%ff%fe/x?q=%EF%BF%BD%EF%BF%BD%28"]
    );
    // With a key required, an undecodable key is just an invalid key.
    app.put_ok(
        "/apis/k",
        json!({"path": "k", "serviceUrl": format!("{rec}/base-k")}),
    )
    .await;
    app.put_ok(
        "/apis/k/operations/all",
        json!({"method": "*", "urlTemplate": "/*"}),
    )
    .await;
    let text = raw(
        &app,
        b"GET /k/x?subscription-key=%ff%fe HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status(&text), 401, "{text}");
    assert_eq!(lines(&seen).len(), 1);
}

#[tokio::test]
async fn absolute_form_uris_route_by_path_only() {
    let app = TestApp::spawn().await;
    let (rec, seen) = recorder().await;
    two_apis(&app, &rec).await;
    let text = raw(
        &app,
        b"GET http://evil.example/a/abs?x=1 HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status(&text), 200, "{text}");
    // Forwarded to API a's backend, never to the host named in the URI.
    assert_eq!(lines(&seen), vec!["GET /base-a/abs?x=1"]);
    let text = raw(
        &app,
        b"GET http://evil.example/nowhere HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status(&text), 404, "{text}");
    assert_eq!(lines(&seen).len(), 1);
}

#[tokio::test]
async fn connect_is_refused() {
    let app = TestApp::spawn().await;
    let (rec, seen) = recorder().await;
    two_apis(&app, &rec).await;
    // Even with an API at the root path taking every method.
    app.put_ok(
        "/apis/root",
        json!({"path": "", "serviceUrl": format!("{rec}/base-root"), "subscriptionRequired": false}),
    )
    .await;
    app.put_ok(
        "/apis/root/operations/all",
        json!({"method": "*", "urlTemplate": "/*"}),
    )
    .await;
    for target in ["evil.example:443", "127.0.0.1:22"] {
        let text = raw(
            &app,
            format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes(),
        )
        .await;
        assert_eq!(status(&text), 404, "{target} -> {text}");
        assert_eq!(
            json_body(&text),
            json!({"statusCode": 404, "message": "Resource not found"})
        );
        assert_eq!(responses(&text), 1, "no tunnel: {text}");
    }
    assert!(lines(&seen).is_empty(), "{:?}", lines(&seen));
    still_serves(&app).await;
}

// ---- HTTP/2, as raw frames ----

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An HPACK string (no Huffman) with a 7-bit length prefix.
fn hpack_str(out: &mut Vec<u8>, s: &[u8]) {
    let n = s.len();
    if n < 127 {
        out.push(n as u8);
    } else {
        out.push(127);
        let mut rest = n - 127;
        while rest >= 128 {
            out.push((rest % 128 + 128) as u8);
            rest /= 128;
        }
        out.push(rest as u8);
    }
    out.extend_from_slice(s);
}

/// A header block for `GET path` plus `extra` literal headers.
fn get_block(path: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    // :method GET, :scheme http (static table 2 and 6).
    let mut b = vec![0x82, 0x86];
    // :path and :authority, literal without indexing, indexed names 4 and 1.
    b.push(0x04);
    hpack_str(&mut b, path.as_bytes());
    b.push(0x01);
    hpack_str(&mut b, b"h");
    for (n, v) in extra {
        b.push(0x00);
        hpack_str(&mut b, n.as_bytes());
        hpack_str(&mut b, v.as_bytes());
    }
    b
}

struct Frame {
    kind: u8,
    stream: u32,
    payload: Vec<u8>,
}

/// Reads frames until `stop` holds for one, the connection closes, or
/// `limit` passes.
async fn frames_until(
    s: &mut TcpStream,
    limit: Duration,
    stop: impl Fn(&Frame) -> bool,
) -> Vec<Frame> {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(limit, async {
        loop {
            let mut head = [0u8; 9];
            if s.read_exact(&mut head).await.is_err() {
                return;
            }
            let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
            let mut payload = vec![0u8; len];
            if s.read_exact(&mut payload).await.is_err() {
                return;
            }
            let f = Frame {
                kind: head[3],
                stream: u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff,
                payload,
            };
            let done = stop(&f);
            out.push(f);
            if done {
                return;
            }
        }
    })
    .await;
    out
}

const SETTINGS: u8 = 0x4;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const GOAWAY: u8 = 0x7;
const CONTINUATION: u8 = 0x9;

/// Opens an HTTP/2 connection (preface and empty SETTINGS sent).
async fn h2_open(app: &TestApp) -> TcpStream {
    let mut s = TcpStream::connect(addr(app)).await.unwrap();
    let mut hello = PREFACE.to_vec();
    hello.extend(frame(SETTINGS, 0, 0, &[]));
    s.write_all(&hello).await.unwrap();
    s
}

fn goaway_code(f: &Frame) -> u32 {
    u32::from_be_bytes([f.payload[4], f.payload[5], f.payload[6], f.payload[7]])
}

#[tokio::test]
async fn h2_settings_advertise_the_configured_limits() {
    let app = TestApp::spawn_with(|s| {
        s.gateway.max_concurrent_streams = 7;
        s.gateway.max_header_bytes = 20_000;
    })
    .await;
    let mut s = h2_open(&app).await;
    let got = frames_until(&mut s, Duration::from_secs(10), |f| f.kind == SETTINGS).await;
    let settings = got.iter().find(|f| f.kind == SETTINGS).expect("SETTINGS");
    let pairs: Vec<(u16, u32)> = settings
        .payload
        .chunks(6)
        .map(|c| {
            (
                u16::from_be_bytes([c[0], c[1]]),
                u32::from_be_bytes([c[2], c[3], c[4], c[5]]),
            )
        })
        .collect();
    // SETTINGS_MAX_CONCURRENT_STREAMS (3), SETTINGS_MAX_HEADER_LIST_SIZE (6).
    assert!(pairs.contains(&(3, 7)), "{pairs:?}");
    assert!(pairs.contains(&(6, 20_000)), "{pairs:?}");
}

#[tokio::test]
async fn h2_rapid_reset_gets_goaway() {
    let app = TestApp::spawn_with(|s| s.gateway.max_pending_reset_streams = 5).await;
    let (rec, seen) = recorder().await;
    two_apis(&app, &rec).await;
    let mut s = h2_open(&app).await;
    let block = get_block("/a/reset", &[]);
    let mut burst = Vec::new();
    for i in 0..2000u32 {
        let id = 2 * i + 1;
        // HEADERS with END_STREAM | END_HEADERS, then RST_STREAM(CANCEL).
        burst.extend(frame(HEADERS, 0x5, id, &block));
        burst.extend(frame(RST_STREAM, 0, id, &8u32.to_be_bytes()));
    }
    let _ = s.write_all(&burst).await;
    let got = frames_until(&mut s, Duration::from_secs(20), |f| f.kind == GOAWAY).await;
    let goaway = got.iter().find(|f| f.kind == GOAWAY).expect("GOAWAY");
    // ENHANCE_YOUR_CALM.
    assert_eq!(goaway_code(goaway), 0xb);
    assert!(seen.lock().unwrap().len() < 2000, "the flood was cut short");
    still_serves(&app).await;
}

#[tokio::test]
async fn h2_oversized_header_lists_are_431() {
    let app = TestApp::spawn_with(|s| s.gateway.max_header_bytes = 16 * 1024).await;
    let (rec, seen) = recorder().await;
    two_apis(&app, &rec).await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .no_proxy()
        .build()
        .unwrap();
    let big = "v".repeat(24 * 1024);
    let r = h2
        .get(format!("{}/a/big", app.gw))
        .header("x-big", &big)
        .send()
        .await;
    match r {
        Ok(r) => assert_eq!(r.status(), 431),
        Err(e) => panic!("expected a 431, got {e}"),
    }
    // Many small headers adding up over the limit: the same.
    let mut req = h2.get(format!("{}/a/many", app.gw));
    for i in 0..200 {
        req = req.header(format!("x-h{i}"), "v".repeat(100));
    }
    assert_eq!(req.send().await.unwrap().status(), 431);
    assert!(lines(&seen).is_empty(), "{:?}", lines(&seen));
    let r = h2.get(format!("{}/a/ok", app.gw)).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn h2_continuation_floods_get_goaway() {
    let app = TestApp::spawn().await;
    let (rec, seen) = recorder().await;
    two_apis(&app, &rec).await;
    let mut s = h2_open(&app).await;
    // HEADERS without END_HEADERS, then endless CONTINUATION frames.
    let mut burst = frame(HEADERS, 0x1, 1, &get_block("/a/cont", &[]));
    let mut piece = vec![0x00];
    hpack_str(&mut piece, b"x-c");
    hpack_str(&mut piece, "v".repeat(200).as_bytes());
    for _ in 0..5000 {
        burst.extend(frame(CONTINUATION, 0, 1, &piece));
    }
    let _ = s.write_all(&burst).await;
    let got = frames_until(&mut s, Duration::from_secs(20), |f| f.kind == GOAWAY).await;
    let goaway = got.iter().find(|f| f.kind == GOAWAY);
    assert!(
        goaway.is_some() || got.iter().any(|f| f.kind == RST_STREAM && f.stream == 1),
        "the flood is refused: {:?}",
        got.iter().map(|f| f.kind).collect::<Vec<_>>()
    );
    assert!(lines(&seen).is_empty(), "{:?}", lines(&seen));
    still_serves(&app).await;
}

#[tokio::test]
async fn a_deep_xml_body_fails_xml_to_json_without_crashing() {
    let app = TestApp::spawn().await;
    let (rec, seen) = recorder().await;
    two_apis(&app, &rec).await;
    let r = app
        .put_xml(
            "/apis/a/policy",
            r#"<policies><inbound><base /><xml-to-json kind="direct" apply="always" consider-accept-header="false" /></inbound></policies>"#,
        )
        .await;
    assert!(r.status().is_success());
    let deep = format!("{}{}", "<a>".repeat(200_000), "</a>".repeat(200_000));
    let r = app
        .client
        .post(format!("{}/a/deep", app.gw))
        .header("content-type", "application/xml")
        .body(deep)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v,
        json!({"statusCode": 500, "message": "Internal server error"})
    );
    assert!(lines(&seen).is_empty(), "{:?}", lines(&seen));
    // A shallow document still converts and goes on.
    let r = app
        .client
        .post(format!("{}/a/shallow", app.gw))
        .header("content-type", "application/xml")
        .body("<a><b>1</b></a>")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(lines(&seen), vec!["POST /base-a/shallow"]);
}

#[tokio::test]
async fn the_management_listener_refuses_header_floods() {
    let app = TestApp::spawn().await;
    let mgmt = app
        .mgmt
        .trim_start_matches("http://")
        .trim_end_matches("/mgmt");
    let mut s = TcpStream::connect(mgmt).await.unwrap();
    let mut req = format!(
        "GET /mgmt/apis HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer {}\r\n",
        common::ADMIN
    );
    for i in 0..1000 {
        req.push_str(&format!("X-H{i}: {i}\r\n"));
    }
    req.push_str("\r\n");
    let _ = s.write_all(req.as_bytes()).await;
    let text = read_all(&mut s, Duration::from_secs(10)).await;
    assert_eq!(status(&text), 431, "{text}");
    assert_eq!(app.get("/apis").await.status(), 200, "still serves");
}
