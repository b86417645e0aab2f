//! Axis arithmetic as graphite-web 1.1.10's `glyph.py` does it: y tic steps (the slop rule
//! over divisors 4, 5, 6), limits, labels with unit suffixes (`k`, `M`, `G` / `Ki`, `Mi`),
//! logarithmic axes, and the x axis' grid/label table picked by seconds per pixel.

use crate::series::fmt_g;

/// Values within this fraction of a step count as on it (rounding errors).
const EPSILON: f64 = 0.0001;

/// Unit prefixes of `yUnitSystem`, largest first.
pub fn unit_system(name: &str) -> Option<&'static [(&'static str, f64)]> {
    const K: f64 = 1000.0;
    const KI: f64 = 1024.0;
    const DAY: f64 = 86_400.0;
    static SI: [(&str, f64); 5] = [
        ("P", K * K * K * K * K),
        ("T", K * K * K * K),
        ("G", K * K * K),
        ("M", K * K),
        ("k", K),
    ];
    static BINARY: [(&str, f64); 5] = [
        ("Pi", KI * KI * KI * KI * KI),
        ("Ti", KI * KI * KI * KI),
        ("Gi", KI * KI * KI),
        ("Mi", KI * KI),
        ("Ki", KI),
    ];
    static SEC: [(&str, f64); 5] = [
        ("Y", DAY * 365.0),
        ("M", DAY * 30.0),
        ("D", DAY),
        ("H", 3600.0),
        ("m", 60.0),
    ];
    static MSEC: [(&str, f64); 6] = [
        ("Y", DAY * 365.0 * 1000.0),
        ("M", DAY * 30.0 * 1000.0),
        ("D", DAY * 1000.0),
        ("H", 3_600_000.0),
        ("m", 60_000.0),
        ("s", 1000.0),
    ];
    Some(match name {
        "si" => &SI,
        "binary" => &BINARY,
        "sec" => &SEC,
        "msec" => &MSEC,
        "none" => &[],
        _ => return None,
    })
}

/// `v` in the largest unit it (and `step`, when given) reaches: `(scaled, prefix)`.
pub fn format_units(
    v: f64,
    step: Option<f64>,
    system: &[(&'static str, f64)],
) -> (f64, &'static str) {
    for &(prefix, size) in system {
        if v.abs() >= size && step.is_none_or(|s| s >= size) {
            let mut v2 = v / size;
            if v2 - v2.floor() < 1e-11 && v > 1.0 {
                v2 = v2.floor();
            }
            return (v2, prefix);
        }
    }
    let mut v = v;
    if v - v.floor() < 1e-11 && v > 1.0 {
        v = v.floor();
    }
    (v, "")
}

/// An axis that could not be laid out (graphite-web's `GraphError`).
#[derive(Debug, Clone, PartialEq)]
pub struct AxisError(pub String);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Source {
    Data,
    Min,
    Max,
    Limit,
    Extremum,
}

/// One y axis: its data range, the settings applied to it, then the chosen step and limits.
#[derive(Debug, Clone)]
pub struct Tics {
    min: f64,
    min_source: Source,
    max: f64,
    max_source: Source,
    axis_limit: Option<f64>,
    system: &'static [(&'static str, f64)],
    /// `Some(base)` for a logarithmic axis.
    log_base: Option<f64>,
    binary: bool,
    pub step: Option<f64>,
    pub bottom: f64,
    pub top: f64,
    pub span: f64,
}

/// The most y labels (and major grid lines) one axis draws. graphite-web's loop has no bound: a
/// `logBase` just above one over a wide `yMin`..`yMax` would label forever. A hundred labels
/// already overlap on any picture a person reads; each one is measured and drawn, so a
/// thousand made such a request cost seconds of the render budget.
pub const MAX_Y_LABELS: usize = 100;

fn finite(v: f64, what: &str) -> Result<f64, AxisError> {
    if v.is_nan() {
        Err(AxisError(format!("encountered a NaN {what}")))
    } else if v.is_infinite() {
        Err(AxisError(format!("encountered an infinite {what}")))
    } else {
        Ok(v)
    }
}

fn choose_delta(x: f64) -> f64 {
    if x.abs() < 1.0e-9 {
        1.0
    } else {
        0.1 * x.abs()
    }
}

impl Tics {
    pub fn new(
        min: f64,
        max: f64,
        system: &'static [(&'static str, f64)],
        log_base: Option<f64>,
    ) -> Result<Tics, AxisError> {
        if let Some(b) = log_base {
            if b <= 1.0 || !b.is_finite() {
                return Err(AxisError("logBase must be greater than one".into()));
            }
        }
        Ok(Tics {
            min: finite(min, "data value")?,
            min_source: Source::Data,
            max: finite(max, "data value")?,
            max_source: Source::Data,
            axis_limit: None,
            system,
            log_base,
            binary: false,
            step: None,
            bottom: 0.0,
            top: 0.0,
            span: 0.0,
        })
    }

    /// `yMin`, `yMax` (a number or `max`: the data's own maximum) and `yLimit`.
    pub fn apply(
        &mut self,
        axis_min: Option<f64>,
        axis_max: Option<YMax>,
        axis_limit: Option<f64>,
    ) -> Result<(), AxisError> {
        if let Some(m) = axis_min.filter(|m| !m.is_nan()) {
            self.min_source = Source::Min;
            self.min = finite(m, "axis min")?;
        }
        match axis_max {
            Some(YMax::DataMax) => self.max_source = Source::Extremum,
            Some(YMax::Value(m)) if !m.is_nan() => {
                self.max_source = Source::Max;
                self.max = finite(m, "axis max")?;
            }
            _ => {}
        }
        match axis_limit.filter(|l| !l.is_nan()) {
            None => self.axis_limit = None,
            Some(l) if l < self.max => {
                self.max = finite(l, "axis limit")?;
                self.max_source = Source::Limit;
                self.axis_limit = None;
            }
            Some(l) if l.is_infinite() => self.axis_limit = None,
            Some(l) => self.axis_limit = Some(l),
        }
        self.reconcile()
    }

    fn reconcile(&mut self) -> Result<(), AxisError> {
        if self.min < self.max {
            return Ok(());
        }
        let min_fixed = self.min_source == Source::Min;
        let max_fixed = matches!(self.max_source, Source::Max | Source::Limit);
        if min_fixed && max_fixed {
            return Err(AxisError(
                "yMin must be less than yMax (or yLimit)".to_string(),
            ));
        } else if min_fixed {
            self.max = self.min + choose_delta(self.min);
        } else if max_fixed {
            self.min = self.max - choose_delta(self.max);
        } else {
            let delta = choose_delta(self.min.abs().max(self.max.abs()));
            let avg = (self.min + self.max) / 2.0;
            self.min = avg - delta;
            self.max = avg + delta;
        }
        Ok(())
    }

    /// A step given by `yStep`.
    pub fn set_step(&mut self, step: f64) -> Result<(), AxisError> {
        if self.log_base.is_none() {
            self.step = Some(finite(step, "axis step")?);
        }
        Ok(())
    }

    fn slop(&self, step: f64, divisor: f64) -> Option<f64> {
        let bottom = step * (self.min / step + EPSILON).floor();
        let top = bottom + step * divisor;
        (top >= self.max - EPSILON * step).then(|| (top - self.max).max(self.min - bottom))
    }

    /// The step whose `divisor` divisions cover the range with the least white space.
    pub fn choose_step(&mut self, divisors: &[u32], binary: bool) {
        if self.log_base.is_some() {
            self.step = None;
            return;
        }
        self.binary = binary;
        if self.min == self.max {
            if self.min == 0.0 {
                self.max = 1.0;
            } else if self.min < 0.0 {
                self.min *= 1.1;
                self.max *= 0.9;
            } else {
                self.min *= 0.9;
                self.max *= 1.1;
            }
        }
        let divisors: Vec<f64> = divisors.iter().map(|&d| f64::from(d.max(1))).collect();
        let most = divisors.iter().copied().fold(1.0, f64::max);
        let least = divisors.iter().copied().fold(f64::INFINITY, f64::min);
        let variance = self.max - self.min;
        let min_step = variance / most;
        let (base, mantissas): (f64, &[f64]) = if binary {
            (2.0, &[1.0])
        } else {
            (10.0, &[1.0, 2.0, 5.0])
        };
        let mut exponent = if binary {
            (min_step.log2() - EPSILON).floor()
        } else {
            (min_step.log10() - EPSILON).floor()
        };
        let mut best: Option<(f64, f64)> = None;
        // Steps grow geometrically; a few hundred candidates cover any finite range.
        'outer: for _ in 0..2000 {
            let multiplier = base.powf(exponent);
            for &m in mantissas {
                let step = m * multiplier;
                if step < min_step * (1.0 - EPSILON) {
                    continue;
                }
                if let Some((slop, _)) = best {
                    if step * least >= 2.0 * slop + variance {
                        break 'outer;
                    }
                }
                for &d in &divisors {
                    if let Some(slop) = self.slop(step, d) {
                        if best.is_none_or(|(b, _)| slop < b) {
                            best = Some((slop, step));
                        }
                    }
                }
            }
            exponent += 1.0;
        }
        self.step = best.map(|(_, s)| s);
    }

    pub fn choose_limits(&mut self) -> Result<(), AxisError> {
        match self.log_base {
            Some(base) => {
                if self.min <= 0.0 {
                    return Err(AxisError(
                        "a logarithmic scale (logBase) needs data above zero; the minimum is \
                         zero or less"
                            .into(),
                    ));
                }
                self.bottom = base.powf(self.min.log(base).floor());
                self.top = base.powf(self.max.log(base).ceil());
                self.span = self.top - self.bottom;
                if self.span == 0.0 {
                    self.top *= base;
                    self.span = self.top - self.bottom;
                }
            }
            None => {
                let step = self
                    .step
                    .filter(|s| *s > 0.0)
                    .ok_or_else(|| AxisError("the y axis step must be positive".into()))?;
                self.bottom = if self.min_source == Source::Data {
                    step * (self.min / step + EPSILON).floor()
                } else {
                    self.min
                };
                if self.max_source == Source::Data {
                    self.top = step * (self.max / step - EPSILON).ceil();
                    if let Some(l) = self.axis_limit {
                        if self.top > l + EPSILON * step {
                            self.top = l;
                        }
                    }
                } else {
                    self.top = self.max;
                }
                self.span = self.top - self.bottom;
                if self.span == 0.0 {
                    self.top += 1.0;
                    self.span += 1.0;
                }
            }
        }
        Ok(())
    }

    /// The values that get a label and a major grid line (at most [`MAX_Y_LABELS`]).
    pub fn label_values(&mut self) -> Result<Vec<f64>, AxisError> {
        let mut values = Vec::new();
        match self.log_base {
            Some(base) => {
                let mut v = base.powf((self.bottom.log(base) - EPSILON).ceil());
                while v < self.top * (1.0 + EPSILON) && values.len() < MAX_Y_LABELS {
                    values.push(v);
                    v *= base;
                }
            }
            None => {
                let mut step = self.step.unwrap_or(0.0);
                if step <= 0.0 {
                    return Err(AxisError("the y axis step must be positive".into()));
                }
                if self.span > 1000.0 * step {
                    // A yStep far too small for the range: pick a sane one.
                    self.choose_step(&[4, 5, 6], self.binary);
                    step = self.step.unwrap_or(self.span);
                }
                let start = step * (self.bottom / step - EPSILON).ceil();
                let mut i = 0.0;
                loop {
                    let v = start + i * step;
                    if v > self.top + EPSILON * step || values.len() >= MAX_Y_LABELS {
                        break;
                    }
                    values.push(v);
                    i += 1.0;
                }
            }
        }
        Ok(values)
    }

    /// graphite-web's `makeLabel` (note its trailing space).
    pub fn label(&self, value: f64) -> String {
        let (v, prefix) = format_units(value, self.step, self.system);
        let (span, span_prefix) = format_units(self.span, self.step, self.system);
        let prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix} ")
        };
        if v < 0.1 {
            format!("{} {prefix}", fmt_g(v))
        } else if v < 1.0 {
            format!("{v:.2} {prefix}")
        } else if span > 3.0 || span_prefix != prefix {
            format!("{v:.1} {prefix}")
        } else if span > 0.1 {
            format!("{v:.2} {prefix}")
        } else {
            format!("{} {prefix}", fmt_g(v))
        }
    }
}

/// `yMax`: a number, or `max` (the data's maximum, unrounded).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum YMax {
    Value(f64),
    DataMax,
}

const SEC: i64 = 1;
const MIN: i64 = 60;
const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

/// One row of the x axis table: from `seconds` per pixel on (and up to `max_interval` of
/// range), minor grid, major grid and labels every so many units, labels in `format`.
#[derive(Debug, Clone, Copy)]
pub struct XConf {
    pub seconds: f64,
    pub minor_unit: i64,
    pub minor_step: f64,
    pub major_unit: i64,
    pub major_step: f64,
    pub label_unit: i64,
    pub label_step: f64,
    pub format: &'static str,
    pub max_interval: Option<i64>,
}

const fn x(
    seconds: f64,
    minor: (i64, f64),
    major: (i64, f64),
    label: (i64, f64),
    format: &'static str,
    max_interval: Option<i64>,
) -> XConf {
    XConf {
        seconds,
        minor_unit: minor.0,
        minor_step: minor.1,
        major_unit: major.0,
        major_step: major.1,
        label_unit: label.0,
        label_step: label.1,
        format,
        max_interval,
    }
}

/// graphite-web's x axis configurations (from rrdtool), with its `DATE_FORMAT` `%m/%d`.
pub static X_CONFIGS: [XConf; 23] = [
    x(
        0.0,
        (SEC, 5.0),
        (MIN, 1.0),
        (SEC, 5.0),
        "%H:%M:%S",
        Some(10 * MIN),
    ),
    x(
        0.07,
        (SEC, 10.0),
        (MIN, 1.0),
        (SEC, 10.0),
        "%H:%M:%S",
        Some(20 * MIN),
    ),
    x(
        0.14,
        (SEC, 15.0),
        (MIN, 1.0),
        (SEC, 15.0),
        "%H:%M:%S",
        Some(30 * MIN),
    ),
    x(
        0.27,
        (SEC, 30.0),
        (MIN, 2.0),
        (MIN, 1.0),
        "%H:%M",
        Some(2 * HOUR),
    ),
    x(
        0.5,
        (MIN, 1.0),
        (MIN, 2.0),
        (MIN, 1.0),
        "%H:%M",
        Some(2 * HOUR),
    ),
    x(
        1.2,
        (MIN, 1.0),
        (MIN, 4.0),
        (MIN, 2.0),
        "%H:%M",
        Some(3 * HOUR),
    ),
    x(
        2.0,
        (MIN, 1.0),
        (MIN, 10.0),
        (MIN, 5.0),
        "%H:%M",
        Some(6 * HOUR),
    ),
    x(
        5.0,
        (MIN, 2.0),
        (MIN, 10.0),
        (MIN, 10.0),
        "%H:%M",
        Some(12 * HOUR),
    ),
    x(
        10.0,
        (MIN, 5.0),
        (MIN, 20.0),
        (MIN, 20.0),
        "%H:%M",
        Some(DAY),
    ),
    x(
        30.0,
        (MIN, 10.0),
        (HOUR, 1.0),
        (HOUR, 1.0),
        "%H:%M",
        Some(2 * DAY),
    ),
    x(
        60.0,
        (MIN, 30.0),
        (HOUR, 2.0),
        (HOUR, 2.0),
        "%H:%M",
        Some(2 * DAY),
    ),
    x(
        100.0,
        (HOUR, 2.0),
        (HOUR, 4.0),
        (HOUR, 4.0),
        "%a %H:%M",
        Some(6 * DAY),
    ),
    x(
        255.0,
        (HOUR, 6.0),
        (HOUR, 12.0),
        (HOUR, 12.0),
        "%m/%d %H:%M",
        Some(10 * DAY),
    ),
    x(
        600.0,
        (HOUR, 6.0),
        (DAY, 1.0),
        (DAY, 1.0),
        "%m/%d",
        Some(14 * DAY),
    ),
    x(
        1000.0,
        (HOUR, 12.0),
        (DAY, 1.0),
        (DAY, 1.0),
        "%m/%d",
        Some(365 * DAY),
    ),
    x(
        2000.0,
        (DAY, 1.0),
        (DAY, 2.0),
        (DAY, 2.0),
        "%m/%d",
        Some(365 * DAY),
    ),
    x(
        4000.0,
        (DAY, 2.0),
        (DAY, 4.0),
        (DAY, 4.0),
        "%m/%d",
        Some(365 * DAY),
    ),
    x(
        8000.0,
        (DAY, 3.5),
        (DAY, 7.0),
        (DAY, 7.0),
        "%m/%d",
        Some(365 * DAY),
    ),
    x(
        16000.0,
        (DAY, 7.0),
        (DAY, 14.0),
        (DAY, 14.0),
        "%m/%d",
        Some(365 * DAY),
    ),
    x(
        32000.0,
        (DAY, 15.0),
        (DAY, 30.0),
        (DAY, 30.0),
        "%m/%d",
        Some(365 * DAY),
    ),
    x(
        64000.0,
        (DAY, 30.0),
        (DAY, 60.0),
        (DAY, 60.0),
        "%m/%d %Y",
        None,
    ),
    x(
        100000.0,
        (DAY, 60.0),
        (DAY, 120.0),
        (DAY, 120.0),
        "%m/%d %Y",
        None,
    ),
    x(
        120000.0,
        (DAY, 120.0),
        (DAY, 240.0),
        (DAY, 240.0),
        "%m/%d %Y",
        None,
    ),
];

/// The table row for a graph of `range` seconds drawn at `seconds_per_pixel`.
pub fn x_conf(seconds_per_pixel: f64, range: i64) -> &'static XConf {
    X_CONFIGS
        .iter()
        .rev()
        .find(|c| c.seconds <= seconds_per_pixel && c.max_interval.is_none_or(|m| m >= range))
        .unwrap_or(&X_CONFIGS[X_CONFIGS.len() - 1])
}

/// The first time at or after `start` on a boundary of `step` `unit`s in `tz` (graphite-web's
/// `find_x_times`), and the distance between boundaries in seconds.
pub fn x_times(start: i64, unit: i64, step: f64, tz: &jiff::tz::TimeZone) -> (i64, i64) {
    let delta = ((unit as f64) * step).round().max(1.0) as i64;
    let Ok(ts) = jiff::Timestamp::from_second(start) else {
        return (start, delta);
    };
    let z = ts.to_zoned(tz.clone());
    let offset = i64::from(z.offset().seconds());
    let local = start + offset;
    let step_i = step as i64;
    let aligned_local = match unit {
        SEC => {
            local - local.rem_euclid(60) + (i64::from(z.second()) / step_i.max(1)) * step_i.max(1)
        }
        MIN => {
            local - local.rem_euclid(3600)
                + (i64::from(z.minute()) / step_i.max(1)) * step_i.max(1) * 60
        }
        HOUR => {
            local - local.rem_euclid(DAY)
                + (i64::from(z.hour()) / step_i.max(1)) * step_i.max(1) * 3600
        }
        _ => local - local.rem_euclid(DAY),
    };
    let mut t = aligned_local - offset;
    while t < start {
        t += delta;
    }
    (t, delta)
}

/// A time label in `tz` (strftime `format`); empty if the format cannot be written.
pub fn time_label(t: i64, format: &str, tz: &jiff::tz::TimeZone) -> String {
    let Ok(ts) = jiff::Timestamp::from_second(t) else {
        return String::new();
    };
    let z = ts.to_zoned(tz.clone());
    let mut out = String::new();
    match jiff::fmt::strtime::BrokenDownTime::from(&z).format(format, &mut out) {
        Ok(()) => out,
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn axis(min: f64, max: f64, system: &str) -> (Vec<f64>, Vec<String>) {
        let mut t = Tics::new(min, max, unit_system(system).unwrap(), None).unwrap();
        t.apply(None, None, None).unwrap();
        t.choose_step(&[4, 5, 6], system == "binary");
        t.choose_limits().unwrap();
        let v = t.label_values().unwrap();
        let l = v.iter().map(|x| t.label(*x)).collect();
        (v, l)
    }

    #[test]
    fn y_labels_follow_graphite_web() {
        let (v, l) = axis(0.0, 100.0, "si");
        assert_eq!(v, [0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        assert_eq!(l, ["0 ", "20.0 ", "40.0 ", "60.0 ", "80.0 ", "100.0 "]);
        // The prefix follows the step: a 500 k step labels 3 M as 3000 k (as graphite-web).
        let (_, l) = axis(0.0, 3_000_000.0, "si");
        assert_eq!(l.last().unwrap(), "3000.0 k ");
        let (_, l) = axis(0.0, 30_000_000.0, "si");
        assert_eq!(l.last().unwrap(), "30.0 M ");
        let (_, l) = axis(0.0, 4.0 * 1024.0 * 1024.0, "binary");
        assert!(l.iter().any(|x| x.ends_with("Mi ")), "{l:?}");
        let (v, l) = axis(0.2, 0.8, "si");
        assert!(v.len() >= 4, "{v:?}");
        assert!(l.iter().all(|x| x.contains('.')), "{l:?}");
        // A constant series: a range is made around it.
        let (v, _) = axis(5.0, 5.0, "si");
        assert!(
            v.first().unwrap() <= &4.5 && v.last().unwrap() >= &5.5,
            "{v:?}"
        );
    }

    #[test]
    fn units_and_log_axes() {
        let si = unit_system("si").unwrap();
        assert_eq!(format_units(2500.0, None, si), (2.5, "k"));
        assert_eq!(format_units(2500.0, Some(100.0), si), (2500.0, ""));
        let mut t = Tics::new(3.0, 5000.0, si, Some(10.0)).unwrap();
        t.apply(None, None, None).unwrap();
        t.choose_step(&[4, 5, 6], false);
        t.choose_limits().unwrap();
        assert_eq!(
            t.label_values().unwrap(),
            [1.0, 10.0, 100.0, 1000.0, 10000.0]
        );
        let mut t = Tics::new(0.0, 5.0, si, Some(10.0)).unwrap();
        t.apply(None, None, None).unwrap();
        assert!(t.choose_limits().is_err());
    }

    #[test]
    fn x_axis_rows_and_boundaries() {
        // A day over ~300 pixels: ~288 s per pixel → labels every 12 hours.
        let c = x_conf(288.0, 86_400);
        assert_eq!(c.label_unit * c.label_step as i64, 12 * 3600);
        let utc = jiff::tz::TimeZone::UTC;
        let (t, d) = x_times(1_000_000_123, MIN, 5.0, &utc);
        assert_eq!(d, 300);
        assert_eq!(t % 300, 0);
        assert!(t >= 1_000_000_123 && t - 1_000_000_123 < 300);
        assert_eq!(time_label(0, "%H:%M", &utc), "00:00");
    }
}
