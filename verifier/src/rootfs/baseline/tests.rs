use super::archive::PAX_FCAPS;
use super::layer::{read_layer_within, Limits};
use super::*;
use crate::measure::tests::{set_fcaps, NET_RAW_EP};
use crate::measure::Options;
use crate::rootfs::tests::{set_opaque, whiteout};
use crate::sbom::{File as SbomFile, Format};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{symlink, PermissionsExt};

/// One item of a test layer, written both as a tar entry and into an unpacked snapshot directory
/// the way containerd's overlayfs snapshotter unpacks it.
pub(super) enum Item {
    Dir(&'static str, u32),
    File(&'static str, &'static [u8], u32),
    Symlink(&'static str, &'static str),
    Hardlink(&'static str, &'static str),
    Whiteout(&'static str),
    Opaque(&'static str),
    /// A file with capabilities: a PAX `SCHILY.xattr.security.capability` record in the tar.
    CapFile(&'static str, &'static [u8], u32, &'static [u8]),
}
use Item::*;

pub(super) const ELF_SO: &[u8] = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x03\0 shared object";
pub(super) const ELF_EXEC: &[u8] = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0 executable";

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_size(size);
    h.set_mtime(1_700_000_000);
    h
}

/// A gzip-compressed tar of `items`, and (when `dir` is given) the same unpacked there.
fn layer(items: &[Item], dir: Option<&Path>) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    for item in items {
        match *item {
            Dir(p, mode) => {
                let mut h = header(tar::EntryType::Directory, mode, 0);
                b.append_data(&mut h, format!("./{p}/"), io::empty())
                    .unwrap();
            }
            File(p, data, mode) => {
                let mut h = header(tar::EntryType::Regular, mode, data.len() as u64);
                b.append_data(&mut h, p, data).unwrap();
            }
            CapFile(p, data, mode, caps) => {
                b.append_pax_extensions([(PAX_FCAPS, caps)]).unwrap();
                let mut h = header(tar::EntryType::Regular, mode, data.len() as u64);
                b.append_data(&mut h, p, data).unwrap();
            }
            Symlink(p, t) => {
                let mut h = header(tar::EntryType::Symlink, 0o777, 0);
                b.append_link(&mut h, p, t).unwrap();
            }
            Hardlink(p, t) => {
                let mut h = header(tar::EntryType::Link, 0o644, 0);
                b.append_link(&mut h, p, t).unwrap();
            }
            Whiteout(p) => {
                let (parent, name) = p.rsplit_once('/').unwrap_or(("", p));
                let wh = if parent.is_empty() {
                    format!(".wh.{name}")
                } else {
                    format!("{parent}/.wh.{name}")
                };
                let mut h = header(tar::EntryType::Regular, 0o644, 0);
                b.append_data(&mut h, wh, io::empty()).unwrap();
            }
            Opaque(p) => {
                let mut h = header(tar::EntryType::Regular, 0o644, 0);
                b.append_data(&mut h, format!("{p}/.wh..wh..opq"), io::empty())
                    .unwrap();
            }
        }
    }
    let bytes = b.into_inner().unwrap().finish().unwrap();
    if let Some(dir) = dir {
        unpack(items, dir);
    }
    bytes
}

pub(super) fn unpack(items: &[Item], dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    let parent = |p: &Path| fs::create_dir_all(p.parent().unwrap()).unwrap();
    for item in items {
        match *item {
            Dir(p, mode) => {
                let path = dir.join(p);
                fs::create_dir_all(&path).unwrap();
                fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            }
            File(p, data, mode) => {
                let path = dir.join(p);
                parent(&path);
                fs::write(&path, data).unwrap();
                fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            }
            CapFile(p, data, mode, caps) => {
                let path = dir.join(p);
                parent(&path);
                fs::write(&path, data).unwrap();
                fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
                set_fcaps(&path, Some(caps));
            }
            Symlink(p, t) => {
                let path = dir.join(p);
                parent(&path);
                symlink(t, &path).unwrap();
            }
            Hardlink(p, t) => {
                let path = dir.join(p);
                parent(&path);
                fs::hard_link(dir.join(t), &path).unwrap();
            }
            Whiteout(p) => {
                let path = dir.join(p);
                parent(&path);
                whiteout(&path);
            }
            Opaque(p) => {
                let path = dir.join(p);
                fs::create_dir_all(&path).unwrap();
                set_opaque(&path);
            }
        }
    }
}

fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Reads `blob` as a layer under its own digest, within `limits`.
fn read_within(
    blob: &[u8],
    max_entries: usize,
    limits: Limits,
) -> Result<ExpectedLayer, BaselineError> {
    let scratch = tempfile::tempdir().unwrap();
    let r = read_layer_within(blob, &digest_of(blob), max_entries, scratch.path(), limits);
    // Nothing of the blob is left behind, whatever the outcome.
    assert_eq!(fs::read_dir(scratch.path()).unwrap().count(), 0);
    r
}

fn read(blob: &[u8], max_entries: usize) -> Result<ExpectedLayer, BaselineError> {
    read_within(blob, max_entries, Limits::DEFAULT)
}

fn put_blob(layout: &Path, bytes: &[u8]) -> String {
    let d = digest_of(bytes);
    let dir = layout.join("blobs/sha256");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(check_digest(&d).unwrap()), bytes).unwrap();
    d
}

/// An image in an OCI layout (index -> this platform's manifest -> layers), and the same layers
/// unpacked as overlay lower directories `snapshots/<n>/fs` (bottom first, from 1), with an empty
/// upper directory above them.
struct Image {
    dir: tempfile::TempDir,
    index: String,
    layers: Vec<String>,
}

fn layer1() -> Vec<Item> {
    vec![
        Dir("bin", 0o755),
        Dir("etc", 0o755),
        Dir("usr", 0o755),
        Dir("usr/lib", 0o755),
        File("bin/app", ELF_EXEC, 0o755),
        Hardlink("bin/app-link", "bin/app"),
        File("etc/passwd", b"root:x:0:0::/root:/bin/sh\n", 0o644),
        File("etc/shadow", b"root:*:1::::::\n", 0o640),
        Symlink("etc/shadow-link", "/etc/shadow"),
        File("usr/lib/libold.so.1", ELF_SO, 0o644),
        File("usr/lib/data.txt", b"data", 0o644),
    ]
}

fn layer2() -> Vec<Item> {
    vec![
        Whiteout("etc/shadow"),
        Opaque("usr/lib"),
        File("usr/lib/libnew.so", ELF_SO, 0o644),
        // Implicit parents: `opt` and `opt/tool` are not listed.
        File("opt/tool/run.sh", b"#!/bin/sh\necho hi\n", 0o755),
    ]
}

impl Image {
    /// [`layer1`] and [`layer2`].
    fn new() -> Image {
        Image::with(&[layer1(), layer2()])
    }

    fn with(items: &[Vec<Item>]) -> Image {
        let dir = tempfile::tempdir().unwrap();
        let layout = dir.path().join("layout");
        let mut layers = Vec::new();
        for (n, items) in items.iter().enumerate() {
            let fs_dir = dir.path().join(format!("snapshots/{}/fs", n + 1));
            layers.push(put_blob(&layout, &layer(items, Some(&fs_dir))));
        }
        fs::create_dir_all(dir.path().join(format!("snapshots/{}/fs", items.len() + 1))).unwrap();
        fs::create_dir_all(dir.path().join("bundle/rootfs")).unwrap();
        fs::write(dir.path().join("bundle/config.json"), "{}").unwrap();
        let config = put_blob(&layout, b"{}");
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
            "layers": layers.iter().map(|d| serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": 1
            })).collect::<Vec<_>>(),
        });
        let manifest = put_blob(&layout, manifest.to_string().as_bytes());
        let (os, arch, _) = node_platform();
        let index = serde_json::json!({
            "schemaVersion": 2,
            "manifests": [
                {"digest": format!("sha256:{}", "0".repeat(64)), "platform": {"os": "linux", "architecture": "mips"}},
                {"digest": manifest, "platform": {"os": os, "architecture": arch}},
            ],
        });
        let index = put_blob(&layout, index.to_string().as_bytes());
        Image { dir, index, layers }
    }

    fn source(&self) -> OciLayout {
        OciLayout {
            dir: self.dir.path().join("layout"),
        }
    }

    fn lower(&self, n: u32) -> PathBuf {
        self.dir.path().join(format!("snapshots/{n}/fs"))
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn mounts(&self) -> Vec<crate::facts::RootfsMount> {
        let n = self.layers.len() as u32;
        let lower: Vec<String> = (1..=n)
            .rev()
            .map(|i| self.lower(i).display().to_string())
            .collect();
        vec![crate::facts::RootfsMount {
            fs_type: "overlay".into(),
            source: "overlay".into(),
            target: String::new(),
            options: vec![
                format!("lowerdir={}", lower.join(":")),
                format!("upperdir={}", self.lower(n + 1).display()),
            ],
        }]
    }

    fn measured(&self) -> Merged {
        crate::rootfs::measure_container(
            &self.mounts(),
            &self.dir.path().join("bundle"),
            &self.state(),
            &Options::default(),
        )
        .unwrap()
        .merged()
    }

    fn expected(&self) -> Expected {
        image_baseline(&self.source(), &self.index, &self.state(), 100_000).unwrap()
    }
}

fn lines(m: &[Mismatch]) -> Vec<String> {
    m.iter().map(ToString::to_string).collect()
}

#[test]
fn an_unpacked_image_matches_its_layers() {
    let img = Image::new();
    let expected = img.expected();
    let keys: Vec<String> = expected
        .entries
        .keys()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    assert_eq!(
        keys,
        [
            "bin",
            "bin/app",
            "bin/app-link",
            "etc",
            "etc/passwd",
            "etc/shadow-link",
            "opt",
            "opt/tool",
            "opt/tool/run.sh",
            "usr",
            "usr/lib",
            "usr/lib/libnew.so",
        ]
    );
    assert!(expected.implicit.contains(&b"opt/tool"[..]));
    let link = &expected.entries[&b"etc/shadow-link"[..]];
    assert_eq!(link.kind, Kind::Symlink);
    assert_eq!(link.target.as_deref(), Some(&b"/etc/shadow"[..]));
    assert_eq!(
        expected.entries[&b"bin/app-link"[..]].sha256,
        expected.entries[&b"bin/app"[..]].sha256
    );
    let measured = img.measured();
    let m = compare_image(&expected, &measured, &Exempt::default());
    assert!(m.is_empty(), "{:?}", lines(&m));
    // The symlink to the host's /etc/shadow is recorded as a symlink, never followed.
    let link = &measured[&b"etc/shadow-link"[..]];
    assert_eq!(link.kind, Kind::Symlink);
    assert_eq!(link.sha256, None);
}

#[test]
fn a_file_changed_on_the_node_after_a_first_start_is_refused_with_its_path() {
    let img = Image::new();
    let expected = img.expected();
    assert!(compare_image(&expected, &img.measured(), &Exempt::default()).is_empty());
    let path = img.lower(1).join("etc/passwd");
    fs::write(&path, "root:x:0:0::/root:/bin/zz\n").unwrap();
    let m = compare_image(&expected, &img.measured(), &Exempt::default());
    assert_eq!(
        lines(&m),
        [format!(
            "rootfs: /etc/passwd changed: expected {} actual {}",
            digest_of(b"root:x:0:0::/root:/bin/sh\n"),
            digest_of(b"root:x:0:0::/root:/bin/zz\n")
        )]
    );
    assert_eq!(reason(&m), Some(lines(&m)[0].clone()));
}

#[test]
fn a_file_added_to_a_lower_layer_or_removed_is_refused() {
    let img = Image::new();
    let expected = img.expected();
    fs::write(img.lower(1).join("etc/evil"), "x").unwrap();
    fs::remove_file(img.lower(2).join("usr/lib/libnew.so")).unwrap();
    let m = compare_image(&expected, &img.measured(), &Exempt::default());
    assert_eq!(
        lines(&m),
        [
            format!(
                "rootfs: /etc/evil added (not in the image): actual {}",
                digest_of(b"x")
            ),
            format!(
                "rootfs: /usr/lib/libnew.so removed: expected {}",
                digest_of(ELF_SO)
            ),
        ]
    );
    assert!(reason(&m).unwrap().ends_with("(and 1 more)"));
    // A whited-out file brought back below the whiteout stays hidden; one placed above it is seen.
    let exempt = Exempt::new(&["/etc/evil", "/usr/lib/**"]).unwrap();
    assert!(compare_image(&expected, &img.measured(), &exempt).is_empty());
    fs::remove_file(img.lower(2).join("etc/shadow")).unwrap();
    let m = compare_image(&expected, &img.measured(), &exempt);
    assert_eq!(m.len(), 1);
    assert!(lines(&m)[0].starts_with("rootfs: /etc/shadow added"));
}

#[test]
fn mode_owner_type_and_symlink_target_changes_are_refused() {
    let img = Image::new();
    let expected = img.expected();
    let l1 = img.lower(1);
    fs::set_permissions(l1.join("bin/app"), fs::Permissions::from_mode(0o4755)).unwrap();
    std::os::unix::fs::lchown(l1.join("etc/passwd"), Some(1000), Some(1000)).unwrap();
    fs::remove_file(l1.join("etc/shadow-link")).unwrap();
    symlink("/etc/passwd", l1.join("etc/shadow-link")).unwrap();
    fs::create_dir(img.lower(3).join("bin")).unwrap();
    fs::create_dir(img.lower(3).join("bin/app-link")).unwrap();
    let m = compare_image(&expected, &img.measured(), &Exempt::default());
    assert_eq!(
        lines(&m),
        [
            "rootfs: /bin/app mode changed: expected 0755 actual 4755".to_string(),
            format!(
                "rootfs: /bin/app-link type changed: expected {} actual dir",
                digest_of(ELF_EXEC)
            ),
            "rootfs: /etc/passwd owner changed: expected 0:0 actual 1000:1000".to_string(),
            "rootfs: /etc/shadow-link symlink target changed: expected \"/etc/shadow\" actual \"/etc/passwd\"".to_string(),
        ]
    );
}

#[test]
fn file_capabilities_of_the_image_match_and_a_difference_is_refused() {
    let img = Image::with(&[
        layer1(),
        vec![CapFile("bin/ping", ELF_EXEC, 0o755, &NET_RAW_EP)],
    ]);
    let expected = img.expected();
    assert_eq!(
        expected.entries[&b"bin/ping"[..]].fcaps.as_deref(),
        Some(&NET_RAW_EP[..])
    );
    assert_eq!(expected.entries[&b"bin/app"[..]].fcaps, None);
    let m = compare_image(&expected, &img.measured(), &Exempt::default());
    assert!(m.is_empty(), "{:?}", lines(&m));

    // Taken away on the node, and given to another file (and so to its hard link).
    set_fcaps(&img.lower(2).join("bin/ping"), None);
    set_fcaps(&img.lower(1).join("bin/app"), Some(&NET_RAW_EP));
    let m = compare_image(&expected, &img.measured(), &Exempt::default());
    assert_eq!(
        lines(&m),
        [
            "rootfs: /bin/app file capabilities changed: expected none actual cap_net_raw+ep",
            "rootfs: /bin/app-link file capabilities changed: expected none actual cap_net_raw+ep",
            "rootfs: /bin/ping file capabilities changed: expected cap_net_raw+ep actual none",
        ]
    );
    let exempt = Exempt::new(&["/bin/**"]).unwrap();
    assert!(compare_image(&expected, &img.measured(), &exempt).is_empty());
}

#[test]
fn capabilities_are_read_from_pax_records_as_the_node_reports_them() {
    let tar_of = |caps: &[u8]| {
        let mut b = tar::Builder::new(Vec::new());
        b.append_pax_extensions([(PAX_FCAPS, caps)]).unwrap();
        let mut h = header(tar::EntryType::Regular, 0o755, 1);
        b.append_data(&mut h, "usr/bin/ping", &b"x"[..]).unwrap();
        let mut h = header(tar::EntryType::Regular, 0o755, 1);
        b.append_data(&mut h, "usr/bin/plain", &b"y"[..]).unwrap();
        b.into_inner().unwrap()
    };
    let bytes = tar_of(&NET_RAW_EP);
    let l = read(&bytes[..], 10).unwrap();
    let ping = l
        .entries
        .iter()
        .find(|e| e.path == b"usr/bin/ping")
        .unwrap();
    assert_eq!(ping.fcaps.as_deref(), Some(&NET_RAW_EP[..]));
    let plain = l
        .entries
        .iter()
        .find(|e| e.path == b"usr/bin/plain")
        .unwrap();
    assert_eq!(plain.fcaps, None, "a PAX record applies to its entry only");

    // Revision 3 with root id 0, as a build in a user namespace may record it: the kernel shows
    // it as revision 2, and so does the expected layer.
    let mut v3 = NET_RAW_EP.to_vec();
    v3[3] = 0x03;
    v3.extend_from_slice(&[0; 4]);
    let bytes = tar_of(&v3);
    let l = read(&bytes[..], 10).unwrap();
    let ping3 = l
        .entries
        .iter()
        .find(|e| e.path == b"usr/bin/ping")
        .unwrap();
    assert_eq!(ping3.fcaps.as_deref(), Some(&NET_RAW_EP[..]));

    let huge = vec![0u8; crate::measure::MAX_FCAPS + 1];
    let bytes = tar_of(&huge);
    let err = read(&bytes[..], 10).unwrap_err();
    assert!(err.to_string().contains("larger than 4096 bytes"), "{err}");

    // The capabilities survive the layer cache; a cache of the format before them is not read.
    let img = Image::new();
    let l = ExpectedLayer {
        digest: img.layers[0].clone(),
        entries: vec![ping.clone()],
        implicit: vec![],
    };
    assert_eq!(ExpectedLayer::decode(&l.encode(), 10).unwrap(), l);
    let before = img.expected();
    let cache = img
        .state()
        .join("baselines/layers")
        .join(check_digest(&img.layers[0]).unwrap());
    let good = fs::read(&cache).unwrap();
    for version in [b"VOUCHEL1", b"VOUCHEL2"] {
        let mut old = good[..good.len() - 32].to_vec();
        old[..8].copy_from_slice(version);
        let sum: [u8; 32] = Sha256::digest(&old).into();
        old.extend_from_slice(&sum);
        fs::write(&cache, &old).unwrap();
        // Derived again from the blob (and cached again in the current format).
        assert_eq!(img.expected().entries, before.entries);
        assert_eq!(fs::read(&cache).unwrap(), good);
    }

    // A value holding a newline (cap_dac_override and cap_fowner: a mask byte 0x0a) is read by
    // its record's length, whole.
    let mut newline = NET_RAW_EP.to_vec();
    newline[4] = 0x0a;
    let bytes = tar_of(&newline);
    let l = read(&bytes[..], 10).unwrap();
    let ping = l
        .entries
        .iter()
        .find(|e| e.path == b"usr/bin/ping")
        .unwrap();
    assert_eq!(ping.fcaps.as_deref(), Some(&newline[..]));
}

#[test]
fn layers_are_cached_by_digest_and_a_wrong_blob_is_refused() {
    let img = Image::new();
    let before = img.expected();
    // Cached: the blobs are no longer needed.
    let layout = img.dir.path().join("layout/blobs/sha256");
    for d in &img.layers {
        fs::remove_file(layout.join(check_digest(d).unwrap())).unwrap();
    }
    let after = img.expected();
    assert_eq!(before.entries, after.entries);

    // A blob whose bytes are not those its digest pins.
    let state = tempfile::tempdir().unwrap();
    let bytes = layer(&layer1(), None);
    let l = Layer {
        digest: digest_of(b"something else"),
        media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
    };
    fs::write(layout.join(check_digest(&l.digest).unwrap()), &bytes).unwrap();
    let err = expected_layer(&img.source(), &l, state.path(), 1000).unwrap_err();
    assert!(matches!(err, BaselineError::Digest { .. }), "{err}");
    assert!(!state
        .path()
        .join("baselines/layers")
        .join(check_digest(&l.digest).unwrap())
        .exists());

    // A damaged cache is derived again, never trusted.
    let good = Layer {
        digest: put_blob(&img.dir.path().join("layout"), &bytes),
        media_type: String::new(),
    };
    let first = expected_layer(&img.source(), &good, state.path(), 1000).unwrap();
    let cache = state
        .path()
        .join("baselines/layers")
        .join(check_digest(&good.digest).unwrap());
    let mut damaged = fs::read(&cache).unwrap();
    let n = damaged.len() / 2;
    damaged[n] ^= 1;
    fs::write(&cache, damaged).unwrap();
    assert_eq!(
        expected_layer(&img.source(), &good, state.path(), 1000).unwrap(),
        first
    );
    // An uncompressed tar works too.
    let mut plain = tar::Builder::new(Vec::new());
    let mut h = header(tar::EntryType::Regular, 0o644, 1);
    plain.append_data(&mut h, "a", &b"x"[..]).unwrap();
    let plain = plain.into_inner().unwrap();
    let l = read(&plain[..], 10).unwrap();
    assert_eq!(l.entries.len(), 1);
    // PAX ids beyond the header's octal range.
    let mut pax = tar::Builder::new(Vec::new());
    pax.append_pax_extensions([("uid", &b"3000000"[..]), ("gid", &b"3000001"[..])])
        .unwrap();
    let mut h = header(tar::EntryType::Regular, 0o644, 1);
    pax.append_data(&mut h, "big", &b"x"[..]).unwrap();
    let pax = pax.into_inner().unwrap();
    let l = read(&pax[..], 10).unwrap();
    assert_eq!((l.entries[0].uid, l.entries[0].gid), (3_000_000, 3_000_001));
}

#[test]
fn zstd_and_escaping_paths_are_refused() {
    let zstd = b"\x28\xb5\x2f\xfd rest";
    let err = read(&zstd[..], 10).unwrap_err();
    assert!(err.to_string().contains("zstd"), "{err}");
    let img = Image::new();
    let l = Layer {
        digest: img.layers[0].clone(),
        media_type: "application/vnd.oci.image.layer.v1.tar+zstd".into(),
    };
    assert!(expected_layer(&img.source(), &l, &img.state(), 10)
        .unwrap_err()
        .to_string()
        .contains("not supported"));

    let mut b = tar::Builder::new(Vec::new());
    let mut h = header(tar::EntryType::Regular, 0o644, 1);
    // `append_data` refuses `..`; write the name into the header directly.
    h.as_gnu_mut().unwrap().name[..9].copy_from_slice(b"../escape");
    h.set_cksum();
    b.append(&h, &b"x"[..]).unwrap();
    let bytes = b.into_inner().unwrap();
    let err = read(&bytes[..], 10).unwrap_err();
    assert!(err.to_string().contains("escapes the root"), "{err}");
}

/// A gzip member of `bytes`.
fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn one_file_tar(name: &str, data: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = header(tar::EntryType::Regular, 0o644, data.len() as u64);
    b.append_data(&mut h, name, data).unwrap();
    b.into_inner().unwrap()
}

#[test]
fn a_blob_under_a_wrong_digest_is_refused_before_it_is_parsed() {
    // Each of these fails its parse with an error of its own; under a digest that is not theirs,
    // only the digest is reported, so the parse never ran.
    let mut escaping = one_file_tar("x", b"x");
    escaping[..9].copy_from_slice(b"../escape");
    let cases: [&[u8]; 3] = [b"\x28\xb5\x2f\xfd zstd", b"not a tar at all", &escaping];
    let scratch = tempfile::tempdir().unwrap();
    let wrong = digest_of(b"another blob");
    for blob in cases {
        assert!(read(blob, 10).is_err());
        let e = read_layer(blob, &wrong, 10, scratch.path()).unwrap_err();
        assert!(matches!(e, BaselineError::Digest { .. }), "{e}");
    }
    assert_eq!(fs::read_dir(scratch.path()).unwrap().count(), 0);
    // The scratch directory is made, private, when missing.
    let state = tempfile::tempdir().unwrap();
    let scratch = state.path().join("a/b");
    let tar = one_file_tar("f", b"data");
    read_layer(&tar[..], &digest_of(&tar), 10, &scratch).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(fs::metadata(&scratch).unwrap().mode() & 0o777, 0o700);
}

#[test]
fn blob_and_tar_sizes_are_bounded() {
    let tar = one_file_tar("big", &vec![7u8; 256 << 10]);
    let blob = gz(&tar);
    let limits = |blob_bytes, tar_bytes| Limits {
        blob_bytes,
        tar_bytes,
    };
    // The compressed bytes, stopped at the bound: an endless source ends too.
    let e = read_within(&blob, 10, limits(1000, 1 << 30)).unwrap_err();
    assert!(
        e.to_string()
            .ends_with("the blob is larger than 1000 bytes"),
        "{e}"
    );
    let scratch = tempfile::tempdir().unwrap();
    let e = read_layer_within(
        io::repeat(0),
        &digest_of(b""),
        10,
        scratch.path(),
        limits(64 << 10, 1 << 30),
    )
    .unwrap_err();
    assert!(
        e.to_string().ends_with("the blob is larger than 64 KiB"),
        "{e}"
    );
    // What comes out of the decompressor, counted in bytes whatever the entries.
    let e = read_within(&blob, 10, limits(1 << 30, 128 << 10)).unwrap_err();
    assert!(
        e.to_string()
            .ends_with("the layer's tar is larger than 128 KiB"),
        "{e}"
    );
    let e = read_within(&tar, 10, limits(1 << 30, 128 << 10)).unwrap_err();
    assert!(
        e.to_string()
            .ends_with("the layer's tar is larger than 128 KiB"),
        "{e}"
    );
    // Exactly at the bounds is fine.
    let fit = limits(blob.len() as u64, tar.len() as u64);
    assert_eq!(
        read_within(&blob, 10, fit).unwrap().entries[0].size,
        256 << 10
    );
}

#[test]
fn every_gzip_member_is_read_as_containerd_reads_them() {
    // Two members: the first holds an entry and no end of archive, the second the rest.
    let first = one_file_tar("a", b"1");
    let second = one_file_tar("b", b"2");
    let mut blob = gz(&first[..first.len() - 1024]);
    blob.extend_from_slice(&gz(&second));
    let l = read(&blob, 10).unwrap();
    let names: Vec<&[u8]> = l.entries.iter().map(|e| e.path.as_slice()).collect();
    assert_eq!(names, [&b"a"[..], b"b"]);
}

#[test]
fn a_whiteout_name_is_a_whiteout_whatever_its_type() {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = header(tar::EntryType::Regular, 0o644, 1);
    b.append_data(&mut h, "etc/passwd", &b"x"[..]).unwrap();
    let mut h = header(tar::EntryType::Link, 0o644, 0);
    b.append_link(&mut h, "etc/.wh.shadow", "etc/passwd")
        .unwrap();
    let bytes = b.into_inner().unwrap();
    let l = read(&bytes, 10).unwrap();
    let shadow = l.entries.iter().find(|e| e.path == b"etc/shadow").unwrap();
    assert!(shadow.is_whiteout());
    assert!(!l.entries.iter().any(|e| e.path.starts_with(b"etc/.wh.")));
}

#[test]
fn layer_errors_are_one_line_and_short() {
    // The tar crate quotes raw header bytes in its errors; nothing of that reaches a reason.
    let mut tar = one_file_tar("x", b"x");
    tar[..3].copy_from_slice(b"a\nb");
    tar[108..116].copy_from_slice(b"\n\x01zz\r\n\0\0");
    let mut h = tar::Header::new_old();
    h.as_mut_bytes().copy_from_slice(&tar[..512]);
    h.set_cksum();
    tar[..512].copy_from_slice(h.as_bytes());
    let e = read(&tar, 10).unwrap_err().to_string();
    assert!(e.contains("uid field is not an octal number"), "{e}");
    assert!(!e.contains(['\n', '\r']), "{e}");
    // A long name in an error is shortened.
    let name = "d/".repeat(1000) + "../x";
    let mut b = tar::Builder::new(Vec::new());
    let mut h = header(tar::EntryType::Regular, 0o644, 0);
    b.append_data(&mut h, "placeholder", io::empty()).unwrap();
    let mut bytes = b.into_inner().unwrap();
    let mut long = Vec::new();
    let mut lh = header(tar::EntryType::GNULongName, 0o644, name.len() as u64);
    lh.set_path("././@LongLink").unwrap();
    lh.set_cksum();
    long.extend_from_slice(lh.as_bytes());
    long.extend_from_slice(name.as_bytes());
    long.resize(long.len().div_ceil(512) * 512, 0);
    bytes.splice(0..0, long);
    let e = read(&bytes, 10).unwrap_err().to_string();
    assert!(e.contains("escapes the root") && e.len() < 400, "{e}");
    assert_eq!(one_line("a\nb\u{1b}c"), "a\\nb\\u{1b}c");
    assert_eq!(one_line(&"x".repeat(1000)).chars().count(), MAX_REASON + 1);
}

#[test]
fn exempt_patterns() {
    let e = Exempt::new(&["/var/cache/**", "/tmp/*", "/etc/*.conf", "/a/**/z"]).unwrap();
    for yes in [
        "var/cache",
        "var/cache/apt/x",
        "tmp/x",
        "etc/resolv.conf",
        "a/z",
        "a/b/c/z",
    ] {
        assert!(e.matches(yes.as_bytes()), "{yes}");
    }
    for no in [
        "var",
        "var/cachex",
        "tmp",
        "tmp/x/y",
        "etc/sub/a.conf",
        "a/b/c",
    ] {
        assert!(!e.matches(no.as_bytes()), "{no}");
    }
    assert!(Exempt::new(&["relative/*"]).is_err());
    assert!(Exempt::new(&["/a/../b"]).is_err());
}

#[test]
fn exempt_double_star_at_the_start_middle_and_end() {
    let e = Exempt::new(&["/**/core"]).unwrap();
    for yes in ["core", "a/core", "a/b/core"] {
        assert!(e.matches(yes.as_bytes()), "{yes}");
    }
    for no in ["mycore", "a/mycore", "core/x"] {
        assert!(!e.matches(no.as_bytes()), "{no}");
    }
    let e = Exempt::new(&["/a/**/**/z"]).unwrap();
    assert!(e.matches(b"a/z") && e.matches(b"a/1/2/z"));
    assert!(!e.matches(b"az") && !e.matches(b"a/xz"));
    let e = Exempt::new(&["/**"]).unwrap();
    assert!(e.matches(b"") && e.matches(b"any/thing"));
    let e = Exempt::new(&["/opt/**"]).unwrap();
    assert!(e.matches(b"opt") && e.matches(b"opt/") && e.matches(b"/opt//x/"));
    assert!(!e.matches(b"optx"));
    // `**` inside a name is two `*`: it stays within the name.
    let e = Exempt::new(&["/var/log**"]).unwrap();
    assert!(e.matches(b"var/logs") && !e.matches(b"var/log/x"));
}

#[test]
fn exempt_paths_take_brackets_braces_and_backslashes_literally() {
    let e = Exempt::new(&["/srv/[ab]", "/srv/{c,d}", r"/srv/e\*"]).unwrap();
    for yes in ["srv/[ab]", "srv/{c,d}", r"srv/e\", r"srv/e\x"] {
        assert!(e.matches(yes.as_bytes()), "{yes}");
    }
    for no in ["srv/a", "srv/c", "srv/e*x", "srv/ex"] {
        assert!(!e.matches(no.as_bytes()), "{no}");
    }
}

#[test]
fn exempt_paths_match_bytes_that_are_not_utf8() {
    let e = Exempt::new(&["/var/cache/**", "/tmp/?", "/data/*.bin"]).unwrap();
    assert!(e.matches(b"var/cache/\xff\xfe/x"));
    assert!(e.matches(b"tmp/\xff"));
    // `?` is one byte: a two-byte character is two.
    assert!(!e.matches("tmp/é".as_bytes()));
    assert!(e.matches(b"data/\x80\x81.bin"));
    assert!(!e.matches(b"data/\x80/x.bin"));
    assert!(e.matches(b"var/cache/a\nb"));
}

#[test]
fn an_exempt_path_that_cannot_be_compiled_is_refused_with_one_line() {
    let huge = format!("/{}", "?".repeat(200_000));
    let e = Exempt::new(&[huge]).unwrap_err();
    assert!(e.contains("cannot be compiled"), "{e}");
    assert!(!e.contains('\n'));
}

fn sbom(files: Vec<SbomFile>) -> Sbom {
    Sbom {
        format: Format::Spdx,
        spec_version: "2.3".into(),
        created: None,
        tools: vec![],
        authors: vec![],
        packages: vec![],
        files,
        relationships: vec![],
        vulnerabilities: vec![],
    }
}

fn file(path: &str, sha256: Option<String>, sha1: Option<String>) -> SbomFile {
    SbomFile {
        path: path.into(),
        sha256,
        sha1,
        package: None,
    }
}

fn hex256(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

#[test]
fn undeclared_libraries_and_declared_mismatches_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    unpack(&layer1(), r);
    // A merged-/usr layout: /lib -> usr/lib, and the SBOM names the /lib path.
    symlink("usr/lib", r.join("lib")).unwrap();
    fs::write(r.join("usr/lib/libx.so"), ELF_SO).unwrap();
    let m = crate::measure::measure(r, &Options::default()).unwrap();
    let merged = crate::rootfs::overlay(&[&m.entries]);
    use sha1::Digest as _;
    let sha1_passwd = hex::encode(sha1::Sha1::digest(b"root:x:0:0::/root:/bin/sh\n"));
    let declared = Declared::from_sbom(&sbom(vec![
        file("/bin/app", Some(hex256(ELF_EXEC)), None),
        file("/bin/app-link", None, None),
        file("./lib/libold.so.1", Some(hex256(ELF_SO)), None),
        file("/etc/passwd", None, Some(sha1_passwd)),
        file("/usr/lib/data.txt", Some(hex256(b"other")), None),
        file("/usr/share/gone", Some(hex256(b"gone")), None),
    ]))
    .unwrap();
    let strict = check_declared(&declared, &merged, r, &Exempt::default(), true);
    assert_eq!(
        lines(&strict),
        [
            format!("rootfs: /usr/lib/data.txt changed: expected sha256:{} (SBOM) actual sha256:{}", hex256(b"other"), hex256(b"data")),
            format!("rootfs: unexpected library /usr/lib/libx.so (not declared in the SBOM): actual sha256:{}", hex256(ELF_SO)),
            format!("rootfs: /usr/share/gone removed: expected sha256:{} (declared in the SBOM)", hex256(b"gone")),
        ]
    );
    let lax = check_declared(&declared, &merged, r, &Exempt::default(), false);
    assert_eq!(lax.len(), 2);
    let exempt = Exempt::new(&["/usr/**"]).unwrap();
    assert!(check_declared(&declared, &merged, r, &exempt, true).is_empty());
    // A declared program turned into a symlink into an exempt directory is compared where it leads.
    let cache = Exempt::new(&["/var/cache/**"]).unwrap();
    let swapped = dir.path().join("swapped");
    fs::create_dir_all(&swapped).unwrap();
    unpack(&layer1(), &swapped);
    fs::create_dir_all(swapped.join("var/cache")).unwrap();
    fs::write(swapped.join("var/cache/app"), ELF_SO).unwrap();
    fs::remove_file(swapped.join("bin/app")).unwrap();
    symlink("/var/cache/app", swapped.join("bin/app")).unwrap();
    let sm = crate::measure::measure(&swapped, &Options::default()).unwrap();
    let sm = crate::rootfs::overlay(&[&sm.entries]);
    let only_app =
        Declared::from_sbom(&sbom(vec![file("/bin/app", Some(hex256(ELF_EXEC)), None)])).unwrap();
    let found = lines(&check_declared(&only_app, &sm, &swapped, &cache, false));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("rootfs: /bin/app changed"),
        "{found:?}"
    );

    // SHA-1 declared, file changed after measurement: refused, not read past the measurement.
    fs::write(r.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
    assert_eq!(check_declared(&declared, &merged, r, &exempt, true), vec![]);
    fs::write(r.join("etc/passwd"), "changed").unwrap();
    let m = check_declared(&declared, &merged, r, &exempt, true);
    assert_eq!(m.len(), 1);
    assert!(lines(&m)[0].contains("unreadable"), "{:?}", lines(&m));

    // Malformed checksums fail closed; the baseline survives its cache.
    assert!(Declared::from_sbom(&sbom(vec![file("/a", Some("zz".into()), None)])).is_err());
    let state = tempfile::tempdir().unwrap();
    let sd = digest_of(b"sbom");
    declared.save(state.path(), &sd).unwrap();
    assert_eq!(Declared::load(state.path(), &sd, 100).unwrap(), declared);
    assert!(Declared::load(state.path(), &sd, 2).is_none());
    assert!(Declared::load(state.path(), &digest_of(b"other"), 100).is_none());
}

#[test]
fn a_shared_library_added_to_an_image_layer_is_an_unexpected_library() {
    let img = Image::new();
    let mut f = fs::File::create(img.lower(1).join("usr/lib/libevil.so.2")).unwrap();
    f.write_all(ELF_SO).unwrap();
    drop(f);
    // Under the opaque usr/lib of layer 2, it is hidden: put it where it is seen.
    fs::write(img.lower(1).join("bin/libevil.so.2"), ELF_SO).unwrap();
    let merged = img.measured();
    let declared = Declared::from_sbom(&sbom(vec![
        file("/bin/app", Some(hex256(ELF_EXEC)), None),
        file("/bin/app-link", Some(hex256(ELF_EXEC)), None),
        file("/usr/lib/libnew.so", Some(hex256(ELF_SO)), None),
        file("/opt/tool/run.sh", None, None),
    ]))
    .unwrap();
    let m = check_declared(
        &declared,
        &merged,
        Path::new("/nonexistent"),
        &Exempt::default(),
        true,
    );
    assert_eq!(m.len(), 1, "{:?}", lines(&m));
    assert!(lines(&m)[0]
        .starts_with("rootfs: unexpected library /bin/libevil.so.2 (not declared in the SBOM)"));
}

#[test]
fn symlinks_resolve_inside_the_tree_only() {
    let mut t = Merged::new();
    let mut link = |p: &str, target: &str| {
        let mut e = Entry::new(p.as_bytes().to_vec(), Kind::Symlink);
        e.target = Some(target.as_bytes().to_vec());
        t.insert(p.as_bytes().to_vec(), e);
    };
    link("lib", "usr/lib");
    link("etc/x", "../../../../etc/shadow");
    link("loop", "loop");
    assert_eq!(resolve(&t, b"/lib/libc.so").unwrap(), b"usr/lib/libc.so");
    assert_eq!(resolve(&t, b"etc/x").unwrap(), b"etc/shadow");
    assert_eq!(resolve(&t, b"loop"), None);
    // `..` after a link applies to where the link led; never above the root.
    assert_eq!(resolve(&t, b"lib/../bin").unwrap(), b"usr/bin");
    assert_eq!(resolve(&t, b"/../../lib/..").unwrap(), b"usr");
    // Longer than the kernel resolves: refused, not walked.
    let long = "a/".repeat(PATH_MAX / 2 + 1);
    assert_eq!(resolve(&t, long.as_bytes()), None);
    assert!(resolve(&t, "a/../".repeat(PATH_MAX).as_bytes()).is_some());
}

#[test]
fn reasons_stay_on_one_line() {
    let m = Mismatch::Added {
        path: b"etc/a\nb\xff".to_vec(),
        actual: "fifo".into(),
    };
    assert_eq!(
        m.to_string(),
        "rootfs: /etc/a\\nb\\xff added (not in the image): actual fifo"
    );
}

#[test]
fn baseline_modes_parse_by_their_policy_names() {
    for name in Mode::NAMES {
        assert_eq!(Mode::parse(name).unwrap().as_str(), name);
    }
    assert!(Mode::parse("Image")
        .unwrap_err()
        .contains("expected one of image"));
}
