//! The Reports page in a real headless Chromium: a developer with a day
//! of traffic (a history written to the analytics store plus real calls
//! through the gateway) signs in, opens Reports from the navigation, sees
//! the tiles and the four charts rendered, switches range; an
//! administrator sees everyone's traffic. Screenshots:
//! `target/portal-screenshots/reports.png` and `reports-admin.png`.

mod common;

use common::TestApp;
use serde_json::json;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use turnpike::analytics::{Cell, Dims, Row, Sample};

const PASSWORD: &str = "correct horse battery 9";

/// A day of alice's traffic on s1: per hour one minute's aggregates of
/// varying volume, errors and latency.
fn history(now_minute: u64) -> Vec<Row> {
    let mut rows = Vec::new();
    for h in 1..24u64 {
        let minute = now_minute - h * 60;
        let volume = 40 + (h * 37 % 23) * 6;
        for (status, n) in [
            (200u16, volume),
            (404, h % 3),
            (500, (h % 4 == 1) as u64 * 3),
            (429, (h % 5 == 0) as u64 * 6),
        ] {
            if n == 0 {
                continue;
            }
            let mut cell = Cell::default();
            for i in 0..n {
                cell.add(&Sample {
                    status,
                    bytes_in: 120,
                    bytes_out: 800 + i * 40,
                    total: Duration::from_micros(8_000 + (i * 7_919 % 90) * 1_000 + h * 2_000),
                    backend: Some(Duration::from_millis(6)),
                    ..Sample::default()
                });
            }
            rows.push(Row {
                minute,
                dims: Dims {
                    api: "alpha".into(),
                    operation: "all".into(),
                    product: "gold".into(),
                    subscription: "s1".into(),
                    user: "alice".into(),
                    region: String::new(),
                    class: (status / 100) as u8,
                },
                cell,
            });
        }
    }
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_developer_reads_their_reports_in_the_browser() {
    let Some(b) = common::chrome::start().await else {
        return;
    };
    let app =
        TestApp::spawn_with(|s| s.analytics.flush_interval = Duration::from_millis(100)).await;
    app.api("alpha", "alpha", &app.echo_url()).await;
    app.api("beta", "beta", &app.echo_url()).await;
    app.product("gold", &["alpha"], true).await;
    app.product("silver", &["beta"], true).await;
    for p in ["gold", "silver"] {
        app.put_ok(&format!("/products/{p}/groups/developers"), json!({}))
            .await;
    }
    for (uid, first) in [("alice", "Alice"), ("boss", "Big")] {
        app.put_ok(
            &format!("/users/{uid}"),
            json!({"email": format!("{uid}@example.com"), "firstName": first,
                   "lastName": "Tester", "password": PASSWORD}),
        )
        .await;
    }
    assert!(app
        .put("/groups/administrators/users/boss", json!({}))
        .await
        .status()
        .is_success());
    app.put_ok(
        "/subscriptions/s1",
        json!({"scope": "/products/gold", "state": "active", "ownerId": "/users/alice",
               "displayName": "Alice's app"}),
    )
    .await;
    app.put_ok(
        "/subscriptions/s2",
        json!({"scope": "/products/silver", "state": "active", "displayName": "Batch jobs"}),
    )
    .await;
    let (k1, k2) = (app.key_of("s1").await, app.key_of("s2").await);

    let now_minute = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 60;
    let past = history(now_minute);
    let past_calls: u64 = past.iter().map(|r| r.cell.count).sum();
    app.analytics().unwrap().merge(&past).unwrap();
    // And real calls now: alice's, someone else's and anonymous ones.
    for (path, key, n) in [
        ("/alpha/orders", Some(k1.as_str()), 12),
        ("/beta/jobs", Some(k2.as_str()), 5),
        ("/alpha/orders", None, 2),
    ] {
        for _ in 0..n {
            app.call(path, key).await.bytes().await.unwrap();
        }
    }
    let want = past_calls + 12;
    let started = Instant::now();
    loop {
        let now = SystemTime::now();
        let v = app
            .get_json(&format!(
                "/reports/byUser?from={}&to={}&userId=alice",
                humantime::format_rfc3339_seconds(now - Duration::from_secs(90_000)),
                humantime::format_rfc3339_seconds(now + Duration::from_secs(60)),
            ))
            .await;
        if v["value"][0]["callCountTotal"] == want {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "{v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let portal = &app.portal;
    b.client.set_window_size(1280, 2500).await.unwrap();
    b.goto(&format!("{portal}/signin?returnUrl=%2F")).await;
    b.fill("#email", "alice@example.com").await;
    b.fill("#password", PASSWORD).await;
    b.click("form.form button[type=submit]").await;
    b.wait_url("/").await;
    b.click("nav a[href='/reports']").await;
    b.wait_url("/reports").await;
    assert_eq!(b.text("h1").await, "Reports");
    let shown: u64 = b
        .text("#tile-total")
        .await
        .replace(',', "")
        .parse()
        .unwrap();
    assert_eq!(shown, want);
    // The charts are laid out: each has a real size on the page.
    for id in [
        "chart-calls",
        "chart-errors",
        "chart-latency",
        "chart-bandwidth",
    ] {
        let (_, _, w, h) = b.css(&format!("svg#{id}")).await.rectangle().await.unwrap();
        assert!(w > 400.0 && h > 150.0, "{id}: {w}×{h}");
    }
    assert!(
        !b.page().await.contains("Batch jobs"),
        "not another's subscription"
    );
    b.shot("reports").await;
    let close_up = b.css("#chart-calls-box").await.screenshot().await.unwrap();
    std::fs::write(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target/portal-screenshots/reports-calls.png"),
        close_up,
    )
    .unwrap();

    b.click("#range-1h").await;
    b.wait_url("/reports?range=1h").await;
    assert_eq!(b.text("#tile-total").await, "12");
    b.shot("reports-1h").await;

    // The administrator sees everyone's traffic.
    b.client.delete_all_cookies().await.unwrap();
    b.goto(&format!(
        "{portal}/signin?returnUrl=%2Freports%3Frange%3D1h"
    ))
    .await;
    b.fill("#email", "boss@example.com").await;
    b.fill("#password", PASSWORD).await;
    b.click("form.form button[type=submit]").await;
    b.wait_url("/reports?range=1h").await;
    assert_eq!(b.text("#tile-total").await, "19");
    assert!(b.page().await.contains("Batch jobs"));
    b.shot("reports-admin").await;
    b.close().await;
}
