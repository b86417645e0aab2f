//! The graph parameters of a render request, read as graphite-web's `parseOptions` reads
//! them (`123` is a number, `true`/`false` booleans, `default` or empty means unset, flags
//! are Python-truthy: `hideLegend=1` and `hideLegend=true` hide, `hideLegend=0` shows) and
//! checked: a value carbide cannot use is an error naming the parameter, never a 500.

use super::axis::{self, YMax};
use super::color;
use super::scene::Rgba;

/// Bounds on what one picture may cost (docs/limits.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PictureLimits {
    /// Widest and tallest picture, pixels.
    pub max_side: u32,
    /// Most pixels in one picture (width × height).
    pub max_pixels: u64,
    /// Longest text parameter (`title`, `vtitle`, ...), in characters.
    pub max_text_chars: usize,
}

impl Default for PictureLimits {
    fn default() -> Self {
        PictureLimits {
            max_side: 8192,
            max_pixels: 4 << 20,
            max_text_chars: MAX_TEXT_CHARS,
        }
    }
}

/// A parameter carbide cannot use: its name and why.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamError {
    pub param: String,
    pub message: String,
}

impl std::fmt::Display for ParamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.param, self.message)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineMode {
    Slope,
    Staircase,
    Connected,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AreaMode {
    None,
    First,
    All,
    Stacked,
}

/// Everything a graph can be asked for; [`GraphParams::default`] is graphite-web's default
/// graph (330×250, white background, black text).
#[derive(Debug, Clone, PartialEq)]
pub struct GraphParams {
    pub width: u32,
    pub height: u32,
    pub margin: f64,
    pub background: Rgba,
    pub foreground: Rgba,
    pub major_grid: Rgba,
    pub minor_grid: Rgba,
    pub colors: Vec<Rgba>,
    pub font_size: f64,
    pub title: String,
    pub vtitle: String,
    pub vtitle_right: String,
    pub y_min: Option<f64>,
    pub y_max: Option<YMax>,
    pub y_limit: Option<f64>,
    pub y_step: Option<f64>,
    pub y_min_left: Option<f64>,
    pub y_max_left: Option<YMax>,
    pub y_limit_left: Option<f64>,
    pub y_step_left: Option<f64>,
    pub y_min_right: Option<f64>,
    pub y_max_right: Option<YMax>,
    pub y_limit_right: Option<f64>,
    pub y_step_right: Option<f64>,
    pub y_axis_right: bool,
    pub y_divisors: Vec<u32>,
    pub minor_y: u32,
    pub line_mode: LineMode,
    pub line_width: f64,
    pub area_mode: AreaMode,
    pub area_alpha: Option<f64>,
    /// `None`: hidden when there are more than 10 series (graphite-web's `LEGEND_MAX_ITEMS`).
    pub hide_legend: Option<bool>,
    pub hide_axes: bool,
    pub hide_x_axis: bool,
    pub hide_y_axis: bool,
    pub hide_grid: bool,
    pub hide_null_from_legend: bool,
    pub graph_only: bool,
    pub unique_legend: bool,
    pub draw_null_as_zero: bool,
    pub connected_limit: Option<f64>,
    pub unit_system: &'static [(&'static str, f64)],
    pub binary: bool,
    pub log_base: Option<f64>,
    pub left_width: Option<f64>,
    pub right_width: Option<f64>,
    pub left_color: Option<Rgba>,
    pub right_color: Option<Rgba>,
    pub left_dashed: Option<f64>,
    pub right_dashed: Option<f64>,
    pub min_x_step: f64,
    pub x_format: Option<String>,
}

impl Default for GraphParams {
    fn default() -> Self {
        GraphParams {
            width: 330,
            height: 250,
            margin: 10.0,
            background: Rgba::rgb(255, 255, 255),
            foreground: Rgba::rgb(0, 0, 0),
            major_grid: Rgba::rgb(200, 150, 200),
            minor_grid: Rgba::rgb(175, 175, 175),
            colors: color::DEFAULT_COLORS
                .iter()
                .filter_map(|c| color::parse(c).ok())
                .collect(),
            font_size: 10.0,
            title: String::new(),
            vtitle: String::new(),
            vtitle_right: String::new(),
            y_min: None,
            y_max: None,
            y_limit: None,
            y_step: None,
            y_min_left: None,
            y_max_left: None,
            y_limit_left: None,
            y_step_left: None,
            y_min_right: None,
            y_max_right: None,
            y_limit_right: None,
            y_step_right: None,
            y_axis_right: false,
            y_divisors: vec![4, 5, 6],
            minor_y: 1,
            line_mode: LineMode::Slope,
            line_width: 1.2,
            area_mode: AreaMode::None,
            area_alpha: None,
            hide_legend: None,
            hide_axes: false,
            hide_x_axis: false,
            hide_y_axis: false,
            hide_grid: false,
            hide_null_from_legend: false,
            graph_only: false,
            unique_legend: false,
            draw_null_as_zero: false,
            connected_limit: None,
            unit_system: axis::unit_system("si").unwrap_or(&[]),
            binary: false,
            log_base: None,
            left_width: None,
            right_width: None,
            left_color: None,
            right_color: None,
            left_dashed: None,
            right_dashed: None,
            min_x_step: 1.0,
            x_format: None,
        }
    }
}

/// Longest title, vertical title or x label format, in characters.
pub const MAX_TEXT_CHARS: usize = 1000;

/// The graph parameters `GraphParams::parse` reads (for the hostile suite and docs).
pub const PARAMS: &[&str] = &[
    "width",
    "height",
    "margin",
    "bgcolor",
    "fgcolor",
    "majorGridLineColor",
    "minorGridLineColor",
    "colorList",
    "fontSize",
    "fontName",
    "fontBold",
    "fontItalic",
    "template",
    "title",
    "vtitle",
    "vtitleRight",
    "yMin",
    "yMax",
    "min",
    "max",
    "yLimit",
    "yStep",
    "yMinLeft",
    "yMaxLeft",
    "yLimitLeft",
    "yStepLeft",
    "yMinRight",
    "yMaxRight",
    "yLimitRight",
    "yStepRight",
    "yAxisSide",
    "yDivisors",
    "minorY",
    "lineMode",
    "lineWidth",
    "thickness",
    "areaMode",
    "areaAlpha",
    "hideLegend",
    "hideAxes",
    "hideXAxis",
    "hideYAxis",
    "hideGrid",
    "hideNullFromLegend",
    "graphOnly",
    "uniqueLegend",
    "drawNullAsZero",
    "connectedLimit",
    "yUnitSystem",
    "logBase",
    "leftWidth",
    "rightWidth",
    "leftColor",
    "rightColor",
    "leftDashed",
    "rightDashed",
    "minXStep",
    "xFormat",
    "graphType",
];

fn err(param: &str, message: impl Into<String>) -> ParamError {
    ParamError {
        param: param.to_string(),
        message: message.into(),
    }
}

/// A value as graphite-web coerces it.
enum Py<'a> {
    Num(f64),
    Bool(bool),
    Str(&'a str),
}

fn coerce<'a>(v: &'a str, colourish: bool) -> Option<Py<'a>> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let unsigned = v.strip_prefix('-').unwrap_or(v);
    if !colourish && digits(unsigned) {
        return Some(Py::Num(v.parse().unwrap_or(f64::INFINITY)));
    }
    if v.contains('.') && digits(&unsigned.replacen('.', "", 1)) {
        return v.parse().ok().map(Py::Num);
    }
    match v.to_ascii_lowercase().as_str() {
        "true" => Some(Py::Bool(true)),
        "false" => Some(Py::Bool(false)),
        "default" | "" => None,
        _ => Some(Py::Str(v)),
    }
}

impl GraphParams {
    /// Reads the parameters `get` returns (the last value of a repeated one).
    pub fn parse<'a>(
        get: impl Fn(&str) -> Option<&'a str>,
        limits: PictureLimits,
    ) -> Result<GraphParams, ParamError> {
        let mut g = GraphParams::default();
        let val = |name: &str| {
            get(name).and_then(|v| coerce(v, name.to_ascii_lowercase().contains("color")))
        };
        let num = |name: &str| -> Result<Option<f64>, ParamError> {
            match val(name) {
                None => Ok(None),
                Some(Py::Num(n)) if n.is_finite() => Ok(Some(n)),
                Some(Py::Num(_)) => Err(err(name, "the number is too large")),
                Some(Py::Str(s)) => {
                    // graphite-web's own values are Python numbers; accept the usual spellings.
                    match s.trim().parse::<f64>() {
                        Ok(n) if n.is_finite() => Ok(Some(n)),
                        _ => Err(err(name, format!("{s:?} is not a number"))),
                    }
                }
                Some(Py::Bool(_)) => Err(err(name, "expected a number, not true/false")),
            }
        };
        let flag = |name: &str| -> Option<bool> {
            val(name).map(|v| match v {
                Py::Num(n) => n != 0.0,
                Py::Bool(b) => b,
                Py::Str(s) => !s.is_empty(),
            })
        };
        let colour = |name: &str| -> Result<Option<Rgba>, ParamError> {
            match get(name).filter(|v| !v.is_empty() && *v != "default") {
                None => Ok(None),
                Some(v) => color::parse(v).map(Some).map_err(|m| err(name, m)),
            }
        };
        let text = |name: &str| -> Result<String, ParamError> {
            let t = get(name).unwrap_or_default();
            if t.chars().count() > limits.max_text_chars {
                return Err(err(
                    name,
                    format!(
                        "longer than {} characters (the limit is max_picture_text_chars)",
                        limits.max_text_chars
                    ),
                ));
            }
            Ok(if t == "default" {
                String::new()
            } else {
                t.to_string()
            })
        };
        let y_max = |name: &str| -> Result<Option<YMax>, ParamError> {
            if get(name) == Some("max") {
                return Ok(Some(YMax::DataMax));
            }
            Ok(num(name)?.map(YMax::Value))
        };
        let positive = |name: &str, most: f64| -> Result<Option<f64>, ParamError> {
            match num(name)? {
                Some(n) if n >= 0.0 && n <= most => Ok(Some(n)),
                Some(n) => Err(err(name, format!("{n} is outside 0..{most}"))),
                None => Ok(None),
            }
        };

        if let Some(t) = get("graphType").filter(|t| !t.is_empty() && *t != "line") {
            return Err(err(
                "graphType",
                format!("{t:?}: carbide draws line graphs only (graphType=line)"),
            ));
        }
        if let Some(w) = num("width")? {
            g.width = side("width", w, limits)?;
        }
        if let Some(h) = num("height")? {
            g.height = side("height", h, limits)?;
        }
        let pixels = u64::from(g.width) * u64::from(g.height);
        if pixels > limits.max_pixels {
            return Err(err(
                "width",
                format!(
                    "{}x{} is {pixels} pixels, more than the limit of {} (the limit is \
                     max_picture_pixels)",
                    g.width, g.height, limits.max_pixels
                ),
            ));
        }
        if let Some(m) = num("margin")? {
            // graphite-web puts a negative margin back to 10.
            g.margin = if m < 0.0 {
                10.0
            } else {
                m.min(f64::from(limits.max_side))
            };
        }
        if let Some(c) = colour("bgcolor")? {
            g.background = c;
        }
        if let Some(c) = colour("fgcolor")? {
            g.foreground = c;
        }
        if let Some(c) = colour("majorGridLineColor")? {
            g.major_grid = c;
        }
        if let Some(c) = colour("minorGridLineColor")? {
            g.minor_grid = c;
        }
        if let Some(list) = get("colorList").filter(|v| !v.is_empty() && *v != "default") {
            let names: Vec<&str> = list.split(',').collect();
            if names.len() > 1000 {
                return Err(err("colorList", "more than 1000 colours"));
            }
            g.colors = names
                .iter()
                .map(|c| color::parse(c.trim()).map_err(|m| err("colorList", m)))
                .collect::<Result<_, _>>()?;
        }
        if let Some(s) = num("fontSize")? {
            if !(s > 0.0 && s <= 200.0) {
                return Err(err("fontSize", format!("{s} is outside 1..200")));
            }
            // graphite-web takes int(fontSize).
            g.font_size = s.trunc().max(1.0);
        }
        let _ = (
            flag("fontBold"),
            flag("fontItalic"),
            get("fontName"),
            get("template"),
        );
        g.title = text("title")?;
        g.vtitle = text("vtitle")?;
        g.vtitle_right = text("vtitleRight")?;
        g.y_min = num("yMin")?.or(num("min")?);
        g.y_max = match y_max("yMax")? {
            Some(m) => Some(m),
            None => y_max("max")?,
        };
        g.y_limit = num("yLimit")?;
        g.y_step = steps("yStep", num("yStep")?)?;
        g.y_min_left = num("yMinLeft")?;
        g.y_max_left = y_max("yMaxLeft")?;
        g.y_limit_left = num("yLimitLeft")?;
        g.y_step_left = steps("yStepLeft", num("yStepLeft")?)?;
        g.y_min_right = num("yMinRight")?;
        g.y_max_right = y_max("yMaxRight")?;
        g.y_limit_right = num("yLimitRight")?;
        g.y_step_right = steps("yStepRight", num("yStepRight")?)?;
        g.y_axis_right = match get("yAxisSide").filter(|v| !v.is_empty() && *v != "default") {
            None | Some("left") => false,
            Some("right") => true,
            Some(v) => return Err(err("yAxisSide", format!("{v:?}: use left or right"))),
        };
        if let Some(d) = get("yDivisors").filter(|v| !v.is_empty()) {
            let divisors: Result<Vec<u32>, _> = d
                .split(',')
                .map(|x| {
                    x.trim()
                        .parse::<u32>()
                        .ok()
                        .filter(|n| (1..=100).contains(n))
                })
                .map(|x| x.ok_or(()))
                .collect();
            match divisors {
                Ok(v) if !v.is_empty() && v.len() <= 20 => g.y_divisors = v,
                _ => {
                    return Err(err(
                        "yDivisors",
                        "use up to 20 comma-separated whole numbers from 1 to 100 (default 4,5,6)",
                    ))
                }
            }
        }
        if let Some(m) = positive("minorY", 100.0)? {
            g.minor_y = m as u32;
        }
        g.line_mode = match get("lineMode").map(str::to_ascii_lowercase).as_deref() {
            None | Some("") | Some("default") | Some("slope") => LineMode::Slope,
            Some("staircase") => LineMode::Staircase,
            Some("connected") => LineMode::Connected,
            Some(v) => {
                return Err(err(
                    "lineMode",
                    format!("{v:?}: use slope, staircase or connected"),
                ))
            }
        };
        if let Some(w) = positive("lineWidth", 100.0)?.or(positive("thickness", 100.0)?) {
            g.line_width = w;
        }
        g.area_mode = match get("areaMode").map(str::to_ascii_lowercase).as_deref() {
            None | Some("") | Some("default") | Some("none") => AreaMode::None,
            Some("first") => AreaMode::First,
            Some("all") => AreaMode::All,
            Some("stacked") => AreaMode::Stacked,
            Some(v) => {
                return Err(err(
                    "areaMode",
                    format!("{v:?}: use none, first, all or stacked"),
                ))
            }
        };
        g.area_alpha = match val("areaAlpha") {
            None => None,
            Some(Py::Num(a)) if (0.0..=1.0).contains(&a) => Some(a),
            Some(Py::Bool(false)) => None,
            _ => return Err(err("areaAlpha", "use a number from 0 to 1")),
        };
        g.hide_legend = flag("hideLegend");
        g.hide_axes = flag("hideAxes").unwrap_or(false);
        g.hide_x_axis = flag("hideXAxis").unwrap_or(false);
        g.hide_y_axis = flag("hideYAxis").unwrap_or(false);
        g.hide_grid = flag("hideGrid").unwrap_or(false);
        g.hide_null_from_legend = flag("hideNullFromLegend").unwrap_or(false);
        g.graph_only = flag("graphOnly").unwrap_or(false);
        g.unique_legend = flag("uniqueLegend").unwrap_or(false);
        g.draw_null_as_zero = flag("drawNullAsZero").unwrap_or(false);
        g.connected_limit = positive("connectedLimit", f64::MAX)?;
        if let Some(u) = get("yUnitSystem").filter(|v| !v.is_empty() && *v != "default") {
            let u = u.to_ascii_lowercase();
            g.unit_system = axis::unit_system(&u).ok_or_else(|| {
                err(
                    "yUnitSystem",
                    format!("{u:?}: use si, binary, sec, msec or none"),
                )
            })?;
            g.binary = u == "binary";
        }
        g.log_base = match get("logBase").filter(|v| !v.is_empty() && *v != "default") {
            None => None,
            Some("e") => Some(std::f64::consts::E),
            Some(_) => match num("logBase")? {
                // graphite-web ignores a base below one.
                Some(b) if b < 1.0 => None,
                Some(b) if b > 1.0 => Some(b),
                _ => return Err(err("logBase", "use e or a number greater than one")),
            },
        };
        g.left_width = positive("leftWidth", 100.0)?;
        g.right_width = positive("rightWidth", 100.0)?;
        g.left_color = colour("leftColor")?;
        g.right_color = colour("rightColor")?;
        g.left_dashed = dash(&val("leftDashed"), "leftDashed")?;
        g.right_dashed = dash(&val("rightDashed"), "rightDashed")?;
        if let Some(s) = num("minXStep")? {
            if !(s > 0.0 && s <= f64::from(limits.max_side)) {
                return Err(err("minXStep", "use a positive number of pixels"));
            }
            g.min_x_step = s;
        }
        g.x_format = match get("xFormat").filter(|v| !v.is_empty()) {
            None => None,
            Some(f) if f.len() > 200 => return Err(err("xFormat", "longer than 200 bytes")),
            Some(f) => {
                if axis::time_label(0, f, &jiff::tz::TimeZone::UTC).is_empty() && !f.is_empty() {
                    return Err(err(
                        "xFormat",
                        format!("{f:?} is not a strftime format carbide can write"),
                    ));
                }
                Some(f.to_string())
            }
        };
        Ok(g)
    }
}

fn side(name: &str, v: f64, limits: PictureLimits) -> Result<u32, ParamError> {
    // graphite-web takes int(value).
    let v = v.trunc();
    if v < 1.0 {
        return Err(err(name, "must be at least 1 pixel"));
    }
    if v > f64::from(limits.max_side) {
        return Err(err(
            name,
            format!(
                "{v} pixels is more than the limit of {} (the limit is max_picture_side)",
                limits.max_side
            ),
        ));
    }
    Ok(v as u32)
}

fn steps(name: &str, v: Option<f64>) -> Result<Option<f64>, ParamError> {
    match v {
        Some(s) if s <= 0.0 => Err(err(name, "must be greater than zero")),
        v => Ok(v),
    }
}

fn dash(v: &Option<Py<'_>>, name: &str) -> Result<Option<f64>, ParamError> {
    match v {
        None | Some(Py::Bool(false)) => Ok(None),
        Some(Py::Bool(true)) => Ok(Some(1.0)),
        Some(Py::Num(n)) if *n > 0.0 && *n <= 1000.0 => Ok(Some(*n)),
        Some(Py::Num(n)) if *n == 0.0 => Ok(None),
        _ => Err(err(name, "use a dash length in pixels (1 to 1000)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &[(&str, &str)]) -> Result<GraphParams, ParamError> {
        GraphParams::parse(
            |k| q.iter().rev().find(|(n, _)| *n == k).map(|(_, v)| *v),
            PictureLimits::default(),
        )
    }

    #[test]
    fn defaults_are_graphite_webs() {
        let g = parse(&[]).unwrap();
        assert_eq!((g.width, g.height), (330, 250));
        assert_eq!(g.colors[0], Rgba::rgb(100, 100, 255));
        assert_eq!(g.line_width, 1.2);
        assert_eq!(g.hide_legend, None);
    }

    #[test]
    fn values_and_flags_read_like_graphite_web() {
        let g = parse(&[
            ("width", "800"),
            ("height", "600.7"),
            ("hideLegend", "false"),
            ("hideAxes", "1"),
            ("hideGrid", "0"),
            ("yMax", "max"),
            ("yMin", "-5"),
            ("bgcolor", "000000"),
            ("colorList", "red,00ff00"),
            ("lineMode", "staircase"),
            ("areaMode", "stacked"),
            ("yUnitSystem", "binary"),
            ("logBase", "e"),
            ("title", "default"),
        ])
        .unwrap();
        assert_eq!((g.width, g.height), (800, 600));
        assert_eq!(g.hide_legend, Some(false));
        assert!(g.hide_axes && !g.hide_grid);
        assert_eq!(g.y_max, Some(YMax::DataMax));
        assert_eq!(g.y_min, Some(-5.0));
        assert_eq!(g.background, Rgba::rgb(0, 0, 0));
        assert_eq!(g.colors, [Rgba::rgb(200, 0, 50), Rgba::rgb(0, 255, 0)]);
        assert_eq!(g.line_mode, LineMode::Staircase);
        assert_eq!(g.area_mode, AreaMode::Stacked);
        assert!(g.binary);
        assert!(g.log_base.is_some());
        assert_eq!(g.title, "");
    }

    #[test]
    fn bad_values_name_their_parameter() {
        for (k, v) in [
            ("width", "0"),
            ("width", "100000"),
            ("height", "abc"),
            ("bgcolor", "notacolour"),
            ("colorList", "red,nope"),
            ("lineMode", "curvy"),
            ("areaMode", "filled"),
            ("areaAlpha", "2"),
            ("yUnitSystem", "metric"),
            ("logBase", "1"),
            ("yStep", "0"),
            ("fontSize", "5000"),
            ("yAxisSide", "top"),
            ("yDivisors", "0"),
            ("graphType", "pie"),
            ("lineWidth", "-1"),
        ] {
            let e = parse(&[(k, v)]).unwrap_err();
            assert_eq!(e.param, k, "{k}={v}");
        }
        let e = parse(&[("width", "8000"), ("height", "8000")]).unwrap_err();
        assert!(e.message.contains("max_picture_pixels"), "{e}");
        let long = "x".repeat(MAX_TEXT_CHARS + 1);
        assert_eq!(parse(&[("title", &long)]).unwrap_err().param, "title");
    }
}
