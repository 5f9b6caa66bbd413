//! `fedcloud-testsrv` (placeholder; being written).
fn main() {}
