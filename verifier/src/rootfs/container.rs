//! Measuring a container's root filesystem at Create, after containerd mounted it and before
//! `runc create`: each read-only layer, the writable layer and `config.json`.
//!
//! - overlay (containerd's overlayfs snapshotter): every `lowerdir` is measured directly (not
//!   through the mount) with a per-layer cache under `<state_dir>/layers/`, keyed by the layer's
//!   path, device and inode. The first start hashes a layer fully; later starts
//!   [`revalidate`](crate::measure::revalidate) it: every entry is lstat'ed and only files whose
//!   inode, size, mtime or ctime changed are read again, so a file modified on the node after pull
//!   is always caught (file capabilities too: setting or removing them moves the ctime). The `upperdir` (empty or nearly so at Create) is measured fully every start.
//! - a bind mount (the native snapshotter, a single read-only layer): the mounted `<bundle>/rootfs`
//!   is measured, cached by the mount source and the mounted root's device and inode.
//! - anything else (no mounts, several mounts, other types): `<bundle>/rootfs` fully, no cache.
//!
//! The cache is never trusted blindly: a file that is not exactly what [`Manifest::encode`] wrote
//! (checksum, bounds, sorted entries) means "measure fully"; and a cached entry is used only for a
//! file whose stat identity is unchanged.
//!
//! [`RootfsMeasurement::merged`] gives what the container will see: the layers stacked with
//! overlayfs's rules (see [`overlay`]), for comparison with a baseline.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::facts::RootfsMount;
use crate::measure::{self, Entry, Kind, Manifest, MeasureError, Options};

/// Largest layer cache file read back.
pub const MAX_CACHE_BYTES: u64 = 512 << 20;
/// Largest `config.json` hashed.
pub const MAX_CONFIG_BYTES: u64 = 64 << 20;
/// Domain separation of [`RootfsMeasurement::digest`].
pub const DIGEST_DOMAIN: &str = "vouch rootfs v1";

/// Why a root filesystem could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("rootfs: {0}")]
    Measure(#[from] MeasureError),
    #[error("rootfs: cannot read {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("rootfs: {0}")]
    Mount(String),
}

/// One measured tree: a read-only layer, the writable layer, or the whole mounted rootfs.
#[derive(Debug, Clone)]
pub struct LayerMeasurement {
    pub path: PathBuf,
    /// `sha256:<hex>` of the layer's [`Manifest`].
    pub digest: String,
    pub entries: usize,
    pub files: usize,
    /// Files read and hashed this time (all of them unless a cache was used).
    pub rehashed: usize,
    /// A cached manifest was re-validated rather than the layer measured from scratch.
    pub cached: bool,
    pub manifest: Manifest,
}

impl LayerMeasurement {
    fn new(path: &Path, manifest: Manifest, rehashed: usize, cached: bool) -> LayerMeasurement {
        LayerMeasurement {
            path: path.to_path_buf(),
            digest: manifest.digest_hex(),
            entries: manifest.entries.len(),
            files: manifest.files(),
            rehashed,
            cached,
            manifest,
        }
    }

    fn summary(&self) -> Value {
        json!({
            "path": self.path.to_string_lossy(),
            "digest": self.digest,
            "entries": self.entries,
            "files": self.files,
            "rehashed": self.rehashed,
        })
    }
}

/// How the rootfs was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// overlayfs: `layers` are the `lowerdir`s, `upper` the `upperdir`.
    Overlay,
    /// One tree, the mounted `<bundle>/rootfs` (`layers` has one element, `upper` is `None`).
    Rootfs,
}

impl Layout {
    pub fn as_str(self) -> &'static str {
        match self {
            Layout::Overlay => "overlay",
            Layout::Rootfs => "rootfs",
        }
    }
}

/// The measurement of a container's root filesystem.
#[derive(Debug, Clone)]
pub struct RootfsMeasurement {
    /// `sha256:<hex>` over the following, each line ending in `\n`: [`DIGEST_DOMAIN`],
    /// `layout <overlay|rootfs>`, `layer <digest>` for each of `layers` in order, `upper <digest>`
    /// or `upper -`, and `config <digest>`.
    pub digest: String,
    pub layout: Layout,
    /// Read-only layers, top first (the order of `lowerdir`).
    pub layers: Vec<LayerMeasurement>,
    pub upper: Option<LayerMeasurement>,
    /// `sha256:<hex>` of the bundle's `config.json` bytes.
    pub config_digest: String,
}

impl RootfsMeasurement {
    /// What the container will see: upper over the layers, top first, with overlayfs's rules.
    pub fn merged(&self) -> Merged {
        let mut stack: Vec<&[Entry]> = self
            .layers
            .iter()
            .rev()
            .map(|l| l.manifest.entries.as_slice())
            .collect();
        if let Some(u) = &self.upper {
            stack.push(&u.manifest.entries);
        }
        overlay(&stack)
    }

    /// The read-only layers alone, stacked: what the image unpacked to on this node, without
    /// whatever the writable layer holds (for a caller that checks the writable layer apart, e.g.
    /// when a container's snapshot is started again and runc's mount points are already there).
    pub fn merged_layers(&self) -> Merged {
        let stack: Vec<&[Entry]> = self
            .layers
            .iter()
            .rev()
            .map(|l| l.manifest.entries.as_slice())
            .collect();
        overlay(&stack)
    }

    /// For the attestation record: the digest, and per layer its digest and counts (no file
    /// lists).
    pub fn summary(&self) -> Value {
        json!({
            "digest": self.digest,
            "layout": self.layout.as_str(),
            "layers": self.layers.iter().map(LayerMeasurement::summary).collect::<Vec<_>>(),
            "upper": self.upper.as_ref().map(LayerMeasurement::summary),
            "config": self.config_digest,
        })
    }

    fn roll_up(&mut self) {
        let mut text = format!("{DIGEST_DOMAIN}\nlayout {}\n", self.layout.as_str());
        for l in &self.layers {
            text.push_str(&format!("layer {}\n", l.digest));
        }
        match &self.upper {
            Some(u) => text.push_str(&format!("upper {}\n", u.digest)),
            None => text.push_str("upper -\n"),
        }
        text.push_str(&format!("config {}\n", self.config_digest));
        self.digest = format!("sha256:{}", hex::encode(Sha256::digest(text.as_bytes())));
    }
}

/// A merged tree: relative path (no leading `/`, the root is `""`) to entry.
pub type Merged = BTreeMap<Vec<u8>, Entry>;

/// Stacks layers (bottom first) with overlayfs's rules: an upper entry replaces a lower one; a
/// whiteout (character device 0:0) removes the path and everything below it; an opaque directory
/// hides what lower layers have beneath it; a non-directory replacing a directory removes its
/// contents. Whiteouts never appear in the result.
pub fn overlay(layers_bottom_first: &[&[Entry]]) -> Merged {
    let mut merged = Merged::new();
    for layer in layers_bottom_first {
        // Sorted by path, a parent comes before its children: an opaque directory clears what is
        // below it before this layer's own children are added.
        for e in layer.iter() {
            if e.path.is_empty() {
                merged.insert(Vec::new(), e.clone());
                continue;
            }
            if e.is_whiteout() {
                merged.remove(&e.path);
                remove_below(&mut merged, &e.path);
                continue;
            }
            let replaces_dir = merged.get(&e.path).is_some_and(|p| p.kind == Kind::Dir);
            if (e.kind == Kind::Dir && e.opaque) || (e.kind != Kind::Dir && replaces_dir) {
                remove_below(&mut merged, &e.path);
            }
            merged.insert(e.path.clone(), e.clone());
        }
    }
    merged
}

/// Removes every path strictly below directory `dir`.
pub fn remove_below<V>(merged: &mut BTreeMap<Vec<u8>, V>, dir: &[u8]) {
    let mut lo = dir.to_vec();
    lo.push(b'/');
    let mut hi = dir.to_vec();
    hi.push(b'/' + 1);
    let doomed: Vec<Vec<u8>> = merged.range(lo..hi).map(|(k, _)| k.clone()).collect();
    for k in doomed {
        merged.remove(&k);
    }
}

/// `lowerdir=` split on unescaped `:` (overlayfs escapes a literal colon as `\:`).
fn split_lowerdir(value: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            ':' => out.push(PathBuf::from(std::mem::take(&mut cur))),
            c => cur.push(c),
        }
    }
    out.push(PathBuf::from(cur));
    out
}

fn option<'a>(m: &'a RootfsMount, key: &str) -> Option<&'a str> {
    m.options
        .iter()
        .rev()
        .find_map(|o| o.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
}

fn absolute(path: PathBuf, what: &str) -> Result<PathBuf, RootfsError> {
    if path.is_absolute() {
        Ok(path)
    } else {
        Err(RootfsError::Mount(format!(
            "overlay {what} {} is not an absolute path",
            path.display()
        )))
    }
}

/// Measures the root filesystem of a container whose mounts containerd passed to Create, whose
/// bundle holds `config.json` (and `rootfs`), caching layer manifests under `state_dir`.
pub fn measure_container(
    mounts: &[RootfsMount],
    bundle: &Path,
    state_dir: &Path,
    options: &Options,
) -> Result<RootfsMeasurement, RootfsError> {
    let config_digest = hash_config(&bundle.join("config.json"))?;
    let cache_dir = state_dir.join("layers");
    let mut m = match mounts {
        [one] if one.fs_type == "overlay" => {
            let lower = option(one, "lowerdir")
                .ok_or_else(|| RootfsError::Mount("overlay mount without lowerdir".into()))?;
            let mut layers = Vec::new();
            for dir in split_lowerdir(lower) {
                let dir = absolute(dir, "lowerdir")?;
                layers.push(measure_cached(&dir, &dir, &cache_dir, options)?);
            }
            let upper = match option(one, "upperdir") {
                Some(u) => {
                    let u = absolute(PathBuf::from(u), "upperdir")?;
                    let manifest = measure::measure(&u, options)?;
                    let files = manifest.files();
                    Some(LayerMeasurement::new(&u, manifest, files, false))
                }
                None => None,
            };
            RootfsMeasurement {
                digest: String::new(),
                layout: Layout::Overlay,
                layers,
                upper,
                config_digest,
            }
        }
        [one]
            if one.fs_type == "bind" || one.options.iter().any(|o| o == "bind" || o == "rbind") =>
        {
            let root = bundle.join("rootfs");
            let layer = measure_cached(&root, Path::new(&one.source), &cache_dir, options)?;
            RootfsMeasurement {
                digest: String::new(),
                layout: Layout::Rootfs,
                layers: vec![layer],
                upper: None,
                config_digest,
            }
        }
        _ => {
            let root = bundle.join("rootfs");
            let manifest = measure::measure(&root, options)?;
            let files = manifest.files();
            RootfsMeasurement {
                digest: String::new(),
                layout: Layout::Rootfs,
                layers: vec![LayerMeasurement::new(&root, manifest, files, false)],
                upper: None,
                config_digest,
            }
        }
    };
    m.roll_up();
    Ok(m)
}

fn hash_config(path: &Path) -> Result<String, RootfsError> {
    let io_err = |source| RootfsError::Io {
        path: path.to_path_buf(),
        source,
    };
    let f = File::options()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(io_err)?;
    let mut bytes = Vec::new();
    f.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(RootfsError::Io {
            path: path.to_path_buf(),
            source: io::Error::other("config.json is too large"),
        });
    }
    Ok(format!("sha256:{}", hex::encode(Sha256::digest(&bytes))))
}

/// The cache file of the tree at `root` known as `key` (a lowerdir, or a bind mount's source):
/// named by SHA-256 of the key and the root's device and inode.
fn cache_path(cache_dir: &Path, key: &Path, root: &fs::Metadata) -> PathBuf {
    let mut h = Sha256::new();
    h.update(b"vouch layer cache v1\0");
    h.update(key.as_os_str().as_bytes());
    h.update(b"\0");
    h.update(root.dev().to_le_bytes());
    h.update(root.ino().to_le_bytes());
    cache_dir.join(hex::encode(h.finalize()))
}

/// Measures `root`, re-validating the cached manifest of `key` when there is a good one, and
/// saves the result when anything was read.
pub fn measure_cached(
    root: &Path,
    key: &Path,
    cache_dir: &Path,
    options: &Options,
) -> Result<LayerMeasurement, RootfsError> {
    let meta = fs::symlink_metadata(root).map_err(|source| RootfsError::Io {
        path: root.to_path_buf(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(RootfsError::Mount(format!(
            "{} is not a directory",
            root.display()
        )));
    }
    let file = cache_path(cache_dir, key, &meta);
    let previous = load_manifest(&file, options.max_entries);
    let (manifest, rehashed, cached) = match &previous {
        Some(p) => {
            let (m, stats) = measure::revalidate(root, p, options)?;
            (m, stats.rehashed, true)
        }
        None => {
            let m = measure::measure(root, options)?;
            let files = m.files();
            (m, files, false)
        }
    };
    let unchanged = previous.as_ref().is_some_and(|p| {
        rehashed == 0 && p.digest == manifest.digest && p.entries.len() == manifest.entries.len()
    });
    if !unchanged {
        // A cache that cannot be written costs time at the next start, not correctness.
        if let Err(e) = store(&file, &manifest.encode()) {
            log::warn!("cannot write layer cache {}: {e}", file.display());
        }
    }
    Ok(LayerMeasurement::new(root, manifest, rehashed, cached))
}

/// A cached manifest, or `None` when absent, too large, unreadable or malformed.
fn load_manifest(path: &Path, max_entries: usize) -> Option<Manifest> {
    let bytes = load(path, MAX_CACHE_BYTES)?;
    match Manifest::decode(&bytes, max_entries) {
        Ok(m) => Some(m),
        Err(e) => {
            log::warn!("ignoring layer cache {}: {e}", path.display());
            None
        }
    }
}

/// Reads a cache file of at most `max` bytes, not following a symlink; `None` on any problem.
pub fn load(path: &Path, max: u64) -> Option<Vec<u8>> {
    let f = File::options()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    let meta = f.metadata().ok()?;
    if !meta.is_file() || meta.len() > max {
        return None;
    }
    // A cache in use is marked as such (its mtime, once a day), so that pruning spares it.
    let day_old = meta
        .modified()
        .ok()
        .and_then(|m| m.elapsed().ok())
        .is_some_and(|age| age > TOUCH_AFTER);
    if day_old {
        let _ = f.set_modified(std::time::SystemTime::now());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).ok()?);
    f.take(max + 1).read_to_end(&mut bytes).ok()?;
    (bytes.len() as u64 <= max).then_some(bytes)
}

/// How stale a cache file's mtime may get while it is used before [`load`] renews it.
const TOUCH_AFTER: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
/// Cache files not used for this long are removed by [`prune`].
pub const PRUNE_AFTER: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

/// Removes the layer measurements and baselines under `state_dir` that no start has used for
/// `max_age` (snapshots and images long gone), at most once a day (a stamp file says when it last
/// ran). Returns how many files were removed. Only regular files directly in those directories go;
/// anything else is left alone.
pub fn prune(state_dir: &Path, max_age: std::time::Duration) -> usize {
    let stamp = state_dir.join("layers").join(".pruned");
    let recent = fs::metadata(&stamp)
        .ok()
        .and_then(|m| m.modified().ok())
        .and_then(|m| m.elapsed().ok())
        .is_some_and(|age| age < TOUCH_AFTER);
    if recent {
        return 0;
    }
    let mut removed = 0;
    for dir in [
        state_dir.join("layers"),
        state_dir.join("baselines").join("layers"),
        state_dir.join("baselines").join("sbom"),
    ] {
        let Ok(listing) = fs::read_dir(&dir) else {
            continue;
        };
        for e in listing.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            let old = meta
                .modified()
                .ok()
                .and_then(|m| m.elapsed().ok())
                .is_some_and(|age| age > max_age);
            if meta.is_file() && old && !e.file_name().as_bytes().starts_with(b".") {
                removed += usize::from(fs::remove_file(e.path()).is_ok());
            }
        }
    }
    if fs::create_dir_all(state_dir.join("layers")).is_ok() {
        let _ = store(&stamp, b"");
    }
    removed
}

/// Writes `bytes` to `path` atomically: a new 0600 file beside it, renamed over it; the directory
/// is created 0700.
pub fn store(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("no parent directory"))?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    crate::cache::write_atomic(path, bytes)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::measure::Kind;
    use nix::sys::stat::{makedev, mknod, Mode, SFlag};
    use std::ffi::CString;
    use std::os::unix::fs::symlink;

    pub(crate) fn whiteout(path: &Path) {
        mknod(path, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0)).unwrap();
    }

    pub(crate) fn set_opaque(path: &Path) {
        let c = CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: NUL-terminated strings and a one-byte value.
        let rc = unsafe {
            nix::libc::lsetxattr(
                c.as_ptr(),
                c"trusted.overlay.opaque".as_ptr(),
                b"y".as_ptr().cast(),
                1,
                0,
            )
        };
        assert_eq!(rc, 0, "tests run as root");
    }

    /// Two lower layers and an upper, like containerd's overlayfs snapshotter, and a bundle.
    pub(crate) struct Overlay {
        pub dir: tempfile::TempDir,
    }

    impl Overlay {
        pub fn new() -> Overlay {
            let dir = tempfile::tempdir().unwrap();
            let r = dir.path();
            let l1 = r.join("snapshots/1/fs");
            let l2 = r.join("snapshots/2/fs");
            for d in [
                l1.join("bin"),
                l1.join("etc"),
                l1.join("usr/lib"),
                l1.join("var/cache/apt"),
                l2.join("etc"),
                l2.join("usr/lib"),
                r.join("snapshots/3/fs"),
                r.join("snapshots/3/work"),
                r.join("bundle/rootfs"),
            ] {
                fs::create_dir_all(d).unwrap();
            }
            fs::write(l1.join("bin/sh"), "sh v1").unwrap();
            fs::write(l1.join("bin/tool"), "tool").unwrap();
            fs::write(l1.join("etc/os-release"), "ID=test").unwrap();
            fs::write(l1.join("usr/lib/libold.so"), "old").unwrap();
            fs::write(l1.join("var/cache/apt/pkg"), "cache").unwrap();
            symlink("/etc/shadow", l1.join("etc/shadow-link")).unwrap();
            // Layer 2: replaces os-release, deletes bin/tool, makes usr/lib opaque.
            fs::write(l2.join("etc/os-release"), "ID=test2").unwrap();
            fs::create_dir_all(l2.join("bin")).unwrap();
            whiteout(&l2.join("bin/tool"));
            set_opaque(&l2.join("usr/lib"));
            fs::write(l2.join("usr/lib/libnew.so"), "new").unwrap();
            fs::write(r.join("bundle/config.json"), "{}").unwrap();
            Overlay { dir }
        }

        pub fn lower(&self, n: u32) -> PathBuf {
            self.dir.path().join(format!("snapshots/{n}/fs"))
        }

        pub fn bundle(&self) -> PathBuf {
            self.dir.path().join("bundle")
        }

        pub fn state(&self) -> PathBuf {
            self.dir.path().join("state")
        }

        pub fn mounts(&self) -> Vec<RootfsMount> {
            vec![RootfsMount {
                fs_type: "overlay".into(),
                source: "overlay".into(),
                target: String::new(),
                options: vec![
                    "index=off".into(),
                    format!(
                        "lowerdir={}:{}",
                        self.lower(2).display(),
                        self.lower(1).display()
                    ),
                    format!("upperdir={}", self.lower(3).display()),
                    format!(
                        "workdir={}",
                        self.dir.path().join("snapshots/3/work").display()
                    ),
                ],
            }]
        }

        /// Makes the cached manifests look measured long ago (past the racy window).
        pub fn settle(&self) {
            for f in fs::read_dir(self.state().join("layers")).unwrap() {
                let p = f.unwrap().path();
                let mut m = Manifest::decode(&fs::read(&p).unwrap(), 1 << 20).unwrap();
                m.measured_at += 2 * measure::RACY_NS;
                fs::write(&p, m.encode()).unwrap();
            }
        }
    }

    fn paths(m: &Merged) -> Vec<String> {
        m.keys()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect()
    }

    #[test]
    fn overlay_layers_merge_with_whiteouts_and_opaque_directories() {
        let o = Overlay::new();
        let m =
            measure_container(&o.mounts(), &o.bundle(), &o.state(), &Options::default()).unwrap();
        assert_eq!(m.layout, Layout::Overlay);
        assert_eq!(m.layers.len(), 2);
        assert_eq!(m.layers[0].path, o.lower(2));
        assert!(m.upper.is_some());
        assert_eq!(
            m.config_digest,
            format!("sha256:{}", hex::encode(Sha256::digest(b"{}")))
        );
        let merged = m.merged();
        assert_eq!(
            paths(&merged),
            [
                "",
                "bin",
                "bin/sh",
                "etc",
                "etc/os-release",
                "etc/shadow-link",
                "usr",
                "usr/lib",
                "usr/lib/libnew.so",
                "var",
                "var/cache",
                "var/cache/apt",
                "var/cache/apt/pkg"
            ]
        );
        assert_eq!(
            merged[&b"etc/os-release"[..]].sha256,
            Some(Sha256::digest(b"ID=test2").into())
        );
        let link = &merged[&b"etc/shadow-link"[..]];
        assert_eq!(link.kind, Kind::Symlink);
        assert_eq!(link.target.as_deref(), Some(&b"/etc/shadow"[..]));
        let summary = m.summary();
        assert_eq!(summary["layers"].as_array().unwrap().len(), 2);
        assert_eq!(summary["digest"], m.digest);
        assert!(summary["layers"][0].get("entries").is_some());
    }

    #[test]
    fn a_second_start_rehashes_nothing_and_a_file_changed_on_the_node_is_caught() {
        let o = Overlay::new();
        let opts = Options::default();
        let first = measure_container(&o.mounts(), &o.bundle(), &o.state(), &opts).unwrap();
        assert!(!first.layers[0].cached);
        o.settle();
        let second = measure_container(&o.mounts(), &o.bundle(), &o.state(), &opts).unwrap();
        assert!(second.layers.iter().all(|l| l.cached && l.rehashed == 0));
        assert_eq!(first.digest, second.digest);

        fs::write(o.lower(1).join("bin/sh"), "sh v2").unwrap();
        let third = measure_container(&o.mounts(), &o.bundle(), &o.state(), &opts).unwrap();
        assert_eq!(third.layers[1].rehashed, 1);
        assert_ne!(third.digest, first.digest);
        assert_eq!(
            third.merged()[&b"bin/sh"[..]].sha256,
            Some(Sha256::digest(b"sh v2").into())
        );
        // Added to a lower layer: seen.
        fs::write(o.lower(2).join("etc/evil"), "x").unwrap();
        let fourth = measure_container(&o.mounts(), &o.bundle(), &o.state(), &opts).unwrap();
        assert!(fourth.merged().contains_key(&b"etc/evil"[..]));
    }

    #[test]
    fn capabilities_come_from_the_top_layer_and_a_setcap_on_the_node_is_caught() {
        use crate::measure::tests::{set_fcaps, NET_RAW_EP};
        let o = Overlay::new();
        let opts = Options::default();
        set_fcaps(&o.lower(1).join("bin/sh"), Some(&NET_RAW_EP));
        set_fcaps(&o.lower(1).join("etc/os-release"), Some(&NET_RAW_EP));
        let first = measure_container(&o.mounts(), &o.bundle(), &o.state(), &opts).unwrap();
        let merged = first.merged();
        assert_eq!(
            merged[&b"bin/sh"[..]].fcaps.as_deref(),
            Some(&NET_RAW_EP[..])
        );
        // Layer 2's os-release, without capabilities, replaces layer 1's.
        assert_eq!(merged[&b"etc/os-release"[..]].fcaps, None);

        // A later start re-validates the cached layers by stat: setcap moves the ctime.
        o.settle();
        std::thread::sleep(std::time::Duration::from_millis(20));
        set_fcaps(&o.lower(1).join("bin/sh"), None);
        let second = measure_container(&o.mounts(), &o.bundle(), &o.state(), &opts).unwrap();
        assert!(second.layers.iter().all(|l| l.cached));
        assert_eq!(second.layers[1].rehashed, 1);
        assert_ne!(second.digest, first.digest);
        assert_eq!(second.merged()[&b"bin/sh"[..]].fcaps, None);
        // Given to the top layer's file: seen through the stack.
        set_fcaps(&o.lower(2).join("etc/os-release"), Some(&NET_RAW_EP));
        let third = measure_container(&o.mounts(), &o.bundle(), &o.state(), &opts).unwrap();
        assert_eq!(third.layers[0].rehashed, 1);
        assert_eq!(
            third.merged()[&b"etc/os-release"[..]].fcaps.as_deref(),
            Some(&NET_RAW_EP[..])
        );
    }

    #[test]
    fn caches_unused_for_long_are_pruned_once_a_day_and_used_ones_are_renewed() {
        let state = tempfile::tempdir().unwrap();
        let old = std::time::SystemTime::now() - 2 * PRUNE_AFTER;
        let file = |rel: &str| {
            let p = state.path().join(rel);
            store(&p, b"cache").unwrap();
            File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(old)
                .unwrap();
            p
        };
        let stale = file("layers/aaaa");
        let used = file("layers/bbbb");
        let baseline = file("baselines/layers/cccc");
        let fresh = state.path().join("baselines/sbom/dddd");
        store(&fresh, b"cache").unwrap();
        // Reading a cache renews it.
        assert_eq!(load(&used, 100).as_deref(), Some(&b"cache"[..]));
        assert_eq!(prune(state.path(), PRUNE_AFTER), 2);
        assert!(!stale.exists() && !baseline.exists());
        assert!(used.exists() && fresh.exists());
        // Not again within a day.
        let again = file("layers/eeee");
        assert_eq!(prune(state.path(), PRUNE_AFTER), 0);
        assert!(again.exists());
    }

    #[test]
    fn a_corrupt_cache_means_a_full_measurement() {
        let o = Overlay::new();
        let opts = Options::default();
        let first = measure_container(&o.mounts(), &o.bundle(), &o.state(), &opts).unwrap();
        for f in fs::read_dir(o.state().join("layers")).unwrap() {
            let p = f.unwrap().path();
            let meta = fs::metadata(&p).unwrap();
            assert_eq!(meta.mode() & 0o777, 0o600);
            let mut bytes = fs::read(&p).unwrap();
            let n = bytes.len() / 2;
            bytes[n] ^= 0xff;
            fs::write(&p, bytes).unwrap();
        }
        assert_eq!(
            fs::metadata(o.state().join("layers")).unwrap().mode() & 0o777,
            0o700
        );
        let second = measure_container(&o.mounts(), &o.bundle(), &o.state(), &opts).unwrap();
        assert!(second.layers.iter().all(|l| !l.cached));
        assert_eq!(first.digest, second.digest);
        // Garbage of any kind, and a symlink in place of the file.
        for f in fs::read_dir(o.state().join("layers")).unwrap() {
            let p = f.unwrap().path();
            fs::remove_file(&p).unwrap();
            symlink("/dev/zero", &p).unwrap();
        }
        let third = measure_container(&o.mounts(), &o.bundle(), &o.state(), &opts).unwrap();
        assert!(third.layers.iter().all(|l| !l.cached));
    }

    #[test]
    fn the_digest_covers_layers_upper_and_config() {
        let o = Overlay::new();
        let opts = Options::default();
        let a = measure_container(&o.mounts(), &o.bundle(), &o.state(), &opts).unwrap();
        fs::write(o.bundle().join("config.json"), "{\"x\":1}").unwrap();
        let b = measure_container(&o.mounts(), &o.bundle(), &o.state(), &opts).unwrap();
        assert_ne!(a.digest, b.digest);
        fs::write(o.lower(3).join("new"), "x").unwrap();
        let c = measure_container(&o.mounts(), &o.bundle(), &o.state(), &opts).unwrap();
        assert_ne!(b.digest, c.digest);
        assert!(c.merged().contains_key(&b"new"[..]));
        assert!(!c.merged_layers().contains_key(&b"new"[..]));
    }

    #[test]
    fn a_bind_mount_or_plain_bundle_is_measured_from_the_rootfs() {
        let o = Overlay::new();
        let rootfs = o.bundle().join("rootfs");
        fs::write(rootfs.join("app"), "app").unwrap();
        let opts = Options::default();
        let bind = vec![RootfsMount {
            fs_type: "bind".into(),
            source: o.lower(1).display().to_string(),
            target: String::new(),
            options: vec!["rbind".into(), "ro".into()],
        }];
        let m = measure_container(&bind, &o.bundle(), &o.state(), &opts).unwrap();
        assert_eq!(m.layout, Layout::Rootfs);
        assert!(m.merged().contains_key(&b"app"[..]));
        let plain = measure_container(&[], &o.bundle(), &o.state(), &opts).unwrap();
        assert_eq!(plain.layers[0].digest, m.layers[0].digest);
        assert_ne!(plain.digest, "");
    }

    #[test]
    fn overlay_options_are_parsed_strictly() {
        assert_eq!(
            split_lowerdir(r"/a\:b:/c"),
            [PathBuf::from("/a:b"), PathBuf::from("/c")]
        );
        let o = Overlay::new();
        let mut mounts = o.mounts();
        mounts[0].options = vec!["lowerdir=rel/fs".into()];
        assert!(matches!(
            measure_container(&mounts, &o.bundle(), &o.state(), &Options::default()),
            Err(RootfsError::Mount(_))
        ));
        mounts[0].options = vec![];
        assert!(measure_container(&mounts, &o.bundle(), &o.state(), &Options::default()).is_err());
    }
}
