//! `[api]`: where the API listens and the limits every request meets.

use serde::Deserialize;
use std::net::SocketAddr;
use std::time::Duration;

/// `[api]` of the host's config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Address to listen on (`--listen` overrides); none: the API is off.
    pub listen: Option<SocketAddr>,
    /// Largest request body, in MiB (webhooks, imports).
    pub body_limit_mib: u64,
    /// Longest a request may take, in seconds.
    pub request_timeout_s: u64,
    /// Requests per second per token (a token bucket of one second's burst).
    pub requests_per_second: u32,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: None,
            body_limit_mib: 16,
            request_timeout_s: 30,
            requests_per_second: 50,
        }
    }
}

impl ApiConfig {
    /// The body cap in bytes.
    pub fn body_limit(&self) -> usize {
        usize::try_from(self.body_limit_mib.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX)
    }

    /// The per-request timeout.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_s.max(1))
    }
}
