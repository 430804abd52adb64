//! Sending a request to the exact addresses the policy checked.
//!
//! The host resolves a name once, checks every address, and connects to
//! those addresses, keeping the name only for TLS and the `Host` header. A
//! second lookup (as a generic HTTP client would make) could answer with
//! another address: DNS rebinding into the operator's network.

use super::grant::Origin;
use bytes::Bytes;
use http_body_util::BodyExt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, WasiBody};

/// Completes when the connection is done; the host runs it beside the body.
pub(crate) type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;

trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// Sends `request` to `origin` over a connection to one of `addrs`.
pub(crate) async fn send(
    request: http::Request<WasiBody>,
    origin: &Origin,
    addrs: &[SocketAddr],
    timeout: Duration,
) -> Result<(http::Response<WasiBody>, IoFuture), Error> {
    let tcp = connect_any(addrs, timeout).await?;
    let stream: Box<dyn Stream> = if origin.scheme == "https" {
        Box::new(tls(tcp, &origin.host, timeout).await?)
    } else {
        Box::new(tcp)
    };
    let (mut sender, connection) =
        tokio::time::timeout(timeout, hyper::client::conn::http1::handshake(TokioIo::new(stream)))
            .await
            .map_err(|_| Error::ConnectionTimeout)??;
    let driver = tokio::spawn(connection);
    let response = tokio::time::timeout(timeout, sender.send_request(origin_form(request)?))
        .await
        .map_err(|_| Error::HttpResponseTimeout)??;
    let response = response.map(|body| body.map_err(Error::from).boxed_unsync());
    let io: IoFuture = Box::new(async move {
        match driver.await {
            Ok(result) => result.map_err(Error::from),
            Err(_) => Ok(()),
        }
    });
    Ok((response, io))
}

async fn connect_any(addrs: &[SocketAddr], timeout: Duration) -> Result<TcpStream, Error> {
    let mut last = Error::DestinationUnavailable;
    for addr in addrs {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => last = Error::ConnectionRefused,
            Ok(Err(e)) => last = Error::Connect(e),
            Err(_) => last = Error::ConnectionTimeout,
        }
    }
    Err(last)
}

fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.into(),
            };
            let config =
                rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                    .with_safe_default_protocol_versions()
                    .map(|builder| builder.with_root_certificates(roots).with_no_client_auth());
            match config {
                Ok(config) => Arc::new(config),
                // The ring provider supports the default versions; this is unreachable in practice.
                Err(e) => {
                    tracing::error!("TLS configuration failed: {e}");
                    Arc::new(
                        rustls::ClientConfig::builder()
                            .with_root_certificates(rustls::RootCertStore::empty())
                            .with_no_client_auth(),
                    )
                }
            }
        })
        .clone()
}

async fn tls(
    tcp: TcpStream,
    host: &str,
    timeout: Duration,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, Error> {
    let name = rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|_| Error::TlsProtocolError)?;
    let connector = tokio_rustls::TlsConnector::from(tls_config());
    tokio::time::timeout(timeout, connector.connect(name, tcp))
        .await
        .map_err(|_| Error::ConnectionTimeout)?
        .map_err(Error::Tls)
}

/// The request line of a direct (non-proxy) request carries only the path.
fn origin_form(mut request: http::Request<WasiBody>) -> Result<http::Request<WasiBody>, Error> {
    let path = request.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let uri = http::Uri::builder()
        .path_and_query(path)
        .build()
        .map_err(|_| Error::HttpRequestUriInvalid)?;
    *request.uri_mut() = uri;
    Ok(request)
}

/// An empty body, for responses the host makes itself.
pub(crate) fn full_body(bytes: Bytes) -> WasiBody {
    http_body_util::Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}
