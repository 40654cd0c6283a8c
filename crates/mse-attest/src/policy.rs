//! What a verifier accepts. Verification establishes facts; the policy decides.
//!
//! [`Policy::default_strict`] is what `mse verify` uses unless told otherwise. The
//! [`Policy::mse_compatible`] preset accepts what the original MSE client accepted
//! (docs/attestation.md §Policies has the side-by-side table): any TCB status but Revoked,
//! stale collateral (as a warning), and certificates whose report data has the old all-zero
//! enclave-key half.

use serde::Serialize;

use crate::TeeKind;
use crate::sim::SimRoot;

/// Intel TCB status, from the TCB info level that matches the platform (converged with the
/// QE identity level).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub enum TcbStatus {
    /// Fully patched.
    UpToDate,
    /// Patched, but software mitigations are needed (e.g. LVI).
    SwHardeningNeeded,
    /// Patched, but a platform configuration change is needed.
    ConfigurationNeeded,
    /// Both of the above.
    ConfigurationAndSwHardeningNeeded,
    /// A security update is missing.
    OutOfDate,
    /// A security update is missing and configuration is needed.
    OutOfDateConfigurationNeeded,
    /// TDX: relaunch the TD to pick up a module update.
    TdRelaunchAdvised,
    /// TDX: relaunch advised, and configuration needed.
    TdRelaunchAdvisedConfigurationNeeded,
    /// The platform's keys are compromised. Never accepted.
    Revoked,
}

impl TcbStatus {
    /// Intel's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TcbStatus::UpToDate => "UpToDate",
            TcbStatus::SwHardeningNeeded => "SWHardeningNeeded",
            TcbStatus::ConfigurationNeeded => "ConfigurationNeeded",
            TcbStatus::ConfigurationAndSwHardeningNeeded => "ConfigurationAndSWHardeningNeeded",
            TcbStatus::OutOfDate => "OutOfDate",
            TcbStatus::OutOfDateConfigurationNeeded => "OutOfDateConfigurationNeeded",
            TcbStatus::TdRelaunchAdvised => "TDRelaunchAdvised",
            TcbStatus::TdRelaunchAdvisedConfigurationNeeded => {
                "TDRelaunchAdvisedConfigurationNeeded"
            }
            TcbStatus::Revoked => "Revoked",
        }
    }

    /// All statuses but Revoked.
    pub const ALL_BUT_REVOKED: &'static [TcbStatus] = &[
        TcbStatus::UpToDate,
        TcbStatus::SwHardeningNeeded,
        TcbStatus::ConfigurationNeeded,
        TcbStatus::ConfigurationAndSwHardeningNeeded,
        TcbStatus::OutOfDate,
        TcbStatus::OutOfDateConfigurationNeeded,
        TcbStatus::TdRelaunchAdvised,
        TcbStatus::TdRelaunchAdvisedConfigurationNeeded,
    ];
}

impl std::fmt::Display for TcbStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Minimum SEV-SNP security patch levels (compared with the report's REPORTED_TCB).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MinSnpTcb {
    /// Boot loader.
    pub bootloader: u8,
    /// PSP OS.
    pub tee: u8,
    /// SNP firmware.
    pub snp: u8,
    /// Microcode.
    pub microcode: u8,
}

/// The verifier's rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub(crate) name: &'static str,
    pub(crate) tees: Vec<TeeKind>,
    pub(crate) tcb_statuses: Vec<TcbStatus>,
    pub(crate) allow_debug: bool,
    pub(crate) stale_collateral_is_warning: bool,
    pub(crate) legacy_zero_enclave_key: bool,
    pub(crate) certificate_expiry_is_warning: bool,
    pub(crate) skip_collateral: bool,
    pub(crate) measurements: Vec<Vec<u8>>,
    pub(crate) signers: Vec<Vec<u8>>,
    pub(crate) isv_prod_id: Option<u16>,
    pub(crate) min_isv_svn: Option<u16>,
    pub(crate) min_snp_tcb: Option<MinSnpTcb>,
    pub(crate) min_snp_guest_svn: Option<u32>,
    pub(crate) sim_root: Option<SimRoot>,
}

impl Default for Policy {
    fn default() -> Self {
        Self::default_strict()
    }
}

impl Policy {
    /// Real TEEs only, TCB status UpToDate, no debug, collateral current at verification time,
    /// report data binding both the TLS key and the enclave key, certificate within validity.
    pub fn default_strict() -> Self {
        Policy {
            name: "strict",
            tees: vec![TeeKind::Sgx, TeeKind::Tdx, TeeKind::SevSnp],
            tcb_statuses: vec![TcbStatus::UpToDate],
            allow_debug: false,
            stale_collateral_is_warning: false,
            legacy_zero_enclave_key: false,
            certificate_expiry_is_warning: false,
            skip_collateral: false,
            measurements: Vec::new(),
            signers: Vec::new(),
            isv_prod_id: None,
            min_isv_svn: None,
            min_snp_tcb: None,
            min_snp_guest_svn: None,
            sim_root: None,
        }
    }

    /// What the original MSE client accepted: any TCB status but Revoked (a warning names it),
    /// stale collateral and expired certificates as warnings, the legacy all-zero enclave-key
    /// half of report data. Debug enclaves are still refused, as the original did.
    pub fn mse_compatible() -> Self {
        Policy {
            name: "mse-compatible",
            tcb_statuses: TcbStatus::ALL_BUT_REVOKED.to_vec(),
            stale_collateral_is_warning: true,
            legacy_zero_enclave_key: true,
            certificate_expiry_is_warning: true,
            ..Self::default_strict()
        }
    }

    /// Also accept mse simulation evidence signed under `root`. Every appraisal of such
    /// evidence says SIMULATED. For local development only: no TEE protects a simulated node.
    pub fn allow_simulation(mut self, root: SimRoot) -> Self {
        self.sim_root = Some(root);
        if !self.tees.contains(&TeeKind::Sim) {
            self.tees.push(TeeKind::Sim);
        }
        self
    }

    /// Require the measurement to be one of these (MRENCLAVE; MRTD or MRTD‖RTMR0..3;
    /// SNP MEASUREMENT). May be called several times.
    pub fn with_measurement(mut self, m: impl Into<Vec<u8>>) -> Self {
        self.measurements.push(m.into());
        self
    }

    /// Require the signer (SGX MRSIGNER) to be one of these.
    pub fn with_signer(mut self, s: impl Into<Vec<u8>>) -> Self {
        self.signers.push(s.into());
        self
    }

    /// Accept one more TCB status (Revoked is never accepted).
    pub fn accept_tcb_status(mut self, s: TcbStatus) -> Self {
        if s != TcbStatus::Revoked && !self.tcb_statuses.contains(&s) {
            self.tcb_statuses.push(s);
        }
        self
    }

    /// Accept only these TEE kinds (Sim still needs [`Policy::allow_simulation`]).
    pub fn only_tees(mut self, tees: &[TeeKind]) -> Self {
        self.tees = tees
            .iter()
            .copied()
            .filter(|t| *t != TeeKind::Sim || self.sim_root.is_some())
            .collect();
        self
    }

    /// Require SGX ISVPRODID.
    pub fn with_isv_prod_id(mut self, id: u16) -> Self {
        self.isv_prod_id = Some(id);
        self
    }

    /// Minimum SGX ISVSVN.
    pub fn with_min_isv_svn(mut self, svn: u16) -> Self {
        self.min_isv_svn = Some(svn);
        self
    }

    /// Minimum SEV-SNP reported TCB.
    pub fn with_min_snp_tcb(mut self, tcb: MinSnpTcb) -> Self {
        self.min_snp_tcb = Some(tcb);
        self
    }

    /// Minimum SEV-SNP guest SVN.
    pub fn with_min_snp_guest_svn(mut self, svn: u32) -> Self {
        self.min_snp_guest_svn = Some(svn);
        self
    }

    /// Report stale collateral as a warning instead of failing (verification then runs at a
    /// time inside the collateral window, and the warning names what expired and when).
    pub fn warn_on_stale_collateral(mut self) -> Self {
        self.stale_collateral_is_warning = true;
        self
    }

    /// Accept debug enclaves / debuggable guests. Their memory is readable by the host:
    /// never for production secrets.
    pub fn insecure_allow_debug(mut self) -> Self {
        self.allow_debug = true;
        self
    }

    /// Skip DCAP collateral (CRLs, TCB info, QE identity): signatures and the chain to the
    /// pinned root are still checked, but revocation and TCB status are unknown. Every
    /// appraisal then carries a warning saying so. For offline inspection only.
    pub fn insecure_skip_collateral(mut self) -> Self {
        self.skip_collateral = true;
        self
    }

    /// The preset's name ("strict", "mse-compatible").
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The simulation root accepted, if any.
    pub fn sim_root(&self) -> Option<&SimRoot> {
        self.sim_root.as_ref()
    }

    /// True if this TCB status is accepted.
    pub fn accepts_tcb_status(&self, s: TcbStatus) -> bool {
        s != TcbStatus::Revoked && self.tcb_statuses.contains(&s)
    }

    /// True if debug enclaves are accepted.
    pub fn allows_debug(&self) -> bool {
        self.allow_debug
    }
}
