//! The one font pictures use: DejaVu Sans (fonts-dejavu-core, Bitstream Vera licence with
//! public-domain DejaVu changes: `graphite/fonts/DejaVuSans.LICENSE`), embedded in the binary
//! so a picture looks the same on every machine. graphite-web asks cairo for "Sans", which
//! is this font on a Debian host.
//!
//! Text is measured with the glyphs' advances (no kerning, no shaping: metric names and
//! labels are mostly ASCII) and drawn as glyph outlines.

use std::sync::OnceLock;

use ttf_parser::{Face, GlyphId, OutlineBuilder};

static DATA: &[u8] = include_bytes!("../../fonts/DejaVuSans.ttf");

fn face() -> Option<&'static Face<'static>> {
    static FACE: OnceLock<Option<Face<'static>>> = OnceLock::new();
    FACE.get_or_init(|| Face::parse(DATA, 0).ok()).as_ref()
}

/// cairo's `font_extents` for a size: ascent, descent (positive) and line height, rounded
/// up to whole pixels as cairo's hinted metrics are (DejaVu Sans at 10 px: 10, 3, 12).
#[derive(Debug, Clone, Copy)]
pub struct Extents {
    pub ascent: f64,
    pub descent: f64,
    pub height: f64,
}

pub fn extents(size: f64) -> Extents {
    match face() {
        Some(f) => {
            let k = size / f64::from(f.units_per_em());
            let ascent = f64::from(f.ascender()) * k;
            let descent = -f64::from(f.descender()) * k;
            Extents {
                ascent: ascent.ceil(),
                descent: descent.ceil(),
                height: (ascent + descent + f64::from(f.line_gap()) * k).ceil(),
            }
        }
        None => Extents {
            ascent: size * 0.93,
            descent: size * 0.24,
            height: size * 1.17,
        },
    }
}

fn glyph(f: &Face<'_>, c: char) -> GlyphId {
    f.glyph_index(c).unwrap_or(GlyphId(0))
}

/// A glyph's advance at `k` pixels per font unit, rounded to whole pixels as cairo's hinted
/// metrics are (graphite-web's legend columns and label widths depend on it).
fn advance(f: &Face<'_>, g: GlyphId, k: f64) -> f64 {
    (f64::from(f.glyph_hor_advance(g).unwrap_or(0)) * k).round()
}

/// Width of `text` at `size` pixels (sum of the rounded advances).
pub fn width(text: &str, size: f64) -> f64 {
    let Some(f) = face() else {
        return text.chars().count() as f64 * (size * 0.6).round();
    };
    let k = size / f64::from(f.units_per_em());
    text.chars().map(|c| advance(f, glyph(f, c), k)).sum()
}

/// Receives a text's outline in pixels, the baseline's origin at (0, 0), y down.
pub trait Pen {
    fn move_to(&mut self, x: f32, y: f32);
    fn line_to(&mut self, x: f32, y: f32);
    fn quad_to(&mut self, x1: f32, y1: f32, x: f32, y: f32);
    fn curve_to(&mut self, x1: f32, y1: f32, x2: f32, y2: f32, x: f32, y: f32);
    fn close(&mut self);
}

struct Scaled<'a, P: Pen> {
    pen: &'a mut P,
    k: f32,
    dx: f32,
}

impl<P: Pen> OutlineBuilder for Scaled<'_, P> {
    fn move_to(&mut self, x: f32, y: f32) {
        self.pen.move_to(self.dx + x * self.k, -y * self.k);
    }
    fn line_to(&mut self, x: f32, y: f32) {
        self.pen.line_to(self.dx + x * self.k, -y * self.k);
    }
    fn quad_to(&mut self, x1: f32, y1: f32, x: f32, y: f32) {
        let k = self.k;
        self.pen
            .quad_to(self.dx + x1 * k, -y1 * k, self.dx + x * k, -y * k);
    }
    fn curve_to(&mut self, x1: f32, y1: f32, x2: f32, y2: f32, x: f32, y: f32) {
        let k = self.k;
        self.pen.curve_to(
            self.dx + x1 * k,
            -y1 * k,
            self.dx + x2 * k,
            -y2 * k,
            self.dx + x * k,
            -y * k,
        );
    }
    fn close(&mut self) {
        self.pen.close();
    }
}

/// Traces `text` at `size` pixels into `pen`.
pub fn outline(text: &str, size: f64, pen: &mut impl Pen) {
    let Some(f) = face() else { return };
    let kf = size / f64::from(f.units_per_em());
    let k = kf as f32;
    let mut dx = 0f32;
    for c in text.chars() {
        let g = glyph(f, c);
        let mut s = Scaled { pen, k, dx };
        f.outline_glyph(g, &mut s);
        dx += advance(f, g, kf) as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_font_parses_and_measures() {
        assert!(face().is_some());
        // cairo's hinted numbers for "Sans" (DejaVu Sans) at 10 px, as graphite-web sees them.
        let e = extents(10.0);
        assert_eq!((e.ascent, e.descent, e.height), (10.0, 3.0, 12.0));
        // cairo says 129 (its hinter moves some advances by a pixel); close enough for the
        // same legend columns.
        assert!((width("servers.cache1.loadavg.01", 10.0) - 129.0).abs() <= 2.0);
        assert_eq!(width("MMMM", 10.0), 36.0);
        assert!(width("MMMM", 10.0) > width("iiii", 10.0));
        assert_eq!(width("ab", 10.0), width("a", 10.0) + width("b", 10.0));
    }
}
