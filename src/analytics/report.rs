//! The query layer: APIM's reports (`byApi`, `byOperation`, `byProduct`,
//! `bySubscription`, `byUser`, `byRegion`, `byTime`) computed from the
//! persisted per-minute aggregates.
//!
//! Owns: [`ReportQuery`] (time range, grouping, filters), [`ReportRow`]
//! (APIM's `ReportRecordContract` fields plus latency percentiles) and
//! [`report`]. The management API (`GET /mgmt/reports/*`) and the portal's
//! Reports page both call [`report`].

use super::db::{AnalyticsDb, AnalyticsError};
use super::{Cell, Dims, HIST_CELLS, LATENCY_BUCKETS_MS};
use crate::model::Catalog;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Most `byTime` buckets one query may ask for.
pub const MAX_BUCKETS: u64 = 10_000;

/// What a report's rows are grouped by (the `by…` of the route).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupBy {
    Api,
    Operation,
    Product,
    Subscription,
    User,
    Region,
    Time,
}

impl GroupBy {
    /// The grouping of a route's last segment (`byApi` → `Api`, …).
    pub fn from_route(name: &str) -> Option<GroupBy> {
        Some(match name {
            "byApi" => GroupBy::Api,
            "byOperation" => GroupBy::Operation,
            "byProduct" => GroupBy::Product,
            "bySubscription" => GroupBy::Subscription,
            "byUser" => GroupBy::User,
            "byRegion" => GroupBy::Region,
            "byTime" => GroupBy::Time,
            _ => return None,
        })
    }
}

/// One report request.
///
/// The range covers the minutes whose start lies in `[from, to]`, `from`
/// rounded down to its minute (both in seconds since the Unix epoch,
/// `from <= to`). Filters are plain resource ids (`"echo-api"`, not
/// `"/apis/echo-api"`); `None` means any. A request without a product,
/// subscription or user is grouped under the empty id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportQuery {
    /// Seconds since the Unix epoch, inclusive.
    pub from: u64,
    /// Seconds since the Unix epoch, inclusive.
    pub to: u64,
    /// Bucket length in minutes for [`GroupBy::Time`] (at least 1; ignored
    /// by the other groupings). Buckets start at `from`'s minute.
    pub interval_minutes: u64,
    pub group_by: GroupBy,
    pub api: Option<String>,
    pub operation: Option<String>,
    pub product: Option<String>,
    pub subscription: Option<String>,
    pub user: Option<String>,
    pub region: Option<String>,
}

impl ReportQuery {
    /// A query of `[from, to]` grouped by `group_by`, no filters, 15-minute
    /// buckets (APIM's default interval).
    pub fn new(from: u64, to: u64, group_by: GroupBy) -> ReportQuery {
        ReportQuery {
            from,
            to,
            interval_minutes: 15,
            group_by,
            api: None,
            operation: None,
            product: None,
            subscription: None,
            user: None,
            region: None,
        }
    }

    fn admits(&self, d: &Dims) -> bool {
        let ok = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        ok(&self.api, &d.api)
            && ok(&self.operation, &d.operation)
            && ok(&self.product, &d.product)
            && ok(&self.subscription, &d.subscription)
            && ok(&self.user, &d.user)
            && ok(&self.region, &d.region)
    }
}

/// One report row, in APIM's `ReportRecordContract` shape (camelCase JSON).
///
/// Ids are APIM's paths: `apiId` `/apis/{api}`, `operationId`
/// `/apis/{api}/operations/{op}`, `productId` `/products/{id}`,
/// `subscriptionId` `/subscriptions/{id}`, `userId` `/users/{id}`; only the
/// ones of the grouping are set (`byOperation` sets `apiId` and
/// `operationId`); requests without a product/subscription/user form the
/// row whose id is absent and whose name is `(none)`. `name` is the
/// display name from the current configuration (`byUser`: "First Last";
/// `byRegion`: the region; `byTime`: the timestamp), else the id.
///
/// Counts follow APIM: success = status ≤ 301, 304 or 307; blocked = 401,
/// 403, 429; failed = 400 or 5xx; other = the rest (404 among them).
/// `bandwidth` is request plus response body bytes. Times are
/// milliseconds: `apiTime*` from arrival to the response head,
/// `serviceTime*` waiting for the backend (over requests that reached
/// one; 0 when none did); `apiTimeP50/P95/P99` are estimated from the
/// latency histogram (interpolated within a bucket, clamped to min/max).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportRow {
    pub name: String,
    /// `byTime`: the bucket's start (RFC 3339, UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// `byTime`: the bucket's length (ISO 8601, e.g. `PT15M`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub call_count_success: u64,
    pub call_count_blocked: u64,
    pub call_count_failed: u64,
    pub call_count_other: u64,
    pub call_count_total: u64,
    pub bandwidth: u64,
    pub cache_hit_count: u64,
    pub cache_miss_count: u64,
    pub api_time_avg: f64,
    pub api_time_min: f64,
    pub api_time_max: f64,
    pub service_time_avg: f64,
    pub service_time_min: f64,
    pub service_time_max: f64,
    #[serde(rename = "apiTimeP50")]
    pub api_time_p50: f64,
    #[serde(rename = "apiTimeP95")]
    pub api_time_p95: f64,
    #[serde(rename = "apiTimeP99")]
    pub api_time_p99: f64,
}

/// Computes one report from the persisted aggregates in `db`, naming rows
/// from `catalog` (the current configuration; `Store::catalog()`).
///
/// Rows come ordered by `callCountTotal` descending, then `name` (`byTime`:
/// by timestamp, every bucket of the range present, empty ones zero).
/// Errors: [`AnalyticsError::Query`] for `from > to`, a zero interval or
/// more than [`MAX_BUCKETS`] buckets (client mistakes); the other variants
/// are storage failures.
///
/// Reads sled (a range scan of the minutes asked for): call it from a
/// blocking thread (`tokio::task::spawn_blocking`) in async code.
///
/// ```no_run
/// # use turnpike::analytics::{report, AnalyticsDb, GroupBy, ReportQuery};
/// # fn f(db: &AnalyticsDb, catalog: &turnpike::model::Catalog) {
/// let mut q = ReportQuery::new(1_700_000_000, 1_700_086_400, GroupBy::Time);
/// q.interval_minutes = 60;
/// q.user = Some("alice".into());
/// let rows = report(db, catalog, &q).unwrap_or_default();
/// # }
/// ```
pub fn report(
    db: &AnalyticsDb,
    catalog: &Catalog,
    q: &ReportQuery,
) -> Result<Vec<ReportRow>, AnalyticsError> {
    if q.from > q.to {
        return Err(AnalyticsError::Query(
            "the range ends before it starts (from > to)".into(),
        ));
    }
    let first = q.from / 60;
    let last = q.to / 60;
    let interval = q.interval_minutes;
    let buckets = if q.group_by == GroupBy::Time {
        if interval == 0 {
            return Err(AnalyticsError::Query(
                "interval must be at least one minute".into(),
            ));
        }
        let n = (last - first) / interval + 1;
        if n > MAX_BUCKETS {
            return Err(AnalyticsError::Query(format!(
                "the range holds {n} intervals; at most {MAX_BUCKETS} are allowed"
            )));
        }
        n
    } else {
        0
    };
    let mut groups: BTreeMap<Group, Cell> = BTreeMap::new();
    for row in db.scan(first, last)? {
        if !q.admits(&row.dims) {
            continue;
        }
        let g = group_of(q.group_by, &row.dims, row.minute, first, interval);
        groups.entry(g).or_default().merge(&row.cell);
    }
    if q.group_by == GroupBy::Time {
        for b in 0..buckets {
            groups.entry(Group::Time(first + b * interval)).or_default();
        }
    }
    let mut rows: Vec<ReportRow> = groups
        .into_iter()
        .map(|(g, cell)| {
            let mut r = row_of(&cell);
            g.describe(&mut r, catalog, interval);
            r
        })
        .collect();
    if q.group_by != GroupBy::Time {
        rows.sort_by(|a, b| {
            b.call_count_total
                .cmp(&a.call_count_total)
                .then_with(|| a.name.cmp(&b.name))
        });
    }
    Ok(rows)
}

/// Orders `rows` by a field of [`ReportRow`] (its JSON name, e.g.
/// `callCountTotal`), ascending or descending (`$orderby`). `Err` names an
/// unknown field.
pub fn sort_rows(rows: &mut [ReportRow], field: &str, descending: bool) -> Result<(), String> {
    let known = [
        "name",
        "timestamp",
        "apiId",
        "operationId",
        "productId",
        "subscriptionId",
        "userId",
        "region",
    ];
    let numeric = serde_json::to_value(ReportRow::default())
        .ok()
        .and_then(|v| v.get(field).map(|f| f.is_number()))
        .unwrap_or(false);
    if !numeric && !known.contains(&field) {
        return Err(format!("cannot order by {field:?}"));
    }
    let key = |r: &ReportRow| -> serde_json::Value {
        serde_json::to_value(r)
            .ok()
            .and_then(|v| v.get(field).cloned())
            .unwrap_or(serde_json::Value::Null)
    };
    let mut keyed: Vec<(serde_json::Value, ReportRow)> =
        rows.iter().map(|r| (key(r), r.clone())).collect();
    keyed.sort_by(|(a, _), (b, _)| {
        let o = match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
            _ => a.as_str().unwrap_or("").cmp(b.as_str().unwrap_or("")),
        };
        if descending {
            o.reverse()
        } else {
            o
        }
    });
    for (slot, (_, r)) in rows.iter_mut().zip(keyed) {
        *slot = r;
    }
    Ok(())
}

/// A report row's group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Group {
    Api(String),
    Operation(String, String),
    Product(String),
    Subscription(String),
    User(String),
    Region(String),
    /// The bucket's first minute.
    Time(u64),
}

fn group_of(by: GroupBy, d: &Dims, minute: u64, first: u64, interval: u64) -> Group {
    match by {
        GroupBy::Api => Group::Api(d.api.clone()),
        GroupBy::Operation => Group::Operation(d.api.clone(), d.operation.clone()),
        GroupBy::Product => Group::Product(d.product.clone()),
        GroupBy::Subscription => Group::Subscription(d.subscription.clone()),
        GroupBy::User => Group::User(d.user.clone()),
        GroupBy::Region => Group::Region(d.region.clone()),
        GroupBy::Time => {
            Group::Time(first + (minute.saturating_sub(first) / interval.max(1)) * interval.max(1))
        }
    }
}

const NONE: &str = "(none)";

fn nonempty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

impl Group {
    fn describe(&self, r: &mut ReportRow, c: &Catalog, interval: u64) {
        match self {
            Group::Api(a) => {
                r.api_id = nonempty(a).map(|a| format!("/apis/{a}"));
                r.name = c
                    .apis
                    .get(a)
                    .map(|x| x.display_name.clone())
                    .unwrap_or_else(|| or_none(a));
            }
            Group::Operation(a, o) => {
                r.api_id = nonempty(a).map(|a| format!("/apis/{a}"));
                r.operation_id = nonempty(o).map(|o| format!("/apis/{a}/operations/{o}"));
                r.name = c
                    .operations
                    .get(a)
                    .and_then(|ops| ops.get(o))
                    .map(|x| x.display_name.clone())
                    .unwrap_or_else(|| or_none(o));
            }
            Group::Product(p) => {
                r.product_id = nonempty(p).map(|p| format!("/products/{p}"));
                r.name = c
                    .products
                    .get(p)
                    .map(|x| x.display_name.clone())
                    .unwrap_or_else(|| or_none(p));
            }
            Group::Subscription(s) => {
                r.subscription_id = nonempty(s).map(|s| format!("/subscriptions/{s}"));
                r.name = c
                    .subscriptions
                    .get(s)
                    .map(|x| x.display_name.clone())
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| or_none(s));
            }
            Group::User(u) => {
                r.user_id = nonempty(u).map(|u| format!("/users/{u}"));
                r.name = c
                    .users
                    .get(u)
                    .map(|x| {
                        format!("{} {}", x.first_name, x.last_name)
                            .trim()
                            .to_string()
                    })
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| or_none(u));
            }
            Group::Region(g) => {
                r.region = Some(g.clone());
                r.name = or_none(g);
            }
            Group::Time(m) => {
                let ts = crate::model::rfc3339(m.saturating_mul(60));
                r.name = ts.clone();
                r.timestamp = Some(ts);
                r.interval = Some(iso_minutes(interval));
            }
        }
    }
}

fn or_none(id: &str) -> String {
    if id.is_empty() {
        NONE.to_string()
    } else {
        id.to_string()
    }
}

/// `minutes` as an ISO 8601 duration (`PT15M`, `PT1H`, `P1D`, `P1DT6H`).
pub fn iso_minutes(minutes: u64) -> String {
    let (d, h, m) = (minutes / 1440, (minutes % 1440) / 60, minutes % 60);
    let mut s = String::from("P");
    if d > 0 {
        s.push_str(&format!("{d}D"));
    }
    if h > 0 || m > 0 || d == 0 {
        s.push('T');
        if h > 0 {
            s.push_str(&format!("{h}H"));
        }
        if m > 0 || h == 0 {
            s.push_str(&format!("{m}M"));
        }
    }
    s
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// A row's counts and times from an aggregate.
fn row_of(c: &Cell) -> ReportRow {
    let avg = |sum: u64, n: u64| if n == 0 { 0.0 } else { ms(sum) / n as f64 };
    ReportRow {
        call_count_success: c.success,
        call_count_blocked: c.blocked,
        call_count_failed: c.failed,
        call_count_other: c.other,
        call_count_total: c.count,
        bandwidth: c.bytes_in + c.bytes_out,
        cache_hit_count: c.cache_hit,
        cache_miss_count: c.cache_miss,
        api_time_avg: avg(c.api_us_sum, c.count),
        api_time_min: ms(c.api_us_min),
        api_time_max: ms(c.api_us_max),
        service_time_avg: avg(c.service_us_sum, c.service_count),
        service_time_min: ms(c.service_us_min),
        service_time_max: ms(c.service_us_max),
        api_time_p50: percentile(c, 0.50),
        api_time_p95: percentile(c, 0.95),
        api_time_p99: percentile(c, 0.99),
        ..ReportRow::default()
    }
}

/// The `p` quantile (0–1) of the total time in ms, from the histogram:
/// linear within the bucket it falls in, clamped to the observed min/max.
pub fn percentile(c: &Cell, p: f64) -> f64 {
    let total: u64 = c.hist.iter().sum();
    if total == 0 {
        return 0.0;
    }
    let (lo_all, hi_all) = (ms(c.api_us_min), ms(c.api_us_max));
    let rank = (p * total as f64).max(1.0);
    let mut seen = 0u64;
    for i in 0..HIST_CELLS {
        let n = c.hist[i];
        if n == 0 {
            continue;
        }
        if (seen + n) as f64 >= rank {
            let lower = if i == 0 {
                0.0
            } else {
                LATENCY_BUCKETS_MS[i - 1]
            };
            let upper = LATENCY_BUCKETS_MS.get(i).copied().unwrap_or(hi_all);
            let lower = lower.max(lo_all);
            let upper = upper.min(hi_all).max(lower);
            let frac = (rank - seen as f64) / n as f64;
            return lower + (upper - lower) * frac;
        }
        seen += n;
    }
    hi_all
}

#[cfg(test)]
mod tests {
    use super::super::db::tests::{row, temp_db};
    use super::*;

    #[test]
    fn groups_filters_and_buckets() {
        let db = temp_db();
        db.merge(&[
            row(100, "a", 200, 5),
            row(100, "a", 404, 5),
            row(101, "b", 500, 20),
            row(130, "a", 429, 1),
        ])
        .unwrap();
        let mut catalog = Catalog::new();
        catalog.apis.insert(
            "a".into(),
            serde_json::from_value(serde_json::json!({
                "displayName": "Api A", "path": "a", "serviceUrl": "http://x"
            }))
            .unwrap(),
        );
        let q = ReportQuery::new(100 * 60, 130 * 60 + 59, GroupBy::Api);
        let rows = report(&db, &catalog, &q).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].name, "Api A");
        assert_eq!(rows[0].api_id.as_deref(), Some("/apis/a"));
        assert_eq!(rows[0].call_count_total, 3);
        assert_eq!(rows[0].call_count_success, 1);
        assert_eq!(rows[0].call_count_other, 1);
        assert_eq!(rows[0].call_count_blocked, 1);
        assert_eq!(rows[0].bandwidth, 33);
        assert_eq!(rows[1].name, "b");
        assert_eq!(rows[1].call_count_failed, 1);
        assert!(rows[0].api_time_min <= rows[0].api_time_avg);
        assert!(rows[0].api_time_avg <= rows[0].api_time_max);

        let mut t = ReportQuery::new(100 * 60, 130 * 60, GroupBy::Time);
        t.interval_minutes = 15;
        let rows = report(&db, &catalog, &t).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows.iter().map(|r| r.call_count_total).collect::<Vec<_>>(),
            [3, 0, 1]
        );
        assert_eq!(rows[0].interval.as_deref(), Some("PT15M"));
        assert_eq!(rows[0].timestamp.as_deref(), Some("1970-01-01T01:40:00Z"));

        t.api = Some("b".into());
        let total: u64 = report(&db, &catalog, &t)
            .unwrap()
            .iter()
            .map(|r| r.call_count_total)
            .sum();
        assert_eq!(total, 1);

        let none = ReportQuery::new(0, 60 * 99, GroupBy::Api);
        assert!(report(&db, &catalog, &none).unwrap().is_empty());
    }

    #[test]
    fn refuses_bad_ranges() {
        let db = temp_db();
        let c = Catalog::new();
        let inverted = ReportQuery::new(200, 100, GroupBy::Api);
        assert!(matches!(
            report(&db, &c, &inverted),
            Err(AnalyticsError::Query(_))
        ));
        let mut many = ReportQuery::new(0, 60 * 20_000, GroupBy::Time);
        many.interval_minutes = 1;
        assert!(matches!(
            report(&db, &c, &many),
            Err(AnalyticsError::Query(_))
        ));
        many.interval_minutes = 0;
        assert!(matches!(
            report(&db, &c, &many),
            Err(AnalyticsError::Query(_))
        ));
    }

    #[test]
    fn percentiles_and_intervals() {
        let mut c = Cell::default();
        for ms in [1, 2, 3, 4, 5, 6, 7, 8, 9, 200] {
            c.add(&super::super::Sample {
                status: 200,
                total: std::time::Duration::from_millis(ms),
                ..Default::default()
            });
        }
        let p50 = percentile(&c, 0.5);
        let p99 = percentile(&c, 0.99);
        assert!((2.5..=5.0).contains(&p50), "{p50}");
        assert!((100.0..=200.0).contains(&p99), "{p99}");
        assert!(p50 <= p99);
        assert_eq!(iso_minutes(15), "PT15M");
        assert_eq!(iso_minutes(60), "PT1H");
        assert_eq!(iso_minutes(1440), "P1D");
        assert_eq!(iso_minutes(1530), "P1DT1H30M");
    }

    #[test]
    fn orders_by_a_field() {
        let mut rows = vec![
            ReportRow {
                name: "b".into(),
                call_count_total: 1,
                ..Default::default()
            },
            ReportRow {
                name: "a".into(),
                call_count_total: 5,
                ..Default::default()
            },
        ];
        sort_rows(&mut rows, "name", false).unwrap();
        assert_eq!(rows[0].name, "a");
        sort_rows(&mut rows, "callCountTotal", false).unwrap();
        assert_eq!(rows[0].name, "b");
        assert!(sort_rows(&mut rows, "nope", false).is_err());
    }
}
