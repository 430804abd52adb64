//! # xla-sdk: write XLA Host plugins in Rust
//!
//! An XLA Host plugin is a WebAssembly component that the host runs in a
//! sandbox. There are two kinds:
//!
//! - a **connector** (feature `connector`) brings observations in from a
//!   source system: implement [`Connector`] and call [`export_connector!`];
//! - a **scorer** (feature `scorer`) turns stored observations into XLA
//!   results: implement [`Scorer`] and call [`export_scorer!`].
//!
//! ```ignore
//! use xla_sdk::{Batch, Connector, Layer, Observation, PluginError};
//!
//! #[derive(serde::Deserialize)]
//! struct Config { base_url: String }
//!
//! struct Survey;
//!
//! impl Connector for Survey {
//!     type Config = Config;
//!     fn info() -> xla_sdk::ConnectorInfo { /* name, version, metrics, hosts */ }
//!     fn pull(config: &Config, cursor: Option<&str>) -> Result<Batch, PluginError> {
//!         let page: Vec<Row> = xla_sdk::http::get(&config.base_url)?.send()?.json()?;
//!         /* map rows to observations */
//!     }
//! }
//!
//! xla_sdk::export_connector!(Survey);
//! ```
//!
//! Everything a plugin needs from outside comes through the host: HTTP goes
//! through [`http`] (only to hosts the operator granted, with credentials the
//! plugin never sees), logs through [`log`]. On the host target (for `cargo
//! test`) the same code runs against recorded HTTP exchanges with
//! [`testkit`].
#![deny(missing_docs)]

mod config;
pub mod http;
pub mod log;
mod types;

#[cfg(feature = "connector")]
pub mod connector;
#[cfg(feature = "scorer")]
pub mod scorer;
#[cfg(not(target_arch = "wasm32"))]
pub mod testkit;

pub use config::parse_config;
pub use types::*;

#[cfg(feature = "connector")]
pub use connector::Connector;
#[cfg(feature = "scorer")]
pub use scorer::{RowReader, Scorer};

/// The contract version this SDK implements (`xla:plugin@0.1.0`).
pub const CONTRACT_VERSION: &str = "0.1.0";

#[cfg(all(target_arch = "wasm32", feature = "connector", feature = "scorer"))]
compile_error!(
    "enable exactly one of the features `connector` and `scorer`: a plugin component implements one world"
);

#[doc(hidden)]
pub mod __private {
    pub use serde_json;
}
