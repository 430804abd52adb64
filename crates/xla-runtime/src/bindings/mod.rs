//! The plugin contract as the host sees it: one module per released
//! version of `xla:plugin`, each owning its `bindgen!` over its frozen WIT
//! folder (`wit/since_vX.Y.Z/`), its conversions to the host's own types,
//! the versions it accepts and its linkers.
//!
//! Nothing outside this module names a generated type: the sessions
//! ([`crate::ConnectorSession`], [`crate::ScorerSession`]) hand host types in
//! and get host types back, and the host imports (`log`, `rows`) are written
//! once against host types and wired to each version's generated traits
//! here. A new contract version is a new module beside `v0_1`, and the
//! previous ones keep loading the plugins built against them.

pub(crate) mod v0_1;

/// Bytes of a plugin's error message kept (every version); the rest is elided.
pub(crate) const MAX_ERROR_MESSAGE_BYTES: usize = 2048;

/// The contract versions this host speaks, for messages.
pub(crate) const SUPPORTED: &str = v0_1::ACCEPTS;

/// Whether a plugin built against contract `version` (from its exports or
/// its manifest) can load here.
pub fn is_supported_contract(version: &str) -> bool {
    v0_1::accepts(version)
}
