//! The plugin contract as the host sees it: one module per released
//! version of `xla:plugin`, each owning its `bindgen!` over its frozen WIT
//! folder (`wit/since_vX.Y.Z/`), its conversions to the host's own types,
//! the versions it accepts and its imports.
//!
//! Nothing outside this module names a generated type: the sessions
//! ([`crate::ConnectorSession`], [`crate::ScorerSession`]) hold a
//! [`ConnectorPre`] or [`ScorerPre`] of whichever version the plugin speaks,
//! hand host types in and get host types back. The host speaks the newest
//! version's types ([`crate::Changes`]); each older version converts up to
//! them (its adapter), so a plugin built against 0.1 runs unchanged. A new
//! contract version is a new module beside the others, a new variant in the
//! enums below, and its imports added to the two linkers.

use crate::rows::RowCursor;
use crate::state::PluginState;
use crate::{Batch, Changes, ConnectorInfo, PluginError, Score, ScoreInput, ScorerInfo};
use wasmtime::component::{InstancePre, Linker, Resource};
use wasmtime::{Engine, Store};

#[macro_use]
mod shared;

pub(crate) mod v0_1;
pub(crate) mod v0_2;

/// Bytes of a plugin's error message kept (every version); the rest is elided.
pub(crate) const MAX_ERROR_MESSAGE_BYTES: usize = 2048;

/// The contract versions this host speaks, for messages.
pub(crate) const SUPPORTED: &str = "0.1.x and 0.2.x";

/// The contract version a plugin built with the current SDK exports, for messages.
pub(crate) const NEWEST: &str = v0_2::EXPORTED;

/// Whether a plugin built against contract `version` (from its exports or
/// its manifest) can load here.
pub fn is_supported_contract(version: &str) -> bool {
    Contract::of(version).is_some()
}

/// A contract version the host speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contract {
    /// `xla:plugin@0.1.x`, through the adapter.
    V0_1,
    /// `xla:plugin@0.2.x`.
    V0_2,
}

impl Contract {
    /// The version of `version` this host speaks, if any.
    pub fn of(version: &str) -> Option<Contract> {
        if v0_1::accepts(version) {
            Some(Contract::V0_1)
        } else if v0_2::accepts(version) {
            Some(Contract::V0_2)
        } else {
            None
        }
    }

    /// The version as written in the WIT package, e.g. `0.2.0`.
    pub fn version(self) -> &'static str {
        match self {
            Contract::V0_1 => v0_1::EXPORTED,
            Contract::V0_2 => v0_2::EXPORTED,
        }
    }
}

/// The linker of connectors of every version: WASI (deny by default),
/// `wasi:http` through the outbound hooks (with the request setters checked
/// in guest memory), and each version's `log`.
pub(crate) fn connector_linker(engine: &Engine) -> wasmtime::Result<Linker<PluginState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    crate::outbound::request_parts::add_to_linker(&mut linker)?;
    v0_1::add_connector_imports(&mut linker)?;
    v0_2::add_connector_imports(&mut linker)?;
    Ok(linker)
}

/// The linker of scorers of every version: WASI (for language runtimes that
/// need it; with no files, environment or sockets), and each version's `log`
/// and `rows`. No `wasi:http`. The async WASI means a scorer that sleeps
/// still meets its wall-clock deadline.
pub(crate) fn scorer_linker(engine: &Engine) -> wasmtime::Result<Linker<PluginState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    v0_1::add_scorer_imports(&mut linker)?;
    v0_2::add_scorer_imports(&mut linker)?;
    Ok(linker)
}

/// A connector linked for its contract version, ready to instantiate.
#[derive(Clone)]
pub(crate) enum ConnectorPre {
    V0_1(v0_1::ConnectorPluginPre<PluginState>),
    V0_2(v0_2::ConnectorPluginPre<PluginState>),
}

/// An instantiated connector of either version.
pub(crate) enum Connector {
    V0_1(v0_1::ConnectorPlugin),
    V0_2(v0_2::ConnectorPlugin),
}

impl ConnectorPre {
    /// Checks that `pre` is the connector world of `contract`.
    pub(crate) fn new(contract: Contract, pre: InstancePre<PluginState>) -> wasmtime::Result<ConnectorPre> {
        Ok(match contract {
            Contract::V0_1 => ConnectorPre::V0_1(v0_1::ConnectorPluginPre::new(pre)?),
            Contract::V0_2 => ConnectorPre::V0_2(v0_2::ConnectorPluginPre::new(pre)?),
        })
    }

    /// The version the plugin speaks.
    pub(crate) fn contract(&self) -> Contract {
        match self {
            ConnectorPre::V0_1(_) => Contract::V0_1,
            ConnectorPre::V0_2(_) => Contract::V0_2,
        }
    }

    pub(crate) async fn instantiate(&self, store: &mut Store<PluginState>) -> wasmtime::Result<Connector> {
        Ok(match self {
            ConnectorPre::V0_1(pre) => Connector::V0_1(pre.instantiate_async(store).await?),
            ConnectorPre::V0_2(pre) => Connector::V0_2(pre.instantiate_async(store).await?),
        })
    }
}

impl Connector {
    pub(crate) async fn describe(&self, store: &mut Store<PluginState>) -> wasmtime::Result<ConnectorInfo> {
        match self {
            Connector::V0_1(plugin) => v0_1::connector_describe(plugin, store).await,
            Connector::V0_2(plugin) => v0_2::connector_describe(plugin, store).await,
        }
    }

    pub(crate) async fn check(
        &self,
        store: &mut Store<PluginState>,
        config: &str,
    ) -> wasmtime::Result<Result<(), PluginError>> {
        match self {
            Connector::V0_1(plugin) => v0_1::connector_check(plugin, store, config).await,
            Connector::V0_2(plugin) => v0_2::connector_check(plugin, store, config).await,
        }
    }

    pub(crate) async fn pull(
        &self,
        store: &mut Store<PluginState>,
        config: &str,
        cursor: Option<&str>,
    ) -> wasmtime::Result<Result<Batch, PluginError>> {
        match self {
            Connector::V0_1(plugin) => v0_1::connector_pull(plugin, store, config, cursor).await,
            Connector::V0_2(plugin) => v0_2::connector_pull(plugin, store, config, cursor).await,
        }
    }

    pub(crate) async fn parse(
        &self,
        store: &mut Store<PluginState>,
        config: &str,
        media_type: &str,
        body: &[u8],
    ) -> wasmtime::Result<Result<Changes, PluginError>> {
        match self {
            Connector::V0_1(plugin) => v0_1::connector_parse(plugin, store, config, media_type, body).await,
            Connector::V0_2(plugin) => v0_2::connector_parse(plugin, store, config, media_type, body).await,
        }
    }
}

/// A scorer linked for its contract version, ready to instantiate.
#[derive(Clone)]
pub(crate) enum ScorerPre {
    V0_1(v0_1::ScorerPluginPre<PluginState>),
    V0_2(v0_2::ScorerPluginPre<PluginState>),
}

/// An instantiated scorer of either version.
pub(crate) enum Scorer {
    V0_1(v0_1::ScorerPlugin),
    V0_2(v0_2::ScorerPlugin),
}

impl ScorerPre {
    /// Checks that `pre` is the scorer world of `contract`.
    pub(crate) fn new(contract: Contract, pre: InstancePre<PluginState>) -> wasmtime::Result<ScorerPre> {
        Ok(match contract {
            Contract::V0_1 => ScorerPre::V0_1(v0_1::ScorerPluginPre::new(pre)?),
            Contract::V0_2 => ScorerPre::V0_2(v0_2::ScorerPluginPre::new(pre)?),
        })
    }

    /// The version the plugin speaks.
    pub(crate) fn contract(&self) -> Contract {
        match self {
            ScorerPre::V0_1(_) => Contract::V0_1,
            ScorerPre::V0_2(_) => Contract::V0_2,
        }
    }

    pub(crate) async fn instantiate(&self, store: &mut Store<PluginState>) -> wasmtime::Result<Scorer> {
        Ok(match self {
            ScorerPre::V0_1(pre) => Scorer::V0_1(pre.instantiate_async(store).await?),
            ScorerPre::V0_2(pre) => Scorer::V0_2(pre.instantiate_async(store).await?),
        })
    }
}

impl Scorer {
    pub(crate) async fn describe(&self, store: &mut Store<PluginState>) -> wasmtime::Result<ScorerInfo> {
        match self {
            Scorer::V0_1(plugin) => v0_1::scorer_describe(plugin, store).await,
            Scorer::V0_2(plugin) => v0_2::scorer_describe(plugin, store).await,
        }
    }

    pub(crate) async fn score(
        &self,
        store: &mut Store<PluginState>,
        input: &ScoreInput,
        rows: Option<Resource<RowCursor>>,
    ) -> wasmtime::Result<Result<Vec<Score>, PluginError>> {
        match self {
            Scorer::V0_1(plugin) => v0_1::scorer_score(plugin, store, input, rows).await,
            Scorer::V0_2(plugin) => v0_2::scorer_score(plugin, store, input, rows).await,
        }
    }
}
