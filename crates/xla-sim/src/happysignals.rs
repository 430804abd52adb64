//! A HappySignals API on loopback, over the survey responses of a seeded
//! [`Org`], with deterministic faults.
//!
//! HappySignals documents its base URL (`https://<client>.<environment>.happysignals.com/api/v2/`),
//! Bearer tokens, the `{"meta": {...}, "items": [...]}` envelope and
//! Django-style filters, but not its endpoint names or item fields. This
//! simulator defines them plausibly (see `SOURCES.md`, *unconfirmed*):
//!
//! - `GET /api/v2/responses/` (also without the trailing slash): one page,
//!   `{"meta": {"count": N, "page": P, "pages": K}, "items": [...]}`, with
//!   `?page=P` (from 1) and `?page_size=S` (at most [`MAX_PAGE_SIZE`]);
//!   a page past the last is 404 `{"detail": "Invalid page."}` (there is
//!   always a page 1, empty when nothing matches);
//! - `GET /api/v2/responses/export.csv`: every matching response as CSV, a
//!   header row and the same columns (factors joined with `;`), no paging.
//!
//! Both take the filters `created__gte`, `created__lte`, `created__gt`,
//! `created__lt` (ISO 8601 UTC, `2026-10-03T14:22:09Z`), `created__date`
//! (`2026-10-03`) and `ticket_type__in` (`Incident,Request`); a filter value
//! that does not parse is 400. Unknown parameters are ignored, as
//! django-filter does. Responses are ordered by `created`, then `id` (as
//! text; ids are zero-padded, `hs-00000001`).
//!
//! Every request needs `Authorization: Bearer <token>`; otherwise 401
//! `{"detail": "..."}`.
//!
//! With [`HappySignalsOptions::shifting`] (field case
//! `08-happysignals-paging.json`) the list moves while it is read: pages are
//! newest first whatever `ordering` says (the default order), and after each
//! page answered, responses arrive (created now, by the wall clock) and the
//! first response of that page is removed (anonymised, deleted on request),
//! pulling every later one a place forward. [`HappySignalsSim::removed`] and
//! [`HappySignalsSim::arrived`] say what changed.
//!
//! An item:
//!
//! ```json
//! {"id": "hs-00000042", "ticket_number": "INC0010042", "ticket_type": "Incident",
//!  "esm_area": "IT", "category": "network", "score": 3, "lost_time_minutes": 90,
//!  "factors": ["Service was slow"], "channel": "Portal", "language": "fi",
//!  "country": "Finland", "resolved_at": "2026-10-03T10:00:00Z", "created": "2026-10-03T14:22:09Z"}
//! ```
//!
//! `lost_time_minutes` is `null` when the respondent did not answer it.

use crate::org::{Org, SurveyResponse, TicketKind};
use crate::server::Served;
use crate::servicenow::{format_servicenow_time, parse_servicenow_time};
use crate::{lock, read, write};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

pub use crate::fault::{Fault, FaultRule, Requests};

/// Largest `page_size` the API accepts; larger values are cut to it.
pub const MAX_PAGE_SIZE: usize = 1000;

/// The CSV export's columns, in order.
pub const CSV_COLUMNS: [&str; 13] = [
    "id",
    "ticket_number",
    "ticket_type",
    "esm_area",
    "category",
    "score",
    "lost_time_minutes",
    "factors",
    "channel",
    "language",
    "country",
    "resolved_at",
    "created",
];

/// What the simulated API accepts and how it misbehaves.
#[derive(Debug, Clone, PartialEq)]
pub struct HappySignalsOptions {
    /// The customer's API token, sent as `Authorization: Bearer <token>`.
    pub token: String,
    /// `page_size` when the request has none.
    pub default_page_size: usize,
    /// Faults injected by request number (both endpoints count).
    pub faults: Vec<FaultRule>,
    /// The list moves while it is read; `None`: it holds still.
    pub shifting: Option<Shifting>,
}

/// How the list moves under a client reading it page by page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shifting {
    /// Newest first, ignoring `ordering` (else oldest first, as always).
    pub newest_first: bool,
    /// Responses submitted after each page answered.
    pub arrivals_per_page: usize,
    /// Responses removed after each page answered: the first ones of that page.
    pub removals_per_page: usize,
}

impl Default for Shifting {
    /// Field case 08: newest first, one arrival and one removal per page.
    fn default() -> Self {
        Shifting {
            newest_first: true,
            arrivals_per_page: 1,
            removals_per_page: 1,
        }
    }
}

impl Default for HappySignalsOptions {
    fn default() -> Self {
        HappySignalsOptions {
            token: "hs-api-token-acme".into(),
            default_page_size: 100,
            faults: Vec::new(),
            shifting: None,
        }
    }
}

/// A running simulator; stops when dropped.
#[derive(Debug)]
pub struct HappySignalsSim {
    shared: Arc<Shared>,
    served: Served,
}

#[derive(Debug)]
struct Shared {
    base_url: String,
    org: Arc<Org>,
    options: RwLock<HappySignalsOptions>,
    requests: AtomicU64,
    /// What moved under [`Shifting`].
    changed: Mutex<Changed>,
}

/// Responses submitted and removed since serving started.
#[derive(Debug, Default)]
struct Changed {
    arrived: Vec<SurveyResponse>,
    removed: BTreeSet<String>,
}

/// Serves the responses of `org` on `addr` (use port 0 for any free port).
pub async fn serve(org: Arc<Org>, options: HappySignalsOptions, addr: SocketAddr) -> std::io::Result<HappySignalsSim> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let shared = Arc::new(Shared {
        base_url: format!("http://{local}"),
        org,
        options: RwLock::new(options),
        requests: AtomicU64::new(0),
        changed: Mutex::new(Changed::default()),
    });
    let app = router(shared.clone());
    let served = Served::spawn(listener, app, "happysignals");
    Ok(HappySignalsSim { shared, served })
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/v2/responses/", get(responses))
        .route("/api/v2/responses", get(responses))
        .route("/api/v2/responses/export.csv", get(export))
        .with_state(shared)
}

impl HappySignalsSim {
    /// `http://127.0.0.1:PORT`, the customer's API origin.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// API requests received so far (answered or refused).
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// The options in force.
    pub fn options(&self) -> HappySignalsOptions {
        read(&self.shared.options).clone()
    }

    /// Replaces the options (token, page size, faults) from the next request on.
    pub fn set_options(&self, options: HappySignalsOptions) {
        *write(&self.shared.options) = options;
    }

    /// The organisation whose responses are served, for computing the truth.
    pub fn records(&self) -> Arc<Org> {
        self.shared.org.clone()
    }

    /// Ids of the responses removed so far (under [`Shifting`]).
    pub fn removed(&self) -> BTreeSet<String> {
        lock(&self.shared.changed).removed.clone()
    }

    /// The responses submitted so far (under [`Shifting`]), as listed.
    pub fn arrived(&self) -> Vec<Value> {
        let changed = lock(&self.shared.changed);
        changed.arrived.iter().map(|r| item(&self.shared.org, r)).collect()
    }

    /// Stops serving and waits for the server task to end.
    pub async fn shutdown(self) {
        self.served.stop().await;
    }
}

/// `2026-10-03T14:22:09Z` of unix ms.
pub fn format_iso(ms: i64) -> String {
    format!("{}Z", format_servicenow_time(ms).replacen(' ', "T", 1))
}

/// Unix ms of exactly `YYYY-MM-DDTHH:MM:SSZ`.
pub fn parse_iso(text: &str) -> Option<i64> {
    let plain = text.strip_suffix('Z')?;
    if plain.as_bytes().get(10) != Some(&b'T') {
        return None;
    }
    parse_servicenow_time(&plain.replacen('T', " ", 1))
}

/// ISO 639-1 language of the respondent, from the country.
fn language(country: &str) -> &'static str {
    match country {
        "Finland" => "fi",
        "Sweden" => "sv",
        "Germany" => "de",
        "Poland" => "pl",
        "Netherlands" => "nl",
        _ => "en",
    }
}

/// A refused request: the status, Django REST framework's `{"detail": ...}`
/// body and, when throttled, `Retry-After`.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    detail: String,
    retry_after_secs: Option<u64>,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(json!({ "detail": self.detail }))).into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

fn detail(status: StatusCode, message: &str) -> Refusal {
    Refusal {
        status,
        detail: message.to_string(),
        retry_after_secs: None,
    }
}

/// Counts the request, applies faults that answer instead of the API, and
/// checks the token. `Ok` carries a body fault to apply afterwards.
async fn gate(shared: &Shared, headers: &HeaderMap) -> Result<Option<Fault>, Refusal> {
    let number = shared.requests.fetch_add(1, Ordering::Relaxed) + 1;
    let options = read(&shared.options).clone();
    let mut after = None;
    for rule in options.faults.iter().filter(|r| r.on.hits(number)) {
        match &rule.fault {
            Fault::Slow(delay) => tokio::time::sleep(*delay).await,
            Fault::ServerError => {
                return Err(detail(StatusCode::INTERNAL_SERVER_ERROR, "A server error occurred."));
            }
            Fault::Throttle { retry_after_secs } => {
                let message = format!("Request was throttled. Expected available in {retry_after_secs} seconds.");
                return Err(Refusal {
                    retry_after_secs: Some(*retry_after_secs),
                    ..detail(StatusCode::TOO_MANY_REQUESTS, &message)
                });
            }
            Fault::ExpiredToken => return Err(detail(StatusCode::UNAUTHORIZED, "Token has expired.")),
            Fault::Malformed | Fault::Truncated => after = after.or(Some(rule.fault.clone())),
        }
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match token {
        None => Err(detail(
            StatusCode::UNAUTHORIZED,
            "Authentication credentials were not provided.",
        )),
        Some(token) if token != options.token => Err(detail(StatusCode::UNAUTHORIZED, "Invalid token.")),
        Some(_) => Ok(after),
    }
}

fn with_fault(body: Bytes, fault: Option<Fault>) -> Bytes {
    match fault {
        Some(Fault::Malformed) => Bytes::from_static(b"{\"meta\": {count: 12, \"page\": 1}, \"items\": [{id: 'hs-0"),
        Some(Fault::Truncated) => body.slice(..body.len() / 2),
        _ => body,
    }
}

fn params(raw: Option<String>) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

/// `GET /api/v2/responses/`.
async fn responses(State(shared): State<Arc<Shared>>, RawQuery(raw): RawQuery, headers: HeaderMap) -> Response {
    let fault = match gate(&shared, &headers).await {
        Ok(fault) => fault,
        Err(refusal) => return refusal.into_response(),
    };
    let params = params(raw);
    let (default_size, shifting) = {
        let options = read(&shared.options);
        (options.default_page_size, options.shifting)
    };
    let state = shared.clone();
    let page = tokio::task::spawn_blocking(move || {
        let changed = lock(&state.changed);
        let listed = page(&state.org, &changed, &params, default_size, shifting);
        drop(changed);
        if let (Ok((_, served)), Some(shifting)) = (&listed, shifting) {
            state.shift(shifting, served);
        }
        listed.map(|(body, _)| body)
    })
    .await;
    let body = match page {
        Ok(Ok(body)) => body,
        Ok(Err(refusal)) => return refusal.into_response(),
        Err(_) => return detail(StatusCode::INTERNAL_SERVER_ERROR, "A server error occurred.").into_response(),
    };
    let mut response = (StatusCode::OK, Body::from(with_fault(body, fault))).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// `GET /api/v2/responses/export.csv`.
async fn export(State(shared): State<Arc<Shared>>, RawQuery(raw): RawQuery, headers: HeaderMap) -> Response {
    let fault = match gate(&shared, &headers).await {
        Ok(fault) => fault,
        Err(refusal) => return refusal.into_response(),
    };
    let params = params(raw);
    let state = shared.clone();
    let csv = tokio::task::spawn_blocking(move || {
        let filter = Filter::parse(&params)?;
        let changed = lock(&state.changed);
        Ok::<_, Refusal>(Bytes::from(render_csv(
            &state.org,
            &filter.select(&state.org, &changed, false),
        )))
    })
    .await;
    let body = match csv {
        Ok(Ok(body)) => body,
        Ok(Err(refusal)) => return refusal.into_response(),
        Err(_) => return detail(StatusCode::INTERNAL_SERVER_ERROR, "A server error occurred.").into_response(),
    };
    let mut response = (StatusCode::OK, Body::from(with_fault(body, fault))).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"responses.csv\""),
    );
    response
}

/// The filters of a request.
#[derive(Debug, Default)]
struct Filter {
    /// Inclusive lower bound, unix ms.
    from: Option<i64>,
    /// Exclusive upper bound, unix ms.
    until: Option<i64>,
    ticket_types: Option<Vec<String>>,
}

impl Filter {
    fn parse(params: &[(String, String)]) -> Result<Filter, Refusal> {
        let mut filter = Filter::default();
        for (key, value) in params {
            let time = || {
                parse_iso(value).ok_or_else(|| {
                    detail(
                        StatusCode::BAD_REQUEST,
                        &format!("{key}: `{value}` is not a date-time like 2026-10-03T14:22:09Z"),
                    )
                })
            };
            match key.as_str() {
                "created__gte" => filter.raise(time()?),
                "created__gt" => filter.raise(time()? + 1000),
                "created__lte" => filter.lower(time()? + 1000),
                "created__lt" => filter.lower(time()?),
                "created__date" => {
                    let day = parse_iso(&format!("{value}T00:00:00Z")).ok_or_else(|| {
                        detail(
                            StatusCode::BAD_REQUEST,
                            &format!("created__date: `{value}` is not a date like 2026-10-03"),
                        )
                    })?;
                    filter.raise(day);
                    filter.lower(day + 86_400_000);
                }
                "ticket_type__in" => {
                    filter.ticket_types = Some(value.split(',').map(|t| t.trim().to_string()).collect());
                }
                _ => {}
            }
        }
        Ok(filter)
    }

    fn raise(&mut self, from: i64) {
        self.from = Some(self.from.map_or(from, |f| f.max(from)));
    }

    fn lower(&mut self, until: i64) {
        self.until = Some(self.until.map_or(until, |u| u.min(until)));
    }

    fn matches(&self, response: &SurveyResponse) -> bool {
        // Timestamps compare in whole seconds, as they are written.
        let created = response.created.div_euclid(1000) * 1000;
        self.from.is_none_or(|from| created >= from)
            && self.until.is_none_or(|until| created < until)
            && self
                .ticket_types
                .as_ref()
                .is_none_or(|types| types.iter().any(|t| t == response.ticket_type))
    }

    /// Matching responses (the organisation's, less those removed, plus
    /// those arrived), ordered by `created` then `id`, or the reverse.
    fn select<'a>(&self, org: &'a Org, changed: &'a Changed, newest_first: bool) -> Vec<&'a SurveyResponse> {
        let mut matched: Vec<&SurveyResponse> = org
            .responses
            .iter()
            .chain(&changed.arrived)
            .filter(|r| !changed.removed.contains(&r.id) && self.matches(r))
            .collect();
        matched.sort_by(|a, b| (a.created.div_euclid(1000), &a.id).cmp(&(b.created.div_euclid(1000), &b.id)));
        if newest_first {
            matched.reverse();
        }
        matched
    }
}

/// One page of the list, and the ids on it.
fn page(
    org: &Org,
    changed: &Changed,
    params: &[(String, String)],
    default_size: usize,
    shifting: Option<Shifting>,
) -> Result<(Bytes, Vec<String>), Refusal> {
    let filter = Filter::parse(params)?;
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let number = |name: &str, default: usize| match param(name) {
        None => Ok(default),
        Some(text) => text.trim().parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| {
            detail(
                StatusCode::BAD_REQUEST,
                &format!("{name}: `{text}` is not a positive whole number"),
            )
        }),
    };
    let size = number("page_size", default_size.max(1))?.min(MAX_PAGE_SIZE);
    let at = number("page", 1)?;
    let matched = filter.select(org, changed, shifting.is_some_and(|s| s.newest_first));
    let count = matched.len();
    let pages = count.div_ceil(size).max(1);
    if at > pages {
        return Err(detail(StatusCode::NOT_FOUND, "Invalid page."));
    }
    let listed: Vec<&SurveyResponse> = matched.iter().skip((at - 1) * size).take(size).copied().collect();
    let items: Vec<Value> = listed.iter().map(|r| item(org, r)).collect();
    let body = json!({"meta": {"count": count, "page": at, "pages": pages}, "items": items});
    let ids = listed.iter().map(|r| r.id.clone()).collect();
    Ok((Bytes::from(serde_json::to_vec(&body).unwrap_or_default()), ids))
}

impl Shared {
    /// After a page with `served` on it: responses arrive, and the first
    /// ones of that page are removed.
    fn shift(&self, shifting: Shifting, served: &[String]) {
        let mut changed = lock(&self.changed);
        for id in served.iter().take(shifting.removals_per_page) {
            changed.removed.insert(id.clone());
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        for _ in 0..shifting.arrivals_per_page {
            let number = changed.arrived.len() + 1;
            let Some(model) = self.org.responses.get(number % self.org.responses.len().max(1)) else {
                break;
            };
            changed.arrived.push(SurveyResponse {
                id: format!("hs-9{number:07}"),
                created: now,
                ..model.clone()
            });
        }
    }
}

fn resolved_at(org: &Org, response: &SurveyResponse) -> Option<i64> {
    match response.ticket.kind {
        TicketKind::Incident => org.incidents.get(response.ticket.index)?.resolved_at,
        TicketKind::Request => org.requests.get(response.ticket.index)?.closed_at,
    }
}

/// A response as the API lists it.
pub fn item(org: &Org, response: &SurveyResponse) -> Value {
    json!({
        "id": response.id,
        "ticket_number": response.ticket_number,
        "ticket_type": response.ticket_type,
        "esm_area": response.esm_area,
        "category": response.category,
        "score": response.score,
        "lost_time_minutes": response.lost_time_minutes,
        "factors": response.factors,
        "channel": response.channel,
        "language": language(response.country),
        "country": response.country,
        "resolved_at": resolved_at(org, response).map(format_iso),
        "created": format_iso(response.created),
    })
}

/// The CSV export of `responses`: a header row, then one row per response.
pub fn render_csv(org: &Org, responses: &[&SurveyResponse]) -> String {
    let mut out = CSV_COLUMNS.join(",");
    out.push_str("\r\n");
    for response in responses {
        let row = [
            response.id.clone(),
            response.ticket_number.clone(),
            response.ticket_type.to_string(),
            response.esm_area.to_string(),
            response.category.to_string(),
            response.score.to_string(),
            response.lost_time_minutes.map(|m| m.to_string()).unwrap_or_default(),
            response.factors.join(";"),
            response.channel.to_string(),
            language(response.country).to_string(),
            response.country.to_string(),
            resolved_at(org, response).map(format_iso).unwrap_or_default(),
            format_iso(response.created),
        ];
        let cells: Vec<String> = row.iter().map(|cell| csv_cell(cell)).collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    out
}

/// RFC 4180 quoting: only cells with a comma, quote or line break.
fn csv_cell(cell: &str) -> String {
    if cell.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell.to_string()
    }
}

/// Everything the API would list for `org` with no filter, in order: the
/// truth a test compares a sync against.
pub fn all_items(org: &Org) -> Vec<Value> {
    Filter::default()
        .select(org, &Changed::default(), false)
        .into_iter()
        .map(|r| item(org, r))
        .collect()
}

#[cfg(test)]
mod tests {
    //! The simulator over a real loopback socket, with a plain hyper client.

    use super::*;
    use crate::org::{OrgSpec, generate};
    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::TokioIo;
    use std::time::{Duration, Instant};

    struct Reply {
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
    }

    impl Reply {
        fn json(&self) -> Value {
            serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
        }

        fn items(&self) -> Vec<Value> {
            self.json()["items"].as_array().cloned().expect("items array")
        }
    }

    const TOKEN: &str = "Bearer hs-api-token-acme";

    async fn get(url: &str, auth: Option<&str>) -> Reply {
        let uri: hyper::Uri = url.parse().expect("url");
        let authority = uri.authority().expect("authority").to_string();
        let stream = tokio::net::TcpStream::connect(&authority).await.expect("connect");
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(connection);
        let mut request = hyper::Request::builder()
            .method("GET")
            .uri(uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"))
            .header("host", authority);
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let request = request.body(Full::new(Bytes::new())).expect("request");
        let response = sender.send_request(request).await.expect("send");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.expect("body").to_bytes();
        Reply { status, headers, body }
    }

    fn small_org() -> Arc<Org> {
        Arc::new(generate(&OrgSpec {
            seed: 11,
            tickets: 600,
            start: 1_767_225_600_000,
            days: 30,
        }))
    }

    async fn sim(options: HappySignalsOptions) -> HappySignalsSim {
        serve(small_org(), options, "127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("serve")
    }

    #[test]
    fn iso_times_round_trip() {
        assert_eq!(format_iso(1_791_037_329_000), "2026-10-03T14:22:09Z");
        assert_eq!(parse_iso("2026-10-03T14:22:09Z"), Some(1_791_037_329_000));
        for bad in ["2026-10-03 14:22:09Z", "2026-10-03T14:22:09", "2026-10-03", ""] {
            assert_eq!(parse_iso(bad), None, "{bad}");
        }
    }

    #[test]
    fn csv_cells_are_quoted_only_when_needed() {
        assert_eq!(csv_cell("Portal"), "Portal");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[tokio::test]
    async fn refuses_requests_without_the_token() {
        let sim = sim(HappySignalsOptions::default()).await;
        let url = format!("{}/api/v2/responses/", sim.base_url());
        for auth in [None, Some("Bearer wrong"), Some("Basic eGxhOnB3")] {
            let reply = get(&url, auth).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{auth:?}");
            assert!(reply.json()["detail"].is_string());
        }
        assert_eq!(get(&url, Some(TOKEN)).await.status, StatusCode::OK);
        assert_eq!(sim.requests(), 4);
    }

    #[tokio::test]
    async fn pages_cover_every_response_once_in_order() {
        let sim = sim(HappySignalsOptions::default()).await;
        let org = sim.records();
        let mut seen = Vec::new();
        let mut page = 1;
        loop {
            let url = format!("{}/api/v2/responses/?page={page}&page_size=37", sim.base_url());
            let reply = get(&url, Some(TOKEN)).await;
            assert_eq!(reply.status, StatusCode::OK);
            let meta = reply.json()["meta"].clone();
            assert_eq!(meta["count"], org.responses.len());
            assert_eq!(meta["page"], page);
            seen.extend(reply.items());
            if meta["pages"] == page {
                break;
            }
            page += 1;
        }
        assert!(org.responses.len() > 100, "a real amount: {}", org.responses.len());
        assert_eq!(seen, all_items(&org));
        let keys: Vec<(String, String)> = seen
            .iter()
            .map(|i| {
                (
                    i["created"].as_str().expect("created").into(),
                    i["id"].as_str().expect("id").into(),
                )
            })
            .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "ordered by created, then id");
        let past = get(
            &format!("{}/api/v2/responses/?page={}&page_size=37", sim.base_url(), page + 1),
            Some(TOKEN),
        )
        .await;
        assert_eq!(past.status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn items_carry_every_field() {
        let sim = sim(HappySignalsOptions::default()).await;
        let org = sim.records();
        let reply = get(
            &format!("{}/api/v2/responses/?page_size=1000", sim.base_url()),
            Some(TOKEN),
        )
        .await;
        let items = reply.items();
        let unanswered = org.responses.iter().position(|r| r.lost_time_minutes.is_none());
        let unanswered = unanswered.expect("some responses without lost time");
        let response = &org.responses[unanswered];
        let item = items.iter().find(|i| i["id"] == response.id.as_str()).expect("listed");
        assert!(item["lost_time_minutes"].is_null());
        assert_eq!(item["score"], response.score);
        assert_eq!(item["ticket_number"], response.ticket_number.as_str());
        assert_eq!(item["factors"].as_array().map(Vec::len), Some(response.factors.len()));
        assert_eq!(item["created"], format_iso(response.created));
        assert!(item["resolved_at"].as_str().and_then(parse_iso).is_some());
        for field in CSV_COLUMNS {
            assert!(item.get(field).is_some(), "{field}");
        }
    }

    #[tokio::test]
    async fn filters_select_by_time_day_and_type() {
        let sim = sim(HappySignalsOptions::default()).await;
        let org = sim.records();
        let middle = &org.responses[org.responses.len() / 2];
        let at = format_iso(middle.created);
        let base = format!("{}/api/v2/responses/?page_size=1000", sim.base_url());
        let count = |query: String| {
            let url = format!("{base}&{query}");
            async move {
                let reply = get(&url, Some(TOKEN)).await;
                assert_eq!(reply.status, StatusCode::OK, "{url}");
                reply.json()["meta"]["count"].as_u64().expect("count")
            }
        };
        let created = |r: &&SurveyResponse| r.created.div_euclid(1000) * 1000;
        let want = |f: &dyn Fn(i64) -> bool| org.responses.iter().filter(|r| f(created(r))).count() as u64;
        let t = middle.created.div_euclid(1000) * 1000;
        assert_eq!(count(format!("created__gte={at}")).await, want(&|c| c >= t));
        assert_eq!(count(format!("created__gt={at}")).await, want(&|c| c > t));
        assert_eq!(count(format!("created__lte={at}")).await, want(&|c| c <= t));
        assert_eq!(count(format!("created__lt={at}")).await, want(&|c| c < t));
        let day = &at[..10];
        let day_start = parse_iso(&format!("{day}T00:00:00Z")).expect("day");
        assert_eq!(
            count(format!("created__date={day}")).await,
            want(&|c| (day_start..day_start + 86_400_000).contains(&c))
        );
        let incidents = org.responses.iter().filter(|r| r.ticket_type == "Incident").count() as u64;
        assert_eq!(count("ticket_type__in=Incident".into()).await, incidents);
        assert_eq!(
            count("ticket_type__in=Incident,Request".into()).await,
            org.responses.len() as u64
        );
        let bad = get(&format!("{base}&created__gte=yesterday"), Some(TOKEN)).await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        assert!(
            bad.json()["detail"]
                .as_str()
                .is_some_and(|d| d.contains("created__gte"))
        );
    }

    /// Field case 08-happysignals-paging.json as a fault mode: newest first
    /// whatever `ordering` asks, and after each page a response arrives and
    /// the page's first one is removed, so a naive page-number walk skips.
    #[tokio::test]
    async fn shifting_pages_arrive_and_remove_between_requests() {
        let sim = sim(HappySignalsOptions {
            shifting: Some(Shifting::default()),
            ..HappySignalsOptions::default()
        })
        .await;
        let org = sim.records();
        // A window closed before the arrivals, as a careful client asks.
        let until = org.responses.iter().map(|r| r.created).max().expect("responses") + 1000;
        let url = |page: usize| {
            format!(
                "{}/api/v2/responses/?created__lt={}&ordering=created,id&page={page}&page_size=5",
                sim.base_url(),
                format_iso(until)
            )
        };
        let first = get(&url(1), Some(TOKEN)).await;
        let items = first.items();
        let created: Vec<&str> = items.iter().filter_map(|i| i["created"].as_str()).collect();
        assert!(created.windows(2).all(|w| w[0] >= w[1]), "newest first: {created:?}");
        assert_eq!(first.json()["meta"]["count"], org.responses.len());
        assert_eq!(sim.removed().len(), 1);
        assert!(sim.removed().contains(items[0]["id"].as_str().expect("id")));
        assert_eq!(sim.arrived().len(), 1);

        let second = get(&url(2), Some(TOKEN)).await;
        assert_eq!(
            second.json()["meta"]["count"],
            org.responses.len() - 1,
            "one out; the arrival is after the window"
        );
        let second_items = second.items();
        // The removal pulled the sixth response onto page 1: page 2 starts at the seventh.
        let all = all_items(&org);
        let newest: Vec<&Value> = all.iter().rev().collect();
        assert_eq!(second_items[0]["id"], newest[6]["id"]);
        assert!(
            !second_items.iter().any(|i| i["id"] == newest[5]["id"]),
            "a naive walk never sees it"
        );
        // Without the window, the arrivals are listed first.
        let open = get(
            &format!("{}/api/v2/responses/?page_size=5", sim.base_url()),
            Some(TOKEN),
        )
        .await;
        let latest = sim
            .arrived()
            .into_iter()
            .map(|a| a["created"].clone())
            .max_by_key(|c| c.to_string());
        assert_eq!(Some(open.items()[0]["created"].clone()), latest);
    }

    #[tokio::test]
    async fn page_size_is_capped() {
        let sim = sim(HappySignalsOptions::default()).await;
        let reply = get(
            &format!("{}/api/v2/responses/?page_size=5000", sim.base_url()),
            Some(TOKEN),
        )
        .await;
        let count = reply.json()["meta"]["count"].as_u64().expect("count") as usize;
        assert_eq!(reply.items().len(), count.min(MAX_PAGE_SIZE));
        let zero = get(
            &format!("{}/api/v2/responses/?page_size=0", sim.base_url()),
            Some(TOKEN),
        )
        .await;
        assert_eq!(zero.status, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn the_csv_export_lists_the_same_responses() {
        let sim = sim(HappySignalsOptions::default()).await;
        let org = sim.records();
        let reply = get(
            &format!("{}/api/v2/responses/export.csv?ticket_type__in=Request", sim.base_url()),
            Some(TOKEN),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK);
        assert!(
            reply.headers[header::CONTENT_TYPE]
                .to_str()
                .is_ok_and(|t| t.starts_with("text/csv"))
        );
        let text = String::from_utf8(reply.body.to_vec()).expect("utf-8");
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some(CSV_COLUMNS.join(",").as_str()));
        let rows: Vec<&str> = lines.collect();
        let requests: Vec<&SurveyResponse> = org.responses.iter().filter(|r| r.ticket_type == "Request").collect();
        assert_eq!(rows.len(), requests.len());
        let first = requests
            .iter()
            .min_by_key(|r| (r.created.div_euclid(1000), r.id.clone()))
            .expect("a request response");
        assert!(rows[0].starts_with(&format!("{},{},Request,IT,", first.id, first.ticket_number)));
        assert!(rows[0].ends_with(&format_iso(first.created)));
        assert!(rows[0].contains(&first.factors.join(";")));
    }

    #[tokio::test]
    async fn faults_hit_the_numbered_requests() {
        let faults = vec![
            FaultRule {
                fault: Fault::ServerError,
                on: Requests::Numbers(vec![1]),
            },
            FaultRule {
                fault: Fault::Throttle { retry_after_secs: 7 },
                on: Requests::Burst { first: 2, last: 3 },
            },
            FaultRule {
                fault: Fault::Malformed,
                on: Requests::Numbers(vec![4]),
            },
            FaultRule {
                fault: Fault::Truncated,
                on: Requests::Numbers(vec![5]),
            },
            FaultRule {
                fault: Fault::ExpiredToken,
                on: Requests::Numbers(vec![6]),
            },
            FaultRule {
                fault: Fault::Slow(Duration::from_millis(200)),
                on: Requests::Numbers(vec![7]),
            },
        ];
        let sim = sim(HappySignalsOptions {
            faults,
            ..HappySignalsOptions::default()
        })
        .await;
        let url = format!("{}/api/v2/responses/?page_size=50", sim.base_url());
        assert_eq!(get(&url, Some(TOKEN)).await.status, StatusCode::INTERNAL_SERVER_ERROR);
        for _ in 0..2 {
            let throttled = get(&url, Some(TOKEN)).await;
            assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS);
            assert_eq!(throttled.headers[header::RETRY_AFTER], "7");
        }
        let malformed = get(&url, Some(TOKEN)).await;
        assert_eq!(malformed.status, StatusCode::OK);
        assert!(serde_json::from_slice::<Value>(&malformed.body).is_err());
        let truncated = get(&url, Some(TOKEN)).await;
        assert_eq!(truncated.status, StatusCode::OK);
        assert!(serde_json::from_slice::<Value>(&truncated.body).is_err());
        assert_eq!(get(&url, Some(TOKEN)).await.status, StatusCode::UNAUTHORIZED);
        let started = Instant::now();
        assert_eq!(get(&url, Some(TOKEN)).await.status, StatusCode::OK);
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert_eq!(get(&url, Some(TOKEN)).await.items().len(), 50);
        assert_eq!(sim.requests(), 8);

        sim.set_options(HappySignalsOptions {
            faults: vec![FaultRule {
                fault: Fault::ServerError,
                on: Requests::Every(1),
            }],
            ..sim.options()
        });
        assert_eq!(get(&url, Some(TOKEN)).await.status, StatusCode::INTERNAL_SERVER_ERROR);
        sim.shutdown().await;
    }
}
