//! The request pipeline: the fixed order of policy sections.
//!
//! Owns: running `inbound` → `backend` → `outbound` for one matched request,
//! with `on-error` as the single failure exit (APIM §2.5–§2.6). Each section
//! is a list of steps; today the only step is the default backend section's
//! `forward-request`. The policy engine fills [`Section`]s from the composed
//! global → product → API → operation documents without changing this order.
//!
//! **Invariant:** a request runs on the one snapshot it started with.

use super::error::GatewayError;
use super::proxy::Upstream;
use super::Body;
use crate::snapshot::{ApiEntry, OperationEntry, Snapshot};
use http::request::Parts;
use http::{Response, Uri};
use std::net::SocketAddr;
use std::sync::Arc;

/// The sections of a policy document, in the order a request meets them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Inbound,
    Backend,
    Outbound,
    OnError,
}

/// Everything known about one request while it runs through the pipeline.
pub struct RequestCtx {
    pub snapshot: Arc<Snapshot>,
    pub api: usize,
    pub operation: usize,
    /// Index into `snapshot.products` when the request runs in a product's
    /// context (product-scoped key or open product).
    pub product: Option<usize>,
    /// The subscription the key belongs to, when a valid key was given.
    pub subscription: Option<String>,
    pub client: SocketAddr,
    /// `http` or `https` as the client spoke it.
    pub scheme: &'static str,
    pub request: Parts,
    pub body: Option<Body>,
    /// The request path after the API path ("" or starting with '/').
    pub rest: String,
    /// Where `forward-request` sends the request (set-backend-service moves it).
    pub backend_url: Option<Uri>,
    pub last_error: Option<GatewayError>,
}

impl RequestCtx {
    pub fn api(&self) -> &ApiEntry {
        &self.snapshot.apis[self.api]
    }

    pub fn operation(&self) -> &OperationEntry {
        &self.api().operations[self.operation]
    }
}

/// What a section tells the pipeline to do next.
pub enum Flow {
    /// Go on with the next section.
    Continue,
    /// Stop and send this response (return-response, a cache hit, ...).
    Respond(Response<Body>),
}

/// Runs the pipeline to a response.
pub async fn run(ctx: &mut RequestCtx, upstream: &Upstream) -> Response<Body> {
    match run_sections(ctx, upstream).await {
        Ok(resp) => resp,
        Err(err) => on_error(ctx, err),
    }
}

async fn run_sections(
    ctx: &mut RequestCtx,
    upstream: &Upstream,
) -> Result<Response<Body>, GatewayError> {
    if let Flow::Respond(resp) = inbound(ctx)? {
        return Ok(resp);
    }
    let resp = backend(ctx, upstream).await?;
    outbound(ctx, resp)
}

/// `inbound`: no policies yet.
fn inbound(_ctx: &mut RequestCtx) -> Result<Flow, GatewayError> {
    Ok(Flow::Continue)
}

/// `backend`: the default global section, `<forward-request/>`.
async fn backend(
    ctx: &mut RequestCtx,
    upstream: &Upstream,
) -> Result<Response<Body>, GatewayError> {
    if ctx.backend_url.is_none() {
        let base = ctx
            .api()
            .service_url
            .clone()
            .ok_or_else(GatewayError::no_backend)?;
        let url = base
            .join(&ctx.rest, ctx.request.uri.query())
            .map_err(|_| GatewayError::internal())?;
        ctx.backend_url = Some(url);
    }
    upstream.forward(ctx).await
}

/// `outbound`: no policies yet.
fn outbound(_ctx: &mut RequestCtx, resp: Response<Body>) -> Result<Response<Body>, GatewayError> {
    Ok(resp)
}

/// `on-error`: records the error and answers with APIM's default body.
fn on_error(ctx: &mut RequestCtx, err: GatewayError) -> Response<Body> {
    let resp = err.into_response();
    ctx.last_error = Some(err);
    resp
}
