//! SEV-SNP verification: VCEK/VLEK → ASK/ASVK → pinned ARK, report signature over the bytes
//! as received, and the report's TCB and chip id against the VCEK's extensions.

use std::time::SystemTime;

use p384::ecdsa::signature::Verifier as _;
use sev::certs::snp::{Certificate as SevCert, Chain, Verifiable, builtin, ca};

use crate::collateral::Collateral;
use crate::error::{Error, Result, Step};
use crate::policy::Policy;
use crate::snp::{CertKind, Evidence, Generation, SigningKey};
use crate::verify::Appraisal;
use crate::{TeeKind, pki};

/// AMD SEV VLEK signing keys (ASVK), from AMD KDS `vlek/v1/<gen>/cert_chain`. Not trust
/// anchors: each is checked against the pinned ARK like any intermediate.
const ASVK_MILAN: &[u8] = include_bytes!("roots/amd/asvk-milan.der");
const ASVK_GENOA: &[u8] = include_bytes!("roots/amd/asvk-genoa.der");
const ASVK_TURIN: &[u8] = include_bytes!("roots/amd/asvk-turin.der");

const OID_BL_SPL: &str = "1.3.6.1.4.1.3704.1.3.1";
const OID_TEE_SPL: &str = "1.3.6.1.4.1.3704.1.3.2";
const OID_SNP_SPL: &str = "1.3.6.1.4.1.3704.1.3.3";
const OID_UCODE_SPL: &str = "1.3.6.1.4.1.3704.1.3.8";
const OID_FMC_SPL: &str = "1.3.6.1.4.1.3704.1.3.9";
const OID_HWID: &str = "1.3.6.1.4.1.3704.1.4";

fn chain_err(reason: impl Into<String>) -> Error {
    Error::verify(Step::AmdChain, reason)
}

/// The pinned ARK and the built-in ASK of a generation.
fn pinned(generation: Generation) -> Result<(SevCert, SevCert)> {
    let r = match generation {
        Generation::Milan => (builtin::milan::ark(), builtin::milan::ask()),
        Generation::Genoa => (builtin::genoa::ark(), builtin::genoa::ask()),
        Generation::Turin => (builtin::turin::ark(), builtin::turin::ask()),
    };
    match r {
        (Ok(ark), Ok(ask)) => Ok((ark, ask)),
        _ => Err(chain_err("cannot load the built-in AMD certificates")),
    }
}

fn asvk(generation: Generation) -> &'static [u8] {
    match generation {
        Generation::Milan => ASVK_MILAN,
        Generation::Genoa => ASVK_GENOA,
        Generation::Turin => ASVK_TURIN,
    }
}

fn generation_of(issuer_cn: &str) -> Option<Generation> {
    [Generation::Milan, Generation::Genoa, Generation::Turin]
        .into_iter()
        .find(|g| issuer_cn.ends_with(g.name()))
}

fn sev_cert(der: &[u8], what: &str) -> Result<SevCert> {
    SevCert::from_der(der).map_err(|e| chain_err(format!("{what}: {e}")))
}

pub(crate) fn appraise(
    bytes: &[u8],
    collateral: &Collateral,
    policy: &Policy,
    now: SystemTime,
    mut a: Appraisal,
) -> Result<Appraisal> {
    let ev = Evidence::parse(bytes)?;
    crate::verify::require_tee_pub(policy, TeeKind::SevSnp)?;
    let rep = &ev.report;

    // Which endorsement key, from the evidence or from the collateral.
    let (vek_kind, vek_cn) = match rep.signing_key() {
        SigningKey::Vcek => (CertKind::Vcek, "SEV-VCEK"),
        SigningKey::Vlek => (CertKind::Vlek, "SEV-VLEK"),
        SigningKey::None => {
            return Err(Error::verify(
                Step::ReportSignature,
                "the report is not signed (SIGNING_KEY = none)",
            ));
        }
        SigningKey::Reserved(v) => {
            return Err(Error::verify(
                Step::ReportSignature,
                format!("unknown SIGNING_KEY value {v}"),
            ));
        }
    };
    let from_collateral = |cn: &str| -> Option<Vec<u8>> {
        collateral
            .amd_certs
            .iter()
            .find(|d| {
                pki::parse_cert(d, "AMD certificate")
                    .map(|c| pki::cert_name(&c) == cn)
                    .unwrap_or(false)
            })
            .cloned()
    };
    let vek_der = ev
        .cert(vek_kind)
        .map(<[u8]>::to_vec)
        .or_else(|| from_collateral(vek_cn))
        .ok_or_else(|| {
            chain_err(format!(
                "no {vek_cn} certificate: the evidence carries none; give it as collateral (e.g. from AMD KDS)"
            ))
        })?;
    let vek_x509 = pki::parse_cert(&vek_der, "VCEK/VLEK").map_err(|e| chain_err(e.to_string()))?;
    let issuer_cn = vek_x509
        .issuer()
        .iter_common_name()
        .next()
        .and_then(|c| c.as_str().ok())
        .unwrap_or_default()
        .to_owned();
    let generation = generation_of(&issuer_cn).ok_or_else(|| {
        chain_err(format!(
            "{vek_cn} is issued by {issuer_cn:?}, not an AMD SEV signing key"
        ))
    })?;
    if let Some(hint) = rep.generation_hint()
        && hint != generation
    {
        return Err(chain_err(format!(
            "the report comes from a {} processor but its key is certified for {}",
            hint.name(),
            generation.name()
        )));
    }

    // ARK: always the pinned one; an ARK in the evidence must be identical.
    let (ark, builtin_ask) = pinned(generation)?;
    let ark_der = ark.to_der().map_err(|e| chain_err(e.to_string()))?;
    if let Some(given) = ev.cert(CertKind::Ark)
        && given != ark_der.as_slice()
    {
        return Err(chain_err(format!(
            "the ARK in the evidence is not AMD's pinned ARK-{}",
            generation.name()
        )));
    }
    // ASK (VCEK) or ASVK (VLEK): given, else AMD's.
    let ask_der = match (ev.cert(CertKind::Ask).map(<[u8]>::to_vec), vek_kind) {
        (Some(d), _) => d,
        (None, CertKind::Vlek) => from_collateral(&format!("SEV-VLEK-{}", generation.name()))
            .unwrap_or_else(|| asvk(generation).to_vec()),
        (None, _) => from_collateral(&format!("SEV-{}", generation.name())).map_or_else(
            || builtin_ask.to_der().map_err(|e| chain_err(e.to_string())),
            Ok,
        )?,
    };
    let chain = Chain {
        ca: ca::Chain {
            ark: ark.clone(),
            ask: sev_cert(&ask_der, "ASK")?,
        },
        vek: sev_cert(&vek_der, vek_cn)?,
    };
    (&chain).verify().map_err(|e| chain_err(format!("{e}")))?;
    pki::check_validity(
        &[vek_der.as_slice(), ask_der.as_slice(), ark_der.as_slice()],
        now,
        Step::AmdChain,
        "AMD certificate chain",
    )?;

    // The VCEK is derived for one TCB on one chip: they must be the report's.
    let tcb = rep.reported_tcb.parts(generation);
    let ext_u8 = |oid: &str| -> Option<u8> {
        vek_x509
            .extensions()
            .iter()
            .find(|e| e.oid.to_id_string() == oid)
            .and_then(|e| <u8 as der::Decode>::from_der(e.value).ok())
    };
    if vek_kind == CertKind::Vcek {
        let hwid = vek_x509
            .extensions()
            .iter()
            .find(|e| e.oid.to_id_string() == OID_HWID)
            .map(|e| e.value);
        if rep.chip_id == [0u8; 64] {
            a.warnings
                .push("CHIP_ID is masked in the report: not compared with the VCEK".into());
        } else if hwid != Some(rep.chip_id.as_slice()) {
            return Err(Error::verify(
                Step::Tcb,
                "the VCEK belongs to another chip (hwID ≠ the report's CHIP_ID)",
            ));
        }
    }

    let checks = [
        ("boot loader", OID_BL_SPL, Some(tcb.bootloader)),
        ("TEE", OID_TEE_SPL, Some(tcb.tee)),
        ("SNP", OID_SNP_SPL, Some(tcb.snp)),
        ("microcode", OID_UCODE_SPL, Some(tcb.microcode)),
        ("FMC", OID_FMC_SPL, tcb.fmc),
    ];
    for (name, oid, want) in checks {
        let Some(want) = want else { continue };
        match ext_u8(oid) {
            Some(v) if v == want => {}
            Some(v) => {
                return Err(Error::verify(
                    Step::Tcb,
                    format!(
                        "{vek_cn} is for {name} SPL {v} but the report's REPORTED_TCB says {want}"
                    ),
                ));
            }
            None if vek_kind == CertKind::Vlek && oid == OID_FMC_SPL => {}
            None => {
                return Err(Error::verify(
                    Step::Tcb,
                    format!("{vek_cn} lacks the {name} SPL extension"),
                ));
            }
        }
    }
    // Report signature: ECDSA P-384 / SHA-384 over bytes 0..0x2A0 as received.
    if rep.signature_algo != 1 {
        return Err(Error::verify(
            Step::ReportSignature,
            format!(
                "signature algorithm {} is not ECDSA P-384",
                rep.signature_algo
            ),
        ));
    }
    let vek_pk =
        p384::ecdsa::VerifyingKey::from_sec1_bytes(&vek_x509.public_key().subject_public_key.data)
            .map_err(|e| chain_err(format!("{vek_cn} key is not P-384: {e}")))?;
    let mut r_be: Vec<u8> = rep.signature_r.get(..48).unwrap_or_default().to_vec();
    let mut s_be: Vec<u8> = rep.signature_s.get(..48).unwrap_or_default().to_vec();
    r_be.reverse();
    s_be.reverse();
    let sig = p384::ecdsa::Signature::from_scalars(
        p384::FieldBytes::clone_from_slice(&r_be),
        p384::FieldBytes::clone_from_slice(&s_be),
    )
    .map_err(|e| Error::verify(Step::ReportSignature, format!("malformed signature: {e}")))?;
    vek_pk.verify(rep.signed_bytes(), &sig).map_err(|_| {
        Error::verify(
            Step::ReportSignature,
            format!("the report is not signed by the {vek_cn} key"),
        )
    })?;

    if rep.debug() && !policy.allow_debug {
        return Err(Error::verify(
            Step::PolicyDebug,
            "the guest policy allows debugging (POLICY.DEBUG): the host can read and change guest memory. Refused unless the policy allows debug",
        ));
    }
    if let Some(min) = policy.min_snp_tcb {
        let low = [
            ("boot loader", tcb.bootloader, min.bootloader),
            ("TEE", tcb.tee, min.tee),
            ("SNP", tcb.snp, min.snp),
            ("microcode", tcb.microcode, min.microcode),
        ]
        .into_iter()
        .find(|(_, have, want)| have < want);
        if let Some((name, have, want)) = low {
            return Err(Error::verify(
                Step::PolicyMinimumSvn,
                format!("{name} SPL {have} is below the minimum {want}"),
            ));
        }
    }
    if let Some(min) = policy.min_snp_guest_svn
        && rep.guest_svn < min
    {
        return Err(Error::verify(
            Step::PolicyMinimumSvn,
            format!("guest SVN {} is below the minimum {min}", rep.guest_svn),
        ));
    }

    a.measurement = rep.measurement.to_vec();
    a.debug = rep.debug();
    a.report_data = rep.report_data.to_vec();
    a.svn.guest_svn = Some(rep.guest_svn);
    a.svn.snp_reported_tcb = Some(tcb);
    a.tcb_status = format!(
        "{} {} matches REPORTED_TCB (boot loader {}, TEE {}, SNP {}, microcode {})",
        generation.name(),
        vek_cn,
        tcb.bootloader,
        tcb.tee,
        tcb.snp,
        tcb.microcode
    );
    if a.debug {
        a.warnings
            .push("debuggable guest accepted by policy: the host can read its memory".into());
    }
    Ok(a)
}
