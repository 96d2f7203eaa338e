//! The developer portal's browser-facing hardening, through real sockets:
//! security headers on every kind of response (pages, assets, errors,
//! redirects), pages that need no inline script or style (so the CSP
//! holds), cookie flags, and the admin corner refusing anyone but an
//! administrator. (`Secure` cookies over TLS: `tests/tls_listeners.rs`.)

mod common;

use common::portal::{Browser, Page};
use common::TestApp;
use serde_json::json;

const PASSWORD: &str = "correct horse 42";

/// The headers every portal response carries, whatever produced it.
fn assert_security_headers(p: &Page, what: &str) {
    let h = &p.headers;
    let csp = h
        .get("content-security-policy")
        .unwrap_or_else(|| panic!("{what}: no CSP"))
        .to_str()
        .unwrap();
    let directives: Vec<&str> = csp.split(';').map(str::trim).collect();
    for d in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
        "base-uri 'none'",
    ] {
        assert!(directives.contains(&d), "{what}: {d:?} missing from {csp}");
    }
    for weak in ["unsafe-inline", "unsafe-eval", "*"] {
        assert!(
            !directives
                .iter()
                .any(|d| d.split_whitespace().skip(1).any(|s| s.contains(weak))),
            "{what}: {weak} in {csp}"
        );
    }
    assert_eq!(h["x-frame-options"], "DENY", "{what}");
    assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(h["referrer-policy"], "same-origin", "{what}");
}

/// An HTML page the CSP above does not break: no inline script, no event
/// handler attribute, no inline style, no `javascript:` URL.
fn assert_no_inline_code(p: &Page, what: &str) {
    let html = p.body.to_ascii_lowercase();
    for (at, _) in html.match_indices("<script") {
        let tag = &html[at..at + html[at..].find('>').unwrap_or(0)];
        assert!(
            tag.contains(" src=\"/static/"),
            "{what}: inline script {tag}"
        );
    }
    assert!(!html.contains(" style=\""), "{what}: an inline style");
    assert!(!html.contains("javascript:"), "{what}: a javascript: URL");
    let bytes = html.as_bytes();
    for (at, _) in html.match_indices(" on") {
        let name: String = html[at + 3..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase())
            .collect();
        let after = bytes.get(at + 3 + name.len()).copied();
        assert!(
            name.is_empty() || after != Some(b'='),
            "{what}: an event handler attribute on{name}="
        );
    }
}

/// Parses one `Set-Cookie` value: its name and lowercase attributes.
fn cookie_attrs(value: &str) -> (String, Vec<String>) {
    let mut parts = value.split(';').map(str::trim);
    let name = parts.next().unwrap().split('=').next().unwrap().to_string();
    (name, parts.map(str::to_ascii_lowercase).collect())
}

/// The `Set-Cookie` values of `p` for cookie `name`.
fn set_cookies(p: &Page, name: &str) -> Vec<Vec<String>> {
    p.headers
        .get_all("set-cookie")
        .iter()
        .map(|v| cookie_attrs(v.to_str().unwrap()))
        .filter(|(n, _)| n == name)
        .map(|(_, a)| a)
        .collect()
}

fn assert_cookie_flags(attrs: &[String], what: &str) {
    assert!(attrs.iter().any(|a| a == "httponly"), "{what}: {attrs:?}");
    assert!(
        attrs
            .iter()
            .any(|a| a == "samesite=lax" || a == "samesite=strict"),
        "{what}: {attrs:?}"
    );
    assert!(attrs.iter().any(|a| a == "path=/"), "{what}: {attrs:?}");
    // Plain HTTP here: `Secure` would make the browser drop the cookie.
    assert!(!attrs.iter().any(|a| a == "secure"), "{what}: {attrs:?}");
}

#[tokio::test]
async fn every_portal_response_carries_the_security_headers() {
    let app = TestApp::spawn().await;
    app.standard().await;
    for g in ["guests", "developers"] {
        app.put_ok(&format!("/products/starter/groups/{g}"), json!({}))
            .await;
    }
    let b = Browser::new(&app.portal);
    let anon: &[(&str, u16)] = &[
        ("/", 200),
        ("/signin", 200),
        ("/signup", 200),
        ("/apis", 200),
        ("/apis/echo", 200),
        ("/apis/echo/operations/all", 200),
        ("/products", 200),
        ("/products/starter", 200),
        ("/static/portal.css", 200),
        ("/static/console.js", 200),
        ("/static/logo.svg", 200),
        ("/static/nope.css", 404),
        ("/no/such/page", 404),
        ("/apis/nope", 404),
        ("/profile", 303),
        ("/admin", 303),
        ("/products/starter/subscribe", 405),
    ];
    for (path, status) in anon {
        let p = b.get(path).await;
        assert_eq!(p.status.as_u16(), *status, "GET {path}: {}", p.body);
        assert_security_headers(&p, &format!("GET {path}"));
        let html = p
            .headers
            .get("content-type")
            .is_some_and(|c| c.to_str().unwrap().starts_with("text/html"));
        if html {
            assert_no_inline_code(&p, &format!("GET {path}"));
        }
    }
    // Refused forms: no CSRF token, a wrong one.
    for (path, fields) in [
        (
            "/signin",
            vec![("email", "a@example.com"), ("password", "x")],
        ),
        ("/signout", vec![("csrf", "forged")]),
        ("/products/starter/subscribe", vec![("name", "x")]),
    ] {
        let p = b.post(path, &fields).await;
        assert!(
            p.status.is_client_error() || p.status.is_redirection(),
            "POST {path}: {}",
            p.status
        );
        assert_security_headers(&p, &format!("POST {path}"));
    }
    // Signed in: the pages with keys and reports.
    assert_eq!(b.sign_up("ada@example.com", PASSWORD).await.status, 303);
    for path in ["/", "/profile", "/reports", "/products/starter", "/admin"] {
        let p = b.get(path).await;
        assert!(
            p.status.as_u16() == 200 || p.status.as_u16() == 403,
            "GET {path}: {}",
            p.status
        );
        assert_security_headers(&p, &format!("signed in, GET {path}"));
        assert_no_inline_code(&p, &format!("signed in, GET {path}"));
    }
    let p = b
        .submit(
            "/products/starter",
            "/products/starter/subscribe",
            &[("name", "mine")],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert_security_headers(&p, "the subscribe redirect");

    // "Require sign-in to browse" redirects carry them too.
    let closed = TestApp::spawn_with(|s| s.portal.require_sign_in = true).await;
    let p = Browser::new(&closed.portal).get("/apis").await;
    assert_eq!(p.status, 303);
    assert!(p.location.as_deref().unwrap().starts_with("/signin"));
    assert_security_headers(&p, "the sign-in redirect");
}

#[tokio::test]
async fn cookies_are_http_only_same_site_and_site_wide() {
    let app = TestApp::spawn().await;
    let b = Browser::new(&app.portal);
    let first = b.get("/").await;
    let csrf = set_cookies(&first, "tp_csrf");
    assert_eq!(csrf.len(), 1, "a CSRF cookie on the first visit");
    assert_cookie_flags(&csrf[0], "tp_csrf");
    // Handed out once: the next page reuses it.
    assert!(set_cookies(&b.get("/").await, "tp_csrf").is_empty());

    let signed_up = b.sign_up("ada@example.com", PASSWORD).await;
    let session = set_cookies(&signed_up, "tp_session");
    assert_eq!(session.len(), 1, "sign-up signs in");
    assert_cookie_flags(&session[0], "tp_session (sign-up)");

    let out = b.submit("/", "/signout", &[]).await;
    let cleared = set_cookies(&out, "tp_session");
    assert_eq!(cleared.len(), 1);
    assert_cookie_flags(&cleared[0], "tp_session (sign-out)");
    assert!(cleared[0].iter().any(|a| a == "max-age=0"), "{cleared:?}");

    let back = b.sign_in("ada@example.com", PASSWORD).await;
    assert_eq!(back.status, 303, "{}", back.body);
    let session = set_cookies(&back, "tp_session");
    assert_eq!(session.len(), 1);
    assert_cookie_flags(&session[0], "tp_session (sign-in)");
}

/// A subscription of `uid` to `starter` awaiting approval.
async fn pending(app: &TestApp, sid: &str, uid: &str) {
    app.put_ok(
        &format!("/subscriptions/{sid}"),
        json!({"scope": "/products/starter", "state": "submitted", "ownerId": format!("/users/{uid}")}),
    )
    .await;
}

async fn state_of(app: &TestApp, sid: &str) -> String {
    app.get_json(&format!("/subscriptions/{sid}")).await["state"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn the_admin_corner_needs_an_administrator() {
    let app = TestApp::spawn().await;
    app.standard().await;
    let dev = Browser::new(&app.portal);
    assert_eq!(dev.sign_up("dev@example.com", PASSWORD).await.status, 303);
    let users = app.get_json("/users").await;
    let uid = users["value"][0]["id"].as_str().unwrap().to_string();
    pending(&app, "p1", &uid).await;
    let actions = [
        "/admin/subscriptions/p1/approve",
        "/admin/subscriptions/p1/reject",
    ];

    // Anonymous: sent to sign in, even with a valid CSRF token.
    let anon = Browser::new(&app.portal);
    let p = anon.get("/admin").await;
    assert_eq!(p.status, 303);
    assert!(p.location.as_deref().unwrap().starts_with("/signin"));
    for action in actions {
        let p = anon.submit("/signin", action, &[]).await;
        assert_eq!(p.status, 303, "{action}");
        assert!(
            p.location.as_deref().unwrap().starts_with("/signin"),
            "{action}"
        );
    }

    // A signed-in developer: 403, even with a valid CSRF token.
    let p = dev.get("/admin").await;
    assert_eq!(p.status, 403);
    assert!(!p.body.contains("dev@example.com</td>"), "no user list");
    for action in actions {
        let p = dev.submit("/profile", action, &[("comment", "no")]).await;
        assert_eq!(p.status, 403, "{action}: {}", p.body);
    }
    assert_eq!(state_of(&app, "p1").await, "submitted");

    // An administrator: the page, and decisions only with the CSRF token.
    app.put_ok(
        "/users/boss",
        json!({"email": "boss@example.com", "password": "boss password 1"}),
    )
    .await;
    app.put_ok("/groups/administrators/users/boss", json!({}))
        .await;
    let boss = Browser::new(&app.portal);
    assert_eq!(
        boss.sign_in("boss@example.com", "boss password 1")
            .await
            .status,
        303
    );
    let page = boss.get("/admin").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("dev@example.com"));
    let p = boss.post(actions[0], &[("csrf", "forged")]).await;
    assert_eq!(p.status, 403, "a forged CSRF token");
    assert_eq!(state_of(&app, "p1").await, "submitted");
    let p = boss.submit("/admin", actions[0], &[]).await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(state_of(&app, "p1").await, "active");
}
