//! The Wasm runtime: one wasmtime [`Engine`](wasmtime::Engine) per process,
//! the on-disk compile cache, per-call limits, and the sandbox's host
//! imports (logging, outbound HTTP, per-subject rows).
//!
//! A plugin is compiled once (or loaded from the cache), linked once into an
//! `InstancePre`, and instantiated fresh for each call or sync run from the
//! pooling allocator. A trap discards the instance; the host goes on.
//!
//! This crate knows nothing of storage or the API: it runs plugins. It
//! owns the `[plugins]`, `[runtime]` and `[limits]` sections of the host
//! config ([`config`], [`Limits`]).
#![deny(missing_docs)]

mod cache;
mod call;
pub mod config;
mod connector;
mod convert;
mod describe;
mod engine;
mod error;
mod limits;
mod log;
pub mod outbound;
pub mod plugins;
mod scorer;
mod state;
mod types;

pub use cache::CacheOutcome;
pub use call::is_supported_contract;
pub use connector::{ConnectorPre, ConnectorSession};
pub use engine::{Runtime, RuntimeOptions};
pub use error::{PluginId, RuntimeError};
pub use limits::{LimitOverrides, Limits};
pub use scorer::{ScorerPre, ScorerSession};
pub use types::*;
