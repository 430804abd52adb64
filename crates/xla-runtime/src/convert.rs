//! Conversions from the generated bindings to the host's own types.

use super::connector::bindings::xla::plugin::types as wit;
use super::{Layer, Observation, PluginError};

pub(crate) fn layer(layer: wit::Layer) -> Layer {
    match layer {
        wit::Layer::Experience => Layer::Experience,
        wit::Layer::Operational => Layer::Operational,
        wit::Layer::Technical => Layer::Technical,
    }
}

pub(crate) fn layer_to_wit(layer: Layer) -> wit::Layer {
    match layer {
        Layer::Experience => wit::Layer::Experience,
        Layer::Operational => wit::Layer::Operational,
        Layer::Technical => wit::Layer::Technical,
    }
}

pub(crate) fn observation(o: wit::Observation) -> Observation {
    Observation {
        id: o.id,
        metric: o.metric,
        layer: layer(o.layer),
        value: o.value,
        at: o.at,
        dimensions: o.dimensions,
    }
}

/// The plugin's error, its message escaped and capped: a message is only
/// ever shown (terminal, log, API), never used as data.
pub(crate) fn plugin_error(e: wit::PluginError) -> PluginError {
    let shown = |m: String| xla_types::untrusted::escape_capped(&m, MAX_ERROR_MESSAGE_BYTES).into_owned();
    match e {
        wit::PluginError::Config(m) => PluginError::Config(shown(m)),
        wit::PluginError::Auth(m) => PluginError::Auth(shown(m)),
        wit::PluginError::RateLimited(s) => PluginError::RateLimited(s),
        wit::PluginError::Transient(m) => PluginError::Transient(shown(m)),
        wit::PluginError::Permanent(m) => PluginError::Permanent(shown(m)),
        wit::PluginError::BadData(m) => PluginError::BadData(shown(m)),
    }
}

/// Bytes of a plugin's error message kept; the rest is elided.
pub(crate) const MAX_ERROR_MESSAGE_BYTES: usize = 2048;
