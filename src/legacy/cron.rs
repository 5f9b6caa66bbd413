//! The legacy appliance's schedules (spec legacy-appliance.md §2.7): the
//! `/etc/cron.d/{caso,ssmsend,atrope,cloudkeeper}` files of layouts A–C
//! (A shipped them without the user field, so cron never ran them) and the
//! root crontab that ansible's `cron` module wrote from D on (`#Ansible:
//! <name>` marker lines). Each job line is recognised by the wrapper script
//! it runs, and its schedule turned into a systemd `OnCalendar=`
//! expression where cron's five fields allow it. Pure.

/// Which legacy job a cron line runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// `caso-extract.sh`.
    Caso,
    /// `ssm-send.sh`.
    Ssm,
    /// `cloudkeeper.sh`.
    Cloudkeeper,
    /// `atrope-dispatch.sh`.
    Atrope,
    /// `cloud-info.sh`.
    CloudInfo,
}

impl Job {
    fn from_command(cmd: &str) -> Option<Job> {
        [
            ("caso-extract.sh", Job::Caso),
            ("ssm-send.sh", Job::Ssm),
            ("cloudkeeper.sh", Job::Cloudkeeper),
            ("atrope-dispatch.sh", Job::Atrope),
            ("cloud-info.sh", Job::CloudInfo),
        ]
        .into_iter()
        .find(|(s, _)| cmd.contains(s))
        .map(|(_, j)| j)
    }
}

/// One job line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronJob {
    /// The job, if it is one of the appliance's.
    pub job: Option<Job>,
    /// The five time fields, as written.
    pub schedule: String,
    /// The command.
    pub command: String,
    /// 1-based line.
    pub line: usize,
    /// The `#Ansible: <name>` marker above it, if any.
    pub ansible_name: Option<String>,
    /// A cron.d line without the user field: cron took the command's first
    /// word for the user and never ran the job.
    pub missing_user: bool,
}

/// The jobs of a crontab. `system` is true for `/etc/cron.d` files (sixth
/// field: user).
pub fn parse(text: &str, system: bool) -> Vec<CronJob> {
    let mut out = Vec::new();
    let mut marker: Option<String> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if let Some(name) = line.strip_prefix("#Ansible:") {
            marker = Some(name.trim().to_string());
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        // `NAME=value` environment lines
        if fields.len() < 6 || (fields[0].contains('=') && !fields[0].starts_with('*')) {
            marker = None;
            continue;
        }
        let schedule = fields[..5].join(" ");
        let (command, missing_user) = if system {
            if fields[5].starts_with('/') {
                (fields[5..].join(" "), true)
            } else {
                (
                    fields.get(6..).map(|f| f.join(" ")).unwrap_or_default(),
                    false,
                )
            }
        } else {
            (fields[5..].join(" "), false)
        };
        out.push(CronJob {
            job: Job::from_command(&command),
            schedule,
            command,
            line: i + 1,
            ansible_name: marker.take(),
            missing_user,
        });
    }
    out
}

/// The systemd `OnCalendar=` equivalent of a five-field cron schedule, for
/// the forms the appliance used: minute `N`, `*/N` or `*`; hour `N`,
/// `*/N` or `*`; day, month and weekday `*`. `None` otherwise.
pub fn on_calendar(schedule: &str) -> Option<String> {
    let f: Vec<&str> = schedule.split_whitespace().collect();
    if f.len() != 5 || f[2..].iter().any(|x| *x != "*") {
        return None;
    }
    let num = |s: &str, max: u32| s.parse::<u32>().ok().filter(|n| *n <= max);
    let step = |s: &str, max: u32| {
        s.strip_prefix("*/")
            .and_then(|n| n.parse::<u32>().ok())
            .filter(|n| (1..=max).contains(n))
    };
    let minute = if f[0] == "*" {
        "*".to_string()
    } else if let Some(m) = num(f[0], 59) {
        format!("{m:02}")
    } else {
        format!("00/{}", step(f[0], 59)?)
    };
    let hour = if f[1] == "*" {
        "*".to_string()
    } else if let Some(h) = num(f[1], 23) {
        format!("{h:02}")
    } else {
        format!("00/{}", step(f[1], 23)?)
    };
    Some(format!("*-*-* {hour}:{minute}:00"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_of_every_release() {
        for (cron, cal) in [
            ("14 * * * *", "*-*-* *:14:00"),
            ("14 */4 * * *", "*-*-* 00/4:14:00"),
            ("30 */6 * * *", "*-*-* 00/6:30:00"),
            ("26 */4 * * *", "*-*-* 00/4:26:00"),
            ("23 */12 * * *", "*-*-* 00/12:23:00"),
            ("*/5 * * * *", "*-*-* *:00/5:00"),
            ("0 3 * * *", "*-*-* 03:00:00"),
        ] {
            assert_eq!(on_calendar(cron).as_deref(), Some(cal), "{cron}");
        }
        assert_eq!(on_calendar("0 3 * * 1"), None);
        assert_eq!(on_calendar("61 * * * *"), None);
    }

    #[test]
    fn cron_d_without_user_and_ansible_markers() {
        let a = parse(
            "14 * * * * /usr/local/bin/caso-extract.sh >> /var/log/caso.log 2>&1\n",
            true,
        );
        assert!(a[0].missing_user);
        assert_eq!(a[0].job, Some(Job::Caso));
        let b = parse(
            "# Run cASO every hour\n14 * * * * root /usr/local/bin/caso-extract.sh >> /var/log/caso.log 2>&1\n",
            true,
        );
        assert!(!b[0].missing_user);
        assert_eq!(b[0].line, 2);
        let d = parse(
            "#Ansible: ssm\n30 */6 * * * /usr/local/bin/ssm-send.sh >> /var/log/ssm.log 2>&1\n",
            false,
        );
        assert_eq!(d[0].ansible_name.as_deref(), Some("ssm"));
        assert_eq!(d[0].job, Some(Job::Ssm));
        assert_eq!(d[0].schedule, "30 */6 * * *");
    }
}
