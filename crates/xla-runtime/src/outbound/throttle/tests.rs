//! The registry on a clock the tests move.

use super::*;
use std::sync::atomic::{AtomicI64, Ordering};

/// The instant field case 05's long wait was answered: its `Retry-After`
/// (1740 s) and `X-RateLimit-Reset` (1791203400) name the same moment.
const FIELD_CASE_NOW_MS: i64 = (1_791_203_400 - 1740) * 1000;

struct Fixture {
    throttles: Throttles,
    now: Arc<AtomicI64>,
}

impl Fixture {
    fn new() -> Fixture {
        let now = Arc::new(AtomicI64::new(FIELD_CASE_NOW_MS));
        let clock = Arc::clone(&now);
        let backoff = Backoff {
            base: Duration::from_secs(2),
            max: Duration::from_secs(60),
        };
        let throttles = Throttles::new(
            backoff,
            Arc::new(move || clock.load(Ordering::SeqCst)),
            Arc::new(|| 0.5),
        );
        Fixture { throttles, now }
    }

    fn advance(&self, by: Duration) {
        self.now.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }

    fn answer(&self, status: u16, headers: &[(&str, &str)]) {
        let mut map = http::HeaderMap::new();
        for (name, value) in headers {
            map.insert(
                http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                http::HeaderValue::from_str(value).expect("value"),
            );
        }
        self.throttles.observe(&origin(), status, &map);
    }

    fn remaining(&self) -> Option<Duration> {
        let now = self.throttles.now_ms();
        self.throttles.hold(&origin()).map(|hold| hold.remaining(now))
    }
}

fn origin() -> Origin {
    Origin::parse("https://acme.service-now.com").expect("origin")
}

/// field case 05-servicenow-throttling.json, A_long_wait.
const LONG_WAIT: [(&str, &str); 4] = [
    ("Retry-After", "1740"),
    ("X-RateLimit-Limit", "500"),
    ("X-RateLimit-Reset", "1791203400"),
    ("X-RateLimit-Rule", "b8c1e0d2a3f44f5a9e7d6c5b4a392817"),
];

#[test]
fn field_case_05_a_long_wait_holds_the_origin_for_the_whole_retry_after() {
    let f = Fixture::new();
    f.answer(429, &LONG_WAIT);
    let hold = f.throttles.hold(&origin()).expect("held");
    assert_eq!(hold.remaining(FIELD_CASE_NOW_MS), Duration::from_secs(1740));
    assert_eq!(
        hold.cause,
        Cause::Told {
            header: "Retry-After",
            status: 429
        }
    );
    assert!(hold.cause.is_stated());
    assert_eq!(
        f.throttles.admit(&origin()),
        Err(hold.clone()),
        "every request to it waits"
    );
    f.advance(Duration::from_secs(1739));
    assert!(f.throttles.admit(&origin()).is_err());
    f.advance(Duration::from_secs(1));
    assert_eq!(f.throttles.admit(&origin()), Ok(()), "free at the time it named");
    assert!(hold.to_string().contains("2026-10-05T12:30:00Z"), "{hold}");
}

#[test]
fn every_form_of_when_to_come_back_is_read() {
    type Case = (u16, &'static [(&'static str, &'static str)], u64, &'static str);
    let cases: [Case; 7] = [
        (429, &[("Retry-After", "120")], 120, "Retry-After"),
        // IMF-fixdate, and the obsolete RFC 850 form recipients must accept.
        (
            429,
            &[("Retry-After", "Mon, 05 Oct 2026 12:30:00 GMT")],
            1740,
            "Retry-After",
        ),
        (
            503,
            &[("Retry-After", "Monday, 05-Oct-26 12:30:00 GMT")],
            1740,
            "Retry-After",
        ),
        (429, &[("X-RateLimit-Reset", "1791203400")], 1740, "X-RateLimit-Reset"),
        (
            429,
            &[("X-RateLimit-Reset", "1791203400000")],
            1740,
            "X-RateLimit-Reset",
        ),
        (429, &[("RateLimit-Reset", "90")], 90, "RateLimit-Reset"),
        (
            429,
            &[("RateLimit", "\"hour\";r=3;t=3000, \"minute\";r=0;t=42")],
            42,
            "RateLimit",
        ),
    ];
    for (status, headers, seconds, header) in cases {
        let f = Fixture::new();
        f.answer(status, headers);
        let hold = f
            .throttles
            .hold(&origin())
            .unwrap_or_else(|| panic!("{headers:?} holds"));
        assert_eq!(
            hold.remaining(FIELD_CASE_NOW_MS),
            Duration::from_secs(seconds),
            "{headers:?}"
        );
        assert_eq!(hold.cause, Cause::Told { header, status }, "{headers:?}");
    }
}

#[test]
fn field_case_05_b_a_throttle_without_headers_backs_off_exponentially_for_everyone() {
    let f = Fixture::new();
    // Jitter 0.5: three quarters of 2 s, 4 s, 8 s.
    for expected in [1500, 3000, 6000] {
        f.answer(429, &[]);
        assert_eq!(f.remaining(), Some(Duration::from_millis(expected)));
        let hold = f.throttles.hold(&origin()).expect("held");
        assert!(!hold.cause.is_stated());
        f.advance(Duration::from_millis(expected));
        assert_eq!(f.remaining(), None);
    }
    // A 503 without Retry-After is the same kind of answer (its reset
    // header speaks of the rate limit, not of the outage).
    f.answer(503, &[("X-RateLimit-Reset", "1791203400")]);
    assert_eq!(
        f.throttles.hold(&origin()).map(|h| h.cause),
        Some(Cause::Backoff {
            strikes: 4,
            status: 503
        })
    );
    f.advance(Duration::from_secs(60));
    f.answer(200, &[]);
    f.answer(429, &[]);
    assert_eq!(
        f.remaining(),
        Some(Duration::from_millis(1500)),
        "a success starts over"
    );
    let other = Origin::parse("https://globex.service-now.com").expect("origin");
    assert_eq!(f.throttles.admit(&other), Ok(()), "other origins are not held");
}

#[test]
fn field_case_05_c_the_rules_budget_is_spent_then_held_until_its_reset() {
    let f = Fixture::new();
    let rule = [("X-RateLimit-Limit", "3"), ("X-RateLimit-Reset", "1791203400")];
    assert_eq!(f.throttles.admit(&origin()), Ok(()));
    f.answer(200, &rule); // the first request of the window
    for _ in 0..2 {
        assert_eq!(f.throttles.admit(&origin()), Ok(()));
        f.answer(200, &rule);
    }
    let hold = f.throttles.admit(&origin()).expect_err("the budget is spent");
    assert_eq!(hold.cause, Cause::Budget { limit: 3 });
    assert_eq!(hold.remaining(f.throttles.now_ms()), Duration::from_secs(1740));
    f.advance(Duration::from_secs(1740));
    assert_eq!(f.throttles.admit(&origin()), Ok(()), "a new window");
}

#[test]
fn a_stated_remaining_replaces_the_hosts_count() {
    let f = Fixture::new();
    f.answer(
        200,
        &[
            ("RateLimit-Policy", "\"hour\";q=500;w=3600"),
            ("RateLimit", "\"hour\";r=1;t=1740"),
        ],
    );
    assert_eq!(f.throttles.admit(&origin()), Ok(()), "one left");
    let hold = f.throttles.admit(&origin()).expect_err("none left");
    assert_eq!(hold.cause, Cause::Budget { limit: 500 });
    let f = Fixture::new();
    f.answer(
        200,
        &[
            ("X-RateLimit-Limit", "500"),
            ("X-RateLimit-Remaining", "0"),
            ("X-RateLimit-Reset", "1791203400"),
        ],
    );
    assert!(f.throttles.admit(&origin()).is_err());
}

#[test]
fn nonsense_is_ignored_and_absurd_waits_are_capped() {
    let f = Fixture::new();
    f.answer(429, &[("Retry-After", "soon")]);
    assert!(matches!(
        f.throttles.hold(&origin()).map(|h| h.cause),
        Some(Cause::Backoff { .. })
    ));
    let f = Fixture::new();
    f.answer(429, &[("Retry-After", "999999999999")]);
    assert_eq!(f.remaining(), Some(MAX_HOLD));
    let f = Fixture::new();
    f.answer(200, &[("Retry-After", "120")]);
    assert_eq!(f.remaining(), None, "only a throttle asks to come back later");
    f.answer(429, &[("Retry-After", "600")]);
    f.answer(429, &[("Retry-After", "5")]);
    assert_eq!(
        f.remaining(),
        Some(Duration::from_secs(600)),
        "a later answer never shortens a hold"
    );
}

#[test]
fn dates_are_rfc3339() {
    assert_eq!(date(1_791_203_400_000), "2026-10-05T12:30:00Z");
    assert_eq!(date(0), "1970-01-01T00:00:00Z");
    assert_eq!(date(951_782_400_000), "2000-02-29T00:00:00Z");
}
