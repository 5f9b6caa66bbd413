//! OpenStack client layer (placeholder; being written).
pub mod access;
