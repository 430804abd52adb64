//! A hostile connector for the sandbox tests. Its config names the attack:
//! `{"attack": "spin"}`, `{"attack": "hog", "mib": 512}`, `{"attack": "fetch",
//! "url": "..."}`, `{"attack": "upload", "url": "...", "kib": N}`, `{"attack": "panic"}`, `{"attack": "snoop"}`,
//! `{"attack": "flood-observations", "count": N}`, `{"attack": "flood-log",
//! "lines": N}`, or `{"attack": "none"}` to behave.

use serde::Deserialize;
use xla_sdk::{Batch, Connector, ConnectorInfo, Layer, Observation, PluginError};

#[derive(Debug, Deserialize)]
#[serde(tag = "attack", rename_all = "kebab-case", deny_unknown_fields)]
enum Attack {
    None,
    Spin,
    Hog {
        mib: u64,
    },
    Fetch {
        url: String,
    },
    Upload {
        url: String,
        kib: usize,
    },
    Panic,
    Snoop,
    FloodObservations {
        count: u64,
    },
    FloodLog {
        lines: u64,
    },
    /// Says more follows, forever, without moving its cursor.
    Stall,
}

struct Hostile;

fn observation(metric: &str, value: f64) -> Observation {
    Observation::new(metric, metric, Layer::Technical, value, 0)
}

fn spin() -> ! {
    let mut counter = 0u64;
    loop {
        counter = std::hint::black_box(counter.wrapping_add(1));
    }
}

fn hog(mib: u64) -> Vec<Observation> {
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    for _ in 0..mib.div_ceil(16) {
        let mut chunk = vec![1u8; 16 << 20];
        chunk[0] = 2;
        chunks.push(std::hint::black_box(chunk));
    }
    vec![observation("chunks", chunks.len() as f64)]
}

fn fetch(url: &str) -> Result<Vec<Observation>, PluginError> {
    let response = xla_sdk::http::get(url)?.send()?;
    let body: String = response.text().chars().take(500).collect();
    Ok(vec![
        observation("status", f64::from(response.status)).dim("body", body),
    ])
}

fn upload(url: &str, kib: usize) -> Result<Vec<Observation>, PluginError> {
    let response = xla_sdk::http::post(url)?.body(vec![b'u'; kib * 1024]).send()?;
    Ok(vec![observation("status", f64::from(response.status))])
}

/// Everything the plugin can learn about its host, as observations.
fn snoop() -> Vec<Observation> {
    let env: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
    let args = std::env::args().count();
    let attempts = [
        std::fs::read_to_string("/etc/passwd").map(|_| ()),
        std::fs::read_dir("/").map(|_| ()),
        std::fs::read_dir(".").map(|_| ()),
        std::fs::write("/tmp/xla-hostile", b"x"),
        std::fs::metadata("/proc/self/environ").map(|_| ()),
    ];
    let opened = attempts.iter().filter(|r| r.is_ok()).count();
    vec![
        observation("env_vars", env.len() as f64).dim("names", env.join(",")),
        observation("args", args as f64),
        observation("fs_successes", opened as f64),
    ]
}

fn flood_observations(count: u64) -> Vec<Observation> {
    let padding = "x".repeat(1024);
    (0..count)
        .map(|i| Observation::new(format!("o{i}"), "flood", Layer::Technical, 1.0, 0).dim("padding", padding.as_str()))
        .collect()
}

fn flood_log(lines: u64) -> Vec<Observation> {
    let line = "y".repeat(512);
    for i in 0..lines {
        eprintln!("flood {i} {line}");
        xla_sdk::log::info(&format!("flood {i} {line}"));
    }
    vec![observation("flooded", lines as f64)]
}

impl Connector for Hostile {
    type Config = Attack;

    fn info() -> ConnectorInfo {
        ConnectorInfo {
            name: "hostile".into(),
            version: "0.1.0".into(),
            description: "Test guest that attacks the sandbox.".into(),
            config_schema: "{}".into(),
            metrics: Vec::new(),
            hosts: vec!["*".into()],
            media_types: Vec::new(),
        }
    }

    fn pull(attack: &Attack, cursor: Option<&str>) -> Result<Batch, PluginError> {
        if matches!(attack, Attack::Stall) {
            return Ok(Batch {
                observations: Vec::new(),
                cursor: cursor.map(str::to_string),
                more: true,
            });
        }
        let observations = match attack {
            Attack::Stall => Vec::new(),
            Attack::None => vec![observation("calm", 1.0)],
            Attack::Spin => spin(),
            Attack::Hog { mib } => hog(*mib),
            Attack::Fetch { url } => fetch(url)?,
            Attack::Upload { url, kib } => upload(url, *kib)?,
            Attack::Panic => panic!("hostile plugin panicked on purpose"),
            Attack::Snoop => snoop(),
            Attack::FloodObservations { count } => flood_observations(*count),
            Attack::FloodLog { lines } => flood_log(*lines),
        };
        Ok(Batch {
            observations,
            cursor: None,
            more: false,
        })
    }
}

xla_sdk::export_connector!(Hostile);
