//! Request rate limits per upstream origin.
//!
//! One token bucket (GCRA, from `governor`) per rate-limited origin, shared
//! by every connector instance and session of the process: two instances
//! reading the same ServiceNow spend one budget. A request waits for its
//! token on a timer, never holding a thread. The wait counts against the
//! plugin call's deadline: when the token would come after it, the host
//! answers at once with a 429 and `Retry-After` instead of letting the call
//! run out of time, so the plugin reports `rate-limited` and the sync engine
//! waits that long before it pulls again.

use super::grant::Origin;
use governor::clock::{Clock, MonotonicClock};
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroU32;
use std::time::Duration;
use tokio::time::Instant;

/// How fast requests may go to one origin.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    requests_per_second: f64,
    burst: NonZeroU32,
    quota: Quota,
}

/// A rate that cannot work.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RateLimitError {
    /// Zero, negative, not a number, or too small or large to time.
    #[error(
        "requests_per_second must be a number above 0 and at most 1000000000, not {0}; write e.g. `requests_per_second = 5` (or 0.5 for one request every 2 s)"
    )]
    Rate(f64),
    /// A burst of zero would never let a request through.
    #[error("burst must be 1 or more; leave it out for the default (requests_per_second rounded up)")]
    Burst,
}

impl RateLimit {
    /// `requests_per_second` on average, with up to `burst` at once after an
    /// idle spell (default: the rate rounded up, at least 1).
    pub fn new(requests_per_second: f64, burst: Option<u32>) -> Result<RateLimit, RateLimitError> {
        if !(requests_per_second.is_finite() && requests_per_second > 0.0 && requests_per_second <= 1e9) {
            return Err(RateLimitError::Rate(requests_per_second));
        }
        let period = Duration::try_from_secs_f64(1.0 / requests_per_second)
            .map_err(|_| RateLimitError::Rate(requests_per_second))?;
        let default_burst = requests_per_second.ceil().clamp(1.0, f64::from(u32::MAX)) as u32;
        let burst = NonZeroU32::new(burst.unwrap_or(default_burst)).ok_or(RateLimitError::Burst)?;
        let quota = Quota::with_period(period)
            .ok_or(RateLimitError::Rate(requests_per_second))?
            .allow_burst(burst);
        Ok(RateLimit {
            requests_per_second,
            burst,
            quota,
        })
    }

    /// Requests per second on average.
    pub fn requests_per_second(&self) -> f64 {
        self.requests_per_second
    }

    /// Requests that may go at once after an idle spell.
    pub fn burst(&self) -> u32 {
        self.burst.get()
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} requests/s (burst {})", self.requests_per_second, self.burst)
    }
}

type Bucket = RateLimiter<NotKeyed, InMemoryState, MonotonicClock>;

/// The token buckets of every rate-limited origin; one per process, shared
/// by the outbound policies of all connector instances.
pub struct RateLimits {
    buckets: HashMap<Origin, (RateLimit, Bucket)>,
    clock: MonotonicClock,
}

impl fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let limits: HashMap<String, String> = self
            .buckets
            .iter()
            .map(|(origin, (limit, _))| (origin.to_string(), limit.to_string()))
            .collect();
        f.debug_struct("RateLimits").field("limits", &limits).finish()
    }
}

impl RateLimits {
    /// Buckets for these origins; an origin named twice keeps its last rate.
    pub fn new(limits: impl IntoIterator<Item = (Origin, RateLimit)>) -> RateLimits {
        let buckets = limits
            .into_iter()
            .map(|(origin, limit)| {
                let bucket = RateLimiter::direct_with_clock(limit.quota, MonotonicClock);
                (origin, (limit, bucket))
            })
            .collect();
        RateLimits {
            buckets,
            clock: MonotonicClock,
        }
    }

    /// The rate requests to `origin` are held to, if any.
    pub fn limit(&self, origin: &Origin) -> Option<RateLimit> {
        self.buckets.get(origin).map(|(limit, _)| *limit)
    }

    /// Whether no origin is limited.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// Waits for a token for a request to `origin` (at once for an origin
    /// with no limit). When the next token would come after `deadline`,
    /// returns at once with how long it would have waited.
    pub(crate) async fn acquire(&self, origin: &Origin, deadline: Option<Instant>) -> Result<(), Late> {
        let Some((limit, bucket)) = self.buckets.get(origin) else {
            return Ok(());
        };
        loop {
            let wait = match bucket.check() {
                Ok(()) => return Ok(()),
                Err(not_until) => not_until.wait_time_from(self.clock.now()),
            };
            // Another request may take the token first: then check again.
            let at = Instant::now() + wait;
            if deadline.is_some_and(|deadline| at > deadline) {
                return Err(Late { wait, limit: *limit });
            }
            tokio::time::sleep_until(at).await;
        }
    }
}

/// The next token for an origin comes after the call's deadline.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Late {
    /// How long the request would have waited.
    pub wait: Duration,
    /// The origin's rate.
    pub limit: RateLimit,
}

impl Late {
    /// Whole seconds for `Retry-After`, rounded up.
    pub fn retry_after_seconds(&self) -> u64 {
        self.wait.as_secs() + u64::from(self.wait.subsec_nanos() > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin::parse("https://acme.service-now.com").expect("origin")
    }

    #[test]
    fn rates_that_cannot_work_are_refused() {
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e-300, 1e12] {
            assert!(
                matches!(RateLimit::new(bad, None), Err(RateLimitError::Rate(_))),
                "{bad}"
            );
        }
        assert_eq!(RateLimit::new(5.0, Some(0)), Err(RateLimitError::Burst));
        let limit = RateLimit::new(2.5, None).expect("valid");
        assert_eq!(limit.burst(), 3, "the default burst is the rate rounded up");
        assert_eq!(RateLimit::new(0.2, None).expect("valid").burst(), 1);
    }

    #[tokio::test]
    async fn a_burst_goes_at_once_then_a_late_token_is_reported_not_awaited() {
        let limits = RateLimits::new([(origin(), RateLimit::new(0.01, Some(3)).expect("valid"))]);
        let deadline = Some(Instant::now() + Duration::from_secs(5));
        for _ in 0..3 {
            limits.acquire(&origin(), deadline).await.expect("within the burst");
        }
        // The fourth token comes in about 100 s: far past the deadline.
        let late = limits.acquire(&origin(), deadline).await.expect_err("late");
        assert!(late.wait > Duration::from_secs(5), "{late:?}");
        assert!(late.retry_after_seconds() >= late.wait.as_secs());
        let other = Origin::parse("https://other.example").expect("origin");
        assert!(limits.acquire(&other, deadline).await.is_ok(), "no limit, no wait");
    }
}
