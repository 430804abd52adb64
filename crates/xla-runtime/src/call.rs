//! What every plugin call shares: a store armed with the limits, the
//! deadline around the call, and the translation of a failed call into a
//! [`RuntimeError`] that names the plugin and the limit it hit.

use super::bindings::{self, Contract};
use super::error::{PluginId, RuntimeError};
use super::limits::{Limits, MemoryCapExceeded};
use super::state::{Kind, PluginState};
use std::future::Future;
use tracing::Instrument;
use wasmtime::component::Component;
use wasmtime::{Engine, Store, Trap, UpdateDeadline};

/// How a bounded call ended.
pub(crate) enum Outcome<R> {
    /// The call returned.
    Done(R),
    /// The call trapped or a host import failed.
    Failed(wasmtime::Error),
    /// The wall-clock deadline passed while the call waited on I/O or
    /// yielded at an epoch tick.
    TimedOut,
    /// The call could not start under its limits.
    Refused(RuntimeError),
}

/// A store for one instance, with its memory limiter installed.
pub(crate) fn new_store(engine: &Engine, state: PluginState) -> Store<PluginState> {
    let mut store = Store::new(engine, state);
    store.limiter(|state| &mut state.memory);
    store
}

/// Sets the epoch deadline, the fuel and the outbound hooks' deadline for
/// the next call. Fails when the call has a fuel limit and the engine does
/// not count fuel: a limit is never dropped silently.
pub(crate) fn arm(limits: &Limits, store: &mut Store<PluginState>) -> Result<(), RuntimeError> {
    // The hooks' deadline is the timer's in `bounded`: a request waiting
    // for a rate-limit slot must not outlive the call.
    let deadline = tokio::time::Instant::now().checked_add(limits.deadline());
    store.data().hooks().set_deadline(deadline);
    // At every epoch tick a computing guest yields to the executor: the
    // task's other futures (the lease renewal of the run it serves) and the
    // worker thread's other tasks (the API) go on meanwhile. Past the
    // deadline it traps.
    let ends = std::time::Instant::now().checked_add(limits.deadline());
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        Ok(match ends {
            Some(ends) if std::time::Instant::now() < ends => UpdateDeadline::Yield(1),
            _ => UpdateDeadline::Interrupt,
        })
    });
    // Every copy from the guest to the host (an import's arguments, a call's
    // result) is charged per byte, strings once per reference: a result whose
    // many strings all point at one large one cannot make the host copy more
    // than the instance's memory cap (wasmtime's "hostcall fuel").
    store.set_hostcall_fuel(usize::try_from(limits.memory_bytes()).unwrap_or(usize::MAX));
    // Setting fuel fails only on an engine that does not count it
    // (`RuntimeOptions::meter_fuel`).
    match limits.fuel {
        Some(limit) => store.set_fuel(limit).map_err(|_| RuntimeError::FuelNotCounted {
            plugin: store.data().plugin.clone(),
            limit,
        }),
        // No limit: on an engine that counts fuel (another plugin has a
        // limit), more than any call can burn; on one that does not, nothing.
        None => {
            let _ = store.set_fuel(u64::MAX);
            Ok(())
        }
    }
}

/// Runs an async call under the deadline. The epoch interrupts a guest that
/// computes too long; the timer stops one that waits too long on the host.
pub(crate) async fn bounded<'a, R, F, Fut>(
    limits: &Limits,
    store: &'a mut Store<PluginState>,
    name: &'static str,
    call: F,
) -> Outcome<R>
where
    F: FnOnce(&'a mut Store<PluginState>) -> Fut,
    Fut: Future<Output = wasmtime::Result<R>> + 'a,
{
    let started = std::time::Instant::now();
    store.data_mut().call = Some((name, started));
    if let Err(refused) = arm(limits, store) {
        return Outcome::Refused(refused);
    }
    let mut unfinished = Unfinished {
        plugin: store.data().plugin.name.clone(),
        call: name,
        started,
        ended: false,
    };
    let span = span(&store.data().plugin, name);
    let outcome = match tokio::time::timeout(limits.deadline(), call(store).instrument(span)).await {
        Ok(Ok(value)) => Outcome::Done(value),
        Ok(Err(error)) => Outcome::Failed(error),
        Err(_) => Outcome::TimedOut,
    };
    unfinished.ended = true;
    outcome
}

/// Counts a call whose future is dropped before it ends (outcome
/// `cancelled`): its run's lease lost, a shutdown, a client gone. Such a
/// call never reaches [`finish`].
struct Unfinished {
    plugin: String,
    call: &'static str,
    started: std::time::Instant,
    ended: bool,
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        // A call that panicked is not one stopped from outside.
        if !self.ended && !std::thread::panicking() {
            count(std::mem::take(&mut self.plugin), self.call, "cancelled", self.started);
        }
    }
}

/// The value of a call that returned, or the error naming what stopped it.
pub(crate) fn finish<R>(limits: &Limits, store: &Store<PluginState>, outcome: Outcome<R>) -> Result<R, RuntimeError> {
    store.data().report_dropped_logs();
    let result = match outcome {
        Outcome::Done(value) => Ok(value),
        Outcome::Failed(error) => Err(classify(limits, store, error)),
        Outcome::TimedOut => Err(RuntimeError::Deadline {
            plugin: store.data().plugin.clone(),
            limit: limits.deadline(),
        }),
        Outcome::Refused(error) => Err(error),
    };
    record(store.data(), result.as_ref().err());
    result
}

/// Counts the call by plugin, call and outcome (`ok`: it returned, whatever
/// it returned; `deadline`, `memory`, `fuel`, `busy`, `trap`; `cancelled`
/// is counted by [`Unfinished`]), with its duration.
fn record(state: &PluginState, error: Option<&RuntimeError>) {
    let Some((call, started)) = state.call else { return };
    let outcome = match error {
        None => "ok",
        Some(RuntimeError::Deadline { .. }) => "deadline",
        Some(RuntimeError::Memory { .. }) => "memory",
        Some(RuntimeError::Fuel { .. } | RuntimeError::FuelNotCounted { .. }) => "fuel",
        Some(RuntimeError::Busy { .. }) => "busy",
        Some(_) => "trap",
    };
    count(state.plugin.name.clone(), call, outcome, started);
}

fn count(plugin: String, call: &'static str, outcome: &'static str, started: std::time::Instant) {
    metrics::counter!("xla_plugin_calls_total", "plugin" => plugin.clone(), "call" => call, "outcome" => outcome)
        .increment(1);
    metrics::histogram!("xla_plugin_call_duration_seconds", "plugin" => plugin, "call" => call)
        .record(started.elapsed().as_secs_f64());
}

/// The tracing span of one plugin call.
pub(crate) fn span(plugin: &PluginId, call: &'static str) -> tracing::Span {
    tracing::info_span!("plugin", name = %plugin.name, version = %plugin.version, call)
}

/// Names the limit a failed call hit, or describes the trap with the
/// guest's last stderr output (where a Rust panic message lands).
pub(crate) fn classify(limits: &Limits, store: &Store<PluginState>, error: wasmtime::Error) -> RuntimeError {
    let plugin = store.data().plugin.clone();
    if error.downcast_ref::<wasmtime::PoolConcurrencyLimitError>().is_some() {
        return RuntimeError::Busy { plugin };
    }
    if let Some(cap) = error.downcast_ref::<MemoryCapExceeded>() {
        return RuntimeError::Memory {
            plugin,
            limit: cap.limit,
        };
    }
    // wasmtime's "hostcall fuel" error type is private; its message is the
    // only way to tell that a copy from the guest passed the memory cap.
    if format!("{error:#}").contains("fuel allocated for hostcalls has been exhausted") {
        return RuntimeError::Memory {
            plugin,
            limit: limits.memory_bytes(),
        };
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => RuntimeError::Deadline {
            plugin,
            limit: limits.deadline(),
        },
        Some(Trap::OutOfFuel) => RuntimeError::Fuel {
            plugin,
            limit: limits.fuel.unwrap_or(u64::MAX),
        },
        _ => {
            let mut message = format!("{error:#}");
            let stderr = store.data().stderr.tail();
            if !stderr.is_empty() {
                message.push_str("; the plugin's last output: ");
                message.push_str(&stderr);
            }
            let message =
                xla_types::untrusted::escape_capped(&message, 2 * bindings::MAX_ERROR_MESSAGE_BYTES).into_owned();
            RuntimeError::Trap { plugin, message }
        }
    }
}

/// Checks that `component` exports `interface` at a supported version, and
/// says which.
pub(crate) fn check_export(
    engine: &Engine,
    plugin: &PluginId,
    component: &Component,
    kind: Kind,
) -> Result<Contract, RuntimeError> {
    let interface = kind.export();
    let kind = kind.name();
    let component_type = component.component_type();
    let names: Vec<String> = component_type
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let Some(found) = names.iter().find(|name| name.split('@').next() == Some(interface)) else {
        let reason = if names.is_empty() {
            format!(
                "it exports nothing; a {kind} exports `{interface}@{}`",
                bindings::NEWEST
            )
        } else {
            format!(
                "it exports {}; a {kind} exports `{interface}@{}`",
                names.join(", "),
                bindings::NEWEST
            )
        };
        return Err(RuntimeError::WrongWorld {
            plugin: plugin.clone(),
            expected: kind,
            reason,
        });
    };
    let version = found.split_once('@').map(|(_, v)| v).unwrap_or("none");
    Contract::of(version).ok_or_else(|| RuntimeError::ContractVersion {
        plugin: plugin.clone(),
        found: version.to_string(),
        supported: bindings::SUPPORTED,
    })
}

/// A linking failure, usually an import the sandbox does not provide.
pub(crate) fn link_error(plugin: &PluginId, kind: Kind, error: wasmtime::Error) -> RuntimeError {
    let allowed = match kind {
        Kind::Connector => "the xla:plugin contract, WASI and wasi:http",
        Kind::Scorer => "the xla:plugin contract and WASI (no network)",
    };
    RuntimeError::Link {
        plugin: plugin.clone(),
        reason: format!("{error:#}; a {} may import only {allowed}", kind.name()),
    }
}

/// A linked `InstancePre` that is not the world's shape.
pub(crate) fn wrong_world(plugin: &PluginId, kind: Kind, error: wasmtime::Error) -> RuntimeError {
    RuntimeError::WrongWorld {
        plugin: plugin.clone(),
        expected: kind.name(),
        reason: format!("{error:#}"),
    }
}
