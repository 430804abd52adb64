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
//! One sync is one query, `created__gte=<from>&ordering=created,id`, read page
//! by page (`page=1, 2, ...`, `page_size` from the config), one page per
//! `pull`. `from` is the watermark's `created` (else `since`, else no filter)
//! and stays the same for the whole sync, so page numbers stay meaningful:
//! responses created later are appended at the end.
//!
//! The watermark is the (`created`, `id`) of the last response read. Every
//! response not after it is skipped, so the responses sharing the
//! watermark's timestamp that were already read are not read again, and
//! those not yet read are not lost (the query is `gte`, not `gt`). A response
//! read twice (a page shifted by a late insert) is skipped the same way.
//!
//! The sync ends at the last page (`meta.page == meta.pages`) or an empty
//! one: `more` is false and the cursor keeps only the watermark. A response
//! created *before* the watermark after it was written is never read; the
//! vendor's `created` is when the response was recorded, so that should not
//! happen.
//!
//! # Mapping
//!
//! See [`response`]: `happiness_rating` (the 0-10 score), `lost_time_minutes`
//! (only when answered), and one `factor_selected` per ticked factor.

pub mod api;
pub mod config;
pub mod csv;
pub mod cursor;
pub mod response;

use config::Config;
use cursor::{Cursor, Walk};
use response::Response;
use serde_json::{Map, Value};
use xla_sdk::{Batch, Connector, ConnectorInfo, Layer, MetricInfo, Observation, PluginError};

/// The HappySignals connector.
pub struct HappySignals;

fn metric(name: &str, unit: &str, description: &str) -> MetricInfo {
    MetricInfo::new(name, Layer::Experience, unit, description)
}

/// Observations of every response, in order.
fn observations(items: &[Map<String, Value>]) -> Result<Vec<Observation>, PluginError> {
    let mut observations = Vec::new();
    for (i, fields) in items.iter().enumerate() {
        observations.extend(Response::new(fields, i).observations()?);
    }
    Ok(observations)
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
        config.validate()?;
        let mut cursor = Cursor::decode(cursor)?;
        let fresh = || Walk {
            from: cursor.created.clone().or_else(|| config.since.clone()),
            page: 1,
            page_size: Some(config.page_size),
        };
        let walk = match cursor.walk.take() {
            Some(walk) if walk.page_size == Some(config.page_size) => walk,
            // Page numbers of another page size would skip or repeat items:
            // start again from the watermark (repeats are skipped below).
            _ => fresh(),
        };
        let request = api::page_request(config, walk.from.as_deref(), walk.page)?;
        let page = if walk.page > 1 {
            // Responses deleted mid-walk can leave fewer pages: a 404 past
            // page 1 ends the walk, and the next sync starts from the watermark.
            match api::fetch_unless_gone(request)? {
                Some(page) => page,
                None => {
                    return Ok(Batch {
                        observations: Vec::new(),
                        cursor: Some(cursor.encode()?),
                        more: false,
                    });
                }
            }
        } else {
            api::fetch(request)?
        };
        let mut observations = Vec::new();
        for (i, fields) in page.items.iter().enumerate() {
            let response = Response::new(fields, i);
            let (id, created) = (response.id()?, response.created()?);
            if !cursor.is_new(created, &id) {
                continue;
            }
            observations.extend(response.observations()?);
            cursor.created = Some(response.text("created").into_owned());
            cursor.id = Some(id);
        }
        let more = !page.items.is_empty() && page.page < page.pages;
        if more {
            cursor.walk = Some(Walk {
                page: walk.page.saturating_add(1),
                ..walk
            });
        }
        Ok(Batch {
            observations,
            cursor: Some(cursor.encode()?),
            more,
        })
    }

    fn parse(_config: &Config, media_type: &str, body: &[u8]) -> Result<Vec<Observation>, PluginError> {
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
        observations(&items)
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
