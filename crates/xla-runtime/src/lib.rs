//! The Wasm runtime: one wasmtime [`Engine`](wasmtime::Engine) per process,
//! the on-disk compile cache, per-call limits, and the sandbox's host
//! imports (logging, outbound HTTP, per-subject rows).
//!
//! A plugin is compiled once (or loaded from the cache), linked once into an
//! `InstancePre`, and instantiated fresh for each call or sync run from the
//! pooling allocator. A trap discards the instance; the host goes on.
//!
//! The contract's generated bindings live in `bindings`, one module per
//! released version; everything else works with the host's own types.
//!
//! This crate knows nothing of storage or the API: it runs plugins. It
//! owns the `[plugins]`, `[runtime]` and `[limits]` sections of the host
//! config ([`config`], [`Limits`]).
#![deny(missing_docs)]

mod bindings;
mod cache;
mod call;
pub mod config;
mod connector;
mod describe;
mod engine;
mod error;
mod limits;
mod log;
pub mod outbound;
pub mod plugins;
mod rows;
mod scorer;
mod state;
mod types;

pub use bindings::{Contract, is_supported_contract};
pub use cache::CacheOutcome;
pub use connector::{ConnectorPre, ConnectorSession};
pub use engine::{Runtime, RuntimeOptions};
pub use error::{PluginId, RuntimeError};
pub use limits::{LimitOverrides, Limits};
pub use scorer::{ScorerPre, ScorerSession};
pub use types::*;
