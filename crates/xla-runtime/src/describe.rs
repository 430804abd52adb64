//! What `describe()` may say. A plugin's self-description is shown on
//! terminals, in logs, in the API and on the dashboard, so it is held to
//! sane lengths and may hold no control or bidirectional characters; a
//! plugin that breaks the rules is refused when it describes itself, naming
//! the field and its limit.

use super::error::{PluginId, RuntimeError};
use super::{ConnectorInfo, ScorerInfo};
use xla_types::untrusted::is_unsafe_char;

/// Longest name, version, metric name or unit.
const MAX_NAME_BYTES: usize = 128;
/// Longest description (the plugin's or a metric's).
const MAX_DESCRIPTION_BYTES: usize = 2048;
/// Longest host pattern or media type.
const MAX_ENTRY_BYTES: usize = 512;
/// Largest JSON schema of a config or of parameters.
const MAX_SCHEMA_BYTES: usize = 64 * 1024;
/// Most entries in one list (metrics, hosts, media types).
const MAX_ENTRIES: usize = 256;

/// Checks a connector's `describe()`.
pub(crate) fn check_connector(plugin: &PluginId, info: &ConnectorInfo) -> Result<(), RuntimeError> {
    let mut rules = Rules::default();
    rules.identity(&info.name, &info.version, &info.description);
    rules.schema("config-schema", &info.config_schema);
    rules.count("metrics", info.metrics.len());
    for (i, metric) in info.metrics.iter().enumerate() {
        rules.text(format!("metrics[{i}].name"), &metric.name, MAX_NAME_BYTES);
        rules.text(format!("metrics[{i}].unit"), &metric.unit, MAX_NAME_BYTES);
        rules.text(
            format!("metrics[{i}].description"),
            &metric.description,
            MAX_DESCRIPTION_BYTES,
        );
    }
    rules.list("hosts", &info.hosts);
    rules.list("media-types", &info.media_types);
    rules.verdict(plugin)
}

/// Checks a scorer's `describe()`.
pub(crate) fn check_scorer(plugin: &PluginId, info: &ScorerInfo) -> Result<(), RuntimeError> {
    let mut rules = Rules::default();
    rules.identity(&info.name, &info.version, &info.description);
    rules.schema("parameters-schema", &info.parameters_schema);
    rules.list("metrics", &info.metrics);
    rules.verdict(plugin)
}

/// The first rule broken, as (field, reason).
#[derive(Default)]
struct Rules {
    first: Option<(String, String)>,
}

impl Rules {
    fn verdict(self, plugin: &PluginId) -> Result<(), RuntimeError> {
        match self.first {
            None => Ok(()),
            Some((field, reason)) => Err(RuntimeError::Describe {
                plugin: plugin.clone(),
                field,
                reason,
            }),
        }
    }

    fn fail(&mut self, field: String, reason: String) {
        self.first.get_or_insert((field, reason));
    }

    fn identity(&mut self, name: &str, version: &str, description: &str) {
        self.text("name".into(), name, MAX_NAME_BYTES);
        self.text("version".into(), version, MAX_NAME_BYTES);
        self.text("description".into(), description, MAX_DESCRIPTION_BYTES);
    }

    fn text(&mut self, field: String, value: &str, max: usize) {
        if value.len() > max {
            self.fail(field, format!("{} bytes, over the limit of {max}", value.len()));
        } else if let Some(c) = value.chars().find(|c| is_unsafe_char(*c)) {
            self.fail(
                field,
                format!("it holds the control character U+{:04X}; plain text only", u32::from(c)),
            );
        }
    }

    /// A schema is JSON, where line breaks and tabs are layout.
    fn schema(&mut self, field: &str, value: &str) {
        if value.len() > MAX_SCHEMA_BYTES {
            self.fail(
                field.into(),
                format!("{} bytes, over the limit of {MAX_SCHEMA_BYTES}", value.len()),
            );
        } else if let Some(c) = value
            .chars()
            .find(|c| is_unsafe_char(*c) && !matches!(c, '\n' | '\r' | '\t'))
        {
            self.fail(
                field.into(),
                format!("it holds the control character U+{:04X}", u32::from(c)),
            );
        }
    }

    fn count(&mut self, field: &str, len: usize) {
        if len > MAX_ENTRIES {
            self.fail(field.into(), format!("{len} entries, over the limit of {MAX_ENTRIES}"));
        }
    }

    fn list(&mut self, field: &str, values: &[String]) {
        self.count(field, values.len());
        for (i, value) in values.iter().enumerate().take(MAX_ENTRIES) {
            self.text(format!("{field}[{i}]"), value, MAX_ENTRY_BYTES);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connector() -> ConnectorInfo {
        ConnectorInfo {
            name: "feed".into(),
            version: "0.1.0".into(),
            description: "Reads a feed.".into(),
            config_schema: "{\n  \"type\": \"object\"\n}".into(),
            metrics: Vec::new(),
            hosts: vec!["https://feed.example".into()],
            media_types: vec!["application/json".into()],
        }
    }

    fn refusal(info: &ConnectorInfo) -> String {
        match check_connector(&PluginId::new("feed", "0.1.0"), info) {
            Ok(()) => "accepted".into(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_plain_description_with_a_laid_out_schema_is_accepted() {
        assert_eq!(refusal(&connector()), "accepted");
    }

    #[test]
    fn oversized_and_control_text_is_refused_naming_the_field() {
        let mut long = connector();
        long.description = "x".repeat(50 << 20);
        assert_eq!(
            refusal(&long),
            "plugin `feed` 0.1.0: describe() returned an unacceptable description (52428800 bytes, over the limit of 2048); fix the plugin"
        );
        let mut escape = connector();
        escape.hosts.push("https://a.example\u{1b}[2J".into());
        assert!(
            refusal(&escape).contains("hosts[1] (it holds the control character U+001B"),
            "{}",
            refusal(&escape)
        );
        let mut forged = connector();
        forged.name = "feed\nERROR forged".into();
        assert!(refusal(&forged).contains("unacceptable name"));
    }
}
