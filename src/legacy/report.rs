//! The import report: every legacy key with what became of it (imported
//! where, into the secrets file, dropped and why, never configured, or a
//! conflict the admin must decide: spec legacy-appliance.md §6.2), the
//! notes on each file (a damaged file read leniently, a release defect),
//! and what was carried over of the state (lastrun, spool, host
//! certificate). The same value is printed for people and as `--json`
//! (schema: `docs/import-legacy-json.md`). Secret values never enter it:
//! a secret key is recorded without its value.

use serde::Serialize;

/// What became of one legacy key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// Written to `appliance.yaml` at `to`.
    Imported {
        /// Key path in `appliance.yaml` (several joined by `, `).
        to: String,
        /// How it was changed on the way, if it was.
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// Written to the secrets file at `to` (never shown).
    Secret {
        /// Key path in the secrets file.
        to: String,
    },
    /// Used for something other than a configuration key (the layout, the
    /// state carried over, another key's value).
    Used {
        /// For what.
        note: String,
    },
    /// Not imported, and why.
    Dropped {
        /// Why.
        note: String,
    },
    /// Still the shipped placeholder: the site never set it.
    NeverConfigured {
        /// Which placeholder, and what that means.
        note: String,
    },
    /// Two legacy files disagree, or a choice only the admin can make.
    Conflict {
        /// What the admin must decide.
        note: String,
        /// What the import chose meanwhile (key path and value), if anything.
        #[serde(skip_serializing_if = "Option::is_none")]
        chosen: Option<String>,
    },
}

impl Outcome {
    fn label(&self) -> &'static str {
        match self {
            Outcome::Imported { .. } => "imported",
            Outcome::Secret { .. } => "secret",
            Outcome::Used { .. } => "used",
            Outcome::Dropped { .. } => "dropped",
            Outcome::NeverConfigured { .. } => "never configured",
            Outcome::Conflict { .. } => "CONFLICT",
        }
    }

    fn text(&self) -> String {
        match self {
            Outcome::Imported { to, note } => match note {
                Some(n) => format!("-> {to} ({n})"),
                None => format!("-> {to}"),
            },
            Outcome::Secret { to } => format!("-> secrets file {to}"),
            Outcome::Used { note }
            | Outcome::Dropped { note }
            | Outcome::NeverConfigured { note } => note.clone(),
            Outcome::Conflict { note, chosen } => match chosen {
                Some(c) => format!("{note}; meanwhile {c}"),
                None => note.clone(),
            },
        }
    }
}

/// One key of a legacy file.
#[derive(Debug, Clone, Serialize)]
pub struct KeyReport {
    /// 1-based line, when the format has lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// `[section] key`, `a.b.c`, `VAR`, a cron job, ...
    pub key: String,
    /// The value as written; `None` for secrets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Whether the value is a secret (then `value` is absent).
    pub secret: bool,
    /// What became of it.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// A remark about a file as a whole, or one of its lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    /// 1-based line, if about one line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The remark.
    pub text: String,
}

/// One legacy file.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    /// As the legacy appliance named it (`/etc/caso/caso.conf`).
    pub path: String,
    /// What it configured.
    pub role: String,
    /// Remarks (damage read leniently, defects of the release).
    pub notes: Vec<Note>,
    /// Its keys in file order.
    pub keys: Vec<KeyReport>,
}

/// A handle to a recorded key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyId {
    file: usize,
    key: usize,
}

/// The keys of every file as they are read, and their outcomes as the
/// conversion decides them. A key nobody decided ends as "dropped: not
/// used by the appliance", so no key can be left out of the report.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    files: Vec<FileReport>,
    open: Vec<Vec<Option<Outcome>>>,
}

impl Ledger {
    /// The file at `path`, added with `role` if new.
    pub fn file(&mut self, path: &str, role: &str) -> usize {
        if let Some(i) = self.files.iter().position(|f| f.path == path) {
            return i;
        }
        self.files.push(FileReport {
            path: path.to_string(),
            role: role.to_string(),
            notes: Vec::new(),
            keys: Vec::new(),
        });
        self.open.push(Vec::new());
        self.files.len() - 1
    }

    /// A remark on file `f`.
    pub fn note(&mut self, f: usize, line: Option<usize>, text: impl Into<String>) {
        let n = Note {
            line,
            text: text.into(),
        };
        if !self.files[f].notes.contains(&n) {
            self.files[f].notes.push(n);
        }
    }

    /// Record a key of file `f`; `secret` keys keep no value.
    pub fn key(
        &mut self,
        f: usize,
        line: Option<usize>,
        key: impl Into<String>,
        value: &str,
        secret: bool,
    ) -> KeyId {
        self.files[f].keys.push(KeyReport {
            line,
            key: key.into(),
            value: (!secret).then(|| value.to_string()),
            secret,
            outcome: Outcome::Dropped {
                note: String::new(),
            },
        });
        self.open[f].push(None);
        KeyId {
            file: f,
            key: self.files[f].keys.len() - 1,
        }
    }

    /// Decide a key's outcome. A conflict is never overwritten; two
    /// imports are merged (`to` joined).
    pub fn set(&mut self, id: KeyId, outcome: Outcome) {
        let slot = &mut self.open[id.file][id.key];
        match (slot.as_mut(), outcome) {
            (Some(Outcome::Conflict { .. }), _) => {}
            (
                Some(Outcome::Imported { to, note }),
                Outcome::Imported {
                    to: to2,
                    note: note2,
                },
            ) => {
                if !to.split(", ").any(|t| t == to2) {
                    to.push_str(", ");
                    to.push_str(&to2);
                }
                if note.is_none() {
                    *note = note2;
                }
            }
            (_, o) => *slot = Some(o),
        }
    }

    /// Decide only if still undecided.
    pub fn set_if_open(&mut self, id: KeyId, outcome: Outcome) {
        if self.open[id.file][id.key].is_none() {
            self.open[id.file][id.key] = Some(outcome);
        }
    }

    /// Whether a key is decided.
    pub fn decided(&self, id: KeyId) -> bool {
        self.open[id.file][id.key].is_some()
    }

    /// The files with every key decided.
    pub fn finish(mut self) -> Vec<FileReport> {
        for (f, file) in self.files.iter_mut().enumerate() {
            for (k, key) in file.keys.iter_mut().enumerate() {
                key.outcome = self.open[f][k].take().unwrap_or(Outcome::Dropped {
                    note: "not used by the appliance".into(),
                });
            }
        }
        self.files
    }
}

/// The cASO lastrun of one project of the new configuration.
#[derive(Debug, Clone, Serialize)]
pub struct LastrunReport {
    /// The project as the new configuration names it.
    pub project: String,
    /// Its VO.
    pub vo: String,
    /// The cASO file the first extraction starts from, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_file: Option<String>,
    /// That time (cASO's format), if known now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub starts: Option<String>,
    /// How it is carried over.
    pub how: String,
}

/// Messages of the legacy spool by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SpoolKinds {
    /// `APEL-cloud-message: v0.2`.
    pub cloud_v02: usize,
    /// `APEL-cloud-message: v0.4`.
    pub cloud_v04: usize,
    /// Public IP (JSON).
    pub ip: usize,
    /// Accelerator (JSON).
    pub accelerator: usize,
    /// StAR storage (XML).
    pub storage: usize,
    /// Anything else (sent as it is; the broker decides).
    pub other: usize,
}

/// The legacy outgoing spool.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SpoolReport {
    /// The legacy spool directory.
    pub from: String,
    /// The appliance's spool.
    pub to: String,
    /// Messages waiting (elements, plus complete stranded temporaries).
    pub waiting: usize,
    /// The oldest one's time (from its dirq name), RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest: Option<String>,
    /// By kind.
    pub kinds: SpoolKinds,
    /// Bytes.
    pub bytes: u64,
    /// Moved into the appliance's spool in this run.
    pub moved: usize,
    /// Already there from an earlier run (same name, same bytes).
    pub already: usize,
    /// Stale locks of a dead ssmsend released (element taken over).
    pub stale_locks: usize,
    /// Elements locked recently (a legacy ssmsend may be sending them):
    /// left where they are.
    pub locked: Vec<String>,
    /// Stranded temporaries holding a complete message, taken over.
    pub recovered_temporaries: usize,
    /// Stranded temporaries that are not a complete message: kept aside,
    /// never sent.
    pub incomplete_temporaries: Vec<String>,
    /// Remarks.
    pub notes: Vec<String>,
}

/// The host certificate and key.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HostCertReport {
    /// Legacy certificate path.
    pub from_cert: String,
    /// Legacy key path.
    pub from_key: String,
    /// The appliance's paths.
    pub to_cert: String,
    /// The appliance's key path.
    pub to_key: String,
    /// Subject DN (slash form), as GOCDB must list it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Expiry, RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
    /// What was done.
    pub result: String,
}

/// What was carried over of the state.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StateReport {
    /// cASO's lastrun files copied (legacy names).
    pub lastrun_files: Vec<String>,
    /// Where they were copied (read-only provenance, and
    /// `accounting.caso-spool-dir`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lastrun_copy: Option<String>,
    /// Per project of the new configuration.
    pub lastrun: Vec<LastrunReport>,
    /// The outgoing spool.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spool: Option<SpoolReport>,
    /// The host certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_cert: Option<HostCertReport>,
    /// Remarks.
    pub notes: Vec<String>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The legacy root read.
    pub root: String,
    /// `A`..`H`.
    pub layout: String,
    /// Its releases.
    pub releases: String,
    /// How it was detected (or `--layout` given).
    pub evidence: Vec<String>,
    /// Signs that disagree.
    pub doubts: Vec<String>,
    /// Nothing was written.
    pub dry_run: bool,
    /// Every file read, with every key.
    pub files: Vec<FileReport>,
    /// The state carried over.
    pub state: StateReport,
    /// Files written (or that would be).
    pub written: Vec<String>,
    /// Problems `config check` finds in the result (empty: it passes).
    pub check: Vec<String>,
    /// Keys in conflict (the admin must decide).
    pub conflicts: usize,
    /// Keys still at their shipped placeholder.
    pub never_configured: usize,
}

impl Report {
    /// Count conflicts and placeholders from the files.
    pub fn tally(&mut self) {
        let all = self.files.iter().flat_map(|f| &f.keys);
        self.conflicts = all
            .clone()
            .filter(|k| matches!(k.outcome, Outcome::Conflict { .. }))
            .count();
        self.never_configured = all
            .filter(|k| matches!(k.outcome, Outcome::NeverConfigured { .. }))
            .count();
    }

    /// The human form.
    pub fn text(&self) -> String {
        let mut o = String::new();
        let mut line = |s: String| {
            o.push_str(&s);
            o.push('\n');
        };
        line(format!(
            "Legacy appliance at {}: layout {} ({})",
            self.root, self.layout, self.releases
        ));
        for e in &self.evidence {
            line(format!("  detected: {e}"));
        }
        for d in &self.doubts {
            line(format!("  doubt: {d}"));
        }
        for f in &self.files {
            line(String::new());
            line(format!("{} ({})", f.path, f.role));
            for n in &f.notes {
                match n.line {
                    Some(l) => line(format!("  note line {l}: {}", n.text)),
                    None => line(format!("  note: {}", n.text)),
                }
            }
            for k in &f.keys {
                let at = k
                    .line
                    .map(|l| format!("{l:>4} "))
                    .unwrap_or_else(|| "     ".into());
                let value = match (&k.value, k.secret) {
                    (_, true) => " = <secret>".to_string(),
                    (Some(v), _) => format!(" = {}", one_line(v)),
                    (None, _) => String::new(),
                };
                line(format!(
                    "  {at}{}{value}: {}: {}",
                    k.key,
                    k.outcome.label(),
                    k.outcome.text()
                ));
            }
        }
        line(String::new());
        line("State".into());
        let st = &self.state;
        if st.lastrun_files.is_empty() {
            line("  cASO lastrun: none found".into());
        } else {
            line(format!(
                "  cASO lastrun files: {}{}",
                st.lastrun_files.join(", "),
                st.lastrun_copy
                    .as_ref()
                    .map(|c| format!(" (copied to {c})"))
                    .unwrap_or_default()
            ));
        }
        for p in &st.lastrun {
            line(format!(
                "  {} [{}]: {}{}",
                p.project,
                p.vo,
                p.starts
                    .as_ref()
                    .map(|s| format!("first extraction from {s}: "))
                    .unwrap_or_default(),
                p.how
            ));
        }
        if let Some(s) = &st.spool {
            line(format!(
                "  spool {} -> {}: {} message(s) waiting{}; {} moved, {} already there",
                s.from,
                s.to,
                s.waiting,
                s.oldest
                    .as_ref()
                    .map(|o| format!(", oldest {o}"))
                    .unwrap_or_default(),
                s.moved,
                s.already
            ));
            let k = &s.kinds;
            line(format!(
                "    cloud v0.2: {}, cloud v0.4: {}, ip: {}, accelerator: {}, storage: {}, other: {}",
                k.cloud_v02, k.cloud_v04, k.ip, k.accelerator, k.storage, k.other
            ));
            if s.stale_locks > 0 || s.recovered_temporaries > 0 {
                line(format!(
                    "    stale locks released: {}, stranded temporaries recovered: {}",
                    s.stale_locks, s.recovered_temporaries
                ));
            }
            for l in &s.locked {
                line(format!("    locked, left in place: {l}"));
            }
            for t in &s.incomplete_temporaries {
                line(format!("    incomplete temporary, kept aside: {t}"));
            }
            for n in &s.notes {
                line(format!("    {n}"));
            }
        }
        if let Some(h) = &st.host_cert {
            line(format!(
                "  host certificate {} -> {}: {}{}",
                h.from_cert,
                h.to_cert,
                h.result,
                h.subject
                    .as_ref()
                    .map(|s| format!(" (subject {s}; GOCDB must list this DN)"))
                    .unwrap_or_default()
            ));
        }
        for n in &st.notes {
            line(format!("  {n}"));
        }
        line(String::new());
        for w in &self.written {
            line(format!(
                "{} {w}",
                if self.dry_run { "would write" } else { "wrote" }
            ));
        }
        if self.check.is_empty() {
            line("config check: passes".into());
        } else {
            line("config check of the result:".into());
            for c in &self.check {
                line(format!("  {c}"));
            }
        }
        line(format!(
            "{} conflict(s) to decide, {} key(s) never configured",
            self.conflicts, self.never_configured
        ));
        o
    }
}

fn one_line(v: &str) -> String {
    if v.contains('\n') {
        v.replace('\n', "\\n")
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undecided_keys_are_dropped_and_conflicts_stay() {
        let mut l = Ledger::default();
        let f = l.file("/etc/x.conf", "x");
        let a = l.key(f, Some(1), "a", "1", false);
        let b = l.key(f, Some(2), "b", "2", false);
        let c = l.key(f, Some(3), "pw", "hunter2", true);
        l.set(
            a,
            Outcome::Conflict {
                note: "decide".into(),
                chosen: None,
            },
        );
        l.set(
            a,
            Outcome::Imported {
                to: "x".into(),
                note: None,
            },
        );
        l.set(
            c,
            Outcome::Secret {
                to: "openstack.password".into(),
            },
        );
        let files = l.finish();
        assert!(matches!(files[0].keys[0].outcome, Outcome::Conflict { .. }));
        assert!(matches!(files[0].keys[1].outcome, Outcome::Dropped { .. }));
        assert_eq!(files[0].keys[2].value, None);
        let _ = b;
        let json = serde_json::to_string(&files).unwrap();
        assert!(!json.contains("hunter2"), "{json}");
    }
}
