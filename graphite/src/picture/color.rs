//! Colours as graphite-web's `setColor` reads them: its names (`blue` is (100,100,255),
//! `red` (200,0,50), …), `rrggbb` and `rrggbbaa` hex with an optional `#` or `%23`.

use super::scene::Rgba;

const ALIASES: &[(&str, (u8, u8, u8))] = &[
    ("black", (0, 0, 0)),
    ("white", (255, 255, 255)),
    ("blue", (100, 100, 255)),
    ("green", (0, 200, 0)),
    ("red", (200, 0, 50)),
    ("yellow", (255, 255, 0)),
    ("orange", (255, 165, 0)),
    ("purple", (200, 100, 255)),
    ("brown", (150, 100, 50)),
    ("cyan", (0, 255, 255)),
    ("aqua", (0, 150, 150)),
    ("gray", (175, 175, 175)),
    ("grey", (175, 175, 175)),
    ("magenta", (255, 0, 255)),
    ("pink", (255, 100, 100)),
    ("gold", (200, 200, 0)),
    ("rose", (200, 150, 200)),
    ("darkblue", (0, 0, 255)),
    ("darkgreen", (0, 255, 0)),
    ("darkred", (255, 0, 0)),
    ("darkgray", (111, 111, 111)),
    ("darkgrey", (111, 111, 111)),
];

/// graphite-web's default `colorList`.
pub const DEFAULT_COLORS: &[&str] = &[
    "blue", "green", "red", "purple", "brown", "yellow", "aqua", "grey", "magenta", "pink", "gold",
    "rose",
];

/// A colour, or why `value` is none.
pub fn parse(value: &str) -> Result<Rgba, String> {
    if let Some((_, (r, g, b))) = ALIASES.iter().find(|(n, _)| *n == value) {
        return Ok(Rgba::rgb(*r, *g, *b));
    }
    let s = value.strip_prefix('#').unwrap_or(value);
    let s = s.strip_prefix("%23").unwrap_or(s);
    let hex = |i: usize| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok());
    if value.len() >= 6 {
        if let (Some(r), Some(g), Some(b)) = (hex(0), hex(2), hex(4)) {
            let mut c = Rgba::rgb(r, g, b);
            if s.len() == 8 {
                if let Some(a) = hex(6) {
                    c.a = f64::from(a) / 255.0;
                }
            }
            return Ok(c);
        }
    }
    Err(format!(
        "{value:?} is not a colour: use a name (black, white, blue, green, red, …) or hex \
         rrggbb / rrggbbaa"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_hex() {
        assert_eq!(parse("blue").unwrap(), Rgba::rgb(100, 100, 255));
        assert_eq!(parse("ff0000").unwrap(), Rgba::rgb(255, 0, 0));
        assert_eq!(parse("#00ff00").unwrap(), Rgba::rgb(0, 255, 0));
        assert_eq!(parse("%230000ff").unwrap(), Rgba::rgb(0, 0, 255));
        let c = parse("6464ff80").unwrap();
        assert!((c.a - 128.0 / 255.0).abs() < 1e-9);
        assert!(parse("nocolour").is_err());
        assert!(parse("zz00zz").is_err());
        assert!(parse("é0000000").is_err());
        for c in DEFAULT_COLORS {
            parse(c).unwrap();
        }
    }
}
