//! `xla-host plugin check`, `xla-host plugin run` and `xla-host plugin parse`
//! (in `parse`).

use super::options::{self, LimitArgs};
use super::parse::{self, ParseArgs};
use crate::config::HostConfig;
use crate::plugins::{self, LoadedPlugin, PluginPre, load_plugin};
use crate::runtime::outbound::OutboundPolicy;
use crate::runtime::{ConnectorInfo, ConnectorPre, ScorerInfo};
use crate::untrusted::{self, Shown};
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, Subcommand)]
pub(crate) enum PluginCommand {
    /// Load a plugin (manifest, hash, pin, compile or cache, world) and print
    /// what it declares.
    ///
    /// Exits non-zero with the reason when the file is not a component, does
    /// not match its manifest, or implements the wrong world.
    ///
    /// Example: xla-host plugin check target/plugins/json-feed/json-feed.wasm --json
    Check(CheckArgs),
    /// Run a connector: check its config, then pull until it has no more,
    /// printing observations as JSON lines on stdout and a summary on stderr.
    ///
    /// Example: XLA_FEED_TOKEN=demo xla-host plugin run target/plugins/json-feed/json-feed.wasm
    ///   --config '{"base_url":"http://127.0.0.1:8080/xla"}' --grant http://127.0.0.1:8080
    ///   --credential http://127.0.0.1:8080=bearer:XLA_FEED_TOKEN
    Run(RunArgs),
    /// Run a connector's parse() on one body (a saved API response, an export
    /// file, a webhook payload), with no network, printing observations as
    /// JSON lines on stdout.
    ///
    /// The media type must be one the connector declares in describe().
    ///
    /// Example: xla-host plugin parse target/plugins/happysignals/happysignals.wasm
    ///   --media-type text/csv --config '{"base_url":"https://acme.eu.happysignals.com"}' export.csv
    Parse(ParseArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// The plugin's .wasm file (its plugin.toml must be beside it).
    file: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The connector's .wasm file (its plugin.toml must be beside it).
    file: PathBuf,
    /// The connector's config: JSON, or @file holding JSON.
    #[arg(long, value_name = "JSON|@FILE")]
    config: Option<String>,
    /// Take config, grants, credentials and limits from this connector
    /// instance of the host config file instead.
    #[arg(long, value_name = "NAME", conflicts_with = "config")]
    instance: Option<String>,
    /// Allow requests to this origin (scheme://host[:port]); repeatable.
    /// Loopback and private addresses must be named exactly.
    #[arg(long = "grant", value_name = "ORIGIN")]
    grants: Vec<String>,
    /// Add a credential for an origin: ORIGIN=KIND:ENV_VAR with KIND basic
    /// (VAR holds user:password), bearer (VAR holds the token) or oauth2
    /// (VAR holds {"token_url","client_id","client_secret","scope"}); repeatable.
    #[arg(long = "credential", value_name = "ORIGIN=KIND:ENV_VAR")]
    credentials: Vec<String>,
    /// Start after this cursor instead of from the beginning.
    #[arg(long)]
    cursor: Option<String>,
    /// Stop after this many pulls even if the connector says more follows.
    #[arg(long, default_value_t = 10_000)]
    max_pulls: usize,
    #[command(flatten)]
    limits: LimitArgs,
}

pub(crate) async fn run(config: &HostConfig, command: PluginCommand) -> Result<ExitCode> {
    match command {
        PluginCommand::Check(args) => check(config, args).await,
        PluginCommand::Run(args) => run_connector(config, args).await,
        PluginCommand::Parse(args) => parse::run(config, args).await,
    }
}

#[derive(serde::Serialize)]
#[serde(tag = "kind", content = "describe", rename_all = "lowercase")]
enum Described {
    Connector(ConnectorInfo),
    Scorer(ScorerInfo),
}

async fn check(config: &HostConfig, args: CheckArgs) -> Result<ExitCode> {
    let runtime = options::runtime(config)?;
    let plugin = load_plugin(&runtime, &args.file, &config.plugins.pins)?;
    let described = describe(&plugin, config).await?;
    check_consistent(&plugin, &described)?;
    if args.json {
        let report = serde_json::json!({
            "file": plugin.path,
            "manifest": plugin.manifest,
            "cache": plugin.cache,
            "load_ms": plugin.load_time.as_secs_f64() * 1000.0,
            "plugin": described,
        });
        println!("{}", untrusted::json_pretty(&report)?);
    } else {
        print_check(&plugin, &described);
    }
    Ok(ExitCode::SUCCESS)
}

async fn describe(plugin: &LoadedPlugin, config: &HostConfig) -> Result<Described> {
    Ok(match &plugin.pre {
        PluginPre::Connector(pre) => Described::Connector(pre.session(config.limits.clone(), None).describe().await?),
        PluginPre::Scorer(pre) => Described::Scorer(pre.session(config.limits.clone()).describe().await?),
    })
}

/// The manifest and `describe()` must agree on who the plugin is.
fn check_consistent(plugin: &LoadedPlugin, described: &Described) -> Result<()> {
    let described = match described {
        Described::Connector(info) => plugins::Described::connector(info),
        Described::Scorer(info) => plugins::Described::scorer(info),
    };
    plugins::check_identity(&plugin.path, &plugin.manifest, described)?;
    Ok(())
}

fn print_check(plugin: &LoadedPlugin, described: &Described) {
    let m = &plugin.manifest;
    println!(
        "{} {} ({}, contract xla:plugin@{})",
        Shown(&m.name),
        Shown(&m.version),
        m.kind,
        plugin.pre.contract().version()
    );
    println!("  file      {}", plugin.path.display());
    println!("  sha256    {}", m.sha256);
    println!(
        "  loaded    in {:.1} ms ({})",
        plugin.load_time.as_secs_f64() * 1000.0,
        cache_word(plugin)
    );
    match described {
        Described::Connector(info) => {
            println!("  about     {}", Shown(&info.description));
            println!("  hosts     {}", Shown(&info.hosts.join(", ")));
            println!("  parses    {}", Shown(&info.media_types.join(", ")));
            for metric in &info.metrics {
                println!(
                    "  metric    {} [{:?}, {}]: {}",
                    Shown(&metric.name),
                    metric.layer,
                    Shown(&metric.unit),
                    Shown(&metric.description)
                );
            }
        }
        Described::Scorer(info) => {
            println!("  about     {}", Shown(&info.description));
            println!("  reads     {}", Shown(&info.metrics.join(", ")));
            println!("  rows      {}", if info.needs_rows { "yes" } else { "no" });
        }
    }
}

/// The connector of a loaded plugin; a scorer is refused, naming `command`.
pub(crate) fn connector_of<'a>(plugin: &'a LoadedPlugin, command: &str) -> Result<&'a ConnectorPre> {
    match &plugin.pre {
        PluginPre::Connector(pre) => Ok(pre),
        PluginPre::Scorer(_) => bail!("{} is a scorer; `{command}` runs connectors", plugin.id()),
    }
}

pub(crate) fn cache_word(plugin: &LoadedPlugin) -> &'static str {
    match plugin.cache {
        crate::runtime::CacheOutcome::Hit => "from the compile cache",
        crate::runtime::CacheOutcome::Miss => "compiled, now cached",
        crate::runtime::CacheOutcome::Disabled => "compiled, no cache",
    }
}

async fn run_connector(config: &HostConfig, args: RunArgs) -> Result<ExitCode> {
    let runtime = options::runtime_for(config, &args.limits)?;
    let plugin = load_plugin(&runtime, &args.file, &config.plugins.pins)?;
    let pre = connector_of(&plugin, "plugin run")?;
    let (plugin_config, grants, mut credentials, limits) = match &args.instance {
        Some(name) => {
            let instance = config
                .connector(name)
                .with_context(|| format!("no connector instance `{name}` in the host config"))?;
            let limits = config.limits.clone().with(instance.limits.as_ref());
            (
                instance.config_json(),
                instance.grants.clone(),
                instance.resolve_credentials()?,
                limits,
            )
        }
        None => {
            let plugin_config = options::read_json_arg(args.config.as_deref().unwrap_or("{}"))?;
            (plugin_config, Vec::new(), Vec::new(), config.limits.clone())
        }
    };
    let grants: Vec<String> = grants.into_iter().chain(args.grants.iter().cloned()).collect();
    for credential in &args.credentials {
        credentials.push(options::parse_credential(credential)?);
    }
    let limits = args.limits.apply(limits, config)?;
    let policy = OutboundPolicy::new(&plugin.manifest.hosts, &grants, credentials, &limits)?;
    let mut session = pre.session(limits, Some(Arc::new(policy)));

    let started = Instant::now();
    session.check(&plugin_config).await.context("check() failed")?;
    let mut cursor = args.cursor.clone();
    let (mut batches, mut observations) = (0usize, 0usize);
    let mut stdout = std::io::stdout().lock();
    loop {
        let batch = session.pull(&plugin_config, cursor.as_deref()).await.with_context(|| {
            format!(
                "pull #{} failed after {observations} observations (cursor {:?})",
                batches + 1,
                cursor
            )
        })?;
        batches += 1;
        let batch_observations = batch.changes.observations();
        observations += batch_observations.len();
        for observation in &batch_observations {
            writeln!(stdout, "{}", untrusted::json_line(observation)?)?;
        }
        super::parse::write_retractions_and_gaps(&mut stdout, &batch.changes)?;
        if batch.cursor.is_some() {
            cursor = batch.cursor;
        }
        if !batch.more {
            break;
        }
        if batches >= args.max_pulls {
            eprintln!("stopping after --max-pulls {} pulls; more data follows", args.max_pulls);
            break;
        }
    }
    stdout.flush()?;
    eprintln!(
        "{}: {observations} observations in {batches} batches, {:.1} ms; next cursor: {}",
        plugin.id(),
        started.elapsed().as_secs_f64() * 1000.0,
        Shown(cursor.as_deref().unwrap_or("none"))
    );
    Ok(ExitCode::SUCCESS)
}
