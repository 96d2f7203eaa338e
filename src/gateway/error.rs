//! The gateway's one rescue point: every failure becomes an APIM-shaped
//! JSON response `{"statusCode": N, "message": "..."}`.
//!
//! Errors carry their source (configuration, authorization, backend,
//! internal) and APIM's machine reason; both feed `context.LastError` once the
//! policy engine runs `on-error`, and the access log today.

use super::Body;
use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full};

/// Where a gateway error came from (APIM's `LastError.Source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorSource {
    /// No API or operation matched.
    Configuration,
    /// The subscription-key check failed.
    Authorization,
    /// The backend could not be reached or answered too late.
    Backend,
    /// A fault inside turnpike.
    Internal,
}

impl ErrorSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorSource::Configuration => "configuration",
            ErrorSource::Authorization => "authorization",
            ErrorSource::Backend => "forward-request",
            ErrorSource::Internal => "internal",
        }
    }
}

/// A failure while serving a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayError {
    pub status: StatusCode,
    pub source: ErrorSource,
    /// APIM's reason code, e.g. `OperationNotFound`.
    pub reason: &'static str,
    /// The message sent to the client.
    pub message: &'static str,
}

pub const MISSING_KEY: &str = "Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API.";
pub const INVALID_KEY: &str = "Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription.";

impl GatewayError {
    pub fn not_found() -> Self {
        GatewayError {
            status: StatusCode::NOT_FOUND,
            source: ErrorSource::Configuration,
            reason: "OperationNotFound",
            message: "Resource not found",
        }
    }

    /// A request path with a `.` or `..` segment (also `%2e`-encoded or
    /// behind an encoded slash): refused rather than resolved, so no
    /// request leaves its API's path or its backend's base path.
    pub fn dot_segment() -> Self {
        GatewayError {
            status: StatusCode::BAD_REQUEST,
            source: ErrorSource::Configuration,
            reason: "InvalidPath",
            message: "Bad request: the path has a '.' or '..' segment.",
        }
    }

    /// The client's request body could not be read while forwarding it
    /// (malformed chunked encoding, the client went away).
    pub fn client_body() -> Self {
        GatewayError {
            status: StatusCode::BAD_REQUEST,
            source: ErrorSource::Backend,
            reason: "ClientConnectionFailure",
            message: "Bad request: the request body could not be read.",
        }
    }

    pub fn missing_key() -> Self {
        GatewayError {
            status: StatusCode::UNAUTHORIZED,
            source: ErrorSource::Authorization,
            reason: "SubscriptionKeyNotFound",
            message: MISSING_KEY,
        }
    }

    pub fn invalid_key() -> Self {
        GatewayError {
            status: StatusCode::UNAUTHORIZED,
            source: ErrorSource::Authorization,
            reason: "SubscriptionKeyInvalid",
            message: INVALID_KEY,
        }
    }

    pub fn backend_unreachable() -> Self {
        GatewayError {
            status: StatusCode::BAD_GATEWAY,
            source: ErrorSource::Backend,
            reason: "BackendConnectionFailure",
            message: "Bad gateway: the backend service could not be reached.",
        }
    }

    pub fn backend_timeout() -> Self {
        GatewayError {
            status: StatusCode::GATEWAY_TIMEOUT,
            source: ErrorSource::Backend,
            reason: "Timeout",
            message: "Gateway timeout: the backend service did not respond in time.",
        }
    }

    pub fn no_backend() -> Self {
        GatewayError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            source: ErrorSource::Configuration,
            reason: "BackendServiceUrlNotDefined",
            message: "Internal server error: the API has no backend service URL.",
        }
    }

    pub fn internal() -> Self {
        GatewayError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            source: ErrorSource::Internal,
            reason: "InternalError",
            message: "Internal server error",
        }
    }

    /// The response the client receives.
    pub fn into_response(&self) -> Response<Body> {
        let body = serde_json::json!({
            "statusCode": self.status.as_u16(),
            "message": self.message,
        });
        json_response(self.status, body.to_string())
    }
}

/// A small JSON response.
pub fn json_response(status: StatusCode, body: String) -> Response<Body> {
    let mut resp = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|e| match e {})
            .boxed_unsync(),
    );
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp
}
