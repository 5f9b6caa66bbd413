//! ARGO Messaging Service client and S/MIME signing of outgoing messages (issue #5; being written).
