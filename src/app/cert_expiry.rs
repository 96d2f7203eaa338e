//! The certificate expiry watch: at start-up and then once a day, every
//! stored certificate (`/mgmt/certificates`) expiring within
//! [`WARN_DAYS`] is logged as a warning and every expired one as an error,
//! with its id, subject, thumbprint and expiry date (never the PEM or key).
//! Runs on the primary (it holds the store); it reads the current catalog
//! each time, so certificates added later are watched too.

use crate::model::Catalog;
use crate::shutdown::Shutdown;
use std::sync::Arc;
use std::time::Duration;

/// Certificates expiring within this many days are warned about.
pub const WARN_DAYS: i64 = 30;

/// How often the watch runs after start-up.
const EVERY: Duration = Duration::from_secs(24 * 60 * 60);

/// What the watch says about one certificate.
#[derive(Debug, PartialEq, Eq)]
pub enum Expiry {
    Expired,
    Soon,
}

/// The certificates of `catalog` worth a log line at `now` (Unix seconds):
/// `(id, days left, what)`, logged by [`check`].
pub fn due(catalog: &Catalog, now: u64) -> Vec<(&str, i64, Expiry)> {
    catalog
        .certificates
        .iter()
        .filter_map(|(id, c)| {
            let days = c.expires_in_days(now)?;
            let what = if days < 0 {
                Expiry::Expired
            } else if days < WARN_DAYS {
                Expiry::Soon
            } else {
                return None;
            };
            Some((id.as_str(), days, what))
        })
        .collect()
}

/// Logs every certificate of `catalog` that expired or expires soon.
pub fn check(catalog: &Catalog, now: u64) {
    for (id, days, what) in due(catalog, now) {
        let Some(c) = catalog.certificates.get(id) else {
            continue;
        };
        match what {
            Expiry::Expired => tracing::error!(
                certificate = id,
                subject = %c.subject,
                thumbprint = %c.thumbprint,
                expired = %c.expiration_date,
                "certificate has expired"
            ),
            Expiry::Soon => tracing::warn!(
                certificate = id,
                subject = %c.subject,
                thumbprint = %c.thumbprint,
                expires = %c.expiration_date,
                expires_in_days = days,
                "certificate expires soon"
            ),
        }
    }
}

/// Checks now, then daily, until shutdown.
pub async fn watch(catalog: impl Fn() -> Arc<Catalog> + Send + 'static, mut shutdown: Shutdown) {
    loop {
        check(&catalog(), crate::model::unix_now());
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = shutdown.wait() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Certificate;

    #[test]
    fn warns_within_thirty_days_and_flags_expired() {
        let mut catalog = Catalog::default();
        let cert = |date: &str| Certificate {
            expiration_date: date.into(),
            ..Certificate::default()
        };
        catalog
            .certificates
            .insert("old".into(), cert("2024-02-01T00:00:00Z"));
        catalog
            .certificates
            .insert("soon".into(), cert("2024-03-20T00:00:00Z"));
        catalog
            .certificates
            .insert("fine".into(), cert("2024-04-30T00:00:00Z"));
        catalog
            .certificates
            .insert("edge".into(), cert("2024-03-31T00:00:00Z"));
        let now = 1_709_251_200; // 2024-03-01T00:00:00Z
        let due = due(&catalog, now);
        // "edge" is 30 days away: not yet.
        assert_eq!(
            due,
            vec![("old", -29, Expiry::Expired), ("soon", 19, Expiry::Soon)]
        );
    }
}
