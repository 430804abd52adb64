//! The real `xla-host` binary: `plugin check`, `plugin run`, `plugin parse`
//! and `import` on built plugins, and their clear failures.

use crate::support::{guests, test_cache_dir};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use xla_host::sim::feed::{self, Feed};

/// The binary with `args`, the tests' compile cache and no host config.
pub(crate) fn xla_host_command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xla-host-e2e"));
    command
        .args(args)
        .env("XLA_HOST_CACHE_DIR", test_cache_dir())
        .env_remove("XLA_HOST_CONFIG");
    command
}

pub(crate) fn xla_host(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = xla_host_command(args);
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("the binary runs")
}

/// `xla_host` with `stdin` written to its standard input.
fn xla_host_with_stdin(args: &[&str], stdin: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_xla-host-e2e"))
        .args(args)
        .env("XLA_HOST_CACHE_DIR", test_cache_dir())
        .env_remove("XLA_HOST_CONFIG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    child.wait_with_output().expect("the binary ends")
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
    assert!(
        text.starts_with("mean 0.1.0 (scorer, contract xla:plugin@0.2.0)"),
        "{text}"
    );
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
    assert_eq!(
        stderr(&output)
            .matches("does not match the sha256 in its manifest")
            .count(),
        1,
        "said once: {}",
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

/// A saved ServiceNow Table API body: a resolved incident, an open one
/// (which emits nothing) and nothing else.
const INCIDENTS: &str = r#"{"result":[
  {"sys_id":"a1b2c3d4e5f60718293a4b5c6d7e8f90","sys_updated_on":"2026-10-03 14:31:02","number":"INC0010001",
   "state":"6","opened_at":"2026-10-03 08:00:00","resolved_at":"2026-10-03 14:30:00",
   "reassignment_count":"1","reopen_count":"0","category":"network","priority":"2","contact_type":"phone",
   "business_service.name":"Email","assignment_group.name":"Service Desk"},
  {"sys_id":"0f1e2d3c4b5a69788796a5b4c3d2e1f0","sys_updated_on":"2026-10-03 15:00:00","number":"INC0010002",
   "state":"2","opened_at":"2026-10-03 14:50:00","resolved_at":"",
   "reassignment_count":"0","reopen_count":"0","category":"software","priority":"3","contact_type":"self-service",
   "business_service.name":"VPN","assignment_group.name":"Network"}
]}"#;

/// 2026-10-03 14:30:00 UTC, when INC0010001 was resolved.
const RESOLVED_AT: i64 = 1_791_037_800_000;

/// A HappySignals CSV export: two responses, new to any simulated org.
const SURVEY_CSV: &str = "id,ticket_number,ticket_type,score,lost_time_minutes,factors,channel,country,created\r\n\
hs-manual-1,INC0010001,Incident,9,15,\"Service was fast;Easy to get help\",Portal,Finland,2026-10-03T14:22:09Z\r\n\
hs-manual-2,RITM0010002,Request,4,,,Phone,Sweden,2026-10-04T09:00:00Z\r\n";

fn json_lines(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("`{l}` is not JSON: {e}")))
        .collect()
}

#[test]
fn plugin_parse_maps_a_saved_servicenow_body_to_json_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let body = dir.path().join("incidents.json");
    std::fs::write(&body, INCIDENTS).expect("write body");
    let config = dir.path().join("servicenow.json");
    std::fs::write(&config, r#"{"instance_url":"https://acme.service-now.com"}"#).expect("write config");
    let config_arg = format!("@{}", config.display());
    let args = [
        "plugin",
        "parse",
        guests::SERVICENOW,
        "--media-type",
        "application/json",
        "--config",
        &config_arg,
        body.to_str().expect("utf-8"),
    ];
    let output = xla_host(&args, &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let lines = json_lines(&output);
    // Observation lines; retraction and gap lines (contract 0.2) have their own key.
    let values: Vec<(&str, f64)> = lines
        .iter()
        .filter(|l| l.get("retraction").is_none() && l.get("partial").is_none() && l.get("complete").is_none())
        .map(|l| {
            (
                l["metric"].as_str().expect("metric"),
                l["value"].as_f64().expect("value"),
            )
        })
        .collect();
    assert_eq!(
        values,
        [
            ("resolution_hours", 6.5),
            ("reassignment_count", 1.0),
            ("reopened", 0.0),
            ("first_contact_resolution", 0.0),
            ("ticket_resolved", 1.0),
        ],
        "the resolved incident only; the open one has no values"
    );
    // The open incident is a retraction (it may have been resolved before).
    let retractions: Vec<&serde_json::Value> = lines.iter().filter_map(|l| l.get("retraction")).collect();
    assert_eq!(retractions.len(), 1, "{lines:?}");
    for line in lines.iter().filter(|l| l.get("metric").is_some()) {
        assert_eq!(line["id"], "a1b2c3d4e5f60718293a4b5c6d7e8f90");
        assert_eq!(line["layer"], "operational");
        assert_eq!(line["at"], RESOLVED_AT);
        assert_eq!(line["time"], "2026-10-03T14:30:00.000Z");
        assert_eq!(line["dimensions"]["ticket"], "INC0010001");
        assert_eq!(line["dimensions"]["priority"], "P2");
        assert_eq!(line["dimensions"]["service"], "Email");
        assert_eq!(line["dimensions"]["assignment_group"], "Service Desk");
    }
    assert!(
        stderr(&output).contains("5 observations in 1 records, 1 retractions from"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn plugin_parse_reads_a_happysignals_csv_from_stdin() {
    let args = [
        "plugin",
        "parse",
        guests::HAPPYSIGNALS,
        "--media-type",
        "text/csv; charset=utf-8",
        "--config",
        r#"{"base_url":"https://acme.eu.happysignals.com"}"#,
        "-",
    ];
    let output = xla_host_with_stdin(&args, SURVEY_CSV.as_bytes());
    assert!(output.status.success(), "{}", stderr(&output));
    let lines = json_lines(&output);
    let got: Vec<(&str, &str, f64)> = lines
        .iter()
        .map(|l| {
            (
                l["id"].as_str().expect("id"),
                l["metric"].as_str().expect("metric"),
                l["value"].as_f64().expect("value"),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("hs-manual-1", "happiness_rating", 9.0),
            ("hs-manual-1", "lost_time_minutes", 15.0),
            ("hs-manual-1#Service was fast", "factor_selected", 1.0),
            ("hs-manual-1#Easy to get help", "factor_selected", 1.0),
            ("hs-manual-2", "happiness_rating", 4.0),
        ]
    );
    assert_eq!(lines[0]["layer"], "experience");
    assert_eq!(lines[0]["time"], "2026-10-03T14:22:09.000Z");
    assert_eq!(
        lines[0]["dimensions"],
        serde_json::json!({"ticket": "INC0010001", "ticket_type": "incident", "channel": "Portal", "country": "Finland"})
    );
    assert_eq!(lines[2]["dimensions"]["factor"], "Service was fast");
}

#[test]
fn plugin_parse_refuses_an_undeclared_media_type_and_names_a_bad_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let body = dir.path().join("incidents.json");
    std::fs::write(&body, INCIDENTS).expect("write body");
    let config = r#"{"instance_url":"https://acme.service-now.com"}"#;
    let parse = |media_type: &str, body: &Path| {
        let args = [
            "plugin",
            "parse",
            guests::SERVICENOW,
            "--media-type",
            media_type,
            "--config",
            config,
            body.to_str().expect("utf-8"),
        ];
        xla_host(&args, &[])
    };

    // Refused by the host from describe(), before parse() runs: the
    // connector's own refusal would read differently.
    let output = parse("text/csv", &body);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("does not parse `text/csv`") && message.contains("it declares: application/json"),
        "{message}"
    );
    assert!(output.stdout.is_empty());

    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, INCIDENTS.replace("\"2026-10-03 08:00:00\"", "\"yesterday\"")).expect("write bad");
    let output = parse("application/json", &bad);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("bad data")
            && message.contains("`INC0010001`")
            && message.contains("`opened_at`")
            && message.contains("`yesterday`"),
        "{message}"
    );
    assert!(output.stdout.is_empty(), "nothing is printed when the body fails");

    // Without --config the connector's required field is missing: say what to pass.
    let args = [
        "plugin",
        "parse",
        guests::SERVICENOW,
        "--media-type",
        "application/json",
        body.to_str().expect("utf-8"),
    ];
    let output = xla_host(&args, &[]);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("instance_url") && message.contains("--config"),
        "{message}"
    );
}

/// A host config with the built plugins and one HappySignals instance
/// `hs-acme` of tenant `acme`, reading from `base_url` with the token in
/// `XLA_TEST_HS_TOKEN`.
fn happysignals_host_config(dir: &Path, base_url: &str) -> std::path::PathBuf {
    let plugins = Path::new(guests::HAPPYSIGNALS)
        .parent()
        .and_then(Path::parent)
        .expect("target/plugins");
    let text = format!(
        r#"
[plugins]
dir = "{}"

[[connectors]]
name = "hs-acme"
plugin = "happysignals"
tenant = "acme"
grants = ["{base_url}"]
config = {{ base_url = "{base_url}", page_size = 100 }}

[[connectors.credentials]]
origin = "{base_url}"
kind = "bearer"
token = {{ env = "XLA_TEST_HS_TOKEN" }}
"#,
        plugins.display()
    );
    let path = dir.join("host.toml");
    std::fs::write(&path, text).expect("write host config");
    path
}

fn report(output: &Output) -> serde_json::Value {
    assert!(output.status.success(), "{}", stderr(output));
    serde_json::from_slice(&output.stdout).expect("a JSON report")
}

fn counts(report: &serde_json::Value) -> (u64, u64, u64) {
    let count = |key: &str| report[key].as_u64().unwrap_or_else(|| panic!("{key} in {report}"));
    (count("inserted"), count("replaced"), count("unchanged"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_is_idempotent_and_leaves_the_sync_cursor_alone() {
    use xla_host::sim::happysignals::{self, HappySignalsOptions};
    use xla_host::sim::org::{self, OrgSpec};
    use xla_host::store::RunOutcome;

    let org = Arc::new(org::generate(&OrgSpec {
        seed: 11,
        tickets: 300,
        start: 1_788_220_800_000,
        days: 30,
    }));
    let options = HappySignalsOptions::default();
    let token = options.token.clone();
    let addr: std::net::SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let sim = happysignals::serve(org.clone(), options, addr)
        .await
        .expect("simulator");
    let dir = tempfile::tempdir().expect("tempdir");
    let host_config = happysignals_host_config(dir.path(), &sim.base_url());
    let data = dir.path().join("data");
    let export = dir.path().join("export.csv");
    let responses: Vec<_> = org.responses.iter().collect();
    std::fs::write(&export, happysignals::render_csv(&org, &responses)).expect("write export");
    let manual = dir.path().join("manual.csv");
    std::fs::write(&manual, SURVEY_CSV).expect("write manual");

    let run = move |args: Vec<String>| {
        let token = token.clone();
        let host_config = host_config.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let mut full = vec!["--host-config".to_string(), host_config.display().to_string()];
                full.extend(args);
                let full: Vec<&str> = full.iter().map(String::as_str).collect();
                xla_host(&full, &[("XLA_TEST_HS_TOKEN", &token)])
            })
            .await
            .expect("joined")
        }
    };
    let data_arg = data.display().to_string();
    let args = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    // A real sync sets the instance's cursor.
    let synced = report(&run(args(&["sync", "hs-acme", "--data-dir", &data_arg, "--json"])).await);
    assert_eq!(synced["outcome"], "completed", "{synced}");
    let cursor = {
        let store = crate::support::open_store(&data);
        store.cursor("acme", "hs-acme").await.expect("cursor")
    };
    assert!(cursor.is_some(), "the sync stored a cursor");
    let requests = sim.requests();

    // The export of what the sync brought: every record is already there.
    let export_arg = export.display().to_string();
    let imported = report(
        &run(args(&[
            "import",
            "hs-acme",
            &export_arg,
            "--data-dir",
            &data_arg,
            "--json",
        ]))
        .await,
    );
    let observations = imported["observations"].as_u64().expect("observations");
    assert!(observations > 0);
    assert_eq!(counts(&imported), (0, 0, observations), "{imported}");
    assert_eq!(sim.requests(), requests, "an import sends no request");

    // New responses: inserted once, in three batches of at most two, then unchanged.
    let manual_arg = manual.display().to_string();
    let import_manual = || {
        run(args(&[
            "import",
            "hs-acme",
            &manual_arg,
            "--data-dir",
            &data_arg,
            "--batch-size",
            "2",
            "--json",
        ]))
    };
    let first = report(&import_manual().await);
    assert_eq!(
        (counts(&first), first["batches"].as_u64()),
        ((5, 0, 0), Some(3)),
        "{first}"
    );
    let second = report(&import_manual().await);
    assert_eq!(counts(&second), (0, 0, 5), "{second}");

    let store = crate::support::open_store(&data);
    assert_eq!(
        store.cursor("acme", "hs-acme").await.expect("cursor"),
        cursor,
        "imports leave the sync cursor as the sync left it"
    );
    let rows = store
        .observations("acme", "happiness_rating", i64::MIN, i64::MAX)
        .await
        .expect("rows");
    let manual_row = rows
        .iter()
        .find(|r| r.observation.id == "hs-manual-2")
        .expect("the imported response is stored");
    assert_eq!(manual_row.observation.value, 4.0);
    assert_eq!(manual_row.source, "hs-acme");
    assert_eq!(
        manual_row.provenance.sync_run,
        first["run"]["run"].as_u64().expect("run id")
    );
    let runs = store.runs("acme", "hs-acme", 10).await.expect("runs");
    assert_eq!(runs.len(), 4, "one sync and three imports in the run log");
    assert!(runs.iter().all(|r| r.outcome == RunOutcome::Completed), "{runs:?}");
    assert_eq!(runs[0].unchanged, 5);
}

#[test]
fn import_refusals_name_the_problem_and_store_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let host_config = happysignals_host_config(dir.path(), "https://acme.eu.happysignals.com");
    let data = dir.path().join("data");
    let good = dir.path().join("survey.csv");
    std::fs::write(&good, SURVEY_CSV).expect("write");
    let import = |instance: &str, file: &Path, extra: &[&str]| {
        let mut args = vec![
            "--host-config",
            host_config.to_str().expect("utf-8"),
            "import",
            instance,
            file.to_str().expect("utf-8"),
            "--data-dir",
            data.to_str().expect("utf-8"),
        ];
        args.extend_from_slice(extra);
        let output = xla_host(&args, &[]);
        assert!(!output.status.success(), "{instance} {file:?} {extra:?} must fail");
        stderr(&output)
    };

    let message = import("hs-globex", &good, &[]);
    assert!(
        message.contains("no connector instance `hs-globex`") && message.contains("known: hs-acme"),
        "{message}"
    );

    let message = import("hs-acme", &dir.path().join("missing.csv"), &[]);
    assert!(message.contains("missing.csv does not exist"), "{message}");

    let ndjson = dir.path().join("survey.ndjson");
    std::fs::write(&ndjson, "{}\n").expect("write");
    let message = import("hs-acme", &ndjson, &[]);
    assert!(
        message.contains("does not parse `application/x-ndjson`")
            && message.contains("it declares: text/csv, application/json"),
        "{message}"
    );
    let unknown = dir.path().join("survey.xlsx");
    std::fs::write(&unknown, "x").expect("write");
    let message = import("hs-acme", &unknown, &[]);
    assert!(message.contains("--media-type"), "{message}");

    // A bad row anywhere fails the whole file before anything is stored.
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, SURVEY_CSV.replace(",4,,,", ",eleven,,,")).expect("write");
    let message = import("hs-acme", &bad, &[]);
    assert!(
        message.contains("`hs-manual-2`") && message.contains("`score`") && message.contains("nothing was stored"),
        "{message}"
    );

    assert!(!data.exists(), "no refusal opens, let alone writes, the data directory");
}

/// Stores, in a new store at `data`, ten days of one device's DEX score
/// and one ticket's rating each day, the oldest 9 days ago; returns when
/// each day's values were taken (unix ms).
pub(crate) fn store_ten_days(data: &Path) -> Vec<i64> {
    use xla_host::store::{CommitBatch, Provenance};
    use xla_host::types::{Layer, Observation};
    let day = xla_host::store::DAY_MS;
    let now = xla_host::types::now_ms();
    let times: Vec<i64> = (0..10).map(|d| now - (9 - d) * day).collect();
    let observations: Vec<Observation> = times
        .iter()
        .enumerate()
        .flat_map(|(d, &at)| {
            [
                Observation::new(format!("dev-{d}"), "dex_score", Layer::Technical, 70.0, at).dim("device", "LAPTOP-1"),
                Observation::new(format!("hs-{d}"), "happiness_rating", Layer::Experience, 9.0, at)
                    .dim("service", "VPN"),
            ]
        })
        .collect();
    crate::support::block_on(async {
        let store = crate::support::open_store(data);
        store
            .commit(CommitBatch {
                tenant: "acme".into(),
                source: "test".into(),
                provenance: Provenance {
                    connector: "test".into(),
                    plugin: "test".into(),
                    version: "0".into(),
                    sha256: "0".into(),
                    sync_run: 1,
                },
                observations,
                ..Default::default()
            })
            .await
            .expect("commit");
    });
    times
}

/// `store stats` shows rows per tenant, layer and metric with the
/// retention the config gives each; `store retire --dry-run` drops nothing;
/// `store retire` drops the raw rows past each metric's days and keeps the
/// rollups, and running it again drops nothing more.
#[test]
fn store_stats_and_retire_follow_the_retention_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let times = store_ten_days(&data);
    let host_config = dir.path().join("host.toml");
    std::fs::write(&host_config, "[store.retention]\nlayers = { technical = 3 }\n").expect("write config");
    let data_arg = data.display().to_string();
    let run = |args: &[&str]| {
        let mut full = vec!["--host-config", host_config.to_str().expect("utf-8")];
        full.extend_from_slice(args);
        let output = xla_host(&full, &[]);
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        output
    };
    let stats = |args: &[&str]| -> serde_json::Value {
        let mut full = vec!["store", "stats", "--data-dir", &data_arg, "--json"];
        full.extend_from_slice(args);
        serde_json::from_slice(&run(&full).stdout).expect("JSON stats")
    };
    let metric = |stats: &serde_json::Value, name: &str| -> serde_json::Value {
        stats["metrics"]
            .as_array()
            .expect("metrics")
            .iter()
            .find(|m| m["metric"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} in {stats}"))
    };

    let before = stats(&[]);
    let dex = metric(&before, "dex_score");
    assert_eq!(
        (&dex["tenant"], &dex["layer"], &dex["raw_rows"], &dex["retired_rows"]),
        (&"acme".into(), &"technical".into(), &10.into(), &0.into()),
        "{dex}"
    );
    assert_eq!(
        (&dex["retention_days"], &dex["retention_rule"]),
        (&3.into(), &"layer".into())
    );
    let rating = metric(&before, "happiness_rating");
    assert_eq!(
        rating["retention_days"],
        serde_json::Value::Null,
        "no rule: kept forever"
    );
    assert!(before["disk_bytes"].as_u64().expect("disk_bytes") > 0);
    let other = stats(&["--tenant", "beta"]);
    assert_eq!(other["metrics"], serde_json::json!([]), "another tenant has nothing");

    // A dry run names the cutoff and drops nothing.
    let dry: serde_json::Value =
        serde_json::from_slice(&run(&["store", "retire", "--data-dir", &data_arg, "--dry-run", "--json"]).stdout)
            .expect("JSON");
    assert_eq!(dry["metrics"].as_array().map(Vec::len), Some(1), "{dry}");
    assert!(
        dry["metrics"][0].get("dropped").is_none(),
        "a dry run counts nothing: {dry}"
    );
    assert_eq!(metric(&stats(&[]), "dex_score")["raw_rows"], 10);

    // Three days kept: the days 4 to 9 days ago go (the day exactly three
    // days ago is not over three days old yet): 6, unless midnight UTC
    // passed since the rows were stored, so the expectation follows the
    // cutoff the command used.
    let retired: serde_json::Value =
        serde_json::from_slice(&run(&["store", "retire", "--data-dir", &data_arg, "--json"]).stdout).expect("JSON");
    assert_eq!(retired["metrics"][0]["metric"], "dex_score", "{retired}");
    let cutoff = retired["metrics"][0]["cutoff"].as_i64().expect("cutoff");
    let day_of = xla_host::store::day_of;
    let gone = times.iter().filter(|t| day_of(**t) < day_of(cutoff)).count() as u64;
    assert!((6..=7).contains(&gone), "{gone}");
    assert_eq!(retired["metrics"][0]["dropped"], gone, "{retired}");
    let after = stats(&[]);
    let dex = metric(&after, "dex_score");
    assert_eq!(
        (&dex["raw_rows"], &dex["retired_rows"]),
        (&(10 - gone).into(), &gone.into()),
        "{dex}"
    );
    assert!(dex["retired_before"].is_i64(), "{dex}");
    assert_eq!(metric(&after, "happiness_rating")["raw_rows"], 10);
    assert_eq!(
        dex["rollup_cells"],
        metric(&before, "dex_score")["rollup_cells"],
        "rollups stay"
    );
    let again: serde_json::Value =
        serde_json::from_slice(&run(&["store", "retire", "--data-dir", &data_arg, "--json"]).stdout).expect("JSON");
    assert_eq!(again["metrics"][0]["dropped"], 0, "{again}");

    // The table people read: a line per metric, a total per layer.
    let table = String::from_utf8_lossy(&run(&["store", "stats", "--data-dir", &data_arg]).stdout).into_owned();
    assert!(
        table.contains("technical total") && table.contains("retired before"),
        "{table}"
    );

    // A mistyped data directory is refused, not made into a new store.
    let typo = dir.path().join("dta");
    let typo_arg = typo.display().to_string();
    let refused = xla_host(&["store", "stats", "--data-dir", &typo_arg], &[]);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("--data-dir"), "{}", stderr(&refused));
    assert!(!typo.exists(), "nothing was created");

    // Without a policy, retire says what to set.
    let bare = xla_host(&["store", "retire", "--data-dir", &data_arg], &[]);
    assert!(!bare.status.success());
    assert!(stderr(&bare).contains("[store.retention]"), "{}", stderr(&bare));
}
