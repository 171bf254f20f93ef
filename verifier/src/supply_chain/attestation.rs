//! In-toto attestations about an image, as the gate uses them: SBOMs, vulnerability reports and VEX
//! statements that were found for an image and whose signature verified with one of a rule's
//! authorities (or, where a rule allows unsigned SBOMs, that were merely attached).
//!
//! Discovery and verification (`registry`, `signature`) produce [`Attestation`]s; SBOM policy
//! (`sbom_rule`) reads only these, so nothing unverified reaches policy by accident.

/// `cosign attest --type spdxjson` (and syft's `https://spdx.dev/Document/v2.3` style variants).
pub const SPDX_PREDICATE: &str = "https://spdx.dev/Document";
/// `cosign attest --type cyclonedx` (and `https://cyclonedx.org/bom/v1.4` style variants).
pub const CYCLONEDX_PREDICATE: &str = "https://cyclonedx.org/bom";
/// `cosign attest --type vuln`: a scanner's result wrapped by cosign.
pub const VULN_PREDICATE: &str = "https://cosign.sigstore.dev/attestation/vuln/v1";
/// `cosign attest --type openvex` (OpenVEX documents name their context `https://openvex.dev/ns/v0.2.0`).
pub const OPENVEX_PREDICATE: &str = "https://openvex.dev/ns";

/// What an attestation's predicate is, as far as policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PredicateKind {
    Spdx,
    CycloneDx,
    Vuln,
    OpenVex,
}

impl PredicateKind {
    /// The kind of a predicate type URI; `None` for predicates policy does not read (provenance,
    /// cosign's own signature statements, ...). Versioned variants (`.../v2.3`, `.../v0.2.0`) count.
    pub fn of(predicate_type: &str) -> Option<PredicateKind> {
        let t = predicate_type.trim_end_matches('/');
        let under = |base: &str| {
            t == base
                || t.strip_prefix(base)
                    .is_some_and(|rest| rest.starts_with('/') || rest.starts_with('@'))
        };
        if under(SPDX_PREDICATE) {
            Some(PredicateKind::Spdx)
        } else if under(CYCLONEDX_PREDICATE) {
            Some(PredicateKind::CycloneDx)
        } else if t == VULN_PREDICATE {
            Some(PredicateKind::Vuln)
        } else if under(OPENVEX_PREDICATE) {
            Some(PredicateKind::OpenVex)
        } else {
            None
        }
    }
}

/// Who vouched for an attestation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signer {
    /// Its DSSE signature verified with this rule authority; the text names the authority and the
    /// key fingerprint or certificate identity, e.g. `release (key sha256:1a2b3c4d5e6f)`.
    Authority(String),
    /// Not signed (`cosign attach sbom`, BuildKit attestation manifests): counts only where the
    /// rule sets `allow_unsigned = true`.
    Unsigned,
}

/// One in-toto statement (or attached SBOM) about the image.
#[derive(Debug, Clone, PartialEq)]
pub struct Attestation {
    /// The statement's `predicateType` (for an attached SBOM: the type its media type implies).
    pub predicate_type: String,
    /// The predicate. A predicate written as a JSON string holding a document has been decoded
    /// into that document.
    pub predicate: serde_json::Value,
    /// `sha256:<hex>` of the bytes the predicate came from: the DSSE payload (the statement), or the
    /// attached SBOM blob. Recorded in decisions as the SBOM's digest.
    pub digest: String,
    /// `sha256:<hex>`: the subject digest that matched (the image digest, or its platform manifest).
    pub subject_digest: String,
    pub signer: Signer,
    /// Where it was found, e.g. `127.0.0.1:5000/app:sha256-<hex>.att layer 1`.
    pub origin: String,
}

impl Attestation {
    pub fn kind(&self) -> Option<PredicateKind> {
        PredicateKind::of(&self.predicate_type)
    }

    pub fn is_signed(&self) -> bool {
        matches!(self.signer, Signer::Authority(_))
    }
}

/// Attestations found for an image, and why other material did not count.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AttestationReport {
    pub attestations: Vec<Attestation>,
    /// One line per piece of material that did not count: unverifiable signature, untrusted key,
    /// a subject that is another image, a malformed envelope, too large.
    pub rejected: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predicate_kinds_include_versioned_variants() {
        assert_eq!(
            PredicateKind::of("https://spdx.dev/Document"),
            Some(PredicateKind::Spdx)
        );
        assert_eq!(
            PredicateKind::of("https://spdx.dev/Document/v2.3"),
            Some(PredicateKind::Spdx)
        );
        assert_eq!(
            PredicateKind::of("https://cyclonedx.org/bom/v1.4"),
            Some(PredicateKind::CycloneDx)
        );
        assert_eq!(
            PredicateKind::of("https://openvex.dev/ns/v0.2.0"),
            Some(PredicateKind::OpenVex)
        );
        assert_eq!(PredicateKind::of(VULN_PREDICATE), Some(PredicateKind::Vuln));
        assert_eq!(PredicateKind::of("https://spdx.dev/Documents"), None);
        assert_eq!(PredicateKind::of("https://slsa.dev/provenance/v0.2"), None);
        assert_eq!(
            PredicateKind::of("https://sigstore.dev/cosign/sign/v1"),
            None
        );
    }
}
