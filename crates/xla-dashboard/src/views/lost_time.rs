//! Where the time goes: the work time end users say their tickets cost
//! them, by service and by assignment group (the `lost-time` scorer), how
//! concentrated it is (the `pareto` scorer's curve: the share of tickets
//! that causes 80 % of it) and the hotspots, service × assignment group,
//! ranked by volume × gap to the lost-time target.

use super::{PageQuery, PeriodParams, frame, month, render, scorer_query, scores, tenant};
use crate::Dashboard;
use crate::error::PageError;
use crate::format;
use crate::session::Viewer;
use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use xla_score::XlaDefinition;
use xla_types::Score;

const LOST_TIME: &str = "lost_time_minutes";
/// Carries each ticket's service and assignment group into the rows.
const TICKET: &str = "ticket_resolved";

/// One group's lost time.
pub struct GroupRow {
    /// The group.
    pub group: String,
    /// Mean minutes per answered ticket.
    pub mean: String,
    /// Raw mean.
    pub mean_raw: String,
    /// Total minutes.
    pub total: String,
    /// Raw total.
    pub total_raw: f64,
    /// Answers behind it.
    pub answers: u64,
}

/// One heat-map cell.
pub struct Cell {
    /// Minutes over target × tickets, as shown (a dash for none).
    pub text: String,
    /// Tickets and minutes, in words, for the cell's title.
    pub detail: String,
    /// Intensity class `h0`..`h4`.
    pub class: &'static str,
    /// Whether it is among the top hotspots (said in words too).
    pub hotspot: bool,
}

/// One heat-map row (a service).
pub struct HeatRow {
    /// The service.
    pub group: String,
    /// One cell per assignment group, in the column order.
    pub cells: Vec<Cell>,
}

#[derive(Debug, Deserialize)]
struct ParetoDetail {
    total_minutes: f64,
    tickets: usize,
    top_tickets: usize,
    lost_time_share: f64,
    #[serde(default)]
    curve: Vec<f64>,
}

#[derive(Debug, Deserialize)]
struct HotspotCell {
    value: Option<String>,
    tickets: u64,
    minutes: f64,
}

#[derive(Debug, Deserialize)]
struct Hotspots {
    cells: Vec<HotspotCell>,
}

#[derive(Debug, Serialize)]
struct ParetoChart {
    kind: &'static str,
    curve: Vec<f64>,
    share: f64,
    ticket_share: f64,
}

#[derive(Debug, Serialize)]
struct BarChart {
    kind: &'static str,
    unit: &'static str,
    labels: Vec<String>,
    values: Vec<f64>,
}

#[derive(Template)]
#[template(path = "lost_time.html")]
struct LostTimePage {
    frame: super::Frame,
    by_service: Vec<GroupRow>,
    by_group: Vec<GroupRow>,
    service_chart: String,
    pareto: Option<ParetoView>,
    columns: Vec<String>,
    heat: Vec<HeatRow>,
    target: String,
    top_hotspots: Vec<String>,
}

/// The Pareto summary.
pub struct ParetoView {
    /// Tickets with a lost-time answer.
    pub tickets: usize,
    /// The fewest of them causing the share.
    pub top_tickets: usize,
    /// Their share of tickets, percent.
    pub ticket_share: String,
    /// Raw.
    pub ticket_share_raw: String,
    /// The share of lost time (80).
    pub share: String,
    /// Total minutes.
    pub total_minutes: String,
    /// The chart.
    pub chart: String,
    /// The curve in words at a few points.
    pub text: String,
}

fn group_rows(scores: &[Score]) -> Vec<GroupRow> {
    let total_of = |group: &str| {
        scores
            .iter()
            .find(|s| s.name == "lost_time_total" && s.group.as_deref() == Some(group))
            .map(|s| s.value)
    };
    let mut rows: Vec<(f64, GroupRow)> = scores
        .iter()
        .filter(|s| s.name == "lost_time_mean")
        .filter_map(|s| {
            let group = s.group.as_deref()?;
            let total = total_of(group);
            Some((
                total.unwrap_or(0.0),
                GroupRow {
                    group: group.to_string(),
                    mean: format::number(Some(s.value)),
                    mean_raw: format::raw(Some(s.value)),
                    total: format::number(total),
                    total_raw: total.unwrap_or(0.0),
                    answers: s.sample_size,
                },
            ))
        })
        .collect();
    // Most minutes first: where the time goes.
    rows.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.group.cmp(&b.1.group)));
    rows.into_iter().map(|(_, row)| row).collect()
}

/// The scorer queries of the page: lost time by service, by assignment
/// group, and the Pareto curve with service × assignment-group hotspots.
pub fn queries(tenant: &str) -> [XlaDefinition; 3] {
    let by = |group_by: &str| scorer_query(tenant, "lost-time", &[LOST_TIME], Some(group_by), toml::Table::new());
    let mut parameters = toml::Table::new();
    parameters.insert("cross_by".into(), "assignment_group".into());
    [
        by("service"),
        by("assignment_group"),
        scorer_query(tenant, "pareto", &[LOST_TIME, TICKET], Some("service"), parameters),
    ]
}

fn pareto_view(scores: &[Score]) -> Option<ParetoView> {
    let whole = scores
        .iter()
        .find(|s| s.name == "pareto_ticket_share" && s.group.is_none())?;
    let detail: ParetoDetail = serde_json::from_str(whole.detail.as_deref()?).ok()?;
    let at = |i: usize| detail.curve.get(i).copied();
    let text = [10, 20, 50]
        .iter()
        .map(|i| format!("{i} % of tickets cause {} % of lost time", format::number(at(*i))))
        .collect::<Vec<_>>()
        .join("; ");
    Some(ParetoView {
        tickets: detail.tickets,
        top_tickets: detail.top_tickets,
        ticket_share: format::number(Some(whole.value)),
        ticket_share_raw: format::raw(Some(whole.value)),
        share: format!("{:.0}", detail.lost_time_share),
        total_minutes: format::number(Some(detail.total_minutes)),
        chart: format::chart(&ParetoChart {
            kind: "pareto",
            curve: detail.curve,
            share: detail.lost_time_share,
            ticket_share: whole.value,
        }),
        text,
    })
}

/// Minutes beyond what `tickets` at the target would cost: volume × gap.
fn excess(minutes: f64, tickets: u64, target: Option<f64>) -> f64 {
    (minutes - tickets as f64 * target.unwrap_or(0.0)).max(0.0)
}

/// Hotspots shown in words.
const TOP_HOTSPOTS: usize = 3;

fn heat_map(scores: &[Score], target: Option<f64>) -> (Vec<String>, Vec<HeatRow>, Vec<String>) {
    let mut grid: BTreeMap<String, BTreeMap<String, (u64, f64)>> = BTreeMap::new();
    for score in scores.iter().filter(|s| s.name == "lost_time_hotspots") {
        let (Some(group), Some(detail)) = (&score.group, &score.detail) else {
            continue;
        };
        let Ok(hotspots) = serde_json::from_str::<Hotspots>(detail) else {
            continue;
        };
        for cell in hotspots.cells {
            let column = cell.value.unwrap_or_else(|| "(none)".into());
            grid.entry(group.clone())
                .or_default()
                .insert(column, (cell.tickets, cell.minutes));
        }
    }
    let columns: Vec<String> = grid
        .values()
        .flat_map(|row| row.keys().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut ranked: Vec<(f64, String, String)> = grid
        .iter()
        .flat_map(|(g, row)| {
            row.iter()
                .map(|(c, (t, m))| (excess(*m, *t, target), g.clone(), c.clone()))
        })
        .filter(|(e, _, _)| *e > 0.0)
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    let highest = ranked.first().map_or(0.0, |r| r.0);
    let top: Vec<(String, String)> = ranked
        .iter()
        .take(TOP_HOTSPOTS)
        .map(|r| (r.1.clone(), r.2.clone()))
        .collect();
    let rows = grid
        .iter()
        .map(|(group, row)| HeatRow {
            group: group.clone(),
            cells: columns
                .iter()
                .map(|column| match row.get(column) {
                    None => Cell {
                        text: format::NONE.into(),
                        detail: "no answered tickets".into(),
                        class: "h0",
                        hotspot: false,
                    },
                    Some((tickets, minutes)) => {
                        let e = excess(*minutes, *tickets, target);
                        let level = if highest > 0.0 {
                            (e / highest * 4.0).ceil() as usize
                        } else {
                            0
                        };
                        Cell {
                            text: format!("{e:.0}"),
                            detail: format!("{tickets} tickets, {minutes:.0} minutes lost"),
                            class: ["h0", "h1", "h2", "h3", "h4"][level.min(4)],
                            hotspot: top.iter().any(|(g, c)| g == group && c == column),
                        }
                    }
                })
                .collect(),
        })
        .collect();
    let words = ranked
        .iter()
        .take(TOP_HOTSPOTS)
        .map(|(e, g, c)| format!("{g} × {c}: {e:.0} minutes over target"))
        .collect();
    (columns, rows, words)
}

/// `GET /dashboard/tenants/{tenant}/lost-time?period=`.
pub async fn page(
    State(state): State<Arc<Dashboard>>,
    viewer: Viewer,
    Path(tenant_id): Path<String>,
    PageQuery(params): PageQuery<PeriodParams>,
) -> Result<Response, PageError> {
    let tenant = tenant(&state, &viewer, &tenant_id)?;
    let (window, periods) = month(&state, tenant, &params).await?;
    let [by_service_query, by_group_query, pareto_query] = queries(tenant);
    let service = scores(&state, &by_service_query, window).await?;
    let group = scores(&state, &by_group_query, window).await?;
    // Without the pareto scorer the page still shows where the time goes.
    let pareto = if xla_api::results::engine(&state.api)?.has_scorer(&pareto_query.scorer) {
        scores(&state, &pareto_query, window).await?
    } else {
        Vec::new()
    };
    let target = super::sla::xla_target(&state.api.catalog.xlas, tenant, "lost-time", window);
    let (columns, heat, top_hotspots) = heat_map(&pareto, target);
    let by_service = group_rows(&service);
    let service_chart = format::chart(&BarChart {
        kind: "bars",
        unit: "minutes lost",
        labels: by_service.iter().map(|r| r.group.clone()).collect(),
        values: by_service.iter().map(|r| r.total_raw).collect(),
    });
    let frame = frame(&state, &viewer, tenant, "Where the time goes", "lost-time").showing(window, periods);
    render(&LostTimePage {
        frame,
        by_group: group_rows(&group),
        service_chart,
        by_service,
        pareto: pareto_view(&pareto),
        columns,
        heat,
        target: target.map_or_else(|| "none".into(), |t| format!("{t:.0} minutes per ticket")),
        top_hotspots,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hotspot(group: &str, cells: &str) -> Score {
        Score {
            name: "lost_time_hotspots".into(),
            group: Some(group.into()),
            value: 0.0,
            sample_size: 0,
            detail: Some(format!(r#"{{"cross_by":"assignment_group","cells":{cells}}}"#)),
        }
    }

    #[test]
    fn hotspots_rank_by_minutes_beyond_the_target() {
        // VPN × Network: 10 tickets, 3,000 minutes, 1,800 over a 120-minute
        // target; Email × Desk: 20 tickets, 2,000 minutes, none over it.
        let scores = [
            hotspot(
                "VPN",
                r#"[{"value":"Network","tickets":10,"minutes":3000.0},{"value":null,"tickets":1,"minutes":500.0}]"#,
            ),
            hotspot("Email", r#"[{"value":"Desk","tickets":20,"minutes":2000.0}]"#),
        ];
        let (columns, rows, words) = heat_map(&scores, Some(120.0));
        assert_eq!(columns, ["(none)", "Desk", "Network"]);
        assert_eq!(
            words,
            [
                "VPN × Network: 1800 minutes over target",
                "VPN × (none): 380 minutes over target"
            ]
        );
        let vpn = rows.iter().find(|r| r.group == "VPN").expect("VPN");
        assert_eq!(vpn.cells[2].text, "1800");
        assert_eq!(vpn.cells[2].class, "h4");
        assert!(vpn.cells[2].hotspot);
        assert_eq!(vpn.cells[1].text, format::NONE);
        let email = rows.iter().find(|r| r.group == "Email").expect("Email");
        assert_eq!(email.cells[1].text, "0");
        assert!(!email.cells[1].hotspot);
    }
}
