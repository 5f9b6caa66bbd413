//! `appliance doctor` (placeholder).
use crate::cli::{DoctorArgs, GlobalArgs};
use crate::exit::Outcome;
pub async fn run(_g: &GlobalArgs, _a: &DoctorArgs) -> anyhow::Result<Outcome> { Ok(Outcome::Success) }
