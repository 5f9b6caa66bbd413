//! Python `json.dumps` compatibility lives in [`crate::pyjson`], shared with
//! accounting, images and messaging; re-exported here for the info modules.

pub use crate::pyjson::*;
