//! Which image a container was created from, as containerd records it.
//!
//! The shim knows only a container id. containerd's container record names the image (CRI stores the
//! name it resolved, e.g. `127.0.0.1:5000/busybox:latest`), and the image record pins that name to a
//! manifest or index digest. Both lookups go over containerd's gRPC socket.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use containerd_client::services::v1::snapshots::{
    snapshots_client::SnapshotsClient, StatSnapshotRequest,
};
use containerd_client::services::v1::{
    containers_client::ContainersClient, content_client::ContentClient,
    images_client::ImagesClient, GetContainerRequest, GetImageRequest, ListImagesRequest,
    ReadContentRequest,
};
use containerd_client::tonic::{
    metadata::{Ascii, MetadataValue},
    Code, Request, Status,
};
use sha2::{Digest, Sha256};

pub mod spec;
pub mod stage;

use crate::error::{Error, Result};
use crate::facts::ImageIdentity;
pub use crate::facts::{ContainerFacts, CriPod};
use crate::reference::{is_image_id, Reference};

/// The annotation CRI puts on a container with the image name it was asked to run.
pub const CRI_IMAGE_NAME: &str = "io.kubernetes.cri.image-name";
/// How long one resolution may take in all, connection included.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// A container to look up.
#[derive(Debug, Clone, Copy, Default)]
pub struct ContainerRef<'a> {
    /// containerd's gRPC socket, a path, optionally prefixed `unix://`.
    pub address: &'a str,
    /// containerd namespace (`default`, `k8s.io`, ...).
    pub namespace: &'a str,
    pub container_id: &'a str,
    /// The [`CRI_IMAGE_NAME`] annotation, used when the record's image name is an id or gone.
    pub cri_image_name: Option<&'a str>,
}

/// The source of image identities: containerd in production, a stand-in in tests.
pub trait ImageResolver: Send + Sync {
    /// What containerd's records say about the container: its image bound to its content (`None`:
    /// the container has no image) and its CRI pod.
    fn inspect(&self, container: &ContainerRef<'_>) -> Result<ContainerFacts>;

    /// `ConfigPath` from the runtime options in the container's record, when the shim did not get
    /// them: containerd sends task options (the legacy `CreateOptions` of `ctr run --no-pivot`, or of
    /// CRI with `NoPivot`) to the shim *instead of* the container's runtime options.
    /// Any failure to read the record is an error: the gate refuses rather than fall back to
    /// another configuration.
    fn runtime_config_path(&self, _container: &ContainerRef<'_>) -> Result<Option<PathBuf>> {
        Ok(None)
    }
}

/// Resolves through containerd's API, blocking the caller for at most `timeout`.
#[derive(Debug, Clone)]
pub struct Containerd {
    pub timeout: Duration,
}

impl Default for Containerd {
    fn default() -> Self {
        Containerd { timeout: TIMEOUT }
    }
}

impl ImageResolver for Containerd {
    fn inspect(&self, container: &ContainerRef<'_>) -> Result<ContainerFacts> {
        inspect(container, self.timeout)
    }

    fn runtime_config_path(&self, container: &ContainerRef<'_>) -> Result<Option<PathBuf>> {
        block_on_bounded(
            container.address,
            self.timeout,
            record_config_path(container),
        )
    }
}

/// CRI's `runtimeoptions.v1.Options`, as containerd stores it in the container record.
#[derive(Clone, PartialEq, prost::Message)]
struct CriRuntimeOptions {
    #[prost(string, tag = "1")]
    type_url: String,
    #[prost(string, tag = "2")]
    config_path: String,
}

/// `ConfigPath` from an `Any` holding CRI runtime options; `Ok(None)` for any other type, an error
/// for CRI options that do not decode.
pub fn config_path_from_runtime_options(
    type_url: &str,
    value: &[u8],
) -> std::result::Result<Option<PathBuf>, String> {
    if !type_url.ends_with("runtimeoptions.v1.Options") {
        return Ok(None);
    }
    let opts = <CriRuntimeOptions as prost::Message>::decode(value)
        .map_err(|e| format!("runtime options of type {type_url} do not decode: {e}"))?;
    Ok((!opts.config_path.is_empty()).then(|| PathBuf::from(opts.config_path)))
}

async fn record_config_path(c: &ContainerRef<'_>) -> Result<Option<PathBuf>> {
    let session = Session::open(c.address, c.namespace).await?;
    let record = session.container(c.container_id).await?;
    let Some(options) = record.and_then(|r| r.runtime).and_then(|r| r.options) else {
        return Ok(None);
    };
    config_path_from_runtime_options(&options.type_url, &options.value).map_err(|reason| {
        Error::Containerd {
            address: c.address.to_string(),
            reason: format!("container {}: {reason}", c.container_id),
        }
    })
}

/// Blocking lookup of `container`'s image identity, bounded by `timeout`.
pub fn resolve(container: &ContainerRef<'_>, timeout: Duration) -> Result<Option<ImageIdentity>> {
    inspect(container, timeout).map(|facts| facts.image)
}

/// What containerd's own records say about `container`, bounded by `timeout`.
pub fn inspect(container: &ContainerRef<'_>, timeout: Duration) -> Result<ContainerFacts> {
    block_on_bounded(container.address, timeout, inspect_async(container))
}

/// Runs `work` on a current-thread runtime of its own, bounded by `timeout`. The shim and the gate
/// are synchronous; when called from inside a tokio runtime it runs on a helper thread, since a
/// runtime cannot block on another.
fn block_on_bounded<T, F>(address: &str, timeout: Duration, work: F) -> Result<T>
where
    T: Send,
    F: std::future::Future<Output = Result<T>> + Send,
{
    let unreachable = |reason: String| Error::ContainerdUnreachable {
        address: address.to_string(),
        reason,
    };
    let run = move || -> Result<T> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| unreachable(format!("cannot start an async runtime: {e}")))?;
        runtime.block_on(async {
            match tokio::time::timeout(timeout, work).await {
                Ok(result) => result,
                Err(_) => Err(unreachable(format!(
                    "no answer within {} s",
                    timeout.as_secs_f32()
                ))),
            }
        })
    };
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|s| {
            s.spawn(run).join().unwrap_or_else(|_| {
                Err(Error::Containerd {
                    address: address.to_string(),
                    reason: "containerd lookup thread panicked".to_string(),
                })
            })
        })
    } else {
        run()
    }
}

/// One connection to containerd, scoped to a namespace.
struct Session {
    address: String,
    channel: containerd_client::tonic::transport::Channel,
    namespace: MetadataValue<Ascii>,
}

impl Session {
    async fn open(address: &str, namespace: &str) -> Result<Session> {
        let path = address.strip_prefix("unix://").unwrap_or(address);
        let channel =
            containerd_client::connect(path)
                .await
                .map_err(|e| Error::ContainerdUnreachable {
                    address: address.to_string(),
                    reason: error_chain(&e),
                })?;
        let ns = MetadataValue::try_from(namespace).map_err(|_| Error::Containerd {
            address: address.to_string(),
            reason: format!("invalid containerd namespace {namespace:?}"),
        })?;
        Ok(Session {
            address: address.to_string(),
            channel,
            namespace: ns,
        })
    }

    fn request<T>(&self, message: T) -> Request<T> {
        in_namespace(message, &self.namespace)
    }

    fn failed(&self, call: &str, status: Status) -> Error {
        match status.code() {
            Code::Unavailable => Error::ContainerdUnreachable {
                address: self.address.clone(),
                reason: one_line(status.message()),
            },
            code => Error::Containerd {
                address: self.address.clone(),
                reason: format!("{call}: {code:?}: {}", one_line(status.message())),
            },
        }
    }

    fn invalid(&self, reason: String) -> Error {
        Error::Containerd {
            address: self.address.clone(),
            reason,
        }
    }

    /// The container record; `None` when containerd has none by that id.
    async fn container(&self, id: &str) -> Result<Option<ContainerRecord>> {
        match ContainersClient::new(self.channel.clone())
            .get(self.request(GetContainerRequest { id: id.to_string() }))
            .await
        {
            Ok(reply) => Ok(reply.into_inner().container),
            Err(status) if status.code() == Code::NotFound => Ok(None),
            Err(status) => Err(self.failed(&format!("get container {id}"), status)),
        }
    }

    /// The target digest of the image record `name`; `None` when there is no such record.
    async fn image_target(&self, name: &str) -> Result<Option<String>> {
        match ImagesClient::new(self.channel.clone())
            .get(self.request(GetImageRequest {
                name: name.to_string(),
            }))
            .await
        {
            Ok(reply) => reply
                .into_inner()
                .image
                .and_then(|image| image.target)
                .map(|target| target.digest)
                .filter(|d| !d.is_empty())
                .map(Some)
                .ok_or_else(|| self.invalid(format!("image {name} has no target digest"))),
            Err(status) if status.code() == Code::NotFound => Ok(None),
            Err(status) => Err(self.failed(&format!("get image {name}"), status)),
        }
    }

    /// Every image record of the namespace: (name, target digest).
    async fn images(&self) -> Result<Vec<(String, String)>> {
        let reply = ImagesClient::new(self.channel.clone())
            .list(self.request(ListImagesRequest {
                filters: Vec::new(),
            }))
            .await
            .map_err(|status| self.failed("list images", status))?;
        Ok(reply
            .into_inner()
            .images
            .into_iter()
            .filter_map(|i| Some((i.name, i.target?.digest)))
            .collect())
    }

    /// The parent of a snapshot: for a container made from an image, the chain ID of its layers.
    async fn snapshot_parent(&self, snapshotter: &str, key: &str) -> Result<String> {
        let reply = SnapshotsClient::new(self.channel.clone())
            .stat(self.request(StatSnapshotRequest {
                snapshotter: snapshotter.to_string(),
                key: key.to_string(),
            }))
            .await
            .map_err(|status| self.failed(&format!("stat snapshot {key}"), status))?;
        Ok(reply
            .into_inner()
            .info
            .map(|i| i.parent)
            .unwrap_or_default())
    }

    /// A blob of the content store, at most `max` bytes, checked against its digest before
    /// anyone parses it.
    async fn blob(&self, digest: &str, max: usize) -> Result<Vec<u8>> {
        if !is_image_id(digest) {
            return Err(self.invalid(format!("{digest:?} is not a sha256 digest")));
        }
        let mut stream = ContentClient::new(self.channel.clone())
            .read(self.request(ReadContentRequest {
                digest: digest.to_string(),
                offset: 0,
                size: 0,
            }))
            .await
            .map_err(|status| self.failed(&format!("read content {digest}"), status))?
            .into_inner();
        let mut bytes = Vec::new();
        while let Some(chunk) = stream
            .message()
            .await
            .map_err(|status| self.failed(&format!("read content {digest}"), status))?
        {
            if bytes.len() + chunk.data.len() > max {
                return Err(self.invalid(format!("content {digest} is larger than {max} bytes")));
            }
            bytes.extend_from_slice(&chunk.data);
        }
        let actual = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
        if actual != digest {
            return Err(self.invalid(format!("content {digest} hashes to {actual}")));
        }
        Ok(bytes)
    }

    /// What the image `digest` unpacks to on this node: its config digest (the image id) and the
    /// chain ID of its layers. An index is resolved to this node's platform, as containerd does.
    async fn image_content(&self, digest: &str) -> Result<ImageContent> {
        let json = |bytes: &[u8], digest: &str| -> Result<serde_json::Value> {
            serde_json::from_slice(bytes)
                .map_err(|e| self.invalid(format!("content {digest} is not JSON: {e}")))
        };
        let mut doc = json(&self.blob(digest, MAX_DOCUMENT).await?, digest)?;
        if doc.get("manifests").is_some() {
            let manifest = crate::baseline::platform_manifest(&doc, digest)
                .map_err(|e| self.invalid(e.to_string()))?;
            doc = json(&self.blob(&manifest, MAX_DOCUMENT).await?, &manifest)?;
        }
        let config = doc
            .pointer("/config/digest")
            .and_then(|d| d.as_str())
            .ok_or_else(|| self.invalid(format!("manifest of image {digest} has no config")))?
            .to_string();
        let config_doc = json(&self.blob(&config, MAX_DOCUMENT).await?, &config)?;
        let diff_ids: Vec<&str> = config_doc
            .pointer("/rootfs/diff_ids")
            .and_then(|d| d.as_array())
            .map(|a| a.iter().filter_map(|d| d.as_str()).collect())
            .unwrap_or_default();
        let chain = chain_id(&diff_ids)
            .ok_or_else(|| self.invalid(format!("image config {config} has invalid diff_ids")))?;
        Ok(ImageContent { config, chain })
    }
}

/// Largest manifest, index or image config read while binding a container to its image.
const MAX_DOCUMENT: usize = 4 << 20;
/// Most image records looked at when the container's name no longer leads to its content.
const MAX_IMAGES_SEARCHED: usize = 1000;

type ContainerRecord = containerd_client::services::v1::Container;

/// The identity of an image's content on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ImageContent {
    /// `sha256:` of the image config: the image id CRI records.
    config: String,
    /// The chain ID of its layers: the name of the snapshot a container of it is made on.
    chain: String,
}

/// The OCI chain ID of layers with these diff IDs, bottom first; `None` for an empty or invalid list.
pub fn chain_id(diff_ids: &[&str]) -> Option<String> {
    let mut chain: Option<String> = None;
    for d in diff_ids {
        if !is_image_id(d) {
            return None;
        }
        chain = Some(match chain {
            None => d.to_string(),
            Some(c) => format!(
                "sha256:{}",
                hex::encode(Sha256::digest(format!("{c} {d}").as_bytes()))
            ),
        });
    }
    chain
}

async fn inspect_async(c: &ContainerRef<'_>) -> Result<ContainerFacts> {
    let session = Session::open(c.address, c.namespace).await?;
    let record =
        session
            .container(c.container_id)
            .await?
            .ok_or_else(|| Error::ContainerNotFound {
                id: c.container_id.to_string(),
                namespace: c.namespace.to_string(),
            })?;
    let cri = cri_pod(&session, c.container_id, &record).await?;
    let requested = record
        .extensions
        .get(CRI_METADATA_EXTENSION)
        .and_then(|any| cri_requested_image(&any.value));

    let Some(mut names) = name_candidates(&record.image, c.cri_image_name) else {
        return Ok(ContainerFacts {
            cri,
            ..Default::default()
        });
    };
    // containerd 1.6's CRI plugin records the image by id and names it by the *first* reference of
    // that id, which is another repository whenever two repositories hold the same content. The
    // name the kubelet asked for survives only in CRI's container metadata: try it first.
    if let Some(name) = requested.filter(|n| !is_image_id(n)) {
        names.retain(|n| n != &name);
        names.insert(0, name);
    }
    let names = expand_short_names(names);
    let shown = || {
        if names.is_empty() {
            record.image.clone()
        } else {
            names.join(" or ")
        }
    };

    // The content the container really has: the layers its snapshot was made on.
    if record.snapshot_key.is_empty() {
        return Err(Error::ImageIdentity {
            container: c.container_id.to_string(),
            reason: format!(
                "it has no snapshot, so its root filesystem is not the content of {}",
                shown()
            ),
        });
    }
    let chain = session
        .snapshot_parent(&record.snapshotter, &record.snapshot_key)
        .await?;
    if chain.is_empty() {
        return Err(Error::ImageIdentity {
            container: c.container_id.to_string(),
            reason: format!(
                "its snapshot {} has no parent, so its root filesystem is not the content of {}",
                record.snapshot_key,
                shown()
            ),
        });
    }
    let image_ref = cri.as_ref().and_then(|p| p.image_ref.clone());
    let fits = |content: &ImageContent| {
        content.chain == chain && image_ref.as_ref().is_none_or(|r| r == &content.config)
    };
    let facts = |image: ImageIdentity| ContainerFacts {
        image: Some(image),
        rootfs_chain: Some(chain.clone()),
        cri: cri.clone(),
    };

    // The name the container was created with, when it still leads to that content.
    let mut now_resolves = Vec::new();
    for name in &names {
        let Ok(reference) = Reference::parse(name) else {
            continue;
        };
        let digest = match session.image_target(name).await? {
            Some(d) => d,
            // Gone from the image store, but the name itself pins the digest.
            None => match reference.digest.clone() {
                Some(d) => d,
                None => continue,
            },
        };
        match session.image_content(&digest).await {
            Ok(content) if fits(&content) => return Ok(facts(identity(name, reference, digest))),
            Ok(_) => now_resolves.push(format!("{name} now resolves to {digest}")),
            Err(e) => now_resolves.push(format!("{name}: {e}")),
        }
    }

    // Otherwise whichever image in the store has exactly this content; the requested repository
    // first, then by name, so the answer does not depend on the store's order.
    let wanted_repository = names
        .first()
        .and_then(|n| Reference::parse(n).ok())
        .map(|r| r.repository);
    let mut images = session.images().await?;
    if images.len() > MAX_IMAGES_SEARCHED {
        return Err(Error::ImageIdentity {
            container: c.container_id.to_string(),
            reason: format!(
                "{} no longer leads to its content, and the store holds more than \
                 {MAX_IMAGES_SEARCHED} images to search",
                shown()
            ),
        });
    }
    images.sort();
    let mut seen: BTreeMap<String, Option<ImageContent>> = BTreeMap::new();
    let mut found: Vec<ImageIdentity> = Vec::new();
    for (name, digest) in images {
        let Ok(reference) = Reference::parse(&name) else {
            continue;
        };
        if !seen.contains_key(&digest) {
            let content = session.image_content(&digest).await.ok();
            seen.insert(digest.clone(), content);
        }
        if seen.get(&digest).and_then(Option::as_ref).is_some_and(fits) {
            found.push(identity(&name, reference, digest));
        }
    }
    if let Some(i) = found
        .iter()
        .position(|f| Some(&f.repository) == wanted_repository.as_ref())
    {
        return Ok(facts(found.swap_remove(i)));
    }
    if let Some(first) = found.into_iter().next() {
        return Ok(facts(first));
    }
    let mut reason =
        format!("its root filesystem (layers {chain}) matches no image in containerd's store");
    if !now_resolves.is_empty() {
        reason.push_str(&format!(" ({})", now_resolves.join("; ")));
    }
    Err(Error::ImageIdentity {
        container: c.container_id.to_string(),
        reason,
    })
}

/// The container's pod, from the records containerd's CRI plugin keeps in its own container
/// extensions: a sandbox record names itself; a container record names its sandbox, whose record
/// holds the pod's namespace, name and uid. A record that claims to be CRI's but does not hold
/// together is an error, never "no pod".
async fn cri_pod(session: &Session, id: &str, record: &ContainerRecord) -> Result<Option<CriPod>> {
    let inconsistent = |what: String| Error::ImageIdentity {
        container: id.to_string(),
        reason: format!("CRI's record of it {what}"),
    };
    if let Some(any) = record.extensions.get(CRI_SANDBOX_EXTENSION) {
        let meta = CriSandboxMeta::parse(&any.value)
            .ok_or_else(|| inconsistent("(sandbox metadata) does not parse".into()))?;
        if meta.id != id {
            return Err(inconsistent(format!("names another sandbox, {}", meta.id)));
        }
        return Ok(Some(meta.into_pod(true, None)));
    }
    let Some(any) = record.extensions.get(CRI_METADATA_EXTENSION) else {
        return Ok(None);
    };
    let meta = CriContainerMeta::parse(&any.value)
        .ok_or_else(|| inconsistent("(container metadata) does not parse".into()))?;
    if meta.id != id {
        return Err(inconsistent(format!(
            "names another container, {}",
            meta.id
        )));
    }
    let sandbox = session.container(&meta.sandbox_id).await?.ok_or_else(|| {
        inconsistent(format!(
            "names sandbox {}, which does not exist",
            meta.sandbox_id
        ))
    })?;
    let sandbox_meta = sandbox
        .extensions
        .get(CRI_SANDBOX_EXTENSION)
        .and_then(|any| CriSandboxMeta::parse(&any.value))
        .filter(|m| m.id == meta.sandbox_id)
        .ok_or_else(|| {
            inconsistent(format!(
                "names sandbox {}, which is not a CRI sandbox",
                meta.sandbox_id
            ))
        })?;
    confirm_through_cri(session, id, &meta.sandbox_id)
        .await?
        .map_err(inconsistent)?;
    Ok(Some(sandbox_meta.into_pod(false, meta.image_ref)))
}

/// Any containerd client can write a container record, CRI's extensions included, and name a
/// real sandbox of another pod in it; CRI's own store holds only the containers CRI created (for
/// the kubelet). So a record that says it is CRI's must be one CRI knows, in the sandbox the
/// record names. (A sandbox cannot be confirmed this way at its own start: CRI adds it to its
/// store only once its task runs.)
async fn confirm_through_cri(
    session: &Session,
    id: &str,
    sandbox_id: &str,
) -> Result<std::result::Result<(), String>> {
    use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
    use k8s_cri::v1::{ContainerFilter, ListContainersRequest};
    let reply = RuntimeServiceClient::new(session.channel.clone())
        .list_containers(ListContainersRequest {
            filter: Some(ContainerFilter {
                id: id.to_string(),
                ..Default::default()
            }),
        })
        .await
        .map_err(|status| session.failed("ask CRI for the container", status))?;
    let known = reply
        .into_inner()
        .containers
        .into_iter()
        .find(|c| c.id == id);
    Ok(match known {
        Some(c) if c.pod_sandbox_id == sandbox_id => Ok(()),
        Some(c) => Err(format!(
            "names sandbox {sandbox_id}, but CRI has the container in sandbox {}",
            c.pod_sandbox_id
        )),
        None => Err(
            "says the container is CRI's, but CRI does not know it (a record written by another \
             containerd client)"
                .to_string(),
        ),
    })
}

/// CRI's sandbox metadata (JSON, as containerd's typeurl encodes Go structs).
#[derive(Debug, Clone, PartialEq, Eq)]
struct CriSandboxMeta {
    id: String,
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
}

impl CriSandboxMeta {
    fn parse(bytes: &[u8]) -> Option<CriSandboxMeta> {
        let v = parse_metadata(bytes)?;
        let text = |p: &str| {
            v.pointer(p)
                .and_then(|x| x.as_str())
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        Some(CriSandboxMeta {
            id: text("/Metadata/ID")?,
            name: text("/Metadata/Config/metadata/name"),
            namespace: text("/Metadata/Config/metadata/namespace"),
            uid: text("/Metadata/Config/metadata/uid"),
        })
    }

    fn into_pod(self, sandbox: bool, image_ref: Option<String>) -> CriPod {
        CriPod {
            sandbox,
            sandbox_id: self.id,
            namespace: self.namespace,
            name: self.name,
            uid: self.uid,
            image_ref,
        }
    }
}

/// CRI's container metadata: which container, in which sandbox, of which image id.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CriContainerMeta {
    id: String,
    sandbox_id: String,
    image_ref: Option<String>,
}

impl CriContainerMeta {
    fn parse(bytes: &[u8]) -> Option<CriContainerMeta> {
        let v = parse_metadata(bytes)?;
        let text = |p: &str| {
            v.pointer(p)
                .and_then(|x| x.as_str())
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        Some(CriContainerMeta {
            id: text("/Metadata/ID")?,
            sandbox_id: text("/Metadata/SandboxID")?,
            image_ref: text("/Metadata/ImageRef").filter(|r| is_image_id(r)),
        })
    }
}

/// CRI metadata is small; anything large is not CRI's.
fn parse_metadata(bytes: &[u8]) -> Option<serde_json::Value> {
    if bytes.len() > 4 * 1024 * 1024 {
        return None;
    }
    serde_json::from_slice(bytes).ok()
}

/// A short name (`busybox`) is stored under its normalised form too.
fn expand_short_names(names: Vec<String>) -> Vec<String> {
    let mut expanded = Vec::new();
    for name in names {
        let full = Reference::parse(&name).ok().map(|r| {
            if r.tag.is_none() && r.digest.is_none() {
                format!("{r}:latest")
            } else {
                r.to_string()
            }
        });
        if !expanded.contains(&name) {
            expanded.push(name);
        }
        if let Some(full) = full.filter(|f| !expanded.contains(f)) {
            expanded.push(full);
        }
    }
    expanded
}

/// containerd's version (`1.6.20`), asked over its socket, bounded by `timeout`.
pub fn containerd_version(address: &str, timeout: Duration) -> Result<String> {
    let unreachable = |reason: String| Error::ContainerdUnreachable {
        address: address.to_string(),
        reason,
    };
    let ask = async {
        let path = address.strip_prefix("unix://").unwrap_or(address);
        let channel = containerd_client::connect(path)
            .await
            .map_err(|e| unreachable(error_chain(&e)))?;
        let reply = containerd_client::services::v1::version_client::VersionClient::new(channel)
            .version(())
            .await
            .map_err(|status| unreachable(one_line(status.message())))?;
        Ok(reply.into_inner().version)
    };
    let run = || -> Result<String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| unreachable(format!("cannot start an async runtime: {e}")))?;
        runtime.block_on(async {
            tokio::time::timeout(timeout, ask)
                .await
                .unwrap_or_else(|_| {
                    Err(unreachable(format!(
                        "no answer within {} s",
                        timeout.as_secs_f32()
                    )))
                })
        })
    };
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|s| {
            s.spawn(run)
                .join()
                .unwrap_or_else(|_| Err(unreachable("version lookup thread panicked".into())))
        })
    } else {
        run()
    }
}

impl ImageIdentity {
    /// Builds an identity from an image reference that carries its digest (`name@sha256:…`), as the
    /// CLI gets it; `None` when the reference has no digest.
    pub fn from_pinned_reference(name: &str) -> crate::Result<Option<ImageIdentity>> {
        let reference = Reference::parse(name)?;
        Ok(reference.digest.map(|digest| ImageIdentity {
            name: name.to_string(),
            repository: reference.repository,
            digest,
        }))
    }
}

/// The container-record extension where containerd's CRI plugin keeps the CreateContainer request.
pub const CRI_METADATA_EXTENSION: &str = "io.cri-containerd.container.metadata";
/// The container-record extension where containerd's CRI plugin keeps a pod sandbox's metadata.
pub const CRI_SANDBOX_EXTENSION: &str = "io.cri-containerd.sandbox.metadata";

/// The image the CRI client asked for, from CRI's container metadata (JSON, as containerd's typeurl
/// encodes Go structs): `user_specified_image` (Kubernetes 1.30+) when set, else `image`.
pub fn cri_requested_image(metadata: &[u8]) -> Option<String> {
    if metadata.len() > 4 * 1024 * 1024 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(metadata).ok()?;
    let image = v.pointer("/Metadata/Config/image")?;
    ["user_specified_image", "image"]
        .iter()
        .filter_map(|k| image.get(k).and_then(|x| x.as_str()))
        .find(|s| !s.is_empty())
        .map(str::to_string)
}

/// containerd scopes every call by the `containerd-namespace` header.
fn in_namespace<T>(message: T, namespace: &MetadataValue<Ascii>) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("containerd-namespace", namespace.clone());
    request
}

fn identity(name: &str, reference: Reference, digest: String) -> ImageIdentity {
    ImageIdentity {
        name: name.to_string(),
        repository: reference.repository,
        digest,
    }
}

/// The image names to try, in order: the container record's, then CRI's annotation. `None` when the
/// container has no image at all; empty when it names its image only by id (no repository), in
/// which case its content alone finds the image.
fn name_candidates(record: &str, annotation: Option<&str>) -> Option<Vec<String>> {
    let given: Vec<&str> = [Some(record), annotation]
        .into_iter()
        .flatten()
        .filter(|n| !n.is_empty())
        .collect();
    if given.is_empty() {
        return None;
    }
    let mut names: Vec<String> = Vec::new();
    for name in given.into_iter().filter(|n| !is_image_id(n)) {
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    Some(names)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    one_line(&parts.join(": "))
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn names(record: &str, annotation: Option<&str>) -> Option<Vec<String>> {
        name_candidates(record, annotation)
    }

    #[test]
    fn record_name_first_then_annotation() {
        assert_eq!(
            names("127.0.0.1:5000/busybox:latest", Some("busybox")),
            Some(vec![
                "127.0.0.1:5000/busybox:latest".into(),
                "busybox".into()
            ])
        );
        assert_eq!(
            names("busybox", Some("busybox")),
            Some(vec!["busybox".into()])
        );
        assert_eq!(names("busybox", None), Some(vec!["busybox".into()]));
    }

    #[test]
    fn image_ids_name_no_repository_so_the_content_alone_finds_the_image() {
        assert_eq!(
            names(ID, Some("ghcr.io/x:1")),
            Some(vec!["ghcr.io/x:1".into()])
        );
        assert_eq!(
            names("", Some("ghcr.io/x:1")),
            Some(vec!["ghcr.io/x:1".into()])
        );
        assert_eq!(names(ID, None), Some(vec![]));
        assert_eq!(names("", Some(ID)), Some(vec![]));
    }

    #[test]
    fn chain_ids_follow_the_oci_definition() {
        let a = "sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4";
        let b = "sha256:ec4b8955958665577945c89419d1af06b5f7636b4ac3da7f12184802ad867736";
        assert_eq!(chain_id(&[a]).as_deref(), Some(a));
        let expected = format!(
            "sha256:{}",
            hex::encode(Sha256::digest(format!("{a} {b}").as_bytes()))
        );
        assert_eq!(chain_id(&[a, b]), Some(expected));
        assert_eq!(chain_id(&[]), None);
        assert_eq!(chain_id(&[a, "sha256:xyz"]), None);
        assert_eq!(chain_id(&["md5:00"]), None);
    }

    #[test]
    fn cri_records_give_the_pod_and_hold_together() {
        let sandbox = br#"{"Version":"v1","Metadata":{"ID":"s1","Name":"web_prod_uid1_0","Config":{"metadata":{"name":"web","uid":"uid1","namespace":"prod","attempt":0}}}}"#;
        let meta = CriSandboxMeta::parse(sandbox).unwrap();
        assert_eq!(meta.id, "s1");
        assert_eq!(meta.namespace.as_deref(), Some("prod"));
        assert_eq!(meta.uid.as_deref(), Some("uid1"));
        let pod = meta.into_pod(true, None);
        assert!(pod.sandbox);
        assert_eq!(pod.name.as_deref(), Some("web"));
        let container = format!(
            r#"{{"Version":"v1","Metadata":{{"ID":"c1","SandboxID":"s1","ImageRef":"{ID}","Config":{{}}}}}}"#
        );
        let meta = CriContainerMeta::parse(container.as_bytes()).unwrap();
        assert_eq!(meta.sandbox_id, "s1");
        assert_eq!(meta.image_ref.as_deref(), Some(ID));
        // Without an id or a sandbox id it is not CRI's record.
        assert_eq!(CriSandboxMeta::parse(br#"{"Metadata":{"Name":"x"}}"#), None);
        assert_eq!(
            CriContainerMeta::parse(br#"{"Metadata":{"ID":"c1"}}"#),
            None
        );
        assert_eq!(CriContainerMeta::parse(b"[1,2"), None);
        // An image ref that is not an image id is ignored, never trusted as a name.
        let odd = br#"{"Metadata":{"ID":"c1","SandboxID":"s1","ImageRef":"busybox"}}"#;
        assert_eq!(CriContainerMeta::parse(odd).unwrap().image_ref, None);
    }

    #[test]
    fn cri_runtime_options_in_the_record_give_the_config_path() {
        let opts = CriRuntimeOptions {
            type_url: "io.containerd.vouch.v2".into(),
            config_path: "/etc/vouch/strict.toml".into(),
        };
        let bytes = prost::Message::encode_to_vec(&opts);
        assert_eq!(
            config_path_from_runtime_options("runtimeoptions.v1.Options", &bytes),
            Ok(Some(PathBuf::from("/etc/vouch/strict.toml")))
        );
        assert_eq!(
            config_path_from_runtime_options("containerd.linux.runc.CreateOptions", &bytes),
            Ok(None)
        );
        let e = config_path_from_runtime_options("runtimeoptions.v1.Options", &[0xff, 0xff])
            .unwrap_err();
        assert!(e.contains("do not decode"), "{e}");
    }

    #[test]
    fn cri_metadata_gives_the_requested_image() {
        let meta = br#"{"Version":"v1","Metadata":{"ID":"c","Config":{"metadata":{"name":"good"},"image":{"image":"127.0.0.1:5000/team/app:v1"}},"ImageRef":"sha256:7a0f"}}"#;
        assert_eq!(
            cri_requested_image(meta).as_deref(),
            Some("127.0.0.1:5000/team/app:v1")
        );
        let newer = br#"{"Metadata":{"Config":{"image":{"image":"sha256:7a0f","user_specified_image":"ghcr.io/a/b:1"}}}}"#;
        assert_eq!(cri_requested_image(newer).as_deref(), Some("ghcr.io/a/b:1"));
        assert_eq!(cri_requested_image(b"not json"), None);
        assert_eq!(cri_requested_image(br#"{"Metadata":{}}"#), None);
    }

    #[test]
    fn no_image_at_all_is_none() {
        assert_eq!(names("", None), None);
        assert_eq!(names("", Some("")), None);
    }

    #[test]
    fn an_absent_socket_is_reported_as_unreachable_quickly() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("containerd.sock");
        let address = format!("unix://{}", sock.display());
        let c = ContainerRef {
            address: &address,
            namespace: "default",
            container_id: "c1",
            cri_image_name: None,
        };
        let started = std::time::Instant::now();
        let e = resolve(&c, TIMEOUT).unwrap_err().to_string();
        assert!(started.elapsed() < TIMEOUT);
        assert!(
            e.starts_with(&format!("containerd unreachable at {address}: ")),
            "{e}"
        );
        assert!(!e.contains('\n'));
    }

    #[test]
    fn a_silent_socket_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("containerd.sock");
        // Accepts connections (the kernel backlog does) but never speaks HTTP/2.
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let address = sock.display().to_string();
        let c = ContainerRef {
            address: &address,
            namespace: "default",
            container_id: "c1",
            cri_image_name: None,
        };
        let e = resolve(&c, Duration::from_millis(300))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!("containerd unreachable at {address}: ")),
            "{e}"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn works_from_inside_a_runtime() {
        let c = ContainerRef {
            address: "/nonexistent/containerd.sock",
            namespace: "default",
            container_id: "c1",
            cri_image_name: None,
        };
        assert!(matches!(
            resolve(&c, TIMEOUT),
            Err(Error::ContainerdUnreachable { .. })
        ));
    }

    #[test]
    fn pinned_references_become_identities() {
        let id = ImageIdentity::from_pinned_reference(&format!("busybox@{ID}")).unwrap();
        assert_eq!(
            id.map(|i| i.subject()),
            Some(format!("docker.io/library/busybox@{ID}"))
        );
        assert_eq!(
            ImageIdentity::from_pinned_reference("busybox:1").unwrap(),
            None
        );
        assert!(ImageIdentity::from_pinned_reference("Busybox").is_err());
    }
}
