//! Where the master key comes from, and the small secret files it seals.
//!
//! Owns: resolving the [`MasterKey`] at start-up — `TURNPIKE_MASTER_KEY`
//! (environment) wins over `[node] master_key_file`; with neither, the key
//! is `{data_dir}/master.key`, generated (mode 0600) on first start — and
//! [`sealed_secret_file`], a random secret kept sealed in one file (the
//! portal's session key).
//!
//! Error messages name the source and the path, never the key.

use super::seal::{MasterKey, Purpose, SealError, Sealer};
use crate::error::{random_hex, Secret};
use std::path::{Path, PathBuf};

/// The environment variable holding the master key.
pub const ENV: &str = "TURNPIKE_MASTER_KEY";
/// The default key file's name inside `data_dir`.
pub const DEFAULT_FILE: &str = "master.key";
/// First line of a sealed secret file.
const SEALED_FILE_MAGIC: &str = "turnpike-sealed 1";

/// Where the master key in force came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `TURNPIKE_MASTER_KEY`.
    Env,
    /// `[node] master_key_file`.
    File(PathBuf),
    /// `{data_dir}/master.key`; `generated` when this start created it.
    DataDir { path: PathBuf, generated: bool },
}

/// Why there is no master key. Never contains the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("master key: {0}")]
pub struct MasterKeyError(pub String);

/// Resolves the master key: `env` (the value of `TURNPIKE_MASTER_KEY`)
/// wins, then `file` (`[node] master_key_file`, which must exist), then
/// `{data_dir}/master.key`, generated when missing. Blocking.
pub fn resolve(
    env: Option<std::ffi::OsString>,
    file: Option<&Path>,
    data_dir: &Path,
) -> Result<(MasterKey, KeySource), MasterKeyError> {
    if let Some(value) = env {
        let text = value
            .to_str()
            .ok_or_else(|| MasterKeyError(format!("{ENV} is not valid UTF-8")))?;
        let key = MasterKey::parse(text).map_err(|e| MasterKeyError(format!("{ENV}: {e}")))?;
        return Ok((key, KeySource::Env));
    }
    if let Some(path) = file {
        let key = match read_key_file(path)? {
            Some(k) => k,
            None => {
                return Err(MasterKeyError(format!(
                    "the master_key_file {} does not exist (`turnpike init` writes one; \
                     or set {ENV})",
                    path.display()
                )))
            }
        };
        return Ok((key, KeySource::File(path.to_path_buf())));
    }
    let path = data_dir.join(DEFAULT_FILE);
    if let Some(key) = read_key_file(&path)? {
        return Ok((
            key,
            KeySource::DataDir {
                path,
                generated: false,
            },
        ));
    }
    let key = MasterKey::generate().map_err(|e| MasterKeyError(e.to_string()))?;
    crate::durable::write_private(&path, format!("{}\n", key.to_hex()).as_bytes())
        .map_err(|e| MasterKeyError(format!("cannot write {}: {e}", path.display())))?;
    Ok((
        key,
        KeySource::DataDir {
            path,
            generated: true,
        },
    ))
}

/// Writes a fresh key file at `path` (0600) unless one exists; returns
/// whether it wrote one (what `turnpike init` does).
pub fn create_key_file(path: &Path) -> Result<bool, MasterKeyError> {
    if read_key_file(path)?.is_some() {
        return Ok(false);
    }
    let key = MasterKey::generate().map_err(|e| MasterKeyError(e.to_string()))?;
    crate::durable::write_private(path, format!("{}\n", key.to_hex()).as_bytes())
        .map_err(|e| MasterKeyError(format!("cannot write {}: {e}", path.display())))?;
    Ok(true)
}

/// The key in the file at `path`, or `None` when there is no such file.
fn read_key_file(path: &Path) -> Result<Option<MasterKey>, MasterKeyError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(MasterKeyError(format!(
                "cannot read {}: {e}",
                path.display()
            )))
        }
    };
    #[cfg(unix)]
    if let Ok(meta) = std::fs::metadata(path) {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                "the master key file is readable by other users; chmod 600 it"
            );
        }
    }
    MasterKey::parse(&text)
        .map(Some)
        .map_err(|e| MasterKeyError(format!("{}: {e}", path.display())))
}

/// Reads the random secret sealed in `path`, or generates one there
/// (256 bits, hex, sealed, 0600, durably). A file from an earlier build
/// holding the secret in clear is re-written sealed, keeping the secret.
/// A file that does not open (damaged) is replaced by a fresh secret.
/// Returns whether a new secret was generated. Blocking.
pub fn sealed_secret_file(path: &Path, key: &MasterKey) -> Result<(Secret, bool), String> {
    let sealer = key.sealer(Purpose::File).map_err(|e| e.to_string())?;
    let aad = file_aad(path);
    let io = |e: std::io::Error| format!("{}: {e}", path.display());
    let existing = match std::fs::read(path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(e)),
    };
    if let Some(bytes) = existing {
        match open_file(&sealer, &aad, &bytes) {
            Ok(Some(secret)) => return Ok((Secret::new(secret), false)),
            Ok(None) => {
                // Written in clear by an earlier build: seal it in place.
                let text = String::from_utf8_lossy(&bytes).trim().to_string();
                if !text.is_empty() {
                    write_sealed(path, &sealer, &aad, &text)?;
                    tracing::info!(path = %path.display(), "sealed a secret file written in clear");
                    return Ok((Secret::new(text), false));
                }
            }
            Err(e) => tracing::warn!(
                path = %path.display(),
                error = %e,
                "the secret file cannot be opened; replacing it with a new secret"
            ),
        }
    }
    let secret = random_hex(32).map_err(|e| e.to_string())?;
    write_sealed(path, &sealer, &aad, &secret)?;
    Ok((Secret::new(secret), true))
}

/// The associated data of a sealed file: its name (a sealed file copied
/// over another one does not open).
fn file_aad(path: &Path) -> Vec<u8> {
    path.file_name()
        .map(|n| n.to_string_lossy().as_bytes().to_vec())
        .unwrap_or_default()
}

/// `Ok(None)`: not a sealed file (clear text from an earlier build).
fn open_file(sealer: &Sealer, aad: &[u8], bytes: &[u8]) -> Result<Option<String>, SealError> {
    use base64::Engine;
    let text = String::from_utf8_lossy(bytes);
    let Some(rest) = text.trim().strip_prefix(SEALED_FILE_MAGIC) else {
        return Ok(None);
    };
    let sealed = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .map_err(|_| SealError::Format)?;
    let plain = sealer.open(aad, &sealed)?;
    String::from_utf8(plain)
        .map(Some)
        .map_err(|_| SealError::Format)
}

fn write_sealed(path: &Path, sealer: &Sealer, aad: &[u8], secret: &str) -> Result<(), String> {
    use base64::Engine;
    let sealed = sealer
        .seal(aad, secret.as_bytes())
        .map_err(|e| e.to_string())?;
    let text = format!(
        "{SEALED_FILE_MAGIC} {}\n",
        base64::engine::general_purpose::STANDARD.encode(sealed)
    );
    crate::durable::write_private(path, text.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_wins_then_file_then_generated_default() {
        let dir = tempfile::tempdir().unwrap();
        let hex = "11".repeat(32);
        let (k, src) = resolve(Some(hex.clone().into()), None, dir.path()).unwrap();
        assert_eq!((k.to_hex(), src), (hex.clone(), KeySource::Env));
        assert!(!dir.path().join(DEFAULT_FILE).exists());

        let e = resolve(Some("nope-secret".into()), None, dir.path()).unwrap_err();
        assert!(e.to_string().contains(ENV), "{e}");
        assert!(!e.to_string().contains("nope-secret"), "{e}");

        let missing = dir.path().join("elsewhere.key");
        let e = resolve(None, Some(&missing), dir.path()).unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
        assert!(create_key_file(&missing).unwrap());
        assert!(!create_key_file(&missing).unwrap());
        let (from_file, src) = resolve(None, Some(&missing), dir.path()).unwrap();
        assert_eq!(src, KeySource::File(missing.clone()));

        let (first, src) = resolve(None, None, dir.path()).unwrap();
        assert!(matches!(
            src,
            KeySource::DataDir {
                generated: true,
                ..
            }
        ));
        let (again, src) = resolve(None, None, dir.path()).unwrap();
        assert!(matches!(
            src,
            KeySource::DataDir {
                generated: false,
                ..
            }
        ));
        assert_eq!(first.to_hex(), again.to_hex());
        assert_ne!(first.to_hex(), from_file.to_hex());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(DEFAULT_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&missing, "garbage-secret\n").unwrap();
        let e = resolve(None, Some(&missing), dir.path()).unwrap_err();
        assert!(!e.to_string().contains("garbage-secret"), "{e}");
    }

    #[test]
    fn sealed_secret_files_seal_migrate_and_regenerate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("portal.key");
        let key = MasterKey::from_bytes([7; 32]);
        let (s, generated) = sealed_secret_file(&path, &key).unwrap();
        assert!(generated);
        let on_disk = std::fs::read_to_string(&path).unwrap();
        assert!(!on_disk.contains(s.expose()));
        assert!(on_disk.starts_with(SEALED_FILE_MAGIC));
        let (again, generated) = sealed_secret_file(&path, &key).unwrap();
        assert!(!generated);
        assert_eq!(again.expose(), s.expose());

        // A clear file from an earlier build keeps its secret, sealed.
        std::fs::write(&path, "cafe0123cafe0123\n").unwrap();
        let (s, generated) = sealed_secret_file(&path, &key).unwrap();
        assert_eq!((s.expose(), generated), ("cafe0123cafe0123", false));
        assert!(!std::fs::read_to_string(&path)
            .unwrap()
            .contains("cafe0123cafe0123"));
        assert_eq!(
            sealed_secret_file(&path, &key).unwrap().0.expose(),
            "cafe0123cafe0123"
        );

        // Another master key cannot open it: a new secret replaces it.
        let other = MasterKey::from_bytes([8; 32]);
        let (s, generated) = sealed_secret_file(&path, &other).unwrap();
        assert!(generated);
        assert_ne!(s.expose(), "cafe0123cafe0123");
    }
}
