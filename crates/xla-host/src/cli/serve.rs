//! `xla-host serve`: the long-running host. It serves the HTTP API (with
//! `--listen` or `[api] listen`) and syncs every connector instance that
//! has a `schedule` on it, under the per-upstream limits of `[sync]`,
//! until Ctrl-C or SIGTERM, printing one line per finished run.
//!
//! Everything the command runs hangs off one shutdown token: the first
//! signal stops accepting connections and new runs, lets requests and runs
//! finish within the grace, then the process exits 0.

use super::sync::{open_store, summary};
use super::{api, options};
use crate::config::HostConfig;
use crate::sync::SyncOptions;
use crate::sync::schedule::{self, FinishedRun, ScheduleError, Scheduler, SchedulerOptions};
use anyhow::{Context, Result};
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Arguments of `xla-host serve`.
#[derive(Debug, Args)]
#[command(after_help = "Example: xla-host --host-config xla.toml serve --data-dir ./data

Each [[connectors]] entry with `schedule = \"15m\"` (s, m, h, d) syncs at start, then that long after \
each run ends. Runs against one upstream (a granted origin) are bounded by `[sync] \
max_concurrent_per_upstream` (default 2) and `[[sync.upstreams]]`; requests by their `requests_per_second`.")]
pub struct ServeArgs {
    /// Data directory (created if missing).
    #[arg(long, env = "XLA_HOST_DATA", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// How long a sync in progress at shutdown may go on before it is cut;
    /// a cut sync loses nothing and resumes from its cursor next time.
    #[arg(long, value_name = "DURATION", default_value = "20s", value_parser = humantime::parse_duration)]
    shutdown_grace: Duration,
    /// Serve the HTTP API on this address (overrides `[api] listen`), e.g. 127.0.0.1:8470.
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
}

pub(crate) async fn run(config: &HostConfig, args: ServeArgs) -> Result<ExitCode> {
    let listen = args.listen.or(config.api.listen);
    // Refuse a config with nothing to run before touching the data directory.
    let scheduled = match schedule::scheduled(config.sync_setup()) {
        Ok(scheduled) => scheduled,
        Err(ScheduleError::NothingScheduled { .. }) if listen.is_some() => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    // Listen before anything runs, so an early SIGTERM still stops cleanly.
    let signals = Signals::listen()?;
    let store = open_store(config, args.data_dir.as_deref()).await?;
    let runtime = options::runtime(config)?;
    let shutdown = CancellationToken::new();
    let options = SchedulerOptions {
        sync: SyncOptions {
            lease_ttl: config.sync.lease_ttl()?,
            ..SyncOptions::default()
        },
        grace: args.shutdown_grace,
        // With the API on, every instance can be synced now with `POST .../sync`.
        on_demand: listen.is_some(),
    };
    let scheduler = Scheduler::from_config(&runtime, config.sync_setup(), store.clone(), options)?;
    let server = match listen {
        Some(addr) => {
            let control = scheduler.control();
            Some(api::start(config, &runtime, store.clone(), Some(control), addr, shutdown.clone()).await?)
        }
        None => None,
    };
    for (instance, interval) in &scheduled {
        eprintln!(
            "{}: every {} (upstreams: {})",
            instance.name,
            humantime::format_duration(*interval),
            upstreams(&instance.grants)
        );
    }
    if let Some(server) = &server {
        for instance in config.connectors.iter().filter(|i| i.schedule.is_none()) {
            eprintln!(
                "{}: on demand (POST http://{}/v1/tenants/{}/instances/{}/sync)",
                instance.name, server.addr, instance.tenant, instance.name
            );
        }
        eprintln!(
            "API at http://{}/v1 (OpenAPI: http://{}/v1/openapi.json); dashboard at http://{}/dashboard",
            server.addr, server.addr, server.addr
        );
    }
    eprintln!("serving; Ctrl-C or SIGTERM stops");

    let retention = config.store.retention.is_set().then(|| {
        tokio::spawn(retire_periodically(
            store.clone(),
            config.store.retention.clone(),
            shutdown.clone(),
        ))
    });
    let watcher = tokio::spawn(signals.watch(shutdown.clone(), args.shutdown_grace));
    scheduler
        .run(shutdown.clone(), |finished| println!("{}", line(finished)))
        .await;
    shutdown.cancelled().await;
    if let Some(server) = server {
        server.stopped(args.shutdown_grace).await;
    }
    watcher.abort();
    if let Some(retention) = retention {
        retention.abort();
    }
    eprintln!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// How often `serve` applies `[store.retention]`. Retention works in whole
/// UTC days, so a few times a day keeps every metric within hours of its
/// rule; a pass with nothing to drop costs a seek per metric.
const RETENTION_EVERY: Duration = Duration::from_secs(6 * 3600);

/// Applies the retention policy at start and every [`RETENTION_EVERY`]
/// until shutdown, printing what each pass dropped. A failed pass is
/// reported and tried again at the next one; nothing it did is undone.
async fn retire_periodically(
    store: std::sync::Arc<dyn xla_store::Store>,
    policy: xla_store::RetentionPolicy,
    shutdown: CancellationToken,
) {
    // Warned only once the store holds data: a new store names no metric yet.
    if let Ok(stored) = store.stored_metrics().await
        && !stored.is_empty()
    {
        for rule in policy.unmatched_rules(&stored) {
            eprintln!(
                "retention: warning: [store.retention] metrics.{} names no stored metric; check its spelling",
                crate::untrusted::escape_capped(&rule, 60)
            );
        }
    }
    loop {
        let stop = || shutdown.is_cancelled();
        match xla_store::apply_retention(&*store, &policy, xla_types::now_ms(), &stop).await {
            Ok(applied) => {
                for a in &applied {
                    let Some(dropped) = a.dropped.filter(|d| *d > 0) else {
                        continue;
                    };
                    eprintln!(
                        "retention: {} {}: dropped {} raw rows older than {} days (rollups kept)",
                        crate::untrusted::escape_capped(&a.tenant, 40),
                        crate::untrusted::escape_capped(&a.metric, 60),
                        dropped,
                        a.days
                    );
                }
            }
            Err(error) => eprintln!(
                "retention: {}; raw rows stay until the next pass in {}",
                crate::untrusted::escape(&error.to_string()),
                humantime::format_duration(RETENTION_EVERY)
            ),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(RETENTION_EVERY) => {}
        }
    }
}

fn upstreams(grants: &[String]) -> String {
    if grants.is_empty() {
        return "none".into();
    }
    grants
        .iter()
        .map(|g| schedule::upstream(g))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One line per finished run: the sync summary, and why it did not complete.
fn line(finished: &FinishedRun) -> String {
    match (&finished.record, &finished.error) {
        (Some(record), None) => summary(record),
        (Some(record), Some(error)) => format!("{}: {error}", summary(record)),
        (None, error) => format!(
            "{}: failed after {:.1} s: {}",
            finished.instance,
            finished.duration.as_secs_f64(),
            error.as_deref().unwrap_or("unknown error")
        ),
    }
}

/// Ctrl-C and, on Unix, SIGTERM.
struct Signals {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn listen() -> Result<Signals> {
        Ok(Signals {
            #[cfg(unix)]
            terminate: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .context("listening for SIGTERM")?,
        })
    }

    async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => "Ctrl-C",
                _ = self.terminate.recv() => "SIGTERM",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }

    /// Cancels `shutdown` on the first signal; a second one ends the
    /// process at once, which the store survives as it survives a kill.
    async fn watch(mut self, shutdown: CancellationToken, grace: Duration) {
        let signal = self.next().await;
        eprintln!(
            "{signal}: stopping; running syncs get up to {} to finish (again to stop at once)",
            humantime::format_duration(grace)
        );
        shutdown.cancel();
        let signal = self.next().await;
        eprintln!("{signal} again: stopping at once; cut syncs resume from their cursors");
        std::process::exit(130);
    }
}
