//! Integration tests: info.
