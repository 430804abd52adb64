/// The parts of a contract version that are the same in every version so
/// far, written once over the generated types of the module it is invoked
/// in: the host imports (`log`, `rows`), the linkers, and the conversions
/// of the scorer world and the shared types. The module must import
/// `wit` (types), `wit_log`, `wit_rows`, `wit_connector` and `wit_scorer`.
macro_rules! shared_with_every_version {
    () => {
        /// The linker of connectors: WASI (deny by default), `wasi:http`
        /// through the outbound hooks (with the request setters checked in
        /// guest memory), and `log`.
        pub(crate) fn add_connector_imports(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
            wit_log::add_to_linker::<PluginState, HasSelf<PluginState>>(linker, |state| state)
        }

        /// The imports of scorers of this version: `log` and `rows`.
        pub(crate) fn add_scorer_imports(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
            wit_log::add_to_linker::<PluginState, HasSelf<PluginState>>(linker, |state| state)?;
            wit_rows::add_to_linker::<PluginState, HasSelf<PluginState>>(linker, |state| state)
        }

        impl wit_log::Host for PluginState {
            fn log(&mut self, level: wit_log::Level, message: String) {
                let level = match level {
                    wit_log::Level::Trace => Level::Trace,
                    wit_log::Level::Debug => Level::Debug,
                    wit_log::Level::Info => Level::Info,
                    wit_log::Level::Warn => Level::Warn,
                    wit_log::Level::Error => Level::Error,
                };
                self.log_message(level, &message);
            }
        }

        impl wit_rows::Host for PluginState {}

        impl wit_rows::HostRowReader for PluginState {
            fn next_batch(
                &mut self,
                reader: Resource<RowCursor>,
                max: u32,
            ) -> wasmtime::Result<Vec<wit_rows::SubjectRow>> {
                let rows = crate::rows::next_batch(self, &reader, max)?;
                Ok(rows
                    .into_iter()
                    .map(|row| wit_rows::SubjectRow {
                        key: row.key,
                        dimensions: row.dimensions,
                        values: row.values,
                    })
                    .collect())
            }

            fn drop(&mut self, reader: Resource<RowCursor>) -> wasmtime::Result<()> {
                self.table.delete(reader)?;
                Ok(())
            }
        }

        fn layer(layer: wit::Layer) -> Layer {
            match layer {
                wit::Layer::Experience => Layer::Experience,
                wit::Layer::Operational => Layer::Operational,
                wit::Layer::Technical => Layer::Technical,
            }
        }

        fn layer_to_wit(layer: Layer) -> wit::Layer {
            match layer {
                Layer::Experience => wit::Layer::Experience,
                Layer::Operational => wit::Layer::Operational,
                Layer::Technical => wit::Layer::Technical,
            }
        }

        /// The plugin's error, its message escaped and capped: a message is
        /// only ever shown (terminal, log, API), never used as data.
        fn plugin_error(e: wit::PluginError) -> PluginError {
            let shown =
                |m: String| xla_types::untrusted::escape_capped(&m, super::MAX_ERROR_MESSAGE_BYTES).into_owned();
            match e {
                wit::PluginError::Config(m) => PluginError::Config(shown(m)),
                wit::PluginError::Auth(m) => PluginError::Auth(shown(m)),
                wit::PluginError::RateLimited(s) => PluginError::RateLimited(s),
                wit::PluginError::Transient(m) => PluginError::Transient(shown(m)),
                wit::PluginError::Permanent(m) => PluginError::Permanent(shown(m)),
                wit::PluginError::BadData(m) => PluginError::BadData(shown(m)),
            }
        }

        fn connector_info(info: wit_connector::ConnectorInfo) -> ConnectorInfo {
            ConnectorInfo {
                name: info.name,
                version: info.version,
                description: info.description,
                config_schema: info.config_schema,
                metrics: info
                    .metrics
                    .into_iter()
                    .map(|m| MetricInfo {
                        name: m.name,
                        layer: layer(m.layer),
                        unit: m.unit,
                        description: m.description,
                    })
                    .collect(),
                hosts: info.hosts,
                media_types: info.media_types,
            }
        }

        fn scorer_info(info: wit_scorer::ScorerInfo) -> ScorerInfo {
            ScorerInfo {
                name: info.name,
                version: info.version,
                description: info.description,
                parameters_schema: info.parameters_schema,
                metrics: info.metrics,
                needs_rows: info.needs_rows,
            }
        }

        fn score_input(input: &ScoreInput) -> wit_scorer::ScoreInput {
            wit_scorer::ScoreInput {
                tenant: input.tenant.clone(),
                window_start: input.window_start,
                window_end: input.window_end,
                group_by: input.group_by.clone(),
                parameters: input.parameters.clone(),
                aggregates: input.aggregates.iter().map(aggregate).collect(),
            }
        }

        fn aggregate(a: &Aggregate) -> wit_scorer::Aggregate {
            wit_scorer::Aggregate {
                metric: a.metric.clone(),
                layer: layer_to_wit(a.layer),
                group: a.group.clone(),
                count: a.count,
                sum: a.sum,
                min: a.min,
                max: a.max,
                histogram: a.histogram.clone(),
            }
        }

        fn scores(scores: Vec<wit_scorer::ScoreResult>) -> Vec<Score> {
            scores
                .into_iter()
                .map(|s| Score {
                    name: s.name,
                    group: s.group,
                    value: s.value,
                    sample_size: s.sample_size,
                    detail: s.detail,
                })
                .collect()
        }

        /// `describe()` of a connector of this version.
        pub(crate) async fn connector_describe(
            plugin: &ConnectorPlugin,
            store: &mut Store<PluginState>,
        ) -> wasmtime::Result<ConnectorInfo> {
            Ok(connector_info(
                plugin.xla_plugin_connector().call_describe(store).await?,
            ))
        }

        /// `check(config)` of a connector of this version.
        pub(crate) async fn connector_check(
            plugin: &ConnectorPlugin,
            store: &mut Store<PluginState>,
            config: &str,
        ) -> wasmtime::Result<Result<(), PluginError>> {
            Ok(plugin
                .xla_plugin_connector()
                .call_check(store, config)
                .await?
                .map_err(plugin_error))
        }

        /// `pull(config, cursor)` of a connector of this version, its step
        /// read as the host's [`Batch`] (`batch_changes` is the version's own).
        pub(crate) async fn connector_pull(
            plugin: &ConnectorPlugin,
            store: &mut Store<PluginState>,
            config: &str,
            cursor: Option<&str>,
        ) -> wasmtime::Result<Result<Batch, PluginError>> {
            let result = plugin
                .xla_plugin_connector()
                .call_pull(&mut *store, config, cursor)
                .await?;
            if let Ok(batch) = &result {
                store.data().memory.check_expansion(batch_expansion(batch))?;
            }
            Ok(result.map_err(plugin_error).and_then(|batch| {
                let (changes, cursor, more) = batch_changes(batch)?;
                Ok(Batch {
                    changes,
                    cursor,
                    more,
                })
            }))
        }

        /// `parse(config, media_type, body)` of a connector of this version,
        /// read as the host's [`Changes`] (`changes` is the version's own).
        pub(crate) async fn connector_parse(
            plugin: &ConnectorPlugin,
            store: &mut Store<PluginState>,
            config: &str,
            media_type: &str,
            body: &[u8],
        ) -> wasmtime::Result<Result<Changes, PluginError>> {
            let result = plugin
                .xla_plugin_connector()
                .call_parse(&mut *store, config, media_type, body)
                .await?;
            if let Ok(changes) = &result {
                store.data().memory.check_expansion(expansion(changes))?;
            }
            Ok(result.map_err(plugin_error).and_then(changes))
        }

        /// `describe()` of a scorer of this version.
        pub(crate) async fn scorer_describe(
            plugin: &ScorerPlugin,
            store: &mut Store<PluginState>,
        ) -> wasmtime::Result<ScorerInfo> {
            Ok(scorer_info(
                plugin.xla_plugin_scorer().call_describe(store).await?,
            ))
        }

        /// `score(input, rows)` of a scorer of this version.
        pub(crate) async fn scorer_score(
            plugin: &ScorerPlugin,
            store: &mut Store<PluginState>,
            input: &ScoreInput,
            rows: Option<Resource<RowCursor>>,
        ) -> wasmtime::Result<Result<Vec<Score>, PluginError>> {
            let input = score_input(input);
            Ok(plugin
                .xla_plugin_scorer()
                .call_score(store, &input, rows)
                .await?
                .map(scores)
                .map_err(plugin_error))
        }
    };
}
