//! The API's one error type: every failure answers
//! `application/problem+json` (RFC 9457) with a stable `type`, the HTTP
//! status, a short `title` and a `detail` that says what to do. Client
//! mistakes keep their precise message; an internal failure answers a
//! generic one and is logged with the request id, so nothing of the
//! host's insides (paths, backend errors) reaches a caller.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The media type of every error body (RFC 9457 §3).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// What went wrong, as the caller is told.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No token, a malformed one, an unknown, revoked or expired one.
    #[error("{0}")]
    Unauthorized(String),
    /// The token is valid but its scope does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// No such resource, or one the token may not know of.
    #[error("{0}")]
    NotFound(String),
    /// The method is not allowed on the route.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// A request that conflicts with the resource's state (a sync already running).
    #[error("{0}")]
    Conflict(String),
    /// The body is larger than the cap.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The body's media type is not one the route takes.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A well-formed request the host cannot act on: a bad parameter, a body
    /// that does not parse.
    #[error("{0}")]
    Unprocessable(String),
    /// A malformed request (query that does not parse).
    #[error("{0}")]
    BadRequest(String),
    /// Too many requests for the token; retry after this many seconds.
    #[error("too many requests for this token; retry after {retry_after} s")]
    TooManyRequests {
        /// Seconds to wait.
        retry_after: u64,
    },
    /// The host is not ready (store or plugins not loaded).
    #[error("{0}")]
    Unavailable(String),
    /// The request took longer than the per-request timeout.
    #[error(
        "the request took longer than the per-request timeout ([api] request_timeout_s); narrow it (a shorter window, fewer groups) or try again"
    )]
    Timeout,
    /// A failure inside the host; the message is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the kind of problem.
    #[serde(rename = "type")]
    #[schema(example = "https://xla-host.dev/problems/not-found")]
    pub kind: String,
    /// A short summary of the kind.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong in this request and what to do about it.
    pub detail: String,
    /// The request's id (`x-request-id`), to find it in the host's log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem type's last path segment.
    fn slug(&self) -> &'static str {
        match self {
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not-found",
            ApiError::MethodNotAllowed(_) => "method-not-allowed",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge(_) => "payload-too-large",
            ApiError::UnsupportedMediaType(_) => "unsupported-media-type",
            ApiError::Unprocessable(_) => "unprocessable",
            ApiError::BadRequest(_) => "bad-request",
            ApiError::TooManyRequests { .. } => "too-many-requests",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Timeout => "timeout",
            ApiError::Internal(_) => "internal",
        }
    }

    /// The problem document; an internal error's detail is generic.
    pub fn problem(&self, request_id: Option<String>) -> Problem {
        let status = self.status();
        let detail = match self {
            ApiError::Internal(_) => {
                "the host failed to answer this request; it is logged under this request id".to_string()
            }
            other => other.to_string(),
        };
        Problem {
            kind: format!("https://xla-host.dev/problems/{}", self.slug()),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail,
            request_id,
        }
    }

    /// A resource the caller may not know of, named by what was asked.
    pub fn not_found(what: impl std::fmt::Display) -> ApiError {
        ApiError::NotFound(format!("{what} does not exist (or this token cannot see it)"))
    }
}

impl From<xla_store::StoreError> for ApiError {
    fn from(error: xla_store::StoreError) -> ApiError {
        use xla_store::StoreError;
        match error {
            StoreError::RetiredRows { .. } | StoreError::BadRequest(_) | StoreError::BadObservation { .. } => {
                ApiError::Unprocessable(error.to_string())
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(message) = &self {
            tracing::error!(error = %message, "internal error answering a request");
        }
        let status = self.status();
        let retry_after = match &self {
            ApiError::TooManyRequests { retry_after } => Some(*retry_after),
            _ => None,
        };
        // The request id is added by the problem layer (see `ops`), which
        // sees the request; here only the body and headers are made.
        let mut response = (status, Json(self.problem(None))).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(seconds) = retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            headers.insert(header::RETRY_AFTER, value);
        }
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"xla-host\""),
            );
        }
        response
    }
}
