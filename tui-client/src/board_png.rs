//! The drawing board as a PNG picture: every stroke rasterised in its colour
//! on a white background, as the browser page draws the board. Used by the
//! canvas pane's save key and by `rt-tui draw save`.

use std::io::Write;
use std::path::{Path, PathBuf};

use rt_protocol::draw::{Board, Bounds};

/// Stroke width in board units (the browser page's `LINE_WIDTH`).
pub const LINE_WIDTH: f64 = 2.0;
/// The narrowest picture `--width` accepts, in pixels.
pub const MIN_WIDTH: u32 = 16;
/// The widest picture `--width` accepts, in pixels (8000 × 4000 RGB is
/// 96 MB in memory, the most a save should take).
pub const MAX_WIDTH: u32 = 8000;
/// What the board is painted on (the page's `#board` background).
pub const BACKGROUND: [u8; 3] = [0xff, 0xff, 0xff];
/// The colour of a stroke whose colour is not `#rrggbb`.
pub const FALLBACK: [u8; 3] = [0x80, 0x80, 0x80];
/// Sub-segments are at most this many pixels long, so the area searched
/// for ink around each stays small even for a long diagonal.
const PIECE_PX: f64 = 8.0;

/// Why a picture could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum PngError {
    #[error("width {0} px is outside {MIN_WIDTH}..={MAX_WIDTH}")]
    Width(u32),
    #[error("the board has no area ({0}×{1})")]
    EmptyBoard(f64, f64),
    #[error("cannot encode the PNG: {0}")]
    Encode(#[from] png::EncodingError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// `#rrggbb` as RGB bytes.
pub fn hex_rgb(hex: &str) -> Option<[u8; 3]> {
    let h = hex.strip_prefix('#')?;
    if h.len() != 6 || !h.is_ascii() {
        return None;
    }
    let c = |i: usize| u8::from_str_radix(&h[i..i + 2], 16).ok();
    Some([c(0)?, c(2)?, c(4)?])
}

/// An RGB raster of the board.
#[derive(Debug, Clone)]
pub struct Picture {
    pub width: u32,
    pub height: u32,
    /// Row-major RGB, three bytes a pixel.
    pub rgb: Vec<u8>,
}

impl Picture {
    /// Paints `board` (board coordinates within `bounds`, y down) on a
    /// picture `width` pixels wide, its height keeping the board's shape.
    pub fn render(board: &Board, bounds: Bounds, width: u32) -> Result<Picture, PngError> {
        if !(MIN_WIDTH..=MAX_WIDTH).contains(&width) {
            return Err(PngError::Width(width));
        }
        if !(bounds.width > 0.0 && bounds.height > 0.0) {
            return Err(PngError::EmptyBoard(bounds.width, bounds.height));
        }
        let scale = f64::from(width) / bounds.width;
        let height = ((bounds.height * scale).round() as u32).clamp(1, MAX_WIDTH);
        let mut picture = Picture {
            width,
            height,
            rgb: BACKGROUND.repeat(width as usize * height as usize),
        };
        // Half the line width, but never so thin that a line could slip
        // between pixel centres and break up.
        let radius = (LINE_WIDTH * scale / 2.0).max(0.71);
        for stroke in board.strokes() {
            let colour = hex_rgb(&stroke.colour).unwrap_or(FALLBACK);
            for pair in stroke.points.windows(2) {
                let a = (pair[0].x * scale, pair[0].y * scale);
                let b = (pair[1].x * scale, pair[1].y * scale);
                picture.segment(a, b, radius, colour);
            }
        }
        Ok(picture)
    }

    /// The colour of pixel (`x`, `y`).
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    /// Inks every pixel whose centre lies within `radius` of segment `a`–`b`
    /// (pixel coordinates): a line with round caps.
    fn segment(&mut self, a: (f64, f64), b: (f64, f64), radius: f64, colour: [u8; 3]) {
        let len = ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt();
        let pieces = (len / PIECE_PX).ceil().max(1.0) as usize;
        for i in 0..pieces {
            let t0 = i as f64 / pieces as f64;
            let t1 = (i + 1) as f64 / pieces as f64;
            let p0 = (a.0 + (b.0 - a.0) * t0, a.1 + (b.1 - a.1) * t0);
            let p1 = (a.0 + (b.0 - a.0) * t1, a.1 + (b.1 - a.1) * t1);
            let x0 = (p0.0.min(p1.0) - radius).floor().max(0.0) as u32;
            let y0 = (p0.1.min(p1.1) - radius).floor().max(0.0) as u32;
            let x1 = ((p0.0.max(p1.0) + radius).ceil().max(0.0) as u32).min(self.width);
            let y1 = ((p0.1.max(p1.1) + radius).ceil().max(0.0) as u32).min(self.height);
            for y in y0..y1 {
                for x in x0..x1 {
                    let c = (f64::from(x) + 0.5, f64::from(y) + 0.5);
                    if distance(c, p0, p1) <= radius {
                        let at = (y as usize * self.width as usize + x as usize) * 3;
                        self.rgb[at..at + 3].copy_from_slice(&colour);
                    }
                }
            }
        }
    }

    /// Writes the picture as an 8-bit RGB PNG.
    pub fn encode(&self, out: impl Write) -> Result<(), PngError> {
        let mut encoder = png::Encoder::new(out, self.width, self.height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&self.rgb)?;
        writer.finish()?;
        Ok(())
    }

    /// The picture as PNG bytes.
    pub fn to_png(&self) -> Result<Vec<u8>, PngError> {
        let mut out = Vec::new();
        self.encode(&mut out)?;
        Ok(out)
    }
}

/// Distance from `p` to the segment `a`–`b`.
fn distance(p: (f64, f64), a: (f64, f64), b: (f64, f64)) -> f64 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    let t = if len2 == 0.0 {
        0.0
    } else {
        (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / len2).clamp(0.0, 1.0)
    };
    let (cx, cy) = (a.0 + t * dx, a.1 + t * dy);
    ((p.0 - cx).powi(2) + (p.1 - cy).powi(2)).sqrt()
}

/// What a save wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    pub path: PathBuf,
    pub width: u32,
    pub height: u32,
    pub bytes: usize,
}

/// Renders `board` `width` pixels wide and writes it to `path`.
pub fn save(board: &Board, bounds: Bounds, width: u32, path: &Path) -> Result<Saved, PngError> {
    let picture = Picture::render(board, bounds, width)?;
    let png = picture.to_png()?;
    std::fs::write(path, &png).map_err(|source| PngError::Write {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(Saved {
        path: path.to_path_buf(),
        width: picture.width,
        height: picture.height,
        bytes: png.len(),
    })
}

/// `rt-canvas-YYYYMMDD-HHMMSS.png` for `unix` seconds (UTC).
pub fn file_name(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    let (y, m, d) = civil(days);
    format!(
        "rt-canvas-{y:04}{m:02}{d:02}-{:02}{:02}{:02}.png",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// A file name in `dir` for a picture saved now: [`file_name`], with `-2`,
/// `-3`, … added when a picture of the same second is already there.
pub fn fresh_path(dir: &Path, unix: u64) -> PathBuf {
    let name = file_name(unix);
    let first = dir.join(&name);
    if !first.exists() {
        return first;
    }
    let stem = name.trim_end_matches(".png");
    (2..)
        .map(|n| dir.join(format!("{stem}-{n}.png")))
        .find(|p| !p.exists())
        .unwrap_or(first)
}

/// The proleptic Gregorian date of `days` since 1970-01-01.
fn civil(days: i64) -> (i64, u32, u32) {
    // Count in 400-year eras from 0000-03-01, so leap days fall at the end
    // of each year.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rt_protocol::draw::Point;

    fn board(lines: &[(&str, [f64; 4])]) -> Board {
        let mut b = Board::new();
        for (i, (colour, [x1, y1, x2, y2])) in lines.iter().enumerate() {
            let pen = format!("p{i}");
            b.apply_move(&pen, Point { x: *x1, y: *y1 }, false, colour);
            b.apply_move(&pen, Point { x: *x2, y: *y2 }, true, colour);
            b.apply_move(&pen, Point { x: *x2, y: *y2 }, false, colour);
        }
        b
    }

    const BOUNDS: Bounds = Bounds {
        width: 2000.0,
        height: 1000.0,
    };

    #[test]
    fn lines_are_inked_in_their_colour_and_the_rest_is_background() {
        let b = board(&[
            ("#e6194b", [100.0, 100.0, 1900.0, 100.0]),
            ("#3cb44b", [1000.0, 200.0, 1000.0, 900.0]),
            ("bogus", [100.0, 900.0, 600.0, 400.0]),
        ]);
        let p = Picture::render(&b, BOUNDS, 2000).unwrap();
        assert_eq!((p.width, p.height), (2000, 1000));
        assert_eq!(p.pixel(500, 100), [0xe6, 0x19, 0x4b]);
        assert_eq!(p.pixel(1000, 500), [0x3c, 0xb4, 0x4b]);
        assert_eq!(p.pixel(350, 650), FALLBACK, "on the diagonal");
        assert_eq!(p.pixel(500, 110), BACKGROUND, "10 px off the line");
        assert_eq!(p.pixel(1500, 600), BACKGROUND);
        // Round caps: ink just past the end, none further.
        assert_eq!(p.pixel(1900, 100), [0xe6, 0x19, 0x4b]);
        assert_eq!(p.pixel(1905, 100), BACKGROUND);
    }

    #[test]
    fn a_small_picture_keeps_thin_lines_unbroken() {
        let b = board(&[("#000000", [0.0, 0.0, 2000.0, 1000.0])]);
        let p = Picture::render(&b, BOUNDS, 100).unwrap();
        assert_eq!((p.width, p.height), (100, 50));
        // Every column of the diagonal has ink.
        for x in 0..100 {
            assert!(
                (0..50).any(|y| p.pixel(x, y) == [0, 0, 0]),
                "column {x} has no ink"
            );
        }
    }

    #[test]
    fn widths_outside_the_limits_are_refused() {
        let b = Board::new();
        assert!(matches!(
            Picture::render(&b, BOUNDS, MIN_WIDTH - 1),
            Err(PngError::Width(_))
        ));
        assert!(matches!(
            Picture::render(&b, BOUNDS, MAX_WIDTH + 1),
            Err(PngError::Width(_))
        ));
        assert!(Picture::render(&b, BOUNDS, MIN_WIDTH).is_ok());
    }

    #[test]
    fn the_png_decodes_to_the_same_pixels() {
        let b = board(&[("#4363d8", [10.0, 10.0, 190.0, 90.0])]);
        let bounds = Bounds {
            width: 200.0,
            height: 100.0,
        };
        let p = Picture::render(&b, bounds, 200).unwrap();
        let bytes = p.to_png().unwrap();
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (200, 100));
        assert_eq!(&buf[..info.buffer_size()], &p.rgb[..]);
    }

    #[test]
    fn file_names_carry_the_utc_time() {
        assert_eq!(file_name(0), "rt-canvas-19700101-000000.png");
        // 2024-02-29 13:05:09 UTC.
        assert_eq!(file_name(1_709_211_909), "rt-canvas-20240229-130509.png");
        assert_eq!(file_name(951_782_400), "rt-canvas-20000229-000000.png");
        let dir = tempfile::tempdir().unwrap();
        let first = fresh_path(dir.path(), 0);
        std::fs::write(&first, b"x").unwrap();
        assert_eq!(
            fresh_path(dir.path(), 0),
            dir.path().join("rt-canvas-19700101-000000-2.png")
        );
    }

    #[test]
    fn colours_parse() {
        assert_eq!(hex_rgb("#ff8000"), Some([255, 128, 0]));
        assert_eq!(hex_rgb("ff8000"), None);
        assert_eq!(hex_rgb("#ff80"), None);
        assert_eq!(hex_rgb("#ff80é0"), None);
    }
}
