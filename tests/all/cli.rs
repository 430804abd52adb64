//! The real `xla-host` binary: `plugin check` and `plugin run` on built
//! plugins, and their clear failures.

use crate::support::{guests, test_cache_dir};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use xla_host::sim::feed::{self, Feed};

fn xla_host(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xla-host-e2e"));
    command
        .args(args)
        .env("XLA_HOST_CACHE_DIR", test_cache_dir())
        .env_remove("XLA_HOST_CONFIG");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("the binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn plugin_check_prints_the_manifest_and_describe_as_json() {
    let output = xla_host(&["plugin", "check", guests::JSON_FEED, "--json"], &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(report["manifest"]["name"], "json-feed");
    assert_eq!(report["plugin"]["kind"], "connector");
    assert_eq!(report["plugin"]["describe"]["hosts"][0], "*");
    assert!(
        report["plugin"]["describe"]["config_schema"]
            .as_str()
            .is_some_and(|s| s.contains("base_url"))
    );

    let output = xla_host(&["plugin", "check", guests::MEAN], &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.starts_with("mean 0.1.0 (scorer, contract 0.1.0)"), "{text}");
}

#[test]
fn plugin_check_fails_clearly_on_a_non_component_and_a_tampered_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, "hello").expect("write");
    let output = xla_host(&["plugin", "check", junk.to_str().expect("utf-8")], &[]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("is not a WebAssembly component"),
        "{}",
        stderr(&output)
    );

    let source = Path::new(guests::JSON_FEED).parent().expect("dir");
    for file in ["plugin.toml", "json-feed.wasm"] {
        std::fs::copy(source.join(file), dir.path().join(file)).expect("copy");
    }
    let wasm = dir.path().join("json-feed.wasm");
    let mut bytes = std::fs::read(&wasm).expect("read");
    bytes.extend_from_slice(b"appended");
    std::fs::write(&wasm, bytes).expect("tamper");
    let output = xla_host(&["plugin", "check", wasm.to_str().expect("utf-8")], &[]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("does not match the sha256 in its manifest"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_run_pulls_every_page_with_a_credential_from_the_environment() {
    let feed = Arc::new(Feed::seeded(3, 730, "cli-token"));
    let addr = feed::serve(feed.clone()).await.expect("feed");
    let origin = format!("http://{addr}");
    let config = format!(r#"{{"base_url":"{origin}/xla","page_size":100}}"#);
    let credential = format!("{origin}=bearer:XLA_TEST_FEED_TOKEN");
    let output = tokio::task::spawn_blocking(move || {
        let args = [
            "plugin",
            "run",
            guests::JSON_FEED,
            "--config",
            &config,
            "--grant",
            &origin,
            "--credential",
            &credential,
        ];
        xla_host(&args, &[("XLA_TEST_FEED_TOKEN", "cli-token")])
    })
    .await
    .expect("joined");
    assert!(output.status.success(), "{}", stderr(&output));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), 730);
    assert_eq!(lines[0]["metric"], "happiness_rating");
    assert_eq!(feed.requests(), 1 + 8, "check() plus eight pages of 100");
    assert!(
        stderr(&output).contains("730 observations in 8 batches"),
        "{}",
        stderr(&output)
    );
    assert!(
        !stderr(&output).contains("cli-token"),
        "the secret never appears in output"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_run_without_a_grant_is_refused() {
    let feed = Arc::new(Feed::seeded(3, 10, "t"));
    let addr = feed::serve(feed.clone()).await.expect("feed");
    let config = format!(r#"{{"base_url":"http://{addr}/xla"}}"#);
    let output =
        tokio::task::spawn_blocking(move || xla_host(&["plugin", "run", guests::JSON_FEED, "--config", &config], &[]))
            .await
            .expect("joined");
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("refused by the host sandbox"),
        "{}",
        stderr(&output)
    );
    assert_eq!(feed.requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_run_takes_an_instance_from_the_host_config_with_a_secret_file() {
    let feed = Arc::new(Feed::seeded(5, 120, "file-token"));
    let addr = feed::serve(feed.clone()).await.expect("feed");
    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("feed-token");
    std::fs::write(&token_file, "file-token\n").expect("write secret");
    let host_config = dir.path().join("host.toml");
    let text = format!(
        r#"
[limits]
deadline_ms = 10000

[[connectors]]
name = "demo-feed"
plugin = "json-feed"
tenant = "demo"
grants = ["http://{addr}"]
config = {{ base_url = "http://{addr}/xla", page_size = 50 }}

[[connectors.credentials]]
origin = "http://{addr}"
kind = "bearer"
token = {{ file = "{}" }}
"#,
        token_file.display()
    );
    std::fs::write(&host_config, text).expect("write config");
    let config_arg = host_config.display().to_string();
    let output = tokio::task::spawn_blocking(move || {
        let args = [
            "--host-config",
            &config_arg,
            "plugin",
            "run",
            guests::JSON_FEED,
            "--instance",
            "demo-feed",
        ];
        xla_host(&args, &[])
    })
    .await
    .expect("joined");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 120);
    assert!(
        stderr(&output).contains("120 observations in 3 batches"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_host_config_with_a_mistake_names_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let host_config = dir.path().join("host.toml");
    std::fs::write(&host_config, "[limits]\ndeadline = 5\n").expect("write config");
    let output = xla_host(
        &[
            "--host-config",
            host_config.to_str().expect("utf-8"),
            "plugin",
            "check",
            guests::MEAN,
        ],
        &[],
    );
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("host.toml") && message.contains("deadline"),
        "{message}"
    );
}

#[test]
fn simulate_serves_the_sources_on_loopback_only() {
    let output = xla_host(&["simulate", "--listen", "0.0.0.0:0"], &[]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("loopback only"), "{}", stderr(&output));

    let mut child = Command::new(env!("CARGO_BIN_EXE_xla-host-e2e"))
        .args(["simulate", "--tickets", "300"])
        .env_remove("XLA_HOST_CONFIG")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok);
    let servicenow = lines
        .find_map(|line| line.strip_prefix("ServiceNow  ").map(str::to_string))
        .expect("the ServiceNow address is printed");
    let printed: Vec<String> = lines.by_ref().take_while(|l| !l.starts_with("Ctrl-C")).collect();
    assert!(printed.iter().any(|l| l.starts_with("HappySignals ")), "{printed:?}");
    assert!(printed.iter().any(|l| l.starts_with("Nexthink ")), "{printed:?}");
    let addr = servicenow.trim_start_matches("http://").to_string();
    let response = {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&addr).expect("connects");
        // The simulator's documented Basic credential.
        let request = format!(
            "GET /api/now/table/incident?sysparm_limit=1 HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic eGxhLmludGVncmF0aW9uOnhsYS1pbnRlZ3JhdGlvbi1wYXNzd29yZA==\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).expect("write");
        let mut text = String::new();
        stream.read_to_string(&mut text).expect("read");
        text
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains(r#"{"result":[{"#), "{response}");
}
