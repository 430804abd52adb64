//! Ingests numbered batches into a store for the crash test: resumes after
//! the stored cursor (first re-sending the last committed batch, as a
//! connector replaying after a crash would), commits each batch with its
//! number as the cursor, and prints `committed N` once the commit returned.
//!
//! Usage: store-ingest <data dir> <batches> <batch size>

use std::io::Write;
use xla_host::runtime::{Layer, Observation};
use xla_host::store::{CommitBatch, Provenance, Store};
use xla_host::store_sled::SledStore;

fn batch(n: u64, size: u64) -> Vec<Observation> {
    (0..size)
        .map(|i| Observation {
            id: format!("b{n}-{i}"),
            metric: "lost_time_minutes".into(),
            layer: Layer::Experience,
            value: (i % 97) as f64,
            at: (n as i64) * 60_000,
            dimensions: vec![
                ("assignment_group".into(), format!("group-{}", i % 7)),
                ("ticket".into(), format!("INC{n:05}{i:04}")),
            ],
        })
        .collect()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, batches, size] = args.as_slice() else {
        anyhow::bail!("usage: store-ingest <data dir> <batches> <batch size>");
    };
    let (batches, size): (u64, u64) = (batches.parse()?, size.parse()?);
    let store = SledStore::open(std::path::Path::new(dir))?;
    let provenance = Provenance {
        connector: "ingest".into(),
        plugin: "crash-test".into(),
        version: "0.1.0".into(),
        sha256: "0".repeat(64),
        sync_run: 1,
    };
    let start: u64 = store
        .cursor("crash", "ingest")
        .await?
        .map(|c| c.parse())
        .transpose()?
        .unwrap_or(0);
    let mut stdout = std::io::stdout();
    for n in start.max(1)..=batches {
        let summary = store
            .commit(CommitBatch {
                tenant: "crash".into(),
                source: "ingest".into(),
                provenance: provenance.clone(),
                observations: batch(n, size),
                cursor: Some(n.to_string()),
                ..Default::default()
            })
            .await?;
        if n == start && summary.unchanged as u64 != size {
            anyhow::bail!("replaying batch {n} changed the store: {summary:?}");
        }
        writeln!(stdout, "committed {n}")?;
        stdout.flush()?;
    }
    Ok(())
}
