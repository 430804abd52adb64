//! A connector built against the frozen contract `xla:plugin@0.1.0`
//! directly with wit-bindgen, as authors built them before 0.2 (the SDK now
//! targets 0.2). The host must load it and read its observations as records
//! through the 0.1 adapter.
//!
//! It reads no network: `pull` serves three fixed pages by cursor, shaped to
//! exercise the adapter's grouping (several metrics of one ticket with the
//! same time and dimensions; the same (id, metric) twice in one batch, once
//! right after itself and once later, where the last value must win), and
//! `parse` reads a tiny `text/plain` body of `<id> <metric> <value>` lines.

wit_bindgen::generate!({
    path: "../../../wit/since_v0.1.0",
    world: "xla:plugin/connector-plugin@0.1.0",
    generate_all,
});

use exports::xla::plugin::connector::{Batch, ConnectorInfo, Guest};
use xla::plugin::log::{Level, log};
use xla::plugin::types::{Layer, MetricInfo, Observation, PluginError};

/// 2025-10-09T08:53:20Z, unix ms: the time of the first page.
const AT: i64 = 1_760_000_000_000;
/// One hour, in ms: the second page is an hour later.
const HOUR: i64 = 3_600_000;

/// The cursors the pages hand out, in order.
const PAGE_2: &str = "page-2";
const END: &str = "end";

struct V01Connector;

impl Guest for V01Connector {
    fn describe() -> ConnectorInfo {
        ConnectorInfo {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: env!("CARGO_PKG_DESCRIPTION").into(),
            config_schema: r#"{"type":"object"}"#.into(),
            metrics: vec![
                metric("resolution_hours", "hours", "Hours from opening to resolution."),
                metric(
                    "reassignment_count",
                    "count",
                    "Times the ticket changed assignment group.",
                ),
            ],
            hosts: Vec::new(),
            media_types: vec!["text/plain".into()],
        }
    }

    fn check(config: String) -> Result<(), PluginError> {
        config_object(&config)
    }

    fn pull(config: String, cursor: Option<String>) -> Result<Batch, PluginError> {
        config_object(&config)?;
        let batch = match cursor.as_deref() {
            None => Batch {
                observations: first_page(),
                cursor: Some(PAGE_2.into()),
                more: true,
            },
            Some(PAGE_2) => Batch {
                observations: second_page(),
                cursor: Some(END.into()),
                more: false,
            },
            // Nothing new since the last page.
            Some(END) => Batch {
                observations: Vec::new(),
                cursor: Some(END.into()),
                more: false,
            },
            Some(other) => return Err(PluginError::Permanent(format!("unknown cursor `{other}`"))),
        };
        log(
            Level::Info,
            &format!("page of {} observations", batch.observations.len()),
        );
        Ok(batch)
    }

    fn parse(config: String, media_type: String, body: Vec<u8>) -> Result<Vec<Observation>, PluginError> {
        config_object(&config)?;
        if media_type != "text/plain" {
            return Err(PluginError::BadData(format!(
                "media type `{media_type}` is not text/plain"
            )));
        }
        let text = String::from_utf8(body).map_err(|_| PluginError::BadData("the body is not UTF-8".into()))?;
        text.lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(n, line)| parse_line(n + 1, line))
            .collect()
    }
}

/// Ticket INC001 (two metrics, then its resolution corrected at the end of
/// the page) and INC002 (its reassignment count sent twice in a row).
fn first_page() -> Vec<Observation> {
    vec![
        ticket("INC001", "Email", AT, "resolution_hours", 5.5),
        ticket("INC001", "Email", AT, "reassignment_count", 2.0),
        ticket("INC002", "VPN", AT, "resolution_hours", 1.0),
        ticket("INC002", "VPN", AT, "reassignment_count", 1.0),
        ticket("INC002", "VPN", AT, "reassignment_count", 3.0),
        ticket("INC001", "Email", AT, "resolution_hours", 6.0),
    ]
}

/// Ticket INC003, an hour later.
fn second_page() -> Vec<Observation> {
    vec![
        ticket("INC003", "Email", AT + HOUR, "resolution_hours", 8.0),
        ticket("INC003", "Email", AT + HOUR, "reassignment_count", 0.0),
    ]
}

fn ticket(id: &str, service: &str, at: i64, metric: &str, value: f64) -> Observation {
    Observation {
        id: id.into(),
        metric: metric.into(),
        layer: Layer::Operational,
        value,
        at,
        dimensions: vec![("ticket".into(), id.into()), ("service".into(), service.into())],
    }
}

/// `<id> <metric> <value>`, observed at [`AT`].
fn parse_line(number: usize, line: &str) -> Result<Observation, PluginError> {
    let bad = |why: &str| PluginError::BadData(format!("line {number}: {why}"));
    let mut fields = line.split_whitespace();
    let (Some(id), Some(metric), Some(value), None) = (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(bad("expected `<id> <metric> <value>`"));
    };
    let value = value.parse::<f64>().map_err(|_| bad("the value is not a number"))?;
    Ok(Observation {
        id: id.into(),
        metric: metric.into(),
        layer: Layer::Operational,
        value,
        at: AT,
        dimensions: vec![("ticket".into(), id.into())],
    })
}

/// The config must be a JSON object; nothing in it is read.
fn config_object(config: &str) -> Result<(), PluginError> {
    let trimmed = config.trim();
    if trimmed.starts_with('{') && trimmed.ends_with('}') {
        Ok(())
    } else {
        Err(PluginError::Config(format!(
            "the config must be a JSON object, got `{trimmed}`"
        )))
    }
}

fn metric(name: &str, unit: &str, description: &str) -> MetricInfo {
    MetricInfo {
        name: name.into(),
        layer: Layer::Operational,
        unit: unit.into(),
        description: description.into(),
    }
}

export!(V01Connector);
