//! 2xx answers that are not a page of records, as ServiceNow gives them
//! (field case `06-servicenow-2xx-not-a-page.http`):
//!
//! - a transaction cancelled past its quota (`glide.rest.transaction.quota`,
//!   "maximum execution time exceeded") answers 200 with the error object, or,
//!   when streaming had started, the rows sent so far with the error object
//!   spliced in mid-record (not JSON);
//! - a session with too many queued transactions answers 202 with an empty body;
//! - an instance in maintenance or hibernating answers 200 with an HTML page.

use super::Requests;
use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The error object of a cancelled transaction, exact bytes from the field case.
const CANCELLED: &[u8] = br#"{"error":{"message":"Transaction cancelled: maximum execution time exceeded","detail":"Transaction cancelled: maximum execution time exceeded Check logs for error trace or enable glide.rest.debug property to verify REST request processing"},"status":"failure"}"#;

/// The hibernation page (the field case's illustration).
const HIBERNATING: &[u8] =
    b"<html><head><title>Instance Hibernating page</title></head><body>Your instance is hibernating.</body></html>";

/// Which not-a-page answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotAPage {
    /// 200 whose body is the cancelled transaction's error object.
    Cancelled,
    /// 200 with the first half of the page, cut mid-record, and the error
    /// object spliced in after it.
    Spliced,
    /// 202 with an empty body.
    Queued,
    /// 200 with an HTML page.
    Hibernating,
}

/// A not-a-page answer and the page requests it hits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotAPageRule {
    /// What the instance answers.
    pub shape: NotAPage,
    /// On which Table API requests (numbered from 1, as for [`super::FaultRule`]).
    pub on: Requests,
    /// Only requests asking for more than this many records
    /// (`sysparm_limit`) are hit: a large page is what runs past the
    /// transaction quota. 0 hits every size.
    pub above_limit: usize,
}

impl NotAPageRule {
    /// Whether request `number` asking for `limit` records is hit.
    pub fn hits(&self, number: u64, limit: usize) -> bool {
        self.on.hits(number) && limit > self.above_limit
    }
}

/// The answer in place of `page` (the body the request would have had).
pub(crate) fn answer(shape: NotAPage, page: &Bytes) -> Response {
    let json = HeaderValue::from_static("application/json;charset=UTF-8");
    let (status, content_type, body) = match shape {
        NotAPage::Cancelled => (StatusCode::OK, Some(json), Bytes::from_static(CANCELLED)),
        NotAPage::Spliced => {
            // The error object starts with its key, without a separator,
            // right where streaming stopped, as the field case shows.
            let mut body = page.slice(..page.len() / 2).to_vec();
            body.extend_from_slice(&CANCELLED[1..]);
            (StatusCode::OK, Some(json), Bytes::from(body))
        }
        NotAPage::Queued => (StatusCode::ACCEPTED, None, Bytes::new()),
        NotAPage::Hibernating => (
            StatusCode::OK,
            Some(HeaderValue::from_static("text/html;charset=UTF-8")),
            Bytes::from_static(HIBERNATING),
        ),
    };
    let mut response = (status, Body::from(body)).into_response();
    if let Some(content_type) = content_type {
        response.headers_mut().insert(header::CONTENT_TYPE, content_type);
    }
    response
}
