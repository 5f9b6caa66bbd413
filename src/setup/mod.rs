//! The pure side of `appliance configure`: what the wizard asks
//! ([`answers`]), how an answers file or our OpenStack user data is read
//! into it ([`answers::apply_file`], [`userdata`]), how `appliance.yaml` and
//! the secrets file are rendered from it and merged into the files already
//! there ([`render`]), and the `/image_data` disk plan ([`disk`]).
//!
//! Nothing here does I/O or reads the clock: `cmd::configure` gathers the
//! facts (existing files, `lsblk`, Keystone, GOCDB, certificates) and
//! passes them in.

pub mod answers;
pub mod disk;
pub mod render;
pub mod userdata;

pub use answers::{Answers, Section};
