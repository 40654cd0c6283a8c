//! The configuration server (protocol §2.2), byte-compatible with the original's answers that
//! clients rely on, and stricter: nothing is written unless the whole payload checks out.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use rustls::ServerConfig;
use tokio::sync::{mpsc, oneshot};
use zeroize::Zeroizing;

use super::body::NodeBody;
use super::{Shared, response};
use crate::provision::payload::parse_configuration;
use crate::provision::{ProvisionError, Provisioner};

/// Largest configuration payload: secrets and a PEM key fit many times over.
pub const MAX_PAYLOAD: u64 = 16 << 20;
/// Time a client has to send the payload once its headers are in.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// Sent to the node's main task once a configuration is installed.
pub struct Configured {
    /// The app's TLS configuration in custom-certificate mode.
    pub owner_tls: Option<Arc<ServerConfig>>,
    /// How the start went: `Err` carries a short reason for the client.
    pub reply: oneshot::Sender<Result<(), String>>,
}

/// What the configuration server needs.
pub struct Configurator {
    pub provisioner: Arc<Provisioner>,
    pub events: mpsc::Sender<Configured>,
}

/// Any request while the node waits for its configuration.
pub async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<NodeBody> {
    match *req.method() {
        Method::GET | Method::HEAD => response::waiting(),
        Method::POST => configure(shared, req).await,
        _ => {
            let mut resp = response::text(
                StatusCode::METHOD_NOT_ALLOWED,
                "the configuration server takes GET and POST",
            );
            resp.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, POST"));
            resp
        }
    }
}

async fn configure(shared: Arc<Shared>, req: Request<Incoming>) -> Response<NodeBody> {
    let Some(conf) = &shared.configurator else {
        return response::busy();
    };
    let body = match read_body(req).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    // Cheap refusals first, without taking the node out of the waiting phase.
    match parse_configuration(&body) {
        Err(e) => return refused(&ProvisionError::Payload(e)),
        Ok(cfg) if cfg.uuid != conf.provisioner.id => return refused(&ProvisionError::WrongUuid),
        Ok(_) => {}
    }
    if !shared.begin_starting() {
        return response::busy();
    }
    // From here the work runs in its own task: hyper drops this future if the client goes
    // away, and a half-done configuration must still either finish or give the phase back.
    let task = tokio::spawn(install(shared.clone(), body));
    match task.await {
        Ok(resp) => resp,
        Err(e) => response::text(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("the configuration task failed: {e}"),
        ),
    }
}

async fn install(shared: Arc<Shared>, body: Zeroizing<Vec<u8>>) -> Response<NodeBody> {
    let Some(conf) = &shared.configurator else {
        return response::busy();
    };
    let prov = conf.provisioner.clone();
    let installed = tokio::task::spawn_blocking(move || -> Result<_, ProvisionError> {
        let cfg = parse_configuration(&body)?;
        let prepared = prov.prepare(cfg)?;
        let owner_tls = prepared.owner_tls.clone();
        prepared.commit(&prov.paths)?;
        Ok(owner_tls)
    })
    .await
    .unwrap_or_else(|e| {
        Err(ProvisionError::Io(format!(
            "the provisioning task failed: {e}"
        )))
    });
    let owner_tls = match installed {
        Ok(tls) => tls,
        Err(e) => {
            shared.back_to_configuring();
            return refused(&e);
        }
    };
    tracing::info!(
        "configuration installed: secrets written, code in MODULE_PATH; starting the app"
    );
    let (reply, outcome) = oneshot::channel();
    if conf
        .events
        .send(Configured { owner_tls, reply })
        .await
        .is_err()
    {
        return response::text(StatusCode::SERVICE_UNAVAILABLE, "the node is stopping");
    }
    match outcome.await {
        Ok(Ok(())) => response::empty(StatusCode::OK),
        Ok(Err(reason)) => response::text(StatusCode::INTERNAL_SERVER_ERROR, &reason),
        Err(_) => response::text(StatusCode::SERVICE_UNAVAILABLE, "the node is stopping"),
    }
}

fn refused(e: &ProvisionError) -> Response<NodeBody> {
    let status = e.status();
    tracing::warn!(status = status.as_u16(), reason = %e, "configuration refused; nothing was written");
    response::text(status, &e.to_string())
}

/// The body, bounded in size and time. The error is the response to give.
async fn read_body(req: Request<Incoming>) -> Result<Zeroizing<Vec<u8>>, Response<NodeBody>> {
    let too_large = || {
        response::text(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the configuration payload is limited to {MAX_PAYLOAD} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .map(|v| v.to_str().ok().and_then(|s| s.parse::<u64>().ok()));
    match declared {
        Some(None) => {
            return Err(response::text(
                StatusCode::BAD_REQUEST,
                "invalid Content-Length",
            ));
        }
        Some(Some(n)) if n > MAX_PAYLOAD => return Err(too_large()),
        _ => {}
    }
    let limit = usize::try_from(MAX_PAYLOAD).unwrap_or(usize::MAX);
    let collected =
        tokio::time::timeout(BODY_TIMEOUT, Limited::new(req.into_body(), limit).collect()).await;
    match collected {
        Err(_) => Err(response::text(
            StatusCode::REQUEST_TIMEOUT,
            "the payload did not arrive in time",
        )),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Ok(Err(_)) => Err(response::text(
            StatusCode::BAD_REQUEST,
            "the payload could not be read",
        )),
        Ok(Ok(c)) => Ok(Zeroizing::new(c.to_bytes().to_vec())),
    }
}
