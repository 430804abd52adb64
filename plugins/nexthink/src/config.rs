//! The configuration of one Nexthink connector instance and its checks.
//!
//! Credentials are not part of it: the host holds the OAuth2 client id and
//! secret, fetches the token and adds it to requests for the granted origin.
//! The results origin (where pre-signed export files live) is granted with
//! no credential, so nothing is added to the download.

use serde::Deserialize;
use xla_sdk::PluginError;
use xla_sdk::config::field_error;
use xla_sdk::origin::parse_origin;
use xla_sdk::time::{format_full_date, parse_full_date};

/// How rows are fetched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// `POST /api/v1/nql/export`, status polls, then the results file: no row cap.
    #[default]
    Export,
    /// `POST /api/v1/nql/execute`: one round trip, at most 1000 rows.
    Execute,
}

/// Configuration of one Nexthink connector instance.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The API origin, e.g. `https://acme.api.eu.nexthink.cloud`.
    pub instance_url: String,
    /// The predefined NQL query, `#[a-z0-9_]{2,255}`.
    #[serde(default = "default_query_id")]
    pub query_id: String,
    /// First day to read, `YYYY-MM-DD` (UTC).
    pub since: String,
    /// First day not to read (exclusive); without it, today (UTC): only closed days are read.
    #[serde(default)]
    pub until: Option<String>,
    /// Origin of the storage that serves export results files through
    /// pre-signed URLs, e.g. `https://nexthink-exports.s3.eu-west-1.amazonaws.com`.
    /// Without it, results files are downloaded only from the instance origin.
    #[serde(default)]
    pub results_origin: Option<String>,
    /// Export (bulk, default) or execute (small pulls).
    #[serde(default)]
    pub mode: Mode,
    /// Days per query.
    #[serde(default = "default_days_per_pull")]
    pub days_per_pull: u32,
}

fn default_query_id() -> String {
    "#device_daily_dex".into()
}

fn default_days_per_pull() -> u32 {
    1
}

/// Largest `days_per_pull` accepted.
pub const MAX_DAYS_PER_PULL: u32 = 31;

/// `#[a-z0-9_]{2,255}`, Nexthink's rule for query ids.
pub fn valid_query_id(id: &str) -> bool {
    id.strip_prefix('#').is_some_and(|name| {
        (2..=255).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    })
}

impl Config {
    /// Checks what serde cannot: the URLs, the query id, the days.
    pub fn validate(&self) -> Result<(), PluginError> {
        self.origin()?;
        self.results_origin()?;
        if !valid_query_id(&self.query_id) {
            return Err(field_error(
                "query_id",
                format!(
                    "`{}` is not a Nexthink query id (`#` then 2-255 of a-z, 0-9, _)",
                    self.query_id
                ),
            ));
        }
        let since = self.since_day()?;
        if let Some(until) = self.until_day()?
            && until <= since
        {
            return Err(field_error(
                "until",
                format!(
                    "`{}` must be after since `{}` (until is exclusive)",
                    format_full_date(until),
                    self.since
                ),
            ));
        }
        if !(1..=MAX_DAYS_PER_PULL).contains(&self.days_per_pull) {
            return Err(field_error(
                "days_per_pull",
                format!("must be between 1 and {MAX_DAYS_PER_PULL}, not {}", self.days_per_pull),
            ));
        }
        Ok(())
    }

    /// `since` as days since the epoch.
    pub fn since_day(&self) -> Result<i64, PluginError> {
        parse_full_date(&self.since)
            .ok_or_else(|| field_error("since", format!("`{}` is not a date like `2026-10-01`", self.since)))
    }

    /// `until` as days since the epoch, if set.
    pub fn until_day(&self) -> Result<Option<i64>, PluginError> {
        self.until
            .as_deref()
            .map(|u| {
                parse_full_date(u).ok_or_else(|| field_error("until", format!("`{u}` is not a date like `2026-10-08`")))
            })
            .transpose()
    }

    /// The API origin, e.g. `https://acme.api.eu.nexthink.cloud`.
    pub fn origin(&self) -> Result<url::Url, PluginError> {
        parse_origin("instance_url", &self.instance_url, "https://acme.api.eu.nexthink.cloud")
    }

    /// The results origin, if set, e.g. `https://nexthink-exports.s3.eu-west-1.amazonaws.com`.
    pub fn results_origin(&self) -> Result<Option<url::Url>, PluginError> {
        self.results_origin
            .as_deref()
            .map(|text| {
                parse_origin(
                    "results_origin",
                    text,
                    "https://nexthink-exports.s3.eu-west-1.amazonaws.com",
                )
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> Result<Config, PluginError> {
        xla_sdk::parse_config::<Config>(json).and_then(|c| c.validate().map(|()| c))
    }

    fn message(json: &str) -> String {
        match config(json) {
            Err(PluginError::Config(m)) => m,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_and_checks() {
        let c = config(r#"{"instance_url":"https://acme.api.eu.nexthink.cloud","since":"2026-10-01"}"#).expect("valid");
        assert_eq!(
            (c.query_id.as_str(), c.mode, c.days_per_pull),
            ("#device_daily_dex", Mode::Export, 1)
        );
        assert!(config(r#"{"instance_url":"http://127.0.0.1:9","since":"2026-10-01","mode":"execute"}"#).is_ok());
        assert!(message(r#"{"instance_url":"http://acme.example","since":"2026-10-01"}"#).contains("https"));
        assert!(message(r#"{"instance_url":"https://a.example/api","since":"2026-10-01"}"#).contains("origin"));
        assert!(
            message(r#"{"instance_url":"https://a.example","since":"2026-10-01","query_id":"dex"}"#)
                .contains("query_id")
        );
        assert!(message(r#"{"instance_url":"https://a.example","since":"2026-10-32"}"#).contains("since"));
        assert!(
            message(r#"{"instance_url":"https://a.example","since":"2026-10-02","until":"2026-10-02"}"#)
                .contains("until")
        );
        assert!(
            message(r#"{"instance_url":"https://a.example","since":"2026-10-02","days_per_pull":0}"#)
                .contains("days_per_pull")
        );
        assert!(config(r#"{"instance_url":"https://a.example","since":"2026-10-02","token":"x"}"#).is_err());
    }

    #[test]
    fn the_results_origin_is_an_origin() {
        let base = r#"{"instance_url":"https://acme.api.eu.nexthink.cloud","since":"2026-10-01""#;
        let with = |origin: &str| format!(r#"{base},"results_origin":"{origin}"}}"#);
        let c = config(&with("https://nexthink-exports.s3.eu-west-1.amazonaws.com")).expect("valid");
        assert_eq!(
            c.results_origin()
                .ok()
                .flatten()
                .map(|u| u.origin().ascii_serialization()),
            Some("https://nexthink-exports.s3.eu-west-1.amazonaws.com".into())
        );
        assert!(config(&with("http://127.0.0.1:9000")).is_ok());
        for (bad, says) in [
            ("http://bucket.example", "https"),
            ("https://bucket.example/exports", "only an origin"),
            ("https://bucket.example/?X-Amz-Signature=1", "only an origin"),
            ("https://key:secret@bucket.example", "credentials"),
            ("bucket.example", "not a URL"),
        ] {
            let m = message(&with(bad));
            assert!(m.contains("`results_origin`") && m.contains(says), "{bad}: {m}");
        }
    }
}
