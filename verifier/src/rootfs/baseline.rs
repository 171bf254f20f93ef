//! Baselines a measured root filesystem is compared with (`[rule.rootfs] baseline = ...`):
//!
//! - `image`: the unpacked layers must equal the signed image. The expected tree is derived once
//!   per layer from the layer blob ([`expected_layer`]: the blob is streamed from containerd's
//!   content store into an unnamed scratch file, its compressed bytes checked against the digest
//!   the signed manifest pins before any is parsed, then every tar entry recorded as containerd
//!   unpacks it, OCI whiteouts turned into overlay whiteouts) and cached under
//!   `<state_dir>/baselines/layers/<hex>`; the layers are stacked ([`expected_image`]) and compared
//!   with what the container will see ([`compare_image`]): any added, removed or changed path
//!   (type, content, symlink target, device, file capabilities, mode, owner) is a [`Mismatch`].
//!   File capabilities come from the tar's PAX records `SCHILY.xattr.security.capability`.
//! - `declared-files-match`: files the SBOM declares with a checksum must be there and match
//!   ([`Declared`], [`check_declared`]).
//! - `no-undeclared-executables`: as `declared-files-match`, and ELF executables, shared libraries
//!   and executable scripts the SBOM does not declare are refused ("unexpected library").
//! - `off`.
//!
//! Paths matching an exempt pattern ([`Exempt`]) are never compared.
//!
//! Whatever the baseline, the spec's mounts may not hide measured code ([`hidden_code`]).
//!
//! Paths in mismatches are shown absolute (`/usr/bin/app`), with bytes that are not printable
//! UTF-8 escaped, so that a reason stays one line.

mod archive;
mod content;
mod fcaps;
mod layer;
mod mounts;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use globset::{Candidate, GlobSet};
use sha2::{Digest, Sha256};

pub use content::{
    check_digest, node_platform, platform_manifest, BlobSource, ContainerdContent, Layer, OciLayout,
};
pub use layer::{read_layer, MAX_BLOB_BYTES, MAX_TAR_BYTES};
pub use mounts::{hidden_code, through_volume_links};

use crate::glob;
use crate::measure::{self, Class, Entry, Kind};
use crate::rootfs::{self, Merged};
use crate::sbom::Sbom;

/// Largest cached expected layer or SBOM baseline read back.
pub const MAX_CACHE_BYTES: u64 = 512 << 20;

/// `[rule.rootfs] baseline`: what a measured root filesystem is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// `image`: [`image_baseline`] then [`compare_image`].
    Image,
    /// `declared-files-match`: [`check_declared`] without undeclared executables.
    DeclaredFilesMatch,
    /// `no-undeclared-executables`: [`check_declared`] with them.
    NoUndeclaredExecutables,
    /// `off`.
    Off,
}

impl Mode {
    pub const NAMES: [&'static str; 4] = [
        "image",
        "declared-files-match",
        "no-undeclared-executables",
        "off",
    ];

    pub fn parse(s: &str) -> Result<Mode, String> {
        Ok(match s {
            "image" => Mode::Image,
            "declared-files-match" => Mode::DeclaredFilesMatch,
            "no-undeclared-executables" => Mode::NoUndeclaredExecutables,
            "off" => Mode::Off,
            other => {
                return Err(format!(
                    "unknown rootfs baseline {other:?} (expected one of {})",
                    Mode::NAMES.join(", ")
                ))
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Image => "image",
            Mode::DeclaredFilesMatch => "declared-files-match",
            Mode::NoUndeclaredExecutables => "no-undeclared-executables",
            Mode::Off => "off",
        }
    }
}

/// Why a baseline could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("image layer {digest}: {reason}")]
    Blob { digest: String, reason: String },
    #[error("blob digest mismatch: expected {expected}, content hashes to {actual}")]
    Digest { expected: String, actual: String },
    #[error("{0}")]
    Unsupported(String),
    #[error("containerd content store: {0}")]
    Containerd(String),
    #[error("SBOM baseline: {0}")]
    Sbom(String),
}

/// An absolute, printable form of a relative path, for one-line reasons.
pub fn show(path: &[u8]) -> String {
    let mut out = String::from("/");
    for chunk in path.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() {
                out.extend(c.escape_default());
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// `text` as one line of at most [`MAX_REASON`] characters: control characters escaped, the rest
/// cut (errors of libraries may quote what they read).
pub(crate) fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_REASON));
    for (i, c) in text.chars().enumerate() {
        if i == MAX_REASON {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Longest text [`one_line`] keeps, in characters.
pub(crate) const MAX_REASON: usize = 400;

/// A path's normal relative form: no leading `/` or `./`, no `.` or empty components; `None`
/// for a path with `..`.
pub fn normalise(path: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(path.len());
    for part in path.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return None,
            p => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(p);
            }
        }
    }
    Some(out)
}

fn describe(e: &Entry) -> String {
    match (e.kind, &e.sha256, &e.target) {
        (Kind::File, Some(d), _) => format!("sha256:{}", hex::encode(d)),
        (Kind::Symlink, _, Some(t)) => format!("symlink to {}", printable(t)),
        (Kind::CharDevice | Kind::BlockDevice, _, _) => {
            let (ma, mi) = measure::major_minor(e.rdev);
            format!("{} {ma}:{mi}", e.kind.as_str())
        }
        (k, _, _) => k.as_str().to_string(),
    }
}

fn printable(bytes: &[u8]) -> String {
    let s = show(bytes);
    format!("{:?}", s.get(1..).unwrap_or_default())
}

/// One difference between a baseline and the measured tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// In the tree, not in the image.
    Added { path: Vec<u8>, actual: String },
    /// In the baseline (the image, or declared in the SBOM), not in the tree.
    Removed { path: Vec<u8>, expected: String },
    /// Both, different: `what` is `content`, `type`, `symlink target`, `device`,
    /// `file capabilities`, `mode` or `owner`.
    Changed {
        path: Vec<u8>,
        what: &'static str,
        expected: String,
        actual: String,
    },
    /// An ELF program, shared library or executable script the SBOM does not declare; `what` is
    /// `library` or `executable`.
    Undeclared {
        path: Vec<u8>,
        what: &'static str,
        actual: String,
    },
}

impl Mismatch {
    pub fn path(&self) -> &[u8] {
        match self {
            Mismatch::Added { path, .. }
            | Mismatch::Removed { path, .. }
            | Mismatch::Changed { path, .. }
            | Mismatch::Undeclared { path, .. } => path,
        }
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::Added { path, actual } => {
                write!(
                    f,
                    "rootfs: {} added (not in the image): actual {actual}",
                    show(path)
                )
            }
            Mismatch::Removed { path, expected } => {
                write!(f, "rootfs: {} removed: expected {expected}", show(path))
            }
            Mismatch::Changed {
                path,
                what: "content",
                expected,
                actual,
            } => write!(
                f,
                "rootfs: {} changed: expected {expected} actual {actual}",
                show(path)
            ),
            Mismatch::Changed {
                path,
                what,
                expected,
                actual,
            } => write!(
                f,
                "rootfs: {} {what} changed: expected {expected} actual {actual}",
                show(path)
            ),
            Mismatch::Undeclared { path, what, actual } => write!(
                f,
                "rootfs: unexpected {what} {} (not declared in the SBOM): actual {actual}",
                show(path)
            ),
        }
    }
}

/// The one-line denial reason for a list of mismatches: the first, and how many more.
pub fn reason(mismatches: &[Mismatch]) -> Option<String> {
    let first = mismatches.first()?;
    Some(match mismatches.len() {
        1 => first.to_string(),
        n => format!("{first} (and {} more)", n - 1),
    })
}

/// Paths never compared (`exempt_paths`): absolute glob patterns where `*` matches within one
/// component, `?` one byte of a component, and `**` as a whole component any number of components
/// (none included): `/var/cache/**` exempts `/var/cache` and everything below it, `/tmp/*` the
/// entries of `/tmp` but not what is below them. Nothing else is special: file names may hold `[`,
/// `{` or `\`. Empty components are dropped from patterns and paths, `.` components from patterns.
/// Matched by `globset` over the path's bytes, so names that are not UTF-8 match too.
#[derive(Debug, Clone, Default)]
pub struct Exempt {
    set: Option<GlobSet>,
}

impl Exempt {
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Exempt, String> {
        if patterns.is_empty() {
            return Ok(Exempt { set: None });
        }
        let mut globs = Vec::with_capacity(patterns.len());
        for p in patterns {
            let p = p.as_ref();
            if !p.starts_with('/') {
                return Err(format!("exempt path {p:?} must be absolute"));
            }
            let mut parts: Vec<&str> = Vec::new();
            for part in p.split('/').filter(|s| !s.is_empty() && *s != ".") {
                if part == ".." {
                    return Err(format!("exempt path {p:?} has a .. component"));
                }
                // `a/**/**/b` is `a/**/b`.
                if !(part == "**" && parts.last() == Some(&"**")) {
                    parts.push(part);
                }
            }
            // A `**` inside a name is two `*` there, for globset as for this syntax.
            let render = |parts: &[&str]| {
                parts
                    .iter()
                    .map(|s| glob::escape(s, &['*', '?']))
                    .collect::<Vec<_>>()
                    .join("/")
            };
            globs.push(render(&parts));
            // globset's trailing `/**` needs one more component; ours also matches none.
            if let [rest @ .., "**"] = &parts[..] {
                if !rest.is_empty() {
                    globs.push(render(rest));
                }
            }
        }
        let set = glob::compile(
            globs,
            glob::Options {
                literal_separator: true,
                case_insensitive: false,
            },
        )?;
        Ok(Exempt { set: Some(set) })
    }

    /// `path` relative, as in a manifest.
    pub fn matches(&self, path: &[u8]) -> bool {
        let Some(set) = &self.set else {
            return false;
        };
        let clean = !path.starts_with(b"/")
            && !path.ends_with(b"/")
            && !path.windows(2).any(|w| w == b"//");
        if clean {
            return set.is_match_candidate(&Candidate::from_bytes(path));
        }
        let parts: Vec<&[u8]> = path
            .split(|&b| b == b'/')
            .filter(|s| !s.is_empty())
            .collect();
        set.is_match_candidate(&Candidate::from_bytes(&parts.join(&b'/')))
    }
}

// ---------------------------------------------------------------------------------------------
// The image baseline.

/// What one layer blob holds, in overlay form: entries sorted by path, an OCI whiteout
/// (`.wh.<name>`) as a character device 0:0 at `<name>`, an opaque marker (`.wh..wh..opq`) as the
/// directory's `opaque` flag. Directories the tar does not list but needs (parents of its entries,
/// or an opaque directory itself) are in `implicit`: containerd creates them with the attributes of
/// the directory below, so only their type is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedLayer {
    pub digest: String,
    pub entries: Vec<Entry>,
    pub implicit: Vec<Vec<u8>>,
}

// Version 2 added file capabilities; version 3 reads PAX records by their length (a capability
// value holding a newline was lost before) and header-only entries without data, as containerd
// does. An older cache is derived again from the blob.
const LAYER_MAGIC: &[u8] = b"VOUCHEL3";

impl ExpectedLayer {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.entries.len() * 128);
        out.extend_from_slice(LAYER_MAGIC);
        put_bytes(&mut out, self.digest.as_bytes());
        measure::write_entries(&mut out, &self.entries);
        out.extend_from_slice(&(self.implicit.len() as u32).to_le_bytes());
        for p in &self.implicit {
            put_bytes(&mut out, p);
        }
        let sum: [u8; 32] = Sha256::digest(&out).into();
        out.extend_from_slice(&sum);
        out
    }

    pub fn decode(bytes: &[u8], max_entries: usize) -> Result<ExpectedLayer, measure::DecodeError> {
        use measure::DecodeError;
        let mut r = measure::checked_body(bytes, LAYER_MAGIC)?;
        let digest = String::from_utf8(measure::take_bytes(&mut r)?)
            .map_err(|_| DecodeError("digest not UTF-8"))?;
        let entries = measure::read_entries(&mut r, max_entries)?;
        let n = take_u32(&mut r)? as usize;
        if n > max_entries {
            return Err(DecodeError("too many entries"));
        }
        let mut implicit = Vec::with_capacity(n.min(r.len() / 4));
        for _ in 0..n {
            implicit.push(measure::take_bytes(&mut r)?);
        }
        if !r.is_empty() {
            return Err(DecodeError("trailing bytes"));
        }
        Ok(ExpectedLayer {
            digest,
            entries,
            implicit,
        })
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

fn take_u32(r: &mut &[u8]) -> Result<u32, measure::DecodeError> {
    if r.len() < 4 {
        return Err(measure::DecodeError("truncated"));
    }
    let (head, tail) = r.split_at(4);
    *r = tail;
    let mut a = [0u8; 4];
    a.copy_from_slice(head);
    Ok(u32::from_le_bytes(a))
}

/// The expected layer `layer`, from the cache under `<state_dir>/baselines/layers/` or derived from
/// the blob (and then cached; the blob waits under `<state_dir>/baselines/scratch/`, in a file
/// without a name). Refused: a blob whose bytes do not hash to its digest (before any is parsed),
/// a blob or tar over [`MAX_BLOB_BYTES`] or [`MAX_TAR_BYTES`], zstd (not supported), a tar with a
/// path escaping the root, a hard link to a path it does not hold, or an entry containerd would
/// not unpack.
pub fn expected_layer(
    source: &dyn BlobSource,
    layer: &Layer,
    state_dir: &Path,
    max_entries: usize,
) -> Result<ExpectedLayer, BaselineError> {
    let hex = check_digest(&layer.digest)?;
    let cache = state_dir.join("baselines/layers").join(hex);
    if let Some(bytes) = rootfs::load(&cache, MAX_CACHE_BYTES) {
        match ExpectedLayer::decode(&bytes, max_entries) {
            Ok(l) if l.digest == layer.digest => return Ok(l),
            Ok(_) => log::warn!("ignoring {}: another layer's", cache.display()),
            Err(e) => log::warn!("ignoring {}: {e}", cache.display()),
        }
    }
    if layer.media_type.contains("zstd") {
        return Err(zstd(&layer.digest));
    }
    let blob = source.open_blob(&layer.digest)?;
    let derived = read_layer(blob, &layer.digest, max_entries, &scratch_dir(state_dir))?;
    if let Err(e) = rootfs::store(&cache, &derived.encode()) {
        log::warn!("cannot write {}: {e}", cache.display());
    }
    Ok(derived)
}

/// Where a layer blob waits, in an unnamed file, while its digest is checked and it is parsed.
fn scratch_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("baselines/scratch")
}

fn zstd(digest: &str) -> BaselineError {
    BaselineError::Unsupported(format!(
        "image layer {digest} is zstd-compressed: not supported by the image baseline"
    ))
}

/// The tree an image's layers unpack to: what the container should see.
#[derive(Debug, Clone, Default)]
pub struct Expected {
    pub entries: Merged,
    /// Directories only implied by the layers: their attributes are not compared.
    pub implicit: BTreeSet<Vec<u8>>,
}

/// Stacks expected layers (manifest order, bottom first) with OCI's whiteout semantics: a
/// whiteout removes the path below, an opaque directory hides what lower layers have beneath it.
/// An implicit directory keeps the attributes of the directory below it.
pub fn expected_image(layers: &[ExpectedLayer]) -> Expected {
    let mut out = Expected::default();
    for layer in layers {
        let implicit: BTreeSet<&[u8]> = layer.implicit.iter().map(Vec::as_slice).collect();
        for e in &layer.entries {
            if e.is_whiteout() {
                out.entries.remove(&e.path);
                rootfs::remove_below(&mut out.entries, &e.path);
                out.implicit.remove(&e.path);
                continue;
            }
            let below_is_dir = out
                .entries
                .get(&e.path)
                .is_some_and(|p| p.kind == Kind::Dir);
            if (e.kind == Kind::Dir && e.opaque) || (e.kind != Kind::Dir && below_is_dir) {
                rootfs::remove_below(&mut out.entries, &e.path);
            }
            if implicit.contains(e.path.as_slice()) {
                if below_is_dir {
                    continue;
                }
                out.implicit.insert(e.path.clone());
            } else {
                out.implicit.remove(&e.path);
            }
            out.entries.insert(e.path.clone(), e.clone());
        }
    }
    // Whiteouts below removed directories may have left stale implicit marks.
    out.implicit.retain(|p| out.entries.contains_key(p));
    out
}

/// The expected tree of image `image_digest` (a manifest, or an index resolved to this node's
/// platform): every layer derived or taken from the cache, then stacked.
pub fn image_baseline(
    source: &dyn BlobSource,
    image_digest: &str,
    state_dir: &Path,
    max_entries: usize,
) -> Result<Expected, BaselineError> {
    let layers = source.manifest_layers(image_digest)?;
    let mut expected = Vec::with_capacity(layers.len());
    for l in &layers {
        expected.push(expected_layer(source, l, state_dir, max_entries)?);
    }
    Ok(expected_image(&expected))
}

/// Compares the expected image tree with the measured merged tree (see
/// [`crate::rootfs::RootfsMeasurement::merged`]): every added, removed or changed path not exempt,
/// in path order. The root directory itself and overlay's opaque flags are not compared (the
/// layers' own bookkeeping, not content).
pub fn compare_image(expected: &Expected, measured: &Merged, exempt: &Exempt) -> Vec<Mismatch> {
    let mut out = Vec::new();
    let mut exp = expected.entries.iter().peekable();
    let mut act = measured.iter().peekable();
    loop {
        let order = match (exp.peek(), act.peek()) {
            (None, None) => break,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some((a, _)), Some((b, _))) => a.cmp(b),
        };
        match order {
            std::cmp::Ordering::Less => {
                if let Some((p, e)) = exp.next() {
                    if !p.is_empty() && !exempt.matches(p) {
                        out.push(Mismatch::Removed {
                            path: p.clone(),
                            expected: describe(e),
                        });
                    }
                }
            }
            std::cmp::Ordering::Greater => {
                if let Some((p, a)) = act.next() {
                    if !p.is_empty() && !exempt.matches(p) {
                        out.push(Mismatch::Added {
                            path: p.clone(),
                            actual: describe(a),
                        });
                    }
                }
            }
            std::cmp::Ordering::Equal => {
                let (Some((p, e)), Some((_, a))) = (exp.next(), act.next()) else {
                    break;
                };
                if p.is_empty() || exempt.matches(p) {
                    continue;
                }
                let implicit = expected.implicit.contains(p);
                if let Some(m) = compare_entry(p, e, a, implicit) {
                    out.push(m);
                }
            }
        }
    }
    out
}

fn compare_entry(path: &[u8], e: &Entry, a: &Entry, implicit: bool) -> Option<Mismatch> {
    let changed = |what, expected: String, actual: String| {
        Some(Mismatch::Changed {
            path: path.to_vec(),
            what,
            expected,
            actual,
        })
    };
    if e.kind != a.kind {
        return changed("type", describe(e), describe(a));
    }
    match e.kind {
        Kind::File if e.sha256 != a.sha256 => return changed("content", describe(e), describe(a)),
        Kind::Symlink if e.target != a.target => {
            return changed(
                "symlink target",
                printable(e.target.as_deref().unwrap_or_default()),
                printable(a.target.as_deref().unwrap_or_default()),
            )
        }
        Kind::CharDevice | Kind::BlockDevice if e.rdev != a.rdev => {
            return changed("device", describe(e), describe(a))
        }
        _ => {}
    }
    if implicit {
        return None;
    }
    if e.fcaps != a.fcaps {
        return changed(
            "file capabilities",
            fcaps::describe(e.fcaps.as_deref()),
            fcaps::describe(a.fcaps.as_deref()),
        );
    }
    // Symlink permissions mean nothing on Linux (and are 0777 on disk).
    if e.kind != Kind::Symlink && e.mode != a.mode {
        return changed("mode", format!("{:04o}", e.mode), format!("{:04o}", a.mode));
    }
    if (e.uid, e.gid) != (a.uid, a.gid) {
        return changed(
            "owner",
            format!("{}:{}", e.uid, e.gid),
            format!("{}:{}", a.uid, a.gid),
        );
    }
    None
}

// ---------------------------------------------------------------------------------------------
// The SBOM baselines.

/// A checksum an SBOM declares for a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeclaredSum {
    Sha256([u8; 32]),
    Sha1([u8; 20]),
}

impl fmt::Display for DeclaredSum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeclaredSum::Sha256(d) => write!(f, "sha256:{}", hex::encode(d)),
            DeclaredSum::Sha1(d) => write!(f, "sha1:{}", hex::encode(d)),
        }
    }
}

/// The files an SBOM declares: normalised path to checksum (SHA-256 preferred, SHA-1 accepted;
/// `None` for a file declared without one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Declared {
    pub files: BTreeMap<Vec<u8>, Option<DeclaredSum>>,
}

const SBOM_MAGIC: &[u8] = b"VOUCHSB1";

impl Declared {
    /// Refuses a malformed checksum (fail closed: it is not silently a file without one).
    pub fn from_sbom(sbom: &Sbom) -> Result<Declared, BaselineError> {
        let mut files = BTreeMap::new();
        for f in &sbom.files {
            let Some(path) = normalise(f.path.as_bytes()).filter(|p| !p.is_empty()) else {
                continue;
            };
            let bad = |alg: &str| {
                BaselineError::Sbom(format!(
                    "file {} has a malformed {alg} checksum",
                    show(&path)
                ))
            };
            let sum = if let Some(s) = &f.sha256 {
                let mut d = [0u8; 32];
                hex::decode_to_slice(s.trim(), &mut d).map_err(|_| bad("SHA-256"))?;
                Some(DeclaredSum::Sha256(d))
            } else if let Some(s) = &f.sha1 {
                let mut d = [0u8; 20];
                hex::decode_to_slice(s.trim(), &mut d).map_err(|_| bad("SHA-1"))?;
                Some(DeclaredSum::Sha1(d))
            } else {
                None
            };
            // The same path listed twice (two packages): a checksum wins over none; two different
            // checksums cannot both hold, the first is kept and checked.
            let slot = files.entry(path).or_insert(None);
            if slot.is_none() {
                *slot = sum;
            }
        }
        Ok(Declared { files })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(SBOM_MAGIC);
        out.extend_from_slice(&(self.files.len() as u32).to_le_bytes());
        for (p, sum) in &self.files {
            put_bytes(&mut out, p);
            match sum {
                None => out.push(0),
                Some(DeclaredSum::Sha256(d)) => {
                    out.push(1);
                    out.extend_from_slice(d);
                }
                Some(DeclaredSum::Sha1(d)) => {
                    out.push(2);
                    out.extend_from_slice(d);
                }
            }
        }
        let sum: [u8; 32] = Sha256::digest(&out).into();
        out.extend_from_slice(&sum);
        out
    }

    pub fn decode(bytes: &[u8], max_entries: usize) -> Result<Declared, measure::DecodeError> {
        use measure::DecodeError;
        let mut r = measure::checked_body(bytes, SBOM_MAGIC)?;
        let n = take_u32(&mut r)? as usize;
        if n > max_entries {
            return Err(DecodeError("too many entries"));
        }
        let mut files = BTreeMap::new();
        for _ in 0..n {
            let p = measure::take_bytes(&mut r)?;
            let tag = *r.first().ok_or(DecodeError("truncated"))?;
            r = r.get(1..).unwrap_or_default();
            let take = |r: &mut &[u8], k: usize| -> Result<Vec<u8>, DecodeError> {
                let v = r.get(..k).ok_or(DecodeError("truncated"))?.to_vec();
                *r = r.get(k..).unwrap_or_default();
                Ok(v)
            };
            let sum = match tag {
                0 => None,
                1 => {
                    let mut d = [0u8; 32];
                    d.copy_from_slice(&take(&mut r, 32)?);
                    Some(DeclaredSum::Sha256(d))
                }
                2 => {
                    let mut d = [0u8; 20];
                    d.copy_from_slice(&take(&mut r, 20)?);
                    Some(DeclaredSum::Sha1(d))
                }
                _ => return Err(DecodeError("bad tag")),
            };
            files.insert(p, sum);
        }
        if !r.is_empty() {
            return Err(DecodeError("trailing bytes"));
        }
        Ok(Declared { files })
    }

    fn cache_path(state_dir: &Path, sbom_digest: &str) -> Result<PathBuf, BaselineError> {
        let hex = check_digest(sbom_digest)?;
        Ok(state_dir.join("baselines/sbom").join(hex))
    }

    /// Caches this baseline under `<state_dir>/baselines/sbom/<hex of the SBOM digest>`.
    pub fn save(&self, state_dir: &Path, sbom_digest: &str) -> Result<(), BaselineError> {
        let path = Declared::cache_path(state_dir, sbom_digest)?;
        rootfs::store(&path, &self.encode())
            .map_err(|e| BaselineError::Sbom(format!("cannot write {}: {e}", path.display())))
    }

    /// The cached baseline of the SBOM `sbom_digest`, if there is a good one.
    pub fn load(state_dir: &Path, sbom_digest: &str, max_entries: usize) -> Option<Declared> {
        let path = Declared::cache_path(state_dir, sbom_digest).ok()?;
        let bytes = rootfs::load(&path, MAX_CACHE_BYTES)?;
        Declared::decode(&bytes, max_entries).ok()
    }
}

/// The longest path the kernel takes (`PATH_MAX`, bytes).
pub const PATH_MAX: usize = 4096;
/// Symbolic links followed at most in one resolution, as the kernel does.
pub const MAX_SYMLINKS: usize = 40;

/// `path` resolved through the symlinks of `tree` (never the host's): absolute targets from the
/// tree's root, relative ones from the link's directory, `..` from what precedes it once resolved
/// (never above the root). `None` for a loop (more than [`MAX_SYMLINKS`] links) or a resolution
/// longer than [`PATH_MAX`], which the kernel would refuse too.
pub fn resolve(tree: &Merged, path: &[u8]) -> Option<Vec<u8>> {
    let components = |p: &[u8]| {
        p.split(|&b| b == b'/')
            .filter(|s| !s.is_empty() && *s != b".")
            .map(<[u8]>::to_vec)
            .collect::<Vec<_>>()
    };
    let mut hops = 0;
    let mut todo: Vec<Vec<u8>> = components(path);
    todo.reverse();
    // The resolved path so far, and where each of its components starts.
    let mut cur: Vec<u8> = Vec::new();
    let mut starts: Vec<usize> = Vec::new();
    while let Some(part) = todo.pop() {
        if part == b".." {
            if let Some(at) = starts.pop() {
                cur.truncate(at.saturating_sub(1));
            }
            continue;
        }
        if !cur.is_empty() {
            cur.push(b'/');
        }
        starts.push(cur.len());
        cur.extend_from_slice(&part);
        if cur.len() > PATH_MAX {
            return None;
        }
        if let Some(e) = tree.get(&cur).filter(|e| e.kind == Kind::Symlink) {
            hops += 1;
            if hops > MAX_SYMLINKS {
                return None;
            }
            let target = e.target.as_deref().unwrap_or_default();
            if let Some(at) = starts.pop() {
                cur.truncate(at.saturating_sub(1));
            }
            if target.starts_with(b"/") {
                cur.clear();
                starts.clear();
            }
            let mut next = components(target);
            next.reverse();
            todo.extend(next);
        }
    }
    Some(cur)
}

/// Checks the measured merged tree against the SBOM's declared files: a declared file with a
/// checksum that is missing, not a regular file, or different is a mismatch (declared paths are
/// resolved through the tree's own symlinks, as `/lib` is on merged-`/usr` systems). With
/// `undeclared_executables`, every ELF executable, shared library and executable script no declared
/// path resolves to is one too. `rootfs` (the mounted root filesystem) is read only for files the
/// SBOM declares with SHA-1 alone, opened beneath it without following any symlink, and checked
/// against the measured SHA-256 so that what is compared is what was measured.
pub fn check_declared(
    declared: &Declared,
    merged: &Merged,
    rootfs: &Path,
    exempt: &Exempt,
    undeclared_executables: bool,
) -> Vec<Mismatch> {
    let mut out = Vec::new();
    let mut covered: BTreeSet<Vec<u8>> = BTreeSet::new();
    for (path, sum) in &declared.files {
        let real = resolve(merged, path).unwrap_or_else(|| path.clone());
        covered.insert(real.clone());
        let Some(sum) = sum else { continue };
        // Exemption is for the declared path: a declared file turned into a symlink into an
        // exempt directory is still compared, where the link leads.
        if exempt.matches(path) {
            continue;
        }
        let Some(a) = merged.get(&real) else {
            out.push(Mismatch::Removed {
                path: path.clone(),
                expected: format!("{sum} (declared in the SBOM)"),
            });
            continue;
        };
        if a.kind != Kind::File {
            out.push(Mismatch::Changed {
                path: path.clone(),
                what: "type",
                expected: "file (declared in the SBOM)".into(),
                actual: describe(a),
            });
            continue;
        }
        let (matches, actual) = match sum {
            DeclaredSum::Sha256(d) => (a.sha256.as_ref() == Some(d), describe(a)),
            DeclaredSum::Sha1(d) => match sha1_beneath(rootfs, &real, a) {
                Ok(s) => (&s == d, format!("sha1:{}", hex::encode(s))),
                Err(e) => (false, format!("unreadable ({e})")),
            },
        };
        if !matches {
            out.push(Mismatch::Changed {
                path: path.clone(),
                what: "content",
                expected: format!("{sum} (SBOM)"),
                actual,
            });
        }
    }
    if undeclared_executables {
        for (path, e) in merged {
            let program = e.is_elf_program() || (e.class == Class::Script && e.is_executable());
            if !program || covered.contains(path) || exempt.matches(path) {
                continue;
            }
            out.push(Mismatch::Undeclared {
                path: path.clone(),
                what: if e.is_library() {
                    "library"
                } else {
                    "executable"
                },
                actual: describe(e),
            });
        }
    }
    out.sort_by(|a, b| a.path().cmp(b.path()));
    out
}

/// SHA-1 of `rel` beneath `root`, opened with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`; refused
/// unless its SHA-256 is the measured one.
fn sha1_beneath(root: &Path, rel: &[u8], measured: &Entry) -> io::Result<[u8; 20]> {
    use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
    use sha1::Sha1;
    use std::os::fd::{AsRawFd, FromRawFd};
    use std::os::unix::ffi::OsStrExt;
    let dir = std::fs::File::open(root)?;
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
    let fd =
        openat2(dir.as_raw_fd(), std::ffi::OsStr::from_bytes(rel), how).map_err(io::Error::from)?;
    // SAFETY: openat2 returned a new descriptor that nothing else owns.
    let mut f = unsafe { std::fs::File::from_raw_fd(fd) };
    let mut s1 = Sha1::new();
    let mut s256 = Sha256::new();
    let mut buf = vec![0u8; 128 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let chunk = buf.get(..n).unwrap_or_default();
        s1.update(chunk);
        s256.update(chunk);
    }
    let d256: [u8; 32] = s256.finalize().into();
    if measured.sha256 != Some(d256) {
        return Err(io::Error::other("changed since it was measured"));
    }
    Ok(s1.finalize().into())
}

#[cfg(test)]
mod tests;

/// What an image's layers unpack to, as `vouch verify --measure` prints it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImageMeasurement {
    pub image_digest: String,
    /// Manifest order, bottom first.
    pub layers: Vec<LayerSummary>,
    /// Paths in the unpacked tree (whiteouts applied).
    pub entries: usize,
    pub files: usize,
    /// SHA-256 over the canonical line of every path of the unpacked tree, in path order (the
    /// form [`measure::Manifest`] rolls up).
    pub tree_digest: String,
}

/// One layer of an [`ImageMeasurement`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct LayerSummary {
    pub digest: String,
    pub entries: usize,
    pub files: usize,
}

/// Derives, from the layer blobs `source` holds (digests checked, cached under `state_dir`), what
/// the image unpacks to.
pub fn measure_image(
    source: &dyn BlobSource,
    image_digest: &str,
    state_dir: &Path,
    max_entries: usize,
) -> Result<ImageMeasurement, BaselineError> {
    use sha2::Digest as _;
    let layers = source
        .manifest_layers(image_digest)?
        .iter()
        .map(|l| expected_layer(source, l, state_dir, max_entries))
        .collect::<Result<Vec<_>, _>>()?;
    let expected = expected_image(&layers);
    let count_files = |entries: &mut dyn Iterator<Item = &Entry>| {
        entries.filter(|e| e.kind == measure::Kind::File).count()
    };
    let mut h = sha2::Sha256::new();
    for e in expected.entries.values() {
        h.update(measure::Manifest::canonical(e));
    }
    Ok(ImageMeasurement {
        image_digest: image_digest.to_string(),
        layers: layers
            .iter()
            .map(|l| LayerSummary {
                digest: l.digest.clone(),
                entries: l.entries.len(),
                files: count_files(&mut l.entries.iter()),
            })
            .collect(),
        entries: expected.entries.len(),
        files: count_files(&mut expected.entries.values()),
        tree_digest: format!("sha256:{}", hex::encode(h.finalize())),
    })
}
