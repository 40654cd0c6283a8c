//! `mse verify`: is this node (or this evidence) what I expect? A short report, the reason first
//! on failure, `--json` for scripts; exit 0 verified, 1 not verified, 2 could not check.
//!
//! Sources: a local deployment by NAME (expected measurement from its context, recomputed from
//! the code with `--recompute`; fresh evidence over a nonce), a running node by `--address`, or
//! a file by `--evidence` (the original's evidence.json, a PEM RA-TLS certificate, or raw
//! evidence: an SGX or TDX quote, an SEV-SNP report with or without its certificate table),
//! with `--collateral` for what the file does not carry. SGX/TDX evidence that carries no
//! collateral (a node's certificate, a PEM certificate, a raw quote) takes it from a PCCS with
//! `--pccs URL` or `MSE_PCCS_URL` (cached under the cache folder); without one it fails at the
//! collateral step, and the reason says so. SEV-SNP and simulation evidence need no PCCS.
//!
//! Fails closed: evidence that does not parse is a FAILED report (exit 1), `--fresh` that
//! cannot be honoured is a FAILED report, and fresh evidence must show the same measurement
//! as the certificate's when no measurement is expected. With several reports (certificate and
//! fresh evidence), the human output puts the failed ones first.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Context as _, bail};
use mse_attest::collateral::Collateral;
use mse_attest::evidence_file::EvidenceFile;
use mse_attest::ratls::{RaTlsCertificate, RawEvidence};
use mse_attest::report::{Freshness, VerifyReport};
use mse_attest::verify::Expected;
use mse_attest::{Step, TeeKind};

use crate::attest::{self, CollateralSource, PolicyChoice, failed_report};
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
    /// An evidence file: mse-cli's evidence.json, a PEM RA-TLS certificate, or raw evidence
    /// (SGX/TDX quote, SEV-SNP report with or without its certificate table).
    #[arg(long, value_name = "FILE")]
    pub evidence: Option<PathBuf>,
    /// Collateral for `--evidence`: a dcap-qvl collateral JSON, an mse collateral JSON, or AMD
    /// certificates (PEM: VCEK or VLEK, ASK, ARK). Replaces an evidence.json's own collateral.
    #[arg(long, value_name = "FILE", requires = "evidence")]
    pub collateral: Option<PathBuf>,
    /// PCCS (Intel's v4 API) to fetch the collateral of SGX/TDX evidence that carries none (a
    /// node, a PEM certificate, a raw quote); cached under the cache folder (MSE_CACHE_DIR).
    #[arg(long, value_name = "URL", env = "MSE_PCCS_URL")]
    pub pccs: Option<String>,
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
        let reports = rt.block_on(self.verify(ui))?;
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
            // The reason first: failed reports before the others.
            let mut ordered: Vec<&VerifyReport> = reports.iter().collect();
            ordered.sort_by_key(|r| r.ok);
            for r in ordered {
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

    async fn verify(&self, ui: Ui) -> anyhow::Result<Vec<VerifyReport>> {
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
        let source = CollateralSource::new(self.pccs.as_deref())?;

        if let Some(file) = &self.evidence {
            let policy = attest::policy(self.policy.unwrap_or(PolicyChoice::Strict), &sim_dir)?;
            let collateral = match &self.collateral {
                Some(c) => Some(read_collateral(c)?),
                None => None,
            };
            return Ok(vec![
                verify_file(file, collateral, &source, &policy, measurement, now, ui).await?,
            ]);
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
        let collateral = source.collateral_for(cert.evidence(), now, ui).await?;
        let expected = Expected {
            measurement: measurement.clone(),
            ..Expected::default()
        };
        let (mut report, verified) =
            attest::verify_certificate(&cert, &collateral, &policy, &expected, now);
        attest::hint_missing_collateral(&mut report, &collateral);
        let mut reports = vec![report];
        if let (true, Some(v)) = (fresh || self.fresh, verified) {
            match v.enclave_key {
                Some(enclave_key) => {
                    let client =
                        mse_client::NodeClient::new(&format!("https://{host}:{port}"), &der)?;
                    // Without an expected value, fresh evidence must at least show the
                    // measurement the certificate's evidence showed.
                    let pinned = measurement.or_else(|| Some(v.measurement.clone()));
                    // The fresh quote comes from the same platform: the same collateral.
                    let (fresh_report, _) = attest::verify_fresh(
                        &client,
                        &cert,
                        &enclave_key,
                        &collateral,
                        &policy,
                        pinned,
                    )
                    .await?;
                    reports.push(fresh_report);
                }
                // THREAT: T5 — asked for freshness and cannot get it: say so, do not pass.
                None => reports.push(failed_report(
                    cert.evidence().kind,
                    Step::ReportDataBinding,
                    "fresh evidence was asked for, but the certificate's report data carries no enclave key (all-zero second half, mse-lib-sgx < 2.1): this node cannot answer a nonce, so a replayed certificate cannot be ruled out".into(),
                    Freshness::Fresh {
                        nonce: String::new(),
                    },
                )),
            }
        }
        Ok(reports)
    }
}

/// Verify an evidence file. Collateral: `--collateral`, else the file's own (evidence.json),
/// else the PCCS's if one is given.
async fn verify_file(
    file: &Path,
    collateral: Option<Collateral>,
    source: &CollateralSource,
    policy: &mse_attest::policy::Policy,
    measurement: Option<Vec<u8>>,
    now: SystemTime,
    ui: Ui,
) -> anyhow::Result<VerifyReport> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let mut expected = Expected {
        measurement,
        ..Expected::default()
    };
    let mut report = match read_evidence(&bytes) {
        Ok(FileEvidence::Certificate {
            cert,
            collateral: own,
            signer,
        }) => {
            expected.signer = signer;
            let collateral =
                or_pccs(collateral.unwrap_or(*own), cert.evidence(), source, now, ui).await?;
            let mut report =
                attest::verify_certificate(&cert, &collateral, policy, &expected, now).0;
            attest::hint_missing_collateral(&mut report, &collateral);
            report
        }
        Ok(FileEvidence::Raw(evidence)) => {
            let given = collateral.unwrap_or_else(Collateral::none);
            let collateral = or_pccs(given, &evidence, source, now, ui).await?;
            let outcome =
                mse_attest::verify::verify_at(&evidence, &collateral, policy, &expected, now);
            let mut report = VerifyReport::new(&evidence, &expected, Freshness::File, &outcome);
            attest::hint_missing_collateral(&mut report, &collateral);
            report
        }
        // Untrusted bytes that are not evidence: a negative verdict with the parser's reason.
        Err((kind, e)) => {
            let step = e.step().unwrap_or(Step::EvidenceFormat);
            let text = e.to_string();
            let reason = if text.starts_with(step.as_str()) {
                text
            } else {
                format!("{step}: {text}")
            };
            failed_report(kind, step, reason, Freshness::File)
        }
    };
    report.freshness = Freshness::File;
    Ok(report)
}

/// `given` (from `--collateral` or the file), unless it has no DCAP collateral and the PCCS
/// has some for this evidence (AMD certificates given for SNP evidence are kept).
async fn or_pccs(
    given: Collateral,
    evidence: &RawEvidence,
    source: &CollateralSource,
    now: SystemTime,
    ui: Ui,
) -> anyhow::Result<Collateral> {
    if given.has_dcap() {
        return Ok(given);
    }
    let from_pccs = source.collateral_for(evidence, now, ui).await?;
    Ok(if from_pccs.has_dcap() {
        from_pccs
    } else {
        given
    })
}

/// What an evidence file holds.
enum FileEvidence {
    /// An RA-TLS certificate (PEM, or inside an evidence.json with its collateral and signer).
    Certificate {
        cert: Box<RaTlsCertificate>,
        collateral: Box<Collateral>,
        signer: Option<Vec<u8>>,
    },
    /// Raw evidence: nothing binds it to a key (the report says report data was not checked).
    Raw(RawEvidence),
}

/// Recognise an evidence file. On error, the kind it seemed to be and the parser's error.
fn read_evidence(bytes: &[u8]) -> Result<FileEvidence, (TeeKind, mse_attest::Error)> {
    let text = std::str::from_utf8(bytes).ok();
    let trimmed = text.map(str::trim_start).unwrap_or_default();
    if trimmed.starts_with('{') {
        let ev = EvidenceFile::parse(bytes).map_err(|e| (TeeKind::Sgx, e))?;
        let cert = ev.certificate().map_err(|e| (TeeKind::Sgx, e))?;
        let collateral = ev.collateral().map_err(|e| (cert.evidence().kind, e))?;
        let signer = ev.signer_mr().ok().map(|s| s.to_vec());
        return Ok(FileEvidence::Certificate {
            cert: Box::new(cert),
            collateral: Box::new(collateral),
            signer,
        });
    }
    if trimmed.starts_with("-----BEGIN") {
        let cert = RaTlsCertificate::from_pem(trimmed).map_err(|e| (TeeKind::Sgx, e))?;
        return Ok(FileEvidence::Certificate {
            cert: Box::new(cert),
            collateral: Box::new(Collateral::none()),
            signer: None,
        });
    }
    // Raw evidence: the parsers are strict, so at most one accepts the bytes.
    let sgx_err = match mse_attest::sgx::Quote::parse(bytes) {
        Ok(_) => return Ok(raw(TeeKind::Sgx, bytes)),
        Err(e) => e,
    };
    let tdx_err = match mse_attest::tdx::Quote::parse(bytes) {
        Ok(_) => return Ok(raw(TeeKind::Tdx, bytes)),
        Err(e) => e,
    };
    let snp_err = match mse_attest::snp::Evidence::parse(bytes) {
        Ok(_) => return Ok(raw(TeeKind::SevSnp, bytes)),
        Err(e) => e,
    };
    let kind = match bytes.get(4..8) {
        Some([0x81, 0, 0, 0]) => TeeKind::Tdx,
        Some([0, 0, 0, 0]) => TeeKind::Sgx,
        _ => TeeKind::SevSnp,
    };
    Err((
        kind,
        mse_attest::Error::Verification {
            step: Step::EvidenceFormat,
            reason: format!(
                "not an evidence.json, a PEM RA-TLS certificate, or raw evidence ({sgx_err}; {tdx_err}; {snp_err})"
            ),
        },
    ))
}

fn raw(kind: TeeKind, bytes: &[u8]) -> FileEvidence {
    FileEvidence::Raw(RawEvidence {
        kind,
        bytes: bytes.to_vec(),
    })
}

/// `--collateral`: dcap-qvl's collateral JSON, mse's collateral JSON, or AMD PEM certificates.
fn read_collateral(path: &Path) -> anyhow::Result<Collateral> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let source = format!("file {}", path.display());
    let text = String::from_utf8_lossy(&bytes);
    if text.trim_start().starts_with('{') {
        return Collateral::from_dcap_qvl_json(&bytes, source)
            .or_else(|_| Collateral::from_json(&bytes))
            .with_context(|| {
                format!(
                    "{}: neither a dcap-qvl nor an mse collateral JSON",
                    path.display()
                )
            });
    }
    if text.contains("-----BEGIN CERTIFICATE-----") {
        return Collateral::none()
            .with_amd_certs_pem(&bytes)
            .with_context(|| format!("{}: bad AMD certificates", path.display()));
    }
    anyhow::bail!(
        "{}: not collateral (expected a dcap-qvl or mse collateral JSON, or AMD PEM certificates)",
        path.display()
    )
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
    // The deploy's stat-keyed digest cache (docs/measurement.md): only changed runtime files are
    // read again, so the recomputation takes milliseconds, not a pass over ~200 MB.
    let mut cache = crate::runtime::digest_cache()?;
    let digest = mse_measure::runtime_digest_cached(&refs, &mut cache)?;
    let manifest = mse_measure::Manifest::from_parts_cached(
        &ctx.local.node_binary,
        &digest,
        &app,
        &ctx.local.node_args,
        &mut cache,
    )?;
    crate::runtime::save_digest_cache(&mut cache);
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
