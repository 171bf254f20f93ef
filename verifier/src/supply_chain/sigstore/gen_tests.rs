//! Bundles generated here ([`super::gen`]): the controls verify, and each negative differs from
//! its control in one field and is refused for that field's reason.

use serde_json::Value;

use super::gen::{
    checkpoint, rekor_v1_bundle, rekor_v2_bundle, rekor_v2_bundle_stamped_by, Generated, LogKey,
    Spec, Tsa, World, IDENTITY, ISSUER, SIGNED_AT,
};
use super::{Artifact, BlobError, BlobPolicy, BlobVerified, FailureKind, TrustRoot};

fn policy() -> BlobPolicy {
    BlobPolicy::keyless(Some(IDENTITY), None, Some(ISSUER), None).unwrap()
}

fn verify_as(world: &World, bundle: &Value, artifact: &[u8]) -> Result<BlobVerified, BlobError> {
    let root = TrustRoot::from_json(world.trusted_root().to_string().as_bytes())?;
    root.verify(
        Artifact::Bytes(artifact),
        bundle.to_string().as_bytes(),
        &policy(),
    )
}

fn verify(world: &World, spec: &Spec, generated: &Generated) -> Result<BlobVerified, BlobError> {
    verify_as(world, &generated.bundle, &spec.artifact)
}

/// The refusal's kind must be the one the test isolates; anything else fails the test.
fn refused(result: Result<BlobVerified, BlobError>, kind: FailureKind) -> String {
    match result {
        Ok(v) => panic!("verified, expected a {kind:?} refusal: {}", v.summary()),
        Err(e) => {
            assert_eq!(e.kind, kind, "refused for another reason: {}", e.reason);
            e.reason
        }
    }
}

#[test]
fn a_generated_rekor_v1_bundle_verifies() {
    let world = World::new();
    let spec = Spec::default();
    let v = verify(&world, &spec, &rekor_v1_bundle(&world, &spec)).unwrap();
    assert_eq!(v.signing_times, vec![super::gen::SIGNED_AT]);
    assert_eq!(v.log_entries[0].log, "rekor.test");
    assert_eq!(v.log_entries[0].kind, "hashedrekord/0.0.1");
}

#[test]
fn a_generated_rekor_v2_bundle_with_a_timestamp_verifies() {
    let world = World::new();
    let spec = Spec::default();
    let v = verify(&world, &spec, &rekor_v2_bundle(&world, &spec)).unwrap();
    assert_eq!(v.signing_times, vec![super::gen::SIGNED_AT]);
    assert_eq!(v.log_entries[0].log, "log2.test");
    assert_eq!(v.log_entries[0].kind, "hashedrekord/0.0.2");
}

// --- the signing certificate ---

#[test]
fn another_identity_is_refused_as_identity() {
    let world = World::new();
    let spec = Spec {
        identity: "https://github.com/vouch-test/other/.github/workflows/x.yml@refs/heads/main"
            .to_string(),
        ..Spec::default()
    };
    for generated in [
        rekor_v1_bundle(&world, &spec),
        rekor_v2_bundle(&world, &spec),
    ] {
        refused(verify(&world, &spec, &generated), FailureKind::Identity);
    }
}

#[test]
fn another_issuer_is_refused_as_issuer() {
    let world = World::new();
    let spec = Spec {
        issuer: "https://accounts.google.com".to_string(),
        ..Spec::default()
    };
    for generated in [
        rekor_v1_bundle(&world, &spec),
        rekor_v2_bundle(&world, &spec),
    ] {
        refused(verify(&world, &spec, &generated), FailureKind::Issuer);
    }
}

#[test]
fn a_certificate_expired_at_the_integrated_time_is_refused() {
    let world = World::new();
    let spec = Spec {
        cert_validity: (SIGNED_AT - 600, SIGNED_AT - 60),
        ..Spec::default()
    };
    refused(
        verify(&world, &spec, &rekor_v1_bundle(&world, &spec)),
        FailureKind::CertificateExpired,
    );
}

#[test]
fn a_timestamp_outside_the_certificate_is_refused() {
    let world = World::new();
    for timestamp_time in [SIGNED_AT - 120, SIGNED_AT + 600] {
        let spec = Spec {
            timestamp_time,
            ..Spec::default()
        };
        refused(
            verify(&world, &spec, &rekor_v2_bundle(&world, &spec)),
            FailureKind::CertificateExpired,
        );
    }
}

// --- the log entry ---

fn entry_mut(bundle: &mut Value) -> &mut Value {
    &mut bundle["verificationMaterial"]["tlogEntries"][0]
}

fn edit_base64(value: &mut Value, edit: impl FnOnce(&mut Vec<u8>)) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut bytes = b64.decode(value.as_str().unwrap()).unwrap();
    edit(&mut bytes);
    *value = b64.encode(&bytes).into();
}

#[test]
fn a_set_that_does_not_verify_is_refused() {
    let world = World::new();
    let spec = Spec::default();
    let mut generated = rekor_v1_bundle(&world, &spec);
    // The last byte of the DER signature's s: still DER, no longer the log's signature.
    edit_base64(
        &mut entry_mut(&mut generated.bundle)["inclusionPromise"]["signedEntryTimestamp"],
        |set| *set.last_mut().unwrap() ^= 1,
    );
    refused(verify(&world, &spec, &generated), FailureKind::Set);
}

#[test]
fn an_inclusion_proof_with_a_sibling_hash_flipped_is_refused() {
    let world = World::new();
    let spec = Spec::default();
    for mut generated in [
        rekor_v1_bundle(&world, &spec),
        rekor_v2_bundle(&world, &spec),
    ] {
        edit_base64(
            &mut entry_mut(&mut generated.bundle)["inclusionProof"]["hashes"][1],
            |hash| hash[0] ^= 0x80,
        );
        refused(
            verify(&world, &spec, &generated),
            FailureKind::InclusionProof,
        );
    }
}

fn checkpoint_of(generated: &mut Generated) -> &mut Value {
    &mut entry_mut(&mut generated.bundle)["inclusionProof"]["checkpoint"]["envelope"]
}

fn root_hash_of(generated: &mut Generated) -> Vec<u8> {
    use base64::Engine;
    let root = entry_mut(&mut generated.bundle)["inclusionProof"]["rootHash"].clone();
    base64::engine::general_purpose::STANDARD
        .decode(root.as_str().unwrap())
        .unwrap()
}

#[test]
fn a_checkpoint_signed_by_another_key_is_refused() {
    let world = World::new();
    let spec = Spec::default();
    // Another key carrying the log's key hint, so only the signature tells them apart.
    let forger = LogKey {
        log_id: world.rekor_v2.log_id.clone(),
        ..LogKey::new()
    };
    let mut generated = rekor_v2_bundle(&world, &spec);
    let root = root_hash_of(&mut generated);
    *checkpoint_of(&mut generated) =
        checkpoint(&forger, "log2.test", "log2.test", spec.tree_size, &root).into();
    refused(verify(&world, &spec, &generated), FailureKind::Checkpoint);
}

#[test]
fn a_checkpoint_over_another_root_hash_is_refused() {
    let world = World::new();
    let spec = Spec::default();
    // Signed by the right log over another root than the proof's. sigstore-verify 0.15.1 finds
    // it on two paths: for Rekor v1 the bundle's structural check compares the proof's root
    // with the checkpoint's; for Rekor v2 the proof is recomputed against the checkpoint's root.
    for (mut generated, log, origin, name, kind) in [
        (
            rekor_v1_bundle(&world, &spec),
            &world.rekor_v1,
            "rekor.test - 4242",
            "rekor.test",
            FailureKind::Checkpoint,
        ),
        (
            rekor_v2_bundle(&world, &spec),
            &world.rekor_v2,
            "log2.test",
            "log2.test",
            FailureKind::InclusionProof,
        ),
    ] {
        let mut root = root_hash_of(&mut generated);
        root[31] ^= 1;
        *checkpoint_of(&mut generated) =
            checkpoint(log, origin, name, spec.tree_size, &root).into();
        let reason = refused(verify(&world, &spec, &generated), kind);
        assert!(reason.contains("root hash"), "{reason}");
    }
}

#[test]
fn a_log_index_beyond_the_tree_size_is_refused() {
    let world = World::new();
    let spec = Spec::default();
    let mut generated = rekor_v2_bundle(&world, &spec);
    let entry = entry_mut(&mut generated.bundle);
    let beyond = spec.tree_size.to_string();
    entry["logIndex"] = beyond.clone().into();
    entry["inclusionProof"]["logIndex"] = beyond.into();
    refused(
        verify(&world, &spec, &generated),
        FailureKind::InclusionProof,
    );
}

#[test]
fn a_log_entry_for_another_artifact_is_refused() {
    let world = World::new();
    let spec = Spec {
        logged_artifact: Some(b"another artifact\n".to_vec()),
        ..Spec::default()
    };
    for generated in [
        rekor_v1_bundle(&world, &spec),
        rekor_v2_bundle(&world, &spec),
    ] {
        refused(
            verify(&world, &spec, &generated),
            FailureKind::EntryMismatch,
        );
    }
}

#[test]
fn another_artifact_than_the_bundles_is_refused() {
    let world = World::new();
    let spec = Spec::default();
    for generated in [
        rekor_v1_bundle(&world, &spec),
        rekor_v2_bundle(&world, &spec),
    ] {
        refused(
            verify_as(&world, &generated.bundle, b"another artifact\n"),
            FailureKind::DigestMismatch,
        );
    }
}

// --- the RFC 3161 timestamp ---

#[test]
fn a_timestamp_of_a_tsa_not_in_the_trusted_root_is_refused() {
    let world = World::new();
    let spec = Spec::default();
    let rogue = Tsa::new("rogue tsa");
    let generated = rekor_v2_bundle_stamped_by(&world, &spec, &rogue);
    refused(
        verify(&world, &spec, &generated),
        FailureKind::UntrustedTimestamp,
    );
}

#[test]
fn a_timestamp_outside_the_tsa_window_of_the_trusted_root_is_refused() {
    let spec = Spec::default();
    for window in [
        (SIGNED_AT + 1, None),
        (SIGNED_AT - 3600, Some(SIGNED_AT - 1)),
    ] {
        let world = World {
            tsa_window: window,
            ..World::new()
        };
        refused(
            verify(&world, &spec, &rekor_v2_bundle(&world, &spec)),
            FailureKind::TimestampOutsideValidity,
        );
    }
}

#[test]
fn a_timestamp_outside_the_tsa_certificate_is_refused() {
    let world = World {
        tsa: Tsa::valid("test tsa", (SIGNED_AT - 7200, SIGNED_AT - 3600)),
        ..World::new()
    };
    let spec = Spec::default();
    refused(
        verify(&world, &spec, &rekor_v2_bundle(&world, &spec)),
        FailureKind::TimestampOutsideValidity,
    );
}

#[test]
fn a_timestamp_not_over_this_signature_is_refused() {
    let world = World::new();
    let spec = Spec {
        imprinted: Some(b"another signature".to_vec()),
        ..Spec::default()
    };
    refused(
        verify(&world, &spec, &rekor_v2_bundle(&world, &spec)),
        FailureKind::InvalidTimestamp,
    );
}

// --- the certificate's SCT ---

#[test]
fn an_sct_from_a_ct_log_the_root_does_not_trust_is_refused() {
    use base64::Engine;
    let world = World::new();
    let spec = Spec::default();
    let other = LogKey::new();
    let b64 = base64::engine::general_purpose::STANDARD;
    for generated in [
        rekor_v1_bundle(&world, &spec),
        rekor_v2_bundle(&world, &spec),
    ] {
        // Control: the root of the world that made it.
        verify(&world, &spec, &generated).unwrap();
        // The same root, but its CT log is another.
        let mut root = world.trusted_root();
        root["ctlogs"][0]["publicKey"]["rawBytes"] =
            b64.encode(super::gen::spki_der(&other.key)).into();
        root["ctlogs"][0]["logId"]["keyId"] = b64.encode(&other.log_id).into();
        let root = TrustRoot::from_json(root.to_string().as_bytes()).unwrap();
        refused(
            root.verify(
                Artifact::Bytes(&spec.artifact),
                generated.bundle.to_string().as_bytes(),
                &policy(),
            ),
            FailureKind::Sct,
        );
    }
}

#[test]
fn an_sct_made_before_its_ct_log_was_trusted_is_refused() {
    let world = World::new();
    let spec = Spec::default();
    let generated = rekor_v1_bundle(&world, &spec);
    let mut root = world.trusted_root();
    // The CT log's window starts after the SCT's time (the certificate's notBefore).
    root["ctlogs"][0]["publicKey"]["validFor"]["start"] =
        super::gen::iso(spec.cert_validity.0 + 1).into();
    let root = TrustRoot::from_json(root.to_string().as_bytes()).unwrap();
    refused(
        root.verify(
            Artifact::Bytes(&spec.artifact),
            generated.bundle.to_string().as_bytes(),
            &policy(),
        ),
        FailureKind::Sct,
    );
}
