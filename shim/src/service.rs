//! The shim's own lifecycle: `start` (spawn or reuse the server for a pod), `delete` (clean up after
//! a dead shim), serving, and exiting when the last container is gone.

use std::{
    io::{IsTerminal, Read, Write},
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

/// Reads the bundle's annotations for the grouping key (sandbox id, else the container id).
fn grouping(bundle: &Path, id: &str) -> String {
    std::fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|spec| {
            spec.pointer("/annotations")
                .and_then(|a| a.get(SANDBOX_ID))
                .and_then(|v| v.as_str())
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        })
        .unwrap_or_else(|| id.to_string())
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
        let group = grouping(&bundle, &opts.id);
        let mut raw_options = Vec::new();
        if !std::io::stdin().is_terminal() {
            let _ = std::io::stdin().read_to_end(&mut raw_options);
        }
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
        let opts = std::fs::read(bundle.join(SAVED_OPTIONS))
            .ok()
            .and_then(|b| options::decode_any(&b).ok())
            .unwrap_or_default();
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
        if let Ok(address) = std::fs::read_to_string(bundle.join("address")) {
            let path = socket_path(address.trim());
            if is_socket(&path) && std::os::unix::net::UnixStream::connect(&path).is_err() {
                let _ = std::fs::remove_file(&path);
            }
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
        assert_eq!(grouping(dir.path(), "c1"), "pod123");
        std::fs::write(dir.path().join("config.json"), r#"{"annotations":null}"#).unwrap();
        assert_eq!(grouping(dir.path(), "c1"), "c1");
        assert_eq!(grouping(Path::new("/nonexistent"), "c2"), "c2");
    }

    #[test]
    fn socket_address_becomes_a_path() {
        assert_eq!(
            socket_path("unix:///run/containerd/s/abc"),
            PathBuf::from("/run/containerd/s/abc")
        );
    }
}
