//! What a plugin instance's store holds: its WASI context (deny by default),
//! the HTTP context and hooks, the memory limiter and the log pipes.

use super::error::PluginId;
use super::limits::{Limits, MAX_FIELDS_BYTES, MemoryLimiter};
use super::log::{Level, LogLimiter, OutputPipe};
use super::outbound::OutboundHooks;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// The kind of plugin a store runs, which decides its WASI and its world.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Connectors get the real clock and randomness (for time windows and nonces).
    Connector,
    /// Scorers get a fixed clock and seeded randomness, so scores are deterministic.
    Scorer,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Connector => "connector",
            Kind::Scorer => "scorer",
        }
    }

    /// The interface the kind exports, without its version.
    pub fn export(self) -> &'static str {
        match self {
            Kind::Connector => "xla:plugin/connector",
            Kind::Scorer => "xla:plugin/scorer",
        }
    }
}

/// Resources a connector may keep between two calls of one session: more
/// than this means it is hoarding host memory, and its instance is replaced.
const MAX_HELD_BETWEEN_CALLS: usize = 8;

pub(crate) struct PluginState {
    pub plugin: PluginId,
    pub table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: OutboundHooks,
    pub memory: MemoryLimiter,
    pub log: Arc<Mutex<LogLimiter>>,
    pub stderr: OutputPipe,
    /// The call in progress and when it began, for its metrics.
    pub call: Option<(&'static str, std::time::Instant)>,
}

impl PluginState {
    pub fn new(plugin: &PluginId, kind: Kind, limits: &Limits, hooks: OutboundHooks) -> Self {
        let log = Arc::new(Mutex::new(LogLimiter::new(&plugin.name, limits.log_per_second)));
        let stdout = OutputPipe::new(Level::Info, log.clone());
        let stderr = OutputPipe::new(Level::Warn, log.clone());
        let mut table = ResourceTable::new();
        // Each resource holds at most MAX_RESOURCE_BYTES of host memory, so
        // capping their number caps what a guest can make the host hold.
        table.set_max_capacity(limits.max_resources());
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(MAX_FIELDS_BYTES);
        PluginState {
            plugin: plugin.clone(),
            table,
            wasi: wasi_ctx(kind, stdout, stderr.clone()),
            http,
            hooks,
            memory: MemoryLimiter::new(limits.memory_bytes()),
            log,
            stderr,
            call: None,
        }
    }

    /// The outbound hooks, which need the deadline of each call.
    pub fn hooks(&self) -> &OutboundHooks {
        &self.hooks
    }

    /// Whether the guest holds more host resources than a call needs to
    /// leave behind (an instance that does is not reused).
    pub fn hoards_resources(&mut self) -> bool {
        let held = self.table.iter_mut().count();
        if held > MAX_HELD_BETWEEN_CALLS {
            tracing::info!(plugin = %self.plugin.name, held, "the plugin kept {held} host resources after its call; its instance is replaced so they are freed");
            return true;
        }
        false
    }

    pub fn report_dropped_logs(&self) {
        if let Ok(mut log) = self.log.lock() {
            log.report_dropped();
        }
    }
}

/// No environment, no arguments, no preopened directories, no sockets, no
/// name lookups: a plugin sees nothing of the machine it runs on.
fn wasi_ctx(kind: Kind, stdout: OutputPipe, stderr: OutputPipe) -> WasiCtx {
    let mut builder = WasiCtxBuilder::new();
    builder
        .stdout(stdout)
        .stderr(stderr)
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    if kind == Kind::Scorer {
        use wasmtime_wasi::random::Deterministic;
        builder
            .wall_clock(FixedWallClock)
            .monotonic_clock(FixedMonotonicClock)
            .secure_random(Deterministic::new(SCORER_RANDOM_SEED.to_vec()))
            .insecure_random(Deterministic::new(SCORER_RANDOM_SEED.to_vec()))
            .insecure_random_seed(0);
    }
    builder.build()
}

/// The bytes a scorer's "random" numbers cycle through: any fixed sequence
/// will do, as long as it never changes.
const SCORER_RANDOM_SEED: [u8; 16] = *b"xla-host scorers";

/// A wall clock stopped at the unix epoch.
struct FixedWallClock;

impl wasmtime_wasi::HostWallClock for FixedWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

/// A monotonic clock that never moves.
struct FixedMonotonicClock;

impl wasmtime_wasi::HostMonotonicClock for FixedMonotonicClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for PluginState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}
