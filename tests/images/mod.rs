//! Integration tests: images (issue #3). `trust`: the signature matrix
//! (no reference site needed); `sync`: the decision table, failure rows,
//! sharing and adoption against the real Glance and Keystone of the local
//! reference site; `interop`: adoption of an image atrope 2.0.0 uploaded;
//! `formats`: qemu-img conversion once per digest, and the run lock;
//! `harbor`: the Harbor-API test server over a real OCI registry;
//! `harbor_sync`: the Harbor source client against it.

mod formats;
mod harbor;
mod harbor_sync;
mod hardening;
mod interop;
mod legacy_adopt;
pub(crate) mod lists;
pub(crate) mod pki;
mod progress;
pub(crate) mod rawhttp;
mod sync;
mod trust;
