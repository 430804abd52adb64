//! Builds XLA Host's Wasm guests: the shipped plugins (`plugins/`) and the
//! hostile test guests (`tests/guests/`).
//!
//! Used by `cargo xtask build-plugins` and by the build script of the
//! `tests` package, so there is one way to build a guest. Each guest crate
//! carries a source `plugin.toml`; the build writes the installable layout
//! the host loads:
//!
//! ```text
//! target/plugins/<name>/<name>.wasm       shipped plugins (target/test-guests/ for test guests)
//! target/plugins/<name>/plugin.toml       source manifest + sha256 + inlined config schema
//! ```
//!
//! Python scorers (`sdk/python/examples/`) are built by [`python`] with
//! componentize-py and installed the same way. [`browser`] installs what the
//! dashboard's browser test drives (Chromium, `tests/browser`'s npm packages),
//! [`debian`] the Debian packages the tests need (Chromium, PostgreSQL).

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

pub mod browser;
pub mod debian;
pub mod python;

/// The target every guest is built for.
pub const WASM_TARGET: &str = "wasm32-wasip2";

/// A guest built and installed with its manifest.
#[derive(Debug, Clone)]
pub struct BuiltGuest {
    /// Plugin name from its manifest.
    pub name: String,
    /// The installed component.
    pub wasm: PathBuf,
    /// The installed manifest.
    pub manifest: PathBuf,
    /// sha256 of the component, hex.
    pub sha256: String,
}

/// The contract the SDKs build guests against: the newest released WIT
/// folder (Zed's layout: `wit/since_vX.Y.Z/`, never edited once released).
pub fn contract_wit(repo_root: &Path) -> PathBuf {
    repo_root.join("wit").join("since_v0.2.0")
}

/// Where the shipped plugins are installed.
pub fn plugins_dir(repo_root: &Path) -> PathBuf {
    repo_root.join("target").join("plugins")
}

/// Where the hostile test guests are installed (apart from the plugins, so
/// the demo never loads them).
pub fn test_guests_dir(repo_root: &Path) -> PathBuf {
    repo_root.join("target").join("test-guests")
}

/// Installs the wasm target with rustup when it is missing.
pub fn ensure_wasm_target() -> Result<()> {
    let output = Command::new("rustup").args(["target", "list", "--installed"]).output();
    let installed = match output {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        // Without rustup we cannot install anything; let cargo say whether the target is there.
        _ => return Ok(()),
    };
    if installed.lines().any(|l| l.trim() == WASM_TARGET) {
        return Ok(());
    }
    let status = Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .status()
        .context("running `rustup target add wasm32-wasip2`")?;
    if !status.success() {
        bail!("`rustup target add {WASM_TARGET}` failed; install the target and retry");
    }
    Ok(())
}

/// The guest crates of a guest workspace: directories holding a `plugin.toml`.
pub fn guest_crates(workspace: &Path) -> Result<Vec<PathBuf>> {
    let mut crates = Vec::new();
    for entry in std::fs::read_dir(workspace).with_context(|| format!("reading {}", workspace.display()))? {
        let path = entry?.path();
        if path.join("plugin.toml").is_file() && path.join("Cargo.toml").is_file() {
            crates.push(path);
        }
    }
    crates.sort();
    Ok(crates)
}

/// Builds every guest of `workspace` in release mode and installs each in
/// its own directory under `install_to`.
pub fn build_workspace(repo_root: &Path, workspace: &Path, install_to: &Path) -> Result<Vec<BuiltGuest>> {
    ensure_wasm_target()?;
    let target_dir = repo_root.join("target").join("guests");
    let mut built = Vec::new();
    for guest in guest_crates(workspace)? {
        let package = package_name(&guest)?;
        cargo_build(repo_root, workspace, &target_dir, &package)?;
        let wasm = target_dir
            .join(WASM_TARGET)
            .join("release")
            .join(format!("{}.wasm", package.replace('-', "_")));
        let identity = cargo_identity(workspace, &guest)?;
        built.push(install(install_to, &guest, &wasm, Some(identity))?);
    }
    Ok(built)
}

/// The keys a Rust guest states once, in its `Cargo.toml`; the build
/// copies them into the installed manifest, and the plugin's `describe()`
/// reads them with `env!("CARGO_PKG_NAME")` and its siblings.
const IDENTITY_KEYS: [&str; 3] = ["name", "version", "description"];

/// A Rust guest's name, version and description from its `Cargo.toml`,
/// following `version.workspace = true` (and the like) to the workspace.
fn cargo_identity(workspace: &Path, guest: &Path) -> Result<toml::Table> {
    let read = |path: &Path| -> Result<toml::Table> {
        toml::from_str(&std::fs::read_to_string(path)?).with_context(|| format!("parsing {}", path.display()))
    };
    let manifest = read(&guest.join("Cargo.toml"))?;
    let workspace_manifest = read(&workspace.join("Cargo.toml"))?;
    let package = manifest.get("package").and_then(|p| p.as_table());
    let inherited = workspace_manifest
        .get("workspace")
        .and_then(|w| w.get("package"))
        .and_then(|p| p.as_table());
    let mut identity = toml::Table::new();
    for key in IDENTITY_KEYS {
        let value = match package.and_then(|p| p.get(key)) {
            Some(toml::Value::Table(t)) if t.get("workspace").and_then(|w| w.as_bool()) == Some(true) => {
                inherited.and_then(|p| p.get(key)).cloned()
            }
            other => other.cloned(),
        };
        let value = value.with_context(|| format!("{}/Cargo.toml has no package {key}", guest.display()))?;
        identity.insert(key.into(), value);
    }
    Ok(identity)
}

fn package_name(guest: &Path) -> Result<String> {
    let text = std::fs::read_to_string(guest.join("Cargo.toml"))?;
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("parsing {}/Cargo.toml", guest.display()))?;
    table
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .map(str::to_string)
        .with_context(|| format!("{}/Cargo.toml has no package name", guest.display()))
}

fn cargo_build(repo_root: &Path, workspace: &Path, target_dir: &Path, package: &str) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args(["build", "--release", "--target", WASM_TARGET, "-p", package])
        .env("CARGO_TARGET_DIR", target_dir);
    // Called from a build script, the outer cargo's settings would leak into
    // the nested build (flags for the host target, the outer profile).
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        let leaks = (key.starts_with("CARGO_") && key != "CARGO_HOME")
            || matches!(
                key.as_str(),
                "RUSTFLAGS"
                    | "RUSTC_WRAPPER"
                    | "RUSTC_WORKSPACE_WRAPPER"
                    | "TARGET"
                    | "HOST"
                    | "OUT_DIR"
                    | "PROFILE"
                    | "OPT_LEVEL"
                    | "DEBUG"
                    | "NUM_JOBS"
                    | "RUSTC"
            );
        if leaks && key != "CARGO_TARGET_DIR" {
            command.env_remove(&key);
        }
    }
    command.env("RUSTFLAGS", reproducible_rustflags(repo_root));
    let status = command
        .status()
        .with_context(|| format!("running cargo build for guest `{package}`"))?;
    if !status.success() {
        bail!("building guest `{package}` for {WASM_TARGET} failed (see cargo's output above)");
    }
    Ok(())
}

/// Maps build paths to fixed names, so a component does not carry the
/// builder's directories (panic messages name source files). Builds are not
/// yet bit-for-bit reproducible across checkout paths: cargo's symbol hashes
/// include a path dependency's location.
fn reproducible_rustflags(repo_root: &Path) -> String {
    let root = repo_root.canonicalize().unwrap_or_else(|_| repo_root.to_path_buf());
    let mut flags = vec![format!("--remap-path-prefix={}=/xla-host", root.display())];
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")));
    if let Some(cargo_home) = cargo_home {
        flags.push(format!("--remap-path-prefix={}=/cargo", cargo_home.display()));
    }
    flags.join(" ")
}

/// The `name` in a guest's source `plugin.toml`.
pub(crate) fn manifest_name(guest: &Path) -> Result<String> {
    let source = guest.join("plugin.toml");
    let manifest: toml::Table =
        toml::from_str(&std::fs::read_to_string(&source)?).with_context(|| format!("parsing {}", source.display()))?;
    manifest
        .get("name")
        .and_then(|n| n.as_str())
        .map(str::to_string)
        .with_context(|| format!("{} has no `name`", source.display()))
}

/// Installs the component `wasm` of `guest` under `install_to/<name>/`, with
/// its manifest completed by the sha256, the inlined config schema and, for a
/// Rust guest, the `identity` its `Cargo.toml` states (a Python guest states
/// its identity in its `plugin.toml`).
pub(crate) fn install(
    install_to: &Path,
    guest: &Path,
    wasm: &Path,
    identity: Option<toml::Table>,
) -> Result<BuiltGuest> {
    let bytes = std::fs::read(wasm).with_context(|| format!("reading built guest {}", wasm.display()))?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let source = guest.join("plugin.toml");
    let mut manifest: toml::Table =
        toml::from_str(&std::fs::read_to_string(&source)?).with_context(|| format!("parsing {}", source.display()))?;
    if let Some(identity) = identity {
        if let Some(key) = IDENTITY_KEYS.iter().find(|k| manifest.contains_key(**k)) {
            bail!(
                "{} states `{key}`, which the plugin states once, in its Cargo.toml; remove it from plugin.toml",
                source.display()
            );
        }
        manifest.extend(identity);
    }
    let name = manifest
        .get("name")
        .and_then(|n| n.as_str())
        .with_context(|| format!("{} has no `name`", source.display()))?
        .to_string();
    if let Some(schema_file) = manifest.remove("config_schema_file") {
        let schema_path = guest.join(schema_file.as_str().unwrap_or_default());
        let schema =
            std::fs::read_to_string(&schema_path).with_context(|| format!("reading {}", schema_path.display()))?;
        manifest.insert("config_schema".into(), toml::Value::String(schema));
    }
    let file_name = format!("{name}.wasm");
    manifest.insert("wasm".into(), toml::Value::String(file_name.clone()));
    manifest.insert("sha256".into(), toml::Value::String(sha256.clone()));

    let dir = install_to.join(&name);
    std::fs::create_dir_all(&dir)?;
    let installed_wasm = dir.join(&file_name);
    std::fs::write(&installed_wasm, &bytes)?;
    let installed_manifest = dir.join("plugin.toml");
    let header = "# Written by `cargo xtask build-plugins`: the source manifest plus sha256.\n";
    std::fs::write(&installed_manifest, format!("{header}{}", toml::to_string(&manifest)?))?;
    Ok(BuiltGuest {
        name,
        wasm: installed_wasm,
        manifest: installed_manifest,
        sha256,
    })
}
