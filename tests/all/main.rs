//! End-to-end tests of XLA Host, one module per area. Every plugin here is a
//! real component built for wasm32-wasip2 by the build script; every server
//! is a real socket on loopback.

mod api;
mod builtin_scorers;
mod cli;
mod contract;
mod dashboard;
mod deadlines;
mod happysignals;
mod host_memory;
mod hosts;
mod loading;
mod migrate;
mod nexthink;
mod outbound;
mod python;
mod sandbox;
mod schedule;
mod score;
mod scorer;
mod servicenow;
mod store;
mod support;
mod sync;
mod terminal;
mod throttling;
