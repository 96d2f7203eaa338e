//! APIM's `byte[]` extension methods `Encrypt(alg, key, iv)` and
//! `Decrypt(alg, key, iv)`: symmetric encryption with .NET's defaults for
//! the named algorithm. `Aes` (and its .NET aliases) is provided: CBC
//! mode, PKCS7 padding, 128/192/256-bit keys, a 16-byte IV. Bad keys,
//! IVs, ciphertext lengths or padding are `CryptographicException`s.

use super::{arg, req_str};
use crate::expr::eval::{EResult, EvalError, Interp};
use crate::expr::value::Value;
use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};

/// Member names this family provides.
pub const INSTANCE: &[&str] = &["Encrypt", "Decrypt"];

/// AES block size in bytes (the IV's length).
const BLOCK: usize = 16;

fn crypto_error(message: &str) -> EvalError {
    EvalError::new("CryptographicException", message)
}

/// Whether `name` names AES for .NET's `SymmetricAlgorithm.Create(name)`
/// (names are case-insensitive there; Rijndael's default block size is
/// AES's).
fn is_aes(name: &str) -> bool {
    let short = name
        .strip_prefix("System.Security.Cryptography.")
        .unwrap_or(name);
    [
        "Aes",
        "AesManaged",
        "AesCryptoServiceProvider",
        "AesCng",
        "Rijndael",
        "RijndaelManaged",
    ]
    .iter()
    .any(|n| n.eq_ignore_ascii_case(short))
}

/// A byte array argument; `null` is an `ArgumentNullException`.
fn bytes_arg(v: &Value, what: &str) -> EResult<Vec<u8>> {
    if v.is_null() {
        return Err(EvalError::new(
            "ArgumentNullException",
            format!("Value cannot be null. (Parameter '{what}')"),
        ));
    }
    super::statics::arg_bytes(v)
}

/// Checks the key and IV as .NET's `Key` and `IV` setters do.
fn check_key_iv(key: &[u8], iv: &[u8]) -> EResult<()> {
    if !matches!(key.len(), 16 | 24 | 32) {
        return Err(crypto_error(
            "Specified key is not a valid size for this algorithm.",
        ));
    }
    if iv.len() != BLOCK {
        return Err(crypto_error(
            "Specified initialization vector (IV) does not match the block size for this algorithm.",
        ));
    }
    Ok(())
}

/// AES-CBC with PKCS7 padding.
pub fn aes_cbc_encrypt(key: &[u8], iv: &[u8], data: &[u8]) -> EResult<Vec<u8>> {
    check_key_iv(key, iv)?;
    let bad_key = || crypto_error("Specified key is not a valid size for this algorithm.");
    Ok(match key.len() {
        16 => cbc::Encryptor::<aes::Aes128>::new_from_slices(key, iv)
            .map_err(|_| bad_key())?
            .encrypt_padded_vec::<Pkcs7>(data),
        24 => cbc::Encryptor::<aes::Aes192>::new_from_slices(key, iv)
            .map_err(|_| bad_key())?
            .encrypt_padded_vec::<Pkcs7>(data),
        _ => cbc::Encryptor::<aes::Aes256>::new_from_slices(key, iv)
            .map_err(|_| bad_key())?
            .encrypt_padded_vec::<Pkcs7>(data),
    })
}

/// AES-CBC decryption with PKCS7 padding removed; empty input gives empty
/// output, as .NET's `TransformFinalBlock` does.
pub fn aes_cbc_decrypt(key: &[u8], iv: &[u8], data: &[u8]) -> EResult<Vec<u8>> {
    check_key_iv(key, iv)?;
    if !data.len().is_multiple_of(BLOCK) {
        return Err(crypto_error("The input data is not a complete block."));
    }
    if data.is_empty() {
        return Ok(Vec::new());
    }
    let bad_key = || crypto_error("Specified key is not a valid size for this algorithm.");
    let out = match key.len() {
        16 => cbc::Decryptor::<aes::Aes128>::new_from_slices(key, iv)
            .map_err(|_| bad_key())?
            .decrypt_padded_vec::<Pkcs7>(data),
        24 => cbc::Decryptor::<aes::Aes192>::new_from_slices(key, iv)
            .map_err(|_| bad_key())?
            .decrypt_padded_vec::<Pkcs7>(data),
        _ => cbc::Decryptor::<aes::Aes256>::new_from_slices(key, iv)
            .map_err(|_| bad_key())?
            .decrypt_padded_vec::<Pkcs7>(data),
    };
    out.map_err(|_| crypto_error("Padding is invalid and cannot be removed."))
}

/// `input.Encrypt(alg, key, iv)` / `input.Decrypt(alg, key, iv)`.
pub fn call(it: &mut Interp, input: &Value, name: &str, args: &[Value]) -> EResult<Value> {
    if args.len() != 3 {
        return Err(EvalError::argument(format!(
            "{name} takes (string algorithm, byte[] key, byte[] iv)"
        )));
    }
    let alg = req_str(arg(args, 0), "alg")?;
    if !is_aes(&alg) {
        return Err(EvalError::new(
            "NotSupportedException",
            format!("{name} supports the symmetric algorithm 'Aes' only, not '{alg}'."),
        ));
    }
    let data = bytes_arg(input, "input")?;
    let key = bytes_arg(arg(args, 1), "key")?;
    let iv = bytes_arg(arg(args, 2), "iv")?;
    it.charge(data.len() + BLOCK)?;
    let out = match name {
        "Encrypt" => aes_cbc_encrypt(&key, &iv, &data)?,
        "Decrypt" => aes_cbc_decrypt(&key, &iv, &data)?,
        _ => {
            return Err(EvalError::invalid_op(format!(
                "byte[] has no method '{name}'"
            )))
        }
    };
    super::statics::bytes(it, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    /// NIST SP 800-38A F.2.1/F.2.3/F.2.5 (CBC-AES128/192/256): four
    /// blocks of plaintext; PKCS7 adds a fifth block of 0x10 bytes.
    #[test]
    fn nist_cbc_vectors_with_pkcs7() {
        let iv = hex("000102030405060708090a0b0c0d0e0f");
        let pt = hex(concat!(
            "6bc1bee22e409f96e93d7e117393172a",
            "ae2d8a571e03ac9c9eb76fac45af8e51",
            "30c81c46a35ce411e5fbc1191a0a52ef",
            "f69f2445df4f9b17ad2b417be66c3710"
        ));
        let cases = [
            (
                "2b7e151628aed2a6abf7158809cf4f3c",
                concat!(
                    "7649abac8119b246cee98e9b12e9197d",
                    "5086cb9b507219ee95db113a917678b2",
                    "73bed6b8e3c1743b7116e69e22229516",
                    "3ff1caa1681fac09120eca307586e1a7"
                ),
                "8cb82807230e1321d3fae00d18cc2012",
            ),
            (
                "8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b",
                concat!(
                    "4f021db243bc633d7178183a9fa071e8",
                    "b4d9ada9ad7dedf4e5e738763f69145a",
                    "571b242012fb7ae07fa9baac3df102e0",
                    "08b0e27988598881d920a9e64f5615cd"
                ),
                "612ccd79224b350935d45dd6a98f8176",
            ),
            (
                "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
                concat!(
                    "f58c4c04d6e5f1ba779eabfb5f7bfbd6",
                    "9cfc4e967edb808d679f777bc6702c7d",
                    "39f23369a9d9bacfa530e26304231461",
                    "b2eb05e2c39be9fcda6c19078c6a9d1b"
                ),
                "3f461796d6b0d6b2e0c2a72b4d80e644",
            ),
        ];
        for (key, nist, pad_block) in cases {
            let key = hex(key);
            let ct = aes_cbc_encrypt(&key, &iv, &pt).unwrap();
            assert_eq!(ct.len(), 80);
            assert_eq!(hex::encode(&ct[..64]), nist);
            assert_eq!(hex::encode(&ct[64..]), pad_block);
            assert_eq!(aes_cbc_decrypt(&key, &iv, &ct).unwrap(), pt);
        }
    }

    #[test]
    fn bad_sizes_and_padding_are_cryptographic_exceptions() {
        let iv = [0u8; 16];
        let e = aes_cbc_encrypt(&[0; 15], &iv, b"x").unwrap_err();
        assert_eq!(e.kind, "CryptographicException");
        assert_eq!(
            e.message,
            "Specified key is not a valid size for this algorithm."
        );
        let e = aes_cbc_encrypt(&[0; 16], &[0; 8], b"x").unwrap_err();
        assert_eq!(e.kind, "CryptographicException");
        assert!(e.message.contains("initialization vector"), "{e:?}");
        let e = aes_cbc_decrypt(&[0; 16], &iv, &[0; 17]).unwrap_err();
        assert_eq!(e.message, "The input data is not a complete block.");
        // A wrong key garbles the last block, so its padding is invalid.
        let ct = aes_cbc_encrypt(&[1; 16], &iv, b"sixteen bytes!!!").unwrap();
        let e = aes_cbc_decrypt(&[2; 16], &iv, &ct).unwrap_err();
        assert_eq!(e.kind, "CryptographicException");
        assert_eq!(e.message, "Padding is invalid and cannot be removed.");
        assert_eq!(
            aes_cbc_decrypt(&[0; 32], &iv, &[]).unwrap(),
            Vec::<u8>::new()
        );
        assert_eq!(aes_cbc_encrypt(&[0; 32], &iv, &[]).unwrap().len(), 16);
    }

    #[test]
    fn algorithm_names_follow_crypto_config() {
        assert!(is_aes("Aes") && is_aes("AES") && is_aes("aes"));
        assert!(is_aes("System.Security.Cryptography.AesManaged"));
        assert!(is_aes("Rijndael"));
        assert!(!is_aes("DES") && !is_aes("TripleDES") && !is_aes("Aes256"));
    }
}
