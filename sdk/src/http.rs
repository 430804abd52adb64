//! Outbound HTTP through the host.
//!
//! A plugin builds a [`Request`] and calls [`Request::send`]. On wasm the
//! request goes out through `wasi:http`; the host allows it only to origins
//! the operator granted and adds the credentials configured for that origin,
//! so a plugin never handles a password or token. On the host target (for
//! `cargo test`) requests are answered from recorded exchanges installed by
//! [`crate::testkit`].

use crate::PluginError;
use serde::de::DeserializeOwned;

/// An HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    /// GET
    Get,
    /// POST
    Post,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
}

impl Method {
    /// The method as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// Most redirects [`Request::send`] follows.
pub const MAX_REDIRECTS: usize = 5;

/// An outgoing request.
#[derive(Debug, Clone)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The absolute URL, query included.
    pub url: url::Url,
    /// Headers in the order they were added.
    pub headers: Vec<(String, String)>,
    /// The body (empty for none).
    pub body: Vec<u8>,
}

/// A GET request to `url`.
pub fn get(url: &str) -> Result<Request, PluginError> {
    Request::new(Method::Get, url)
}

/// A POST request to `url`.
pub fn post(url: &str) -> Result<Request, PluginError> {
    Request::new(Method::Post, url)
}

impl Request {
    /// A request with the given method; `url` must be absolute (`https://host/path`).
    pub fn new(method: Method, url: &str) -> Result<Request, PluginError> {
        let url = url::Url::parse(url).map_err(|e| PluginError::Config(format!("invalid URL `{url}`: {e}")))?;
        if url.host_str().is_none() {
            return Err(PluginError::Config(format!("URL `{url}` has no host")));
        }
        Ok(Request {
            method,
            url,
            headers: Vec::new(),
            body: Vec::new(),
        })
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Appends a query parameter (percent-encoded).
    pub fn query(mut self, name: &str, value: &str) -> Self {
        self.url.query_pairs_mut().append_pair(name, value);
        self
    }

    /// Sets a raw body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets a form-encoded body and its content type.
    pub fn form(self, pairs: &[(&str, &str)]) -> Self {
        let encoded = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(encoded)
    }

    /// Sends the request and waits for the whole response.
    ///
    /// Failing to get any response is an error; a response with any status is
    /// not (see [`Response::error_for_status`]).
    ///
    /// A GET that is redirected is followed, up to [`MAX_REDIRECTS`] times.
    /// The host attaches credentials per destination origin, so a redirect to
    /// another origin never carries the first origin's credentials; headers
    /// the plugin set itself (`authorization`, `cookie`) are dropped on a
    /// cross-origin redirect too.
    pub fn send(self) -> Result<Response, PluginError> {
        let mut request = self;
        for _ in 0..=MAX_REDIRECTS {
            let response = transport::send(&request)?;
            match request.redirected(&response) {
                Some(next) => request = next,
                None => return Ok(response),
            }
        }
        Err(PluginError::Permanent(format!(
            "{}: more than {MAX_REDIRECTS} redirects",
            request.describe()
        )))
    }

    fn redirected(&self, response: &Response) -> Option<Request> {
        if self.method != Method::Get || !matches!(response.status, 301 | 302 | 303 | 307 | 308) {
            return None;
        }
        let url = self.url.join(response.header("location")?).ok()?;
        let same_origin = url.origin() == self.url.origin();
        let headers = self
            .headers
            .iter()
            .filter(|(name, _)| {
                same_origin || !(name.eq_ignore_ascii_case("authorization") || name.eq_ignore_ascii_case("cookie"))
            })
            .cloned()
            .collect();
        Some(Request {
            method: Method::Get,
            url,
            headers,
            body: Vec::new(),
        })
    }

    /// `METHOD url`, for messages.
    pub fn describe(&self) -> String {
        format!("{} {}", self.method.as_str(), self.url)
    }
}

/// A complete response.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of a header (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as UTF-8 text (invalid bytes replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Parses the body as JSON; failure is [`PluginError::BadData`].
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, PluginError> {
        let de = &mut serde_json::Deserializer::from_slice(&self.body);
        serde_path_to_error::deserialize(de).map_err(|e| {
            PluginError::BadData(format!(
                "response body is not the expected JSON at `{}`: {}",
                e.path(),
                e.inner()
            ))
        })
    }

    /// Turns an error status into the matching [`PluginError`] by the table
    /// of [`crate::status`]: 401/403 auth, 429 rate-limited (with
    /// `Retry-After` seconds, or [`crate::status::NO_RETRY_AFTER`]), 408 and
    /// 5xx transient (a 503 with `Retry-After` seconds rate-limited), other 4xx permanent. A connector
    /// that can say more (the vendor's error message, what to grant) calls
    /// [`crate::status::check`] with its hints instead.
    pub fn error_for_status(self) -> Result<Response, PluginError> {
        crate::status::check(self, &crate::status::Hints::default(), |r| {
            format!("the source answered {}: {}", r.status, r.snippet(300))
        })
    }

    /// The start of the body as text, at most `max_chars` characters: enough
    /// of an error page for a message.
    pub fn snippet(&self, max_chars: usize) -> String {
        self.text().chars().take(max_chars).collect()
    }

    /// `Retry-After` in seconds, when given as a number. An HTTP-date is
    /// read by the host, which has the clock (see [`crate::status`]).
    pub fn retry_after_seconds(&self) -> Option<u32> {
        self.header("retry-after")?.trim().parse().ok()
    }
}

#[cfg(all(target_arch = "wasm32", not(feature = "connector")))]
mod transport {
    //! Scorers have no network.
    use super::{Request, Response};
    use crate::PluginError;

    pub(super) fn send(request: &Request) -> Result<Response, PluginError> {
        Err(PluginError::Permanent(format!(
            "{}: only connectors may use the network",
            request.describe()
        )))
    }
}

#[cfg(all(target_arch = "wasm32", feature = "connector"))]
mod transport {
    //! The wasi:http transport.
    use super::{Method as SdkMethod, Request, Response};
    use crate::PluginError;

    use crate::connector::bindings::wasi::http::{
        outgoing_handler,
        types::{
            ErrorCode, Fields, FutureIncomingResponse, IncomingBody, IncomingResponse, Method, OutgoingBody,
            OutgoingRequest, Scheme,
        },
    };
    use crate::connector::bindings::wasi::io::streams::StreamError;

    /// Largest write `blocking-write-and-flush` accepts.
    const WRITE_CHUNK: usize = 4096;

    pub(super) fn send(request: &Request) -> Result<Response, PluginError> {
        let what = request.describe();
        let outgoing = build(request)?;
        let body = outgoing
            .body()
            .map_err(|()| PluginError::Permanent(format!("{what}: request body already taken")))?;
        let future = outgoing_handler::handle(outgoing, None).map_err(|e| map_error(&what, e))?;
        if let Err(message) = write_body(&body, &request.body) {
            // The host may have refused the request (say, a body over its
            // limit): its answer says why better than the closed stream does.
            drop(body);
            return Err(match wait(&future) {
                Ok(Err(code)) => map_error(&what, code),
                _ => PluginError::Transient(format!("{what}: {message}")),
            });
        }
        OutgoingBody::finish(body, None).map_err(|e| map_error(&what, e))?;

        let incoming = wait(&future)
            .map_err(|()| PluginError::Transient(format!("{what}: response already taken")))?
            .map_err(|e| map_error(&what, e))?;
        let status = incoming.status();
        let headers = incoming
            .headers()
            .entries()
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), String::from_utf8_lossy(&v).into_owned()))
            .collect();
        let body = read_body(&what, incoming.consume().ok())?;
        Ok(Response { status, headers, body })
    }

    fn wait(future: &FutureIncomingResponse) -> Result<Result<IncomingResponse, ErrorCode>, ()> {
        loop {
            match future.get() {
                Some(result) => return result,
                None => future.subscribe().block(),
            }
        }
    }

    fn build(request: &Request) -> Result<OutgoingRequest, PluginError> {
        let what = request.describe();
        let headers = Fields::new();
        // A declared length lets the host refuse an oversized body before
        // anything is sent, with a message that says so.
        if !request.body.is_empty()
            && !request
                .headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        {
            let length = request.body.len().to_string().into_bytes();
            headers
                .append("content-length", &length)
                .map_err(|e| PluginError::Config(format!("{what}: content-length refused: {e:?}")))?;
        }
        for (name, value) in &request.headers {
            headers
                .append(name, &value.as_bytes().to_vec())
                .map_err(|e| PluginError::Config(format!("{what}: header `{name}` refused: {e:?}")))?;
        }
        let outgoing = OutgoingRequest::new(headers);
        let method = match request.method {
            SdkMethod::Get => Method::Get,
            SdkMethod::Post => Method::Post,
            SdkMethod::Put => Method::Put,
            SdkMethod::Patch => Method::Patch,
            SdkMethod::Delete => Method::Delete,
        };
        let url = &request.url;
        let scheme = match url.scheme() {
            "https" => Scheme::Https,
            "http" => Scheme::Http,
            other => Scheme::Other(other.to_string()),
        };
        let host = url.host_str().unwrap_or_default();
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        let invalid = |part: &str| PluginError::Config(format!("{what}: invalid {part}"));
        outgoing.set_method(&method).map_err(|()| invalid("method"))?;
        outgoing.set_scheme(Some(&scheme)).map_err(|()| invalid("scheme"))?;
        outgoing
            .set_authority(Some(&authority))
            .map_err(|()| invalid("authority"))?;
        outgoing
            .set_path_with_query(Some(&path))
            .map_err(|()| invalid("path"))?;
        Ok(outgoing)
    }

    fn write_body(body: &OutgoingBody, bytes: &[u8]) -> Result<(), String> {
        if bytes.is_empty() {
            return Ok(());
        }
        let stream = body
            .write()
            .map_err(|()| "request body stream unavailable".to_string())?;
        for chunk in bytes.chunks(WRITE_CHUNK) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| format!("writing the request body failed: {e:?}"))?;
        }
        Ok(())
    }

    fn read_body(what: &str, body: Option<IncomingBody>) -> Result<Vec<u8>, PluginError> {
        let Some(body) = body else {
            return Ok(Vec::new());
        };
        let stream = body
            .stream()
            .map_err(|()| PluginError::Transient(format!("{what}: response body unavailable")))?;
        let mut bytes = Vec::new();
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => {
                    let detail = e.to_debug_string();
                    drop(stream);
                    return Err(
                        match crate::connector::bindings::wasi::http::types::http_error_code(&e) {
                            Some(code) => map_error(what, code),
                            // The host's body cap arrives as a plain stream
                            // error; retrying would only hit it again.
                            None if detail.contains("exceeds limit") => {
                                PluginError::Permanent(format!("{what}: the response body {detail}"))
                            }
                            None => PluginError::Transient(format!("{what}: reading the body failed: {detail}")),
                        },
                    );
                }
            }
        }
        drop(stream);
        IncomingBody::finish(body);
        Ok(bytes)
    }

    fn map_error(what: &str, error: ErrorCode) -> PluginError {
        match error {
            ErrorCode::HttpRequestDenied => PluginError::Permanent(format!(
                "{what}: refused by the host sandbox; the operator must grant this origin to the connector instance"
            )),
            ErrorCode::HttpResponseBodySize(limit) => PluginError::Permanent(format!(
                "{what}: the response body exceeded the host's limit of {} bytes",
                limit.unwrap_or_default()
            )),
            ErrorCode::HttpRequestBodySize(limit) => PluginError::Permanent(format!(
                "{what}: the request body exceeded the host's limit of {} bytes",
                limit.unwrap_or_default()
            )),
            ErrorCode::ConnectionTimeout | ErrorCode::ConnectionReadTimeout | ErrorCode::HttpResponseTimeout => {
                PluginError::Transient(format!("{what}: timed out ({error:?})"))
            }
            other => PluginError::Transient(format!("{what}: {other:?}")),
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod transport {
    //! On the host target requests are answered from recorded exchanges.
    use super::{Request, Response};
    use crate::PluginError;

    pub(super) fn send(request: &Request) -> Result<Response, PluginError> {
        crate::testkit::replay(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, headers: &[(&str, &str)]) -> Response {
        Response {
            status,
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            body: b"nope".to_vec(),
        }
    }

    #[test]
    fn statuses_map_to_plugin_errors() {
        assert!(matches!(
            response(401, &[]).error_for_status(),
            Err(PluginError::Auth(_))
        ));
        assert_eq!(
            response(429, &[("Retry-After", "17")]).error_for_status(),
            Err(PluginError::RateLimited(17))
        );
        assert!(matches!(
            response(503, &[]).error_for_status(),
            Err(PluginError::Transient(_))
        ));
        assert!(matches!(
            response(404, &[]).error_for_status(),
            Err(PluginError::Permanent(_))
        ));
        assert!(response(200, &[]).error_for_status().is_ok());
    }

    #[test]
    fn query_parameters_are_encoded() {
        let req = get("https://x.example/api?a=1").unwrap().query("q", "a=b^c d");
        assert_eq!(req.url.as_str(), "https://x.example/api?a=1&q=a%3Db%5Ec+d");
    }

    #[test]
    fn relative_urls_are_config_errors() {
        assert!(matches!(get("/api/now"), Err(PluginError::Config(_))));
    }
}
