//! Sigstore bundles at container start: a verify rule's check (`verify::check`, what a start and
//! `vouch verify` run for each rule) over bundle material, with the policy's authorities read from
//! files as on a node. Every sigstore-conformance failure case is refused by a start for the very
//! reason `vouch verify-blob` gives; the test CA and Rekor make cosign v3 image signatures tampered
//! one field at a time; the real cosign v3 bundle of the fixtures verifies.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{verify_blob, Artifact, BlobPolicy, FailureKind};
use crate::facts::ImageIdentity;
use crate::material::{Origin, SignatureMaterial, SigstoreBundle};
use crate::policy::Verification;
use crate::signature::testca::{
    message_bundle, public_key_pem, random_key, statement, statement_bundle, trusted_root_json,
    BundleSigner, LeafSpec, SigningKey, TestCa, TestRekor,
};
use crate::signature::COSIGN_SIGN_PREDICATE;
use crate::verify::{check, Outcome};

#[path = "../../../tests/sigstore_cases/mod.rs"]
mod conformance;

const SUBJECT: &str = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main";
const ISSUER: &str = "https://issuer.test";
const REPOSITORY: &str = "registry.test/acme/app";

/// A verify rule named `signed` whose one authority is `authority` (the rest of its table).
fn rule(authority: &str) -> Verification {
    let policy = format!(
        "version = 1\n[[rule]]\nname = \"signed\"\nimages = [\"registry.test/**\"]\naction = \"verify\"\n[[rule.authority]]\n{authority}"
    );
    let loaded = crate::policy::parse(Path::new("/policy.toml"), policy.as_bytes())
        .unwrap_or_else(|e| panic!("{e}\n{policy}"));
    loaded.policy.rules[0].verify.clone().unwrap()
}

fn keyless_rule(trusted_root: &Path, identity: &str) -> Verification {
    rule(&format!(
        "name = \"ci\"\nkeyless = {{ trusted_root = \"{}\", {identity} }}\n",
        trusted_root.display()
    ))
}

/// What a start decides for the rule, with `bundle` as the image's only signature.
fn start(v: &Verification, digest: &str, bundle: &[u8]) -> Outcome {
    let image = ImageIdentity {
        name: format!("{REPOSITORY}:v1"),
        repository: REPOSITORY.to_string(),
        digest: digest.to_string(),
    };
    let material = [SignatureMaterial::Bundle(SigstoreBundle {
        json: bundle.to_vec(),
        media_type: "application/vnd.dev.sigstore.bundle.v0.3+json".into(),
        origin: Origin {
            manifest: format!("{REPOSITORY}@sha256:{}", "b".repeat(64)),
            layer: Some(0),
        },
    })];
    check(v, &image, &material, &[], SystemTime::now())
}

/// The reason of a refused start, which must be the one-authority denial around `why`.
fn refused(outcome: Outcome) -> String {
    match outcome {
        Outcome::Failed(reason) => {
            let why = reason
                .strip_prefix("no signature by a trusted authority (1 checked: ")
                .and_then(|r| r.strip_suffix(')'))
                .unwrap_or_else(|| panic!("not a one-authority refusal: {reason}"));
            why.to_string()
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

#[test]
fn every_conformance_failure_refuses_a_start_for_the_reason_verify_blob_gives() {
    let mut refusals = 0;
    for case in conformance::cases() {
        // A key authority names no trusted root: its bundles are tested below, with their key.
        if case.key.is_some() {
            continue;
        }
        let bundle = std::fs::read(&case.bundle).unwrap();
        let digest = case.digest();
        let v = keyless_rule(
            &case.trusted_root,
            &format!(
                "issuer = \"{}\", subject = \"{}\"",
                case.issuer, case.identity
            ),
        );
        let outcome = start(&v, &digest, &bundle);
        let mut artifact = [0u8; 32];
        hex::decode_to_slice(&digest[7..], &mut artifact).unwrap();
        let blob = verify_blob(
            Artifact::Sha256(artifact),
            &bundle,
            &BlobPolicy::keyless(Some(&case.identity), None, Some(&case.issuer), None).unwrap(),
            &std::fs::read(&case.trusted_root).unwrap(),
        );
        let is_dsse =
            serde_json::from_slice::<Value>(&bundle).is_ok_and(|b| b.get("dsseEnvelope").is_some());
        match (case.expect_verified(), blob) {
            (false, Err(e)) => {
                let expected = conformance::expected_failure(&case.name)
                    .unwrap_or_else(|| panic!("{}: no expected failure", case.name));
                assert_eq!(
                    serde_json::to_value(e.kind).unwrap(),
                    expected,
                    "{}: {e}",
                    case.name
                );
                let why = refused(outcome);
                assert!(why.contains(&e.reason), "{}: {why} / {e}", case.name);
                refusals += 1;
            }
            (false, Ok(v)) => panic!("{} verified: {}", case.name, v.summary()),
            (true, Err(e)) => panic!("{} refused: {e}", case.name),
            // A start takes cosign's image-signature statements only.
            (true, Ok(_)) if is_dsse => assert!(
                refused(outcome).contains("is not accepted here"),
                "{}",
                case.name
            ),
            (true, Ok(_)) => assert!(
                matches!(outcome, Outcome::Verified(_)),
                "{}: {outcome:?}",
                case.name
            ),
        }
    }
    // Untrusted TSA, timestamp outside validity, SET, inclusion proof, checkpoint, certificate
    // expired at signing time, digest mismatch and the rest.
    assert!(refusals >= 40, "only {refusals} failure cases ran");
}

/// A test Sigstore on disk, and cosign v3 image signatures made with it.
struct Sigstore {
    dir: tempfile::TempDir,
    ca: TestCa,
    rekor: TestRekor,
    trusted_root: PathBuf,
    digest: String,
    time: i64,
}

impl Sigstore {
    fn new() -> Sigstore {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("test ca");
        let rekor = TestRekor::new();
        let trusted_root = dir.path().join("trusted_root.json");
        std::fs::write(
            &trusted_root,
            trusted_root_json(&ca, &rekor, "2020-01-01T00:00:00Z"),
        )
        .unwrap();
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        Sigstore {
            dir,
            ca,
            rekor,
            trusted_root,
            digest: sha256(b"the manifest"),
            time: now - 120,
        }
    }

    fn leaf(&self, key: &SigningKey, issuer: &str, not_before: i64, not_after: i64) -> Vec<u8> {
        self.ca.issue(
            key,
            &LeafSpec {
                san_uri: SUBJECT,
                issuer,
                not_before,
                not_after,
            },
        )
    }

    /// cosign v3's image signature: a DSSE statement with cosign's predicate, logged.
    fn dsse(&self, predicate_type: &str, leaf: &[u8], key: &SigningKey) -> Value {
        statement_bundle(
            BundleSigner::Certificate {
                key,
                leaf_der: leaf,
            },
            Some(&self.rekor),
            &statement(
                REPOSITORY,
                &self.digest,
                predicate_type,
                serde_json::json!({}),
            ),
            self.time,
        )
    }

    fn signed(&self) -> Value {
        let key = random_key();
        let leaf = self.leaf(&key, ISSUER, self.time - 60, self.time + 540);
        self.dsse(COSIGN_SIGN_PREDICATE, &leaf, &key)
    }

    fn rule(&self, identity: &str) -> Verification {
        keyless_rule(&self.trusted_root, identity)
    }

    fn right(&self) -> Verification {
        self.rule(&format!("issuer = \"{ISSUER}\", subject = \"{SUBJECT}\""))
    }

    fn start(&self, v: &Verification, bundle: &Value) -> Outcome {
        start(v, &self.digest, bundle.to_string().as_bytes())
    }
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(text: &Value) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text.as_str().unwrap())
        .unwrap()
}

#[test]
fn a_cosign_v3_image_signature_runs_and_each_failure_is_named() {
    let s = Sigstore::new();
    let good = s.signed();
    let right = s.right();
    assert_eq!(
        s.start(&right, &good),
        Outcome::Verified(vec![format!("ci ({SUBJECT} via {ISSUER})")])
    );
    // The regex forms match the whole values.
    let regex = s.rule(
        "issuer_regex = \"https://issuer\\\\.test\", subject_regex = \"https://github.com/acme/.*\"",
    );
    assert!(matches!(s.start(&regex, &good), Outcome::Verified(_)));
    let partial = s.rule(&format!(
        "issuer = \"{ISSUER}\", subject_regex = \"https://github.com/acme\""
    ));
    let why = refused(s.start(&partial, &good));
    assert!(
        why.starts_with(&format!(
            "certificate identity \"{SUBJECT}\" does not match /"
        )),
        "{why}"
    );

    let entry = "/verificationMaterial/tlogEntries/0";
    let tamper = |pointer: &str, f: &dyn Fn(&mut Value)| {
        let mut b = good.clone();
        f(b.pointer_mut(pointer)
            .unwrap_or_else(|| panic!("no {pointer}")));
        b
    };
    let flip = |v: &mut Value| {
        let mut bytes = unb64(v);
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        *v = b64(&bytes).into();
    };
    let rogue = TestRekor::new();
    let key = random_key();
    let expired_leaf = s.leaf(&key, ISSUER, s.time - 3600, s.time - 3000);
    let mut other_ct = TestCa::new("test ca");
    other_ct.key = s.ca.key.clone();
    other_ct.name = s.ca.name.clone();
    let no_trusted_sct = other_ct.issue(
        &key,
        &LeafSpec {
            san_uri: SUBJECT,
            issuer: ISSUER,
            not_before: s.time - 60,
            not_after: s.time + 540,
        },
    );
    let other_ca = TestCa::new("other ca").issue(
        &key,
        &LeafSpec {
            san_uri: SUBJECT,
            issuer: ISSUER,
            not_before: s.time - 60,
            not_after: s.time + 540,
        },
    );
    let cases: Vec<(&str, Verification, Value, &str)> = vec![
        (
            "identity",
            s.rule(&format!(
                "issuer = \"{ISSUER}\", subject = \"https://github.com/evil/app\""
            )),
            good.clone(),
            "certificate identity",
        ),
        (
            "issuer",
            s.rule(&format!(
                "issuer = \"https://accounts.example.com\", subject = \"{SUBJECT}\""
            )),
            good.clone(),
            "certificate issuer \"https://issuer.test\" does not match \"https://accounts.example.com\"",
        ),
        (
            "certificate expired at the signing time",
            s.right(),
            s.dsse(COSIGN_SIGN_PREDICATE, &expired_leaf, &key),
            "the certificate chain was not valid at the signing time: a certificate had expired",
        ),
        (
            "bad SET",
            s.right(),
            tamper(&format!("{entry}/inclusionPromise/signedEntryTimestamp"), &flip),
            "the signed entry timestamp (SET) does not verify",
        ),
        (
            "bad inclusion proof",
            s.right(),
            tamper(&format!("{entry}/inclusionProof/hashes"), &|v| {
                *v = serde_json::json!([b64(&[7u8; 32])])
            }),
            "the inclusion proof does not lead to the checkpoint's root",
        ),
        (
            "bad checkpoint",
            s.right(),
            tamper(&format!("{entry}/inclusionProof/checkpoint"), &|v| {
                *v = rogue.tlog_entry("dsse", b"{}", s.time)["inclusionProof"]["checkpoint"]
                    .clone()
            }),
            "the checkpoint carries no valid signature of log \"rekor.test\"",
        ),
        (
            "log not in the trusted root",
            s.right(),
            tamper(entry, &|v| {
                let body = unb64(&v["canonicalizedBody"]);
                *v = rogue.tlog_entry("dsse", &body, s.time);
            }),
            "which the trusted root does not list",
        ),
        (
            "SCT of an untrusted CT log",
            s.right(),
            s.dsse(COSIGN_SIGN_PREDICATE, &no_trusted_sct, &key),
            "the certificate's SCT does not verify with a trusted CT log",
        ),
        (
            "untrusted CA",
            s.right(),
            s.dsse(COSIGN_SIGN_PREDICATE, &other_ca, &key),
            "the certificate does not chain to a trusted CA",
        ),
        (
            "signature",
            s.right(),
            tamper("/dsseEnvelope/signatures/0/sig", &flip),
            "does not verify",
        ),
        (
            "not an image signature",
            s.right(),
            {
                let leaf = s.leaf(&key, ISSUER, s.time - 60, s.time + 540);
                s.dsse("https://spdx.dev/Document", &leaf, &key)
            },
            "statement predicate type \"https://spdx.dev/Document\" is not accepted here",
        ),
    ];
    for (name, v, bundle, want) in cases {
        let why = refused(s.start(&v, &bundle));
        assert!(why.contains(want), "{name}: {why:?} lacks {want:?}");
    }
    // Another image's digest.
    let why = refused(start(
        &right,
        &sha256(b"another manifest"),
        good.to_string().as_bytes(),
    ));
    assert!(
        why.starts_with("the bundle is about another artifact"),
        "{why}"
    );
}

#[test]
fn a_message_signature_over_the_manifest_digest_runs_keyless_and_with_a_key() {
    let s = Sigstore::new();
    let mut digest = [0u8; 32];
    hex::decode_to_slice(&s.digest[7..], &mut digest).unwrap();
    let key = random_key();
    let leaf = s.leaf(&key, ISSUER, s.time - 60, s.time + 540);
    let keyless = message_bundle(
        BundleSigner::Certificate {
            key: &key,
            leaf_der: &leaf,
        },
        Some(&s.rekor),
        digest,
        s.time,
    );
    assert!(matches!(
        s.start(&s.right(), &keyless),
        Outcome::Verified(_)
    ));
    let why = refused(start(
        &s.right(),
        &sha256(b"another manifest"),
        keyless.to_string().as_bytes(),
    ));
    assert!(why.contains("another artifact"), "{why}");

    // A key authority: the key alone decides, as its rule names no trusted root.
    let signer = random_key();
    let pem = s.dir.path().join("release.pub");
    std::fs::write(&pem, public_key_pem(&signer)).unwrap();
    let release = rule(&format!(
        "name = \"release\"\nkey = \"{}\"\n",
        pem.display()
    ));
    let bundle = message_bundle(BundleSigner::Key(&signer), Some(&s.rekor), digest, s.time);
    match s.start(&release, &bundle) {
        Outcome::Verified(who) => assert!(who[0].starts_with("release (key sha256:"), "{who:?}"),
        other => panic!("{other:?}"),
    }
    // A bundle must carry a log entry or a timestamp, and a timestamp alone cannot be verified
    // without a trusted root.
    let unlogged = message_bundle(BundleSigner::Key(&signer), None, digest, s.time);
    assert_eq!(
        refused(s.start(&release, &unlogged)),
        "the bundle has neither a transparency-log entry nor an RFC 3161 timestamp"
    );
    let mut timestamped = unlogged.clone();
    timestamped["verificationMaterial"]["timestampVerificationData"] =
        serde_json::json!({"rfc3161Timestamps": [{"signedTimestamp": "MAA="}]});
    let why = refused(s.start(&release, &timestamped));
    assert!(
        why.contains("no trusted root to verify a timestamp with"),
        "{why}"
    );
    let other = message_bundle(
        BundleSigner::Key(&random_key()),
        Some(&s.rekor),
        digest,
        s.time,
    );
    assert_eq!(
        refused(s.start(&release, &other)),
        "the signature does not verify over the artifact with the signing key"
    );
    // Neither kind of authority takes the other kind of bundle.
    let why = refused(s.start(&release, &keyless));
    assert!(
        why.contains("signed with a certificate, not with a key"),
        "{why}"
    );
    let keyed = message_bundle(BundleSigner::Key(&signer), Some(&s.rekor), digest, s.time);
    let why = refused(s.start(&s.right(), &keyed));
    assert!(
        why.contains("signed with a key, not a certificate"),
        "{why}"
    );
}

#[test]
fn an_authority_window_is_checked_at_the_bundles_signing_time() {
    let s = Sigstore::new();
    let good = s.signed();
    let until = time::OffsetDateTime::from_unix_timestamp(s.time - 1)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let v = rule(&format!(
        "name = \"ci\"\nkeyless = {{ trusted_root = \"{}\", issuer = \"{ISSUER}\", subject = \"{SUBJECT}\" }}\nvalid_until = \"{until}\"\n",
        s.trusted_root.display()
    ));
    let why = refused(s.start(&v, &good));
    assert!(why.contains("(rotated out)"), "{why}");
}

#[test]
fn a_witness_quorum_in_the_policy_applies_to_a_start() {
    let s = Sigstore::new();
    let v = s.rule(&format!(
        "issuer = \"{ISSUER}\", subject = \"{SUBJECT}\", witnesses = [\"witness.stagemole.eu+67f7aea0+BEqSG3yu9YrmcM3BHvQYTxwFj3uSWakQepafafpUqklv\"], witness_quorum = 1"
    ));
    let why = refused(s.start(&v, &s.signed()));
    assert!(why.contains("witness"), "{why}");
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures")
}

#[test]
fn the_real_cosign_v3_bundle_runs_for_its_image_and_one_changed_byte_refuses_it() {
    const DIGEST: &str = "sha256:c811d58de79c92f03214e63aa339484e488d694ae8a6283b5f3f17a9faf50172";
    const SAN: &str = "https://github.com/kubewarden/kubewarden-controller/.github/workflows/release.yml@refs/tags/v1.34.0";
    // Signed with an RFC 3161 timestamp too, which the public-good root's timestamp authority
    // must have issued (the sigstore-rs root beside the bundle lists none).
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/sigstore-public-good/trusted_root.json");
    let bundle: Value = serde_json::from_slice(
        &std::fs::read(fixtures().join("signatures/sigstore-rs/bundle_v03.json")).unwrap(),
    )
    .unwrap();
    let v = keyless_rule(
        &root,
        &format!("issuer = \"https://token.actions.githubusercontent.com\", subject = \"{SAN}\""),
    );
    let run = |b: &Value| start(&v, DIGEST, b.to_string().as_bytes());
    assert_eq!(
        run(&bundle),
        Outcome::Verified(vec![format!(
            "ci ({SAN} via https://token.actions.githubusercontent.com)"
        )])
    );
    let why = refused(start(&v, &sha256(b"other"), bundle.to_string().as_bytes()));
    assert!(why.contains("another artifact"), "{why}");
    for pointer in [
        "/dsseEnvelope/payload",
        "/dsseEnvelope/signatures/0/sig",
        "/verificationMaterial/certificate/rawBytes",
        "/verificationMaterial/tlogEntries/0/inclusionPromise/signedEntryTimestamp",
        "/verificationMaterial/tlogEntries/0/canonicalizedBody",
        "/verificationMaterial/tlogEntries/0/inclusionProof/rootHash",
        "/verificationMaterial/tlogEntries/0/inclusionProof/hashes/3",
    ] {
        let len = unb64(bundle.pointer(pointer).unwrap()).len();
        for i in [0, len / 2, len - 1] {
            let mut b = bundle.clone();
            let field = b.pointer_mut(pointer).unwrap();
            let mut bytes = unb64(field);
            bytes[i] ^= 0x40;
            *field = b64(&bytes).into();
            assert!(
                matches!(run(&b), Outcome::Failed(_)),
                "{pointer} byte {i} still verifies"
            );
        }
    }
    for (pointer, value) in [
        (
            "/verificationMaterial/tlogEntries/0/integratedTime",
            "1700000000",
        ),
        ("/verificationMaterial/tlogEntries/0/logIndex", "1"),
        (
            "/verificationMaterial/tlogEntries/0/inclusionProof/treeSize",
            "1",
        ),
    ] {
        let mut b = bundle.clone();
        *b.pointer_mut(pointer).unwrap() = value.into();
        assert!(matches!(run(&b), Outcome::Failed(_)), "{pointer}");
    }
    let mut b = bundle.clone();
    b["verificationMaterial"]["tlogEntries"] = serde_json::json!([]);
    assert_eq!(
        refused(run(&b)),
        "the bundle has no transparency-log entry, which a certificate needs"
    );
}

#[test]
fn hostile_bundles_refuse_a_start_on_one_line() {
    let s = Sigstore::new();
    let v = s.right();
    for (bundle, want) in [
        (&b"garbage"[..], "not a Sigstore bundle"),
        (b"{}", "not a Sigstore bundle"),
        (
            br#"{"mediaType":"application/x","verificationMaterial":{}}"#,
            "not a Sigstore bundle",
        ),
    ] {
        let why = refused(start(&v, &s.digest, bundle));
        assert!(why.contains(want), "{want:?} not in {why}");
        assert!(!why.contains('\n'));
    }
    let huge = vec![b' '; crate::signature::MAX_BUNDLE_LEN + 1];
    let why = refused(start(&v, &s.digest, &huge));
    assert!(why.contains("more than the"), "{why}");
    let mut both = s.signed();
    both["messageSignature"] = serde_json::json!({"signature": "AAAA"});
    let why = refused(s.start(&v, &both));
    assert!(
        why.contains("both a message signature and a DSSE envelope"),
        "{why}"
    );
    let mut payload_type = s.signed();
    payload_type["dsseEnvelope"]["payloadType"] = "text/plain".into();
    assert_eq!(
        refused(s.start(&v, &payload_type)),
        "unsupported bundle: unsupported DSSE payload type \"text/plain\": cannot bind artifact to \
         attestation"
    );
    let mut kind = s.signed();
    kind["verificationMaterial"]["tlogEntries"][0]["kindVersion"]["kind"] = "hashedrekord".into();
    assert_eq!(
        refused(s.start(&v, &kind)),
        "unsupported bundle: Rekor entry hashedrekord/0.0.1 is incompatible with a DSSE envelope"
    );
    // A trusted root that lists nothing trusts nothing.
    let empty = s.dir.path().join("empty.json");
    std::fs::write(
        &empty,
        r#"{"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1"}"#,
    )
    .unwrap();
    let nothing = keyless_rule(
        &empty,
        &format!("issuer = \"{ISSUER}\", subject = \"{SUBJECT}\""),
    );
    let why = refused(s.start(&nothing, &s.signed()));
    assert!(
        why.contains("which the trusted root does not list"),
        "{why}"
    );
    // The refusal kind for the signature module's callers.
    let e =
        super::image::signature_error(super::BlobError::new(FailureKind::CertificateExpired, "x"));
    assert_eq!(e.kind, crate::signature::ErrorKind::Expired);
}
