//! The layers every request passes, outermost first: a request id
//! (`x-request-id`, taken from the caller when it sends a sane one), a
//! tracing span per request, panics turned into 500s, the per-request
//! timeout, the body cap, and the problem layer that makes every error
//! response an RFC 9457 document carrying the request id, whatever produced
//! it (a handler, an extractor's rejection, the router's 404 and 405, the
//! body cap's 413, the timeout).

use crate::config::ApiConfig;
use crate::error::{ApiError, PROBLEM_JSON};
use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use std::sync::atomic::{AtomicU64, Ordering};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// The request id header.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Largest error body rewritten into a problem document; larger ones are
/// replaced whole.
const ERROR_BODY_CAP: usize = 64 * 1024;

/// Request ids: a per-process random prefix and a counter.
#[derive(Clone)]
struct Ids {
    prefix: std::sync::Arc<str>,
    next: std::sync::Arc<AtomicU64>,
}

impl Ids {
    fn new() -> Ids {
        let mut bytes = [0u8; 4];
        // Without OS randomness the ids are still unique within the process.
        let _ = getrandom::fill(&mut bytes);
        Ids {
            prefix: hex::encode(bytes).into(),
            next: std::sync::Arc::new(AtomicU64::new(1)),
        }
    }
}

impl MakeRequestId for Ids {
    fn make_request_id<B>(&mut self, request: &axum::http::Request<B>) -> Option<RequestId> {
        // A caller's own id is kept when it is short and printable (it lands in logs).
        if let Some(theirs) = request.headers().get(&REQUEST_ID)
            && theirs.len() <= 64
            && theirs.as_bytes().iter().all(|b| b.is_ascii_graphic())
        {
            return Some(RequestId::new(theirs.clone()));
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&format!("{}-{n}", self.prefix))
            .ok()
            .map(RequestId::new)
    }
}

/// `router` with the layers every request passes.
pub fn layered(router: Router, config: &ApiConfig) -> Router {
    let timeout = config.request_timeout();
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(RequestBodyLimitLayer::new(config.body_limit()))
        .layer(TimeoutLayer::with_status_code(StatusCode::GATEWAY_TIMEOUT, timeout))
        .layer(middleware::from_fn(problems))
        .layer(middleware::from_fn(count))
        .layer(CatchPanicLayer::new())
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<Body>| {
                let id = request
                    .headers()
                    .get(&REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                // The path only: a query may carry a filter value, never a token.
                tracing::info_span!("request", id = %id, method = %request.method(), path = %request.uri().path())
            }),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, Ids::new()))
}

async fn not_found(request: Request) -> ApiError {
    ApiError::NotFound(format!(
        "no route {} {}; the routes are listed in /v1/openapi.json",
        request.method(),
        xla_types::untrusted::escape_capped(request.uri().path(), 200)
    ))
}

async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::MethodNotAllowed(format!(
        "{} is not allowed on {}; /v1/openapi.json lists each route's methods",
        request.method(),
        xla_types::untrusted::escape_capped(request.uri().path(), 200)
    ))
}

/// Counts each request by route template (never the concrete path: it
/// holds tenant and ticket names), method and status, with its latency.
async fn count(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = request.method().to_string();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("xla_http_requests_total", "route" => route.clone(), "method" => method.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("xla_http_request_duration_seconds", "route" => route, "method" => method)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Installs the process's Prometheus recorder (once; later calls get the
/// same handle), with latency buckets from 1 ms to 30 s.
///
/// # Errors
/// When another recorder is already installed.
pub fn install_metrics() -> Result<metrics_exporter_prometheus::PrometheusHandle, String> {
    static HANDLE: std::sync::OnceLock<Result<metrics_exporter_prometheus::PrometheusHandle, String>> =
        std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
            const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0];
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &BUCKETS)
                .map_err(|e| e.to_string())?
                .install_recorder()
                .map_err(|e| e.to_string())
        })
        .clone()
}

/// Makes every error response a problem document with the request id.
async fn problems(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let response = next.run(request).await;
    let status = response.status();
    // The dashboard's pages answer their errors as pages of their own.
    let is_page = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if !(status.is_client_error() || status.is_server_error()) || is_page {
        return response;
    }
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == PROBLEM_JSON.as_bytes());
    let (parts, body) = response.into_parts();
    let bytes = to_bytes(body, ERROR_BODY_CAP).await.unwrap_or_default();
    let mut problem = if is_problem {
        match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(value) => value,
            Err(_) => to_problem(status, &bytes),
        }
    } else {
        to_problem(status, &bytes)
    };
    if let (Some(id), Some(object)) = (&id, problem.as_object_mut()) {
        object.insert("request_id".into(), id.clone().into());
    }
    let mut rebuilt = (status, axum::Json(problem)).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rebuilt.headers_mut().insert(name.clone(), value.clone());
        }
    }
    rebuilt
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    rebuilt
}

/// A problem document for an error some layer answered in plain text: the
/// text is kept for client errors (an extractor's precise complaint), never
/// for server errors.
fn to_problem(status: StatusCode, body: &[u8]) -> serde_json::Value {
    // A rejection's text quotes the request (a bad query value, a path
    // segment): escaped and capped like every message of ours.
    let text = String::from_utf8_lossy(body);
    let escaped = xla_types::untrusted::escape_capped(text.trim(), 300);
    let said: &str = &escaped;
    let error = match status {
        StatusCode::NOT_FOUND => ApiError::NotFound(said.to_string()),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed(said.to_string()),
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(
            "the request body is larger than the cap ([api] body_limit_mib); send less, or raise the cap".into(),
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType(said.to_string()),
        StatusCode::UNPROCESSABLE_ENTITY => ApiError::Unprocessable(said.to_string()),
        StatusCode::GATEWAY_TIMEOUT | StatusCode::REQUEST_TIMEOUT => ApiError::Timeout,
        s if s.is_client_error() => ApiError::BadRequest(if said.is_empty() {
            s.canonical_reason().unwrap_or("bad request").to_string()
        } else {
            said.to_string()
        }),
        _ => ApiError::Internal(said.to_string()),
    };
    if let ApiError::Internal(message) = &error {
        tracing::error!(status = status.as_u16(), "{message}");
    }
    let mut problem = serde_json::to_value(error.problem(None)).unwrap_or_default();
    // The layer's own status wins (a 400 from a rejection stays a 400).
    if let Some(object) = problem.as_object_mut() {
        object.insert("status".into(), status.as_u16().into());
    }
    problem
}
