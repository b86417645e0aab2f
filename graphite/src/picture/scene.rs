//! What a graph draws, as a list of operations, and its two encoders: PNG (tiny-skia,
//! anti-aliased) and SVG (text). The layout ([`super::graph`]) builds one [`Scene`]; both
//! formats draw the same one, so a PNG and an SVG of a request never disagree.
//!
//! Drawing follows cairo's model as graphite-web uses it: a path of sub-paths (a `line_to`
//! without a current point starts one), filled with the non-zero rule, stroked with a width
//! and an optional dash, and a clip that only ever shrinks until it is restored.

use std::fmt::Write as _;

use super::font;

/// A colour with alpha, components 0–255 and alpha 0–1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rgba {
    pub r: u8,
    pub g: u8,
    pub b: u8,
    pub a: f64,
}

impl Rgba {
    pub const fn rgb(r: u8, g: u8, b: u8) -> Rgba {
        Rgba { r, g, b, a: 1.0 }
    }

    pub fn with_alpha(self, a: f64) -> Rgba {
        Rgba {
            a: a.clamp(0.0, 1.0),
            ..self
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Seg {
    Move(f64, f64),
    Line(f64, f64),
    Close,
}

/// A path of straight sub-paths.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Path {
    pub segs: Vec<Seg>,
    current: Option<(f64, f64)>,
    start: Option<(f64, f64)>,
}

impl Path {
    pub fn new() -> Path {
        Path::default()
    }

    pub fn move_to(&mut self, x: f64, y: f64) {
        self.segs.push(Seg::Move(x, y));
        self.current = Some((x, y));
        self.start = Some((x, y));
    }

    /// cairo's `line_to`: without a current point it is a `move_to`.
    pub fn line_to(&mut self, x: f64, y: f64) {
        if self.current.is_none() {
            return self.move_to(x, y);
        }
        self.segs.push(Seg::Line(x, y));
        self.current = Some((x, y));
    }

    pub fn close(&mut self) {
        if self.current.is_some() {
            self.segs.push(Seg::Close);
            self.current = self.start;
        }
    }

    pub fn rect(&mut self, x: f64, y: f64, w: f64, h: f64) {
        self.move_to(x, y);
        self.line_to(x + w, y);
        self.line_to(x + w, y + h);
        self.line_to(x, y + h);
        self.close();
    }

    pub fn is_empty(&self) -> bool {
        self.segs.is_empty()
    }

    pub fn append(&mut self, other: &Path) {
        for s in &other.segs {
            match *s {
                Seg::Move(x, y) => self.move_to(x, y),
                Seg::Line(x, y) => self.line_to(x, y),
                Seg::Close => self.close(),
            }
        }
    }
}

/// Text anchored at its baseline origin (after alignment), rotated by `rotate` degrees
/// around that origin.
#[derive(Debug, Clone, PartialEq)]
pub struct Text {
    pub text: String,
    pub x: f64,
    pub y: f64,
    pub size: f64,
    pub rotate: f64,
    pub color: Rgba,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Fill with the non-zero rule.
    Fill(Path, Rgba),
    Stroke {
        path: Path,
        color: Rgba,
        width: f64,
        dash: Option<f64>,
    },
    Text(Text),
    /// Remember the clip, to go back to it with `ClipRestore`.
    ClipSave,
    /// Shrink the clip to its intersection with `path` (even-odd when `even_odd`).
    ClipIntersect {
        path: Path,
        even_odd: bool,
    },
    ClipRestore,
    /// Starts a named part of the picture (graphite-web's SVG groups: `title`, `legend`,
    /// `axes`, `grid`, `lines`); the PNG ignores it.
    Part(&'static str),
}

/// A picture: its size, background and operations, in drawing order.
#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    pub width: u32,
    pub height: u32,
    pub ops: Vec<Op>,
}

/// Why a picture was not encoded.
#[derive(Debug, Clone, PartialEq)]
pub enum EncodeError {
    /// The caller's stop flag was raised.
    Stopped,
    Failed(String),
}

/// The PNG of a scene; `stop` is polled between operations.
pub fn png(scene: &Scene, stop: &dyn Fn() -> bool) -> Result<Vec<u8>, EncodeError> {
    use tiny_skia::{FillRule, Mask, Pixmap, Stroke, StrokeDash, Transform};
    let mut pixmap = Pixmap::new(scene.width.max(1), scene.height.max(1))
        .ok_or_else(|| EncodeError::Failed("the picture's size is not drawable".into()))?;
    let (w, h) = (pixmap.width(), pixmap.height());
    let mut clip: Option<Mask> = None;
    let mut saved: Vec<Option<Mask>> = Vec::new();
    for op in &scene.ops {
        if stop() {
            return Err(EncodeError::Stopped);
        }
        match op {
            Op::Fill(path, color) => {
                if let Some(p) = skia_path(path) {
                    pixmap.fill_path(
                        &p,
                        &paint(*color),
                        FillRule::Winding,
                        Transform::identity(),
                        clip.as_ref(),
                    );
                }
            }
            Op::Stroke {
                path,
                color,
                width,
                dash,
            } => {
                if let Some(p) = skia_path(path) {
                    let mut stroke = Stroke {
                        width: *width as f32,
                        ..Stroke::default()
                    };
                    if let Some(d) = dash.filter(|d| *d > 0.0 && d.is_finite()) {
                        stroke.dash = StrokeDash::new(vec![d as f32, d as f32], 0.0);
                    }
                    pixmap.stroke_path(
                        &p,
                        &paint(*color),
                        &stroke,
                        Transform::identity(),
                        clip.as_ref(),
                    );
                }
            }
            Op::Text(t) => {
                let mut pen = SkiaPen(tiny_skia::PathBuilder::new());
                font::outline(&t.text, t.size, &mut pen);
                if let Some(p) = pen.0.finish() {
                    let tr = Transform::from_translate(t.x as f32, t.y as f32)
                        .pre_rotate(t.rotate as f32);
                    pixmap.fill_path(&p, &paint(t.color), FillRule::Winding, tr, clip.as_ref());
                }
            }
            Op::ClipSave => saved.push(clip.clone()),
            Op::ClipRestore => clip = saved.pop().unwrap_or(None),
            Op::ClipIntersect { path, even_odd } => {
                let rule = if *even_odd {
                    FillRule::EvenOdd
                } else {
                    FillRule::Winding
                };
                match skia_path(path) {
                    None => {
                        // An empty clip hides everything.
                        clip = Mask::new(w, h);
                    }
                    Some(p) => match clip.as_mut() {
                        Some(m) => m.intersect_path(&p, rule, true, Transform::identity()),
                        None => {
                            let mut m = Mask::new(w, h)
                                .ok_or_else(|| EncodeError::Failed("no clip mask".into()))?;
                            m.fill_path(&p, rule, true, Transform::identity());
                            clip = Some(m);
                        }
                    },
                }
            }
            Op::Part(_) => {}
        }
    }
    encode_png(&pixmap).map_err(|e| EncodeError::Failed(format!("PNG encoding failed: {e}")))
}

/// The pixmap as PNG the way cairo (libpng) writes graphite-web's: RGB when every pixel is
/// opaque (the usual graph: `bgcolor` is opaque), else RGBA, each row filtered by libpng's
/// adaptive rule (the filter that makes each row's bytes smallest) and zlib level 6.
/// tiny-skia's own `encode_png` writes RGBA with every row `Sub`-filtered: 2–3× larger files
/// for the same picture.
fn encode_png(pixmap: &tiny_skia::Pixmap) -> Result<Vec<u8>, png::EncodingError> {
    let opaque = pixmap.pixels().iter().all(|p| p.alpha() == 255);
    let channels = if opaque { 3 } else { 4 };
    let mut data = Vec::with_capacity(pixmap.pixels().len() * channels);
    for p in pixmap.pixels() {
        let c = p.demultiply();
        data.extend_from_slice(&[c.red(), c.green(), c.blue()]);
        if !opaque {
            data.push(c.alpha());
        }
    }
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, pixmap.width(), pixmap.height());
    enc.set_color(if opaque {
        png::ColorType::Rgb
    } else {
        png::ColorType::Rgba
    });
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::Default);
    enc.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
    let mut w = enc.write_header()?;
    w.write_image_data(&data)?;
    w.finish()?;
    Ok(out)
}

fn paint(c: Rgba) -> tiny_skia::Paint<'static> {
    let mut p = tiny_skia::Paint::default();
    p.set_color_rgba8(c.r, c.g, c.b, (c.a.clamp(0.0, 1.0) * 255.0).round() as u8);
    p.anti_alias = true;
    p
}

fn skia_path(path: &Path) -> Option<tiny_skia::Path> {
    let mut b = tiny_skia::PathBuilder::new();
    for s in &path.segs {
        match *s {
            Seg::Move(x, y) => b.move_to(x as f32, y as f32),
            Seg::Line(x, y) => b.line_to(x as f32, y as f32),
            Seg::Close => b.close(),
        }
    }
    b.finish()
}

struct SkiaPen(tiny_skia::PathBuilder);

impl font::Pen for SkiaPen {
    fn move_to(&mut self, x: f32, y: f32) {
        self.0.move_to(x, y);
    }
    fn line_to(&mut self, x: f32, y: f32) {
        self.0.line_to(x, y);
    }
    fn quad_to(&mut self, x1: f32, y1: f32, x: f32, y: f32) {
        self.0.quad_to(x1, y1, x, y);
    }
    fn curve_to(&mut self, x1: f32, y1: f32, x2: f32, y2: f32, x: f32, y: f32) {
        self.0.cubic_to(x1, y1, x2, y2, x, y);
    }
    fn close(&mut self) {
        self.0.close();
    }
}

/// The SVG of a scene: graphite-web's outline (a `<g class="graphite">` holding one
/// `<g class="PART">` per part), text as `<text>` in DejaVu Sans.
pub fn svg(scene: &Scene, stop: &dyn Fn() -> bool) -> Result<String, EncodeError> {
    let mut out = String::new();
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" \
         width=\"{w}px\" height=\"{h}px\" viewBox=\"0 0 {w} {h}\" version=\"1.1\">\n\
         <g class=\"graphite\">\n",
        w = scene.width,
        h = scene.height
    );
    // Groups opened for clips since each save, and whether a part's group is open.
    let mut open: Vec<usize> = vec![0];
    let mut part_open = false;
    let mut clip_id = 0usize;
    for op in &scene.ops {
        if stop() {
            return Err(EncodeError::Stopped);
        }
        match op {
            Op::Part(name) => {
                close_groups(&mut out, &mut open);
                if part_open {
                    out.push_str("</g>\n");
                }
                let _ = writeln!(out, "<g class=\"{name}\">");
                part_open = true;
            }
            Op::Fill(path, c) => {
                if !path.is_empty() {
                    let _ = writeln!(
                        out,
                        "<path d=\"{}\" fill=\"{}\"{}/>",
                        svg_d(path),
                        svg_rgb(c),
                        svg_alpha("fill-opacity", c)
                    );
                }
            }
            Op::Stroke {
                path,
                color,
                width,
                dash,
            } => {
                if !path.is_empty() {
                    let dash = match dash {
                        Some(d) if *d > 0.0 && d.is_finite() => {
                            format!(" stroke-dasharray=\"{d}\"")
                        }
                        _ => String::new(),
                    };
                    let _ = writeln!(
                        out,
                        "<path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"{}\"{}{}/>",
                        svg_d(path),
                        svg_rgb(color),
                        num(*width),
                        svg_alpha("stroke-opacity", color),
                        dash
                    );
                }
            }
            Op::Text(t) => {
                let transform = if t.rotate != 0.0 {
                    format!(
                        " transform=\"rotate({} {} {})\"",
                        num(t.rotate),
                        num(t.x),
                        num(t.y)
                    )
                } else {
                    String::new()
                };
                let _ = writeln!(
                    out,
                    "<text x=\"{}\" y=\"{}\" font-family=\"DejaVu Sans, sans-serif\" \
                     font-size=\"{}\" fill=\"{}\"{}{} xml:space=\"preserve\">{}</text>",
                    num(t.x),
                    num(t.y),
                    num(t.size),
                    svg_rgb(&t.color),
                    svg_alpha("fill-opacity", &t.color),
                    transform,
                    xml_escape(&t.text)
                );
            }
            Op::ClipSave => open.push(0),
            Op::ClipRestore => {
                if open.len() > 1 {
                    let n = open.pop().unwrap_or(0);
                    for _ in 0..n {
                        out.push_str("</g>\n");
                    }
                }
            }
            Op::ClipIntersect { path, even_odd } => {
                clip_id += 1;
                let rule = if *even_odd { "evenodd" } else { "nonzero" };
                let _ = writeln!(
                    out,
                    "<clipPath id=\"clip{clip_id}\"><path d=\"{}\" clip-rule=\"{rule}\"/></clipPath>\n\
                     <g clip-path=\"url(#clip{clip_id})\">",
                    svg_d(path)
                );
                if let Some(n) = open.last_mut() {
                    *n += 1;
                }
            }
        }
    }
    close_groups(&mut out, &mut open);
    if part_open {
        out.push_str("</g>\n");
    }
    out.push_str("</g>\n</svg>\n");
    Ok(out)
}

fn close_groups(out: &mut String, open: &mut Vec<usize>) {
    let total: usize = open.iter().sum();
    for _ in 0..total {
        out.push_str("</g>\n");
    }
    open.clear();
    open.push(0);
}

fn num(x: f64) -> String {
    if !x.is_finite() {
        return "0".into();
    }
    let r = (x * 1000.0).round() / 1000.0;
    let mut s = format!("{r}");
    if s == "-0" {
        s = "0".into();
    }
    s
}

fn svg_d(path: &Path) -> String {
    let mut d = String::with_capacity(path.segs.len() * 12);
    for s in &path.segs {
        if !d.is_empty() {
            d.push(' ');
        }
        match *s {
            Seg::Move(x, y) => {
                let _ = write!(d, "M {} {}", num(x), num(y));
            }
            Seg::Line(x, y) => {
                let _ = write!(d, "L {} {}", num(x), num(y));
            }
            Seg::Close => d.push('Z'),
        }
    }
    d
}

fn svg_rgb(c: &Rgba) -> String {
    format!("#{:02x}{:02x}{:02x}", c.r, c.g, c.b)
}

fn svg_alpha(attr: &str, c: &Rgba) -> String {
    if c.a >= 1.0 {
        String::new()
    } else {
        format!(" {attr}=\"{}\"", num(c.a))
    }
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 allows no other control characters.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}
