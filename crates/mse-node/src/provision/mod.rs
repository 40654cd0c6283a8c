//! Provisioning: from a configuration payload to installed code and secrets.
//!
//! Three steps, so that a bad payload writes nothing:
//! 1. [`payload::parse_configuration`]: the whole payload into a typed value;
//! 2. [`Provisioner::prepare`]: the uuid, the sealed secrets, the code key, the owner's TLS key,
//!    and the code decrypted and authenticated into a staging directory, all in memory or staged;
//! 3. [`Prepared::commit`]: only then the secrets files are written and the code renamed in place.

pub mod install;
pub mod payload;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use http::StatusCode;
use mse_crypto::{CodeKey, EnclaveSecretKey};
use rustls::ServerConfig;
use rustls_pki_types::CertificateDer;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::identity::keys::write_private;
use crate::paths::Paths;
use crate::tls::{self, Alpn};
use install::{InstallError, StagedCode};
use payload::{Configuration, PayloadError};

/// Why a configuration was refused. The message goes back to the client: it names what is wrong
/// and never contains a secret.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("{0}")]
    Payload(#[from] PayloadError),
    #[error("the uuid does not match this app's id")]
    WrongUuid,
    #[error(
        "app_sealed_secrets cannot be opened with this node's enclave key: it was sealed for another enclave, \
         or altered; seal it again to the enclave key of this node's certificate"
    )]
    Sealed,
    #[error(
        "this node serves the app with the owner's certificate (--certificate): send its private key as ssl_private_key"
    )]
    MissingSslKey,
    #[error("ssl_private_key cannot be used with the app's certificate: {0}")]
    SslKey(String),
    #[error(
        "the code is encrypted ({0} .enc files) but no code_secret_key was sent (top level or inside app_sealed_secrets)"
    )]
    NoCodeKey(usize),
    #[error("a code_secret_key was sent but the app's code has no .enc file: it ships in clear")]
    KeyForClearCode,
    #[error("{0}")]
    Decrypt(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("the node cannot install the configuration: {0}")]
    Io(String),
}

impl ProvisionError {
    /// The status the configuration server answers.
    pub fn status(&self) -> StatusCode {
        match self {
            ProvisionError::WrongUuid => StatusCode::UNAUTHORIZED,
            ProvisionError::Decrypt(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ProvisionError::Io(_) | ProvisionError::Unsupported(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl From<InstallError> for ProvisionError {
    fn from(e: InstallError) -> Self {
        match e {
            InstallError::Decrypt(e) => ProvisionError::Decrypt(e.to_string()),
            InstallError::Unsupported(m) => ProvisionError::Unsupported(m),
            InstallError::Io(m) => ProvisionError::Io(m),
        }
    }
}

/// What the node knows to check a payload against.
pub struct Provisioner {
    pub id: Uuid,
    pub enclave_key: EnclaveSecretKey,
    pub paths: Paths,
    pub app_dir: PathBuf,
    /// The owner's chain in custom-certificate mode: the received key must match its leaf.
    pub owner_chain: Option<Vec<CertificateDer<'static>>>,
}

/// Everything checked and staged, nothing visible yet.
#[derive(Debug)]
pub struct Prepared {
    app_secrets: Option<Zeroizing<Vec<u8>>>,
    sealed_secrets: Option<Zeroizing<Vec<u8>>>,
    ssl_private_key: Option<Zeroizing<String>>,
    code: StagedCode,
    /// The app's TLS configuration in custom-certificate mode.
    pub owner_tls: Option<Arc<ServerConfig>>,
}

impl Provisioner {
    /// Checks a payload completely and stages the code. Writes nothing outside the staging dir.
    pub fn prepare(&self, cfg: Configuration<'_>) -> Result<Prepared, ProvisionError> {
        if cfg.uuid != self.id {
            return Err(ProvisionError::WrongUuid);
        }
        let sealed = match &cfg.app_sealed_secrets {
            Some(sealed) => {
                let plain = mse_crypto::sealed::open(&self.enclave_key, sealed)
                    .map_err(|_| ProvisionError::Sealed)?;
                let parsed = payload::parse_sealed_secrets(&plain)?;
                Some((plain, parsed))
            }
            None => None,
        };
        // The top-level key wins over the sealed one (protocol §2.2 step 5).
        let key = cfg
            .code_secret_key
            .as_ref()
            .or_else(|| {
                sealed
                    .as_ref()
                    .and_then(|(_, s)| s.code_secret_key.as_ref())
            })
            .map(|k| CodeKey::from_bytes(**k));

        let (owner_tls, ssl_private_key) = match &self.owner_chain {
            Some(chain) => {
                let pem = cfg.ssl_private_key.ok_or(ProvisionError::MissingSslKey)?;
                let key = tls::parse_key(pem.as_bytes())
                    .map_err(|e| ProvisionError::SslKey(e.to_string()))?;
                let config = tls::server_config(chain.clone(), key, Alpn::H2AndHttp11)
                    .map_err(|e| ProvisionError::SslKey(e.to_string()))?;
                (Some(config), Some(pem))
            }
            None => (None, None),
        };

        let code = self.stage_code(key.as_ref())?;
        Ok(Prepared {
            app_secrets: cfg
                .app_secrets
                .map(|raw| Zeroizing::new(raw.get().as_bytes().to_vec())),
            sealed_secrets: sealed.map(|(plain, _)| plain),
            ssl_private_key,
            code,
            owner_tls,
        })
    }

    /// No configuration came before `--timeout`: clear code only, no secrets (as the original).
    pub fn prepare_without_configuration(&self) -> Result<Prepared, ProvisionError> {
        let code = self.stage_code(None)?;
        Ok(Prepared {
            app_secrets: None,
            sealed_secrets: None,
            ssl_private_key: None,
            code,
            owner_tls: None,
        })
    }

    fn stage_code(&self, key: Option<&CodeKey>) -> Result<StagedCode, ProvisionError> {
        let encrypted = install::encrypted_file_count(&self.app_dir)
            .map_err(|e| ProvisionError::Io(format!("reading {}: {e}", self.app_dir.display())))?;
        Ok(match (key, encrypted) {
            (Some(_), 0) => return Err(ProvisionError::KeyForClearCode),
            (Some(key), _) => StagedCode::decrypt(&self.app_dir, &self.paths.module, key)?,
            (None, 0) => StagedCode::copy(&self.app_dir, &self.paths.module)?,
            (None, n) => return Err(ProvisionError::NoCodeKey(n)),
        })
    }
}

impl Prepared {
    /// Writes the secrets (each atomically, owner-only), then makes the code visible. On failure
    /// what was written is removed again.
    pub fn commit(self, paths: &Paths) -> Result<(), ProvisionError> {
        let mut written: Vec<&Path> = Vec::new();
        let files = [
            (
                &paths.secrets,
                self.app_secrets.as_deref().map(Vec::as_slice),
            ),
            (
                &paths.sealed_secrets,
                self.sealed_secrets.as_deref().map(Vec::as_slice),
            ),
            (
                &paths.ssl_key(),
                self.ssl_private_key.as_deref().map(String::as_bytes),
            ),
        ];
        let mut result = Ok(());
        for (path, bytes) in &files {
            if let Some(bytes) = bytes {
                if let Err(e) = write_private(path, bytes) {
                    result = Err(ProvisionError::Io(format!("{e:#}")));
                    break;
                }
                written.push(path);
            }
        }
        if result.is_ok() {
            result = self.code.commit().map_err(ProvisionError::from);
        }
        if result.is_err() {
            for path in written {
                let _ = std::fs::remove_file(path);
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    const ID: &str = "63322f85-1ff8-4483-91ae-f18d7398d157";

    struct Fixture {
        _t: tempfile::TempDir,
        prov: Provisioner,
        key: CodeKey,
    }

    fn fixture(encrypt: bool) -> Fixture {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let paths = Paths {
            home: root.join("home"),
            secrets: root.join("home/.cache/mse/secrets.json"),
            sealed_secrets: root.join("home/.cache/mse/sealed_secrets.json"),
            tmp: root.join("tmp"),
            module: root.join("module"),
            key: root.join("key"),
        };
        paths.create().unwrap();
        let app_dir = root.join("app");
        fs::create_dir_all(&app_dir).unwrap();
        let key = CodeKey::from_bytes([9; 32]);
        if encrypt {
            fs::write(
                app_dir.join("app.py.enc"),
                mse_crypto::code::encrypt(&key, &[3; 24], b"PLAIN_CODE"),
            )
            .unwrap();
        } else {
            fs::write(app_dir.join("app.py"), b"PLAIN_CODE").unwrap();
        }
        let prov = Provisioner {
            id: ID.parse().unwrap(),
            enclave_key: EnclaveSecretKey::from_bytes([5; 32]),
            paths,
            app_dir,
            owner_chain: None,
        };
        Fixture { _t: t, prov, key }
    }

    fn run(f: &Fixture, body: &str) -> Result<(), ProvisionError> {
        let cfg = payload::parse_configuration(body.as_bytes())?;
        f.prov.prepare(cfg)?.commit(&f.prov.paths)
    }

    fn nothing_written(f: &Fixture) -> bool {
        let p = &f.prov.paths;
        !p.secrets.exists()
            && !p.sealed_secrets.exists()
            && fs::read_dir(&p.module).unwrap().next().is_none()
    }

    #[test]
    fn a_good_payload_installs_code_and_secrets() {
        let f = fixture(true);
        let sealed = mse_crypto::sealed::seal(
            &f.prov.enclave_key.public_key(),
            br#"{"code_secret_key": "0909090909090909090909090909090909090909090909090909090909090909", "x": 1}"#,
        );
        let body = format!(
            r#"{{"uuid": "{ID}", "app_secrets": {{"login": "alice"}}, "app_sealed_secrets": "{}"}}"#,
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &sealed)
        );
        run(&f, &body).unwrap();
        let p = &f.prov.paths;
        assert_eq!(
            fs::read_to_string(&p.secrets).unwrap(),
            r#"{"login": "alice"}"#
        );
        assert!(
            fs::read_to_string(&p.sealed_secrets)
                .unwrap()
                .contains("\"x\": 1")
        );
        assert_eq!(fs::read(p.module.join("app.py")).unwrap(), b"PLAIN_CODE");
        let _ = &f.key;
    }

    #[test]
    fn refusals_write_nothing() {
        let f = fixture(true);
        let good_key = hex::encode([9u8; 32]);
        let cases = [
            (
                format!(
                    r#"{{"uuid": "00000000-0000-0000-0000-000000000000", "code_secret_key": "{good_key}", "app_secrets": {{"a": 1}}}}"#
                ),
                StatusCode::UNAUTHORIZED,
            ),
            (
                format!(
                    r#"{{"uuid": "{ID}", "code_secret_key": "{}", "app_secrets": {{"a": 1}}}}"#,
                    hex::encode([8u8; 32])
                ),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                format!(r#"{{"uuid": "{ID}", "app_secrets": {{"a": 1}}}}"#),
                StatusCode::BAD_REQUEST,
            ),
            (
                format!(
                    r#"{{"uuid": "{ID}", "code_secret_key": "{good_key}", "app_sealed_secrets": "{}"}}"#,
                    "A".repeat(80)
                ),
                StatusCode::BAD_REQUEST,
            ),
        ];
        for (body, status) in cases {
            let err = run(&f, &body).unwrap_err();
            assert_eq!(err.status(), status, "{body}: {err}");
            assert!(nothing_written(&f), "{body}");
        }
    }

    #[test]
    fn clear_code_needs_no_key_and_refuses_one() {
        let f = fixture(false);
        let err = run(
            &f,
            &format!(
                r#"{{"uuid": "{ID}", "code_secret_key": "{}"}}"#,
                hex::encode([9u8; 32])
            ),
        )
        .unwrap_err();
        assert!(matches!(err, ProvisionError::KeyForClearCode));
        assert!(nothing_written(&f));
        run(&f, &format!(r#"{{"uuid": "{ID}"}}"#)).unwrap();
        assert_eq!(
            fs::read(f.prov.paths.module.join("app.py")).unwrap(),
            b"PLAIN_CODE"
        );
    }
}
