//! `/healthz` (the process answers) and `/readyz` (the store answers and
//! the plugins are loaded): for load balancers and orchestrators, no token.

use crate::error::ApiError;
use crate::state::ApiState;
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;

/// A health answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: &'static str,
}

/// Alive: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// What readiness checked.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    /// `ready`.
    pub status: &'static str,
    /// `ok` when the store answered a read.
    pub store: &'static str,
    /// Plugins loaded.
    pub plugins: usize,
}

/// Ready: the store answers a read and the plugins are loaded.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, body = Ready),
        (status = 503, description = "The store does not answer", body = crate::Problem, content_type = "application/problem+json")
    )
)]
pub async fn readyz(State(state): State<Arc<ApiState>>) -> Result<Json<Ready>, ApiError> {
    state.store.tokens().await.map_err(|e| {
        tracing::error!("readiness: the store does not answer: {e}");
        ApiError::Unavailable("the store does not answer; the host's log says why".into())
    })?;
    Ok(Json(Ready {
        status: "ready",
        store: "ok",
        plugins: state.catalog.plugins.len(),
    }))
}
