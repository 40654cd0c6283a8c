//! The integration tests of mse-node, in one binary: each module was its own test binary, and
//! linking a dozen of them cold took minutes of CI's budget. Run one module with
//! `cargo test -p mse-node --test it MODULE::`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

mod asgi;
mod bad_inputs;
mod certificate;
mod helloworld;
mod lifecycle;
mod mse_cli;
mod sandbox;
mod wsgi_validator;
