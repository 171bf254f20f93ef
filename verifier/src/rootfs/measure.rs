//! Measuring a root filesystem: a manifest of the tree (path, type, mode, owner, size, SHA-256 of
//! regular files, symlink targets, device numbers, file capabilities) that rolls up into one
//! digest, and re-validating a manifest measured earlier by re-hashing only what changed.
//!
//! The walk never follows a symbolic link (it records the link and its target), skips nothing
//! silently (special files are recorded by type and device number), hashes each inode once (hard
//! links share the digest), walks and hashes on several threads (each hashing two files at once
//! where the CPU has the SHA extensions: one file's rounds leave the unit half idle), streams
//! every file (sparse and huge files are read, never mapped, with no size limit but time), and
//! refuses a file or directory that changed while it was read ([`MeasureError::Changed`]).
//!
//! [`revalidate`] is what git's index does: a regular file (or symlink, or directory's opaque flag)
//! whose device, inode, size, mtime and ctime are those recorded is taken from the previous manifest;
//! anything else is read again. Writing a file always sets its ctime to the current time, and ctime
//! cannot be set from user space, so a file modified after it was measured is always re-hashed. The
//! kernel's timestamps are coarse (one tick), so an entry whose ctime is within [`RACY_NS`] of the
//! previous measurement's start is re-hashed too ("racily clean" in git's words).

use std::collections::HashMap;
use std::ffi::{CString, OsStr};
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

use sha2::{Digest, Sha256};

mod sha256;

/// An entry whose ctime is less than this before the previous measurement started is re-read
/// even when its stat is unchanged: timestamps have the kernel's tick as granularity.
pub const RACY_NS: i64 = 1_000_000_000;

/// Largest `security.capability` value measured (a valid one is 20 or 24 bytes); a larger one is
/// refused.
pub const MAX_FCAPS: usize = 4096;

/// What a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Dir => "dir",
            Kind::Symlink => "symlink",
            Kind::Fifo => "fifo",
            Kind::Socket => "socket",
            Kind::CharDevice => "char",
            Kind::BlockDevice => "block",
        }
    }

    fn of(t: fs::FileType) -> Kind {
        if t.is_symlink() {
            Kind::Symlink
        } else if t.is_dir() {
            Kind::Dir
        } else if t.is_fifo() {
            Kind::Fifo
        } else if t.is_socket() {
            Kind::Socket
        } else if t.is_char_device() {
            Kind::CharDevice
        } else if t.is_block_device() {
            Kind::BlockDevice
        } else {
            Kind::File
        }
    }

    fn code(self) -> u8 {
        match self {
            Kind::File => 0,
            Kind::Dir => 1,
            Kind::Symlink => 2,
            Kind::Fifo => 3,
            Kind::Socket => 4,
            Kind::CharDevice => 5,
            Kind::BlockDevice => 6,
        }
    }

    fn from_code(c: u8) -> Option<Kind> {
        Some(match c {
            0 => Kind::File,
            1 => Kind::Dir,
            2 => Kind::Symlink,
            3 => Kind::Fifo,
            4 => Kind::Socket,
            5 => Kind::CharDevice,
            6 => Kind::BlockDevice,
            _ => return None,
        })
    }
}

/// What a regular file's first bytes say it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Class {
    /// Anything else (and every non-file).
    #[default]
    Data,
    /// ELF `ET_EXEC`: a position-dependent executable.
    ElfExecutable,
    /// ELF `ET_DYN`: a shared library or a position-independent executable (the ELF type does
    /// not tell them apart; the name does, see [`Entry::is_library`]).
    ElfDynamic,
    /// Any other ELF type (relocatable objects, kernel modules, core files).
    ElfOther,
    /// Starts with `#!`.
    Script,
}

impl Class {
    /// From the first bytes of a file (at least 18 for ELF).
    pub fn of(head: &[u8]) -> Class {
        if head.starts_with(b"#!") {
            return Class::Script;
        }
        if !head.starts_with(b"\x7fELF") {
            return Class::Data;
        }
        let (Some(&data), Some(&a), Some(&b)) = (head.get(5), head.get(16), head.get(17)) else {
            return Class::ElfOther;
        };
        let e_type = if data == 2 {
            u16::from_be_bytes([a, b])
        } else {
            u16::from_le_bytes([a, b])
        };
        match e_type {
            2 => Class::ElfExecutable,
            3 => Class::ElfDynamic,
            _ => Class::ElfOther,
        }
    }

    fn code(self) -> u8 {
        match self {
            Class::Data => 0,
            Class::ElfExecutable => 1,
            Class::ElfDynamic => 2,
            Class::ElfOther => 3,
            Class::Script => 4,
        }
    }

    fn from_code(c: u8) -> Option<Class> {
        Some(match c {
            0 => Class::Data,
            1 => Class::ElfExecutable,
            2 => Class::ElfDynamic,
            3 => Class::ElfOther,
            4 => Class::Script,
            _ => return None,
        })
    }
}

/// The stat identity of an entry when it was measured: what [`revalidate`] compares. Not part of
/// the digest (a copy of the same tree elsewhere has the same digest).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Stat {
    pub dev: u64,
    pub ino: u64,
    /// Nanoseconds since the epoch.
    pub mtime: i64,
    pub ctime: i64,
}

impl Stat {
    fn of(m: &fs::Metadata) -> Stat {
        Stat {
            dev: m.dev(),
            ino: m.ino(),
            mtime: nanos(m.mtime(), m.mtime_nsec()),
            ctime: nanos(m.ctime(), m.ctime_nsec()),
        }
    }
}

fn nanos(s: i64, ns: i64) -> i64 {
    s.saturating_mul(1_000_000_000).saturating_add(ns)
}

/// One path of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative to the root, `/`-separated, without a leading `/`; the root itself is `""`. Raw
    /// bytes: names need not be UTF-8.
    pub path: Vec<u8>,
    pub kind: Kind,
    /// Permission and special bits (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Bytes, for regular files and symlinks (the target's length); 0 otherwise.
    pub size: u64,
    /// Regular files.
    pub sha256: Option<[u8; 32]>,
    /// Symlinks: the target as stored, never resolved.
    pub target: Option<Vec<u8>>,
    /// Character and block devices: `st_rdev` (an overlay whiteout is a character device 0:0).
    pub rdev: u64,
    /// Directories: overlayfs's opaque flag (`trusted.overlay.opaque` or `user.overlay.opaque` is
    /// `y`): what lies below in lower layers is hidden.
    pub opaque: bool,
    /// Regular files: what the first bytes say.
    pub class: Class,
    /// The `security.capability` extended attribute (file capabilities, what `setcap` writes) as
    /// the kernel reports it, raw; `None` when there is none. Read on every kind of entry: the
    /// kernel honours it only on an executed regular file, but any inode can carry it.
    pub fcaps: Option<Vec<u8>>,
    /// Not in the digest.
    pub stat: Stat,
}

impl Entry {
    /// A new entry with only the identifying fields set.
    pub fn new(path: Vec<u8>, kind: Kind) -> Entry {
        Entry {
            path,
            kind,
            mode: 0,
            uid: 0,
            gid: 0,
            size: 0,
            sha256: None,
            target: None,
            rdev: 0,
            opaque: false,
            class: Class::Data,
            fcaps: None,
            stat: Stat::default(),
        }
    }

    /// An overlay whiteout: a character device 0:0.
    pub fn is_whiteout(&self) -> bool {
        self.kind == Kind::CharDevice && self.rdev == 0
    }

    /// An ELF executable or dynamic object (a shared library or a PIE).
    pub fn is_elf_program(&self) -> bool {
        self.kind == Kind::File && matches!(self.class, Class::ElfExecutable | Class::ElfDynamic)
    }

    /// An ELF dynamic object named as a shared library (`*.so`, `*.so.*`).
    pub fn is_library(&self) -> bool {
        if !(self.kind == Kind::File && self.class == Class::ElfDynamic) {
            return false;
        }
        let name = self
            .path
            .rsplit(|&b| b == b'/')
            .next()
            .unwrap_or(&self.path);
        name.ends_with(b".so") || name.windows(4).any(|w| w == b".so.")
    }

    /// Any execute bit.
    pub fn is_executable(&self) -> bool {
        self.kind == Kind::File && self.mode & 0o111 != 0
    }
}

/// `major:minor` of a Linux `dev_t`.
pub fn major_minor(rdev: u64) -> (u64, u64) {
    let major = ((rdev >> 32) & 0xffff_f000) | ((rdev >> 8) & 0xfff);
    let minor = ((rdev >> 12) & 0xffff_ff00) | (rdev & 0xff);
    (major, minor)
}

/// The tree, sorted by path, and its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub entries: Vec<Entry>,
    /// SHA-256 over [`Manifest::canonical`] of every entry, in path order.
    pub digest: [u8; 32],
    /// When the walk started, nanoseconds since the epoch (for [`revalidate`]'s racy check).
    pub measured_at: i64,
}

impl Manifest {
    /// One entry as the line the digest is over:
    /// `<kind> <mode octal> <uid>:<gid> <size> <content> <path hex>[ fcaps=<hex>]\n`, where
    /// content is the SHA-256 hex of a file, the hex of a symlink's target, `<major>:<minor>` of a
    /// device, or `-`; an opaque directory's kind is `dir+opaque`; `fcaps=` is there only for an
    /// entry with file capabilities (so a tree without any keeps the digest it had before they
    /// were measured). Hex keeps arbitrary bytes unambiguous.
    pub fn canonical(e: &Entry) -> Vec<u8> {
        let mut out = Vec::with_capacity(160);
        write_canonical(e, &mut out);
        out
    }

    /// The digest over `entries` (which must be sorted by path).
    pub fn roll_up(entries: &[Entry]) -> [u8; 32] {
        let mut h = Sha256::new();
        let mut line = Vec::with_capacity(256);
        for e in entries {
            line.clear();
            write_canonical(e, &mut line);
            h.update(&line);
        }
        h.finalize().into()
    }

    pub fn digest_hex(&self) -> String {
        format!("sha256:{}", hex::encode(self.digest))
    }

    /// The entry at `path` (relative, as recorded).
    pub fn get(&self, path: &[u8]) -> Option<&Entry> {
        find(&self.entries, path)
    }

    /// Regular files.
    pub fn files(&self) -> usize {
        self.entries.iter().filter(|e| e.kind == Kind::File).count()
    }

    /// A compact binary form for caches: see [`write_entries`]; a trailing SHA-256 catches a
    /// damaged file.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.entries.len() * 128);
        out.extend_from_slice(MANIFEST_MAGIC);
        out.extend_from_slice(&self.measured_at.to_le_bytes());
        write_entries(&mut out, &self.entries);
        let sum: [u8; 32] = Sha256::digest(&out).into();
        out.extend_from_slice(&sum);
        out
    }

    /// Reads [`Manifest::encode`]'s output back, refusing anything malformed, unsorted or over
    /// `max_entries`; the digest is recomputed, never read.
    pub fn decode(bytes: &[u8], max_entries: usize) -> Result<Manifest, DecodeError> {
        let body = checked_body(bytes, MANIFEST_MAGIC)?;
        let mut r = body;
        let measured_at = i64::from_le_bytes(take_array(&mut r)?);
        let entries = read_entries(&mut r, max_entries)?;
        if !r.is_empty() {
            return Err(DecodeError("trailing bytes"));
        }
        let digest = Manifest::roll_up(&entries);
        Ok(Manifest {
            entries,
            digest,
            measured_at,
        })
    }
}

/// Appends [`Manifest::canonical`] of `e` to `out`, without allocating.
fn write_canonical(e: &Entry, out: &mut Vec<u8>) {
    use std::io::Write;
    let kind = if e.kind == Kind::Dir && e.opaque {
        "dir+opaque"
    } else {
        e.kind.as_str()
    };
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{} {:o} {}:{} {} ", kind, e.mode, e.uid, e.gid, e.size);
    match (&e.sha256, &e.target, e.kind) {
        (Some(d), _, _) => push_hex(out, d),
        (None, Some(t), _) => push_hex(out, t),
        (None, None, Kind::CharDevice | Kind::BlockDevice) => {
            let (major, minor) = major_minor(e.rdev);
            let _ = write!(out, "{major}:{minor}");
        }
        (None, None, _) => out.push(b'-'),
    }
    out.push(b' ');
    push_hex(out, &e.path);
    if let Some(caps) = &e.fcaps {
        out.extend_from_slice(b" fcaps=");
        push_hex(out, caps);
    }
    out.push(b'\n');
}

fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 0xf)]);
    }
}

/// The entry at `path` in entries sorted by path.
pub fn find<'a>(entries: &'a [Entry], path: &[u8]) -> Option<&'a Entry> {
    entries
        .binary_search_by(|e| e.path.as_slice().cmp(path))
        .ok()
        .and_then(|i| entries.get(i))
}

// Version 2 added file capabilities: a version 1 cache is measured again, never read as a tree
// without any.
const MANIFEST_MAGIC: &[u8; 8] = b"VOUCHMF2";
/// Longest path or symlink target a cache may hold.
const MAX_NAME: usize = 1 << 16;

/// A cache file that is not what [`Manifest::encode`] (or [`write_entries`]) wrote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed cache: {0}")]
pub struct DecodeError(pub &'static str);

/// Checks `magic` at the start and the trailing SHA-256; the bytes in between.
pub fn checked_body<'a>(bytes: &'a [u8], magic: &[u8]) -> Result<&'a [u8], DecodeError> {
    if bytes.len() < magic.len() + 32 || !bytes.starts_with(magic) {
        return Err(DecodeError("bad header"));
    }
    let (content, sum) = bytes.split_at(bytes.len() - 32);
    if Sha256::digest(content).as_slice() != sum {
        return Err(DecodeError("checksum mismatch"));
    }
    Ok(content.get(magic.len()..).unwrap_or_default())
}

/// Appends entries: a u32 count, then per entry (little-endian) path (u32 length, bytes), kind,
/// mode, uid, gid, size, rdev, opaque, class, dev, ino, mtime, ctime, SHA-256 (flag, 32 bytes),
/// target (flag, u32 length, bytes), file capabilities (flag, u32 length, bytes).
pub fn write_entries(out: &mut Vec<u8>, entries: &[Entry]) {
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for e in entries {
        out.extend_from_slice(&(e.path.len() as u32).to_le_bytes());
        out.extend_from_slice(&e.path);
        out.push(e.kind.code());
        for v in [e.mode, e.uid, e.gid] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for v in [e.size, e.rdev] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.push(u8::from(e.opaque));
        out.push(e.class.code());
        for v in [e.stat.dev, e.stat.ino] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for v in [e.stat.mtime, e.stat.ctime] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        match &e.sha256 {
            Some(d) => {
                out.push(1);
                out.extend_from_slice(d);
            }
            None => out.push(0),
        }
        for field in [&e.target, &e.fcaps] {
            match field {
                Some(t) => {
                    out.push(1);
                    out.extend_from_slice(&(t.len() as u32).to_le_bytes());
                    out.extend_from_slice(t);
                }
                None => out.push(0),
            }
        }
    }
}

fn take<'a>(r: &mut &'a [u8], n: usize) -> Result<&'a [u8], DecodeError> {
    if r.len() < n {
        return Err(DecodeError("truncated"));
    }
    let (head, tail) = r.split_at(n);
    *r = tail;
    Ok(head)
}

fn take_array<const N: usize>(r: &mut &[u8]) -> Result<[u8; N], DecodeError> {
    let mut a = [0u8; N];
    a.copy_from_slice(take(r, N)?);
    Ok(a)
}

/// A u32 length and that many bytes, at most 64 KiB.
pub fn take_bytes(r: &mut &[u8]) -> Result<Vec<u8>, DecodeError> {
    let n = u32::from_le_bytes(take_array(r)?) as usize;
    if n > MAX_NAME {
        return Err(DecodeError("name too long"));
    }
    Ok(take(r, n)?.to_vec())
}

/// Reads [`write_entries`]' output: at most `max` entries, strictly sorted by path.
pub fn read_entries(r: &mut &[u8], max: usize) -> Result<Vec<Entry>, DecodeError> {
    let count = u32::from_le_bytes(take_array(r)?) as usize;
    if count > max {
        return Err(DecodeError("too many entries"));
    }
    // Every entry takes at least 80 bytes: a count beyond that is a lie, not an allocation.
    let mut entries = Vec::with_capacity(count.min(r.len() / 80));
    for _ in 0..count {
        let path = take_bytes(r)?;
        let kind = Kind::from_code(take_array::<1>(r)?[0]).ok_or(DecodeError("bad kind"))?;
        let mode = u32::from_le_bytes(take_array(r)?);
        let uid = u32::from_le_bytes(take_array(r)?);
        let gid = u32::from_le_bytes(take_array(r)?);
        let size = u64::from_le_bytes(take_array(r)?);
        let rdev = u64::from_le_bytes(take_array(r)?);
        let opaque = match take_array::<1>(r)?[0] {
            0 => false,
            1 => true,
            _ => return Err(DecodeError("bad flag")),
        };
        let class = Class::from_code(take_array::<1>(r)?[0]).ok_or(DecodeError("bad class"))?;
        let stat = Stat {
            dev: u64::from_le_bytes(take_array(r)?),
            ino: u64::from_le_bytes(take_array(r)?),
            mtime: i64::from_le_bytes(take_array(r)?),
            ctime: i64::from_le_bytes(take_array(r)?),
        };
        let sha256 = match take_array::<1>(r)?[0] {
            0 => None,
            1 => Some(take_array::<32>(r)?),
            _ => return Err(DecodeError("bad flag")),
        };
        let target = match take_array::<1>(r)?[0] {
            0 => None,
            1 => Some(take_bytes(r)?),
            _ => return Err(DecodeError("bad flag")),
        };
        let fcaps = match take_array::<1>(r)?[0] {
            0 => None,
            1 => {
                let caps = take_bytes(r)?;
                if caps.len() > MAX_FCAPS {
                    return Err(DecodeError("file capabilities too long"));
                }
                Some(caps)
            }
            _ => return Err(DecodeError("bad flag")),
        };
        if (kind == Kind::File) != sha256.is_some() || (kind == Kind::Symlink) != target.is_some() {
            return Err(DecodeError("inconsistent entry"));
        }
        if entries.last().is_some_and(|p: &Entry| p.path >= path) {
            return Err(DecodeError("entries not sorted"));
        }
        entries.push(Entry {
            path,
            kind,
            mode: mode & 0o7777,
            uid,
            gid,
            size,
            sha256,
            target,
            rdev,
            opaque,
            class,
            fcaps,
            stat,
        });
    }
    Ok(entries)
}

/// Why a tree could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    #[error("cannot measure {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path} changed while it was measured")]
    Changed { path: PathBuf },
    #[error("{root} has more than {limit} entries")]
    TooMany { root: PathBuf, limit: usize },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> MeasureError + '_ {
    move |source| MeasureError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Bounds on a walk.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Walking and hashing threads.
    pub threads: usize,
    /// Entries at most; a larger tree is refused.
    pub max_entries: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
                .clamp(1, 8),
            max_entries: 2_000_000,
        }
    }
}

/// What [`revalidate`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Regular files read and hashed.
    pub rehashed: usize,
    /// Regular files taken from the previous manifest.
    pub unchanged: usize,
}

/// Measures the tree under `root` (which must be a directory, and is not followed if a symlink).
pub fn measure(root: &Path, options: &Options) -> Result<Manifest, MeasureError> {
    revalidate_with(root, None, options).map(|(m, _)| m)
}

/// Measures the tree under `root` again, re-hashing only the regular files whose device, inode,
/// size, mtime or ctime differ from `previous` (a manifest of the same tree). Every entry is
/// lstat'ed: added, removed and retyped paths, and changed modes and owners, are all seen.
pub fn revalidate(
    root: &Path,
    previous: &Manifest,
    options: &Options,
) -> Result<(Manifest, Stats), MeasureError> {
    revalidate_with(root, Some(previous), options)
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn revalidate_with(
    root: &Path,
    previous: Option<&Manifest>,
    options: &Options,
) -> Result<(Manifest, Stats), MeasureError> {
    let measured_at = now_ns();
    let mut entries = walk(root, previous, options)?;
    // Sorted through indices: entries are large, moving them around in a sort costs more than
    // comparing their paths.
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_unstable_by(|&a, &b| {
        let path = |i: usize| entries.get(i).map(|e| e.path.as_slice());
        path(a).cmp(&path(b))
    });
    permute(&mut entries, &mut order);
    let stats = hash_all(root, &mut entries, options.threads.max(1))?;
    // The digest is a function of the canonical fields alone: when they are all as before (the
    // common case of a re-validated layer), it is the previous digest.
    let digest = match previous {
        Some(p)
            if p.entries.len() == entries.len()
                && p.entries
                    .iter()
                    .zip(&entries)
                    .all(|(a, b)| same_canonical(a, b)) =>
        {
            p.digest
        }
        _ => Manifest::roll_up(&entries),
    };
    Ok((
        Manifest {
            entries,
            digest,
            measured_at,
        },
        stats,
    ))
}

/// Puts `items[order[k]]` at `k` for every `k`, in place, cycle by cycle: no second vector of
/// a large tree's entries to allocate and fault in. `order` must be a permutation of the
/// indices; it is used up.
fn permute<T>(items: &mut [T], order: &mut [usize]) {
    for start in 0..order.len() {
        let mut k = start;
        while let Some(&j) = order.get(k) {
            if let Some(o) = order.get_mut(k) {
                *o = k;
            }
            if j == start || j == k {
                break;
            }
            items.swap(k, j);
            k = j;
        }
    }
}

/// Equal in every field [`Manifest::canonical`] covers.
fn same_canonical(a: &Entry, b: &Entry) -> bool {
    a.path == b.path
        && a.kind == b.kind
        && a.mode == b.mode
        && a.uid == b.uid
        && a.gid == b.gid
        && a.size == b.size
        && a.sha256 == b.sha256
        && a.target == b.target
        && a.rdev == b.rdev
        && a.opaque == b.opaque
        && a.fcaps == b.fcaps
}

/// A directory to read: where, and what it looked like when its parent was read.
struct DirJob {
    path: PathBuf,
    rel: Vec<u8>,
    meta: fs::Metadata,
}

struct Queue {
    jobs: Vec<DirJob>,
    /// Jobs taken but not finished.
    busy: usize,
}

/// Every entry of the tree, files unhashed unless taken from `previous`.
fn walk(
    root: &Path,
    previous: Option<&Manifest>,
    options: &Options,
) -> Result<Vec<Entry>, MeasureError> {
    let meta = fs::symlink_metadata(root).map_err(io_error(root))?;
    if !meta.is_dir() {
        return Err(MeasureError::Io {
            path: root.to_path_buf(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "not a directory"),
        });
    }
    let reuse = |e: &mut Entry| -> bool {
        let Some(prev) = previous else { return false };
        let Some(p) = prev.get(&e.path) else {
            return false;
        };
        let same = p.kind == e.kind
            && p.size == e.size
            && p.stat == e.stat
            && p.stat.ctime < prev.measured_at.saturating_sub(RACY_NS);
        // Setting or removing an extended attribute moves the ctime too: file capabilities are
        // taken over only with everything else.
        if same {
            e.sha256 = p.sha256;
            e.target.clone_from(&p.target);
            e.opaque = p.opaque;
            e.class = p.class;
            e.fcaps.clone_from(&p.fcaps);
        }
        same
    };
    let root_entry = entry_of(root, Vec::new(), &meta, &reuse)?;
    let count = AtomicUsize::new(1);
    let stop = AtomicBool::new(false);
    let failure: Mutex<Option<MeasureError>> = Mutex::new(None);
    let queue = Mutex::new(Queue {
        jobs: vec![DirJob {
            path: root.to_path_buf(),
            rel: Vec::new(),
            meta,
        }],
        busy: 0,
    });
    let ready = Condvar::new();
    let results: Mutex<Vec<Vec<Entry>>> = Mutex::new(vec![vec![root_entry]]);
    let fail = |e: MeasureError| {
        if let Ok(mut f) = failure.lock() {
            f.get_or_insert(e);
        }
        stop.store(true, Ordering::SeqCst);
        ready.notify_all();
    };
    std::thread::scope(|scope| {
        for _ in 0..options.threads.max(1) {
            scope.spawn(|| {
                let mut mine = Vec::with_capacity(
                    previous.map_or(0, |p| p.entries.len() / options.threads.max(1) + 16),
                );
                loop {
                    let job = {
                        let Ok(mut q) = queue.lock() else { break };
                        loop {
                            if stop.load(Ordering::SeqCst) {
                                break None;
                            }
                            if let Some(job) = q.jobs.pop() {
                                q.busy += 1;
                                break Some(job);
                            }
                            if q.busy == 0 {
                                break None;
                            }
                            match ready.wait(q) {
                                Ok(g) => q = g,
                                Err(_) => return,
                            }
                        }
                    };
                    let Some(job) = job else {
                        ready.notify_all();
                        break;
                    };
                    let mut subdirs = Vec::new();
                    let outcome = read_dir(&job, &mut mine, &mut subdirs, &reuse, &count, options);
                    let Ok(mut q) = queue.lock() else { break };
                    q.busy -= 1;
                    match outcome {
                        Ok(()) => {
                            q.jobs.extend(subdirs);
                            ready.notify_all();
                        }
                        Err(e) => {
                            drop(q);
                            fail(e);
                            break;
                        }
                    }
                }
                if let Ok(mut r) = results.lock() {
                    r.push(mine);
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().ok().flatten() {
        return Err(e);
    }
    let mut parts = results.into_inner().map_err(|_| MeasureError::Io {
        path: root.to_path_buf(),
        source: io::Error::other("a walking thread failed"),
    })?;
    // The others appended to the largest part, which often has the room already: no new vector
    // of the whole tree.
    parts.sort_unstable_by_key(|p| std::cmp::Reverse(p.len()));
    let mut parts = parts.into_iter();
    let mut entries = parts.next().unwrap_or_default();
    entries.reserve(count.load(Ordering::SeqCst).saturating_sub(entries.len()));
    for p in parts {
        entries.extend(p);
    }
    Ok(entries)
}

/// Reads one directory: its children's entries into `out`, its subdirectories into `subdirs`.
/// The directory must be the one its parent listed, and unchanged after it was read.
fn read_dir(
    job: &DirJob,
    out: &mut Vec<Entry>,
    subdirs: &mut Vec<DirJob>,
    reuse: &(dyn Fn(&mut Entry) -> bool + Sync),
    count: &AtomicUsize,
    options: &Options,
) -> Result<(), MeasureError> {
    let changed = || MeasureError::Changed {
        path: job.path.clone(),
    };
    let same_dir = |m: &fs::Metadata| {
        m.is_dir() && Stat::of(m) == Stat::of(&job.meta) && m.mode() == job.meta.mode()
    };
    // The directory is opened without following a symlink and must be the one the parent listed
    // (device and inode): a path component swapped for a symlink meanwhile opens something else,
    // which is refused. It is then listed through that descriptor, never by its path again.
    let dir = match fs::File::options()
        .read(true)
        .custom_flags(nix::libc::O_DIRECTORY | nix::libc::O_NOFOLLOW)
        .open(&job.path)
    {
        Ok(d) => d,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) || e.raw_os_error() == Some(nix::libc::ELOOP) =>
        {
            return Err(changed())
        }
        Err(e) => return Err(io_error(&job.path)(e)),
    };
    match dir.metadata() {
        Ok(m) if m.dev() == job.meta.dev() && m.ino() == job.meta.ino() => {}
        Ok(_) => return Err(changed()),
        Err(e) => return Err(io_error(&job.path)(e)),
    }
    let by_fd = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    let listing = match fs::read_dir(&by_fd) {
        Ok(l) => l,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(changed()),
        Err(e) => return Err(io_error(&job.path)(e)),
    };
    for child in listing {
        let child = child.map_err(io_error(&job.path))?;
        let n = count.fetch_add(1, Ordering::Relaxed);
        if n >= options.max_entries {
            return Err(MeasureError::TooMany {
                root: job.path.clone(),
                limit: options.max_entries,
            });
        }
        let name = child.file_name();
        // fstatat on the directory's descriptor: no path resolution per entry.
        let meta = match child.metadata() {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(changed()),
            Err(e) => return Err(io_error(&job.path)(e)),
        };
        let mut rel = Vec::with_capacity(job.rel.len() + 1 + name.len());
        rel.extend_from_slice(&job.rel);
        if !rel.is_empty() {
            rel.push(b'/');
        }
        rel.extend_from_slice(name.as_bytes());
        let is_dir = meta.is_dir();
        // Regular files are opened later by their full path; anything else is read (symlink
        // target, opaque flag, file capabilities) by its path now.
        let path = if meta.is_file() {
            PathBuf::new()
        } else {
            job.path.join(&name)
        };
        let entry = entry_of(&path, rel, &meta, reuse)?;
        if is_dir {
            subdirs.push(DirJob {
                path,
                rel: entry.path.clone(),
                meta,
            });
        }
        out.push(entry);
    }
    // Compared with what the parent's listing saw: a directory changed (an entry added, removed
    // or renamed) or replaced since then is refused. One check after reading covers both.
    let after = match fs::symlink_metadata(&job.path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(changed()),
        Err(e) => return Err(io_error(&job.path)(e)),
    };
    if !same_dir(&after) {
        return Err(changed());
    }
    Ok(())
}

/// The entry for `path` from its lstat, its content taken from the previous manifest when
/// `reuse` says it is unchanged; regular files are hashed (and their capabilities read) later.
fn entry_of(
    path: &Path,
    rel: Vec<u8>,
    meta: &fs::Metadata,
    reuse: &(dyn Fn(&mut Entry) -> bool + Sync),
) -> Result<Entry, MeasureError> {
    let kind = Kind::of(meta.file_type());
    let mut e = Entry::new(rel, kind);
    e.mode = meta.mode() & 0o7777;
    e.uid = meta.uid();
    e.gid = meta.gid();
    e.stat = Stat::of(meta);
    match kind {
        Kind::File => {
            e.size = meta.size();
            reuse(&mut e);
        }
        Kind::Symlink => {
            e.size = meta.size();
            if !reuse(&mut e) {
                let target = fs::read_link(path).map_err(io_error(path))?;
                let bytes = target.into_os_string().into_vec();
                if bytes.len() as u64 != e.size {
                    return Err(MeasureError::Changed {
                        path: path.to_path_buf(),
                    });
                }
                e.target = Some(bytes);
                e.fcaps = path_fcaps(path)?;
            }
        }
        Kind::Dir => {
            if !reuse(&mut e) {
                e.opaque = is_opaque(path)?;
                e.fcaps = path_fcaps(path)?;
            }
        }
        Kind::CharDevice | Kind::BlockDevice => {
            e.rdev = meta.rdev();
            e.fcaps = path_fcaps(path)?;
        }
        Kind::Fifo | Kind::Socket => e.fcaps = path_fcaps(path)?,
    }
    Ok(e)
}

const FCAPS_NAME: &[u8] = b"security.capability\0";

/// `security.capability` of `path`, not followed if a symlink.
fn path_fcaps(path: &Path) -> Result<Option<Vec<u8>>, MeasureError> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| MeasureError::Io {
        path: path.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "a NUL in the path"),
    })?;
    let mut buf = [0u8; MAX_FCAPS];
    // SAFETY: `c` and the name are NUL-terminated; `buf` is writable for its length.
    let n = unsafe {
        nix::libc::lgetxattr(
            c.as_ptr(),
            FCAPS_NAME.as_ptr().cast(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    let read = usize::try_from(n).map_err(|_| io::Error::last_os_error());
    fcaps_outcome(read, &buf, path)
}

/// `security.capability` of an open file (`path` only for an error).
fn fd_fcaps(f: &File, path: &dyn Fn() -> PathBuf) -> Result<Option<Vec<u8>>, MeasureError> {
    let mut buf = [0u8; MAX_FCAPS];
    // SAFETY: the descriptor is open for the call; the name is NUL-terminated; `buf` is writable
    // for its length.
    let n = unsafe {
        nix::libc::fgetxattr(
            f.as_raw_fd(),
            FCAPS_NAME.as_ptr().cast(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    match usize::try_from(n) {
        Ok(len) => Ok(Some(buf.get(..len).unwrap_or_default().to_vec())),
        Err(_) => fcaps_outcome(Err(io::Error::last_os_error()), &buf, &path()),
    }
}

/// What a `getxattr` of `security.capability` into `buf` means: the value's length, or why it
/// failed. A value the kernel cannot present (malformed, or a root id outside this namespace)
/// fails the measurement: it is not silently "no capabilities".
fn fcaps_outcome(
    read: io::Result<usize>,
    buf: &[u8],
    path: &Path,
) -> Result<Option<Vec<u8>>, MeasureError> {
    let e = match read {
        Ok(len) => return Ok(Some(buf.get(..len).unwrap_or_default().to_vec())),
        Err(e) => e,
    };
    match e.raw_os_error() {
        Some(nix::libc::ENODATA) | Some(nix::libc::ENOTSUP) => Ok(None),
        Some(nix::libc::ENOENT) => Err(MeasureError::Changed {
            path: path.to_path_buf(),
        }),
        Some(nix::libc::ERANGE) => Err(io_error(path)(io::Error::other(format!(
            "security.capability is larger than {MAX_FCAPS} bytes"
        )))),
        _ => Err(io_error(path)(io::Error::other(format!(
            "cannot read security.capability: {e}"
        )))),
    }
}

/// overlayfs's opaque flag on a directory (not followed if a symlink).
fn is_opaque(path: &Path) -> Result<bool, MeasureError> {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return Ok(false);
    };
    for name in [&b"trusted.overlay.opaque\0"[..], b"user.overlay.opaque\0"] {
        let mut buf = [0u8; 8];
        // SAFETY: `c` and `name` are NUL-terminated; `buf` is writable for its length.
        let n = unsafe {
            nix::libc::lgetxattr(
                c.as_ptr(),
                name.as_ptr().cast(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n == 1 && buf[0] == b'y' {
            return Ok(true);
        }
        if n < 0 {
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(nix::libc::ENODATA)
                | Some(nix::libc::ENOTSUP)
                | Some(nix::libc::ERANGE)
                | Some(nix::libc::EPERM) => {}
                Some(nix::libc::ENOENT) => {
                    return Err(MeasureError::Changed {
                        path: path.to_path_buf(),
                    })
                }
                _ => return Err(io_error(path)(e)),
            }
        }
    }
    Ok(false)
}

/// Hashes every regular file without a digest on `threads` threads, each inode once.
fn hash_all(root: &Path, entries: &mut [Entry], threads: usize) -> Result<Stats, MeasureError> {
    let mut stats = Stats::default();
    // Hard links: the first path of an inode is hashed; the others take its digest.
    let mut first: HashMap<(u64, u64), usize> = HashMap::new();
    let mut work = Vec::new();
    let mut links = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if e.kind != Kind::File {
            continue;
        }
        if e.sha256.is_some() {
            stats.unchanged += 1;
            continue;
        }
        stats.rehashed += 1;
        match first.get(&(e.stat.dev, e.stat.ino)) {
            Some(&j) => links.push((i, j)),
            None => {
                first.insert((e.stat.dev, e.stat.ino), i);
                work.push(i);
            }
        }
    }
    if work.is_empty() {
        return Ok(stats);
    }
    let shared: &[Entry] = entries;
    let results: Mutex<Vec<(usize, Hashed)>> = Mutex::new(Vec::new());
    let next = AtomicUsize::new(0);
    let failure: Mutex<Option<MeasureError>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads.min(work.len()) {
            scope.spawn(|| {
                let mut mine = Vec::new();
                let claim = || {
                    let &i = work.get(next.fetch_add(1, Ordering::Relaxed))?;
                    Some((i, shared.get(i)?))
                };
                let backend = sha256::Backend::detect();
                let mut hasher = Hasher::new(root, backend, backend.lanes());
                if let Err(err) = hasher.run(claim, &mut mine) {
                    if let Ok(mut f) = failure.lock() {
                        f.get_or_insert(err);
                    }
                    // Stop the others early.
                    next.store(work.len(), Ordering::Relaxed);
                }
                if let Ok(mut r) = results.lock() {
                    r.extend(mine);
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().ok().flatten() {
        return Err(e);
    }
    let results = results.into_inner().map_err(|_| MeasureError::Io {
        path: root.to_path_buf(),
        source: io::Error::other("a hashing thread failed"),
    })?;
    for (i, h) in results {
        if let Some(e) = entries.get_mut(i) {
            e.sha256 = Some(h.sha256);
            e.class = h.class;
            e.fcaps = h.fcaps;
        }
    }
    // Extended attributes belong to the inode: a hard link has the capabilities of its first.
    for (i, j) in links {
        let got = entries.get(j).map(|e| (e.sha256, e.class, e.fcaps.clone()));
        if let (Some((d, c, caps)), Some(e)) = (got, entries.get_mut(i)) {
            e.sha256 = d;
            e.class = c;
            e.fcaps = caps;
        }
    }
    if let Some(e) = entries
        .iter()
        .find(|e| e.kind == Kind::File && e.sha256.is_none())
    {
        // Never left unhashed: a missing digest would read as "not a file".
        return Err(MeasureError::Io {
            path: root.join(OsStr::from_bytes(&e.path)),
            source: io::Error::other("not hashed"),
        });
    }
    Ok(stats)
}

/// What reading one regular file gives.
struct Hashed {
    sha256: [u8; 32],
    class: Class,
    fcaps: Option<Vec<u8>>,
}

/// Bytes read at once into a lane's buffer: whole hash blocks, and few enough that what the
/// kernel copied in is still in the core's cache when it is hashed (from 32 KiB to 1 MiB the
/// speed is the same; less is less memory to fault in).
///
/// Files are read, not mapped. Hashing straight from a read-only mapping of the page cache (tried
/// for files of 64 KiB and more) saved the copy but hashed from memory instead of from the core's
/// cache, at about 2.1 GB/s per core rather than 3.3, and was no faster on the rootfs benchmark.
/// A mapping would also turn a file truncated during the measurement into a SIGBUS that kills
/// the process: a refusal still (the shim denies a start whose gate process died, in audit mode
/// too), but a less clear one than [`MeasureError::Changed`].
const CHUNK: usize = 64 * 1024;

/// One thread's share of the hashing: up to one file per hash lane open at once, their blocks
/// hashed together (see [`sha256`]).
struct Hasher<'a> {
    root: &'a Path,
    backend: sha256::Backend,
    /// The directory of the file opened last and its path relative to the root: files come in
    /// path order, so most are opened relative to it, without resolving their whole path again.
    dir: Option<(&'a [u8], File)>,
    lanes: Vec<Lane<'a>>,
}

struct Lane<'a> {
    buf: Vec<u8>,
    file: Option<Hashing<'a>>,
}

/// A regular file being hashed: checked to be the one the walk saw, read up to its size.
struct Hashing<'a> {
    at: usize,
    entry: &'a Entry,
    file: File,
    state: sha256::State,
    class: Class,
    /// Bytes read so far.
    read: u64,
    /// Read but not hashed yet: `buf[start..end]` of the lane.
    start: usize,
    end: usize,
}

impl<'a> Hasher<'a> {
    fn new(root: &'a Path, backend: sha256::Backend, lanes: usize) -> Hasher<'a> {
        Hasher {
            root,
            backend,
            dir: None,
            lanes: (0..lanes.max(1))
                .map(|_| Lane {
                    buf: vec![0u8; CHUNK],
                    file: None,
                })
                .collect(),
        }
    }

    /// Hashes the files `next` gives (index in the entries, entry) until it gives none, into
    /// `out`.
    fn run(
        &mut self,
        mut next: impl FnMut() -> Option<(usize, &'a Entry)>,
        out: &mut Vec<(usize, Hashed)>,
    ) -> Result<(), MeasureError> {
        loop {
            // Every lane gets at least a block to hash, finishing files and opening the next
            // ones as it goes, or stays empty once there is no file left.
            for lane in &mut self.lanes {
                loop {
                    let Some(h) = lane.file.as_mut() else {
                        match next() {
                            Some((at, e)) => {
                                lane.file = Some(open_file(self.root, &mut self.dir, at, e)?)
                            }
                            None => break,
                        }
                        continue;
                    };
                    if h.end - h.start >= sha256::BLOCK {
                        break;
                    }
                    if h.read < h.entry.size {
                        h.fill(self.root, &mut lane.buf)?;
                        continue;
                    }
                    if let Some(h) = lane.file.take() {
                        let at = h.at;
                        out.push((at, h.finish(self.root, self.backend, &lane.buf)?));
                    }
                }
            }
            // Each lane's state with its unhashed bytes: `compress` pairs them, so a state can
            // never be given another lane's data or be left behind.
            let mut group = Vec::with_capacity(self.lanes.len());
            for lane in &mut self.lanes {
                if let Some(h) = &mut lane.file {
                    let pending = lane.buf.get(h.start..h.end).unwrap_or_default();
                    group.push((&mut h.state, pending));
                }
            }
            if group.is_empty() {
                return Ok(());
            }
            let blocks = sha256::compress(self.backend, &mut group);
            drop(group);
            for h in self.lanes.iter_mut().filter_map(|l| l.file.as_mut()) {
                h.start += blocks * sha256::BLOCK;
            }
        }
    }
}

fn full_path(root: &Path, e: &Entry) -> PathBuf {
    root.join(OsStr::from_bytes(&e.path))
}

/// Opens the regular file of `e` without following a symlink, through its directory (opened
/// once for the files after it in the same directory), and checks it is the file the walk saw.
fn open_file<'a>(
    root: &Path,
    dir: &mut Option<(&'a [u8], File)>,
    at: usize,
    e: &'a Entry,
) -> Result<Hashing<'a>, MeasureError> {
    let changed = || MeasureError::Changed {
        path: full_path(root, e),
    };
    let (parent, name) = match e.path.iter().rposition(|&b| b == b'/') {
        Some(i) => (
            e.path.get(..i).unwrap_or_default(),
            e.path.get(i + 1..).unwrap_or_default(),
        ),
        None => (&[][..], e.path.as_slice()),
    };
    let cached = match dir {
        Some((p, d)) if *p == parent => d,
        _ => {
            // A directory swapped for a symlink since the walk is not followed; one swapped for
            // another directory is caught by the file's identity below.
            let path = root.join(OsStr::from_bytes(parent));
            let d = match File::options()
                .read(true)
                .custom_flags(nix::libc::O_PATH | nix::libc::O_DIRECTORY | nix::libc::O_NOFOLLOW)
                .open(&path)
            {
                Ok(d) => d,
                Err(err)
                    if matches!(
                        err.kind(),
                        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                    ) || err.raw_os_error() == Some(nix::libc::ELOOP) =>
                {
                    return Err(changed())
                }
                Err(err) => return Err(io_error(&path)(err)),
            };
            &mut dir.insert((parent, d)).1
        }
    };
    let flags = nix::fcntl::OFlag::O_RDONLY
        | nix::fcntl::OFlag::O_NOFOLLOW
        | nix::fcntl::OFlag::O_NOCTTY
        | nix::fcntl::OFlag::O_NONBLOCK
        | nix::fcntl::OFlag::O_CLOEXEC;
    let open = |flags| {
        nix::fcntl::openat(
            Some(cached.as_raw_fd()),
            OsStr::from_bytes(name),
            flags,
            nix::sys::stat::Mode::empty(),
        )
    };
    // Measuring reads every file of a fresh layer: without O_NOATIME each read would write the
    // file's access time. It needs the file's owner or CAP_FOWNER; without them, open as usual.
    let opened = match open(flags | nix::fcntl::OFlag::O_NOATIME) {
        Err(nix::errno::Errno::EPERM) => open(flags),
        other => other,
    };
    let fd = match opened {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ENOENT | nix::errno::Errno::ELOOP) => return Err(changed()),
        Err(err) => return Err(io_error(&full_path(root, e))(err.into())),
    };
    // SAFETY: openat returned a new descriptor that nothing else owns.
    let file = unsafe { File::from_raw_fd(fd) };
    let before = file
        .metadata()
        .map_err(|err| io_error(&full_path(root, e))(err))?;
    if !before.is_file() || Stat::of(&before) != e.stat || before.size() != e.size {
        return Err(changed());
    }
    Ok(Hashing {
        at,
        entry: e,
        file,
        state: sha256::State::new(),
        class: Class::Data,
        read: 0,
        start: 0,
        end: 0,
    })
}

impl Hashing<'_> {
    /// Reads the next chunk of the file (up to its size measured by the walk) after what is
    /// left unhashed in `buf`.
    fn fill(&mut self, root: &Path, buf: &mut [u8]) -> Result<(), MeasureError> {
        buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        let left = self.entry.size - self.read;
        let want = self.end
            + usize::try_from(left)
                .unwrap_or(usize::MAX)
                .min(buf.len() - self.end);
        let first = self.read == 0;
        while self.end < want {
            let n = match self
                .file
                .read(buf.get_mut(self.end..want).unwrap_or_default())
            {
                // Shorter than the walk saw.
                Ok(0) => {
                    return Err(MeasureError::Changed {
                        path: full_path(root, self.entry),
                    })
                }
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(io_error(&full_path(root, self.entry))(err)),
            };
            self.end += n;
            self.read += n as u64;
        }
        if first {
            self.class = Class::of(buf.get(..self.end.min(18)).unwrap_or_default());
        }
        Ok(())
    }

    /// The digest of the file, all read, the rest of it in `buf`; refused if the file changed
    /// meanwhile. A file that grew is refused too: its size is not the walk's any more.
    fn finish(
        self,
        root: &Path,
        backend: sha256::Backend,
        buf: &[u8],
    ) -> Result<Hashed, MeasureError> {
        let path = || full_path(root, self.entry);
        let rest = buf.get(self.start..self.end).unwrap_or_default();
        let sha256 = self.state.finish(backend, rest);
        // Read before the final stat: capabilities set meanwhile move the ctime, which is refused.
        let fcaps = fd_fcaps(&self.file, &path)?;
        let after = self.file.metadata().map_err(|err| io_error(&path())(err))?;
        if self.read != self.entry.size
            || after.size() != self.entry.size
            || Stat::of(&after) != self.entry.stat
        {
            return Err(MeasureError::Changed { path: path() });
        }
        Ok(Hashed {
            sha256,
            class: self.class,
            fcaps,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {

    #[test]
    fn measuring_leaves_access_times_as_they_were() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("data.bin");
        std::fs::write(&file, vec![7u8; 100_000]).unwrap();
        // An access time older than the modification time: reading updates it under `relatime`.
        let old = nix::sys::time::TimeSpec::new(1_000, 0);
        let now = nix::sys::time::TimeSpec::new(2_000_000_000, 0);
        nix::sys::stat::utimensat(
            None,
            &file,
            &old,
            &now,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();
        measure(dir.path(), &Options::default()).unwrap();
        assert_eq!(std::fs::metadata(&file).unwrap().atime(), 1_000);
    }

    use super::*;
    use std::os::unix::fs::symlink;

    /// `cap_net_raw+ep` as `setcap` writes it: a version 2 `vfs_cap_data` (magic with the
    /// effective flag, then permitted and inheritable for the low and high 32 capabilities).
    pub(crate) const NET_RAW_EP: [u8; 20] = [
        0x01, 0, 0, 0x02, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];

    /// Sets `security.capability` on `path` (not followed); `None` removes it.
    pub(crate) fn set_fcaps(path: &Path, caps: Option<&[u8]>) {
        let c = CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: NUL-terminated strings and a value of the given length.
        let rc = unsafe {
            match caps {
                Some(v) => nix::libc::lsetxattr(
                    c.as_ptr(),
                    FCAPS_NAME.as_ptr().cast(),
                    v.as_ptr().cast(),
                    v.len(),
                    0,
                ),
                None => nix::libc::lremovexattr(c.as_ptr(), FCAPS_NAME.as_ptr().cast()),
            }
        };
        assert_eq!(rc, 0, "tests run as root: {}", io::Error::last_os_error());
    }

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        fs::create_dir_all(r.join("etc")).unwrap();
        fs::create_dir_all(r.join("usr/lib")).unwrap();
        fs::write(r.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        fs::write(r.join("usr/lib/libc.so"), vec![7u8; 300_000]).unwrap();
        fs::hard_link(r.join("usr/lib/libc.so"), r.join("usr/lib/libc.so.6")).unwrap();
        symlink("/etc/shadow", r.join("etc/shadow-link")).unwrap();
        nix::unistd::mkfifo(
            &r.join("etc/fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        dir
    }

    proptest::proptest! {
        #[test]
        fn permuting_in_place_is_taking_in_order(keys in proptest::collection::vec(0u16..50, 0..200)) {
            let mut order: Vec<usize> = (0..keys.len()).collect();
            order.sort_by_key(|&i| keys[i]);
            let expected: Vec<u16> = order.iter().map(|&i| keys[i]).collect();
            let mut items = keys.clone();
            permute(&mut items, &mut order);
            proptest::prop_assert_eq!(items, expected);
        }
    }

    /// Every regular file of `r` hashed by one [`Hasher`], compared with `sha2` over the file's
    /// bytes read back.
    fn check_hasher(r: &Path, backend: sha256::Backend, lanes: usize) {
        let mut entries = walk(r, None, &Options::default()).unwrap();
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        let files: Vec<(usize, &Entry)> = entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.kind == Kind::File)
            .collect();
        let mut queue = files.iter().copied();
        let mut out = Vec::new();
        Hasher::new(r, backend, lanes)
            .run(|| queue.next(), &mut out)
            .unwrap();
        let case = format!("{backend:?}, {lanes} lanes");
        assert_eq!(out.len(), files.len(), "{case}");
        let mut seen: Vec<usize> = out.iter().map(|(i, _)| *i).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), files.len(), "{case}: a file hashed twice");
        for (i, h) in out {
            let e = &entries[i];
            let data = fs::read(r.join(OsStr::from_bytes(&e.path))).unwrap();
            let want: [u8; 32] = Sha256::digest(&data).into();
            assert_eq!(h.sha256, want, "{case}: {} bytes", data.len());
            assert_eq!(h.class, Class::of(&data[..data.len().min(18)]), "{case}");
        }
    }

    fn backends() -> Vec<sha256::Backend> {
        let mut all = vec![sha256::Backend::Portable];
        if sha256::Backend::detect() == sha256::Backend::ShaNi {
            all.push(sha256::Backend::ShaNi);
        }
        all
    }

    #[test]
    fn files_of_every_length_hash_the_same_on_every_backend_in_one_lane_or_several() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        let lengths = [
            0,
            1,
            17,
            18,
            55,
            56,
            63,
            64,
            65,
            1000,
            4095,
            4096,
            4097,
            CHUNK - 65,
            CHUNK - 64,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            CHUNK + 63,
            CHUNK + 64,
            3 * CHUNK + 77,
        ];
        for (i, len) in lengths.iter().enumerate() {
            let mut data: Vec<u8> = (0..*len).map(|k| (k * 7 + i + k / 251) as u8).collect();
            if i == 3 {
                data[..2].copy_from_slice(b"#!");
            }
            if i == lengths.len() - 1 {
                data[..18].copy_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x03\0");
            }
            fs::create_dir_all(r.join(format!("d{}", i % 3))).unwrap();
            fs::write(r.join(format!("d{}/f{i:02}", i % 3)), data).unwrap();
        }
        for backend in backends() {
            for lanes in [1, 2, 3] {
                check_hasher(r, backend, lanes);
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        #[test]
        fn any_mix_of_lengths_in_lanes_hashes_as_sha2(
            lengths in proptest::collection::vec(0usize..2 * CHUNK + 200, 1..8),
            lanes in 1usize..=3,
        ) {
            let dir = tempfile::tempdir().unwrap();
            for (i, len) in lengths.iter().enumerate() {
                let data: Vec<u8> = (0..*len).map(|k| (k * 13 + i * 7) as u8).collect();
                fs::write(dir.path().join(format!("f{i}")), data).unwrap();
            }
            for backend in backends() {
                check_hasher(dir.path(), backend, lanes);
            }
        }
    }

    #[test]
    fn a_tree_is_recorded_with_symlinks_never_followed() {
        let dir = tree();
        let m = measure(dir.path(), &Options::default()).unwrap();
        let paths: Vec<String> = m
            .entries
            .iter()
            .map(|e| String::from_utf8_lossy(&e.path).into_owned())
            .collect();
        assert_eq!(
            paths,
            [
                "",
                "etc",
                "etc/fifo",
                "etc/passwd",
                "etc/shadow-link",
                "usr",
                "usr/lib",
                "usr/lib/libc.so",
                "usr/lib/libc.so.6"
            ]
        );
        let link = m.get(b"etc/shadow-link").unwrap();
        assert_eq!(link.kind, Kind::Symlink);
        assert_eq!(link.target.as_deref(), Some(&b"/etc/shadow"[..]));
        assert_eq!(link.sha256, None);
        assert_eq!(m.get(b"etc/fifo").unwrap().kind, Kind::Fifo);
        let passwd = m.get(b"etc/passwd").unwrap();
        assert_eq!(
            passwd.sha256,
            Some(Sha256::digest(b"root:x:0:0::/root:/bin/sh\n").into())
        );
        // Hard links share the digest.
        assert_eq!(
            m.get(b"usr/lib/libc.so").unwrap().sha256,
            m.get(b"usr/lib/libc.so.6").unwrap().sha256
        );
    }

    #[test]
    fn the_digest_is_stable_and_changes_with_content_mode_and_links() {
        let dir = tree();
        let one = Options {
            threads: 1,
            ..Options::default()
        };
        let a = measure(dir.path(), &one).unwrap();
        let b = measure(dir.path(), &Options::default()).unwrap();
        assert_eq!(a.digest, b.digest, "thread count must not matter");

        fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/bash\n",
        )
        .unwrap();
        let c = measure(dir.path(), &one).unwrap();
        assert_ne!(a.digest, c.digest);

        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(
            dir.path().join("etc/passwd"),
            fs::Permissions::from_mode(0o4755),
        )
        .unwrap();
        let d = measure(dir.path(), &one).unwrap();
        assert_ne!(c.digest, d.digest);
        assert_eq!(d.get(b"etc/passwd").unwrap().mode, 0o4755);

        fs::remove_file(dir.path().join("etc/shadow-link")).unwrap();
        symlink("/etc/passwd", dir.path().join("etc/shadow-link")).unwrap();
        let e = measure(dir.path(), &one).unwrap();
        assert_ne!(d.digest, e.digest);
    }

    #[test]
    fn a_root_that_is_a_symlink_or_a_file_is_refused_and_size_is_bounded() {
        let dir = tree();
        let link = dir.path().join("root-link");
        symlink(dir.path().join("etc"), &link).unwrap();
        assert!(measure(&link, &Options::default()).is_err());
        assert!(measure(&dir.path().join("etc/passwd"), &Options::default()).is_err());
        let small = Options {
            max_entries: 3,
            ..Options::default()
        };
        assert!(matches!(
            measure(dir.path(), &small),
            Err(MeasureError::TooMany { limit: 3, .. })
        ));
    }

    #[test]
    fn names_that_are_not_utf8_are_kept_as_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let name = std::ffi::OsStr::from_bytes(b"caf\xe9");
        fs::write(dir.path().join(name), "x").unwrap();
        let m = measure(dir.path(), &Options::default()).unwrap();
        assert!(m.get(b"caf\xe9").is_some());
        assert!(String::from_utf8(Manifest::canonical(m.get(b"caf\xe9").unwrap())).is_ok());
    }

    /// A previous manifest as if measured well after the tree was written (past the racy window).
    fn settled(mut m: Manifest) -> Manifest {
        m.measured_at = m.measured_at.saturating_add(2 * RACY_NS);
        m
    }

    #[test]
    fn revalidate_rehashes_only_what_changed_and_catches_a_restored_mtime() {
        let dir = tree();
        let r = dir.path();
        let first = settled(measure(r, &Options::default()).unwrap());
        let (again, stats) = revalidate(r, &first, &Options::default()).unwrap();
        assert_eq!(again.digest, first.digest);
        assert_eq!(stats.rehashed, 0);
        assert_eq!(stats.unchanged, 3);

        // Same size, same mtime (restored as an attacker would): the ctime still moves.
        let path = r.join("etc/passwd");
        let mtime = fs::metadata(&path).unwrap().modified().unwrap();
        fs::write(&path, "root:x:0:0::/root:/bin/zz\n").unwrap();
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), mtime);
        let (changed, stats) = revalidate(r, &first, &Options::default()).unwrap();
        assert_eq!(stats.rehashed, 1);
        assert_ne!(changed.digest, first.digest);
        assert_eq!(
            changed.get(b"etc/passwd").unwrap().sha256,
            Some(Sha256::digest(b"root:x:0:0::/root:/bin/zz\n").into())
        );
        assert_eq!(
            changed.digest,
            measure(r, &Options::default()).unwrap().digest
        );
    }

    #[test]
    fn revalidate_sees_added_removed_and_retyped_paths() {
        let dir = tree();
        let r = dir.path();
        let first = settled(measure(r, &Options::default()).unwrap());
        fs::write(r.join("usr/lib/libevil.so"), "x").unwrap();
        let (m, stats) = revalidate(r, &first, &Options::default()).unwrap();
        assert!(m.get(b"usr/lib/libevil.so").is_some());
        assert_eq!(stats.rehashed, 1);
        fs::remove_file(r.join("usr/lib/libevil.so")).unwrap();
        fs::remove_file(r.join("etc/passwd")).unwrap();
        fs::create_dir(r.join("etc/passwd")).unwrap();
        let (m, _) = revalidate(r, &first, &Options::default()).unwrap();
        assert_eq!(m.get(b"etc/passwd").unwrap().kind, Kind::Dir);
        assert!(m.get(b"usr/lib/libevil.so").is_none());
        assert_eq!(m.digest, measure(r, &Options::default()).unwrap().digest);
    }

    #[test]
    fn a_fresh_manifest_is_not_trusted_within_the_racy_window() {
        let dir = tree();
        let first = measure(dir.path(), &Options::default()).unwrap();
        let (_, stats) = revalidate(dir.path(), &first, &Options::default()).unwrap();
        assert_eq!(stats.unchanged, 0);
    }

    #[test]
    fn one_byte_changed_in_a_large_sparse_file_is_caught() {
        use std::io::{Seek, SeekFrom, Write};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sparse");
        let mut f = File::create(&path).unwrap();
        f.seek(SeekFrom::Start(64 << 20)).unwrap();
        f.write_all(b"end").unwrap();
        drop(f);
        assert!(fs::metadata(&path).unwrap().blocks() < 64);
        let first = settled(measure(dir.path(), &Options::default()).unwrap());
        let e = first.get(b"sparse").unwrap();
        assert_eq!(e.size, (64 << 20) + 3);
        let mut h = Sha256::new();
        h.update(vec![0u8; 64 << 20]);
        h.update(b"end");
        assert_eq!(e.sha256, Some(h.finalize().into()));

        let mut f = File::options().write(true).open(&path).unwrap();
        f.seek(SeekFrom::Start(12345)).unwrap();
        f.write_all(b"\x01").unwrap();
        drop(f);
        let (m, stats) = revalidate(dir.path(), &first, &Options::default()).unwrap();
        assert_eq!(stats.rehashed, 1);
        assert_ne!(m.get(b"sparse").unwrap().sha256, e.sha256);
    }

    #[test]
    fn a_directory_swapped_for_a_symlink_after_its_parent_listed_it_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        let elsewhere = dir.path().join("elsewhere");
        fs::create_dir_all(&real).unwrap();
        fs::create_dir_all(&elsewhere).unwrap();
        fs::write(elsewhere.join("secret"), b"host data").unwrap();
        // What the parent's listing saw: `sub`, the real directory.
        let sub = dir.path().join("sub");
        fs::rename(&real, &sub).unwrap();
        let job = DirJob {
            path: sub.clone(),
            rel: b"sub".to_vec(),
            meta: fs::symlink_metadata(&sub).unwrap(),
        };
        // Swapped before it is read: a symlink to another directory.
        fs::rename(&sub, &real).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &sub).unwrap();
        let (mut out, mut subdirs) = (Vec::new(), Vec::new());
        let count = AtomicUsize::new(0);
        let r = read_dir(
            &job,
            &mut out,
            &mut subdirs,
            &|_: &mut Entry| false,
            &count,
            &Options::default(),
        );
        assert!(matches!(r, Err(MeasureError::Changed { .. })), "{r:?}");
        assert!(out.is_empty(), "nothing of the other directory is recorded");
        // Swapped for another real directory (same name): refused too.
        fs::remove_file(&sub).unwrap();
        fs::rename(&elsewhere, &sub).unwrap();
        let r = read_dir(
            &job,
            &mut out,
            &mut subdirs,
            &|_: &mut Entry| false,
            &count,
            &Options::default(),
        );
        assert!(matches!(r, Err(MeasureError::Changed { .. })), "{r:?}");
    }

    #[test]
    fn a_tree_changing_underneath_is_refused() {
        let dir = tree();
        let r = dir.path();
        // A file written between the walk and its hashing.
        let mut entries = walk(r, None, &Options::default()).unwrap();
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        fs::write(r.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        assert!(matches!(
            hash_all(r, &mut entries, 2),
            Err(MeasureError::Changed { .. })
        ));
        // A file replaced by a symlink: never followed, refused.
        let mut entries = walk(r, None, &Options::default()).unwrap();
        fs::remove_file(r.join("etc/passwd")).unwrap();
        symlink("/etc/shadow", r.join("etc/passwd")).unwrap();
        assert!(matches!(
            hash_all(r, &mut entries, 1),
            Err(MeasureError::Changed { .. })
        ));
        // A directory whose listing changed after its parent saw it.
        let job = DirJob {
            path: r.join("usr"),
            rel: b"usr".to_vec(),
            meta: fs::symlink_metadata(r.join("usr")).unwrap(),
        };
        fs::write(r.join("usr/new"), "x").unwrap();
        let no = |_: &mut Entry| false;
        let err = read_dir(
            &job,
            &mut Vec::new(),
            &mut Vec::new(),
            &no,
            &AtomicUsize::new(0),
            &Options::default(),
        );
        assert!(matches!(err, Err(MeasureError::Changed { .. })));
    }

    #[test]
    fn elf_programs_libraries_and_scripts_are_classified() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        let mut elf = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x03\0".to_vec();
        elf.extend_from_slice(&[0u8; 100]);
        fs::write(r.join("libx.so.1"), &elf).unwrap();
        fs::write(r.join("app"), &elf).unwrap();
        let mut exec = elf.clone();
        exec[16] = 2;
        fs::write(r.join("static"), &exec).unwrap();
        fs::write(r.join("run.sh"), "#!/bin/sh\n").unwrap();
        fs::write(r.join("tiny"), "\x7fEL").unwrap();
        let m = measure(r, &Options::default()).unwrap();
        assert!(m.get(b"libx.so.1").unwrap().is_library());
        assert!(!m.get(b"app").unwrap().is_library());
        assert!(m.get(b"app").unwrap().is_elf_program());
        assert_eq!(m.get(b"static").unwrap().class, Class::ElfExecutable);
        assert_eq!(m.get(b"run.sh").unwrap().class, Class::Script);
        assert_eq!(m.get(b"tiny").unwrap().class, Class::Data);
    }

    #[test]
    fn whiteouts_devices_and_opaque_directories_are_recorded() {
        use nix::sys::stat::{makedev, mknod, Mode, SFlag};
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        mknod(
            &r.join("gone"),
            SFlag::S_IFCHR,
            Mode::empty(),
            makedev(0, 0),
        )
        .unwrap();
        mknod(
            &r.join("null"),
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            makedev(1, 3),
        )
        .unwrap();
        fs::create_dir(r.join("opq")).unwrap();
        let c = CString::new(r.join("opq").as_os_str().as_bytes()).unwrap();
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
        let m = measure(r, &Options::default()).unwrap();
        assert!(m.get(b"gone").unwrap().is_whiteout());
        assert!(!m.get(b"null").unwrap().is_whiteout());
        assert_eq!(major_minor(m.get(b"null").unwrap().rdev), (1, 3));
        assert!(m.get(b"opq").unwrap().opaque);
        let line = String::from_utf8(Manifest::canonical(m.get(b"null").unwrap())).unwrap();
        assert!(
            line.starts_with("char ") && line.contains(" 0:0 0 1:3 "),
            "{line}"
        );
        let line = String::from_utf8(Manifest::canonical(m.get(b"opq").unwrap())).unwrap();
        assert!(line.starts_with("dir+opaque "), "{line}");
    }

    #[test]
    fn a_manifest_survives_encoding_and_damage_is_refused() {
        let dir = tree();
        let m = measure(dir.path(), &Options::default()).unwrap();
        let bytes = m.encode();
        assert_eq!(Manifest::decode(&bytes, 1000).unwrap(), m);
        assert!(Manifest::decode(&bytes, 3).is_err());
        for i in [0, 9, bytes.len() / 2, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[i] ^= 1;
            assert!(Manifest::decode(&bad, 1000).is_err(), "byte {i}");
        }
        assert!(Manifest::decode(&bytes[..bytes.len() - 5], 1000).is_err());
        assert!(Manifest::decode(b"", 1000).is_err());
    }

    #[test]
    fn file_capabilities_are_measured_and_change_the_digest() {
        let dir = tree();
        let r = dir.path();
        fs::create_dir(r.join("bin")).unwrap();
        fs::write(r.join("bin/ping"), "ping").unwrap();
        let one = Options {
            threads: 1,
            ..Options::default()
        };
        let before = measure(r, &one).unwrap();
        assert!(before.entries.iter().all(|e| e.fcaps.is_none()));
        let line =
            String::from_utf8(Manifest::canonical(before.get(b"bin/ping").unwrap())).unwrap();
        assert!(!line.contains("fcaps"), "{line}");

        set_fcaps(&r.join("bin/ping"), Some(&NET_RAW_EP));
        set_fcaps(&r.join("usr/lib/libc.so"), Some(&NET_RAW_EP));
        set_fcaps(&r.join("etc"), Some(&NET_RAW_EP));
        let after = measure(r, &one).unwrap();
        assert_ne!(before.digest, after.digest);
        let ping = after.get(b"bin/ping").unwrap();
        assert_eq!(ping.fcaps.as_deref(), Some(&NET_RAW_EP[..]));
        assert_eq!(ping.sha256, before.get(b"bin/ping").unwrap().sha256);
        let line = String::from_utf8(Manifest::canonical(ping)).unwrap();
        assert!(
            line.ends_with(&format!(" fcaps={}\n", hex::encode(NET_RAW_EP))),
            "{line}"
        );
        // The hard link shares the inode, and so its capabilities; directories carry them too.
        assert_eq!(
            after.get(b"usr/lib/libc.so.6").unwrap().fcaps.as_deref(),
            Some(&NET_RAW_EP[..])
        );
        assert!(after.get(b"etc").unwrap().fcaps.is_some());
        assert!(after.get(b"etc/passwd").unwrap().fcaps.is_none());
        assert_eq!(
            measure(r, &Options::default()).unwrap().digest,
            after.digest
        );
        // Kept in the cache form.
        assert_eq!(Manifest::decode(&after.encode(), 1000).unwrap(), after);

        // Other capabilities (cap_net_raw+p: no effective flag) are another tree again.
        let mut permitted_only = NET_RAW_EP;
        permitted_only[0] = 0;
        set_fcaps(&r.join("bin/ping"), Some(&permitted_only));
        let other = measure(r, &one).unwrap();
        assert_ne!(other.digest, after.digest);
        set_fcaps(&r.join("bin/ping"), None);
        set_fcaps(&r.join("usr/lib/libc.so"), None);
        set_fcaps(&r.join("etc"), None);
        assert_eq!(measure(r, &one).unwrap().digest, before.digest);
    }

    #[test]
    fn revalidate_sees_capabilities_set_or_removed_after_the_measurement() {
        let dir = tree();
        let r = dir.path();
        let first = settled(measure(r, &Options::default()).unwrap());
        let path = r.join("etc/passwd");
        let ctime = fs::symlink_metadata(&path).unwrap().ctime_nsec();
        let ctime_s = fs::symlink_metadata(&path).unwrap().ctime();
        // The ctime has the kernel's tick as granularity: wait for it to move.
        std::thread::sleep(std::time::Duration::from_millis(20));
        set_fcaps(&path, Some(&NET_RAW_EP));
        let meta = fs::symlink_metadata(&path).unwrap();
        assert_ne!(
            (meta.ctime(), meta.ctime_nsec()),
            (ctime_s, ctime),
            "setting capabilities moves the ctime"
        );
        let (m, stats) = revalidate(r, &first, &Options::default()).unwrap();
        assert_eq!(stats.rehashed, 1);
        assert_eq!(
            m.get(b"etc/passwd").unwrap().fcaps.as_deref(),
            Some(&NET_RAW_EP[..])
        );
        assert_ne!(m.digest, first.digest);
        assert_eq!(m.digest, measure(r, &Options::default()).unwrap().digest);

        // Removed again, from a manifest that has them: re-read too.
        let with = settled(m);
        std::thread::sleep(std::time::Duration::from_millis(20));
        set_fcaps(&path, None);
        let (m, stats) = revalidate(r, &with, &Options::default()).unwrap();
        assert_eq!(stats.rehashed, 1);
        assert_eq!(m.get(b"etc/passwd").unwrap().fcaps, None);
        assert_eq!(m.digest, first.digest);

        // On a directory (re-validated by stat as well).
        let without = settled(m);
        std::thread::sleep(std::time::Duration::from_millis(20));
        set_fcaps(&r.join("usr"), Some(&NET_RAW_EP));
        let (m, _) = revalidate(r, &without, &Options::default()).unwrap();
        assert!(m.get(b"usr").unwrap().fcaps.is_some());
        assert_ne!(m.digest, first.digest);
    }

    #[test]
    fn capabilities_are_bounded_and_a_cache_of_the_previous_format_is_not_read() {
        let path = Path::new("/x");
        let big = Err(io::Error::from_raw_os_error(nix::libc::ERANGE));
        let err = fcaps_outcome(big, &[], path).unwrap_err();
        assert!(err.to_string().contains("larger than 4096 bytes"), "{err}");
        let none = Err(io::Error::from_raw_os_error(nix::libc::ENODATA));
        assert_eq!(fcaps_outcome(none, &[], path).unwrap(), None);
        // Malformed on disk: the kernel will not present it, and neither is it "none".
        let bad = Err(io::Error::from_raw_os_error(nix::libc::EINVAL));
        assert!(fcaps_outcome(bad, &[], path).is_err());
        assert_eq!(
            fcaps_outcome(Ok(2), &[1, 2, 3], path).unwrap(),
            Some(vec![1, 2])
        );

        let mut e = Entry::new(b"f".to_vec(), Kind::File);
        e.sha256 = Some([0; 32]);
        e.fcaps = Some(vec![0; MAX_FCAPS + 1]);
        let m = Manifest {
            digest: Manifest::roll_up(std::slice::from_ref(&e)),
            entries: vec![e],
            measured_at: 0,
        };
        assert_eq!(
            Manifest::decode(&m.encode(), 10),
            Err(DecodeError("file capabilities too long"))
        );

        // What a build without file capabilities wrote: refused, so the tree is measured again.
        let dir = tree();
        let good = measure(dir.path(), &Options::default()).unwrap().encode();
        let mut old = good[..good.len() - 32].to_vec();
        old[..8].copy_from_slice(b"VOUCHMF1");
        let sum: [u8; 32] = Sha256::digest(&old).into();
        old.extend_from_slice(&sum);
        assert_eq!(Manifest::decode(&old, 1000), Err(DecodeError("bad header")));
    }
}
