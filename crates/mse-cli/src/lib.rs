//! The mse command line: scaffold, localtest, deploy (local sim by default), verify, status, logs, stop, context.
//! Contract: docs/design/contracts.md (mse-cli).
