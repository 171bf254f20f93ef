//! [`evaluate`] over real documents from `shared/fixtures/`.

use std::path::Path;

use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use time::macros::datetime;
use time::OffsetDateTime;

use super::*;
use crate::attestation::{
    Attestation, Signer, CYCLONEDX_PREDICATE, OPENVEX_PREDICATE, SPDX_PREDICATE, VULN_PREDICATE,
};

const DIGEST: &str = "sha256:3c19aa980a9c5709a2c96c2d0779febf6e5e453b92b172ce84cb85fdaf695373";
const NOW: OffsetDateTime = datetime!(2026-11-25 12:00 UTC);

const CURL_SPDX: &str = "sbom/spdx/apko_chainguard-curl_files-sha1-sha256-sha512.spdx23.json";
const ALPINE_CDX: &str = "sbom/cyclonedx/syft-0.58.0_alpine-latest.cdx14.json";
const FLUENTD_CDX: &str = "sbom/cyclonedx/trivy-dev_fluentd-image_vulnerabilities.cdx17.json";
const DTRACK_CDX: &str =
    "sbom/cyclonedx/dependency-track-4.13.5_nested_56-vulnerabilities.cdx16.json";

fn fixture(path: &str) -> Value {
    let full = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures")
        .join(path);
    match std::fs::read(&full) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{path}: {e}")),
        Err(e) => panic!("{}: {e}", full.display()),
    }
}

/// The in-toto statement inside a DSSE envelope.
pub(super) fn dsse_statement(envelope: &Value) -> Value {
    let payload = envelope["payload"].as_str().expect("payload");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(payload)
        .expect("base64 payload");
    serde_json::from_slice(&bytes).expect("statement JSON")
}

fn att(predicate_type: &str, predicate: Value, signer: Option<&str>, origin: &str) -> Attestation {
    Attestation {
        predicate_type: predicate_type.to_string(),
        predicate,
        digest: format!("sha256:{}", hex::encode(Sha256::digest(origin))),
        subject_digest: DIGEST.to_string(),
        signer: match signer {
            Some(who) => Signer::Authority(who.to_string()),
            None => Signer::Unsigned,
        },
        origin: origin.to_string(),
    }
}

fn signed_sbom(path: &str) -> Attestation {
    let kind = if path.contains("/spdx/") {
        SPDX_PREDICATE
    } else {
        CYCLONEDX_PREDICATE
    };
    att(
        kind,
        fixture(path),
        Some("release (key sha256:1a2b3c)"),
        path,
    )
}

fn run(req: &SbomRequirement, attestations: &[Attestation]) -> SbomVerdict {
    let ctx = SbomContext {
        image_digest: DIGEST,
        repository: "registry.example.com/app",
    };
    evaluate(req, &ctx, attestations, &Limits::default(), NOW)
}

fn has(lines: &[String], needle: &str) -> bool {
    lines.iter().any(|l| l.contains(needle))
}

#[test]
fn a_signed_sbom_that_meets_an_empty_requirement_passes_and_is_summarised() {
    let a = signed_sbom(CURL_SPDX);
    let v = run(&SbomRequirement::default(), std::slice::from_ref(&a));
    assert!(v.passed(), "{:?}", v.failures);
    assert_eq!(v.sbom.as_ref().map(|s| s.packages.len()), Some(14));
    assert_eq!(v.sbom_digest.as_deref(), Some(a.digest.as_str()));
    assert!(
        v.summary.starts_with(&format!(
            "spdx 2.3, 14 packages, signed by release (key sha256:1a2b3c), from {CURL_SPDX}"
        )),
        "{}",
        v.summary
    );
    assert!(v.vulnerabilities.is_empty() && v.cleared.is_empty());
}

#[test]
fn denied_licenses_name_license_package_and_pattern() {
    let req = SbomRequirement {
        deny_licenses: vec![
            LicensePattern::new("GPL-3.0-only").unwrap(),
            LicensePattern::new("AGPL-*").unwrap(),
        ],
        ..SbomRequirement::default()
    };
    let v = run(&req, &[signed_sbom(CURL_SPDX)]);
    // GPL-3.0-or-later offers GPL-3.0-only's terms, so a deny of GPL-3.0-only catches it.
    assert_eq!(
        v.failures,
        [
            "license GPL-3.0-or-later of package glibc-locale-posix 2.37-r7 is denied (deny_licenses \"GPL-3.0-only\")",
            "license GPL-3.0-or-later of package ld-linux 2.37-r7 is denied (deny_licenses \"GPL-3.0-only\")",
            "license GPL-3.0-or-later of package glibc 2.37-r6 is denied (deny_licenses \"GPL-3.0-only\")",
            "license GPL-3.0-or-later of package libgcc 13.1.0-r1 is denied (deny_licenses \"GPL-3.0-only\")",
        ]
    );
    assert!(v.sbom.is_some());
}

fn cdx(components: Value) -> Value {
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "metadata": {"timestamp": "2026-11-01T00:00:00Z", "authors": [{"name": "Release team"}]},
        "components": components,
    })
}

fn component(name: &str, version: &str, expression: Option<&str>) -> Value {
    let mut c = json!({
        "type": "library", "bom-ref": name, "name": name, "version": version,
        "purl": format!("pkg:npm/{name}@{version}"),
        "supplier": {"name": "npm"},
    });
    if let Some(e) = expression {
        c["licenses"] = json!([{"expression": e}]);
    }
    c
}

#[test]
fn an_or_offers_a_way_out_of_a_deny_list_and_an_and_does_not() {
    let doc = cdx(json!([
        component("dual", "1.0.0", Some("MIT OR GPL-3.0-only")),
        component("both", "2.0.0", Some("MIT AND GPL-3.0-only")),
        component(
            "gpl-or-agpl",
            "3.0.0",
            Some("GPL-3.0-only OR AGPL-3.0-only")
        ),
        component("none", "4.0.0", None),
        component("unknown-name", "5.0.0", Some("Expat (MIT/X11)")),
    ]));
    let deny = SbomRequirement {
        deny_licenses: vec![
            LicensePattern::new("GPL-*").unwrap(),
            LicensePattern::new("AGPL-*").unwrap(),
        ],
        ..SbomRequirement::default()
    };
    let a = att(CYCLONEDX_PREDICATE, doc, Some("ci"), "inline");
    let v = run(&deny, std::slice::from_ref(&a));
    assert_eq!(
        v.failures,
        [
            "license GPL-3.0-only of package both 2.0.0 is denied (deny_licenses \"GPL-*\")",
            "license GPL-3.0-only OR AGPL-3.0-only of package gpl-or-agpl 3.0.0 is denied (deny_licenses \"GPL-*\", \"AGPL-*\")",
        ]
    );

    let allow = SbomRequirement {
        allow_licenses: vec![LicensePattern::new("MIT").unwrap()],
        ..SbomRequirement::default()
    };
    let v = run(&allow, std::slice::from_ref(&a));
    assert_eq!(
        v.failures,
        [
            "license GPL-3.0-only of package both 2.0.0 is not in allow_licenses",
            "license GPL-3.0-only OR AGPL-3.0-only of package gpl-or-agpl 3.0.0 is not in allow_licenses",
            "package none 4.0.0 states no license (allow_licenses needs one)",
            "license Expat (MIT/X11) of package unknown-name 5.0.0 is not in allow_licenses",
        ]
    );
}

#[test]
fn no_sbom_that_counts_says_what_was_found() {
    let unsigned = att(
        CYCLONEDX_PREDICATE,
        fixture(ALPINE_CDX),
        None,
        "att layer 1",
    );
    let v = run(&SbomRequirement::default(), std::slice::from_ref(&unsigned));
    assert_eq!(
        v.failures,
        [format!(
            "no signed SBOM for {DIGEST}; found: 1 unsigned (allow_unsigned = false)"
        )]
    );
    assert_eq!(v.sbom, None);
    assert_eq!(v.sbom_digest, None);

    let v = run(&SbomRequirement::default(), &[]);
    assert_eq!(
        v.failures,
        [format!("no signed SBOM for {DIGEST}; found: none")]
    );

    // allow_unsigned: the unsigned one counts, and the summary says so.
    let req = SbomRequirement {
        allow_unsigned: true,
        ..SbomRequirement::default()
    };
    let v = run(&req, std::slice::from_ref(&unsigned));
    assert!(v.passed(), "{:?}", v.failures);
    assert!(
        v.summary
            .starts_with("cyclonedx 1.4, 15 packages, unsigned (allow_unsigned), from att layer 1"),
        "{}",
        v.summary
    );

    // Formats the rule does not accept.
    let req = SbomRequirement {
        formats: vec![Format::Spdx],
        ..SbomRequirement::default()
    };
    let v = run(&req, &[signed_sbom(ALPINE_CDX), unsigned.clone()]);
    assert_eq!(
        v.failures,
        [format!(
            "no signed SBOM for {DIGEST}; found: 2 cyclonedx (formats = [\"spdx\"])"
        )]
    );

    // require = false: nothing fails, the summary still says what happened.
    let req = SbomRequirement {
        require: false,
        ..SbomRequirement::default()
    };
    let v = run(&req, std::slice::from_ref(&unsigned));
    assert!(v.passed());
    assert!(v.summary.contains("no signed SBOM for"), "{}", v.summary);
    assert!(v.summary.contains("(require = false)"), "{}", v.summary);
}

#[test]
fn an_unreadable_sbom_fails_only_when_no_other_one_parses() {
    let broken = att(
        SPDX_PREDICATE,
        fixture("malformed/trivy_vmware-log-intelligence-fluentd_invalid.spdx22.json"),
        Some("ci"),
        "broken.att",
    );
    let v = run(&SbomRequirement::default(), std::slice::from_ref(&broken));
    assert_eq!(v.failures.len(), 2, "{:?}", v.failures);
    assert_eq!(
        v.failures[0],
        format!("no signed SBOM for {DIGEST}; found: 1 unreadable")
    );
    assert!(
        v.failures[1].starts_with("SBOM from broken.att could not be read: SBOM field packages"),
        "{}",
        v.failures[1]
    );
    // A JSON string that is not an SBOM at all.
    let junk = att(
        SPDX_PREDICATE,
        json!("{\"hello\": 1}"),
        Some("ci"),
        "junk.att",
    );
    let v = run(&SbomRequirement::default(), std::slice::from_ref(&junk));
    assert!(
        has(
            &v.failures,
            "SBOM from junk.att could not be read: not an SBOM"
        ),
        "{:?}",
        v.failures
    );

    let v = run(
        &SbomRequirement::default(),
        &[broken, signed_sbom(CURL_SPDX)],
    );
    assert!(v.passed(), "{:?}", v.failures);
    assert!(
        v.summary
            .contains("also found: 1 unreadable; SBOM from broken.att could not be read"),
        "{}",
        v.summary
    );
}

#[test]
fn the_newest_sbom_is_evaluated() {
    let older = signed_sbom(ALPINE_CDX); // 2022-10-07
    let newer = signed_sbom(CURL_SPDX); // 2023-05-30
    for list in [
        [older.clone(), newer.clone()],
        [newer.clone(), older.clone()],
    ] {
        let v = run(&SbomRequirement::default(), &list);
        assert_eq!(v.sbom_digest.as_deref(), Some(newer.digest.as_str()));
        assert!(
            v.summary.contains("1 older SBOM not evaluated"),
            "{}",
            v.summary
        );
    }
    // With allow_unsigned, a newer unsigned SBOM does not displace a signed one.
    let mut unsigned_newer = newer.clone();
    unsigned_newer.signer = Signer::Unsigned;
    let req = SbomRequirement {
        allow_unsigned: true,
        ..SbomRequirement::default()
    };
    let v = run(&req, &[older.clone(), unsigned_newer.clone()]);
    assert_eq!(v.sbom_digest.as_deref(), Some(older.digest.as_str()));
    let v = run(&req, &[unsigned_newer.clone()]);
    assert_eq!(
        v.sbom_digest.as_deref(),
        Some(unsigned_newer.digest.as_str())
    );
    // On a tie, the later in the list.
    let mut twin = newer.clone();
    twin.digest = "sha256:twin".into();
    let v = run(&SbomRequirement::default(), &[newer.clone(), twin]);
    assert_eq!(v.sbom_digest.as_deref(), Some("sha256:twin"));
}

#[test]
fn minimum_fields_are_counted_with_an_example() {
    let req = SbomRequirement {
        min_fields: vec![
            MinField::Supplier,
            MinField::Name,
            MinField::Version,
            MinField::Purl,
            MinField::Relationships,
            MinField::Author,
            MinField::Timestamp,
        ],
        ..SbomRequirement::default()
    };
    let v = run(&req, &[signed_sbom(ALPINE_CDX)]);
    assert_eq!(
        v.failures,
        [
            "missing minimum fields: supplier (15 packages, e.g. alpine-baselayout 3.2.0-r22), \
          purl (1 package, e.g. alpine 3.16.2), relationships (the document states none), \
          author (no person or organisation; the tools that wrote it do not count)"
        ]
    );
    // The apko SBOM names an organisation among its creators, and has relationships.
    let v = run(&req, &[signed_sbom(CURL_SPDX)]);
    assert_eq!(
        v.failures,
        ["missing minimum fields: supplier (14 packages, e.g. sha256:47fed8868b46b060efb8699dc40e981a0c785650223e03602d8c4493fc75b68c), \
          version (1 package, e.g. sha256:47fed8868b46b060efb8699dc40e981a0c785650223e03602d8c4493fc75b68c)"]
    );
    let complete = cdx(json!([component("a", "1.0.0", Some("MIT"))]));
    let mut complete_with_deps = complete.clone();
    complete_with_deps["dependencies"] =
        json!([{"ref": "a", "dependsOn": []}, {"ref": "root", "dependsOn": ["a"]}]);
    let v = run(
        &req,
        &[att(
            CYCLONEDX_PREDICATE,
            complete_with_deps,
            Some("ci"),
            "x",
        )],
    );
    assert!(v.passed(), "{:?}", v.failures);
    let mut no_time = complete;
    no_time["metadata"] = json!({"tools": [{"name": "syft"}]});
    let v = run(&req, &[att(CYCLONEDX_PREDICATE, no_time, Some("ci"), "x")]);
    assert!(
        has(&v.failures, "timestamp (no creation time)"),
        "{:?}",
        v.failures
    );
    assert!(has(&v.failures, "author (no person"), "{:?}", v.failures);
}

#[test]
fn denied_packages_are_named_with_the_matcher() {
    let req = SbomRequirement {
        deny_packages: vec![
            PackageMatcher::new("pkg:deb/debian/bash@<5.1").unwrap(),
            PackageMatcher::new("pkg:gem/activesupport@>=6.0,<6.0.3.1").unwrap(),
            PackageMatcher::new("pkg:deb/debian/libidn2-0@<2.0.5-1").unwrap(),
        ],
        ..SbomRequirement::default()
    };
    let v = run(&req, &[signed_sbom(FLUENTD_CDX)]);
    assert_eq!(
        v.failures,
        [
            "package pkg:deb/debian/bash@5.0-4 is denied (deny_packages \"pkg:deb/debian/bash@<5.1\")",
            "package pkg:gem/activesupport@6.0.2.1 is denied (deny_packages \"pkg:gem/activesupport@>=6.0,<6.0.3.1\")",
        ]
    );
    assert!(
        v.summary
            .contains("1 package without a readable purl not checked against deny_packages"),
        "{}",
        v.summary
    );
    // The old syft `pkg:alpine/...` type compares as apk.
    let req = SbomRequirement {
        deny_packages: vec![PackageMatcher::new("pkg:alpine/zlib@<1.2.12-r4").unwrap()],
        ..SbomRequirement::default()
    };
    let v = run(&req, &[signed_sbom(ALPINE_CDX)]);
    assert_eq!(
        v.failures,
        ["package pkg:alpine/zlib@1.2.12-r3 is denied (deny_packages \"pkg:alpine/zlib@<1.2.12-r4\")"]
    );
}

#[test]
fn a_dsse_wrapped_trivy_sbom_is_checked_with_rpm_epochs_from_the_purl() {
    let line = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/fixtures/attestations/trivy_centos-7-cyclonedx.intoto.jsonl"),
    )
    .unwrap();
    let statement = dsse_statement(&serde_json::from_str(line.trim()).unwrap());
    let a = att(
        statement["predicateType"].as_str().unwrap(),
        statement["predicate"].clone(),
        Some("ci"),
        "centos.att",
    );
    let req = SbomRequirement {
        deny_licenses: vec![LicensePattern::new("GPLv3*").unwrap()],
        deny_packages: vec![
            // The purl says `@1.0.2k-16.el7?epoch=1`: epoch 1 is newer than any epoch-0 version.
            PackageMatcher::new("pkg:rpm/centos/openssl-libs@<1.0.2k-19.el7").unwrap(),
            PackageMatcher::new("pkg:rpm/centos/openssl-libs@<1:1.0.2k-19.el7").unwrap(),
        ],
        ..SbomRequirement::default()
    };
    let v = run(&req, &[a]);
    assert_eq!(
        v.failures,
        [
            "license GPLv3+ of package bash 4.2.46-31.el7 is denied (deny_licenses \"GPLv3*\")",
            "package pkg:rpm/centos/openssl-libs@1:1.0.2k-16.el7 is denied (deny_packages \"pkg:rpm/centos/openssl-libs@<1:1.0.2k-19.el7\")",
        ]
    );
}

#[test]
fn sbom_vulnerabilities_fail_by_severity_and_id_unless_cleared() {
    let req = SbomRequirement {
        deny_severity: Some(Severity::Critical),
        deny_cves: vec!["cve-2019-18276".into()],
        ..SbomRequirement::default()
    };
    let v = run(&req, &[signed_sbom(FLUENTD_CDX)]);
    assert_eq!(
        v.failures,
        [
            "CVE-2019-18276 (high) in bash 5.0-4 is denied (deny_cves \"cve-2019-18276\")",
            "CVE-2019-18224 (critical) in libidn2-0 2.0.5-1 is at or above deny_severity \"critical\"",
            "CVE-2020-8165 (critical) in activesupport 6.0.2.1 is at or above deny_severity \"critical\"",
        ]
    );
    assert_eq!(v.vulnerabilities.len(), 3);
    assert_eq!(
        v.vulnerabilities[1].affects,
        ["pkg:deb/debian/bash@5.0-4?distro=debian-10.2"]
    );

    // Signed OpenVEX clears by package purl or by the image; unsigned VEX does not count;
    // ignore clears until its date, and an expired one clears nothing.
    let vex = json!({
        "@context": "https://openvex.dev/ns/v0.2.0",
        "timestamp": "2026-01-01T00:00:00Z",
        "statements": [
            {"vulnerability": {"name": "CVE-2019-18224"}, "status": "not_affected",
             "justification": "vulnerable_code_not_in_execute_path",
             "products": [{"@id": "pkg:deb/debian/libidn2-0@2.0.5-1"}]},
            {"vulnerability": {"name": "CVE-2019-18276"}, "status": "fixed",
             "products": [{"@id": format!("pkg:oci/app@sha256%3A{}", &DIGEST[7..])}]}
        ]
    });
    let unsigned_vex = json!({
        "statements": [{"vulnerability": {"name": "CVE-2020-8165"}, "status": "not_affected"}]
    });
    let req = SbomRequirement {
        ignore: vec![Ignore {
            id: "CVE-2020-8165".into(),
            until: Some(datetime!(2026-01-01 0:00 UTC)),
        }],
        ..req
    };
    let attestations = [
        signed_sbom(FLUENTD_CDX),
        att(OPENVEX_PREDICATE, vex.clone(), Some("security"), "vex.att"),
        att(OPENVEX_PREDICATE, unsigned_vex, None, "unsigned-vex.att"),
    ];
    let v = run(&req, &attestations);
    assert_eq!(
        v.failures,
        ["CVE-2020-8165 (critical) in activesupport 6.0.2.1 is at or above deny_severity \"critical\""]
    );
    assert_eq!(
        v.cleared,
        [
            "CVE-2019-18224 in libidn2-0 2.0.5-1 cleared by OpenVEX not_affected (vulnerable_code_not_in_execute_path; vex.att, signed by security)",
            "CVE-2019-18276 in bash 5.0-4 cleared by OpenVEX fixed (vex.att, signed by security)",
        ]
    );
    assert!(
        v.summary
            .contains("unsigned OpenVEX from unsigned-vex.att ignored"),
        "{}",
        v.summary
    );
    assert!(
        v.summary
            .contains("expired ignore entries clear nothing: CVE-2020-8165 (until 2026-01-01)"),
        "{}",
        v.summary
    );
    assert_eq!(v.vulnerabilities.len(), 1);

    let mut req = req;
    req.ignore[0].until = Some(datetime!(2027-01-01 0:00 UTC));
    let v = run(&req, &attestations);
    assert!(v.passed(), "{:?}", v.failures);
    assert!(v
        .cleared
        .contains(&"CVE-2020-8165 ignored until 2027-01-01".to_string()));
    assert!(v.vulnerabilities.is_empty());

    // A later `affected` statement re-opens what an earlier one cleared.
    let mut reopened = vex;
    reopened["statements"].as_array_mut().unwrap().push(
        json!({"vulnerability": {"name": "CVE-2019-18224"}, "status": "affected",
                     "timestamp": "2026-06-01T00:00:00Z", "products": []}),
    );
    let v = run(
        &req,
        &[
            signed_sbom(FLUENTD_CDX),
            att(OPENVEX_PREDICATE, reopened, Some("security"), "vex.att"),
        ],
    );
    assert_eq!(
        v.failures,
        ["CVE-2019-18224 (critical) in libidn2-0 2.0.5-1 is at or above deny_severity \"critical\""]
    );
}

#[test]
fn dependency_track_analysis_states_clear_and_listings_are_capped() {
    let req = SbomRequirement {
        deny_severity: Some(Severity::Critical),
        ..SbomRequirement::default()
    };
    let v = run(&req, &[signed_sbom(DTRACK_CDX)]);
    assert_eq!(
        v.failures,
        [
            "ALPINE-CVE-2025-49794 (critical) in Final product@1.2.3 is at or above deny_severity \"critical\"",
            "ALPINE-CVE-2025-49796 (critical) in Final product@1.2.3 is at or above deny_severity \"critical\"",
            "CVE-2025-49794 (critical) in Final product@1.2.3 is at or above deny_severity \"critical\"",
            "CVE-2025-49796 (critical) in Final product@1.2.3 is at or above deny_severity \"critical\"",
        ]
    );
    for id in [
        "CVE-2025-9231",
        "CVE-2025-26519",
        "CVE-2017-7507",
        "CVE-2023-7272",
    ] {
        assert!(
            has(&v.cleared, &format!("{id} cleared by the SBOM's analysis")),
            "{:?}",
            v.cleared
        );
    }
    // 56 entries, 24 exact duplicates; 15 entries are cleared by their analysis.
    let distinct: HashSet<&str> = v.vulnerabilities.iter().map(|x| x.id.as_str()).collect();
    assert!(!distinct.contains("CVE-2025-9231"));
    assert!(distinct.contains("CVE-2025-9230"));

    let req = SbomRequirement {
        deny_severity: Some(Severity::High),
        ..req
    };
    let v = run(&req, &[signed_sbom(DTRACK_CDX)]);
    assert_eq!(v.failures.len(), MAX_LISTED + 1, "{:?}", v.failures);
    assert!(v.failures[0].contains("(critical)"), "{:?}", v.failures);
    let last = v.failures.last().unwrap();
    assert!(
        last.starts_with("and ")
            && last.ends_with(" more vulnerabilities at or above deny_severity \"high\""),
        "{last}"
    );
    // 4 critical + 10 high distinct ids in effect: 14, of which 5 are listed.
    assert_eq!(
        last,
        "and 9 more vulnerabilities at or above deny_severity \"high\""
    );
}

#[test]
fn vulnerability_reports_and_vex_apply_without_an_sbom_when_not_required() {
    let trivy = json!({
        "invocation": {"uri": ""},
        "scanner": {"uri": "pkg:github/aquasecurity/trivy", "version": "0.50.1", "result": {
            "SchemaVersion": 2,
            "Results": [{"Target": "trivy", "Vulnerabilities": [
                {"VulnerabilityID": "CVE-2024-26147", "PkgName": "helm.sh/helm/v3",
                 "InstalledVersion": "v3.14.0", "Severity": "HIGH",
                 "PkgIdentifier": {"PURL": "pkg:golang/helm.sh/helm/v3@v3.14.0"}},
                {"VulnerabilityID": "CVE-2021-44228", "PkgName": "log4j-core",
                 "InstalledVersion": "2.14.1", "Severity": "CRITICAL"}
            ]}]
        }}
    });
    let req = SbomRequirement {
        require: false,
        deny_severity: Some(Severity::High),
        ..SbomRequirement::default()
    };
    let vex = att(
        OPENVEX_PREDICATE,
        fixture("attestations/trivy-project.openvex.json"),
        Some("aqua"),
        "trivy.openvex",
    );
    let report = att(VULN_PREDICATE, trivy, Some("ci"), "scan.att");
    let v = run(&req, &[report.clone(), vex.clone()]);
    assert_eq!(
        v.failures,
        ["CVE-2021-44228 (critical) in log4j-core 2.14.1 is at or above deny_severity \"high\""]
    );
    assert_eq!(
        v.cleared,
        ["CVE-2024-26147 in helm.sh/helm/v3 v3.14.0 cleared by OpenVEX not_affected (vulnerable_code_not_in_execute_path; trivy.openvex, signed by aqua)"]
    );
    assert!(
        v.summary
            .contains("trivy 0.50.1 report from scan.att (signed by ci): 2 vulnerabilities"),
        "{}",
        v.summary
    );
    assert_eq!(v.vulnerabilities.len(), 1);
    assert_eq!(v.vulnerabilities[0].affects, ["log4j-core@2.14.1"]);

    // The same VEX unsigned clears nothing.
    let mut unsigned_vex = vex;
    unsigned_vex.signer = Signer::Unsigned;
    let v = run(&req, &[report.clone(), unsigned_vex]);
    assert_eq!(v.failures.len(), 2, "{:?}", v.failures);

    // An unsigned report does not count without allow_unsigned.
    let mut unsigned_report = report;
    unsigned_report.signer = Signer::Unsigned;
    let v = run(&req, std::slice::from_ref(&unsigned_report));
    assert!(v.passed());
    assert!(
        v.summary
            .contains("unsigned vulnerability report from scan.att ignored"),
        "{}",
        v.summary
    );
    let v = run(
        &SbomRequirement {
            allow_unsigned: true,
            ..req.clone()
        },
        &[unsigned_report],
    );
    assert_eq!(v.failures.len(), 2, "{:?}", v.failures);
}

#[test]
fn the_cosign_vuln_fixture_has_no_result_and_is_noted() {
    let statement = dsse_statement(&fixture("attestations/cosign_vuln-predicate.dsse.json"));
    assert_eq!(statement["predicateType"], VULN_PREDICATE);
    let a = att(
        VULN_PREDICATE,
        statement["predicate"].clone(),
        Some("ci"),
        "vuln.att",
    );
    let req = SbomRequirement {
        require: false,
        deny_severity: Some(Severity::Low),
        ..SbomRequirement::default()
    };
    let v = run(&req, &[a]);
    assert!(v.passed());
    assert!(
        v.summary
            .contains("vulnerability report from vuln.att contributes nothing: no scanner result"),
        "{}",
        v.summary
    );
}

#[test]
fn sbom_age_is_checked_against_max_age_days() {
    let req = SbomRequirement {
        max_age_days: Some(90),
        ..SbomRequirement::default()
    };
    let ctx = SbomContext {
        image_digest: DIGEST,
        repository: "r",
    };
    let a = [signed_sbom(CURL_SPDX)]; // created 2023-05-30T10:45:35Z
    let at = |now| evaluate(&req, &ctx, &a, &Limits::default(), now);
    assert!(at(datetime!(2023-08-28 10:00 UTC)).passed());
    assert_eq!(
        at(datetime!(2023-09-27 12:00 UTC)).failures,
        ["SBOM is 120 days old (max_age_days 90)"]
    );
    let mut doc = cdx(json!([]));
    doc["metadata"] = json!({});
    let v = run(&req, &[att(CYCLONEDX_PREDICATE, doc, Some("ci"), "x")]);
    assert_eq!(
        v.failures,
        ["SBOM states no creation time, so its age cannot be checked (max_age_days 90)"]
    );
}

#[test]
fn ten_thousand_packages_evaluate_with_the_expected_failures() {
    let n = 10_000;
    let components: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "type": "library", "bom-ref": format!("c{i}"), "name": format!("pkg{i}"),
                "version": format!("1.{}.{}", i % 97, i % 13),
                "purl": format!("pkg:deb/debian/pkg{i}@1.{}.{}-1", i % 97, i % 13),
                "supplier": {"name": "Debian"},
                "licenses": [{"expression": if i % 2 == 0 { "MIT OR GPL-3.0-only" } else { "Apache-2.0 AND BSD-3-Clause" }}],
            })
        })
        .collect();
    let vulnerabilities: Vec<Value> = (0..n)
        .step_by(2)
        .map(|i| json!({"id": format!("CVE-2026-{i}"), "ratings": [{"severity": "medium"}], "affects": [{"ref": format!("c{i}")}]}))
        .collect();
    let mut doc = cdx(json!(components));
    doc["vulnerabilities"] = json!(vulnerabilities);
    doc["dependencies"] = json!([{"ref": "c0", "dependsOn": ["c1"]}]);
    let req = SbomRequirement {
        min_fields: vec![MinField::Supplier, MinField::Purl, MinField::Relationships],
        deny_licenses: vec![LicensePattern::new("GPL-*").unwrap()],
        deny_packages: vec![
            PackageMatcher::new("pkg:deb/debian/pkg9999@<2").unwrap(),
            PackageMatcher::new("pkg:npm/event-stream").unwrap(),
        ],
        deny_severity: Some(Severity::High),
        deny_cves: vec!["CVE-2026-4242".into()],
        ..SbomRequirement::default()
    };
    let a = [att(CYCLONEDX_PREDICATE, doc, Some("ci"), "big")];
    // Timing is the criterion bench's job (benches/benches/sbom.rs); this checks the result.
    let v = run(&req, &a);
    assert_eq!(
        v.failures,
        [
            "package pkg:deb/debian/pkg9999@1.8.2-1 is denied (deny_packages \"pkg:deb/debian/pkg9999@<2\")",
            "CVE-2026-4242 (medium) in pkg4242 1.71.4 is denied (deny_cves \"CVE-2026-4242\")",
        ]
    );
    assert_eq!(v.vulnerabilities.len(), n / 2);
    let parsed = sbom::parse_predicate(&a[0].predicate, &Limits::default());
    assert_eq!(parsed.map(|s| s.packages.len()).ok(), Some(n));
}

#[test]
fn file_components_are_not_asked_for_supplier_or_purl() {
    let req = SbomRequirement {
        min_fields: vec![MinField::Supplier, MinField::Purl],
        ..SbomRequirement::default()
    };
    let mut with_file = component("a", "1.0.0", Some("MIT"));
    with_file["components"] = json!([{
        "type": "file", "bom-ref": "file:/usr/lib/a.so", "name": "/usr/lib/a.so",
        "hashes": [{"alg": "SHA-256", "content": "00".repeat(32)}],
    }]);
    let doc = cdx(json!([with_file]));
    let v = run(&req, &[att(CYCLONEDX_PREDICATE, doc, Some("ci"), "f")]);
    assert!(v.failures.is_empty(), "{:?}", v.failures);
    // A library component without them still fails.
    let bare = json!({"type": "library", "bom-ref": "b", "name": "b", "version": "1"});
    let doc = cdx(json!([component("a", "1.0.0", Some("MIT")), bare]));
    let v = run(&req, &[att(CYCLONEDX_PREDICATE, doc, Some("ci"), "g")]);
    assert_eq!(
        v.failures,
        ["missing minimum fields: supplier (1 package, e.g. b 1), purl (1 package, e.g. b 1)"]
    );
}

#[test]
fn denied_license_inside_text_that_is_not_an_expression_still_denies() {
    let req = SbomRequirement {
        deny_licenses: vec![LicensePattern::new("GPL-3.0-only").unwrap()],
        ..SbomRequirement::default()
    };
    for text in [
        "GPL-3.0-only AND",
        "(GPL-3.0-only",
        "GPL-3.0-only/MIT",
        "GPL-3.0-only;",
    ] {
        let doc = cdx(json!([component("a", "1.0.0", Some(text))]));
        let v = run(&req, &[att(CYCLONEDX_PREDICATE, doc, Some("ci"), "t")]);
        assert_eq!(v.failures.len(), 1, "{text}: {:?}", v.failures);
        assert!(
            v.failures[0].contains("license GPL-3.0-only (in ")
                && v.failures[0].contains("package a 1.0.0"),
            "{text}: {:?}",
            v.failures
        );
    }
    // Free text naming no denied license passes, as before.
    let doc = cdx(json!([component("a", "1.0.0", Some("Expat (MIT/X11)"))]));
    let v = run(&req, &[att(CYCLONEDX_PREDICATE, doc, Some("ci"), "u")]);
    assert!(v.failures.is_empty(), "{:?}", v.failures);
}
