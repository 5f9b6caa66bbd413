//! Integration tests: accounting records and spool.
