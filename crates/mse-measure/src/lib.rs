//! The simulated enclave measurement: a canonical manifest of node binary, Python runtime, encrypted code and launch arguments.
//! Contract: docs/design/contracts.md (mse-measure).
