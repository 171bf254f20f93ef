//! One process of a container (its init or an exec) and its lifecycle:
//! created -> running (-> paused -> running) -> stopped.

use std::{
    sync::{Condvar, Mutex},
    time::{Duration, Instant, SystemTime},
};

use containerd_shim::protos::{
    protobuf::well_known_types::timestamp::Timestamp, types::task::Status,
};

use crate::{
    io::{ProcessIo, StdioSpec},
    reaper::lock,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Created,
    Running,
    Paused,
    Stopped,
}

impl State {
    pub fn status(self) -> Status {
        match self {
            State::Created => Status::CREATED,
            State::Running => Status::RUNNING,
            State::Paused => Status::PAUSED,
            State::Stopped => Status::STOPPED,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    pub code: u32,
    pub at: SystemTime,
}

pub struct ProcessState {
    pub pid: u32,
    pub state: State,
    pub exit: Option<Exit>,
    pub io: Option<ProcessIo>,
    /// Start is in progress: an exit seen meanwhile is announced after TaskStart.
    pub starting: bool,
    pub exit_deferred: bool,
    /// For an exec not yet started: the OCI process spec (JSON).
    pub exec_spec: Option<Vec<u8>>,
}

pub struct Process {
    /// The exec id; empty for the init process.
    pub exec_id: String,
    pub stdio: StdioSpec,
    pub inner: Mutex<ProcessState>,
    exited: Condvar,
}

impl Process {
    pub fn new(exec_id: &str, stdio: StdioSpec, pid: u32, exec_spec: Option<Vec<u8>>) -> Self {
        Process {
            exec_id: exec_id.to_string(),
            stdio,
            inner: Mutex::new(ProcessState {
                pid,
                state: State::Created,
                exit: None,
                io: None,
                starting: false,
                exit_deferred: false,
                exec_spec,
            }),
            exited: Condvar::new(),
        }
    }

    /// Records the exit. Returns true when the TaskExit event should be sent now (false while a
    /// Start is still in flight; Start sends it after TaskStart).
    pub fn set_exited(&self, code: i32) -> bool {
        let mut st = lock(&self.inner);
        if st.exit.is_some() {
            return false;
        }
        st.exit = Some(Exit {
            code: u32::try_from(code).unwrap_or(255),
            at: SystemTime::now(),
        });
        st.state = State::Stopped;
        self.exited.notify_all();
        if st.starting {
            st.exit_deferred = true;
            false
        } else {
            true
        }
    }

    /// Marks a process that will never report an exit (never started, or deleted without one) as
    /// ended with 255, waking its waiters. No TaskExit is sent for it.
    pub fn abandon(&self) {
        let mut st = lock(&self.inner);
        if st.exit.is_none() {
            st.exit = Some(Exit {
                code: 255,
                at: SystemTime::now(),
            });
            st.state = State::Stopped;
            self.exited.notify_all();
        }
    }

    /// Blocks until the process has exited.
    pub fn wait(&self) -> Exit {
        let mut st = lock(&self.inner);
        loop {
            if let Some(e) = st.exit {
                return e;
            }
            st = self.exited.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Like [`Self::wait`], giving up after `limit`.
    pub fn wait_timeout(&self, limit: Duration) -> Option<Exit> {
        let deadline = Instant::now() + limit;
        let mut st = lock(&self.inner);
        loop {
            if let Some(e) = st.exit {
                return Some(e);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            st = self
                .exited
                .wait_timeout(st, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    pub fn pid(&self) -> u32 {
        lock(&self.inner).pid
    }

    pub fn state(&self) -> State {
        lock(&self.inner).state
    }

    pub fn exit(&self) -> Option<Exit> {
        lock(&self.inner).exit
    }
}

pub fn timestamp(t: SystemTime) -> Timestamp {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let mut ts = Timestamp::new();
    ts.seconds = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    ts.nanos = i32::try_from(d.subsec_nanos()).unwrap_or(0);
    ts
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{sync::Arc, thread};

    #[test]
    fn exit_during_start_is_deferred_and_waiters_wake() {
        let p = Arc::new(Process::new("", StdioSpec::default(), 10, None));
        lock(&p.inner).starting = true;
        let waiter = {
            let p = Arc::clone(&p);
            thread::spawn(move || p.wait().code)
        };
        assert!(!p.set_exited(7));
        assert!(lock(&p.inner).exit_deferred);
        assert_eq!(waiter.join().unwrap(), 7);
        assert_eq!(p.state(), State::Stopped);
        // A second report of the same exit changes nothing.
        assert!(!p.set_exited(0));
        assert_eq!(p.exit().map(|e| e.code), Some(7));
    }

    #[test]
    fn wait_timeout_gives_up() {
        let p = Process::new("e1", StdioSpec::default(), 11, None);
        assert!(p.wait_timeout(Duration::from_millis(10)).is_none());
        assert!(p.set_exited(137));
        assert_eq!(
            p.wait_timeout(Duration::from_millis(10)).map(|e| e.code),
            Some(137)
        );
    }
}
