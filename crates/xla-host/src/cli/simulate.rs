//! `xla-host simulate`: serves the three source simulators (ServiceNow,
//! HappySignals, Nexthink) with a seeded organisation on loopback until
//! interrupted, for people and other clients (pysnc, curl, a browser) to use.

use crate::config::HostConfig;
use crate::sim::happysignals::{self, HappySignalsOptions};
use crate::sim::nexthink::{self, NexthinkOptions};
use crate::sim::org::{self, OrgSpec};
use crate::sim::servicenow::{self, ServiceNowOptions};
use crate::sim::telemetry::{self, TelemetrySpec};
use anyhow::{Context, Result, bail};
use clap::Args;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

/// Arguments of `xla-host simulate`.
#[derive(Debug, Args)]
#[command(after_help = "Example: xla-host simulate --seed 7 --tickets 20000 --listen 127.0.0.1:8081")]
pub struct SimulateArgs {
    /// Seed of the organisation: the same seed gives the same data.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Tickets (incidents and requests) in the window.
    #[arg(long, default_value_t = 5_000)]
    tickets: usize,
    /// Days the window covers, ending now.
    #[arg(long, default_value_t = 30)]
    days: u32,
    /// Address of the ServiceNow simulator (loopback only); HappySignals and
    /// Nexthink take the next two ports (any free ports when this is 0).
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    listen: SocketAddr,
}

pub(crate) async fn run(_config: &HostConfig, args: SimulateArgs) -> Result<ExitCode> {
    if !args.listen.ip().is_loopback() {
        bail!(
            "--listen {}: the simulators serve loopback only (127.0.0.1 or ::1); they hold made-up but realistic data and well-known credentials",
            args.listen
        );
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let start = now - i64::from(args.days) * 86_400_000;
    let start = start - start.rem_euclid(86_400_000);
    let org = Arc::new(org::generate(&OrgSpec {
        seed: args.seed,
        tickets: args.tickets,
        start,
        days: args.days,
    }));
    let next_port = |n: u16| {
        let port = if args.listen.port() == 0 {
            0
        } else {
            args.listen.port().saturating_add(n)
        };
        SocketAddr::new(args.listen.ip(), port)
    };
    let options = ServiceNowOptions::default();
    let sim = servicenow::serve(org.clone(), options.clone(), args.listen)
        .await
        .context("starting the ServiceNow simulator")?;
    let hs_options = HappySignalsOptions::default();
    let hs = happysignals::serve(org.clone(), hs_options.clone(), next_port(1))
        .await
        .context("starting the HappySignals simulator")?;
    let telemetry = Arc::new(telemetry::generate(
        &org,
        &TelemetrySpec {
            seed: args.seed,
            days: args.days,
            start,
        },
    ));
    let nx_options = NexthinkOptions::default();
    let nx = nexthink::serve(telemetry, nx_options.clone(), next_port(2))
        .await
        .context("starting the Nexthink simulator")?;
    println!(
        "Simulated organisation (seed {}): {} incidents, {} requests, {} SLAs, {} survey responses.",
        args.seed,
        org.incidents.len(),
        org.requests.len(),
        org.slas.len(),
        org.responses.len()
    );
    println!("ServiceNow  {}", sim.base_url());
    println!("  Table API  {}/api/now/table/incident", sim.base_url());
    println!("  Basic      {} / {}", options.user, options.password);
    println!(
        "  OAuth      POST {}/oauth_token.do  client {} / {}",
        sim.base_url(),
        options.client_id,
        options.client_secret
    );
    println!("HappySignals {}", hs.base_url());
    println!(
        "  responses  {}/api/v2/responses/  (Bearer {})",
        hs.base_url(),
        hs_options.token
    );
    println!("  export     {}/api/v2/responses/export.csv", hs.base_url());
    println!("Nexthink    {}", nx.base_url());
    println!(
        "  OAuth      POST {}  client {} / {} (client credentials)",
        nx.token_url(),
        nx_options.client_id,
        nx_options.client_secret
    );
    println!(
        "  NQL        POST {}/api/v1/nql/execute  {{\"queryId\": \"#device_daily_dex\"}}",
        nx.base_url()
    );
    println!("Ctrl-C stops.");
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    sim.shutdown().await;
    drop((hs, nx));
    Ok(ExitCode::SUCCESS)
}
