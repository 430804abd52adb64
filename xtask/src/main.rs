//! `cargo xtask build-plugins`: builds every plugin and test guest for
//! wasm32-wasip2 (installing the target when missing) into `target/plugins/`.

use anyhow::{Result, bail};
use std::path::{Path, PathBuf};

fn main() -> Result<()> {
    let command = std::env::args().nth(1).unwrap_or_default();
    let root = repo_root();
    match command.as_str() {
        "build-plugins" => {
            let mut built =
                xtask::build_workspace(&root, &root.join("plugins"), &xtask::plugins_dir(&root))?;
            let guests = root.join("tests").join("guests");
            built.extend(xtask::build_workspace(
                &root,
                &guests,
                &xtask::test_guests_dir(&root),
            )?);
            for guest in &built {
                println!(
                    "{:<22} {}  sha256:{}",
                    guest.name,
                    guest.wasm.display(),
                    guest.sha256
                );
            }
            Ok(())
        }
        _ => bail!(
            "usage: cargo xtask build-plugins\n\nbuild-plugins  build every plugin and test guest for wasm32-wasip2 into target/plugins/"
        ),
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}
