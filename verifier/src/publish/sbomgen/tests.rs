//! Fake root filesystems and OCI layouts built in temporary directories, each reader's findings,
//! the hostile cases (symlinks out of the tree, `..` and absolute paths in layers, whiteouts),
//! and both documents read back with vouch's own SBOM parser.

use std::fs;
use std::io::Write;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::rootfs::Kind;
use super::*;
use crate::sbom::{self, Format};

fn write(root: &Path, rel: &str, contents: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, contents).unwrap();
}

fn symlink(root: &Path, rel: &str, target: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(target, path).unwrap();
}

fn options(format: OutputFormat) -> Options {
    Options {
        format,
        authors: vec![
            Author::parse("Organization: Acme").unwrap(),
            Author::parse("Person: Jane Doe").unwrap(),
        ],
        created: Some(
            time::OffsetDateTime::parse(
                "2026-01-02T03:04:05.678+01:00",
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap(),
        ),
        selector: oci::Selector::default(),
        limits: Limits::default(),
    }
}

const STATUS: &str = "\
Package: libc6
Status: install ok installed
Priority: optional
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u4
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Description: GNU C Library: Shared libraries
 Contains the standard libraries.

Package: bash
Status: install ok installed
Architecture: amd64
Version: 5.2.15-2+b2
Maintainer: Matthias Klose <doko@debian.org>
Pre-Depends: libc6 (>= 2.36), libtinfo6 (>= 6)
Depends: base-files (>= 2.1.12), debianutils (>= 5.6-0.1) | libc-bin
Provides: sh

Package: oldpkg
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0
Maintainer: Someone <s@example.org>
";

const BASH_COPYRIGHT: &str = "\
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: bash

Files: *
Copyright: Free Software Foundation
License: GPL-3+

Files: lib/readline/*
Copyright: FSF
License: GPL-3+ or BSD-3-clause

License: GPL-3+
 The full text.
";

const METADATA: &str = "\
Metadata-Version: 2.1
Name: Requests
Version: 2.31.0
Summary: Python HTTP for Humans.
Author: Kenneth Reitz
Author-email: me@kennethreitz.org
License: Apache 2.0
Classifier: License :: OSI Approved :: Apache Software License
Requires-Dist: urllib3 (<3,>=1.21.1)
Requires-Dist: PySocks (!=1.5.7,>=1.5.6) ; extra == 'socks'

Requests is an elegant and simple HTTP library.
License: not a header
";

/// A Debian-style tree (merged /usr) with dpkg, Python and npm packages.
fn debian_tree(root: &Path) {
    write(
        root,
        "usr/lib/os-release",
        "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n",
    );
    symlink(root, "etc/os-release", "../usr/lib/os-release");
    symlink(root, "bin", "usr/bin");
    symlink(root, "lib", "usr/lib");
    write(root, "usr/bin/bash", "#!bash binary");
    write(root, "usr/lib/x86_64-linux-gnu/libc.so.6", "libc");
    symlink(root, "usr/bin/sh", "bash");
    write(root, "var/lib/dpkg/status", STATUS);
    write(
        root,
        "var/lib/dpkg/info/bash.list",
        "/.\n/bin\n/bin/bash\n/bin/sh\n/usr/share/doc/bash/copyright\n",
    );
    write(
        root,
        "var/lib/dpkg/info/libc6:amd64.list",
        "/lib/x86_64-linux-gnu/libc.so.6\n/lib/missing.so\n",
    );
    write(root, "var/lib/dpkg/info/oldpkg.list", "/etc/oldpkg.conf\n");
    write(root, "usr/share/doc/bash/copyright", BASH_COPYRIGHT);
    write(
        root,
        "usr/share/doc/libc6/copyright",
        "This is the Debian prepackaged version of glibc.\nGPL.\n",
    );
    let site = "usr/lib/python3.11/site-packages";
    write(
        root,
        &format!("{site}/requests-2.31.0.dist-info/METADATA"),
        METADATA,
    );
    write(
        root,
        &format!("{site}/requests-2.31.0.dist-info/RECORD"),
        "requests/__init__.py,sha256=abc,10\n\"requests/a,b.py\",,\n../../../bin/requests-cli,,\nrequests-2.31.0.dist-info/RECORD,,\n",
    );
    write(
        root,
        &format!("{site}/requests/__init__.py"),
        "import urllib3\n",
    );
    write(root, &format!("{site}/requests/a,b.py"), "# comma\n");
    write(root, "usr/bin/requests-cli", "#!python\n");
    write(
        root,
        &format!("{site}/urllib3-2.0.7.dist-info/METADATA"),
        "Metadata-Version: 2.3\nName: urllib3\nVersion: 2.0.7\nLicense-Expression: MIT\nAuthor-email: Andrey Petrov <andrey.petrov@shazow.net>\n",
    );
    write(
        root,
        &format!("{site}/six-1.16.0.egg-info/PKG-INFO"),
        "Metadata-Version: 1.2\nName: six\nVersion: 1.16.0\nAuthor: Benjamin Peterson\nLicense: MIT\n",
    );
    write(
        root,
        "app/node_modules/lodash/package.json",
        r#"{"name": "lodash", "version": "4.17.21", "license": "MIT", "author": "John-David Dalton <john.david.dalton@gmail.com> (http://allyoucanleet.com/)", "dependencies": {"@types/node": "^20"}}"#,
    );
    write(
        root,
        "app/node_modules/@types/node/package.json",
        r#"{"name": "@types/node", "version": "20.1.0", "license": {"type": "MIT", "url": "x"}, "author": {"name": "Microsoft Corp."}}"#,
    );
    write(
        root,
        "app/package.json",
        r#"{"name": "app", "version": "1.0.0"}"#,
    );
    write(
        root,
        "app/node_modules/lodash/lib/package.json",
        r#"{"name": "not-a-package", "version": "0"}"#,
    );
}

fn find<'a>(inv: &'a Inventory, ecosystem: Ecosystem, name: &str) -> &'a Package {
    inv.packages
        .iter()
        .find(|p| p.ecosystem == ecosystem && p.name == name)
        .unwrap_or_else(|| panic!("no {ecosystem} package {name}"))
}

fn index_of(inv: &Inventory, ecosystem: Ecosystem, name: &str) -> usize {
    inv.packages
        .iter()
        .position(|p| p.ecosystem == ecosystem && p.name == name)
        .unwrap()
}

#[test]
fn dpkg_reads_installed_packages_files_and_dep5_licenses() {
    let dir = tempfile::tempdir().unwrap();
    debian_tree(dir.path());
    let inv = scan(dir.path(), &options(OutputFormat::SpdxJson)).unwrap();
    assert_eq!(inv.distro.id.as_deref(), Some("debian"));
    let dpkg: Vec<&str> = inv
        .packages
        .iter()
        .filter(|p| p.ecosystem == Ecosystem::Dpkg)
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(dpkg, ["bash", "libc6"], "oldpkg is not installed");

    let libc = find(&inv, Ecosystem::Dpkg, "libc6");
    assert_eq!(
        libc.purl,
        "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64"
    );
    assert_eq!(
        libc.supplier,
        Some(Supplier::Organization(
            "GNU Libc Maintainers (debian-glibc@lists.debian.org)".into()
        ))
    );
    assert_eq!(libc.source.as_deref(), Some("glibc"));
    assert_eq!(libc.license, None, "not a machine-readable copyright file");
    // `/lib/...` is the tree's usr/lib through the merged-/usr symlink.
    assert_eq!(libc.files, ["usr/lib/x86_64-linux-gnu/libc.so.6"]);

    let bash = find(&inv, Ecosystem::Dpkg, "bash");
    assert_eq!(
        bash.license.as_deref(),
        Some("GPL-3.0-or-later AND (GPL-3.0-or-later OR BSD-3-Clause)")
    );
    // The symlink /bin/sh is not a regular file: not listed as a file.
    assert_eq!(bash.files, ["usr/bin/bash", "usr/share/doc/bash/copyright"]);
    assert_eq!(
        bash.depends_on,
        [index_of(&inv, Ecosystem::Dpkg, "libc6")],
        "only installed dependencies"
    );
}

#[test]
fn python_and_npm_packages_with_licenses_suppliers_files_and_dependencies() {
    let dir = tempfile::tempdir().unwrap();
    debian_tree(dir.path());
    let inv = scan(dir.path(), &options(OutputFormat::SpdxJson)).unwrap();

    let requests = find(&inv, Ecosystem::Python, "requests");
    assert_eq!(requests.purl, "pkg:pypi/requests@2.31.0");
    assert_eq!(requests.license.as_deref(), Some("Apache-2.0"));
    assert_eq!(
        requests.supplier,
        Some(Supplier::Person("Kenneth Reitz".into()))
    );
    let site = "usr/lib/python3.11/site-packages";
    assert_eq!(
        requests.files,
        [
            "usr/bin/requests-cli".to_owned(),
            format!("{site}/requests-2.31.0.dist-info/RECORD"),
            format!("{site}/requests/__init__.py"),
            format!("{site}/requests/a,b.py"),
        ]
    );
    assert_eq!(
        requests.depends_on,
        [index_of(&inv, Ecosystem::Python, "urllib3")],
        "the `extra` requirement is not a dependency"
    );
    let urllib3 = find(&inv, Ecosystem::Python, "urllib3");
    assert_eq!(urllib3.license.as_deref(), Some("MIT"));
    assert_eq!(
        urllib3.supplier,
        Some(Supplier::Person(
            "Andrey Petrov (andrey.petrov@shazow.net)".into()
        ))
    );
    let six = find(&inv, Ecosystem::Python, "six");
    assert_eq!(six.purl, "pkg:pypi/six@1.16.0");

    let npm: Vec<&str> = inv
        .packages
        .iter()
        .filter(|p| p.ecosystem == Ecosystem::Npm)
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(npm, ["@types/node", "lodash"]);
    let types = find(&inv, Ecosystem::Npm, "@types/node");
    assert_eq!(types.purl, "pkg:npm/%40types/node@20.1.0");
    assert_eq!(types.license.as_deref(), Some("MIT"));
    assert_eq!(
        types.supplier,
        Some(Supplier::Person("Microsoft Corp.".into()))
    );
    let lodash = find(&inv, Ecosystem::Npm, "lodash");
    assert_eq!(lodash.purl, "pkg:npm/lodash@4.17.21");
    assert_eq!(
        lodash.supplier,
        Some(Supplier::Person(
            "John-David Dalton (john.david.dalton@gmail.com)".into()
        ))
    );
    assert_eq!(
        lodash.depends_on,
        [index_of(&inv, Ecosystem::Npm, "@types/node")]
    );
}

#[test]
fn apk_reads_packages_provides_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "etc/os-release", "ID=alpine\nVERSION_ID=3.19.1\n");
    write(root, "lib/ld-musl-x86_64.so.1", "musl");
    write(root, "bin/busybox", "busybox");
    symlink(root, "bin/sh", "/bin/busybox");
    write(
        root,
        "lib/apk/db/installed",
        "\
C:Q1abc=
P:musl
V:1.2.4_git20230717-r4
A:x86_64
L:MIT
o:musl
m:Timo Teräs <timo.teras@iki.fi>
p:so:libc.musl-x86_64.so.1=1
F:lib
R:ld-musl-x86_64.so.1
Z:Q1xyz=

P:busybox
V:1.36.1-r15
A:x86_64
L:GPL-2.0-only
m:Sören Tempel <soeren+alpine@soeren-tempel.net>
D:so:libc.musl-x86_64.so.1 !busybox-extras missing>=1
F:bin
R:busybox
R:sh
",
    );
    let inv = scan(root, &options(OutputFormat::SpdxJson)).unwrap();
    assert_eq!(inv.packages.len(), 2);
    let busybox = find(&inv, Ecosystem::Apk, "busybox");
    assert_eq!(
        busybox.purl,
        "pkg:apk/alpine/busybox@1.36.1-r15?arch=x86_64"
    );
    assert_eq!(busybox.license.as_deref(), Some("GPL-2.0-only"));
    assert_eq!(busybox.files, ["bin/busybox"]);
    assert_eq!(busybox.depends_on, [index_of(&inv, Ecosystem::Apk, "musl")]);
    let musl = find(&inv, Ecosystem::Apk, "musl");
    assert_eq!(musl.files, ["lib/ld-musl-x86_64.so.1"]);
    assert_eq!(musl.source.as_deref(), Some("musl"));
    assert_eq!(
        musl.supplier,
        Some(Supplier::Organization(
            "Timo Teräs (timo.teras@iki.fi)".into()
        ))
    );
}

#[test]
fn distroless_status_d_needs_no_status_field() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        "var/lib/dpkg/status.d/base-files",
        "Package: base-files\nVersion: 12.4+deb12u5\nArchitecture: amd64\nMaintainer: Santiago Vila <sanvila@debian.org>\n",
    );
    write(
        root,
        "var/lib/dpkg/status.d/base-files.md5sums",
        "d41d8cd98f00b204e9800998ecf8427e  etc/debian_version\n",
    );
    write(root, "etc/debian_version", "12.5\n");
    let inv = scan(root, &options(OutputFormat::SpdxJson)).unwrap();
    assert_eq!(inv.packages.len(), 1);
    assert_eq!(
        inv.packages[0].purl,
        "pkg:deb/debian/base-files@12.4%2Bdeb12u5?arch=amd64"
    );
    assert_eq!(inv.packages[0].files, ["etc/debian_version"]);
}

#[test]
fn a_database_that_is_a_symlink_out_of_the_tree_is_not_read() {
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "status", STATUS);
    write(outside.path(), "os-release", "ID=evil\n");
    write(outside.path(), "installed", "P:evil\nV:1\n");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let abs = |name: &str| outside.path().join(name).to_str().unwrap().to_owned();
    symlink(root, "var/lib/dpkg/status", &abs("status"));
    symlink(root, "etc/os-release", &abs("os-release"));
    symlink(
        root,
        "lib/apk/db/installed",
        "../../../../../../../../../../".to_owned().as_str(),
    );
    symlink(root, "lib/apk/db/installed2", &abs("installed"));
    symlink(
        root,
        "usr/lib/python3/site-packages/x.dist-info",
        outside.path().to_str().unwrap(),
    );
    symlink(root, "outside", outside.path().to_str().unwrap());
    let inv = scan(root, &options(OutputFormat::SpdxJson)).unwrap();
    assert!(inv.packages.is_empty(), "{:?}", inv.packages);
    assert_eq!(inv.distro, Distro::default());
    assert_eq!(inv.tree.file_count(), 0, "nothing outside was walked");
    assert!(matches!(
        inv.tree.get("var/lib/dpkg/status").map(|e| &e.kind),
        Some(Kind::Symlink(t)) if *t == abs("status")
    ));
}

#[test]
fn symlinks_resolve_inside_the_tree() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "etc/passwd", "root:x:0:0\n");
    symlink(root, "a", "/etc");
    symlink(root, "b", "../../../../etc");
    symlink(root, "loop1", "loop2");
    symlink(root, "loop2", "loop1");
    let tree = Tree::from_dir(root, Limits::default()).unwrap();
    assert_eq!(
        tree.resolve("a/passwd", true).as_deref(),
        Some("etc/passwd")
    );
    assert_eq!(
        tree.resolve("b/passwd", true).as_deref(),
        Some("etc/passwd")
    );
    assert_eq!(tree.resolve("/../../a", false).as_deref(), Some("a"));
    assert_eq!(tree.resolve("loop1/x", true), None);
}

#[test]
fn files_are_opened_beneath_the_root_without_following_symlinks() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "real/f", "inside");
    symlink(root, "swapped", "real");
    symlink(root, "out", "/etc");
    let root_dir = fs::File::open(root).unwrap();
    let Some(opened) = rootfs::open_beneath(&root_dir, Path::new("real/f")) else {
        return; // no openat2 here: the O_NOFOLLOW fallback is all there is
    };
    let mut text = String::new();
    std::io::Read::read_to_string(&mut opened.unwrap(), &mut text).unwrap();
    assert_eq!(text, "inside");
    for path in ["swapped/f", "out/passwd", "../etc/passwd", "/etc/passwd"] {
        let err = rootfs::open_beneath(&root_dir, Path::new(path))
            .unwrap()
            .unwrap_err();
        assert!(
            matches!(
                err.raw_os_error(),
                Some(nix::libc::ELOOP | nix::libc::EXDEV)
            ),
            "{path}: {err}"
        );
    }
}

#[test]
fn the_entry_limit_is_enforced() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..20 {
        write(dir.path(), &format!("d/f{i}"), "x");
    }
    let limits = Limits {
        max_entries: 10,
        ..Limits::default()
    };
    let err = Tree::from_dir(dir.path(), limits).unwrap_err();
    assert!(
        matches!(err, SbomGenError::Limit { limit: 10, .. }),
        "{err}"
    );
}

#[test]
fn files_are_hashed_with_sha256_and_sha1() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "abc", "abc");
    let big: String = "0123456789abcdef".repeat(10_000);
    write(dir.path(), "big", &big);
    let tree = Tree::from_dir(dir.path(), Limits::default()).unwrap();
    let files: Vec<_> = tree.files().collect();
    assert_eq!(files.len(), 2);
    assert_eq!(files[0].path, "abc");
    assert_eq!(
        hex::encode(files[0].sha256),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        hex::encode(files[0].sha1),
        "a9993e364706816aba3e25717850c26c9cd0d89d"
    );
    assert_eq!(files[1].size, big.len() as u64);
    assert_eq!(
        files[1].sha256,
        &<[u8; 32]>::from(Sha256::digest(big.as_bytes()))
    );
}

// --- documents, read back -----------------------------------------------------------------------

fn check_packages(parsed: &sbom::Sbom, inv: &Inventory) {
    for p in &inv.packages {
        let found = parsed
            .packages
            .iter()
            .find(|q| q.purl.as_deref() == Some(p.purl.as_str()))
            .unwrap_or_else(|| panic!("{} missing", p.purl));
        assert_eq!(found.name, p.name);
        assert_eq!(found.version.as_deref(), Some(p.version.as_str()));
        assert_eq!(
            found.supplier.as_deref(),
            p.supplier.as_ref().map(Supplier::name),
            "{}",
            p.purl
        );
        assert_eq!(
            found.licenses,
            p.license.iter().cloned().collect::<Vec<_>>(),
            "{}",
            p.purl
        );
    }
}

#[test]
fn spdx_document_round_trips_through_vouchs_parser() {
    let dir = tempfile::tempdir().unwrap();
    debian_tree(dir.path());
    let opts = options(OutputFormat::SpdxJson);
    let inv = scan(dir.path(), &opts).unwrap();
    let generated = render(&inv, &opts).unwrap();
    let parsed = sbom::parse(&generated.document, &sbom::Limits::default()).unwrap();
    assert_eq!(parsed.format, Format::Spdx);
    assert_eq!(parsed.spec_version, "2.3");
    assert_eq!(
        parsed.created.map(|t| t.unix_timestamp()),
        Some(1_767_319_445),
        "02:04:05 UTC, second precision"
    );
    assert_eq!(parsed.tools, ["vouch-0.1.0"]);
    assert_eq!(parsed.authors, ["Acme", "Jane Doe"]);
    // 2 dpkg + 3 python + 2 npm, the root and the OS.
    assert_eq!(inv.packages.len(), 7);
    assert_eq!(parsed.packages.len(), 9);
    check_packages(&parsed, &inv);
    assert_eq!(parsed.files.len(), inv.tree.file_count());
    assert!(parsed.files.iter().all(|f| f.path.starts_with("./")
        && f.sha1.as_ref().is_some_and(|s| s.len() == 40)
        && f.sha256.as_ref().is_some_and(|s| s.len() == 64)));
    let bash_id = &parsed
        .packages
        .iter()
        .find(|p| p.name == "bash")
        .unwrap()
        .id;
    let bash_file = parsed
        .files
        .iter()
        .find(|f| f.path == "./usr/bin/bash")
        .unwrap();
    assert_eq!(bash_file.package.as_ref(), Some(bash_id));
    assert!(parsed
        .files
        .iter()
        .find(|f| f.path == "./app/package.json")
        .unwrap()
        .package
        .is_none());
    let count = |kind: &str| {
        parsed
            .relationships
            .iter()
            .filter(|r| r.kind == kind)
            .count()
    };
    assert_eq!(count("DESCRIBES"), 1);
    // bash → libc6, requests → urllib3, lodash → @types/node.
    assert_eq!(count("DEPENDS_ON"), 3);
    let owned: usize = inv.packages.iter().map(|p| p.files.len()).sum();
    assert_eq!(count("CONTAINS"), 1 + inv.packages.len() + owned);
    let text = String::from_utf8(generated.document.clone()).unwrap();
    assert!(text.contains(&format!(
        "\"documentNamespace\":\"https://vouch.dev/spdx/{}-",
        dir.path().file_name().unwrap().to_string_lossy()
    )));
    assert_eq!(
        generated.summary.to_string(),
        format!(
            "7 packages (dpkg 2, python 3, npm 2), {} files",
            inv.tree.file_count()
        )
    );
    // Deterministic apart from the timestamp, which --created fixed.
    assert_eq!(
        generate(dir.path(), &opts).unwrap().document,
        generated.document
    );
}

#[test]
fn cyclonedx_document_round_trips_through_vouchs_parser() {
    let dir = tempfile::tempdir().unwrap();
    debian_tree(dir.path());
    let opts = options(OutputFormat::CycloneDxJson);
    let inv = scan(dir.path(), &opts).unwrap();
    let generated = render(&inv, &opts).unwrap();
    let parsed = sbom::parse(&generated.document, &sbom::Limits::default()).unwrap();
    assert_eq!(parsed.format, Format::CycloneDx);
    assert_eq!(parsed.spec_version, "1.5");
    assert_eq!(parsed.tools, ["vouch 0.1.0"]);
    assert_eq!(parsed.authors, ["Acme", "Jane Doe"]);
    check_packages(&parsed, &inv);
    let files = inv.tree.file_count();
    // Packages, the OS, and the file components.
    assert_eq!(parsed.packages.len(), inv.packages.len() + 1 + files);
    assert_eq!(parsed.files.len(), files);
    let bash = inv.packages.iter().find(|p| p.name == "bash").unwrap();
    let bash_file = parsed
        .files
        .iter()
        .find(|f| f.path == "/usr/bin/bash")
        .unwrap();
    assert_eq!(bash_file.package.as_deref(), Some(bash.purl.as_str()));
    assert_eq!(
        parsed
            .relationships
            .iter()
            .filter(|r| r.kind == "DEPENDS_ON")
            .count(),
        3
    );
    let value: serde_json::Value = serde_json::from_slice(&generated.document).unwrap();
    assert!(value["serialNumber"]
        .as_str()
        .unwrap()
        .starts_with("urn:uuid:"));
    assert_eq!(value["metadata"]["component"]["type"], "application");
    let libc = value["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "bash")
        .unwrap();
    assert_eq!(
        libc["licenses"][0]["expression"],
        "GPL-3.0-or-later AND (GPL-3.0-or-later OR BSD-3-Clause)"
    );
    let lodash = value["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "lodash")
        .unwrap();
    assert_eq!(lodash["licenses"][0]["license"]["id"], "MIT");
}

// --- OCI layouts ---------------------------------------------------------------------------------

/// A tar entry with its name written as given, `..` and leading `/` included.
enum Item<'a> {
    File(&'a str, &'a str),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    HardLink(&'a str, &'a str),
    Fifo(&'a str),
}

fn tar_of(items: &[Item<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for item in items {
        let mut header = tar::Header::new_gnu();
        let (name, data, kind, link): (&str, &[u8], tar::EntryType, Option<&str>) = match item {
            Item::File(n, d) => (n, d.as_bytes(), tar::EntryType::Regular, None),
            Item::Dir(n) => (n, b"", tar::EntryType::Directory, None),
            Item::Symlink(n, t) => (n, b"", tar::EntryType::Symlink, Some(t)),
            Item::HardLink(n, t) => (n, b"", tar::EntryType::Link, Some(t)),
            Item::Fifo(n) => (n, b"", tar::EntryType::Fifo, None),
        };
        let raw = &mut header.as_old_mut().name;
        raw.fill(0);
        raw[..name.len()].copy_from_slice(name.as_bytes());
        header.set_entry_type(kind);
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        if let Some(link) = link {
            header.set_link_name_literal(link).unwrap();
        }
        header.set_cksum();
        builder.append(&header, data).unwrap();
    }
    builder.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// Stores a blob; its descriptor.
fn blob(layout: &Path, media_type: &str, bytes: &[u8]) -> serde_json::Value {
    let hex = hex::encode(Sha256::digest(bytes));
    let dir = layout.join("blobs/sha256");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(&hex), bytes).unwrap();
    serde_json::json!({"mediaType": media_type, "digest": format!("sha256:{hex}"), "size": bytes.len()})
}

const LAYER_GZ: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// A manifest of these layers, stored; its descriptor.
fn manifest(layout: &Path, layers: Vec<serde_json::Value>) -> serde_json::Value {
    let config = blob(layout, "application/vnd.oci.image.config.v1+json", b"{}");
    let m = serde_json::json!({"schemaVersion": 2, "mediaType": MANIFEST, "config": config, "layers": layers});
    blob(layout, MANIFEST, &serde_json::to_vec(&m).unwrap())
}

fn write_index(layout: &Path, manifests: Vec<serde_json::Value>) {
    fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion": "1.0.0"}"#,
    )
    .unwrap();
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests});
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
}

fn with_annotation(mut d: serde_json::Value, key: &str, value: &str) -> serde_json::Value {
    d["annotations"] = serde_json::json!({key: value});
    d
}

fn hostile_layers(layout: &Path) -> Vec<serde_json::Value> {
    let one = tar_of(&[
        Item::File("etc/os-release", "ID=debian\nVERSION_ID=12\n"),
        Item::File("../../evil", "escaped?"),
        Item::File("/abs/file", "absolute"),
        Item::Symlink("link", "/etc"),
        Item::File("link/passwd", "through the symlink"),
        Item::Symlink("up", "../../../../../../../"),
        Item::File("up/tmp/x", "through a symlink upwards"),
        Item::Dir("gone/"),
        Item::File("gone/file1", "1"),
        Item::File("opq/old", "old"),
        Item::File("opq/sub/older", "older"),
        Item::File("var/lib/dpkg/status", STATUS),
        Item::File("var/lib/dpkg/info/bash.list", "/bin/bash\n"),
        Item::File("bin/bash", "bash"),
        Item::HardLink("bin/rbash", "bin/bash"),
        Item::Fifo("dev/fifo"),
    ]);
    let two = tar_of(&[
        Item::File(".wh.gone", ""),
        Item::File("opq/new", "new"),
        Item::File("opq/.wh..wh..opq", ""),
        Item::File("./etc/.wh.missing", ""),
        Item::File("lib/apk/db/../../../abs/.wh.file", ""),
    ]);
    vec![
        blob(layout, LAYER_GZ, &gzip(&one)),
        blob(layout, LAYER_TAR, &two),
    ]
}

#[test]
fn hostile_layers_stay_inside_the_tree_and_whiteouts_apply() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path();
    let layers = hostile_layers(layout);
    let m = manifest(layout, layers);
    let digest = m["digest"].as_str().unwrap().to_owned();
    write_index(
        layout,
        vec![with_annotation(
            m,
            "org.opencontainers.image.ref.name",
            "demo:1",
        )],
    );

    let opts = options(OutputFormat::SpdxJson);
    let inv = scan(layout, &opts).unwrap();
    assert_eq!(inv.subject.name, digest);
    assert_eq!(inv.subject.ref_name.as_deref(), Some("demo:1"));
    let files: Vec<&str> = inv.tree.files().map(|f| f.path).collect();
    assert_eq!(
        files,
        [
            "bin/bash",
            "bin/rbash",
            "etc/os-release",
            "etc/passwd",
            "evil",
            "opq/new",
            "tmp/x",
            "var/lib/dpkg/info/bash.list",
            "var/lib/dpkg/status",
        ]
    );
    assert!(matches!(
        inv.tree.get("link").map(|e| &e.kind),
        Some(Kind::Symlink(t)) if t == "/etc"
    ));
    assert!(inv.tree.get("gone").is_none());
    assert!(inv.tree.get("opq/sub").is_none());
    let rbash = inv.tree.files().find(|f| f.path == "bin/rbash").unwrap();
    let bash = inv.tree.files().find(|f| f.path == "bin/bash").unwrap();
    assert_eq!(rbash.sha256, bash.sha256);
    assert_eq!(inv.tree.skipped_special, 1);
    // The dpkg database came from the layer, in memory.
    assert_eq!(inv.packages.len(), 2);
    assert_eq!(find(&inv, Ecosystem::Dpkg, "bash").files, ["bin/bash"]);

    for format in [OutputFormat::SpdxJson, OutputFormat::CycloneDxJson] {
        let generated = render(&inv, &options(format)).unwrap();
        let parsed = sbom::parse(&generated.document, &sbom::Limits::default()).unwrap();
        assert_eq!(parsed.files.len(), 9);
        let purls: Vec<&str> = parsed
            .packages
            .iter()
            .filter(|p| p.kind.as_deref() != Some("file"))
            .map(|p| p.purl.as_deref().unwrap_or(""))
            .collect();
        // The dpkg packages, and the image and its operating system (NTIA: every component).
        assert_eq!(
            purls.iter().filter(|p| p.starts_with("pkg:deb/")).count(),
            2
        );
        assert!(purls.iter().all(|p| p.starts_with("pkg:")), "{purls:?}");
        let root = if format == OutputFormat::SpdxJson {
            parsed
                .packages
                .iter()
                .find(|p| p.id == "SPDXRef-Image")
                .unwrap()
                .name
                .clone()
        } else {
            let v: serde_json::Value = serde_json::from_slice(&generated.document).unwrap();
            v["metadata"]["component"]["name"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        assert_eq!(root, digest);
    }
}

#[test]
fn a_tampered_blob_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path();
    let layer = blob(layout, LAYER_TAR, &tar_of(&[Item::File("a", "a")]));
    let m = manifest(layout, vec![layer.clone()]);
    write_index(layout, vec![m]);
    let hex = layer["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    fs::write(
        layout.join("blobs/sha256").join(hex),
        tar_of(&[Item::File("a", "b")]),
    )
    .unwrap();
    let err = scan(layout, &options(OutputFormat::SpdxJson)).unwrap_err();
    assert!(err.to_string().contains("has digest"), "{err}");
}

#[test]
fn zstd_layers_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path();
    let layer = blob(
        layout,
        "application/vnd.oci.image.layer.v1.tar+zstd",
        &[0x28, 0xb5, 0x2f, 0xfd, 0, 0],
    );
    let m = manifest(layout, vec![layer]);
    write_index(layout, vec![m]);
    let err = scan(layout, &options(OutputFormat::SpdxJson)).unwrap_err();
    assert!(matches!(err, SbomGenError::Unsupported(_)), "{err}");
    assert!(err.to_string().contains("zstd"));
}

#[test]
fn images_are_picked_by_platform_and_by_ref() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path();
    let amd = manifest(
        layout,
        vec![blob(layout, LAYER_TAR, &tar_of(&[Item::File("amd", "1")]))],
    );
    let arm = manifest(
        layout,
        vec![blob(layout, LAYER_TAR, &tar_of(&[Item::File("arm", "2")]))],
    );
    let mut amd_desc = amd.clone();
    amd_desc["platform"] = serde_json::json!({"os": "linux", "architecture": "amd64"});
    let mut arm_desc = arm.clone();
    arm_desc["platform"] =
        serde_json::json!({"os": "linux", "architecture": "arm64", "variant": "v8"});
    let mut attestation = amd.clone();
    attestation["platform"] = serde_json::json!({"os": "unknown", "architecture": "unknown"});
    let nested = serde_json::json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": [amd_desc, arm_desc, attestation]});
    let nested = blob(layout, INDEX, &serde_json::to_vec(&nested).unwrap());
    let other = manifest(
        layout,
        vec![blob(
            layout,
            LAYER_TAR,
            &tar_of(&[Item::File("other", "3")]),
        )],
    );
    write_index(
        layout,
        vec![
            with_annotation(nested, "org.opencontainers.image.ref.name", "multi"),
            with_annotation(other.clone(), "org.opencontainers.image.ref.name", "other"),
        ],
    );
    let pick = |ref_name: Option<&str>, platform: Option<&str>| {
        let mut opts = options(OutputFormat::SpdxJson);
        opts.selector = oci::Selector {
            ref_name: ref_name.map(str::to_owned),
            platform: platform.map(str::to_owned),
        };
        scan(layout, &opts)
    };
    let err = pick(None, None).unwrap_err().to_string();
    assert!(
        err.contains("--ref") && err.contains("multi, other"),
        "{err}"
    );
    let err = pick(Some("nope"), None).unwrap_err().to_string();
    assert!(err.contains("no manifest named \"nope\""), "{err}");
    let inv = pick(Some("other"), None).unwrap();
    assert_eq!(inv.subject.name, other["digest"].as_str().unwrap());

    let inv = pick(Some("multi"), Some("linux/arm64")).unwrap();
    assert_eq!(inv.subject.name, arm["digest"].as_str().unwrap());
    assert_eq!(inv.subject.platform.as_deref(), Some("linux/arm64/v8"));
    let inv = pick(Some("multi"), Some("linux/amd64")).unwrap();
    assert_eq!(
        inv.tree.files().map(|f| f.path).collect::<Vec<_>>(),
        ["amd"]
    );
    let err = pick(Some("multi"), Some("linux/s390x"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("no image for linux/s390x"), "{err}");
    if oci::host_platform() == "linux/amd64" {
        assert_eq!(
            pick(Some("multi"), None).unwrap().subject.name,
            amd["digest"].as_str().unwrap()
        );
    }
}

#[test]
fn layers_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path();
    let items: Vec<String> = (0..5).map(|i| format!("f{i}")).collect();
    let many = tar_of(&items.iter().map(|n| Item::File(n, "x")).collect::<Vec<_>>());
    let opaque = tar_of(&[
        Item::File(".wh..wh..opq", ""),
        Item::File(".wh..wh..opq", ""),
    ]);
    let layers = vec![
        blob(layout, LAYER_TAR, &many),
        blob(layout, LAYER_GZ, &gzip(&opaque)),
    ];
    let m = manifest(layout, layers);
    write_index(layout, vec![m]);
    let load = |limits: Limits| oci::load(layout, &oci::Selector::default(), limits);
    let image = load(Limits::default()).unwrap();
    assert_eq!(image.layers, 2);
    assert_eq!(
        image.tree.file_count(),
        0,
        "the opaque root hides the first layer"
    );
    let err = load(Limits {
        max_tar_entries: 6,
        ..Limits::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("tar entries"), "{err}");
    let err = load(Limits {
        max_layers: 1,
        ..Limits::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("layers"), "{err}");
    let err = load(Limits {
        max_path_bytes: 1,
        ..Limits::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("path length"), "{err}");
}

#[test]
fn ref_and_platform_are_for_layouts_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(OutputFormat::SpdxJson);
    opts.selector.ref_name = Some("x".into());
    let err = scan(dir.path(), &opts).unwrap_err();
    assert!(err.to_string().contains("not an OCI image layout"), "{err}");
}

// --- the rest ------------------------------------------------------------------------------------

#[test]
fn summary_line_groups_thousands() {
    let s = Summary {
        packages: vec![(Ecosystem::Dpkg, 12), (Ecosystem::Python, 2)],
        files: 2345,
        warnings: Vec::new(),
    };
    assert_eq!(
        s.to_string(),
        "14 packages (dpkg 12, python 2), 2,345 files"
    );
    let s = Summary {
        packages: Vec::new(),
        files: 1,
        warnings: Vec::new(),
    };
    assert_eq!(s.to_string(), "0 packages, 1 file");
}

#[test]
fn authors_need_a_name() {
    assert_eq!(
        Author::parse("Person: Jane").unwrap(),
        Author::Person("Jane".into())
    );
    assert_eq!(
        Author::parse("Acme Inc.").unwrap(),
        Author::Organization("Acme Inc.".into())
    );
    assert!(Author::parse("Person:  ").is_err());
    assert!(Author::parse("Organization: a\nb").is_err());
}

#[test]
fn the_output_file_is_replaced_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sbom.json");
    fs::write(&path, "old").unwrap();
    write_atomically(&path, b"new").unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"new");
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temporary file left"
    );
    assert!(write_atomically(&dir.path().join("missing/sbom.json"), b"x").is_err());
}
