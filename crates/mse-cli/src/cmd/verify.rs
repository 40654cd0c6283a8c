//! `mse verify`: is this node (or this evidence) what I expect? A short report, the reason first
//! on failure, `--json` for scripts; exit 0 verified, 1 not verified, 2 could not check.
//!
//! Sources: a local deployment by NAME (expected measurement from its context, recomputed from
//! the code with `--recompute`; fresh evidence over a nonce), a running node by `--address`, or
//! a file by `--evidence` (the original's evidence.json, or a PEM RA-TLS certificate).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Context as _, bail};
use mse_attest::collateral::Collateral;
use mse_attest::evidence_file::EvidenceFile;
use mse_attest::ratls::RaTlsCertificate;
use mse_attest::report::VerifyReport;
use mse_attest::verify::Expected;

use crate::attest::{self, PolicyChoice};
use crate::state::{Deployment, Home};
use crate::ui::{self, Ui};

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["name", "address", "evidence"])))]
pub struct Args {
    /// A local deployment (`mse list`).
    pub name: Option<String>,
    /// A running node, HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    pub address: Option<String>,
    /// An evidence file: mse-cli's evidence.json, or a PEM RA-TLS certificate.
    #[arg(long, value_name = "FILE")]
    pub evidence: Option<PathBuf>,
    /// The measurement the node must have (hex). Default for NAME: the one computed at deploy.
    #[arg(long, value_name = "HEX")]
    pub measurement: Option<String>,
    /// For NAME: recompute the expected measurement now, from the code folder re-encrypted with
    /// the context's key and nonces (fails if the code changed since the deploy).
    #[arg(long, requires = "name")]
    pub recompute: bool,
    /// Also ask the node for evidence over a fresh nonce (default for NAME).
    #[arg(long)]
    pub fresh: bool,
    /// Verification policy (default: dev for NAME, strict otherwise).
    #[arg(long, value_enum)]
    pub policy: Option<PolicyChoice>,
    /// Verify as of this time (RFC 3339), e.g. an evidence file's capture date.
    #[arg(long, value_name = "RFC3339")]
    pub at: Option<String>,
    /// JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

impl Args {
    pub fn run(self, ui: Ui) -> anyhow::Result<ExitCode> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        let reports = rt.block_on(self.verify())?;
        let ok = reports.iter().all(|r| r.ok);
        if self.json {
            if let [one] = reports.as_slice() {
                ui::out(&one.to_json())?;
            } else {
                let values: Vec<serde_json::Value> = reports
                    .iter()
                    .map(|r| serde_json::from_str(&r.to_json()).unwrap_or_default())
                    .collect();
                ui::print_json(&values)?;
            }
        } else {
            for r in &reports {
                let text = r.to_human();
                ui::out(text.trim_end())?;
            }
            if ok && reports.iter().any(|r| r.simulated) {
                ui.warn("SIMULATED: no TEE protects this node");
            }
        }
        Ok(if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    }

    async fn verify(&self) -> anyhow::Result<Vec<VerifyReport>> {
        let now = match &self.at {
            Some(t) => {
                let t =
                    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                        .with_context(|| {
                            format!("--at {t}: not an RFC 3339 time (e.g. 2023-06-01T00:00:00Z)")
                        })?;
                SystemTime::from(t)
            }
            None => SystemTime::now(),
        };
        let mut measurement = match &self.measurement {
            Some(h) => Some(hex::decode(h.trim()).context("--measurement: not hex")?),
            None => None,
        };
        let sim_dir = crate::node::sim_dir()?;

        if let Some(file) = &self.evidence {
            let policy = attest::policy(self.policy.unwrap_or(PolicyChoice::Strict), &sim_dir)?;
            return Ok(vec![verify_file(file, &policy, measurement, now)?]);
        }

        let mut deployment = None;
        let (host, port, fresh, choice) = match (&self.name, &self.address) {
            (Some(name), _) => {
                let dep = Home::open()?.deployment(name)?;
                if !dep.exists() {
                    bail!("no deployment named `{name}` (see `mse list`)");
                }
                let ctx = dep
                    .read_context()
                    .with_context(|| format!("`{name}` has no context to verify against"))?;
                if measurement.is_none() {
                    measurement = Some(if self.recompute {
                        recompute(&dep, &ctx)?
                    } else {
                        hex::decode(&ctx.local.measurement)
                            .context("the context's measurement is not hex")?
                    });
                }
                deployment = Some(dep);
                (
                    "127.0.0.1".to_owned(),
                    ctx.local.port,
                    true,
                    self.policy.unwrap_or(PolicyChoice::Dev),
                )
            }
            (None, Some(addr)) => {
                let (h, p) = addr
                    .rsplit_once(':')
                    .context("--address: expected HOST:PORT")?;
                let p: u16 = p.parse().context("--address: the port is not a number")?;
                (
                    h.trim_matches(['[', ']']).to_owned(),
                    p,
                    self.fresh,
                    self.policy.unwrap_or(PolicyChoice::Strict),
                )
            }
            (None, None) => bail!("give a deployment NAME, --address or --evidence"),
        };
        let policy = attest::policy(choice, &sim_dir)?;
        let der = mse_client::fetch_certificate(&host, port)
            .await
            .with_context(|| format!("fetching the certificate of {host}:{port}"))?;
        let cert = match (RaTlsCertificate::from_der(&der), &deployment) {
            (Ok(cert), _) => cert,
            // An app serving its owner's certificate: the RA-TLS one was verified at deploy time
            // and is checked again below; the served one must be the one deployed, and fresh
            // evidence over that connection ties the two together.
            (Err(_), Some(dep)) => owner_mode_certificate(dep, &der)?,
            (Err(e), None) => {
                return Err(anyhow::Error::new(e)
                    .context("the node's certificate is not an RA-TLS certificate"));
            }
        };
        let collateral = Collateral::none();
        let expected = Expected {
            measurement: measurement.clone(),
            ..Expected::default()
        };
        let (report, verified) =
            attest::verify_certificate(&cert, &collateral, &policy, &expected, now);
        let mut reports = vec![report];
        if let (true, Some(v)) = (fresh || self.fresh, verified)
            && let Some(enclave_key) = v.enclave_key
        {
            let client = mse_client::NodeClient::new(&format!("https://{host}:{port}"), &der)?;
            let (fresh_report, _) = attest::verify_fresh(
                &client,
                &cert,
                &enclave_key,
                &collateral,
                &policy,
                measurement,
            )
            .await?;
            reports.push(fresh_report);
        }
        Ok(reports)
    }
}

fn verify_file(
    file: &Path,
    policy: &mse_attest::policy::Policy,
    measurement: Option<Vec<u8>>,
    now: SystemTime,
) -> anyhow::Result<VerifyReport> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    let (cert, collateral, signer) = if text.trim_start().starts_with('{') {
        let ev = EvidenceFile::parse(&bytes)
            .with_context(|| format!("{} is not an evidence.json", file.display()))?;
        let signer = ev.signer_mr().ok().map(|s| s.to_vec());
        (ev.certificate()?, ev.collateral()?, signer)
    } else {
        let cert = RaTlsCertificate::from_pem(&text)
            .with_context(|| format!("{} is not a PEM RA-TLS certificate", file.display()))?;
        (cert, Collateral::none(), None)
    };
    let expected = Expected {
        measurement,
        signer,
        ..Expected::default()
    };
    let (mut report, _) = attest::verify_certificate(&cert, &collateral, policy, &expected, now);
    report.freshness = mse_attest::report::Freshness::File;
    Ok(report)
}

/// The measurement of a deployment, recomputed from its code folder, key and nonces, launch
/// arguments, node binary and runtime, exactly as at deploy time.
fn recompute(dep: &Deployment, ctx: &crate::state::Context) -> anyhow::Result<Vec<u8>> {
    let conf = crate::config::parse_file(&ctx.local.config_file)?;
    let key = mse_crypto::CodeKey::from_hex(&ctx.config.code_secret_key)
        .context("the context's code key is not valid")?;
    let mut nonces = mse_crypto::code::NonceMap::new();
    for (path, hex_nonce) in &ctx.instance.nonces {
        let bytes = hex::decode(hex_nonce).context("a nonce of the context is not hex")?;
        let nonce: [u8; 24] = bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("a nonce of the context is not 24 bytes"))?;
        nonces.insert(path.clone(), nonce);
    }
    let ignore = mse_crypto::ignore::read_mseignore(&conf.code_dir)?;
    let tmp = tempfile::Builder::new()
        .prefix(".verify-")
        .tempdir_in(&dep.dir)?;
    let app = tmp.path().join("app");
    mse_crypto::code::encrypt_tree(&conf.code_dir, &app, &key, Some(&nonces), &ignore)
        .context("re-encrypting the code with the context's key and nonces (did the code change since the deploy?)")?;
    if let Some(chain) = &ctx.config.ssl_app_certificate {
        std::fs::write(app.join("fullchain.pem"), chain)?;
    }
    let linked = crate::node::linked_python(&ctx.local.node_binary)?;
    let site_packages = site_packages_arg(&ctx.local.node_args)
        .context("the context's node arguments lack --site-packages")?;
    let roots = crate::node::runtime_roots(&site_packages, linked.as_ref())?;
    let refs: Vec<&Path> = roots.iter().map(PathBuf::as_path).collect();
    let digest = mse_measure::runtime_digest(&refs)?;
    let manifest = mse_measure::Manifest::from_parts(
        &ctx.local.node_binary,
        &digest,
        &app,
        &ctx.local.node_args,
    )?;
    Ok(manifest.measurement().to_vec())
}

/// For a deployment serving its owner's certificate: check the served certificate is the
/// deployed one and return the RA-TLS certificate recorded when the node was verified.
fn owner_mode_certificate(dep: &Deployment, served_der: &[u8]) -> anyhow::Result<RaTlsCertificate> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject as _;
    let recorded = std::fs::read(dep.cert_path())
        .with_context(|| format!("reading {}", dep.cert_path().display()))?;
    let leaf = CertificateDer::pem_slice_iter(&recorded)
        .next()
        .context("no certificate recorded for this deployment")?
        .map_err(|e| anyhow::anyhow!("bad recorded certificate: {e:?}"))?;
    if leaf.as_ref() != served_der {
        bail!(
            "the node serves another certificate than the one deployed: something else answers on its port"
        );
    }
    let pem = std::fs::read_to_string(dep.ratls_path())
        .with_context(|| format!("reading {}", dep.ratls_path().display()))?;
    RaTlsCertificate::from_pem(&pem).context("the recorded RA-TLS certificate does not parse")
}

fn site_packages_arg(args: &[String]) -> Option<PathBuf> {
    args.iter()
        .position(|a| a == "--site-packages")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
}
