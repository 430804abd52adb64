//! When to retry a failed pull, and how long to wait first.
//!
//! A rate limit is honoured exactly: the source said how long, so the engine
//! waits that long, not a guess around it. Other transient failures wait a
//! jittered exponential backoff, so many instances failing together do not
//! come back together. A refused credential is retried once at once, since
//! the host has dropped the refused OAuth token and fetches a fresh one. Errors that the same call cannot outgrow (bad config,
//! refused credentials, bad data, a memory or fuel cap) end the run at once.

use std::time::Duration;
use xla_runtime::{PluginError, RuntimeError};

/// Exponential backoff with jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Wait before the first retry (before jitter).
    pub base: Duration,
    /// Longest wait between attempts.
    pub max: Duration,
    /// Attempts per call, the first included.
    pub attempts: u32,
    /// Longest `Retry-After` honoured; a source asking for more ends the run
    /// (the next run resumes from the stored cursor).
    pub max_retry_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(500),
            max: Duration::from_secs(60),
            attempts: 6,
            max_retry_after: Duration::from_secs(15 * 60),
        }
    }
}

/// What to do after a failed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Wait this long, then call again.
    Retry(Duration),
    /// Give up: the error ends the run.
    Fail,
}

impl Backoff {
    /// The decision after `attempt` (1-based) failed with `error`. `jitter`
    /// in `0.0..1.0` picks where in the upper half of the window to wait.
    pub fn decide(&self, attempt: u32, error: &RuntimeError, jitter: f64) -> Decision {
        if attempt >= self.attempts {
            return Decision::Fail;
        }
        match error {
            RuntimeError::Plugin {
                error: PluginError::RateLimited(seconds),
                ..
            } => {
                let wait = Duration::from_secs(u64::from(*seconds));
                if wait > self.max_retry_after {
                    Decision::Fail
                } else {
                    Decision::Retry(wait)
                }
            }
            RuntimeError::Plugin { error, .. } if error.is_retryable() => {
                Decision::Retry(self.backoff(attempt, jitter))
            }
            // An OAuth token may have expired under the call; the host drops
            // a token the source refused, so one immediate retry fetches a
            // fresh one. A wrong secret fails again and ends the run.
            RuntimeError::Plugin {
                error: PluginError::Auth(_),
                ..
            } if attempt == 1 => Decision::Retry(Duration::ZERO),
            // A slow source, a crashed instance (replaced on the next call)
            // or a full pool may pass; a memory or fuel cap will not.
            RuntimeError::Deadline { .. } | RuntimeError::Trap { .. } | RuntimeError::Busy { .. } => {
                Decision::Retry(self.backoff(attempt, jitter))
            }
            _ => Decision::Fail,
        }
    }

    /// `base * 2^(attempt-1)`, capped, with "equal jitter": half fixed, half random.
    fn backoff(&self, attempt: u32, jitter: f64) -> Duration {
        let exponential = self
            .base
            .saturating_mul(1u32.checked_shl(attempt.saturating_sub(1)).unwrap_or(u32::MAX))
            .min(self.max);
        let half = exponential / 2;
        half + half.mul_f64(jitter.clamp(0.0, 1.0))
    }
}

/// A jitter value in `0.0..1.0` that differs between calls and processes.
pub fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded per process; the clock makes calls differ.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use xla_runtime::PluginId;

    fn plugin(error: PluginError) -> RuntimeError {
        RuntimeError::Plugin {
            plugin: PluginId::new("servicenow", "0.1.0"),
            error,
        }
    }

    #[test]
    fn retry_after_is_honoured_exactly_and_capped() {
        let backoff = Backoff::default();
        assert_eq!(
            backoff.decide(1, &plugin(PluginError::RateLimited(7)), 0.9),
            Decision::Retry(Duration::from_secs(7))
        );
        assert_eq!(
            backoff.decide(1, &plugin(PluginError::RateLimited(3600)), 0.0),
            Decision::Fail,
            "an hour's wait ends the run; the next resumes from the cursor"
        );
    }

    #[test]
    fn transient_errors_back_off_exponentially_within_jitter() {
        let backoff = Backoff::default();
        let error = plugin(PluginError::Transient("503".into()));
        for (attempt, full) in [(1, 500), (2, 1000), (3, 2000), (5, 8000)] {
            let low = backoff.decide(attempt, &error, 0.0);
            let high = backoff.decide(attempt, &error, 0.999_999);
            assert_eq!(
                low,
                Decision::Retry(Duration::from_millis(full / 2)),
                "attempt {attempt}"
            );
            let Decision::Retry(high) = high else {
                panic!("attempt {attempt} retries")
            };
            assert!(high <= Duration::from_millis(full) && high > Duration::from_millis(full * 99 / 100));
        }
        assert_eq!(backoff.decide(6, &error, 0.5), Decision::Fail, "attempts run out");
        let long = Backoff {
            attempts: 100,
            ..Backoff::default()
        };
        assert!(matches!(long.decide(40, &error, 1.0), Decision::Retry(d) if d <= long.max));
    }

    #[test]
    fn permanent_errors_end_the_run() {
        let backoff = Backoff::default();
        let auth = plugin(PluginError::Auth("401".into()));
        assert_eq!(
            backoff.decide(1, &auth, 0.5),
            Decision::Retry(Duration::ZERO),
            "once, for an expired token"
        );
        assert_eq!(backoff.decide(2, &auth, 0.5), Decision::Fail);
        for error in [
            PluginError::Config("page_size".into()),
            PluginError::BadData("INC1".into()),
            PluginError::Permanent("403".into()),
        ] {
            assert_eq!(backoff.decide(1, &plugin(error), 0.5), Decision::Fail);
        }
        let jitters: Vec<f64> = (0..4).map(|_| jitter()).collect();
        assert!(jitters.iter().all(|j| (0.0..1.0).contains(j)));
    }
}
