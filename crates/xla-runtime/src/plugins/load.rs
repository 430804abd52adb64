//! Loading plugins: manifest, hash, pin, compile (or cache), world check.
//!
//! Order matters for the messages: a file that is not a component is named
//! as such before anything else is said about it, and the hash is checked
//! before any byte of it is compiled.

use super::manifest::{MANIFEST_FILE, Manifest, ManifestError, PluginKind};
use crate::{CacheOutcome, ConnectorPre, PluginId, Runtime, RuntimeError, ScorerPre};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Operator pins: plugin name to the sha256 it must have.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Pins {
    /// Refuse plugins that have no pin.
    #[serde(default)]
    pub require: bool,
    /// Name to sha256 (hex).
    #[serde(default)]
    pub sha256: BTreeMap<String, String>,
}

/// Why a plugin did not load. Each names the file and what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PluginLoadError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// No manifest beside the component.
    #[error(
        "{wasm} has no {MANIFEST_FILE} beside it; every plugin ships with its manifest (`cargo xtask build-plugins` writes one)"
    )]
    MissingManifest {
        /// The component.
        wasm: PathBuf,
    },
    /// The manifest is invalid.
    #[error("{path}: {source}")]
    BadManifest {
        /// The manifest.
        path: PathBuf,
        /// What is wrong.
        source: ManifestError,
    },
    /// The manifest describes another file name.
    #[error(
        "{manifest} describes `{expected}`, not {wasm}; keep each plugin in a directory of its own with its manifest"
    )]
    ManifestForAnotherFile {
        /// The manifest.
        manifest: PathBuf,
        /// The file it names.
        expected: String,
        /// The file given.
        wasm: PathBuf,
    },
    /// The manifest names another contract than the component exports.
    #[error(
        "plugin `{name}`: plugin.toml says contract {declared} but the component exports contract {exported}; set `contract = \"{exported}\"` in plugin.toml (or rebuild the component)"
    )]
    ContractMismatch {
        /// Plugin name.
        name: String,
        /// What plugin.toml says.
        declared: String,
        /// What the component exports.
        exported: &'static str,
    },
    /// The manifest's contract version is unsupported.
    #[error(
        "plugin `{name}` declares contract {found}; this host supports 0.1.x and 0.2.x. Rebuild it with a matching xla-sdk"
    )]
    UnsupportedContract {
        /// Plugin name.
        name: String,
        /// Declared version.
        found: String,
    },
    /// The file is not the one the manifest describes.
    #[error(
        "{path} does not match the sha256 in its manifest (manifest {expected}, file {actual}): the file changed after it was built. Rebuild the plugin or restore the original file"
    )]
    HashMismatch {
        /// The component.
        path: PathBuf,
        /// From the manifest.
        expected: String,
        /// Of the file.
        actual: String,
    },
    /// The file is not the one the operator pinned.
    #[error(
        "plugin `{name}` is pinned to sha256 {pinned}, but {path} has {actual}. Review the new build, then update the pin `plugins.pins.sha256.{name}` in the host config"
    )]
    PinMismatch {
        /// Plugin name.
        name: String,
        /// The component.
        path: PathBuf,
        /// The operator's pin.
        pinned: String,
        /// Of the file.
        actual: String,
    },
    /// Pins are required and this plugin has none.
    #[error(
        "plugin `{name}` has no pin and the host config requires one; add `{name} = \"{actual}\"` under `plugins.pins.sha256` after reviewing it"
    )]
    Unpinned {
        /// Plugin name.
        name: String,
        /// Of the file.
        actual: String,
    },
    /// The runtime refused it (not a component, wrong world, link failure…).
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// `describe()` and the manifest disagree on who the plugin is.
    #[error(transparent)]
    Identity(#[from] super::IdentityError),
}

/// A linked plugin of either kind.
#[derive(Clone)]
pub enum PluginPre {
    /// A connector.
    Connector(ConnectorPre),
    /// A scorer.
    Scorer(ScorerPre),
}

impl PluginPre {
    /// The contract version the component exports.
    pub fn contract(&self) -> crate::Contract {
        match self {
            PluginPre::Connector(pre) => pre.contract(),
            PluginPre::Scorer(pre) => pre.contract(),
        }
    }
}

/// A plugin ready to run.
#[derive(Clone)]
pub struct LoadedPlugin {
    /// Its manifest.
    pub manifest: Manifest,
    /// The component file.
    pub path: PathBuf,
    /// Whether compiled code came from the cache.
    pub cache: CacheOutcome,
    /// Time to load (read, hash, compile or deserialise, link).
    pub load_time: Duration,
    /// The linked plugin.
    pub pre: PluginPre,
}

impl LoadedPlugin {
    /// The plugin's id for messages.
    pub fn id(&self) -> PluginId {
        PluginId::new(&self.manifest.name, &self.manifest.version)
    }
}

/// Loads the component at `wasm`, with the `plugin.toml` beside it.
pub fn load_plugin(runtime: &Runtime, wasm: &Path, pins: &Pins) -> Result<LoadedPlugin, PluginLoadError> {
    let started = Instant::now();
    let bytes = std::fs::read(wasm).map_err(|source| PluginLoadError::Read {
        path: wasm.to_path_buf(),
        source,
    })?;
    // Say "not a component" first when that is the real problem.
    runtime.check_header(wasm, &bytes)?;
    let manifest_path = wasm.with_file_name(MANIFEST_FILE);
    if !manifest_path.is_file() {
        return Err(PluginLoadError::MissingManifest {
            wasm: wasm.to_path_buf(),
        });
    }
    let manifest = Manifest::from_file(&manifest_path).map_err(|source| PluginLoadError::BadManifest {
        path: manifest_path.clone(),
        source,
    })?;
    check_file_name(&manifest, &manifest_path, wasm)?;
    if !crate::is_supported_contract(&manifest.contract) {
        return Err(PluginLoadError::UnsupportedContract {
            name: manifest.name.clone(),
            found: manifest.contract.clone(),
        });
    }
    let actual = hex::encode(Sha256::digest(&bytes));
    check_hash(&manifest, wasm, &actual, pins)?;
    let plugin = PluginId::new(&manifest.name, &manifest.version);
    let (component, cache) = runtime.load_component(&plugin, wasm, &bytes, &actual)?;
    let pre = match manifest.kind {
        PluginKind::Connector => PluginPre::Connector(ConnectorPre::new(runtime, plugin, &component)?),
        PluginKind::Scorer => PluginPre::Scorer(ScorerPre::new(runtime, plugin, &component)?),
    };
    let exported = pre.contract();
    if crate::Contract::of(&manifest.contract) != Some(exported) {
        return Err(PluginLoadError::ContractMismatch {
            name: manifest.name.clone(),
            declared: manifest.contract.clone(),
            exported: exported.version(),
        });
    }
    Ok(LoadedPlugin {
        manifest,
        path: wasm.to_path_buf(),
        cache,
        load_time: started.elapsed(),
        pre,
    })
}

fn check_file_name(manifest: &Manifest, manifest_path: &Path, wasm: &Path) -> Result<(), PluginLoadError> {
    let file_name = wasm.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    if file_name == manifest.wasm {
        return Ok(());
    }
    Err(PluginLoadError::ManifestForAnotherFile {
        manifest: manifest_path.to_path_buf(),
        expected: manifest.wasm.clone(),
        wasm: wasm.to_path_buf(),
    })
}

fn check_hash(manifest: &Manifest, wasm: &Path, actual: &str, pins: &Pins) -> Result<(), PluginLoadError> {
    if !manifest.sha256.eq_ignore_ascii_case(actual) {
        return Err(PluginLoadError::HashMismatch {
            path: wasm.to_path_buf(),
            expected: manifest.sha256.clone(),
            actual: actual.to_string(),
        });
    }
    match pins.sha256.get(&manifest.name) {
        Some(pinned) if !pinned.eq_ignore_ascii_case(actual) => Err(PluginLoadError::PinMismatch {
            name: manifest.name.clone(),
            path: wasm.to_path_buf(),
            pinned: pinned.clone(),
            actual: actual.to_string(),
        }),
        None if pins.require => Err(PluginLoadError::Unpinned {
            name: manifest.name.clone(),
            actual: actual.to_string(),
        }),
        _ => Ok(()),
    }
}

/// One plugin found by [`discover`]: where, and whether it loaded.
pub struct Discovered {
    /// The component (or the manifest, when that is what is broken).
    pub path: PathBuf,
    /// The plugin, or why it did not load.
    pub result: Result<LoadedPlugin, PluginLoadError>,
}

/// Loads every plugin under `dir` (each in a subdirectory with its
/// `plugin.toml`). One result per plugin found: a broken plugin is reported
/// and the others load.
pub fn discover(runtime: &Runtime, dir: &Path, pins: &Pins) -> Result<Vec<Discovered>, std::io::Error> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let sub = entry?.path();
        let manifest_path = sub.join(MANIFEST_FILE);
        if !manifest_path.is_file() {
            continue;
        }
        let wasm = match Manifest::from_file(&manifest_path) {
            Ok(manifest) => sub.join(&manifest.wasm),
            Err(source) => {
                found.push(Discovered {
                    path: manifest_path.clone(),
                    result: Err(PluginLoadError::BadManifest {
                        path: manifest_path,
                        source,
                    }),
                });
                continue;
            }
        };
        let result = load_plugin(runtime, &wasm, pins);
        found.push(Discovered { path: wasm, result });
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(found)
}
