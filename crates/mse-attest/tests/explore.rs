mod common;
use common::*;
use mse_attest::{collateral::Collateral, policy::Policy, ratls::*, verify::*, evidence_file::EvidenceFile};

#[test]
fn explore() {
    let ev = EvidenceFile::parse(&fixture("tee/mse/evidence-home-2023-05.json")).unwrap();
    let cert = ev.certificate().unwrap();
    let coll = ev.collateral().unwrap();
    println!("window {:#?}", coll.window());
    let r = verify_certificate_at(&cert, &coll, &Policy::mse_compatible(), &Expected::default(), day(2023,6,1));
    println!("{r:#?}");
    let r = verify_certificate_at(&cert, &coll, &Policy::mse_compatible(), &Expected::default(), SystemTime::now());
    println!("{r:#?}");
    let r = verify_certificate_at(&cert, &coll, &Policy::default_strict(), &Expected::default(), day(2023,6,1));
    println!("{r:#?}");
    for f in ["dcap-qvl/sgx_quote", "dcap-qvl/tdx_quote"] {
        let c = Collateral::from_dcap_qvl_json(&fixture(&format!("{f}_collateral.json")), "x").unwrap();
        let w = c.window().unwrap().unwrap();
        println!("{f} window {} .. {}", w.latest_issue(), w.earliest_expiry());
        let kind = if f.contains("tdx") { mse_attest::TeeKind::Tdx } else { mse_attest::TeeKind::Sgx };
        let r = verify_at(&RawEvidence{kind, bytes: fixture(f)}, &c, &Policy::mse_compatible(), &Expected::default(), at_unix(w.latest_issue()+1));
        println!("{r:#?}");
    }
}
use std::time::SystemTime;
