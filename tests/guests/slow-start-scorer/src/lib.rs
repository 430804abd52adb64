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
            name: "slow-start-scorer".into(),
            version: "0.1.0".into(),
            description: "Test guest: its start function waits 20 s.".into(),
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
