//! # XLA Host
//!
//! A host for sandboxed WebAssembly plugins that turn IT data into
//! experience level agreement (XLA) results. Data flows one way, and the
//! crate graph makes it a rule:
//!
//! ```text
//! source ──▶ connector plugin ──▶ store ──▶ scorer plugin ──▶ API / CLI
//!            (xla-runtime)       (xla-store) (xla-score)      (xla-host)
//!            driven by xla-sync
//! ```
//!
//! This crate is the binary: the command line ([`cli`]) and the host's one
//! TOML file ([`config`]), which composes the sections each crate owns. For
//! the tests and for embedding, it also names each crate as a module:
//!
//! - [`runtime`] (`xla-runtime`): the wasmtime engine, compile cache,
//!   per-call limits, host imports, outbound HTTP; [`plugins`]: manifests,
//!   pins, loading;
//! - [`store`] (`xla-store`): the store's model and async traits, the
//!   conformance suite every backend passes; [`store_sled`]
//!   (`xla-store-sled`): the embedded backend on sled;
//! - [`sync`] (`xla-sync`): sync runs and the scheduler behind `serve`;
//! - [`score`] (`xla-score`): XLA definitions, scoring, reports;
//! - [`sim`] (`xla-sim`, feature `sim`): simulators of the source systems;
//! - [`untrusted`] (`xla-types`): text a plugin or source controls, made
//!   safe for the terminal and JSON it lands in.
#![deny(missing_docs)]

pub mod cli;
pub mod config;

/// The allocator of every program linking this crate (the binary, its
/// benchmarks and end-to-end tests): mimalloc. A commit makes and frees
/// many small values (join state, rows being encoded), and glibc's malloc
/// spent about a quarter of a store insert's CPU splitting and
/// consolidating its chunks (`BENCHMARKS.md`, issue 15).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (`mimalloc.h`, mimalloc 3: the
/// sixteenth option; `libmimalloc-sys` names no constant for it).
#[cfg(feature = "mimalloc")]
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// mimalloc's `mi_option_allow_thp` (mimalloc 3: the forty-fourth option).
#[cfg(feature = "mimalloc")]
const MI_OPTION_ALLOW_THP: libmimalloc_sys::mi_option_t = 43;

/// Tunes the allocator for a host that makes and frees tens of MiB per
/// commit on machines (often virtual) where fresh pages are dear.
///
/// How long memory mimalloc freed stays with the process before it goes back
/// to the system: ten seconds, not mimalloc's one. A sync's commits each make
/// and free tens of MiB (rows, index entries, join state) a few hundred
/// milliseconds apart; returned at once, every commit had the kernel fault
/// in and zero those pages again (a fifth of a ServiceNow sync's CPU samples
/// in `clear_page_erms`, minor faults 15,000-28,000 against 6,700 kept;
/// `BENCHMARKS.md`, issue 14). An idle daemon still gives its memory back.
///
/// No transparent huge pages (Linux), unless `MIMALLOC_ALLOW_THP` is set:
/// mimalloc asks for them, and the kernel then zeroes two MiB at the first
/// touch of any byte of them. A ServiceNow sync spent 0.8 s of system time
/// in faults with them and 0.4 s without, for 0.1 s more user time (TLB
/// misses), and peaked 80 MB lower (`BENCHMARKS.md`, issue 14). This is
/// what mimalloc does itself when started with `MIMALLOC_ALLOW_THP=0`; the
/// process flag also covers the memory mimalloc mapped before this runs.
pub fn tune_allocator() {
    #[cfg(feature = "mimalloc")]
    // SAFETY: sets numbers in mimalloc's option table; any value is valid
    // and mimalloc reads them afresh at each purge and each mapping.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 10_000);
        if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
            libmimalloc_sys::mi_option_set(MI_OPTION_ALLOW_THP, 0);
            #[cfg(target_os = "linux")]
            // Failure (a kernel without the flag) leaves huge pages on:
            // slower, not wrong, so it is not reported.
            libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
        }
    }
}

pub use xla_api as api;
pub use xla_dashboard as dashboard;
pub use xla_runtime as runtime;
pub use xla_runtime::plugins;
pub use xla_score as score;
#[cfg(feature = "sim")]
pub use xla_sim as sim;
pub use xla_store as store;
pub use xla_store_sled as store_sled;
pub use xla_sync as sync;
pub use xla_types as types;
pub use xla_types::untrusted;

#[cfg(all(test, feature = "mimalloc"))]
mod tests {
    /// The option numbers are mimalloc 3's purge delay and `allow_thp`:
    /// each holds its default (1,000 ms; on) until set, then what was set;
    /// and the process no longer gets transparent huge pages. One test:
    /// the options are the process's, and a second test tuning them at the
    /// same time would see them set already.
    #[test]
    #[allow(unsafe_code)]
    fn the_allocator_options_are_the_ones_set() {
        // SAFETY: reads and sets numbers in mimalloc's option table.
        let options = || unsafe {
            (
                libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY),
                libmimalloc_sys::mi_option_get(super::MI_OPTION_ALLOW_THP),
            )
        };
        let before = options();
        super::tune_allocator();
        let after = options();
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(before.0, 1_000, "mimalloc's default purge delay");
        }
        assert_eq!(after.0, 10_000);
        if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
            assert_eq!(
                (before.1, after.1),
                (1, 0),
                "mimalloc's allow_thp, on by default, then off"
            );
            #[cfg(target_os = "linux")]
            {
                // SAFETY: reads this process's THP flag.
                let flag = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
                assert_eq!(flag, 1, "PR_GET_THP_DISABLE");
            }
        }
    }
}
