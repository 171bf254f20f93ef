//! Processes, mounts and commands: the low-level helpers of the rig.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Runs a command to completion, capturing its output; fails (with its stderr) unless it exits 0.
pub(crate) fn run_checked(cmd: &mut Command) -> Result<Output> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("spawn {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        );
    }
    Ok(out)
}

/// Decodes the octal escapes (`\040` and friends) of a path in `/proc/self/mountinfo`.
fn unescape_mount_path(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every mount point at or below `root` (as seen in this process's mount namespace), deepest
/// first.
pub fn mounts_under(root: &Path) -> Vec<String> {
    let root = root.to_string_lossy().trim_end_matches('/').to_string();
    let prefix = format!("{root}/");
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut mounts: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mount_path)
        .filter(|m| *m == root || m.starts_with(&prefix))
        .collect();
    mounts.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| b.cmp(a)));
    mounts.dedup();
    mounts
}

/// Unmounts everything at or below `root`, deepest first (lazily when a plain unmount fails).
/// Returns the mount points that could not be unmounted.
pub(crate) fn unmount_under(root: &Path) -> Vec<String> {
    for _ in 0..5 {
        let mounts = mounts_under(root);
        if mounts.is_empty() {
            return mounts;
        }
        for m in mounts {
            if nix::mount::umount2(m.as_str(), nix::mount::MntFlags::empty()).is_err() {
                let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
            }
        }
    }
    mounts_under(root)
}

/// The command line of a process, split at NULs (empty for zombies and kernel threads).
fn cmdline(pid: u32) -> Vec<String> {
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(b) => b
            .split(|c| *c == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn all_pids() -> Vec<u32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .collect()
}

/// Processes whose command line has `-address <address>` (or `--address`): the shims a
/// containerd listening on `address` started. They outlive containerd.
pub fn pids_with_address(address: &Path) -> Vec<u32> {
    let address = address.to_string_lossy();
    let me = std::process::id();
    all_pids()
        .into_iter()
        .filter(|p| *p != me)
        .filter(|p| {
            let args = cmdline(*p);
            args.windows(2)
                .any(|w| (w[0] == "-address" || w[0] == "--address") && w[1] == address.as_ref())
                || args.iter().any(|a| {
                    a.strip_prefix("-address=")
                        .or_else(|| a.strip_prefix("--address="))
                        == Some(address.as_ref())
                })
        })
        .collect()
}

/// Processes of `containerd-shim-vouch-v2` started by the containerd listening on `address`.
pub fn shim_pids_with_address(address: &Path) -> Vec<u32> {
    pids_with_address(address)
        .into_iter()
        .filter(|p| {
            cmdline(*p).first().is_some_and(|a0| {
                Path::new(a0)
                    .file_name()
                    .is_some_and(|n| n == "containerd-shim-vouch-v2")
            })
        })
        .collect()
}

/// True while `pid` exists and is not a zombie.
pub(crate) fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name, which may itself contain ')'.
        Ok(s) => s
            .rfind(')')
            .and_then(|i| s[i + 1..].trim_start().chars().next())
            .is_some_and(|st| st != 'Z' && st != 'X'),
        Err(_) => false,
    }
}

/// Sends `sig` to `pid`, ignoring errors (the process may be gone).
pub(crate) fn signal(pid: u32, sig: Signal) {
    if let Ok(p) = i32::try_from(pid) {
        if p > 0 {
            let _ = kill(Pid::from_raw(p), sig);
        }
    }
}

/// Waits until none of `pids` is alive, or until `timeout` passes; returns the survivors.
pub(crate) fn wait_gone(pids: &[u32], timeout: Duration) -> Vec<u32> {
    let deadline = Instant::now() + timeout;
    loop {
        let left: Vec<u32> = pids.iter().copied().filter(|p| alive(*p)).collect();
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Stops a child process: SIGTERM, up to `grace` to exit, then SIGKILL; always reaps it.
pub(crate) fn stop_child(child: &mut std::process::Child, grace: Duration) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    signal(child.id(), Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(child.id(), Signal::SIGKILL);
    let _ = child.wait();
}

/// The last `n` lines of a file (for error messages).
pub(crate) fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Finds an executable on the usual system `PATH`.
pub(crate) fn which(name: &str) -> Option<PathBuf> {
    [
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    ]
    .iter()
    .map(|d| Path::new(d).join(name))
    .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_paths_are_unescaped() {
        assert_eq!(unescape_mount_path(r"/tmp/a\040b"), "/tmp/a b");
        assert_eq!(unescape_mount_path(r"/x\134y"), r"/x\y");
        assert_eq!(unescape_mount_path("/plain"), "/plain");
    }

    #[test]
    fn this_process_is_alive_and_pid_zero_is_not() {
        assert!(alive(std::process::id()));
        assert!(!alive(0));
    }
}
