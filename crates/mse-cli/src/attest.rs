//! The client's side of attestation: which policy, which simulation root, and the checks run
//! on a node before anything is sent (certificate evidence, then fresh evidence over a nonce).

use std::path::Path;
use std::time::SystemTime;

use anyhow::Context as _;
use mse_attest::collateral::Collateral;
use mse_attest::policy::Policy;
use mse_attest::ratls::{RaTlsCertificate, RawEvidence};
use mse_attest::report::{Freshness, VerifyReport};
use mse_attest::sim::SimRoot;
use mse_attest::verify::{Appraisal, Expected, Verified};

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
/// same checks, and report data must be `fresh(TLS key, enclave key, nonce)`.
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
    let fresh = client
        .fresh_evidence(&nonce)
        .await
        .context("asking the node for fresh evidence")?;
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

/// Random bytes from the OS (a nonce; not a key).
fn getrandom(buf: &mut [u8]) -> anyhow::Result<()> {
    use rand_core::RngCore as _;
    rand_core::OsRng
        .try_fill_bytes(buf)
        .context("reading the OS random number generator")
}
