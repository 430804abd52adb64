//! A hostile connector for the sandbox tests. Its config names the attack:
//! `{"attack": "spin"}`, `{"attack": "hog", "mib": 512}`, `{"attack": "fetch",
//! "url": "..."}`, `{"attack": "upload", "url": "...", "kib": N}`, `{"attack": "panic"}`, `{"attack": "snoop"}`,
//! `{"attack": "flood-observations", "count": N}`, `{"attack": "flood-log",
//! "lines": N}`, `{"attack": "hoard-requests", "count": N, "body_kib": K,
//! "method_bytes": M}`, `{"attack": "escapes", "in": "error" | "cursor" |
//! "panic" | "data"}`, `{"attack": "bad-output", "what": "nan" | "infinity" |
//! "at-min"}`, `{"attack": "alias-strings", "count": N, "mib": M}`, or
//! `{"attack": "none"}` to behave.

use serde::Deserialize;
use xla_sdk::{Batch, Changes, Connector, ConnectorInfo, Layer, Observation, PluginError, Record};

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
    /// Builds `count` requests and never sends them, each with a body of
    /// `body_kib` written into the host's buffer and, when `method_bytes`
    /// is above 0, a method token that long.
    HoardRequests {
        count: u64,
        body_kib: u64,
        method_bytes: usize,
    },
    /// Puts terminal escape sequences where the host shows plugin text.
    Escapes {
        #[serde(rename = "in")]
        place: EscapePlace,
    },
    /// Returns an observation no path may accept.
    BadOutput {
        what: BadValue,
    },
    /// Returns `count` observations whose ids all point at one string of
    /// `mib` MiB: little guest memory, a huge copy on the host.
    AliasStrings {
        count: usize,
        mib: usize,
    },
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum EscapePlace {
    Error,
    Cursor,
    Panic,
    Data,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum BadValue {
    Nan,
    Infinity,
    AtMin,
}

/// What a terminal would obey: retitle, write the clipboard, clear the
/// screen, ring, overwrite the line, forge another, reorder text.
const ESCAPES: &str =
    "\u{1b}]0;owned\u{7}\u{1b}]52;c;ZWNobyBvd25lZA==\u{7}\u{1b}[2J\u{7}\rOK\nERROR forged line \u{202e}txt.exe\u{9b}1A";

struct Hostile;

/// Requests built and kept, never sent: the host holds their parts and
/// their bodies' buffered chunks for as long as the guest keeps them.
fn hoard_requests(count: u64, body_kib: u64, method_bytes: usize) -> Vec<Observation> {
    use xla_sdk::connector::bindings::wasi::http::types::{Fields, Method, OutgoingRequest};
    let method = if method_bytes > 0 {
        Method::Other("X".repeat(method_bytes))
    } else {
        Method::Post
    };
    let chunk = vec![b'h'; 1 << 20];
    let (mut kept, mut refused_methods, mut buffered) = (Vec::new(), 0u64, 0u64);
    for _ in 0..count {
        let request = OutgoingRequest::new(Fields::new());
        if request.set_method(&method).is_err() {
            refused_methods += 1;
        }
        let body = if body_kib > 0 { request.body().ok() } else { None };
        let stream = body.as_ref().and_then(|b| b.write().ok());
        if let Some(stream) = &stream {
            let mut left = body_kib * 1024;
            // Write until the host stops taking more (nobody reads the body).
            while left > 0 {
                let room = stream.check_write().unwrap_or(0).min(left).min(chunk.len() as u64);
                if room == 0 || stream.write(&chunk[..room as usize]).is_err() {
                    break;
                }
                left -= room;
                buffered += room;
            }
        }
        kept.push((request, body, stream));
    }
    let held = kept.len() as f64;
    std::mem::forget(kept);
    vec![
        observation("requests_held", held),
        observation("methods_refused", refused_methods as f64),
        observation("body_bytes_buffered", buffered as f64),
    ]
}

fn escapes(place: &EscapePlace) -> Result<Batch, PluginError> {
    match place {
        EscapePlace::Error => Err(PluginError::Permanent(ESCAPES.into())),
        EscapePlace::Panic => panic!("{ESCAPES}"),
        EscapePlace::Cursor => Ok(Batch {
            changes: each_a_record(vec![observation("calm", 1.0)]),
            cursor: Some(ESCAPES.into()),
            more: false,
        }),
        EscapePlace::Data => Ok(Batch {
            changes: each_a_record(vec![
                Observation::new(ESCAPES, "escapes", Layer::Technical, 1.0, 0).dim("service", ESCAPES),
            ]),
            cursor: None,
            more: false,
        }),
    }
}

/// Each observation as a record of its own. Never merged: merging would
/// drop the ids of the aliasing attack, freeing their shared buffer twice
/// inside the guest before the host ever sees it.
fn each_a_record(observations: Vec<Observation>) -> Changes {
    let records = observations
        .into_iter()
        .map(|o| Record {
            id: o.id,
            at: o.at,
            dimensions: o.dimensions.into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
            values: vec![xla_sdk::MetricValue {
                metric: o.metric.into(),
                layer: o.layer,
                value: o.value,
            }],
        })
        .collect();
    Changes::records(records)
}

/// Observations whose ids share one buffer. The canonical ABI allows it;
/// a host that copies each string would copy the buffer `count` times.
/// (The guest's own post-return would free the buffer `count` times, but
/// the host refuses the result before that.)
#[allow(unsafe_code)]
fn alias_strings(count: usize, mib: usize) -> Vec<Observation> {
    let mut big = std::mem::ManuallyDrop::new("a".repeat(mib << 20));
    let (ptr, len) = (big.as_mut_ptr(), big.len());
    (0..count)
        .map(|_| {
            // SAFETY: deliberately unsound aliasing, to attack the host.
            let id = unsafe { String::from_raw_parts(ptr, len, len) };
            Observation::new(id, "alias", Layer::Technical, 1.0, 0)
        })
        .collect()
}

fn bad_output(what: &BadValue) -> Observation {
    match what {
        BadValue::Nan => observation("bad", f64::NAN),
        BadValue::Infinity => observation("bad", f64::INFINITY),
        BadValue::AtMin => Observation::new("bad", "bad", Layer::Technical, 1.0, i64::MIN),
    }
}

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
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: env!("CARGO_PKG_DESCRIPTION").into(),
            config_schema: "{}".into(),
            metrics: Vec::new(),
            hosts: vec!["*".into()],
            media_types: Vec::new(),
        }
    }

    fn pull(attack: &Attack, cursor: Option<&str>) -> Result<Batch, PluginError> {
        if matches!(attack, Attack::Stall) {
            return Ok(Batch {
                changes: Changes::default(),
                cursor: cursor.map(str::to_string),
                more: true,
            });
        }
        if let Attack::Escapes { place } = attack {
            return escapes(place);
        }
        let observations = match attack {
            Attack::Stall | Attack::Escapes { .. } => Vec::new(),
            Attack::HoardRequests {
                count,
                body_kib,
                method_bytes,
            } => hoard_requests(*count, *body_kib, *method_bytes),
            Attack::BadOutput { what } => vec![bad_output(what)],
            Attack::AliasStrings { count, mib } => alias_strings(*count, *mib),
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
            changes: each_a_record(observations),
            cursor: None,
            more: false,
        })
    }
}

xla_sdk::export_connector!(Hostile);
