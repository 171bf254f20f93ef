//! Driving the runc binary.
//!
//! The `runc` crate builds the command lines; this module supplies the executor it runs them with.
//! The shim's signal thread reaps every child, so a plain `Child::wait` would race it and lose the
//! exit status: [`ReaperSpawner`] waits through [`crate::reaper`] instead.

use std::{
    io::Read,
    os::unix::process::ExitStatusExt,
    path::{Path, PathBuf},
    process::{Command, ExitStatus},
    sync::Arc,
    thread,
    time::Instant,
};

use runc::{options::GlobalOpts, Runc, Spawner};

use crate::{options::RuntimeOptions, reaper};

/// Where runc keeps container state unless the runtime options say otherwise (as the Go shim does).
pub const DEFAULT_RUNC_ROOT: &str = "/run/containerd/runc";

#[derive(Debug)]
pub struct ReaperSpawner;

impl Spawner for ReaperSpawner {
    fn execute(&self, mut cmd: Command) -> runc::Result<(ExitStatus, u32, String, String)> {
        let since = Instant::now();
        let mut child = cmd
            .spawn()
            .map_err(runc::error::Error::ProcessSpawnFailed)?;
        let pid = child.id();
        let stderr_reader = child
            .stderr
            .take()
            .map(|e| thread::spawn(move || read_capped(e, "stderr")));
        let stdout = match child.stdout.take() {
            Some(out) => read_capped(out, "stdout"),
            None => Ok(Vec::new()),
        };
        let stderr = stderr_reader
            .and_then(|t| t.join().ok())
            .unwrap_or_else(|| Ok(Vec::new()));
        drop(child);
        let code = reaper::global().wait(pid as i32, since);
        let (stdout, stderr) = match (stdout, stderr) {
            (Ok(out), Ok(err)) => (out, err),
            (Err(e), _) | (_, Err(e)) => {
                return Err(runc::error::Error::Other(Box::new(std::io::Error::other(
                    e,
                ))))
            }
        };
        Ok((
            exit_status(code),
            pid,
            String::from_utf8_lossy(&stdout).into_owned(),
            String::from_utf8_lossy(&stderr).into_owned(),
        ))
    }
}

/// Most bytes of runc's stdout or stderr read: its answers (`state`, `ps`, `events --stats`) and
/// errors are far smaller, and a container that inherited the pipe could write without end.
const MAX_OUTPUT: u64 = 4 * 1024 * 1024;

/// Reads `pipe` to its end, at most [`MAX_OUTPUT`] bytes. Past that it is an error, and the pipe is
/// closed (dropped) so that the writer stops instead of being drained forever. A read error ends
/// the output where it happened, as runc's own failure will then say more.
fn read_capped(pipe: impl Read, what: &str) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    let _ = pipe.take(MAX_OUTPUT + 1).read_to_end(&mut buf);
    if buf.len() as u64 > MAX_OUTPUT {
        return Err(format!("runc wrote more than {MAX_OUTPUT} bytes to {what}"));
    }
    Ok(buf)
}

/// Rebuilds a wait status from the monitor's exit code (128+n stands for signal n).
fn exit_status(code: i32) -> ExitStatus {
    if code > 128 && code < 128 + 65 {
        ExitStatus::from_raw(code - 128)
    } else {
        ExitStatus::from_raw((code & 0xff) << 8)
    }
}

/// The runc state directory for a namespace.
pub fn runc_root(opts: &RuntimeOptions, namespace: &str) -> PathBuf {
    let base = if opts.root.is_empty() {
        DEFAULT_RUNC_ROOT
    } else {
        opts.root.as_str()
    };
    Path::new(base).join(namespace)
}

/// A runc client for one container: its state under the namespace's root, its log in the bundle.
pub fn client(opts: &RuntimeOptions, namespace: &str, bundle: &Path) -> runc::Result<Runc> {
    let binary = if opts.binary_name.is_empty() {
        "runc"
    } else {
        opts.binary_name.as_str()
    };
    let mut g = GlobalOpts::new()
        .command(binary)
        .root(runc_root(opts, namespace))
        .log(bundle.join("log.json"))
        .log_json()
        .systemd_cgroup(opts.systemd_cgroup);
    g.custom_spawner(Arc::new(ReaperSpawner));
    g.build()
}

/// runc invocations the `runc` crate cannot make without re-encoding our input (exec process specs
/// and resource updates arrive as JSON and are passed through byte for byte) or without a strict
/// parse of its output (`events --stats`).
#[derive(Debug, Clone)]
pub struct RawRunc {
    binary: PathBuf,
    global: Vec<String>,
}

impl RawRunc {
    pub fn new(opts: &RuntimeOptions, namespace: &str, bundle: &Path) -> RawRunc {
        let binary = if opts.binary_name.is_empty() {
            PathBuf::from("runc")
        } else {
            PathBuf::from(&opts.binary_name)
        };
        let mut global = vec![
            "--root".to_string(),
            runc_root(opts, namespace).to_string_lossy().into_owned(),
            "--log".to_string(),
            bundle.join("log.json").to_string_lossy().into_owned(),
            "--log-format".to_string(),
            "json".to_string(),
        ];
        if opts.systemd_cgroup {
            global.push("--systemd-cgroup".into());
        }
        RawRunc { binary, global }
    }

    /// Runs `runc <global flags> <args>`, with the process's stdio wired by `io` when given.
    /// Returns stdout on success, the error text otherwise.
    pub fn run(&self, args: &[&str], io: Option<&dyn runc::Io>) -> Result<String, String> {
        let mut cmd = Command::new(&self.binary);
        cmd.args(&self.global)
            .args(args)
            .env_remove("NOTIFY_SOCKET")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        if let Some(io) = io {
            io.set(&mut cmd)
                .map_err(|e| format!("cannot wire stdio: {e}"))?;
        }
        let res = ReaperSpawner.execute(cmd);
        if let Some(io) = io {
            io.close_after_start();
        }
        let (status, _, stdout, stderr) = res.map_err(|e| e.to_string())?;
        if status.success() {
            Ok(stdout)
        } else {
            let text = if stderr.trim().is_empty() {
                &stdout
            } else {
                &stderr
            };
            Err(text
                .trim()
                .lines()
                .last()
                .unwrap_or("runc failed")
                .to_string())
        }
    }
}

/// Length of runc's JSON log, to tell new errors from old ones.
pub fn log_len(bundle: &Path) -> u64 {
    std::fs::metadata(bundle.join("log.json"))
        .map(|m| m.len())
        .unwrap_or(0)
}

/// The last error runc logged after byte `offset` of its JSON log.
pub fn logged_error_since(bundle: &Path, offset: u64) -> Option<String> {
    let tail = log_tail(&bundle.join("log.json"), offset)?;
    last_error_in(&String::from_utf8_lossy(&tail))
}

/// Most bytes of runc's JSON log read, from its end: the last error is all that is wanted, and
/// the log grows with every runc call of the container's life.
const MAX_LOG_TAIL: u64 = 256 * 1024;

/// The log from byte `offset` on, or only its last [`MAX_LOG_TAIL`] bytes (from the first line
/// that starts within them) when there is more.
fn log_tail(path: &Path, offset: u64) -> Option<Vec<u8>> {
    use std::io::{Seek, SeekFrom};
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let start = offset.max(len.saturating_sub(MAX_LOG_TAIL));
    file.seek(SeekFrom::Start(start)).ok()?;
    let mut tail = Vec::new();
    file.take(MAX_LOG_TAIL).read_to_end(&mut tail).ok()?;
    if start > offset {
        // Started inside a line: its end is not a record.
        let first = tail
            .iter()
            .position(|b| *b == b'\n')
            .map_or(tail.len(), |i| i + 1);
        tail.drain(..first);
    }
    Some(tail)
}

/// The most useful description of a failed runc call: the last error runc wrote to its JSON log
/// (runc's own stderr goes to the container's stdio during create and exec), else the error itself.
pub fn describe_error(bundle: &Path, err: &runc::error::Error) -> String {
    if let Some(msg) = last_logged_error(&bundle.join("log.json")) {
        return msg;
    }
    match err {
        runc::error::Error::CommandFailed {
            stderr,
            stdout,
            status,
        } => {
            let text = if stderr.trim().is_empty() {
                stdout
            } else {
                stderr
            };
            let text = text.trim();
            if text.is_empty() {
                format!("runc failed with {status}")
            } else {
                text.lines().last().unwrap_or(text).to_string()
            }
        }
        other => other.to_string(),
    }
}

fn last_logged_error(path: &Path) -> Option<String> {
    let tail = log_tail(path, 0)?;
    last_error_in(&String::from_utf8_lossy(&tail))
}

fn last_error_in(text: &str) -> Option<String> {
    text.lines().rev().find_map(|line| {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        if v.get("level")?.as_str()? == "error" {
            v.get("msg")?.as_str().map(str::to_string)
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_round_trip_through_wait_statuses() {
        assert_eq!(exit_status(0).code(), Some(0));
        assert_eq!(exit_status(7).code(), Some(7));
        assert_eq!(exit_status(137).signal(), Some(9));
    }

    #[test]
    fn runc_json_log_gives_the_last_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("log.json"),
            "{\"level\":\"warning\",\"msg\":\"w\"}\n{\"level\":\"error\",\"msg\":\"exec: \\\"nope\\\": executable file not found in $PATH\"}\n",
        )
        .unwrap();
        let err = runc::error::Error::NotFound;
        assert_eq!(
            describe_error(dir.path(), &err),
            "exec: \"nope\": executable file not found in $PATH"
        );
    }

    #[test]
    fn only_the_end_of_a_long_log_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log.json");
        let old = "{\"level\":\"error\",\"msg\":\"old\"}\n";
        let mut text = old.repeat(2 * MAX_LOG_TAIL as usize / old.len());
        text.push_str(&format!(
            "{{\"level\":\"warning\",\"msg\":\"{}\"}}\n",
            "x".repeat(MAX_LOG_TAIL as usize / 2)
        ));
        text.push_str("{\"level\":\"error\",\"msg\":\"new\"}\n");
        std::fs::write(&log, &text).unwrap();
        let tail = log_tail(&log, 0).unwrap();
        assert!(tail.len() as u64 <= MAX_LOG_TAIL);
        assert_eq!(last_logged_error(&log).as_deref(), Some("new"));
        assert_eq!(
            logged_error_since(dir.path(), text.len() as u64).as_deref(),
            None
        );
        // A log that ends in a line longer than the window: nothing to say, nothing read past it.
        std::fs::write(
            &log,
            format!("{old}{}\n", "y".repeat(2 * MAX_LOG_TAIL as usize)),
        )
        .unwrap();
        assert_eq!(last_logged_error(&log), None);
    }

    #[test]
    fn output_past_the_cap_is_refused_and_its_pipe_closed() {
        let big = std::io::repeat(b'x');
        assert_eq!(
            read_capped(big, "stdout").unwrap_err(),
            format!("runc wrote more than {MAX_OUTPUT} bytes to stdout")
        );
        assert_eq!(read_capped(&b"{}"[..], "stdout").unwrap(), b"{}");
        // A writer that never stops (a container holding runc's pipe) is cut off, not drained: the
        // pipe is closed, and the writer dies of SIGPIPE.
        let mut yes = Command::new("yes")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let out = yes.stdout.take().unwrap();
        assert!(read_capped(out, "stdout").is_err());
        assert_eq!(yes.wait().unwrap().signal(), Some(13));
    }

    #[test]
    fn runc_root_is_per_namespace() {
        let o = RuntimeOptions::default();
        assert_eq!(
            runc_root(&o, "k8s.io"),
            PathBuf::from("/run/containerd/runc/k8s.io")
        );
    }
}
