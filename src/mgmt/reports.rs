//! `GET /mgmt/reports/{byApi|byOperation|byProduct|bySubscription|byUser|
//! byRegion|byTime}`: APIM's Reports API over the analytics aggregates.
//!
//! Owns: reading the query (`from`/`to` RFC 3339 or APIM's `$filter=timestamp
//! ge … and timestamp le …`, `interval` as an ISO 8601 duration, id filters
//! as parameters or `$filter` `eq` clauses, `$top`, `$skip`, `$orderby`) and
//! the list shape `{"value", "count", "nextLink"}`. The numbers come from
//! [`crate::analytics::report`].

use super::MgmtState;
use crate::analytics::report::{sort_rows, GroupBy, ReportQuery};
use crate::analytics::AnalyticsError;
use crate::error::{ApiError, Code};
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};

/// The report `kind` (`byApi`, …) of the range and filters in the query.
pub async fn report(
    State(s): State<MgmtState>,
    Path(kind): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let group_by = GroupBy::from_route(&kind)
        .ok_or_else(|| ApiError::not_found(format!("report {kind:?}")))?;
    let Some(db) = s.analytics.clone() else {
        return Err(ApiError::new(
            Code::NotSupported,
            "analytics is off ([analytics] enabled = false)",
        ));
    };
    let params = Params::parse(q.as_deref().unwrap_or(""), group_by)?;
    let catalog = s.store.catalog();
    let query = params.query.clone();
    let rows = tokio::task::spawn_blocking(move || crate::analytics::report(&db, &catalog, &query))
        .await
        .map_err(|_| ApiError::internal())?;
    let mut rows = match rows {
        Ok(r) => r,
        Err(AnalyticsError::Query(m)) => return Err(ApiError::invalid("$filter", m)),
        Err(e) => {
            tracing::error!(error = %e, "a report failed");
            return Err(ApiError::internal());
        }
    };
    if let Some((field, desc)) = &params.order {
        sort_rows(&mut rows, field, *desc).map_err(|m| ApiError::invalid("$orderby", m))?;
    }
    let count = rows.len();
    let value: Vec<_> = rows
        .into_iter()
        .skip(params.skip)
        .take(params.top)
        .collect();
    Ok(axum::Json(serde_json::json!({
        "value": value,
        "count": count,
        "nextLink": null,
    }))
    .into_response())
}

/// Adds the analytics batches of a heartbeat from gateway `gid` (in
/// `region`) to the aggregates, each once (a batch whose sequence is not
/// newer than the last accepted from `gid` is skipped). `Err` is the
/// answer to give: 400 for a malformed batch, 500 when the store fails (the
/// secondary keeps its batches and sends them again).
pub async fn accept_batches(
    s: &MgmtState,
    gid: &str,
    region: &str,
    batches: Vec<serde_json::Value>,
) -> Result<(), Response> {
    if batches.is_empty() {
        return Ok(());
    }
    let Some(db) = s.analytics.clone() else {
        return Ok(());
    };
    let mut parsed: Vec<crate::analytics::Batch> = Vec::with_capacity(batches.len());
    for b in batches {
        let batch = serde_json::from_value(b).map_err(|e| {
            ApiError::new(
                Code::MalformedBody,
                format!("an analytics batch of the heartbeat is malformed: {e}"),
            )
            .into_response()
        })?;
        parsed.push(batch);
    }
    parsed.sort_by_key(|b| b.sequence);
    let (gid, region) = (gid.to_string(), region.to_string());
    let merged = tokio::task::spawn_blocking(move || {
        let mut added = 0usize;
        for b in &parsed {
            if db.merge_from(&b.rows, &gid, b.sequence, Some(&region))? {
                added += 1;
            }
        }
        Ok::<_, AnalyticsError>(added)
    })
    .await;
    match merged {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "storing a secondary's analytics failed");
            Err(ApiError::internal().into_response())
        }
        Err(e) => {
            tracing::error!(error = %e, "the analytics merge task failed");
            Err(ApiError::internal().into_response())
        }
    }
}

/// A report request's parameters.
#[derive(Debug, Clone, PartialEq)]
struct Params {
    query: ReportQuery,
    top: usize,
    skip: usize,
    order: Option<(String, bool)>,
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

fn time(target: &str, v: &str) -> Result<u64, ApiError> {
    let v = v.trim().trim_matches('\'');
    humantime::parse_rfc3339_weak(v)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .ok_or_else(|| {
            ApiError::invalid(
                target,
                format!("must be an RFC 3339 UTC time like 2026-01-31T00:00:00Z, not {v:?}"),
            )
        })
}

/// `/apis/x` → `x` (APIM's id paths are accepted as well as plain ids).
fn plain_id(v: &str) -> String {
    let v = v.trim().trim_matches('\'');
    v.rsplit('/').next().unwrap_or(v).to_string()
}

impl Params {
    fn parse(raw: &str, group_by: GroupBy) -> Result<Params, ApiError> {
        let mut from = None;
        let mut to = None;
        let mut q = ReportQuery::new(0, 0, group_by);
        let mut top = usize::MAX;
        let mut skip = 0usize;
        let mut order = None;
        let mut interval = None;
        for pair in raw.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let (k, v) = (decode(k), decode(v));
            let number = |name: &str| {
                v.parse::<usize>()
                    .map_err(|_| ApiError::invalid(name, "must be a non-negative integer"))
            };
            match k.as_str() {
                "from" => from = Some(time("from", &v)?),
                "to" => to = Some(time("to", &v)?),
                "interval" => interval = Some(v.clone()),
                "$top" => top = number("$top")?,
                "$skip" => skip = number("$skip")?,
                "$orderby" => {
                    let mut parts = v.split_whitespace();
                    let field = parts.next().unwrap_or("").to_string();
                    let desc = match parts.next().map(|d| d.to_ascii_lowercase()) {
                        None => false,
                        Some(d) if d == "asc" => false,
                        Some(d) if d == "desc" => true,
                        Some(d) => {
                            return Err(ApiError::invalid(
                                "$orderby",
                                format!("expected asc or desc, not {d:?}"),
                            ))
                        }
                    };
                    order = Some((field, desc));
                }
                "$filter" => filter(&v, &mut from, &mut to, &mut q)?,
                "apiId" => q.api = Some(plain_id(&v)),
                "operationId" => q.operation = Some(plain_id(&v)),
                "productId" => q.product = Some(plain_id(&v)),
                "subscriptionId" => q.subscription = Some(plain_id(&v)),
                "userId" => q.user = Some(plain_id(&v)),
                "region" => q.region = Some(v.trim_matches('\'').to_string()),
                "api-version" => {}
                other => {
                    return Err(ApiError::invalid(
                        other,
                        "unknown parameter (from, to, interval, $filter, $top, $skip, \
                         $orderby, apiId, operationId, productId, subscriptionId, userId, \
                         region)",
                    ))
                }
            }
        }
        let (Some(from), Some(to)) = (from, to) else {
            return Err(ApiError::invalid(
                "$filter",
                "a range is required: from and to (RFC 3339), or \
                 $filter=timestamp ge <time> and timestamp le <time>",
            ));
        };
        if from > to {
            return Err(ApiError::invalid(
                "$filter",
                "the range ends before it starts (from is after to)",
            ));
        }
        q.from = from;
        q.to = to;
        if let Some(iv) = interval {
            let d = crate::model::duration::parse_iso8601(&iv)
                .filter(|d| {
                    d.as_secs() >= 60 && d.as_secs().is_multiple_of(60) && d.subsec_nanos() == 0
                })
                .ok_or_else(|| {
                    ApiError::invalid(
                        "interval",
                        format!(
                            "must be an ISO 8601 duration of whole minutes (e.g. PT15M), not {iv:?}"
                        ),
                    )
                })?;
            q.interval_minutes = d.as_secs() / 60;
        }
        if group_by == GroupBy::Time {
            let buckets = (to / 60 - from / 60) / q.interval_minutes + 1;
            if buckets > crate::analytics::report::MAX_BUCKETS {
                return Err(ApiError::invalid(
                    "interval",
                    format!(
                        "the range holds {buckets} intervals; at most {} are allowed",
                        crate::analytics::report::MAX_BUCKETS
                    ),
                ));
            }
        }
        Ok(Params {
            query: q,
            top,
            skip,
            order,
        })
    }
}

/// APIM's `$filter`: clauses joined by `and`: `timestamp ge|gt|le|lt <time>`,
/// `apiId|operationId|productId|subscriptionId|userId|region eq '<id>'`.
fn filter(
    text: &str,
    from: &mut Option<u64>,
    to: &mut Option<u64>,
    q: &mut ReportQuery,
) -> Result<(), ApiError> {
    let bad = |clause: &str| {
        ApiError::invalid(
            "$filter",
            format!(
                "cannot read {clause:?}: expected clauses joined by 'and' like \
                 timestamp ge 2026-01-31T00:00:00Z or apiId eq 'echo'"
            ),
        )
    };
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut clauses: Vec<Vec<&str>> = vec![Vec::new()];
    for w in words {
        if w.eq_ignore_ascii_case("and") {
            clauses.push(Vec::new());
        } else if let Some(last) = clauses.last_mut() {
            last.push(w);
        }
    }
    for c in clauses {
        let clause = c.join(" ");
        let [field, op, value] = c.as_slice() else {
            return Err(bad(&clause));
        };
        let op = op.to_ascii_lowercase();
        match (*field, op.as_str()) {
            ("timestamp", "ge") => *from = Some(time("$filter", value)?),
            ("timestamp", "gt") => *from = Some(time("$filter", value)?.saturating_add(1)),
            ("timestamp", "le") => *to = Some(time("$filter", value)?),
            ("timestamp", "lt") => *to = Some(time("$filter", value)?.saturating_sub(1)),
            ("apiId", "eq") => q.api = Some(plain_id(value)),
            ("operationId", "eq") => q.operation = Some(plain_id(value)),
            ("productId", "eq") => q.product = Some(plain_id(value)),
            ("subscriptionId", "eq") => q.subscription = Some(plain_id(value)),
            ("userId", "eq") => q.user = Some(plain_id(value)),
            ("region", "eq") => q.region = Some(value.trim_matches('\'').to_string()),
            _ => return Err(bad(&clause)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ranges_filters_and_paging() {
        let p = Params::parse(
            "from=2026-01-01T00:00:00Z&to=2026-01-01T01:00:00Z&interval=PT15M&$top=2&$skip=1&apiId=%2Fapis%2Fecho&$orderby=callCountTotal%20desc",
            GroupBy::Time,
        )
        .unwrap();
        assert_eq!(p.query.to - p.query.from, 3600);
        assert_eq!(p.query.interval_minutes, 15);
        assert_eq!(p.query.api.as_deref(), Some("echo"));
        assert_eq!((p.top, p.skip), (2, 1));
        assert_eq!(p.order, Some(("callCountTotal".into(), true)));

        let p = Params::parse(
            "%24filter=timestamp%20ge%202026-01-01T00:00:00Z%20and%20timestamp%20le%202026-01-02T00:00:00Z%20and%20productId%20eq%20'starter'",
            GroupBy::Product,
        )
        .unwrap();
        assert_eq!(p.query.to - p.query.from, 86_400);
        assert_eq!(p.query.product.as_deref(), Some("starter"));
    }

    #[test]
    fn refuses_bad_queries() {
        for q in [
            "",
            "from=2026-01-01T00:00:00Z",
            "from=yesterday&to=2026-01-01T00:00:00Z",
            "from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
            "from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z&interval=PT30S",
            "from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z&interval=15",
            "from=2020-01-01T00:00:00Z&to=2026-01-02T00:00:00Z&interval=PT1M",
            "$filter=timestamp%20ge%20x",
            "$filter=name%20eq%20'x'",
            "from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z&$top=-1",
            "from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z&bogus=1",
        ] {
            let e = Params::parse(q, GroupBy::Time).unwrap_err();
            assert_eq!(e.code, Code::ValidationError, "{q}");
        }
    }
}
