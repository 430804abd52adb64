//! `happysignals`: a connector for HappySignals, the end-user experience
//! survey sent on resolved IT tickets. It reads survey responses
//! (`GET {base_url}/api/v2/responses/`) into the experience metrics of
//! `docs/metrics.md`, and imports the CSV export through `parse`. The plugin
//! never sees the token: the host adds `Authorization: Bearer ...` to
//! requests for the origin the operator granted.
//!
//! HappySignals does not publish its endpoint names or item fields; this
//! connector follows the plausible shape the simulator defines
//! (`xla_host::sim::happysignals`, *unconfirmed* in `SOURCES.md`).
//!
//! # Incremental sync
//!
//! One sync reads one window of `created`, `[done, sync start)`, page by
//! page (`page=1, 2, ...`, `page_size` from the config), one page per
//! `pull`, and notices when the source's pages shift under it (responses
//! submitted or removed meanwhile) instead of skipping: see [`walk`]. When
//! it ends, `done` becomes the sync start, so responses submitted during a
//! sync are read by the next one. The cursor is [`cursor::Cursor`].
//!
//! # Mapping
//!
//! See [`response`]: one record per response with `happiness_rating` (the
//! 0-10 score) and `lost_time_minutes` (only when answered), and one record
//! per ticked factor with `factor_selected`.
//!
//! The API does not say which responses were removed (anonymised, deleted
//! on request): a response removed after it was read stays stored; nothing
//! here can retract it until HappySignals publishes deletions.

pub mod api;
pub mod config;
pub mod csv;
pub mod cursor;
pub mod response;
pub mod walk;

use config::Config;
use cursor::Cursor;
use response::Response;
use serde_json::{Map, Value};
use xla_sdk::{Batch, Changes, Connector, ConnectorInfo, Layer, MetricInfo, PluginError, Record};

/// The HappySignals connector.
pub struct HappySignals;

fn metric(name: &str, unit: &str, description: &str) -> MetricInfo {
    MetricInfo::new(name, Layer::Experience, unit, description)
}

/// The records of every response, in order.
fn records(items: &[Map<String, Value>]) -> Result<Vec<Record>, PluginError> {
    let mut records = Vec::new();
    for (i, fields) in items.iter().enumerate() {
        records.extend(Response::new(fields, i).records()?);
    }
    Ok(records)
}

impl HappySignals {
    /// A pull as of `now_ms` (unix ms) instead of the wall clock: a new sync
    /// reads responses created before `now_ms` (less [`walk::LAG_MS`]).
    /// For tests that must not depend on the date they run.
    pub fn pull_at(config: &Config, cursor: Option<&str>, now_ms: i64) -> Result<Batch, PluginError> {
        config.validate()?;
        let step = walk::step(config, Cursor::decode(cursor)?, now_ms)?;
        Ok(Batch {
            changes: Changes {
                records: records(&step.items)?,
                ..Changes::default()
            },
            cursor: Some(step.cursor.encode()?),
            more: step.more,
        })
    }
}

/// Unix ms by the wall clock (the host gives connectors the real one).
fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Connector for HappySignals {
    type Config = Config;

    fn info() -> ConnectorInfo {
        ConnectorInfo {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: env!("CARGO_PKG_DESCRIPTION").into(),
            config_schema: include_str!("../config.schema.json").into(),
            metrics: vec![
                metric(
                    "happiness_rating",
                    "rating 0-10",
                    "The end user's 0-10 answer for one ticket; happiness = % of 9-10 minus % of 0-6.",
                ),
                metric(
                    "lost_time_minutes",
                    "minutes",
                    "Work time the end user says the ticket cost them; only when answered.",
                ),
                metric(
                    "factor_selected",
                    "bool",
                    "1 per factor the respondent ticked (`factor` dimension).",
                ),
            ],
            hosts: vec!["*".into()],
            media_types: vec!["text/csv".into(), "application/json".into()],
        }
    }

    fn check(config: &Config) -> Result<(), PluginError> {
        config.validate()?;
        api::fetch(api::probe_request(config)?).map(|_| ())
    }

    fn pull(config: &Config, cursor: Option<&str>) -> Result<Batch, PluginError> {
        HappySignals::pull_at(config, cursor, wall_clock_ms())
    }

    fn parse(_config: &Config, media_type: &str, body: &[u8]) -> Result<Changes, PluginError> {
        let essence = media_type.split(';').next().unwrap_or_default().trim();
        let items = if essence.eq_ignore_ascii_case("text/csv") {
            csv::rows(body)?
        } else if essence.eq_ignore_ascii_case("application/json") {
            let value: Value =
                serde_json::from_slice(body).map_err(|e| PluginError::BadData(format!("the body is not JSON: {e}")))?;
            match value {
                Value::Object(mut page) => api::items(page.remove("items").unwrap_or(Value::Null))?,
                list => api::items(list)?,
            }
        } else {
            return Err(PluginError::BadData(format!(
                "happysignals reads the CSV export (text/csv) and API bodies (application/json), not `{media_type}`"
            )));
        };
        Ok(Changes {
            records: records(&items)?,
            ..Changes::default()
        })
    }
}

xla_sdk::export_connector!(HappySignals);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_lists_the_emitted_metrics() {
        let info = HappySignals::info();
        assert_eq!(info.name, "happysignals");
        let names: Vec<&str> = info.metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["happiness_rating", "lost_time_minutes", "factor_selected"]);
        let schema: Value = serde_json::from_str(&info.config_schema).expect("schema is JSON");
        assert_eq!(schema["properties"]["page_size"]["default"], 500);
    }
}
