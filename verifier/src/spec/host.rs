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

use globset::GlobSet;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::glob;
use crate::policy::HostRequirement;

/// The capabilities containerd and Docker grant by default; anything else is "added".
pub(crate) const DEFAULT_CAPABILITIES: &[&str] = &[
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

/// Capabilities the issue's `allow_privileged = false` list names; every capability beyond
/// containerd's default set is refused now, these among them (kept for the tests that name them).
#[cfg(test)]
const PRIVILEGED_CAPABILITIES: &[&str] = &[
    "SYS_ADMIN",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_PTRACE",
    "SYS_BOOT",
    "BPF",
    "PERFMON",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
    "NET_ADMIN",
];

/// Most entries of one list (mounts, devices, device rules) read from a spec.
const MAX_LISTED: usize = 4096;
/// Host directories whose bind mount amounts to the host's root: the root itself, the kernel's
/// interfaces, the host's configuration and root's home, the boot files, and the directories of
/// containerd and the kubelet (every container's files and the runtime's sockets). `/var/run` is
/// listed beside `/run` because it is usually a link to it.
const HOST_ROOT_PATHS: &[&str] = &[
    "/",
    "/proc",
    "/sys",
    "/dev",
    "/etc",
    "/root",
    "/boot",
    "/run",
    "/var/run",
    "/run/containerd",
    "/var/run/containerd",
    "/var/lib/containerd",
    "/var/lib/kubelet",
];

/// At most this many refusals of one kind are named; then a count.
const NAMED: usize = 10;

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
    /// Mounts that show the container host files (bind mounts, and filesystems other than the
    /// kernel's per-mount ones, with their type), with their destination: `src -> dst`.
    pub host_mounts: Vec<String>,
    /// Sources of the mounts above that amount to the host's root (`/`, `/proc`, `/etc`, containerd's
    /// and the kubelet's directories, a directory above one of them) or cannot be told apart
    /// from it (a `..` in the source, a host filesystem, an entry that cannot be read).
    #[serde(default)]
    pub host_root_mounts: Vec<String>,
    /// The seccomp filter's default action; `None` when there is no filter (or it allows all).
    pub seccomp: Option<String>,
    pub no_new_privileges: bool,
    pub apparmor_profile: Option<String>,
    pub selinux_label: Option<String>,
    /// Capabilities or masked paths that could not be read (`process.capabilities.bounding is
    /// not a list of strings`): runc would not start such a spec; they are read as the worst
    /// they could hold.
    #[serde(default)]
    pub unreadable: Vec<String>,
    /// OCI hooks, `kind path` (`createRuntime /usr/bin/x`): programs runc runs on the node, as
    /// root, in the node's namespaces for most kinds.
    #[serde(default)]
    pub hooks: Vec<String>,
    /// Ways the spec opens the kernel's interfaces beyond what a container gets by default: a
    /// proc, sysfs or cgroup mount elsewhere or writable, default masked or read-only /proc paths
    /// missing (`/proc/sys` writable is the node's `core_pattern`).
    #[serde(default)]
    pub kernel_exposure: Vec<String>,
    /// Host devices the container gets (`linux.devices`), by path.
    #[serde(default)]
    pub devices: Vec<String>,
    /// Device cgroup rules that allow more than the devices listed (`a` all, or a type, major or
    /// minor left open), or a device no entry of `linux.devices` names.
    #[serde(default)]
    pub device_rules: Vec<String>,
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

/// Reads the security settings of an OCI runtime spec (`config.json`). Absent fields take runc's
/// defaults (no seccomp, no masked paths, no capabilities); a field of the wrong type is read the
/// unsafe way and, where it matters, listed in `unreadable`.
pub fn spec_security(spec: &serde_json::Value) -> SpecSecurity {
    let caps = capabilities(spec);
    let added_capabilities = caps
        .names
        .iter()
        .filter(|c| !is_default_capability(&capability_name(c)))
        .cloned()
        .collect();
    let mut unreadable = caps.unreadable;
    if let Err(field) = string_list(spec, &["linux", "maskedPaths"]) {
        unreadable.push(field);
    }
    let devices = spec_devices(spec);
    let mounts = host_mounts(spec);
    let host_root_mounts = mounts
        .iter()
        .filter(|m| m.reaches_host_root())
        .map(HostMount::describe)
        .collect();
    let host_mounts = mounts
        .iter()
        .map(|m| match m.kind {
            HostMountKind::Unreadable => m.describe(),
            _ => format!("{} -> {}", m.describe(), shown(&m.destination)),
        })
        .collect();
    let seccomp = lookup(spec, &["linux", "seccomp", "defaultAction"])
        .ok()
        .flatten()
        .and_then(|a| a.as_str())
        .filter(|a| *a != "SCMP_ACT_ALLOW")
        .map(str::to_string);
    let text = |path: &[&str]| {
        lookup(spec, path)
            .ok()
            .flatten()
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    SpecSecurity {
        privileged: looks_privileged(spec),
        added_capabilities,
        host_namespaces: host_namespaces(spec),
        host_mounts,
        host_root_mounts,
        seccomp,
        no_new_privileges: matches!(
            lookup(spec, &["process", "noNewPrivileges"]),
            Ok(Some(serde_json::Value::Bool(true)))
        ),
        apparmor_profile: text(&["process", "apparmorProfile"]),
        selinux_label: text(&["process", "selinuxLabel"]),
        hooks: spec_hooks(spec, &mut unreadable),
        kernel_exposure: kernel_exposure(spec),
        devices: devices.iter().map(|d| d.path.clone()).collect(),
        device_rules: device_rules(spec, &devices),
        unreadable,
    }
}

/// What the kernel's own mounts may look like in a container: proc at `/proc`, sysfs at `/sys`
/// read-only, cgroup at `/sys/fs/cgroup` read-only.
const KERNEL_MOUNTS: &[(&str, &str, bool)] = &[
    ("proc", "/proc", false),
    ("sysfs", "/sys", true),
    ("cgroup", "/sys/fs/cgroup", true),
    ("cgroup2", "/sys/fs/cgroup", true),
];

/// /proc paths a container's runtime masks by default (containerd's and the kubelet's lists) that
/// give the node's memory, keys or firmware away.
const REQUIRED_MASKED: &[&str] = &["/proc/kcore", "/proc/keys", "/sys/firmware"];
/// /proc paths a container's runtime makes read-only by default: writable, they set the node's
/// kernel parameters (`/proc/sys/kernel/core_pattern` runs a program as root on the node).
const REQUIRED_READONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// See [`SpecSecurity::kernel_exposure`].
pub(crate) fn kernel_exposure(spec: &serde_json::Value) -> Vec<String> {
    use serde_json::Value;
    let mut out = Vec::new();
    if let Ok(Some(Value::Array(mounts))) = lookup(spec, &["mounts"]) {
        for m in mounts.iter().take(MAX_LISTED) {
            let kind = m.get("type").and_then(Value::as_str).unwrap_or("");
            let Some((_, home, read_only)) = KERNEL_MOUNTS.iter().find(|(k, _, _)| *k == kind)
            else {
                continue;
            };
            let destination = m.get("destination").and_then(Value::as_str).unwrap_or("");
            let at = normalize(destination);
            if at.as_deref() != Some(*home) {
                out.push(format!("{} mounted at {}", shown(kind), shown(destination)));
                continue;
            }
            let ro = m
                .get("options")
                .and_then(Value::as_array)
                .is_some_and(|o| o.iter().any(|o| o.as_str() == Some("ro")));
            if *read_only && !ro {
                out.push(format!("{kind} at {home} writable"));
            }
        }
    }
    let listed = |field: &str| -> Vec<String> {
        string_list(spec, &["linux", field])
            .map(|l| l.into_iter().filter_map(normalize).collect())
            .unwrap_or_default()
    };
    let masked = listed("maskedPaths");
    for p in REQUIRED_MASKED {
        if !masked.iter().any(|m| m == p) {
            out.push(format!("maskedPaths misses {p}"));
        }
    }
    let readonly = listed("readonlyPaths");
    for p in REQUIRED_READONLY {
        if !readonly.iter().any(|r| r == p) && !masked.iter().any(|m| m == p) {
            out.push(format!("readonlyPaths misses {p}"));
        }
    }
    out
}

/// An entry of `linux.devices`.
pub(crate) struct Device {
    path: String,
    kind: String,
    major: Option<i64>,
    minor: Option<i64>,
}

/// `linux.devices`; an entry that cannot be read is listed by what it is.
fn spec_devices(spec: &serde_json::Value) -> Vec<Device> {
    use serde_json::Value;
    match lookup(spec, &["linux", "devices"]) {
        Ok(None) | Ok(Some(Value::Null)) => Vec::new(),
        Ok(Some(Value::Array(list))) => list
            .iter()
            .take(MAX_LISTED)
            .map(|d| Device {
                path: d
                    .get("path")
                    .and_then(Value::as_str)
                    .map(|p| p.chars().take(200).collect())
                    .unwrap_or_else(|| "(a device without a path)".into()),
                kind: d.get("type").and_then(Value::as_str).unwrap_or("").into(),
                major: d.get("major").and_then(Value::as_i64),
                minor: d.get("minor").and_then(Value::as_i64),
            })
            .collect(),
        _ => vec![Device {
            path: "(linux.devices is not a list)".into(),
            kind: String::new(),
            major: None,
            minor: None,
        }],
    }
}

/// The character devices containerd's default spec allows by rule (null, zero, full, random,
/// urandom, tty, console, ptmx, the pts range): (major, minor; `None` for all minors).
const DEFAULT_DEVICE_RULES: &[(i64, Option<i64>)] = &[
    (1, Some(3)),
    (1, Some(5)),
    (1, Some(7)),
    (1, Some(8)),
    (1, Some(9)),
    (5, Some(0)),
    (5, Some(1)),
    (5, Some(2)),
    (136, None),
];

/// See [`SpecSecurity::device_rules`]. runc allows its default devices (null, zero, full, random,
/// urandom, tty, ptmx, pts) by itself; a spec's allow rule is needed only for the devices it
/// adds, each named by type, major and minor.
fn device_rules(spec: &serde_json::Value, devices: &[Device]) -> Vec<String> {
    use serde_json::Value;
    let rules = match lookup(spec, &["linux", "resources", "devices"]) {
        Ok(None) | Ok(Some(Value::Null)) => return Vec::new(),
        Ok(Some(Value::Array(rules))) => rules,
        _ => return vec!["(linux.resources.devices is not a list)".into()],
    };
    let mut out = Vec::new();
    for rule in rules.iter().take(MAX_LISTED) {
        if rule.get("allow").and_then(Value::as_bool) != Some(true) {
            continue;
        }
        let kind = rule.get("type").and_then(Value::as_str).unwrap_or("a");
        let major = rule.get("major").and_then(Value::as_i64);
        let minor = rule.get("minor").and_then(Value::as_i64);
        let default = kind == "c"
            && DEFAULT_DEVICE_RULES
                .iter()
                .any(|(ma, mi)| major == Some(*ma) && minor == *mi);
        let named = default
            || matches!(kind, "b" | "c")
                && devices.iter().any(|d| {
                    d.kind == kind && d.major.is_some() && d.major == major && d.minor == minor
                });
        if !named {
            let part = |n: Option<i64>| n.map_or_else(|| "*".to_string(), |n| n.to_string());
            out.push(format!("{} {}:{}", shown(kind), part(major), part(minor)));
        }
    }
    out
}

/// The hook kinds of the OCI runtime spec.
const HOOK_KINDS: &[&str] = &[
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// Every hook of the spec, `kind path`; what cannot be read is noted in `unreadable`.
fn spec_hooks(spec: &serde_json::Value, unreadable: &mut Vec<String>) -> Vec<String> {
    let mut out = Vec::new();
    let Some(hooks) = spec.get("hooks") else {
        return out;
    };
    let Some(hooks) = hooks.as_object() else {
        if !hooks.is_null() {
            unreadable.push("hooks is not an object".into());
        }
        return out;
    };
    for (kind, list) in hooks {
        if list.is_null() {
            continue;
        }
        let Some(list) = list.as_array() else {
            unreadable.push(format!("hooks.{} is not a list", shown(kind)));
            continue;
        };
        if !HOOK_KINDS.contains(&kind.as_str()) && !list.is_empty() {
            unreadable.push(format!("hooks.{} is not a hook kind", shown(kind)));
        }
        for hook in list {
            match hook.get("path").and_then(|p| p.as_str()) {
                Some(path) => out.push(format!("{kind} {path}")),
                None => unreadable.push(format!("a hooks.{} entry has no path", shown(kind))),
            }
        }
    }
    out
}

/// The value at `path` in the spec. `Ok(None)` when it is absent or `null` (runc's Go decoder reads
/// both as unset); `Err` says which step is not an object (runc would not start such a spec).
pub(crate) fn lookup<'a>(
    spec: &'a serde_json::Value,
    path: &[&str],
) -> Result<Option<&'a serde_json::Value>, String> {
    let mut here = spec;
    for (i, step) in path.iter().enumerate() {
        let serde_json::Value::Object(map) = here else {
            return Err(if i == 0 {
                "the spec is not an object".to_string()
            } else {
                format!("{} is not an object", path[..i].join("."))
            });
        };
        match map.get(*step) {
            None | Some(serde_json::Value::Null) => return Ok(None),
            Some(v) => here = v,
        }
    }
    Ok(Some(here))
}

/// The list of strings at `path` (absent: empty); `Err` says what is wrong when it is not one.
pub(crate) fn string_list<'a>(
    spec: &'a serde_json::Value,
    path: &[&str],
) -> Result<Vec<&'a str>, String> {
    match lookup(spec, path)? {
        None => Ok(Vec::new()),
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().ok_or_else(|| not_strings(path)))
            .collect(),
        Some(_) => Err(not_strings(path)),
    }
}

fn not_strings(path: &[&str]) -> String {
    format!("{} is not a list of strings", path.join("."))
}

/// The capability sets of `process.capabilities`.
const CAPABILITY_SETS: [&str; 5] = [
    "bounding",
    "effective",
    "permitted",
    "inheritable",
    "ambient",
];

/// What `process.capabilities` grants.
#[derive(Debug, Default)]
pub(crate) struct Capabilities {
    /// Every name in any set, as written.
    pub(crate) names: BTreeSet<String>,
    /// What could not be read (`process.capabilities.bounding is not a list of strings`): it
    /// could hold anything.
    pub(crate) unreadable: Vec<String>,
}

/// Reads every capability set of the spec.
pub(crate) fn capabilities(spec: &serde_json::Value) -> Capabilities {
    let mut out = Capabilities::default();
    for set in CAPABILITY_SETS {
        match string_list(spec, &["process", "capabilities", set]) {
            Ok(names) => out.names.extend(names.into_iter().map(str::to_string)),
            Err(what) if !out.unreadable.contains(&what) => out.unreadable.push(what),
            Err(_) => {}
        }
    }
    out
}

/// A capability as Kubernetes spells it: upper case, without `CAP_` (`CAP_SYS_ADMIN` is `SYS_ADMIN`).
/// runc knows only the exact `CAP_` form; reading other spellings as the capability is the strict way.
pub(crate) fn capability_name(raw: &str) -> String {
    let upper = raw.trim().to_ascii_uppercase();
    match upper.strip_prefix("CAP_") {
        Some(bare) => bare.to_string(),
        None => upper,
    }
}

/// Whether `name` (as [`capability_name`] gives it) is in containerd's default set.
pub(crate) fn is_default_capability(name: &str) -> bool {
    DEFAULT_CAPABILITIES
        .iter()
        .any(|d| d.strip_prefix("CAP_") == Some(name))
}

/// What `--privileged` gives: CAP_SYS_ADMIN in the bounding set and no masked paths. A field that
/// cannot be read counts as the privileged reading.
pub(crate) fn looks_privileged(spec: &serde_json::Value) -> bool {
    let sys_admin = match string_list(spec, &["process", "capabilities", "bounding"]) {
        Ok(names) => names.iter().any(|c| capability_name(c) == "SYS_ADMIN"),
        Err(_) => true,
    };
    let unmasked = match string_list(spec, &["linux", "maskedPaths"]) {
        Ok(paths) => paths.is_empty(),
        Err(_) => true,
    };
    sys_admin && unmasked
}

/// The namespaces of [`ISOLATING_NAMESPACES`] the container shares with the host: absent from
/// `linux.namespaces`, or joined by a path that leads to the host's own (PID 1's, or runc's own,
/// which runs in the host's). A container of a pod joins its sandbox's by `/proc/<pid>/ns/...`:
/// that is not the host's. A field of the wrong type counts as the host's.
pub(crate) fn host_namespaces(spec: &serde_json::Value) -> Vec<String> {
    let entries = match lookup(spec, &["linux", "namespaces"]) {
        Ok(Some(serde_json::Value::Array(entries))) => entries.as_slice(),
        Ok(None) => &[],
        _ => return ISOLATING_NAMESPACES.iter().map(|k| k.to_string()).collect(),
    };
    ISOLATING_NAMESPACES
        .iter()
        .filter(|kind| {
            let mut of_kind = entries
                .iter()
                .filter(|e| e.get("type").and_then(|t| t.as_str()) == Some(**kind))
                .peekable();
            // None of its own, or any entry that joins the host's (runc refuses duplicates; reading
            // the worst of them does not depend on which one it would keep).
            of_kind.peek().is_none()
                || of_kind.any(|e| match e.get("path") {
                    None | Some(serde_json::Value::Null) => false,
                    Some(serde_json::Value::String(path)) => joins_host_namespace(path),
                    Some(_) => true,
                })
        })
        .map(|k| k.to_string())
        .collect()
}

/// Whether a namespace path is the host's: PID 1's, or runc's own (`self`, `thread-self`). A path
/// that is relative or has a `..` cannot be judged lexically and counts as the host's.
fn joins_host_namespace(path: &str) -> bool {
    let Some(path) = normalize(path) else {
        return true;
    };
    let mut parts = path.split('/').skip(1);
    parts.next() == Some("proc") && matches!(parts.next(), Some("1" | "self" | "thread-self"))
}

/// `path` with empty and `.` components dropped. `None` for a relative path or one with a `..`:
/// where a `..` leads depends on links on the host, which a lexical reading cannot see.
pub(crate) fn normalize(path: &str) -> Option<String> {
    if !path.starts_with('/') {
        return None;
    }
    let mut out = String::with_capacity(path.len());
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            part => {
                out.push('/');
                out.push_str(part);
            }
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    Some(out)
}

/// Filesystems the kernel makes for the mount (or for the container's namespaces): they show the
/// container none of the host's files. Any other type (devtmpfs, debugfs, ext4 from a disk, ...)
/// is the host's.
const VIRTUAL_FILESYSTEMS: &[&str] = &[
    "proc", "sysfs", "tmpfs", "devpts", "mqueue", "cgroup", "cgroup2",
];

/// A mount through which the container sees the host's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostMount {
    /// As written; for an entry that cannot be read, what is wrong with it.
    pub(crate) source: String,
    pub(crate) destination: String,
    pub(crate) kind: HostMountKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostMountKind {
    /// Type `bind`, or a `bind` or `rbind` option.
    Bind,
    /// A filesystem of this type that is not one of [`VIRTUAL_FILESYSTEMS`].
    Filesystem(String),
    /// An entry of the wrong shape, read as the worst it could be.
    Unreadable,
}

impl HostMount {
    fn unreadable(what: String) -> HostMount {
        HostMount {
            source: what,
            destination: String::new(),
            kind: HostMountKind::Unreadable,
        }
    }

    /// The source as a one-line message shows it.
    pub(crate) fn describe(&self) -> String {
        match &self.kind {
            HostMountKind::Filesystem(kind) => {
                format!("{} ({} filesystem)", shown(&self.source), shown(kind))
            }
            HostMountKind::Bind => shown(&self.source),
            // Our own words, not the spec's.
            HostMountKind::Unreadable => self.source.clone(),
        }
    }

    /// Whether this mount amounts to the host's root ([`HOST_ROOT_PATHS`] or a directory above
    /// one), or cannot be told apart from it: a source with a `..`, a host filesystem, an
    /// unreadable entry. A relative source (without `..`) stays in the bundle directory.
    pub(crate) fn reaches_host_root(&self) -> bool {
        match self.kind {
            HostMountKind::Filesystem(_) | HostMountKind::Unreadable => true,
            HostMountKind::Bind => {
                if self.source.split('/').any(|part| part == "..") {
                    return true;
                }
                let Some(source) = normalize(&self.source) else {
                    return false;
                };
                let above = format!("{}/", source.trim_end_matches('/'));
                HOST_ROOT_PATHS
                    .iter()
                    .any(|p| *p == source || p.starts_with(&above))
            }
        }
    }
}

/// The spec's mounts that show the container host files: bind mounts, filesystems that are not
/// the kernel's per-mount ones, and entries that cannot be read.
pub(crate) fn host_mounts(spec: &serde_json::Value) -> Vec<HostMount> {
    use serde_json::Value;
    let entries = match lookup(spec, &["mounts"]) {
        Ok(None) => return Vec::new(),
        Ok(Some(Value::Array(entries))) => entries,
        _ => return vec![HostMount::unreadable("(mounts is not a list)".into())],
    };
    let mut out = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let Value::Object(entry) = entry else {
            out.push(HostMount::unreadable(format!(
                "(mounts[{i}] is not an object)"
            )));
            continue;
        };
        let kind = match entry.get("type") {
            None | Some(Value::Null) => None,
            Some(Value::String(kind)) => Some(kind.as_str()),
            Some(_) => {
                out.push(HostMount::unreadable(format!(
                    "(mounts[{i}].type is not a string)"
                )));
                continue;
            }
        };
        let bind_option = match entry.get("options") {
            None | Some(Value::Null) => false,
            Some(Value::Array(options)) => {
                // A non-string option could be anything, `bind` included.
                options
                    .iter()
                    .any(|o| o.as_str().is_none_or(|o| o == "bind" || o == "rbind"))
            }
            Some(_) => true,
        };
        let kind = if kind == Some("bind") || bind_option {
            HostMountKind::Bind
        } else {
            match kind {
                None | Some("") => continue,
                Some(kind) if VIRTUAL_FILESYSTEMS.contains(&kind) => continue,
                Some(kind) => HostMountKind::Filesystem(kind.to_string()),
            }
        };
        let text = |field: &str| match entry.get(field) {
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        };
        match (text("source"), text("destination")) {
            (Some(source), Some(destination)) => out.push(HostMount {
                source,
                destination,
                kind,
            }),
            (None, _) => out.push(HostMount::unreadable(format!(
                "(mounts[{i}].source is not a string)"
            ))),
            (Some(_), None) => out.push(HostMount::unreadable(format!(
                "(mounts[{i}].destination is not a string)"
            ))),
        }
    }
    out
}

/// At most this many characters of a value from the spec in a message.
const SHOWN_CHARS: usize = 200;

/// A value from the spec as it can stand in a one-line message: as is when it is plain printable
/// text, else quoted with escapes; cut when long.
pub(crate) fn shown(text: &str) -> String {
    let long = text.chars().count() > SHOWN_CHARS;
    if !long && !text.is_empty() && text.chars().all(|c| c.is_ascii_graphic()) {
        return text.to_string();
    }
    let cut: String = text.chars().take(SHOWN_CHARS).collect();
    if long {
        format!("{cut:?}...")
    } else {
        format!("{cut:?}")
    }
}

/// Which patterns of `[rule.host]` name what: `allowed_modules` (`*` wildcards) and
/// `allowed_devices` (`*` and `?`). Matched whole by `globset`; `*` is any run of characters, `/`
/// included (`/dev/nvidia*` covers `/dev/nvidia-caps/nvidia-cap1`), so a run of `*` means the same
/// as one and globset's `**` forms never apply. `?` is one byte, and nothing else is special.
#[derive(Debug, Clone, Copy)]
pub(crate) enum HostPatterns {
    Modules,
    Devices,
}

impl HostPatterns {
    /// One set matching any of `patterns`; the error is one line.
    pub(crate) fn compile(self, patterns: &[String]) -> Result<GlobSet, String> {
        let wildcards: &[char] = match self {
            HostPatterns::Modules => &['*'],
            HostPatterns::Devices => &['*', '?'],
        };
        let globs = patterns.iter().map(|p| {
            let mut single = String::with_capacity(p.len());
            for c in p.chars() {
                if !(c == '*' && single.ends_with('*')) {
                    single.push(c);
                }
            }
            glob::escape(&single, wildcards)
        });
        glob::compile(
            globs,
            glob::Options {
                literal_separator: false,
                case_insensitive: false,
            },
        )
    }
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
    if !req.allow_privileged {
        if spec.privileged {
            out.push(
                "host: allow_privileged = false, and the container is privileged \
                 (CAP_SYS_ADMIN, no masked paths)"
                    .to_string(),
            );
        }
        // A privileged spec holds them all: the line above says so once.
        let capabilities: BTreeSet<String> = spec
            .added_capabilities
            .iter()
            .filter(|_| !spec.privileged)
            .map(|c| shown(&capability_name(c)))
            .collect();
        for c in capabilities {
            out.push(format!(
                "host: allow_privileged = false: capabilities.add {c}"
            ));
        }
        for what in &spec.unreadable {
            out.push(format!(
                "host: allow_privileged = false: the spec cannot be read ({what})"
            ));
        }
        if !spec.privileged {
            for what in spec.kernel_exposure.iter().take(NAMED) {
                out.push(format!("host: allow_privileged = false: {what}"));
            }
        }
        let allowed = match spec.devices.is_empty() {
            true => None,
            false => HostPatterns::Devices
                .compile(&req.allowed_devices)
                .map_err(|e| out.push(format!("host: allowed_devices: {e}")))
                .ok(),
        };
        for device in &spec.devices {
            if !allowed.as_ref().is_some_and(|a| a.is_match(device)) {
                out.push(format!(
                    "host: allow_privileged = false: devices {} (a host device; \
                     allowed_devices names those that may)",
                    shown(device)
                ));
            }
        }
        for rule in spec.device_rules.iter().take(NAMED) {
            out.push(format!(
                "host: allow_privileged = false: linux.resources.devices allows {rule}"
            ));
        }
        for hook in &spec.hooks {
            let path = hook.split_once(' ').map_or(hook.as_str(), |(_, p)| p);
            if !req.allowed_hooks.iter().any(|a| a == path) {
                let hook: String = hook
                    .chars()
                    .take(200)
                    .map(|c| if c.is_control() { '?' } else { c })
                    .collect();
                out.push(format!(
                    "host: allow_privileged = false: hooks.{hook} (a hook runs on the node as \
                     root; allowed_hooks names those that may)"
                ));
            }
        }
        let sources: BTreeSet<&String> = spec.host_root_mounts.iter().collect();
        for source in sources.iter().take(NAMED) {
            out.push(format!("host: allow_privileged = false: hostPath {source}"));
        }
        if sources.len() > NAMED {
            out.push(format!(
                "host: allow_privileged = false: hostPath: {} more",
                sources.len() - NAMED
            ));
        }
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
            let set = HostPatterns::Modules
                .compile(allowed)
                .map_err(|e| out.push(format!("host: allowed_modules: {e}")))
                .ok();
            let bad: Vec<String> = loaded
                .iter()
                .filter(|m| !set.as_ref().is_some_and(|s| s.is_match(m.as_str())))
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
            pod_security: None,
            allow_exec: true,
            allowed_hooks: vec![],
            allowed_devices: vec![],
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
    fn hooks_run_on_the_node_and_are_refused_unless_allowed() {
        let spec = serde_json::json!({"hooks": {
            "createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "id > /tmp/pwned"]}],
            "prestart": [{"path": "/usr/bin/gpu-hook"}]
        }});
        let s = spec_security(&spec);
        assert_eq!(
            s.hooks,
            vec!["createRuntime /bin/sh", "prestart /usr/bin/gpu-hook"]
        );
        let mut req = requirement();
        let v = check(&req, &HostState::default(), Some(&s));
        assert!(
            v.iter()
                .any(|l| l
                    .starts_with("host: allow_privileged = false: hooks.createRuntime /bin/sh")),
            "{v:?}"
        );
        assert!(
            v.iter()
                .any(|l| l.contains("hooks.prestart /usr/bin/gpu-hook")),
            "{v:?}"
        );
        req.allowed_hooks = vec!["/usr/bin/gpu-hook".into()];
        let v = check(&req, &HostState::default(), Some(&s));
        assert!(!v.iter().any(|l| l.contains("gpu-hook")), "{v:?}");
        assert!(v.iter().any(|l| l.contains("/bin/sh")), "{v:?}");
        req.allow_privileged = true;
        assert!(check(&req, &HostState::default(), Some(&s)).is_empty());
        // Malformed hooks are unreadable, so refused.
        for odd in [
            serde_json::json!({"hooks": 3}),
            serde_json::json!({"hooks": {"prestart": "x"}}),
            serde_json::json!({"hooks": {"prestart": [{"args": []}]}}),
            serde_json::json!({"hooks": {"preStart": [{"path": "/x"}]}}),
        ] {
            let s = spec_security(&odd);
            assert!(!s.unreadable.is_empty(), "{odd}");
            assert!(!check(&requirement(), &HostState::default(), Some(&s)).is_empty());
        }
        assert!(spec_security(&serde_json::json!({"hooks": null}))
            .unreadable
            .is_empty());
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
        assert_eq!(
            v,
            vec![
                "host: allow_privileged = false, and the container is privileged \
                 (CAP_SYS_ADMIN, no masked paths)"
            ]
        );
        let allowed = HostRequirement {
            allow_privileged: true,
            ..requirement()
        };
        assert!(check(&allowed, &HostState::default(), Some(&s)).is_empty());
        // CAP_SYS_ADMIN with masked paths is an added capability, not privileged; still refused.
        let s = spec(confined(serde_json::json!({
            "process": {"capabilities": {"bounding": ["CAP_SYS_ADMIN"]}},
            "linux": {"maskedPaths": ["/proc/kcore", "/proc/keys", "/sys/firmware"]}
        })));
        assert!(!s.privileged);
        assert_eq!(s.added_capabilities, vec!["CAP_SYS_ADMIN"]);
        assert_eq!(
            check(&requirement(), &HostState::default(), Some(&s)),
            vec!["host: allow_privileged = false: capabilities.add SYS_ADMIN"]
        );
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
        let s = spec(confined(
            serde_json::json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW"}}}),
        ));
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

    /// A container as containerd's CRI plugin writes it: default capabilities, masked paths, the
    /// pod's namespaces, its volumes and CRI's files.
    /// `v` with the /proc paths a runtime masks and makes read-only by default (as containerd's
    /// and the kubelet's specs have them), where it names none.
    fn confined(mut v: serde_json::Value) -> serde_json::Value {
        if let Some(map) = v.as_object_mut() {
            let linux = map.entry("linux").or_insert_with(|| serde_json::json!({}));
            if let Some(linux) = linux.as_object_mut() {
                linux
                    .entry("maskedPaths")
                    .or_insert_with(|| serde_json::json!(REQUIRED_MASKED));
                linux
                    .entry("readonlyPaths")
                    .or_insert_with(|| serde_json::json!(REQUIRED_READONLY));
            }
        }
        v
    }

    #[test]
    fn kernel_interfaces_and_devices_are_refused_under_allow_privileged_false() {
        let refused = |change: &dyn Fn(&mut serde_json::Value)| {
            let mut json = plain_container();
            change(&mut json);
            check(&requirement(), &HostState::default(), Some(&spec(json)))
        };
        assert!(refused(&|_| {}).is_empty());
        let v = refused(&|j| {
            j["mounts"].as_array_mut().unwrap().push(serde_json::json!(
                {"destination": "/p", "type": "proc", "source": "proc"}))
        });
        assert_eq!(v, ["host: allow_privileged = false: proc mounted at /p"]);
        let v = refused(&|j| {
            j["mounts"].as_array_mut().unwrap().push(serde_json::json!(
                {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid"]}))
        });
        assert_eq!(
            v,
            ["host: allow_privileged = false: sysfs at /sys writable"]
        );
        let v = refused(&|j| j["linux"]["readonlyPaths"] = serde_json::json!([]));
        assert!(
            v.contains(
                &"host: allow_privileged = false: readonlyPaths misses /proc/sys".to_string()
            ),
            "{v:?}"
        );
        let v = refused(&|j| j["linux"]["maskedPaths"] = serde_json::json!(["/proc/kcore"]));
        assert!(
            v.contains(
                &"host: allow_privileged = false: maskedPaths misses /proc/keys".to_string()
            ),
            "{v:?}"
        );
        // A host disk as a device, or every device allowed in the device cgroup.
        let v = refused(&|j| {
            j["linux"]["devices"] =
                serde_json::json!([{"path": "/dev/sda", "type": "b", "major": 8, "minor": 0}]);
            j["linux"]["resources"] = serde_json::json!({"devices": [
                {"allow": false, "access": "rwm"},
                {"allow": true, "type": "b", "major": 8, "minor": 0, "access": "rwm"}]});
        });
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(
            v[0].starts_with("host: allow_privileged = false: devices /dev/sda"),
            "{v:?}"
        );
        let v = refused(&|j| {
            j["linux"]["resources"] =
                serde_json::json!({"devices": [{"allow": true, "access": "rwm"}]})
        });
        assert_eq!(
            v,
            ["host: allow_privileged = false: linux.resources.devices allows a *:*"]
        );
        let v = refused(
            &|j| j["linux"]["resources"] = serde_json::json!({"devices": [{"allow": true, "type": "c", "major": 10, "minor": 200}]}),
        );
        assert_eq!(
            v,
            ["host: allow_privileged = false: linux.resources.devices allows c 10:200"]
        );
        // A device the rule allows by name passes, with its cgroup rule.
        let allowed = HostRequirement {
            allowed_devices: vec!["/dev/nvidia*".into()],
            ..requirement()
        };
        let mut json = plain_container();
        json["linux"]["devices"] =
            serde_json::json!([{"path": "/dev/nvidia0", "type": "c", "major": 195, "minor": 0}]);
        json["linux"]["resources"] = serde_json::json!({"devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 195, "minor": 0, "access": "rw"}]});
        assert!(check(&allowed, &HostState::default(), Some(&spec(json.clone()))).is_empty());
        assert_eq!(
            check(&requirement(), &HostState::default(), Some(&spec(json))).len(),
            1
        );
    }

    fn plain_container() -> serde_json::Value {
        serde_json::json!({
            "process": {"capabilities": {
                "bounding": DEFAULT_CAPABILITIES, "effective": DEFAULT_CAPABILITIES,
                "permitted": DEFAULT_CAPABILITIES}},
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"},
                {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                 "options": ["nosuid", "ro"]},
                {"destination": "/data", "type": "bind", "options": ["rbind", "rw"],
                 "source": "/var/lib/kubelet/pods/0b8f/volumes/kubernetes.io~empty-dir/data"},
                {"destination": "/etc/hosts", "type": "bind", "options": ["rbind", "ro"],
                 "source": "/var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes/abc/hosts"},
                {"destination": "/dev/shm", "type": "bind", "options": ["rbind", "rw"],
                 "source": "/run/containerd/io.containerd.grpc.v1.cri/sandboxes/abc/shm"},
                {"destination": "/etc/localtime", "type": "bind", "options": ["rbind", "ro"],
                 "source": "/etc/localtime"}
            ],
            "linux": {
                "namespaces": [{"type": "pid", "path": "/proc/4242/ns/pid"}, {"type": "mount"},
                               {"type": "network", "path": "/proc/4242/ns/net"},
                               {"type": "ipc", "path": "/proc/4242/ns/ipc"},
                               {"type": "uts", "path": "/proc/4242/ns/uts"}],
                "maskedPaths": ["/proc/kcore", "/proc/keys", "/sys/firmware"],
                "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                  "/proc/sysrq-trigger"],
                "seccomp": {"defaultAction": "SCMP_ACT_ERRNO"}
            }
        })
    }

    #[test]
    fn a_plain_container_passes_allow_privileged_false() {
        let s = spec(plain_container());
        assert!(!s.privileged);
        assert!(s.added_capabilities.is_empty());
        assert!(s.host_root_mounts.is_empty(), "{:?}", s.host_root_mounts);
        assert!(s.unreadable.is_empty());
        assert!(s.host_namespaces.is_empty(), "{:?}", s.host_namespaces);
        assert!(check(&requirement(), &HostState::default(), Some(&s)).is_empty());
    }

    #[test]
    fn allow_privileged_false_refuses_each_capability_that_reaches_past_the_container() {
        for (i, name) in PRIVILEGED_CAPABILITIES.iter().enumerate() {
            let mut json = plain_container();
            // In whichever set it is, spelt as runc or as kubectl users spell it.
            let set = CAPABILITY_SETS[i % CAPABILITY_SETS.len()];
            let written = if i % 2 == 0 {
                format!("CAP_{name}")
            } else {
                name.to_string()
            };
            json["process"]["capabilities"][set] = serde_json::json!(["CAP_CHOWN", written]);
            let v = check(&requirement(), &HostState::default(), Some(&spec(json)));
            assert_eq!(
                v,
                vec![format!(
                    "host: allow_privileged = false: capabilities.add {name}"
                )]
            );
        }
        // NET_RAW (containerd's default) and the baseline capabilities are not refused here;
        // any other capability is (DAC_READ_SEARCH opens any file by handle, SYS_TIME sets the
        // node's clock).
        let mut json = plain_container();
        json["process"]["capabilities"]["ambient"] =
            serde_json::json!(["CAP_NET_RAW", "CAP_MKNOD", "CAP_SYS_CHROOT"]);
        assert!(check(&requirement(), &HostState::default(), Some(&spec(json))).is_empty());
        for name in ["DAC_READ_SEARCH", "SYS_TIME", "SYS_NICE"] {
            let mut json = plain_container();
            json["process"]["capabilities"]["ambient"] = serde_json::json!([format!("CAP_{name}")]);
            assert_eq!(
                check(&requirement(), &HostState::default(), Some(&spec(json))),
                vec![format!(
                    "host: allow_privileged = false: capabilities.add {name}"
                )]
            );
        }
    }

    #[test]
    fn allow_privileged_false_refuses_mounts_of_the_hosts_root_and_what_amounts_to_it() {
        let refused = |source: &str| {
            let mut json = plain_container();
            json["mounts"].as_array_mut().unwrap().push(
                serde_json::json!({"destination": "/host", "type": "bind", "source": source}),
            );
            check(&requirement(), &HostState::default(), Some(&spec(json)))
        };
        for source in HOST_ROOT_PATHS {
            assert_eq!(
                refused(source),
                vec![format!("host: allow_privileged = false: hostPath {source}")]
            );
        }
        // Spelt otherwise, or a directory above one of them.
        for source in [
            "//",
            "/.",
            "/etc/",
            "/var/lib//kubelet/",
            "/var",
            "/var/lib",
            "/./proc/.",
            "/var/run/../etc",
            "/srv/..",
        ] {
            assert_eq!(
                refused(source),
                vec![format!("host: allow_privileged = false: hostPath {source}")],
                "{source}"
            );
        }
        // Below them is not the root: the pod's volumes and CRI's files live there.
        for source in [
            "/etc/ssl/certs",
            "/var/lib/kubelet/pods/0b8f/volumes/x",
            "/srv/data",
            "relative/dir",
            "/var/library",
        ] {
            assert!(refused(source).is_empty(), "{source}");
        }
        // A bind mount by option only, and a host filesystem, count too.
        let mut json = plain_container();
        json["mounts"] = serde_json::json!([
            {"destination": "/host", "source": "/", "options": ["rbind"]},
            {"destination": "/hostdev", "type": "devtmpfs", "source": "devtmpfs"},
            {"destination": "/disk", "type": "ext4", "source": "/dev/sda1"},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue"}
        ]);
        assert_eq!(
            check(
                &requirement(),
                &HostState::default(),
                Some(&spec(json.clone()))
            ),
            vec![
                "host: allow_privileged = false: hostPath /",
                "host: allow_privileged = false: hostPath /dev/sda1 (ext4 filesystem)",
                "host: allow_privileged = false: hostPath devtmpfs (devtmpfs filesystem)",
            ]
        );
        let allowed = HostRequirement {
            allow_privileged: true,
            ..requirement()
        };
        assert!(check(&allowed, &HostState::default(), Some(&spec(json))).is_empty());
        // Many of them: named up to a bound, then counted.
        let mut json = plain_container();
        json["mounts"] = (0..25)
            .map(|i| serde_json::json!({"destination": "/h", "type": "bind", "source": format!("/{}/..", i)}))
            .collect();
        let v = check(&requirement(), &HostState::default(), Some(&spec(json)));
        assert_eq!(v.len(), NAMED + 1);
        assert_eq!(
            v[NAMED],
            "host: allow_privileged = false: hostPath: 15 more"
        );
    }

    #[test]
    fn malformed_specs_are_read_the_unsafe_way() {
        for json in [
            serde_json::json!({"process": {"capabilities": {"bounding": "CAP_SYS_ADMIN"}},
                               "linux": {"maskedPaths": ["/proc/kcore"]}}),
            serde_json::json!({"process": {"capabilities": {"effective": [1, 2]}},
                               "linux": {"maskedPaths": ["/proc/kcore"]}}),
            serde_json::json!({"process": "root", "linux": {"maskedPaths": ["/proc/kcore"]}}),
        ] {
            let s = spec(json);
            assert_eq!(s.unreadable.len(), 1, "{s:?}");
            let v = check(&requirement(), &HostState::default(), Some(&s));
            assert!(
                v.iter()
                    .any(|l| l
                        .starts_with("host: allow_privileged = false: the spec cannot be read (")),
                "{v:?}"
            );
        }
        let s = spec(serde_json::json!({"mounts": {"source": "/"}}));
        assert_eq!(s.host_root_mounts, vec!["(mounts is not a list)"]);
        let s = spec(serde_json::json!({"mounts": [
            "/", {"type": 7, "source": "/"}, {"type": "bind", "source": ["/"], "destination": "/h"},
            {"options": [{"bind": true}], "source": "/srv", "destination": "/h"},
            {"options": "rbind", "source": "/srv", "destination": "/h"},
            {"type": "tmpfs", "source": "tmpfs", "destination": "/t"}
        ]}));
        assert_eq!(
            s.host_root_mounts,
            vec![
                "(mounts[0] is not an object)",
                "(mounts[1].type is not a string)",
                "(mounts[2].source is not a string)",
            ]
        );
        assert_eq!(
            s.host_mounts,
            vec![
                "(mounts[0] is not an object)",
                "(mounts[1].type is not a string)",
                "(mounts[2].source is not a string)",
                "/srv -> /h",
                "/srv -> /h",
            ]
        );
        // Unreadable masked paths and bounding set: the privileged reading.
        assert!(
            spec(
                serde_json::json!({"process": {"capabilities": {"bounding": ["CAP_SYS_ADMIN"]}},
                                    "linux": {"maskedPaths": 3}})
            )
            .privileged
        );
        assert!(!spec(serde_json::json!({"linux": {"maskedPaths": 3}})).privileged);
        assert!(looks_privileged(&serde_json::json!([])));
        assert!(!looks_privileged(
            &serde_json::json!({"process": {"capabilities": {"bounding": ["CAP_SYS_ADMIN"]}},
                                "linux": {"maskedPaths": ["/proc/kcore"]}})
        ));
        // A message shows a strange value on one line.
        let s = spec(serde_json::json!({"mounts": [
            {"type": "bind", "source": "/\nfake line", "destination": "/x"}]}));
        assert_eq!(s.host_mounts, vec!["\"/\\nfake line\" -> /x"]);
        assert_eq!(
            shown(&"a".repeat(300)),
            format!("{:?}...", "a".repeat(SHOWN_CHARS))
        );
    }

    #[test]
    fn host_namespaces_are_missing_ones_and_ones_joined_from_the_host() {
        let shared = |namespaces: serde_json::Value| {
            host_namespaces(&serde_json::json!({"linux": {"namespaces": namespaces}}))
        };
        let own = serde_json::json!([{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}]);
        assert!(shared(own).is_empty());
        let sandbox = serde_json::json!([
            {"type": "pid", "path": "/proc/17/ns/pid"}, {"type": "network", "path": "/var/run/netns/cni-1"},
            {"type": "ipc", "path": "/proc/17/ns/ipc"}, {"type": "uts", "path": null}]);
        assert!(shared(sandbox).is_empty());
        for path in [
            "/proc/1/ns/net",
            "//proc/1/ns/net",
            "/proc/./1/ns/net",
            "/proc/1/task/1/ns/net",
            "/proc/self/ns/net",
            "/proc/thread-self/ns/net",
            "/proc/17/../1/ns/net",
            "proc/17/ns/net",
        ] {
            let ns = serde_json::json!([{"type": "pid"}, {"type": "network", "path": path},
                                         {"type": "ipc"}, {"type": "uts"}]);
            assert_eq!(shared(ns), vec!["network"], "{path}");
        }
        // A wrong type is the host's: the namespace list, or one entry's path.
        assert_eq!(shared(serde_json::json!({"type": "pid"})).len(), 4);
        let odd = serde_json::json!([{"type": "pid", "path": 1}, {"type": "network"},
                                      {"type": "ipc"}, {"type": "uts"}]);
        assert_eq!(shared(odd), vec!["pid"]);
        // Of two entries of one kind (runc refuses that), the host's one counts.
        let twice = serde_json::json!([{"type": "pid"}, {"type": "pid", "path": "/proc/1/ns/pid"},
                                        {"type": "network"}, {"type": "ipc"}, {"type": "uts"}]);
        assert_eq!(shared(twice), vec!["pid"]);
    }

    #[test]
    fn paths_are_normalised_lexically_and_dot_dot_is_refused() {
        assert_eq!(normalize("/").as_deref(), Some("/"));
        assert_eq!(normalize("//a/./b//").as_deref(), Some("/a/b"));
        assert_eq!(normalize("/a/../b"), None);
        assert_eq!(normalize("a/b"), None);
        assert_eq!(normalize(""), None);
    }

    #[test]
    fn records_written_before_the_new_fields_still_read() {
        let old = serde_json::json!({
            "privileged": false, "added_capabilities": [], "host_namespaces": [],
            "host_mounts": ["/srv -> /srv"], "seccomp": null, "no_new_privileges": true,
            "apparmor_profile": null, "selinux_label": null
        });
        let s: SpecSecurity = serde_json::from_value(old).unwrap();
        assert!(s.host_root_mounts.is_empty() && s.unreadable.is_empty());
    }

    fn glob_match(pattern: &str, name: &str) -> bool {
        HostPatterns::Modules
            .compile(&[pattern.to_string()])
            .unwrap_or_else(|e| panic!("{pattern}: {e}"))
            .is_match(name)
    }

    fn device_allowed(patterns: &[&str], device: &str) -> bool {
        let patterns: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
        HostPatterns::Devices
            .compile(&patterns)
            .unwrap_or_else(|e| panic!("{patterns:?}: {e}"))
            .is_match(device)
    }

    #[test]
    fn device_patterns_take_star_and_question_mark_and_nothing_else() {
        assert!(device_allowed(&["/dev/nvidia*"], "/dev/nvidia0"));
        assert!(device_allowed(
            &["/dev/nvidia*"],
            "/dev/nvidia-caps/nvidia-cap1"
        ));
        assert!(!device_allowed(&["/dev/nvidia*"], "/dev/sda"));
        assert!(device_allowed(&["/dev/tty?"], "/dev/tty1"));
        assert!(!device_allowed(&["/dev/tty?"], "/dev/tty10"));
        assert!(device_allowed(&["/dev/sda", "/dev/fuse"], "/dev/fuse"));
        // `**` is `*`: no zero-directory form.
        assert!(!device_allowed(&["/dev/**/x"], "/dev/x"));
        assert!(device_allowed(&["/dev/**/x"], "/dev/a/x"));
        assert!(device_allowed(&["/dev/**"], "/dev/a/b"));
        // Brackets, braces and backslashes are literal.
        assert!(!device_allowed(&["/dev/sd[ab]"], "/dev/sda"));
        assert!(device_allowed(&["/dev/sd[ab]"], "/dev/sd[ab]"));
        assert!(!device_allowed(&["/dev/{sda,sdb}"], "/dev/sda"));
        assert!(device_allowed(&[r"/dev/a\*"], r"/dev/a\b"));
        assert!(!device_allowed(&[], "/dev/fuse"));
    }

    #[test]
    fn module_patterns_take_only_star() {
        assert!(glob_match("nf_*", "nf_"));
        assert!(glob_match("nf**", "nf_nat"));
        assert!(!glob_match("nf_na?", "nf_nat"));
        assert!(glob_match("nf_na?", "nf_na?"));
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
