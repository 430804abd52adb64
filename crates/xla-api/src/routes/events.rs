//! Pushed data: a webhook delivery (`POST .../events`) or an uploaded file
//! (`POST .../imports`) handed, with its media type, to the instance's
//! connector `parse()` in the sandbox, and committed as the instance's data
//! in one run of its run log. The whole body is parsed first: a bad body is
//! a 422 naming the record, and nothing is stored. The same delivery twice
//! counts as unchanged (records are keyed as a sync keys them).
//!
//! A webhook of an instance with a `webhook_secret` must carry
//! `X-Hub-Signature-256: sha256=<hex>`, the HMAC-SHA256 of the raw body
//! under that secret (the convention GitHub made common), checked in
//! constant time.

use super::tenant;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::ApiState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use std::sync::Arc;
use utoipa::ToSchema;
use xla_store::{RunRecord, Scope};
use xla_sync::push::{PushError, Receiver};
use xla_types::untrusted::escape_capped;

/// The signature header of webhook deliveries.
pub const SIGNATURE: &str = "x-hub-signature-256";

/// What a push did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Delivery {
    /// Observations the body held.
    pub observations: u64,
    /// New ones.
    pub inserted: u64,
    /// Ones that changed a stored record.
    pub replaced: u64,
    /// Ones already stored as they are (a redelivery).
    pub unchanged: u64,
    /// The run of the instance's run log that recorded it.
    pub run: RunRecord,
}

/// A webhook delivery: the body, parsed by the instance's connector.
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/instances/{instance}/events",
    tag = "tenants",
    security(("bearer" = [])),
    params(
        ("tenant" = String, Path, description = "Tenant id"),
        ("instance" = String, Path, description = "Connector instance name"),
        ("x-hub-signature-256" = Option<String>, Header, description = "`sha256=<hex>`: HMAC-SHA256 of the body under the instance's webhook_secret (required when it has one)")
    ),
    request_body(content = String, description = "The body as the source sends it, in a media type the connector declares", content_type = "application/json"),
    responses(
        (status = 200, body = Delivery),
        (status = 401, body = crate::Problem, content_type = "application/problem+json"),
        (status = 403, body = crate::Problem, content_type = "application/problem+json"),
        (status = 404, body = crate::Problem, content_type = "application/problem+json"),
        (status = 409, description = "A sync run of the instance held it for 10 s; nothing was stored, send again", body = crate::Problem, content_type = "application/problem+json"),
        (status = 413, body = crate::Problem, content_type = "application/problem+json"),
        (status = 415, body = crate::Problem, content_type = "application/problem+json"),
        (status = 422, body = crate::Problem, content_type = "application/problem+json"),
        (status = 503, description = "The host lost the instance's lease while committing (its store unreachable, or another host took the instance over); what stayed committed is said; send again", body = crate::Problem, content_type = "application/problem+json")
    )
)]
pub async fn events(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path((tenant_id, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Delivery>, ApiError> {
    let receiver = receiver(&state, &caller, &tenant_id, &name)?;
    if let Some(secret) = state.webhook_secrets.get(&name) {
        check_signature(secret.expose().as_bytes(), &headers, &body)?;
    }
    push(&state, receiver, &headers, &body).await
}

/// A file upload (an export, a saved API body), parsed by the instance's connector.
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/instances/{instance}/imports",
    tag = "tenants",
    security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id"), ("instance" = String, Path, description = "Connector instance name")),
    request_body(content = String, description = "The file, in a media type the connector declares (text/csv, application/json...)", content_type = "text/csv"),
    responses(
        (status = 200, body = Delivery),
        (status = 401, body = crate::Problem, content_type = "application/problem+json"),
        (status = 403, body = crate::Problem, content_type = "application/problem+json"),
        (status = 404, body = crate::Problem, content_type = "application/problem+json"),
        (status = 409, description = "A sync run of the instance held it for 10 s; nothing was stored, send again", body = crate::Problem, content_type = "application/problem+json"),
        (status = 413, body = crate::Problem, content_type = "application/problem+json"),
        (status = 415, body = crate::Problem, content_type = "application/problem+json"),
        (status = 422, body = crate::Problem, content_type = "application/problem+json"),
        (status = 503, description = "The host lost the instance's lease while committing (its store unreachable, or another host took the instance over); what stayed committed is said; send again", body = crate::Problem, content_type = "application/problem+json")
    )
)]
pub async fn imports(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path((tenant_id, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Delivery>, ApiError> {
    let receiver = receiver(&state, &caller, &tenant_id, &name)?;
    push(&state, receiver, &headers, &body).await
}

/// The instance's receiver, for a caller that may write to its tenant.
fn receiver<'a>(state: &'a ApiState, caller: &Caller, tenant_id: &str, name: &str) -> Result<&'a Receiver, ApiError> {
    let tenant = tenant(state, caller, tenant_id)?;
    let receiver = state
        .receivers
        .get(name)
        .filter(|r| r.instance().tenant == tenant)
        .ok_or_else(|| {
            ApiError::not_found(format_args!(
                "connector instance `{}` (or its connector did not load)",
                escape_capped(name, 100)
            ))
        })?;
    caller.require(Scope::Write)?;
    Ok(receiver)
}

/// How long a push waits for a run of its instance to end.
const PUSH_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

async fn push(
    state: &ApiState,
    receiver: &Receiver,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Json<Delivery>, ApiError> {
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::UnsupportedMediaType(format!(
                "send a Content-Type; `{}` takes {}",
                receiver.instance().name,
                receiver.media_types().join(", ")
            ))
        })?;
    // A run of the instance in progress keeps the run log's one open run:
    // wait for it to end, a while, rather than cut into it.
    let instance = receiver.instance();
    let _slot = match &state.sync {
        Some(sync) => sync
            .hold(&instance.tenant, &instance.name, PUSH_WAIT)
            .await
            .map_err(|e| ApiError::Conflict(format!("{e}; the delivery was not stored, send it again")))?,
        None => None,
    };
    let result = receiver.receive(&*state.store, media_type, body).await;
    let outcome = match &result {
        Ok(_) => "stored",
        Err(e) if e.is_bad_body() => "refused",
        Err(PushError::Busy { .. }) => "busy",
        Err(e) if e.lost_lease() => "lease_lost",
        Err(_) => "failed",
    };
    metrics::counter!("xla_webhook_deliveries_total", "instance" => receiver.instance().name.clone(), "outcome" => outcome)
        .increment(1);
    let run = result.map_err(push_error)?;
    Ok(Json(Delivery {
        observations: run.inserted + run.replaced + run.unchanged,
        inserted: run.inserted,
        replaced: run.replaced,
        unchanged: run.unchanged,
        run,
    }))
}

fn push_error(error: PushError) -> ApiError {
    match &error {
        PushError::MediaType { .. } => ApiError::UnsupportedMediaType(error.to_string()),
        PushError::Busy { .. } => ApiError::Conflict(error.to_string()),
        // The host could not keep the instance (its store unreachable, or
        // another host took it over): a retry is right, and safe.
        _ if error.lost_lease() => ApiError::Unavailable(error.to_string()),
        _ if error.is_bad_body() => ApiError::Unprocessable(error.to_string()),
        _ => ApiError::Internal(error.to_string()),
    }
}

/// Checks `X-Hub-Signature-256` against the body in constant time.
fn check_signature(secret: &[u8], headers: &HeaderMap, body: &[u8]) -> Result<(), ApiError> {
    let refused = |why: &str| {
        ApiError::Unauthorized(format!(
            "the webhook signature {why}; sign the raw body with HMAC-SHA256 under the instance's webhook_secret and send `X-Hub-Signature-256: sha256=<hex>`"
        ))
    };
    let given = headers
        .get(SIGNATURE)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| refused("is missing"))?;
    let hex_digest = given
        .strip_prefix("sha256=")
        .ok_or_else(|| refused("is not `sha256=<hex>`"))?;
    let digest = hex::decode(hex_digest).map_err(|_| refused("is not hex"))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| refused("cannot be checked"))?;
    mac.update(body);
    mac.verify_slice(&digest)
        .map_err(|_| refused("does not match the body"))
}
