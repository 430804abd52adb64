//! Whether a plugin's `describe()` agrees with its manifest on who it is
//! (name and version) and, for a connector, on the hosts it needs. Both are
//! built from one statement (the plugin crate's `Cargo.toml`), so a
//! disagreement means a file was rebuilt or swapped by hand. The manifest is
//! what the host enforces; a plugin that describes itself otherwise would
//! show operators a false picture, so every path that describes a plugin
//! (`plugin check`, `plugin parse`, `import`, each sync run, scoring) refuses
//! it with both values named.

use std::path::PathBuf;

/// `describe()` and the manifest disagree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// Name or version differ.
    #[error(
        "{path}: describe() says `{described_name}` {described_version} but plugin.toml says `{manifest_name}` {manifest_version}; rebuild the plugin so both agree"
    )]
    Identity {
        /// The component.
        path: PathBuf,
        /// What `describe()` says.
        described_name: String,
        /// What `describe()` says.
        described_version: String,
        /// What the manifest says.
        manifest_name: String,
        /// What the manifest says.
        manifest_version: String,
    },
    /// A connector's hosts differ.
    #[error(
        "{path}: describe() claims the hosts [{described}] but plugin.toml, which the sandbox enforces, declares [{manifest}]; rebuild the plugin so both agree"
    )]
    Hosts {
        /// The component.
        path: PathBuf,
        /// `describe()`'s hosts, sorted, joined.
        described: String,
        /// The manifest's hosts, sorted, joined.
        manifest: String,
    },
}

/// What a plugin said of itself, to hold against its manifest.
#[derive(Debug, Clone, Copy)]
pub struct Described<'a> {
    /// `describe().name`.
    pub name: &'a str,
    /// `describe().version`.
    pub version: &'a str,
    /// A connector's `describe().hosts`; `None` for a scorer.
    pub hosts: Option<&'a [String]>,
}

impl<'a> Described<'a> {
    /// What a connector's `describe()` said.
    pub fn connector(info: &'a crate::ConnectorInfo) -> Self {
        Described {
            name: &info.name,
            version: &info.version,
            hosts: Some(&info.hosts),
        }
    }

    /// What a scorer's `describe()` said (scorers need no hosts).
    pub fn scorer(info: &'a crate::ScorerInfo) -> Self {
        Described {
            name: &info.name,
            version: &info.version,
            hosts: None,
        }
    }
}

/// Checks `described` against the manifest's `name`, `version` and `hosts`
/// for the component at `path`.
pub fn check_identity(
    path: &std::path::Path,
    manifest: &super::Manifest,
    described: Described<'_>,
) -> Result<(), IdentityError> {
    if described.name != manifest.name || described.version != manifest.version {
        return Err(IdentityError::Identity {
            path: path.to_path_buf(),
            described_name: described.name.into(),
            described_version: described.version.into(),
            manifest_name: manifest.name.clone(),
            manifest_version: manifest.version.clone(),
        });
    }
    let Some(hosts) = described.hosts else {
        return Ok(());
    };
    let sorted = |list: &[String]| {
        let mut list: Vec<&str> = list.iter().map(String::as_str).collect();
        list.sort_unstable();
        list.join(", ")
    };
    let (described, enforced) = (sorted(hosts), sorted(&manifest.hosts));
    if described != enforced {
        return Err(IdentityError::Hosts {
            path: path.to_path_buf(),
            described,
            manifest: enforced,
        });
    }
    Ok(())
}
