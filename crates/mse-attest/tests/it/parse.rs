//! Every evidence file parses into typed fields, and the parsers fail (never panic) on
//! truncated or corrupted input.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use crate::common;
use common::*;

use mse_attest::ratls::RaTlsCertificate;
use mse_attest::snp::{CertKind, CertTableLayout, Evidence as SnpEvidence};
use mse_attest::{TeeKind, dcap, evidence_file::EvidenceFile, sgx, snp, tdx};

#[test]
fn intel_sgx_ra_quote_has_the_published_identity() {
    let q = sgx::Quote::parse(&fixture("tee/sgx/quote-intel-sgx-ra.dat")).unwrap();
    assert_eq!(
        hex::encode(q.mr_enclave()),
        "e413a4ed616c7a79634d5ca05a2fda746a1f0c71349a80b25a02828846fab90e"
    );
    assert_eq!(
        hex::encode(q.mr_signer()),
        "ac2c9fa87e4c91768b1d0c47169466c50d5a98c790639fbaefe7352a59919980"
    );
    assert_eq!(q.report_data(), &[0u8; 64]);
    assert_eq!(q.body().attributes.flags, 5);
    assert!(!q.debug());
    assert_eq!(q.header().qe_vendor_id, dcap::INTEL_QE_VENDOR_ID);
    let chain = q.pck_chain().unwrap();
    assert_eq!(chain.len(), 3);
    assert_eq!(chain[2], mse_attest::verify::INTEL_SGX_ROOT_CA_DER);
    let pck = dcap::pck_info(&chain[0]).unwrap();
    assert_eq!(hex::encode(pck.fmspc), "30606a000000");
    assert_eq!(pck.ca, dcap::PckCa::Platform);
}

// THREAT: T3 — every SGX quote parses.
#[test]
fn every_sgx_quote_parses() {
    for f in [
        "tee/sgx/quote-intel-sgx-ra.dat",
        "tee/sgx/mse-quote-full-report-data.dat",
        "tee/sgx/azure-sgx-quote.dat",
        "dcap-qvl/sgx_quote",
    ] {
        let q = sgx::Quote::parse(&fixture(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(q.header().version, 3, "{f}");
        assert_eq!(q.signed_bytes().len(), sgx::SIGNED_LEN);
        assert!(!q.pck_chain().unwrap().is_empty());
    }
    let q = sgx::Quote::parse(&fixture("tee/sgx/mse-quote-full-report-data.dat")).unwrap();
    assert_eq!(
        hex::encode(q.mr_enclave()),
        "f07830d7d2f8c67f64438303f3bc1a2e29f603ad1ab60ef94fd41d2bf7231866"
    );
    assert_eq!(q.isv_prod_id(), 1);
    assert_eq!(q.isv_svn(), 10);
    assert!(
        q.report_data()[32..].iter().any(|&b| b != 0),
        "full report data carries the enclave key"
    );
}

#[test]
fn every_tdx_quote_parses_with_padding_accounted() {
    for (f, version, padding) in [
        ("tee/tdx/tdx-quote.dat", 4, 3253),
        ("tee/tdx/azure-tdx-quote.bin", 4, 70),
        ("dcap-qvl/tdx_quote", 4, 70),
        ("dcap-qvl/tdx_quote_outdated", 5, 0),
        ("dcap-qvl/tdx_quote_td15ex", 5, 0),
    ] {
        let q = tdx::Quote::parse(&fixture(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(q.header().version, version, "{f}");
        assert_eq!(q.padding(), padding, "{f}");
        assert_eq!(q.measurement().len(), 240);
        assert_eq!(&q.measurement()[..48], q.mr_td());
        assert!(!q.debug(), "{f}");
    }
    let ex = tdx::Quote::parse(&fixture("dcap-qvl/tdx_quote_td15ex")).unwrap();
    assert!(ex.report().tee_tcb_svn2.is_some() && ex.report().ex.is_some());
}

#[test]
fn nonzero_trailing_bytes_are_refused() {
    let mut q = fixture("tee/tdx/tdx-quote.dat");
    *q.last_mut().unwrap() = 1;
    let e = tdx::Quote::parse(&q).unwrap_err().to_string();
    assert!(e.contains("trailing"), "{e}");
    let mut s = fixture("dcap-qvl/sgx_quote");
    s.push(7);
    assert!(sgx::Quote::parse(&s).is_err());
}

#[test]
fn snp_reports_and_their_certificate_tables() {
    let with = SnpEvidence::parse(&fixture("tee/snp/report-with-ark-ask-vcek.bin")).unwrap();
    assert_eq!(with.layout, CertTableLayout::LengthPrefixed);
    let kinds: Vec<_> = with.certs.iter().map(|c| c.kind).collect();
    assert_eq!(kinds, [CertKind::Ark, CertKind::Vcek, CertKind::Ask]);
    assert_eq!(with.report.version, 5);
    assert_eq!(with.report.signing_key(), snp::SigningKey::Vcek);
    assert_eq!(with.report.generation_hint(), Some(snp::Generation::Milan));

    let vlek = SnpEvidence::parse(&fixture("tee/snp/report-vlek.bin")).unwrap();
    assert_eq!(vlek.layout, CertTableLayout::Serialized);
    assert_eq!(vlek.certs.len(), 1);
    assert_eq!(vlek.certs[0].kind, CertKind::Vlek);
    assert_eq!(vlek.report.signing_key(), snp::SigningKey::Vlek);

    let bare = SnpEvidence::parse(&fixture("tee/snp/report-no-cert.bin")).unwrap();
    assert_eq!(bare.layout, CertTableLayout::Absent);
    assert!(!bare.report.debug());
    assert_eq!(bare.report.measurement.len(), 48);

    let sev = hex::decode(
        String::from_utf8(fixture("sev/report_milan.hex"))
            .unwrap()
            .trim(),
    )
    .unwrap();
    let r = snp::Report::parse(&sev).unwrap();
    assert_eq!(r.version, 2);
}

#[test]
fn snp_certificate_table_layouts_round_trip() {
    let ev = SnpEvidence::parse(&fixture("tee/snp/report-with-ark-ask-vcek.bin")).unwrap();
    // What mse writes.
    let table = snp::encode_cert_table(&ev.certs).unwrap();
    assert_eq!(
        snp::parse_cert_table(&table).unwrap(),
        (ev.certs.clone(), CertTableLayout::LengthPrefixed)
    );
    // The AMD GHCB layout (configfs-tsm auxblob): entries, a zero entry, then the data.
    let mut ghcb = Vec::new();
    let mut data = Vec::new();
    let header_len = (ev.certs.len() + 1) * 24;
    for c in &ev.certs {
        ghcb.extend_from_slice(&c.kind.guid());
        ghcb.extend_from_slice(
            &u32::try_from(header_len + data.len())
                .unwrap()
                .to_le_bytes(),
        );
        ghcb.extend_from_slice(&u32::try_from(c.der.len()).unwrap().to_le_bytes());
        data.extend_from_slice(&c.der);
    }
    ghcb.extend_from_slice(&[0u8; 24]);
    ghcb.extend_from_slice(&data);
    assert_eq!(
        snp::parse_cert_table(&ghcb).unwrap(),
        (ev.certs, CertTableLayout::Ghcb)
    );
    assert!(snp::parse_cert_table(&[1, 2, 3]).is_err());
}

#[test]
fn every_ratls_certificate_parses() {
    for (f, kind, ca) in [
        ("tee/sgx/mse-cloud-ratls-cert.pem", TeeKind::Sgx, false),
        ("tee/sgx/debug-enclave-ratls-cert.pem", TeeKind::Sgx, true),
        ("tee/tdx/tdx-ratls-cert.pem", TeeKind::Tdx, true),
        ("tee/snp/sev-ratls-cert.pem", TeeKind::SevSnp, true),
    ] {
        let c = RaTlsCertificate::from_pem(&fixture_str(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(c.evidence().kind, kind, "{f}");
        assert_eq!(c.is_ca(), ca, "{f}");
        assert_eq!(c.tls_public_key()[0], 4);
        assert!(c.is_self_signed(), "{f}");
        assert!(!c.san().is_empty(), "{f}");
        assert_eq!(RaTlsCertificate::from_der(c.der()).unwrap(), c);
    }
    let cloud =
        RaTlsCertificate::from_pem(&fixture_str("tee/sgx/mse-cloud-ratls-cert.pem")).unwrap();
    assert_eq!(
        cloud.san(),
        &[mse_attest::ratls::San::Dns(
            "a161fb86cbfc77f0.cosmian.app".into()
        )]
    );
    let q = sgx::Quote::parse(&cloud.evidence().bytes).unwrap();
    assert_eq!(
        hex::encode(q.mr_enclave()),
        "b1ef922543fa54de9d45da6639713efd3386fa27553709b15a94485f9009401b"
    );
    assert_eq!(
        &q.report_data()[..32],
        &mse_attest::report_data::tls_key_hash(cloud.tls_public_key())
    );
    let dbg =
        RaTlsCertificate::from_pem(&fixture_str("tee/sgx/debug-enclave-ratls-cert.pem")).unwrap();
    assert!(sgx::Quote::parse(&dbg.evidence().bytes).unwrap().debug());
}

#[test]
fn a_certificate_without_evidence_is_not_ratls() {
    let pck = fixture_str("tee/sgx/pck-platform-ca.pem");
    let e = RaTlsCertificate::from_pem(&pck).unwrap_err().to_string();
    assert!(e.contains("not an RA-TLS certificate"), "{e}");
}

#[test]
fn pck_certificates_of_both_cas() {
    for (f, ca) in [
        ("tee/sgx/pck-platform-ca.pem", dcap::PckCa::Platform),
        ("tee/sgx/pck-processor-ca.pem", dcap::PckCa::Processor),
    ] {
        let der = pem::parse(fixture(f)).unwrap().into_contents();
        let info = dcap::pck_info(&der).unwrap();
        assert_eq!(info.ca, ca, "{f}");
    }
}

#[test]
fn evidence_file_round_trips_and_signer_matches() {
    let raw = fixture("tee/mse/evidence-home-2023-05.json");
    let ev = EvidenceFile::parse(&raw).unwrap();
    assert_eq!(ev.input_args.app_id, "63322f85-1ff8-4483-91ae-f18d7398d157");
    assert_eq!(ev.input_args.expiration_date, Some(1714058115));
    assert_eq!(
        hex::encode(ev.signer_mr().unwrap()),
        "c1c161d0dd996e8a9847de67ea2c00226761f7715a2c422d3012ac10795a1ef5"
    );
    assert_eq!(
        hex::encode(
            sgx::mr_signer_from_rsa_pem(&fixture_str("tee/sgx/mse-signer-key.pem")).unwrap()
        ),
        "c1c161d0dd996e8a9847de67ea2c00226761f7715a2c422d3012ac10795a1ef5"
    );
    let q = sgx::Quote::parse(&ev.certificate().unwrap().evidence().bytes).unwrap();
    assert_eq!(q.mr_signer(), &ev.signer_mr().unwrap());
    // Written back as mse-cli writes it (4-space indent, same keys): byte-identical.
    let again = ev.to_json_pretty().unwrap();
    assert_eq!(EvidenceFile::parse(again.as_bytes()).unwrap(), ev);
    assert_eq!(again.trim_end(), String::from_utf8(raw).unwrap().trim_end());
    assert!(ev.collateral().unwrap().has_dcap());
}

/// Every strict prefix and a byte flip at every position: an error or a value, never a panic.
// THREAT: T3 — parsers never panic on truncated or corrupted input.
#[test]
fn parsers_never_panic_on_prefixes_or_flips() {
    let inputs: Vec<(&str, Vec<u8>)> = vec![
        ("sgx", fixture("dcap-qvl/sgx_quote")),
        ("tdx", fixture("dcap-qvl/tdx_quote")),
        ("snp", fixture("tee/snp/report-with-ark-ask-vcek.bin")),
        (
            "cert",
            pem::parse(fixture("tee/sgx/mse-cloud-ratls-cert.pem"))
                .unwrap()
                .into_contents(),
        ),
    ];
    let parse = |kind: &str, b: &[u8]| -> bool {
        match kind {
            "sgx" => sgx::Quote::parse(b).is_ok(),
            "tdx" => tdx::Quote::parse(b).is_ok(),
            "snp" => SnpEvidence::parse(b).is_ok(),
            _ => RaTlsCertificate::from_der(b).is_ok(),
        }
    };
    for (kind, input) in &inputs {
        let full_len = match *kind {
            "tdx" => tdx::Quote::parse(input).unwrap().as_bytes().len(),
            _ => input.len(),
        };
        for n in 0..full_len {
            if *kind == "snp" && n == snp::REPORT_LEN {
                assert!(parse(kind, &input[..n]), "a bare report parses");
                continue;
            }
            assert!(
                !parse(kind, &input[..n]),
                "{kind}: a {n}-byte prefix must not parse"
            );
        }
        for i in (0..input.len()).step_by(7) {
            let _ = parse(kind, &flip(input, i));
        }
    }
}
