//! Site configuration (placeholder; being written).
/// All problems found in a configuration.
#[derive(Debug, thiserror::Error)]
#[error("configuration errors")]
pub struct ConfigErrors;
