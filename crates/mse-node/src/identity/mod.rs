//! Who the node is: its enclave key, its TLS key, its TEE, and the RA-TLS certificate that
//! binds them (report data = SHA-256(TLS public key) ‖ enclave public key).

pub mod certificate;
pub mod evidence;
pub mod keys;
pub mod subject;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{Context, Result};
use mse_attest::ratls::RaTlsCertificate;
use mse_crypto::{EnclavePublicKey, EnclaveSecretKey};
use mse_tee::TeeBackend;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::cli::{Launch, San};
use crate::paths::Paths;
use certificate::{CertSpec, EvidenceExt};
use keys::TlsKey;

/// The node's identity, established before anything listens.
pub struct Identity {
    pub enclave_key: EnclaveSecretKey,
    pub enclave_public: EnclavePublicKey,
    pub tls_key: TlsKey,
    /// The RA-TLS certificate, DER.
    pub certificate: Vec<u8>,
    pub tee: Arc<dyn TeeBackend>,
}

impl Identity {
    /// Loads or creates the keys, takes a quote over them and builds (or reuses) the certificate.
    pub fn establish(
        paths: &Paths,
        spec: &CertSpec,
        tee: Arc<dyn TeeBackend>,
        now: SystemTime,
    ) -> Result<Self> {
        let enclave_key = keys::load_or_create_enclave_key(paths)?;
        let enclave_public = enclave_key.public_key();
        let (tls_key, fresh_key) = keys::load_or_create_tls_key(paths)?;
        let report_data = mse_attest::report_data::ratls(&tls_key.public, &enclave_public.0);
        let evidence = tee
            .evidence(&report_data)
            .context("the TEE could not produce a quote")?;
        tracing::info!(tee = %evidence.kind, bytes = evidence.bytes.len(), "quote produced over the TLS and enclave keys");

        let reused = if fresh_key {
            None
        } else {
            reusable_certificate(paths, spec, &tls_key, &report_data, &evidence, now)
        };
        let certificate = match reused {
            Some(der) => {
                tracing::info!("reusing the RA-TLS certificate of the previous start");
                der
            }
            None => {
                let der = certificate::build(
                    &tls_key,
                    spec,
                    &EvidenceExt {
                        oid: evidence.oid,
                        bytes: &evidence.bytes,
                    },
                    now,
                )?;
                certificate::self_check(&der, &tls_key.public, &report_data, &evidence.bytes)?;
                keys::write_private(&paths.ratls_cert(), to_pem(&der).as_bytes())?;
                der
            }
        };
        let fingerprint = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&certificate));
        tracing::info!(sha256 = %fingerprint, path = %paths.ratls_cert().display(), "RA-TLS certificate ready");
        Ok(Identity {
            enclave_key,
            enclave_public,
            tls_key,
            certificate,
            tee,
        })
    }

    /// The certificate and key for rustls.
    pub fn tls_material(&self) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.tls_key.pkcs8_der().to_vec()));
        (vec![CertificateDer::from(self.certificate.clone())], key)
    }
}

/// The previous start's certificate, if it still says exactly what a new one would: same key,
/// report data, TEE and measurement, same SAN and expiry, not expired. The original always
/// reused it; a pinned certificate then survives a restart.
fn reusable_certificate(
    paths: &Paths,
    spec: &CertSpec,
    tls_key: &TlsKey,
    report_data: &[u8; 64],
    fresh: &mse_tee::Evidence,
    now: SystemTime,
) -> Option<Vec<u8>> {
    let pem = fs::read_to_string(paths.ratls_cert()).ok()?;
    let why_not = |reason: &str| {
        tracing::info!(reason, "not reusing the previous RA-TLS certificate");
        None
    };
    let Ok(cert) = RaTlsCertificate::from_pem(&pem) else {
        return why_not("it does not parse");
    };
    let old = cert.evidence();
    let same_kind = old.kind == fresh.kind
        || (old.kind == mse_attest::TeeKind::Sgx && fresh.kind == mse_attest::TeeKind::Sim);
    if cert.tls_public_key() != &tls_key.public || !same_kind {
        return why_not("another key or TEE");
    }
    match evidence::report_data(&old.bytes, fresh.kind) {
        Ok(rd) if &rd == report_data => {}
        _ => return why_not("its report data does not bind the current keys"),
    }
    match (
        evidence::measurement(&old.bytes, fresh.kind),
        evidence::measurement(&fresh.bytes, fresh.kind),
    ) {
        (Ok(a), Ok(b)) if a == b => {}
        _ => return why_not("the measurement changed"),
    }
    let want_san = match &spec.san {
        San::Ip(ip) => mse_attest::ratls::San::Ip(*ip),
        San::Dns(d) => mse_attest::ratls::San::Dns(d.clone()),
    };
    if cert.san() != [want_san] {
        return why_not("another SAN");
    }
    // Only the same --ratls expiration: the other modes' certificate lives 10 hours from each start.
    if cert.not_after() <= now || secs(cert.not_after()) != secs(spec.not_after) {
        return why_not("another expiration date");
    }
    Some(cert.der().to_vec())
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn to_pem(der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// Opens the TEE backend. The simulation needs the measurement, computed from what runs.
pub fn open_tee(launch: &Launch, runtime_roots: &[PathBuf]) -> Result<Arc<dyn TeeBackend>> {
    use crate::cli::TeeArg;
    let measurement = match launch.tee {
        TeeArg::Auto | TeeArg::Sim => sim_measurement(launch, runtime_roots)?,
        TeeArg::Gramine | TeeArg::Tsm => [0; 32],
    };
    let sim = mse_tee::SimConfig {
        root_dir: mse_tee::sim_root_dir(),
        measurement,
        debug: launch.debug,
    };
    let tee =
        mse_tee::open(launch.tee.into(), sim).context("cannot open the TEE backend (--tee)")?;
    Ok(Arc::from(tee))
}

fn sim_measurement(launch: &Launch, runtime_roots: &[PathBuf]) -> Result<[u8; 32]> {
    let roots: Vec<&Path> = runtime_roots.iter().map(PathBuf::as_path).collect();
    // The runtime is hundreds of MB; reading it at every start cost seconds. The cache (keyed by
    // stat, next to the simulation root) reads only what changed; see mse_measure::DigestCache.
    let cache_file = mse_tee::sim_root_dir().join("digest-cache");
    let mut cache = mse_measure::DigestCache::open(&cache_file);
    let runtime = mse_measure::runtime_digest_cached(&roots, &mut cache)
        .context("cannot digest the Python runtime")?;
    let manifest = mse_measure::Manifest::from_parts_cached(
        Path::new("/proc/self/exe"),
        &runtime,
        &launch.app_dir,
        &launch.args,
        &mut cache,
    )
    .context("cannot compute the measurement")?;
    if let Some(dir) = cache_file.parent() {
        let saved = std::fs::create_dir_all(dir)
            .map_err(anyhow::Error::from)
            .and_then(|()| cache.save().map_err(anyhow::Error::from));
        if let Err(e) = saved {
            tracing::warn!(
                "cannot save the digest cache {}: {e:#}; the next start hashes the runtime again",
                cache_file.display()
            );
        }
    }
    let m = manifest.measurement();
    tracing::info!(measurement = %hex::encode(m), "simulated measurement computed");
    Ok(m)
}
