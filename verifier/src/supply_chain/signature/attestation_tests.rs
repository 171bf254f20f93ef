//! Attestation verification with the real fixtures (`../shared/fixtures/attestations`, see its
//! SOURCES.md), and with the test CA and Rekor for a keyless `.att` layer (an `intoto` entry).

use std::time::{Duration, SystemTime};

use base64::Engine;
use sha2::{Digest, Sha256};

use super::testca::{
    cert_pem, public_key_pem, random_key, sign, trusted_root_json, LeafSpec, TestAuthority, TestCa,
    TestRekor,
};
use super::*;
use crate::attestation::{PredicateKind, Signer};
use crate::material::{
    AttachedSbom, AttestationMaterial, DsseEnvelope, Origin, SigstoreBundle, UnsignedStatement,
};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures");
const GRYPE_DIGEST: &str =
    "sha256:4edbd2beb5f78b1014028f4fbb99f3237d9561100b6881aabbf5acce2c4f9454";
const ATT_DIGEST: &str = "sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4";
const TRIVY_DIGEST: &str =
    "sha256:be65f488b7764ad3638f236b7b515b3678369a5124c47b8d32916d6487418ea4";
const OTHER: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000001";

fn read(path: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{path}")).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn origin(layer: usize) -> Origin {
    Origin {
        manifest: "reg.test/app@sha256:aa".into(),
        layer: Some(layer),
    }
}

fn dsse(envelope: Vec<u8>) -> AttestationMaterial {
    AttestationMaterial::Dsse(DsseEnvelope {
        envelope,
        predicate_type: None,
        certificate_pem: None,
        chain_pem: None,
        rekor_bundle_json: None,
        origin: origin(0),
    })
}

fn grype_key() -> PublicKey {
    PublicKey::from_pem(&String::from_utf8(read("attestations/grype-alpine/cosign.pub")).unwrap())
        .unwrap()
}

fn image(digest: &str) -> Image<'_> {
    Image {
        digest,
        repository: "reg.test/app",
    }
}

fn at(t: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(t as u64)
}

fn key_authority(name: &str, key: &PublicKey) -> TestAuthority {
    TestAuthority::key(name, key)
}

#[test]
fn grype_cyclonedx_attestation_verifies_with_its_key() {
    let key = grype_key();
    let envelope = read("attestations/grype-alpine/alpine.cdx.att.json");
    let r = verify_attestations(
        &[dsse(envelope.clone())],
        &image(GRYPE_DIGEST),
        &[],
        &[key_authority("release", &key).rule()],
        &VerifyOptions::default(),
        at(1_790_000_000),
    );
    assert!(r.rejected.is_empty(), "{:?}", r.rejected);
    assert_eq!(r.attestations.len(), 1);
    let a = &r.attestations[0];
    assert_eq!(a.kind(), Some(PredicateKind::CycloneDx));
    assert_eq!(a.predicate_type, "https://cyclonedx.org/bom");
    assert_eq!(a.predicate["bomFormat"], "CycloneDX");
    assert_eq!(a.predicate["components"].as_array().unwrap().len(), 15);
    assert_eq!(a.subject_digest, GRYPE_DIGEST);
    assert_eq!(
        a.signer,
        Signer::Authority(format!("release (key sha256:{})", &key.fingerprint()[..12]))
    );
    // The digest is of the DSSE payload, the statement.
    let env: serde_json::Value = serde_json::from_slice(&envelope).unwrap();
    let payload = base64::engine::general_purpose::STANDARD
        .decode(env["payload"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        a.digest,
        format!("sha256:{}", hex::encode(Sha256::digest(&payload)))
    );
    assert_eq!(a.origin, "reg.test/app@sha256:aa layer 0");
}

#[test]
fn tampered_attestation_is_a_bad_signature_before_its_payload_is_parsed() {
    let key = grype_key();
    let tampered = read("malformed/grype_alpine-tampered.cdx.att.json");
    let material = DsseEnvelope {
        envelope: tampered.clone(),
        predicate_type: None,
        certificate_pem: None,
        chain_pem: None,
        rekor_bundle_json: None,
        origin: origin(3),
    };
    // Its payload is not even JSON: a parse would say "not valid JSON". The signature fails first.
    let e = verify_envelope(
        &material,
        &key_authority("release", &key).rule().cosign,
        &VerifyOptions::default(),
        at(1_790_000_000),
    )
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadSignature, "{e}");
    let r = verify_attestations(
        &[dsse(tampered)],
        &image(GRYPE_DIGEST),
        &[],
        &[key_authority("release", &key).rule()],
        &VerifyOptions::default(),
        at(1_790_000_000),
    );
    assert!(r.attestations.is_empty());
    assert_eq!(
        r.rejected,
        vec![
            "reg.test/app@sha256:aa layer 0: DSSE signature does not verify with authority \"release\""
                .to_string()
        ]
    );
}

#[test]
fn an_envelope_no_authority_verifies_is_rejected_never_unsigned() {
    let other = PublicKey::from_pem(&public_key_pem(&random_key())).unwrap();
    let grype = grype_key();
    let trivy = read("attestations/trivy_centos-7-cyclonedx.intoto.jsonl");
    let material = [
        dsse(read("attestations/grype-alpine/alpine.cdx.att.json")),
        dsse(trivy.trim_ascii_end().to_vec()),
    ];
    // Two authorities, neither the signer of the trivy envelope: each says why.
    let r = verify_attestations(
        &material,
        &image(GRYPE_DIGEST),
        &[TRIVY_DIGEST.to_string()],
        &[
            key_authority("a", &other).rule(),
            key_authority("b", &grype).rule(),
        ],
        &VerifyOptions::default(),
        at(1_790_000_000),
    );
    assert_eq!(r.attestations.len(), 1, "{:?}", r.rejected);
    assert!(r.attestations.iter().all(|a| a.signer != Signer::Unsigned));
    assert_eq!(r.rejected.len(), 1);
    assert!(
        r.rejected[0].ends_with(
            "DSSE signature does not verify with authority \"a\"; DSSE signature does not verify with authority \"b\""
        ),
        "{:?}",
        r.rejected
    );
    // No authority at all: still rejected, not unsigned.
    let r = verify_attestations(
        &material,
        &image(GRYPE_DIGEST),
        &[],
        &[],
        &VerifyOptions::default(),
        at(1_790_000_000),
    );
    assert!(r.attestations.is_empty());
    assert_eq!(r.rejected.len(), 2);
    assert!(
        r.rejected[0].contains("no authority to verify"),
        "{:?}",
        r.rejected
    );
}

#[test]
fn a_subject_that_is_another_image_is_rejected_unless_accepted() {
    let key = grype_key();
    let material = [dsse(read("attestations/grype-alpine/alpine.cdx.att.json"))];
    let release = key_authority("release", &key);
    let authorities = [release.rule()];
    let r = verify_attestations(
        &material,
        &image(OTHER),
        &[],
        &authorities,
        &VerifyOptions::default(),
        at(1_790_000_000),
    );
    assert!(r.attestations.is_empty());
    assert_eq!(
        r.rejected,
        vec![format!(
            "reg.test/app@sha256:aa layer 0: subject {GRYPE_DIGEST} is not the image {OTHER}"
        )]
    );
    // The platform manifest of a multi-arch image, accepted by the caller.
    let r = verify_attestations(
        &material,
        &image(OTHER),
        &[GRYPE_DIGEST.to_string()],
        &authorities,
        &VerifyOptions::default(),
        at(1_790_000_000),
    );
    assert_eq!(r.attestations.len(), 1, "{:?}", r.rejected);
    assert_eq!(r.attestations[0].subject_digest, GRYPE_DIGEST);
}

#[test]
fn a_subject_digest_is_quoted_on_one_short_line() {
    let statement = serde_json::json!({
        "_type": STATEMENT_V1,
        "subject": [{"name": "x", "digest": {"sha256": format!("ab\ncd{}", "e".repeat(1000))}}],
        "predicateType": "https://cyclonedx.org/bom",
        "predicate": {},
    });
    let material = [AttestationMaterial::Statement(UnsignedStatement {
        json: serde_json::to_vec(&statement).unwrap(),
        predicate_type: "https://cyclonedx.org/bom".into(),
        origin: origin(0),
    })];
    let r = verify_attestations(
        &material,
        &image(OTHER),
        &[],
        &[],
        &VerifyOptions::default(),
        at(1_790_000_000),
    );
    assert_eq!(
        r.rejected,
        vec![format!(
            "reg.test/app@sha256:aa layer 0: subject sha256:ab\\ncd{}… is not the image {OTHER}",
            "e".repeat(75)
        )]
    );
}

fn oci_attestation_bundle() -> AttestationMaterial {
    AttestationMaterial::Bundle(SigstoreBundle {
        json: read("attestations/cosign-oci-attestation/oci-attestation.sigstore.json"),
        media_type: "application/vnd.dev.sigstore.bundle.v0.3+json".into(),
        origin: origin(0),
    })
}

#[test]
fn keyless_attestation_bundle_verifies_and_its_non_sbom_predicate_is_reported() {
    let root = read("attestations/cosign-oci-attestation/trusted_root_pgi.json");
    let identity = |san: &str| {
        IdentityPolicy::new(
            Some(san),
            None,
            Some("https://github.com/login/oauth"),
            None,
        )
        .unwrap()
    };
    let ci = TestAuthority::keyless("ci", &root, identity("cody@soyland.com"));
    // The signature, Rekor entry and certificate verify (the payload is then read) ...
    let (sig, payload) = crate::sigstore::verify_image_attestation(
        match &oci_attestation_bundle() {
            AttestationMaterial::Bundle(b) => b,
            _ => unreachable!(),
        },
        &[ATT_DIGEST],
        &ci.bundles(),
    )
    .unwrap();
    assert_eq!(sig.certificate.unwrap().subject, "cody@soyland.com");
    assert_eq!(sig.signed_at, Some(1740770291));
    assert!(!payload.is_empty());
    // ... and its predicate, cosign's custom one, is not one policy reads.
    let r = verify_attestations(
        &[oci_attestation_bundle()],
        &image(ATT_DIGEST),
        &[],
        &[ci.rule()],
        &VerifyOptions::default(),
        at(1_790_000_000),
    );
    assert!(r.attestations.is_empty());
    assert_eq!(r.rejected.len(), 1);
    assert!(
        r.rejected[0].contains(
            "predicate type \"https://cosign.sigstore.dev/attestation/v1\" is not one policy reads"
        ),
        "{:?}",
        r.rejected
    );
    // As an attestation about the platform manifest of another image (an accepted subject).
    let r = verify_attestations(
        &[oci_attestation_bundle()],
        &image(OTHER),
        &[ATT_DIGEST.to_string()],
        &[ci.rule()],
        &VerifyOptions::default(),
        at(1_790_000_000),
    );
    assert!(
        r.rejected[0].contains("is not one policy reads"),
        "{:?}",
        r.rejected
    );
    // About another image only: refused by the verifier for its subject.
    let r = verify_attestations(
        &[oci_attestation_bundle()],
        &image(OTHER),
        &[],
        &[ci.rule()],
        &VerifyOptions::default(),
        at(1_790_000_000),
    );
    assert!(
        r.rejected[0].contains("the bundle is about another artifact"),
        "{:?}",
        r.rejected
    );
    // Another identity: rejected for that, not for the predicate.
    let someone = TestAuthority::keyless("ci", &root, identity("someone@example.com"));
    let r = verify_attestations(
        &[oci_attestation_bundle()],
        &image(ATT_DIGEST),
        &[],
        &[someone.rule()],
        &VerifyOptions::default(),
        at(1_790_000_000),
    );
    assert!(r.attestations.is_empty());
    assert!(
        r.rejected[0].contains(
            "certificate identity \"cody@soyland.com\" does not match \"someone@example.com\""
        ),
        "{:?}",
        r.rejected
    );
    // A key authority: the bundle is signed with a certificate, not with a key.
    let key = grype_key();
    let r = verify_attestations(
        &[oci_attestation_bundle()],
        &image(ATT_DIGEST),
        &[],
        &[key_authority("release", &key).rule()],
        &VerifyOptions::default(),
        at(1_790_000_000),
    );
    assert!(
        r.rejected[0].contains("signed with a certificate, not with a key"),
        "{:?}",
        r.rejected
    );
}

#[test]
fn a_key_signed_attestation_bundle_verifies_with_its_key_alone() {
    let signer = random_key();
    let key = PublicKey::from_pem(&public_key_pem(&signer)).unwrap();
    let statement = super::testca::statement(
        "reg.test/app",
        GRYPE_DIGEST,
        "https://cyclonedx.org/bom",
        serde_json::json!({"bomFormat": "CycloneDX", "specVersion": "1.5"}),
    );
    let rekor = TestRekor::new();
    // Logged in a log no key authority can know of: the entry is not verified, only its binding.
    let bundle = super::testca::statement_bundle(
        super::testca::BundleSigner::Key(&signer),
        Some(&rekor),
        &statement,
        1_700_000_000,
    );
    let material = |json: &serde_json::Value| {
        [AttestationMaterial::Bundle(SigstoreBundle {
            json: json.to_string().into_bytes(),
            media_type: "application/vnd.dev.sigstore.bundle.v0.3+json".into(),
            origin: origin(4),
        })]
    };
    let r = verify_attestations(
        &material(&bundle),
        &image(GRYPE_DIGEST),
        &[],
        &[key_authority("k", &key).rule()],
        &VerifyOptions::default(),
        at(1_790_000_000),
    );
    assert_eq!(r.attestations.len(), 1, "{:?}", r.rejected);
    assert_eq!(r.attestations[0].predicate["specVersion"], "1.5");
    assert_eq!(
        r.attestations[0].signer,
        Signer::Authority(format!("k (key sha256:{})", &key.fingerprint()[..12]))
    );
    // Another key does not verify it; nor does an entry about another signature.
    let other = PublicKey::from_pem(&public_key_pem(&random_key())).unwrap();
    let r = verify_attestations(
        &material(&bundle),
        &image(GRYPE_DIGEST),
        &[],
        &[key_authority("k", &other).rule()],
        &VerifyOptions::default(),
        at(1_790_000_000),
    );
    assert!(r.attestations.is_empty());
    assert!(
        r.rejected[0].contains("does not verify"),
        "{:?}",
        r.rejected
    );
    let mut swapped = bundle.clone();
    swapped["verificationMaterial"]["tlogEntries"] = super::testca::statement_bundle(
        super::testca::BundleSigner::Key(&signer),
        Some(&rekor),
        b"{}",
        1_700_000_000,
    )["verificationMaterial"]["tlogEntries"]
        .clone();
    let r = verify_attestations(
        &material(&swapped),
        &image(GRYPE_DIGEST),
        &[],
        &[key_authority("k", &key).rule()],
        &VerifyOptions::default(),
        at(1_790_000_000),
    );
    assert!(r.attestations.is_empty());
    assert!(
        r.rejected[0].contains("the log entry is not about this bundle"),
        "{:?}",
        r.rejected
    );
}

#[test]
fn unsigned_statements_and_attached_sboms_are_unsigned() {
    let trivy: serde_json::Value = serde_json::from_slice(
        read("attestations/trivy_centos-7-cyclonedx.intoto.jsonl").trim_ascii_end(),
    )
    .unwrap();
    let statement = base64::engine::general_purpose::STANDARD
        .decode(trivy["payload"].as_str().unwrap())
        .unwrap();
    let sbom = read("sbom/cyclonedx/syft-0.58.0_alpine-latest.cdx14.json");
    let material = [
        AttestationMaterial::Statement(UnsignedStatement {
            json: statement.clone(),
            predicate_type: "https://cyclonedx.org/bom".into(),
            origin: origin(1),
        }),
        AttestationMaterial::Sbom(AttachedSbom {
            document: sbom.clone(),
            media_type: "application/vnd.cyclonedx+json".into(),
            predicate_type: crate::attestation::CYCLONEDX_PREDICATE.into(),
            subject_digest: TRIVY_DIGEST.into(),
            origin: origin(2),
        }),
        AttestationMaterial::Sbom(AttachedSbom {
            document: b"SPDXVersion: SPDX-2.2\n".to_vec(),
            media_type: "text/spdx".into(),
            predicate_type: crate::attestation::SPDX_PREDICATE.into(),
            subject_digest: TRIVY_DIGEST.into(),
            origin: origin(3),
        }),
    ];
    let key = grype_key();
    let r = verify_attestations(
        &material,
        &image(TRIVY_DIGEST),
        &[],
        &[key_authority("release", &key).rule()],
        &VerifyOptions::default(),
        at(1_790_000_000),
    );
    assert_eq!(r.attestations.len(), 2, "{:?}", r.rejected);
    assert!(r.attestations.iter().all(|a| a.signer == Signer::Unsigned));
    assert_eq!(r.attestations[0].subject_digest, TRIVY_DIGEST);
    assert_eq!(r.attestations[0].predicate["specVersion"], "1.4");
    assert_eq!(
        r.attestations[0].digest,
        format!("sha256:{}", hex::encode(Sha256::digest(&statement)))
    );
    assert_eq!(r.attestations[1].subject_digest, TRIVY_DIGEST);
    assert_eq!(r.attestations[1].kind(), Some(PredicateKind::CycloneDx));
    assert_eq!(
        r.attestations[1].digest,
        format!("sha256:{}", hex::encode(Sha256::digest(&sbom)))
    );
    assert_eq!(r.rejected.len(), 1);
    assert!(
        r.rejected[0].contains("layer 3: attached SBOM is not valid JSON"),
        "{:?}",
        r.rejected
    );
    // A BuildKit statement about another image does not count either.
    let r = verify_attestations(
        &material[..1],
        &image(OTHER),
        &[],
        &[],
        &VerifyOptions::default(),
        at(1_790_000_000),
    );
    assert!(r.attestations.is_empty());
    assert!(
        r.rejected[0].contains("is not the image"),
        "{:?}",
        r.rejected
    );
}

/// An envelope over `statement` signed by `key`.
fn envelope_for(statement: &[u8], key: &p256::ecdsa::SigningKey) -> (Vec<u8>, Vec<u8>) {
    let sig = sign(key, &crate::dsse::pae(IN_TOTO_PAYLOAD_TYPE, statement));
    let env = serde_json::json!({
        "payloadType": IN_TOTO_PAYLOAD_TYPE,
        "payload": b64(statement),
        "signatures": [{"keyid": "", "sig": b64(&sig)}],
    })
    .to_string()
    .into_bytes();
    (env, sig)
}

#[test]
fn string_predicates_are_decoded_and_other_shapes_refused() {
    let signer = random_key();
    let key = PublicKey::from_pem(&public_key_pem(&signer)).unwrap();
    let hex = GRYPE_DIGEST.trim_start_matches("sha256:");
    let statement = |predicate: serde_json::Value, t: &str| {
        serde_json::json!({
            "_type": t,
            "predicateType": "https://spdx.dev/Document",
            "subject": [{"name": "x", "digest": {"sha256": hex}}],
            "predicate": predicate,
        })
        .to_string()
        .into_bytes()
    };
    let cases = [
        statement(
            serde_json::json!("{\"spdxVersion\":\"SPDX-2.3\"}"),
            STATEMENT_V01,
        ),
        statement(serde_json::json!({"spdxVersion": "SPDX-2.3"}), STATEMENT_V1),
        statement(serde_json::json!("SPDXVersion: SPDX-2.3"), STATEMENT_V01),
        statement(serde_json::json!([1, 2]), STATEMENT_V01),
        statement(serde_json::json!({}), "https://example.com/Statement"),
    ];
    let material: Vec<_> = cases
        .iter()
        .map(|s| dsse(envelope_for(s, &signer).0))
        .collect();
    let r = verify_attestations(
        &material,
        &image(GRYPE_DIGEST),
        &[],
        &[key_authority("k", &key).rule()],
        &VerifyOptions::default(),
        at(1_790_000_000),
    );
    assert_eq!(r.attestations.len(), 2, "{:?}", r.rejected);
    for a in &r.attestations {
        assert_eq!(a.predicate["spdxVersion"], "SPDX-2.3");
    }
    assert_eq!(r.rejected.len(), 3, "{:?}", r.rejected);
    assert!(
        r.rejected[0].contains("predicate string is not valid JSON"),
        "{:?}",
        r.rejected
    );
    assert!(
        r.rejected[1].contains("predicate is not a JSON object"),
        "{:?}",
        r.rejected
    );
    assert!(
        r.rejected[2].contains("not an in-toto statement"),
        "{:?}",
        r.rejected
    );
}

#[test]
fn hostile_envelopes_are_rejected_with_reasons() {
    let signer = random_key();
    let key = PublicKey::from_pem(&public_key_pem(&signer)).unwrap();
    let cases: [(&[u8], &str); 5] = [
        (b"not json", "DSSE envelope is not valid JSON"),
        (br#"{"payloadType":"text/plain","payload":"","signatures":[{"sig":""}]}"#, "is not application/vnd.in-toto+json"),
        (br#"{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}"#, "0 signatures"),
        (br#"{"payloadType":"application/vnd.in-toto+json","payload":"!!","signatures":[{"sig":"AA=="}]}"#, "DSSE payload is not valid base64"),
        (br#"{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"sig":"AA=="}]}"#, "does not verify with authority \"k\""),
    ];
    for (envelope, want) in cases {
        let r = verify_attestations(
            &[dsse(envelope.to_vec())],
            &image(GRYPE_DIGEST),
            &[],
            &[key_authority("k", &key).rule()],
            &VerifyOptions::default(),
            at(1_790_000_000),
        );
        assert!(r.attestations.is_empty());
        assert!(r.rejected[0].contains(want), "{want}: {:?}", r.rejected);
    }
}

// ---- keyless `.att` layers: certificate, chain and a Rekor `intoto` entry -----------------

const T0: i64 = 1_750_000_000;
const SAN: &str = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main";
const ISSUER: &str = "https://token.actions.githubusercontent.com";

struct Keyless {
    ca: TestCa,
    rekor: TestRekor,
    root_json: String,
    leaf_key: p256::ecdsa::SigningKey,
    leaf_der: Vec<u8>,
}

impl Keyless {
    fn new() -> Keyless {
        let ca = TestCa::new("test ca");
        let rekor = TestRekor::new();
        let root_json = trusted_root_json(&ca, &rekor, "2020-01-01T00:00:00Z");
        let leaf_key = random_key();
        let leaf_der = ca.issue(
            &leaf_key,
            &LeafSpec {
                san_uri: SAN,
                issuer: ISSUER,
                not_before: T0 - 60,
                not_after: T0 + 540,
            },
        );
        Keyless {
            ca,
            rekor,
            root_json,
            leaf_key,
            leaf_der,
        }
    }

    /// An `.att` layer over a CycloneDX statement about `GRYPE_DIGEST`, with a Rekor bundle whose
    /// entry is `body(envelope, payload, signature, verifier PEM)`.
    fn layer(
        &self,
        body: impl Fn(&[u8], &[u8], &[u8], &str) -> serde_json::Value,
    ) -> AttestationMaterial {
        let statement = serde_json::json!({
            "_type": STATEMENT_V01,
            "predicateType": "https://cyclonedx.org/bom",
            "subject": [{"name": "reg.test/app", "digest": {"sha256": GRYPE_DIGEST.trim_start_matches("sha256:")}}],
            "predicate": {"bomFormat": "CycloneDX", "specVersion": "1.4"},
        })
        .to_string()
        .into_bytes();
        let (envelope, sig) = envelope_for(&statement, &self.leaf_key);
        let pem = cert_pem(&self.leaf_der);
        let body = body(&envelope, &statement, &sig, &pem)
            .to_string()
            .into_bytes();
        AttestationMaterial::Dsse(DsseEnvelope {
            envelope,
            predicate_type: Some("https://cyclonedx.org/bom".into()),
            certificate_pem: Some(pem),
            chain_pem: Some(cert_pem(&self.ca.cert_der)),
            rekor_bundle_json: Some(self.rekor.cosign_bundle(&body, T0, 9)),
            origin: origin(0),
        })
    }

    fn verify(&self, m: AttestationMaterial) -> crate::attestation::AttestationReport {
        let identity = IdentityPolicy::new(Some(SAN), None, Some(ISSUER), None).unwrap();
        verify_attestations(
            &[m],
            &image(GRYPE_DIGEST),
            &[],
            &[TestAuthority::keyless("ci", self.root_json.as_bytes(), identity).rule()],
            &VerifyOptions::default(),
            at(T0 + 3600),
        )
    }
}

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// rekor's intoto v0.0.2 canonical body: the envelope's signature stored base64-encoded twice.
fn intoto_v002(envelope: &[u8], payload: &[u8], sig: &[u8], pem: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "0.0.2",
        "kind": "intoto",
        "spec": {"content": {
            "envelope": {
                "payloadType": IN_TOTO_PAYLOAD_TYPE,
                "signatures": [{"publicKey": b64(pem.as_bytes()), "sig": b64(b64(sig).as_bytes())}]
            },
            "hash": {"algorithm": "sha256", "value": sha(envelope)},
            "payloadHash": {"algorithm": "sha256", "value": sha(payload)}
        }}
    })
}

#[test]
fn keyless_att_layer_with_an_intoto_entry_verifies() {
    let k = Keyless::new();
    let r = k.verify(k.layer(intoto_v002));
    assert!(r.rejected.is_empty(), "{:?}", r.rejected);
    assert_eq!(r.attestations.len(), 1);
    assert_eq!(
        r.attestations[0].signer,
        Signer::Authority(format!("ci ({SAN} via {ISSUER})"))
    );
    // intoto v0.0.1 (public key beside the content) and dsse v0.0.1 entries bind it too.
    let v001 = |env: &[u8], payload: &[u8], _: &[u8], pem: &str| {
        serde_json::json!({"apiVersion": "0.0.1", "kind": "intoto", "spec": {
            "content": {"hash": {"algorithm": "sha256", "value": sha(env)},
                        "payloadHash": {"algorithm": "sha256", "value": sha(payload)}},
            "publicKey": b64(pem.as_bytes())}})
    };
    let r = k.verify(k.layer(v001));
    assert_eq!(r.attestations.len(), 1, "{:?}", r.rejected);
    let dsse_kind = |_: &[u8], payload: &[u8], sig: &[u8], pem: &str| {
        serde_json::json!({"apiVersion": "0.0.1", "kind": "dsse", "spec": {
            "payloadHash": {"algorithm": "sha256", "value": sha(payload)},
            "signatures": [{"signature": b64(sig), "verifier": b64(pem.as_bytes())}]}})
    };
    let r = k.verify(k.layer(dsse_kind));
    assert_eq!(r.attestations.len(), 1, "{:?}", r.rejected);
}

#[test]
fn keyless_att_layer_whose_entry_is_about_something_else_is_rejected() {
    type Body = dyn Fn(&[u8], &[u8], &[u8], &str) -> serde_json::Value;
    let k = Keyless::new();
    let cases: [(&str, &Body); 4] = [
        ("another DSSE envelope", &|_, p, s, pem| {
            intoto_v002(b"other", p, s, pem)
        }),
        ("another DSSE payload", &|e, _, s, pem| {
            intoto_v002(e, b"other", s, pem)
        }),
        ("another signature", &|e, p, _, pem| {
            intoto_v002(e, p, b"other", pem)
        }),
        ("another signer", &|e, p, s, _| {
            intoto_v002(e, p, s, &public_key_pem(&random_key()))
        }),
    ];
    for (want, body) in cases {
        let r = k.verify(k.layer(body));
        assert!(r.attestations.is_empty(), "{want}");
        assert!(r.rejected[0].contains(want), "{want}: {:?}", r.rejected);
    }
    // No Rekor bundle at all.
    let mut m = k.layer(intoto_v002);
    if let AttestationMaterial::Dsse(d) = &mut m {
        d.rekor_bundle_json = None;
    }
    let r = k.verify(m);
    assert!(
        r.rejected[0].contains("no Rekor bundle"),
        "{:?}",
        r.rejected
    );
}
