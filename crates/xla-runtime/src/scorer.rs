//! Running scorer plugins: no network, a fixed clock and seeded randomness,
//! a fresh instance for every call so that no call can influence another,
//! and per-subject rows streamed through the `row-reader` resource.

use super::engine::Runtime;
use super::error::{PluginId, RuntimeError};
use super::limits::Limits;
use super::outbound::OutboundHooks;
use super::state::{Kind, PluginState};
use super::{Score, ScoreInput, ScorerInfo, SubjectRow};
use super::{call, convert, describe};
use wasmtime::component::{Component, HasSelf, Linker, Resource};
use wasmtime::{Engine, Store};

pub(crate) mod bindings {
    //! Host bindings of the `scorer-plugin` world; shared types come from the
    //! connector bindings so both kinds use one Rust type per WIT type.
    wasmtime::component::bindgen!({
        path: "../../wit/since_v0.1.0",
        world: "xla:plugin/scorer-plugin",
        exports: { default: async },
        // A row reader the host cannot find is a host bug: trap, do not
        // answer "no rows".
        imports: { "xla:plugin/rows.[method]row-reader.next-batch": trappable },
        require_store_data_send: true,
        with: {
            "xla:plugin/types": crate::connector::bindings::xla::plugin::types,
            "xla:plugin/log": crate::connector::bindings::xla::plugin::log,
            "xla:plugin/rows.row-reader": crate::scorer::RowCursor,
        },
    });
}

use bindings::exports::xla::plugin::scorer as wit;
use bindings::xla::plugin::rows as wit_rows;

/// Largest batch a scorer may ask for at once, whatever it requests.
const MAX_ROW_BATCH: u32 = 4096;

/// The rows behind one `row-reader` resource.
pub struct RowCursor {
    rows: Box<dyn Iterator<Item = SubjectRow> + Send>,
}

/// The linker of scorers: WASI (for language runtimes that need it; with no
/// files, environment or sockets), `log` and `rows`. No `wasi:http`. The
/// async WASI means a scorer that sleeps still meets its wall-clock deadline.
pub(crate) fn linker(engine: &Engine) -> wasmtime::Result<Linker<PluginState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    crate::connector::bindings::xla::plugin::log::add_to_linker::<PluginState, HasSelf<PluginState>>(
        &mut linker,
        |state| state,
    )?;
    wit_rows::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut linker, |state| state)?;
    Ok(linker)
}

impl wit_rows::Host for PluginState {}

impl wit_rows::HostRowReader for PluginState {
    fn next_batch(&mut self, reader: Resource<RowCursor>, max: u32) -> wasmtime::Result<Vec<wit_rows::SubjectRow>> {
        let handle = reader.rep();
        let cursor = self.table.get_mut(&reader).map_err(|e| {
            wasmtime::format_err!(
                "{}: row-reader {handle} is not a live reader ({e}); this is a host bug, please report it",
                self.plugin
            )
        })?;
        Ok(cursor
            .rows
            .by_ref()
            .take(max.min(MAX_ROW_BATCH) as usize)
            .map(|row| wit_rows::SubjectRow {
                key: row.key,
                dimensions: row.dimensions,
                values: row.values,
            })
            .collect())
    }

    fn drop(&mut self, reader: Resource<RowCursor>) -> wasmtime::Result<()> {
        self.table.delete(reader)?;
        Ok(())
    }
}

/// A scorer compiled and linked, ready to instantiate cheaply.
#[derive(Clone)]
pub struct ScorerPre {
    plugin: PluginId,
    pre: bindings::ScorerPluginPre<PluginState>,
    /// Owning the runtime keeps its epoch ticker alive, so the deadline
    /// holds for as long as anything can instantiate this plugin.
    runtime: Runtime,
}

impl ScorerPre {
    /// Links `component` as a scorer; fails if it is another kind of plugin,
    /// targets another contract version, or imports anything beyond WASI and
    /// the contract (a scorer that imports `wasi:http` is refused here).
    pub fn new(runtime: &Runtime, plugin: PluginId, component: &Component) -> Result<ScorerPre, RuntimeError> {
        call::check_export(runtime.engine(), &plugin, component, Kind::Scorer)?;
        let pre = runtime
            .scorer_linker()
            .instantiate_pre(component)
            .map_err(|e| call::link_error(&plugin, Kind::Scorer, e))?;
        let pre = bindings::ScorerPluginPre::new(pre).map_err(|e| call::wrong_world(&plugin, Kind::Scorer, e))?;
        Ok(ScorerPre {
            plugin,
            pre,
            runtime: runtime.clone(),
        })
    }

    /// The plugin.
    pub fn plugin(&self) -> &PluginId {
        &self.plugin
    }

    /// Calls with these limits.
    pub fn session(&self, limits: Limits) -> ScorerSession {
        ScorerSession {
            pre: self.clone(),
            limits,
        }
    }
}

/// Calls into a scorer, each on a fresh instance.
pub struct ScorerSession {
    pre: ScorerPre,
    limits: Limits,
}

impl ScorerSession {
    /// `describe()`.
    pub async fn describe(&mut self) -> Result<ScorerInfo, RuntimeError> {
        let (mut store, instance) = self.instantiate().await?;
        let outcome = call::bounded(&self.limits, &mut store, self.span("describe"), |store| {
            instance.xla_plugin_scorer().call_describe(store)
        })
        .await;
        let info = call::finish(&self.limits, &store, outcome)?;
        let info = ScorerInfo {
            name: info.name,
            version: info.version,
            description: info.description,
            parameters_schema: info.parameters_schema,
            metrics: info.metrics,
            needs_rows: info.needs_rows,
        };
        describe::check_scorer(&self.pre.plugin, &info)?;
        Ok(info)
    }

    /// `score(input, rows)`, on a fresh instance.
    pub async fn score(
        &mut self,
        input: &ScoreInput,
        rows: Option<Box<dyn Iterator<Item = SubjectRow> + Send>>,
    ) -> Result<Vec<Score>, RuntimeError> {
        let (mut store, instance) = self.instantiate().await?;
        let reader = match rows {
            Some(rows) => Some(
                store
                    .data_mut()
                    .table
                    .push(RowCursor { rows })
                    .map_err(|e| RuntimeError::Trap {
                        plugin: self.pre.plugin.clone(),
                        message: format!("cannot hand rows to the plugin: {e}"),
                    })?,
            ),
            None => None,
        };
        let wit_input = to_wit_input(input);
        let outcome = call::bounded(&self.limits, &mut store, self.span("score"), |store| {
            instance.xla_plugin_scorer().call_score(store, &wit_input, reader)
        })
        .await;
        let scores = call::finish(&self.limits, &store, outcome)?.map_err(|e| RuntimeError::Plugin {
            plugin: self.pre.plugin.clone(),
            error: convert::plugin_error(e),
        })?;
        Ok(scores
            .into_iter()
            .map(|s| Score {
                name: s.name,
                group: s.group,
                value: s.value,
                sample_size: s.sample_size,
                detail: s.detail,
            })
            .collect())
    }

    async fn instantiate(&self) -> Result<(Store<PluginState>, bindings::ScorerPlugin), RuntimeError> {
        let plugin = &self.pre.plugin;
        let state = PluginState::new(
            plugin,
            Kind::Scorer,
            &self.limits,
            OutboundHooks::new(&plugin.name, None),
        );
        let mut store = call::new_store(self.pre.runtime.engine(), state);
        // A start function runs under the same deadline and memory cap as a call.
        let pre = &self.pre.pre;
        let outcome = call::bounded(&self.limits, &mut store, self.span("instantiate"), |store| {
            pre.instantiate_async(store)
        })
        .await;
        let instance = call::finish(&self.limits, &store, outcome)?;
        Ok((store, instance))
    }

    fn span(&self, call: &'static str) -> tracing::Span {
        call::span(&self.pre.plugin, call)
    }
}

fn to_wit_input(input: &ScoreInput) -> wit::ScoreInput {
    wit::ScoreInput {
        tenant: input.tenant.clone(),
        window_start: input.window_start,
        window_end: input.window_end,
        group_by: input.group_by.clone(),
        parameters: input.parameters.clone(),
        aggregates: input
            .aggregates
            .iter()
            .map(|a| wit::Aggregate {
                metric: a.metric.clone(),
                layer: convert::layer_to_wit(a.layer),
                group: a.group.clone(),
                count: a.count,
                sum: a.sum,
                min: a.min,
                max: a.max,
                histogram: a.histogram.clone(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_the_host_does_not_hold_traps_naming_the_plugin() {
        let plugin = PluginId::new("probe", "0.1.0");
        let hooks = OutboundHooks::new(&plugin.name, None);
        let mut state = PluginState::new(&plugin, Kind::Scorer, &Limits::default(), hooks);
        let error = wit_rows::HostRowReader::next_batch(&mut state, Resource::new_own(7), 10)
            .expect_err("no reader 7 was handed out");
        assert!(
            error
                .to_string()
                .starts_with("plugin `probe` 0.1.0: row-reader 7 is not a live reader"),
            "{error}"
        );
    }
}
