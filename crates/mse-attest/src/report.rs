//! The result of `mse verify`, for people (failure reason first, SIMULATED in plain words) and
//! for scripts (JSON). Built from the evidence, what was expected, and the outcome.

use serde::Serialize;

use crate::error::{Error, Result, Step};
use crate::ratls::RawEvidence;
use crate::verify::{Appraisal, Expected, Verified};
use crate::{TeeKind, sgx, snp, tdx};

/// How fresh the evidence is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Freshness {
    /// Evidence inside the certificate: made when the certificate was, replayable with it.
    Certificate,
    /// Evidence made on request over a client nonce.
    Fresh {
        /// The nonce, hex.
        nonce: String,
    },
    /// An evidence file.
    File,
}

impl Freshness {
    fn describe(&self) -> String {
        match self {
            Freshness::Certificate => "static: evidence inside the certificate (no nonce)".into(),
            Freshness::Fresh { nonce } => format!("fresh: evidence made for nonce {nonce}"),
            Freshness::File => "evidence file (no nonce)".into(),
        }
    }
}

/// The failure, first thing a user reads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The step that failed, if a verification step.
    pub step: Option<Step>,
    /// The full reason.
    pub reason: String,
}

/// A verification report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// True when verification succeeded.
    pub ok: bool,
    /// Why it failed.
    pub failure: Option<Failure>,
    /// The TEE (from the appraisal, else as carried).
    pub tee: TeeKind,
    /// Simulation evidence: no TEE.
    pub simulated: bool,
    /// Expected measurement (hex).
    pub measurement_expected: Option<String>,
    /// Measurement found (hex); unverified when `ok` is false.
    pub measurement_found: Option<String>,
    /// Signer (hex).
    pub signer: Option<String>,
    /// TCB status.
    pub tcb_status: Option<String>,
    /// Freshness of the evidence.
    pub freshness: Freshness,
    /// Warnings accepted by the policy.
    pub warnings: Vec<String>,
    /// Everything that was verified.
    pub appraisal: Option<Appraisal>,
}

impl VerifyReport {
    /// Build the report of one verification.
    pub fn new(
        evidence: &RawEvidence,
        expected: &Expected,
        freshness: Freshness,
        outcome: &Result<Verified<Appraisal>>,
    ) -> Self {
        let measurement_expected = expected.measurement.as_ref().map(hex::encode);
        match outcome {
            Ok(v) => VerifyReport {
                ok: true,
                failure: None,
                tee: v.tee,
                simulated: v.simulated,
                measurement_expected,
                measurement_found: Some(hex::encode(&v.measurement)),
                signer: v.signer.map(hex::encode),
                tcb_status: Some(v.tcb_status.clone()),
                freshness,
                warnings: v.warnings.clone(),
                appraisal: Some((**v).clone()),
            },
            Err(e) => {
                let (found, signer, simulated) = unverified_facts(evidence);
                VerifyReport {
                    ok: false,
                    failure: Some(Failure {
                        step: e.step(),
                        reason: e.to_string(),
                    }),
                    tee: evidence.kind,
                    simulated: simulated
                        || matches!(
                            e,
                            Error::Verification {
                                step: Step::PolicySimulation,
                                ..
                            }
                        ),
                    measurement_expected,
                    measurement_found: found,
                    signer,
                    tcb_status: None,
                    freshness,
                    warnings: Vec::new(),
                    appraisal: None,
                }
            }
        }
    }

    /// Short text for a terminal: the verdict and reason first.
    pub fn to_human(&self) -> String {
        let mut out = String::new();
        if self.ok && self.simulated {
            out.push_str("VERIFIED, BUT SIMULATED: this node runs in simulation mode. No TEE protects its code, keys or data.\n");
        } else if self.ok {
            out.push_str("VERIFIED\n");
        } else if let Some(f) = &self.failure {
            out.push_str(&format!("FAILED: {}\n", f.reason));
            if self.simulated {
                out.push_str("(SIMULATED evidence: no TEE protects this node.)\n");
            }
        }
        let line = |out: &mut String, k: &str, v: &str| out.push_str(&format!("  {k:<13}{v}\n"));
        line(
            &mut out,
            "TEE:",
            &if self.simulated {
                format!("{} (SIMULATED, not a TEE)", self.tee)
            } else {
                self.tee.to_string()
            },
        );
        let found = self.measurement_found.as_deref().unwrap_or("-");
        let m = match (&self.measurement_expected, self.ok) {
            (Some(e), _) if Some(e.as_str()) == self.measurement_found.as_deref() => {
                format!("{found} (matches expected)")
            }
            (Some(e), _) => format!(
                "expected {e}\n  {:<13}found    {found}{}",
                "",
                if self.ok { "" } else { " (not verified)" }
            ),
            (None, true) => format!("{found} (no expected value given)"),
            (None, false) => format!("{found} (not verified)"),
        };
        line(&mut out, "Measurement:", &m);
        line(&mut out, "Signer:", self.signer.as_deref().unwrap_or("-"));
        line(
            &mut out,
            "TCB status:",
            self.tcb_status.as_deref().unwrap_or("-"),
        );
        line(&mut out, "Freshness:", &self.freshness.describe());
        if !self.warnings.is_empty() {
            out.push_str("  Warnings:\n");
            for w in &self.warnings {
                out.push_str(&format!("    - {w}\n"));
            }
        }
        out
    }

    /// JSON for scripts.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| {
            format!(
                "{{\"ok\":false,\"failure\":{{\"reason\":{:?}}}}}",
                e.to_string()
            )
        })
    }
}

/// What the evidence claims, without verification, for the report of a failure.
fn unverified_facts(ev: &RawEvidence) -> (Option<String>, Option<String>, bool) {
    match ev.kind {
        TeeKind::Sgx | TeeKind::Sim => match sgx::Quote::parse(&ev.bytes) {
            Ok(q) => {
                let sim = q.header().user_data == crate::sim::QUOTE_USER_DATA;
                (
                    Some(hex::encode(q.mr_enclave())),
                    Some(hex::encode(q.mr_signer())),
                    sim,
                )
            }
            Err(_) => (None, None, false),
        },
        TeeKind::Tdx => (
            tdx::Quote::parse(&ev.bytes)
                .ok()
                .map(|q| hex::encode(q.measurement())),
            None,
            false,
        ),
        TeeKind::SevSnp => (
            snp::Evidence::parse(&ev.bytes)
                .ok()
                .map(|e| hex::encode(e.report.measurement)),
            None,
            false,
        ),
    }
}
