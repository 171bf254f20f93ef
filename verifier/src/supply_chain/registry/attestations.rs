//! Attestation discovery: cosign `.att` DSSE envelopes, `cosign attach sbom` SBOMs, Sigstore bundle
//! referrers that carry attestations, and BuildKit attestation manifests.
//!
//! As for signatures, nothing found here is trusted: material is collected, bounded in size (the
//! attestation layer bound: SBOMs are large) and in number (one budget for all kinds together),
//! each blob checked against the digest it was referenced by. Only what discovery must read to
//! find material is read: manifests, indexes and their annotations. Predicate-type annotations are
//! used to avoid fetching what policy does not read; they are hints, never trusted (verification
//! reads the predicate type from the verified statement). Unusable material is skipped with a
//! reason; an unreachable registry (or access denied, or a server error) is an error.

use super::discover::{bundle_referrer, is_material_error, keyless_annotations, LayerError};
use super::{
    is_bundle_v03, is_image_manifest, is_index, parse_digest, sbom_predicate_type, tag_schema_tag,
    Bound, Descriptor, FetchedManifest, ManifestDocument, Registry, RegistryError, Repo, Result,
    ANNOTATION_BUNDLE_PREDICATE_TYPE, ANNOTATION_IN_TOTO_PREDICATE_TYPE, ANNOTATION_PREDICATE_TYPE,
    ANNOTATION_REFERENCE_DIGEST, ANNOTATION_REFERENCE_TYPE, DSSE_ENVELOPE, IN_TOTO_STATEMENT,
};
use crate::attestation::PredicateKind;
use crate::material::{AttachedSbom, AttestationMaterial, DsseEnvelope, Origin, UnsignedStatement};
use crate::signature::COSIGN_SIGN_PREDICATE;

/// At most this many digests (the image and its alternatives) are searched; more is an input error.
pub const MAX_SUBJECTS: usize = 4;
/// BuildKit's `vnd.docker.reference.type` of an attestation manifest.
const BUILDKIT_ATTESTATION: &str = "attestation-manifest";

/// What [`Registry::discover_attestations`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttestationDiscovery {
    /// Usable (not yet verified) material, at most [`super::Limits::max_attestations`] pieces.
    pub material: Vec<AttestationMaterial>,
    /// Why material was not used, one line each.
    pub skipped: Vec<String>,
}

/// Discovery state: what was found and how much of the budget is left.
struct Walk<'a> {
    registry: &'a Registry,
    found: AttestationDiscovery,
    /// Pieces fetched (or tried): usable or not, each counts against the budget, so that a
    /// registry serving unusable layers cannot make discovery download without end.
    fetched: usize,
    /// Set once the budget ran out (and said so): nothing more is fetched.
    exhausted: bool,
}

impl Walk<'_> {
    /// Whether one more piece may be fetched; says why not, once, when the budget is spent.
    fn take_slot(&mut self, at: &str) -> bool {
        if self.exhausted {
            return false;
        }
        let max = self.registry.limits.max_attestations;
        let total = self.registry.limits.attestation_total_bytes;
        let held: u64 = self
            .found
            .material
            .iter()
            .map(|m| u64::try_from(m.len()).unwrap_or(u64::MAX))
            .fold(0, u64::saturating_add);
        if self.fetched < max && held < total {
            self.fetched += 1;
            return true;
        }
        self.exhausted = true;
        let why = if held >= total {
            format!("attestations already fetched hold {held} bytes, the limit is {total}")
        } else {
            format!("more than {max} attestations")
        };
        self.found.skipped.push(format!(
            "{at}: {why}: this and later ones are not considered"
        ));
        false
    }

    fn skip(&mut self, at: &str, reason: impl std::fmt::Display) {
        self.found.skipped.push(format!("{at}: {reason}"));
    }

    /// A manifest that may be absent: `None` when it is (or, with a reason, when it is unusable).
    fn optional_manifest(
        &mut self,
        repo: &Repo,
        reference: &str,
    ) -> Result<Option<FetchedManifest>> {
        match self.registry.get_manifest_inner(repo, reference) {
            Ok(m) => Ok(Some(m)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) if is_material_error(&e) => {
                self.found.skipped.push(e.to_string());
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

pub(super) fn discover(
    registry: &Registry,
    repository: &str,
    subjects: &[&str],
    signature_repository: Option<&str>,
) -> Result<AttestationDiscovery> {
    let image_repo = registry.repo(repository)?;
    let sig_repo = match signature_repository {
        Some(r) => registry.repo(r)?,
        None => image_repo.clone(),
    };
    let mut unique: Vec<&str> = Vec::new();
    for s in subjects {
        parse_digest(s)?;
        if !unique.contains(s) {
            unique.push(s);
        }
    }
    let Some(&image_digest) = unique.first() else {
        return Err(RegistryError::Input {
            what: "subjects",
            value: String::new(),
            reason: "no image digest to discover attestations for".into(),
        });
    };
    if unique.len() > MAX_SUBJECTS {
        return Err(RegistryError::Input {
            what: "subjects",
            value: unique.join(","),
            reason: format!("at most {MAX_SUBJECTS} digests"),
        });
    }
    let mut walk = Walk {
        registry,
        found: AttestationDiscovery::default(),
        fetched: 0,
        exhausted: false,
    };
    for digest in &unique {
        cosign_tag(&mut walk, &sig_repo, digest, Tag::Att)?;
        bundle_referrers(&mut walk, &sig_repo, digest)?;
        cosign_tag(&mut walk, &sig_repo, digest, Tag::Sbom)?;
    }
    buildkit(&mut walk, &image_repo, image_digest, &unique)?;
    Ok(walk.found)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tag {
    /// `cosign attest`: DSSE envelopes.
    Att,
    /// `cosign attach sbom`: SBOM documents.
    Sbom,
}

/// Fetches a layer blob after checking its declared size against `bound`; the blob must have the
/// declared size (and, by the registry client, the declared digest).
fn fetch_layer(
    registry: &Registry,
    repo: &Repo,
    layer: &Descriptor,
    bound: Bound,
) -> std::result::Result<Vec<u8>, LayerError> {
    if layer.size > bound.bytes {
        return Err(LayerError::Skip(format!(
            "declared size {} exceeds the {} bound of {} bytes",
            layer.size, bound.name, bound.bytes
        )));
    }
    let blob = registry.get_blob_inner(repo, &layer.digest, bound)?;
    if blob.len() as u64 != layer.size {
        return Err(LayerError::Skip(format!(
            "blob has {} bytes, the descriptor says {}",
            blob.len(),
            layer.size
        )));
    }
    Ok(blob)
}

/// Whether an (unverified) predicate-type hint names something policy reads; the reason if not.
fn relevant(hint: Option<&str>) -> std::result::Result<(), String> {
    match hint {
        None => Ok(()),
        Some(t) if PredicateKind::of(t).is_some() => Ok(()),
        Some(t) => Err(format!(
            "predicate type {t:?} is not one policy reads (SPDX, CycloneDX, vuln, OpenVEX): not fetched"
        )),
    }
}

/// The image manifest under cosign's `sha256-<hex>.att` or `.sbom` tag, and its usable layers.
fn cosign_tag(walk: &mut Walk<'_>, repo: &Repo, digest: &str, kind: Tag) -> Result<()> {
    if walk.exhausted {
        return Ok(());
    }
    let suffix = match kind {
        Tag::Att => ".att",
        Tag::Sbom => ".sbom",
    };
    let tag = tag_schema_tag(digest, suffix)?;
    let Some(manifest) = walk.optional_manifest(repo, &tag)? else {
        return Ok(());
    };
    let manifest_at = format!("{}@{} (tag {tag})", repo.name, manifest.digest);
    if !is_image_manifest(&manifest.media_type) {
        walk.skip(
            &manifest_at,
            format!(
                "media type {} is not an image manifest",
                manifest.media_type
            ),
        );
        return Ok(());
    }
    let doc = match ManifestDocument::parse(&manifest.bytes) {
        Ok(d) => d,
        Err(reason) => {
            walk.skip(&manifest_at, reason);
            return Ok(());
        }
    };
    let bound = walk.registry.limits.attestation_layer();
    // Newest first: cosign and `vouch attest` append, so when the budget runs out it is old
    // attestations (superseded scans, SBOMs) that are left unread.
    for (i, layer) in doc.layers.iter().enumerate().rev() {
        let at = format!("{manifest_at}: layer {i}");
        let origin = Origin {
            manifest: format!("{}@{}", repo.name, manifest.digest),
            layer: Some(i),
        };
        let material = match kind {
            Tag::Att => {
                if layer.media_type != DSSE_ENVELOPE {
                    walk.skip(
                        &at,
                        format!("media type {:?} is not {DSSE_ENVELOPE}", layer.media_type),
                    );
                    continue;
                }
                let hint = layer.annotations.get(ANNOTATION_PREDICATE_TYPE);
                if let Err(reason) = relevant(hint.map(String::as_str)) {
                    walk.skip(&at, reason);
                    continue;
                }
                if !walk.take_slot(&at) {
                    return Ok(());
                }
                dsse_layer(walk.registry, repo, layer, bound, origin)
            }
            Tag::Sbom => {
                let Some(predicate_type) = sbom_predicate_type(&layer.media_type) else {
                    walk.skip(
                        &at,
                        format!(
                            "media type {:?} is not an SBOM format vouch reads (SPDX or CycloneDX JSON)",
                            layer.media_type
                        ),
                    );
                    continue;
                };
                if !walk.take_slot(&at) {
                    return Ok(());
                }
                fetch_layer(walk.registry, repo, layer, bound).map(|document| {
                    AttestationMaterial::Sbom(AttachedSbom {
                        document,
                        media_type: layer.media_type.clone(),
                        predicate_type: predicate_type.to_string(),
                        subject_digest: digest.to_string(),
                        origin,
                    })
                })
            }
        };
        match material {
            Ok(m) => walk.found.material.push(m),
            Err(LayerError::Skip(reason)) => walk.skip(&at, reason),
            Err(LayerError::Fatal(e)) => return Err(e),
        }
    }
    Ok(())
}

fn dsse_layer(
    registry: &Registry,
    repo: &Repo,
    layer: &Descriptor,
    bound: Bound,
    origin: Origin,
) -> std::result::Result<AttestationMaterial, LayerError> {
    let (certificate_pem, chain_pem, rekor_bundle_json) = keyless_annotations(layer)?;
    let envelope = fetch_layer(registry, repo, layer, bound)?;
    Ok(AttestationMaterial::Dsse(DsseEnvelope {
        envelope,
        predicate_type: layer.annotations.get(ANNOTATION_PREDICATE_TYPE).cloned(),
        certificate_pem,
        chain_pem,
        rekor_bundle_json,
        origin,
    }))
}

/// Sigstore bundle referrers of `digest` that are attestations (by their predicate-type
/// annotation, when they have one; cosign's signature bundles are left to signature discovery).
fn bundle_referrers(walk: &mut Walk<'_>, repo: &Repo, digest: &str) -> Result<()> {
    if walk.exhausted {
        return Ok(());
    }
    let referrers = match walk.registry.referrers_inner(repo, digest) {
        Ok(r) => r,
        Err(e) if is_material_error(&e) => {
            walk.found.skipped.push(format!("referrers: {e}"));
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let bound = walk.registry.limits.attestation_layer();
    for desc in &referrers.descriptors {
        let Some(artifact_type) = desc.artifact_type.as_deref().filter(|t| is_bundle_v03(t)) else {
            // Other referrers (plain SBOM artifacts, ...) carry no signature vouch can check.
            continue;
        };
        let at = format!("{}@{}", repo.name, desc.digest);
        let hint = desc
            .annotations
            .get(ANNOTATION_BUNDLE_PREDICATE_TYPE)
            .map(String::as_str);
        if hint == Some(COSIGN_SIGN_PREDICATE) {
            // An image signature, not an attestation.
            continue;
        }
        if let Err(reason) = relevant(hint) {
            walk.skip(&at, reason);
            continue;
        }
        if !walk.take_slot(&at) {
            return Ok(());
        }
        match bundle_referrer(walk.registry, repo, digest, desc, artifact_type, bound) {
            Ok(b) => walk.found.material.push(AttestationMaterial::Bundle(b)),
            Err(LayerError::Skip(reason)) => walk.skip(&at, reason),
            Err(LayerError::Fatal(e)) => return Err(e),
        }
    }
    Ok(())
}

/// BuildKit attestation manifests: entries of the image index annotated as attestation manifests
/// of one of `subjects` (this node's platform manifest, in practice).
fn buildkit(walk: &mut Walk<'_>, repo: &Repo, image_digest: &str, subjects: &[&str]) -> Result<()> {
    if walk.exhausted {
        return Ok(());
    }
    let index = match walk.registry.get_manifest_inner(repo, image_digest) {
        Ok(m) => m,
        Err(e) if is_material_error(&e) => {
            walk.found.skipped.push(format!("image index: {e}"));
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    if !is_index(&index.media_type) {
        return Ok(());
    }
    let index_at = format!("{}@{}", repo.name, index.digest);
    let doc = match ManifestDocument::parse(&index.bytes) {
        Ok(d) => d,
        Err(reason) => {
            walk.skip(&index_at, reason);
            return Ok(());
        }
    };
    let entries = doc.manifests.iter().filter(|m| {
        m.annotations
            .get(ANNOTATION_REFERENCE_TYPE)
            .map(String::as_str)
            == Some(BUILDKIT_ATTESTATION)
            && m.annotations
                .get(ANNOTATION_REFERENCE_DIGEST)
                .is_some_and(|d| subjects.contains(&d.as_str()))
    });
    for entry in entries {
        if walk.exhausted {
            return Ok(());
        }
        let manifest_at = format!("{}@{} (attestation manifest)", repo.name, entry.digest);
        if !is_image_manifest(&entry.media_type) {
            walk.skip(
                &manifest_at,
                format!("media type {} is not an image manifest", entry.media_type),
            );
            continue;
        }
        let manifest_bound = walk.registry.limits.manifest();
        if entry.size > manifest_bound.bytes {
            walk.skip(
                &manifest_at,
                format!(
                    "declared size {} exceeds the {} bound of {} bytes",
                    entry.size, manifest_bound.name, manifest_bound.bytes
                ),
            );
            continue;
        }
        let manifest = match walk.registry.get_manifest_inner(repo, &entry.digest) {
            Ok(m) => m,
            Err(e) if is_material_error(&e) => {
                walk.found.skipped.push(e.to_string());
                continue;
            }
            Err(e) => return Err(e),
        };
        let doc = match ManifestDocument::parse(&manifest.bytes) {
            Ok(d) => d,
            Err(reason) => {
                walk.skip(&manifest_at, reason);
                continue;
            }
        };
        let bound = walk.registry.limits.attestation_layer();
        for (i, layer) in doc.layers.iter().enumerate() {
            let at = format!("{manifest_at}: layer {i}");
            if layer.media_type != IN_TOTO_STATEMENT {
                walk.skip(
                    &at,
                    format!(
                        "media type {:?} is not {IN_TOTO_STATEMENT}",
                        layer.media_type
                    ),
                );
                continue;
            }
            let Some(predicate_type) = layer.annotations.get(ANNOTATION_IN_TOTO_PREDICATE_TYPE)
            else {
                walk.skip(
                    &at,
                    format!("no {ANNOTATION_IN_TOTO_PREDICATE_TYPE} annotation"),
                );
                continue;
            };
            if let Err(reason) = relevant(Some(predicate_type)) {
                walk.skip(&at, reason);
                continue;
            }
            if !walk.take_slot(&at) {
                return Ok(());
            }
            match fetch_layer(walk.registry, repo, layer, bound) {
                Ok(json) => {
                    walk.found
                        .material
                        .push(AttestationMaterial::Statement(UnsignedStatement {
                            json,
                            predicate_type: predicate_type.clone(),
                            origin: Origin {
                                manifest: format!("{}@{}", repo.name, manifest.digest),
                                layer: Some(i),
                            },
                        }))
                }
                Err(LayerError::Skip(reason)) => walk.skip(&at, reason),
                Err(LayerError::Fatal(e)) => return Err(e),
            }
        }
    }
    Ok(())
}
