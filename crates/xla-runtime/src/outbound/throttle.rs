//! What upstreams say about when to come back, learnt from every response
//! and shared by every connector instance of the process.
//!
//! The host sees each response before the plugin does, so it reads the
//! throttling headers once for all plugins, in every form the protocol
//! allows, and keeps one record per origin:
//!
//! - a **hold**: no request leaves for the origin before a time. A 429 or
//!   503 sets it from `Retry-After` (delta-seconds or an HTTP-date, RFC 9110
//!   §10.2.3), else on a 429 from the rate-limit reset (`X-RateLimit-Reset`,
//!   `RateLimit-Reset`, or the IETF `RateLimit: ...;t=N` field of
//!   draft-ietf-httpapi-ratelimit-headers). A throttle that says nothing
//!   (ServiceNow's 429 when its request queue or semaphores are full, a bare
//!   503) holds for an exponential backoff with jitter, which grows with
//!   each such answer in a row from the origin, whoever's request got it;
//! - a **budget**: successful pages that state the rule (`X-RateLimit-Limit`
//!   and `X-RateLimit-Reset`, ServiceNow's rate limit rules; or
//!   `RateLimit-Limit` / `RateLimit-Policy`) let the host count the requests
//!   it sends in the window and hold the origin at the reset once the limit
//!   is spent, instead of spending a request to learn it from a 429. A
//!   `remaining` count, when the source sends one, replaces the host's count.
//!
//! A request to a held origin waits for the hold when it ends before the
//! plugin call's deadline; otherwise the host answers at once with a 429
//! and a `Retry-After` of the time left, as the upstream itself would, and
//! the sync engine (which reads [`Throttles::hold`] through the policy)
//! decides whether the run waits or stops and is resumed at that time.
//!
//! Times are wall-clock unix milliseconds from an injectable clock, since
//! the sources speak in dates and epoch seconds; tests move the clock.

use super::grant::Origin;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The longest hold honoured; a header asking for more (a misparsed date, a
/// reset years away) is cut to this, so one bad answer cannot close an
/// origin for good.
pub const MAX_HOLD: Duration = Duration::from_secs(24 * 3600);

/// A clock: wall-clock unix milliseconds.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The backoff for throttles that do not say when to come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Hold after the first such answer (before jitter).
    pub base: Duration,
    /// Longest hold.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// `base * 2^(strikes-1)`, capped, with "equal jitter" (half fixed, half
    /// random), so instances that were turned away together do not come back
    /// together. `jitter` is in `0.0..1.0`.
    pub fn after(&self, strikes: u32, jitter: f64) -> Duration {
        let factor = 1u32.checked_shl(strikes.saturating_sub(1)).unwrap_or(u32::MAX);
        let full = self.base.saturating_mul(factor).min(self.max);
        let half = full / 2;
        half + half.mul_f64(jitter.clamp(0.0, 1.0))
    }
}

/// Why an origin is held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// The upstream said when to come back, in the named header.
    Told {
        /// The header that said it (`Retry-After`, `X-RateLimit-Reset`, ...).
        header: &'static str,
        /// The status that carried it.
        status: u16,
    },
    /// The upstream throttled without saying when: a shared backoff.
    Backoff {
        /// Such answers in a row from this origin.
        strikes: u32,
        /// The status (429 or 503).
        status: u16,
    },
    /// The requests sent in the rule's window reached its limit.
    Budget {
        /// Requests the rule allows per window.
        limit: u64,
    },
}

impl Cause {
    /// Whether the upstream fixed the time (a told wait or a spent budget),
    /// rather than the host guessing it by backoff.
    pub fn is_stated(&self) -> bool {
        !matches!(self, Cause::Backoff { .. })
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Told { header, status } => write!(f, "it answered {status} with `{header}`"),
            Cause::Backoff { strikes, status } => write!(
                f,
                "it answered {status} without saying when to come back ({strikes} in a row; backing off)"
            ),
            Cause::Budget { limit } => write!(
                f,
                "its rate limit rule allows {limit} requests per window and they are spent until its reset"
            ),
        }
    }
}

/// An origin the host holds requests to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// The upstream.
    pub origin: Origin,
    /// Until when, unix ms.
    pub until_ms: i64,
    /// Why.
    pub cause: Cause,
}

impl Hold {
    /// Time left from `now_ms` (zero once passed).
    pub fn remaining(&self, now_ms: i64) -> Duration {
        Duration::from_millis(self.until_ms.saturating_sub(now_ms).max(0) as u64)
    }
}

impl fmt::Display for Hold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} is held until {} because {}",
            self.origin,
            date(self.until_ms),
            self.cause
        )
    }
}

/// `2026-10-05T12:30:00Z` for unix ms: logs and run records speak RFC 3339.
pub fn date(unix_ms: i64) -> String {
    let secs = unix_ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// One origin's record.
#[derive(Debug, Default, Clone)]
struct Upstream {
    hold: Option<Hold>,
    /// Throttles without a stated time, in a row.
    strikes: u32,
    window: Option<Window>,
}

/// A rate limit rule's window, as the upstream states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    limit: u64,
    reset_ms: i64,
    /// Requests sent in the window (the host's count, or the upstream's
    /// own once it sends a `remaining`).
    sent: u64,
}

/// What a response says about throttling, read from its headers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Said {
    /// When to come back (unix ms) and which header said it.
    pub retry_at: Option<(i64, &'static str)>,
    /// When the rate limit window resets (unix ms) and which header said it.
    pub reset_at: Option<(i64, &'static str)>,
    /// Requests per window.
    pub limit: Option<u64>,
    /// Requests left in the window.
    pub remaining: Option<u64>,
}

impl Said {
    /// Reads `headers` at `now_ms`. Unreadable values are ignored, as if absent.
    pub fn read(headers: &http::HeaderMap, now_ms: i64) -> Said {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
        let mut said = Said {
            retry_at: text("retry-after")
                .and_then(|v| retry_after(v, now_ms))
                .map(|at| (at, "Retry-After")),
            ..Said::default()
        };
        for (prefix, header) in [("x-ratelimit", "X-RateLimit-Reset"), ("ratelimit", "RateLimit-Reset")] {
            said.reset_at = said.reset_at.or_else(|| {
                text(&format!("{prefix}-reset"))
                    .and_then(|v| reset(v, now_ms))
                    .map(|at| (at, header))
            });
            said.limit = said
                .limit
                .or_else(|| text(&format!("{prefix}-limit")).and_then(leading_number));
            said.remaining = said
                .remaining
                .or_else(|| text(&format!("{prefix}-remaining")).and_then(leading_number));
        }
        if let Some(field) = text("ratelimit").and_then(|v| ietf_ratelimit(v, now_ms)) {
            said.remaining = said.remaining.or(field.0);
            said.reset_at = said.reset_at.or(field.1.map(|at| (at, "RateLimit")));
        }
        if said.limit.is_none() {
            said.limit = text("ratelimit-policy").and_then(|v| param(first_item(v), "q"));
        }
        said
    }
}

/// `Retry-After`: delta-seconds or an HTTP-date (IMF-fixdate, or the
/// obsolete RFC 850 and asctime forms, which recipients must accept).
fn retry_after(value: &str, now_ms: i64) -> Option<i64> {
    if let Some(seconds) = plain_number(value) {
        return Some(now_ms.saturating_add(seconds.saturating_mul(1000).min(i64::MAX as u64) as i64));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let ms = at.duration_since(UNIX_EPOCH).ok()?.as_millis();
    Some(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// A reset: epoch seconds (ServiceNow, GitHub), epoch milliseconds, or
/// delta-seconds (the IETF draft, many gateways). A number too small to be
/// a date of this century is a delta.
fn reset(value: &str, now_ms: i64) -> Option<i64> {
    let n = plain_number(value)?;
    let n = i64::try_from(n).ok()?;
    Some(if n >= 100_000_000_000 {
        n
    } else if n >= 1_000_000_000 {
        n.saturating_mul(1000)
    } else {
        now_ms.saturating_add(n.saturating_mul(1000))
    })
}

fn plain_number(value: &str) -> Option<u64> {
    let value = value.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// `500` or `500, 500;w=3600` (a limit with its policy): the first number.
fn leading_number(value: &str) -> Option<u64> {
    let digits: String = value.trim().chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The IETF `RateLimit` field, `"default";r=50;t=30` (items separated by
/// commas): the smallest remaining and, for the item with it, when it resets.
fn ietf_ratelimit(value: &str, now_ms: i64) -> Option<(Option<u64>, Option<i64>)> {
    let items = value.split(',').map(|item| (param(item, "r"), param(item, "t")));
    let tightest = items.min_by_key(|(remaining, _)| remaining.unwrap_or(u64::MAX))?;
    let reset = tightest
        .1
        .map(|t| now_ms.saturating_add(t.saturating_mul(1000).min(i64::MAX as u64) as i64));
    Some((tightest.0, reset))
}

fn first_item(value: &str) -> &str {
    value.split(',').next().unwrap_or_default()
}

/// The number of `;name=N` in a structured-field item.
fn param(item: &str, name: &str) -> Option<u64> {
    item.split(';').skip(1).find_map(|p| {
        let (key, value) = p.split_once('=')?;
        (key.trim() == name).then(|| plain_number(value))?
    })
}

/// The holds and budgets of every origin; one per process (see
/// [`Throttles::shared`]), or one per test with its own clock.
pub struct Throttles {
    upstreams: Mutex<HashMap<Origin, Upstream>>,
    backoff: Backoff,
    clock: Clock,
    jitter: Arc<dyn Fn() -> f64 + Send + Sync>,
}

impl fmt::Debug for Throttles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Throttles")
            .field("upstreams", &self.lock().len())
            .field("backoff", &self.backoff)
            .finish()
    }
}

impl Default for Throttles {
    fn default() -> Self {
        Throttles::new(Backoff::default(), Arc::new(wall_clock_ms), Arc::new(jitter))
    }
}

impl Throttles {
    /// A registry with its own backoff, clock (unix ms) and jitter (`0.0..1.0`).
    pub fn new(backoff: Backoff, clock: Clock, jitter: Arc<dyn Fn() -> f64 + Send + Sync>) -> Throttles {
        Throttles {
            upstreams: Mutex::new(HashMap::new()),
            backoff,
            clock,
            jitter,
        }
    }

    /// The process's registry: every policy uses it unless given another,
    /// so every instance and session reading one origin shares its holds.
    pub fn shared() -> Arc<Throttles> {
        static SHARED: OnceLock<Arc<Throttles>> = OnceLock::new();
        Arc::clone(SHARED.get_or_init(|| Arc::new(Throttles::default())))
    }

    /// Now, on this registry's clock, unix ms.
    pub fn now_ms(&self) -> i64 {
        (self.clock)()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Origin, Upstream>> {
        // A few plain fields, valid after any panic.
        self.upstreams.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The hold on `origin` in force now, if any: a stated or backoff hold,
    /// or the rule's budget spent until its reset.
    pub fn hold(&self, origin: &Origin) -> Option<Hold> {
        let now = self.now_ms();
        self.lock().get(origin).and_then(|up| current_hold(origin, up, now))
    }

    /// The longest hold in force over the origins `wanted` accepts.
    pub fn longest_hold(&self, wanted: impl Fn(&Origin) -> bool) -> Option<Hold> {
        let now = self.now_ms();
        self.lock()
            .iter()
            .filter(|(origin, _)| wanted(origin))
            .filter_map(|(origin, up)| current_hold(origin, up, now))
            .max_by_key(|hold| hold.until_ms)
    }

    /// A request to `origin` is about to leave: `Err` with the hold when it
    /// must not yet; otherwise it is counted against the rule's budget.
    pub fn admit(&self, origin: &Origin) -> Result<(), Hold> {
        let now = self.now_ms();
        let mut upstreams = self.lock();
        let Some(up) = upstreams.get_mut(origin) else {
            return Ok(());
        };
        if let Some(hold) = current_hold(origin, up, now) {
            return Err(hold);
        }
        if let Some(window) = &mut up.window {
            window.sent += 1;
        }
        Ok(())
    }

    /// Learns from a response of `origin`.
    pub fn observe(&self, origin: &Origin, status: u16, headers: &http::HeaderMap) {
        let now = self.now_ms();
        let said = Said::read(headers, now);
        let mut upstreams = self.lock();
        let up = upstreams.entry(origin.clone()).or_default();
        learn_window(up, &said, now);
        match status {
            429 | 503 => self.throttled(origin, up, status, &said, now),
            // Any other answer means the origin takes requests again.
            _ if status < 500 => up.strikes = 0,
            _ => {}
        }
    }

    fn throttled(&self, origin: &Origin, up: &mut Upstream, status: u16, said: &Said, now: i64) {
        // A reset tells when a rate limit lifts, not when an outage ends.
        let stated = said.retry_at.or(said.reset_at.filter(|_| status == 429));
        let (until, cause) = match stated {
            Some((at, header)) => (at, Cause::Told { header, status }),
            None => {
                up.strikes = up.strikes.saturating_add(1);
                let wait = self.backoff.after(up.strikes, (self.jitter)());
                let cause = Cause::Backoff {
                    strikes: up.strikes,
                    status,
                };
                (now.saturating_add(wait.as_millis() as i64), cause)
            }
        };
        let longest = now.saturating_add(MAX_HOLD.as_millis() as i64);
        if until > longest {
            tracing::warn!(%origin, until = %date(until), "the upstream asked for a wait past the longest honoured ({} h); holding that long", MAX_HOLD.as_secs() / 3600);
        }
        let hold = Hold {
            origin: origin.clone(),
            until_ms: until.min(longest),
            cause,
        };
        tracing::info!(%origin, "{hold}");
        // A later answer never shortens a hold another request learnt.
        if up.hold.as_ref().is_none_or(|old| old.until_ms <= hold.until_ms) {
            up.hold = Some(hold);
        }
    }
}

/// The rule stated on a response: a new window starts the count at this
/// request; an upstream's own `remaining` replaces the count.
fn learn_window(up: &mut Upstream, said: &Said, now: i64) {
    let (Some(limit), Some((reset_ms, _))) = (said.limit, said.reset_at) else {
        return;
    };
    if reset_ms <= now || limit == 0 {
        return;
    }
    let same = up
        .window
        .as_ref()
        .is_some_and(|w| w.limit == limit && (w.reset_ms - reset_ms).abs() < 2_000);
    if !same {
        up.window = Some(Window {
            limit,
            reset_ms,
            sent: 1,
        });
    }
    if let (Some(window), Some(remaining)) = (&mut up.window, said.remaining) {
        window.sent = limit.saturating_sub(remaining);
    }
}

fn current_hold(origin: &Origin, up: &Upstream, now: i64) -> Option<Hold> {
    let told = up.hold.clone().filter(|hold| hold.until_ms > now);
    let budget = up
        .window
        .filter(|w| w.reset_ms > now && w.sent >= w.limit)
        .map(|w| Hold {
            origin: origin.clone(),
            until_ms: w.reset_ms,
            cause: Cause::Budget { limit: w.limit },
        });
    match (told, budget) {
        (Some(a), Some(b)) => Some(if a.until_ms >= b.until_ms { a } else { b }),
        (a, b) => a.or(b),
    }
}

fn wall_clock_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A jitter value in `0.0..1.0` that differs between calls and processes.
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_i64(wall_clock_ms());
    hasher.write_u128(std::time::Instant::now().elapsed().as_nanos());
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests;
