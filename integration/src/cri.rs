//! A blocking CRI client (k8s-cri v1 over containerd's unix socket): the kubelet's side of the
//! RuntimeClass path, without a kubelet.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hyper_util::rt::TokioIo;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{
    ContainerConfig, ContainerMetadata, ContainerState, ContainerStatus, ContainerStatusRequest,
    CreateContainerRequest, ExecSyncRequest, ExecSyncResponse, ImageSpec, LinuxContainerConfig,
    LinuxContainerSecurityContext, LinuxPodSandboxConfig, LinuxSandboxSecurityContext,
    NamespaceMode, NamespaceOption, PodSandboxConfig, PodSandboxMetadata, PullImageRequest,
    RemoveContainerRequest, RemovePodSandboxRequest, RunPodSandboxRequest, StartContainerRequest,
    StopContainerRequest, StopPodSandboxRequest,
};
use tonic::transport::{Channel, Endpoint, Uri};
use tonic::Status;

/// A CRI client with its own (single-threaded) tokio runtime. Every method blocks.
pub struct Cri {
    rt: tokio::runtime::Runtime,
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
    log_root: PathBuf,
    cgroup_parent: String,
    pods: Mutex<HashMap<String, PodSandboxConfig>>,
    next: AtomicUsize,
}

fn internal(e: impl std::fmt::Display) -> Status {
    Status::internal(e.to_string())
}

impl Cri {
    /// Connects to containerd's CRI service on `socket`. Pod log directories are made under
    /// `log_root`; pod cgroups go under `/<cgroup_name>` (so the rig can remove them).
    pub fn connect(socket: &Path, log_root: &Path, cgroup_name: &str) -> Result<Cri> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("tokio runtime")?;
        let path = socket.to_path_buf();
        let channel = rt
            .block_on(async move {
                Endpoint::try_from("http://[::]:50051")?
                    .connect_timeout(Duration::from_secs(5))
                    .connect_with_connector(tower::service_fn(move |_: Uri| {
                        let path = path.clone();
                        async move {
                            Ok::<_, std::io::Error>(TokioIo::new(
                                tokio::net::UnixStream::connect(path).await?,
                            ))
                        }
                    }))
                    .await
            })
            .with_context(|| format!("connect CRI on {}", socket.display()))?;
        Ok(Cri {
            rt,
            runtime: RuntimeServiceClient::new(channel.clone()),
            images: ImageServiceClient::new(channel),
            log_root: log_root.to_path_buf(),
            cgroup_parent: format!("/{cgroup_name}"),
            pods: Mutex::new(HashMap::new()),
            next: AtomicUsize::new(0),
        })
    }

    /// Runs a future on this client's runtime (for calls the helpers do not cover).
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// A clone of the runtime-service client (use with [`Cri::block_on`]).
    pub fn runtime_client(&self) -> RuntimeServiceClient<Channel> {
        self.runtime.clone()
    }

    /// A clone of the image-service client (use with [`Cri::block_on`]).
    pub fn image_client(&self) -> ImageServiceClient<Channel> {
        self.images.clone()
    }

    /// Pulls `image` through CRI; returns the image reference (an id) containerd reports.
    pub fn pull_image(&self, image: &str) -> Result<String, Status> {
        let mut c = self.images.clone();
        let req = PullImageRequest {
            image: Some(ImageSpec {
                image: image.to_string(),
                ..Default::default()
            }),
            ..Default::default()
        };
        Ok(self.rt.block_on(c.pull_image(req))?.into_inner().image_ref)
    }

    /// The pod config [`Cri::run_pod`] would use: host network, its own log directory.
    pub fn pod_config(&self, name: &str, namespace: &str) -> Result<PodSandboxConfig, Status> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let log_dir = self.log_root.join(format!("{name}-{n}"));
        std::fs::create_dir_all(&log_dir).map_err(internal)?;
        Ok(PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: name.to_string(),
                uid: format!("{name}-{}-{n}", self.cgroup_parent.trim_start_matches('/')),
                namespace: namespace.to_string(),
                attempt: 0,
            }),
            log_directory: log_dir.display().to_string(),
            linux: Some(LinuxPodSandboxConfig {
                cgroup_parent: self.cgroup_parent.clone(),
                security_context: Some(LinuxSandboxSecurityContext {
                    namespace_options: Some(NamespaceOption {
                        network: NamespaceMode::Node as i32,
                        pid: NamespaceMode::Container as i32,
                        ipc: NamespaceMode::Pod as i32,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    /// Runs a pod sandbox (host network) with `runtime_handler` (`""` for the default,
    /// `"runc"`, `"vouch"`); returns its id.
    pub fn run_pod(
        &self,
        name: &str,
        namespace: &str,
        runtime_handler: &str,
    ) -> Result<String, Status> {
        let config = self.pod_config(name, namespace)?;
        self.run_pod_with(config, runtime_handler)
    }

    /// Runs a pod sandbox with the given config (see [`Cri::pod_config`]).
    pub fn run_pod_with(
        &self,
        config: PodSandboxConfig,
        runtime_handler: &str,
    ) -> Result<String, Status> {
        let mut c = self.runtime.clone();
        let req = RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: runtime_handler.to_string(),
        };
        let id = self
            .rt
            .block_on(c.run_pod_sandbox(req))?
            .into_inner()
            .pod_sandbox_id;
        if let Ok(mut pods) = self.pods.lock() {
            pods.insert(id.clone(), config);
        }
        Ok(id)
    }

    /// The config a pod this client ran was started with.
    pub fn pod_config_of(&self, pod_id: &str) -> Option<PodSandboxConfig> {
        self.pods.lock().ok()?.get(pod_id).cloned()
    }

    /// The container config [`Cri::create_container`] uses; adjust it and pass it to
    /// [`Cri::create_container_with`] for annotations, environment, security settings.
    pub fn container_config(
        &self,
        name: &str,
        image: &str,
        command: &[&str],
        args: &[&str],
    ) -> ContainerConfig {
        ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: name.to_string(),
                attempt: 0,
            }),
            image: Some(ImageSpec {
                image: image.to_string(),
                ..Default::default()
            }),
            command: command.iter().map(|s| s.to_string()).collect(),
            args: args.iter().map(|s| s.to_string()).collect(),
            log_path: format!("{name}.log"),
            // As the kubelet does for a host-network pod: the node's network, a PID namespace
            // of the container's own (its command is PID 1), the pod's IPC. Without these, CRI
            // puts the container in the sandbox's PID namespace (the pause process is PID 1).
            linux: Some(LinuxContainerConfig {
                security_context: Some(LinuxContainerSecurityContext {
                    namespace_options: Some(NamespaceOption {
                        network: NamespaceMode::Node as i32,
                        pid: NamespaceMode::Container as i32,
                        ipc: NamespaceMode::Pod as i32,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Creates a container in a pod this client ran; returns its id, or the runtime's refusal.
    /// The image must have been pulled through CRI first ([`Cri::pull_image`]): CRI does not
    /// pull on create, and images pulled with `ctr` into another namespace do not count.
    pub fn create_container(
        &self,
        pod_id: &str,
        name: &str,
        image: &str,
        command: &[&str],
        args: &[&str],
    ) -> Result<String, Status> {
        self.create_container_with(pod_id, self.container_config(name, image, command, args))
    }

    /// Creates a container from a full config in a pod this client ran.
    pub fn create_container_with(
        &self,
        pod_id: &str,
        config: ContainerConfig,
    ) -> Result<String, Status> {
        let sandbox_config = self
            .pod_config_of(pod_id)
            .ok_or_else(|| Status::not_found(format!("pod {pod_id} was not run by this client")))?;
        let mut c = self.runtime.clone();
        let req = CreateContainerRequest {
            pod_sandbox_id: pod_id.to_string(),
            config: Some(config),
            sandbox_config: Some(sandbox_config),
        };
        Ok(self
            .rt
            .block_on(c.create_container(req))?
            .into_inner()
            .container_id)
    }

    /// Starts a created container.
    pub fn start_container(&self, id: &str) -> Result<(), Status> {
        let mut c = self.runtime.clone();
        self.rt.block_on(c.start_container(StartContainerRequest {
            container_id: id.to_string(),
        }))?;
        Ok(())
    }

    /// The status of a container (state: [`ContainerState`] as i32, exit code, log path...).
    pub fn container_status(&self, id: &str) -> Result<ContainerStatus, Status> {
        let mut c = self.runtime.clone();
        let resp = self
            .rt
            .block_on(c.container_status(ContainerStatusRequest {
                container_id: id.to_string(),
                verbose: false,
            }))?;
        resp.into_inner()
            .status
            .ok_or_else(|| Status::internal("ContainerStatus without a status"))
    }

    /// Polls until the container has exited; returns its final status.
    pub fn wait_exited(&self, id: &str, timeout: Duration) -> Result<ContainerStatus, Status> {
        let deadline = Instant::now() + timeout;
        loop {
            let st = self.container_status(id)?;
            if st.state == ContainerState::ContainerExited as i32 {
                return Ok(st);
            }
            if Instant::now() > deadline {
                return Err(Status::deadline_exceeded(format!(
                    "container {id} still in state {:?} after {timeout:?}",
                    ContainerState::try_from(st.state)
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The container's log as containerd wrote it (CRI log format; see [`cri_log_text`]).
    pub fn container_log_raw(&self, id: &str) -> Result<String, Status> {
        let st = self.container_status(id)?;
        std::fs::read(&st.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|e| internal(format!("read {}: {e}", st.log_path)))
    }

    /// The container's output (stdout and stderr interleaved), without the CRI log prefixes.
    pub fn container_log(&self, id: &str) -> Result<String, Status> {
        Ok(cri_log_text(&self.container_log_raw(id)?))
    }

    /// Runs `cmd` in a running container; fails only if the call does (check `exit_code`).
    pub fn exec_sync(
        &self,
        id: &str,
        cmd: &[&str],
        timeout: Duration,
    ) -> Result<ExecSyncResponse, Status> {
        let mut c = self.runtime.clone();
        let req = ExecSyncRequest {
            container_id: id.to_string(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: timeout.as_secs().max(1) as i64,
        };
        Ok(self.rt.block_on(c.exec_sync(req))?.into_inner())
    }

    /// Stops a container (SIGTERM, SIGKILL after `timeout`).
    pub fn stop_container(&self, id: &str, timeout: Duration) -> Result<(), Status> {
        let mut c = self.runtime.clone();
        self.rt.block_on(c.stop_container(StopContainerRequest {
            container_id: id.to_string(),
            timeout: timeout.as_secs() as i64,
        }))?;
        Ok(())
    }

    /// Removes a container (stopping it if needed).
    pub fn remove_container(&self, id: &str) -> Result<(), Status> {
        let mut c = self.runtime.clone();
        self.rt
            .block_on(c.remove_container(RemoveContainerRequest {
                container_id: id.to_string(),
            }))?;
        Ok(())
    }

    /// Stops a pod sandbox and its containers.
    pub fn stop_pod(&self, pod_id: &str) -> Result<(), Status> {
        let mut c = self.runtime.clone();
        self.rt.block_on(c.stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: pod_id.to_string(),
        }))?;
        Ok(())
    }

    /// Removes a (stopped) pod sandbox.
    pub fn remove_pod(&self, pod_id: &str) -> Result<(), Status> {
        let mut c = self.runtime.clone();
        self.rt
            .block_on(c.remove_pod_sandbox(RemovePodSandboxRequest {
                pod_sandbox_id: pod_id.to_string(),
            }))?;
        if let Ok(mut pods) = self.pods.lock() {
            pods.remove(pod_id);
        }
        Ok(())
    }
}

/// Strips the CRI log prefix (`<RFC3339 time> <stream> <P|F> `) from each line and joins
/// partial (`P`) lines with what follows them.
pub fn cri_log_text(raw: &str) -> String {
    let mut out = String::new();
    for line in raw.lines() {
        let mut parts = line.splitn(4, ' ');
        let (_time, _stream, tag, msg) = (parts.next(), parts.next(), parts.next(), parts.next());
        match (tag, msg) {
            (Some("P"), Some(m)) => out.push_str(m),
            (Some("F"), m) => {
                out.push_str(m.unwrap_or(""));
                out.push('\n');
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::cri_log_text;

    #[test]
    fn cri_log_prefixes_are_stripped_and_partial_lines_joined() {
        let raw = "2024-01-01T00:00:00.000000000Z stdout F hello\n\
                   2024-01-01T00:00:00.1Z stderr P par\n\
                   2024-01-01T00:00:00.2Z stderr F tial\n\
                   2024-01-01T00:00:00.3Z stdout F \n";
        assert_eq!(cri_log_text(raw), "hello\npartial\n\n");
    }
}
