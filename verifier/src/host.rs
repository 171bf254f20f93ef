//! Host state at start (kernel, modules, LSMs, runtime binaries) and the spec's security settings,
//! and the `[rule.host]` checks over them.
//!
//! Groundwork: not wired into the gate yet.
