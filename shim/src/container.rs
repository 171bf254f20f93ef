//! One container: its runc state, its init process and its exec processes.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    thread,
    time::{Duration, Instant},
};

use containerd_shim::protos::{
    events::task::{TaskExit, TaskOOM},
    topics::{TASK_EXIT_EVENT_TOPIC, TASK_OOM_EVENT_TOPIC},
};
use runc::{
    options::{CreateOpts, DeleteOpts, KillOpts},
    Runc,
};

use crate::{
    error::{Error, Result},
    events::Events,
    io::{self, ConsoleSocket, StdioSpec},
    mount,
    options::RuntimeOptions,
    process::{timestamp, Exit, Process, State},
    reaper::{self, lock},
    runc::{self as runc_cmd, RawRunc},
};

/// How long Delete waits for a process's output to drain, as containerd's Go shim does.
const DRAIN_LIMIT: Duration = Duration::from_secs(2);

pub struct Container {
    pub id: String,
    pub bundle: PathBuf,
    runc: Runc,
    raw: RawRunc,
    opts: RuntimeOptions,
    pub init: Arc<Process>,
    execs: Mutex<HashMap<String, Arc<Process>>>,
    rootfs: Mutex<Option<PathBuf>>,
    /// The container has no PID namespace of its own: when init exits, its other processes must be
    /// killed explicitly (the kernel will not do it).
    shares_pid_ns: bool,
    exec_seq: AtomicU64,
    events: Events,
}

impl Container {
    /// The runtime option `ConfigPath` the container was created with.
    pub fn config_path(&self) -> Option<PathBuf> {
        self.opts.config_path.clone()
    }
}

pub struct CreateParams<'a> {
    pub id: &'a str,
    pub bundle: &'a Path,
    pub namespace: &'a str,
    pub stdio: StdioSpec,
    pub opts: RuntimeOptions,
    pub spec: &'a serde_json::Value,
    /// What the shim mounted at `<bundle>/rootfs`, to unmount on delete.
    pub rootfs: Option<PathBuf>,
    /// Looks at the created container (its init's pid) before anything else happens to it; an
    /// error deletes it again (the gate's comparison with what it judged).
    pub vet: &'a dyn Fn(u32) -> Result<()>,
}

fn shares_pid_namespace(spec: &serde_json::Value) -> bool {
    let own = spec
        .pointer("/linux/namespaces")
        .and_then(|v| v.as_array())
        .map(|nss| {
            nss.iter().any(|ns| {
                ns.get("type").and_then(|t| t.as_str()) == Some("pid")
                    && ns
                        .get("path")
                        .and_then(|p| p.as_str())
                        .unwrap_or("")
                        .is_empty()
            })
        })
        .unwrap_or(false);
    !own
}

fn read_pid(path: &Path) -> Result<u32> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Internal(format!("cannot read pid file {}: {e}", path.display())))?;
    text.trim()
        .parse::<u32>()
        .map_err(|_| Error::Internal(format!("bad pid file {}", path.display())))
}

impl Container {
    /// `runc create`, with stdio wired and the init process watched. On failure nothing of it is
    /// left: runc state is deleted (the caller unmounts the rootfs).
    pub fn create(p: CreateParams<'_>, events: Events) -> Result<Arc<Container>> {
        let runc = runc_cmd::client(&p.opts, p.namespace, p.bundle)
            .map_err(|e| Error::Internal(format!("cannot find runc: {e}")))?;
        let raw = RawRunc::new(&p.opts, p.namespace, p.bundle);
        let pid_file = p.bundle.join("init.pid");
        let mut create = CreateOpts::new()
            .pid_file(&pid_file)
            .no_pivot(p.opts.no_pivot_root)
            .no_new_keyring(p.opts.no_new_keyring);
        let mut console = None;
        let mut pending = None;
        if p.stdio.terminal {
            let sock = ConsoleSocket::new()
                .map_err(|e| Error::Internal(format!("console socket: {e}")))?;
            create = create.console_socket(sock.path());
            let null =
                runc::io::NullIo::new().map_err(|e| Error::Internal(format!("stdio: {e}")))?;
            create = create.io(Arc::new(null));
            console = Some(sock);
        } else {
            let (piped, copy) = io::pipes(&p.stdio, p.opts.io_uid, p.opts.io_gid)
                .map_err(|e| Error::Internal(format!("stdio: {e}")))?;
            create = create.io(piped);
            pending = Some(copy);
        }
        let since = Instant::now();
        if let Err(e) = runc.create(p.id, p.bundle, Some(&create)) {
            let msg = runc_cmd::describe_error(p.bundle, &e);
            let _ = runc.delete(p.id, Some(&DeleteOpts::new().force(true)));
            return Err(Error::Internal(format!("OCI runtime create failed: {msg}")));
        }
        let cleanup = |err: Error| {
            let _ = runc.delete(p.id, Some(&DeleteOpts::new().force(true)));
            err
        };
        let pid = read_pid(&pid_file).map_err(cleanup)?;
        (p.vet)(pid).map_err(cleanup)?;
        let pending = match console {
            Some(sock) => Some(
                sock.receive(&p.stdio)
                    .map_err(|e| cleanup(Error::Internal(format!("console: {e}"))))?,
            ),
            None => pending,
        };
        let pio = match pending {
            Some(pc) => Some(
                pc.start()
                    .map_err(|e| cleanup(Error::Internal(format!("stdio: {e}"))))?,
            ),
            None => None,
        };
        let init = Arc::new(Process::new("", p.stdio.clone(), pid, None));
        lock(&init.inner).io = pio;
        let container = Arc::new(Container {
            id: p.id.to_string(),
            bundle: p.bundle.to_path_buf(),
            runc,
            raw,
            opts: p.opts.clone(),
            init: Arc::clone(&init),
            execs: Mutex::new(HashMap::new()),
            rootfs: Mutex::new(p.rootfs),
            shares_pid_ns: shares_pid_namespace(p.spec),
            exec_seq: AtomicU64::new(0),
            events: events.clone(),
        });
        let weak = Arc::downgrade(&container);
        reaper::global().watch(
            pid as i32,
            since,
            Box::new(move |code| {
                if let Some(c) = weak.upgrade() {
                    c.on_exit(&c.init, code);
                }
            }),
        );
        let id = p.id.to_string();
        let oom_events = events;
        if let Err(e) = crate::oom::watch(pid, move || {
            let ev = TaskOOM {
                container_id: id.clone(),
                ..Default::default()
            };
            oom_events.send(TASK_OOM_EVENT_TOPIC, Box::new(ev));
        }) {
            log::warn!("no OOM notifications for {}: {e}", p.id);
        }
        Ok(container)
    }

    /// Runs on the exit-router thread: must not block and must not run runc itself.
    fn on_exit(self: &Arc<Self>, process: &Arc<Process>, code: i32) {
        let announce = process.set_exited(code);
        if announce {
            self.send_exit(process);
        }
        if process.exec_id.is_empty() && self.shares_pid_ns {
            let me = Arc::clone(self);
            thread::spawn(move || {
                let _ = me.runc.kill(&me.id, 9, Some(&KillOpts::new().all(true)));
            });
        }
    }

    fn send_exit(&self, process: &Process) {
        let Some(exit) = process.exit() else { return };
        let ev = TaskExit {
            container_id: self.id.clone(),
            id: if process.exec_id.is_empty() {
                self.id.clone()
            } else {
                process.exec_id.clone()
            },
            pid: process.pid(),
            exit_status: exit.code,
            exited_at: Some(timestamp(exit.at)).into(),
            ..Default::default()
        };
        self.events.send(TASK_EXIT_EVENT_TOPIC, Box::new(ev));
    }

    pub fn process(&self, exec_id: &str) -> Result<Arc<Process>> {
        if exec_id.is_empty() {
            return Ok(Arc::clone(&self.init));
        }
        lock(&self.execs)
            .get(exec_id)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("process {exec_id} does not exist")))
    }

    /// Starts the init process or an exec. Returns its pid.
    pub fn start(self: &Arc<Self>, exec_id: &str) -> Result<u32> {
        let process = self.process(exec_id)?;
        {
            let mut st = lock(&process.inner);
            if st.state != State::Created || st.starting {
                return Err(Error::FailedPrecondition(format!(
                    "process {} cannot be started in state {:?}",
                    if exec_id.is_empty() {
                        &self.id
                    } else {
                        exec_id
                    },
                    st.state
                )));
            }
            st.starting = true;
        }
        let result = if exec_id.is_empty() {
            self.runc
                .start(&self.id)
                .map(|_| ())
                .map_err(|e| Error::Internal(runc_cmd::describe_error(&self.bundle, &e)))
        } else {
            self.start_exec(&process)
        };
        let deferred = {
            let mut st = lock(&process.inner);
            st.starting = false;
            if result.is_ok() && st.exit.is_none() {
                st.state = State::Running;
            }
            std::mem::take(&mut st.exit_deferred)
        };
        if result.is_err() && !exec_id.is_empty() {
            // An exec that never ran: release anyone waiting on it (ctr waits before it starts).
            process.abandon();
        }
        result?;
        let pid = process.pid();
        if exec_id.is_empty() {
            let ev = containerd_shim::protos::events::task::TaskStart {
                container_id: self.id.clone(),
                pid,
                ..Default::default()
            };
            self.events.send(
                containerd_shim::protos::topics::TASK_START_EVENT_TOPIC,
                Box::new(ev),
            );
        } else {
            let ev = containerd_shim::protos::events::task::TaskExecStarted {
                container_id: self.id.clone(),
                exec_id: exec_id.to_string(),
                pid,
                ..Default::default()
            };
            self.events.send(
                containerd_shim::protos::topics::TASK_EXEC_STARTED_EVENT_TOPIC,
                Box::new(ev),
            );
        }
        if deferred {
            self.send_exit(&process);
        }
        Ok(pid)
    }

    fn start_exec(self: &Arc<Self>, process: &Arc<Process>) -> Result<()> {
        let spec = lock(&process.inner)
            .exec_spec
            .take()
            .ok_or_else(|| Error::FailedPrecondition("exec has no process spec".into()))?;
        let seq = self.exec_seq.fetch_add(1, Ordering::Relaxed);
        let spec_file = tempfile::Builder::new()
            .prefix("vouch-exec")
            .suffix(".json")
            .tempfile()
            .map_err(|e| Error::Internal(format!("exec spec: {e}")))?;
        std::fs::write(spec_file.path(), &spec)
            .map_err(|e| Error::Internal(format!("exec spec: {e}")))?;
        let pid_file = self.bundle.join(format!("exec-{seq}.pid"));
        let spec_path = spec_file.path().to_string_lossy().into_owned();
        let pid_path = pid_file.to_string_lossy().into_owned();
        let mut args: Vec<String> = vec![
            "exec".into(),
            "--process".into(),
            spec_path,
            "--detach".into(),
            "--pid-file".into(),
            pid_path,
        ];
        let stdio = &process.stdio;
        let mut console = None;
        let mut pending = None;
        let io_driver: Arc<dyn runc::Io> = if stdio.terminal {
            let sock = ConsoleSocket::new()
                .map_err(|e| Error::Internal(format!("console socket: {e}")))?;
            args.push("--console-socket".into());
            args.push(sock.path().to_string_lossy().into_owned());
            console = Some(sock);
            Arc::new(runc::io::NullIo::new().map_err(|e| Error::Internal(e.to_string()))?)
        } else {
            let (piped, copy) = io::pipes(stdio, self.opts.io_uid, self.opts.io_gid)
                .map_err(|e| Error::Internal(format!("stdio: {e}")))?;
            pending = Some(copy);
            piped
        };
        args.push(self.id.clone());
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let log_offset = runc_cmd::log_len(&self.bundle);
        let since = Instant::now();
        if let Err(e) = self.raw.run(&argv, Some(io_driver.as_ref())) {
            let msg = runc_cmd::logged_error_since(&self.bundle, log_offset).unwrap_or(e);
            let _ = std::fs::remove_file(&pid_file);
            return Err(Error::Internal(format!("OCI runtime exec failed: {msg}")));
        }
        let pid = read_pid(&pid_file);
        let _ = std::fs::remove_file(&pid_file);
        let pid = pid?;
        let pending = match console {
            Some(sock) => Some(
                sock.receive(stdio)
                    .map_err(|e| Error::Internal(format!("console: {e}")))?,
            ),
            None => pending,
        };
        let pio = match pending {
            Some(pc) => Some(pc.start().map_err(|e| Error::Internal(e.to_string()))?),
            None => None,
        };
        {
            let mut st = lock(&process.inner);
            st.pid = pid;
            st.io = pio;
        }
        let weak = Arc::downgrade(self);
        let proc_for_exit = Arc::clone(process);
        reaper::global().watch(
            pid as i32,
            since,
            Box::new(move |code| {
                if let Some(c) = weak.upgrade() {
                    c.on_exit(&proc_for_exit, code);
                } else {
                    proc_for_exit.set_exited(code);
                }
            }),
        );
        Ok(())
    }

    pub fn add_exec(&self, exec_id: &str, stdio: StdioSpec, spec: Vec<u8>) -> Result<()> {
        if self.init.state() == State::Stopped {
            return Err(Error::FailedPrecondition(format!(
                "container {} is not running",
                self.id
            )));
        }
        let mut execs = lock(&self.execs);
        if execs.contains_key(exec_id) {
            return Err(Error::AlreadyExists(format!(
                "exec {exec_id} already exists"
            )));
        }
        execs.insert(
            exec_id.to_string(),
            Arc::new(Process::new(exec_id, stdio, 0, Some(spec))),
        );
        Ok(())
    }

    pub fn kill(&self, exec_id: &str, signal: u32, all: bool) -> Result<()> {
        let process = self.process(exec_id)?;
        let finished = || Error::NotFound("process already finished".into());
        if exec_id.is_empty() {
            if process.exit().is_some() && !all {
                return Err(finished());
            }
            return self
                .runc
                .kill(&self.id, signal, Some(&KillOpts::new().all(all)))
                .map_err(|e| {
                    let msg = runc_cmd::describe_error(&self.bundle, &e);
                    if process.exit().is_some()
                        || msg.contains("not running")
                        || msg.contains("process already finished")
                        || msg.contains("no such process")
                    {
                        finished()
                    } else {
                        Error::Internal(msg)
                    }
                });
        }
        match process.state() {
            State::Stopped => Err(finished()),
            State::Created => Err(Error::FailedPrecondition(format!(
                "exec {exec_id} has not been started"
            ))),
            _ => {
                let sig = nix::sys::signal::Signal::try_from(signal as i32)
                    .map_err(|_| Error::InvalidArgument(format!("invalid signal {signal}")))?;
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(process.pid() as i32), sig)
                    .map_err(|e| {
                        if e == nix::errno::Errno::ESRCH {
                            finished()
                        } else {
                            Error::Internal(format!("kill exec {exec_id}: {e}"))
                        }
                    })
            }
        }
    }

    /// Deletes an exec record. The process must have exited (or never started).
    pub fn delete_exec(&self, exec_id: &str) -> Result<(u32, Option<Exit>)> {
        let process = self.process(exec_id)?;
        if matches!(process.state(), State::Running | State::Paused) {
            return Err(Error::FailedPrecondition(format!(
                "cannot delete running exec {exec_id}"
            )));
        }
        if let Some(mut pio) = lock(&process.inner).io.take() {
            pio.drain(DRAIN_LIMIT);
        }
        process.abandon();
        lock(&self.execs).remove(exec_id);
        Ok((process.pid(), process.exit()))
    }

    /// Deletes the container: runc state, rootfs mount. Init must have exited or never started.
    pub fn delete(&self) -> Result<(u32, Option<Exit>)> {
        let init = &self.init;
        match init.state() {
            State::Running | State::Paused => {
                return Err(Error::FailedPrecondition(format!(
                    "cannot delete running container {}",
                    self.id
                )))
            }
            State::Created => {
                let _ = self
                    .runc
                    .delete(&self.id, Some(&DeleteOpts::new().force(true)));
                // Report the real end of the killed init when it comes in time.
                init.wait_timeout(Duration::from_secs(2));
            }
            State::Stopped => {
                if let Err(e) = self.runc.delete(&self.id, None) {
                    log::warn!("runc delete {}: {e}; forcing", self.id);
                    let _ = self
                        .runc
                        .delete(&self.id, Some(&DeleteOpts::new().force(true)));
                }
            }
        }
        if let Some(mut pio) = lock(&init.inner).io.take() {
            pio.drain(DRAIN_LIMIT);
        }
        for (_, exec) in lock(&self.execs).drain() {
            if let Some(mut pio) = lock(&exec.inner).io.take() {
                pio.drain(Duration::from_millis(100));
            }
            exec.abandon();
        }
        init.abandon();
        self.unmount();
        Ok((init.pid(), init.exit()))
    }

    /// Unmounts the rootfs the shim mounted (idempotent).
    pub fn unmount(&self) {
        if let Some(rootfs) = lock(&self.rootfs).take() {
            mount::unmount(&rootfs);
        }
    }

    pub fn pids(&self) -> Result<Vec<(u32, String)>> {
        let pids = self
            .runc
            .ps(&self.id)
            .map_err(|e| Error::Internal(runc_cmd::describe_error(&self.bundle, &e)))?;
        let execs: HashMap<u32, String> = lock(&self.execs)
            .values()
            .map(|p| (p.pid(), p.exec_id.clone()))
            .collect();
        Ok(pids
            .into_iter()
            .map(|pid| {
                let pid = pid as u32;
                (pid, execs.get(&pid).cloned().unwrap_or_default())
            })
            .collect())
    }

    pub fn pause(&self) -> Result<()> {
        self.runc
            .pause(&self.id)
            .map_err(|e| Error::Internal(runc_cmd::describe_error(&self.bundle, &e)))?;
        let mut st = lock(&self.init.inner);
        if st.state == State::Running {
            st.state = State::Paused;
        }
        Ok(())
    }

    pub fn resume(&self) -> Result<()> {
        self.runc
            .resume(&self.id)
            .map_err(|e| Error::Internal(runc_cmd::describe_error(&self.bundle, &e)))?;
        let mut st = lock(&self.init.inner);
        if st.state == State::Paused {
            st.state = State::Running;
        }
        Ok(())
    }

    /// `runc update` with the resources exactly as containerd sent them (OCI LinuxResources JSON).
    pub fn update(&self, resources_json: &[u8]) -> Result<()> {
        serde_json::from_slice::<serde_json::Value>(resources_json)
            .map_err(|e| Error::InvalidArgument(format!("resources are not JSON: {e}")))?;
        let file = tempfile::Builder::new()
            .prefix("vouch-resources")
            .tempfile()
            .map_err(|e| Error::Internal(e.to_string()))?;
        std::fs::write(file.path(), resources_json).map_err(|e| Error::Internal(e.to_string()))?;
        let path = file.path().to_string_lossy().into_owned();
        self.raw
            .run(&["update", "--resources", &path, &self.id], None)
            .map(|_| ())
            .map_err(Error::Internal)
    }

    /// The `data` object of `runc events --stats`.
    pub fn stats(&self) -> Result<serde_json::Value> {
        let out = self
            .raw
            .run(&["events", "--stats", &self.id], None)
            .map_err(Error::Internal)?;
        let v: serde_json::Value = serde_json::from_str(out.trim())
            .map_err(|e| Error::Internal(format!("runc events: {e}")))?;
        Ok(v.get("data").cloned().unwrap_or(serde_json::Value::Null))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_namespace_sharing_is_read_from_the_spec() {
        let own =
            serde_json::json!({"linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]}});
        let joined = serde_json::json!({"linux": {"namespaces": [{"type": "pid", "path": "/proc/1/ns/pid"}]}});
        let none = serde_json::json!({"linux": {"namespaces": [{"type": "mount"}]}});
        assert!(!shares_pid_namespace(&own));
        assert!(shares_pid_namespace(&joined));
        assert!(shares_pid_namespace(&none));
    }
}
