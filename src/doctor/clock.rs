//! Clock skew against Keystone's `Date` header (RFC 9110 §6.6.1): beyond
//! five minutes Keystone tokens, TLS and S/MIME validity dates and CRL
//! dates go wrong in ways that look like other faults.

use chrono::{DateTime, Duration, Utc};

use super::Check;

/// Skew that breaks things: failed.
pub const FAIL_AFTER: Duration = Duration::minutes(5);
/// Skew worth fixing: warning.
pub const WARN_AFTER: Duration = Duration::seconds(30);

const REMEDY: &str = "synchronise this host's clock: `timedatectl set-ntp true` (systemd-timesyncd) or chrony, with a reachable NTP server; if Keystone's clock is the wrong one, the cloud operators must fix it";

fn words(d: Duration) -> String {
    let s = d.num_seconds().abs();
    if s >= 120 {
        format!("{} min {} s", s / 60, s % 60)
    } else {
        format!("{s} s")
    }
}

/// Judge the `Date` header of an answer to a request sent at `sent` and
/// answered at `received` (this host's clock), compared with the middle
/// of the two.
pub fn check(
    subject: &str,
    date: Option<&str>,
    sent: DateTime<Utc>,
    received: DateTime<Utc>,
) -> Check {
    const ID: &str = "keystone.clock";
    let Some(raw) = date else {
        return Check::skipped(
            ID,
            subject,
            "Keystone's answer has no Date header",
            "check the clock by hand: `timedatectl status`",
        );
    };
    let Ok(theirs) = DateTime::parse_from_rfc2822(raw.trim()) else {
        return Check::skipped(
            ID,
            subject,
            format!("Keystone's Date header is not an HTTP date: {raw:?}"),
            "check the clock by hand: `timedatectl status`",
        );
    };
    let ours = sent + (received - sent) / 2;
    let skew = ours - theirs.with_timezone(&Utc);
    let how = if skew > Duration::zero() {
        format!("this host's clock is {} ahead of Keystone's", words(skew))
    } else {
        format!("this host's clock is {} behind Keystone's", words(skew))
    };
    // The header has one-second resolution: never judge below that.
    let abs = skew.abs() - Duration::seconds(1);
    if abs > FAIL_AFTER {
        Check::failed(
            ID,
            subject,
            format!(
                "{how} (more than 5 min: tokens, certificates and CRLs will be judged wrongly)"
            ),
            REMEDY,
        )
    } else if abs > WARN_AFTER {
        Check::warning(ID, subject, how, REMEDY)
    } else {
        Check::ok(ID, subject, format!("{how} (within 30 s)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Verdict;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn skews() {
        let sent = at("2026-06-01T12:00:00Z");
        let got = at("2026-06-01T12:00:02Z");
        let c = |d: &str| check("k", Some(d), sent, got).status;
        assert_eq!(c("Mon, 01 Jun 2026 12:00:01 GMT"), Verdict::Ok);
        assert_eq!(c("Mon, 01 Jun 2026 12:01:30 GMT"), Verdict::Warning);
        assert_eq!(c("Mon, 01 Jun 2026 12:10:01 GMT"), Verdict::Failed);
        assert_eq!(c("Mon, 01 Jun 2026 11:50:01 GMT"), Verdict::Failed);
        let behind = check("k", Some("Mon, 01 Jun 2026 12:10:01 GMT"), sent, got);
        assert!(behind.message.contains("behind"), "{}", behind.message);
        assert!(behind.remedy.unwrap().contains("timedatectl"));
        assert_eq!(check("k", None, sent, got).status, Verdict::Skipped);
        assert_eq!(
            check("k", Some("yesterday"), sent, got).status,
            Verdict::Skipped
        );
    }
}
