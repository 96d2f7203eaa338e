//! `/mgmt/hostnames/{host}`: the [`Hostname`] resource, the custom
//! hostnames of the gateway's HTTPS listener (certificate by SNI,
//! client-certificate negotiation, the default binding). The host in the
//! URL is a DNS name or a `*.` wildcard, case-insensitive (stored
//! lowercase). A PUT with `defaultSslBinding: true` moves the flag: the
//! hostname that had it loses it in the same atomic write, so there is
//! never a moment without a default (APIM's portal treats the default
//! binding the same way: one at a time).

use super::body::ensure_valid;
use super::resource::{self, Resource};
use super::MgmtState;
use crate::error::{ApiError, Detail};
use crate::model::{normalize_host, Catalog, Change, Hostname};
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use std::collections::BTreeMap;

impl Resource for Hostname {
    const NAME: &'static str = "hostname";
    const READ_ONLY: &'static [&'static str] = &["hostName"];

    fn all(c: &Catalog) -> &BTreeMap<String, Self> {
        &c.hostnames
    }

    fn check_id(id: &str) -> Result<(), Detail> {
        normalize_host(id)
            .map(|_| ())
            .map_err(|m| Detail::new("hostName", m))
    }

    fn plan_put(
        host: &str,
        mut new: Self,
        _old: Option<&Self>,
        c: &Catalog,
    ) -> Result<Vec<Change>, ApiError> {
        let mut details = Vec::new();
        new.normalize(c, &mut details);
        ensure_valid(details)?;
        let mut changes = Vec::new();
        if new.default_ssl_binding {
            for (other, h) in &c.hostnames {
                if other != host && h.default_ssl_binding {
                    let mut moved = h.clone();
                    moved.default_ssl_binding = false;
                    changes.push(Change::Hostname(other.clone(), Some(moved)));
                }
            }
        }
        changes.push(Change::Hostname(host.into(), Some(new)));
        Ok(changes)
    }

    fn plan_delete(host: &str, _c: &Catalog, _q: Option<&str>) -> Result<Vec<Change>, ApiError> {
        Ok(vec![Change::Hostname(host.into(), None)])
    }

    fn view(&self, host: &str) -> serde_json::Value {
        serde_json::json!({
            "id": host,
            "hostName": host,
            "certificateId": self.certificate_id,
            "negotiateClientCertificate": self.negotiate_client_certificate,
            "defaultSslBinding": self.default_ssl_binding,
        })
    }
}

/// Host names are case-insensitive: the URL's is looked up lowercase.
fn lower(host: String) -> Path<String> {
    Path(host.to_ascii_lowercase())
}

pub async fn get(s: State<MgmtState>, Path(host): Path<String>) -> Result<Response, ApiError> {
    resource::get_one::<Hostname>(s, lower(host)).await
}

pub async fn put(
    s: State<MgmtState>,
    Path(host): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    resource::put_one::<Hostname>(s, lower(host), headers, body).await
}

pub async fn delete(
    s: State<MgmtState>,
    Path(host): Path<String>,
    q: RawQuery,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    resource::delete_one::<Hostname>(s, lower(host), q, headers).await
}
