//! vouch-verifier: everything that decides whether a container may start.
//!
//! The shim (`containerd-shim-vouch-v2`) calls [`gate::Gate::admit`] once per container start; the
//! `vouch` CLI reaches the same verdict through the same code.
//!
//! - [`config`]: the node configuration and where to find it;
//! - [`policy`]: the policy file and its pure evaluation;
//! - [`reference`] and [`pattern`]: image names and the globs rules match them with;
//! - [`identity`]: which image (repository and digest) a container was created from, per containerd;
//! - [`node`]: [`node::NodeGate`], the [`gate::Gate`] the shim uses, tying the above together;
//! - [`registry`], [`signature`], [`keys`], [`cosign_key`], [`sign`], [`verify`], [`cache`]: cosign
//!   signatures found in registries, verified offline, with a verdict cache;
//! - [`attestation`], [`sbom`], [`license`], [`sbom_rule`], [`rego`]: in-toto attestations of an
//!   image (SBOMs, vulnerability reports, OpenVEX), SBOM documents (SPDX, CycloneDX), SPDX license
//!   expressions, and the `[rule.sbom]` checks and Rego rules over them;
//! - [`attest`], [`sbomgen`]: publishing attestations and generating SBOMs (`vouch attest`, `vouch sbom`).

pub mod attest;
pub mod attestation;
pub mod attestlog;
pub mod baseline;
pub mod cache;
pub mod config;
pub mod cosign_key;
pub mod error;
pub mod gate;
pub mod host;
pub mod identity;
pub mod keys;
pub mod license;
pub mod material;
pub mod measure;
pub mod node;
pub mod pattern;
pub mod policy;
pub mod reference;
pub mod registry;
pub mod rego;
pub mod rootfs;
pub mod sbom;
pub mod sbom_rule;
pub mod sbomgen;
pub mod sign;
pub mod signature;
pub mod spec;
mod tomlfile;
pub mod tpm;
pub mod verify;

pub use error::{Error, Result};
pub use gate::{
    Denial, Evidence, ExecRequest, Gate, GateRequest, ImageIdentity, RootfsMount, Verdict,
};
pub use node::NodeGate;
