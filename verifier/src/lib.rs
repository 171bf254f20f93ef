//! vouch-verifier: everything that decides whether a container may start.
//!
//! The shim (`containerd-shim-vouch-v2`) calls [`gate::Gate::admit`] once per container start (and
//! exec); the `vouch` CLI reaches the same verdict through the same code. A decision is a pipeline
//! of stages, each a folder with one entry point over the facts gathered so far ([`facts`]); the
//! driver, [`node::NodeGate`], only sequences them:
//!
//! 1. [`identity`]: which content the container really has (its snapshot tied to an image's
//!    layers), which spec runc will run (the exact bytes, on the measured rootfs), which config
//!    applies, and its pod, from containerd's own records;
//! 2. [`policy`]: the matching rules and exemptions ([`policy::Judgement`] turns each rule's
//!    violation into a refusal or an audit line);
//! 3. [`supply_chain`]: signatures and SBOM rules, found in registries and verified offline, with a
//!    verdict cache;
//! 4. [`spec`]: the OCI spec and the host (Pod Security Standards, privileges, hooks, exec limits,
//!    kernel, modules, LSMs, runc's digest);
//! 5. [`rootfs`]: the measured root filesystem against the image or the SBOM, and mounts that
//!    would hide measured code;
//! 6. [`record`]: the signed, chained, TPM-quoted record of every decision.
//!
//! Below the stages: [`facts`] (what stages learn and pass on), [`config`], [`reference`] (image
//! names), [`dsse`] (DSSE and in-toto, shared by signature checking and the record), [`error`]. Beside
//! them, [`publish`]: signing, attesting and generating SBOMs (`vouch sign`, `vouch attest`,
//! `vouch sbom`). Nothing here imports the CLI, and no stage imports the driver.
//!
//! The modules of the stages are also re-exported at the crate root under their own names
//! (`registry`, `signature`, `attestlog`, ...).

pub mod config;
pub mod dsse;
pub mod error;
pub mod facts;
pub mod gate;
mod glob;
pub mod identity;
pub mod node;
pub mod policy;
pub mod publish;
pub mod record;
pub mod reference;
pub mod rootfs;
pub mod spec;
pub mod supply_chain;
mod tomlfile;

pub use policy::pattern;
pub use publish::{attest, sbomgen, sign};
pub use record::{attestlog, tpm};
pub use rootfs::{baseline, measure};
pub use spec::host;
pub use supply_chain::{
    attestation, cache, cosign_key, keys, license, material, registry, rego, sbom, sbom_rule,
    signature, sigstore, verify,
};

pub use error::{Error, Result};
pub use gate::{
    Denial, Evidence, ExecRequest, Gate, GateRequest, ImageIdentity, RootfsMount, Verdict,
};
pub use node::NodeGate;
