//! nexthink end to end (being written).
