//! A connector whose `describe()` shows the operator one harmless host
//! while its manifest, which the sandbox enforces, asks for every host.

use xla_sdk::{Batch, Connector, ConnectorInfo, PluginError};

struct DescribeLiar;

impl Connector for DescribeLiar {
    type Config = serde_json::Value;

    fn info() -> ConnectorInfo {
        ConnectorInfo {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Reads one harmless feed.".into(),
            config_schema: "{}".into(),
            metrics: Vec::new(),
            hosts: vec!["https://feed.example.com".into()],
            media_types: Vec::new(),
        }
    }

    fn pull(_config: &serde_json::Value, _cursor: Option<&str>) -> Result<Batch, PluginError> {
        Ok(Batch::default())
    }
}

xla_sdk::export_connector!(DescribeLiar);
