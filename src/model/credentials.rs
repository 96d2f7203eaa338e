//! Portal sign-in secrets: argon2id password hashes and the password rules
//! shared by the portal's sign-up and the management API's user `password`.

/// Hashes a password with argon2id (random salt, default parameters).
/// Slow on purpose: call it from a blocking thread.
pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::password_hash::PasswordHasher;
    argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

/// Whether `password` matches the PHC string `hash`. Blocking.
pub fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::password_hash::PasswordVerifier;
    argon2::password_hash::phc::PasswordHash::new(hash).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// The portal's password rules; `None` when `password` is acceptable.
pub fn password_problem(password: &str, email: &str) -> Option<&'static str> {
    let n = password.chars().count();
    if n < 10 {
        return Some("Use at least 10 characters.");
    }
    if n > 128 {
        return Some("Use at most 128 characters.");
    }
    if !password.chars().any(|c| c.is_alphabetic()) || password.chars().all(|c| c.is_alphabetic()) {
        return Some("Mix letters with digits or symbols.");
    }
    if password.eq_ignore_ascii_case(email) {
        return Some("The password must not be your email address.");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_verify_and_follow_rules() {
        let h = hash_password("correct horse 1").unwrap();
        assert!(verify_password("correct horse 1", &h));
        assert!(!verify_password("correct horse 2", &h));
        assert!(!verify_password("x", "not a hash"));
        assert!(password_problem("short1", "a@b.c").is_some());
        assert!(password_problem("onlyletterslong", "a@b.c").is_some());
        assert!(password_problem("a@example.com1", "a@example.com1").is_some());
        assert!(password_problem("letters and 1 digit", "a@b.c").is_none());
    }
}
