//! Host state at start (kernel, modules, LSMs, runtime binaries) and the spec's security settings,
//! and the `[rule.host]` checks over them.
//!
//! Everything here is read fresh at each start except the SHA-256 of the runtime binaries (runc,
//! the shim), which is cached under `state_dir` keyed by the file's device, inode, size, mtime and
//! ctime: a replaced or modified binary changes at least one of them (ctime cannot be set back
//! from user space), so it is always re-hashed.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::policy::HostRequirement;

/// The capabilities containerd and Docker grant by default; anything else is "added".
const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_AUDIT_WRITE",
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_MKNOD",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_RAW",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
];

/// Namespaces a container normally has of its own; one missing from the spec is the host's.
const ISOLATING_NAMESPACES: &[&str] = &["pid", "network", "ipc", "uts"];

/// Bounds on what is read from `/proc` and `/sys` (they are small; a bound keeps it so).
const MAX_PROC_FILE: u64 = 1024 * 1024;

/// A binary and its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BinaryDigest {
    pub path: PathBuf,
    /// Lower-case hex.
    pub sha256: String,
}

/// The host, as measured at a start. `None` means the kernel does not offer it (no module
/// support, securityfs not mounted); what could not be read is listed in `unreadable`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostState {
    pub kernel_release: String,
    pub kernel_cmdline: String,
    pub modules: Option<Vec<String>>,
    /// Active LSMs, in the kernel's order (`/sys/kernel/security/lsm`).
    pub lsm: Option<Vec<String>>,
    /// `enforcing` | `permissive`; `None` without SELinux.
    pub selinux: Option<String>,
    /// `enabled` | `disabled`; `None` without AppArmor.
    pub apparmor: Option<String>,
    pub runc: Option<BinaryDigest>,
    pub shim: Option<BinaryDigest>,
    pub containerd_version: Option<String>,
    /// Each thing that could not be measured, with why.
    pub unreadable: Vec<String>,
    /// `/proc/modules` exists but could not be read: not the same as "no module support".
    #[serde(skip)]
    pub modules_unreadable: bool,
}

/// The security settings of a container's OCI spec.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecSecurity {
    /// CAP_SYS_ADMIN in the bounding set and no masked paths: what `--privileged` gives.
    pub privileged: bool,
    /// Capabilities beyond containerd's default set, in any of the process's sets.
    pub added_capabilities: Vec<String>,
    /// Namespaces (`pid`, `network`, `ipc`, `uts`) shared with the host.
    pub host_namespaces: Vec<String>,
    /// Sources of bind mounts from the host, with their destination: `src -> dst`.
    pub host_mounts: Vec<String>,
    /// The seccomp filter's default action; `None` when there is no filter (or it allows all).
    pub seccomp: Option<String>,
    pub no_new_privileges: bool,
    pub apparmor_profile: Option<String>,
    pub selinux_label: Option<String>,
}

/// Where the host's files are: `/proc` and `/sys`, or a copy of them in tests.
#[derive(Debug, Clone)]
pub struct HostPaths {
    pub proc: PathBuf,
    pub sys: PathBuf,
}

impl Default for HostPaths {
    fn default() -> Self {
        HostPaths {
            proc: "/proc".into(),
            sys: "/sys".into(),
        }
    }
}

/// Asks containerd for its version.
pub type AskVersion<'a> = &'a dyn Fn() -> Result<String, String>;

/// What the caller knows that the host cannot tell by itself.
#[derive(Clone, Default)]
pub struct Inputs<'a> {
    /// The runc binary as configured (`BinaryName`, or `runc` on `PATH`).
    pub runc: Option<&'a str>,
    /// The shim's own binary.
    pub shim: Option<&'a Path>,
    /// containerd's socket, and how to ask it for its version: asked once per socket (a restarted
    /// containerd makes a new socket), then cached.
    pub containerd: Option<(&'a Path, AskVersion<'a>)>,
    /// Where the digest cache lives (`<state_dir>/host`); `None`: no cache.
    pub cache_dir: Option<&'a Path>,
}

fn read_small(path: &Path) -> std::io::Result<String> {
    let mut text = String::new();
    fs::File::open(path)?
        .take(MAX_PROC_FILE)
        .read_to_string(&mut text)?;
    Ok(text)
}

/// Measures the host.
pub fn collect(paths: &HostPaths, inputs: &Inputs<'_>) -> HostState {
    let mut state = HostState::default();
    let mut read = |rel: &str, base: &Path| -> Option<String> {
        let path = base.join(rel);
        match read_small(&path) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                state.unreadable.push(format!("{}: {e}", path.display()));
                None
            }
        }
    };
    let modules_path = paths.proc.join("modules");
    let release = read("sys/kernel/osrelease", &paths.proc);
    let cmdline = read("cmdline", &paths.proc);
    let modules = read("modules", &paths.proc).map(|t| {
        let mut names: Vec<String> = t
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_string)
            .collect();
        names.sort();
        names
    });
    let lsm = read("kernel/security/lsm", &paths.sys).map(|t| {
        t.trim()
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect::<Vec<_>>()
    });
    let selinux = read("fs/selinux/enforce", &paths.sys).map(|t| {
        if t.trim() == "1" {
            "enforcing".to_string()
        } else {
            "permissive".to_string()
        }
    });
    let apparmor = read("module/apparmor/parameters/enabled", &paths.sys).map(|t| {
        if t.trim().eq_ignore_ascii_case("y") {
            "enabled".to_string()
        } else {
            "disabled".to_string()
        }
    });
    state.kernel_release = release.map(|r| r.trim().to_string()).unwrap_or_default();
    state.kernel_cmdline = cmdline.map(|c| c.trim().to_string()).unwrap_or_default();
    state.modules_unreadable = modules.is_none() && modules_path.exists();
    state.modules = modules;
    state.lsm = lsm;
    state.selinux = selinux;
    state.apparmor = apparmor;
    let mut cache = inputs.cache_dir.map(DigestCache::load);
    if let Some(runc) = inputs.runc {
        match find_binary(runc) {
            Some(path) => match digest_of(&path, cache.as_mut()) {
                Ok(d) => state.runc = Some(d),
                Err(e) => state
                    .unreadable
                    .push(format!("runc {}: {e}", path.display())),
            },
            None => state
                .unreadable
                .push(format!("runc binary \"{runc}\" not found on PATH")),
        }
    }
    if let Some(shim) = inputs.shim {
        match digest_of(shim, cache.as_mut()) {
            Ok(d) => state.shim = Some(d),
            Err(e) => state
                .unreadable
                .push(format!("shim {}: {e}", shim.display())),
        }
    }
    if let Some((socket, ask)) = &inputs.containerd {
        match containerd_version(socket, ask, cache.as_mut()) {
            Ok(v) => state.containerd_version = Some(v),
            Err(e) => state.unreadable.push(format!("containerd version: {e}")),
        }
    }
    if let Some(cache) = cache {
        cache.save();
    }
    state
}

/// `name` as runc would be found: a path as is, a bare name on `PATH`.
fn find_binary(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return Some(PathBuf::from(name));
    }
    let path = std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The stat identity a cached digest is valid for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl Stamp {
    fn of(m: &fs::Metadata) -> Stamp {
        Stamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            ctime_ns: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Cached {
    stamp: Stamp,
    sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct KnownContainerd {
    socket: PathBuf,
    stamp: Stamp,
    version: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Stored {
    binaries: BTreeMap<PathBuf, Cached>,
    containerd: Option<KnownContainerd>,
}

/// Digests of binaries by path, and containerd's version by socket, valid while the stat
/// identity of the file holds.
struct DigestCache {
    file: PathBuf,
    stored: Stored,
    dirty: bool,
}

impl DigestCache {
    fn load(dir: &Path) -> DigestCache {
        let file = dir.join("binaries.json");
        // A missing, unreadable or corrupt cache only means hashing again.
        let stored = read_small(&file)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        DigestCache {
            file,
            stored,
            dirty: false,
        }
    }

    fn save(self) {
        if !self.dirty {
            return;
        }
        let Some(dir) = self.file.parent() else {
            return;
        };
        let write = || -> std::io::Result<()> {
            fs::create_dir_all(dir)?;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
            let bytes = serde_json::to_vec(&self.stored).map_err(std::io::Error::other)?;
            crate::cache::write_atomic(&self.file, &bytes)
        };
        if let Err(e) = write() {
            log::warn!("cannot save {}: {e}", self.file.display());
        }
    }
}

fn digest_of(path: &Path, cache: Option<&mut DigestCache>) -> std::io::Result<BinaryDigest> {
    let path = fs::canonicalize(path)?;
    let mut file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc_o_cloexec())
        .open(&path)?;
    let before = file.metadata()?;
    if !before.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let stamp = Stamp::of(&before);
    if let Some(c) = cache.as_ref().and_then(|c| c.stored.binaries.get(&path)) {
        if c.stamp == stamp {
            return Ok(BinaryDigest {
                path,
                sha256: c.sha256.clone(),
            });
        }
    }
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let after = file.metadata()?;
    if Stamp::of(&after) != stamp {
        return Err(std::io::Error::other("changed while it was hashed"));
    }
    let sha256 = hex::encode(hasher.finalize());
    if let Some(c) = cache {
        c.stored.binaries.insert(
            path.clone(),
            Cached {
                stamp,
                sha256: sha256.clone(),
            },
        );
        c.dirty = true;
    }
    Ok(BinaryDigest { path, sha256 })
}

fn containerd_version(
    socket: &Path,
    ask: &dyn Fn() -> Result<String, String>,
    cache: Option<&mut DigestCache>,
) -> Result<String, String> {
    let path = socket
        .to_str()
        .and_then(|s| s.strip_prefix("unix://"))
        .map(PathBuf::from)
        .unwrap_or_else(|| socket.to_path_buf());
    let stamp = fs::metadata(&path).ok().map(|m| Stamp::of(&m));
    if let (Some(stamp), Some(c)) = (&stamp, cache.as_ref()) {
        if let Some(known) = &c.stored.containerd {
            if known.socket == path && &known.stamp == stamp {
                return Ok(known.version.clone());
            }
        }
    }
    let version = ask()?;
    if let (Some(stamp), Some(c)) = (stamp, cache) {
        c.stored.containerd = Some(KnownContainerd {
            socket: path,
            stamp,
            version: version.clone(),
        });
        c.dirty = true;
    }
    Ok(version)
}

fn libc_o_cloexec() -> i32 {
    nix::fcntl::OFlag::O_CLOEXEC.bits()
}

/// Reads the security settings of an OCI runtime spec (`config.json`). Lenient: absent fields
/// take the runtime's defaults (no seccomp, no masked paths, no capabilities).
pub fn spec_security(spec: &serde_json::Value) -> SpecSecurity {
    let strings = |v: Option<&serde_json::Value>| -> Vec<String> {
        v.and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let process = spec.get("process");
    let caps = process.and_then(|p| p.get("capabilities"));
    let bounding = strings(caps.and_then(|c| c.get("bounding")));
    let mut granted: BTreeSet<String> = BTreeSet::new();
    for set in [
        "bounding",
        "effective",
        "permitted",
        "inheritable",
        "ambient",
    ] {
        granted.extend(strings(caps.and_then(|c| c.get(set))));
    }
    let added_capabilities = granted
        .into_iter()
        .filter(|c| !DEFAULT_CAPABILITIES.contains(&c.as_str()))
        .collect();
    let linux = spec.get("linux");
    let masked = strings(linux.and_then(|l| l.get("maskedPaths")));
    let privileged = bounding.iter().any(|c| c == "CAP_SYS_ADMIN") && masked.is_empty();

    let namespaces: Vec<(String, Option<String>)> = linux
        .and_then(|l| l.get("namespaces"))
        .and_then(|n| n.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|n| {
                    let kind = n.get("type")?.as_str()?.to_string();
                    let path = n.get("path").and_then(|p| p.as_str()).map(str::to_string);
                    Some((kind, path))
                })
                .collect()
        })
        .unwrap_or_default();
    let host_namespaces = ISOLATING_NAMESPACES
        .iter()
        .filter(|kind| {
            match namespaces.iter().find(|(k, _)| k == *kind) {
                None => true,
                // Joining PID 1's namespace is joining the host's.
                Some((_, Some(path))) => path.starts_with("/proc/1/ns/"),
                Some((_, None)) => false,
            }
        })
        .map(|k| k.to_string())
        .collect();

    let host_mounts = spec
        .get("mounts")
        .and_then(|m| m.as_array())
        .map(|a| {
            a.iter()
                .filter(|m| {
                    let kind = m.get("type").and_then(|t| t.as_str()).unwrap_or("");
                    kind == "bind"
                        || strings(m.get("options"))
                            .iter()
                            .any(|o| o == "bind" || o == "rbind")
                })
                .filter_map(|m| {
                    let src = m.get("source")?.as_str()?;
                    let dst = m.get("destination")?.as_str()?;
                    Some(format!("{src} -> {dst}"))
                })
                .collect()
        })
        .unwrap_or_default();

    let seccomp = linux
        .and_then(|l| l.get("seccomp"))
        .and_then(|s| s.get("defaultAction"))
        .and_then(|a| a.as_str())
        .filter(|a| *a != "SCMP_ACT_ALLOW")
        .map(str::to_string);
    let text = |v: Option<&serde_json::Value>| {
        v.and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    SpecSecurity {
        privileged,
        added_capabilities,
        host_namespaces,
        host_mounts,
        seccomp,
        no_new_privileges: process
            .and_then(|p| p.get("noNewPrivileges"))
            .and_then(|v| v.as_bool())
            .unwrap_or(false),
        apparmor_profile: text(process.and_then(|p| p.get("apparmorProfile"))),
        selinux_label: text(process.and_then(|p| p.get("selinuxLabel"))),
    }
}

/// `*` matches any run of characters; everything else literally.
fn glob_match(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

/// At most this many names in one reason; then a count.
const SHOWN: usize = 5;

fn some_of(names: &[String]) -> String {
    let mut text = names
        .iter()
        .take(SHOWN)
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        text.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    text
}

/// Every way `host` and `spec` fail `req`, one line each, naming the setting. Without a spec
/// (`vouch verify` of an image, not a container), only the host is checked.
pub fn check(req: &HostRequirement, host: &HostState, spec: Option<&SpecSecurity>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(spec) = spec {
        check_spec(req, spec, &mut out);
    }
    check_host(req, host, &mut out);
    out
}

fn check_spec(req: &HostRequirement, spec: &SpecSecurity, out: &mut Vec<String>) {
    if !req.allow_privileged && spec.privileged {
        out.push(
            "host: allow_privileged = false, and the container is privileged \
             (CAP_SYS_ADMIN, no masked paths)"
                .to_string(),
        );
    }
    if req.require_seccomp && spec.seccomp.is_none() {
        out.push("host: require_seccomp = true, and the container has no seccomp filter".into());
    }
}

fn check_host(req: &HostRequirement, host: &HostState, out: &mut Vec<String>) {
    if req.allowed_modules.is_some() && host.modules_unreadable {
        out.push(
            "host: allowed_modules: the loaded modules cannot be read (/proc/modules)".to_string(),
        );
    }
    if let Some(allowed) = &req.allowed_modules {
        // A kernel without loadable modules (no /proc/modules) loads none.
        if let Some(loaded) = &host.modules {
            let bad: Vec<String> = loaded
                .iter()
                .filter(|m| !allowed.iter().any(|p| glob_match(p, m)))
                .cloned()
                .collect();
            if !bad.is_empty() {
                out.push(format!(
                    "host: allowed_modules: loaded module{} {} not allowed",
                    if bad.len() == 1 { "" } else { "s" },
                    some_of(&bad)
                ));
            }
        }
    }
    for lsm in &req.required_lsm {
        let active = host
            .lsm
            .as_ref()
            .is_some_and(|l| l.iter().any(|a| a.eq_ignore_ascii_case(lsm)));
        let enforcing = match lsm.as_str() {
            "apparmor" => host.apparmor.as_deref() == Some("enabled"),
            "selinux" => host.selinux.as_deref() == Some("enforcing"),
            _ => true,
        };
        match (&host.lsm, active, enforcing) {
            (None, _, _) => out.push(format!(
                "host: required_lsm \"{lsm}\": the active LSMs cannot be read \
                 (/sys/kernel/security/lsm; is securityfs mounted?)"
            )),
            (Some(list), false, _) => out.push(format!(
                "host: required_lsm \"{lsm}\" is not active (active: {})",
                if list.is_empty() {
                    "none".to_string()
                } else {
                    list.join(",")
                }
            )),
            (Some(_), true, false) => out.push(format!(
                "host: required_lsm \"{lsm}\" is active but not enforcing"
            )),
            _ => {}
        }
    }
    if !req.runc_sha256.is_empty() {
        match &host.runc {
            Some(runc) if req.runc_sha256.contains(&runc.sha256) => {}
            Some(runc) => out.push(format!(
                "host: runc_sha256: {} has sha256:{}, not an allowed digest",
                runc.path.display(),
                runc.sha256
            )),
            None => {
                out.push("host: runc_sha256: the runc binary could not be measured".to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requirement() -> HostRequirement {
        HostRequirement {
            allow_privileged: false,
            require_seccomp: false,
            allowed_modules: None,
            required_lsm: vec![],
            runc_sha256: vec![],
        }
    }

    /// A fake `/proc` and `/sys` with the given files.
    fn host_tree(files: &[(&str, &str)]) -> (tempfile::TempDir, HostPaths) {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let p = dir.path().join(path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        }
        let paths = HostPaths {
            proc: dir.path().join("proc"),
            sys: dir.path().join("sys"),
        };
        (dir, paths)
    }

    #[test]
    fn host_state_is_read_from_proc_and_sys() {
        let (_d, paths) = host_tree(&[
            ("proc/sys/kernel/osrelease", "6.1.0-18-amd64\n"),
            ("proc/cmdline", "BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro\n"),
            (
                "proc/modules",
                "overlay 151552 2 - Live 0x0\nbr_netfilter 32768 0 - Live 0x0\n",
            ),
            ("sys/kernel/security/lsm", "lockdown,capability,apparmor\n"),
            ("sys/module/apparmor/parameters/enabled", "Y\n"),
        ]);
        let h = collect(&paths, &Inputs::default());
        assert_eq!(h.kernel_release, "6.1.0-18-amd64");
        assert_eq!(h.kernel_cmdline, "BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro");
        assert_eq!(
            h.modules,
            Some(vec!["br_netfilter".to_string(), "overlay".to_string()])
        );
        assert_eq!(
            h.lsm,
            Some(vec![
                "lockdown".into(),
                "capability".into(),
                "apparmor".into()
            ])
        );
        assert_eq!(h.apparmor.as_deref(), Some("enabled"));
        assert_eq!(h.selinux, None);
        assert!(h.unreadable.is_empty(), "{:?}", h.unreadable);
    }

    #[test]
    fn this_machines_host_is_measured_without_panicking() {
        let h = collect(&HostPaths::default(), &Inputs::default());
        assert!(!h.kernel_release.is_empty());
    }

    #[test]
    fn binary_digests_are_cached_by_stat_identity_and_redone_when_changed() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("runc");
        fs::write(&bin, b"first").unwrap();
        let cache = dir.path().join("cache");
        let inputs = Inputs {
            runc: bin.to_str(),
            cache_dir: Some(&cache),
            ..Default::default()
        };
        let paths = HostPaths::default();
        let first = collect(&paths, &inputs).runc.unwrap();
        assert_eq!(first.sha256, hex::encode(Sha256::digest(b"first")));
        assert!(cache.join("binaries.json").exists());
        // The cache answers while the file is unchanged: prove it by poisoning the cached digest.
        let text = fs::read_to_string(cache.join("binaries.json")).unwrap();
        fs::write(
            cache.join("binaries.json"),
            text.replace(&first.sha256, &"0".repeat(64)),
        )
        .unwrap();
        assert_eq!(
            collect(&paths, &inputs).runc.unwrap().sha256,
            "0".repeat(64)
        );
        // Same size, mtime put back: ctime still moves, so the change is seen.
        let mtime = fs::metadata(&bin).unwrap().modified().unwrap();
        fs::write(&bin, b"other").unwrap();
        fs::File::options()
            .write(true)
            .open(&bin)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        assert_eq!(
            collect(&paths, &inputs).runc.unwrap().sha256,
            hex::encode(Sha256::digest(b"other"))
        );
        // A corrupt cache is ignored.
        fs::write(cache.join("binaries.json"), b"{not json").unwrap();
        assert_eq!(
            collect(&paths, &inputs).runc.unwrap().sha256,
            hex::encode(Sha256::digest(b"other"))
        );
        // A missing binary is named, not fatal.
        let missing = Inputs {
            runc: Some("no-such-runc-binary"),
            ..Default::default()
        };
        let h = collect(&paths, &missing);
        assert_eq!(h.runc, None);
        assert!(
            h.unreadable[0].contains("no-such-runc-binary"),
            "{:?}",
            h.unreadable
        );
    }

    #[test]
    fn containerd_version_is_asked_once_per_socket() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("c.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let asked = std::sync::atomic::AtomicUsize::new(0);
        let ask = || -> Result<String, String> {
            asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok("1.6.20".into())
        };
        let cache = dir.path().join("cache");
        let inputs = Inputs {
            containerd: Some((&socket, &ask)),
            cache_dir: Some(&cache),
            ..Default::default()
        };
        for _ in 0..3 {
            let h = collect(&HostPaths::default(), &inputs);
            assert_eq!(h.containerd_version.as_deref(), Some("1.6.20"));
        }
        assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 1);
        // A new socket (containerd restarted) is asked again.
        drop(_listener);
        fs::remove_file(&socket).unwrap();
        let _again = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        collect(&HostPaths::default(), &inputs);
        assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 2);
        let down = || -> Result<String, String> { Err("connection refused".into()) };
        let h = collect(
            &HostPaths::default(),
            &Inputs {
                containerd: Some((Path::new("/nonexistent.sock"), &down)),
                ..Default::default()
            },
        );
        assert_eq!(h.containerd_version, None);
        assert!(h
            .unreadable
            .iter()
            .any(|u| u.contains("connection refused")));
    }

    fn spec(json: serde_json::Value) -> SpecSecurity {
        spec_security(&json)
    }

    #[test]
    fn privileged_spec_is_recognised_and_refused_unless_allowed() {
        let all = ["CAP_SYS_ADMIN", "CAP_CHOWN", "CAP_NET_ADMIN"];
        let s = spec(serde_json::json!({
            "process": {"capabilities": {"bounding": all, "effective": all}},
            "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}]}
        }));
        assert!(s.privileged);
        assert_eq!(s.added_capabilities, vec!["CAP_NET_ADMIN", "CAP_SYS_ADMIN"]);
        assert!(s.host_namespaces.is_empty());
        let v = check(&requirement(), &HostState::default(), Some(&s));
        assert_eq!(v.len(), 1);
        assert!(v[0].starts_with("host: allow_privileged = false"), "{v:?}");
        let allowed = HostRequirement {
            allow_privileged: true,
            ..requirement()
        };
        assert!(check(&allowed, &HostState::default(), Some(&s)).is_empty());
        // CAP_SYS_ADMIN with masked paths is an added capability, not privileged.
        let s = spec(serde_json::json!({
            "process": {"capabilities": {"bounding": ["CAP_SYS_ADMIN"]}},
            "linux": {"maskedPaths": ["/proc/kcore"]}
        }));
        assert!(!s.privileged);
        assert_eq!(s.added_capabilities, vec!["CAP_SYS_ADMIN"]);
    }

    #[test]
    fn spec_settings_are_read() {
        let s = spec(serde_json::json!({
            "process": {"noNewPrivileges": true, "apparmorProfile": "cri-containerd.apparmor.d",
                        "capabilities": {"bounding": ["CAP_CHOWN", "CAP_KILL"]}},
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/data", "type": "bind", "source": "/srv/data", "options": ["rbind", "ro"]},
                {"destination": "/etc/hosts", "source": "/var/lib/x/hosts", "options": ["bind"]}
            ],
            "linux": {
                "namespaces": [{"type": "pid", "path": "/proc/1/ns/pid"}, {"type": "mount"},
                               {"type": "network", "path": "/var/run/netns/cni-1"}],
                "seccomp": {"defaultAction": "SCMP_ACT_ERRNO"},
                "maskedPaths": ["/proc/kcore"]
            }
        }));
        assert!(!s.privileged);
        assert!(s.added_capabilities.is_empty());
        assert_eq!(s.host_namespaces, vec!["pid", "ipc", "uts"]);
        assert_eq!(
            s.host_mounts,
            vec!["/srv/data -> /data", "/var/lib/x/hosts -> /etc/hosts"]
        );
        assert_eq!(s.seccomp.as_deref(), Some("SCMP_ACT_ERRNO"));
        assert!(s.no_new_privileges);
        assert_eq!(
            s.apparmor_profile.as_deref(),
            Some("cri-containerd.apparmor.d")
        );
        // A filter that allows everything is no filter.
        let s =
            spec(serde_json::json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW"}}}));
        assert_eq!(s.seccomp, None);
        let req = HostRequirement {
            require_seccomp: true,
            ..requirement()
        };
        assert_eq!(
            check(&req, &HostState::default(), Some(&s)),
            vec!["host: require_seccomp = true, and the container has no seccomp filter"]
        );
        // Without a container (vouch verify of an image) the spec's settings are not judged.
        assert!(check(&req, &HostState::default(), None).is_empty());
        // Malformed specs are read leniently, as the runtime's defaults.
        assert_eq!(spec(serde_json::json!("nonsense")).seccomp, None);
        assert_eq!(
            spec(serde_json::json!({"linux": {"namespaces": "x"}})).host_namespaces,
            vec!["pid", "network", "ipc", "uts"]
        );
    }

    #[test]
    fn modules_lsm_and_runc_digest_are_checked_by_name() {
        let host = HostState {
            modules: Some(vec![
                "br_netfilter".into(),
                "nf_nat".into(),
                "overlay".into(),
                "vboxdrv".into(),
            ]),
            lsm: Some(vec!["capability".into(), "yama".into(), "apparmor".into()]),
            apparmor: Some("disabled".into()),
            runc: Some(BinaryDigest {
                path: "/usr/sbin/runc".into(),
                sha256: "ab".repeat(32),
            }),
            ..Default::default()
        };
        let req = HostRequirement {
            allowed_modules: Some(vec!["overlay".into(), "br_*".into(), "nf_*".into()]),
            required_lsm: vec!["apparmor".into(), "selinux".into()],
            runc_sha256: vec!["cd".repeat(32)],
            ..requirement()
        };
        let v = check(&req, &host, None);
        assert_eq!(
            v,
            vec![
                "host: allowed_modules: loaded module \"vboxdrv\" not allowed".to_string(),
                "host: required_lsm \"apparmor\" is active but not enforcing".to_string(),
                "host: required_lsm \"selinux\" is not active (active: capability,yama,apparmor)"
                    .to_string(),
                format!(
                    "host: runc_sha256: /usr/sbin/runc has sha256:{}, not an allowed digest",
                    "ab".repeat(32)
                ),
            ]
        );
        let ok = HostRequirement {
            runc_sha256: vec!["ab".repeat(32)],
            required_lsm: vec!["yama".into()],
            allowed_modules: Some(vec!["*".into()]),
            ..requirement()
        };
        assert!(check(&ok, &host, None).is_empty());
        // Unreadable LSM list: say so rather than guess.
        let blind = HostState::default();
        let v = check(
            &HostRequirement {
                required_lsm: vec!["apparmor".into()],
                ..requirement()
            },
            &blind,
            None,
        );
        assert!(v[0].contains("cannot be read"), "{v:?}");
        // A /proc/modules that exists but cannot be read fails allowed_modules.
        let unreadable = HostState {
            modules_unreadable: true,
            ..Default::default()
        };
        let v = check(
            &HostRequirement {
                allowed_modules: Some(vec!["overlay".into()]),
                ..requirement()
            },
            &unreadable,
            None,
        );
        assert_eq!(
            v,
            vec!["host: allowed_modules: the loaded modules cannot be read (/proc/modules)"]
        );
    }

    #[test]
    fn globs_match_whole_names() {
        assert!(glob_match("nf_*", "nf_nat"));
        assert!(!glob_match("nf_*", "xnf_nat"));
        assert!(glob_match("*_gre", "ip_gre"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
        assert!(glob_match("overlay", "overlay"));
        assert!(!glob_match("overlay", "overlayfs"));
    }
}
