//! `cargo xtask`: builds the Wasm plugins and test guests, and runs every
//! test. See `cargo xtask help`.

use anyhow::{Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

const USAGE: &str = "usage: cargo xtask <command>

commands:
  build-plugins  build every plugin (target/plugins/) and test guest (target/test-guests/)
                 for wasm32-wasip2, installing the target when it is missing
  test           build-plugins, then every test: the workspace (host, SDK, end-to-end)
                 and the plugins' own tests against recorded HTTP exchanges";

fn main() -> Result<()> {
    let command = std::env::args().nth(1).unwrap_or_default();
    let root = repo_root();
    match command.as_str() {
        "build-plugins" => build_plugins(&root),
        "test" => {
            build_plugins(&root)?;
            cargo(
                &root,
                &["test", "--release", "--workspace", "--all-features"],
            )?;
            let host = host_triple()?;
            cargo(
                &root.join("plugins"),
                &["test", "--release", "--target", &host],
            )
        }
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(())
        }
        _ => bail!("{USAGE}"),
    }
}

fn build_plugins(root: &Path) -> Result<()> {
    let mut built = xtask::build_workspace(root, &root.join("plugins"), &xtask::plugins_dir(root))?;
    let guests = root.join("tests").join("guests");
    built.extend(xtask::build_workspace(
        root,
        &guests,
        &xtask::test_guests_dir(root),
    )?);
    for guest in &built {
        println!(
            "{:<14} {}  sha256:{}",
            guest.name,
            guest.wasm.display(),
            guest.sha256
        );
    }
    Ok(())
}

fn cargo(dir: &Path, args: &[&str]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo).current_dir(dir).args(args).status()?;
    if !status.success() {
        bail!("`cargo {}` in {} failed", args.join(" "), dir.display());
    }
    Ok(())
}

/// The host's target triple, for running plugin tests natively.
fn host_triple() -> Result<String> {
    let output = Command::new("rustc").arg("-vV").output()?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("`rustc -vV` did not name the host triple"))
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}
