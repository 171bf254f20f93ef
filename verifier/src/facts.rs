//! The facts a decision is made on, as the stages learn them and pass them on: which image and pod
//! a container has, its root filesystem mounts, the exec it is about. They sit below the stages, so
//! that any stage (and the record) can use them without reaching into another.

use serde::{Deserialize, Serialize};

/// One mount of the container's root filesystem, as containerd passed it to Create.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootfsMount {
    pub fs_type: String,
    pub source: String,
    pub target: String,
    pub options: Vec<String>,
}

/// The image a container was created from, resolved to the digest that checks verify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageIdentity {
    /// The image name as containerd records it, e.g. `127.0.0.1:5000/team/app:v1`.
    pub name: String,
    /// The normalised repository, e.g. `docker.io/library/busybox`.
    pub repository: String,
    /// The manifest (or index) digest, `sha256:<hex>`.
    pub digest: String,
}

impl ImageIdentity {
    /// `<repository>@sha256:<hex>`, the form every decision names.
    pub fn subject(&self) -> String {
        format!("{}@{}", self.repository, self.digest)
    }
}

/// What containerd's own records say about a container: which image its root filesystem was made
/// from (bound to the content, not to a name that can move since), and for a CRI container its pod.
/// Nothing here comes from the OCI spec or its annotations, which any containerd client writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerFacts {
    pub image: Option<ImageIdentity>,
    /// The chain ID of the layers the container's snapshot was made on.
    pub rootfs_chain: Option<String>,
    pub cri: Option<CriPod>,
}

/// A container's pod, as containerd's CRI plugin recorded it in its own record extensions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CriPod {
    /// The container is the pod's sandbox: CRI's sandbox record names this very container.
    pub sandbox: bool,
    pub sandbox_id: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub uid: Option<String>,
    /// For a container: the image id (config digest) CRI resolved its image to.
    pub image_ref: Option<String>,
}

/// An exec into a running container, as its record names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecInfo {
    /// containerd's exec id.
    pub id: String,
    pub args: Vec<String>,
    pub user: ExecUser,
}

/// Who an exec runs as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    #[serde(default)]
    pub additional_gids: Vec<u32>,
}

impl ExecInfo {
    /// What an OCI process spec says of itself (malformed fields read as empty or 0; the gate
    /// judges the process separately).
    pub fn of(id: &str, process: &serde_json::Value) -> ExecInfo {
        let number = |p: &str| {
            process
                .pointer(p)
                .and_then(serde_json::Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0)
        };
        ExecInfo {
            id: id.to_string(),
            args: process
                .get("args")
                .and_then(serde_json::Value::as_array)
                .map(|a| {
                    a.iter()
                        .take(256)
                        .filter_map(|s| s.as_str().map(|s| s.chars().take(4096).collect()))
                        .collect()
                })
                .unwrap_or_default(),
            user: ExecUser {
                uid: number("/user/uid"),
                gid: number("/user/gid"),
                additional_gids: process
                    .pointer("/user/additionalGids")
                    .and_then(serde_json::Value::as_array)
                    .map(|a| {
                        a.iter()
                            .take(256)
                            .filter_map(|g| g.as_u64().and_then(|g| u32::try_from(g).ok()))
                            .collect()
                    })
                    .unwrap_or_default(),
            },
        }
    }
}

/// What a decision was made on: what its record says besides the verdict. Each stage adds what
/// it learnt; the record stage writes it.
#[derive(Debug, Default)]
pub struct Facts {
    pub config: Option<crate::config::Config>,
    pub image: Option<ImageIdentity>,
    pub policy_digest: Option<String>,
    /// The host's measurement, with the container's security settings under `container`.
    pub host: Option<serde_json::Value>,
    /// What verified, per verify rule: `rule: authority ...`.
    pub signatures: Vec<String>,
    /// A record that cannot be written still lets the start run only when the policy's mode and
    /// every rule that allowed it are `audit` (and the TPM is not required).
    pub audit_only: bool,
    /// Per verify rule with `[rule.sbom]`: the digest of the SBOM judged.
    pub sbom_digests: std::collections::BTreeMap<String, String>,
    /// The root filesystem's digest and per-layer summary, when it was measured.
    pub rootfs_digest: Option<String>,
    pub layers: Option<serde_json::Value>,
    /// The container's pod, as containerd's CRI plugin recorded it.
    pub pod: Option<CriPod>,
    /// Why the spec text cannot be judged, when it cannot.
    pub spec_error: Option<String>,
    /// The exec the decision is about, if it is one.
    pub exec: Option<ExecInfo>,
}
