//! XLA definitions with their target history, and the results built on
//! them: an XLA's report for a period, the X/O/T view, and the
//! SLA-beside-XLA scorecard with its watermelons.

use super::tenant;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::ApiState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};
use xla_score::{Engine, Period, ScoreError, Scorecard, Window, XlaDefinition, XlaReport, XotView};
use xla_types::untrusted::escape_capped;

/// One target from its effective date.
#[derive(Debug, Serialize, ToSchema)]
pub struct TargetEntry {
    /// Effective date, `YYYY-MM-DD`.
    pub from: String,
    /// The target value.
    pub value: f64,
}

/// An XLA definition.
#[derive(Debug, Serialize, ToSchema)]
pub struct Xla {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its tenant.
    pub tenant: String,
    /// Metrics it reads.
    pub metrics: Vec<String>,
    /// The scorer plugin.
    pub scorer: String,
    /// `week`, `month` or `quarter`.
    pub period: String,
    /// `higher` or `lower` is better.
    pub direction: String,
    /// Per-group results by this dimension.
    pub group_by: Option<String>,
    /// Only observations with this dimension value.
    #[schema(value_type = Option<Object>)]
    pub filter: Option<serde_json::Value>,
    /// The target history, oldest first.
    pub targets: Vec<TargetEntry>,
    /// How each period's target is set (`fixed`, `dex`, `continuous`).
    #[schema(value_type = Object)]
    pub contract: serde_json::Value,
    /// Service credit per point short of target, and its cap.
    #[schema(value_type = Option<Object>)]
    pub penalty: Option<serde_json::Value>,
    /// Gain share per point beyond target, and its cap.
    #[schema(value_type = Option<Object>)]
    pub gain_share: Option<serde_json::Value>,
}

fn to_json<T: Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_default()
}

impl From<&XlaDefinition> for Xla {
    fn from(x: &XlaDefinition) -> Xla {
        Xla {
            id: x.id.clone(),
            name: x.name.clone(),
            tenant: x.tenant.clone(),
            metrics: x.metrics.clone(),
            scorer: x.scorer.clone(),
            period: x.period.to_string(),
            direction: to_json(&x.direction).as_str().unwrap_or_default().to_string(),
            group_by: x.group_by.clone(),
            filter: x.filter.as_ref().map(to_json),
            targets: x
                .targets
                .iter()
                .map(|t| TargetEntry {
                    from: t.from.to_string(),
                    value: t.value,
                })
                .collect(),
            contract: to_json(&x.contract),
            penalty: x.penalty.as_ref().map(to_json),
            gain_share: x.gain_share.as_ref().map(to_json),
        }
    }
}

/// The tenant's XLAs.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/xlas",
    tag = "xlas",
    security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id")),
    responses(
        (status = 200, body = Vec<Xla>),
        (status = 401, body = crate::Problem, content_type = "application/problem+json"),
        (status = 404, body = crate::Problem, content_type = "application/problem+json")
    )
)]
pub async fn list_xlas(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(tenant_id): Path<String>,
) -> Result<Json<Vec<Xla>>, ApiError> {
    let tenant = tenant(&state, &caller, &tenant_id)?;
    Ok(Json(
        state
            .catalog
            .xlas
            .iter()
            .filter(|x| x.tenant == tenant)
            .map(Xla::from)
            .collect(),
    ))
}

fn xla<'a>(state: &'a ApiState, tenant: &str, id: &str) -> Result<&'a XlaDefinition, ApiError> {
    state
        .catalog
        .xla(tenant, id)
        .ok_or_else(|| ApiError::not_found(format_args!("XLA `{}`", escape_capped(id, 100))))
}

/// One XLA with its target history.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/xlas/{xla}",
    tag = "xlas",
    security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id"), ("xla" = String, Path, description = "XLA id")),
    responses(
        (status = 200, body = Xla),
        (status = 401, body = crate::Problem, content_type = "application/problem+json"),
        (status = 404, body = crate::Problem, content_type = "application/problem+json")
    )
)]
pub async fn get_xla(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path((tenant_id, id)): Path<(String, String)>,
) -> Result<Json<Xla>, ApiError> {
    let tenant = tenant(&state, &caller, &tenant_id)?;
    Ok(Json(Xla::from(xla(&state, tenant, &id)?)))
}

/// `?period=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PeriodParams {
    /// The period: `2026-10` (month), `2026-Q4` (quarter) or `2026-W43` (ISO week), as the XLA's period.
    pub period: String,
}

fn engine(state: &ApiState) -> Result<&Engine, ApiError> {
    state
        .engine
        .as_ref()
        .ok_or_else(|| ApiError::Unavailable("no scorer plugin is loaded; install the scorers and restart".into()))
}

fn window(period: Period, label: &str) -> Result<Window, ApiError> {
    period.parse(label).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "period `{}` is not a {period} label (e.g. {})",
            escape_capped(label, 40),
            match period {
                Period::Week => "2026-W43",
                Period::Month => "2026-10",
                Period::Quarter => "2026-Q4",
            }
        ))
    })
}

fn score_error(error: ScoreError) -> ApiError {
    match error {
        ScoreError::Store { error, .. } => ApiError::from(error),
        other => ApiError::Internal(other.to_string()),
    }
}

/// An XLA's report for a period: value against its target and basis, met,
/// margin, previous, delta, trend, worst groups, money.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/xlas/{xla}/report",
    tag = "xlas",
    security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id"), ("xla" = String, Path, description = "XLA id"), PeriodParams),
    responses(
        (status = 200, body = XlaReport),
        (status = 400, body = crate::Problem, content_type = "application/problem+json"),
        (status = 401, body = crate::Problem, content_type = "application/problem+json"),
        (status = 404, body = crate::Problem, content_type = "application/problem+json"),
        (status = 503, body = crate::Problem, content_type = "application/problem+json")
    )
)]
pub async fn report(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path((tenant_id, id)): Path<(String, String)>,
    Query(params): Query<PeriodParams>,
) -> Result<Response, ApiError> {
    let tenant = tenant(&state, &caller, &tenant_id)?;
    let xla = xla(&state, tenant, &id)?;
    let window = window(xla.period, &params.period)?;
    let engine = engine(&state)?;
    let key = format!("report\0{tenant}\0{}\0{}", xla.id, window.label());
    cached(&state, key, async {
        engine.report(xla, window).await.map_err(score_error)
    })
    .await
}

/// For a drop in happiness in a month: whether it came with a technical
/// drop (DEX), a process drop (SLA, resolution time), both or neither.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/xot",
    tag = "xlas",
    security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id"), PeriodParams),
    responses(
        (status = 200, body = XotView),
        (status = 400, body = crate::Problem, content_type = "application/problem+json"),
        (status = 401, body = crate::Problem, content_type = "application/problem+json"),
        (status = 404, body = crate::Problem, content_type = "application/problem+json"),
        (status = 503, body = crate::Problem, content_type = "application/problem+json")
    )
)]
pub async fn xot(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(tenant_id): Path<String>,
    Query(params): Query<PeriodParams>,
) -> Result<Response, ApiError> {
    let tenant = tenant(&state, &caller, &tenant_id)?;
    let window = window(Period::Month, &params.period)?;
    let engine = engine(&state)?;
    let key = format!("xot\0{tenant}\0{}", window.label());
    cached(&state, key, async { Ok(engine.xot_view(tenant, window).await?) }).await
}

/// `?period=&group_by=&sla_target=&happiness_target=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ScorecardParams {
    /// The month, `2026-10`.
    pub period: String,
    /// The slicing dimension (default `service`).
    pub group_by: Option<String>,
    /// SLA compliance target in percent (default 90).
    pub sla_target: Option<f64>,
    /// Happiness target in points, -100 to 100 (default 50).
    pub happiness_target: Option<f64>,
}

/// SLA compliance beside happiness per slice, watermelons first: slices
/// whose SLAs are at target while the people served are unhappy.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/scorecard",
    tag = "xlas",
    security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id"), ScorecardParams),
    responses(
        (status = 200, body = Scorecard),
        (status = 400, body = crate::Problem, content_type = "application/problem+json"),
        (status = 401, body = crate::Problem, content_type = "application/problem+json"),
        (status = 404, body = crate::Problem, content_type = "application/problem+json"),
        (status = 503, body = crate::Problem, content_type = "application/problem+json")
    )
)]
pub async fn scorecard(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(tenant_id): Path<String>,
    Query(params): Query<ScorecardParams>,
) -> Result<Response, ApiError> {
    let tenant = tenant(&state, &caller, &tenant_id)?;
    let window = window(Period::Month, &params.period)?;
    let sla_target = params.sla_target.unwrap_or(90.0);
    let happiness_target = params.happiness_target.unwrap_or(50.0);
    if !(0.0..=100.0).contains(&sla_target) || !(-100.0..=100.0).contains(&happiness_target) {
        return Err(ApiError::BadRequest(
            "sla_target is a percentage (0 to 100) and happiness_target a score (-100 to 100)".into(),
        ));
    }
    let engine = engine(&state)?;
    if !engine.has_scorer(xla_score::report::WATERMELON_SCORER) {
        return Err(ApiError::Unavailable(
            "the scorecard needs the `watermelon` scorer plugin; install it and restart".into(),
        ));
    }
    let group_by = params.group_by.as_deref().unwrap_or("service");
    let key = format!(
        "scorecard\0{tenant}\0{}\0{group_by}\0{sla_target}\0{happiness_target}",
        window.label()
    );
    cached(&state, key, async {
        engine
            .scorecard(tenant, window, group_by, sla_target, happiness_target)
            .await
            .map_err(score_error)
    })
    .await
}

/// The header that says whether a result came from the cache (`hit`) or
/// was computed (`miss`).
pub const CACHE_HEADER: &str = "x-xla-cache";

/// The result for `key` at the store's current data version: from the
/// cache, or computed and kept. The version is read before computing, so
/// data committed meanwhile makes the next request compute again.
async fn cached<T, F>(state: &ApiState, key: String, compute: F) -> Result<Response, ApiError>
where
    T: Serialize,
    F: std::future::Future<Output = Result<T, ApiError>>,
{
    let version = state.store.data_version();
    if let Some(body) = state.results.get(&key, version) {
        return Ok(json_body(body, "hit"));
    }
    let value = compute.await?;
    let body =
        Bytes::from(serde_json::to_vec(&value).map_err(|e| ApiError::Internal(format!("encoding a result: {e}")))?);
    state.results.put(key, version, body.clone());
    Ok(json_body(body, "miss"))
}

fn json_body(body: Bytes, cache: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_HEADER, HeaderValue::from_static(cache));
    response
}
