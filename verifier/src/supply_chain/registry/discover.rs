//! Signature discovery: cosign `.sig` tags and Sigstore bundle referrers.
//!
//! Nothing found here is trusted: this only collects material, bounded in size and number, each
//! piece checked against the digest it was referenced by. Material that cannot be used is skipped
//! with a reason; errors that say nothing about the material (an unreachable registry, access
//! denied, a server error) abort discovery, so that a registry outage is never mistaken for
//! "unsigned".

use base64::Engine;

use super::{
    is_bundle_v03, is_image_manifest, tag_schema_tag, Descriptor, ManifestDocument, Registry,
    RegistryError, Result, ANNOTATION_BUNDLE, ANNOTATION_CERTIFICATE, ANNOTATION_CHAIN,
    ANNOTATION_SIGNATURE, SIMPLE_SIGNING,
};
use crate::material::{Origin, SignatureMaterial, SigstoreBundle, SimpleSigning};

/// What [`Registry::discover_signatures`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Discovery {
    /// Usable (not yet verified) material, at most [`super::Limits::max_signatures`] pieces.
    pub material: Vec<SignatureMaterial>,
    /// Why material was not used, one line each, e.g. `<repo>@sha256:…: layer 2: ...`.
    pub skipped: Vec<String>,
}

/// Errors that mean "this piece of material is bad", as opposed to "the registry is not working".
pub(super) fn is_material_error(e: &RegistryError) -> bool {
    matches!(
        e,
        RegistryError::NotFound { .. }
            | RegistryError::Invalid { .. }
            | RegistryError::TooLarge { .. }
            | RegistryError::Input { .. }
    )
}

pub(super) fn discover(
    registry: &Registry,
    repository: &str,
    digest: &str,
    signature_repository: Option<&str>,
) -> Result<Discovery> {
    let image_repo = registry.repo(repository)?;
    let sig_repo = match signature_repository {
        Some(r) => registry.repo(r)?,
        None => image_repo,
    };
    let mut found = Discovery::default();
    let budget = registry.limits.max_signatures;
    simple_signatures(registry, &sig_repo, digest, budget, &mut found)?;
    let budget = budget.saturating_sub(found.material.len());
    bundles(registry, &sig_repo, digest, budget, &mut found)?;
    Ok(found)
}

fn simple_signatures(
    registry: &Registry,
    repo: &super::Repo,
    digest: &str,
    budget: usize,
    found: &mut Discovery,
) -> Result<()> {
    let tag = tag_schema_tag(digest, ".sig")?;
    let manifest = match registry.get_manifest_inner(repo, &tag) {
        Ok(m) => m,
        Err(e) if e.is_not_found() => return Ok(()),
        Err(e) if is_material_error(&e) => {
            found.skipped.push(e.to_string());
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let origin_manifest = format!("{}@{}", repo.name, manifest.digest);
    let skip = |found: &mut Discovery, layer: Option<usize>, reason: String| {
        let at = match layer {
            Some(i) => format!("{origin_manifest} (tag {tag}): layer {i}"),
            None => format!("{origin_manifest} (tag {tag})"),
        };
        found.skipped.push(format!("{at}: {reason}"));
    };
    if !is_image_manifest(&manifest.media_type) {
        skip(
            found,
            None,
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
            skip(found, None, reason);
            return Ok(());
        }
    };
    let mut considered = 0usize;
    for (i, layer) in doc.layers.iter().enumerate() {
        if layer.media_type != SIMPLE_SIGNING {
            skip(
                found,
                Some(i),
                format!("media type {:?} is not {SIMPLE_SIGNING}", layer.media_type),
            );
            continue;
        }
        if considered == budget {
            skip(
                found,
                Some(i),
                format!(
                    "more than {} signatures: this and later ones are not considered",
                    registry.limits.max_signatures
                ),
            );
            break;
        }
        considered += 1;
        match simple_signing_layer(registry, repo, layer) {
            Ok((payload, annotations)) => {
                found
                    .material
                    .push(SignatureMaterial::Simple(SimpleSigning {
                        payload,
                        signature_b64: annotations.signature,
                        certificate_pem: annotations.certificate,
                        chain_pem: annotations.chain,
                        rekor_bundle_json: annotations.bundle,
                        origin: Origin {
                            manifest: origin_manifest.clone(),
                            layer: Some(i),
                        },
                    }))
            }
            Err(LayerError::Skip(reason)) => skip(found, Some(i), reason),
            Err(LayerError::Fatal(e)) => return Err(e),
        }
    }
    Ok(())
}

pub(super) enum LayerError {
    Skip(String),
    Fatal(RegistryError),
}

impl From<RegistryError> for LayerError {
    fn from(e: RegistryError) -> Self {
        if is_material_error(&e) {
            LayerError::Skip(e.to_string())
        } else {
            LayerError::Fatal(e)
        }
    }
}

struct Annotations {
    signature: String,
    certificate: Option<String>,
    chain: Option<String>,
    bundle: Option<String>,
}

/// Checks the annotations (cheaply: well-formedness only, nothing is trusted) and fetches the payload.
fn simple_signing_layer(
    registry: &Registry,
    repo: &super::Repo,
    layer: &Descriptor,
) -> std::result::Result<(Vec<u8>, Annotations), LayerError> {
    let get = |k: &str| layer.annotations.get(k).map(String::as_str);
    let signature = get(ANNOTATION_SIGNATURE)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| LayerError::Skip(format!("no {ANNOTATION_SIGNATURE} annotation")))?;
    if base64::engine::general_purpose::STANDARD
        .decode(signature)
        .is_err()
    {
        return Err(LayerError::Skip(format!(
            "{ANNOTATION_SIGNATURE} is not valid base64"
        )));
    }
    let (certificate, chain, bundle) = keyless_annotations(layer)?;
    let bound = registry.limits.signature_layer();
    if layer.size > bound.bytes {
        return Err(RegistryError::TooLarge {
            what: format!(
                "blob {}@{} (declared size {})",
                repo.name, layer.digest, layer.size
            ),
            bound: bound.name,
            limit: bound.bytes,
        }
        .into());
    }
    let payload = registry.get_blob_inner(repo, &layer.digest, bound)?;
    if payload.len() as u64 != layer.size {
        return Err(LayerError::Skip(format!(
            "blob has {} bytes, the descriptor says {}",
            payload.len(),
            layer.size
        )));
    }
    Ok((
        payload,
        Annotations {
            signature: signature.to_string(),
            certificate,
            chain,
            bundle,
        },
    ))
}

/// Certificate, chain and Rekor bundle annotations, as found.
pub(super) type KeylessAnnotations = (Option<String>, Option<String>, Option<String>);

/// The keyless annotations of a cosign layer (certificate, chain, Rekor bundle), checked for
/// well-formedness only: nothing in them is trusted here.
pub(super) fn keyless_annotations(
    layer: &Descriptor,
) -> std::result::Result<KeylessAnnotations, LayerError> {
    let get = |k: &str| {
        layer
            .annotations
            .get(k)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    };
    let pem = |key: &str| -> std::result::Result<Option<String>, LayerError> {
        match get(key) {
            None => Ok(None),
            Some(v) if v.contains("-----BEGIN CERTIFICATE-----") => Ok(Some(v.to_string())),
            Some(_) => Err(LayerError::Skip(format!("{key} is not a PEM certificate"))),
        }
    };
    let certificate = pem(ANNOTATION_CERTIFICATE)?;
    let chain = pem(ANNOTATION_CHAIN)?;
    let bundle = match get(ANNOTATION_BUNDLE) {
        None => None,
        Some(v) => match serde_json::from_str::<serde_json::Value>(v) {
            Ok(serde_json::Value::Object(_)) => Some(v.to_string()),
            _ => {
                return Err(LayerError::Skip(format!(
                    "{ANNOTATION_BUNDLE} is not a JSON object"
                )))
            }
        },
    };
    Ok((certificate, chain, bundle))
}

fn bundles(
    registry: &Registry,
    repo: &super::Repo,
    digest: &str,
    budget: usize,
    found: &mut Discovery,
) -> Result<()> {
    let referrers = match registry.referrers_inner(repo, digest) {
        Ok(r) => r,
        Err(e) if is_material_error(&e) => {
            found.skipped.push(format!("referrers: {e}"));
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let mut considered = 0usize;
    for desc in &referrers.descriptors {
        let Some(artifact_type) = desc.artifact_type.as_deref().filter(|t| is_bundle_v03(t)) else {
            // Other referrers (SBOMs, attestations, ...) are not signatures.
            continue;
        };
        let at = format!("{}@{}", repo.name, desc.digest);
        if considered == budget {
            found.skipped.push(format!(
                "{at}: more than {} signatures: this and later ones are not considered",
                registry.limits.max_signatures
            ));
            break;
        }
        considered += 1;
        let bound = registry.limits.signature_layer();
        match bundle_referrer(registry, repo, digest, desc, artifact_type, bound) {
            Ok(b) => found.material.push(SignatureMaterial::Bundle(b)),
            Err(LayerError::Skip(reason)) => found.skipped.push(format!("{at}: {reason}")),
            Err(LayerError::Fatal(e)) => return Err(e),
        }
    }
    Ok(())
}

/// Fetches the Sigstore bundle of the referrer `desc` of `subject_digest`, at most `bound` bytes.
pub(super) fn bundle_referrer(
    registry: &Registry,
    repo: &super::Repo,
    subject_digest: &str,
    desc: &Descriptor,
    artifact_type: &str,
    bound: super::Bound,
) -> std::result::Result<SigstoreBundle, LayerError> {
    let manifest_bound = registry.limits.manifest();
    if desc.size > manifest_bound.bytes {
        return Err(LayerError::Skip(format!(
            "declared size {} exceeds the {} bound of {} bytes",
            desc.size, manifest_bound.name, manifest_bound.bytes
        )));
    }
    let manifest = registry.get_manifest_inner(repo, &desc.digest)?;
    if !is_image_manifest(&manifest.media_type) {
        return Err(LayerError::Skip(format!(
            "media type {} is not an image manifest",
            manifest.media_type
        )));
    }
    let doc = ManifestDocument::parse(&manifest.bytes).map_err(LayerError::Skip)?;
    // The tag-schema index is just a tag anyone with push access can write: the manifest itself
    // must say what it refers to.
    match doc.subject.as_ref().map(|s| s.digest.as_str()) {
        Some(d) if d == subject_digest => {}
        Some(d) => {
            return Err(LayerError::Skip(format!(
                "subject is {d}, not {subject_digest}"
            )))
        }
        None => return Err(LayerError::Skip("no subject".to_string())),
    }
    if !doc.effective_artifact_type().is_some_and(is_bundle_v03) {
        return Err(LayerError::Skip(format!(
            "artifactType {:?} is not a Sigstore bundle v0.3",
            doc.effective_artifact_type().unwrap_or("")
        )));
    }
    let (index, layer) = doc
        .layers
        .iter()
        .enumerate()
        .find(|(_, l)| is_bundle_v03(&l.media_type))
        .ok_or_else(|| LayerError::Skip("no Sigstore bundle layer".to_string()))?;
    if layer.size > bound.bytes {
        return Err(LayerError::Skip(format!(
            "layer {index}: declared size {} exceeds the {} bound of {} bytes",
            layer.size, bound.name, bound.bytes
        )));
    }
    let json = registry.get_blob_inner(repo, &layer.digest, bound)?;
    if json.len() as u64 != layer.size {
        return Err(LayerError::Skip(format!(
            "layer {index}: blob has {} bytes, the descriptor says {}",
            json.len(),
            layer.size
        )));
    }
    Ok(SigstoreBundle {
        json,
        media_type: artifact_type.to_string(),
        origin: Origin {
            manifest: format!("{}@{}", repo.name, manifest.digest),
            layer: Some(index),
        },
    })
}
