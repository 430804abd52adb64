//! Running scorer plugins: no network, a fixed clock and seeded randomness,
//! a fresh instance for every call so that no call can influence another,
//! and per-subject rows streamed through the `row-reader` resource.

use super::bindings::{self, Contract};
use super::engine::Runtime;
use super::error::{PluginId, RuntimeError};
use super::limits::Limits;
use super::outbound::OutboundHooks;
use super::rows::RowCursor;
use super::state::{Kind, PluginState};
use super::{Score, ScoreInput, ScorerInfo, SubjectRow};
use super::{call, describe};
use wasmtime::Store;
use wasmtime::component::Component;

/// A scorer compiled and linked, ready to instantiate cheaply.
#[derive(Clone)]
pub struct ScorerPre {
    plugin: PluginId,
    pre: bindings::ScorerPre,
    /// Owning the runtime keeps its epoch ticker alive, so the deadline
    /// holds for as long as anything can instantiate this plugin.
    runtime: Runtime,
}

impl ScorerPre {
    /// Links `component` as a scorer; fails if it is another kind of plugin,
    /// targets another contract version, or imports anything beyond WASI and
    /// the contract (a scorer that imports `wasi:http` is refused here).
    pub fn new(runtime: &Runtime, plugin: PluginId, component: &Component) -> Result<ScorerPre, RuntimeError> {
        let contract = call::check_export(runtime.engine(), &plugin, component, Kind::Scorer)?;
        let pre = runtime
            .scorer_linker()
            .instantiate_pre(component)
            .map_err(|e| call::link_error(&plugin, Kind::Scorer, e))?;
        let pre = bindings::ScorerPre::new(contract, pre).map_err(|e| call::wrong_world(&plugin, Kind::Scorer, e))?;
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

    /// The contract version the plugin speaks.
    pub fn contract(&self) -> Contract {
        self.pre.contract()
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
        let _turn = self.pre.runtime.computing().await;
        let (mut store, instance) = self.instantiate().await?;
        let outcome = call::bounded(&self.limits, &mut store, "describe", |store| instance.describe(store)).await;
        let info = call::finish(&self.limits, &store, outcome)?;
        describe::check_scorer(&self.pre.plugin, &info)?;
        Ok(info)
    }

    /// `score(input, rows)`, on a fresh instance.
    pub async fn score(
        &mut self,
        input: &ScoreInput,
        rows: Option<Box<dyn Iterator<Item = SubjectRow> + Send>>,
    ) -> Result<Vec<Score>, RuntimeError> {
        // One call per core at once; the deadline starts when its turn comes.
        let _turn = self.pre.runtime.computing().await;
        let (mut store, instance) = self.instantiate().await?;
        let reader = match rows {
            Some(rows) => Some(
                store
                    .data_mut()
                    .table
                    .push(RowCursor::new(rows))
                    .map_err(|e| RuntimeError::Trap {
                        plugin: self.pre.plugin.clone(),
                        message: format!("cannot hand rows to the plugin: {e}"),
                    })?,
            ),
            None => None,
        };
        let outcome = call::bounded(&self.limits, &mut store, "score", |store| {
            instance.score(store, input, reader)
        })
        .await;
        call::finish(&self.limits, &store, outcome)?.map_err(|e| RuntimeError::Plugin {
            plugin: self.pre.plugin.clone(),
            error: e,
        })
    }

    async fn instantiate(&self) -> Result<(Store<PluginState>, bindings::Scorer), RuntimeError> {
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
        let outcome = call::bounded(&self.limits, &mut store, "instantiate", |store| pre.instantiate(store)).await;
        let instance = call::finish(&self.limits, &store, outcome)?;
        Ok((store, instance))
    }
}
