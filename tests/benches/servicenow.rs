//! ServiceNow ingest, end to end: incidents from the simulator's Table API,
//! through the `servicenow` Wasm connector in the sandbox, into the sled
//! store (every batch durable, with its cursor); and, in the same run, the
//! same simulator read by pysnc, ServiceNow's own Python client, as the
//! peer. That pysnc reads the simulator at all is also a check of its
//! fidelity.
//!
//! Run: `cargo xtask build-plugins && cargo bench -p xla-tests --bench servicenow -- [tickets]`
//! (default 250,000 tickets, about 200,000 incidents). Needs `python3 -m pip install pysnc`;
//! `--no-peer` skips pysnc (for profiling the Wasm path alone).
//! Results in BENCHMARKS.md.

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

/// The fields the connector asks for (read from its first request): pysnc
/// is asked for the same.
const FIELDS: &str = "sys_id,sys_updated_on,number,state,opened_at,resolved_at,reassignment_count,reopen_count,category,priority,contact_type,business_service.name,assignment_group.name";
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
    let (stored, observations, wasm) = wasm_to_store(&base, &options).await?;
    if stored != resolved {
        bail!("the store holds {stored} resolved incidents of {resolved}");
    }
    println!(
        "wasm connector -> sled: {incidents} incidents read, {observations} observations stored, in {wasm:.2} s = {:.0} records/s",
        incidents as f64 / wasm
    );
    if std::env::args().any(|a| a == "--no-peer") {
        return Ok(());
    }

    let output = tokio::process::Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/pysnc_read.py"))
        .args([&base, &options.user, &options.password, FIELDS, &PAGE.to_string()])
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
    let (count, seconds): (usize, f64) = (count.parse()?, seconds.parse()?);
    if count != incidents {
        bail!("pysnc read {count} incidents of {incidents}");
    }
    println!(
        "pysnc (read only, no store): {count} incidents in {seconds:.2} s = {:.0} records/s",
        count as f64 / seconds
    );
    println!("ratio: the wasm connector into sled is {:.1}x pysnc", seconds / wasm);
    Ok(())
}

/// One full sync of the incident table into a fresh store: (resolved
/// incidents stored, observations, seconds).
async fn wasm_to_store(base: &str, options: &ServiceNowOptions) -> Result<(usize, usize, f64)> {
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
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn Store> = Arc::new(SledStore::open(&dir.path().join("data"))?);
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
