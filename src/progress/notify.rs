//! The systemd sink: `READY=1`, `STATUS=` and `WATCHDOG=1` datagrams to
//! `NOTIFY_SOCKET` (sd-notify crate).
//!
//! Events only update the state; a background thread wakes every tick
//! (a quarter of the watchdog interval, at most a second) and sends what
//! changed: the status line when it differs from the last one sent, and a
//! watchdog ping when an event arrived since the last ping or a [`busy`]
//! phase runs. A download that stalls sends no event, so the pings stop
//! and systemd ends the run after `WatchdogSec=`.
//!
//! [`busy`]: super::busy

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sd_notify::NotifyState;

use super::tracker::{Event, Tracker};

/// The watchdog interval systemd asks for (`WATCHDOG_USEC` for this
/// process, `WATCHDOG_PID`), if any.
pub fn watchdog_interval() -> Option<Duration> {
    let mut usec = 0;
    (sd_notify::watchdog_enabled(false, &mut usec) && usec > 0).then(|| Duration::from_micros(usec))
}

/// How often the thread wakes for a watchdog interval.
pub fn tick(watchdog: Option<Duration>) -> Duration {
    let second = Duration::from_secs(1);
    watchdog.map_or(second, |w| (w / 4).min(second))
}

#[derive(Debug, Default)]
struct State {
    tracker: Tracker,
    busy: i64,
    sent_line: String,
    pinged_at: u64,
}

/// What a tick sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// A new status line.
    pub status: Option<String>,
    /// A watchdog ping.
    pub watchdog: bool,
}

/// The sd-notify sink.
#[derive(Debug, Clone)]
pub struct Notifier {
    state: Arc<Mutex<State>>,
    watchdog: bool,
}

impl Notifier {
    /// A sink whose thread ticks for `watchdog` (pings only when it is
    /// `Some`).
    pub fn start(watchdog: Option<Duration>) -> Notifier {
        let n = Notifier::new(watchdog.is_some());
        let every = tick(watchdog);
        let bg = n.clone();
        let spawned = std::thread::Builder::new()
            .name("sd-notify".into())
            .spawn(move || loop {
                std::thread::sleep(every);
                bg.send(bg.due());
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the sd-notify thread: no STATUS or watchdog pings");
        }
        n
    }

    /// A sink without its thread (tests drive [`Notifier::due`]).
    pub fn new(watchdog: bool) -> Notifier {
        let tracker = Tracker::default();
        // Nothing is said before there is something to say (or READY).
        let sent_line = tracker.line();
        Notifier {
            state: Arc::new(Mutex::new(State {
                tracker,
                sent_line,
                ..State::default()
            })),
            watchdog,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Record an event; a final one is sent at once.
    pub fn on(&self, e: &Event) {
        self.lock().tracker.apply(e);
        if matches!(e, Event::Finished { .. }) {
            self.send(self.due());
        }
    }

    /// Enter (+1) or leave (-1) a phase that cannot count its progress.
    pub fn busy(&self, delta: i64) {
        let mut s = self.lock();
        s.busy += delta;
        s.tracker.apply(&Event::Alive);
    }

    /// `READY=1`, with the status line and a first ping.
    pub fn ready(&self) {
        let line = {
            let mut s = self.lock();
            s.sent_line = s.tracker.line();
            s.pinged_at = s.tracker.progress;
            s.sent_line.clone()
        };
        let mut msg = vec![NotifyState::Ready, NotifyState::Status(&line)];
        if self.watchdog {
            msg.push(NotifyState::Watchdog);
        }
        if let Err(e) = sd_notify::notify(false, &msg) {
            tracing::debug!(error = %e, "sd-notify READY failed");
        }
    }

    /// What is due now (and mark it sent).
    pub fn due(&self) -> Due {
        let mut s = self.lock();
        let line = s.tracker.line();
        let status = (line != s.sent_line).then(|| {
            s.sent_line = line.clone();
            line
        });
        let moved = s.tracker.progress != s.pinged_at || s.busy > 0;
        s.pinged_at = s.tracker.progress;
        Due {
            status,
            watchdog: self.watchdog && moved,
        }
    }

    fn send(&self, due: Due) {
        let mut msg = Vec::new();
        if let Some(line) = &due.status {
            msg.push(NotifyState::Status(line));
        }
        if due.watchdog {
            msg.push(NotifyState::Watchdog);
        }
        if !msg.is_empty() {
            if let Err(e) = sd_notify::notify(false, &msg) {
                tracing::debug!(error = %e, "sd-notify failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_follow_the_watchdog() {
        assert_eq!(tick(None), Duration::from_secs(1));
        assert_eq!(
            tick(Some(Duration::from_secs(2))),
            Duration::from_millis(500)
        );
        assert_eq!(tick(Some(Duration::from_secs(600))), Duration::from_secs(1));
    }

    #[test]
    fn pings_only_while_something_moves() {
        let n = Notifier::new(true);
        let bytes = |done| Event::Bytes {
            key: "a".into(),
            done,
        };
        // Nothing to say before the first event.
        assert_eq!(
            n.due(),
            Due {
                status: None,
                watchdog: false
            }
        );
        n.on(&Event::Source {
            name: "egi".into(),
            kind: crate::progress::SourceKind::List,
        });
        n.on(&Event::ImageStarted {
            key: "a".into(),
            label: "img".into(),
            bytes: 10 << 20,
        });
        let first = n.due();
        assert!(first.watchdog);
        assert!(first.status.is_some());
        // Nothing happened: no ping, no repeated status.
        assert_eq!(
            n.due(),
            Due {
                status: None,
                watchdog: false
            }
        );
        n.on(&bytes(1 << 20));
        assert!(n.due().watchdog);
        // A stall: no bytes, no ping.
        assert!(!n.due().watchdog);
        // A busy phase keeps pinging without events.
        n.busy(1);
        assert!(n.due().watchdog);
        assert!(n.due().watchdog);
        n.busy(-1);
        let _ = n.due();
        assert!(!n.due().watchdog);
        // Without a watchdog, never a ping.
        let quiet = Notifier::new(false);
        quiet.on(&bytes(5));
        assert!(!quiet.due().watchdog);
    }
}
