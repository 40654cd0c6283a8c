//! The node's life, in order:
//!
//! 1. private storage (while single-threaded), resource limits, the app's directories;
//! 2. identity: keys, quote, RA-TLS certificate;
//! 3. the configuration server, until a configuration is installed (or `--timeout`, or a restart
//!    that finds the code already installed);
//! 4. the app imported (on a thread confined by Landlock), then seccomp for every thread;
//! 5. serving until SIGTERM/SIGINT, then draining and the app's shutdown, exit 0.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, anyhow, bail};
use mse_python::{PyApp, PythonConfig};
use rustls::ServerConfig;
use rustls_pki_types::CertificateDer;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot, watch};

use crate::cli::{Launch, SslMode};
use crate::identity::certificate::CertSpec;
use crate::identity::{self, Identity};
use crate::paths::Paths;
use crate::provision::{Provisioner, install};
use crate::server::config::{Configurator, Configured};
use crate::server::evidence::EvidenceService;
use crate::server::{self, Phase, Shared};
use crate::tls::{self, Alpn};
use crate::{runtime, sandbox, sched};

/// Where the configuration server learns whether the app started (its reply to the POST).
type ConfigReply = oneshot::Sender<Result<(), String>>;

/// How long open requests may take to finish after SIGTERM.
const DRAIN: Duration = Duration::from_secs(30);
/// WSGI request bodies above this are refused (hypercorn's `wsgi_max_body_size`, as the original).
const MAX_APP_BODY: u64 = 2 << 30;

/// Runs the node. Called from `main` while the process is still single-threaded.
pub fn run(launch: Launch, paths: Paths) -> Result<()> {
    if launch.sandbox {
        sandbox::private_storage(&paths, launch.storage_quota)?;
    } else {
        tracing::warn!(
            "--insecure-no-sandbox: the app's files are on the host's disk, and neither Landlock nor seccomp confine \
             it; for development only"
        );
    }
    sandbox::limits(launch.memory)?;
    paths.create()?;

    let tee = identity::open_tee(&launch, &runtime::measured(&launch.site_packages)?)?;
    let spec = CertSpec {
        subject: launch.subject.clone(),
        san: launch.san.clone(),
        not_after: launch.expiration,
    };
    let identity = Identity::establish(&paths, &spec, tee, SystemTime::now())?;
    let owner_chain = match &launch.ssl {
        SslMode::Certificate(path) => {
            let pem =
                std::fs::read(path).with_context(|| format!("--certificate {}", path.display()))?;
            Some(
                tls::parse_chain(&pem)
                    .with_context(|| format!("--certificate {}", path.display()))?,
            )
        }
        _ => None,
    };
    let installed = install::is_installed(&paths.module)
        .with_context(|| format!("cannot read MODULE_PATH {}", paths.module.display()))?;

    // Before the first thread starts: they all inherit it.
    match sched::use_batch_policy() {
        sched::Outcome::Batch => tracing::debug!("threads run under SCHED_BATCH"),
        sched::Outcome::NiceLeftAlone(nice) => tracing::info!(
            nice,
            "the process runs at a nice value other than 0: scheduling policy left as it is"
        ),
        sched::Outcome::Unavailable(why) => {
            tracing::info!(%why, "SCHED_BATCH unavailable: threads keep the default policy")
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    rt.block_on(serve(launch, paths, identity, owner_chain, installed))
}

async fn serve(
    launch: Launch,
    paths: Paths,
    identity: Identity,
    owner_chain: Option<Vec<CertificateDer<'static>>>,
    installed: bool,
) -> Result<()> {
    let (chain, key) = identity.tls_material();
    let config_tls = tls::server_config(chain.clone(), key.clone_key(), Alpn::Http11)?;
    let ratls_app_tls = tls::server_config(chain, key, Alpn::H2AndHttp11)?;

    // Before listening: a client that sees the port open may already ask us to stop.
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let listener = TcpListener::bind((launch.host.as_str(), launch.port)).await.with_context(|| {
        format!("cannot listen on {}:{}; check --host and --port (ports below 1024 need privileges)", launch.host, launch.port)
    })?;
    let local = listener.local_addr()?;

    let (events_tx, mut events) = mpsc::channel(1);
    let provisioner = Arc::new(Provisioner {
        id: launch.id,
        enclave_key: identity.enclave_key.clone(),
        paths: paths.clone(),
        app_dir: launch.app_dir.clone(),
        owner_chain: owner_chain.clone(),
    });
    let configurator = (!installed).then(|| Configurator {
        provisioner: provisioner.clone(),
        events: events_tx,
    });
    let evidence = EvidenceService::new(
        identity.tee.clone(),
        identity.tls_key.public,
        identity.enclave_public.0,
    );
    let initial = if installed {
        Phase::Starting
    } else {
        Phase::Configuring
    };
    let shared = Arc::new(Shared::new(initial, evidence, config_tls, configurator));
    let (stop, stop_rx) = watch::channel(false);
    let server = tokio::spawn(server::serve(listener, shared.clone(), stop_rx, DRAIN));

    let stop_server = |reason: &str| {
        tracing::info!("{reason}: stopping");
        let _ = stop.send(true);
    };

    // 3. Configuration.
    let (owner_tls, reply): (Option<Arc<ServerConfig>>, Option<ConfigReply>) = if installed {
        tracing::info!(module = %paths.module.display(), "code already installed (restart): skipping the configuration server");
        let owner_tls = match &owner_chain {
            Some(chain) => Some(owner_tls_from_disk(&paths, chain.clone())?),
            None => None,
        };
        (owner_tls, None)
    } else {
        tracing::info!(address = %local, "configuration server waiting (RA-TLS): GET answers Mse-Status: Waiting, POST takes the configuration");
        let mut deadline = launch.timeout.map(|t| tokio::time::Instant::now() + t);
        loop {
            tokio::select! {
                event = events.recv() => {
                    let Some(Configured { owner_tls, reply }) = event else { bail!("the configuration server stopped") };
                    break (owner_tls, Some(reply));
                }
                () = sleep_until(deadline) => {
                    deadline = None;
                    if !shared.begin_starting() {
                        continue; // a configuration is being installed right now: let it finish
                    }
                    if owner_chain.is_some() {
                        stop_server("--timeout expired");
                        let _ = server.await;
                        bail!("--timeout expired with no configuration, and --certificate needs the private key it carries");
                    }
                    tracing::warn!("no configuration within --timeout: starting the clear code without secrets, as the original");
                    let prov = provisioner.clone();
                    let done = tokio::task::spawn_blocking(move || prov.prepare_without_configuration()?.commit(&prov.paths))
                        .await
                        .map_err(|e| anyhow!("{e}"))
                        .and_then(|r| r.map_err(|e| anyhow!("{e}")));
                    if let Err(e) = done {
                        stop_server("cannot install the code");
                        let _ = server.await;
                        return Err(e.context("--timeout expired and the code cannot be started without its key"));
                    }
                    break (None, None);
                }
                _ = term.recv() => { stop_server("SIGTERM"); let _ = server.await; return Ok(()); }
                _ = int.recv() => { stop_server("SIGINT"); let _ = server.await; return Ok(()); }
            }
        }
    };

    // 4. The app.
    let app_tls = match &launch.ssl {
        SslMode::RaTls => Some(ratls_app_tls),
        SslMode::Certificate(_) => {
            Some(owner_tls.ok_or_else(|| anyhow!("no TLS configuration for --certificate"))?)
        }
        SslMode::NoSsl => None,
    };
    let python = PythonConfig {
        module_path: paths.module.clone(),
        app: launch.application.to_string(),
        site_packages: launch.site_packages.clone(),
        env: paths.app_env(),
        threads: launch.threads,
        max_body: MAX_APP_BODY,
        event_loop: launch.event_loop,
    };
    let rules = launch.sandbox.then(|| {
        (
            sandbox::app_rules(&paths, &runtime::readable(&launch.site_packages)),
            paths.key.clone(),
        )
    });
    let app = match load_app(python, rules).await {
        Ok(app) => app,
        Err(e) => {
            if let Some(reply) = reply {
                let _ = reply.send(Err(format!(
                    "the app failed to start: {}",
                    last_line(&format!("{e:#}"))
                )));
            }
            stop_server("the app failed to start");
            let _ = server.await;
            return Err(e);
        }
    };
    if launch.sandbox
        && let Err(e) = sandbox::no_new_processes()
    {
        if let Some(reply) = reply {
            let _ = reply.send(Err("the node cannot confine the app".into()));
        }
        stop_server("seccomp failed");
        let _ = server.await;
        return Err(e);
    }
    shared.set_phase(Phase::Serving {
        app: app.clone(),
        tls: app_tls,
    });
    if let Some(reply) = reply {
        let _ = reply.send(Ok(()));
    }
    // The measurement and the app's import freed several MiB that glibc would otherwise keep
    // resident for the node's whole life (mse-heap's docs).
    mse_heap::release_free_pages();
    tracing::info!(address = %local, mode = launch.ssl.name(), app = %launch.application, "serving the app");

    // 5. Until asked to stop.
    tokio::select! {
        _ = term.recv() => stop_server("SIGTERM"),
        _ = int.recv() => stop_server("SIGINT"),
    }
    let _ = server.await;
    app.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

/// Imports the app on a thread of its own: Landlock confines that thread and every thread it
/// creates, which are Python's.
async fn load_app(
    config: PythonConfig,
    rules: Option<(mse_sandbox::landlock::FsRules, PathBuf)>,
) -> Result<PyApp> {
    let (tx, rx) = oneshot::channel();
    std::thread::Builder::new()
        .name("mse-app-init".into())
        .spawn(move || {
            let result = (|| {
                if let Some((rules, key_path)) = rules {
                    sandbox::confine_files(&rules, &key_path)?;
                }
                tracing::info!(app = %config.app, "importing the app");
                PyApp::load(config).map_err(|e| anyhow!("{e}"))
            })();
            let _ = tx.send(result);
        })
        .context("cannot start the app's thread")?;
    rx.await.map_err(|_| anyhow!("the app's thread died"))?
}

/// After a restart in custom-certificate mode, the key received before is in KEY_PATH.
fn owner_tls_from_disk(
    paths: &Paths,
    chain: Vec<CertificateDer<'static>>,
) -> Result<Arc<ServerConfig>> {
    let path = paths.ssl_key();
    let pem = zeroize::Zeroizing::new(std::fs::read(&path).with_context(|| {
        format!(
            "{} is missing: remove MODULE_PATH's content to receive the configuration again",
            path.display()
        )
    })?);
    let key = tls::parse_key(&pem).with_context(|| path.display().to_string())?;
    tls::server_config(chain, key, Alpn::H2AndHttp11).with_context(|| path.display().to_string())
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

fn last_line(s: &str) -> &str {
    s.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or(s)
}
