//! The developer portal through real sockets: pages, sign-up, sign-in,
//! CSRF, throttling.

mod common;

use common::portal::Browser;
use common::TestApp;
use serde_json::json;

const PASSWORD: &str = "correct horse 42";

#[tokio::test]
async fn home_and_static_assets_are_served() {
    let app = TestApp::spawn().await;
    let b = Browser::new(&app.portal);
    let home = b.get("/").await;
    assert_eq!(home.status, 200);
    assert!(home.body.contains("Build with our APIs"), "{}", home.body);
    assert!(home.body.contains("href=\"/signup\""));
    let csp = home.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"));
    let set = home.headers.get_all("set-cookie").iter().count();
    assert_eq!(set, 1, "a CSRF cookie is handed out");
    let css = b.get("/static/portal.css").await;
    assert_eq!(css.status, 200);
    assert!(css.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
    assert_eq!(b.get("/static/nope.css").await.status, 404);
    let missing = b.get("/no/such/page").await;
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("Not found"));
}

#[tokio::test]
async fn sign_up_sign_out_sign_in() {
    let app = TestApp::spawn().await;
    let b = Browser::new(&app.portal);
    let r = b.sign_up("ada@example.com", PASSWORD).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location.as_deref(), Some("/profile"));
    let home = b.get("/").await;
    assert!(home.body.contains("Signed in as ada@example.com"));
    // The user exists in the management API, as a developer, without any
    // password in sight.
    let users = app.get_json("/users").await;
    let user = &users["value"][0];
    assert_eq!(user["email"], "ada@example.com");
    assert!(user.get("password").is_none());
    let uid = user["id"].as_str().unwrap();
    let groups = app.get_json(&format!("/users/{uid}/groups")).await;
    assert!(groups.to_string().contains("developers"));

    let out = b.submit("/", "/signout", &[]).await;
    assert_eq!(out.status, 303);
    assert!(!b.get("/").await.body.contains("Signed in as"));

    let wrong = b.sign_in("ada@example.com", "wrong password 1").await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("wrong"));
    let ok = b.sign_in("ADA@example.com", PASSWORD).await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert!(b
        .get("/")
        .await
        .body
        .contains("Signed in as ada@example.com"));

    // The same email cannot sign up twice.
    let other = Browser::new(&app.portal);
    let dup = other.sign_up("ada@example.com", PASSWORD).await;
    assert_eq!(dup.status, 409);
}

#[tokio::test]
async fn forms_without_a_valid_csrf_token_are_refused() {
    let app = TestApp::spawn().await;
    let b = Browser::new(&app.portal);
    b.get("/signup").await;
    let fields = [
        ("email", "eve@example.com"),
        ("password", PASSWORD),
        ("confirm", PASSWORD),
    ];
    let none = b.post("/signup", &fields).await;
    assert_eq!(none.status, 403);
    let mut forged = fields.to_vec();
    forged.push(("csrf", "AAAA"));
    assert_eq!(b.post("/signup", &forged).await.status, 403);
    // A token from another visitor's cookie does not work either.
    let other = Browser::new(&app.portal);
    let theirs = other.get("/signup").await.csrf();
    let mut stolen = fields.to_vec();
    stolen.push(("csrf", &theirs));
    assert_eq!(b.post("/signup", &stolen).await.status, 403);
    assert_eq!(app.get_json("/users").await["count"], 0, "nothing created");
}

#[tokio::test]
async fn bad_passwords_and_emails_are_explained() {
    let app = TestApp::spawn().await;
    let b = Browser::new(&app.portal);
    let short = b.sign_up("bob@example.com", "short1").await;
    assert_eq!(short.status, 400);
    assert!(short.body.contains("at least 10 characters"));
    let bad = b.sign_up("not-an-email", PASSWORD).await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("valid email"));
    assert_eq!(app.get_json("/users").await["count"], 0);
}

#[tokio::test]
async fn sign_in_attempts_are_throttled() {
    let app = TestApp::spawn().await;
    let b = Browser::new(&app.portal);
    b.sign_up("cy@example.com", PASSWORD).await;
    let b = Browser::new(&app.portal);
    for _ in 0..5 {
        assert_eq!(
            b.sign_in("cy@example.com", "bad password 9").await.status,
            401
        );
    }
    let blocked = b.sign_in("cy@example.com", PASSWORD).await;
    assert_eq!(blocked.status, 429, "even the right password waits");
    assert!(blocked.headers.contains_key("retry-after"));
    assert!(blocked.body.contains("Too many"));
}

#[tokio::test]
async fn return_urls_never_leave_the_portal() {
    let app = TestApp::spawn().await;
    let b = Browser::new(&app.portal);
    b.sign_up("dee@example.com", PASSWORD).await;
    b.submit("/", "/signout", &[]).await;
    let page = b.get("/signin?returnUrl=https://evil.example/x").await;
    assert!(!page.body.contains("evil.example"));
    let csrf = page.csrf();
    let r = b
        .post(
            "/signin",
            &[
                ("email", "dee@example.com"),
                ("password", PASSWORD),
                ("returnUrl", "//evil.example/"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(r.location.as_deref(), Some("/"));
}

#[tokio::test]
async fn management_sets_passwords_and_a_new_password_ends_sessions() {
    let app = TestApp::spawn().await;
    let r = app
        .put(
            "/users/admin1",
            json!({"email": "root@example.com", "password": "short"}),
        )
        .await;
    assert_eq!(r.status(), 400);
    app.put_ok(
        "/users/admin1",
        json!({"email": "root@example.com", "password": PASSWORD}),
    )
    .await;
    let shown = app.get_json("/users/admin1").await;
    assert!(shown.get("password").is_none());
    let b = Browser::new(&app.portal);
    assert_eq!(b.sign_in("root@example.com", PASSWORD).await.status, 303);
    assert!(b.get("/").await.body.contains("Signed in as"));
    app.put_ok(
        "/users/admin1",
        json!({"email": "root@example.com", "password": "another pass 7"}),
    )
    .await;
    assert!(
        !b.get("/").await.body.contains("Signed in as"),
        "the old session is gone"
    );
}

#[tokio::test]
async fn require_sign_in_sends_anonymous_visitors_to_the_sign_in_page() {
    let app = TestApp::spawn_with(|s| s.portal.require_sign_in = true).await;
    let b = Browser::new(&app.portal);
    let r = b.get("/apis?q=pets").await;
    assert_eq!(r.status, 303);
    assert_eq!(
        r.location.as_deref(),
        Some("/signin?returnUrl=%2Fapis%3Fq%3Dpets")
    );
    assert_eq!(b.get("/signin").await.status, 200);
    assert_eq!(b.get("/signup").await.status, 200);
    assert_eq!(b.get("/static/portal.css").await.status, 200);
    let up = b.sign_up("fay@example.com", PASSWORD).await;
    assert_eq!(up.status, 303);
    assert_eq!(b.get("/apis?q=pets").await.status, 200);
}
