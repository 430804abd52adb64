//! Per-call limits and the memory limiter that enforces the memory cap.

use std::time::Duration;

/// Limits applied to every plugin call.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Wall-clock deadline of one call, in milliseconds.
    pub deadline_ms: u64,
    /// Linear-memory cap of one instance, in MiB (all its memories together).
    pub memory_mib: u64,
    /// Fuel (roughly, Wasm instructions) per call; none for unlimited.
    pub fuel: Option<u64>,
    /// Log messages a plugin may write per second (burst: twice that).
    pub log_per_second: u32,
    /// Largest request body a connector may send, in KiB.
    pub http_request_body_kib: u64,
    /// Largest response body a connector may receive, in KiB.
    pub http_response_body_kib: u64,
    /// Timeout of one outbound HTTP request, in milliseconds.
    pub http_timeout_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            deadline_ms: 30_000,
            memory_mib: 256,
            fuel: None,
            log_per_second: 50,
            http_request_body_kib: 1024,
            http_response_body_kib: 32 * 1024,
            http_timeout_ms: 20_000,
        }
    }
}

impl Limits {
    /// The call deadline.
    pub fn deadline(&self) -> Duration {
        Duration::from_millis(self.deadline_ms)
    }

    /// The memory cap in bytes.
    pub fn memory_bytes(&self) -> u64 {
        self.memory_mib.saturating_mul(1024 * 1024)
    }

    /// The outbound HTTP timeout.
    pub fn http_timeout(&self) -> Duration {
        Duration::from_millis(self.http_timeout_ms)
    }
}

/// Largest header map (`fields`) a guest can build, in bytes, counting
/// wasmtime-wasi-http's per-entry overhead.
pub(crate) const MAX_FIELDS_BYTES: usize = 16 * 1024;
/// Largest write to an outgoing body; one chunk is buffered while the next
/// is written, so an unsent body holds at most two.
pub(crate) const BODY_CHUNK_BYTES: usize = 16 * 1024;
/// The most host memory one resource of a guest's can hold: an unsent
/// request with a full header map (16 KiB), an 8 KiB path and two body
/// chunks (32 KiB), plus the small capped parts
/// (see `outbound::request_parts`).
pub(crate) const MAX_RESOURCE_BYTES: u64 = 64 * 1024;
/// Resources any instance may hold, however small its memory cap: enough
/// for a few requests in flight with their streams and pollables.
const MIN_RESOURCES: u64 = 64;
/// Resources no instance may exceed, however large its memory cap.
const MAX_RESOURCES: u64 = 2048;

impl Limits {
    /// Host memory an instance's resources (requests, header maps, body
    /// buffers, streams) may hold: a quarter of its memory cap, so that a
    /// plugin's whole footprint stays within 1.25 × `memory_mib` whatever it
    /// does (above the floor of [`MIN_RESOURCES`] resources, 4 MiB).
    pub fn host_memory_bytes(&self) -> u64 {
        self.max_resources() as u64 * MAX_RESOURCE_BYTES
    }

    /// Resources (wasmtime resource-table entries) one instance may hold at
    /// once: its host-memory allowance divided by what one can hold.
    pub fn max_resources(&self) -> usize {
        let slots = (self.memory_bytes() / 4 / MAX_RESOURCE_BYTES).clamp(MIN_RESOURCES, MAX_RESOURCES);
        usize::try_from(slots).unwrap_or(usize::MAX)
    }
}

/// Limits that override some of the defaults, e.g. for one connector instance.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitOverrides {
    /// See [`Limits::deadline_ms`].
    pub deadline_ms: Option<u64>,
    /// See [`Limits::memory_mib`].
    pub memory_mib: Option<u64>,
    /// See [`Limits::fuel`].
    pub fuel: Option<u64>,
    /// See [`Limits::log_per_second`].
    pub log_per_second: Option<u32>,
    /// See [`Limits::http_request_body_kib`].
    pub http_request_body_kib: Option<u64>,
    /// See [`Limits::http_response_body_kib`].
    pub http_response_body_kib: Option<u64>,
    /// See [`Limits::http_timeout_ms`].
    pub http_timeout_ms: Option<u64>,
}

impl Limits {
    /// These limits with `overrides` applied field by field.
    pub fn with(mut self, overrides: Option<&LimitOverrides>) -> Limits {
        let Some(o) = overrides else {
            return self;
        };
        self.deadline_ms = o.deadline_ms.unwrap_or(self.deadline_ms);
        self.memory_mib = o.memory_mib.unwrap_or(self.memory_mib);
        self.fuel = o.fuel.or(self.fuel);
        self.log_per_second = o.log_per_second.unwrap_or(self.log_per_second);
        self.http_request_body_kib = o.http_request_body_kib.unwrap_or(self.http_request_body_kib);
        self.http_response_body_kib = o.http_response_body_kib.unwrap_or(self.http_response_body_kib);
        self.http_timeout_ms = o.http_timeout_ms.unwrap_or(self.http_timeout_ms);
        self
    }

    /// Checks the limits make sense for a runtime whose pool allows
    /// `max_memory_mib` per instance.
    pub fn validate(&self, max_memory_mib: u64) -> Result<(), String> {
        if self.deadline_ms == 0 || self.http_timeout_ms == 0 {
            return Err("deadline_ms and http_timeout_ms must be above 0".into());
        }
        if self.memory_mib == 0 || self.memory_mib > max_memory_mib {
            return Err(format!(
                "memory_mib must be between 1 and the runtime's max_memory_mib ({max_memory_mib}), not {}",
                self.memory_mib
            ));
        }
        if self.fuel == Some(0) {
            return Err("fuel must be above 0 (leave it out for no fuel limit)".into());
        }
        Ok(())
    }
}

/// Raised inside a store when a memory grows past the cap; the trap carries
/// it so the host can name the limit.
#[derive(Debug, thiserror::Error)]
#[error("memory cap of {limit} bytes exceeded (asked for {asked} bytes in all)")]
pub(crate) struct MemoryCapExceeded {
    pub limit: u64,
    pub asked: u64,
}

/// Counts linear memory across all of an instance's memories.
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    limit: u64,
    used: u64,
}

impl MemoryLimiter {
    pub fn new(limit: u64) -> Self {
        MemoryLimiter { limit, used: 0 }
    }

    /// Refuses a host-side expansion of a guest's answer (`bytes` the host
    /// would allocate for it) past the memory cap, as the copy out of the
    /// guest is refused (wasmtime's hostcall fuel): a small answer that
    /// names things by index must not make the host allocate more than the
    /// cap by repeating an index.
    pub fn check_expansion(&self, bytes: u64) -> Result<(), MemoryCapExceeded> {
        if bytes > self.limit {
            return Err(MemoryCapExceeded {
                limit: self.limit,
                asked: bytes,
            });
        }
        Ok(())
    }
}

/// Tables are small in practice; this bounds a hostile guest's table growth.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let growth = desired.saturating_sub(current) as u64;
        let asked = self.used.saturating_add(growth);
        if asked > self.limit {
            // An error (rather than `Ok(false)`) traps at once with a reason we
            // can name, instead of the guest's allocator aborting anonymously.
            return Err(MemoryCapExceeded {
                limit: self.limit,
                asked,
            }
            .into());
        }
        self.used = asked;
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}
