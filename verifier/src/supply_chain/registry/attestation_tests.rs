//! Attestation discovery against the in-memory registry: every kind of material, what is skipped
//! and why, the budget, and a registry that is down.

use std::time::SystemTime;

use base64::Engine;

use super::test_registry::{fixture, identity, key_rule as rule, TestRegistry};
use super::{tag_schema_tag, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST};
use crate::attestation::Signer;
use crate::cosign_key::SigningKey;

#[test]
fn discovery_finds_sboms_buildkit_and_bundles_and_skips_what_it_cannot_use() {
    let reg = TestRegistry::start();
    let client = reg.client();
    let repo = reg.repo("team/multi");
    let platform = reg.put_image("team/multi", "p", "linux-amd64");
    let hex_of = |d: &str| d.trim_start_matches("sha256:").to_string();

    // A BuildKit attestation manifest for the platform manifest.
    let trivy: serde_json::Value = serde_json::from_slice(
        fixture("attestations/trivy_centos-7-cyclonedx.intoto.jsonl").trim_ascii_end(),
    )
    .unwrap();
    let statement = base64::engine::general_purpose::STANDARD
        .decode(trivy["payload"].as_str().unwrap())
        .unwrap();
    let statement = String::from_utf8(statement)
        .unwrap()
        .replace(
            "be65f488b7764ad3638f236b7b515b3678369a5124c47b8d32916d6487418ea4",
            &hex_of(&platform),
        )
        .into_bytes();
    let statement_digest = reg.put_blob(&statement);
    let provenance = reg.put_blob(b"{}");
    let att_manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"{OCI_CONFIG}","digest":"{provenance}","size":2}},"layers":[{{"mediaType":"application/vnd.in-toto+json","digest":"{statement_digest}","size":{},"annotations":{{"in-toto.io/predicate-type":"https://cyclonedx.org/bom"}}}},{{"mediaType":"application/vnd.in-toto+json","digest":"{provenance}","size":2,"annotations":{{"in-toto.io/predicate-type":"https://slsa.dev/provenance/v0.2"}}}}]}}"#,
        statement.len()
    );
    let att_digest = reg.put_manifest("team/multi", None, OCI_MANIFEST, att_manifest.as_bytes());
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{platform}","size":1,"platform":{{"os":"linux","architecture":"amd64"}}}},{{"mediaType":"{OCI_MANIFEST}","digest":"{att_digest}","size":{},"annotations":{{"vnd.docker.reference.type":"attestation-manifest","vnd.docker.reference.digest":"{platform}"}}}}]}}"#,
        att_manifest.len()
    );
    let index_digest = reg.put_manifest("team/multi", Some("v1"), OCI_INDEX, index.as_bytes());

    // `cosign attach sbom` on the index: one usable SBOM, one XML, one too large.
    let sbom = fixture("sbom/cyclonedx/syft-0.58.0_alpine-latest.cdx14.json");
    let sbom_digest = reg.put_blob(&sbom);
    let sbom_manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"{OCI_CONFIG}","digest":"{provenance}","size":2}},"layers":[{{"mediaType":"application/vnd.cyclonedx+json","digest":"{sbom_digest}","size":{}}},{{"mediaType":"application/vnd.cyclonedx+xml","digest":"{sbom_digest}","size":1}},{{"mediaType":"text/spdx+json","digest":"{sbom_digest}","size":999999999}}]}}"#,
        sbom.len()
    );
    reg.put_manifest(
        "team/multi",
        Some(&tag_schema_tag(&index_digest, ".sbom").unwrap()),
        OCI_MANIFEST,
        sbom_manifest.as_bytes(),
    );

    // A signature bundle referrer (left to signature discovery) and a provenance one (skipped
    // without fetching: its manifest does not exist).
    let referrers = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{provenance}","size":2,"artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json","annotations":{{"dev.sigstore.bundle.predicateType":"https://sigstore.dev/cosign/sign/v1"}}}},{{"mediaType":"{OCI_MANIFEST}","digest":"{provenance}","size":2,"artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json","annotations":{{"dev.sigstore.bundle.predicateType":"https://slsa.dev/provenance/v1"}}}}]}}"#
    );
    reg.put_manifest(
        "team/multi",
        Some(&tag_schema_tag(&index_digest, "").unwrap()),
        OCI_INDEX,
        referrers.as_bytes(),
    );

    let found = client
        .discover_attestations(&repo, &[&index_digest, &platform], None)
        .unwrap();
    assert_eq!(found.material.len(), 2, "{:?}", found.skipped);
    assert_eq!(found.skipped.len(), 4, "{:?}", found.skipped);
    assert!(found
        .skipped
        .iter()
        .any(|s| s.contains("slsa.dev/provenance/v1") && s.contains("not fetched")));
    assert!(found.skipped.iter().any(|s| s.contains("cyclonedx+xml")));
    assert!(found
        .skipped
        .iter()
        .any(|s| s.contains("exceeds the attestation layer size bound")));
    assert!(found
        .skipped
        .iter()
        .any(|s| s.contains("slsa.dev/provenance/v0.2")));

    // Verified: both unsigned; the BuildKit one counts only with the platform manifest accepted.
    let dir = tempfile::tempdir().unwrap();
    let v = rule(dir.path(), &SigningKey::generate_p256().unwrap(), None);
    let image = identity(&repo, &index_digest);
    let report = crate::verify::attestations(
        &v,
        &image,
        std::slice::from_ref(&platform),
        &client,
        SystemTime::now(),
    )
    .unwrap();
    assert_eq!(report.attestations.len(), 2, "{:?}", report.rejected);
    assert!(report
        .attestations
        .iter()
        .all(|a| a.signer == Signer::Unsigned));
    assert_eq!(report.attestations[1].subject_digest, platform);
    let report = crate::verify::attestations(&v, &image, &[], &client, SystemTime::now()).unwrap();
    assert_eq!(report.attestations.len(), 1, "{:?}", report.rejected);
    // A rule without allow_unsigned does not read unsigned material at all, and says so.
    let report = crate::verify::attestations_with(
        &v,
        &image,
        std::slice::from_ref(&platform),
        &client,
        SystemTime::now(),
        false,
    )
    .unwrap();
    assert!(report.attestations.is_empty(), "{:?}", report.attestations);
    assert_eq!(
        report
            .rejected
            .iter()
            .filter(|r| r.contains("unsigned, and the rule does not set allow_unsigned"))
            .count(),
        2,
        "{:?}",
        report.rejected
    );

    // The budget: one piece at most.
    let small = reg.client().with_limits(crate::registry::Limits {
        max_attestations: 1,
        ..Default::default()
    });
    let found = small
        .discover_attestations(&repo, &[&index_digest, &platform], None)
        .unwrap();
    // One fetch (newest first: it may be one that is unusable), then the budget is spent.
    assert!(found.material.len() <= 1, "{:?}", found.material);
    assert!(
        found
            .skipped
            .iter()
            .any(|s| s.contains("more than 1 attestations")),
        "{:?}",
        found.skipped
    );

    // A registry that is down is an error, not "no attestations".
    reg.set_down(true);
    let e = crate::verify::attestations(&v, &image, &[], &client, SystemTime::now()).unwrap_err();
    assert!(e.is_unreachable(), "{e}");
}

#[test]
fn att_layers_that_cannot_be_used_are_skipped_with_reasons() {
    let reg = TestRegistry::start();
    let client = reg.client();
    let repo = reg.repo("team/app");
    let digest = reg.put_image("team/app", "v1", "app");
    let good = fixture("attestations/grype-alpine/alpine.cdx.att.json");
    let good_digest = reg.put_blob(&good);
    // A blob whose content is not what its digest says.
    let lying = super::sha256_digest(b"what the manifest promised");
    reg.store
        .lock()
        .unwrap()
        .blobs
        .insert(lying.clone(), b"something else".to_vec());
    let layer = |media_type: &str, digest: &str, size: usize, annotations: &str| {
        format!(
            r#"{{"mediaType":"{media_type}","digest":"{digest}","size":{size},"annotations":{{{annotations}}}}}"#
        )
    };
    let dsse = "application/vnd.dsse.envelope.v1+json";
    let layers = [
        layer(
            dsse,
            &good_digest,
            good.len(),
            r#""predicateType":"https://cyclonedx.org/bom""#,
        ),
        layer(
            "application/vnd.dev.cosign.simplesigning.v1+json",
            &good_digest,
            good.len(),
            "",
        ),
        layer(
            dsse,
            &good_digest,
            good.len(),
            r#""predicateType":"https://slsa.dev/provenance/v0.2""#,
        ),
        layer(
            dsse,
            &good_digest,
            good.len(),
            r#""dev.sigstore.cosign/certificate":"not a PEM""#,
        ),
        layer(dsse, &lying, 14, ""),
        layer(dsse, &good_digest, good.len() + 1, ""),
    ]
    .join(",");
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"{OCI_CONFIG}","digest":"{good_digest}","size":1}},"layers":[{layers}]}}"#
    );
    reg.put_manifest(
        "team/app",
        Some(&tag_schema_tag(&digest, ".att").unwrap()),
        OCI_MANIFEST,
        manifest.as_bytes(),
    );
    let found = client
        .discover_attestations(&repo, &[&digest], None)
        .unwrap();
    assert_eq!(found.material.len(), 1, "{:?}", found.skipped);
    let want = [
        "layer 1: media type \"application/vnd.dev.cosign.simplesigning.v1+json\" is not application/vnd.dsse.envelope.v1+json",
        "layer 2: predicate type \"https://slsa.dev/provenance/v0.2\" is not one policy reads",
        "layer 3: dev.sigstore.cosign/certificate is not a PEM certificate",
        "layer 4: blob",
        "layer 5: blob has",
    ];
    assert_eq!(found.skipped.len(), want.len(), "{:?}", found.skipped);
    // Layers are read newest (last) first.
    let skipped: Vec<&String> = found.skipped.iter().rev().collect();
    for (got, want) in skipped.iter().zip(want) {
        assert!(got.contains(want), "{got:?} should say {want:?}");
    }
    assert!(
        skipped[3].contains("digest mismatch"),
        "{:?}",
        found.skipped
    );

    // The one usable layer is not signed by this rule's key: rejected, and the skipped ones are
    // named beside it.
    let dir = tempfile::tempdir().unwrap();
    let v = rule(dir.path(), &SigningKey::generate_p256().unwrap(), None);
    let report = crate::verify::attestations(
        &v,
        &identity(&repo, &digest),
        &[],
        &client,
        SystemTime::now(),
    )
    .unwrap();
    assert!(report.attestations.is_empty());
    assert_eq!(report.rejected.len(), 6, "{:?}", report.rejected);
    assert!(report.rejected[0].contains("does not verify with authority \"release\""));
    // Garbage subjects are the caller's error.
    assert!(client
        .discover_attestations(&repo, &["latest"], None)
        .is_err());
}

#[test]
fn bundle_referrers_without_a_predicate_hint_are_fetched_and_verified() {
    use crate::policy::{Keyless, Match, Trust};
    const ATT_DIGEST: &str =
        "sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4";
    let reg = TestRegistry::start();
    let client = reg.client();
    let repo = reg.repo("repo");
    let bundle = fixture("attestations/cosign-oci-attestation/oci-attestation.sigstore.json");
    let bundle_digest = reg.put_blob(&bundle);
    let empty = reg.put_blob(b"{}");
    let bundle_type = "application/vnd.dev.sigstore.bundle.v0.3+json";
    let referrer = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","artifactType":"{bundle_type}","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{empty}","size":2}},"layers":[{{"mediaType":"{bundle_type}","digest":"{bundle_digest}","size":{}}}],"subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{ATT_DIGEST}","size":1}}}}"#,
        bundle.len()
    );
    let referrer_digest = reg.put_manifest("repo", None, OCI_MANIFEST, referrer.as_bytes());
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{referrer_digest}","size":{},"artifactType":"{bundle_type}"}}]}}"#,
        referrer.len()
    );
    reg.put_manifest(
        "repo",
        Some(&tag_schema_tag(ATT_DIGEST, "").unwrap()),
        OCI_INDEX,
        index.as_bytes(),
    );

    let found = client
        .discover_attestations(&repo, &[ATT_DIGEST], None)
        .unwrap();
    assert_eq!(found.material.len(), 1, "{:?}", found.skipped);
    // The image itself is not in this registry: said so, not an error.
    assert_eq!(found.skipped.len(), 1, "{:?}", found.skipped);
    assert!(
        found.skipped[0].starts_with("image index: "),
        "{:?}",
        found.skipped
    );

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("trusted_root.json");
    std::fs::write(
        &root,
        fixture("attestations/cosign-oci-attestation/trusted_root_pgi.json"),
    )
    .unwrap();
    let mut v = rule(dir.path(), &SigningKey::generate_p256().unwrap(), None);
    v.authorities[0].name = "cody".into();
    v.authorities[0].trust = Trust::Keyless(Keyless {
        trusted_root: root,
        issuer: Match::Exact("https://github.com/login/oauth".into()),
        subject: Match::Exact("cody@soyland.com".into()),
        witnesses: Vec::new(),
        witness_quorum: 0,
    });
    let image = identity(&repo, ATT_DIGEST);
    let report = crate::verify::attestations(&v, &image, &[], &client, SystemTime::now()).unwrap();
    assert!(report.attestations.is_empty());
    // It verified (keyless, at its Rekor time) and then its predicate was found to be cosign's
    // custom one, which SBOM policy does not read.
    assert!(
        report.rejected[0]
            .contains("\"https://cosign.sigstore.dev/attestation/v1\" is not one policy reads"),
        "{:?}",
        report.rejected
    );
    // Outside the authority's validity window (it ended before the Rekor time, 2025-02-28), the
    // same bundle does not count, for that reason.
    v.authorities[0].valid_until = Some(time::macros::datetime!(2025-01-01 0:00 UTC));
    let report = crate::verify::attestations(&v, &image, &[], &client, SystemTime::now()).unwrap();
    assert!(
        report.rejected[0].contains("authority \"cody\" expired at"),
        "{:?}",
        report.rejected
    );
}
