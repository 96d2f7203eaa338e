//! Admin authentication: `Authorization: Bearer <admin_key>`, compared in
//! constant time (`Secret::matches`: SHA-256 of both, digests compared
//! with `subtle`, so neither the position of a difference nor the key's
//! length shows in the timing).

use super::MgmtState;
use crate::error::{ApiError, Code};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

pub async fn require_admin(State(state): State<MgmtState>, req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let ok = presented.is_some_and(|p| state.admin_key.matches(p));
    if ok {
        next.run(req).await
    } else {
        let mut resp = ApiError::new(
            Code::Unauthorized,
            "missing or invalid admin key: send Authorization: Bearer <admin_key>",
        )
        .into_response();
        resp.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Bearer"),
        );
        resp
    }
}
