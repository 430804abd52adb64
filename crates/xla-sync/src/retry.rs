//! When to retry a failed pull, and how long to wait first.
//!
//! Two kinds of wait, kept apart (field case 05-servicenow-throttling.json):
//!
//! - **The source said when to come back** (`Retry-After` in seconds or as
//!   a date, a rate limit reset, a rule's budget the host saw spent): the
//!   engine waits exactly that long and the wait spends no attempt, since
//!   nothing failed. A run waits at most [`Backoff::max_retry_after`] in all;
//!   a longer wait ends the run as `stopped`, not failed, with every batch
//!   so far committed with its cursor, and the scheduler starts the next
//!   run when the source said (see `schedule`). The host is the authority on
//!   the time: it read the response's headers in every form
//!   (`xla_runtime::outbound::throttle`), while a plugin only passes on the
//!   seconds it could read.
//! - **It did not** (a 429 with no headers at all, a 503 without
//!   `Retry-After`, a timeout, a 5xx): a jittered exponential backoff, so many
//!   instances failing together do not come back together, spending one
//!   attempt each; after the last, the run fails naming the upstream. The
//!   host holds the upstream on its own shared backoff meanwhile, so every
//!   instance reading it holds off, not only the one that was answered.
//!
//! A refused credential is retried once at once, since the host has dropped
//! the refused OAuth token and fetches a fresh one. Errors that the same
//! call cannot outgrow (bad config, refused credentials, bad data, a memory
//! or fuel cap) end the run at once.

use crate::{SyncError, SyncTarget};
use std::sync::Arc;
use std::time::Duration;
use xla_runtime::outbound::{Hold, OutboundPolicy, throttle};
use xla_runtime::{PluginError, RuntimeError};

/// Exponential backoff with jitter, and how long a run waits for sources
/// that said when to come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Wait before the first retry (before jitter).
    pub base: Duration,
    /// Longest wait between attempts.
    pub max: Duration,
    /// Attempts per call, the first included; only failures the source did
    /// not put a time on spend them.
    pub attempts: u32,
    /// Longest a run waits, in all, for sources that said when to come back;
    /// past it the run stops (outcome `stopped`, not failed) and the next
    /// resumes from the stored cursor at the time the source named.
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
    /// Back off this long, then call again; spends an attempt.
    Retry(Duration),
    /// The source said to come back in this long: wait, then call again,
    /// without spending an attempt.
    Wait(Duration),
    /// The source said to come back in this long, past what the run may
    /// still wait: end the run as stopped; the next resumes then.
    Defer(Duration),
    /// Give up: the error ends the run.
    Fail,
}

/// What the host knows of the upstream after a failed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upstream {
    /// Time left of the hold in force on it.
    pub remaining: Duration,
    /// Whether the source fixed the time (`Retry-After`, a reset, a spent
    /// budget), rather than the host backing off.
    pub stated: bool,
}

impl Backoff {
    /// The decision after `attempt` (1-based) failed with `error`, with
    /// `upstream` the host's hold on the instance's upstreams (if any) and
    /// `waited` the time the run has already waited for told waits. `jitter`
    /// in `0.0..1.0` picks where in the upper half of the backoff to wait.
    pub fn decide(
        &self,
        attempt: u32,
        error: &RuntimeError,
        upstream: Option<Upstream>,
        waited: Duration,
        jitter: f64,
    ) -> Decision {
        if let Some(wait) = told_wait(error, upstream) {
            return if waited.saturating_add(wait) > self.max_retry_after {
                Decision::Defer(wait)
            } else {
                Decision::Wait(wait)
            };
        }
        if attempt >= self.attempts {
            return Decision::Fail;
        }
        match error {
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

/// How long the source said to wait, when it said: the host's reading
/// wins when it holds the upstream (it saw the headers in every form; its
/// own 429 for a backoff hold carries a `Retry-After` that is not the
/// source's); else the plugin's seconds. A zero says nothing (a plugin's
/// "rate limited, no time given"), so it backs off instead of spinning.
fn told_wait(error: &RuntimeError, upstream: Option<Upstream>) -> Option<Duration> {
    let RuntimeError::Plugin { error, .. } = error else {
        return None;
    };
    let plugin = match error {
        PluginError::RateLimited(seconds) => Duration::from_secs(u64::from(*seconds)),
        PluginError::Transient(_) => Duration::ZERO,
        _ => return None,
    };
    let wait = match upstream {
        Some(Upstream { stated: false, .. }) => return None,
        Some(Upstream { remaining, .. }) => remaining.max(plugin),
        None => plugin,
    };
    (!wait.is_zero()).then_some(wait)
}

/// A run's retries: the attempts of the call in progress, the told waits
/// so far, and where to read what the host knows of the upstreams.
pub struct Retries<'a> {
    backoff: &'a Backoff,
    outbound: Option<Arc<OutboundPolicy>>,
    waited: Duration,
}

impl<'a> Retries<'a> {
    /// Retries by `backoff`, reading holds from `outbound` (the session's
    /// policy; `None` for a connector without grants).
    pub fn new(backoff: &'a Backoff, outbound: Option<Arc<OutboundPolicy>>) -> Retries<'a> {
        Retries {
            backoff,
            outbound,
            waited: Duration::ZERO,
        }
    }

    /// The decision after `attempt` failed with `error`, and the host's
    /// hold behind it (to name the upstream); a told wait is counted.
    pub fn decide(&mut self, attempt: u32, error: &RuntimeError, jitter: f64) -> (Decision, Option<Hold>) {
        let hold = self.outbound.as_ref().and_then(|policy| policy.hold());
        let upstream = hold
            .as_ref()
            .zip(self.outbound.as_ref())
            .map(|(hold, policy)| Upstream {
                remaining: hold.remaining(policy.now_ms()),
                stated: hold.cause.is_stated(),
            });
        let decision = self.backoff.decide(attempt, error, upstream, self.waited, jitter);
        if let Decision::Wait(wait) = decision {
            self.waited = self.waited.saturating_add(wait);
        }
        (decision, hold)
    }
}

/// Whether `error` is a throttle, so that running out of attempts names
/// the upstream that kept throttling.
pub fn is_throttle(error: &RuntimeError, hold: Option<&Hold>) -> bool {
    matches!(
        error,
        RuntimeError::Plugin {
            error: PluginError::RateLimited(_),
            ..
        }
    ) || hold.is_some()
}

/// The run stops for a wait longer than it may still wait.
pub(crate) fn deferred(
    target: &SyncTarget,
    step: &str,
    wait: Duration,
    hold: Option<&Hold>,
    error: &RuntimeError,
) -> SyncError {
    let at = hold.map(|hold| format!(", at {}", throttle::date(hold.until_ms)));
    SyncError::Deferred {
        instance: target.instance.clone(),
        step: step.to_string(),
        wait,
        asked: format!(
            "{} asked to come back in {} s ({}){}",
            upstream_name(hold),
            wait.as_secs(),
            reason(hold, error),
            at.unwrap_or_default()
        ),
    }
}

/// The attempts ran out on an upstream that kept throttling.
pub(crate) fn throttled(
    target: &SyncTarget,
    step: &str,
    attempts: u32,
    hold: Option<&Hold>,
    error: &RuntimeError,
) -> SyncError {
    SyncError::Throttled {
        instance: target.instance.clone(),
        step: step.to_string(),
        upstream: upstream_name(hold),
        attempts,
        reason: reason(hold, error),
    }
}

fn upstream_name(hold: Option<&Hold>) -> String {
    hold.map_or_else(|| "the source".to_string(), |hold| hold.origin.to_string())
}

fn reason(hold: Option<&Hold>, error: &RuntimeError) -> String {
    match hold {
        Some(hold) => hold.cause.to_string(),
        None => format!("the connector said: {error}"),
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

    const NONE: Duration = Duration::ZERO;

    fn stated(seconds: u64) -> Option<Upstream> {
        Some(Upstream {
            remaining: Duration::from_secs(seconds),
            stated: true,
        })
    }

    #[test]
    fn a_told_wait_is_honoured_exactly_and_spends_no_attempt() {
        let backoff = Backoff::default();
        let limited = plugin(PluginError::RateLimited(7));
        assert_eq!(
            backoff.decide(1, &limited, None, NONE, 0.9),
            Decision::Wait(Duration::from_secs(7))
        );
        assert_eq!(
            backoff.decide(backoff.attempts, &limited, None, NONE, 0.9),
            Decision::Wait(Duration::from_secs(7)),
            "even with no attempt left"
        );
        // The host read an HTTP-date the plugin could not: its time wins.
        assert_eq!(
            backoff.decide(1, &plugin(PluginError::RateLimited(0)), stated(95), NONE, 0.0),
            Decision::Wait(Duration::from_secs(95))
        );
        // A 503 with Retry-After reaches the engine as a transient error.
        assert_eq!(
            backoff.decide(1, &plugin(PluginError::Transient("503".into())), stated(30), NONE, 0.0),
            Decision::Wait(Duration::from_secs(30))
        );
    }

    /// field case 05-servicenow-throttling.json, A_long_wait: 1740 s.
    #[test]
    fn field_case_05_a_a_wait_past_the_runs_budget_defers_the_run_instead_of_failing_it() {
        let backoff = Backoff::default();
        let limited = plugin(PluginError::RateLimited(1740));
        assert_eq!(
            backoff.decide(1, &limited, stated(1740), NONE, 0.0),
            Decision::Defer(Duration::from_secs(1740))
        );
        let short = plugin(PluginError::RateLimited(120));
        assert_eq!(
            backoff.decide(1, &short, None, Duration::from_secs(800), 0.0),
            Decision::Defer(Duration::from_secs(120)),
            "waits add up: a source that keeps saying 'later' cannot hold a run forever"
        );
    }

    /// field case 05-servicenow-throttling.json, B_no_headers.
    #[test]
    fn field_case_05_b_a_throttle_without_a_time_backs_off_with_jitter_and_runs_out() {
        let backoff = Backoff::default();
        let bare = plugin(PluginError::RateLimited(0));
        let host_backoff = Some(Upstream {
            remaining: Duration::from_secs(3),
            stated: false,
        });
        for upstream in [None, host_backoff] {
            let low = backoff.decide(2, &bare, upstream, NONE, 0.0);
            let high = backoff.decide(2, &bare, upstream, NONE, 0.999);
            assert_eq!(low, Decision::Retry(Duration::from_millis(500)));
            assert!(matches!(high, Decision::Retry(d) if d > Duration::from_millis(990)));
            assert_eq!(backoff.decide(6, &bare, upstream, NONE, 0.5), Decision::Fail);
        }
        // The host's own 429 while it backs off carries a Retry-After; that
        // is the host's guess, not the source's word, so it spends attempts.
        assert_eq!(
            backoff.decide(6, &plugin(PluginError::RateLimited(3)), host_backoff, NONE, 0.5),
            Decision::Fail
        );
    }

    #[test]
    fn transient_errors_back_off_exponentially_within_jitter() {
        let backoff = Backoff::default();
        let error = plugin(PluginError::Transient("503".into()));
        for (attempt, full) in [(1, 500), (2, 1000), (3, 2000), (5, 8000)] {
            let low = backoff.decide(attempt, &error, None, NONE, 0.0);
            let high = backoff.decide(attempt, &error, None, NONE, 0.999_999);
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
        assert_eq!(
            backoff.decide(6, &error, None, NONE, 0.5),
            Decision::Fail,
            "attempts run out"
        );
        let long = Backoff {
            attempts: 100,
            ..Backoff::default()
        };
        assert!(matches!(long.decide(40, &error, None, NONE, 1.0), Decision::Retry(d) if d <= long.max));
    }

    #[test]
    fn permanent_errors_end_the_run() {
        let backoff = Backoff::default();
        let auth = plugin(PluginError::Auth("401".into()));
        assert_eq!(
            backoff.decide(1, &auth, None, NONE, 0.5),
            Decision::Retry(Duration::ZERO),
            "once, for an expired token"
        );
        assert_eq!(backoff.decide(2, &auth, None, NONE, 0.5), Decision::Fail);
        for error in [
            PluginError::Config("page_size".into()),
            PluginError::BadData("INC1".into()),
            PluginError::Permanent("403".into()),
        ] {
            assert_eq!(backoff.decide(1, &plugin(error), stated(10), NONE, 0.5), Decision::Fail);
        }
        let jitters: Vec<f64> = (0..4).map(|_| jitter()).collect();
        assert!(jitters.iter().all(|j| (0.0..1.0).contains(j)));
    }
}
