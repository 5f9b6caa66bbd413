//! Accounting domain: usage -> APEL records (placeholder; being written).
