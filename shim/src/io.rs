//! Process stdio: the FIFOs (or files) containerd names, joined to the container through pipes or a
//! pseudo-terminal.
//!
//! As with containerd's own runc shim, the container never holds containerd's FIFOs directly: it gets
//! pipes (or a PTY slave), and copy threads move bytes between those and the FIFOs. That lets CloseIO
//! close a container's stdin and lets Delete wait for output to drain before it reports.

use std::{
    fs::{File, OpenOptions},
    io::{self, Read, Write},
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd},
        unix::{fs::OpenOptionsExt, net::UnixListener},
    },
    path::{Path, PathBuf},
    sync::{mpsc, Arc, Mutex},
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use runc::io::{IoOption, PipedIo};

use crate::reaper::lock;

/// The stdio a process was asked to have, as containerd sent it.
#[derive(Debug, Clone, Default)]
pub struct StdioSpec {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

/// Where one output stream goes.
enum Sink {
    Fifo(PathBuf),
    File(PathBuf),
    /// A FIFO already opened for writing (see [`open_early`]), and the read end the shim opened
    /// itself when the client had not opened its own yet.
    Opened(File, Option<File>),
}

/// Opens an output FIFO for writing at create time, before runc runs, as containerd's own shim
/// does. When the client has not opened its read end yet, the shim opens one itself (never read,
/// kept until the process is deleted), so that the write end opens at once and output waits in the
/// pipe for the client: opened later, a process that exits at once could be reported before the
/// FIFO had a writer, and a client that gives up its reader at the exit (ctr's `Delete` cancels
/// readers still opening) would lose the output. Anything that fails leaves the FIFO to the copy
/// thread, which opens it blocking, as before.
fn open_early(sink: Option<Sink>) -> Option<Sink> {
    let Some(Sink::Fifo(path)) = sink else {
        return sink;
    };
    let write_nonblocking = || {
        OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
    };
    let (writer, held) = match write_nonblocking() {
        Ok(w) => (w, None),
        // ENXIO: no reader yet. Be one, then the write end opens.
        Err(_) => {
            let reader = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&path);
            match reader.and_then(|r| write_nonblocking().map(|w| (w, Some(r)))) {
                Ok(pair) => pair,
                Err(_) => return Some(Sink::Fifo(path)),
            }
        }
    };
    // Writes block again from here on: the copier must not drop output when the FIFO is
    // momentarily full.
    // SAFETY: F_GETFL/F_SETFL on a descriptor this function owns.
    let cleared = unsafe {
        let flags = libc::fcntl(writer.as_raw_fd(), libc::F_GETFL);
        flags >= 0 && libc::fcntl(writer.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK) == 0
    };
    if cleared {
        Some(Sink::Opened(writer, held))
    } else {
        Some(Sink::Fifo(path))
    }
}

/// The read end [`open_early`] holds, taken out of the sink so that it lives as long as the
/// process rather than its copy thread.
fn take_held(sink: &mut Option<Sink>) -> Option<File> {
    match sink {
        Some(Sink::Opened(_, held)) => held.take(),
        _ => None,
    }
}

fn sink(uri: &str) -> io::Result<Option<Sink>> {
    if uri.is_empty() {
        return Ok(None);
    }
    if let Some(rest) = uri.strip_prefix("file://") {
        return Ok(Some(Sink::File(PathBuf::from(rest))));
    }
    if uri.starts_with("binary://") {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "binary:// log URIs are not supported by the vouch shim",
        ));
    }
    let path = uri.strip_prefix("fifo://").unwrap_or(uri);
    Ok(Some(Sink::Fifo(PathBuf::from(path))))
}

impl Sink {
    fn open(&self) -> io::Result<File> {
        match self {
            // Blocks until containerd opens the read side; that is why it runs in the copy thread.
            Sink::Fifo(p) => OpenOptions::new().write(true).open(p),
            Sink::Opened(f, _) => f.try_clone(),
            Sink::File(p) => {
                if let Some(dir) = p.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o640)
                    .open(p)
            }
        }
    }
}

/// The shim's side of a process's stdio once the process exists.
#[derive(Default)]
pub struct ProcessIo {
    /// Where bytes for the process's stdin go (pipe or PTY master); `None` once closed.
    stdin: Arc<Mutex<Option<File>>>,
    copiers: Vec<JoinHandle<()>>,
    console: Option<File>,
    /// Read ends of output FIFOs the shim opened itself: output waits in them for the client.
    held: Vec<File>,
}

impl ProcessIo {
    /// Closes the process's stdin: it reads EOF (for a TTY, forwarding simply stops).
    pub fn close_stdin(&self) {
        lock(&self.stdin).take();
    }

    pub fn resize(&self, width: u32, height: u32) -> io::Result<()> {
        let Some(console) = &self.console else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the process has no terminal",
            ));
        };
        let ws = libc::winsize {
            ws_row: u16::try_from(height).unwrap_or(u16::MAX),
            ws_col: u16::try_from(width).unwrap_or(u16::MAX),
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize from a valid pointer on an fd we own.
        let rc = unsafe { libc::ioctl(console.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits (at most `limit`) for the output copiers to drain, as containerd's shim does before
    /// reporting a deleted process, so the last lines of output are never lost.
    pub fn drain(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        for handle in self.copiers.drain(..) {
            let (tx, rx) = mpsc::channel();
            let waiter = thread::spawn(move || {
                let _ = handle.join();
                let _ = tx.send(());
            });
            let left = deadline.saturating_duration_since(Instant::now());
            if rx.recv_timeout(left).is_err() {
                log::warn!("output of a process did not drain within {limit:?}");
                drop(waiter);
                break;
            }
        }
        self.console.take();
    }
}

/// Pipes for a process without a terminal. Returns the runc side (handed to `runc create`/`exec`)
/// and a function that starts the copy threads once runc has returned.
pub fn pipes(spec: &StdioSpec, uid: u32, gid: u32) -> io::Result<(Arc<PipedIo>, PendingCopy)> {
    let stdout = open_early(sink(&spec.stdout)?);
    let stderr = open_early(sink(&spec.stderr)?);
    // stdout and stderr always get a pipe: an unset stream is drained and dropped rather than left
    // to inherit runc's own (captured) output, which would hold runc's output open for as long as
    // the container lives.
    let opt = IoOption {
        open_stdin: !spec.stdin.is_empty(),
        open_stdout: true,
        open_stderr: true,
    };
    let piped = Arc::new(PipedIo::new(uid, gid, &opt)?);
    Ok((
        Arc::clone(&piped),
        PendingCopy {
            piped: Some(piped),
            stdin: (!spec.stdin.is_empty()).then(|| open_stdin_early(&spec.stdin)),
            stdout,
            stderr,
            console: None,
        },
    ))
}

/// Copy threads to start once the process exists.
pub struct PendingCopy {
    piped: Option<Arc<PipedIo>>,
    stdin: Option<StdinSource>,
    stdout: Option<Sink>,
    stderr: Option<Sink>,
    console: Option<File>,
}

impl PendingCopy {
    pub fn start(mut self) -> io::Result<ProcessIo> {
        let mut pio = ProcessIo::default();
        pio.held.extend(
            take_held(&mut self.stdout)
                .into_iter()
                .chain(take_held(&mut self.stderr)),
        );
        if let Some(console) = self.console.take() {
            // Terminal: stdin FIFO -> master, master -> stdout.
            if let Some(source) = self.stdin.take() {
                *lock(&pio.stdin) = Some(console.try_clone()?);
                spawn_stdin(source, Arc::clone(&pio.stdin));
            }
            let reader = console.try_clone()?;
            pio.copiers
                .push(spawn_output(Box::new(reader), self.stdout.take())?);
            pio.console = Some(console);
            return Ok(pio);
        }
        let Some(piped) = self.piped.take() else {
            return Ok(pio);
        };
        use runc::Io;
        if let Some(source) = self.stdin.take() {
            if let Some(w) = piped.stdin.as_ref().and_then(|p| p.take_wr()) {
                *lock(&pio.stdin) = Some(File::from(w));
                spawn_stdin(source, Arc::clone(&pio.stdin));
            }
        }
        if let Some(r) = piped.stdout() {
            pio.copiers.push(spawn_output(r, self.stdout.take())?);
        }
        if let Some(r) = piped.stderr() {
            pio.copiers.push(spawn_output(r, self.stderr.take())?);
        }
        Ok(pio)
    }
}

/// Where a process's stdin comes from.
enum StdinSource {
    /// The FIFO, to be opened (blocking until containerd opens its write side) by the copier.
    Path(PathBuf),
    /// The FIFO, opened for reading without blocking at create time, before runc runs, as
    /// containerd's own shim does: whatever the client writes from then on is kept in the FIFO.
    Opened(File),
}

fn open_stdin_early(path: &str) -> StdinSource {
    match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => StdinSource::Opened(f),
        Err(e) => {
            log::warn!("cannot open stdin {path} early: {e}; opening it later");
            StdinSource::Path(PathBuf::from(path))
        }
    }
}

/// Waits until the FIFO has data or its writers are gone; false means end of input. Before any
/// writer has connected, Linux reports neither, so this also waits for the client to connect.
fn wait_readable(fifo: &File) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    loop {
        let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {
                let ev = fds[0].revents().unwrap_or(PollFlags::empty());
                if ev.contains(PollFlags::POLLIN) {
                    return true;
                }
                if ev.intersects(PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL) {
                    return false;
                }
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return false,
        }
    }
}

fn spawn_stdin(source: StdinSource, target: Arc<Mutex<Option<File>>>) {
    let spawned = thread::Builder::new()
        .name("stdin".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            let (mut fifo, nonblocking) = match source {
                StdinSource::Opened(f) => (f, true),
                StdinSource::Path(path) => match File::open(&path) {
                    Ok(f) => (f, false),
                    Err(e) => {
                        log::warn!("cannot open stdin {}: {e}", path.display());
                        return;
                    }
                },
            };
            let mut buf = [0u8; 8192];
            loop {
                if nonblocking && !wait_readable(&fifo) {
                    break;
                }
                let n = match fifo.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e)
                        if e.kind() == io::ErrorKind::WouldBlock
                            || e.kind() == io::ErrorKind::Interrupted =>
                    {
                        continue
                    }
                    Err(_) => break,
                };
                let mut guard = lock(&target);
                let Some(w) = guard.as_mut() else { return };
                if w.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            // EOF on the FIFO: the process sees EOF too.
            lock(&target).take();
        });
    if let Err(e) = spawned {
        log::warn!("cannot start the stdin copier: {e}");
    }
}

fn spawn_output(mut from: Box<dyn Read + Send>, to: Option<Sink>) -> io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("output".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            let mut out = match to.as_ref().map(Sink::open) {
                Some(Ok(f)) => Some(f),
                Some(Err(e)) => {
                    log::warn!("cannot open an output stream: {e}; discarding it");
                    None
                }
                None => None,
            };
            let mut buf = [0u8; 16384];
            loop {
                let n = match from.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    // EIO from a PTY master once the last slave closed is its EOF.
                    Err(_) => break,
                };
                if let Some(w) = out.as_mut() {
                    if w.write_all(&buf[..n]).is_err() {
                        // The reader went away: keep draining so the process never blocks.
                        out = None;
                    }
                }
            }
        })
}

/// A socket runc sends a new PTY master to (`--console-socket`).
pub struct ConsoleSocket {
    _dir: tempfile::TempDir,
    path: PathBuf,
    listener: UnixListener,
}

impl ConsoleSocket {
    pub fn new() -> io::Result<Self> {
        // A short path under /tmp: bundle paths easily exceed the 108-byte socket limit.
        let dir = tempfile::Builder::new()
            .prefix("vouch-pty")
            .tempdir_in("/tmp")?;
        let path = dir.path().join("pty.sock");
        let listener = UnixListener::bind(&path)?;
        Ok(ConsoleSocket {
            _dir: dir,
            path,
            listener,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Receives the PTY master runc sent. Called after runc returned, so the connection is queued.
    pub fn receive(self, stdio: &StdioSpec) -> io::Result<PendingCopy> {
        use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
        self.listener.set_nonblocking(true)?;
        let (stream, _) = self
            .listener
            .accept()
            .map_err(|e| io::Error::new(e.kind(), format!("runc did not send a console: {e}")))?;
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut name = [0u8; 4096];
        let mut iov = [io::IoSliceMut::new(&mut name)];
        let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(io::Error::from)?;
        let mut master: Option<OwnedFd> = None;
        for c in msg.cmsgs().map_err(io::Error::from)? {
            if let ControlMessageOwned::ScmRights(fds) = c {
                for fd in fds {
                    // SAFETY: the kernel just installed this descriptor in our table for us.
                    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                    if master.is_none() {
                        master = Some(owned);
                    }
                }
            }
        }
        let master = master
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no PTY master received"))?;
        Ok(PendingCopy {
            piped: None,
            stdin: (!stdio.stdin.is_empty())
                .then(|| StdinSource::Path(PathBuf::from(&stdio.stdin))),
            stdout: open_early(sink(&stdio.stdout)?),
            stderr: None,
            console: Some(File::from(master)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_output_fifo_is_opened_at_create_time_with_or_without_its_reader() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("stdout");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        // No reader yet: the shim holds one, the output waits in the pipe for the client.
        let mut s = open_early(Some(Sink::Fifo(fifo.clone())));
        let held = take_held(&mut s);
        assert!(held.is_some());
        let Some(Sink::Opened(mut w, None)) = s else {
            panic!("not opened early")
        };
        w.write_all(b"early\n").unwrap();
        drop(w);
        // The client opens its reader after the process exited and still gets the output.
        let mut late = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap();
        let mut got = String::new();
        late.read_to_string(&mut got).unwrap();
        assert_eq!(got, "early\n");
        drop((late, held));

        // A reader already there (as ctr has before it creates the task): no held read end.
        let mut reader = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap();
        let s = open_early(Some(Sink::Fifo(fifo.clone())));
        let Some(Sink::Opened(mut w, None)) = s else {
            panic!("not opened early")
        };
        // SAFETY: F_GETFL on a descriptor the test owns.
        let flags = unsafe { libc::fcntl(w.as_raw_fd(), libc::F_GETFL) };
        assert_eq!(flags & libc::O_NONBLOCK, 0);
        w.write_all(b"ran\n").unwrap();
        drop(w);
        let mut got = String::new();
        reader.read_to_string(&mut got).unwrap();
        assert_eq!(got, "ran\n");
    }

    #[test]
    fn stdio_uris_map_to_fifos_and_files() {
        assert!(sink("").unwrap().is_none());
        assert!(matches!(
            sink("/run/x/stdout").unwrap(),
            Some(Sink::Fifo(_))
        ));
        assert!(
            matches!(sink("file:///var/log/x").unwrap(), Some(Sink::File(p)) if p == Path::new("/var/log/x"))
        );
        assert!(sink("binary:///bin/logger?x=1").is_err());
    }

    #[test]
    fn stdin_opened_early_keeps_what_the_client_writes_before_the_copier_runs() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("stdin");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let source = open_stdin_early(fifo.to_str().unwrap());
        assert!(matches!(source, StdinSource::Opened(_)));
        // The client connects and writes, and goes away, before the copier starts.
        let mut w = OpenOptions::new().write(true).open(&fifo).unwrap();
        w.write_all(b"line one\n").unwrap();
        drop(w);
        let (r, pw) = nix::unistd::pipe().unwrap();
        let target = Arc::new(Mutex::new(Some(File::from(pw))));
        spawn_stdin(source, Arc::clone(&target));
        let mut got = String::new();
        File::from(r).read_to_string(&mut got).unwrap();
        assert_eq!(got, "line one\n");
    }

    #[test]
    fn output_copier_moves_bytes_to_a_file_and_finishes_at_eof() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.log");
        let (r, mut w) = nix::unistd::pipe()
            .map(|(r, w)| (File::from(r), File::from(w)))
            .unwrap();
        let h = spawn_output(Box::new(r), Some(Sink::File(target.clone()))).unwrap();
        w.write_all(b"hello\n").unwrap();
        drop(w);
        h.join().unwrap();
        assert_eq!(std::fs::read_to_string(target).unwrap(), "hello\n");
    }
}
