//! The routes, one module per resource family. Each handler carries its
//! `#[utoipa::path]`, so a route cannot exist without its OpenAPI entry.

mod data;
mod events;
mod health;
mod metrics;
mod plugins;
mod tenants;
mod xlas;

use crate::auth::Caller;
use crate::cache::Kept;
use crate::error::ApiError;
use crate::state::ApiState;
use axum::body::Bytes;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

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
    if caller.sees(tenant) && state.catalog.tenants().contains(tenant) {
        Ok(tenant)
    } else {
        Err(ApiError::not_found(format_args!(
            "tenant `{}`",
            xla_types::untrusted::escape_capped(tenant, 100)
        )))
    }
}

/// The header that says whether a result came from the cache (`hit`) or
/// was computed (`miss`).
pub const CACHE_HEADER: &str = "x-xla-cache";

/// A cache key naming a query by its parts, unambiguously (a JSON array:
/// no part can spill into the next).
fn cache_key(parts: &[&str]) -> String {
    serde_json::to_string(parts).unwrap_or_default()
}

/// The result for `key` at the store's current data version: from the
/// cache, or computed by `compute` (media type and body) and kept. The
/// version is read before computing, so data committed meanwhile makes the
/// next request compute again.
async fn cached<F>(state: &ApiState, key: String, compute: F) -> Result<Response, ApiError>
where
    F: std::future::Future<Output = Result<(HeaderValue, Bytes), ApiError>>,
{
    let version = state.store.data_version();
    if let Some(kept) = state.results.get(&key, version) {
        return Ok(answer(kept, "hit"));
    }
    let (content_type, body) = compute.await?;
    let kept = Kept {
        version,
        content_type,
        body,
    };
    state.results.put(key, kept.clone());
    Ok(answer(kept, "miss"))
}

fn answer(kept: Kept, cache: &'static str) -> Response {
    let mut response = kept.body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, kept.content_type);
    headers.insert(CACHE_HEADER, HeaderValue::from_static(cache));
    response
}

/// `value` as a JSON body.
fn json<T: Serialize>(value: &T) -> Result<(HeaderValue, Bytes), ApiError> {
    let body = serde_json::to_vec(value).map_err(|e| ApiError::Internal(format!("encoding a result: {e}")))?;
    Ok((HeaderValue::from_static("application/json"), Bytes::from(body)))
}
