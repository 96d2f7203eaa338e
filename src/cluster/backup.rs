//! The secondary's configuration backup: the last applied export, kept in
//! `data_dir` so a secondary can start while its primary is unreachable.
//!
//! The file is one header line and the export as the primary sent it
//! (gzip JSON), sealed with the master key ([`crate::store::seal`],
//! purpose `Backup`, the revision as associated data), because the export
//! holds every secret of the configuration:
//!
//! ```text
//! turnpike-config-backup 2 revision=<n> bytes=<len> sha256=<hex> primary=<url>\n
//! <len bytes: the sealed gzip>
//! ```
//!
//! It is written with [`crate::durable::write_private`] (temp file, fsync,
//! rename, mode 0600), so a crash leaves the old backup or the new one,
//! never a torn one; and a file that fails its length, its checksum or its
//! decryption (damaged, or sealed with another master key) is reported as
//! corrupt and not used. A version 1 file (written in clear by an earlier
//! build) is still read, and re-written sealed at once.

use crate::store::seal::{MasterKey, Purpose};
use std::path::{Path, PathBuf};

/// The backup's file name inside `data_dir`.
pub const FILE_NAME: &str = "config-backup.gz";

const MAGIC: &str = "turnpike-config-backup 2";
/// The clear format of earlier builds (read, then re-written sealed).
const MAGIC_CLEAR: &str = "turnpike-config-backup 1";

/// A backup read back from disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    pub revision: u64,
    /// The export (gzip JSON).
    pub export: Vec<u8>,
    /// The primary it came from.
    pub primary: String,
}

/// Why there is no usable backup.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("no configuration backup at {0}")]
    Missing(PathBuf),
    #[error("the configuration backup {path} is corrupt ({reason}); ignoring it")]
    Corrupt { path: PathBuf, reason: String },
    #[error("the configuration backup {path} cannot be read: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where the backup lives under `data_dir`.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}

fn aad(revision: u64) -> Vec<u8> {
    format!("config-backup revision={revision}").into_bytes()
}

/// Seals and writes the backup atomically. Blocking.
pub fn save(
    data_dir: &Path,
    key: &MasterKey,
    revision: u64,
    export: &[u8],
    primary: &str,
) -> std::io::Result<()> {
    let sealed = key
        .sealer(Purpose::Backup)
        .and_then(|s| s.seal(&aad(revision), export))
        .map_err(std::io::Error::other)?;
    let header = format!(
        "{MAGIC} revision={revision} bytes={} sha256={} primary={}\n",
        sealed.len(),
        sha256_hex(&sealed),
        primary.replace(['\n', ' '], "")
    );
    let mut file = Vec::with_capacity(header.len() + sealed.len());
    file.extend_from_slice(header.as_bytes());
    file.extend_from_slice(&sealed);
    crate::durable::write_private(&path(data_dir), &file)
}

/// Reads, verifies and opens the backup. Blocking.
pub fn load(data_dir: &Path, key: &MasterKey) -> Result<Backup, BackupError> {
    let path = path(data_dir);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(BackupError::Missing(path))
        }
        Err(source) => return Err(BackupError::Io { path, source }),
    };
    let corrupt = |reason: &str| BackupError::Corrupt {
        path: path.clone(),
        reason: reason.to_string(),
    };
    let nl = bytes
        .iter()
        .take(4096)
        .position(|&b| b == b'\n')
        .ok_or_else(|| corrupt("no header line"))?;
    let header = std::str::from_utf8(&bytes[..nl]).map_err(|_| corrupt("header is not text"))?;
    let (fields, sealed) = match header.strip_prefix(MAGIC) {
        Some(f) => (f, true),
        None => (
            header
                .strip_prefix(MAGIC_CLEAR)
                .ok_or_else(|| corrupt("not a turnpike configuration backup"))?,
            false,
        ),
    };
    let mut revision = None;
    let mut len = None;
    let mut sum = None;
    let mut primary = String::new();
    for field in fields.split_whitespace() {
        match field.split_once('=') {
            Some(("revision", v)) => revision = v.parse::<u64>().ok(),
            Some(("bytes", v)) => len = v.parse::<usize>().ok(),
            Some(("sha256", v)) => sum = Some(v.to_string()),
            Some(("primary", v)) => primary = v.to_string(),
            _ => {}
        }
    }
    let (Some(revision), Some(len), Some(sum)) = (revision, len, sum) else {
        return Err(corrupt("incomplete header"));
    };
    let export = &bytes[nl + 1..];
    if export.len() != len {
        return Err(corrupt(&format!(
            "{} bytes of payload, the header says {len}",
            export.len()
        )));
    }
    if sha256_hex(export) != sum {
        return Err(corrupt("checksum mismatch"));
    }
    if !sealed {
        // Written in clear by an earlier build: seal it now.
        match save(data_dir, key, revision, export, &primary) {
            Ok(()) => {
                tracing::info!(path = %path.display(), "sealed a configuration backup written in clear")
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot re-write the configuration backup sealed")
            }
        }
        return Ok(Backup {
            revision,
            export: export.to_vec(),
            primary,
        });
    }
    let export = key
        .sealer(Purpose::Backup)
        .and_then(|s| s.open(&aad(revision), export))
        .map_err(|e| corrupt(&format!("the payload {e}")))?;
    Ok(Backup {
        revision,
        export,
        primary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> MasterKey {
        MasterKey::from_bytes([b; 32])
    }

    #[test]
    fn round_trips_and_detects_damage() {
        let dir = tempfile::tempdir().unwrap();
        let k = key(1);
        assert!(matches!(load(dir.path(), &k), Err(BackupError::Missing(_))));
        save(
            dir.path(),
            &k,
            42,
            b"\x1f\x8bpayload-secret",
            "http://p:8001",
        )
        .unwrap();
        let b = load(dir.path(), &k).unwrap();
        assert_eq!(b.revision, 42);
        assert_eq!(b.export, b"\x1f\x8bpayload-secret");
        assert_eq!(b.primary, "http://p:8001");

        let file = path(dir.path());
        let good = std::fs::read(&file).unwrap();
        assert!(!good.windows(14).any(|w| w == b"payload-secret"));
        // One flipped payload byte, a truncation, garbage, another
        // revision in the header (same length): all corrupt.
        let mut flipped = good.clone();
        *flipped.last_mut().unwrap() ^= 1;
        let truncated = good[..good.len() - 3].to_vec();
        let mut relabeled = good.clone();
        let at = good.windows(11).position(|w| w == b"revision=42").unwrap();
        relabeled[at + 10] = b'3';
        for bad in [flipped, truncated, relabeled, b"junk".to_vec(), Vec::new()] {
            std::fs::write(&file, bad).unwrap();
            assert!(
                matches!(load(dir.path(), &k), Err(BackupError::Corrupt { .. })),
                "{:?}",
                load(dir.path(), &k)
            );
        }
        // Sealed with another master key: reported like a corrupt file.
        std::fs::write(&file, &good).unwrap();
        let e = load(dir.path(), &key(2)).unwrap_err();
        assert!(matches!(e, BackupError::Corrupt { .. }), "{e}");
        assert!(e.to_string().contains("cannot be decrypted"), "{e}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            save(dir.path(), &k, 43, b"x", "p").unwrap();
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_clear_backup_is_read_and_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let export = b"\x1f\x8bclear-secret";
        let header = format!(
            "{MAGIC_CLEAR} revision=5 bytes={} sha256={} primary=http://p\n",
            export.len(),
            sha256_hex(export)
        );
        let mut file = header.into_bytes();
        file.extend_from_slice(export);
        std::fs::write(path(dir.path()), file).unwrap();
        let b = load(dir.path(), &key(1)).unwrap();
        assert_eq!((b.revision, b.export.as_slice()), (5, &export[..]));
        let now = std::fs::read(path(dir.path())).unwrap();
        assert!(now.starts_with(MAGIC.as_bytes()));
        assert!(!now.windows(12).any(|w| w == b"clear-secret"));
        assert_eq!(load(dir.path(), &key(1)).unwrap().export, export);
    }
}
