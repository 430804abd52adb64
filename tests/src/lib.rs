//! End-to-end tests of XLA Host live in `all/`; this library only exists
//! so the package can carry the test binary and the build script that builds
//! the Wasm guests.
