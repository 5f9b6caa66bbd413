//! Integration tests: testsrv.
