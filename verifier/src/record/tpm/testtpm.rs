//! A real software TPM for tests: `swtpm socket --tpm2` on free loopback ports, killed by its
//! PID on drop. Built for tests and with the `test-support` feature: start one with
//! `SwTpm::start()` and pass its `tcti` to [`super::record_event`]; [`checkquote`] runs tpm2-tools'
//! independent check on what that returns.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A running swtpm (TPM 2.0, started with `startup-clear`).
#[derive(Debug)]
pub struct SwTpm {
    /// The TCTI to reach it: `swtpm:host=127.0.0.1,port=P`.
    pub tcti: String,
    /// The data port (the control port is `port + 1`).
    pub port: u16,
    /// The TPM's state directory (NV: persistent keys survive [`SwTpm::restart`]).
    pub state_dir: PathBuf,
    child: Option<Child>,
}

impl SwTpm {
    /// Starts a swtpm with a fresh state directory. Panics when it cannot (a test helper).
    pub fn start() -> SwTpm {
        static N: AtomicU32 = AtomicU32::new(0);
        let state_dir = std::env::temp_dir().join(format!(
            "vouch-swtpm-{}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&state_dir).expect("create the swtpm state directory");
        let mut tpm = SwTpm {
            tcti: String::new(),
            port: 0,
            state_dir,
            child: None,
        };
        tpm.launch();
        tpm
    }

    /// Stops it (SIGTERM by PID, then SIGKILL after 2 s) and waits for it. Idempotent.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(2);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => return,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(10))
                    }
                    _ => break,
                }
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops it and starts it again on the same state: a TPM Reset (`startup-clear`), so the
    /// reset count goes up, PCRs are zero again and persistent objects remain. The ports, and so
    /// `tcti`, may change.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Starts swtpm on the state directory, on a free port pair, retrying on a clash.
    fn launch(&mut self) {
        // One launch at a time in this process: parallel tests would race for the same ports.
        static LAUNCH: Mutex<()> = Mutex::new(());
        let _guard = LAUNCH.lock().unwrap_or_else(|e| e.into_inner());
        let mut last_error = String::new();
        for _ in 0..20 {
            let Some(port) = free_port_pair() else {
                continue;
            };
            let log = self.state_dir.join("swtpm.log");
            let spawned = Command::new("swtpm")
                .arg("socket")
                .arg("--tpm2")
                .arg("--tpmstate")
                .arg(format!("dir={}", self.state_dir.display()))
                .arg("--server")
                .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
                .arg("--ctrl")
                .arg(format!("type=tcp,port={},bindaddr=127.0.0.1", port + 1))
                .arg("--flags")
                .arg("not-need-init,startup-clear")
                .arg("--log")
                .arg(format!("file={}", log.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn();
            let mut child = match spawned {
                Ok(c) => c,
                Err(e) => panic!("cannot run swtpm (is it installed?): {e}"),
            };
            match wait_ready(&mut child, port) {
                Ok(()) => {
                    self.port = port;
                    self.tcti = format!("swtpm:host=127.0.0.1,port={port}");
                    self.child = Some(child);
                    return;
                }
                Err(e) => {
                    last_error = e;
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
        }
        panic!("swtpm did not start: {last_error}");
    }

    /// The state directory.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }
}

impl Drop for SwTpm {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.state_dir);
    }
}

/// A port P with P and P+1 both free on 127.0.0.1 right now.
fn free_port_pair() -> Option<u16> {
    let a = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).ok()?;
    let port = a.local_addr().ok()?.port();
    let next = port.checked_add(1)?;
    let _b = TcpListener::bind((Ipv4Addr::LOCALHOST, next)).ok()?;
    Some(port)
}

/// Waits until swtpm accepts on both ports (or exits, or 10 s pass).
fn wait_ready(child: &mut Child, port: u16) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("swtpm exited ({status}), port {port} taken?"));
        }
        let up = |p: u16| {
            TcpStream::connect_timeout(&(Ipv4Addr::LOCALHOST, p).into(), Duration::from_millis(200))
                .is_ok()
        };
        // Another process's swtpm may hold the ports we picked: they must be our child's.
        if up(port + 1)
            && up(port)
            && listens_on(child.id(), port)
            && listens_on(child.id(), port + 1)
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("swtpm not accepting on port {port} after 10 s"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether process `pid` holds the listening TCP socket on 127.0.0.1:`port` (its socket inode,
/// from `/proc/net/tcp`, among the process's descriptors).
pub fn listens_on(pid: u32, port: u16) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        return false;
    };
    let wanted = format!(":{port:04X}");
    let inodes: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (local, state, inode) = (f.get(1)?, f.get(3)?, f.get(9)?);
            (local.ends_with(&wanted) && *state == "0A").then(|| format!("socket:[{inode}]"))
        })
        .collect();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .is_ok_and(|t| inodes.iter().any(|i| t.as_os_str() == i.as_str()))
    })
}

/// Runs the independent checker, `tpm2_checkquote`, on `evidence` (its AK, quote, signature and PCR
/// value written as files into `dir`) with `nonce` (hex) as the expected qualifying data.
pub fn checkquote(evidence: &super::TpmEvidence, nonce: &str, dir: &Path) -> std::process::Output {
    use base64::Engine;
    let b64 = |s: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .expect("base64 in the evidence")
    };
    std::fs::write(dir.join("ak.pem"), &evidence.ak_pem).expect("write ak.pem");
    std::fs::write(dir.join("attest.bin"), b64(&evidence.attest)).expect("write attest.bin");
    std::fs::write(dir.join("sig.bin"), b64(&evidence.signature)).expect("write sig.bin");
    std::fs::write(
        dir.join("pcrvalue.bin"),
        hex::decode(&evidence.pcr_value).expect("hex pcr_value"),
    )
    .expect("write pcrvalue.bin");
    Command::new("tpm2_checkquote")
        .current_dir(dir)
        .args([
            "-u",
            "ak.pem",
            "-m",
            "attest.bin",
            "-s",
            "sig.bin",
            "-g",
            "sha256",
        ])
        .args(["-q", nonce, "-f", "pcrvalue.bin"])
        .args(["-l", &format!("sha256:{}", evidence.pcr)])
        .output()
        .expect("run tpm2_checkquote")
}
