//! HTTP error statuses as [`PluginError`]s: one table for every connector,
//! with the connector's own words for what the operator should do.
//!
//! | Status | Error | Why |
//! | --- | --- | --- |
//! | 401 | [`PluginError::Auth`] | the source refused the credential the host attached |
//! | 403 | [`PluginError::Auth`] | the credential was accepted but lacks the right (a role, a scope, an ACL): only the operator can change that, so the run ends as for a refused credential |
//! | 429 | [`PluginError::RateLimited`] | `Retry-After` seconds, else [`NO_RETRY_AFTER`] |
//! | 503 with `Retry-After` seconds | [`PluginError::RateLimited`] | the source said when it is back |
//! | 408, 5xx | [`PluginError::Transient`] | the source may answer next time |
//! | 404, other 4xx | [`PluginError::Permanent`] | the same request will get the same answer |
//!
//! The connector reads its vendor's error body (ServiceNow's
//! `{"error":{"message","detail"}}`, Nexthink's `{"message","code"}`, ...)
//! and says what the source answered; [`check`] picks the error and adds the
//! connector's [`Hints`]. `docs/connectors.md` has the same table.
//!
//! When to come back is the host's to know: it reads every response's
//! `Retry-After` (seconds or an HTTP-date, RFC 9110 §10.2.3) and rate limit
//! headers (`X-RateLimit-*`, the IETF `RateLimit` fields) before the plugin
//! does, holds the upstream for every instance reading it, and the sync
//! engine waits for what the host read. A plugin passes on the seconds it
//! can read and otherwise says [`NO_RETRY_AFTER`]: inventing a fixed wait
//! would hide a 429 without headers (a full request queue) behind a wait
//! without jitter, and an HTTP-date behind a wrong one.

use crate::PluginError;
use crate::http::Response;

/// [`PluginError::RateLimited`] seconds for a 429 that gives no
/// `Retry-After` in seconds (none at all, or an HTTP-date): the host, which
/// read the headers in every form, supplies the wait, else the sync engine
/// backs off with jitter (field case 05-servicenow-throttling.json).
pub const NO_RETRY_AFTER: u32 = 0;

/// What the connector tells the operator after the statuses they can act
/// on, appended to the message after `; `. An empty hint adds nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hints<'a> {
    /// After a 401: which credential to check, e.g. "check the credential
    /// the operator granted for this instance".
    pub unauthorized: &'a str,
    /// After a 403: which role, scope or permission the credential needs,
    /// e.g. "give the integration user a role that may read `incident`".
    pub forbidden: &'a str,
    /// After a 404: what to check, e.g. "is instance_url the instance's origin?".
    pub not_found: &'a str,
}

/// What an error status means for the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// 401: the credential was refused.
    Unauthorized,
    /// 403: the credential lacks the right.
    Forbidden,
    /// 429: slow down.
    RateLimited,
    /// 408 and 5xx: may pass.
    Transient,
    /// 404: nothing there.
    NotFound,
    /// Any other status from 400 up: will not pass.
    Permanent,
}

/// The class of `status`; `None` below 400 (not an error).
pub fn classify(status: u16) -> Option<Class> {
    Some(match status {
        0..=399 => return None,
        401 => Class::Unauthorized,
        403 => Class::Forbidden,
        429 => Class::RateLimited,
        408 | 500..=599 => Class::Transient,
        404 => Class::NotFound,
        _ => Class::Permanent,
    })
}

/// Passes a response below 400 through; turns an error status into the
/// [`PluginError`] of the table in the module docs.
///
/// `said` is called for every error status but 429, and says what the
/// source answered, with the vendor's own message read from the body:
/// ``ServiceNow answered 403 reading table `incident`: User Not Authorized``.
/// The hint for the status, if any, follows after `; `.
pub fn check(
    response: Response,
    hints: &Hints<'_>,
    said: impl FnOnce(&Response) -> String,
) -> Result<Response, PluginError> {
    let Some(class) = classify(response.status) else {
        return Ok(response);
    };
    if class == Class::RateLimited {
        let seconds = response.retry_after_seconds().unwrap_or(NO_RETRY_AFTER);
        return Err(PluginError::RateLimited(seconds));
    }
    // A 503 that says when the source is back is a wait, not a failure.
    if response.status == 503
        && let Some(seconds) = response.retry_after_seconds()
    {
        return Err(PluginError::RateLimited(seconds));
    }
    let said = said(&response);
    let with = |hint: &str| {
        if hint.is_empty() {
            said.clone()
        } else {
            format!("{said}; {hint}")
        }
    };
    Err(match class {
        Class::Unauthorized => PluginError::Auth(with(hints.unauthorized)),
        Class::Forbidden => PluginError::Auth(with(hints.forbidden)),
        Class::NotFound => PluginError::Permanent(with(hints.not_found)),
        Class::Transient => PluginError::Transient(said),
        Class::RateLimited | Class::Permanent => PluginError::Permanent(said),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HINTS: Hints<'static> = Hints {
        unauthorized: "check the token",
        forbidden: "grant the role",
        not_found: "check the URL",
    };

    fn answer(status: u16, headers: &[(&str, &str)]) -> Result<Response, PluginError> {
        let response = Response {
            status,
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            body: b"{\"message\":\"no\"}".to_vec(),
        };
        check(response, &HINTS, |r| format!("Acme answered {}: no", r.status))
    }

    #[test]
    fn the_table() {
        assert!(answer(200, &[]).is_ok());
        assert!(answer(304, &[]).is_ok());
        assert_eq!(
            answer(401, &[]),
            Err(PluginError::Auth("Acme answered 401: no; check the token".into()))
        );
        assert_eq!(
            answer(403, &[]),
            Err(PluginError::Auth("Acme answered 403: no; grant the role".into()))
        );
        assert_eq!(
            answer(404, &[]),
            Err(PluginError::Permanent("Acme answered 404: no; check the URL".into()))
        );
        assert_eq!(answer(429, &[("retry-after", "17")]), Err(PluginError::RateLimited(17)));
        assert_eq!(answer(429, &[("Retry-After", " 5 ")]), Err(PluginError::RateLimited(5)));
        // field case 05-servicenow-throttling.json: a date or nothing at all
        // is left to the host and the engine, not turned into a fixed 60 s.
        assert_eq!(
            answer(429, &[("retry-after", "Wed, 21 Oct 2026 07:28:00 GMT")]),
            Err(PluginError::RateLimited(NO_RETRY_AFTER))
        );
        assert_eq!(answer(429, &[]), Err(PluginError::RateLimited(NO_RETRY_AFTER)));
        assert_eq!(answer(503, &[("Retry-After", "30")]), Err(PluginError::RateLimited(30)));
        for status in [408, 500, 502, 503, 599] {
            assert_eq!(
                answer(status, &[]),
                Err(PluginError::Transient(format!("Acme answered {status}: no")))
            );
        }
        for status in [400, 405, 409, 410, 422, 451, 600] {
            assert_eq!(
                answer(status, &[]),
                Err(PluginError::Permanent(format!("Acme answered {status}: no")))
            );
        }
    }

    #[test]
    fn empty_hints_add_nothing() {
        let response = Response {
            status: 403,
            headers: Vec::new(),
            body: Vec::new(),
        };
        let said = |_: &Response| "refused".to_string();
        assert_eq!(
            check(response, &Hints::default(), said),
            Err(PluginError::Auth("refused".into()))
        );
    }
}
