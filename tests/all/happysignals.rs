//! happysignals end to end (being written).
