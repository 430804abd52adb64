//! The contract's Rust types, shared with the SDK (crate `xla-types`); the
//! runtime converts the generated bindings into these at the boundary.

pub use xla_types::{
    Aggregate, Batch, Changes, ConnectorInfo, Gap, Layer, MetricInfo, MetricValue, Observation, PluginError, Record,
    Retraction, Score, ScoreInput, ScorerInfo, Span, SubjectRow,
};
