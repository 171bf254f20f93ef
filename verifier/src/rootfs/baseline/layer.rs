//! One layer blob turned into an [`ExpectedLayer`]: its bytes are never parsed before they are
//! known to be the ones the signed manifest pins.
//!
//! The blob is streamed once into an unnamed file (mode 0600; `O_TMPFILE` where the filesystem
//! has it, else unlinked as soon as it is made: gone when closed, whatever happens) in a directory
//! the caller gives, hashed as it is written, at most
//! [`MAX_BLOB_BYTES`]; a blob that does not hash to its digest is refused there. Only then is the
//! file decompressed (gzip, or a plain tar) and its tar walked ([`super::archive`]), at most
//! [`MAX_TAR_BYTES`] coming out of the decompressor. Hashing as the parse goes, and comparing at
//! the end, would parse a wrong blob in full first; reading the blob twice from the content store
//! would parse bytes that need not be those hashed the first time.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{DirBuilder, File};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::archive::{checked_path, quote, Archive, Member, Type};
use super::{fcaps, one_line, zstd, BaselineError, ExpectedLayer};
use crate::measure::{self, Class, Entry, Kind};
use crate::rootfs;

/// Largest layer blob (compressed, as stored) read.
pub const MAX_BLOB_BYTES: u64 = 4 << 30;
/// Most bytes read out of a layer's decompressor: headers, data and padding of its tar.
pub const MAX_TAR_BYTES: u64 = 16 << 30;

/// The bounds of one read; tests use smaller ones.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub blob_bytes: u64,
    pub tar_bytes: u64,
}

impl Limits {
    pub(crate) const DEFAULT: Limits = Limits {
        blob_bytes: MAX_BLOB_BYTES,
        tar_bytes: MAX_TAR_BYTES,
    };
}

/// Derives the expected layer from a blob (gzip or plain tar): the blob is copied into an unnamed
/// file under `scratch` (created if missing) and refused unless it hashes to `digest`, then parsed.
pub fn read_layer(
    blob: impl Read,
    digest: &str,
    max_entries: usize,
    scratch: &Path,
) -> Result<ExpectedLayer, BaselineError> {
    read_layer_within(blob, digest, max_entries, scratch, Limits::DEFAULT)
}

pub(crate) fn read_layer_within(
    blob: impl Read,
    digest: &str,
    max_entries: usize,
    scratch: &Path,
    limits: Limits,
) -> Result<ExpectedLayer, BaselineError> {
    let blob_err = |reason: String| BaselineError::Blob {
        digest: digest.to_string(),
        reason: one_line(&reason),
    };
    let file = spool(blob, digest, scratch, limits.blob_bytes)?;
    let mut buffered = BufReader::with_capacity(256 * 1024, file);
    let head = buffered.fill_buf().map_err(|e| blob_err(e.to_string()))?;
    let (entries, implicit) = if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Err(zstd(digest));
    } else if head.starts_with(&[0x1f, 0x8b]) {
        // Every gzip member, as Go's reader (and so containerd) reads them.
        let gz = flate2::bufread::MultiGzDecoder::new(buffered);
        walk(gz, limits.tar_bytes, max_entries)
    } else {
        walk(buffered, limits.tar_bytes, max_entries)
    }
    .map_err(blob_err)?;
    Ok(ExpectedLayer {
        digest: digest.to_string(),
        entries,
        implicit,
    })
}

/// The blob in an unnamed file, read back from its start, once it hashed to `digest`.
fn spool(
    mut blob: impl Read,
    digest: &str,
    scratch: &Path,
    max: u64,
) -> Result<File, BaselineError> {
    let blob_err = |reason: String| BaselineError::Blob {
        digest: digest.to_string(),
        reason: one_line(&reason),
    };
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(scratch)
        .map_err(|e| blob_err(format!("cannot create {}: {e}", scratch.display())))?;
    let mut file = tempfile::tempfile_in(scratch).map_err(|e| {
        blob_err(format!(
            "cannot create a file in {}: {e}",
            scratch.display()
        ))
    })?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 128 * 1024];
    let mut total = 0u64;
    loop {
        let n = match blob.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(blob_err(e.to_string())),
        };
        total += n as u64;
        if total > max {
            return Err(blob_err(format!("the blob is larger than {}", bytes(max))));
        }
        let chunk = buf.get(..n).unwrap_or_default();
        hash.update(chunk);
        file.write_all(chunk)
            .map_err(|e| blob_err(format!("cannot write to {}: {e}", scratch.display())))?;
    }
    let actual = format!("sha256:{}", hex::encode(hash.finalize()));
    if actual != digest {
        return Err(BaselineError::Digest {
            expected: digest.to_string(),
            actual,
        });
    }
    file.seek(SeekFrom::Start(0))
        .map_err(|e| blob_err(e.to_string()))?;
    Ok(file)
}

/// `n` bytes, in the largest binary unit that divides it.
fn bytes(n: u64) -> String {
    for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if n >= 1 << shift && n.is_multiple_of(1 << shift) {
            return format!("{} {unit}", n >> shift);
        }
    }
    format!("{n} bytes")
}

/// What comes out of a decompressor, refused past a number of bytes.
struct Bounded<R> {
    inner: R,
    left: u64,
    max: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // One byte past the bound tells a stream that ends there from one that goes on.
        let room = usize::try_from(self.left.saturating_add(1)).unwrap_or(usize::MAX);
        let want = buf.len().min(room);
        let n = self.inner.read(buf.get_mut(..want).unwrap_or_default())?;
        if n as u64 > self.left {
            return Err(io::Error::other(format!(
                "the layer's tar is larger than {}",
                bytes(self.max)
            )));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

type TarResult = Result<(Vec<Entry>, Vec<Vec<u8>>), String>;

/// The entries of a tar stream in overlay form (see [`ExpectedLayer`]).
fn walk(r: impl Read, max_bytes: u64, max_entries: usize) -> TarResult {
    let bounded = Bounded {
        inner: r,
        left: max_bytes,
        max: max_bytes,
    };
    let mut archive = Archive::new(BufReader::with_capacity(64 * 1024, bounded));
    let mut entries: BTreeMap<Vec<u8>, Entry> = BTreeMap::new();
    let mut opaque: BTreeSet<Vec<u8>> = BTreeSet::new();
    let mut buf = vec![0u8; 128 * 1024];
    let mut count = 0usize;
    while let Some(m) = archive.next()? {
        count += 1;
        if count > max_entries {
            return Err(format!("more than {max_entries} entries"));
        }
        let path = checked_path(&m.path)?;
        // Whatever the entry's type, containerd takes a `.wh.` name for a whiteout.
        let name = path.rsplit(|&b| b == b'/').next().unwrap_or_default();
        if let Some(hidden) = name.strip_prefix(b".wh.") {
            let parent = path.get(..path.len() - name.len()).unwrap_or_default();
            let parent = parent.strip_suffix(b"/").unwrap_or(parent).to_vec();
            if hidden == b".wh..opq" {
                opaque.insert(parent);
            } else {
                let mut p = parent;
                if !p.is_empty() {
                    p.push(b'/');
                }
                p.extend_from_slice(hidden);
                insert(&mut entries, Entry::new(p, Kind::CharDevice));
            }
            continue;
        }
        let kind = match m.kind {
            Type::HardLink => {
                let e = hard_link(&entries, path, &m)?;
                insert(&mut entries, e);
                continue;
            }
            Type::File => Kind::File,
            Type::Dir => Kind::Dir,
            Type::Symlink => Kind::Symlink,
            Type::Char => Kind::CharDevice,
            Type::Block => Kind::BlockDevice,
            Type::Fifo => Kind::Fifo,
        };
        let mut e = Entry::new(path, kind);
        e.mode = m.mode;
        e.uid = m.uid;
        e.gid = m.gid;
        if let Some(caps) = &m.fcaps {
            if caps.len() > measure::MAX_FCAPS {
                return Err(format!(
                    "security.capability of {} is larger than {} bytes",
                    quote(&e.path),
                    measure::MAX_FCAPS
                ));
            }
            e.fcaps = Some(fcaps::as_reported(caps));
        }
        match kind {
            Kind::File => {
                let mut h = Sha256::new();
                let mut head = Vec::with_capacity(18);
                let mut size = 0u64;
                loop {
                    let n = archive.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    let chunk = buf.get(..n).unwrap_or_default();
                    if head.len() < 18 {
                        let k = (18 - head.len()).min(n);
                        head.extend_from_slice(chunk.get(..k).unwrap_or_default());
                    }
                    h.update(chunk);
                    size += n as u64;
                }
                e.size = size;
                e.sha256 = Some(h.finalize().into());
                e.class = Class::of(&head);
            }
            Kind::Symlink => {
                if m.link.is_empty() {
                    return Err(format!("symlink {} has no target", quote(&e.path)));
                }
                if m.link.len() > super::PATH_MAX {
                    return Err(format!(
                        "symlink {} has a target longer than {} bytes",
                        quote(&e.path),
                        super::PATH_MAX
                    ));
                }
                e.size = m.link.len() as u64;
                e.target = Some(m.link);
            }
            Kind::CharDevice | Kind::BlockDevice => {
                let (major, minor) = m.dev;
                e.rdev = nix::sys::stat::makedev(u64::from(major), u64::from(minor));
            }
            _ => {}
        }
        insert(&mut entries, e);
    }
    Ok(finish(entries, opaque))
}

/// A hard link: a copy of the file it names, which must be earlier in the same layer.
fn hard_link(
    entries: &BTreeMap<Vec<u8>, Entry>,
    path: Vec<u8>,
    m: &Member,
) -> Result<Entry, String> {
    let target = super::normalise(&m.link)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| format!("hard link {} has no valid target", quote(&path)))?;
    let mut e = entries
        .get(&target)
        .filter(|e| e.kind == Kind::File)
        .cloned()
        .ok_or_else(|| {
            format!(
                "hard link {} to {}, which the layer does not hold",
                quote(&path),
                quote(&target)
            )
        })?;
    e.path = path;
    Ok(e)
}

/// Opaque directories marked, and the parents the tar does not list added as implicit.
fn finish(
    mut entries: BTreeMap<Vec<u8>, Entry>,
    opaque: BTreeSet<Vec<u8>>,
) -> (Vec<Entry>, Vec<Vec<u8>>) {
    let mut implicit = BTreeSet::new();
    for dir in opaque {
        match entries.get_mut(&dir) {
            Some(e) if e.kind == Kind::Dir => e.opaque = true,
            _ => {
                let mut e = Entry::new(dir.clone(), Kind::Dir);
                e.opaque = true;
                e.mode = 0o755;
                entries.insert(dir.clone(), e);
                implicit.insert(dir);
            }
        }
    }
    let paths: Vec<Vec<u8>> = entries.keys().cloned().collect();
    for p in paths {
        let mut end = p.len();
        while let Some(i) = p
            .get(..end)
            .and_then(|s| s.iter().rposition(|&b| b == b'/'))
        {
            let parent = p.get(..i).unwrap_or_default();
            if entries.contains_key(parent) {
                break;
            }
            let mut e = Entry::new(parent.to_vec(), Kind::Dir);
            e.mode = 0o755;
            entries.insert(parent.to_vec(), e);
            implicit.insert(parent.to_vec());
            end = i;
        }
    }
    entries.remove(&Vec::new());
    (
        entries.into_values().collect(),
        implicit.into_iter().collect(),
    )
}

/// A later tar entry for the same path replaces the earlier one, as extraction would (a
/// directory replaced by a non-directory loses its contents).
fn insert(entries: &mut BTreeMap<Vec<u8>, Entry>, e: Entry) {
    if e.kind != Kind::Dir && entries.get(&e.path).is_some_and(|p| p.kind == Kind::Dir) {
        rootfs::remove_below(entries, &e.path);
    }
    entries.insert(e.path.clone(), e);
}
