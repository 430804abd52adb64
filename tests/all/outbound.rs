//! Outbound HTTP: grants, non-public addresses, credentials, redirects and
//! body caps, against real loopback servers.

use crate::support::{BEARER, OAUTH_ACCESS_TOKEN, attack, guests, server, tight_limits};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use xla_host::runtime::outbound::{
    Credential, CredentialKind, Denial, Origin, OutboundPolicy, RateLimit, RateLimits, Secret,
};
use xla_host::runtime::{Limits, PluginError, RuntimeError};

fn fetch(url: &str) -> serde_json::Value {
    json!({"attack": "fetch", "url": url})
}

fn refused(error: &RuntimeError) -> bool {
    matches!(error.plugin_error(), Some(PluginError::Permanent(m)) if m.contains("refused by the host sandbox"))
}

/// OAuth2 client credentials against the test server's token endpoint.
fn oauth(server: &crate::support::Server, secret: &str) -> Credential {
    Credential::new(
        Origin::parse(&server.origin()).expect("origin"),
        CredentialKind::OAuth2ClientCredentials {
            token_url: server.url("/oauth2/token"),
            client_id: "xla".into(),
            client_secret: Secret::new(secret),
            scope: Some("service:integration".into()),
        },
    )
}

fn bearer(origin: &str, token: &str) -> Credential {
    Credential::new(
        Origin::parse(origin).expect("origin"),
        CredentialKind::Bearer {
            token: Secret::new(token),
        },
    )
}

#[tokio::test]
async fn a_granted_origin_is_reached() {
    let (a, _) = server().await;
    let batch = attack(fetch(&a.url("/ok")), tight_limits(), &[a.origin()], Vec::new())
        .await
        .expect("granted");
    assert_eq!(batch.changes.records[0].values[0].value, 200.0);
    assert_eq!(a.seen.hits(), 1);
}

#[tokio::test]
async fn an_ungranted_host_is_refused_and_never_reached() {
    let (a, _) = server().await;
    let (b, _) = server().await;
    let error = attack(fetch(&b.url("/ok")), tight_limits(), &[a.origin()], Vec::new())
        .await
        .unwrap_err();
    assert!(refused(&error), "{error}");
    assert_eq!(b.seen.hits(), 0, "the refused request must not leave the host");
}

#[tokio::test]
async fn loopback_is_refused_unless_granted_by_address() {
    let (a, _) = server().await;
    let limits = tight_limits();
    let origin = Origin::parse(&a.origin()).expect("origin");
    // A wildcard grant covers any public origin, never loopback.
    let wildcard = OutboundPolicy::new(&["*".into()], &["*".into()], Vec::new(), &limits).expect("policy");
    assert!(matches!(wildcard.admit(&origin).await, Err(Denial::NonPublic { .. })));
    let by_name = Origin::parse(&format!("http://localhost:{}", a.addr.port())).expect("origin");
    let suffix =
        OutboundPolicy::new(&["*".into()], &["http://*.localhost:*".into()], Vec::new(), &limits).expect("policy");
    let sub = Origin::parse(&format!("http://api.localhost:{}", a.addr.port())).expect("origin");
    assert!(
        suffix.admit(&sub).await.is_err(),
        "a host wildcard never opens loopback"
    );
    let any_port =
        OutboundPolicy::new(&["*".into()], &["http://localhost:*".into()], Vec::new(), &limits).expect("policy");
    assert!(
        any_port.admit(&by_name).await.is_ok(),
        "naming localhost (any port) is explicit"
    );
    let exact = OutboundPolicy::new(&["*".into()], &[a.origin()], Vec::new(), &limits).expect("policy");
    assert_eq!(exact.admit(&origin).await.expect("named exactly"), vec![a.addr]);

    // And end to end: the plugin is refused and the server never hears of it.
    for target in [a.url("/ok"), format!("http://localhost:{}/ok", a.addr.port())] {
        let error = attack(fetch(&target), tight_limits(), &["*".to_string()], Vec::new())
            .await
            .unwrap_err();
        assert!(refused(&error), "{target}: {error}");
    }
    assert_eq!(a.seen.hits(), 0);
}

#[tokio::test]
async fn the_host_adds_the_credential_and_the_plugin_never_sees_it() {
    let (a, _) = server().await;
    let credentials = vec![bearer(&a.origin(), BEARER)];
    let batch = attack(fetch(&a.url("/secret")), tight_limits(), &[a.origin()], credentials)
        .await
        .expect("authorised");
    assert_eq!(
        batch.changes.records[0].values[0].value, 200.0,
        "the credential reached the server"
    );
    assert_eq!(
        a.seen.authorization_for("/secret"),
        vec![Some(format!("Bearer {BEARER}"))]
    );
    let everything_the_plugin_returned = format!("{batch:?}");
    assert!(!everything_the_plugin_returned.contains(BEARER));

    // Without the credential the same request is refused by the server.
    let batch = attack(fetch(&a.url("/secret")), tight_limits(), &[a.origin()], Vec::new())
        .await
        .expect("answered");
    assert_eq!(batch.changes.records[0].values[0].value, 401.0);
}

#[tokio::test]
async fn a_redirect_to_another_origin_does_not_carry_the_credential() {
    let (a, _) = server().await;
    let (b, _) = server().await;
    let target = b.url("/landing");
    let credentials = vec![bearer(&a.origin(), BEARER)];
    let grants = [a.origin(), b.origin()];
    let batch = attack(
        fetch(&a.url(&format!("/redirect?to={target}"))),
        tight_limits(),
        &grants,
        credentials,
    )
    .await
    .expect("followed");
    assert_eq!(batch.changes.records[0].values[0].value, 200.0);
    assert_eq!(
        a.seen.authorization_for("/redirect"),
        vec![Some(format!("Bearer {BEARER}"))]
    );
    assert_eq!(
        b.seen.authorization_for("/landing"),
        vec![None],
        "the other origin got no credential"
    );
}

#[tokio::test]
async fn a_redirect_to_an_ungranted_origin_is_refused() {
    let (a, _) = server().await;
    let (b, _) = server().await;
    let target = b.url("/landing");
    let error = attack(
        fetch(&a.url(&format!("/redirect?to={target}"))),
        tight_limits(),
        &[a.origin()],
        Vec::new(),
    )
    .await
    .unwrap_err();
    assert!(refused(&error), "{error}");
    assert_eq!(b.seen.hits(), 0);
}

#[tokio::test]
async fn oauth2_tokens_are_fetched_once_cached_and_attached() {
    let (a, token_fetches) = server().await;
    let credential = oauth(&a, "s3cret");
    let limits = tight_limits();
    let policy = OutboundPolicy::new(&["*".into()], &[a.origin()], vec![credential], &limits).expect("policy");
    let mut session = crate::support::connector(guests::HOSTILE).session(limits, Some(Arc::new(policy)));
    for _ in 0..3 {
        let batch = session
            .pull(&fetch(&a.url("/api")).to_string(), None)
            .await
            .expect("authorised");
        assert_eq!(batch.changes.records[0].values[0].value, 200.0);
    }
    assert_eq!(token_fetches.load(Ordering::SeqCst), 1, "the token is cached");
    assert_eq!(
        a.seen.authorization_for("/api"),
        vec![Some(format!("Bearer {OAUTH_ACCESS_TOKEN}")); 3]
    );
}

#[tokio::test]
async fn a_refused_oauth2_client_becomes_an_auth_error_without_the_secret() {
    let (a, _) = server().await;
    let credential = oauth(&a, "wrong-secret-value");
    let batch = attack(fetch(&a.url("/api")), tight_limits(), &[a.origin()], vec![credential])
        .await
        .expect("answered");
    assert_eq!(batch.changes.records[0].values[0].value, 401.0);
    let body = &batch.changes.records[0].dimensions[0].1;
    assert!(body.contains("could not obtain an OAuth2 token"), "{body}");
    assert!(!body.contains("wrong-secret-value"));
    assert_eq!(
        a.seen.authorization_for("/api").len(),
        0,
        "no request went out without a token"
    );
}

#[tokio::test]
async fn response_bodies_are_capped() {
    let (a, _) = server().await;
    let limits = Limits {
        http_response_body_kib: 1024,
        ..tight_limits()
    };
    let error = attack(fetch(&a.url("/huge")), limits, &[a.origin()], Vec::new())
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("exceeded the host's limit of 1048576 bytes"),
        "{message}"
    );

    // Streamed without a Content-Length, the body is cut while it arrives.
    let error = attack(
        fetch(&a.url("/huge-chunked")),
        Limits {
            http_response_body_kib: 1024,
            ..tight_limits()
        },
        &[a.origin()],
        Vec::new(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(error.plugin_error(), Some(PluginError::Permanent(m)) if m.contains("1048576")),
        "{error}"
    );

    let roomy = Limits {
        http_response_body_kib: 8 * 1024,
        memory_mib: 128,
        ..tight_limits()
    };
    let batch = attack(fetch(&a.url("/huge")), roomy, &[a.origin()], Vec::new())
        .await
        .expect("fits under 8 MiB");
    assert_eq!(batch.changes.records[0].values[0].value, 200.0);
}

#[tokio::test]
async fn request_bodies_are_capped_before_anything_is_sent() {
    let (a, _) = server().await;
    let limits = Limits {
        http_request_body_kib: 64,
        ..tight_limits()
    };
    let upload = |kib: usize| json!({"attack": "upload", "url": a.url("/upload"), "kib": kib});
    let batch = attack(upload(32), limits.clone(), &[a.origin()], Vec::new())
        .await
        .expect("under the cap");
    assert_eq!(batch.changes.records[0].values[0].value, 200.0);
    let error = attack(upload(512), limits, &[a.origin()], Vec::new())
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("request body exceeded the host's limit of 65536 bytes"),
        "{error}"
    );
    assert_eq!(a.seen.hits(), 1, "only the small upload reached the server");
}

#[tokio::test]
async fn an_origin_outside_the_manifest_is_refused_even_when_granted() {
    let (a, _) = server().await;
    let limits = tight_limits();
    let manifest_hosts = ["https://*.service-now.com".to_string()];
    let policy = OutboundPolicy::new(&manifest_hosts, &[a.origin()], Vec::new(), &limits).expect("policy");
    let denial = policy
        .admit(&Origin::parse(&a.origin()).expect("origin"))
        .await
        .unwrap_err();
    assert!(
        denial
            .to_string()
            .contains("not among the hosts the plugin's manifest declares"),
        "{denial}"
    );
    let mut session = crate::support::connector(guests::HOSTILE).session(limits, Some(Arc::new(policy)));
    let error = session.pull(&fetch(&a.url("/ok")).to_string(), None).await.unwrap_err();
    assert!(refused(&error), "{error}");
    assert_eq!(a.seen.hits(), 0);
}

#[tokio::test]
async fn a_slow_upstream_hits_the_http_timeout() {
    let (a, _) = server().await;
    let limits = Limits {
        http_timeout_ms: 300,
        ..tight_limits()
    };
    let error = attack(fetch(&a.url("/slow")), limits, &[a.origin()], Vec::new())
        .await
        .unwrap_err();
    assert!(
        matches!(error.plugin_error(), Some(PluginError::Transient(m)) if m.contains("timed out")),
        "{error}"
    );
}

#[tokio::test]
async fn waiting_on_the_host_counts_against_the_call_deadline() {
    let (a, _) = server().await;
    let limits = Limits {
        deadline_ms: 400,
        http_timeout_ms: 60_000,
        ..tight_limits()
    };
    let error = attack(fetch(&a.url("/slow")), limits, &[a.origin()], Vec::new())
        .await
        .unwrap_err();
    assert!(matches!(error, RuntimeError::Deadline { .. }), "{error}");
}

#[tokio::test]
async fn a_failed_token_fetch_is_not_retried_at_once() {
    let (a, token_fetches) = server().await;
    let credential = oauth(&a, "wrong");
    let limits = tight_limits();
    let policy = OutboundPolicy::new(&["*".into()], &[a.origin()], vec![credential], &limits).expect("policy");
    let mut session = crate::support::connector(guests::HOSTILE).session(limits, Some(Arc::new(policy)));
    for _ in 0..5 {
        let batch = session
            .pull(&fetch(&a.url("/api")).to_string(), None)
            .await
            .expect("answered");
        assert_eq!(batch.changes.records[0].values[0].value, 401.0);
    }
    assert_eq!(
        token_fetches.load(Ordering::SeqCst),
        1,
        "one failed fetch, then answers from memory"
    );
}

/// A policy for the hostile guest to reach `server`, with the process's
/// rate limits.
fn limited_policy(server: &crate::support::Server, limits: &Limits, rates: &Arc<RateLimits>) -> Arc<OutboundPolicy> {
    let policy = OutboundPolicy::new(&["*".into()], &[server.origin()], Vec::new(), limits).expect("policy");
    Arc::new(policy.with_rate_limits(Arc::clone(rates)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_to_a_rate_limited_origin_never_outrun_its_bucket() {
    let (a, _) = server().await;
    let (rate, burst) = (10.0, 3);
    let origin = Origin::parse(&a.origin()).expect("origin");
    let rates = Arc::new(RateLimits::new([(
        origin,
        RateLimit::new(rate, Some(burst)).expect("valid"),
    )]));
    // Roomy deadlines: every request must get its slot in time, none a 429.
    let limits = Limits {
        deadline_ms: 20_000,
        ..tight_limits()
    };
    let pre = crate::support::connector(guests::HOSTILE);
    // Three sessions (as three instances would) share the one bucket.
    let sessions = (0..3).map(|_| {
        let mut session = pre.session(limits.clone(), Some(limited_policy(&a, &limits, &rates)));
        let url = a.url("/ok");
        async move {
            let mut statuses = Vec::new();
            for _ in 0..5 {
                let batch = session.pull(&fetch(&url).to_string(), None).await.expect("answered");
                statuses.push(batch.changes.records[0].values[0].value);
            }
            statuses
        }
    });
    let statuses: Vec<f64> = futures_util::future::join_all(sessions).await.concat();
    assert_eq!(
        statuses,
        vec![200.0; 15],
        "every request got its slot within the deadline"
    );
    let mut arrivals = a.seen.arrivals.lock().expect("not poisoned").clone();
    assert_eq!(arrivals.len(), 15);
    arrivals.sort();
    // The bucket's invariant: any window of the arrivals holds at most the
    // burst plus what the rate refills over it, plus one for loopback jitter
    // between a token's grant and the request's arrival.
    for (i, first) in arrivals.iter().enumerate() {
        for (j, last) in arrivals.iter().enumerate().skip(i) {
            let count = (j - i + 1) as f64;
            let allowed = f64::from(burst) + rate * last.duration_since(*first).as_secs_f64() + 1.0;
            assert!(
                count <= allowed,
                "{count} requests arrived within {:?}; the bucket allows {allowed:.1}",
                last.duration_since(*first)
            );
        }
    }
}

#[tokio::test]
async fn a_rate_limit_slot_past_the_deadline_is_a_429_at_once_not_a_timeout() {
    let (a, _) = server().await;
    let origin = Origin::parse(&a.origin()).expect("origin");
    // One request, then one every 100 s: the second cannot go before the deadline.
    let rates = Arc::new(RateLimits::new([(
        origin,
        RateLimit::new(0.01, Some(1)).expect("valid"),
    )]));
    let limits = tight_limits();
    let pre = crate::support::connector(guests::HOSTILE);
    let mut session = pre.session(limits.clone(), Some(limited_policy(&a, &limits, &rates)));
    let first = session
        .pull(&fetch(&a.url("/ok")).to_string(), None)
        .await
        .expect("sent");
    assert_eq!(first.changes.records[0].values[0].value, 200.0);

    // Another session of the process (another instance) shares the bucket.
    let mut other = pre.session(limits.clone(), Some(limited_policy(&a, &limits, &rates)));
    let second = other
        .pull(&fetch(&a.url("/ok")).to_string(), None)
        .await
        .expect("answered by the host, not stopped at the deadline");
    let observations = second.changes.observations();
    let observation = &observations[0];
    assert_eq!(observation.value, 429.0);
    let body = observation
        .dimensions
        .iter()
        .find(|(k, _)| k == "body")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    assert!(
        body.contains("limited to 0.01 requests/s") && body.contains(&a.origin()[7..]),
        "{body}"
    );
    assert_eq!(a.seen.hits(), 1, "the limited request never left the host");

    // An origin without a limit is not held by another's bucket.
    let (b, _) = server().await;
    let policy = OutboundPolicy::new(&["*".into()], &[b.origin()], Vec::new(), &limits).expect("policy");
    let mut free = pre.session(limits.clone(), Some(Arc::new(policy.with_rate_limits(rates))));
    for _ in 0..3 {
        let batch = free.pull(&fetch(&b.url("/ok")).to_string(), None).await.expect("sent");
        assert_eq!(batch.changes.records[0].values[0].value, 200.0);
    }
}

#[tokio::test]
async fn ipv6_forms_that_embed_a_private_ipv4_are_refused_under_a_wildcard_grant() {
    let policy = OutboundPolicy::new(&["*".into()], &["*".into()], Vec::new(), &tight_limits()).expect("policy");
    for origin in [
        "http://[::127.0.0.1]:8080",
        "http://[::ffff:127.0.0.1]:8080",
        "http://[64:ff9b::a9fe:a9fe]",
        "http://[64:ff9b::7f00:1]:8080",
        "http://[2002:a9fe:a9fe::1]",
        "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]",
    ] {
        let origin = Origin::parse(origin).expect("origin");
        let denial = policy.admit(&origin).await.unwrap_err();
        assert!(matches!(denial, Denial::NonPublic { .. }), "{origin}: {denial}");
    }
}
