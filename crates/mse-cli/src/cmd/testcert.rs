//! `mse testcert DOMAIN`: a self-signed certificate and key for `[ssl]`, for local tests only.
//!
//! The certificate is its own trust anchor (CA:TRUE, like the original's RA-TLS certificate) so
//! `curl --cacert` and Python `requests(verify=…)` accept it directly.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use time::{Duration, OffsetDateTime};

use crate::ui::Ui;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The domain the certificate is for (its subjectAltName and CN).
    pub domain: String,
    /// Folder to write `cert.secret.pem` and `key.secret.pem` into.
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// Validity in days from now.
    #[arg(long, default_value_t = 90)]
    pub days: i64,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
}

/// A self-signed certificate and its PKCS#8 key, PEM.
pub struct TestCert {
    pub cert_pem: String,
    pub key_pem: zeroize::Zeroizing<String>,
}

/// Generate a certificate for `domain` valid from `not_before` to `not_after`.
pub fn generate(
    domain: &str,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> anyhow::Result<TestCert> {
    let key = KeyPair::generate().context("generating a P-256 key")?;
    let mut params =
        CertificateParams::new(vec![domain.to_owned()]).context("building the certificate")?;
    params.distinguished_name.push(DnType::CommonName, domain);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "mse local test");
    params.not_before = not_before;
    params.not_after = not_after;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
    ];
    let cert = params
        .self_signed(&key)
        .context("signing the certificate")?;
    Ok(TestCert {
        cert_pem: cert.pem(),
        key_pem: zeroize::Zeroizing::new(key.serialize_pem()),
    })
}

impl Args {
    pub fn run(self, ui: Ui) -> anyhow::Result<ExitCode> {
        let domain = self.domain.trim().to_ascii_lowercase();
        if !crate::config::is_dns_name(&domain) {
            bail!("`{domain}` is not a domain name (e.g. app.example.com)");
        }
        if !(1..=3650).contains(&self.days) {
            bail!("--days must be between 1 and 3650");
        }
        let cert_path = self.dir.join("cert.secret.pem");
        let key_path = self.dir.join("key.secret.pem");
        for p in [&cert_path, &key_path] {
            if p.exists() && !self.force {
                bail!("{} exists; pass --force to overwrite it", p.display());
            }
        }
        let now = OffsetDateTime::now_utc();
        let tc = generate(
            &domain,
            now - Duration::minutes(5),
            now + Duration::days(self.days),
        )?;
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        crate::state::write_private(&key_path, tc.key_pem.as_bytes())?;
        std::fs::write(&cert_path, &tc.cert_pem)
            .with_context(|| format!("writing {}", cert_path.display()))?;
        ui.success(&format!(
            "self-signed certificate for {domain} (valid {} days): {} and {}",
            self.days,
            cert_path.display(),
            key_path.display()
        ));
        ui.warn("for local tests only: clients must be told to trust it (curl --cacert)");
        Ok(ExitCode::SUCCESS)
    }
}
