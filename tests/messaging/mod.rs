//! Integration tests: messaging.
