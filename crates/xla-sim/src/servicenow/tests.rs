//! The simulator over a real loopback socket, with a plain hyper client.

use super::*;
use crate::org::{OrgSpec, generate};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    fn result(&self) -> Vec<Value> {
        self.json()["result"].as_array().cloned().expect("result array")
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The URL of a `Link` relation.
    fn link(&self, rel: &str) -> Option<String> {
        let links = self.header("link")?;
        links.split(',').find_map(|part| {
            let (url, r) = part.split_once(';')?;
            (r == format!("rel=\"{rel}\"")).then(|| url.trim_matches(|c| c == '<' || c == '>').to_string())
        })
    }
}

async fn send(method: &str, url: &str, auth: Option<&str>, body: Option<String>) -> Reply {
    let uri: hyper::Uri = url.parse().expect("url");
    let authority = uri.authority().expect("authority").to_string();
    let stream = tokio::net::TcpStream::connect(&authority).await.expect("connect");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    let mut request = hyper::Request::builder()
        .method(method)
        .uri(uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"))
        .header("host", authority)
        .header("accept", "application/json");
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    if body.is_some() {
        request = request.header("content-type", "application/x-www-form-urlencoded");
    }
    let request = request
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .expect("request");
    let response = sender.send_request(request).await.expect("send");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.expect("body").to_bytes();
    Reply { status, headers, body }
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn small_org() -> Arc<Org> {
    Arc::new(generate(&OrgSpec {
        seed: 11,
        tickets: 600,
        start: 1_767_225_600_000,
        days: 30,
    }))
}

async fn start(options: ServiceNowOptions) -> (ServiceNowSim, String) {
    let sim = serve(small_org(), options, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("serve");
    let auth = basic("xla.integration", "xla-integration-password");
    (sim, auth)
}

async fn get_ok(url: &str, auth: &str) -> Reply {
    let reply = send("GET", url, Some(auth), None).await;
    assert_eq!(reply.status, StatusCode::OK, "{url}: {:?}", reply.body);
    reply
}

#[tokio::test]
async fn wire_format_and_references() {
    let (sim, auth) = start(ServiceNowOptions::default()).await;
    let base = sim.base_url();
    let reply = get_ok(&format!("{base}/api/now/table/incident?sysparm_limit=3"), &auth).await;
    assert!(reply.header("content-type").unwrap().starts_with("application/json"));
    let rows = reply.result();
    assert_eq!(rows.len(), 3);
    let org = sim.records();
    let first = &rows[0];
    assert_eq!(first["number"], "INC0010000");
    assert!(
        first
            .as_object()
            .unwrap()
            .values()
            .all(|v| v.is_string() || v.is_object())
    );
    assert_eq!(
        first["reassignment_count"],
        org.incidents[0].reassignment_count.to_string()
    );
    assert_eq!(first["opened_at"], query::format_time(org.incidents[0].opened_at));
    let group = &org.groups[org.incidents[0].assignment_group];
    assert_eq!(first["assignment_group"]["value"], group.sys_id);
    assert_eq!(
        first["assignment_group"]["link"],
        format!("{base}/api/now/table/sys_user_group/{}", group.sys_id)
    );
    assert_eq!(
        reply.header("x-total-count"),
        Some(org.incidents.len().to_string().as_str())
    );

    // v1 and v2 paths, bare references, display values.
    let url = format!(
        "{base}/api/now/v2/table/incident?sysparm_limit=1&sysparm_exclude_reference_link=true\
         &sysparm_fields=number,assignment_group,state"
    );
    let row = get_ok(&url, &auth).await.result().remove(0);
    assert_eq!(row["assignment_group"], group.sys_id);
    assert_eq!(row.as_object().unwrap().len(), 3);
    let url = format!("{base}/api/now/v1/table/incident?sysparm_limit=1&sysparm_display_value=true");
    let row = get_ok(&url, &auth).await.result().remove(0);
    assert_eq!(row["assignment_group"]["display_value"], group.name);
    assert!(row["assignment_group"].get("value").is_none());
    assert!(row["priority"].as_str().unwrap().contains(" - "));
    let url = format!("{base}/api/now/table/incident?sysparm_limit=1&sysparm_display_value=all");
    let row = get_ok(&url, &auth).await.result().remove(0);
    assert_eq!(row["assignment_group"]["display_value"], group.name);
    assert_eq!(row["assignment_group"]["value"], group.sys_id);
    assert!(row["assignment_group"]["link"].is_string());
    assert_eq!(row["state"]["value"], org.incidents[0].state.to_string());
    assert!(row["state"]["display_value"].is_string());

    // Unknown table.
    let reply = send("GET", &format!("{base}/api/now/table/nosuch"), Some(&auth), None).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["status"], "failure");
    assert!(
        reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Invalid table")
    );
}

#[tokio::test]
async fn dot_walked_fields() {
    let (sim, auth) = start(ServiceNowOptions::default()).await;
    let base = sim.base_url();
    let org = sim.records();
    let url = format!(
        "{base}/api/now/table/task_sla?sysparm_limit=5&sysparm_fields=sys_id,task.number,task.sys_class_name,\
         sla.name,task.assignment_group.name,nosuch,task.nosuch"
    );
    let rows = get_ok(&url, &auth).await.result();
    for (row, sla) in rows.iter().zip(&org.slas) {
        let keys: Vec<&String> = row.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 5, "unknown fields are ignored: {keys:?}");
        assert_eq!(row["sla.name"], org.sla_definitions[sla.sla].name);
        let class = row["task.sys_class_name"].as_str().unwrap();
        assert!(class == "incident" || class == "sc_req_item");
        assert!(
            row["task.number"]
                .as_str()
                .unwrap()
                .starts_with(if class == "incident" { "INC" } else { "RITM" })
        );
    }
    let url = format!(
        "{base}/api/now/table/incident?sysparm_limit=2&sysparm_fields=number,business_service.name,caller_id.user_name\
         &sysparm_query=business_service.name=VPN"
    );
    let reply = get_ok(&url, &auth).await;
    let vpn = org.service_index("VPN").unwrap();
    let expected = org.incidents.iter().filter(|i| i.business_service == vpn).count();
    assert_eq!(reply.header("x-total-count"), Some(expected.to_string().as_str()));
    for row in reply.result() {
        assert_eq!(row["business_service.name"], "VPN");
        assert!(row["caller_id.user_name"].as_str().unwrap().contains('.'));
    }
}

/// Follows `next` links to the end; returns every row and the page sizes.
async fn follow(first: String, auth: &str) -> (Vec<Value>, Vec<usize>) {
    let (mut rows, mut sizes) = (Vec::new(), Vec::new());
    let mut url = Some(first);
    while let Some(next) = url {
        let reply = get_ok(&next, auth).await;
        let page = reply.result();
        sizes.push(page.len());
        rows.extend(page);
        url = reply.link("next");
        assert!(sizes.len() < 1000, "paging does not end");
    }
    (rows, sizes)
}

#[tokio::test]
async fn paging_with_short_acl_pages() {
    let options = ServiceNowOptions {
        acl_hidden_share: 0.3,
        ..ServiceNowOptions::default()
    };
    let (sim, auth) = start(options).await;
    let base = sim.base_url();
    let org = sim.records();
    let visible: Vec<&str> = org
        .incidents
        .iter()
        .map(|i| i.sys_id.as_str())
        .filter(|id| sim.is_visible(id))
        .collect();
    assert!(visible.len() < org.incidents.len() * 8 / 10 && visible.len() > org.incidents.len() * 6 / 10);

    let first = format!("{base}/api/now/table/incident?sysparm_limit=7&sysparm_fields=sys_id");
    let reply = get_ok(&first, &auth).await;
    assert!(reply.link("first").is_some() && reply.link("last").is_some() && reply.link("prev").is_none());
    let (rows, sizes) = follow(first, &auth).await;
    let got: Vec<&str> = rows.iter().map(|r| r["sys_id"].as_str().unwrap()).collect();
    assert_eq!(got, visible, "every visible record once, in order");
    assert_eq!(sizes.len(), org.incidents.len().div_ceil(7));
    assert!(sizes.iter().any(|&n| n < 7), "some pages are short");
    assert!(sizes.iter().all(|&n| n <= 7));

    // A page where every record is hidden still points on.
    let limit1 = format!("{base}/api/now/table/incident?sysparm_limit=1&sysparm_fields=sys_id");
    let hidden_at = org.incidents.iter().position(|i| !sim.is_visible(&i.sys_id)).unwrap();
    let reply = get_ok(&format!("{limit1}&sysparm_offset={hidden_at}"), &auth).await;
    assert!(reply.result().is_empty());
    assert!(reply.link("next").is_some());
    assert!(reply.link("prev").is_some());

    // sysparm_no_count drops the total but keeps the links.
    let reply = get_ok(&format!("{limit1}&sysparm_no_count=true"), &auth).await;
    assert!(reply.header("x-total-count").is_none());
    assert!(reply.link("next").is_some());
}

#[tokio::test]
async fn keyset_sync_survives_updates() {
    let (sim, auth) = start(ServiceNowOptions::default()).await;
    let base = sim.base_url();
    let page = |query: String| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("sysparm_query", &query);
        q.append_pair("sysparm_limit", "50");
        q.append_pair("sysparm_fields", "sys_id,sys_updated_on,reassignment_count");
        format!("{base}/api/now/table/incident?{}", q.finish())
    };
    let order = "^ORDERBYsys_updated_on^ORDERBYsys_id";
    let watermark = "2026-01-01 00:00:00";
    let mut url = page(format!("sys_updated_on>={watermark}{order}"));
    let mut seen: HashMap<String, Value> = HashMap::new();
    let mut last: Option<(String, String)> = None;
    let mut pages = 0;
    let late = sim.records().spec.start + 40 * 86_400_000;
    loop {
        let rows = get_ok(&url, &auth).await.result();
        pages += 1;
        if pages == 3 {
            // Records change mid-sync: they move to the end of the order.
            let changed = sim.update_records(20, late);
            assert_eq!(changed.len(), 20);
        }
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            let key = (
                row["sys_updated_on"].as_str().unwrap().to_string(),
                row["sys_id"].as_str().unwrap().to_string(),
            );
            if let Some(prev) = &last {
                assert!(key > *prev, "keyset order strictly increases");
            }
            last = Some(key);
            seen.insert(row["sys_id"].as_str().unwrap().to_string(), row.clone());
        }
        let (ts, id) = last.clone().unwrap();
        url = page(format!("sys_updated_on={ts}^sys_id>{id}^NQsys_updated_on>{ts}{order}"));
    }
    // Every record seen, with its latest state.
    let org = sim.records();
    assert_eq!(seen.len(), org.incidents.len());
    for incident in &org.incidents {
        let row = &seen[&incident.sys_id];
        assert_eq!(row["sys_updated_on"], query::format_time(incident.sys_updated_on));
        assert_eq!(row["reassignment_count"], incident.reassignment_count.to_string());
    }
}

#[tokio::test]
async fn ordering_and_operators_over_http() {
    let (sim, auth) = start(ServiceNowOptions::default()).await;
    let base = sim.base_url();
    let org = sim.records();
    let url = format!(
        "{base}/api/now/table/incident?sysparm_fields=number,priority&sysparm_query=\
         priorityIN1,2^ORDERBYDESCnumber^bogus~term"
    );
    let rows = get_ok(&url, &auth).await.result();
    let expected = org.incidents.iter().filter(|i| i.priority <= 2).count();
    assert_eq!(rows.len(), expected);
    let numbers: Vec<&str> = rows.iter().map(|r| r["number"].as_str().unwrap()).collect();
    assert!(numbers.windows(2).all(|w| w[0] > w[1]));
    let url = format!("{base}/api/now/table/incident?sysparm_query=resolved_atISEMPTY&sysparm_fields=state");
    let rows = get_ok(&url, &auth).await.result();
    assert_eq!(
        rows.len(),
        org.incidents.iter().filter(|i| i.resolved_at.is_none()).count()
    );
    assert!(rows.iter().all(|r| r["state"] != "6" && r["state"] != "7"));
}

#[tokio::test]
async fn basic_and_oauth() {
    let (sim, auth) = start(ServiceNowOptions::default()).await;
    let base = sim.base_url();
    let incidents = format!("{base}/api/now/table/incident?sysparm_limit=1");
    get_ok(&incidents, &auth).await;
    for bad in [
        None,
        Some(basic("xla.integration", "wrong")),
        Some("Bearer nope".to_string()),
    ] {
        let reply = send("GET", &incidents, bad.as_deref(), None).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(reply.json()["error"]["message"], "User Not Authenticated");
    }

    let token_url = format!("{base}/oauth_token.do");
    let form = "grant_type=password&client_id=xla-client&client_secret=xla-client-secret\
                &username=xla.integration&password=xla-integration-password";
    let reply = send("POST", &token_url, None, Some(form.to_string())).await;
    assert_eq!(reply.status, StatusCode::OK);
    let token = reply.json();
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["scope"], "useraccount");
    assert_eq!(token["expires_in"], 1799);
    let bearer = format!("Bearer {}", token["access_token"].as_str().unwrap());
    get_ok(&incidents, &bearer).await;

    let bad_form = form.replace("xla-client-secret", "guess");
    let reply = send("POST", &token_url, None, Some(bad_form)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);

    // Expired tokens are refused; the refresh grant gives a new one.
    sim.expire_tokens();
    assert_eq!(
        send("GET", &incidents, Some(&bearer), None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let refresh = format!(
        "grant_type=refresh_token&client_id=xla-client&client_secret=xla-client-secret&refresh_token={}",
        token["refresh_token"].as_str().unwrap()
    );
    let reply = send("POST", &token_url, None, Some(refresh)).await;
    assert_eq!(reply.status, StatusCode::OK);
    let bearer = format!("Bearer {}", reply.json()["access_token"].as_str().unwrap());
    get_ok(&incidents, &bearer).await;

    // A short token lifetime.
    sim.set_options(ServiceNowOptions {
        token_lifetime: Duration::from_millis(200),
        ..sim.options()
    });
    let reply = send("POST", &token_url, None, Some(form.to_string())).await;
    let bearer = format!("Bearer {}", reply.json()["access_token"].as_str().unwrap());
    get_ok(&incidents, &bearer).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        send("GET", &incidents, Some(&bearer), None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn rate_limit_gives_429_with_retry_after() {
    let options = ServiceNowOptions {
        rate_limit: Some(RateLimit {
            limit: 3,
            window: Duration::from_secs(2),
            rule: "test rule".into(),
        }),
        ..ServiceNowOptions::default()
    };
    let (sim, auth) = start(options).await;
    let url = format!("{}/api/now/table/sys_user_group", sim.base_url());
    for _ in 0..3 {
        let reply = get_ok(&url, &auth).await;
        assert_eq!(reply.header("x-ratelimit-limit"), Some("3"));
        assert_eq!(reply.header("x-ratelimit-rule"), Some("test rule"));
        let reset: u64 = reply.header("x-ratelimit-reset").unwrap().parse().unwrap();
        assert!(reset >= unix_now().as_secs());
    }
    let reply = send("GET", &url, Some(&auth), None).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry));
    tokio::time::sleep(Duration::from_secs(retry)).await;
    get_ok(&url, &auth).await;
}

#[tokio::test]
async fn faults_by_request_number() {
    let options = ServiceNowOptions {
        faults: vec![
            FaultRule {
                fault: Fault::ServerError,
                on: Requests::Numbers(vec![1]),
            },
            FaultRule {
                fault: Fault::Throttle { retry_after_secs: 7 },
                on: Requests::Burst { first: 2, last: 3 },
            },
            FaultRule {
                fault: Fault::Malformed,
                on: Requests::Numbers(vec![4]),
            },
            FaultRule {
                fault: Fault::Truncated,
                on: Requests::Numbers(vec![5]),
            },
            FaultRule {
                fault: Fault::Slow(Duration::from_millis(300)),
                on: Requests::Numbers(vec![6]),
            },
            FaultRule {
                fault: Fault::ExpiredToken,
                on: Requests::Every(7),
            },
        ],
        ..ServiceNowOptions::default()
    };
    let (sim, auth) = start(options).await;
    let url = format!("{}/api/now/table/incident?sysparm_limit=5", sim.base_url());
    let reply = send("GET", &url, Some(&auth), None).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.json()["status"], "failure");
    for _ in 0..2 {
        let reply = send("GET", &url, Some(&auth), None).await;
        assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(reply.header("retry-after"), Some("7"));
    }
    for _ in 0..2 {
        let reply = get_ok(&url, &auth).await;
        assert!(serde_json::from_slice::<Value>(&reply.body).is_err());
    }
    let started = Instant::now();
    get_ok(&url, &auth).await.result();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(
        send("GET", &url, Some(&auth), None).await.status,
        StatusCode::UNAUTHORIZED
    );
    get_ok(&url, &auth).await.result();
    assert_eq!(sim.requests(), 8);
    sim.shutdown().await;
}

/// The single-record read pysnc's `get()` uses, in every rendering; the
/// shapes of field case 04-servicenow-references-without-names.json.
#[tokio::test]
async fn single_record_read() {
    let (sim, auth) = start(ServiceNowOptions {
        acl_hidden_share: 0.3,
        ..ServiceNowOptions::default()
    })
    .await;
    let base = sim.base_url();
    let org = sim.records();
    let incident = org
        .incidents
        .iter()
        .find(|i| sim.is_visible(&i.sys_id))
        .expect("a visible incident");
    let group = &org.groups[incident.assignment_group];
    let url = format!("{base}/api/now/table/incident/{}", incident.sys_id);
    let record = get_ok(&url, &auth).await.json()["result"].clone();
    assert_eq!(record["number"], incident.number.as_str());
    assert_eq!(record["sys_id"], incident.sys_id.as_str());
    // A plain reference: {link, value}.
    assert_eq!(record["assignment_group"]["value"], group.sys_id.as_str());
    assert_eq!(
        record["assignment_group"]["link"],
        format!("{base}/api/now/table/sys_user_group/{}", group.sys_id)
    );
    assert!(record["assignment_group"].get("display_value").is_none());
    // display_value=all: {display_value, link, value}; fields as asked, v2 path.
    let url = format!(
        "{base}/api/now/v2/table/incident/{}?sysparm_display_value=all&sysparm_fields=number,assignment_group,assignment_group.name",
        incident.sys_id
    );
    let record = get_ok(&url, &auth).await.json()["result"].clone();
    assert_eq!(record.as_object().map(|o| o.len()), Some(3));
    assert_eq!(record["assignment_group"]["display_value"], group.name);
    assert_eq!(record["assignment_group"]["value"], group.sys_id.as_str());
    assert!(record["assignment_group"]["link"].is_string());
    // Bare sys_ids with exclude_reference_link=true.
    let url = format!(
        "{base}/api/now/table/incident/{}?sysparm_exclude_reference_link=true&sysparm_fields=assignment_group",
        incident.sys_id
    );
    assert_eq!(
        get_ok(&url, &auth).await.json()["result"]["assignment_group"],
        group.sys_id.as_str()
    );
    // A referenced table, as a client resolving names reads it.
    let url = format!(
        "{base}/api/now/table/sys_user_group/{}?sysparm_fields=name",
        group.sys_id
    );
    assert_eq!(get_ok(&url, &auth).await.json()["result"]["name"], group.name);

    // Unknown and ACL-hidden records: 404 with ServiceNow's body.
    let hidden = org
        .incidents
        .iter()
        .find(|i| !sim.is_visible(&i.sys_id))
        .expect("a hidden incident");
    for sys_id in ["0123456789abcdef0123456789abcdef", hidden.sys_id.as_str()] {
        let reply = send(
            "GET",
            &format!("{base}/api/now/table/incident/{sys_id}"),
            Some(&auth),
            None,
        )
        .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
        assert_eq!(reply.json()["error"]["message"], "No Record found");
        assert_eq!(reply.json()["status"], "failure");
    }
    let reply = send(
        "GET",
        &format!("{base}/api/now/table/incident/{}", incident.sys_id),
        None,
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    sim.shutdown().await;
}

/// `task` serves incidents and requested items, for resolving a task SLA's
/// `task` sys_id; `dot_walking: false` leaves dot-walked fields out.
#[tokio::test]
async fn task_table_and_references_without_dot_walks() {
    let (sim, auth) = start(ServiceNowOptions {
        dot_walking: false,
        ..ServiceNowOptions::default()
    })
    .await;
    let base = sim.base_url();
    let org = sim.records();
    let (incident, request) = (&org.incidents[3], &org.requests[2]);
    let url = format!(
        "{base}/api/now/table/task?sysparm_query=sys_idIN{},{}&sysparm_fields=sys_id,number,sys_class_name",
        incident.sys_id, request.sys_id
    );
    let mut rows = get_ok(&url, &auth).await.result();
    rows.sort_by_key(|r| r["number"].as_str().map(String::from));
    let got: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["number"].as_str().unwrap_or(""),
                r["sys_class_name"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (incident.number.as_str(), "incident"),
            (request.number.as_str(), "sc_req_item")
        ]
    );
    let url = format!(
        "{base}/api/now/table/incident?sysparm_limit=1&sysparm_exclude_reference_link=true\
         &sysparm_fields=number,assignment_group,assignment_group.name"
    );
    let row = get_ok(&url, &auth).await.result().remove(0);
    assert_eq!(row.as_object().map(|o| o.len()), Some(2), "no dot-walk: {row}");
    assert_eq!(
        row["assignment_group"],
        org.groups[org.incidents[0].assignment_group].sys_id.as_str()
    );
    sim.shutdown().await;
}

/// field case 06-servicenow-2xx-not-a-page.http: each shape as a fault mode,
/// the cancellation only on pages larger than a size.
#[tokio::test]
async fn two_hundreds_that_are_not_a_page() {
    let rule = |shape, number| NotAPageRule {
        shape,
        on: Requests::Numbers(vec![number]),
        above_limit: 0,
    };
    let (sim, auth) = start(ServiceNowOptions {
        not_a_page: vec![
            rule(NotAPage::Cancelled, 1),
            rule(NotAPage::Spliced, 2),
            rule(NotAPage::Queued, 3),
            rule(NotAPage::Hibernating, 4),
            NotAPageRule {
                shape: NotAPage::Cancelled,
                on: Requests::Every(1),
                above_limit: 100,
            },
        ],
        ..ServiceNowOptions::default()
    })
    .await;
    let url = |limit: usize| format!("{}/api/now/table/incident?sysparm_limit={limit}", sim.base_url());
    let cancelled = get_ok(&url(10), &auth).await;
    assert_eq!(
        cancelled.json()["error"]["message"],
        "Transaction cancelled: maximum execution time exceeded"
    );
    assert!(cancelled.json().get("result").is_none());
    let spliced = get_ok(&url(10), &auth).await;
    let text = String::from_utf8_lossy(&spliced.body).into_owned();
    assert!(text.starts_with(r#"{"result":[{"#), "{text}");
    assert!(text.contains(r#""error":{"message":"Transaction cancelled"#), "{text}");
    assert!(serde_json::from_slice::<Value>(&spliced.body).is_err(), "not JSON");
    let queued = send("GET", &url(10), Some(&auth), None).await;
    assert_eq!(queued.status, StatusCode::ACCEPTED);
    assert!(queued.body.is_empty());
    let page = get_ok(&url(10), &auth).await;
    assert!(page.header("content-type").is_some_and(|t| t.starts_with("text/html")));
    assert!(page.body.starts_with(b"<html>"));
    // Past the numbered ones: small pages pass, large ones are cancelled.
    assert_eq!(get_ok(&url(100), &auth).await.result().len(), 100);
    assert!(get_ok(&url(101), &auth).await.json().get("error").is_some());
    sim.shutdown().await;
}
