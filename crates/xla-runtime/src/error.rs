//! Errors of the runtime. Every message names the plugin and, for a limit,
//! the limit, so an operator knows which plugin to look at and what to raise.

use super::PluginError;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Names a plugin in messages: ``plugin `servicenow` 0.1.0``.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PluginId {
    /// Plugin name.
    pub name: String,
    /// Plugin version.
    pub version: String,
}

impl PluginId {
    /// A plugin id.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        PluginId {
            name: name.into(),
            version: version.into(),
        }
    }
}

impl fmt::Display for PluginId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "plugin `{}` {}", self.name, self.version)
    }
}

/// What went wrong running a plugin.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The engine could not be created with the requested settings.
    #[error("cannot create the Wasm engine: {0}")]
    Engine(String),
    /// The file is not a WebAssembly component.
    #[error("{path} is not a WebAssembly component: {reason}")]
    NotAComponent {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Compilation failed.
    #[error("compiling {plugin} failed: {reason}")]
    Compile {
        /// The plugin.
        plugin: PluginId,
        /// Why.
        reason: String,
    },
    /// The compile cache could not be read or written.
    #[error("compile cache {path}: {source}")]
    Cache {
        /// The cache file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The component does not implement the expected world.
    #[error("{plugin} is not a {expected} plugin: {reason}")]
    WrongWorld {
        /// The plugin.
        plugin: PluginId,
        /// The world expected, e.g. `connector`.
        expected: &'static str,
        /// What was found instead.
        reason: String,
    },
    /// The component targets a contract version this host does not speak.
    #[error(
        "{plugin} was built for contract xla:plugin@{found}; this host supports {supported}. Rebuild it with a matching xla-sdk"
    )]
    ContractVersion {
        /// The plugin.
        plugin: PluginId,
        /// The version it exports.
        found: String,
        /// What the host supports.
        supported: &'static str,
    },
    /// The component needs imports the sandbox does not give its kind.
    #[error("{plugin} cannot be linked: {reason}")]
    Link {
        /// The plugin.
        plugin: PluginId,
        /// Why.
        reason: String,
    },
    /// The call ran past its wall-clock deadline.
    #[error("{plugin} ran past its {} deadline; the call was stopped and its output discarded", humanize(*.limit))]
    Deadline {
        /// The plugin.
        plugin: PluginId,
        /// The deadline.
        limit: Duration,
    },
    /// The call tried to grow memory past its cap.
    #[error("{plugin} tried to use more than its memory cap of {} MiB; the call was stopped and its output discarded", .limit / (1024 * 1024))]
    Memory {
        /// The plugin.
        plugin: PluginId,
        /// The cap in bytes.
        limit: u64,
    },
    /// The call used up its fuel.
    #[error("{plugin} ran out of its {limit} units of fuel; the call was stopped and its output discarded")]
    Fuel {
        /// The plugin.
        plugin: PluginId,
        /// The fuel given.
        limit: u64,
    },
    /// The call has a fuel limit, and the runtime was started without
    /// counting fuel ([`crate::RuntimeOptions::meter_fuel`]).
    #[error(
        "{plugin} has a fuel limit of {limit} units, but this runtime does not count fuel; start it with fuel counting (the host does when its config or command line sets `fuel`), or remove the limit"
    )]
    FuelNotCounted {
        /// The plugin.
        plugin: PluginId,
        /// The fuel limit asked for.
        limit: u64,
    },
    /// The guest trapped (a panic, an unreachable, an out-of-bounds access).
    #[error("{plugin} crashed (trap): {message}")]
    Trap {
        /// The plugin.
        plugin: PluginId,
        /// The trap and the guest's last stderr lines.
        message: String,
    },
    /// Every instance slot of the pool is in use.
    #[error("{plugin} could not start: every instance slot is in use; retry shortly or raise the pool size")]
    Busy {
        /// The plugin.
        plugin: PluginId,
    },
    /// `describe()` broke a rule of what a plugin may say about itself.
    #[error("{plugin}: describe() returned an unacceptable {field} ({reason}); fix the plugin")]
    Describe {
        /// The plugin.
        plugin: PluginId,
        /// The field, e.g. `metrics[2].description`.
        field: String,
        /// The rule it broke.
        reason: String,
    },
    /// A call returned an observation no path accepts (see
    /// `Observation::check`); nothing of that call is used.
    #[error("{plugin}: {call}() returned observation {record}, which is refused: {reason}; fix the plugin")]
    BadOutput {
        /// The plugin.
        plugin: PluginId,
        /// `pull` or `parse`.
        call: &'static str,
        /// The observation: its id and metric, escaped and shortened.
        record: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// The plugin answered with an error of its own.
    #[error("{plugin}: {error}")]
    Plugin {
        /// The plugin.
        plugin: PluginId,
        /// The error it returned.
        error: PluginError,
    },
}

impl RuntimeError {
    /// The plugin's own error, when that is what this is.
    pub fn plugin_error(&self) -> Option<&PluginError> {
        match self {
            RuntimeError::Plugin { error, .. } => Some(error),
            _ => None,
        }
    }
}

fn humanize(d: Duration) -> String {
    if d.as_millis().is_multiple_of(1000) {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}
