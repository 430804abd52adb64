//! The connector side of the contract: implement [`Connector`], then call
//! [`export_connector!`](crate::export_connector).

use crate::{Batch, Changes, ConnectorInfo, Layer, PluginError};
use serde::de::DeserializeOwned;

/// Generated bindings of the `connector-plugin` world. Authors do not need them.
#[doc(hidden)]
#[allow(missing_docs, unsafe_code, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit/since_v0.2.0",
        world: "xla:plugin/connector-plugin@0.2.0",
        generate_all,
        pub_export_macro: true,
        export_macro_name: "__export_connector_world",
        default_bindings_module: "::xla_sdk::connector::bindings",
    });
}

/// A data connector.
///
/// Every method receives the instance's configuration already parsed into
/// [`Connector::Config`]; a config that does not parse never reaches your code
/// (the host gets a [`PluginError::Config`] naming the field).
pub trait Connector {
    /// The connector's configuration, deserialised from the instance's JSON.
    type Config: DeserializeOwned;

    /// Describes the connector: name, version, config schema, metrics, hosts.
    fn info() -> ConnectorInfo;

    /// Validates the config and reaches the source once. The default accepts
    /// any config that parses.
    fn check(config: &Self::Config) -> Result<(), PluginError> {
        let _ = config;
        Ok(())
    }

    /// Reads the next batch after `cursor`.
    fn pull(config: &Self::Config, cursor: Option<&str>) -> Result<Batch, PluginError>;

    /// Turns a pushed payload (webhook body, imported file) into changes.
    /// The default refuses every media type.
    fn parse(config: &Self::Config, media_type: &str, body: &[u8]) -> Result<Changes, PluginError> {
        let _ = (config, body);
        Err(PluginError::Permanent(format!(
            "this connector does not accept pushed data (media type `{media_type}`)"
        )))
    }
}

/// A connector's entry points over the strings the host passes, shared by
/// the component's exports and by native tests.
#[doc(hidden)]
pub struct Entry {
    /// `describe()`.
    pub describe: fn() -> ConnectorInfo,
    /// `check(config)`.
    pub check: fn(&str) -> Result<(), PluginError>,
    /// `pull(config, cursor)`.
    pub pull: fn(&str, Option<&str>) -> Result<Batch, PluginError>,
    /// `parse(config, media_type, body)`.
    pub parse: ParseFn,
}

/// `parse(config, media_type, body)` over strings.
#[doc(hidden)]
pub type ParseFn = fn(&str, &str, &[u8]) -> Result<Changes, PluginError>;

/// The entry points of `T`.
#[doc(hidden)]
pub fn entry<T: Connector>() -> Entry {
    Entry {
        describe: T::info,
        check: |config| T::check(&crate::parse_config::<T::Config>(config)?),
        pull: |config, cursor| T::pull(&crate::parse_config::<T::Config>(config)?, cursor),
        parse: |config, media_type, body| T::parse(&crate::parse_config::<T::Config>(config)?, media_type, body),
    }
}

/// Bridges a [`Connector`] to the generated bindings.
#[doc(hidden)]
pub struct Adapter<T>(std::marker::PhantomData<T>);

use bindings::exports::xla::plugin::connector as wit;
use bindings::xla::plugin::types as wit_types;

impl<T: Connector> wit::Guest for Adapter<T> {
    fn describe() -> wit::ConnectorInfo {
        let info = T::info();
        wit::ConnectorInfo {
            name: info.name,
            version: info.version,
            description: info.description,
            config_schema: info.config_schema,
            metrics: info
                .metrics
                .into_iter()
                .map(|m| wit_types::MetricInfo {
                    name: m.name,
                    layer: layer_to_wit(m.layer),
                    unit: m.unit,
                    description: m.description,
                })
                .collect(),
            hosts: info.hosts,
            media_types: info.media_types,
        }
    }

    fn check(config: String) -> Result<(), wit_types::PluginError> {
        (entry::<T>().check)(&config).map_err(error_to_wit)
    }

    fn pull(config: String, cursor: Option<String>) -> Result<wit::Batch, wit_types::PluginError> {
        let batch = (entry::<T>().pull)(&config, cursor.as_deref()).map_err(error_to_wit)?;
        Ok(wit::Batch {
            changes: changes_to_wit(batch.changes),
            cursor: batch.cursor,
            more: batch.more,
        })
    }

    fn parse(config: String, media_type: String, body: Vec<u8>) -> Result<wit_types::Changes, wit_types::PluginError> {
        let changes = (entry::<T>().parse)(&config, &media_type, &body).map_err(error_to_wit)?;
        Ok(changes_to_wit(changes))
    }
}

fn layer_to_wit(layer: Layer) -> wit_types::Layer {
    match layer {
        Layer::Experience => wit_types::Layer::Experience,
        Layer::Operational => wit_types::Layer::Operational,
        Layer::Technical => wit_types::Layer::Technical,
    }
}

/// A batch's names table (`changes.names`): each distinct dimension key,
/// dimension value and metric name once, by first use.
#[derive(Default)]
struct Names<'r> {
    list: Vec<String>,
    index: rustc_hash::FxHashMap<&'r str, u32>,
    /// Indexes of the first few keys and metric names by address.
    by_address: Vec<((usize, usize), u32)>,
}

/// Addresses [`Names::of_name`] remembers: more than a connector's keys and
/// metric names.
const ADDRESSES: usize = 32;

impl<'r> Names<'r> {
    /// A dimension key or metric name. Connectors write them as literals,
    /// the same few addresses in every record: found by address in a short
    /// list, without hashing or comparing the text. Two live names at one
    /// address are one text ([`crate::Name::address`]).
    fn of_name(&mut self, name: &'r crate::Name) -> u32 {
        let address = name.address();
        if let Some((_, i)) = self.by_address.iter().find(|(a, _)| *a == address) {
            return *i;
        }
        let i = self.of(name);
        if self.by_address.len() < ADDRESSES {
            self.by_address.push((address, i));
        }
        i
    }

    fn of(&mut self, name: &'r str) -> u32 {
        if let Some(i) = self.index.get(name) {
            return *i;
        }
        let i = self.list.len() as u32;
        self.list.push(name.to_string());
        self.index.insert(name, i);
        i
    }
}

/// Records with their strings said once (see [`Names`]).
fn records_to_wit(records: Vec<crate::Record>) -> (Vec<String>, Vec<wit_types::SourceRecord>) {
    let mut names = Names::default();
    let mut wit: Vec<wit_types::SourceRecord> = records
        .iter()
        .map(|r| wit_types::SourceRecord {
            // Moved in below, once the table no longer borrows the records.
            id: String::new(),
            at: r.at,
            dimensions: r
                .dimensions
                .iter()
                .map(|(k, v)| (names.of_name(k), names.of(v)))
                .collect(),
            values: r
                .values
                .iter()
                .map(|v| wit_types::MetricValue {
                    metric: names.of_name(&v.metric),
                    layer: layer_to_wit(v.layer),
                    value: v.value,
                })
                .collect(),
        })
        .collect();
    let list = names.list;
    for (w, r) in wit.iter_mut().zip(records) {
        w.id = r.id;
    }
    (list, wit)
}

fn changes_to_wit(c: Changes) -> wit_types::Changes {
    let span = |s: crate::Span| wit_types::Span {
        start: s.start,
        end: s.end,
    };
    let (names, records) = records_to_wit(c.records);
    wit_types::Changes {
        names,
        records,
        retractions: c
            .retractions
            .into_iter()
            .map(|r| wit_types::Retraction {
                id: r.id,
                metrics: r.metrics,
            })
            .collect(),
        partial: c
            .partial
            .into_iter()
            .map(|g| wit_types::Gap {
                span: span(g.span),
                reason: g.reason,
            })
            .collect(),
        complete: c.complete.into_iter().map(span).collect(),
    }
}

plugin_error_to_wit!(wit_types);

/// Exports a type implementing [`Connector`] as the plugin's connector.
///
/// ```text
/// xla_sdk::export_connector!(MyConnector);
/// ```
#[macro_export]
macro_rules! export_connector {
    ($connector:ty) => {
        // Exports exist only in the component; on the host target (`cargo
        // test` with the test kit) the plugin is an ordinary library.
        #[cfg(not(target_arch = "wasm32"))]
        #[doc(hidden)]
        pub fn __xla_connector_entry() -> $crate::connector::Entry {
            $crate::connector::entry::<$connector>()
        }

        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type __XlaConnectorAdapter = $crate::connector::Adapter<$connector>;
            $crate::connector::bindings::__export_connector_world!(
                __XlaConnectorAdapter with_types_in $crate::connector::bindings
            );
        };
    };
}

#[cfg(test)]
mod tests {
    use super::records_to_wit;
    use crate::{Layer, Record};

    /// A record's dimensions and metric names as text.
    type Said = (Vec<(String, String)>, Vec<String>);

    #[test]
    fn a_batch_says_each_name_once_whatever_its_kind() {
        // The same key as a literal and as an owned string (another
        // address), and a value equal to a key: one entry each.
        let owned_key = String::from("service");
        let records = vec![
            Record::new("a", 1)
                .dim("service", "Email")
                .dim("channel", "service")
                .value("ticket_resolved", Layer::Operational, 1.0),
            Record::new("b", 2)
                .dim(owned_key, "Email")
                .value("ticket_resolved", Layer::Operational, 1.0)
                .value(String::from("reopened"), Layer::Operational, 0.0),
        ];
        let expected: Vec<Said> = records
            .iter()
            .map(|r| {
                let dims = r
                    .dimensions
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                (dims, r.values.iter().map(|v| v.metric.to_string()).collect())
            })
            .collect();
        let (names, wit) = records_to_wit(records);
        assert_eq!(names, ["service", "Email", "channel", "ticket_resolved", "reopened"]);
        let text = |i: u32| names[i as usize].clone();
        let said: Vec<Said> = wit
            .iter()
            .map(|r| {
                let dims = r.dimensions.iter().map(|(k, v)| (text(*k), text(*v))).collect();
                (dims, r.values.iter().map(|v| text(v.metric)).collect())
            })
            .collect();
        assert_eq!(said, expected);
        assert_eq!(wit[1].id, "b");
    }
}
