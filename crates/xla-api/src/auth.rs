//! Bearer tokens (RFC 6750): issuing, checking, and the [`Caller`] every
//! route extracts.
//!
//! A token reads `xla_<id>_<secret>`: the id (12 hex digits) is public and
//! names the token in `token list` and `token revoke`; the secret (64 hex
//! digits, 256 random bits from the OS) is shown once when the token is made.
//! The store keeps only the SHA-256 of the whole token. Checking a request
//! looks the record up by id and compares the hashes in constant time, so
//! neither the lookup nor the comparison tells an attacker how close a
//! guess came.

use crate::error::ApiError;
use crate::state::ApiState;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;
use xla_store::{Scope, Store, StoreError, TokenRecord};

/// How often a token's `last_used` is written, at most.
const LAST_USED_EVERY_MS: i64 = 60_000;

/// A token just made: the text to hand over once, and its record.
#[derive(Debug)]
pub struct Issued {
    /// The token; shown once, never stored.
    pub token: String,
    /// What the store keeps.
    pub record: TokenRecord,
}

/// What a new token is for.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// A name for people.
    pub name: String,
    /// Its tenant; `None` for every tenant (an operator).
    pub tenant: Option<String>,
    /// What it may do.
    pub scope: Scope,
    /// When it stops working, unix ms.
    pub expires: Option<i64>,
}

/// What went wrong issuing or revoking a token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The OS gave no randomness.
    #[error("the operating system gave no randomness for a token: {0}")]
    Random(String),
    /// No token has this id.
    #[error("no token `{0}`; `xla-host token list` shows the ids")]
    Unknown(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Makes a token and saves its record.
///
/// # Errors
/// [`TokenError::Random`] without OS randomness; store errors.
pub async fn issue(store: &dyn Store, request: TokenRequest, now: i64) -> Result<Issued, TokenError> {
    let mut bytes = [0u8; 38];
    getrandom::fill(&mut bytes).map_err(|e| TokenError::Random(e.to_string()))?;
    let (id, secret) = bytes.split_at(6);
    let id = hex::encode(id);
    let token = format!("xla_{id}_{}", hex::encode(secret));
    let record = TokenRecord {
        id,
        sha256: sha256_hex(&token),
        name: request.name,
        tenant: request.tenant,
        scope: request.scope,
        created: now,
        last_used: None,
        expires: request.expires,
        revoked: None,
    };
    store.save_token(&record).await?;
    Ok(Issued { token, record })
}

/// Revokes the token with `id` (idempotent: revoking twice keeps the first time).
///
/// # Errors
/// [`TokenError::Unknown`] for an id no token has; store errors.
pub async fn revoke(store: &dyn Store, id: &str, now: i64) -> Result<TokenRecord, TokenError> {
    let mut record = store
        .token(id)
        .await?
        .ok_or_else(|| TokenError::Unknown(id.to_string()))?;
    if record.revoked.is_none() {
        record.revoked = Some(now);
        store.save_token(&record).await?;
    }
    Ok(record)
}

fn sha256_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The id of a well-formed token.
fn token_id(token: &str) -> Option<&str> {
    let rest = token.strip_prefix("xla_")?;
    let (id, secret) = rest.split_once('_')?;
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(id, 12) && hex(secret, 64)).then_some(id)
}

/// The token of a request, checked: who is calling and what it may do.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's record.
    pub token: TokenRecord,
}

impl Caller {
    /// Refuses a token whose scope is below `needed`.
    ///
    /// # Errors
    /// [`ApiError::Forbidden`] naming both scopes.
    pub fn require(&self, needed: Scope) -> Result<(), ApiError> {
        if self.token.scope >= needed {
            return Ok(());
        }
        Err(ApiError::Forbidden(format!(
            "this needs a token with scope `{needed}`; token `{}` has `{}`",
            self.token.id, self.token.scope
        )))
    }

    /// Whether the token may see `tenant`'s data.
    pub fn sees(&self, tenant: &str) -> bool {
        self.token.covers(tenant)
    }
}

impl FromRequestParts<Arc<ApiState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<ApiState>) -> Result<Caller, ApiError> {
        // Two credentials in one request: which one counts would depend on
        // the proxy in front; refuse rather than pick.
        if parts.headers.get_all(AUTHORIZATION).iter().count() > 1 {
            return Err(ApiError::Unauthorized(
                "send one Authorization header, not several".into(),
            ));
        }
        let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
            ApiError::Unauthorized(
                "no token: send `Authorization: Bearer <token>` (`xla-host token create` makes one)".into(),
            )
        })?;
        let presented = header
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .ok_or_else(|| ApiError::Unauthorized("the Authorization header is not `Bearer <token>`".into()))?;
        Ok(Caller {
            token: verify(state, presented).await?,
        })
    }
}

/// The record of the token `presented` when it is well formed, known, its
/// secret matches (compared in constant time), and it is neither revoked
/// nor expired; counts it against its rate and notes its use. The API's
/// bearer tokens and the dashboard's sign-in both pass here.
///
/// # Errors
/// [`ApiError::Unauthorized`] (one message for every reason: it tells a
/// guesser nothing), [`ApiError::TooManyRequests`], store errors.
pub async fn verify(state: &Arc<ApiState>, presented: &str) -> Result<TokenRecord, ApiError> {
    let record = live_record(state, presented).await?;
    state.limiter.check(&record.id)?;
    note_use(state, &record, xla_types::now_ms());
    Ok(record)
}

/// The record of token id `id` while it is live (not revoked, not
/// expired): a dashboard session re-checks its token on every page.
///
/// # Errors
/// [`ApiError::Unauthorized`]; store errors.
pub async fn live_token(state: &ApiState, id: &str) -> Result<TokenRecord, ApiError> {
    match state.store.token(id).await? {
        Some(record) if record.is_live(xla_types::now_ms()) => Ok(record),
        _ => Err(refused()),
    }
}

fn refused() -> ApiError {
    ApiError::Unauthorized("the token is not valid (unknown, revoked or expired)".into())
}

async fn live_record(state: &ApiState, presented: &str) -> Result<TokenRecord, ApiError> {
    let id = token_id(presented).ok_or_else(refused)?;
    let record = state.store.token(id).await?.ok_or_else(refused)?;
    let matches: bool = sha256_hex(presented).as_bytes().ct_eq(record.sha256.as_bytes()).into();
    if !matches || !record.is_live(xla_types::now_ms()) {
        return Err(refused());
    }
    Ok(record)
}

/// Records the token's use, at most once a minute, off the request's path.
fn note_use(state: &Arc<ApiState>, record: &TokenRecord, now: i64) {
    if record.last_used.is_some_and(|at| now - at < LAST_USED_EVERY_MS) {
        return;
    }
    let store = Arc::clone(&state.store);
    let id = record.id.clone();
    tokio::spawn(async move {
        // Only `last_used` changes, atomically: a revocation since the
        // request began is never undone.
        if let Err(e) = store.note_token_use(&id, now).await {
            tracing::warn!(token = %id, "cannot record the token's last use: {e}");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_tokens_have_an_id() {
        let good = format!("xla_0123456789ab_{}", "f".repeat(64));
        assert_eq!(token_id(&good), Some("0123456789ab"));
        for bad in [
            "",
            "xla_",
            "xla_0123456789ab",
            &format!("xla_0123456789a_{}", "f".repeat(64)),
            &format!("xla_0123456789ab_{}", "f".repeat(63)),
            &format!("xla_0123456789zz_{}", "f".repeat(64)),
            &format!("tok_0123456789ab_{}", "f".repeat(64)),
        ] {
            assert_eq!(token_id(bad), None, "{bad}");
        }
    }
}
