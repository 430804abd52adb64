//! Fault injection shared by the simulators: which request goes wrong, and
//! how. Faults are deterministic (by request number), so a test that says
//! "the third request gets a 429" gets exactly that.

use std::time::Duration;

/// A fault and the requests it hits.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    /// What goes wrong.
    pub fault: Fault,
    /// On which API requests (numbered from 1, in arrival order).
    pub on: Requests,
}

/// Which requests a fault hits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requests {
    /// These request numbers.
    Numbers(Vec<u64>),
    /// Every Nth request (N, 2N, ...).
    Every(u64),
    /// A burst: requests `first..=last`.
    Burst {
        /// First request of the burst.
        first: u64,
        /// Last request of the burst.
        last: u64,
    },
}

impl Requests {
    /// Whether request number `n` is hit.
    pub fn hits(&self, n: u64) -> bool {
        match self {
            Requests::Numbers(numbers) => numbers.contains(&n),
            Requests::Every(every) => *every > 0 && n.is_multiple_of(*every),
            Requests::Burst { first, last } => (*first..=*last).contains(&n),
        }
    }
}

/// A deterministic misbehaviour.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// 500 with the source's error body.
    ServerError,
    /// 429 with `Retry-After`.
    Throttle {
        /// Seconds sent in `Retry-After`.
        retry_after_secs: u64,
    },
    /// The response comes after this delay (the request is then served normally).
    Slow(Duration),
    /// 200 with a body that is not what it claims (broken JSON, an HTML page for CSV).
    Malformed,
    /// 200 with the real body cut short.
    Truncated,
    /// 401 as for an expired token, whatever the credentials.
    ExpiredToken,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_hit_by_number_period_and_burst() {
        assert!(Requests::Numbers(vec![2, 5]).hits(5));
        assert!(!Requests::Numbers(vec![2, 5]).hits(3));
        assert!(Requests::Every(3).hits(6) && !Requests::Every(3).hits(7));
        assert!(!Requests::Every(0).hits(0), "every 0th is never");
        let burst = Requests::Burst { first: 2, last: 4 };
        assert!(burst.hits(2) && burst.hits(4) && !burst.hits(5));
    }
}
