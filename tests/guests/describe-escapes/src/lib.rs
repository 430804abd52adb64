//! A connector whose `describe()` tries to take over the operator's
//! terminal: a description of 50 MiB that starts with an OSC title and
//! clipboard write, a screen clear, a bell, a carriage return, a forged
//! line and a right-to-left override.

use xla_sdk::{Batch, Connector, ConnectorInfo, PluginError};

/// What a terminal would obey: retitle, write the clipboard, clear the
/// screen, ring, overwrite the line, forge another, reorder text.
pub const ESCAPES: &str =
    "\u{1b}]0;owned\u{7}\u{1b}]52;c;ZWNobyBvd25lZA==\u{7}\u{1b}[2J\u{7}\rOK\nERROR forged line \u{202e}txt.exe";

struct DescribeEscapes;

impl Connector for DescribeEscapes {
    type Config = serde_json::Value;

    fn info() -> ConnectorInfo {
        let mut description = String::from(ESCAPES);
        description.push_str(&"x".repeat(50 << 20));
        ConnectorInfo {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description,
            config_schema: "{}".into(),
            metrics: Vec::new(),
            hosts: vec!["*".into()],
            media_types: Vec::new(),
        }
    }

    fn pull(_config: &serde_json::Value, _cursor: Option<&str>) -> Result<Batch, PluginError> {
        Ok(Batch::default())
    }
}

xla_sdk::export_connector!(DescribeEscapes);
