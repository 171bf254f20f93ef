//! A read-only view of a root filesystem: every entry (regular files with their digests,
//! directories, symlinks with their targets) and the contents of the few package database files
//! the readers need, nothing else.
//!
//! Built from an unpacked directory ([`Tree::from_dir`], walked without following a symlink) or
//! from an OCI layout's layers ([`super::oci`]). Paths are relative to the root, `/`-separated,
//! without a leading slash; symlinks are resolved by [`Tree::resolve`] against this tree, never
//! against the host, so a link to `/etc/passwd` means the tree's `etc/passwd`.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::SbomGenError;
use sha1::Sha1;

/// Bounds on what a tree may hold, so a hostile rootfs or layout costs bounded memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Entries (files, directories, symlinks) in the tree.
    pub max_entries: usize,
    /// Tar entries read over all layers, whiteouts and replaced entries included.
    pub max_tar_entries: usize,
    /// Bytes of one path.
    pub max_path_bytes: usize,
    /// Layers of one image.
    pub max_layers: usize,
    /// Bytes of one package database file kept in memory (larger ones are skipped with a warning).
    pub max_db_file_bytes: u64,
    /// Bytes of all package database files kept in memory together.
    pub max_db_total_bytes: u64,
    /// Symlinks followed while resolving one path.
    pub max_symlink_hops: usize,
    /// Bytes of an OCI `index.json` or manifest.
    pub max_json_bytes: u64,
    /// Threads hashing the files of a directory.
    pub hash_workers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entries: 1_000_000,
            max_tar_entries: 4_000_000,
            max_path_bytes: 4096,
            max_layers: 256,
            max_db_file_bytes: 64 * 1024 * 1024,
            max_db_total_bytes: 512 * 1024 * 1024,
            max_symlink_hops: 40,
            max_json_bytes: 4 * 1024 * 1024,
            hash_workers: 4,
        }
    }
}

/// What a path is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    File {
        size: u64,
        sha256: [u8; 32],
        sha1: [u8; 20],
    },
    Dir,
    /// The target as written (not resolved).
    Symlink(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    /// Permission bits.
    pub mode: u32,
    /// The layer that wrote it (0 for a directory), for whiteouts, which hide lower layers only.
    pub(super) layer: usize,
}

/// A regular file of the tree.
#[derive(Debug, Clone, Copy)]
pub struct FileRef<'a> {
    pub path: &'a str,
    pub size: u64,
    pub sha256: &'a [u8; 32],
    pub sha1: &'a [u8; 20],
}

#[derive(Debug, Default)]
pub struct Tree {
    entries: BTreeMap<String, Entry>,
    contents: BTreeMap<String, Vec<u8>>,
    content_bytes: u64,
    /// Special files (devices, FIFOs, sockets) skipped.
    pub(super) skipped_special: usize,
    /// Things skipped that a person may want to know about, one line each.
    pub warnings: Vec<String>,
    limits: Limits,
}

/// Whether the readers need the contents of the file at `path` (a real path of the tree).
pub fn wanted(path: &str) -> bool {
    const EXACT: &[&str] = &[
        "etc/os-release",
        "usr/lib/os-release",
        "var/lib/dpkg/status",
        "lib/apk/db/installed",
        "usr/lib/apk/db/installed",
    ];
    if EXACT.contains(&path) {
        return true;
    }
    let (dir, name) = split_last(path);
    if dir == "var/lib/dpkg/status.d" {
        return true;
    }
    if dir == "var/lib/dpkg/info" {
        return name.ends_with(".list");
    }
    if name == "copyright" {
        if let Some(pkg) = dir.strip_prefix("usr/share/doc/") {
            return !pkg.contains('/');
        }
    }
    // Python: <site>/X.dist-info/{METADATA,RECORD}, <site>/X.egg-info/PKG-INFO, <site>/X.egg-info.
    let (site, base) = split_last(dir);
    let in_site = |d: &str| {
        let last = split_last(d).1;
        last == "site-packages" || last == "dist-packages"
    };
    if base.ends_with(".dist-info") && (name == "METADATA" || name == "RECORD") {
        return in_site(site);
    }
    if base.ends_with(".egg-info") && name == "PKG-INFO" {
        return in_site(site);
    }
    if name.ends_with(".egg-info") && in_site(dir) {
        return true;
    }
    // npm: node_modules/<name>/package.json and node_modules/@scope/<name>/package.json.
    if name == "package.json" {
        let (up, pkg) = split_last(dir);
        if pkg.starts_with('.') || pkg.is_empty() {
            return false;
        }
        let (up2, scope) = split_last(up);
        return scope == "node_modules"
            || (scope.starts_with('@') && split_last(up2).1 == "node_modules");
    }
    false
}

/// `a/b/c` → (`a/b`, `c`); `c` → (``, `c`).
pub fn split_last(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    }
}

pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

impl Tree {
    pub fn new(limits: Limits) -> Tree {
        Tree {
            limits,
            ..Tree::default()
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Lexically normalises a path from an archive or a database: `/`, `.` and empty components
    /// dropped, `..` applied and stopped at the root, so nothing names a place outside the tree.
    pub fn normalise(&self, path: &str) -> Result<String, SbomGenError> {
        if path.len() > self.limits.max_path_bytes {
            return Err(SbomGenError::Limit {
                what: "path length in bytes",
                limit: self.limits.max_path_bytes as u64,
            });
        }
        let mut parts: Vec<&str> = Vec::new();
        for part in path.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    parts.pop();
                }
                p => parts.push(p),
            }
        }
        Ok(parts.join("/"))
    }

    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.entries.get(path)
    }

    /// Resolves `path` (normalised or not) through the tree's own symlinks: absolute targets
    /// start again at the tree's root, `..` stops there. `follow_last` says whether a symlink in
    /// the last component is followed. `None` for a loop or too many links.
    pub fn resolve(&self, path: &str, follow_last: bool) -> Option<String> {
        let mut pending: Vec<String> = path
            .split('/')
            .filter(|p| !p.is_empty())
            .rev()
            .map(str::to_owned)
            .collect();
        let mut resolved: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(part) = pending.pop() {
            match part.as_str() {
                "." => continue,
                ".." => {
                    resolved.pop();
                    continue;
                }
                _ => {}
            }
            resolved.push(part);
            let is_last = pending.is_empty();
            if is_last && !follow_last {
                break;
            }
            let here = resolved.join("/");
            if let Some(Entry {
                kind: Kind::Symlink(target),
                ..
            }) = self.entries.get(&here)
            {
                hops += 1;
                if hops > self.limits.max_symlink_hops
                    || here.len() + target.len() > self.limits.max_path_bytes
                {
                    return None;
                }
                resolved.pop();
                if target.starts_with('/') {
                    resolved.clear();
                }
                pending.extend(
                    target
                        .split('/')
                        .filter(|p| !p.is_empty())
                        .rev()
                        .map(str::to_owned),
                );
            }
        }
        Some(resolved.join("/"))
    }

    /// The contents of a package database file, the path resolved inside the tree; `None` when
    /// it is absent, not a regular file or was not kept (see [`wanted`]).
    pub fn read(&self, path: &str) -> Option<&[u8]> {
        let real = self.resolve(path, true)?;
        match self.entries.get(&real)?.kind {
            Kind::File { .. } => self.contents.get(&real).map(Vec::as_slice),
            _ => None,
        }
    }

    /// The kept database files, by real path, sorted.
    pub fn kept(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.contents
            .iter()
            .map(|(p, c)| (p.as_str(), c.as_slice()))
    }

    /// Kept files directly inside `dir` (a real path), sorted by name.
    pub fn kept_in<'a>(&'a self, dir: &'a str) -> impl Iterator<Item = (&'a str, &'a [u8])> {
        let prefix = format!("{dir}/");
        let end = format!("{dir}0");
        self.contents
            .range(prefix.clone()..end)
            .filter(move |(p, _)| !p[prefix.len()..].contains('/'))
            .map(|(p, c)| (p.as_str(), c.as_slice()))
    }

    /// The regular files, sorted by path.
    pub fn files(&self) -> impl Iterator<Item = FileRef<'_>> {
        self.entries.iter().filter_map(|(path, e)| match &e.kind {
            Kind::File { size, sha256, sha1 } => Some(FileRef {
                path,
                size: *size,
                sha256,
                sha1,
            }),
            _ => None,
        })
    }

    pub fn file_count(&self) -> usize {
        self.files().count()
    }

    /// Inserts an entry, creating missing parent directories and replacing what was there (a
    /// directory replaced by something else takes its subtree with it). `false` (with a warning)
    /// when a parent is not a directory.
    pub(super) fn insert(
        &mut self,
        path: String,
        entry: Entry,
        contents: Option<Vec<u8>>,
    ) -> Result<bool, SbomGenError> {
        if path.is_empty() {
            return Ok(true);
        }
        let mut ancestors = Vec::new();
        let mut dir = split_last(&path).0;
        while !dir.is_empty() {
            match self.entries.get(dir) {
                Some(Entry {
                    kind: Kind::Dir, ..
                }) => break,
                Some(_) => {
                    self.warnings
                        .push(format!("skipped /{path}: /{dir} is not a directory"));
                    return Ok(false);
                }
                None => ancestors.push(dir.to_owned()),
            }
            dir = split_last(dir).0;
        }
        let replaced_dir = matches!(
            self.entries.get(&path),
            Some(Entry {
                kind: Kind::Dir,
                ..
            })
        );
        if replaced_dir && entry.kind != Kind::Dir {
            self.remove_tree(&path, usize::MAX, false);
        }
        let added = ancestors.len() + usize::from(!self.entries.contains_key(&path));
        if self.entries.len() + added > self.limits.max_entries {
            return Err(SbomGenError::Limit {
                what: "entries in the root filesystem",
                limit: self.limits.max_entries as u64,
            });
        }
        for dir in ancestors {
            self.entries.insert(
                dir,
                Entry {
                    kind: Kind::Dir,
                    mode: 0o755,
                    layer: entry.layer,
                },
            );
        }
        self.forget_contents(&path);
        if let Some(data) = contents {
            self.content_bytes += data.len() as u64;
            self.contents.insert(path.clone(), data);
        }
        if entry.kind == Kind::Dir && replaced_dir {
            // An existing directory keeps its children; only its metadata changes.
            if let Some(existing) = self.entries.get_mut(&path) {
                existing.mode = entry.mode;
                existing.layer = entry.layer;
            }
        } else {
            self.entries.insert(path, entry);
        }
        Ok(true)
    }

    fn forget_contents(&mut self, path: &str) {
        if let Some(old) = self.contents.remove(path) {
            self.content_bytes -= old.len() as u64;
        }
    }

    /// Removes the entries of layers below `below_layer`: `path` itself (unless `children_only`)
    /// and everything under it. `path` empty means the root.
    pub(super) fn remove_tree(&mut self, path: &str, below_layer: usize, children_only: bool) {
        let doomed: Vec<String> = {
            let under: Box<dyn Iterator<Item = (&String, &Entry)>> = if path.is_empty() {
                Box::new(self.entries.iter())
            } else {
                Box::new(
                    self.entries
                        .range(format!("{path}/")..format!("{path}0"))
                        .chain(self.entries.get_key_value(path).filter(|_| !children_only)),
                )
            };
            under
                .filter(|(_, e)| e.layer < below_layer)
                .map(|(p, _)| p.clone())
                .collect()
        };
        for p in doomed {
            self.entries.remove(&p);
            self.forget_contents(&p);
        }
    }

    /// Whether `size` more bytes of database contents may be kept; warns when not.
    pub(super) fn may_keep(&mut self, path: &str, size: u64) -> bool {
        if size > self.limits.max_db_file_bytes {
            self.warnings.push(format!(
                "not read: /{path} ({size} bytes, over the {}-byte limit)",
                self.limits.max_db_file_bytes
            ));
            return false;
        }
        if self.content_bytes + size > self.limits.max_db_total_bytes {
            self.warnings.push(format!(
                "not read: /{path} (package databases over {} bytes in all)",
                self.limits.max_db_total_bytes
            ));
            return false;
        }
        true
    }

    /// Walks an unpacked root filesystem. Symlinks are recorded, never followed; special files
    /// are skipped; regular files are hashed by a few threads, each streaming its file.
    pub fn from_dir(root: &Path, limits: Limits) -> Result<Tree, SbomGenError> {
        let mut tree = Tree::new(limits);
        let io_err = |p: &Path, e: io::Error| SbomGenError::Io {
            path: p.display().to_string(),
            source: e,
        };
        let meta = fs::metadata(root).map_err(|e| io_err(root, e))?;
        if !meta.is_dir() {
            return Err(SbomGenError::Input(format!(
                "{} is neither a directory nor an OCI image layout",
                root.display()
            )));
        }
        let mut jobs: Vec<Job> = Vec::new();
        let mut stack: Vec<(PathBuf, String)> = vec![(root.to_path_buf(), String::new())];
        let mut seen = 0usize;
        while let Some((dir, rel)) = stack.pop() {
            let listing = match fs::read_dir(&dir) {
                Ok(l) => l,
                Err(e) => {
                    tree.warnings.push(format!(
                        "cannot list /{rel}: {e}; its contents are left out"
                    ));
                    continue;
                }
            };
            for item in listing {
                let item = item.map_err(|e| io_err(&dir, e))?;
                seen += 1;
                if seen > tree.limits.max_entries {
                    return Err(SbomGenError::Limit {
                        what: "entries in the root filesystem",
                        limit: tree.limits.max_entries as u64,
                    });
                }
                let name = item.file_name().to_string_lossy().into_owned();
                let child_rel = join(&rel, &name);
                if child_rel.len() > tree.limits.max_path_bytes {
                    return Err(SbomGenError::Limit {
                        what: "path length in bytes",
                        limit: tree.limits.max_path_bytes as u64,
                    });
                }
                let path = item.path();
                // symlink_metadata: the entry itself, never what a link points to.
                let meta = match fs::symlink_metadata(&path) {
                    Ok(m) => m,
                    Err(e) => {
                        tree.warnings.push(format!("skipped /{child_rel}: {e}"));
                        continue;
                    }
                };
                let mode = meta.mode() & 0o7777;
                let ft = meta.file_type();
                if ft.is_dir() {
                    tree.insert(
                        child_rel.clone(),
                        Entry {
                            kind: Kind::Dir,
                            mode,
                            layer: 0,
                        },
                        None,
                    )?;
                    stack.push((path, child_rel));
                } else if ft.is_symlink() {
                    let target = fs::read_link(&path).map_err(|e| io_err(&path, e))?;
                    tree.insert(
                        child_rel,
                        Entry {
                            kind: Kind::Symlink(target.to_string_lossy().into_owned()),
                            mode,
                            layer: 0,
                        },
                        None,
                    )?;
                } else if ft.is_file() {
                    let keep = wanted(&child_rel) && tree.may_keep(&child_rel, meta.len());
                    jobs.push(Job {
                        beneath: path.strip_prefix(root).map(Path::to_path_buf).ok(),
                        path,
                        rel: child_rel,
                        mode,
                        keep,
                    });
                } else {
                    tree.skipped_special += 1;
                }
            }
        }
        let budget = AtomicU64::new(
            tree.limits
                .max_db_total_bytes
                .saturating_sub(tree.content_bytes),
        );
        // Files are opened beneath this descriptor, so a directory swapped for a symlink since
        // the walk cannot lead the open out of the tree.
        let root_dir = fs::File::open(root).map_err(|e| io_err(root, e))?;
        let results = hash_jobs(&jobs, &root_dir, &tree.limits, &budget);
        for (job, result) in jobs.into_iter().zip(results) {
            match result {
                Ok(Some(h)) => {
                    tree.insert(
                        job.rel,
                        Entry {
                            kind: Kind::File {
                                size: h.size,
                                sha256: h.sha256,
                                sha1: h.sha1,
                            },
                            mode: job.mode,
                            layer: 0,
                        },
                        h.contents,
                    )?;
                }
                Ok(None) => tree.warnings.push(format!(
                    "skipped /{}: no longer a regular file when opened",
                    job.rel
                )),
                Err(e) => tree.warnings.push(format!("skipped /{}: {e}", job.rel)),
            }
        }
        Ok(tree)
    }
}

struct Job {
    path: PathBuf,
    /// `path` relative to the root, for `openat2`.
    beneath: Option<PathBuf>,
    rel: String,
    mode: u32,
    keep: bool,
}

/// A file's digests, and its contents when kept.
pub(super) struct Hashed {
    pub size: u64,
    pub sha256: [u8; 32],
    pub sha1: [u8; 20],
    pub contents: Option<Vec<u8>>,
}

/// Streams `reader` through SHA-256 and SHA-1 in 64 KiB reads, keeping the bytes when `keep`
/// (and dropping them past `max_keep`).
pub(super) fn hash_stream<R: Read>(mut reader: R, keep: bool, max_keep: u64) -> io::Result<Hashed> {
    let mut sha256 = Sha256::new();
    let mut sha1 = Sha1::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    let mut contents = keep.then(Vec::new);
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let chunk = &buf[..n];
        sha256.update(chunk);
        sha1.update(chunk);
        size += n as u64;
        if size > max_keep {
            contents = None;
        }
        if let Some(c) = contents.as_mut() {
            c.extend_from_slice(chunk);
        }
    }
    Ok(Hashed {
        size,
        sha256: sha256.finalize().into(),
        sha1: sha1.finalize().into(),
        contents,
    })
}

/// Hashes the files on a few threads; results in the order of `jobs`. `Ok(None)`: the path was
/// no longer a regular file when opened (replaced since the walk).
fn hash_jobs(
    jobs: &[Job],
    root: &fs::File,
    limits: &Limits,
    budget: &AtomicU64,
) -> Vec<io::Result<Option<Hashed>>> {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(limits.hash_workers)
        .clamp(1, 64);
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<(usize, io::Result<Option<Hashed>>)>> =
        Mutex::new(Vec::with_capacity(jobs.len()));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                let mut mine = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    mine.push((i, hash_one(job, root, limits, budget)));
                }
                if let Ok(mut all) = done.lock() {
                    all.extend(mine);
                }
            });
        }
    });
    let mut done = done.into_inner().unwrap_or_else(|p| p.into_inner());
    done.sort_by_key(|(i, _)| *i);
    let mut out: Vec<io::Result<Option<Hashed>>> = Vec::with_capacity(jobs.len());
    let mut results = done.into_iter().peekable();
    for i in 0..jobs.len() {
        match results.next_if(|(j, _)| *j == i) {
            Some((_, r)) => out.push(r),
            None => out.push(Err(io::Error::other("not hashed"))),
        }
    }
    out
}

fn hash_one(
    job: &Job,
    root: &fs::File,
    limits: &Limits,
    budget: &AtomicU64,
) -> io::Result<Option<Hashed>> {
    let beneath = job
        .beneath
        .as_deref()
        .and_then(|rel| open_beneath(root, rel));
    let opened = beneath.unwrap_or_else(|| {
        // Without openat2: O_NOFOLLOW still refuses a last component swapped for a symlink;
        // O_NONBLOCK keeps one swapped for a FIFO from hanging the open.
        let flags = nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK;
        fs::OpenOptions::new()
            .read(true)
            .custom_flags(flags.bits())
            .open(&job.path)
    });
    let file = match opened {
        Ok(f) => f,
        // A symlink on the way (ELOOP) or a way out of the tree (EXDEV): changed since the walk.
        Err(e) if matches!(e.raw_os_error(), Some(nix::libc::ELOOP | nix::libc::EXDEV)) => {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    if !file.metadata()?.is_file() {
        return Ok(None);
    }
    let mut hashed = hash_stream(&file, job.keep, limits.max_db_file_bytes)?;
    if let Some(c) = &hashed.contents {
        let size = c.len() as u64;
        let granted = budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(size)
            })
            .is_ok();
        if !granted {
            hashed.contents = None;
        }
    }
    Ok(Some(hashed))
}

/// Opens `rel` beneath `root` following no symlink in any component (`openat2` with
/// `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`). `None` where the kernel or a seccomp filter has no
/// `openat2` (before Linux 5.6).
pub(super) fn open_beneath(root: &fs::File, rel: &Path) -> Option<io::Result<fs::File>> {
    use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
    match openat2(root.as_raw_fd(), rel, how) {
        // SAFETY: openat2 returned a new descriptor that nothing else owns.
        Ok(fd) => Some(Ok(unsafe { fs::File::from_raw_fd(fd) })),
        Err(nix::errno::Errno::ENOSYS | nix::errno::Errno::EPERM) => None,
        Err(e) => Some(Err(io::Error::from(e))),
    }
}
