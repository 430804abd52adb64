//! A ServiceNow Table API on loopback, over a seeded [`Org`]: the real wire
//! format (string values, reference objects, dot-walked fields, display
//! values, encoded queries, `Link` paging), with the quirks a connector must
//! survive: the limit applies before the ACL filter (short and empty pages),
//! records changing during a sync, hourly rate limits, OAuth tokens that
//! expire, and deterministic faults.
//!
//! Routes: `GET /api/now/table/{table}` (also `/api/now/v1/...`, `/api/now/v2/...`)
//! for `incident`, `sc_req_item`, `task_sla`, `task`, `sys_user_group`,
//! `cmdb_ci_service`, `sys_user` and `contract_sla`; the single-record read
//! `GET /api/now/table/{table}/{sys_id}` (`{"result": {...}}`, or 404 with
//! ServiceNow's "No Record found" body), which pysnc's `get()` uses;
//! `POST /oauth_token.do`.
//!
//! References render as the real API renders them: a bare sys_id with
//! `sysparm_exclude_reference_link=true`, `{"link", "value"}` without it,
//! `{"display_value", "link", "value"}` with `sysparm_display_value=all`.
//! Besides the [`Fault`]s, [`NotAPageRule`]s make a page request answer a 2xx
//! that is not a page, and `dot_walking: false` leaves dot-walked fields
//! out, so a client gets only the references' sys_ids.

mod not_a_page;
mod order;
mod query;
mod table;

pub use not_a_page::{NotAPage, NotAPageRule};

use crate::org::Org;
use crate::server::Served;
use crate::{lock, read, write};
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use order::OrderCache;
use query::EncodedQuery;
use serde_json::json;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use table::{Rendering, Table};

pub use query::{format_time as format_servicenow_time, parse_time as parse_servicenow_time};

/// What the simulated instance accepts and how it misbehaves.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceNowOptions {
    /// API user for Basic auth and the OAuth password grant.
    pub user: String,
    /// The API user's password.
    pub password: String,
    /// OAuth client id (Application Registry).
    pub client_id: String,
    /// OAuth client secret.
    pub client_secret: String,
    /// How long an access token lives (the instance default is 1,800 s).
    pub token_lifetime: Duration,
    /// Per-user rate limit rule; `None` for no limit.
    pub rate_limit: Option<RateLimit>,
    /// Share (0.0-1.0) of ticket and SLA records hidden from the API user by ACL,
    /// chosen by sys_id, so the same records stay hidden.
    pub acl_hidden_share: f64,
    /// `sysparm_limit` when the request has none.
    pub default_limit: usize,
    /// Faults injected by Table API request number.
    pub faults: Vec<FaultRule>,
    /// 2xx answers that are not a page, by request number and page size.
    pub not_a_page: Vec<NotAPageRule>,
    /// Whether dot-walked fields (`assignment_group.name`) in `sysparm_fields`
    /// are answered; when `false` they are left out, as fields the reader
    /// cannot see are, and only the references themselves come back.
    pub dot_walking: bool,
}

impl Default for ServiceNowOptions {
    fn default() -> Self {
        ServiceNowOptions {
            user: "xla.integration".into(),
            password: "xla-integration-password".into(),
            client_id: "xla-client".into(),
            client_secret: "xla-client-secret".into(),
            token_lifetime: Duration::from_secs(1800),
            rate_limit: Some(RateLimit::default()),
            acl_hidden_share: 0.0,
            default_limit: 10_000,
            faults: Vec::new(),
            not_a_page: Vec::new(),
            dot_walking: true,
        }
    }
}

/// A rate limit rule: at most `limit` requests per user per `window`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed in one window.
    pub limit: u32,
    /// Window length (an hour on real instances).
    pub window: Duration,
    /// Rule name sent in `X-RateLimit-Rule`.
    pub rule: String,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            limit: 5_000,
            window: Duration::from_secs(3600),
            rule: "Table API per user".into(),
        }
    }
}

pub use crate::fault::{Fault, FaultRule, Requests};

/// A running simulator; stops when dropped.
#[derive(Debug)]
pub struct ServiceNowSim {
    shared: Arc<Shared>,
    served: Served,
    throttler: Arc<crate::throttle::Throttler>,
}

#[derive(Debug)]
struct Shared {
    base_url: String,
    org: RwLock<Arc<Org>>,
    options: RwLock<ServiceNowOptions>,
    requests: AtomicU64,
    tokens: Mutex<Tokens>,
    windows: Mutex<HashMap<String, Window>>,
    /// Next incident `update_records` looks at, so successive calls change different records.
    update_cursor: Mutex<usize>,
    /// Bumped (under the `org` write lock) whenever the records change.
    generation: AtomicU64,
    /// Sorted orders of the current generation.
    orders: OrderCache,
}

#[derive(Debug, Default)]
struct Tokens {
    issued: u64,
    access: HashMap<String, (String, Instant)>,
    refresh: HashMap<String, String>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    reset_unix: u64,
    count: u32,
}

/// Serves the Table API on `addr` (use port 0 for any free port).
pub async fn serve(org: Arc<Org>, options: ServiceNowOptions, addr: SocketAddr) -> std::io::Result<ServiceNowSim> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let shared = Arc::new(Shared {
        base_url: format!("http://{local}"),
        org: RwLock::new(org),
        options: RwLock::new(options),
        requests: AtomicU64::new(0),
        tokens: Mutex::new(Tokens::default()),
        windows: Mutex::new(HashMap::new()),
        update_cursor: Mutex::new(0),
        generation: AtomicU64::new(0),
        orders: OrderCache::default(),
    });
    let throttler = Arc::new(crate::throttle::Throttler::default());
    let app = throttler.layer(router(shared.clone()), "/api/");
    let served = Served::spawn(listener, app, "servicenow");
    Ok(ServiceNowSim {
        shared,
        served,
        throttler,
    })
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/now/table/{table}", get(table_api))
        .route("/api/now/v1/table/{table}", get(table_api))
        .route("/api/now/v2/table/{table}", get(table_api))
        .route("/api/now/table/{table}/{sys_id}", get(one_record))
        .route("/api/now/v1/table/{table}/{sys_id}", get(one_record))
        .route("/api/now/v2/table/{table}/{sys_id}", get(one_record))
        .route("/oauth_token.do", post(oauth_token))
        .with_state(shared)
}

impl ServiceNowSim {
    /// The throttle fault modes in front of the Table API (see [`crate::throttle`]).
    pub fn throttler(&self) -> &Arc<crate::throttle::Throttler> {
        &self.throttler
    }

    /// `http://127.0.0.1:PORT`, the instance URL.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// Table API requests received so far (answered or refused).
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// The options in force.
    pub fn options(&self) -> ServiceNowOptions {
        read(&self.shared.options).clone()
    }

    /// Replaces the options (faults, limits, ACL share) from the next request on.
    pub fn set_options(&self, options: ServiceNowOptions) {
        *write(&self.shared.options) = options;
    }

    /// The current records: a snapshot, cheap to take, for computing the truth.
    pub fn records(&self) -> Arc<Org> {
        read(&self.shared.org).clone()
    }

    /// Whether the API user may see the record with this sys_id (tickets and SLAs
    /// only; the reference tables are always visible).
    pub fn is_visible(&self, sys_id: &str) -> bool {
        visible(sys_id, read(&self.shared.options).acl_hidden_share)
    }

    /// Invalidates every access token issued so far (refresh tokens still work).
    pub fn expire_tokens(&self) {
        lock(&self.shared.tokens).access.clear();
    }

    /// Changes `n` resolved or closed incidents as a sync would see them change:
    /// one more reassignment and modification, `sys_updated_on` set to `at`
    /// (unix ms, cut to whole seconds). Successive calls pick different incidents.
    /// Returns their sys_ids.
    pub fn update_records(&self, n: usize, at: i64) -> Vec<String> {
        let mut guard = write(&self.shared.org);
        let org = Arc::make_mut(&mut guard);
        let mut cursor = lock(&self.shared.update_cursor);
        let len = org.incidents.len();
        let mut changed = Vec::with_capacity(n);
        for step in 0..len {
            if changed.len() == n {
                break;
            }
            let index = (*cursor + step) % len;
            let incident = &mut org.incidents[index];
            if !matches!(incident.state, 6 | 7) {
                continue;
            }
            incident.reassignment_count += 1;
            incident.sys_mod_count += 1;
            incident.sys_updated_on = at.div_euclid(1000) * 1000;
            changed.push(incident.sys_id.clone());
            if changed.len() == n {
                *cursor = index + 1;
            }
        }
        self.shared.generation.fetch_add(1, Ordering::Relaxed);
        changed
    }

    /// Stops serving and waits for the server task to end.
    pub async fn shutdown(self) {
        self.served.stop().await;
    }
}

/// The ACL rule: a record is hidden when the hash of its sys_id falls in the hidden share.
fn visible(sys_id: &str, hidden_share: f64) -> bool {
    let bucket = xxhash_rust::xxh3::xxh3_64(sys_id.as_bytes()) % 1_000_000;
    bucket as f64 >= hidden_share.clamp(0.0, 1.0) * 1_000_000.0
}

/// The Table API's error body.
fn failure(status: StatusCode, message: &str, detail: Option<&str>) -> Response {
    let body = json!({"error": {"message": message, "detail": detail}, "status": "failure"});
    (status, Json(body)).into_response()
}

fn unauthenticated() -> Response {
    failure(
        StatusCode::UNAUTHORIZED,
        "User Not Authenticated",
        Some("Required to provide Auth information"),
    )
}

fn too_many(retry_after_secs: u64) -> Response {
    let mut response = failure(
        StatusCode::TOO_MANY_REQUESTS,
        "Rate limit exceeded",
        Some("Too many requests for this user; retry later"),
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    response
}

fn unix_now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

impl Shared {
    /// The current records and their generation, read together.
    fn snapshot(&self) -> Snapshot {
        let org = read(&self.org);
        Snapshot {
            org: Arc::clone(&org),
            generation: self.generation.load(Ordering::Relaxed),
        }
    }

    /// The authenticated user, from Basic or a live Bearer token.
    fn authenticate(&self, headers: &HeaderMap, options: &ServiceNowOptions) -> Option<String> {
        let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
        if let Some(encoded) = value.strip_prefix("Basic ") {
            let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
            let decoded = String::from_utf8(decoded).ok()?;
            let (user, password) = decoded.split_once(':')?;
            return (user == options.user && password == options.password).then(|| user.to_string());
        }
        let token = value.strip_prefix("Bearer ")?.trim();
        let tokens = lock(&self.tokens);
        let (user, expires) = tokens.access.get(token)?;
        (Instant::now() < *expires).then(|| user.clone())
    }

    /// Counts a request against the user's window; the headers to send, or a 429.
    fn rate(&self, user: &str, options: &ServiceNowOptions) -> Result<Vec<(&'static str, String)>, Box<Response>> {
        let Some(rule) = &options.rate_limit else {
            return Ok(Vec::new());
        };
        let now = Instant::now();
        let mut windows = lock(&self.windows);
        let window = windows
            .entry(user.to_string())
            .or_insert_with(|| fresh_window(now, rule));
        if now.duration_since(window.started) >= rule.window {
            *window = fresh_window(now, rule);
        }
        let headers = vec![
            ("x-ratelimit-limit", rule.limit.to_string()),
            ("x-ratelimit-reset", window.reset_unix.to_string()),
            ("x-ratelimit-rule", rule.rule.clone()),
        ];
        if window.count >= rule.limit {
            let left = rule.window.saturating_sub(now.duration_since(window.started));
            let mut response = too_many(left.as_secs_f64().ceil().max(1.0) as u64);
            add_headers(&mut response, &headers);
            return Err(Box::new(response));
        }
        window.count += 1;
        Ok(headers)
    }

    fn issue(&self, user: &str, lifetime: Duration, refresh: Option<String>) -> (String, String) {
        let mut tokens = lock(&self.tokens);
        tokens.issued += 1;
        let access = token_text(&self.base_url, tokens.issued, 1);
        let refresh = refresh.unwrap_or_else(|| token_text(&self.base_url, tokens.issued, 2));
        tokens
            .access
            .insert(access.clone(), (user.to_string(), Instant::now() + lifetime));
        tokens.refresh.insert(refresh.clone(), user.to_string());
        (access, refresh)
    }
}

fn fresh_window(now: Instant, rule: &RateLimit) -> Window {
    let reset = unix_now() + rule.window;
    Window {
        started: now,
        reset_unix: reset.as_secs() + u64::from(reset.subsec_nanos() > 0),
        count: 0,
    }
}

fn token_text(salt: &str, issued: u64, kind: u64) -> String {
    let a = xxhash_rust::xxh3::xxh3_64_with_seed(salt.as_bytes(), issued.wrapping_mul(31).wrapping_add(kind));
    let b = xxhash_rust::xxh3::xxh3_64_with_seed(&issued.to_le_bytes(), kind);
    format!("{a:016x}{b:016x}")
}

fn add_headers(response: &mut Response, headers: &[(&'static str, String)]) {
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(value) {
            response.headers_mut().insert(*name, value);
        }
    }
}

/// `POST /oauth_token.do`: password and refresh_token grants.
async fn oauth_token(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let options = read(&shared.options).clone();
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or("");
    let denied = || {
        let body = json!({"error_description": "access_denied", "error": "server_error"});
        (StatusCode::UNAUTHORIZED, Json(body)).into_response()
    };
    if field("client_id") != options.client_id || field("client_secret") != options.client_secret {
        return denied();
    }
    let issued = match field("grant_type") {
        "password" if field("username") == options.user && field("password") == options.password => {
            shared.issue(&options.user, options.token_lifetime, None)
        }
        "refresh_token" => {
            let refresh = field("refresh_token").to_string();
            let Some(user) = lock(&shared.tokens).refresh.get(&refresh).cloned() else {
                return denied();
            };
            shared.issue(&user, options.token_lifetime, Some(refresh))
        }
        _ => return denied(),
    };
    let (access_token, refresh_token) = issued;
    Json(json!({
        "access_token": access_token,
        "refresh_token": refresh_token,
        "scope": "useraccount",
        "token_type": "Bearer",
        "expires_in": options.token_lifetime.as_secs().saturating_sub(1),
    }))
    .into_response()
}

/// What every Table API request goes through before its table is read:
/// its number, injected faults, authentication, the rate limit, the table.
struct Admitted {
    number: u64,
    options: ServiceNowOptions,
    /// A body fault applied once the answer is rendered.
    after: Option<Fault>,
    limit_headers: Vec<(&'static str, String)>,
    table: Table,
}

async fn admit(shared: &Shared, name: &str, headers: &HeaderMap) -> Result<Admitted, Response> {
    let number = shared.requests.fetch_add(1, Ordering::Relaxed) + 1;
    let options = read(&shared.options).clone();
    let mut after = None;
    for rule in options.faults.iter().filter(|r| r.on.hits(number)) {
        match &rule.fault {
            Fault::Slow(delay) => tokio::time::sleep(*delay).await,
            Fault::ServerError => {
                return Err(failure(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal server error",
                    None,
                ));
            }
            Fault::Throttle { retry_after_secs } => return Err(too_many(*retry_after_secs)),
            Fault::ExpiredToken => return Err(unauthenticated()),
            Fault::Malformed | Fault::Truncated => after = after.or(Some(rule.fault.clone())),
        }
    }
    let Some(user) = shared.authenticate(headers, &options) else {
        return Err(unauthenticated());
    };
    let limit_headers = shared.rate(&user, &options).map_err(|response| *response)?;
    let Some(table) = Table::from_name(name) else {
        let mut response = failure(StatusCode::BAD_REQUEST, &format!("Invalid table {name}"), None);
        add_headers(&mut response, &limit_headers);
        return Err(response);
    };
    Ok(Admitted {
        number,
        options,
        after,
        limit_headers,
        table,
    })
}

/// A JSON answer with the rate limit's headers.
fn json_answer(body: Bytes, after: Option<&Fault>, headers: &[(&'static str, String)]) -> Response {
    let body = match after {
        Some(Fault::Malformed) => Bytes::from_static(b"{\"result\": [{sys_id: 'ab12', \"number\": INC00}, ]"),
        Some(Fault::Truncated) => body.slice(..body.len() / 2),
        _ => body,
    };
    let mut response = (StatusCode::OK, Body::from(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=UTF-8"),
    );
    add_headers(&mut response, headers);
    response
}

/// `GET /api/now/table/{table}`.
async fn table_api(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let admitted = match admit(&shared, &name, &headers).await {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    let Admitted {
        number,
        options,
        after,
        limit_headers,
        table,
    } = admitted;
    let snapshot = shared.snapshot();
    let params: Vec<(String, String)> = form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    let page_url = format!("{}{}", shared.base_url, uri.path());
    let (hidden, default_limit, dot_walking) = (options.acl_hidden_share, options.default_limit, options.dot_walking);
    let limit = requested_limit(&params, default_limit);
    let not_a_page = options
        .not_a_page
        .iter()
        .find(|r| r.hits(number, limit))
        .map(|r| r.shape);
    // A scan of a large table is CPU work: keep it off the async workers.
    let listed = tokio::task::spawn_blocking(move || {
        let listing = Listing {
            snapshot: &snapshot,
            orders: &shared.orders,
            hidden,
            default_limit,
            dot_walking,
        };
        list(&listing, table, &params, &page_url)
    })
    .await;
    let Ok(page) = listed else {
        return failure(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error", None);
    };
    if let Some(shape) = not_a_page {
        let mut response = not_a_page::answer(shape, &page.body);
        add_headers(&mut response, &limit_headers);
        return response;
    }
    let mut response = json_answer(page.body, after.as_ref(), &limit_headers);
    add_headers(&mut response, &page.headers);
    response
}

/// `sysparm_limit`, else the instance default; at least 1.
fn requested_limit(params: &[(String, String)], default_limit: usize) -> usize {
    params
        .iter()
        .find(|(k, _)| k == "sysparm_limit")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(default_limit)
        .max(1)
}

/// `GET /api/now/table/{table}/{sys_id}`: one record as `{"result": {...}}`
/// with the same `sysparm_fields`, `sysparm_display_value` and
/// `sysparm_exclude_reference_link` as a list; 404 with ServiceNow's body
/// when no such record exists or the ACL hides it.
async fn one_record(
    State(shared): State<Arc<Shared>>,
    Path((name, sys_id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let admitted = match admit(&shared, &name, &headers).await {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    let (table, options) = (admitted.table, &admitted.options);
    let snapshot = shared.snapshot();
    let org = &*snapshot.org;
    let params: Vec<(String, String)> = form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    let found = (0..table.len(org)).find(|&i| record_sys_id(org, table, i) == sys_id);
    let shown = found.filter(|_| !table.has_acl() || visible(&sys_id, options.acl_hidden_share));
    let Some(index) = shown else {
        let mut response = failure(
            StatusCode::NOT_FOUND,
            "No Record found",
            Some("Record doesn't exist or ACL restricts the record retrieval"),
        );
        add_headers(&mut response, &admitted.limit_headers);
        return response;
    };
    let rendering = Rendering::of(&params, &shared.base_url);
    let fields = requested_fields(table, &params, options.dot_walking);
    let mut body = Vec::with_capacity(64 + fields.len() * 40);
    body.extend_from_slice(b"{\"result\":");
    render_record(org, table, index, &fields, &rendering, &mut String::new(), &mut body);
    body.push(b'}');
    json_answer(Bytes::from(body), admitted.after.as_ref(), &admitted.limit_headers)
}

/// A rendered page: body and paging headers.
struct Page {
    body: Bytes,
    headers: Vec<(&'static str, String)>,
}

/// The records as one request sees them, with their generation (which
/// [`ServiceNowSim::update_records`] moves on).
struct Snapshot {
    org: Arc<Org>,
    generation: u64,
}

/// What a page is drawn from.
struct Listing<'a> {
    snapshot: &'a Snapshot,
    orders: &'a OrderCache,
    hidden: f64,
    default_limit: usize,
    dot_walking: bool,
}

fn list(listing: &Listing<'_>, table: Table, params: &[(String, String)], page_url: &str) -> Page {
    let (org, hidden, default_limit) = (&*listing.snapshot.org, listing.hidden, listing.default_limit);
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let flag = |name: &str| param(name).is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let limit = requested_limit(params, default_limit);
    let offset = param("sysparm_offset")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let rendering = Rendering::of(params, base_of(page_url));
    let query = EncodedQuery::parse(param("sysparm_query").unwrap_or(""), |f| table.knows(f));
    let matched = matching(listing.snapshot, table, &query, listing.orders);
    let total = matched.len();

    let end = offset.saturating_add(limit).min(total);
    let page = matched.get(offset.min(total)..end).unwrap_or_default();
    let fields = requested_fields(table, params, listing.dot_walking);
    let mut body = Vec::with_capacity(64 + page.len() * fields.len() * 40);
    let mut scratch = String::new();
    body.extend_from_slice(b"{\"result\":[");
    let shown = page
        .iter()
        .filter(|&&i| !table.has_acl() || visible(&record_sys_id(org, table, i), hidden));
    for (n, &i) in shown.enumerate() {
        if n > 0 {
            body.push(b',');
        }
        render_record(org, table, i, &fields, &rendering, &mut scratch, &mut body);
    }
    body.extend_from_slice(b"]}");

    let mut headers = Vec::new();
    if !flag("sysparm_no_count") {
        headers.push(("x-total-count", total.to_string()));
    }
    headers.push(("link", links(page_url, params, offset, limit, total)));
    Page {
        body: Bytes::from(body),
        headers,
    }
}

/// How values render: `sysparm_display_value`, `sysparm_exclude_reference_link`,
/// and the origin links start with.
struct RenderingOf<'b> {
    display: Rendering,
    exclude_links: bool,
    base: &'b str,
}

impl Rendering {
    /// From a request's parameters.
    fn of<'b>(params: &[(String, String)], base: &'b str) -> RenderingOf<'b> {
        let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let display = match param("sysparm_display_value").map(str::to_ascii_lowercase).as_deref() {
            Some("true") => Rendering::Display,
            Some("all") => Rendering::All,
            _ => Rendering::Value,
        };
        let exclude_links = param("sysparm_exclude_reference_link").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        RenderingOf {
            display,
            exclude_links,
            base,
        }
    }
}

/// `sysparm_fields` this table knows (every field when none), in the order
/// asked; dot-walked ones only when the instance dot-walks.
fn requested_fields(table: Table, params: &[(String, String)], dot_walking: bool) -> Vec<&str> {
    let list = params
        .iter()
        .find(|(k, _)| k == "sysparm_fields")
        .map(|(_, v)| v.trim())
        .filter(|f| !f.is_empty());
    match list {
        None => table.fields().to_vec(),
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|f| table.knows(f) && (dot_walking || !f.contains('.')))
            .collect(),
    }
}

/// One record as a JSON object of `fields`.
fn render_record(
    org: &Org,
    table: Table,
    index: usize,
    fields: &[&str],
    rendering: &RenderingOf<'_>,
    scratch: &mut String,
    body: &mut Vec<u8>,
) {
    body.push(b'{');
    for (f, field) in fields.iter().enumerate() {
        if f > 0 {
            body.push(b',');
        }
        table::json_text(body, field);
        body.push(b':');
        match table::walk(org, table, index, field) {
            Some(cell) => table::render_into(
                &cell,
                rendering.display,
                rendering.exclude_links,
                rendering.base,
                scratch,
                body,
            ),
            None => body.extend_from_slice(b"\"\""),
        }
    }
    body.push(b'}');
}

/// `http://host:port` of a page URL.
fn base_of(page_url: &str) -> &str {
    page_url.find("/api/now/").map_or(page_url, |at| &page_url[..at])
}

fn record_sys_id(org: &Org, table: Table, index: usize) -> String {
    match table::cell(org, table, index, "sys_id") {
        Some(cell) => cell.value.text().into_owned(),
        None => String::new(),
    }
}

/// Indices of matching records, in `ORDERBY` order (table order otherwise).
///
/// A sync asks for the same order page after page, so the sorted order of
/// the whole table is kept in `orders` (until the records change) and each
/// page only filters it: what an index does for a real instance.
fn matching(org: &Snapshot, table: Table, query: &EncodedQuery, orders: &OrderCache) -> Vec<usize> {
    let (org, generation) = (&*org.org, org.generation);
    let value = |i: usize, field: &str| table::walk(org, table, i, field).map(|c| c.value);
    let ordered = orders.get(org, generation, table, &query.order);
    if query.matches_all() {
        return ordered.to_vec();
    }
    let start = range_start(&ordered, query, |i, f| value(i, f));
    ordered[start..]
        .iter()
        .copied()
        .filter(|&i| query.matches(|f| value(i, f)))
        .collect()
}

/// Where matches can start in `ordered`: past the records below every
/// lower bound of the first sort key (ascending), found by binary search;
/// 0 when the query does not bound it.
fn range_start<'a>(
    ordered: &[usize],
    query: &EncodedQuery,
    value: impl Fn(usize, &str) -> Option<query::Val<'a>>,
) -> usize {
    let Some(first) = query.order.first().filter(|o| !o.descending) else {
        return 0;
    };
    let Some(bounds) = query.lower_bounds(&first.field) else {
        return 0;
    };
    let empty = || query::Val::Text(std::borrow::Cow::Borrowed(""));
    bounds
        .iter()
        .map(|term| ordered.partition_point(|&i| term.is_below(&value(i, &first.field).unwrap_or_else(empty))))
        .min()
        .unwrap_or(0)
}

/// The `Link` header: first, prev, next (only when more follow), last.
fn links(page_url: &str, params: &[(String, String)], offset: usize, limit: usize, total: usize) -> String {
    let url = |at: usize| {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (k, v) in params
            .iter()
            .filter(|(k, _)| k != "sysparm_offset" && k != "sysparm_limit")
        {
            query.append_pair(k, v);
        }
        query.append_pair("sysparm_limit", &limit.to_string());
        query.append_pair("sysparm_offset", &at.to_string());
        format!("{page_url}?{}", query.finish())
    };
    let last = total.saturating_sub(1) / limit * limit;
    let mut parts = vec![format!("<{}>;rel=\"first\"", url(0))];
    if offset > 0 {
        parts.push(format!("<{}>;rel=\"prev\"", url(offset.saturating_sub(limit))));
    }
    if offset.saturating_add(limit) < total {
        parts.push(format!("<{}>;rel=\"next\"", url(offset + limit)));
    }
    parts.push(format!("<{}>;rel=\"last\"", url(last)));
    parts.join(",")
}

#[cfg(test)]
mod tests;
