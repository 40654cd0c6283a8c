//! The integration tests of mse-measure, in one binary: each module was its own test binary, and
//! linking a dozen of them cold took minutes of CI's budget. Run one module with
//! `cargo test -p mse-measure --test it MODULE::`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod cache;
mod helloworld;
mod measure;
mod python_reference;
