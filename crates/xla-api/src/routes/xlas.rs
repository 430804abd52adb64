//! XLA definitions with their target history, and the results built on
//! them: an XLA's report for a period, the X/O/T view, and the
//! SLA-beside-XLA scorecard with its watermelons.

use super::tenant;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::results::{self, ScorecardQuery, window};
use crate::state::ApiState;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};
use xla_score::{Period, Scorecard, XlaDefinition, XlaReport, XotView};
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
    /// The period: `2026-10` (month), `2026-Q4` (quarter) or `2026-W43` (ISO
    /// week), as the XLA's period (`/xot` takes months). A label of another
    /// kind, or a week the year does not have, is a report that does not
    /// exist: 404.
    #[param(pattern = "^(19[7-9][0-9]|[2-9][0-9]{3})-(0[1-9]|1[0-2]|[Qq][1-4]|W(0[1-9]|[1-4][0-9]|5[0-3]))$")]
    pub period: String,
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
    Ok(results::report(&state, xla, window).await?.into_response())
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
    Ok(results::xot(&state, tenant, window).await?.into_response())
}

/// `?period=&group_by=&sla_target=&happiness_target=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ScorecardParams {
    /// The month, `2026-10`.
    #[param(pattern = "^(19[7-9][0-9]|[2-9][0-9]{3})-(0[1-9]|1[0-2])$")]
    pub period: String,
    /// The slicing dimension (default `service`).
    #[param(pattern = "^[A-Za-z0-9_.-]{1,64}$")]
    pub group_by: Option<String>,
    /// SLA compliance target in percent, 0 to 100 (default 90).
    #[param(minimum = 0, maximum = 100)]
    pub sla_target: Option<f64>,
    /// Happiness target in points, -100 to 100 (default 50).
    #[param(minimum = -100, maximum = 100)]
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
    let query = ScorecardQuery {
        group_by: params.group_by.as_deref().unwrap_or("service"),
        sla_target: params.sla_target.unwrap_or(90.0),
        happiness_target: params.happiness_target.unwrap_or(50.0),
    };
    Ok(results::scorecard(&state, tenant, window, query).await?.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::is_period_label;

    #[test]
    fn a_label_of_the_documented_shape_but_another_kind_is_a_missing_report() {
        for good in ["2026-10", "2026-Q4", "2026-q1", "2026-W01", "2026-W53", "1970-01"] {
            assert!(is_period_label(good), "{good}");
        }
        for bad in [
            "", "2026", "2026-13", "2026-00", "2026-1", "2026-Q5", "2026-W54", "2026-W00", "26-10", "2026-10 ",
        ] {
            assert!(!is_period_label(bad), "{bad:?}");
        }
        assert!(window(Period::Month, "2026-10").is_ok());
        assert!(matches!(window(Period::Month, "2026-Q4"), Err(ApiError::NotFound(_))));
        // 2026 has 53 ISO weeks; 2025 has 52.
        assert!(window(Period::Week, "2026-W53").is_ok());
        assert!(matches!(window(Period::Week, "2025-W53"), Err(ApiError::NotFound(_))));
        assert!(matches!(window(Period::Month, "2026-13"), Err(ApiError::BadRequest(_))));
    }
}
