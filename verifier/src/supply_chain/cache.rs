//! The verdict cache: signature verdicts kept under `<state_dir>/cache`, keyed by the image digest
//! and the digest of everything the verdict depended on (the policy bytes and the keys and trusted
//! roots it names), with the `[cache]` TTLs.
//!
//! Concurrent starts of one image, in as many shim processes, verify once: the first takes an
//! exclusive `flock` on the entry's lock file and verifies; the others wait on the lock and then
//! find its fresh verdict. Entries are written atomically (temporary file, then rename); a corrupt
//! or oversized entry is a miss, never an error.

use std::{
    fs::{self, File, OpenOptions},
    io::{Read, Write},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// An entry larger than this is not one of ours.
const MAX_ENTRY: u64 = 1024 * 1024;

/// What a cached verification concluded, per rule, for one image under one policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Seconds since the epoch when the verification ran.
    pub verified_at: u64,
    /// `true` when every verify rule that matched was satisfied.
    pub allowed: bool,
    /// Per rule: `Ok(summary of what verified)` or `Err(reason)`.
    pub rules: Vec<(String, std::result::Result<Vec<String>, String>)>,
    /// Seconds since the epoch from which the verdict no longer holds, whatever the TTL: an
    /// `ignore` entry or an authority's validity ends, an SBOM grows older than `max_age_days`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// Per rule with `[rule.sbom]`: the digest of the SBOM that was judged.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub sbom_digests: std::collections::BTreeMap<String, String>,
}

impl Entry {
    pub fn new(
        allowed: bool,
        rules: Vec<(String, std::result::Result<Vec<String>, String>)>,
    ) -> Self {
        Entry {
            verified_at: now_s(),
            allowed,
            rules,
            expires_at: None,
            sbom_digests: Default::default(),
        }
    }

    /// The same entry, stale from `expires_at` (seconds since the epoch) on.
    pub fn expiring(mut self, expires_at: Option<u64>) -> Self {
        self.expires_at = expires_at;
        self
    }
}

/// Seconds since the epoch.
pub(crate) fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The key of one entry: which image, judged against which policy and trust material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// `sha256:<hex>`.
    pub image_digest: String,
    /// Hex SHA-256 over the policy digest and every key / trusted root file the policy names.
    pub material_digest: String,
}

impl Key {
    fn file_stem(&self) -> Option<String> {
        let hex = self.image_digest.strip_prefix("sha256:")?;
        let ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
        (ok(hex) && ok(&self.material_digest)).then(|| format!("{hex}-{}", self.material_digest))
    }
}

pub struct VerdictCache {
    dir: PathBuf,
    allow_ttl: Duration,
    deny_ttl: Duration,
}

/// Holds the entry's lock; dropping it lets the next waiting start in.
pub struct Locked {
    _lock: Flock<File>,
    path: PathBuf,
}

impl VerdictCache {
    pub fn new(state_dir: &Path, allow_ttl_s: u64, deny_ttl_s: u64) -> Self {
        VerdictCache {
            dir: state_dir.join("cache"),
            allow_ttl: Duration::from_secs(allow_ttl_s),
            deny_ttl: Duration::from_secs(deny_ttl_s),
        }
    }

    /// Takes the entry's exclusive lock, waiting for a start that holds it.
    pub fn lock(&self, key: &Key) -> Result<Locked> {
        let stem = key.file_stem().ok_or_else(|| Error::Cache {
            path: self.dir.clone(),
            reason: format!("invalid cache key {key:?}"),
        })?;
        let cache_error = |path: &Path, e: std::io::Error| Error::Cache {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        fs::create_dir_all(&self.dir).map_err(|e| cache_error(&self.dir, e))?;
        let lock_path = self.dir.join(format!("{stem}.lock"));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|e| cache_error(&lock_path, e))?;
        let lock = Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| Error::Cache {
            path: lock_path.clone(),
            reason: format!("cannot lock: {e}"),
        })?;
        Ok(Locked {
            _lock: lock,
            path: self.dir.join(format!("{stem}.json")),
        })
    }

    /// The entry, if it exists, parses and is within its TTL.
    pub fn fresh(&self, locked: &Locked) -> Option<Entry> {
        let entry = read_entry(&locked.path)?;
        let ttl = if entry.allowed {
            self.allow_ttl
        } else {
            self.deny_ttl
        };
        let now = now_s();
        let age = now.saturating_sub(entry.verified_at);
        let expired = entry.expires_at.is_some_and(|at| now >= at);
        (age < ttl.as_secs() && !expired).then_some(entry)
    }

    /// Writes the entry atomically.
    pub fn store(&self, locked: &Locked, entry: &Entry) -> Result<()> {
        let cache_error = |e: std::io::Error| Error::Cache {
            path: locked.path.clone(),
            reason: e.to_string(),
        };
        let bytes = serde_json::to_vec(entry).map_err(|e| Error::Cache {
            path: locked.path.clone(),
            reason: e.to_string(),
        })?;
        write_atomic(&locked.path, &bytes).map_err(cache_error)
    }
}

/// Writes `bytes` to `path` so that a reader sees the old file or the whole new one: a private
/// temporary file beside it (0600), flushed to disk, then renamed over it.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
    let written = OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .and_then(|_| fs::rename(&tmp, path));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

fn read_entry(path: &Path) -> Option<Entry> {
    let f = File::open(path).ok()?;
    if f.metadata().ok()?.len() > MAX_ENTRY {
        return None;
    }
    let mut bytes = Vec::new();
    f.take(MAX_ENTRY).read_to_end(&mut bytes).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    };

    fn key() -> Key {
        Key {
            image_digest: format!("sha256:{}", "ab".repeat(32)),
            material_digest: "cd".repeat(32),
        }
    }

    #[test]
    fn stored_verdicts_are_fresh_within_their_ttl_only() {
        let dir = tempfile::tempdir().unwrap();
        let cache = VerdictCache::new(dir.path(), 3600, 0);
        let l = cache.lock(&key()).unwrap();
        assert_eq!(cache.fresh(&l), None);
        let allow = Entry::new(true, vec![("prod".into(), Ok(vec!["key release".into()]))]);
        cache.store(&l, &allow).unwrap();
        assert_eq!(cache.fresh(&l), Some(allow));
        // A deny with a zero TTL is never reused.
        cache
            .store(
                &l,
                &Entry::new(false, vec![("prod".into(), Err("unsigned".into()))]),
            )
            .unwrap();
        assert_eq!(cache.fresh(&l), None);
    }

    #[test]
    fn corrupt_and_foreign_entries_are_misses_and_bad_keys_errors() {
        let dir = tempfile::tempdir().unwrap();
        let cache = VerdictCache::new(dir.path(), 3600, 60);
        let l = cache.lock(&key()).unwrap();
        fs::write(&l.path, b"{not json").unwrap();
        assert_eq!(cache.fresh(&l), None);
        let bad = Key {
            image_digest: "sha256:../../etc".into(),
            material_digest: "x".into(),
        };
        assert!(cache.lock(&bad).is_err());
    }

    #[test]
    fn twenty_concurrent_starts_verify_once() {
        let dir = tempfile::tempdir().unwrap();
        let verifications = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..20)
            .map(|_| {
                let dir = dir.path().to_path_buf();
                let verifications = Arc::clone(&verifications);
                std::thread::spawn(move || {
                    // Each thread as its own process would: its own cache handle and lock file fd.
                    let cache = VerdictCache::new(&dir, 3600, 60);
                    let l = cache.lock(&key()).unwrap();
                    if let Some(e) = cache.fresh(&l) {
                        return e.allowed;
                    }
                    verifications.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(50));
                    let e = Entry::new(true, vec![]);
                    cache.store(&l, &e).unwrap();
                    e.allowed
                })
            })
            .collect();
        for h in handles {
            assert!(h.join().unwrap());
        }
        assert_eq!(verifications.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn an_entry_past_its_expiry_is_stale_within_the_ttl() {
        let dir = tempfile::tempdir().unwrap();
        let cache = VerdictCache::new(dir.path(), 3600, 60);
        let key = Key {
            image_digest: format!("sha256:{}", "ab".repeat(32)),
            material_digest: "cd".repeat(32),
        };
        let l = cache.lock(&key).unwrap();
        let entry = Entry::new(true, vec![]).expiring(Some(now_s().saturating_sub(1)));
        cache.store(&l, &entry).unwrap();
        assert!(cache.fresh(&l).is_none());
        let entry = Entry::new(true, vec![]).expiring(Some(now_s() + 600));
        cache.store(&l, &entry).unwrap();
        assert!(cache.fresh(&l).is_some());
    }
}
