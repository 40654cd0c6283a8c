//! The enclave node: RA-TLS identity, configuration server, code decryption and the app server (hyper + rustls) over the embedded Python app.
//! Contract: docs/design/contracts.md (mse-node).
