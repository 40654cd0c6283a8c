//! Simulation backend: quotes in the SGX DCAP v3 layout, signed under the installation's
//! simulation root (mse_attest::sim). No TEE: verifiers accept it only with allow_simulation.
//!
//! Files in the simulation directory:
//! * `root.pem` (mode 0600): the root's PKCS#8 private key, then its certificate;
//! * `root-cert.pem` (0644): the certificate alone, what a local client trusts
//!   (`mse verify --allow-simulation` reads it).
//!
//! Creation is race-free: the new root is written to a private temporary file and hard-linked
//! to `root.pem`, which fails if another process got there first (the loser loads the winner's).

use std::fs;
use std::io::Write as _;
use std::path::Path;
use std::time::SystemTime;

use mse_attest::sim::{QuoteSigner, SimQuoteConfig, SimRootKey};
use mse_attest::{TeeKind, oids};

use crate::{Error, Evidence, Result, SimConfig, TeeBackend};

/// Private key and certificate of the root.
pub const ROOT_FILE: &str = "root.pem";
/// Certificate only.
pub const ROOT_CERT_FILE: &str = "root-cert.pem";

/// The simulation backend.
#[derive(Debug)]
pub struct Sim {
    signer: QuoteSigner,
}

impl Sim {
    /// Load (or create) the root in `config.root_dir` and start a quoting chain under it.
    pub fn open(config: &SimConfig) -> Result<Self> {
        let root = load_or_create_sim_root_key(&config.root_dir)?;
        let q = SimQuoteConfig {
            mr_enclave: config.measurement,
            debug: config.debug,
            isv_prod_id: 0,
            isv_svn: 0,
        };
        let signer = QuoteSigner::new(&root, &q, SystemTime::now())?;
        Ok(Sim { signer })
    }

    /// The root this backend signs under.
    pub fn root(&self) -> &mse_attest::sim::SimRoot {
        self.signer.root()
    }
}

impl TeeBackend for Sim {
    fn kind(&self) -> TeeKind {
        TeeKind::Sim
    }

    fn evidence(&self, report_data: &[u8; 64]) -> Result<Evidence> {
        Ok(Evidence {
            kind: TeeKind::Sim,
            oid: oids::SGX_QUOTE,
            bytes: self.signer.quote(report_data)?,
        })
    }
}

fn err(dir: &Path, reason: impl Into<String>) -> Error {
    Error::SimRoot {
        dir: dir.to_path_buf(),
        reason: reason.into(),
    }
}

/// Load the root key from `dir`, creating directory and root on first use.
pub fn load_or_create_sim_root_key(dir: &Path) -> Result<SimRootKey> {
    let path = dir.join(ROOT_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => {
            check_private(dir, &path)?;
            let key = parse_root_file(dir, &text)?;
            publish_cert(dir, &key)?;
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(dir),
        Err(e) => Err(err(dir, format!("cannot read {ROOT_FILE}: {e}"))),
    }
}

fn parse_root_file(dir: &Path, text: &str) -> Result<SimRootKey> {
    let key_end = text
        .find("-----END PRIVATE KEY-----")
        .map(|i| i + "-----END PRIVATE KEY-----".len());
    let Some((key_pem, cert_pem)) = key_end.and_then(|i| Some((text.get(..i)?, text.get(i..)?)))
    else {
        return Err(err(
            dir,
            format!(
                "{ROOT_FILE} does not hold a private key followed by a certificate; delete it to make a new root"
            ),
        ));
    };
    SimRootKey::from_pem(key_pem, cert_pem).map_err(|e| {
        err(
            dir,
            format!("{ROOT_FILE}: {e}; delete it to make a new root"),
        )
    })
}

fn create(dir: &Path) -> Result<SimRootKey> {
    make_private_dir(dir)?;
    let key = SimRootKey::generate(SystemTime::now())?;
    let mut text = key.to_pkcs8_pem()?;
    text.push_str(&key.root().to_pem());

    let tmp = unique_tmp(dir, ROOT_FILE);
    let _ = fs::remove_file(&tmp);
    let mut f = private_file(&tmp)
        .map_err(|e| err(dir, format!("cannot create {}: {e}", tmp.display())))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| err(dir, format!("cannot write the root: {e}")))?;
    drop(f);
    let linked = fs::hard_link(&tmp, dir.join(ROOT_FILE));
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            tracing::warn!(
                "created a new mse SIMULATION root in {} (fingerprint {}): evidence signed under it is not from a TEE",
                dir.display(),
                hex_fp(key.root())
            );
            publish_cert(dir, &key)?;
            Ok(key)
        }
        // Another process created the root meanwhile: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_or_create_sim_root_key(dir),
        Err(e) => Err(err(dir, format!("cannot install {ROOT_FILE}: {e}"))),
    }
}

/// A temporary name no other process or thread uses: creators race on first use.
fn unique_tmp(dir: &Path, name: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()))
}

fn hex_fp(root: &mse_attest::sim::SimRoot) -> String {
    root.fingerprint()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn publish_cert(dir: &Path, key: &SimRootKey) -> Result<()> {
    let path = dir.join(ROOT_CERT_FILE);
    let pem = key.root().to_pem();
    if fs::read_to_string(&path).ok().as_deref() == Some(pem.as_str()) {
        return Ok(());
    }
    let tmp = unique_tmp(dir, ROOT_CERT_FILE);
    fs::write(&tmp, pem.as_bytes())
        .and_then(|()| fs::rename(&tmp, &path))
        .map_err(|e| err(dir, format!("cannot write {ROOT_CERT_FILE}: {e}")))
}

#[cfg(unix)]
fn make_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| err(dir, format!("cannot create the directory: {e}")))
}

#[cfg(not(unix))]
fn make_private_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| err(dir, format!("cannot create the directory: {e}")))
}

#[cfg(unix)]
fn private_file(path: &Path) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> std::io::Result<fs::File> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

/// Refuse a key file others can read, as ssh does.
#[cfg(unix)]
fn check_private(dir: &Path, path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = fs::metadata(path)
        .map_err(|e| err(dir, format!("{ROOT_FILE}: {e}")))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(err(
            dir,
            format!(
                "{ROOT_FILE} has mode {:o}: other users can read the root key; run chmod 600 on it",
                mode & 0o777
            ),
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_dir: &Path, _path: &Path) -> Result<()> {
    Ok(())
}
