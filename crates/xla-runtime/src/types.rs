//! The contract's Rust types, shared with the SDK (crate `xla-types`); the
//! runtime converts the generated bindings into these at the boundary.

pub use xla_types::{
    Aggregate, Batch, ConnectorInfo, Layer, MetricInfo, Observation, PluginError, Score, ScoreInput, ScorerInfo,
    SubjectRow,
};
