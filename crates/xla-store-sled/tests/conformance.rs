//! The sled store against the store contract: the whole conformance suite,
//! and what only a directory-backed store can get wrong (foreign
//! directories, other format versions, a second process).

use std::sync::Arc;
use xla_store::conformance::Backend;
use xla_store::{Store, StoreError};
use xla_store_sled::SledStore;

/// Fresh stores in temporary directories; commits skip the flush (atomicity
/// is unchanged, and the crash test covers durability).
struct Sled;

impl Backend for Sled {
    type Place = tempfile::TempDir;

    async fn create(&self) -> tempfile::TempDir {
        tempfile::tempdir().expect("tempdir")
    }

    async fn open(&self, place: &tempfile::TempDir) -> Result<Arc<dyn Store>, StoreError> {
        let store = SledStore::open(&place.path().join("db"))?;
        store.set_durable(false);
        Ok(Arc::new(store))
    }
}

xla_store::conformance_suite!(Sled);

#[test]
fn foreign_and_future_directories_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("notes.txt"), "mine").expect("write");
    let error = SledStore::open(dir.path()).err().expect("refused");
    assert!(matches!(error, StoreError::Foreign { .. }), "{error}");
    assert!(error.to_string().contains("notes.txt"), "{error}");

    let path = dir.path().join("future");
    {
        let db = sled::open(&path).expect("sled");
        db.insert(b"Mformat", &99u32.to_be_bytes()).expect("insert");
        db.flush().expect("flush");
    }
    let error = SledStore::open(&path).err().expect("refused");
    assert!(matches!(error, StoreError::Version { found: 99, .. }), "{error}");

    let file = dir.path().join("file");
    std::fs::write(&file, "x").expect("write");
    assert!(matches!(SledStore::open(&file), Err(StoreError::Foreign { .. })));
}

#[test]
fn a_store_open_elsewhere_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    let _first = SledStore::open(&path).expect("open");
    let error = SledStore::open(&path).err().expect("refused");
    assert!(matches!(error, StoreError::Locked { .. }), "{error}");
    assert!(error.to_string().contains("in use by another process"), "{error}");
    assert!(error.to_string().contains(&path.display().to_string()), "{error}");
}
