//! The enclave node: the program that runs inside the TEE.
//!
//! It proves what it runs (an RA-TLS certificate whose quote binds its TLS key and its enclave
//! key), receives the app's code key and secrets over that certificate, decrypts and imports the
//! app, and serves it over HTTPS. The modules follow that story:
//!
//! * [`cli`] and [`paths`]: what to run and where (the original bootstrap's flags and variables);
//! * [`identity`]: keys, quote, certificate;
//! * [`provision`]: the configuration payload, checked completely before anything is written;
//! * [`server`]: one listener through the configuring, starting and serving phases;
//! * [`tls`]: rustls configurations;
//! * [`runtime`]: the Python runtime, as measured and as readable by the app;
//! * [`sandbox`]: private storage, Landlock and seccomp, applied in the start-up order;
//! * [`sched`]: the scheduling policy of the node's threads;
//! * [`node`]: that order.
//!
//! Contract: docs/design/contracts.md (mse-node); behaviour: docs/node.md.

pub mod cli;
pub mod identity;
pub mod node;
pub mod paths;
pub mod provision;
pub mod runtime;
pub mod sandbox;
pub mod sched;
pub mod server;
pub mod tls;

pub use node::run;
pub use provision::payload::{parse_configuration, parse_sealed_secrets};
