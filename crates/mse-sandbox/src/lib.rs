//! Confine the hosted app: seccomp (no new processes), Landlock, private non-persistent storage with a quota, resource limits.
//! Contract: docs/design/contracts.md (mse-sandbox).
