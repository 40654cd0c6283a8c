//! Parse and verify TEE evidence (SGX, TDX, SEV-SNP, simulation) and RA-TLS certificates, with time and policy as inputs.
//! Contract: docs/design/contracts.md (mse-attest).
