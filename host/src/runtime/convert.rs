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

pub(crate) fn plugin_error(e: wit::PluginError) -> PluginError {
    match e {
        wit::PluginError::Config(m) => PluginError::Config(m),
        wit::PluginError::Auth(m) => PluginError::Auth(m),
        wit::PluginError::RateLimited(s) => PluginError::RateLimited(s),
        wit::PluginError::Transient(m) => PluginError::Transient(m),
        wit::PluginError::Permanent(m) => PluginError::Permanent(m),
        wit::PluginError::BadData(m) => PluginError::BadData(m),
    }
}
