//! Simulators of source systems, served on loopback for the demo and the
//! tests. Each speaks its system's wire format; none needs an account.
#![deny(missing_docs)]

pub mod fault;
pub mod feed;
pub mod happysignals;
pub mod nexthink;
pub mod org;
mod server;
pub mod servicenow;
pub mod telemetry;
pub mod throttle;

use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

// Poison-tolerant locks: a request handler that panicked must not take the
// whole simulator down with it (the data it guards is replaced whole).

pub(crate) fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn lock<T>(lock: &Mutex<T>) -> MutexGuard<'_, T> {
    lock.lock().unwrap_or_else(PoisonError::into_inner)
}
