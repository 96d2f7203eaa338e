//! ISO 8601 durations as APIM writes them in backends (`PT1M`, `PT30S`,
//! `P1DT2H`, `PT0.5S`): parsing to a `std::time::Duration`.
//! Years and months have no fixed length and are refused.

use std::time::Duration;

/// Parses `PnDTnHnMnS` (and `PnW`); each part optional, seconds may carry a
/// fraction. `None` when the text is not such a duration.
pub fn parse_iso8601(text: &str) -> Option<Duration> {
    let t = text.trim();
    let rest = t.strip_prefix('P').or_else(|| t.strip_prefix('p'))?;
    if rest.is_empty() {
        return None;
    }
    let (date, time) = match rest.find(['T', 't']) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let mut secs = 0f64;
    let mut any = false;
    let mut part = |s: &str, units: &[(char, f64)]| -> Option<()> {
        let mut num = String::new();
        let mut last = 0usize;
        for c in s.chars() {
            if c.is_ascii_digit() || c == '.' || c == ',' {
                num.push(if c == ',' { '.' } else { c });
                continue;
            }
            let pos = units.iter().position(|(u, _)| u.eq_ignore_ascii_case(&c))?;
            // Units appear in order, each at most once.
            if pos < last || num.is_empty() {
                return None;
            }
            last = pos + 1;
            let n: f64 = num.parse().ok()?;
            secs += n * units[pos].1;
            num.clear();
            any = true;
        }
        num.is_empty().then_some(())
    };
    part(date, &[('W', 604_800.0), ('D', 86_400.0)])?;
    if let Some(time) = time {
        if time.is_empty() {
            return None;
        }
        part(time, &[('H', 3600.0), ('M', 60.0), ('S', 1.0)])?;
    }
    if !any || !secs.is_finite() || secs > 1e10 {
        return None;
    }
    Some(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_durations() {
        assert_eq!(parse_iso8601("PT1M"), Some(Duration::from_secs(60)));
        assert_eq!(parse_iso8601("PT1S"), Some(Duration::from_secs(1)));
        assert_eq!(parse_iso8601("PT1H30M"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_iso8601("P1DT2H"), Some(Duration::from_secs(93_600)));
        assert_eq!(parse_iso8601("P1W"), Some(Duration::from_secs(604_800)));
        assert_eq!(parse_iso8601("PT0.5S"), Some(Duration::from_millis(500)));
        for bad in [
            "", "P", "PT", "1M", "PT1", "PTM", "P1M", "PT1S1M", "PT1M1M", "PTxS",
        ] {
            assert_eq!(parse_iso8601(bad), None, "{bad}");
        }
    }
}
