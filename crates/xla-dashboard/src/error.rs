//! The dashboard's one error type: every failure answers an HTML page that
//! says what happened and what to do, with the API's status code; a
//! signed-out viewer is sent to the sign-in page and back.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use xla_api::ApiError;

/// What went wrong on a page.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// No session, or its token is no longer valid: sign in, then go to `next`.
    #[error("sign in to see this page")]
    SignIn {
        /// The page to return to.
        next: String,
    },
    /// What the API would answer with a status and a message.
    #[error("{0}")]
    Api(#[from] ApiError),
    /// A failure inside the host (logged; the page says little).
    #[error("{0}")]
    Internal(String),
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    title: &'a str,
    detail: &'a str,
}

/// Only a path on this dashboard is a place to return to after sign-in
/// (never another site: no open redirect).
pub fn local_next(next: &str) -> &str {
    let local = next.starts_with("/dashboard") && !next.starts_with("//") && !next.contains('\\');
    if local && next.bytes().all(|b| b.is_ascii_graphic()) {
        next
    } else {
        "/dashboard"
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, detail, retry_after) = match self {
            PageError::SignIn { next } => {
                let target = format!(
                    "/dashboard/sign-in?next={}",
                    form_urlencoded::byte_serialize(local_next(&next).as_bytes()).collect::<String>()
                );
                let mut response = StatusCode::SEE_OTHER.into_response();
                if let Ok(value) = HeaderValue::from_str(&target) {
                    response.headers_mut().insert(header::LOCATION, value.clone());
                    // htmx follows this instead of swapping the sign-in page into a fragment.
                    response.headers_mut().insert("hx-redirect", value);
                }
                return response;
            }
            PageError::Api(ApiError::TooManyRequests { retry_after }) => (
                StatusCode::TOO_MANY_REQUESTS,
                format!("Too many requests for this token; try again in {retry_after} s."),
                Some(retry_after),
            ),
            PageError::Api(error) => {
                let status = error.status();
                let detail = match &error {
                    ApiError::Internal(message) => {
                        tracing::error!("dashboard: {message}");
                        "Something failed inside the host; its log has the details.".to_string()
                    }
                    other => other.to_string(),
                };
                (status, detail, None)
            }
            PageError::Internal(message) => {
                tracing::error!("dashboard: {message}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something failed inside the host; its log has the details.".to_string(),
                    None,
                )
            }
        };
        let page = ErrorPage {
            status: status.as_u16(),
            title: status.canonical_reason().unwrap_or("Error"),
            detail: &detail,
        };
        let html = page
            .render()
            .unwrap_or_else(|_| String::from("<!doctype html><title>Error</title>"));
        let mut response = (status, Html(html)).into_response();
        if let Some(seconds) = retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_dashboard_paths_are_returned_to() {
        assert_eq!(
            local_next("/dashboard/tenants/acme/scorecard?period=2026-10"),
            "/dashboard/tenants/acme/scorecard?period=2026-10"
        );
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "/v1/tenants",
            "/dashboard\\..",
            "/dashboard/a b",
        ] {
            assert_eq!(local_next(bad), "/dashboard", "{bad}");
        }
    }
}
