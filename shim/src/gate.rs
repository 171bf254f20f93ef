//! Running the gate in a short-lived `vouch gate` process.
//!
//! The shim lives as long as its containers; the verifier's work (containerd lookups today,
//! registry fetches, signature and SBOM checks later) is bursty, allocates, and needs a large body
//! of code (gRPC, TLS, parsers). Running it in the `vouch` binary keeps the long-lived shim small
//! (its resident memory is what a node pays per pod), isolates a verifier crash from the running
//! containers, returns the verifier's memory to the system at once, and makes `vouch verify` and a
//! container start one code path. The child gets the request as JSON on stdin and answers with the
//! verdict as JSON on stdout; any failure of that exchange is a denial.

use std::{
    io::{Read, Write},
    process::{Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use std::path::{Path, PathBuf};

use vouch_verifier::{Denial, Gate, GateRequest, Verdict};

use crate::reaper;

/// The verifier binary, installed next to the shim.
const VERIFIER: &str = "vouch";
/// A verdict is small; anything larger is not one.
const MAX_VERDICT: u64 = 1024 * 1024;
/// A gate that has not answered by then is killed and the start refused.
const GATE_TIMEOUT: Duration = Duration::from_secs(120);

pub struct ProcessGate;

fn refuse(request: &GateRequest, reason: String) -> Verdict {
    Verdict::Deny(Denial {
        subject: request
            .image
            .as_ref()
            .map(|i| i.subject())
            .unwrap_or_else(|| format!("container {}", request.container_id)),
        reason,
        rule: "gate".into(),
    })
}

impl Gate for ProcessGate {
    fn admit(&self, request: &GateRequest) -> Verdict {
        match run_child(request) {
            Ok(v) => v,
            Err(reason) => refuse(request, format!("the verifier process failed: {reason}")),
        }
    }
}

/// Most of the gate's log passed on per start; past it, lines are read and dropped.
const MAX_LOG_BYTES: usize = 256 * 1024;
/// Longest log line passed on; a longer one is cut.
const MAX_LOG_LINE: usize = 4096;

/// Passes each line the gate logs to containerd's log (the shim's), at the gate's level, naming
/// the container; returns the last line, for the error when the gate fails.
fn relay_log(stderr: impl Read, container: &str) -> String {
    use std::io::BufRead;
    let mut reader = std::io::BufReader::new(stderr);
    let mut passed = 0usize;
    let mut last = String::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut reader)
            .take(MAX_LOG_LINE as u64)
            .read_until(b'\n', &mut line)
        {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if line.last() != Some(&b'\n') {
            // Cut: drop the rest of this line, in bounded pieces.
            let mut rest = Vec::new();
            while let Ok(n) = (&mut reader)
                .take(MAX_LOG_LINE as u64)
                .read_until(b'\n', &mut rest)
            {
                if n == 0 || rest.last() == Some(&b'\n') {
                    break;
                }
                rest.clear();
            }
        }
        passed += line.len();
        if passed > MAX_LOG_BYTES {
            continue;
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end();
        if text.is_empty() {
            continue;
        }
        let (level, message) = vouch_verifier::gate::parse_log_line(text);
        log::log!(level, "gate: {message} (container {container})");
        last = message.to_string();
    }
    last
}

/// `vouch` next to the shim's own binary, else on `PATH`.
fn verifier_binary() -> Result<PathBuf, String> {
    let beside = std::fs::read_link("/proc/self/exe")
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join(VERIFIER)));
    if let Some(p) = beside.filter(|p| p.is_file()) {
        return Ok(p);
    }
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join(VERIFIER))
                .find(|p| Path::new(p).is_file())
        })
        .ok_or_else(|| {
            "the vouch binary is neither next to containerd-shim-vouch-v2 nor on PATH".to_string()
        })
}

fn run_child(request: &GateRequest) -> Result<Verdict, String> {
    let input = serde_json::to_vec(request).map_err(|e| e.to_string())?;
    let binary = verifier_binary()?;
    let since = Instant::now();
    let mut child = Command::new(&binary)
        .arg("gate")
        .env(
            vouch_verifier::gate::LOG_LEVEL_ENV,
            log::max_level().to_string(),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start it: {e}"))?;
    let pid = child.id() as i32;
    let (done_tx, done_rx) = mpsc::channel::<()>();
    thread::Builder::new()
        .name("gate-timer".into())
        .stack_size(32 * 1024)
        .spawn(move || {
            if done_rx.recv_timeout(GATE_TIMEOUT).is_err() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        })
        .map_err(|e| e.to_string())?;
    let container = request.container_id.clone();
    let errors = child
        .stderr
        .take()
        .map(|e| thread::spawn(move || relay_log(e, &container)));
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let writer = thread::spawn(move || stdin.write_all(&input));
    let mut output = Vec::new();
    if let Some(out) = child.stdout.take() {
        out.take(MAX_VERDICT)
            .read_to_end(&mut output)
            .map_err(|e| e.to_string())?;
    }
    drop(child);
    let code = reaper::global().wait(pid, since);
    let _ = done_tx.send(());
    let _ = writer.join();
    let last = errors.and_then(|t| t.join().ok()).unwrap_or_default();
    if code != 0 {
        return Err(format!(
            "{} exited with status {code}: {last}",
            binary.display()
        ));
    }
    serde_json::from_slice(&output).map_err(|e| format!("unreadable verdict: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_survive_the_json_round_trip() {
        let deny = Verdict::Deny(Denial {
            subject: "r@sha256:00".into(),
            reason: "why".into(),
            rule: "x".into(),
        });
        let text = serde_json::to_string(&deny).unwrap();
        assert_eq!(serde_json::from_str::<Verdict>(&text).unwrap(), deny);
        let allow = Verdict::Allow(Default::default());
        let text = serde_json::to_string(&allow).unwrap();
        assert_eq!(serde_json::from_str::<Verdict>(&text).unwrap(), allow);
    }

    #[test]
    fn the_gates_log_is_relayed_line_by_line_bounded_and_its_last_line_kept() {
        let long = "x".repeat(1 << 20);
        let input = format!("INFO first\nDEBUG {long}\nnot a level\nWARN last one\n");
        assert_eq!(relay_log(input.as_bytes(), "c1"), "last one");
        assert_eq!(relay_log(&b""[..], "c1"), "");
        // A last line without its newline still counts.
        assert_eq!(relay_log(&b"ERROR boom"[..], "c1"), "boom");
    }

    #[test]
    fn a_failed_exchange_is_a_denial_naming_the_container() {
        let req = GateRequest {
            container_id: "c9".into(),
            ..Default::default()
        };
        match refuse(&req, "boom".into()) {
            Verdict::Deny(d) => {
                assert_eq!(d.subject, "container c9");
                assert_eq!(d.rule, "gate");
            }
            other => panic!("{other:?}"),
        }
    }
}
