//! API load benchmark: the HTTP API on loopback over one month of a
//! 275,000-employee organisation (the scoring benchmark's data,
//! `month::load`), driven by oha at a fixed rate with latency correction
//! (no coordinated omission): p50 and p99 at 2,000 requests/s for a cached
//! XLA report, a series and a breakdown, then the highest rate each
//! sustains with p99 under 10 ms. `--postgres` then loads the same month
//! into PostgreSQL (a throwaway cluster, untimed), serves and measures it
//! the same way, and checks its first answers equal sled's.
//!
//! Run: `cargo xtask build-plugins && cargo bench -p xla-tests --bench api -- [scale] [--postgres]`
//! with oha on the PATH (`cargo install oha --locked`) or named by `OHA`.
//! The server and oha share the machine's cores, as on a one-box install.
//! Results in BENCHMARKS.md.

use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use xla_host::store::Store;

mod month;
mod serving;

/// The rate the issue asks about, requests per second.
const RATE: u32 = 2_000;
/// The p99 a sustained rate must stay under, milliseconds.
const P99_BUDGET_MS: f64 = 10.0;
/// How long each fixed-rate run lasts.
const RUN_SECONDS: u32 = 10;
/// Connections oha keeps open.
const CONNECTIONS: u32 = 50;

/// One oha run's outcome.
struct Run {
    rate: u32,
    achieved: f64,
    p50_ms: f64,
    p99_ms: f64,
    non_200: u64,
}

impl Run {
    /// Held: p99 under the budget, every answer a 200, and the rate reached.
    fn held(&self) -> bool {
        self.p99_ms < P99_BUDGET_MS && self.non_200 == 0 && self.achieved >= 0.95 * f64::from(self.rate)
    }
}

fn oha() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("OHA") {
        return Ok(PathBuf::from(path));
    }
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("oha"))
        .find(|path| path.is_file());
    found.context("oha is not on the PATH: `cargo install oha --locked`, or name it with OHA=/path/to/oha")
}

/// `oha` at `rate` requests/s for `seconds` against `url`.
fn load(oha: &Path, url: &str, token: &str, rate: u32, seconds: u32) -> Result<Run> {
    let output = std::process::Command::new(oha)
        .args(["--no-tui", "--output-format", "json", "--latency-correction"])
        .args([
            "-z",
            &format!("{seconds}s"),
            "-q",
            &rate.to_string(),
            "-c",
            &CONNECTIONS.to_string(),
        ])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .arg(url)
        .output()
        .with_context(|| format!("running {}", oha.display()))?;
    if !output.status.success() {
        bail!("oha failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let report: Value = serde_json::from_slice(&output.stdout).context("oha's JSON report")?;
    let seconds_ms = |v: &Value| v.as_f64().map(|s| s * 1000.0).unwrap_or(f64::NAN);
    let codes = report["statusCodeDistribution"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut non_200: u64 = codes
        .iter()
        .filter(|(code, _)| code.as_str() != "200")
        .filter_map(|(_, n)| n.as_u64())
        .sum();
    // Requests still in flight when the run's time is up are cut by oha
    // ("aborted due to deadline"): not the server's failures.
    for (error, n) in report["errorDistribution"].as_object().cloned().unwrap_or_default() {
        if !error.contains("deadline") {
            eprintln!("    oha: {n} x {error}");
            non_200 += n.as_u64().unwrap_or(0);
        }
    }
    Ok(Run {
        rate,
        achieved: report["summary"]["requestsPerSec"].as_f64().unwrap_or(0.0),
        p50_ms: seconds_ms(&report["latencyPercentiles"]["p50"]),
        p99_ms: seconds_ms(&report["latencyPercentiles"]["p99"]),
        non_200,
    })
}

fn print(name: &str, run: &Run) {
    println!(
        "  {name:<10} {:>6} req/s asked {:>8.0} done  p50 {:>6.2} ms  p99 {:>6.2} ms{}",
        run.rate,
        run.achieved,
        run.p50_ms,
        run.p99_ms,
        if run.non_200 > 0 {
            format!("  ({} not 200)", run.non_200)
        } else {
            String::new()
        }
    );
}

/// Serves the API over `store` on 127.0.0.1:0; returns its base URL and a read token.
async fn serve(store: Arc<dyn Store>) -> Result<(String, String)> {
    let (state, token) = serving::state(store).await?;
    Ok((serving::on_loopback(xla_host::api::app(state)).await?, token))
}

/// The three URLs measured, by name, under `base`.
fn routes(base: &str) -> [(&'static str, String); 3] {
    let month = "from=2026-10-01T00:00:00Z&to=2026-11-01T00:00:00Z";
    let tenant = format!("{base}/v1/tenants/{}", month::TENANT);
    [
        (
            "report",
            format!("{tenant}/xlas/incident-happiness/report?period=2026-10"),
        ),
        (
            "series",
            format!("{tenant}/metrics/resolution_hours/series?{month}&aggregation=p90&bucket=day&group_by=service"),
        ),
        (
            "breakdown",
            format!("{tenant}/metrics/resolution_hours/breakdown?{month}&dimension=assignment_group&top=12"),
        ),
    ]
}

/// The first (computed) answer of each route, timed; the body of each, to
/// compare backends.
async fn first_answers(routes: &[(&'static str, String)], token: &str) -> Result<Vec<Value>> {
    println!("first answers (the report's is computed, later ones come from the cache):");
    let client = reqwest::Client::new();
    let mut bodies = Vec::new();
    for (name, url) in routes {
        let started = Instant::now();
        let response = client.get(url).bearer_auth(token).send().await?;
        let status = response.status();
        let cache = response
            .headers()
            .get("x-xla-cache")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_string();
        let body = response.bytes().await?;
        if !status.is_success() {
            bail!("{name}: {status}: {}", String::from_utf8_lossy(&body));
        }
        println!(
            "  {name:<10} {:>8.1} ms, {} bytes, cache {cache}",
            started.elapsed().as_secs_f64() * 1000.0,
            body.len()
        );
        bodies.push(serde_json::from_slice(&body).with_context(|| format!("{name}: the answer is not JSON"))?);
    }
    Ok(bodies)
}

/// Each route at [`RATE`], then the highest rate each holds.
fn under_load(oha: &Path, routes: &[(&'static str, String)], token: &str) -> Result<()> {
    // oha runs from this thread while the runtime's workers serve.
    println!("at {RATE} requests/s for {RUN_SECONDS} s, {CONNECTIONS} connections:");
    for (name, url) in routes {
        print(name, &load(oha, url, token, RATE, RUN_SECONDS)?);
    }
    println!("highest rate held with p99 < {P99_BUDGET_MS} ms (steps of 5 s):");
    for (name, url) in routes {
        let mut held = None;
        for rate in [
            2_000, 4_000, 6_000, 8_000, 10_000, 12_000, 16_000, 20_000, 24_000, 32_000,
        ] {
            let run = load(oha, url, token, rate, 5)?;
            print(name, &run);
            if !run.held() {
                break;
            }
            held = Some(rate);
        }
        match held {
            Some(rate) => println!("  {name}: held {rate} requests/s"),
            None => println!("  {name}: did not hold {RATE} requests/s"),
        }
    }
    Ok(())
}

/// Serves `store` and measures it; the first answers' bodies.
fn measure(runtime: &tokio::runtime::Runtime, oha: &Path, store: Arc<dyn Store>) -> Result<Vec<Value>> {
    let (base, token) = runtime.block_on(serve(store))?;
    let routes = routes(&base);
    let bodies = runtime.block_on(first_answers(&routes, &token))?;
    under_load(oha, &routes, &token)?;
    Ok(bodies)
}

/// Whether two answers are the same, numbers within a relative 1e-9
/// (the backends sum in different orders).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(1.0),
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        (x, y) => x == y,
    }
}

fn main() -> Result<()> {
    let scale = month::scale();
    let postgres = std::env::args().any(|a| a == "--postgres");
    let oha = oha()?;
    let runtime = tokio::runtime::Runtime::new()?;
    let dir = tempfile::tempdir()?;
    println!("sled:");
    let store = runtime.block_on(month::store(dir.path(), scale))?;
    let sled = measure(&runtime, &oha, store)?;
    if postgres {
        let store = runtime.block_on(month::postgres_store(scale))?;
        let answers = measure(&runtime, &oha, store)?;
        for (((name, _), want), got) in routes("").iter().zip(sled).zip(answers) {
            anyhow::ensure!(same(&want, &got), "{name}: sled answered {want}, postgres {got}");
        }
        println!("postgres: the same answers as sled");
    }
    drop(runtime);
    Ok(())
}
