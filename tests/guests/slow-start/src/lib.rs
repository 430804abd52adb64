//! A connector whose start function (`_initialize`, which the component
//! runs while it is instantiated, before any export is called) waits 20 s
//! on a host timer: the host must stop it at the call's deadline.

use xla_sdk::{Batch, Connector, ConnectorInfo, PluginError};

/// The component's start function: wit-component runs an exported
/// `_initialize` during instantiation.
#[unsafe(no_mangle)]
pub extern "C" fn _initialize() {
    std::thread::sleep(std::time::Duration::from_secs(20));
}

struct SlowStart;

impl Connector for SlowStart {
    type Config = serde_json::Value;

    fn info() -> ConnectorInfo {
        ConnectorInfo {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: env!("CARGO_PKG_DESCRIPTION").into(),
            config_schema: "{}".into(),
            metrics: Vec::new(),
            hosts: Vec::new(),
            media_types: Vec::new(),
        }
    }

    fn pull(_config: &serde_json::Value, _cursor: Option<&str>) -> Result<Batch, PluginError> {
        Ok(Batch::default())
    }
}

xla_sdk::export_connector!(SlowStart);
