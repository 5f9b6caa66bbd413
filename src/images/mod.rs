//! Image synchronisation: HEPiX image lists, S/MIME trust, verified downloads, Glance reconcile (issue #3; being written).
