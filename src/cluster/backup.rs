//! The secondary's configuration backup: the last applied export, kept in
//! `data_dir` so a secondary can start while its primary is unreachable.
//!
//! The file is one header line and the export exactly as the primary sent
//! it (gzip JSON):
//!
//! ```text
//! turnpike-config-backup 1 revision=<n> bytes=<len> sha256=<hex> primary=<url>\n
//! <len bytes of gzip>
//! ```
//!
//! It is written with [`crate::durable::write_private`] (temp file, fsync,
//! rename, mode 0600: it holds subscription keys), so a crash leaves the old
//! backup or the new one, never a torn one; and a file that fails its length
//! or checksum anyway is reported as corrupt and not used.

use std::path::{Path, PathBuf};

/// The backup's file name inside `data_dir`.
pub const FILE_NAME: &str = "config-backup.gz";

const MAGIC: &str = "turnpike-config-backup 1";

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

/// Writes the backup atomically. Blocking.
pub fn save(data_dir: &Path, revision: u64, export: &[u8], primary: &str) -> std::io::Result<()> {
    let header = format!(
        "{MAGIC} revision={revision} bytes={} sha256={} primary={}\n",
        export.len(),
        sha256_hex(export),
        primary.replace(['\n', ' '], "")
    );
    let mut file = Vec::with_capacity(header.len() + export.len());
    file.extend_from_slice(header.as_bytes());
    file.extend_from_slice(export);
    crate::durable::write_private(&path(data_dir), &file)
}

/// Reads and verifies the backup. Blocking.
pub fn load(data_dir: &Path) -> Result<Backup, BackupError> {
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
    let fields = header
        .strip_prefix(MAGIC)
        .ok_or_else(|| corrupt("not a turnpike configuration backup"))?;
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
    Ok(Backup {
        revision,
        export: export.to_vec(),
        primary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_detects_damage() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(load(dir.path()), Err(BackupError::Missing(_))));
        save(dir.path(), 42, b"\x1f\x8bpayload", "http://p:8001").unwrap();
        let b = load(dir.path()).unwrap();
        assert_eq!(b.revision, 42);
        assert_eq!(b.export, b"\x1f\x8bpayload");
        assert_eq!(b.primary, "http://p:8001");

        let file = path(dir.path());
        let good = std::fs::read(&file).unwrap();
        // One flipped payload byte, a truncation, garbage: all corrupt.
        let mut flipped = good.clone();
        *flipped.last_mut().unwrap() ^= 1;
        let truncated = good[..good.len() - 3].to_vec();
        for bad in [flipped, truncated, b"junk".to_vec(), Vec::new()] {
            std::fs::write(&file, bad).unwrap();
            assert!(
                matches!(load(dir.path()), Err(BackupError::Corrupt { .. })),
                "{:?}",
                load(dir.path())
            );
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            save(dir.path(), 43, b"x", "p").unwrap();
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
