//! Graphs as graphite-web 1.1.10 draws them (`/render?format=png|svg`): the same series the
//! JSON answer holds, laid out with graphite-web's defaults (330×250, its colour list and
//! grid colours, legend boxes under the graph, axis labels with `k`/`M`/`G` or `Ki`/`Mi`
//! suffixes) and its graph parameters. Pure: no I/O.
//!
//! - [`params`]: the graph parameters of a request, each checked (a bad one is an error naming it).
//! - [`graph`]: the layout (`LineGraph.drawGraph`): title, legend, axes, grid, lines.
//! - [`axis`]: y tics/labels/units, the x axis table.
//! - [`scene`]: drawing operations and their PNG and SVG encoders.
//! - [`font`]: the embedded DejaVu Sans.
//! - [`color`]: colour names and hex.

pub mod axis;
pub mod color;
pub mod font;
pub mod graph;
pub mod params;
pub mod scene;

pub use params::{GraphParams, ParamError, PictureLimits};

use crate::attime::TimeZone;
use crate::series::Series;

/// The picture formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Png,
    Svg,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Png => "image/png",
            Format::Svg => "image/svg+xml",
        }
    }
}

/// Why no picture was made.
#[derive(Debug, Clone, PartialEq)]
pub enum PictureError {
    /// The series cannot be drawn with these parameters (e.g. a logarithmic axis over
    /// values at or below zero, `yMin` above `yMax`): the request's to fix.
    Graph(String),
    /// `stop` was raised (deadline, client gone, shutdown).
    Stopped,
    /// Encoding failed (a bug).
    Failed(String),
}

impl std::fmt::Display for PictureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PictureError::Graph(m) => write!(f, "cannot draw the graph: {m}"),
            PictureError::Stopped => f.write_str("the picture was stopped"),
            PictureError::Failed(m) => f.write_str(m),
        }
    }
}

/// Draws `series` and encodes the picture. `stop` is polled while drawing and encoding.
pub fn render(
    series: Vec<Series>,
    params: &GraphParams,
    tz: &TimeZone,
    format: Format,
    stop: &dyn Fn() -> bool,
) -> Result<Vec<u8>, PictureError> {
    let scene = graph::draw(series, params, tz, stop)?;
    let enc = |e| match e {
        scene::EncodeError::Stopped => PictureError::Stopped,
        scene::EncodeError::Failed(m) => PictureError::Failed(m),
    };
    match format {
        Format::Png => scene::png(&scene, stop).map_err(enc),
        Format::Svg => scene::svg(&scene, stop)
            .map(String::into_bytes)
            .map_err(enc),
    }
}

#[cfg(test)]
mod tests {
    use super::params::PictureLimits;
    use super::*;

    /// A decoded RGBA picture.
    pub struct Image {
        pub width: u32,
        pub height: u32,
        pub rgba: Vec<u8>,
    }

    impl Image {
        pub fn at(&self, x: u32, y: u32) -> [u8; 4] {
            let i = ((y * self.width + x) * 4) as usize;
            [
                self.rgba[i],
                self.rgba[i + 1],
                self.rgba[i + 2],
                self.rgba[i + 3],
            ]
        }

        /// Rows (top to bottom) where `rgb` appears within `tol` in column `x`.
        pub fn rows_of(&self, x: u32, rgb: [u8; 3], tol: u8) -> Vec<u32> {
            (0..self.height)
                .filter(|&y| close(self.at(x, y), rgb, tol))
                .collect()
        }

        pub fn count(&self, rgb: [u8; 3], tol: u8) -> usize {
            self.rgba
                .chunks(4)
                .filter(|p| close([p[0], p[1], p[2], p[3]], rgb, tol))
                .count()
        }
    }

    /// `p` is `rgb`, or `rgb` blended at least a third of the way into a white background
    /// (anti-aliased edges), within `tol` per channel.
    fn close(p: [u8; 4], rgb: [u8; 3], tol: u8) -> bool {
        if p[3] != 255 {
            return false;
        }
        if (0..3).all(|i| p[i].abs_diff(rgb[i]) <= tol) {
            return true;
        }
        // The blend factor from the channel furthest from white.
        let c = (0..3).max_by_key(|&i| 255 - rgb[i]).unwrap_or(0);
        let span = 255.0 - f64::from(rgb[c]);
        if span < 60.0 {
            return false;
        }
        let t = (255.0 - f64::from(p[c])) / span;
        (0.33..=1.05).contains(&t)
            && (0..3).all(|i| {
                let want = 255.0 - t * (255.0 - f64::from(rgb[i]));
                (f64::from(p[i]) - want).abs() <= f64::from(tol)
            })
    }

    pub fn decode(png_bytes: &[u8]) -> Image {
        let mut d = png::Decoder::new(png_bytes);
        d.set_transformations(png::Transformations::EXPAND | png::Transformations::ALPHA);
        let mut r = d.read_info().unwrap();
        let mut buf = vec![0; r.output_buffer_size()];
        let info = r.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        assert_eq!(info.color_type, png::ColorType::Rgba);
        Image {
            width: info.width,
            height: info.height,
            rgba: buf,
        }
    }

    fn params(q: &[(&str, &str)]) -> GraphParams {
        GraphParams::parse(
            |k| q.iter().rev().find(|(n, _)| *n == k).map(|(_, v)| *v),
            PictureLimits::default(),
        )
        .unwrap()
    }

    fn png_of(series: Vec<Series>, q: &[(&str, &str)]) -> Image {
        let bytes = render(series, &params(q), &TimeZone::utc(), Format::Png, &|| false).unwrap();
        if let Ok(dir) = std::env::var("CARBIDE_PICTURE_DIR") {
            let n = q
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&");
            let _ = std::fs::write(format!("{dir}/{}.png", n.replace('/', "_")), &bytes);
        }
        decode(&bytes)
    }

    fn constant(name: &str, v: Option<f64>, n: usize) -> Series {
        Series::new(name, 0, 60 * n as i64, 60, vec![v; n])
    }

    const BLUE: [u8; 3] = [100, 100, 255];
    const GREEN: [u8; 3] = [0, 200, 0];
    const RED: [u8; 3] = [200, 0, 50];

    #[test]
    fn a_default_graph_has_graphite_webs_size_background_and_colours() {
        let img = png_of(
            vec![
                constant("low", Some(1.0), 60),
                constant("high", Some(3.0), 60),
            ],
            &[],
        );
        assert_eq!((img.width, img.height), (330, 250));
        assert_eq!(img.at(0, 0), [255, 255, 255, 255]);
        // Both series are horizontal lines: blue (first) below green (second).
        let x = 200;
        let blue = img.rows_of(x, BLUE, 30);
        let green = img.rows_of(x, GREEN, 30);
        assert!(!blue.is_empty() && !green.is_empty(), "{blue:?} {green:?}");
        assert!(
            blue[0] > green[0],
            "blue {blue:?} should be below green {green:?}"
        );
        // The legend: a blue and a green box under the graph.
        let boxes_y = img.height - 25;
        assert!((0..img.width).any(|x| close(img.at(x, boxes_y), BLUE, 5)
            || (boxes_y - 10..img.height).any(|y| close(img.at(x, y), BLUE, 5))));
        // Text: black pixels left of the plot (y labels) and under it (x labels, legend).
        assert!(img.count([0, 0, 0], 60) > 100);
    }

    #[test]
    fn values_sit_at_their_height_and_nulls_are_gaps() {
        // 0 for the first half, then 10 for the second, with a null gap between.
        let mut values = vec![Some(0.0); 30];
        values.extend(vec![None; 10]);
        values.extend(vec![Some(10.0); 20]);
        let s = Series::new("steps", 0, 3600, 60, values);
        let img = png_of(
            vec![s],
            &[("hideLegend", "true"), ("yMin", "0"), ("yMax", "10")],
        );
        let cols: Vec<u32> = (0..img.width)
            .filter(|&x| !img.rows_of(x, BLUE, 40).is_empty())
            .collect();
        let (first, last) = (cols[0], *cols.last().unwrap());
        let left_rows = img.rows_of(first + 5, BLUE, 40);
        let right_rows = img.rows_of(last - 5, BLUE, 40);
        assert!(
            left_rows[0] > right_rows[0] + 100,
            "{left_rows:?} {right_rows:?}"
        );
        // The gap: a run of columns in the middle with no blue at all.
        let mid = (first..=last).filter(|x| !cols.contains(x)).count();
        assert!(mid > 20, "null gap of {mid} columns");
    }

    #[test]
    fn graph_functions_change_the_picture() {
        let mut red = constant("a", Some(1.0), 60);
        red.draw.color = Some("ff0000".into());
        red.draw.line_width = Some(5.0);
        let img = png_of(vec![red], &[("hideLegend", "true")]);
        let rows = img.rows_of(200, [255, 0, 0], 10);
        assert!(rows.len() >= 4, "a 5 px red line: {rows:?}");
        assert_eq!(img.count(BLUE, 10), 0);

        // areaMode=stacked fills under each series.
        let img = png_of(
            vec![constant("a", Some(1.0), 60), constant("b", Some(1.0), 60)],
            &[
                ("areaMode", "stacked"),
                ("hideLegend", "true"),
                ("hideGrid", "true"),
                ("yMin", "0"),
            ],
        );
        assert!(img.count(BLUE, 10) > 5000, "{}", img.count(BLUE, 10));
        assert!(img.count(GREEN, 10) > 5000);
        // drawAsInfinite: vertical lines across the plot.
        let mut ev = Series::new("ev", 0, 3600, 60, vec![None; 60]);
        ev.values[30] = Some(1.0);
        ev.draw.draw_as_infinite = true;
        ev.draw.color = Some("red".into());
        let img = png_of(
            vec![constant("a", Some(1.0), 60), ev],
            &[("hideLegend", "true")],
        );
        let cols: Vec<u32> = (0..img.width)
            .filter(|&x| img.rows_of(x, RED, 20).len() > 100)
            .collect();
        assert!(!cols.is_empty());
    }

    #[test]
    fn hidden_legend_axes_and_no_data() {
        let s = || vec![constant("a", Some(1.0), 60)];
        let with = png_of(s(), &[]);
        let without = png_of(s(), &[("hideLegend", "true")]);
        let graph_only = png_of(s(), &[("graphOnly", "true")]);
        let black = |i: &Image| i.count([0, 0, 0], 60);
        assert!(black(&with) > black(&without));
        assert!(black(&graph_only) < 20, "{}", black(&graph_only));
        let none = png_of(vec![], &[]);
        assert!(none.count(RED, 40) > 50, "No Data in red");
        let img = png_of(
            s(),
            &[("width", "600"), ("height", "100"), ("bgcolor", "black")],
        );
        assert_eq!((img.width, img.height), (600, 100));
        assert_eq!(img.at(0, 0), [0, 0, 0, 255]);
    }

    #[test]
    fn svg_holds_the_same_picture() {
        let s = vec![
            constant("cpu.user", Some(1.0), 60),
            constant("cpu.sys", Some(2.0), 60),
        ];
        let bytes = render(
            s,
            &params(&[("title", "CPU <&>")]),
            &TimeZone::utc(),
            Format::Svg,
            &|| false,
        )
        .unwrap();
        let text = String::from_utf8(bytes).unwrap();
        let doc = roxmltree::Document::parse(&text).unwrap();
        let root = doc.root_element();
        assert_eq!(root.attribute("width"), Some("330px"));
        let texts: Vec<&str> = doc
            .descendants()
            .filter(|n| n.has_tag_name("text"))
            .filter_map(|n| n.text())
            .collect();
        assert!(texts.contains(&"CPU <&>"), "{texts:?}");
        assert!(texts.contains(&"cpu.user") && texts.contains(&"cpu.sys"));
        let strokes: Vec<&str> = doc
            .descendants()
            .filter_map(|n| n.attribute("stroke"))
            .collect();
        assert!(
            strokes.contains(&"#6464ff") && strokes.contains(&"#00c800"),
            "{strokes:?}"
        );
        for class in ["title", "legend", "axes", "grid", "lines"] {
            assert!(
                doc.descendants()
                    .any(|n| n.attribute("class") == Some(class)),
                "{class}"
            );
        }
    }

    #[test]
    fn stop_stops() {
        let s = vec![constant("a", Some(1.0), 60)];
        let r = render(s, &params(&[]), &TimeZone::utc(), Format::Png, &|| true);
        assert_eq!(r, Err(PictureError::Stopped));
    }
}
