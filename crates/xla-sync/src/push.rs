//! Pushed data: a body handed to a connector instance (a webhook delivery,
//! an imported file) is parsed by its connector's `parse()` in the sandbox,
//! with no network, and committed as that instance's data in one run of its
//! run log. The whole body is parsed before anything is stored, so a bad
//! body stores nothing; commits then go in atomic batches with no cursor (a
//! push never moves the sync cursor). Records are keyed as a sync keys
//! them, so the same delivery twice counts as unchanged.

use crate::SyncSetup;
use crate::config::ConnectorInstance;
use crate::schedule::{InstanceError, load_instance_plugin};
use xla_runtime::plugins::{Described, LoadedPlugin, PluginPre, check_identity};
use xla_runtime::{Changes, ConnectorInfo, ConnectorPre, Limits, PluginError, RuntimeError};
use xla_store::{DEFAULT_LEASE_TTL, Lease, Provenance, RunOutcome, RunRecord, Store, StoreError};
use xla_types::now_ms;

/// Observations per commit, by default.
const BATCH: usize = 50_000;

/// A connector instance ready to take pushed bodies.
#[derive(Clone)]
pub struct Receiver {
    instance: ConnectorInstance,
    plugin: LoadedPlugin,
    pre: ConnectorPre,
    info: ConnectorInfo,
    limits: Limits,
    batch: usize,
    /// The time-to-live of the instance's lease each push holds (`[sync] lease_ttl`).
    lease_ttl: std::time::Duration,
}

/// Why a push was refused or failed. Nothing of a refused push is stored.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The plugin could not be loaded or is not a connector.
    #[error(transparent)]
    Instance(#[from] InstanceError),
    /// `describe()` failed or disagrees with the manifest.
    #[error("connector instance `{instance}`: {message}")]
    Describe {
        /// Instance.
        instance: String,
        /// What failed.
        message: String,
    },
    /// The connector does not parse this media type.
    #[error("the connector of `{instance}` does not parse `{media_type}`; it declares: {declared}")]
    MediaType {
        /// Instance.
        instance: String,
        /// What was sent.
        media_type: String,
        /// What it declares (or "none").
        declared: String,
    },
    /// The body does not parse: the connector's message names the record.
    #[error("`{instance}` could not use the body as `{media_type}`: {source}; nothing was stored")]
    Parse {
        /// Instance.
        instance: String,
        /// Its media type.
        media_type: String,
        /// The runtime's error (the plugin's message, escaped).
        source: Box<RuntimeError>,
    },
    /// The store failed; batches before the failing one stay committed.
    #[error("`{instance}`: committing batch {batch} of {batches} failed: {source}; {kept}")]
    Store {
        /// Instance.
        instance: String,
        /// The failing batch, from 1.
        batch: usize,
        /// Batches in all.
        batches: usize,
        /// What stayed committed.
        kept: String,
        /// The store's error.
        source: Box<StoreError>,
    },
    /// Another host or process runs the instance and did not end within
    /// the wait: nothing was stored.
    #[error("{source}; the delivery was not stored, send it again")]
    Busy {
        /// [`crate::SyncError::Busy`], naming the holder.
        source: Box<crate::SyncError>,
    },
    /// The run lost the instance's lease while its batches committed
    /// (renewals failed: the store unreachable past the lease's time, or
    /// another holder took the instance over): the batches committed before
    /// stay, and the one in flight may have.
    #[error(
        "push to `{instance}`: this host lost the instance's lease while committing (its store unreachable past the lease's time, or another host took the instance over); {kept}"
    )]
    LeaseLost {
        /// Instance.
        instance: String,
        /// What stayed committed, and what to do.
        kept: String,
    },
}

/// How long a push waits for another holder's run of its instance to end.
pub const LEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

impl PushError {
    /// Whether the push stopped because it lost the instance's lease.
    pub fn lost_lease(&self) -> bool {
        match self {
            PushError::LeaseLost { .. } => true,
            PushError::Store { source, .. } => matches!(**source, StoreError::LeaseLost { .. }),
            _ => false,
        }
    }

    /// Whether the body, not the host, is at fault (a 4xx in the API).
    pub fn is_bad_body(&self) -> bool {
        match self {
            PushError::MediaType { .. } => true,
            PushError::Parse { source, .. } => {
                matches!(
                    source.plugin_error(),
                    Some(PluginError::BadData(_) | PluginError::Config(_) | PluginError::Permanent(_))
                ) || matches!(**source, RuntimeError::BadOutput { .. })
            }
            PushError::Store { source, .. } => matches!(**source, StoreError::BadObservation { .. }),
            _ => false,
        }
    }
}

impl Receiver {
    /// Loads the instance's connector and asks it to describe itself,
    /// holding `describe()` to its manifest.
    ///
    /// # Errors
    /// The plugin does not load, is not a connector, or its `describe()`
    /// fails or disagrees with its manifest.
    pub async fn prepare(
        runtime: &xla_runtime::Runtime,
        setup: SyncSetup<'_>,
        instance: &ConnectorInstance,
    ) -> Result<Receiver, PushError> {
        let plugin = load_instance_plugin(runtime, setup, instance)?;
        let PluginPre::Connector(pre) = &plugin.pre else {
            return Err(InstanceError::NotAConnector {
                instance: instance.name.clone(),
                plugin: plugin.id().to_string(),
            }
            .into());
        };
        let pre = pre.clone();
        let limits = setup.limits.clone().with(instance.limits.as_ref());
        let describe_error = |message: String| PushError::Describe {
            instance: instance.name.clone(),
            message,
        };
        let info = pre
            .session(limits.clone(), None)
            .describe()
            .await
            .map_err(|e| describe_error(format!("describe() failed: {e}")))?;
        check_identity(&plugin.path, &plugin.manifest, Described::connector(&info))
            .map_err(|e| describe_error(e.to_string()))?;
        Ok(Receiver {
            instance: instance.clone(),
            plugin,
            pre,
            info,
            limits,
            batch: BATCH,
            // Checked when the config loaded.
            lease_ttl: setup.sync.lease_ttl().unwrap_or(DEFAULT_LEASE_TTL),
        })
    }

    /// The same receiver with other per-call limits (`import --deadline-ms`).
    pub fn with_limits(mut self, limits: Limits) -> Receiver {
        self.limits = limits;
        self
    }

    /// The same receiver committing `batch` observations at a time (at least one).
    pub fn with_batch_size(mut self, batch: usize) -> Receiver {
        self.batch = batch.max(1);
        self
    }

    /// The instance's limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The instance.
    pub fn instance(&self) -> &ConnectorInstance {
        &self.instance
    }

    /// The media types its connector parses.
    pub fn media_types(&self) -> &[String] {
        &self.info.media_types
    }

    /// Refuses a media type the connector does not declare, before it is
    /// called. Parameters (`; charset=utf-8`) are not compared.
    ///
    /// # Errors
    /// [`PushError::MediaType`] listing what it declares.
    pub fn accepts(&self, media_type: &str) -> Result<(), PushError> {
        let wanted = essence(media_type);
        if self.info.media_types.iter().any(|declared| essence(declared) == wanted) {
            return Ok(());
        }
        Err(PushError::MediaType {
            instance: self.instance.name.clone(),
            media_type: xla_types::untrusted::escape_capped(media_type, 100).into_owned(),
            declared: if self.info.media_types.is_empty() {
                "none (it does not parse pushed bodies)".into()
            } else {
                self.info.media_types.join(", ")
            },
        })
    }

    /// Parses `body` in the sandbox (no network).
    ///
    /// # Errors
    /// [`PushError::MediaType`], [`PushError::Parse`].
    pub async fn parse(&self, media_type: &str, body: &[u8]) -> Result<Changes, PushError> {
        self.accepts(media_type)?;
        // No outbound policy: a pushed body needs no network, so every
        // request the connector might make is refused.
        let mut session = self.pre.session(self.limits.clone(), None);
        session
            .parse(&self.instance.config_json(), media_type, body)
            .await
            .map_err(|source| PushError::Parse {
                instance: self.instance.name.clone(),
                media_type: xla_types::untrusted::escape_capped(media_type, 100).into_owned(),
                source: Box::new(source),
            })
    }

    /// Parses `body` and commits its observations as one run of the
    /// instance's run log (completed, or failed with the error).
    ///
    /// # Errors
    /// Parse errors store nothing (and record no run); a store failure
    /// records a failed run, batches before it staying committed.
    pub async fn receive(&self, store: &dyn Store, media_type: &str, body: &[u8]) -> Result<RunRecord, PushError> {
        let changes = self.parse(media_type, body).await?;
        self.commit(store, changes).await
    }

    /// Commits parsed changes as one run, under the instance's lease
    /// (waiting up to [`LEASE_WAIT`] for another holder's run to end, and
    /// renewing it while the batches commit): records in batches, then the
    /// retractions and gaps with the last.
    ///
    /// # Errors
    /// [`PushError::Busy`] when another holder keeps the instance;
    /// [`PushError::LeaseLost`] when the lease is lost while committing,
    /// [`PushError::Store`], and the run is recorded as failed.
    pub async fn commit(&self, store: &dyn Store, changes: Changes) -> Result<RunRecord, PushError> {
        let instance = &self.instance;
        let mut lease = crate::lease::take(store, &instance.tenant, &instance.name, self.lease_ttl, LEASE_WAIT)
            .await
            .map_err(|e| match e {
                crate::SyncError::Store { source, .. } => self.store_error(source),
                busy => PushError::Busy { source: Box::new(busy) },
            })?;
        let result = self.commit_leased(store, changes, &mut lease).await;
        crate::lease::release(store, &lease, None).await;
        result
    }

    fn store_error(&self, source: StoreError) -> PushError {
        PushError::Store {
            instance: self.instance.name.clone(),
            batch: 0,
            batches: 0,
            kept: "nothing was stored".into(),
            source: Box::new(source),
        }
    }

    async fn commit_leased(
        &self,
        store: &dyn Store,
        changes: Changes,
        lease: &mut Lease,
    ) -> Result<RunRecord, PushError> {
        let store_error = |source: StoreError| self.store_error(source);
        let mut record = store.begin_run(lease, now_ms()).await.map_err(store_error)?;
        let token = lease.token;
        let ended = tokio::select! {
            result = self.commit_batches(store, changes, &mut record, token) => Ok(result),
            lost = crate::lease::keep(store, lease) => Err(lost),
        };
        let result = ended.unwrap_or_else(|lost| {
            tracing::warn!(instance = %self.instance.name, "{lost}");
            Err(PushError::LeaseLost {
                instance: self.instance.name.clone(),
                kept: kept_before_loss(&record),
            })
        });
        let lost = result.as_ref().is_err_and(PushError::lost_lease);
        record.finished = Some(crate::lease::run_ended(lease, record.started, lost));
        record.outcome = match &result {
            Ok(()) => RunOutcome::Completed,
            Err(e) => {
                record.error = Some(e.to_string());
                RunOutcome::Failed
            }
        };
        store.save_run(&record).await.map_err(store_error)?;
        crate::count_run(&record);
        result.map(|()| record)
    }

    async fn commit_batches(
        &self,
        store: &dyn Store,
        changes: Changes,
        record: &mut RunRecord,
        lease: u64,
    ) -> Result<(), PushError> {
        let manifest = &self.plugin.manifest;
        let provenance = Provenance {
            connector: self.instance.name.clone(),
            plugin: manifest.name.clone(),
            version: manifest.version.clone(),
            sha256: manifest.sha256.clone(),
            sync_run: record.run,
        };
        let chunks = chunk_records(changes, self.batch);
        let batches = chunks.len();
        for (i, chunk) in chunks.into_iter().enumerate() {
            // No cursor leaves the stored one as it is: the sync's own.
            let partial = chunk.partial.clone();
            let batch = crate::commit_batch(&self.instance.tenant, &provenance, chunk, None, Some(lease));
            let summary = store
                .commit(batch)
                .await
                .map_err(|source| PushError::Store {
                    instance: self.instance.name.clone(),
                    batch: i + 1,
                    batches,
                    kept: if matches!(source, StoreError::LeaseLost { .. }) {
                        let stays = match i {
                            0 => "nothing was stored".to_string(),
                            _ => format!("the {i} batch(es) before it stay committed"),
                        };
                        format!(
                            "another host took the instance over; {stays}: send the delivery again (what is stored counts as unchanged)"
                        )
                    } else if i == 0 {
                        "nothing was stored".into()
                    } else {
                        format!(
                            "the {i} batch(es) before it stay committed; send it again once fixed (those count as unchanged)"
                        )
                    },
                    source: Box::new(source),
                })?;
            crate::count_commit(record, &summary, &partial);
        }
        Ok(())
    }
}

/// What a push that lost its lease keeps, from its run record so far.
fn kept_before_loss(record: &RunRecord) -> String {
    if record.batches == 0 {
        return "nothing of the delivery was committed (the batch in flight may have been): send it again".into();
    }
    format!(
        "the {} batch(es) committed before stay ({} value(s) inserted, {} replaced; the batch in flight may have committed too): send the delivery again to store the rest (what is stored counts as unchanged)",
        record.batches, record.inserted, record.replaced
    )
}

/// Splits changes into commits of at most `size` metric values each; the
/// retractions and gaps go with the last, so they apply after every record.
fn chunk_records(changes: Changes, size: usize) -> Vec<Changes> {
    let Changes {
        records,
        retractions,
        partial,
        complete,
    } = changes;
    let mut chunks = Vec::new();
    let mut current = Changes::default();
    let mut values = 0;
    for record in records {
        if values > 0 && values + record.values.len() > size {
            chunks.push(std::mem::take(&mut current));
            values = 0;
        }
        values += record.values.len();
        current.records.push(record);
    }
    current.retractions = retractions;
    current.partial = partial;
    current.complete = complete;
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

/// `text/csv` of `Text/CSV; charset=utf-8`.
pub fn essence(media_type: &str) -> String {
    media_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}
