//! `json-feed`: a connector for any HTTP endpoint that already serves
//! observations in XLA shape, page by page.
//!
//! Wire format: `GET {base_url}/observations?limit=N[&after=CURSOR]` answers
//! `{"observations": [...], "next": "CURSOR" | null}`. A page may be short
//! or empty while `next` is set (the server filtered it); the feed ends only
//! when `next` is null. `parse` accepts the same page, or a bare array of
//! observations, as `application/json`.

use serde::Deserialize;
use xla_sdk::{Batch, Changes, Connector, ConnectorInfo, Layer, MetricInfo, Observation, PluginError, Record};

/// Configuration of one json-feed instance.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    base_url: String,
    #[serde(default = "default_page_size")]
    page_size: u32,
}

fn default_page_size() -> u32 {
    500
}

/// One page of the feed.
#[derive(Debug, Deserialize)]
struct Page {
    observations: Vec<FeedObservation>,
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Body {
    Page(Page),
    List(Vec<FeedObservation>),
}

/// An observation as the feed serves it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedObservation {
    id: String,
    metric: String,
    layer: Layer,
    value: f64,
    at: i64,
    #[serde(default)]
    dimensions: std::collections::BTreeMap<String, String>,
}

impl FeedObservation {
    fn into_observation(self, position: usize) -> Result<Observation, PluginError> {
        if self.id.is_empty() || self.metric.is_empty() {
            return Err(PluginError::BadData(format!(
                "observation #{position} has an empty id or metric"
            )));
        }
        if !self.value.is_finite() {
            return Err(PluginError::BadData(format!(
                "observation `{}` has a value that is not a finite number",
                self.id
            )));
        }
        let mut o = Observation::new(self.id, self.metric, self.layer, self.value, self.at);
        for (k, v) in self.dimensions {
            o = o.dim(k, v);
        }
        Ok(o)
    }
}

struct JsonFeed;

impl JsonFeed {
    fn page_request(config: &Config, limit: u32, cursor: Option<&str>) -> Result<xla_sdk::http::Request, PluginError> {
        let base = config.base_url.trim_end_matches('/');
        let request = xla_sdk::http::get(&format!("{base}/observations"))?
            .header("accept", "application/json")
            .query("limit", &limit.to_string());
        Ok(match cursor {
            Some(after) => request.query("after", after),
            None => request,
        })
    }

    fn validate(config: &Config) -> Result<(), PluginError> {
        if !(1..=10_000).contains(&config.page_size) {
            return Err(PluginError::Config(format!(
                "page_size must be between 1 and 10000, not {}",
                config.page_size
            )));
        }
        Ok(())
    }
}

/// The feed's observations as records: consecutive observations of one id,
/// time and dimensions become one record.
fn convert(list: Vec<FeedObservation>) -> Result<Changes, PluginError> {
    let observations = list
        .into_iter()
        .enumerate()
        .map(|(i, o)| o.into_observation(i))
        .collect::<Result<Vec<Observation>, PluginError>>()?;
    Ok(Changes::records(Record::group(observations)))
}

impl Connector for JsonFeed {
    type Config = Config;

    fn info() -> ConnectorInfo {
        ConnectorInfo {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: env!("CARGO_PKG_DESCRIPTION").into(),
            config_schema: include_str!("../config.schema.json").into(),
            metrics: vec![MetricInfo::new(
                "*",
                Layer::Operational,
                "as served",
                "Whatever metrics the feed serves, from the documented vocabulary.",
            )],
            hosts: vec!["*".into()],
            media_types: vec!["application/json".into()],
        }
    }

    fn check(config: &Config) -> Result<(), PluginError> {
        Self::validate(config)?;
        let response = Self::page_request(config, 1, None)?.send()?;
        let response = response.error_for_status()?;
        response.json::<Page>().map(|_| ())
    }

    fn pull(config: &Config, cursor: Option<&str>) -> Result<Batch, PluginError> {
        Self::validate(config)?;
        let page: Page = Self::page_request(config, config.page_size, cursor)?
            .send()?
            .error_for_status()?
            .json()?;
        Ok(Batch {
            changes: convert(page.observations)?,
            more: page.next.is_some(),
            cursor: page.next.or_else(|| cursor.map(str::to_string)),
        })
    }

    fn parse(_config: &Config, media_type: &str, body: &[u8]) -> Result<Changes, PluginError> {
        if !media_type.starts_with("application/json") {
            return Err(PluginError::BadData(format!(
                "json-feed reads application/json, not `{media_type}`"
            )));
        }
        let body: Body = serde_json::from_slice(body)
            .map_err(|e| PluginError::BadData(format!("payload is not a feed page or array: {e}")))?;
        match body {
            Body::Page(page) => convert(page.observations),
            Body::List(list) => convert(list),
        }
    }
}

xla_sdk::export_connector!(JsonFeed);

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use xla_sdk::testkit;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/two-pages.json");

    #[test]
    fn pulls_every_page_until_next_is_null() {
        let run = testkit::run_pull::<JsonFeed>(r#"{"base_url":"https://feed.example/xla","page_size":2}"#, FIXTURES)
            .expect("fixtures load");
        assert_eq!(run.error, None);
        assert_eq!(run.batches.len(), 3, "two full pages and one filtered-empty page");
        let ids: Vec<String> = run.observations().map(|o| o.id).collect();
        assert_eq!(ids, ["r1", "r2", "r3"]);
        assert!(run.unused.is_empty(), "unused exchanges: {:?}", run.unused);
    }

    #[test]
    fn bad_config_names_the_field() {
        let run = testkit::run_pull::<JsonFeed>(r#"{"base_url":7}"#, FIXTURES).expect("fixtures load");
        let Some(PluginError::Config(message)) = run.error else {
            panic!("expected a config error, got {:?}", run.error)
        };
        assert!(message.contains("base_url"), "{message}");
    }
}
