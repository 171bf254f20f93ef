//! `containerd-shim-vouch-v2`: a containerd runtime shim (task API v2) that runs containers with runc
//! and asks the vouch gate, before every `runc create`, whether the container may start.

mod container;
mod error;
mod events;
mod gate;
mod io;
mod metrics;
mod mount;
mod oom;
mod options;
mod process;
mod reaper;
mod runc;
mod service;
mod task;

const RUNTIME_ID: &str = "io.containerd.vouch.v2";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args
        .iter()
        .skip(1)
        .any(|a| a == "-v" || a == "--v" || a == "-version" || a == "--version")
    {
        println!("containerd-shim-vouch-v2:");
        println!("  Version:  {}", env!("CARGO_PKG_VERSION"));
        println!("  Runtime:  {RUNTIME_ID}");
        if let Some(rev) = option_env!("VOUCH_REVISION") {
            println!("  Revision: {rev}");
        }
        return;
    }
    containerd_shim::run::<service::Service>(RUNTIME_ID, None);
}
