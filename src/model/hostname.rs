//! The custom hostname resource (`/mgmt/hostnames/{host}`): which stored
//! certificate the gateway's HTTPS listener presents for a TLS server name
//! (SNI), whether the handshake asks for a client certificate, and which
//! hostname's certificate answers clients that send an unknown name or
//! none (`defaultSslBinding`), as APIM's `hostnameConfigurations`.
//!
//! Owns: the [`Hostname`] type (`certificateId`,
//! `negotiateClientCertificate`, `defaultSslBinding`), the host name rules
//! ([`normalize_host`]: a DNS name or a `*.` wildcard of one label,
//! lowercased) and [`Hostname::normalize`] (the certificate must exist,
//! hold a private key and not be a CA certificate).

use super::{certificate_ref_id, Catalog};
use crate::error::Detail;
use serde::{Deserialize, Serialize};

/// A custom hostname of the gateway (`/mgmt/hostnames/{host}`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Hostname {
    /// The certificate (`/mgmt/certificates/{id}`, with its private key)
    /// presented for this name. A resource path ending in
    /// `/certificates/{id}` is accepted and stored as the id.
    pub certificate_id: String,
    /// Ask (never require) the client for a certificate in the handshake.
    #[serde(default)]
    pub negotiate_client_certificate: bool,
    /// This hostname's certificate answers clients that send no server
    /// name or one no hostname matches. At most one hostname has it.
    #[serde(default)]
    pub default_ssl_binding: bool,
}

/// Longest host name (RFC 1035).
const MAX_HOST: usize = 253;

/// Checks a host name and returns it lowercased: a DNS name (labels of
/// letters, digits and '-', not starting or ending with '-', at most 63
/// characters each) or `*.` followed by a DNS name of at least two labels
/// (the wildcard stands for exactly one label). IP addresses are refused:
/// TLS clients never send them as a server name.
pub fn normalize_host(host: &str) -> Result<String, String> {
    let lower = host.to_ascii_lowercase();
    let why = |m: &str| {
        format!(
            "invalid hostname {:?}: {m}",
            super::truncate(host, MAX_HOST + 10)
        )
    };
    if lower.is_empty() || lower.len() > MAX_HOST {
        return Err(why("1-253 characters"));
    }
    let (wild, name) = match lower.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, lower.as_str()),
    };
    let labels: Vec<&str> = name.split('.').collect();
    for label in &labels {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            return Err(why(
                "a DNS name (labels of letters, digits and '-') or '*.' followed by one",
            ));
        }
    }
    if labels
        .last()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(why("IP addresses are not server names; name a DNS host"));
    }
    if wild && labels.len() < 2 {
        return Err(why(
            "a wildcard covers one label under a name of at least two labels (*.example.com)",
        ));
    }
    Ok(lower)
}

impl Hostname {
    /// Checks the PUT body against the catalog: the certificate exists,
    /// has a private key and is not a CA certificate. Stores the plain
    /// certificate id.
    pub fn normalize(&mut self, catalog: &Catalog, details: &mut Vec<Detail>) {
        let id = certificate_ref_id(self.certificate_id.trim()).to_string();
        if id.is_empty() {
            details.push(Detail::new(
                "certificateId",
                "is required: the certificate (/mgmt/certificates/{id}) presented for this hostname",
            ));
            return;
        }
        match catalog.certificates.get(&id) {
            None => details.push(Detail::new(
                "certificateId",
                format!("no certificate {id:?}"),
            )),
            Some(c) if c.is_ca => details.push(Detail::new(
                "certificateId",
                format!(
                    "certificate {id:?} is a CA certificate (isCa); a hostname needs a server certificate with its private key"
                ),
            )),
            Some(c) if !c.has_private_key => details.push(Detail::new(
                "certificateId",
                format!("certificate {id:?} has no private key"),
            )),
            Some(_) => {}
        }
        self.certificate_id = id;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names() {
        assert_eq!(
            normalize_host("API.Example.com").unwrap(),
            "api.example.com"
        );
        assert_eq!(
            normalize_host("*.Internal.test").unwrap(),
            "*.internal.test"
        );
        assert_eq!(normalize_host("localhost").unwrap(), "localhost");
        assert_eq!(normalize_host("a-b.c1.io").unwrap(), "a-b.c1.io");
        for bad in [
            "",
            "*",
            "*.com",
            "a.*.com",
            "**.example.com",
            "-a.example.com",
            "a-.example.com",
            "a..b",
            ".example.com",
            "example.com.",
            "a_b.example.com",
            "127.0.0.1",
            "ex ample.com",
            "exämple.com",
            &format!("{}.com", "a".repeat(64)),
            &format!("{}com", "a.".repeat(130)),
        ] {
            assert!(normalize_host(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn hostnames_travel_in_the_export_and_the_records() {
        let mut c = Catalog::new();
        c.apply(&super::super::Change::Hostname(
            "*.internal.test".into(),
            Some(Hostname {
                certificate_id: "internal".into(),
                negotiate_client_certificate: true,
                default_ssl_binding: true,
            }),
        ));
        let gz = super::super::export::encode(&c);
        let back = super::super::export::decode(&gz, 1 << 20).unwrap();
        assert_eq!(back.hostnames, c.hostnames);
        let mut loaded = Catalog::new();
        for (k, v) in c.records() {
            loaded.load_record(&k, &v).unwrap();
        }
        assert_eq!(loaded.hostnames, c.hostnames);
        assert!(!c.is_pristine());
    }
}
