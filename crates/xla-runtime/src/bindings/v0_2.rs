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
use xla_types::{Name, untrusted};

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

/// A batch's records with their names looked up in its names table. Each
/// distinct string is one shared allocation, cloned into the records that
/// use it (a reference count, not a copy).
///
/// Errors: an index past the end of `names` (a plugin bug: the SDKs build
/// the table), naming the record; nothing of the batch is kept.
fn records(names: Vec<String>, records: Vec<wit::SourceRecord>) -> Result<Vec<Record>, PluginError> {
    let names: Vec<Name> = names
        .into_iter()
        .map(|n| Name::from(std::sync::Arc::<str>::from(n)))
        .collect();
    let name = |i: u32, id: &str| -> Result<Name, PluginError> {
        names.get(i as usize).cloned().ok_or_else(|| {
            PluginError::Permanent(format!(
                "record `{}` refers to name {i}, but the batch's names table has {} (contract 0.2: every \
                 name-ref indexes changes.names; the SDKs build it, so this is a bug in the plugin); \
                 nothing of the batch was stored",
                untrusted::escape_capped(id, 100),
                names.len()
            ))
        })
    };
    // Loops with exact capacities: collecting through `Result` cannot size
    // the vectors up front.
    let mut out = Vec::with_capacity(records.len());
    for r in records {
        let mut dimensions = Vec::with_capacity(r.dimensions.len());
        for &(k, v) in &r.dimensions {
            dimensions.push((name(k, &r.id)?, name(v, &r.id)?));
        }
        let mut values = Vec::with_capacity(r.values.len());
        for v in &r.values {
            values.push(MetricValue {
                metric: name(v.metric, &r.id)?,
                layer: layer(v.layer),
                value: v.value,
            });
        }
        out.push(Record {
            id: r.id,
            at: r.at,
            dimensions,
            values,
        });
    }
    Ok(out)
}

fn changes(c: wit::Changes) -> Result<Changes, PluginError> {
    let span = |s: wit::Span| Span::new(s.start, s.end);
    Ok(Changes {
        records: records(c.names, c.records)?,
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
    })
}

/// Host bytes that reading `c` allocates beyond the lifted answer, which
/// wasmtime charged: each name once, and a shared name for every
/// reference to it. Eight bytes of guest memory per dimension reference
/// become 48 on the host.
fn expansion(c: &wit::Changes) -> u64 {
    let name = std::mem::size_of::<Name>() as u64;
    let names: u64 = c.names.iter().map(|n| n.len() as u64 + 16 + name).sum();
    let references: u64 = c
        .records
        .iter()
        .map(|r| {
            r.dimensions.len() as u64 * 2 * name + r.values.len() as u64 * std::mem::size_of::<MetricValue>() as u64
        })
        .sum();
    names.saturating_add(references)
}

/// [`expansion`] of a pull's step.
fn batch_expansion(batch: &wit_connector::Batch) -> u64 {
    expansion(&batch.changes)
}

/// A 0.2 pull's step, its parts.
fn batch_changes(batch: wit_connector::Batch) -> Result<(Changes, Option<String>, bool), PluginError> {
    Ok((changes(batch.changes)?, batch.cursor, batch.more))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, dimensions: Vec<(u32, u32)>, metric: u32) -> wit::SourceRecord {
        wit::SourceRecord {
            id: id.into(),
            at: 1_760_000_000_000,
            dimensions,
            values: vec![wit::MetricValue {
                metric,
                layer: wit::Layer::Operational,
                value: 1.0,
            }],
        }
    }

    #[test]
    fn names_are_looked_up_once_and_shared_by_the_records() {
        let names = ["service", "Email", "ticket_resolved"].map(String::from).to_vec();
        let got =
            records(names, vec![record("a", vec![(0, 1)], 2), record("b", vec![(0, 1)], 2)]).expect("valid indexes");
        assert_eq!(got[0].dimension("service"), Some("Email"));
        assert_eq!(got[1].values[0].metric, "ticket_resolved");
        assert_eq!(
            got[0].dimensions[0].1.address(),
            got[1].dimensions[0].1.address(),
            "one allocation per name, shared"
        );
    }

    #[test]
    fn an_index_past_the_names_table_refuses_the_batch_naming_the_record() {
        let names = vec!["service".to_string()];
        for bad in [
            record("INC\u{1b}[31m", vec![(0, 7)], 0),
            record("INC\u{1b}[31m", vec![], u32::MAX),
        ] {
            let error = records(names.clone(), vec![record("ok", vec![], 0), bad]).expect_err("a bad index");
            let PluginError::Permanent(message) = error else {
                panic!("not a permanent error: {error:?}");
            };
            assert!(message.contains("record `INC\\u{1b}[31m`"), "{message}");
            assert!(message.contains("names table has 1"), "{message}");
            assert!(!message.contains('\u{1b}'), "the id is escaped: {message}");
        }
    }

    #[test]
    fn repeating_a_name_is_charged_as_the_memory_the_host_would_take() {
        // One short name referenced a million times: 8 MB of guest memory,
        // 48 MB of shared names on the host.
        let changes = wit::Changes {
            names: vec!["x".to_string()],
            records: vec![record("a", vec![(0, 0); 1_000_000], 0)],
            retractions: Vec::new(),
            partial: Vec::new(),
            complete: Vec::new(),
        };
        let bytes = expansion(&changes);
        assert!(bytes >= 48_000_000, "{bytes}");
        let limiter = crate::limits::MemoryLimiter::new(32 << 20);
        let refused = limiter.check_expansion(bytes).expect_err("past a 32 MiB cap");
        assert_eq!(refused.limit, 32 << 20);
        crate::limits::MemoryLimiter::new(64 << 20)
            .check_expansion(bytes)
            .expect("within a 64 MiB cap");
    }

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
