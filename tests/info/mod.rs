//! Integration tests: info (issue #6). `golden`: the builder against
//! cloud-info-provider 1.2.0's own output; `refsite`: `appliance info`
//! against the local reference site, differentially with cloud-info-provider
//! 1.2.0 (PyPI) and with real Swift.

mod golden;
mod refsite;
