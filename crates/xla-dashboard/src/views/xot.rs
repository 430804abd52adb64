//! X/O/T: for a drop in happiness, whether it came with a technical drop
//! (DEX), a process drop (SLA compliance, resolution time), both or
//! neither: for the tenant and per service (the API's X/O/T view and its
//! per-slice attribution).

use super::sla::{SlaParams, targets};
use super::{PageQuery, PeriodParams, frame, month, render, tenant};
use crate::Dashboard;
use crate::error::PageError;
use crate::format;
use crate::session::Viewer;
use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use std::sync::Arc;
use xla_api::ApiState;
use xla_api::results::ScorecardQuery;
use xla_score::{Cause, XotSlice, XotView};

/// One measure, this month against the one before.
pub struct Pair {
    /// This month.
    pub now: String,
    /// The month before.
    pub before: String,
}

fn pair(values: (Option<f64>, Option<f64>)) -> Pair {
    Pair {
        now: format::number(values.0),
        before: format::number(values.1),
    }
}

/// A cause in words.
pub fn cause(cause: Cause) -> &'static str {
    match cause {
        Cause::NoDrop => "No drop",
        Cause::Technical => "Technical (DEX)",
        Cause::Process => "Process (SLA, resolution)",
        Cause::TechnicalAndProcess => "Technical and process",
        Cause::Neither => "Neither: experience only",
    }
}

/// One service's row.
pub struct Row {
    /// The service.
    pub group: String,
    /// Happiness.
    pub happiness: Pair,
    /// SLA compliance.
    pub sla: Pair,
    /// Resolution hours.
    pub resolution: Pair,
    /// The cause in words.
    pub cause: &'static str,
    /// Its machine name.
    pub cause_id: String,
    /// One sentence.
    pub explanation: String,
}

#[derive(Template)]
#[template(path = "xot.html")]
struct XotPage {
    frame: super::Frame,
    view: XotView,
    cause: &'static str,
    happiness: Pair,
    lost_time: Pair,
    sla: Pair,
    resolution: Pair,
    dex: Pair,
    rows: Vec<Row>,
}

fn cause_id(cause: Cause) -> String {
    serde_json::to_value(cause)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The scorecard query behind the per-service attribution: by service,
/// at the tenant's own targets.
pub fn slices_query<'a>(api: &ApiState, tenant: &str, window: xla_score::Window) -> ScorecardQuery<'a> {
    let (sla_target, happiness_target) = targets(api, tenant, window, &SlaParams::default());
    ScorecardQuery {
        group_by: "service",
        sla_target,
        happiness_target,
    }
}

/// `GET /dashboard/tenants/{tenant}/xot?period=`.
pub async fn page(
    State(state): State<Arc<Dashboard>>,
    viewer: Viewer,
    Path(tenant_id): Path<String>,
    PageQuery(params): PageQuery<PeriodParams>,
) -> Result<Response, PageError> {
    let tenant = tenant(&state, &viewer, &tenant_id)?;
    let (window, periods) = month(&state, tenant, &params).await?;
    let view: XotView = xla_api::results::xot(&state.api, tenant, window).await?.decode()?;
    let query = slices_query(&state.api, tenant, window);
    let slices: Vec<XotSlice> = xla_api::results::xot_slices(&state.api, tenant, window, query)
        .await?
        .decode()?;
    let mut rows: Vec<Row> = slices
        .into_iter()
        .map(|s| Row {
            happiness: pair(s.happiness),
            sla: pair(s.sla_compliance),
            resolution: pair(s.resolution_hours),
            cause: cause(s.cause),
            cause_id: cause_id(s.cause),
            explanation: s.explanation,
            group: s.group,
        })
        .collect();
    // Drops first: what the review should talk about.
    rows.sort_by_key(|r| (r.cause_id == "no_drop", r.group.clone()));
    let frame = frame(&state, &viewer, tenant, "X/O/T", "xot").showing(window, periods);
    render(&XotPage {
        frame,
        cause: cause(view.cause),
        happiness: pair(view.happiness),
        lost_time: pair(view.lost_time_minutes),
        sla: pair(view.sla_compliance),
        resolution: pair(view.resolution_hours),
        dex: pair(view.dex_score),
        view,
        rows,
    })
}
