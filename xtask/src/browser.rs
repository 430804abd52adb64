//! The dashboard's browser test: it drives Debian's Chromium through
//! playwright-core and checks pages with axe-core, both pinned in
//! `tests/browser/package-lock.json`. Chromium comes from apt, not from
//! Playwright's own download, so the test needs no network beyond the
//! package registries, and the browser is patched with the rest of the
//! machine.
//!
//! [`ensure_browser_tools`] installs what is missing, as `cargo xtask` adds
//! the wasm32-wasip2 target and the pinned Python tools, and does nothing
//! when all is in place, so repeated test runs stay fast.

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The browser test's npm package, relative to the repository root.
pub const BROWSER_TESTS: &str = "tests/browser";

/// Where Debian's `chromium` package puts the browser; `tests/browser/launch.mjs`
/// starts it from here unless `XLA_CHROMIUM` names another executable.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The environment variable naming another Chromium executable.
const CHROMIUM_ENV: &str = "XLA_CHROMIUM";

/// The oldest Node.js playwright-core 1.65 runs on (its `engines` field).
const MIN_NODE_MAJOR: u32 = 20;

/// Written into `node_modules` after a successful `npm ci`: the sha256 of the
/// `package-lock.json` it installed. `npm ci` empties `node_modules` first,
/// so a failed or interrupted install leaves no stamp.
const LOCK_STAMP: &str = ".xla-package-lock.sha256";

/// How to get Node.js, for the errors.
const INSTALL_NODE: &str = "install Node.js 20 or newer with npm (Debian 13: `apt-get install nodejs npm`; \
     Debian 12's nodejs is 18, too old: take Node.js 20+ from nodejs.org or NodeSource)";

/// Makes sure the browser test can run: Chromium at [`CHROMIUM`] (or where
/// `XLA_CHROMIUM` points), installed with apt when missing, and
/// `tests/browser`'s npm packages installed with `npm ci` when missing or
/// installed from another `package-lock.json`.
pub fn ensure_browser_tools(root: &Path) -> Result<()> {
    ensure_chromium()?;
    ensure_npm_packages(root)
}

/// Installs Debian's `chromium` with apt-get when the browser is missing
/// (as root, or through `sudo` otherwise). A fresh machine may have no
/// package lists yet, so a failed install is retried once after
/// `apt-get update`.
fn ensure_chromium() -> Result<()> {
    if let Some(custom) = std::env::var_os(CHROMIUM_ENV).filter(|v| !v.is_empty()) {
        let custom = PathBuf::from(custom);
        if !custom.is_file() {
            bail!(
                "{CHROMIUM_ENV} names {}, which is not a file; point it at a Chromium executable or unset it to use {CHROMIUM}",
                custom.display()
            );
        }
        return Ok(());
    }
    let install_by_hand = format!(
        "the dashboard's browser test needs Chromium at {CHROMIUM}: run `sudo apt-get update && sudo apt-get install -y \
         --no-install-recommends chromium` (Debian), or set {CHROMIUM_ENV} to a Chromium executable"
    );
    crate::debian::ensure_package(
        "chromium",
        "the dashboard's browser test drives it",
        &install_by_hand,
        || Path::new(CHROMIUM).is_file(),
    )
}

/// Runs `npm ci` in `tests/browser` unless its `node_modules` already holds
/// playwright-core installed from the current `package-lock.json` (the
/// stamp [`LOCK_STAMP`] records which). A content hash, not modification
/// times: `npm install` writes the lock file after the packages, and a
/// checkout sets times to the moment of checkout, so times would reinstall
/// when nothing changed.
fn ensure_npm_packages(root: &Path) -> Result<()> {
    let dir = root.join(BROWSER_TESTS);
    let lock = dir.join("package-lock.json");
    let lock_hash = hex::encode(Sha256::digest(
        std::fs::read(&lock).with_context(|| format!("reading {}", lock.display()))?,
    ));
    let modules = dir.join("node_modules");
    let stamp = modules.join(LOCK_STAMP);
    let installed = modules.join("playwright-core").join("package.json").is_file()
        && std::fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == lock_hash);
    check_node()?;
    if installed {
        return Ok(());
    }
    eprintln!("installing {BROWSER_TESTS}'s npm packages (pinned in its package-lock.json) with npm ci");
    let status = Command::new("npm")
        .current_dir(&dir)
        .args(["ci", "--no-audit", "--no-fund"])
        .status()
        .with_context(|| format!("running `npm ci` in {BROWSER_TESTS}; {INSTALL_NODE}"))?;
    if !status.success() {
        bail!("`npm ci --no-audit --no-fund` in {BROWSER_TESTS} failed (see its output above)");
    }
    std::fs::write(&stamp, &lock_hash).with_context(|| format!("writing {}", stamp.display()))?;
    Ok(())
}

/// Fails, saying how to install it, unless `node` is Node.js
/// [`MIN_NODE_MAJOR`] or newer and `npm` runs.
fn check_node() -> Result<()> {
    let output = Command::new("node")
        .arg("--version")
        .output()
        .with_context(|| format!("cannot run `node`; the dashboard's browser test needs it: {INSTALL_NODE}"))?;
    let version = String::from_utf8_lossy(&output.stdout).trim().to_string();
    let major = version
        .strip_prefix('v')
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.parse::<u32>().ok());
    match major {
        Some(major) if output.status.success() && major >= MIN_NODE_MAJOR => {}
        _ => {
            bail!("`node --version` says `{version}`; playwright-core needs Node.js {MIN_NODE_MAJOR}+: {INSTALL_NODE}")
        }
    }
    let npm = Command::new("npm").arg("--version").stdout(Stdio::null()).status();
    if !npm.is_ok_and(|s| s.success()) {
        bail!("node {version} is here but `npm` does not run; {INSTALL_NODE}");
    }
    Ok(())
}
