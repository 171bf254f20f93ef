//! Where layer blobs come from: containerd's content store over its gRPC socket, or an OCI image
//! layout directory (tests, the CLI).

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver};
use std::time::Duration;

use containerd_client::services::v1::{content_client::ContentClient, ReadContentRequest};
use containerd_client::tonic::{metadata::MetadataValue, Request};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::BaselineError;

/// Largest manifest or index read.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;

/// A layer of an image manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// `sha256:<hex>` of the blob as stored (compressed).
    pub digest: String,
    pub media_type: String,
}

/// `sha256:<64 lower-case hex>`, or an error: digests name cache files and are sent to containerd.
pub fn check_digest(digest: &str) -> Result<&str, BaselineError> {
    let hex = digest
        .strip_prefix("sha256:")
        .filter(|h| {
            h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
        .ok_or_else(|| {
            BaselineError::Unsupported(format!("digest {digest:?} is not sha256:<hex>"))
        })?;
    Ok(hex)
}

/// A source of content-addressed blobs.
pub trait BlobSource {
    /// The blob's bytes, streamed. The caller verifies the digest.
    fn open_blob(&self, digest: &str) -> Result<Box<dyn Read + Send>, BaselineError>;

    /// The layers (bottom first) of the image manifest `image_digest`; an index is resolved to this
    /// node's platform. Every document read is checked against its digest.
    fn manifest_layers(&self, image_digest: &str) -> Result<Vec<Layer>, BaselineError> {
        let doc = read_verified(self, image_digest)?;
        let manifest = if doc.get("manifests").is_some() {
            let digest = platform_manifest(&doc, image_digest)?;
            read_verified(self, &digest)?
        } else {
            doc
        };
        let layers = manifest
            .get("layers")
            .and_then(Value::as_array)
            .ok_or_else(|| BaselineError::Blob {
                digest: image_digest.to_string(),
                reason: "manifest has no layers".into(),
            })?;
        let mut out = Vec::new();
        for l in layers {
            let digest = l.get("digest").and_then(Value::as_str).unwrap_or_default();
            check_digest(digest)?;
            out.push(Layer {
                digest: digest.to_string(),
                media_type: l
                    .get("mediaType")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            });
        }
        Ok(out)
    }
}

/// A JSON document of at most [`MAX_MANIFEST_BYTES`] whose bytes hash to `digest`.
fn read_verified<S: BlobSource + ?Sized>(source: &S, digest: &str) -> Result<Value, BaselineError> {
    check_digest(digest)?;
    let mut bytes = Vec::new();
    source
        .open_blob(digest)?
        .take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| BaselineError::Blob {
            digest: digest.to_string(),
            reason: super::one_line(&e.to_string()),
        })?;
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(BaselineError::Blob {
            digest: digest.to_string(),
            reason: "manifest too large".into(),
        });
    }
    let actual = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
    if actual != digest {
        return Err(BaselineError::Digest {
            expected: digest.to_string(),
            actual,
        });
    }
    serde_json::from_slice(&bytes).map_err(|e| BaselineError::Blob {
        digest: digest.to_string(),
        reason: super::one_line(&format!("not a JSON manifest: {e}")),
    })
}

/// This node's platform as OCI names it: `(os, architecture, variant)`.
pub fn node_platform() -> (&'static str, &'static str, Option<&'static str>) {
    match std::env::consts::ARCH {
        "x86_64" => ("linux", "amd64", None),
        "aarch64" => ("linux", "arm64", Some("v8")),
        "arm" => ("linux", "arm", Some("v7")),
        "x86" => ("linux", "386", None),
        "powerpc64" => ("linux", "ppc64le", None),
        "s390x" => ("linux", "s390x", None),
        "riscv64" => ("linux", "riscv64", None),
        other => ("linux", other, None),
    }
}

/// The digest of the manifest of an index for this node's platform.
pub fn platform_manifest(index: &Value, index_digest: &str) -> Result<String, BaselineError> {
    let (os, arch, variant) = node_platform();
    let manifests = index
        .get("manifests")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let matches = |m: &&Value, strict_variant: bool| {
        let p = m.get("platform");
        let field = |k: &str| p.and_then(|p| p.get(k)).and_then(Value::as_str);
        field("os") == Some(os)
            && field("architecture") == Some(arch)
            && (!strict_variant
                || variant.is_none()
                || field("variant").is_none_or(|v| Some(v) == variant))
    };
    let found = manifests
        .iter()
        .find(|m| matches(m, true))
        .or_else(|| manifests.iter().find(|m| matches(m, false)))
        .and_then(|m| m.get("digest").and_then(Value::as_str))
        .ok_or_else(|| BaselineError::Blob {
            digest: index_digest.to_string(),
            reason: format!("index has no manifest for {os}/{arch}"),
        })?;
    check_digest(found)?;
    Ok(found.to_string())
}

/// An OCI image layout: blobs at `<dir>/blobs/sha256/<hex>`.
#[derive(Debug, Clone)]
pub struct OciLayout {
    pub dir: PathBuf,
}

impl BlobSource for OciLayout {
    fn open_blob(&self, digest: &str) -> Result<Box<dyn Read + Send>, BaselineError> {
        let hex = check_digest(digest)?;
        let path = self.dir.join("blobs/sha256").join(hex);
        let f = File::options()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
            .open(&path)
            .map_err(|e| BaselineError::Blob {
                digest: digest.to_string(),
                reason: format!("{}: {e}", path.display()),
            })?;
        Ok(Box::new(f))
    }
}

/// containerd's content store, over its gRPC socket.
#[derive(Debug, Clone)]
pub struct ContainerdContent {
    /// containerd's socket, a path, optionally prefixed `unix://`.
    pub address: String,
    pub namespace: String,
    /// How long one answer (connection, or the next chunk of a blob) may take.
    pub timeout: Duration,
}

impl ContainerdContent {
    pub fn new(address: &str, namespace: &str) -> ContainerdContent {
        ContainerdContent {
            address: address.to_string(),
            namespace: namespace.to_string(),
            timeout: Duration::from_secs(10),
        }
    }
}

impl BlobSource for ContainerdContent {
    /// Streams the blob from a helper thread with its own runtime (callable from anywhere,
    /// including inside a tokio runtime); the reader sees an error if containerd fails or stalls.
    fn open_blob(&self, digest: &str) -> Result<Box<dyn Read + Send>, BaselineError> {
        check_digest(digest)?;
        let namespace = MetadataValue::try_from(self.namespace.as_str()).map_err(|_| {
            BaselineError::Containerd(format!("invalid namespace {:?}", self.namespace))
        })?;
        let (tx, rx) = sync_channel::<io::Result<Vec<u8>>>(8);
        let address = self.address.clone();
        let digest = digest.to_string();
        let timeout = self.timeout;
        std::thread::Builder::new()
            .name("vouch-content".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = tx.send(Err(io::Error::other(e)));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let fail = |what: String| Err(io::Error::other(what));
                    let path = address.strip_prefix("unix://").unwrap_or(&address);
                    let channel =
                        match tokio::time::timeout(timeout, containerd_client::connect(path)).await
                        {
                            Ok(Ok(c)) => c,
                            Ok(Err(e)) => {
                                let _ = tx.send(fail(format!("containerd at {address}: {e}")));
                                return;
                            }
                            Err(_) => {
                                let _ =
                                    tx.send(fail(format!("containerd at {address}: no answer")));
                                return;
                            }
                        };
                    let mut request = Request::new(ReadContentRequest {
                        digest: digest.clone(),
                        offset: 0,
                        size: 0,
                    });
                    request
                        .metadata_mut()
                        .insert("containerd-namespace", namespace);
                    let stream =
                        tokio::time::timeout(timeout, ContentClient::new(channel).read(request))
                            .await;
                    let mut stream = match stream {
                        Ok(Ok(s)) => s.into_inner(),
                        Ok(Err(status)) => {
                            let _ = tx.send(fail(format!(
                                "content {digest}: {:?}: {}",
                                status.code(),
                                status.message()
                            )));
                            return;
                        }
                        Err(_) => {
                            let _ = tx.send(fail(format!("content {digest}: no answer")));
                            return;
                        }
                    };
                    loop {
                        let sent = match tokio::time::timeout(timeout, stream.message()).await {
                            Ok(Ok(Some(m))) if m.data.is_empty() => continue,
                            Ok(Ok(Some(m))) => tx.send(Ok(m.data)),
                            Ok(Ok(None)) => {
                                let _ = tx.send(Ok(Vec::new()));
                                return;
                            }
                            Ok(Err(status)) => tx.send(fail(format!(
                                "content {digest}: {:?}: {}",
                                status.code(),
                                status.message()
                            ))),
                            Err(_) => tx.send(fail(format!("content {digest}: stalled"))),
                        };
                        if sent.is_err() {
                            return;
                        }
                    }
                });
            })
            .map_err(|e| BaselineError::Containerd(format!("cannot start a thread: {e}")))?;
        Ok(Box::new(ChannelReader {
            rx,
            buf: Vec::new(),
            pos: 0,
            done: false,
        }))
    }
}

/// Chunks from the streaming thread; an empty chunk marks the end, a closed channel without it
/// is an error (never a silently short blob).
struct ChannelReader {
    rx: Receiver<io::Result<Vec<u8>>>,
    buf: Vec<u8>,
    pos: usize,
    done: bool,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.buf.len() {
            if self.done {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Ok(chunk)) if chunk.is_empty() => self.done = true,
                Ok(Ok(chunk)) => {
                    self.buf = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(io::Error::other("content stream ended early")),
            }
        }
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        let n = rest.len().min(out.len());
        if let (Some(dst), Some(src)) = (out.get_mut(..n), rest.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.pos += n;
        Ok(n)
    }
}
