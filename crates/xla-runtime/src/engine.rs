//! The process-wide engine: configuration, the epoch ticker that enforces
//! deadlines, the compile cache and the two linkers (one per plugin kind).

use super::bindings;
use super::cache::{CacheOutcome, CompileCache};
use super::error::{PluginId, RuntimeError};
use super::state::PluginState;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances: the granularity of deadlines.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Bytes of each pooled memory and table kept resident between instances.
const KEEP_RESIDENT: usize = 2 << 20;

/// Settings of the runtime.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Directory of the compile cache; `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
    /// Largest memory cap any plugin may be given, in MiB; sizes the pool.
    pub max_memory_mib: u64,
    /// Instances that may be alive at once; sizes the pool.
    pub max_instances: u32,
    /// Whether compiled code counts fuel, which a [`Limits::fuel`] needs.
    /// Counting costs every guest instruction (5-7% of a ServiceNow sync's
    /// CPU, BENCHMARKS.md), so it is off unless some limit sets
    /// `fuel`: the host turns it on when its config or command line does. A
    /// call with a fuel limit on a runtime that does not count fuel fails
    /// with [`RuntimeError::FuelNotCounted`]. Compiled code differs, so the
    /// compile cache keeps one entry per setting.
    pub meter_fuel: bool,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            cache_dir: None,
            max_memory_mib: 1024,
            max_instances: 64,
            meter_fuel: false,
        }
    }
}

/// The runtime shared by every plugin of the process.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    cache: CompileCache,
    connector_linker: Linker<PluginState>,
    scorer_linker: Linker<PluginState>,
    ticker_stop: Arc<AtomicBool>,
    /// Scorer calls computing at once: one per core. A computing guest
    /// yields at every epoch tick, so without this bound every concurrent
    /// scoring request would hold a live instance (its memory, a pool
    /// slot) and all of them would share the cores until their deadlines.
    computing: Arc<tokio::sync::Semaphore>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

impl Runtime {
    /// Creates the engine, the linkers and the epoch ticker.
    pub fn new(options: RuntimeOptions) -> Result<Runtime, RuntimeError> {
        let engine = Engine::new(&engine_config(&options)).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        let connector_linker =
            bindings::connector_linker(&engine).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        let scorer_linker = bindings::scorer_linker(&engine).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        let cache = CompileCache::new(options.cache_dir.clone(), &engine);
        let ticker_stop = Arc::new(AtomicBool::new(false));
        // Without the ticker no deadline would ever fire: refuse to run unbounded.
        spawn_epoch_ticker(&engine, ticker_stop.clone())
            .map_err(|e| RuntimeError::Engine(format!("cannot start the epoch ticker thread: {e}")))?;
        Ok(Runtime {
            inner: Arc::new(Inner {
                engine,
                cache,
                connector_linker,
                scorer_linker,
                ticker_stop,
                computing: Arc::new(tokio::sync::Semaphore::new(
                    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
                )),
            }),
        })
    }

    /// A turn to run a scorer call: waits while as many calls as there are
    /// cores compute. Taken before the call's deadline starts.
    pub(crate) async fn computing(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        // The semaphore is never closed; were it, the call runs unbounded
        // rather than not at all.
        Arc::clone(&self.inner.computing).acquire_owned().await.ok()
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The cache directory, if any.
    pub fn cache_dir(&self) -> Option<&Path> {
        self.inner.cache.dir()
    }

    /// Loads a component: from the compile cache when it holds this exact
    /// file for this engine configuration, else compiles it and fills the
    /// cache.
    pub fn load_component(
        &self,
        plugin: &PluginId,
        path: &Path,
        bytes: &[u8],
        sha256: &str,
    ) -> Result<(Component, CacheOutcome), RuntimeError> {
        check_component_header(path, bytes)?;
        self.inner
            .cache
            .load_or_compile(&self.inner.engine, plugin, bytes, sha256)
    }

    /// Fails unless `bytes` start like a WebAssembly component.
    pub fn check_header(&self, path: &Path, bytes: &[u8]) -> Result<(), RuntimeError> {
        check_component_header(path, bytes)
    }

    pub(crate) fn connector_linker(&self) -> &Linker<PluginState> {
        &self.inner.connector_linker
    }

    pub(crate) fn scorer_linker(&self) -> &Linker<PluginState> {
        &self.inner.scorer_linker
    }
}

fn engine_config(options: &RuntimeOptions) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.consume_fuel(options.meter_fuel);
    // Deterministic NaN bits keep scores identical across machines.
    config.cranelift_nan_canonicalization(true);
    // `XLA_HOST_PROFILE=perfmap` names JIT code for `perf report` (see BENCHMARKS.md).
    if std::env::var_os("XLA_HOST_PROFILE").is_some_and(|v| v == "perfmap") {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    let mut pool = PoolingAllocationConfig::default();
    let instances = options.max_instances.max(1);
    pool.total_component_instances(instances);
    // A Rust or Python component holds a handful of core instances and memories.
    pool.total_core_instances(instances * 8);
    pool.total_memories(instances * 4);
    pool.total_tables(instances * 8);
    pool.total_stacks(instances);
    let max_memory = options.max_memory_mib.saturating_mul(1024 * 1024);
    pool.max_memory_size(usize::try_from(max_memory).unwrap_or(usize::MAX));
    // Reset the low pages of a reused slot with memset (only the resident
    // ones, where the kernel can tell us) instead of madvise: a fresh instance
    // per call then takes no page faults on the pages every call touches.
    pool.linear_memory_keep_resident(KEEP_RESIDENT);
    pool.table_keep_resident(KEEP_RESIDENT);
    pool.pagemap_scan(wasmtime::Enabled::Auto);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

fn spawn_epoch_ticker(engine: &Engine, stop: Arc<AtomicBool>) -> std::io::Result<()> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("xla-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => return,
                }
            }
        })
        .map(drop)
}

/// A component starts with `\0asm`, then version 0x0d and layer 1; a core
/// module has version 1 and layer 0.
fn check_component_header(path: &Path, bytes: &[u8]) -> Result<(), RuntimeError> {
    let not = |reason: &str| RuntimeError::NotAComponent {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(not(
            "the file does not start with the WebAssembly magic bytes; build the plugin for wasm32-wasip2",
        ));
    }
    match &bytes[4..8] {
        [0x0d, 0x00, 0x01, 0x00] => Ok(()),
        [0x01, 0x00, 0x00, 0x00] => Err(not(
            "it is a core Wasm module, not a component; build it for the wasm32-wasip2 target (or wrap it with `wasm-tools component new`)",
        )),
        _ => Err(not("unknown WebAssembly version or layer")),
    }
}
