//! The routes, one module per resource family. Each handler carries its
//! `#[utoipa::path]`, so a route cannot exist without its OpenAPI entry.

pub(crate) mod data;
mod events;
mod health;
mod metrics;
mod plugins;
pub(crate) mod tenants;
mod xlas;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::ApiState;
use axum::body::Bytes;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::results::{cache_key, json};

/// Every route with its OpenAPI entry.
pub fn router() -> OpenApiRouter<Arc<ApiState>> {
    OpenApiRouter::new()
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(metrics::metrics))
        .routes(routes!(tenants::list_tenants))
        .routes(routes!(tenants::list_instances))
        .routes(routes!(tenants::get_instance))
        .routes(routes!(tenants::list_runs))
        .routes(routes!(tenants::get_run))
        .routes(routes!(tenants::start_sync))
        .routes(routes!(events::events))
        .routes(routes!(events::imports))
        .routes(routes!(data::metrics_catalog))
        .routes(routes!(data::series))
        .routes(routes!(data::breakdown))
        .routes(routes!(data::ticket))
        .routes(routes!(xlas::list_xlas))
        .routes(routes!(xlas::get_xla))
        .routes(routes!(xlas::report))
        .routes(routes!(xlas::xot))
        .routes(routes!(xlas::scorecard))
        .routes(routes!(plugins::list_plugins))
        .routes(routes!(plugins::get_plugin))
}

/// `tenant` when the caller's token covers it and the host knows it; the
/// same 404 otherwise, so a token cannot learn which tenants exist.
fn tenant<'a>(state: &ApiState, caller: &Caller, tenant: &'a str) -> Result<&'a str, ApiError> {
    crate::results::visible_tenant(state, &caller.token, tenant)
}

/// The result for `key` at the store's current data version, as a response
/// with its `x-xla-cache` header.
async fn cached<F>(state: &ApiState, key: String, compute: F) -> Result<Response, ApiError>
where
    F: std::future::Future<Output = Result<(HeaderValue, Bytes), ApiError>>,
{
    Ok(crate::results::cached(state, key, compute).await?.into_response())
}
