//! Sealing with the master key: the one place that encrypts and decrypts
//! what lies in the data directory.
//!
//! Owns: the [`MasterKey`] (32 bytes; parsed from 64 hex digits or base64,
//! never printed), the per-purpose keys derived from it with HKDF-SHA256
//! (so a store record can never be replayed as the portal key or a backup),
//! and the sealed format:
//!
//! ```text
//! 0x01 | nonce (12 random bytes) | AES-256-GCM ciphertext | tag (16 bytes)
//! ```
//!
//! The caller's associated data (a store record's key, a file's name) is
//! authenticated but not stored: a value moved to another key does not open.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use std::fmt;
use std::sync::Arc;

/// Length of the master key in bytes.
pub const KEY_LEN: usize = 32;
/// Format version byte leading every sealed value.
const VERSION: u8 = 1;
const TAG_LEN: usize = 16;
/// Bytes a sealed value has beyond its plaintext.
pub const OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;

/// What a derived key is for; each purpose has its own key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Store records (associated data: the record key).
    Store,
    /// Small secret files in the data directory (`portal.key`).
    File,
    /// A secondary's configuration backup.
    Backup,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::Store => b"turnpike store v1",
            Purpose::File => b"turnpike file v1",
            Purpose::Backup => b"turnpike config-backup v1",
        }
    }
}

/// The 256-bit master key. Neither `Debug` nor `Display` shows it.
#[derive(Clone)]
pub struct MasterKey {
    bytes: Arc<[u8; KEY_LEN]>,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

/// Why a text is not a master key. Never contains the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a master key is 32 bytes written as 64 hex digits or as base64 (44 characters); this is {0} characters that are neither")]
pub struct KeyFormatError(pub usize);

impl MasterKey {
    /// A key from raw bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> MasterKey {
        MasterKey {
            bytes: Arc::new(bytes),
        }
    }

    /// A fresh random key.
    pub fn generate() -> Result<MasterKey, SealError> {
        let mut bytes = [0u8; KEY_LEN];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| SealError::Random)?;
        Ok(MasterKey::from_bytes(bytes))
    }

    /// Parses 64 hex digits or base64 (standard or URL-safe, padding
    /// optional) of exactly 32 bytes; surrounding whitespace is ignored.
    pub fn parse(text: &str) -> Result<MasterKey, KeyFormatError> {
        use base64::Engine;
        let t = text.trim();
        let err = || KeyFormatError(t.chars().count());
        let decoded = if t.len() == 2 * KEY_LEN && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(t).ok()
        } else {
            let unpadded = t.trim_end_matches('=');
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(unpadded)
                .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(unpadded))
                .ok()
        };
        let bytes: [u8; KEY_LEN] = decoded.and_then(|d| d.try_into().ok()).ok_or_else(err)?;
        Ok(MasterKey::from_bytes(bytes))
    }

    /// The key as 64 hex digits (what key files hold).
    pub fn to_hex(&self) -> String {
        hex::encode(*self.bytes)
    }

    /// The sealer for one purpose (a key derived with HKDF-SHA256).
    pub fn sealer(&self, purpose: Purpose) -> Result<Sealer, SealError> {
        let prk = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, b"turnpike master key")
            .extract(&self.bytes[..]);
        let info = [purpose.label()];
        let okm = prk
            .expand(&info, &AES_256_GCM)
            .map_err(|_| SealError::Derive)?;
        Ok(Sealer {
            key: Arc::new(LessSafeKey::new(UnboundKey::from(okm))),
            rng: SystemRandom::new(),
        })
    }
}

/// Why a value could not be sealed or opened. Holds no key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("the operating system's random generator failed")]
    Random,
    #[error("cannot derive a key from the master key")]
    Derive,
    #[error("not a sealed value (unknown format)")]
    Format,
    #[error("cannot be decrypted: a different master key, or damaged")]
    Open,
}

/// Seals and opens values for one purpose. Cheap to clone.
#[derive(Clone)]
pub struct Sealer {
    key: Arc<LessSafeKey>,
    rng: SystemRandom,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer(***)")
    }
}

impl Sealer {
    /// Encrypts `plain`, binding it to `aad`, under a fresh random nonce.
    pub fn seal(&self, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| SealError::Random)?;
        let mut out = Vec::with_capacity(plain.len() + OVERHEAD);
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plain);
        let mut body = out.split_off(1 + NONCE_LEN);
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut body,
            )
            .map_err(|_| SealError::Random)?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Decrypts a value made by [`Sealer::seal`] with the same key and `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < OVERHEAD || sealed[0] != VERSION {
            return Err(SealError::Format);
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&sealed[1..1 + NONCE_LEN]);
        let mut body = sealed[1 + NONCE_LEN..].to_vec();
        let plain = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut body,
            )
            .map_err(|_| SealError::Open)?;
        let n = plain.len();
        body.truncate(n);
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> MasterKey {
        MasterKey::from_bytes([b; KEY_LEN])
    }

    #[test]
    fn round_trips_with_fresh_nonces() {
        let s = key(1).sealer(Purpose::Store).unwrap();
        let a = s.seal(b"named-value/n", b"hunter2").unwrap();
        let b = s.seal(b"named-value/n", b"hunter2").unwrap();
        assert_ne!(a, b, "a fresh nonce per seal");
        assert_eq!(a.len(), 7 + OVERHEAD);
        assert!(!a.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(s.open(b"named-value/n", &a).unwrap(), b"hunter2");
        assert_eq!(s.open(b"x", &s.seal(b"x", b"").unwrap()).unwrap(), b"");
    }

    #[test]
    fn tamper_wrong_key_wrong_aad_and_wrong_purpose_fail() {
        let s = key(1).sealer(Purpose::Store).unwrap();
        let sealed = s.seal(b"k", b"secret value").unwrap();
        for i in 0..sealed.len() {
            let mut t = sealed.clone();
            t[i] ^= 0x40;
            let want = if i == 0 {
                SealError::Format
            } else {
                SealError::Open
            };
            assert_eq!(s.open(b"k", &t), Err(want), "byte {i}");
        }
        assert_eq!(
            s.open(b"k", &sealed[..sealed.len() - 1]),
            Err(SealError::Open)
        );
        assert_eq!(s.open(b"k", &sealed[..5]), Err(SealError::Format));
        assert_eq!(s.open(b"other", &sealed), Err(SealError::Open));
        assert_eq!(
            key(2).sealer(Purpose::Store).unwrap().open(b"k", &sealed),
            Err(SealError::Open)
        );
        assert_eq!(
            key(1).sealer(Purpose::Backup).unwrap().open(b"k", &sealed),
            Err(SealError::Open)
        );
        assert_eq!(s.open(b"k", b"{\"plain\":1}"), Err(SealError::Format));
    }

    #[test]
    fn parses_hex_and_base64_and_never_echoes() {
        use base64::Engine;
        let k = MasterKey::parse(&format!("  {}\n", "ab".repeat(32))).unwrap();
        assert_eq!(k.to_hex(), "ab".repeat(32));
        let b64 = base64::engine::general_purpose::STANDARD.encode([0xfbu8; 32]);
        assert_eq!(MasterKey::parse(&b64).unwrap().to_hex(), "fb".repeat(32));
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([0xfbu8; 32]);
        assert_eq!(MasterKey::parse(&url).unwrap().to_hex(), "fb".repeat(32));
        for bad in [
            "",
            "short",
            &"ab".repeat(31),
            &"zz".repeat(32),
            &base64::engine::general_purpose::STANDARD.encode([1u8; 31]),
        ] {
            let e = MasterKey::parse(bad).unwrap_err().to_string();
            assert!(bad.is_empty() || !e.contains(bad), "{e}");
            assert!(e.contains("64 hex digits"), "{e}");
        }
        assert_eq!(format!("{k:?}"), "MasterKey(***)");
    }
}
