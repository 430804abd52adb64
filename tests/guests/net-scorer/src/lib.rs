//! A scorer built without the SDK whose world also imports
//! `wasi:http/outgoing-handler`. Scorers have no network: the host must
//! refuse to link it, so `score` never runs.

wit_bindgen::generate!({
    inline: r#"
        package test:net-scorer;

        world net-scorer {
            include xla:plugin/scorer-plugin@0.1.0;
            import wasi:http/outgoing-handler@0.2.12;
        }
    "#,
    path: ["../../../wit/since_v0.1.0"],
    world: "test:net-scorer/net-scorer",
    generate_all,
});

use exports::xla::plugin::scorer::{Guest, ScoreInput, ScoreResult, ScorerInfo};
use wasi::http::types::{Fields, OutgoingRequest, Scheme};
use xla::plugin::rows::RowReader;
use xla::plugin::types::PluginError;

struct NetScorer;

impl Guest for NetScorer {
    fn describe() -> ScorerInfo {
        ScorerInfo {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: env!("CARGO_PKG_DESCRIPTION").into(),
            parameters_schema: "{}".into(),
            metrics: Vec::new(),
            needs_rows: false,
        }
    }

    fn score(_input: ScoreInput, _rows: Option<RowReader>) -> Result<Vec<ScoreResult>, PluginError> {
        let request = OutgoingRequest::new(Fields::new());
        let _ = request.set_scheme(Some(&Scheme::Http));
        let _ = request.set_authority(Some("203.0.113.7:80"));
        match wasi::http::outgoing_handler::handle(request, None) {
            Ok(_) => Err(PluginError::Permanent("the request left".into())),
            Err(e) => Err(PluginError::Transient(format!("{e:?}"))),
        }
    }
}

export!(NetScorer);
