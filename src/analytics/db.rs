//! The persisted aggregates: a sled tree `analytics` beside the
//! configuration's, each value sealed with the master key like every
//! record (the record key as associated data).
//!
//! Keys put the minute first, big-endian, so a time range is one range
//! scan: `minute (8 bytes BE) ‖ for each of api, operation, product,
//! subscription, user, region: length (2 bytes BE) ‖ bytes ‖ class (1)`.
//! Values are the [`Cell`] as JSON. Writes merge (add) into what is there,
//! so the same minute can be written many times (flush after flush, node
//! after node). The `analytics_meta` tree holds the last batch sequence
//! accepted from each secondary (`seq/{gateway id}` → u64 BE), so a
//! retried heartbeat is counted once.
//!
//! Writes are serialized by one mutex held in synchronous code only
//! (callers run on blocking threads), never by a request.

use super::{Cell, Dims, Row};
use crate::store::seal::{SealError, Sealer};
use crate::store::{Store, StoreError};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

const TREE: &str = "analytics";
const META_TREE: &str = "analytics_meta";

/// Why an analytics read or write failed, or a query was refused. The
/// message is safe to show; it holds no secrets.
#[derive(Debug, thiserror::Error)]
pub enum AnalyticsError {
    #[error("analytics storage failure: {0}")]
    Storage(#[from] sled::Error),
    #[error("analytics storage failure: {0}")]
    Store(#[from] StoreError),
    #[error("an analytics record cannot be read: {0}")]
    Corrupt(String),
    #[error("sealing failed: {0}")]
    Seal(#[from] SealError),
    /// The query is not valid (a client mistake: a 400).
    #[error("{0}")]
    Query(String),
}

/// The persisted aggregates. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct AnalyticsDb {
    tree: sled::Tree,
    meta: sled::Tree,
    sealer: Sealer,
    write: Mutex<()>,
    /// Keys and values held, in bytes (kept up to date by writes and
    /// pruning; measured once at open).
    bytes: AtomicU64,
}

impl AnalyticsDb {
    /// The aggregates kept in `store`'s database.
    pub fn open(store: &Store) -> Result<AnalyticsDb, AnalyticsError> {
        let (tree, sealer) = store.side_tree(TREE)?;
        let (meta, _) = store.side_tree(META_TREE)?;
        AnalyticsDb::from_trees(tree, meta, sealer)
    }

    /// The aggregates in `tree` (and `meta`), sealed with `sealer`.
    pub fn from_trees(
        tree: sled::Tree,
        meta: sled::Tree,
        sealer: Sealer,
    ) -> Result<AnalyticsDb, AnalyticsError> {
        let mut bytes = 0u64;
        for item in tree.iter() {
            let (k, v) = item?;
            bytes += (k.len() + v.len()) as u64;
        }
        Ok(AnalyticsDb {
            tree,
            meta,
            sealer,
            write: Mutex::new(()),
            bytes: AtomicU64::new(bytes),
        })
    }

    /// Bytes of keys and values held.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Relaxed)
    }

    /// Adds `rows` to the stored aggregates.
    pub fn merge(&self, rows: &[Row]) -> Result<(), AnalyticsError> {
        self.merge_batch(rows, None).map(|_| ())
    }

    /// Adds `rows` to the stored aggregates unless `batch` — `(gateway id,
    /// sequence)` — is not newer than the last batch accepted from that
    /// gateway; `region` (when set) replaces the rows' region. Returns
    /// whether the rows were added. The rows and the sequence land in one
    /// sled batch.
    pub fn merge_from(
        &self,
        rows: &[Row],
        gateway: &str,
        sequence: u64,
        region: Option<&str>,
    ) -> Result<bool, AnalyticsError> {
        match region {
            Some(r) => {
                let tagged: Vec<Row> = rows
                    .iter()
                    .map(|row| {
                        let mut row = row.clone();
                        row.dims.region = r.to_string();
                        row
                    })
                    .collect();
                self.merge_batch(&tagged, Some((gateway, sequence)))
            }
            None => self.merge_batch(rows, Some((gateway, sequence))),
        }
    }

    /// The last batch sequence accepted from `gateway` (0: none).
    pub fn last_sequence(&self, gateway: &str) -> Result<u64, AnalyticsError> {
        Ok(self
            .meta
            .get(seq_key(gateway))?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0))
    }

    fn merge_batch(
        &self,
        rows: &[Row],
        dedup: Option<(&str, u64)>,
    ) -> Result<bool, AnalyticsError> {
        let _guard = self.write.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((gateway, sequence)) = dedup {
            if sequence <= self.last_sequence(gateway)? {
                return Ok(false);
            }
        }
        // Rows with the same key are added up first.
        let mut merged: BTreeMap<Vec<u8>, Cell> = BTreeMap::new();
        for r in rows {
            merged
                .entry(encode_key(r.minute, &r.dims))
                .or_default()
                .merge(&r.cell);
        }
        let mut batch = sled::Batch::default();
        let mut grown: i64 = 0;
        for (key, mut cell) in merged {
            if let Some(old) = self.tree.get(&key)? {
                cell.merge(&self.open_cell(&key, &old)?);
                grown -= (key.len() + old.len()) as i64;
            }
            let plain =
                serde_json::to_vec(&cell).map_err(|e| AnalyticsError::Corrupt(e.to_string()))?;
            let sealed = self.sealer.seal(&key, &plain)?;
            grown += (key.len() + sealed.len()) as i64;
            batch.insert(key, sealed);
        }
        self.tree.apply_batch(batch)?;
        if let Some((gateway, sequence)) = dedup {
            self.meta
                .insert(seq_key(gateway), &sequence.to_be_bytes())?;
        }
        if grown >= 0 {
            self.bytes.fetch_add(grown as u64, Relaxed);
        } else {
            let _ = self.bytes.fetch_update(Relaxed, Relaxed, |b| {
                Some(b.saturating_sub(grown.unsigned_abs()))
            });
        }
        Ok(true)
    }

    fn open_cell(&self, key: &[u8], sealed: &[u8]) -> Result<Cell, AnalyticsError> {
        let plain = self
            .sealer
            .open(key, sealed)
            .map_err(|e| AnalyticsError::Corrupt(e.to_string()))?;
        serde_json::from_slice(&plain).map_err(|e| AnalyticsError::Corrupt(e.to_string()))
    }

    /// Every stored aggregate of the minutes `from..=to`, in minute order.
    pub fn scan(&self, from: u64, to: u64) -> Result<Vec<Row>, AnalyticsError> {
        let mut out = Vec::new();
        if from > to {
            return Ok(out);
        }
        let start = from.to_be_bytes();
        let range = match to.checked_add(1) {
            Some(end) => self.tree.range(start.to_vec()..end.to_be_bytes().to_vec()),
            None => self.tree.range(start.to_vec()..),
        };
        for item in range {
            let (k, v) = item?;
            let (minute, dims) = decode_key(&k)
                .ok_or_else(|| AnalyticsError::Corrupt("a malformed analytics key".into()))?;
            let cell = self.open_cell(&k, &v)?;
            out.push(Row { minute, dims, cell });
        }
        Ok(out)
    }

    /// Removes the minutes before `oldest_kept`, then the oldest minutes
    /// until at most `max_bytes` are held. Returns the entries removed.
    pub fn prune(&self, oldest_kept: u64, max_bytes: u64) -> Result<usize, AnalyticsError> {
        let _guard = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let mut removed = 0usize;
        let mut freed = 0u64;
        let mut doomed: Vec<sled::IVec> = Vec::new();
        for item in self.tree.range(..oldest_kept.to_be_bytes().to_vec()) {
            let (k, v) = item?;
            freed += (k.len() + v.len()) as u64;
            doomed.push(k);
        }
        let mut held = self.bytes.load(Relaxed).saturating_sub(freed);
        // Whole minutes go, oldest first.
        let mut evicting: Option<[u8; 8]> = None;
        for item in self.tree.range(oldest_kept.to_be_bytes().to_vec()..) {
            let (k, v) = item?;
            let Some(minute) = k.get(..8).and_then(|m| <[u8; 8]>::try_from(m).ok()) else {
                continue;
            };
            if held <= max_bytes && evicting != Some(minute) {
                break;
            }
            evicting = Some(minute);
            let n = (k.len() + v.len()) as u64;
            freed += n;
            held = held.saturating_sub(n);
            doomed.push(k);
        }
        for chunk in doomed.chunks(1000) {
            let mut batch = sled::Batch::default();
            for k in chunk {
                batch.remove(k.clone());
            }
            self.tree.apply_batch(batch)?;
            removed += chunk.len();
        }
        let _ = self
            .bytes
            .fetch_update(Relaxed, Relaxed, |b| Some(b.saturating_sub(freed)));
        Ok(removed)
    }

    /// Flushes the aggregates to disk.
    pub fn flush(&self) -> Result<(), AnalyticsError> {
        self.tree.flush()?;
        self.meta.flush()?;
        Ok(())
    }
}

fn seq_key(gateway: &str) -> Vec<u8> {
    format!("seq/{gateway}").into_bytes()
}

/// The store key of one aggregate.
pub fn encode_key(minute: u64, d: &Dims) -> Vec<u8> {
    let mut k = Vec::with_capacity(
        8 + 13
            + d.api.len()
            + d.operation.len()
            + d.product.len()
            + d.subscription.len()
            + d.user.len()
            + d.region.len(),
    );
    k.extend_from_slice(&minute.to_be_bytes());
    for s in [
        &d.api,
        &d.operation,
        &d.product,
        &d.subscription,
        &d.user,
        &d.region,
    ] {
        let b = s.as_bytes();
        let b = &b[..b.len().min(u16::MAX as usize)];
        k.extend_from_slice(&(b.len() as u16).to_be_bytes());
        k.extend_from_slice(b);
    }
    k.push(d.class);
    k
}

/// The minute and key of a store key.
pub fn decode_key(k: &[u8]) -> Option<(u64, Dims)> {
    let minute = u64::from_be_bytes(k.get(..8)?.try_into().ok()?);
    let mut at = 8;
    let mut next = || -> Option<String> {
        let len = u16::from_be_bytes(k.get(at..at + 2)?.try_into().ok()?) as usize;
        let s = std::str::from_utf8(k.get(at + 2..at + 2 + len)?).ok()?;
        at += 2 + len;
        Some(s.to_string())
    };
    let api = next()?;
    let operation = next()?;
    let product = next()?;
    let subscription = next()?;
    let user = next()?;
    let region = next()?;
    let class = *k.get(at)?;
    if at + 1 != k.len() {
        return None;
    }
    Some((
        minute,
        Dims {
            api,
            operation,
            product,
            subscription,
            user,
            region,
            class,
        },
    ))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::seal::{MasterKey, Purpose};

    pub(crate) fn temp_db() -> AnalyticsDb {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let sealer = MasterKey::generate()
            .unwrap()
            .sealer(Purpose::Store)
            .unwrap();
        AnalyticsDb::from_trees(
            db.open_tree(TREE).unwrap(),
            db.open_tree(META_TREE).unwrap(),
            sealer,
        )
        .unwrap()
    }

    pub(crate) fn row(minute: u64, api: &str, status: u16, ms: u64) -> Row {
        Row {
            minute,
            dims: Dims {
                api: api.into(),
                operation: "op".into(),
                region: "west".into(),
                class: (status / 100) as u8,
                ..Dims::default()
            },
            cell: Cell::of(&super::super::Sample {
                api,
                status,
                bytes_in: 1,
                bytes_out: 10,
                total: std::time::Duration::from_millis(ms),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn keys_round_trip_and_sort_by_minute() {
        let d = Dims {
            api: "a".into(),
            user: "ü".into(),
            class: 4,
            ..Dims::default()
        };
        let k = encode_key(300, &d);
        assert_eq!(decode_key(&k), Some((300, d.clone())));
        assert!(encode_key(299, &d) < k);
        assert!(decode_key(&k[..k.len() - 1]).is_none());
    }

    #[test]
    fn merges_add_up_and_scan_by_range() {
        let db = temp_db();
        db.merge(&[row(10, "a", 200, 5), row(11, "a", 200, 7)])
            .unwrap();
        db.merge(&[row(10, "a", 200, 9)]).unwrap();
        let rows = db.scan(10, 10).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].cell.count, 2);
        assert_eq!(rows[0].cell.api_us_min, 5000);
        assert_eq!(rows[0].cell.api_us_max, 9000);
        assert_eq!(db.scan(0, 100).unwrap().len(), 2);
        assert!(db.scan(12, 100).unwrap().is_empty());
        assert!(db.bytes() > 0);
    }

    #[test]
    fn a_batch_is_counted_once() {
        let db = temp_db();
        let rows = [row(10, "a", 200, 5)];
        assert!(db.merge_from(&rows, "gw1", 5, Some("east")).unwrap());
        assert!(!db.merge_from(&rows, "gw1", 5, Some("east")).unwrap());
        assert!(!db.merge_from(&rows, "gw1", 4, Some("east")).unwrap());
        assert!(db.merge_from(&rows, "gw2", 1, Some("east")).unwrap());
        let got = db.scan(10, 10).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].dims.region, "east");
        assert_eq!(got[0].cell.count, 2);
        assert_eq!(db.last_sequence("gw1").unwrap(), 5);
    }

    #[test]
    fn pruning_drops_old_minutes_then_the_oldest_past_the_size_bound() {
        let db = temp_db();
        for m in 1..=10 {
            db.merge(&[row(m, "a", 200, 1), row(m, "b", 200, 1)])
                .unwrap();
        }
        // Retention: minutes before 4 go.
        assert_eq!(db.prune(4, u64::MAX).unwrap(), 6);
        assert_eq!(db.scan(0, 3).unwrap().len(), 0);
        assert_eq!(db.scan(4, 10).unwrap().len(), 14);
        // Size: keep about three minutes' worth; whole minutes go, oldest first.
        let per_minute = db.bytes() / 7;
        db.prune(0, per_minute * 3).unwrap();
        let left = db.scan(0, 100).unwrap();
        assert!(db.bytes() <= per_minute * 3 + per_minute / 2);
        assert_eq!(left.first().map(|r| r.minute), Some(8));
        assert_eq!(left.len(), 6);
    }
}
