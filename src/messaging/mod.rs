//! Delivery of accounting messages to the ARGO Messaging Service (issue #5):
//! `ssmsend`'s job, on the same dirq spool and the same broker, without its
//! failure modes (spec `accounting.md` §3–§5).
//!
//! | module | owns |
//! | --- | --- |
//! | [`smime`] | S/MIME signing (and encryption) exactly as `ssmsend`; pure |
//! | [`identity`] | host certificate and key: loading, key match, expiry, slash DN |
//! | [`ams`] | the AMS client: `authx509` token or static token, publish, retry policy |
//! | [`legacy`] | parsing a legacy `sender.cfg`; pure |
//! | [`settings`] | the effective settings from the `ams` section, `sender.cfg`, defaults; pure |
//! | [`quarantine`] | refused messages kept with the broker's answer |
//! | [`send`] | one send run over the spool: lock, sign, publish, remove or quarantine |
//! | [`status`] | spool depth, oldest element, last send, quarantine |
//!
//! Invariant: an element leaves the spool only after the broker accepted it
//! or it is safely in the quarantine; a failure nothing can fix this run
//! leaves everything in the spool, unlocked.

pub mod ams;
pub mod identity;
pub mod legacy;
pub mod quarantine;
pub mod send;
pub mod settings;
pub mod smime;
pub mod status;
