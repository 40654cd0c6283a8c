//! PCCS v4 client (feature `pccs`): fetch DCAP collateral for a quote, with an on-disk cache.
//!
//! Endpoints (Intel PCCS API v4, reference §4.4), under `<base>/sgx/certification/v4/`
//! (`tdx/…` for TCB info and QE identity of TDX quotes):
//! `rootcacrl` (body: hex text of the DER CRL, or DER), `pckcrl?ca=platform|processor&encoding=der`
//! (header `SGX-PCK-CRL-Issuer-Chain`), `tcb?fmspc=<hex>` (header `TCB-Info-Issuer-Chain`, or
//! `SGX-TCB-Info-Issuer-Chain` from v3 servers), `qe/identity` (header
//! `SGX-Enclave-Identity-Issuer-Chain`). Issuer chains are URL-encoded PEM.
//!
//! The client is blocking (a private current-thread tokio runtime drives hyper), so it can be
//! called from a CLI or a test without an async context. HTTPS uses rustls with the Mozilla
//! roots (webpki-roots); `http://` is accepted for a PCCS on the local network or loopback.
//!
//! Cache: one JSON file per (PCCS, TEE, FMSPC, CA) in the cache directory. A cached entry is
//! used while every item is current at `now`; otherwise the PCCS is asked, and if it cannot be
//! reached the stale entry is returned, so the verifier reports it as stale rather than hiding it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use sha2::{Digest, Sha256};

use crate::collateral::{Collateral, DcapParts};
use crate::error::{Error, Result};
use crate::ratls::RawEvidence;
use crate::{TeeKind, dcap, pki, sgx, tdx};

/// Bodies larger than this are refused (collateral is tens of kB).
const MAX_BODY: usize = 1 << 20;

/// A PCCS client.
#[derive(Clone, Debug)]
pub struct PccsClient {
    base: String,
    cache_dir: Option<PathBuf>,
    timeout: Duration,
}

struct Response {
    body: Vec<u8>,
    headers: http::HeaderMap,
}

impl PccsClient {
    /// `base` is the PCCS URL (`https://pccs.example.com:8081`), without the API path.
    pub fn new(base: &str) -> Result<Self> {
        let base = base.trim_end_matches('/').to_owned();
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(Error::Usage(format!(
                "PCCS URL {base:?} must start with https:// or http://"
            )));
        }
        Ok(PccsClient {
            base,
            cache_dir: None,
            timeout: Duration::from_secs(30),
        })
    }

    /// Cache collateral in this directory (created if missing).
    pub fn with_cache(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Per-request timeout.
    pub fn with_timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Collateral for an SGX or TDX quote (SNP and sim need none from a PCCS).
    pub fn collateral_for(&self, evidence: &RawEvidence, now: SystemTime) -> Result<Collateral> {
        let (tee, chain) = match evidence.kind {
            TeeKind::Sgx | TeeKind::Sim => {
                ("sgx", sgx::Quote::parse(&evidence.bytes)?.pck_chain()?)
            }
            TeeKind::Tdx => ("tdx", tdx::Quote::parse(&evidence.bytes)?.pck_chain()?),
            TeeKind::SevSnp => return Ok(Collateral::none()),
        };
        let leaf = chain
            .first()
            .ok_or_else(|| Error::malformed("quote", "empty PCK chain"))?;
        let info = dcap::pck_info(leaf)?;
        let fmspc = hex::encode(info.fmspc);
        let key = hex::encode(Sha256::digest(format!(
            "{}|{tee}|{fmspc}|{}",
            self.base,
            info.ca.as_str()
        )));
        let cache_file = self
            .cache_dir
            .as_ref()
            .map(|d| d.join(format!("{key}.json")));

        let cached = cache_file
            .as_ref()
            .and_then(|f| std::fs::read(f).ok())
            .and_then(|b| Collateral::from_json(&b).ok());
        if let Some(c) = &cached {
            if let Ok(Some(w)) = c.window() {
                let t = pki::unix(now);
                if w.expired_at(t).is_empty() && w.future_at(t).is_empty() {
                    return Ok(c.clone());
                }
            }
        }
        match self.fetch(tee, &fmspc, info.ca.as_str()) {
            Ok(c) => {
                if let (Some(file), Ok(json)) = (&cache_file, c.to_json()) {
                    if let Some(dir) = file.parent() {
                        let _ = std::fs::create_dir_all(dir);
                    }
                    let tmp = file.with_extension("tmp");
                    if std::fs::write(&tmp, json).is_ok() {
                        let _ = std::fs::rename(&tmp, file);
                    }
                }
                Ok(c)
            }
            Err(e) => cached.ok_or(e),
        }
    }

    fn fetch(&self, tee: &str, fmspc: &str, ca: &str) -> Result<Collateral> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Pccs(format!("cannot start the HTTP runtime: {e}")))?;
        rt.block_on(async {
            let sgx = format!("{}/sgx/certification/v4", self.base);
            let teeb = format!("{}/{tee}/certification/v4", self.base);
            let root = self.get(&format!("{sgx}/rootcacrl")).await?;
            let pck = self
                .get(&format!("{sgx}/pckcrl?ca={ca}&encoding=der"))
                .await?;
            let tcb = self.get(&format!("{teeb}/tcb?fmspc={fmspc}")).await?;
            let qe = self.get(&format!("{teeb}/qe/identity")).await?;
            let parts = DcapParts {
                root_ca_crl_der: crl_body(&root.body)?,
                pck_crl_der: crl_body(&pck.body)?,
                pck_crl_issuer_chain_pem: header_chain(
                    &pck.headers,
                    &["SGX-PCK-CRL-Issuer-Chain"],
                )?,
                tcb_info_body: tcb.body,
                tcb_info_issuer_chain_pem: header_chain(
                    &tcb.headers,
                    &["TCB-Info-Issuer-Chain", "SGX-TCB-Info-Issuer-Chain"],
                )?,
                qe_identity_body: qe.body,
                qe_identity_issuer_chain_pem: header_chain(
                    &qe.headers,
                    &["SGX-Enclave-Identity-Issuer-Chain"],
                )?,
            };
            Collateral::from_dcap_parts(&parts, format!("PCCS {}", self.base))
        })
    }

    async fn get(&self, url: &str) -> Result<Response> {
        tokio::time::timeout(self.timeout, get(url))
            .await
            .map_err(|_| {
                Error::Pccs(format!(
                    "{url}: no answer within {}s",
                    self.timeout.as_secs()
                ))
            })?
    }
}

async fn get(url: &str) -> Result<Response> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| Error::Pccs(format!("{url}: bad URL: {e}")))?;
    let https = uri.scheme_str() == Some("https");
    let host = uri
        .host()
        .ok_or_else(|| Error::Pccs(format!("{url}: no host")))?
        .to_owned();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| Error::Pccs(format!("{url}: cannot connect: {e}")))?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let req = http::Request::get(path)
        .header(
            http::header::HOST,
            uri.authority().map_or(host.clone(), |a| a.to_string()),
        )
        .header(
            http::header::USER_AGENT,
            concat!("mse-attest/", env!("CARGO_PKG_VERSION")),
        )
        .body(Empty::<Bytes>::new())
        .map_err(|e| Error::Pccs(format!("{url}: {e}")))?;
    if https {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Pccs(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name = rustls_pki_types::ServerName::try_from(host.clone())
            .map_err(|e| Error::Pccs(format!("{url}: bad server name: {e}")))?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| Error::Pccs(format!("{url}: TLS: {e}")))?;
        send(url, hyper_util::rt::TokioIo::new(tls), req).await
    } else {
        send(url, hyper_util::rt::TokioIo::new(tcp), req).await
    }
}

async fn send<T>(url: &str, io: T, req: http::Request<Empty<Bytes>>) -> Result<Response>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| Error::Pccs(format!("{url}: {e}")))?;
    let driver = tokio::spawn(conn);
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| Error::Pccs(format!("{url}: {e}")))?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = http_body_util::Limited::new(resp.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| Error::Pccs(format!("{url}: reading the body: {e}")))?
        .to_bytes()
        .to_vec();
    driver.abort();
    if !status.is_success() {
        return Err(Error::Pccs(format!("{url}: HTTP {status}")));
    }
    Ok(Response { body, headers })
}

/// A CRL body: hex text of DER (PCCS rootcacrl), DER, or PEM.
fn crl_body(b: &[u8]) -> Result<Vec<u8>> {
    let text = std::str::from_utf8(b).ok().map(str::trim);
    if let Some(t) = text {
        if let Ok(d) = hex::decode(t) {
            return Ok(d);
        }
        if let Ok(p) = pem::parse(t) {
            return Ok(p.into_contents());
        }
    }
    if b.first() == Some(&0x30) {
        return Ok(b.to_vec());
    }
    Err(Error::Pccs("a CRL body is neither DER, hex nor PEM".into()))
}

fn header_chain(h: &http::HeaderMap, names: &[&str]) -> Result<String> {
    let v = names
        .iter()
        .find_map(|n| h.get(*n))
        .ok_or_else(|| Error::Pccs(format!("missing header {}", names.join(" or "))))?;
    let raw = v
        .to_str()
        .map_err(|_| Error::Pccs(format!("header {} is not text", names.join("/"))))?;
    percent_decode(raw)
}

fn percent_decode(s: &str) -> Result<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let h = b
                .get(i + 1..i + 3)
                .and_then(|x| std::str::from_utf8(x).ok())
                .and_then(|x| u8::from_str_radix(x, 16).ok());
            let byte = h.ok_or_else(|| {
                Error::Pccs("bad percent-encoding in an issuer chain header".into())
            })?;
            out.push(byte);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| Error::Pccs("issuer chain header is not UTF-8".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(
            percent_decode("-----BEGIN%20CERT%0A").unwrap(),
            "-----BEGIN CERT\n"
        );
        assert!(percent_decode("%zz").is_err());
        assert!(percent_decode("%4").is_err());
    }
}
