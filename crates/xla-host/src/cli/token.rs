//! `xla-host token create|list|revoke`: API bearer tokens. A token is
//! printed once, at creation; the store keeps only its SHA-256.

use super::options::DataDirArg;
use super::sync::open_store;
use crate::api::auth::{self, TokenRequest};
use crate::config::HostConfig;
use crate::store::{Scope, TokenRecord};
use anyhow::{Context, Result, bail};
use chrono::{DateTime, SecondsFormat, Utc};
use clap::{Args, Subcommand};
use std::process::ExitCode;
use std::time::Duration;
use xla_types::now_ms;

/// `xla-host token ...`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token for one tenant (or, with --all-tenants, an operator's)
    /// and print it once.
    #[command(
        after_help = "Example: xla-host --host-config xla.toml token create --tenant acme --scope read --name dashboard --expires 90d

The token is printed once; keep it in a secret store. `token list` shows its id, `token revoke ID` ends it."
    )]
    Create(CreateArgs),
    /// List tokens: id, name, tenant, scope, created, last used, expiry, revoked (never the token).
    List(ListArgs),
    /// Revoke a token by id; it stops working at once.
    Revoke(RevokeArgs),
}

/// `token create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The tenant whose data the token reads and writes.
    #[arg(long, required_unless_present = "all_tenants", conflicts_with = "all_tenants")]
    tenant: Option<String>,
    /// An operator's token, for every tenant.
    #[arg(long)]
    all_tenants: bool,
    /// `read` (reports, series), `write` (also webhooks, imports, syncs) or `admin`.
    #[arg(long, default_value = "read")]
    scope: Scope,
    /// A name for people (`dashboard`, `servicenow-webhook`).
    #[arg(long, default_value = "token")]
    name: String,
    /// How long it works (`90d`, `12h`); without it, until revoked.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    expires: Option<Duration>,
    /// Print JSON (the token and its record).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    store: DataDirArg,
}

/// `token list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    store: DataDirArg,
}

/// `token revoke`.
#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The token's id (from `token list`).
    id: String,
    #[command(flatten)]
    store: DataDirArg,
}

pub(crate) async fn run(config: &HostConfig, command: TokenCommand) -> Result<ExitCode> {
    match command {
        TokenCommand::Create(args) => create(config, args).await,
        TokenCommand::List(args) => list(config, args).await,
        TokenCommand::Revoke(args) => revoke(config, args).await,
    }
}

async fn create(config: &HostConfig, args: CreateArgs) -> Result<ExitCode> {
    if let Some(tenant) = &args.tenant
        && (tenant.is_empty() || tenant.len() > 100 || tenant.chars().any(char::is_control))
    {
        bail!("--tenant must be 1 to 100 printable characters");
    }
    let store = open_store(config, args.store.data_dir.as_deref()).await?;
    let now = now_ms();
    let expires = match args.expires {
        Some(d) => Some(now.saturating_add(i64::try_from(d.as_millis()).context("--expires is too long")?)),
        None => None,
    };
    let request = TokenRequest {
        name: args.name,
        tenant: args.tenant,
        scope: args.scope,
        expires,
    };
    let issued = auth::issue(&*store, request, now).await?;
    if args.json {
        let out = serde_json::json!({ "token": issued.token, "record": issued.record });
        println!("{}", crate::untrusted::json_pretty(&out)?);
    } else {
        println!("{}", issued.token);
        eprintln!(
            "token {} ({}) for {}, scope {}{}; shown once: keep it in a secret store",
            issued.record.id,
            issued.record.name,
            tenant_label(&issued.record),
            issued.record.scope,
            issued
                .record
                .expires
                .map(|at| format!(", expires {}", time(at)))
                .unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn list(config: &HostConfig, args: ListArgs) -> Result<ExitCode> {
    let store = open_store(config, args.store.data_dir.as_deref()).await?;
    let tokens = store.tokens().await?;
    if args.json {
        println!("{}", crate::untrusted::json_pretty(&tokens)?);
        return Ok(ExitCode::SUCCESS);
    }
    if tokens.is_empty() {
        println!("no tokens; `xla-host token create --tenant T` makes one");
    }
    let now = now_ms();
    for t in &tokens {
        let state = match (t.revoked, t.is_live(now)) {
            (Some(at), _) => format!("revoked {}", time(at)),
            (None, false) => "expired".to_string(),
            (None, true) => "live".to_string(),
        };
        println!(
            "{}  {:<20} {:<14} {:<6} created {}  last used {}  expires {}  {}",
            t.id,
            crate::untrusted::escape_capped(&t.name, 20),
            crate::untrusted::escape_capped(&tenant_label(t), 14),
            t.scope,
            time(t.created),
            t.last_used.map_or_else(|| "never".into(), time),
            t.expires.map_or_else(|| "never".into(), time),
            state
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn revoke(config: &HostConfig, args: RevokeArgs) -> Result<ExitCode> {
    let store = open_store(config, args.store.data_dir.as_deref()).await?;
    let record = auth::revoke(&*store, &args.id, now_ms()).await?;
    println!(
        "token {} ({}) revoked {}",
        record.id,
        crate::untrusted::escape_capped(&record.name, 40),
        record.revoked.map_or_else(String::new, time)
    );
    Ok(ExitCode::SUCCESS)
}

fn tenant_label(t: &TokenRecord) -> String {
    t.tenant.clone().unwrap_or_else(|| "all tenants".into())
}

/// `ms` (unix milliseconds) as RFC 3339 UTC to the second, or the number when out of range.
pub(crate) fn time(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map_or_else(|| ms.to_string(), |t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}
