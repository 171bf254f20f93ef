//! Out-of-memory notifications for a container's cgroup, reported as TaskOOM events.
//!
//! cgroup v1: an eventfd registered on `memory.oom_control` through `cgroup.event_control`.
//! cgroup v2: inotify on `memory.events`, reporting each increase of `oom_kill`.
//! Either watcher ends by itself when runc removes the cgroup.

use std::{
    fs::{File, OpenOptions},
    io::{self, Read, Write},
    os::fd::{AsRawFd, FromRawFd},
    path::{Path, PathBuf},
    thread,
};

/// Largest `/proc/<pid>/cgroup` read: one short line per hierarchy.
const MAX_CGROUP_LIST: u64 = 64 * 1024;
/// Largest `memory.events` read: a handful of counters.
const MAX_MEMORY_EVENTS: u64 = 4096;

/// A kernel file's text, at most `max` bytes: past that an error naming the file and the bound.
fn read_kernel_file(path: &Path, max: u64) -> io::Result<String> {
    let mut text = String::new();
    File::open(path)?.take(max + 1).read_to_string(&mut text)?;
    if text.len() as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!("{} is larger than {max} bytes", path.display()),
        ));
    }
    Ok(text)
}

/// The memory cgroup directory of a process, if it has one.
pub fn memory_cgroup_dir(pid: u32) -> io::Result<Option<PathBuf>> {
    let text = read_kernel_file(Path::new(&format!("/proc/{pid}/cgroup")), MAX_CGROUP_LIST)?;
    Ok(parse_memory_cgroup(&text, crate::metrics::is_cgroup_v2()))
}

fn parse_memory_cgroup(text: &str, v2: bool) -> Option<PathBuf> {
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let rel = path.trim_start_matches('/');
        if v2 && controllers.is_empty() {
            return Some(Path::new("/sys/fs/cgroup").join(rel));
        }
        if !v2 && controllers.split(',').any(|c| c == "memory") {
            return Some(Path::new("/sys/fs/cgroup/memory").join(rel));
        }
    }
    None
}

/// Starts watching; `on_oom` runs once per OOM event.
pub fn watch(pid: u32, on_oom: impl Fn() + Send + 'static) -> std::io::Result<()> {
    let Some(dir) = memory_cgroup_dir(pid)? else {
        return Ok(());
    };
    if crate::metrics::is_cgroup_v2() {
        watch_v2(dir, on_oom)
    } else {
        watch_v1(dir, on_oom)
    }
}

fn watch_v1(dir: PathBuf, on_oom: impl Fn() + Send + 'static) -> std::io::Result<()> {
    let control = File::open(dir.join("memory.oom_control"))?;
    // SAFETY: eventfd returns a new descriptor or -1; ownership passes to `File` at once.
    let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    if efd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: efd is a fresh descriptor owned by nobody else.
    let mut event = unsafe { File::from_raw_fd(efd) };
    OpenOptions::new()
        .write(true)
        .open(dir.join("cgroup.event_control"))?
        .write_all(format!("{} {}", event.as_raw_fd(), control.as_raw_fd()).as_bytes())?;
    thread::Builder::new()
        .name("oom".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            let _control = control;
            let mut buf = [0u8; 8];
            while event.read_exact(&mut buf).is_ok() {
                // The eventfd also fires when the cgroup is removed.
                if !dir.exists() {
                    break;
                }
                on_oom();
            }
        })?;
    Ok(())
}

/// The `oom_kill` counter of a `memory.events` file; `None` if it has none.
fn oom_kills(path: &Path) -> io::Result<Option<u64>> {
    let text = read_kernel_file(path, MAX_MEMORY_EVENTS)?;
    Ok(parse_oom_kills(&text))
}

fn parse_oom_kills(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
}

fn watch_v2(dir: PathBuf, on_oom: impl Fn() + Send + 'static) -> std::io::Result<()> {
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
    let events = dir.join("memory.events");
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC).map_err(std::io::Error::from)?;
    inotify
        .add_watch(&events, AddWatchFlags::IN_MODIFY)
        .map_err(std::io::Error::from)?;
    let mut seen = oom_kills(&events)?.unwrap_or(0);
    thread::Builder::new()
        .name("oom".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            while let Ok(evs) = inotify.read_events() {
                if evs
                    .iter()
                    .any(|e| e.mask.contains(AddWatchFlags::IN_IGNORED))
                {
                    break;
                }
                match oom_kills(&events) {
                    Ok(Some(n)) if n > seen => {
                        seen = n;
                        on_oom();
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    // Gone with the cgroup: the watch is over.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                    Err(e) => {
                        log::warn!("OOM notifications end: {e}");
                        break;
                    }
                }
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_cgroup_is_found_in_v1_and_v2_listings() {
        let v1 = "12:pids:/default/c1\n5:memory:/default/c1\n1:name=systemd:/x\n";
        assert_eq!(
            parse_memory_cgroup(v1, false),
            Some(PathBuf::from("/sys/fs/cgroup/memory/default/c1"))
        );
        assert_eq!(
            parse_memory_cgroup("0::/k8s/c2\n", true),
            Some(PathBuf::from("/sys/fs/cgroup/k8s/c2"))
        );
        assert_eq!(parse_memory_cgroup("garbage", false), None);
    }

    #[test]
    fn kernel_files_are_read_within_their_bound() {
        let dir = tempfile::tempdir().unwrap();
        let events = dir.path().join("memory.events");
        std::fs::write(&events, "low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\n").unwrap();
        assert_eq!(oom_kills(&events).unwrap(), Some(2));
        std::fs::write(&events, "low 0\n").unwrap();
        assert_eq!(oom_kills(&events).unwrap(), None);
        let long = format!("oom_kill 1\n{}", "x".repeat(MAX_MEMORY_EVENTS as usize));
        std::fs::write(&events, long).unwrap();
        let e = oom_kills(&events).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{} is larger than {MAX_MEMORY_EVENTS} bytes",
                events.display()
            )
        );
        let exact = "x".repeat(MAX_MEMORY_EVENTS as usize);
        std::fs::write(&events, &exact).unwrap();
        assert_eq!(read_kernel_file(&events, MAX_MEMORY_EVENTS).unwrap(), exact);
        // This process's own listing is well within its bound.
        assert!(memory_cgroup_dir(std::process::id()).is_ok());
    }
}
