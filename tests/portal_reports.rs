//! The portal's Reports page through real sockets: known traffic through
//! the real gateway from two developers' subscriptions plus anonymous
//! (401) calls, flushed to the analytics store, then each developer's page
//! shows exactly their own counts and nothing of the other's, the
//! administrator's page shows everything, the SVG charts are well-formed
//! XML with one bar per interval and one segment/point per value, ranges
//! and filters work, bad ones are 400 pages, a developer without traffic
//! sees the empty state, and a signed-out visitor is sent to sign in.

mod common;

use common::backend::{full, spawn};
use common::portal::{Browser, Page};
use common::TestApp;
use serde_json::{json, Value};
use std::time::{Duration, Instant, SystemTime};

const PASSWORD: &str = "correct horse battery 9";

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The last ten minutes and the next one, for `/mgmt/reports`.
fn recent() -> String {
    let now = SystemTime::now();
    format!(
        "from={}&to={}",
        rfc3339(now - Duration::from_secs(600)),
        rfc3339(now + Duration::from_secs(60))
    )
}

fn total(v: &Value) -> u64 {
    v["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["callCountTotal"].as_u64().unwrap())
        .sum()
}

/// Alpha (product gold) and beta (product silver), both published to
/// developers; alice owns s1 on gold ("Alice <gold> & co"), bob owns s2 on
/// silver ("Bob's silver"); boss is an administrator; carol has nothing.
/// Returns the keys of s1 and s2.
async fn configure(app: &TestApp) -> (String, String) {
    let backend = spawn(|req| async move {
        let status = match req.uri().path() {
            "/missing" => 404,
            "/boom" => 500,
            _ => 200,
        };
        let mut resp = hyper::Response::new(full("backend says hello"));
        *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
        resp
    })
    .await;
    let url = format!("http://{backend}");
    for (id, name) in [("alpha", "Alpha API"), ("beta", "Beta API")] {
        app.put_ok(
            &format!("/apis/{id}"),
            json!({"displayName": name, "path": id, "serviceUrl": url}),
        )
        .await;
        app.put_ok(
            &format!("/apis/{id}/operations/all"),
            json!({"displayName": "Everything", "method": "*", "urlTemplate": "/*"}),
        )
        .await;
    }
    app.product("gold", &["alpha"], true).await;
    app.product("silver", &["beta"], true).await;
    for p in ["gold", "silver"] {
        app.put_ok(&format!("/products/{p}/groups/developers"), json!({}))
            .await;
    }
    for (uid, first) in [
        ("alice", "Alice"),
        ("bob", "Bob"),
        ("boss", "Big"),
        ("carol", "Carol"),
    ] {
        app.put_ok(
            &format!("/users/{uid}"),
            json!({"email": format!("{uid}@example.com"), "firstName": first,
                   "lastName": "Tester", "password": PASSWORD}),
        )
        .await;
    }
    let r = app
        .put("/groups/administrators/users/boss", json!({}))
        .await;
    assert!(r.status().is_success());
    for (sid, scope, owner, name) in [
        ("s1", "/products/gold", "alice", "Alice <gold> & co"),
        ("s2", "/products/silver", "bob", "Bob's silver"),
    ] {
        app.put_ok(
            &format!("/subscriptions/{sid}"),
            json!({"scope": scope, "state": "active", "ownerId": format!("/users/{owner}"),
                   "displayName": name}),
        )
        .await;
    }
    (app.key_of("s1").await, app.key_of("s2").await)
}

/// alice: 6×200, 2×404, 1×500 on alpha (9 calls); anonymous: 3×401 on
/// alpha; bob: 4×200 on beta. 16 calls.
async fn traffic(app: &TestApp, k1: &str, k2: &str) {
    let calls = [
        ("/alpha/ok", Some(k1), 200, 6),
        ("/alpha/missing", Some(k1), 404, 2),
        ("/alpha/boom", Some(k1), 500, 1),
        ("/alpha/ok", None, 401, 3),
        ("/beta/anything", Some(k2), 200, 4),
    ];
    for (path, key, status, n) in calls {
        for _ in 0..n {
            let r = app.call(path, key).await;
            assert_eq!(r.status(), status, "{path}");
            r.bytes().await.unwrap();
        }
    }
}

/// Polls `byApi` until the flushed aggregates count `want` calls.
async fn settle(app: &TestApp, want: u64) {
    let started = Instant::now();
    loop {
        let v = app.get_json(&format!("/reports/byApi?{}", recent())).await;
        if total(&v) == want {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "reports never counted {want} calls: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn signed_in(app: &TestApp, uid: &str) -> Browser {
    let b = Browser::new(&app.portal);
    let r = b.sign_in(&format!("{uid}@example.com"), PASSWORD).await;
    assert_eq!(r.status, 303, "{uid} signs in");
    b
}

async fn reports(b: &Browser, query: &str) -> Page {
    let page = b.get(&format!("/reports{query}")).await;
    assert_eq!(page.status, 200, "/reports{query}: {}", page.body);
    page
}

fn tile(page: &Page, name: &str) -> String {
    page.text_of(&format!("tile-{name}"))
        .unwrap_or_else(|| panic!("no tile {name}"))
}

/// The calls column of table row `id`.
fn row_total(page: &Page, id: &str) -> Option<String> {
    let at = page.body.find(&format!("<tr id=\"{id}\""))?;
    let rest = &page.body[at..];
    let cell = rest.find("class=\"num total\">")? + "class=\"num total\">".len();
    let rest = &rest[cell..];
    Some(rest[..rest.find('<')?].to_string())
}

/// What one parsed chart holds.
#[derive(Debug, Default)]
struct Svg {
    id: String,
    /// `rect.hit`: one per interval (bar charts).
    hits: usize,
    /// `rect.seg`: one per non-zero bar segment.
    segs: usize,
    /// `circle.pt`: one per line point.
    points: usize,
    title: String,
}

/// Every inline `<svg>` of `html`, each parsed as XML (a parse error fails).
fn charts(html: &str) -> Vec<Svg> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find("<svg") {
        let end = rest[at..].find("</svg>").expect("closed svg") + at + "</svg>".len();
        let text = &rest[at..end];
        rest = &rest[end..];
        let mut svg = Svg::default();
        let mut reader = quick_xml::Reader::from_str(text);
        let mut in_title = false;
        loop {
            use quick_xml::events::Event;
            match reader.read_event() {
                Ok(Event::Eof) => break,
                Ok(Event::Start(e)) | Ok(Event::Empty(e)) => {
                    let attr = |name: &str| {
                        e.try_get_attribute(name)
                            .unwrap()
                            .map(|a| a.unescape_value().unwrap().to_string())
                    };
                    match (e.name().as_ref(), attr("class").as_deref()) {
                        (b"svg", _) => svg.id = attr("id").unwrap_or_default(),
                        (b"rect", Some("hit")) => svg.hits += 1,
                        (b"rect", Some("seg")) => svg.segs += 1,
                        (b"circle", Some("pt")) => svg.points += 1,
                        (b"title", _) => {
                            in_title = attr("id").is_some_and(|i| i.ends_with("-title"))
                        }
                        _ => {}
                    }
                }
                Ok(Event::Text(t)) if in_title => {
                    svg.title = t.decode().unwrap().to_string();
                    in_title = false;
                }
                Ok(_) => {}
                Err(e) => panic!("chart is not well-formed XML: {e}\n{text}"),
            }
        }
        out.push(svg);
    }
    out
}

/// Per minute of `byTime` (filtered by `filter`): the non-zero classes of
/// each minute and the minutes with calls.
async fn minutes(app: &TestApp, filter: &str) -> (usize, usize, usize) {
    let v = app
        .get_json(&format!(
            "/reports/byTime?{}&interval=PT1M{filter}",
            recent()
        ))
        .await;
    let (mut classes, mut errors, mut busy) = (0, 0, 0);
    for r in v["value"].as_array().unwrap() {
        let n = |k: &str| r[k].as_u64().unwrap();
        for k in [
            "callCountSuccess",
            "callCountBlocked",
            "callCountFailed",
            "callCountOther",
        ] {
            classes += usize::from(n(k) > 0);
        }
        errors += usize::from(n("callCountBlocked") > 0) + usize::from(n("callCountFailed") > 0);
        busy += usize::from(n("callCountTotal") > 0);
    }
    (classes, errors, busy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_show_each_developer_their_own_traffic_and_admins_everything() {
    let app =
        TestApp::spawn_with(|s| s.analytics.flush_interval = Duration::from_millis(100)).await;
    let (k1, k2) = configure(&app).await;

    // Signed out: to sign-in, coming back to the same report.
    let anon = Browser::new(&app.portal);
    let r = anon.get("/reports?range=1h").await;
    assert_eq!(r.status, 303);
    assert_eq!(
        r.location.as_deref(),
        Some("/signin?returnUrl=%2Freports%3Frange%3D1h")
    );

    traffic(&app, &k1, &k2).await;
    settle(&app, 16).await;

    // Alice: her 9 calls only.
    let alice = signed_in(&app, "alice").await;
    let page = reports(&alice, "?range=1h").await;
    assert_eq!(tile(&page, "total"), "9");
    assert_eq!(tile(&page, "success"), "6");
    assert_eq!(tile(&page, "errors"), "1");
    assert_eq!(tile(&page, "error-rate"), "11.1%");
    assert!(tile(&page, "p95").ends_with(" ms") || tile(&page, "p95").ends_with(" s"));
    assert!(tile(&page, "bandwidth").ends_with(" B"));
    assert_eq!(row_total(&page, "by-api-alpha").as_deref(), Some("9"));
    assert_eq!(row_total(&page, "by-api-beta"), None);
    assert_eq!(row_total(&page, "by-product-gold").as_deref(), Some("9"));
    assert_eq!(row_total(&page, "by-subscription-s1").as_deref(), Some("9"));
    assert_eq!(row_total(&page, "by-subscription-s2"), None);
    assert_eq!(row_total(&page, "by-subscription-none"), None);
    assert!(
        page.body.contains("Alice &lt;gold&gt; &amp;")
            || page.body.contains("Alice &#60;gold&#62;"),
        "names are escaped"
    );
    assert!(!page.body.contains("Alice <gold>"));
    assert!(!page.body.contains("Bob&#39;s silver") && !page.body.contains("Bob's silver"));
    assert!(!page.body.contains("Bob&#x27;s silver"));
    assert!(
        page.body.contains("href=\"/reports\">Reports</a>"),
        "in the nav"
    );
    assert_eq!(page.headers["cache-control"], "no-store");

    // Her charts: four, well-formed, one interval per minute of the hour,
    // one segment per non-zero class of a minute, one point per busy
    // minute and percentile.
    let (classes, errors, busy) = minutes(&app, "&userId=alice").await;
    assert!(busy >= 1);
    let svgs = charts(&page.body);
    let ids: Vec<&str> = svgs.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "chart-calls",
            "chart-errors",
            "chart-latency",
            "chart-bandwidth"
        ]
    );
    assert_eq!(svgs[0].title, "Calls over time");
    assert_eq!((svgs[0].hits, svgs[0].segs), (60, classes));
    assert_eq!((svgs[1].hits, svgs[1].segs), (60, errors));
    assert_eq!((svgs[2].hits, svgs[2].points), (0, 3 * busy));
    assert_eq!((svgs[3].hits, svgs[3].segs), (60, busy));
    assert!(page.has_id("chart-calls-desc"));
    assert!(page
        .body
        .contains("aria-labelledby=\"chart-calls-title chart-calls-desc\""));
    assert!(page.has_id("by-time"), "the charts' data as a table");

    // A user= parameter changes nothing; bob's subscription is refused.
    let spoof = reports(&alice, "?range=1h&user=bob").await;
    assert_eq!(tile(&spoof, "total"), "9");
    for bad in [
        "?range=1h&subscription=s2",
        "?range=2h",
        "?range=",
        "?range=1h&api=nope",
        "?range=1h&product=nope",
        "?range=1h&range=24h",
    ] {
        let r = alice.get(&format!("/reports{bad}")).await;
        assert_eq!(r.status, 400, "{bad}");
        assert!(
            r.body.contains("Bad report request"),
            "{bad}: a portal page"
        );
    }
    // Filters: her API and subscription; a product she sees but never used.
    let f = reports(&alice, "?range=1h&api=alpha&subscription=s1").await;
    assert_eq!(tile(&f, "total"), "9");
    assert!(f.has_id("clear-filters"));
    let f = reports(&alice, "?range=1h&product=silver").await;
    assert!(f.has_id("no-traffic"));
    assert!(charts(&f.body).is_empty(), "no charts without traffic");
    // Other ranges: their intervals.
    for (range, n) in [("24h", 24), ("7d", 28), ("30d", 30)] {
        let p = reports(&alice, &format!("?range={range}")).await;
        assert_eq!(tile(&p, "total"), "9", "{range}");
        let svgs = charts(&p.body);
        assert_eq!(svgs[0].hits, n, "{range}");
        assert!(p
            .body
            .contains(&format!("id=\"range-{range}\" aria-current=\"page\"")));
    }
    // The default range is 24 hours.
    let p = reports(&alice, "").await;
    assert_eq!(charts(&p.body)[0].hits, 24);

    // Bob: his 4 calls, nothing of alice.
    let bob = signed_in(&app, "bob").await;
    let page = reports(&bob, "?range=1h").await;
    assert_eq!(tile(&page, "total"), "4");
    assert_eq!(tile(&page, "errors"), "0");
    assert_eq!(tile(&page, "error-rate"), "0%");
    assert_eq!(row_total(&page, "by-subscription-s2").as_deref(), Some("4"));
    assert_eq!(row_total(&page, "by-api-alpha"), None);
    assert!(!page.body.contains("gold&gt; &amp; co") && !page.body.contains("Alice <gold>"));
    let svgs = charts(&page.body);
    assert_eq!(svgs[1].segs, 0, "no error bars");
    assert!(page.body.contains("No errors in this range"));
    assert_eq!(bob.get("/reports?subscription=s1").await.status, 400);

    // Carol: no traffic.
    let carol = signed_in(&app, "carol").await;
    let page = reports(&carol, "?range=1h").await;
    assert!(page.has_id("no-traffic"));
    assert!(!page.has_id("tile-total"));
    assert!(charts(&page.body).is_empty());

    // The administrator: everything, the anonymous calls too.
    let boss = signed_in(&app, "boss").await;
    let page = reports(&boss, "?range=1h").await;
    assert_eq!(tile(&page, "total"), "16");
    assert_eq!(tile(&page, "success"), "10");
    assert_eq!(tile(&page, "errors"), "4");
    assert_eq!(tile(&page, "error-rate"), "25%");
    assert_eq!(row_total(&page, "by-api-alpha").as_deref(), Some("12"));
    assert_eq!(row_total(&page, "by-api-beta").as_deref(), Some("4"));
    assert_eq!(row_total(&page, "by-subscription-s1").as_deref(), Some("9"));
    assert_eq!(row_total(&page, "by-subscription-s2").as_deref(), Some("4"));
    assert_eq!(
        row_total(&page, "by-subscription-none").as_deref(),
        Some("3")
    );
    assert_eq!(row_total(&page, "by-product-none").as_deref(), Some("3"));
    assert!(page.body.contains("Bob&#39;s silver") || page.body.contains("Bob&#x27;s silver"));
    let (classes, _, busy) = minutes(&app, "").await;
    let svgs = charts(&page.body);
    assert_eq!((svgs[0].hits, svgs[0].segs), (60, classes));
    assert_eq!(svgs[2].points, 3 * busy);
    // Admins filter by anyone's subscription.
    let f = reports(&boss, "?range=1h&subscription=s2").await;
    assert_eq!(tile(&f, "total"), "4");
    let f = reports(&boss, "?range=7d&api=alpha").await;
    assert_eq!(tile(&f, "total"), "12");
    assert_eq!(tile(&f, "errors"), "4");
    assert_eq!(boss.get("/reports?api=nope").await.status, 400);
}

#[tokio::test]
async fn reports_say_so_when_analytics_is_off() {
    let app = TestApp::spawn_with(|s| s.analytics.enabled = false).await;
    app.put_ok(
        "/users/dana",
        json!({"email": "dana@example.com", "firstName": "Dana", "lastName": "Tester",
               "password": PASSWORD}),
    )
    .await;
    let b = signed_in(&app, "dana").await;
    let page = reports(&b, "").await;
    assert!(page.has_id("reports-off"));
    assert!(charts(&page.body).is_empty());
    // Parameters are still checked.
    assert_eq!(b.get("/reports?range=1y").await.status, 400);
}
