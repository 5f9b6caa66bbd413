//! Information publishing (issue #6): the site's GLUE 2.1 document exactly
//! as cloud-info-provider 1.2 writes it (`glue21json`), gathered per VO
//! project from OpenStack, never lost to one bad item, and published to a
//! file, Swift or AMS.
//!
//! Module map: `glue` is the document model and its renderer and `pyjson`
//! Python's `json.dumps` (pure); `build` turns [`facts::SiteFacts`] into a
//! document (pure, the creation time passed in); `gather` reads the facts
//! from OpenStack, `gocdb` the endpoint's GOCDB entry (cached, with
//! fallback), `tls` the endpoint's issuer DN; `publish` writes the targets
//! (file, Swift, AMS). The endpoint as written (for IDs in compat mode) is
//! [`Loaded::endpoint_text`](crate::config::Loaded::endpoint_text).
//! Spec: `shared/specs/cloud-info.md`.

pub mod build;
pub mod facts;
pub mod gather;
pub mod glue;
pub mod gocdb;
pub mod publish;
pub mod pyjson;
pub mod tls;

pub use build::{build, Built, Options};
pub use glue::Document;
