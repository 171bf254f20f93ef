//! Signature and attestation material as found in a registry, before any of it is trusted.
//!
//! `registry` discovers it (cosign `.sig`, `.att` and `.sbom` tags, OCI 1.1 referrers or their
//! `sha256-<hex>` tag fallback, BuildKit attestation manifests); `signature` verifies it. Everything here is attacker-controlled input: sizes are
//! bounded by the discovery code, and nothing is interpreted until it has been verified.

/// Where a piece of material was found, for error messages and the attestation record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The manifest it came from, `<repository>@sha256:<hex>` (the `.sig` manifest or referrer).
    pub manifest: String,
    /// Index of the layer within that manifest, when it came from one.
    pub layer: Option<usize>,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.layer {
            Some(i) => write!(f, "{} layer {i}", self.manifest),
            None => f.write_str(&self.manifest),
        }
    }
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

/// A DSSE envelope as `cosign attest` stores it: a layer of media type
/// `application/vnd.dsse.envelope.v1+json` of the `sha256-<hex>.att` manifest, and its annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsseEnvelope {
    /// The layer blob: the envelope JSON (verified against the layer digest). cosign's Rekor
    /// entries name the hash of exactly these bytes.
    pub envelope: Vec<u8>,
    /// The layer's `predicateType` annotation, unverified: a hint for discovery only.
    pub predicate_type: Option<String>,
    /// `dev.sigstore.cosign/certificate`: PEM leaf certificate (keyless).
    pub certificate_pem: Option<String>,
    /// `dev.sigstore.cosign/chain`: PEM chain (keyless).
    pub chain_pem: Option<String>,
    /// `dev.sigstore.cosign/bundle`: the Rekor bundle JSON (an `intoto` or `dsse` entry).
    pub rekor_bundle_json: Option<String>,
    pub origin: Origin,
}

/// An in-toto statement published without a signature: a BuildKit attestation manifest layer
/// (`application/vnd.in-toto+json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsignedStatement {
    /// The statement JSON (verified against the layer digest).
    pub json: Vec<u8>,
    /// The layer's `in-toto.io/predicate-type` annotation.
    pub predicate_type: String,
    pub origin: Origin,
}

/// An SBOM attached with `cosign attach sbom` (the `sha256-<hex>.sbom` manifest): unsigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedSbom {
    /// The SBOM document (verified against the layer digest).
    pub document: Vec<u8>,
    /// The layer media type (`text/spdx+json`, `application/vnd.cyclonedx+json`, ...).
    pub media_type: String,
    /// The predicate type the media type implies ([`crate::attestation::SPDX_PREDICATE`] or
    /// [`crate::attestation::CYCLONEDX_PREDICATE`]).
    pub predicate_type: String,
    /// The digest whose `.sbom` tag it was found under (`sha256:<hex>`): what it is about.
    pub subject_digest: String,
    pub origin: Origin,
}

/// Attestation material: signed (DSSE envelopes, Sigstore bundles) or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttestationMaterial {
    /// A cosign `.att` layer.
    Dsse(DsseEnvelope),
    /// A Sigstore bundle referrer whose DSSE statement is an attestation.
    Bundle(SigstoreBundle),
    /// A BuildKit attestation.
    Statement(UnsignedStatement),
    /// A `cosign attach sbom` SBOM.
    Sbom(AttachedSbom),
}

impl AttestationMaterial {
    /// Bytes held: what the discovery budget counts.
    pub fn len(&self) -> usize {
        match self {
            AttestationMaterial::Dsse(d) => d.envelope.len(),
            AttestationMaterial::Bundle(b) => b.json.len(),
            AttestationMaterial::Statement(s) => s.json.len(),
            AttestationMaterial::Sbom(s) => s.document.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn origin(&self) -> &Origin {
        match self {
            AttestationMaterial::Dsse(d) => &d.origin,
            AttestationMaterial::Bundle(b) => &b.origin,
            AttestationMaterial::Statement(s) => &s.origin,
            AttestationMaterial::Sbom(s) => &s.origin,
        }
    }
}
