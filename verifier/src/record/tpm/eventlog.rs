//! The TPM event log: one JSON object per line, one line per PCR extend, and its replay.
//!
//! The log is written by [`super::record_event`] only, inside the caller's exclusive lock, so the
//! order of lines is the order of extends.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{check_pcr, extend, hex32, TpmError};

/// Longest line [`read_event_log`] accepts (a real line is about 200 bytes).
pub const MAX_LINE_BYTES: usize = 4096;
/// Most events [`read_event_log`] reads (about 200 MB of log).
pub const MAX_EVENTS: usize = 1 << 20;

/// One event-log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the log, 0-based and consecutive.
    pub index: u64,
    /// The PCR extended (SHA-256 bank).
    pub pcr: u32,
    /// Hex of the 32-byte event digest extended.
    pub digest: String,
    /// The TPM's reset count (`TPM2_ReadClock`) before the extend.
    pub reset_count: u32,
    /// The TPM's restart count (`TPM2_ReadClock`) before the extend.
    pub restart_count: u32,
    /// When it was appended, RFC 3339 UTC.
    pub time: String,
}

impl Event {
    /// The event digest as bytes.
    pub fn digest_bytes(&self) -> Result<[u8; 32], String> {
        hex32("digest", &self.digest)
    }
}

/// Reads and checks the whole event log: every line a JSON [`Event`] with consecutive indexes
/// from 0, a PCR in 0-23 and a 32-byte hex digest. Bounded by [`MAX_LINE_BYTES`] per line and
/// [`MAX_EVENTS`] lines; a malformed line is an error naming its (1-based) line number.
pub fn read_event_log(path: &Path) -> Result<Vec<Event>, TpmError> {
    let file = File::open(path).map_err(|source| TpmError::Io {
        what: "cannot open the TPM event log",
        path: path.to_path_buf(),
        source,
    })?;
    let mut reader = BufReader::new(file);
    let mut events = Vec::new();
    let mut buf = Vec::new();
    let mut line = 0usize;
    loop {
        buf.clear();
        let n = reader
            .by_ref()
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|source| TpmError::Io {
                what: "cannot read the TPM event log",
                path: path.to_path_buf(),
                source,
            })?;
        if n == 0 {
            break;
        }
        line += 1;
        let bad = |reason: String| TpmError::EventLogLine {
            path: path.to_path_buf(),
            line,
            reason,
        };
        if buf.last() != Some(&b'\n') {
            return Err(bad(if n > MAX_LINE_BYTES {
                format!("longer than {MAX_LINE_BYTES} bytes")
            } else {
                "truncated (no newline at the end)".to_string()
            }));
        }
        if events.len() >= MAX_EVENTS {
            return Err(bad(format!("more than {MAX_EVENTS} events")));
        }
        let event = parse_line(&buf[..buf.len() - 1], events.len() as u64).map_err(bad)?;
        events.push(event);
    }
    Ok(events)
}

/// Parses and checks one line (without its newline) that must carry index `expected_index`.
fn parse_line(bytes: &[u8], expected_index: u64) -> Result<Event, String> {
    let event: Event = serde_json::from_slice(bytes).map_err(|e| format!("not an event: {e}"))?;
    if event.index != expected_index {
        return Err(format!(
            "index {} where {expected_index} was expected (indexes are consecutive from 0)",
            event.index
        ));
    }
    if event.pcr > 23 {
        return Err(format!("PCR {} is out of range 0-23", event.pcr));
    }
    event.digest_bytes()?;
    Ok(event)
}

/// The PCR value after replaying, from all-zero, the events of `pcr` with the given
/// (reset_count, restart_count) up to and including event `upto_index`. The TPM resets PCRs at
/// each TPM Reset/Restart, so events of other power cycles do not count.
///
/// Errors when `upto_index` is not in `events`, or is not an event of that PCR and cycle.
///
/// Caveat: a TPM Resume (S3 suspend) also increments restart_count but keeps PCR values; a log
/// that spans a suspend replays only from the resume on. Servers rarely suspend.
pub fn replay(
    events: &[Event],
    pcr: u32,
    reset_count: u32,
    restart_count: u32,
    upto_index: u64,
) -> Result<[u8; 32], TpmError> {
    let last = events
        .iter()
        .find(|e| e.index == upto_index)
        .ok_or_else(|| TpmError::Replay(format!("event {upto_index} is not in the event log")))?;
    if last.pcr != pcr || last.reset_count != reset_count || last.restart_count != restart_count {
        return Err(TpmError::Replay(format!(
            "event {upto_index} extended PCR {} at reset {} restart {}, not PCR {pcr} at reset {reset_count} restart {restart_count}",
            last.pcr, last.reset_count, last.restart_count
        )));
    }
    let mut value = [0u8; 32];
    for event in events.iter().filter(|e| {
        e.index <= upto_index
            && e.pcr == pcr
            && e.reset_count == reset_count
            && e.restart_count == restart_count
    }) {
        let digest = event
            .digest_bytes()
            .map_err(|e| TpmError::Replay(format!("event {}: {e}", event.index)))?;
        value = extend(&value, &digest);
    }
    Ok(value)
}

/// The index the next appended event gets: one past the last line's index, or 0 for an absent or
/// empty log. Reads only the log's tail. A torn last line (no newline: a crash mid-append, before
/// the fsync returned and so before any record could cite it) is cut off, with a warning.
pub(crate) fn next_index(path: &Path) -> Result<u64, TpmError> {
    let io = |what: &'static str| {
        move |source| TpmError::Io {
            what,
            path: path.to_path_buf(),
            source,
        }
    };
    let mut file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io("cannot open the TPM event log")(e)),
    };
    let len = file
        .metadata()
        .map_err(io("cannot stat the TPM event log"))?
        .len();
    if len == 0 {
        return Ok(0);
    }
    let tail_len = len.min(2 * MAX_LINE_BYTES as u64 + 2);
    file.seek(SeekFrom::Start(len - tail_len))
        .map_err(io("cannot read the TPM event log"))?;
    let mut tail = Vec::with_capacity(tail_len as usize);
    file.read_to_end(&mut tail)
        .map_err(io("cannot read the TPM event log"))?;
    let bad = |reason: String| TpmError::EventLog {
        path: path.to_path_buf(),
        reason,
    };
    if tail.last() != Some(&b'\n') {
        // A torn append: cut it off.
        let cut = tail
            .iter()
            .rposition(|&b| b == b'\n')
            .map(|p| len - tail_len + p as u64 + 1);
        let cut = match cut {
            Some(c) => c,
            None if tail_len == len => 0,
            None => {
                return Err(bad(format!(
                    "last line is longer than {MAX_LINE_BYTES} bytes: move the log aside"
                )))
            }
        };
        log::warn!(
            "TPM event log {}: cutting off a torn last line ({} bytes)",
            path.display(),
            len - cut
        );
        file.set_len(cut)
            .map_err(io("cannot repair the TPM event log"))?;
        file.sync_all()
            .map_err(io("cannot repair the TPM event log"))?;
        tail.truncate((cut - (len - tail_len)) as usize);
        if cut == 0 {
            return Ok(0);
        }
    }
    // tail ends with '\n' here; the last line is between the previous '\n' and it.
    let body = &tail[..tail.len() - 1];
    let start = body.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
    if start == 0 && tail_len < len {
        return Err(bad(format!(
            "last line is longer than {MAX_LINE_BYTES} bytes: move the log aside"
        )));
    }
    let last: Event = serde_json::from_slice(&body[start..]).map_err(|e| {
        bad(format!(
            "last line is not an event ({e}): fix or move the log aside"
        ))
    })?;
    last.index
        .checked_add(1)
        .ok_or_else(|| bad("event index overflow".to_string()))
}

/// Appends one event as a line and makes it durable (write, fsync; the directory too when the
/// log is new). The caller holds the lock that orders appends. Returns the log's length before
/// the append, for [`truncate`].
pub(crate) fn append(path: &Path, event: &Event) -> Result<u64, TpmError> {
    check_pcr(event.pcr)?;
    let io = |what: &'static str| {
        move |source| TpmError::Io {
            what,
            path: path.to_path_buf(),
            source,
        }
    };
    let mut line = serde_json::to_vec(event).map_err(|e| TpmError::EventLog {
        path: path.to_path_buf(),
        reason: format!("cannot encode event: {e}"),
    })?;
    line.push(b'\n');
    let created = !path.exists();
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .map_err(io("cannot open the TPM event log"))?;
    let before = file
        .metadata()
        .map_err(io("cannot stat the TPM event log"))?
        .len();
    if let Err(e) = file.write_all(&line) {
        // Do not leave a torn line behind (next_index would cut it off anyway).
        let _ = file.set_len(before);
        return Err(io("cannot append to the TPM event log")(e));
    }
    file.sync_data()
        .map_err(io("cannot fsync the TPM event log"))?;
    if created {
        if let Some(dir) = path.parent() {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io("cannot fsync the directory of the TPM event log"))?;
        }
    }
    Ok(before)
}

/// Cuts the log back to `len` bytes (taking back an event whose extend failed), durably.
pub(crate) fn truncate(path: &Path, len: u64) -> Result<(), TpmError> {
    OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| {
            f.set_len(len)?;
            f.sync_all()
        })
        .map_err(|source| TpmError::Io {
            what: "cannot take an event back out of the TPM event log",
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(index: u64, pcr: u32, digest: u8, reset: u32, restart: u32) -> Event {
        Event {
            index,
            pcr,
            digest: hex::encode([digest; 32]),
            reset_count: reset,
            restart_count: restart,
            time: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn replay_restarts_per_reset_and_restart_count() {
        let events = vec![
            ev(0, 23, 1, 0, 0),
            ev(1, 23, 2, 0, 0),
            ev(2, 23, 3, 1, 0), // after a TPM Reset
            ev(3, 16, 9, 1, 0), // another PCR
            ev(4, 23, 4, 1, 0),
            ev(5, 23, 5, 1, 1), // after a TPM Restart
        ];
        let zero = [0u8; 32];
        let e12 = extend(&extend(&zero, &[1; 32]), &[2; 32]);
        assert_eq!(replay(&events, 23, 0, 0, 1).unwrap(), e12);
        assert_eq!(
            replay(&events, 23, 0, 0, 0).unwrap(),
            extend(&zero, &[1; 32])
        );
        let e34 = extend(&extend(&zero, &[3; 32]), &[4; 32]);
        assert_eq!(replay(&events, 23, 1, 0, 4).unwrap(), e34);
        assert_eq!(
            replay(&events, 23, 1, 1, 5).unwrap(),
            extend(&zero, &[5; 32])
        );
        assert_eq!(
            replay(&events, 16, 1, 0, 3).unwrap(),
            extend(&zero, &[9; 32])
        );
        // The named event must be of that PCR and cycle, and present.
        let err = replay(&events, 23, 0, 0, 2).unwrap_err().to_string();
        assert!(err.contains("event 2 extended PCR 23 at reset 1"), "{err}");
        let err = replay(&events, 23, 0, 0, 6).unwrap_err().to_string();
        assert!(err.contains("event 6 is not in the event log"), "{err}");
    }

    #[test]
    fn append_next_index_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        assert_eq!(next_index(&path).unwrap(), 0);
        let mut lengths = vec![];
        for i in 0..3 {
            assert_eq!(next_index(&path).unwrap(), i);
            lengths.push(append(&path, &ev(i, 23, i as u8, 0, 0)).unwrap());
        }
        assert_eq!(lengths[0], 0);
        assert_eq!(next_index(&path).unwrap(), 3);
        // Taking the last event back.
        let full = std::fs::read(&path).unwrap();
        append(&path, &ev(3, 23, 3, 0, 0)).unwrap();
        truncate(&path, full.len() as u64).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), full);
        let events = read_event_log(&path).unwrap();
        assert_eq!(events.len(), 3);
        assert_eq!(events[2], ev(2, 23, 2, 0, 0));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn torn_last_line_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        append(&path, &ev(0, 23, 0, 0, 0)).unwrap();
        let good = std::fs::read(&path).unwrap();
        let mut torn = good.clone();
        torn.extend_from_slice(b"{\"index\":1,\"pcr\":2");
        std::fs::write(&path, &torn).unwrap();
        let err = read_event_log(&path).unwrap_err().to_string();
        assert!(err.contains("line 2: truncated"), "{err}");
        assert_eq!(next_index(&path).unwrap(), 1);
        assert_eq!(std::fs::read(&path).unwrap(), good);
        // A torn first line: the log becomes empty.
        std::fs::write(&path, b"{\"ind").unwrap();
        assert_eq!(next_index(&path).unwrap(), 0);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    }

    #[test]
    fn read_event_log_rejects_a_malformed_line_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let line = |e: &Event| serde_json::to_string(e).unwrap() + "\n";
        let ok = line(&ev(0, 23, 1, 0, 0)) + &line(&ev(1, 23, 2, 0, 0));

        std::fs::write(&path, ok.clone() + "not json\n").unwrap();
        let err = read_event_log(&path).unwrap_err();
        assert!(
            matches!(err, TpmError::EventLogLine { line: 3, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("line 3: not an event"), "{err}");

        std::fs::write(&path, ok.clone() + &line(&ev(5, 23, 2, 0, 0))).unwrap();
        let err = read_event_log(&path).unwrap_err().to_string();
        assert!(
            err.contains("line 3: index 5 where 2 was expected"),
            "{err}"
        );

        let mut bad_digest = ev(2, 23, 2, 0, 0);
        bad_digest.digest = "abcd".into();
        std::fs::write(&path, ok.clone() + &line(&bad_digest)).unwrap();
        let err = read_event_log(&path).unwrap_err().to_string();
        assert!(err.contains("line 3: digest is 2 bytes, not 32"), "{err}");

        std::fs::write(&path, ok.clone() + &"x".repeat(MAX_LINE_BYTES + 10)).unwrap();
        let err = read_event_log(&path).unwrap_err().to_string();
        assert!(err.contains("line 3: longer than 4096 bytes"), "{err}");

        let err = read_event_log(&dir.path().join("absent"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot open the TPM event log"), "{err}");
        assert_eq!(err.lines().count(), 1);
    }
}
