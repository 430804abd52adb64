//! A Nexthink Infinity API on loopback, over seeded [`Telemetry`]: OAuth
//! client credentials, NQL execute (v1 arrays, v2 objects, CSV) and the bulk
//! export flow, with deterministic faults.
//!
//! Routes:
//!
//! - `POST /oauth2/default/v1/token`: client id and secret by HTTP Basic, form
//!   `grant_type=client_credentials&scope=service:integration`; tokens live
//!   [`NexthinkOptions::token_lifetime`] (900 s, as on real instances).
//! - `POST /api/v1/nql/execute`, `POST /api/v2/nql/execute`: body
//!   `{"queryId": "#device_daily_dex", "parameters": {"from": "2026-10-01", "to": "2026-10-02"}}`;
//!   `Accept: text/csv` gives CSV.
//! - `POST /api/v1/nql/export` → `{"exportId"}`; `GET /api/v1/nql/status/{exportId}`
//!   → `SUBMITTED`, `IN_PROGRESS`, then `COMPLETED` with `resultsFileUrl`
//!   after [`NexthinkOptions::polls_to_complete`] polls;
//!   `GET /results/{exportId}.csv`, the file on the instance origin (no bearer
//!   needed).
//! - With [`NexthinkOptions::results_on_other_origin`], `resultsFileUrl` is
//!   instead a pre-signed URL on a second loopback listener (another port, so
//!   another origin), as the real service hands out an S3 link:
//!   `GET /exports/{exportId}.csv?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=…&X-Amz-Expires=…&X-Amz-SignedHeaders=host&X-Amz-Signature=…`.
//!   It answers the way S3 does, with an XML `<Error>`: 400 `InvalidArgument`
//!   to a request that also carries an `Authorization` header (one auth
//!   mechanism only), 403 `AccessDenied` without a signature or once the link
//!   has expired, 403 `SignatureDoesNotMatch` to a tampered one.
//!
//! [`NexthinkSim::requests_to`] counts requests per [`Route`].
//!
//! Fault modes of the field cases:
//!
//! - a regional clock ([`NexthinkOptions::regional_offset_minutes`], field
//!   case `11-nexthink-times.json`): a call without `x-utc-times: true` is
//!   answered in the instance's regional time, zoneless: the `date` of a row
//!   is the UTC day's start on the regional clock (`2026-10-01T19:00:00`
//!   at UTC-5), `executionDateTime` likewise (v1 an object of date parts,
//!   v2 a string). With the header every time is UTC (`date` a plain UTC
//!   date, v2's `executionDateTime` ending in `Z`).
//! - a truncated export ([`NexthinkOptions::export_row_limit`], field case
//!   `12-nexthink-export-partial.json`): an export with more rows completes
//!   with status **206** and its file holds only the first rows.
//! - failing polls ([`NexthinkOptions::failing_polls`]): those status polls
//!   of every export answer 503 and do not advance it.
//!
//! The one query, [`DEVICE_DAILY_DEX`], returns a row per device-day with
//! `from` <= date < `to`, day-major, devices in name order.
//!
//! The row cap of execute ([`EXECUTE_ROW_CAP`]) is reported by Nexthink but
//! its exact signal is unconfirmed. Here a capped answer holds the first 1000
//! rows, `rows` says 1000, and `executedQuery` ends with `| limit 1000`, the
//! way NQL shows an applied limit; CSV answers carry the first 1000 rows only.
//! A client must treat an answer of 1000 rows as possibly cut.

use crate::server::Served;
use crate::telemetry::{DeviceDay, Telemetry};
use crate::{lock, read, write};
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use chrono::NaiveDate;
use serde_json::{Map, Value, json};
use sha2::Digest as _;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// `X-Amz-Date`'s format.
const AMZ_DATE: &str = "%Y%m%dT%H%M%SZ";
/// The longest `X-Amz-Expires` S3 accepts: a week.
const MAX_LINK_SECONDS: u64 = 604_800;

/// The predefined query the simulator knows.
pub const DEVICE_DAILY_DEX: &str = "#device_daily_dex";
/// Most rows an execute answer holds.
pub const EXECUTE_ROW_CAP: usize = 1000;
/// Columns of [`DEVICE_DAILY_DEX`], in order.
pub const HEADERS: [&str; 12] = [
    "device.name",
    "device.hardware.model",
    "device.operating_system.name",
    "user.country",
    "date",
    "dex.score",
    "boot.duration",
    "logon.duration",
    "system_crashes",
    "free_system_drive_percent",
    "high_cpu_time_ratio",
    "high_memory_time_ratio",
];
const NQL: &str = "devices | with dex.scores during past 1d | include device_performance.boots during past 1d \
                   | include device_performance.system_crashes during past 1d | summarize by day";

/// What the simulated instance accepts and how it misbehaves.
#[derive(Debug, Clone, PartialEq)]
pub struct NexthinkOptions {
    /// OAuth client id (API credentials in Nexthink's admin).
    pub client_id: String,
    /// OAuth client secret.
    pub client_secret: String,
    /// How long an access token lives.
    pub token_lifetime: Duration,
    /// Status polls of an export until it is `COMPLETED` (the first poll is
    /// `SUBMITTED`, the next ones `IN_PROGRESS`).
    pub polls_to_complete: u32,
    /// Faults injected by API request number (token requests are not counted;
    /// results file requests are, on either origin).
    pub faults: Vec<FaultRule>,
    /// Serve results files from a second listener (another origin) through
    /// pre-signed URLs, as the real service does. Read when serving starts.
    pub results_on_other_origin: bool,
    /// How long a pre-signed results URL stays valid (`X-Amz-Expires`, at most a week).
    pub results_link_lifetime: Duration,
    /// The instance's regional offset from UTC, in minutes: calls without
    /// `x-utc-times: true` are answered on that clock. `None`: always UTC.
    pub regional_offset_minutes: Option<i32>,
    /// The licence's maximum number of export results: an export with more
    /// rows completes with 206 and a file of the first rows only.
    pub export_row_limit: Option<usize>,
    /// Status polls (1 = the first of each export) that answer 503.
    pub failing_polls: Vec<u32>,
}

impl Default for NexthinkOptions {
    fn default() -> Self {
        NexthinkOptions {
            client_id: "xla-nexthink-client".into(),
            client_secret: "xla-nexthink-secret".into(),
            token_lifetime: Duration::from_secs(900),
            polls_to_complete: 3,
            faults: Vec::new(),
            results_on_other_origin: false,
            results_link_lifetime: Duration::from_secs(900),
            regional_offset_minutes: None,
            export_row_limit: None,
            failing_polls: Vec::new(),
        }
    }
}

pub use crate::fault::{Fault, FaultRule, Requests};

/// A route of the simulated service, for [`NexthinkSim::requests_to`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `POST /oauth2/default/v1/token`.
    Token,
    /// `POST /api/v{1,2}/nql/execute`.
    Execute,
    /// `POST /api/v1/nql/export`.
    Export,
    /// `GET /api/v1/nql/status/{exportId}`.
    Status,
    /// A results file, on the instance or the results origin.
    Results,
}

/// A running simulator; stops when dropped.
#[derive(Debug)]
pub struct NexthinkSim {
    shared: Arc<Shared>,
    served: Served,
    results_served: Option<Served>,
}

#[derive(Debug)]
struct Shared {
    base_url: String,
    /// `http://127.0.0.1:PORT` of the results origin, when served.
    results_url: Option<String>,
    /// Key of the pre-signed URLs' signatures.
    signing_key: [u8; 32],
    telemetry: Arc<Telemetry>,
    options: RwLock<NexthinkOptions>,
    requests: AtomicU64,
    /// Requests per [`Route`], in its order.
    routes: [AtomicU64; 5],
    /// Requests to the results origin that carried `Authorization`.
    authorized_results: AtomicU64,
    tokens: Mutex<Tokens>,
    exports: Mutex<HashMap<String, Export>>,
}

#[derive(Debug, Default)]
struct Tokens {
    issued: u64,
    live: HashMap<String, Instant>,
}

#[derive(Debug)]
struct Export {
    polls: u32,
    /// Status polls answered 503 so far.
    failed: u32,
    /// The results file: CSV, gzip-compressed when the export asked.
    csv: Bytes,
    /// Whether `csv` is gzip-compressed.
    gzip: bool,
    /// The licence's limit cut its rows: its status is 206.
    truncated: bool,
}

/// The clock an answer's times are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Clock {
    Utc,
    /// Regional, this many minutes from UTC, written without a zone.
    Regional(i32),
}

impl Clock {
    /// Regional unless the request asked for UTC with `x-utc-times: true`.
    fn of(shared: &Shared, headers: &HeaderMap) -> Clock {
        let asked_utc = headers
            .get("x-utc-times")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        match read(&shared.options).regional_offset_minutes {
            Some(offset) if !asked_utc => Clock::Regional(offset),
            _ => Clock::Utc,
        }
    }

    /// `date` of a row for the UTC day starting at `day_start` (unix ms).
    fn date(self, day_start: i64, utc_text: String) -> String {
        match self {
            Clock::Utc => utc_text,
            Clock::Regional(offset) => chrono::DateTime::from_timestamp_millis(day_start + i64::from(offset) * 60_000)
                .map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string())
                .unwrap_or_default(),
        }
    }

    /// `executionDateTime` of the present moment: v1's object of date
    /// parts, v2's string (with `Z` only on the UTC clock).
    fn execution_time(self, version: u8) -> Value {
        let offset = match self {
            Clock::Utc => 0,
            Clock::Regional(offset) => i64::from(offset) * 60,
        };
        let at = utc_now() + chrono::Duration::seconds(offset);
        if version == 1 {
            use chrono::{Datelike, Timelike};
            return json!({"year": at.year(), "month": at.month(), "day": at.day(),
                          "hour": at.hour(), "minute": at.minute(), "second": at.second()});
        }
        let zone = if self == Clock::Utc { "Z" } else { "" };
        json!(format!("{}{zone}", at.format("%Y-%m-%dT%H:%M:%S")))
    }
}

/// Serves the API on `addr` (use port 0 for any free port).
pub async fn serve(
    telemetry: Arc<Telemetry>,
    options: NexthinkOptions,
    addr: SocketAddr,
) -> std::io::Result<NexthinkSim> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    // The results origin: the same address, any free port.
    let results_listener = if options.results_on_other_origin {
        Some(tokio::net::TcpListener::bind(SocketAddr::new(addr.ip(), 0)).await?)
    } else {
        None
    };
    let results_url = results_listener
        .as_ref()
        .map(|l| l.local_addr().map(|a| format!("http://{a}")))
        .transpose()?;
    let base_url = format!("http://{local}");
    let signing_key = sha2::Sha256::digest(format!("{base_url} {}", options.client_secret).as_bytes()).into();
    let shared = Arc::new(Shared {
        base_url,
        results_url,
        signing_key,
        telemetry,
        options: RwLock::new(options),
        requests: AtomicU64::new(0),
        routes: Default::default(),
        authorized_results: AtomicU64::new(0),
        tokens: Mutex::new(Tokens::default()),
        exports: Mutex::new(HashMap::new()),
    });
    let served = Served::spawn(listener, router(shared.clone()), "nexthink");
    let results_served =
        results_listener.map(|l| Served::spawn(l, results_router(shared.clone()), "nexthink results storage"));
    Ok(NexthinkSim {
        shared,
        served,
        results_served,
    })
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/oauth2/default/v1/token", post(token))
        .route("/api/v1/nql/execute", post(execute_v1))
        .route("/api/v2/nql/execute", post(execute_v2))
        .route("/api/v1/nql/export", post(export))
        .route("/api/v1/nql/status/{export_id}", get(status))
        .route("/results/{file}", get(results))
        .with_state(shared)
}

/// The storage holding results files behind pre-signed URLs.
fn results_router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/exports/{file}", get(presigned_results))
        .with_state(shared)
}

impl NexthinkSim {
    /// `http://127.0.0.1:PORT`, the instance URL.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// `{base_url}/oauth2/default/v1/token`.
    pub fn token_url(&self) -> String {
        format!("{}/oauth2/default/v1/token", self.shared.base_url)
    }

    /// `http://127.0.0.1:PORT` of the results origin, when
    /// [`NexthinkOptions::results_on_other_origin`] was set at serving time.
    pub fn results_url(&self) -> Option<String> {
        self.shared.results_url.clone()
    }

    /// API requests received so far (answered or refused; token requests
    /// excluded, results file requests on either origin included).
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// Requests received on `route` so far (answered or refused).
    pub fn requests_to(&self, route: Route) -> u64 {
        self.shared.routes[route as usize].load(Ordering::Relaxed)
    }

    /// Requests to the results origin that carried an `Authorization`
    /// header (each refused, as S3 refuses a second auth mechanism).
    pub fn authorized_results_requests(&self) -> u64 {
        self.shared.authorized_results.load(Ordering::Relaxed)
    }

    /// The options in force.
    pub fn options(&self) -> NexthinkOptions {
        read(&self.shared.options).clone()
    }

    /// Replaces the options from the next request on.
    pub fn set_options(&self, options: NexthinkOptions) {
        *write(&self.shared.options) = options;
    }

    /// The telemetry served, for computing the truth.
    pub fn telemetry(&self) -> Arc<Telemetry> {
        self.shared.telemetry.clone()
    }

    /// Invalidates every access token issued so far.
    pub fn expire_tokens(&self) {
        lock(&self.shared.tokens).live.clear();
    }

    /// Stops serving and waits for the server tasks to end.
    pub async fn shutdown(self) {
        self.served.stop().await;
        if let Some(served) = self.results_served {
            served.stop().await;
        }
    }
}

/// Nexthink's error body: `{"message", "code", "source"}`.
fn failure(status: StatusCode, message: &str) -> Response {
    let body = json!({"message": message, "code": status.as_u16().to_string(), "source": "nql-api"});
    (status, Json(body)).into_response()
}

fn too_many(retry_after_secs: u64) -> Response {
    let mut response = failure(StatusCode::TOO_MANY_REQUESTS, "Too many requests");
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    response
}

fn token_text(salt: &str, issued: u64) -> String {
    let a = xxhash_rust::xxh3::xxh3_64_with_seed(salt.as_bytes(), issued);
    let b = xxhash_rust::xxh3::xxh3_64_with_seed(&issued.to_le_bytes(), 0x4e58);
    format!("eyJ{a:016x}{b:016x}")
}

/// `POST /oauth2/default/v1/token`.
async fn token(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    shared.count(Route::Token);
    let options = read(&shared.options).clone();
    let denied = |error: &str| {
        let body = json!({"error": error, "error_description": "Client authentication failed."});
        (StatusCode::UNAUTHORIZED, Json(body)).into_response()
    };
    let client = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b.trim()).ok())
        .and_then(|d| String::from_utf8(d).ok());
    let Some((id, secret)) = client.as_deref().and_then(|c| c.split_once(':')) else {
        return denied("invalid_client");
    };
    if id != options.client_id || secret != options.client_secret {
        return denied("invalid_client");
    }
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        let body = json!({"error": "unsupported_grant_type", "error_description": "The grant type is not supported."});
        return (StatusCode::BAD_REQUEST, Json(body)).into_response();
    }
    let scope = form
        .get("scope")
        .cloned()
        .unwrap_or_else(|| "service:integration".into());
    let access = {
        let mut tokens = lock(&shared.tokens);
        tokens.issued += 1;
        let access = token_text(&shared.base_url, tokens.issued);
        tokens
            .live
            .insert(access.clone(), Instant::now() + options.token_lifetime);
        access
    };
    Json(json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": options.token_lifetime.as_secs(),
        "scope": scope,
    }))
    .into_response()
}

/// A fault's effect on a request: answered now, or a change to the body.
enum Faulted {
    Answer(Response),
    Body(Option<Fault>),
}

impl Shared {
    fn count(&self, route: Route) {
        self.routes[route as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts the request on `route` and applies its faults and the bearer check.
    async fn admit(&self, route: Route, headers: &HeaderMap, needs_bearer: bool) -> Faulted {
        self.count(route);
        let number = self.requests.fetch_add(1, Ordering::Relaxed) + 1;
        let faults = read(&self.options).faults.clone();
        let mut after = None;
        for rule in faults.iter().filter(|r| r.on.hits(number)) {
            match &rule.fault {
                Fault::Slow(delay) => tokio::time::sleep(*delay).await,
                Fault::ServerError => {
                    return Faulted::Answer(failure(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error"));
                }
                Fault::Throttle { retry_after_secs } => return Faulted::Answer(too_many(*retry_after_secs)),
                Fault::ExpiredToken => return Faulted::Answer(unauthorized()),
                Fault::Malformed | Fault::Truncated => after = after.or(Some(rule.fault.clone())),
            }
        }
        if needs_bearer && !self.authenticated(headers) {
            return Faulted::Answer(unauthorized());
        }
        Faulted::Body(after)
    }

    fn authenticated(&self, headers: &HeaderMap) -> bool {
        let Some(token) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        lock(&self.tokens)
            .live
            .get(token.trim())
            .is_some_and(|expires| Instant::now() < *expires)
    }
}

fn unauthorized() -> Response {
    failure(
        StatusCode::UNAUTHORIZED,
        "Unauthorized: the access token is missing, invalid or expired",
    )
}

/// A request body of execute and export.
struct Call {
    query_id: String,
    from: NaiveDate,
    to: NaiveDate,
    /// `"compression": "GZIP"` (an export's; `NONE` or none: false).
    gzip: bool,
}

/// Parses and validates `{"queryId", "parameters": {"from", "to"},
/// "compression"}`; a compression other than `GZIP` or `NONE` is refused,
/// as the service does.
#[allow(clippy::result_large_err)]
fn call(body: &[u8]) -> Result<Call, Response> {
    let bad = |message: String| failure(StatusCode::BAD_REQUEST, &message);
    let value: Value = serde_json::from_slice(body).map_err(|e| bad(format!("The request body is not JSON: {e}")))?;
    let query_id = value
        .get("queryId")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("queryId is required".into()))?;
    if !valid_query_id(query_id) {
        return Err(bad(format!(
            "queryId `{query_id}` is invalid: it must match #[a-z0-9_]{{2,255}}"
        )));
    }
    if query_id != DEVICE_DAILY_DEX {
        return Err(failure(
            StatusCode::NOT_FOUND,
            &format!("The query {query_id} does not exist"),
        ));
    }
    let parameter = |name: &str| -> Result<NaiveDate, Response> {
        let text = value
            .pointer(&format!("/parameters/{name}"))
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("parameter `{name}` is required (a date, YYYY-MM-DD)")))?;
        NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map_err(|_| bad(format!("parameter `{name}` = `{text}` is not a date (YYYY-MM-DD)")))
    };
    let gzip = match value.get("compression").and_then(Value::as_str) {
        None | Some("NONE") => false,
        Some("GZIP") => true,
        Some(other) => {
            return Err(bad(format!(
                "compression `{other}` is not supported here: use GZIP or NONE"
            )));
        }
    };
    Ok(Call {
        query_id: query_id.to_string(),
        from: parameter("from")?,
        to: parameter("to")?,
        gzip,
    })
}

/// `#[a-z0-9_]{2,255}`.
pub fn valid_query_id(id: &str) -> bool {
    id.strip_prefix('#').is_some_and(|name| {
        (2..=255).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    })
}

/// The device-days of `from <= date < to`, as `(day, device)`.
fn selected(telemetry: &Telemetry, from: NaiveDate, to: NaiveDate) -> Vec<(u32, usize)> {
    let mut date = from;
    let mut out = Vec::new();
    while date < to {
        if let Some(day) = telemetry.day_of(date) {
            out.extend((0..telemetry.devices.len()).map(|device| (day, device)));
        }
        let Some(next) = date.succ_opt() else { break };
        date = next;
    }
    out
}

/// The twelve cells of a row, as JSON values, its date on `clock`.
fn cells(telemetry: &Telemetry, day: u32, device: usize, clock: Clock) -> [Value; 12] {
    let d = &telemetry.devices[device];
    let v: &DeviceDay = &telemetry.day(day)[device];
    [
        json!(d.name),
        json!(d.model),
        json!(d.os),
        json!(d.country),
        json!(clock.date(telemetry.day_start(day), telemetry.date_text(day))),
        json!(v.dex_score()),
        json!(v.boot_duration_seconds()),
        json!(v.logon_duration_seconds()),
        json!(v.crashes),
        json!(v.free_system_drive_percent()),
        json!(v.high_cpu_time_ratio()),
        json!(v.high_memory_time_ratio()),
    ]
}

/// CSV with a header line, `\r\n`-free, every line ending in `\n`.
fn csv(telemetry: &Telemetry, rows: &[(u32, usize)], clock: Clock) -> Bytes {
    let mut out = String::with_capacity(64 + rows.len() * 120);
    out.push_str(&HEADERS.join(","));
    out.push('\n');
    for &(day, device) in rows {
        let line: Vec<String> = cells(telemetry, day, device, clock)
            .iter()
            .map(|cell| match cell {
                Value::String(s) => csv_field(s),
                other => other.to_string(),
            })
            .collect();
        let _ = writeln!(out, "{}", line.join(","));
    }
    Bytes::from(out)
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

fn wants_csv(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/csv"))
}

/// Applies a body fault and sets the content type.
fn respond(body: Bytes, content_type: &'static str, fault: Option<Fault>) -> Response {
    let body = match fault {
        Some(Fault::Malformed) if content_type.starts_with("text/csv") => {
            Bytes::from_static(b"<html><body>502 Bad Gateway</body></html>")
        }
        Some(Fault::Malformed) => Bytes::from_static(b"{\"queryId\": \"#device_daily_dex\", \"data\": [[LPT-0"),
        Some(Fault::Truncated) => cut(&body),
        _ => body,
    };
    let mut response = (StatusCode::OK, Body::from(body)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// The first half of a body, never ending at a line break (so a cut CSV
/// always ends mid-line, as a dropped connection leaves it).
fn cut(body: &Bytes) -> Bytes {
    let mut end = body.len() / 2;
    while end > 0 && body[end - 1] == b'\n' {
        end -= 1;
    }
    body.slice(..end)
}

async fn execute_v1(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    execute(shared, headers, body, 1).await
}

async fn execute_v2(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    execute(shared, headers, body, 2).await
}

/// `POST /api/v{1,2}/nql/execute`.
async fn execute(shared: Arc<Shared>, headers: HeaderMap, body: Bytes, version: u8) -> Response {
    let fault = match shared.admit(Route::Execute, &headers, true).await {
        Faulted::Answer(response) => return response,
        Faulted::Body(fault) => fault,
    };
    let call = match call(&body) {
        Ok(call) => call,
        Err(response) => return response,
    };
    let telemetry = shared.telemetry.clone();
    let as_csv = wants_csv(&headers);
    let clock = Clock::of(&shared, &headers);
    let rendered = tokio::task::spawn_blocking(move || {
        let mut rows = selected(&telemetry, call.from, call.to);
        let capped = rows.len() > EXECUTE_ROW_CAP;
        rows.truncate(EXECUTE_ROW_CAP);
        if as_csv {
            return csv(&telemetry, &rows, clock);
        }
        let executed = if capped {
            format!("{NQL} | limit {EXECUTE_ROW_CAP}")
        } else {
            NQL.to_string()
        };
        let data: Vec<Value> = rows
            .iter()
            .map(|&(day, device)| {
                let cells = cells(&telemetry, day, device, clock);
                if version == 1 {
                    Value::Array(cells.to_vec())
                } else {
                    Value::Object(HEADERS.iter().map(|h| h.to_string()).zip(cells).collect::<Map<_, _>>())
                }
            })
            .collect();
        let mut body = json!({
            "queryId": call.query_id,
            "executedQuery": executed,
            "rows": rows.len(),
            "data": data,
        });
        if version == 1 {
            body["headers"] = json!(HEADERS);
        }
        body["executionDateTime"] = clock.execution_time(version);
        Bytes::from(serde_json::to_vec(&body).unwrap_or_default())
    })
    .await;
    let Ok(body) = rendered else {
        return failure(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error");
    };
    let content_type = if as_csv {
        "text/csv;charset=UTF-8"
    } else {
        "application/json"
    };
    respond(body, content_type, fault)
}

/// The wall clock, to the second (chrono's `clock` feature is off).
fn utc_now() -> chrono::DateTime<chrono::Utc> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    chrono::DateTime::from_timestamp(i64::try_from(now.as_secs()).unwrap_or_default(), 0).unwrap_or_default()
}

/// `POST /api/v1/nql/export`: renders the file at once; status polls reveal it.
async fn export(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let fault = match shared.admit(Route::Export, &headers, true).await {
        Faulted::Answer(response) => return response,
        Faulted::Body(fault) => fault,
    };
    let call = match call(&body) {
        Ok(call) => call,
        Err(response) => return response,
    };
    let gzip = call.gzip;
    let telemetry = shared.telemetry.clone();
    let clock = Clock::of(&shared, &headers);
    let limit = read(&shared.options).export_row_limit;
    let Ok((file, truncated)) = tokio::task::spawn_blocking(move || {
        let mut rows = selected(&telemetry, call.from, call.to);
        let truncated = limit.is_some_and(|limit| rows.len() > limit);
        rows.truncate(limit.unwrap_or(usize::MAX));
        let file = csv(&telemetry, &rows, clock);
        (if gzip { gzipped(&file) } else { file }, truncated)
    })
    .await
    else {
        return failure(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error");
    };
    let id = {
        let mut exports = lock(&shared.exports);
        let id = format!(
            "{:016x}",
            xxhash_rust::xxh3::xxh3_64_with_seed(shared.base_url.as_bytes(), exports.len() as u64 + 1)
        );
        exports.insert(
            id.clone(),
            Export {
                polls: 0,
                failed: 0,
                csv: file,
                gzip,
                truncated,
            },
        );
        id
    };
    let body = Bytes::from(json!({"exportId": id}).to_string());
    respond(body, "application/json", fault)
}

/// `GET /api/v1/nql/status/{exportId}`.
async fn status(State(shared): State<Arc<Shared>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let fault = match shared.admit(Route::Status, &headers, true).await {
        Faulted::Answer(response) => return response,
        Faulted::Body(fault) => fault,
    };
    let (polls_to_complete, failing) = {
        let options = read(&shared.options);
        (options.polls_to_complete.max(1), options.failing_polls.clone())
    };
    let (polls, truncated) = {
        let mut exports = lock(&shared.exports);
        let Some(export) = exports.get_mut(&id) else {
            return failure(StatusCode::NOT_FOUND, &format!("The export {id} does not exist"));
        };
        let attempt = export.polls + export.failed + 1;
        if failing.contains(&attempt) {
            export.failed += 1;
            return failure(
                StatusCode::SERVICE_UNAVAILABLE,
                "The service is temporarily unavailable",
            );
        }
        export.polls += 1;
        (export.polls, export.truncated)
    };
    let body = if polls >= polls_to_complete {
        let body =
            json!({"status": "COMPLETED", "resultsFileUrl": shared.results_file_url(&id), "errorDescription": null});
        if truncated {
            // Documented: 206 Partial Content, the licence's maximum number of results was reached.
            let mut response = respond(Bytes::from(body.to_string()), "application/json", fault);
            *response.status_mut() = StatusCode::PARTIAL_CONTENT;
            return response;
        }
        body
    } else if polls == 1 {
        json!({"status": "SUBMITTED"})
    } else {
        json!({"status": "IN_PROGRESS"})
    };
    respond(Bytes::from(body.to_string()), "application/json", fault)
}

fn gzipped(file: &Bytes) -> Bytes {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(file);
    Bytes::from(encoder.finish().unwrap_or_default())
}

/// `GET /results/{exportId}.csv`: the file, once its export completed.
async fn results(State(shared): State<Arc<Shared>>, Path(file): Path<String>, headers: HeaderMap) -> Response {
    let fault = match shared.admit(Route::Results, &headers, false).await {
        Faulted::Answer(response) => return response,
        Faulted::Body(fault) => fault,
    };
    let id = file.strip_suffix(".csv").unwrap_or(&file);
    match shared.completed_file(id) {
        Some((body, true)) => respond(body, "application/gzip", fault),
        Some((body, false)) => respond(body, "text/csv;charset=UTF-8", fault),
        None => failure(StatusCode::NOT_FOUND, &format!("No results file {file}")),
    }
}

impl Shared {
    /// Where a completed export's file is: the instance, or a pre-signed
    /// URL on the results origin.
    fn results_file_url(&self, id: &str) -> String {
        let Some(storage) = self
            .results_url
            .as_deref()
            .filter(|_| read(&self.options).results_on_other_origin)
        else {
            return format!("{}/results/{id}.csv", self.base_url);
        };
        let path = format!("/exports/{id}.csv");
        let date = utc_now().format(AMZ_DATE).to_string();
        let expires = read(&self.options)
            .results_link_lifetime
            .as_secs()
            .min(MAX_LINK_SECONDS);
        let signature = self.signature(&path, &date, expires);
        format!(
            "{storage}{path}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ASIAXLAHOSTSIM%2F{day}%2Feu-west-1%2Fs3%2Faws4_request\
             &X-Amz-Date={date}&X-Amz-Expires={expires}&X-Amz-SignedHeaders=host&X-Amz-Signature={signature}",
            day = &date[..8]
        )
    }

    /// HMAC-SHA256 of what a link grants (path, date, lifetime), as hex.
    fn signature(&self, path: &str, date: &str, expires: u64) -> String {
        hex::encode(hmac_sha256(
            &self.signing_key,
            format!("GET\n{path}\n{date}\n{expires}").as_bytes(),
        ))
    }

    /// The file of export `id` once it completed, and whether it is
    /// gzip-compressed.
    fn completed_file(&self, id: &str) -> Option<(Bytes, bool)> {
        let polls_to_complete = read(&self.options).polls_to_complete.max(1);
        let exports = lock(&self.exports);
        exports
            .get(id)
            .filter(|export| export.polls >= polls_to_complete)
            .map(|export| (export.csv.clone(), export.gzip))
    }
}

/// HMAC-SHA256 (RFC 2104).
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut block = [0u8; 64];
    if key.len() > block.len() {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// S3's error body: `<Error><Code>…</Code><Message>…</Message></Error>`.
fn storage_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message>\
         <RequestId>5XLAHOSTSIM0000</RequestId></Error>"
    );
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    response
}

/// `GET /exports/{exportId}.csv?X-Amz-…` on the results origin: the file
/// for a valid, unexpired signature and no other credential.
async fn presigned_results(
    State(shared): State<Arc<Shared>>,
    Path(file): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let fault = match shared.admit(Route::Results, &headers, false).await {
        Faulted::Answer(response) => return response,
        Faulted::Body(fault) => fault,
    };
    if headers.contains_key(header::AUTHORIZATION) {
        shared.authorized_results.fetch_add(1, Ordering::Relaxed);
        return storage_error(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string \
             parameter or the Authorization header should be specified",
        );
    }
    let (Some(date), Some(expires), Some(signature)) = (
        query.get("X-Amz-Date"),
        query.get("X-Amz-Expires").and_then(|e| e.parse::<u64>().ok()),
        query.get("X-Amz-Signature"),
    ) else {
        return storage_error(StatusCode::FORBIDDEN, "AccessDenied", "Access Denied");
    };
    if expires > MAX_LINK_SECONDS {
        return storage_error(
            StatusCode::BAD_REQUEST,
            "AuthorizationQueryParametersError",
            "X-Amz-Expires must be less than a week (in seconds) that is 604800",
        );
    }
    let path = format!("/exports/{file}");
    if *signature != shared.signature(&path, date, expires) {
        return storage_error(
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        );
    }
    let signed_at = chrono::NaiveDateTime::parse_from_str(date, AMZ_DATE).map(|t| t.and_utc());
    let lifetime = chrono::Duration::seconds(i64::try_from(expires).unwrap_or_default());
    let expired = signed_at
        .ok()
        .and_then(|t| t.checked_add_signed(lifetime))
        .is_none_or(|end| utc_now() > end);
    if expired {
        return storage_error(StatusCode::FORBIDDEN, "AccessDenied", "Request has expired");
    }
    let id = file.strip_suffix(".csv").unwrap_or(&file);
    match shared.completed_file(id) {
        Some((body, true)) => respond(body, "application/gzip", fault),
        Some((body, false)) => respond(body, "text/csv", fault),
        None => storage_error(StatusCode::NOT_FOUND, "NoSuchKey", "The specified key does not exist."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::org::{self, OrgSpec};
    use crate::telemetry::{self, TelemetrySpec};
    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::TokioIo;

    /// 2026-10-01T00:00:00Z.
    const START: i64 = 1_790_812_800_000;

    struct Reply {
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
    }

    impl Reply {
        fn json(&self) -> Value {
            serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
        }
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.body).into_owned()
        }
    }

    async fn send(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        let uri: hyper::Uri = url.parse().expect("url");
        let authority = uri.authority().expect("authority").to_string();
        let stream = tokio::net::TcpStream::connect(&authority).await.expect("connect");
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(connection);
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"))
            .header("host", authority);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(Bytes::from(body.to_string()))).expect("request");
        let response = sender.send_request(request).await.expect("send");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.expect("body").to_bytes();
        Reply { status, headers, body }
    }

    async fn sim(employees_tickets: usize, days: u32, options: NexthinkOptions) -> NexthinkSim {
        let org = org::generate(&OrgSpec {
            seed: 5,
            tickets: employees_tickets,
            start: START,
            days,
        });
        let telemetry = telemetry::generate(
            &org,
            &TelemetrySpec {
                seed: 5,
                days,
                start: START,
            },
        );
        serve(Arc::new(telemetry), options, "127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("serve")
    }

    async fn bearer(sim: &NexthinkSim) -> String {
        let options = sim.options();
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", options.client_id, options.client_secret));
        let reply = send(
            "POST",
            &sim.token_url(),
            &[
                ("authorization", &format!("Basic {basic}")),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            "grant_type=client_credentials&scope=service%3Aintegration",
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        let token = reply.json();
        assert_eq!(token["token_type"], "Bearer");
        assert_eq!(token["expires_in"], 900);
        assert_eq!(token["scope"], "service:integration");
        format!("Bearer {}", token["access_token"].as_str().expect("token"))
    }

    fn query(id: &str, from: &str, to: &str) -> String {
        json!({"queryId": id, "parameters": {"from": from, "to": to}}).to_string()
    }

    #[tokio::test]
    async fn execute_answers_v1_v2_and_csv_and_caps_at_1000() {
        let sim = sim(1_500, 5, NexthinkOptions::default()).await;
        let auth = bearer(&sim).await;
        let telemetry = sim.telemetry();
        let n = telemetry.devices.len();
        assert_eq!(n, 300);
        let json_headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
        let url = format!("{}/api/v1/nql/execute", sim.base_url());
        let v1 = send(
            "POST",
            &url,
            &json_headers,
            &query(DEVICE_DAILY_DEX, "2026-10-02", "2026-10-03"),
        )
        .await;
        assert_eq!(v1.status, StatusCode::OK);
        let v1 = v1.json();
        assert_eq!(v1["rows"], n);
        assert_eq!(v1["headers"][5], "dex.score");
        let first = &v1["data"][0];
        let day = telemetry.day(1);
        assert_eq!(first[0], "LPT-000001");
        assert_eq!(first[4], "2026-10-02");
        assert_eq!(first[5].as_f64(), Some(day[0].dex_score()));
        assert_eq!(first[8].as_u64(), Some(u64::from(day[0].crashes)));

        let url2 = format!("{}/api/v2/nql/execute", sim.base_url());
        let v2 = send(
            "POST",
            &url2,
            &json_headers,
            &query(DEVICE_DAILY_DEX, "2026-10-02", "2026-10-03"),
        )
        .await;
        let v2 = v2.json();
        assert!(v2["executionDateTime"].is_string());
        assert_eq!(v2["data"][0]["device.name"], "LPT-000001");
        assert_eq!(
            v2["data"][0]["high_cpu_time_ratio"].as_f64(),
            Some(day[0].high_cpu_time_ratio())
        );

        let csv_headers = [("authorization", auth.as_str()), ("accept", "text/csv")];
        let csv = send(
            "POST",
            &url,
            &csv_headers,
            &query(DEVICE_DAILY_DEX, "2026-10-02", "2026-10-03"),
        )
        .await;
        assert_eq!(csv.headers[header::CONTENT_TYPE], "text/csv;charset=UTF-8");
        let text = csv.text();
        assert_eq!(text.lines().count(), n + 1);
        assert!(text.starts_with("device.name,device.hardware.model,"));
        assert!(text.ends_with('\n'));

        // Four days are 1200 rows: the first 1000 come back, and say so.
        let capped = send(
            "POST",
            &url,
            &json_headers,
            &query(DEVICE_DAILY_DEX, "2026-10-01", "2026-10-05"),
        )
        .await;
        let capped = capped.json();
        assert_eq!(capped["rows"], EXECUTE_ROW_CAP);
        assert_eq!(capped["data"].as_array().map(Vec::len), Some(EXECUTE_ROW_CAP));
        assert!(
            capped["executedQuery"]
                .as_str()
                .is_some_and(|q| q.ends_with("| limit 1000"))
        );
        // Outside the period: nothing.
        let empty = send(
            "POST",
            &url,
            &json_headers,
            &query(DEVICE_DAILY_DEX, "2026-10-06", "2026-10-07"),
        )
        .await;
        assert_eq!(empty.json()["rows"], 0);
    }

    #[tokio::test]
    async fn bad_queries_and_missing_tokens_are_refused_in_nexthink_shape() {
        let sim = sim(500, 2, NexthinkOptions::default()).await;
        let url = format!("{}/api/v1/nql/execute", sim.base_url());
        let none = send("POST", &url, &[], &query(DEVICE_DAILY_DEX, "2026-10-01", "2026-10-02")).await;
        assert_eq!(none.status, StatusCode::UNAUTHORIZED);
        assert!(none.json()["message"].is_string());
        let auth = bearer(&sim).await;
        let headers = [("authorization", auth.as_str())];
        let unknown = send(
            "POST",
            &url,
            &headers,
            &query("#no_such_query", "2026-10-01", "2026-10-02"),
        )
        .await;
        assert_eq!(unknown.status, StatusCode::NOT_FOUND);
        let body = unknown.json();
        assert_eq!(body["code"], "404");
        assert!(body["source"].is_string() && body["message"].is_string());
        let invalid = send("POST", &url, &headers, &query("#Bad-Id", "2026-10-01", "2026-10-02")).await;
        assert_eq!(invalid.status, StatusCode::BAD_REQUEST);
        let no_dates = send("POST", &url, &headers, r##"{"queryId":"#device_daily_dex"}"##).await;
        assert_eq!(no_dates.status, StatusCode::BAD_REQUEST);
        sim.expire_tokens();
        let expired = send(
            "POST",
            &url,
            &headers,
            &query(DEVICE_DAILY_DEX, "2026-10-01", "2026-10-02"),
        )
        .await;
        assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
        let wrong = send(
            "POST",
            &sim.token_url(),
            &[("authorization", "Basic eDp5")],
            "grant_type=client_credentials",
        )
        .await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
        assert!(valid_query_id("#device_daily_dex") && !valid_query_id("#a") && !valid_query_id("device"));
    }

    /// Field case 11-nexthink-times.json as a fault mode: without
    /// `x-utc-times: true` the answer is on the regional clock, zoneless.
    #[tokio::test]
    async fn a_regional_clock_answers_in_regional_time_unless_utc_is_asked_for() {
        let sim = sim(
            1_500,
            3,
            NexthinkOptions {
                regional_offset_minutes: Some(-300),
                ..NexthinkOptions::default()
            },
        )
        .await;
        let auth = bearer(&sim).await;
        let body = query(DEVICE_DAILY_DEX, "2026-10-02", "2026-10-03");
        for version in [1, 2] {
            let url = format!("{}/api/v{version}/nql/execute", sim.base_url());
            let regional = send("POST", &url, &[("authorization", auth.as_str())], &body)
                .await
                .json();
            let utc = send(
                "POST",
                &url,
                &[("authorization", auth.as_str()), ("x-utc-times", "true")],
                &body,
            )
            .await
            .json();
            let date = |answer: &Value| {
                let row = &answer["data"][0];
                if version == 1 {
                    row[4].clone()
                } else {
                    row["date"].clone()
                }
            };
            assert_eq!(
                date(&regional),
                "2026-10-01T19:00:00",
                "v{version}: the UTC day's start at UTC-5"
            );
            assert_eq!(date(&utc), "2026-10-02", "v{version}");
            let executed = &regional["executionDateTime"];
            if version == 1 {
                assert!(executed["hour"].is_u64(), "v1: an object of date parts: {executed}");
            } else {
                assert!(executed.as_str().is_some_and(|t| !t.ends_with('Z')), "{executed}");
                assert!(utc["executionDateTime"].as_str().is_some_and(|t| t.ends_with('Z')));
            }
        }
    }

    /// Field case 12-nexthink-export-partial.json as fault modes: a failing
    /// poll (503, the export goes on), then 206 for an export past the
    /// licence's result limit, with a file of the first rows.
    #[tokio::test]
    async fn a_truncated_export_completes_with_206_after_a_failing_poll() {
        let sim = sim(
            1_500,
            3,
            NexthinkOptions {
                export_row_limit: Some(100),
                failing_polls: vec![2],
                polls_to_complete: 2,
                ..NexthinkOptions::default()
            },
        )
        .await;
        let auth = bearer(&sim).await;
        let headers = [("authorization", auth.as_str()), ("x-utc-times", "true")];
        let url = format!("{}/api/v1/nql/export", sim.base_url());
        let export = send(
            "POST",
            &url,
            &headers,
            &query(DEVICE_DAILY_DEX, "2026-10-01", "2026-10-02"),
        )
        .await;
        let id = export.json()["exportId"].as_str().expect("exportId").to_string();
        let status_url = format!("{}/api/v1/nql/status/{id}", sim.base_url());
        let statuses: Vec<StatusCode> = [
            send("GET", &status_url, &headers, "").await,
            send("GET", &status_url, &headers, "").await,
            send("GET", &status_url, &headers, "").await,
        ]
        .iter()
        .map(|r| r.status)
        .collect();
        assert_eq!(
            statuses,
            [
                StatusCode::OK,
                StatusCode::SERVICE_UNAVAILABLE,
                StatusCode::PARTIAL_CONTENT
            ]
        );
        let done = send("GET", &status_url, &headers, "").await;
        assert_eq!(done.status, StatusCode::PARTIAL_CONTENT);
        let file = done.json()["resultsFileUrl"].as_str().expect("url").to_string();
        let csv = send("GET", &file, &[], "").await;
        assert_eq!(csv.text().lines().count(), 100 + 1, "the first rows only");
    }

    #[tokio::test]
    async fn exports_progress_over_polls_to_a_results_file() {
        let sim = sim(1_500, 3, NexthinkOptions::default()).await;
        let auth = bearer(&sim).await;
        let headers = [("authorization", auth.as_str())];
        let body = query(DEVICE_DAILY_DEX, "2026-10-01", "2026-10-04");
        let (seen, file) = export_polled(&sim, &headers, &body, 3).await;
        assert_eq!(seen, ["SUBMITTED", "IN_PROGRESS", "COMPLETED"]);
        let file = file.expect("resultsFileUrl");
        assert!(file.starts_with(&sim.base_url()));
        let csv = send("GET", &file, &[], "").await;
        assert_eq!(csv.status, StatusCode::OK);
        assert_eq!(csv.text().lines().count(), 3 * 300 + 1, "no row cap on exports");
        let unknown = send(
            "GET",
            &format!("{}/api/v1/nql/status/nope", sim.base_url()),
            &headers,
            "",
        )
        .await;
        assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    }

    /// Submits an export of `body` and polls its status `polls` times: the
    /// statuses seen and the last `resultsFileUrl` given.
    async fn export_polled(
        sim: &NexthinkSim,
        headers: &[(&str, &str)],
        body: &str,
        polls: usize,
    ) -> (Vec<String>, Option<String>) {
        let url = format!("{}/api/v1/nql/export", sim.base_url());
        let export = send("POST", &url, headers, body).await;
        let id = export.json()["exportId"].as_str().expect("exportId").to_string();
        let status_url = format!("{}/api/v1/nql/status/{id}", sim.base_url());
        let (mut seen, mut file) = (Vec::new(), None);
        for _ in 0..polls {
            let status = send("GET", &status_url, headers, "").await.json();
            seen.push(status["status"].as_str().expect("status").to_string());
            file = status["resultsFileUrl"].as_str().map(str::to_string).or(file);
        }
        (seen, file)
    }

    /// `"compression": "GZIP"` gives the same file gzip-compressed; another
    /// compression is refused.
    #[tokio::test]
    async fn exports_asked_for_gzip_serve_a_gzip_file() {
        use std::io::Read;
        let sim = sim(200, 2, NexthinkOptions::default()).await;
        let auth = bearer(&sim).await;
        let headers = [("authorization", auth.as_str())];
        let url = format!("{}/api/v1/nql/export", sim.base_url());
        let mut files = Vec::new();
        for compression in ["NONE", "GZIP"] {
            let body = json!({"queryId": DEVICE_DAILY_DEX, "parameters": {"from": "2026-10-01", "to": "2026-10-03"},
                "compression": compression});
            let (_, file) = export_polled(&sim, &headers, &body.to_string(), 3).await;
            let reply = send("GET", &file.expect("resultsFileUrl"), &[], "").await;
            files.push((reply.headers[header::CONTENT_TYPE].clone(), reply.body.to_vec()));
        }
        assert_eq!(files[1].0, "application/gzip");
        let mut inflated = Vec::new();
        flate2::read::GzDecoder::new(&files[1].1[..])
            .read_to_end(&mut inflated)
            .expect("gunzip");
        assert_eq!(inflated, files[0].1, "the same CSV");
        assert!(files[1].1.len() < files[0].1.len() / 3, "and smaller");
        let zstd = json!({"queryId": DEVICE_DAILY_DEX, "parameters": {"from": "2026-10-01", "to": "2026-10-03"},
            "compression": "ZSTD"});
        let refused = send("POST", &url, &headers, &zstd.to_string()).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn results_on_another_origin_are_presigned_and_refuse_other_credentials() {
        let options = NexthinkOptions {
            results_on_other_origin: true,
            ..NexthinkOptions::default()
        };
        let sim = sim(500, 2, options).await;
        let storage = sim.results_url().expect("a results origin");
        assert_ne!(storage, sim.base_url());
        let auth = bearer(&sim).await;
        let headers = [("authorization", auth.as_str())];
        let export = send(
            "POST",
            &format!("{}/api/v1/nql/export", sim.base_url()),
            &headers,
            &query(DEVICE_DAILY_DEX, "2026-10-01", "2026-10-03"),
        )
        .await;
        let id = export.json()["exportId"].as_str().expect("exportId").to_string();
        let status_url = format!("{}/api/v1/nql/status/{id}", sim.base_url());
        let mut file = None;
        for _ in 0..3 {
            file = send("GET", &status_url, &headers, "").await.json()["resultsFileUrl"]
                .as_str()
                .map(str::to_string);
        }
        let file = file.expect("resultsFileUrl");
        assert!(file.starts_with(&format!("{storage}/exports/{id}.csv?")), "{file}");
        assert!(
            file.contains("X-Amz-Expires=900") && file.contains("X-Amz-Signature="),
            "{file}"
        );

        let csv = send("GET", &file, &[], "").await;
        assert_eq!(csv.status, StatusCode::OK, "{}", csv.text());
        assert_eq!(csv.text().lines().count(), 2 * 100 + 1);

        // A bearer besides the signature: S3 allows one auth mechanism only.
        let both = send("GET", &file, &headers, "").await;
        assert_eq!(both.status, StatusCode::BAD_REQUEST);
        assert_eq!(both.headers[header::CONTENT_TYPE], "application/xml");
        assert!(both.text().contains("<Code>InvalidArgument</Code>"), "{}", both.text());
        assert_eq!(sim.authorized_results_requests(), 1);

        let tampered = send("GET", &file.replace("X-Amz-Expires=900", "X-Amz-Expires=901"), &[], "").await;
        assert_eq!(tampered.status, StatusCode::FORBIDDEN);
        assert!(tampered.text().contains("<Code>SignatureDoesNotMatch</Code>"));
        let unsigned = send("GET", &format!("{storage}/exports/{id}.csv"), &[], "").await;
        assert_eq!(unsigned.status, StatusCode::FORBIDDEN);
        assert!(unsigned.text().contains("<Code>AccessDenied</Code>"));
        let path = format!("/exports/{id}.csv");
        let old = "20260101T000000Z";
        let expired = send(
            "GET",
            &format!(
                "{storage}{path}?X-Amz-Date={old}&X-Amz-Expires=60&X-Amz-Signature={}",
                sim.shared.signature(&path, old, 60)
            ),
            &[],
            "",
        )
        .await;
        assert_eq!(expired.status, StatusCode::FORBIDDEN);
        assert!(expired.text().contains("Request has expired"), "{}", expired.text());

        assert_eq!(
            [
                Route::Token,
                Route::Export,
                Route::Status,
                Route::Results,
                Route::Execute
            ]
            .map(|r| sim.requests_to(r)),
            [1, 1, 3, 5, 0]
        );
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[tokio::test]
    async fn faults_hit_the_requests_they_name() {
        let faults = vec![
            FaultRule {
                fault: Fault::ServerError,
                on: Requests::Numbers(vec![1]),
            },
            FaultRule {
                fault: Fault::Throttle { retry_after_secs: 7 },
                on: Requests::Numbers(vec![2]),
            },
            FaultRule {
                fault: Fault::Truncated,
                on: Requests::Numbers(vec![3]),
            },
            FaultRule {
                fault: Fault::Malformed,
                on: Requests::Numbers(vec![4]),
            },
            FaultRule {
                fault: Fault::ExpiredToken,
                on: Requests::Numbers(vec![5]),
            },
        ];
        let sim = sim(
            500,
            2,
            NexthinkOptions {
                faults,
                ..NexthinkOptions::default()
            },
        )
        .await;
        let auth = bearer(&sim).await;
        let headers = [("authorization", auth.as_str()), ("accept", "text/csv")];
        let url = format!("{}/api/v1/nql/execute", sim.base_url());
        let body = query(DEVICE_DAILY_DEX, "2026-10-01", "2026-10-02");
        assert_eq!(
            send("POST", &url, &headers, &body).await.status,
            StatusCode::INTERNAL_SERVER_ERROR
        );
        let throttled = send("POST", &url, &headers, &body).await;
        assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(throttled.headers[header::RETRY_AFTER], "7");
        let truncated = send("POST", &url, &headers, &body).await.text();
        assert!(!truncated.ends_with('\n') && !truncated.is_empty());
        let malformed = send("POST", &url, &headers, &body).await.text();
        assert!(malformed.starts_with("<html>"));
        assert_eq!(
            send("POST", &url, &headers, &body).await.status,
            StatusCode::UNAUTHORIZED
        );
        let fine = send("POST", &url, &headers, &body).await.text();
        assert_eq!(fine.lines().count(), 101);
        assert_eq!(sim.requests(), 6);
    }
}
