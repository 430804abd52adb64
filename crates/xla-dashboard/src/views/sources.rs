//! Sources: the tenant's connector instances with their last run, outcome,
//! counts, next run and errors (the API's instance status), refreshed in
//! place every 15 s (htmx); and the plugins with version and sha256.

use super::{frame, render, tenant};
use crate::Dashboard;
use crate::error::PageError;
use crate::format;
use crate::session::Viewer;
use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use std::sync::Arc;

/// One instance as shown.
pub struct InstanceRow {
    /// Its name.
    pub name: String,
    /// Its connector plugin.
    pub plugin: String,
    /// Its schedule, or "on demand".
    pub schedule: String,
    /// `idle`, `running`...
    pub state: String,
    /// The last run's id.
    pub run: String,
    /// When it started.
    pub started: String,
    /// How it ended.
    pub outcome: String,
    /// Whether it failed (said in words too).
    pub failed: bool,
    /// Inserted / replaced / unchanged.
    pub counts: String,
    /// The cursor's age.
    pub cursor_age: String,
    /// When the next run is due.
    pub next_run: String,
    /// The last error, or why it cannot run.
    pub error: String,
}

/// One plugin as shown.
pub struct PluginRow {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// `connector` or `scorer`.
    pub kind: String,
    /// Contract.
    pub contract: String,
    /// sha256, whole.
    pub sha256: String,
    /// Pinned by the config.
    pub pinned: &'static str,
}

#[derive(Template)]
#[template(path = "sources.html")]
struct SourcesPage {
    frame: super::Frame,
    instances: Vec<InstanceRow>,
    plugins: Vec<PluginRow>,
}

/// `GET /dashboard/tenants/{tenant}/sources`.
pub async fn page(
    State(state): State<Arc<Dashboard>>,
    viewer: Viewer,
    Path(tenant_id): Path<String>,
) -> Result<Response, PageError> {
    let tenant = tenant(&state, &viewer, &tenant_id)?;
    let mut instances = Vec::new();
    for instance in state.api.catalog.instances.iter().filter(|i| i.tenant == tenant) {
        let status = xla_api::instance_status(&state.api, instance).await?;
        let last = status.last_run.as_ref();
        let outcome = status.last_outcome.map(|o| o.name().to_string());
        instances.push(InstanceRow {
            name: status.name.clone(),
            plugin: status.plugin.clone(),
            schedule: status.schedule.clone().unwrap_or_else(|| "on demand".into()),
            state: serde_json::to_value(status.state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            run: last.map_or_else(|| format::NONE.into(), |r| r.run.to_string()),
            started: format::time(last.map(|r| r.started)),
            failed: outcome.as_deref() == Some("failed"),
            outcome: outcome.unwrap_or_else(|| "never run".into()),
            counts: last.map_or_else(
                || format::NONE.into(),
                |r| format!("{} / {} / {}", r.inserted, r.replaced, r.unchanged),
            ),
            cursor_age: format::age(status.cursor_age_seconds),
            next_run: format::time(status.next_run),
            error: status
                .unavailable
                .clone()
                .or_else(|| last.and_then(|r| r.error.clone()))
                .unwrap_or_default(),
        });
    }
    let plugins = state
        .api
        .catalog
        .plugins
        .iter()
        // A client's own scorer is shown only to that client.
        .filter(|p| p.tenant.as_deref().is_none_or(|t| t == tenant))
        .map(|p| PluginRow {
            name: p.name.clone(),
            version: p.version.clone(),
            kind: p.kind.clone(),
            contract: p.contract.clone(),
            sha256: p.sha256.clone(),
            pinned: if p.pinned { "pinned" } else { "not pinned" },
        })
        .collect();
    let frame = frame(&state, &viewer, tenant, "Sources", "sources");
    render(&SourcesPage {
        frame,
        instances,
        plugins,
    })
}
