//! `/metrics`: Prometheus text exposition of requests by route and status
//! with latency histograms, plugin calls by plugin and outcome with
//! durations, sync runs by instance and outcome, observations committed and
//! webhook deliveries. Its labels name connector instances of every tenant,
//! so it answers only an operator's token (one spanning all tenants).

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::ApiState;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// The metrics, for an operator's token.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain", body = String),
        (status = 401, body = crate::Problem, content_type = "application/problem+json"),
        (status = 404, body = crate::Problem, content_type = "application/problem+json"),
        (status = 503, body = crate::Problem, content_type = "application/problem+json")
    )
)]
pub async fn metrics(State(state): State<Arc<ApiState>>, caller: Caller) -> Result<Response, ApiError> {
    if caller.token.tenant.is_some() {
        return Err(ApiError::not_found(
            "/metrics (it answers an operator's token, one made with --all-tenants)",
        ));
    }
    let handle = state
        .metrics
        .as_ref()
        .ok_or_else(|| ApiError::Unavailable("no metrics recorder is installed in this process".into()))?;
    let mut response = handle.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(response)
}
