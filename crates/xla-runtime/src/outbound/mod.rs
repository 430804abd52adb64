//! Outbound HTTP for connectors: the `wasi:http` hook that decides whether
//! a request may leave, adds the credential for its destination, caps its
//! bodies, bounds its time, the number in flight and the rate per upstream
//! origin, holds it while its upstream asked to be left alone
//! ([`throttle`]), and sends it to the very addresses it checked.

mod body;
mod connect;
mod credential;
mod grant;
mod rate;
pub(crate) mod request_parts;
pub mod throttle;

pub use credential::{Credential, CredentialError, CredentialKind, Secret};
pub use grant::{Grant, GrantError, Origin, is_non_public};
pub use rate::{RateLimit, RateLimitError, RateLimits};
pub use throttle::{Hold, Throttles};

use body::CappedBody;
use bytes::Bytes;
use connect::IoFuture;
use http_body_util::BodyExt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// Requests one instance may have in flight at once.
const MAX_IN_FLIGHT: usize = 8;
/// Refusals logged per instance; the rest are only counted, so a plugin
/// cannot flood the log by asking again and again.
const LOGGED_REFUSALS: u32 = 3;
/// Longest a request waits inside a plugin call for its upstream's hold to
/// end; a longer hold is answered at once with a 429, so the sync engine
/// decides whether the run waits or stops and is resumed at the time.
const MAX_HOLD_IN_CALL: Duration = Duration::from_secs(60);

/// What a connector instance may reach, and with which credentials.
#[derive(Debug)]
pub struct OutboundPolicy {
    manifest_hosts: Vec<Grant>,
    grants: Vec<Grant>,
    credentials: Vec<Arc<Credential>>,
    request_body_limit: u64,
    response_body_limit: u64,
    timeout: Duration,
    rate_limits: Option<Arc<RateLimits>>,
    throttles: Arc<Throttles>,
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
    /// The origin resolves to a non-public address the operator did not name.
    #[error(
        "{origin} resolves to the non-public address {ip}; only a grant naming that address (or `localhost`) exactly allows it"
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
    /// The method is not one a connector needs.
    #[error("method {0} is not allowed; connectors may use GET, HEAD, POST, PUT, PATCH, DELETE and OPTIONS")]
    Method(String),
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
            rate_limits: None,
            throttles: Throttles::shared(),
        })
    }

    /// This policy, learning and honouring upstream holds in `throttles`
    /// instead of the process's shared registry (tests give their own clock).
    pub fn with_throttles(mut self, throttles: Arc<Throttles>) -> OutboundPolicy {
        self.throttles = throttles;
        self
    }

    /// The longest hold in force on an origin this policy's grants reach:
    /// what the sync engine reads after a throttled call to decide between
    /// waiting, backing off and resuming later.
    pub fn hold(&self) -> Option<Hold> {
        self.throttles
            .longest_hold(|origin| self.grants.iter().any(|g| g.matches(origin)))
    }

    /// Now on the throttle registry's clock, unix ms (what [`Hold`] times are in).
    pub fn now_ms(&self) -> i64 {
        self.throttles.now_ms()
    }

    /// Waits out `origin`'s hold when it ends soon enough; otherwise the hold.
    async fn held(&self, origin: &Origin, deadline: Option<Instant>) -> Result<(), Hold> {
        loop {
            let hold = match self.throttles.admit(origin) {
                Ok(()) => return Ok(()),
                Err(hold) => hold,
            };
            let wait = hold.remaining(self.throttles.now_ms());
            let at = Instant::now() + wait;
            if wait > MAX_HOLD_IN_CALL || deadline.is_some_and(|deadline| at > deadline) {
                return Err(hold);
            }
            tokio::time::sleep_until(at).await;
        }
    }

    /// This policy, with requests held to the process's per-origin rate
    /// limits (shared with every other policy given the same registry).
    pub fn with_rate_limits(mut self, rate_limits: Arc<RateLimits>) -> OutboundPolicy {
        self.rate_limits = Some(rate_limits);
        self
    }

    /// Decides whether a request to `origin` may leave; on success, the
    /// addresses it may connect to.
    pub async fn admit(&self, origin: &Origin) -> Result<Vec<SocketAddr>, Denial> {
        if !self.manifest_hosts.iter().any(|g| g.matches(origin)) {
            return Err(Denial::NotInManifest(origin.clone()));
        }
        let grants: Vec<&Grant> = self.grants.iter().filter(|g| g.matches(origin)).collect();
        if grants.is_empty() {
            return Err(Denial::NotGranted(origin.clone()));
        }
        // Only a grant that names the address itself (or localhost) opens a
        // non-public address: granting a host name must not open whatever
        // that name happens to resolve to.
        let names_address = origin.host.parse::<IpAddr>().is_ok() || origin.host == "localhost";
        let private_allowed = names_address && grants.iter().any(|g| g.names_exactly(origin));
        let addrs = resolve(origin).await?;
        if !private_allowed && let Some(addr) = addrs.iter().find(|a| is_non_public(a.ip())) {
            return Err(Denial::NonPublic {
                origin: origin.clone(),
                ip: addr.ip(),
            });
        }
        Ok(addrs)
    }

    fn credential_for(&self, origin: &Origin) -> Option<Arc<Credential>> {
        self.credentials.iter().find(|c| c.origin() == origin).cloned()
    }

    async fn send(
        &self,
        hooks: &OutboundHooks,
        mut request: http::Request<WasiBody>,
    ) -> Result<(http::Response<WasiBody>, IoFuture), Error> {
        let origin = Origin::from_uri(request.uri()).ok_or(Error::HttpRequestUriInvalid)?;
        let addrs = match self.check_method(request.method()) {
            Ok(()) => self.admit(&origin).await,
            Err(denial) => Err(denial),
        };
        let addrs = addrs.map_err(|denial| {
            hooks.refused(&origin, &denial);
            Error::HttpRequestDenied
        })?;
        if content_length(request.headers()).is_some_and(|n| n > self.request_body_limit) {
            return Err(Error::HttpRequestBodySize(Some(self.request_body_limit)));
        }
        let permit = hooks
            .in_flight
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::ConnectionLimitReached)?;
        if let Err(hold) = self.held(&origin, hooks.deadline()).await {
            tracing::info!(plugin = %hooks.plugin, "{hold}; answering 429");
            return Ok(synthetic_held(&hold, self.throttles.now_ms()));
        }
        // Only a request that may leave takes a token, and it takes it last,
        // just before it is sent.
        if let Some(rate_limits) = &self.rate_limits
            && let Err(late) = rate_limits.acquire(&origin, hooks.deadline()).await
        {
            tracing::info!(plugin = %hooks.plugin, %origin, wait = ?late.wait, limit = %late.limit, "upstream rate limit: the next slot comes after the call's deadline; answering 429");
            return Ok(synthetic_rate_limited(&origin, &late));
        }
        let credential = self.credential_for(&origin);
        let mut sent_authorization = None;
        if let Some(credential) = &credential {
            match credential.authorization(self.timeout).await {
                Ok(value) => {
                    sent_authorization = Some(value.clone());
                    request.headers_mut().insert(http::header::AUTHORIZATION, value);
                }
                Err(e) => {
                    tracing::warn!(plugin = %hooks.plugin, %origin, "credential not applied: {e}");
                    return Ok(synthetic_unauthorized(&e));
                }
            }
        }
        tracing::debug!(plugin = %hooks.plugin, method = %request.method(), %origin, path = request.uri().path(), "outbound request");
        let limit = self.request_body_limit;
        let request = request.map(|body| CappedBody::request(body, limit, None).boxed_unsync());
        let (response, io) = tokio::time::timeout(self.timeout, connect::send(request, &origin, &addrs, self.timeout))
            .await
            .map_err(|_| Error::ConnectionTimeout)??;
        self.throttles
            .observe(&origin, response.status().as_u16(), response.headers());
        if response.status() == http::StatusCode::UNAUTHORIZED
            && let (Some(credential), Some(sent)) = (&credential, &sent_authorization)
        {
            credential.invalidate(sent).await;
        }
        if content_length(response.headers()).is_some_and(|n| n > self.response_body_limit) {
            return Err(Error::HttpResponseBodySize(Some(self.response_body_limit)));
        }
        let limit = self.response_body_limit;
        // The permit lives with the body: a request counts as in flight until
        // the plugin has read or dropped its response.
        let response = response.map(|body| CappedBody::response(body, limit, Some(permit)).boxed_unsync());
        Ok((response, io))
    }

    fn check_method(&self, method: &http::Method) -> Result<(), Denial> {
        use http::Method;
        let allowed = [
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ];
        if allowed.contains(method) {
            Ok(())
        } else {
            Err(Denial::Method(method.to_string()))
        }
    }
}

async fn resolve(origin: &Origin) -> Result<Vec<SocketAddr>, Denial> {
    if let Ok(ip) = origin.host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, origin.port)]);
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((origin.host.as_str(), origin.port))
        .await
        .map_err(|_| Denial::Unresolved(origin.clone()))?
        .collect();
    if addrs.is_empty() {
        return Err(Denial::Unresolved(origin.clone()));
    }
    Ok(addrs)
}

/// `Content-Length` when it is a plain decimal number.
fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    let value = headers.get(http::header::CONTENT_LENGTH)?.to_str().ok()?;
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// When the host cannot authenticate (say the OAuth2 token endpoint refused
/// the client), the plugin gets a 401 that explains it, so it reports an
/// auth error the operator can act on; the secret is never in the message.
fn synthetic_unauthorized(error: &CredentialError) -> (http::Response<WasiBody>, IoFuture) {
    let body = serde_json::json!({ "error": { "message": format!("xla-host: {error}") } }).to_string();
    let mut response = http::Response::new(connect::full_body(Bytes::from(body)));
    *response.status_mut() = http::StatusCode::UNAUTHORIZED;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    (response, Box::new(async { Ok(()) }))
}

/// When the upstream's rate limit leaves no slot before the call's deadline,
/// the plugin gets a 429 with `Retry-After`, as the upstream itself would
/// answer: it reports `rate-limited` and the sync engine waits that long.
fn synthetic_rate_limited(origin: &Origin, late: &rate::Late) -> (http::Response<WasiBody>, IoFuture) {
    let seconds = late.retry_after_seconds();
    let message = format!(
        "xla-host: requests to {origin} are limited to {} by the operator; the next slot is in {:.1} s, after this call's deadline",
        late.limit,
        late.wait.as_secs_f64()
    );
    let body = serde_json::json!({ "error": { "message": message } }).to_string();
    let mut response = http::Response::new(connect::full_body(Bytes::from(body)));
    *response.status_mut() = http::StatusCode::TOO_MANY_REQUESTS;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    headers.insert(http::header::RETRY_AFTER, http::HeaderValue::from(seconds));
    (response, Box::new(async { Ok(()) }))
}

/// While the host holds an upstream (it asked to be left alone, or its
/// rule's budget is spent), the plugin gets the 429 the upstream would give,
/// with `Retry-After` in whole seconds, rounded up.
fn synthetic_held(hold: &Hold, now_ms: i64) -> (http::Response<WasiBody>, IoFuture) {
    let wait = hold.remaining(now_ms);
    let seconds = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
    let message = format!("xla-host: {hold}; no request leaves for it before then");
    let body = serde_json::json!({ "error": { "message": message } }).to_string();
    let mut response = http::Response::new(connect::full_body(Bytes::from(body)));
    *response.status_mut() = http::StatusCode::TOO_MANY_REQUESTS;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    headers.insert(http::header::RETRY_AFTER, http::HeaderValue::from(seconds));
    (response, Box::new(async { Ok(()) }))
}

/// The `wasi:http` hooks of one plugin instance. Without a policy (a
/// connector run with no grants) every request is denied.
#[derive(Clone)]
pub(crate) struct OutboundHooks {
    plugin: Arc<str>,
    policy: Option<Arc<OutboundPolicy>>,
    in_flight: Arc<tokio::sync::Semaphore>,
    refusals: Arc<AtomicU32>,
    /// The deadline of the call in progress: a request that would wait past
    /// it for a rate-limit slot is answered at once instead.
    deadline: Arc<Mutex<Option<Instant>>>,
}

impl OutboundHooks {
    pub fn new(plugin: &str, policy: Option<Arc<OutboundPolicy>>) -> Self {
        OutboundHooks {
            plugin: plugin.into(),
            policy,
            in_flight: Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT)),
            refusals: Arc::new(AtomicU32::new(0)),
            deadline: Arc::new(Mutex::new(None)),
        }
    }

    /// Sets the deadline of the call about to start (`None`: none).
    pub fn set_deadline(&self, deadline: Option<Instant>) {
        if let Ok(mut slot) = self.deadline.lock() {
            *slot = deadline;
        }
    }

    fn deadline(&self) -> Option<Instant> {
        self.deadline.lock().ok().and_then(|slot| *slot)
    }

    fn refused(&self, origin: &Origin, denial: &Denial) {
        let count = self.refusals.fetch_add(1, Ordering::Relaxed) + 1;
        if count <= LOGGED_REFUSALS {
            tracing::warn!(plugin = %self.plugin, %origin, "outbound request refused: {denial}");
        } else {
            tracing::debug!(plugin = %self.plugin, %origin, count, "outbound request refused: {denial}");
        }
    }
}

impl WasiHttpHooks for OutboundHooks {
    /// One chunk waits in the body's channel while the guest writes the
    /// next: an unsent request holds at most two chunks of host memory.
    fn p2_outgoing_body_buffer_chunks(&mut self) -> usize {
        1
    }

    fn p2_outgoing_body_chunk_size(&mut self) -> usize {
        crate::limits::BODY_CHUNK_BYTES
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), Error>> + Send> {
        drop(fut);
        let hooks = self.clone();
        Box::new(async move {
            match hooks.policy.clone() {
                Some(policy) => policy.send(&hooks, request).await,
                None => {
                    let origin = Origin::from_uri(request.uri()).ok_or(Error::HttpRequestUriInvalid)?;
                    hooks.refused(&origin, &Denial::NotGranted(origin.clone()));
                    Err(Error::HttpRequestDenied)
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length_must_be_plain_digits() {
        let mut headers = http::HeaderMap::new();
        for (value, expected) in [("42", Some(42)), ("+5", None), ("", None), ("1e3", None)] {
            headers.insert(http::header::CONTENT_LENGTH, http::HeaderValue::from_static(value));
            assert_eq!(content_length(&headers), expected, "{value}");
        }
    }

    #[tokio::test]
    async fn a_granted_name_does_not_open_private_addresses() {
        let limits = super::super::Limits::default();
        let policy = OutboundPolicy::new(
            &["*".into()],
            &["http://localhost:8080".into(), "http://xla.localhost:8080".into()],
            Vec::new(),
            &limits,
        )
        .expect("policy");
        let localhost = Origin::parse("http://localhost:8080").expect("origin");
        assert!(
            policy.admit(&localhost).await.is_ok(),
            "localhost names the loopback address"
        );
        let other = Origin::parse("http://xla.localhost:8080").expect("origin");
        if let Err(Denial::Unresolved(_)) = policy.admit(&other).await {
            return; // this resolver does not map *.localhost to loopback
        }
        assert!(matches!(policy.admit(&other).await, Err(Denial::NonPublic { .. })));
    }
}
