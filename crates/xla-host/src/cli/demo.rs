//! `xla-host demo`: the product's main job on a simulated organisation.
//!
//! Loads every plugin from the plugin directory and shows what each
//! declares; starts the source simulators on loopback with a seeded
//! organisation; shows the sandbox refusing a connector without a grant;
//! syncs each connector through the sandbox into a fresh data directory
//! (credentials held by the host, progress bars, each batch committed with
//! its cursor); prints what arrived per source and metric; and scores it
//! with the `mean` plugin from the store's rollups.

use super::options;
use super::sync::{Bar, summary};
use crate::config::HostConfig;
use crate::plugins::{LoadedPlugin, PluginPre, discover};
use crate::runtime::ConnectorInfo;
use crate::runtime::outbound::{Credential, CredentialKind, Origin, OutboundPolicy, Secret};
use crate::sim::happysignals::{self, HappySignalsOptions, HappySignalsSim};
use crate::sim::nexthink::{self, NexthinkOptions, NexthinkSim};
use crate::sim::org::{self, OrgSpec};
use crate::sim::servicenow::{self, ServiceNowOptions, ServiceNowSim};
use crate::sim::telemetry::{self, TelemetrySpec};
use crate::store::{Aggregation, Bucket, SeriesQuery, Store};
use crate::store_sled::SledStore;
use crate::sync::{self, SyncOptions, SyncTarget};
use anyhow::{Context, Result, bail};
use clap::Args;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use xla_types::now_ms;

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Seed of the simulated organisation: the same seed gives the same data.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Tickets (incidents and requests) the organisation raises in the window.
    #[arg(long, default_value_t = 5_000)]
    tickets: usize,
    /// Keep the data in this directory (default: a fresh temporary one),
    /// with a host config beside it (`DIR/xla-host.toml`: the demo's
    /// tenant, XLAs and connector instances) for `token create` and `serve`.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// End by serving the API and the dashboard on the demo's data,
    /// printing a read token, the dashboard's URL and example API calls,
    /// until Ctrl-C.
    #[arg(long)]
    serve: bool,
    /// Where `--serve` listens.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8470")]
    listen: std::net::SocketAddr,
}

/// The demo organisation's tenant.
const TENANT: &str = "demo";
/// 2026-09-01T00:00:00Z: the simulated window starts here.
const WINDOW_START: i64 = 1_788_220_800_000;
/// Days the simulated window covers.
const WINDOW_DAYS: u32 = 61;

/// One simulated source and the connector instance that reads it.
struct Source {
    /// Instance name.
    instance: &'static str,
    /// Plugin name.
    plugin: &'static str,
    /// What the source is, for people.
    what: &'static str,
    /// The simulator's origin.
    origin: String,
    /// The plugin config.
    config: serde_json::Value,
    /// The credential the host holds for it.
    credential: CredentialKind,
}

pub(crate) async fn run(config: &HostConfig, args: DemoArgs) -> Result<ExitCode> {
    let dir = &config.plugins.dir;
    if !dir.is_dir() {
        bail!(
            "plugin directory {} does not exist; build the plugins first with `cargo xtask build-plugins`",
            dir.display()
        );
    }
    let runtime = options::runtime(config)?;
    println!("XLA Host demo: plugins in {}\n", dir.display());
    let found = discover(&runtime, dir, &config.plugins.pins).with_context(|| format!("reading {}", dir.display()))?;
    let mut loaded = BTreeMap::new();
    for discovered in found {
        match discovered.result {
            Ok(plugin) => {
                print_plugin(&plugin, config).await?;
                loaded.insert(plugin.manifest.name.clone(), plugin);
            }
            Err(e) => println!("  refused    {}: {e}\n", discovered.path.display()),
        }
    }

    let spec = OrgSpec {
        seed: args.seed,
        tickets: args.tickets,
        start: WINDOW_START,
        days: WINDOW_DAYS,
    };
    let org = Arc::new(org::generate(&spec));
    println!(
        "A simulated organisation (seed {}): {} employees, {} incidents, {} requests, {} SLAs, {} survey responses over {WINDOW_DAYS} days.",
        args.seed,
        org.employees.len(),
        org.incidents.len(),
        org.requests.len(),
        org.slas.len(),
        org.responses.len()
    );
    let servicenow = servicenow::serve(org.clone(), ServiceNowOptions::default(), "127.0.0.1:0".parse()?)
        .await
        .context("starting the ServiceNow simulator")?;
    let happysignals = happysignals::serve(org.clone(), HappySignalsOptions::default(), "127.0.0.1:0".parse()?)
        .await
        .context("starting the HappySignals simulator")?;
    let telemetry = Arc::new(telemetry::generate(
        &org,
        &TelemetrySpec {
            seed: args.seed,
            days: WINDOW_DAYS,
            start: WINDOW_START,
        },
    ));
    let nexthink = nexthink::serve(telemetry, NexthinkOptions::default(), "127.0.0.1:0".parse()?)
        .await
        .context("starting the Nexthink simulator")?;
    let sources = vec![
        servicenow_source(&servicenow),
        happysignals_source(&happysignals),
        nexthink_source(&nexthink),
    ];
    for source in &sources {
        println!("  {:<12} {} at {}", source.instance, source.what, source.origin);
    }

    let temporary = tempfile::tempdir().context("creating a data directory")?;
    let data_dir = args.data_dir.clone().unwrap_or_else(|| temporary.path().join("data"));
    let store: Arc<dyn Store> =
        Arc::new(SledStore::open(&data_dir).with_context(|| format!("opening {}", data_dir.display()))?);
    println!("  data directory {}\n", data_dir.display());

    let mut described = Vec::new();
    for (i, source) in sources.iter().enumerate() {
        let connector = loaded
            .get(source.plugin)
            .with_context(|| format!("the demo needs the {} plugin in {}", source.plugin, dir.display()))?;
        if i == 0 {
            show_refusal(connector, source, config).await?;
        }
        described.push((source, sync_source(connector, source, &store, config).await?));
    }
    println!();
    print_arrivals(&*store, &described).await?;
    drop((servicenow, happysignals, nexthink));
    report(config, store.clone()).await?;
    let host_config = write_host_config(config, &data_dir, &sources)?;
    if args.data_dir.is_some() {
        println!(
            "\nThe data stays in {}; its host config is {}:\n  xla-host --host-config {} token create --tenant {TENANT}\n  xla-host --host-config {} serve --listen {}",
            data_dir.display(),
            host_config.display(),
            host_config.display(),
            host_config.display(),
            args.listen
        );
    }
    if args.serve {
        serve(&host_config, store, args.listen).await?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `DIR/xla-host.toml`: the plugins, this store, the demo's
/// connector instances (no schedule and no credentials: the simulators
/// stop with the demo) and its XLAs, so `serve` answers what the demo printed.
fn write_host_config(config: &HostConfig, data_dir: &std::path::Path, sources: &[Source]) -> Result<PathBuf> {
    let absolute = |p: &std::path::Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut root = toml::Table::new();
    let mut plugins = toml::Table::new();
    plugins.insert("dir".into(), absolute(&config.plugins.dir).display().to_string().into());
    root.insert("plugins".into(), plugins.into());
    let mut store = toml::Table::new();
    store.insert("dir".into(), absolute(data_dir).display().to_string().into());
    root.insert("store".into(), store.into());
    let connectors: Vec<toml::Value> = sources
        .iter()
        .map(|s| {
            let mut c = toml::Table::new();
            c.insert("name".into(), s.instance.into());
            c.insert("plugin".into(), s.plugin.into());
            c.insert("tenant".into(), TENANT.into());
            c.insert("grants".into(), toml::Value::Array(vec![s.origin.clone().into()]));
            let plugin_config: toml::Table = serde_json::from_value(s.config.clone()).unwrap_or_default();
            c.insert("config".into(), plugin_config.into());
            c.into()
        })
        .collect();
    root.insert("connectors".into(), connectors.into());
    let xlas = toml::Value::try_from(crate::score::standard_xlas(TENANT)).context("writing the XLAs as TOML")?;
    root.insert("xla".into(), xlas);
    let text = format!(
        "# Written by `xla-host demo`: the demo's data, tenant `{TENANT}`, its XLAs and connector instances.\n{}",
        toml::to_string(&root).context("writing the host config")?
    );
    let path = data_dir.join("xla-host.toml");
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    HostConfig::load(&path).with_context(|| format!("{} does not load back", path.display()))?;
    Ok(path)
}

/// Serves the API on the demo's data with the config just written, until Ctrl-C.
async fn serve(host_config: &std::path::Path, store: Arc<dyn Store>, listen: std::net::SocketAddr) -> Result<()> {
    let config = HostConfig::load(host_config)?;
    let runtime = options::runtime(&config)?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let server = super::api::start(&config, &runtime, store.clone(), None, listen, shutdown.clone()).await?;
    let request = crate::api::auth::TokenRequest {
        name: "demo".into(),
        tenant: Some(TENANT.into()),
        scope: crate::store::Scope::Read,
        expires: Some(now_ms() + 24 * 3_600_000),
    };
    let token = crate::api::auth::issue(&*store, request, now_ms()).await?.token;
    let base = format!("http://{}", server.addr);
    println!("\nThe API serves the demo's data at {base}/v1 (OpenAPI: {base}/v1/openapi.json); Ctrl-C stops.");
    println!("A read token for tenant `{TENANT}`, valid 24 h: {token}");
    // The SLA-beside-XLA link carries the targets the report above used.
    let options = scorecard();
    println!(
        "The dashboard: {base}/dashboard/sign-in?next=/dashboard/tenants/{TENANT}/scorecard%3Fperiod%3D{REPORT_PERIOD} (sign in with the token);\n  SLA beside XLA at the report's targets: {base}/dashboard/tenants/{TENANT}/sla-beside-xla?period={REPORT_PERIOD}&sla_target={}&happiness_target={}\n",
        options.sla_target, options.happiness_target
    );
    for path in [
        format!("/v1/tenants/{TENANT}/xlas"),
        format!("/v1/tenants/{TENANT}/xlas/incident-happiness/report?period={REPORT_PERIOD}"),
        format!("/v1/tenants/{TENANT}/scorecard?period={REPORT_PERIOD}&happiness_target=30"),
        format!(
            "/v1/tenants/{TENANT}/metrics/lost_time_minutes/breakdown?dimension=category&from=2026-10-01T00:00:00Z&to=2026-11-01T00:00:00Z"
        ),
    ] {
        println!("  curl -H 'Authorization: Bearer {token}' '{base}{path}'");
    }
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    shutdown.cancel();
    server.stopped(std::time::Duration::from_secs(10)).await;
    Ok(())
}

fn servicenow_source(sim: &ServiceNowSim) -> Source {
    let options = sim.options();
    let origin = sim.base_url();
    Source {
        instance: "servicenow",
        plugin: "servicenow",
        what: "ServiceNow Table API (incidents, requests, SLAs; OAuth)",
        config: serde_json::json!({ "instance_url": origin, "page_size": 1000 }),
        credential: CredentialKind::OAuth2Password {
            token_url: format!("{origin}/oauth_token.do"),
            client_id: options.client_id,
            client_secret: Secret::new(options.client_secret),
            username: options.user,
            password: Secret::new(options.password),
        },
        origin,
    }
}

fn happysignals_source(sim: &HappySignalsSim) -> Source {
    let origin = sim.base_url();
    Source {
        instance: "happysignals",
        plugin: "happysignals",
        what: "HappySignals responses API (ratings, lost time, factors; bearer token)",
        config: serde_json::json!({ "base_url": origin, "page_size": 1000 }),
        credential: CredentialKind::Bearer {
            token: Secret::new(sim.options().token),
        },
        origin,
    }
}

fn nexthink_source(sim: &NexthinkSim) -> Source {
    let options = sim.options();
    let origin = sim.base_url();
    let day = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms).map_or_else(String::new, |t| t.format("%Y-%m-%d").to_string())
    };
    Source {
        instance: "nexthink",
        plugin: "nexthink",
        what: "Nexthink NQL export (daily device telemetry and DEX; OAuth client credentials)",
        config: serde_json::json!({
            "instance_url": origin,
            "since": day(WINDOW_START),
            "until": day(WINDOW_START + i64::from(WINDOW_DAYS) * 86_400_000),
            "mode": "export",
            "days_per_pull": 7,
        }),
        credential: CredentialKind::OAuth2ClientCredentials {
            token_url: sim.token_url(),
            client_id: options.client_id,
            client_secret: Secret::new(options.client_secret),
            scope: Some("service:integration".into()),
        },
        origin,
    }
}

/// Without a grant the sandbox refuses the connector's first request, and
/// the source never sees it.
async fn show_refusal(connector: &LoadedPlugin, source: &Source, config: &HostConfig) -> Result<()> {
    let PluginPre::Connector(pre) = &connector.pre else {
        bail!("{} is not a connector", source.plugin);
    };
    let ungranted = OutboundPolicy::new(&connector.manifest.hosts, &[], Vec::new(), &config.limits)?;
    let refused = pre
        .session(config.limits.clone(), Some(Arc::new(ungranted)))
        .pull(&source.config.to_string(), None)
        .await;
    if let Err(e) = refused {
        println!("The sandbox: {} without a grant: {e}\n", source.instance);
    }
    Ok(())
}

/// One sync of a source into the store, with a progress bar.
async fn sync_source(
    connector: &LoadedPlugin,
    source: &Source,
    store: &Arc<dyn Store>,
    config: &HostConfig,
) -> Result<ConnectorInfo> {
    let PluginPre::Connector(pre) = &connector.pre else {
        bail!("{} is not a connector", source.plugin);
    };
    let credential = Credential::new(Origin::parse(&source.origin)?, source.credential.clone());
    let policy = OutboundPolicy::new(
        &connector.manifest.hosts,
        std::slice::from_ref(&source.origin),
        vec![credential],
        &config.limits,
    )?;
    let mut session = pre.session(config.limits.clone(), Some(Arc::new(policy)));
    let info = session.describe().await?;
    let target = SyncTarget {
        instance: source.instance.into(),
        tenant: TENANT.into(),
        config: source.config.to_string(),
        plugin: connector.manifest.name.clone(),
        version: connector.manifest.version.clone(),
        sha256: connector.manifest.sha256.clone(),
    };
    let mut bar = Bar::new(source.instance);
    let result = sync::run(&mut session, store, &target, &SyncOptions::default(), &mut bar).await;
    bar.finish();
    println!("{}", summary(&result?));
    Ok(info)
}

/// Count and mean of each metric a connector emits, from the store's rollups.
async fn print_arrivals(store: &dyn Store, sources: &[(&Source, ConnectorInfo)]) -> Result<()> {
    println!("What arrived, per source and metric (from the store's rollups):");
    println!(
        "  {:<12} {:<28} {:>12} {:>10}",
        "source", "metric", "observations", "mean"
    );
    for (source, info) in sources {
        for metric in &info.metrics {
            let (count, sum) = totals(store, &metric.name).await?;
            let mean = if count > 0 { sum / count as f64 } else { 0.0 };
            println!(
                "  {:<12} {:<28} {:>12} {:>10.2} {}",
                source.instance, metric.name, count, mean, metric.unit
            );
        }
    }
    println!();
    Ok(())
}

fn window_query(metric: &str, group_by: Option<&str>, aggregation: Aggregation) -> SeriesQuery {
    SeriesQuery {
        tenant: TENANT.into(),
        metric: metric.into(),
        // Closing dates run past the window's end: read a generous range.
        from: WINDOW_START - 86_400_000 * 30,
        to: WINDOW_START + 86_400_000 * (i64::from(WINDOW_DAYS) + 60),
        bucket: Bucket::Quarter,
        filter: None,
        group_by: group_by.map(str::to_string),
        aggregation,
    }
}

async fn totals(store: &dyn Store, metric: &str) -> Result<(u64, f64)> {
    let rollups = store.rollups(&window_query(metric, None, Aggregation::Sum)).await?;
    Ok(rollups
        .values()
        .fold((0, 0.0), |(count, sum), r| (count + r.count, sum + r.sum)))
}

async fn print_plugin(plugin: &LoadedPlugin, config: &HostConfig) -> Result<()> {
    let m = &plugin.manifest;
    println!(
        "  {:<10} {} {} · loaded in {:.1} ms, {}",
        m.kind.to_string(),
        m.name,
        m.version,
        plugin.load_time.as_secs_f64() * 1000.0,
        super::plugin::cache_word(plugin)
    );
    match &plugin.pre {
        PluginPre::Connector(pre) => {
            let info = pre.session(config.limits.clone(), None).describe().await?;
            println!("             {}", info.description);
            println!(
                "             needs hosts: {} · parses: {}",
                info.hosts.join(", "),
                info.media_types.join(", ")
            );
        }
        PluginPre::Scorer(pre) => {
            let info = pre.session(config.limits.clone()).describe().await?;
            println!("             {}", info.description);
            println!(
                "             reads: {} · per-ticket rows: {}",
                info.metrics.join(", "),
                info.needs_rows
            );
        }
    }
    println!();
    Ok(())
}

/// The scorecard's aims: SLAs at 90 % (the default), happiness at +30, by service.
fn scorecard() -> crate::score::ScorecardOptions {
    crate::score::ScorecardOptions {
        happiness_target: 30.0,
        ..crate::score::ScorecardOptions::default()
    }
}

/// The period the demo reports: the simulated window's last month.
const REPORT_PERIOD: &str = "2026-10";

/// The XLA report over what arrived, ending with the planted patterns.
async fn report(config: &HostConfig, store: Arc<dyn Store>) -> Result<()> {
    let xlas = crate::score::standard_xlas(TENANT);
    let engine = super::report::engine(config, store, &xlas, &[]).await?;
    let window = super::report::period_window(Some(REPORT_PERIOD))?;
    let bundle = engine.report_bundle(&xlas, window, Some(&scorecard())).await?;
    println!("XLAs for {REPORT_PERIOD}, scored by Wasm scorer plugins in the sandbox:\n");
    print!("{}", super::report::render(&bundle, console::colors_enabled()));
    let watermelons: Vec<&str> = bundle
        .scorecards
        .iter()
        .flat_map(|s| s.rows.iter().filter(|r| r.watermelon).map(|r| r.group.as_str()))
        .collect();
    let worst_group = bundle
        .reports
        .iter()
        .find(|r| r.xla == "lost-time")
        .and_then(|r| r.groups.first());
    println!(
        "\nWhat the SLAs hide: {}.",
        if watermelons.is_empty() {
            "no watermelon this month".to_string()
        } else {
            format!(
                "{} {} SLAs while the people served are unhappy (a watermelon: green outside, red inside)",
                watermelons.join(", "),
                if watermelons.len() == 1 {
                    "meets its"
                } else {
                    "meet their"
                }
            )
        }
    );
    if let Some(group) = worst_group {
        println!(
            "Where the time goes: {} costs its users the most, {:.0} minutes lost per answered ticket.",
            group.group, group.value
        );
    }
    Ok(())
}
