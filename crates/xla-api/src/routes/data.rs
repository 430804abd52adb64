//! The data under the XLAs: the metric vocabulary with counts, series,
//! breakdowns with Pareto shares, and one ticket's every observation with
//! its provenance. Series and breakdowns also answer `text/csv`.

use super::{cache_key, cached, json, tenant};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::results::dimension;
use crate::state::ApiState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};
use xla_store::{Aggregation, Breakdown, BreakdownQuery, Bucket, SeriesPoint, SeriesQuery, StoredObservation};
use xla_types::Layer;
use xla_types::untrusted::escape_capped;

/// One metric of the vocabulary as this tenant's sources emit it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CatalogMetric {
    /// Its name (`happiness_rating`).
    pub name: String,
    /// X, O or T.
    pub layer: Layer,
    /// Its unit (`minutes`, `0-10`).
    pub unit: String,
    /// What it measures.
    pub description: String,
    /// The connector instances that emit it.
    pub instances: Vec<String>,
    /// Observations stored for this tenant (rollups: retention does not lower it).
    pub count: u64,
}

/// The metrics this tenant's connector instances emit, with units, layers and counts.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/metrics",
    tag = "data",
    security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id")),
    responses(
        (status = 200, body = Vec<CatalogMetric>),
        (status = 401, body = crate::Problem, content_type = "application/problem+json"),
        (status = 404, body = crate::Problem, content_type = "application/problem+json")
    )
)]
pub async fn metrics_catalog(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(tenant_id): Path<String>,
) -> Result<Json<Vec<CatalogMetric>>, ApiError> {
    let tenant = tenant(&state, &caller, &tenant_id)?;
    let mut metrics: BTreeMap<String, CatalogMetric> = BTreeMap::new();
    for instance in state.catalog.instances.iter().filter(|i| i.tenant == tenant) {
        let Some(plugin) = state.catalog.plugins.iter().find(|p| p.name == instance.plugin) else {
            continue;
        };
        for metric in &plugin.metrics {
            let entry = metrics.entry(metric.name.clone()).or_insert_with(|| CatalogMetric {
                name: metric.name.clone(),
                layer: metric.layer,
                unit: metric.unit.clone(),
                description: metric.description.clone(),
                instances: Vec::new(),
                count: 0,
            });
            entry.instances.push(instance.name.clone());
        }
    }
    for metric in metrics.values_mut() {
        let cells = state
            .store
            .rollups(&SeriesQuery {
                tenant: tenant.to_string(),
                metric: metric.name.clone(),
                from: i64::MIN / 2,
                to: i64::MAX / 2,
                bucket: Bucket::Quarter,
                filter: None,
                group_by: None,
                aggregation: Aggregation::Count,
            })
            .await?;
        metric.count = cells.values().map(|c| c.count).sum();
    }
    Ok(Json(metrics.into_values().collect()))
}

/// `?from=&to=` and the shape of a series.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SeriesParams {
    /// Start, RFC 3339 (`2026-10-01T00:00:00Z`), inclusive; rounded down to
    /// its UTC day. A window whose start is not before its end is empty.
    #[param(format = DateTime)]
    pub from: String,
    /// End, RFC 3339, exclusive; rounded up to a UTC day.
    #[param(format = DateTime)]
    pub to: String,
    /// How each bucket's values become one number.
    pub aggregation: Aggregation,
    /// Bucket width (default `month`).
    pub bucket: Option<Bucket>,
    /// Only observations with this dimension value: `dimension:value` (`service:VPN`).
    #[param(pattern = "^[A-Za-z0-9_.-]{1,64}:[\\s\\S]+$")]
    pub filter: Option<String>,
    /// One series per value of this dimension (`assignment_group`).
    #[param(pattern = "^[A-Za-z0-9_.-]{1,64}$")]
    pub group_by: Option<String>,
    /// `json` (default) or `csv`; an `Accept: text/csv` header does the same.
    #[param(inline)]
    pub format: Option<Format>,
}

/// The media type of a series or breakdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// `application/json`.
    Json,
    /// `text/csv` (RFC 4180).
    Csv,
}

/// What a breakdown ranks its groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RankBy {
    /// The sum of the values (lost minutes).
    Sum,
    /// The number of observations (tickets).
    Count,
}

/// A series as JSON.
#[derive(Debug, Serialize, ToSchema)]
pub struct Series {
    /// The metric.
    pub metric: String,
    /// The aggregation.
    pub aggregation: Aggregation,
    /// The bucket width.
    pub bucket: Bucket,
    /// One point per bucket (and group), by bucket then group.
    pub points: Vec<SeriesPoint>,
}

/// A metric over time, per bucket and group.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/metrics/{metric}/series",
    tag = "data",
    security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id"), ("metric" = String, Path, description = "Metric name"), SeriesParams),
    responses(
        (status = 200, description = "The series; as CSV (`?format=csv` or `Accept: text/csv`) its columns are bucket_start, group, value, count",
            content((Series = "application/json"), (String = "text/csv"))),
        (status = 400, body = crate::Problem, content_type = "application/problem+json"),
        (status = 401, body = crate::Problem, content_type = "application/problem+json"),
        (status = 404, body = crate::Problem, content_type = "application/problem+json"),
        (status = 422, body = crate::Problem, content_type = "application/problem+json")
    )
)]
pub async fn series(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path((tenant_id, metric)): Path<(String, String)>,
    Query(params): Query<SeriesParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let tenant = tenant(&state, &caller, &tenant_id)?;
    let (from, to) = window(&params.from, &params.to)?;
    let bucket = params.bucket.unwrap_or(Bucket::Month);
    let query = SeriesQuery {
        tenant: tenant.to_string(),
        metric: metric.clone(),
        from,
        to,
        bucket,
        filter: params.filter.as_deref().map(filter).transpose()?,
        group_by: params
            .group_by
            .as_deref()
            .map(|g| dimension("group_by", g))
            .transpose()?
            .map(str::to_string),
        aggregation: params.aggregation,
    };
    let csv = wants_csv(params.format, &headers);
    let key = cache_key(&["series", &format!("{query:?}"), if csv { "csv" } else { "json" }]);
    cached(&state, key, async {
        let points = state.store.series(&query).await?;
        if csv {
            let rows = points.iter().map(|p| {
                vec![
                    rfc3339(p.bucket_start),
                    p.group.clone().unwrap_or_default(),
                    p.value.map(|v| v.to_string()).unwrap_or_default(),
                    p.count.to_string(),
                ]
            });
            return csv_body(&["bucket_start", "group", "value", "count"], rows);
        }
        json(&Series {
            metric,
            aggregation: params.aggregation,
            bucket,
            points,
        })
    })
    .await
}

/// `?dimension=&from=&to=&top=&by=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BreakdownParams {
    /// The dimension whose values are ranked (`assignment_group`).
    #[param(pattern = "^[A-Za-z0-9_.-]{1,64}$")]
    pub dimension: String,
    /// Start, RFC 3339, inclusive. A window whose start is not before its end is empty.
    #[param(format = DateTime)]
    pub from: String,
    /// End, RFC 3339, exclusive.
    #[param(format = DateTime)]
    pub to: String,
    /// Groups to return, 1 to 1000 (default 10); totals cover every group.
    #[param(minimum = 1, maximum = 1000)]
    pub top: Option<usize>,
    /// Rank by the `sum` of values (default) or the `count` of observations.
    #[param(inline)]
    pub by: Option<RankBy>,
    /// `json` (default) or `csv`.
    #[param(inline)]
    pub format: Option<Format>,
}

/// The top values of a dimension by a metric, with Pareto shares (which
/// assignment groups hold 80 % of lost time).
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/metrics/{metric}/breakdown",
    tag = "data",
    security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id"), ("metric" = String, Path, description = "Metric name"), BreakdownParams),
    responses(
        (status = 200, description = "The breakdown; as CSV (`?format=csv` or `Accept: text/csv`) its columns are group, value, share, cumulative_share",
            content((Breakdown = "application/json"), (String = "text/csv"))),
        (status = 400, body = crate::Problem, content_type = "application/problem+json"),
        (status = 401, body = crate::Problem, content_type = "application/problem+json"),
        (status = 404, body = crate::Problem, content_type = "application/problem+json")
    )
)]
pub async fn breakdown(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path((tenant_id, metric)): Path<(String, String)>,
    Query(params): Query<BreakdownParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let tenant = tenant(&state, &caller, &tenant_id)?;
    let (from, to) = window(&params.from, &params.to)?;
    let top = params.top.unwrap_or(10);
    if !(1..=1000).contains(&top) {
        return Err(ApiError::BadRequest(format!(
            "top {top} is out of range: use 1 to 1000"
        )));
    }
    let query = BreakdownQuery {
        tenant: tenant.to_string(),
        metric,
        from,
        to,
        dimension: dimension("dimension", &params.dimension)?.to_string(),
        by_count: params.by == Some(RankBy::Count),
        top,
    };
    let csv = wants_csv(params.format, &headers);
    let key = cache_key(&["breakdown", &format!("{query:?}"), if csv { "csv" } else { "json" }]);
    cached(&state, key, async {
        let breakdown = state.store.breakdown(&query).await?;
        if csv {
            let rows = breakdown.rows.iter().map(|r| {
                vec![
                    r.group.clone(),
                    r.value.to_string(),
                    r.share.to_string(),
                    r.cumulative_share.to_string(),
                ]
            });
            return csv_body(&["group", "value", "share", "cumulative_share"], rows);
        }
        json(&breakdown)
    })
    .await
}

/// One ticket across sources.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ticket {
    /// The ticket number.
    pub ticket: String,
    /// Every observation of it, oldest first, each with its source and
    /// provenance (plugin, version, sha256, sync run).
    pub observations: Vec<StoredObservation>,
    /// The tenant's metrics whose raw rows retention dropped before a day:
    /// values of this ticket from before then are not listed (its rollups
    /// still count them). Empty when retention dropped nothing.
    pub retired: Vec<RetiredMetric>,
}

/// A metric whose raw rows retention dropped (`[store.retention]`).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RetiredMetric {
    /// The metric.
    pub metric: String,
    /// Raw rows of UTC days before this (unix ms) are gone.
    pub before: i64,
}

/// The metrics of `tenant` whose raw rows retention dropped, by name: what
/// a per-subject view must say it may lack.
///
/// # Errors
/// The store's.
pub async fn retired_metrics(
    store: &dyn xla_store::Store,
    tenant: &str,
) -> Result<Vec<RetiredMetric>, xla_store::StoreError> {
    Ok(store
        .stored_metrics()
        .await?
        .into_iter()
        .filter(|m| m.tenant == tenant)
        .filter_map(|m| {
            m.retired_before.map(|before| RetiredMetric {
                metric: m.metric,
                before,
            })
        })
        .collect())
}

/// Every observation of one ticket across sources (its rating, lost time,
/// SLAs, reassignments), with provenance.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/tickets/{ticket}",
    tag = "data",
    security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id"), ("ticket" = String, Path, description = "Ticket number (INC0012345)")),
    responses(
        (status = 200, body = Ticket),
        (status = 401, body = crate::Problem, content_type = "application/problem+json"),
        (status = 404, body = crate::Problem, content_type = "application/problem+json")
    )
)]
pub async fn ticket(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path((tenant_id, ticket)): Path<(String, String)>,
) -> Result<Json<Ticket>, ApiError> {
    let tenant = tenant(&state, &caller, &tenant_id)?;
    let observations = state.store.subject(tenant, "ticket", &ticket).await?;
    if observations.is_empty() {
        return Err(ApiError::not_found(format_args!(
            "ticket `{}`",
            escape_capped(&ticket, 100)
        )));
    }
    let retired = retired_metrics(&*state.store, tenant).await?;
    Ok(Json(Ticket {
        ticket,
        observations,
        retired,
    }))
}

/// `[from, to)` in unix ms from two RFC 3339 times; empty when `from` is
/// not before `to`.
fn window(from: &str, to: &str) -> Result<(i64, i64), ApiError> {
    let parse = |name: &str, text: &str| {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.timestamp_millis())
            .map_err(|e| {
                ApiError::BadRequest(format!(
                    "`{name}` is `{}`, not an RFC 3339 time like 2026-10-01T00:00:00Z ({e})",
                    escape_capped(text, 60)
                ))
            })
    };
    let (from, to) = (parse("from", from)?, parse("to", to)?);
    Ok((from, to.max(from)))
}

/// `dimension:value`.
fn filter(text: &str) -> Result<(String, String), ApiError> {
    text.split_once(':')
        .filter(|(k, v)| dimension("filter", k).is_ok() && !v.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "filter `{}` is not `dimension:value` (e.g. `service:VPN`)",
                escape_capped(text, 100)
            ))
        })
}

fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map_or_else(|| ms.to_string(), |t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// Whether the caller asked for CSV: `?format=csv`, or an `Accept` header
/// that weighs `text/csv` above JSON (RFC 9110 §12.5.1 quality values;
/// `application/json`, `application/*` and `*/*` count for JSON).
fn wants_csv(format: Option<Format>, headers: &HeaderMap) -> bool {
    if let Some(format) = format {
        return format == Format::Csv;
    }
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let (mut csv, mut json) = (0.0_f32, 0.0_f32);
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")))
            .find_map(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0)
            .clamp(0.0, 1.0);
        match media.as_str() {
            "text/csv" => csv = csv.max(q),
            "application/json" | "application/*" | "*/*" => json = json.max(q),
            _ => {}
        }
    }
    csv > 0.0 && csv > json
}

/// A CSV body (RFC 4180). A cell a spreadsheet would run as a formula
/// (starting `=`, `+`, `-`, `@`, tab or carriage return) is prefixed with
/// `'`: group names come from the sources, so they are untrusted. Numbers
/// are written by us and never start so, except negative ones, which are left
/// as they are.
fn csv_body(header_row: &[&str], rows: impl Iterator<Item = Vec<String>>) -> Result<(HeaderValue, Bytes), ApiError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let internal = |e: csv::Error| ApiError::Internal(format!("writing CSV: {e}"));
    writer.write_record(header_row).map_err(internal)?;
    for row in rows {
        writer
            .write_record(row.iter().map(|cell| defuse(cell).into_owned()))
            .map_err(internal)?;
    }
    let body = writer
        .into_inner()
        .map_err(|e| ApiError::Internal(format!("writing CSV: {e}")))?;
    Ok((HeaderValue::from_static("text/csv; charset=utf-8"), Bytes::from(body)))
}

fn defuse(cell: &str) -> std::borrow::Cow<'_, str> {
    let is_number = cell.parse::<f64>().is_ok();
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') if !is_number => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_defused_and_numbers_kept() {
        assert_eq!(defuse("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(defuse("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(defuse("-12.5"), "-12.5");
        assert_eq!(defuse("Network Operations"), "Network Operations");
    }

    #[test]
    fn windows_and_filters_say_what_is_wrong() {
        assert_eq!(
            window("1970-01-01T00:00:00Z", "1970-01-02T00:00:00Z").ok(),
            Some((0, 86_400_000))
        );
        let error = window("yesterday", "1970-01-02T00:00:00Z").expect_err("refused");
        assert!(error.to_string().contains("`from` is `yesterday`"), "{error}");
        assert_eq!(
            window("1970-01-02T00:00:00Z", "1970-01-01T00:00:00Z").ok(),
            Some((86_400_000, 86_400_000)),
            "an end before the start is an empty window"
        );
        assert_eq!(filter("service:VPN").ok(), Some(("service".into(), "VPN".into())));
        assert!(filter("service").is_err());
        let accept = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT, HeaderValue::from_static(value));
            wants_csv(None, &headers)
        };
        assert!(accept("text/csv"));
        assert!(accept("application/json;q=0.5, text/csv"));
        assert!(!accept("application/json, text/csv;q=0.1"));
        assert!(!accept("text/csv;q=0"));
        assert!(!accept("*/*"));
        assert!(wants_csv(Some(Format::Csv), &HeaderMap::new()));
        assert!(filter("service:").is_err());
        assert!(filter("ser vice:VPN").is_err(), "the key is a dimension name");
        assert_eq!(filter("service:a:b\nc").ok(), Some(("service".into(), "a:b\nc".into())));
        assert!(dimension("group_by", "assignment_group").is_ok());
        for bad in ["", "a b", "é", &"x".repeat(65)] {
            assert!(dimension("group_by", bad).is_err(), "{bad:?}");
        }
    }
}
