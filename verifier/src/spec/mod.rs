//! The gate's checks on the OCI runtime spec (`config.json`) that runc will run.
//!
//! They judge the spec itself, not what asked for it: a pod manifest, an annotation or a
//! containerd client's options can say anything, while the spec is what runc applies. Each check
//! is pure (the spec as JSON, and what the gate learnt from containerd's own records) and returns
//! one line per violation; the gate decides what a violation means (enforce or audit).
//!
//! - [`pod_security`]: the Kubernetes Pod Security Standards (`privileged`, `baseline`,
//!   `restricted`) as far as the OCI spec shows them;
//! - [`exec`]: an exec's process may not exceed its container's init process;
//! - [`host`]: the host's measurement (kernel, modules, LSMs, runc's and the shim's digests) and the
//!   spec's security settings, and `[rule.host]`.

pub mod exec;
pub mod host;
pub mod pins;
pub mod pod_security;
pub mod stage;

use std::path::{Path, PathBuf};

use serde_json::Value;

/// Names the node's own namespaces where a spec joins them by another path, and pins what each
/// namespace of the spec must be in the created container (see [`pins`]).
///
/// containerd's CRI plugin joins a container to its sandbox's namespaces by
/// `/proc/<pause pid>/ns/<type>`, also when the pod uses the node's (hostPID, hostIPC,
/// hostNetwork): read as text, the spec looks the same either way. The gate runs in the node's
/// namespaces, so a path that leads to the same namespace as the gate's own `/proc/self/ns/<type>`
/// (same device and inode) is the node's: it is rewritten as `/proc/1/ns/<type>`, which every check
/// reads as the host's. A path that cannot be looked at is left as written (runc fails on it too).
/// The one look at each path both decides this and makes its pin.
pub fn name_host_namespaces(spec: &mut Value) -> Vec<pins::NamespacePin> {
    use pins::{Expect, FileId, NamespacePin};
    let mut out = Vec::new();
    let Some(list) = spec
        .pointer_mut("/linux/namespaces")
        .and_then(Value::as_array_mut)
    else {
        return out;
    };
    for entry in list.iter_mut().take(64) {
        let Some(name) = entry
            .get("type")
            .and_then(Value::as_str)
            .and_then(pins::proc_name)
            .map(str::to_string)
        else {
            continue;
        };
        let node = FileId::stat(&Path::new("/proc/self/ns").join(&name));
        let path = entry
            .get("path")
            .and_then(Value::as_str)
            .filter(|p| !p.is_empty());
        let expect = match path {
            None => match node {
                Some(node) => Expect::NotNode { node },
                None => continue,
            },
            Some(path) => match FileId::stat(Path::new(path)) {
                Some(id) => {
                    if Some(id) == node {
                        entry["path"] = Value::String(format!("/proc/1/ns/{name}"));
                    }
                    Expect::Same { id }
                }
                None => Expect::Unjudged,
            },
        };
        out.push(NamespacePin { kind: name, expect });
    }
    out
}

/// Judges bind mounts where they really lead, and pins what each must show in the created
/// container (see [`pins`]): a source whose path goes through a symlink on the node (`/tmp/x ->
/// /`, a link another container wrote into a volume) is replaced by the path it resolves to, so
/// that every check sees the directory runc will mount. A source that cannot be resolved is left
/// as written (runc fails on it too). The pin is taken from the resolved path, refusing links,
/// so a link put in its place after the look pins nothing the gate judged.
pub fn resolve_bind_sources(spec: &mut Value) -> Vec<pins::BindPin> {
    use pins::{BindPin, Expect};
    let mut out = Vec::new();
    let Some(mounts) = spec.get_mut("mounts").and_then(Value::as_array_mut) else {
        return out;
    };
    let mut table: Option<MountTable> = None;
    for mount in mounts.iter_mut().take(4096) {
        let bind = mount.get("type").and_then(Value::as_str) == Some("bind")
            || mount
                .get("options")
                .and_then(Value::as_array)
                .is_some_and(|o| {
                    o.iter()
                        .any(|o| matches!(o.as_str(), Some("bind" | "rbind")))
                });
        if !bind {
            continue;
        }
        let destination = mount
            .get("destination")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let Some(source) = mount.get("source").and_then(Value::as_str) else {
            continue;
        };
        let unjudged = BindPin {
            destination: destination.clone(),
            source: source.to_string(),
            expect: Expect::Unjudged,
        };
        if !source.starts_with('/') {
            out.push(unjudged);
            continue;
        }
        let Ok(canonical) = std::fs::canonicalize(source) else {
            out.push(unjudged);
            continue;
        };
        let expect = match pins::FileId::stat_no_links(&canonical) {
            Some(id) => Expect::Same { id },
            None => Expect::Unjudged,
        };
        // A source that is itself a bind mount of part of a filesystem (what the kubelet makes
        // of a volume's `subPath`, under the pod's own directory) is judged where that part is.
        let mounts = table.get_or_insert_with(|| {
            std::fs::File::open("/proc/self/mountinfo")
                .map(MountTable::read)
                .unwrap_or_default()
        });
        let real = mounts.real_path(&canonical).unwrap_or(canonical);
        let judged = real.to_string_lossy().into_owned();
        if real.to_str().is_some_and(|r| r != source) {
            mount["source"] = Value::String(judged.clone());
        }
        out.push(BindPin {
            destination,
            source: judged,
            expect,
        });
    }
    out
}

/// The node's mounts (`/proc/self/mountinfo`): device, root within the filesystem, mount point.
#[derive(Debug, Default)]
pub struct MountTable {
    entries: Vec<(String, PathBuf, PathBuf)>,
}

impl MountTable {
    /// Reads a mountinfo table, bounded; lines that do not parse are skipped.
    pub fn read(from: impl std::io::Read) -> MountTable {
        use std::io::BufRead;
        let mut entries = Vec::new();
        let reader = std::io::BufReader::new(from.take(16 << 20));
        for line in reader.lines().take(100_000) {
            let Ok(line) = line else { break };
            let fields: Vec<&str> = line.split(' ').collect();
            if let [_, _, dev, root, point, ..] = fields[..] {
                entries.push((dev.to_string(), unescape(root), unescape(point)));
            }
        }
        MountTable { entries }
    }

    /// Where the directory mounted at `point` really is, when a mount there shows only part of a
    /// filesystem: that filesystem's mount point (the one whose root contains it, nearest)
    /// joined with the rest of the root. `None` when nothing is mounted at `point`, or a whole
    /// filesystem is. A part of a filesystem mounted nowhere else reads as `/`, the worst case.
    pub fn real_path(&self, point: &Path) -> Option<PathBuf> {
        let (dev, root, _) = self.entries.iter().rev().find(|(_, _, p)| p == point)?;
        if root == Path::new("/") {
            return None;
        }
        let whole = self
            .entries
            .iter()
            .filter(|(d, r, p)| d == dev && p != point && root.starts_with(r))
            .max_by_key(|(_, r, _)| r.as_os_str().len());
        Some(match whole {
            Some((_, r, p)) => {
                let rest = root.strip_prefix(r).unwrap_or(root);
                p.join(rest)
            }
            None => PathBuf::from("/"),
        })
    }
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 4 <= bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let n = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(n);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_bind_source_through_a_symlink_is_judged_where_it_leads() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("volume-link");
        std::os::unix::fs::symlink("/", &link).unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let mut spec = json!({"mounts": [
            {"destination": "/host", "type": "bind", "source": link.to_str().unwrap(), "options": ["rbind"]},
            {"destination": "/data", "type": "none", "source": real.to_str().unwrap(), "options": ["bind"]},
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/gone", "type": "bind", "source": "/nonexistent/x"}
        ]});
        let pins = resolve_bind_sources(&mut spec);
        assert_eq!(spec["mounts"][0]["source"], "/");
        // Each bind is pinned to what its judged source was at the look.
        use pins::{Expect, FileId};
        let same = |p: &Path| Expect::Same {
            id: FileId::stat(p).unwrap(),
        };
        let pinned: Vec<(&str, &str, Expect)> = pins
            .iter()
            .map(|p| (p.destination.as_str(), p.source.as_str(), p.expect))
            .collect();
        let real_text = std::fs::canonicalize(&real).unwrap();
        assert_eq!(
            pinned,
            [
                ("/host", "/", same(Path::new("/"))),
                ("/data", real_text.to_str().unwrap(), same(&real)),
                ("/gone", "/nonexistent/x", Expect::Unjudged),
            ]
        );
        assert_eq!(
            spec["mounts"][1]["source"],
            std::fs::canonicalize(&real).unwrap().to_str().unwrap()
        );
        assert_eq!(spec["mounts"][2]["source"], "proc");
        assert_eq!(spec["mounts"][3]["source"], "/nonexistent/x");
        // Then judged as the host's root.
        let s = host::spec_security(&spec);
        assert!(
            s.host_root_mounts.iter().any(|m| m == "/"),
            "{:?}",
            s.host_root_mounts
        );
        for mut odd in [
            json!({"mounts": 3}),
            json!({"mounts": [1, {"type": "bind", "source": 5}]}),
        ] {
            let before = odd.clone();
            resolve_bind_sources(&mut odd);
            assert_eq!(odd, before);
        }
    }

    #[test]
    fn a_sub_path_mount_is_judged_where_its_part_of_the_filesystem_is() {
        let table = MountTable::read(
            &b"21 1 8:1 / / rw - ext4 /dev/sda1 rw\n\
               30 21 0:40 / /var/lib/kubelet/pods/u1/volumes/kubernetes.io~empty-dir/mem rw - tmpfs tmpfs rw\n\
               40 21 8:1 /etc /var/lib/kubelet/pods/u1/volume-subpaths/root/c/0 rw - ext4 /dev/sda1 rw\n\
               41 21 8:1 /var/lib/kubelet/pods/u1/volumes/kubernetes.io~configmap/cfg/..data/app.conf /var/lib/kubelet/pods/u1/volume-subpaths/cfg/c/1 rw - ext4 /dev/sda1 rw\n\
               42 21 0:40 /sub /var/lib/kubelet/pods/u1/volume-subpaths/mem/c/2 rw - tmpfs tmpfs rw\n\
               43 21 0:99 /x /var/lib/kubelet/pods/u1/volume-subpaths/gone/c/3 rw - xfs /dev/sdb rw\n\
               44 21 8:1 /with\\040space /a\\040b rw - ext4 /dev/sda1 rw\n\
               garbage line\n"[..],
        );
        let real = |p: &str| table.real_path(Path::new(p));
        // hostPath / with subPath etc: the node's /etc.
        assert_eq!(
            real("/var/lib/kubelet/pods/u1/volume-subpaths/root/c/0"),
            Some(PathBuf::from("/etc"))
        );
        // A configMap's file: where the kubelet keeps it.
        assert_eq!(
            real("/var/lib/kubelet/pods/u1/volume-subpaths/cfg/c/1"),
            Some(PathBuf::from(
                "/var/lib/kubelet/pods/u1/volumes/kubernetes.io~configmap/cfg/..data/app.conf"
            ))
        );
        // A part of a memory-backed emptyDir: inside it.
        assert_eq!(
            real("/var/lib/kubelet/pods/u1/volume-subpaths/mem/c/2"),
            Some(PathBuf::from(
                "/var/lib/kubelet/pods/u1/volumes/kubernetes.io~empty-dir/mem/sub"
            ))
        );
        // A part of a filesystem mounted nowhere else: the worst case.
        assert_eq!(
            real("/var/lib/kubelet/pods/u1/volume-subpaths/gone/c/3"),
            Some(PathBuf::from("/"))
        );
        // Whole filesystems and unmounted paths are judged as they are.
        assert_eq!(
            real("/var/lib/kubelet/pods/u1/volumes/kubernetes.io~empty-dir/mem"),
            None
        );
        assert_eq!(real("/tmp"), None);
        assert_eq!(real("/a b"), Some(PathBuf::from("/with space")));
    }

    #[test]
    fn a_path_to_the_nodes_own_namespace_is_named_as_the_hosts() {
        let me = std::process::id();
        let mut spec = json!({"linux": {"namespaces": [
            {"type": "network", "path": format!("/proc/{me}/ns/net")},
            {"type": "pid", "path": "/proc/self/ns/pid"},
            {"type": "ipc", "path": "/nonexistent/ns/ipc"},
            {"type": "uts"},
            {"type": "../etc", "path": "/proc/self/ns/net"}
        ]}});
        let pins = name_host_namespaces(&mut spec);
        let list = spec["linux"]["namespaces"].as_array().unwrap();
        use pins::{Expect, FileId};
        let own = |n: &str| FileId::stat(&Path::new("/proc/self/ns").join(n)).unwrap();
        let pinned: Vec<(&str, Expect)> =
            pins.iter().map(|p| (p.kind.as_str(), p.expect)).collect();
        assert_eq!(
            pinned,
            [
                ("net", Expect::Same { id: own("net") }),
                ("pid", Expect::Same { id: own("pid") }),
                ("ipc", Expect::Unjudged),
                ("uts", Expect::NotNode { node: own("uts") }),
            ]
        );
        assert_eq!(list[0]["path"], "/proc/1/ns/net");
        assert_eq!(list[1]["path"], "/proc/1/ns/pid");
        assert_eq!(list[2]["path"], "/nonexistent/ns/ipc");
        assert!(list[3].get("path").is_none());
        assert_eq!(list[4]["path"], "/proc/self/ns/net");
        // Malformed specs are left alone.
        for mut odd in [
            json!(null),
            json!({"linux": {"namespaces": 3}}),
            json!({"linux": {"namespaces": [1, "x"]}}),
        ] {
            let before = odd.clone();
            name_host_namespaces(&mut odd);
            assert_eq!(odd, before);
        }
    }
}
