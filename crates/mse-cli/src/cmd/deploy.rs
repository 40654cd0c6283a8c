//! `mse deploy`: the seed's promise on one machine.
//!
//! checks → runtime → encrypt (fresh key, nonces kept) → node under a supervisor → fetch its
//! certificate → verify its evidence against the measurement computed here (and fresh evidence
//! over a nonce) → only then send code key, secrets, TLS key → wait for the healthcheck → URL.
//! Nothing secret is sent unless both verifications pass.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, bail};
use mse_attest::collateral::Collateral;
use mse_attest::ratls::RaTlsCertificate;
use mse_attest::verify::Expected;
use mse_client::{ConfigurationPayload, NodeClient};
use mse_crypto::CodeKey;
use time::OffsetDateTime;

use super::NegativeVerdict;
use crate::attest::{self, PolicyChoice};
use crate::config::{self, DeployConfig};
use crate::node::{self, Storage, Supervised};
use crate::runtime::{self, Base};
use crate::state::{
    Context, ContextConfig, ContextInstance, Deployment, Home, LocalInfo, NodeState, Phase,
};
use crate::ui::Ui;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The configuration file.
    #[arg(long, default_value = config::DEFAULT_FILE)]
    pub path: PathBuf,
    /// Replace a deployment of the same name without asking.
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// The node binary (default: $MSE_NODE, else mse-node next to mse, else on PATH).
    #[arg(long)]
    pub node: Option<PathBuf>,
    /// Port on 127.0.0.1 (default: a free one).
    #[arg(long)]
    pub port: Option<u16>,
    /// What the node's evidence must satisfy. `dev` accepts this machine's simulation root.
    #[arg(long, value_enum, default_value_t = PolicyChoice::Dev)]
    pub policy: PolicyChoice,
    /// Require this measurement (hex) instead of the one computed here, e.g. one published with
    /// a reviewed release of the code.
    #[arg(long, value_name = "HEX")]
    pub expected_measurement: Option<String>,
    /// Seconds to wait for the node to answer, and then for the healthcheck.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
    /// Run the node without its sandbox (hosts that cannot provide it). Part of the measurement.
    #[arg(long)]
    pub insecure_no_sandbox: bool,
    /// Only check the configuration and the files it names, then exit.
    #[arg(long)]
    pub check: bool,
}

/// What a successful deploy prints and records.
struct Outcome {
    url: String,
    curl: String,
    simulated: bool,
}

impl Args {
    pub fn run(self, ui: Ui) -> anyhow::Result<ExitCode> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        rt.block_on(self.deploy(ui))
    }

    async fn deploy(self, ui: Ui) -> anyhow::Result<ExitCode> {
        let started = Instant::now();
        let step = ui.step("Checking the configuration");
        let conf = config::load(&self.path, OffsetDateTime::now_utc())?;
        step.done(&format!(
            "{} ({} layout)",
            conf.parsed.name,
            layout_name(&conf)
        ));
        for key in &conf.parsed.unknown_keys {
            ui.warn(&format!(
                "{}: unknown key `{key}` ignored (a typo?)",
                conf.parsed.file.display()
            ));
        }
        if self.check {
            let c = &conf;
            crate::ui::out(&format!(
                "{}: ok ({} shipped from {}, app {}, healthcheck {}, resource {}{}{})",
                c.parsed.file.display(),
                c.module_file.display(),
                c.parsed.code_dir.display(),
                c.parsed.app,
                c.parsed.healthcheck,
                c.parsed.profile.name,
                if c.secrets.is_some() { ", secrets" } else { "" },
                c.ssl
                    .as_ref()
                    .map(|s| format!(", certificate for {}", s.domain_name))
                    .unwrap_or_default(),
            ))?;
            return Ok(ExitCode::SUCCESS);
        }
        let expected_override = match &self.expected_measurement {
            Some(h) => Some(parse_measurement(h)?),
            None => None,
        };

        let home = Home::open()?;
        let dep = home.deployment(&conf.parsed.name)?;
        if dep.exists() {
            let phase = dep
                .read_state()
                .map(|s| s.phase.to_string())
                .unwrap_or_else(|_| "unknown".into());
            if !self.yes
                && !ui.confirm(&format!(
                    "`{}` is already deployed ({phase}). Replace it?",
                    dep.name
                ))
            {
                bail!(
                    "`{}` is already deployed ({phase}): pass -y to replace it, or `mse stop {} --remove` first",
                    dep.name,
                    dep.name
                );
            }
            let step = ui.step(&format!("Stopping the previous `{}`", dep.name));
            super::stop::stop(&dep, true)?;
            step.done("");
        }

        let node_binary = node::find_node_binary(self.node.as_deref())?;
        let linked = node::linked_python(&node_binary)?;

        let step = ui.step("Preparing the Python runtime");
        let (base, note) = Base::from_docker(conf.parsed.docker.as_deref());
        if let Some(note) = note {
            ui.warn(&note);
        }
        let interpreter = runtime::find_interpreter(linked.as_ref())?;
        let requirements = conf.parsed.code_dir.join("requirements.txt");
        let requirements = requirements.is_file().then_some(requirements);
        let spec = runtime::Spec {
            interpreter: &interpreter,
            base,
            requirements: requirements.as_deref(),
            extra: &[],
        };
        let rt = runtime::ensure(&spec, &runtime::cache_dir()?, &|m| step.update(m))?;
        let roots = node::runtime_roots(&rt.site_packages, linked.as_ref())?;
        let root_refs: Vec<&Path> = roots.iter().map(PathBuf::as_path).collect();
        let mut digests = crate::runtime::digest_cache()?;
        let runtime_digest = mse_measure::runtime_digest_cached(&root_refs, &mut digests)
            .context("digesting the Python runtime")?;
        crate::runtime::save_digest_cache(&mut digests);
        step.done(&format!(
            "{} base, Python {}{}",
            rt.base,
            rt.python_version,
            if rt.reused { ", cached" } else { "" }
        ));

        // From here on a node may run: Ctrl-C, SIGTERM and a closed terminal stop it (and wipe
        // what it was given) instead of killing this process with it half-started. The handlers
        // are installed before the node exists, so no signal lands in between.
        use tokio::signal::unix::{SignalKind, signal};
        let mut sigint = signal(SignalKind::interrupt()).context("handling Ctrl-C")?;
        let mut sigterm = signal(SignalKind::terminate()).context("handling SIGTERM")?;
        let mut sighup = signal(SignalKind::hangup()).context("handling SIGHUP")?;
        let mut flow = Flow {
            ui,
            conf,
            dep,
            node_binary,
            rt,
            runtime_digest,
            digests,
            supervised: None,
        };
        let result = tokio::select! {
            r = flow.run(&self, expected_override) => r,
            _ = sigint.recv() => Err(anyhow::anyhow!("interrupted (Ctrl-C)")),
            _ = sigterm.recv() => Err(anyhow::anyhow!("terminated (SIGTERM)")),
            _ = sighup.recv() => Err(anyhow::anyhow!("the terminal closed (SIGHUP)")),
        };
        match result {
            Ok(outcome) => {
                flow.finish(&outcome, started.elapsed());
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                flow.fail(&e);
                Err(e)
            }
        }
    }
}

fn layout_name(conf: &DeployConfig) -> &'static str {
    match conf.parsed.layout {
        config::Layout::Seed => "seed",
        config::Layout::MseCli => "mse-cli",
    }
}

fn parse_measurement(h: &str) -> anyhow::Result<Vec<u8>> {
    let bytes = hex::decode(h.trim()).context("--expected-measurement: not hex")?;
    if bytes.len() != 32 {
        bail!(
            "--expected-measurement: {} bytes, a measurement is 32 (64 hex digits)",
            bytes.len()
        );
    }
    Ok(bytes)
}

/// The deploy after the runtime is ready: owns the supervisor so that any failure stops it.
struct Flow {
    ui: Ui,
    conf: DeployConfig,
    dep: Deployment,
    node_binary: PathBuf,
    rt: runtime::Runtime,
    runtime_digest: mse_measure::RuntimeDigest,
    /// Opened once for the runtime; the node binary's digest comes from it too.
    digests: mse_measure::DigestCache,
    supervised: Option<Supervised>,
}

impl Flow {
    async fn run(
        &mut self,
        args: &Args,
        expected_override: Option<Vec<u8>>,
    ) -> anyhow::Result<Outcome> {
        let ui = self.ui;
        let name = self.conf.parsed.name.clone();
        self.dep.create()?;
        let app_dir = self.dep.app_dir();
        let storage = Storage {
            root: self.dep.storage_dir(),
        };

        // 1. Encrypt with a fresh key; the key and nonces go to the context (0600) only.
        let step = ui.step("Encrypting the code");
        let key = CodeKey::generate();
        let nonces = mse_crypto::code::encrypt_tree(
            &self.conf.parsed.code_dir,
            &app_dir,
            &key,
            None,
            &self.conf.ignore,
        )
        .with_context(|| format!("encrypting {}", self.conf.parsed.code_dir.display()))?;
        let chain_path = app_dir.join("fullchain.pem");
        if let Some(ssl) = &self.conf.ssl {
            // Shipped in clear and measured, as the original did.
            std::fs::write(&chain_path, &ssl.chain_pem)
                .with_context(|| format!("writing {}", chain_path.display()))?;
        }
        restrict_tree(&app_dir)?;
        step.done(&format!("{} files", nonces.len()));

        // 2. Launch arguments: every one is measured.
        let port = match args.port {
            Some(p) => p,
            None => node::free_port()?,
        };
        let id = uuid::Uuid::new_v4();
        let now = OffsetDateTime::now_utc();
        let mut expires = now + self.conf.parsed.profile.lifetime;
        if let Some(exp) = self.conf.parsed.expiration {
            expires = expires.min(exp);
        }
        let mut node_args: Vec<String> = Vec::new();
        match &self.conf.ssl {
            None => node_args.extend(["--ratls".into(), expires.unix_timestamp().to_string()]),
            Some(_) => node_args.extend([
                "--certificate".into(),
                chain_path.to_string_lossy().into_owned(),
            ]),
        }
        node_args.extend([
            "--host".into(),
            "127.0.0.1".into(),
            "--port".into(),
            port.to_string(),
            "--san".into(),
            "localhost".into(),
            "--app-dir".into(),
            app_dir.to_string_lossy().into_owned(),
            "--id".into(),
            id.to_string(),
            "--tee".into(),
            "sim".into(),
            "--site-packages".into(),
            self.rt.site_packages.to_string_lossy().into_owned(),
            "--memory".into(),
            self.conf.parsed.profile.memory_bytes.to_string(),
            "--storage-quota".into(),
            self.conf.parsed.profile.storage_bytes.to_string(),
        ]);
        if args.insecure_no_sandbox {
            node_args.push("--insecure-no-sandbox".into());
        }
        node_args.push(self.conf.parsed.app.to_string());

        let manifest = mse_measure::Manifest::from_parts_cached(
            &self.node_binary,
            &self.runtime_digest,
            &app_dir,
            &node_args,
            &mut self.digests,
        )
        .context("computing the expected measurement")?;
        // Writes only if the node binary's digest was new.
        crate::runtime::save_digest_cache(&mut self.digests);
        let computed = manifest.measurement().to_vec();
        // Not secret (digests of ciphertext, arguments): kept to explain a mismatch.
        crate::state::write_private(
            &self.dep.dir.join("manifest.txt"),
            &manifest.to_canonical_bytes(),
        )?;
        let expected_measurement = expected_override.unwrap_or_else(|| computed.clone());

        let domain = self
            .conf
            .ssl
            .as_ref()
            .map(|s| s.domain_name.clone())
            .unwrap_or_else(|| "localhost".into());
        let context = Context {
            version: "2.0".into(),
            workspace: self.dep.dir.clone(),
            config: ContextConfig {
                name: name.clone(),
                project: self.conf.parsed.project.clone(),
                code_secret_key: key.to_hex(),
                docker: self.conf.parsed.docker.clone().unwrap_or_default(),
                python_application: self.conf.parsed.app.to_string(),
                ssl_app_certificate: self.conf.ssl.as_ref().map(|s| s.chain_pem.clone()),
                tests: self.conf.parsed.tests.dir.clone(),
                tests_cmd: self.conf.parsed.tests.cmd.clone(),
                tests_requirements: self.conf.parsed.tests.requirements.clone(),
            },
            instance: ContextInstance {
                id,
                config_domain_name: "localhost".into(),
                enclave_size: self.conf.parsed.profile.memory_bytes / (1024 * 1024),
                expires_at: rfc3339(expires),
                ssl_certificate_origin: if self.conf.ssl.is_some() {
                    "owner"
                } else {
                    "self"
                }
                .into(),
                nonces: nonces
                    .iter()
                    .map(|(k, v)| (k.clone(), hex::encode(v)))
                    .collect(),
            },
            local: LocalInfo {
                config_file: std::path::absolute(&self.conf.parsed.file)
                    .unwrap_or_else(|_| self.conf.parsed.file.clone()),
                node_binary: self.node_binary.clone(),
                runtime_digest: hex::encode(self.runtime_digest.0),
                runtime_dir: self.rt.dir.clone(),
                node_args: node_args.clone(),
                measurement: hex::encode(&computed),
                healthcheck_endpoint: self.conf.parsed.healthcheck.clone(),
                domain_name: domain.clone(),
                port,
            },
        };
        self.dep.write_context(&context)?;

        // 3. The node, supervised.
        let step = ui.step("Starting the node (sim)");
        let sim_dir = node::sim_dir()?;
        let lifetime = Duration::try_from(expires - now).unwrap_or_default();
        let supervised = node::spawn_supervised(&node::Launch {
            node_binary: &self.node_binary,
            args: &node_args,
            storage: &storage,
            sim_dir: &sim_dir,
            state_dir: &self.dep.dir,
            log_file: &self.dep.log_path(),
            lifetime: Some(lifetime),
            cpus: self.conf.parsed.profile.cpus,
        })?;
        let mut state = NodeState {
            name: name.clone(),
            id,
            phase: Phase::Starting,
            supervisor_pid: supervised.pid(),
            port,
            url: format!("https://{domain}:{port}"),
            domain_name: domain.clone(),
            healthcheck_endpoint: self.conf.parsed.healthcheck.clone(),
            started_at: rfc3339(now),
            expires_at: rfc3339(expires),
            profile: self.conf.parsed.profile.name.clone(),
            measurement: Some(hex::encode(&computed)),
            failure: None,
        };
        self.dep.write_state(&state)?;
        self.supervised = Some(supervised);
        let deadline = Instant::now() + Duration::from_secs(args.timeout);
        let der = self.wait_certificate(port, deadline).await?;
        step.done(&format!("127.0.0.1:{port}"));

        // 4. Verify before anything is sent.
        let step = ui.step("Verifying the node's evidence");
        let cert = RaTlsCertificate::from_der(&der)
            .context("the node's certificate is not an RA-TLS certificate")?;
        crate::state::write_private(&self.dep.ratls_path(), cert.to_pem().as_bytes())?;
        let policy = attest::policy(args.policy, &sim_dir)?;
        let collateral = Collateral::none();
        let expected = Expected {
            measurement: Some(expected_measurement.clone()),
            ..Expected::default()
        };
        let (report, verified) =
            attest::verify_certificate(&cert, &collateral, &policy, &expected, SystemTime::now());
        let Some(appraisal) = verified else {
            drop(step);
            state.phase = Phase::Rejected;
            state.failure = report.failure.as_ref().map(|f| f.reason.clone());
            self.dep.write_state(&state)?;
            ui.info(&report.to_human());
            return Err(NegativeVerdict(format!(
                "the node did not verify; nothing was sent to it: {}",
                state.failure.as_deref().unwrap_or("unknown reason")
            ))
            .into());
        };
        let enclave_key = appraisal
            .enclave_key
            .context("the certificate's report data carries no enclave key")?;
        let client = NodeClient::new(&format!("https://127.0.0.1:{port}"), &der)?;
        let (fresh_report, fresh_ok) = attest::verify_fresh(
            &client,
            &cert,
            &enclave_key,
            &collateral,
            &policy,
            Some(expected_measurement),
        )
        .await?;
        if fresh_ok.is_none() {
            drop(step);
            state.phase = Phase::Rejected;
            state.failure = fresh_report
                .failure
                .as_ref()
                .map(|f| format!("fresh evidence: {}", f.reason));
            self.dep.write_state(&state)?;
            ui.info(&fresh_report.to_human());
            return Err(NegativeVerdict(format!(
                "the node's fresh evidence did not verify; nothing was sent to it: {}",
                state.failure.as_deref().unwrap_or("unknown reason")
            ))
            .into());
        }
        let simulated = appraisal.simulated;
        step.done(&format!(
            "measurement {}{}",
            &hex::encode(&appraisal.measurement)[..16],
            if simulated { ", SIMULATED" } else { "" }
        ));
        if simulated {
            ui.warn(mse_attest::verify::SIMULATED_WARNING);
        }

        // 5. Hand over the secrets, over the pinned connection.
        let step = ui.step("Sending the code key and secrets");
        if !client.is_waiting_for_secrets().await {
            bail!("the node does not wait for its configuration any more: see `mse logs {name}`");
        }
        let payload = ConfigurationPayload {
            uuid: id,
            code_secret_key: Some(key),
            app_secrets: self.conf.secrets.as_ref().map(|s| s.value.clone()),
            app_sealed_secrets: None,
            ssl_private_key: self.conf.ssl.as_ref().map(|s| s.private_key_pem.clone()),
        };
        client
            .configure(&payload)
            .await
            .context("sending the configuration")?;
        drop(payload);
        if let Some(s) = self.supervised.as_mut() {
            s.release()?;
        }
        state.phase = Phase::Configured;
        self.dep.write_state(&state)?;
        step.done("");

        // 6. Healthy?
        let step = ui.step(&format!("Waiting for {}", self.conf.parsed.healthcheck));
        let app_client = match &self.conf.ssl {
            Some(ssl) => {
                let leaf = first_certificate(&ssl.chain_pem)?;
                NodeClient::new(&format!("https://127.0.0.1:{port}"), &leaf)?
            }
            None => client,
        };
        self.wait_ready(&app_client, deadline).await?;
        step.done("");

        // 7. What to trust, and how to call it.
        let cert_path = self.dep.cert_path();
        let cacert = match &self.conf.ssl {
            None => {
                crate::state::write_private(&cert_path, cert.to_pem().as_bytes())?;
                Some(cert_path)
            }
            Some(ssl) => {
                crate::state::write_private(&cert_path, ssl.chain_pem.as_bytes())?;
                ends_self_signed(&ssl.chain_pem).then_some(cert_path)
            }
        };
        let url = format!("https://{domain}:{port}");
        let mut curl = String::from("curl");
        if let Some(p) = &cacert {
            curl.push_str(&format!(" --cacert {}", p.display()));
        }
        if !resolves_to_loopback(&domain) {
            curl.push_str(&format!(" --resolve {domain}:{port}:127.0.0.1"));
        }
        curl.push_str(&format!(" {url}{}", self.conf.parsed.healthcheck));
        Ok(Outcome {
            url,
            curl,
            simulated,
        })
    }

    async fn wait_certificate(&mut self, port: u16, deadline: Instant) -> anyhow::Result<Vec<u8>> {
        loop {
            self.check_node_alive()?;
            match mse_client::fetch_certificate_within("127.0.0.1", port, Duration::from_secs(2))
                .await
            {
                Ok(der) => return Ok(der),
                Err(e) if Instant::now() >= deadline => {
                    return Err(anyhow::Error::new(e).context(format!(
                        "the node did not answer on 127.0.0.1:{port} in time; see {}",
                        self.dep.log_path().display()
                    )));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    async fn wait_ready(&mut self, client: &NodeClient, deadline: Instant) -> anyhow::Result<()> {
        loop {
            if client.is_ready(&self.conf.parsed.healthcheck).await {
                return Ok(());
            }
            self.check_node_alive()?;
            if Instant::now() >= deadline {
                bail!(
                    "{} did not answer in time; the app keeps starting in the background: see `mse logs {}`",
                    self.conf.parsed.healthcheck,
                    self.conf.parsed.name
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn check_node_alive(&mut self) -> anyhow::Result<()> {
        let exited = self.supervised.as_mut().is_some_and(Supervised::has_exited);
        if exited {
            let why =
                std::fs::read_to_string(self.dep.dir.join(node::EXIT_FILE)).unwrap_or_default();
            bail!(
                "the node stopped: {}\n{}\n(full log: {})",
                why.trim(),
                node::log_tail(&self.dep.log_path(), 20),
                self.dep.log_path().display()
            );
        }
        Ok(())
    }

    fn finish(&mut self, o: &Outcome, elapsed: Duration) {
        let ui = self.ui;
        ui.success(&format!(
            "{} is up in {:.1}s",
            self.conf.parsed.name,
            elapsed.as_secs_f64()
        ));
        if o.simulated {
            ui.warn("SIMULATED node: fine for development, no TEE protects it");
        }
        let _ = crate::ui::out(&format!("URL:  {}", ui.strong(&o.url)));
        let _ = crate::ui::out(&format!("Try:  {}", o.curl));
        ui.info(&format!(
            "Status: mse status {n} · Logs: mse logs {n} · Stop: mse stop {n}",
            n = self.conf.parsed.name
        ));
    }

    /// Any failure: before hand-over the node is stopped (the supervisor wipes its storage);
    /// a rejected deployment keeps its state and log for inspection, and loses its key.
    fn fail(&mut self, e: &anyhow::Error) {
        let configured = self
            .dep
            .read_state()
            .is_ok_and(|s| s.phase == Phase::Configured);
        if configured {
            // Running with its secrets: the user inspects and stops it.
            self.ui.info(&format!(
                "The node holds its configuration and keeps running: mse status {n} · mse stop {n}",
                n = self.dep.name
            ));
            return;
        }
        if let Some(s) = self.supervised.take() {
            s.abort(Duration::from_secs(40));
        }
        let rejected = e
            .chain()
            .any(|c| c.downcast_ref::<NegativeVerdict>().is_some());
        if rejected {
            let _ = std::fs::remove_file(self.dep.context_path());
            let _ = std::fs::remove_dir_all(self.dep.app_dir());
            let _ = self.dep.remove_storage();
            self.ui
                .info(&format!("The node's log: mse logs {}", self.dep.name));
        } else {
            let _ = self.dep.remove();
        }
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// DER of the first certificate of a PEM chain.
fn first_certificate(chain_pem: &str) -> anyhow::Result<Vec<u8>> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject as _;
    let first = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .next()
        .context("the certificate file holds no certificate")?
        .map_err(|e| anyhow::anyhow!("bad PEM certificate: {e:?}"))?;
    Ok(first.as_ref().to_vec())
}

/// The chain ends with a self-signed certificate: clients need it as their trust anchor.
fn ends_self_signed(chain_pem: &str) -> bool {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject as _;
    let Some(Ok(last)) = CertificateDer::pem_slice_iter(chain_pem.as_bytes()).last() else {
        return false;
    };
    x509_parser::parse_x509_certificate(&last).is_ok_and(|(_, c)| c.subject() == c.issuer())
}

/// Whether curl reaches the node by this name without `--resolve`. Decided without a DNS query
/// (this may run offline): only `localhost` names are loopback by definition (RFC 6761).
fn resolves_to_loopback(domain: &str) -> bool {
    domain == "localhost" || domain.ends_with(".localhost")
}

/// Owner-only modes on the shipped code (everything under the client's folder is 0700/0600).
fn restrict_tree(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    for entry in walkdir::WalkDir::new(dir).follow_links(false) {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let mode = if entry.file_type().is_dir() {
            0o700
        } else {
            0o600
        };
        if !entry.file_type().is_symlink() {
            std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(mode))
                .with_context(|| format!("restricting {}", entry.path().display()))?;
        }
    }
    Ok(())
}
