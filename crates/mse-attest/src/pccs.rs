//! PCCS v4 client (feature `pccs`): fetch DCAP collateral for a quote, with an on-disk cache.
//!
//! Endpoints (Intel PCCS API v4, reference §4.4), under `<base>/sgx/certification/v4/`
//! (`tdx/…` for TCB info and QE identity of TDX quotes):
//! `rootcacrl` (body: hex text of the DER CRL, or DER), `pckcrl?ca=platform|processor&encoding=der`
//! (header `SGX-PCK-CRL-Issuer-Chain`), `tcb?fmspc=<HEX>` (header `TCB-Info-Issuer-Chain`, or
//! `SGX-TCB-Info-Issuer-Chain` from v3 servers), `qe/identity` (header
//! `SGX-Enclave-Identity-Issuer-Chain`). Issuer chains are URL-encoded PEM.
//!
//! The client is blocking (a private current-thread tokio runtime, on a thread of its own,
//! drives hyper), so it can be called from a CLI or a test without an async context; from
//! async code, call it through `spawn_blocking`. HTTPS uses rustls with the Mozilla roots
//! (webpki-roots); `http://` is accepted for a PCCS on the local network or loopback.
//!
//! An answer is checked before it is used or cached: every body within [`MAX_BODY`], issuer
//! chains that decode, TCB info and QE identity for this TEE and this platform's FMSPC, their
//! signatures by a chain to the pinned Intel root, and CRLs signed by their issuers. A PCCS that
//! answers anything else fails closed with an error naming the endpoint, and poisons no cache.
//!
//! Cache: one JSON file per (PCCS, TEE, FMSPC, CA) in the cache directory. A cached entry is
//! used while every item is current at `now` (no request at all); otherwise the PCCS is asked,
//! and if it fails the stale entry is returned as [`Origin::StaleCache`], so the verifier
//! reports it as stale rather than hiding it. Cache write failures only cost a request later.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use sha2::{Digest, Sha256};

use crate::collateral::{Collateral, DcapParts};
use crate::error::{Error, Result};
use crate::ratls::RawEvidence;
use crate::verify::INTEL_SGX_ROOT_CA_DER;
use crate::{TeeKind, dcap, pki, sgx, tdx};

/// Bodies larger than this are refused (collateral is tens of kB).
pub const MAX_BODY: usize = 1 << 20;

/// A PCCS client.
#[derive(Clone, Debug)]
pub struct PccsClient {
    base: String,
    cache_dir: Option<PathBuf>,
    timeout: Duration,
}

/// Where the collateral returned by [`PccsClient::collateral_for`] came from.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// Fetched from the PCCS by this call (and cached, if the client has a cache).
    Pccs,
    /// A cached copy, current at the verification time: no request was made.
    Cache,
    /// A cached copy that is not current at the verification time, returned because the PCCS
    /// failed (`pccs_error` says how). The verifier reports the collateral as stale.
    StaleCache {
        /// Why the PCCS could not give current collateral.
        pccs_error: String,
    },
    /// This evidence takes no collateral from a PCCS (SEV-SNP, mse simulation, or a chain that
    /// does not end at the Intel root, which the verifier refuses with the reason): no request
    /// was made and the collateral is empty.
    NotNeeded,
}

/// Collateral and where it came from.
#[derive(Clone, Debug)]
pub struct Fetched {
    /// The collateral, ready for [`crate::verify::verify_at`]. Its source names the PCCS.
    pub collateral: Collateral,
    /// Where it came from.
    pub origin: Origin,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tee {
    Sgx,
    Tdx,
}

impl Tee {
    fn path(self) -> &'static str {
        match self {
            Tee::Sgx => "sgx",
            Tee::Tdx => "tdx",
        }
    }
    fn tcb_info_id(self) -> &'static str {
        match self {
            Tee::Sgx => "SGX",
            Tee::Tdx => "TDX",
        }
    }
    fn qe_identity_id(self) -> &'static str {
        match self {
            Tee::Sgx => "QE",
            Tee::Tdx => "TD_QE",
        }
    }
}

struct Response {
    body: Vec<u8>,
    headers: http::HeaderMap,
}

impl PccsClient {
    /// `base` is the PCCS URL (`https://pccs.example.com:8081`); an API path
    /// (`/sgx/certification/v4`) at its end is dropped.
    pub fn new(base: &str) -> Result<Self> {
        let base = base
            .trim()
            .trim_end_matches('/')
            .trim_end_matches("/sgx/certification/v4")
            .trim_end_matches("/tdx/certification/v4")
            .to_owned();
        let authority = base
            .strip_prefix("https://")
            .or_else(|| base.strip_prefix("http://"));
        match authority {
            Some(a) if !a.is_empty() && base.parse::<http::Uri>().is_ok() => {}
            _ => {
                return Err(Error::Usage(format!(
                    "PCCS URL {base:?} must be an http:// or https:// URL, e.g. https://pccs.example.com:8081"
                )));
            }
        }
        Ok(PccsClient {
            base,
            cache_dir: None,
            timeout: Duration::from_secs(30),
        })
    }

    /// The PCCS URL, as used in requests and reports.
    pub fn base(&self) -> &str {
        &self.base
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

    /// Collateral for an SGX or TDX quote, current at `now` if the cache or the PCCS has it.
    /// SEV-SNP and simulation evidence need none ([`Origin::NotNeeded`]).
    ///
    /// Blocks for up to four requests (each within the timeout); from async code, call it in
    /// `spawn_blocking`. Errors: evidence that does not parse ([`Error::Malformed`]); a PCCS
    /// that cannot be reached or answers unusable collateral while no cached copy exists
    /// ([`Error::Pccs`]).
    pub fn collateral_for(&self, evidence: &RawEvidence, now: SystemTime) -> Result<Fetched> {
        let (tee, chain) = match evidence.kind {
            // Simulation quotes share the SGX layout; their chain is not Intel's (below).
            TeeKind::Sgx | TeeKind::Sim => {
                (Tee::Sgx, sgx::Quote::parse(&evidence.bytes)?.pck_chain()?)
            }
            TeeKind::Tdx => (Tee::Tdx, tdx::Quote::parse(&evidence.bytes)?.pck_chain()?),
            TeeKind::SevSnp => return Ok(not_needed()),
        };
        // Only chains to the Intel root have PCCS collateral; the verifier decides about the
        // others (a simulation root, or a forgery) and says why, without asking any server.
        if chain.last().map(Vec::as_slice) != Some(INTEL_SGX_ROOT_CA_DER) {
            return Ok(not_needed());
        }
        let [leaf, pck_ca, ..] = chain.as_slice() else {
            return Err(Error::malformed(
                "quote",
                "the PCK chain has no PCK CA certificate",
            ));
        };
        let info = dcap::pck_info(leaf)?;
        let fmspc = hex::encode_upper(info.fmspc);
        let ca = info.ca.as_str();
        let key = hex::encode(Sha256::digest(format!(
            "{}|{}|{fmspc}|{ca}",
            self.base,
            tee.path()
        )));
        let cache_file = self
            .cache_dir
            .as_ref()
            .map(|d| d.join(format!("{key}.json")));

        let cached = cache_file
            .as_ref()
            .and_then(|f| std::fs::read(f).ok())
            .and_then(|b| Collateral::from_json(&b).ok())
            .filter(Collateral::has_dcap);
        if let Some(c) = &cached
            && is_current(c, now)
        {
            let mut c = c.clone();
            c.source = format!("PCCS {} (cached)", self.base);
            return Ok(Fetched {
                collateral: c,
                origin: Origin::Cache,
            });
        }
        let fetched = self
            .fetch(tee, &fmspc, ca)
            .and_then(|c| check(&c, tee, &fmspc, pck_ca, now).map(|()| c));
        match fetched {
            Ok(c) => {
                if let Some(file) = &cache_file {
                    store(file, &c);
                }
                Ok(Fetched {
                    collateral: c,
                    origin: Origin::Pccs,
                })
            }
            Err(e) => match cached {
                Some(mut c) => {
                    c.source = format!("PCCS {} (stale cached copy; {e})", self.base);
                    Ok(Fetched {
                        collateral: c,
                        origin: Origin::StaleCache {
                            pccs_error: e.to_string(),
                        },
                    })
                }
                None => Err(e),
            },
        }
    }

    /// The requests run on a private runtime in a thread of their own, so that no caller's
    /// async context can make tokio refuse to block.
    fn fetch(&self, tee: Tee, fmspc: &str, ca: &str) -> Result<Collateral> {
        std::thread::scope(|s| {
            s.spawn(|| self.fetch_here(tee, fmspc, ca))
                .join()
                .unwrap_or_else(|_| Err(Error::Pccs("the HTTP thread failed".into())))
        })
    }

    fn fetch_here(&self, tee: Tee, fmspc: &str, ca: &str) -> Result<Collateral> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Pccs(format!("cannot start the HTTP runtime: {e}")))?;
        rt.block_on(async {
            let sgx = format!("{}/sgx/certification/v4", self.base);
            let teeb = format!("{}/{}/certification/v4", self.base, tee.path());
            let root_url = format!("{sgx}/rootcacrl");
            let pck_url = format!("{sgx}/pckcrl?ca={ca}&encoding=der");
            let tcb_url = format!("{teeb}/tcb?fmspc={fmspc}");
            let qe_url = format!("{teeb}/qe/identity");
            let root = self.get(&root_url).await?;
            let pck = self.get(&pck_url).await?;
            let tcb = self.get(&tcb_url).await?;
            let qe = self.get(&qe_url).await?;
            let parts = DcapParts {
                root_ca_crl_der: crl_body(&root_url, &root.body)?,
                pck_crl_der: crl_body(&pck_url, &pck.body)?,
                pck_crl_issuer_chain_pem: header_chain(
                    &pck_url,
                    &pck.headers,
                    &["SGX-PCK-CRL-Issuer-Chain"],
                )?,
                tcb_info_body: tcb.body,
                tcb_info_issuer_chain_pem: header_chain(
                    &tcb_url,
                    &tcb.headers,
                    &["TCB-Info-Issuer-Chain", "SGX-TCB-Info-Issuer-Chain"],
                )?,
                qe_identity_body: qe.body,
                qe_identity_issuer_chain_pem: header_chain(
                    &qe_url,
                    &qe.headers,
                    &["SGX-Enclave-Identity-Issuer-Chain"],
                )?,
            };
            Collateral::from_dcap_parts(&parts, format!("PCCS {}", self.base)).map_err(|e| {
                Error::Pccs(format!(
                    "{}: the answer is not DCAP collateral: {e}",
                    self.base
                ))
            })
        })
    }

    async fn get(&self, url: &str) -> Result<Response> {
        tokio::time::timeout(self.timeout, get(url))
            .await
            .map_err(|_| {
                Error::Pccs(format!(
                    "{url}: no answer within {}s",
                    self.timeout.as_secs_f32()
                ))
            })?
    }
}

fn not_needed() -> Fetched {
    Fetched {
        collateral: Collateral::none(),
        origin: Origin::NotNeeded,
    }
}

fn is_current(c: &Collateral, now: SystemTime) -> bool {
    let t = pki::unix(now);
    matches!(c.window(), Ok(Some(w)) if w.expired_at(t).is_empty() && w.future_at(t).is_empty())
}

/// Write atomically (temporary file, then rename), so a concurrent reader never sees half a
/// file. Failures are ignored: the cache only saves requests.
fn store(file: &std::path::Path, c: &Collateral) {
    let Ok(json) = c.to_json() else { return };
    if let Some(dir) = file.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let tmp = file.with_extension(format!("{}.tmp", std::process::id()));
    if std::fs::write(&tmp, json).is_ok() && std::fs::rename(&tmp, file).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

/// Is this PCCS answer Intel's collateral for this platform? Checked before it is used or
/// cached, so a wrong answer fails here with the endpoint named, not later as a verification
/// failure that the cache would repeat until the entry expires.
fn check(c: &Collateral, tee: Tee, fmspc: &str, pck_ca_der: &[u8], now: SystemTime) -> Result<()> {
    let bad = |what: &str, e: &dyn std::fmt::Display| {
        Error::Pccs(format!(
            "{what}: {e}; the PCCS answered something that is not Intel's collateral for this platform"
        ))
    };
    let d = c.dcap().ok_or_else(|| bad("collateral", &"no DCAP part"))?;
    c.window().map_err(|e| bad("collateral", &e))?;

    let tcb: serde_json::Value =
        serde_json::from_str(&d.tcb_info).map_err(|e| bad("TCB info", &e))?;
    let id = tcb.get("id").and_then(|v| v.as_str()).unwrap_or("SGX");
    if id != tee.tcb_info_id() {
        return Err(bad(
            "TCB info",
            &format!("it is {id} TCB info, asked for {}", tee.tcb_info_id()),
        ));
    }
    let got = tcb.get("fmspc").and_then(|v| v.as_str()).unwrap_or("");
    if !got.eq_ignore_ascii_case(fmspc) {
        return Err(bad(
            "TCB info",
            &format!("it is for FMSPC {got:?}, asked for {fmspc}"),
        ));
    }
    let qe: serde_json::Value =
        serde_json::from_str(&d.qe_identity).map_err(|e| bad("QE identity", &e))?;
    let id = qe.get("id").and_then(|v| v.as_str()).unwrap_or("QE");
    if id != tee.qe_identity_id() {
        return Err(bad(
            "QE identity",
            &format!(
                "it is the identity of {id}, asked for {}",
                tee.qe_identity_id()
            ),
        ));
    }

    for (what, chain, json, sig) in [
        (
            "TCB info",
            &d.tcb_info_issuer_chain,
            &d.tcb_info,
            &d.tcb_info_signature,
        ),
        (
            "QE identity",
            &d.qe_identity_issuer_chain,
            &d.qe_identity,
            &d.qe_identity_signature,
        ),
    ] {
        crate::dcap_items::signed_json_item(what, chain, json, sig, pki::unix(now))
            .map_err(|e| bad("signed collateral", &e))?;
    }

    let root = pki::parse_cert(INTEL_SGX_ROOT_CA_DER, "Intel SGX Root CA")?;
    let pck_ca = pki::parse_cert(pck_ca_der, "PCK CA certificate")?;
    for (what, der, issuer) in [
        ("root CA CRL", &d.root_ca_crl, &root),
        ("PCK CRL", &d.pck_crl, &pck_ca),
    ] {
        crate::dcap_items::signed_crl(what, der, issuer)
            .map_err(|e| bad("signed collateral", &e))?;
    }
    Ok(())
}

async fn get(url: &str) -> Result<Response> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| Error::Pccs(format!("{url}: bad URL: {e}")))?;
    let https = uri.scheme_str() == Some("https");
    let host = uri
        .host()
        .ok_or_else(|| Error::Pccs(format!("{url}: no host")))?
        .trim_matches(['[', ']'])
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
        .await;
    driver.abort();
    if !status.is_success() {
        return Err(Error::Pccs(format!(
            "{url}: HTTP {status}: is this a PCCS serving Intel's v4 API, and does it know this platform?"
        )));
    }
    let body = body
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Error::Pccs(format!(
                    "{url}: the answer is larger than {} KiB, which no collateral is",
                    MAX_BODY / 1024
                ))
            } else {
                Error::Pccs(format!("{url}: reading the answer: {e}"))
            }
        })?
        .to_bytes()
        .to_vec();
    Ok(Response { body, headers })
}

/// A CRL body: hex text of DER (PCCS rootcacrl), DER, or PEM.
fn crl_body(url: &str, b: &[u8]) -> Result<Vec<u8>> {
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
    Err(Error::Pccs(format!(
        "{url}: the answer is not a CRL (neither DER, hex nor PEM)"
    )))
}

fn header_chain(url: &str, h: &http::HeaderMap, names: &[&str]) -> Result<String> {
    let v = names.iter().find_map(|n| h.get(*n)).ok_or_else(|| {
        Error::Pccs(format!(
            "{url}: the answer has no {} header",
            names.join(" or ")
        ))
    })?;
    let raw = v.to_str().map_err(|_| {
        Error::Pccs(format!(
            "{url}: the {} header is not ASCII text",
            names.join("/")
        ))
    })?;
    percent_decode(raw).map_err(|e| Error::Pccs(format!("{url}: {}: {e}", names.join("/"))))
}

/// Decode `%XX` escapes (Intel encodes issuer chains like `encodeURIComponent`).
fn percent_decode(s: &str) -> std::result::Result<String, &'static str> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let h = b
                .get(i + 1..i + 3)
                .and_then(|x| std::str::from_utf8(x).ok())
                .and_then(|x| u8::from_str_radix(x, 16).ok());
            out.push(h.ok_or("bad percent-encoding")?);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "not UTF-8 once decoded")
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
        assert!(percent_decode("%ff").is_err());
    }

    #[test]
    fn urls() {
        for ok in [
            "https://pccs.example.com:8081",
            "http://127.0.0.1:8081/",
            "https://pccs.example.com/sgx/certification/v4/",
        ] {
            let c = PccsClient::new(ok).unwrap();
            assert!(
                !c.base().ends_with('/') && !c.base().ends_with("/v4"),
                "{ok}"
            );
        }
        for bad in ["", "pccs.example.com", "ftp://x", "https://", "http://a b"] {
            assert!(PccsClient::new(bad).is_err(), "{bad}");
        }
    }
}
