//! Integration tests: images (issue #3). `trust`: the signature matrix
//! (no reference site needed); `sync`: the decision table, failure rows,
//! sharing and adoption against the real Glance and Keystone of the local
//! reference site.

mod lists;
mod pki;
mod sync;
mod trust;
