//! XLA Host's HTTP API: JSON under `/v1`, every route scoped to a tenant
//! by its bearer token, errors as RFC 9457 problem documents, the OpenAPI
//! 3.1 document generated from the handlers.
//!
//! [`app`] builds the whole router from an [`ApiState`]; `xla-host serve`
//! binds it to a socket beside the scheduler. Data flows one way: the API
//! reads the store and the scoring engine and never writes behind the
//! sync engine's back (webhooks and imports go through the same connector
//! `parse()` and commit as a sync).
//!
//! Tenancy: tenant data lives under `/v1/tenants/{tenant}/...`. A token of
//! one tenant asking for another's data gets the same 404 as for a tenant
//! that does not exist, so it cannot learn which tenants exist.
#![deny(missing_docs)]

pub mod auth;
mod cache;
pub mod config;
mod error;
mod limit;
mod ops;
mod paging;
pub mod results;
mod routes;
pub use routes::data::{RetiredMetric, retired_metrics};
pub use routes::tenants::{InstanceStatus, SyncState, instance_status};
mod state;

pub use cache::ResultCache;
pub use config::ApiConfig;
pub use error::{ApiError, PROBLEM_JSON, Problem};
pub use limit::TokenLimiter;
pub use ops::install_metrics;
pub use results::{CACHE_HEADER, Fetched};
pub use state::{ApiState, Catalog, PluginEntry};

use axum::Router;
use std::sync::Arc;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

/// The document's fixed parts; every path comes from the handlers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "XLA Host API",
        description = "Experience level agreements over ServiceNow, HappySignals and Nexthink data: reports, series, breakdowns, tickets, connector instances and runs. Every route under /v1/tenants/{tenant} answers only for tenants the bearer token covers.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    modifiers(&BearerAuth),
    components(schemas(Problem)),
    tags(
        (name = "operations", description = "Health and readiness"),
        (name = "tenants", description = "Tenants, connector instances and their sync runs"),
        (name = "data", description = "The metrics vocabulary, series, breakdowns and tickets"),
        (name = "xlas", description = "XLA definitions, reports and the views built on them"),
        (name = "plugins", description = "Loaded plugins")
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("xla_<id>_<secret>")
                    .build(),
            ),
        );
    }
}

/// The router and the OpenAPI document it serves, from one list of handlers.
pub fn router_and_openapi(state: Arc<ApiState>) -> (Router, utoipa::openapi::OpenApi) {
    let (router, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::router())
        .with_state(state.clone())
        .split_for_parts();
    let mut openapi = openapi;
    common_responses(&mut openapi);
    (router, openapi)
}

/// Adds the answers any operation may give, whatever its handler: 500 and
/// 504 (the per-request timeout) everywhere, 429 (the per-token rate
/// limit, with `Retry-After`) wherever a token is needed.
fn common_responses(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, ResponseBuilder};
    let problem = |description: &str| {
        ResponseBuilder::new().description(description).content(
            PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
    };
    let too_many = problem("Over the token's rate ([api] requests_per_second); retry after `Retry-After` seconds")
        .header(
            "retry-after",
            HeaderBuilder::new()
                .schema(utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::Type::Integer))
                .description(Some("Seconds to wait"))
                .build(),
        )
        .build();
    let internal =
        problem("A failure inside the host; the detail is generic and the host's log has the request id").build();
    let timeout = problem("The request took longer than [api] request_timeout_s").build();
    for item in openapi.paths.paths.values_mut() {
        for operation in [item.get.as_mut(), item.post.as_mut()].into_iter().flatten() {
            let responses = &mut operation.responses.responses;
            if operation.security.as_ref().is_some_and(|s| !s.is_empty()) {
                responses.entry("429".into()).or_insert_with(|| too_many.clone().into());
            }
            responses.entry("500".into()).or_insert_with(|| internal.clone().into());
            responses.entry("504".into()).or_insert_with(|| timeout.clone().into());
        }
    }
}

/// The whole API: routes, `/v1/openapi.json`, and the layers every request
/// passes (request id, tracing, body cap, timeout, panics as 500s,
/// problem documents for every error).
pub fn app(state: Arc<ApiState>) -> Router {
    app_with(state, Router::new())
}

/// The API with `pages` (the dashboard) on the same socket, behind the same
/// layers; `pages` answers its own errors as HTML.
pub fn app_with(state: Arc<ApiState>, pages: Router) -> Router {
    let (router, openapi) = router_and_openapi(state.clone());
    let openapi = Arc::new(openapi);
    let router = router.route(
        "/v1/openapi.json",
        axum::routing::get(move || {
            let openapi = openapi.clone();
            async move { axum::Json(openapi.as_ref().clone()) }
        }),
    );
    let router = router.merge(pages);
    ops::layered(router, &state.config)
}
