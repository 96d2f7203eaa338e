//! `/mgmt/certificates/{id}`: the [`Certificate`] resource. A PUT sends
//! `{"pem": "<chain PEM + private key PEM>"}` or a PKCS#12 file
//! (`{"data": "<base64 PFX>", "password": "..."}`, stored as that PEM),
//! checked on write (see `model::certificate`, `model::pkcs12`); an
//! already-expired certificate is accepted with a warning in the log. GET
//! shows metadata only (`subject`, `issuer`, `thumbprint`,
//! `expirationDate`, `expiresInDays` computed at read time,
//! `hasPrivateKey`, `isCa`), never the PEM, data or password. A
//! certificate a backend names in `credentials.certificateIds` cannot be
//! deleted (409 naming the backends); one a policy names is a 400 naming
//! the policy (the snapshot would not compile).

use super::body::ensure_valid;
use super::resource::Resource;
use crate::error::ApiError;
use crate::model::{Catalog, Certificate, Change};
use std::collections::BTreeMap;

impl Resource for Certificate {
    const NAME: &'static str = "certificate";
    const READ_ONLY: &'static [&'static str] = &[
        "subject",
        "issuer",
        "thumbprint",
        "expirationDate",
        "hasPrivateKey",
        "expiresInDays",
    ];

    fn all(c: &Catalog) -> &BTreeMap<String, Self> {
        &c.certificates
    }

    fn plan_put(
        id: &str,
        mut new: Self,
        _old: Option<&Self>,
        _c: &Catalog,
    ) -> Result<Vec<Change>, ApiError> {
        let mut details = Vec::new();
        new.normalize(&mut details);
        ensure_valid(details)?;
        if new
            .expires_in_days(crate::model::unix_now())
            .is_some_and(|d| d < 0)
        {
            tracing::warn!(
                certificate = id,
                subject = %new.subject,
                thumbprint = %new.thumbprint,
                expired = %new.expiration_date,
                "stored a certificate that has already expired"
            );
        }
        Ok(vec![Change::Certificate(id.into(), Some(new))])
    }

    fn plan_delete(id: &str, c: &Catalog, _q: Option<&str>) -> Result<Vec<Change>, ApiError> {
        let users: Vec<&str> = c
            .backends
            .iter()
            .filter(|(_, b)| {
                b.credentials
                    .certificate_ids
                    .iter()
                    .any(|x| crate::model::certificate_ref_id(x) == id)
            })
            .map(|(bid, _)| bid.as_str())
            .collect();
        if !users.is_empty() {
            return Err(ApiError::conflict(format!(
                "certificate {id:?} is used by the backend(s) {}; remove it from their credentials.certificateIds first",
                users.join(", ")
            )));
        }
        Ok(vec![Change::Certificate(id.into(), None)])
    }

    /// Metadata only: never the PEM (it holds the private key).
    fn view(&self, id: &str) -> serde_json::Value {
        serde_json::json!({
            "id": id,
            "subject": self.subject,
            "issuer": self.issuer,
            "thumbprint": self.thumbprint,
            "expirationDate": self.expiration_date,
            "expiresInDays": self.expires_in_days(crate::model::unix_now()),
            "hasPrivateKey": self.has_private_key,
            "isCa": self.is_ca,
        })
    }
}
