//! Sending records to a collector: after the append, outside the log's lock, within a time budget.
//!
//! `<log>.collector` remembers the last `seq` the collector acknowledged (a 2xx answer) and where the
//! next record starts, so a start first sends the backlog a down collector left behind (at most
//! [`MAX_RECORDS_PER_START`] records per start), oldest first. Delivery is at least once: a collector
//! should deduplicate by `seq` and payload digest.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use super::append::{decode_seq, sibling};
use super::lines::{Line, Lines};
use super::MAX_LINE_LEN;

/// A backlog drains over several starts rather than holding one.
pub const MAX_RECORDS_PER_START: usize = 32;
/// Tries per record.
const TRIES: u32 = 3;
const BACKOFF: Duration = Duration::from_millis(100);

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct State {
    /// The last `seq` acknowledged.
    acked_seq: Option<u64>,
    /// Byte offset in the log after that record.
    offset: u64,
}

fn read_state(path: &Path) -> State {
    let mut bytes = Vec::new();
    match File::open(path).and_then(|f| f.take(4096).read_to_end(&mut bytes)) {
        Ok(_) => serde_json::from_slice(&bytes).unwrap_or_default(),
        Err(_) => State::default(),
    }
}

fn write_state(path: &Path, state: &State) -> Result<(), String> {
    let tmp = sibling(path, ".tmp");
    let bytes = serde_json::to_vec(state).map_err(|e| e.to_string())?;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(&bytes))
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Sends the records the collector has not acknowledged, oldest first, stopping at the first that
/// fails [`TRIES`] times or when `budget` is spent. Never blocks longer than `budget` (plus the
/// connect of an in-flight try, itself bounded by what remains of the budget).
pub(crate) fn send(log: &Path, url: &str, budget: Duration) -> Result<(), String> {
    let deadline = Instant::now() + budget;
    crate::registry::off_runtime(|| send_until(log, url, deadline))
}

fn send_until(log: &Path, url: &str, deadline: Instant) -> Result<(), String> {
    let lock_path = sibling(log, ".collector.lock");
    let mut lock_file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&lock_path)
        .map_err(|e| format!("{}: {e}", lock_path.display()))?;
    // Another start sending the backlog will send this record too, or the next start will.
    let _lock = loop {
        match Flock::lock(lock_file, FlockArg::LockExclusiveNonblock) {
            Ok(l) => break l,
            Err((f, Errno::EWOULDBLOCK)) | Err((f, Errno::EINTR)) => {
                if Instant::now() + Duration::from_millis(20) >= deadline {
                    return Err("another start holds the collector: left to it".into());
                }
                lock_file = f;
                sleep(Duration::from_millis(20));
            }
            Err((_, e)) => return Err(format!("{}: cannot lock: {e}", lock_path.display())),
        }
    };

    let state_path = sibling(log, ".collector");
    let mut state = read_state(&state_path);
    let mut file = File::open(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let len = file
        .metadata()
        .map_err(|e| format!("{}: {e}", log.display()))?
        .len();
    if state.offset > len {
        // The log was replaced: start over.
        state = State::default();
    }
    file.seek(SeekFrom::Start(state.offset))
        .map_err(|e| format!("{}: {e}", log.display()))?;
    let client = reqwest::blocking::Client::builder()
        .user_agent(concat!("vouch/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;

    let mut lines = Lines::new(file, MAX_LINE_LEN, state.offset);
    let mut sent = 0;
    while sent < MAX_RECORDS_PER_START {
        let line = match lines.next() {
            None => break,
            Some(Err(e)) => return Err(format!("{}: {e}", log.display())),
            // Being written, or torn: not a record (yet).
            Some(Ok(Line::Torn(_))) => break,
            Some(Ok(Line::TooLong(_))) => {
                state.offset = lines.offset;
                continue;
            }
            Some(Ok(Line::Complete(line))) => line,
        };
        let Some((seq, _)) = decode_seq(&line) else {
            state.offset = lines.offset;
            continue;
        };
        if state.acked_seq.is_some_and(|a| seq <= a) {
            state.offset = lines.offset;
            continue;
        }
        post(&client, url, &line, deadline).map_err(|e| {
            format!("collector {url}: record {seq} not delivered (it stays in the backlog): {e}")
        })?;
        state.acked_seq = Some(seq);
        state.offset = lines.offset;
        write_state(&state_path, &state)?;
        sent += 1;
    }
    // Skipped lines move the offset too.
    write_state(&state_path, &state)
}

fn post(
    client: &reqwest::blocking::Client,
    url: &str,
    line: &[u8],
    deadline: Instant,
) -> Result<(), String> {
    let mut last = String::from("out of time");
    for attempt in 0..TRIES {
        if attempt > 0 {
            let pause = BACKOFF * attempt;
            if Instant::now() + pause >= deadline {
                break;
            }
            sleep(pause);
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            break;
        }
        let answer = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .timeout(remaining)
            .body(line.to_vec())
            .send();
        match answer {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => last = format!("HTTP {}", r.status()),
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}
