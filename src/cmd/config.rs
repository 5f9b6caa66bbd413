//! `appliance config check|show|example` (placeholder).
use crate::cli::{ConfigCommand, GlobalArgs};
use crate::exit::Outcome;
pub fn run(_g: &GlobalArgs, _c: &ConfigCommand) -> anyhow::Result<Outcome> { Ok(Outcome::Success) }
