//! Subscribing, showing and regenerating keys, and the admin corner in a
//! real headless Chromium (no JavaScript involved: forms and `<details>`).

mod common;

use common::TestApp;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_show_and_regenerate_keys_in_the_browser() {
    let Some(b) = common::chrome::start().await else {
        return;
    };
    let app = TestApp::spawn().await;
    app.api("echo", "echo", &app.echo_url()).await;
    app.put_ok(
        "/products/gold",
        json!({"displayName": "Gold", "state": "published",
               "description": "Everything, fast.", "terms": "Be kind to the backend.",
               "subscriptionsLimit": 2}),
    )
    .await;
    app.put_ok("/products/gold/apis/echo", json!({})).await;
    app.put_ok(
        "/products/vip",
        json!({"displayName": "VIP", "state": "published", "approvalRequired": true}),
    )
    .await;
    app.put_ok("/products/vip/apis/echo", json!({})).await;
    for p in ["gold", "vip"] {
        for g in ["guests", "developers"] {
            app.put_ok(&format!("/products/{p}/groups/{g}"), json!({}))
                .await;
        }
    }
    app.put_ok("/gateways/west", json!({"locationData": {"name": "West"}}))
        .await;
    let portal = &app.portal;

    b.goto(&format!("{portal}/products")).await;
    b.shot("products").await;
    b.click("a[href='/products/gold']").await;
    b.wait_url("/products/gold").await;
    assert_eq!(b.text("h1").await, "Gold");
    b.click("a[href='/signup?returnUrl=/products/gold']").await;
    b.wait_url("/signup?returnUrl=/products/gold").await;
    b.fill("#email", "grace@example.com").await;
    b.fill("#password", "compilers 1952").await;
    b.fill("#confirm", "compilers 1952").await;
    b.click("form.form button[type=submit]").await;
    b.wait_url("/products/gold").await; // back where they came from
    b.fill("#sub-name", "Grace's app").await;
    b.click("#subscribe input[name=acceptTerms]").await;
    b.shot("product").await;
    b.click("#subscribe button[type=submit]").await;
    b.wait_url("/profile?done=subscribed").await;
    assert!(b.text("p.notice").await.contains("You are subscribed"));

    let sid = b
        .css("li.sub")
        .await
        .attr("id")
        .await
        .unwrap()
        .unwrap()
        .trim_start_matches("sub-")
        .to_string();
    let key_sel = format!("#key-primary-{sid}");
    assert_eq!(b.text(&key_sel).await, "", "hidden until shown");
    b.click(&format!("#sub-{sid} tr:first-child summary")).await;
    let key = b.text(&key_sel).await;
    assert_eq!(key.len(), 32, "{key}");
    b.shot("profile").await;
    assert_eq!(app.call("/echo/hi", Some(&key)).await.status(), 200);

    b.click(&format!(
        "#sub-{sid} form.regenerate button[name=key][value=primary]"
    ))
    .await;
    b.wait_url("/profile?done=regenerated").await;
    assert!(b.text("p.notice").await.contains("new key"));
    b.click(&format!("#sub-{sid} tr:first-child summary")).await;
    let new_key = b.text(&key_sel).await;
    assert_ne!(new_key, key);
    assert_eq!(app.call("/echo/hi", Some(&key)).await.status(), 401);
    assert_eq!(app.call("/echo/hi", Some(&new_key)).await.status(), 200);

    // A request for the VIP product waits for an administrator.
    b.goto(&format!("{portal}/products/vip")).await;
    b.click("#subscribe button[type=submit]").await;
    b.wait_url("/profile?done=requested").await;
    assert!(b.text("p.notice").await.contains("request was sent"));
    b.shot("profile-pending").await;
    b.client.set_window_size(390, 900).await.unwrap();
    b.shot("profile-narrow").await;
    b.client.set_window_size(1280, 1000).await.unwrap();

    app.put_ok(
        "/users/boss",
        json!({"email": "boss@example.com", "password": "boss password 1"}),
    )
    .await;
    app.put_ok("/groups/administrators/users/boss", json!({}))
        .await;
    b.click("button.link").await; // sign out
    b.wait_url("/").await;
    b.goto(&format!("{portal}/signin")).await;
    b.fill("#email", "boss@example.com").await;
    b.fill("#password", "boss password 1").await;
    b.click("form.form button[type=submit]").await;
    b.wait_url("/").await;
    b.goto(&format!("{portal}/admin")).await;
    assert_eq!(b.text("h1").await, "Admin");
    assert!(b.text("#pending").await.contains("grace@example.com"));
    assert!(b.text("#gateways").await.contains("West"));
    b.shot("admin").await;
    b.client.set_window_size(390, 900).await.unwrap();
    b.shot("admin-narrow").await;
    b.client.set_window_size(1280, 1000).await.unwrap();
    b.click("#pending form.approve button").await;
    b.wait_url("/admin?done=approved").await;
    assert!(b.text("p.notice").await.contains("approved"));
    b.close().await;
}
