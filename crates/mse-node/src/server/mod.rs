//! One listener, three phases (contracts.md, "mse-node HTTP surface"):
//!
//! * **configuring**: the configuration server, over the RA-TLS certificate, HTTP/1.1, one request
//!   per connection (like the original's HTTP/1.0 server), so no connection outlives the phase;
//! * **starting**: every request gets 503 `Retry-After: 1` while the code is decrypted and imported;
//! * **serving**: every request goes to the app, over HTTP/2 or HTTP/1.1 with the RA-TLS
//!   certificate, the owner's certificate, or plain HTTP.
//!
//! `GET /.well-known/mse/evidence` is answered by the node in every phase.
//!
//! A connection takes the TLS configuration and protocol of the phase it was accepted in.

pub mod body;
pub mod config;
pub mod evidence;
pub mod response;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use mse_python::{ConnInfo, PyApp, Scheme};
use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use body::{AccessLog, NodeBody};
use config::Configurator;
use evidence::EvidenceService;

/// A client must finish the TLS handshake within this time.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// ... and send a request's headers within this time.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// Open connections at most; past it new ones are closed at once.
pub const MAX_CONNECTIONS: usize = 1024;
/// HTTP/2 streams per connection (hypercorn's default, as the original).
const H2_MAX_STREAMS: u32 = 100;

/// Where the node is in its life.
#[derive(Clone)]
pub enum Phase {
    Configuring,
    Starting,
    Serving {
        app: PyApp,
        /// `None`: plain HTTP (`--no-ssl`).
        tls: Option<Arc<ServerConfig>>,
    },
}

/// State shared by all connections.
pub struct Shared {
    phase: watch::Sender<Phase>,
    evidence: EvidenceService,
    /// The RA-TLS certificate, HTTP/1.1 only: configuration and starting phases.
    config_tls: Arc<ServerConfig>,
    configurator: Option<Configurator>,
}

impl Shared {
    pub fn new(
        initial: Phase,
        evidence: EvidenceService,
        config_tls: Arc<ServerConfig>,
        configurator: Option<Configurator>,
    ) -> Self {
        Shared {
            phase: watch::Sender::new(initial),
            evidence,
            config_tls,
            configurator,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase.borrow().clone()
    }

    pub fn set_phase(&self, phase: Phase) {
        self.phase.send_replace(phase);
    }

    /// Configuring → starting, if nobody else got there first (one configuration only).
    pub fn begin_starting(&self) -> bool {
        self.phase.send_if_modified(|p| {
            let claim = matches!(p, Phase::Configuring);
            if claim {
                *p = Phase::Starting;
            }
            claim
        })
    }

    /// Starting → configuring, after a refused configuration.
    pub fn back_to_configuring(&self) {
        self.set_phase(Phase::Configuring);
    }
}

/// Accepts connections until `stop` fires, then lets open requests finish (up to `drain`).
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    drain: Duration,
) {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, remote) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    tracing::warn!(%remote, "too many connections ({MAX_CONNECTIONS}); closing this one");
                    continue;
                };
                let shared = shared.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    connection(tcp, remote, shared, watcher).await;
                    drop(slot);
                });
            }
            () = stopped(&mut stop) => break,
        }
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "some connections were still open after {}s; closing them",
            drain.as_secs()
        );
    }
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns must not live across an await of the caller.
    let _ = stop.wait_for(|s| *s).await;
}

async fn connection(tcp: TcpStream, remote: SocketAddr, shared: Arc<Shared>, watcher: Watcher) {
    let _ = tcp.set_nodelay(true);
    let Ok(local) = tcp.local_addr() else { return };
    let (tls, serving) = match shared.phase() {
        Phase::Serving { tls, .. } => (tls, true),
        _ => (Some(shared.config_tls.clone()), false),
    };
    let builder = builder(serving);
    let scheme = if tls.is_some() {
        Scheme::Https
    } else {
        Scheme::Http
    };
    let svc = service_fn(move |req: Request<Incoming>| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(route(shared, req, remote, local, scheme).await) }
    });
    let result = match tls {
        Some(config) => {
            let accepted =
                tokio::time::timeout(HANDSHAKE_TIMEOUT, TlsAcceptor::from(config).accept(tcp))
                    .await;
            let stream = match accepted {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%remote, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%remote, "TLS handshake timed out");
                    return;
                }
            };
            watcher
                .watch(
                    builder
                        .serve_connection(TokioIo::new(stream), svc)
                        .into_owned(),
                )
                .await
        }
        None => {
            watcher
                .watch(
                    builder
                        .serve_connection(TokioIo::new(tcp), svc)
                        .into_owned(),
                )
                .await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%remote, error = %e, "connection ended with an error");
    }
}

fn builder(serving: bool) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    if serving {
        b.http1()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT);
        b.http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(H2_MAX_STREAMS);
        b
    } else {
        let mut b = b.http1_only();
        b.http1()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .keep_alive(false)
            .title_case_headers(true);
        b
    }
}

async fn route(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    remote: SocketAddr,
    local: SocketAddr,
    scheme: Scheme,
) -> Response<NodeBody> {
    let start = Instant::now();
    let (method, path, version) = (
        req.method().clone(),
        req.uri().path().to_owned(),
        req.version(),
    );
    let resp = if path == evidence::PATH
        && (method == http::Method::GET || method == http::Method::HEAD)
    {
        shared.evidence.respond(req.uri().query()).await
    } else {
        match shared.phase() {
            Phase::Configuring => config::handle(shared.clone(), req).await,
            Phase::Starting => response::busy(),
            Phase::Serving { app, .. } => {
                let conn = ConnInfo {
                    remote,
                    local,
                    scheme,
                    http_version: version,
                };
                app.handle(req, conn).await.map(NodeBody::app)
            }
        }
    };
    let status = resp.status();
    resp.map(|b| {
        b.logged(AccessLog {
            remote,
            method,
            path,
            version,
            status,
            start,
            bytes: 0,
        })
    })
}
