//! Plugins on disk: the `plugin.toml` manifest, sha256 pinning, and loading
//! a directory of plugins where a broken one fails alone.

mod identity;
mod load;
mod manifest;

pub use identity::{Described, IdentityError, check_identity};
pub use load::{Discovered, LoadedPlugin, Pins, PluginLoadError, PluginPre, discover, load_plugin};
pub use manifest::{MANIFEST_FILE, Manifest, ManifestError, PluginKind};
