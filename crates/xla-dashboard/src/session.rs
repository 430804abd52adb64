//! Sessions: an API token (read scope or above) exchanged for a cookie.
//!
//! The cookie holds a random session id (256 bits from the OS), never the
//! token; the server keeps the SHA-256 of the id with the token's id, the
//! form key that guards the session's forms, and the expiry. Every page
//! re-reads the token's record, so revoking or expiring the token ends its
//! sessions at once; sign-out forgets the session on the server, so a
//! copied cookie is worth nothing afterwards.
//!
//! The cookie is `HttpOnly` (no script reads it), `SameSite=Strict` (no
//! other site's page sends it), `Path=/dashboard`, and `Secure` when the
//! request came over TLS (a proxy in front says so with
//! `X-Forwarded-Proto: https` or `Forwarded: proto=https`, RFC 7239).
//! Forms are guarded twice against cross-site requests: the browser's
//! `Origin` (or `Sec-Fetch-Site`) must be this host's, and a form that acts
//! on a session carries its form key.
//!
//! Sessions live in this process: a restart signs everyone out.

use crate::error::PageError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use subtle::ConstantTimeEq;
use xla_store::{Scope, TokenRecord};

/// The cookie's name.
pub const COOKIE: &str = "xla_session";
/// How long a session lasts from sign-in, ms.
pub const LIFETIME_MS: i64 = 8 * 3_600_000;
/// Most sessions kept in all; beyond it a sign-in is refused (503), never
/// paid for by another token's session.
const MAX_SESSIONS: usize = 10_000;
/// Most sessions of one token; its oldest goes first beyond it, so one
/// token's sign-ins cannot crowd out the others'.
const MAX_PER_TOKEN: usize = 20;

/// One signed-in session.
#[derive(Debug, Clone)]
struct Session {
    token_id: String,
    form_key: String,
    expires: i64,
}

/// The signed-in sessions, by the SHA-256 of their id.
#[derive(Debug, Default)]
pub struct Sessions {
    by_hash: Mutex<HashMap<String, Session>>,
}

/// A session just made: the cookie value to set.
#[derive(Debug)]
pub struct Opened {
    /// The session id, for the cookie.
    pub id: String,
}

fn random_hex() -> Result<String, PageError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| PageError::Internal(format!("no randomness for a session: {e}")))?;
    Ok(hex::encode(bytes))
}

fn hash(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

impl Sessions {
    /// Opens a session for `token`. A token keeps at most 20 sessions (its
    /// oldest is closed for a new one); the host at most 10,000 in all.
    ///
    /// # Errors
    /// [`PageError::Internal`] without OS randomness; 503 when the host
    /// holds 10,000 live sessions of other tokens.
    pub fn open(&self, token: &TokenRecord, now: i64) -> Result<Opened, PageError> {
        let id = random_hex()?;
        let session = Session {
            token_id: token.id.clone(),
            form_key: random_hex()?,
            expires: now + LIFETIME_MS,
        };
        let mut sessions = self.lock();
        sessions.retain(|_, s| s.expires > now);
        let mut own: Vec<(String, i64)> = sessions
            .iter()
            .filter(|(_, s)| s.token_id == token.id)
            .map(|(k, s)| (k.clone(), s.expires))
            .collect();
        own.sort_by_key(|(_, expires)| *expires);
        let excess = (own.len() + 1).saturating_sub(MAX_PER_TOKEN);
        for (key, _) in own.iter().take(excess) {
            sessions.remove(key);
        }
        if sessions.len() >= MAX_SESSIONS {
            return Err(PageError::Api(xla_api::ApiError::Unavailable(
                "the host holds as many dashboard sessions as it keeps; sign out elsewhere or try again later".into(),
            )));
        }
        sessions.insert(hash(&id), session);
        Ok(Opened { id })
    }

    /// Forgets the session `id` (sign-out).
    pub fn close(&self, id: &str) {
        self.lock().remove(&hash(id));
    }

    fn find(&self, id: &str, now: i64) -> Option<Session> {
        let sessions = self.lock();
        sessions.get(&hash(id)).filter(|s| s.expires > now).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        // A panic while holding the lock leaves a map that is still whole.
        self.by_hash.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The signed-in viewer of a page: the token behind the session, checked
/// on this request.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The token's record.
    pub token: TokenRecord,
    /// The key the session's forms carry.
    pub form_key: String,
    /// The session id (to close it).
    session_id: String,
}

impl Viewer {
    /// The session id, for sign-out.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// Whether `presented` is this session's form key (constant time).
    pub fn form_key_matches(&self, presented: &str) -> bool {
        self.form_key.as_bytes().ct_eq(presented.as_bytes()).into()
    }
}

/// The session id the request's cookies carry.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Whether the request came over TLS, as a proxy in front reports it.
pub fn over_tls(headers: &HeaderMap) -> bool {
    let says_https = |name: header::HeaderName, pattern: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains(pattern))
    };
    says_https(header::HeaderName::from_static("x-forwarded-proto"), "https")
        || says_https(header::FORWARDED, "proto=https")
}

/// The `Set-Cookie` value that carries session `id`.
pub fn set_cookie(id: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={id}; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age={}{}",
        LIFETIME_MS / 1000,
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie(secure: bool) -> String {
    format!(
        "{COOKIE}=; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

/// Whether a form post comes from this host's own pages: its `Origin`
/// names this host, or (a browser that sends no `Origin`) its
/// `Sec-Fetch-Site` is `same-origin`. A request with neither is no
/// browser's cross-site request and passes; session forms also need their
/// form key.
pub fn same_origin(headers: &HeaderMap) -> bool {
    // A proxy in front may rewrite `Host`; it names the host the browser
    // saw in `X-Forwarded-Host`. A cross-site form cannot set that header.
    let hosts: Vec<&str> = [header::HOST, header::HeaderName::from_static("x-forwarded-host")]
        .into_iter()
        .filter_map(|name| headers.get(name).and_then(|v| v.to_str().ok()))
        .filter_map(|v| v.split(',').next())
        .map(str::trim)
        .collect();
    if let Some(origin) = headers.get(header::ORIGIN) {
        let Ok(origin) = origin.to_str() else { return false };
        let bare = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .unwrap_or("");
        return hosts.iter().any(|host| bare.eq_ignore_ascii_case(host));
    }
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some(site) => site == "same-origin" || site == "none",
        None => true,
    }
}

impl FromRequestParts<Arc<crate::Dashboard>> for Viewer {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<crate::Dashboard>) -> Result<Viewer, PageError> {
        // Only a page is a place to come back to (not a form's target).
        let next = match parts.method {
            axum::http::Method::GET | axum::http::Method::HEAD => parts
                .uri
                .path_and_query()
                .map_or_else(|| "/dashboard".to_string(), |p| p.as_str().to_string()),
            _ => "/dashboard".to_string(),
        };
        let signed_out = || PageError::SignIn { next: next.clone() };
        let id = session_cookie(&parts.headers).ok_or_else(signed_out)?;
        let session = state.sessions.find(id, xla_types::now_ms()).ok_or_else(signed_out)?;
        let token = match xla_api::auth::live_token(&state.api, &session.token_id).await {
            Ok(token) => token,
            Err(xla_api::ApiError::Unauthorized(_)) => {
                state.sessions.close(id);
                return Err(signed_out());
            }
            Err(other) => return Err(PageError::from(other)),
        };
        if token.scope < Scope::Read {
            return Err(signed_out());
        }
        // Pages and API calls of one token share one rate.
        state.api.limiter.check(&token.id)?;
        Ok(Viewer {
            token,
            form_key: session.form_key,
            session_id: id.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_str(value).expect("a header value"));
        }
        headers
    }

    #[test]
    fn only_this_hosts_pages_may_post() {
        assert!(same_origin(&headers(&[
            ("host", "127.0.0.1:8470"),
            ("origin", "http://127.0.0.1:8470")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "127.0.0.1:8470"),
            ("origin", "http://evil.example")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "127.0.0.1:8470"),
            ("origin", "null")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "a"),
            ("sec-fetch-site", "cross-site")
        ])));
        assert!(same_origin(&headers(&[
            ("host", "a"),
            ("sec-fetch-site", "same-origin")
        ])));
    }

    #[test]
    fn the_cookie_is_read_only_when_well_formed() {
        let id = "ab".repeat(32);
        let h = headers(&[("cookie", &format!("other=1; {COOKIE}={id}"))]);
        assert_eq!(session_cookie(&h), Some(id.as_str()));
        assert_eq!(
            session_cookie(&headers(&[("cookie", &format!("{COOKIE}=<script>"))])),
            None
        );
        assert!(set_cookie(&id, true).contains("HttpOnly; SameSite=Strict"));
        assert!(set_cookie(&id, true).ends_with("; Secure"));
        assert!(!set_cookie(&id, false).contains("Secure"));
    }

    #[test]
    fn a_closed_or_expired_session_is_gone() {
        let sessions = Sessions::default();
        let token = TokenRecord {
            id: "0123456789ab".into(),
            sha256: String::new(),
            name: "t".into(),
            tenant: Some("acme".into()),
            scope: Scope::Read,
            created: 0,
            last_used: None,
            expires: None,
            revoked: None,
        };
        let opened = sessions.open(&token, 1_000).expect("a session");
        assert!(sessions.find(&opened.id, 2_000).is_some());
        assert!(sessions.find(&opened.id, 1_000 + LIFETIME_MS).is_none(), "expired");
        sessions.close(&opened.id);
        assert!(sessions.find(&opened.id, 2_000).is_none(), "closed");
        // One token's sign-ins close its own oldest sessions, no one else's.
        let other = TokenRecord {
            id: "ba9876543210".into(),
            ..token.clone()
        };
        let kept = sessions.open(&other, 1_000).expect("a session");
        let first = sessions.open(&token, 1_001).expect("a session");
        for i in 0..MAX_PER_TOKEN as i64 {
            sessions.open(&token, 1_002 + i).expect("a session");
        }
        assert!(sessions.find(&first.id, 2_000).is_none(), "the token's oldest went");
        assert!(sessions.find(&kept.id, 2_000).is_some(), "another token's stayed");
    }
}
