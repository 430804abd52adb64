//! # XLA Host
//!
//! A host for sandboxed WebAssembly plugins that turn IT data into
//! experience level agreement (XLA) results. Data flows one way, and the
//! crate graph makes it a rule:
//!
//! ```text
//! source ──▶ connector plugin ──▶ store ──▶ scorer plugin ──▶ API / CLI
//!            (xla-runtime)       (xla-store) (xla-score)      (xla-host)
//!            driven by xla-sync
//! ```
//!
//! This crate is the binary: the command line ([`cli`]) and the host's one
//! TOML file ([`config`]), which composes the sections each crate owns. For
//! the tests and for embedding, it also names each crate as a module:
//!
//! - [`runtime`] (`xla-runtime`): the wasmtime engine, compile cache,
//!   per-call limits, host imports, outbound HTTP; [`plugins`]: manifests,
//!   pins, loading;
//! - [`store`] (`xla-store`): the store's model and async traits, the
//!   conformance suite every backend passes; [`store_sled`]
//!   (`xla-store-sled`): the embedded backend on sled;
//! - [`sync`] (`xla-sync`): sync runs and the scheduler behind `serve`;
//! - [`score`] (`xla-score`): XLA definitions, scoring, reports;
//! - [`sim`] (`xla-sim`, feature `sim`): simulators of the source systems;
//! - [`untrusted`] (`xla-types`): text a plugin or source controls, made
//!   safe for the terminal and JSON it lands in.
#![deny(missing_docs)]

pub mod cli;
pub mod config;

/// The allocator of every program linking this crate (the binary, its
/// benchmarks and end-to-end tests): mimalloc. A commit makes and frees
/// many small values (join state, rows being encoded), and glibc's malloc
/// spent about a quarter of a store insert's CPU splitting and
/// consolidating its chunks (`BENCHMARKS.md`, issue 15).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub use xla_api as api;
pub use xla_dashboard as dashboard;
pub use xla_runtime as runtime;
pub use xla_runtime::plugins;
pub use xla_score as score;
#[cfg(feature = "sim")]
pub use xla_sim as sim;
pub use xla_store as store;
pub use xla_store_sled as store_sled;
pub use xla_sync as sync;
pub use xla_types as types;
pub use xla_types::untrusted;
