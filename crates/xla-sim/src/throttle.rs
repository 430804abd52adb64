//! Throttling as sources do it, in every shape they answer with (field case
//! 05-servicenow-throttling.json): a 429 asking for a long wait with the
//! rate limit rule's headers, a 429 with no headers at all (ServiceNow's
//! answer when its request queue or semaphores are full), a `Retry-After`
//! given as an HTTP-date, a 503 without `Retry-After`.
//!
//! A [`Throttler`] sits in front of a simulator's API routes as a layer and
//! answers the requests its rules hit, by its own request count, before the
//! simulator sees them; the rest pass through. A rule's answer is fixed, so
//! a test that says "the second request gets a 429 with no headers" gets
//! exactly that. Successful pages that state the rule's limit and reset
//! come from the simulator itself (ServiceNow's `RateLimit` option).

use crate::fault::Requests;
use crate::lock;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How a request is throttled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Throttle {
    /// 429 with `Retry-After` in seconds, `X-RateLimit-Limit`,
    /// `X-RateLimit-Reset` (epoch seconds, the same moment) and
    /// `X-RateLimit-Rule`, and ServiceNow's error body: field case A.
    LongWait {
        /// Seconds in `Retry-After`.
        retry_after_secs: u64,
        /// The rule's limit, in `X-RateLimit-Limit`.
        limit: u32,
    },
    /// 429 with `Retry-After` as an HTTP-date this far ahead, and nothing else.
    RetryAt {
        /// Seconds from now (the date is whole seconds, rounded up).
        after_secs: u64,
    },
    /// 429 with no header and no body: field case B.
    Bare,
    /// 503 without `Retry-After`.
    Unavailable,
}

/// A throttle and the requests it hits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleRule {
    /// How.
    pub throttle: Throttle,
    /// Which requests (numbered from 1 by the throttler, in arrival order).
    pub on: Requests,
}

/// Throttles a simulator's API requests by rule; shared with the test that
/// sets the rules.
#[derive(Debug, Default)]
pub struct Throttler {
    rules: Mutex<Vec<ThrottleRule>>,
    seen: AtomicU64,
    answered: AtomicU64,
}

impl Throttler {
    /// Replaces the rules; the request count goes on.
    pub fn set(&self, rules: Vec<ThrottleRule>) {
        *lock(&self.rules) = rules;
    }

    /// API requests seen so far, throttled or not.
    pub fn seen(&self) -> u64 {
        self.seen.load(Ordering::Relaxed)
    }

    /// Requests answered with a throttle so far.
    pub fn answered(&self) -> u64 {
        self.answered.load(Ordering::Relaxed)
    }

    /// `router` with requests whose path starts with `prefix` passing
    /// through this throttler first.
    pub fn layer(self: &Arc<Self>, router: Router, prefix: &'static str) -> Router {
        let state = (Arc::clone(self), prefix);
        router.layer(middleware::from_fn_with_state(state, throttle))
    }

    /// The throttle for the next request, if a rule hits it.
    fn next(&self) -> Option<Throttle> {
        let number = self.seen.fetch_add(1, Ordering::Relaxed) + 1;
        let hit = lock(&self.rules)
            .iter()
            .find(|rule| rule.on.hits(number))
            .map(|rule| rule.throttle.clone());
        if hit.is_some() {
            self.answered.fetch_add(1, Ordering::Relaxed);
        }
        hit
    }
}

async fn throttle(
    State((throttler, prefix)): State<(Arc<Throttler>, &'static str)>,
    request: Request,
    next: Next,
) -> Response {
    if !request.uri().path().starts_with(prefix) {
        return next.run(request).await;
    }
    match throttler.next() {
        Some(throttle) => answer(&throttle, SystemTime::now()),
        None => next.run(request).await,
    }
}

/// The response for `throttle` at `now`.
pub fn answer(throttle: &Throttle, now: SystemTime) -> Response {
    match throttle {
        Throttle::LongWait {
            retry_after_secs,
            limit,
        } => long_wait(*retry_after_secs, *limit, now),
        Throttle::RetryAt { after_secs } => {
            let at = now + Duration::from_secs(after_secs + 1);
            let mut response = StatusCode::TOO_MANY_REQUESTS.into_response();
            let date = chrono::DateTime::<chrono::Utc>::from(at).format("%a, %d %b %Y %H:%M:%S GMT");
            if let Ok(value) = HeaderValue::from_str(&date.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        Throttle::Bare => (StatusCode::TOO_MANY_REQUESTS, Body::empty()).into_response(),
        Throttle::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, Body::empty()).into_response(),
    }
}

/// Field case A: the rule's headers and ServiceNow's error body.
fn long_wait(retry_after_secs: u64, limit: u32, now: SystemTime) -> Response {
    let reset = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() + retry_after_secs;
    let body = serde_json::json!({
        "error": {
            "message": "Rate limit exceeded",
            "detail": format!("The rate limit rule allows {limit} requests per hour for this user"),
        },
        "status": "failure",
    });
    let mut response = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    headers.insert("x-ratelimit-limit", HeaderValue::from(limit));
    headers.insert("x-ratelimit-reset", HeaderValue::from(reset));
    headers.insert(
        "x-ratelimit-rule",
        HeaderValue::from_static("b8c1e0d2a3f44f5a9e7d6c5b4a392817"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_shape_answers_as_the_field_case_says() {
        // 1791201660 + 1740 = 1791203400, the field case's reset.
        let now = UNIX_EPOCH + Duration::from_secs(1_791_201_660);
        let long = answer(
            &Throttle::LongWait {
                retry_after_secs: 1740,
                limit: 500,
            },
            now,
        );
        assert_eq!(long.status(), StatusCode::TOO_MANY_REQUESTS);
        let header = |name: &str| {
            long.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        assert_eq!(header("retry-after").as_deref(), Some("1740"));
        assert_eq!(header("x-ratelimit-reset").as_deref(), Some("1791203400"));
        assert_eq!(header("x-ratelimit-limit").as_deref(), Some("500"));
        let bare = answer(&Throttle::Bare, now);
        assert_eq!(bare.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(bare.headers().get(header::RETRY_AFTER).is_none());
        let dated = answer(&Throttle::RetryAt { after_secs: 1739 }, now);
        assert_eq!(
            dated.headers().get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()),
            Some("Mon, 05 Oct 2026 12:30:00 GMT")
        );
        assert_eq!(
            answer(&Throttle::Unavailable, now).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
