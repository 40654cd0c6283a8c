//! The integration tests of mse-attest, in one binary: each module was its own test binary, and
//! linking a dozen of them cold took minutes of CI's budget. Run one module with
//! `cargo test -p mse-attest --test it MODULE::`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

mod parse;
#[cfg(feature = "pccs")]
mod pccs;
mod policy;
mod sgx;
mod sim;
mod snp;
mod tdx;
mod testdata;
