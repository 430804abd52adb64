//! The metric vocabulary (`docs/metrics.md`): each metric's layer, so the
//! aggregates a scorer reads say whether they are X, O or T.

use xla_types::Layer;

const EXPERIENCE: &[&str] = &[
    "happiness_rating",
    "lost_time_minutes",
    "factor_selected",
    "sentiment_rating",
    "pulse_rating",
];

const TECHNICAL: &[&str] = &[
    "dex_score",
    "boot_duration_seconds",
    "logon_duration_seconds",
    "system_crashes",
    "free_system_drive_percent",
    "high_cpu_time_ratio",
    "high_memory_time_ratio",
    "app_crash_ratio",
    "app_freezes",
    "page_load_seconds",
];

/// The layer of a metric: X and T metrics by the vocabulary, anything else
/// operational (the vocabulary's O metrics, and metrics it does not list).
pub fn layer_of(metric: &str) -> Layer {
    if EXPERIENCE.contains(&metric) || metric.ends_with("_rating") {
        Layer::Experience
    } else if TECHNICAL.contains(&metric) {
        Layer::Technical
    } else {
        Layer::Operational
    }
}
