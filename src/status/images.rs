//! What an image sync leaves in its run record for `status`: one line and,
//! per source, its outcome, the images it has in Glance and the failures
//! (pure; `cmd::images` calls it at the end of a sync).

use serde_json::json;

use super::SourceSync;
use crate::images::sync::{RunReport, SourceReport};

/// Images of a source in Glance after the run: kept, updated or adopted
/// ones, and the creations that succeeded.
fn in_glance(s: &SourceReport) -> usize {
    s.images
        .iter()
        .filter(|i| match i.action.as_str() {
            "unchanged" | "update" | "adopt" => true,
            "create" => i.ok,
            _ => false,
        })
        .count()
}

/// The per-source figures of a source report.
pub fn source_sync(s: &SourceReport) -> SourceSync {
    SourceSync {
        status: s.status.to_string(),
        in_glance: in_glance(s),
        failed: s.images.iter().filter(|i| !i.ok).count(),
        failure: s
            .failure
            .as_ref()
            .map(|f| format!("{} failed: {}", f.stage, f.error)),
    }
}

/// The run record's summary line and `detail` (`{"sources": {name: SourceSync}}`).
pub fn run_detail(r: &RunReport) -> (String, serde_json::Value) {
    let mut sources = serde_json::Map::new();
    let (mut ok, mut bad, mut glance, mut failed) = (0, 0, 0, 0);
    for s in &r.sources {
        let f = source_sync(s);
        if matches!(s.status, "ok" | "disabled") {
            ok += 1;
        } else {
            bad += 1;
        }
        glance += f.in_glance;
        failed += f.failed;
        sources.insert(s.name.clone(), serde_json::to_value(f).unwrap_or_default());
    }
    let mut line = format!(
        "{} source(s): {ok} ok, {bad} not ok; {glance} image(s) in Glance, {failed} image failure(s)",
        r.sources.len()
    );
    if r.dropped > 0 {
        line.push_str(&format!(
            ", {} list entr{} dropped (unsafe, malformed, duplicate or expired)",
            r.dropped,
            if r.dropped == 1 { "y" } else { "ies" }
        ));
    }
    (line, json!({ "sources": sources }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(dropped: usize) -> RunReport {
        RunReport {
            ok: true,
            dry_run: false,
            started: chrono::Utc::now(),
            dropped,
            sources: vec![SourceReport::named("egi", "appliance.yaml")],
            problems: Vec::new(),
        }
    }

    #[test]
    fn the_summary_counts_dropped_entries_only_when_there_are_some() {
        let (line, _) = run_detail(&report(0));
        assert!(!line.contains("dropped"), "{line}");
        let (line, _) = run_detail(&report(1));
        assert!(
            line.ends_with(", 1 list entry dropped (unsafe, malformed, duplicate or expired)"),
            "{line}"
        );
        let (line, _) = run_detail(&report(3));
        assert!(line.contains(", 3 list entries dropped"), "{line}");
    }
}
