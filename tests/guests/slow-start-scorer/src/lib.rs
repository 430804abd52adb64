//! A scorer whose start function (`_initialize`, run while the component
//! is instantiated) waits 20 s on a host timer: the host must stop it at
//! the call's deadline, as it does a slow `score()`.

use xla_sdk::{PluginError, RowReader, Score, ScoreInput, Scorer, ScorerInfo};

/// The component's start function: wit-component runs an exported
/// `_initialize` during instantiation.
#[unsafe(no_mangle)]
pub extern "C" fn _initialize() {
    std::thread::sleep(std::time::Duration::from_secs(20));
}

struct SlowStart;

impl Scorer for SlowStart {
    fn info() -> ScorerInfo {
        ScorerInfo {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: env!("CARGO_PKG_DESCRIPTION").into(),
            parameters_schema: "{}".into(),
            metrics: Vec::new(),
            needs_rows: false,
        }
    }

    fn score(_input: &ScoreInput, _rows: Option<&mut RowReader>) -> Result<Vec<Score>, PluginError> {
        Ok(Vec::new())
    }
}

xla_sdk::export_scorer!(SlowStart);
