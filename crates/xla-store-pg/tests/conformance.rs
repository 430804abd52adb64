//! The PostgreSQL store against the store contract, on a throwaway cluster
//! this test process starts (see `xla_store_pg::testing`): each case on a
//! database of its own.

use std::sync::Arc;
use xla_store::conformance::Backend;
use xla_store::{Store, StoreError};
use xla_store_pg::PgStore;

/// Fresh databases on the shared throwaway cluster.
struct Postgres;

impl Backend for Postgres {
    /// The database's connection string.
    type Place = String;

    async fn create(&self) -> String {
        xla_store_pg::testing::shared()
            .create_database()
            .await
            .expect("a database for the case")
    }

    async fn open(&self, place: &String) -> Result<Arc<dyn Store>, StoreError> {
        Ok(Arc::new(PgStore::connect(place).await?))
    }
}

xla_store::conformance_suite!(Postgres);
