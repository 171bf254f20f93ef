//! The supply-chain stage: signatures and SBOMs of the image, found in its registry (or a verdict
//! cache) and verified offline against each `verify` rule's authorities.
//!
//! - [`verify`]: the stage's entry point over the matching `verify` rules, with the verdict cache
//!   ([`cache`]) in front;
//! - [`registry`], [`material`]: where signatures and attestations come from;
//! - [`signature`], [`keys`], [`cosign_key`]: cosign's own signature formats (`.sig`, `.att`), keys;
//! - [`sigstore`]: Sigstore bundles verified by sigstore's own verifier with our checks around it,
//!   for container starts, `vouch verify` and `vouch verify-blob` alike;
//! - [`attestation`], [`sbom`], [`license`], [`sbom_rule`], [`rego`]: in-toto attestations of the
//!   image (SBOMs, vulnerability reports, OpenVEX), SBOM documents, SPDX license expressions, and
//!   the `[rule.sbom]` checks and Rego rules over them.

pub mod attestation;
pub mod cache;
pub mod cosign_key;
pub mod keys;
pub mod license;
pub mod material;
pub mod registry;
pub mod rego;
pub mod sbom;
pub mod sbom_rule;
pub mod signature;
pub mod sigstore;
pub mod stage;
pub mod verify;
