//! Talk to an mse node: fetch and pin its RA-TLS certificate, send the configuration payload, probe readiness, fetch fresh evidence.
//! Contract: docs/design/contracts.md (mse-client).
