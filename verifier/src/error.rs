//! The crate's one error type.
//!
//! Every variant renders as a single line that names what failed (a file and line, an image, a socket) and
//! why, because these lines end up verbatim in denial reasons that kubelet events and `ctr` show.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read.
    #[error("{}: {reason}", path.display())]
    Read { path: PathBuf, reason: String },

    /// A file named explicitly (runtime option, environment, `policy` key) does not exist.
    #[error("{}: file not found{}", path.display(), origin.as_deref().map(|o| format!(" ({o})")).unwrap_or_default())]
    NotFound {
        path: PathBuf,
        /// Where the path came from, e.g. `from $VOUCH_CONFIG`.
        origin: Option<String>,
    },

    /// A TOML document is malformed or does not fit the schema.
    #[error("{}: {}{reason}", path.display(), location.map(|(l, c)| format!("line {l}, column {c}: ")).unwrap_or_default())]
    Parse {
        path: PathBuf,
        /// 1-based line and column (in characters), when the parser knows where.
        location: Option<(usize, usize)>,
        reason: String,
    },

    #[error("invalid image reference {reference:?}: {reason}")]
    Reference { reference: String, reason: String },

    #[error("invalid pattern {pattern:?}: {reason}")]
    Pattern { pattern: String, reason: String },

    #[error("containerd unreachable at {address}: {reason}")]
    ContainerdUnreachable { address: String, reason: String },

    #[error("container {id} not found in containerd namespace {namespace}")]
    ContainerNotFound { id: String, namespace: String },

    #[error("image {name} not found in containerd namespace {namespace}")]
    ImageNotFound { name: String, namespace: String },

    /// containerd answered, but not with what we need.
    #[error("containerd at {address}: {reason}")]
    Containerd { address: String, reason: String },

    /// The container's content cannot be tied to an image in containerd's store.
    #[error("container {container}: {reason}")]
    ImageIdentity { container: String, reason: String },

    /// A container named a configuration the node configuration does not allow.
    #[error("ConfigPath {} is neither the node configuration ({}) nor listed in its allowed_configs", path.display(), node.display())]
    ConfigNotAllowed { path: PathBuf, node: PathBuf },

    #[error("verdict cache {}: {reason}", path.display())]
    Cache { path: PathBuf, reason: String },
}
