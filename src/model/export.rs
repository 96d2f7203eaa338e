//! The configuration export: what `GET /cluster/v1/config` serves and what a
//! secondary keeps as its backup.
//!
//! The payload is the [`Catalog`] as JSON (camelCase, `schemaVersion` and
//! `revision` first), gzip-compressed. Gateway signing keys are not part of
//! it (the catalog never serializes them). A reader refuses a payload whose
//! `schemaVersion` is newer than [`SCHEMA_VERSION`], and a payload that
//! inflates beyond its size cap (a zip bomb stops at the cap, not at the
//! end of memory).

use super::{Catalog, SCHEMA_VERSION};
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde::Deserialize;
use std::io::{Read, Write};

/// Media type of the (decompressed) export.
pub const CONTENT_TYPE: &str = "application/json";

/// Largest export a secondary inflates (uncompressed bytes).
pub const MAX_EXPORT_BYTES: usize = 1 << 30;

/// Why an export could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    #[error("the payload is not valid gzip: {0}")]
    Gzip(String),
    #[error("the payload inflates beyond {0} bytes")]
    TooLarge(usize),
    #[error("the payload has schema version {found}; this build reads versions up to {supported}")]
    NewerSchema { found: u32, supported: u32 },
    #[error("the payload is not a configuration export: {0}")]
    Json(String),
}

/// The export of `catalog`, gzip-compressed.
pub fn encode(catalog: &Catalog) -> Vec<u8> {
    // serde_json writes token by token: buffer before the compressor, or
    // every tiny write pays the encoder's per-call cost (20x slower).
    let mut out = std::io::BufWriter::with_capacity(
        64 * 1024,
        GzEncoder::new(Vec::new(), Compression::fast()),
    );
    // Writing to a Vec cannot fail, and these plain types always serialize.
    let _ = serde_json::to_writer(&mut out, catalog);
    match out.into_inner() {
        Ok(gz) => gz.finish().unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

/// Inflates `gz`, refusing more than `max` bytes.
pub fn inflate(gz: &[u8], max: usize) -> Result<Vec<u8>, ExportError> {
    let mut out = Vec::new();
    GzDecoder::new(gz)
        .take(max as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| ExportError::Gzip(e.to_string()))?;
    if out.len() > max {
        return Err(ExportError::TooLarge(max));
    }
    Ok(out)
}

/// Reads an export (gzip-compressed JSON).
pub fn decode(gz: &[u8], max: usize) -> Result<Catalog, ExportError> {
    parse(&inflate(gz, max)?)
}

/// Reads an uncompressed export.
pub fn parse(json: &[u8]) -> Result<Catalog, ExportError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        schema_version: u32,
    }
    match serde_json::from_slice::<Catalog>(json) {
        Ok(c) if c.schema_version > SCHEMA_VERSION => Err(ExportError::NewerSchema {
            found: c.schema_version,
            supported: SCHEMA_VERSION,
        }),
        Ok(c) => Ok(c),
        Err(e) => match serde_json::from_slice::<Probe>(json) {
            // A newer schema usually fails the strict parse first: say why.
            Ok(p) if p.schema_version > SCHEMA_VERSION => Err(ExportError::NewerSchema {
                found: p.schema_version,
                supported: SCHEMA_VERSION,
            }),
            _ => Err(ExportError::Json(e.to_string())),
        },
    }
}

/// Compresses arbitrary bytes (for callers that serve the export to
/// clients asking for gzip).
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    let _ = gz.write_all(bytes);
    gz.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Api, Change, GatewayKeys};

    #[test]
    fn round_trips_without_gateway_keys() {
        let mut c = Catalog::new();
        c.revision = 7;
        c.apply(&Change::Api(
            "a".into(),
            Some(Api {
                path: "a".into(),
                ..Api::default()
            }),
        ));
        c.apply(&Change::GatewayKeys(
            "west".into(),
            Some(GatewayKeys {
                primary: crate::error::Secret::new("very-secret-key-1"),
                secondary: crate::error::Secret::new("very-secret-key-2"),
            }),
        ));
        let gz = encode(&c);
        let json = inflate(&gz, MAX_EXPORT_BYTES).unwrap();
        let text = String::from_utf8(json).unwrap();
        assert!(
            text.starts_with("{\"schemaVersion\":1,\"revision\":7"),
            "{text}"
        );
        assert!(!text.contains("very-secret-key"), "{text}");
        let back = decode(&gz, MAX_EXPORT_BYTES).unwrap();
        assert_eq!(back.apis, c.apis);
        assert!(back.gateway_keys.is_empty());
    }

    #[test]
    fn refuses_bombs_newer_schemas_and_garbage() {
        let big = gzip(&vec![b' '; 10_000]);
        assert_eq!(decode(&big, 1_000), Err(ExportError::TooLarge(1_000)));
        assert!(matches!(
            decode(b"not gzip", 1_000),
            Err(ExportError::Gzip(_))
        ));
        let newer = gzip(br#"{"schemaVersion":2,"revision":1,"somethingNew":[]}"#);
        assert_eq!(
            decode(&newer, 1_000),
            Err(ExportError::NewerSchema {
                found: 2,
                supported: 1
            })
        );
        assert!(matches!(
            decode(&gzip(b"{\"apis\": 3}"), 1_000),
            Err(ExportError::Json(_))
        ));
        // Truncated gzip.
        let good = encode(&Catalog::new());
        assert!(decode(&good[..good.len() / 2], 1 << 20).is_err());
    }
}
