//! Tenants, their connector instances with status, and each instance's
//! sync runs.

use super::tenant;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::paging::{self, Page, PageQuery};
use crate::state::ApiState;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};
use xla_store::{RunOutcome, RunRecord, Scope};
use xla_sync::config::ConnectorInstance;
use xla_sync::schedule::{Phase, Started, TriggerError};
use xla_types::now_ms;

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
    /// When the cursor last moved, unix ms: the end of the latest run that
    /// committed a batch (its start while it runs).
    pub cursor_updated: Option<i64>,
    /// Seconds since the cursor last moved.
    pub cursor_age_seconds: Option<f64>,
    /// `idle`, `requested`, `running`, or `unavailable` (this server does not
    /// run it: no scheduler, the host is stopping, or it cannot be made ready).
    pub state: SyncState,
    /// Why it cannot run, when `state` is `unavailable`.
    pub unavailable: Option<String>,
    /// When the next scheduled run is due, unix ms (none without a
    /// schedule, while a run is on, or when this server runs no syncs).
    pub next_run: Option<i64>,
}

/// Where an instance's runs stand on this server.
#[derive(Debug, Clone, Copy, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SyncState {
    /// No run is on.
    Idle,
    /// A run was asked for and waits to begin.
    Requested,
    /// A run is on (or waits for its upstream's permits).
    Running,
    /// This server does not run it.
    Unavailable,
}

/// `instance`'s status: its latest run and outcome, how fresh its cursor is,
/// whether a run is on, and when the next is due.
///
/// # Errors
/// Store failures.
pub async fn instance_status(state: &ApiState, instance: &ConnectorInstance) -> Result<InstanceStatus, ApiError> {
    let runs = state.store.runs(&instance.tenant, &instance.name, 50).await?;
    let last_completed = runs
        .iter()
        .find(|r| r.outcome == RunOutcome::Completed)
        .and_then(|r| r.finished);
    let cursor_updated = runs
        .iter()
        .find(|r| r.batches > 0)
        .map(|r| r.finished.unwrap_or(r.started));
    let schedule = state
        .sync
        .as_ref()
        .and_then(|sync| sync.schedule(&instance.tenant, &instance.name))
        .unwrap_or_default();
    let sync_state = match (state.sync.is_some(), schedule.phase) {
        (false, _) | (true, Phase::Closed) => SyncState::Unavailable,
        (true, Phase::Idle) => SyncState::Idle,
        (true, Phase::Requested) => SyncState::Requested,
        (true, Phase::Running { .. }) => SyncState::Running,
    };
    let last_run = runs.into_iter().next();
    Ok(InstanceStatus {
        cursor_updated,
        cursor_age_seconds: cursor_updated.map(|at| (now_ms() - at).max(0) as f64 / 1000.0),
        state: sync_state,
        unavailable: match sync_state {
            SyncState::Unavailable => Some(
                schedule
                    .unavailable
                    .unwrap_or_else(|| "this server runs no syncs of it (is the host stopping?)".into()),
            ),
            _ => None,
        },
        next_run: schedule.next_run,
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
        all.push(instance_status(&state, instance).await?);
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
    Ok(Json(instance_status(&state, instance).await?))
}

/// `?limit=&cursor=` of the runs list: a keyset cursor, since runs are
/// listed newest first and new ones arrive at the top while a caller pages.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunsQuery {
    /// Runs per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<usize>,
    /// The previous page's `next`: this page holds the runs older than it.
    #[param(pattern = "^r[0-9]{1,19}$")]
    pub cursor: Option<String>,
}

/// The instance's sync runs, newest first.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/instances/{instance}/runs",
    tag = "tenants",
    security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id"), ("instance" = String, Path, description = "Connector instance name"), RunsQuery),
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
    Query(query): Query<RunsQuery>,
) -> Result<Json<Page<RunRecord>>, ApiError> {
    let tenant = tenant(&state, &caller, &tenant_id)?;
    let instance = instance(&state, tenant, &name)?;
    let limit = paging::limit(query.limit)?;
    let before = query
        .cursor
        .as_deref()
        .map(|cursor| paging::cursor_number(cursor, 'r', 19))
        .transpose()?;
    let (tenant, name) = (&instance.tenant, &instance.name);
    // One more than the page: whether a next page exists.
    let mut items = state.store.runs_before(tenant, name, before, limit + 1).await?;
    let next = (items.len() > limit).then(|| {
        items.truncate(limit);
        items.last().map(|last| format!("r{}", last.run))
    });
    let total = state.store.run_count(tenant, name).await?;
    Ok(Json(Page {
        items,
        total: usize::try_from(total).unwrap_or(usize::MAX),
        next: next.flatten(),
    }))
}

/// One run of an instance.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/instances/{instance}/runs/{run}",
    tag = "tenants",
    security(("bearer" = [])),
    params(
        ("tenant" = String, Path, description = "Tenant id"),
        ("instance" = String, Path, description = "Connector instance name"),
        ("run" = u64, Path, description = "Run id, as the run log and `POST .../sync` give it")
    ),
    responses(
        (status = 200, body = RunRecord),
        (status = 400, body = crate::Problem, content_type = "application/problem+json"),
        (status = 401, body = crate::Problem, content_type = "application/problem+json"),
        (status = 404, body = crate::Problem, content_type = "application/problem+json")
    )
)]
pub async fn get_run(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path((tenant_id, name, run)): Path<(String, String, u64)>,
) -> Result<Json<RunRecord>, ApiError> {
    let tenant = tenant(&state, &caller, &tenant_id)?;
    let instance = instance(&state, tenant, &name)?;
    state
        .store
        .run(&instance.tenant, &instance.name, run)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format_args!("run {run} of `{}`", instance.name)))
}

/// A run asked for with `POST .../sync`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncAccepted {
    /// `started` (the run is in the run log as `run`) or `queued` (it waits
    /// for its upstream's permits and begins when another run of that
    /// upstream ends).
    pub status: &'static str,
    /// The run's id, once started.
    pub run: Option<u64>,
    /// Where to follow it: the run, or the instance while it is queued.
    pub href: String,
}

/// How long `POST .../sync` waits for the run to begin before answering `queued`.
const BEGIN_WAIT: Duration = Duration::from_secs(5);

/// Starts a sync run of the instance now (write scope). Runs of one
/// instance never overlap: while one is requested or on, this answers 409.
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/instances/{instance}/sync",
    tag = "tenants",
    security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id"), ("instance" = String, Path, description = "Connector instance name")),
    responses(
        (status = 202, description = "The run started or is queued; `Location` says where to follow it", body = SyncAccepted,
            headers(("location" = String, description = "The run's URL (the instance's while queued)"))),
        (status = 401, body = crate::Problem, content_type = "application/problem+json"),
        (status = 403, body = crate::Problem, content_type = "application/problem+json"),
        (status = 404, body = crate::Problem, content_type = "application/problem+json"),
        (status = 409, description = "A run of the instance is requested or on (here, or on another host sharing the store)", body = crate::Problem, content_type = "application/problem+json"),
        (status = 503, description = "This server cannot run the instance (no scheduler, stopping, or the instance is not ready)", body = crate::Problem, content_type = "application/problem+json")
    )
)]
pub async fn start_sync(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path((tenant_id, name)): Path<(String, String)>,
) -> Result<(StatusCode, HeaderMap, Json<SyncAccepted>), ApiError> {
    let tenant = tenant(&state, &caller, &tenant_id)?;
    let instance = instance(&state, tenant, &name)?;
    caller.require(Scope::Write)?;
    let sync = state.sync.as_ref().ok_or_else(|| {
        ApiError::Unavailable("this server runs no syncs; start it with `xla-host serve` (not a bare API)".into())
    })?;
    let trigger = sync.trigger(&instance.tenant, &instance.name).map_err(|e| match e {
        TriggerError::Busy { .. } => ApiError::Conflict(e.to_string()),
        _ => ApiError::Unavailable(e.to_string()),
    })?;
    let base = format!("/v1/tenants/{}/instances/{}", instance.tenant, instance.name);
    let accepted = match trigger.started(BEGIN_WAIT).await {
        Started::Run(run) => SyncAccepted {
            status: "started",
            run: Some(run),
            href: format!("{base}/runs/{run}"),
        },
        Started::Waiting => SyncAccepted {
            status: "queued",
            run: None,
            href: base,
        },
        Started::Elsewhere { holder } => {
            return Err(ApiError::Conflict(format!(
                "another host sharing the store is running this instance ({}); try again once that run has ended",
                xla_types::untrusted::escape_capped(&holder, 200)
            )));
        }
        Started::Failed => {
            return Err(ApiError::Unavailable(
                "the run ended before it began (the store failed or the host is stopping); the host's log says why"
                    .into(),
            ));
        }
    };
    let mut headers = HeaderMap::new();
    // Instance names and tenants are config-checked identifiers; a name
    // that is not a header value still gets its run in the body.
    if let Ok(location) = HeaderValue::from_str(&accepted.href) {
        headers.insert(header::LOCATION, location);
    }
    Ok((StatusCode::ACCEPTED, headers, Json(accepted)))
}
