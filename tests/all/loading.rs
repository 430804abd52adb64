//! Loading plugins: bad files, tampering, pins, wrong worlds, the compile
//! cache, and a directory where one broken plugin fails alone.

use crate::support::{guests, runtime};
use std::path::{Path, PathBuf};
use xla_host::plugins::{Pins, PluginLoadError, discover, load_plugin};
use xla_host::runtime::{CacheOutcome, Runtime, RuntimeError, RuntimeOptions};

/// Copies a built plugin's directory into a temporary one the test may spoil.
pub(crate) fn copy_plugin(wasm: &str) -> (tempfile::TempDir, PathBuf) {
    let source = Path::new(wasm).parent().expect("plugin directory");
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join(source.file_name().expect("name"));
    std::fs::create_dir_all(&target).expect("mkdir");
    for entry in std::fs::read_dir(source).expect("read plugin dir") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, target.join(path.file_name().expect("file name"))).expect("copy");
    }
    let wasm = target.join(Path::new(wasm).file_name().expect("wasm name"));
    (dir, wasm)
}

fn load(path: &Path, pins: &Pins) -> Result<(), PluginLoadError> {
    load_plugin(runtime(), path, pins).map(drop)
}

pub(crate) fn edit_manifest(wasm: &Path, from: &str, to: &str) {
    let manifest = wasm.with_file_name("plugin.toml");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    assert!(text.contains(from), "manifest has `{from}`");
    std::fs::write(&manifest, text.replacen(from, to, 1)).expect("write manifest");
}

fn sha256_of(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).expect("read")))
}

#[test]
fn a_file_that_is_not_wasm_is_named_as_such() {
    let (_dir, wasm) = copy_plugin(guests::JSON_FEED);
    std::fs::write(&wasm, b"#!/bin/sh\necho not a plugin\n").expect("write");
    let error = load(&wasm, &Pins::default()).unwrap_err();
    assert!(
        matches!(error, PluginLoadError::Runtime(RuntimeError::NotAComponent { .. })),
        "{error}"
    );
}

#[test]
fn a_core_module_is_not_a_component() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wasm = dir.path().join("core.wasm");
    std::fs::write(&wasm, b"\0asm\x01\0\0\0").expect("write");
    let error = load(&wasm, &Pins::default()).unwrap_err().to_string();
    assert!(error.contains("core Wasm module, not a component"), "{error}");
}

#[test]
fn a_tampered_file_is_refused_before_it_is_compiled() {
    let (_dir, wasm) = copy_plugin(guests::JSON_FEED);
    let mut bytes = std::fs::read(&wasm).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&wasm, bytes).expect("write");
    let error = load(&wasm, &Pins::default()).unwrap_err();
    assert!(matches!(error, PluginLoadError::HashMismatch { .. }), "{error}");
    assert!(error.to_string().contains("Rebuild the plugin"), "{error}");
}

#[test]
fn the_operator_pin_is_enforced() {
    let wasm = Path::new(guests::JSON_FEED);
    let actual = sha256_of(wasm);
    let mut pins = Pins::default();
    pins.sha256.insert("json-feed".into(), actual.clone());
    load(wasm, &pins).expect("the pinned file loads");

    pins.sha256.insert("json-feed".into(), "0".repeat(64));
    let error = load(wasm, &pins).unwrap_err();
    assert!(matches!(error, PluginLoadError::PinMismatch { .. }), "{error}");
    assert!(error.to_string().contains("update the pin"), "{error}");

    let required = Pins {
        require: true,
        ..Pins::default()
    };
    let error = load(wasm, &required).unwrap_err().to_string();
    assert!(error.contains("has no pin") && error.contains(&actual), "{error}");
}

#[test]
fn a_scorer_presented_as_a_connector_is_the_wrong_world() {
    let (_dir, wasm) = copy_plugin(guests::MEAN);
    edit_manifest(&wasm, "kind = \"scorer\"", "kind = \"connector\"");
    let error = load(&wasm, &Pins::default()).unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(error, PluginLoadError::Runtime(RuntimeError::WrongWorld { .. })),
        "{message}"
    );
    assert!(
        message.contains("xla:plugin/scorer@0.2.0"),
        "says what it is instead: {message}"
    );
}

#[test]
fn a_missing_manifest_and_an_unsupported_contract_are_explained() {
    let (_dir, wasm) = copy_plugin(guests::JSON_FEED);
    edit_manifest(&wasm, "contract = \"0.2.0\"", "contract = \"0.3.0\"");
    let error = load(&wasm, &Pins::default()).unwrap_err().to_string();
    assert!(error.contains("contract 0.3.0") && error.contains("0.2.x"), "{error}");

    std::fs::remove_file(wasm.with_file_name("plugin.toml")).expect("remove manifest");
    let error = load(&wasm, &Pins::default()).unwrap_err();
    assert!(matches!(error, PluginLoadError::MissingManifest { .. }), "{error}");
}

#[test]
fn the_compile_cache_survives_a_restart_and_recovers_from_damage() {
    let cache = tempfile::tempdir().expect("tempdir");
    let fresh_runtime = || {
        Runtime::new(RuntimeOptions {
            cache_dir: Some(cache.path().to_path_buf()),
            max_instances: 4,
            ..RuntimeOptions::default()
        })
        .expect("runtime")
    };
    let wasm = Path::new(guests::JSON_FEED);
    let outcome = |runtime: &Runtime| load_plugin(runtime, wasm, &Pins::default()).expect("loads").cache;
    assert_eq!(outcome(&fresh_runtime()), CacheOutcome::Miss);
    assert_eq!(
        outcome(&fresh_runtime()),
        CacheOutcome::Hit,
        "a restart loads from the cache"
    );

    // Swap in the compiled code of another plugin: valid for this engine, so
    // only the checksum stands between it and being run as json-feed.
    load_plugin(&fresh_runtime(), Path::new(guests::MEAN), &Pins::default()).expect("mean loads");
    let entries: Vec<PathBuf> = std::fs::read_dir(cache.path())
        .expect("cache dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    let json_feed_sha = sha256_of(wasm);
    let (ours, theirs): (Vec<&PathBuf>, Vec<&PathBuf>) = entries.iter().partition(|p| {
        p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(&json_feed_sha))
    });
    std::fs::copy(theirs[0], ours[0]).expect("swap the entry");
    assert_eq!(
        outcome(&fresh_runtime()),
        CacheOutcome::Miss,
        "a swapped entry is recompiled, not trusted"
    );
    assert_eq!(outcome(&fresh_runtime()), CacheOutcome::Hit);
}

#[test]
fn a_broken_plugin_fails_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (source, name) in [(guests::JSON_FEED, "json-feed"), (guests::MEAN, "mean")] {
        let target = dir.path().join(name);
        std::fs::create_dir_all(&target).expect("mkdir");
        let source = Path::new(source).parent().expect("dir");
        for file in ["plugin.toml", &format!("{name}.wasm")] {
            std::fs::copy(source.join(file), target.join(file)).expect("copy");
        }
    }
    std::fs::write(dir.path().join("mean").join("mean.wasm"), b"\0asm\x0d\0\x01\0garbage").expect("break mean");
    let results = discover(runtime(), dir.path(), &Pins::default()).expect("discover");
    assert_eq!(results.len(), 2);
    let ok: Vec<_> = results
        .iter()
        .filter_map(|d| d.result.as_ref().ok())
        .map(|p| p.manifest.name.clone())
        .collect();
    assert_eq!(ok, ["json-feed"]);
    let broken = results.iter().find(|d| d.result.is_err()).expect("one failure");
    assert!(broken.path.ends_with("mean/mean.wasm"), "{}", broken.path.display());
    assert!(matches!(broken.result, Err(PluginLoadError::HashMismatch { .. })));
}

#[test]
fn a_corrupt_component_with_a_matching_hash_fails_to_compile_clearly() {
    let (_dir, wasm) = copy_plugin(guests::JSON_FEED);
    std::fs::write(&wasm, b"\0asm\x0d\0\x01\0this is not a component body").expect("write");
    let manifest = wasm.with_file_name("plugin.toml");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    let old_sha = text
        .lines()
        .find_map(|l| l.strip_prefix("sha256 = \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .expect("sha256 line")
        .to_string();
    std::fs::write(&manifest, text.replace(&old_sha, &sha256_of(&wasm))).expect("write manifest");
    let error = load(&wasm, &Pins::default()).unwrap_err();
    assert!(
        matches!(error, PluginLoadError::Runtime(RuntimeError::Compile { .. })),
        "{error}"
    );
    assert!(
        error.to_string().contains("compiling plugin `json-feed` 0.1.0 failed"),
        "{error}"
    );
}

/// A manifest whose version no longer matches what the component says of
/// itself (a component swapped or rebuilt by hand under an old manifest) is
/// refused by every path that describes the plugin, naming both values.
#[test]
fn describe_and_manifest_must_agree_on_every_path_that_loads_the_plugin() {
    let (dir, feed) = copy_plugin(guests::JSON_FEED);
    edit_manifest(&feed, "version = \"0.1.0\"", "version = \"9.9.9\"");
    let (_mean_dir, mean) = copy_plugin(guests::MEAN);
    edit_manifest(&mean, "version = \"0.1.0\"", "version = \"9.9.9\"");
    let both = "describe() says `json-feed` 0.1.0 but its plugin.toml says `json-feed` 9.9.9";

    let output = crate::cli::xla_host(&["plugin", "check", feed.to_str().expect("utf-8")], &[]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("describe() says `json-feed` 0.1.0 but plugin.toml says `json-feed` 9.9.9"),
        "{stderr}"
    );

    // A sync is refused before the connector is asked for anything.
    let config = dir.path().join("host.toml");
    let text = format!(
        "[plugins]\ndir = {:?}\n\n[[connectors]]\nname = \"feed\"\nplugin = \"json-feed\"\ntenant = \"acme\"\nconfig = {{ base_url = \"http://127.0.0.1:9/xla\" }}\n",
        dir.path().display().to_string()
    );
    std::fs::write(&config, text).expect("write config");
    let data = dir.path().join("data");
    let output = crate::cli::xla_host(
        &[
            "--host-config",
            config.to_str().expect("utf-8"),
            "sync",
            "feed",
            "--data-dir",
            data.to_str().expect("utf-8"),
        ],
        &[],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(both), "{stderr}");

    // Scoring loads its scorers the same way.
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let scorers_dir = mean.parent().and_then(Path::parent).expect("plugins dir");
    let error = tokio
        .block_on(xla_host::score::load_scorers(
            runtime(),
            scorers_dir,
            &Pins::default(),
            &Default::default(),
            ["mean"],
            &xla_host::runtime::Limits::default(),
        ))
        .err()
        .expect("refused");
    assert!(
        error
            .to_string()
            .contains("describe() says `mean` 0.1.0 but plugin.toml says `mean` 9.9.9"),
        "{error}"
    );
}
