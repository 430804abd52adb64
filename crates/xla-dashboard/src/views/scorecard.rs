//! The scorecard: every XLA of the month against its target, and one XLA's
//! detail (its trend against the targets in force, its groups worst first).
//! Both read the API's report of each XLA.

use super::{PageQuery, PeriodParams, frame, month, render, tenant};
use crate::Dashboard;
use crate::error::PageError;
use crate::format;
use crate::session::Viewer;
use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Serialize;
use std::sync::Arc;
use xla_api::ApiError;
use xla_score::{XlaDefinition, XlaReport, target_for};
use xla_types::untrusted::escape_capped;

/// A line chart's data: labels on x, one or more series.
#[derive(Debug, Serialize)]
pub struct LineChart {
    /// `trend`.
    pub kind: &'static str,
    /// Axis label of the values.
    pub unit: String,
    /// Period labels, oldest first.
    pub labels: Vec<String>,
    /// The series.
    pub series: Vec<Line>,
}

/// One series of a line chart.
#[derive(Debug, Serialize)]
pub struct Line {
    /// Its legend label.
    pub label: String,
    /// One value per label (`null` without data).
    pub values: Vec<Option<f64>>,
    /// Drawn dashed (targets).
    pub dashed: bool,
}

/// One XLA's row.
pub struct Row {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The period it is reported for.
    pub period: String,
    /// Value, target, margin and delta as shown, and raw.
    pub value: String,
    /// Raw value.
    pub value_raw: String,
    /// The target as shown.
    pub target: String,
    /// Raw target.
    pub target_raw: String,
    /// How the target was set.
    pub basis: String,
    /// `Met`, `Not met` or `No target`.
    pub met: &'static str,
    /// CSS class of the flag.
    pub met_class: &'static str,
    /// Points beyond target.
    pub margin: String,
    /// Change from the previous period.
    pub delta: String,
    /// Raw change.
    pub delta_raw: String,
    /// Improving, declining or steady.
    pub trend_direction: String,
    /// The trend in words, for screen readers.
    pub trend_text: String,
    /// The sparkline's data.
    pub chart: String,
    /// Money owed or earned, in words.
    pub money: String,
    /// Observations or subjects behind it.
    pub sample_size: u64,
}

#[derive(Template)]
#[template(path = "scorecard.html")]
struct ScorecardPage {
    frame: super::Frame,
    rows: Vec<Row>,
}

fn trend_chart(xla: &XlaDefinition, report: &XlaReport) -> LineChart {
    let values: Vec<Option<f64>> = report.trend.iter().map(|p| p.value).collect();
    let value_of = |label: &str| report.trend.iter().find(|p| p.period == label).and_then(|p| p.value);
    // The target in force in each period: targets change over time.
    let targets = report
        .trend
        .iter()
        .map(|p| {
            if p.period == report.period {
                return report.target.value;
            }
            let window = xla.period.parse(&p.period)?;
            target_for(xla, window, &mut |w| value_of(&w.label())).value
        })
        .collect();
    LineChart {
        kind: "trend",
        unit: report.name.clone(),
        labels: report.trend.iter().map(|p| p.period.clone()).collect(),
        series: vec![
            Line {
                label: report.name.clone(),
                values,
                dashed: false,
            },
            Line {
                label: "Target".into(),
                values: targets,
                dashed: true,
            },
        ],
    }
}

fn row(xla: &XlaDefinition, report: &XlaReport) -> Row {
    let trend_text = report
        .trend
        .iter()
        .map(|p| format!("{} {}", p.period, format::number(p.value)))
        .collect::<Vec<_>>()
        .join(", ");
    let money = match &report.money {
        Some(m) if m.penalty > 0.0 => format!("{} owed (service credit)", format::money(m.penalty)),
        Some(m) if m.gain_share > 0.0 => format!("{} earned (gain share)", format::money(m.gain_share)),
        Some(_) => "none".into(),
        None => format::NONE.into(),
    };
    let delta = report.delta;
    Row {
        id: report.xla.clone(),
        name: report.name.clone(),
        period: report.period.clone(),
        value: format::number(report.value),
        value_raw: format::raw(report.value),
        target: format::number(report.target.value),
        target_raw: format::raw(report.target.value),
        basis: report.target.basis.clone(),
        met: match (report.value, report.target.value) {
            (None, Some(_)) => "No data",
            _ => format::met(report.met),
        },
        met_class: match report.met {
            Some(true) => "met",
            Some(false) => "missed",
            None => "none",
        },
        margin: format::signed(report.margin),
        delta: format::signed(delta),
        delta_raw: format::raw(delta),
        trend_direction: serde_json::to_value(report.trend_direction)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        trend_text,
        chart: format::chart(&trend_chart(xla, report)),
        money,
        sample_size: report.sample_size,
    }
}

async fn report(state: &Dashboard, xla: &XlaDefinition, month: xla_score::Window) -> Result<XlaReport, PageError> {
    let window = xla.period.containing(month.start);
    Ok(xla_api::results::report(&state.api, xla, window).await?.decode()?)
}

/// `GET /dashboard/tenants/{tenant}/scorecard?period=`.
pub async fn page(
    State(state): State<Arc<Dashboard>>,
    viewer: Viewer,
    Path(tenant_id): Path<String>,
    PageQuery(params): PageQuery<PeriodParams>,
) -> Result<Response, PageError> {
    let tenant = tenant(&state, &viewer, &tenant_id)?;
    let (window, periods) = month(&state, tenant, &params).await?;
    let mut rows = Vec::new();
    for xla in state.api.catalog.xlas.iter().filter(|x| x.tenant == tenant) {
        rows.push(row(xla, &report(&state, xla, window).await?));
    }
    let frame = frame(&state, &viewer, tenant, "Scorecard", "scorecard").showing(window, periods);
    render(&ScorecardPage { frame, rows })
}

/// One group of an XLA's detail.
pub struct GroupRow {
    /// The group.
    pub group: String,
    /// Its value as shown.
    pub value: String,
    /// Raw.
    pub value_raw: String,
    /// `Met`, `Not met`, `No target`.
    pub met: &'static str,
    /// CSS class of the flag.
    pub met_class: &'static str,
    /// Behind it.
    pub sample_size: u64,
}

#[derive(Template)]
#[template(path = "xla.html")]
struct XlaPage {
    frame: super::Frame,
    row: Row,
    group_by: String,
    groups: Vec<GroupRow>,
}

/// `GET /dashboard/tenants/{tenant}/xlas/{xla}?period=`.
pub async fn detail(
    State(state): State<Arc<Dashboard>>,
    viewer: Viewer,
    Path((tenant_id, id)): Path<(String, String)>,
    PageQuery(params): PageQuery<PeriodParams>,
) -> Result<Response, PageError> {
    let tenant = tenant(&state, &viewer, &tenant_id)?;
    let xla = state.api.catalog.xla(tenant, &id).ok_or_else(|| {
        ApiError::NotFound(format!(
            "no XLA `{}` for this tenant; the scorecard lists its XLAs",
            escape_capped(&id, 100)
        ))
    })?;
    let (window, periods) = month(&state, tenant, &params).await?;
    let report = report(&state, xla, window).await?;
    let groups = report
        .groups
        .iter()
        .map(|g| GroupRow {
            group: g.group.clone(),
            value: format::number(Some(g.value)),
            value_raw: format::raw(Some(g.value)),
            met: format::met(g.met),
            met_class: match g.met {
                Some(true) => "met",
                Some(false) => "missed",
                None => "none",
            },
            sample_size: g.sample_size,
        })
        .collect();
    let frame = frame(&state, &viewer, tenant, &xla.name, "scorecard").showing(window, periods);
    render(&XlaPage {
        frame,
        row: row(xla, &report),
        group_by: xla.group_by.clone().unwrap_or_default(),
        groups,
    })
}
