//! The PostgreSQL store's schema: ready for Citus (tenant_id in every key
//! of tenant data), versioned (a newer schema refused by name), and shared
//! (a second host sees the first one's commits move the data version, and a
//! token revoked on another host within a second).

use std::time::{Duration, Instant};
use xla_store::{CommitBatch, Store, StoreError};
use xla_store_pg::{PgStore, SCHEMA_VERSION, testing};
use xla_types::{Layer, Observation};

/// Tables without tenant data: small, global, reference tables on Citus
/// (docs/scale-out.md lists them).
const REFERENCE_TABLES: &[&str] = &["tokens", "xla_schema"];

async fn fresh() -> (String, PgStore) {
    let url = testing::shared().create_database().await.expect("a database");
    let store = PgStore::connect(&url).await.expect("connect");
    (url, store)
}

async fn client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
}

#[tokio::test]
async fn every_key_of_tenant_data_leads_with_tenant_id() {
    let (url, _store) = fresh().await;
    let client = client(&url).await;
    // Every primary key and unique constraint of every table in the
    // schema (partitions are covered by their parent's).
    let rows = client
        .query(
            "SELECT c.relname, con.conname, \
                    ARRAY(SELECT a.attname::text FROM unnest(con.conkey) AS k(n) \
                          JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.n) \
             FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid \
             JOIN pg_namespace ns ON ns.oid = c.relnamespace \
             WHERE ns.nspname = current_schema() AND con.contype IN ('p', 'u') AND NOT c.relispartition",
            &[],
        )
        .await
        .expect("constraints");
    assert!(rows.len() >= 10, "the schema's keys were read: {}", rows.len());
    let mut offending = Vec::new();
    for row in &rows {
        let (table, constraint, columns): (String, String, Vec<String>) = (row.get(0), row.get(1), row.get(2));
        if !REFERENCE_TABLES.contains(&table.as_str()) && columns.first().map(String::as_str) != Some("tenant_id") {
            offending.push(format!("{table}.{constraint} {columns:?}"));
        }
    }
    assert!(offending.is_empty(), "keys without tenant_id first: {offending:?}");
    // And every table either has tenant_id or is a reference table.
    let tables = client
        .query(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace \
             WHERE ns.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition \
               AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id')",
            &[],
        )
        .await
        .expect("tables");
    let global: Vec<String> = tables.iter().map(|r| r.get(0)).collect();
    for table in &global {
        assert!(
            REFERENCE_TABLES.contains(&table.as_str()),
            "{table} has no tenant_id and is not a reference table"
        );
    }
}

#[tokio::test]
async fn a_newer_schema_is_refused_by_name() {
    let (url, store) = fresh().await;
    drop(store);
    client(&url)
        .await
        .execute(
            "INSERT INTO xla_schema (version) VALUES ($1)",
            &[&(SCHEMA_VERSION as i32 + 1)],
        )
        .await
        .expect("a newer version");
    let error = PgStore::connect(&url).await.err().expect("refused");
    assert!(
        matches!(error, StoreError::Version { found, supported, .. } if found == SCHEMA_VERSION + 1 && supported == SCHEMA_VERSION),
        "{error}"
    );
    let bad = PgStore::connect("postgres://[not a url").await.err().expect("refused");
    assert!(matches!(bad, StoreError::BadRequest(_)), "{bad}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_host_sees_the_data_version_move() {
    let (url, first) = fresh().await;
    let second = PgStore::connect(&url).await.expect("a second host");
    let before = second.data_version();
    first
        .commit(CommitBatch {
            tenant: "acme".into(),
            source: "sn".into(),
            observations: vec![Observation {
                id: "INC1".into(),
                metric: "resolution_hours".into(),
                layer: Layer::Operational,
                value: 3.0,
                at: 1_767_225_600_000,
                dimensions: vec![("service".into(), "VPN".into())],
            }],
            ..Default::default()
        })
        .await
        .expect("commit");
    let started = Instant::now();
    while second.data_version() == before {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the second host never saw the commit"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(second.data_version(), first.data_version());
}

/// Each host keeps the token records it read for a second: a revocation
/// counts at once on the host that saved it and on another host once its
/// copy is a second old; a use noted there is read back at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_on_one_host_stops_working_on_every_host() {
    let (url, first) = fresh().await;
    let second = PgStore::connect(&url).await.expect("a second host");
    let mut token = xla_store::TokenRecord {
        id: "0123456789ab".into(),
        sha256: "ef".repeat(32),
        name: "dashboard".into(),
        tenant: Some("acme".into()),
        scope: xla_store::Scope::Read,
        created: 1_767_225_600_000,
        last_used: None,
        expires: None,
        revoked: None,
    };
    first.save_token(&token).await.expect("save");
    for host in [&first, &second] {
        let read = host.token(&token.id).await.expect("read").expect("known");
        assert_eq!(read.revoked, None);
    }
    token.revoked = Some(1_767_225_660_000);
    first.save_token(&token).await.expect("revoke");
    let on_first = first.token(&token.id).await.expect("read").expect("known");
    assert_eq!(on_first.revoked, token.revoked, "at once where it was revoked");
    let started = Instant::now();
    while second
        .token(&token.id)
        .await
        .expect("read")
        .expect("known")
        .revoked
        .is_none()
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the second host never saw the revocation"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    second.note_token_use(&token.id, 1_767_225_700_000).await.expect("use");
    let used = second.token(&token.id).await.expect("read").expect("known");
    assert_eq!(used.last_used, Some(1_767_225_700_000), "a use noted is read back");
    assert_eq!(used.revoked, token.revoked, "a use keeps the revocation");
}
