//! The Reports page (`GET /reports`): calls, errors, latency percentiles
//! and bandwidth over a time range, as summary tiles, four server-side SVG
//! charts ([`super::charts`]), a data table per chart's buckets, and tables
//! by API, by product and by subscription.
//!
//! Who sees what: a developer sees the traffic of their own subscriptions
//! only — every query carries their user id as a filter, whatever the
//! query string says — and may filter by the APIs and products they see
//! and by their own subscriptions; an administrator (the `administrators`
//! group) sees all traffic and may filter by anything in the catalog. A
//! filter value outside that set, or an unknown range, is a 400 page.
//!
//! The aggregates come from [`crate::analytics::report`] (sled range scans),
//! run on a blocking thread.

use super::catalog::query_pairs;
use super::charts::{self, Frame, Series, Unit};
use super::{render, Chrome, PortalError, PortalState, Visitor};
use crate::analytics::{report, AnalyticsDb, AnalyticsError, GroupBy, ReportQuery, ReportRow};
use crate::model::{Catalog, SubscriptionScope};
use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use std::collections::BTreeMap;

/// The time ranges the page offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    Hour,
    Day,
    Week,
    Month,
}

impl Range {
    pub const ALL: [Range; 4] = [Range::Hour, Range::Day, Range::Week, Range::Month];

    /// The range a `range=` value names.
    pub fn parse(s: &str) -> Option<Range> {
        Range::ALL.into_iter().find(|r| r.key() == s)
    }

    /// Its `range=` value.
    pub fn key(self) -> &'static str {
        match self {
            Range::Hour => "1h",
            Range::Day => "24h",
            Range::Week => "7d",
            Range::Month => "30d",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Range::Hour => "Last hour",
            Range::Day => "Last 24 hours",
            Range::Week => "Last 7 days",
            Range::Month => "Last 30 days",
        }
    }

    /// Minutes per bucket.
    pub fn interval_minutes(self) -> u64 {
        match self {
            Range::Hour => 1,
            Range::Day => 60,
            Range::Week => 360,
            Range::Month => 1440,
        }
    }

    /// How a bucket's length reads.
    fn interval_label(self) -> &'static str {
        match self {
            Range::Hour => "1 minute",
            Range::Day => "1 hour",
            Range::Week => "6 hours",
            Range::Month => "1 day",
        }
    }

    /// Buckets shown.
    pub fn buckets(self) -> u64 {
        match self {
            Range::Hour => 60,
            Range::Day => 24,
            Range::Week => 28,
            Range::Month => 30,
        }
    }

    /// `(from, to)` in seconds: the range's buckets, aligned on whole
    /// intervals in UTC, the last one holding `now`.
    pub fn window(self, now: u64) -> (u64, u64) {
        let interval = self.interval_minutes();
        let last_start = (now / 60) / interval * interval;
        let first = last_start.saturating_sub((self.buckets() - 1) * interval);
        (first * 60, now)
    }
}

/// An option of a filter's `<select>`.
pub struct Choice {
    pub id: String,
    pub name: String,
    pub selected: bool,
}

/// A range link.
pub struct RangeLink {
    pub key: &'static str,
    pub label: &'static str,
    pub href: String,
    pub current: bool,
}

/// A row of the by-API/product/subscription tables, formatted.
pub struct TableRow {
    /// The resource id (`none` for the row of requests without one).
    pub key: String,
    pub name: String,
    pub total: String,
    pub success: String,
    pub blocked: String,
    pub failed: String,
    pub other: String,
    pub error_rate: String,
    pub avg: String,
    pub p95: String,
    pub bandwidth: String,
}

/// A bucket of the over-time data table (the charts' text alternative).
pub struct TimeRow {
    pub time: String,
    pub total: String,
    pub success: String,
    pub blocked: String,
    pub failed: String,
    pub other: String,
    pub error_rate: String,
    pub p50: String,
    pub p95: String,
    pub p99: String,
    pub bandwidth: String,
}

/// The summary tiles.
pub struct Tiles {
    pub total: String,
    pub success: String,
    pub errors: String,
    pub error_rate: String,
    pub p95: String,
    pub bandwidth: String,
}

#[derive(Template)]
#[template(path = "portal/reports.html")]
struct ReportsPage {
    chrome: Chrome,
    admin: bool,
    /// Analytics is off on this node.
    disabled: bool,
    range_key: &'static str,
    range_label: &'static str,
    interval_label: &'static str,
    period: String,
    ranges: Vec<RangeLink>,
    apis: Vec<Choice>,
    products: Vec<Choice>,
    subscriptions: Vec<Choice>,
    filtered: bool,
    has_traffic: bool,
    tiles: Tiles,
    charts: Vec<(&'static str, &'static str, String)>,
    times: Vec<TimeRow>,
    by_api: Vec<TableRow>,
    by_product: Vec<TableRow>,
    by_subscription: Vec<TableRow>,
}

/// What one visitor may report on: ids → display names.
struct Scope {
    admin: bool,
    uid: String,
    apis: BTreeMap<String, String>,
    products: BTreeMap<String, String>,
    subscriptions: BTreeMap<String, String>,
}

fn scope_of(c: &Catalog, v: &Visitor, uid: &str, admin: bool) -> Scope {
    let sub_name = |id: &str, name: &str| {
        if name.trim().is_empty() {
            id.to_string()
        } else {
            name.to_string()
        }
    };
    if admin {
        return Scope {
            admin,
            uid: uid.to_string(),
            apis: c
                .apis
                .iter()
                .map(|(id, a)| (id.clone(), a.display_name.clone()))
                .collect(),
            products: c
                .products
                .iter()
                .map(|(id, p)| (id.clone(), p.display_name.clone()))
                .collect(),
            subscriptions: c
                .subscriptions
                .iter()
                .map(|(id, s)| (id.clone(), sub_name(id, &s.display_name)))
                .collect(),
        };
    }
    let viewer = v.viewer(c);
    let owner = format!("/users/{uid}");
    let mut s = Scope {
        admin,
        uid: uid.to_string(),
        apis: viewer
            .apis(c)
            .into_iter()
            .map(|(id, a)| (id.clone(), a.display_name.clone()))
            .collect(),
        products: viewer
            .products(c)
            .into_iter()
            .map(|(id, p)| (id.clone(), p.display_name.clone()))
            .collect(),
        subscriptions: BTreeMap::new(),
    };
    for (sid, sub) in &c.subscriptions {
        if sub.owner_id.as_deref() != Some(owner.as_str()) {
            continue;
        }
        s.subscriptions
            .insert(sid.clone(), sub_name(sid, &sub.display_name));
        // What the developer's own subscriptions reach is theirs to filter
        // by, even where the catalog no longer shows it to them.
        let apis: Vec<&String> = match SubscriptionScope::parse(&sub.scope) {
            Some(SubscriptionScope::Product(p)) => {
                if let Some(prod) = c.products.get(&p) {
                    s.products.insert(p.clone(), prod.display_name.clone());
                }
                c.product_apis
                    .get(&p)
                    .map(|a| a.iter().collect())
                    .unwrap_or_default()
            }
            Some(SubscriptionScope::Api(a)) => c
                .apis
                .get_key_value(&a)
                .map(|(k, _)| k)
                .into_iter()
                .collect(),
            Some(SubscriptionScope::AllApis) => c.apis.keys().collect(),
            None => Vec::new(),
        };
        for a in apis {
            if let Some(api) = c.apis.get(a) {
                s.apis.insert(a.clone(), api.display_name.clone());
            }
        }
    }
    s
}

/// The page's parameters, checked against the visitor's scope.
struct Params {
    range: Range,
    api: Option<String>,
    product: Option<String>,
    subscription: Option<String>,
}

fn params(raw: Option<&str>, scope: &Scope) -> Result<Params, String> {
    let pairs = query_pairs(raw);
    let mut range = None;
    let (mut api, mut product, mut subscription) = (None, None, None);
    for (k, val) in &pairs {
        let val = val.trim();
        let slot = match k.as_str() {
            "range" => {
                if range.is_some() {
                    return Err("Give the range once.".into());
                }
                range =
                    Some(Range::parse(val).ok_or("The range must be one of 1h, 24h, 7d or 30d.")?);
                continue;
            }
            "api" => &mut api,
            "product" => &mut product,
            "subscription" => &mut subscription,
            _ => continue,
        };
        if slot.is_some() {
            return Err(format!("Give the {k} filter once."));
        }
        if !val.is_empty() {
            *slot = Some(val.to_string());
        }
    }
    let check = |v: &Option<String>, known: &BTreeMap<String, String>, what: &str| match v {
        Some(id) if !known.contains_key(id) => Err(format!(
            "There is no {what} with that id among those you can report on."
        )),
        _ => Ok(()),
    };
    check(&api, &scope.apis, "API")?;
    check(&product, &scope.products, "product")?;
    check(&subscription, &scope.subscriptions, "subscription")?;
    Ok(Params {
        range: range.unwrap_or(Range::Day),
        api,
        product,
        subscription,
    })
}

fn enc(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

/// The page's URL for `range` with `p`'s filters.
fn href(range: Range, p: &Params) -> String {
    let mut url = format!("/reports?range={}", range.key());
    for (k, v) in [
        ("api", &p.api),
        ("product", &p.product),
        ("subscription", &p.subscription),
    ] {
        if let Some(v) = v {
            url.push_str(&format!("&{k}={}", enc(v)));
        }
    }
    url
}

fn choices(known: &BTreeMap<String, String>, selected: &Option<String>) -> Vec<Choice> {
    let mut list: Vec<Choice> = known
        .iter()
        .map(|(id, name)| Choice {
            id: id.clone(),
            name: if name.is_empty() {
                id.clone()
            } else {
                name.clone()
            },
            selected: selected.as_deref() == Some(id.as_str()),
        })
        .collect();
    list.sort_by(|a, b| {
        a.name
            .to_lowercase()
            .cmp(&b.name.to_lowercase())
            .then(a.id.cmp(&b.id))
    });
    list
}

/// What the page reads from the aggregates.
struct Reports {
    overall: ReportRow,
    times: Vec<ReportRow>,
    by_api: Vec<ReportRow>,
    by_product: Vec<ReportRow>,
    by_subscription: Vec<ReportRow>,
}

fn read(db: &AnalyticsDb, c: &Catalog, base: &ReportQuery) -> Result<Reports, AnalyticsError> {
    let by = |g: GroupBy| {
        let mut q = base.clone();
        q.group_by = g;
        report(db, c, &q)
    };
    // One bucket spanning the whole range: the totals and percentiles.
    let mut whole = base.clone();
    whole.interval_minutes = (base.to / 60).saturating_sub(base.from / 60) + 1;
    let overall = report(db, c, &whole)?
        .into_iter()
        .next()
        .unwrap_or_default();
    Ok(Reports {
        overall,
        times: report(db, c, base)?,
        by_api: by(GroupBy::Api)?,
        by_product: by(GroupBy::Product)?,
        by_subscription: by(GroupBy::Subscription)?,
    })
}

fn errors(r: &ReportRow) -> u64 {
    r.call_count_failed + r.call_count_blocked
}

fn table_row(r: &ReportRow, key: Option<&str>, name: String) -> TableRow {
    let key = key
        .and_then(|k| k.rsplit('/').next())
        .unwrap_or("none")
        .to_string();
    TableRow {
        key,
        name,
        total: charts::count(r.call_count_total),
        success: charts::count(r.call_count_success),
        blocked: charts::count(r.call_count_blocked),
        failed: charts::count(r.call_count_failed),
        other: charts::count(r.call_count_other),
        error_rate: charts::percent(errors(r), r.call_count_total),
        avg: charts::ms(r.api_time_avg),
        p95: charts::ms(r.api_time_p95),
        bandwidth: charts::bytes(r.bandwidth),
    }
}

fn rows(list: &[ReportRow], id: fn(&ReportRow) -> Option<&str>) -> Vec<TableRow> {
    list.iter()
        .map(|r| table_row(r, id(r), r.name.clone()))
        .collect()
}

/// The four charts: (id, heading, SVG).
fn charts_of(
    times: &[ReportRow],
    starts: &[u64],
    range: Range,
    overall: &ReportRow,
) -> Vec<(&'static str, &'static str, String)> {
    let interval_secs = range.interval_minutes() * 60;
    let col = |f: fn(&ReportRow) -> f64| -> Vec<Option<f64>> {
        times.iter().map(|r| Some(f(r))).collect()
    };
    let when = |r: &ReportRow| r.call_count_total > 0;
    let peak = |f: fn(&ReportRow) -> u64| -> String {
        match times
            .iter()
            .zip(starts)
            .max_by_key(|(r, t)| (f(r), std::cmp::Reverse(**t)))
        {
            Some((r, t)) if f(r) > 0 => format!(
                " The highest interval, {}, has {}.",
                charts::bucket_name(*t, interval_secs),
                charts::count(f(r))
            ),
            _ => String::new(),
        }
    };
    let span = format!(
        "{}, in intervals of {}",
        range.label().to_lowercase(),
        range.interval_label()
    );
    let frame = |id, title, desc, unit, note| Frame {
        id,
        title,
        desc,
        times: starts,
        interval_secs,
        unit,
        empty_note: note,
    };
    let calls = charts::stacked_bars(
        &frame(
            "chart-calls",
            "Calls over time",
            format!(
                "{} calls {span}: {} success, {} blocked, {} failed, {} other.{}",
                charts::count(overall.call_count_total),
                charts::count(overall.call_count_success),
                charts::count(overall.call_count_blocked),
                charts::count(overall.call_count_failed),
                charts::count(overall.call_count_other),
                peak(|r| r.call_count_total)
            ),
            Unit::Count,
            "No calls in this range",
        ),
        &[
            Series {
                label: "Success",
                color: "#16a34a",
                values: col(|r| r.call_count_success as f64),
            },
            Series {
                label: "Blocked",
                color: "#d97706",
                values: col(|r| r.call_count_blocked as f64),
            },
            Series {
                label: "Failed",
                color: "#dc2626",
                values: col(|r| r.call_count_failed as f64),
            },
            Series {
                label: "Other",
                color: "#94a3b8",
                values: col(|r| r.call_count_other as f64),
            },
        ],
    );
    let errors_chart = charts::stacked_bars(
        &frame(
            "chart-errors",
            "Errors over time",
            format!(
                "{} errors {span} (blocked and failed calls), an error rate of {}.{}",
                charts::count(errors(overall)),
                charts::percent(errors(overall), overall.call_count_total),
                peak(errors)
            ),
            Unit::Count,
            "No errors in this range",
        ),
        &[
            Series {
                label: "Blocked",
                color: "#d97706",
                values: col(|r| r.call_count_blocked as f64),
            },
            Series {
                label: "Failed",
                color: "#dc2626",
                values: col(|r| r.call_count_failed as f64),
            },
        ],
    );
    let pct = |f: fn(&ReportRow) -> f64| -> Vec<Option<f64>> {
        times.iter().map(|r| when(r).then(|| f(r))).collect()
    };
    let latency = charts::lines(
        &frame(
            "chart-latency",
            "Latency percentiles over time",
            format!(
                "Response time {span}: p50 {}, p95 {}, p99 {} over the whole range.",
                charts::ms(overall.api_time_p50),
                charts::ms(overall.api_time_p95),
                charts::ms(overall.api_time_p99)
            ),
            Unit::Millis,
            "No calls in this range",
        ),
        &[
            Series {
                label: "p50",
                color: "#2563eb",
                values: pct(|r| r.api_time_p50),
            },
            Series {
                label: "p95",
                color: "#7c3aed",
                values: pct(|r| r.api_time_p95),
            },
            Series {
                label: "p99",
                color: "#db2777",
                values: pct(|r| r.api_time_p99),
            },
        ],
    );
    let bandwidth = charts::stacked_bars(
        &frame(
            "chart-bandwidth",
            "Bandwidth over time",
            format!(
                "{} of request and response bodies {span}.",
                charts::bytes(overall.bandwidth)
            ),
            Unit::Bytes,
            "No bandwidth in this range",
        ),
        &[Series {
            label: "Request and response bytes",
            color: "#0891b2",
            values: col(|r| r.bandwidth as f64),
        }],
    );
    vec![
        ("chart-calls", "Calls", calls),
        ("chart-errors", "Errors", errors_chart),
        ("chart-latency", "Latency (p50, p95, p99)", latency),
        ("chart-bandwidth", "Bandwidth", bandwidth),
    ]
}

fn bad_request(v: &Visitor, message: &str) -> PortalError {
    PortalError::new(StatusCode::BAD_REQUEST, v, "Bad report request", message)
}

fn unavailable(v: &Visitor) -> PortalError {
    PortalError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        v,
        "Reports are unavailable",
        "The traffic data cannot be read right now. Try again later.",
    )
}

/// `GET /reports?range=&api=&product=&subscription=`.
pub async fn page(
    State(s): State<PortalState>,
    v: Visitor,
    RawQuery(raw): RawQuery,
) -> Result<Response, PortalError> {
    let return_to = match raw.as_deref() {
        Some(q) if !q.is_empty() => format!("/reports?{q}"),
        _ => "/reports".to_string(),
    };
    let user = v.require_user(&return_to)?.clone();
    let c = s.catalog();
    let scope = scope_of(&c, &v, &user.uid, user.admin);
    let p = params(raw.as_deref(), &scope).map_err(|m| bad_request(&v, &m))?;
    let (from, to) = p.range.window(crate::model::unix_now());
    let mut q = ReportQuery::new(from, to, GroupBy::Time);
    q.interval_minutes = p.range.interval_minutes();
    q.api = p.api.clone();
    q.product = p.product.clone();
    q.subscription = p.subscription.clone();
    // A developer's every query is about their own traffic.
    q.user = (!scope.admin).then(|| scope.uid.clone());

    let data = match s.inner.analytics.clone() {
        None => None,
        Some(db) => {
            let catalog = c.clone();
            let query = q.clone();
            let read = tokio::task::spawn_blocking(move || read(&db, &catalog, &query)).await;
            match read {
                Ok(Ok(r)) => Some(r),
                Ok(Err(AnalyticsError::Query(m))) => return Err(bad_request(&v, &m)),
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "portal report failed");
                    return Err(unavailable(&v));
                }
                Err(e) => {
                    tracing::error!(error = %e, "portal report task failed");
                    return Err(unavailable(&v));
                }
            }
        }
    };
    let interval_secs = p.range.interval_minutes() * 60;
    let first = from / 60 * 60;
    let empty = Reports {
        overall: ReportRow::default(),
        times: Vec::new(),
        by_api: Vec::new(),
        by_product: Vec::new(),
        by_subscription: Vec::new(),
    };
    let disabled = data.is_none();
    let r = data.unwrap_or(empty);
    let starts: Vec<u64> = (0..r.times.len() as u64)
        .map(|i| first + i * interval_secs)
        .collect();
    let o = &r.overall;
    let has_traffic = o.call_count_total > 0;
    let charts = if has_traffic {
        charts_of(&r.times, &starts, p.range, o)
    } else {
        Vec::new()
    };
    let times = if has_traffic {
        r.times
            .iter()
            .zip(&starts)
            .map(|(t, start)| TimeRow {
                time: charts::bucket_name(*start, interval_secs),
                total: charts::count(t.call_count_total),
                success: charts::count(t.call_count_success),
                blocked: charts::count(t.call_count_blocked),
                failed: charts::count(t.call_count_failed),
                other: charts::count(t.call_count_other),
                error_rate: charts::percent(errors(t), t.call_count_total),
                p50: pct_or_dash(t, t.api_time_p50),
                p95: pct_or_dash(t, t.api_time_p95),
                p99: pct_or_dash(t, t.api_time_p99),
                bandwidth: charts::bytes(t.bandwidth),
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut by_subscription = rows(&r.by_subscription, |r| r.subscription_id.as_deref());
    if !scope.admin {
        // Only the developer's own (current) subscriptions are named.
        for row in &mut by_subscription {
            if row.key != "none" && !scope.subscriptions.contains_key(&row.key) {
                row.name = "(a former subscription)".into();
            }
        }
    }
    let (from_date, from_time) = charts::utc_parts(first);
    let (to_date, to_time) = charts::utc_parts(to);
    let page = ReportsPage {
        chrome: v.chrome("Reports"),
        admin: scope.admin,
        disabled,
        range_key: p.range.key(),
        range_label: p.range.label(),
        interval_label: p.range.interval_label(),
        period: format!("{from_date} {from_time} – {to_date} {to_time} UTC"),
        ranges: Range::ALL
            .into_iter()
            .map(|r| RangeLink {
                key: r.key(),
                label: r.label(),
                href: href(r, &p),
                current: r == p.range,
            })
            .collect(),
        apis: choices(&scope.apis, &p.api),
        products: choices(&scope.products, &p.product),
        subscriptions: choices(&scope.subscriptions, &p.subscription),
        filtered: p.api.is_some() || p.product.is_some() || p.subscription.is_some(),
        has_traffic,
        tiles: Tiles {
            total: charts::count(o.call_count_total),
            success: charts::count(o.call_count_success),
            errors: charts::count(errors(o)),
            error_rate: charts::percent(errors(o), o.call_count_total),
            p95: charts::ms(o.api_time_p95),
            bandwidth: charts::bytes(o.bandwidth),
        },
        charts,
        times,
        by_api: rows(&r.by_api, |r| r.api_id.as_deref()),
        by_product: rows(&r.by_product, |r| r.product_id.as_deref()),
        by_subscription,
    };
    let mut resp = render(&page);
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

fn pct_or_dash(r: &ReportRow, v: f64) -> String {
    if r.call_count_total == 0 {
        "—".into()
    } else {
        charts::ms(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_align_on_whole_intervals() {
        // 2026-11-24T06:05:30Z
        let now = 1_795_500_330;
        let (from, to) = Range::Hour.window(now);
        assert_eq!(to, now);
        assert_eq!(from, 1_795_500_300 - 59 * 60);
        let (from, _) = Range::Day.window(now);
        assert_eq!(crate::model::rfc3339(from), "2026-11-23T07:00:00Z");
        let (from, _) = Range::Week.window(now);
        assert_eq!(crate::model::rfc3339(from), "2026-11-17T12:00:00Z");
        let (from, _) = Range::Month.window(now);
        assert_eq!(crate::model::rfc3339(from), "2026-10-26T00:00:00Z");
        for r in Range::ALL {
            let (from, to) = r.window(now);
            let (first, last) = (from / 60, to / 60);
            assert_eq!(
                (last - first) / r.interval_minutes() + 1,
                r.buckets(),
                "{r:?}"
            );
            assert_eq!(Range::parse(r.key()), Some(r));
        }
        assert_eq!(Range::parse("2h"), None);
    }

    fn scope() -> Scope {
        let names = |ids: &[&str]| {
            ids.iter()
                .map(|i| (i.to_string(), i.to_uppercase()))
                .collect()
        };
        Scope {
            admin: false,
            uid: "ada".into(),
            apis: names(&["echo"]),
            products: names(&["starter"]),
            subscriptions: names(&["s1"]),
        }
    }

    #[test]
    fn parameters_are_checked_against_the_scope() {
        let s = scope();
        let p = params(None, &s).unwrap();
        assert_eq!(p.range, Range::Day);
        assert!(p.api.is_none());
        let p = params(Some("range=7d&api=echo&product=&subscription=s1&x=1"), &s).unwrap();
        assert_eq!(p.range, Range::Week);
        assert_eq!(p.api.as_deref(), Some("echo"));
        assert_eq!(p.product, None, "an empty select means all");
        assert_eq!(
            href(Range::Hour, &p),
            "/reports?range=1h&api=echo&subscription=s1"
        );
        for bad in [
            "range=2h",
            "range=",
            "range=1h&range=24h",
            "api=other",
            "product=gold",
            "subscription=s2",
            "api=echo&api=echo",
        ] {
            assert!(params(Some(bad), &s).is_err(), "{bad}");
        }
    }
}
