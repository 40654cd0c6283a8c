//! [`NodeClient`]: HTTP/1.1 over a pinned TLS connection to one node.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::evidence::FreshEvidence;
use crate::payload::ConfigurationPayload;
use crate::tls::{pinned_client_config, recording_client_config};
use crate::{Error, Result};

/// Header by which the configuration server announces itself.
pub const MSE_STATUS: &str = "Mse-Status";

/// Path of the node's fresh-evidence endpoint.
pub const EVIDENCE_PATH: &str = "/.well-known/mse/evidence";

/// Longest nonce [`NodeClient::fresh_evidence`] sends.
pub const MAX_NONCE_LEN: usize = 64;

const USER_AGENT: &str = concat!("mse-client/", env!("CARGO_PKG_VERSION"));
/// Bodies we read in full are small JSON documents or error messages.
const MAX_EVIDENCE_BODY: usize = 1 << 20;
const MAX_ERROR_BODY: usize = 64 << 10;
const ERROR_BODY_SHOWN: usize = 512;

/// Deadlines, each covering the whole call: connect, handshake, request and response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// `is_waiting_for_secrets` and `is_ready` (the original uses 5 s).
    pub probe: Duration,
    /// `configure` (the original uses 60 s).
    pub configure: Duration,
    /// `fresh_evidence` (quote generation can take a moment on real hardware).
    pub evidence: Duration,
    /// `fetch_certificate`.
    pub fetch_certificate: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            probe: Duration::from_secs(5),
            configure: Duration::from_secs(60),
            evidence: Duration::from_secs(30),
            fetch_certificate: Duration::from_secs(30),
        }
    }
}

/// Connect to `host:port`, complete a TLS handshake accepting whatever certificate is served
/// (after checking the handshake signature with it), and return that certificate's DER.
///
/// Like the original's unverified fetch, this proves nothing about the node: the caller must
/// verify the evidence inside the certificate, then pin it with [`pinned_client_config`] /
/// [`NodeClient`] for everything that follows.
pub async fn fetch_certificate(host: &str, port: u16) -> Result<Vec<u8>> {
    fetch_certificate_within(host, port, Timeouts::default().fetch_certificate).await
}

/// [`fetch_certificate`] with an explicit deadline.
pub async fn fetch_certificate_within(host: &str, port: u16, timeout: Duration) -> Result<Vec<u8>> {
    let target = Target::new(host, port)?;
    let config = Arc::new(recording_client_config());
    let tls = within(
        timeout,
        "fetching the certificate",
        &target.addr,
        target.connect(config),
    )
    .await?;
    let (_, connection) = tls.get_ref();
    connection
        .peer_certificates()
        .and_then(|certs| certs.first())
        .map(|c| c.as_ref().to_vec())
        .ok_or_else(|| Error::NoCertificate {
            addr: target.addr.clone(),
        })
}

/// A client for one node, talking only to the holder of one pinned certificate.
#[derive(Clone)]
pub struct NodeClient {
    target: Target,
    /// Path prefix from the base URL, without a trailing `/` (usually empty).
    prefix: String,
    tls: Arc<ClientConfig>,
    timeouts: Timeouts,
}

impl std::fmt::Debug for NodeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeClient")
            .field("addr", &self.target.addr)
            .field("prefix", &self.prefix)
            .field("timeouts", &self.timeouts)
            .finish_non_exhaustive()
    }
}

impl NodeClient {
    /// `base_url` is `https://host[:port][/prefix]` (port 443 by default); `pinned_cert_der` is the
    /// certificate whose evidence was verified.
    pub fn new(base_url: &str, pinned_cert_der: &[u8]) -> Result<Self> {
        Self::with_config(base_url, Arc::new(pinned_client_config(pinned_cert_der)))
    }

    /// Like [`new`](Self::new) with a ready TLS configuration (it decides whom to trust).
    pub fn with_config(base_url: &str, tls: Arc<ClientConfig>) -> Result<Self> {
        let (target, prefix) = parse_base_url(base_url)?;
        Ok(NodeClient {
            target,
            prefix,
            tls,
            timeouts: Timeouts::default(),
        })
    }

    /// Replace the default deadlines.
    pub fn with_timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// `host:port` this client talks to.
    pub fn addr(&self) -> &str {
        &self.target.addr
    }

    /// Whether the node's configuration server is up: `GET /` answers 200 with an `Mse-Status`
    /// header. Any error (connection, TLS, pin, timeout) counts as "no".
    pub async fn is_waiting_for_secrets(&self) -> bool {
        let path = format!("{}/", self.prefix);
        match self.head_only(Method::GET, &path).await {
            Ok(head) => head.status == StatusCode::OK && head.headers.contains_key(MSE_STATUS),
            Err(e) => {
                tracing::debug!(error = %e, "configuration server probe failed");
                false
            }
        }
    }

    /// Whether the app serves: `GET <healthcheck>` answers anything but 503, without an
    /// `Mse-Status` header (so an app's 404 or 500 counts as ready, as in the original).
    pub async fn is_ready(&self, healthcheck: &str) -> bool {
        let path = format!("{}{}", self.prefix, healthcheck);
        match self.head_only(Method::GET, &path).await {
            Ok(head) => {
                head.status != StatusCode::SERVICE_UNAVAILABLE
                    && !head.headers.contains_key(MSE_STATUS)
            }
            Err(e) => {
                tracing::debug!(error = %e, "readiness probe failed");
                false
            }
        }
    }

    /// POST the configuration payload. Succeeds on any 2xx answer.
    pub async fn configure(&self, payload: &ConfigurationPayload) -> Result<()> {
        let body = payload.to_json();
        let path = format!("{}/", self.prefix);
        let request = self
            .request(Method::POST, &path)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONTENT_LENGTH, body.len())
            // The request body type needs owned bytes; this copy is the one the socket sends.
            .body(Full::new(Bytes::copy_from_slice(&body)));
        let request = request.map_err(|_| self.bad_path())?;
        let (status, body) = within(
            self.timeouts.configure,
            "sending the configuration",
            &self.target.addr,
            self.exchange(request, MAX_ERROR_BODY),
        )
        .await?;
        if status.is_success() {
            return Ok(());
        }
        let shown = body
            .get(..ERROR_BODY_SHOWN.min(body.len()))
            .unwrap_or_default();
        Err(Error::Rejected {
            status: status.as_u16(),
            body: String::from_utf8_lossy(shown).trim().to_owned(),
        })
    }

    /// `GET /.well-known/mse/evidence?nonce=<hex>` over the pinned connection, so the answer
    /// comes from the holder of the verified certificate's key. The echoed nonce must match.
    ///
    /// The caller still has to verify the returned quote (e.g. with mse-attest), including that
    /// its report data is `report_data::fresh(tls key, enclave key, nonce)`.
    pub async fn fresh_evidence(&self, nonce: &[u8]) -> Result<FreshEvidence> {
        if nonce.is_empty() || nonce.len() > MAX_NONCE_LEN {
            return Err(Error::InvalidNonce {
                reason: "must be 1 to 64 bytes",
            });
        }
        let path = format!(
            "{}{}?nonce={}",
            self.prefix,
            EVIDENCE_PATH,
            hex::encode(nonce)
        );
        let request = self
            .request(Method::GET, &path)
            .body(Full::new(Bytes::new()))
            .map_err(|_| self.bad_path())?;
        let (status, body) = within(
            self.timeouts.evidence,
            "fetching fresh evidence",
            &self.target.addr,
            self.exchange(request, MAX_EVIDENCE_BODY),
        )
        .await?;
        if status != StatusCode::OK {
            return Err(Error::EvidenceStatus {
                status: status.as_u16(),
            });
        }
        FreshEvidence::from_json(&body, nonce)
    }

    fn request(&self, method: Method, path: &str) -> http::request::Builder {
        Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, &self.target.host_header)
            .header(header::USER_AGENT, USER_AGENT)
            .header(header::ACCEPT, "*/*")
    }

    fn bad_path(&self) -> Error {
        Error::InvalidUrl {
            url: self.target.addr.clone(),
            reason: "the request path is not a valid URI path",
        }
    }

    /// Status and headers only; the body is not read.
    async fn head_only(&self, method: Method, path: &str) -> Result<http::response::Parts> {
        let request = self
            .request(method, path)
            .body(Full::new(Bytes::new()))
            .map_err(|_| self.bad_path())?;
        within(self.timeouts.probe, "probing", &self.target.addr, async {
            let (mut sender, _conn) = self.open().await?;
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| self.http(e))?;
            Ok(response.into_parts().0)
        })
        .await
    }

    async fn exchange(
        &self,
        request: Request<Full<Bytes>>,
        limit: usize,
    ) -> Result<(StatusCode, Bytes)> {
        let (mut sender, _conn) = self.open().await?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| self.http(e))?;
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, limit).collect().await.map_err(|e| {
            match e.downcast::<hyper::Error>() {
                Ok(e) => self.http(*e),
                Err(_) => Error::BodyTooLarge {
                    addr: self.target.addr.clone(),
                    limit,
                },
            }
        })?;
        Ok((parts.status, body.to_bytes()))
    }

    /// A fresh connection per call: the original's configuration server is HTTP/1.0 and closes
    /// after each response, and probes must not reuse a connection across a node restart.
    async fn open(
        &self,
    ) -> Result<(
        hyper::client::conn::http1::SendRequest<Full<Bytes>>,
        ConnTask,
    )> {
        let tls = self.target.connect(self.tls.clone()).await?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| self.http(e))?;
        Ok((sender, ConnTask(tokio::spawn(conn))))
    }

    fn http(&self, source: hyper::Error) -> Error {
        Error::Http {
            addr: self.target.addr.clone(),
            source,
        }
    }
}

/// Drives a connection; aborted when the request is done or abandoned.
struct ConnTask(tokio::task::JoinHandle<hyper::Result<()>>);

impl Drop for ConnTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[derive(Clone, Debug)]
struct Target {
    host: String,
    port: u16,
    /// `host:port` for messages and `connect`, IPv6 in brackets.
    addr: String,
    /// Host header value (port omitted when 443, as HTTP clients do).
    host_header: String,
    server_name: ServerName<'static>,
}

impl Target {
    fn new(host: &str, port: u16) -> Result<Self> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let server_name = ServerName::try_from(host.to_owned()).map_err(|_| Error::InvalidUrl {
            url: host.to_owned(),
            reason: "not a valid host name or IP address",
        })?;
        let bracketed = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        Ok(Target {
            host: host.to_owned(),
            port,
            addr: format!("{bracketed}:{port}"),
            host_header: if port == 443 {
                bracketed
            } else {
                format!("{bracketed}:{port}")
            },
            server_name,
        })
    }

    async fn connect(&self, config: Arc<ClientConfig>) -> Result<TlsStream<TcpStream>> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|source| Error::Connect {
                addr: self.addr.clone(),
                source,
            })?;
        // Small request/response exchanges: do not wait for Nagle.
        let _ = tcp.set_nodelay(true);
        TlsConnector::from(config)
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|source| {
                let pin = source
                    .get_ref()
                    .and_then(|e| e.downcast_ref::<rustls::Error>())
                    .is_some_and(|e| matches!(e, rustls::Error::InvalidCertificate(_)));
                if pin {
                    Error::PinMismatch {
                        addr: self.addr.clone(),
                    }
                } else {
                    Error::Tls {
                        addr: self.addr.clone(),
                        source,
                    }
                }
            })
    }
}

async fn within<T>(
    after: Duration,
    what: &'static str,
    addr: &str,
    fut: impl Future<Output = Result<T>>,
) -> Result<T> {
    tokio::time::timeout(after, fut).await.unwrap_or_else(|_| {
        Err(Error::Timeout {
            what,
            addr: addr.to_owned(),
            after,
        })
    })
}

/// `https://host[:port][/prefix]` → target and prefix (no trailing `/`).
fn parse_base_url(url: &str) -> Result<(Target, String)> {
    let invalid = |reason| Error::InvalidUrl {
        url: url.to_owned(),
        reason,
    };
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| invalid("must start with https://"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err(invalid("user information is not supported"));
    }
    if path.contains(['?', '#']) {
        return Err(invalid("query and fragment are not supported"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(|| invalid("unclosed '['"))?;
        match after {
            "" => (host, 443),
            p => (
                host,
                p.strip_prefix(':')
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(|| invalid("bad port"))?,
            ),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, port.parse().map_err(|_| invalid("bad port"))?),
            None => (authority, 443),
        }
    };
    if host.is_empty() {
        return Err(invalid("no host"));
    }
    let target = Target::new(host, port)?;
    Ok((target, path.trim_end_matches('/').to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        let (t, p) = parse_base_url("https://127.0.0.1:8443").unwrap();
        assert_eq!(
            (t.addr.as_str(), t.host_header.as_str(), p.as_str()),
            ("127.0.0.1:8443", "127.0.0.1:8443", "")
        );
        let (t, p) = parse_base_url("https://example.com/").unwrap();
        assert_eq!(
            (t.addr.as_str(), t.host_header.as_str(), p.as_str()),
            ("example.com:443", "example.com", "")
        );
        let (t, p) = parse_base_url("https://[::1]:9000/app/").unwrap();
        assert_eq!((t.addr.as_str(), p.as_str()), ("[::1]:9000", "/app"));
        for bad in [
            "http://x",
            "https://",
            "https://:443",
            "https://x:port",
            "https://x:99999",
            "https://u@x",
            "https://[::1",
            "https://x/?a",
        ] {
            assert!(parse_base_url(bad).is_err(), "{bad} accepted");
        }
    }
}
