//! ServiceNow ingest, end to end, in one run against pysnc (ServiceNow's
//! own Python client) on the same simulator. That pysnc reads the simulator
//! at all is also a check of its fidelity.
//!
//! 1. **Speed:** incidents from the simulator's Table API (in this process),
//!    through the `servicenow` Wasm connector in the sandbox, into the sled
//!    store (every batch durable, with its cursor); then pysnc reads the
//!    same table from the same simulator.
//! 2. **Cost:** the simulator in a process of its own (`xla-host simulate`),
//!    `xla-host sync` run as a child process into a fresh data directory,
//!    and its CPU time (user + system, from this process's waited-for
//!    children: `cutime` + `cstime` of `/proc/self/stat`) per incident
//!    stored; then pysnc, also a child, reading the same incidents from the
//!    same simulator, its CPU time per incident read.
//!
//! Run: `cargo xtask build-plugins && cargo bench -p xla-tests --bench servicenow -- [tickets]`
//! (default 250,000 tickets, about 200,000 incidents). Needs `python3 -m pip install pysnc`;
//! `--no-peer` skips pysnc (for profiling the Wasm path alone), `--no-cost`
//! skips the second part, `--postgres` also syncs into PostgreSQL (a
//! throwaway cluster) after sled, in the same run. Linux only (`/proc`). Results in BENCHMARKS.md.

use anyhow::{Context, Result, bail};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use xla_host::plugins::{Pins, PluginPre, load_plugin};
use xla_host::runtime::outbound::{Credential, CredentialKind, Origin, OutboundPolicy, Secret};
use xla_host::runtime::{Limits, Runtime, RuntimeOptions};
use xla_host::sim::org::{self, OrgSpec};
use xla_host::sim::servicenow::{self, ServiceNowOptions};
use xla_host::store::Store;
use xla_host::store_sled::SledStore;
use xla_host::sync::{self, Quiet, SyncOptions, SyncTarget};

/// The fields the connector asks for (`Table::Incident.fields()` in
/// `plugins/servicenow/src/config.rs`): pysnc is asked for the same.
const FIELDS: &str = "sys_id,sys_updated_on,number,state,opened_at,resolved_at,reassignment_count,reopen_count,category,priority,contact_type,business_service,business_service.name,assignment_group,assignment_group.name";
const PAGE: usize = 10_000;

#[tokio::main]
async fn main() -> Result<()> {
    let tickets: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(250_000);
    let org = org::generate(&OrgSpec {
        seed: 1,
        tickets,
        start: 1_788_220_800_000,
        days: 90,
    });
    let incidents = org.incidents.len();
    let resolved = org
        .incidents
        .iter()
        .filter(|i| matches!(i.state, 6 | 7) && i.resolved_at.is_some())
        .count();
    let options = ServiceNowOptions {
        rate_limit: None,
        ..ServiceNowOptions::default()
    };
    let sim = servicenow::serve(Arc::new(org), options.clone(), "127.0.0.1:0".parse()?).await?;
    let base = sim.base_url();
    println!("simulator: {incidents} incidents at {base}");

    // The sync reads the whole table (open incidents too; only resolved
    // ones become observations): check it stored every resolved one.
    let dir = tempfile::tempdir()?;
    let sled: Arc<dyn Store> = Arc::new(SledStore::open(&dir.path().join("data"))?);
    let (stored, observations, wasm) = wasm_to_store(&base, &options, sled).await?;
    if stored != resolved {
        bail!("the store holds {stored} resolved incidents of {resolved}");
    }
    println!(
        "wasm connector -> sled: {incidents} incidents read, {observations} observations stored, in {wasm:.2} s = {:.0} records/s",
        incidents as f64 / wasm
    );
    if std::env::args().any(|a| a == "--postgres") {
        let url = xla_store_pg::testing::shared().create_database().await?;
        let postgres: Arc<dyn Store> = Arc::new(xla_store_pg::PgStore::connect(&url).await?);
        let (stored, observations, seconds) = wasm_to_store(&base, &options, postgres).await?;
        if stored != resolved {
            bail!("PostgreSQL holds {stored} resolved incidents of {resolved}");
        }
        println!(
            "wasm connector -> postgres: {incidents} incidents read, {observations} observations stored, in {seconds:.2} s = {:.0} records/s",
            incidents as f64 / seconds
        );
    }
    let peer = !std::env::args().any(|a| a == "--no-peer");
    if peer {
        let (count, seconds) = pysnc(&base, &options).await?;
        if count != incidents {
            bail!("pysnc read {count} incidents of {incidents}");
        }
        println!(
            "pysnc (read only, no store): {count} incidents in {seconds:.2} s = {:.0} records/s",
            count as f64 / seconds
        );
        println!("ratio: the wasm connector into sled is {:.1}x pysnc", seconds / wasm);
    }
    drop(sim);
    if std::env::args().any(|a| a == "--no-cost") {
        return Ok(());
    }
    cost(tickets, peer).await
}

/// pysnc reading every incident from `base`: (incidents read, seconds).
async fn pysnc(base: &str, options: &ServiceNowOptions) -> Result<(usize, f64)> {
    let output = tokio::process::Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/pysnc_read.py"))
        .args([base, &options.user, &options.password, FIELDS, &PAGE.to_string()])
        .output()
        .await
        .context("running python3")?;
    if !output.status.success() {
        bail!(
            "pysnc failed (is it installed? python3 -m pip install pysnc): {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut words = text.split_whitespace();
    let (Some(count), Some(seconds)) = (words.next(), words.next()) else {
        bail!("unexpected pysnc output: {text}");
    };
    Ok((count.parse()?, seconds.parse()?))
}

/// Part 2: CPU time per incident of `xla-host sync` and of pysnc, with the
/// simulator in a process of its own.
async fn cost(tickets: usize, peer: bool) -> Result<()> {
    let exe = env!("CARGO_BIN_EXE_xla-host-e2e");
    // Asked before measuring: `getconf` is a child too.
    let hz = clock_ticks();
    let mut simulate = tokio::process::Command::new(exe)
        .args(["simulate", "--seed", "1", "--days", "90", "--listen", "127.0.0.1:0"])
        .args(["--tickets", &tickets.to_string()])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting xla-host simulate")?;
    let (base, incidents) = simulated(&mut simulate).await?;
    println!(
        "\ncost: `xla-host simulate` (pid {}) serves {incidents} incidents at {base}",
        simulate.id().unwrap_or(0)
    );
    let options = ServiceNowOptions::default();
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("host.toml");
    std::fs::write(&config, host_config(&base, &options))?;
    // A first pull into another data directory fills the compile cache, as
    // on any host that has synced before.
    sync_child(exe, &config, &dir.path().join("warm"), &options, Some(1)).await?;
    let data = dir.path().join("data");
    let cpu = children_cpu(hz)?;
    let started = Instant::now();
    let run = sync_child(exe, &config, &data, &options, None).await?;
    let (sync_cpu, sync_wall) = (children_cpu(hz)? - cpu, started.elapsed().as_secs_f64());
    let store = SledStore::open(&data.join("sled"))?;
    let stored = store
        .observations("bench", "ticket_resolved", i64::MIN, i64::MAX)
        .await?
        .len();
    drop(store);
    let per_stored = sync_cpu / stored as f64 * 1e6;
    println!("xla-host sync: {}", run.trim());
    println!(
        "xla-host sync: {stored} incidents stored ({incidents} read), {sync_wall:.2} s wall, {sync_cpu:.2} s CPU (user+system) = {per_stored:.2} us CPU per incident stored"
    );
    if peer {
        let cpu = children_cpu(hz)?;
        let (count, seconds) = pysnc(&base, &options).await?;
        let pysnc_cpu = children_cpu(hz)? - cpu;
        if count != incidents {
            bail!("pysnc read {count} incidents of {incidents}");
        }
        let per_read = pysnc_cpu / count as f64 * 1e6;
        println!(
            "pysnc: {count} incidents read in {seconds:.2} s, {pysnc_cpu:.2} s CPU (user+system) = {per_read:.2} us CPU per incident read"
        );
        println!(
            "cost ratio: xla-host sync spends {:.3} of pysnc's CPU per incident (1/{:.1})",
            per_stored / per_read,
            per_read / per_stored
        );
    }
    simulate.kill().await.context("stopping xla-host simulate")?;
    Ok(())
}

/// Reads `xla-host simulate`'s banner: the ServiceNow base URL and how many
/// incidents it serves.
async fn simulated(simulate: &mut tokio::process::Child) -> Result<(String, usize)> {
    use tokio::io::AsyncBufReadExt;
    let stdout = simulate.stdout.take().context("simulate's stdout")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let (mut base, mut incidents) = (None, None);
    while let Some(line) = lines.next_line().await? {
        if let Some(rest) = line.strip_prefix("Simulated organisation") {
            incidents = rest.split(": ").nth(1).and_then(|n| n.split(' ').next()?.parse().ok());
        }
        if let Some(url) = line.strip_prefix("ServiceNow") {
            base = Some(url.trim().to_string());
        }
        if line.starts_with("Ctrl-C") {
            break;
        }
    }
    match (base, incidents) {
        (Some(base), Some(incidents)) => Ok((base, incidents)),
        _ => bail!("xla-host simulate did not print its ServiceNow URL and incident count"),
    }
}

/// A host config with one `servicenow` instance over `base`'s incidents.
fn host_config(base: &str, options: &ServiceNowOptions) -> String {
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    format!(
        r#"[plugins]
dir = "{plugins}"

[runtime]
cache_dir = "{cache}"

[[connectors]]
name = "servicenow"
plugin = "servicenow"
tenant = "bench"
grants = ["{base}"]
config = {{ instance_url = "{base}", tables = ["incident"], page_size = {PAGE} }}

[[connectors.credentials]]
origin = "{base}"
kind = "basic"
username = "{user}"
password = {{ env = "SN_PASSWORD" }}
"#,
        plugins = target.join("plugins").display(),
        cache = target.join("test-cache").display(),
        user = options.user,
    )
}

/// Runs `xla-host sync servicenow` to the end (or `max_pulls`) and returns
/// its summary line.
async fn sync_child(
    exe: &str,
    config: &Path,
    data: &Path,
    options: &ServiceNowOptions,
    max_pulls: Option<u64>,
) -> Result<String> {
    let mut command = tokio::process::Command::new(exe);
    command
        .arg("--host-config")
        .arg(config)
        .args(["sync", "servicenow", "--data-dir"])
        .arg(data.join("sled"))
        .env("SN_PASSWORD", &options.password);
    if let Some(max) = max_pulls {
        command.args(["--max-pulls", &max.to_string()]);
    }
    let output = command.output().await.context("running xla-host sync")?;
    if !output.status.success() {
        bail!("xla-host sync failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// CPU seconds (user + system) of this process's children that have been
/// waited for: `cutime` + `cstime` of `/proc/self/stat`, in clock ticks.
fn children_cpu(hz: f64) -> Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").context("reading /proc/self/stat (Linux only)")?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // cutime and cstime are fields 16 and 17; `fields` starts at field 3.
    let ticks = |n: usize| -> Result<f64> {
        Ok(fields
            .get(n - 3)
            .context("/proc/self/stat has too few fields")?
            .parse::<f64>()?)
    };
    Ok((ticks(16)? + ticks(17)?) / hz)
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux when unknown).
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}

/// One full sync of the incident table into a fresh store: (resolved
/// incidents stored, observations, seconds).
async fn wasm_to_store(base: &str, options: &ServiceNowOptions, store: Arc<dyn Store>) -> Result<(usize, usize, f64)> {
    let target_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    let runtime = Runtime::new(RuntimeOptions {
        cache_dir: Some(target_dir.join("test-cache")),
        ..RuntimeOptions::default()
    })?;
    let wasm = target_dir.join("plugins/servicenow/servicenow.wasm");
    let plugin = load_plugin(&runtime, &wasm, &Pins::default())
        .with_context(|| format!("loading {} (run `cargo xtask build-plugins`)", wasm.display()))?;
    let PluginPre::Connector(pre) = &plugin.pre else {
        bail!("servicenow is not a connector");
    };
    let credential = Credential::new(
        Origin::parse(base)?,
        CredentialKind::Basic {
            username: options.user.clone(),
            password: Secret::new(&options.password),
        },
    );
    let limits = Limits {
        deadline_ms: 120_000,
        ..Limits::default()
    };
    let policy = OutboundPolicy::new(&plugin.manifest.hosts, &[base.to_string()], vec![credential], &limits)?;
    let mut session = pre.session(limits, Some(Arc::new(policy)));
    let target = SyncTarget {
        instance: "servicenow".into(),
        tenant: "bench".into(),
        config: format!(r#"{{"instance_url":"{base}","tables":["incident"],"page_size":{PAGE}}}"#),
        plugin: "servicenow".into(),
        version: plugin.manifest.version.clone(),
        sha256: plugin.manifest.sha256.clone(),
    };
    let started = Instant::now();
    let record = sync::run(&mut session, &store, &target, &SyncOptions::default(), &mut Quiet).await?;
    let seconds = started.elapsed().as_secs_f64();
    let observations = (record.inserted + record.replaced + record.unchanged) as usize;
    let resolved = store
        .observations("bench", "ticket_resolved", i64::MIN, i64::MAX)
        .await?
        .len();
    Ok((resolved, observations, seconds))
}
