//! The per-token request rate: a token bucket per token id holding one
//! second's worth of requests, refilled continuously. A request over the
//! rate is a 429 with `Retry-After`, in whole seconds (RFC 9110 §10.2.3).

use crate::error::ApiError;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Buckets kept at most; idle ones are dropped past it.
const MAX_BUCKETS: usize = 100_000;

/// Buckets by token id.
pub struct TokenLimiter {
    per_second: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl TokenLimiter {
    /// `per_second` requests a second per token (at least one).
    pub fn new(per_second: u32) -> TokenLimiter {
        TokenLimiter {
            per_second: f64::from(per_second.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from the token's bucket.
    ///
    /// # Errors
    /// [`ApiError::TooManyRequests`] with the seconds until one is free.
    pub fn check(&self, token_id: &str) -> Result<(), ApiError> {
        let now = Instant::now();
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        if buckets.len() >= MAX_BUCKETS {
            let full = self.per_second;
            buckets.retain(|_, (tokens, at)| *tokens + at.elapsed().as_secs_f64() * full < full);
        }
        let (tokens, at) = buckets.entry(token_id.to_string()).or_insert((self.per_second, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.per_second).min(self.per_second);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            return Ok(());
        }
        let wait = (1.0 - *tokens) / self.per_second;
        Err(ApiError::TooManyRequests {
            retry_after: wait.ceil().max(1.0) as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_over_the_rate_is_refused_per_token() {
        let limiter = TokenLimiter::new(3);
        for _ in 0..3 {
            assert!(limiter.check("a").is_ok());
        }
        let refused = limiter.check("a").expect_err("the fourth in the same instant");
        assert!(
            matches!(refused, ApiError::TooManyRequests { retry_after: 1 }),
            "{refused}"
        );
        assert!(limiter.check("b").is_ok(), "another token has its own bucket");
    }
}
