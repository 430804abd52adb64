//! Python scorers: each directory of `sdk/python/examples/` (and of
//! `tests/guests/`, for test guests) with a `plugin.toml` and an `app.py` is
//! built into a component with componentize-py (pinned in
//! `sdk/python/requirements.txt`) and installed like a Rust plugin, under
//! `target/plugins/<name>/` (`target/test-guests/<name>/`).
//!
//! componentize-py's output is not byte-for-byte reproducible (its build
//! snapshots a CPython heap seeded with fresh randomness), so a rebuild of
//! unchanged sources would change the sha256, miss the host's compile cache
//! and break pins. The build therefore fingerprints its inputs (sources, SDK
//! module, WIT, componentize-py version) and reuses the last component while
//! the fingerprint holds.

use crate::BuiltGuest;
use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The requirements file that pins componentize-py, relative to the repository root.
pub const REQUIREMENTS: &str = "sdk/python/requirements.txt";

/// The world every Python scorer targets.
const WORLD: &str = "xla:plugin/scorer-plugin";

/// The module componentize-py wraps: `app.py` in each example.
const APP_MODULE: &str = "app";

/// The Python interpreter that runs componentize-py.
const PYTHON: &str = "python3";

/// Where the shipped Python scorers live.
pub fn examples_dir(repo_root: &Path) -> PathBuf {
    repo_root.join("sdk").join("python").join("examples")
}

/// The Python scorers in `dir`: subdirectories holding a `plugin.toml` and
/// an `app.py`.
pub fn python_guests(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut guests = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.join("plugin.toml").is_file() && path.join(format!("{APP_MODULE}.py")).is_file() {
            guests.push(path);
        }
    }
    guests.sort();
    Ok(guests)
}

/// Builds every Python scorer in `dir` and installs each under
/// `install_to`. Fails with the `pip install` line to run when
/// componentize-py is missing or is not the pinned version.
pub fn build_python(repo_root: &Path, dir: &Path, install_to: &Path) -> Result<Vec<BuiltGuest>> {
    let guests = python_guests(dir)?;
    if guests.is_empty() {
        return Ok(Vec::new());
    }
    let version = check_componentize_py(repo_root)?;
    let mut built = Vec::new();
    for guest in guests {
        let name = crate::manifest_name(&guest)?;
        let work = repo_root.join("target").join("python").join(&name);
        let wasm = work.join(format!("{name}.wasm"));
        let sources = sources(repo_root, &guest)?;
        let fingerprint = fingerprint(repo_root, &version, &sources)?;
        let stamp = work.join("inputs.sha256");
        let fresh = wasm.is_file() && std::fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == fingerprint);
        if !fresh {
            componentize(repo_root, &name, &sources, &work, &wasm)?;
            std::fs::write(&stamp, &fingerprint).with_context(|| format!("writing {}", stamp.display()))?;
        }
        built.push(crate::install(install_to, &guest, &wasm, None)?);
    }
    Ok(built)
}

/// The installed componentize-py's version, which must be the pinned one.
fn check_componentize_py(repo_root: &Path) -> Result<String> {
    ensure_pinned(
        repo_root,
        "componentize-py",
        REQUIREMENTS,
        "the Python scorers in sdk/python/examples need it",
    )
}

/// Makes sure `python3` has `package` at the version `requirements`
/// (relative to the repository root) pins, installing it with pip when it
/// is missing or another version, as `cargo xtask` adds the wasm32-wasip2
/// target when it is missing; returns that version. `needed_for` says why,
/// in the error.
pub fn ensure_pinned(repo_root: &Path, package: &str, requirements: &str, needed_for: &str) -> Result<String> {
    let pinned = pinned_version(repo_root, package, requirements)?;
    let install = format!("run `{PYTHON} -m pip install -r {requirements}`");
    if installed_version(package)?.as_deref() != Some(pinned.as_str()) {
        eprintln!("installing {package} {pinned} (pinned in {requirements}) with pip");
        let status = Command::new(PYTHON)
            .args(["-m", "pip", "install", "--quiet", "-r"])
            .arg(repo_root.join(requirements))
            .status()
            .with_context(|| format!("running `{PYTHON} -m pip`; install Python 3 with pip, then {install}"))?;
        if !status.success() {
            bail!("pip could not install {package} {pinned}; {install} and read its error");
        }
    }
    match installed_version(package)? {
        Some(installed) if installed == pinned => Ok(installed),
        Some(installed) => bail!("{package} {installed} is installed but {requirements} pins {pinned}: {install}"),
        None => bail!("{package} is not installed for `{PYTHON}`; {needed_for}: {install}"),
    }
}

/// `package`'s version as `python3` sees it; `None` when it is not installed.
fn installed_version(package: &str) -> Result<Option<String>> {
    let output = Command::new(PYTHON)
        .args([
            "-c",
            &format!("import importlib.metadata as m; print(m.version({package:?}))"),
        ])
        .stderr(Stdio::null())
        .output()
        .with_context(|| format!("cannot run `{PYTHON}`; {package} needs Python 3"))?;
    Ok(output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string()))
}

/// The version after `<package>==` in `requirements`.
fn pinned_version(repo_root: &Path, package: &str, requirements: &str) -> Result<String> {
    let path = repo_root.join(requirements);
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let prefix = format!("{package}==");
    text.lines()
        .map(|line| line.split('#').next().unwrap_or_default().trim())
        .find_map(|line| line.strip_prefix(prefix.as_str()))
        .map(|v| v.trim().to_string())
        .with_context(|| format!("{} does not pin `{package}==<version>`", path.display()))
}

/// What goes into a component: the example's files (not its bytecode cache)
/// and the SDK's helper module, as (file name, path).
fn sources(repo_root: &Path, guest: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut sources = Vec::new();
    for entry in std::fs::read_dir(guest).with_context(|| format!("reading {}", guest.display()))? {
        let path = entry?.path();
        if path.is_file() {
            let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
            sources.push((name, path));
        }
    }
    let helper = repo_root.join("sdk").join("python").join("xla_scorer.py");
    if sources.iter().any(|(name, _)| name == "xla_scorer.py") {
        bail!(
            "{} has its own xla_scorer.py; the SDK's module goes in under that name",
            guest.display()
        );
    }
    sources.push(("xla_scorer.py".into(), helper));
    sources.sort();
    Ok(sources)
}

/// sha256 over everything the build reads: sources, WIT, tool version.
fn fingerprint(repo_root: &Path, version: &str, sources: &[(String, PathBuf)]) -> Result<String> {
    let mut hasher = Sha256::new();
    let mut add = |label: &str, bytes: &[u8]| {
        hasher.update((label.len() as u64).to_le_bytes());
        hasher.update(label.as_bytes());
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    };
    add("componentize-py", version.as_bytes());
    add("world", WORLD.as_bytes());
    for (name, path) in sources {
        add(
            name,
            &std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        );
    }
    for path in wit_files(&crate::contract_wit(repo_root))? {
        let label = path
            .strip_prefix(repo_root)
            .unwrap_or(&path)
            .to_string_lossy()
            .into_owned();
        add(&label, &std::fs::read(&path)?);
    }
    Ok(hex::encode(hasher.finalize()))
}

fn wit_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            files.extend(wit_files(&path)?);
        } else if path.extension().is_some_and(|e| e == "wit") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Copies the sources into a fresh staging directory (so the build writes
/// nothing into the source tree and the component names no checkout path),
/// then runs `componentize-py componentize app`.
fn componentize(repo_root: &Path, name: &str, sources: &[(String, PathBuf)], work: &Path, wasm: &Path) -> Result<()> {
    let staging = work.join("src");
    if staging.exists() {
        std::fs::remove_dir_all(&staging).with_context(|| format!("clearing {}", staging.display()))?;
    }
    std::fs::create_dir_all(&staging).with_context(|| format!("creating {}", staging.display()))?;
    for (file, path) in sources {
        std::fs::copy(path, staging.join(file)).with_context(|| format!("copying {}", path.display()))?;
    }
    let wit = crate::contract_wit(repo_root);
    let output = work.join(format!("{name}.wasm.partial"));
    let status = Command::new(PYTHON)
        .current_dir(&staging)
        .args(["-c", "import componentize_py; componentize_py.script()"])
        .arg("--quiet")
        .arg("--wit-path")
        .arg(&wit)
        .args(["--world", WORLD, "componentize", APP_MODULE, "--python-path", "."])
        .arg("--output")
        .arg(&output)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .status()
        .with_context(|| format!("running componentize-py for `{name}`"))?;
    if !status.success() {
        bail!("building Python scorer `{name}` with componentize-py failed (see its output above)");
    }
    std::fs::rename(&output, wasm).with_context(|| format!("moving the component to {}", wasm.display()))?;
    Ok(())
}
