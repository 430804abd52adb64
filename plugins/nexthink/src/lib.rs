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
//!   `GET /api/v1/nql/status/{exportId}` until `COMPLETED`, then the CSV at
//!   `resultsFileUrl`. A pull polls a few times ([`export::POLLS_PER_PULL`]);
//!   an export still running then goes into the cursor and the pull returns
//!   no rows with `more`, so the next pull polls the same export instead of
//!   exporting again. See [`export`] for the bounds.
//! - `execute`: `POST /api/v1/nql/execute`, one round trip. Execute answers
//!   stop at 1000 rows; an answer that reaches the cap is a `Permanent` error
//!   telling the operator to switch to export mode (or fewer `days_per_pull`).
//!
//! # Results file
//!
//! The real service hands out `resultsFileUrl` as a pre-signed URL on a
//! storage origin (S3-style), not the instance. The connector downloads it
//! only from the instance origin or exactly the configured `results_origin`;
//! anything else is a `Permanent` error naming both and the field to set.
//! The operator grants the results origin with no credential: the host adds
//! credentials only to origins that have one, so the download carries only
//! the URL's own signature. The connector never sets `Authorization` itself.
//!
//! # Cursor
//!
//! `{"v":2,"next":"2026-10-03"}`: the first day not read yet, plus the
//! pending export, if any (see [`cursor`]; version 1 cursors are read too).
//! Each pull reads `days_per_pull` days from there, never past the end, then
//! moves `next` after them; empty days are stepped over. The end is `until`
//! (exclusive) or today (UTC, by the wall clock), whichever comes first, so
//! only closed days are read: the sync ends when `next` reaches the end, and
//! the next one (tomorrow) reads today once it has closed. A day is read
//! once, complete.
//!
//! Observations have the id `<device>/<date>`, so a day read twice replaces
//! rather than duplicates.

pub mod config;
pub mod cursor;
pub mod export;
pub mod nql;
pub mod row;

use config::{Config, Mode};
use cursor::{Cursor, PendingExport};
use xla_sdk::time::{DAY_MS, format_full_date};
use xla_sdk::{Batch, Connector, ConnectorInfo, Layer, MetricInfo, Observation, PluginError};

/// The Nexthink connector.
pub struct Nexthink;

/// What one pull got for its range.
enum Fetched {
    Rows(nql::Rows),
    Pending(PendingExport),
}

impl Nexthink {
    /// A pull as of `now_ms` (Unix ms) instead of the wall clock, for tests
    /// that must not depend on the date they run.
    pub fn pull_at(config: &Config, cursor: Option<&str>, now_ms: i64) -> Result<Batch, PluginError> {
        Self::pull_with(config, cursor, &|| now_ms)
    }

    fn pull_with(config: &Config, cursor: Option<&str>, clock: &dyn Fn() -> i64) -> Result<Batch, PluginError> {
        config.validate()?;
        let position = Cursor::read(config, cursor)?;
        let from = position.next;
        let today = clock().div_euclid(DAY_MS);
        let end = config.until_day()?.map_or(today, |until| until.min(today));
        if from >= end {
            return Ok(Batch {
                observations: Vec::new(),
                cursor: Some(Cursor::write(from, None)?),
                more: false,
            });
        }
        let to = (from + i64::from(config.days_per_pull)).min(end);
        let rows = match Self::fetch(config, from, to, position.export, clock)? {
            Fetched::Rows(rows) => rows,
            Fetched::Pending(export) => {
                // Its poll count moved, so the cursor did: the sync engine sees progress.
                return Ok(Batch {
                    observations: Vec::new(),
                    cursor: Some(Cursor::write(from, Some(export))?),
                    more: true,
                });
            }
        };
        Ok(Batch {
            observations: row::observations(&rows)?,
            cursor: Some(Cursor::write(to, None)?),
            more: to < end,
        })
    }

    /// Days `from..to` in the configured mode.
    fn fetch(
        config: &Config,
        from: i64,
        to: i64,
        pending: Option<PendingExport>,
        clock: &dyn Fn() -> i64,
    ) -> Result<Fetched, PluginError> {
        if config.mode == Mode::Export {
            return Ok(match export::advance(config, from, to, pending, clock)? {
                export::Progress::Done(rows) => Fetched::Rows(rows),
                export::Progress::Pending(export) => Fetched::Pending(export),
            });
        }
        let (from_text, to_text) = (format_full_date(from), format_full_date(to));
        let (rows, capped) = nql::execute(config, &from_text, &to_text)?;
        if capped {
            return Err(PluginError::Permanent(format!(
                "query {} for {from_text}..{to_text} reached execute's cap of {} rows, so rows may be \
                 missing; set \"mode\": \"export\" (no cap) or fewer days_per_pull",
                config.query_id,
                nql::EXECUTE_ROW_CAP
            )));
        }
        Ok(Fetched::Rows(rows))
    }
}

/// Unix ms by the wall clock (the host gives connectors the real one).
fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Connector for Nexthink {
    type Config = Config;

    fn info() -> ConnectorInfo {
        ConnectorInfo {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: env!("CARGO_PKG_DESCRIPTION").into(),
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
        nql::execute(config, &format_full_date(since), &format_full_date(since + 1)).map(|_| ())
    }

    fn pull(config: &Config, cursor: Option<&str>) -> Result<Batch, PluginError> {
        Self::pull_with(config, cursor, &wall_clock_ms)
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
}
