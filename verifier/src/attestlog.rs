//! The attestation log: one DSSE-signed, hash-chained in-toto record per start decision.
//!
//! Groundwork: not wired into the gate yet.
