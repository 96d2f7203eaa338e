//! `DateTime`, `DateTimeOffset` and `TimeSpan`: ticks (100 ns) since
//! 0001-01-01, the proleptic Gregorian calendar, and .NET's standard and
//! custom format strings (invariant names, en-US default patterns).
//!
//! The gateway runs in UTC: `DateTime.Now` is `UtcNow` and `Local` kinds
//! format like `Utc`.

use std::fmt;

pub const TICKS_PER_SECOND: i64 = 10_000_000;
pub const TICKS_PER_DAY: i64 = 86_400 * TICKS_PER_SECOND;
/// Ticks from 0001-01-01 to 1970-01-01.
pub const UNIX_EPOCH_TICKS: i64 = 621_355_968_000_000_000;
/// `DateTime.MaxValue.Ticks`.
pub const MAX_TICKS: i64 = 3_155_378_975_999_999_999;

/// `DateTimeKind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Unspecified,
    Utc,
    Local,
}

/// A `DateTime`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime {
    pub ticks: i64,
    pub kind: Kind,
}

/// A `TimeSpan` in ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimeSpan(pub i64);

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
/// Day names, Sunday first (`DayOfWeek`).
pub const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Days since 0001-01-01 for a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    // Days since 1970-01-01, shifted to 0001-01-01.
    era * 146_097 + doe - 719_468 + 719_162
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days - 719_162 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

pub fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

pub fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl DateTime {
    pub fn from_ticks(ticks: i64, kind: Kind) -> Option<DateTime> {
        (0..=MAX_TICKS)
            .contains(&ticks)
            .then_some(DateTime { ticks, kind })
    }

    /// `new DateTime(y, m, d, h, min, s, ms)`.
    #[allow(clippy::too_many_arguments)]
    pub fn from_parts(
        y: i64,
        m: i64,
        d: i64,
        h: i64,
        min: i64,
        s: i64,
        frac_ticks: i64,
        kind: Kind,
    ) -> Option<DateTime> {
        if !(1..=9999).contains(&y)
            || !(1..=12).contains(&m)
            || d < 1
            || d > days_in_month(y, m)
            || !(0..24).contains(&h)
            || !(0..60).contains(&min)
            || !(0..60).contains(&s)
            || !(0..TICKS_PER_SECOND).contains(&frac_ticks)
        {
            return None;
        }
        let days = days_from_civil(y, m, d);
        let ticks =
            days * TICKS_PER_DAY + (h * 3600 + min * 60 + s) * TICKS_PER_SECOND + frac_ticks;
        DateTime::from_ticks(ticks, kind)
    }

    pub fn now_utc() -> DateTime {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        DateTime {
            ticks: UNIX_EPOCH_TICKS + (since.as_nanos() / 100) as i64,
            kind: Kind::Utc,
        }
    }

    pub fn from_unix_seconds(s: i64) -> Option<DateTime> {
        DateTime::from_ticks(
            s.checked_mul(TICKS_PER_SECOND)?
                .checked_add(UNIX_EPOCH_TICKS)?,
            Kind::Utc,
        )
    }

    pub fn unix_millis(&self) -> i64 {
        (self.ticks - UNIX_EPOCH_TICKS).div_euclid(10_000)
    }

    pub fn ymd(&self) -> (i64, i64, i64) {
        civil_from_days(self.ticks.div_euclid(TICKS_PER_DAY))
    }

    pub fn year(&self) -> i64 {
        self.ymd().0
    }
    pub fn month(&self) -> i64 {
        self.ymd().1
    }
    pub fn day(&self) -> i64 {
        self.ymd().2
    }
    fn time_of_day(&self) -> i64 {
        self.ticks.rem_euclid(TICKS_PER_DAY)
    }
    pub fn hour(&self) -> i64 {
        self.time_of_day() / (3600 * TICKS_PER_SECOND)
    }
    pub fn minute(&self) -> i64 {
        self.time_of_day() / (60 * TICKS_PER_SECOND) % 60
    }
    pub fn second(&self) -> i64 {
        self.time_of_day() / TICKS_PER_SECOND % 60
    }
    pub fn millisecond(&self) -> i64 {
        self.time_of_day() % TICKS_PER_SECOND / 10_000
    }
    /// 0 = Sunday.
    pub fn day_of_week(&self) -> i64 {
        // 0001-01-01 was a Monday.
        (self.ticks.div_euclid(TICKS_PER_DAY) + 1).rem_euclid(7)
    }
    pub fn day_of_year(&self) -> i64 {
        let (y, _, _) = self.ymd();
        self.ticks.div_euclid(TICKS_PER_DAY) - days_from_civil(y, 1, 1) + 1
    }
    pub fn date(&self) -> DateTime {
        DateTime {
            ticks: self.ticks - self.time_of_day(),
            kind: self.kind,
        }
    }
    pub fn time_of_day_span(&self) -> TimeSpan {
        TimeSpan(self.time_of_day())
    }

    pub fn add_ticks(&self, ticks: i64) -> Option<DateTime> {
        DateTime::from_ticks(self.ticks.checked_add(ticks)?, self.kind)
    }

    pub fn add_months(&self, months: i64) -> Option<DateTime> {
        let (y, m, d) = self.ymd();
        let total = y * 12 + (m - 1) + months;
        let (ny, nm) = (total.div_euclid(12), total.rem_euclid(12) + 1);
        if !(1..=9999).contains(&ny) {
            return None;
        }
        let nd = d.min(days_in_month(ny, nm));
        let ticks = days_from_civil(ny, nm, nd) * TICKS_PER_DAY + self.time_of_day();
        DateTime::from_ticks(ticks, self.kind)
    }

    /// `DateTime.ToString()` in en-US: `11/23/2026 2:30:00 PM`.
    pub fn format_default(&self) -> String {
        self.format("M/d/yyyy h:mm:ss tt")
    }

    /// `DateTimeOffset.ToString()`: `11/23/2026 2:30:00 PM +00:00`.
    pub fn format_offset_default(&self, offset_min: i32) -> String {
        let local = DateTime {
            ticks: self.ticks + offset_min as i64 * 60 * TICKS_PER_SECOND,
            kind: Kind::Unspecified,
        };
        format!(
            "{} {}",
            local.format_default(),
            offset_text(offset_min, true)
        )
    }

    /// `ToString(format)`: a standard format (one letter) or a custom one.
    pub fn format(&self, format: &str) -> String {
        self.format_with_offset(format, None)
    }

    /// Formats as a `DateTimeOffset` when `offset` is given (`K`/`zzz`
    /// print it; the wall-clock fields are already shifted by the caller).
    pub fn format_with_offset(&self, format: &str, offset: Option<i32>) -> String {
        let custom = match format {
            "" => return self.format_default(),
            "o" | "O" => {
                if offset.is_some() {
                    "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffzzz"
                } else {
                    "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK"
                }
            }
            "s" => "yyyy'-'MM'-'dd'T'HH':'mm':'ss",
            "u" => "yyyy'-'MM'-'dd HH':'mm':'ss'Z'",
            "r" | "R" => "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'",
            "d" => "M/d/yyyy",
            "D" => "dddd, MMMM d, yyyy",
            "f" => "dddd, MMMM d, yyyy h:mm tt",
            "F" => "dddd, MMMM d, yyyy h:mm:ss tt",
            "g" => "M/d/yyyy h:mm tt",
            "G" => "M/d/yyyy h:mm:ss tt",
            "t" => "h:mm tt",
            "T" => "h:mm:ss tt",
            "m" | "M" => "MMMM d",
            "y" | "Y" => "MMMM yyyy",
            other => other,
        };
        self.format_custom(custom, offset)
    }

    fn format_custom(&self, f: &str, offset: Option<i32>) -> String {
        let (y, mo, d) = self.ymd();
        let chars: Vec<char> = f.chars().collect();
        let mut out = String::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let mut n = 1;
            while i + n < chars.len() && chars[i + n] == c {
                n += 1;
            }
            match c {
                'y' => match n {
                    1 => out.push_str(&(y % 100).to_string()),
                    2 => out.push_str(&format!("{:02}", y % 100)),
                    _ => out.push_str(&format!("{:0width$}", y, width = n)),
                },
                'M' => match n {
                    1 => out.push_str(&mo.to_string()),
                    2 => out.push_str(&format!("{mo:02}")),
                    3 => out.push_str(&MONTHS[(mo - 1) as usize][..3]),
                    _ => out.push_str(MONTHS[(mo - 1) as usize]),
                },
                'd' => match n {
                    1 => out.push_str(&d.to_string()),
                    2 => out.push_str(&format!("{d:02}")),
                    3 => out.push_str(&DAYS[self.day_of_week() as usize][..3]),
                    _ => out.push_str(DAYS[self.day_of_week() as usize]),
                },
                'H' => out.push_str(&pad(self.hour(), n)),
                'h' => {
                    let h = self.hour() % 12;
                    out.push_str(&pad(if h == 0 { 12 } else { h }, n));
                }
                'm' => out.push_str(&pad(self.minute(), n)),
                's' => out.push_str(&pad(self.second(), n)),
                'f' | 'F' => {
                    let n = n.min(7);
                    let frac = self.time_of_day() % TICKS_PER_SECOND;
                    let digits = format!("{frac:07}");
                    let mut part = digits[..n].to_string();
                    if c == 'F' {
                        while part.ends_with('0') {
                            part.pop();
                        }
                        if part.is_empty() && out.ends_with('.') {
                            out.pop();
                        }
                    }
                    out.push_str(&part);
                }
                't' => {
                    let ampm = if self.hour() < 12 { "AM" } else { "PM" };
                    out.push_str(if n == 1 { &ampm[..1] } else { ampm });
                }
                'K' => match (offset, self.kind) {
                    (Some(o), _) => out.push_str(&offset_text(o, true)),
                    (None, Kind::Utc) | (None, Kind::Local) => out.push('Z'),
                    (None, Kind::Unspecified) => {}
                },
                'z' => {
                    let o = offset.unwrap_or(0);
                    match n {
                        1 => out.push_str(&format!("{:+}", o / 60)),
                        2 => {
                            let sign = if o < 0 { '-' } else { '+' };
                            out.push_str(&format!("{sign}{:02}", o.abs() / 60));
                        }
                        _ => out.push_str(&offset_text(o, true)),
                    }
                }
                '\'' | '"' => {
                    let mut j = i + 1;
                    while j < chars.len() && chars[j] != c {
                        out.push(chars[j]);
                        j += 1;
                    }
                    i = j + 1;
                    continue;
                }
                '\\' => {
                    if let Some(next) = chars.get(i + 1) {
                        out.push(*next);
                    }
                    i += 2;
                    continue;
                }
                ':' | '/' => {
                    out.push(c);
                    i += 1;
                    continue;
                }
                '%' => {
                    i += 1;
                    continue;
                }
                _ => {
                    for _ in 0..n {
                        out.push(c);
                    }
                }
            }
            i += n;
        }
        out
    }

    /// `DateTime.Parse`: ISO 8601 (`2026-11-23`, `2026-11-23T14:30:00.123Z`,
    /// with an offset → converted to UTC), RFC 1123 (`Mon, 23 Nov 2026
    /// 14:30:00 GMT`) and en-US `11/23/2026 2:30:00 PM`.
    pub fn parse(s: &str) -> Option<(DateTime, Option<i32>)> {
        let s = s.trim();
        parse_iso(s)
            .or_else(|| parse_rfc1123(s))
            .or_else(|| parse_us(s))
    }
}

fn pad(v: i64, n: usize) -> String {
    if n >= 2 {
        format!("{v:02}")
    } else {
        v.to_string()
    }
}

fn offset_text(minutes: i32, colon: bool) -> String {
    let sign = if minutes < 0 { '-' } else { '+' };
    let m = minutes.abs();
    if colon {
        format!("{sign}{:02}:{:02}", m / 60, m % 60)
    } else {
        format!("{sign}{:02}{:02}", m / 60, m % 60)
    }
}

fn num(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_iso(s: &str) -> Option<(DateTime, Option<i32>)> {
    let b = s.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, mo, d) = (num(&s[0..4])?, num(&s[5..7])?, num(&s[8..10])?);
    let rest = &s[10..];
    if rest.is_empty() {
        return Some((
            DateTime::from_parts(y, mo, d, 0, 0, 0, 0, Kind::Unspecified)?,
            None,
        ));
    }
    let rest = rest.strip_prefix(['T', ' '])?;
    if rest.len() < 5 || rest.as_bytes()[2] != b':' {
        return None;
    }
    let h = num(&rest[0..2])?;
    let mi = num(&rest[3..5])?;
    let mut rest = &rest[5..];
    let mut sec = 0;
    let mut frac = 0;
    if let Some(r) = rest.strip_prefix(':') {
        sec = num(r.get(0..2)?)?;
        rest = &r[2..];
        if let Some(r) = rest.strip_prefix('.') {
            let digits: String = r.chars().take_while(|c| c.is_ascii_digit()).collect();
            if digits.is_empty() {
                return None;
            }
            let mut t = digits.clone();
            t.truncate(7);
            while t.len() < 7 {
                t.push('0');
            }
            frac = num(&t)?;
            rest = &r[digits.len()..];
        }
    }
    let (kind, offset) = match rest {
        "" => (Kind::Unspecified, None),
        "Z" | "z" => (Kind::Utc, Some(0)),
        o => {
            let sign = match o.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let o = o[1..].replace(':', "");
            if o.len() != 4 {
                return None;
            }
            let mins = num(&o[0..2])? * 60 + num(&o[2..4])?;
            (Kind::Utc, Some((sign * mins) as i32))
        }
    };
    let local = DateTime::from_parts(y, mo, d, h, mi, sec, frac, kind)?;
    match offset {
        Some(o) if o != 0 => Some((
            local.add_ticks(-(o as i64) * 60 * TICKS_PER_SECOND)?,
            Some(o),
        )),
        _ => Some((local, offset)),
    }
}

fn month_index(name: &str) -> Option<i64> {
    MONTHS
        .iter()
        .position(|m| m[..3].eq_ignore_ascii_case(&name[..name.len().min(3)]) && name.len() >= 3)
        .map(|i| i as i64 + 1)
}

fn parse_rfc1123(s: &str) -> Option<(DateTime, Option<i32>)> {
    // "Mon, 23 Nov 2026 14:30:00 GMT"
    let s = s.split_once(", ").map(|(_, r)| r).unwrap_or(s);
    let parts: Vec<&str> = s.split_whitespace().collect();
    if parts.len() < 4 {
        return None;
    }
    let d = num(parts[0])?;
    let mo = month_index(parts[1])?;
    let y = num(parts[2])?;
    let t: Vec<&str> = parts[3].split(':').collect();
    if t.len() != 3 {
        return None;
    }
    let utc = matches!(parts.get(4), Some(&"GMT") | Some(&"UTC") | Some(&"Z"));
    let dt = DateTime::from_parts(
        y,
        mo,
        d,
        num(t[0])?,
        num(t[1])?,
        num(t[2])?,
        0,
        if utc { Kind::Utc } else { Kind::Unspecified },
    )?;
    Some((dt, utc.then_some(0)))
}

fn parse_us(s: &str) -> Option<(DateTime, Option<i32>)> {
    // "11/23/2026", "11/23/2026 2:30:00 PM", "11/23/2026 14:30"
    let mut parts = s.split_whitespace();
    let date: Vec<&str> = parts.next()?.split('/').collect();
    if date.len() != 3 {
        return None;
    }
    let (mo, d, y) = (num(date[0])?, num(date[1])?, num(date[2])?);
    let (mut h, mut mi, mut sec) = (0, 0, 0);
    if let Some(time) = parts.next() {
        let t: Vec<&str> = time.split(':').collect();
        if t.len() < 2 {
            return None;
        }
        h = num(t[0])?;
        mi = num(t[1])?;
        sec = t.get(2).map(|x| num(x)).unwrap_or(Some(0))?;
        match parts.next() {
            Some(ap) if ap.eq_ignore_ascii_case("PM") && h < 12 => h += 12,
            Some(ap) if ap.eq_ignore_ascii_case("AM") && h == 12 => h = 0,
            Some(ap) if ap.eq_ignore_ascii_case("AM") || ap.eq_ignore_ascii_case("PM") => {}
            Some(_) => return None,
            None => {}
        }
    }
    Some((
        DateTime::from_parts(y, mo, d, h, mi, sec, 0, Kind::Unspecified)?,
        None,
    ))
}

impl TimeSpan {
    pub fn total_seconds(&self) -> f64 {
        self.0 as f64 / TICKS_PER_SECOND as f64
    }

    /// `TimeSpan.Parse`: `[-][d.]hh:mm[:ss[.fffffff]]` or a whole number of days.
    pub fn parse(s: &str) -> Option<TimeSpan> {
        let s = s.trim();
        let (neg, s) = match s.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, s),
        };
        let (days, time) = match s.split_once(':') {
            None => (num(s)?, None),
            Some(_) => match s.split_once('.') {
                Some((d, t)) if !d.contains(':') => (num(d)?, Some(t)),
                _ => (0, Some(s)),
            },
        };
        let mut ticks = days * TICKS_PER_DAY;
        if let Some(t) = time {
            let (hms, frac) = match t.split_once('.') {
                Some((a, f)) => (a, Some(f)),
                None => (t, None),
            };
            let p: Vec<&str> = hms.split(':').collect();
            if p.len() < 2 || p.len() > 3 {
                return None;
            }
            let (h, m) = (num(p[0])?, num(p[1])?);
            let sec = p.get(2).map(|x| num(x)).unwrap_or(Some(0))?;
            if h > 23 || m > 59 || sec > 59 {
                return None;
            }
            ticks += (h * 3600 + m * 60 + sec) * TICKS_PER_SECOND;
            if let Some(f) = frac {
                let mut f = f.to_string();
                if f.len() > 7 || num(&f).is_none() {
                    return None;
                }
                while f.len() < 7 {
                    f.push('0');
                }
                ticks += num(&f)?;
            }
        }
        Some(TimeSpan(if neg { -ticks } else { ticks }))
    }
}

impl fmt::Display for TimeSpan {
    /// `[-][d.]hh:mm:ss[.fffffff]` (the "c" format).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0;
        if t < 0 {
            f.write_str("-")?;
        }
        let t = t.unsigned_abs() as i64;
        let days = t / TICKS_PER_DAY;
        let rem = t % TICKS_PER_DAY;
        if days > 0 {
            write!(f, "{days}.")?;
        }
        let secs = rem / TICKS_PER_SECOND;
        write!(
            f,
            "{:02}:{:02}:{:02}",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )?;
        let frac = rem % TICKS_PER_SECOND;
        if frac > 0 {
            write!(f, ".{frac:07}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(y: i64, m: i64, d: i64, h: i64, mi: i64, s: i64) -> DateTime {
        DateTime::from_parts(y, m, d, h, mi, s, 1_234_567, Kind::Utc).unwrap()
    }

    #[test]
    fn civil_round_trip_and_epoch() {
        let e = DateTime::from_parts(1970, 1, 1, 0, 0, 0, 0, Kind::Utc).unwrap();
        assert_eq!(e.ticks, UNIX_EPOCH_TICKS);
        for days in [0, 1, 59, 60, 365, 730_000, 2_000_000, 3_652_058] {
            let d = DateTime::from_ticks(days * TICKS_PER_DAY, Kind::Utc).unwrap();
            let (y, m, dd) = d.ymd();
            assert_eq!(days_from_civil(y, m, dd), days);
        }
        assert_eq!(dt(2026, 11, 23, 0, 0, 0).day_of_week(), 1, "a Monday");
    }

    #[test]
    fn formats_as_dotnet_does() {
        let d = dt(2026, 11, 23, 14, 5, 9);
        assert_eq!(d.format("o"), "2026-11-23T14:05:09.1234567Z");
        assert_eq!(d.format("yyyy-MM-ddTHH:mm:ssZ"), "2026-11-23T14:05:09Z");
        assert_eq!(d.format("R"), "Mon, 23 Nov 2026 14:05:09 GMT");
        assert_eq!(d.format("s"), "2026-11-23T14:05:09");
        assert_eq!(d.format("u"), "2026-11-23 14:05:09Z");
        assert_eq!(d.format_default(), "11/23/2026 2:05:09 PM");
        assert_eq!(d.format("dd/MM/yy hh:mm tt"), "23/11/26 02:05 PM");
        assert_eq!(d.format("yyyyMMdd'T'HHmmss.fff"), "20261123T140509.123");
        assert_eq!(d.format("D"), "Monday, November 23, 2026");
        assert_eq!(d.format("HH:mm:ss.FFF"), "14:05:09.123");
    }

    #[test]
    fn parses_common_forms() {
        let (d, o) = DateTime::parse("2026-11-23T14:05:09.5+02:00").unwrap();
        assert_eq!(o, Some(120));
        assert_eq!(d.hour(), 12);
        assert_eq!(d.millisecond(), 500);
        let (d, _) = DateTime::parse("Mon, 23 Nov 2026 14:05:09 GMT").unwrap();
        assert_eq!((d.year(), d.month(), d.day(), d.hour()), (2026, 11, 23, 14));
        let (d, _) = DateTime::parse("11/23/2026 2:05:09 PM").unwrap();
        assert_eq!(d.hour(), 14);
        assert!(DateTime::parse("2026-13-01").is_none());
        assert!(DateTime::parse("yesterday").is_none());
    }

    #[test]
    fn timespans() {
        assert_eq!(TimeSpan(90 * TICKS_PER_SECOND).to_string(), "00:01:30");
        assert_eq!(
            TimeSpan(TICKS_PER_DAY + 5 * TICKS_PER_SECOND + 1).to_string(),
            "1.00:00:05.0000001"
        );
        assert_eq!(
            TimeSpan::parse("1.02:03:04"),
            Some(TimeSpan(TICKS_PER_DAY + 7384 * TICKS_PER_SECOND))
        );
        assert_eq!(
            TimeSpan::parse("-00:00:01"),
            Some(TimeSpan(-TICKS_PER_SECOND))
        );
        assert_eq!(TimeSpan::parse("25:00"), None);
    }

    #[test]
    fn add_months_clamps_the_day() {
        let d = DateTime::from_parts(2024, 1, 31, 0, 0, 0, 0, Kind::Utc).unwrap();
        assert_eq!(d.add_months(1).unwrap().ymd(), (2024, 2, 29));
        assert_eq!(d.add_months(-13).unwrap().ymd(), (2022, 12, 31));
    }
}
