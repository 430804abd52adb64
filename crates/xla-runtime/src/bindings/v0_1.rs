//! Contract `xla:plugin@0.1.0` (`wit/since_v0.1.0/`, frozen): its
//! generated bindings, the conversions between its types and the host's,
//! the versions it accepts, and the linkers of its two worlds.

use crate::log::Level;
use crate::outbound;
use crate::rows::RowCursor;
use crate::state::PluginState;
use crate::{Aggregate, ConnectorInfo, Layer, MetricInfo, Observation, PluginError, Score, ScoreInput, ScorerInfo};
use wasmtime::Engine;
use wasmtime::component::{HasSelf, Linker, Resource};

mod generated {
    //! Both worlds of the package, generated once: the scorer world takes
    //! the shared interfaces from the connector's, so each WIT type has one
    //! Rust type.
    pub(crate) mod connector {
        wasmtime::component::bindgen!({
            path: "../../wit/since_v0.1.0",
            world: "xla:plugin/connector-plugin",
            exports: { default: async },
            require_store_data_send: true,
            with: {
                "wasi:http": wasmtime_wasi_http::p2::bindings::http,
                "wasi:io": wasmtime_wasi::p2::bindings::io,
                "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            },
        });
    }

    pub(crate) mod scorer {
        wasmtime::component::bindgen!({
            path: "../../wit/since_v0.1.0",
            world: "xla:plugin/scorer-plugin",
            exports: { default: async },
            // A row reader the host cannot find is a host bug: trap, do not
            // answer "no rows".
            imports: { "xla:plugin/rows.[method]row-reader.next-batch": trappable },
            require_store_data_send: true,
            with: {
                "xla:plugin/types": super::connector::xla::plugin::types,
                "xla:plugin/log": super::connector::xla::plugin::log,
                "xla:plugin/rows.row-reader": crate::rows::RowCursor,
            },
        });
    }
}

use generated::connector::exports::xla::plugin::connector as wit_connector;
use generated::connector::xla::plugin::{log as wit_log, types as wit};
pub(crate) use generated::connector::{ConnectorPlugin, ConnectorPluginPre};
use generated::scorer::exports::xla::plugin::scorer as wit_scorer;
use generated::scorer::xla::plugin::rows as wit_rows;
pub(crate) use generated::scorer::{ScorerPlugin, ScorerPluginPre};

/// The versions this module loads, for messages.
pub(crate) const ACCEPTS: &str = "0.1.x";

/// The version a plugin of this contract exports, for messages.
pub(crate) const EXPORTED: &str = "0.1.0";

/// Contract 0.1.x: same major and, below 1.0, same minor.
pub(crate) fn accepts(version: &str) -> bool {
    semver::Version::parse(version).is_ok_and(|v| v.major == 0 && v.minor == 1)
}

/// The linker of connectors: WASI (deny by default), `wasi:http` through
/// the outbound hooks (with the request setters checked in guest memory),
/// and `log`.
pub(crate) fn connector_linker(engine: &Engine) -> wasmtime::Result<Linker<PluginState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    outbound::request_parts::add_to_linker(&mut linker)?;
    wit_log::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut linker, |state| state)?;
    Ok(linker)
}

/// The linker of scorers: WASI (for language runtimes that need it; with no
/// files, environment or sockets), `log` and `rows`. No `wasi:http`. The
/// async WASI means a scorer that sleeps still meets its wall-clock deadline.
pub(crate) fn scorer_linker(engine: &Engine) -> wasmtime::Result<Linker<PluginState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wit_log::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut linker, |state| state)?;
    wit_rows::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut linker, |state| state)?;
    Ok(linker)
}

// The host imports, wired to the host's implementations.

impl wit_log::Host for PluginState {
    fn log(&mut self, level: wit_log::Level, message: String) {
        let level = match level {
            wit_log::Level::Trace => Level::Trace,
            wit_log::Level::Debug => Level::Debug,
            wit_log::Level::Info => Level::Info,
            wit_log::Level::Warn => Level::Warn,
            wit_log::Level::Error => Level::Error,
        };
        self.log_message(level, &message);
    }
}

impl wit_rows::Host for PluginState {}

impl wit_rows::HostRowReader for PluginState {
    fn next_batch(&mut self, reader: Resource<RowCursor>, max: u32) -> wasmtime::Result<Vec<wit_rows::SubjectRow>> {
        let rows = crate::rows::next_batch(self, &reader, max)?;
        Ok(rows
            .into_iter()
            .map(|row| wit_rows::SubjectRow {
                key: row.key,
                dimensions: row.dimensions,
                values: row.values,
            })
            .collect())
    }

    fn drop(&mut self, reader: Resource<RowCursor>) -> wasmtime::Result<()> {
        self.table.delete(reader)?;
        Ok(())
    }
}

// Conversions between this version's types and the host's.

fn layer(layer: wit::Layer) -> Layer {
    match layer {
        wit::Layer::Experience => Layer::Experience,
        wit::Layer::Operational => Layer::Operational,
        wit::Layer::Technical => Layer::Technical,
    }
}

fn layer_to_wit(layer: Layer) -> wit::Layer {
    match layer {
        Layer::Experience => wit::Layer::Experience,
        Layer::Operational => wit::Layer::Operational,
        Layer::Technical => wit::Layer::Technical,
    }
}

pub(crate) fn observation(o: wit::Observation) -> Observation {
    Observation {
        id: o.id,
        metric: o.metric,
        layer: layer(o.layer),
        value: o.value,
        at: o.at,
        dimensions: o.dimensions,
    }
}

pub(crate) fn observations(observations: Vec<wit::Observation>) -> Vec<Observation> {
    observations.into_iter().map(observation).collect()
}

/// The plugin's error, its message escaped and capped: a message is only
/// ever shown (terminal, log, API), never used as data.
pub(crate) fn plugin_error(e: wit::PluginError) -> PluginError {
    let shown = |m: String| xla_types::untrusted::escape_capped(&m, super::MAX_ERROR_MESSAGE_BYTES).into_owned();
    match e {
        wit::PluginError::Config(m) => PluginError::Config(shown(m)),
        wit::PluginError::Auth(m) => PluginError::Auth(shown(m)),
        wit::PluginError::RateLimited(s) => PluginError::RateLimited(s),
        wit::PluginError::Transient(m) => PluginError::Transient(shown(m)),
        wit::PluginError::Permanent(m) => PluginError::Permanent(shown(m)),
        wit::PluginError::BadData(m) => PluginError::BadData(shown(m)),
    }
}

pub(crate) fn connector_info(info: wit_connector::ConnectorInfo) -> ConnectorInfo {
    ConnectorInfo {
        name: info.name,
        version: info.version,
        description: info.description,
        config_schema: info.config_schema,
        metrics: info
            .metrics
            .into_iter()
            .map(|m| MetricInfo {
                name: m.name,
                layer: layer(m.layer),
                unit: m.unit,
                description: m.description,
            })
            .collect(),
        hosts: info.hosts,
        media_types: info.media_types,
    }
}

pub(crate) fn scorer_info(info: wit_scorer::ScorerInfo) -> ScorerInfo {
    ScorerInfo {
        name: info.name,
        version: info.version,
        description: info.description,
        parameters_schema: info.parameters_schema,
        metrics: info.metrics,
        needs_rows: info.needs_rows,
    }
}

pub(crate) fn score_input(input: &ScoreInput) -> wit_scorer::ScoreInput {
    wit_scorer::ScoreInput {
        tenant: input.tenant.clone(),
        window_start: input.window_start,
        window_end: input.window_end,
        group_by: input.group_by.clone(),
        parameters: input.parameters.clone(),
        aggregates: input.aggregates.iter().map(aggregate).collect(),
    }
}

fn aggregate(a: &Aggregate) -> wit_scorer::Aggregate {
    wit_scorer::Aggregate {
        metric: a.metric.clone(),
        layer: layer_to_wit(a.layer),
        group: a.group.clone(),
        count: a.count,
        sum: a.sum,
        min: a.min,
        max: a.max,
        histogram: a.histogram.clone(),
    }
}

pub(crate) fn scores(scores: Vec<wit_scorer::ScoreResult>) -> Vec<Score> {
    scores
        .into_iter()
        .map(|s| Score {
            name: s.name,
            group: s.group,
            value: s.value,
            sample_size: s.sample_size,
            detail: s.detail,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::OutboundHooks;
    use crate::state::Kind;
    use crate::{Limits, PluginId};

    #[test]
    fn a_reader_the_host_does_not_hold_traps_naming_the_plugin() {
        let plugin = PluginId::new("probe", "0.1.0");
        let hooks = OutboundHooks::new(&plugin.name, None);
        let mut state = PluginState::new(&plugin, Kind::Scorer, &Limits::default(), hooks);
        let error = wit_rows::HostRowReader::next_batch(&mut state, Resource::new_own(7), 10)
            .expect_err("no reader 7 was handed out");
        assert!(
            error
                .to_string()
                .starts_with("plugin `probe` 0.1.0: row-reader 7 is not a live reader"),
            "{error}"
        );
    }

    #[test]
    fn accepts_every_0_1_release_and_nothing_else() {
        for version in ["0.1.0", "0.1.7"] {
            assert!(accepts(version), "{version}");
        }
        for version in ["0.2.0", "1.1.0", "0.1", "latest"] {
            assert!(!accepts(version), "{version}");
        }
    }
}
