//! The custom hostnames compiled for the HTTPS listener: each
//! `/mgmt/hostnames/{host}` with its certificate's chain and key made into
//! a rustls `CertifiedKey` once, here, so a handshake only looks names up
//! ([`crate::tls::sni::HostTable`]). [`SnapshotHandle`] is the listener's
//! [`HostSource`]: every handshake reads the snapshot in service, so a
//! change applies without a restart.

use super::{backends::ClientCerts, SnapshotHandle};
use crate::error::Detail;
use crate::model::Catalog;
use crate::tls::sni::{certified_key, HostSource, HostTable};
use std::sync::Arc;

/// Compiles `catalog.hostnames`; a hostname whose certificate is missing,
/// is a CA certificate or does not load is a problem naming it.
pub fn compile(catalog: &Catalog, certs: &ClientCerts, problems: &mut Vec<Detail>) -> HostTable {
    let mut table = HostTable::default();
    let defaults: Vec<&str> = catalog
        .hostnames
        .iter()
        .filter(|(_, h)| h.default_ssl_binding)
        .map(|(host, _)| host.as_str())
        .collect();
    if defaults.len() > 1 {
        problems.push(Detail::new(
            format!("hostnames/{}", defaults[1]),
            format!(
                "only one hostname can be the defaultSslBinding ({} are)",
                defaults.join(", ")
            ),
        ));
    }
    for (host, h) in &catalog.hostnames {
        let target = format!("hostnames/{host}.certificateId");
        let is_ca = catalog
            .certificates
            .get(&h.certificate_id)
            .is_some_and(|c| c.is_ca);
        let cert = match certs.get(&h.certificate_id) {
            Some(c) if !is_ca => c,
            _ => {
                problems.push(Detail::new(
                    target,
                    format!(
                        "certificate {:?} is not a stored certificate with a private key",
                        h.certificate_id
                    ),
                ));
                continue;
            }
        };
        match certified_key(cert.chain.clone(), &cert.key) {
            Ok(key) => table.insert(
                host,
                key,
                h.negotiate_client_certificate,
                h.default_ssl_binding,
            ),
            Err(e) => problems.push(Detail::new(
                target,
                format!("certificate {:?}: {e}", h.certificate_id),
            )),
        }
    }
    table
}

impl HostSource for SnapshotHandle {
    fn hosts(&self) -> Arc<HostTable> {
        self.current.load().hostnames.clone()
    }
}
