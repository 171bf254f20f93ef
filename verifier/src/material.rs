//! Signature material as found in a registry, before any of it is trusted.
//!
//! `registry` discovers it (cosign `.sig` tags, OCI 1.1 referrers or their `sha256-<hex>` tag
//! fallback); `signature` verifies it. Everything here is attacker-controlled input: sizes are
//! bounded by the discovery code, and nothing is interpreted until it has been verified.

/// Where a piece of material was found, for error messages and the attestation record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The manifest it came from, `<repository>@sha256:<hex>` (the `.sig` manifest or referrer).
    pub manifest: String,
    /// Index of the layer within that manifest, when it came from one.
    pub layer: Option<usize>,
}

/// One cosign "simple signing" signature: a `.sig` manifest layer of media type
/// `application/vnd.dev.cosign.simplesigning.v1+json` and its annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimpleSigning {
    /// The layer blob: the exact payload bytes that were signed (verified against the layer digest).
    pub payload: Vec<u8>,
    /// `dev.cosignproject.cosign/signature`: base64 of the signature.
    pub signature_b64: String,
    /// `dev.sigstore.cosign/certificate`: PEM leaf certificate (keyless).
    pub certificate_pem: Option<String>,
    /// `dev.sigstore.cosign/chain`: PEM chain (keyless).
    pub chain_pem: Option<String>,
    /// `dev.sigstore.cosign/bundle`: the Rekor bundle JSON (SET and entry).
    pub rekor_bundle_json: Option<String>,
    pub origin: Origin,
}

/// A Sigstore bundle (`application/vnd.dev.sigstore.bundle.v0.3+json`, cosign v3), as an OCI 1.1
/// referrer of the image or its tag-schema fallback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigstoreBundle {
    /// The bundle JSON bytes (verified against their layer digest).
    pub json: Vec<u8>,
    /// The referrer's `artifactType` / media type as the registry described it.
    pub media_type: String,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureMaterial {
    Simple(SimpleSigning),
    Bundle(SigstoreBundle),
}
