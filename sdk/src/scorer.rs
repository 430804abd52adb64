//! The scorer side of the contract: implement [`Scorer`], then call
//! [`export_scorer!`](crate::export_scorer).
//!
//! A scorer has no network, no clock and no randomness: the same input always
//! gives the same scores.

use crate::{Aggregate, Layer, PluginError, Score, ScoreInput, ScorerInfo, SubjectRow};

/// Generated bindings of the `scorer-plugin` world. Authors do not need them.
#[doc(hidden)]
#[allow(missing_docs, unsafe_code, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit/since_v0.2.0",
        world: "xla:plugin/scorer-plugin@0.2.0",
        generate_all,
        pub_export_macro: true,
        export_macro_name: "__export_scorer_world",
        default_bindings_module: "::xla_sdk::scorer::bindings",
    });
}

use bindings::exports::xla::plugin::scorer as wit;
use bindings::xla::plugin::{rows as wit_rows, types as wit_types};

/// A scoring rule.
pub trait Scorer {
    /// Describes the scorer: name, version, parameters, metrics it reads.
    fn info() -> ScorerInfo;

    /// Computes scores for one window. `rows` is present when
    /// [`ScorerInfo::needs_rows`] is true.
    fn score(input: &ScoreInput, rows: Option<&mut RowReader>) -> Result<Vec<Score>, PluginError>;
}

/// Forward-only reader over the per-subject rows of the window.
pub struct RowReader {
    inner: wit_rows::RowReader,
}

impl RowReader {
    /// Up to `max` further rows; empty at the end.
    pub fn next_batch(&mut self, max: u32) -> Vec<SubjectRow> {
        self.inner
            .next_batch(max)
            .into_iter()
            .map(|r| SubjectRow {
                key: r.key,
                dimensions: r.dimensions,
                values: r.values,
            })
            .collect()
    }

    /// Calls `f` for every remaining row, reading in batches of 1,024.
    pub fn for_each(&mut self, mut f: impl FnMut(SubjectRow)) {
        loop {
            let batch = self.next_batch(1024);
            if batch.is_empty() {
                return;
            }
            batch.into_iter().for_each(&mut f);
        }
    }

    /// Calls `f` for every remaining row, reading in batches of 1,024, and
    /// stops at the first error `f` returns.
    pub fn try_for_each<E>(&mut self, mut f: impl FnMut(SubjectRow) -> Result<(), E>) -> Result<(), E> {
        loop {
            let batch = self.next_batch(1024);
            if batch.is_empty() {
                return Ok(());
            }
            batch.into_iter().try_for_each(&mut f)?;
        }
    }
}

/// A scorer's entry points without rows, for native tests.
#[doc(hidden)]
pub struct Entry {
    /// `describe()`.
    pub describe: fn() -> ScorerInfo,
    /// `score(input)` with no rows.
    pub score: fn(&ScoreInput) -> Result<Vec<Score>, PluginError>,
}

/// The entry points of `T`.
#[doc(hidden)]
pub fn entry<T: Scorer>() -> Entry {
    Entry {
        describe: T::info,
        score: |input| T::score(input, None),
    }
}

/// Bridges a [`Scorer`] to the generated bindings.
#[doc(hidden)]
pub struct Adapter<T>(std::marker::PhantomData<T>);

impl<T: Scorer> wit::Guest for Adapter<T> {
    fn describe() -> wit::ScorerInfo {
        let info = T::info();
        wit::ScorerInfo {
            name: info.name,
            version: info.version,
            description: info.description,
            parameters_schema: info.parameters_schema,
            metrics: info.metrics,
            needs_rows: info.needs_rows,
        }
    }

    fn score(
        input: wit::ScoreInput,
        rows: Option<wit_rows::RowReader>,
    ) -> Result<Vec<wit::ScoreResult>, wit_types::PluginError> {
        let input = input_from_wit(input);
        let mut rows = rows.map(|inner| RowReader { inner });
        let scores = T::score(&input, rows.as_mut()).map_err(error_to_wit)?;
        Ok(scores
            .into_iter()
            .map(|s| wit::ScoreResult {
                name: s.name,
                group: s.group,
                value: s.value,
                sample_size: s.sample_size,
                detail: s.detail,
            })
            .collect())
    }
}

fn input_from_wit(input: wit::ScoreInput) -> ScoreInput {
    ScoreInput {
        tenant: input.tenant,
        window_start: input.window_start,
        window_end: input.window_end,
        group_by: input.group_by,
        parameters: input.parameters,
        aggregates: input
            .aggregates
            .into_iter()
            .map(|a| Aggregate {
                metric: a.metric,
                layer: layer_from_wit(a.layer),
                group: a.group,
                count: a.count,
                sum: a.sum,
                min: a.min,
                max: a.max,
                histogram: a.histogram,
            })
            .collect(),
    }
}

fn layer_from_wit(layer: wit_types::Layer) -> Layer {
    match layer {
        wit_types::Layer::Experience => Layer::Experience,
        wit_types::Layer::Operational => Layer::Operational,
        wit_types::Layer::Technical => Layer::Technical,
    }
}

plugin_error_to_wit!(wit_types);

/// Exports a type implementing [`Scorer`] as the plugin's scorer.
///
/// ```text
/// xla_sdk::export_scorer!(Happiness);
/// ```
#[macro_export]
macro_rules! export_scorer {
    ($scorer:ty) => {
        // Exports exist only in the component; on the host target (`cargo
        // test` with the test kit) the plugin is an ordinary library.
        #[cfg(not(target_arch = "wasm32"))]
        #[doc(hidden)]
        pub fn __xla_scorer_entry() -> $crate::scorer::Entry {
            $crate::scorer::entry::<$scorer>()
        }

        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type __XlaScorerAdapter = $crate::scorer::Adapter<$scorer>;
            $crate::scorer::bindings::__export_scorer_world!(
                __XlaScorerAdapter with_types_in $crate::scorer::bindings
            );
        };
    };
}
