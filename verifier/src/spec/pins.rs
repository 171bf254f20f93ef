//! What the created container must really have, checked after `runc create` and before the
//! container's first instruction runs.
//!
//! The gate judges paths: a namespace joined by `/proc/<pid>/ns/net`, a bind mount of
//! `/var/lib/kubelet/pods/<uid>/volumes/...`. runc opens them again later, and in between the
//! node can change what a path leads to: a pid reused by a process in the node's network
//! namespace, a directory in a volume replaced by a link to `/`. So when the gate judges a path it
//! also pins what the path led to at that moment (device and inode, read by the same look), and
//! once runc has created the container, but before `runc start`, the shim compares the container's
//! own namespaces (`/proc/<pid>/ns/*`), root and bind-mounted directories (looked up inside its
//! root, `/proc/<pid>/root`) with the pins. Any difference refuses the start: what would run is
//! not what was judged.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A file's identity on the node: device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    fn of(meta: &std::fs::Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }

    /// The identity of what `path` leads to (links followed, as runc follows them).
    pub fn stat(path: &Path) -> Option<FileId> {
        std::fs::metadata(path).ok().map(|m| FileId::of(&m))
    }

    /// The identity of the file at `path` when no component of it is a link (`None` otherwise).
    pub fn stat_no_links(path: &Path) -> Option<FileId> {
        use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
        use std::os::fd::FromRawFd;
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_NO_SYMLINKS);
        let fd = openat2(nix::libc::AT_FDCWD, path, how).ok()?;
        // SAFETY: `openat2` returned a new descriptor that nothing else owns.
        let file = unsafe { std::fs::File::from_raw_fd(fd) };
        file.metadata().ok().map(|m| FileId::of(&m))
    }
}

/// What the container must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "expect", rename_all = "snake_case")]
pub enum Expect {
    /// Exactly this file (namespace, directory) the gate judged.
    Same { id: FileId },
    /// A namespace of its own: anything but the node's.
    NotNode { node: FileId },
    /// The gate could not look at the path; runc should have failed on it too, so a container
    /// that exists anyway has something the gate never judged.
    Unjudged,
}

/// A namespace of the spec: `kind` as `/proc/<pid>/ns/` names it (`net`, `pid`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespacePin {
    pub kind: String,
    #[serde(flatten)]
    pub expect: Expect,
}

/// A bind mount of the spec: what its destination must show inside the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindPin {
    pub destination: String,
    /// The source as judged (links resolved).
    pub source: String,
    #[serde(flatten)]
    pub expect: Expect,
}

/// Everything the created container is compared with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pins {
    /// The root filesystem the shim mounted and the gate measured.
    #[serde(default)]
    pub root: Option<FileId>,
    #[serde(default)]
    pub namespaces: Vec<NamespacePin>,
    #[serde(default)]
    pub binds: Vec<BindPin>,
}

/// `/proc/<pid>/ns/` names of the spec's namespace types.
pub fn proc_name(kind: &str) -> Option<&str> {
    let name = match kind {
        "network" => "net",
        "mount" => "mnt",
        other => other,
    };
    matches!(
        name,
        "net" | "mnt" | "pid" | "ipc" | "uts" | "user" | "cgroup" | "time"
    )
    .then_some(name)
}

/// Pins the root filesystem the shim mounted at `<bundle>/rootfs`.
pub fn pin_root(pins: &mut Pins, bundle: &Path) {
    pins.root = FileId::stat(&bundle.join("rootfs"));
}

/// Drops pins of bind mounts that a later mount of the spec hides (at the same destination or
/// above it), and of those under a masked path: runc covers them, so the container cannot see
/// them, and what it does see there is judged with the later mount.
pub fn drop_hidden(pins: &mut Pins, spec: &Value) {
    let destinations: Vec<PathBuf> = spec
        .get("mounts")
        .and_then(Value::as_array)
        .map(|m| {
            m.iter()
                .take(4096)
                .map(|m| {
                    normalise(
                        m.get("destination")
                            .and_then(Value::as_str)
                            .unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let masked: Vec<PathBuf> = spec
        .pointer("/linux/maskedPaths")
        .and_then(Value::as_array)
        .map(|m| {
            m.iter()
                .take(4096)
                .filter_map(Value::as_str)
                .map(normalise)
                .collect()
        })
        .unwrap_or_default();
    let mut seen = 0usize;
    pins.binds.retain(|pin| {
        let dest = normalise(&pin.destination);
        // Pins are made in the spec's order; find this pin's mount again by destination.
        let at = destinations
            .iter()
            .skip(seen)
            .position(|d| *d == dest)
            .map(|p| p + seen);
        if let Some(at) = at {
            seen = at + 1;
        }
        let later = at.map_or(&[][..], |at| &destinations[at + 1..]);
        let hidden = later.iter().any(|d| dest.starts_with(d));
        let under_mask = masked.iter().any(|m| dest.starts_with(m));
        !(hidden || under_mask)
    });
}

/// A container path made absolute and lexically clean (`..` never above `/`).
fn normalise(path: &str) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in Path::new(path).components() {
        match c {
            std::path::Component::Normal(n) => out.push(n),
            std::path::Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// Compares the created container whose init process is `pid` with the pins; one line per
/// difference. Run by the shim after `runc create` and before `runc start`.
pub fn check_created(pins: &Pins, pid: u32) -> Vec<String> {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let mut out = Vec::new();
    if let Some(root) = pins.root {
        if FileId::stat(&proc.join("root")) != Some(root) {
            out.push(
                "the container's root is not the root filesystem vouch mounted and measured".into(),
            );
        }
    }
    for ns in &pins.namespaces {
        let now = FileId::stat(&proc.join("ns").join(&ns.kind));
        let ok = match (ns.expect, now) {
            (Expect::Same { id }, Some(now)) => id == now,
            (Expect::NotNode { node }, Some(now)) => node != now,
            _ => false,
        };
        if !ok {
            out.push(format!(
                "the container's {} namespace is not the one judged (it changed between the \
                 gate's look and runc's)",
                ns.kind
            ));
        }
    }
    if pins.binds.is_empty() {
        return out;
    }
    let root = match open_root(&proc) {
        Ok(fd) => fd,
        Err(e) => {
            out.push(format!("cannot look inside the created container: {e}"));
            return out;
        }
    };
    for bind in &pins.binds {
        let now = stat_in_root(&root, &bind.destination);
        let ok = match (bind.expect, now) {
            (Expect::Same { id }, Ok(now)) => id == now,
            _ => false,
        };
        if !ok {
            out.push(format!(
                "bind mount at {} does not show {}, the directory judged (it changed between \
                 the gate's look and runc's mount)",
                bind.destination, bind.source
            ));
        }
    }
    out
}

fn open_root(proc: &Path) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_PATH | nix::libc::O_DIRECTORY | nix::libc::O_CLOEXEC)
        .open(proc.join("root"))?;
    let fd = std::os::fd::IntoRawFd::into_raw_fd(file);
    // SAFETY: `fd` was just released by the `File` that owned it.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// The identity of `path` inside the container, resolved as runc resolves a mount destination:
/// within its root, links included (absolute links lead to the container's `/`, not the node's).
fn stat_in_root(root: &std::os::fd::OwnedFd, path: &str) -> Result<FileId, String> {
    use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
    use std::os::fd::{AsRawFd, FromRawFd};
    let relative = path.trim_start_matches('/');
    let relative = if relative.is_empty() { "." } else { relative };
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = openat2(root.as_raw_fd(), relative, how).map_err(|e| e.to_string())?;
    // SAFETY: `openat2` returned a new descriptor that nothing else owns.
    let file = unsafe { std::fs::File::from_raw_fd(fd) };
    file.metadata()
        .map(|m| FileId::of(&m))
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn same(path: &Path) -> Expect {
        Expect::Same {
            id: FileId::stat(path).unwrap(),
        }
    }

    #[test]
    fn this_process_matches_what_it_has_and_nothing_else() {
        // This test process stands in for a created container: its root is the node's `/`.
        let pid = std::process::id();
        let dir = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let dest = dir.path().to_str().unwrap().to_string();
        let good = Pins {
            root: FileId::stat(Path::new("/")),
            namespaces: vec![NamespacePin {
                kind: "net".into(),
                expect: same(Path::new("/proc/self/ns/net")),
            }],
            binds: vec![BindPin {
                destination: dest.clone(),
                source: dest.clone(),
                expect: same(dir.path()),
            }],
        };
        assert_eq!(check_created(&good, pid), Vec::<String>::new());

        let mut swapped = good.clone();
        swapped.binds[0].expect = same(other.path());
        let why = check_created(&swapped, pid);
        assert_eq!(why.len(), 1, "{why:?}");
        assert!(why[0].starts_with(&format!("bind mount at {dest} does not show")));

        let mut unjudged = good.clone();
        unjudged.binds[0].expect = Expect::Unjudged;
        unjudged.namespaces[0].expect = Expect::Unjudged;
        assert_eq!(check_created(&unjudged, pid).len(), 2);

        // A process in the node's network namespace where a namespace of its own was judged.
        let mut node_net = good.clone();
        node_net.namespaces[0].expect = Expect::NotNode {
            node: FileId::stat(Path::new("/proc/self/ns/net")).unwrap(),
        };
        let why = check_created(&node_net, pid);
        assert_eq!(
            why,
            vec![
                "the container's net namespace is not the one judged (it changed between the \
                  gate's look and runc's)"
                    .to_string()
            ]
        );

        let mut root = good.clone();
        root.root = FileId::stat(other.path());
        assert_eq!(check_created(&root, pid).len(), 1);

        // A destination that is gone, and a process that is gone.
        let mut gone = good.clone();
        gone.binds[0].destination = format!("{dest}/nothing-here");
        assert_eq!(check_created(&gone, pid).len(), 1);
        assert!(!check_created(&good, u32::MAX).is_empty());
    }

    #[test]
    fn destinations_resolve_inside_the_root_links_included() {
        // An absolute link resolves against the container's root, as runc resolves it.
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("real")).unwrap();
        std::os::unix::fs::symlink("/real", dir.path().join("link")).unwrap();
        let root: std::os::fd::OwnedFd = std::fs::File::open(dir.path()).unwrap().into();
        let want = FileId::stat(&dir.path().join("real")).unwrap();
        assert_eq!(stat_in_root(&root, "/link").unwrap(), want);
        assert_eq!(stat_in_root(&root, "/../../real").unwrap(), want);
        assert_eq!(
            stat_in_root(&root, "/").unwrap(),
            FileId::stat(dir.path()).unwrap()
        );
        assert!(stat_in_root(&root, "/missing").is_err());
    }

    #[test]
    fn hidden_and_masked_binds_are_not_pinned() {
        let pin = |d: &str| BindPin {
            destination: d.into(),
            source: "/src".into(),
            expect: Expect::Unjudged,
        };
        let spec = json!({
            "mounts": [
                {"destination": "/run/secret", "type": "bind", "source": "/a"},
                {"destination": "/data", "type": "bind", "source": "/b"},
                {"destination": "/run", "type": "tmpfs", "source": "tmpfs"},
                {"destination": "/etc/hosts", "type": "bind", "source": "/c"},
                {"destination": "/etc/hosts", "type": "bind", "source": "/d"},
                {"destination": "/proc/kcore", "type": "bind", "source": "/e"}
            ],
            "linux": {"maskedPaths": ["/proc/kcore"]}
        });
        let mut pins = Pins {
            binds: [
                "/run/secret",
                "/data",
                "/etc/hosts",
                "/etc/hosts",
                "/proc/kcore",
            ]
            .into_iter()
            .map(pin)
            .collect(),
            ..Pins::default()
        };
        drop_hidden(&mut pins, &spec);
        let kept: Vec<&str> = pins.binds.iter().map(|b| b.destination.as_str()).collect();
        // The first /etc/hosts is hidden by the second; /run/secret by the tmpfs on /run.
        assert_eq!(kept, ["/data", "/etc/hosts"]);
    }

    #[test]
    fn pins_survive_the_verdicts_json() {
        let pins = Pins {
            root: Some(FileId { dev: 1, ino: 2 }),
            namespaces: vec![NamespacePin {
                kind: "pid".into(),
                expect: Expect::NotNode {
                    node: FileId { dev: 3, ino: 4 },
                },
            }],
            binds: vec![BindPin {
                destination: "/d".into(),
                source: "/s".into(),
                expect: Expect::Unjudged,
            }],
        };
        let text = serde_json::to_string(&pins).unwrap();
        assert_eq!(serde_json::from_str::<Pins>(&text).unwrap(), pins);
        assert_eq!(proc_name("network"), Some("net"));
        assert_eq!(proc_name("../x"), None);
    }
}
