//! Produce TEE evidence inside the node: simulation, Gramine SGX (/dev/attestation) and configfs-tsm (TDX, SEV-SNP).
//! Contract: docs/design/contracts.md (mse-tee).
