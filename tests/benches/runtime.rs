//! Runtime benchmarks: the overhead of a warm scorer call (a fresh instance
//! from the pre-linked `InstancePre` and the pooling allocator, plus the
//! call), against the same computation in native Rust; and loading a plugin
//! from the compile cache against compiling it.
//!
//! Run: `cargo bench -p xla-tests --bench runtime` (results in BENCHMARKS.md).

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::path::Path;
use xla_host::plugins::{LoadedPlugin, Pins, PluginPre, load_plugin};
use xla_host::runtime::{Aggregate, Layer, Limits, Runtime, RuntimeOptions, ScoreInput, ScorerPre};

#[allow(dead_code, reason = "the bench uses two of the guests")]
mod guests {
    include!(concat!(env!("OUT_DIR"), "/guests.rs"));
}

fn input() -> ScoreInput {
    let aggregate = |group: &str, count: u64, sum: f64| Aggregate {
        metric: "happiness_rating".into(),
        layer: Layer::Experience,
        group: Some(group.into()),
        count,
        sum,
        min: 0.0,
        max: 10.0,
        histogram: None,
    };
    ScoreInput {
        tenant: "bench".into(),
        window_start: 0,
        window_end: 1,
        group_by: Some("service".into()),
        parameters: "{}".into(),
        aggregates: vec![
            aggregate("Email", 507, 4243.0),
            aggregate("VPN", 538, 2729.0),
            aggregate("Laptop", 459, 3383.0),
        ],
    }
}

fn load(runtime: &Runtime, wasm: &str) -> LoadedPlugin {
    load_plugin(runtime, Path::new(wasm), &Pins::default()).expect("plugin loads")
}

fn mean_scorer(runtime: &Runtime) -> ScorerPre {
    match load(runtime, guests::MEAN).pre {
        PluginPre::Scorer(pre) => pre,
        PluginPre::Connector(_) => panic!("mean is a scorer"),
    }
}

/// What the `mean` plugin computes, natively: the peer of the warm call.
fn native_mean(input: &ScoreInput) -> Vec<(Option<String>, f64)> {
    input
        .aggregates
        .iter()
        .filter(|a| a.count > 0)
        .map(|a| (a.group.clone(), a.sum / a.count as f64))
        .collect()
}

fn warm_call(c: &mut Criterion) {
    let runtime = Runtime::new(RuntimeOptions::default()).expect("runtime");
    let mut session = mean_scorer(&runtime).session(Limits::default());
    let input = input();
    // The host calls scorers from its tokio runtime; so does the benchmark.
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    assert_eq!(tokio.block_on(session.score(&input, None)).expect("scores").len(), 3);
    let mut group = c.benchmark_group("scorer_call");
    group.bench_function("wasm_mean_instantiate_and_call", |b| {
        b.iter(|| black_box(tokio.block_on(session.score(black_box(&input), None)).expect("scores")))
    });
    group.bench_function("native_mean", |b| b.iter(|| black_box(native_mean(black_box(&input)))));
    group.finish();
}

fn plugin_load(c: &mut Criterion) {
    let cache = tempfile::tempdir().expect("tempdir");
    let cached = Runtime::new(RuntimeOptions {
        cache_dir: Some(cache.path().to_path_buf()),
        ..RuntimeOptions::default()
    })
    .expect("runtime");
    let uncached = Runtime::new(RuntimeOptions::default()).expect("runtime");
    let mut group = c.benchmark_group("plugin_load");
    group.sample_size(10);
    for (name, wasm) in [("json-feed", guests::JSON_FEED), ("mean", guests::MEAN)] {
        load(&cached, wasm); // fill the cache
        group.bench_function(format!("{name}_from_cache"), |b| {
            b.iter(|| black_box(load(&cached, wasm)))
        });
        group.bench_function(format!("{name}_compile"), |b| {
            b.iter(|| black_box(load(&uncached, wasm)))
        });
    }
    group.finish();
}

criterion_group!(benches, warm_call, plugin_load);
criterion_main!(benches);
