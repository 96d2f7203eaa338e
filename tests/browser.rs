//! The developer's whole journey in a real headless Chromium.

mod common;

use common::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_in_the_browser() {
    let Some(b) = common::chrome::start().await else {
        return;
    };
    let app = TestApp::spawn().await;
    let portal = &app.portal;
    b.goto(&format!("{portal}/")).await;
    assert!(b.text("h1").await.contains("Build with our APIs"));
    b.shot("home").await;
    b.click("a[href='/signup'].button").await;
    b.fill("#email", "grace@example.com").await;
    b.fill("#firstName", "Grace").await;
    b.fill("#lastName", "Hopper").await;
    b.fill("#password", "compilers 1952").await;
    b.fill("#confirm", "compilers 1952").await;
    b.shot("signup").await;
    b.click("form.form button[type=submit]").await;
    b.css("footer").await;
    assert!(b.page().await.contains("Signed in as grace@example.com"));
    b.close().await;
}
