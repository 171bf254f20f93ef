//! `vouch sbom`: an SBOM (SPDX 2.3 or CycloneDX 1.5 JSON) of an unpacked root filesystem or of an
//! image in an OCI image layout.
//!
//! - [`rootfs`]: the tree, walked from a directory without following symlinks;
//! - [`oci`]: the tree of an image of an OCI layout, its layers applied in memory.
//!
//! Everything read is hostile input: paths are resolved inside the tree only, and the tree, the
//! package databases kept in memory and the layers are bounded ([`Limits`]).

pub mod licenses;
pub mod oci;
pub mod package;
pub mod rootfs;
mod sha1;
#[cfg(test)]
mod tests;

pub use package::{Ecosystem, Package, Supplier};
pub use rootfs::{Limits, Tree};

/// Why no SBOM was made: one line.
#[derive(Debug, thiserror::Error)]
pub enum SbomGenError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// Not a directory or layout vouch can read, or a malformed layout.
    #[error("{0}")]
    Input(String),
    #[error("{what} over the limit of {limit}")]
    Limit { what: &'static str, limit: u64 },
    #[error("{0}")]
    Unsupported(String),
}
