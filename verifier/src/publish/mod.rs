//! What a publisher does before a node ever judges an image: sign it ([`sign`]), attest SBOMs and
//! vulnerability reports about it ([`attest`]), and generate SBOMs ([`sbomgen`]). The `vouch` CLI's
//! `sign`, `attest` and `sbom` commands run these.

pub mod attest;
pub mod sbomgen;
pub mod sign;
