//! Configuration errors: every one names the file, the key and the fix.

use std::fmt;
use std::path::{Path, PathBuf};

/// A mistake in an `mse.toml` (or in a file it points to), found before anything starts.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    /// The configuration file.
    pub file: PathBuf,
    /// Dotted key path (`code.healthcheck_endpoint`), when one key is at fault.
    pub key: Option<String>,
    /// What is wrong.
    pub kind: ConfigErrorKind,
}

/// What is wrong, with the data needed to explain and to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// The configuration file itself cannot be read.
    Unreadable { reason: String },
    /// Not TOML.
    Syntax { message: String },
    /// Neither the seed's `[code]` table nor the mse-cli `python_application` key is present.
    UnknownLayout,
    /// Both layouts at once (`[code]` and `[cloud]`).
    MixedLayouts,
    /// A required key is absent.
    MissingKey { example: &'static str },
    /// A key has the wrong TOML type.
    WrongType {
        expected: &'static str,
        found: &'static str,
        example: &'static str,
    },
    /// A value is well typed but not acceptable.
    InvalidValue { reason: String, fix: String },
    /// `resource` names no known profile.
    UnknownResource {
        name: String,
        known: Vec<&'static str>,
    },
    /// The code folder is missing or not a folder.
    CodeFolder { path: PathBuf, reason: String },
    /// The module of `python_application` has no file in the code folder.
    ModuleNotFound { module: String, tried: Vec<PathBuf> },
    /// The module file exists but `.mseignore` leaves it out of what is shipped.
    ModuleIgnored { file: PathBuf, pattern: String },
    /// A secret file (private key, secrets) would be shipped with the code.
    SecretInCode { what: &'static str, file: PathBuf },
    /// A file the configuration points to cannot be read.
    FileUnreadable { path: PathBuf, reason: String },
    /// The secrets file is not valid JSON.
    SecretsNotJson { path: PathBuf, reason: String },
    /// The certificate file holds no usable certificate.
    CertificateInvalid { path: PathBuf, reason: String },
    /// The certificate does not cover `ssl.domain_name`.
    DomainNotInCertificate { domain: String, names: Vec<String> },
    /// The certificate's validity period does not include now.
    CertificateExpired { not_after: String },
    /// The certificate is not valid yet.
    CertificateNotYetValid { not_before: String },
    /// The private key file holds no usable key.
    PrivateKeyInvalid { path: PathBuf, reason: String },
    /// The private key is not the certificate's key.
    KeyMismatch { key: PathBuf, certificate: PathBuf },
}

impl ConfigError {
    pub(crate) fn new(file: &Path, key: Option<&str>, kind: ConfigErrorKind) -> Self {
        Self {
            file: file.to_path_buf(),
            key: key.map(str::to_owned),
            kind,
        }
    }

    /// One sentence saying what is wrong.
    pub fn problem(&self) -> String {
        use ConfigErrorKind as K;
        match &self.kind {
            K::Unreadable { reason } => format!("cannot read the configuration file: {reason}"),
            K::Syntax { message } => format!("not valid TOML: {}", message.trim_end()),
            K::UnknownLayout => {
                "no `[code]` table (seed layout) and no `python_application` key (mse-cli layout)"
                    .into()
            }
            K::MixedLayouts => {
                "both a `[code]` table and a `[cloud]` table: pick one layout".into()
            }
            K::MissingKey { .. } => "this key is required and missing".into(),
            K::WrongType {
                expected, found, ..
            } => format!("must be {expected}, found {found}"),
            K::InvalidValue { reason, .. } => reason.clone(),
            K::UnknownResource { name, known } => {
                format!(
                    "unknown resource profile `{name}` (known: {})",
                    known.join(", ")
                )
            }
            K::CodeFolder { path, reason } => format!("code folder {}: {reason}", path.display()),
            K::ModuleNotFound { module, tried } => format!(
                "module `{module}` not found in the code folder (looked for {})",
                tried
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
            K::ModuleIgnored { file, pattern } => format!(
                "{} is excluded by the pattern `{pattern}` of .mseignore, so the app would not start",
                file.display()
            ),
            K::SecretInCode { what, file } => format!(
                "the {what} {} is inside the code folder and would be shipped with the code",
                file.display()
            ),
            K::FileUnreadable { path, reason } => {
                format!("cannot read {}: {reason}", path.display())
            }
            K::SecretsNotJson { path, reason } => {
                format!("{} is not valid JSON: {reason}", path.display())
            }
            K::CertificateInvalid { path, reason } => {
                format!("{} holds no usable certificate: {reason}", path.display())
            }
            K::DomainNotInCertificate { domain, names } => format!(
                "the certificate does not cover `{domain}` (its DNS names: {})",
                if names.is_empty() {
                    "none".into()
                } else {
                    names.join(", ")
                }
            ),
            K::CertificateExpired { not_after } => {
                format!("the certificate expired on {not_after}")
            }
            K::CertificateNotYetValid { not_before } => {
                format!("the certificate is not valid before {not_before}")
            }
            K::PrivateKeyInvalid { path, reason } => {
                format!("{} holds no usable private key: {reason}", path.display())
            }
            K::KeyMismatch { key, certificate } => format!(
                "the private key {} does not belong to the certificate {}",
                key.display(),
                certificate.display()
            ),
        }
    }

    /// What the user should do.
    pub fn fix(&self) -> String {
        use ConfigErrorKind as K;
        let key = self.key.as_deref().unwrap_or("the key");
        let leaf = key.rsplit('.').next().unwrap_or(key);
        match &self.kind {
            K::Unreadable { .. } => "check the path given with --path (default: ./mse.toml)".into(),
            K::Syntax { .. } => "correct the TOML syntax at the position shown".into(),
            K::UnknownLayout => "add a [code] table, e.g.\n    [code]\n    location = \"./code\"\n    python_application = \"app:app\"\n    healthcheck_endpoint = \"/\"".into(),
            K::MixedLayouts => "move the keys of [cloud] into [code] (seed layout) or remove [code] (mse-cli layout)".into(),
            K::MissingKey { example } => format!("add `{leaf} = {example}`"),
            K::WrongType { example, .. } => format!("write `{leaf} = {example}`"),
            K::InvalidValue { fix, .. } => fix.clone(),
            K::UnknownResource { known, .. } => format!(
                "use one of: {} (see docs/resource-profiles.md)",
                known.join(", ")
            ),
            K::CodeFolder { .. } => format!("point `{key}` at the folder holding your Python code (relative to the configuration file)"),
            K::ModuleNotFound { module, .. } => format!(
                "create the file, or correct `{key}` to `module:variable` where the module is a .py file (or a package folder with __init__.py) of the code folder; got `{module}`"
            ),
            K::ModuleIgnored { pattern, .. } => format!("remove or narrow the `{pattern}` line of .mseignore in the code folder"),
            K::SecretInCode { .. } => "move the file out of the code folder (or exclude it in .mseignore) and update the path".into(),
            K::FileUnreadable { .. } => format!("check that `{key}` points to a readable file (paths are relative to the configuration file)"),
            K::SecretsNotJson { .. } => "write a JSON document, e.g. {\"login\": \"alice\"}".into(),
            K::CertificateInvalid { .. } => "give a PEM file with the full chain, server certificate first".into(),
            K::DomainNotInCertificate { .. } => "use a certificate whose subjectAltName lists the domain (or a wildcard *.<parent>), or set `ssl.domain_name` to one of its names".into(),
            K::CertificateExpired { .. } | K::CertificateNotYetValid { .. } => "renew the certificate (for a local test: `mse testcert <domain>`)".into(),
            K::PrivateKeyInvalid { .. } => "give the PEM private key (PKCS#8, SEC1 or PKCS#1) of the certificate".into(),
            K::KeyMismatch { .. } => "give the private key generated with this certificate's signing request".into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(key) = &self.key {
            write!(f, ": key `{key}`")?;
        }
        write!(f, ": {}\n  fix: {}", self.problem(), self.fix())
    }
}
