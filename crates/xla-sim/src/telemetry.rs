//! Seeded device telemetry in the shape Nexthink Infinity reports it: one
//! laptop per employee of an [`Org`] and one [`DeviceDay`] per device per day
//! (DEX score, boot and logon durations, system crashes, free system drive
//! space, high CPU and memory time ratios).
//!
//! The same [`TelemetrySpec`] over the same [`Org`] always gives the same
//! [`Telemetry`] (ChaCha8 seeded from `seed`), so tests can compute the truth
//! and compare a sync against it. One pattern is planted for the scorers:
//! [`PLANTED_MODEL`] crashes several times as often as the other models
//! (daily mean at least [`PLANTED_MIN_CRASH_FACTOR`] times theirs) and its
//! DEX score averages well below 70, while the other models average 75-85.
//!
//! Values are stored as small fixed-point integers (tenths, thousandths) so
//! that millions of device-days stay compact and render to text exactly: the
//! accessors return `units / scale`, which parses back from its shortest
//! decimal form to the same `f64`.

use crate::org::Org;
use chrono::{DateTime, NaiveDate};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use serde::Serialize;

/// The device model whose crashes are several times the others' and whose
/// DEX score averages well below 70.
pub const PLANTED_MODEL: &str = "Surface Laptop 5";
/// The planted model's mean daily crashes are at least this many times the others'.
pub const PLANTED_MIN_CRASH_FACTOR: f64 = 4.0;
/// The planted model's mean DEX score is below this.
pub const PLANTED_MAX_MEAN_DEX: f64 = 70.0;

/// A day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// Models, their operating system and their weight in the fleet.
const MODELS: [(&str, &str, u32); 8] = [
    ("Latitude 7440", "Windows 11 23H2", 20),
    ("EliteBook 840 G9", "Windows 11 23H2", 16),
    ("ThinkPad T14 Gen 3", "Windows 11 22H2", 16),
    (PLANTED_MODEL, "Windows 11 23H2", 10),
    ("MacBook Pro 14 M3", "macOS 14.6", 12),
    ("Latitude 5540", "Windows 10 22H2", 10),
    ("ProBook 450 G10", "Windows 11 23H2", 8),
    ("ThinkPad X1 Carbon Gen 11", "Windows 11 23H2", 8),
];

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TelemetrySpec {
    /// Seed of the generator: the same seed gives the same telemetry.
    pub seed: u64,
    /// Number of days.
    pub days: u32,
    /// First day, unix milliseconds UTC (rounded down to midnight).
    pub start: i64,
}

/// A laptop, one per employee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Device {
    /// `LPT-000001` onwards, in employee order.
    pub name: String,
    /// Hardware model, e.g. `Latitude 7440`.
    pub model: &'static str,
    /// Operating system, e.g. `Windows 11 23H2`.
    pub os: &'static str,
    /// The employee's country.
    pub country: &'static str,
    /// Index into [`Org::employees`].
    pub employee: usize,
}

/// One device's day, in fixed-point units (see the accessors for the values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DeviceDay {
    /// DEX score in tenths (0-1000).
    pub dex_tenths: u16,
    /// Boot duration in tenths of a second.
    pub boot_tenths: u16,
    /// Logon duration in tenths of a second.
    pub logon_tenths: u16,
    /// Free space on the system drive in tenths of a percent (0-1000).
    pub free_drive_tenths: u16,
    /// Share of active time with high CPU, in thousandths (0-1000).
    pub cpu_permille: u16,
    /// Share of active time with high memory use, in thousandths (0-1000).
    pub memory_permille: u16,
    /// System crashes (BSOD, hard resets) in the day.
    pub crashes: u8,
}

impl DeviceDay {
    /// DEX score, 0-100.
    pub fn dex_score(&self) -> f64 {
        f64::from(self.dex_tenths) / 10.0
    }
    /// Boot duration, seconds.
    pub fn boot_duration_seconds(&self) -> f64 {
        f64::from(self.boot_tenths) / 10.0
    }
    /// Logon duration, seconds.
    pub fn logon_duration_seconds(&self) -> f64 {
        f64::from(self.logon_tenths) / 10.0
    }
    /// System crashes, count.
    pub fn system_crashes(&self) -> f64 {
        f64::from(self.crashes)
    }
    /// Free system drive space, percent.
    pub fn free_system_drive_percent(&self) -> f64 {
        f64::from(self.free_drive_tenths) / 10.0
    }
    /// High CPU time ratio, 0-1.
    pub fn high_cpu_time_ratio(&self) -> f64 {
        f64::from(self.cpu_permille) / 1000.0
    }
    /// High memory time ratio, 0-1.
    pub fn high_memory_time_ratio(&self) -> f64 {
        f64::from(self.memory_permille) / 1000.0
    }
    /// Every metric as `(name, value)`, in the order of `docs/metrics.md`.
    pub fn metrics(&self) -> [(&'static str, f64); 7] {
        [
            ("dex_score", self.dex_score()),
            ("boot_duration_seconds", self.boot_duration_seconds()),
            ("logon_duration_seconds", self.logon_duration_seconds()),
            ("system_crashes", self.system_crashes()),
            ("free_system_drive_percent", self.free_system_drive_percent()),
            ("high_cpu_time_ratio", self.high_cpu_time_ratio()),
            ("high_memory_time_ratio", self.high_memory_time_ratio()),
        ]
    }
}

/// Generated telemetry: devices and their days, day-major.
#[derive(Debug, Clone, Serialize)]
pub struct Telemetry {
    /// The spec it was generated from (`start` at midnight UTC).
    pub spec: TelemetrySpec,
    /// One device per employee.
    pub devices: Vec<Device>,
    /// `days * devices.len()` entries: day 0 for every device, then day 1, ...
    days: Vec<DeviceDay>,
}

impl Telemetry {
    /// Every device's values on day `day` (0-based), indexed like [`Telemetry::devices`].
    pub fn day(&self, day: u32) -> &[DeviceDay] {
        let n = self.devices.len();
        let start = (day as usize).saturating_mul(n).min(self.days.len());
        let end = start.saturating_add(n).min(self.days.len());
        &self.days[start..end]
    }

    /// Every device-day as `(day, device index, values)`, day-major.
    pub fn iter(&self) -> impl Iterator<Item = (u32, usize, &DeviceDay)> {
        let n = self.devices.len().max(1);
        self.days
            .iter()
            .enumerate()
            .map(move |(i, d)| ((i / n) as u32, i % n, d))
    }

    /// Number of device-days.
    pub fn len(&self) -> usize {
        self.days.len()
    }

    /// Whether there is no device-day.
    pub fn is_empty(&self) -> bool {
        self.days.is_empty()
    }

    /// Unix ms of the start of day `day`.
    pub fn day_start(&self, day: u32) -> i64 {
        self.spec.start + i64::from(day) * DAY_MS
    }

    /// The day index of a date, if it falls in the period.
    pub fn day_of(&self, date: NaiveDate) -> Option<u32> {
        let at = date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis();
        let offset = (at - self.spec.start).div_euclid(DAY_MS);
        (0..i64::from(self.spec.days))
            .contains(&offset)
            .then_some(offset as u32)
    }

    /// `YYYY-MM-DD` of day `day`.
    pub fn date_text(&self, day: u32) -> String {
        date_text(self.day_start(day))
    }
}

/// `YYYY-MM-DD` (UTC) of a unix-ms instant.
pub fn date_text(unix_ms: i64) -> String {
    DateTime::from_timestamp_millis(unix_ms)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// What stays the same for a device from day to day.
struct Profile {
    dex: f64,
    boot: f64,
    logon: f64,
    free: f64,
    cpu: f64,
    memory: f64,
    crash_p: f64,
}

/// Generates one device per employee and one day per device per day.
pub fn generate(org: &Org, spec: &TelemetrySpec) -> Telemetry {
    let spec = TelemetrySpec {
        start: spec.start.div_euclid(DAY_MS) * DAY_MS,
        ..*spec
    };
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed ^ 0x7e1e_4e77_0000_0001);
    let total: u32 = MODELS.iter().map(|m| m.2).sum();
    let mut devices = Vec::with_capacity(org.employees.len());
    let mut profiles = Vec::with_capacity(org.employees.len());
    for (i, employee) in org.employees.iter().enumerate() {
        let mut roll = rng.random_range(0..total);
        let &(model, os, _) = MODELS
            .iter()
            .find(|m| {
                let hit = roll < m.2;
                roll = roll.saturating_sub(m.2);
                hit
            })
            .unwrap_or(&MODELS[0]);
        devices.push(Device {
            name: format!("LPT-{:06}", i + 1),
            model,
            os,
            country: employee.country,
            employee: i,
        });
        profiles.push(profile(&mut rng, model == PLANTED_MODEL));
    }
    let mut days = Vec::with_capacity(devices.len() * spec.days as usize);
    let mut free: Vec<f64> = profiles.iter().map(|p| p.free).collect();
    for _ in 0..spec.days {
        for (profile, free) in profiles.iter().zip(free.iter_mut()) {
            *free = (*free + rng.random_range(-1.5..1.2)).clamp(2.0, 95.0);
            days.push(day(&mut rng, profile, *free));
        }
    }
    Telemetry { spec, devices, days }
}

fn profile(rng: &mut ChaCha8Rng, planted: bool) -> Profile {
    let (dex, crash_p, memory) = if planted {
        (rng.random_range(60.0..70.0), 0.35, rng.random_range(0.10..0.30))
    } else {
        (rng.random_range(76.0..88.0), 0.06, rng.random_range(0.02..0.15))
    };
    Profile {
        dex,
        boot: rng.random_range(25.0..90.0),
        logon: rng.random_range(8.0..40.0),
        free: rng.random_range(10.0..75.0),
        cpu: rng.random_range(0.01..0.15),
        memory,
        crash_p,
    }
}

fn day(rng: &mut ChaCha8Rng, p: &Profile, free: f64) -> DeviceDay {
    let mut crashes = 0u8;
    while crashes < 9 && rng.random::<f64>() < p.crash_p {
        crashes += 1;
    }
    let dex = p.dex + rng.random_range(-5.0..5.0) - 4.0 * f64::from(crashes);
    let boot = p.boot * rng.random_range(0.8..1.5) + 30.0 * f64::from(crashes);
    let logon = p.logon * rng.random_range(0.8..1.6);
    let cpu = p.cpu + rng.random_range(-0.01..0.05);
    let memory = p.memory + rng.random_range(-0.02..0.06);
    DeviceDay {
        dex_tenths: fixed(dex.clamp(0.0, 100.0), 10.0),
        boot_tenths: fixed(boot, 10.0),
        logon_tenths: fixed(logon, 10.0),
        free_drive_tenths: fixed(free, 10.0),
        cpu_permille: fixed(cpu.clamp(0.0, 1.0), 1000.0),
        memory_permille: fixed(memory.clamp(0.0, 1.0), 1000.0),
        crashes,
    }
}

fn fixed(value: f64, scale: f64) -> u16 {
    (value * scale).round().clamp(0.0, f64::from(u16::MAX)) as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::org::{self, OrgSpec};

    /// 2026-10-01T00:00:00Z.
    const START: i64 = 1_790_812_800_000;

    fn org(tickets: usize) -> Org {
        org::generate(&OrgSpec {
            seed: 7,
            tickets,
            start: START,
            days: 5,
        })
    }

    #[test]
    fn same_seed_same_data_and_one_device_per_employee() {
        let org = org(1_500);
        let spec = TelemetrySpec {
            seed: 3,
            days: 4,
            start: START + 5_000,
        };
        let a = generate(&org, &spec);
        let b = generate(&org, &spec);
        assert_eq!(a.devices, b.devices);
        assert_eq!(a.days, b.days);
        assert_eq!(a.spec.start, START);
        assert_eq!(a.devices.len(), org.employees.len());
        assert_eq!(a.len(), 4 * org.employees.len());
        assert_eq!(a.devices[122].name, "LPT-000123");
        assert_eq!(a.devices[5].country, org.employees[5].country);
        assert_eq!(a.date_text(1), "2026-10-02");
        assert_eq!(a.day_of(NaiveDate::from_ymd_opt(2026, 10, 4).expect("date")), Some(3));
        assert_eq!(a.day_of(NaiveDate::from_ymd_opt(2026, 10, 5).expect("date")), None);
        let other = generate(&org, &TelemetrySpec { seed: 4, ..spec });
        assert_ne!(a.days, other.days);
    }

    #[test]
    fn the_planted_model_crashes_more_and_scores_lower() {
        let org = org(10_000);
        let t = generate(
            &org,
            &TelemetrySpec {
                seed: 11,
                days: 10,
                start: START,
            },
        );
        let mut per_model: std::collections::BTreeMap<&str, (f64, f64, f64)> = Default::default();
        for (_, device, values) in t.iter() {
            let entry = per_model.entry(t.devices[device].model).or_default();
            entry.0 += 1.0;
            entry.1 += values.system_crashes();
            entry.2 += values.dex_score();
            assert!((0.0..=100.0).contains(&values.dex_score()));
            assert!((0.0..=1.0).contains(&values.high_cpu_time_ratio()));
        }
        assert_eq!(per_model.len(), MODELS.len());
        let (n, crashes, dex) = per_model[PLANTED_MODEL];
        let planted_crashes = crashes / n;
        assert!(dex / n < PLANTED_MAX_MEAN_DEX, "planted DEX {}", dex / n);
        for (model, (n, crashes, dex)) in per_model.iter().filter(|(m, _)| **m != PLANTED_MODEL) {
            assert!((75.0..=85.0).contains(&(dex / n)), "{model} DEX {}", dex / n);
            assert!(
                planted_crashes >= PLANTED_MIN_CRASH_FACTOR * crashes / n,
                "{model}: {} vs planted {planted_crashes}",
                crashes / n
            );
        }
    }

    #[test]
    fn values_render_and_parse_back_exactly() {
        let d = DeviceDay {
            dex_tenths: 784,
            boot_tenths: 1,
            logon_tenths: 333,
            free_drive_tenths: 999,
            cpu_permille: 7,
            memory_permille: 123,
            crashes: 2,
        };
        for (_, value) in d.metrics() {
            assert_eq!(value.to_string().parse::<f64>().expect("number"), value);
        }
        assert_eq!(std::mem::size_of::<DeviceDay>(), 14);
    }
}
