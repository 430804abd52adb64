//! XLA scoring: definitions (what is measured, by which scorer, against
//! which target), periods, targets (fixed, DEX threshold, continuous
//! improvement), the engine that runs scorer plugins over the store, and the
//! reports built on it.
//!
//! Data flows one way: the store's rollups and per-ticket rows go into a
//! scorer plugin in the sandbox; its results, the targets and the contract
//! make the report. Nothing here writes to the store.
#![deny(missing_docs)]

pub mod definition;
pub mod engine;
pub mod period;
pub mod report;
pub mod scorers;
pub mod standard;
pub mod target;
pub mod vocabulary;

pub use definition::{Contract, DefinitionError, Direction, Rate, Target, XlaDefinition};
pub use engine::{Engine, LoadedScorer, PeriodScore, ScoreError};
pub use period::{Period, Window};
pub use report::{
    Cause, GroupResult, Money, ReportBundle, Scorecard, ScorecardOptions, ScorecardRow, TREND_PERIODS, TrendDirection,
    TrendPoint, WATERMELON_SCORER, XlaReport, XotSlice, XotValues, XotView, attribute,
};
pub use scorers::{ScorerLoadError, load_scorers};
pub use standard::standard_xlas;
pub use target::{PeriodTarget, target_for};
