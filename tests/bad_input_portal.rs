//! Bad input at the developer portal: return-URL tricks, tampered session
//! cookies, password spraying from one address and HTML in product
//! descriptions. (Missing or forged CSRF tokens, per-account sign-in
//! throttling and HTML in API descriptions are covered in `portal.rs`,
//! `portal_account.rs` and `portal_catalog.rs`.)

mod common;

use common::portal::{hidden, Browser};
use common::TestApp;
use serde_json::json;

const PASSWORD: &str = "correct horse 42";

const EVIL: &[&str] = &[
    "//evil.example/",
    "/\\evil.example/",
    "\\\\evil.example/",
    "/\\/evil.example/",
    "https://evil.example/",
    "https:evil.example",
    "javascript:alert(1)",
    " //evil.example/",
    "/\t/evil.example/",
    "/x\r\nSet-Cookie: evil=1",
    "evil.example",
];

#[tokio::test]
async fn return_url_tricks_stay_on_the_portal() {
    let app = TestApp::spawn().await;
    let b = Browser::new(&app.portal);
    b.sign_up("rita@example.com", PASSWORD).await;
    for evil in EVIL {
        b.submit("/", "/signout", &[]).await;
        // The sign-in page never carries the target along.
        let page = b
            .get(&format!("/signin?returnUrl={}", percent_encode(evil)))
            .await;
        assert_eq!(page.status, 200);
        assert!(!page.body.contains("evil.example"), "{evil:?}");
        if let Some(kept) = hidden(&page.body, "returnUrl") {
            assert_eq!(kept, "/", "{evil:?}");
        }
        // Posted directly, it is replaced by the home page.
        let csrf = page.csrf();
        let r = b
            .post(
                "/signin",
                &[
                    ("email", "rita@example.com"),
                    ("password", PASSWORD),
                    ("returnUrl", evil),
                    ("csrf", &csrf),
                ],
            )
            .await;
        assert_eq!(r.status, 303, "{evil:?}: {}", r.body);
        assert_eq!(r.location.as_deref(), Some("/"), "{evil:?}");
        assert!(r
            .headers
            .get_all("set-cookie")
            .iter()
            .all(|c| !c.to_str().unwrap_or("").starts_with("evil")));
        // Signed in already: the sign-in page redirects, locally.
        let again = b
            .get(&format!("/signin?returnUrl={}", percent_encode(evil)))
            .await;
        assert_eq!(again.location.as_deref(), Some("/"), "{evil:?}");
    }
    // A local path is kept.
    b.submit("/", "/signout", &[]).await;
    let page = b.get("/signin?returnUrl=/products").await;
    let csrf = page.csrf();
    let r = b
        .post(
            "/signin",
            &[
                ("email", "rita@example.com"),
                ("password", PASSWORD),
                ("returnUrl", "/products"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(r.location.as_deref(), Some("/products"));
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn tampered_session_cookies_are_signed_out() {
    let app = TestApp::spawn().await;
    let b = Browser::new(&app.portal);
    let up = b.sign_up("tom@example.com", PASSWORD).await;
    let session = up
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|c| c.to_str().ok())
        .find_map(|c| c.strip_prefix("tp_session="))
        .map(|c| c.split(';').next().unwrap().to_string())
        .expect("a session cookie");
    let plain = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let profile = |cookie: String| {
        plain
            .get(format!("{}/profile", app.portal))
            .header("cookie", cookie)
            .send()
    };
    let ok = profile(format!("tp_session={session}")).await.unwrap();
    assert_eq!(ok.status(), 200);
    assert!(ok.text().await.unwrap().contains("tom@example.com"));

    let last = session.chars().last().unwrap();
    let flipped = format!(
        "{}{}",
        &session[..session.len() - 1],
        if last == 'A' { 'B' } else { 'A' }
    );
    let (claims, sig) = session.rsplit_once('.').expect("claims.signature");
    let mut tampered = vec![
        flipped,
        claims.to_string(),
        format!("{claims}."),
        format!(".{sig}"),
        format!("{session}x"),
        format!("x{session}"),
        format!("{claims}{claims}.{sig}"),
        String::new(),
        "A".repeat(8 * 1024),
        "....".into(),
        "%00%ff".into(),
    ];
    // Claims rewritten without the key: another uid, a later expiry.
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload = String::from_utf8(b64.decode(claims).unwrap()).unwrap();
    let fields: Vec<&str> = payload.split('\n').collect();
    assert_eq!(fields.len(), 3, "{payload}");
    for forged in [
        format!("admin\n{}\n{}", fields[1], fields[2]),
        format!("{}\n{}\n99999999999", fields[0], fields[1]),
        format!("{}\n{}\n{}\nextra", fields[0], fields[1], fields[2]),
    ] {
        tampered.push(format!("{}.{sig}", b64.encode(forged)));
    }
    for bad in tampered {
        let r = profile(format!("tp_session={bad}")).await.unwrap();
        let status = r.status();
        let location = r
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = r.text().await.unwrap();
        assert_eq!(status, 303, "{bad:.40}: {body}");
        assert!(location.starts_with("/signin"), "{bad:.40}: {location}");
        assert!(!body.contains("tom@example.com"), "{bad:.40}");
    }
    // The genuine cookie still works: nothing was invalidated.
    let ok = profile(format!("tp_session={session}")).await.unwrap();
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn password_spraying_from_one_address_is_throttled() {
    let app = TestApp::spawn().await;
    let owner = Browser::new(&app.portal);
    owner.sign_up("uma@example.com", PASSWORD).await;
    owner.submit("/", "/signout", &[]).await;
    // One address tries one password on many accounts.
    let b = Browser::new(&app.portal);
    for i in 0..5 {
        let r = b
            .sign_in(&format!("victim{i}@example.com"), "Summer2026!!")
            .await;
        assert_eq!(r.status, 401);
    }
    let blocked = b.sign_in("victim9@example.com", "Summer2026!!").await;
    assert_eq!(blocked.status, 429);
    assert!(blocked.headers.contains_key("retry-after"));
    // Even a right password from that address waits.
    let right = b.sign_in("uma@example.com", PASSWORD).await;
    assert_eq!(right.status, 429);
    assert!(right.location.is_none(), "not signed in");
    assert!(!b.get("/").await.body.contains("Signed in as"));
    assert_eq!(app.get_json("/users").await["count"], 1, "nothing created");
}

#[tokio::test]
async fn html_in_product_descriptions_is_escaped() {
    let app = TestApp::spawn().await;
    app.put_ok(
        "/products/p",
        json!({
            "displayName": "Gold <img src=x onerror=alert(1)>",
            "description": "Fast.<script>alert('x')</script> \"quoted\" & more",
            "state": "published",
            "subscriptionRequired": false
        }),
    )
    .await;
    app.put_ok("/products/p/groups/guests", json!({})).await;
    let b = Browser::new(&app.portal);
    for page in ["/products", "/products/p"] {
        let p = b.get(page).await;
        assert_eq!(p.status, 200, "{page}");
        assert!(!p.body.contains("<script>alert"), "{page}");
        assert!(!p.body.contains("<img src=x"), "{page}");
        if page == "/products/p" {
            assert!(
                p.body.contains("&lt;script&gt;") || p.body.contains("&#60;script&#62;"),
                "{page}: escaped, not dropped"
            );
        }
    }
}

#[tokio::test]
async fn sign_out_needs_a_post_with_its_csrf_token() {
    let app = TestApp::spawn().await;
    let b = Browser::new(&app.portal);
    b.sign_up("sam@example.com", PASSWORD).await;
    // A link or an image cannot sign anyone out.
    let r = b.get("/signout").await;
    assert_eq!(r.status, 405);
    // Nor can a cross-site form without the token, or with a forged one.
    assert_eq!(b.post("/signout", &[]).await.status, 403);
    assert_eq!(b.post("/signout", &[("csrf", "AAAA")]).await.status, 403);
    assert!(b
        .get("/")
        .await
        .body
        .contains("Signed in as sam@example.com"));
    assert_eq!(b.submit("/", "/signout", &[]).await.status, 303);
    assert!(!b.get("/").await.body.contains("Signed in as"));
}

#[tokio::test]
async fn oversized_and_malformed_forms_are_refused() {
    let app = TestApp::spawn().await;
    let b = Browser::new(&app.portal);
    let csrf = b.get("/signup").await.csrf();
    let huge = "a".repeat(3 << 20);
    let r = b
        .post(
            "/signup",
            &[
                ("email", &format!("{huge}@example.com")),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(r.status, 413, "{}", &r.body[..r.body.len().min(200)]);
    // Not a form at all.
    let r = b
        .client
        .post(format!("{}/signup", b.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(&b"\xff\xfe%%%=&&=\x00"[..])
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    assert!(status == 400 || status == 403 || status == 422, "{status}");
    assert_eq!(app.get_json("/users").await["count"], 0, "nothing created");
    assert_eq!(b.get("/").await.status, 200, "still serves");
}
