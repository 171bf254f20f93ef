//! The Kubernetes Pod Security Standards
//! (<https://kubernetes.io/docs/concepts/security/pod-security-standards/>), checked on the OCI
//! spec runc will run rather than on the pod manifest: what the kubelet, containerd or a
//! containerd client made of the manifest is what counts.
//!
//! Each violation is one line, `pod_security LEVEL: SETTING`, naming the setting as kubectl users
//! know it (`pod_security baseline: hostNetwork`). Lists (capabilities, sysctls, host paths) name
//! at most ten entries per setting, then a count.
//!
//! # `privileged`
//! Checks nothing.
//!
//! # `baseline`
//! - `securityContext.privileged`: the spec looks like `--privileged` (CAP_SYS_ADMIN in the
//!   bounding set and no masked paths).
//! - `capabilities.add NAME`: a capability in any set that is neither in the baseline list
//!   (AUDIT_WRITE, CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, MKNOD, NET_BIND_SERVICE, SETFCAP,
//!   SETGID, SETPCAP, SETUID, SYS_CHROOT) nor in containerd's default set (which adds NET_RAW).
//!   The OCI spec cannot tell a capability containerd grants by default from one the pod added,
//!   so NET_RAW passes here though the standard counts an added NET_RAW against the pod.
//! - `hostNetwork`, `hostPID`, `hostIPC`: the network, PID or IPC namespace is missing from
//!   `linux.namespaces`, or joined by a path that is the host's (`/proc/1/ns/...`, runc's own
//!   `/proc/self/ns/...`, or one that cannot be judged lexically). Containers of a pod join their
//!   sandbox's namespaces by `/proc/<pid>/ns/...`: that is fine. A path to another host process's
//!   namespace, or to a named network namespace holding the host's, cannot be told apart here.
//! - `hostPath SOURCE`: see [`host_path_mounts`]. kubelet hostPath volumes are bind mounts from
//!   outside the pod's directory; a hostPath volume mounted with `subPath` reaches the spec from
//!   the pod's `volume-subpaths` directory and is not seen.
//! - `procMount Unmasked`: `linux.maskedPaths` is empty or absent.
//! - `sysctls NAME`: a key of `linux.sysctl` outside the safe set (kernel.shm_rmid_forced,
//!   net.ipv4.ip_local_port_range, net.ipv4.ip_unprivileged_port_start, net.ipv4.tcp_syncookies,
//!   net.ipv4.ping_group_range, net.ipv4.ip_local_reserved_ports, net.ipv4.tcp_keepalive_time,
//!   net.ipv4.tcp_fin_timeout, net.ipv4.tcp_keepalive_intvl, net.ipv4.tcp_keepalive_probes).
//!   Names are compared as runc writes them (`.` and `/` both separate).
//! - `seccompProfile Unconfined`: no `linux.seccomp`, or a filter whose `defaultAction` lets
//!   every syscall through (`SCMP_ACT_ALLOW`, `SCMP_ACT_LOG`). The standard lets baseline pods
//!   leave seccomp unset, but unset means unconfined in what runc runs, so it is a violation at
//!   baseline and restricted alike: set `seccompProfile: RuntimeDefault` on the pod, or the
//!   kubelet's `seccompDefault: true`.
//! - `appArmorProfile unconfined`: `process.apparmorProfile` is `unconfined` (empty is fine:
//!   there is no AppArmor, or containerd applied its default).
//! - `seLinuxOptions.type TYPE`: `process.selinuxLabel` (`user:role:type:level`) has a type other
//!   than container_t, container_init_t, container_kvm_t or container_engine_t (empty is fine).
//!   The label's user and role, which the standard also restricts, cannot be told from the ones
//!   containerd fills in.
//! - hostPort and Windows HostProcess are not in the OCI spec (ports are the CNI plugin's).
//!
//! # `restricted`
//! Every `baseline` check, and:
//! - `allowPrivilegeEscalation`: `process.noNewPrivileges` is not true.
//! - `runAsNonRoot (uid 0)`: `process.user.uid` is 0 (no user at all is uid 0). A pod in its own
//!   user namespace is judged the same: its uid 0 is still root in the spec.
//! - `capabilities.drop ALL (keeps ...)`: some set holds a capability other than
//!   NET_BIND_SERVICE.
//! - Volume types are not visible in the OCI spec: every volume is a bind mount there. A bind
//!   mount that is not a volume of this pod or a file containerd made for it is already a
//!   `hostPath` violation; the types restricted allows (emptyDir, configMap, secret, projected,
//!   downwardAPI, CSI, ephemeral, persistentVolumeClaim) all live in the pod's directory.
//!
//! Every field is read defensively: a field of the wrong type (which runc would refuse to start)
//! is read as the worst it could hold and named in the violation, and nothing panics.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::host::{self, HostMount, HostMountKind};

/// A Pod Security Standards level, least to most restrictive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Privileged,
    Baseline,
    Restricted,
}

impl Level {
    /// The level's name, as policies and the `pod-security.kubernetes.io/*` labels spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the gate knows about the pod, from containerd's CRI records (never from annotations).
#[derive(Debug, Clone, Copy)]
pub struct PodContext<'a> {
    /// The kubelet's root directory (node config `[kubernetes] kubelet_root`, default /var/lib/kubelet).
    pub kubelet_root: &'a Path,
    /// The pod's UID (CRI sandbox metadata), when the container belongs to a CRI pod.
    pub pod_uid: Option<&'a str>,
    /// The CRI sandbox id of the container's pod (a sandbox's own id), when known.
    pub sandbox_id: Option<&'a str>,
}

/// Capabilities the baseline level allows, as Kubernetes spells them.
const BASELINE_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// The only capability the restricted level lets a container keep.
const RESTRICTED_CAPABILITY: &str = "NET_BIND_SERVICE";

/// The sysctls the baseline level allows.
const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];

/// seccomp default actions that let every syscall through.
const UNCONFINED_ACTIONS: &[&str] = &["SCMP_ACT_ALLOW", "SCMP_ACT_LOG"];

/// The SELinux types the baseline level allows.
const SELINUX_TYPES: &[&str] = &[
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

/// The directory containerd's CRI plugin keeps its files under (in its root and state dirs).
const CRI_PLUGIN_DIR: &str = "io.containerd.grpc.v1.cri";

/// Files containerd's CRI plugin makes for a pod in its sandbox directory, with where they go.
const CRI_FILES: &[(&str, &str)] = &[
    ("hosts", "/etc/hosts"),
    ("hostname", "/etc/hostname"),
    ("resolv.conf", "/etc/resolv.conf"),
    ("shm", "/dev/shm"),
];

/// At most this many entries of one setting are named; then a count.
const NAMED: usize = 10;

/// Every violation of `level` by `spec`, each one line naming the setting as kubectl users know it.
pub fn check(level: Level, spec: &Value, pod: &PodContext<'_>) -> Vec<String> {
    let mut report = Report {
        level,
        lines: Vec::new(),
    };
    if level >= Level::Baseline {
        baseline(spec, pod, &mut report);
    }
    if level >= Level::Restricted {
        restricted(spec, &mut report);
    }
    report.lines
}

/// The spec's bind mounts whose source is a host path: not a pod volume of this pod under the kubelet root
/// and not a file containerd's CRI plugin made for this pod. (source, destination) pairs.
///
/// A mount is a bind mount when its type is `bind` or its options hold `bind` or `rbind`. Its
/// source is normalised lexically; a source with a `..` is a host path (where it leads depends on
/// links on the host). It is the pod's when it lies below `<kubelet_root>/pods/<pod_uid>/` (only
/// when the pod's UID is known: another pod's volumes are host paths), or when it is
/// `<anything>/io.containerd.grpc.v1.cri/sandboxes/<sandbox_id>/<name>` with this pod's sandbox id
/// and `(name, destination)` one of (hosts, /etc/hosts), (hostname, /etc/hostname),
/// (resolv.conf, /etc/resolv.conf), (shm, /dev/shm).
///
/// Mounts of the kernel's per-mount filesystems (proc, sysfs, tmpfs, devpts, mqueue, cgroup,
/// cgroup2) are not host paths; a mount of any other filesystem type (a disk, devtmpfs, debugfs)
/// is the host's and is listed too, as is an entry that cannot be read (its source then says why).
pub fn host_path_mounts(spec: &Value, pod: &PodContext<'_>) -> Vec<(String, String)> {
    host_paths(spec, pod)
        .into_iter()
        .map(|m| (m.source, m.destination))
        .collect()
}

/// The host mounts of `spec` that are not this pod's own.
fn host_paths(spec: &Value, pod: &PodContext<'_>) -> Vec<HostMount> {
    host::host_mounts(spec)
        .into_iter()
        .filter(|m| {
            m.kind != HostMountKind::Bind || !(is_pod_volume(m, pod) || is_cri_file(m, pod))
        })
        .collect()
}

/// Whether `id` can be one component of a path: anything else never matches one.
fn is_component(id: &str) -> bool {
    !id.is_empty() && id != "." && id != ".." && !id.contains(['/', '\0'])
}

/// A source below `<kubelet_root>/pods/<pod_uid>/`.
fn is_pod_volume(mount: &HostMount, pod: &PodContext<'_>) -> bool {
    let Some(uid) = pod.pod_uid.filter(|u| is_component(u)) else {
        return false;
    };
    let Some(root) = pod.kubelet_root.to_str().and_then(host::normalize) else {
        return false;
    };
    let Some(source) = host::normalize(&mount.source) else {
        return false;
    };
    let pod_dir = format!("{}/pods/{uid}/", root.trim_end_matches('/'));
    // Normalised, the source has no trailing `/`: a match is strictly below the pod's directory.
    source.starts_with(&pod_dir)
}

/// `<anything>/io.containerd.grpc.v1.cri/sandboxes/<sandbox_id>/<name>` at the place CRI puts it.
fn is_cri_file(mount: &HostMount, pod: &PodContext<'_>) -> bool {
    let Some(sandbox) = pod.sandbox_id.filter(|s| is_component(s)) else {
        return false;
    };
    let (Some(source), Some(destination)) = (
        host::normalize(&mount.source),
        host::normalize(&mount.destination),
    ) else {
        return false;
    };
    let mut parts = source.rsplit('/');
    let (Some(name), Some(id), Some(sandboxes), Some(plugin)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    id == sandbox
        && sandboxes == "sandboxes"
        && plugin == CRI_PLUGIN_DIR
        && CRI_FILES.contains(&(name, destination.as_str()))
}

/// The violations found so far, prefixed with the level judged.
struct Report {
    level: Level,
    lines: Vec<String>,
}

impl Report {
    fn push(&mut self, what: impl fmt::Display) {
        self.lines
            .push(format!("pod_security {}: {what}", self.level));
    }

    /// One line per entry of `setting`, at most [`NAMED`], then how many more.
    fn each(&mut self, setting: &str, entries: &[String]) {
        for entry in entries.iter().take(NAMED) {
            self.push(format_args!("{setting} {entry}"));
        }
        if entries.len() > NAMED {
            self.push(format_args!("{setting}: {} more", entries.len() - NAMED));
        }
    }
}

/// `names` joined for one line: at most [`NAMED`], then how many more.
fn listed(names: &BTreeSet<String>) -> String {
    let mut text = names
        .iter()
        .take(NAMED)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > NAMED {
        text.push_str(&format!(" and {} more", names.len() - NAMED));
    }
    text
}

fn baseline(spec: &Value, pod: &PodContext<'_>, report: &mut Report) {
    if host::looks_privileged(spec) {
        report.push("securityContext.privileged");
    }

    let caps = host::capabilities(spec);
    for what in &caps.unreadable {
        report.push(format_args!("capabilities.add ({what})"));
    }
    let added: BTreeSet<String> = caps
        .names
        .iter()
        .map(|c| host::capability_name(c))
        .filter(|c| !BASELINE_CAPABILITIES.contains(&c.as_str()) && !host::is_default_capability(c))
        .map(|c| host::shown(&c))
        .collect();
    report.each("capabilities.add", &added.into_iter().collect::<Vec<_>>());

    let shared = host::host_namespaces(spec);
    for (namespace, setting) in [
        ("network", "hostNetwork"),
        ("pid", "hostPID"),
        ("ipc", "hostIPC"),
    ] {
        if shared.iter().any(|n| n == namespace) {
            report.push(setting);
        }
    }

    let mut seen = BTreeSet::new();
    let sources: Vec<String> = host_paths(spec, pod)
        .iter()
        .map(HostMount::describe)
        .filter(|s| seen.insert(s.clone()))
        .collect();
    report.each("hostPath", &sources);

    // Unmasked: no masked paths at all; else each default mask or read-only path missing, and
    // kernel filesystems mounted elsewhere or writable.
    let unmasked = match host::string_list(spec, &["linux", "maskedPaths"]) {
        Ok(paths) if !paths.is_empty() => false,
        Ok(_) => {
            report.push("procMount Unmasked");
            true
        }
        Err(what) => {
            report.push(format_args!("procMount Unmasked ({what})"));
            true
        }
    };
    if !host::looks_privileged(spec) {
        for what in host::kernel_exposure(spec).iter().filter(|w| {
            !unmasked || !(w.starts_with("maskedPaths") || w.starts_with("readonlyPaths"))
        }) {
            report.push(format_args!("procMount Unmasked ({what})"));
        }
    }
    // A device cgroup rule that opens every device is what `privileged` gives.
    let rules = host::spec_security(spec).device_rules;
    if rules.iter().any(|r| r.starts_with("a ") || r.contains('*')) {
        report.push("securityContext.privileged (linux.resources.devices allows every device)");
    }

    match host::lookup(spec, &["linux", "sysctl"]) {
        Ok(None) => {}
        Ok(Some(Value::Object(sysctls))) => {
            let unsafe_names: Vec<String> = sysctls
                .keys()
                .filter(|k| !is_safe_sysctl(k))
                .map(|k| host::shown(k))
                .collect();
            report.each("sysctls", &unsafe_names);
        }
        Ok(Some(_)) => report.push("sysctls (linux.sysctl is not a map of names to values)"),
        Err(what) => report.push(format_args!("sysctls ({what})")),
    }

    match host::lookup(spec, &["linux", "seccomp"]) {
        Ok(None) => report.push("seccompProfile Unconfined"),
        Ok(Some(Value::Object(filter))) => match filter.get("defaultAction") {
            Some(Value::String(action)) if !UNCONFINED_ACTIONS.contains(&action.as_str()) => {}
            Some(Value::String(action)) => report.push(format_args!(
                "seccompProfile Unconfined (defaultAction {})",
                host::shown(action)
            )),
            _ => report.push(
                "seccompProfile Unconfined (linux.seccomp.defaultAction is not an action name)",
            ),
        },
        Ok(Some(_)) => report.push("seccompProfile Unconfined (linux.seccomp is not an object)"),
        Err(what) => report.push(format_args!("seccompProfile Unconfined ({what})")),
    }

    match host::lookup(spec, &["process", "apparmorProfile"]) {
        Ok(Some(Value::String(profile))) if profile == "unconfined" => {
            report.push("appArmorProfile unconfined")
        }
        Ok(None | Some(Value::String(_))) => {}
        Ok(Some(_)) => report.push("appArmorProfile (process.apparmorProfile is not a string)"),
        Err(what) => report.push(format_args!("appArmorProfile ({what})")),
    }

    match host::lookup(spec, &["process", "selinuxLabel"]) {
        Ok(None) => {}
        Ok(Some(Value::String(label))) if label.is_empty() => {}
        Ok(Some(Value::String(label))) => match label.split(':').nth(2) {
            Some(kind) if SELINUX_TYPES.contains(&kind) => {}
            Some(kind) => report.push(format_args!("seLinuxOptions.type {}", host::shown(kind))),
            None => report.push(format_args!(
                "seLinuxOptions.type (process.selinuxLabel {} is not user:role:type:level)",
                host::shown(label)
            )),
        },
        Ok(Some(_)) => report.push("seLinuxOptions.type (process.selinuxLabel is not a string)"),
        Err(what) => report.push(format_args!("seLinuxOptions.type ({what})")),
    }
}

/// Whether runc would write a safe sysctl for this key: it turns `.` into `/` under `/proc/sys`,
/// so `net/ipv4/tcp_syncookies` is `net.ipv4.tcp_syncookies`.
fn is_safe_sysctl(key: &str) -> bool {
    let file = key.replace('.', "/");
    SAFE_SYSCTLS.iter().any(|s| s.replace('.', "/") == file)
}

fn restricted(spec: &Value, report: &mut Report) {
    match host::lookup(spec, &["process", "noNewPrivileges"]) {
        Ok(Some(Value::Bool(true))) => {}
        Ok(None | Some(Value::Bool(false))) => report.push("allowPrivilegeEscalation"),
        Ok(Some(_)) => {
            report.push("allowPrivilegeEscalation (process.noNewPrivileges is not a boolean)")
        }
        Err(what) => report.push(format_args!("allowPrivilegeEscalation ({what})")),
    }

    match host::lookup(spec, &["process", "user", "uid"]) {
        // No user, or no uid, is uid 0.
        Ok(None) => report.push("runAsNonRoot (uid 0)"),
        Ok(Some(Value::Number(uid))) => match uid.as_u64() {
            Some(0) => report.push("runAsNonRoot (uid 0)"),
            Some(uid) if u32::try_from(uid).is_ok() => {}
            _ => report.push(format_args!(
                "runAsNonRoot (process.user.uid {uid} is not a uid)"
            )),
        },
        Ok(Some(_)) => report.push("runAsNonRoot (process.user.uid is not a number)"),
        Err(what) => report.push(format_args!("runAsNonRoot ({what})")),
    }

    let caps = host::capabilities(spec);
    let kept: BTreeSet<String> = caps
        .names
        .iter()
        .map(|c| host::capability_name(c))
        .filter(|c| c != RESTRICTED_CAPABILITY)
        .map(|c| host::shown(&c))
        .collect();
    if !caps.unreadable.is_empty() {
        report.push(format_args!(
            "capabilities.drop ALL ({})",
            caps.unreadable.join(", ")
        ));
    } else if !kept.is_empty() {
        report.push(format_args!(
            "capabilities.drop ALL (keeps {})",
            listed(&kept)
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const UID: &str = "6f1c3d2e-8a4b-4c5d-9e0f-1a2b3c4d5e6f";
    const SANDBOX: &str = "4c1e2d3f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d";
    const OTHER_SANDBOX: &str = "9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0";

    fn pod() -> PodContext<'static> {
        PodContext {
            kubelet_root: Path::new("/var/lib/kubelet"),
            pod_uid: Some(UID),
            sandbox_id: Some(SANDBOX),
        }
    }

    fn bind(source: &str, destination: &str) -> Value {
        json!({"destination": destination, "type": "bind", "source": source,
               "options": ["rbind", "rprivate", "rw"]})
    }

    fn cri_file(sandbox: &str, name: &str) -> String {
        let dir = if name == "shm" {
            "/run/containerd"
        } else {
            "/var/lib/containerd"
        };
        format!("{dir}/io.containerd.grpc.v1.cri/sandboxes/{sandbox}/{name}")
    }

    /// A container of a pod as containerd 1.6's CRI plugin writes its spec: containerd's default
    /// capabilities (NET_RAW included), masked paths, its own PID namespace and the sandbox's
    /// others joined through the sandbox's /proc/<pid>/ns, CRI's files for the sandbox, an
    /// emptyDir, the service account token and the termination log, RuntimeDefault seccomp.
    fn cri_container() -> Value {
        let caps = [
            "CAP_CHOWN",
            "CAP_DAC_OVERRIDE",
            "CAP_FSETID",
            "CAP_FOWNER",
            "CAP_MKNOD",
            "CAP_NET_RAW",
            "CAP_SETGID",
            "CAP_SETUID",
            "CAP_SETFCAP",
            "CAP_SETPCAP",
            "CAP_NET_BIND_SERVICE",
            "CAP_SYS_CHROOT",
            "CAP_KILL",
            "CAP_AUDIT_WRITE",
        ];
        let pod_dir = format!("/var/lib/kubelet/pods/{UID}");
        json!({
            "ociVersion": "1.0.2-dev",
            "process": {
                "user": {"uid": 0, "gid": 0, "additionalGids": [0, 1, 2, 3, 4, 6, 10, 11, 20, 26, 27]},
                "args": ["nginx", "-g", "daemon off;"],
                "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                        "HOSTNAME=web-0"],
                "cwd": "/",
                "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
                "apparmorProfile": "cri-containerd.apparmor.d",
                "oomScoreAdj": 1000
            },
            "root": {"path": "rootfs"},
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc",
                 "options": ["nosuid", "noexec", "nodev"]},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                 "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                 "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
                {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
                 "options": ["nosuid", "noexec", "nodev"]},
                {"destination": "/sys", "type": "sysfs", "source": "sysfs",
                 "options": ["nosuid", "noexec", "nodev", "ro"]},
                {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                 "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
                bind(&format!("{pod_dir}/volumes/kubernetes.io~empty-dir/data"), "/data"),
                bind(&cri_file(SANDBOX, "hosts"), "/etc/hosts"),
                bind(&format!("{pod_dir}/containers/web/3f1c2a9e"), "/dev/termination-log"),
                bind(&cri_file(SANDBOX, "hostname"), "/etc/hostname"),
                bind(&cri_file(SANDBOX, "resolv.conf"), "/etc/resolv.conf"),
                bind(&cri_file(SANDBOX, "shm"), "/dev/shm"),
                {"destination": "/var/run/secrets/kubernetes.io/serviceaccount", "type": "bind",
                 "source": format!("{pod_dir}/volumes/kubernetes.io~projected/kube-api-access-7xk2p"),
                 "options": ["rbind", "rprivate", "ro"]}
            ],
            "annotations": {
                "io.kubernetes.cri.container-type": "container",
                "io.kubernetes.cri.sandbox-id": SANDBOX,
                "io.kubernetes.cri.sandbox-namespace": "default"
            },
            "linux": {
                "resources": {"devices": [{"allow": false, "access": "rwm"}],
                              "cpu": {"shares": 2}},
                "cgroupsPath": format!("kubepods-besteffort-pod{}.slice:cri-containerd:1a2b", UID.replace('-', "_")),
                "namespaces": [
                    {"type": "pid"},
                    {"type": "ipc", "path": "/proc/2817/ns/ipc"},
                    {"type": "uts", "path": "/proc/2817/ns/uts"},
                    {"type": "mount"},
                    {"type": "network", "path": "/proc/2817/ns/net"}
                ],
                "maskedPaths": ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
                                "/proc/scsi", "/sys/firmware"],
                "readonlyPaths": ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq",
                                  "/proc/sys", "/proc/sysrq-trigger"],
                "seccomp": {
                    "defaultAction": "SCMP_ACT_ERRNO",
                    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                    "syscalls": [{"names": ["accept", "read", "write", "openat", "exit_group"],
                                  "action": "SCMP_ACT_ALLOW"}]
                }
            }
        })
    }

    /// The same container as a restricted pod runs it: runAsNonRoot (uid 1000),
    /// allowPrivilegeEscalation false, capabilities dropped to nothing.
    fn restricted_container() -> Value {
        let mut spec = cri_container();
        spec["process"]["user"] = json!({"uid": 1000, "gid": 3000});
        spec["process"]["noNewPrivileges"] = json!(true);
        spec["process"]["capabilities"] = json!({"bounding": [], "effective": [], "permitted": []});
        spec
    }

    fn baseline_of(change: impl FnOnce(&mut Value)) -> Vec<String> {
        let mut spec = cri_container();
        change(&mut spec);
        check(Level::Baseline, &spec, &pod())
    }

    fn restricted_of(change: impl FnOnce(&mut Value)) -> Vec<String> {
        let mut spec = restricted_container();
        change(&mut spec);
        check(Level::Restricted, &spec, &pod())
    }

    fn add_mount(spec: &mut Value, mount: Value) {
        spec["mounts"].as_array_mut().unwrap().push(mount);
    }

    #[test]
    fn a_containerd_cri_container_passes_baseline_and_its_restricted_form_passes_restricted() {
        assert_eq!(
            check(Level::Baseline, &cri_container(), &pod()),
            Vec::<String>::new()
        );
        assert!(host_path_mounts(&cri_container(), &pod()).is_empty());
        assert_eq!(
            check(Level::Restricted, &restricted_container(), &pod()),
            Vec::<String>::new()
        );
        // The baseline container at restricted: what it would have to change.
        assert_eq!(
            check(Level::Restricted, &cri_container(), &pod()),
            vec![
                "pod_security restricted: allowPrivilegeEscalation",
                "pod_security restricted: runAsNonRoot (uid 0)",
                "pod_security restricted: capabilities.drop ALL (keeps AUDIT_WRITE, CHOWN, \
                 DAC_OVERRIDE, FOWNER, FSETID, KILL, MKNOD, NET_RAW, SETFCAP, SETGID and 3 more)",
            ]
        );
    }

    #[test]
    fn privileged_checks_nothing_and_restricted_includes_baseline() {
        let wide_open = json!({"process": {"capabilities": {"bounding": ["CAP_SYS_ADMIN"]}},
                                   "mounts": [bind("/", "/host")]});
        assert!(check(Level::Privileged, &wide_open, &pod()).is_empty());
        assert!(check(Level::Privileged, &json!(null), &pod()).is_empty());
        let baseline = check(Level::Baseline, &wide_open, &pod());
        let restricted = check(Level::Restricted, &wide_open, &pod());
        for line in &baseline {
            let at_restricted = line.replacen("baseline", "restricted", 1);
            assert!(
                restricted.contains(&at_restricted),
                "{at_restricted} not in {restricted:?}"
            );
        }
        assert!(restricted.len() > baseline.len());
        assert!(restricted_of(|s| s["linux"]["namespaces"] = json!([]))
            .contains(&"pod_security restricted: hostNetwork".to_string()));
        assert!(Level::Privileged < Level::Baseline && Level::Baseline < Level::Restricted);
        assert_eq!(Level::Restricted.to_string(), "restricted");
        let parsed: Vec<Level> =
            serde_json::from_value(json!(["privileged", "baseline", "restricted"])).unwrap();
        assert_eq!(
            parsed,
            [Level::Privileged, Level::Baseline, Level::Restricted]
        );
        assert!(serde_json::from_value::<Level>(json!("Restricted")).is_err());
    }

    #[test]
    fn baseline_privileged() {
        let all = ["CAP_SYS_ADMIN", "CAP_CHOWN"];
        let v = baseline_of(|s| {
            s["process"]["capabilities"]["bounding"] = json!(all);
            s["linux"]["maskedPaths"] = json!([]);
        });
        assert_eq!(
            v,
            vec![
                "pod_security baseline: securityContext.privileged",
                "pod_security baseline: capabilities.add SYS_ADMIN",
                "pod_security baseline: procMount Unmasked",
            ]
        );
        // CAP_SYS_ADMIN with the default masks is an added capability, not --privileged.
        let v = baseline_of(|s| s["process"]["capabilities"]["bounding"] = json!(all));
        assert_eq!(v, vec!["pod_security baseline: capabilities.add SYS_ADMIN"]);
    }

    #[test]
    fn baseline_capabilities() {
        // In any set, spelt either way.
        for set in [
            "bounding",
            "effective",
            "permitted",
            "inheritable",
            "ambient",
        ] {
            let v = baseline_of(|s| {
                s["process"]["capabilities"][set] =
                    json!(["CAP_CHOWN", "sys_ptrace", "CAP_NET_ADMIN"])
            });
            assert_eq!(
                v,
                vec![
                    "pod_security baseline: capabilities.add NET_ADMIN",
                    "pod_security baseline: capabilities.add SYS_PTRACE",
                ],
                "{set}"
            );
        }
        // The baseline list and containerd's defaults (NET_RAW: the spec cannot tell it was added).
        let v = baseline_of(|s| {
            s["process"]["capabilities"]["ambient"] = json!(BASELINE_CAPABILITIES
                .iter()
                .map(|c| format!("CAP_{c}"))
                .chain(["CAP_NET_RAW".to_string()])
                .collect::<Vec<_>>())
        });
        assert!(v.is_empty(), "{v:?}");
    }

    #[test]
    fn baseline_host_namespaces() {
        let with = |namespaces: Value| baseline_of(|s| s["linux"]["namespaces"] = namespaces);
        assert_eq!(
            with(json!([{"type": "mount"}, {"type": "uts"}])),
            vec![
                "pod_security baseline: hostNetwork",
                "pod_security baseline: hostPID",
                "pod_security baseline: hostIPC",
            ]
        );
        assert_eq!(
            with(
                json!([{"type": "pid", "path": "/proc/1/ns/pid"}, {"type": "mount"},
                        {"type": "network", "path": "/proc/2817/ns/net"},
                        {"type": "ipc", "path": "/proc/2817/ns/ipc"}])
            ),
            vec!["pod_security baseline: hostPID"]
        );
        assert_eq!(
            with(
                json!([{"type": "pid"}, {"type": "network", "path": "/proc/self/ns/net"},
                        {"type": "ipc", "path": "/proc/1/ns/ipc"}])
            ),
            vec![
                "pod_security baseline: hostNetwork",
                "pod_security baseline: hostIPC",
            ]
        );
        // The sandbox's namespaces by its /proc/<pid>/ns, or a CNI network namespace: fine.
        assert!(with(json!([{"type": "pid", "path": "/proc/2817/ns/pid"},
                            {"type": "network", "path": "/var/run/netns/cni-5d1a"},
                            {"type": "ipc"}]))
        .is_empty());
    }

    #[test]
    fn baseline_host_path() {
        let with = |source: &str, destination: &str| {
            baseline_of(|s| add_mount(s, bind(source, destination)))
        };
        assert_eq!(
            with("/", "/host"),
            vec!["pod_security baseline: hostPath /"]
        );
        assert_eq!(
            with("/var/log", "/var/log"),
            vec!["pod_security baseline: hostPath /var/log"]
        );
        // CRI's files of another sandbox, or at another place, are the host's.
        for (source, destination) in [
            (cri_file(OTHER_SANDBOX, "hosts"), "/etc/hosts"),
            (cri_file(OTHER_SANDBOX, "shm"), "/dev/shm"),
            (cri_file(SANDBOX, "hosts"), "/etc/passwd"),
            (cri_file(SANDBOX, "resolv.conf"), "/etc/hosts"),
            (cri_file(SANDBOX, "config.json"), "/etc/hosts"),
            (
                format!("/var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes/{SANDBOX}"),
                "/etc/hosts",
            ),
            (
                format!("/var/lib/containerd/io.containerd.grpc.v1.cri/other/{SANDBOX}/hosts"),
                "/etc/hosts",
            ),
            (
                format!("io.containerd.grpc.v1.cri/sandboxes/{SANDBOX}/hosts"),
                "/etc/hosts",
            ),
        ] {
            assert_eq!(
                with(&source, destination),
                vec![format!("pod_security baseline: hostPath {source}")],
                "{source} -> {destination}"
            );
        }
        // Another pod's volume, the pod's directory itself, a `..` out of the pod's directory.
        for source in [
            "/var/lib/kubelet/pods/0d9e8f7a-1111-2222-3333-444455556666/volumes/kubernetes.io~secret/token".to_string(),
            format!("/var/lib/kubelet/pods/{UID}"),
            format!("/var/lib/kubelet/pods/{UID}/"),
            format!("/var/lib/kubelet/pods/{UID}/volumes/../../../../../etc"),
            format!("/var/lib/kubelet/pods/{UID}/volumes/x/.."),
            format!("/var/lib/kubelet/pods/{UID}x/volumes/data"),
        ] {
            assert_eq!(
                with(&source, "/data2"),
                vec![format!("pod_security baseline: hostPath {source}")],
                "{source}"
            );
        }
        // The pod's own, spelt loosely.
        assert!(with(&format!("/var/lib/kubelet//pods/./{UID}/volumes/x/"), "/x").is_empty());
        assert!(with(
            &format!("/run/containerd//io.containerd.grpc.v1.cri/sandboxes/{SANDBOX}/./shm"),
            "/dev//shm"
        )
        .is_empty());
        // A bind mount by option only counts; the kernel's filesystems do not, a host's does.
        let v = baseline_of(|s| {
            add_mount(
                s,
                json!({"destination": "/h", "source": "/srv", "options": ["bind"]}),
            );
            add_mount(
                s,
                json!({"destination": "/t", "type": "tmpfs", "source": "tmpfs"}),
            );
            add_mount(
                s,
                json!({"destination": "/d", "type": "devtmpfs", "source": "devtmpfs"}),
            );
            add_mount(s, bind("/srv", "/again"));
        });
        assert_eq!(
            v,
            vec![
                "pod_security baseline: hostPath /srv",
                "pod_security baseline: hostPath devtmpfs (devtmpfs filesystem)",
            ]
        );
    }

    #[test]
    fn pod_volumes_and_cri_files_are_the_pods_only_when_the_pod_is_known() {
        let spec = cri_container();
        let unknown = PodContext {
            kubelet_root: Path::new("/var/lib/kubelet"),
            pod_uid: None,
            sandbox_id: None,
        };
        let found = host_path_mounts(&spec, &unknown);
        let destinations: Vec<&str> = found.iter().map(|(_, d)| d.as_str()).collect();
        assert_eq!(
            destinations,
            [
                "/data",
                "/etc/hosts",
                "/dev/termination-log",
                "/etc/hostname",
                "/etc/resolv.conf",
                "/dev/shm",
                "/var/run/secrets/kubernetes.io/serviceaccount",
            ]
        );
        assert_eq!(found[1].0, cri_file(SANDBOX, "hosts"));
        // Another kubelet root: the volumes under /var/lib/kubelet are not the pod's.
        let elsewhere = PodContext {
            kubelet_root: Path::new("/data/kubelet/"),
            ..pod()
        };
        assert_eq!(host_path_mounts(&spec, &elsewhere).len(), 3);
        let mut moved = spec.clone();
        moved["mounts"][6]["source"] = json!(format!(
            "/data/kubelet/pods/{UID}/volumes/kubernetes.io~empty-dir/data"
        ));
        assert_eq!(host_path_mounts(&moved, &elsewhere).len(), 2);
        // Ids that are not one path component match nothing.
        for odd in ["", ".", "..", "a/b"] {
            let ctx = PodContext {
                pod_uid: Some(odd),
                sandbox_id: Some(odd),
                ..pod()
            };
            assert_eq!(host_path_mounts(&spec, &ctx).len(), 7, "{odd:?}");
        }
    }

    #[test]
    fn baseline_proc_mount() {
        assert_eq!(
            baseline_of(|s| s["linux"]["maskedPaths"] = json!([])),
            vec!["pod_security baseline: procMount Unmasked"]
        );
        assert_eq!(
            baseline_of(|s| {
                s["linux"].as_object_mut().unwrap().remove("maskedPaths");
            }),
            vec!["pod_security baseline: procMount Unmasked"]
        );
        assert_eq!(
            baseline_of(|s| s["linux"]["maskedPaths"] = json!(["/proc/kcore"])),
            vec![
                "pod_security baseline: procMount Unmasked (maskedPaths misses /proc/keys)",
                "pod_security baseline: procMount Unmasked (maskedPaths misses /sys/firmware)"
            ]
        );
        assert_eq!(
            baseline_of(|s| s["linux"]["readonlyPaths"] = json!([])),
            [
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger"
            ]
            .iter()
            .map(|p| format!(
                "pod_security baseline: procMount Unmasked (readonlyPaths misses {p})"
            ))
            .collect::<Vec<_>>()
        );
        // A second proc, or sysfs writable: the node's kernel parameters and core_pattern.
        let second_proc = baseline_of(|s| {
            s["mounts"]
                .as_array_mut()
                .unwrap()
                .push(json!({"destination": "/p", "type": "proc", "source": "proc"}))
        });
        assert_eq!(
            second_proc,
            vec!["pod_security baseline: procMount Unmasked (proc mounted at /p)"]
        );
        let rw_sys = baseline_of(|s| {
            s["mounts"].as_array_mut().unwrap().push(json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid"]}))
        });
        assert_eq!(
            rw_sys,
            vec!["pod_security baseline: procMount Unmasked (sysfs at /sys writable)"]
        );
        // Every device allowed.
        let all = baseline_of(|s| {
            s["linux"]["resources"] = json!({"devices": [{"allow": true, "access": "rwm"}]})
        });
        assert_eq!(all, vec!["pod_security baseline: securityContext.privileged (linux.resources.devices allows every device)"]);
    }

    #[test]
    fn baseline_sysctls() {
        assert_eq!(
            baseline_of(|s| s["linux"]["sysctl"] = json!({
                "kernel.msgmax": "65536", "net.ipv4.tcp_syncookies": "1", "net/ipv4/ip_forward": "1"})),
            vec![
                "pod_security baseline: sysctls kernel.msgmax",
                "pod_security baseline: sysctls net/ipv4/ip_forward",
            ]
        );
        let safe: serde_json::Map<String, Value> = SAFE_SYSCTLS
            .iter()
            .map(|k| (k.to_string(), json!("1")))
            .chain([("net/ipv4/ping_group_range".to_string(), json!("0 1"))])
            .collect();
        assert!(baseline_of(|s| s["linux"]["sysctl"] = Value::Object(safe)).is_empty());
    }

    #[test]
    fn baseline_seccomp() {
        let unconfined = ["pod_security baseline: seccompProfile Unconfined"];
        assert_eq!(
            baseline_of(|s| {
                s["linux"].as_object_mut().unwrap().remove("seccomp");
            }),
            unconfined
        );
        assert_eq!(
            baseline_of(|s| s["linux"]["seccomp"] = Value::Null),
            unconfined
        );
        assert_eq!(
            baseline_of(|s| s["linux"]["seccomp"]["defaultAction"] = json!("SCMP_ACT_ALLOW")),
            vec!["pod_security baseline: seccompProfile Unconfined (defaultAction SCMP_ACT_ALLOW)"]
        );
        assert_eq!(
            baseline_of(|s| s["linux"]["seccomp"]["defaultAction"] = json!("SCMP_ACT_LOG")),
            vec!["pod_security baseline: seccompProfile Unconfined (defaultAction SCMP_ACT_LOG)"]
        );
        // Restricted too.
        assert_eq!(
            restricted_of(|s| {
                s["linux"].as_object_mut().unwrap().remove("seccomp");
            }),
            vec!["pod_security restricted: seccompProfile Unconfined"]
        );
        assert!(baseline_of(
            |s| s["linux"]["seccomp"]["defaultAction"] = json!("SCMP_ACT_KILL_PROCESS")
        )
        .is_empty());
    }

    #[test]
    fn baseline_apparmor() {
        assert_eq!(
            baseline_of(|s| s["process"]["apparmorProfile"] = json!("unconfined")),
            vec!["pod_security baseline: appArmorProfile unconfined"]
        );
        assert!(baseline_of(|s| s["process"]["apparmorProfile"] = json!("")).is_empty());
        assert!(baseline_of(|s| {
            s["process"]
                .as_object_mut()
                .unwrap()
                .remove("apparmorProfile");
        })
        .is_empty());
        assert!(
            baseline_of(|s| s["process"]["apparmorProfile"] = json!("localhost-nginx")).is_empty()
        );
    }

    #[test]
    fn baseline_selinux() {
        assert_eq!(
            baseline_of(|s| s["process"]["selinuxLabel"] = json!("system_u:system_r:spc_t:s0")),
            vec!["pod_security baseline: seLinuxOptions.type spc_t"]
        );
        assert_eq!(
            baseline_of(|s| s["process"]["selinuxLabel"] = json!("unconfined_u")),
            vec![
                "pod_security baseline: seLinuxOptions.type (process.selinuxLabel unconfined_u \
                  is not user:role:type:level)"
            ]
        );
        for allowed in SELINUX_TYPES {
            let label = format!("system_u:system_r:{allowed}:s0:c123,c456");
            assert!(baseline_of(|s| s["process"]["selinuxLabel"] = json!(label)).is_empty());
        }
        assert!(baseline_of(|s| s["process"]["selinuxLabel"] = json!("")).is_empty());
    }

    #[test]
    fn restricted_allow_privilege_escalation() {
        let expected = ["pod_security restricted: allowPrivilegeEscalation"];
        assert_eq!(
            restricted_of(|s| s["process"]["noNewPrivileges"] = json!(false)),
            expected
        );
        assert_eq!(
            restricted_of(|s| {
                s["process"]
                    .as_object_mut()
                    .unwrap()
                    .remove("noNewPrivileges");
            }),
            expected
        );
        assert!(restricted_of(|s| s["process"]["noNewPrivileges"] = json!(true)).is_empty());
    }

    #[test]
    fn restricted_run_as_non_root() {
        let expected = ["pod_security restricted: runAsNonRoot (uid 0)"];
        assert_eq!(
            restricted_of(|s| s["process"]["user"]["uid"] = json!(0)),
            expected
        );
        assert_eq!(
            restricted_of(|s| {
                s["process"].as_object_mut().unwrap().remove("user");
            }),
            expected
        );
        assert_eq!(
            restricted_of(|s| s["process"]["user"] = json!({"gid": 0})),
            expected
        );
        assert!(restricted_of(|s| s["process"]["user"]["uid"] = json!(65534)).is_empty());
    }

    #[test]
    fn restricted_drop_all_capabilities() {
        assert_eq!(
            restricted_of(|s| s["process"]["capabilities"]["effective"] = json!(["CAP_CHOWN"])),
            vec!["pod_security restricted: capabilities.drop ALL (keeps CHOWN)"]
        );
        assert_eq!(
            restricted_of(|s| s["process"]["capabilities"]["bounding"] =
                json!(["CAP_NET_RAW", "CAP_NET_BIND_SERVICE"])),
            vec!["pod_security restricted: capabilities.drop ALL (keeps NET_RAW)"]
        );
        // NET_BIND_SERVICE may stay, in every set; no capabilities field at all is none.
        assert!(restricted_of(|s| {
            let only = json!(["CAP_NET_BIND_SERVICE"]);
            for set in [
                "bounding",
                "effective",
                "permitted",
                "ambient",
                "inheritable",
            ] {
                s["process"]["capabilities"][set] = only.clone();
            }
        })
        .is_empty());
        assert!(restricted_of(|s| {
            s["process"].as_object_mut().unwrap().remove("capabilities");
        })
        .is_empty());
    }

    #[test]
    fn restricted_volumes_are_host_paths_unless_the_pods() {
        assert_eq!(
            restricted_of(|s| add_mount(s, bind("/srv/shared", "/shared"))),
            vec!["pod_security restricted: hostPath /srv/shared"]
        );
        assert!(restricted_of(|s| add_mount(
            s,
            bind(
                &format!("/var/lib/kubelet/pods/{UID}/volumes/kubernetes.io~csi/pvc-1/mount"),
                "/pv"
            )
        ))
        .is_empty());
    }

    #[test]
    fn malformed_specs_never_panic_and_are_judged_unsafe() {
        for spec in [
            json!(null),
            json!([]),
            json!("config"),
            json!(42),
            json!({"process": [], "linux": "x", "mounts": {}}),
            json!({"process": {"capabilities": [], "user": 0, "noNewPrivileges": "yes",
                               "apparmorProfile": 1, "selinuxLabel": {}},
                   "linux": {"namespaces": {}, "maskedPaths": "all", "sysctl": [],
                             "seccomp": "RuntimeDefault"},
                   "mounts": [7, {"type": ["bind"]}, {"options": "bind"}]}),
            json!({"process": {"capabilities": {"bounding": [1, "CAP_CHOWN"], "effective": {}},
                               "user": {"uid": -1}},
                   "linux": {"namespaces": [1, {"type": 2}, {"type": "network", "path": 3}],
                             "seccomp": {"defaultAction": 0}}}),
            json!({"process": {"user": {"uid": 1.5}, "noNewPrivileges": true},
                   "linux": {"maskedPaths": [1]}}),
        ] {
            let baseline = check(Level::Baseline, &spec, &pod());
            let restricted = check(Level::Restricted, &spec, &pod());
            assert!(!baseline.is_empty(), "{spec}");
            assert!(restricted.len() > baseline.len(), "{spec}: {restricted:?}");
            assert!(
                restricted.iter().all(|l| !l.contains('\n')),
                "{restricted:?}"
            );
        }
        let spec = json!({
            "process": {"capabilities": {"bounding": "CAP_SYS_ADMIN"}, "user": {"uid": "root"},
                        "noNewPrivileges": 1, "selinuxLabel": 5},
            "linux": {"namespaces": "host", "maskedPaths": ["/proc/kcore", "/proc/keys", "/sys/firmware"],
                      "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
                      "sysctl": "kernel.x=1", "seccomp": {"defaultAction": "SCMP_ACT_ERRNO"}},
            "mounts": "none"
        });
        assert_eq!(
            check(Level::Restricted, &spec, &pod()),
            vec![
                "pod_security restricted: capabilities.add (process.capabilities.bounding is not a list of strings)",
                "pod_security restricted: hostNetwork",
                "pod_security restricted: hostPID",
                "pod_security restricted: hostIPC",
                "pod_security restricted: hostPath (mounts is not a list)",
                "pod_security restricted: sysctls (linux.sysctl is not a map of names to values)",
                "pod_security restricted: seLinuxOptions.type (process.selinuxLabel is not a string)",
                "pod_security restricted: allowPrivilegeEscalation (process.noNewPrivileges is not a boolean)",
                "pod_security restricted: runAsNonRoot (process.user.uid is not a number)",
                "pod_security restricted: capabilities.drop ALL (process.capabilities.bounding is not a list of strings)",
            ]
        );
        assert_eq!(
            host_path_mounts(
                &json!({"mounts": [{"type": "bind", "destination": "/x"}]}),
                &pod()
            ),
            vec![(
                "(mounts[0].source is not a string)".to_string(),
                String::new()
            )]
        );
    }

    #[test]
    fn huge_lists_give_a_bounded_report() {
        let caps: Vec<String> = (0..50_000).map(|i| format!("CAP_X{i}")).collect();
        let mounts: Vec<Value> = (0..50_000)
            .map(|i| bind(&format!("/srv/{i}"), "/m"))
            .collect();
        let sysctls: serde_json::Map<String, Value> = (0..50_000)
            .map(|i| (format!("kernel.x{i}"), json!("1")))
            .collect();
        let mut spec = restricted_container();
        spec["process"]["capabilities"]["ambient"] = json!(caps);
        spec["mounts"] = json!(mounts);
        spec["linux"]["sysctl"] = Value::Object(sysctls);
        let v = check(Level::Restricted, &spec, &pod());
        assert_eq!(v.len(), 3 * (NAMED + 1) + 1, "{v:?}");
        assert!(v.contains(&"pod_security restricted: capabilities.add: 49990 more".to_string()));
        assert!(v.contains(&"pod_security restricted: hostPath: 49990 more".to_string()));
        assert!(v.contains(&"pod_security restricted: sysctls: 49990 more".to_string()));
        assert!(v.last().unwrap().ends_with("and 49990 more)"), "{v:?}");
        // Odd names stay on one line.
        let v = baseline_of(|s| s["linux"]["sysctl"] = json!({"kernel.x\nfake": "1"}));
        assert_eq!(
            v,
            vec!["pod_security baseline: sysctls \"kernel.x\\nfake\""]
        );
    }
}
