//! XLA Host's dashboard: the pages IT leaders, service owners and the MSP
//! read together in the monthly review, served by `xla-host serve` on the
//! API's socket under `/dashboard`.
//!
//! - **Same data, same rules.** Every page reads the API's own results
//!   ([`xla_api::results`]): the same computation, the same cache entry,
//!   the same tenant check, so a page's numbers are the API's numbers.
//! - **Sign-in** exchanges an API token for a session cookie
//!   ([`session`]); the session sees only its token's tenants and ends at
//!   sign-out, at the token's revocation or expiry, or after 8 hours.
//! - **Server-rendered** HTML from templates checked at compile time
//!   (askama); tables carry every number and work without JavaScript.
//!   Charts (uPlot) and live refresh (htmx) are vendored from npm at pinned
//!   versions and embedded in the binary ([`assets`]): nothing is fetched
//!   from anywhere at run time.
//! - **Untrusted text** (service names, ticket numbers, plugin output) is
//!   escaped by the templates; chart data travels in HTML attributes, never
//!   in a script.
#![deny(missing_docs)]

pub mod assets;
mod error;
mod format;
pub mod session;
mod views;
mod warm;

pub use error::PageError;
pub use session::Sessions;
pub use warm::{keep_warm, warm};

use axum::Router;
use axum::routing::{get, post};
use std::sync::Arc;
use xla_api::ApiState;

/// Scorer plugins the views run beside the configured XLAs' (lost time by
/// service and group, the Pareto curve and hotspots, the follow-up list);
/// a view whose scorer is not installed answers 503 naming it.
pub const VIEW_SCORERS: &[&str] = &["lost-time", "pareto", "follow-up"];

/// Where the dashboard lives on the API's socket.
pub const BASE: &str = "/dashboard";

/// What the pages read: the API's state and the sessions.
pub struct Dashboard {
    /// The API's state: store, engine, catalog, result cache.
    pub api: Arc<ApiState>,
    /// Signed-in sessions.
    pub sessions: Sessions,
}

/// Every page, asset and form of the dashboard, under [`BASE`].
pub fn router(api: Arc<ApiState>) -> Router {
    let state = Arc::new(Dashboard {
        api,
        sessions: Sessions::default(),
    });
    Router::new()
        .route("/", get(views::home))
        .route("/dashboard", get(views::home))
        .route("/dashboard/", get(views::home))
        .route(
            "/dashboard/sign-in",
            get(views::sign_in::form).post(views::sign_in::submit),
        )
        .route("/dashboard/sign-out", post(views::sign_in::sign_out))
        .route("/dashboard/assets/{name}", get(assets::serve))
        .route("/dashboard/tenants", get(views::pick_tenant))
        .route("/dashboard/tenants/{tenant}", get(views::tenant_home))
        .route("/dashboard/tenants/{tenant}/scorecard", get(views::scorecard::page))
        .route("/dashboard/tenants/{tenant}/xlas/{xla}", get(views::scorecard::detail))
        .route("/dashboard/tenants/{tenant}/sla-beside-xla", get(views::sla::page))
        .route("/dashboard/tenants/{tenant}/lost-time", get(views::lost_time::page))
        .route("/dashboard/tenants/{tenant}/xot", get(views::xot::page))
        .route("/dashboard/tenants/{tenant}/follow-up", get(views::follow_up::page))
        .route("/dashboard/tenants/{tenant}/tickets/{ticket}", get(views::ticket::page))
        .route("/dashboard/tenants/{tenant}/sources", get(views::sources::page))
        .route("/dashboard/{*rest}", get(views::not_found))
        .layer(axum::middleware::from_fn(views::security_headers))
        .with_state(state)
}
