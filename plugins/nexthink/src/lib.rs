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
//! # Times
//!
//! Every NQL call sends `x-utc-times: true` (without it Nexthink answers in
//! the instance's regional time); every timestamp shape is read (see
//! [`time`]) and a day is a UTC day. An execute answer whose zoneless
//! `executionDateTime` is hours from the UTC clock was answered in regional
//! time anyway, and is refused rather than filed on the wrong day.
//!
//! # Cursor
//!
//! `{"v":2,"next":"2026-10-03"}`: the first day not read yet, plus the
//! export in flight and the ranges to read again, if any (see [`cursor`];
//! version 1 cursors are read too). Each pull reads `days_per_pull` days
//! from there, never past the end, then moves `next` after them; empty days
//! are stepped over. The end is `until` (exclusive) or today (UTC, by the
//! wall clock), whichever comes first, so only closed days are read: the
//! sync ends when `next` reaches the end, and the next one (tomorrow) reads
//! today once it has closed.
//!
//! # Partial days
//!
//! An export whose status answers 206 was truncated by the licence's result
//! limit (field case `12-nexthink-export-partial.json`): its rows are
//! stored, the batch marks the range partial with the reason (a `Gap`), and
//! the range is kept in the cursor to read again after
//! [`RECHECK_AFTER_MS`], doubling up to [`MAX_RECHECK_WAIT_MS`], at most
//! [`MAX_RECHECKS`] times. A range read in full says so (`complete`), which
//! closes the gap an earlier read left.
//!
//! Records have the id `<device>/<date>`, so a day read twice replaces
//! rather than duplicates.

pub mod config;
pub mod cursor;
pub mod export;
pub mod nql;
pub mod row;
pub mod time;

use config::{Config, Mode};
use cursor::{Cursor, PendingExport, Position, Recheck};
use xla_sdk::time::{DAY_MS, format_full_date, parse_full_date};
use xla_sdk::{Batch, Changes, Connector, ConnectorInfo, Gap, Layer, MetricInfo, PluginError, Span};

/// The Nexthink connector.
pub struct Nexthink;

/// First wait before a range read in part is read again.
pub const RECHECK_AFTER_MS: i64 = 6 * 3_600_000;
/// Longest wait between two reads of a range read in part.
pub const MAX_RECHECK_WAIT_MS: i64 = 7 * DAY_MS;
/// Partial reads of one range before it is left partial for good.
pub const MAX_RECHECKS: u32 = 6;
/// How far a zoneless `executionDateTime` may be from the clock and still
/// be UTC: further, the answer is in regional time (zones are whole or
/// half hours apart).
pub const EXECUTION_CLOCK_SLACK_MS: i64 = 15 * 60_000;

/// What one pull got for its range.
enum Fetched {
    Rows { rows: nql::Rows, partial: Option<String> },
    Pending(PendingExport),
}

/// The days a pull reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    from: i64,
    to: i64,
    /// A range read in part before, not the next days.
    recheck: bool,
}

impl Nexthink {
    /// A pull as of `now_ms` (Unix ms) instead of the wall clock, for tests
    /// that must not depend on the date they run.
    pub fn pull_at(config: &Config, cursor: Option<&str>, now_ms: i64) -> Result<Batch, PluginError> {
        Self::pull_with(config, cursor, &|| now_ms)
    }

    fn pull_with(config: &Config, cursor: Option<&str>, clock: &dyn Fn() -> i64) -> Result<Batch, PluginError> {
        config.validate()?;
        let mut position = Cursor::read(config, cursor)?;
        let now = clock();
        let today = now.div_euclid(DAY_MS);
        let end = config.until_day()?.map_or(today, |until| until.min(today));
        let Some(range) = next_range(config, &mut position, end, now) else {
            return batch(Changes::default(), &position, false);
        };
        let pending = position.export.take();
        let (rows, partial) = match Self::fetch(config, range, pending, clock)? {
            Fetched::Rows { rows, partial } => (rows, partial),
            Fetched::Pending(export) => {
                // Its poll count moved, so the cursor did: the sync engine sees progress.
                position.export = Some(export);
                return batch(Changes::default(), &position, true);
            }
        };
        let mapped = row::records(&rows)?;
        let span = Span::new(range.from * DAY_MS, range.to * DAY_MS);
        let mut changes = Changes {
            records: mapped.records,
            ..Changes::default()
        };
        let (from, to) = (format_full_date(range.from), format_full_date(range.to));
        position
            .recheck
            .retain(|r| !(r.from == from && r.to == to) || partial.is_some());
        match partial {
            Some(reason) => {
                changes.partial.push(Gap {
                    span,
                    reason: reason.clone(),
                });
                recheck_later(&mut position, &from, &to, reason, now);
            }
            // Read in full: closes a gap an earlier read left.
            None => changes.complete.push(span),
        }
        if !range.recheck {
            position.next = range.to;
        }
        let more = position.next < end || position.recheck.iter().any(|r| r.due_ms <= now);
        batch(changes, &position, more)
    }

    /// Days `from..to` in the configured mode, with why they are partial, if they are.
    fn fetch(
        config: &Config,
        range: Range,
        pending: Option<PendingExport>,
        clock: &dyn Fn() -> i64,
    ) -> Result<Fetched, PluginError> {
        let (from_text, to_text) = (format_full_date(range.from), format_full_date(range.to));
        if config.mode == Mode::Export {
            return Ok(match export::advance(config, range.from, range.to, pending, clock)? {
                export::Progress::Done { id, rows, truncated } => Fetched::Rows {
                    rows,
                    partial: truncated.then(|| {
                        format!(
                            "Nexthink export {id} of {from_text}..{to_text} was truncated: the licence's maximum \
                             number of results was reached (status 206)"
                        )
                    }),
                },
                export::Progress::Pending(export) => Fetched::Pending(export),
            });
        }
        let executed = nql::execute(config, &from_text, &to_text)?;
        if executed.capped {
            return Err(PluginError::Permanent(format!(
                "query {} for {from_text}..{to_text} reached execute's cap of {} rows, so rows may be \
                 missing; set \"mode\": \"export\" (no cap) or fewer days_per_pull",
                config.query_id,
                nql::EXECUTE_ROW_CAP
            )));
        }
        check_utc(executed.executed_at, clock())?;
        Ok(Fetched::Rows {
            rows: executed.rows,
            partial: None,
        })
    }
}

/// The range this pull reads: the one of the export in flight, else a range
/// read in part that is due again, else the next days before `end`. `None`
/// when there is nothing to read now. A stale export (of no such range) is
/// dropped.
fn next_range(config: &Config, position: &mut Position, end: i64, now: i64) -> Option<Range> {
    let day = |text: &str| parse_full_date(text).unwrap_or_default();
    let recheck = |r: &Recheck| Range {
        from: day(&r.from),
        to: day(&r.to),
        recheck: true,
    };
    if let Some(export) = &position.export {
        if let Some(r) = position
            .recheck
            .iter()
            .find(|r| r.from == export.from && r.to == export.to)
        {
            return Some(recheck(r));
        }
        if day(&export.from) != position.next {
            position.export = None;
        }
    }
    if position.export.is_none()
        && let Some(r) = position.recheck.iter().find(|r| r.due_ms <= now)
    {
        return Some(recheck(r));
    }
    (position.next < end).then(|| Range {
        from: position.next,
        to: (position.next + i64::from(config.days_per_pull)).min(end),
        recheck: false,
    })
}

/// Keeps `from..to` to read again later, waiting longer after each partial
/// read; after [`MAX_RECHECKS`] it is left partial, with a warning.
fn recheck_later(position: &mut Position, from: &str, to: &str, reason: String, now: i64) {
    let tries = position
        .recheck
        .iter()
        .find(|r| r.from == from && r.to == to)
        .map_or(0, |r| r.tries)
        + 1;
    position.recheck.retain(|r| !(r.from == from && r.to == to));
    if tries > MAX_RECHECKS {
        xla_sdk::log::warn(&format!(
            "{from}..{to} was read in part {MAX_RECHECKS} times ({reason}); it stays marked partial and is not \
             read again: narrow the query or raise the licence's result limit, then reset the cursor to read it"
        ));
        return;
    }
    let wait = (RECHECK_AFTER_MS << (tries - 1).min(10)).min(MAX_RECHECK_WAIT_MS);
    xla_sdk::log::warn(&format!(
        "{from}..{to} is partial ({reason}); its rows are stored and it is read again in {} h",
        wait / 3_600_000
    ));
    position.recheck.push(Recheck {
        from: from.to_string(),
        to: to.to_string(),
        reason,
        tries,
        due_ms: now + wait,
    });
}

/// Refuses an execute answer whose `executionDateTime` has no zone and is
/// far from the UTC clock: it answered in regional time although the request
/// asked for UTC, so its times cannot be tied to UTC (field case
/// `11-nexthink-times.json`).
fn check_utc(executed_at: Option<time::Stamp>, now: i64) -> Result<(), PluginError> {
    let Some(time::Stamp::Zoneless(at)) = executed_at else {
        return Ok(());
    };
    let off = at - now;
    if off.abs() <= EXECUTION_CLOCK_SLACK_MS {
        return Ok(());
    }
    Err(PluginError::Permanent(format!(
        "Nexthink answered in regional time although the request sent `{}: {}`: its executionDateTime is {:+.1} h \
         from UTC, so the times in the answer cannot be tied to UTC and nothing was stored; check that no proxy \
         strips the `{}` header between XLA Host and the instance",
        nql::UTC_HEADER.0,
        nql::UTC_HEADER.1,
        off as f64 / 3_600_000.0,
        nql::UTC_HEADER.0
    )))
}

fn batch(changes: Changes, position: &Position, more: bool) -> Result<Batch, PluginError> {
    Ok(Batch {
        changes,
        cursor: Some(Cursor::write_position(position)?),
        more,
    })
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

    fn parse(_config: &Config, media_type: &str, body: &[u8]) -> Result<Changes, PluginError> {
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
        let mapped = row::records(&rows)?;
        if mapped.zoneless {
            xla_sdk::log::warn(
                "times without a zone were read as UTC: the connector asks Nexthink for UTC (x-utc-times: true); a \
                 body saved without that header is in the instance's regional time and gives wrong days",
            );
        }
        Ok(Changes {
            records: mapped.records,
            ..Changes::default()
        })
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
