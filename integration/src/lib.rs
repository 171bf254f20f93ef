//! Test rig for vouch: a private containerd, a loopback registry with small busybox images, and
//! a CRI client, all isolated under a fresh temporary directory and torn down in `Drop`.
//!
//! ```no_run
//! let rig = vouch_integration::Rig::start()?;
//! let ns = rig.namespace();
//! rig.pull(&ns, &rig.image("busybox:latest"))?;
//! let out = rig.ctr(&ns, &["run", "--rm", &rig.image("busybox:latest"), "c1", "echo", "hi"])?;
//! assert!(out.status.success());
//! # Ok::<(), anyhow::Error>(())
//! ```
//!
//! Every daemon listens on loopback (a port picked by the kernel) or on a unix socket under the
//! rig's directory, and is stopped by its PID. Several rigs may run at once, in one process or
//! in many.

pub mod api;
mod cri;
mod image;
mod procs;
mod rig;

pub use cri::{cri_log_text, Cri};
pub use image::{build_busybox_layout, APPLETS, SHELL_IMAGES};
pub use k8s_cri::v1 as cri_api;
pub use procs::{mounts_under, pids_with_address, shim_pids_with_address};
pub use rig::{Rig, RigOptions, StartTimings, CRI_NAMESPACE, VOUCH_RUNTIME};
