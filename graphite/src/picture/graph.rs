//! The layout of a line graph, following graphite-web 1.1.10's `LineGraph.drawGraph`: the
//! background, a title, vertical titles, the legend under the graph (two columns when two
//! names fit side by side, boxes in the series' colours), x labels, y labels that push the
//! drawing area right, the grid (major lines at y labels, one minor line between, vertical
//! lines from the x table), then the series: stacked areas first, then lines, each series
//! consolidated to about one point per pixel.

use super::axis::{self, Tics, YMax};
use super::font;
use super::params::{AreaMode, GraphParams, LineMode};
use super::scene::{Op, Path, Rgba, Scene, Text};
use super::{color, PictureError};
use crate::attime::TimeZone;
use crate::series::{Draw, Series};

/// More series than this hide the legend unless `hideLegend` says otherwise.
const LEGEND_MAX_ITEMS: usize = 10;

#[derive(Debug, Clone, Copy)]
struct Area {
    xmin: f64,
    xmax: f64,
    ymin: f64,
    ymax: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Align {
    Left,
    Center,
    Right,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum VAlign {
    Top,
    Middle,
    Baseline,
}

/// One series being drawn.
struct Line {
    series: Series,
    name: String,
    color: Rgba,
    draw: Draw,
    /// Consolidated values (`vpp` raw points each).
    values: Vec<Option<f64>>,
    vpp: usize,
    x_step: f64,
}

impl Line {
    fn consolidate(&mut self, vpp: usize) {
        let vpp = vpp.max(1);
        if vpp != self.vpp {
            self.vpp = vpp;
            self.values = self.series.consolidated(vpp);
        }
    }
}

/// A y axis once laid out.
#[derive(Debug, Clone, Default)]
struct YAxis {
    top: f64,
    bottom: f64,
    label_values: Vec<f64>,
    labels: Vec<String>,
    label_width: f64,
}

struct Graph<'a> {
    p: &'a GraphParams,
    width: f64,
    height: f64,
    margin: f64,
    area: Area,
    ops: Vec<Op>,
    font_size: f64,
    line_width: f64,
    line_mode: LineMode,
    second_y_axis: bool,
    log_base: Option<f64>,
}

impl Graph<'_> {
    #[allow(clippy::too_many_arguments)]
    fn text(
        &mut self,
        s: &str,
        x: f64,
        y: f64,
        align: Align,
        valign: VAlign,
        rotate: f64,
        color: Rgba,
    ) {
        let size = self.font_size;
        let e = font::extents(size);
        let h = match align {
            Align::Left => 0.0,
            Align::Center => font::width(s, size) / 2.0,
            Align::Right => font::width(s, size),
        };
        let v = match valign {
            VAlign::Top => e.ascent,
            VAlign::Middle => e.height / 2.0 - e.descent,
            VAlign::Baseline => 0.0,
        };
        let a = rotate.to_radians();
        let ox = x - a.sin() * v - a.cos() * h;
        let oy = y + a.cos() * v - a.sin() * h;
        self.ops.push(Op::Text(Text {
            text: s.to_string(),
            x: ox,
            y: oy,
            size,
            rotate,
            color,
        }));
    }

    fn fill_rect(&mut self, x: f64, y: f64, w: f64, h: f64, c: Rgba) {
        let mut p = Path::new();
        p.rect(x, y, w, h);
        self.ops.push(Op::Fill(p, c));
    }

    /// graphite-web's unfilled rectangle: inset by half the (1 px) line.
    fn stroke_rect(&mut self, x: f64, y: f64, w: f64, h: f64, c: Rgba) {
        let mut p = Path::new();
        p.rect(x + 0.5, y + 0.5, w - 0.5, h - 0.5);
        self.ops.push(Op::Stroke {
            path: p,
            color: c,
            width: 1.0,
            dash: None,
        });
    }

    fn line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, width: f64, c: Rgba) {
        let mut p = Path::new();
        p.move_to(x1, y1);
        p.line_to(x2, y2);
        self.ops.push(Op::Stroke {
            path: p,
            color: c,
            width,
            dash: None,
        });
    }

    fn y_coord(&self, value: f64, axis: &YAxis) -> Option<f64> {
        let (lowest, highest) = if axis.label_values.is_empty() {
            (axis.bottom, axis.top)
        } else {
            (
                axis.label_values
                    .iter()
                    .copied()
                    .fold(f64::INFINITY, f64::min),
                axis.label_values
                    .iter()
                    .copied()
                    .fold(f64::NEG_INFINITY, f64::max),
            )
        };
        let pixels = self.area.ymax - self.area.ymin;
        let (rel, range) = match self.log_base {
            Some(b) => {
                if value <= 0.0 {
                    return None;
                }
                (value.log(b) - lowest.log(b), highest.log(b) - lowest.log(b))
            }
            None => (value - lowest, highest - lowest),
        };
        if range == 0.0 || !range.is_finite() {
            return Some(self.area.ymax);
        }
        Some(self.area.ymax - pixels / range * rel)
    }
}

fn py_floor_log(x: f64) -> f64 {
    x.ln().floor()
}

/// The minimum and maximum of what will be drawn (graphite-web's `dataLimits`).
fn data_limits(lines: &[&Line], null_as_zero: bool, stacked: bool) -> (f64, f64) {
    let ok = |v: &Option<f64>| v.filter(|x| x.is_finite());
    let missing = lines.iter().any(|l| l.values.iter().any(Option::is_none));
    let finite: Vec<&&Line> = lines.iter().filter(|l| !l.draw.draw_as_infinite).collect();
    let mut min = f64::INFINITY;
    for l in &finite {
        for v in l.values.iter().filter_map(ok) {
            min = min.min(v);
        }
    }
    if min == f64::INFINITY {
        return (0.0, 1.0);
    }
    if min > 0.0 && null_as_zero && missing {
        min = 0.0;
    }
    let mut max = f64::NEG_INFINITY;
    if stacked {
        let len = finite.iter().map(|l| l.values.len()).min().unwrap_or(0);
        for i in 0..len {
            let sum: f64 = finite.iter().filter_map(|l| ok(&l.values[i])).sum();
            max = max.max(sum);
        }
    } else {
        for l in &finite {
            for v in l.values.iter().filter_map(ok) {
                max = max.max(v);
            }
        }
    }
    if max == f64::NEG_INFINITY {
        max = min;
    }
    if max < 0.0 && null_as_zero && missing {
        max = 0.0;
    }
    (min, max)
}

/// Lays out and draws `series`.
pub fn draw(
    series: Vec<Series>,
    p: &GraphParams,
    tz: &TimeZone,
    stop: &dyn Fn() -> bool,
) -> Result<Scene, PictureError> {
    let graph_error = |e: axis::AxisError| PictureError::Graph(e.0);
    let mut g = Graph {
        p,
        width: f64::from(p.width),
        height: f64::from(p.height),
        margin: p.margin,
        area: Area {
            xmin: p.margin + 10.0,
            xmax: f64::from(p.width) - p.margin,
            ymin: p.margin,
            ymax: f64::from(p.height) - p.margin,
        },
        ops: Vec::new(),
        font_size: p.font_size,
        line_width: p.line_width,
        line_mode: p.line_mode,
        second_y_axis: false,
        log_base: p.log_base,
    };
    g.fill_rect(0.0, 0.0, g.width, g.height, p.background);
    let scene = |g: Graph<'_>| Scene {
        width: p.width,
        height: p.height,
        ops: g.ops,
    };

    let start_time = series.iter().map(|s| s.start).min();
    let end_time = series.iter().map(|s| s.end).max();
    let range = match (start_time, end_time) {
        (Some(a), Some(b)) => b - a,
        _ => 0,
    };
    if range == 0 {
        g.font_size = (g.width * g.height).ln().max(1.0);
        let red = color::parse("red").unwrap_or(Rgba::rgb(200, 0, 50));
        g.text(
            "No Data",
            g.width / 2.0,
            g.height / 2.0,
            Align::Center,
            VAlign::Top,
            0.0,
            red,
        );
        return Ok(scene(g));
    }

    // Colours: the series' own, then the left/right overrides, then the colour list in turn.
    let mut lines: Vec<Line> = Vec::with_capacity(series.len());
    let mut next_color = 0usize;
    g.second_y_axis = series.iter().any(|s| s.draw.second_y_axis);
    for s in series {
        let mut d = s.draw.clone();
        let mut c = match d.color.as_deref() {
            Some(name) => Some(
                color::parse(name)
                    .map_err(|m| PictureError::Graph(format!("series {}: {m}", s.name)))?,
            ),
            None => None,
        };
        if g.second_y_axis {
            let (w, dash, col) = if d.second_y_axis {
                (p.right_width, p.right_dashed, p.right_color)
            } else {
                (p.left_width, p.left_dashed, p.left_color)
            };
            if w.is_some() {
                d.line_width = w;
            }
            if dash.is_some() {
                d.dashed = dash;
            }
            if col.is_some() {
                c = col;
            }
        }
        let color = c.unwrap_or_else(|| {
            let c = p.colors.get(next_color % p.colors.len().max(1)).copied();
            next_color += 1;
            c.unwrap_or(Rgba::rgb(0, 0, 0))
        });
        lines.push(Line {
            name: s.name.clone(),
            values: s.values.clone(),
            series: s,
            color,
            draw: d,
            vpp: 1,
            x_step: 0.0,
        });
    }
    if g.line_mode == LineMode::Slope && lines.iter().any(|l| l.series.values.len() == 1) {
        g.line_mode = LineMode::Staircase;
    }

    let mut hide_legend = p.hide_legend.unwrap_or(lines.len() > LEGEND_MAX_ITEMS);
    let mut hide_axes = p.hide_axes;
    let mut hide_grid = p.hide_grid;
    let mut hide_x_axis = p.hide_x_axis;
    let mut hide_y_axis = p.hide_y_axis;
    let mut y_axis_right = p.y_axis_right;
    let mut title = p.title.as_str();
    let mut vtitle = p.vtitle.as_str();
    if p.graph_only {
        hide_legend = true;
        hide_grid = true;
        hide_axes = true;
        hide_x_axis = false;
        hide_y_axis = false;
        y_axis_right = false;
        title = "";
        vtitle = "";
        g.margin = 0.0;
        g.area = Area {
            xmin: 0.0,
            xmax: g.width,
            ymin: 0.0,
            ymax: g.height,
        };
    }
    if g.second_y_axis {
        y_axis_right = false;
    }
    // graphite-web measures the right-hand y labels from the picture's right edge.
    if y_axis_right {
        g.margin = g.width;
    }

    // Titles, in the title font.
    let base_size = p.font_size;
    g.font_size = base_size + py_floor_log(base_size);
    let fg = p.foreground;
    if !title.is_empty() {
        g.ops.push(Op::Part("title"));
        let mut y = g.area.ymin;
        let lh = font::extents(g.font_size).height;
        for line in title.split('\n') {
            g.text(line, g.width / 2.0, y, Align::Center, VAlign::Top, 0.0, fg);
            y += lh;
        }
        g.area.ymin = if y_axis_right { y } else { y + g.margin };
    }
    if !vtitle.is_empty() {
        g.ops.push(Op::Part("vtitle"));
        let lh = font::extents(g.font_size).height;
        let mut x = g.area.xmin + lh;
        for line in vtitle.split('\n') {
            g.text(
                line,
                x,
                g.height / 2.0,
                Align::Center,
                VAlign::Baseline,
                270.0,
                fg,
            );
            x += lh;
        }
        g.area.xmin = x + g.margin + lh;
    }
    if g.second_y_axis && !p.vtitle_right.is_empty() {
        g.ops.push(Op::Part("vtitleRight"));
        let lh = font::extents(g.font_size).height;
        let mut x = g.area.xmax - lh;
        for line in p.vtitle_right.split('\n') {
            g.text(
                line,
                x,
                g.height / 2.0,
                Align::Center,
                VAlign::Baseline,
                90.0,
                fg,
            );
            x -= lh;
        }
        g.area.xmax = x - g.margin - lh;
    }
    g.font_size = base_size;

    if !hide_legend {
        let mut elements: Vec<(String, Rgba, bool)> = Vec::new();
        for l in &lines {
            if l.name.is_empty() {
                continue;
            }
            if p.hide_null_from_legend && l.series.values.iter().all(Option::is_none) {
                continue;
            }
            if p.unique_legend && elements.iter().any(|(n, _, _)| *n == l.name) {
                continue;
            }
            elements.push((l.name.clone(), l.color, l.draw.second_y_axis));
        }
        if !elements.is_empty() {
            draw_legend(&mut g, &elements);
        }
    }
    if stop() {
        return Err(PictureError::Stopped);
    }

    if !hide_axes && !hide_x_axis {
        g.area.ymax -= font::extents(g.font_size).ascent * 2.0;
    }
    let start_time = start_time.unwrap_or(0);
    let end_time = if g.line_mode == LineMode::Staircase {
        end_time.unwrap_or(0)
    } else {
        lines
            .iter()
            .map(|l| l.series.end - l.series.step)
            .max()
            .unwrap_or(0)
    };
    let time_range = (end_time - start_time).max(1);

    let consolidate = |g: &Graph<'_>, lines: &mut [Line]| -> f64 {
        let pixels = g.area.xmax - g.area.xmin - (g.line_width + 1.0);
        for l in lines.iter_mut() {
            let step = l.series.step.max(1) as f64;
            let points = time_range as f64 / step;
            let best = pixels / points;
            if best < p.min_x_step {
                let drawable = (pixels / p.min_x_step).floor().max(1.0);
                let ppp = (points / drawable).ceil().max(1.0);
                l.consolidate(ppp as usize);
                l.x_step = pixels * ppp / points;
            } else {
                l.consolidate(1);
                l.x_step = best;
            }
        }
        pixels
    };
    let mut graph_width = consolidate(&g, &mut lines);

    g.ops.push(Op::Part("axes"));
    let stacked_axis = p.area_mode == AreaMode::Stacked;
    let setup = |g: &mut Graph<'_>, lines: &[Line]| -> Result<(YAxis, YAxis), PictureError> {
        let left: Vec<&Line> = lines.iter().filter(|l| !l.draw.second_y_axis).collect();
        let right: Vec<&Line> = lines.iter().filter(|l| l.draw.second_y_axis).collect();
        let axis_of = |g: &Graph<'_>,
                       data: &[&Line],
                       min: Option<f64>,
                       max: Option<YMax>,
                       limit: Option<f64>,
                       step: Option<f64>,
                       labels: bool|
         -> Result<YAxis, PictureError> {
            let (lo, hi) = data_limits(data, p.draw_null_as_zero, stacked_axis);
            let mut t = Tics::new(lo, hi, p.unit_system, g.log_base).map_err(graph_error)?;
            t.apply(min, max, limit).map_err(graph_error)?;
            match step {
                Some(s) => t.set_step(s).map_err(graph_error)?,
                None => t.choose_step(&p.y_divisors, p.binary),
            }
            t.choose_limits().map_err(graph_error)?;
            let mut a = YAxis {
                top: t.top,
                bottom: t.bottom,
                ..YAxis::default()
            };
            if labels {
                a.label_values = t.label_values().map_err(graph_error)?;
                a.labels = a.label_values.iter().map(|v| t.label(*v)).collect();
                a.label_width = a
                    .labels
                    .iter()
                    .map(|l| font::width(l, g.font_size))
                    .fold(0.0, f64::max);
            }
            Ok(a)
        };
        if g.second_y_axis {
            let l = axis_of(
                g,
                &left,
                p.y_min_left,
                p.y_max_left,
                p.y_limit_left,
                p.y_step_left,
                true,
            )?;
            let r = axis_of(
                g,
                &right,
                p.y_min_right,
                p.y_max_right,
                p.y_limit_right,
                p.y_step_right,
                true,
            )?;
            let x_min = g.margin + l.label_width * 1.02;
            if g.area.xmin < x_min {
                g.area.xmin = x_min;
            }
            let x_max = g.width - r.label_width * 1.02;
            if g.area.xmax >= x_max {
                g.area.xmax = x_max;
            }
            Ok((l, r))
        } else {
            let all: Vec<&Line> = lines.iter().collect();
            let a = axis_of(g, &all, p.y_min, p.y_max, p.y_limit, p.y_step, !hide_axes)?;
            if !hide_axes && !hide_y_axis {
                if !y_axis_right {
                    let x_min = g.margin + a.label_width * 1.02;
                    if g.area.xmin < x_min {
                        g.area.xmin = x_min;
                    }
                } else {
                    let x_max = g.margin - a.label_width * 1.02;
                    if g.area.xmax >= x_max {
                        g.area.xmax = x_max;
                    }
                }
            }
            Ok((a, YAxis::default()))
        }
    };
    let (mut cur_min, mut cur_max) = (g.area.xmin, g.area.xmax);
    let (mut left, mut right) = setup(&mut g, &lines)?;
    // Wider labels narrow the area, which may change consolidation and so the labels.
    for _ in 0..8 {
        if cur_min == g.area.xmin && cur_max == g.area.xmax {
            break;
        }
        graph_width = consolidate(&g, &mut lines);
        cur_min = g.area.xmin;
        cur_max = g.area.xmax;
        (left, right) = setup(&mut g, &lines)?;
    }
    if stop() {
        return Err(PictureError::Stopped);
    }

    // The x axis.
    let jtz = tz.as_jiff();
    let seconds_per_pixel = time_range as f64 / graph_width.max(1.0);
    let x_scale = graph_width.max(1.0) / time_range as f64;
    let xconf = axis::x_conf(seconds_per_pixel, time_range);
    let x_at = |g: &Graph<'_>, t: i64| g.area.xmin + (t - start_time) as f64 * x_scale;

    if !hide_axes {
        // y labels
        if !hide_y_axis {
            if !g.second_y_axis {
                for (v, label) in left.label_values.clone().iter().zip(left.labels.clone()) {
                    let x = if y_axis_right {
                        g.area.xmax + left.label_width * 0.02
                    } else {
                        g.area.xmin - left.label_width * 0.02
                    };
                    let Some(y) = g.y_coord(*v, &left) else {
                        continue;
                    };
                    let align = if y_axis_right {
                        Align::Left
                    } else {
                        Align::Right
                    };
                    g.text(&label, x, y.max(0.0), align, VAlign::Middle, 0.0, fg);
                }
            } else {
                for (v, label) in left.label_values.clone().iter().zip(left.labels.clone()) {
                    let x = g.area.xmin - left.label_width * 0.02;
                    let Some(y) = g.y_coord(*v, &left) else {
                        continue;
                    };
                    g.text(&label, x, y.max(0.0), Align::Right, VAlign::Middle, 0.0, fg);
                }
                for (v, label) in right.label_values.clone().iter().zip(right.labels.clone()) {
                    let x = g.area.xmax + right.label_width * 0.02 + 3.0;
                    let Some(y) = g.y_coord(*v, &right) else {
                        continue;
                    };
                    g.text(&label, x, y.max(0.0), Align::Left, VAlign::Middle, 0.0, fg);
                }
            }
        }
        if !hide_x_axis {
            let (mut t, delta) = axis::x_times(start_time, xconf.label_unit, xconf.label_step, jtz);
            let format = p.x_format.as_deref().unwrap_or(xconf.format);
            let y = g.area.ymax + font::extents(g.font_size).ascent;
            let mut n = 0;
            while t < end_time && n < 10_000 {
                let label = axis::time_label(t, format, jtz);
                let x = x_at(&g, t);
                g.text(&label, x, y, Align::Center, VAlign::Top, 0.0, fg);
                t += delta;
                n += 1;
            }
        }
        if !hide_grid {
            g.ops.push(Op::Part("grid"));
            draw_grid(&mut g, &left, xconf, start_time, end_time, x_scale, jtz);
        }
    }
    if stop() {
        return Err(PictureError::Stopped);
    }
    g.ops.push(Op::Part("lines"));
    draw_lines(&mut g, lines, &left, &right, start_time, stop)?;
    Ok(scene(g))
}

fn draw_legend(g: &mut Graph<'_>, elements: &[(String, Rgba, bool)]) {
    g.ops.push(Op::Part("legend"));
    let size = g.font_size;
    let fg = g.p.foreground;
    let darkgrey = Rgba::rgb(111, 111, 111);
    let padding = 5.0;
    let longest = elements
        .iter()
        .map(|e| e.0.as_str())
        .max_by_key(|n| n.chars().count())
        .unwrap_or("");
    let e = font::extents(size);
    let test_box = e.height - 1.0;
    let test_width =
        font::width(&format!("{longest} {longest}"), size) + 2.0 * (test_box + padding);
    let right_side_labels = test_width + 50.0 < g.width;
    let box_size = e.height - 1.0;
    let line_height = e.height + 1.0;
    let label_width = font::width(longest, size) + 2.0 * (box_size + padding);
    let swatch = |g: &mut Graph<'_>, x: f64, y: f64, c: Rgba| {
        g.fill_rect(x, y, box_size, box_size, c);
        g.stroke_rect(x, y, box_size, box_size, darkgrey);
    };
    if g.second_y_axis && right_side_labels {
        let columns = ((g.width - g.area.xmin) / label_width).floor().max(1.0);
        let n_right = elements.iter().filter(|e| e.2).count();
        let lines = (elements.len() - n_right).max(n_right) as f64;
        let columns = (columns / 2.0).floor().max(1.0);
        let legend_height = (lines / columns).max(1.0) * line_height + padding;
        g.area.ymax -= legend_height;
        let mut x = g.area.xmin;
        let mut y = g.area.ymax + 2.0 * padding;
        let mut n = 0usize;
        let right_start = g.area.xmax - g.area.xmin;
        let mut x_right = right_start;
        let mut y_right = y;
        let mut n_right = 0usize;
        for (name, c, right) in elements {
            if *right {
                n_right += 1;
                swatch(g, x_right - padding, y_right, *c);
                g.text(
                    name,
                    x_right - box_size,
                    y_right,
                    Align::Right,
                    VAlign::Top,
                    0.0,
                    fg,
                );
                x_right -= label_width;
                if n_right as f64 % columns == 0.0 {
                    x_right = right_start;
                    y_right += line_height;
                }
            } else {
                n += 1;
                swatch(g, x, y, *c);
                g.text(
                    name,
                    x + box_size + padding,
                    y,
                    Align::Left,
                    VAlign::Top,
                    0.0,
                    fg,
                );
                x += label_width;
                if n as f64 % columns == 0.0 {
                    x = g.area.xmin;
                    y += line_height;
                }
            }
        }
    } else {
        let columns = (g.width / label_width).floor().max(1.0);
        let lines = (elements.len() as f64 / columns).ceil();
        let legend_height = lines * line_height + padding;
        g.area.ymax -= legend_height;
        let mut x = g.area.xmin;
        let mut y = g.area.ymax + 2.0 * padding;
        for (i, (name, c, right)) in elements.iter().enumerate() {
            if *right {
                swatch(g, x + label_width + padding, y, *c);
                g.text(name, x + label_width, y, Align::Right, VAlign::Top, 0.0, fg);
            } else {
                swatch(g, x, y, *c);
                g.text(
                    name,
                    x + box_size + padding,
                    y,
                    Align::Left,
                    VAlign::Top,
                    0.0,
                    fg,
                );
            }
            x += label_width;
            if (i + 1) as f64 % columns == 0.0 {
                x = g.area.xmin;
                y += line_height;
            }
        }
    }
}

fn draw_grid(
    g: &mut Graph<'_>,
    left: &YAxis,
    xconf: &axis::XConf,
    start_time: i64,
    end_time: i64,
    x_scale: f64,
    tz: &jiff::tz::TimeZone,
) {
    let p = g.p;
    let (l, r) = (g.area.xmin, g.area.xmax);
    let labels = &left.label_values;
    let y_top_factor = g.log_base.map_or(1.0, |b| b * b);
    for (i, v) in labels.iter().enumerate() {
        let Some(y) = g.y_coord(*v, left).filter(|y| *y >= 0.0) else {
            continue;
        };
        g.line(l, y, r, y, 0.4, p.major_grid);
        if p.minor_y >= 1 && i + 1 < labels.len() {
            let (lo, hi) = if *v <= labels[i + 1] {
                (*v, labels[i + 1])
            } else {
                (labels[i + 1], *v)
            };
            let distance = (hi - lo) / f64::from(1 + p.minor_y);
            for m in 0..p.minor_y {
                let value = lo + f64::from(1 + m) * distance;
                if value >= y_top_factor * left.top {
                    continue;
                }
                let Some(y) = g.y_coord(value, left).filter(|y| *y >= 0.0) else {
                    continue;
                };
                g.line(l, y, r, y, 0.3, p.minor_grid);
            }
        }
    }
    let (top, bottom) = (g.area.ymin, g.area.ymax);
    for (unit, step, width, color) in [
        (xconf.minor_unit, xconf.minor_step, 0.25, p.minor_grid),
        (xconf.major_unit, xconf.major_step, 0.33, p.major_grid),
    ] {
        let (mut t, delta) = axis::x_times(start_time, unit, step, tz);
        let mut n = 0;
        while t < end_time && n < 10_000 {
            let x = g.area.xmin + (t - start_time) as f64 * x_scale;
            if x < g.area.xmax {
                g.line(x, bottom, x, top, width, color);
            }
            t += delta;
            n += 1;
        }
    }
    let mut borders = Path::new();
    borders.move_to(g.area.xmax, bottom);
    borders.line_to(g.area.xmax, top);
    borders.move_to(g.area.xmin, bottom);
    borders.line_to(g.area.xmin, top);
    g.ops.push(Op::Stroke {
        path: borders,
        color: p.major_grid,
        width: 0.5,
        dash: None,
    });
}

/// Fills the area under `path` down to `area_y` between `start_x` and `x`, then takes that
/// area out of the clip, so the next stacked series fills only above it.
fn fill_area_and_clip(
    g: &mut Graph<'_>,
    path: &mut Path,
    x: f64,
    start_x: f64,
    area_y: f64,
    c: Rgba,
) {
    let mut fill = std::mem::take(path);
    fill.line_to(x, area_y);
    fill.line_to(start_x, area_y);
    fill.close();
    let mut clip = Path::new();
    let a = g.area;
    clip.rect(a.xmin, a.ymin, a.xmax - a.xmin, a.ymax - a.ymin);
    clip.append(&fill);
    g.ops.push(Op::Fill(fill, c));
    g.ops.push(Op::ClipIntersect {
        path: clip,
        even_odd: true,
    });
}

fn draw_lines(
    g: &mut Graph<'_>,
    mut lines: Vec<Line>,
    left: &YAxis,
    right: &YAxis,
    start_time: i64,
    stop: &dyn Fn() -> bool,
) -> Result<(), PictureError> {
    let p = g.p;
    // Stacked series are drawn first.
    if lines.iter().any(|l| l.draw.stacked) {
        let (mut s, n): (Vec<Line>, Vec<Line>) = lines.into_iter().partition(|l| l.draw.stacked);
        s.extend(n);
        lines = s;
    }
    match p.area_mode {
        AreaMode::Stacked if !g.second_y_axis => {
            let mut total: Vec<f64> = Vec::new();
            for l in lines.iter_mut() {
                if l.draw.draw_as_infinite {
                    continue;
                }
                l.draw.stacked = true;
                for (i, v) in l.values.iter_mut().enumerate() {
                    if total.len() <= i {
                        total.push(0.0);
                    }
                    if let Some(x) = v {
                        let original = *x;
                        *x += total[i];
                        total[i] += original;
                    }
                }
            }
        }
        AreaMode::First => {
            if let Some(l) = lines.first_mut() {
                l.draw.stacked = true;
            }
        }
        AreaMode::All => {
            for l in lines.iter_mut().filter(|l| !l.draw.draw_as_infinite) {
                l.draw.stacked = true;
            }
        }
        _ => {}
    }
    if let Some(alpha) = p.area_alpha {
        let mut strokes = Vec::new();
        for l in lines.iter_mut().filter(|l| l.draw.stacked) {
            l.draw.alpha = Some(alpha);
            strokes.push(Line {
                series: l.series.clone(),
                name: l.name.clone(),
                color: l.color,
                draw: Draw {
                    second_y_axis: l.draw.second_y_axis,
                    ..Draw::default()
                },
                values: l.values.clone(),
                vpp: l.vpp,
                x_step: l.x_step,
            });
        }
        lines.extend(strokes);
    }

    let a = g.area;
    let mut plot = Path::new();
    plot.rect(a.xmin, a.ymin, a.xmax - a.xmin, a.ymax - a.ymin);
    g.ops.push(Op::ClipIntersect {
        path: plot,
        even_odd: false,
    });
    g.ops.push(Op::ClipSave);
    let mut clip_restored = false;
    for l in &lines {
        if stop() {
            return Err(PictureError::Stopped);
        }
        if !l.draw.stacked && !clip_restored {
            clip_restored = true;
            g.ops.push(Op::ClipRestore);
        }
        let width = l.draw.line_width.unwrap_or(g.line_width);
        let dash = l.draw.dashed;
        let axis = if g.second_y_axis && l.draw.second_y_axis {
            right
        } else {
            left
        };
        let missing = (l.series.start - start_time) as f64 / l.series.step.max(1) as f64;
        let start_shift = l.x_step * (missing / l.vpp as f64);
        let mut x = a.xmin + start_shift + g.line_width / 2.0;
        let mut y = a.ymin;
        let mut start_x = x;
        let color = if l.draw.invisible {
            l.color.with_alpha(0.0)
        } else {
            let alpha = l.draw.alpha.filter(|a| *a != 0.0).unwrap_or(1.0);
            // An rrggbbaa colour keeps its own alpha.
            if l.color.a < 1.0 {
                l.color
            } else {
                l.color.with_alpha(alpha)
            }
        };
        let zero_y = g.y_coord(0.0, axis).unwrap_or(a.ymax);
        let mut path = Path::new();
        let stroke = |g: &mut Graph<'_>, path: &mut Path| {
            let path = std::mem::take(path);
            if !path.is_empty() {
                g.ops.push(Op::Stroke {
                    path,
                    color,
                    width,
                    dash,
                });
            }
        };
        let mut nones = 0usize;
        for (index, v) in l.values.iter().enumerate() {
            let mut value = v.filter(|x| !x.is_nan());
            if value.is_none() && p.draw_null_as_zero {
                value = Some(0.0);
            }
            let coord = value.and_then(|v| g.y_coord(v, axis).map(|y| (v, y)));
            match coord {
                None => {
                    if nones == 0 {
                        path.line_to(x, y);
                        if l.draw.stacked {
                            fill_area_and_clip(g, &mut path, x, start_x, zero_y, color);
                        }
                    }
                    x += l.x_step;
                    nones += 1;
                }
                Some((value, ny)) => {
                    y = ny.max(0.0);
                    if l.draw.draw_as_infinite && value > 0.0 {
                        path.move_to(x, a.ymax);
                        path.line_to(x, a.ymin);
                        stroke(g, &mut path);
                        x += l.x_step;
                        continue;
                    }
                    if nones > 0 {
                        start_x = x;
                    }
                    match g.line_mode {
                        LineMode::Staircase => {
                            if nones > 0 {
                                path.move_to(x, y);
                            } else {
                                path.line_to(x, y);
                            }
                            x += l.x_step;
                            path.line_to(x, y);
                        }
                        LineMode::Slope => {
                            if nones > 0 {
                                path.move_to(x, y);
                            }
                            path.line_to(x, y);
                            x += l.x_step;
                        }
                        LineMode::Connected => {
                            let limit = p.connected_limit.unwrap_or(f64::INFINITY);
                            if nones as f64 > limit || nones == index {
                                path.move_to(x, y);
                            }
                            path.line_to(x, y);
                            x += l.x_step;
                        }
                    }
                    nones = 0;
                }
            }
        }
        if l.draw.stacked {
            let x_pos = if g.line_mode == LineMode::Staircase {
                x
            } else {
                x - l.x_step
            };
            if !path.is_empty() {
                fill_area_and_clip(g, &mut path, x_pos, start_x, zero_y, color);
            }
        } else {
            stroke(g, &mut path);
        }
    }
    if !clip_restored {
        g.ops.push(Op::ClipRestore);
    }
    Ok(())
}
