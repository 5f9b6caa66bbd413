//! What a state step sees and does: a read-only view of the state (the
//! small files' contents, every file's name) and the operations it returns.
//! Pure: the runner reads the view and carries the operations out.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The two trees of local state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Root {
    /// `paths.state`.
    State,
    /// `paths.image-data` (the image cache).
    ImageData,
}

/// A file of the state: its tree and its `/`-separated path in it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Loc {
    /// Which tree.
    pub root: Root,
    /// The path below it (`/`-separated, no `.` or `..`).
    pub rel: String,
}

impl Loc {
    /// `rel` in `root`.
    pub fn new(root: Root, rel: impl Into<String>) -> Loc {
        Loc {
            root,
            rel: rel.into(),
        }
    }

    /// The directory part (empty at the top).
    pub fn dir(&self) -> &str {
        self.rel.rsplit_once('/').map_or("", |(d, _)| d)
    }

    /// The file name.
    pub fn name(&self) -> &str {
        self.rel
            .rsplit_once('/')
            .map_or(self.rel.as_str(), |(_, n)| n)
    }

    /// A sibling named `name`.
    pub fn sibling(&self, name: &str) -> Loc {
        let rel = match self.dir() {
            "" => name.to_string(),
            d => format!("{d}/{name}"),
        };
        Loc::new(self.root, rel)
    }

    /// For the operator: `state:accounting/x`, `image-data:list/y`.
    pub fn display(&self) -> String {
        let root = match self.root {
            Root::State => "state",
            Root::ImageData => "image-data",
        };
        format!("{root}:{}", self.rel)
    }
}

/// One change to the state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StateOp {
    /// Move a file (an image in the cache: never copied).
    Rename {
        /// From.
        from: Loc,
        /// To (must not exist).
        to: Loc,
    },
    /// Replace (or create) a small file with these bytes.
    Put {
        /// The file.
        loc: Loc,
        /// Its new content.
        bytes: Vec<u8>,
    },
}

/// The state as a step sees it: every regular file by location, with the
/// content of the small ones (`None` for a file too large to read, e.g.
/// an image).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateView {
    files: BTreeMap<Loc, Option<Vec<u8>>>,
}

impl StateView {
    /// Add a file (as the runner reads them).
    pub fn insert(&mut self, loc: Loc, content: Option<Vec<u8>>) {
        self.files.insert(loc, content);
    }

    /// Whether the state holds no file at all (a fresh install).
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Whether a file exists.
    pub fn exists(&self, loc: &Loc) -> bool {
        self.files.contains_key(loc)
    }

    /// A small file's content.
    pub fn read(&self, loc: &Loc) -> Option<&[u8]> {
        self.files.get(loc)?.as_deref()
    }

    /// Every file of `root` whose path starts with `prefix`.
    pub fn under<'a>(&'a self, root: Root, prefix: &'a str) -> impl Iterator<Item = &'a Loc> + 'a {
        self.files
            .keys()
            .filter(move |l| l.root == root && l.rel.starts_with(prefix))
    }

    /// The view after `ops` (so the next step sees what this one made).
    pub fn apply(&mut self, ops: &[StateOp]) {
        for op in ops {
            match op {
                StateOp::Rename { from, to } => {
                    if let Some(c) = self.files.remove(from) {
                        self.files.insert(to.clone(), c);
                    }
                }
                StateOp::Put { loc, bytes } => {
                    self.files.insert(loc.clone(), Some(bytes.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_and_apply() {
        let l = Loc::new(Root::ImageData, "list/a_b");
        assert_eq!((l.dir(), l.name()), ("list", "a_b"));
        assert_eq!(l.sibling("index.json").rel, "list/index.json");
        assert_eq!(Loc::new(Root::State, "x").sibling("y").rel, "y");
        assert_eq!(l.display(), "image-data:list/a_b");
        let mut v = StateView::default();
        v.insert(l.clone(), None);
        v.insert(l.sibling("index.json"), Some(b"{}".to_vec()));
        assert!(!v.is_empty());
        assert_eq!(v.under(Root::ImageData, "list/").count(), 2);
        let to = l.sibling("a%3Ab");
        v.apply(&[
            StateOp::Rename {
                from: l.clone(),
                to: to.clone(),
            },
            StateOp::Put {
                loc: l.sibling("index.json"),
                bytes: b"[]".to_vec(),
            },
        ]);
        assert!(!v.exists(&l) && v.exists(&to));
        assert_eq!(v.read(&l.sibling("index.json")), Some(&b"[]"[..]));
    }
}
