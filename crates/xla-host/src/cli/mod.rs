//! The `xla-host` command line: parsing, logging setup, and one module per
//! command family. Errors end here as `anyhow` with context, printed once.

mod api;
#[cfg(feature = "sim")]
mod demo;
mod import;
mod migrate;
mod options;
mod parse;
mod plugin;
mod report;
mod serve;
#[cfg(feature = "sim")]
mod simulate;
mod store;
mod sync;
mod token;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// XLA Host runs sandboxed WebAssembly plugins that bring IT experience (X),
/// operational (O) and technical (T) data together and score experience
/// level agreements.
#[derive(Debug, Parser)]
#[command(name = "xla-host", version, propagate_version = true)]
#[cfg_attr(
    feature = "sim",
    command(after_help = "Start with `xla-host demo`. Every command has --help with examples.")
)]
#[cfg_attr(
    not(feature = "sim"),
    command(after_help = "Start with `xla-host plugin check FILE`. Every command has --help with examples.")
)]
pub struct Cli {
    /// Host configuration file (TOML): plugin directory, pins, limits, connector instances.
    #[arg(long, global = true, env = "XLA_HOST_CONFIG", value_name = "FILE")]
    pub host_config: Option<PathBuf>,

    /// Log filter, e.g. `info`, `xla_sync=debug,xla_runtime=debug,plugin=trace` (one target per crate; `plugin` for what plugins log).
    #[arg(
        long,
        global = true,
        env = "XLA_HOST_LOG",
        default_value = "warn",
        value_name = "FILTER"
    )]
    pub log: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load the plugins, show what each declares, and run a connector and a
    /// scorer end to end against a loopback feed.
    #[cfg(feature = "sim")]
    Demo(demo::DemoArgs),
    /// Inspect and run single plugin files.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Run one sync of a configured connector instance into the data directory.
    Sync(sync::SyncArgs),
    /// Run the host: sync every connector instance that has a `schedule` on
    /// it, under the per-upstream limits of `[sync]`, until Ctrl-C or SIGTERM.
    Serve(serve::ServeArgs),
    /// Import a file (an export, a saved API body) into the data directory as
    /// a configured connector instance's data, parsed by its connector.
    Import(import::ImportArgs),
    /// Serve the source simulators with a seeded organisation on loopback.
    #[cfg(feature = "sim")]
    Simulate(simulate::SimulateArgs),
    /// Make, list and revoke the API's bearer tokens.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// What the store keeps (`stats`), and retention of raw rows (`retire`).
    #[command(subcommand)]
    Store(store::StoreCommand),
    /// Report every XLA for a period: value against target, trend, worst
    /// groups, the X/O/T view and the SLA-beside-XLA scorecard.
    Report(report::ReportArgs),
}

/// Runs the command line; returns the process exit code.
pub fn main() -> ExitCode {
    crate::tune_allocator();
    let cli = Cli::parse();
    init_logging(&cli.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let config = options::host_config(cli.host_config.as_deref())?;
        match cli.command {
            #[cfg(feature = "sim")]
            Command::Demo(args) => demo::run(&config, args).await,
            Command::Plugin(command) => plugin::run(&config, command).await,
            Command::Sync(args) => sync::run(&config, args).await,
            Command::Serve(args) => serve::run(&config, args).await,
            Command::Import(args) => import::run(&config, args).await,
            #[cfg(feature = "sim")]
            Command::Simulate(args) => simulate::run(&config, args).await,
            Command::Report(args) => report::run(&config, args).await,
            Command::Token(command) => token::run(&config, command).await,
            Command::Store(command) => store::run(&config, command).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            // Errors carry plugin and source text: escape it for the terminal.
            eprintln!("error: {}", crate::untrusted::escape(&chain(&e)));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes joined with `: `, as `{:#}` does, but a cause
/// whose text the message already holds is not said again: our error types
/// put their source's text in their own message, so `{:#}` printed it twice.
fn chain(error: &anyhow::Error) -> String {
    let mut said = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if said.contains(&text) {
            continue;
        }
        if !said.is_empty() {
            said.push_str(": ");
        }
        said.push_str(&text);
    }
    said
}

fn init_logging(filter: &str) {
    let filter =
        tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

#[cfg(test)]
mod tests {
    /// Says its source's text in its own message, as our error types do.
    #[derive(Debug, thiserror::Error)]
    #[error("instance `sn`: {source}")]
    struct Wrapping {
        source: std::io::Error,
    }

    #[test]
    fn a_cause_already_in_the_message_is_said_once() {
        let error = anyhow::Error::new(Wrapping {
            source: std::io::Error::other("the file changed after it was built"),
        });
        assert_eq!(
            super::chain(&error),
            "instance `sn`: the file changed after it was built"
        );
        let context = anyhow::Error::new(std::io::Error::other("connection refused")).context("reading the feed");
        assert_eq!(super::chain(&context), "reading the feed: connection refused");
    }
}
