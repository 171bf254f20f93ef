//! The registry client and signature discovery against a real `docker-registry` (2.8, no referrers
//! API) on loopback. Each test starts its own registry in a temporary directory and stops it by PID.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use base64::Engine;
use vouch_verifier::config::RegistryConfig;
use vouch_verifier::material::SignatureMaterial;
use vouch_verifier::registry::{
    sha256_digest, tag_schema_tag, Descriptor, Limits, ManifestDocument, ReferrersSource, Registry,
    RegistryError, ANNOTATION_BUNDLE, ANNOTATION_SIGNATURE, MAX_SIGNATURE_LAYER_BYTES, OCI_EMPTY,
    OCI_INDEX, OCI_MANIFEST, SIGSTORE_BUNDLE_V03, SIMPLE_SIGNING,
};

/// A `docker-registry serve` on a free loopback port, killed by PID on drop.
struct TestRegistry {
    child: Child,
    host: String,
    _dir: tempfile::TempDir,
}

impl TestRegistry {
    fn start() -> Result<TestRegistry> {
        let dir = tempfile::tempdir()?;
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let config = dir.path().join("registry.yml");
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
                     storage:\n  filesystem:\n    rootdirectory: {}\n\
                     http:\n  addr: 127.0.0.1:{port}\n",
                    dir.path().join("data").display()
                ),
            )?;
            let log = std::fs::File::create(dir.path().join("registry.log"))?;
            let mut child = Command::new("docker-registry")
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .context("spawn docker-registry (run hack/setup.sh)")?;
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Ok(TestRegistry {
                        child,
                        host: format!("127.0.0.1:{port}"),
                        _dir: dir,
                    });
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        bail!(
            "docker-registry did not start: {}",
            std::fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default()
        )
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn repo(&self, path: &str) -> String {
        format!("{}/{path}", self.host)
    }

    fn client(&self) -> Registry {
        self.client_with(Limits::default())
    }

    fn client_with(&self, limits: Limits) -> Registry {
        Registry::new(&RegistryConfig {
            plain_http: vec![self.host.clone()],
            timeout_ms: 2000,
            ..Default::default()
        })
        .expect("client")
        .with_limits(limits)
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

fn desc(media_type: &str, bytes: &[u8]) -> Descriptor {
    Descriptor {
        media_type: media_type.to_string(),
        digest: sha256_digest(bytes),
        size: bytes.len() as u64,
        ..Default::default()
    }
}

/// Pushes a small single-layer image tagged `tag`; returns its manifest digest.
fn push_image(reg: &Registry, repo: &str, tag: &str, content: &[u8]) -> Result<String> {
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    reg.push_blob(repo, config)?;
    reg.push_blob(repo, content)?;
    let manifest = ManifestDocument {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.into()),
        config: Some(desc("application/vnd.oci.image.config.v1+json", config)),
        layers: vec![desc("application/vnd.oci.image.layer.v1.tar", content)],
        ..Default::default()
    };
    Ok(reg.push_manifest(repo, tag, OCI_MANIFEST, &manifest.to_bytes())?)
}

/// A cosign simple-signing payload for `digest` in `repo`.
fn payload(repo: &str, digest: &str) -> Vec<u8> {
    format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"{repo}"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":null}}"#
    )
    .into_bytes()
}

/// One `.sig` layer: pushes the payload blob, returns its descriptor with `annotations`.
fn sig_layer(
    reg: &Registry,
    repo: &str,
    payload: &[u8],
    annotations: &[(&str, &str)],
) -> Result<Descriptor> {
    reg.push_blob(repo, payload)?;
    let mut d = desc(SIMPLE_SIGNING, payload);
    d.annotations = annotations
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect::<BTreeMap<_, _>>();
    Ok(d)
}

/// Pushes a cosign-shaped `.sig` manifest for `digest` holding `layers`, into `sig_repo`.
fn push_sig(
    reg: &Registry,
    sig_repo: &str,
    digest: &str,
    layers: Vec<Descriptor>,
) -> Result<String> {
    let config = b"{}";
    reg.push_blob(sig_repo, config)?;
    let manifest = ManifestDocument {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.into()),
        config: Some(desc("application/vnd.oci.image.config.v1+json", config)),
        layers,
        ..Default::default()
    };
    Ok(reg.push_manifest(
        sig_repo,
        &tag_schema_tag(digest, ".sig")?,
        OCI_MANIFEST,
        &manifest.to_bytes(),
    )?)
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn manifest_and_blob_are_fetched_by_digest_and_checked() -> Result<()> {
    let t = TestRegistry::start()?;
    let t0 = Instant::now();
    let reg = t.client();
    eprintln!("Registry::new: {:?}", t0.elapsed());
    let repo = t.repo("team/app");
    let t0 = Instant::now();
    let digest = push_image(&reg, &repo, "v1", b"layer bytes")?;

    let by_tag = reg.get_manifest(&repo, "v1")?;
    assert_eq!(by_tag.digest, digest);
    assert_eq!(by_tag.media_type, OCI_MANIFEST);
    let by_digest = reg.get_manifest(&repo, &digest)?;
    assert_eq!(by_digest.bytes, by_tag.bytes);
    assert_eq!(sha256_digest(&by_digest.bytes), digest);
    let doc = ManifestDocument::parse(&by_digest.bytes).map_err(anyhow::Error::msg)?;
    let layer = reg.get_blob(
        &repo,
        &doc.layers[0].digest,
        Limits::default().signature_layer(),
    )?;
    assert_eq!(layer, b"layer bytes");
    eprintln!("push + 3 fetches: {:?}", t0.elapsed());

    // Absent content is "not found", never "unreachable".
    let absent = sha256_digest(b"never pushed");
    let e = reg.get_manifest(&repo, &absent).unwrap_err();
    assert!(e.is_not_found(), "{e}");
    let e = reg
        .get_blob(&repo, &absent, Limits::default().signature_layer())
        .unwrap_err();
    assert!(e.is_not_found(), "{e}");
    let e = reg
        .get_manifest(&t.repo("no/such/repo"), "latest")
        .unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert_eq!(
        e.to_string(),
        format!("manifest {}:latest: not found", t.repo("no/such/repo"))
    );
    Ok(())
}

#[test]
fn sig_tag_built_in_the_test_is_discovered_and_garbage_layers_are_skipped() -> Result<()> {
    let t = TestRegistry::start()?;
    let reg = t.client();
    let repo = t.repo("team/app");
    let digest = push_image(&reg, &repo, "v1", b"signed image")?;
    let p = payload(&repo, &digest);
    let sig = b64(b"not really a signature, verification is someone else's job");
    let rekor = r#"{"SignedEntryTimestamp":"MEUC","Payload":{"logIndex":1}}"#;
    let good = sig_layer(
        &reg,
        &repo,
        &p,
        &[(ANNOTATION_SIGNATURE, &sig), (ANNOTATION_BUNDLE, rekor)],
    )?;
    let bad_b64 = sig_layer(
        &reg,
        &repo,
        b"other payload",
        &[(ANNOTATION_SIGNATURE, "%%%not base64")],
    )?;
    let no_sig = sig_layer(&reg, &repo, b"third payload", &[])?;
    let bad_bundle = sig_layer(
        &reg,
        &repo,
        b"fourth payload",
        &[
            (ANNOTATION_SIGNATURE, &sig),
            (ANNOTATION_BUNDLE, "{garbage"),
        ],
    )?;
    reg.push_blob(&repo, b"x")?;
    let mut wrong_type = desc("application/octet-stream", b"x");
    wrong_type
        .annotations
        .insert(ANNOTATION_SIGNATURE.into(), sig.clone());
    let sig_digest = push_sig(
        &reg,
        &repo,
        &digest,
        vec![good, bad_b64, no_sig, bad_bundle, wrong_type],
    )?;

    let t0 = Instant::now();
    let found = reg.discover_signatures(&repo, &digest, None)?;
    eprintln!("discovery with 4 sig layers: {:?}", t0.elapsed());
    assert_eq!(found.material.len(), 1, "{found:#?}");
    let SignatureMaterial::Simple(s) = &found.material[0] else {
        panic!("not a simple signature: {found:?}");
    };
    assert_eq!(s.payload, p);
    assert_eq!(s.signature_b64, sig);
    assert_eq!(s.rekor_bundle_json.as_deref(), Some(rekor));
    assert_eq!(s.certificate_pem, None);
    assert_eq!(s.origin.manifest, format!("{repo}@{sig_digest}"));
    assert_eq!(s.origin.layer, Some(0));
    let skipped = found.skipped.join("\n");
    assert_eq!(found.skipped.len(), 4, "{skipped}");
    assert!(
        skipped.contains("layer 1: dev.cosignproject.cosign/signature is not valid base64"),
        "{skipped}"
    );
    assert!(
        skipped.contains("layer 2: no dev.cosignproject.cosign/signature annotation"),
        "{skipped}"
    );
    assert!(
        skipped.contains("layer 3: dev.sigstore.cosign/bundle is not a JSON object"),
        "{skipped}"
    );
    assert!(
        skipped.contains("layer 4: media type \"application/octet-stream\""),
        "{skipped}"
    );

    // The same signature kept in a separate signature repository (COSIGN_REPOSITORY).
    let sig_repo = t.repo("signatures");
    let layer = sig_layer(&reg, &sig_repo, &p, &[(ANNOTATION_SIGNATURE, &sig)])?;
    push_sig(&reg, &sig_repo, &digest, vec![layer])?;
    let found = reg.discover_signatures(&repo, &digest, Some(&sig_repo))?;
    assert_eq!(found.material.len(), 1, "{found:#?}");
    assert!(found.skipped.is_empty(), "{:?}", found.skipped);
    let SignatureMaterial::Simple(s) = &found.material[0] else {
        panic!("{found:?}");
    };
    assert!(s
        .origin
        .manifest
        .starts_with(&format!("{sig_repo}@sha256:")));
    Ok(())
}

#[test]
fn image_without_sig_tag_has_zero_signatures() -> Result<()> {
    let t = TestRegistry::start()?;
    let reg = t.client();
    let repo = t.repo("team/unsigned");
    let digest = push_image(&reg, &repo, "v1", b"unsigned image")?;
    let found = reg.discover_signatures(&repo, &digest, None)?;
    assert!(found.material.is_empty(), "{found:?}");
    assert!(found.skipped.is_empty(), "{:?}", found.skipped);
    let r = reg.referrers(&repo, &digest)?;
    assert_eq!(r.source, ReferrersSource::Absent);
    assert!(r.descriptors.is_empty());
    Ok(())
}

#[test]
fn bundle_referrer_is_found_through_the_tag_fallback_without_referrers_api() -> Result<()> {
    let t = TestRegistry::start()?;
    let reg = t.client();
    let repo = t.repo("team/app");
    let digest = push_image(&reg, &repo, "v3", b"cosign v3 image")?;
    let subject = desc(OCI_MANIFEST, &reg.get_manifest(&repo, &digest)?.bytes);
    assert_eq!(subject.digest, digest);

    // What cosign v3 pushes: an artifact manifest with `subject`, `artifactType` and one bundle layer.
    let bundle = br#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{},"messageSignature":{}}"#;
    reg.push_blob(&repo, bundle)?;
    reg.push_blob(&repo, b"{}")?;
    let referrer = ManifestDocument {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.into()),
        artifact_type: Some(SIGSTORE_BUNDLE_V03.into()),
        config: Some(desc(OCI_EMPTY, b"{}")),
        layers: vec![desc(SIGSTORE_BUNDLE_V03, bundle)],
        subject: Some(subject.clone()),
        ..Default::default()
    };
    let referrer_bytes = referrer.to_bytes();
    let referrer_digest = reg.push_manifest(
        &repo,
        &sha256_digest(&referrer_bytes),
        OCI_MANIFEST,
        &referrer_bytes,
    )?;
    // A bundle referrer of another image, listed in this image's index: refused by its subject.
    let mut foreign = referrer.clone();
    foreign.subject = Some(desc(OCI_MANIFEST, b"another image"));
    let foreign_bytes = foreign.to_bytes();
    let foreign_digest = reg.push_manifest(
        &repo,
        &sha256_digest(&foreign_bytes),
        OCI_MANIFEST,
        &foreign_bytes,
    )?;
    // An SBOM referrer: not a signature, ignored silently.
    let sbom_manifest = ManifestDocument {
        artifact_type: Some("application/spdx+json".into()),
        layers: vec![desc(
            "application/vnd.oci.image.layer.v1.tar",
            b"cosign v3 image",
        )],
        ..referrer.clone()
    }
    .to_bytes();
    reg.push_manifest(
        &repo,
        &sha256_digest(&sbom_manifest),
        OCI_MANIFEST,
        &sbom_manifest,
    )?;
    let mut sbom = desc(OCI_MANIFEST, &sbom_manifest);
    sbom.artifact_type = Some("application/spdx+json".into());
    // The OCI 1.1 tag schema index, as clients maintain it on registries without the API.
    let mut entry = desc(OCI_MANIFEST, &referrer_bytes);
    entry.artifact_type = Some(SIGSTORE_BUNDLE_V03.into());
    let mut foreign_entry = desc(OCI_MANIFEST, &foreign_bytes);
    foreign_entry.artifact_type =
        Some("application/vnd.dev.sigstore.bundle+json;version=0.3".into());
    let index = ManifestDocument {
        schema_version: 2,
        media_type: Some(OCI_INDEX.into()),
        manifests: vec![entry, sbom, foreign_entry],
        ..Default::default()
    };
    reg.push_manifest(
        &repo,
        &tag_schema_tag(&digest, "")?,
        OCI_INDEX,
        &index.to_bytes(),
    )?;

    let r = reg.referrers(&repo, &digest)?;
    assert_eq!(
        r.source,
        ReferrersSource::TagSchema,
        "docker-registry 2.8 has no referrers API"
    );
    assert_eq!(r.descriptors.len(), 3);

    let found = reg.discover_signatures(&repo, &digest, None)?;
    assert_eq!(found.material.len(), 1, "{found:#?}");
    let SignatureMaterial::Bundle(b) = &found.material[0] else {
        panic!("not a bundle: {found:?}");
    };
    assert_eq!(b.json, bundle);
    assert_eq!(b.media_type, SIGSTORE_BUNDLE_V03);
    assert_eq!(b.origin.manifest, format!("{repo}@{referrer_digest}"));
    assert_eq!(b.origin.layer, Some(0));
    assert_eq!(found.skipped.len(), 1, "{:?}", found.skipped);
    assert!(
        found.skipped[0].starts_with(&format!("{repo}@{foreign_digest}: subject is sha256:")),
        "{:?}",
        found.skipped
    );
    Ok(())
}

#[test]
fn oversized_layers_and_manifests_are_refused_naming_the_bound() -> Result<()> {
    let t = TestRegistry::start()?;
    let reg = t.client();
    let repo = t.repo("team/big");
    let digest = push_image(&reg, &repo, "v1", b"image with a huge signature")?;
    let huge = vec![b'x'; MAX_SIGNATURE_LAYER_BYTES as usize + 1];
    let huge_digest = reg.push_blob(&repo, &huge)?;

    let e = reg
        .get_blob(&repo, &huge_digest, reg.limits().signature_layer())
        .unwrap_err();
    assert!(matches!(e, RegistryError::TooLarge { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        format!(
            "blob {repo}@{huge_digest}: exceeds the signature layer size bound of 1048576 bytes"
        )
    );

    // In a `.sig` manifest: skipped with the bound named, before any download (declared size).
    let sig = b64(b"sig");
    let mut layer = sig_layer(&reg, &repo, &huge, &[(ANNOTATION_SIGNATURE, &sig)])?;
    push_sig(&reg, &repo, &digest, vec![layer.clone()])?;
    let found = reg.discover_signatures(&repo, &digest, None)?;
    assert!(found.material.is_empty());
    assert!(
        found.skipped[0].contains("exceeds the signature layer size bound of 1048576 bytes"),
        "{:?}",
        found.skipped
    );
    // A descriptor that lies about the size: the download itself stops at the bound.
    layer.size = 10;
    push_sig(&reg, &repo, &digest, vec![layer])?;
    let found = reg.discover_signatures(&repo, &digest, None)?;
    assert!(found.material.is_empty());
    assert!(
        found.skipped[0].contains("exceeds the signature layer size bound of 1048576 bytes"),
        "{:?}",
        found.skipped
    );

    // A manifest bound, lowered to make the image manifest "huge".
    let small = t.client_with(Limits {
        manifest_bytes: 64,
        ..Limits::default()
    });
    let e = small.get_manifest(&repo, &digest).unwrap_err();
    assert!(
        e.to_string()
            .ends_with("exceeds the manifest size bound of 64 bytes"),
        "{e}"
    );
    Ok(())
}

#[test]
fn signatures_beyond_the_count_bound_are_not_considered() -> Result<()> {
    let t = TestRegistry::start()?;
    let reg = t.client_with(Limits {
        max_signatures: 2,
        ..Limits::default()
    });
    let repo = t.repo("team/many");
    let digest = push_image(&reg, &repo, "v1", b"many signatures")?;
    let sig = b64(b"sig");
    let layers = (0..4)
        .map(|i| {
            sig_layer(
                &reg,
                &repo,
                format!("payload {i}").as_bytes(),
                &[(ANNOTATION_SIGNATURE, &sig)],
            )
        })
        .collect::<Result<Vec<_>>>()?;
    push_sig(&reg, &repo, &digest, layers)?;
    let found = reg.discover_signatures(&repo, &digest, None)?;
    assert_eq!(found.material.len(), 2);
    assert_eq!(found.skipped.len(), 1, "{:?}", found.skipped);
    assert!(
        found.skipped[0].contains("more than 2 signatures"),
        "{:?}",
        found.skipped
    );
    Ok(())
}

#[test]
fn stopped_registry_gives_registry_unreachable() -> Result<()> {
    let mut t = TestRegistry::start()?;
    let reg = t.client();
    let repo = t.repo("team/app");
    let digest = push_image(&reg, &repo, "v1", b"soon unreachable")?;
    t.stop();
    let t0 = Instant::now();
    let e = reg.discover_signatures(&repo, &digest, None).unwrap_err();
    eprintln!("unreachable after {:?}: {e}", t0.elapsed());
    assert!(e.is_unreachable(), "{e}");
    assert!(e.to_string().contains("registry unreachable"), "{e}");
    assert!(
        e.to_string()
            .starts_with(&format!("registry unreachable: {}: ", t.host)),
        "{e}"
    );
    let e = reg.get_manifest(&repo, &digest).unwrap_err();
    assert!(e.to_string().contains("registry unreachable"), "{e}");
    Ok(())
}

#[test]
fn a_registry_that_never_answers_times_out_as_unreachable() -> Result<()> {
    // Accepts connections (the kernel's backlog) but never answers.
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let host = listener.local_addr()?.to_string();
    let reg = Registry::new(&RegistryConfig {
        plain_http: vec![host.clone()],
        timeout_ms: 300,
        ..Default::default()
    })?;
    let t0 = Instant::now();
    let e = reg
        .get_manifest(&format!("{host}/x"), "latest")
        .unwrap_err();
    let took = t0.elapsed();
    assert!(
        e.to_string().starts_with(&format!(
            "registry unreachable: {host}: timed out after 300 ms"
        )),
        "{e}"
    );
    assert!(took < Duration::from_secs(3), "{took:?}");
    drop(listener);
    Ok(())
}
