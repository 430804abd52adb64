//! Shared helpers: the guests' paths, one runtime for the whole test binary,
//! and a loopback server that records what reaches it.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use xla_host::plugins::{LoadedPlugin, Pins, PluginPre, load_plugin};
use xla_host::runtime::outbound::{Credential, OutboundPolicy};
use xla_host::runtime::{Batch, ConnectorPre, Limits, Runtime, RuntimeError, RuntimeOptions, ScorerPre};

pub mod guests {
    include!(concat!(env!("OUT_DIR"), "/guests.rs"));
}

/// The repository's `target/` directory.
pub fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("target")
}

/// The compile cache shared by the tests (a restart of the suite hits it).
pub fn test_cache_dir() -> PathBuf {
    target_dir().join("test-cache")
}

/// One runtime (engine, pool, epoch ticker) for the whole test binary, as in
/// the real host.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| start_runtime(false))
}

/// A runtime that counts fuel, as the host starts when a limit sets `fuel`.
pub fn metered_runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| start_runtime(true))
}

fn start_runtime(meter_fuel: bool) -> Runtime {
    Runtime::new(RuntimeOptions {
        cache_dir: Some(test_cache_dir()),
        meter_fuel,
        ..RuntimeOptions::default()
    })
    .expect("the runtime starts")
}

pub fn load(path: &str) -> LoadedPlugin {
    load_in(runtime(), path)
}

pub fn load_in(runtime: &Runtime, path: &str) -> LoadedPlugin {
    load_plugin(runtime, Path::new(path), &Pins::default()).unwrap_or_else(|e| panic!("loading {path}: {e}"))
}

pub fn connector(path: &str) -> ConnectorPre {
    connector_in(runtime(), path)
}

pub fn connector_in(runtime: &Runtime, path: &str) -> ConnectorPre {
    match load_in(runtime, path).pre {
        PluginPre::Connector(pre) => pre,
        PluginPre::Scorer(_) => panic!("{path} is a scorer"),
    }
}

pub fn scorer(path: &str) -> ScorerPre {
    match load(path).pre {
        PluginPre::Scorer(pre) => pre,
        PluginPre::Connector(_) => panic!("{path} is a connector"),
    }
}

/// Limits small enough that the attacks hit them quickly.
pub fn tight_limits() -> Limits {
    Limits {
        deadline_ms: 2_000,
        memory_mib: 64,
        ..Limits::default()
    }
}

/// One pull of the hostile connector with `attack`, under `limits`, allowed
/// to reach `grants` with `credentials`.
pub async fn attack(
    attack: serde_json::Value,
    limits: Limits,
    grants: &[String],
    credentials: Vec<Credential>,
) -> Result<Batch, RuntimeError> {
    attack_in(runtime(), attack, limits, grants, credentials).await
}

/// [`attack`] on a given runtime.
pub async fn attack_in(
    runtime: &Runtime,
    attack: serde_json::Value,
    limits: Limits,
    grants: &[String],
    credentials: Vec<Credential>,
) -> Result<Batch, RuntimeError> {
    let pre = connector_in(runtime, guests::HOSTILE);
    let policy = OutboundPolicy::new(&["*".to_string()], grants, credentials, &limits).expect("valid grants");
    let mut session = pre.session(limits, Some(Arc::new(policy)));
    session.pull(&attack.to_string(), None).await
}

/// Runs `f` on its own thread and fails the test if it does not return in
/// time: a test of a limit must fail, not hang, when the limit is gone.
pub fn within<T: Send + 'static>(limit: std::time::Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("no answer within {limit:?}: the limit under test is not enforced"))
}

/// [`attack_in`] on its own thread and tokio runtime, failing after `limit`.
pub fn attack_within_in(
    wasm: &'static Runtime,
    limit: std::time::Duration,
    attack_config: serde_json::Value,
    limits: Limits,
) -> Result<Batch, RuntimeError> {
    within(limit, move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(attack_in(wasm, attack_config, limits, &[], Vec::new()))
    })
}

/// What reached a loopback server.
#[derive(Default)]
pub struct Seen {
    pub hits: AtomicUsize,
    pub authorization: Mutex<Vec<(String, Option<String>)>>,
    /// When each request arrived.
    pub arrivals: Mutex<Vec<std::time::Instant>>,
}

impl Seen {
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// The Authorization header of each request to `path`.
    pub fn authorization_for(&self, path: &str) -> Vec<Option<String>> {
        self.authorization
            .lock()
            .expect("not poisoned")
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, a)| a.clone())
            .collect()
    }
}

/// A loopback server: `/ok`, `/secret` (needs `Bearer <token>`), `/redirect?to=URL`,
/// `/huge` (4 MiB), `/huge-chunked` (4 MiB, streamed), `/slow` (answers after 20 s),
/// `/upload` (POST, any body), `/oauth2/token` (client `xla`/`s3cret`), and `/api` (needs
/// the OAuth2 token). Every request is recorded.
pub struct Server {
    pub addr: SocketAddr,
    pub seen: Arc<Seen>,
}

impl Server {
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

pub const BEARER: &str = "tok-4f9d1c7e-never-visible-to-plugins";
pub const OAUTH_ACCESS_TOKEN: &str = "oauth-access-7b31";

#[derive(Clone)]
struct AppState {
    seen: Arc<Seen>,
    token_fetches: Arc<AtomicUsize>,
}

fn record(state: &AppState, uri: &Uri, headers: &HeaderMap) -> Option<String> {
    state.seen.hits.fetch_add(1, Ordering::SeqCst);
    state
        .seen
        .arrivals
        .lock()
        .expect("not poisoned")
        .push(std::time::Instant::now());
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    state
        .seen
        .authorization
        .lock()
        .expect("not poisoned")
        .push((uri.path().to_string(), authorization.clone()));
    authorization
}

async fn ok(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    record(&state, &uri, &headers);
    (StatusCode::OK, "{\"ok\":true}").into_response()
}

async fn secret(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    let expected = format!("Bearer {BEARER}");
    match record(&state, &uri, &headers) {
        Some(value) if value == expected => (StatusCode::OK, "{\"secret\":\"granted\"}").into_response(),
        _ => (StatusCode::UNAUTHORIZED, "{\"error\":\"no token\"}").into_response(),
    }
}

async fn redirect(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    record(&state, &uri, &headers);
    let to = uri
        .query()
        .and_then(|q| q.strip_prefix("to="))
        .unwrap_or("/ok")
        .to_string();
    (StatusCode::FOUND, [("location", to)]).into_response()
}

async fn upload(State(state): State<AppState>, uri: Uri, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    record(&state, &uri, &headers);
    (StatusCode::OK, format!("{{\"received\":{}}}", body.len())).into_response()
}

async fn huge(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    record(&state, &uri, &headers);
    vec![b'z'; 4 << 20].into_response()
}

async fn huge_chunked(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    record(&state, &uri, &headers);
    // No Content-Length: the cap must hold while the body streams.
    let chunks = (0..64).map(|_| Ok::<_, std::io::Error>(axum::body::Bytes::from(vec![b'c'; 64 << 10])));
    axum::body::Body::from_stream(futures_util::stream::iter(chunks)).into_response()
}

async fn slow(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    record(&state, &uri, &headers);
    tokio::time::sleep(std::time::Duration::from_secs(20)).await;
    (StatusCode::OK, "late").into_response()
}

async fn token(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    // "xla:s3cret" in Basic.
    let ok = record(&state, &uri, &headers).as_deref() == Some("Basic eGxhOnMzY3JldA==");
    state.token_fetches.fetch_add(1, Ordering::SeqCst);
    if !ok {
        return (StatusCode::UNAUTHORIZED, "{\"error\":\"invalid_client\"}").into_response();
    }
    let body = format!("{{\"access_token\":\"{OAUTH_ACCESS_TOKEN}\",\"token_type\":\"Bearer\",\"expires_in\":900}}");
    (StatusCode::OK, [("content-type", "application/json")], body).into_response()
}

async fn api(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    let expected = format!("Bearer {OAUTH_ACCESS_TOKEN}");
    match record(&state, &uri, &headers) {
        Some(value) if value == expected => (StatusCode::OK, "{\"api\":true}").into_response(),
        _ => StatusCode::UNAUTHORIZED.into_response(),
    }
}

/// Starts a server on 127.0.0.1:0 in the current tokio runtime.
pub async fn server() -> (Server, Arc<AtomicUsize>) {
    let seen = Arc::new(Seen::default());
    let token_fetches = Arc::new(AtomicUsize::new(0));
    let state = AppState {
        seen: seen.clone(),
        token_fetches: token_fetches.clone(),
    };
    let app = Router::new()
        .route("/ok", get(ok))
        .route("/landing", get(ok))
        .route("/secret", get(secret))
        .route("/redirect", get(redirect))
        .route("/huge", get(huge))
        .route("/upload", post(upload))
        .route("/huge-chunked", get(huge_chunked))
        .route("/slow", get(slow))
        .route("/oauth2/token", post(token))
        .route("/api", get(api))
        .with_state(state);
    let addr = serve_on_loopback(app).await;
    (Server { addr, seen }, token_fetches)
}

/// Serves `app` on `127.0.0.1:0` for the rest of the test; its address.
pub async fn serve_on_loopback(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("bound address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// Opens (or creates) the embedded store in `dir`.
pub fn open_store(dir: &std::path::Path) -> Arc<dyn xla_host::store::Store> {
    Arc::new(xla_host::store_sled::SledStore::open(dir).expect("the store opens"))
}

/// Runs a future to completion outside an async test (the store's
/// methods are async).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(future)
}
