//! `<validate-jwt>`: refuses requests without a valid JWT (apim.md §3.2).
//!
//! The token comes from `token-value`, else `query-parameter-name`, else
//! the `header-name` header (default `Authorization`; `require-scheme`
//! demands a scheme such as `Bearer`). Its signature is checked against the
//! inline `<issuer-signing-keys>` (base64 symmetric keys for HS256/384/512,
//! `n`/`e` RSA keys for RS256/384/512 and PS256/384/512; keys whose `id`
//! matches the token's `kid` are tried first, else every key of the right
//! kind in turn), then `exp`/`nbf` (with `clock-skew`), `<audiences>`,
//! `<issuers>` and `<required-claims>`. A failure answers
//! `failed-validation-httpcode` (401) with `failed-validation-error-message`
//! and leaves APIM's reason in `context.LastError.Reason`.
//!
//! With `<openid-config url>` the gateway also fetches the provider's
//! metadata and JWKS (RSA and EC P-256/P-384 keys, so ES256/384 too) and
//! passes them to [`ValidateJwt::apply_with`]; the metadata's `issuer` is
//! then the allowed issuer unless `<issuers>` lists others.
//!
//! Not run yet, refused when compiling: `certificate-id` keys and
//! `<decryption-keys>` (encrypted tokens).
//! Keys and tokens never appear in messages. Sections: inbound.

use super::{Compiler, Outcome, PolicyError, Section, State, Val};
use crate::expr::lib::natives::{parse_jwt, Jwt, Native};
use crate::expr::Value;
use crate::policy::xml::Element;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey};
use std::sync::Arc;

/// The sections this policy may appear in.
pub const SECTIONS: &[Section] = &[Section::Inbound];

/// APIM's default message for a failed validation.
pub const DEFAULT_MESSAGE: &str = "Unauthorized. Access token is missing or invalid.";

/// What kind of algorithm a key serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Hmac,
    Rsa,
    EcP256,
    EcP384,
}

/// What `openid-config` discovery found: the provider's issuer and keys.
#[derive(Debug, Default)]
pub struct Discovered {
    pub issuer: Option<String>,
    pub keys: Vec<SigningKey>,
}

/// The signing keys of a JWKS document (`{"keys": [...]}`): RSA (`n`,
/// `e`) and EC (`crv` P-256 or P-384, `x`, `y`) keys meant for signatures;
/// other keys are skipped.
pub fn jwks_keys(jwks: &serde_json::Value) -> Vec<SigningKey> {
    let Some(keys) = jwks.get("keys").and_then(|k| k.as_array()) else {
        return Vec::new();
    };
    let s = |k: &serde_json::Value, f: &str| k.get(f).and_then(|v| v.as_str()).map(str::to_string);
    keys.iter()
        .filter(|k| s(k, "use").is_none_or(|u| u == "sig"))
        .filter_map(|k| {
            let (kind, key) = match s(k, "kty").as_deref() {
                Some("RSA") => (KeyKind::Rsa, rsa_key(&s(k, "n")?, &s(k, "e")?).ok()?),
                Some("EC") => {
                    let kind = match s(k, "crv").as_deref() {
                        Some("P-256") => KeyKind::EcP256,
                        Some("P-384") => KeyKind::EcP384,
                        _ => return None,
                    };
                    let key = DecodingKey::from_ec_components(&s(k, "x")?, &s(k, "y")?).ok()?;
                    (kind, key)
                }
                _ => return None,
            };
            Some(SigningKey {
                id: s(k, "kid"),
                kind,
                key,
            })
        })
        .collect()
}

/// One signing key (its material is never shown).
pub struct SigningKey {
    pub id: Option<String>,
    pub kind: KeyKind,
    key: DecodingKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// Reads a symmetric key written in base64 (standard or URL-safe, padding
/// optional). The error never repeats the key.
pub fn symmetric_key(text: &str) -> Result<Vec<u8>, String> {
    let t: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if t.is_empty() {
        return Err("a signing key is empty".into());
    }
    let unpadded = t.trim_end_matches('=');
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(unpadded)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(unpadded))
        .map_err(|_| "a signing key is not valid base64".to_string())
}

/// Reads an RSA public key from its base64url modulus and exponent.
pub fn rsa_key(n: &str, e: &str) -> Result<DecodingKey, String> {
    let (n, e) = (
        n.trim().trim_end_matches('='),
        e.trim().trim_end_matches('='),
    );
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let n_bytes = engine
        .decode(n)
        .map_err(|_| "an RSA key's n is not valid base64url".to_string())?;
    let e_bytes = engine
        .decode(e)
        .map_err(|_| "an RSA key's e is not valid base64url".to_string())?;
    if n_bytes.len() < 128 {
        return Err("an RSA key's modulus is shorter than 1024 bits".into());
    }
    if e_bytes.is_empty() || e_bytes.len() > 8 {
        return Err("an RSA key's exponent is not a small positive number".into());
    }
    DecodingKey::from_rsa_components(n, e).map_err(|_| "an RSA key is not valid".to_string())
}

/// A `<required-claims><claim>`.
#[derive(Debug)]
struct Claim {
    name: String,
    all: bool,
    separator: Option<String>,
    values: Vec<Val>,
}

#[derive(Debug)]
enum Source {
    Header {
        name: String,
        scheme: Option<String>,
    },
    Query(String),
    Value(Val),
}

#[derive(Debug)]
pub struct ValidateJwt {
    source: Source,
    status: u16,
    message: Val,
    require_expiration: bool,
    require_signed: bool,
    clock_skew: i64,
    output: Option<String>,
    keys: Vec<SigningKey>,
    audiences: Vec<Val>,
    issuers: Vec<Val>,
    claims: Vec<Claim>,
    openid: Vec<String>,
    /// `validate-azure-ad-token`: `appid`/`azp` must be one of these
    /// (`<client-application-ids>`, empty: any client).
    client_apps: Vec<Val>,
    /// `validate-azure-ad-token`: a v1.0 issuer
    /// (`https://sts.windows.net/{tenant}/`) is accepted beside the v2.0
    /// issuer discovery names.
    entra: bool,
}

/// A literal attribute: expressions are refused where this gateway reads
/// the attribute once, at compile time.
fn literal(cx: &mut Compiler, e: &Element, name: &str) -> Option<String> {
    let v = cx.literal(e, name)?;
    let t = v.trim();
    if t.starts_with("@(") || t.starts_with("@{") {
        let at = e
            .attr(name)
            .map(|a| a.value_span.start)
            .unwrap_or(e.span.start);
        cx.error(
            at,
            format!("<validate-jwt> takes a literal '{name}' here; expressions are not supported for it yet"),
        );
        return None;
    }
    Some(t.to_string())
}

impl ValidateJwt {
    pub fn parse(cx: &mut Compiler, e: &Element) -> Option<ValidateJwt> {
        let mut ok = true;
        let (status, message) = failure_answer(cx, e, &mut ok);
        let clock_skew = match literal(cx, e, "clock-skew").map(|s| s.parse::<i64>()) {
            None => 0,
            Some(Ok(s)) if (0..=86_400 * 365).contains(&s) => s,
            Some(_) => {
                cx.error(
                    e.span.start,
                    "clock-skew must be a number of seconds".into(),
                );
                ok = false;
                0
            }
        };
        let require_expiration = cx.flag(e, "require-expiration-time", true);
        let require_signed = cx.flag(e, "require-signed-tokens", true);
        let output = literal(cx, e, "output-token-variable-name").filter(|s| !s.is_empty());
        let source = token_source(cx, e);

        let mut keys = Vec::new();
        let mut audiences = Vec::new();
        let mut issuers = Vec::new();
        let mut claims = Vec::new();
        let mut openid = Vec::new();
        for c in e.elements() {
            match c.name.as_str() {
                "openid-config" => match literal(cx, c, "url") {
                    Some(u) if u.starts_with("https://") || u.starts_with("http://") => {
                        openid.push(u)
                    }
                    _ => {
                        cx.error(c.span.start, "<openid-config> needs an http(s) url".into());
                        ok = false;
                    }
                },
                "decryption-keys" => {
                    cx.error(
                        c.span.start,
                        "<validate-jwt> with <decryption-keys> does not run yet: encrypted tokens are not supported".into(),
                    );
                    ok = false;
                }
                "issuer-signing-keys" => ok &= parse_keys(cx, c, &mut keys),
                "audiences" => audiences.extend(
                    c.elements()
                        .filter(|a| a.name == "audience")
                        .map(|a| cx.text(a))
                        .collect::<Vec<_>>(),
                ),
                "issuers" => issuers.extend(
                    c.elements()
                        .filter(|a| a.name == "issuer")
                        .map(|a| cx.text(a))
                        .collect::<Vec<_>>(),
                ),
                "required-claims" => ok &= parse_claims(cx, c, &mut claims),
                other => {
                    cx.error(
                        c.span.start,
                        format!("<validate-jwt> does not run <{other}> yet"),
                    );
                    ok = false;
                }
            }
        }
        if require_signed && keys.is_empty() && openid.is_empty() && ok {
            cx.error(
                e.span.start,
                "<validate-jwt> needs <issuer-signing-keys> to check signatures (or require-signed-tokens=\"false\")".into(),
            );
            ok = false;
        }
        ok.then_some(ValidateJwt {
            source,
            status,
            message,
            require_expiration,
            require_signed,
            clock_skew,
            output,
            keys,
            audiences,
            issuers,
            claims,
            openid,
            client_apps: Vec::new(),
            entra: false,
        })
    }

    /// `<validate-azure-ad-token>`: validate-jwt for Microsoft Entra ID.
    /// The signing keys and issuer come from the tenant's v2.0 discovery
    /// document under `authentication-endpoint` (default
    /// `https://login.microsoftonline.com`); `<backend-application-ids>`
    /// join `<audiences>` (an id `x` also allows `api://x`);
    /// `<client-application-ids>` restrict the `appid` (v1.0) or `azp`
    /// (v2.0) claim.
    pub fn parse_entra(cx: &mut Compiler, e: &Element) -> Option<ValidateJwt> {
        let mut ok = true;
        let tenant = match literal(cx, e, "tenant-id") {
            Some(t) if !t.is_empty() => entra_tenant(&t),
            _ => None,
        };
        let Some(tenant) = tenant else {
            cx.error(
                e.span.start,
                "<validate-azure-ad-token> needs a tenant-id: a tenant GUID, a domain such as contoso.onmicrosoft.com, or its https:// URL".into(),
            );
            return None;
        };
        let endpoint = literal(cx, e, "authentication-endpoint")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "https://login.microsoftonline.com".into());
        if !(endpoint.starts_with("https://") || endpoint.starts_with("http://")) {
            cx.error(
                e.span.start,
                "authentication-endpoint must be an http(s) URL such as https://login.microsoftonline.com".into(),
            );
            ok = false;
        }
        for flag in [
            "allow-protected-forwarded-tokens",
            "allow-proof-of-possession-tokens",
        ] {
            if cx.flag(e, flag, false) {
                cx.error(
                    e.span.start,
                    format!("<validate-azure-ad-token> with {flag}=\"true\" does not run yet: proof-of-possession and protected forwarded tokens are not supported"),
                );
                ok = false;
            }
        }
        let (status, message) = failure_answer(cx, e, &mut ok);
        let output = literal(cx, e, "output-token-variable-name").filter(|s| !s.is_empty());
        let source = token_source(cx, e);
        let mut audiences = Vec::new();
        let mut client_apps = Vec::new();
        let mut claims = Vec::new();
        for c in e.elements() {
            match c.name.as_str() {
                "audiences" => {
                    for a in c.elements().filter(|a| a.name == "audience") {
                        audiences.push(cx.text(a));
                    }
                }
                "backend-application-ids" => {
                    for a in c.elements().filter(|a| a.name == "application-id") {
                        let id = cx.text(a);
                        if let Val::Lit(text) = &id {
                            audiences.push(Val::Lit(format!("api://{}", text.trim()).into()));
                        }
                        audiences.push(id);
                    }
                }
                "client-application-ids" => {
                    for a in c.elements().filter(|a| a.name == "application-id") {
                        client_apps.push(cx.text(a));
                    }
                }
                "required-claims" => ok &= parse_claims(cx, c, &mut claims),
                "decryption-keys" => {
                    cx.error(
                        c.span.start,
                        "<validate-azure-ad-token> with <decryption-keys> does not run yet: encrypted tokens are not supported".into(),
                    );
                    ok = false;
                }
                other => {
                    cx.error(
                        c.span.start,
                        format!("<validate-azure-ad-token> does not take <{other}>"),
                    );
                    ok = false;
                }
            }
        }
        let openid = format!(
            "{}/{tenant}/v2.0/.well-known/openid-configuration",
            endpoint.trim_end_matches('/')
        );
        ok.then_some(ValidateJwt {
            source,
            status,
            message,
            require_expiration: true,
            require_signed: true,
            clock_skew: 0,
            output,
            keys: Vec::new(),
            audiences,
            issuers: Vec::new(),
            claims,
            openid: vec![openid],
            client_apps,
            entra: true,
        })
    }

    /// The `openid-config` URLs whose keys the gateway must fetch.
    pub fn discovery_urls(&self) -> &[String] {
        &self.openid
    }

    fn fail(&self, st: &State, reason: &str) -> PolicyError {
        let message = self
            .message
            .text(st)
            .unwrap_or_else(|_| DEFAULT_MESSAGE.to_string());
        PolicyError::new(self.status, reason, message)
    }

    /// The raw token, or the failure reason.
    fn token(&self, st: &State) -> Result<Result<String, &'static str>, PolicyError> {
        let raw = match &self.source {
            Source::Value(v) => v.text(st)?,
            Source::Query(q) => st
                .ctx
                .request
                .url
                .query_values(q)
                .first()
                .map(|s| s.to_string())
                .unwrap_or_default(),
            Source::Header { name, scheme } => {
                let Some(v) = st.ctx.request.message.headers.joined(name) else {
                    return Ok(Err("TokenNotPresent"));
                };
                let v = v.trim().to_string();
                let (first, rest) = match v.split_once(' ') {
                    Some((a, b)) => (a, b.trim()),
                    None => ("", v.as_str()),
                };
                match scheme {
                    Some(s) => {
                        if !first.eq_ignore_ascii_case(s) || rest.is_empty() {
                            return Ok(Err(if v.is_empty() {
                                "TokenNotPresent"
                            } else {
                                "TokenSchemeNotAllowed"
                            }));
                        }
                        rest.to_string()
                    }
                    None if first.eq_ignore_ascii_case("bearer") => rest.to_string(),
                    None => v,
                }
            }
        };
        let raw = raw.trim().to_string();
        Ok(if raw.is_empty() {
            Err("TokenNotPresent")
        } else {
            Ok(raw)
        })
    }

    pub fn apply(&self, st: &mut State) -> Result<Outcome, PolicyError> {
        self.apply_with(st, &[])
    }

    /// Validates with the inline keys and what discovery found.
    pub fn apply_with(
        &self,
        st: &mut State,
        found: &[Arc<Discovered>],
    ) -> Result<Outcome, PolicyError> {
        let token = match self.token(st)? {
            Ok(t) => t,
            Err(reason) => return Err(self.fail(st, reason)),
        };
        let jwt = match self.check(st, &token, found)? {
            Ok(j) => j,
            Err(reason) => return Err(self.fail(st, reason)),
        };
        if let Some(name) = &self.output {
            st.ctx
                .variables
                .insert(name.clone(), Value::Native(Arc::new(Native::Jwt(jwt))));
        }
        Ok(Outcome::Continue)
    }

    /// Validates `token`: the decoded token, or APIM's failure reason.
    fn check(
        &self,
        st: &State,
        token: &str,
        found: &[Arc<Discovered>],
    ) -> Result<Result<Jwt, &'static str>, PolicyError> {
        let parts: Vec<&str> = token.split('.').collect();
        if parts.len() != 3 {
            // Five parts is an encrypted token (JWE), which is not supported.
            return Ok(Err("JwtInvalid"));
        }
        let Some(jwt) = parse_jwt(token) else {
            return Ok(Err("JwtInvalid"));
        };
        let alg = jwt.header.get("alg").and_then(|a| a.as_str()).unwrap_or("");
        let unsigned = alg.eq_ignore_ascii_case("none") || parts[2].is_empty();
        if unsigned {
            if self.require_signed {
                return Ok(Err("TokenSignatureInvalid"));
            }
        } else {
            let Ok(alg) = alg.parse::<Algorithm>() else {
                return Ok(Err("TokenSignatureInvalid"));
            };
            let kind = match alg {
                Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => KeyKind::Hmac,
                Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512 => KeyKind::Rsa,
                Algorithm::ES256 => KeyKind::EcP256,
                Algorithm::ES384 => KeyKind::EcP384,
                Algorithm::EdDSA => return Ok(Err("TokenSignatureKeyNotFound")),
            };
            let kid = jwt.header.get("kid").and_then(|k| k.as_str());
            let mut candidates: Vec<&SigningKey> = self
                .keys
                .iter()
                .chain(found.iter().flat_map(|d| d.keys.iter()))
                .filter(|k| k.kind == kind)
                .collect();
            if let Some(kid) = kid {
                if candidates.iter().any(|k| k.id.as_deref() == Some(kid)) {
                    candidates.retain(|k| k.id.as_deref() == Some(kid));
                }
            }
            if candidates.is_empty() {
                return Ok(Err("TokenSignatureKeyNotFound"));
            }
            let message = &token[..parts[0].len() + 1 + parts[1].len()];
            let valid = candidates.iter().any(|k| {
                jsonwebtoken::crypto::verify(parts[2], message.as_bytes(), &k.key, alg)
                    .unwrap_or(false)
            });
            if !valid {
                return Ok(Err("TokenSignatureInvalid"));
            }
        }

        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let time = |claim: &str| {
            jwt.payload
                .get(claim)
                .map(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
        };
        match time("exp") {
            Some(Some(exp)) if now > exp.saturating_add(self.clock_skew) => {
                return Ok(Err("TokenExpired"))
            }
            Some(None) => return Ok(Err("JwtInvalid")),
            None if self.require_expiration => return Ok(Err("TokenExpired")),
            _ => {}
        }
        match time("nbf") {
            Some(Some(nbf)) if now.saturating_add(self.clock_skew) < nbf => {
                return Ok(Err("TokenNotYetValid"))
            }
            Some(None) => return Ok(Err("JwtInvalid")),
            _ => {}
        }

        let claim = |name: &str| {
            jwt.claims
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_slice())
        };
        if !self.audiences.is_empty() {
            let allowed = texts(&self.audiences, st)?;
            let ok = claim("aud").is_some_and(|aud| aud.iter().any(|a| allowed.contains(a)));
            if !ok {
                return Ok(Err("TokenAudienceNotAllowed"));
            }
        }
        let mut discovered: Vec<String> = found.iter().filter_map(|d| d.issuer.clone()).collect();
        if self.entra {
            // Entra's v1.0 tokens name the same tenant at sts.windows.net.
            let v1: Vec<String> = discovered
                .iter()
                .filter_map(|i| i.strip_suffix("/v2.0"))
                .filter_map(|i| i.rsplit('/').next())
                .map(|tid| format!("https://sts.windows.net/{tid}/"))
                .collect();
            discovered.extend(v1);
        }
        if !self.issuers.is_empty() || !discovered.is_empty() {
            let allowed = if self.issuers.is_empty() {
                discovered
            } else {
                texts(&self.issuers, st)?
            };
            let ok = claim("iss").is_some_and(|iss| iss.iter().any(|i| allowed.contains(i)));
            if !ok {
                return Ok(Err("TokenIssuerNotAllowed"));
            }
        }
        if !self.client_apps.is_empty() {
            let allowed = texts(&self.client_apps, st)?;
            let client = claim("azp").or_else(|| claim("appid"));
            let ok = client.is_some_and(|ids| ids.iter().any(|i| allowed.contains(i)));
            if !ok {
                return Ok(Err("TokenClaimValueNotAllowed"));
            }
        }
        for c in &self.claims {
            let Some(present) = claim(&c.name) else {
                return Ok(Err("TokenClaimNotFound"));
            };
            if c.values.is_empty() {
                continue;
            }
            let present: Vec<&str> = match &c.separator {
                Some(sep) => present
                    .iter()
                    .flat_map(|v| v.split(sep.as_str()))
                    .map(str::trim)
                    .collect(),
                None => present.iter().map(String::as_str).collect(),
            };
            let wanted = texts(&c.values, st)?;
            let has = |w: &String| present.contains(&w.as_str());
            let ok = if c.all {
                wanted.iter().all(has)
            } else {
                wanted.iter().any(has)
            };
            if !ok {
                return Ok(Err("TokenClaimValueNotAllowed"));
            }
        }
        Ok(Ok(jwt))
    }
}

fn texts(vals: &[Val], st: &State) -> Result<Vec<String>, PolicyError> {
    vals.iter()
        .map(|v| Ok(v.text(st)?.trim().to_string()))
        .collect()
}

/// `failed-validation-httpcode` (default 401) and
/// `failed-validation-error-message`; `ok` is cleared after a problem.
fn failure_answer(cx: &mut Compiler, e: &Element, ok: &mut bool) -> (u16, Val) {
    let status = match literal(cx, e, "failed-validation-httpcode").map(|s| s.parse::<u16>()) {
        None => 401,
        Some(Ok(c @ 100..=599)) => c,
        Some(_) => {
            cx.error(
                e.span.start,
                "failed-validation-httpcode must be 100-599".into(),
            );
            *ok = false;
            401
        }
    };
    let message = cx
        .attr(e, "failed-validation-error-message")
        .unwrap_or_else(|| Val::lit(DEFAULT_MESSAGE));
    (status, message)
}

/// Where the token comes from: `token-value`, else
/// `query-parameter-name`, else `header-name` (default `Authorization`)
/// with an optional `require-scheme`.
fn token_source(cx: &mut Compiler, e: &Element) -> Source {
    let scheme = literal(cx, e, "require-scheme").filter(|s| !s.is_empty());
    if let Some(v) = cx.attr(e, "token-value") {
        Source::Value(v)
    } else if let Some(q) = literal(cx, e, "query-parameter-name") {
        Source::Query(q)
    } else {
        let name = literal(cx, e, "header-name").unwrap_or_else(|| "Authorization".into());
        Source::Header { name, scheme }
    }
}

/// `<required-claims>`: `<claim>` children; false after a problem.
fn parse_claims(cx: &mut Compiler, c: &Element, claims: &mut Vec<Claim>) -> bool {
    let mut ok = true;
    for claim in c.elements().filter(|a| a.name == "claim") {
        let Some(name) = cx.literal(claim, "name") else {
            cx.error(claim.span.start, "<claim> needs a name".into());
            ok = false;
            continue;
        };
        let all = match cx.literal(claim, "match").as_deref().map(str::trim) {
            None | Some("all") => true,
            Some("any") => false,
            Some(_) => {
                cx.error(claim.span.start, "<claim> match must be all or any".into());
                ok = false;
                true
            }
        };
        let separator = cx.literal(claim, "separator").filter(|s| !s.is_empty());
        let values = cx.values(claim);
        claims.push(Claim {
            name,
            all,
            separator,
            values,
        });
    }
    ok
}

/// The tenant segment of Entra URLs from a `tenant-id`: a GUID or domain
/// as given, or the host of an `https://` URL; `None` when it cannot be a
/// path segment.
fn entra_tenant(t: &str) -> Option<String> {
    let t = t.trim();
    let t = t
        .strip_prefix("https://")
        .or_else(|| t.strip_prefix("http://"))
        .map(|rest| rest.split('/').next().unwrap_or(""))
        .unwrap_or(t);
    let ok = !t.is_empty()
        && t.len() <= 253
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    ok.then(|| t.to_string())
}

/// `<issuer-signing-keys>`: `<key>` children; false after a problem.
fn parse_keys(cx: &mut Compiler, e: &Element, out: &mut Vec<SigningKey>) -> bool {
    let mut ok = true;
    for k in e.elements() {
        if k.name != "key" {
            cx.error(
                k.span.start,
                format!("<issuer-signing-keys> with <{}> does not run yet", k.name),
            );
            ok = false;
            continue;
        }
        if k.attr("certificate-id").is_some() {
            cx.error(
                k.span.start,
                "<validate-jwt> with a certificate-id key does not run yet: certificates are not supported; give the key inline (base64, or n and e)".into(),
            );
            ok = false;
            continue;
        }
        let id = cx.literal(k, "id");
        let parsed = match (cx.literal(k, "n"), cx.literal(k, "e")) {
            (Some(n), Some(e)) => rsa_key(&n, &e).map(|key| (KeyKind::Rsa, key)),
            (Some(_), None) | (None, Some(_)) => Err("an RSA key needs both n and e".to_string()),
            (None, None) => {
                let Val::Lit(text) = cx.text(k) else {
                    cx.error(
                        k.span.start,
                        "a signing key must be literal; expressions are not supported for it"
                            .into(),
                    );
                    ok = false;
                    continue;
                };
                symmetric_key(&text).map(|b| (KeyKind::Hmac, DecodingKey::from_secret(&b)))
            }
        };
        match parsed {
            Ok((kind, key)) => out.push(SigningKey { id, kind, key }),
            Err(m) => {
                cx.error(k.span.start, format!("<validate-jwt>: {m}"));
                ok = false;
            }
        }
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use super::{jwks_keys, rsa_key, symmetric_key, KeyKind};

    #[test]
    fn symmetric_keys_are_base64_in_either_alphabet() {
        assert_eq!(symmetric_key("c2VjcmV0").unwrap(), b"secret");
        assert_eq!(symmetric_key(" c2VjcmV0\n").unwrap(), b"secret");
        assert_eq!(
            symmetric_key("+/+/").unwrap(),
            symmetric_key("-_-_").unwrap()
        );
        assert_eq!(symmetric_key("YQ==").unwrap(), b"a");
        let e = symmetric_key("not base64!").unwrap_err();
        assert!(!e.contains("not base64!"), "the key is not echoed: {e}");
        assert!(symmetric_key("  ").is_err());
    }

    #[test]
    fn rsa_keys_need_a_real_modulus() {
        let n = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            [0xC5u8; 256],
        );
        assert!(rsa_key(&n, "AQAB").is_ok());
        assert!(rsa_key("AQAB", "AQAB").is_err());
        assert!(rsa_key(&n, "").is_err());
        assert!(rsa_key("!!", "AQAB").is_err());
    }

    #[test]
    fn unsupported_parts_are_compile_errors() {
        let doc = |inner: &str| {
            test_doc(&format!(
                "<policies><inbound><validate-jwt>{inner}</validate-jwt></inbound></policies>"
            ))
        };
        assert!(doc(
            r#"<openid-config url="https://id.example/.well-known/openid-configuration" />"#
        )
        .is_ok());
        assert!(doc(r#"<openid-config url="ftp://id.example/" />"#).is_err());
        let e = doc(r#"<issuer-signing-keys><key certificate-id="c1" /></issuer-signing-keys>"#)
            .unwrap_err();
        assert!(e[0].message.contains("certificate"));
        let e = doc(r#"<issuer-signing-keys><key>c2VjcmV0</key></issuer-signing-keys><decryption-keys><key>c2VjcmV0</key></decryption-keys>"#)
            .unwrap_err();
        assert!(e[0].message.contains("encrypted tokens are not supported"));
        let e =
            doc(r#"<issuer-signing-keys><key>s3cr3t!!</key></issuer-signing-keys>"#).unwrap_err();
        assert!(!e[0].message.contains("s3cr3t"));
        assert!(doc("").is_err(), "no keys while signed tokens are required");
        assert!(
            doc(r#"<issuer-signing-keys><key id="k1">c2VjcmV0</key></issuer-signing-keys>"#)
                .is_ok()
        );
    }

    #[test]
    fn jwks_keeps_signing_rsa_and_ec_keys() {
        let n = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            [0xC5u8; 256],
        );
        let xy =
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, [7u8; 32]);
        let jwks = serde_json::json!({"keys": [
            {"kty": "RSA", "kid": "r1", "use": "sig", "n": n, "e": "AQAB"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": n, "e": "AQAB"},
            {"kty": "EC", "kid": "e1", "crv": "P-256", "x": xy, "y": xy},
            {"kty": "EC", "kid": "e2", "crv": "P-521", "x": xy, "y": xy},
            {"kty": "oct", "kid": "o1", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "short", "n": "AQAB", "e": "AQAB"},
        ]});
        let keys = jwks_keys(&jwks);
        let got: Vec<(Option<&str>, KeyKind)> =
            keys.iter().map(|k| (k.id.as_deref(), k.kind)).collect();
        assert_eq!(
            got,
            vec![(Some("r1"), KeyKind::Rsa), (Some("e1"), KeyKind::EcP256)]
        );
        assert!(jwks_keys(&serde_json::json!({"nope": 1})).is_empty());
    }
}
