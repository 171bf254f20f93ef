//! The fixture SBOMs of `shared/fixtures/sbom/` with the counts SOURCES.md lists, the malformed
//! ones, and generated hostile documents.

use std::collections::HashSet;

use base64::Engine;
use serde_json::{json, Value};
use time::macros::datetime;

use super::*;

macro_rules! fixture {
    ($path:literal) => {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/", $path)
    };
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn load(path: &str) -> Sbom {
    parse(&read(path), &Limits::default()).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn count(sbom: &Sbom, kind: &str) -> usize {
    sbom.relationships.iter().filter(|r| r.kind == kind).count()
}

fn all_licenses(sbom: &Sbom) -> HashSet<&str> {
    sbom.packages
        .iter()
        .flat_map(|p| p.licenses.iter().map(String::as_str))
        .collect()
}

fn with_checksum(sbom: &Sbom, alg: &str) -> usize {
    sbom.packages
        .iter()
        .filter(|p| p.checksums.iter().any(|c| c.algorithm == alg))
        .count()
}

// --- SPDX fixtures -----------------------------------------------------------------------------

#[test]
fn spdx_apko_curl_has_files_with_sha1_and_sha256_owned_by_packages() {
    let s = load(fixture!(
        "sbom/spdx/apko_chainguard-curl_files-sha1-sha256-sha512.spdx23.json"
    ));
    assert_eq!((s.format, s.spec_version.as_str()), (Format::Spdx, "2.3"));
    assert_eq!(s.created, Some(datetime!(2023-05-30 10:45:35 UTC)));
    assert_eq!(s.tools, ["apko (v0.8.0-53-gfaa1b37)"]);
    assert_eq!(s.authors, ["Chainguard, Inc"]);
    assert_eq!(
        (s.packages.len(), s.files.len(), s.relationships.len()),
        (14, 55, 68)
    );
    assert!(s
        .files
        .iter()
        .all(|f| f.sha1.is_some() && f.sha256.is_some() && f.package.is_some()));
    let licenses = all_licenses(&s);
    for l in ["MIT", "GPL-3.0-or-later", "MPL-2.0 AND MIT"] {
        assert!(licenses.contains(l), "{l} in {licenses:?}");
    }
    assert!(!licenses.contains("NOASSERTION"));
    assert!(s.vulnerabilities.is_empty());
}

#[test]
fn spdx_redhat_ocp_tools_has_3274_packages_and_and_or_licenses() {
    let s = load(fixture!(
        "sbom/spdx/redhat_OCP-TOOLS-4.11-RHEL-8_3274pkgs.spdx23.json"
    ));
    assert_eq!(s.created, Some(datetime!(2024-09-04 11:34:57 UTC)));
    assert_eq!(
        (s.packages.len(), s.files.len(), s.relationships.len()),
        (3274, 0, 3330)
    );
    assert!(s.packages.iter().all(|p| p.checksums.is_empty()));
    let licenses = all_licenses(&s);
    assert!(licenses.contains("LGPL-3.0-or-later OR Apache-2.0"));
    assert!(licenses.iter().any(|l| l.contains(" AND ")));
    assert_eq!(
        s.authors,
        ["Red Hat Product Security (secalert@redhat.com)"]
    );
    // Red Hat writes `PACKAGE_MANAGER` where SPDX says `PACKAGE-MANAGER`; the purl is read anyway.
    assert!(s.packages.iter().filter(|p| p.purl.is_some()).count() > 3000);
    assert!(s
        .packages
        .iter()
        .any(|p| p.supplier.as_deref() == Some("Red Hat")));
}

#[test]
fn spdx_syft_057_alpine_has_75_owned_files_and_only_and_expressions() {
    let s = load(fixture!("sbom/spdx/syft-0.57.0_alpine-latest.spdx22.json"));
    assert_eq!(s.spec_version, "2.2");
    assert_eq!(s.created, Some(datetime!(2022-09-21 14:54:15.500229 UTC)));
    assert_eq!(s.tools, ["syft-0.57.0"]);
    assert_eq!(
        (s.packages.len(), s.files.len(), s.relationships.len()),
        (14, 75, 75)
    );
    assert!(s.packages.iter().all(|p| p.checksums.is_empty()));
    assert!(s
        .files
        .iter()
        .all(|f| f.sha1.is_none() && f.sha256.is_none() && f.package.is_some()));
    let licenses = all_licenses(&s);
    assert!(licenses.iter().any(|l| l.contains(" AND ")));
    assert!(!licenses
        .iter()
        .any(|l| l.contains(" OR ") || l.contains(" WITH ")));
}

#[test]
fn spdx_syft_057_alpine_small_keeps_relationships_to_absent_ids() {
    let s = load(fixture!(
        "sbom/spdx/syft-0.57.0_alpine-small_files-sha256.spdx22.json"
    ));
    assert_eq!(s.created, Some(datetime!(2022-09-24 17:27:55.556104 UTC)));
    assert_eq!(
        (s.packages.len(), s.files.len(), s.relationships.len()),
        (3, 6, 77)
    );
    assert_eq!(s.files.iter().filter(|f| f.sha256.is_some()).count(), 4);
    let known: HashSet<&str> = s
        .packages
        .iter()
        .map(|p| p.id.as_str())
        .chain(["SPDXRef-DOCUMENT"])
        .collect();
    let raw: Value = serde_json::from_slice(&read(fixture!(
        "sbom/spdx/syft-0.57.0_alpine-small_files-sha256.spdx22.json"
    )))
    .expect("fixture is JSON");
    let file_ids: HashSet<&str> = raw["files"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["SPDXID"].as_str())
        .collect();
    let absent: HashSet<&str> = s
        .relationships
        .iter()
        .flat_map(|r| [r.from.as_str(), r.to.as_str()])
        .filter(|id| !known.contains(id) && !file_ids.contains(id))
        .collect();
    assert_eq!(absent.len(), 82);
}

#[test]
fn spdx_syft_065_coredns_has_no_licenses_and_one_self_describing_relationship() {
    let s = load(fixture!("sbom/spdx/syft-0.65.0_coredns-v1.9.3.spdx23.json"));
    assert_eq!(s.created, Some(datetime!(2023-05-17 17:07:54 UTC)));
    assert_eq!(s.packages.len(), 105);
    assert_eq!(with_checksum(&s, "SHA256"), 104);
    assert_eq!(
        s.relationships,
        [Relationship {
            from: "SPDXRef-DOCUMENT".into(),
            kind: "DESCRIBES".into(),
            to: "SPDXRef-DOCUMENT".into()
        }]
    );
    assert!(
        s.packages.iter().all(|p| p.licenses.is_empty()),
        "NONE is not a license"
    );
}

#[test]
fn spdx_syft_090_kubectl_has_1210_files_with_sha1() {
    let s = load(fixture!(
        "sbom/spdx/syft-0.90.0_kubectl-linux-amd64_files-sha1.spdx23.json"
    ));
    assert_eq!(s.created, Some(datetime!(2023-10-12 04:01:49 UTC)));
    assert_eq!(
        (s.packages.len(), s.files.len(), s.relationships.len()),
        (89, 1210, 1382)
    );
    assert!(s
        .files
        .iter()
        .all(|f| f.sha1.is_some() && f.sha256.is_none()));
    // 1205 files are CONTAINed by a package.
    assert_eq!(s.files.iter().filter(|f| f.package.is_some()).count(), 1205);
    assert_eq!(s.tools, ["syft-0.90.0"]);
}

#[test]
fn spdx_trivy_mageia_keeps_and_or_with_and_non_spdx_ids_as_written() {
    let s = load(fixture!("sbom/spdx/trivy-0.42.1_mageia-5.1.spdx23.json"));
    assert_eq!(s.created, Some(datetime!(2023-11-06 12:29:21 UTC)));
    assert_eq!((s.packages.len(), s.relationships.len()), (183, 183));
    assert_eq!(with_checksum(&s, "MD5"), 180);
    let licenses = all_licenses(&s);
    for op in [" AND ", " OR ", " WITH "] {
        assert!(licenses.iter().any(|l| l.contains(op)), "{op}");
    }
    assert!(licenses.contains("LGPLv2"));
}

// --- CycloneDX fixtures ------------------------------------------------------------------------

#[test]
fn cyclonedx_dependency_track_flattens_nested_and_keeps_56_vulnerabilities() {
    let s = load(fixture!(
        "sbom/cyclonedx/dependency-track-4.13.5_nested_56-vulnerabilities.cdx16.json"
    ));
    assert_eq!(
        (s.format, s.spec_version.as_str()),
        (Format::CycloneDx, "1.6")
    );
    assert_eq!(s.created, Some(datetime!(2025-11-11 16:17:24 UTC)));
    assert_eq!(s.packages.len(), 21);
    assert_eq!((count(&s, "DEPENDS_ON"), s.relationships.len()), (25, 25));
    assert_eq!(s.vulnerabilities.len(), 56);
    let distinct: HashSet<&str> = s.vulnerabilities.iter().map(|v| v.id.as_str()).collect();
    assert_eq!(distinct.len(), 32);
    assert_eq!(with_checksum(&s, "SHA1"), 13);
    assert_eq!(
        s.packages.iter().filter(|p| !p.licenses.is_empty()).count(),
        13
    );
    assert!(s
        .vulnerabilities
        .iter()
        .any(|v| v.severity == Severity::Critical));
    assert!(s.vulnerabilities.iter().all(|v| !v.affects.is_empty()));
    assert_eq!(
        s.tools,
        ["Dependency-Track 4.13.5", "Dependency-Track 4.13.5"]
    );
}

#[test]
fn cyclonedx_rpm_manifest_openssl_has_expressions_and_provides() {
    let s = load(fixture!(
        "sbom/cyclonedx/rpm-manifest-generator_openssl-3.0.7_license-expressions.cdx16.json"
    ));
    assert_eq!(s.created, Some(datetime!(2024-12-17 05:38:26.655298 UTC)));
    assert_eq!(s.packages.len(), 37);
    assert_eq!((count(&s, "DEPENDS_ON"), count(&s, "PROVIDES")), (0, 40));
    assert_eq!(all_licenses(&s), HashSet::from(["Apache-2.0"]));
    // SOURCES.md says "SHA-256 on all": on all 36 libraries; the `openssl` application has none.
    assert_eq!(with_checksum(&s, "SHA256"), 36);
    assert_eq!(s.tools, ["rpm-manifest-generator 0.0.1"]);
    assert!(s
        .packages
        .iter()
        .any(|p| p.supplier.as_deref() == Some("Red Hat")));
}

#[test]
fn cyclonedx_sbomer_jboss_file_components_become_files() {
    let s = load(fixture!(
        "sbom/cyclonedx/sbomer_jboss-eap-7.4_file-components-hashes.cdx16.json"
    ));
    assert_eq!(s.created, Some(datetime!(2021-07-21 18:46:07 UTC)));
    assert_eq!((s.packages.len(), s.files.len()), (8, 8));
    assert!(s
        .files
        .iter()
        .all(|f| f.sha1.is_some() && f.sha256.is_some()));
    assert!(s
        .packages
        .iter()
        .all(|p| p.kind.as_deref() == Some("file") && p.checksums.len() == 3));
    assert_eq!(count(&s, "PROVIDES"), 8);
    assert!(all_licenses(&s).is_empty());
}

#[test]
fn cyclonedx_syft_058_alpine_has_15_components_and_7_license_ids() {
    let s = load(fixture!(
        "sbom/cyclonedx/syft-0.58.0_alpine-latest.cdx14.json"
    ));
    assert_eq!(s.spec_version, "1.4");
    assert_eq!(s.created, Some(datetime!(2022-10-07 14:41:07 UTC)));
    assert_eq!(s.packages.len(), 15);
    assert_eq!(
        s.packages
            .iter()
            .filter(|p| p.kind.as_deref() == Some("operating-system"))
            .count(),
        1
    );
    assert!(s.relationships.is_empty());
    assert_eq!(all_licenses(&s).len(), 7);
    assert_eq!(s.tools, ["syft 0.58.0"]);
}

#[test]
fn cyclonedx_syft_058_distroless_has_3_components_and_gpl2() {
    let s = load(fixture!(
        "sbom/cyclonedx/syft-0.58.0_distroless-static-nonroot.cdx14.json"
    ));
    assert_eq!(s.created, Some(datetime!(2022-10-08 14:01:23 UTC)));
    assert_eq!(s.packages.len(), 3);
    assert!(s.relationships.is_empty());
    assert_eq!(all_licenses(&s), HashSet::from(["GPL-2.0-only"]));
}

#[test]
fn cyclonedx_syft_116_openshift_operator_keeps_free_text_license_names() {
    let s = load(fixture!(
        "sbom/cyclonedx/syft-1.16.0_ose-openstack-cinder-csi-driver-operator-amd64.cdx16.json"
    ));
    assert_eq!(s.created, Some(datetime!(2025-02-06 19:19:42 UTC)));
    assert_eq!(s.packages.len(), 348);
    assert_eq!(count(&s, "DEPENDS_ON"), 347);
    // 204 names + 37 ids + 1 expression.
    assert_eq!(
        s.packages.iter().map(|p| p.licenses.len()).sum::<usize>(),
        242
    );
    let licenses = all_licenses(&s);
    assert!(licenses.contains("(GPLv2+ or AFL) and GPLv2+"));
    assert!(licenses.contains("GPL-2.0-or-later AND NIST-PD"));
    assert_eq!(with_checksum(&s, "SHA256"), 1);
}

#[test]
fn cyclonedx_syft_12_rails_has_1368_dependency_edges() {
    let s = load(fixture!("sbom/cyclonedx/syft-1.2.0_rails-5.0.0.cdx15.json"));
    assert_eq!(s.spec_version, "1.5");
    assert_eq!(s.created, Some(datetime!(2024-09-15 05:03:47 UTC)));
    assert_eq!(s.packages.len(), 445);
    assert_eq!(count(&s, "DEPENDS_ON"), 1368);
    let licenses = all_licenses(&s);
    assert!(licenses.contains("MIT"));
}

#[test]
fn cyclonedx_trivy_fluentd_has_3_vulnerabilities_rated_by_their_worst_rating() {
    let s = load(fixture!(
        "sbom/cyclonedx/trivy-dev_fluentd-image_vulnerabilities.cdx17.json"
    ));
    assert_eq!(s.spec_version, "1.7");
    assert_eq!(s.created, Some(datetime!(2021-08-25 12:20:30 UTC)));
    assert_eq!(s.packages.len(), 4);
    assert_eq!(count(&s, "DEPENDS_ON"), 4);
    assert_eq!(all_licenses(&s), HashSet::from(["MIT"]));
    let vulns: Vec<(&str, Severity)> = s
        .vulnerabilities
        .iter()
        .map(|v| (v.id.as_str(), v.severity))
        .collect();
    assert_eq!(
        vulns,
        [
            ("CVE-2019-18224", Severity::Critical),
            ("CVE-2019-18276", Severity::High),
            ("CVE-2020-8165", Severity::Critical)
        ]
    );
    assert_eq!(
        s.vulnerabilities[1].affects,
        ["pkg:deb/debian/bash@5.0-4?distro=debian-10.2"]
    );
}

// --- in-toto predicates --------------------------------------------------------------------------

fn statement_of(dsse_path: &str) -> Value {
    let envelope: Value = serde_json::from_slice(&read(dsse_path)).expect("DSSE is JSON");
    let payload = base64::engine::general_purpose::STANDARD
        .decode(envelope["payload"].as_str().expect("payload"))
        .expect("base64 payload");
    serde_json::from_slice(&payload).expect("statement is JSON")
}

#[test]
fn predicate_object_from_grype_attestation_parses() {
    let statement = statement_of(fixture!("attestations/grype-alpine/alpine.cdx.att.json"));
    assert_eq!(statement["predicateType"], PREDICATE_CYCLONEDX);
    let s = parse_predicate(&statement["predicate"], &Limits::default()).expect("predicate parses");
    assert_eq!((s.format, s.packages.len()), (Format::CycloneDx, 15));
}

#[test]
fn predicate_object_from_trivy_attestation_parses() {
    let statement = statement_of(fixture!(
        "attestations/trivy_centos-7-cyclonedx.intoto.jsonl"
    ));
    let s = parse_predicate(&statement["predicate"], &Limits::default()).expect("predicate parses");
    assert_eq!(s.packages.len(), 3);
    assert_eq!(count(&s, "DEPENDS_ON"), 3);
    assert_eq!(
        s.relationships
            .iter()
            .map(|r| &r.from)
            .collect::<HashSet<_>>()
            .len(),
        2
    );
    assert_eq!(all_licenses(&s), HashSet::from(["GPLv3+", "OpenSSL"]));
}

#[test]
fn predicate_given_as_a_json_string_parses() {
    let document = String::from_utf8(read(fixture!(
        "sbom/spdx/syft-0.65.0_coredns-v1.9.3.spdx23.json"
    )))
    .expect("fixture is UTF-8");
    let s = parse_predicate(&Value::String(document), &Limits::default())
        .expect("string predicate parses");
    assert_eq!((s.format, s.packages.len()), (Format::Spdx, 105));
}

#[test]
fn predicate_that_is_neither_object_nor_string_is_refused() {
    let err = parse_predicate(&json!([1, 2]), &Limits::default()).expect_err("array predicate");
    assert!(err.to_string().contains("predicate"), "{err}");
}

#[test]
fn deep_predicate_value_is_refused_without_recursion() {
    let mut v = json!({});
    for _ in 0..200 {
        v = json!({ "a": v });
    }
    let err = parse_predicate(&v, &Limits::default()).expect_err("too deep");
    assert!(
        matches!(
            err,
            SbomError::Limit {
                what: "JSON nesting depth",
                limit: 64
            }
        ),
        "{err}"
    );
}

#[test]
fn predicate_value_reads_like_its_bytes_every_fixture() {
    // Read from the value in memory, each fixture gives the inventory its bytes give.
    for path in [
        fixture!("sbom/spdx/redhat_OCP-TOOLS-4.11-RHEL-8_3274pkgs.spdx23.json"),
        fixture!("sbom/spdx/apko_chainguard-curl_files-sha1-sha256-sha512.spdx23.json"),
        fixture!("sbom/cyclonedx/dependency-track-4.13.5_nested_56-vulnerabilities.cdx16.json"),
        fixture!("sbom/cyclonedx/sbomer_jboss-eap-7.4_file-components-hashes.cdx16.json"),
    ] {
        let bytes = read(path);
        let value: Value = serde_json::from_slice(&bytes).expect("fixture is JSON");
        let from_bytes = parse(&bytes, &Limits::default()).expect("bytes parse");
        let from_value = parse_predicate(&value, &Limits::default()).expect("value parses");
        assert_eq!(from_value, from_bytes, "{path}");
    }
}

#[test]
fn predicate_value_over_a_count_limit_or_with_a_wrong_type_is_refused() {
    let packages: Vec<Value> = (0..10)
        .map(|i| json!({"SPDXID": format!("SPDXRef-{i}"), "name": format!("p{i}")}))
        .collect();
    let doc = json!({
        "spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT", "name": "n",
        "creationInfo": {"created": "2026-01-01T00:00:00Z", "creators": ["Tool: t"]},
        "packages": packages,
    });
    let limits = Limits {
        max_packages: 9,
        ..Limits::default()
    };
    let err = parse_predicate(&doc, &limits).expect_err("over the package limit");
    assert!(
        matches!(
            err,
            SbomError::Limit {
                what: "packages/components",
                limit: 9
            }
        ),
        "{err}"
    );
    let mut wrong = doc.clone();
    wrong["packages"][3]["versionInfo"] = json!(5);
    let err = parse_predicate(&wrong, &Limits::default()).expect_err("wrong type");
    assert_eq!(
        err.to_string(),
        parse(&serde_json::to_vec(&wrong).unwrap(), &Limits::default())
            .expect_err("wrong type")
            .to_string()
    );
    assert!(err.to_string().contains("packages[3].versionInfo"), "{err}");
}

// --- malformed fixtures --------------------------------------------------------------------------

#[test]
fn utf16_spdx_is_refused_as_utf16() {
    let err = parse(
        &read(fixture!("malformed/SPDXJSONExample-UTF-16.spdx.json")),
        &Limits::default(),
    )
    .expect_err("UTF-16 must not parse");
    assert!(matches!(err, SbomError::Encoding(_)), "{err:?}");
    assert!(err.to_string().contains("UTF-16"), "{err}");
}

#[test]
fn invalid_trivy_spdx_fails_closed_naming_the_missing_field() {
    let err = parse(
        &read(fixture!(
            "malformed/trivy_vmware-log-intelligence-fluentd_invalid.spdx22.json"
        )),
        &Limits::default(),
    )
    .expect_err("invalid SPDX must not parse");
    assert_eq!(
        err.to_string(),
        "SBOM field packages[0].downloadLocation: missing; SPDX requires it"
    );
}

#[test]
fn spdx_relationship_type_outside_the_spec_is_refused() {
    let mut doc = minimal_spdx(1);
    doc["relationships"] = json!([{
        "spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBE", "relatedSpdxElement": "SPDXRef-0"
    }]);
    let err = parse_json(&doc, &Limits::default()).expect_err("DESCRIBE is not a type");
    assert!(
        err.to_string()
            .contains("relationships[0].relationshipType"),
        "{err}"
    );
}

// --- generated hostile documents -----------------------------------------------------------------

fn minimal_spdx(packages: usize) -> Value {
    let packages: Vec<Value> = (0..packages)
        .map(|i| json!({"SPDXID": format!("SPDXRef-{i}"), "name": format!("p{i}"), "downloadLocation": "NOASSERTION"}))
        .collect();
    json!({
        "spdxVersion": "SPDX-2.3",
        "SPDXID": "SPDXRef-DOCUMENT",
        "creationInfo": {"created": "2024-01-01T00:00:00Z", "creators": ["Tool: test"]},
        "packages": packages,
    })
}

fn parse_json(doc: &Value, limits: &Limits) -> Result<Sbom, SbomError> {
    parse(&serde_json::to_vec(doc).expect("serialises"), limits)
}

#[test]
fn minimal_spdx_parses() {
    let s = parse_json(&minimal_spdx(2), &Limits::default()).expect("parses");
    assert_eq!(s.packages.len(), 2);
    assert_eq!(s.tools, ["test"]);
}

#[test]
fn hundred_thousand_deep_arrays_are_refused_at_the_depth_limit() {
    let doc = "[".repeat(100_000);
    let err = parse(doc.as_bytes(), &Limits::default()).expect_err("too deep");
    assert_eq!(
        err,
        SbomError::Limit {
            what: "JSON nesting depth",
            limit: 64
        }
    );
}

#[test]
fn hundred_thousand_deep_objects_inside_an_sbom_are_refused() {
    let mut doc = String::from(r#"{"spdxVersion":"SPDX-2.3","x":"#);
    doc.push_str(&r#"{"a":"#.repeat(100_000));
    doc.push('1');
    doc.push_str(&"}".repeat(100_001));
    let err = parse(doc.as_bytes(), &Limits::default()).expect_err("too deep");
    assert!(
        err.to_string()
            .contains("JSON nesting depth over the limit of 64"),
        "{err}"
    );
}

#[test]
fn brackets_inside_strings_do_not_count_as_depth() {
    let mut doc = minimal_spdx(1);
    doc["comment"] = Value::String("[{\"[".repeat(1000));
    parse_json(&doc, &Limits::default()).expect("strings are not nesting");
}

#[test]
fn package_count_over_the_limit_is_refused_naming_it() {
    let limits = Limits {
        max_packages: 10,
        ..Limits::default()
    };
    parse_json(&minimal_spdx(10), &limits).expect("10 packages fit");
    let err = parse_json(&minimal_spdx(11), &limits).expect_err("11 packages do not");
    assert_eq!(
        err,
        SbomError::Limit {
            what: "packages/components",
            limit: 10
        }
    );
}

#[test]
fn default_package_limit_refuses_200001_empty_packages() {
    let mut doc = String::from(r#"{"spdxVersion":"SPDX-2.3","packages":["#);
    doc.push_str(&"{},".repeat(200_000));
    doc.push_str("{}]}");
    let err = parse(doc.as_bytes(), &Limits::default()).expect_err("over the limit");
    assert_eq!(
        err,
        SbomError::Limit {
            what: "packages/components",
            limit: 200_000
        }
    );
}

#[test]
fn escaped_key_does_not_dodge_the_package_limit() {
    let limits = Limits {
        max_packages: 1,
        ..Limits::default()
    };
    let doc = r#"{"bomFormat":"CycloneDX","specVersion":"1.6","comp\u006fnents":[{"name":"a"},{"name":"b"}]}"#;
    let err = parse(doc.as_bytes(), &limits).expect_err("two components");
    assert_eq!(
        err,
        SbomError::Limit {
            what: "packages/components",
            limit: 1
        }
    );
}

#[test]
fn nested_components_count_and_nest_within_limits() {
    let mut component =
        json!({"name": "leaf", "type": "file", "hashes": [{"alg": "SHA-256", "content": "AB"}]});
    for depth in 0..5 {
        component = json!({"name": format!("level{depth}"), "bom-ref": format!("r{depth}"), "components": [component]});
    }
    let doc = json!({"bomFormat": "CycloneDX", "specVersion": "1.5", "components": [component]});
    let s = parse_json(&doc, &Limits::default()).expect("6 levels fit");
    assert_eq!(s.packages.len(), 6);
    assert_eq!(s.packages[0].name, "level4");
    assert_eq!(s.files.len(), 1);
    assert_eq!(s.files[0].sha256.as_deref(), Some("ab"));
    assert_eq!(s.files[0].package.as_deref(), Some("r0"));
    assert_eq!(
        s.packages[5].id,
        "components[0].components[0].components[0].components[0].components[0].components[0]"
    );

    let limits = Limits {
        max_component_depth: 3,
        ..Limits::default()
    };
    let err = parse_json(&doc, &limits).expect_err("too deeply nested");
    assert_eq!(
        err,
        SbomError::Limit {
            what: "CycloneDX component nesting depth",
            limit: 3
        }
    );
}

#[test]
fn oversized_document_is_refused_before_reading_it() {
    let limits = Limits {
        max_bytes: 100,
        ..Limits::default()
    };
    let err = parse_json(&minimal_spdx(5), &limits).expect_err("too big");
    assert_eq!(
        err,
        SbomError::Limit {
            what: "document size in bytes",
            limit: 100
        }
    );
}

#[test]
fn array_element_budget_bounds_other_arrays() {
    let limits = Limits {
        max_array_elements: 50,
        ..Limits::default()
    };
    let mut doc = minimal_spdx(1);
    doc["packages"][0]["checksums"] = json!(vec![json!({}); 60]);
    let err = parse_json(&doc, &limits).expect_err("too many elements");
    assert!(
        matches!(
            err,
            SbomError::Limit {
                what: "array elements in the document",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn wrong_type_in_spdx_names_the_path() {
    let mut doc = minimal_spdx(13);
    doc["packages"][12]["versionInfo"] = json!(5);
    let err = parse_json(&doc, &Limits::default()).expect_err("wrong type");
    assert_eq!(
        err.to_string(),
        "SBOM field packages[12].versionInfo: expected a string, found integer `5`"
    );
}

#[test]
fn wrong_type_in_nested_cyclonedx_names_the_path() {
    let doc = json!({"bomFormat": "CycloneDX", "specVersion": "1.6", "components": [
        {"name": "a", "components": [{"name": "b"}, {"name": "c", "licenses": [{"license": {"id": ["MIT"]}}]}]}
    ]});
    let err = parse_json(&doc, &Limits::default()).expect_err("wrong type");
    assert!(
        err.to_string().starts_with(
            "SBOM field components[0].components[1].licenses[0].license.id: expected a string"
        ),
        "{err}"
    );
}

#[test]
fn wrong_type_of_a_list_names_the_path() {
    let mut doc = minimal_spdx(1);
    doc["relationships"] = json!({"not": "a list"});
    let err = parse_json(&doc, &Limits::default()).expect_err("wrong type");
    assert!(
        err.to_string()
            .starts_with("SBOM field relationships: expected a sequence"),
        "{err}"
    );
}

#[test]
fn nulls_and_unknown_fields_are_tolerated() {
    let mut doc = minimal_spdx(1);
    doc["packages"][0]["checksums"] = Value::Null;
    doc["packages"][0]["versionInfo"] = Value::Null;
    doc["packages"][0]["somethingNew"] = json!({"deep": [1, 2, {"x": null}]});
    doc["files"] = Value::Null;
    let s = parse_json(&doc, &Limits::default()).expect("lenient");
    assert_eq!(s.packages[0].version, None);
}

#[test]
fn bad_timestamp_is_refused_naming_the_field() {
    let mut doc = minimal_spdx(1);
    doc["creationInfo"]["created"] = json!("yesterday");
    let err = parse_json(&doc, &Limits::default()).expect_err("bad time");
    assert!(err.to_string().contains("creationInfo.created"), "{err}");
}

#[test]
fn encodings_other_than_utf8_are_refused_in_one_line() {
    let limits = Limits::default();
    let cases: [(&[u8], &str); 5] = [
        (b"\xEF\xBB\xBF{}", "UTF-8 byte order mark"),
        (b"\xFE\xFF\x00{", "UTF-16"),
        (b"{\x00\"\x00", "UTF-16 or UTF-32"),
        (b"\xFF\xFE\x00\x00{\x00\x00\x00", "UTF-32"),
        (
            b"{\"spdxVersion\": \"\xC3\x28\"}",
            "invalid UTF-8 at byte 17",
        ),
    ];
    for (bytes, expected) in cases {
        let err = parse(bytes, &limits).expect_err("not UTF-8");
        assert!(matches!(err, SbomError::Encoding(_)), "{err:?}");
        assert!(err.to_string().contains(expected), "{err}");
        assert!(!err.to_string().contains('\n'));
    }
}

#[test]
fn non_json_and_non_sboms_are_refused_clearly() {
    let limits = Limits::default();
    let err = |bytes: &[u8]| parse(bytes, &limits).expect_err("refused").to_string();
    assert!(err(b"").contains("empty"));
    assert!(err(b"<html>").starts_with("SBOM is not valid JSON"));
    assert!(err(b"{\"spdxVersion\": \"SPDX-2.3\"").starts_with("SBOM is not valid JSON"));
    assert!(err(b"[1]").contains("top level is not a JSON object"));
    assert!(err(b"{\"hello\": 1}").contains("neither spdxVersion"));
    assert!(err(b"{\"bomFormat\": \"SPDX\"}").contains("bomFormat"));
    assert!(err(b"{\"spdxVersion\": 2.3}").contains("spdxVersion: expected a string"));
    assert!(
        err(b"{\"spdxVersion\": \"SPDX-3.0\"}").contains("unsupported SPDX version \"SPDX-3.0\"")
    );
    assert!(
        err(b"{\"bomFormat\": \"CycloneDX\", \"specVersion\": \"1.3\"}")
            .contains("unsupported CycloneDX")
    );
    assert!(err(b"{\"bomFormat\": \"CycloneDX\"}").contains("specVersion: missing"));
}

#[test]
fn severity_is_the_worst_rating_and_falls_back_to_the_score() {
    let doc = json!({"bomFormat": "CycloneDX", "specVersion": "1.6", "vulnerabilities": [
        {"id": "A", "ratings": [{"severity": "unknown"}, {"severity": "low"}]},
        {"id": "B", "ratings": [{"score": 9.8}]},
        {"id": "C"},
        {"id": "D", "ratings": [{"severity": "info"}], "analysis": {"state": "not_affected"}}
    ]});
    let s = parse_json(&doc, &Limits::default()).expect("parses");
    let got: Vec<(&str, Severity)> = s
        .vulnerabilities
        .iter()
        .map(|v| (v.id.as_str(), v.severity))
        .collect();
    assert_eq!(
        got,
        [
            ("A", Severity::Low),
            ("B", Severity::Critical),
            ("C", Severity::Unknown),
            ("D", Severity::None)
        ]
    );
    assert_eq!(
        s.vulnerabilities[3].analysis.as_deref(),
        Some("not_affected")
    );
}
