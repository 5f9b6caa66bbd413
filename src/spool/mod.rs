//! The dirq QueueSimple spool ssmsend reads (placeholder; being written).
