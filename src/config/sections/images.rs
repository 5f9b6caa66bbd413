//! `images`: image-list subscriptions and Glance synchronisation (issue #3).
//! Empty until that work lands: any key here is reported as unknown.

use serde::Serialize;

use crate::config::decode::{Decode, Diag, MapReader, Unknown};
use crate::config::format::Node;

/// The section as written.
#[derive(Debug, Default)]
pub struct Raw {}

impl Decode for Raw {
    fn decode(node: &Node, path: &str, d: &mut Diag) -> Option<Self> {
        let m = MapReader::new(node, path, d)?;
        m.finish(Unknown::Error);
        Some(Raw {})
    }
}

/// The validated section.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Section {}

/// Check the section; problems go to `d` under the `images` key path.
pub fn validate(raw: Option<Raw>, _d: &mut Diag) -> Section {
    let _ = raw;
    Section {}
}
