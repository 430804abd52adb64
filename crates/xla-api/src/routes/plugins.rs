//! The loaded plugins: kind, version, contract, SHA-256, pin, what
//! `describe()` said, and which of the caller's instances and XLAs use it.
//! A client-specific scorer bound to another tenant is not shown.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::{ApiState, PluginEntry};
use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;
use xla_types::untrusted::escape_capped;

/// A plugin and who uses it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Plugin {
    /// The plugin.
    #[serde(flatten)]
    pub plugin: PluginEntry,
    /// The caller's connector instances that run it.
    pub instances: Vec<String>,
    /// The caller's XLAs scored by it.
    pub xlas: Vec<String>,
}

fn visible<'a>(state: &'a ApiState, caller: &'a Caller) -> impl Iterator<Item = &'a PluginEntry> {
    state
        .catalog
        .plugins
        .iter()
        .filter(|p| p.tenant.as_deref().is_none_or(|t| caller.sees(t)))
}

fn with_users(state: &ApiState, caller: &Caller, plugin: &PluginEntry) -> Plugin {
    Plugin {
        instances: state
            .catalog
            .instances
            .iter()
            .filter(|i| i.plugin == plugin.name && caller.sees(&i.tenant))
            .map(|i| i.name.clone())
            .collect(),
        xlas: state
            .catalog
            .xlas
            .iter()
            .filter(|x| x.scorer == plugin.name && caller.sees(&x.tenant))
            .map(|x| format!("{}/{}", x.tenant, x.id))
            .collect(),
        plugin: plugin.clone(),
    }
}

/// The loaded plugins this token may see.
#[utoipa::path(
    get,
    path = "/v1/plugins",
    tag = "plugins",
    security(("bearer" = [])),
    responses((status = 200, body = Vec<Plugin>), (status = 401, body = crate::Problem, content_type = "application/problem+json"))
)]
pub async fn list_plugins(State(state): State<Arc<ApiState>>, caller: Caller) -> Json<Vec<Plugin>> {
    Json(
        visible(&state, &caller)
            .map(|p| with_users(&state, &caller, p))
            .collect(),
    )
}

/// One plugin.
#[utoipa::path(
    get,
    path = "/v1/plugins/{plugin}",
    tag = "plugins",
    security(("bearer" = [])),
    params(("plugin" = String, Path, description = "Plugin name")),
    responses(
        (status = 200, body = Plugin),
        (status = 401, body = crate::Problem, content_type = "application/problem+json"),
        (status = 404, body = crate::Problem, content_type = "application/problem+json")
    )
)]
pub async fn get_plugin(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Plugin>, ApiError> {
    let plugin = visible(&state, &caller)
        .find(|p| p.name == name)
        .ok_or_else(|| ApiError::not_found(format_args!("plugin `{}`", escape_capped(&name, 100))))?;
    Ok(Json(with_users(&state, &caller, plugin)))
}
