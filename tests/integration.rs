//! The one integration test binary (one binary keeps link time down on a
//! 2-core CI). One module per area.

mod util;

mod accounting;
mod cli;
mod config;
mod configure;
mod crl;
mod doctor;
mod image;
mod images;
mod info;
mod legacy;
mod messaging;
mod migrate;
mod openstack;
mod redaction;
mod status;
mod systemd;
mod testsrv;
