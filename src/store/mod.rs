//! The durable configuration store: the only module that touches sled.
//!
//! Owns: the on-disk layout (one sled tree of records, keys written by
//! [`Change::record`], plus `!meta/` keys for the schema version and the
//! configuration revision), atomic multi-record writes, durability (every
//! acknowledged write is flushed), and the in-memory [`Catalog`] mirror that
//! readers get without touching disk.
//!
//! **Invariant:** a write either lands whole — records and the bumped
//! revision in one sled batch, flushed — or changes nothing.
//! Writes are serialized by one mutex held only in synchronous code (callers
//! run [`Store::write`] on a blocking thread), never across an `.await`.

use crate::model::{Catalog, Change, SCHEMA_VERSION};
use arc_swap::ArcSwap;
use std::path::Path;
use std::sync::{Arc, Mutex};

const TREE: &str = "config";
const META_SCHEMA: &[u8] = b"!meta/schema";
const META_REVISION: &[u8] = b"!meta/revision";

/// A store failure. The message is safe to log; it holds no secrets.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store in {path} cannot be opened: {source}")]
    Open { path: String, source: sled::Error },
    #[error("the store holds schema version {found}; this build reads version {expected}")]
    Schema { found: u32, expected: u32 },
    #[error("the store is corrupt: {0}")]
    Corrupt(String),
    #[error("storage failure: {0}")]
    Io(#[from] sled::Error),
}

/// Why a write did not happen.
#[derive(Debug)]
pub enum WriteError<E> {
    /// The plan or the check refused it; nothing was written.
    Rejected(E),
    /// The disk failed; nothing was acknowledged.
    Storage(StoreError),
}

/// What a successful write produced.
pub struct Committed<T> {
    /// The configuration as of this write.
    pub catalog: Arc<Catalog>,
    /// What the check built from it (e.g. the compiled snapshot).
    pub artifact: T,
}

/// The store. Cheap to share behind an `Arc`.
pub struct Store {
    db: sled::Db,
    tree: sled::Tree,
    current: ArcSwap<Catalog>,
    writer: Mutex<()>,
}

impl Store {
    /// Opens (or creates) the store under `dir`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let path = dir.join("store");
        let db = sled::Config::new()
            .path(&path)
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(|source| StoreError::Open {
                path: path.display().to_string(),
                source,
            })?;
        let tree = db.open_tree(TREE)?;
        let catalog = match tree.get(META_SCHEMA)? {
            None if tree.is_empty() => {
                let catalog = Catalog::new();
                let mut batch = sled::Batch::default();
                for (k, v) in catalog.records() {
                    batch.insert(k.as_bytes(), v);
                }
                batch.insert(META_SCHEMA, &SCHEMA_VERSION.to_be_bytes());
                batch.insert(META_REVISION, &0u64.to_be_bytes());
                tree.apply_batch(batch)?;
                db.flush()?;
                catalog
            }
            None => {
                return Err(StoreError::Corrupt(
                    "records without a schema version".into(),
                ))
            }
            Some(v) => {
                let found = u32::from_be_bytes(
                    v.as_ref()
                        .try_into()
                        .map_err(|_| StoreError::Corrupt("bad schema version record".into()))?,
                );
                if found != SCHEMA_VERSION {
                    return Err(StoreError::Schema {
                        found,
                        expected: SCHEMA_VERSION,
                    });
                }
                Store::load(&tree)?
            }
        };
        Ok(Store {
            db,
            tree,
            current: ArcSwap::from_pointee(catalog),
            writer: Mutex::new(()),
        })
    }

    fn load(tree: &sled::Tree) -> Result<Catalog, StoreError> {
        let mut catalog = Catalog {
            schema_version: SCHEMA_VERSION,
            ..Catalog::default()
        };
        for item in tree.iter() {
            let (k, v) = item?;
            if k.starts_with(b"!") {
                if k.as_ref() == META_REVISION {
                    catalog.revision = u64::from_be_bytes(
                        v.as_ref()
                            .try_into()
                            .map_err(|_| StoreError::Corrupt("bad revision record".into()))?,
                    );
                }
                continue;
            }
            let key = std::str::from_utf8(&k)
                .map_err(|_| StoreError::Corrupt("a record key is not UTF-8".into()))?;
            catalog
                .load_record(key, &v)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        }
        Ok(catalog)
    }

    /// The configuration as of the last acknowledged write. Never touches disk.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.current.load_full()
    }

    /// The current configuration revision.
    pub fn revision(&self) -> u64 {
        self.current.load().revision
    }

    /// Performs one atomic write.
    ///
    /// 1. `plan` sees the current configuration and returns the changes (or
    ///    refuses). No changes means nothing to do: no revision is spent.
    /// 2. The changes are applied to a copy, the revision is bumped, and
    ///    `check` sees the result; it may refuse (e.g. it does not compile)
    ///    or return an artifact built from it.
    /// 3. Records and revision are written in one batch and flushed; only
    ///    then does the in-memory copy move forward.
    ///
    /// Blocking: call it from a blocking thread.
    pub fn write<T, E>(
        &self,
        plan: impl FnOnce(&Catalog) -> Result<Vec<Change>, E>,
        check: impl FnOnce(&Catalog) -> Result<T, E>,
    ) -> Result<Committed<T>, WriteError<E>> {
        // A poisoned lock only means another writer panicked before
        // committing; the store itself is consistent, so go on.
        let _guard = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.current.load_full();
        let changes = plan(&current).map_err(WriteError::Rejected)?;
        let mut next = (*current).clone();
        if !changes.is_empty() {
            next.revision += 1;
        }
        for change in &changes {
            next.apply(change);
        }
        let artifact = check(&next).map_err(WriteError::Rejected)?;
        if changes.is_empty() {
            return Ok(Committed {
                catalog: current,
                artifact,
            });
        }
        let mut batch = sled::Batch::default();
        for change in &changes {
            match change.record() {
                (k, Some(v)) => batch.insert(k.as_bytes(), v),
                (k, None) => batch.remove(k.as_bytes()),
            }
        }
        batch.insert(META_REVISION, &next.revision.to_be_bytes());
        let persist = || -> Result<(), sled::Error> {
            self.tree.apply_batch(batch)?;
            self.db.flush()?;
            Ok(())
        };
        persist().map_err(|e| WriteError::Storage(e.into()))?;
        let next = Arc::new(next);
        self.current.store(next.clone());
        Ok(Committed {
            catalog: next,
            artifact,
        })
    }

    /// Flushes everything to disk (on shutdown).
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Api, Product};

    fn api(path: &str) -> Api {
        Api {
            path: path.into(),
            ..Api::default()
        }
    }

    #[test]
    fn writes_survive_reopen_and_bump_revision() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            assert_eq!(store.revision(), 0);
            assert_eq!(store.catalog().groups.len(), 3);
            let c = store
                .write::<(), ()>(
                    |_| Ok(vec![Change::Api("a".into(), Some(api("a")))]),
                    |_| Ok(()),
                )
                .map_err(|_| ())
                .unwrap();
            assert_eq!(c.catalog.revision, 1);
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.revision(), 1);
        assert_eq!(store.catalog().apis["a"].path, "a");
    }

    #[test]
    fn refused_check_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let r = store.write(
            |_| {
                Ok(vec![
                    Change::Api("a".into(), Some(api("a"))),
                    Change::Product(
                        "p".into(),
                        Some(Product {
                            display_name: "P".into(),
                            description: None,
                            terms: None,
                            subscription_required: true,
                            approval_required: false,
                            subscriptions_limit: None,
                            state: Default::default(),
                        }),
                    ),
                ])
            },
            |_| Err::<(), _>("no"),
        );
        assert!(matches!(r, Err(WriteError::Rejected("no"))));
        assert_eq!(store.revision(), 0);
        assert!(store.catalog().apis.is_empty());
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert!(store.catalog().apis.is_empty());
        assert!(store.catalog().products.is_empty());
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            store
                .tree
                .insert(META_SCHEMA, &99u32.to_be_bytes())
                .unwrap();
            store.flush().unwrap();
        }
        match Store::open(dir.path()) {
            Err(StoreError::Schema {
                found: 99,
                expected,
            }) => assert_eq!(expected, SCHEMA_VERSION),
            other => panic!("expected a schema error, got {:?}", other.err()),
        }
    }

    #[test]
    fn the_export_round_trips_through_json() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .write::<(), ()>(
                |_| Ok(vec![Change::Api("a".into(), Some(api("a")))]),
                |_| Ok(()),
            )
            .map_err(|_| ())
            .unwrap();
        let export = store.catalog();
        let json = serde_json::to_string(&*export).unwrap();
        assert!(json.contains("\"schemaVersion\":1"), "{json}");
        let back: Catalog = serde_json::from_str(&json).unwrap();
        assert_eq!(&back, &*export);
    }

    #[test]
    fn empty_plan_spends_no_revision() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let c = store
            .write::<(), ()>(|_| Ok(vec![]), |_| Ok(()))
            .map_err(|_| ())
            .unwrap();
        assert_eq!(c.catalog.revision, 0);
    }
}
