//! Contract `xla:plugin@0.2.0` (`wit/since_v0.2.0/`): its
//! generated bindings, the conversions between its types and the host's,
//! the versions it accepts, and the imports of its two worlds.
//!
//! Records, retractions and completeness arrive as they are.

use crate::log::Level;
use crate::rows::RowCursor;
use crate::state::PluginState;
use crate::{
    Aggregate, Batch, Changes, ConnectorInfo, Gap, Layer, MetricInfo, MetricValue, PluginError, Record, Retraction,
    Score, ScoreInput, ScorerInfo, Span,
};
use wasmtime::Store;
use wasmtime::component::{HasSelf, Linker, Resource};

mod generated {
    //! Both worlds of the package, generated once: the scorer world takes
    //! the shared interfaces from the connector's, so each WIT type has one
    //! Rust type.
    pub(crate) mod connector {
        wasmtime::component::bindgen!({
            path: "../../wit/since_v0.2.0",
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
            path: "../../wit/since_v0.2.0",
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
pub(crate) const EXPORTED: &str = "0.2.0";

/// Contract 0.2.x: same major and, below 1.0, same minor.
pub(crate) fn accepts(version: &str) -> bool {
    semver::Version::parse(version).is_ok_and(|v| v.major == 0 && v.minor == 2)
}

shared_with_every_version!();

fn changes(c: wit::Changes) -> Changes {
    let span = |s: wit::Span| Span::new(s.start, s.end);
    Changes {
        records: c
            .records
            .into_iter()
            .map(|r| Record {
                id: r.id,
                at: r.at,
                dimensions: r.dimensions,
                values: r
                    .values
                    .into_iter()
                    .map(|v| MetricValue {
                        metric: v.metric,
                        layer: layer(v.layer),
                        value: v.value,
                    })
                    .collect(),
            })
            .collect(),
        retractions: c
            .retractions
            .into_iter()
            .map(|r| Retraction {
                id: r.id,
                metrics: r.metrics,
            })
            .collect(),
        partial: c
            .partial
            .into_iter()
            .map(|g| Gap {
                span: span(g.span),
                reason: g.reason,
            })
            .collect(),
        complete: c.complete.into_iter().map(span).collect(),
    }
}

/// A 0.2 pull's step, its parts.
fn batch_changes(batch: wit_connector::Batch) -> (Changes, Option<String>, bool) {
    (changes(batch.changes), batch.cursor, batch.more)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_0_2_release_and_nothing_else() {
        for version in ["0.2.0", "0.2.3"] {
            assert!(accepts(version), "{version}");
        }
        for version in ["0.1.0", "0.3.0", "1.2.0", "0.2", "latest"] {
            assert!(!accepts(version), "{version}");
        }
    }
}
