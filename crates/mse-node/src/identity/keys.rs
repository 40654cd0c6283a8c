//! The node's two key pairs, persisted in KEY_PATH like the original's (§2.1), so a restart of
//! the same enclave keeps its identity: clients that sealed secrets to the enclave key, or pinned
//! the certificate, keep working.
//!
//! * `enclave.key` / `enclave.pub`: raw 32-byte X25519 secret and public key. On reload the
//!   public key must be X25519(secret), or the node refuses to start.
//! * `key.ratls.pem`: the certificate's P-256 key, PKCS#8 PEM.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, Result, bail};
use mse_crypto::keys::EnclaveSecretKey;
use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256};
use zeroize::Zeroizing;

use crate::paths::Paths;

/// Loads the enclave key from KEY_PATH, or creates and persists a fresh one.
pub fn load_or_create_enclave_key(paths: &Paths) -> Result<EnclaveSecretKey> {
    let (sk_path, pk_path) = (paths.enclave_key(), paths.enclave_pub());
    if !sk_path.exists() {
        let sk = EnclaveSecretKey::generate();
        write_private(&sk_path, sk.to_bytes().as_slice())?;
        write_private(&pk_path, &sk.public_key().0)?;
        tracing::info!(public_key = %hex::encode(sk.public_key().0), "created the enclave key");
        return Ok(sk);
    }
    let sk_bytes = Zeroizing::new(
        fs::read(&sk_path).with_context(|| format!("cannot read {}", sk_path.display()))?,
    );
    let sk: [u8; 32] = sk_bytes.as_slice().try_into().map_err(|_| {
        anyhow::anyhow!(
            "{} is not a 32-byte X25519 key; remove KEY_PATH to start afresh",
            sk_path.display()
        )
    })?;
    let sk = EnclaveSecretKey::from_bytes(sk);
    let pk = fs::read(&pk_path).with_context(|| {
        format!(
            "{} exists but {} cannot be read; remove KEY_PATH to start afresh",
            sk_path.display(),
            pk_path.display()
        )
    })?;
    if pk.as_slice() != sk.public_key().0.as_slice() {
        bail!(
            "{} does not match {}: the stored enclave key pair is inconsistent (tampered?); refusing to start",
            pk_path.display(),
            sk_path.display()
        );
    }
    tracing::info!(public_key = %hex::encode(pk), "reusing the enclave key");
    Ok(sk)
}

/// The P-256 key of the RA-TLS certificate, and its uncompressed public point.
pub struct TlsKey {
    pub pair: KeyPair,
    pub public: [u8; 65],
}

impl TlsKey {
    fn from_pair(pair: KeyPair) -> Result<Self> {
        if pair.algorithm() != &PKCS_ECDSA_P256_SHA256 {
            bail!("the RA-TLS key must be ECDSA P-256");
        }
        let public: [u8; 65] = pair.public_key_raw().try_into().map_err(|_| {
            anyhow::anyhow!("the RA-TLS public key is not an uncompressed P-256 point")
        })?;
        Ok(TlsKey { pair, public })
    }

    /// PKCS#8 DER of the private key, for rustls.
    pub fn pkcs8_der(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.pair.serialize_der())
    }
}

/// Loads `key.ratls.pem`, or creates and persists a fresh P-256 key. `fresh` is true when created.
pub fn load_or_create_tls_key(paths: &Paths) -> Result<(TlsKey, bool)> {
    let path = paths.ratls_key();
    if path.exists() {
        let pem = Zeroizing::new(
            fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?,
        );
        let pair = KeyPair::from_pem(&pem).with_context(|| {
            format!(
                "{} is not a PKCS#8 key; remove it to get a new one",
                path.display()
            )
        })?;
        return Ok((
            TlsKey::from_pair(pair).with_context(|| path.display().to_string())?,
            false,
        ));
    }
    let pair =
        KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).context("cannot generate the RA-TLS key")?;
    let pem = Zeroizing::new(pair.serialize_pem());
    write_private(&path, pem.as_bytes())?;
    Ok((TlsKey::from_pair(pair)?, true))
}

/// Writes a file readable by the owner only, atomically (temporary name, then rename).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn paths(dir: &Path) -> Paths {
        let d = dir.to_path_buf();
        Paths {
            home: d.join("home"),
            secrets: d.join("s.json"),
            sealed_secrets: d.join("ss.json"),
            tmp: d.join("tmp"),
            module: d.join("app"),
            key: d.join("key"),
        }
    }

    #[test]
    fn enclave_key_persists_and_is_checked() {
        let t = tempfile::tempdir().unwrap();
        let p = paths(t.path());
        fs::create_dir_all(&p.key).unwrap();
        let first = load_or_create_enclave_key(&p).unwrap();
        assert_eq!(
            fs::metadata(p.enclave_key()).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(fs::read(p.enclave_pub()).unwrap(), first.public_key().0);
        let again = load_or_create_enclave_key(&p).unwrap();
        assert_eq!(again.public_key(), first.public_key());

        fs::write(p.enclave_pub(), [0u8; 32]).unwrap();
        let err = load_or_create_enclave_key(&p).err().unwrap().to_string();
        assert!(err.contains("does not match"), "{err}");
        fs::write(p.enclave_key(), [1u8; 31]).unwrap();
        let err = load_or_create_enclave_key(&p).err().unwrap().to_string();
        assert!(err.contains("32-byte"), "{err}");
    }

    #[test]
    fn tls_key_persists() {
        let t = tempfile::tempdir().unwrap();
        let p = paths(t.path());
        fs::create_dir_all(&p.key).unwrap();
        let (first, fresh) = load_or_create_tls_key(&p).unwrap();
        assert!(fresh);
        assert_eq!(first.public[0], 4);
        let (again, fresh) = load_or_create_tls_key(&p).unwrap();
        assert!(!fresh);
        assert_eq!(again.public, first.public);
        assert!(
            fs::read_to_string(p.ratls_key())
                .unwrap()
                .starts_with("-----BEGIN PRIVATE KEY-----")
        );
    }
}
