//! Library objects and their members: `Regex`, `Match`, `Group`, `Jwt`
//! (and its claims), `BasicAuthCredentials`, `Uri`, `Random`, hash and
//! HMAC algorithms, `Encoding`, `StringBuilder`, `StringComparer`,
//! exceptions; XML objects are delegated to [`super::xml`].

use super::{arg, opt_str, req_str, to_i64};
use crate::expr::eval::{EResult, EvalError, Interp};
use crate::expr::time::DateTime;
use crate::expr::value::{Shared, Value};
use base64::Engine as _;
use std::sync::Arc;

pub const INSTANCE: &[&str] = &[
    // Regex, Match, Group
    "IsMatch",
    "Match",
    "Matches",
    "Success",
    "Index",
    "Groups",
    "NextMatch",
    "Captures",
    // Jwt
    "Algorithm",
    "Audiences",
    "Claims",
    "ExpirationTime",
    "Id",
    "Issuer",
    "IssuedAt",
    "NotBefore",
    "Subject",
    // BasicAuthCredentials
    "UserId",
    "Password",
    // Uri
    "Host",
    "Scheme",
    "Port",
    "AbsolutePath",
    "AbsoluteUri",
    "Query",
    "PathAndQuery",
    "Segments",
    "Authority",
    "Fragment",
    "OriginalString",
    "IsAbsoluteUri",
    "GetLeftPart",
    // Random
    "Next",
    "NextDouble",
    "NextBytes",
    // Hashes, encodings
    "ComputeHash",
    "Key",
    "GetBytes",
    "GetString",
    "WebName",
    // Exceptions, comparers
    "Message",
    "Compare",
];

/// A hash algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashKind {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

pub fn hash_kind(ty: &str) -> HashKind {
    if ty.contains("384") {
        HashKind::Sha384
    } else if ty.contains("512") {
        HashKind::Sha512
    } else if ty.contains("256") {
        HashKind::Sha256
    } else {
        HashKind::Sha1
    }
}

pub fn digest(kind: HashKind, data: &[u8]) -> Vec<u8> {
    let alg = match kind {
        HashKind::Sha1 => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        HashKind::Sha256 => &ring::digest::SHA256,
        HashKind::Sha384 => &ring::digest::SHA384,
        HashKind::Sha512 => &ring::digest::SHA512,
    };
    ring::digest::digest(alg, data).as_ref().to_vec()
}

fn hmac(kind: HashKind, key: &[u8], data: &[u8]) -> Vec<u8> {
    let alg = match kind {
        HashKind::Sha1 => ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        HashKind::Sha256 => ring::hmac::HMAC_SHA256,
        HashKind::Sha384 => ring::hmac::HMAC_SHA384,
        HashKind::Sha512 => ring::hmac::HMAC_SHA512,
    };
    let k = ring::hmac::Key::new(alg, key);
    ring::hmac::sign(&k, data).as_ref().to_vec()
}

/// One regex match.
#[derive(Debug)]
pub struct MatchData {
    pub success: bool,
    pub value: String,
    pub index: usize,
    /// (name, Some((text, char index))) per group; group 0 first.
    pub groups: Vec<(String, Option<(String, usize)>)>,
    /// For `NextMatch`: the regex, the input, where to resume (bytes).
    pub next: Option<(Arc<regex::Regex>, Arc<str>, usize)>,
}

/// A parsed JWT (not validated: `AsJwt` only decodes).
#[derive(Debug)]
pub struct Jwt {
    pub header: serde_json::Map<String, serde_json::Value>,
    pub claims: Vec<(String, Vec<String>)>,
    pub payload: serde_json::Map<String, serde_json::Value>,
}

/// A library object.
#[derive(Debug)]
pub enum Native {
    Regex(Arc<regex::Regex>),
    Match(Arc<MatchData>),
    /// A group of a match (`Groups[1]`).
    Group(Option<(String, usize)>, String),
    Groups(Arc<MatchData>),
    Jwt(Jwt),
    /// String-to-string-array dictionary with APIM's comma-joining
    /// `GetValueOrDefault` (JWT claims).
    Claims(Vec<(String, Vec<String>)>),
    Basic(String, String),
    Uri(String),
    Random(Shared<u64>),
    Hash(HashKind),
    Hmac(HashKind, Shared<Vec<u8>>),
    Encoding(&'static str),
    StringBuilder(Shared<String>),
    StringComparer(&'static str),
    Exception(String, String),
    /// `XDocument`, `XElement`, `XAttribute`, `XName`, `XNamespace`.
    Xml(super::xml::Xml),
    /// A response stored by `send-request` (`IResponse`), its headers and
    /// its body (see `stored.rs`).
    Response(Arc<crate::expr::context::Response>),
    StoredHeaders(Arc<crate::expr::context::Response>),
    StoredBody(Arc<crate::expr::context::Response>),
}

impl Native {
    pub fn type_name(&self) -> &'static str {
        match self {
            Native::Regex(_) => "Regex",
            Native::Match(_) => "Match",
            Native::Group(..) => "Group",
            Native::Groups(_) => "GroupCollection",
            Native::Jwt(_) => "Jwt",
            Native::Claims(_) => "IReadOnlyDictionary",
            Native::Basic(..) => "BasicAuthCredentials",
            Native::Uri(_) => "Uri",
            Native::Random(_) => "Random",
            Native::Hash(_) => "HashAlgorithm",
            Native::Hmac(..) => "HMAC",
            Native::Encoding(_) => "Encoding",
            Native::StringBuilder(_) => "StringBuilder",
            Native::StringComparer(_) => "StringComparer",
            Native::Exception(..) => "Exception",
            Native::Xml(x) => x.type_name(),
            Native::Response(_) => "IResponse",
            Native::StoredHeaders(_) => "IHeaders",
            Native::StoredBody(_) => "IMessageBody",
        }
    }

    pub fn to_display(&self) -> String {
        match self {
            Native::Regex(r) => r.as_str().to_string(),
            Native::Match(m) => m.value.clone(),
            Native::Group(g, _) => g.as_ref().map(|(t, _)| t.clone()).unwrap_or_default(),
            Native::Uri(u) => u.clone(),
            Native::StringBuilder(s) => s.lock().clone(),
            Native::StringComparer(n) => format!("StringComparer.{n}"),
            Native::Exception(kind, msg) => format!("System.{kind}: {msg}"),
            Native::Xml(x) => x.to_display(),
            other => format!("System.{}", other.type_name()),
        }
    }
}

/// RegexOptions flag values.
pub fn regex_option_bits(name: &str) -> i64 {
    match name {
        "IgnoreCase" => 1,
        "Multiline" => 2,
        "ExplicitCapture" => 4,
        "Compiled" => 8,
        "Singleline" => 16,
        "IgnorePatternWhitespace" => 32,
        "ECMAScript" => 256,
        "CultureInvariant" => 512,
        _ => 0,
    }
}

/// Compiles a .NET pattern with `RegexOptions` (size-limited).
pub fn build_regex(pattern: &str, opts: Option<&Value>) -> EResult<regex::Regex> {
    let bits = match opts {
        Some(Value::Enum(_, m)) => regex_option_bits(m),
        Some(Value::Int(i)) => *i,
        _ => 0,
    };
    regex::RegexBuilder::new(pattern)
        .case_insensitive(bits & 1 != 0)
        .multi_line(bits & 2 != 0)
        .dot_matches_new_line(bits & 16 != 0)
        .ignore_whitespace(bits & 32 != 0)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| {
            EvalError::argument(format!(
                "Invalid pattern '{pattern}': {}",
                e.to_string().lines().last().unwrap_or("syntax error")
            ))
        })
}

pub fn regex_unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some(o) => out.push(o),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn char_index(s: &str, byte: usize) -> usize {
    s[..byte].chars().count()
}

fn match_at(re: &Arc<regex::Regex>, input: &Arc<str>, from: usize) -> MatchData {
    let caps = if from <= input.len() {
        re.captures_at(input, from)
    } else {
        None
    };
    match caps {
        None => MatchData {
            success: false,
            value: String::new(),
            index: 0,
            groups: vec![(String::from("0"), None)],
            next: None,
        },
        Some(c) => {
            let m0 = c.get(0).map(|m| (m.start(), m.end())).unwrap_or((0, 0));
            let names: Vec<String> = re
                .capture_names()
                .enumerate()
                .map(|(i, n)| n.map(str::to_string).unwrap_or_else(|| i.to_string()))
                .collect();
            let groups = (0..c.len())
                .map(|i| {
                    (
                        names.get(i).cloned().unwrap_or_else(|| i.to_string()),
                        c.get(i)
                            .map(|m| (m.as_str().to_string(), char_index(input, m.start()))),
                    )
                })
                .collect();
            // An empty match resumes one character further on.
            let resume = if m0.1 == m0.0 {
                input[m0.1..]
                    .chars()
                    .next()
                    .map(|ch| m0.1 + ch.len_utf8())
                    .unwrap_or(input.len() + 1)
            } else {
                m0.1
            };
            MatchData {
                success: true,
                value: input[m0.0..m0.1].to_string(),
                index: char_index(input, m0.0),
                groups,
                next: Some((re.clone(), input.clone(), resume)),
            }
        }
    }
}

fn all_matches(re: &Arc<regex::Regex>, input: &Arc<str>) -> Vec<Value> {
    let mut out = Vec::new();
    let mut from = 0;
    loop {
        let m = match_at(re, input, from);
        if !m.success {
            break;
        }
        from = m.next.as_ref().map(|n| n.2).unwrap_or(input.len() + 1);
        out.push(Value::Native(Arc::new(Native::Match(Arc::new(m)))));
        if from > input.len() {
            break;
        }
    }
    out
}

/// Regex instance methods (and the static forms, after compiling).
pub fn regex_call(it: &mut Interp, re: &regex::Regex, name: &str, input: &str) -> EResult<Value> {
    let re = Arc::new(re.clone());
    let input: Arc<str> = input.into();
    it.charge(input.len())?;
    Ok(match name {
        "IsMatch" => Value::Bool(re.is_match(&input)),
        "Match" => Value::Native(Arc::new(Native::Match(Arc::new(match_at(&re, &input, 0))))),
        "Matches" => super::list_of(all_matches(&re, &input)),
        "Split" => Value::new_array(re.split(&input).map(Value::str).collect()),
        _ => {
            return Err(EvalError::invalid_op(format!(
                "Regex has no method '{name}'"
            )))
        }
    })
}

/// `Regex.Replace` with a replacement string (`$1`, `${name}`) or a
/// `MatchEvaluator` lambda.
pub fn regex_replace(
    it: &mut Interp,
    re: &regex::Regex,
    input: &str,
    rep: &Value,
) -> EResult<Value> {
    match rep {
        Value::Lambda(f) => {
            let re = Arc::new(re.clone());
            let input_arc: Arc<str> = input.into();
            let mut out = String::new();
            let mut last = 0;
            for m in all_matches(&re, &input_arc) {
                let Value::Native(n) = &m else { continue };
                let Native::Match(md) = &**n else { continue };
                let start = input
                    .char_indices()
                    .nth(md.index)
                    .map(|(b, _)| b)
                    .unwrap_or(input.len());
                out.push_str(&input[last..start]);
                let r = it.call_closure(f, vec![m.clone()])?;
                out.push_str(&r.to_display());
                last = start + md.value.len();
                it.charge(out.len())?;
            }
            out.push_str(&input[last.min(input.len())..]);
            it.string(out)
        }
        other => {
            let r = opt_str(other)?.unwrap_or_default();
            let s = re.replace_all(input, r.as_str()).into_owned();
            it.string(s)
        }
    }
}

/// Parses an absolute URI.
pub fn parse_uri(s: &str) -> Option<String> {
    let (scheme, rest) = s.split_once("://")?;
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        || rest.is_empty()
        || rest.starts_with('/')
        || s.contains(' ')
    {
        return None;
    }
    Some(s.to_string())
}

struct UriParts<'a> {
    scheme: &'a str,
    host: &'a str,
    port: Option<u16>,
    path: &'a str,
    query: &'a str,
    fragment: &'a str,
}

fn uri_parts(u: &str) -> UriParts<'_> {
    let (scheme, rest) = u.split_once("://").unwrap_or(("", u));
    let (rest, fragment) = match rest.find('#') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (authority, pq) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (path, query) = match pq.find('?') {
        Some(i) => (&pq[..i], &pq[i..]),
        None => (pq, ""),
    };
    let authority = authority
        .rsplit_once('@')
        .map(|(_, h)| h)
        .unwrap_or(authority);
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) && !p.is_empty() => {
            (h, p.parse().ok())
        }
        _ => (authority, None),
    };
    UriParts {
        scheme,
        host,
        port,
        path: if path.is_empty() { "/" } else { path },
        query,
        fragment,
    }
}

fn default_port(scheme: &str) -> i64 {
    match scheme {
        "http" | "ws" => 80,
        "https" | "wss" => 443,
        "ftp" => 21,
        _ => -1,
    }
}

/// Decodes a JWT's header and payload (`AsJwt`): `None` when malformed.
pub fn parse_jwt(s: &str) -> Option<Jwt> {
    let s = s.trim();
    let s = s
        .strip_prefix("Bearer ")
        .or_else(|| s.strip_prefix("bearer "))
        .unwrap_or(s)
        .trim();
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() != 3 {
        return None;
    }
    let dec = |p: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(p.trim_end_matches('='))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| match v {
                serde_json::Value::Object(m) => Some(m),
                _ => None,
            })
    };
    let header = dec(parts[0])?;
    let payload = dec(parts[1])?;
    let claims = payload
        .iter()
        .map(|(k, v)| {
            let vals = match v {
                serde_json::Value::String(s) => vec![s.clone()],
                serde_json::Value::Array(a) => a
                    .iter()
                    .map(|x| match x {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect(),
                other => vec![other.to_string()],
            };
            (k.clone(), vals)
        })
        .collect();
    Some(Jwt {
        header,
        claims,
        payload,
    })
}

/// Decodes `Basic base64(user:pass)` (`AsBasic`).
pub fn parse_basic(s: &str) -> Option<Value> {
    let s = s.trim();
    let b64 = match s.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("basic") => rest.trim(),
        Some(_) => return None,
        None => s,
    };
    let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some(Value::Native(Arc::new(Native::Basic(
        user.to_string(),
        pass.to_string(),
    ))))
}

fn jwt_time(jwt: &Jwt, claim: &str) -> Value {
    jwt.payload
        .get(claim)
        .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
        .and_then(DateTime::from_unix_seconds)
        .map(Value::DateTime)
        .unwrap_or(Value::Null)
}

fn jwt_str(map: &serde_json::Map<String, serde_json::Value>, k: &str) -> Value {
    match map.get(k) {
        Some(serde_json::Value::String(s)) => Value::str(s.as_str()),
        Some(other) => Value::str(other.to_string()),
        None => Value::Null,
    }
}

fn claims_get(c: &[(String, Vec<String>)], k: &str) -> Option<Vec<String>> {
    c.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
}

fn strings(v: Vec<String>) -> Value {
    Value::new_array(v.into_iter().map(Value::str).collect())
}

pub fn get(it: &mut Interp, n: &Arc<Native>, name: &str) -> EResult<Value> {
    if let Native::Xml(x) = &**n {
        return super::xml::get(it, x, name);
    }
    let missing = || EvalError::invalid_op(format!("{} has no property '{name}'", n.type_name()));
    Ok(match (&**n, name) {
        (Native::Match(m), "Success") => Value::Bool(m.success),
        (Native::Match(m), "Value") => Value::str(m.value.as_str()),
        (Native::Match(m), "Index") => Value::Int(m.index as i64),
        (Native::Match(m), "Length") => Value::Int(m.value.chars().count() as i64),
        (Native::Match(m), "Groups") => Value::Native(Arc::new(Native::Groups(m.clone()))),
        (Native::Groups(m), "Count") => Value::Int(m.groups.len() as i64),
        (Native::Group(g, _), "Success") => Value::Bool(g.is_some()),
        (Native::Group(g, _), "Value") => {
            Value::str(g.as_ref().map(|(t, _)| t.clone()).unwrap_or_default())
        }
        (Native::Group(g, _), "Index") => {
            Value::Int(g.as_ref().map(|(_, i)| *i as i64).unwrap_or(0))
        }
        (Native::Group(g, _), "Length") => Value::Int(
            g.as_ref()
                .map(|(t, _)| t.chars().count() as i64)
                .unwrap_or(0),
        ),
        (Native::Group(_, n), "Name") => Value::str(n.as_str()),
        (Native::Jwt(j), "Algorithm") => jwt_str(&j.header, "alg"),
        (Native::Jwt(j), "Type") => jwt_str(&j.header, "typ"),
        (Native::Jwt(j), "Audiences") => strings(claims_get(&j.claims, "aud").unwrap_or_default()),
        (Native::Jwt(j), "Claims") => Value::Native(Arc::new(Native::Claims(j.claims.clone()))),
        (Native::Jwt(j), "ExpirationTime") => jwt_time(j, "exp"),
        (Native::Jwt(j), "IssuedAt") => jwt_time(j, "iat"),
        (Native::Jwt(j), "NotBefore") => jwt_time(j, "nbf"),
        (Native::Jwt(j), "Id") => jwt_str(&j.payload, "jti"),
        (Native::Jwt(j), "Issuer") => jwt_str(&j.payload, "iss"),
        (Native::Jwt(j), "Subject") => jwt_str(&j.payload, "sub"),
        (Native::Claims(c), "Count") => Value::Int(c.len() as i64),
        (Native::Claims(c), "Keys") => {
            super::list_of(c.iter().map(|(k, _)| Value::str(k.as_str())).collect())
        }
        (Native::Basic(u, _), "UserId") => Value::str(u.as_str()),
        (Native::Basic(_, p), "Password") => Value::str(p.as_str()),
        (Native::Uri(u), _) => {
            let p = uri_parts(u);
            match name {
                "Host" => Value::str(p.host),
                "Scheme" => Value::str(p.scheme),
                "Port" => Value::Int(
                    p.port
                        .map(i64::from)
                        .unwrap_or_else(|| default_port(p.scheme)),
                ),
                "AbsolutePath" => Value::str(p.path),
                "AbsoluteUri" | "OriginalString" => Value::str(u.as_str()),
                "Query" => Value::str(p.query),
                "Fragment" => Value::str(p.fragment),
                "PathAndQuery" => Value::str(format!("{}{}", p.path, p.query)),
                "Authority" => Value::str(match p.port {
                    Some(port) if i64::from(port) != default_port(p.scheme) => {
                        format!("{}:{port}", p.host)
                    }
                    _ => p.host.to_string(),
                }),
                "IsAbsoluteUri" => Value::Bool(true),
                "Segments" => {
                    let mut segs = vec![Value::str("/")];
                    let trimmed = p.path.trim_start_matches('/');
                    let parts: Vec<&str> = trimmed.split('/').collect();
                    for (i, s) in parts.iter().enumerate() {
                        if s.is_empty() {
                            continue;
                        }
                        let last = i == parts.len() - 1;
                        segs.push(Value::str(if last {
                            s.to_string()
                        } else {
                            format!("{s}/")
                        }));
                    }
                    Value::new_array(segs)
                }
                _ => return Err(missing()),
            }
        }
        (Native::Hmac(_, key), "Key") => Value::Bytes(Shared::new(key.lock().clone())),
        (Native::Encoding(e), "WebName") => Value::str(*e),
        (Native::StringBuilder(s), "Length") => Value::Int(s.lock().chars().count() as i64),
        (Native::Exception(_, m), "Message") => Value::str(m.as_str()),
        _ => return Err(missing()),
    })
}

pub fn index(n: &Arc<Native>, key: &Value) -> EResult<Value> {
    match &**n {
        Native::Groups(m) => {
            let found = match key {
                Value::Int(i) => m.groups.get(*i as usize),
                other => {
                    let k = req_str(other, "groupname")?;
                    m.groups.iter().find(|(name, _)| *name == k)
                }
            };
            // A group that does not exist is an unsuccessful group, as in .NET.
            Ok(Value::Native(Arc::new(match found {
                Some((name, g)) => Native::Group(g.clone(), name.clone()),
                None => Native::Group(None, String::new()),
            })))
        }
        Native::Claims(c) => {
            let k = req_str(key, "key")?;
            claims_get(c, &k)
                .map(strings)
                .ok_or_else(|| EvalError::key_not_found(&k))
        }
        other => Err(EvalError::invalid_op(format!(
            "a {} cannot be indexed",
            other.type_name()
        ))),
    }
}

pub fn iterate(n: &Arc<Native>) -> EResult<Vec<Value>> {
    match &**n {
        Native::Groups(m) => Ok(m
            .groups
            .iter()
            .map(|(name, g)| Value::Native(Arc::new(Native::Group(g.clone(), name.clone()))))
            .collect()),
        Native::Claims(c) => Ok(c
            .iter()
            .map(|(k, v)| Value::Pair(Arc::new((Value::str(k.as_str()), strings(v.clone())))))
            .collect()),
        other => Err(EvalError::invalid_op(format!(
            "a {} cannot be enumerated",
            other.type_name()
        ))),
    }
}

fn next_random(state: &Shared<u64>) -> u64 {
    // xorshift64*: fast and good enough for load balancing; not for secrets.
    let mut g = state.lock();
    let mut x = *g;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *g = x;
    x.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

pub fn call(it: &mut Interp, n: &Arc<Native>, name: &str, args: &mut [Value]) -> EResult<Value> {
    if let Native::Xml(x) = &**n {
        return super::xml::call(it, x, name, args);
    }
    let a0 = arg(args, 0).clone();
    match (&**n, name) {
        (Native::Regex(re), "Replace") => {
            let input = req_str(&a0, "input")?;
            regex_replace(it, re, &input, arg(args, 1))
        }
        (Native::Regex(re), _) => {
            let input = req_str(&a0, "input")?;
            regex_call(it, re, name, &input)
        }
        (Native::Match(m), "NextMatch") => Ok(Value::Native(Arc::new(Native::Match(Arc::new(
            match &m.next {
                Some((re, input, from)) => match_at(re, input, *from),
                None => match_at(&Arc::new(build_regex("$^", None)?), &Arc::from(""), 1),
            },
        ))))),
        (Native::Claims(c), "GetValueOrDefault") => {
            let k = req_str(&a0, "key")?;
            Ok(match claims_get(c, &k) {
                Some(v) => Value::str(v.join(",")),
                None => arg(args, 1).clone(),
            })
        }
        (Native::Claims(c), "ContainsKey") => {
            let k = req_str(&a0, "key")?;
            Ok(Value::Bool(claims_get(c, &k).is_some()))
        }
        (Native::Claims(c), "TryGetValue") => {
            let k = req_str(&a0, "key")?;
            let found = claims_get(c, &k);
            let ok = found.is_some();
            if let Some(slot) = args.get_mut(1) {
                *slot = found.map(strings).unwrap_or_default();
            }
            Ok(Value::Bool(ok))
        }
        (Native::Claims(_), _) | (Native::Groups(_), _) => {
            let items = iterate(n)?;
            super::linq::call(it, &super::list_of(items), name, args)
        }
        (Native::Random(state), "Next") => {
            let (lo, hi) = match args.len() {
                0 => (0, i32::MAX as i64),
                1 => (0, to_i64(&a0)?),
                _ => (to_i64(&a0)?, to_i64(arg(args, 1))?),
            };
            if hi < lo || (args.len() == 1 && hi < 0) {
                return Err(EvalError::out_of_range(
                    "'minValue' cannot be greater than maxValue.",
                ));
            }
            if hi == lo {
                return Ok(Value::Int(lo));
            }
            let span = (hi - lo) as u64;
            Ok(Value::Int(lo + (next_random(state) % span) as i64))
        }
        (Native::Random(state), "NextDouble") => Ok(Value::Float(
            (next_random(state) >> 11) as f64 / (1u64 << 53) as f64,
        )),
        (Native::Random(state), "NextBytes") => {
            if let Value::Bytes(b) = &a0 {
                let mut g = b.lock();
                for x in g.iter_mut() {
                    *x = next_random(state) as u8;
                }
            }
            Ok(Value::Null)
        }
        (Native::Hash(kind), "ComputeHash") => {
            let data = super::statics::arg_bytes(&a0)?;
            super::statics::bytes(it, digest(*kind, &data))
        }
        (Native::Hmac(kind, key), "ComputeHash") => {
            let data = super::statics::arg_bytes(&a0)?;
            let key = key.lock().clone();
            super::statics::bytes(it, hmac(*kind, &key, &data))
        }
        (Native::Encoding(e), "GetBytes") => {
            let s = match &a0 {
                Value::List(..) => super::iterate(it, &a0)?
                    .iter()
                    .map(Value::to_display)
                    .collect(),
                other => req_str(other, "s")?,
            };
            super::statics::bytes(it, super::statics::encode(e, &s))
        }
        (Native::Encoding(e), "GetString") => {
            let b = super::statics::arg_bytes(&a0)?;
            let b = match (arg(args, 1), arg(args, 2)) {
                (Value::Int(start), Value::Int(len)) => {
                    let (s, l) = (*start as usize, *len as usize);
                    b.get(s..s + l)
                        .ok_or_else(|| EvalError::out_of_range("index"))?
                        .to_vec()
                }
                _ => b,
            };
            it.string(super::statics::decode(e, &b))
        }
        (Native::StringBuilder(sb), _) => super::strings::builder_call(it, n, sb, name, args),
        (Native::StringComparer(kind), "Equals" | "Compare") => {
            let (x, y) = (
                opt_str(&a0)?.unwrap_or_default(),
                opt_str(arg(args, 1))?.unwrap_or_default(),
            );
            let ic = kind.ends_with("IgnoreCase");
            if name == "Equals" {
                Ok(Value::Bool(if ic {
                    x.to_lowercase() == y.to_lowercase()
                } else {
                    x == y
                }))
            } else {
                Ok(Value::Int(
                    super::strings::culture_compare(&x, &y, ic) as i64
                ))
            }
        }
        (Native::Uri(u), "GetLeftPart") => {
            let p = uri_parts(u);
            let auth = match p.port {
                Some(port) => format!("{}://{}:{port}", p.scheme, p.host),
                None => format!("{}://{}", p.scheme, p.host),
            };
            Ok(Value::str(match a0 {
                Value::Enum(_, "Scheme") => format!("{}://", p.scheme),
                Value::Enum(_, "Authority") => auth,
                Value::Enum(_, "Path") => format!("{auth}{}", p.path),
                _ => format!("{auth}{}{}", p.path, p.query),
            }))
        }
        (_, "ToString") => Ok(Value::str(n.to_display())),
        _ => Err(EvalError::invalid_op(format!(
            "{} has no method '{name}'",
            n.type_name()
        ))),
    }
}
