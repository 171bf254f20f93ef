//! The gate's checks on the OCI runtime spec (`config.json`) that runc will run.
//!
//! They judge the spec itself, not what asked for it: a pod manifest, an annotation or a
//! containerd client's options can say anything, while the spec is what runc applies. Each check
//! is pure (the spec as JSON, and what the gate learnt from containerd's own records) and returns
//! one line per violation; the gate decides what a violation means (enforce or audit).
//!
//! - [`pod_security`]: the Kubernetes Pod Security Standards (`privileged`, `baseline`,
//!   `restricted`) as far as the OCI spec shows them;
//! - [`exec`]: an exec's process may not exceed its container's init process.

pub mod exec;
pub mod pod_security;
