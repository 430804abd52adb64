//! Request and response bodies capped at a byte limit.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};
use wasmtime_wasi_http::{Error, WasiBody};

/// A body that fails with the given error once more than `limit` bytes pass.
pub(crate) struct CappedBody {
    inner: WasiBody,
    seen: u64,
    limit: u64,
    exceeded: fn(Option<u64>) -> Error,
    /// Held while the body is alive (the in-flight request limit).
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl CappedBody {
    /// Caps a request body (the error is `HttpRequestBodySize`).
    pub fn request(inner: WasiBody, limit: u64, permit: Option<tokio::sync::OwnedSemaphorePermit>) -> Self {
        CappedBody {
            inner,
            seen: 0,
            limit,
            exceeded: Error::HttpRequestBodySize,
            _permit: permit,
        }
    }

    /// Caps a response body (the error is `HttpResponseBodySize`).
    pub fn response(inner: WasiBody, limit: u64, permit: Option<tokio::sync::OwnedSemaphorePermit>) -> Self {
        CappedBody {
            inner,
            seen: 0,
            limit,
            exceeded: Error::HttpResponseBodySize,
            _permit: permit,
        }
    }
}

impl Body for CappedBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.seen = this.seen.saturating_add(data.len() as u64);
                    if this.seen > this.limit {
                        return Poll::Ready(Some(Err((this.exceeded)(Some(this.limit)))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
