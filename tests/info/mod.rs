//! Integration tests: info (issue #6). `golden`: the builder against
//! cloud-info-provider 1.2.0's own output; `refsite`: `appliance info`
//! against the local reference site, differentially with cloud-info-provider
//! 1.2.0 (PyPI) and with real Swift; `tls`: `IssuerCA`/`TrustedCA` from a
//! real TLS server that requests client certificates, differentially; `ams`:
//! publishing to the AMS test server, read back.

mod ams;
mod golden;
mod refsite;
mod tls;
