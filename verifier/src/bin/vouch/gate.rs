//! `vouch gate`: what the shim runs for every container start and exec. The request arrives as JSON
//! on stdin and the verdict leaves as JSON on stdout; the log goes to stderr as `LEVEL message`
//! lines, which the shim passes on to containerd's log.

use std::process::ExitCode;

/// The gate's log: one line per record on stderr, `LEVEL message`, which the shim reads and passes
/// on to containerd's log with the same level. Nothing else goes to stderr.
struct GateLog {
    level: log::LevelFilter,
}

impl log::Log for GateLog {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &log::Record<'_>) {
        use std::io::Write;
        if !self.enabled(record.metadata()) {
            return;
        }
        let text = record.args().to_string().replace(['\n', '\r'], " ");
        let _ = writeln!(std::io::stderr().lock(), "{} {text}", record.level());
    }

    fn flush(&self) {}
}

/// `$VOUCH_LOG_LEVEL` (the shim passes its own), else `info`.
fn gate_log_level() -> log::LevelFilter {
    std::env::var(vouch_verifier::gate::LOG_LEVEL_ENV)
        .ok()
        .and_then(|l| l.parse().ok())
        .unwrap_or(log::LevelFilter::Info)
}

/// `vouch gate`: one decision, the request as JSON on stdin, the verdict as JSON on stdout.
pub fn run() -> ExitCode {
    use std::io::{Read, Write};
    use vouch_verifier::{Gate, GateRequest, NodeGate};
    let level = gate_log_level();
    if log::set_logger(Box::leak(Box::new(GateLog { level }))).is_ok() {
        log::set_max_level(level);
    }
    // tpm2-tss writes its own ERROR lines to stderr when a TPM cannot be reached; the gate reports
    // that itself, in one line. An operator who sets TSS2_LOG gets tpm2-tss's logs back. Set before
    // any thread starts.
    if std::env::var_os("TSS2_LOG").is_none() {
        std::env::set_var("TSS2_LOG", "all+none");
    }
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin()
        .take(64 * 1024 * 1024)
        .read_to_end(&mut input)
    {
        eprintln!("vouch gate: cannot read the request: {e}");
        return ExitCode::from(crate::EXIT_INVALID);
    }
    let request: GateRequest = match serde_json::from_slice(&input) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vouch gate: malformed request: {e}");
            return ExitCode::from(crate::EXIT_INVALID);
        }
    };
    let verdict = NodeGate::for_starts().admit(&request);
    let bytes = match serde_json::to_vec(&verdict) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("vouch gate: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    if out.write_all(&bytes).and_then(|_| out.flush()).is_err() {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
