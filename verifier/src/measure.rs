//! Measuring a root filesystem: a manifest of the tree (path, type, mode, owner, size, SHA-256 of
//! regular files, symlink targets) that rolls up into one digest.
//!
//! Groundwork for the rootfs measurement of the start path (not wired into the gate yet). The
//! walk never follows a symbolic link (it records the link and its target), skips nothing silently
//! (special files are recorded by type), hashes each inode once (hard links share the digest),
//! hashes files on several threads, and refuses a file that changed while it was read.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

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
}

/// The tree, sorted by path, and its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub entries: Vec<Entry>,
    /// SHA-256 over [`Manifest::canonical`] of every entry, in path order.
    pub digest: [u8; 32],
}

impl Manifest {
    /// One entry as the line the digest is over:
    /// `<kind> <mode octal> <uid>:<gid> <size> <sha256 hex | symlink target hex | -> <path hex>\n`.
    /// Hex keeps arbitrary bytes in names and targets unambiguous.
    pub fn canonical(e: &Entry) -> Vec<u8> {
        let content = match (&e.sha256, &e.target) {
            (Some(d), _) => hex::encode(d),
            (None, Some(t)) => hex::encode(t),
            (None, None) => "-".to_string(),
        };
        format!(
            "{} {:o} {}:{} {} {} {}\n",
            e.kind.as_str(),
            e.mode,
            e.uid,
            e.gid,
            e.size,
            content,
            hex::encode(&e.path)
        )
        .into_bytes()
    }

    fn roll_up(entries: &[Entry]) -> [u8; 32] {
        let mut h = Sha256::new();
        for e in entries {
            h.update(Manifest::canonical(e));
        }
        h.finalize().into()
    }

    pub fn digest_hex(&self) -> String {
        format!("sha256:{}", hex::encode(self.digest))
    }

    /// The entry at `path` (relative, as recorded).
    pub fn get(&self, path: &[u8]) -> Option<&Entry> {
        self.entries
            .binary_search_by(|e| e.path.as_slice().cmp(path))
            .ok()
            .and_then(|i| self.entries.get(i))
    }
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
    /// Hashing threads.
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

/// A regular file to hash: where it is, and what it looked like when the walk saw it.
struct Pending {
    index: usize,
    path: PathBuf,
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

/// Measures the tree under `root` (which must be a directory, and is not followed if a symlink).
pub fn measure(root: &Path, options: &Options) -> Result<Manifest, MeasureError> {
    let meta = fs::symlink_metadata(root).map_err(io_error(root))?;
    if !meta.is_dir() {
        return Err(MeasureError::Io {
            path: root.to_path_buf(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "not a directory"),
        });
    }
    let mut entries = Vec::new();
    let mut pending = Vec::new();
    // Depth-first with an explicit stack: no recursion on hostile trees.
    let mut stack: Vec<(PathBuf, Vec<u8>, fs::Metadata)> =
        vec![(root.to_path_buf(), Vec::new(), meta)];
    while let Some((path, rel, meta)) = stack.pop() {
        if entries.len() >= options.max_entries {
            return Err(MeasureError::TooMany {
                root: root.to_path_buf(),
                limit: options.max_entries,
            });
        }
        let kind = Kind::of(meta.file_type());
        let mut entry = Entry {
            path: rel.clone(),
            kind,
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            size: 0,
            sha256: None,
            target: None,
        };
        match kind {
            Kind::File => {
                entry.size = meta.size();
                pending.push(Pending {
                    index: entries.len(),
                    path: path.clone(),
                    dev: meta.dev(),
                    ino: meta.ino(),
                    size: meta.size(),
                    mtime: (meta.mtime(), meta.mtime_nsec()),
                    ctime: (meta.ctime(), meta.ctime_nsec()),
                });
            }
            Kind::Symlink => {
                let target = fs::read_link(&path).map_err(io_error(&path))?;
                let bytes = target.as_os_str().as_bytes().to_vec();
                entry.size = bytes.len() as u64;
                entry.target = Some(bytes);
            }
            Kind::Dir => {
                let mut children = Vec::new();
                for child in fs::read_dir(&path).map_err(io_error(&path))? {
                    let child = child.map_err(io_error(&path))?;
                    let child_path = child.path();
                    let child_meta =
                        fs::symlink_metadata(&child_path).map_err(io_error(&child_path))?;
                    let mut child_rel = rel.clone();
                    if !child_rel.is_empty() {
                        child_rel.push(b'/');
                    }
                    child_rel.extend_from_slice(child.file_name().as_bytes());
                    children.push((child_path, child_rel, child_meta));
                }
                stack.extend(children);
            }
            _ => {}
        }
        entries.push(entry);
    }
    hash_all(&mut entries, pending, options.threads.max(1))?;
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    let digest = Manifest::roll_up(&entries);
    Ok(Manifest { entries, digest })
}

/// Hashes every pending file on `threads` threads, each inode once.
fn hash_all(
    entries: &mut [Entry],
    pending: Vec<Pending>,
    threads: usize,
) -> Result<(), MeasureError> {
    // Hard links: the first path of an inode is hashed; the others take its digest.
    let mut first: HashMap<(u64, u64), usize> = HashMap::new();
    let mut work = Vec::new();
    let mut links = Vec::new();
    for (i, p) in pending.iter().enumerate() {
        match first.get(&(p.dev, p.ino)) {
            Some(&j) => links.push((i, j)),
            None => {
                first.insert((p.dev, p.ino), i);
                work.push(i);
            }
        }
    }
    let results: Mutex<Vec<Option<[u8; 32]>>> = Mutex::new(vec![None; pending.len()]);
    let next = AtomicUsize::new(0);
    let failure: Mutex<Option<MeasureError>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads.min(work.len().max(1)) {
            scope.spawn(|| loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let Some(&i) = work.get(n) else { break };
                let Some(p) = pending.get(i) else { break };
                match hash_file(p) {
                    Ok(d) => {
                        if let Ok(mut r) = results.lock() {
                            if let Some(slot) = r.get_mut(i) {
                                *slot = Some(d);
                            }
                        }
                    }
                    Err(e) => {
                        if let Ok(mut f) = failure.lock() {
                            f.get_or_insert(e);
                        }
                        // Stop the others early.
                        next.store(work.len(), Ordering::Relaxed);
                        break;
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().ok().flatten() {
        return Err(e);
    }
    let mut results = results.into_inner().map_err(|_| MeasureError::Io {
        path: PathBuf::new(),
        source: io::Error::other("a hashing thread failed"),
    })?;
    for (i, j) in links {
        let d = results.get(j).copied().flatten();
        if let Some(slot) = results.get_mut(i) {
            *slot = d;
        }
    }
    for (p, d) in pending.iter().zip(results) {
        let Some(d) = d else {
            // Never left unhashed: a missing digest would read as "not a file".
            return Err(MeasureError::Io {
                path: p.path.clone(),
                source: io::Error::other("not hashed"),
            });
        };
        if let Some(e) = entries.get_mut(p.index) {
            e.sha256 = Some(d);
        }
    }
    Ok(())
}

/// SHA-256 of one file, opened without following a symlink, refused if it changed meanwhile.
fn hash_file(p: &Pending) -> Result<[u8; 32], MeasureError> {
    let mut f = File::options()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NOCTTY | nix::libc::O_NONBLOCK)
        .open(&p.path)
        .map_err(io_error(&p.path))?;
    let before = f.metadata().map_err(io_error(&p.path))?;
    if before.ino() != p.ino || before.dev() != p.dev || !before.is_file() {
        return Err(MeasureError::Changed {
            path: p.path.clone(),
        });
    }
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 128 * 1024];
    let mut read = 0u64;
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_error(&p.path)(e)),
        };
        h.update(&buf[..n]);
        read += n as u64;
    }
    let after = f.metadata().map_err(io_error(&p.path))?;
    let same = read == p.size
        && after.size() == p.size
        && (after.mtime(), after.mtime_nsec()) == p.mtime
        && (after.ctime(), after.ctime_nsec()) == p.ctime;
    if !same {
        return Err(MeasureError::Changed {
            path: p.path.clone(),
        });
    }
    Ok(h.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

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
}
