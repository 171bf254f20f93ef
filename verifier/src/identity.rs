//! Which image a container was created from, as containerd records it.
//!
//! The shim knows only a container id. containerd's container record names the image (CRI stores the
//! name it resolved, e.g. `127.0.0.1:5000/busybox:latest`), and the image record pins that name to a
//! manifest or index digest. Both lookups go over containerd's gRPC socket.

use std::{path::PathBuf, time::Duration};

use containerd_client::services::v1::{
    containers_client::ContainersClient, images_client::ImagesClient, GetContainerRequest,
    GetImageRequest,
};
use containerd_client::tonic::{
    metadata::{Ascii, MetadataValue},
    Code, Request, Status,
};

use crate::error::{Error, Result};
use crate::gate::ImageIdentity;
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
    /// `Ok(None)`: the container has no image (a CRI sandbox record may have none).
    fn resolve(&self, container: &ContainerRef<'_>) -> Result<Option<ImageIdentity>>;

    /// `ConfigPath` from the runtime options in the container's record, when the shim did not get
    /// them: containerd sends task options (the legacy `CreateOptions` of `ctr run --no-pivot`, or of
    /// CRI with `NoPivot`) to the shim *instead of* the container's runtime options.
    fn runtime_config_path(&self, _container: &ContainerRef<'_>) -> Option<PathBuf> {
        None
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
    fn resolve(&self, container: &ContainerRef<'_>) -> Result<Option<ImageIdentity>> {
        resolve(container, self.timeout)
    }

    fn runtime_config_path(&self, container: &ContainerRef<'_>) -> Option<PathBuf> {
        let run = || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                tokio::time::timeout(self.timeout, record_config_path(container))
                    .await
                    .ok()
                    .flatten()
            })
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|s| s.spawn(run).join().ok().flatten())
        } else {
            run()
        }
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

/// `ConfigPath` from an `Any` holding CRI runtime options; `None` for any other type.
pub fn config_path_from_runtime_options(type_url: &str, value: &[u8]) -> Option<PathBuf> {
    if !type_url.ends_with("runtimeoptions.v1.Options") {
        return None;
    }
    let opts = <CriRuntimeOptions as prost::Message>::decode(value).ok()?;
    (!opts.config_path.is_empty()).then(|| PathBuf::from(opts.config_path))
}

async fn record_config_path(c: &ContainerRef<'_>) -> Option<PathBuf> {
    let path = c.address.strip_prefix("unix://").unwrap_or(c.address);
    let channel = containerd_client::connect(path).await.ok()?;
    let namespace = MetadataValue::try_from(c.namespace).ok()?;
    let record = ContainersClient::new(channel)
        .get(in_namespace(
            GetContainerRequest {
                id: c.container_id.to_string(),
            },
            &namespace,
        ))
        .await
        .ok()?
        .into_inner()
        .container?;
    let options = record.runtime?.options?;
    config_path_from_runtime_options(&options.type_url, &options.value)
}

/// Blocking lookup of `container`'s image identity, bounded by `timeout`.
///
/// Runs its own current-thread runtime (the shim is synchronous); when called from inside a tokio
/// runtime it does so on a helper thread, since a runtime cannot block on another.
pub fn resolve(container: &ContainerRef<'_>, timeout: Duration) -> Result<Option<ImageIdentity>> {
    let run = || -> Result<Option<ImageIdentity>> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::ContainerdUnreachable {
                address: container.address.to_string(),
                reason: format!("cannot start an async runtime: {e}"),
            })?;
        runtime.block_on(async {
            match tokio::time::timeout(timeout, resolve_async(container)).await {
                Ok(result) => result,
                Err(_) => Err(Error::ContainerdUnreachable {
                    address: container.address.to_string(),
                    reason: format!("no answer within {} s", timeout.as_secs_f32()),
                }),
            }
        })
    };
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|s| {
            s.spawn(run).join().unwrap_or_else(|_| {
                Err(Error::Containerd {
                    address: container.address.to_string(),
                    reason: "image lookup thread panicked".to_string(),
                })
            })
        })
    } else {
        run()
    }
}

async fn resolve_async(c: &ContainerRef<'_>) -> Result<Option<ImageIdentity>> {
    let address = c.address.to_string();
    let path = c.address.strip_prefix("unix://").unwrap_or(c.address);
    let channel =
        containerd_client::connect(path)
            .await
            .map_err(|e| Error::ContainerdUnreachable {
                address: address.clone(),
                reason: error_chain(&e),
            })?;
    let namespace = MetadataValue::try_from(c.namespace).map_err(|_| Error::Containerd {
        address: address.clone(),
        reason: format!("invalid containerd namespace {:?}", c.namespace),
    })?;
    let call_failed = |call: &str, status: Status| match status.code() {
        Code::Unavailable => Error::ContainerdUnreachable {
            address: address.clone(),
            reason: one_line(status.message()),
        },
        code => Error::Containerd {
            address: address.clone(),
            reason: format!("{call}: {code:?}: {}", one_line(status.message())),
        },
    };

    let record = ContainersClient::new(channel.clone())
        .get(in_namespace(
            GetContainerRequest {
                id: c.container_id.to_string(),
            },
            &namespace,
        ))
        .await
        .map_err(|status| match status.code() {
            Code::NotFound => Error::ContainerNotFound {
                id: c.container_id.to_string(),
                namespace: c.namespace.to_string(),
            },
            _ => call_failed(&format!("get container {}", c.container_id), status),
        })?
        .into_inner()
        .container;
    let requested = record.as_ref().and_then(|r| {
        r.extensions
            .get(CRI_METADATA_EXTENSION)
            .and_then(|any| cri_requested_image(&any.value))
    });
    let record = record.map(|r| r.image).unwrap_or_default();

    let Some(mut names) = candidates(&record, c.cri_image_name, c.container_id)? else {
        return Ok(None);
    };
    // containerd 1.6's CRI plugin records the image by id and names it by the *first* reference of
    // that id, which is another repository whenever two repositories hold the same content. The
    // name the kubelet asked for survives only in CRI's container metadata: try it first.
    if let Some(name) = requested.filter(|n| !is_image_id(n)) {
        names.retain(|n| n != &name);
        names.insert(0, name);
    }
    // A short name (`busybox`) is stored under its normalised form.
    let mut expanded = Vec::new();
    for name in names {
        let full = Reference::parse(&name).ok().map(|r| {
            if r.tag.is_none() && r.digest.is_none() {
                format!("{r}:latest")
            } else {
                r.to_string()
            }
        });
        expanded.push(name);
        if let Some(full) = full.filter(|f| !expanded.contains(f)) {
            expanded.push(full);
        }
    }
    let names = expanded;
    let mut images = ImagesClient::new(channel);
    for name in &names {
        let reference = Reference::parse(name)?;
        match images
            .get(in_namespace(
                GetImageRequest { name: name.clone() },
                &namespace,
            ))
            .await
        {
            Ok(response) => {
                let digest = response
                    .into_inner()
                    .image
                    .and_then(|image| image.target)
                    .map(|target| target.digest)
                    .filter(|d| !d.is_empty())
                    .ok_or_else(|| Error::Containerd {
                        address: address.clone(),
                        reason: format!("image {name} has no target digest"),
                    })?;
                return Ok(Some(identity(name, reference, digest)));
            }
            // Gone from the image store, but the name itself pins the digest.
            Err(status) if status.code() == Code::NotFound => {
                if let Some(digest) = reference.digest.clone() {
                    return Ok(Some(identity(name, reference, digest)));
                }
            }
            Err(status) => return Err(call_failed(&format!("get image {name}"), status)),
        }
    }
    Err(Error::ImageNotFound {
        name: names.join(" or "),
        namespace: c.namespace.to_string(),
    })
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
/// container has no image at all. An image id names no repository, so it is never a candidate.
fn candidates(record: &str, annotation: Option<&str>, id: &str) -> Result<Option<Vec<String>>> {
    let usable = |n: &&str| !n.is_empty() && !is_image_id(n);
    let mut names: Vec<String> = Vec::new();
    for name in [Some(record), annotation]
        .into_iter()
        .flatten()
        .filter(usable)
    {
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    if !names.is_empty() {
        return Ok(Some(names));
    }
    let id_only = [Some(record), annotation]
        .into_iter()
        .flatten()
        .find(|n| !n.is_empty());
    match id_only {
        None => Ok(None),
        Some(image_id) => Err(Error::Reference {
            reference: image_id.to_string(),
            reason: format!(
                "container {id} names its image only by id, so its repository is unknown"
            ),
        }),
    }
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
        candidates(record, annotation, "c1").unwrap()
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
    fn image_ids_give_way_to_the_annotation() {
        assert_eq!(
            names(ID, Some("ghcr.io/x:1")),
            Some(vec!["ghcr.io/x:1".into()])
        );
        assert_eq!(
            names("", Some("ghcr.io/x:1")),
            Some(vec!["ghcr.io/x:1".into()])
        );
        let e = candidates(ID, None, "c1").unwrap_err().to_string();
        assert!(e.contains("container c1 names its image only by id"), "{e}");
        assert!(candidates("", Some(ID), "c1").is_err());
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
            Some(PathBuf::from("/etc/vouch/strict.toml"))
        );
        assert_eq!(
            config_path_from_runtime_options("containerd.linux.runc.CreateOptions", &bytes),
            None
        );
        assert_eq!(
            config_path_from_runtime_options("runtimeoptions.v1.Options", &[0xff, 0xff]),
            None
        );
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
