//! The on-disk compile cache.
//!
//! A compiled component is stored as `<sha256 of the .wasm>-<engine key>.cwasm`,
//! where the engine key hashes wasmtime's version and every engine setting
//! that affects compiled code. A restart with the same file and engine loads
//! the compiled code instead of compiling again; any change to either misses.
//! Beside each entry a `.sha256` file catches a truncated or damaged entry.
//! It is no defence against someone who can write the directory (they could
//! write a matching checksum too): compiled code is trusted, so the host
//! creates the cache directory readable and writable by its own user only.

use super::error::{PluginId, RuntimeError};
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Whether a load hit the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CacheOutcome {
    /// Loaded compiled code from the cache.
    Hit,
    /// Compiled and stored in the cache.
    Miss,
    /// Compiled; no cache configured.
    Disabled,
}

pub(crate) struct CompileCache {
    dir: Option<PathBuf>,
    engine_key: String,
}

/// Feeds `Hash` output into sha256 so the key is stable across processes.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

impl CompileCache {
    pub fn new(dir: Option<PathBuf>, engine: &Engine) -> Self {
        let mut hasher = Sha256Hasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let digest = hasher.0.finalize();
        CompileCache {
            dir,
            engine_key: hex::encode(&digest[..8]),
        }
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    pub fn load_or_compile(
        &self,
        engine: &Engine,
        plugin: &PluginId,
        bytes: &[u8],
        sha256: &str,
    ) -> Result<(Component, CacheOutcome), RuntimeError> {
        let Some(dir) = &self.dir else {
            return Ok((compile(engine, plugin, bytes)?, CacheOutcome::Disabled));
        };
        let entry = dir.join(format!("{sha256}-{}.cwasm", self.engine_key));
        if let Some(component) = self.load(engine, &entry) {
            return Ok((component, CacheOutcome::Hit));
        }
        let component = compile(engine, plugin, bytes)?;
        self.store(dir, &entry, &component)?;
        Ok((component, CacheOutcome::Miss))
    }

    /// A missing, damaged or incompatible entry is a miss, never an error:
    /// the cache only ever saves time.
    fn load(&self, engine: &Engine, entry: &Path) -> Option<Component> {
        let compiled = std::fs::read(entry).ok()?;
        let expected = std::fs::read_to_string(checksum_path(entry)).ok()?;
        if hex::encode(Sha256::digest(&compiled)) != expected.trim() {
            tracing::warn!(entry = %entry.display(), "compile cache entry does not match its checksum; recompiling");
            return None;
        }
        // SAFETY: the bytes were written by `store` below from wasmtime's own
        // serialisation into a directory only this user can write, and match
        // the checksum written with them; wasmtime checks the engine version
        // and settings again on deserialisation.
        #[allow(unsafe_code)]
        let loaded = unsafe { Component::deserialize(engine, &compiled) };
        match loaded {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!(entry = %entry.display(), "compile cache entry unusable ({e}); recompiling");
                None
            }
        }
    }

    fn store(&self, dir: &Path, entry: &Path, component: &Component) -> Result<(), RuntimeError> {
        let io = |source| RuntimeError::Cache {
            path: dir.to_path_buf(),
            source,
        };
        create_private_dir(dir).map_err(io)?;
        let compiled = component.serialize().map_err(|e| RuntimeError::Cache {
            path: entry.to_path_buf(),
            source: std::io::Error::other(format!("{e:#}")),
        })?;
        // Write to temporary files and rename, so a crash never leaves a
        // half-written entry under the final name.
        write_atomically(
            dir,
            &checksum_path(entry),
            hex::encode(Sha256::digest(&compiled)).as_bytes(),
        )
        .map_err(io)?;
        write_atomically(dir, entry, &compiled).map_err(io)?;
        Ok(())
    }
}

/// Creates the cache directory with mode 0700: compiled code is trusted when
/// loaded, so nobody else may write there.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.exists() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & 0o022 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

fn checksum_path(entry: &Path) -> PathBuf {
    entry.with_extension("cwasm.sha256")
}

fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(bytes)?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

fn compile(engine: &Engine, plugin: &PluginId, bytes: &[u8]) -> Result<Component, RuntimeError> {
    Component::new(engine, bytes).map_err(|e| RuntimeError::Compile {
        plugin: plugin.clone(),
        reason: format!("{e:#}"),
    })
}
