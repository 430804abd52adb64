//! `plugin.toml`: what a plugin is, what it needs, and the hash of the
//! exact file it describes.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// File name of a manifest, beside the plugin's `.wasm`.
pub const MANIFEST_FILE: &str = "plugin.toml";

/// The kind of plugin, which decides the world it must implement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    /// Brings observations in.
    Connector,
    /// Turns observations into XLA results.
    Scorer,
}

impl std::fmt::Display for PluginKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PluginKind::Connector => "connector",
            PluginKind::Scorer => "scorer",
        })
    }
}

/// A plugin's manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Plugin name: lower case, digits and `-`.
    pub name: String,
    /// Plugin version (semver).
    pub version: String,
    /// Connector or scorer.
    pub kind: PluginKind,
    /// Contract version it was built for, e.g. `0.1.0`.
    pub contract: String,
    /// One line for operators.
    #[serde(default)]
    pub description: String,
    /// Origins it needs to reach (connectors), e.g. `https://*.service-now.com`.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// File name of the component, beside the manifest.
    pub wasm: String,
    /// sha256 of the component, hex.
    pub sha256: String,
    /// JSON Schema of the config (connectors) or parameters (scorers).
    #[serde(default)]
    pub config_schema: Option<String>,
}

/// Why a manifest is unusable.
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub struct ManifestError {
    pub(crate) reason: String,
}

impl Manifest {
    /// Reads and validates a manifest file.
    pub fn from_file(path: &Path) -> Result<Manifest, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|e| ManifestError {
            reason: format!("cannot read it: {e}"),
        })?;
        Manifest::parse(&text)
    }

    /// Parses and validates manifest text.
    pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
        let manifest: Manifest = toml::from_str(text).map_err(|e| ManifestError {
            reason: format!("invalid TOML: {}", e.message()),
        })?;
        manifest.validate()?;
        Ok(manifest)
    }

    fn validate(&self) -> Result<(), ManifestError> {
        let fail = |reason: String| Err(ManifestError { reason });
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !name_ok {
            return fail(format!(
                "name `{}` must be 1-64 characters of a-z, 0-9 and -",
                self.name
            ));
        }
        if semver::Version::parse(&self.version).is_err() {
            return fail(format!("version `{}` is not semver (e.g. 0.1.0)", self.version));
        }
        if semver::Version::parse(&self.contract).is_err() {
            return fail(format!("contract `{}` is not a version (e.g. 0.1.0)", self.contract));
        }
        if self.sha256.len() != 64 || !self.sha256.chars().all(|c| c.is_ascii_hexdigit()) {
            return fail("sha256 must be 64 hex digits".into());
        }
        if self.wasm.contains('/') || self.wasm.contains('\\') || !self.wasm.ends_with(".wasm") {
            return fail(format!(
                "wasm `{}` must be a file name ending in .wasm beside the manifest",
                self.wasm
            ));
        }
        if self.kind == PluginKind::Scorer && !self.hosts.is_empty() {
            return fail("a scorer has no network: `hosts` must be empty".into());
        }
        for host in &self.hosts {
            if let Err(e) = crate::outbound::Grant::parse(host) {
                return fail(format!("hosts: {e}"));
            }
        }
        if let Some(schema) = &self.config_schema
            && let Err(e) = serde_json::from_str::<serde_json::Value>(schema)
        {
            return fail(format!("config_schema is not JSON: {e}"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "json-feed"
version = "0.1.0"
kind = "connector"
contract = "0.1.0"
hosts = ["*"]
wasm = "json-feed.wasm"
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
"#;

    #[test]
    fn a_good_manifest_parses() {
        let manifest = Manifest::parse(GOOD).expect("valid");
        assert_eq!(manifest.kind, PluginKind::Connector);
    }

    #[test]
    fn mistakes_are_named() {
        let cases = [
            (GOOD.replace("json-feed\"", "Json Feed\""), "name"),
            (GOOD.replace("version = \"0.1.0\"", "version = \"one\""), "version"),
            (GOOD.replace("kind = \"connector\"", "kind = \"widget\""), "widget"),
            (GOOD.replace("sha256 = \"0000", "sha256 = \"zz00"), "sha256"),
            (GOOD.replace("\"*\"", "\"acme.com\""), "hosts"),
            (format!("{GOOD}\nsurprise = 1"), "surprise"),
        ];
        for (text, needle) in cases {
            let error = Manifest::parse(&text).expect_err(needle).to_string();
            assert!(error.contains(needle), "`{error}` should mention `{needle}`");
        }
    }
}
