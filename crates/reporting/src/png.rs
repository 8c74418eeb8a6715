//! Raster figures for the reports: an RGB canvas, perceptual colour maps, colour bars, an
//! embedded 5x7 bitmap font, and deterministic PNG bytes (the `png` crate with fixed filter and
//! DEFLATE settings; no time or text chunks, so the bytes depend on the pixels alone).

use ndarray::Array2;

/// A colour map: anchor colours at equal spacing over [0, 1], interpolated linearly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Colormap {
    /// Perceptually uniform, sequential (matplotlib's viridis): amplitudes.
    Viridis,
    /// Diverging blue-white-red (Moreland's cool-warm), centred on zero: phases.
    CoolWarm,
    /// Perceptually uniform, sequential, dark to light (matplotlib's inferno): error magnitudes.
    Inferno,
}

const VIRIDIS: &[[u8; 3]] = &[
    [68, 1, 84],
    [71, 44, 122],
    [59, 81, 139],
    [44, 113, 142],
    [33, 144, 141],
    [39, 173, 129],
    [92, 200, 99],
    [170, 220, 50],
    [253, 231, 37],
];
const COOLWARM: &[[u8; 3]] = &[
    [59, 76, 192],
    [98, 130, 234],
    [141, 176, 254],
    [184, 208, 249],
    [221, 221, 221],
    [245, 196, 173],
    [244, 154, 123],
    [222, 96, 77],
    [180, 4, 38],
];
const INFERNO: &[[u8; 3]] = &[
    [0, 0, 4],
    [31, 12, 72],
    [85, 15, 109],
    [136, 34, 106],
    [186, 54, 85],
    [227, 89, 51],
    [249, 140, 10],
    [249, 201, 50],
    [252, 255, 164],
];

impl Colormap {
    /// The colour at `t` in [0, 1] (clamped; NaN is the low end).
    pub fn at(self, t: f64) -> [u8; 3] {
        let anchors = match self {
            Colormap::Viridis => VIRIDIS,
            Colormap::CoolWarm => COOLWARM,
            Colormap::Inferno => INFERNO,
        };
        let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
        let x = t * (anchors.len() - 1) as f64;
        let k = (x.floor() as usize).min(anchors.len() - 2);
        let f = x - k as f64;
        let (a, b) = (anchors[k], anchors[k + 1]);
        std::array::from_fn(|c| {
            (f64::from(a[c]) + f * (f64::from(b[c]) - f64::from(a[c]))).round() as u8
        })
    }
}

/// A colour scale: a map over [lo, hi].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scale {
    /// Colour map.
    pub map: Colormap,
    /// Value at the low end.
    pub lo: f64,
    /// Value at the high end (> lo).
    pub hi: f64,
}

impl Scale {
    /// A scale over `[lo, hi]`, widened when the range is empty or not finite.
    pub fn new(map: Colormap, lo: f64, hi: f64) -> Scale {
        let (lo, hi) = if lo.is_finite() && hi.is_finite() {
            (lo, hi)
        } else {
            (0.0, 1.0)
        };
        let (lo, hi) = if hi - lo > 1e-12 * hi.abs().max(1.0) {
            (lo, hi)
        } else {
            (lo - 0.5, hi + 0.5)
        };
        Scale { map, lo, hi }
    }

    fn colour(&self, v: f64) -> [u8; 3] {
        self.map.at((v - self.lo) / (self.hi - self.lo))
    }
}

/// Outside the scored region.
const OUTSIDE: [u8; 3] = [215, 215, 215];
/// Text and frames.
pub const INK: [u8; 3] = [20, 20, 20];

/// An RGB image, row-major, white to begin with.
#[derive(Clone, Debug, PartialEq)]
pub struct Canvas {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

impl Canvas {
    /// A white canvas.
    pub fn new(width: usize, height: usize) -> Canvas {
        Canvas {
            width,
            height,
            rgb: vec![255; width * height * 3],
        }
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// The colour at (x, y).
    pub fn pixel(&self, x: usize, y: usize) -> [u8; 3] {
        let i = (y * self.width + x) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    fn put(&mut self, x: usize, y: usize, c: [u8; 3]) {
        if x < self.width && y < self.height {
            let i = (y * self.width + x) * 3;
            self.rgb[i..i + 3].copy_from_slice(&c);
        }
    }

    /// Fills a rectangle (clipped to the canvas).
    pub fn fill(&mut self, x: usize, y: usize, w: usize, h: usize, c: [u8; 3]) {
        for yy in y..y + h {
            for xx in x..x + w {
                self.put(xx, yy, c);
            }
        }
    }

    /// A one-pixel frame around a rectangle, just outside it.
    pub fn frame(&mut self, x: usize, y: usize, w: usize, h: usize) {
        let (x0, y0) = (x.saturating_sub(1), y.saturating_sub(1));
        self.fill(x0, y0, w + 2, 1, INK);
        self.fill(x0, y + h, w + 2, 1, INK);
        self.fill(x0, y0, 1, h + 2, INK);
        self.fill(x + w, y0, 1, h + 2, INK);
    }

    /// Draws `values` at (x, y), each value a `zoom` x `zoom` block; pixels where `mask` is
    /// false are drawn grey (outside the scored region).
    pub fn image(
        &mut self,
        x: usize,
        y: usize,
        values: &Array2<f64>,
        mask: &Array2<bool>,
        scale: &Scale,
        zoom: usize,
    ) {
        for ((r, c), v) in values.indexed_iter() {
            let colour = if mask[(r, c)] {
                scale.colour(*v)
            } else {
                OUTSIDE
            };
            self.fill(x + c * zoom, y + r * zoom, zoom, zoom, colour);
        }
        self.frame(x, y, values.ncols() * zoom, values.nrows() * zoom);
    }

    /// A vertical colour bar (high end on top) with its end and middle values written beside it.
    pub fn colour_bar(&mut self, x: usize, y: usize, w: usize, h: usize, scale: &Scale) {
        for k in 0..h {
            let t = 1.0 - k as f64 / (h.max(2) - 1) as f64;
            let colour = scale.map.at(t);
            self.fill(x, y + k, w, 1, colour);
        }
        self.frame(x, y, w, h);
        let mid = 0.5 * (scale.lo + scale.hi);
        for (value, yy) in [
            (scale.hi, y),
            (mid, y + h / 2 - GLYPH_H / 2),
            (scale.lo, y + h - GLYPH_H),
        ] {
            self.text(x + w + 4, yy, &bar_label(value), 1, INK);
        }
    }

    /// Writes `text` (upper case; unknown characters as blanks) with its top-left at (x, y).
    pub fn text(&mut self, x: usize, y: usize, text: &str, zoom: usize, c: [u8; 3]) {
        for (k, ch) in text.chars().enumerate() {
            let rows = glyph(ch);
            let gx = x + k * (GLYPH_W + 1) * zoom;
            for (r, row) in rows.iter().enumerate() {
                for col in 0..GLYPH_W {
                    if row & (1 << (GLYPH_W - 1 - col)) != 0 {
                        self.fill(gx + col * zoom, y + r * zoom, zoom, zoom, c);
                    }
                }
            }
        }
    }

    /// The PNG bytes: 8-bit RGB, adaptive filtering, fdeflate; no ancillary chunks.
    pub fn to_png(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut bytes, self.width as u32, self.height as u32);
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_depth(png::BitDepth::Eight);
            // Fixed settings: the pure-Rust fdeflate path, whatever flate2 backend is linked.
            encoder.set_deflate_compression(png::DeflateCompression::FdeflateUltraFast);
            encoder.set_filter(png::Filter::Adaptive);
            let mut writer = encoder
                .write_header()
                .expect("writing a PNG header to memory cannot fail");
            writer
                .write_image_data(&self.rgb)
                .expect("the canvas holds width x height RGB pixels");
            writer
                .finish()
                .expect("finishing a PNG in memory cannot fail");
        }
        bytes
    }
}

/// Width in pixels of `text` drawn at `zoom`.
pub fn text_width(text: &str, zoom: usize) -> usize {
    let n = text.chars().count();
    if n == 0 {
        0
    } else {
        (n * (GLYPH_W + 1) - 1) * zoom
    }
}

/// Glyph size of the embedded font.
pub const GLYPH_W: usize = 5;
/// Glyph height of the embedded font.
pub const GLYPH_H: usize = 7;

/// A colour-bar value: three significant digits, no float noise, no trailing zeros.
pub fn bar_label(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return "0".into();
    }
    let magnitude = v.abs().log10().floor() as i32;
    if !(-3..5).contains(&magnitude) {
        return format!("{v:.2e}").to_uppercase();
    }
    let decimals = (2 - magnitude).max(0) as usize;
    let text = format!("{v:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    if text == "-0" { "0".into() } else { text }
}

/// The 5x7 bitmap of a character, rows top to bottom, bit 4 = leftmost column.
fn glyph(ch: char) -> [u8; 7] {
    let rows: &str = match ch.to_ascii_uppercase() {
        '0' => ".###.|#...#|#..##|#.#.#|##..#|#...#|.###.",
        '1' => "..#..|.##..|..#..|..#..|..#..|..#..|.###.",
        '2' => ".###.|#...#|....#|...#.|..#..|.#...|#####",
        '3' => "####.|....#|....#|.###.|....#|....#|####.",
        '4' => "...#.|..##.|.#.#.|#..#.|#####|...#.|...#.",
        '5' => "#####|#....|####.|....#|....#|#...#|.###.",
        '6' => "..##.|.#...|#....|####.|#...#|#...#|.###.",
        '7' => "#####|....#|...#.|..#..|.#...|.#...|.#...",
        '8' => ".###.|#...#|#...#|.###.|#...#|#...#|.###.",
        '9' => ".###.|#...#|#...#|.####|....#|...#.|.##..",
        '.' => ".....|.....|.....|.....|.....|.##..|.##..",
        ',' => ".....|.....|.....|.....|.##..|..#..|.#...",
        '-' => ".....|.....|.....|#####|.....|.....|.....",
        '+' => ".....|..#..|..#..|#####|..#..|..#..|.....",
        ':' => ".....|.##..|.##..|.....|.##..|.##..|.....",
        '/' => "....#|....#|...#.|..#..|.#...|#....|#....",
        '(' => "..#..|.#...|#....|#....|#....|.#...|..#..",
        ')' => "..#..|...#.|....#|....#|....#|...#.|..#..",
        '|' => "..#..|..#..|..#..|..#..|..#..|..#..|..#..",
        '=' => ".....|.....|#####|.....|#####|.....|.....",
        '_' => ".....|.....|.....|.....|.....|.....|#####",
        'A' => ".###.|#...#|#...#|#####|#...#|#...#|#...#",
        'B' => "####.|#...#|#...#|####.|#...#|#...#|####.",
        'C' => ".###.|#...#|#....|#....|#....|#...#|.###.",
        'D' => "####.|#...#|#...#|#...#|#...#|#...#|####.",
        'E' => "#####|#....|#....|####.|#....|#....|#####",
        'F' => "#####|#....|#....|####.|#....|#....|#....",
        'G' => ".###.|#...#|#....|#.###|#...#|#...#|.####",
        'H' => "#...#|#...#|#...#|#####|#...#|#...#|#...#",
        'I' => ".###.|..#..|..#..|..#..|..#..|..#..|.###.",
        'J' => "..###|...#.|...#.|...#.|...#.|#..#.|.##..",
        'K' => "#...#|#..#.|#.#..|##...|#.#..|#..#.|#...#",
        'L' => "#....|#....|#....|#....|#....|#....|#####",
        'M' => "#...#|##.##|#.#.#|#.#.#|#...#|#...#|#...#",
        'N' => "#...#|#...#|##..#|#.#.#|#..##|#...#|#...#",
        'O' => ".###.|#...#|#...#|#...#|#...#|#...#|.###.",
        'P' => "####.|#...#|#...#|####.|#....|#....|#....",
        'Q' => ".###.|#...#|#...#|#...#|#.#.#|#..#.|.##.#",
        'R' => "####.|#...#|#...#|####.|#.#..|#..#.|#...#",
        'S' => ".####|#....|#....|.###.|....#|....#|####.",
        'T' => "#####|..#..|..#..|..#..|..#..|..#..|..#..",
        'U' => "#...#|#...#|#...#|#...#|#...#|#...#|.###.",
        'V' => "#...#|#...#|#...#|#...#|#...#|.#.#.|..#..",
        'W' => "#...#|#...#|#...#|#.#.#|#.#.#|#.#.#|.#.#.",
        'X' => "#...#|#...#|.#.#.|..#..|.#.#.|#...#|#...#",
        'Y' => "#...#|#...#|.#.#.|..#..|..#..|..#..|..#..",
        'Z' => "#####|....#|...#.|..#..|.#...|#....|#####",
        _ => ".....|.....|.....|.....|.....|.....|.....",
    };
    let mut out = [0u8; 7];
    for (k, row) in rows.split('|').enumerate() {
        out[k] = row
            .bytes()
            .fold(0u8, |acc, b| (acc << 1) | u8::from(b == b'#'));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colormaps_run_from_end_to_end() {
        assert_eq!(Colormap::Viridis.at(0.0), [68, 1, 84]);
        assert_eq!(Colormap::Viridis.at(1.0), [253, 231, 37]);
        assert_eq!(Colormap::CoolWarm.at(0.5), [221, 221, 221]);
        assert_eq!(Colormap::Inferno.at(2.0), Colormap::Inferno.at(1.0));
        assert_eq!(Colormap::Inferno.at(f64::NAN), Colormap::Inferno.at(0.0));
    }

    #[test]
    fn bar_labels_are_short_round_numbers() {
        for (v, text) in [
            (0.6000000000000001, "0.6"),
            (std::f64::consts::PI, "3.14"),
            (-std::f64::consts::PI, "-3.14"),
            (1.0, "1"),
            (0.012345, "0.0123"),
            (250.0, "250"),
            (-0.0001, "-1.00E-4"),
            (0.0, "0"),
        ] {
            assert_eq!(bar_label(v), text, "{v}");
        }
    }

    #[test]
    fn png_bytes_are_deterministic_and_decode_back() {
        let mut canvas = Canvas::new(40, 20);
        let values = Array2::from_shape_fn((8, 8), |(r, c)| (r * 8 + c) as f64);
        let mask = Array2::from_shape_fn((8, 8), |(r, _)| r > 0);
        canvas.image(
            1,
            1,
            &values,
            &mask,
            &Scale::new(Colormap::Viridis, 0.0, 63.0),
            2,
        );
        canvas.text(20, 2, "A1", 1, INK);
        let bytes = canvas.to_png();
        assert_eq!(bytes, canvas.clone().to_png());
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let decoder = png::Decoder::new(std::io::Cursor::new(&bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (40, 20));
        assert_eq!(&buf[..info.buffer_size()], canvas.rgb.as_slice());
        // The first image row is outside the mask (grey), the last has the top of the scale.
        assert_eq!(canvas.pixel(1, 1), OUTSIDE);
        assert_eq!(canvas.pixel(1 + 7 * 2, 1 + 7 * 2), [253, 231, 37]);
    }

    #[test]
    fn every_glyph_has_seven_rows_of_five() {
        for ch in "0123456789.,-+:/()|=_ABCDEFGHIJKLMNOPQRSTUVWXYZ".chars() {
            let g = glyph(ch);
            assert!(g.iter().any(|r| *r != 0), "{ch} is blank");
            assert!(g.iter().all(|r| *r < 32), "{ch} is wider than 5");
        }
    }
}
