//! Contract `xla:plugin@0.1.0` (`wit/since_v0.1.0/`, frozen): its
//! generated bindings, the conversions between its types and the host's,
//! the versions it accepts, and the imports of its two worlds.
//!
//! The adapter: a 0.1 connector sends one observation per metric; the host
//! reads them as records (consecutive observations of one id, time and
//! dimensions become one record), with no retractions and no gaps.

use crate::log::Level;
use crate::rows::RowCursor;
use crate::state::PluginState;
use crate::{
    Aggregate, Batch, Changes, ConnectorInfo, Layer, MetricInfo, Observation, PluginError, Record, Score, ScoreInput,
    ScorerInfo,
};
use wasmtime::Store;
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

/// The version a plugin of this contract exports, for messages.
pub(crate) const EXPORTED: &str = "0.1.0";

/// Contract 0.1.x: same major and, below 1.0, same minor.
pub(crate) fn accepts(version: &str) -> bool {
    semver::Version::parse(version).is_ok_and(|v| v.major == 0 && v.minor == 1)
}

shared_with_every_version!();

fn observation(o: wit::Observation) -> Observation {
    Observation {
        id: o.id,
        metric: o.metric,
        layer: layer(o.layer),
        value: o.value,
        at: o.at,
        dimensions: o.dimensions,
    }
}

/// A 0.1 step's observations as 0.2 changes: records only.
fn changes(observations: Vec<wit::Observation>) -> Result<Changes, PluginError> {
    Ok(Changes::records(Record::group(
        observations.into_iter().map(observation).collect(),
    )))
}

/// Host bytes beyond the lifted answer that reading a 0.1 step allocates:
/// none worth bounding (every string was copied, and charged, on lifting).
fn expansion(_: &[wit::Observation]) -> u64 {
    0
}

/// [`expansion`] of a pull's step.
fn batch_expansion(batch: &wit_connector::Batch) -> u64 {
    expansion(&batch.observations)
}

/// A 0.1 pull's step as 0.2 changes.
fn batch_changes(batch: wit_connector::Batch) -> Result<(Changes, Option<String>, bool), PluginError> {
    Ok((changes(batch.observations)?, batch.cursor, batch.more))
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
