//! What a run has done so far, and the one-line status that says it
//! (systemd's `STATUS=`, the terminal's header line). Pure: events in, a
//! line out; no I/O, no clock.

use std::collections::BTreeMap;

/// A progress event of a long run (image sync, accounting extraction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A source's list is being fetched and verified (or a registry
    /// listed).
    Source {
        /// Subscription name.
        name: String,
        /// `list` or `registry`.
        kind: SourceKind,
    },
    /// This many images of the current source need their verified file
    /// (downloads and cache hits).
    ImagesPlanned {
        /// How many.
        count: usize,
    },
    /// An image's verified file is needed: image N of M begins.
    ImageStarted {
        /// The key its bytes are reported under (its cache file name).
        key: String,
        /// What to call it (`dc:identifier`, registry artifact).
        label: String,
        /// Its declared size.
        bytes: u64,
    },
    /// Bytes of an image in the cache so far (a resumed prefix included).
    Bytes {
        /// As in [`Event::ImageStarted`].
        key: String,
        /// Bytes done.
        done: u64,
    },
    /// An image's file is ready (or failed).
    ImageFinished {
        /// As in [`Event::ImageStarted`].
        key: String,
    },
    /// This many projects are to be extracted.
    ProjectsPlanned {
        /// How many.
        count: usize,
    },
    /// A project's extraction begins.
    ProjectStarted {
        /// As configured.
        project: String,
    },
    /// A project's extraction ended.
    ProjectFinished {
        /// As configured.
        project: String,
        /// Whether it succeeded.
        ok: bool,
    },
    /// Work went on without a measurable amount (an upload chunk, a
    /// conversion step): counts as progress, changes no line.
    Alive,
    /// The run is over; the line to leave.
    Finished {
        /// A short summary.
        summary: String,
    },
}

/// What kind of source is being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// A signed HEPiX image list.
    List,
    /// A Harbor registry.
    Registry,
}

/// One image whose file is being made ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// What to call it.
    pub label: String,
    /// Its index (1-based) among the source's images.
    pub index: usize,
    /// Bytes done.
    pub done: u64,
    /// Declared size.
    pub total: u64,
}

/// The state of a run, built from events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tracker {
    source: Option<(String, SourceKind)>,
    planned: usize,
    started: usize,
    /// Images in progress, by key.
    pub transfers: BTreeMap<String, Transfer>,
    projects: usize,
    projects_done: usize,
    projects_failed: usize,
    running: Vec<String>,
    finished: Option<String>,
    /// Bumped by every event: the watchdog pings only when it moved.
    pub progress: u64,
}

const MB: u64 = 1 << 20;

impl Tracker {
    /// Apply an event.
    pub fn apply(&mut self, e: &Event) {
        self.progress += 1;
        match e {
            Event::Source { name, kind } => {
                self.source = Some((name.clone(), *kind));
                self.planned = 0;
                self.started = 0;
                self.transfers.clear();
            }
            Event::ImagesPlanned { count } => {
                self.planned = *count;
                self.started = 0;
            }
            Event::ImageStarted { key, label, bytes } => {
                self.started += 1;
                self.transfers.insert(
                    key.clone(),
                    Transfer {
                        label: label.clone(),
                        index: self.started,
                        done: 0,
                        total: *bytes,
                    },
                );
            }
            Event::Bytes { key, done } => {
                if let Some(t) = self.transfers.get_mut(key) {
                    t.done = *done;
                }
            }
            Event::ImageFinished { key } => {
                self.transfers.remove(key);
            }
            Event::ProjectsPlanned { count } => {
                self.projects = *count;
                self.projects_done = 0;
                self.projects_failed = 0;
                self.running.clear();
            }
            Event::ProjectStarted { project } => self.running.push(project.clone()),
            Event::ProjectFinished { project, ok } => {
                self.running.retain(|p| p != project);
                self.projects_done += 1;
                if !ok {
                    self.projects_failed += 1;
                }
            }
            Event::Alive => {}
            Event::Finished { summary } => self.finished = Some(summary.clone()),
        }
    }

    /// The status line: what is being done now, with counts and sizes,
    /// e.g. `list egi.eu: image 2 of 5 (ubuntu-24.04): 120 of 850 MB`.
    pub fn line(&self) -> String {
        if let Some(s) = &self.finished {
            return s.clone();
        }
        if self.projects > 0 {
            let mut s = format!(
                "accounting extract: {} of {} projects done",
                self.projects_done, self.projects
            );
            if self.projects_failed > 0 {
                s.push_str(&format!(" ({} failed)", self.projects_failed));
            }
            if !self.running.is_empty() {
                s.push_str(&format!(", extracting {}", self.running.join(", ")));
            }
            return s;
        }
        let Some((name, kind)) = &self.source else {
            return "starting".into();
        };
        let what = match kind {
            SourceKind::List => "list",
            SourceKind::Registry => "registry",
        };
        if self.started == 0 && self.transfers.is_empty() {
            return match kind {
                SourceKind::List => format!("verifying list {name}"),
                SourceKind::Registry => format!("listing registry {name}"),
            };
        }
        let mut parts: Vec<String> = self
            .transfers
            .values()
            .map(|t| {
                format!(
                    "image {} of {} ({}): {} of {} MB",
                    t.index,
                    self.planned.max(t.index),
                    t.label,
                    t.done / MB,
                    t.total.div_ceil(MB)
                )
            })
            .collect();
        if parts.is_empty() {
            parts.push(format!(
                "{} of {} images ready, uploading",
                self.started, self.planned
            ));
        }
        format!("{what} {name}: {}", parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(events: &[Event]) -> Tracker {
        let mut t = Tracker::default();
        for e in events {
            t.apply(e);
        }
        t
    }

    #[test]
    fn image_sync_lines() {
        let src = Event::Source {
            name: "egi".into(),
            kind: SourceKind::List,
        };
        assert_eq!(run(&[]).line(), "starting");
        assert_eq!(run(std::slice::from_ref(&src)).line(), "verifying list egi");
        let started = [
            src.clone(),
            Event::ImagesPlanned { count: 3 },
            Event::ImageStarted {
                key: "a".into(),
                label: "ubuntu".into(),
                bytes: 850 * MB,
            },
            Event::Bytes {
                key: "a".into(),
                done: 120 * MB + 5,
            },
        ];
        assert_eq!(
            run(&started).line(),
            "list egi: image 1 of 3 (ubuntu): 120 of 850 MB"
        );
        let mut two = started.to_vec();
        two.push(Event::ImageStarted {
            key: "b".into(),
            label: "alma".into(),
            bytes: MB + 1,
        });
        assert_eq!(
            run(&two).line(),
            "list egi: image 1 of 3 (ubuntu): 120 of 850 MB; image 2 of 3 (alma): 0 of 2 MB"
        );
        two.push(Event::ImageFinished { key: "a".into() });
        two.push(Event::ImageFinished { key: "b".into() });
        assert_eq!(run(&two).line(), "list egi: 2 of 3 images ready, uploading");
        let reg = Event::Source {
            name: "harbor".into(),
            kind: SourceKind::Registry,
        };
        two.push(reg);
        assert_eq!(run(&two).line(), "listing registry harbor");
    }

    #[test]
    fn accounting_lines_and_progress_counter() {
        let t = run(&[
            Event::ProjectsPlanned { count: 3 },
            Event::ProjectStarted {
                project: "p1".into(),
            },
            Event::ProjectStarted {
                project: "p2".into(),
            },
            Event::ProjectFinished {
                project: "p1".into(),
                ok: false,
            },
        ]);
        assert_eq!(
            t.line(),
            "accounting extract: 1 of 3 projects done (1 failed), extracting p2"
        );
        assert_eq!(t.progress, 4);
        let mut t2 = t.clone();
        t2.apply(&Event::Alive);
        assert_eq!(t2.line(), t.line());
        assert_eq!(t2.progress, 5);
        t2.apply(&Event::Finished {
            summary: "done".into(),
        });
        assert_eq!(t2.line(), "done");
    }
}
