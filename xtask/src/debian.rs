//! Debian packages the tests drive (Chromium, PostgreSQL), installed with
//! apt-get when missing: as root, or through `sudo` otherwise.

use anyhow::{Context, Result, bail};
use std::process::{Command, Stdio};

/// Installs Debian's `package` unless `present()` says it is there. A fresh
/// machine may have no package lists yet, so a failed install is retried
/// once after `apt-get update`. `why` says what needs it; `by_hand` how to
/// install it without us.
pub fn ensure_package(package: &str, why: &str, by_hand: &str, present: impl Fn() -> bool) -> Result<()> {
    if present() {
        return Ok(());
    }
    if Command::new("apt-get")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_err()
    {
        bail!("{package} is missing and there is no apt-get to install it; {by_hand}");
    }
    let sudo = !is_root();
    eprintln!("installing Debian's {package} with apt-get ({why})");
    let install = ["install", "-y", "--no-install-recommends", package];
    if !apt_get(sudo, &install)? {
        eprintln!("apt-get could not install {package}; updating the package lists and retrying");
        if !apt_get(sudo, &["update"])? || !apt_get(sudo, &install)? {
            bail!("apt-get could not install {package} (see its output above); {by_hand}");
        }
    }
    if !present() {
        bail!("apt-get installed {package} but it is still missing; {by_hand}");
    }
    Ok(())
}

/// PostgreSQL's server binaries (`initdb`, `postgres`), which the
/// PostgreSQL store's tests run a throwaway cluster with; `XLA_PG_BIN`
/// names another directory holding them.
pub fn ensure_postgres() -> Result<()> {
    if std::env::var_os("XLA_PG_BIN").is_some_and(|v| !v.is_empty()) {
        return Ok(());
    }
    ensure_package(
        "postgresql",
        "the PostgreSQL store's tests start a throwaway cluster with it",
        "the PostgreSQL store's tests need PostgreSQL's server binaries: run `sudo apt-get install -y postgresql` \
         (Debian), or set XLA_PG_BIN to a directory holding initdb and postgres",
        || {
            std::fs::read_dir("/usr/lib/postgresql").is_ok_and(|versions| {
                versions
                    .flatten()
                    .any(|v| v.path().join("bin/postgres").is_file() && v.path().join("bin/initdb").is_file())
            })
        },
    )
}

/// Runs `apt-get <args>` non-interactively, through `sudo` when asked;
/// whether it succeeded.
fn apt_get(sudo: bool, args: &[&str]) -> Result<bool> {
    // Through `env`, since sudo resets the environment (and may refuse a
    // variable given to it directly).
    let mut command = Command::new(if sudo { "sudo" } else { "env" });
    if sudo {
        command.arg("env");
    }
    command.args(["DEBIAN_FRONTEND=noninteractive", "apt-get"]).args(args);
    let shown = format!("{}apt-get {}", if sudo { "sudo " } else { "" }, args.join(" "));
    let status = command.status().with_context(|| {
        if sudo {
            format!("running `{shown}`; without sudo, run it as root")
        } else {
            format!("running `{shown}`")
        }
    })?;
    Ok(status.success())
}

/// Whether this process runs as root (`id -u` prints 0); if `id` cannot
/// run, not root, so apt-get goes through sudo.
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "0")
}
