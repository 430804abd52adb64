//! The computed results the API and the dashboard both serve: an XLA's
//! report, the X/O/T view, the SLA-beside-XLA scorecard and a scorer's raw
//! results, each computed once per query and store data version and kept
//! in the [`ResultCache`](crate::ResultCache) as its JSON body.
//!
//! The API answers the kept bytes as they are; the dashboard decodes them
//! ([`Fetched::decode`]). Both reach a result through the same key, so a
//! page and the API call it mirrors cost one computation between them and
//! always show the same numbers.
//!
//! Tenancy is checked here too ([`visible_tenant`]): a route or a page of a
//! tenant the token does not cover is the same 404 as a tenant that does
//! not exist.

use crate::cache::Kept;
use crate::error::ApiError;
use crate::state::ApiState;
use axum::body::Bytes;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use xla_score::{Engine, Period, ScoreError, Window, XlaDefinition};
use xla_store::TokenRecord;
use xla_types::untrusted::escape_capped;

/// The header that says whether a result came from the cache (`hit`) or
/// was computed (`miss`).
pub const CACHE_HEADER: &str = "x-xla-cache";

/// A result as kept: its media type, body, and whether it came from the cache.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Its `Content-Type`.
    pub content_type: HeaderValue,
    /// Its body.
    pub body: Bytes,
    /// Whether it came from the cache.
    pub hit: bool,
}

impl Fetched {
    /// The body decoded as `T`.
    ///
    /// # Errors
    /// [`ApiError::Internal`] when the body is not a `T` (a result of another
    /// kind under the same key: a bug).
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        serde_json::from_slice(&self.body).map_err(|e| ApiError::Internal(format!("decoding a kept result: {e}")))
    }
}

impl IntoResponse for Fetched {
    fn into_response(self) -> Response {
        let mut response = self.body.into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, self.content_type);
        headers.insert(
            CACHE_HEADER,
            HeaderValue::from_static(if self.hit { "hit" } else { "miss" }),
        );
        response
    }
}

/// `tenant` when `token` covers it and the host knows it; the same 404
/// otherwise, so a token cannot learn which tenants exist.
///
/// # Errors
/// [`ApiError::NotFound`] naming the (escaped) tenant.
pub fn visible_tenant<'a>(state: &ApiState, token: &TokenRecord, tenant: &'a str) -> Result<&'a str, ApiError> {
    if token.covers(tenant) && state.catalog.tenants().contains(tenant) {
        Ok(tenant)
    } else {
        Err(ApiError::not_found(format_args!(
            "tenant `{}`",
            escape_capped(tenant, 100)
        )))
    }
}

/// A cache key naming a query by its parts, unambiguously (a JSON array:
/// no part can spill into the next).
pub(crate) fn cache_key(parts: &[&str]) -> String {
    serde_json::to_string(parts).unwrap_or_default()
}

/// The result for `key` at the store's current data version: from the
/// cache, or computed by `compute` (media type and body) and kept. The
/// version is read before computing, so data committed meanwhile makes the
/// next request compute again.
pub(crate) async fn cached<F>(state: &ApiState, key: String, compute: F) -> Result<Fetched, ApiError>
where
    F: std::future::Future<Output = Result<(HeaderValue, Bytes), ApiError>>,
{
    let version = state.store.data_version();
    if let Some(kept) = state.results.get(&key, version) {
        return Ok(Fetched {
            content_type: kept.content_type,
            body: kept.body,
            hit: true,
        });
    }
    let (content_type, body) = compute.await?;
    state.results.put(
        key,
        Kept {
            version,
            content_type: content_type.clone(),
            body: body.clone(),
        },
    );
    Ok(Fetched {
        content_type,
        body,
        hit: false,
    })
}

/// `value` as a JSON body.
pub(crate) fn json<T: Serialize>(value: &T) -> Result<(HeaderValue, Bytes), ApiError> {
    let body = serde_json::to_vec(value).map_err(|e| ApiError::Internal(format!("encoding a result: {e}")))?;
    Ok((HeaderValue::from_static("application/json"), Bytes::from(body)))
}

/// The scoring engine, or a 503 saying how to get one.
///
/// # Errors
/// [`ApiError::Unavailable`] when no scorer plugin is loaded.
pub fn engine(state: &ApiState) -> Result<&Engine, ApiError> {
    state
        .engine
        .as_ref()
        .ok_or_else(|| ApiError::Unavailable("no scorer plugin is loaded; install the scorers and restart".into()))
}

/// Whether `label` has the documented shape of a period label:
/// `^(19[7-9][0-9]|[2-9][0-9]{3})-(0[1-9]|1[0-2]|[Qq][1-4]|W(0[1-9]|[1-4][0-9]|5[0-3]))$`:
/// years from 1970 (unix time) to 9999.
pub fn is_period_label(label: &str) -> bool {
    let Some((year, rest)) = label.split_once('-') else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let number = |s: &str, len: usize, range: std::ops::RangeInclusive<u32>| {
        s.len() == len && digits(s) && s.parse().is_ok_and(|n| range.contains(&n))
    };
    year.len() == 4
        && number(year, 4, 1970..=9999)
        && (number(rest, 2, 1..=12)
            || rest.strip_prefix(['Q', 'q']).is_some_and(|q| number(q, 1, 1..=4))
            || rest.strip_prefix('W').is_some_and(|w| number(w, 2, 1..=53)))
}

/// The window `label` names as a `period`.
///
/// # Errors
/// [`ApiError::BadRequest`] for a label of no kind; [`ApiError::NotFound`]
/// for one of another kind or a period that does not exist (there is no
/// such report).
pub fn window(period: Period, label: &str) -> Result<Window, ApiError> {
    let example = match period {
        Period::Week => "2026-W43",
        Period::Month => "2026-10",
        Period::Quarter => "2026-Q4",
    };
    let label_text = escape_capped(label, 40);
    if !is_period_label(label) {
        return Err(ApiError::BadRequest(format!(
            "period `{label_text}` is not a period label (e.g. {example})"
        )));
    }
    period.parse(label).ok_or_else(|| {
        ApiError::NotFound(format!(
            "no report for `{label_text}`: it names no {period}, and this is reported by {period} (e.g. {example})"
        ))
    })
}

fn score_error(error: ScoreError) -> ApiError {
    match error {
        ScoreError::Store { error, .. } => ApiError::from(error),
        other => ApiError::Internal(other.to_string()),
    }
}

/// The report of `xla` for `window` (an [`xla_score::XlaReport`]).
///
/// # Errors
/// 503 without scorers; store and scorer failures.
pub async fn report(state: &ApiState, xla: &XlaDefinition, window: Window) -> Result<Fetched, ApiError> {
    let engine = engine(state)?;
    let key = cache_key(&["report", &xla.tenant, &xla.id, &window.label()]);
    cached(state, key, async {
        json(&engine.report(xla, window).await.map_err(score_error)?)
    })
    .await
}

/// The X/O/T view of `tenant` for `window` (an [`xla_score::XotView`]).
///
/// # Errors
/// 503 without scorers; store failures.
pub async fn xot(state: &ApiState, tenant: &str, window: Window) -> Result<Fetched, ApiError> {
    let engine = engine(state)?;
    let key = cache_key(&["xot", tenant, &window.label()]);
    cached(state, key, async { json(&engine.xot_view(tenant, window).await?) }).await
}

/// What the SLA-beside-XLA scorecard slices by and aims at.
#[derive(Debug, Clone, Copy)]
pub struct ScorecardQuery<'a> {
    /// The slicing dimension, e.g. `service`.
    pub group_by: &'a str,
    /// SLA compliance target, percent (0-100).
    pub sla_target: f64,
    /// Happiness target, points (-100 to 100).
    pub happiness_target: f64,
}

/// The scorecard of `tenant` for `window` (an [`xla_score::Scorecard`]).
///
/// # Errors
/// 400 for targets out of range or a group-by that is not a dimension
/// name; 503 without the `watermelon` scorer; store and scorer failures.
pub async fn scorecard(
    state: &ApiState,
    tenant: &str,
    window: Window,
    query: ScorecardQuery<'_>,
) -> Result<Fetched, ApiError> {
    let ScorecardQuery {
        group_by,
        sla_target,
        happiness_target,
    } = query;
    if !(0.0..=100.0).contains(&sla_target) || !(-100.0..=100.0).contains(&happiness_target) {
        return Err(ApiError::BadRequest(
            "sla_target is a percentage (0 to 100) and happiness_target a score (-100 to 100)".into(),
        ));
    }
    let engine = engine(state)?;
    if !engine.has_scorer(xla_score::report::WATERMELON_SCORER) {
        return Err(ApiError::Unavailable(
            "the scorecard needs the `watermelon` scorer plugin; install it and restart".into(),
        ));
    }
    let group_by = dimension("group_by", group_by)?;
    let key = cache_key(&[
        "scorecard",
        tenant,
        &window.label(),
        group_by,
        &sla_target.to_string(),
        &happiness_target.to_string(),
    ]);
    cached(state, key, async {
        json(
            &engine
                .scorecard(tenant, window, group_by, sla_target, happiness_target)
                .await
                .map_err(score_error)?,
        )
    })
    .await
}

/// Every result `xla`'s scorer returns for `window` (a list of
/// [`xla_types::Score`]), without targets: the views built on a scorer's
/// details (the Pareto curve, hotspots, the follow-up list). `xla` need not
/// be configured; its id, scorer, metrics, group-by and parameters make the
/// key.
///
/// # Errors
/// 503 without scorers or without `xla`'s scorer; store and scorer failures.
pub async fn scores(state: &ApiState, xla: &XlaDefinition, window: Window) -> Result<Fetched, ApiError> {
    let engine = engine(state)?;
    if !engine.has_scorer(&xla.scorer) {
        return Err(ApiError::Unavailable(format!(
            "this view needs the `{}` scorer plugin; install it and restart",
            escape_capped(&xla.scorer, 64)
        )));
    }
    let metrics = xla.metrics.join(",");
    let key = cache_key(&[
        "scores",
        &xla.tenant,
        &xla.scorer,
        &metrics,
        xla.group_by.as_deref().unwrap_or(""),
        &xla.parameters_json(),
        &xla.filter_pair().map(|(d, v)| format!("{d}:{v}")).unwrap_or_default(),
        &window.label(),
    ]);
    cached(state, key, async {
        json(&engine.run_scorer(xla, window).await.map_err(score_error)?.results)
    })
    .await
}

/// `name` when it is a dimension name.
///
/// # Errors
/// [`ApiError::BadRequest`] naming the parameter.
pub fn dimension<'a>(parameter: &str, name: &'a str) -> Result<&'a str, ApiError> {
    match xla_types::is_plain_name(name) {
        true => Ok(name),
        false => Err(ApiError::BadRequest(format!(
            "`{parameter}` is `{}`, not a dimension name (1 to 64 letters, digits, `_`, `.` or `-`, like `assignment_group`)",
            escape_capped(name, 70)
        ))),
    }
}

/// The X/O/T attribution per slice of `tenant` for the month `window` (a
/// list of [`xla_score::XotSlice`]), from the X/O/T view and the scorecards
/// of this month and the one before, each itself kept.
///
/// # Errors
/// As [`scorecard`] and [`xot`].
pub async fn xot_slices(
    state: &ApiState,
    tenant: &str,
    window: Window,
    query: ScorecardQuery<'_>,
) -> Result<Fetched, ApiError> {
    let view: xla_score::XotView = xot(state, tenant, window).await?.decode()?;
    let current: xla_score::Scorecard = scorecard(state, tenant, window, query).await?.decode()?;
    let previous: xla_score::Scorecard = scorecard(state, tenant, window.previous(), query).await?.decode()?;
    let engine = engine(state)?;
    let key = cache_key(&[
        "xot-slices",
        tenant,
        &window.label(),
        query.group_by,
        &query.sla_target.to_string(),
        &query.happiness_target.to_string(),
    ]);
    cached(state, key, async {
        json(&engine.xot_slices(window, &view, &current, &previous).await?)
    })
    .await
}
