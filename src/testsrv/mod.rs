//! The project's own test services (placeholder; being written).
