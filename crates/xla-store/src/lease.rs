//! Leases: which host runs a connector instance's syncs now, when several
//! hosts share one store.
//!
//! A run of an instance begins only under the instance's lease, and one
//! holder (one host process) has it at a time, until it releases it or
//! stops renewing it for a whole time-to-live (killed, hung, cut off from
//! the store); then another holder may take it, and the runs the lost
//! holder left `running` are marked interrupted. Every grant carries a
//! **fencing token**, larger than any before it for the instance: a commit
//! carries its run's token ([`crate::CommitBatch::lease`]) and the store
//! refuses it once a newer grant exists or the lease has expired, so a host
//! that wakes up after losing its lease cannot write behind its successor.
//!
//! The lease also keeps the instance's shared schedule: a holder releasing
//! it says when the next scheduled run is due, and until then a
//! [`LeaseRequest::scheduled`] request is answered [`LeaseGrant::NotDue`],
//! so adding a host does not multiply the runs against the upstream.
//!
//! Expiry is judged by the store's clock (PostgreSQL's on a shared store),
//! so hosts' clocks may disagree; the unix-ms times a grant reports are
//! translated to the asking host's clock.
//!
//! [`LocalLeases`] is the in-process implementation, for a store only one
//! process opens (sled).

use crate::StoreError;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use xla_types::now_ms;

/// The lease's default time-to-live: a killed host's instance is taken
/// over this long after its last renewal, at the latest. Twice a plugin
/// call's default deadline (30 s): renewals happen between calls.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(60);

/// A request for an instance's lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRequest {
    /// Tenant.
    pub tenant: String,
    /// Connector instance.
    pub instance: String,
    /// Who asks: one id per host process (`host/4242/9f3c`).
    pub holder: String,
    /// How long the lease lasts unless renewed.
    pub ttl: Duration,
    /// A scheduled run, which waits for the instance's next due time
    /// (another host may have just run it); `false` for a run asked for
    /// now (the API, the command line, a push).
    pub scheduled: bool,
}

/// An instance's lease, as granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Tenant.
    pub tenant: String,
    /// Connector instance.
    pub instance: String,
    /// The holder it was granted to.
    pub holder: String,
    /// The fencing token: larger with every grant of this instance's lease.
    pub token: u64,
    /// Its time-to-live, which each renewal grants again.
    pub ttl: Duration,
    /// When it expires unless renewed, unix ms by this host's clock.
    pub expires: i64,
    /// The holder it was taken from, if that holder never released it
    /// (its lease ran out): its runs still marked running are over.
    pub taken_from: Option<LapsedHolder>,
}

/// A holder whose lease ran out without being released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LapsedHolder {
    /// Who held it.
    pub holder: String,
    /// When its lease ran out, unix ms by this host's clock: its runs began
    /// no commit after it (one already under way may end after it; a
    /// takeover waits for it to end).
    pub expired: i64,
}

/// The answer to a [`LeaseRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseGrant {
    /// The lease is the asker's until it expires.
    Granted(Lease),
    /// Another holder has it.
    Held {
        /// Who.
        holder: String,
        /// When its lease runs out unless renewed, unix ms (this host's clock).
        expires: i64,
    },
    /// A scheduled run was asked for before the instance's next run is due
    /// (another holder ran it and said when the next is).
    NotDue {
        /// When it is due, unix ms (this host's clock).
        due: i64,
    },
}

/// What a store remembers of an instance's lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseState {
    /// The holder, empty once released.
    pub holder: String,
    /// The token of the latest grant.
    pub token: u64,
    /// When the latest grant runs out, unix ms by the store's clock.
    pub expires: i64,
    /// When the next scheduled run is due, unix ms by the store's clock.
    pub next_due: Option<i64>,
}

/// What a store does with a [`LeaseRequest`], before it draws a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Grant it; the holder it replaces, if that one never released it.
    Grant {
        /// See [`Lease::taken_from`].
        taken_from: Option<LapsedHolder>,
    },
    /// Answer this instead ([`LeaseGrant::Held`] or [`LeaseGrant::NotDue`]).
    Refuse(LeaseGrant),
}

/// Judges a request against the instance's lease as the store has it
/// (`None`: never granted), at `now` by the store's clock; `host_now` is
/// the asking host's clock, for the times the answer reports. The rule every
/// backend applies:
///
/// - a lease another holder has and has not let run out is held;
/// - a scheduled request before the next due time is not due;
/// - otherwise it is granted, naming the holder that never released it
///   (its lease ran out, or it is the asker itself after a lost run).
pub fn judge(state: Option<&LeaseState>, request: &LeaseRequest, now: i64, host_now: i64) -> Verdict {
    let on_host = |at: i64| host_now.saturating_add(at.saturating_sub(now));
    let Some(state) = state else {
        return Verdict::Grant { taken_from: None };
    };
    let live = !state.holder.is_empty() && state.expires > now;
    if live && state.holder != request.holder {
        return Verdict::Refuse(LeaseGrant::Held {
            holder: state.holder.clone(),
            expires: on_host(state.expires),
        });
    }
    if let Some(due) = state.next_due.filter(|due| request.scheduled && *due > now) {
        return Verdict::Refuse(LeaseGrant::NotDue { due: on_host(due) });
    }
    let taken_from = (!state.holder.is_empty()).then(|| LapsedHolder {
        holder: state.holder.clone(),
        expired: on_host(state.expires.min(now)),
    });
    Verdict::Grant { taken_from }
}

impl Lease {
    /// The lease granted for `request` under `token`, expiring one
    /// time-to-live after `host_now`.
    pub fn granted(request: &LeaseRequest, token: u64, host_now: i64, taken_from: Option<LapsedHolder>) -> Lease {
        Lease {
            tenant: request.tenant.clone(),
            instance: request.instance.clone(),
            holder: request.holder.clone(),
            token,
            ttl: request.ttl,
            expires: host_now.saturating_add(ttl_ms(request.ttl)),
            taken_from,
        }
    }
}

/// A time-to-live in whole milliseconds (at least 1).
pub fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(1)
}

/// The error for a commit or renewal under a lease that is no longer the
/// instance's.
pub fn lease_lost(tenant: &str, instance: &str, token: u64) -> StoreError {
    StoreError::LeaseLost {
        tenant: tenant.to_string(),
        instance: instance.to_string(),
        token,
    }
}

/// Leases kept in this process: for a store only one process opens. Times
/// are this host's clock. With no other process to take an instance over,
/// a lease is fenced by its token only: a commit under a lease that ran out
/// but that no one took over still goes ahead (a slow plugin call, a clock
/// step, never fail a lone host's run).
#[derive(Debug, Default)]
pub struct LocalLeases {
    leases: Mutex<Leases>,
}

#[derive(Debug, Default)]
struct Leases {
    by_instance: HashMap<(String, String), LeaseState>,
    last_token: u64,
}

impl LocalLeases {
    fn lock(&self) -> std::sync::MutexGuard<'_, Leases> {
        // Plain fields, valid after any panic.
        self.leases.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Grants, refuses or defers `request` (see [`judge`]).
    pub fn acquire(&self, request: &LeaseRequest) -> LeaseGrant {
        let mut leases = self.lock();
        let now = now_ms();
        let key = (request.tenant.clone(), request.instance.clone());
        let taken_from = match judge(leases.by_instance.get(&key), request, now, now) {
            Verdict::Refuse(answer) => return answer,
            Verdict::Grant { taken_from } => taken_from,
        };
        leases.last_token += 1;
        let lease = Lease::granted(request, leases.last_token, now, taken_from);
        let next_due = leases.by_instance.get(&key).and_then(|s| s.next_due);
        let state = LeaseState {
            holder: lease.holder.clone(),
            token: lease.token,
            expires: lease.expires,
            next_due,
        };
        leases.by_instance.insert(key, state);
        LeaseGrant::Granted(lease)
    }

    /// Renews `lease` for its time-to-live from now.
    ///
    /// # Errors
    /// [`StoreError::LeaseLost`] when a newer grant replaced it.
    pub fn renew(&self, lease: &mut Lease) -> Result<(), StoreError> {
        let mut leases = self.lock();
        let state = leases
            .by_instance
            .get_mut(&(lease.tenant.clone(), lease.instance.clone()))
            .filter(|state| state.token == lease.token && !state.holder.is_empty())
            .ok_or_else(|| lease_lost(&lease.tenant, &lease.instance, lease.token))?;
        state.expires = now_ms().saturating_add(ttl_ms(lease.ttl));
        lease.expires = state.expires;
        Ok(())
    }

    /// Releases `lease`; the next scheduled run is due `next_due` from now
    /// (`None` keeps the due time as it is). A lease a newer grant replaced
    /// is left alone.
    pub fn release(&self, lease: &Lease, next_due: Option<Duration>) {
        let mut leases = self.lock();
        let key = (lease.tenant.clone(), lease.instance.clone());
        if let Some(state) = leases.by_instance.get_mut(&key).filter(|s| s.token == lease.token) {
            let now = now_ms();
            state.holder.clear();
            state.expires = now;
            if let Some(next_due) = next_due {
                state.next_due = Some(now.saturating_add(ttl_ms(next_due)));
            }
        }
    }

    /// Whether a commit under `token` may go ahead: `None` (a commit under
    /// no lease) always may.
    ///
    /// # Errors
    /// [`StoreError::LeaseLost`] when the instance's lease has a newer
    /// token or was released.
    pub fn check(&self, tenant: &str, instance: &str, token: Option<u64>) -> Result<(), StoreError> {
        let Some(token) = token else { return Ok(()) };
        let leases = self.lock();
        let held = leases
            .by_instance
            .get(&(tenant.to_string(), instance.to_string()))
            .is_some_and(|s| s.token == token && !s.holder.is_empty());
        if held {
            Ok(())
        } else {
            Err(lease_lost(tenant, instance, token))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(holder: &str, scheduled: bool) -> LeaseRequest {
        LeaseRequest {
            tenant: "acme".into(),
            instance: "sn".into(),
            holder: holder.into(),
            ttl: Duration::from_secs(30),
            scheduled,
        }
    }

    fn state(holder: &str, expires: i64, next_due: Option<i64>) -> LeaseState {
        LeaseState {
            holder: holder.into(),
            token: 4,
            expires,
            next_due,
        }
    }

    #[test]
    fn a_live_lease_of_another_holder_is_held_and_its_expiry_is_told_in_the_hosts_clock() {
        let verdict = judge(Some(&state("b", 2_000, None)), &request("a", false), 1_000, 51_000);
        assert_eq!(
            verdict,
            Verdict::Refuse(LeaseGrant::Held {
                holder: "b".into(),
                expires: 52_000
            })
        );
    }

    #[test]
    fn a_lapsed_holder_is_named_with_its_expiry_and_a_released_one_is_not() {
        let verdict = judge(Some(&state("b", 900, None)), &request("a", true), 1_000, 1_000);
        let lapsed = LapsedHolder {
            holder: "b".into(),
            expired: 900,
        };
        assert_eq!(
            verdict,
            Verdict::Grant {
                taken_from: Some(lapsed)
            }
        );
        let verdict = judge(Some(&state("", 900, None)), &request("a", true), 1_000, 1_000);
        assert_eq!(verdict, Verdict::Grant { taken_from: None });
        assert_eq!(Lease::granted(&request("a", true), 5, 1_000, None).expires, 31_000);
    }

    #[test]
    fn a_scheduled_request_waits_for_the_due_time_and_one_asked_for_now_does_not() {
        let released = state("", 900, Some(5_000));
        assert_eq!(
            judge(Some(&released), &request("a", true), 1_000, 1_000),
            Verdict::Refuse(LeaseGrant::NotDue { due: 5_000 })
        );
        assert_eq!(
            judge(Some(&released), &request("a", false), 1_000, 1_000),
            Verdict::Grant { taken_from: None }
        );
    }

    #[test]
    fn local_leases_fence_commits_of_a_replaced_or_released_lease() {
        let leases = LocalLeases::default();
        let mut short = request("a", false);
        short.ttl = Duration::from_millis(1);
        let LeaseGrant::Granted(first) = leases.acquire(&short) else {
            panic!("granted")
        };
        std::thread::sleep(Duration::from_millis(5));
        // Ran out, but no one took it over: in one process, fenced by token only.
        assert!(leases.check("acme", "sn", Some(first.token)).is_ok());
        // Another holder takes it over: the first's commits are refused.
        let LeaseGrant::Granted(mut second) = leases.acquire(&request("b", false)) else {
            panic!("granted")
        };
        assert!(second.token > first.token);
        assert!(matches!(
            leases.check("acme", "sn", Some(first.token)),
            Err(StoreError::LeaseLost { .. })
        ));
        assert_eq!(second.taken_from.as_ref().map(|t| t.holder.as_str()), Some("a"));
        assert!(leases.check("acme", "sn", Some(second.token)).is_ok());
        assert!(
            leases.check("acme", "sn", None).is_ok(),
            "commits under no lease are not fenced"
        );
        let mut first = first;
        assert!(matches!(leases.renew(&mut first), Err(StoreError::LeaseLost { .. })));
        leases.renew(&mut second).expect("renewed");
        leases.release(&second, Some(Duration::from_secs(60)));
        assert!(matches!(
            leases.check("acme", "sn", Some(second.token)),
            Err(StoreError::LeaseLost { .. })
        ));
        assert!(matches!(leases.acquire(&request("a", true)), LeaseGrant::NotDue { .. }));
        let LeaseGrant::Granted(third) = leases.acquire(&request("a", false)) else {
            panic!("granted")
        };
        assert_eq!(third.taken_from, None, "a released lease names no lapsed holder");
    }
}
