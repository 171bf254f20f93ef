//! The rootfs stage: the container's root filesystem measured ([`measure`]: a tree's manifest and
//! its re-validation; the container's layers, writable layer and config below) and compared with
//! a baseline ([`baseline`]: the image's layers, or the files an SBOM declares), and the spec's
//! mounts that would hide measured code.

pub mod baseline;
mod container;
pub mod measure;
pub mod stage;

pub use container::*;
