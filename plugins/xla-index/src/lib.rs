//! `xla-index`: one 0-100 number per group combining the three layers of an
//! XLA, each first brought onto 0-100:
//!
//! - experience (X) = (happiness + 100) / 2, happiness (−100..100) from the
//!   `happiness_rating` histogram: % of 9-10 minus % of 0-6;
//! - operational (O) = the mean of the measures listed in `operational`:
//!   SLA compliance (percent of `sla_breached` that are 0) and first contact
//!   resolution (percent of `first_contact_resolution` that are 1), each
//!   taken where it has data;
//! - technical (T) = the mean `dex_score` (already 0-100).
//!
//! `xla_index` = Σ wᵢ·sᵢ / Σ wᵢ over the layers that have data and a weight
//! above 0 (default weights X 0.5, O 0.3, T 0.2): a missing layer does not
//! count as 0, the others are re-weighted. A group where no weighted layer
//! has data gets no index. The sample size is the number of observations
//! behind the layers used; the detail gives each used layer's weight,
//! effective weight, sub-score and inputs, and lists the weighted layers
//! that were `missing`.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use xla_sdk::aggregates::{AggregateTable, check_bool, check_range, ratings};
use xla_sdk::formulas::{happiness_percent, mean, percent_false, percent_true};
use xla_sdk::{Aggregate, PluginError, RowReader, Score, ScoreInput, Scorer, ScorerInfo};

/// 0-10 survey ratings: the experience layer.
pub const HAPPINESS: &str = "happiness_rating";
/// Breached SLAs: one operational measure.
pub const SLA_BREACHED: &str = "sla_breached";
/// First contact resolutions: the other operational measure.
pub const FIRST_CONTACT: &str = "first_contact_resolution";
/// Nexthink DEX scores: the technical layer.
pub const DEX: &str = "dex_score";

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Parameters {
    weights: Weights,
    operational: Vec<Operational>,
    min_sample: u64,
}

impl Default for Parameters {
    fn default() -> Self {
        Parameters {
            weights: Weights::default(),
            operational: vec![Operational::SlaCompliance, Operational::FirstContactResolution],
            min_sample: 1,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Weights {
    experience: f64,
    operational: f64,
    technical: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            experience: 0.5,
            operational: 0.3,
            technical: 0.2,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Operational {
    SlaCompliance,
    FirstContactResolution,
}

impl Parameters {
    fn check(&self) -> Result<(), PluginError> {
        let weights = [
            ("experience", self.weights.experience),
            ("operational", self.weights.operational),
            ("technical", self.weights.technical),
        ];
        if let Some((layer, weight)) = weights.iter().find(|(_, w)| !w.is_finite() || *w < 0.0) {
            return Err(PluginError::Config(format!(
                "parameters field `weights.{layer}`: a weight is a number ≥ 0, got {weight}"
            )));
        }
        if weights.iter().all(|(_, w)| *w == 0.0) {
            return Err(PluginError::Config(
                "parameters field `weights`: at least one layer needs a weight above 0".into(),
            ));
        }
        if self.operational.is_empty() {
            return Err(PluginError::Config(
                "parameters field `operational`: list at least one measure (`sla_compliance`, \
                 `first_contact_resolution`), or set `weights.operational` to 0"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// One layer's 0-100 sub-score in one group.
struct SubScore {
    layer: &'static str,
    weight: f64,
    score: f64,
    observations: u64,
    inputs: Map<String, Value>,
}

/// The composite XLA index scorer.
pub struct XlaIndex;

/// The aggregate of `metric` in `group` if it has at least `min_sample` observations.
fn usable<'a>(table: &AggregateTable<'a>, group: Option<&str>, metric: &str, min_sample: u64) -> Option<&'a Aggregate> {
    table.get(group, metric).filter(|a| a.count >= min_sample)
}

fn experience(table: &AggregateTable, group: Option<&str>, p: &Parameters) -> Result<Option<SubScore>, PluginError> {
    let Some(aggregate) = usable(table, group, HAPPINESS, p.min_sample) else {
        return Ok(None);
    };
    let Some(happiness) = ratings(aggregate)?.happiness() else {
        return Ok(None);
    };
    let mut inputs = Map::new();
    inputs.insert("happiness".into(), json!(happiness));
    inputs.insert("responses".into(), json!(aggregate.count));
    Ok(Some(SubScore {
        layer: "experience",
        weight: p.weights.experience,
        score: happiness_percent(happiness),
        observations: aggregate.count,
        inputs,
    }))
}

fn operational(table: &AggregateTable, group: Option<&str>, p: &Parameters) -> Option<SubScore> {
    let mut measures = Vec::new();
    let mut observations = 0;
    let mut inputs = Map::new();
    for measure in dedup(&p.operational) {
        let (metric, name, count_name) = match measure {
            Operational::SlaCompliance => (SLA_BREACHED, "sla_compliance", "slas"),
            Operational::FirstContactResolution => (FIRST_CONTACT, "first_contact_resolution", "tickets"),
        };
        let Some(aggregate) = usable(table, group, metric, p.min_sample) else {
            continue;
        };
        let value = match measure {
            Operational::SlaCompliance => percent_false(aggregate.sum, aggregate.count),
            Operational::FirstContactResolution => percent_true(aggregate.sum, aggregate.count),
        };
        let Some(value) = value else {
            continue;
        };
        measures.push(value);
        observations += aggregate.count;
        inputs.insert(name.into(), json!(value));
        inputs.insert(count_name.into(), json!(aggregate.count));
    }
    let score = mean(measures.iter().sum(), measures.len() as u64)?;
    Some(SubScore {
        layer: "operational",
        weight: p.weights.operational,
        score,
        observations,
        inputs,
    })
}

fn technical(table: &AggregateTable, group: Option<&str>, p: &Parameters) -> Option<SubScore> {
    let aggregate = usable(table, group, DEX, p.min_sample)?;
    let score = mean(aggregate.sum, aggregate.count)?;
    let mut inputs = Map::new();
    inputs.insert("dex_score".into(), json!(score));
    inputs.insert("scores".into(), json!(aggregate.count));
    Some(SubScore {
        layer: "technical",
        weight: p.weights.technical,
        score,
        observations: aggregate.count,
        inputs,
    })
}

fn dedup(measures: &[Operational]) -> Vec<Operational> {
    let mut unique: Vec<Operational> = Vec::new();
    for m in measures {
        if !unique.contains(m) {
            unique.push(*m);
        }
    }
    unique
}

/// The index of one group from its layers' sub-scores, or `None` when no
/// weighted layer has data.
fn index(group: Option<&str>, layers: [Option<SubScore>; 3], missing: Vec<&'static str>) -> Option<Score> {
    let used: Vec<SubScore> = layers.into_iter().flatten().filter(|s| s.weight > 0.0).collect();
    if used.is_empty() {
        return None;
    }
    let total_weight: f64 = used.iter().map(|s| s.weight).sum();
    let value = used.iter().map(|s| s.weight * s.score).sum::<f64>() / total_weight;
    let mut detail_layers = Map::new();
    for s in &used {
        let mut layer = Map::new();
        layer.insert("score".into(), json!(s.score));
        layer.insert("weight".into(), json!(s.weight));
        layer.insert("effective_weight".into(), json!(s.weight / total_weight));
        layer.extend(s.inputs.clone());
        detail_layers.insert(s.layer.into(), Value::Object(layer));
    }
    Some(Score {
        name: "xla_index".into(),
        group: group.map(str::to_string),
        value,
        sample_size: used.iter().map(|s| s.observations).sum(),
        detail: Some(json!({ "layers": detail_layers, "missing": missing }).to_string()),
    })
}

/// The layers with a weight above 0 but no data.
fn missing_layers(weights: &Weights, layers: &[Option<SubScore>; 3]) -> Vec<&'static str> {
    let names = ["experience", "operational", "technical"];
    let weights = [weights.experience, weights.operational, weights.technical];
    (0..3)
        .filter(|&i| weights[i] > 0.0 && layers[i].is_none())
        .map(|i| names[i])
        .collect()
}

/// Rejects impossible values in every aggregate read, also those too thin
/// to be used.
fn check_all(table: &AggregateTable) -> Result<(), PluginError> {
    for aggregate in table.of_metric(HAPPINESS) {
        ratings(aggregate)?;
    }
    for aggregate in table.of_metric(SLA_BREACHED).chain(table.of_metric(FIRST_CONTACT)) {
        check_bool(aggregate)?;
    }
    for aggregate in table.of_metric(DEX) {
        check_range(aggregate, 0.0, 100.0)?;
    }
    Ok(())
}

impl Scorer for XlaIndex {
    fn info() -> ScorerInfo {
        ScorerInfo {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: env!("CARGO_PKG_DESCRIPTION").into(),
            parameters_schema: include_str!("../parameters.schema.json").into(),
            metrics: vec![HAPPINESS.into(), SLA_BREACHED.into(), FIRST_CONTACT.into(), DEX.into()],
            needs_rows: false,
        }
    }

    fn score(input: &ScoreInput, _rows: Option<&mut RowReader>) -> Result<Vec<Score>, PluginError> {
        let parameters: Parameters = xla_sdk::parse_parameters(&input.parameters)?;
        parameters.check()?;
        let table = AggregateTable::new(input)?;
        check_all(&table)?;
        let mut scores = Vec::new();
        for group in table.groups() {
            let layers = [
                experience(&table, group, &parameters)?,
                operational(&table, group, &parameters),
                technical(&table, group, &parameters),
            ];
            let missing = missing_layers(&parameters.weights, &layers);
            scores.extend(index(group, layers, missing));
        }
        Ok(scores)
    }
}

xla_sdk::export_scorer!(XlaIndex);

#[cfg(test)]
mod tests {
    use super::*;
    use xla_sdk::Layer::{Experience, Operational as Ops, Technical};
    use xla_sdk::testkit::{aggregate, score_input};

    fn scores(parameters: &str, aggregates: Vec<Aggregate>) -> Result<Vec<Score>, PluginError> {
        XlaIndex::score(&score_input(parameters, aggregates), None)
    }

    fn detail(score: &Score) -> Value {
        serde_json::from_str(score.detail.as_deref().expect("a detail")).expect("JSON detail")
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    fn slas(met: usize, breached: usize) -> Vec<f64> {
        [vec![0.0; met], vec![1.0; breached]].concat()
    }

    /// The whole window has all three layers; VPN has no DEX scores.
    fn window() -> Vec<Aggregate> {
        // Whole window: 6 × 10, 2 × 8, 2 × 3 → happiness 60 − 20 = 40 → X = 70.
        // SLAs 18 of 20 met = 90, first contact 3 of 4 = 75 → O = 82.5. DEX 80, 60, 70 → T = 70.
        // VPN: ratings 3, 3, 3, 10 → happiness 25 − 75 = −50 → X = 25; SLAs 4 of 4 met → O = 100.
        vec![
            aggregate(
                HAPPINESS,
                Experience,
                None,
                &[10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 8.0, 8.0, 3.0, 3.0],
            ),
            aggregate(SLA_BREACHED, Ops, None, &slas(18, 2)),
            aggregate(FIRST_CONTACT, Ops, None, &[1.0, 1.0, 1.0, 0.0]),
            aggregate(DEX, Technical, None, &[80.0, 60.0, 70.0]),
            aggregate(HAPPINESS, Experience, Some("VPN"), &[3.0, 3.0, 3.0, 10.0]),
            aggregate(SLA_BREACHED, Ops, Some("VPN"), &slas(4, 0)),
            aggregate(FIRST_CONTACT, Ops, Some("VPN"), &[]),
        ]
    }

    #[test]
    fn weighted_index_by_hand() {
        let scores = scores("", window()).unwrap();
        assert_eq!(scores.len(), 2);
        let whole = &scores[0];
        assert_eq!((whole.name.as_str(), whole.group.as_deref()), ("xla_index", None));
        // 0.5 × 70 + 0.3 × 82.5 + 0.2 × 70 = 35 + 24.75 + 14.
        assert!(close(whole.value, 73.75), "{}", whole.value);
        assert_eq!(whole.sample_size, 10 + 20 + 4 + 3);
        let detail = detail(whole);
        assert_eq!(detail["layers"]["experience"]["score"], json!(70.0));
        assert_eq!(detail["layers"]["experience"]["happiness"], json!(40.0));
        assert_eq!(detail["layers"]["operational"]["sla_compliance"], json!(90.0));
        assert_eq!(detail["layers"]["operational"]["first_contact_resolution"], json!(75.0));
        assert_eq!(detail["layers"]["operational"]["score"], json!(82.5));
        assert_eq!(detail["layers"]["technical"]["score"], json!(70.0));
        assert_eq!(detail["missing"], json!([]));
    }

    #[test]
    fn a_missing_layer_reweights_the_others() {
        let scores = scores("", window()).unwrap();
        let vpn = &scores[1];
        assert_eq!(vpn.group.as_deref(), Some("VPN"));
        // (0.5 × 25 + 0.3 × 100) / 0.8 = 42.5 / 0.8.
        assert!(close(vpn.value, 53.125), "{}", vpn.value);
        assert_eq!(vpn.sample_size, 8);
        let detail = detail(vpn);
        assert_eq!(detail["missing"], json!(["technical"]));
        assert!(close(
            detail["layers"]["experience"]["effective_weight"].as_f64().unwrap(),
            0.625
        ));
        let operational = &detail["layers"]["operational"];
        assert_eq!(operational["score"], json!(100.0));
        assert!(operational.get("first_contact_resolution").is_none(), "{operational}");
        assert!(detail["layers"].get("technical").is_none());
    }

    #[test]
    fn custom_weights_and_measures() {
        // Experience only counts half as much as operations, technology not at all,
        // and operations is first contact resolution alone:
        // (1 × 70 + 2 × 75) / 3 = 220 / 3.
        let parameters = r#"{"weights": {"experience": 1, "operational": 2, "technical": 0},
                             "operational": ["first_contact_resolution"]}"#;
        let scores = scores(parameters, window()).unwrap();
        assert!(close(scores[0].value, 220.0 / 3.0), "{}", scores[0].value);
        let whole = detail(&scores[0]);
        assert!(whole["layers"].get("technical").is_none());
        assert_eq!(whole["missing"], json!([]));
        // VPN has no first contact data: experience alone.
        assert!(close(scores[1].value, 25.0), "{}", scores[1].value);
        assert_eq!(detail(&scores[1])["missing"], json!(["operational"]));
    }

    #[test]
    fn min_sample_makes_thin_metrics_missing() {
        // At 5, VPN's 4 ratings and 4 SLAs are too few: VPN gets no index;
        // the whole window loses first contact (4) and DEX (3).
        let scores = scores(r#"{"min_sample": 5}"#, window()).unwrap();
        assert_eq!(scores.len(), 1);
        // (0.5 × 70 + 0.3 × 90) / 0.8 = 62 / 0.8.
        assert!(close(scores[0].value, 77.5), "{}", scores[0].value);
    }

    #[test]
    fn groups_without_data_get_nothing() {
        let scores = scores("", vec![aggregate(DEX, Technical, Some("Tablets"), &[])]).unwrap();
        assert!(scores.is_empty(), "{scores:?}");
    }

    #[test]
    fn bad_weights_are_config_errors() {
        for parameters in [
            r#"{"weights": {"experience": -1}}"#,
            r#"{"weights": {"experience": 0, "operational": 0, "technical": 0}}"#,
            r#"{"operational": []}"#,
            r#"{"operational": ["happiness"]}"#,
        ] {
            let err = scores(parameters, window()).unwrap_err();
            assert!(matches!(err, PluginError::Config(_)), "{parameters}: {err:?}");
        }
    }

    #[test]
    fn a_rating_aggregate_without_histogram_is_bad_data() {
        let mut rated = aggregate(HAPPINESS, Experience, Some("VPN"), &[3.0, 9.0]);
        rated.histogram = None;
        let err = scores("", vec![rated]).unwrap_err();
        assert!(matches!(err, PluginError::BadData(_)), "{err:?}");
        assert!(err.to_string().contains("`happiness_rating` for group `VPN`"), "{err}");
    }

    #[test]
    fn describes_what_it_reads() {
        let info = XlaIndex::info();
        assert_eq!(info.metrics, [HAPPINESS, SLA_BREACHED, FIRST_CONTACT, DEX]);
        assert!(!info.needs_rows);
        assert!(serde_json::from_str::<Value>(&info.parameters_schema).is_ok());
    }
}
