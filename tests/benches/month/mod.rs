//! One month (October 2026) of a 275,000-employee organisation, as the
//! connectors emit it: 300,000 resolved tickets (four operational
//! observations each with service, assignment group and channel, plus one
//! task SLA), 100,000 survey responses (rating, and lost time for seven in
//! ten) and 8,000,000 device-days of DEX, scaled by `scale`. Shared by the
//! scoring and API benchmarks (`mod month;`), all under tenant `bench`.

use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use xla_host::runtime::{Layer, Limits, Observation, Runtime, RuntimeOptions};
use xla_host::score::{Engine, XlaDefinition, load_scorers, standard_xlas};
use xla_host::store::{CommitBatch, Provenance, Store};
use xla_host::store_sled::SledStore;

/// The tenant every observation is stored under.
pub const TENANT: &str = "bench";

pub const DAY: i64 = 86_400_000;
/// 2026-10-01T00:00:00Z.
pub const MONTH_START: i64 = 1_790_812_800_000;
const BATCH: usize = 50_000;

const SERVICES: [&str; 10] = [
    "VPN", "Email", "Laptop", "Teams", "SAP", "Wi-Fi", "Printing", "Portal", "Phone", "Access",
];
const GROUPS: [&str; 12] = [
    "Service Desk",
    "Network Operations",
    "Workplace",
    "SAP Support",
    "Messaging",
    "Identity",
    "Field Services",
    "Collaboration",
    "Mobility",
    "Print Services",
    "Security",
    "Applications",
];
const MODELS: [&str; 6] = [
    "Surface Laptop 5",
    "ThinkPad X1",
    "MacBook Pro 14",
    "EliteBook 840",
    "Latitude 7440",
    "XPS 13",
];

/// A cheap, fixed mix of `i`.
fn mix(i: u64) -> u64 {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17)
}

fn at(i: u64) -> i64 {
    MONTH_START + (mix(i) % (31 * DAY as u64)) as i64
}

/// A ticket's observations: what the ServiceNow connector emits for a
/// resolved incident, and one task SLA.
fn ticket(i: u64) -> Vec<Observation> {
    let m = mix(i);
    let number = format!("INC{i:08}");
    let dims = |o: Observation| {
        o.dim("ticket", number.as_str())
            .dim("ticket_type", "incident")
            .dim("service", SERVICES[(m % 10) as usize])
            .dim("assignment_group", GROUPS[((m >> 8) % 12) as usize])
            .dim("channel", ["phone", "email", "self-service"][((m >> 12) % 3) as usize])
    };
    let id = format!("{:032x}", i);
    let t = at(i);
    let reassigned = (m >> 16) % 3;
    vec![
        dims(Observation::new(
            &id,
            "resolution_hours",
            Layer::Operational,
            ((m >> 20) % 200) as f64 / 4.0,
            t,
        )),
        dims(Observation::new(
            &id,
            "reassignment_count",
            Layer::Operational,
            reassigned as f64,
            t,
        )),
        dims(Observation::new(
            &id,
            "first_contact_resolution",
            Layer::Operational,
            f64::from(reassigned == 0),
            t,
        )),
        dims(Observation::new(&id, "ticket_resolved", Layer::Operational, 1.0, t)),
        Observation::new(
            format!("sla{i:08}"),
            "sla_breached",
            Layer::Operational,
            f64::from((m >> 24).is_multiple_of(10)),
            t,
        )
        .dim("ticket", number.as_str())
        .dim("sla", "Resolution P3"),
    ]
}

/// A survey response to ticket `i`: rating and (seven times in ten) lost time.
fn response(i: u64) -> Vec<Observation> {
    let m = mix(i ^ 0xABCD);
    let number = format!("INC{i:08}");
    let t = at(i) + 3_600_000;
    let mut out = vec![
        Observation::new(
            format!("r{i}"),
            "happiness_rating",
            Layer::Experience,
            (m % 11) as f64,
            t,
        )
        .dim("ticket", number.as_str()),
    ];
    if m % 10 < 7 {
        out.push(
            Observation::new(
                format!("r{i}"),
                "lost_time_minutes",
                Layer::Experience,
                ((m >> 8) % 480) as f64,
                t,
            )
            .dim("ticket", number.as_str()),
        );
    }
    out
}

/// Device-day `i`: its DEX score.
fn device_day(i: u64, devices: u64) -> Observation {
    let (device, day) = (i % devices, i / devices);
    let m = mix(i);
    Observation::new(
        format!("dev{device:06}/{day}"),
        "dex_score",
        Layer::Technical,
        50.0 + (m % 50) as f64,
        MONTH_START + day as i64 * DAY,
    )
    .dim("device", format!("DEV{device:06}"))
    .dim("device_model", MODELS[(device % 6) as usize])
}

pub async fn commit_all(store: &dyn Store, observations: impl Iterator<Item = Observation>) -> Result<u64> {
    let provenance = Provenance {
        connector: "bench".into(),
        plugin: "bench".into(),
        version: "0".into(),
        sha256: "0".into(),
        sync_run: 1,
    };
    let mut batch = Vec::with_capacity(BATCH);
    let mut total = 0;
    let mut observations = observations.peekable();
    while observations.peek().is_some() {
        batch.extend(observations.by_ref().take(BATCH));
        total += batch.len() as u64;
        store
            .commit(CommitBatch {
                tenant: TENANT.into(),
                source: "bench".into(),
                provenance: provenance.clone(),
                observations: std::mem::replace(&mut batch, Vec::with_capacity(BATCH)),
                cursor: None,
                ..Default::default()
            })
            .await?;
    }
    Ok(total)
}

/// What [`load`] stored.
pub struct Loaded {
    /// Observations.
    pub observations: u64,
    /// Resolved tickets.
    pub tickets: u64,
    /// Survey responses.
    pub responses: u64,
    /// Device-days.
    pub device_days: u64,
}

/// Stores the month at `scale` (1.0: the full organisation) into `store`.
pub async fn load(store: &dyn Store, scale: f64) -> Result<Loaded> {
    let tickets = (300_000.0 * scale) as u64;
    let responses = (100_000.0 * scale) as u64;
    let devices = (8_000_000.0 * scale / 31.0) as u64;
    let mut count = commit_all(store, (0..tickets).flat_map(ticket)).await?;
    // Every third ticket answered, as HappySignals' response rates go.
    count += commit_all(store, (0..responses).map(|r| r * 3 % tickets.max(1)).flat_map(response)).await?;
    count += commit_all(store, (0..devices * 31).map(|i| device_day(i, devices))).await?;
    Ok(Loaded {
        observations: count,
        tickets,
        responses,
        device_days: devices * 31,
    })
}

/// The demo's six XLAs for [`TENANT`] and an engine over `store` with
/// their built-in scorer plugins and the watermelon scorer, loaded from the
/// built plugins (`cargo xtask build-plugins`) with the tests' compile cache.
pub async fn engine(store: Arc<dyn Store>) -> Result<(Engine, Vec<XlaDefinition>)> {
    let target_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    let runtime = Runtime::new(RuntimeOptions {
        cache_dir: Some(target_dir.join("test-cache")),
        ..RuntimeOptions::default()
    })?;
    let xlas = standard_xlas(TENANT);
    // The dashboard's views run scorers of their own; the scoring benchmark
    // loads them too, unused.
    let names: Vec<&str> = xlas
        .iter()
        .map(|x| x.scorer.as_str())
        .chain(["watermelon"])
        .chain(xla_host::dashboard::VIEW_SCORERS.iter().copied())
        .collect();
    let scorers = load_scorers(
        &runtime,
        &target_dir.join("plugins"),
        &Default::default(),
        &BTreeMap::new(),
        names,
        &Limits::default(),
    )
    .await
    .context("loading the scorers (run `cargo xtask build-plugins`)")?;
    Ok((Engine::new(store, scorers, Limits::default()), xlas))
}

/// The ticket outcomes of the tickets resolved in `[from, to)` per service
/// and for the whole window, worked out from raw rows: each ticket's SLA
/// records and ratings (numbers are unique here, and every answer is given
/// after its ticket's opening, so each joins its number's ticket), read up
/// to a month after the window.
#[allow(dead_code)]
pub async fn outcomes_from_rows(store: &dyn Store, from: i64, to: i64) -> Result<xla_host::store::OutcomesBySlice> {
    use xla_host::store::TicketOutcome;
    let number = |o: &Observation| o.dimensions.iter().find(|(k, _)| k == "ticket").map(|(_, v)| v.clone());
    let mut outcomes: BTreeMap<String, (String, TicketOutcome, i64)> = BTreeMap::new();
    for row in store.observations(TENANT, "ticket_resolved", from, to).await? {
        let o = row.observation;
        let service = o
            .dimensions
            .iter()
            .find(|(k, _)| k == "service")
            .map(|(_, v)| v.clone());
        if let (Some(number), Some(service)) = (number(&o), service) {
            let empty = TicketOutcome {
                sla_met: None,
                rating: None,
            };
            outcomes.insert(number, (service, empty, i64::MIN));
        }
    }
    let later = to + 31 * DAY;
    for row in store
        .observations(TENANT, "sla_breached", from - 31 * DAY, later)
        .await?
    {
        if let Some((_, outcome, _)) = number(&row.observation).and_then(|n| outcomes.get_mut(&n)) {
            outcome.sla_met = Some(outcome.sla_met.unwrap_or(true) && row.observation.value == 0.0);
        }
    }
    for row in store
        .observations(TENANT, "happiness_rating", from - 31 * DAY, later)
        .await?
    {
        if let Some((_, outcome, latest)) = number(&row.observation).and_then(|n| outcomes.get_mut(&n))
            && row.observation.at > *latest
        {
            *latest = row.observation.at;
            outcome.rating = Some(row.observation.value);
        }
    }
    let mut by_slice = xla_host::store::OutcomesBySlice::new();
    for (service, outcome, _) in outcomes.into_values() {
        if outcome.sla_met.is_none() && outcome.rating.is_none() {
            continue;
        }
        by_slice.entry(None).or_default().add(&outcome);
        by_slice.entry(Some(service)).or_default().add(&outcome);
    }
    Ok(by_slice)
}

/// A sled store in `dir` (not durable: a benchmark's data) holding the
/// month at `scale`, loaded untimed; says what it loaded.
pub async fn store(dir: &Path, scale: f64) -> Result<Arc<dyn Store>> {
    let sled = SledStore::open(&dir.join("data"))?;
    sled.set_durable(false);
    let store: Arc<dyn Store> = Arc::new(sled);
    let loading = Instant::now();
    let loaded = load(&*store, scale).await?;
    println!(
        "loaded {} observations ({} tickets, {} responses, {} device-days) in {:.1} s (not timed)",
        loaded.observations,
        loaded.tickets,
        loaded.responses,
        loaded.device_days,
        loading.elapsed().as_secs_f64()
    );
    Ok(store)
}

/// The same month at `scale` in a new database of the throwaway PostgreSQL
/// cluster (`xla_store_pg::testing`), loaded untimed; says what it loaded.
#[allow(dead_code)]
pub async fn postgres_store(scale: f64) -> Result<Arc<dyn Store>> {
    let url = xla_store_pg::testing::shared().create_database().await?;
    let store: Arc<dyn Store> = Arc::new(xla_store_pg::PgStore::connect(&url).await?);
    let loading = Instant::now();
    let loaded = load(&*store, scale).await?;
    println!(
        "\npostgres: loaded {} observations in {:.1} s (not timed)",
        loaded.observations,
        loading.elapsed().as_secs_f64()
    );
    Ok(store)
}

/// The scale the benchmark was asked for: its first argument that is not a
/// flag (1.0 = the full organisation).
pub fn scale() -> f64 {
    std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(1.0)
}
