//! # xla-sdk: write XLA Host plugins in Rust
//!
//! An XLA Host plugin is a WebAssembly component that the host runs in a
//! sandbox. There are two kinds:
//!
//! - a **connector** (feature `connector`) brings records in from a
//!   source system: implement [`Connector`] and call [`export_connector!`];
//! - a **scorer** (feature `scorer`) turns stored observations into XLA
//!   results: implement [`Scorer`] and call [`export_scorer!`].
//!
//! ```
//! # #[cfg(feature = "connector")] {
//! use xla_sdk::{Batch, Changes, Connector, ConnectorInfo, Layer, MetricInfo, PluginError, Record};
//!
//! #[derive(serde::Deserialize)]
//! struct Config {
//!     base_url: String,
//! }
//!
//! #[derive(serde::Deserialize)]
//! struct Row {
//!     id: String,
//!     score: f64,
//!     answered_at: i64,
//! }
//!
//! struct Survey;
//!
//! impl Connector for Survey {
//!     type Config = Config;
//!
//!     fn info() -> ConnectorInfo {
//!         ConnectorInfo {
//!             name: "acme-survey".into(),
//!             version: "0.1.0".into(),
//!             description: "Survey answers from ACME's pulse tool.".into(),
//!             config_schema: r#"{"type":"object","required":["base_url"]}"#.into(),
//!             metrics: vec![MetricInfo::new("happiness_rating", Layer::Experience, "rating_0_10", "Survey score.")],
//!             hosts: vec!["https://*.acme.example".into()],
//!             media_types: vec![],
//!         }
//!     }
//!
//!     fn pull(config: &Config, _cursor: Option<&str>) -> Result<Batch, PluginError> {
//!         let rows: Vec<Row> = xla_sdk::http::get(&format!("{}/answers", config.base_url))?
//!             .send()?
//!             .error_for_status()?
//!             .json()?;
//!         let records = rows
//!             .into_iter()
//!             .map(|r| Record::new(r.id, r.answered_at).value("happiness_rating", Layer::Experience, r.score))
//!             .collect();
//!         Ok(Batch { changes: Changes::records(records), cursor: None, more: false })
//!     }
//! }
//!
//! xla_sdk::export_connector!(Survey);
//! # }
//! ```
//!
//! Everything a plugin needs from outside comes through the host: HTTP goes
//! through [`http`] (only to hosts the operator granted, with credentials the
//! plugin never sees), logs through [`log`]. On the host target (for `cargo
//! test`) the same code runs against recorded HTTP exchanges with
//! [`testkit`].
//!
//! Connectors share what every source needs and no source owns: calendar
//! arithmetic and RFC 3339 text ([`time`]), CSV bodies as header-mapped
//! rows ([`csv`]), origins in the config and the shape of a config error
//! ([`origin`], [`config::field_error`]), one table from HTTP statuses to
//! errors ([`status`]) and versioned cursors ([`cursor`]). What is one
//! vendor's (its date shapes, its error bodies, its paging) stays in its
//! connector.
//!
//! Scorers share their formulas ([`formulas`]: happiness, shares of
//! booleans), the checked reading of aggregates ([`aggregates`]) and of
//! per-subject rows ([`subject`]), so a number means the same in every
//! scorer.
#![deny(missing_docs)]

/// Defines `error_to_wit`, mapping [`PluginError`] into the `plugin-error`
/// of a world's bindings (each world's bindings carry their own copy of it).
#[cfg(any(feature = "connector", feature = "scorer"))]
macro_rules! plugin_error_to_wit {
    ($wit_types:ident) => {
        fn error_to_wit(e: $crate::PluginError) -> $wit_types::PluginError {
            match e {
                $crate::PluginError::Config(m) => $wit_types::PluginError::Config(m),
                $crate::PluginError::Auth(m) => $wit_types::PluginError::Auth(m),
                $crate::PluginError::RateLimited(s) => $wit_types::PluginError::RateLimited(s),
                $crate::PluginError::Transient(m) => $wit_types::PluginError::Transient(m),
                $crate::PluginError::Permanent(m) => $wit_types::PluginError::Permanent(m),
                $crate::PluginError::BadData(m) => $wit_types::PluginError::BadData(m),
            }
        }
    };
}

pub mod aggregates;
pub mod config;
pub mod csv;
pub mod cursor;
pub mod formulas;
pub mod http;
pub mod log;
pub mod origin;
pub mod status;
pub mod subject;
pub mod time;

#[cfg(feature = "connector")]
pub mod connector;
#[cfg(feature = "scorer")]
pub mod scorer;
#[cfg(not(target_arch = "wasm32"))]
pub mod testkit;

pub use config::{parse_config, parse_parameters};
pub use xla_types::*;

#[cfg(feature = "connector")]
pub use connector::Connector;
#[cfg(feature = "scorer")]
pub use scorer::{RowReader, Scorer};

/// The contract version this SDK implements (`xla:plugin@0.2.0`).
pub const CONTRACT_VERSION: &str = "0.2.0";

#[doc(hidden)]
pub mod __private {
    pub use serde_json;
}
