//! # XLA Host
//!
//! A host for sandboxed WebAssembly plugins that turn IT data into
//! experience level agreement (XLA) results. Data flows one way:
//!
//! ```text
//! source ──▶ connector plugin ──▶ store ──▶ scorer plugin ──▶ API / CLI
//! ```
//!
//! Modules, one responsibility each:
//!
//! - [`runtime`]: the wasmtime engine, compile cache, per-call limits and
//!   the sandbox's host imports (log, outbound HTTP with grants and
//!   credentials, rows for scorers);
//! - [`plugins`]: manifests, sha256 pinning, loading a plugin directory;
//! - [`store`]: observations, rollups and cursors in sled;
//! - [`sync`]: the sync engine (batches committed with their cursors,
//!   retries) and the scheduler behind `xla-host serve`;
//! - [`config`]: the host's TOML configuration;
//! - [`sim`]: simulators of source systems on loopback, for the demo and tests;
//! - [`untrusted`]: text a plugin or a source controls, made safe for the
//!   terminal and JSON it lands in;
//! - [`cli`]: the `xla-host` command line.
#![deny(missing_docs)]

pub mod cli;
pub mod config;
pub mod plugins;
pub mod runtime;
pub mod score;
pub mod sim;
pub mod store;
pub mod sync;
pub mod untrusted;
