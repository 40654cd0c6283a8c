//! The cryptography of mse, and the only crate that calls primitives directly.
//! Contract: docs/design/contracts.md (mse-crypto).
