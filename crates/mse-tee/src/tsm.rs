//! Linux configfs-tsm backend (TDX and SEV-SNP guests), as the kernel documents it
//! (Documentation/ABI/testing/configfs-tsm):
//!
//! * `mkdir /sys/kernel/config/tsm/report/<name>` creates a report entry whose attributes are
//!   `inblob` (write ≤ 64 bytes of report data), `outblob` (read the quote or report),
//!   `auxblob` (SNP: certificate table, GHCB layout), `provider` (`tdx_guest`, `sev_guest`)
//!   and `generation` (incremented by every write; a reader compares it to detect that another
//!   writer raced it).
//!
//! mse uses one entry per process (`mse-<pid>`), serialises its own calls, and accepts an
//! outblob only if the generation did not move between its write and its read and the
//! evidence carries its report data. SNP evidence is `report ‖ certificate table` in the
//! length-prefixed layout (mse_attest::snp), converted from auxblob when the host gives one.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mse_attest::{TeeKind, oids, snp, tdx};

use crate::{Error, Evidence, Result, TeeBackend};

/// Where configfs-tsm lives.
pub const DEFAULT_ROOT: &str = "/sys/kernel/config/tsm/report";
const NAME: &str = "configfs-tsm";
/// How long to wait for a consistent outblob (the kernel answers synchronously; this bounds
/// retries after races).
const DEADLINE: Duration = Duration::from_secs(5);

/// The report provider behind configfs-tsm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TsmProvider {
    /// `tdx_guest`: outblob is a TDX quote.
    Tdx,
    /// `sev_guest`: outblob is an SNP report, auxblob its certificates.
    SevSnp,
}

/// The configfs-tsm backend.
#[derive(Debug)]
pub struct Tsm {
    entry: PathBuf,
    provider: TsmProvider,
    lock: Mutex<()>,
}

fn io(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        backend: NAME,
        path: path.to_path_buf(),
        source,
    }
}

impl Tsm {
    /// Create (or reuse) this process's report entry under `root` and read its provider.
    pub fn open(root: &Path) -> Result<Self> {
        let entry = root.join(format!("mse-{}", std::process::id()));
        match fs::create_dir(&entry) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(&entry, e)),
        }
        let pp = entry.join("provider");
        let provider = fs::read_to_string(&pp).map_err(|e| io(&pp, e))?;
        let provider = match provider.trim() {
            "tdx_guest" => TsmProvider::Tdx,
            "sev_guest" => TsmProvider::SevSnp,
            other => {
                return Err(Error::Unavailable {
                    backend: NAME,
                    reason: format!(
                        "provider {other:?} is not supported (expected tdx_guest or sev_guest)"
                    ),
                });
            }
        };
        Ok(Tsm {
            entry,
            provider,
            lock: Mutex::new(()),
        })
    }

    /// The provider.
    pub fn provider(&self) -> TsmProvider {
        self.provider
    }

    fn generation(&self) -> Result<u64> {
        let p = self.entry.join("generation");
        let s = fs::read_to_string(&p).map_err(|e| io(&p, e))?;
        s.trim().parse().map_err(|_| Error::BadEvidence {
            backend: NAME,
            reason: format!("generation {:?} is not a number", s.trim()),
        })
    }

    /// Check that `out` is evidence over `report_data`; Ok(None) if it is for other data.
    fn accept(&self, out: &[u8], report_data: &[u8; 64]) -> Result<Option<Evidence>> {
        let bad = |e: mse_attest::Error| Error::BadEvidence {
            backend: NAME,
            reason: e.to_string(),
        };
        match self.provider {
            TsmProvider::Tdx => {
                let q = tdx::Quote::parse(out).map_err(bad)?;
                Ok((q.report_data() == report_data).then(|| Evidence {
                    kind: TeeKind::Tdx,
                    oid: oids::TDX_QUOTE,
                    bytes: q.as_bytes().to_vec(),
                }))
            }
            TsmProvider::SevSnp => {
                let r = snp::Report::parse(out).map_err(bad)?;
                if &r.report_data != report_data {
                    return Ok(None);
                }
                let mut bytes = r.as_bytes().to_vec();
                let ap = self.entry.join("auxblob");
                let aux = match fs::read(&ap) {
                    Ok(a) => a,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                    Err(e) => return Err(io(&ap, e)),
                };
                if !aux.is_empty() {
                    let (certs, _) = snp::parse_cert_table(&aux).map_err(bad)?;
                    bytes.extend_from_slice(&snp::encode_cert_table(&certs).map_err(bad)?);
                }
                Ok(Some(Evidence {
                    kind: TeeKind::SevSnp,
                    oid: oids::SNP_REPORT,
                    bytes,
                }))
            }
        }
    }
}

impl TeeBackend for Tsm {
    fn kind(&self) -> TeeKind {
        match self.provider {
            TsmProvider::Tdx => TeeKind::Tdx,
            TsmProvider::SevSnp => TeeKind::SevSnp,
        }
    }

    fn evidence(&self, report_data: &[u8; 64]) -> Result<Evidence> {
        let _guard = self
            .lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let inblob = self.entry.join("inblob");
        let outblob = self.entry.join("outblob");
        let start = Instant::now();
        let mut wait = Duration::from_millis(1);
        loop {
            fs::write(&inblob, report_data).map_err(|e| io(&inblob, e))?;
            let g_write = self.generation()?;
            let out = fs::read(&outblob).map_err(|e| io(&outblob, e))?;
            let g_read = self.generation()?;
            if g_write == g_read
                && !out.is_empty()
                && let Some(ev) = self.accept(&out, report_data)?
            {
                return Ok(ev);
            }
            if start.elapsed() > DEADLINE {
                return Err(Error::BadEvidence {
                    backend: NAME,
                    reason: format!(
                        "no consistent outblob after {}s (generation moved or the evidence carries other report data: another writer is using {})",
                        DEADLINE.as_secs(),
                        self.entry.display()
                    ),
                });
            }
            std::thread::sleep(wait);
            wait = (wait * 2).min(Duration::from_millis(50));
        }
    }
}

impl Drop for Tsm {
    fn drop(&mut self) {
        // configfs removes the entry with rmdir; on a plain directory (tests) this fails
        // harmlessly because the attribute files are still there.
        let _ = fs::remove_dir(&self.entry);
    }
}
