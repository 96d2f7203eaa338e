//! The one write path into the configuration.
//!
//! Owns: turning a plan (current catalog → changes) into one atomic store
//! write whose result compiles into the next snapshot before it is
//! acknowledged, then publishing that snapshot to the gateway. The
//! management API and the developer portal both write through here.
//!
//! May use: `store`, `snapshot`, `model`, `error`.

use crate::error::ApiError;
use crate::model::{Catalog, Change};
use crate::snapshot::{compile_with, SnapshotHandle};
use crate::store::{Store, WriteError};
use std::sync::Arc;

/// Runs one write: `plan` turns the current catalog into changes (or
/// refuses); the result must compile; then it is persisted, flushed and
/// published to the gateway. Returns the catalog as of the write.
pub async fn commit<F>(
    store: &Arc<Store>,
    snapshot: &Arc<SnapshotHandle>,
    plan: F,
) -> Result<Arc<Catalog>, ApiError>
where
    F: FnOnce(&Catalog) -> Result<Vec<Change>, ApiError> + Send + 'static,
{
    let store = store.clone();
    let handle = snapshot.clone();
    let joined = tokio::task::spawn_blocking(move || {
        let written = store.write(plan, |next| {
            compile_with(next, handle.options())
                .map(Arc::new)
                .map_err(ApiError::invalid_all)
        });
        match written {
            Ok(c) => {
                handle.publish(c.artifact);
                Ok(c.catalog)
            }
            Err(WriteError::Rejected(e)) => Err(e),
            Err(WriteError::Storage(e)) => {
                tracing::error!(error = %e, "configuration write failed in the store");
                Err(ApiError::internal())
            }
        }
    })
    .await;
    joined.unwrap_or_else(|e| {
        tracing::error!(error = %e, "configuration write task failed");
        Err(ApiError::internal())
    })
}
