//! Durable files: written whole or not at all.
//!
//! Owns [`write_private`], the one way this program writes a file that must
//! survive a crash intact (admin key, configuration backup): a temporary
//! file, `fsync`, `rename` over the target, `fsync` of the directory.
//!
//! Imports nothing from the rest of the crate.

use std::path::Path;

/// Writes `bytes` to `path` readable by the owner only (0600), atomically.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    // Make the rename itself durable.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
