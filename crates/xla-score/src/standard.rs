//! A standard set of XLAs, the ones the demo reports and the scoring
//! benchmark times: happiness, lost time, SLA compliance, first contact
//! resolution, DEX and the XLA index, monthly, with common targets.

use super::definition::XlaDefinition;

/// The set, without tenants (`standard_xlas` adds one).
const STANDARD: &str = r#"
[[xla]]
id = "incident-happiness"
name = "Incident happiness"
metrics = ["happiness_rating"]
scorer = "happiness"
group_by = "service"
period = "month"
targets = [{ from = 2026-01-01, value = 50.0 }]

[[xla]]
id = "lost-time"
name = "Lost time per ticket (min)"
metrics = ["lost_time_minutes"]
scorer = "lost-time"
score = "lost_time_mean"
group_by = "assignment_group"
period = "month"
direction = "lower"
targets = [{ from = 2026-01-01, value = 120.0 }]

[[xla]]
id = "sla-compliance"
name = "SLA compliance (%)"
metrics = ["sla_breached"]
scorer = "sla-compliance"
score = "sla_compliance"
group_by = "service"
period = "month"
targets = [{ from = 2026-01-01, value = 90.0 }]

[[xla]]
id = "first-contact-resolution"
name = "First contact resolution (%)"
metrics = ["first_contact_resolution"]
scorer = "fcr"
score = "first_contact_resolution"
group_by = "channel"
period = "month"
targets = [{ from = 2026-01-01, value = 60.0 }]

[[xla]]
id = "dex"
name = "Digital experience (DEX)"
metrics = ["dex_score"]
scorer = "dex"
score = "dex_score"
group_by = "device_model"
period = "month"
contract = { model = "dex", threshold = 70.0 }

[[xla]]
id = "xla-index"
name = "XLA index (X, O, T)"
metrics = ["happiness_rating", "sla_breached", "dex_score"]
scorer = "xla-index"
score = "xla_index"
period = "month"
targets = [{ from = 2026-01-01, value = 70.0 }]
penalty = { per_point = 500.0, cap = 10000.0 }
gain_share = { per_point = 250.0, cap = 5000.0 }
"#;

#[derive(serde::Deserialize)]
struct Xlas {
    xla: Vec<XlaDefinition>,
}

/// The standard XLAs for `tenant`.
pub fn standard_xlas(tenant: &str) -> Vec<XlaDefinition> {
    let with_tenant = STANDARD.replace("\n[[xla]]\n", &format!("\n[[xla]]\ntenant = {tenant:?}\n"));
    // A constant of this file, checked by the test below.
    let xlas: Xlas = toml::from_str(&with_tenant).expect("the standard XLAs parse");
    xlas.xla
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_xlas_parse_and_validate() {
        let xlas = standard_xlas("acme");
        assert_eq!(xlas.len(), 6);
        for xla in &xlas {
            assert_eq!(xla.tenant, "acme");
            assert_eq!(xla.validate(), Ok(()), "{}", xla.id);
        }
    }
}
