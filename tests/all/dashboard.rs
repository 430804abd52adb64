//! The dashboard in a real browser: the real binary runs the demo (a
//! simulated organisation synced through the real plugins), serves it with
//! a second tenant beside it, and `tests/browser/dashboard.mjs` drives
//! Chromium through every view: sign-in, numbers against the API's, the
//! planted watermelon, accessibility (axe), console errors, page weight,
//! tenant isolation, sign-out and CSRF. Screenshots go to `target/browser/`.
//!
//! Chromium, Node.js and `tests/browser`'s npm packages are installed by
//! `cargo xtask test`; without them this test fails and says so.

use crate::cli::xla_host_command;
use crate::support::target_dir;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// The month the demo's report covers.
const PERIOD: &str = "2026-10";
/// The browser script's time limit (it takes about 20 s).
const BROWSER_DEADLINE: Duration = Duration::from_secs(300);
/// How long `serve` may take to print its address.
const SERVE_DEADLINE: Duration = Duration::from_secs(60);

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// Node.js, Chromium and the npm packages, or a failure that says how to
/// get them (never a silent skip: a missing browser must not pass).
fn require_browser_tools() {
    let fix = "run `cargo xtask test`, which installs Chromium (apt) and tests/browser's npm packages (npm ci) \
               before running the tests";
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.as_ref().is_ok_and(|o| o.status.success()),
        "the dashboard's browser test needs Node.js (`node` on PATH, 20 or newer): {fix}"
    );
    let chromium = std::env::var_os("XLA_CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        chromium.is_file(),
        "the dashboard's browser test needs Chromium at {} (or XLA_CHROMIUM): {fix}",
        chromium.display()
    );
    for package in ["playwright-core", "axe-core"] {
        let manifest = browser_dir().join("node_modules").join(package).join("package.json");
        assert!(
            manifest.is_file(),
            "the dashboard's browser test needs {} installed: {fix}",
            manifest.display()
        );
    }
}

/// Runs the binary with `args`; its stdout, after checking it succeeded.
fn run(args: &[&str]) -> String {
    let output = xla_host_command(args).output().expect("the binary runs");
    assert!(
        output.status.success(),
        "xla-host {}: {}\n{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

/// Adds tenant `globex` with one XLA shaped as the demo's incident
/// happiness (XLA ids are unique across tenants, so it gets its own).
fn add_globex(host_config: &Path) {
    let text = std::fs::read_to_string(host_config).expect("the demo's host config");
    let mut config: toml::Table = toml::from_str(&text).expect("TOML");
    let xlas = config
        .get_mut("xla")
        .and_then(toml::Value::as_array_mut)
        .expect("the demo's XLAs");
    let mut globex = xlas
        .iter()
        .find(|x| x.get("id").and_then(toml::Value::as_str) == Some("incident-happiness"))
        .expect("the demo's incident-happiness XLA")
        .clone();
    let table = globex.as_table_mut().expect("a table");
    table.insert("tenant".into(), "globex".into());
    table.insert("id".into(), "globex-happiness".into());
    xlas.push(globex);
    std::fs::write(host_config, toml::to_string(&config).expect("TOML")).expect("writing the host config");
}

/// `xla-host serve` on loopback, stopped with SIGTERM when dropped (so a
/// failing test leaves no server behind).
struct Serve {
    child: Option<Child>,
    url: String,
    stderr: Receiver<String>,
}

impl Serve {
    fn start(host_config: &Path) -> Serve {
        let config = host_config.to_str().expect("utf-8");
        let mut child = xla_host_command(&["--host-config", config, "serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("serve starts");
        // stderr is read to its end: a closed pipe would fail the server's next log line.
        let stderr = child.stderr.take().expect("stderr");
        let (lines, received) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        let mut serve = Serve {
            child: Some(child),
            url: String::new(),
            stderr: received,
        };
        let deadline = Instant::now() + SERVE_DEADLINE;
        while serve.url.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = serve
                .stderr
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("serve printed no address within {SERVE_DEADLINE:?} ({e})"));
            if let Some(rest) = line.strip_prefix("API at ") {
                let url = rest.split_whitespace().next().expect("a URL");
                serve.url = url.trim_end_matches("/v1").to_string();
            }
        }
        serve
    }

    /// SIGTERM and the exit status; the server's log lines since it started.
    fn stop(&mut self) -> Option<(std::process::ExitStatus, Vec<String>)> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let status = child.wait().expect("wait");
        Some((status, self.stderr.try_iter().collect()))
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits until `url/readyz` answers 200.
async fn ready(url: &str) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + SERVE_DEADLINE;
    loop {
        if let Ok(response) = client.get(format!("{url}/readyz")).send().await
            && response.status().is_success()
        {
            return;
        }
        assert!(Instant::now() < deadline, "{url}/readyz did not answer 200");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `node dashboard.mjs` with `env`, printing its output as it comes;
/// its exit status and output.
fn run_browser(env: &[(&str, String)]) -> (std::process::ExitStatus, String) {
    let mut command = Command::new("node");
    command
        .arg("dashboard.mjs")
        .current_dir(browser_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("node runs");
    let (lines, received) = channel();
    for stream in [
        Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().expect("stderr")),
    ] {
        let lines = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
    }
    drop(lines);
    let deadline = Instant::now() + BROWSER_DEADLINE;
    let mut output = String::new();
    loop {
        match received.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                println!("  {line}");
                output.push_str(&line);
                output.push('\n');
            }
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the browser test did not end within {BROWSER_DEADLINE:?}; its output:\n{output}");
            }
        }
    }
    (child.wait().expect("wait"), output)
}

/// The demo's data served beside a second tenant, checked in Chromium by
/// `tests/browser/dashboard.mjs` (each check it prints is one assertion).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_in_a_real_browser() {
    require_browser_tools();
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("demo");
    let data_arg = data.to_str().expect("utf-8");
    let demo = xla_host_command(&["demo", "--data-dir", data_arg])
        .env("XLA_HOST_PLUGINS_DIR", target_dir().join("plugins"))
        .output()
        .expect("the demo runs");
    assert!(
        demo.status.success(),
        "xla-host demo: {}\n{}",
        String::from_utf8_lossy(&demo.stdout),
        String::from_utf8_lossy(&demo.stderr)
    );
    println!("demo: {:.1} s", started.elapsed().as_secs_f64());

    let host_config = data.join("xla-host.toml");
    add_globex(&host_config);
    let config = host_config.to_str().expect("utf-8");
    let token = |who: &[&str]| {
        let mut args = vec![
            "--host-config",
            config,
            "token",
            "create",
            "--scope",
            "read",
            "--name",
            "browser-test",
        ];
        args.extend_from_slice(who);
        let printed = run(&args);
        let token = printed.trim().to_string();
        assert!(
            token.starts_with("xla_") && !token.contains(char::is_whitespace),
            "{printed}"
        );
        token
    };
    let demo_token = token(&["--tenant", "demo"]);
    let globex_token = token(&["--tenant", "globex"]);
    let all_token = token(&["--all-tenants"]);

    let mut serve = Serve::start(&host_config);
    ready(&serve.url).await;
    println!(
        "serving at {} after {:.1} s",
        serve.url,
        started.elapsed().as_secs_f64()
    );

    let artifacts = target_dir().join("browser");
    let env = [
        ("XLA_BASE", serve.url.clone()),
        ("XLA_TOKEN_DEMO", demo_token),
        ("XLA_TOKEN_GLOBEX", globex_token),
        ("XLA_TOKEN_ALL", all_token),
        ("XLA_PERIOD", PERIOD.to_string()),
        ("XLA_ARTIFACTS", artifacts.display().to_string()),
    ];
    let (status, output) = tokio::task::spawn_blocking(move || run_browser(&env))
        .await
        .expect("joined");
    let (served, log) = serve.stop().expect("still running");
    println!("in all {:.1} s", started.elapsed().as_secs_f64());
    assert!(
        status.success(),
        "tests/browser/dashboard.mjs failed ({status}); the FAIL lines above say which checks:\n{}\nthe server's log:\n{}",
        output
            .lines()
            .filter(|l| l.starts_with("FAIL") || l.starts_with("      "))
            .collect::<Vec<_>>()
            .join("\n"),
        log.join("\n")
    );
    assert!(served.success(), "serve stopped with {served}: {}", log.join("\n"));
}
