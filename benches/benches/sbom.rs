//! SBOMs: parsing and normalising the largest fixture (3,274 packages, SPDX 2.3) and generated
//! 10,000-package documents (SPDX 2.3, CycloneDX 1.6), and evaluating a Rego policy over them.

// The same allocator as the `vouch` binary, which does this work at container start.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use serde_json::{json, Value};
use vouch_verifier::attestation::{Attestation, Signer, SPDX_PREDICATE};
use vouch_verifier::license::LicensePattern;
use vouch_verifier::rego::{input_document, RegoInput, RegoPolicy};
use vouch_verifier::sbom::{parse, Limits, Sbom, Severity, Vulnerability};
use vouch_verifier::sbom_rule::{evaluate, MinField, PackageMatcher, SbomContext, SbomRequirement};

const LARGEST: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/fixtures/sbom/spdx/redhat_OCP-TOOLS-4.11-RHEL-8_3274pkgs.spdx23.json"
);

const PACKAGES: usize = 10_000;
const FILES_PER_PACKAGE: usize = 2;
const VULNERABILITIES: usize = 200;

/// Three rules of the kind users write: a banned package, a license denylist, unanalysed
/// critical vulnerabilities.
const POLICY: &str = r#"
package vouch
import rego.v1

banned := {"event-stream", "xz-utils-5.6.0", "pkg9999"}
copyleft := {"GPL-3.0-only", "GPL-3.0-or-later", "AGPL-3.0-only", "AGPL-3.0-or-later"}

deny contains msg if {
    some p in input.sbom.packages
    p.name in banned
    msg := sprintf("package %s %s is banned", [p.name, p.version])
}

deny contains msg if {
    some p in input.sbom.packages
    some expression in p.licenses
    some id in split(expression, " ")
    id in copyleft
    msg := sprintf("package %s is licensed %s", [p.name, expression])
}

deny contains msg if {
    some v in input.vulnerabilities
    v.severity == "critical"
    not v.analysis in {"not_affected", "false_positive"}
    msg := sprintf("%s (critical) affects %s", [v.id, concat(", ", v.packages)])
}
"#;

fn license(i: usize) -> &'static str {
    match i % 10 {
        0..=2 => "MIT",
        3..=4 => "MIT OR Apache-2.0",
        5 => "Apache-2.0",
        6 => "BSD-3-Clause",
        7 => "GPL-2.0-only WITH Classpath-exception-2.0",
        8 => "LGPL-2.1-or-later",
        _ => "ISC",
    }
}

fn sha256_of(n: usize) -> String {
    format!("{n:064x}")
}

/// A 10,000-package SPDX 2.3 document: purls, suppliers, licenses, checksums, `hasFiles`,
/// `DEPENDS_ON` relationships and 20,000 files with SHA-256.
fn spdx_document() -> Vec<u8> {
    let packages: Vec<Value> = (0..PACKAGES)
        .map(|i| {
            json!({
                "SPDXID": format!("SPDXRef-Package-{i}"),
                "name": format!("pkg{i}"),
                "versionInfo": format!("1.{i}-1"),
                "supplier": format!("Organization: Debian Maintainer {}", i % 97),
                "downloadLocation": "NOASSERTION",
                "filesAnalyzed": true,
                "licenseConcluded": license(i),
                "licenseDeclared": license(i),
                "primaryPackagePurpose": "LIBRARY",
                "checksums": [
                    { "algorithm": "SHA256", "checksumValue": sha256_of(i) },
                    { "algorithm": "SHA1", "checksumValue": format!("{i:040x}") },
                ],
                "externalRefs": [{
                    "referenceCategory": "PACKAGE-MANAGER",
                    "referenceType": "purl",
                    "referenceLocator": format!("pkg:deb/debian/pkg{i}@1.{i}-1"),
                }],
                "hasFiles": (0..FILES_PER_PACKAGE)
                    .map(|f| format!("SPDXRef-File-{}", i * FILES_PER_PACKAGE + f))
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    let files: Vec<Value> = (0..PACKAGES * FILES_PER_PACKAGE)
        .map(|n| {
            json!({
                "SPDXID": format!("SPDXRef-File-{n}"),
                "fileName": format!("/usr/lib/pkg{}/file{n}.so", n / FILES_PER_PACKAGE),
                "checksums": [{ "algorithm": "SHA256", "checksumValue": sha256_of(n + 1_000_000) }],
                "licenseConcluded": "NOASSERTION",
            })
        })
        .collect();
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": "SPDXRef-Package-0",
    })];
    for i in 1..PACKAGES {
        for dep in [i / 2, i / 3] {
            relationships.push(json!({
                "spdxElementId": format!("SPDXRef-Package-{i}"),
                "relationshipType": "DEPENDS_ON",
                "relatedSpdxElement": format!("SPDXRef-Package-{dep}"),
            }));
        }
    }
    let doc = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": "generated",
        "documentNamespace": "https://example.com/generated",
        "creationInfo": {
            "created": "2026-01-01T00:00:00Z",
            "creators": ["Tool: vouch-benches", "Organization: Example"],
        },
        "packages": packages,
        "files": files,
        "relationships": relationships,
    });
    serde_json::to_vec(&doc).unwrap_or_else(|e| panic!("{e}"))
}

/// The same inventory as CycloneDX 1.6: library components with their files as nested `file`
/// components, `dependsOn`, and 200 vulnerabilities.
fn cyclonedx_document() -> Vec<u8> {
    let components: Vec<Value> = (0..PACKAGES)
        .map(|i| {
            let files: Vec<Value> = (0..FILES_PER_PACKAGE)
                .map(|f| {
                    let n = i * FILES_PER_PACKAGE + f;
                    json!({
                        "type": "file",
                        "bom-ref": format!("file-{n}"),
                        "name": format!("/usr/lib/pkg{i}/file{n}.so"),
                        "hashes": [{ "alg": "SHA-256", "content": sha256_of(n + 1_000_000) }],
                    })
                })
                .collect();
            let licenses = if license(i).contains(' ') {
                json!([{ "expression": license(i) }])
            } else {
                json!([{ "license": { "id": license(i) } }])
            };
            json!({
                "type": "library",
                "bom-ref": format!("pkg:deb/debian/pkg{i}@1.{i}-1"),
                "name": format!("pkg{i}"),
                "version": format!("1.{i}-1"),
                "purl": format!("pkg:deb/debian/pkg{i}@1.{i}-1"),
                "supplier": { "name": format!("Debian Maintainer {}", i % 97) },
                "licenses": licenses,
                "hashes": [
                    { "alg": "SHA-256", "content": sha256_of(i) },
                    { "alg": "SHA-1", "content": format!("{i:040x}") },
                ],
                "components": files,
            })
        })
        .collect();
    let dependencies: Vec<Value> = (1..PACKAGES)
        .map(|i| {
            let depends_on: Vec<String> = [i / 2, i / 3]
                .iter()
                .map(|d| format!("pkg:deb/debian/pkg{d}@1.{d}-1"))
                .collect();
            json!({
                "ref": format!("pkg:deb/debian/pkg{i}@1.{i}-1"),
                "dependsOn": depends_on,
            })
        })
        .collect();
    let vulnerabilities: Vec<Value> = (0..VULNERABILITIES)
        .map(|v| {
            let i = v * (PACKAGES / VULNERABILITIES) + 7;
            let severity = ["low", "medium", "high", "critical"][v % 4];
            let mut entry = json!({
                "bom-ref": format!("vuln-{v}"),
                "id": format!("CVE-2026-{:05}", 10_000 + v),
                "ratings": [{ "severity": severity, "score": 4.0 + (v % 6) as f64, "method": "CVSSv31" }],
                "affects": [{ "ref": format!("pkg:deb/debian/pkg{i}@1.{i}-1") }],
            });
            if v % 8 == 3 {
                entry["analysis"] = json!({ "state": "not_affected" });
            }
            entry
        })
        .collect();
    let doc = json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79",
        "version": 1,
        "metadata": {
            "timestamp": "2026-01-01T00:00:00Z",
            "tools": { "components": [{ "type": "application", "name": "vouch-benches" }] },
            "authors": [{ "name": "Example" }],
        },
        "components": components,
        "dependencies": dependencies,
        "vulnerabilities": vulnerabilities,
    });
    serde_json::to_vec(&doc).unwrap_or_else(|e| panic!("{e}"))
}

fn rego_input<'a>(sbom: &'a Sbom, vulnerabilities: &'a [Vulnerability]) -> RegoInput<'a> {
    RegoInput {
        image_name: "127.0.0.1:5000/app:v1",
        image_digest: "sha256:5f1c0000000000000000000000000000000000000000000000000000000000ab",
        repository: "127.0.0.1:5000/app",
        namespace: Some("prod"),
        pod_name: Some("web-0"),
        sbom: Some(sbom),
        sbom_digest: Some("sha256:cd34"),
        vulnerabilities,
    }
}

fn bench(c: &mut Criterion) {
    let limits = Limits::default();
    let read = |path: &str| std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let parsed = |bytes: &[u8]| parse(bytes, &limits).unwrap_or_else(|e| panic!("{e}"));

    let largest = read(LARGEST);
    c.bench_function("parse SPDX, 3,274 packages", |b| {
        b.iter(|| parsed(black_box(&largest)))
    });

    let spdx = spdx_document();
    let spdx_sbom = parsed(&spdx);
    assert_eq!(spdx_sbom.packages.len(), PACKAGES);
    assert_eq!(spdx_sbom.files.len(), PACKAGES * FILES_PER_PACKAGE);
    c.bench_function("parse SPDX 2.3, 10,000 packages, 20,000 files", |b| {
        b.iter(|| parsed(black_box(&spdx)))
    });

    // The same packages without file entries, as syft writes an image SBOM by default.
    let mut no_files: Value = serde_json::from_slice(&spdx).unwrap_or_else(|e| panic!("{e}"));
    no_files["files"] = json!([]);
    if let Some(packages) = no_files["packages"].as_array_mut() {
        for p in packages {
            if let Some(p) = p.as_object_mut() {
                p.remove("hasFiles");
            }
        }
    }
    let no_files = serde_json::to_vec(&no_files).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(parsed(&no_files).packages.len(), PACKAGES);
    c.bench_function("parse SPDX 2.3, 10,000 packages, no files", |b| {
        b.iter(|| parsed(black_box(&no_files)))
    });

    // The built-in [rule.sbom] checks as the gate runs them: the SPDX document as a verified
    // attestation's predicate, parsed and judged (NTIA fields, licenses, purl ranges, CVEs).
    let requirement = SbomRequirement {
        min_fields: vec![
            MinField::Supplier,
            MinField::Name,
            MinField::Version,
            MinField::Purl,
            MinField::Relationships,
            MinField::Author,
            MinField::Timestamp,
        ],
        deny_licenses: ["GPL-3.0-only", "AGPL-*"]
            .iter()
            .map(|l| LicensePattern::new(l).unwrap_or_else(|e| panic!("{e}")))
            .collect(),
        deny_packages: ["pkg:deb/debian/openssl@<3.0.7", "pkg:npm/event-stream"]
            .iter()
            .map(|m| PackageMatcher::new(m).unwrap_or_else(|e| panic!("{e}")))
            .collect(),
        deny_severity: Some(Severity::Critical),
        deny_cves: vec!["CVE-2021-44228".into()],
        ..SbomRequirement::default()
    };
    let attestations = [Attestation {
        predicate_type: SPDX_PREDICATE.into(),
        predicate: serde_json::from_slice(&spdx).unwrap_or_else(|e| panic!("{e}")),
        digest: "sha256:ab".into(),
        subject_digest: "sha256:cd".into(),
        signer: Signer::Authority("bench".into()),
        origin: "bench".into(),
    }];
    let ctx = SbomContext {
        image_digest: "sha256:cd",
        repository: "127.0.0.1:5000/app",
    };
    let now = time::OffsetDateTime::now_utc();
    let verdict = evaluate(&requirement, &ctx, &attestations, &limits, now);
    assert!(verdict.sbom.is_some(), "{:?}", verdict.failures);
    c.bench_function(
        "[rule.sbom] evaluate (parse + built-in checks), 10,000 packages, 20,000 files",
        |b| b.iter(|| evaluate(&requirement, &ctx, black_box(&attestations), &limits, now)),
    );

    let cyclonedx = cyclonedx_document();
    let cyclonedx_sbom = parsed(&cyclonedx);
    assert_eq!(cyclonedx_sbom.vulnerabilities.len(), VULNERABILITIES);
    assert_eq!(cyclonedx_sbom.files.len(), PACKAGES * FILES_PER_PACKAGE);
    c.bench_function(
        "parse CycloneDX 1.6, 10,000 components, 20,000 files, 200 vulnerabilities",
        |b| b.iter(|| parsed(black_box(&cyclonedx))),
    );

    let policy = RegoPolicy::from_source("bench.rego", POLICY).unwrap_or_else(|e| panic!("{e}"));
    let vulnerabilities = &cyclonedx_sbom.vulnerabilities;
    let via_json = |sbom: &Sbom| {
        let input = input_document(&rego_input(sbom, vulnerabilities));
        policy.deny(&input).unwrap_or_else(|e| panic!("{e}"))
    };
    let direct = |policy: &RegoPolicy, sbom: &Sbom| {
        policy
            .deny_input(&rego_input(sbom, vulnerabilities))
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let denied = direct(&policy, &spdx_sbom);
    // pkg9999; 50 critical vulnerabilities, 25 of them analysed not_affected; no copyleft.
    assert!(denied.contains(&"package pkg9999 1.9999-1 is banned".to_owned()));
    assert_eq!(denied.len(), 1 + 25, "{denied:?}");
    assert_eq!(via_json(&spdx_sbom), denied);

    c.bench_function("rego deny_input, 3 rules, 10,000 packages", |b| {
        b.iter(|| direct(&policy, black_box(&spdx_sbom)))
    });
    c.bench_function(
        "rego input_document + deny, 3 rules, 10,000 packages",
        |b| b.iter(|| via_json(black_box(&spdx_sbom))),
    );
    c.bench_function("rego input_document only, 10,000 packages", |b| {
        b.iter(|| input_document(&rego_input(black_box(&spdx_sbom), vulnerabilities)))
    });
    // The input conversion and the engine's set-up alone: a rule that reads nothing.
    let trivial = "package vouch\nimport rego.v1\ndeny contains \"x\" if false\n";
    let trivial =
        RegoPolicy::from_source("trivial.rego", trivial).unwrap_or_else(|e| panic!("{e}"));
    c.bench_function("rego deny_input, no-op rule, 10,000 packages", |b| {
        b.iter(|| direct(&trivial, black_box(&spdx_sbom)))
    });

    // The fixed cost of an evaluation: cloning the prepared engine, a tiny input.
    c.bench_function("rego deny_input, no-op rule, no SBOM", |b| {
        b.iter(|| {
            let mut input = rego_input(&spdx_sbom, &[]);
            input.sbom = None;
            trivial.deny_input(black_box(&input))
        })
    });

    let largest_sbom = parsed(&largest);
    c.bench_function("rego deny_input, 3 rules, 3,274 packages", |b| {
        b.iter(|| direct(&policy, black_box(&largest_sbom)))
    });
    c.bench_function("rego input_document + deny, 3 rules, 3,274 packages", |b| {
        b.iter(|| via_json(black_box(&largest_sbom)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
