//! SBOM policy at container start (issue: only images with a signed SBOM that satisfies policy
//! start), end to end: SBOMs attested with `vouch attest` to a real registry, containers started
//! through containerd and the vouch shim, refused or run by the `[rule.sbom]` of a verify rule.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use serde_json::{json, Value};
use vouch_integration::Rig;

/// A package of a test SBOM.
struct Pkg {
    name: &'static str,
    version: &'static str,
    license: &'static str,
    supplier: Option<&'static str>,
}

const fn pkg(name: &'static str, version: &'static str, license: &'static str) -> Pkg {
    Pkg {
        name,
        version,
        license,
        supplier: Some("Debian"),
    }
}

fn purl(p: &Pkg) -> String {
    format!("pkg:deb/debian/{}@{}?arch=amd64", p.name, p.version)
}

fn now_rfc3339() -> String {
    let out = Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .expect("date");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// An SPDX 2.3 document with `packages`, an author, a timestamp and relationships.
fn spdx(packages: &[Pkg]) -> Value {
    let pkgs: Vec<Value> = packages
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut v = json!({
                "SPDXID": format!("SPDXRef-Package-{i}"),
                "name": p.name,
                "versionInfo": p.version,
                "downloadLocation": "NOASSERTION",
                "licenseConcluded": p.license,
                "licenseDeclared": p.license,
                "externalRefs": [{
                    "referenceCategory": "PACKAGE-MANAGER",
                    "referenceType": "purl",
                    "referenceLocator": purl(p),
                }],
            });
            if let Some(s) = p.supplier {
                v["supplier"] = json!(format!("Organization: {s}"));
            }
            v
        })
        .collect();
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": "SPDXRef-Package-0",
    })];
    for i in 1..packages.len() {
        relationships.push(json!({
            "spdxElementId": "SPDXRef-Package-0",
            "relationshipType": "DEPENDS_ON",
            "relatedSpdxElement": format!("SPDXRef-Package-{i}"),
        }));
    }
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": "test-image",
        "documentNamespace": "https://example.com/spdx/test-image",
        "creationInfo": {
            "created": now_rfc3339(),
            "creators": ["Organization: Example Release Team", "Tool: test"],
        },
        "packages": pkgs,
        "relationships": relationships,
    })
}

/// A CycloneDX 1.5 document with `packages` and vulnerabilities `(id, severity, package index)`.
fn cyclonedx(packages: &[Pkg], vulnerabilities: &[(&str, &str, usize)]) -> Value {
    let components: Vec<Value> = packages
        .iter()
        .map(|p| {
            json!({
                "type": "library",
                "bom-ref": purl(p),
                "name": p.name,
                "version": p.version,
                "purl": purl(p),
                "supplier": {"name": p.supplier.unwrap_or("")},
                "licenses": [{"expression": p.license}],
            })
        })
        .collect();
    let vulns: Vec<Value> = vulnerabilities
        .iter()
        .map(|(id, severity, i)| {
            json!({
                "id": id,
                "source": {"name": "NVD"},
                "ratings": [{"severity": severity}],
                "affects": [{"ref": purl(&packages[*i])}],
            })
        })
        .collect();
    let deps: Vec<Value> = packages
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let on: Vec<String> = if i == 0 {
                packages[1..].iter().map(purl).collect()
            } else {
                vec![]
            };
            json!({"ref": purl(p), "dependsOn": on})
        })
        .collect();
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79",
        "version": 1,
        "metadata": {
            "timestamp": now_rfc3339(),
            "authors": [{"name": "Example Release Team"}],
            "tools": {"components": [{"type": "application", "name": "test"}]},
        },
        "components": components,
        "dependencies": deps,
        "vulnerabilities": vulns,
    })
}

const BASE: [Pkg; 3] = [
    pkg("app", "1.0.0", "Apache-2.0"),
    pkg("libc6", "2.36-9+deb12u7", "LGPL-2.1-or-later"),
    pkg("zlib1g", "1:1.2.13.dfsg-1", "Zlib"),
];

/// A test's own world on the shared rig: a namespace, an image signed by `release`, a temp dir.
struct Case {
    rig: std::sync::Arc<Rig>,
    ns: String,
    dir: tempfile::TempDir,
    image: String,
    digest: String,
    key: PathBuf,
    public: PathBuf,
}

impl Case {
    /// Pushes layout tag `layout` as `repo:v1`, pulls it, and signs it with a fresh `release` key.
    fn new(layout: &str, repo: &str) -> Case {
        let rig = shared_rig();
        let ns = rig.namespace();
        let dir = tempfile::tempdir().unwrap();
        rig.push_busybox(layout, &format!("{repo}:v1")).unwrap();
        let image = rig.image(&format!("{repo}:v1"));
        rig.pull(&ns, &image).unwrap();
        let digest = rig.layout_digest(layout).unwrap();
        let (key, public) = keygen(dir.path(), "release");
        let c = Case {
            rig,
            ns,
            dir,
            image,
            digest,
            key,
            public,
        };
        let config = c.config("");
        sign(&config, &c.image, &c.key, &[]);
        c
    }

    /// A policy with one verify rule `sbom` trusting `release`, and `[rule.sbom]` = `sbom`.
    fn policy(&self, sbom: &str) -> String {
        format!(
            "version = 1\ndefault = \"deny\"\n[[rule]]\nname = \"sbom\"\nimages = [\"{}/**\"]\naction = \"verify\"\n[[rule.authority]]\nname = \"release\"\nkey = \"{}\"\n[rule.sbom]\n{sbom}",
            self.rig.registry(),
            self.public.display()
        )
    }

    /// A node config (fresh state dir, so no verdict is cached) for `[rule.sbom]` = `sbom`.
    fn config(&self, sbom: &str) -> PathBuf {
        let n = std::fs::read_dir(self.dir.path())
            .map(|d| d.count())
            .unwrap_or(0);
        write_vouch_config_for(
            &self.rig,
            &self.dir.path().join(format!("vouch-{n}")),
            &self.policy(sbom),
        )
    }

    /// `vouch attest` of `predicate` (written to a file) as `kind` with `key`.
    fn attest_with(&self, predicate: &Value, kind: &str, key: &Path) {
        let n = std::fs::read_dir(self.dir.path())
            .map(|d| d.count())
            .unwrap_or(0);
        let file = self.dir.path().join(format!("predicate-{n}.json"));
        std::fs::write(&file, serde_json::to_vec(predicate).unwrap()).unwrap();
        attest(&self.config(""), &self.image, &file, kind, key);
    }

    fn attest(&self, predicate: &Value, kind: &str) {
        self.attest_with(predicate, kind, &self.key)
    }

    fn run(&self, config: &Path, id: &str) -> Output {
        let cfg = config.display().to_string();
        run_rm(
            &self.rig,
            &self.ns,
            &["--runtime-config-path", &cfg],
            &self.image,
            id,
            &["echo", "ran"],
        )
    }
}

fn assert_runs(out: &Output) {
    assert_eq!(out.status.code(), Some(0), "{}", stderr(out));
    assert_eq!(stdout(out).trim(), "ran");
}

fn assert_refused(out: &Output, reasons: &[&str]) {
    assert!(!out.status.success(), "ran, but should have been refused");
    let err = stderr(out);
    assert!(err.contains("vouch: denied "), "{err}");
    for reason in reasons {
        assert!(err.contains(reason), "expected {reason:?} in {err}");
    }
    assert!(err.contains("(rule \"sbom\")"), "{err}");
}

const STRICT: &str = "require = true\nformats = [\"spdx\", \"cyclonedx\"]\nmin_fields = [\"supplier\", \"name\", \"version\", \"purl\", \"relationships\", \"author\", \"timestamp\"]\ndeny_licenses = [\"GPL-3.0-only\", \"AGPL-*\"]\ndeny_severity = \"critical\"\nmax_age_days = 1\n";

#[test]
fn signed_spdx_sbom_meeting_policy_runs() {
    let c = Case::new("app", "sbom/spdx-ok");
    c.attest(&spdx(&BASE), "spdxjson");
    assert_runs(&c.run(&c.config(STRICT), "spdx-ok"));
    assert_nothing_left(&c.rig, &c.ns);
}

#[test]
fn signed_cyclonedx_sbom_meeting_policy_runs() {
    let c = Case::new("app", "sbom/cdx-ok");
    c.attest(
        &cyclonedx(&BASE, &[("CVE-2024-0001", "medium", 1)]),
        "cyclonedx",
    );
    assert_runs(&c.run(&c.config(STRICT), "cdx-ok"));
    // The format list is honoured: a CycloneDX SBOM does not satisfy an SPDX-only rule.
    let spdx_only = c.config("formats = [\"spdx\"]\n");
    assert_refused(&c.run(&spdx_only, "cdx-not-spdx"), &["SBOM"]);
    assert_nothing_left(&c.rig, &c.ns);
}

#[test]
fn image_without_sbom_is_refused_when_required() {
    let c = Case::new("app", "sbom/none");
    assert_refused(&c.run(&c.config(STRICT), "none"), &["no signed SBOM"]);
    // Not required: the signature alone lets it run.
    assert_runs(&c.run(&c.config("require = false\n"), "not-required"));
    assert_nothing_left(&c.rig, &c.ns);
}

#[test]
fn sbom_signed_by_an_untrusted_key_is_refused() {
    let c = Case::new("app", "sbom/untrusted");
    let (mallory, _) = keygen(c.dir.path(), "mallory");
    c.attest_with(&spdx(&BASE), "spdxjson", &mallory);
    let out = c.run(&c.config(STRICT), "untrusted");
    assert_refused(&out, &["no signed SBOM"]);
    // Not even `allow_unsigned` lets a forged signature through.
    let lax = c.config("allow_unsigned = true\n");
    assert_refused(&c.run(&lax, "untrusted-lax"), &["SBOM"]);
    assert_nothing_left(&c.rig, &c.ns);
}

#[test]
fn sbom_whose_subject_is_another_image_is_refused() {
    let a = Case::new("app", "sbom/subject-a");
    a.attest(&spdx(&BASE), "spdxjson");
    // B: another image (another digest) in its own repository, signed by the same key.
    a.rig.push_busybox("debug", "sbom/subject-b:v1").unwrap();
    let b_image = a.rig.image("sbom/subject-b:v1");
    a.rig.pull(&a.ns, &b_image).unwrap();
    let b_digest = a.rig.layout_digest("debug").unwrap();
    sign(&a.config(""), &b_image, &a.key, &[]);
    let att =
        |repo: &str, d: &str| format!("{repo}:sha256-{}.att", d.trim_start_matches("sha256:"));
    // Copy A's attestation manifest under B's .att tag.
    a.rig
        .push(
            &format!(
                "docker://{}",
                a.rig.image(&att("sbom/subject-a", &a.digest))
            ),
            &att("sbom/subject-b", &b_digest),
        )
        .unwrap();
    let config = a.config(STRICT);
    let cfg = config.display().to_string();
    let out = run_rm(
        &a.rig,
        &a.ns,
        &["--runtime-config-path", &cfg],
        &b_image,
        "other-subject",
        &["echo", "ran"],
    );
    assert_refused(&out, &["no signed SBOM", "is not the image"]);
    assert_runs(&a.run(&config, "own-subject"));
    assert_nothing_left(&a.rig, &a.ns);
}

#[test]
fn denied_license_is_refused_with_license_and_package_named() {
    let policy = "deny_licenses = [\"GPL-3.0-only\", \"AGPL-*\"]\n";
    // Alone.
    let c = Case::new("app", "sbom/license-alone");
    let mut pkgs = BASE;
    pkgs[2] = pkg("bash", "5.2.15-2", "GPL-3.0-only");
    c.attest(&spdx(&pkgs), "spdxjson");
    assert_refused(
        &c.run(&c.config(policy), "alone"),
        &["GPL-3.0-only", "bash"],
    );

    // Inside AND: every part applies, so the denied one denies.
    let c = Case::new("app", "sbom/license-and");
    pkgs[2] = pkg("readline", "8.2-1.3", "MIT AND GPL-3.0-only");
    c.attest(&spdx(&pkgs), "spdxjson");
    assert_refused(
        &c.run(&c.config(policy), "and"),
        &["GPL-3.0-only", "readline"],
    );

    // Inside OR: the MIT alternative can be chosen, so it runs.
    let c = Case::new("app", "sbom/license-or");
    pkgs[2] = pkg("dual", "1.0-1", "MIT OR GPL-3.0-only");
    c.attest(&spdx(&pkgs), "spdxjson");
    assert_runs(&c.run(&c.config(policy), "or"));

    // A wildcard pattern over a WITH expression.
    let c = Case::new("app", "sbom/license-with");
    pkgs[2] = pkg(
        "server",
        "2.0-1",
        "AGPL-3.0-or-later WITH Classpath-exception-2.0",
    );
    c.attest(&spdx(&pkgs), "spdxjson");
    assert_refused(
        &c.run(&c.config(policy), "with"),
        &["AGPL-3.0-or-later", "server"],
    );
    assert_nothing_left(&c.rig, &c.ns);
}

const LOG4SHELL: &str = "CVE-2021-44228";

#[test]
fn critical_cve_is_refused_with_its_id() {
    let c = Case::new("app", "sbom/cve");
    c.attest(
        &cyclonedx(&BASE, &[(LOG4SHELL, "critical", 0)]),
        "cyclonedx",
    );
    assert_refused(
        &c.run(&c.config("deny_severity = \"critical\"\n"), "critical"),
        &[LOG4SHELL, "critical"],
    );
    // Below the threshold, and not listed: runs.
    let c = Case::new("app", "sbom/cve-high");
    c.attest(
        &cyclonedx(&BASE, &[("CVE-2024-0002", "high", 1)]),
        "cyclonedx",
    );
    assert_runs(&c.run(&c.config("deny_severity = \"critical\"\n"), "high"));
    // Listed by id: refused whatever its severity.
    assert_refused(
        &c.run(&c.config("deny_cves = [\"CVE-2024-0002\"]\n"), "listed"),
        &["CVE-2024-0002"],
    );
    assert_nothing_left(&c.rig, &c.ns);
}

fn openvex(digest: &str, cve: &str, status: &str) -> Value {
    json!({
        "@context": "https://openvex.dev/ns/v0.2.0",
        "@id": "https://example.com/vex/1",
        "author": "Example Security Team",
        "timestamp": now_rfc3339(),
        "version": 1,
        "statements": [{
            "vulnerability": {"name": cve},
            "products": [{"@id": format!("pkg:oci/app@{}", digest.replace(':', "%3A"))}],
            "status": status,
            "justification": "vulnerable_code_not_in_execute_path",
        }],
    })
}

#[test]
fn critical_cve_cleared_by_a_signed_openvex_statement_runs() {
    let c = Case::new("app", "sbom/vex");
    c.attest(
        &cyclonedx(&BASE, &[(LOG4SHELL, "critical", 0)]),
        "cyclonedx",
    );
    let policy = c.config("deny_severity = \"critical\"\n");
    assert_refused(&c.run(&policy, "before-vex"), &[LOG4SHELL]);
    c.attest(&openvex(&c.digest, LOG4SHELL, "not_affected"), "openvex");
    assert_runs(&c.run(&c.config("deny_severity = \"critical\"\n"), "after-vex"));

    // A VEX statement signed by an untrusted key clears nothing.
    let u = Case::new("app", "sbom/vex-untrusted");
    u.attest(
        &cyclonedx(&BASE, &[(LOG4SHELL, "critical", 0)]),
        "cyclonedx",
    );
    let (mallory, _) = keygen(u.dir.path(), "mallory");
    u.attest_with(
        &openvex(&u.digest, LOG4SHELL, "not_affected"),
        "openvex",
        &mallory,
    );
    assert_refused(
        &u.run(&u.config("deny_severity = \"critical\"\n"), "forged-vex"),
        &[LOG4SHELL],
    );
    assert_nothing_left(&c.rig, &c.ns);
}

#[test]
fn expired_ignore_entry_no_longer_clears_a_cve() {
    let c = Case::new("app", "sbom/ignore");
    c.attest(
        &cyclonedx(&BASE, &[(LOG4SHELL, "critical", 0)]),
        "cyclonedx",
    );
    let current = c.config(&format!(
        "deny_severity = \"critical\"\nignore = [{{ id = \"{LOG4SHELL}\", until = \"2999-01-01\" }}]\n"
    ));
    assert_runs(&c.run(&current, "ignored"));
    let expired = c.config(&format!(
        "deny_severity = \"critical\"\nignore = [{{ id = \"{LOG4SHELL}\", until = \"2020-01-01\" }}]\n"
    ));
    assert_refused(&c.run(&expired, "expired"), &[LOG4SHELL]);
    assert_nothing_left(&c.rig, &c.ns);
}

#[test]
fn missing_minimum_fields_are_refused_and_named() {
    let c = Case::new("app", "sbom/fields");
    let mut pkgs = BASE;
    pkgs[1].supplier = None;
    let mut doc = spdx(&pkgs);
    // No purl on one package either.
    doc["packages"][2]
        .as_object_mut()
        .unwrap()
        .remove("externalRefs");
    c.attest(&doc, "spdxjson");
    let out = c.run(&c.config(STRICT), "fields");
    assert_refused(&out, &["supplier", "libc6", "purl", "zlib1g"]);
    assert_nothing_left(&c.rig, &c.ns);
}

#[test]
fn rego_rule_denying_a_package_is_refused_with_its_message() {
    let c = Case::new("app", "sbom/rego");
    c.attest(&spdx(&BASE), "spdxjson");
    let rego = c.dir.path().join("sbom.rego");
    std::fs::write(
        &rego,
        "package vouch\n\nimport rego.v1\n\ndeny contains msg if {\n    some p in input.sbom.packages\n    p.name == \"zlib1g\"\n    msg := sprintf(\"package %s is banned from %s\", [p.name, input.image.repository])\n}\n",
    )
    .unwrap();
    let out = c.run(
        &c.config(&format!("rego = \"{}\"\n", rego.display())),
        "rego",
    );
    assert_refused(&out, &["package zlib1g is banned"]);

    // A Rego file that does not compile denies (enforce mode), naming the file.
    let broken = c.dir.path().join("broken.rego");
    std::fs::write(&broken, "package vouch\ndeny contains msg if {\n").unwrap();
    let out = c.run(
        &c.config(&format!("rego = \"{}\"\n", broken.display())),
        "rego-broken",
    );
    assert_refused(&out, &["broken.rego"]);
    assert_nothing_left(&c.rig, &c.ns);
}

#[test]
fn deeply_nested_sbom_is_refused_with_the_limit_named() {
    let c = Case::new("app", "sbom/nested");
    // Valid JSON, nested 100 levels deep inside a package: over the depth limit.
    let mut deep = json!("bottom");
    for _ in 0..100 {
        deep = json!([deep]);
    }
    let mut doc = spdx(&BASE);
    doc["packages"][0]["annotations"] = deep;
    c.attest(&doc, "spdxjson");
    let out = c.run(&c.config("require = true\n"), "nested");
    assert_refused(&out, &["SBOM", "nested deeper than"]);
    assert_nothing_left(&c.rig, &c.ns);
}

/// Builds an image with Debian package metadata (on the rig's busybox layer) as OCI layout tag
/// `pkgs` in a copy of the rig's layout under `dir`, and returns the layout's path.
fn layout_with_packages(rig: &Rig, dir: &Path) -> PathBuf {
    build_layout(
        rig,
        dir,
        "pkgs",
        &[
            (
                "etc/os-release",
                Put::Text("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n"),
            ),
            (
                "var/lib/dpkg/status",
                Put::Text("Package: base-files\nStatus: install ok installed\nMaintainer: Santiago Vila <sanvila@debian.org>\nArchitecture: amd64\nVersion: 12.4+deb12u5\nDescription: Debian base system miscellaneous files\n\nPackage: libfoo1\nStatus: install ok installed\nMaintainer: Example Maintainers <pkg@example.com>\nArchitecture: amd64\nSource: foo\nVersion: 1.2.3-1\nDepends: base-files\nDescription: an example library\n"),
            ),
            ("var/lib/dpkg/info/base-files.list", Put::Text("/etc\n/etc/debian_version\n")),
            ("etc/debian_version", Put::Text("12.5\n")),
            (
                "var/lib/dpkg/info/libfoo1:amd64.list",
                Put::Text("/usr\n/usr/lib\n/usr/lib/libfoo.so.1\n"),
            ),
            ("usr/lib/libfoo.so.1", Put::Text("not really a library\n")),
            (
                "usr/share/doc/libfoo1/copyright",
                Put::Text("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: foo\n\nFiles: *\nCopyright: 2024 Example\nLicense: Expat\n"),
            ),
            (
                "usr/share/doc/base-files/copyright",
                Put::Text("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nCopyright: Debian\nLicense: GPL-2+\n"),
            ),
        ],
    )
}

#[test]
fn sbom_generated_by_vouch_sbom_and_attested_passes_a_strict_policy() {
    let rig = shared_rig();
    let ns = rig.namespace();
    let dir = tempfile::tempdir().unwrap();
    let layout = layout_with_packages(&rig, dir.path());
    rig.push(
        &format!("oci:{}:pkgs", layout.display()),
        "sbom/generated:v1",
    )
    .unwrap();
    let image = rig.image("sbom/generated:v1");
    rig.pull(&ns, &image).unwrap();
    let (key, public) = keygen(dir.path(), "release");

    let sbom = dir.path().join("sbom.spdx.json");
    let out = vouch(&[
        "sbom",
        &layout.display().to_string(),
        "--ref",
        "pkgs",
        "-o",
        "spdx-json",
        "--author",
        "Organization: Example Release Team",
        "--file",
        &sbom.display().to_string(),
    ]);
    assert!(out.status.success(), "vouch sbom: {}", stderr(&out));
    let doc: Value = serde_json::from_slice(&std::fs::read(&sbom).unwrap()).unwrap();
    let names: Vec<&str> = doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(
        names.contains(&"libfoo1") && names.contains(&"base-files"),
        "{names:?}"
    );

    let policy = format!(
        "version = 1\ndefault = \"deny\"\n[[rule]]\nname = \"sbom\"\nimages = [\"{}/**\"]\naction = \"verify\"\n[[rule.authority]]\nname = \"release\"\nkey = \"{}\"\n[rule.sbom]\n{STRICT}",
        rig.registry(),
        public.display()
    );
    let config = write_vouch_config_for(&rig, &dir.path().join("vouch"), &policy);
    sign(&config, &image, &key, &[]);
    attest(&config, &image, &sbom, "spdxjson", &key);
    let cfg = config.display().to_string();
    let out = run_rm(
        &rig,
        &ns,
        &["--runtime-config-path", &cfg],
        &image,
        "generated",
        &["echo", "ran"],
    );
    assert_runs(&out);
    assert_nothing_left(&rig, &ns);
}

#[test]
fn vouch_verify_reports_the_sbom_verdict_with_the_failing_packages() {
    let c = Case::new("app", "sbom/report");
    let mut pkgs = BASE;
    pkgs[2] = pkg("bash", "5.2.15-2", "GPL-3.0-only");
    c.attest(
        &cyclonedx(&pkgs, &[(LOG4SHELL, "critical", 1)]),
        "cyclonedx",
    );
    let config = c.config("deny_licenses = [\"GPL-*\"]\ndeny_severity = \"critical\"\n");
    let out = vouch(&[
        "--config",
        &config.display().to_string(),
        "verify",
        &c.image,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = format!("{}{}", stdout(&out), stderr(&out));
    for needle in ["bash", "GPL-3.0-only", LOG4SHELL, "libc6"] {
        assert!(text.contains(needle), "expected {needle:?} in {text}");
    }
    let out = vouch(&[
        "--config",
        &config.display().to_string(),
        "--output",
        "json",
        "verify",
        &c.image,
    ]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("json verdict");
    assert_eq!(v["verdict"], json!("deny"), "{v}");
}
