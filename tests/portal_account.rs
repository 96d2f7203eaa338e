//! The developer portal's products, subscriptions, profile and admin
//! corner through real sockets: a browser-like client drives the forms,
//! the gateway is called with the keys the profile shows, and the
//! management API checks what was stored.

mod common;

use common::portal::Browser;
use common::TestApp;
use serde_json::{json, Value};

const PASSWORD: &str = "correct horse 42";

/// An echo API in a published product that developers see, with `extra`
/// product properties.
async fn dev_product(app: &TestApp, id: &str, extra: Value) {
    if app.get(&format!("/apis/{id}-api")).await.status() == 404 {
        app.api(&format!("{id}-api"), id, &app.echo_url()).await;
    }
    let mut body = json!({"displayName": format!("Product {id}"), "state": "published",
        "description": format!("The {id} product.")});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    app.put_ok(&format!("/products/{id}"), body).await;
    app.put_ok(&format!("/products/{id}/apis/{id}-api"), json!({}))
        .await;
    app.put_ok(&format!("/products/{id}/groups/developers"), json!({}))
        .await;
}

/// A signed-up developer's browser.
async fn developer(app: &TestApp, email: &str) -> Browser {
    let b = Browser::new(&app.portal);
    let r = b.sign_up(email, PASSWORD).await;
    assert_eq!(r.status, 303, "{}", r.body);
    b
}

/// A portal administrator made through the management API, signed in.
async fn administrator(app: &TestApp) -> Browser {
    app.put_ok(
        "/users/boss",
        json!({"email": "boss@example.com", "firstName": "Big", "lastName": "Boss", "password": PASSWORD}),
    )
    .await;
    let r = app
        .put("/groups/administrators/users/boss", json!({}))
        .await;
    assert_eq!(r.status(), 201, "a built-in group takes members");
    let b = Browser::new(&app.portal);
    assert_eq!(b.sign_in("boss@example.com", PASSWORD).await.status, 303);
    b
}

async fn uid_of(app: &TestApp, email: &str) -> String {
    let users = app.get_json("/users").await;
    users["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == email)
        .and_then(|u| u["id"].as_str())
        .unwrap()
        .to_string()
}

async fn subscription(app: &TestApp, sid: &str) -> Value {
    app.get_json(&format!("/subscriptions/{sid}")).await
}

async fn status_with(app: &TestApp, path: &str, key: &str) -> u16 {
    app.call(path, Some(key)).await.status().as_u16()
}

#[tokio::test]
async fn sign_up_subscribe_call_and_regenerate() {
    let app = TestApp::spawn().await;
    dev_product(&app, "gold", json!({})).await;
    let b = developer(&app, "ada@example.com").await;
    b.submit("/", "/signout", &[]).await;
    assert_eq!(b.sign_in("ada@example.com", PASSWORD).await.status, 303);

    // The product's page shows its API, and the subscribe form.
    let page = b.get("/products/gold").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("href=\"/apis/gold-api\""),
        "{}",
        page.body
    );
    assert!(page.has_id("subscribe"));
    assert!(page.body.contains("No limit"));

    let r = b.subscribe("gold", "My <app>", false).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location.as_deref(), Some("/profile?done=subscribed"));
    let profile = b.get("/profile?done=subscribed").await;
    assert_eq!(profile.status, 200);
    assert_eq!(profile.headers["cache-control"], "no-store");
    assert!(profile.body.contains("You are subscribed"));
    assert!(profile.body.contains("My &#60;app&#62;") || profile.body.contains("My &lt;app&gt;"));
    assert!(!profile.body.contains("My <app>"), "names are escaped");
    let sids = profile.ids_with_prefix("sub-");
    assert_eq!(sids.len(), 1, "{}", profile.body);
    let sid = &sids[0];

    // What was stored: owned by the user, on the product, active.
    let uid = uid_of(&app, "ada@example.com").await;
    let stored = subscription(&app, sid).await;
    assert_eq!(stored["ownerId"], format!("/users/{uid}"));
    assert_eq!(stored["scope"], "/products/gold");
    assert_eq!(stored["state"], "active");
    assert_eq!(stored["displayName"], "My <app>");

    let (primary, secondary) = b.keys(sid).await.expect("keys are shown");
    assert_eq!(primary.len(), 32);
    assert_eq!(primary, app.key_of(sid).await);
    assert_eq!(status_with(&app, "/gold/hello", &primary).await, 200);
    assert_eq!(status_with(&app, "/gold/hello", &secondary).await, 200);

    // Regenerate the primary key: the old one stops at once, the new one
    // and the untouched secondary work.
    let r = b
        .submit(
            "/profile",
            &format!("/subscriptions/{sid}/regenerate"),
            &[("key", "primary")],
        )
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location.as_deref(), Some("/profile?done=regenerated"));
    let (new_primary, same_secondary) = b.keys(sid).await.unwrap();
    assert_ne!(new_primary, primary);
    assert_eq!(same_secondary, secondary);
    assert_eq!(status_with(&app, "/gold/hello", &primary).await, 401);
    assert_eq!(status_with(&app, "/gold/hello", &new_primary).await, 200);

    b.submit(
        "/profile",
        &format!("/subscriptions/{sid}/regenerate"),
        &[("key", "secondary")],
    )
    .await;
    let (p2, new_secondary) = b.keys(sid).await.unwrap();
    assert_eq!(p2, new_primary);
    assert_ne!(new_secondary, secondary);
    assert_eq!(status_with(&app, "/gold/hello", &secondary).await, 401);
    assert_eq!(status_with(&app, "/gold/hello", &new_secondary).await, 200);

    // Neither an unknown key name nor an unknown notice code is echoed.
    let bad = b
        .submit(
            "/profile",
            &format!("/subscriptions/{sid}/regenerate"),
            &[("key", "tertiary")],
        )
        .await;
    assert_eq!(bad.status, 400);
    let odd = b.get("/profile?done=%3Cscript%3Ealert(1)").await;
    assert!(!odd.body.contains("alert(1)"));
    assert!(!odd.body.contains("class=\"notice\""));
}

#[tokio::test]
async fn keys_are_shown_only_to_their_owner() {
    let app = TestApp::spawn().await;
    dev_product(&app, "gold", json!({})).await;
    let b = developer(&app, "ada@example.com").await;
    b.subscribe("gold", "", false).await;
    let sid = b.subscription_ids().await.remove(0);
    let key = app.key_of(&sid).await;
    // An empty name takes the product's.
    assert_eq!(
        subscription(&app, &sid).await["displayName"],
        "Product gold"
    );
    for page in ["/", "/products", "/products/gold"] {
        assert!(!b.get(page).await.body.contains(&key), "{page}");
    }
    let other = developer(&app, "bob@example.com").await;
    assert!(!other.get("/profile").await.body.contains(&key));
    let admin = administrator(&app).await;
    assert!(!admin.get("/admin").await.body.contains(&key));
    // Anonymous visitors are sent to sign in.
    let anon = Browser::new(&app.portal);
    let r = anon.get("/profile").await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location.as_deref(), Some("/signin?returnUrl=%2Fprofile"));
}

#[tokio::test]
async fn approval_required_products_wait_for_an_administrator() {
    let app = TestApp::spawn().await;
    dev_product(&app, "vip", json!({"approvalRequired": true})).await;
    let dev = developer(&app, "dev@example.com").await;
    let page = dev.get("/products/vip").await;
    assert!(page.body.contains("Request a subscription"));
    let r = dev.subscribe("vip", "Needs approval", false).await;
    assert_eq!(r.location.as_deref(), Some("/profile?done=requested"));
    let profile = dev.get("/profile").await;
    assert!(profile.body.contains("Awaiting approval"));
    let sid = profile.ids_with_prefix("sub-").remove(0);
    assert!(!profile.has_id(&format!("key-primary-{sid}")), "no key yet");
    assert_eq!(subscription(&app, &sid).await["state"], "submitted");
    let key = app.key_of(&sid).await;
    assert!(!profile.body.contains(&key));
    assert_eq!(status_with(&app, "/vip/x", &key).await, 401);

    // The administrator sees the request and approves it.
    let admin = administrator(&app).await;
    let corner = admin.get("/admin").await;
    assert_eq!(corner.status, 200);
    assert!(corner.has_id(&format!("pending-{sid}")), "{}", corner.body);
    assert!(corner.body.contains("dev@example.com"));
    assert!(corner.body.contains("Product vip"));
    assert!(corner.body.contains("Needs approval"));
    let r = admin
        .submit(
            "/admin",
            &format!("/admin/subscriptions/{sid}/approve"),
            &[],
        )
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location.as_deref(), Some("/admin?done=approved"));
    let after = admin.get("/admin?done=approved").await;
    assert!(after.body.contains("approved"));
    assert!(after.has_id("no-pending"));
    assert_eq!(subscription(&app, &sid).await["state"], "active");
    assert_eq!(status_with(&app, "/vip/x", &key).await, 200);
    let (primary, _) = dev.keys(&sid).await.expect("keys once approved");
    assert_eq!(primary, key);
    // Approving twice is refused.
    let again = admin
        .submit(
            "/admin",
            &format!("/admin/subscriptions/{sid}/approve"),
            &[],
        )
        .await;
    assert_eq!(again.status, 409);

    // A second request is rejected with a reason the developer sees.
    dev.subscribe("vip", "Second", false).await;
    let uid = uid_of(&app, "dev@example.com").await;
    let subs = app.get_json(&format!("/users/{uid}/subscriptions")).await;
    let second = subs["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["state"] == "submitted")
        .and_then(|s| s["id"].as_str())
        .unwrap()
        .to_string();
    let second_key = app.key_of(&second).await;
    let r = admin
        .submit(
            "/admin",
            &format!("/admin/subscriptions/{second}/reject"),
            &[("comment", "One <b>per</b> team, please")],
        )
        .await;
    assert_eq!(r.location.as_deref(), Some("/admin?done=rejected"));
    let stored = subscription(&app, &second).await;
    assert_eq!(stored["state"], "rejected");
    assert_eq!(stored["stateComment"], "One <b>per</b> team, please");
    assert_eq!(status_with(&app, "/vip/x", &second_key).await, 401);
    let profile = dev.get("/profile").await;
    assert!(profile.body.contains("Rejected"));
    assert!(!profile.body.contains("<b>per</b>"), "comments are escaped");
    assert!(profile.body.contains("team, please"));
}

#[tokio::test]
async fn subscriptions_limit_is_enforced_even_under_concurrency() {
    let app = TestApp::spawn().await;
    dev_product(&app, "one", json!({"subscriptionsLimit": 1})).await;
    let b = developer(&app, "ada@example.com").await;
    assert!(b
        .get("/products/one")
        .await
        .body
        .contains("1 subscription per developer"));
    // Two subscribes at once: exactly one wins.
    let csrf = b.get("/products/one").await.csrf();
    let form = [("name", "race"), ("csrf", csrf.as_str())];
    let (x, y) = tokio::join!(
        b.post("/products/one/subscribe", &form),
        b.post("/products/one/subscribe", &form)
    );
    let mut statuses = [x.status.as_u16(), y.status.as_u16()];
    statuses.sort();
    assert_eq!(statuses, [303, 409]);
    let refused = if x.status == 409 { &x } else { &y };
    assert!(refused.body.contains("its limit"), "{}", refused.body);
    let sids = b.subscription_ids().await;
    assert_eq!(sids.len(), 1);
    // The page says so instead of offering the form.
    let page = b.get("/products/one").await;
    assert!(!page.has_id("subscribe"));
    assert!(page.body.contains("its limit"));
    // Cancelling gives the place back.
    let r = b
        .submit(
            "/profile",
            &format!("/subscriptions/{}/cancel", sids[0]),
            &[],
        )
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(b.subscribe("one", "again", false).await.status, 303);
    assert_eq!(b.subscription_ids().await.len(), 2);
    assert_eq!(b.subscribe("one", "too many", false).await.status, 409);
}

#[tokio::test]
async fn rename_and_cancel() {
    let app = TestApp::spawn().await;
    dev_product(&app, "gold", json!({})).await;
    let b = developer(&app, "ada@example.com").await;
    b.subscribe("gold", "first", false).await;
    let sid = b.subscription_ids().await.remove(0);
    let key = app.key_of(&sid).await;

    let r = b
        .submit(
            "/profile",
            &format!("/subscriptions/{sid}/rename"),
            &[("name", "  Production app  ")],
        )
        .await;
    assert_eq!(r.location.as_deref(), Some("/profile?done=renamed"));
    assert_eq!(
        subscription(&app, &sid).await["displayName"],
        "Production app"
    );
    let empty = b
        .submit(
            "/profile",
            &format!("/subscriptions/{sid}/rename"),
            &[("name", "   ")],
        )
        .await;
    assert_eq!(empty.status, 400);
    assert_eq!(
        subscription(&app, &sid).await["displayName"],
        "Production app"
    );
    assert_eq!(
        status_with(&app, "/gold/x", &key).await,
        200,
        "rename keeps keys"
    );

    let r = b
        .submit("/profile", &format!("/subscriptions/{sid}/cancel"), &[])
        .await;
    assert_eq!(r.location.as_deref(), Some("/profile?done=cancelled"));
    assert_eq!(subscription(&app, &sid).await["state"], "cancelled");
    assert_eq!(status_with(&app, "/gold/x", &key).await, 401);
    let profile = b.get("/profile").await;
    assert!(profile.body.contains("Cancelled"));
    assert!(!profile.has_id(&format!("key-primary-{sid}")));
    assert!(!profile.body.contains(&key));
    // Cancelled is final; its keys cannot be regenerated either.
    let twice = b
        .submit("/profile", &format!("/subscriptions/{sid}/cancel"), &[])
        .await;
    assert_eq!(twice.status, 409);
    let regen = b
        .submit(
            "/profile",
            &format!("/subscriptions/{sid}/regenerate"),
            &[("key", "primary")],
        )
        .await;
    assert_eq!(regen.status, 409);
    assert_eq!(app.key_of(&sid).await, key);
}

#[tokio::test]
async fn another_users_subscription_is_not_found() {
    let app = TestApp::spawn().await;
    dev_product(&app, "gold", json!({})).await;
    let ada = developer(&app, "ada@example.com").await;
    ada.subscribe("gold", "ada's", false).await;
    let sid = ada.subscription_ids().await.remove(0);
    let before = subscription(&app, &sid).await;
    let key = app.key_of(&sid).await;

    let eve = developer(&app, "eve@example.com").await;
    for (action, fields) in [
        ("regenerate", vec![("key", "primary")]),
        ("rename", vec![("name", "mine now")]),
        ("cancel", vec![]),
    ] {
        let r = eve
            .submit(
                "/profile",
                &format!("/subscriptions/{sid}/{action}"),
                &fields,
            )
            .await;
        assert_eq!(r.status, 404, "{action}");
        assert!(r.body.contains("Not found"));
        let r = eve
            .submit(
                "/profile",
                &format!("/subscriptions/nope-{action}/{action}"),
                &fields,
            )
            .await;
        assert_eq!(r.status, 404, "unknown id, {action}");
    }
    assert_eq!(subscription(&app, &sid).await, before, "nothing changed");
    assert_eq!(app.key_of(&sid).await, key);
    assert_eq!(status_with(&app, "/gold/x", &key).await, 200);
    // A developer cannot approve or reject anything either.
    let r = eve
        .submit(
            "/profile",
            &format!("/admin/subscriptions/{sid}/reject"),
            &[],
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(subscription(&app, &sid).await, before);
}

#[tokio::test]
async fn every_form_needs_its_csrf_token() {
    let app = TestApp::spawn().await;
    dev_product(&app, "gold", json!({})).await;
    dev_product(&app, "vip", json!({"approvalRequired": true})).await;
    let admin = administrator(&app).await;
    admin.subscribe("gold", "mine", false).await;
    admin.subscribe("vip", "pending", false).await;
    let sids = admin.subscription_ids().await;
    assert_eq!(sids.len(), 2);
    let revision = app.get_json("/revision").await["revision"].clone();
    let mut posts = vec![
        ("/products/gold/subscribe".to_string(), vec![("name", "x")]),
        (
            "/profile".to_string(),
            vec![("firstName", "Eve"), ("lastName", "Il")],
        ),
        (
            "/profile/password".to_string(),
            vec![
                ("current", PASSWORD),
                ("password", "another pass 7"),
                ("confirm", "another pass 7"),
            ],
        ),
    ];
    for sid in &sids {
        posts.push((
            format!("/subscriptions/{sid}/regenerate"),
            vec![("key", "primary")],
        ));
        posts.push((format!("/subscriptions/{sid}/rename"), vec![("name", "y")]));
        posts.push((format!("/subscriptions/{sid}/cancel"), vec![]));
        posts.push((format!("/admin/subscriptions/{sid}/approve"), vec![]));
        posts.push((
            format!("/admin/subscriptions/{sid}/reject"),
            vec![("comment", "z")],
        ));
    }
    for (path, fields) in &posts {
        let r = admin.post(path, fields).await;
        assert_eq!(r.status, 403, "{path}");
        assert!(r.body.contains("Form expired"), "{path}");
        let mut forged = fields.clone();
        forged.push(("csrf", "AAAA"));
        assert_eq!(admin.post(path, &forged).await.status, 403, "{path}");
    }
    assert_eq!(
        app.get_json("/revision").await["revision"],
        revision,
        "nothing was written"
    );
}

#[tokio::test]
async fn a_new_password_signs_out_other_sessions_and_keeps_this_one() {
    let app = TestApp::spawn().await;
    let here = developer(&app, "ada@example.com").await;
    let there = Browser::new(&app.portal);
    assert_eq!(there.sign_in("ada@example.com", PASSWORD).await.status, 303);
    assert_eq!(there.get("/profile").await.status, 200);

    let wrong = here
        .submit(
            "/profile",
            "/profile/password",
            &[
                ("current", "not my password 1"),
                ("password", "another pass 7"),
                ("confirm", "another pass 7"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 403);
    assert!(wrong.body.contains("current password is wrong"));
    let weak = here
        .submit(
            "/profile",
            "/profile/password",
            &[
                ("current", PASSWORD),
                ("password", "short"),
                ("confirm", "short"),
            ],
        )
        .await;
    assert_eq!(weak.status, 400);
    assert!(weak.body.contains("at least 10 characters"));
    let mismatch = here
        .submit(
            "/profile",
            "/profile/password",
            &[
                ("current", PASSWORD),
                ("password", "another pass 7"),
                ("confirm", "another pass 8"),
            ],
        )
        .await;
    assert_eq!(mismatch.status, 400);
    assert_eq!(
        there.get("/profile").await.status,
        200,
        "nothing changed yet"
    );

    let ok = here
        .submit(
            "/profile",
            "/profile/password",
            &[
                ("current", PASSWORD),
                ("password", "another pass 7"),
                ("confirm", "another pass 7"),
            ],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(ok.location.as_deref(), Some("/profile?done=password"));
    assert!(ok
        .headers
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap().starts_with("tp_session=")));
    let mine = here.get("/profile?done=password").await;
    assert_eq!(mine.status, 200, "this browser stays signed in");
    assert!(mine.body.contains("Your password was changed"));
    let theirs = there.get("/profile").await;
    assert_eq!(theirs.status, 303, "the other session is gone");

    let fresh = Browser::new(&app.portal);
    assert_eq!(fresh.sign_in("ada@example.com", PASSWORD).await.status, 401);
    assert_eq!(
        fresh
            .sign_in("ada@example.com", "another pass 7")
            .await
            .status,
        303
    );
}

#[tokio::test]
async fn profile_changes_the_name() {
    let app = TestApp::spawn().await;
    let b = developer(&app, "ada@example.com").await;
    let page = b.get("/profile").await;
    assert!(page.body.contains("ada@example.com"));
    assert!(page.body.contains("value=\"Test\""));
    let r = b
        .submit(
            "/profile",
            "/profile",
            &[("firstName", "Ada"), ("lastName", "Lovelace")],
        )
        .await;
    assert_eq!(r.location.as_deref(), Some("/profile?done=updated"));
    let uid = uid_of(&app, "ada@example.com").await;
    let user = app.get_json(&format!("/users/{uid}")).await;
    assert_eq!(user["firstName"], "Ada");
    assert_eq!(user["lastName"], "Lovelace");
    let long = "x".repeat(101);
    let r = b
        .submit(
            "/profile",
            "/profile",
            &[("firstName", &long), ("lastName", "")],
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        app.get_json(&format!("/users/{uid}")).await["firstName"],
        "Ada"
    );
}

#[tokio::test]
async fn the_admin_corner_is_for_administrators() {
    let app = TestApp::spawn().await;
    let anon = Browser::new(&app.portal);
    let r = anon.get("/admin").await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location.as_deref(), Some("/signin?returnUrl=%2Fadmin"));

    let dev = developer(&app, "dev@example.com").await;
    let r = dev.get("/admin").await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains("Administrators only"));
    assert!(!dev.get("/").await.body.contains("href=\"/admin\""));

    let admin = administrator(&app).await;
    assert!(admin.get("/").await.body.contains("href=\"/admin\""));
    let corner = admin.get("/admin").await;
    assert_eq!(corner.status, 200);
    assert!(corner.body.contains("dev@example.com"));
    assert!(corner.body.contains("boss@example.com"));
    assert!(corner.body.contains("Big Boss"));
    assert!(corner.body.contains("Administrators, Developers"));
    assert!(corner.has_id("no-gateways"));
    assert!(corner.has_id("no-pending"));

    app.put_ok(
        "/gateways/west-1",
        json!({"locationData": {"name": "West"}}),
    )
    .await;
    let corner = admin.get("/admin").await;
    assert!(!corner.has_id("no-gateways"));
    assert!(corner.has_id("gateways"));
    assert!(corner.body.contains("west-1"));
    assert!(corner.body.contains("West"));
    assert!(corner.body.contains("registered"));

    // Leaving the group takes the corner away at once.
    let r = app.delete("/groups/administrators/users/boss").await;
    assert_eq!(r.status(), 204);
    assert_eq!(admin.get("/admin").await.status, 403);
    // The built-in group itself stays immutable.
    let r = app
        .put("/groups/administrators", json!({"displayName": "Admins"}))
        .await;
    assert_eq!(r.status(), 409);
}

#[tokio::test]
async fn products_show_what_each_visitor_may_see() {
    let app = TestApp::spawn().await;
    app.api("echo", "echo", &app.echo_url()).await;
    // Public: published, guests and developers.
    app.put_ok(
        "/products/public",
        json!({"displayName": "Public", "state": "published", "terms": "Be <nice>.\nNo abuse."}),
    )
    .await;
    app.put_ok("/products/public/apis/echo", json!({})).await;
    for g in ["guests", "developers"] {
        app.put_ok(&format!("/products/public/groups/{g}"), json!({}))
            .await;
    }
    // Members: developers only. Draft: unpublished. Unlinked: published,
    // no group.
    dev_product(&app, "members", json!({})).await;
    dev_product(&app, "draft", json!({"state": "notPublished"})).await;
    app.put_ok(
        "/products/unlinked",
        json!({"displayName": "Unlinked", "state": "published"}),
    )
    .await;
    // Open: no subscription needed.
    dev_product(&app, "open", json!({"subscriptionRequired": false})).await;

    let anon = Browser::new(&app.portal);
    let list = anon.get("/products").await;
    assert_eq!(list.status, 200);
    assert_eq!(list.ids_with_prefix("product-"), ["public"]);
    for hidden in ["members", "draft", "unlinked", "open", "nothing"] {
        let r = anon.get(&format!("/products/{hidden}")).await;
        assert_eq!(r.status, 404, "{hidden}");
        assert!(r.body.contains("Not found"));
    }
    let public = anon.get("/products/public").await;
    assert!(public.body.contains("Sign in to subscribe"));
    assert!(public.body.contains("Be &#60;nice&#62;.") || public.body.contains("Be &lt;nice&gt;."));
    // An anonymous subscribe goes to sign in first.
    let r = anon
        .submit(
            "/signin",
            "/products/public/subscribe",
            &[("name", "x"), ("acceptTerms", "on")],
        )
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(
        r.location.as_deref(),
        Some("/signin?returnUrl=%2Fproducts%2Fpublic")
    );

    let dev = developer(&app, "dev@example.com").await;
    let list = dev.get("/products").await;
    assert_eq!(
        list.ids_with_prefix("product-"),
        ["members", "open", "public"]
    );
    assert_eq!(dev.get("/products/draft").await.status, 404);
    assert_eq!(dev.subscribe("draft", "x", false).await.status, 404);
    assert_eq!(dev.subscribe("unlinked", "x", false).await.status, 404);
    let open = dev.get("/products/open").await;
    assert!(open.body.contains("this product's APIs are open"));
    assert!(!open.has_id("subscribe"));
    assert_eq!(dev.subscribe("open", "x", false).await.status, 409);

    // Terms must be accepted.
    let page = dev.get("/products/public").await;
    assert!(page.body.contains("name=\"acceptTerms\""));
    let r = dev.subscribe("public", "no terms", false).await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("Accept the terms"));
    assert!(
        r.body.contains("value=\"no terms\""),
        "the form keeps the name"
    );
    assert!(dev.subscription_ids().await.is_empty());
    assert_eq!(dev.subscribe("public", "ok", true).await.status, 303);
    assert_eq!(dev.subscription_ids().await.len(), 1);

    // Administrators see everything, unpublished ones marked.
    let admin = administrator(&app).await;
    let list = admin.get("/products").await;
    assert_eq!(list.ids_with_prefix("product-").len(), 5);
    assert!(list.body.contains("not published"));
}

#[tokio::test]
async fn demo_seeds_a_portal_administrator() {
    let dir = tempfile::tempdir().unwrap();
    let settings = common::test_settings(dir.path());
    let (trigger, shutdown) = turnpike::shutdown::channel();
    let running = turnpike::run(settings.clone(), turnpike::Options { demo: true }, shutdown)
        .await
        .unwrap();
    let demo = running.demo.clone().unwrap();
    assert!(demo.seeded);
    let file = demo.admin_password_file.clone().unwrap();
    assert_eq!(file, dir.path().join("portal-admin.password"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let password = std::fs::read_to_string(&file).unwrap().trim().to_string();
    assert!(password.len() >= 16);

    let portal = format!("http://{}", running.addr("portal").unwrap());
    let admin = Browser::new(&portal);
    assert_eq!(
        admin.sign_in("admin@example.com", &password).await.status,
        303
    );
    let corner = admin.get("/admin").await;
    assert_eq!(corner.status, 200);
    assert!(corner.body.contains("demo@example.com"));
    assert!(!corner.body.contains(&password));
    // The demo developer has no portal password.
    let demo_user = Browser::new(&portal);
    assert_eq!(
        demo_user
            .sign_in("demo@example.com", &password)
            .await
            .status,
        401
    );
    trigger.fire();
    running.wait().await;

    // A second start seeds nothing and keeps the file and the password.
    let (trigger, shutdown) = turnpike::shutdown::channel();
    let running = turnpike::run(settings, turnpike::Options { demo: true }, shutdown)
        .await
        .unwrap();
    let demo = running.demo.clone().unwrap();
    assert!(!demo.seeded);
    assert_eq!(demo.admin_password_file.as_deref(), Some(file.as_path()));
    assert_eq!(
        std::fs::read_to_string(&file).unwrap().trim(),
        password,
        "not re-seeded"
    );
    trigger.fire();
    running.wait().await;
}

#[tokio::test]
async fn demo_on_a_used_store_seeds_no_administrator() {
    let dir = tempfile::tempdir().unwrap();
    let settings = common::test_settings(dir.path());
    {
        let app = TestApp::start(tempfile::tempdir().unwrap(), settings.clone()).await;
        app.put_ok("/users/u1", json!({"email": "u1@example.com"}))
            .await;
        app.stop().await;
    }
    let (trigger, shutdown) = turnpike::shutdown::channel();
    let running = turnpike::run(settings, turnpike::Options { demo: true }, shutdown)
        .await
        .unwrap();
    assert!(
        running.demo.is_none(),
        "no demo subscription, nothing seeded"
    );
    assert!(!dir.path().join("portal-admin.password").exists());
    trigger.fire();
    running.wait().await;
}
