//! `xla-host demo`: loads every plugin from the plugin directory, shows what
//! each declares, then runs the pipeline in miniature: a loopback feed, the
//! `json-feed` connector pulling it through the sandbox with a bearer token
//! it never sees, and the `mean` scorer over the result.

use super::options;
use crate::config::HostConfig;
use crate::plugins::{LoadedPlugin, PluginPre, discover};
use crate::runtime::outbound::{Credential, CredentialKind, Origin, OutboundPolicy, Secret};
use crate::runtime::{Aggregate, Layer, Observation, ScoreInput};
use crate::sim::feed::{self, Feed};
use crate::store::{Rollup, is_rating};
use anyhow::{Context, Result, bail};
use clap::Args;
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Seed of the demo data: the same seed gives the same data.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Survey responses the loopback feed serves.
    #[arg(long, default_value_t = 2_000)]
    responses: usize,
}

/// Pulls the demo makes at most, whatever the connector says.
const MAX_DEMO_PULLS: usize = 1_000;

/// The token the loopback feed requires; only the host ever holds it.
const FEED_TOKEN: &str = "demo-token-held-by-the-host";

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
    let (Some(connector), Some(scorer)) = (loaded.get("json-feed"), loaded.get("mean")) else {
        bail!("the demo needs the json-feed and mean plugins in {}", dir.display());
    };
    let observations = pull_feed(connector, config, &args).await?;
    score(scorer, config, &observations).await?;
    Ok(ExitCode::SUCCESS)
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

async fn pull_feed(connector: &LoadedPlugin, config: &HostConfig, args: &DemoArgs) -> Result<Vec<Observation>> {
    let PluginPre::Connector(pre) = &connector.pre else {
        bail!("json-feed is not a connector");
    };
    let feed = Arc::new(Feed::seeded(args.seed, args.responses, FEED_TOKEN));
    let addr = feed::serve(feed.clone()).await.context("starting the loopback feed")?;
    let origin = format!("http://{addr}");
    let plugin_config = serde_json::json!({ "base_url": format!("{origin}/xla"), "page_size": 250 }).to_string();
    println!(
        "Pulling {} survey responses from a loopback feed at {origin}",
        feed.len()
    );

    // First without a grant: the sandbox refuses, and the feed never sees a request.
    let ungranted = OutboundPolicy::new(&connector.manifest.hosts, &[], Vec::new(), &config.limits)?;
    let refused = pre
        .session(config.limits.clone(), Some(Arc::new(ungranted)))
        .pull(&plugin_config, None)
        .await;
    if let Err(e) = refused {
        println!("  without a grant: {e}");
    }

    let credential = Credential::new(
        Origin::parse(&origin)?,
        CredentialKind::Bearer {
            token: Secret::new(FEED_TOKEN),
        },
    );
    let policy = OutboundPolicy::new(
        &connector.manifest.hosts,
        std::slice::from_ref(&origin),
        vec![credential],
        &config.limits,
    )?;
    let mut session = pre.session(config.limits.clone(), Some(Arc::new(policy)));
    let started = Instant::now();
    let (mut observations, mut cursor, mut batches) = (Vec::new(), None::<String>, 0);
    while batches < MAX_DEMO_PULLS {
        let batch = session.pull(&plugin_config, cursor.as_deref()).await?;
        batches += 1;
        observations.extend(batch.observations);
        cursor = batch.cursor.or(cursor);
        if !batch.more {
            break;
        }
    }
    println!(
        "  granted {origin} with a bearer token the plugin never sees: {} observations in {batches} batches, {:.1} ms ({} requests reached the feed)\n",
        observations.len(),
        started.elapsed().as_secs_f64() * 1000.0,
        feed.requests()
    );
    Ok(observations)
}

async fn score(scorer: &LoadedPlugin, config: &HostConfig, observations: &[Observation]) -> Result<()> {
    let PluginPre::Scorer(pre) = &scorer.pre else {
        bail!("mean is not a scorer");
    };
    let input = ScoreInput {
        tenant: "demo".into(),
        window_start: 1_761_955_200_000,
        window_end: 1_764_547_200_000,
        group_by: Some("service".into()),
        parameters: "{}".into(),
        aggregates: aggregate_by(observations, "service"),
    };
    let scores = pre.session(config.limits.clone()).score(&input, None).await?;
    println!("Mean happiness rating (0-10) per service, scored by the `mean` plugin:");
    for score in scores {
        let group = score.group.as_deref().unwrap_or("all");
        // The value comes from a plugin: clamp it before it sizes anything.
        let bar = "█".repeat((score.value.clamp(0.0, 10.0) * 3.0).round() as usize);
        println!("  {group:<16} {:>5.2}  {bar}  (n={})", score.value, score.sample_size);
    }
    Ok(())
}

/// Per-group rollups of each metric, as the store keeps them.
fn aggregate_by(observations: &[Observation], dimension: &str) -> Vec<Aggregate> {
    let mut groups: BTreeMap<(String, Option<String>), (Layer, Rollup)> = BTreeMap::new();
    for o in observations {
        let group = o
            .dimensions
            .iter()
            .find(|(k, _)| k == dimension)
            .map(|(_, v)| v.clone());
        let (_, rollup) = groups
            .entry((o.metric.clone(), group))
            .or_insert((o.layer, Rollup::default()));
        rollup.add(o.value, is_rating(&o.metric));
    }
    groups
        .into_iter()
        .map(|((metric, group), (layer, rollup))| Aggregate {
            metric,
            layer,
            group,
            count: rollup.count,
            sum: rollup.sum,
            min: rollup.min,
            max: rollup.max,
            histogram: rollup.histogram.map(|h| h.to_vec()),
        })
        .collect()
}
