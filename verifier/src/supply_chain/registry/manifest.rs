//! The few OCI / Docker manifest fields vouch reads or writes, parsed leniently: unknown fields are
//! ignored, every field vouch does not need is optional.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// The empty config of OCI 1.1 artifacts (`{}`).
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// cosign's config media type of `.sig` manifests (cosign 1.x/2.x).
pub const DOCKER_CONTAINER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// A cosign simple-signing layer.
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// A Sigstore bundle v0.3 (cosign v3), as artifact type and layer media type.
pub const SIGSTORE_BUNDLE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// The same, as the older parameterised spelling.
pub const SIGSTORE_BUNDLE_V03_ALT: &str = "application/vnd.dev.sigstore.bundle+json;version=0.3";

/// A DSSE envelope layer of a cosign `.att` manifest.
pub const DSSE_ENVELOPE: &str = "application/vnd.dsse.envelope.v1+json";
/// An in-toto statement layer (BuildKit attestation manifests).
pub const IN_TOTO_STATEMENT: &str = "application/vnd.in-toto+json";
/// cosign's annotation of an `.att` layer naming the statement's predicate type.
pub const ANNOTATION_PREDICATE_TYPE: &str = "predicateType";
/// cosign v3's annotation of a bundle referrer naming its statement's predicate type.
pub const ANNOTATION_BUNDLE_PREDICATE_TYPE: &str = "dev.sigstore.bundle.predicateType";
/// BuildKit: what an index entry is (`attestation-manifest`).
pub const ANNOTATION_REFERENCE_TYPE: &str = "vnd.docker.reference.type";
/// BuildKit: the platform manifest an attestation manifest is about.
pub const ANNOTATION_REFERENCE_DIGEST: &str = "vnd.docker.reference.digest";
/// BuildKit: the predicate type of an attestation manifest layer.
pub const ANNOTATION_IN_TOTO_PREDICATE_TYPE: &str = "in-toto.io/predicate-type";

pub const ANNOTATION_SIGNATURE: &str = "dev.cosignproject.cosign/signature";
pub const ANNOTATION_CERTIFICATE: &str = "dev.sigstore.cosign/certificate";
pub const ANNOTATION_CHAIN: &str = "dev.sigstore.cosign/chain";
pub const ANNOTATION_BUNDLE: &str = "dev.sigstore.cosign/bundle";

/// What `Accept` lists for manifests.
pub(crate) const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json";

/// True for a Sigstore bundle v0.3 media type, in either spelling (spaces and case in parameters
/// tolerated).
pub fn is_bundle_v03(media_type: &str) -> bool {
    let compact: String = media_type
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    compact == SIGSTORE_BUNDLE_V03 || compact == SIGSTORE_BUNDLE_V03_ALT
}

/// An OCI content descriptor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An image manifest or an index (OCI or Docker v2 schema 2): `layers` for the one, `manifests` for
/// the other. Serialises to a valid document of either kind when the right fields are filled in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestDocument {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl ManifestDocument {
    /// Parses `bytes` as a schema-2 manifest or index.
    pub fn parse(bytes: &[u8]) -> Result<ManifestDocument, String> {
        let doc: ManifestDocument =
            serde_json::from_slice(bytes).map_err(|e| format!("malformed manifest JSON: {e}"))?;
        if doc.schema_version != 2 {
            return Err(format!(
                "unsupported schemaVersion {} (want 2)",
                doc.schema_version
            ));
        }
        Ok(doc)
    }

    /// The artifact type of an OCI 1.1 artifact: `artifactType`, else the config media type.
    pub fn effective_artifact_type(&self) -> Option<&str> {
        self.artifact_type
            .as_deref()
            .or_else(|| self.config.as_ref().map(|c| c.media_type.as_str()))
    }

    /// Serialises to JSON bytes (what gets pushed and digested).
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising plain strings, numbers, vectors and string maps cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// The predicate type an attached SBOM's media type implies (`cosign attach sbom`): SPDX or
/// CycloneDX; `None` for anything else (XML CycloneDX, ...). The bare `text/spdx` and
/// `application/vnd.cyclonedx` may hold JSON or not: only JSON documents are used later.
pub fn sbom_predicate_type(media_type: &str) -> Option<&'static str> {
    let base = media_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match base.as_str() {
        "text/spdx+json" | "application/spdx+json" | "text/spdx" => {
            Some(crate::attestation::SPDX_PREDICATE)
        }
        "application/vnd.cyclonedx+json" | "application/vnd.cyclonedx" => {
            Some(crate::attestation::CYCLONEDX_PREDICATE)
        }
        _ => None,
    }
}

/// True for the media types of an image manifest (not an index).
pub fn is_image_manifest(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
}

/// True for the media types of an index.
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_media_types_in_both_spellings() {
        assert!(is_bundle_v03(
            "application/vnd.dev.sigstore.bundle.v0.3+json"
        ));
        assert!(is_bundle_v03(
            "application/vnd.dev.sigstore.bundle+json;version=0.3"
        ));
        assert!(is_bundle_v03(
            "application/vnd.dev.sigstore.bundle+json; version=0.3"
        ));
        assert!(!is_bundle_v03(
            "application/vnd.dev.sigstore.bundle+json;version=0.2"
        ));
        assert!(!is_bundle_v03("application/spdx+json"));
    }

    #[test]
    fn manifests_parse_leniently_and_round_trip() {
        let m = ManifestDocument::parse(
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},
            "layers":[{"mediaType":"x","digest":"sha256:00","size":1,"annotations":{"a":"b"},"urls":[]}],
            "extra":{"ignored":true}}"#,
        )
        .unwrap();
        assert_eq!(m.layers.len(), 1);
        assert_eq!(m.layers[0].annotations["a"], "b");
        assert_eq!(m.effective_artifact_type(), Some(OCI_EMPTY));
        assert_eq!(ManifestDocument::parse(&m.to_bytes()).unwrap(), m);
        assert!(ManifestDocument::parse(br#"{"schemaVersion":1}"#)
            .unwrap_err()
            .contains("schemaVersion 1"));
        assert!(ManifestDocument::parse(b"[]")
            .unwrap_err()
            .contains("malformed"));
        assert!(ManifestDocument::parse(
            br#"{"schemaVersion":2,"layers":[{"mediaType":"x","digest":"d","size":-1}]}"#
        )
        .is_err());
    }
}
