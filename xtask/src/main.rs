//! `cargo xtask`: builds the Wasm plugins and test guests, and runs every
//! test. See `cargo xtask help`.

use anyhow::{Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

const USAGE: &str = "usage: cargo xtask <command>

commands:
  build-plugins  build every plugin (target/plugins/) and test guest (target/test-guests/)
                 for wasm32-wasip2, installing the target when it is missing; then
                 build-python
  build-python   build the Python scorers (sdk/python/examples/) with componentize-py into
                 target/plugins/ and the Python test guests into target/test-guests/;
                 needs `python3 -m pip install -r sdk/python/requirements.txt`
  demo           build-plugins, then run `xla-host demo` (extra arguments go to the demo)
  test           build-plugins, then every test: the workspace (host, SDK, end-to-end),
                 the plugins' own tests against recorded HTTP exchanges, and the Python
                 SDK's unit tests; installs what the tests drive when missing (Schemathesis
                 with pip, Chromium and PostgreSQL with apt-get, tests/browser's npm packages
                 with npm ci)";

fn main() -> Result<()> {
    let command = std::env::args().nth(1).unwrap_or_default();
    let root = repo_root();
    match command.as_str() {
        "build-plugins" => build_plugins(&root),
        "build-python" => {
            print_built(&build_python(&root)?);
            Ok(())
        }
        "demo" => {
            build_plugins(&root)?;
            // Built with the tests' features (`--workspace --all-features`): the test
            // command that follows (as in CI) then reuses every compiled crate.
            cargo(
                &root,
                &[
                    "build",
                    "--quiet",
                    "--release",
                    "--workspace",
                    "--all-features",
                    "--bin",
                    "xla-host",
                ],
            )?;
            let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
            let host = target.join("release").join("xla-host");
            let status = Command::new(&host)
                .current_dir(&root)
                .arg("demo")
                .args(std::env::args().skip(2))
                .status()
                .map_err(|e| anyhow::anyhow!("running {}: {e}", host.display()))?;
            if !status.success() {
                bail!("`xla-host demo` failed");
            }
            Ok(())
        }
        "test" => {
            build_plugins(&root)?;
            // The API test runs Schemathesis against the served OpenAPI document.
            xtask::python::ensure_pinned(
                &root,
                "schemathesis",
                "tests/api/requirements.txt",
                "the API test fuzzes the served OpenAPI document with it",
            )?;
            // The dashboard's browser test drives Debian's Chromium with playwright-core.
            xtask::browser::ensure_browser_tools(&root)?;
            // The PostgreSQL store's tests start a throwaway cluster with Debian's PostgreSQL.
            xtask::debian::ensure_postgres()?;
            let host = host_triple()?;
            let mut tally = Tally::default();
            tally.run(&root.join("plugins"), &["test", "--release", "--target", &host])?;
            tally.run(&root, &["test", "--release", "--workspace", "--all-features"])?;
            python_unit_tests(&root)?;
            println!("\ntests: {} passed, {} failed", tally.passed, tally.failed);
            Ok(())
        }
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(())
        }
        _ => bail!("{USAGE}"),
    }
}

/// Rust plugins, test guests, then the Python scorers. The Python ones are
/// not optional: the tests compare them with their Rust twins, and a build
/// that skipped them quietly would skip those tests too.
fn build_plugins(root: &Path) -> Result<()> {
    let mut built = xtask::build_workspace(root, &root.join("plugins"), &xtask::plugins_dir(root))?;
    let guests = root.join("tests").join("guests");
    built.extend(xtask::build_workspace(root, &guests, &xtask::test_guests_dir(root))?);
    built.extend(build_python(root)?);
    print_built(&built);
    Ok(())
}

/// The Python scorers (`sdk/python/examples/`) and Python test guests.
fn build_python(root: &Path) -> Result<Vec<xtask::BuiltGuest>> {
    use xtask::python;
    let mut built = python::build_python(root, &python::examples_dir(root), &xtask::plugins_dir(root))?;
    let guests = root.join("tests").join("guests");
    built.extend(python::build_python(root, &guests, &xtask::test_guests_dir(root))?);
    Ok(built)
}

fn print_built(built: &[xtask::BuiltGuest]) {
    for guest in built {
        println!("{:<14} {}  sha256:{}", guest.name, guest.wasm.display(), guest.sha256);
    }
}

/// `sdk/python/tests` with the standard library's unittest (no bytecode
/// written into the source tree, which the tests' build script watches).
fn python_unit_tests(root: &Path) -> Result<()> {
    let status = Command::new("python3")
        .current_dir(root.join("sdk").join("python"))
        .args([
            "-m",
            "unittest",
            "discover",
            "--start-directory",
            "tests",
            "--top-level-directory",
            ".",
        ])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .status()?;
    if !status.success() {
        bail!("the Python SDK's unit tests (sdk/python/tests) failed");
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

/// Counts test results across cargo runs, so the last line says how many
/// tests ran in all (each cargo run ends on its doc-tests, often 0 of them).
#[derive(Default)]
struct Tally {
    passed: u64,
    failed: u64,
}

impl Tally {
    fn run(&mut self, dir: &Path, args: &[&str]) -> Result<()> {
        use std::io::BufRead;
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut child = Command::new(cargo)
            .current_dir(dir)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout from cargo"))?;
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line?;
            println!("{line}");
            self.count(&line);
        }
        if !child.wait()?.success() {
            bail!("`cargo {}` in {} failed", args.join(" "), dir.display());
        }
        Ok(())
    }

    /// Reads `test result: ok. 12 passed; 0 failed; ...`.
    fn count(&mut self, line: &str) {
        let Some(rest) = line.strip_prefix("test result: ") else {
            return;
        };
        for part in rest.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(label), Some(number)) = (words.next(), words.next()) else {
                continue;
            };
            let number: u64 = number.parse().unwrap_or(0);
            match label {
                "passed" => self.passed += number,
                "failed" => self.failed += number,
                _ => {}
            }
        }
    }
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

/// The checkout `cargo xtask` was run in: the nearest directory up from
/// the working directory holding `wit/` and `plugins/`. Found at run time,
/// not baked in at compile time, so that checkouts sharing one target
/// directory (git worktrees) each build their own plugins.
fn repo_root() -> PathBuf {
    let compiled = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let Ok(cwd) = std::env::current_dir() else {
        return compiled;
    };
    cwd.ancestors()
        .find(|dir| dir.join("wit").is_dir() && dir.join("plugins").join("Cargo.toml").is_file())
        .map_or(compiled, Path::to_path_buf)
}
