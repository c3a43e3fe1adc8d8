//! Schema versions and upgrades, driven by `PRAGMA user_version`. A new
//! store gets the latest schema at once; an older one is upgraded step by
//! step in one transaction. A test checks both end up identical.

use rusqlite::{Connection, Transaction};

pub const CURRENT_VERSION: i64 = 3;

pub const LATEST: &str = include_str!("sql/latest.sql");

/// `UPGRADES[i]` takes a store from version `i + 1` to `i + 2`.
const UPGRADES: &[&str] = &[
    include_str!("sql/v2_from_v1.sql"),
    include_str!("sql/v3_from_v2.sql"),
];

#[cfg(test)]
pub const V1: &str = include_str!("sql/v1.sql");

pub fn version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

pub fn create(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch(LATEST)?;
    tx.pragma_update(None, "user_version", CURRENT_VERSION)
}

pub fn upgrade(tx: &Transaction, from: i64) -> rusqlite::Result<()> {
    for step in &UPGRADES[(from - 1) as usize..] {
        tx.execute_batch(step)?;
    }
    tx.pragma_update(None, "user_version", CURRENT_VERSION)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every object of the schema, as SQLite itself prints it.
    fn dump(conn: &Connection) -> Vec<(String, String, String)> {
        let mut stmt = conn
            .prepare("SELECT type, name, COALESCE(sql, '') FROM sqlite_master ORDER BY type, name")
            .unwrap();
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap();
        rows.map(Result::unwrap).collect()
    }

    #[test]
    fn an_upgraded_store_equals_a_fresh_one() {
        let mut fresh = Connection::open_in_memory().unwrap();
        let tx = fresh.transaction().unwrap();
        create(&tx).unwrap();
        tx.commit().unwrap();

        let mut old = Connection::open_in_memory().unwrap();
        old.execute_batch(V1).unwrap();
        old.pragma_update(None, "user_version", 1).unwrap();
        let tx = old.transaction().unwrap();
        upgrade(&tx, 1).unwrap();
        tx.commit().unwrap();

        assert_eq!(version(&old).unwrap(), version(&fresh).unwrap());
        assert_eq!(dump(&old), dump(&fresh));
        assert!(dump(&fresh).iter().any(|(_, name, _)| name == "sync_state"));
    }
}
