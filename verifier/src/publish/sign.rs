//! `vouch sign` and `vouch verify`: signing an image the way cosign does, and asking the gate about
//! an image by name.
//!
//! Signing writes what cosign 2.x writes for `cosign sign --key K --tlog-upload=false`: a simple-signing
//! payload naming the repository and the manifest digest, signed with the key, stored as a layer of
//! the OCI manifest tagged `sha256-<hex>.sig` in the image's repository (or in a signature
//! repository, like `COSIGN_REPOSITORY`). A `.sig` manifest that already exists keeps its layers and
//! gains one; a signature this key already made over the same payload is not added twice.
//!
//! Verifying builds the [`GateRequest`] a container start of that image would produce and hands it
//! to the same [`crate::NodeGate`], so the verdict and the denial line are the shim's.

use std::path::PathBuf;

use base64::Engine;
use serde::Serialize;

use crate::cosign_key::{KeyError, SigningKey};
use crate::gate::ImageIdentity;
use crate::keys::PublicKey;
use crate::reference::{Reference, DOCKER_HUB};
use crate::registry::{
    is_image_manifest, sha256_digest, tag_schema_tag, Descriptor, ManifestDocument, Registry,
    RegistryError, ANNOTATION_SIGNATURE, DOCKER_CONTAINER_CONFIG, DOCKER_MANIFEST, OCI_CONFIG,
    OCI_MANIFEST, SIMPLE_SIGNING,
};
use crate::signature::COSIGN_SIGNATURE_TYPE;

/// The tag an image is resolved by when its reference names neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
/// How go-containerregistry (and so cosign) spells Docker Hub in a repository name.
const DOCKER_HUB_GGCR: &str = "index.docker.io";

pub type Result<T, E = SignError> = std::result::Result<T, E>;

/// What can go wrong signing or resolving an image; each renders as one line.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The image reference (or signature repository) is not a valid reference.
    #[error(transparent)]
    Reference(#[from] crate::Error),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The existing `.sig` manifest is not something a signature can be added to.
    #[error("{what}: {reason}")]
    SignatureManifest { what: String, reason: String },
    /// A local file or directory (policy override) could not be written or named.
    #[error("{}: {reason}", path.display())]
    Local { path: PathBuf, reason: String },
}

/// The image name as the registry needs it: repository and tag or digest.
fn parse(image_ref: &str) -> Result<Reference> {
    Ok(Reference::parse(image_ref)?)
}

/// Resolves `image_ref` to the identity the gate decides on: the normalised repository and the
/// manifest (or index) digest. A reference pinned by digest is taken as is, without asking the
/// registry (a container start of it uses that digest too); otherwise the tag (default `latest`)
/// is resolved in the registry. A registry that cannot be reached is an error, never a guess.
pub fn resolve_image(registry: &Registry, image_ref: &str) -> Result<ImageIdentity> {
    let reference = parse(image_ref)?;
    let digest = match &reference.digest {
        Some(d) => d.clone(),
        None => {
            let tag = reference.tag.as_deref().unwrap_or(DEFAULT_TAG);
            registry.get_manifest(&reference.repository, tag)?.digest
        }
    };
    Ok(ImageIdentity {
        name: image_ref.to_string(),
        repository: reference.repository,
        digest,
    })
}

/// The `critical.identity.docker-reference` cosign writes for `repository` (normalised): the
/// repository without tag or digest, as go-containerregistry names it, which spells Docker Hub
/// `index.docker.io`. vouch's verifier normalises both sides, so either spelling matches.
pub fn docker_reference(repository: &str) -> String {
    match repository.strip_prefix(DOCKER_HUB) {
        Some(rest) if rest.starts_with('/') => format!("{DOCKER_HUB_GGCR}{rest}"),
        _ => repository.to_string(),
    }
}

/// cosign's simple-signing payload, byte for byte: compact JSON, keys in cosign's order,
/// `optional` null.
pub fn simple_signing_payload(docker_reference: &str, digest: &str) -> Vec<u8> {
    // Encoding a string as JSON cannot fail.
    let s = |v: &str| serde_json::to_string(v).unwrap_or_default();
    format!(
        "{{\"critical\":{{\"identity\":{{\"docker-reference\":{}}},\"image\":{{\"docker-manifest-digest\":{}}},\"type\":{}}},\"optional\":null}}",
        s(docker_reference),
        s(digest),
        s(COSIGN_SIGNATURE_TYPE),
    )
    .into_bytes()
}

/// The config blob of a `.sig` image: an empty image config whose `rootfs.diff_ids` are the
/// signature layers (uncompressed, so each diff id is the layer digest), as go-containerregistry
/// leaves it after appending them.
pub fn signature_config(layers: &[Descriptor]) -> Vec<u8> {
    #[derive(Serialize)]
    struct RootFs<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        diff_ids: Vec<&'a str>,
    }
    #[derive(Serialize)]
    struct Config<'a> {
        architecture: &'static str,
        os: &'static str,
        config: serde_json::Map<String, serde_json::Value>,
        rootfs: RootFs<'a>,
    }
    let config = Config {
        architecture: "",
        os: "",
        config: serde_json::Map::new(),
        rootfs: RootFs {
            kind: "layers",
            diff_ids: layers.iter().map(|l| l.digest.as_str()).collect(),
        },
    };
    // Plain strings and vectors: serialising cannot fail.
    serde_json::to_vec(&config).unwrap_or_default()
}

/// The new state of a `.sig` manifest after [`add_signature`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureManifest {
    /// Layer `index` already holds this signature (or one by the same key over the same payload):
    /// nothing to push.
    AlreadySigned { index: usize },
    /// The manifest to push, and its config blob (already referenced by `manifest.config`).
    Updated {
        manifest: Box<ManifestDocument>,
        config: Vec<u8>,
    },
}

/// Adds a simple-signing layer (`payload`, signed `signature_b64`) to the `.sig` manifest
/// `existing` (a new OCI manifest when `None`). Existing layers are kept in order and the new one
/// goes last, as cosign appends. `same_signer` says whether an existing layer over the same
/// payload was made by the signing key (ECDSA signatures differ each time: byte equality alone
/// would add a copy at every run).
pub fn add_signature(
    existing: Option<&ManifestDocument>,
    payload: &[u8],
    signature_b64: &str,
    same_signer: impl Fn(&str) -> bool,
) -> Result<SignatureManifest, String> {
    let payload_digest = sha256_digest(payload);
    let (media_type, mut layers) = match existing {
        None => (OCI_MANIFEST.to_string(), Vec::new()),
        Some(doc) => {
            let media_type = doc.media_type.as_deref().unwrap_or(OCI_MANIFEST);
            if !is_image_manifest(media_type) {
                return Err(format!(
                    "media type {media_type} is not an image manifest: refusing to overwrite it"
                ));
            }
            if !doc.manifests.is_empty() {
                return Err(
                    "it is an index, not an image manifest: refusing to overwrite it".into(),
                );
            }
            (media_type.to_string(), doc.layers.clone())
        }
    };
    let duplicate = layers.iter().position(|l| {
        l.media_type == SIMPLE_SIGNING
            && l.digest == payload_digest
            && l.annotations
                .get(ANNOTATION_SIGNATURE)
                .is_some_and(|s| s == signature_b64 || same_signer(s))
    });
    if let Some(index) = duplicate {
        return Ok(SignatureManifest::AlreadySigned { index });
    }
    layers.push(Descriptor {
        media_type: SIMPLE_SIGNING.to_string(),
        digest: payload_digest,
        size: payload.len() as u64,
        artifact_type: None,
        annotations: [(ANNOTATION_SIGNATURE.to_string(), signature_b64.to_string())]
            .into_iter()
            .collect(),
    });
    let (manifest, config) = cosign_manifest(media_type, layers, existing);
    Ok(SignatureManifest::Updated { manifest, config })
}

/// Pushes a `.sig`/`.att` manifest made by [`cosign_manifest`]: the new layer's blob, the config,
/// then the manifest under `tag`. Returns the manifest digest.
pub(crate) fn push_cosign_manifest(
    registry: &Registry,
    repository: &str,
    tag: &str,
    layer: &[u8],
    manifest: &ManifestDocument,
    config: &[u8],
) -> std::result::Result<String, crate::registry::RegistryError> {
    registry.push_blob(repository, layer)?;
    registry.push_blob(repository, config)?;
    let media_type = manifest.media_type.as_deref().unwrap_or(OCI_MANIFEST);
    registry.push_manifest(repository, tag, media_type, &manifest.to_bytes())
}

/// A cosign `.sig`/`.att` manifest of `layers` in `media_type`, with its config blob (which lists
/// the layer digests, as cosign writes it). Annotations of an `existing` manifest (cosign sets none,
/// other tools may) are kept.
pub(crate) fn cosign_manifest(
    media_type: String,
    layers: Vec<Descriptor>,
    existing: Option<&ManifestDocument>,
) -> (Box<ManifestDocument>, Vec<u8>) {
    let config = signature_config(&layers);
    let config_media_type = if media_type == DOCKER_MANIFEST {
        DOCKER_CONTAINER_CONFIG
    } else {
        OCI_CONFIG
    };
    let manifest = ManifestDocument {
        schema_version: 2,
        media_type: Some(media_type),
        config: Some(Descriptor {
            media_type: config_media_type.to_string(),
            digest: sha256_digest(&config),
            size: config.len() as u64,
            ..Descriptor::default()
        }),
        layers,
        annotations: existing.map(|d| d.annotations.clone()).unwrap_or_default(),
        ..ManifestDocument::default()
    };
    (Box::new(manifest), config)
}

/// What [`sign_image`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Signed {
    /// The normalised repository of the image.
    pub repository: String,
    /// The manifest (or index) digest that was signed.
    pub digest: String,
    /// Where the signature is: `<repository>:sha256-<hex>.sig`.
    pub signature_ref: String,
    /// The digest of the `.sig` manifest now under that tag.
    pub signature_manifest: String,
    /// False when the key had already signed this digest there (nothing was pushed).
    pub added: bool,
    /// How many layers (signatures) the `.sig` manifest holds.
    pub signatures: usize,
}

/// Signs `image_ref` with `key` and stores the signature where cosign would: the `.sig` tag of
/// the digest in the image's repository, or in `signature_repository`. A tag is resolved to its
/// digest in the registry; a pinned digest is checked to exist there.
pub fn sign_image(
    registry: &Registry,
    key: &SigningKey,
    image_ref: &str,
    signature_repository: Option<&str>,
) -> Result<Signed> {
    let reference = parse(image_ref)?;
    let repository = reference.repository.clone();
    let digest = match &reference.digest {
        Some(d) => registry.get_manifest(&repository, d)?.digest,
        None => {
            let tag = reference.tag.as_deref().unwrap_or(DEFAULT_TAG);
            registry.get_manifest(&repository, tag)?.digest
        }
    };
    let sig_repo = match signature_repository {
        Some(r) => {
            let parsed = parse(r)?;
            if parsed.tag.is_some() || parsed.digest.is_some() {
                return Err(SignError::Reference(crate::Error::Reference {
                    reference: r.to_string(),
                    reason: "a signature repository has no tag or digest".into(),
                }));
            }
            parsed.repository
        }
        None => repository.clone(),
    };
    let tag = tag_schema_tag(&digest, ".sig")?;
    let signature_ref = format!("{sig_repo}:{tag}");

    let payload = simple_signing_payload(&docker_reference(&repository), &digest);
    let signature = key.sign(&payload)?;
    let signature_b64 = base64::engine::general_purpose::STANDARD.encode(&signature);
    let public = PublicKey::from_spki_der(&key.public_key_der()?).ok();
    let same_signer = |b64: &str| {
        let (Some(public), Ok(sig)) = (
            public.as_ref(),
            base64::engine::general_purpose::STANDARD.decode(b64.trim()),
        ) else {
            return false;
        };
        public.verify(&payload, &sig).is_ok()
    };

    let existing = match registry.get_manifest(&sig_repo, &tag) {
        Ok(m) => {
            let what = format!("signature manifest {signature_ref}");
            if !is_image_manifest(&m.media_type) {
                return Err(SignError::SignatureManifest {
                    what,
                    reason: format!(
                        "media type {} is not an image manifest: refusing to overwrite it",
                        m.media_type
                    ),
                });
            }
            let doc = ManifestDocument::parse(&m.bytes)
                .map_err(|reason| SignError::SignatureManifest { what, reason })?;
            Some((doc, m.digest))
        }
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(e.into()),
    };
    let updated = add_signature(
        existing.as_ref().map(|(d, _)| d),
        &payload,
        &signature_b64,
        same_signer,
    )
    .map_err(|reason| SignError::SignatureManifest {
        what: format!("signature manifest {signature_ref}"),
        reason,
    })?;
    match updated {
        SignatureManifest::AlreadySigned { .. } => {
            let (doc, manifest_digest) = existing.unwrap_or_default();
            Ok(Signed {
                repository,
                digest,
                signature_ref,
                signature_manifest: manifest_digest,
                added: false,
                signatures: doc.layers.len(),
            })
        }
        SignatureManifest::Updated { manifest, config } => {
            let manifest_digest =
                push_cosign_manifest(registry, &sig_repo, &tag, &payload, &manifest, &config)?;
            Ok(Signed {
                repository,
                digest,
                signature_ref,
                signature_manifest: manifest_digest,
                added: true,
                signatures: manifest.layers.len(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::{Arc, Mutex};
    use std::time::SystemTime;

    use super::*;
    use crate::config::RegistryConfig;
    use crate::material::SignatureMaterial;
    use crate::signature::{self, Authority, Image, VerifyOptions};

    const FIXTURES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/fixtures/signatures/containers-image"
    );
    const FIXTURE_REPO: &str = "192.168.64.2:5000/cosign-signed-single-sample";
    const FIXTURE_DIGEST: &str =
        "sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00";

    /// The payload and signature of the real cosign signature in the containers/image fixture.
    fn fixture() -> (Vec<u8>, String) {
        let bytes = std::fs::read(format!("{FIXTURES}/dir-img-cosign-valid/signature-1")).unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(bytes.strip_prefix(b"\x00sigstore-json\n").unwrap()).unwrap();
        let payload = base64::engine::general_purpose::STANDARD
            .decode(json["payload"].as_str().unwrap())
            .unwrap();
        let sig = json["annotations"][ANNOTATION_SIGNATURE]
            .as_str()
            .unwrap()
            .to_string();
        (payload, sig)
    }

    #[test]
    fn payload_is_byte_identical_to_cosigns() {
        let (payload, sig) = fixture();
        let built = simple_signing_payload(&docker_reference(FIXTURE_REPO), FIXTURE_DIGEST);
        assert_eq!(
            String::from_utf8(built.clone()).unwrap(),
            String::from_utf8(payload).unwrap()
        );
        // So cosign's own signature verifies over the bytes vouch builds.
        let key = PublicKey::from_pem(
            &std::fs::read_to_string(format!("{FIXTURES}/cosign.pub")).unwrap(),
        )
        .unwrap();
        let sig = base64::engine::general_purpose::STANDARD
            .decode(sig)
            .unwrap();
        key.verify(&built, &sig).unwrap();
        let mut other = built.clone();
        other[20] ^= 1;
        assert!(key.verify(&other, &sig).is_err());
    }

    #[test]
    fn docker_reference_spells_repositories_as_cosign_does() {
        assert_eq!(docker_reference(FIXTURE_REPO), FIXTURE_REPO);
        assert_eq!(
            docker_reference("docker.io/library/busybox"),
            "index.docker.io/library/busybox"
        );
        assert_eq!(docker_reference("docker.iox/a"), "docker.iox/a");
        assert_eq!(docker_reference("ghcr.io/acme/app"), "ghcr.io/acme/app");
        // The verifier normalises `index.docker.io` back to `docker.io`.
        assert_eq!(
            Reference::parse("index.docker.io/library/busybox")
                .unwrap()
                .repository,
            "docker.io/library/busybox"
        );
    }

    fn updated(r: Result<SignatureManifest, String>) -> (ManifestDocument, Vec<u8>) {
        match r.unwrap() {
            SignatureManifest::Updated { manifest, config } => (*manifest, config),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn new_signature_manifest_has_cosigns_media_types() {
        let payload = simple_signing_payload(FIXTURE_REPO, FIXTURE_DIGEST);
        let (m, config) = updated(add_signature(None, &payload, "c2ln", |_| false));
        assert_eq!(m.schema_version, 2);
        assert_eq!(m.media_type.as_deref(), Some(OCI_MANIFEST));
        let c = m.config.as_ref().unwrap();
        assert_eq!(c.media_type, OCI_CONFIG);
        assert_eq!(c.digest, sha256_digest(&config));
        assert_eq!(c.size, config.len() as u64);
        assert_eq!(m.layers.len(), 1);
        let l = &m.layers[0];
        assert_eq!(l.media_type, SIMPLE_SIGNING);
        assert_eq!(l.digest, sha256_digest(&payload));
        assert_eq!(l.size, payload.len() as u64);
        assert_eq!(l.annotations[ANNOTATION_SIGNATURE], "c2ln");
        assert_eq!(
            String::from_utf8(config).unwrap(),
            format!(
                "{{\"architecture\":\"\",\"os\":\"\",\"config\":{{}},\"rootfs\":{{\"type\":\"layers\",\"diff_ids\":[\"{}\"]}}}}",
                sha256_digest(&payload)
            )
        );
        // What is pushed parses back as what discovery reads.
        assert_eq!(ManifestDocument::parse(&m.to_bytes()).unwrap(), m);
    }

    #[test]
    fn signatures_are_appended_and_duplicates_skipped() {
        let payload = simple_signing_payload(FIXTURE_REPO, FIXTURE_DIGEST);
        let (first, _) = updated(add_signature(None, &payload, "QQ==", |_| false));
        // Another key's signature over the same payload: appended after the first.
        let (second, config) = updated(add_signature(Some(&first), &payload, "Qg==", |_| false));
        assert_eq!(second.layers.len(), 2);
        assert_eq!(second.layers[0], first.layers[0]);
        assert_eq!(second.layers[1].annotations[ANNOTATION_SIGNATURE], "Qg==");
        let config: serde_json::Value = serde_json::from_slice(&config).unwrap();
        assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
        // The identical signature again: nothing to push.
        assert_eq!(
            add_signature(Some(&second), &payload, "Qg==", |_| false).unwrap(),
            SignatureManifest::AlreadySigned { index: 1 }
        );
        // A fresh (ECDSA: different) signature by a key that already signed this payload.
        assert_eq!(
            add_signature(Some(&second), &payload, "Qw==", |s| s == "QQ==").unwrap(),
            SignatureManifest::AlreadySigned { index: 0 }
        );
        // The same key over another digest's payload is a new signature.
        let other = simple_signing_payload(FIXTURE_REPO, &sha256_digest(b"x"));
        let (third, _) = updated(add_signature(Some(&second), &other, "QQ==", |_| true));
        assert_eq!(third.layers.len(), 3);
    }

    #[test]
    fn existing_docker_manifests_keep_their_types_and_foreign_layers() {
        let existing = ManifestDocument {
            schema_version: 2,
            media_type: Some(DOCKER_MANIFEST.into()),
            layers: vec![Descriptor {
                media_type: "application/vnd.example+json".into(),
                digest: sha256_digest(b"other"),
                size: 5,
                ..Descriptor::default()
            }],
            annotations: [("org.example".to_string(), "kept".to_string())]
                .into_iter()
                .collect(),
            ..ManifestDocument::default()
        };
        let (m, _) = updated(add_signature(Some(&existing), b"{}", "QQ==", |_| false));
        assert_eq!(m.media_type.as_deref(), Some(DOCKER_MANIFEST));
        assert_eq!(
            m.config.as_ref().unwrap().media_type,
            DOCKER_CONTAINER_CONFIG
        );
        assert_eq!(m.layers.len(), 2);
        assert_eq!(m.layers[0], existing.layers[0]);
        assert_eq!(m.annotations["org.example"], "kept");

        let index = ManifestDocument {
            schema_version: 2,
            media_type: Some(crate::registry::OCI_INDEX.into()),
            ..ManifestDocument::default()
        };
        let e = add_signature(Some(&index), b"{}", "QQ==", |_| false).unwrap_err();
        assert!(e.contains("not an image manifest"), "{e}");
    }

    // ---- against an in-memory registry ---------------------------------------------------

    /// A minimal OCI distribution registry on loopback: manifests by tag and digest, monolithic
    /// blob uploads, no referrers API. One request per connection.
    #[derive(Default)]
    struct Store {
        manifests: HashMap<(String, String), (String, Vec<u8>)>,
        blobs: HashMap<String, Vec<u8>>,
        requests: usize,
    }

    struct TestRegistry {
        host: String,
        store: Arc<Mutex<Store>>,
    }

    impl TestRegistry {
        fn start() -> TestRegistry {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let host = listener.local_addr().unwrap().to_string();
            let store = Arc::new(Mutex::new(Store::default()));
            let s = Arc::clone(&store);
            std::thread::spawn(move || {
                for stream in listener.incoming().flatten() {
                    let _ = serve(stream, &s);
                }
            });
            TestRegistry { host, store }
        }

        fn client(&self) -> Registry {
            Registry::new(&RegistryConfig {
                plain_http: vec![self.host.clone()],
                timeout_ms: 5000,
                ..Default::default()
            })
            .unwrap()
        }

        /// Stores an image manifest under `tag`; returns its digest.
        fn put_image(&self, path: &str, tag: &str) -> String {
            let bytes = format!(
                "{{\"schemaVersion\":2,\"mediaType\":\"{OCI_MANIFEST}\",\"config\":{{\"mediaType\":\"{OCI_CONFIG}\",\"digest\":\"{}\",\"size\":2}},\"layers\":[]}}",
                sha256_digest(b"{}")
            )
            .into_bytes();
            let digest = sha256_digest(&bytes);
            let mut st = self.store.lock().unwrap();
            for r in [tag.to_string(), digest.clone()] {
                st.manifests.insert(
                    (path.to_string(), r),
                    (OCI_MANIFEST.to_string(), bytes.clone()),
                );
            }
            digest
        }

        fn manifest(&self, path: &str, reference: &str) -> Option<Vec<u8>> {
            let st = self.store.lock().unwrap();
            st.manifests
                .get(&(path.to_string(), reference.to_string()))
                .map(|(_, b)| b.clone())
        }
    }

    fn serve(stream: TcpStream, store: &Mutex<Store>) -> std::io::Result<()> {
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let (mut length, mut content_type) = (0usize, String::new());
        loop {
            let mut h = String::new();
            reader.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                match k.to_ascii_lowercase().as_str() {
                    "content-length" => length = v.trim().parse().unwrap_or(0),
                    "content-type" => content_type = v.trim().to_string(),
                    _ => {}
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let mut st = store.lock().unwrap_or_else(|p| p.into_inner());
        st.requests += 1;
        let mut headers: Vec<(String, String)> = Vec::new();
        let (status, out): (u16, Vec<u8>) = (|| {
            let Some(rest) = path.strip_prefix("/v2/") else {
                return (404, Vec::new());
            };
            for kind in ["/manifests/", "/blobs/uploads/", "/blobs/", "/referrers/"] {
                let Some((name, reference)) = rest.split_once(kind) else {
                    continue;
                };
                let key = (name.to_string(), reference.to_string());
                return match (kind, method.as_str()) {
                    ("/manifests/", "GET" | "HEAD") => match st.manifests.get(&key) {
                        Some((t, b)) => {
                            headers.push(("Content-Type".into(), t.clone()));
                            headers.push(("Docker-Content-Digest".into(), sha256_digest(b)));
                            (200, b.clone())
                        }
                        None => (404, Vec::new()),
                    },
                    ("/manifests/", "PUT") => {
                        let digest = sha256_digest(&body);
                        for r in [reference.to_string(), digest.clone()] {
                            st.manifests.insert(
                                (name.to_string(), r),
                                (content_type.clone(), body.clone()),
                            );
                        }
                        headers.push(("Docker-Content-Digest".into(), digest));
                        (201, Vec::new())
                    }
                    ("/blobs/uploads/", "POST") => {
                        headers.push(("Location".into(), format!("/v2/{name}/blobs/uploads/u1")));
                        (202, Vec::new())
                    }
                    ("/blobs/uploads/", "PUT") => {
                        let digest = query
                            .split('&')
                            .find_map(|p| p.strip_prefix("digest="))
                            .unwrap_or("")
                            .replace("%3A", ":");
                        if digest != sha256_digest(&body) {
                            return (400, Vec::new());
                        }
                        st.blobs.insert(digest, body.clone());
                        (201, Vec::new())
                    }
                    ("/blobs/", "GET" | "HEAD") => match st.blobs.get(reference) {
                        Some(b) => (200, b.clone()),
                        None => (404, Vec::new()),
                    },
                    _ => (404, Vec::new()),
                };
            }
            (404, Vec::new())
        })();
        drop(st);
        let mut out_stream = stream;
        let mut head = format!("HTTP/1.1 {status} X\r\nConnection: close\r\n");
        for (k, v) in &headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", out.len()));
        out_stream.write_all(head.as_bytes())?;
        if method != "HEAD" {
            out_stream.write_all(&out)?;
        }
        out_stream.flush()
    }

    fn verify_with(
        registry: &Registry,
        repository: &str,
        digest: &str,
        sig_repo: Option<&str>,
        key: &SigningKey,
    ) -> std::result::Result<(), String> {
        let public = PublicKey::from_spki_der(&key.public_key_der().unwrap()).unwrap();
        let found = registry
            .discover_signatures(repository, digest, sig_repo)
            .map_err(|e| e.to_string())?;
        let image = Image { digest, repository };
        let authority = Authority::Key {
            name: "k",
            key: &public,
            rekor: None,
        };
        let mut last = "no material".to_string();
        for m in &found.material {
            let SignatureMaterial::Simple(m) = m else {
                panic!("not a simple-signing signature: {m:?}");
            };
            match signature::verify_simple_signing(
                m,
                &image,
                &authority,
                &VerifyOptions::default(),
                SystemTime::now(),
            ) {
                Ok(_) => return Ok(()),
                Err(e) => last = e.to_string(),
            }
        }
        Err(last)
    }

    #[test]
    fn sign_resolves_pushes_appends_and_the_verifier_accepts_it() {
        let reg = TestRegistry::start();
        let client = reg.client();
        let repo = format!("{}/team/app", reg.host);
        let digest = reg.put_image("team/app", "v1");
        let a = SigningKey::generate_p256().unwrap();
        let b = SigningKey::generate_p256().unwrap();

        // Resolution: by tag from the registry, pinned digests as given.
        let id = resolve_image(&client, &format!("{repo}:v1")).unwrap();
        assert_eq!(
            (id.repository.as_str(), id.digest.as_str()),
            (repo.as_str(), digest.as_str())
        );
        assert_eq!(id.name, format!("{repo}:v1"));
        let pinned = format!("{repo}@{}", sha256_digest(b"elsewhere"));
        assert_eq!(
            resolve_image(&client, &pinned).unwrap().digest,
            sha256_digest(b"elsewhere")
        );
        let e = resolve_image(&client, &format!("{repo}:nope")).unwrap_err();
        assert!(
            matches!(&e, SignError::Registry(r) if r.is_not_found()),
            "{e}"
        );
        let e = resolve_image(&client, "Bad/Ref").unwrap_err();
        assert!(matches!(e, SignError::Reference(_)), "{e}");

        assert!(verify_with(&client, &repo, &digest, None, &a).is_err());
        let signed = sign_image(&client, &a, &format!("{repo}:v1"), None).unwrap();
        let tag = format!("sha256-{}.sig", digest.trim_start_matches("sha256:"));
        assert_eq!(signed.digest, digest);
        assert_eq!(signed.repository, repo);
        assert_eq!(signed.signature_ref, format!("{repo}:{tag}"));
        assert!(signed.added);
        assert_eq!(signed.signatures, 1);
        let stored = reg.manifest("team/app", &tag).unwrap();
        assert_eq!(signed.signature_manifest, sha256_digest(&stored));
        let doc = ManifestDocument::parse(&stored).unwrap();
        assert_eq!(doc.media_type.as_deref(), Some(OCI_MANIFEST));
        // The config and payload blobs were pushed.
        {
            let st = reg.store.lock().unwrap();
            assert!(st.blobs.contains_key(&doc.config.as_ref().unwrap().digest));
            assert!(st.blobs.contains_key(&doc.layers[0].digest));
        }
        verify_with(&client, &repo, &digest, None, &a).unwrap();
        assert!(verify_with(&client, &repo, &digest, None, &b).is_err());

        // Signing again with the same key (by digest this time) adds nothing.
        let again = sign_image(&client, &a, &format!("{repo}@{digest}"), None).unwrap();
        assert!(!again.added);
        assert_eq!(again.signatures, 1);
        assert_eq!(again.signature_manifest, signed.signature_manifest);
        assert_eq!(reg.manifest("team/app", &tag).unwrap(), stored);

        // Another key appends; both verify.
        let second = sign_image(&client, &b, &format!("{repo}:v1"), None).unwrap();
        assert!(second.added);
        assert_eq!(second.signatures, 2);
        let doc2 = ManifestDocument::parse(&reg.manifest("team/app", &tag).unwrap()).unwrap();
        assert_eq!(doc2.layers[0], doc.layers[0]);
        verify_with(&client, &repo, &digest, None, &a).unwrap();
        verify_with(&client, &repo, &digest, None, &b).unwrap();

        // A pinned digest the registry does not have cannot be signed.
        let e = sign_image(&client, &a, &pinned, None).unwrap_err();
        assert!(e.to_string().contains("not found"), "{e}");
    }

    #[test]
    fn signature_repository_holds_the_signature() {
        let reg = TestRegistry::start();
        let client = reg.client();
        let repo = format!("{}/team/app", reg.host);
        let sigs = format!("{}/signatures", reg.host);
        let digest = reg.put_image("team/app", "latest");
        let key = SigningKey::generate_p256().unwrap();
        // No tag: `latest`.
        let signed = sign_image(&client, &key, &repo, Some(&sigs)).unwrap();
        assert!(signed.signature_ref.starts_with(&format!("{sigs}:sha256-")));
        let tag = tag_schema_tag(&digest, ".sig").unwrap();
        assert!(reg.manifest("signatures", &tag).is_some());
        assert!(reg.manifest("team/app", &tag).is_none());
        verify_with(&client, &repo, &digest, Some(&sigs), &key).unwrap();
        assert!(verify_with(&client, &repo, &digest, None, &key).is_err());
        let e = sign_image(&client, &key, &repo, Some(&format!("{sigs}:x"))).unwrap_err();
        assert!(e.to_string().contains("no tag or digest"), "{e}");
    }

    #[test]
    fn unreachable_registry_is_an_error_naming_it() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let client = Registry::new(&RegistryConfig {
            plain_http: vec![format!("127.0.0.1:{port}")],
            ..Default::default()
        })
        .unwrap();
        let e = resolve_image(&client, &format!("127.0.0.1:{port}/x:1")).unwrap_err();
        assert!(
            matches!(&e, SignError::Registry(r) if r.is_unreachable()),
            "{e}"
        );
        let key = SigningKey::generate_p256().unwrap();
        let e = sign_image(&client, &key, &format!("127.0.0.1:{port}/x:1"), None).unwrap_err();
        assert!(e.to_string().starts_with("registry unreachable"), "{e}");
        assert!(!e.to_string().contains('\n'));
    }
}
