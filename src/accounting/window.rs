//! The extraction window `[extract_from, extract_to]` (spec accounting.md
//! §1.1, §8.7). The caller decides the bounds (clock, lastrun file, CLI);
//! this module only applies them.

use super::AccountingError;
use chrono::{DateTime, Utc};

/// `[from, to]`, both inclusive, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

impl Window {
    /// A window; `from` must not be after `to`.
    pub fn new(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Self, AccountingError> {
        if from > to {
            return Err(AccountingError::InvalidWindow {
                from: from.to_rfc3339(),
                to: to.to_rfc3339(),
            });
        }
        Ok(Self { from, to })
    }

    /// `extract_from`.
    pub fn from(&self) -> DateTime<Utc> {
        self.from
    }

    /// `extract_to`.
    pub fn to(&self) -> DateTime<Utc> {
        self.to
    }

    /// Whether something that existed from `start` to `end` (`None`: still
    /// exists) is accounted in this window: cASO's
    /// `_process_servers_for_period` drops servers created after `to` or
    /// ended before `from`.
    pub fn overlaps(&self, start: DateTime<Utc>, end: Option<DateTime<Utc>>) -> bool {
        !(start > self.to || end.is_some_and(|e| e < self.from))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2023, 5, d, 0, 0, 0).unwrap()
    }

    #[test]
    fn overlap_rules() {
        let w = Window::new(t(10), t(20)).unwrap();
        assert!(w.overlaps(t(1), None));
        assert!(w.overlaps(t(1), Some(t(10))));
        assert!(!w.overlaps(t(1), Some(t(9))));
        assert!(w.overlaps(t(20), None));
        assert!(!w.overlaps(t(21), None));
        assert!(w.overlaps(t(15), Some(t(25))));
    }

    #[test]
    fn reversed_window_is_an_error() {
        let err = Window::new(t(20), t(10)).unwrap_err();
        assert!(matches!(err, AccountingError::InvalidWindow { .. }));
        assert!(Window::new(t(10), t(10)).is_ok());
    }
}
