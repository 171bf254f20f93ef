//! The containerd task API (v2) over ttrpc: request in, container operation, response out.
//! Create is where the gate sits: after the rootfs is mounted, before `runc create`.

use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use containerd_shim::{
    api::{
        CloseIORequest, ConnectRequest, ConnectResponse, CreateTaskRequest, CreateTaskResponse,
        DeleteRequest, DeleteResponse, Empty, ExecProcessRequest, KillRequest, PauseRequest,
        PidsRequest, PidsResponse, ResizePtyRequest, ResumeRequest, ShutdownRequest, StartRequest,
        StartResponse, StateRequest, StateResponse, StatsRequest, StatsResponse, UpdateTaskRequest,
        WaitRequest, WaitResponse,
    },
    protos::{
        events::task::{TaskCreate, TaskDelete, TaskExecAdded, TaskIO, TaskPaused, TaskResumed},
        protobuf::{well_known_types::any::Any, Message},
        shim::oci::ProcessDetails,
        topics::{
            TASK_CREATE_EVENT_TOPIC, TASK_DELETE_EVENT_TOPIC, TASK_EXEC_ADDED_EVENT_TOPIC,
            TASK_PAUSED_EVENT_TOPIC, TASK_RESUMED_EVENT_TOPIC,
        },
        types::task::ProcessInfo,
    },
    ExitSignal, Task, TtrpcContext, TtrpcResult,
};
use vouch_verifier::{ExecRequest, Gate, GateRequest, RootfsMount, Verdict};

use crate::{
    container::{Container, CreateParams},
    error::Error,
    events::Events,
    io::StdioSpec,
    mount,
    options::{self, RuntimeOptions},
    process::timestamp,
    reaper::lock,
};

pub struct TaskService {
    containers: Mutex<HashMap<String, Arc<Container>>>,
    events: Events,
    namespace: String,
    /// containerd's gRPC socket, for the gate's image lookups.
    address: String,
    exit: Arc<ExitSignal>,
    gate: Arc<dyn Gate>,
}

impl TaskService {
    pub fn new(
        namespace: &str,
        address: &str,
        events: Events,
        exit: Arc<ExitSignal>,
        gate: Arc<dyn Gate>,
    ) -> Self {
        TaskService {
            containers: Mutex::new(HashMap::new()),
            events,
            namespace: namespace.to_string(),
            address: address.to_string(),
            exit,
            gate,
        }
    }

    fn container(&self, id: &str) -> Result<Arc<Container>, Error> {
        lock(&self.containers)
            .get(id)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("container {id} does not exist")))
    }

    fn do_create(&self, req: &CreateTaskRequest) -> Result<u32, Error> {
        if req.id.is_empty() || req.bundle.is_empty() {
            return Err(Error::InvalidArgument(
                "create needs an id and a bundle".into(),
            ));
        }
        if !req.checkpoint.is_empty() {
            return Err(Error::Unimplemented(
                "restoring from a checkpoint is not supported".into(),
            ));
        }
        if lock(&self.containers).contains_key(&req.id) {
            return Err(Error::AlreadyExists(format!(
                "container {} already exists",
                req.id
            )));
        }
        log::debug!(
            "create {}: runtime options of type {:?}",
            req.id,
            req.options
                .as_ref()
                .map(|a| a.type_url.as_str())
                .unwrap_or("")
        );
        let opts = match req.options.as_ref() {
            Some(any) => options::decode(&any.type_url, &any.value)
                .map_err(|e| Error::InvalidArgument(e.to_string()))?,
            None => RuntimeOptions::default(),
        };
        let bundle = PathBuf::from(&req.bundle);
        let (text, spec) = read_spec(&bundle)?;
        let rootfs = mount::mount_rootfs(&req.rootfs, &bundle).map_err(Error::Internal)?;
        // From here on, every way out unmounts what was mounted.
        let result = self.gate_then_create(req, &bundle, (&text, &spec), opts, rootfs.clone());
        if result.is_err() {
            if let Some(r) = &rootfs {
                mount::unmount(r);
            }
        }
        result
    }

    fn gate_then_create(
        &self,
        req: &CreateTaskRequest,
        bundle: &Path,
        (text, spec): (&str, &serde_json::Value),
        opts: RuntimeOptions,
        rootfs: Option<PathBuf>,
    ) -> Result<u32, Error> {
        let annotations: BTreeMap<String, String> = spec
            .get("annotations")
            .and_then(|a| a.as_object())
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        let request = GateRequest {
            container_id: req.id.clone(),
            bundle: bundle.to_path_buf(),
            spec: spec.clone(),
            spec_text: Some(text.to_string()),
            annotations,
            rootfs: req
                .rootfs
                .iter()
                .map(|m| RootfsMount {
                    fs_type: m.type_.clone(),
                    source: m.source.clone(),
                    target: m.target.clone(),
                    options: m.options.clone(),
                })
                .collect(),
            containerd_address: self.address.clone(),
            namespace: self.namespace.clone(),
            config_path: opts.config_path.clone(),
            image: None,
            runtime_binary: Some(if opts.binary_name.is_empty() {
                "runc".to_string()
            } else {
                opts.binary_name.clone()
            }),
            shim_binary: std::fs::read_link("/proc/self/exe").ok(),
            pod_namespace: None,
            exec: None,
            refused_after_create: None,
        };
        let pins = match self.gate.admit(&request) {
            Verdict::Deny(denial) => {
                let line = denial.to_string();
                log::warn!("{line} (container {})", req.id);
                return Err(Error::FailedPrecondition(line));
            }
            Verdict::Allow(evidence) => {
                for line in &evidence.audited {
                    log::warn!(
                        "audit: {line} (container {}; allowed by audit mode)",
                        req.id
                    );
                }
                let subject = evidence
                    .image
                    .as_ref()
                    .map(|i| i.subject())
                    .unwrap_or_else(|| "(no image)".into());
                match &evidence.exempt {
                    Some(why) => log::info!(
                        "vouch: allowed {subject}: exempt ({why}) (container {})",
                        req.id
                    ),
                    None => log::info!(
                        "vouch: allowed {subject} by {:?} (container {})",
                        evidence.rules,
                        req.id
                    ),
                }
                evidence.pins
            }
        };
        if let Some(line) = vouch_verifier::identity::spec::changed_since_judged(bundle, text) {
            log::warn!("{line} (container {})", req.id);
            return Err(Error::FailedPrecondition(line));
        }
        // Between the gate's look and runc's, a path the gate judged may have come to lead
        // elsewhere: the created container is compared with what was judged before it runs, and
        // a refusal there is recorded like any other.
        let vet = |pid: u32| -> Result<(), Error> {
            let Some(pins) = &pins else { return Ok(()) };
            let differences = vouch_verifier::spec::pins::check_created(pins, pid);
            if differences.is_empty() {
                return Ok(());
            }
            let refusal = GateRequest {
                refused_after_create: Some(differences.join("; ")),
                ..request.clone()
            };
            let line = match self.gate.admit(&refusal) {
                Verdict::Deny(denial) => denial.to_string(),
                Verdict::Allow(_) => format!(
                    "vouch: denied container {}: {} (rule \"spec\")",
                    req.id,
                    differences.join("; ")
                ),
            };
            log::warn!("{line} (container {})", req.id);
            Err(Error::FailedPrecondition(line))
        };
        let stdio = StdioSpec {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        let container = Container::create(
            CreateParams {
                id: &req.id,
                bundle,
                namespace: &self.namespace,
                stdio,
                opts,
                spec,
                rootfs,
                vet: &vet,
            },
            self.events.clone(),
        )?;
        let pid = container.init.pid();
        lock(&self.containers).insert(req.id.clone(), container);
        let ev = TaskCreate {
            container_id: req.id.clone(),
            bundle: req.bundle.clone(),
            rootfs: req.rootfs.clone(),
            io: Some(TaskIO {
                stdin: req.stdin.clone(),
                stdout: req.stdout.clone(),
                stderr: req.stderr.clone(),
                terminal: req.terminal,
                ..Default::default()
            })
            .into(),
            pid,
            ..Default::default()
        };
        self.events.send(TASK_CREATE_EVENT_TOPIC, Box::new(ev));
        Ok(pid)
    }
}

impl TaskService {
    /// Asks the gate whether `process` (the exec's spec bytes, as runc will get them) may run in
    /// container `c`; a refusal is `FAILED_PRECONDITION` with the denial line.
    fn gate_exec(&self, c: &Container, exec_id: &str, process: &[u8]) -> Result<(), Error> {
        let process_text = std::str::from_utf8(process)
            .map_err(|e| Error::InvalidArgument(format!("exec process spec is not UTF-8: {e}")))?;
        let (text, spec) = read_spec(&c.bundle)?;
        let request = GateRequest {
            container_id: c.id.clone(),
            bundle: c.bundle.clone(),
            spec,
            spec_text: Some(text),
            containerd_address: self.address.clone(),
            namespace: self.namespace.clone(),
            config_path: c.config_path(),
            exec: Some(ExecRequest {
                id: exec_id.to_string(),
                process_text: process_text.to_string(),
            }),
            ..GateRequest::default()
        };
        match self.gate.admit(&request) {
            Verdict::Deny(denial) => {
                let line = denial.to_string();
                log::warn!("{line} (container {}, exec {exec_id})", c.id);
                Err(Error::FailedPrecondition(line))
            }
            Verdict::Allow(evidence) => {
                for line in &evidence.audited {
                    log::warn!(
                        "audit: {line} (container {}, exec {exec_id}; allowed by audit mode)",
                        c.id
                    );
                }
                Ok(())
            }
        }
    }
}

/// Reads the bundle's `config.json` once, bounded in size (it is input from outside): the text the
/// gate judges and runc is handed, and its parse.
fn read_spec(bundle: &Path) -> Result<(String, serde_json::Value), Error> {
    use std::io::Read;
    let path = bundle.join("config.json");
    let limit = vouch_verifier::identity::spec::MAX_SPEC_BYTES;
    let mut bytes = Vec::new();
    std::fs::File::open(&path)
        .and_then(|f| f.take(limit as u64 + 1).read_to_end(&mut bytes))
        .map_err(|e| Error::InvalidArgument(format!("{}: {e}", path.display())))?;
    if bytes.len() > limit {
        return Err(Error::InvalidArgument(format!(
            "{} is larger than {limit} bytes",
            path.display()
        )));
    }
    let text = String::from_utf8(bytes)
        .map_err(|e| Error::InvalidArgument(format!("{}: {e}", path.display())))?;
    let spec = serde_json::from_str(&text)
        .map_err(|e| Error::InvalidArgument(format!("{}: {e}", path.display())))?;
    Ok((text, spec))
}

impl Task for TaskService {
    fn create(
        &self,
        _ctx: &TtrpcContext,
        req: CreateTaskRequest,
    ) -> TtrpcResult<CreateTaskResponse> {
        let pid = self.do_create(&req)?;
        Ok(CreateTaskResponse {
            pid,
            ..Default::default()
        })
    }

    fn start(&self, _ctx: &TtrpcContext, req: StartRequest) -> TtrpcResult<StartResponse> {
        let c = self.container(&req.id)?;
        let pid = c.start(&req.exec_id)?;
        Ok(StartResponse {
            pid,
            ..Default::default()
        })
    }

    fn state(&self, _ctx: &TtrpcContext, req: StateRequest) -> TtrpcResult<StateResponse> {
        let c = self.container(&req.id)?;
        let p = c.process(&req.exec_id)?;
        let (pid, state, exit) = {
            let st = lock(&p.inner);
            (st.pid, st.state, st.exit)
        };
        let mut resp = StateResponse {
            id: if req.exec_id.is_empty() {
                c.id.clone()
            } else {
                req.exec_id.clone()
            },
            bundle: c.bundle.to_string_lossy().into_owned(),
            pid,
            stdin: p.stdio.stdin.clone(),
            stdout: p.stdio.stdout.clone(),
            stderr: p.stdio.stderr.clone(),
            terminal: p.stdio.terminal,
            exec_id: req.exec_id.clone(),
            ..Default::default()
        };
        resp.status = state.status().into();
        if let Some(e) = exit {
            resp.exit_status = e.code;
            resp.exited_at = Some(timestamp(e.at)).into();
        }
        Ok(resp)
    }

    fn wait(&self, _ctx: &TtrpcContext, req: WaitRequest) -> TtrpcResult<WaitResponse> {
        let c = self.container(&req.id)?;
        let p = c.process(&req.exec_id)?;
        drop(c);
        let exit = p.wait();
        Ok(WaitResponse {
            exit_status: exit.code,
            exited_at: Some(timestamp(exit.at)).into(),
            ..Default::default()
        })
    }

    fn kill(&self, _ctx: &TtrpcContext, req: KillRequest) -> TtrpcResult<Empty> {
        let c = self.container(&req.id)?;
        c.kill(&req.exec_id, req.signal, req.all)?;
        Ok(Empty::new())
    }

    fn delete(&self, _ctx: &TtrpcContext, req: DeleteRequest) -> TtrpcResult<DeleteResponse> {
        let c = self.container(&req.id)?;
        let (pid, exit) = if req.exec_id.is_empty() {
            let r = c.delete()?;
            lock(&self.containers).remove(&req.id);
            let ev = TaskDelete {
                container_id: c.id.clone(),
                id: c.id.clone(),
                pid: r.0,
                exit_status: r.1.map(|e| e.code).unwrap_or(0),
                exited_at: r.1.map(|e| timestamp(e.at)).into(),
                ..Default::default()
            };
            self.events.send(TASK_DELETE_EVENT_TOPIC, Box::new(ev));
            r
        } else {
            c.delete_exec(&req.exec_id)?
        };
        Ok(DeleteResponse {
            pid,
            exit_status: exit.map(|e| e.code).unwrap_or(0),
            exited_at: exit.map(|e| timestamp(e.at)).into(),
            ..Default::default()
        })
    }

    fn pids(&self, _ctx: &TtrpcContext, req: PidsRequest) -> TtrpcResult<PidsResponse> {
        let c = self.container(&req.id)?;
        let mut resp = PidsResponse::new();
        for (pid, exec_id) in c.pids()? {
            let mut info = ProcessInfo {
                pid,
                ..Default::default()
            };
            if !exec_id.is_empty() {
                let details = ProcessDetails {
                    exec_id,
                    ..Default::default()
                };
                if let Ok(value) = details.write_to_bytes() {
                    info.info = Some(Any {
                        type_url: "containerd.runc.v1.ProcessDetails".into(),
                        value,
                        ..Default::default()
                    })
                    .into();
                }
            }
            resp.processes.push(info);
        }
        Ok(resp)
    }

    fn pause(&self, _ctx: &TtrpcContext, req: PauseRequest) -> TtrpcResult<Empty> {
        let c = self.container(&req.id)?;
        c.pause()?;
        let ev = TaskPaused {
            container_id: c.id.clone(),
            ..Default::default()
        };
        self.events.send(TASK_PAUSED_EVENT_TOPIC, Box::new(ev));
        Ok(Empty::new())
    }

    fn resume(&self, _ctx: &TtrpcContext, req: ResumeRequest) -> TtrpcResult<Empty> {
        let c = self.container(&req.id)?;
        c.resume()?;
        let ev = TaskResumed {
            container_id: c.id.clone(),
            ..Default::default()
        };
        self.events.send(TASK_RESUMED_EVENT_TOPIC, Box::new(ev));
        Ok(Empty::new())
    }

    fn exec(&self, _ctx: &TtrpcContext, req: ExecProcessRequest) -> TtrpcResult<Empty> {
        let c = self.container(&req.id)?;
        if req.exec_id.is_empty() {
            return Err(Error::InvalidArgument("exec needs an exec id".into()).into());
        }
        let spec = req
            .spec
            .as_ref()
            .map(|a| a.value.clone())
            .ok_or_else(|| Error::InvalidArgument("exec needs a process spec".into()))?;
        serde_json::from_slice::<serde_json::Value>(&spec)
            .map_err(|e| Error::InvalidArgument(format!("exec process spec is not JSON: {e}")))?;
        self.gate_exec(&c, &req.exec_id, &spec)?;
        c.add_exec(
            &req.exec_id,
            StdioSpec {
                stdin: req.stdin.clone(),
                stdout: req.stdout.clone(),
                stderr: req.stderr.clone(),
                terminal: req.terminal,
            },
            spec,
        )?;
        let ev = TaskExecAdded {
            container_id: c.id.clone(),
            exec_id: req.exec_id.clone(),
            ..Default::default()
        };
        self.events.send(TASK_EXEC_ADDED_EVENT_TOPIC, Box::new(ev));
        Ok(Empty::new())
    }

    fn resize_pty(&self, _ctx: &TtrpcContext, req: ResizePtyRequest) -> TtrpcResult<Empty> {
        let c = self.container(&req.id)?;
        let p = c.process(&req.exec_id)?;
        let st = lock(&p.inner);
        match st.io.as_ref() {
            Some(pio) => pio
                .resize(req.width, req.height)
                .map_err(|e| Error::FailedPrecondition(format!("resize: {e}")))?,
            None => {
                return Err(Error::FailedPrecondition("the process has no terminal".into()).into())
            }
        }
        Ok(Empty::new())
    }

    fn close_io(&self, _ctx: &TtrpcContext, req: CloseIORequest) -> TtrpcResult<Empty> {
        let c = self.container(&req.id)?;
        let p = c.process(&req.exec_id)?;
        if req.stdin {
            if let Some(pio) = lock(&p.inner).io.as_ref() {
                pio.close_stdin();
            }
        }
        Ok(Empty::new())
    }

    fn update(&self, _ctx: &TtrpcContext, req: UpdateTaskRequest) -> TtrpcResult<Empty> {
        let c = self.container(&req.id)?;
        let resources = req
            .resources
            .as_ref()
            .ok_or_else(|| Error::InvalidArgument("update needs resources".into()))?;
        c.update(&resources.value)?;
        Ok(Empty::new())
    }

    fn stats(&self, _ctx: &TtrpcContext, req: StatsRequest) -> TtrpcResult<StatsResponse> {
        let c = self.container(&req.id)?;
        let data = c.stats()?;
        let any = crate::metrics::to_any(&data).map_err(Error::Internal)?;
        Ok(StatsResponse {
            stats: Some(any).into(),
            ..Default::default()
        })
    }

    fn connect(&self, _ctx: &TtrpcContext, req: ConnectRequest) -> TtrpcResult<ConnectResponse> {
        let task_pid = lock(&self.containers)
            .get(&req.id)
            .map(|c| c.init.pid())
            .unwrap_or(0);
        Ok(ConnectResponse {
            shim_pid: std::process::id(),
            task_pid,
            version: env!("CARGO_PKG_VERSION").to_string(),
            ..Default::default()
        })
    }

    fn shutdown(&self, _ctx: &TtrpcContext, req: ShutdownRequest) -> TtrpcResult<Empty> {
        let remaining = lock(&self.containers).len();
        if remaining > 0 && !req.now {
            return Ok(Empty::new());
        }
        if req.now {
            for c in lock(&self.containers).values() {
                c.unmount();
            }
        }
        self.exit.signal();
        Ok(Empty::new())
    }

    fn checkpoint(
        &self,
        _ctx: &TtrpcContext,
        _req: containerd_shim::api::CheckpointTaskRequest,
    ) -> TtrpcResult<Empty> {
        Err(Error::Unimplemented("checkpoint is not supported by the vouch shim".into()).into())
    }
}
