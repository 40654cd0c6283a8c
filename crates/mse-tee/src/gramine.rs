//! Gramine SGX backend, through the attestation pseudo-filesystem Gramine documents
//! (`/dev/attestation`):
//!
//! * `attestation_type` reads `dcap` (anything else: no DCAP quotes; `none` under
//!   gramine-direct or without `sgx.remote_attestation = "dcap"` in the manifest);
//! * write exactly 64 bytes to `user_report_data`, then read `quote`.
//!
//! The two files are shared by the whole enclave (the app could write them too), so calls are
//! serialised by a mutex and the returned quote must carry our report data; a mismatch is
//! retried with a short backoff for up to 5 s, then reported.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mse_attest::{TeeKind, oids, sgx};

use crate::{Error, Evidence, Result, TeeBackend};

/// Where Gramine mounts the interface.
pub const DEFAULT_ROOT: &str = "/dev/attestation";
const NAME: &str = "gramine";
const DEADLINE: Duration = Duration::from_secs(5);

/// The Gramine backend.
#[derive(Debug)]
pub struct Gramine {
    root: PathBuf,
    lock: Mutex<()>,
}

impl Gramine {
    /// Check the interface at `root` and that it produces DCAP quotes.
    pub fn open(root: &Path) -> Result<Self> {
        let p = root.join("attestation_type");
        let t = fs::read_to_string(&p).map_err(|source| Error::Io {
            backend: NAME,
            path: p.clone(),
            source,
        })?;
        let t = t.trim_matches(|c: char| c.is_whitespace() || c == '\0');
        if t != "dcap" {
            return Err(Error::Unavailable {
                backend: NAME,
                reason: format!(
                    "attestation type is {t:?}, not \"dcap\": run under gramine-sgx with sgx.remote_attestation = \"dcap\" in the manifest"
                ),
            });
        }
        Ok(Gramine {
            root: root.to_path_buf(),
            lock: Mutex::new(()),
        })
    }
}

impl TeeBackend for Gramine {
    fn kind(&self) -> TeeKind {
        TeeKind::Sgx
    }

    fn evidence(&self, report_data: &[u8; 64]) -> Result<Evidence> {
        let _guard = self
            .lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let urd = self.root.join("user_report_data");
        let qp = self.root.join("quote");
        let start = Instant::now();
        let mut wait = Duration::from_millis(1);
        loop {
            fs::write(&urd, report_data).map_err(|source| Error::Io {
                backend: NAME,
                path: urd.clone(),
                source,
            })?;
            let quote = fs::read(&qp).map_err(|source| Error::Io {
                backend: NAME,
                path: qp.clone(),
                source,
            })?;
            // An empty or foreign quote means another writer raced us (or a slow interface).
            if let Ok(q) = sgx::Quote::parse(&quote)
                && q.report_data() == report_data
            {
                return Ok(Evidence {
                    kind: TeeKind::Sgx,
                    oid: oids::SGX_QUOTE,
                    bytes: q.as_bytes().to_vec(),
                });
            }
            if start.elapsed() > DEADLINE {
                return Err(Error::BadEvidence {
                    backend: NAME,
                    reason: match sgx::Quote::parse(&quote) {
                        Ok(_) => format!(
                            "for {}s the quote carried other report data: another writer uses {}",
                            DEADLINE.as_secs(),
                            self.root.display()
                        ),
                        Err(e) => e.to_string(),
                    },
                });
            }
            std::thread::sleep(wait);
            wait = (wait * 2).min(Duration::from_millis(50));
        }
    }
}
