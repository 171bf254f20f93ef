//! Mounts may not hide measured code: a spec mount over a directory of the measured tree that holds
//! executables or shared libraries (or over one such file) would let the container run something
//! other than what was measured, whatever the mount's type (a bind mount brings its own files, a
//! tmpfs an empty directory the container can fill).
//!
//! Destinations are the tenant's: they are cleaned lexically (`..` never climbs above `/`) and
//! resolved through the tree's own symlinks as runc resolves them (`/bin` lands on `/usr/bin`
//! where the image has `/bin -> usr/bin`). runc 1.1 applies a `..` after resolving what precedes
//! it (as `SecureJoin` does), a runtime that cleans the destination first applies it before: both
//! readings are judged, and a mount is fine only if neither hides code. A destination that cannot
//! be resolved (a symlink loop) is judged where it points unresolved. One longer than the kernel's
//! `PATH_MAX` is refused unjudged where the tree has any code: runc cleans it into something it
//! can mount, and resolving it would cost time without bound.

use serde_json::Value;

use super::{resolve, show, Exempt, PATH_MAX};
use crate::rootfs::Merged;

/// Lines reported at most; the rest is counted in one more line.
const MAX_LINES: usize = 10;
/// Longest path shown in a line, in characters.
const MAX_SHOWN: usize = 200;

/// Spec mounts whose destination hides or replaces an executable or shared library of the measured
/// tree. Each item is one line naming the destination and one hidden file, e.g.
/// `mount over /bin hides measured code (/bin/sh)`; after ten of them, one line says how many more
/// mounts do. A mount whose destination lands on a path matching `exempt` is not
/// reported, and neither are hidden files that match it. A destination longer than `PATH_MAX`
/// gives a line of its own (`... is longer than 4096 bytes: not judged`).
pub fn hidden_code(tree: &Merged, spec: &Value, exempt: &Exempt) -> Vec<String> {
    let Some(mounts) = spec.get("mounts").and_then(Value::as_array) else {
        return Vec::new();
    };
    // Sorted (the tree is), so that what lies below a path is one range.
    let code: Vec<&[u8]> = tree
        .iter()
        .filter(|(p, e)| (e.is_executable() || e.is_library()) && !exempt.matches(p))
        .map(|(p, _)| p.as_slice())
        .collect();
    let mut out = Vec::new();
    let mut more = 0usize;
    for m in mounts {
        let Some(dest) = m.get("destination").and_then(Value::as_str) else {
            continue;
        };
        let dest = dest.as_bytes();
        let line = if dest.len() > PATH_MAX {
            if code.is_empty() {
                continue;
            }
            format!(
                "mount over {} is longer than {PATH_MAX} bytes: not judged",
                shown(&clean(dest))
            )
        } else {
            let Some(hidden) = hidden_by(tree, &code, dest, exempt) else {
                continue;
            };
            format!(
                "mount over {} hides measured code ({})",
                shown(&clean(dest)),
                shown(hidden)
            )
        };
        if out.len() < MAX_LINES {
            out.push(line);
        } else {
            more += 1;
        }
    }
    if more > 0 {
        out.push(format!("and {more} more mounts hide measured code"));
    }
    out
}

/// The first of `code` (sorted paths) that a mount at `dest` hides, under either reading of it.
fn hidden_by<'a>(
    tree: &Merged,
    code: &[&'a [u8]],
    dest: &[u8],
    exempt: &Exempt,
) -> Option<&'a [u8]> {
    let lexical = clean(dest);
    let mut landings = Vec::with_capacity(2);
    for reading in [dest, lexical.as_slice()] {
        let at = resolve(tree, reading).unwrap_or_else(|| lexical.clone());
        if !landings.contains(&at) {
            landings.push(at);
        }
    }
    landings
        .iter()
        .filter(|at| !exempt.matches(at))
        .find_map(|at| first_at_or_below(code, at))
}

/// The first path of `sorted` that is `dir` or below it.
fn first_at_or_below<'a>(sorted: &[&'a [u8]], dir: &[u8]) -> Option<&'a [u8]> {
    if dir.is_empty() {
        return sorted.first().copied();
    }
    if let Ok(i) = sorted.binary_search(&dir) {
        return sorted.get(i).copied();
    }
    // Everything below `dir` sorts from `dir/` on, in one run (unlike `dir-x`, which sorts before).
    let mut prefix = dir.to_vec();
    prefix.push(b'/');
    let i = sorted.partition_point(|p| *p < prefix.as_slice());
    sorted.get(i).copied().filter(|p| p.starts_with(&prefix))
}

/// `path` as a relative path without empty, `.` or `..` components: `..` removes the component
/// before it, or nothing at the root. Relative paths are taken from the root, as runc does.
fn clean(path: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in path.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join(&b'/')
}

/// [`show`], cut short: a line stays readable whatever the length of the paths.
fn shown(path: &[u8]) -> String {
    let s = show(path);
    match s.char_indices().nth(MAX_SHOWN) {
        Some((at, _)) => format!("{}...", s.get(..at).unwrap_or_default()),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::tests::{unpack, Item, Item::*, ELF_EXEC, ELF_SO};
    use crate::measure::{measure, Options};
    use serde_json::json;

    /// The tree `items` unpack to, as measured.
    fn tree(items: &[Item]) -> Merged {
        let dir = tempfile::tempdir().unwrap();
        unpack(items, dir.path());
        let m = measure(dir.path(), &Options::default()).unwrap();
        crate::rootfs::overlay(&[&m.entries])
    }

    /// Code in `/usr/bin` and `/usr/lib`, a script in `/opt/tools`, and directories without code.
    fn common() -> Vec<Item> {
        vec![
            File("usr/bin/sh", ELF_EXEC, 0o755),
            File("usr/lib/libc.so.6", ELF_SO, 0o644),
            File("usr/lib/os-release", b"ID=test\n", 0o644),
            File("usr/share/doc/README", b"docs\n", 0o644),
            File("opt/tools/run", b"#!/bin/sh\n", 0o755),
            File("etc/hosts", b"127.0.0.1 localhost\n", 0o644),
            Dir("data", 0o755),
            Dir("tmp", 0o1777),
            Dir("proc", 0o555),
            Dir("dev", 0o755),
            Dir("sys", 0o555),
        ]
    }

    /// `/bin` a directory of its own with `/bin/sh`.
    fn classic() -> Merged {
        let mut items = common();
        items.push(File("bin/sh", ELF_EXEC, 0o755));
        tree(&items)
    }

    /// merged `/usr`: `/bin -> usr/bin`, `/lib -> /usr/lib`.
    fn merged_usr() -> Merged {
        let mut items = common();
        items.push(Symlink("bin", "usr/bin"));
        items.push(Symlink("lib", "/usr/lib"));
        tree(&items)
    }

    fn spec(mounts: &[(&str, &str)]) -> Value {
        let mounts: Vec<Value> = mounts
            .iter()
            .map(|(dest, kind)| {
                json!({"destination": dest, "type": kind, "source": "/somewhere", "options": ["rbind"]})
            })
            .collect();
        json!({ "ociVersion": "1.0.2", "mounts": mounts })
    }

    fn judged(tree: &Merged, mounts: &[(&str, &str)]) -> Vec<String> {
        hidden_code(tree, &spec(mounts), &Exempt::default())
    }

    #[test]
    fn a_mount_over_a_directory_or_a_file_of_code_is_reported() {
        let t = classic();
        assert_eq!(
            judged(&t, &[("/bin", "bind")]),
            ["mount over /bin hides measured code (/bin/sh)"]
        );
        assert_eq!(
            judged(&t, &[("/bin/sh", "bind")]),
            ["mount over /bin/sh hides measured code (/bin/sh)"]
        );
        assert_eq!(
            judged(&t, &[("/usr/lib", "tmpfs")]),
            ["mount over /usr/lib hides measured code (/usr/lib/libc.so.6)"]
        );
        // Above code, and the root itself.
        assert_eq!(
            judged(&t, &[("/usr", "tmpfs")]),
            ["mount over /usr hides measured code (/usr/bin/sh)"]
        );
        assert_eq!(
            judged(&t, &[("/", "bind")]),
            ["mount over / hides measured code (/bin/sh)"]
        );
        // A file mounted over a data file next to a library hides no code.
        assert!(judged(&t, &[("/usr/lib/os-release", "bind")]).is_empty());
        assert!(judged(&t, &[("/usr/share", "tmpfs")]).is_empty());
    }

    #[test]
    fn mounts_where_the_image_has_no_code_pass() {
        for t in [classic(), merged_usr()] {
            let mounts = [
                ("/tmp", "tmpfs"),
                ("/data", "bind"),
                ("/proc", "proc"),
                ("/dev", "tmpfs"),
                ("/dev/pts", "devpts"),
                ("/dev/shm", "tmpfs"),
                ("/sys", "sysfs"),
                ("/sys/fs/cgroup", "cgroup"),
                ("/etc/hosts", "bind"),
                ("/etc/resolv.conf", "bind"),
                ("/run/secrets/kubernetes.io/serviceaccount", "bind"),
                ("/new/volume", "bind"),
            ];
            assert!(judged(&t, &mounts).is_empty(), "{:?}", judged(&t, &mounts));
        }
    }

    #[test]
    fn destinations_resolve_through_the_trees_symlinks() {
        let t = merged_usr();
        assert_eq!(
            judged(&t, &[("/bin", "bind")]),
            ["mount over /bin hides measured code (/usr/bin/sh)"]
        );
        assert_eq!(
            judged(&t, &[("/bin/sh", "bind")]),
            ["mount over /bin/sh hides measured code (/usr/bin/sh)"]
        );
        assert_eq!(
            judged(&t, &[("/lib/", "tmpfs")]),
            ["mount over /lib hides measured code (/usr/lib/libc.so.6)"]
        );
        // A symlink out of the root lands inside it, as in runc.
        let mut items = common();
        items.push(Symlink("x", "/../../usr/bin"));
        items.push(Symlink("data/y", "../../../usr"));
        let t = tree(&items);
        assert_eq!(
            judged(&t, &[("/x", "bind")]),
            ["mount over /x hides measured code (/usr/bin/sh)"]
        );
        assert_eq!(
            judged(&t, &[("/data/y/lib", "bind")]),
            ["mount over /data/y/lib hides measured code (/usr/lib/libc.so.6)"]
        );
    }

    #[test]
    fn destinations_are_cleaned_and_both_readings_of_dot_dot_are_judged() {
        let t = classic();
        for dest in [
            "/bin/../usr/bin",
            "//usr/bin/",
            "/usr/./bin",
            "usr/bin",
            "../../usr/bin",
            "/../../../usr//bin/.",
        ] {
            assert_eq!(
                judged(&t, &[(dest, "bind")]),
                ["mount over /usr/bin hides measured code (/usr/bin/sh)"],
                "{dest}"
            );
        }
        assert_eq!(
            judged(&t, &[("//bin/", "bind")]),
            ["mount over /bin hides measured code (/bin/sh)"]
        );
        // runc 1.1 applies `..` to the resolved path (SecureJoin): with /data/doc ->
        // /usr/share/doc, `/data/doc/../../lib` is /usr/lib for it, /lib (nothing) once cleaned
        // first; `/data/doc/../../usr/bin` is /usr/usr/bin (nothing) for it, /usr/bin once
        // cleaned. Either reading hiding code counts.
        let mut items = common();
        items.push(Symlink("data/doc", "/usr/share/doc"));
        let t = tree(&items);
        assert_eq!(
            judged(&t, &[("/data/doc/../../lib", "tmpfs")]),
            ["mount over /lib hides measured code (/usr/lib/libc.so.6)"]
        );
        assert_eq!(
            judged(&t, &[("/data/doc/../../usr/bin", "tmpfs")]),
            ["mount over /usr/bin hides measured code (/usr/bin/sh)"]
        );
        assert!(judged(&t, &[("/data/doc/../../data", "tmpfs")]).is_empty());
        assert_eq!(resolve(&t, b"/data/doc/../../lib").unwrap(), b"usr/lib");
        // Where /bin -> usr/bin, `/bin/../data` is /usr/data for runc and /data cleaned: no code.
        assert!(judged(&merged_usr(), &[("/bin/../data", "tmpfs")]).is_empty());
    }

    #[test]
    fn exempt_destinations_and_files_are_not_reported() {
        let t = classic();
        let exempt = Exempt::new(&["/opt/tools/**"]).unwrap();
        let s = spec(&[("/opt/tools", "bind")]);
        assert_eq!(
            hidden_code(&t, &s, &Exempt::default()),
            ["mount over /opt/tools hides measured code (/opt/tools/run)"]
        );
        assert!(hidden_code(&t, &s, &exempt).is_empty());
        // A destination matching only by name (no `**`) is allowed too.
        let exact = Exempt::new(&["/opt/tools"]).unwrap();
        assert!(hidden_code(&t, &s, &exact).is_empty());
        // Exempt files are skipped; the next hidden one is named.
        let s = spec(&[("/opt", "bind")]);
        assert!(hidden_code(&t, &s, &exempt).is_empty());
        let s = spec(&[("/", "bind")]);
        let bin = Exempt::new(&["/bin/**"]).unwrap();
        assert_eq!(
            hidden_code(&t, &s, &bin),
            ["mount over / hides measured code (/opt/tools/run)"]
        );
        // An exempt name whose symlink leads to code elsewhere does not exempt that code.
        let mut items = common();
        items.push(Symlink("opt/tools/bin", "/usr/bin"));
        let t = tree(&items);
        let s = spec(&[("/opt/tools/bin", "bind")]);
        assert_eq!(
            hidden_code(&t, &s, &exempt),
            ["mount over /opt/tools/bin hides measured code (/usr/bin/sh)"]
        );
    }

    #[test]
    fn symlink_loops_end_and_are_judged_unresolved() {
        let mut items = common();
        items.push(Symlink("loop", "loop"));
        items.push(Symlink("a", "b"));
        items.push(Symlink("b", "a"));
        items.push(Symlink("usr/bin/self", "self/x"));
        let t = tree(&items);
        assert!(judged(&t, &[("/loop", "bind"), ("/a/b/c", "tmpfs")]).is_empty());
        // runc fails on the loop; the cleaned destination is /usr/bin, which holds code.
        assert_eq!(
            judged(&t, &[("/usr/bin/self/..", "bind")]),
            ["mount over /usr/bin hides measured code (/usr/bin/sh)"]
        );
        assert_eq!(resolve(&t, b"/usr/bin/self/../../lib"), None);
        assert_eq!(
            judged(&t, &[("/usr/bin/self/../../lib", "bind")]),
            ["mount over /usr/lib hides measured code (/usr/lib/libc.so.6)"]
        );
    }

    #[test]
    fn tenant_input_of_any_shape_never_panics_and_reports_are_bounded() {
        let t = merged_usr();
        let weird = json!({"mounts": [
            {"destination": ""},
            {"destination": 7},
            {"type": "tmpfs"},
            "not an object",
            {"destination": "/\u{0}bin"},
            {"destination": "/\u{fffd}\n/"},
            {"destination": "\\bin"},
            {"destination": format!("/{}", "x/".repeat(2000))},
            {"destination": format!("{}/usr/bin", "/x/..".repeat(900))},
            {"destination": "/./././"},
        ]});
        // "" and "/./././" are the root: everything is below it.
        assert_eq!(
            hidden_code(&t, &weird, &Exempt::default()),
            [
                "mount over / hides measured code (/opt/tools/run)",
                "mount over /usr/bin is longer than 4096 bytes: not judged",
                "mount over / hides measured code (/opt/tools/run)",
            ]
        );
        for spec in [
            json!({}),
            json!({"mounts": {}}),
            json!(null),
            json!({"mounts": null}),
        ] {
            assert!(hidden_code(&t, &spec, &Exempt::default()).is_empty());
        }
        // Within PATH_MAX, a long destination is judged and shown cut short.
        let deep: &'static str = Box::leak(format!("usr/{}bin", "d/".repeat(300)).into_boxed_str());
        let tool: &'static str = Box::leak(format!("{deep}/tool").into_boxed_str());
        let mut items = common();
        items.push(File(tool, ELF_EXEC, 0o755));
        let lines = judged(&tree(&items), &[(&format!("/{deep}"), "bind")]);
        assert_eq!(lines.len(), 1);
        assert!(lines[0].starts_with("mount over /usr/d/d/"), "{lines:?}");
        assert!(
            lines[0].contains("... hides measured code (/usr/d/d/") && lines[0].ends_with("...)"),
            "{lines:?}"
        );
        assert!(lines[0].len() < 2 * MAX_SHOWN + 100, "{lines:?}");

        // Many mounts over code: ten lines, then a count.
        let many: Vec<(&str, &str)> = (0..25).map(|_| ("/bin", "bind")).collect();
        let lines = judged(&t, &many);
        assert_eq!(lines.len(), MAX_LINES + 1);
        assert_eq!(lines[MAX_LINES], "and 15 more mounts hide measured code");
        // A tree without code: even a mount over the root hides nothing.
        let empty = tree(&[Dir("data", 0o755)]);
        assert!(judged(&empty, &[("/", "bind"), (&"/x".repeat(3000), "bind")]).is_empty());
    }
}

/// Mounts that land somewhere else than their destination says: runc resolves a destination
/// through the mounts made before it, so a symlink inside an earlier bind-mounted volume
/// (`/data/link -> /usr/bin`, written by another container of the pod) carries a later mount at
/// `/data/link` onto measured code. Each later mount below an earlier bind mount is followed into
/// that mount's source on the node, component by component without following links; a symlink
/// (or a path that cannot be looked at) on the way is reported. The volume can still change after
/// this look; the tree of the image itself is judged by [`hidden_code`].
pub fn through_volume_links(spec: &Value) -> Vec<String> {
    let Some(mounts) = spec.get("mounts").and_then(Value::as_array) else {
        return Vec::new();
    };
    let mut earlier: Vec<(Vec<u8>, std::path::PathBuf)> = Vec::new();
    let mut out = Vec::new();
    for m in mounts.iter().take(4096) {
        let Some(dest) = m.get("destination").and_then(Value::as_str) else {
            continue;
        };
        let dest = clean(dest.as_bytes());
        // The nearest earlier bind mount that contains this destination.
        let outer = earlier
            .iter()
            .filter(|(d, _)| d != &dest && below(&dest, d))
            .max_by_key(|(d, _)| d.len());
        if let Some((outer_dest, source)) = outer {
            let rest = &dest[outer_dest.len()..];
            let mut at = source.clone();
            for part in rest.split(|b| *b == b'/').filter(|p| !p.is_empty()) {
                use std::os::unix::ffi::OsStrExt;
                at.push(std::ffi::OsStr::from_bytes(part));
                match std::fs::symlink_metadata(&at) {
                    Ok(meta) if meta.file_type().is_symlink() => {
                        out.push(format!(
                            "mount at {} goes through a symlink in the volume at {} ({})",
                            shown(&dest),
                            shown(outer_dest),
                            at.display()
                        ));
                        break;
                    }
                    Ok(_) => {}
                    // Not there yet: runc creates it, as a directory, inside the volume.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    Err(e) => {
                        out.push(format!(
                            "mount at {} cannot be followed into the volume at {}: {e}",
                            shown(&dest),
                            shown(outer_dest)
                        ));
                        break;
                    }
                }
            }
        }
        let bind = m.get("type").and_then(Value::as_str) == Some("bind")
            || m.get("options").and_then(Value::as_array).is_some_and(|o| {
                o.iter()
                    .any(|o| matches!(o.as_str(), Some("bind" | "rbind")))
            });
        if let (true, Some(source)) = (bind, m.get("source").and_then(Value::as_str)) {
            if source.starts_with('/') {
                earlier.push((dest, std::path::PathBuf::from(source)));
            }
        }
    }
    out
}

/// Whether `path` lies strictly below `dir` (both cleaned, absolute).
fn below(path: &[u8], dir: &[u8]) -> bool {
    if dir == b"/" {
        return path != b"/";
    }
    path.len() > dir.len() && path.starts_with(dir) && path[dir.len()] == b'/'
}

#[cfg(test)]
mod volume_link_tests {
    use super::*;

    #[test]
    fn a_later_mount_through_a_link_in_an_earlier_volume_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let volume = dir.path().join("volume");
        std::fs::create_dir_all(volume.join("plain")).unwrap();
        std::os::unix::fs::symlink("/usr/bin", volume.join("link")).unwrap();
        let spec = |second: &str| {
            serde_json::json!({"mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/data", "type": "bind", "source": volume.to_str().unwrap(), "options": ["rbind"]},
                {"destination": second, "type": "bind", "source": "/tmp", "options": ["rbind"]}
            ]})
        };
        let v = through_volume_links(&spec("/data/link"));
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(
            v[0].starts_with("mount at /data/link goes through a symlink in the volume at /data"),
            "{v:?}"
        );
        assert!(through_volume_links(&spec("/data//link/x")).len() == 1);
        // A directory of the volume, one runc will create, or a mount beside the volume: fine.
        assert!(through_volume_links(&spec("/data/plain")).is_empty());
        assert!(through_volume_links(&spec("/data/new/dir")).is_empty());
        assert!(through_volume_links(&spec("/datalink")).is_empty());
        assert!(through_volume_links(&serde_json::json!({"mounts": 3})).is_empty());
    }
}
