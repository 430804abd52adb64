//! Outbound HTTP: grants, non-public addresses, credentials, redirects and
//! body caps, against real loopback servers.

use crate::support::{BEARER, OAUTH_ACCESS_TOKEN, attack, guests, server, tight_limits};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use xla_host::runtime::outbound::{Credential, CredentialKind, Origin, OutboundPolicy, Secret};
use xla_host::runtime::{Limits, PluginError, RuntimeError};

fn fetch(url: &str) -> serde_json::Value {
    json!({"attack": "fetch", "url": url})
}

fn refused(error: &RuntimeError) -> bool {
    matches!(error.plugin_error(), Some(PluginError::Permanent(m)) if m.contains("refused by the host sandbox"))
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
    assert_eq!(batch.observations[0].value, 200.0);
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
async fn loopback_is_refused_unless_granted_by_name() {
    let (a, _) = server().await;
    // A wildcard grant covers any public origin, never loopback.
    for grant in ["*", "http://*.localhost:*"] {
        let error = attack(fetch(&a.url("/ok")), tight_limits(), &[grant.to_string()], Vec::new())
            .await
            .unwrap_err();
        assert!(refused(&error), "grant {grant}: {error}");
    }
    let error = attack(
        fetch(&format!("http://localhost:{}/ok", a.addr.port())),
        tight_limits(),
        &["*".to_string()],
        Vec::new(),
    )
    .await
    .unwrap_err();
    assert!(refused(&error), "localhost resolves to loopback: {error}");
    assert_eq!(a.seen.hits(), 0);
}

#[tokio::test]
async fn the_host_adds_the_credential_and_the_plugin_never_sees_it() {
    let (a, _) = server().await;
    let credentials = vec![bearer(&a.origin(), BEARER)];
    let batch = attack(fetch(&a.url("/secret")), tight_limits(), &[a.origin()], credentials)
        .await
        .expect("authorised");
    assert_eq!(batch.observations[0].value, 200.0, "the credential reached the server");
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
    assert_eq!(batch.observations[0].value, 401.0);
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
    assert_eq!(batch.observations[0].value, 200.0);
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
    let credential = Credential::new(
        Origin::parse(&a.origin()).expect("origin"),
        CredentialKind::OAuth2ClientCredentials {
            token_url: a.url("/oauth2/token"),
            client_id: "xla".into(),
            client_secret: Secret::new("s3cret"),
            scope: Some("service:integration".into()),
        },
    );
    let limits = tight_limits();
    let policy = OutboundPolicy::new(&["*".into()], &[a.origin()], vec![credential], &limits).expect("policy");
    let mut session = crate::support::connector(guests::HOSTILE).session(limits, Some(Arc::new(policy)));
    for _ in 0..3 {
        let batch = session
            .pull(&fetch(&a.url("/api")).to_string(), None)
            .await
            .expect("authorised");
        assert_eq!(batch.observations[0].value, 200.0);
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
    let credential = Credential::new(
        Origin::parse(&a.origin()).expect("origin"),
        CredentialKind::OAuth2ClientCredentials {
            token_url: a.url("/oauth2/token"),
            client_id: "xla".into(),
            client_secret: Secret::new("wrong-secret-value"),
            scope: None,
        },
    );
    let batch = attack(fetch(&a.url("/api")), tight_limits(), &[a.origin()], vec![credential])
        .await
        .expect("answered");
    assert_eq!(batch.observations[0].value, 401.0);
    let body = &batch.observations[0].dimensions[0].1;
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

    let roomy = Limits {
        http_response_body_kib: 8 * 1024,
        memory_mib: 128,
        ..tight_limits()
    };
    let batch = attack(fetch(&a.url("/huge")), roomy, &[a.origin()], Vec::new())
        .await
        .expect("fits under 8 MiB");
    assert_eq!(batch.observations[0].value, 200.0);
}
