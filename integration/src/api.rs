//! A containerd API client for what `ctr` cannot express: an exec with a process spec of the
//! caller's own, as any containerd client may send.

use std::path::Path;

use anyhow::{Context, Result};
use containerd_client::services::v1::{
    containers_client::ContainersClient, tasks_client::TasksClient, DeleteProcessRequest,
    ExecProcessRequest, GetContainerRequest, UpdateContainerRequest,
};
use containerd_client::tonic::{metadata::MetadataValue, Request, Status};

/// The media type containerd gives an exec's process spec.
const PROCESS_TYPE: &str = "types.containerd.io/opencontainers/runtime-spec/1/Process";

fn block_on<F: std::future::Future>(f: F) -> Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("a tokio runtime")?;
    Ok(runtime.block_on(f))
}

fn in_namespace<T>(ns: &str, message: T) -> Result<Request<T>> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "containerd-namespace",
        MetadataValue::try_from(ns).context("namespace")?,
    );
    Ok(request)
}

/// The process of container `id`'s spec, as containerd's record holds it.
pub fn container_process(socket: &Path, ns: &str, id: &str) -> Result<serde_json::Value> {
    block_on(async {
        let channel = containerd_client::connect(socket).await?;
        let record = ContainersClient::new(channel)
            .get(in_namespace(
                ns,
                GetContainerRequest { id: id.to_string() },
            )?)
            .await?
            .into_inner()
            .container
            .context("no container record")?;
        let spec: serde_json::Value =
            serde_json::from_slice(&record.spec.context("no spec")?.value)?;
        Ok(spec["process"].clone())
    })?
}

/// Asks containerd to exec `process` (an OCI process spec, as JSON) in the running task of
/// container `id`, without stdio; the shim's answer comes back as the status.
pub fn exec_process(
    socket: &Path,
    ns: &str,
    id: &str,
    exec_id: &str,
    process: &[u8],
) -> Result<Result<(), Status>> {
    block_on(async {
        let channel = containerd_client::connect(socket).await?;
        let request = in_namespace(
            ns,
            ExecProcessRequest {
                container_id: id.to_string(),
                exec_id: exec_id.to_string(),
                spec: Some(prost_types::Any {
                    type_url: PROCESS_TYPE.to_string(),
                    value: process.to_vec(),
                }),
                ..Default::default()
            },
        )?;
        Ok(TasksClient::new(channel).exec(request).await.map(|_| ()))
    })?
}

/// Removes an exec process that was added but not started.
pub fn delete_process(socket: &Path, ns: &str, id: &str, exec_id: &str) -> Result<()> {
    block_on(async {
        let channel = containerd_client::connect(socket).await?;
        TasksClient::new(channel)
            .delete_process(in_namespace(
                ns,
                DeleteProcessRequest {
                    container_id: id.to_string(),
                    exec_id: exec_id.to_string(),
                },
            )?)
            .await?;
        Ok(())
    })?
}

/// CRI's container record extension.
const CRI_CONTAINER_EXTENSION: &str = "io.cri-containerd.container.metadata";

/// Writes into container `to`'s record a copy of CRI's record extension of container `from`
/// (a container CRI created), with its id changed to `to`: what any containerd client can do to
/// make its own container look like a container of another pod.
pub fn forge_cri_record(socket: &Path, ns: &str, from: &str, to: &str) -> Result<()> {
    block_on(async {
        let channel = containerd_client::connect(socket).await?;
        let mut client = ContainersClient::new(channel);
        let get = |id: &str| in_namespace(ns, GetContainerRequest { id: id.to_string() });
        let template = client
            .get(get(from)?)
            .await?
            .into_inner()
            .container
            .context("no record of the template")?;
        let mut any = template
            .extensions
            .get(CRI_CONTAINER_EXTENSION)
            .cloned()
            .context("the template has no CRI record")?;
        let mut meta: serde_json::Value = serde_json::from_slice(&any.value)?;
        meta["Metadata"]["ID"] = serde_json::Value::String(to.to_string());
        any.value = serde_json::to_vec(&meta)?;
        let mut target = client
            .get(get(to)?)
            .await?
            .into_inner()
            .container
            .context("no record of the target")?;
        target
            .extensions
            .insert(CRI_CONTAINER_EXTENSION.to_string(), any);
        client
            .update(in_namespace(
                ns,
                UpdateContainerRequest {
                    container: Some(target),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec![format!("extensions.{CRI_CONTAINER_EXTENSION}")],
                    }),
                },
            )?)
            .await?;
        Ok(())
    })?
}
