//! `xla-host plugin parse`: a connector's `parse()` on one body (a saved API
//! response, an export file, a webhook payload) in the sandbox with no
//! network, printing each observation as a JSON line. The media type check
//! and the call itself are shared with `xla-host import`.

use super::options::{self, LimitArgs};
use super::plugin::connector_of;
use crate::config::HostConfig;
use crate::plugins::load_plugin;
use crate::runtime::{Changes, ConnectorInfo, ConnectorSession, Layer, Observation, PluginError, PluginId};
use crate::sync::push::essence;
use crate::untrusted;
use anyhow::{Context, Result, bail};
use clap::Args;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// Arguments of `xla-host plugin parse`.
#[derive(Debug, Args)]
pub(crate) struct ParseArgs {
    /// The connector's .wasm file (its plugin.toml must be beside it).
    file: PathBuf,
    /// Media type of the body, e.g. `application/json` or `text/csv`. It
    /// must be one the connector declares; parameters such as
    /// `; table=incident` are passed on to the connector.
    #[arg(long, value_name = "TYPE")]
    media_type: String,
    /// The connector's config: JSON, or @file holding JSON. Default `{}`.
    #[arg(long, value_name = "JSON|@FILE")]
    config: Option<String>,
    /// The body to parse: a file, or `-` for standard input.
    body: PathBuf,
    #[command(flatten)]
    limits: LimitArgs,
}

pub(crate) async fn run(config: &HostConfig, args: ParseArgs) -> Result<ExitCode> {
    let plugin_config = options::read_json_arg(args.config.as_deref().unwrap_or("{}"))?;
    let (body, label) = read_body(&args.body)?;
    let runtime = options::runtime_for(config, &args.limits)?;
    let plugin = load_plugin(&runtime, &args.file, &config.plugins.pins)?;
    let pre = connector_of(&plugin, "plugin parse")?;
    let limits = args.limits.apply(config.limits.clone(), config)?;
    // No outbound policy: parse reads the body it is given, so every request
    // the connector might make is refused.
    let mut session = pre.session(limits, None);
    let info = session.describe().await.context("describe() failed")?;
    let described = crate::plugins::Described::connector(&info);
    crate::plugins::check_identity(&plugin.path, &plugin.manifest, described)?;
    check_media_type(pre.plugin(), &info, &args.media_type)?;

    let started = Instant::now();
    let changes = parse(&mut session, &plugin_config, &args.media_type, &body, &label)
        .await
        .map_err(|e| with_config_hint(e, args.config.is_none(), &args.file))?;
    let mut stdout = std::io::stdout().lock();
    let observations = changes.observations();
    for observation in &observations {
        writeln!(stdout, "{}", untrusted::json_line(&ObservationLine::new(observation))?)?;
    }
    write_retractions_and_gaps(&mut stdout, &changes)?;
    stdout.flush()?;
    eprintln!(
        "{}: {} observations in {} records{} from {label} ({}) in {:.1} ms",
        plugin.id(),
        observations.len(),
        changes.records.len(),
        retractions_and_gaps(&changes),
        args.media_type,
        started.elapsed().as_secs_f64() * 1000.0
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes a line per retraction (`{"retraction": {"id", "metrics"}}`) and
/// per gap (`{"partial": {"span", "reason"}}`) after the observation lines,
/// each told apart by its one key.
pub(crate) fn write_retractions_and_gaps(out: &mut impl Write, changes: &Changes) -> Result<()> {
    for retraction in &changes.retractions {
        writeln!(
            out,
            "{}",
            untrusted::json_line(&serde_json::json!({ "retraction": retraction }))?
        )?;
    }
    for gap in &changes.partial {
        writeln!(out, "{}", untrusted::json_line(&serde_json::json!({ "partial": gap }))?)?;
    }
    for span in &changes.complete {
        writeln!(
            out,
            "{}",
            untrusted::json_line(&serde_json::json!({ "complete": span }))?
        )?;
    }
    Ok(())
}

/// `, 2 retractions, 1 gap` for a summary line; empty when there are none.
pub(crate) fn retractions_and_gaps(changes: &Changes) -> String {
    let mut said = String::new();
    if !changes.retractions.is_empty() {
        said.push_str(&format!(", {} retractions", changes.retractions.len()));
    }
    if !changes.partial.is_empty() {
        said.push_str(&format!(", {} partial spans", changes.partial.len()));
    }
    if !changes.complete.is_empty() {
        said.push_str(&format!(", {} spans completed", changes.complete.len()));
    }
    said
}

/// The body and how messages name it; `-` is standard input.
fn read_body(path: &Path) -> Result<(Vec<u8>, String)> {
    if path == Path::new("-") {
        let mut body = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut body)
            .context("reading the body from standard input")?;
        return Ok((body, "standard input".into()));
    }
    let body = std::fs::read(path).with_context(|| format!("reading the body file {}", path.display()))?;
    Ok((body, path.display().to_string()))
}

/// Why `parse()` failed: the plugin's own message (which names the record)
/// after what was being parsed.
#[derive(Debug, thiserror::Error)]
#[error("parsing {what} as `{media_type}` failed: {source}")]
pub(crate) struct ParseFailed {
    what: String,
    media_type: String,
    source: crate::runtime::RuntimeError,
}

impl ParseFailed {
    fn plugin_error(&self) -> Option<&PluginError> {
        self.source.plugin_error()
    }
}

/// Calls `parse(config, media_type, body)`; `what` names the body in errors.
pub(crate) async fn parse(
    session: &mut ConnectorSession,
    config: &str,
    media_type: &str,
    body: &[u8],
    what: &str,
) -> Result<Changes, ParseFailed> {
    session
        .parse(config, media_type, body)
        .await
        .map_err(|source| ParseFailed {
            what: what.to_string(),
            media_type: media_type.to_string(),
            source,
        })
}

/// A config error after the default `{}` config is most likely a missing
/// `--config`: say so.
fn with_config_hint(error: ParseFailed, default_config: bool, file: &Path) -> anyhow::Error {
    if default_config && matches!(error.plugin_error(), Some(PluginError::Config(_))) {
        return anyhow::anyhow!(
            "{error}; this connector needs a config: pass --config JSON|@FILE (its schema: `xla-host plugin check {} --json`)",
            file.display()
        );
    }
    error.into()
}

/// Refuses a media type the connector does not declare in `describe()`,
/// before it is called: the list of declared ones is the useful answer.
/// Parameters (`; charset=utf-8`, `; table=incident`) are not compared.
pub(crate) fn check_media_type(plugin: &PluginId, info: &ConnectorInfo, media_type: &str) -> Result<()> {
    let wanted = essence(media_type);
    if info.media_types.iter().any(|declared| essence(declared) == wanted) {
        return Ok(());
    }
    if info.media_types.is_empty() {
        bail!("{plugin} declares no media types in describe(): it does not parse files or pushed bodies");
    }
    bail!(
        "{plugin} does not parse `{media_type}`; it declares: {}. Pass one of those with --media-type",
        info.media_types.join(", ")
    )
}

/// One observation as a JSON line: the time both as unix ms (`at`) and as
/// RFC 3339 (`time`), the dimensions as an object.
#[derive(serde::Serialize)]
struct ObservationLine<'a> {
    id: &'a str,
    metric: &'a str,
    layer: Layer,
    value: f64,
    at: i64,
    time: Option<String>,
    dimensions: BTreeMap<&'a str, &'a str>,
}

impl<'a> ObservationLine<'a> {
    fn new(o: &'a Observation) -> Self {
        ObservationLine {
            id: &o.id,
            metric: &o.metric,
            layer: o.layer,
            value: o.value,
            at: o.at,
            time: chrono::DateTime::from_timestamp_millis(o.at)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            dimensions: o.dimensions.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(media_types: &[&str]) -> ConnectorInfo {
        ConnectorInfo {
            name: "hs".into(),
            version: "0.1.0".into(),
            description: String::new(),
            config_schema: "{}".into(),
            metrics: Vec::new(),
            hosts: Vec::new(),
            media_types: media_types.iter().map(|m| m.to_string()).collect(),
        }
    }

    #[test]
    fn media_types_compare_by_essence() {
        let plugin = PluginId::new("hs", "0.1.0");
        let declared = info(&["text/csv", "application/json"]);
        assert!(check_media_type(&plugin, &declared, "Text/CSV; charset=utf-8").is_ok());
        assert!(check_media_type(&plugin, &declared, "application/json; table=incident").is_ok());
        let refused = check_media_type(&plugin, &declared, "text/xml")
            .expect_err("undeclared")
            .to_string();
        assert!(
            refused.contains("`text/xml`") && refused.contains("text/csv, application/json"),
            "{refused}"
        );
        let none = check_media_type(&plugin, &info(&[]), "text/csv").expect_err("none declared");
        assert!(none.to_string().contains("declares no media types"), "{none}");
    }

    #[test]
    fn a_line_has_the_time_twice_and_dimensions_as_an_object() {
        let o = Observation::new("a1", "resolution_hours", Layer::Operational, 2.5, 1_791_036_129_000)
            .dim("ticket", "INC1")
            .dim("priority", "P2");
        let line = serde_json::to_value(ObservationLine::new(&o)).expect("serializes");
        assert_eq!(line["time"], "2026-10-03T14:02:09.000Z");
        assert_eq!(line["layer"], "operational");
        assert_eq!(
            line["dimensions"],
            serde_json::json!({"ticket": "INC1", "priority": "P2"})
        );
    }
}
