//! Logging to the host. Messages land in the host's log inside a span naming
//! the plugin; the host drops messages past its per-call rate limit, so a
//! chatty loop cannot flood the operator's logs.
//!
//! On the host target (tests) messages go to standard error.

/// Severity of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Very detailed diagnostics.
    Trace,
    /// Diagnostics for plugin authors.
    Debug,
    /// Normal progress.
    Info,
    /// Something odd that did not stop the call.
    Warn,
    /// Something failed.
    Error,
}

/// Writes one message to the host's log.
pub fn log(level: Level, message: &str) {
    emit(level, message);
}

/// Logs at info level.
pub fn info(message: &str) {
    emit(Level::Info, message);
}

/// Logs at warn level.
pub fn warn(message: &str) {
    emit(Level::Warn, message);
}

/// Logs at debug level.
pub fn debug(message: &str) {
    emit(Level::Debug, message);
}

#[cfg(target_arch = "wasm32")]
macro_rules! to_wit {
    ($wit:ident, $level:expr) => {
        match $level {
            Level::Trace => $wit::Level::Trace,
            Level::Debug => $wit::Level::Debug,
            Level::Info => $wit::Level::Info,
            Level::Warn => $wit::Level::Warn,
            Level::Error => $wit::Level::Error,
        }
    };
}

#[cfg(all(target_arch = "wasm32", feature = "connector"))]
fn emit(level: Level, message: &str) {
    use crate::connector::bindings::xla::plugin::log as wit;
    wit::log(to_wit!(wit, level), message);
}

#[cfg(all(target_arch = "wasm32", feature = "scorer", not(feature = "connector")))]
fn emit(level: Level, message: &str) {
    use crate::scorer::bindings::xla::plugin::log as wit;
    wit::log(to_wit!(wit, level), message);
}

#[cfg(all(target_arch = "wasm32", not(feature = "scorer"), not(feature = "connector")))]
fn emit(_level: Level, _message: &str) {}

#[cfg(not(target_arch = "wasm32"))]
fn emit(level: Level, message: &str) {
    eprintln!("[plugin {level:?}] {message}");
}
