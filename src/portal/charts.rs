//! Server-side SVG charts for the Reports page: stacked bars and lines
//! over time buckets, with a y axis of "nice" ticks in readable units
//! (counts, ms, KB/MB, %), UTC time labels, a legend, a `<title>` and
//! `<desc>` for assistive technology (the page adds a data table as the
//! text alternative) and a `<title>` tooltip per bucket or point.
//!
//! Owns: the scaling ([`Scale`]), the unit formatting used by the page's
//! tiles and tables too ([`count`], [`count_short`], [`bytes`], [`ms`],
//! [`percent`]), the time labels and the SVG text. Every piece of text
//! placed in the SVG is XML-escaped here ([`esc`]); colours and fonts are
//! presentation attributes (the portal's CSP allows no inline styles).
//!
//! Pure functions of their input: no I/O, no clock.

use std::fmt::Write as _;

/// Width of every chart's view box.
pub const WIDTH: f64 = 560.0;
/// Height of every chart's view box.
pub const HEIGHT: f64 = 270.0;
const LEFT: f64 = 66.0;
const RIGHT: f64 = WIDTH - 14.0;
const TOP: f64 = 38.0;
const BOTTOM: f64 = HEIGHT - 48.0;
const FONT: &str = "system-ui, -apple-system, Segoe UI, Roboto, Arial, sans-serif";
const AXIS: &str = "#5b6275";
const GRID: &str = "#e5e8ef";

/// What a chart's values measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Calls (whole numbers).
    Count,
    /// Milliseconds.
    Millis,
    /// Bytes (KB = 1024 B).
    Bytes,
    /// Percent, 0–100.
    Percent,
}

/// A y axis from 0 to `max` in steps of `step` (`max` is a whole number of
/// steps), with the unit the tick labels use (`divisor`, e.g. 1024² for MB).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    pub max: f64,
    pub step: f64,
    pub unit: Unit,
    divisor: f64,
}

/// The "nice" number (1, 2 or 5 × 10ⁿ) at or above `raw` (> 0).
fn nice(raw: f64) -> f64 {
    let exp = raw.log10().floor();
    let base = 10f64.powf(exp);
    let f = raw / base;
    let n = if f <= 1.0 + 1e-9 {
        1.0
    } else if f <= 2.0 + 1e-9 {
        2.0
    } else if f <= 5.0 + 1e-9 {
        5.0
    } else {
        10.0
    };
    n * base
}

/// The byte unit (divisor, name) `v` is best shown in.
fn byte_unit(v: f64) -> (f64, &'static str) {
    const UNITS: [(f64, &str); 4] = [
        (1024.0 * 1024.0 * 1024.0, "GB"),
        (1024.0 * 1024.0, "MB"),
        (1024.0, "KB"),
        (1.0, "B"),
    ];
    UNITS
        .iter()
        .find(|(d, _)| v >= *d)
        .copied()
        .unwrap_or((1.0, "B"))
}

impl Scale {
    /// An axis holding `max_value` with about five ticks. Counts and bytes
    /// step by whole units; an all-zero (or negative/NaN) input gets the
    /// smallest axis of its unit (0–1 call, 0–1 ms, 0–1 B, 0–10 %).
    pub fn new(max_value: f64, unit: Unit) -> Scale {
        let v = if max_value.is_finite() && max_value > 0.0 {
            max_value
        } else {
            0.0
        };
        let (divisor, v) = match unit {
            Unit::Bytes => {
                let (d, _) = byte_unit(v);
                (d, v / d)
            }
            _ => (1.0, v),
        };
        let floor = match unit {
            Unit::Percent => 10.0,
            _ => 1.0,
        };
        let v = if v > 0.0 { v } else { floor };
        let mut step = nice(v / 5.0);
        if unit == Unit::Count || (unit == Unit::Bytes && divisor == 1.0) {
            step = step.max(1.0);
        }
        let mut n = (v / step - 1e-9).ceil().max(1.0);
        if unit == Unit::Percent && n * step > 100.0 {
            n = (100.0 / step).floor().max(1.0);
        }
        Scale {
            max: n * step * divisor,
            step: step * divisor,
            unit,
            divisor,
        }
    }

    /// The tick values, 0 to `max`.
    pub fn ticks(&self) -> Vec<f64> {
        let n = (self.max / self.step).round() as usize;
        (0..=n).map(|i| i as f64 * self.step).collect()
    }

    /// The label of tick `v`, in this axis's unit.
    pub fn label(&self, v: f64) -> String {
        match self.unit {
            Unit::Count => count_short(v),
            Unit::Millis => ms(v),
            Unit::Percent => format!("{}%", trim(v, 1)),
            Unit::Bytes => {
                if v == 0.0 {
                    return "0".into();
                }
                let name = match self.divisor as u64 {
                    1 => "B",
                    1024 => "KB",
                    1_048_576 => "MB",
                    _ => "GB",
                };
                format!("{} {name}", trim(v / self.divisor, 2))
            }
        }
    }

    /// The fraction (0–1) of the axis `v` reaches.
    pub fn frac(&self, v: f64) -> f64 {
        if self.max <= 0.0 || !v.is_finite() {
            return 0.0;
        }
        (v / self.max).clamp(0.0, 1.0)
    }
}

/// `v` with at most `decimals` decimals, trailing zeros dropped.
fn trim(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A count in full with thousands separators: `12,345`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A count for an axis: `950`, `1.5k`, `2M`.
pub fn count_short(v: f64) -> String {
    if v >= 1e9 {
        format!("{}G", trim(v / 1e9, 1))
    } else if v >= 1e6 {
        format!("{}M", trim(v / 1e6, 1))
    } else if v >= 1e3 {
        format!("{}k", trim(v / 1e3, 1))
    } else {
        trim(v, 1)
    }
}

/// Bytes in the largest unit under them: `512 B`, `1.5 KB`, `3.25 MB`.
pub fn bytes(n: u64) -> String {
    let v = n as f64;
    let (d, name) = byte_unit(v);
    if d == 1.0 {
        format!("{n} B")
    } else {
        format!("{} {name}", trim(v / d, 2))
    }
}

/// Milliseconds: `0`, `0.4 ms`, `12.5 ms`, `250 ms`, `1.5 s`.
pub fn ms(v: f64) -> String {
    if !v.is_finite() || v <= 0.0 {
        "0".into()
    } else if v < 10.0 {
        format!("{} ms", trim(v, 2))
    } else if v < 1000.0 {
        format!("{} ms", trim(v, 1))
    } else {
        format!("{} s", trim(v / 1000.0, 2))
    }
}

/// `part` of `total` as a percentage: `0%`, `12.5%`, `100%` (`—` with no
/// total).
pub fn percent(part: u64, total: u64) -> String {
    if total == 0 {
        return "—".into();
    }
    format!("{}%", trim(part as f64 * 100.0 / total as f64, 1))
}

/// XML-escapes text for element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The UTC date (`Nov 24`) and time (`06:00`) of `secs`.
pub fn utc_parts(secs: u64) -> (String, String) {
    let ts = crate::model::rfc3339(secs);
    let month = ts
        .get(5..7)
        .and_then(|m| m.parse::<usize>().ok())
        .and_then(|m| MONTHS.get(m.wrapping_sub(1)))
        .copied()
        .unwrap_or("?");
    let day = ts
        .get(8..10)
        .map(|d| d.trim_start_matches('0'))
        .unwrap_or("?");
    let time = ts.get(11..16).unwrap_or("?");
    (format!("{month} {day}"), time.to_string())
}

/// How a bucket starting at `secs` is named in tooltips and tables:
/// `Nov 24 06:00 UTC` (`Nov 24` for daily buckets).
pub fn bucket_name(secs: u64, interval_secs: u64) -> String {
    let (date, time) = utc_parts(secs);
    if interval_secs >= 86_400 {
        date
    } else {
        format!("{date} {time} UTC")
    }
}

/// Every how many buckets a time label goes (at most eight labels).
fn label_every(n: usize) -> usize {
    [1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60]
        .into_iter()
        .find(|k| n.div_ceil(*k) <= 8)
        .unwrap_or(n.div_ceil(8).max(1))
}

/// One data series: a label, its colour and a value per bucket (`None`:
/// nothing to show there, e.g. a latency without calls).
#[derive(Debug, Clone)]
pub struct Series {
    pub label: &'static str,
    pub color: &'static str,
    pub values: Vec<Option<f64>>,
}

/// What every chart needs: where it sits on the page and the buckets.
#[derive(Debug, Clone)]
pub struct Frame<'a> {
    /// Unique on the page: the SVG's ids are `{id}-title` and `{id}-desc`.
    pub id: &'a str,
    pub title: &'a str,
    /// A one-sentence summary for assistive technology.
    pub desc: String,
    /// Each bucket's start, seconds since the Unix epoch.
    pub times: &'a [u64],
    pub interval_secs: u64,
    pub unit: Unit,
    /// Shown across the plot when every value is zero or missing.
    pub empty_note: &'a str,
}

struct Plot {
    scale: Scale,
    slot: f64,
}

impl Plot {
    fn y(&self, v: f64) -> f64 {
        BOTTOM - self.scale.frac(v) * (BOTTOM - TOP)
    }

    fn x_center(&self, i: usize) -> f64 {
        LEFT + self.slot * (i as f64 + 0.5)
    }
}

fn px(v: f64) -> String {
    trim(v, 1)
}

fn open(out: &mut String, f: &Frame<'_>) {
    let id = esc(f.id);
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" id=\"{id}\" viewBox=\"0 0 {w} {h}\" \
         role=\"img\" aria-labelledby=\"{id}-title {id}-desc\" font-family=\"{FONT}\" font-size=\"13\">\
         <title id=\"{id}-title\">{title}</title><desc id=\"{id}-desc\">{desc}</desc>",
        w = px(WIDTH),
        h = px(HEIGHT),
        title = esc(f.title),
        desc = esc(&f.desc),
    );
}

/// Grid lines with the y labels, and the x axis with its time labels.
fn axes(out: &mut String, f: &Frame<'_>, plot: &Plot) {
    out.push_str("<g class=\"y-axis\">");
    for t in plot.scale.ticks() {
        let y = px(plot.y(t));
        let _ = write!(
            out,
            "<line x1=\"{l}\" x2=\"{r}\" y1=\"{y}\" y2=\"{y}\" stroke=\"{GRID}\" stroke-width=\"1\"/>\
             <text x=\"{tx}\" y=\"{y}\" dy=\"4\" text-anchor=\"end\" fill=\"{AXIS}\">{label}</text>",
            l = px(LEFT),
            r = px(RIGHT),
            tx = px(LEFT - 8.0),
            label = esc(&plot.scale.label(t)),
        );
    }
    out.push_str("</g><g class=\"x-axis\">");
    let _ = write!(
        out,
        "<line x1=\"{l}\" x2=\"{r}\" y1=\"{b}\" y2=\"{b}\" stroke=\"{AXIS}\" stroke-width=\"1\"/>",
        l = px(LEFT),
        r = px(RIGHT),
        b = px(BOTTOM),
    );
    let every = label_every(f.times.len());
    let interval = f.interval_secs.max(60);
    let daily = interval >= 86_400;
    let mut last_date = String::new();
    for (i, t) in f.times.iter().enumerate() {
        // Labels sit on round times (every `every` intervals since the epoch).
        if !(t / interval).is_multiple_of(every as u64) {
            continue;
        }
        let x = plot.x_center(i);
        let _ = write!(
            out,
            "<line x1=\"{x}\" x2=\"{x}\" y1=\"{b}\" y2=\"{b2}\" stroke=\"{AXIS}\" stroke-width=\"1\"/>",
            x = px(x),
            b = px(BOTTOM),
            b2 = px(BOTTOM + 4.0),
        );
        let (date, time) = utc_parts(*t);
        let (first, second) = if daily {
            (date.clone(), None)
        } else if date != last_date {
            (time, Some(date.clone()))
        } else {
            (time, None)
        };
        last_date = date;
        let _ = write!(
            out,
            "<text x=\"{x}\" y=\"{y}\" text-anchor=\"middle\" fill=\"{AXIS}\">{first}</text>",
            x = px(x),
            y = px(BOTTOM + 17.0),
            first = esc(&first),
        );
        if let Some(s) = second {
            let _ = write!(
                out,
                "<text x=\"{x}\" y=\"{y}\" text-anchor=\"middle\" fill=\"{AXIS}\" font-size=\"12\">{s}</text>",
                x = px(x),
                y = px(BOTTOM + 31.0),
                s = esc(&s),
            );
        }
    }
    let _ = write!(
        out,
        "<text x=\"{x}\" y=\"{y}\" text-anchor=\"end\" fill=\"{AXIS}\" font-size=\"11\">UTC</text>",
        x = px(RIGHT),
        y = px(HEIGHT - 4.0),
    );
    out.push_str("</g>");
}

/// The legend across the top: a swatch (a bar's square or a line's
/// stroke) and the series' label each.
fn legend(out: &mut String, series: &[Series], lines: bool) {
    out.push_str("<g class=\"legend\">");
    let mut x = LEFT;
    for s in series {
        if lines {
            let _ = write!(
                out,
                "<line x1=\"{x1}\" x2=\"{x2}\" y1=\"14\" y2=\"14\" stroke=\"{c}\" stroke-width=\"3\"/>",
                x1 = px(x),
                x2 = px(x + 16.0),
                c = s.color,
            );
        } else {
            let _ = write!(
                out,
                "<rect x=\"{x}\" y=\"8\" width=\"12\" height=\"12\" rx=\"2\" fill=\"{c}\"/>",
                x = px(x),
                c = s.color,
            );
        }
        let _ = write!(
            out,
            "<text x=\"{tx}\" y=\"18\" fill=\"#1f2330\">{label}</text>",
            tx = px(x + 20.0),
            label = esc(s.label),
        );
        // Roughly 7.5 px per character at 13 px.
        x += 20.0 + s.label.chars().count() as f64 * 7.5 + 18.0;
    }
    out.push_str("</g>");
}

fn empty_note(out: &mut String, note: &str) {
    let _ = write!(
        out,
        "<text class=\"chart-empty\" x=\"{x}\" y=\"{y}\" text-anchor=\"middle\" fill=\"{AXIS}\" font-size=\"13\">{n}</text>",
        x = px((LEFT + RIGHT) / 2.0),
        y = px((TOP + BOTTOM) / 2.0),
        n = esc(note),
    );
}

fn value_of(unit: Unit, v: f64) -> String {
    match unit {
        Unit::Count => count(v.max(0.0).round() as u64),
        Unit::Millis => ms(v),
        Unit::Bytes => bytes(v.max(0.0).round() as u64),
        Unit::Percent => format!("{}%", trim(v, 1)),
    }
}

/// Stacked bars, one bar per bucket, the series stacked bottom-up in the
/// order given. Each non-zero segment is one `<rect class="seg">`; each
/// bucket has a transparent `<rect class="hit">` carrying its tooltip.
pub fn stacked_bars(f: &Frame<'_>, series: &[Series]) -> String {
    let n = f.times.len().max(1);
    let totals: Vec<f64> = (0..f.times.len())
        .map(|i| {
            series
                .iter()
                .map(|s| s.values.get(i).copied().flatten().unwrap_or(0.0).max(0.0))
                .sum()
        })
        .collect();
    let top = totals.iter().copied().fold(0.0, f64::max);
    let plot = Plot {
        scale: Scale::new(top, f.unit),
        slot: (RIGHT - LEFT) / n as f64,
    };
    let mut out = String::with_capacity(4096 + f.times.len() * 400);
    open(&mut out, f);
    axes(&mut out, f, &plot);
    let width = (plot.slot * 0.72).max(1.0);
    out.push_str("<g class=\"bars\">");
    for (i, t) in f.times.iter().enumerate() {
        let x = plot.x_center(i) - width / 2.0;
        let mut base = 0.0;
        let mut tip = format!(
            "{}: {} total",
            bucket_name(*t, f.interval_secs),
            value_of(f.unit, totals[i])
        );
        out.push_str("<g>");
        for s in series {
            let v = s.values.get(i).copied().flatten().unwrap_or(0.0).max(0.0);
            let _ = write!(tip, ", {} {}", value_of(f.unit, v), s.label.to_lowercase());
            if v <= 0.0 {
                continue;
            }
            let y_top = plot.y(base + v);
            let y_bottom = plot.y(base);
            // At least one pixel, so a single error among thousands of
            // calls still shows.
            let h = (y_bottom - y_top).max(1.0);
            let _ = write!(
                out,
                "<rect class=\"seg\" x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" fill=\"{c}\"/>",
                x = px(x),
                y = px(y_bottom - h),
                w = px(width),
                h = px(h),
                c = s.color,
            );
            base += v;
        }
        let _ = write!(
            out,
            "<rect class=\"hit\" x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" fill=\"#000\" fill-opacity=\"0\"><title>{tip}</title></rect></g>",
            x = px(LEFT + plot.slot * i as f64),
            y = px(TOP),
            w = px(plot.slot),
            h = px(BOTTOM - TOP),
            tip = esc(&tip),
        );
    }
    out.push_str("</g>");
    if top <= 0.0 {
        empty_note(&mut out, f.empty_note);
    }
    legend(&mut out, series, false);
    out.push_str("</svg>");
    out
}

/// Lines, one per series, broken where a bucket has no value; each value
/// is one `<circle class="pt">` with its tooltip.
pub fn lines(f: &Frame<'_>, series: &[Series]) -> String {
    let n = f.times.len().max(1);
    let top = series
        .iter()
        .flat_map(|s| s.values.iter().flatten())
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let plot = Plot {
        scale: Scale::new(top, f.unit),
        slot: (RIGHT - LEFT) / n as f64,
    };
    let mut out = String::with_capacity(4096 + f.times.len() * series.len() * 200);
    open(&mut out, f);
    axes(&mut out, f, &plot);
    let mut any = false;
    for s in series {
        let mut d = String::new();
        let mut pen_down = false;
        for i in 0..f.times.len() {
            match s.values.get(i).copied().flatten().filter(|v| v.is_finite()) {
                Some(v) => {
                    let _ = write!(
                        d,
                        "{}{},{} ",
                        if pen_down { 'L' } else { 'M' },
                        px(plot.x_center(i)),
                        px(plot.y(v))
                    );
                    pen_down = true;
                }
                None => pen_down = false,
            }
        }
        let _ = write!(
            out,
            "<g class=\"series\"><path class=\"line\" d=\"{d}\" fill=\"none\" stroke=\"{c}\" stroke-width=\"2\" stroke-linejoin=\"round\"/>",
            d = d.trim_end(),
            c = s.color,
        );
        for (i, t) in f.times.iter().enumerate() {
            let Some(v) = s.values.get(i).copied().flatten().filter(|v| v.is_finite()) else {
                continue;
            };
            any = true;
            let _ = write!(
                out,
                "<circle class=\"pt\" cx=\"{x}\" cy=\"{y}\" r=\"3\" fill=\"{c}\"><title>{tip}</title></circle>",
                x = px(plot.x_center(i)),
                y = px(plot.y(v)),
                c = s.color,
                tip = esc(&format!(
                    "{}: {} {}",
                    bucket_name(*t, f.interval_secs),
                    s.label,
                    value_of(f.unit, v)
                )),
            );
        }
        out.push_str("</g>");
    }
    if !any {
        empty_note(&mut out, f.empty_note);
    }
    legend(&mut out, series, true);
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame<'a>(times: &'a [u64], unit: Unit) -> Frame<'a> {
        Frame {
            id: "c",
            title: "Calls <&>",
            desc: "a \"quoted\" desc".into(),
            times,
            interval_secs: 60,
            unit,
            empty_note: "No calls",
        }
    }

    fn well_formed(svg: &str) -> (usize, usize, usize) {
        let mut r = quick_xml::Reader::from_str(svg);
        let (mut segs, mut pts, mut texts) = (0, 0, 0);
        loop {
            match r.read_event() {
                Ok(quick_xml::events::Event::Eof) => break,
                Ok(quick_xml::events::Event::Start(e)) | Ok(quick_xml::events::Event::Empty(e)) => {
                    let class = e
                        .try_get_attribute("class")
                        .unwrap()
                        .map(|a| a.unescape_value().unwrap().to_string());
                    match (e.name().as_ref(), class.as_deref()) {
                        (b"rect", Some("seg")) => segs += 1,
                        (b"circle", Some("pt")) => pts += 1,
                        (b"text", _) => texts += 1,
                        _ => {}
                    }
                }
                Ok(_) => {}
                Err(e) => panic!("not well-formed: {e}\n{svg}"),
            }
        }
        (segs, pts, texts)
    }

    #[test]
    fn scales_are_nice_and_hold_the_maximum() {
        let s = Scale::new(7.0, Unit::Count);
        assert_eq!((s.max, s.step), (8.0, 2.0));
        assert_eq!(s.ticks(), [0.0, 2.0, 4.0, 6.0, 8.0]);
        let s = Scale::new(0.0, Unit::Count);
        assert_eq!((s.max, s.step), (1.0, 1.0));
        let s = Scale::new(3.0, Unit::Count);
        assert_eq!((s.max, s.step), (3.0, 1.0), "whole calls only");
        let s = Scale::new(1234.0, Unit::Count);
        assert_eq!((s.max, s.step), (1500.0, 500.0));
        assert_eq!(s.label(1500.0), "1.5k");
        let s = Scale::new(10.0, Unit::Count);
        assert_eq!(s.max, 10.0, "an exact fit is not stretched");
        let s = Scale::new(0.3, Unit::Millis);
        assert!(
            (s.step - 0.1).abs() < 1e-12 && (s.max - 0.3).abs() < 1e-9,
            "{s:?}"
        );
        let s = Scale::new(2300.0, Unit::Millis);
        assert_eq!((s.max, s.step), (2500.0, 500.0));
        assert_eq!(s.label(500.0), "500 ms");
        assert_eq!(s.label(2500.0), "2.5 s");
        let s = Scale::new(33.0, Unit::Percent);
        assert_eq!((s.max, s.step), (40.0, 10.0));
        assert_eq!(s.label(40.0), "40%");
        assert_eq!(Scale::new(100.0, Unit::Percent).max, 100.0);
        assert_eq!(Scale::new(0.0, Unit::Percent).max, 10.0);
        for (v, unit) in [
            (5.5, Unit::Count),
            (999.0, Unit::Millis),
            (77.0, Unit::Percent),
        ] {
            let s = Scale::new(v, unit);
            assert!(s.max >= v && s.frac(v) <= 1.0, "{v}: {s:?}");
            assert!(s.ticks().len() <= 11, "{v}: {s:?}");
        }
        assert_eq!(Scale::new(f64::NAN, Unit::Count).max, 1.0);
    }

    #[test]
    fn byte_axes_use_one_unit() {
        let s = Scale::new(1.2 * 1024.0 * 1024.0, Unit::Bytes);
        assert_eq!(s.step, 0.5 * 1024.0 * 1024.0);
        assert_eq!(s.max, 1.5 * 1024.0 * 1024.0);
        let labels: Vec<String> = s.ticks().iter().map(|t| s.label(*t)).collect();
        assert_eq!(labels, ["0", "0.5 MB", "1 MB", "1.5 MB"]);
        let s = Scale::new(300.0, Unit::Bytes);
        assert_eq!(s.label(s.step), "100 B");
        assert_eq!(s.label(s.max), "300 B");
        let s = Scale::new(9000.0, Unit::Bytes);
        assert_eq!(s.label(s.step), "2 KB");
        assert_eq!(s.label(s.max), "10 KB");
    }

    #[test]
    fn units_read_well() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count_short(950.0), "950");
        assert_eq!(count_short(1500.0), "1.5k");
        assert_eq!(count_short(2_000_000.0), "2M");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KB");
        assert_eq!(bytes(3 * 1024 * 1024 + 256 * 1024), "3.25 MB");
        assert_eq!(ms(0.0), "0");
        assert_eq!(ms(0.4), "0.4 ms");
        assert_eq!(ms(12.345), "12.3 ms");
        assert_eq!(ms(250.0), "250 ms");
        assert_eq!(ms(1500.0), "1.5 s");
        assert_eq!(percent(1, 8), "12.5%");
        assert_eq!(percent(0, 5), "0%");
        assert_eq!(percent(0, 0), "—");
        assert_eq!(
            esc("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }

    #[test]
    fn time_labels_are_utc() {
        // 2026-11-24T06:05:00Z
        let t = 1_795_500_300;
        assert_eq!(crate::model::rfc3339(t), "2026-11-24T06:05:00Z");
        assert_eq!(utc_parts(t), ("Nov 24".to_string(), "06:05".to_string()));
        assert_eq!(bucket_name(t, 60), "Nov 24 06:05 UTC");
        assert_eq!(bucket_name(t - 6 * 3600 - 300, 86_400), "Nov 24");
        assert_eq!(label_every(60), 10);
        assert_eq!(label_every(24), 3);
        assert_eq!(label_every(28), 4);
        assert_eq!(label_every(1), 1);
    }

    #[test]
    fn stacked_bars_draw_one_segment_per_non_zero_value() {
        let times: Vec<u64> = (0..6).map(|i| 1_795_500_000 + i * 60).collect();
        let series = [
            Series {
                label: "Success",
                color: "#16a34a",
                values: vec![Some(3.0), Some(0.0), None, Some(1.0), Some(0.0), Some(5.0)],
            },
            Series {
                label: "Failed",
                color: "#dc2626",
                values: vec![Some(1.0), Some(0.0), None, Some(0.0), Some(0.0), Some(2.0)],
            },
        ];
        let svg = stacked_bars(&frame(&times, Unit::Count), &series);
        let (segs, pts, _) = well_formed(&svg);
        assert_eq!((segs, pts), (5, 0));
        assert!(svg.contains("<title id=\"c-title\">Calls &lt;&amp;&gt;</title>"));
        assert!(svg.contains("a &quot;quoted&quot; desc"));
        assert!(svg.contains("aria-labelledby=\"c-title c-desc\""));
        assert!(
            svg.contains("Nov 24 06:00 UTC: 4 total, 3 success, 1 failed"),
            "{svg}"
        );
        assert!(!svg.contains("No calls"));
        // The tallest bar (7) reaches 7/8 of the 0–8 axis.
        assert!(svg.contains(">8</text>"));
    }

    #[test]
    fn all_zero_data_shows_the_note_not_bars() {
        let times = [60, 120, 180];
        let series = [Series {
            label: "Errors",
            color: "#dc2626",
            values: vec![Some(0.0); 3],
        }];
        let svg = stacked_bars(&frame(&times, Unit::Count), &series);
        let (segs, _, _) = well_formed(&svg);
        assert_eq!(segs, 0);
        assert!(svg.contains("No calls"));
        let svg = lines(
            &frame(&times, Unit::Millis),
            &[Series {
                values: vec![None; 3],
                ..series[0].clone()
            }],
        );
        let (_, pts, _) = well_formed(&svg);
        assert_eq!(pts, 0);
        assert!(svg.contains("No calls"));
        // No bucket at all still gives a well-formed chart.
        well_formed(&stacked_bars(&frame(&[], Unit::Count), &series));
    }

    #[test]
    fn lines_break_at_missing_values() {
        let times: Vec<u64> = (0..5).map(|i| i * 3600).collect();
        let mut f = frame(&times, Unit::Millis);
        f.interval_secs = 3600;
        let series = [
            Series {
                label: "p50",
                color: "#2563eb",
                values: vec![Some(1.0), Some(2.0), None, Some(4.0), Some(5.0)],
            },
            Series {
                label: "p99",
                color: "#db2777",
                values: vec![Some(10.0), None, None, None, Some(50.0)],
            },
        ];
        let svg = lines(&f, &series);
        let (_, pts, _) = well_formed(&svg);
        assert_eq!(pts, 6);
        // p50: two runs (M…L, then M…L); p99: two single points.
        let paths: Vec<&str> = svg
            .match_indices(" d=\"")
            .map(|(at, _)| {
                let rest = &svg[at + 4..];
                &rest[..rest.find('"').unwrap()]
            })
            .collect();
        assert_eq!(paths.len(), 2);
        assert_eq!(paths[0].matches('M').count(), 2);
        assert_eq!(paths[0].matches('L').count(), 2);
        assert_eq!(paths[1].matches('M').count(), 2);
        assert!(
            svg.contains(">50 ms</text>") || svg.contains(">60 ms</text>"),
            "{svg}"
        );
        assert!(svg.contains("Jan 1 00:00 UTC: p50 1 ms"), "{svg}");
        // The date goes under the first label only (one day).
        assert_eq!(svg.matches(">Jan 1</text>").count(), 1);
    }
}
