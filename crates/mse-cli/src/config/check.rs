//! [`ParsedConfig`] + the files it points to → [`DeployConfig`]: every check the seed and the
//! original make before anything starts (module file, secrets JSON, certificate and key).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::error::{ConfigError, ConfigErrorKind as K};
use super::parse::{ParsedConfig, SslPaths};

/// A configuration that is ready to deploy: files read, every cross-check passed.
#[derive(Debug)]
pub struct DeployConfig {
    pub parsed: ParsedConfig,
    /// `.mseignore` patterns of the code folder (empty if there is none).
    pub ignore: Vec<String>,
    /// The file `python_application`'s module resolves to.
    pub module_file: PathBuf,
    pub secrets: Option<Secrets>,
    pub ssl: Option<Ssl>,
}

/// The app secrets (`code.secrets`), parsed JSON. Debug never shows the values.
pub struct Secrets {
    pub path: PathBuf,
    pub value: serde_json::Value,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("path", &self.path)
            .field("value", &"[redacted]")
            .finish()
    }
}

/// The owner's certificate and key (`[ssl]`), checked to match each other and the domain.
pub struct Ssl {
    pub domain_name: String,
    pub certificate_path: PathBuf,
    /// PEM text of the chain as given (leaf first).
    pub chain_pem: String,
    pub private_key_pem: Zeroizing<String>,
    pub not_after: OffsetDateTime,
}

impl std::fmt::Debug for Ssl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ssl")
            .field("domain_name", &self.domain_name)
            .field("certificate_path", &self.certificate_path)
            .field("not_after", &self.not_after)
            .field("private_key_pem", &"[redacted]")
            .finish()
    }
}

/// Run every check against the file system, at time `now`.
pub fn check(parsed: ParsedConfig, now: OffsetDateTime) -> Result<DeployConfig, ConfigError> {
    let c = Checker {
        file: &parsed.file,
        code_key: code_key(&parsed),
    };
    let ignore = c.code_folder(&parsed.code_dir)?;
    let module_file = c.module(&parsed, &ignore)?;
    let secrets = match &parsed.secrets {
        Some(path) => Some(c.secrets(&parsed, path, &ignore)?),
        None => None,
    };
    let ssl = match &parsed.ssl {
        Some(paths) => Some(c.ssl(&parsed, paths, &ignore, now)?),
        None => None,
    };
    if let Some(exp) = parsed.expiration {
        let key = "cloud.expiration_date";
        if exp <= now {
            return Err(c.invalid(
                key,
                format!("{exp} is in the past"),
                "set a future date or remove the key",
            ));
        }
        if let Some(ssl) = &ssl
            && exp > ssl.not_after
        {
            return Err(c.invalid(
                key,
                format!(
                    "{exp} is after the certificate's expiry ({})",
                    ssl.not_after
                ),
                "set a date before the certificate expires, or renew the certificate",
            ));
        }
    }
    Ok(DeployConfig {
        parsed,
        ignore,
        module_file,
        secrets,
        ssl,
    })
}

fn code_key(p: &ParsedConfig) -> &'static str {
    match p.layout {
        super::Layout::Seed => "code.location",
        super::Layout::MseCli => "cloud.code",
    }
}

fn secrets_key(p: &ParsedConfig) -> &'static str {
    match p.layout {
        super::Layout::Seed => "code.secrets",
        super::Layout::MseCli => "cloud.secrets",
    }
}

fn ssl_prefix(p: &ParsedConfig) -> &'static str {
    match p.layout {
        super::Layout::Seed => "ssl",
        super::Layout::MseCli => "cloud.ssl",
    }
}

struct Checker<'a> {
    file: &'a Path,
    code_key: &'static str,
}

impl Checker<'_> {
    fn err(&self, key: &str, kind: K) -> ConfigError {
        ConfigError::new(self.file, Some(key), kind)
    }

    fn invalid(&self, key: &str, reason: String, fix: &str) -> ConfigError {
        self.err(
            key,
            K::InvalidValue {
                reason,
                fix: fix.to_owned(),
            },
        )
    }

    fn read(&self, key: &str, path: &Path) -> Result<Vec<u8>, ConfigError> {
        std::fs::read(path).map_err(|e| {
            self.err(
                key,
                K::FileUnreadable {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                },
            )
        })
    }

    /// The folder exists; returns its `.mseignore` patterns.
    fn code_folder(&self, dir: &Path) -> Result<Vec<String>, ConfigError> {
        let meta = std::fs::metadata(dir).map_err(|e| {
            self.err(
                self.code_key,
                K::CodeFolder {
                    path: dir.to_path_buf(),
                    reason: e.to_string(),
                },
            )
        })?;
        if !meta.is_dir() {
            return Err(self.err(
                self.code_key,
                K::CodeFolder {
                    path: dir.to_path_buf(),
                    reason: "is not a folder".into(),
                },
            ));
        }
        // mse-crypto's reader: the patterns checked here are the ones encrypt_tree applies.
        mse_crypto::ignore::read_mseignore(dir).map_err(|e| {
            self.err(
                self.code_key,
                K::FileUnreadable {
                    path: dir.join(mse_crypto::ignore::FILE_NAME),
                    reason: e.to_string(),
                },
            )
        })
    }

    /// `code/<module with . → />.py`, else the package `code/<module>/__init__.py`.
    fn module(&self, p: &ParsedConfig, ignore: &[String]) -> Result<PathBuf, ConfigError> {
        let key = match p.layout {
            super::Layout::Seed => "code.python_application",
            super::Layout::MseCli => "python_application",
        };
        let rel: PathBuf = p.app.module.split('.').collect();
        let candidates = [rel.with_extension("py"), rel.join("__init__.py")];
        let found = candidates.iter().find(|r| p.code_dir.join(r).is_file());
        let Some(relfile) = found else {
            return Err(self.err(
                key,
                K::ModuleNotFound {
                    module: p.app.module.clone(),
                    tried: candidates.iter().map(|r| p.code_dir.join(r)).collect(),
                },
            ));
        };
        if let Some(pattern) = excluded_by(ignore, relfile) {
            return Err(self.err(
                key,
                K::ModuleIgnored {
                    file: p.code_dir.join(relfile),
                    pattern: pattern.to_owned(),
                },
            ));
        }
        Ok(p.code_dir.join(relfile))
    }

    /// A secret file inside the code folder must be excluded by `.mseignore`.
    fn not_shipped(
        &self,
        key: &str,
        what: &'static str,
        code_dir: &Path,
        file: &Path,
        ignore: &[String],
    ) -> Result<(), ConfigError> {
        let (Ok(dir), Ok(f)) = (code_dir.canonicalize(), file.canonicalize()) else {
            return Ok(());
        };
        if let Ok(rel) = f.strip_prefix(&dir)
            && excluded_by(ignore, rel).is_none()
        {
            return Err(self.err(
                key,
                K::SecretInCode {
                    what,
                    file: file.to_path_buf(),
                },
            ));
        }
        Ok(())
    }

    fn secrets(
        &self,
        p: &ParsedConfig,
        path: &Path,
        ignore: &[String],
    ) -> Result<Secrets, ConfigError> {
        let key = secrets_key(p);
        let bytes = Zeroizing::new(self.read(key, path)?);
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            self.err(
                key,
                K::SecretsNotJson {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                },
            )
        })?;
        self.not_shipped(key, "secrets file", &p.code_dir, path, ignore)?;
        Ok(Secrets {
            path: path.to_path_buf(),
            value,
        })
    }

    fn ssl(
        &self,
        p: &ParsedConfig,
        paths: &SslPaths,
        ignore: &[String],
        now: OffsetDateTime,
    ) -> Result<Ssl, ConfigError> {
        let prefix = ssl_prefix(p);
        let cert_key = format!("{prefix}.certificate");
        let key_key = format!("{prefix}.private_key");
        let domain_key = format!("{prefix}.domain_name");

        let cert_bytes = self.read(&cert_key, &paths.certificate)?;
        let cert_invalid = |reason: String| {
            self.err(
                &cert_key,
                K::CertificateInvalid {
                    path: paths.certificate.clone(),
                    reason,
                },
            )
        };
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_bytes)
            .collect::<Result<_, _>>()
            .map_err(|e| cert_invalid(format!("bad PEM: {e:?}")))?;
        let leaf_der = chain
            .first()
            .ok_or_else(|| cert_invalid("no CERTIFICATE block".into()))?;
        let (_, leaf) = x509_parser::parse_x509_certificate(leaf_der)
            .map_err(|e| cert_invalid(format!("bad X.509: {e}")))?;

        let names = dns_names(&leaf).map_err(cert_invalid)?;
        if !covers(&names, &paths.domain_name) {
            return Err(self.err(
                &domain_key,
                K::DomainNotInCertificate {
                    domain: paths.domain_name.clone(),
                    names,
                },
            ));
        }

        let validity = leaf.validity();
        let not_after = OffsetDateTime::from_unix_timestamp(validity.not_after.timestamp())
            .map_err(|e| cert_invalid(format!("notAfter out of range: {e}")))?;
        let not_before = OffsetDateTime::from_unix_timestamp(validity.not_before.timestamp())
            .map_err(|e| cert_invalid(format!("notBefore out of range: {e}")))?;
        if now > not_after {
            return Err(self.err(
                &cert_key,
                K::CertificateExpired {
                    not_after: not_after.to_string(),
                },
            ));
        }
        if now < not_before {
            return Err(self.err(
                &cert_key,
                K::CertificateNotYetValid {
                    not_before: not_before.to_string(),
                },
            ));
        }

        let key_bytes = Zeroizing::new(self.read(&key_key, &paths.private_key)?);
        let key_invalid = |reason: String| {
            self.err(
                &key_key,
                K::PrivateKeyInvalid {
                    path: paths.private_key.clone(),
                    reason,
                },
            )
        };
        let key_der = PrivateKeyDer::from_pem_slice(&key_bytes)
            .map_err(|e| key_invalid(format!("bad PEM: {e:?}")))?;
        // The same loader the node's TLS stack uses: a key it accepts here, it accepts there.
        let signing_key: Arc<dyn rustls::sign::SigningKey> =
            rustls::crypto::ring::sign::any_supported_type(&key_der)
                .map_err(|e| key_invalid(format!("unsupported key: {e}")))?;
        let spki = signing_key
            .public_key()
            .ok_or_else(|| key_invalid("cannot derive the public key of this key type".into()))?;
        if spki.as_ref() != leaf.public_key().raw {
            return Err(self.err(
                &key_key,
                K::KeyMismatch {
                    key: paths.private_key.clone(),
                    certificate: paths.certificate.clone(),
                },
            ));
        }
        self.not_shipped(
            &key_key,
            "private key",
            &p.code_dir,
            &paths.private_key,
            ignore,
        )?;

        let private_key_pem = Zeroizing::new(String::from_utf8_lossy(&key_bytes).into_owned());
        Ok(Ssl {
            domain_name: paths.domain_name.clone(),
            certificate_path: paths.certificate.clone(),
            chain_pem: String::from_utf8_lossy(&cert_bytes).into_owned(),
            private_key_pem,
            not_after,
        })
    }
}

/// DNS names of the subjectAltName extension, lower-cased.
fn dns_names(cert: &x509_parser::certificate::X509Certificate<'_>) -> Result<Vec<String>, String> {
    use x509_parser::extensions::GeneralName;
    let san = cert
        .subject_alternative_name()
        .map_err(|e| format!("bad subjectAltName: {e}"))?;
    Ok(san
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(d) => Some(d.to_ascii_lowercase()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default())
}

/// Why `relpath` (relative to the code folder) is not shipped: the `.mseignore` pattern that
/// excludes one of its components, or `.*` for a hidden component; `None` if it is shipped.
///
/// The decision is mse-crypto's ([`IgnoreSet`], the matcher `encrypt_tree` applies, and its rule
/// that hidden entries are never shipped), so what the checks say is what ships; the pattern is
/// looked up afterwards only to name it in the message.
fn excluded_by<'a>(patterns: &'a [String], relpath: &Path) -> Option<&'a str> {
    use mse_crypto::ignore::{IgnoreSet, fnmatch};
    let set = IgnoreSet::new(patterns);
    relpath.components().find_map(|c| {
        let name = c.as_os_str();
        if name.as_encoded_bytes().starts_with(b".") {
            return Some(".* (hidden files are never shipped)");
        }
        if !set.is_ignored(name) {
            return None;
        }
        let shown = name.to_string_lossy();
        Some(
            patterns
                .iter()
                .find(|p| fnmatch(&shown, p))
                .map_or("(a pattern of .mseignore)", String::as_str),
        )
    })
}

/// The original's rule (§1.3): the SAN lists the domain itself, or `*.` + the domain minus its
/// first label.
pub(crate) fn covers(names: &[String], domain: &str) -> bool {
    let domain = domain.to_ascii_lowercase();
    let wildcard = domain
        .split_once('.')
        .map(|(_, parent)| format!("*.{parent}"));
    names
        .iter()
        .any(|n| *n == domain || Some(n) == wildcard.as_ref())
}

#[cfg(test)]
mod tests {
    use super::{covers, excluded_by};
    use mse_crypto::ignore::parse_mseignore as parse;
    use std::path::Path;

    #[test]
    fn a_component_match_excludes_the_whole_subtree() {
        let pats = parse("venv\n*.pyc\n# comment\n__pycache__/\n");
        assert_eq!(excluded_by(&pats, Path::new("venv/lib/x.py")), Some("venv"));
        assert_eq!(excluded_by(&pats, Path::new("pkg/m.pyc")), Some("*.pyc"));
        assert_eq!(excluded_by(&pats, Path::new("pkg/m.py")), None);
        // The original's quirk, kept: a trailing slash never matches.
        assert_eq!(excluded_by(&pats, Path::new("__pycache__/m.py")), None);
        assert!(excluded_by(&pats, Path::new(".hidden/m.py")).is_some());
    }

    #[test]
    fn wildcard_rule_covers_one_label_only() {
        let names = vec!["*.example.com".to_string(), "other.org".to_string()];
        assert!(covers(&names, "app.example.com"));
        assert!(covers(&names, "OTHER.org"));
        assert!(!covers(&names, "example.com"));
        assert!(!covers(&names, "a.b.example.com"));
    }
}
