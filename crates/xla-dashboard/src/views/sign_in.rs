//! Sign-in and sign-out: an API token exchanged for a session cookie, and
//! the session forgotten (see [`crate::session`]).

use super::PageQuery;
use super::render;
use crate::Dashboard;
use crate::error::{PageError, local_next};
use crate::session::{self, Viewer, clear_cookie, over_tls, same_origin, set_cookie};
use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use std::sync::Arc;
use xla_api::ApiError;
use xla_store::Scope;

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage<'a> {
    next: &'a str,
    problem: Option<&'a str>,
}

/// `?next=`: where to go after signing in.
#[derive(Debug, Default, Deserialize)]
pub struct NextParams {
    /// A path on this dashboard.
    pub next: Option<String>,
}

/// `GET /dashboard/sign-in`.
pub async fn form(PageQuery(params): PageQuery<NextParams>) -> Result<Response, PageError> {
    render(&SignInPage {
        next: local_next(params.next.as_deref().unwrap_or("/dashboard")),
        problem: None,
    })
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub struct SignInForm {
    /// The API token.
    #[serde(default)]
    pub token: String,
    /// Where to go after.
    #[serde(default)]
    pub next: String,
}

fn refused(next: &str, status: StatusCode, problem: &str) -> Result<Response, PageError> {
    let mut response = render(&SignInPage {
        next: local_next(next),
        problem: Some(problem),
    })?;
    *response.status_mut() = status;
    Ok(response)
}

/// `POST /dashboard/sign-in`: a valid token with read scope opens a session.
pub async fn submit(
    State(state): State<Arc<Dashboard>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let form: SignInForm = parse_form(&body)?;
    if !same_origin(&headers) {
        return refused(
            &form.next,
            StatusCode::FORBIDDEN,
            "This form only works from this host's own sign-in page.",
        );
    }
    let token = match xla_api::auth::verify(&state.api, form.token.trim()).await {
        Ok(token) => token,
        Err(ApiError::Unauthorized(_)) => {
            return refused(
                &form.next,
                StatusCode::UNAUTHORIZED,
                "That token is not valid (unknown, revoked or expired). `xla-host token create` makes one.",
            );
        }
        Err(other) => return Err(other.into()),
    };
    if token.scope < Scope::Read {
        return refused(
            &form.next,
            StatusCode::FORBIDDEN,
            "That token cannot read; use one with read scope.",
        );
    }
    // Signing in again replaces the session this browser held.
    if let Some(previous) = session::session_cookie(&headers) {
        state.sessions.close(previous);
    }
    let opened = state.sessions.open(&token, xla_types::now_ms())?;
    let mut response = Redirect::to(local_next(&form.next)).into_response();
    set(&mut response, &set_cookie(&opened.id, over_tls(&headers)));
    Ok(response)
}

/// The sign-out form.
#[derive(Debug, Deserialize)]
pub struct SignOutForm {
    /// The session's form key.
    #[serde(default)]
    pub form_key: String,
}

/// `POST /dashboard/sign-out`: the session is forgotten on the server and
/// its cookie removed.
pub async fn sign_out(
    State(state): State<Arc<Dashboard>>,
    headers: HeaderMap,
    viewer: Viewer,
    body: Bytes,
) -> Result<Response, PageError> {
    let form: SignOutForm = parse_form(&body)?;
    if !same_origin(&headers) || !viewer.form_key_matches(&form.form_key) {
        return Err(PageError::Api(ApiError::Forbidden(
            "sign out from this host's own pages (the form's key did not match)".into(),
        )));
    }
    state.sessions.close(viewer.session_id());
    let mut response = Redirect::to("/dashboard/sign-in").into_response();
    set(&mut response, &clear_cookie(session::over_tls(&headers)));
    Ok(response)
}

/// A form's fields (`application/x-www-form-urlencoded`), or the page's own
/// 400 naming what was wrong.
fn parse_form<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, PageError> {
    serde_urlencoded::from_bytes(body).map_err(|e| {
        PageError::Api(ApiError::BadRequest(format!(
            "the form's fields did not parse ({}); send it from the page",
            xla_types::untrusted::escape_capped(&e.to_string(), 200)
        )))
    })
}

fn set(response: &mut Response, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
}
