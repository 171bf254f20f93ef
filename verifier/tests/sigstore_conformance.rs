//! Every sigstore-conformance bundle-verify case through `sigstore::verify_blob`, once with the
//! artifact's path and once with its `sha256:` digest (as the suite runs its clients), each
//! verified or refused as its name says and refused for the reason `expected_failure` names.
//! Then the real bundles of `shared/fixtures/`.

mod sigstore_cases;

use std::path::Path;

use sigstore_cases::{cases, expected_failure, Case};
use vouch_verifier::sigstore::{
    verify_blob, Artifact, BlobError, BlobKey, BlobPolicy, BlobVerified, FailureKind,
    SignedContent, Signer, MAX_REASON_CHARS,
};

fn policy(case: &Case) -> Result<BlobPolicy, BlobError> {
    match &case.key {
        Some(key) => Ok(BlobPolicy::Key {
            key: BlobKey::from_pem(&std::fs::read(key).unwrap())?,
            require_tlog: false,
        }),
        None => BlobPolicy::keyless(Some(&case.identity), None, Some(&case.issuer), None),
    }
}

fn run(case: &Case, artifact: Artifact<'_>) -> Result<BlobVerified, BlobError> {
    let bundle = std::fs::read(&case.bundle).unwrap();
    let root = std::fs::read(&case.trusted_root).unwrap();
    verify_blob(artifact, &bundle, &policy(case)?, &root)
}

fn kind_name(kind: FailureKind) -> String {
    serde_json::to_value(kind)
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn every_conformance_case_verifies_or_is_refused_as_named() {
    let cases = cases();
    assert_eq!(cases.len(), 70, "the vendored suite has 70 cases");
    let mut mismatches = Vec::new();
    let mut runs = 0;
    for case in &cases {
        let digest = case.digest();
        for (mode, artifact) in [
            ("path", Artifact::Path(&case.artifact)),
            ("digest", Artifact::from_argument(&digest).unwrap()),
        ] {
            runs += 1;
            let outcome = run(case, artifact);
            match (&outcome, case.expect_verified()) {
                (Ok(_), true) => {}
                (Err(e), false) => {
                    let want = expected_failure(&case.name).unwrap_or("(not listed)");
                    if kind_name(e.kind) != want {
                        mismatches.push(format!(
                            "{} [{mode}]: refused as {}, expected {want}: {}",
                            case.name,
                            kind_name(e.kind),
                            e.reason
                        ));
                    }
                    assert!(
                        !e.reason.contains('\n') && e.reason.chars().count() <= MAX_REASON_CHARS
                    );
                }
                (Ok(_), false) => mismatches.push(format!("{} [{mode}]: verified", case.name)),
                (Err(e), true) => mismatches.push(format!("{} [{mode}]: refused: {e}", case.name)),
            }
        }
    }
    assert_eq!(runs, 140);
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn the_happy_paths_report_signer_log_and_time() {
    let cases = cases();
    let case = |name: &str| cases.iter().find(|c| c.name == name).unwrap();

    let v1 = run(
        case("happy-path-v0.3"),
        Artifact::Path(&case("happy-path-v0.3").artifact),
    )
    .unwrap();
    assert_eq!(
        v1.media_type,
        "application/vnd.dev.sigstore.bundle.v0.3+json"
    );
    assert_eq!(v1.content, SignedContent::MessageSignature);
    let Signer::Certificate {
        identity,
        issuer,
        fingerprint,
    } = &v1.signer
    else {
        panic!("keyless")
    };
    assert_eq!(identity, sigstore_cases::DEFAULT_IDENTITY);
    assert_eq!(issuer, sigstore_cases::DEFAULT_ISSUER);
    assert_eq!(fingerprint.len(), 64);
    assert_eq!(v1.log_entries.len(), 1);
    assert_eq!(v1.log_entries[0].log, "rekor.sigstore.dev");
    assert_eq!(v1.log_entries[0].index, 79571823);
    assert_eq!(v1.log_entries[0].kind, "hashedrekord/0.0.1");
    let integrated = v1.log_entries[0].integrated_time.unwrap();
    assert_eq!(v1.signing_times, vec![integrated]);

    let v2 = run(
        case("rekor2-happy-path"),
        Artifact::Path(&case("rekor2-happy-path").artifact),
    )
    .unwrap();
    assert_eq!(v2.log_entries[0].log, "log2025-alpha1.rekor.sigstage.dev");
    assert_eq!(v2.log_entries[0].kind, "hashedrekord/0.0.2");
    assert_eq!(
        v2.log_entries[0].integrated_time, None,
        "Rekor v2 has no integrated time"
    );
    assert_eq!(v2.signing_times.len(), 1, "the RFC 3161 timestamp");

    let dsse = case("rekor2-dsse-happy-path");
    let dsse = run(
        dsse,
        Artifact::Bytes(&std::fs::read(&dsse.artifact).unwrap()),
    )
    .unwrap();
    assert_eq!(
        dsse.content,
        SignedContent::Dsse {
            payload_type: "application/vnd.in-toto+json".to_string(),
            predicate_type: Some("https://slsa.dev/provenance/v1".to_string()),
        }
    );
    assert!(dsse.summary().contains("log2025-alpha3.rekor.sigstage.dev"));

    let key = run(
        case("managed-key-happy-path"),
        Artifact::Path(&case("managed-key-happy-path").artifact),
    )
    .unwrap();
    assert!(matches!(key.signer, Signer::Key { .. }));
}

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures")
}

/// sigstore-rs's v0.3 DSSE bundle of a kubewarden image (its subject is the image digest). It
/// carries an RFC 3161 timestamp from timestamp.sigstore.dev, which the public-good root lists.
#[test]
fn kubewarden_image_bundle_verifies_against_the_public_good_root() {
    let bundle = std::fs::read(fixtures().join("signatures/sigstore-rs/bundle_v03.json")).unwrap();
    let root = std::fs::read(sigstore_cases::public_good_root()).unwrap();
    let policy = BlobPolicy::keyless(
        None,
        Some(r"https://github\.com/kubewarden/kubewarden-controller/\.github/workflows/release\.yml@refs/tags/v.*"),
        Some("https://token.actions.githubusercontent.com"),
        None,
    )
    .unwrap();
    let digest = "sha256:c811d58de79c92f03214e63aa339484e488d694ae8a6283b5f3f17a9faf50172";
    let v = verify_blob(
        Artifact::from_argument(digest).unwrap(),
        &bundle,
        &policy,
        &root,
    )
    .unwrap();
    assert_eq!(v.log_entries[0].index, 1261105807);
    assert_eq!(v.log_entries[0].integrated_time, Some(1775719409));
    assert_eq!(
        v.signing_times.len(),
        2,
        "the timestamp and the SET-backed integrated time"
    );
    assert!(matches!(
        &v.content,
        SignedContent::Dsse { predicate_type: Some(p), .. } if p == "https://sigstore.dev/cosign/sign/v1"
    ));

    let other = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    let e = verify_blob(
        Artifact::from_argument(other).unwrap(),
        &bundle,
        &policy,
        &root,
    )
    .unwrap_err();
    assert_eq!(e.kind, FailureKind::DigestMismatch, "{e}");
}

/// The same bundle with sigstore-rs's copy of the public-good root, which lists no timestamp
/// authority: a timestamp that is present must verify, so the bundle is refused.
#[test]
fn a_timestamp_from_an_authority_outside_the_root_refuses_the_bundle() {
    let bundle = std::fs::read(fixtures().join("signatures/sigstore-rs/bundle_v03.json")).unwrap();
    let root = std::fs::read(fixtures().join("signatures/sigstore-rs/trusted_root.json")).unwrap();
    let policy = BlobPolicy::keyless(
        None,
        Some(r"https://github\.com/kubewarden/.*"),
        Some("https://token.actions.githubusercontent.com"),
        None,
    )
    .unwrap();
    let digest = "sha256:c811d58de79c92f03214e63aa339484e488d694ae8a6283b5f3f17a9faf50172";
    let e = verify_blob(
        Artifact::from_argument(digest).unwrap(),
        &bundle,
        &policy,
        &root,
    )
    .unwrap_err();
    assert!(e.kind == FailureKind::UntrustedTimestamp, "{e:?}");
}

/// cosign's own v0.3 attestation bundle (an email identity, GitHub's OAuth issuer).
#[test]
fn cosign_attestation_bundle_verifies_by_subject_digest() {
    let dir = fixtures().join("attestations/cosign-oci-attestation");
    let bundle = std::fs::read(dir.join("oci-attestation.sigstore.json")).unwrap();
    let root = std::fs::read(dir.join("trusted_root_pgi.json")).unwrap();
    let digest = "sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4";
    let policy = BlobPolicy::keyless(
        Some("cody@soyland.com"),
        None,
        Some("https://github.com/login/oauth"),
        None,
    )
    .unwrap();
    let v = verify_blob(
        Artifact::from_argument(digest).unwrap(),
        &bundle,
        &policy,
        &root,
    )
    .unwrap();
    assert_eq!(v.log_entries[0].index, 175508996);
    assert_eq!(v.log_entries[0].integrated_time, Some(1740770291));

    let someone_else = BlobPolicy::keyless(
        Some("someone@soyland.com"),
        None,
        Some("https://github.com/login/oauth"),
        None,
    )
    .unwrap();
    let e = verify_blob(
        Artifact::from_argument(digest).unwrap(),
        &bundle,
        &someone_else,
        &root,
    )
    .unwrap_err();
    assert_eq!(e.kind, FailureKind::Identity);
    assert_eq!(
        e.reason,
        r#"certificate identity "cody@soyland.com" does not match "someone@soyland.com""#
    );
}
