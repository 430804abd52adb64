//! The dashboard's sessions, tenancy and escaping through its router, over
//! a sled store on disk. (The browser test in `tests/all/dashboard.rs`
//! drives every view in Chromium against a real `serve`.)

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use std::collections::BTreeMap;
use std::sync::Arc;
use tower::ServiceExt;
use xla_api::auth::{self, TokenRequest};
use xla_api::{ApiConfig, ApiState, Catalog, TokenLimiter};
use xla_store::{CommitBatch, Provenance, Scope, Store};
use xla_types::{Layer, Observation};

const HOSTILE: &str = "<img src=x onerror=alert(1)>\"'";

struct Fixture {
    app: Router,
    store: Arc<dyn Store>,
    acme: String,
    globex: String,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    fixture_with(ApiConfig::default()).await
}

async fn fixture_with(config: ApiConfig) -> Fixture {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store: Arc<dyn Store> = Arc::new(xla_store_sled::SledStore::open(dir.path()).expect("a store"));
    let mut observation = Observation::new("resp-1", "happiness_rating", Layer::Experience, 3.0, 1_790_000_000_000);
    observation.dimensions = vec![
        ("service".into(), HOSTILE.into()),
        ("ticket".into(), "INC0000001".into()),
    ];
    store
        .commit(CommitBatch {
            tenant: "acme".into(),
            source: "survey".into(),
            provenance: Provenance {
                connector: "survey".into(),
                plugin: "happysignals".into(),
                version: "0.1.0".into(),
                sha256: "ab".repeat(32),
                sync_run: 1,
            },
            observations: vec![observation],
            cursor: None,
            ..Default::default()
        })
        .await
        .expect("a commit");
    let token = |tenant: &'static str| {
        let store = store.clone();
        async move {
            let request = TokenRequest {
                name: format!("{tenant} reader"),
                tenant: Some(tenant.into()),
                scope: Scope::Read,
                expires: None,
            };
            auth::issue(&*store, request, xla_types::now_ms())
                .await
                .expect("a token")
                .token
        }
    };
    let (acme, globex) = (token("acme").await, token("globex").await);
    let mut xlas = xla_score::standard_xlas("acme");
    xlas.extend(xla_score::standard_xlas("globex"));
    let state = Arc::new(ApiState {
        store: store.clone(),
        engine: None,
        catalog: Catalog {
            instances: Vec::new(),
            plugins: Vec::new(),
            xlas,
        },
        limiter: TokenLimiter::new(config.requests_per_second),
        config,
        receivers: BTreeMap::new(),
        webhook_secrets: BTreeMap::new(),
        metrics: None,
        results: Default::default(),
        sync: None,
    });
    Fixture {
        app: xla_api::app_with(state.clone(), xla_dashboard::router(state)),
        store,
        acme,
        globex,
        _dir: dir,
    }
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Answer {
    /// Whether the answer is an HTML page (the dashboard's own, even for errors).
    fn is_page(&self) -> bool {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/html"))
    }
}

async fn send(app: &Router, request: Request<Body>) -> Answer {
    let response = app.clone().oneshot(request).await.expect("an answer");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.expect("a body").to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

fn sign_in_request(token: &str, origin: &str) -> Request<Body> {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("token", token)
        .append_pair("next", "/dashboard/tenants/acme/sources")
        .finish();
    Request::post("/dashboard/sign-in")
        .header(header::HOST, "127.0.0.1:8470")
        .header(header::ORIGIN, origin)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .expect("a request")
}

/// Signs in with `token`; the `Cookie` header value of the session.
async fn sign_in(app: &Router, token: &str) -> String {
    let answer = send(app, sign_in_request(token, "http://127.0.0.1:8470")).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    let cookie = answer.headers[header::SET_COOKIE].to_str().expect("a cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    cookie.split(';').next().expect("name=value").to_string()
}

async fn page(app: &Router, path: &str, cookie: Option<&str>) -> Answer {
    let mut request = Request::get(path).header(header::HOST, "127.0.0.1:8470");
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    send(app, request.body(Body::empty()).expect("a request")).await
}

fn form_key(body: &str) -> String {
    body.split("name=\"form_key\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a form key on the page")
        .to_string()
}

#[tokio::test]
async fn signing_in_needs_a_live_token_and_this_hosts_own_form() {
    let f = fixture().await;
    let cross_site = send(&f.app, sign_in_request(&f.acme, "http://evil.example")).await;
    assert_eq!(cross_site.status, StatusCode::FORBIDDEN);
    assert!(!cross_site.headers.contains_key(header::SET_COOKIE));
    // Change the last character to another one: a fixed replacement would be the token itself
    // whenever the token already ends with it.
    let last = if f.acme.ends_with('0') { '1' } else { '0' };
    let wrong = format!("{}{last}", &f.acme[..f.acme.len() - 1]);
    assert_ne!(wrong, f.acme);
    let refused = send(&f.app, sign_in_request(&wrong, "http://127.0.0.1:8470")).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused.body.contains("not valid"), "{}", refused.body);
    assert!(!refused.headers.contains_key(header::SET_COOKIE));
    let cookie = sign_in(&f.app, &f.acme).await;
    assert!(!cookie.contains(&f.acme), "the cookie never carries the token");
    assert_eq!(
        page(&f.app, "/dashboard/tenants/acme/sources", Some(&cookie))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_session_sees_only_its_tokens_tenant() {
    let f = fixture().await;
    let signed_out = page(&f.app, "/dashboard/tenants/acme/sources", None).await;
    assert_eq!(signed_out.status, StatusCode::SEE_OTHER);
    assert_eq!(
        signed_out.headers[header::LOCATION],
        "/dashboard/sign-in?next=%2Fdashboard%2Ftenants%2Facme%2Fsources"
    );
    let acme = sign_in(&f.app, &f.acme).await;
    let globex = sign_in(&f.app, &f.globex).await;
    for path in [
        "/dashboard/tenants/globex/sources",
        "/dashboard/tenants/globex/scorecard",
        "/dashboard/tenants/nowhere/sources",
    ] {
        let answer = page(&f.app, path, Some(&acme)).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
        assert!(answer.is_page(), "an HTML page, not a problem document");
    }
    assert_eq!(
        page(&f.app, "/dashboard/tenants/globex/sources", Some(&globex))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        page(&f.app, "/dashboard/tenants/acme/tickets/INC0000001", Some(&globex))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // One tenant: no picker.
    let own = page(&f.app, "/dashboard/tenants/acme/sources", Some(&acme)).await;
    assert!(
        !own.body.contains("tenant-select"),
        "a one-tenant token gets no tenant picker"
    );
}

#[tokio::test]
async fn sign_out_needs_the_form_key_and_ends_the_session() {
    let f = fixture().await;
    let cookie = sign_in(&f.app, &f.acme).await;
    let sources = page(&f.app, "/dashboard/tenants/acme/sources", Some(&cookie)).await;
    let key = form_key(&sources.body);
    let sign_out = |key: String| {
        Request::post("/dashboard/sign-out")
            .header(header::HOST, "127.0.0.1:8470")
            .header(header::ORIGIN, "http://127.0.0.1:8470")
            .header(header::COOKIE, cookie.clone())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!("form_key={key}")))
            .expect("a request")
    };
    assert_eq!(
        send(&f.app, sign_out("0".repeat(64))).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        page(&f.app, "/dashboard/tenants/acme/sources", Some(&cookie))
            .await
            .status,
        StatusCode::OK
    );
    let out = send(&f.app, sign_out(key)).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(
        out.headers[header::SET_COOKIE]
            .to_str()
            .expect("text")
            .contains("Max-Age=0")
    );
    // The old cookie, replayed, is worth nothing.
    assert_eq!(
        page(&f.app, "/dashboard/tenants/acme/sources", Some(&cookie))
            .await
            .status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn revoking_the_token_ends_its_sessions() {
    let f = fixture().await;
    let cookie = sign_in(&f.app, &f.acme).await;
    let id = f.acme.split('_').nth(1).expect("a token id");
    auth::revoke(&*f.store, id, xla_types::now_ms()).await.expect("revoked");
    assert_eq!(
        page(&f.app, "/dashboard/tenants/acme/sources", Some(&cookie))
            .await
            .status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn source_controlled_text_is_escaped_and_pages_carry_a_strict_policy() {
    let f = fixture().await;
    let cookie = sign_in(&f.app, &f.acme).await;
    let ticket = page(&f.app, "/dashboard/tenants/acme/tickets/INC0000001", Some(&cookie)).await;
    assert_eq!(ticket.status, StatusCode::OK, "{}", ticket.body);
    assert!(
        !ticket.body.contains("<img src=x"),
        "a service name from the source is not markup"
    );
    assert!(
        ticket.body.contains("&#60;img src=x onerror=alert(1)&#62;") || ticket.body.contains("&lt;img src=x"),
        "{}",
        ticket.body
    );
    let csp = ticket.headers[header::CONTENT_SECURITY_POLICY].to_str().expect("text");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(ticket.headers[header::CACHE_CONTROL], "no-store");
    // A hostile ticket number in the URL comes back escaped in the 404.
    let missing = page(&f.app, "/dashboard/tenants/acme/tickets/%3Cscript%3E", Some(&cookie)).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(!missing.body.contains("<script>"), "{}", missing.body);
}

#[tokio::test]
async fn a_ticket_page_says_which_metrics_retention_cut() {
    let f = fixture().await;
    let cookie = sign_in(&f.app, &f.acme).await;
    let ticket = "/dashboard/tenants/acme/tickets/INC0000001";
    let before = page(&f.app, ticket, Some(&cookie)).await;
    assert!(!before.body.contains("id=\"retired\""), "{}", before.body);
    // The ticket's SLA, ten days before its rating, then retention of SLAs.
    let day = 86_400_000;
    let mut sla = Observation::new(
        "sla-1",
        "sla_breached",
        Layer::Operational,
        0.0,
        1_790_000_000_000 - 10 * day,
    );
    sla.dimensions = vec![("ticket".into(), "INC0000001".into())];
    f.store
        .commit(CommitBatch {
            tenant: "acme".into(),
            source: "servicenow".into(),
            provenance: Provenance {
                connector: "servicenow".into(),
                plugin: "servicenow".into(),
                version: "0.2.0".into(),
                sha256: "cd".repeat(32),
                sync_run: 1,
            },
            observations: vec![sla],
            ..Default::default()
        })
        .await
        .expect("a commit");
    f.store
        .retire_before("acme", Some("sla_breached"), 1_790_000_000_000 - day)
        .await
        .expect("retention");
    let after = page(&f.app, ticket, Some(&cookie)).await;
    assert_eq!(after.status, StatusCode::OK);
    assert!(
        after.body.contains("id=\"retired\"") && after.body.contains("<code>sla_breached</code>"),
        "{}",
        after.body
    );
    assert!(!after.body.contains("data-metric=\"sla_breached\""), "its row is gone");
}

#[tokio::test]
async fn assets_are_embedded_and_revalidated() {
    let f = fixture().await;
    for name in [
        "uPlot.iife.min.js",
        "htmx.min.js",
        "dashboard.js",
        "dashboard.css",
        "favicon.svg",
    ] {
        let answer = page(&f.app, &format!("/dashboard/assets/{name}"), None).await;
        assert_eq!(answer.status, StatusCode::OK, "{name}");
        let etag = answer.headers[header::ETAG].clone();
        let again = send(
            &f.app,
            Request::get(format!("/dashboard/assets/{name}"))
                .header(header::IF_NONE_MATCH, etag)
                .body(Body::empty())
                .expect("a request"),
        )
        .await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{name}");
    }
    assert!(xla_dashboard::assets::page_bytes() < 200 * 1024);
    assert_eq!(
        page(&f.app, "/dashboard/assets/../Cargo.toml", None).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn pages_count_against_the_tokens_rate() {
    let f = fixture_with(ApiConfig {
        requests_per_second: 1,
        ..ApiConfig::default()
    })
    .await;
    let cookie = sign_in(&f.app, &f.acme).await;
    let mut limited = None;
    for _ in 0..10 {
        let answer = page(&f.app, "/dashboard/tenants/acme/sources", Some(&cookie)).await;
        if answer.status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(answer);
            break;
        }
    }
    let limited = limited.expect("a 429 within 10 pages at 1 request/s");
    assert!(limited.headers.contains_key(header::RETRY_AFTER));
    assert!(limited.body.contains("try again in"), "{}", limited.body);
}

#[tokio::test]
async fn a_bad_query_is_the_pages_own_400_and_an_empty_field_means_not_given() {
    let f = fixture().await;
    let cookie = sign_in(&f.app, &f.acme).await;
    let bad = page(
        &f.app,
        "/dashboard/tenants/acme/sla-beside-xla?sla_target=abc",
        Some(&cookie),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.is_page(), "an HTML page, not a problem document");
    assert!(bad.body.contains("`abc` is not a number"), "{}", bad.body);
    // An emptied target box is "not given": past the query to the next check
    // (no scorers in this fixture: 503, as a page).
    let empty = page(
        &f.app,
        "/dashboard/tenants/acme/sla-beside-xla?sla_target=&happiness_target=",
        Some(&cookie),
    )
    .await;
    assert_eq!(empty.status, StatusCode::SERVICE_UNAVAILABLE, "{}", empty.body);
    assert!(empty.is_page(), "an HTML page, not a problem document");
}

#[tokio::test]
async fn signing_in_again_replaces_the_browsers_session() {
    let f = fixture().await;
    let first = sign_in(&f.app, &f.acme).await;
    let mut request = sign_in_request(&f.acme, "http://127.0.0.1:8470");
    request
        .headers_mut()
        .insert(header::COOKIE, first.parse().expect("a header"));
    let answer = send(&f.app, request).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(
        page(&f.app, "/dashboard/tenants/acme/sources", Some(&first))
            .await
            .status,
        StatusCode::SEE_OTHER
    );
}
