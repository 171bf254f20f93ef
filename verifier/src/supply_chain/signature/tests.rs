//! Tests of cosign's own formats with the real cosign fixtures (`../shared/fixtures`, see its
//! SOURCES.md) and with a test CA and Rekor key for the keyless cases no public fixture covers.
//! Sigstore bundles at container start are tested in `sigstore/image_tests.rs`.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use base64::Engine;
use ecdsa::signature::Signer as _;
use p256::ecdsa::SigningKey;
use rand_core::OsRng;
use spki::EncodePublicKey;

use super::testca::{cert_pem, hashedrekord_body, trusted_root_json, LeafSpec, TestCa, TestRekor};
use super::*;
use crate::material::{Origin, SimpleSigning};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures");
const VALID_DIGEST: &str =
    "sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00";
const VALID_REPO: &str = "192.168.64.2:5000/cosign-signed-single-sample";
const REKOR_DIGEST: &str =
    "sha256:0489474da8ea22426ece86ace6c1c0026ab2fd3cdfbbd62b7e94650266c37d9a";
const REKOR_REPO: &str = "192.168.64.2:5000/cosign-signed/key-1";
const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";

fn b64d(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("base64")
}
fn b64e(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{path}")).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn origin() -> Origin {
    Origin {
        manifest: "test@sha256:00".into(),
        layer: Some(0),
    }
}

/// containers/image's `signature-N` file: `\x00sigstore-json\n` + `{mimeType, payload, annotations}`.
fn load_signature_file(path: &str) -> SimpleSigning {
    let bytes = read(path);
    let json = bytes
        .strip_prefix(b"\x00sigstore-json\n")
        .expect("sigstore-json prefix");
    #[derive(serde::Deserialize)]
    struct File {
        payload: String,
        annotations: BTreeMap<String, String>,
    }
    let f: File = serde_json::from_slice(json).expect("signature file JSON");
    let a = |k: &str| f.annotations.get(k).cloned();
    SimpleSigning {
        payload: b64d(&f.payload),
        signature_b64: a("dev.cosignproject.cosign/signature").expect("signature annotation"),
        certificate_pem: a("dev.sigstore.cosign/certificate"),
        chain_pem: a("dev.sigstore.cosign/chain"),
        rekor_bundle_json: a("dev.sigstore.cosign/bundle"),
        origin: origin(),
    }
}

fn key(path: &str) -> PublicKey {
    PublicKey::from_pem(&String::from_utf8(read(path)).expect("utf8")).expect("key")
}

fn public_good_root() -> TrustedRoot {
    TrustedRoot::from_json(&read("signatures/sigstore-rs/trusted_root.json")).expect("trusted root")
}

fn at(t: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(t as u64)
}

fn now() -> SystemTime {
    at(1_790_000_000) // 2026-09
}

fn opts() -> VerifyOptions {
    VerifyOptions::default()
}

fn err<T: std::fmt::Debug>(r: Result<T>) -> SignatureError {
    match r {
        Ok(v) => panic!("unexpected success: {v:?}"),
        Err(e) => e,
    }
}

fn with_key<'a>(
    name: &'a str,
    key: &'a PublicKey,
    rekor: Option<&'a TrustedRoot>,
) -> Authority<'a> {
    Authority::Key { name, key, rekor }
}

fn flip_b64(s: &str, i: usize) -> String {
    let mut b = b64d(s);
    let i = i % b.len();
    b[i] ^= 1;
    b64e(&b)
}

// ---------------------------------------------------------------- trusted root

#[test]
fn public_good_trusted_root_parses() {
    let root = public_good_root();
    assert_eq!(root.tlogs.len(), 1);
    assert_eq!(root.certificate_authorities.len(), 2);
    assert_eq!(root.ctlogs.len(), 2);
    assert!(root.skipped.is_empty());
    assert!(hex::encode(&root.tlogs[0].log_id).starts_with("c0d23d6a"));
    assert_eq!(root.tlogs[0].base_url, "https://rekor.sigstore.dev");
    assert_eq!(root.certificate_authorities[1].chain.len(), 2);
    assert_eq!(
        root.certificate_authorities[0].valid_for.end,
        parse_rfc3339("2022-12-31T23:59:59.999Z")
    );
    let from_file = TrustedRoot::from_file(std::path::Path::new(&format!(
        "{FIXTURES}/signatures/sigstore-rs/trusted_root.json"
    )))
    .unwrap();
    assert_eq!(from_file.tlogs[0].key, root.tlogs[0].key);
    assert!(err(TrustedRoot::from_file(std::path::Path::new(
        "/nonexistent/root.json"
    )))
    .reason
    .starts_with("/nonexistent/root.json: "));
    // The cosign copy is byte-identical.
    let other = read("attestations/cosign-oci-attestation/trusted_root_pgi.json");
    assert_eq!(other, read("signatures/sigstore-rs/trusted_root.json"));
}

#[test]
fn malformed_trusted_roots_are_refused() {
    assert!(err(TrustedRoot::from_json(b"{"))
        .reason
        .contains("not valid JSON"));
    assert!(err(TrustedRoot::from_json(br#"{"mediaType":"x"}"#))
        .reason
        .contains("media type"));
    let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
    assert!(err(TrustedRoot::from_json(deep.as_bytes()))
        .reason
        .contains("nested"));
    assert!(
        err(TrustedRoot::from_json(&vec![b' '; MAX_TRUSTED_ROOT + 1]))
            .reason
            .contains("more than")
    );
    let bad_cert =
        r#"{"certificateAuthorities":[{"certChain":{"certificates":[{"rawBytes":"AAAA"}]}}]}"#;
    assert!(err(TrustedRoot::from_json(bad_cert.as_bytes()))
        .reason
        .contains("certificate"));
    let bad_time = r#"{"certificateAuthorities":[{"certChain":{"certificates":[]},"validFor":{"start":"x"}}]}"#;
    assert!(TrustedRoot::from_json(bad_time.as_bytes()).is_err());
}

const MAX_TRUSTED_ROOT: usize = trust_root::MAX_TRUSTED_ROOT_LEN;

// ---------------------------------------------------------------- simple signing, key-based

#[test]
fn cosign_signature_verifies_with_its_key_and_not_another() {
    let sig = load_signature_file("signatures/containers-image/dir-img-cosign-valid/signature-1");
    let k1 = key("signatures/containers-image/cosign.pub");
    let k2 = key("signatures/containers-image/cosign2.pub");
    let image = Image {
        digest: VALID_DIGEST,
        repository: VALID_REPO,
    };
    let v = verify_simple_signing(
        &sig,
        &image,
        &with_key("release-2026", &k1, None),
        &opts(),
        now(),
    )
    .expect("verifies with cosign.pub");
    assert_eq!(v.digest, VALID_DIGEST);
    assert_eq!(v.docker_reference.as_deref(), Some(VALID_REPO));
    assert_eq!(v.key_fingerprint, k1.fingerprint());
    assert_eq!(v.authority, "release-2026");
    assert_eq!(v.format, SignatureFormat::SimpleSigning);
    assert_eq!(v.rekor, None);
    let e = err(verify_simple_signing(
        &sig,
        &image,
        &with_key("other", &k2, None),
        &opts(),
        now(),
    ));
    assert_eq!(e.reason, "signature does not verify with key other");
    assert_eq!(e.kind, ErrorKind::BadSignature);
    // A tag given with the repository is fine; so is a digest.
    let image = Image {
        digest: VALID_DIGEST,
        repository: &format!("{VALID_REPO}:v1@{VALID_DIGEST}"),
    };
    verify_simple_signing(&sig, &image, &with_key("k", &k1, None), &opts(), now()).unwrap();
}

#[test]
fn wrong_digest_and_wrong_repository_are_refused() {
    let sig = load_signature_file("signatures/containers-image/dir-img-cosign-valid/signature-1");
    let k1 = key("signatures/containers-image/cosign.pub");
    let a = with_key("k", &k1, None);
    let e = err(verify_simple_signing(
        &sig,
        &Image {
            digest: REKOR_DIGEST,
            repository: VALID_REPO,
        },
        &a,
        &opts(),
        now(),
    ));
    assert_eq!(
        e.reason,
        format!("signed digest {VALID_DIGEST} is not the image digest {REKOR_DIGEST}")
    );
    assert_eq!(e.kind, ErrorKind::WrongImage);
    let image = Image {
        digest: VALID_DIGEST,
        repository: "ghcr.io/acme/app",
    };
    let e = err(verify_simple_signing(&sig, &image, &a, &opts(), now()));
    assert_eq!(
        e.reason,
        format!("signature is for repository {VALID_REPO}, not ghcr.io/acme/app")
    );
    // Unless the rule says otherwise.
    let relaxed = VerifyOptions {
        require_identity_match: false,
        ..opts()
    };
    verify_simple_signing(&sig, &image, &a, &relaxed, now()).unwrap();
}

#[test]
fn rekor_bundle_set_verifies_with_the_public_good_root() {
    let sig = load_signature_file(
        "signatures/containers-image/dir-img-cosign-key-rekor-valid/signature-1",
    );
    let k2 = key("signatures/containers-image/cosign2.pub");
    let k1 = key("signatures/containers-image/cosign.pub");
    let root = public_good_root();
    let image = Image {
        digest: REKOR_DIGEST,
        repository: REKOR_REPO,
    };
    let v = verify_simple_signing(
        &sig,
        &image,
        &with_key("k2", &k2, Some(&root)),
        &opts(),
        now(),
    )
    .unwrap();
    let r = v.rekor.expect("rekor entry");
    assert_eq!(r.integrated_time, 1674251859);
    assert_eq!(r.log_index, 11608800);
    assert!(r.log_id.starts_with("c0d23d6a"));
    assert!(err(verify_simple_signing(
        &sig,
        &image,
        &with_key("k1", &k1, Some(&root)),
        &opts(),
        now()
    ))
    .reason
    .contains("does not verify with key k1"));
    // Without a trusted root the bundle is not looked at, unless a tlog entry is required.
    verify_simple_signing(&sig, &image, &with_key("k2", &k2, None), &opts(), now()).unwrap();
    let strict = VerifyOptions {
        require_tlog: true,
        ..opts()
    };
    assert!(err(verify_simple_signing(
        &sig,
        &image,
        &with_key("k2", &k2, None),
        &strict,
        now()
    ))
    .reason
    .contains("no trusted root"));
    let plain = load_signature_file("signatures/containers-image/dir-img-cosign-valid/signature-1");
    let image1 = Image {
        digest: VALID_DIGEST,
        repository: VALID_REPO,
    };
    assert!(err(verify_simple_signing(
        &plain,
        &image1,
        &with_key("k1", &k1, Some(&root)),
        &strict,
        now()
    ))
    .reason
    .contains("no Rekor bundle"));
    // An integrated time after "now" is refused.
    assert!(err(verify_simple_signing(
        &sig,
        &image,
        &with_key("k2", &k2, Some(&root)),
        &opts(),
        at(1674251859 - 3600)
    ))
    .reason
    .contains("in the future"));
}

#[test]
fn one_changed_byte_anywhere_fails_the_key_based_fixtures() {
    let base = load_signature_file(
        "signatures/containers-image/dir-img-cosign-key-rekor-valid/signature-1",
    );
    let k2 = key("signatures/containers-image/cosign2.pub");
    let root = public_good_root();
    let image = Image {
        digest: REKOR_DIGEST,
        repository: REKOR_REPO,
    };
    let a = with_key("k2", &k2, Some(&root));
    for i in 0..base.payload.len() {
        let mut s = base.clone();
        s.payload[i] ^= 1;
        assert_eq!(
            err(verify_simple_signing(&s, &image, &a, &opts(), now())).kind,
            ErrorKind::BadSignature,
            "payload byte {i}"
        );
    }
    for i in 0..b64d(&base.signature_b64).len() {
        let mut s = base.clone();
        s.signature_b64 = flip_b64(&base.signature_b64, i);
        assert!(
            verify_simple_signing(&s, &image, &a, &opts(), now()).is_err(),
            "signature byte {i}"
        );
    }
    // The SET and the entry body.
    let bundle: serde_json::Value =
        serde_json::from_str(base.rekor_bundle_json.as_deref().unwrap()).unwrap();
    let set = bundle["SignedEntryTimestamp"].as_str().unwrap().to_string();
    for i in 0..b64d(&set).len() {
        let mut b = bundle.clone();
        b["SignedEntryTimestamp"] = flip_b64(&set, i).into();
        let mut s = base.clone();
        s.rekor_bundle_json = Some(b.to_string());
        let e = err(verify_simple_signing(&s, &image, &a, &opts(), now()));
        assert!(e.reason.contains("Rekor"), "SET byte {i}: {e}");
    }
    let body = bundle["Payload"]["body"].as_str().unwrap().to_string();
    for i in (0..b64d(&body).len()).step_by(7) {
        let mut b = bundle.clone();
        b["Payload"]["body"] = flip_b64(&body, i).into();
        let mut s = base.clone();
        s.rekor_bundle_json = Some(b.to_string());
        assert!(
            verify_simple_signing(&s, &image, &a, &opts(), now()).is_err(),
            "body byte {i}"
        );
    }
    for field in ["integratedTime", "logIndex"] {
        let mut b = bundle.clone();
        b["Payload"][field] = (b["Payload"][field].as_i64().unwrap() + 1).into();
        let mut s = base.clone();
        s.rekor_bundle_json = Some(b.to_string());
        assert!(err(verify_simple_signing(&s, &image, &a, &opts(), now()))
            .reason
            .contains("does not verify"));
    }
}

#[test]
fn hostile_simple_signing_input_gives_clear_errors() {
    let base = load_signature_file("signatures/containers-image/dir-img-cosign-valid/signature-1");
    let k1 = key("signatures/containers-image/cosign.pub");
    let image = Image {
        digest: VALID_DIGEST,
        repository: VALID_REPO,
    };
    let a = with_key("k", &k1, None);
    let mut s = base.clone();
    s.signature_b64 = "not base64!".into();
    assert_eq!(
        err(verify_simple_signing(&s, &image, &a, &opts(), now())).reason,
        "signature annotation is not valid base64"
    );
    s.signature_b64 = "A".repeat(1 << 20);
    assert!(err(verify_simple_signing(&s, &image, &a, &opts(), now()))
        .reason
        .contains("too large"));
    s.signature_b64 = String::new();
    assert!(err(verify_simple_signing(&s, &image, &a, &opts(), now()))
        .reason
        .contains("does not verify"));
    let mut s = base.clone();
    s.payload = vec![b'{'; MAX_PAYLOAD_LEN + 1];
    assert!(err(verify_simple_signing(&s, &image, &a, &opts(), now()))
        .reason
        .contains("more than"));
    let mut s = base.clone();
    s.rekor_bundle_json = Some("garbage".into());
    let root = public_good_root();
    assert!(err(verify_simple_signing(
        &s,
        &image,
        &with_key("k", &k1, Some(&root)),
        &opts(),
        now()
    ))
    .reason
    .contains("Rekor bundle is not valid JSON"));

    // Payloads that are validly signed but not what cosign signs: read only after the signature.
    let sk = SigningKey::random(&mut OsRng);
    let pk = PublicKey::from_spki_der(sk.verifying_key().to_public_key_der().unwrap().as_bytes())
        .unwrap();
    let a = with_key("test", &pk, None);
    let signed = |payload: &[u8]| {
        let sig: p256::ecdsa::Signature = sk.sign(payload);
        SimpleSigning {
            payload: payload.to_vec(),
            signature_b64: b64e(sig.to_der().as_bytes()),
            certificate_pem: None,
            chain_pem: None,
            rekor_bundle_json: None,
            origin: origin(),
        }
    };
    let e = err(verify_simple_signing(
        &signed(b"garbage"),
        &image,
        &a,
        &opts(),
        now(),
    ));
    assert!(e.reason.contains("not valid JSON"), "{e}");
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    assert!(err(verify_simple_signing(
        &signed(deep.as_bytes()),
        &image,
        &a,
        &opts(),
        now()
    ))
    .reason
    .contains("nested"));
    let other_type = format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"{VALID_REPO}"}},"image":{{"docker-manifest-digest":"{VALID_DIGEST}"}},"type":"something else"}}}}"#
    );
    assert!(err(verify_simple_signing(
        &signed(other_type.as_bytes()),
        &image,
        &a,
        &opts(),
        now()
    ))
    .reason
    .contains("payload type is \"something else\""));
    let no_ref = format!(
        r#"{{"critical":{{"identity":{{}},"image":{{"docker-manifest-digest":"{VALID_DIGEST}"}},"type":"{COSIGN_SIGNATURE_TYPE}"}}}}"#
    );
    assert!(err(verify_simple_signing(
        &signed(no_ref.as_bytes()),
        &image,
        &a,
        &opts(),
        now()
    ))
    .reason
    .contains("no docker-reference"));
    let bad_ref = no_ref.replace(
        "\"identity\":{}",
        "\"identity\":{\"docker-reference\":\"UPPER/Case\"}",
    );
    assert!(err(verify_simple_signing(
        &signed(bad_ref.as_bytes()),
        &image,
        &a,
        &opts(),
        now()
    ))
    .reason
    .contains("invalid reference"));
    // Docker Hub short names normalise on both sides.
    let hub = format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"busybox:1.36"}},"image":{{"docker-manifest-digest":"{VALID_DIGEST}"}},"type":"{COSIGN_SIGNATURE_TYPE}"}},"optional":{{"a":"b"}}}}"#
    );
    let image_hub = Image {
        digest: VALID_DIGEST,
        repository: "docker.io/library/busybox",
    };
    verify_simple_signing(&signed(hub.as_bytes()), &image_hub, &a, &opts(), now()).unwrap();
}

#[test]
fn tampered_grype_attestation_payload_is_not_a_signature() {
    // Not a simple signing payload, but the same rule: bytes are checked before they are parsed.
    let k = key("attestations/grype-alpine/cosign.pub");
    let env: serde_json::Value =
        serde_json::from_slice(&read("malformed/grype_alpine-tampered.cdx.att.json")).unwrap();
    let payload = b64d(env["payload"].as_str().unwrap());
    let sig = b64d(env["signatures"][0]["sig"].as_str().unwrap());
    let pae = crate::dsse::pae(env["payloadType"].as_str().unwrap(), &payload);
    assert!(k.verify(&pae, &sig).is_err());
    let env: serde_json::Value =
        serde_json::from_slice(&read("attestations/grype-alpine/alpine.cdx.att.json")).unwrap();
    let payload = b64d(env["payload"].as_str().unwrap());
    let sig = b64d(env["signatures"][0]["sig"].as_str().unwrap());
    k.verify(
        &crate::dsse::pae(env["payloadType"].as_str().unwrap(), &payload),
        &sig,
    )
    .unwrap();
}

// ---------------------------------------------------------------- keyless with a test CA and Rekor

struct Keyless {
    ca: TestCa,
    rekor: TestRekor,
    root: TrustedRoot,
    leaf_key: SigningKey,
}

const T0: i64 = 1_750_000_000; // integrated time used by the tests (2025-06)
const SUBJECT: &str = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main";

impl Keyless {
    fn new() -> Keyless {
        let ca = TestCa::new("test ca");
        let rekor = TestRekor::new();
        let root = TrustedRoot::from_json(
            trusted_root_json(&ca, &rekor, "2020-01-01T00:00:00Z").as_bytes(),
        )
        .unwrap();
        Keyless {
            ca,
            rekor,
            root,
            leaf_key: SigningKey::random(&mut OsRng),
        }
    }

    fn payload(&self) -> Vec<u8> {
        format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"registry.example.com/prod/app"}},"image":{{"docker-manifest-digest":"{VALID_DIGEST}"}},"type":"{COSIGN_SIGNATURE_TYPE}"}},"optional":null}}"#
        )
        .into_bytes()
    }

    /// A keyless signature with a certificate valid `[nb, na]`, logged at `t`.
    fn signature(&self, nb: i64, na: i64, t: i64, issuer: &str) -> SimpleSigning {
        let cert = self.ca.issue(
            &self.leaf_key,
            &LeafSpec {
                san_uri: SUBJECT,
                issuer,
                not_before: nb,
                not_after: na,
            },
        );
        let pem = cert_pem(&cert);
        let payload = self.payload();
        let sig: p256::ecdsa::Signature = self.leaf_key.sign(&payload);
        let sig = sig.to_der().as_bytes().to_vec();
        let body = hashedrekord_body(&sig, &payload, &pem);
        SimpleSigning {
            payload,
            signature_b64: b64e(&sig),
            certificate_pem: Some(pem),
            chain_pem: Some(cert_pem(&self.ca.cert_der)),
            rekor_bundle_json: Some(self.rekor.cosign_bundle(&body, t, 42)),
            origin: origin(),
        }
    }

    fn good(&self) -> SimpleSigning {
        self.signature(T0 - 60, T0 + 540, T0, GITHUB_ISSUER)
    }

    fn verify(&self, s: &SimpleSigning, policy: &IdentityPolicy) -> Result<VerifiedSignature> {
        let a = Authority::Keyless {
            name: "ci",
            trusted_root: &self.root,
            identity: policy,
        };
        let image = Image {
            digest: VALID_DIGEST,
            repository: "registry.example.com/prod/app",
        };
        verify_simple_signing(s, &image, &a, &opts(), at(T0 + 3600))
    }
}

fn acme_policy() -> IdentityPolicy {
    IdentityPolicy::new(
        None,
        Some("https://github.com/acme/.*"),
        Some(GITHUB_ISSUER),
        None,
    )
    .unwrap()
}

#[test]
fn keyless_simple_signing_with_the_right_identity_verifies() {
    let k = Keyless::new();
    let v = k.verify(&k.good(), &acme_policy()).expect("verifies");
    let c = v.certificate.unwrap();
    assert_eq!(c.subject, SUBJECT);
    assert_eq!(c.issuer, GITHUB_ISSUER);
    assert_eq!(v.rekor.unwrap().integrated_time, T0);
    assert_eq!(v.digest, VALID_DIGEST);
    // Without the chain annotation too: the trusted root holds the CA.
    let mut s = k.good();
    s.chain_pem = None;
    k.verify(&s, &acme_policy()).unwrap();
}

#[test]
fn keyless_wrong_subject_or_issuer_is_refused() {
    let k = Keyless::new();
    let wrong = IdentityPolicy::new(
        Some("https://github.com/evil/app"),
        None,
        Some(GITHUB_ISSUER),
        None,
    )
    .unwrap();
    let e = err(k.verify(&k.good(), &wrong));
    assert_eq!(e.kind, ErrorKind::Identity);
    assert!(
        e.reason
            .starts_with(&format!("certificate subject \"{SUBJECT}\" does not match")),
        "{e}"
    );
    let s = k.signature(T0 - 60, T0 + 540, T0, "https://accounts.google.com");
    let e = err(k.verify(&s, &acme_policy()));
    assert_eq!(e.kind, ErrorKind::Identity);
    assert!(
        e.reason.contains("issuer \"https://accounts.google.com\""),
        "{e}"
    );
}

#[test]
fn keyless_certificate_expired_at_the_integrated_time_is_refused() {
    let k = Keyless::new();
    // Valid ten minutes, logged an hour later.
    let s = k.signature(T0 - 3600, T0 - 3000, T0, GITHUB_ISSUER);
    let e = err(k.verify(&s, &acme_policy()));
    assert_eq!(e.kind, ErrorKind::Expired);
    assert!(
        e.reason.contains("not valid at the Rekor integrated time"),
        "{e}"
    );
    // Not yet valid.
    let s = k.signature(T0 + 60, T0 + 600, T0, GITHUB_ISSUER);
    assert_eq!(err(k.verify(&s, &acme_policy())).kind, ErrorKind::Expired);
}

#[test]
fn keyless_set_of_another_entry_is_refused() {
    let k = Keyless::new();
    let good = k.good();
    // A correctly signed SET, but for an entry about another signature over the same payload.
    let other_key = SigningKey::random(&mut OsRng);
    let other_sig: p256::ecdsa::Signature = other_key.sign(&good.payload);
    let body = hashedrekord_body(
        other_sig.to_der().as_bytes(),
        &good.payload,
        good.certificate_pem.as_deref().unwrap(),
    );
    let mut s = good.clone();
    s.rekor_bundle_json = Some(k.rekor.cosign_bundle(&body, T0, 7));
    let e = err(k.verify(&s, &acme_policy()));
    assert_eq!(e.reason, "Rekor entry is for another signature");
    // ... about another payload.
    let sig = b64d(&good.signature_b64);
    let body = hashedrekord_body(
        &sig,
        b"another payload",
        good.certificate_pem.as_deref().unwrap(),
    );
    s.rekor_bundle_json = Some(k.rekor.cosign_bundle(&body, T0, 7));
    assert!(err(k.verify(&s, &acme_policy()))
        .reason
        .contains("another payload"));
    // ... naming another certificate.
    let other_cert = k.ca.issue(
        &other_key,
        &LeafSpec {
            san_uri: SUBJECT,
            issuer: GITHUB_ISSUER,
            not_before: T0 - 60,
            not_after: T0 + 540,
        },
    );
    let body = hashedrekord_body(&sig, &good.payload, &cert_pem(&other_cert));
    s.rekor_bundle_json = Some(k.rekor.cosign_bundle(&body, T0, 7));
    assert!(err(k.verify(&s, &acme_policy()))
        .reason
        .contains("another signer"));
    // A SET signed by a key that is not the trusted log's.
    let rogue = TestRekor {
        key: SigningKey::random(&mut OsRng),
        log_id: k.rekor.log_id.clone(),
    };
    let body = hashedrekord_body(
        &sig,
        &good.payload,
        good.certificate_pem.as_deref().unwrap(),
    );
    s.rekor_bundle_json = Some(rogue.cosign_bundle(&body, T0, 7));
    assert!(err(k.verify(&s, &acme_policy()))
        .reason
        .contains("signed entry timestamp does not verify"));
    // A log that is not in the trusted root.
    let unknown = TestRekor::new();
    s.rekor_bundle_json = Some(unknown.cosign_bundle(&body, T0, 7));
    assert!(err(k.verify(&s, &acme_policy()))
        .reason
        .contains("not in the trusted root"));
    // No bundle at all.
    s.rekor_bundle_json = None;
    assert!(err(k.verify(&s, &acme_policy()))
        .reason
        .contains("no Rekor bundle"));
}

#[test]
fn keyless_untrusted_ca_or_ca_outside_its_window_is_refused() {
    let k = Keyless::new();
    let good = k.good();
    // The same signature checked against a root with another CA.
    let other = TestCa::new("test ca");
    let root = TrustedRoot::from_json(
        trusted_root_json(&other, &k.rekor, "2020-01-01T00:00:00Z").as_bytes(),
    )
    .unwrap();
    let policy = acme_policy();
    let a = Authority::Keyless {
        name: "ci",
        trusted_root: &root,
        identity: &policy,
    };
    let image = Image {
        digest: VALID_DIGEST,
        repository: "registry.example.com/prod/app",
    };
    let e = err(verify_simple_signing(
        &good,
        &image,
        &a,
        &opts(),
        at(T0 + 3600),
    ));
    assert_eq!(e.reason, "certificate is not issued by a trusted Fulcio CA");
    // The CA is trusted only from after the integrated time.
    let root = TrustedRoot::from_json(
        trusted_root_json(&k.ca, &k.rekor, "2030-01-01T00:00:00Z").as_bytes(),
    )
    .unwrap();
    let a = Authority::Keyless {
        name: "ci",
        trusted_root: &root,
        identity: &policy,
    };
    let e = err(verify_simple_signing(
        &good,
        &image,
        &a,
        &opts(),
        at(T0 + 3600),
    ));
    assert!(e.reason.contains("was not trusted at"), "{e}");
    // A leaf signed by its own key (self-issued, CA name copied) does not chain.
    let mut s = good.clone();
    let forged = TestCa {
        key: k.leaf_key.clone(),
        name: k.ca.name.clone(),
        cert_der: vec![],
        ct_log: SigningKey::random(&mut OsRng),
    }
    .issue(
        &k.leaf_key,
        &LeafSpec {
            san_uri: SUBJECT,
            issuer: GITHUB_ISSUER,
            not_before: T0 - 60,
            not_after: T0 + 540,
        },
    );
    s.certificate_pem = Some(cert_pem(&forged));
    let sig = b64d(&s.signature_b64);
    s.rekor_bundle_json = Some(k.rekor.cosign_bundle(
        &hashedrekord_body(&sig, &s.payload, s.certificate_pem.as_deref().unwrap()),
        T0,
        1,
    ));
    assert!(err(k.verify(&s, &acme_policy()))
        .reason
        .contains("not issued by a trusted Fulcio CA"));
    // Garbage certificates.
    let mut s = good.clone();
    s.certificate_pem =
        Some("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into());
    assert!(err(k.verify(&s, &acme_policy()))
        .reason
        .contains("malformed certificate"));
    s.certificate_pem = None;
    assert!(err(k.verify(&s, &acme_policy()))
        .reason
        .contains("no certificate"));
}

#[test]
fn identity_policies_need_exactly_one_of_each() {
    assert!(IdentityPolicy::new(None, None, Some("x"), None)
        .unwrap_err()
        .reason
        .contains("subject or subject_regex"));
    assert!(IdentityPolicy::new(Some("a"), Some("b"), Some("x"), None)
        .unwrap_err()
        .reason
        .contains("not both"));
    assert!(IdentityPolicy::new(Some("a"), None, None, Some("("))
        .unwrap_err()
        .reason
        .contains("invalid issuer_regex"));
    let p = IdentityPolicy::new(None, Some("a|b"), Some("x"), None).unwrap();
    assert!(p.subject.matches("a") && p.subject.matches("b") && !p.subject.matches("ab"));
}
