//! The configuration of one HappySignals connector instance and its checks.
//!
//! Credentials are not part of it: the host adds the customer's Bearer token
//! to requests for the origin the operator granted.

use serde::Deserialize;
use xla_sdk::PluginError;
use xla_sdk::config::field_error;
use xla_sdk::time::parse_rfc3339_utc;

/// Largest `page_size` the API accepts.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// Configuration of one HappySignals connector instance.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The customer's API origin, e.g. `https://acme.eu.happysignals.com`.
    pub base_url: String,
    /// `page_size` of each request.
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// First sync: responses created at or after this UTC date-time.
    #[serde(default)]
    pub since: Option<String>,
}

fn default_page_size() -> u32 {
    500
}

impl Config {
    /// Checks what serde cannot: the URL, the page size and `since`.
    pub fn validate(&self) -> Result<(), PluginError> {
        self.origin()?;
        if !(1..=MAX_PAGE_SIZE).contains(&self.page_size) {
            return Err(field_error(
                "page_size",
                format!("must be between 1 and {MAX_PAGE_SIZE}, not {}", self.page_size),
            ));
        }
        if let Some(since) = &self.since
            && parse_rfc3339_utc(since).is_none()
        {
            return Err(field_error(
                "since",
                format!("`{since}` is not a UTC date-time like `2026-01-01T00:00:00Z`"),
            ));
        }
        Ok(())
    }

    /// The origin without a trailing slash, e.g. `https://acme.eu.happysignals.com`.
    pub fn origin(&self) -> Result<String, PluginError> {
        let origin = xla_sdk::origin::parse_origin("base_url", &self.base_url, "https://acme.eu.happysignals.com")?;
        Ok(xla_sdk::origin::serialize(&origin))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> Result<Config, PluginError> {
        let config = xla_sdk::parse_config::<Config>(json)?;
        config.validate()?;
        Ok(config)
    }

    #[test]
    fn defaults() {
        let c = config(r#"{"base_url":"https://acme.eu.happysignals.com/"}"#).expect("valid");
        assert_eq!(c.page_size, 500);
        assert_eq!(c.since, None);
        assert_eq!(c.origin().expect("origin"), "https://acme.eu.happysignals.com");
        let c = config(r#"{"base_url":"http://127.0.0.1:8090","since":"2026-01-01T00:00:00Z"}"#).expect("valid");
        assert_eq!(c.origin().expect("origin"), "http://127.0.0.1:8090");
        config(r#"{"base_url":"http://localhost:8090","page_size":1000}"#).expect("valid");
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (r#"{"base_url":"http://acme.eu.happysignals.com"}"#, "base_url"),
            (r#"{"base_url":"acme.eu.happysignals.com"}"#, "base_url"),
            (r#"{"base_url":"https://u:p@acme.eu.happysignals.com"}"#, "base_url"),
            (r#"{"base_url":"https://acme.eu.happysignals.com/api/v2"}"#, "base_url"),
            (r#"{"base_url":"https://a.example","page_size":0}"#, "page_size"),
            (r#"{"base_url":"https://a.example","page_size":1001}"#, "page_size"),
            (r#"{"base_url":"https://a.example","page_size":"many"}"#, "page_size"),
            (
                r#"{"base_url":"https://a.example","since":"2026-01-01 00:00:00"}"#,
                "since",
            ),
            (r#"{"base_url":"https://a.example","token":"x"}"#, "token"),
            (r#"{"page_size":10}"#, "base_url"),
        ];
        for (json, field) in cases {
            match config(json) {
                Err(PluginError::Config(m)) => assert!(m.contains(&format!("`{field}`")), "{json}: {m}"),
                other => panic!("expected a config error for {json}, got {other:?}"),
            }
        }
    }
}
