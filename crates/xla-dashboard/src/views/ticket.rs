//! One ticket's X, O and T data on one page: every observation of it
//! across sources (its rating and lost time from the survey, its
//! resolution and SLAs from the service desk, its device's health), each
//! with its source and provenance (plugin, version, sha256, sync run).

use super::{frame, render, tenant};
use crate::Dashboard;
use crate::error::PageError;
use crate::format;
use crate::session::Viewer;
use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use std::sync::Arc;
use xla_api::ApiError;
use xla_types::Layer;
use xla_types::untrusted::escape_capped;

/// One observation as shown.
pub struct Row {
    /// The metric.
    pub metric: String,
    /// Its value.
    pub value: String,
    /// Raw.
    pub value_raw: String,
    /// When, RFC 3339.
    pub at: String,
    /// Its other dimensions, `key=value` joined.
    pub dimensions: String,
    /// The connector instance.
    pub source: String,
    /// Plugin and version.
    pub plugin: String,
    /// The plugin's sha256, shortened for the eye (the title has it whole).
    pub sha256_short: String,
    /// Whole.
    pub sha256: String,
    /// The sync run.
    pub sync_run: u64,
}

/// One layer's observations.
pub struct Section {
    /// `X`, `O` or `T`.
    pub layer: &'static str,
    /// Its name.
    pub name: &'static str,
    /// Its rows.
    pub rows: Vec<Row>,
}

#[derive(Template)]
#[template(path = "ticket.html")]
struct TicketPage {
    frame: super::Frame,
    ticket: String,
    sections: Vec<Section>,
    /// Metrics whose raw rows retention dropped, with the first day kept.
    retired: Vec<(String, String)>,
}

/// `GET /dashboard/tenants/{tenant}/tickets/{ticket}`.
pub async fn page(
    State(state): State<Arc<Dashboard>>,
    viewer: Viewer,
    Path((tenant_id, ticket)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let tenant = tenant(&state, &viewer, &tenant_id)?;
    let observations = state
        .api
        .store
        .subject(tenant, "ticket", &ticket)
        .await
        .map_err(ApiError::from)?;
    if observations.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no data of ticket `{}` for this tenant; the follow-up list links its tickets, or check the number",
            escape_capped(&ticket, 100)
        ))
        .into());
    }
    let mut sections: Vec<Section> = [
        (Layer::Experience, "X", "Experience"),
        (Layer::Operational, "O", "Operations"),
        (Layer::Technical, "T", "Technology"),
    ]
    .into_iter()
    .map(|(layer, letter, name)| Section {
        layer: letter,
        name,
        rows: observations
            .iter()
            .filter(|o| o.observation.layer == layer)
            .map(|o| Row {
                metric: o.observation.metric.clone(),
                value: format!("{}", o.observation.value),
                value_raw: o.observation.value.to_string(),
                at: format::time(Some(o.observation.at)),
                dimensions: o
                    .observation
                    .dimensions
                    .iter()
                    .filter(|(k, _)| k != "ticket")
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                source: o.source.clone(),
                plugin: format!("{} {}", o.provenance.plugin, o.provenance.version),
                sha256_short: o.provenance.sha256.chars().take(12).collect(),
                sha256: o.provenance.sha256.clone(),
                sync_run: o.provenance.sync_run,
            })
            .collect(),
    })
    .collect();
    sections.retain(|s| !s.rows.is_empty());
    let retired = xla_api::retired_metrics(&*state.api.store, tenant)
        .await
        .map_err(ApiError::from)?
        .into_iter()
        .map(|m| (m.metric, format::time(Some(m.before))))
        .collect();
    let frame = frame(&state, &viewer, tenant, &format!("Ticket {ticket}"), "");
    render(&TicketPage {
        frame,
        ticket,
        sections,
        retired,
    })
}
