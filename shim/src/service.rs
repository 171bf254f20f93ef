//! The shim's own lifecycle: `start` (spawn or reuse the server for a pod), `delete` (clean up after
//! a dead shim), serving, and exiting when the last container is gone.

use std::{
    fs::File,
    io::{IsTerminal, Read, Write},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    sync::Arc,
    time::SystemTime,
};

use containerd_shim::{
    api::DeleteResponse, publisher::RemotePublisher, synchronous::util::write_address, Config,
    ExitSignal, Flags, StartOpts,
};
use runc::options::DeleteOpts;
use vouch_verifier::Gate;

use crate::{events::Events, mount, options, process::timestamp, reaper, task::TaskService};

/// Pod sandbox id annotation set by containerd's CRI plugin: containers of one pod share a shim.
const SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";
/// Runtime options saved in the bundle at `start`, for a later `delete` to find runc's state.
pub const SAVED_OPTIONS: &str = "vouch-options.pb";

/// Largest bundle `config.json` read for its grouping key: the bound the task service reads the
/// spec within.
const MAX_SPEC_BYTES: u64 = vouch_verifier::identity::spec::MAX_SPEC_BYTES as u64;
/// Largest runtime options read, from stdin or the bundle: a protobuf `Any` of runc's options is a
/// few hundred bytes.
const MAX_OPTIONS_BYTES: u64 = 64 * 1024;
/// Largest `address` file read: one socket address.
const MAX_ADDRESS_BYTES: u64 = 4096;

pub struct Service {
    namespace: String,
    id: String,
    address: String,
    socket: String,
    exit: Arc<ExitSignal>,
}

/// Writes a `start`/`delete` answer to stdout for containerd and exits at once (status 0, or 1 when
/// stdout is gone), skipping the framework's teardown of its signal handling.
fn finish<T>(write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> T {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let code = match write(&mut out).and_then(|()| out.flush()) {
        Ok(()) => 0,
        Err(_) => 1,
    };
    std::process::exit(code)
}

/// `r` to its end, at most `max` bytes: past that an error naming `what` and the bound.
fn read_at_most(r: impl Read, max: u64, what: &str) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    r.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!("{what} is larger than {max} bytes"),
        ));
    }
    Ok(bytes)
}

/// The file at `path`, at most `max` bytes (a FIFO put there does not block the read).
fn read_file_at_most(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    read_at_most(file, max, &path.display().to_string())
}

/// Reads the bundle's annotations for the grouping key (sandbox id, else the container id). A
/// spec over the bound is an error; one missing or unreadable leaves the container id, and the
/// task service's own read says what is wrong with it.
fn grouping(bundle: &Path, id: &str) -> Result<String, String> {
    let bytes = match read_file_at_most(&bundle.join("config.json"), MAX_SPEC_BYTES) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::FileTooLarge => return Err(e.to_string()),
        Err(_) => return Ok(id.to_string()),
    };
    Ok(serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|spec| {
            spec.pointer("/annotations")
                .and_then(|a| a.get(SANDBOX_ID))
                .and_then(|v| v.as_str())
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        })
        .unwrap_or_else(|| id.to_string()))
}

/// Moves a process into a cgroup given relative to the hierarchy roots (v1: every controller).
fn join_cgroup(path: &str, pid: u32) -> std::io::Result<()> {
    let rel = path.trim_start_matches('/');
    let root = Path::new("/sys/fs/cgroup");
    if crate::metrics::is_cgroup_v2() {
        return std::fs::write(root.join(rel).join("cgroup.procs"), pid.to_string());
    }
    let mut joined = false;
    for entry in std::fs::read_dir(root)?.flatten() {
        let procs = entry.path().join(rel).join("cgroup.procs");
        if procs.exists() && std::fs::write(&procs, pid.to_string()).is_ok() {
            joined = true;
        }
    }
    if joined {
        Ok(())
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("cgroup {path} not found"),
        ))
    }
}

fn is_socket(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::symlink_metadata(path)
        .map(|m| m.file_type().is_socket())
        .unwrap_or(false)
}

fn socket_path(address: &str) -> PathBuf {
    PathBuf::from(address.strip_prefix("unix://").unwrap_or(address))
}

impl containerd_shim::Shim for Service {
    type T = TaskService;

    fn new(_runtime_id: &str, args: &Flags, _config: &mut Config) -> Self {
        Service {
            namespace: args.namespace.clone(),
            id: args.id.clone(),
            address: args.address.clone(),
            socket: args.socket.clone(),
            exit: Arc::new(ExitSignal::default()),
        }
    }

    fn start_shim(&mut self, opts: StartOpts) -> containerd_shim::Result<String> {
        let bundle = std::env::current_dir().map_err(|e| {
            containerd_shim::Error::Other(format!("cannot find the bundle directory: {e}"))
        })?;
        let group = grouping(&bundle, &opts.id).map_err(containerd_shim::Error::InvalidArgument)?;
        let raw_options = if std::io::stdin().is_terminal() {
            Vec::new()
        } else {
            match read_at_most(std::io::stdin(), MAX_OPTIONS_BYTES, "stdin") {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::FileTooLarge => {
                    return Err(containerd_shim::Error::InvalidArgument(format!(
                        "runtime options: {e}"
                    )))
                }
                // No stdin to read (closed): no options, as when containerd sends none.
                Err(_) => Vec::new(),
            }
        };
        let (pid, address) = containerd_shim::spawn(opts, &group, Vec::new())?;
        write_address(&address)?;
        if !raw_options.is_empty() {
            let _ = std::fs::write(bundle.join(SAVED_OPTIONS), &raw_options);
            if let Ok(o) = options::decode_any(&raw_options) {
                if !o.shim_cgroup.is_empty() {
                    // Nothing may be printed here: containerd reads stdout for the address.
                    let _ = join_cgroup(&o.shim_cgroup, pid);
                }
            }
        }
        let _ = containerd_shim::cgroup::adjust_oom_score(pid);
        // Answer and exit here rather than returning to the framework: containerd-shim 0.11 drops
        // its signal-hook iterator after `start`, and a SIGPIPE arriving then (containerd gave up
        // on a slow start and closed the pipe) makes the handler write to the closed self-pipe,
        // which raises SIGPIPE again: a `start` process spinning forever (seen under load in CI).
        finish(|out| out.write_all(address.as_bytes()))
    }

    fn delete_shim(&mut self) -> containerd_shim::Result<DeleteResponse> {
        let bundle = std::env::current_dir().unwrap_or_default();
        let opts = match read_file_at_most(&bundle.join(SAVED_OPTIONS), MAX_OPTIONS_BYTES) {
            Ok(b) => options::decode_any(&b).unwrap_or_default(),
            Err(e) => {
                if e.kind() != std::io::ErrorKind::NotFound {
                    log::warn!("runtime options: {e}; runc's defaults are used");
                }
                Default::default()
            }
        };
        reaper::global();
        match crate::runc::client(&opts, &self.namespace, &bundle) {
            Ok(runc) => {
                if let Err(e) = runc.delete(&self.id, Some(&DeleteOpts::new().force(true))) {
                    log::warn!("runc delete {}: {e}", self.id);
                }
            }
            Err(e) => log::warn!("runc: {e}"),
        }
        mount::unmount(&bundle.join("rootfs"));
        // The dead shim could not remove its socket; remove it when nothing answers on it any more
        // (a pod's shim may still serve other containers through the same socket).
        match read_file_at_most(&bundle.join("address"), MAX_ADDRESS_BYTES) {
            Ok(address) => {
                let address = String::from_utf8_lossy(&address);
                let path = socket_path(address.trim());
                if is_socket(&path) && std::os::unix::net::UnixStream::connect(&path).is_err() {
                    let _ = std::fs::remove_file(&path);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::FileTooLarge => {
                log::warn!("the shim's socket is left in place: {e}");
            }
            Err(_) => {}
        }
        let response = DeleteResponse {
            pid: 0,
            exit_status: 128 + 9,
            exited_at: Some(timestamp(SystemTime::now())).into(),
            ..Default::default()
        };
        // As in `start_shim`: answer and exit before the framework tears its signal handling down.
        finish(|out| {
            use containerd_shim::protos::protobuf::Message;
            response.write_to_writer(out).map_err(std::io::Error::other)
        })
    }

    fn wait(&mut self) {
        self.exit.wait();
        // The server stops after this returns and waits for its handler threads; a request still
        // blocked on a container that is gone (a Wait whose client went away) must not keep the
        // shim alive once containerd asked it to shut down.
        std::thread::spawn(|| {
            std::thread::sleep(std::time::Duration::from_secs(2));
            std::process::exit(0);
        });
        // containerd 1.6 removes the bundle (and with it the `address` file the framework reads)
        // as soon as Shutdown returns, so the socket is removed here, from what we know ourselves.
        let path = socket_path(&self.socket);
        if is_socket(&path) {
            let _ = std::fs::remove_file(&path);
        }
    }

    fn create_task_service(&self, publisher: RemotePublisher) -> TaskService {
        reaper::global();
        let events = Events::start(publisher, self.namespace.clone());
        let gate: Arc<dyn Gate> = Arc::new(crate::gate::ProcessGate);
        TaskService::new(
            &self.namespace,
            &self.address,
            events,
            Arc::clone(&self.exit),
            gate,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_containers_group_by_sandbox_id() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"annotations":{"io.kubernetes.cri.sandbox-id":"pod123"}}"#,
        )
        .unwrap();
        assert_eq!(grouping(dir.path(), "c1").unwrap(), "pod123");
        std::fs::write(dir.path().join("config.json"), r#"{"annotations":null}"#).unwrap();
        assert_eq!(grouping(dir.path(), "c1").unwrap(), "c1");
        assert_eq!(grouping(Path::new("/nonexistent"), "c2").unwrap(), "c2");
    }

    #[test]
    fn a_spec_over_the_bound_is_refused_with_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let f = File::create(&path).unwrap();
        f.set_len(MAX_SPEC_BYTES + 1).unwrap();
        let e = grouping(dir.path(), "c1").unwrap_err();
        assert_eq!(
            e,
            format!("{} is larger than {MAX_SPEC_BYTES} bytes", path.display())
        );
    }

    #[test]
    fn reads_stop_at_their_bound() {
        let exact = read_at_most(&[7u8; 10][..], 10, "x").unwrap();
        assert_eq!(exact.len(), 10);
        let e = read_at_most(std::io::repeat(1), 10, "stdin").unwrap_err();
        assert_eq!(e.to_string(), "stdin is larger than 10 bytes");
        // A FIFO where a file should be is read without waiting for a writer.
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("address");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert!(read_file_at_most(&fifo, MAX_ADDRESS_BYTES)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn socket_address_becomes_a_path() {
        assert_eq!(
            socket_path("unix:///run/containerd/s/abc"),
            PathBuf::from("/run/containerd/s/abc")
        );
    }
}
