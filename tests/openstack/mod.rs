//! Integration tests: openstack.
