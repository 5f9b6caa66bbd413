//! Information publishing: GLUE 2.1 JSON as cloud-info-provider writes it (issue #6; being written).
