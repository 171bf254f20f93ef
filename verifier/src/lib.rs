//! vouch-verifier: everything that decides whether a container may start.
//!
//! The shim (`containerd-shim-vouch-v2`) calls [`gate::Gate::admit`] once per container start; the
//! `vouch` CLI reaches the same verdict through the same code.

pub mod gate;

pub use gate::{Denial, Evidence, Gate, GateRequest, ImageIdentity, RootfsMount, Verdict};
