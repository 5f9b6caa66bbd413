//! Per-image back-off after failures that another download cannot fix
//! (pure; the clock is passed in). An image version whose served file
//! failed verification (wrong checksum, wrong size) is tried at most
//! `images.max-attempts` times; one whose content is refused (by this
//! appliance's format safety checks, or by Glance: "Image failed safety
//! checks") once. Then it is left alone until the list changes the entry
//! (its version, checksum, size or URL: the version key), or until an
//! operator runs `appliance images sync --retry-failed`. Transient
//! failures (network, timeouts, Glance 5xx) never count.
//!
//! Kept per subscription in `<state>/images/backoff/<subscription>.json`
//! (documented in docs/images-state.md), so `images list` and
//! `appliance status` can show it.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What kind of failure counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// The served bytes are not the ones the source describes (checksum,
    /// size). Capped at `images.max-attempts`.
    Verification,
    /// The bytes are as described but unusable: refused by the format
    /// safety checks (here or Glance's) or not convertible. Capped at 1.
    Content,
}

/// The failures of one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The version key the failures are about (what the source said:
    /// version, digest, size, URL); another key resets the record.
    pub version: String,
    /// Failed attempts at this version.
    pub attempts: u32,
    /// The cap that applied to the last failure.
    pub max_attempts: u32,
    /// Kind of the last failure.
    pub kind: Kind,
    /// When it first failed at this version.
    pub first_failed: DateTime<Utc>,
    /// When it last failed.
    pub last_failed: DateTime<Utc>,
    /// The last error, whole.
    pub error: String,
}

impl Record {
    /// Whether it is no longer tried (until the version changes).
    pub fn given_up(&self) -> bool {
        self.attempts >= self.max_attempts
    }
}

/// The back-off state of one subscription: `appdb_id` -> record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backoff {
    /// Per image.
    pub images: BTreeMap<String, Record>,
}

impl Backoff {
    /// The record that stops image `id` at `version` from being tried, if
    /// any (a record for another version does not).
    pub fn blocked(&self, id: &str, version: &str) -> Option<&Record> {
        self.images
            .get(id)
            .filter(|r| r.version == version && r.given_up())
    }

    /// Count a failure of `id` at `version`.
    pub fn failed(
        &mut self,
        id: &str,
        version: &str,
        kind: Kind,
        max_attempts: u32,
        error: &str,
        now: DateTime<Utc>,
    ) -> &Record {
        let cap = match kind {
            Kind::Verification => max_attempts.max(1),
            Kind::Content => 1,
        };
        let r = self
            .images
            .entry(id.to_string())
            .and_modify(|r| {
                if r.version != version {
                    r.version = version.to_string();
                    r.attempts = 0;
                    r.first_failed = now;
                }
            })
            .or_insert_with(|| Record {
                version: version.to_string(),
                attempts: 0,
                max_attempts: cap,
                kind,
                first_failed: now,
                last_failed: now,
                error: String::new(),
            });
        r.attempts += 1;
        r.max_attempts = cap;
        r.kind = kind;
        r.last_failed = now;
        r.error = error.to_string();
        r
    }

    /// `id` succeeded: forget it.
    pub fn succeeded(&mut self, id: &str) {
        self.images.remove(id);
    }

    /// Forget images the source no longer lists.
    pub fn retain(&mut self, listed: &BTreeSet<&str>) {
        self.images.retain(|id, _| listed.contains(id.as_str()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(min: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + min * 60, 0).unwrap()
    }

    #[test]
    fn capped_per_version_and_reset_when_the_list_changes_it() {
        let mut b = Backoff::default();
        for i in 0..3 {
            assert!(b.blocked("a", "v1").is_none(), "try {i}");
            b.failed("a", "v1", Kind::Verification, 3, "sha512 mismatch", t(i));
        }
        let r = b.blocked("a", "v1").unwrap();
        assert_eq!((r.attempts, r.first_failed, r.last_failed), (3, t(0), t(2)));
        // The list changes the entry: tried again, counted afresh.
        assert!(b.blocked("a", "v2").is_none());
        b.failed("a", "v2", Kind::Verification, 3, "x", t(10));
        assert_eq!(b.images["a"].attempts, 1);
        assert_eq!(b.images["a"].first_failed, t(10));
        // Content refusals: once.
        b.failed(
            "c",
            "v1",
            Kind::Content,
            3,
            "Image failed safety checks",
            t(0),
        );
        assert!(b.blocked("c", "v1").is_some());
        b.succeeded("a");
        b.retain(&["c"].into());
        assert_eq!(b.images.keys().collect::<Vec<_>>(), ["c"]);
    }
}
