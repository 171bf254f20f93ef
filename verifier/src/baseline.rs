//! Baselines a measured root filesystem is compared with: the signed image's own layers, or the
//! files an SBOM declares.
//!
//! Groundwork: not wired into the gate yet.
