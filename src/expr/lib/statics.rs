//! Static types and value-type members: numeric types, `Char`, `Boolean`,
//! `Math`, `Convert`, `Encoding`, `Guid`, `DateTime`, `DateTimeOffset`,
//! `TimeSpan`, `Uri`, `WebUtility`, `BitConverter`, `Random`, `Regex`,
//! hash algorithms, `Array`, `Exception` and the enums users pass
//! (`StringComparison`, `StringSplitOptions`, `RegexOptions`, ...).

use super::{arg, opt_str, req_str, to_f64, to_i64, Native};
use crate::expr::ast::TypeRef;
use crate::expr::context::COMPONENT;
use crate::expr::eval::{EResult, EvalError, Interp};
use crate::expr::time::{self, DateTime, Kind, TimeSpan, TICKS_PER_DAY, TICKS_PER_SECOND};
use crate::expr::value::{format_double, parse_guid, Shared, Value};
use base64::Engine as _;
use std::sync::Arc;

/// Exception types `throw`/`catch` know.
pub const EXCEPTIONS: &[&str] = &[
    "Exception",
    "ArgumentException",
    "ArgumentNullException",
    "ArgumentOutOfRangeException",
    "InvalidOperationException",
    "FormatException",
    "NullReferenceException",
    "InvalidCastException",
    "KeyNotFoundException",
    "DivideByZeroException",
    "OverflowException",
    "NotSupportedException",
    "IndexOutOfRangeException",
    "JsonReaderException",
    "JsonException",
    "CryptographicException",
    "XmlException",
];

/// Instance members of value types and library objects handled here.
pub const INSTANCE: &[&str] = &[
    // DateTime / DateTimeOffset
    "Year",
    "Month",
    "Day",
    "Hour",
    "Minute",
    "Second",
    "Millisecond",
    "Ticks",
    "DayOfWeek",
    "DayOfYear",
    "Date",
    "TimeOfDay",
    "Kind",
    "AddYears",
    "AddMonths",
    "AddDays",
    "AddHours",
    "AddMinutes",
    "AddSeconds",
    "AddMilliseconds",
    "AddTicks",
    "Add",
    "Subtract",
    "ToUniversalTime",
    "ToLocalTime",
    "ToUnixTimeSeconds",
    "ToUnixTimeMilliseconds",
    "UtcDateTime",
    "DateTime",
    "LocalDateTime",
    "Offset",
    "CompareTo",
    "ToFileTimeUtc",
    // TimeSpan
    "TotalDays",
    "TotalHours",
    "TotalMinutes",
    "TotalSeconds",
    "TotalMilliseconds",
    "Days",
    "Hours",
    "Minutes",
    "Seconds",
    "Milliseconds",
    "Duration",
    "Negate",
    // Guid
    "ToByteArray",
    // Nullable
    "HasValue",
    "GetValueOrDefault",
];

const NUMERIC: &[&str] = &["Parse", "TryParse", "MaxValue", "MinValue"];
const BOOLEAN: &[&str] = &["Parse", "TryParse", "TrueString", "FalseString"];
const CHAR: &[&str] = &[
    "IsDigit",
    "IsLetter",
    "IsLetterOrDigit",
    "IsWhiteSpace",
    "IsUpper",
    "IsLower",
    "IsPunctuation",
    "ToUpper",
    "ToLower",
    "ToUpperInvariant",
    "ToLowerInvariant",
    "Parse",
];
const MATH: &[&str] = &[
    "Abs", "Max", "Min", "Floor", "Ceiling", "Round", "Pow", "Sqrt", "Log", "Log10", "Log2", "Exp",
    "Sign", "Truncate", "Clamp", "PI", "E",
];
const CONVERT: &[&str] = &[
    "ToBase64String",
    "FromBase64String",
    "ToInt32",
    "ToInt64",
    "ToInt16",
    "ToDouble",
    "ToDecimal",
    "ToSingle",
    "ToString",
    "ToBoolean",
    "ToDateTime",
    "ToByte",
    "ToChar",
    "ToHexString",
    "FromHexString",
];
const ENCODING: &[&str] = &["UTF8", "ASCII", "Unicode", "Default", "GetEncoding"];
const GUID: &[&str] = &["NewGuid", "Parse", "TryParse", "Empty"];
const DATETIME: &[&str] = &[
    "UtcNow",
    "Now",
    "Today",
    "MinValue",
    "MaxValue",
    "UnixEpoch",
    "Parse",
    "TryParse",
    "ParseExact",
    "DaysInMonth",
    "IsLeapYear",
    "SpecifyKind",
    "Compare",
];
const DATETIMEOFFSET: &[&str] = &[
    "UtcNow",
    "Now",
    "MinValue",
    "MaxValue",
    "UnixEpoch",
    "Parse",
    "TryParse",
    "FromUnixTimeSeconds",
    "FromUnixTimeMilliseconds",
];
const TIMESPAN: &[&str] = &[
    "FromDays",
    "FromHours",
    "FromMinutes",
    "FromSeconds",
    "FromMilliseconds",
    "FromTicks",
    "Zero",
    "MaxValue",
    "MinValue",
    "Parse",
    "TryParse",
    "TicksPerSecond",
    "TicksPerMillisecond",
    "TicksPerDay",
];
const URI: &[&str] = &[
    "EscapeDataString",
    "UnescapeDataString",
    "EscapeUriString",
    "IsWellFormedUriString",
    "TryCreate",
];
const WEBUTILITY: &[&str] = &["UrlEncode", "UrlDecode", "HtmlEncode", "HtmlDecode"];
const BITCONVERTER: &[&str] = &[
    "ToString",
    "GetBytes",
    "ToInt32",
    "ToInt64",
    "IsLittleEndian",
];
const REGEX: &[&str] = &[
    "IsMatch", "Match", "Matches", "Replace", "Split", "Escape", "Unescape",
];
const HASH: &[&str] = &["Create", "HashData"];
const ARRAY: &[&str] = &["Empty", "IndexOf", "Reverse", "Copy", "Resize", "Exists"];
const NONE: &[&str] = &[];

/// Enum types and their members.
const ENUMS: &[(&str, &[&str])] = &[
    (
        "StringComparison",
        &[
            "CurrentCulture",
            "CurrentCultureIgnoreCase",
            "InvariantCulture",
            "InvariantCultureIgnoreCase",
            "Ordinal",
            "OrdinalIgnoreCase",
        ],
    ),
    (
        "StringSplitOptions",
        &["None", "RemoveEmptyEntries", "TrimEntries"],
    ),
    (
        "RegexOptions",
        &[
            "None",
            "IgnoreCase",
            "Multiline",
            "Singleline",
            "ExplicitCapture",
            "Compiled",
            "IgnorePatternWhitespace",
            "CultureInvariant",
            "ECMAScript",
        ],
    ),
    ("DateTimeKind", &["Unspecified", "Utc", "Local"]),
    (
        "LoadOptions",
        &["None", "PreserveWhitespace", "SetBaseUri", "SetLineInfo"],
    ),
    (
        "SaveOptions",
        &["None", "DisableFormatting", "OmitDuplicateNamespaces"],
    ),
    ("UriPartial", &["Scheme", "Authority", "Path", "Query"]),
    (
        "StringComparer",
        &[
            "Ordinal",
            "OrdinalIgnoreCase",
            "InvariantCulture",
            "InvariantCultureIgnoreCase",
            "CurrentCulture",
            "CurrentCultureIgnoreCase",
        ],
    ),
];

pub fn statics(ty: &str) -> Option<&'static [&'static str]> {
    if let Some((_, m)) = ENUMS.iter().find(|(t, _)| *t == ty) {
        return Some(m);
    }
    Some(match ty {
        "Int32" | "Int64" | "Int16" | "UInt32" | "UInt64" | "Byte" | "Double" | "Single"
        | "Decimal" => NUMERIC,
        "Boolean" => BOOLEAN,
        "Char" => CHAR,
        "Math" => MATH,
        "Convert" => CONVERT,
        "Encoding" => ENCODING,
        "Guid" => GUID,
        "DateTime" => DATETIME,
        "DateTimeOffset" => DATETIMEOFFSET,
        "TimeSpan" => TIMESPAN,
        "Uri" => URI,
        "WebUtility" => WEBUTILITY,
        "BitConverter" => BITCONVERTER,
        "Regex" => REGEX,
        "SHA1" | "SHA256" | "SHA384" | "SHA512" => HASH,
        "Array" => ARRAY,
        _ => NONE,
    })
}

/// The types `new` may create.
pub const CONSTRUCTIBLE: &[&str] = &[
    "JObject",
    "JArray",
    "JValue",
    "JProperty",
    "StringBuilder",
    "String",
    "List",
    "HashSet",
    "Dictionary",
    "Random",
    "Regex",
    "Uri",
    "Guid",
    "DateTime",
    "DateTimeOffset",
    "TimeSpan",
    "Exception",
    "HMACSHA1",
    "HMACSHA256",
    "HMACSHA384",
    "HMACSHA512",
    "Object",
];

/// The numeric value of an enum member (for `(int)` casts).
pub fn enum_value(v: &Value) -> i64 {
    match v {
        Value::Enum(t, m) => ENUMS
            .iter()
            .find(|(n, _)| n == t)
            .and_then(|(_, ms)| ms.iter().position(|x| x == m))
            .map(|i| i as i64)
            .unwrap_or(0),
        _ => 0,
    }
}

fn invalid_format() -> EvalError {
    EvalError::format("Input string was not in a correct format.")
}

fn bytes_of(v: &Value) -> EResult<Vec<u8>> {
    match v {
        Value::Bytes(b) => Ok(b.lock().clone()),
        Value::List(items, _) => items
            .lock()
            .iter()
            .map(|x| to_i64(x).map(|b| b as u8))
            .collect(),
        Value::Null => Err(EvalError::new(
            "ArgumentNullException",
            "Value cannot be null. (Parameter 'inArray')",
        )),
        other => Err(EvalError::invalid_cast(other.type_name(), "Byte[]")),
    }
}

/// Bytes → `Value::Bytes`, charged.
pub fn bytes(it: &mut Interp, b: Vec<u8>) -> EResult<Value> {
    it.charge(b.len())?;
    Ok(Value::Bytes(Shared::new(b)))
}

pub fn hash_code(v: &Value) -> i64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    v.to_display().hash(&mut h);
    (h.finish() as i32) as i64
}

fn parse_int(s: &str) -> Option<i64> {
    s.trim().parse::<i64>().ok()
}

fn parse_float(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty() || t.eq_ignore_ascii_case("inf") || t.eq_ignore_ascii_case("nan") {
        return match t {
            "NaN" => Some(f64::NAN),
            _ => None,
        };
    }
    t.replace(',', "").parse::<f64>().ok()
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

fn now() -> DateTime {
    DateTime::now_utc()
}

fn date_out_of_range() -> EvalError {
    EvalError::out_of_range(
        "The added or subtracted value results in an un-representable DateTime.",
    )
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    // Falls back to the clock if the OS has no entropy to give.
    if getrandom::fill(&mut b).is_err() {
        return now().ticks as u64 | 1;
    }
    u64::from_le_bytes(b) | 1
}

pub fn static_get(_it: &mut Interp, ty: &str, name: &str) -> EResult<Value> {
    if let Some((t, members)) = ENUMS.iter().find(|(t, _)| *t == ty) {
        if let Some(m) = members.iter().find(|m| **m == name) {
            return Ok(if *t == "StringComparer" {
                Value::Native(Arc::new(Native::StringComparer(m)))
            } else {
                Value::Enum(t, m)
            });
        }
    }
    let v = match (ty, name) {
        ("Int32", "MaxValue") => Value::Int(i32::MAX as i64),
        ("Int32", "MinValue") => Value::Int(i32::MIN as i64),
        ("Int64", "MaxValue") => Value::Int(i64::MAX),
        ("Int64", "MinValue") => Value::Int(i64::MIN),
        ("Double", "MaxValue") => Value::Float(f64::MAX),
        ("Double", "MinValue") => Value::Float(f64::MIN),
        ("Boolean", "TrueString") => Value::str("True"),
        ("Boolean", "FalseString") => Value::str("False"),
        ("Math", "PI") => Value::Float(std::f64::consts::PI),
        ("Math", "E") => Value::Float(std::f64::consts::E),
        ("Encoding", "UTF8" | "Default") => Value::Native(Arc::new(Native::Encoding("utf-8"))),
        ("Encoding", "ASCII") => Value::Native(Arc::new(Native::Encoding("us-ascii"))),
        ("Encoding", "Unicode") => Value::Native(Arc::new(Native::Encoding("utf-16"))),
        ("Guid", "Empty") => Value::Guid(0),
        ("DateTime", "UtcNow" | "Now") => Value::DateTime(now()),
        ("DateTime", "Today") => Value::DateTime(now().date()),
        ("DateTime", "MinValue") => Value::DateTime(DateTime {
            ticks: 0,
            kind: Kind::Unspecified,
        }),
        ("DateTime", "MaxValue") => Value::DateTime(DateTime {
            ticks: time::MAX_TICKS,
            kind: Kind::Unspecified,
        }),
        ("DateTime", "UnixEpoch") => Value::DateTime(DateTime {
            ticks: time::UNIX_EPOCH_TICKS,
            kind: Kind::Utc,
        }),
        ("DateTimeOffset", "UtcNow" | "Now") => Value::DateTimeOffset(now(), 0),
        ("DateTimeOffset", "MinValue") => Value::DateTimeOffset(
            DateTime {
                ticks: 0,
                kind: Kind::Utc,
            },
            0,
        ),
        ("DateTimeOffset", "MaxValue") => Value::DateTimeOffset(
            DateTime {
                ticks: time::MAX_TICKS,
                kind: Kind::Utc,
            },
            0,
        ),
        ("DateTimeOffset", "UnixEpoch") => Value::DateTimeOffset(
            DateTime {
                ticks: time::UNIX_EPOCH_TICKS,
                kind: Kind::Utc,
            },
            0,
        ),
        ("TimeSpan", "Zero") => Value::TimeSpan(TimeSpan(0)),
        ("TimeSpan", "MaxValue") => Value::TimeSpan(TimeSpan(i64::MAX)),
        ("TimeSpan", "MinValue") => Value::TimeSpan(TimeSpan(i64::MIN)),
        ("TimeSpan", "TicksPerSecond") => Value::Int(TICKS_PER_SECOND),
        ("TimeSpan", "TicksPerMillisecond") => Value::Int(10_000),
        ("TimeSpan", "TicksPerDay") => Value::Int(TICKS_PER_DAY),
        ("BitConverter", "IsLittleEndian") => Value::Bool(true),
        ("Array", "Empty") => Value::new_array(Vec::new()),
        _ => {
            return Err(EvalError::invalid_op(format!(
                "{ty} has no static property '{name}'"
            )))
        }
    };
    Ok(v)
}

fn to_timespan_unit(v: &Value, unit: i64) -> EResult<Value> {
    let x = to_f64(v)?;
    let ticks = (x * unit as f64).round();
    if !ticks.is_finite() || ticks.abs() > i64::MAX as f64 {
        return Err(EvalError::new(
            "OverflowException",
            "TimeSpan overflowed because the duration is too long.",
        ));
    }
    Ok(Value::TimeSpan(TimeSpan(ticks as i64)))
}

fn date_parse(s: &str) -> EResult<(DateTime, Option<i32>)> {
    DateTime::parse(s).ok_or_else(|| {
        EvalError::format(format!(
            "String '{s}' was not recognized as a valid DateTime."
        ))
    })
}

fn round_half_even(x: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    let y = x * m;
    let r = y.round();
    let r = if (y - y.trunc()).abs() == 0.5 {
        // Banker's rounding: to the even neighbour.
        2.0 * (y / 2.0).round()
    } else {
        r
    };
    r / m
}

fn regex_of(pattern: &str, opts: Option<&Value>) -> EResult<regex::Regex> {
    natives::build_regex(pattern, opts)
}

use super::natives;

pub fn call_static(
    it: &mut Interp,
    ty: &str,
    name: &str,
    _targs: &[TypeRef],
    args: &mut [Value],
) -> EResult<Value> {
    let a0 = arg(args, 0).clone();
    let a1 = arg(args, 1).clone();
    let v = match (ty, name) {
        ("Int32" | "Int64" | "Int16" | "UInt32" | "UInt64" | "Byte", "Parse") => {
            let s = req_str(&a0, "s")?;
            Value::Int(parse_int(&s).ok_or_else(invalid_format)?)
        }
        ("Double" | "Single" | "Decimal", "Parse") => {
            let s = req_str(&a0, "s")?;
            Value::Float(parse_float(&s).ok_or_else(invalid_format)?)
        }
        ("Boolean", "Parse") => {
            let s = req_str(&a0, "value")?;
            Value::Bool(parse_bool(&s).ok_or_else(|| {
                EvalError::format(format!(
                    "String '{s}' was not recognized as a valid Boolean."
                ))
            })?)
        }
        (_, "TryParse") => {
            let s = opt_str(&a0).ok().flatten().unwrap_or_default();
            let parsed = match ty {
                "Double" | "Single" | "Decimal" => parse_float(&s).map(Value::Float),
                "Boolean" => parse_bool(&s).map(Value::Bool),
                "Guid" => parse_guid(&s).map(Value::Guid),
                "DateTime" => DateTime::parse(&s).map(|(d, _)| Value::DateTime(d)),
                "DateTimeOffset" => {
                    DateTime::parse(&s).map(|(d, o)| Value::DateTimeOffset(d, o.unwrap_or(0)))
                }
                "TimeSpan" => TimeSpan::parse(&s).map(Value::TimeSpan),
                _ => parse_int(&s).map(Value::Int),
            };
            let ok = parsed.is_some();
            let default = match ty {
                "Double" | "Single" | "Decimal" => Value::Float(0.0),
                "Boolean" => Value::Bool(false),
                "Guid" => Value::Guid(0),
                "DateTime" | "DateTimeOffset" | "TimeSpan" => Value::Null,
                _ => Value::Int(0),
            };
            if let Some(slot) = args.last_mut() {
                *slot = parsed.unwrap_or(default);
            }
            Value::Bool(ok)
        }
        ("Char", _) => {
            let c = match &a0 {
                Value::Char(c) => *c,
                Value::Str(s) if name == "Parse" => {
                    let mut cs = s.chars();
                    match (cs.next(), cs.next()) {
                        (Some(c), None) => c,
                        _ => {
                            return Err(EvalError::format(
                                "String must be exactly one character long.",
                            ))
                        }
                    }
                }
                Value::Str(s) => {
                    let i = to_i64(&a1)?;
                    s.chars()
                        .nth(i.max(0) as usize)
                        .ok_or_else(|| EvalError::out_of_range("index"))?
                }
                other => return Err(EvalError::invalid_cast(other.type_name(), "Char")),
            };
            match name {
                "IsDigit" => Value::Bool(c.is_ascii_digit()),
                "IsLetter" => Value::Bool(c.is_alphabetic()),
                "IsLetterOrDigit" => Value::Bool(c.is_alphanumeric()),
                "IsWhiteSpace" => Value::Bool(c.is_whitespace()),
                "IsUpper" => Value::Bool(c.is_uppercase()),
                "IsLower" => Value::Bool(c.is_lowercase()),
                "IsPunctuation" => Value::Bool(c.is_ascii_punctuation()),
                "ToUpper" | "ToUpperInvariant" => Value::Char(c.to_uppercase().next().unwrap_or(c)),
                "ToLower" | "ToLowerInvariant" => Value::Char(c.to_lowercase().next().unwrap_or(c)),
                _ => Value::Char(c),
            }
        }
        ("Math", _) => math(name, args)?,
        ("Convert", _) => convert(it, name, args)?,
        ("Encoding", "GetEncoding") => {
            let n = req_str(&a0, "name")?.to_ascii_lowercase();
            Value::Native(Arc::new(Native::Encoding(match n.as_str() {
                "utf-8" | "utf8" => "utf-8",
                "us-ascii" | "ascii" => "us-ascii",
                "iso-8859-1" | "latin1" => "iso-8859-1",
                _ => {
                    return Err(EvalError::argument(format!(
                        "'{n}' is not a supported encoding name."
                    )))
                }
            })))
        }
        ("Guid", "NewGuid") => {
            let mut b = [0u8; 16];
            getrandom::fill(&mut b)
                .map_err(|_| EvalError::invalid_op("no randomness available"))?;
            b[6] = (b[6] & 0x0f) | 0x40;
            b[8] = (b[8] & 0x3f) | 0x80;
            Value::Guid(u128::from_be_bytes(b))
        }
        ("Guid", "Parse") => {
            let s = req_str(&a0, "input")?;
            Value::Guid(
                parse_guid(&s).ok_or_else(|| {
                    EvalError::format(format!("Unrecognized Guid format: '{s}'."))
                })?,
            )
        }
        ("DateTime", "Parse") => Value::DateTime(date_parse(&req_str(&a0, "s")?)?.0),
        ("DateTime", "ParseExact") => {
            // Formats are matched loosely: the value must parse as one of
            // the supported forms.
            Value::DateTime(date_parse(&req_str(&a0, "s")?)?.0)
        }
        ("DateTime", "DaysInMonth") => {
            let (y, m) = (to_i64(&a0)?, to_i64(&a1)?);
            if !(1..=12).contains(&m) {
                return Err(EvalError::out_of_range("month"));
            }
            Value::Int(time::days_in_month(y, m))
        }
        ("DateTime", "IsLeapYear") => Value::Bool(time::is_leap(to_i64(&a0)?)),
        ("DateTime", "SpecifyKind") => match (&a0, &a1) {
            (Value::DateTime(d), Value::Enum(_, k)) => Value::DateTime(DateTime {
                ticks: d.ticks,
                kind: match *k {
                    "Utc" => Kind::Utc,
                    "Local" => Kind::Local,
                    _ => Kind::Unspecified,
                },
            }),
            _ => return Err(EvalError::argument("SpecifyKind(DateTime, DateTimeKind)")),
        },
        ("DateTime", "Compare") => {
            Value::Int(super::compare(&a0, &a1).map(|o| o as i64).unwrap_or(0))
        }
        ("DateTimeOffset", "Parse") => {
            let (d, o) = date_parse(&req_str(&a0, "input")?)?;
            Value::DateTimeOffset(d, o.unwrap_or(0))
        }
        ("DateTimeOffset", "FromUnixTimeSeconds") => Value::DateTimeOffset(
            DateTime::from_unix_seconds(to_i64(&a0)?).ok_or_else(date_out_of_range)?,
            0,
        ),
        ("DateTimeOffset", "FromUnixTimeMilliseconds") => {
            let ms = to_i64(&a0)?;
            let d = ms
                .checked_mul(10_000)
                .and_then(|t| t.checked_add(time::UNIX_EPOCH_TICKS))
                .and_then(|t| DateTime::from_ticks(t, Kind::Utc))
                .ok_or_else(date_out_of_range)?;
            Value::DateTimeOffset(d, 0)
        }
        ("TimeSpan", "FromDays") => to_timespan_unit(&a0, TICKS_PER_DAY)?,
        ("TimeSpan", "FromHours") => to_timespan_unit(&a0, 3600 * TICKS_PER_SECOND)?,
        ("TimeSpan", "FromMinutes") => to_timespan_unit(&a0, 60 * TICKS_PER_SECOND)?,
        ("TimeSpan", "FromSeconds") => to_timespan_unit(&a0, TICKS_PER_SECOND)?,
        ("TimeSpan", "FromMilliseconds") => to_timespan_unit(&a0, 10_000)?,
        ("TimeSpan", "FromTicks") => Value::TimeSpan(TimeSpan(to_i64(&a0)?)),
        ("TimeSpan", "Parse") => {
            let s = req_str(&a0, "input")?;
            Value::TimeSpan(TimeSpan::parse(&s).ok_or_else(|| {
                EvalError::format(format!(
                    "String '{s}' was not recognized as a valid TimeSpan."
                ))
            })?)
        }
        ("Uri", "EscapeDataString") => {
            let s = req_str(&a0, "stringToEscape")?;
            it.string(percent_encoding::utf8_percent_encode(&s, COMPONENT).to_string())?
        }
        ("Uri", "EscapeUriString") => {
            const URI_SET: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
                .add(b' ')
                .add(b'"')
                .add(b'<')
                .add(b'>')
                .add(b'`')
                .add(b'{')
                .add(b'}')
                .add(b'|')
                .add(b'\\')
                .add(b'^');
            let s = req_str(&a0, "stringToEscape")?;
            it.string(percent_encoding::utf8_percent_encode(&s, URI_SET).to_string())?
        }
        ("Uri", "UnescapeDataString") => {
            let s = req_str(&a0, "stringToUnescape")?;
            Value::str(
                percent_encoding::percent_decode_str(&s)
                    .decode_utf8_lossy()
                    .into_owned(),
            )
        }
        ("Uri", "IsWellFormedUriString") => {
            let s = opt_str(&a0)?.unwrap_or_default();
            let absolute = !matches!(&a1, Value::Enum(_, "Relative"));
            Value::Bool(if absolute {
                natives::parse_uri(&s).is_some()
            } else {
                !s.contains(' ')
            })
        }
        ("Uri", "TryCreate") => {
            let s = opt_str(&a0)?.unwrap_or_default();
            let u = natives::parse_uri(&s);
            let ok = u.is_some();
            if let Some(slot) = args.last_mut() {
                *slot = u
                    .map(|u| Value::Native(Arc::new(Native::Uri(u))))
                    .unwrap_or_default();
            }
            Value::Bool(ok)
        }
        ("WebUtility", "UrlEncode") => match opt_str(&a0)? {
            None => Value::Null,
            Some(s) => {
                const FORM: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
                    .remove(b'-')
                    .remove(b'.')
                    .remove(b'_')
                    .remove(b'!')
                    .remove(b'*')
                    .remove(b'(')
                    .remove(b')')
                    .remove(b' ');
                let enc = percent_encoding::utf8_percent_encode(&s, FORM)
                    .to_string()
                    .replace(' ', "+");
                it.string(enc)?
            }
        },
        ("WebUtility", "UrlDecode") => match opt_str(&a0)? {
            None => Value::Null,
            Some(s) => Value::str(
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned(),
            ),
        },
        ("WebUtility", "HtmlEncode") => match opt_str(&a0)? {
            None => Value::Null,
            Some(s) => {
                let mut out = String::with_capacity(s.len());
                for c in s.chars() {
                    match c {
                        '<' => out.push_str("&lt;"),
                        '>' => out.push_str("&gt;"),
                        '&' => out.push_str("&amp;"),
                        '"' => out.push_str("&quot;"),
                        '\'' => out.push_str("&#39;"),
                        c => out.push(c),
                    }
                }
                it.string(out)?
            }
        },
        ("WebUtility", "HtmlDecode") => match opt_str(&a0)? {
            None => Value::Null,
            Some(s) => Value::str(
                s.replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&quot;", "\"")
                    .replace("&#39;", "'")
                    .replace("&apos;", "'")
                    .replace("&amp;", "&"),
            ),
        },
        ("BitConverter", "ToString") => {
            let b = bytes_of(&a0)?;
            it.string(
                b.iter()
                    .map(|x| format!("{x:02X}"))
                    .collect::<Vec<_>>()
                    .join("-"),
            )?
        }
        ("BitConverter", "GetBytes") => {
            let b = match &a0 {
                Value::Int(i) => (*i as i32).to_le_bytes().to_vec(),
                Value::Float(f) => f.to_le_bytes().to_vec(),
                Value::Bool(b) => vec![*b as u8],
                other => return Err(EvalError::invalid_cast(other.type_name(), "Int32")),
            };
            bytes(it, b)?
        }
        ("BitConverter", "ToInt32" | "ToInt64") => {
            let b = bytes_of(&a0)?;
            let start = if args.len() > 1 {
                to_i64(&a1)?.max(0) as usize
            } else {
                0
            };
            let n = if name == "ToInt32" { 4 } else { 8 };
            let slice = b
                .get(start..start + n)
                .ok_or_else(|| EvalError::argument("Destination array is not long enough."))?;
            let mut buf = [0u8; 8];
            buf[..n].copy_from_slice(slice);
            Value::Int(if n == 4 {
                i32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as i64
            } else {
                i64::from_le_bytes(buf)
            })
        }
        ("Regex", _) => {
            let input = req_str(&a0, "input")?;
            let pattern = req_str(&a1, "pattern")?;
            match name {
                "Escape" => return it.string(regex::escape(&input)),
                "Unescape" => return it.string(natives::regex_unescape(&input)),
                _ => {}
            }
            let opts = match name {
                "Replace" => args.get(3),
                _ => args.get(2),
            };
            let re = regex_of(&pattern, opts)?;
            match name {
                "Replace" => {
                    let rep = arg(args, 2).clone();
                    natives::regex_replace(it, &re, &input, &rep)?
                }
                other => natives::regex_call(it, &re, other, &input)?,
            }
        }
        ("SHA1" | "SHA256" | "SHA384" | "SHA512", "Create") => {
            Value::Native(Arc::new(Native::Hash(natives::hash_kind(ty))))
        }
        ("SHA1" | "SHA256" | "SHA384" | "SHA512", "HashData") => {
            let data = bytes_of(&a0)?;
            bytes(it, natives::digest(natives::hash_kind(ty), &data))?
        }
        ("Array", "IndexOf") => {
            let items = super::iterate(it, &a0)?;
            Value::Int(
                items
                    .iter()
                    .position(|x| super::equals(x, &a1))
                    .map(|i| i as i64)
                    .unwrap_or(-1),
            )
        }
        ("Array", "Exists") => {
            let items = super::iterate(it, &a0)?;
            let f = match &a1 {
                Value::Lambda(c) => c.clone(),
                _ => return Err(EvalError::argument("a lambda was expected")),
            };
            let mut found = false;
            for x in items {
                if super::to_bool(&it.call_closure(&f, vec![x])?)? {
                    found = true;
                    break;
                }
            }
            Value::Bool(found)
        }
        ("Array", "Reverse") => {
            match &a0 {
                Value::List(items, _) => items.lock().reverse(),
                Value::Bytes(b) => b.lock().reverse(),
                _ => {}
            }
            Value::Null
        }
        ("Array", "Copy") => {
            // Array.Copy(src, dst, len) / (src, srcIndex, dst, dstIndex, len)
            let (src, si, dst, di, len) = match args.len() {
                3 => (a0.clone(), 0, a1.clone(), 0, to_i64(arg(args, 2))?),
                5 => (
                    a0.clone(),
                    to_i64(&a1)?,
                    arg(args, 2).clone(),
                    to_i64(arg(args, 3))?,
                    to_i64(arg(args, 4))?,
                ),
                _ => return Err(EvalError::argument("Array.Copy takes 3 or 5 arguments")),
            };
            let (si, di, len) = (si.max(0) as usize, di.max(0) as usize, len.max(0) as usize);
            match (&src, &dst) {
                (Value::Bytes(s), Value::Bytes(d)) => {
                    let from = s.lock().clone();
                    let mut to = d.lock();
                    if si + len > from.len() || di + len > to.len() {
                        return Err(EvalError::argument("Source array was not long enough."));
                    }
                    to[di..di + len].copy_from_slice(&from[si..si + len]);
                }
                (Value::List(s, _), Value::List(d, _)) => {
                    let from = s.lock().clone();
                    let mut to = d.lock();
                    if si + len > from.len() || di + len > to.len() {
                        return Err(EvalError::argument("Source array was not long enough."));
                    }
                    to[di..di + len].clone_from_slice(&from[si..si + len]);
                }
                _ => return Err(EvalError::argument("Array.Copy needs two arrays")),
            }
            Value::Null
        }
        _ => {
            return Err(EvalError::invalid_op(format!(
                "{ty} has no static method '{name}'"
            )))
        }
    };
    Ok(v)
}

fn math(name: &str, args: &[Value]) -> EResult<Value> {
    let a0 = arg(args, 0);
    let a1 = arg(args, 1);
    let ints = args.iter().all(|a| matches!(a, Value::Int(_)));
    Ok(match name {
        "Abs" if ints => Value::Int(to_i64(a0)?.wrapping_abs()),
        "Abs" => Value::Float(to_f64(a0)?.abs()),
        "Max" if ints => Value::Int(to_i64(a0)?.max(to_i64(a1)?)),
        "Max" => Value::Float(to_f64(a0)?.max(to_f64(a1)?)),
        "Min" if ints => Value::Int(to_i64(a0)?.min(to_i64(a1)?)),
        "Min" => Value::Float(to_f64(a0)?.min(to_f64(a1)?)),
        "Clamp" if ints => {
            Value::Int(to_i64(a0)?.clamp(to_i64(a1)?, to_i64(arg(args, 2))?.max(to_i64(a1)?)))
        }
        "Clamp" => Value::Float(to_f64(a0)?.max(to_f64(a1)?).min(to_f64(arg(args, 2))?)),
        "Floor" => Value::Float(to_f64(a0)?.floor()),
        "Ceiling" => Value::Float(to_f64(a0)?.ceil()),
        "Truncate" => Value::Float(to_f64(a0)?.trunc()),
        "Round" => {
            let x = to_f64(a0)?;
            let (digits, away) = match (a1, arg(args, 2)) {
                (Value::Int(d), Value::Enum(_, m)) => (*d as i32, *m == "AwayFromZero"),
                (Value::Int(d), _) => (*d as i32, false),
                (Value::Enum(_, m), _) => (0, *m == "AwayFromZero"),
                _ => (0, false),
            };
            if away {
                let m = 10f64.powi(digits);
                Value::Float((x * m).round() / m)
            } else {
                Value::Float(round_half_even(x, digits))
            }
        }
        "Pow" => Value::Float(to_f64(a0)?.powf(to_f64(a1)?)),
        "Sqrt" => Value::Float(to_f64(a0)?.sqrt()),
        "Log" if args.len() == 2 => Value::Float(to_f64(a0)?.log(to_f64(a1)?)),
        "Log" => Value::Float(to_f64(a0)?.ln()),
        "Log10" => Value::Float(to_f64(a0)?.log10()),
        "Log2" => Value::Float(to_f64(a0)?.log2()),
        "Exp" => Value::Float(to_f64(a0)?.exp()),
        "Sign" => Value::Int({
            let x = to_f64(a0)?;
            if x > 0.0 {
                1
            } else if x < 0.0 {
                -1
            } else {
                0
            }
        }),
        _ => {
            return Err(EvalError::invalid_op(format!(
                "Math has no method '{name}'"
            )))
        }
    })
}

fn convert(it: &mut Interp, name: &str, args: &[Value]) -> EResult<Value> {
    let a0 = arg(args, 0);
    Ok(match name {
        "ToBase64String" => {
            let b = bytes_of(a0)?;
            it.string(base64::engine::general_purpose::STANDARD.encode(b))?
        }
        "FromBase64String" => {
            let s = req_str(a0, "s")?;
            let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
            let b = base64::engine::general_purpose::STANDARD
                .decode(clean.as_bytes())
                .map_err(|_| {
                    EvalError::format(
                        "The input is not a valid Base-64 string as it contains a non-base 64 character, more than two padding characters, or an illegal character among the padding characters.",
                    )
                })?;
            bytes(it, b)?
        }
        "ToHexString" => {
            let b = bytes_of(a0)?;
            it.string(hex::encode_upper(b))?
        }
        "FromHexString" => {
            let s = req_str(a0, "s")?;
            bytes(
                it,
                hex::decode(s.as_bytes()).map_err(|_| {
                    EvalError::format(
                        "The input is not a valid hex string as it contains a non-hex character.",
                    )
                })?,
            )?
        }
        "ToInt32" | "ToInt64" | "ToInt16" | "ToByte" => match a0 {
            Value::Null => Value::Int(0),
            Value::Str(s) => {
                if let Some(Value::Int(base)) = args.get(1) {
                    let t = s.trim().trim_start_matches("0x").trim_start_matches("0X");
                    Value::Int(i64::from_str_radix(t, *base as u32).map_err(|_| invalid_format())?)
                } else {
                    Value::Int(parse_int(s).ok_or_else(invalid_format)?)
                }
            }
            Value::Float(f) => Value::Int(round_half_even(*f, 0) as i64),
            Value::Bool(b) => Value::Int(*b as i64),
            other => Value::Int(to_i64(other)?),
        },
        "ToDouble" | "ToDecimal" | "ToSingle" => match a0 {
            Value::Null => Value::Float(0.0),
            Value::Str(s) => Value::Float(parse_float(s).ok_or_else(invalid_format)?),
            Value::Bool(b) => Value::Float(*b as i64 as f64),
            other => Value::Float(to_f64(other)?),
        },
        "ToBoolean" => match a0 {
            Value::Null => Value::Bool(false),
            Value::Str(s) => Value::Bool(parse_bool(s).ok_or_else(|| {
                EvalError::format(format!(
                    "String '{s}' was not recognized as a valid Boolean."
                ))
            })?),
            Value::Int(i) => Value::Bool(*i != 0),
            Value::Float(f) => Value::Bool(*f != 0.0),
            other => Value::Bool(super::to_bool(other)?),
        },
        "ToString" => match args.get(1) {
            Some(Value::Int(base)) => {
                let i = to_i64(a0)?;
                Value::str(match base {
                    2 => format!("{i:b}"),
                    8 => format!("{i:o}"),
                    16 => format!("{i:x}"),
                    _ => i.to_string(),
                })
            }
            _ => Value::str(a0.to_display()),
        },
        "ToDateTime" => match a0 {
            Value::DateTime(_) => a0.clone(),
            other => Value::DateTime(date_parse(&req_str(other, "value")?)?.0),
        },
        "ToChar" => Value::Char(char::from_u32(to_i64(a0)? as u32).ok_or_else(|| {
            EvalError::new(
                "OverflowException",
                "Value was either too large or too small for a character.",
            )
        })?),
        _ => {
            return Err(EvalError::invalid_op(format!(
                "Convert has no method '{name}'"
            )))
        }
    })
}

/// `new T(args)` for the types not handled elsewhere.
pub fn construct(it: &mut Interp, ty: &str, args: &[Value]) -> EResult<Value> {
    let a0 = arg(args, 0);
    Ok(match ty {
        "Random" => {
            let seed = match a0 {
                Value::Int(s) => (*s as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
                _ => random_u64(),
            };
            Value::Native(Arc::new(Native::Random(Shared::new(seed))))
        }
        "Regex" => {
            let p = req_str(a0, "pattern")?;
            Value::Native(Arc::new(Native::Regex(Arc::new(regex_of(
                &p,
                args.get(1),
            )?))))
        }
        "Uri" => {
            let s = req_str(a0, "uriString")?;
            let s = match args.get(1) {
                Some(rel) => {
                    let base = s.trim_end_matches('/');
                    let rel = req_str(rel, "relativeUri")?;
                    format!("{base}/{}", rel.trim_start_matches('/'))
                }
                None => s,
            };
            Value::Native(Arc::new(Native::Uri(natives::parse_uri(&s).ok_or_else(
                || {
                    EvalError::new(
                        "UriFormatException",
                        "Invalid URI: The format of the URI could not be determined.",
                    )
                },
            )?)))
        }
        "Guid" => {
            match a0 {
                Value::Str(s) => Value::Guid(parse_guid(s).ok_or_else(|| {
                    EvalError::format(format!("Unrecognized Guid format: '{s}'."))
                })?),
                Value::Null => Value::Guid(0),
                Value::Bytes(b) => {
                    // .NET's layout: the first three fields little-endian.
                    let b = b.lock().clone();
                    if b.len() != 16 {
                        return Err(EvalError::argument(
                            "Byte array for Guid must be exactly 16 bytes long. (Parameter 'b')",
                        ));
                    }
                    let mut be = [0u8; 16];
                    be[..8].copy_from_slice(&[b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6]]);
                    be[8..].copy_from_slice(&b[8..]);
                    Value::Guid(u128::from_be_bytes(be))
                }
                _ => {
                    return Err(EvalError::argument(
                        "new Guid(...) expects a string or 16 bytes",
                    ))
                }
            }
        }
        "DateTime" => {
            let n: Vec<i64> = args
                .iter()
                .filter(|a| matches!(a, Value::Int(_)))
                .map(to_i64)
                .collect::<EResult<_>>()?;
            let kind = match args.last() {
                Some(Value::Enum(_, "Utc")) => Kind::Utc,
                Some(Value::Enum(_, "Local")) => Kind::Local,
                _ => Kind::Unspecified,
            };
            let d = match n.as_slice() {
                [ticks] => DateTime::from_ticks(*ticks, kind),
                [y, m, d] => DateTime::from_parts(*y, *m, *d, 0, 0, 0, 0, kind),
                [y, m, d, h, mi, s] => DateTime::from_parts(*y, *m, *d, *h, *mi, *s, 0, kind),
                [y, m, d, h, mi, s, ms] => {
                    DateTime::from_parts(*y, *m, *d, *h, *mi, *s, ms * 10_000, kind)
                }
                _ => return Err(EvalError::argument("new DateTime(...) takes (ticks), (y, m, d), (y, m, d, h, m, s) or (y, m, d, h, m, s, ms)")),
            };
            Value::DateTime(d.ok_or_else(|| {
                EvalError::out_of_range(
                    "Year, Month, and Day parameters describe an un-representable DateTime.",
                )
            })?)
        }
        "DateTimeOffset" => match (a0, arg(args, 1)) {
            (Value::DateTime(d), Value::TimeSpan(o)) => {
                let mins = (o.0 / (60 * TICKS_PER_SECOND)) as i32;
                Value::DateTimeOffset(d.add_ticks(-o.0).ok_or_else(date_out_of_range)?, mins)
            }
            (Value::DateTime(d), _) => Value::DateTimeOffset(*d, 0),
            _ => {
                return Err(EvalError::argument(
                    "new DateTimeOffset(DateTime[, TimeSpan])",
                ))
            }
        },
        "TimeSpan" => {
            let n: Vec<i64> = args.iter().map(to_i64).collect::<EResult<_>>()?;
            let ticks = match n.as_slice() {
                [t] => *t,
                [h, m, s] => (h * 3600 + m * 60 + s) * TICKS_PER_SECOND,
                [d, h, m, s] => d * TICKS_PER_DAY + (h * 3600 + m * 60 + s) * TICKS_PER_SECOND,
                [d, h, m, s, ms] => {
                    d * TICKS_PER_DAY + (h * 3600 + m * 60 + s) * TICKS_PER_SECOND + ms * 10_000
                }
                _ => {
                    return Err(EvalError::argument(
                        "new TimeSpan(...) takes 1, 3, 4 or 5 numbers",
                    ))
                }
            };
            Value::TimeSpan(TimeSpan(ticks))
        }
        "Exception" => Value::Native(Arc::new(Native::Exception(
            "Exception".into(),
            opt_str(a0)?
                .unwrap_or_else(|| "Exception of type 'System.Exception' was thrown.".into()),
        ))),
        "HMACSHA1" | "HMACSHA256" | "HMACSHA384" | "HMACSHA512" => {
            let key = match a0 {
                Value::Null => Vec::new(),
                other => bytes_of(other)?,
            };
            Value::Native(Arc::new(Native::Hmac(
                natives::hash_kind(ty),
                Shared::new(key),
            )))
        }
        "Object" => Value::Dict(Shared::new(Vec::new())),
        other => {
            let _ = it;
            return Err(EvalError::invalid_op(format!(
                "new {other}(...) is not allowed"
            )));
        }
    })
}

/// Properties of value types (dates, spans, nullables).
pub fn get(v: &Value, name: &str) -> EResult<Value> {
    // Nullable<T> members on value types.
    match name {
        "HasValue" => return Ok(Value::Bool(!v.is_null())),
        "Value" => return Ok(v.clone()),
        _ => {}
    }
    let d = match v {
        Value::DateTime(d) => Some((*d, None)),
        Value::DateTimeOffset(d, o) => Some((*d, Some(*o))),
        _ => None,
    };
    if let Some((d, off)) = d {
        // DateTimeOffset fields are wall-clock at its offset.
        let local = match off {
            Some(o) => DateTime {
                ticks: d.ticks + o as i64 * 60 * TICKS_PER_SECOND,
                kind: Kind::Unspecified,
            },
            None => d,
        };
        return Ok(match name {
            "Year" => Value::Int(local.year()),
            "Month" => Value::Int(local.month()),
            "Day" => Value::Int(local.day()),
            "Hour" => Value::Int(local.hour()),
            "Minute" => Value::Int(local.minute()),
            "Second" => Value::Int(local.second()),
            "Millisecond" => Value::Int(local.millisecond()),
            "Ticks" => Value::Int(local.ticks),
            "DayOfWeek" => Value::Enum("DayOfWeek", time::DAYS[local.day_of_week() as usize]),
            "DayOfYear" => Value::Int(local.day_of_year()),
            "Date" => match off {
                Some(o) => Value::DateTimeOffset(
                    local
                        .date()
                        .add_ticks(-(o as i64) * 60 * TICKS_PER_SECOND)
                        .unwrap_or(d),
                    o,
                ),
                None => Value::DateTime(d.date()),
            },
            "TimeOfDay" => Value::TimeSpan(local.time_of_day_span()),
            "Kind" => Value::Enum(
                "DateTimeKind",
                match d.kind {
                    Kind::Utc => "Utc",
                    Kind::Local => "Local",
                    Kind::Unspecified => "Unspecified",
                },
            ),
            "UtcDateTime" => Value::DateTime(DateTime {
                ticks: d.ticks,
                kind: Kind::Utc,
            }),
            "DateTime" | "LocalDateTime" => Value::DateTime(DateTime {
                ticks: local.ticks,
                kind: Kind::Unspecified,
            }),
            "Offset" => Value::TimeSpan(TimeSpan(off.unwrap_or(0) as i64 * 60 * TICKS_PER_SECOND)),
            _ => {
                return Err(EvalError::invalid_op(format!(
                    "{} has no property '{name}'",
                    v.type_name()
                )))
            }
        });
    }
    match (v, name) {
        (Value::TimeSpan(t), _) => {
            let t = t.0;
            Ok(match name {
                "TotalDays" => Value::Float(t as f64 / TICKS_PER_DAY as f64),
                "TotalHours" => Value::Float(t as f64 / (3600 * TICKS_PER_SECOND) as f64),
                "TotalMinutes" => Value::Float(t as f64 / (60 * TICKS_PER_SECOND) as f64),
                "TotalSeconds" => Value::Float(t as f64 / TICKS_PER_SECOND as f64),
                "TotalMilliseconds" => Value::Float(t as f64 / 10_000.0),
                "Days" => Value::Int(t / TICKS_PER_DAY),
                "Hours" => Value::Int(t / (3600 * TICKS_PER_SECOND) % 24),
                "Minutes" => Value::Int(t / (60 * TICKS_PER_SECOND) % 60),
                "Seconds" => Value::Int(t / TICKS_PER_SECOND % 60),
                "Milliseconds" => Value::Int(t / 10_000 % 1000),
                "Ticks" => Value::Int(t),
                _ => {
                    return Err(EvalError::invalid_op(format!(
                        "TimeSpan has no property '{name}'"
                    )))
                }
            })
        }
        (_, "Length") => Err(EvalError::invalid_op(format!(
            "{} has no property 'Length'",
            v.type_name()
        ))),
        _ => Err(EvalError::invalid_op(format!(
            "{} has no property '{name}'",
            v.type_name()
        ))),
    }
}

fn add_to_date(d: DateTime, name: &str, x: &Value) -> EResult<DateTime> {
    let r = match name {
        "AddYears" => d.add_months(to_i64(x)?.saturating_mul(12)),
        "AddMonths" => d.add_months(to_i64(x)?),
        "AddTicks" => d.add_ticks(to_i64(x)?),
        _ => {
            let unit = match name {
                "AddDays" => TICKS_PER_DAY as f64,
                "AddHours" => 3600.0 * TICKS_PER_SECOND as f64,
                "AddMinutes" => 60.0 * TICKS_PER_SECOND as f64,
                "AddSeconds" => TICKS_PER_SECOND as f64,
                _ => 10_000.0,
            };
            let delta = (to_f64(x)? * unit).round();
            if !delta.is_finite() || delta.abs() > i64::MAX as f64 {
                None
            } else {
                d.add_ticks(delta as i64)
            }
        }
    };
    r.ok_or_else(date_out_of_range)
}

/// Methods of value types (dates, spans, numbers, Guid, bool, char).
pub fn call(_it: &mut Interp, v: &Value, name: &str, args: &mut [Value]) -> EResult<Value> {
    let a0 = arg(args, 0).clone();
    match (v, name) {
        (Value::DateTime(d), n) if n.starts_with("Add") && n != "Add" => {
            Ok(Value::DateTime(add_to_date(*d, n, &a0)?))
        }
        (Value::DateTimeOffset(d, o), n) if n.starts_with("Add") && n != "Add" => {
            Ok(Value::DateTimeOffset(add_to_date(*d, n, &a0)?, *o))
        }
        (Value::DateTime(_) | Value::DateTimeOffset(..) | Value::TimeSpan(_), "Add") => {
            super::arith("+", v, &a0)
        }
        (Value::DateTime(_) | Value::DateTimeOffset(..) | Value::TimeSpan(_), "Subtract") => {
            super::arith("-", v, &a0)
        }
        (Value::DateTime(d), "ToUniversalTime" | "ToLocalTime") => Ok(Value::DateTime(DateTime {
            ticks: d.ticks,
            kind: if name == "ToUniversalTime" {
                Kind::Utc
            } else {
                Kind::Local
            },
        })),
        (Value::DateTimeOffset(d, _), "ToUniversalTime") => Ok(Value::DateTimeOffset(*d, 0)),
        (Value::DateTimeOffset(d, o), "ToLocalTime") => Ok(Value::DateTimeOffset(*d, *o)),
        (Value::DateTimeOffset(d, _), "ToUnixTimeSeconds") => Ok(Value::Int(
            (d.ticks - time::UNIX_EPOCH_TICKS).div_euclid(TICKS_PER_SECOND),
        )),
        (Value::DateTimeOffset(d, _), "ToUnixTimeMilliseconds") => Ok(Value::Int(d.unix_millis())),
        (Value::DateTime(d) | Value::DateTimeOffset(d, _), "ToFileTimeUtc") => {
            Ok(Value::Int(d.ticks - 504_911_232_000_000_000))
        }
        (Value::TimeSpan(t), "Duration") => Ok(Value::TimeSpan(TimeSpan(t.0.wrapping_abs()))),
        (Value::Guid(g), "ToByteArray") => {
            // .NET's mixed-endian layout: the first three fields little-endian.
            let b = g.to_be_bytes();
            let mut out = vec![b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6]];
            out.extend_from_slice(&b[8..]);
            Ok(Value::Bytes(Shared::new(out)))
        }
        (Value::TimeSpan(t), "Negate") => Ok(Value::TimeSpan(TimeSpan(-t.0))),
        (_, "CompareTo") => Ok(Value::Int(
            super::compare(v, &a0).map(|o| o as i64).unwrap_or(1),
        )),
        (_, "GetValueOrDefault") => Ok(if v.is_null() { a0 } else { v.clone() }),
        (_, "ToString") => match &a0 {
            Value::Null => Ok(Value::str(v.to_display())),
            f => {
                let f = req_str(f, "format")?;
                Ok(Value::str(super::format_value(v, &f)?))
            }
        },
        _ => Err(EvalError::invalid_op(format!(
            "{} has no method '{name}'",
            v.type_name()
        ))),
    }
}

/// Numeric `ToString(format)`: `N2`, `F3`, `D5`, `X`, `x4`, `E2`, `P1`,
/// `G`, `R`, and custom patterns of `0`, `#`, `.` and `,`.
pub fn format_number(v: &Value, format: &str) -> EResult<String> {
    let x = to_f64(v)?;
    let is_int = matches!(v, Value::Int(_));
    let mut chars = format.chars();
    let head = chars.next().unwrap_or('G');
    let prec: Option<usize> = {
        let rest: String = chars.collect();
        if rest.is_empty() {
            None
        } else if rest.chars().all(|c| c.is_ascii_digit()) {
            rest.parse().ok()
        } else {
            return Ok(custom_number(x, format));
        }
    };
    Ok(match head {
        'N' | 'n' => group(&format!("{:.*}", prec.unwrap_or(2), x)),
        'F' | 'f' => format!("{:.*}", prec.unwrap_or(2), x),
        'D' | 'd' if is_int => {
            let i = to_i64(v)?;
            let digits = format!("{}", i.unsigned_abs());
            let padded = format!("{digits:0>width$}", width = prec.unwrap_or(0));
            if i < 0 {
                format!("-{padded}")
            } else {
                padded
            }
        }
        'X' if is_int => format!("{:0width$X}", to_i64(v)?, width = prec.unwrap_or(0)),
        'x' if is_int => format!("{:0width$x}", to_i64(v)?, width = prec.unwrap_or(0)),
        'E' | 'e' => {
            let s = format!("{:.*e}", prec.unwrap_or(6), x);
            let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
            let e: i32 = e.parse().unwrap_or(0);
            let sign = if e < 0 { '-' } else { '+' };
            let mark = if head == 'E' { 'E' } else { 'e' };
            format!("{m}{mark}{sign}{:03}", e.abs())
        }
        'P' | 'p' => format!(
            "{} %",
            group(&format!("{:.*}", prec.unwrap_or(2), x * 100.0))
        ),
        'C' | 'c' => {
            let s = group(&format!("{:.*}", prec.unwrap_or(2), x.abs()));
            if x < 0.0 {
                format!("(${s})")
            } else {
                format!("${s}")
            }
        }
        'G' | 'g' | 'R' | 'r' => {
            if is_int {
                to_i64(v)?.to_string()
            } else {
                format_double(x)
            }
        }
        _ => custom_number(x, format),
    })
}

/// Inserts thousands separators into a plain decimal number.
fn group(s: &str) -> String {
    let (sign, s) = match s.strip_prefix('-') {
        Some(r) => ("-", r),
        None => ("", s),
    };
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    let mut out = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{out}.{f}"),
        None => format!("{sign}{out}"),
    }
}

fn custom_number(x: f64, format: &str) -> String {
    let (int_pat, frac_pat) = match format.split_once('.') {
        Some((i, f)) => (i, f),
        None => (format, ""),
    };
    let frac_max = frac_pat.chars().filter(|c| *c == '0' || *c == '#').count();
    let frac_min = frac_pat.chars().filter(|c| *c == '0').count();
    let int_min = int_pat.chars().filter(|c| *c == '0').count();
    let grouped = int_pat.contains(',');
    let s = format!("{:.*}", frac_max, x.abs());
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i.to_string(), f.to_string()),
        None => (s.clone(), String::new()),
    };
    let mut frac = frac;
    while frac.len() > frac_min && frac.ends_with('0') {
        frac.pop();
    }
    let mut int = if int == "0" && int_min == 0 {
        String::new()
    } else {
        int
    };
    while int.len() < int_min {
        int.insert(0, '0');
    }
    if grouped {
        int = group(&int);
    }
    let sign = if x < 0.0 && (int.chars().any(|c| c != '0' && c != ',') || !frac.is_empty()) {
        "-"
    } else {
        ""
    };
    let prefix: String = int_pat
        .chars()
        .take_while(|c| !matches!(c, '0' | '#' | ','))
        .collect();
    let suffix: String = frac_pat
        .chars()
        .skip_while(|c| matches!(c, '0' | '#'))
        .collect();
    if frac.is_empty() {
        format!("{prefix}{sign}{int}{suffix}")
    } else {
        format!("{prefix}{sign}{int}.{frac}{suffix}")
    }
}

/// `TimeSpan.ToString(format)`: `c`/`g` and custom `hh\:mm\:ss`.
pub fn format_timespan(t: TimeSpan, format: &str) -> String {
    match format {
        "" | "c" | "t" | "T" | "g" => t.to_string(),
        f => {
            let ticks = t.0.abs();
            let mut out = String::new();
            let chars: Vec<char> = f.chars().collect();
            let mut i = 0;
            while i < chars.len() {
                let c = chars[i];
                let mut n = 1;
                while i + n < chars.len() && chars[i + n] == c {
                    n += 1;
                }
                let val = match c {
                    'd' => Some(ticks / TICKS_PER_DAY),
                    'h' => Some(ticks / (3600 * TICKS_PER_SECOND) % 24),
                    'm' => Some(ticks / (60 * TICKS_PER_SECOND) % 60),
                    's' => Some(ticks / TICKS_PER_SECOND % 60),
                    'f' => {
                        let frac = format!("{:07}", ticks % TICKS_PER_SECOND);
                        out.push_str(&frac[..n.min(7)]);
                        i += n;
                        continue;
                    }
                    _ => None,
                };
                match (c, val) {
                    ('\\', _) => {
                        if let Some(next) = chars.get(i + 1) {
                            out.push(*next);
                        }
                        i += 2;
                        continue;
                    }
                    ('\'', _) => {
                        let mut j = i + 1;
                        while j < chars.len() && chars[j] != '\'' {
                            out.push(chars[j]);
                            j += 1;
                        }
                        i = j + 1;
                        continue;
                    }
                    (_, Some(v)) => out.push_str(&format!("{v:0width$}", width = n)),
                    (c, None) => {
                        for _ in 0..n {
                            out.push(c);
                        }
                    }
                }
                i += n;
            }
            out
        }
    }
}

/// Encodes with an `Encoding`.
pub fn encode(enc: &str, s: &str) -> Vec<u8> {
    match enc {
        "us-ascii" => s
            .chars()
            .map(|c| if c.is_ascii() { c as u8 } else { b'?' })
            .collect(),
        "iso-8859-1" => s
            .chars()
            .map(|c| if (c as u32) < 256 { c as u8 } else { b'?' })
            .collect(),
        "utf-16" => s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect(),
        _ => s.as_bytes().to_vec(),
    }
}

/// Decodes with an `Encoding`.
pub fn decode(enc: &str, b: &[u8]) -> String {
    match enc {
        "us-ascii" => b
            .iter()
            .map(|x| if *x < 128 { *x as char } else { '?' })
            .collect(),
        "iso-8859-1" => b.iter().map(|x| *x as char).collect(),
        "utf-16" => {
            let units: Vec<u16> = b
                .chunks(2)
                .map(|c| u16::from_le_bytes([c[0], *c.get(1).unwrap_or(&0)]))
                .collect();
            String::from_utf16_lossy(&units)
        }
        _ => String::from_utf8_lossy(b).into_owned(),
    }
}

/// Byte-array argument helper for other families.
pub fn arg_bytes(v: &Value) -> EResult<Vec<u8>> {
    bytes_of(v)
}
