//! Running connector plugins: linking, instantiation, and the four calls
//! (`describe`, `check`, `pull`, `parse`) under the per-call limits.

use super::bindings::{self, Contract};
use super::engine::Runtime;
use super::error::{PluginId, RuntimeError};
use super::limits::Limits;
use super::outbound::{OutboundHooks, OutboundPolicy};
use super::state::{Kind, PluginState};
use super::{Batch, Changes, ConnectorInfo, PluginError};
use super::{call, describe};
use std::sync::Arc;
use wasmtime::Store;
use wasmtime::component::Component;

/// A connector compiled and linked, ready to instantiate cheaply.
#[derive(Clone)]
pub struct ConnectorPre {
    plugin: PluginId,
    pre: bindings::ConnectorPre,
    /// Owning the runtime keeps its epoch ticker alive, so the deadline
    /// holds for as long as anything can instantiate this plugin.
    runtime: Runtime,
}

impl ConnectorPre {
    /// Links `component` as a connector; fails if it is another kind of
    /// plugin, targets another contract version, or imports what the
    /// connector sandbox does not give.
    pub fn new(runtime: &Runtime, plugin: PluginId, component: &Component) -> Result<ConnectorPre, RuntimeError> {
        let contract = call::check_export(runtime.engine(), &plugin, component, Kind::Connector)?;
        let pre = runtime
            .connector_linker()
            .instantiate_pre(component)
            .map_err(|e| call::link_error(&plugin, Kind::Connector, e))?;
        let pre =
            bindings::ConnectorPre::new(contract, pre).map_err(|e| call::wrong_world(&plugin, Kind::Connector, e))?;
        Ok(ConnectorPre {
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

    /// A session for one sync run or one command: one instance, reused across
    /// its calls until a call traps, then replaced.
    pub fn session(&self, limits: Limits, policy: Option<Arc<OutboundPolicy>>) -> ConnectorSession {
        ConnectorSession {
            pre: self.clone(),
            limits,
            policy,
            live: None,
        }
    }
}

struct Live {
    store: Store<PluginState>,
    bindings: bindings::Connector,
}

/// Calls into one connector instance.
pub struct ConnectorSession {
    pre: ConnectorPre,
    limits: Limits,
    policy: Option<Arc<OutboundPolicy>>,
    live: Option<Live>,
}

impl ConnectorSession {
    /// The outbound policy its requests go through, if it has grants: the
    /// sync engine reads the upstreams' holds from it after a throttled call.
    pub fn outbound(&self) -> Option<Arc<OutboundPolicy>> {
        self.policy.clone()
    }

    /// `describe()`.
    pub async fn describe(&mut self) -> Result<ConnectorInfo, RuntimeError> {
        let mut live = self.instance().await?;
        let outcome = call::bounded(&self.limits, &mut live.store, "describe", |store| {
            live.bindings.describe(store)
        })
        .await;
        let info = self.settle(live, outcome)?;
        describe::check_connector(&self.pre.plugin, &info)?;
        Ok(info)
    }

    /// `check(config)`.
    pub async fn check(&mut self, config: &str) -> Result<(), RuntimeError> {
        let mut live = self.instance().await?;
        let outcome = call::bounded(&self.limits, &mut live.store, "check", |store| {
            live.bindings.check(store, config)
        })
        .await;
        let result = self.settle(live, outcome)?;
        result.map_err(|e| self.plugin_error(e))
    }

    /// `pull(config, cursor)`.
    pub async fn pull(&mut self, config: &str, cursor: Option<&str>) -> Result<Batch, RuntimeError> {
        let mut live = self.instance().await?;
        let outcome = call::bounded(&self.limits, &mut live.store, "pull", |store| {
            live.bindings.pull(store, config, cursor)
        })
        .await;
        let batch = self.settle(live, outcome)?.map_err(|e| self.plugin_error(e))?;
        self.checked("pull", &batch.changes)?;
        Ok(batch)
    }

    /// `parse(config, media_type, body)`.
    pub async fn parse(&mut self, config: &str, media_type: &str, body: &[u8]) -> Result<Changes, RuntimeError> {
        let mut live = self.instance().await?;
        let outcome = call::bounded(&self.limits, &mut live.store, "parse", |store| {
            live.bindings.parse(store, config, media_type, body)
        })
        .await;
        let changes = self.settle(live, outcome)?.map_err(|e| self.plugin_error(e))?;
        self.checked("parse", &changes)?;
        Ok(changes)
    }

    /// Holds every record, retraction and span of a call to the rules every
    /// path applies, so `plugin run` refuses what `sync` would.
    fn checked(&self, call: &'static str, changes: &Changes) -> Result<(), RuntimeError> {
        let bad = |record: String, reason| RuntimeError::BadOutput {
            plugin: self.pre.plugin.clone(),
            call,
            record,
            reason,
        };
        let shown = |text: &str| xla_types::untrusted::escape_capped(text, 100).into_owned();
        for r in &changes.records {
            r.check().map_err(|reason| {
                // Name the value at fault, else the record's first metric.
                let metric = r
                    .values
                    .iter()
                    .find(|v| !v.value.is_finite() || v.metric.is_empty() || v.metric.len() > 128)
                    .or(r.values.first())
                    .map_or("", |v| v.metric.as_str());
                bad(format!("`{}` (metric `{}`)", shown(&r.id), shown(metric)), reason)
            })?;
        }
        for r in &changes.retractions {
            r.check()
                .map_err(|reason| bad(format!("retraction of `{}`", shown(&r.id)), reason))?;
        }
        let spans = changes.partial.iter().map(|g| &g.span).chain(&changes.complete);
        for span in spans {
            span.check()
                .map_err(|reason| bad(format!("span {}..{}", span.start, span.end), reason))?;
        }
        Ok(())
    }

    async fn instance(&mut self) -> Result<Live, RuntimeError> {
        if let Some(live) = self.live.take() {
            return Ok(live);
        }
        let plugin = &self.pre.plugin;
        let hooks = OutboundHooks::new(&plugin.name, self.policy.clone());
        let state = PluginState::new(plugin, Kind::Connector, &self.limits, hooks);
        let mut store = call::new_store(self.pre.runtime.engine(), state);
        // A start function runs under the same deadline and memory cap as a call.
        let pre = &self.pre.pre;
        let outcome = call::bounded(&self.limits, &mut store, "instantiate", |store| pre.instantiate(store)).await;
        let bindings = call::finish(&self.limits, &store, outcome)?;
        Ok(Live { store, bindings })
    }

    /// Keeps the instance after a clean call; throws it away after a trap, a
    /// deadline or a call that left host resources behind, so nothing from
    /// such a call survives.
    fn settle<R>(&mut self, mut live: Live, outcome: call::Outcome<R>) -> Result<R, RuntimeError> {
        // What a guest hoarded in one call must not stay held into the next.
        let keep = matches!(outcome, call::Outcome::Done(_)) && !live.store.data_mut().hoards_resources();
        let result = call::finish(&self.limits, &live.store, outcome);
        if keep {
            self.live = Some(live);
        }
        result
    }

    fn plugin_error(&self, error: PluginError) -> RuntimeError {
        RuntimeError::Plugin {
            plugin: self.pre.plugin.clone(),
            error,
        }
    }
}
