//! API tokens as the store keeps them: never the token itself, only its
//! SHA-256, with who it is for (a tenant, or every tenant for an operator),
//! what it may do, and when it was made, last used, set to expire and revoked.

use serde::{Deserialize, Serialize};

/// What a token may do; each scope includes the ones below it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Read reports, series, instances, runs.
    Read,
    /// Read, and push data: webhooks, imports, starting a sync.
    Write,
    /// Everything, including tokens.
    Admin,
}

impl Scope {
    /// The scope's name as in `--scope` and the API (`read`, `write`, `admin`).
    pub fn name(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Scope {
    type Err = String;

    fn from_str(s: &str) -> Result<Scope, String> {
        match s {
            "read" => Ok(Scope::Read),
            "write" => Ok(Scope::Write),
            "admin" => Ok(Scope::Admin),
            other => Err(format!("unknown scope `{other}`: use read, write or admin")),
        }
    }
}

/// A token as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// The public part of the token (`xla_<id>_...`), unique in the store:
    /// how `token list` and `token revoke` name it.
    pub id: String,
    /// SHA-256 of the whole token, lowercase hex.
    pub sha256: String,
    /// A name for people (`dashboard`, `servicenow-webhook`).
    pub name: String,
    /// The tenant it reads and writes; `None` for an operator token that
    /// spans every tenant.
    pub tenant: Option<String>,
    /// What it may do.
    pub scope: Scope,
    /// When it was made, unix ms.
    pub created: i64,
    /// When it was last used, unix ms (updated at most about once a minute).
    pub last_used: Option<i64>,
    /// When it stops working, unix ms.
    pub expires: Option<i64>,
    /// When it was revoked, unix ms.
    pub revoked: Option<i64>,
}

impl TokenRecord {
    /// Whether the token works at `now` (unix ms): not revoked, not expired.
    pub fn is_live(&self, now: i64) -> bool {
        self.revoked.is_none() && self.expires.is_none_or(|at| now < at)
    }

    /// Whether it may act on `tenant`'s data.
    pub fn covers(&self, tenant: &str) -> bool {
        self.tenant.as_deref().is_none_or(|own| own == tenant)
    }
}
