//! `nexthink`: a connector for Nexthink Infinity's NQL API, reading daily
//! device experience (DEX score, boot and logon durations, system crashes,
//! free system drive space, high CPU and memory time ratios) into the
//! Technical metrics of `docs/metrics.md`. The plugin never sees a
//! credential: the host fetches the OAuth2 client-credentials token
//! (`scope=service:integration`) and adds it to requests for the granted origin.
//!
//! # The query
//!
//! An admin defines an NQL query (default id `#device_daily_dex`) that takes
//! the parameters `from` and `to` (`YYYY-MM-DD`, from inclusive, to
//! exclusive) and returns one row per device and day. See [`row`] for the
//! columns it reads.
//!
//! # Modes
//!
//! - `export` (default): `POST /api/v1/nql/export` → `exportId`, then
//!   `GET /api/v1/nql/status/{exportId}` until `COMPLETED` (at most
//!   [`nql::MAX_POLLS`] polls in one pull, else `Transient` and the sync
//!   engine retries with a new export), then the CSV at `resultsFileUrl`,
//!   only if it is on the instance origin.
//! - `execute`: `POST /api/v1/nql/execute`, one round trip. Execute answers
//!   stop at 1000 rows; an answer that reaches the cap is a `Permanent` error
//!   telling the operator to switch to export mode (or fewer `days_per_pull`).
//!
//! # Cursor
//!
//! `{"v":1,"next":"2026-10-03"}`: the first day not read yet. Each pull reads
//! `days_per_pull` days from there (never past `until`), then moves `next`
//! after them. Nexthink's "today" is unknown to the plugin, so:
//!
//! - with `until` (exclusive), the sync ends when `next` reaches it; empty
//!   days before it are stepped over;
//! - without it, the sync ends at the first range that returns no rows,
//!   *without* moving past it, so the next sync asks for it again. A day read
//!   while it is still filling is not read again: set `until` to today (or
//!   let the schedule run after the day closes) for complete days.
//!
//! Observations have the id `<device>/<date>`, so a day read twice replaces
//! rather than duplicates.

pub mod config;
pub mod date;
pub mod nql;
pub mod row;

use config::{Config, Mode};
use serde::{Deserialize, Serialize};
use xla_sdk::{Batch, Connector, ConnectorInfo, Layer, MetricInfo, Observation, PluginError};

/// Version of the cursor format.
pub const CURSOR_VERSION: u32 = 1;

/// The pull cursor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cursor {
    /// Format version.
    pub v: u32,
    /// First day not read yet, `YYYY-MM-DD`.
    pub next: String,
}

impl Cursor {
    /// The next day to read, as days since the epoch: from the cursor, else `since`.
    fn next_day(config: &Config, cursor: Option<&str>) -> Result<i64, PluginError> {
        let Some(text) = cursor else {
            return config.since_day();
        };
        let cursor: Cursor = serde_json::from_str(text)
            .map_err(|e| PluginError::Permanent(format!("cursor `{text}` is not a nexthink cursor: {e}")))?;
        if cursor.v != CURSOR_VERSION {
            return Err(PluginError::Permanent(format!(
                "cursor version {} is not {CURSOR_VERSION}; reset the instance's cursor to resync",
                cursor.v
            )));
        }
        date::parse(&cursor.next)
            .ok_or_else(|| PluginError::Permanent(format!("cursor day `{}` is not a date", cursor.next)))
    }

    fn encode(day: i64) -> String {
        let cursor = Cursor {
            v: CURSOR_VERSION,
            next: date::format(day),
        };
        serde_json::to_string(&cursor).unwrap_or_default()
    }
}

/// The Nexthink connector.
pub struct Nexthink;

impl Nexthink {
    /// Rows of days `from..to` in the configured mode.
    fn fetch(config: &Config, from: i64, to: i64) -> Result<nql::Rows, PluginError> {
        let (from_text, to_text) = (date::format(from), date::format(to));
        match config.mode {
            Mode::Export => nql::export(config, &from_text, &to_text),
            Mode::Execute => {
                let (rows, capped) = nql::execute(config, &from_text, &to_text)?;
                if capped {
                    return Err(PluginError::Permanent(format!(
                        "query {} for {from_text}..{to_text} reached execute's cap of {} rows, so rows may be \
                         missing; set \"mode\": \"export\" (no cap) or fewer days_per_pull",
                        config.query_id,
                        nql::EXECUTE_ROW_CAP
                    )));
                }
                Ok(rows)
            }
        }
    }
}

impl Connector for Nexthink {
    type Config = Config;

    fn info() -> ConnectorInfo {
        ConnectorInfo {
            name: "nexthink".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Reads daily device DEX scores and telemetry from a Nexthink Infinity instance by running a \
                          predefined NQL query (export flow or execute), one day range per pull."
                .into(),
            config_schema: include_str!("../config.schema.json").into(),
            metrics: row::METRIC_INFO
                .iter()
                .map(|(name, unit, description)| MetricInfo::new(name, Layer::Technical, unit, description))
                .collect(),
            hosts: vec!["*".into()],
            media_types: vec!["text/csv".into(), "application/json".into()],
        }
    }

    fn check(config: &Config) -> Result<(), PluginError> {
        config.validate()?;
        let since = config.since_day()?;
        // One day through execute: reachability, token and query id. The cap does not matter here.
        nql::execute(config, &date::format(since), &date::format(since + 1)).map(|_| ())
    }

    fn pull(config: &Config, cursor: Option<&str>) -> Result<Batch, PluginError> {
        config.validate()?;
        let from = Cursor::next_day(config, cursor)?;
        let until = config.until_day()?;
        if until.is_some_and(|until| from >= until) {
            return Ok(Batch {
                observations: Vec::new(),
                cursor: Some(Cursor::encode(from)),
                more: false,
            });
        }
        let mut to = from + i64::from(config.days_per_pull);
        if let Some(until) = until {
            to = to.min(until);
        }
        let rows = Self::fetch(config, from, to)?;
        if rows.data.is_empty() && until.is_none() {
            // The end of what the instance has: ask for this range again next time.
            return Ok(Batch {
                observations: Vec::new(),
                cursor: Some(Cursor::encode(from)),
                more: false,
            });
        }
        let observations = row::observations(&rows)?;
        Ok(Batch {
            observations,
            cursor: Some(Cursor::encode(to)),
            more: until.is_none_or(|until| to < until),
        })
    }

    fn parse(_config: &Config, media_type: &str, body: &[u8]) -> Result<Vec<Observation>, PluginError> {
        let essence = media_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let rows = match essence.as_str() {
            "text/csv" => nql::csv_rows(body, false),
            "application/json" => nql::json_rows(body),
            _ => {
                return Err(PluginError::BadData(format!(
                    "nexthink reads NQL results as text/csv or application/json, not `{media_type}`"
                )));
            }
        };
        let rows = rows.map_err(|e| match e {
            nql::BodyError::Garbled(m) | nql::BodyError::Shape(m) => PluginError::BadData(m),
        })?;
        row::observations(&rows)
    }
}

xla_sdk::export_connector!(Nexthink);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_lists_the_technical_metrics() {
        let info = Nexthink::info();
        assert_eq!(info.name, "nexthink");
        assert_eq!(info.metrics.len(), 7);
        assert!(info.metrics.iter().all(|m| m.layer == Layer::Technical));
        let schema: serde_json::Value = serde_json::from_str(&info.config_schema).expect("schema is JSON");
        assert_eq!(schema["properties"]["mode"]["default"], "export");
    }

    #[test]
    fn cursors_round_trip_and_refuse_strangers() {
        let config: Config =
            xla_sdk::parse_config(r#"{"instance_url":"https://a.example","since":"2026-10-01"}"#).expect("config");
        assert_eq!(Cursor::next_day(&config, None).ok(), date::parse("2026-10-01"));
        let encoded = Cursor::encode(20_730);
        assert_eq!(encoded, r#"{"v":1,"next":"2026-10-04"}"#);
        assert_eq!(Cursor::next_day(&config, Some(&encoded)).ok(), Some(20_730));
        assert!(Cursor::next_day(&config, Some(r#"{"v":2,"next":"2026-10-04"}"#)).is_err());
        assert!(Cursor::next_day(&config, Some("garbage")).is_err());
    }
}
