//! Configuration schema 1 -> 2: accounting extraction and delivery run on
//! their own timers.
//!
//! Schema 1 had one `components.accounting.schedule`: each run extracted,
//! then sent. Schema 2 has `extract-schedule` and `send-schedule`
//! (appliance-accounting-extract.timer and appliance-accounting-send.timer)
//! and a new `crl-refresh` component.
//!
//! A schedule the administrator wrote is kept for both jobs, so the site
//! extracts and sends exactly as often as before (the value is copied as
//! written, quotes included). Where no schedule was written, nothing is
//! added: the defaults of this release apply (extract hourly, send every
//! 6 h, as the schema-1 default extracted hourly). `crl-refresh` has
//! defaults, so nothing is added for it either.

use super::{ConfigStep, StepError};
use crate::config::yaml::{Document, NewValue, Value};

/// The step.
pub const STEP: ConfigStep = ConfigStep {
    to: 2,
    name: "config_v2 (accounting extract/send schedules)",
    forward,
};

const ACCOUNTING: [&str; 2] = ["components", "accounting"];

fn forward(doc: &mut Document) -> Result<Vec<String>, StepError> {
    let Some(Value::Map(entries)) = doc.get(&ACCOUNTING).map(|n| &n.value) else {
        // No section (or not a mapping: schema 1 refused it, and so will
        // `config check`): nothing of this step's to do.
        return Ok(Vec::new());
    };
    let has = |k: &str| entries.iter().any(|e| e.key == k);
    if !has("schedule") {
        return Ok(Vec::new());
    }
    if has("extract-schedule") || has("send-schedule") {
        return Err(StepError {
            message: "components.accounting has both the schema-1 `schedule` and a schema-2 \
                      `extract-schedule` or `send-schedule`"
                .into(),
            hint: "keep only one form (schema 2: `extract-schedule` and `send-schedule`) and \
                   run `appliance migrate` again"
                .into(),
        });
    }
    let shown = doc
        .source(&[ACCOUNTING[0], ACCOUNTING[1], "schedule"])
        .map(str::to_string)
        .or_else(|| {
            doc.scalar(&[ACCOUNTING[0], ACCOUNTING[1], "schedule"])
                .map(|(_, t)| t.to_string())
        })
        .unwrap_or_default();
    doc.rename_key(
        &[ACCOUNTING[0], ACCOUNTING[1], "schedule"],
        "extract-schedule",
    )?;
    let extract: Vec<String> = [ACCOUNTING[0], ACCOUNTING[1], "extract-schedule"]
        .map(String::from)
        .to_vec();
    doc.insert_after(
        &[ACCOUNTING[0], ACCOUNTING[1], "extract-schedule"],
        "send-schedule",
        NewValue::CopyOf(extract),
        Some("schema 1 sent after every extraction; this release's default is every 6 h"),
    )?;
    Ok(vec![format!(
        "components.accounting.schedule: {shown} -> extract-schedule and send-schedule, \
         both {shown} (extraction and delivery as often as before)"
    )])
}

#[cfg(test)]
mod tests {
    use super::super::plan_config;
    use crate::config::yaml::Layout;

    fn migrate(text: &str) -> (String, Layout) {
        let p = plan_config(text).unwrap();
        (p.text.unwrap(), p.layout)
    }

    #[test]
    fn schedule_is_split_in_place() {
        let (text, layout) = migrate(
            "schema-version: 1   # do not edit\ncomponents:\n  accounting:\n    enabled: true\n    schedule: \"*-*-* *:05:00\"   # five past\n  info:\n    enabled: false\n",
        );
        assert_eq!(layout, Layout::Kept);
        assert_eq!(
            text,
            "schema-version: 2   # do not edit\ncomponents:\n  accounting:\n    enabled: true\n    extract-schedule: \"*-*-* *:05:00\" # five past\n    send-schedule: \"*-*-* *:05:00\"  # schema 1 sent after every extraction; this release's default is every 6 h\n  info:\n    enabled: false\n"
        );
    }

    #[test]
    fn nothing_written_means_nothing_added() {
        for text in [
            "schema-version: 1\n",
            "schema-version: 1\ncomponents:\n  info: {enabled: true}\n",
            "schema-version: 1\ncomponents:\n  accounting:\n    enabled: false\n",
            "schema-version: 1\ncomponents:\n  accounting:\n",
        ] {
            let (out, layout) = migrate(text);
            assert_eq!(layout, Layout::Kept);
            assert_eq!(out, text.replace("schema-version: 1", "schema-version: 2"));
        }
    }

    #[test]
    fn flow_style_section() {
        let (text, layout) =
            migrate("schema-version: 1\ncomponents: {accounting: {schedule: hourly}}\n");
        assert_eq!(layout, Layout::Kept);
        assert_eq!(
            text,
            "schema-version: 2\ncomponents: {accounting: {extract-schedule: hourly, send-schedule: hourly}}\n"
        );
    }

    #[test]
    fn both_forms_are_refused() {
        let e = plan_config(
            "schema-version: 1\ncomponents:\n  accounting:\n    schedule: hourly\n    send-schedule: daily\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("keep only one form"), "{e}");
    }
}
