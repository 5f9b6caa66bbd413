//! The terminal sink: indicatif bars on stderr. A spinner line says what
//! the run is doing (the same line systemd gets as `STATUS=`); each image
//! file being downloaded has a bar in bytes; an accounting extraction has
//! a bar in projects.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::tracker::{Event, Tracker};

#[derive(Default)]
struct State {
    tracker: Tracker,
    header: Option<ProgressBar>,
    images: HashMap<String, ProgressBar>,
    projects: Option<ProgressBar>,
}

/// The bars of one process.
pub struct Bars {
    multi: MultiProgress,
    state: Mutex<State>,
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

impl Bars {
    /// Bars drawn on stderr (at most 10 times a second).
    pub fn new() -> Bars {
        Bars::to(ProgressDrawTarget::stderr_with_hz(10))
    }

    /// Bars drawn on `target`.
    pub fn to(target: ProgressDrawTarget) -> Bars {
        Bars {
            multi: MultiProgress::with_draw_target(target),
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Run `f` with the bars hidden.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.multi.suspend(f)
    }

    /// Remove every bar from the screen.
    pub fn clear(&self) {
        let mut s = self.lock();
        for (_, b) in s.images.drain() {
            b.finish_and_clear();
        }
        for b in [s.projects.take(), s.header.take()].into_iter().flatten() {
            b.finish_and_clear();
        }
        let _ = self.multi.clear();
    }

    /// Show an event.
    pub fn on(&self, e: &Event) {
        let mut s = self.lock();
        s.tracker.apply(e);
        match e {
            Event::Bytes { key, done } => {
                if let Some(b) = s.images.get(key) {
                    b.set_position(*done);
                }
                return;
            }
            Event::Alive => return,
            Event::ImageStarted { key, label, bytes } => {
                let index = s.tracker.transfers.get(key).map_or(0, |t| t.index);
                let b = self.multi.add(ProgressBar::new(*bytes));
                b.set_style(style(
                    "  {prefix} [{bar:30}] {binary_bytes:>10}/{binary_total_bytes} {binary_bytes_per_sec:>12} {eta:>4}",
                ));
                b.set_prefix(format!("image {index} {label}"));
                s.images.insert(key.clone(), b);
            }
            Event::ImageFinished { key } => {
                if let Some(b) = s.images.remove(key) {
                    b.finish_and_clear();
                    self.multi.remove(&b);
                }
            }
            Event::ProjectsPlanned { count } => {
                let b = self.multi.add(ProgressBar::new(*count as u64));
                b.set_style(style("  projects [{bar:30}] {pos}/{len} {elapsed}"));
                s.projects = Some(b);
            }
            Event::ProjectFinished { .. } => {
                if let Some(b) = &s.projects {
                    b.inc(1);
                }
            }
            Event::Finished { .. } => {
                drop(s);
                self.clear();
                return;
            }
            _ => {}
        }
        let line = s.tracker.line();
        let header = s.header.get_or_insert_with(|| {
            let h = self.multi.insert(0, ProgressBar::new_spinner());
            h.set_style(style("{spinner} {wide_msg}"));
            h.enable_steady_tick(Duration::from_millis(200));
            h
        });
        header.set_message(line);
    }
}

impl Default for Bars {
    fn default() -> Self {
        Bars::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use indicatif::TermLike;
    use std::sync::Arc;

    /// A terminal that records what is drawn.
    #[derive(Debug, Default, Clone)]
    struct Screen(Arc<Mutex<String>>);

    impl TermLike for Screen {
        fn width(&self) -> u16 {
            120
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.0.lock().unwrap().push_str(&format!("{s}\n"));
            Ok(())
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            self.0.lock().unwrap().push_str(s);
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn an_image_download_draws_a_byte_bar() {
        let screen = Screen::default();
        let bars = Bars::to(ProgressDrawTarget::term_like_with_hz(
            Box::new(screen.clone()),
            200,
        ));
        bars.on(&Event::Source {
            name: "egi".into(),
            kind: super::super::SourceKind::List,
        });
        bars.on(&Event::ImagesPlanned { count: 2 });
        bars.on(&Event::ImageStarted {
            key: "k".into(),
            label: "ubuntu".into(),
            bytes: 4 << 20,
        });
        std::thread::sleep(Duration::from_millis(5));
        bars.on(&Event::Bytes {
            key: "k".into(),
            done: 2 << 20,
        });
        std::thread::sleep(Duration::from_millis(5));
        bars.on(&Event::Bytes {
            key: "k".into(),
            done: 3 << 20,
        });
        let drawn = screen.0.lock().unwrap().clone();
        assert!(drawn.contains("image 1 ubuntu"), "{drawn}");
        assert!(drawn.contains("MiB/4.00 MiB"), "{drawn}");
        assert!(drawn.contains("list egi: image 1 of 2 (ubuntu)"), "{drawn}");
        bars.on(&Event::Finished {
            summary: "done".into(),
        });
    }
}
