//! Plugin logging: the `log` host import and the plugin's stdout/stderr, both
//! routed to tracing under the plugin's name and rate-limited so that a
//! chatty or hostile plugin cannot flood the operator's logs.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

/// Longest message kept; the rest is cut.
const MAX_MESSAGE_BYTES: usize = 4096;
/// How much of the guest's stderr is kept to explain a trap.
const STDERR_TAIL_BYTES: usize = 4096;

/// Severity, as the WIT `log.level`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// Token bucket shared by the `log` import and stdout/stderr of one instance.
#[derive(Debug)]
pub(crate) struct LogLimiter {
    plugin: String,
    per_second: f64,
    tokens: f64,
    last: Instant,
    dropped: u64,
}

impl LogLimiter {
    pub fn new(plugin: &str, per_second: u32) -> Self {
        let per_second = f64::from(per_second.max(1));
        LogLimiter {
            plugin: plugin.to_string(),
            per_second,
            tokens: per_second * 2.0,
            last: Instant::now(),
            dropped: 0,
        }
    }

    fn admit(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.per_second;
        self.tokens = (self.tokens + refill).min(self.per_second * 2.0);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            self.dropped += 1;
            false
        }
    }

    /// Writes one message to tracing if the budget allows.
    pub fn emit(&mut self, level: Level, message: &str) {
        if !self.admit() {
            return;
        }
        let message = sanitize(truncate(message));
        let plugin = self.plugin.as_str();
        match level {
            Level::Trace => tracing::trace!(target: "plugin", plugin, "{message}"),
            Level::Debug => tracing::debug!(target: "plugin", plugin, "{message}"),
            Level::Info => tracing::info!(target: "plugin", plugin, "{message}"),
            Level::Warn => tracing::warn!(target: "plugin", plugin, "{message}"),
            Level::Error => tracing::error!(target: "plugin", plugin, "{message}"),
        }
    }

    /// Reports and resets the count of dropped messages.
    pub fn report_dropped(&mut self) {
        if self.dropped > 0 {
            tracing::warn!(target: "plugin", plugin = %self.plugin, dropped = self.dropped, "log messages dropped by the rate limit");
            self.dropped = 0;
        }
    }
}

/// Escapes control and bidirectional characters, so a plugin cannot forge
/// log lines with newlines or rewrite the operator's terminal.
fn sanitize(message: &str) -> std::borrow::Cow<'_, str> {
    xla_types::untrusted::escape(message)
}

fn truncate(message: &str) -> &str {
    if message.len() <= MAX_MESSAGE_BYTES {
        return message;
    }
    let mut end = MAX_MESSAGE_BYTES;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    &message[..end]
}

/// The guest's stdout or stderr: complete lines go to the log; the last few
/// KiB of stderr are kept to explain a trap (a Rust panic prints there).
/// Writes never fail, so a guest that prints too much is not crashed by it.
#[derive(Clone)]
pub(crate) struct OutputPipe {
    inner: Arc<Mutex<PipeState>>,
}

struct PipeState {
    level: Level,
    limiter: Arc<Mutex<LogLimiter>>,
    line: Vec<u8>,
    tail: Vec<u8>,
}

impl OutputPipe {
    pub fn new(level: Level, limiter: Arc<Mutex<LogLimiter>>) -> Self {
        OutputPipe {
            inner: Arc::new(Mutex::new(PipeState {
                level,
                limiter,
                line: Vec::new(),
                tail: Vec::new(),
            })),
        }
    }

    /// The last bytes written, as text.
    pub fn tail(&self) -> String {
        match self.inner.lock() {
            Ok(state) => String::from_utf8_lossy(&state.tail).trim().to_string(),
            Err(_) => String::new(),
        }
    }

    fn write(&self, bytes: &[u8]) {
        let Ok(mut state) = self.inner.lock() else {
            return;
        };
        state.tail.extend_from_slice(bytes);
        if state.tail.len() > STDERR_TAIL_BYTES {
            let cut = state.tail.len() - STDERR_TAIL_BYTES;
            state.tail.drain(..cut);
        }
        for &byte in bytes {
            if byte == b'\n' {
                let line = std::mem::take(&mut state.line);
                let level = state.level;
                if let Ok(mut limiter) = state.limiter.lock() {
                    limiter.emit(level, &String::from_utf8_lossy(&line));
                }
            } else if state.line.len() < MAX_MESSAGE_BYTES {
                state.line.push(byte);
            }
        }
    }
}

impl wasmtime_wasi::cli::IsTerminal for OutputPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl wasmtime_wasi::cli::StdoutStream for OutputPipe {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl tokio::io::AsyncWrite for OutputPipe {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.write(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl crate::state::PluginState {
    /// The `log` import: the plugin's message under its name, rate-limited
    /// with its stdout and stderr.
    pub(crate) fn log_message(&self, level: Level, message: &str) {
        if let Ok(mut log) = self.log.lock() {
            log.emit(level, message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(sanitize("plain text"), "plain text");
        assert_eq!(sanitize("fake\nERROR line\u{1b}[2J"), "fake\\nERROR line\\u{1b}[2J");
    }
}
