//! Simulators of source systems, served on loopback for the demo and the
//! tests. Each speaks its system's wire format; none needs an account.

pub mod feed;
pub mod happysignals;
pub mod nexthink;
pub mod org;
pub mod servicenow;
pub mod telemetry;
