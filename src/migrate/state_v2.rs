//! State schema 1 -> 2: the image cache takes the injective entry naming
//! of this release (issue #14 item 4, `images::cache::entry_name`), and
//! the state directory gets its stamp (`<state>/schema-version`, written by
//! the runner once every operation is done).
//!
//! Schema 1 named a list image's file by its identifier with `:` replaced
//! by `_` (`images::cache::legacy_entry_name`), which is not injective.
//! In each cache directory of `paths.image-data` (but those of registry
//! subscriptions, known from `<state>/images/registries/<name>.json`), an
//! indexed entry `K` is renamed to `entry_name(K)`, file and `index.json`
//! key, when `K` is neither a layer (64 hex digits) nor a derived file
//! (`<32 hex>.<ext>`) nor already in the new naming, and contains no `_`
//! (then `K` was the identifier itself). A rename keeps size, mtime and
//! inode, so the index record stays valid and nothing is hashed or
//! downloaded again. Keys with `_` are ambiguous (`k_1` was `k:1` or `k_1`)
//! and stay: `images sync` takes such a file over itself when the digest
//! recorded for it is the one its list gives, and never otherwise.
//! Unfinished downloads move from `.partial/<name>` to
//! `.partial/<new name>.part` by the same rule (their `.digest` markers
//! with them; a layer's partial keeps its name plus `.part`).

use std::collections::{BTreeMap, BTreeSet};

use super::view::{Loc, Root, StateOp, StateView};
use super::{StateChanges, StateStep, StepError};
use crate::images::cache::{entry_name, marker_name, partial_name};

/// The step.
pub const STEP: StateStep = StateStep {
    to: 2,
    name: "state_v2 (image cache entry names)",
    forward,
};

fn forward(view: &StateView) -> Result<StateChanges, StepError> {
    Ok(rename_cache(view, entry_name))
}

fn is_hex(s: &str, n: usize) -> bool {
    s.len() == n
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A registry layer, named by its sha256.
fn is_layer(name: &str) -> bool {
    is_hex(name, 64)
}

/// A derived file (`<32 hex>.<extension>`).
fn is_derived(name: &str) -> bool {
    name.split_once('.')
        .is_some_and(|(h, ext)| is_hex(h, 32) && !ext.is_empty())
}

/// A file of the cache's own kinds, or an entry named by this release.
fn not_an_old_entry(name: &str) -> bool {
    name.starts_with("img-")
        || name.starts_with("img~")
        || name.starts_with('.')
        || name == "index.json"
        || is_layer(name)
        || is_derived(name)
}

/// An old entry name that two identifiers could have had (`_` was `_` or `:`).
fn ambiguous(name: &str) -> bool {
    !not_an_old_entry(name) && name.contains('_')
}

/// What a schema-1 entry name becomes: `None` when it stays.
fn renamed(name: &str, new_name: fn(&str) -> String) -> Option<String> {
    (!not_an_old_entry(name) && !ambiguous(name)).then(|| new_name(name))
}

/// The renames of every cache directory; `new_name` is this release's
/// entry naming.
pub fn rename_cache(view: &StateView, new_name: fn(&str) -> String) -> StateChanges {
    let mut out = StateChanges::default();
    let dirs: BTreeSet<String> = view
        .under(Root::ImageData, "")
        .filter(|l| l.name() == "index.json" && !l.dir().is_empty() && !l.dir().contains('/'))
        .map(|l| l.dir().to_string())
        .collect();
    for dir in dirs {
        let registry = Loc::new(Root::State, format!("images/registries/{dir}.json"));
        if view.exists(&registry) {
            continue;
        }
        let index_loc = Loc::new(Root::ImageData, format!("{dir}/index.json"));
        let Some(mut index) = view
            .read(&index_loc)
            .and_then(|b| serde_json::from_slice::<BTreeMap<String, serde_json::Value>>(b).ok())
        else {
            out.notes.push(format!(
                "{}: unreadable, left alone (the next sync hashes or downloads again what it needs)",
                index_loc.display()
            ));
            continue;
        };
        let at = |name: &str| Loc::new(Root::ImageData, format!("{dir}/{name}"));
        let mut moved = 0;
        let mut left = 0;
        let keys: Vec<String> = index.keys().cloned().collect();
        for key in keys {
            if ambiguous(&key) {
                left += 1;
            }
            let Some(new) = renamed(&key, new_name) else {
                continue;
            };
            let (from, to) = (at(&key), at(&new));
            if !view.exists(&from) || view.exists(&to) || index.contains_key(&new) {
                continue; // a stale record, or taken: the next sync decides
            }
            out.ops.push(StateOp::Rename { from, to });
            let record = index.remove(&key).expect("listed key");
            index.insert(new, record);
            moved += 1;
        }
        // Unfinished downloads.
        let partials: Vec<Loc> = view
            .under(Root::ImageData, &format!("{dir}/.partial/"))
            .filter(|l| !l.name().ends_with(".part") && !l.name().ends_with(".digest"))
            .cloned()
            .collect();
        let mut resumable = 0;
        for p in partials {
            let name = p.name();
            let new = if is_layer(name) {
                name.to_string()
            } else {
                match renamed(name, new_name) {
                    Some(n) => n,
                    None => continue,
                }
            };
            let to = p.sibling(&partial_name(&new));
            if view.exists(&to) {
                continue;
            }
            let marker = p.sibling(&format!("{name}.digest"));
            let new_marker = p.sibling(&marker_name(&new));
            out.ops.push(StateOp::Rename {
                from: p.clone(),
                to,
            });
            if view.exists(&marker) && marker != new_marker && !view.exists(&new_marker) {
                out.ops.push(StateOp::Rename {
                    from: marker,
                    to: new_marker,
                });
            }
            resumable += 1;
        }
        if moved > 0 {
            let mut bytes = serde_json::to_vec_pretty(&index).expect("index JSON");
            if view.read(&index_loc).is_some_and(|b| b.ends_with(b"\n")) {
                bytes.push(b'\n');
            }
            out.ops.push(StateOp::Put {
                loc: index_loc,
                bytes,
            });
            out.notes.push(format!(
                "image-data:{dir}: {moved} cached image(s) renamed to this release's names (no download again)"
            ));
        }
        if resumable > 0 {
            out.notes.push(format!(
                "image-data:{dir}: {resumable} unfinished download(s) renamed (they resume)"
            ));
        }
        if left > 0 {
            out.notes.push(format!(
                "image-data:{dir}: {left} cached image(s) with `_` in their old name left as they are \
                 (`images sync` takes each over when its recorded digest is its list's)"
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(sha: &str) -> serde_json::Value {
        serde_json::json!({"size": 3, "mtime_ns": 1, "inode": 7, "sha512": sha})
    }

    fn view(files: &[&str], index: &[(&str, &str)]) -> StateView {
        let mut v = StateView::default();
        for f in files {
            v.insert(Loc::new(Root::ImageData, *f), None);
        }
        let ix: BTreeMap<&str, serde_json::Value> =
            index.iter().map(|(k, s)| (*k, entry(s))).collect();
        v.insert(
            Loc::new(Root::ImageData, "list/index.json"),
            Some(serde_json::to_vec_pretty(&ix).unwrap()),
        );
        v
    }

    fn renames(c: &StateChanges) -> Vec<(String, String)> {
        c.ops
            .iter()
            .filter_map(|o| match o {
                StateOp::Rename { from, to } => Some((from.rel.clone(), to.rel.clone())),
                StateOp::Put { .. } => None,
            })
            .collect()
    }

    #[test]
    fn unambiguous_entries_are_renamed_with_their_index_keys() {
        let layer = "ab".repeat(32);
        let derived = format!("{}.disk", "0f".repeat(16));
        let v = view(
            &[
                "list/c0482bc2-bf41-5d49-aaaa-a750174a186b",
                "list/k_1",
                "list/img-new.1",
                "list/gone-not-here",
                &format!("list/{layer}"),
                &format!("list/{derived}"),
            ],
            &[
                ("c0482bc2-bf41-5d49-aaaa-a750174a186b", "s1"),
                ("k_1", "s2"),
                ("img-new.1", "s3"),
                ("stale", "s4"),
                (layer.as_str(), "s5"),
                (derived.as_str(), "s6"),
            ],
        );
        let c = rename_cache(&v, entry_name);
        assert_eq!(
            renames(&c),
            [(
                "list/c0482bc2-bf41-5d49-aaaa-a750174a186b".to_string(),
                "list/img-c0482bc2-bf41-5d49-aaaa-a750174a186b".to_string()
            )]
        );
        let StateOp::Put { loc, bytes } = c.ops.last().unwrap() else {
            panic!("the index last")
        };
        assert_eq!(loc.rel, "list/index.json");
        let ix: BTreeMap<String, serde_json::Value> = serde_json::from_slice(bytes).unwrap();
        let keys: Vec<&str> = ix.keys().map(String::as_str).collect();
        assert!(keys.contains(&"img-c0482bc2-bf41-5d49-aaaa-a750174a186b"));
        assert!(!keys.contains(&"c0482bc2-bf41-5d49-aaaa-a750174a186b"));
        assert_eq!(ix["img-c0482bc2-bf41-5d49-aaaa-a750174a186b"], entry("s1"));
        assert_eq!(ix.len(), 6, "nothing else changes");
        assert_eq!(c.notes.len(), 2, "{:?}", c.notes);
        assert!(
            c.notes[1].contains("1 cached image(s) with `_`"),
            "{:?}",
            c.notes
        );
    }

    #[test]
    fn registry_directories_and_taken_names_are_left_alone() {
        let mut v = view(&["list/abc", "list/img-abc"], &[("abc", "s1")]);
        assert!(rename_cache(&v, entry_name).ops.is_empty());
        v = view(&["list/abc"], &[("abc", "s1")]);
        v.insert(
            Loc::new(Root::State, "images/registries/list.json"),
            Some(b"{}".to_vec()),
        );
        assert!(rename_cache(&v, entry_name).ops.is_empty());
    }

    #[test]
    fn partials_follow_with_their_markers() {
        let layer = "cd".repeat(32);
        let v = view(
            &[
                "list/.partial/abc",
                "list/.partial/abc.digest",
                &format!("list/.partial/{layer}"),
                "list/.partial/x_y",
                "list/.partial/img-new.part",
            ],
            &[],
        );
        let c = rename_cache(&v, entry_name);
        assert_eq!(
            renames(&c),
            [
                (
                    "list/.partial/abc".into(),
                    "list/.partial/img-abc.part".into()
                ),
                (
                    "list/.partial/abc.digest".into(),
                    "list/.partial/img-abc.digest".into()
                ),
                (
                    format!("list/.partial/{layer}"),
                    format!("list/.partial/{layer}.part")
                ),
            ]
        );
        assert!(
            c.notes[0].contains("2 unfinished download(s)"),
            "{:?}",
            c.notes
        );
    }

    #[test]
    fn an_unreadable_index_is_reported_and_left() {
        let mut v = StateView::default();
        v.insert(
            Loc::new(Root::ImageData, "l/index.json"),
            Some(b"{".to_vec()),
        );
        v.insert(Loc::new(Root::ImageData, "l/abc"), None);
        let c = rename_cache(&v, entry_name);
        assert!(c.ops.is_empty());
        assert!(c.notes[0].contains("unreadable"), "{:?}", c.notes);
    }
}
