//! Image synchronisation (issue #3): signed HEPiX image lists into Glance,
//! verified, streamed, never destructive.
//!
//! Pure parts: [`list`] (the HEPiX model and parser), [`policy`] (endorser,
//! identity, version and expiry rules; clock passed in), [`plan`] (what
//! Glance should change). Trust: [`smime`] (S/MIME/PKCS#7 with OpenSSL
//! against an IGTF hashed CA directory with CRLs). I/O: [`fetch`] (list and
//! streaming, verifying image downloads), [`cache`] (the image cache and its
//! sidecar index), [`format`] (magic-byte detection, OVA, qemu-img),
//! [`glance`] (applying a plan), [`sync`] (one run over every source, its
//! lock, state and report), [`legacy`] (atrope and cloudkeeper
//! configuration files), [`adopt`] (images atrope or cloudkeeper-os
//! uploaded, adopted instead of uploaded again).
//!
//! Invariants: nothing reaches Glance unless the list's signature, signer,
//! endorser and freshness checks passed and the image's size and sha512
//! matched; an image is uploaded private, checked against Glance's own
//! hash, and only then labelled visible and shared. A list that fails to
//! download, verify or parse changes nothing in Glance.

pub mod adopt;
pub mod backoff;
pub mod cache;
pub mod fetch;
pub mod format;
pub mod glance;
pub mod harbor;
pub mod legacy;
pub mod list;
pub mod plan;
pub mod policy;
pub mod smime;
pub mod sync;
pub mod text;
