//! Stable error codes shared by every surface, and the `Secret` wrapper.
//!
//! Owns: the one table that maps an error [`Code`] to its HTTP status and its
//! stable name (the `code` field of management error bodies), the management
//! error body shape (`{"error": {"code", "message", "details"}}`), and
//! [`Secret`], a string that never prints itself.
//!
//! Imports nothing from the rest of the crate.

use serde::Serialize;
use std::fmt;

/// Stable error codes. Each maps to one HTTP status and one name; both are part
/// of the public contract (DESIGN.md §5).
///
/// To add a code: add the variant, give it a status in [`Code::status`] and a
/// name in [`Code::name`]. Never rename an existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// The request body or a parameter failed validation.
    ValidationError,
    /// The body is not well-formed (JSON or XML syntax).
    MalformedBody,
    /// The body is larger than the configured limit.
    PayloadTooLarge,
    /// Missing or wrong admin credentials.
    Unauthorized,
    /// The addressed resource does not exist.
    ResourceNotFound,
    /// The change conflicts with existing state (in use, duplicate key).
    Conflict,
    /// `If-Match` did not match the current entity tag.
    PreconditionFailed,
    /// The request's content type is not accepted here.
    UnsupportedMediaType,
    /// The method is not allowed on this route.
    MethodNotAllowed,
    /// This node does not accept the operation (a secondary refusing writes).
    NotSupported,
    /// Something failed inside turnpike; details are logged, never returned.
    InternalError,
}

impl Code {
    /// The HTTP status this code is answered with.
    pub fn status(self) -> u16 {
        match self {
            Code::ValidationError | Code::MalformedBody => 400,
            Code::Unauthorized => 401,
            Code::NotSupported => 403,
            Code::ResourceNotFound => 404,
            Code::MethodNotAllowed => 405,
            Code::Conflict => 409,
            Code::PreconditionFailed => 412,
            Code::PayloadTooLarge => 413,
            Code::UnsupportedMediaType => 415,
            Code::InternalError => 500,
        }
    }

    /// The stable name used in error bodies.
    pub fn name(self) -> &'static str {
        match self {
            Code::ValidationError => "ValidationError",
            Code::MalformedBody => "MalformedBody",
            Code::PayloadTooLarge => "PayloadTooLarge",
            Code::Unauthorized => "Unauthorized",
            Code::ResourceNotFound => "ResourceNotFound",
            Code::Conflict => "Conflict",
            Code::PreconditionFailed => "PreconditionFailed",
            Code::UnsupportedMediaType => "UnsupportedMediaType",
            Code::MethodNotAllowed => "MethodNotAllowed",
            Code::NotSupported => "NotSupported",
            Code::InternalError => "InternalError",
        }
    }
}

/// One problem in a request: which field (`target`) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Detail {
    pub target: String,
    pub message: String,
}

impl Detail {
    pub fn new(target: impl Into<String>, message: impl Into<String>) -> Self {
        Detail {
            target: target.into(),
            message: message.into(),
        }
    }
}

/// A management-plane error: a code, a message for humans and the list of
/// problems. Rendered as `{"error": {"code", "message", "details"}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: Code,
    pub message: String,
    pub details: Vec<Detail>,
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            details: Vec::new(),
        }
    }

    /// A validation error with one detail.
    pub fn invalid(target: impl Into<String>, message: impl Into<String>) -> Self {
        let message = message.into();
        let target = target.into();
        ApiError {
            code: Code::ValidationError,
            message: format!("{target}: {message}"),
            details: vec![Detail::new(target, message)],
        }
    }

    /// A validation error carrying every problem found.
    pub fn invalid_all(details: Vec<Detail>) -> Self {
        let message = match details.as_slice() {
            [one] => format!("{}: {}", one.target, one.message),
            _ => format!("{} problems in the request", details.len()),
        };
        ApiError {
            code: Code::ValidationError,
            message,
            details,
        }
    }

    pub fn not_found(what: impl fmt::Display) -> Self {
        ApiError::new(Code::ResourceNotFound, format!("{what} not found"))
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        ApiError::new(Code::Conflict, message)
    }

    pub fn internal() -> Self {
        ApiError::new(Code::InternalError, "internal error; see the server log")
    }

    /// The JSON body of this error.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({
            "error": {
                "code": self.code.name(),
                "message": self.message,
                "details": self.details,
            }
        })
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.name(), self.message)
    }
}

impl std::error::Error for ApiError {}

/// A secret string (admin key, subscription key, token). Its `Debug` and
/// `Display` never show the value; read it with [`Secret::expose`].
/// Equality is constant-time ([`Secret::matches`]).
#[derive(Clone, Default, serde::Deserialize, Serialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `presented` is this secret, in time independent of where
    /// they differ and of either length: both are hashed (SHA-256) and the
    /// digests compared with `subtle`.
    pub fn matches(&self, presented: &str) -> bool {
        ct_eq_str(&self.0, presented)
    }
}

/// Constant-time string equality (see [`Secret::matches`]).
pub fn ct_eq_str(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    let da = ring::digest::digest(&ring::digest::SHA256, a.as_bytes());
    let db = ring::digest::digest(&ring::digest::SHA256, b.as_bytes());
    bool::from(da.as_ref().ct_eq(db.as_ref()))
}

impl PartialEq for Secret {
    fn eq(&self, other: &Secret) -> bool {
        self.matches(&other.0)
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// `n` random bytes from the operating system's CSPRNG, hex encoded.
pub fn random_hex(n: usize) -> Result<String, RandomError> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).map_err(|e| RandomError(e.to_string()))?;
    Ok(hex::encode(buf))
}

/// The operating system's random generator failed; no key can be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the operating system's random generator failed: {0}")]
pub struct RandomError(String);

impl From<RandomError> for ApiError {
    fn from(e: RandomError) -> Self {
        tracing::error!(error = %e, "cannot generate a key");
        ApiError::internal()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "Secret(***) ***");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn secrets_compare_by_value() {
        let s = Secret::new("hunter2");
        assert!(s.matches("hunter2"));
        for other in ["hunter3", "hunter", "hunter22", "", "HUNTER2"] {
            assert!(!s.matches(other), "{other:?}");
        }
        assert_eq!(s, Secret::new("hunter2"));
        assert_ne!(s, Secret::new("hunter1"));
        assert!(ct_eq_str("", ""));
    }

    #[test]
    fn random_hex_is_random_and_sized() {
        let a = random_hex(16).unwrap();
        assert_eq!(a.len(), 32);
        assert_ne!(a, random_hex(16).unwrap());
    }
}
