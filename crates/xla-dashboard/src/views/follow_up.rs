//! Follow-up: the unhappy end users (latest rating 0-6) a human should
//! call back, oldest answer first, each with its ticket (the `follow-up`
//! scorer).

use super::{PageQuery, PeriodParams, frame, month, render, scorer_query, scores, tenant};
use crate::Dashboard;
use crate::error::PageError;
use crate::format;
use crate::session::Viewer;
use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use std::sync::Arc;

/// Responses listed at most (the scorer's own cap is 1,000).
const LIMIT: i64 = 500;

#[derive(Debug, Deserialize)]
struct Item {
    ticket: String,
    rating: u8,
    at: Option<i64>,
    lost_time_minutes: Option<f64>,
    assignment_group: Option<String>,
    service: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Detail {
    items: Vec<Item>,
}

/// One response to follow up.
pub struct Row {
    /// Ticket number.
    pub ticket: String,
    /// Its latest rating.
    pub rating: u8,
    /// When, RFC 3339.
    pub at: String,
    /// Days it has waited.
    pub waiting: String,
    /// Lost time reported.
    pub lost_time: String,
    /// Service.
    pub service: String,
    /// Assignment group.
    pub assignment_group: String,
}

#[derive(Template)]
#[template(path = "follow_up.html")]
struct FollowUpPage {
    frame: super::Frame,
    count: u64,
    rated: u64,
    rows: Vec<Row>,
}

/// The scorer query of the page: the whole month's follow-ups, with each
/// ticket's service and assignment group.
pub fn query(tenant: &str) -> xla_score::XlaDefinition {
    let mut parameters = toml::Table::new();
    parameters.insert("limit".into(), LIMIT.into());
    scorer_query(
        tenant,
        "follow-up",
        &["happiness_rating", "lost_time_minutes", "ticket_resolved"],
        None,
        parameters,
    )
}

/// `GET /dashboard/tenants/{tenant}/follow-up?period=`.
pub async fn page(
    State(state): State<Arc<Dashboard>>,
    viewer: Viewer,
    Path(tenant_id): Path<String>,
    PageQuery(params): PageQuery<PeriodParams>,
) -> Result<Response, PageError> {
    let tenant = tenant(&state, &viewer, &tenant_id)?;
    let (window, periods) = month(&state, tenant, &params).await?;
    let query = query(tenant);
    let results = scores(&state, &query, window).await?;
    let whole = results
        .iter()
        .find(|s| s.name == "follow_up_count" && s.group.is_none());
    let items = whole
        .and_then(|s| s.detail.as_deref())
        .and_then(|d| serde_json::from_str::<Detail>(d).ok())
        .map_or_else(Vec::new, |d| d.items);
    let now = xla_types::now_ms();
    let text = |s: Option<String>| s.unwrap_or_else(|| format::NONE.into());
    let rows = items
        .into_iter()
        .map(|i| Row {
            waiting: i.at.map_or_else(
                || format::NONE.into(),
                |at| format!("{:.0}", (now - at) as f64 / 86_400_000.0),
            ),
            at: format::time(i.at),
            lost_time: format::number(i.lost_time_minutes),
            service: text(i.service),
            assignment_group: text(i.assignment_group),
            rating: i.rating,
            ticket: i.ticket,
        })
        .collect();
    let frame = frame(&state, &viewer, tenant, "Follow-up", "follow-up").showing(window, periods);
    render(&FollowUpPage {
        frame,
        count: whole.map_or(0, |s| s.value.max(0.0) as u64),
        rated: whole.map_or(0, |s| s.sample_size),
        rows,
    })
}
