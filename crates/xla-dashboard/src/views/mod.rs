//! The pages. Each view module reads the API's results for one page and
//! renders its template; this module holds what every page shares: the
//! frame (navigation, tenant and period pickers, sign-out), the period of
//! a request, and the headers every page carries.

pub mod follow_up;
pub mod lost_time;
pub mod scorecard;
pub mod sign_in;
pub mod sla;
pub mod sources;
pub mod ticket;
pub mod xot;

use crate::Dashboard;
use crate::error::PageError;
use crate::session::Viewer;
use askama::Template;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use std::sync::Arc;
use xla_api::{ApiError, ApiState};
use xla_score::{Period, Window};
use xla_store::{Aggregation, Bucket, SeriesQuery};

/// Months the period picker offers, the latest with data last.
const PICKER_MONTHS: usize = 12;

/// One entry of the navigation.
pub struct NavItem {
    /// Its label.
    pub label: &'static str,
    /// Its path under the tenant.
    pub path: &'static str,
}

/// The views, in the order of the navigation.
pub const NAV: &[NavItem] = &[
    NavItem {
        label: "Scorecard",
        path: "scorecard",
    },
    NavItem {
        label: "SLA beside XLA",
        path: "sla-beside-xla",
    },
    NavItem {
        label: "Where the time goes",
        path: "lost-time",
    },
    NavItem {
        label: "X/O/T",
        path: "xot",
    },
    NavItem {
        label: "Follow-up",
        path: "follow-up",
    },
    NavItem {
        label: "Sources",
        path: "sources",
    },
];

/// What the layout around every page shows.
pub struct Frame {
    /// The page's title.
    pub title: String,
    /// The tenant shown.
    pub tenant: String,
    /// Tenants the viewer may pick (more than one only for tokens that span tenants).
    pub tenants: Vec<String>,
    /// The month shown, `2026-10` (empty on pages without one).
    pub period: String,
    /// Months to pick from, newest first.
    pub periods: Vec<String>,
    /// The current view's path under the tenant (`scorecard`).
    pub active: &'static str,
    /// The session's form key (sign-out).
    pub form_key: String,
    /// The token's name, for "signed in as".
    pub token_name: String,
    /// Query parameters the month picker keeps (a view's own filters and targets).
    pub keep: Vec<(&'static str, String)>,
}

impl Frame {
    /// The frame of a page that shows the month `window`, with the months
    /// to pick from.
    pub fn showing(mut self, window: Window, periods: Vec<String>) -> Frame {
        self.period = window.label();
        self.periods = periods;
        self
    }

    /// The navigation.
    pub fn nav(&self) -> &'static [NavItem] {
        NAV
    }

    /// The link to `path` under the tenant, keeping the period.
    pub fn link(&self, path: &str) -> String {
        let base = format!("/dashboard/tenants/{}/{path}", self.tenant);
        if self.period.is_empty() {
            base
        } else {
            format!("{base}?period={}", self.period)
        }
    }
}

/// A page's query string, parsed; a malformed one is the page's own 400
/// saying what was wrong (not the API's problem document).
pub struct PageQuery<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for PageQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, PageError> {
        let query = parts.uri.query().unwrap_or_default();
        serde_urlencoded::from_str(query).map(PageQuery).map_err(|e| {
            PageError::Api(ApiError::BadRequest(format!(
                "the address's query is not one this page takes ({}); fix the address, or use the page's own controls",
                xla_types::untrusted::escape_capped(&e.to_string(), 200)
            )))
        })
    }
}

/// A number from a form field, where an empty field means "not given".
///
/// # Errors
/// A field that is neither empty nor a number.
pub fn optional_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    let text: Option<String> = Option::deserialize(deserializer)?;
    match text.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(number) => number
            .parse::<f64>()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("`{number}` is not a number"))),
    }
}

/// `?period=2026-10`.
#[derive(Debug, Default, Deserialize)]
pub struct PeriodParams {
    /// The month; the latest with data when absent.
    pub period: Option<String>,
}

/// The tenant when the viewer's token covers it and the host knows it;
/// the same 404 otherwise (as the API).
pub fn tenant<'a>(state: &Dashboard, viewer: &Viewer, tenant: &'a str) -> Result<&'a str, PageError> {
    Ok(xla_api::results::visible_tenant(&state.api, &viewer.token, tenant)?)
}

/// The tenants the viewer may see, sorted.
pub fn tenants(state: &Dashboard, viewer: &Viewer) -> Vec<String> {
    state
        .api
        .catalog
        .tenants()
        .into_iter()
        .filter(|t| viewer.token.covers(t))
        .map(str::to_string)
        .collect()
}

/// Months back the default month is chosen among.
const RECENT_MONTHS: usize = 3;

/// The month a page shows when none is asked for: of the last three months
/// holding tickets or survey answers of `tenant` (not after the current
/// one), the latest with at least half the busiest one's volume, so a
/// month that has barely begun (or a trickle of late answers) is not what
/// a review opens on; the current month without data.
///
/// # Errors
/// Store failures.
pub async fn latest_month(api: &ApiState, tenant: &str) -> Result<Window, PageError> {
    let now = Period::Month.containing(xla_types::now_ms());
    let mut per_month: std::collections::BTreeMap<i64, u64> = std::collections::BTreeMap::new();
    for metric in ["ticket_resolved", "happiness_rating"] {
        let query = SeriesQuery {
            tenant: tenant.into(),
            metric: metric.into(),
            from: i64::MIN / 2,
            to: now.end,
            bucket: Bucket::Month,
            filter: None,
            group_by: None,
            aggregation: Aggregation::Count,
        };
        for ((start, _), rollup) in api.store.rollups(&query).await.map_err(ApiError::from)? {
            *per_month.entry(start).or_default() += rollup.count;
        }
    }
    let recent: Vec<(i64, u64)> = per_month
        .into_iter()
        .rev()
        .filter(|(_, count)| *count > 0)
        .take(RECENT_MONTHS)
        .collect();
    let busiest = recent.iter().map(|(_, count)| *count).max().unwrap_or(0);
    Ok(recent
        .iter()
        .find(|(_, count)| count * 2 >= busiest)
        .map_or(now, |(start, _)| Period::Month.containing(*start)))
}

/// The month a request asks for, or the latest with data; and the months
/// to pick from, newest first.
pub async fn month(state: &Dashboard, tenant: &str, params: &PeriodParams) -> Result<(Window, Vec<String>), PageError> {
    let latest = latest_month(&state.api, tenant).await?;
    let window = match params.period.as_deref().filter(|p| !p.is_empty()) {
        Some(label) => xla_api::results::window(Period::Month, label)?,
        None => latest,
    };
    let mut periods: Vec<String> = latest.trailing(PICKER_MONTHS).iter().rev().map(|w| w.label()).collect();
    if !periods.contains(&window.label()) {
        periods.insert(0, window.label());
    }
    Ok((window, periods))
}

/// The frame of a page of `tenant`.
pub fn frame(state: &Dashboard, viewer: &Viewer, tenant: &str, title: &str, active: &'static str) -> Frame {
    Frame {
        title: title.to_string(),
        tenant: tenant.to_string(),
        tenants: tenants(state, viewer),
        period: String::new(),
        periods: Vec::new(),
        active,
        form_key: viewer.form_key.clone(),
        token_name: viewer.token.name.clone(),
        keep: Vec::new(),
    }
}

/// A template rendered as a page.
pub fn render<T: Template>(page: &T) -> Result<Response, PageError> {
    let html = page
        .render()
        .map_err(|e| PageError::Internal(format!("rendering a page: {e}")))?;
    Ok(Html(show_hidden(html)).into_response())
}

/// `html` with every control and bidirectional formatting character shown
/// as its escape (`\u{202e}`): the templates escape markup, but a source's
/// text could still reorder what a reader sees (a service name that reads
/// backwards). Our templates hold none of them but line breaks and tabs.
fn show_hidden(html: String) -> String {
    let hidden = |c: char| xla_types::untrusted::is_unsafe_char(c) && !matches!(c, '\n' | '\r' | '\t');
    if !html.chars().any(hidden) {
        return html;
    }
    let mut out = String::with_capacity(html.len() + 32);
    for c in html.chars() {
        if hidden(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidirectional_and_control_characters_are_shown_not_obeyed() {
        assert_eq!(
            show_hidden("<td>\u{202e}evil</td>\n".into()),
            "<td>\\u{202e}evil</td>\n"
        );
        assert_eq!(show_hidden("a\u{7}b".into()), "a\\u{7}b");
        assert_eq!(show_hidden("plain\ttext".into()), "plain\ttext");
    }
}

/// `/dashboard`: the first tenant's scorecard, or sign-in.
pub async fn home(State(state): State<Arc<Dashboard>>, viewer: Viewer) -> Result<Response, PageError> {
    let Some(first) = tenants(&state, &viewer).into_iter().next() else {
        return Err(PageError::Api(ApiError::NotFound(
            "this token covers no tenant the host knows; ask for a token of one".into(),
        )));
    };
    Ok(Redirect::to(&format!("/dashboard/tenants/{first}/scorecard")).into_response())
}

/// `/dashboard/tenants/{tenant}`: its scorecard.
pub async fn tenant_home(
    State(state): State<Arc<Dashboard>>,
    viewer: Viewer,
    Path(tenant_id): Path<String>,
) -> Result<Response, PageError> {
    let tenant = tenant(&state, &viewer, &tenant_id)?;
    Ok(Redirect::to(&format!("/dashboard/tenants/{tenant}/scorecard")).into_response())
}

/// `?tenant=`: the tenant picker's choice.
#[derive(Debug, Deserialize)]
pub struct PickParams {
    /// The tenant.
    pub tenant: String,
}

/// `/dashboard/tenants?tenant=`: the picked tenant's scorecard (the same
/// 404 for a tenant the token does not cover).
pub async fn pick_tenant(
    State(state): State<Arc<Dashboard>>,
    viewer: Viewer,
    PageQuery(params): PageQuery<PickParams>,
) -> Result<Response, PageError> {
    let tenant = tenant(&state, &viewer, &params.tenant)?;
    Ok(Redirect::to(&format!("/dashboard/tenants/{tenant}/scorecard")).into_response())
}

/// Any other path under `/dashboard`.
pub async fn not_found() -> PageError {
    PageError::Api(ApiError::NotFound(
        "no such page; the navigation at the top lists the views".into(),
    ))
}

/// The headers every page and asset carries: a content security policy
/// that allows only this host's own scripts, styles and forms (no inline
/// script, no framing), no sniffing, no referrer beyond this host, and no
/// caching of pages (they hold a tenant's data).
///
/// Pages also say how long the server took (`Server-Timing: app;dur=`, in
/// milliseconds, W3C Server Timing), which the page-timing benchmark reads.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let is_asset = request.uri().path().starts_with("/dashboard/assets/");
    let started = std::time::Instant::now();
    let mut response = next.run(request).await;
    let took_ms = started.elapsed().as_secs_f64() * 1000.0;
    let h = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&format!("app;dur={took_ms:.2}")) {
        h.insert("server-timing", value);
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !is_asset {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// A view's own query of one scorer: not a configured XLA, no targets;
/// `parameters` as the scorer's schema takes them.
pub fn scorer_query(
    tenant: &str,
    scorer: &str,
    metrics: &[&str],
    group_by: Option<&str>,
    parameters: toml::Table,
) -> xla_score::XlaDefinition {
    xla_score::XlaDefinition {
        id: format!("dashboard-{scorer}"),
        name: scorer.to_string(),
        tenant: tenant.to_string(),
        metrics: metrics.iter().map(|m| m.to_string()).collect(),
        scorer: scorer.to_string(),
        score: None,
        parameters: (!parameters.is_empty()).then_some(parameters),
        filter: None,
        group_by: group_by.map(str::to_string),
        period: Period::Month,
        direction: xla_score::Direction::Higher,
        targets: Vec::new(),
        contract: xla_score::Contract::Fixed,
        penalty: None,
        gain_share: None,
    }
}

/// Every result of `query`'s scorer for `window`, through the API's cache.
pub async fn scores(
    state: &Dashboard,
    query: &xla_score::XlaDefinition,
    window: Window,
) -> Result<Vec<xla_types::Score>, PageError> {
    Ok(xla_api::results::scores(&state.api, query, window).await?.decode()?)
}
