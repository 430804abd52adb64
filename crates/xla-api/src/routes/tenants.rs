//! Tenants, their connector instances with status, and each instance's
//! sync runs.

use super::tenant;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::paging::{Page, PageQuery};
use crate::state::ApiState;
use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;
use xla_store::{RunOutcome, RunRecord};
use xla_sync::config::ConnectorInstance;

/// A tenant the token covers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Tenant {
    /// Its id, as in the config.
    pub id: String,
    /// Its connector instances.
    pub instances: usize,
    /// Its XLAs.
    pub xlas: usize,
}

/// The tenants this token covers (one for a tenant token, every one for an operator's).
#[utoipa::path(
    get,
    path = "/v1/tenants",
    tag = "tenants",
    security(("bearer" = [])),
    responses((status = 200, body = Vec<Tenant>), (status = 401, body = crate::Problem, content_type = "application/problem+json"))
)]
pub async fn list_tenants(State(state): State<Arc<ApiState>>, caller: Caller) -> Json<Vec<Tenant>> {
    let catalog = &state.catalog;
    Json(
        catalog
            .tenants()
            .into_iter()
            .filter(|t| caller.sees(t))
            .map(|t| Tenant {
                id: t.to_string(),
                instances: catalog.instances.iter().filter(|i| i.tenant == t).count(),
                xlas: catalog.xlas.iter().filter(|x| x.tenant == t).count(),
            })
            .collect(),
    )
}

/// A connector instance and how its syncs go.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstanceStatus {
    /// Its name.
    pub name: String,
    /// Its tenant.
    pub tenant: String,
    /// The connector plugin it runs.
    pub plugin: String,
    /// How often `serve` syncs it (`15m`), if scheduled.
    pub schedule: Option<String>,
    /// Origins it may reach.
    pub grants: Vec<String>,
    /// Its latest run.
    pub last_run: Option<RunRecord>,
    /// The latest run's outcome.
    pub last_outcome: Option<RunOutcome>,
    /// The latest completed run's end, unix ms: how fresh its data is.
    pub last_completed: Option<i64>,
}

async fn status(state: &ApiState, instance: &ConnectorInstance) -> Result<InstanceStatus, ApiError> {
    let runs = state.store.runs(&instance.tenant, &instance.name, 50).await?;
    let last_completed = runs
        .iter()
        .find(|r| r.outcome == RunOutcome::Completed)
        .and_then(|r| r.finished);
    let last_run = runs.into_iter().next();
    Ok(InstanceStatus {
        name: instance.name.clone(),
        tenant: instance.tenant.clone(),
        plugin: instance.plugin.clone(),
        schedule: instance.schedule.clone(),
        grants: instance.grants.clone(),
        last_outcome: last_run.as_ref().map(|r| r.outcome),
        last_run,
        last_completed,
    })
}

/// The tenant's connector instances with their status.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/instances",
    tag = "tenants",
    security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id"), PageQuery),
    responses(
        (status = 200, body = Page<InstanceStatus>),
        (status = 400, body = crate::Problem, content_type = "application/problem+json"),
        (status = 401, body = crate::Problem, content_type = "application/problem+json"),
        (status = 404, body = crate::Problem, content_type = "application/problem+json")
    )
)]
pub async fn list_instances(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(tenant_id): Path<String>,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<InstanceStatus>>, ApiError> {
    let tenant = tenant(&state, &caller, &tenant_id)?;
    let mut all = Vec::new();
    for instance in state.catalog.instances.iter().filter(|i| i.tenant == tenant) {
        all.push(status(&state, instance).await?);
    }
    Ok(Json(page.page(all)?))
}

fn instance<'a>(state: &'a ApiState, tenant: &str, name: &str) -> Result<&'a ConnectorInstance, ApiError> {
    state.catalog.instance(tenant, name).ok_or_else(|| {
        ApiError::not_found(format_args!(
            "connector instance `{}`",
            xla_types::untrusted::escape_capped(name, 100)
        ))
    })
}

/// One connector instance with its status.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/instances/{instance}",
    tag = "tenants",
    security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id"), ("instance" = String, Path, description = "Connector instance name")),
    responses(
        (status = 200, body = InstanceStatus),
        (status = 401, body = crate::Problem, content_type = "application/problem+json"),
        (status = 404, body = crate::Problem, content_type = "application/problem+json")
    )
)]
pub async fn get_instance(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path((tenant_id, name)): Path<(String, String)>,
) -> Result<Json<InstanceStatus>, ApiError> {
    let tenant = tenant(&state, &caller, &tenant_id)?;
    let instance = instance(&state, tenant, &name)?;
    Ok(Json(status(&state, instance).await?))
}

/// Most runs of one instance a list pages through.
const RUNS_KEPT_IN_LIST: usize = 10_000;

/// The instance's sync runs, newest first.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/instances/{instance}/runs",
    tag = "tenants",
    security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id"), ("instance" = String, Path, description = "Connector instance name"), PageQuery),
    responses(
        (status = 200, body = Page<RunRecord>),
        (status = 400, body = crate::Problem, content_type = "application/problem+json"),
        (status = 401, body = crate::Problem, content_type = "application/problem+json"),
        (status = 404, body = crate::Problem, content_type = "application/problem+json")
    )
)]
pub async fn list_runs(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path((tenant_id, name)): Path<(String, String)>,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<RunRecord>>, ApiError> {
    let tenant = tenant(&state, &caller, &tenant_id)?;
    let instance = instance(&state, tenant, &name)?;
    page.limit()?;
    let runs = state
        .store
        .runs(&instance.tenant, &instance.name, RUNS_KEPT_IN_LIST)
        .await?;
    Ok(Json(page.page(runs)?))
}
