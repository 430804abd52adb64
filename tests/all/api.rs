//! The HTTP API over a real socket: two tenants' data and tokens, every
//! route with a good and a bad request, tenant isolation table-driven over
//! every route of the served OpenAPI document, and problem documents for
//! every error.

use crate::support::{runtime, target_dir};
use reqwest::StatusCode;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use xla_host::api::auth::{self, TokenRequest};
use xla_host::api::{ApiConfig, ApiState, Catalog};
use xla_host::config::ConnectorInstance;
use xla_host::runtime::config::PluginsConfig;
use xla_host::runtime::outbound::Secret;
use xla_host::runtime::{Layer, Limits, Observation};
use xla_host::score::{Engine, XlaDefinition, load_scorers};
use xla_host::store::{CommitBatch, Provenance, Scope, Store};
use xla_host::sync::SyncSetup;
use xla_host::sync::push::Receiver;
use xla_host::sync::schedule::{Scheduler, SchedulerOptions, SyncInstance};

const DAY: i64 = 86_400_000;
const WEBHOOK_SECRET: &str = "globex-webhook-secret";
/// 2026-03-01T00:00:00Z.
const MARCH: i64 = 1_772_323_200_000;

struct Api {
    base: String,
    client: reqwest::Client,
    store: Arc<dyn Store>,
    state: Arc<ApiState>,
    acme: String,
    acme_writer: String,
    globex: String,
    globex_writer: String,
    operator: String,
    _dir: tempfile::TempDir,
}

impl Api {
    async fn get(&self, token: Option<&str>, path: &str) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("the API answers");
        let (status, headers) = (response.status(), response.headers().clone());
        (status, headers, response.text().await.expect("body"))
    }

    /// `POST path` with a JSON body, signed as the webhook secret signs.
    async fn post(
        &self,
        token: &str,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("x-hub-signature-256", sign(&body));
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = request.body(body).send().await.expect("the API answers");
        let (status, headers) = (response.status(), response.headers().clone());
        (status, headers, response.text().await.expect("body"))
    }

    async fn json(&self, token: &str, path: &str) -> Value {
        let (status, _, body) = self.get(Some(token), path).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        serde_json::from_str(&body).expect("JSON")
    }
}

/// `sha256=<hex>` of `body` under the test's webhook secret.
/// This process's lease on a tenant's instance, for runs the test logs.
async fn lease(store: &dyn Store, tenant: &str, instance: &str) -> xla_host::store::Lease {
    let ttl = xla_host::store::DEFAULT_LEASE_TTL;
    xla_host::sync::lease::take(store, tenant, instance, ttl, std::time::Duration::ZERO)
        .await
        .expect("the instance's lease")
}

fn sign(body: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()).expect("key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A json-feed body of `n` observations for `tenant`.
fn delivery(tenant: &str, n: usize) -> Vec<u8> {
    let list: Vec<Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "id": format!("{tenant}-push-{i}"),
                "metric": "lost_time_minutes",
                "layer": "experience",
                "value": 10.0 + i as f64,
                "at": MARCH + 3_600_000,
                "dimensions": {"ticket": format!("INC{tenant}{i}")}
            })
        })
        .collect();
    serde_json::to_vec(&list).expect("json")
}

fn observations(tenant: &str, service: &str, rating: f64) -> Vec<Observation> {
    (0..6)
        .flat_map(|i| {
            let ticket = format!("INC{tenant}{i}");
            let at = MARCH + i * DAY;
            [
                Observation::new(
                    format!("{ticket}-r"),
                    "resolution_hours",
                    Layer::Operational,
                    4.0 + i as f64,
                    at,
                )
                .dim("service", service)
                .dim("assignment_group", if i % 2 == 0 { "Desk" } else { "Network" })
                .dim("ticket", ticket.clone()),
                Observation::new(format!("{ticket}-h"), "happiness_rating", Layer::Experience, rating, at)
                    .dim("service", service)
                    .dim("ticket", ticket),
            ]
        })
        .collect()
}

/// The bearer token the fixture's feed simulators take.
const FEED_TOKEN: &str = "fixture-feed-token";

/// `tenant`'s json-feed instance, on demand, pulling from the feed at `origin`
/// with the token in `token_file`.
fn instance(tenant: &str, origin: &str, token_file: &std::path::Path) -> ConnectorInstance {
    toml::from_str(&format!(
        "name = \"{tenant}-feed\"\nplugin = \"json-feed\"\ntenant = \"{tenant}\"\ngrants = [\"{origin}\"]\nconfig = {{ base_url = \"{origin}/xla\", page_size = 50 }}\n[[credentials]]\norigin = \"{origin}\"\nkind = \"bearer\"\ntoken = {{ file = {:?} }}\n",
        token_file.display().to_string()
    ))
    .expect("instance")
}

fn xla(tenant: &str) -> XlaDefinition {
    toml::from_str(&format!(
        r#"
        id = "resolution"
        name = "Mean resolution hours"
        tenant = "{tenant}"
        metrics = ["resolution_hours"]
        scorer = "mean"
        score = "resolution_hours"
        group_by = "service"
        period = "month"
        direction = "lower"
        targets = [{{ from = 2026-01-01, value = 8.0 }}]
        "#
    ))
    .expect("definition")
}

async fn serve() -> Api {
    serve_with(ApiConfig {
        body_limit_mib: 1,
        requests_per_second: 100_000,
        ..ApiConfig::default()
    })
    .await
}

async fn serve_with(config: ApiConfig) -> Api {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::support::open_store(&dir.path().join("data"));
    for (tenant, service, rating) in [("acme", "VPN", 3.0), ("globex", "Email", 9.0)] {
        store
            .commit(CommitBatch {
                tenant: tenant.into(),
                source: format!("{tenant}-feed"),
                provenance: Provenance {
                    connector: format!("{tenant}-feed"),
                    plugin: "json-feed".into(),
                    version: "0.1.0".into(),
                    sha256: "ab".repeat(32),
                    sync_run: 1,
                },
                observations: observations(tenant, service, rating),
                cursor: Some("c1".into()),
                ..Default::default()
            })
            .await
            .expect("commit");
        let mut run = store
            .begin_run(&lease(&*store, tenant, &format!("{tenant}-feed")).await, MARCH)
            .await
            .expect("run");
        run.outcome = xla_host::store::RunOutcome::Completed;
        run.finished = Some(MARCH + 1_000);
        store.save_run(&run).await.expect("save run");
    }
    let scorers = load_scorers(
        runtime(),
        &target_dir().join("plugins"),
        &Default::default(),
        &BTreeMap::new(),
        ["mean", xla_host::score::report::WATERMELON_SCORER],
        &Limits::default(),
    )
    .await
    .expect("the mean scorer loads");
    let engine = Engine::new(store.clone(), scorers, Limits::default());
    let setup = SyncSetup {
        connectors: &[],
        sync: &Default::default(),
        limits: &Limits::default(),
        plugins: &PluginsConfig {
            dir: target_dir().join("plugins"),
            ..Default::default()
        },
    };
    let token_file = dir.path().join("feed-token");
    std::fs::write(&token_file, FEED_TOKEN).expect("token file");
    let mut receivers = BTreeMap::new();
    let mut instances = Vec::new();
    let mut scheduler = Scheduler::new(store.clone(), &Default::default(), SchedulerOptions::default());
    for (seed, tenant) in [(21, "acme"), (22, "globex")] {
        let feed = Arc::new(xla_host::sim::feed::Feed::seeded(seed, 30, FEED_TOKEN));
        let origin = format!("http://{}", xla_host::sim::feed::serve(feed).await.expect("feed"));
        let instance = instance(tenant, &origin, &token_file);
        let receiver = Receiver::prepare(runtime(), setup, &instance)
            .await
            .expect("json-feed loads");
        receivers.insert(format!("{tenant}-feed"), receiver);
        scheduler.add_on_demand(SyncInstance::prepare(runtime(), setup, &instance, None).expect("ready to sync"));
        instances.push(instance);
    }
    let sync = scheduler.control();
    // The scheduler's threads end with the test process.
    tokio::spawn(scheduler.run(CancellationToken::new(), |_| {}));
    let token = async |tenant: Option<&str>, scope| {
        let request = TokenRequest {
            name: "test".into(),
            tenant: tenant.map(str::to_string),
            scope,
            expires: None,
        };
        auth::issue(&*store, request, 0).await.expect("token").token
    };
    let (acme, acme_writer, globex, globex_writer, operator) = (
        token(Some("acme"), Scope::Read).await,
        token(Some("acme"), Scope::Write).await,
        token(Some("globex"), Scope::Read).await,
        token(Some("globex"), Scope::Write).await,
        token(None, Scope::Admin).await,
    );
    let state = ApiState {
        store: store.clone(),
        engine: Some(engine),
        catalog: Catalog {
            instances,
            plugins: Vec::new(),
            xlas: vec![xla("acme"), xla("globex")],
        },
        limiter: xla_host::api::TokenLimiter::new(config.requests_per_second),
        results: Default::default(),
        config,
        receivers,
        webhook_secrets: BTreeMap::from([("globex-feed".to_string(), Secret::new(WEBHOOK_SECRET))]),
        metrics: Some(xla_host::api::install_metrics().expect("the recorder installs")),
        sync: Some(sync),
    };
    let state = Arc::new(state);
    let addr = crate::support::serve_on_loopback(xla_host::api::app(state.clone())).await;
    Api {
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
        store,
        state,
        acme,
        acme_writer,
        globex,
        globex_writer,
        operator,
        _dir: dir,
    }
}

const WINDOW: &str = "from=2026-03-01T00:00:00Z&to=2026-04-01T00:00:00Z";

#[tokio::test]
async fn the_dashboards_warming_fills_the_apis_cache_for_the_latest_month() {
    let api = serve().await;
    let report = "/v1/tenants/acme/xlas/resolution/report?period=2026-03";
    // The dashboard's default targets without an SLA or happiness XLA are the API's.
    let scorecard = "/v1/tenants/acme/scorecard?period=2026-03";
    xla_host::dashboard::warm(&api.state, "acme").await.expect("warmed");
    for path in [report, scorecard] {
        let (status, headers, body) = api.get(Some(&api.acme), path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert_eq!(headers["x-xla-cache"], "hit", "{path} was computed by the warming");
    }
    // Another month was not warmed.
    let (_, headers, _) = api
        .get(
            Some(&api.acme),
            "/v1/tenants/acme/xlas/resolution/report?period=2026-02",
        )
        .await;
    assert_eq!(headers["x-xla-cache"], "miss");
}

/// A good request for each route template, for `tenant`. A route without a
/// case fails the isolation test.
fn case(template: &str, tenant: &str) -> Option<String> {
    let path = match template {
        "/healthz" | "/readyz" | "/metrics" | "/v1/tenants" | "/v1/plugins" => return Some(template.to_string()),
        // No plugin is loaded in this fixture: the list is checked, the detail 404s for everyone.
        "/v1/plugins/{plugin}" => return Some("/v1/plugins/json-feed".into()),
        "/v1/tenants/{tenant}/instances" => "/v1/tenants/{t}/instances".to_string(),
        "/v1/tenants/{tenant}/instances/{instance}" => "/v1/tenants/{t}/instances/{t}-feed".into(),
        "/v1/tenants/{tenant}/instances/{instance}/runs" => "/v1/tenants/{t}/instances/{t}-feed/runs".into(),
        // The fixture begins acme's run first: run ids are unique in the store.
        "/v1/tenants/{tenant}/instances/{instance}/runs/{run}" => {
            let run = if tenant == "acme" { 1 } else { 2 };
            format!("/v1/tenants/{{t}}/instances/{{t}}-feed/runs/{run}")
        }
        "/v1/tenants/{tenant}/instances/{instance}/sync" => "/v1/tenants/{t}/instances/{t}-feed/sync".into(),
        "/v1/tenants/{tenant}/instances/{instance}/events" => "/v1/tenants/{t}/instances/{t}-feed/events".into(),
        "/v1/tenants/{tenant}/instances/{instance}/imports" => "/v1/tenants/{t}/instances/{t}-feed/imports".into(),
        "/v1/tenants/{tenant}/metrics" => "/v1/tenants/{t}/metrics".into(),
        "/v1/tenants/{tenant}/metrics/{metric}/series" => {
            format!("/v1/tenants/{{t}}/metrics/resolution_hours/series?{WINDOW}&aggregation=avg&group_by=service")
        }
        "/v1/tenants/{tenant}/metrics/{metric}/breakdown" => {
            format!("/v1/tenants/{{t}}/metrics/resolution_hours/breakdown?{WINDOW}&dimension=assignment_group")
        }
        "/v1/tenants/{tenant}/tickets/{ticket}" => "/v1/tenants/{t}/tickets/INC{t}0".into(),
        "/v1/tenants/{tenant}/xlas" => "/v1/tenants/{t}/xlas".into(),
        "/v1/tenants/{tenant}/xlas/{xla}" => "/v1/tenants/{t}/xlas/resolution".into(),
        "/v1/tenants/{tenant}/xlas/{xla}/report" => "/v1/tenants/{t}/xlas/resolution/report?period=2026-03".into(),
        "/v1/tenants/{tenant}/xot" => "/v1/tenants/{t}/xot?period=2026-03".into(),
        "/v1/tenants/{tenant}/scorecard" => "/v1/tenants/{t}/scorecard?period=2026-03".into(),
        _ => return None,
    };
    Some(path.replace("{t}", tenant))
}

fn is_problem(headers: &reqwest::header::HeaderMap, body: &str, status: StatusCode) {
    assert_eq!(
        headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/problem+json"),
        "{body}"
    );
    let problem: Value = serde_json::from_str(body).expect("a problem document");
    assert_eq!(problem["status"], status.as_u16(), "{problem}");
    assert!(
        problem["type"].as_str().is_some_and(|t| t.starts_with("https://")),
        "{problem}"
    );
    assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()), "{problem}");
    assert!(problem["request_id"].as_str().is_some(), "{problem}");
}

#[tokio::test]
async fn every_route_in_the_openapi_document_keeps_tenants_apart() {
    let api = serve().await;
    let openapi = api.json(&api.acme, "/v1/openapi.json").await;
    let paths = openapi["paths"].as_object().expect("paths");
    assert!(paths.len() >= 21, "{} paths", paths.len());
    for (template, item) in paths {
        let acme_path = case(template, "acme").unwrap_or_else(|| panic!("no isolation case for {template}: add one"));
        let globex_path = case(template, "globex").expect("a case");
        if item.get("post").is_some() {
            // Pushes: the other tenant's writer gets the same 404 as for a missing tenant.
            let (status, headers, body) = api
                .post(
                    &api.globex_writer,
                    &acme_path,
                    Some("application/json"),
                    delivery("globex", 1),
                )
                .await;
            assert_eq!(status, StatusCode::NOT_FOUND, "globex POST {acme_path}: {body}");
            is_problem(&headers, &body, status);
            let expected_ok = match template.ends_with("/sync") {
                true => StatusCode::ACCEPTED,
                false => StatusCode::OK,
            };
            let (status, _, body) = api
                .post(
                    &api.acme_writer,
                    &acme_path,
                    Some("application/json"),
                    delivery("acme", 1),
                )
                .await;
            assert_eq!(status, expected_ok, "acme POST {acme_path}: {body}");
            let (status, _, body) = api
                .post(
                    &api.globex_writer,
                    &globex_path,
                    Some("application/json"),
                    delivery("globex", 1),
                )
                .await;
            assert_eq!(status, expected_ok, "globex POST {globex_path}: {body}");
            // A read token may not push.
            let (status, _, body) = api
                .post(&api.acme, &acme_path, Some("application/json"), delivery("acme", 1))
                .await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
            continue;
        }
        let tenant_route = template.contains("{tenant}");
        // The owner reads its own data.
        let (status, headers, body) = api.get(Some(&api.acme), &acme_path).await;
        let expected_ok = match template.as_str() {
            // Only an operator's token reads the metrics.
            "/v1/plugins/{plugin}" | "/metrics" => StatusCode::NOT_FOUND,
            _ => StatusCode::OK,
        };
        assert_eq!(status, expected_ok, "acme GET {acme_path}: {body}");
        if !status.is_success() {
            is_problem(&headers, &body, status);
        }
        if !tenant_route {
            continue;
        }
        // The other tenant's token gets the same 404 as for a tenant that does not exist.
        let (status, headers, body) = api.get(Some(&api.globex), &acme_path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "globex GET {acme_path}: {body}");
        is_problem(&headers, &body, status);
        assert!(!body.contains("INCacme"), "{body}");
        let (_, _, nowhere) = api
            .get(Some(&api.globex), &acme_path.replace("/acme", "/nowhere"))
            .await;
        let detail = |text: &str| serde_json::from_str::<Value>(text).expect("json")["detail"].clone();
        assert_eq!(
            detail(&body).as_str().map(|d| d.replace("acme", "X")),
            detail(&nowhere).as_str().map(|d| d.replace("nowhere", "X")),
            "a foreign tenant reads exactly like a missing one"
        );
        // And its own.
        let (status, _, body) = api.get(Some(&api.globex), &globex_path).await;
        assert_eq!(status, expected_ok, "globex GET {globex_path}: {body}");
        // The operator's token spans both.
        let (status, _, body) = api.get(Some(&api.operator), &globex_path).await;
        assert_eq!(status, expected_ok, "operator GET {globex_path}: {body}");
    }
    let tenants = api.json(&api.acme, "/v1/tenants").await;
    assert_eq!(tenants.as_array().map(Vec::len), Some(1), "{tenants}");
    assert_eq!(tenants[0]["id"], "acme");
    assert_eq!(
        api.json(&api.operator, "/v1/tenants").await.as_array().map(Vec::len),
        Some(2)
    );
}

#[tokio::test]
async fn routes_answer_their_data() {
    let api = serve().await;
    let series = api
        .json(
            &api.acme,
            &format!("/v1/tenants/acme/metrics/resolution_hours/series?{WINDOW}&aggregation=avg&group_by=service"),
        )
        .await;
    assert_eq!(series["points"][0]["group"], "VPN", "{series}");
    assert_eq!(series["points"][0]["value"], 6.5, "{series}");
    assert_eq!(series["points"][0]["count"], 6);
    let breakdown = api
        .json(
            &api.acme,
            &format!("/v1/tenants/acme/metrics/resolution_hours/breakdown?{WINDOW}&dimension=assignment_group&top=1"),
        )
        .await;
    assert_eq!(breakdown["groups"], 2);
    assert_eq!(breakdown["rows"][0]["group"], "Network", "{breakdown}");
    assert_eq!(breakdown["total"], 39.0);
    let ticket = api.json(&api.acme, "/v1/tenants/acme/tickets/INCacme0").await;
    let observations = ticket["observations"].as_array().expect("observations");
    assert_eq!(observations.len(), 2);
    assert_eq!(observations[0]["provenance"]["sha256"], "ab".repeat(32));
    let report = api
        .json(&api.acme, "/v1/tenants/acme/xlas/resolution/report?period=2026-03")
        .await;
    assert_eq!(report["value"], 6.5, "{report}");
    assert_eq!(report["met"], true);
    assert_eq!(report["target"]["value"], 8.0);
    let instances = api.json(&api.acme, "/v1/tenants/acme/instances").await;
    assert_eq!(instances["total"], 1);
    assert_eq!(instances["items"][0]["last_outcome"], "completed", "{instances}");
    let runs = api
        .json(&api.acme, "/v1/tenants/acme/instances/acme-feed/runs?limit=1")
        .await;
    assert_eq!(
        (runs["total"].as_u64(), runs["items"].as_array().map(Vec::len)),
        (Some(1), Some(1))
    );
    let catalog = api.json(&api.acme, "/v1/tenants/acme/xlas/resolution").await;
    assert_eq!(catalog["targets"][0]["from"], "2026-01-01");

    // Runs page by a keyset cursor: a run that starts between two page reads
    // neither repeats a run nor skips one.
    for i in 0..3 {
        let mut run = api
            .store
            .begin_run(&lease(&*api.store, "acme", "acme-feed").await, MARCH + (i + 2) * 1_000)
            .await
            .expect("run");
        run.outcome = xla_host::store::RunOutcome::Completed;
        run.finished = Some(MARCH + (i + 2) * 1_000 + 500);
        api.store.save_run(&run).await.expect("save run");
    }
    let path = "/v1/tenants/acme/instances/acme-feed/runs";
    let first = api.json(&api.acme, &format!("{path}?limit=2")).await;
    let next = first["next"].as_str().expect("a next page").to_string();
    api.store
        .begin_run(&lease(&*api.store, "acme", "acme-feed").await, MARCH + 9_000)
        .await
        .expect("a new run");
    let second = api.json(&api.acme, &format!("{path}?limit=2&cursor={next}")).await;
    let ids = |page: &Value| -> Vec<u64> {
        page["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|r| r["run"].as_u64())
            .collect()
    };
    let mut seen = ids(&first);
    seen.extend(ids(&second));
    assert_eq!(seen.len(), 4, "{first} {second}");
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "newest first, no repeat: {seen:?}"
    );
    assert!(second["next"].is_null(), "{second}");
    let (status, _, body) = api.get(Some(&api.acme), &format!("{path}?cursor=o2")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // CSV, with the same numbers.
    let (status, headers, csv) = api
        .get(
            Some(&api.acme),
            &format!(
                "/v1/tenants/acme/metrics/resolution_hours/series?{WINDOW}&aggregation=avg&group_by=service&format=csv"
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers["content-type"]
            .to_str()
            .is_ok_and(|t| t.starts_with("text/csv"))
    );
    assert_eq!(csv, "bucket_start,group,value,count\n2026-03-01T00:00:00Z,VPN,6.5,6\n");
}

/// A ticket lists its observations and says which of its tenant's metrics
/// retention cut, so a view never lacks values silently.
#[tokio::test]
async fn a_ticket_says_which_metrics_retention_cut() {
    let api = serve().await;
    let ticket = api.json(&api.acme, "/v1/tenants/acme/tickets/INCacme0").await;
    assert_eq!(ticket["retired"], serde_json::json!([]), "{ticket}");
    api.store
        .retire_before("acme", Some("resolution_hours"), MARCH + 3 * DAY)
        .await
        .expect("retention");
    let ticket = api.json(&api.acme, "/v1/tenants/acme/tickets/INCacme0").await;
    let metrics: Vec<&str> = ticket["observations"]
        .as_array()
        .expect("observations")
        .iter()
        .filter_map(|o| o["observation"]["metric"].as_str())
        .collect();
    assert_eq!(metrics, ["happiness_rating"], "its resolution was retired: {ticket}");
    let cut = xla_host::store::day_of(MARCH + 3 * DAY) as i64 * DAY;
    assert_eq!(
        ticket["retired"],
        serde_json::json!([{ "metric": "resolution_hours", "before": cut }]),
        "{ticket}"
    );
    let other = api.json(&api.globex, "/v1/tenants/globex/tickets/INCglobex0").await;
    assert_eq!(
        other["retired"],
        serde_json::json!([]),
        "another tenant's retention is its own"
    );
}

#[tokio::test]
async fn bad_requests_get_precise_problem_documents() {
    let api = serve().await;
    let series = "/v1/tenants/acme/metrics/resolution_hours/series";
    let unknown = format!("xla_0123456789ab_{}", "0".repeat(64));
    let cases: Vec<(Option<&str>, String, StatusCode, &str)> = vec![
        (None, "/v1/tenants".into(), StatusCode::UNAUTHORIZED, "no token"),
        (Some("xla_nothex"), "/v1/tenants".into(), StatusCode::UNAUTHORIZED, "not valid"),
        (
            Some(&unknown),
            "/v1/tenants".into(),
            StatusCode::UNAUTHORIZED,
            "not valid",
        ),
        (Some(&api.acme), "/v1/nothing".into(), StatusCode::NOT_FOUND, "no route GET /v1/nothing"),
        (Some(&api.acme), format!("{series}?from=yesterday&to=2026-04-01T00:00:00Z&aggregation=avg"), StatusCode::BAD_REQUEST, "`from` is `yesterday`"),
        (Some(&api.acme), format!("{series}?{WINDOW}&aggregation=median"), StatusCode::BAD_REQUEST, "aggregation"),
        (Some(&api.acme), format!("{series}?{WINDOW}"), StatusCode::BAD_REQUEST, "aggregation"),
        (Some(&api.acme), format!("{series}?{WINDOW}&aggregation=avg&filter=service"), StatusCode::BAD_REQUEST, "`dimension:value`"),
        (Some(&api.acme), format!("{series}?{WINDOW}&aggregation=avg&format=xml"), StatusCode::BAD_REQUEST, "format"),
        (Some(&api.acme), "/v1/tenants/acme/xlas/resolution/report?period=March".into(), StatusCode::BAD_REQUEST, "2026-10"),
        (Some(&api.acme), "/v1/tenants/acme/xlas/nothing/report?period=2026-03".into(), StatusCode::NOT_FOUND, "XLA `nothing`"),
        (Some(&api.acme), "/v1/tenants/acme/instances?limit=0".into(), StatusCode::BAD_REQUEST, "limit 0"),
        (Some(&api.acme), "/v1/tenants/acme/instances?cursor=zz".into(), StatusCode::BAD_REQUEST, "cursor"),
        (Some(&api.acme), "/v1/tenants/acme/tickets/INC404".into(), StatusCode::NOT_FOUND, "ticket `INC404`"),
        (Some(&api.acme), "/v1/tenants/acme/metrics/resolution_hours/breakdown?from=2026-03-01T00:00:00Z&to=2026-04-01T00:00:00Z&dimension=service&top=0".into(), StatusCode::BAD_REQUEST, "top 0"),
    ];
    for (token, path, status, says) in cases {
        let (got, headers, body) = api.get(token, &path).await;
        assert_eq!(got, status, "GET {path}: {body}");
        is_problem(&headers, &body, status);
        assert!(body.contains(says), "GET {path}: {body} should say {says}");
        if status == StatusCode::UNAUTHORIZED {
            assert_eq!(headers["www-authenticate"], "Bearer realm=\"xla-host\"");
        }
        if let Some(token) = token {
            assert!(!body.contains(token), "a token never appears in a response");
        }
    }
    // 405 on a route that exists.
    let response = api
        .client
        .delete(format!("{}/v1/tenants", api.base))
        .bearer_auth(&api.acme)
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let headers = response.headers().clone();
    is_problem(
        &headers,
        &response.text().await.expect("body"),
        StatusCode::METHOD_NOT_ALLOWED,
    );
}

/// The real binary: `token create` prints a token once, `token list` never
/// shows it, `serve --listen` without any schedule serves the API on that
/// token, `token revoke` ends it, and SIGTERM stops the server with exit 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_issues_tokens_and_serves_until_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let host_config = dir.path().join("host.toml");
    std::fs::write(
        &host_config,
        "[[connectors]]\nname = \"acme-feed\"\nplugin = \"json-feed\"\ntenant = \"acme\"\n",
    )
    .expect("config");
    let data = dir.path().join("data");
    let run = |args: &[&str]| {
        let mut command = crate::cli::xla_host_command(&["--host-config", host_config.to_str().expect("utf-8")]);
        command.args(args).arg("--data-dir").arg(&data);
        command.output().expect("runs")
    };
    let created = run(&[
        "token", "create", "--tenant", "acme", "--scope", "read", "--name", "dash",
    ]);
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let token = String::from_utf8(created.stdout).expect("utf-8").trim().to_string();
    assert!(token.starts_with("xla_") && token.len() == 4 + 12 + 1 + 64, "{token}");
    let listed = run(&["token", "list", "--json"]);
    let listed_text = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(!listed_text.contains(&token[17..]), "the secret is never listed");
    let records: Value = serde_json::from_str(&listed_text).expect("JSON");
    let id = records[0]["id"].as_str().expect("id").to_string();
    assert_eq!(records[0]["tenant"], "acme");
    assert_eq!(records[0]["scope"], "read");

    let (child, url, received) = spawn_serve(&host_config, Some(&data)).await;
    let client = reqwest::Client::new();
    let tenants = client
        .get(format!("{url}/v1/tenants"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("answer");
    assert_eq!(tenants.status(), StatusCode::OK);
    let tenants: Value = tenants.json().await.expect("JSON");
    assert_eq!(tenants[0]["id"], "acme");
    assert_eq!(tenants[0]["instances"], 1);

    // sled allows one process per data directory: stop the server, then revoke.
    let rest = stop(child, received).await;
    assert!(rest.iter().any(|l| l.contains("SIGTERM")), "{rest:?}");
    assert!(rest.iter().any(|l| l == "stopped"), "{rest:?}");

    let revoked = run(&["token", "revoke", &id]);
    assert!(revoked.status.success(), "{}", String::from_utf8_lossy(&revoked.stderr));
    let store = crate::support::open_store(&data);
    let record = store.token(&id).await.expect("token").expect("kept");
    assert!(record.revoked.is_some() && !record.is_live(i64::MAX / 2));
}

/// Starts `xla-host serve --listen 127.0.0.1:0` on `host_config` (and
/// `data`, else the config's data directory); returns the child, the server's base URL, and its later stderr lines.
async fn spawn_serve(
    host_config: &std::path::Path,
    data: Option<&std::path::Path>,
) -> (std::process::Child, String, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead;
    use std::process::Stdio;
    let mut command = crate::cli::xla_host_command(&["--host-config", host_config.to_str().expect("utf-8")]);
    command.args(["serve", "--listen", "127.0.0.1:0"]);
    if let Some(data) = data {
        command.arg("--data-dir").arg(data);
    }
    // stderr is read to its end: a closed pipe would fail the server's next log line.
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let stderr = child.stderr.take().expect("stderr");
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let (url, received) = tokio::task::spawn_blocking(move || {
        loop {
            let line = received
                .recv_timeout(std::time::Duration::from_secs(60))
                .expect("serve prints the API's URL");
            if let Some(rest) = line.strip_prefix("API at ") {
                let url = rest
                    .split_whitespace()
                    .next()
                    .expect("url")
                    .trim_end_matches("/v1")
                    .to_string();
                return (url, received);
            }
        }
    })
    .await
    .expect("joined");
    (child, url, received)
}

/// SIGTERM, then the exit status and the rest of stderr.
async fn stop(child: std::process::Child, received: std::sync::mpsc::Receiver<String>) -> Vec<String> {
    let mut child = child;
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(kill.success());
    let status = tokio::task::spawn_blocking(move || child.wait().expect("wait"))
        .await
        .expect("joined");
    assert!(status.success(), "{status}");
    received.try_iter().collect()
}

/// Observations stored for a tenant, all metrics of the fixture.
async fn stored(store: &Arc<dyn Store>, tenant: &str) -> usize {
    let mut n = 0;
    for metric in ["resolution_hours", "happiness_rating", "lost_time_minutes"] {
        n += store
            .observations(tenant, metric, 0, i64::MAX / 2)
            .await
            .expect("rows")
            .len();
    }
    n
}

#[tokio::test]
async fn webhooks_commit_once_and_refuse_bad_deliveries_storing_nothing() {
    let api = serve().await;
    let events = "/v1/tenants/globex/instances/globex-feed/events";
    let before = stored(&api.store, "globex").await;
    let (status, _, body) = api
        .post(
            &api.globex_writer,
            events,
            Some("application/json"),
            delivery("globex", 3),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let first: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        (first["inserted"].as_u64(), first["unchanged"].as_u64()),
        (Some(3), Some(0)),
        "{first}"
    );
    assert_eq!(first["run"]["outcome"], "completed");
    // The same delivery again changes nothing.
    let (_, _, body) = api
        .post(
            &api.globex_writer,
            events,
            Some("application/json"),
            delivery("globex", 3),
        )
        .await;
    let second: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        (second["inserted"].as_u64(), second["unchanged"].as_u64()),
        (Some(0), Some(3)),
        "{second}"
    );
    let after = stored(&api.store, "globex").await;
    assert_eq!(after, before + 3);

    let unsigned = |body: Vec<u8>| {
        let client = api.client.clone();
        let url = format!("{}{events}", api.base);
        let token = api.globex_writer.clone();
        async move {
            let response = client
                .post(url)
                .bearer_auth(token)
                .header("content-type", "application/json")
                .header("x-hub-signature-256", format!("sha256={}", "0".repeat(64)))
                .body(body)
                .send()
                .await
                .expect("answer");
            let (status, headers) = (response.status(), response.headers().clone());
            (status, headers, response.text().await.expect("body"))
        }
    };
    let mut malformed = delivery("globex", 2);
    malformed.truncate(malformed.len() - 5);
    let mut bad_record: Value = serde_json::from_slice(&delivery("globex", 2)).expect("json");
    bad_record[1]["metric"] = "".into();
    let cases: Vec<(&str, (StatusCode, reqwest::header::HeaderMap, String), &str)> = vec![
        (
            "wrong signature",
            unsigned(delivery("globex", 1)).await,
            "signature does not match",
        ),
        (
            "50 MB body",
            api.post(
                &api.globex_writer,
                events,
                Some("application/json"),
                vec![b' '; 50 * 1024 * 1024],
            )
            .await,
            "larger than the cap",
        ),
        (
            "malformed JSON",
            api.post(&api.globex_writer, events, Some("application/json"), malformed)
                .await,
            "not a feed page or array",
        ),
        (
            "a bad record",
            api.post(
                &api.globex_writer,
                events,
                Some("application/json"),
                serde_json::to_vec(&bad_record).expect("json"),
            )
            .await,
            "#1 has an empty id or metric",
        ),
        (
            "unknown instance",
            api.post(
                &api.globex_writer,
                "/v1/tenants/globex/instances/nothing/events",
                Some("application/json"),
                delivery("globex", 1),
            )
            .await,
            "connector instance `nothing`",
        ),
        (
            "undeclared media type",
            api.post(
                &api.globex_writer,
                events,
                Some("text/csv"),
                b"id,value\n1,2\n".to_vec(),
            )
            .await,
            "it declares: application/json",
        ),
        (
            "no media type",
            api.post(&api.globex_writer, events, None, delivery("globex", 1)).await,
            "send a Content-Type",
        ),
    ];
    for (what, (status, headers, body), says) in cases {
        assert!(status.is_client_error(), "{what}: {status} {body}");
        is_problem(&headers, &body, status);
        assert!(body.contains(says), "{what}: {body} should say {says}");
    }
    assert_eq!(
        stored(&api.store, "globex").await,
        after,
        "no refused delivery stored anything"
    );

    // What happened shows in /metrics, for an operator.
    let (status, headers, text) = api.get(Some(&api.operator), "/metrics").await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(
        headers["content-type"]
            .to_str()
            .is_ok_and(|t| t.starts_with("text/plain"))
    );
    for expected in [
        r#"xla_webhook_deliveries_total{instance="globex-feed",outcome="stored"}"#,
        r#"xla_webhook_deliveries_total{instance="globex-feed",outcome="refused"}"#,
        r#"xla_http_requests_total{route="/v1/tenants/{tenant}/instances/{instance}/events",method="POST",status="200"}"#,
        r#"xla_http_request_duration_seconds_bucket{route="/v1/tenants/{tenant}/instances/{instance}/events",method="POST",le="0.001"}"#,
        r#"xla_plugin_calls_total{plugin="json-feed",call="parse",outcome="ok"}"#,
        r#"xla_sync_runs_total{instance="globex-feed",outcome="completed"}"#,
        r#"xla_observations_committed_total{instance="globex-feed",kind="inserted"}"#,
    ] {
        assert!(text.contains(expected), "/metrics lacks {expected}:\n{text}");
    }
    assert!(!text.contains("INCglobex"), "no concrete path or data in the labels");
}

#[tokio::test]
async fn results_are_computed_once_per_data_version() {
    let api = serve().await;
    let report = "/v1/tenants/acme/xlas/resolution/report?period=2026-03";
    let series = format!("/v1/tenants/acme/metrics/resolution_hours/series?{WINDOW}&aggregation=count");
    let cache = |headers: &reqwest::header::HeaderMap| {
        headers
            .get("x-xla-cache")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (status, first_headers, first) = api.get(Some(&api.acme), report).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(cache(&first_headers).as_deref(), Some("miss"));
    let (_, headers, second) = api.get(Some(&api.acme), report).await;
    assert_eq!(cache(&headers).as_deref(), Some("hit"));
    assert_eq!(first, second, "the same bytes");
    // Series too, JSON and CSV apart.
    let (_, headers, series_before) = api.get(Some(&api.acme), &series).await;
    assert_eq!(cache(&headers).as_deref(), Some("miss"));
    let (_, headers, _) = api.get(Some(&api.acme), &series).await;
    assert_eq!(cache(&headers).as_deref(), Some("hit"));
    let (_, headers, csv) = api.get(Some(&api.acme), &format!("{series}&format=csv")).await;
    assert_eq!(cache(&headers).as_deref(), Some("miss"));
    assert!(csv.starts_with("bucket_start,group,value,count"), "{csv}");
    // Another tenant's identical route is its own entry.
    let (_, headers, _) = api.get(Some(&api.globex), &report.replace("acme", "globex")).await;
    assert_eq!(cache(&headers).as_deref(), Some("miss"));
    // New data: computed again, and it shows.
    let more: Vec<_> = (0..4)
        .map(|i| {
            Observation::new(
                format!("late-{i}"),
                "resolution_hours",
                Layer::Operational,
                20.0,
                MARCH + 10 * DAY,
            )
            .dim("service", "VPN")
        })
        .collect();
    api.store
        .commit(CommitBatch {
            tenant: "acme".into(),
            source: "acme-feed".into(),
            provenance: Provenance {
                connector: "acme-feed".into(),
                plugin: "json-feed".into(),
                version: "0.1.0".into(),
                sha256: "ab".repeat(32),
                sync_run: 2,
            },
            observations: more,
            cursor: None,
            ..Default::default()
        })
        .await
        .expect("commit");
    let (_, headers, third) = api.get(Some(&api.acme), report).await;
    assert_eq!(cache(&headers).as_deref(), Some("miss"));
    let (_, headers, series_after) = api.get(Some(&api.acme), &series).await;
    assert_eq!(cache(&headers).as_deref(), Some("miss"));
    let count = |text: &str| serde_json::from_str::<Value>(text).expect("json")["points"][0]["value"].as_f64();
    assert_eq!(
        (count(&series_before), count(&series_after)),
        (Some(6.0), Some(10.0)),
        "{series_before} / {series_after}"
    );
    let value = |text: &str| serde_json::from_str::<Value>(text).expect("json")["value"].as_f64();
    assert_eq!(value(&first), Some(6.5));
    assert_eq!(value(&third), Some((39.0 + 80.0) / 10.0));
}

#[tokio::test]
async fn a_token_over_its_rate_gets_429_with_retry_after() {
    let api = serve_with(ApiConfig {
        requests_per_second: 2,
        ..ApiConfig::default()
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let (status, headers, body) = api.get(Some(&api.acme), "/v1/tenants").await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            is_problem(&headers, &body, status);
            assert_eq!(headers["retry-after"], "1", "{body}");
        }
        statuses.push(status);
    }
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::OK, StatusCode::TOO_MANY_REQUESTS]
    );
    // Another token has its own bucket.
    let (status, _, _) = api.get(Some(&api.globex), "/v1/tenants").await;
    assert_eq!(status, StatusCode::OK);
}

/// `demo --data-dir DIR` leaves `DIR/xla-host.toml`, and `serve` on it
/// answers the same numbers the demo printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_leaves_a_config_that_serves_what_it_printed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("demo");
    let plugins = target_dir().join("plugins");
    let demo = crate::cli::xla_host_command(&["demo", "--tickets", "300", "--data-dir", data.to_str().expect("utf-8")])
        .env("XLA_HOST_PLUGINS_DIR", &plugins)
        .output()
        .expect("the demo runs");
    let printed = String::from_utf8_lossy(&demo.stdout).into_owned();
    assert!(
        demo.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&demo.stderr)
    );
    // The table row: `│ Incident happiness ┆ 2026-10 ┆ 57.1 (n=35) ┆ ...`.
    let row = printed
        .lines()
        .find(|l| l.contains("Incident happiness"))
        .expect("the demo prints the incident-happiness XLA");
    let printed_value: f64 = row
        .split('┆')
        .nth(2)
        .and_then(|cell| cell.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("a value");
    let host_config = data.join("xla-host.toml");
    assert!(host_config.is_file(), "{printed}");
    let config = host_config.to_str().expect("utf-8");
    let created = crate::cli::xla_host_command(&["--host-config", config, "token", "create", "--tenant", "demo"])
        .output()
        .expect("token create");
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let token = String::from_utf8(created.stdout).expect("utf-8").trim().to_string();
    let (child, url, received) = spawn_serve(&host_config, None).await;
    let report: Value = reqwest::Client::new()
        .get(format!(
            "{url}/v1/tenants/demo/xlas/incident-happiness/report?period=2026-10"
        ))
        .bearer_auth(&token)
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("JSON");
    stop(child, received).await;
    let served = report["value"].as_f64().expect("a value");
    assert!(
        (served - printed_value).abs() < 0.051,
        "served {served}, printed {printed_value}"
    );
}

/// A feed simulator whose requests wait until `open` is sent `true`.
async fn gated_feed(feed: xla_host::sim::feed::Feed) -> (String, tokio::sync::watch::Sender<bool>) {
    let (open, gate) = tokio::sync::watch::channel(false);
    let app = xla_host::sim::feed::router(Arc::new(feed)).layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            let mut gate = gate.clone();
            async move {
                let _ = gate.wait_for(|open| *open).await;
                next.run(request).await
            }
        },
    ));
    let addr = crate::support::serve_on_loopback(app).await;
    (format!("http://{addr}"), open)
}

/// `POST .../sync` on the real binary: 202 with the run's URL, 409 while
/// it runs, the run followed to its end with every record stored; a read
/// token is refused, another tenant's token learns nothing, an instance
/// that cannot load says why, and a scheduled one shows its next run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_sync_starts_a_run_now_and_refuses_a_second_while_it_runs() {
    const FEED_TOKEN: &str = "feed-token-for-the-sync-route";
    const RECORDS: usize = 120;
    let (gated, open) = gated_feed(xla_host::sim::feed::Feed::seeded(3, RECORDS, FEED_TOKEN)).await;
    let free = xla_host::sim::feed::serve(Arc::new(xla_host::sim::feed::Feed::seeded(4, 10, FEED_TOKEN)))
        .await
        .expect("feed");
    let free = format!("http://{free}");
    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("feed-token");
    std::fs::write(&token_file, FEED_TOKEN).expect("token file");
    let instance = |name: &str, plugin: &str, origin: &str, schedule: &str| {
        format!(
            "[[connectors]]\nname = \"{name}\"\nplugin = \"{plugin}\"\ntenant = \"acme\"\n{schedule}grants = [\"{origin}\"]\nconfig = {{ base_url = \"{origin}/xla\", page_size = 50 }}\n[[connectors.credentials]]\norigin = \"{origin}\"\nkind = \"bearer\"\ntoken = {{ file = {:?} }}\n\n",
            token_file.display().to_string()
        )
    };
    let host_config = dir.path().join("host.toml");
    std::fs::write(
        &host_config,
        format!(
            "[plugins]\ndir = {:?}\n\n{}{}{}[[connectors]]\nname = \"globex-feed\"\nplugin = \"json-feed\"\ntenant = \"globex\"\n",
            target_dir().join("plugins").display().to_string(),
            instance("acme-feed", "json-feed", &gated, ""),
            instance("acme-hourly", "json-feed", &free, "schedule = \"1h\"\n"),
            instance("acme-broken", "no-such-plugin", &free, ""),
        ),
    )
    .expect("config");
    let data = dir.path().join("data");
    let token = |tenant: &str, scope: &str| {
        let out = crate::cli::xla_host_command(&["--host-config", host_config.to_str().expect("utf-8")])
            .args(["token", "create", "--tenant", tenant, "--scope", scope, "--data-dir"])
            .arg(&data)
            .output()
            .expect("token create");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("utf-8").trim().to_string()
    };
    let (reader, writer, globex) = (token("acme", "read"), token("acme", "write"), token("globex", "write"));
    let (child, url, received) = spawn_serve(&host_config, Some(&data)).await;
    let client = reqwest::Client::new();
    let post = async |token: &str, path: &str| {
        let response = client
            .post(format!("{url}{path}"))
            .bearer_auth(token)
            .send()
            .await
            .expect("answer");
        let (status, headers) = (response.status(), response.headers().clone());
        (status, headers, response.text().await.expect("body"))
    };
    let get = async |path: &str| -> Value {
        let response = client
            .get(format!("{url}{path}"))
            .bearer_auth(&reader)
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.json().await.expect("JSON")
    };
    let sync = "/v1/tenants/acme/instances/acme-feed/sync";
    let push_event = async || {
        client
            .post(format!("{url}/v1/tenants/acme/instances/acme-feed/events"))
            .bearer_auth(&writer)
            .header("content-type", "application/json")
            .body(delivery("acme", 1))
            .send()
            .await
            .expect("answer")
    };

    let (status, headers, body) = post(&reader, sync).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    is_problem(&headers, &body, status);
    let (status, _, body) = post(&globex, sync).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another tenant's token learns nothing: {body}"
    );

    let (status, headers, body) = post(&writer, sync).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let accepted: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(accepted["status"], "started", "{accepted}");
    let run = accepted["run"].as_u64().expect("a run id");
    let href = format!("/v1/tenants/acme/instances/acme-feed/runs/{run}");
    assert_eq!(accepted["href"], href.as_str());
    assert_eq!(
        headers.get("location").and_then(|v| v.to_str().ok()),
        Some(href.as_str())
    );

    let (status, headers, body) = post(&writer, sync).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    is_problem(&headers, &body, status);
    assert!(body.contains(&format!("run {run}")), "{body}");
    let running = get("/v1/tenants/acme/instances/acme-feed").await;
    assert_eq!(running["state"], "running", "{running}");
    assert_eq!(get(&href).await["outcome"], "running");
    // A push waits for the run (the run log keeps one run open), then gives up with a 409.
    let pushed = push_event().await;
    assert_eq!(pushed.status(), StatusCode::CONFLICT);
    assert_eq!(
        get(&href).await["outcome"],
        "running",
        "the push did not cut into the run"
    );

    let (status, headers, body) = post(&writer, "/v1/tenants/acme/instances/acme-broken/sync").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    is_problem(&headers, &body, status);
    assert!(body.contains("no-such-plugin"), "says which plugin is missing: {body}");
    let broken = get("/v1/tenants/acme/instances/acme-broken").await;
    assert_eq!(broken["state"], "unavailable", "{broken}");

    open.send_replace(true);
    let mut finished = Value::Null;
    for _ in 0..600 {
        finished = get(&href).await;
        if finished["outcome"] != "running" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(finished["outcome"], "completed", "{finished}");
    assert_eq!(finished["inserted"].as_u64(), Some(RECORDS as u64), "{finished}");
    let idle = get("/v1/tenants/acme/instances/acme-feed").await;
    assert_eq!(idle["state"], "idle", "{idle}");
    assert_eq!(idle["last_outcome"], "completed", "{idle}");
    assert!(idle["cursor_updated"].as_i64().is_some(), "{idle}");
    assert!(
        idle["next_run"].is_null(),
        "an on-demand instance has no next run: {idle}"
    );
    let pushed = push_event().await;
    assert_eq!(pushed.status(), StatusCode::OK, "once the run ended, the push goes in");
    // Idle again: another run may start.
    let (status, _, body) = post(&writer, sync).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    let hourly = get("/v1/tenants/acme/instances/acme-hourly").await;
    let next_run = hourly["next_run"].as_i64();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64;
    assert!(
        hourly["state"] != "idle" || next_run.is_some_and(|next| next > now + 50 * 60_000),
        "a scheduled instance that ran shows its next run about an hour on: {hourly}"
    );
    let (status, _, body) = post(&writer, "/v1/tenants/acme/instances/no-such/sync").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    let rest = stop(child, received).await;
    assert!(rest.iter().any(|l| l == "stopped"), "{rest:?}");
}

/// The pinned Schemathesis (tests/api/requirements.txt), as `python3 -m
/// schemathesis.cli` reports it.
fn pinned_schemathesis() -> String {
    let requirements = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/api/requirements.txt"))
        .expect("tests/api/requirements.txt");
    requirements
        .lines()
        .find_map(|line| line.trim().strip_prefix("schemathesis=="))
        .expect("schemathesis is pinned")
        .to_string()
}

/// Schemathesis against the served document with both tenants' writers as
/// peers: every check (server errors, schema and status conformance,
/// negative data rejected, auth enforced, object-level authorization
/// across the two tenants) over the examples, coverage, fuzzing and
/// stateful phases. Any finding fails the test with Schemathesis's report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_schema_violation_or_tenant_leak() {
    let pinned = pinned_schemathesis();
    let version = std::process::Command::new("python3")
        .args(["-m", "schemathesis.cli", "--version"])
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
        .unwrap_or_default();
    assert!(
        version.trim_end().ends_with(&pinned),
        "needs Schemathesis {pinned}: run `python3 -m pip install -r tests/api/requirements.txt` (cargo xtask test does); found `{}`",
        version.trim()
    );
    let api = serve().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let auth = serde_json::json!({
        "auth": [
            {"name": "acme", "fixedHeaders": [{"name": "Authorization", "value": format!("Bearer {}", api.acme_writer)}]},
            {"name": "globex", "fixedHeaders": [{"name": "Authorization", "value": format!("Bearer {}", api.globex_writer)}]}
        ]
    });
    let auth_file = dir.path().join("auth.json");
    std::fs::write(&auth_file, auth.to_string()).expect("auth file");
    let config_file = dir.path().join("schemathesis.toml");
    let settings = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/api/schemathesis.toml"))
        .expect("tests/api/schemathesis.toml");
    std::fs::write(
        &config_file,
        format!(
            "{settings}\n[auth.wfc]\npath = {:?}\npeers = [\"acme\", \"globex\"]\n",
            auth_file.display().to_string()
        ),
    )
    .expect("config");
    let report = dir.path().join("report");
    let mut command = std::process::Command::new("python3");
    command
        .args(["-m", "schemathesis.cli", "--config-file"])
        .arg(&config_file)
        .args(["run", &format!("{}/v1/openapi.json", api.base)])
        // One worker: with two, Hypothesis (inside Schemathesis) calls
        // `ast.parse` from two threads, which CPython 3.11 does not survive
        // ("AST constructor recursion depth mismatch"): an error of the tool's.
        .args([
            "--checks",
            "all",
            "--workers",
            "1",
            "--seed",
            "1",
            "--no-color",
            "--report-dir",
        ])
        .arg(&report)
        .current_dir(dir.path());
    let out = tokio::task::spawn_blocking(move || command.output().expect("python3 runs"))
        .await
        .expect("joined");
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Shown with --nocapture: what was tested and Schemathesis's warnings.
    println!("{stdout}");
    assert!(
        out.status.success(),
        "Schemathesis found problems:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A push that loses its instance's lease part-way (another host took the
/// instance over, as a host of a PostgreSQL store can) answers 503 with a
/// problem document saying what stayed committed and to send again; the
/// run log records the failure, and the delivery sent again once the lease
/// is free stores the rest, the batches before the loss counting as
/// unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_that_loses_its_lease_answers_503_and_a_resend_stores_the_rest() {
    const RECORDS: usize = 1_000;
    let url = xla_store_pg::testing::shared()
        .create_database()
        .await
        .expect("a database");
    let store: Arc<dyn Store> = Arc::new(xla_store_pg::PgStore::connect(&url).await.expect("the store"));
    let (sql, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("a connection");
    tokio::spawn(connection);
    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("feed-token");
    std::fs::write(&token_file, FEED_TOKEN).expect("token file");
    let instance = instance("acme", "http://127.0.0.1:9", &token_file);
    let setup = SyncSetup {
        connectors: &[],
        sync: &Default::default(),
        limits: &Limits::default(),
        plugins: &PluginsConfig {
            dir: target_dir().join("plugins"),
            ..Default::default()
        },
    };
    // A commit per record: the delivery takes many commits, so the lease
    // can be taken over while it is under way.
    let receiver = Receiver::prepare(runtime(), setup, &instance)
        .await
        .expect("json-feed loads")
        .with_batch_size(1);
    let writer = auth::issue(
        &*store,
        TokenRequest {
            name: "test".into(),
            tenant: Some("acme".into()),
            scope: Scope::Write,
            expires: None,
        },
        0,
    )
    .await
    .expect("token")
    .token;
    let state = Arc::new(ApiState {
        store: store.clone(),
        engine: None,
        catalog: Catalog {
            instances: vec![instance],
            plugins: Vec::new(),
            xlas: Vec::new(),
        },
        limiter: xla_host::api::TokenLimiter::new(100_000),
        results: Default::default(),
        config: ApiConfig::default(),
        receivers: BTreeMap::from([("acme-feed".to_string(), receiver)]),
        webhook_secrets: BTreeMap::new(),
        metrics: Some(xla_host::api::install_metrics().expect("the recorder installs")),
        sync: None,
    });
    let addr = crate::support::serve_on_loopback(xla_host::api::app(state.clone())).await;
    let push = || {
        let events = format!("http://{addr}/v1/tenants/acme/instances/acme-feed/events");
        let request = reqwest::Client::new()
            .post(events)
            .bearer_auth(&writer)
            .header("content-type", "application/json")
            .body(delivery("acme", RECORDS));
        async move { request.send().await.expect("answer") }
    };
    let stored = async || {
        store
            .observations("acme", "lost_time_minutes", 0, i64::MAX)
            .await
            .expect("rows")
            .len()
    };

    let pushing = tokio::spawn(push());
    // Once some batches are in, another host takes the instance over.
    let deadline = tokio::time::Instant::now() + crate::schedule::PATIENCE;
    while stored().await == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the push stored nothing");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let taken = sql
        .execute(
            "UPDATE leases SET holder = 'other-host/1/x', token = nextval('lease_tokens'), \
             expires = now() + interval '1 hour' WHERE tenant_id = 'acme' AND instance = 'acme-feed'",
            &[],
        )
        .await
        .expect("taken over");
    assert_eq!(taken, 1, "the push holds the instance's lease");
    let response = pushing.await.expect("the push task");
    let (status, headers) = (response.status(), response.headers().clone());
    let body = response.text().await.expect("body");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    is_problem(&headers, &body, status);
    let detail = serde_json::from_str::<Value>(&body).expect("JSON")["detail"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(detail.contains("another host took the instance over"), "{detail}");
    assert!(detail.contains("send"), "says what to do: {detail}");
    let kept = stored().await;
    assert!(0 < kept && kept < RECORDS, "{kept} of {RECORDS} stayed committed");
    let run = store
        .runs("acme", "acme-feed", 1)
        .await
        .expect("runs")
        .pop()
        .expect("a run");
    assert_eq!(run.outcome, xla_host::store::RunOutcome::Failed);
    assert!(run.error.as_deref().is_some_and(|e| e.contains("lease")), "{run:?}");
    let metrics = state.metrics.as_ref().expect("metrics").render();
    assert!(
        metrics.contains(r#"xla_webhook_deliveries_total{instance="acme-feed",outcome="lease_lost"}"#),
        "{metrics}"
    );

    // The other host's lease runs out; the delivery sent again stores the rest.
    sql.execute(
        "UPDATE leases SET expires = now() - interval '1 second' WHERE tenant_id = 'acme' AND instance = 'acme-feed'",
        &[],
    )
    .await
    .expect("lapsed");
    let response = push().await;
    assert_eq!(response.status(), StatusCode::OK);
    let delivered: Value = response.json().await.expect("JSON");
    assert_eq!(delivered["inserted"], (RECORDS - kept) as u64, "{delivered}");
    assert_eq!(delivered["unchanged"], kept as u64, "{delivered}");
    assert_eq!(stored().await, RECORDS);
}
