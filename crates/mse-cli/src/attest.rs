//! The client's side of attestation: which policy, which simulation root, and the checks run
//! on a node before anything is sent (certificate evidence, then fresh evidence over a nonce).

use std::path::Path;
use std::time::SystemTime;

use anyhow::Context as _;
use mse_attest::collateral::Collateral;
use mse_attest::pccs::{Origin, PccsClient};
use mse_attest::policy::Policy;
use mse_attest::ratls::{RaTlsCertificate, RawEvidence};
use mse_attest::report::{Failure, Freshness, VerifyReport};
use mse_attest::sim::SimRoot;
use mse_attest::verify::{Appraisal, Expected, Verified};
use mse_attest::{Step, TeeKind};

use crate::ui::Ui;

/// `--policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyChoice {
    /// Strict, plus this machine's simulation root (local development; says SIMULATED).
    Dev,
    /// Real TEEs only, TCB up to date, no debug, current collateral.
    Strict,
    /// What the original client accepted (stale collateral and old certificates as warnings).
    MseCompatible,
}

/// Build the policy. `Dev` loads the local simulation root from `sim_dir`.
pub fn policy(choice: PolicyChoice, sim_dir: &Path) -> anyhow::Result<Policy> {
    Ok(match choice {
        PolicyChoice::Strict => Policy::default_strict(),
        PolicyChoice::MseCompatible => Policy::mse_compatible(),
        PolicyChoice::Dev => Policy::default_strict().allow_simulation(load_sim_root(sim_dir)?),
    })
}

/// The public half of this machine's simulation root: `root-cert.pem` in the simulation
/// folder, which the node's sim backend publishes next to its private `root.pem` (never read
/// here: the client needs only the certificate).
pub fn load_sim_root(dir: &Path) -> anyhow::Result<SimRoot> {
    let path = dir.join("root-cert.pem");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "no simulation root certificate at {}: it is created by the first node started with --tee sim (MSE_SIM_DIR chooses the folder)",
            path.display()
        )
    })?;
    SimRoot::from_pem(&text)
        .with_context(|| format!("{} is not a simulation root certificate", path.display()))
}

/// Where collateral comes from for SGX/TDX evidence that carries none (a node's certificate, a
/// PEM certificate or a raw quote): a PCCS (`--pccs`, `MSE_PCCS_URL`), cached under
/// `<cache dir>/pccs`. Without one, such evidence fails at the collateral step and
/// [`hint_missing_collateral`] says what to do.
pub struct CollateralSource {
    pccs: Option<PccsClient>,
}

impl CollateralSource {
    /// `url`: the PCCS, if any (blank counts as none).
    pub fn new(url: Option<&str>) -> anyhow::Result<Self> {
        let pccs = match url.map(str::trim).filter(|u| !u.is_empty()) {
            None => None,
            Some(u) => {
                let dir = crate::runtime::cache_dir()?.join("pccs");
                Some(
                    PccsClient::new(u)
                        .context("--pccs / MSE_PCCS_URL")?
                        .with_cache(dir),
                )
            }
        };
        Ok(CollateralSource { pccs })
    }

    /// Collateral for `evidence` at `now`. None without a PCCS, and for SEV-SNP or simulation
    /// evidence. A stale cached copy standing in for a PCCS that failed is used (verification
    /// then reports it as stale), with a warning saying why.
    pub async fn collateral_for(
        &self,
        evidence: &RawEvidence,
        now: SystemTime,
        ui: Ui,
    ) -> anyhow::Result<Collateral> {
        let Some(pccs) = &self.pccs else {
            return Ok(Collateral::none());
        };
        let (client, ev) = (pccs.clone(), evidence.clone());
        let fetched = tokio::task::spawn_blocking(move || client.collateral_for(&ev, now))
            .await
            .context("the PCCS request task failed")?;
        match fetched {
            Ok(f) => {
                if let Origin::StaleCache { pccs_error } = &f.origin {
                    ui.warn(&format!(
                        "the PCCS gave no current collateral ({pccs_error}); using the cached copy, which is out of date"
                    ));
                }
                Ok(f.collateral)
            }
            // Evidence that does not parse: the verifier reports it (a FAILED report).
            Err(e) if e.step().is_some() => Ok(Collateral::none()),
            Err(e) => Err(anyhow::Error::new(e).context(format!(
                "fetching collateral from the PCCS {} (check the URL given by --pccs or MSE_PCCS_URL; offline, verify an evidence file that carries its collateral)",
                pccs.base()
            ))),
        }
    }
}

/// SGX/TDX evidence verified without collateral fails at the collateral step: say how to get
/// some, in the terms of the command line.
pub fn hint_missing_collateral(report: &mut VerifyReport, collateral: &Collateral) {
    if collateral.has_dcap() || !matches!(report.tee, TeeKind::Sgx | TeeKind::Tdx) {
        return;
    }
    let tee = report.tee.as_str().to_uppercase();
    if let Some(f) = &mut report.failure
        && f.step == Some(Step::Collateral)
    {
        f.reason = format!(
            "collateral: none for this {tee} quote (CRLs, TCB info, QE identity): pass --pccs URL (or set MSE_PCCS_URL) to fetch it from a PCCS, or verify an evidence file that carries it (--evidence evidence.json, or --evidence FILE --collateral FILE)"
        );
    }
}

/// Verify the evidence inside a node's RA-TLS certificate against `expected`, at `now`.
pub fn verify_certificate(
    cert: &RaTlsCertificate,
    collateral: &Collateral,
    policy: &Policy,
    expected: &Expected,
    now: SystemTime,
) -> (VerifyReport, Option<Verified<Appraisal>>) {
    let outcome =
        mse_attest::verify::verify_certificate_at(cert, collateral, policy, expected, now);
    let report = VerifyReport::new(cert.evidence(), expected, Freshness::Certificate, &outcome);
    (report, outcome.ok())
}

/// Verify fresh evidence (`GET /.well-known/mse/evidence?nonce=…` over the pinned connection):
/// same checks, and report data must be `fresh(TLS key, enclave key, nonce)`. An answer that
/// does not echo the nonce sent (a replayed reply) is a failed report, like evidence over
/// another nonce; only a node that cannot be asked is an error.
pub async fn verify_fresh(
    client: &mse_client::NodeClient,
    cert: &RaTlsCertificate,
    enclave_key: &[u8; 32],
    collateral: &Collateral,
    policy: &Policy,
    measurement: Option<Vec<u8>>,
) -> anyhow::Result<(VerifyReport, Option<Verified<Appraisal>>)> {
    let mut nonce = [0u8; 32];
    getrandom(&mut nonce)?;
    let fresh = match client.fresh_evidence(&nonce).await {
        Ok(f) => f,
        // THREAT: T5 — the node answered, but not over this nonce.
        Err(e @ mse_client::Error::MalformedEvidence { .. }) => {
            let report = failed_report(
                cert.evidence().kind,
                Step::ReportDataBinding,
                format!(
                    "{}: the node's answer to the nonce is not fresh evidence for it ({e}): a replayed or forged reply",
                    Step::ReportDataBinding
                ),
                Freshness::Fresh {
                    nonce: hex::encode(nonce),
                },
            );
            return Ok((report, None));
        }
        Err(e) => return Err(anyhow::Error::new(e).context("asking the node for fresh evidence")),
    };
    let kind = fresh.tee.parse().unwrap_or(cert.evidence().kind);
    let evidence = RawEvidence {
        kind,
        bytes: fresh.quote,
    };
    let expected = Expected {
        measurement,
        report_data: Some(mse_attest::report_data::fresh(
            cert.tls_public_key(),
            enclave_key,
            &nonce,
        )),
        enclave_key: Some(*enclave_key),
        signer: None,
    };
    let outcome =
        mse_attest::verify::verify_at(&evidence, collateral, policy, &expected, SystemTime::now());
    let report = VerifyReport::new(
        &evidence,
        &expected,
        Freshness::Fresh {
            nonce: hex::encode(nonce),
        },
        &outcome,
    );
    Ok((report, outcome.ok()))
}

/// A FAILED report for a failure outside `mse_attest::verify` (unparseable file, freshness
/// that cannot be had): same shape, reason first.
pub fn failed_report(
    kind: TeeKind,
    step: Step,
    reason: String,
    freshness: Freshness,
) -> VerifyReport {
    VerifyReport {
        ok: false,
        failure: Some(Failure {
            step: Some(step),
            reason,
        }),
        tee: kind,
        simulated: false,
        measurement_expected: None,
        measurement_found: None,
        signer: None,
        tcb_status: None,
        freshness,
        warnings: Vec::new(),
        appraisal: None,
    }
}

/// Random bytes from the OS (a nonce; not a key).
fn getrandom(buf: &mut [u8]) -> anyhow::Result<()> {
    use rand_core::RngCore as _;
    rand_core::OsRng
        .try_fill_bytes(buf)
        .context("reading the OS random number generator")
}
