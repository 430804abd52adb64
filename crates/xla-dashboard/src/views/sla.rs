//! SLA beside XLA: per service, SLA compliance against happiness, with the
//! watermelons (SLA green, people red) shaded, named and said in words;
//! from the API's scorecard.

use super::{PageQuery, PeriodParams, frame, month, render, tenant};
use crate::Dashboard;
use crate::error::PageError;
use crate::format;
use crate::session::Viewer;
use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use xla_api::ApiState;
use xla_api::results::ScorecardQuery;
use xla_score::{Scorecard, Window, XlaDefinition};

/// The API's scorecard defaults, when the tenant has no XLA of the kind.
const SLA_TARGET: f64 = 90.0;
const HAPPINESS_TARGET: f64 = 50.0;

/// `?period=&group_by=&sla_target=&happiness_target=`.
#[derive(Debug, Default, Deserialize)]
pub struct SlaParams {
    /// The month.
    pub period: Option<String>,
    /// The slicing dimension (`service`).
    pub group_by: Option<String>,
    /// SLA compliance target, percent; the tenant's SLA-compliance XLA's by default.
    #[serde(default, deserialize_with = "super::optional_number")]
    pub sla_target: Option<f64>,
    /// Happiness target; the tenant's happiness XLA's by default.
    #[serde(default, deserialize_with = "super::optional_number")]
    pub happiness_target: Option<f64>,
}

/// The target in force for `window` of the tenant's first XLA scored by `scorer`.
pub fn xla_target(xlas: &[XlaDefinition], tenant: &str, scorer: &str, window: Window) -> Option<f64> {
    xlas.iter()
        .filter(|x| x.tenant == tenant && x.scorer == scorer)
        .find_map(|x| x.scheduled_target(window.first_day()))
}

/// The scorecard's targets for `tenant`: the asked ones, else its XLAs', else the API's defaults.
pub fn targets(api: &ApiState, tenant: &str, window: Window, params: &SlaParams) -> (f64, f64) {
    let xlas = &api.catalog.xlas;
    (
        params
            .sla_target
            .or_else(|| xla_target(xlas, tenant, "sla-compliance", window))
            .unwrap_or(SLA_TARGET),
        params
            .happiness_target
            .or_else(|| xla_target(xlas, tenant, "happiness", window))
            .unwrap_or(HAPPINESS_TARGET),
    )
}

#[derive(Debug, Serialize)]
struct ScatterChart {
    kind: &'static str,
    groups: Vec<String>,
    sla: Vec<Option<f64>>,
    happiness: Vec<Option<f64>>,
    watermelon: Vec<bool>,
    sla_target: f64,
    happiness_target: f64,
}

/// One slice's row.
pub struct Row {
    /// The slice.
    pub group: String,
    /// SLA compliance as shown, and raw.
    pub sla: String,
    /// Raw.
    pub sla_raw: String,
    /// Happiness as shown.
    pub happiness: String,
    /// Raw.
    pub happiness_raw: String,
    /// Tickets with SLAs met and a rating of 0-6.
    pub watermelon_tickets: u64,
    /// Whether it is a watermelon.
    pub watermelon: bool,
}

#[derive(Template)]
#[template(path = "sla.html")]
struct SlaPage {
    frame: super::Frame,
    card: Scorecard,
    rows: Vec<Row>,
    watermelons: Vec<String>,
    chart: String,
    chart_text: String,
    sla_target: String,
    happiness_target: String,
}

/// `GET /dashboard/tenants/{tenant}/sla-beside-xla`.
pub async fn page(
    State(state): State<Arc<Dashboard>>,
    viewer: Viewer,
    Path(tenant_id): Path<String>,
    PageQuery(params): PageQuery<SlaParams>,
) -> Result<Response, PageError> {
    let tenant = tenant(&state, &viewer, &tenant_id)?;
    let (window, periods) = month(
        &state,
        tenant,
        &PeriodParams {
            period: params.period.clone(),
        },
    )
    .await?;
    let (sla_target, happiness_target) = targets(&state.api, tenant, window, &params);
    let query = ScorecardQuery {
        group_by: params.group_by.as_deref().unwrap_or("service"),
        sla_target,
        happiness_target,
    };
    let card: Scorecard = xla_api::results::scorecard(&state.api, tenant, window, query)
        .await?
        .decode()?;
    let rows: Vec<Row> = card
        .rows
        .iter()
        .map(|r| Row {
            group: r.group.clone(),
            sla: format::number(r.sla_compliance),
            sla_raw: format::raw(r.sla_compliance),
            happiness: format::signed(r.happiness),
            happiness_raw: format::raw(r.happiness),
            watermelon_tickets: r.watermelon_tickets,
            watermelon: r.watermelon,
        })
        .collect();
    let watermelons = card
        .rows
        .iter()
        .filter(|r| r.watermelon)
        .map(|r| r.group.clone())
        .collect();
    let chart = ScatterChart {
        kind: "scatter",
        groups: card.rows.iter().map(|r| r.group.clone()).collect(),
        sla: card.rows.iter().map(|r| r.sla_compliance).collect(),
        happiness: card.rows.iter().map(|r| r.happiness).collect(),
        watermelon: card.rows.iter().map(|r| r.watermelon).collect(),
        sla_target,
        happiness_target,
    };
    let chart_text = rows
        .iter()
        .map(|r| format!("{}: SLA {} %, happiness {}", r.group, r.sla, r.happiness))
        .collect::<Vec<_>>()
        .join("; ");
    let mut frame = frame(&state, &viewer, tenant, "SLA beside XLA", "sla-beside-xla").showing(window, periods);
    // Another month keeps the targets and slicing asked for.
    frame.keep = [
        ("group_by", params.group_by.clone()),
        ("sla_target", params.sla_target.map(|t| t.to_string())),
        ("happiness_target", params.happiness_target.map(|t| t.to_string())),
    ]
    .into_iter()
    .filter_map(|(name, value)| value.map(|v| (name, v)))
    .collect();
    render(&SlaPage {
        frame,
        rows,
        watermelons,
        chart: format::chart(&chart),
        chart_text,
        sla_target: format::number(Some(sla_target)),
        happiness_target: format::signed(Some(happiness_target)),
        card,
    })
}
