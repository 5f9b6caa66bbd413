//! Progress of the long runs (image sync, accounting extraction): one set
//! of events ([`Event`]) and two sinks, chosen once per process from the
//! environment ([`Mode`]):
//!
//! - under systemd (`NOTIFY_SOCKET`): `READY=1` when the command has read
//!   its configuration, `STATUS=` lines (list being verified, image N of M,
//!   MB done; projects extracted) at most once per tick, and `WATCHDOG=1`
//!   only while work makes progress (an event since the last ping, or a
//!   phase that cannot count its progress, such as a conversion, is
//!   running), so a stalled download stops the pings and trips the unit's
//!   `WatchdogSec=` ([`notify`]);
//! - on a terminal (stdout and stderr both TTYs, not under systemd, no
//!   `--json`): indicatif bars on stderr, one per image file being
//!   downloaded plus a line saying what the run is doing ([`tty`]); log
//!   lines are printed above the bars ([`StderrWriter`]);
//! - nothing otherwise (pipes, files, cron, `--json`).
//!
//! The flows call the free functions here ([`source`], [`image`],
//! [`bytes`], ...); they cost a mutex and a few bytes when a sink is on and
//! nothing when it is off. Tracing fields (journald) are not affected.

pub mod notify;
pub mod tracker;
pub mod tty;

use std::io::IsTerminal as _;
use std::sync::OnceLock;

pub use tracker::{Event, SourceKind, Tracker};

/// Where progress goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// sd-notify messages (`NOTIFY_SOCKET` is set).
    Systemd,
    /// Progress bars on stderr.
    Terminal,
    /// Nowhere.
    Off,
}

/// What [`Mode::choose`] looks at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Environment {
    /// `NOTIFY_SOCKET` is set.
    pub notify_socket: bool,
    /// `JOURNAL_STREAM` is set (stderr goes to the journal).
    pub journal: bool,
    /// stdout is a terminal.
    pub stdout_tty: bool,
    /// stderr is a terminal.
    pub stderr_tty: bool,
    /// `TERM` is `dumb` or unset.
    pub dumb_term: bool,
    /// `--json` was given.
    pub json: bool,
}

impl Environment {
    /// This process's.
    pub fn of_process(json: bool) -> Environment {
        let term = std::env::var("TERM").unwrap_or_default();
        Environment {
            notify_socket: std::env::var_os("NOTIFY_SOCKET").is_some(),
            journal: std::env::var_os("JOURNAL_STREAM").is_some(),
            stdout_tty: std::io::stdout().is_terminal(),
            stderr_tty: std::io::stderr().is_terminal(),
            dumb_term: term.is_empty() || term == "dumb",
            json,
        }
    }
}

impl Mode {
    /// sd-notify under systemd; bars only when both stdout and stderr are
    /// terminals, nothing of systemd is around, and no `--json`.
    pub fn choose(e: Environment) -> Mode {
        if e.notify_socket {
            Mode::Systemd
        } else if e.stdout_tty && e.stderr_tty && !e.journal && !e.json && !e.dumb_term {
            Mode::Terminal
        } else {
            Mode::Off
        }
    }
}

enum Sink {
    Notify(notify::Notifier),
    Bars(Box<tty::Bars>),
}

static SINK: OnceLock<Sink> = OnceLock::new();

/// Choose the sink from this process's environment. Call once, early
/// (before the async runtime); later calls do nothing.
pub fn init(json: bool) {
    let sink = match Mode::choose(Environment::of_process(json)) {
        Mode::Systemd => Sink::Notify(notify::Notifier::start(notify::watchdog_interval())),
        Mode::Terminal => Sink::Bars(Box::default()),
        Mode::Off => return,
    };
    let _ = SINK.set(sink);
}

/// Send an event to the sink, if any.
pub fn event(e: Event) {
    match SINK.get() {
        Some(Sink::Notify(n)) => n.on(&e),
        Some(Sink::Bars(b)) => b.on(&e),
        None => {}
    }
}

/// Tell systemd the command has started (`READY=1`): its configuration is
/// read and the work begins. No-op elsewhere.
pub fn ready() {
    if let Some(Sink::Notify(n)) = SINK.get() {
        n.ready();
    }
}

/// A source's list is being fetched and verified (or a registry listed).
pub fn source(name: &str, kind: SourceKind) {
    event(Event::Source {
        name: name.into(),
        kind,
    });
}

/// The current source needs the verified files of `count` images.
pub fn images_planned(count: usize) {
    event(Event::ImagesPlanned { count });
}

/// Image N of M begins: its file (cache name `key`) is being made ready;
/// the guard says it ended when dropped.
#[must_use = "the image ends when the guard is dropped"]
pub fn image(key: &str, label: &str, bytes: u64) -> ImageGuard {
    event(Event::ImageStarted {
        key: key.into(),
        label: label.into(),
        bytes,
    });
    ImageGuard { key: key.into() }
}

/// Ends an image's progress when dropped.
#[derive(Debug)]
pub struct ImageGuard {
    key: String,
}

impl Drop for ImageGuard {
    fn drop(&mut self) {
        event(Event::ImageFinished {
            key: std::mem::take(&mut self.key),
        });
    }
}

/// `done` bytes of the file `key` are there (a resumed prefix included).
pub fn bytes(key: &str, done: u64) {
    if SINK.get().is_some() {
        event(Event::Bytes {
            key: key.into(),
            done,
        });
    }
}

/// Work went on that has no count (an upload chunk): keeps the watchdog
/// fed.
pub fn alive() {
    if SINK.get().is_some() {
        event(Event::Alive);
    }
}

/// A phase that cannot report progress (a conversion by `qemu-img`, an
/// OVA extraction) runs while the guard lives: the watchdog is fed
/// meanwhile (the phase's own timeouts bound it).
#[must_use = "the phase ends when the guard is dropped"]
pub fn busy() -> BusyGuard {
    if let Some(Sink::Notify(n)) = SINK.get() {
        n.busy(1);
    }
    BusyGuard(())
}

/// Ends a [`busy`] phase when dropped.
#[derive(Debug)]
pub struct BusyGuard(());

impl Drop for BusyGuard {
    fn drop(&mut self) {
        if let Some(Sink::Notify(n)) = SINK.get() {
            n.busy(-1);
        }
    }
}

/// `count` projects are to be extracted.
pub fn projects_planned(count: usize) {
    event(Event::ProjectsPlanned { count });
}

/// A project's extraction begins.
pub fn project_started(project: &str) {
    event(Event::ProjectStarted {
        project: project.into(),
    });
}

/// A project's extraction ended.
pub fn project_finished(project: &str, ok: bool) {
    event(Event::ProjectFinished {
        project: project.into(),
        ok,
    });
}

/// The run is over: the last status line (sent at once) and the bars
/// cleared.
pub fn finished(summary: &str) {
    event(Event::Finished {
        summary: summary.into(),
    });
}

/// Clear what is left on the terminal (a run that ended early never sent
/// [`finished`]). The process calls it once, before it exits.
pub fn shutdown() {
    if let Some(Sink::Bars(b)) = SINK.get() {
        b.clear();
    }
}

/// Run `f` with the bars hidden (so a log line does not tear them).
pub fn suspend<R>(f: impl FnOnce() -> R) -> R {
    match SINK.get() {
        Some(Sink::Bars(b)) => b.suspend(f),
        _ => f(),
    }
}

/// stderr for the tracing subscriber: each log line is written with the
/// bars hidden, then they are drawn again below it.
#[derive(Debug, Clone, Copy, Default)]
pub struct StderrWriter;

impl std::io::Write for StderrWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        suspend(|| std::io::stderr().write_all(buf))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for StderrWriter {
    type Writer = StderrWriter;
    fn make_writer(&'a self) -> Self::Writer {
        StderrWriter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sink_follows_the_environment() {
        let tty = Environment {
            stdout_tty: true,
            stderr_tty: true,
            ..Environment::default()
        };
        assert_eq!(Mode::choose(tty), Mode::Terminal);
        assert_eq!(
            Mode::choose(Environment {
                notify_socket: true,
                ..tty
            }),
            Mode::Systemd
        );
        for off in [
            Environment {
                journal: true,
                ..tty
            },
            Environment { json: true, ..tty },
            Environment {
                dumb_term: true,
                ..tty
            },
            Environment {
                stdout_tty: false,
                ..tty
            },
            Environment {
                stderr_tty: false,
                ..tty
            },
            Environment::default(),
        ] {
            assert_eq!(Mode::choose(off), Mode::Off, "{off:?}");
        }
    }
}
