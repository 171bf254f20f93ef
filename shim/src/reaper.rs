//! Exit routing.
//!
//! The shim is a child subreaper: runc invocations, container init processes, exec processes and
//! anything a container orphans all end up as our children. containerd-shim's signal thread reaps every
//! one of them and broadcasts the exit through its monitor; this module holds the single subscription
//! and routes each exit to whoever registered for that pid.
//!
//! A process can exit before its pid is known to us (a container that exits before Start returns, an
//! exec that is done before `runc exec` writes its pid file). Such exits are kept for a while as
//! "unclaimed" and handed over when the pid is registered, but only to a watcher that started looking
//! before the exit happened, so that a recycled pid can never inherit a stale exit.

use std::{
    collections::HashMap,
    sync::{mpsc, Arc, Mutex, OnceLock},
    thread,
    time::{Duration, Instant},
};

use containerd_shim::monitor::{monitor_subscribe, Subject, Topic};

type Callback = Box<dyn FnOnce(i32) + Send>;

const UNCLAIMED_TTL: Duration = Duration::from_secs(60);

#[derive(Default)]
struct State {
    watchers: HashMap<i32, Callback>,
    unclaimed: HashMap<i32, (i32, Instant)>,
}

#[derive(Default)]
pub struct Reaper {
    state: Mutex<State>,
}

static GLOBAL: OnceLock<Arc<Reaper>> = OnceLock::new();

/// The process-wide reaper, subscribed to the shim framework's exit monitor on first use.
pub fn global() -> &'static Arc<Reaper> {
    GLOBAL.get_or_init(|| {
        let reaper = Arc::new(Reaper::default());
        match monitor_subscribe(Topic::Pid) {
            Ok(sub) => {
                let r = Arc::clone(&reaper);
                let spawned = thread::Builder::new()
                    .name("exit-router".into())
                    .spawn(move || {
                        while let Ok(ev) = sub.rx.recv() {
                            if let Subject::Pid(pid) = ev.subject {
                                r.dispatch(pid, ev.exit_code);
                            }
                        }
                    });
                if let Err(e) = spawned {
                    log::error!("cannot start the exit router: {e}");
                }
            }
            Err(e) => log::error!("cannot subscribe to process exits: {e}"),
        }
        reaper
    })
}

impl Reaper {
    /// Routes one exit: to its watcher if there is one, else into the unclaimed table.
    pub fn dispatch(&self, pid: i32, code: i32) {
        let callback = {
            let mut st = lock(&self.state);
            match st.watchers.remove(&pid) {
                Some(cb) => Some(cb),
                None => {
                    let now = Instant::now();
                    st.unclaimed
                        .retain(|_, (_, at)| now.duration_since(*at) < UNCLAIMED_TTL);
                    st.unclaimed.insert(pid, (code, now));
                    None
                }
            }
        };
        if let Some(cb) = callback {
            cb(code);
        }
    }

    /// Calls `on_exit` with the exit code of `pid` once it exits. `since` is a moment before the
    /// process was spawned: an unclaimed exit older than that belongs to an earlier process.
    pub fn watch(&self, pid: i32, since: Instant, on_exit: Callback) {
        let early = {
            let mut st = lock(&self.state);
            match st.unclaimed.remove(&pid) {
                Some((code, at)) if at >= since => Some(code),
                _ => {
                    st.watchers.insert(pid, on_exit);
                    return;
                }
            }
        };
        if let Some(code) = early {
            on_exit(code);
        }
    }

    /// Blocks until `pid` exits and returns its exit code (128+n for signal n).
    pub fn wait(&self, pid: i32, since: Instant) -> i32 {
        let (tx, rx) = mpsc::channel();
        self.watch(
            pid,
            since,
            Box::new(move |code| {
                let _ = tx.send(code);
            }),
        );
        rx.recv().unwrap_or(-1)
    }
}

/// Locks a mutex, recovering the data if a panicking thread poisoned it: the state stays usable and a
/// shim must keep serving the containers it owns.
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_before_watch_is_delivered_when_the_watch_started_earlier() {
        let r = Reaper::default();
        let since = Instant::now();
        r.dispatch(42, 7);
        assert_eq!(r.wait(42, since), 7);
    }

    #[test]
    fn stale_exit_of_a_recycled_pid_is_not_delivered() {
        let r = Reaper::default();
        r.dispatch(43, 1);
        thread::sleep(Duration::from_millis(2));
        let since = Instant::now();
        let (tx, rx) = mpsc::channel();
        r.watch(43, since, Box::new(move |c| tx.send(c).unwrap_or(())));
        assert!(rx.try_recv().is_err());
        r.dispatch(43, 0);
        assert_eq!(rx.recv().ok(), Some(0));
    }

    #[test]
    fn watcher_gets_the_exit_once() {
        let r = Reaper::default();
        let (tx, rx) = mpsc::channel();
        r.watch(
            44,
            Instant::now(),
            Box::new(move |c| tx.send(c).unwrap_or(())),
        );
        r.dispatch(44, 137);
        r.dispatch(44, 0);
        assert_eq!(rx.recv().ok(), Some(137));
        assert!(rx.try_recv().is_err());
    }
}
