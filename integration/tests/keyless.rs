//! Keyless signatures at container start, end to end: a test Fulcio-like CA and a test Rekor key
//! in a test `trusted_root.json`, cosign-shaped `.sig` manifests and cosign v3 Sigstore bundle
//! referrers pushed to the rig's real registry, containers started through containerd and the
//! vouch shim. Also hostile signature material, which must be refused with a reason, never crash.

mod common;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::SystemTime,
};

use common::*;
use vouch_integration::Rig;
use vouch_verifier::{
    config::RegistryConfig,
    registry::{
        sha256_digest, tag_schema_tag, Descriptor, ManifestDocument, Registry, ANNOTATION_BUNDLE,
        ANNOTATION_CERTIFICATE, ANNOTATION_SIGNATURE, OCI_CONFIG, OCI_EMPTY, OCI_INDEX,
        OCI_MANIFEST, SIGSTORE_BUNDLE_V03, SIMPLE_SIGNING,
    },
    sign::{signature_config, simple_signing_payload},
    signature::testca::{
        cert_pem, dsse_bundle, hashedrekord_body, keyless_annotations, p384_signature,
        public_key_pem, random_key, sign as p256_sign, trusted_root_json, LeafSpec, SigningKey,
        TestCa, TestRekor,
    },
};

const SUBJECT: &str = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main";
const ISSUER: &str = "https://issuer.test";

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A `.sig` layer to push: media type, blob, annotations.
type Layer<'a> = (&'a str, &'a [u8], BTreeMap<String, String>);

/// A test's own world on the shared rig: a namespace, a temp dir for the trusted root and
/// configs, a registry client, and its own test CA and Rekor.
struct Case {
    rig: std::sync::Arc<Rig>,
    ns: String,
    dir: tempfile::TempDir,
    registry: Registry,
    ca: TestCa,
    rekor: TestRekor,
    trusted_root: PathBuf,
}

/// One pulled image: its reference, repository and manifest digest.
struct Image {
    reference: String,
    repository: String,
    digest: String,
}

impl Case {
    fn new() -> Case {
        let rig = shared_rig();
        let ns = rig.namespace();
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("test ca");
        let rekor = TestRekor::new();
        let trusted_root = dir.path().join("trusted_root.json");
        std::fs::write(
            &trusted_root,
            trusted_root_json(&ca, &rekor, "2020-01-01T00:00:00Z"),
        )
        .unwrap();
        let registry = Registry::new(&RegistryConfig {
            plain_http: vec![rig.registry()],
            timeout_ms: 5000,
            ..Default::default()
        })
        .unwrap();
        Case {
            rig,
            ns,
            dir,
            registry,
            ca,
            rekor,
            trusted_root,
        }
    }

    /// Pushes the layout tag (`app`, `debug`, `busybox`) as `repo:v1` and pulls it.
    fn image(&self, layout: &str, repo: &str) -> Image {
        self.rig
            .push_busybox(layout, &format!("{repo}:v1"))
            .unwrap();
        let reference = self.rig.image(&format!("{repo}:v1"));
        self.rig.pull(&self.ns, &reference).unwrap();
        Image {
            reference,
            repository: self.rig.image(repo),
            digest: self.rig.layout_digest(layout).unwrap(),
        }
    }

    /// A policy whose one rule (`signed`) verifies the rig's images with `authority`.
    fn policy(&self, authority: &str) -> String {
        format!(
            "version = 1\ndefault = \"deny\"\n[[rule]]\nname = \"signed\"\nimages = [\"{}/**\"]\naction = \"verify\"\n[[rule.authority]]\n{authority}",
            self.rig.registry()
        )
    }

    /// A keyless authority on the test trusted root; `identity` is the rest of the inline table.
    fn keyless(&self, identity: &str) -> String {
        format!(
            "name = \"ci\"\nkeyless = {{ trusted_root = \"{}\", {identity} }}\n",
            self.trusted_root.display()
        )
    }

    fn right_identity(&self) -> String {
        self.keyless(&format!("issuer = \"{ISSUER}\", subject = \"{SUBJECT}\""))
    }

    /// A node config (with its own, empty verdict cache) in `<dir>/<name>`.
    fn config(&self, name: &str, policy: &str) -> PathBuf {
        write_vouch_config_for(&self.rig, &self.dir.path().join(name), policy)
    }

    fn run(&self, config: &Path, image: &Image, id: &str) -> std::process::Output {
        let cfg = config.display().to_string();
        run_rm(
            &self.rig,
            &self.ns,
            &["--runtime-config-path", &cfg],
            &image.reference,
            id,
            &["echo", "ran"],
        )
    }

    /// A leaf certificate for the test identity (or another issuer), valid `[nb, na]`.
    fn leaf(&self, key: &SigningKey, issuer: &str, nb: i64, na: i64) -> Vec<u8> {
        self.ca.issue(
            key,
            &LeafSpec {
                san_uri: SUBJECT,
                issuer,
                not_before: nb,
                not_after: na,
            },
        )
    }

    /// Pushes a cosign-shaped `.sig` manifest for the image: one layer per `(media type, blob,
    /// annotations)`, the config listing them, under `sha256-<hex>.sig` (replacing what was there).
    fn push_sig(&self, image: &Image, layers: &[Layer<'_>]) {
        let layers: Vec<Descriptor> = layers
            .iter()
            .map(|(media_type, blob, annotations)| {
                self.registry.push_blob(&image.repository, blob).unwrap();
                Descriptor {
                    media_type: media_type.to_string(),
                    digest: sha256_digest(blob),
                    size: blob.len() as u64,
                    artifact_type: None,
                    annotations: annotations.clone(),
                }
            })
            .collect();
        let config = signature_config(&layers);
        self.registry.push_blob(&image.repository, &config).unwrap();
        let manifest = ManifestDocument {
            schema_version: 2,
            media_type: Some(OCI_MANIFEST.into()),
            config: Some(descriptor(OCI_CONFIG, &config)),
            layers,
            ..Default::default()
        };
        self.registry
            .push_manifest(
                &image.repository,
                &tag_schema_tag(&image.digest, ".sig").unwrap(),
                OCI_MANIFEST,
                &manifest.to_bytes(),
            )
            .unwrap();
    }

    /// Pushes `bundle` as cosign v3 does, an OCI 1.1 referrer of the image, and lists it in the
    /// tag-schema index (docker-registry has no referrers API).
    fn push_bundle_referrer(&self, image: &Image, bundle: &[u8]) {
        // What cosign v3 pushes: an OCI 1.1 artifact with `subject`, `artifactType` and the bundle.
        let subject_bytes = self
            .registry
            .get_manifest(&image.repository, &image.digest)
            .unwrap();
        let mut subject = descriptor(&subject_bytes.media_type, &subject_bytes.bytes);
        assert_eq!(subject.digest, image.digest);
        subject.media_type = subject_bytes.media_type.clone();
        self.registry.push_blob(&image.repository, bundle).unwrap();
        self.registry.push_blob(&image.repository, b"{}").unwrap();
        let referrer = ManifestDocument {
            schema_version: 2,
            media_type: Some(OCI_MANIFEST.into()),
            artifact_type: Some(SIGSTORE_BUNDLE_V03.into()),
            config: Some(descriptor(OCI_EMPTY, b"{}")),
            layers: vec![descriptor(SIGSTORE_BUNDLE_V03, bundle)],
            subject: Some(subject),
            ..Default::default()
        }
        .to_bytes();
        self.registry
            .push_manifest(
                &image.repository,
                &sha256_digest(&referrer),
                OCI_MANIFEST,
                &referrer,
            )
            .unwrap();
        // docker-registry has no referrers API: the OCI 1.1 tag schema index lists the referrer.
        let mut entry = descriptor(OCI_MANIFEST, &referrer);
        entry.artifact_type = Some(SIGSTORE_BUNDLE_V03.into());
        let index = ManifestDocument {
            schema_version: 2,
            media_type: Some(OCI_INDEX.into()),
            manifests: vec![entry],
            ..Default::default()
        };
        self.registry
            .push_manifest(
                &image.repository,
                &tag_schema_tag(&image.digest, "").unwrap(),
                OCI_INDEX,
                &index.to_bytes(),
            )
            .unwrap();
    }

    /// Signs the image's simple-signing payload keylessly (leaf valid `[nb, na]`, logged at `t`)
    /// and pushes it as the image's `.sig`.
    fn sign_keyless(&self, image: &Image, issuer: &str, nb: i64, na: i64, t: i64) {
        let payload = payload(image);
        let key = random_key();
        let leaf = self.leaf(&key, issuer, nb, na);
        let signature = p256_sign(&key, &payload);
        let bundle = cosign_bundle_for(&self.rekor, &signature, &payload, &leaf, t);
        self.push_sig(
            image,
            &[(
                SIMPLE_SIGNING,
                &payload,
                keyless_annotations(&signature, &leaf, &self.ca, &bundle),
            )],
        );
    }
}

/// cosign's Rekor bundle annotation: `rekor`'s SET over the hashedrekord entry of `signature` over
/// `payload` by the certificate `leaf`.
fn cosign_bundle_for(
    rekor: &TestRekor,
    signature: &[u8],
    payload: &[u8],
    leaf: &[u8],
    t: i64,
) -> String {
    rekor.cosign_bundle(
        &hashedrekord_body(signature, payload, &cert_pem(leaf)),
        t,
        42,
    )
}

fn descriptor(media_type: &str, bytes: &[u8]) -> Descriptor {
    Descriptor {
        media_type: media_type.to_string(),
        digest: sha256_digest(bytes),
        size: bytes.len() as u64,
        ..Default::default()
    }
}

/// cosign's simple-signing payload for the image.
fn payload(image: &Image) -> Vec<u8> {
    simple_signing_payload(&image.repository, &image.digest)
}

/// Seconds since the epoch: the Rekor integrated times are "a little while ago".
fn now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn assert_runs(out: &std::process::Output) {
    assert_eq!(out.status.code(), Some(0), "{}", stderr(out));
    assert_eq!(stdout(out).trim(), "ran");
}

/// Refused by rule `signed`, naming the image and `reason`, and nothing crashed on the way.
fn assert_refused(out: &std::process::Output, image: &Image, reason: &str) {
    assert!(!out.status.success(), "ran, but should have been refused");
    let err = stderr(out);
    assert!(
        err.contains(&format!(
            "vouch: denied {}@{}",
            image.repository, image.digest
        )),
        "{err}"
    );
    assert!(err.contains(reason), "expected {reason:?} in {err}");
    assert!(err.contains("(rule \"signed\")"), "{err}");
    assert!(!err.contains("panic"), "{err}");
}

#[test]
fn keyless_signature_with_the_right_identity_runs() {
    let c = Case::new();
    let image = c.image("app", "keyless/ok");
    let t = now() - 120;
    c.sign_keyless(&image, ISSUER, t - 60, t + 540, t);
    let config = c.config("vouch", &c.policy(&c.right_identity()));
    assert_runs(&c.run(&config, &image, "keyless-ok"));
    // The regex forms of the identity match too.
    let config = c.config(
        "regex",
        &c.policy(&c.keyless(
            "issuer_regex = \"^https://issuer\\\\.test$\", subject_regex = \"^https://github.com/acme/.*\"",
        )),
    );
    assert_runs(&c.run(&config, &image, "keyless-regex"));
    assert_nothing_left(&c.rig, &c.ns);
}

#[test]
fn keyless_signature_with_a_wrong_subject_or_issuer_is_refused() {
    let c = Case::new();
    let image = c.image("app", "keyless/identity");
    let t = now() - 120;
    c.sign_keyless(&image, ISSUER, t - 60, t + 540, t);
    // The policy wants another subject.
    let config = c.config(
        "subject",
        &c.policy(&c.keyless(&format!(
            "issuer = \"{ISSUER}\", subject = \"https://github.com/evil/app/.github/workflows/release.yml@refs/heads/main\""
        ))),
    );
    assert_refused(
        &c.run(&config, &image, "wrong-subject"),
        &image,
        &format!("certificate subject \"{SUBJECT}\" does not match"),
    );
    // The policy wants another issuer.
    let config = c.config(
        "issuer",
        &c.policy(&c.keyless(&format!(
            "issuer = \"https://accounts.example.com\", subject = \"{SUBJECT}\""
        ))),
    );
    assert_refused(
        &c.run(&config, &image, "wrong-issuer"),
        &image,
        &format!("certificate issuer \"{ISSUER}\" does not match"),
    );
    // The certificate names another issuer than the policy's.
    let other = c.image("debug", "keyless/other-issuer");
    c.sign_keyless(&other, "https://accounts.example.com", t - 60, t + 540, t);
    let config = c.config("cert-issuer", &c.policy(&c.right_identity()));
    assert_refused(
        &c.run(&config, &other, "cert-issuer"),
        &other,
        "certificate issuer \"https://accounts.example.com\" does not match",
    );
    // The right policy still runs the first image.
    assert_runs(&c.run(&config, &image, "right-identity"));
    assert_nothing_left(&c.rig, &c.ns);
}

#[test]
fn keyless_certificate_expired_at_the_integrated_time_is_refused() {
    let c = Case::new();
    let image = c.image("app", "keyless/expired");
    let t = now() - 120;
    // Valid ten minutes, logged an hour after it was issued.
    c.sign_keyless(&image, ISSUER, t - 3600, t - 3000, t);
    let config = c.config("vouch", &c.policy(&c.right_identity()));
    assert_refused(
        &c.run(&config, &image, "expired"),
        &image,
        "certificate was not valid at the Rekor integrated time",
    );
    assert_nothing_left(&c.rig, &c.ns);
}

#[test]
fn keyless_set_of_another_entry_is_refused() {
    let c = Case::new();
    let image = c.image("app", "keyless/other-entry");
    let t = now() - 120;
    let payload = payload(&image);
    let key = random_key();
    let leaf = c.leaf(&key, ISSUER, t - 60, t + 540);
    let signature = p256_sign(&key, &payload);
    let cert = cert_pem(&leaf);
    let cases: [(&str, Vec<u8>, &str); 3] = [
        // A valid SET over an entry about another signature of the same payload.
        (
            "other-signature",
            hashedrekord_body(&p256_sign(&random_key(), &payload), &payload, &cert),
            "Rekor entry is for another signature",
        ),
        // ... about another payload.
        (
            "other-payload",
            hashedrekord_body(&signature, b"another payload", &cert),
            "Rekor entry is for another payload",
        ),
        // ... naming another signer.
        (
            "other-signer",
            hashedrekord_body(
                &signature,
                &payload,
                &cert_pem(&c.leaf(&random_key(), ISSUER, t - 60, t + 540)),
            ),
            "Rekor entry names another signer",
        ),
    ];
    for (name, body, reason) in cases {
        let bundle = c.rekor.cosign_bundle(&body, t, 7);
        c.push_sig(
            &image,
            &[(
                SIMPLE_SIGNING,
                &payload,
                keyless_annotations(&signature, &leaf, &c.ca, &bundle),
            )],
        );
        let config = c.config(name, &c.policy(&c.right_identity()));
        assert_refused(&c.run(&config, &image, name), &image, reason);
    }
    // The SET of the right entry by a log key that is not the trusted one.
    let rogue = TestRekor::new();
    let bundle = cosign_bundle_for(&rogue, &signature, &payload, &leaf, t);
    c.push_sig(
        &image,
        &[(
            SIMPLE_SIGNING,
            &payload,
            keyless_annotations(&signature, &leaf, &c.ca, &bundle),
        )],
    );
    let config = c.config("rogue-log", &c.policy(&c.right_identity()));
    assert_refused(
        &c.run(&config, &image, "rogue-log"),
        &image,
        "is not in the trusted root",
    );
    assert_nothing_left(&c.rig, &c.ns);
}

#[test]
fn cosign_v3_bundle_found_through_the_tag_fallback_runs() {
    let c = Case::new();
    let image = c.image("app", "keyless/bundle");
    let t = now() - 120;
    let key = random_key();
    let leaf = c.leaf(&key, ISSUER, t - 60, t + 540);
    let bundle = dsse_bundle(&key, &leaf, &c.rekor, &image.repository, &image.digest, t);
    c.push_bundle_referrer(&image, bundle.as_bytes());
    // No `.sig`: the bundle is the only signature.
    let sig = c
        .registry
        .get_manifest(
            &image.repository,
            &tag_schema_tag(&image.digest, ".sig").unwrap(),
        )
        .unwrap_err();
    assert!(sig.is_not_found(), "{sig}");

    let config = c.config("vouch", &c.policy(&c.right_identity()));
    assert_runs(&c.run(&config, &image, "bundle"));
    let fallback = format!(
        "GET /v2/keyless/bundle/manifests/{} ",
        tag_schema_tag(&image.digest, "").unwrap()
    );
    assert!(
        c.rig.registry_log().contains(&fallback),
        "the tag-schema index was not fetched ({fallback:?})"
    );
    // The same bundle with a policy for another identity is refused by it.
    let config = c.config(
        "other",
        &c.policy(&c.keyless(&format!(
            "issuer = \"{ISSUER}\", subject = \"https://github.com/evil/app\""
        ))),
    );
    assert_refused(
        &c.run(&config, &image, "bundle-other"),
        &image,
        &format!(
            "certificate identity \"{SUBJECT}\" does not match \"https://github.com/evil/app\""
        ),
    );
    assert_nothing_left(&c.rig, &c.ns);
}

#[test]
fn cosign_v3_bundle_refused_for_a_sigstore_reason_names_the_reason() {
    let c = Case::new();
    let image = c.image("app", "keyless/bundle-expired");
    let t = now() - 120;
    let key = random_key();
    // Valid ten minutes, logged an hour after it was issued.
    let leaf = c.leaf(&key, ISSUER, t - 3600, t - 3000);
    let bundle = dsse_bundle(&key, &leaf, &c.rekor, &image.repository, &image.digest, t);
    c.push_bundle_referrer(&image, bundle.as_bytes());
    let config = c.config("vouch", &c.policy(&c.right_identity()));
    assert_refused(
        &c.run(&config, &image, "bundle-expired"),
        &image,
        "no signature by a trusted authority (1 checked: the certificate chain was not valid at \
         the signing time: a certificate had expired at ",
    );
    // A valid certificate, and the SET of the log entry broken.
    let leaf = c.leaf(&key, ISSUER, t - 60, t + 540);
    let bundle = dsse_bundle(&key, &leaf, &c.rekor, &image.repository, &image.digest, t);
    let mut bundle: serde_json::Value = serde_json::from_str(&bundle).unwrap();
    let set = &mut bundle["verificationMaterial"]["tlogEntries"][0]["inclusionPromise"]
        ["signedEntryTimestamp"];
    let mut bytes = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(set.as_str().unwrap())
            .unwrap()
    };
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    *set = b64(&bytes).into();
    c.push_bundle_referrer(&image, bundle.to_string().as_bytes());
    let config = c.config("bad-set", &c.policy(&c.right_identity()));
    assert_refused(
        &c.run(&config, &image, "bundle-bad-set"),
        &image,
        "the signed entry timestamp (SET) does not verify",
    );
    assert_nothing_left(&c.rig, &c.ns);
}

#[test]
fn malformed_signature_material_is_refused_with_a_clear_reason() {
    let c = Case::new();
    let image = c.image("app", "keyless/malformed");
    let t = now() - 120;
    let payload = payload(&image);
    let key = random_key();
    let leaf = c.leaf(&key, ISSUER, t - 60, t + 540);
    let signature = p256_sign(&key, &payload);
    let bundle = cosign_bundle_for(&c.rekor, &signature, &payload, &leaf, t);
    let good = keyless_annotations(&signature, &leaf, &c.ca, &bundle);
    let with = |key: &str, value: &str| {
        let mut a = good.clone();
        a.insert(key.to_string(), value.to_string());
        a
    };
    let huge = vec![b'{'; 1024 * 1024 + 4096];
    let keyless = c.policy(&c.right_identity());
    // Unusable material is named in the reason, so it never reads like an unsigned image.
    let not_found = format!(
        "no signature found for {}; skipped unusable signature material: ",
        image.digest
    );
    let cases: Vec<(&str, Layer<'_>, &str)> = vec![
        (
            "garbage-media-type",
            ("application/x-garbage", &payload, good.clone()),
            &not_found,
        ),
        (
            "huge-layer",
            (SIMPLE_SIGNING, &huge, good.clone()),
            &not_found,
        ),
        (
            "invalid-base64",
            (
                SIMPLE_SIGNING,
                &payload,
                with(ANNOTATION_SIGNATURE, "not base64!!"),
            ),
            &not_found,
        ),
        (
            "certificate-not-pem",
            (
                SIMPLE_SIGNING,
                &payload,
                with(ANNOTATION_CERTIFICATE, "this is not a certificate"),
            ),
            &not_found,
        ),
        (
            "garbage-certificate",
            (
                SIMPLE_SIGNING,
                &payload,
                with(
                    ANNOTATION_CERTIFICATE,
                    "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                ),
            ),
            "no signature by a trusted authority (1 checked: ",
        ),
        (
            "garbage-bundle",
            (
                SIMPLE_SIGNING,
                &payload,
                with(ANNOTATION_BUNDLE, "{\"SignedEntryTimestamp\":7}"),
            ),
            "no signature by a trusted authority (1 checked: ",
        ),
        (
            "bundle-not-json",
            (
                SIMPLE_SIGNING,
                &payload,
                with(ANNOTATION_BUNDLE, "\u{0}\u{1}garbage"),
            ),
            &not_found,
        ),
        (
            "garbage-payload",
            (SIMPLE_SIGNING, b"\xff\xfe not json", good.clone()),
            "no signature by a trusted authority (1 checked: ",
        ),
    ];
    for (name, layer, reason) in cases {
        c.push_sig(&image, &[layer]);
        let config = c.config(name, &keyless);
        assert_refused(&c.run(&config, &image, name), &image, reason);
    }

    // Wrong curve: the policy's key is P-256, the signature is by a P-384 key.
    let trusted = c.dir.path().join("release.pub");
    std::fs::write(&trusted, public_key_pem(&random_key())).unwrap();
    let (p384_sig, p384_pub) = p384_signature(&payload);
    std::fs::write(c.dir.path().join("p384.pub"), p384_pub).unwrap();
    c.push_sig(
        &image,
        &[(
            SIMPLE_SIGNING,
            &payload,
            [(ANNOTATION_SIGNATURE.to_string(), b64(&p384_sig))].into(),
        )],
    );
    let config = c.config(
        "wrong-curve",
        &c.policy(&format!(
            "name = \"release\"\nkey = \"{}\"\n",
            trusted.display()
        )),
    );
    assert_refused(
        &c.run(&config, &image, "wrong-curve"),
        &image,
        "no signature by a trusted authority (1 checked: signature does not verify with key release)",
    );

    // Neither the shim nor the gate was hurt: a valid signature next to hostile layers runs.
    c.push_sig(
        &image,
        &[
            ("application/x-garbage", &payload, good.clone()),
            (SIMPLE_SIGNING, &huge, good.clone()),
            (
                SIMPLE_SIGNING,
                &payload,
                with(ANNOTATION_SIGNATURE, "not base64!!"),
            ),
            (SIMPLE_SIGNING, &payload, good.clone()),
        ],
    );
    let config = c.config("valid", &keyless);
    assert_runs(&c.run(&config, &image, "valid"));
    // The oversized layer was refused by its declared size, never downloaded.
    let log = c.rig.registry_log();
    assert!(
        log.contains("GET /v2/keyless/malformed/manifests/sha256-"),
        "the registry log shows no .sig fetch"
    );
    assert!(
        !log.contains(&format!(
            "GET /v2/keyless/malformed/blobs/{}",
            sha256_digest(&huge)
        )),
        "the oversized layer was downloaded"
    );
    assert!(
        !c.rig.containerd_log().contains("panicked"),
        "a panic in the containerd log"
    );
    assert_nothing_left(&c.rig, &c.ns);
}
