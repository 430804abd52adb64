//! Credentials the host adds to a connector's requests.
//!
//! Secrets live in the host (config, environment or a file) and are attached
//! per destination origin, after the plugin has handed its request over: the
//! plugin never sees them, and a request to another origin (a redirect, say)
//! never carries them. They never appear in logs: [`Secret`] prints as `***`.

use super::grant::Origin;
use base64::Engine as _;
use bytes::Bytes;
use http::HeaderValue;
use http_body_util::{BodyExt, Full};
use std::fmt;
use std::time::{Duration, Instant};
use wasmtime_wasi_http::RequestOptions;

/// A secret string that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself; call only where it is sent.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How to authenticate to one origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialKind {
    /// HTTP Basic.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: Secret,
    },
    /// A static bearer token.
    Bearer {
        /// The token.
        token: Secret,
    },
    /// OAuth2 client credentials: the host fetches, caches and refreshes the
    /// access token (client id and secret sent with HTTP Basic, as Nexthink
    /// and most identity providers expect).
    OAuth2ClientCredentials {
        /// Token endpoint URL.
        token_url: String,
        /// Client id.
        client_id: String,
        /// Client secret.
        client_secret: Secret,
        /// Requested scope, if any.
        scope: Option<String>,
    },
    /// OAuth2 resource-owner password grant, as ServiceNow's
    /// `/oauth_token.do` takes it: client id and secret, user name and
    /// password in the form body. The host fetches, caches and refreshes the
    /// access token like a client-credentials one.
    OAuth2Password {
        /// Token endpoint URL.
        token_url: String,
        /// Client id.
        client_id: String,
        /// Client secret.
        client_secret: Secret,
        /// Integration user.
        username: String,
        /// Its password.
        password: Secret,
    },
}

impl CredentialKind {
    /// The kind's name, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            CredentialKind::Basic { .. } => "basic",
            CredentialKind::Bearer { .. } => "bearer",
            CredentialKind::OAuth2ClientCredentials { .. } => "oauth2",
            CredentialKind::OAuth2Password { .. } => "oauth2-password",
        }
    }
}

/// Why a credential could not be applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// The token endpoint could not be reached or refused the client.
    #[error("could not obtain an OAuth2 token from {url}: {reason}")]
    Token {
        /// Token endpoint.
        url: String,
        /// Why (never containing the secret).
        reason: String,
    },
    /// The secret contains bytes that cannot go in a header.
    #[error("the {kind} credential for {origin} contains characters not allowed in an HTTP header")]
    InvalidHeader {
        /// Kind of credential.
        kind: &'static str,
        /// Destination.
        origin: Origin,
    },
}

/// A credential bound to one origin, with its cached OAuth2 token.
#[derive(Debug)]
pub struct Credential {
    origin: Origin,
    kind: CredentialKind,
    token: tokio::sync::Mutex<Option<CachedToken>>,
    /// The last failed token fetch, answered from memory for a while so a
    /// plugin (or an outage) cannot make the host hammer the token endpoint.
    failure: tokio::sync::Mutex<Option<(Instant, String)>>,
}

#[derive(Debug)]
struct CachedToken {
    value: Secret,
    refresh_at: Instant,
}

/// Refresh tokens this long before they expire, so a request never races expiry.
const TOKEN_EARLY_REFRESH: Duration = Duration::from_secs(30);
/// How long a failed token fetch is remembered before the next attempt.
const TOKEN_FAILURE_BACKOFF: Duration = Duration::from_secs(10);
/// Largest token response read.
const TOKEN_RESPONSE_LIMIT: usize = 64 * 1024;

impl Credential {
    /// A credential for `origin`.
    pub fn new(origin: Origin, kind: CredentialKind) -> Self {
        Credential {
            origin,
            kind,
            token: tokio::sync::Mutex::new(None),
            failure: tokio::sync::Mutex::new(None),
        }
    }

    /// The origin it belongs to.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The kind.
    pub fn kind(&self) -> &CredentialKind {
        &self.kind
    }

    /// The `Authorization` header value, fetching a token when needed.
    pub async fn authorization(&self, timeout: Duration) -> Result<HeaderValue, CredentialError> {
        let value = match &self.kind {
            CredentialKind::Basic { username, password } => {
                let raw = format!("{username}:{}", password.expose());
                format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
            }
            CredentialKind::Bearer { token } => format!("Bearer {}", token.expose()),
            CredentialKind::OAuth2ClientCredentials {
                token_url,
                client_id,
                client_secret,
                scope,
            } => {
                let client = OAuthClient {
                    token_url,
                    client_id,
                    client_secret,
                    grant: OAuthGrant::ClientCredentials {
                        scope: scope.as_deref(),
                    },
                };
                format!("Bearer {}", self.oauth_token(&client, timeout).await?.expose())
            }
            CredentialKind::OAuth2Password {
                token_url,
                client_id,
                client_secret,
                username,
                password,
            } => {
                let client = OAuthClient {
                    token_url,
                    client_id,
                    client_secret,
                    grant: OAuthGrant::Password { username, password },
                };
                format!("Bearer {}", self.oauth_token(&client, timeout).await?.expose())
            }
        };
        let mut header = HeaderValue::from_str(&value).map_err(|_| CredentialError::InvalidHeader {
            kind: self.kind.name(),
            origin: self.origin.clone(),
        })?;
        header.set_sensitive(true);
        Ok(header)
    }

    /// Forgets the cached token after the origin answered 401 to a request
    /// that carried `sent`; a token fetched since then is kept.
    pub async fn invalidate(&self, sent: &HeaderValue) {
        let mut cached = self.token.lock().await;
        let matches = cached
            .as_ref()
            .is_some_and(|t| sent.to_str().ok() == Some(format!("Bearer {}", t.value.expose()).as_str()));
        if matches {
            *cached = None;
        }
    }

    async fn oauth_token(&self, client: &OAuthClient<'_>, timeout: Duration) -> Result<Secret, CredentialError> {
        // Holding the lock across the fetch makes concurrent requests share one token fetch.
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| Instant::now() < t.refresh_at) {
            return Ok(token.value.clone());
        }
        let mut failure = self.failure.lock().await;
        if let Some((at, reason)) = failure.as_ref().filter(|(at, _)| at.elapsed() < TOKEN_FAILURE_BACKOFF) {
            return Err(CredentialError::Token {
                url: client.token_url.to_string(),
                reason: format!("{reason} (failed {} s ago; retrying soon)", at.elapsed().as_secs()),
            });
        }
        match client.fetch_token(timeout).await {
            Ok(fresh) => {
                *failure = None;
                let value = fresh.value.clone();
                *cached = Some(fresh);
                Ok(value)
            }
            Err(error) => {
                let reason = match &error {
                    CredentialError::Token { reason, .. } => reason.clone(),
                    other => other.to_string(),
                };
                *failure = Some((Instant::now(), reason));
                Err(error)
            }
        }
    }
}

/// The fields of an OAuth2 credential.
struct OAuthClient<'a> {
    token_url: &'a str,
    client_id: &'a str,
    client_secret: &'a Secret,
    grant: OAuthGrant<'a>,
}

/// How the token is asked for.
#[derive(Clone, Copy)]
enum OAuthGrant<'a> {
    /// Client id and secret by HTTP Basic (Nexthink, most identity providers).
    ClientCredentials { scope: Option<&'a str> },
    /// Everything in the form body (ServiceNow).
    Password { username: &'a str, password: &'a Secret },
}

impl OAuthClient<'_> {
    async fn fetch_token(&self, timeout: Duration) -> Result<CachedToken, CredentialError> {
        let fail = |reason: String| CredentialError::Token {
            url: self.token_url.to_string(),
            reason,
        };
        let request = token_request(self.token_url, self.client_id, self.client_secret, self.grant).map_err(fail)?;
        let options = RequestOptions {
            connect_timeout: Some(timeout),
            first_byte_timeout: Some(timeout),
            between_bytes_timeout: Some(timeout),
        };
        let exchange = async {
            let (response, io) = wasmtime_wasi_http::default_send_request(request, Some(options))
                .await
                .map_err(|e| format!("{e}"))?;
            tokio::spawn(io);
            let status = response.status();
            let body = http_body_util::Limited::new(response.into_body(), TOKEN_RESPONSE_LIMIT)
                .collect()
                .await
                .map_err(|e| format!("reading the token response: {e}"))?
                .to_bytes();
            Ok::<_, String>((status, body))
        };
        let (status, body) = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| fail(format!("no answer within {} ms", timeout.as_millis())))?
            .map_err(fail)?;
        if !status.is_success() {
            return Err(fail(format!(
                "the token endpoint answered {status}; check the client id and secret"
            )));
        }
        parse_token(&body).map_err(fail)
    }
}

fn token_request(
    token_url: &str,
    client_id: &str,
    client_secret: &Secret,
    grant: OAuthGrant<'_>,
) -> Result<http::Request<impl http_body::Body<Data = Bytes, Error = wasmtime_wasi_http::Error> + Send + 'static>, String>
{
    let uri: http::Uri = token_url.parse().map_err(|e| format!("invalid token URL: {e}"))?;
    let host = uri
        .authority()
        .map(|a| a.to_string())
        .ok_or("the token URL has no host")?;
    let host_name = uri.host().unwrap_or_default().trim_matches(['[', ']']);
    let loopback = host_name == "localhost" || host_name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if uri.scheme_str() != Some("https") && !loopback {
        return Err("refusing to send the client secret over plain http; use an https token URL".into());
    }
    let mut form = form_urlencoded::Serializer::new(String::new());
    let mut request = http::Request::post(uri).header(http::header::HOST, host);
    match grant {
        OAuthGrant::ClientCredentials { scope } => {
            form.append_pair("grant_type", "client_credentials");
            if let Some(scope) = scope {
                form.append_pair("scope", scope);
            }
            let basic =
                base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{}", client_secret.expose()));
            let mut authorization = HeaderValue::from_str(&format!("Basic {basic}"))
                .map_err(|_| "the client id or secret contains characters not allowed in a header".to_string())?;
            authorization.set_sensitive(true);
            request = request.header(http::header::AUTHORIZATION, authorization);
        }
        OAuthGrant::Password { username, password } => {
            form.append_pair("grant_type", "password");
            form.append_pair("client_id", client_id);
            form.append_pair("client_secret", client_secret.expose());
            form.append_pair("username", username);
            form.append_pair("password", password.expose());
        }
    }
    let body = Full::new(Bytes::from(form.finish())).map_err(|never| match never {});
    request
        .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(http::header::ACCEPT, "application/json")
        .body(body)
        .map_err(|e| format!("building the token request: {e}"))
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<Seconds>,
}

/// `expires_in` as a number or, as some providers send it, a string.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Seconds {
    Number(u64),
    Text(String),
}

/// Lifetime assumed when the provider does not say.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(300);
/// Longest a token is cached, whatever the provider says.
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

fn parse_token(body: &[u8]) -> Result<CachedToken, String> {
    let token: TokenResponse = serde_json::from_slice(body)
        .map_err(|e| format!("the token response is not JSON with an access_token: {e}"))?;
    let seconds = match token.expires_in {
        Some(Seconds::Number(n)) => Some(n),
        Some(Seconds::Text(text)) => text.trim().parse().ok(),
        None => None,
    };
    let lifetime = seconds
        .map_or(DEFAULT_TOKEN_LIFETIME, Duration::from_secs)
        .min(MAX_TOKEN_LIFETIME);
    let now = Instant::now();
    Ok(CachedToken {
        value: Secret::new(token.access_token),
        refresh_at: now
            .checked_add(lifetime.saturating_sub(TOKEN_EARLY_REFRESH))
            .unwrap_or(now),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let kind = CredentialKind::Basic {
            username: "svc".into(),
            password: Secret::new("hunter2"),
        };
        let text = format!("{kind:?}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[tokio::test]
    async fn basic_and_bearer_headers() {
        let origin = Origin::parse("https://a.example").unwrap();
        let basic = Credential::new(
            origin.clone(),
            CredentialKind::Basic {
                username: "svc".into(),
                password: Secret::new("pw"),
            },
        );
        let header = basic.authorization(Duration::from_secs(1)).await.unwrap();
        assert_eq!(header.to_str().unwrap(), "Basic c3ZjOnB3");
        assert!(header.is_sensitive());
        let bearer = Credential::new(
            origin,
            CredentialKind::Bearer {
                token: Secret::new("t0k"),
            },
        );
        assert_eq!(
            bearer
                .authorization(Duration::from_secs(1))
                .await
                .unwrap()
                .to_str()
                .unwrap(),
            "Bearer t0k"
        );
    }

    #[test]
    fn token_lifetime_is_honoured() {
        let token = parse_token(br#"{"access_token":"abc","token_type":"Bearer","expires_in":900}"#).unwrap();
        assert_eq!(token.value.expose(), "abc");
        assert!(token.refresh_at > Instant::now() + Duration::from_secs(800));
        let text = parse_token(br#"{"access_token":"abc","expires_in":"3599"}"#).unwrap();
        assert!(text.refresh_at > Instant::now() + Duration::from_secs(3000));
        let huge = parse_token(br#"{"access_token":"abc","expires_in":18446744073709551615}"#).unwrap();
        assert!(
            huge.refresh_at <= Instant::now() + MAX_TOKEN_LIFETIME,
            "capped, and no overflow"
        );
        assert!(parse_token(b"{}").is_err());
    }
}

#[cfg(test)]
mod token_url_tests {
    use super::*;

    #[test]
    fn client_secrets_go_only_to_https_or_loopback() {
        let secret = Secret::new("s");
        assert!(
            token_request(
                "http://idp.example.com/token",
                "c",
                &secret,
                OAuthGrant::ClientCredentials { scope: None }
            )
            .is_err()
        );
        assert!(
            token_request(
                "https://idp.example.com/token",
                "c",
                &secret,
                OAuthGrant::ClientCredentials { scope: None }
            )
            .is_ok()
        );
        assert!(
            token_request(
                "http://127.0.0.1:9000/token",
                "c",
                &secret,
                OAuthGrant::ClientCredentials { scope: None }
            )
            .is_ok()
        );
        let password = OAuthGrant::Password {
            username: "integration",
            password: &secret,
        };
        assert!(token_request("http://sn.example.com/oauth_token.do", "c", &secret, password).is_err());
        assert!(token_request("https://sn.example.com/oauth_token.do", "c", &secret, password).is_ok());
    }
}
