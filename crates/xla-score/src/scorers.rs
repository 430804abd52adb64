//! Loading the scorer plugins that XLA definitions name, each with its
//! tenant binding (a client-specific scorer may score one tenant only).

use super::engine::LoadedScorer;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use xla_runtime::plugins::{
    Described, MANIFEST_FILE, Manifest, ManifestError, Pins, PluginLoadError, check_identity, load_plugin,
};
use xla_runtime::{Limits, Runtime, RuntimeError};

/// Why a scorer could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScorerLoadError {
    /// No plugin of that name in the plugins directory.
    #[error(
        "scorer `{name}`: {path} is missing or unreadable ({source}); build the plugins (`cargo xtask build-plugins`) or fix `[plugins] dir`"
    )]
    Missing {
        /// The scorer's name.
        name: String,
        /// The manifest looked for.
        path: PathBuf,
        /// Why it could not be read.
        source: ManifestError,
    },
    /// The plugin did not load (bad file, pin mismatch, ...).
    #[error(transparent)]
    Load(#[from] PluginLoadError),
    /// The plugin is a connector.
    #[error("`{name}` is a connector, not a scorer; an XLA's `scorer` must name a scorer plugin")]
    NotScorer {
        /// The plugin's name.
        name: String,
    },
    /// `describe()` failed.
    #[error(transparent)]
    Describe(#[from] RuntimeError),
}

/// Loads the scorers called `names` from `dir`, binding those listed in
/// `tenants` to their tenant.
pub async fn load_scorers<'a>(
    runtime: &Runtime,
    dir: &Path,
    pins: &Pins,
    tenants: &BTreeMap<String, String>,
    names: impl IntoIterator<Item = &'a str>,
    limits: &Limits,
) -> Result<BTreeMap<String, LoadedScorer>, ScorerLoadError> {
    let mut scorers = BTreeMap::new();
    for name in names {
        if scorers.contains_key(name) {
            continue;
        }
        let manifest_path = dir.join(name).join(MANIFEST_FILE);
        let manifest = Manifest::from_file(&manifest_path).map_err(|source| ScorerLoadError::Missing {
            name: name.to_string(),
            path: manifest_path.clone(),
            source,
        })?;
        let plugin = load_plugin(runtime, &dir.join(name).join(&manifest.wasm), pins)?;
        let tenant = tenants.get(name).cloned();
        let scorer = LoadedScorer::new(&plugin, tenant, limits)
            .await
            .ok_or_else(|| ScorerLoadError::NotScorer { name: name.to_string() })??;
        check_identity(&plugin.path, &plugin.manifest, Described::scorer(&scorer.info))
            .map_err(PluginLoadError::from)?;
        scorers.insert(name.to_string(), scorer);
    }
    Ok(scorers)
}
