//! The gateway's side of analytics: what one answered request adds to the
//! per-minute aggregates ([`crate::analytics::Recorder`], owned by the
//! `Gateway`). Reuses what the metrics already measure (ids, status,
//! durations, sizes known at the response head).

use super::error::GatewayError;
use super::pipeline::RequestCtx;
use super::Body;
use crate::analytics::{Recorder, Sample};
use crate::snapshot::Snapshot;
use http::Response;
use std::time::Instant;

/// Adds one answered request to `recorder`. `ctx` is the pipeline's state
/// (`None`: refused before it, e.g. a missing key; the API and operation are
/// then matched again from `snapshot` and `uri`).
pub fn record(
    recorder: &Recorder,
    ctx: Option<&RequestCtx>,
    refused: Option<(&GatewayError, &Snapshot, &http::Uri, &http::Method)>,
    resp: &Response<Body>,
    started: Instant,
    request_bytes: u64,
) {
    use http_body::Body as _;
    let response_bytes = resp
        .body()
        .size_hint()
        .exact()
        .unwrap_or_else(|| super::content_length(resp.headers()));
    let mut s = Sample {
        status: resp.status().as_u16(),
        bytes_in: request_bytes,
        bytes_out: response_bytes,
        total: started.elapsed(),
        ..Sample::default()
    };
    match (ctx, refused) {
        (Some(c), _) => {
            s.api = c.api().id.as_ref();
            s.operation = c.operation().id.as_ref();
            s.product = c
                .product
                .map(|p| c.snapshot.products[p].id.as_ref())
                .unwrap_or("");
            s.subscription = c.subscription.as_deref().unwrap_or("");
            s.user = c.state.ctx.user.as_ref().map_or("", |u| u.id.as_str());
            s.backend = Some(c.backend_time).filter(|d| !d.is_zero());
            let cached = &c.state.cached;
            s.cache = if cached.hit {
                Some(true)
            } else if cached.key.is_some() {
                Some(false)
            } else {
                None
            };
            recorder.record(&s);
        }
        (None, Some((_, snap, uri, method))) => match snap.match_api(uri.path()) {
            Some(m) => {
                let segments: Vec<&str> = m.rest.split('/').filter(|s| !s.is_empty()).collect();
                let op = m
                    .api
                    .table
                    .find(method.as_str(), &segments, uri.query())
                    .map(|op| m.api.operations[op].id.as_ref());
                s.api = m.api.id.as_ref();
                s.operation = op.unwrap_or("");
                recorder.record(&s);
            }
            None => recorder.record(&s),
        },
        (None, None) => recorder.record(&s),
    }
}
