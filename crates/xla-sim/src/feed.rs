//! A paged JSON observation feed: the wire format of the `json-feed`
//! connector, served on loopback with a bearer token, so the demo shows a
//! connector pulling through the sandbox with a credential it never sees.
//!
//! `GET /xla/observations?limit=N[&after=CURSOR]` answers
//! `{"observations": [...], "next": "CURSOR" | null}`.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The feed's data and the token it requires.
#[derive(Debug)]
pub struct Feed {
    observations: Vec<serde_json::Value>,
    token: String,
    requests: AtomicU64,
    faults: std::sync::Mutex<Vec<Fault>>,
}

/// A failure the feed answers the next request with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 503 Service Unavailable.
    Unavailable,
    /// 429 Too Many Requests with `Retry-After` in seconds.
    RateLimited(u32),
}

/// Services of the demo organisation, with how happy their users are on
/// average: the feed's ratings are drawn around these.
const SERVICES: [(&str, f64); 4] = [("Email", 8.6), ("VPN", 5.1), ("Laptop", 7.4), ("Service Portal", 8.9)];

impl Feed {
    /// A seeded feed of happiness ratings on resolved tickets: the same seed
    /// gives the same data.
    pub fn seeded(seed: u64, tickets: usize, token: &str) -> Feed {
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let mut next = move || {
            // xorshift64*: small, seedable, good enough for demo data.
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x2545F4914F6CDD1D)
        };
        let start = 1_761_955_200_000_i64; // 2025-11-01T00:00:00Z
        let observations = (0..tickets)
            .map(|i| {
                let (service, mean) = SERVICES[(next() % SERVICES.len() as u64) as usize];
                let noise = (next() % 700) as f64 / 100.0 - 3.5;
                let rating = (mean + noise).round().clamp(0.0, 10.0);
                let at = start + (next() % (30 * 86_400_000)) as i64;
                serde_json::json!({
                    "id": format!("resp-{i:06}"),
                    "metric": "happiness_rating",
                    "layer": "experience",
                    "value": rating,
                    "at": at,
                    "dimensions": { "ticket": format!("INC{:07}", 10_000 + i), "service": service }
                })
            })
            .collect();
        Feed {
            observations,
            token: token.to_string(),
            requests: AtomicU64::new(0),
            faults: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Number of observations served in all.
    pub fn len(&self) -> usize {
        self.observations.len()
    }

    /// Whether the feed is empty.
    pub fn is_empty(&self) -> bool {
        self.observations.is_empty()
    }

    /// Answers the next requests with these faults, in order.
    pub fn fail_next(&self, faults: &[Fault]) {
        if let Ok(mut queue) = self.faults.lock() {
            queue.extend_from_slice(faults);
        }
    }

    fn next_fault(&self) -> Option<Fault> {
        let mut queue = self.faults.lock().ok()?;
        (!queue.is_empty()).then(|| queue.remove(0))
    }

    /// Requests answered so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

#[derive(Deserialize)]
struct PageQuery {
    limit: Option<usize>,
    after: Option<String>,
}

async fn observations(State(feed): State<Arc<Feed>>, headers: HeaderMap, Query(query): Query<PageQuery>) -> Response {
    feed.requests.fetch_add(1, Ordering::Relaxed);
    let expected = format!("Bearer {}", feed.token);
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        let body = serde_json::json!({"error": {"message": "missing or wrong bearer token"}});
        return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    }
    match feed.next_fault() {
        Some(Fault::Unavailable) => {
            let body = serde_json::json!({"error": {"message": "try again later"}});
            return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
        }
        Some(Fault::RateLimited(seconds)) => {
            let body = serde_json::json!({"error": {"message": "rate limit exceeded"}});
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", seconds.to_string())],
                Json(body),
            )
                .into_response();
        }
        None => {}
    }
    let limit = query.limit.unwrap_or(100).clamp(1, 10_000);
    let start = match query.after.as_deref().map(str::parse::<usize>) {
        None => 0,
        Some(Ok(offset)) => offset,
        Some(Err(_)) => {
            let body = serde_json::json!({"error": {"message": "`after` must be a cursor from a previous page"}});
            return (StatusCode::BAD_REQUEST, Json(body)).into_response();
        }
    };
    let end = (start + limit).min(feed.observations.len());
    let page = feed.observations.get(start..end).unwrap_or_default();
    let next = (end < feed.observations.len()).then(|| end.to_string());
    Json(serde_json::json!({ "observations": page, "next": next })).into_response()
}

/// The feed's routes.
pub fn router(feed: Arc<Feed>) -> Router {
    Router::new()
        .route("/xla/observations", get(observations))
        .with_state(feed)
}

/// Serves the feed on `127.0.0.1:0`; returns the bound address.
pub async fn serve(feed: Arc<Feed>) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router(feed)).await {
            tracing::error!("feed simulator stopped: {e}");
        }
    });
    Ok(addr)
}
