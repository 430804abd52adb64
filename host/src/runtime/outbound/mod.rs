//! Outbound HTTP for connectors: the `wasi:http` hook that decides whether
//! a request may leave, adds the credential for its destination, caps its
//! bodies and bounds its time.

mod body;
mod credential;
mod grant;

pub use credential::{Credential, CredentialError, CredentialKind, Secret};
pub use grant::{Grant, GrantError, Origin, is_non_public};

use body::CappedBody;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// What a connector instance may reach, and with which credentials.
#[derive(Debug)]
pub struct OutboundPolicy {
    manifest_hosts: Vec<Grant>,
    grants: Vec<Grant>,
    credentials: Vec<Arc<Credential>>,
    request_body_limit: u64,
    response_body_limit: u64,
    timeout: Duration,
}

/// Why a request was refused (logged for the operator; the plugin only
/// learns that it was denied).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Denial {
    /// The plugin's manifest does not list the origin.
    #[error("{0} is not among the hosts the plugin's manifest declares")]
    NotInManifest(Origin),
    /// The operator did not grant the origin.
    #[error("{0} is not granted to this connector instance; add it to the instance's `grants`")]
    NotGranted(Origin),
    /// The origin resolves to a non-public address and no grant names it exactly.
    #[error(
        "{origin} resolves to the non-public address {ip}; grant `{origin}` explicitly (not by wildcard) to allow it"
    )]
    NonPublic {
        /// The destination.
        origin: Origin,
        /// The address it resolved to.
        ip: IpAddr,
    },
    /// The host name does not resolve.
    #[error("{0} does not resolve")]
    Unresolved(Origin),
}

impl OutboundPolicy {
    /// A policy from the manifest's hosts, the operator's grants and credentials.
    pub fn new(
        manifest_hosts: &[String],
        grants: &[String],
        credentials: Vec<Credential>,
        limits: &super::Limits,
    ) -> Result<OutboundPolicy, GrantError> {
        let parse = |list: &[String]| list.iter().map(|g| Grant::parse(g)).collect::<Result<Vec<_>, _>>();
        Ok(OutboundPolicy {
            manifest_hosts: parse(manifest_hosts)?,
            grants: parse(grants)?,
            credentials: credentials.into_iter().map(Arc::new).collect(),
            request_body_limit: limits.http_request_body_kib.saturating_mul(1024),
            response_body_limit: limits.http_response_body_kib.saturating_mul(1024),
            timeout: limits.http_timeout(),
        })
    }

    /// Decides whether a request to `origin` may leave.
    pub async fn admit(&self, origin: &Origin) -> Result<(), Denial> {
        if !self.manifest_hosts.iter().any(|g| g.matches(origin)) {
            return Err(Denial::NotInManifest(origin.clone()));
        }
        let grants: Vec<&Grant> = self.grants.iter().filter(|g| g.matches(origin)).collect();
        if grants.is_empty() {
            return Err(Denial::NotGranted(origin.clone()));
        }
        if grants.iter().any(|g| g.names_exactly(origin)) {
            return Ok(());
        }
        for ip in resolve(origin).await? {
            if is_non_public(ip) {
                return Err(Denial::NonPublic {
                    origin: origin.clone(),
                    ip,
                });
            }
        }
        Ok(())
    }

    fn credential_for(&self, origin: &Origin) -> Option<Arc<Credential>> {
        self.credentials.iter().find(|c| c.origin() == origin).cloned()
    }

    async fn send(
        &self,
        plugin: &str,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<(http::Response<WasiBody>, IoFuture), Error> {
        let origin = Origin::from_uri(request.uri()).ok_or(Error::HttpRequestUriInvalid)?;
        if let Err(denial) = self.admit(&origin).await {
            tracing::warn!(plugin, %origin, "outbound request refused: {denial}");
            return Err(Error::HttpRequestDenied);
        }
        if content_length(request.headers()).is_some_and(|n| n > self.request_body_limit) {
            return Err(Error::HttpRequestBodySize(Some(self.request_body_limit)));
        }
        let credential = self.credential_for(&origin);
        if let Some(credential) = &credential {
            match credential.authorization(self.timeout).await {
                Ok(value) => {
                    request.headers_mut().insert(http::header::AUTHORIZATION, value);
                }
                Err(e) => {
                    tracing::warn!(plugin, %origin, "credential not applied: {e}");
                    return Ok(synthetic_unauthorized(&e));
                }
            }
        }
        tracing::debug!(plugin, method = %request.method(), %origin, path = request.uri().path(), "outbound request");
        let limit = self.request_body_limit;
        let request = request.map(|body| CappedBody::request(body, limit).boxed_unsync());
        let options = self.clamp(options);
        let (response, io) = tokio::time::timeout(
            self.timeout,
            wasmtime_wasi_http::default_send_request(request, Some(options)),
        )
        .await
        .map_err(|_| Error::ConnectionTimeout)??;
        if response.status() == http::StatusCode::UNAUTHORIZED
            && let Some(credential) = &credential
        {
            credential.invalidate().await;
        }
        if content_length(response.headers()).is_some_and(|n| n > self.response_body_limit) {
            return Err(Error::HttpResponseBodySize(Some(self.response_body_limit)));
        }
        let limit = self.response_body_limit;
        let response = response.map(|body| CappedBody::response(body.boxed_unsync(), limit).boxed_unsync());
        Ok((response, Box::new(io)))
    }

    fn clamp(&self, options: Option<RequestOptions>) -> RequestOptions {
        let cap = |asked: Option<Duration>| Some(asked.map_or(self.timeout, |d| d.min(self.timeout)));
        let options = options.unwrap_or_default();
        RequestOptions {
            connect_timeout: cap(options.connect_timeout),
            first_byte_timeout: cap(options.first_byte_timeout),
            between_bytes_timeout: cap(options.between_bytes_timeout),
        }
    }
}

type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;

async fn resolve(origin: &Origin) -> Result<Vec<IpAddr>, Denial> {
    if let Ok(ip) = origin.host.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    let addresses = tokio::net::lookup_host((origin.host.as_str(), origin.port))
        .await
        .map_err(|_| Denial::Unresolved(origin.clone()))?;
    let ips: Vec<IpAddr> = addresses.map(|a| a.ip()).collect();
    if ips.is_empty() {
        return Err(Denial::Unresolved(origin.clone()));
    }
    Ok(ips)
}

fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers.get(http::header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// When the host cannot authenticate (say the OAuth2 token endpoint refused
/// the client), the plugin gets a 401 that explains it, so it reports an
/// auth error the operator can act on; the secret is never in the message.
fn synthetic_unauthorized(error: &CredentialError) -> (http::Response<WasiBody>, IoFuture) {
    let body = serde_json::json!({ "error": { "message": format!("xla-host: {error}") } }).to_string();
    let body = Full::new(Bytes::from(body))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = http::Response::new(body);
    *response.status_mut() = http::StatusCode::UNAUTHORIZED;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    (response, Box::new(async { Ok(()) }))
}

/// The `wasi:http` hooks of one plugin instance. Without a policy (scorers,
/// or a connector run with no grants) every request is denied.
#[derive(Clone)]
pub(crate) struct OutboundHooks {
    plugin: Arc<str>,
    policy: Option<Arc<OutboundPolicy>>,
}

impl OutboundHooks {
    pub fn new(plugin: &str, policy: Option<Arc<OutboundPolicy>>) -> Self {
        OutboundHooks {
            plugin: plugin.into(),
            policy,
        }
    }
}

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), Error>> + Send> {
        drop(fut);
        let plugin = self.plugin.clone();
        let policy = self.policy.clone();
        Box::new(async move {
            match policy {
                Some(policy) => policy.send(&plugin, request, options).await,
                None => {
                    tracing::warn!(plugin = %plugin, uri = %request.uri(), "outbound request refused: this plugin has no network grants");
                    Err(Error::HttpRequestDenied)
                }
            }
        })
    }
}
