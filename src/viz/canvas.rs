//! An RGB raster to draw on — rectangles, lines, text, grey-scale digit images — and its PNG
//! encoding. Pure Rust, no system libraries.

use std::path::Path;

use super::font;

/// An RGB colour.
pub type Rgb = [u8; 3];

/// White.
pub const WHITE: Rgb = [255, 255, 255];
/// Black.
pub const BLACK: Rgb = [0, 0, 0];
/// Light grey, for grid lines.
pub const GREY: Rgb = [215, 215, 215];

/// A picture in memory, row-major RGB.
#[derive(Debug, Clone)]
pub struct Canvas {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `width × height × 3` bytes.
    pub pixels: Vec<u8>,
}

impl Canvas {
    /// A canvas filled with one colour.
    pub fn new(width: usize, height: usize, fill: Rgb) -> Self {
        let pixels = fill
            .iter()
            .copied()
            .cycle()
            .take(width * height * 3)
            .collect();
        Self {
            width,
            height,
            pixels,
        }
    }

    /// Sets one pixel; coordinates outside the canvas are ignored.
    pub fn set(&mut self, x: i64, y: i64, c: Rgb) {
        if x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height {
            let at = (y as usize * self.width + x as usize) * 3;
            self.pixels[at..at + 3].copy_from_slice(&c);
        }
    }

    /// Fills the rectangle with top-left corner `(x, y)`.
    pub fn fill_rect(&mut self, x: i64, y: i64, w: usize, h: usize, c: Rgb) {
        for dy in 0..h as i64 {
            for dx in 0..w as i64 {
                self.set(x + dx, y + dy, c);
            }
        }
    }

    /// Draws a line of the given thickness between two points.
    pub fn line(&mut self, from: (f64, f64), to: (f64, f64), thickness: usize, c: Rgb) {
        let steps = ((to.0 - from.0).abs().max((to.1 - from.1).abs()).ceil() as usize).max(1);
        let half = thickness as i64 / 2;
        for i in 0..=steps {
            let s = i as f64 / steps as f64;
            let x = (from.0 + s * (to.0 - from.0)).round() as i64;
            let y = (from.1 + s * (to.1 - from.1)).round() as i64;
            self.fill_rect(x - half, y - half, thickness, thickness, c);
        }
    }

    /// Draws text with its top-left corner at `(x, y)`, each font pixel `scale` pixels wide.
    pub fn text(&mut self, x: i64, y: i64, text: &str, scale: usize, c: Rgb) {
        for (i, ch) in text.chars().enumerate() {
            let left = x + (i * (font::WIDTH + 1) * scale) as i64;
            for (row, bits) in font::glyph(ch).iter().enumerate() {
                for col in 0..font::WIDTH {
                    if bits & (1 << (font::WIDTH - 1 - col)) != 0 {
                        let px = left + (col * scale) as i64;
                        let py = y + (row * scale) as i64;
                        self.fill_rect(px, py, scale, scale, c);
                    }
                }
            }
        }
    }

    /// Draws text centred horizontally on `cx`.
    pub fn text_centred(&mut self, cx: i64, y: i64, text: &str, scale: usize, c: Rgb) {
        let w = font::text_width(text, scale) as i64;
        self.text(cx - w / 2, y, text, scale, c);
    }

    /// Draws a grey-scale image (bytes, 0 = black) enlarged `zoom` times at `(x, y)`.
    pub fn blit_grey(&mut self, x: i64, y: i64, img: &[u8], w: usize, h: usize, zoom: usize) {
        for row in 0..h {
            for col in 0..w {
                let v = img[row * w + col];
                let (px, py) = (x + (col * zoom) as i64, y + (row * zoom) as i64);
                self.fill_rect(px, py, zoom, zoom, [v, v, v]);
            }
        }
    }

    /// Encodes the canvas as PNG: one grey channel when every pixel is grey (sample sheets,
    /// a third of the size), RGB otherwise.
    pub fn to_png(&self) -> Vec<u8> {
        let grey = self.pixels.chunks(3).all(|p| p[0] == p[1] && p[1] == p[2]);
        let (colour, data) = if grey {
            let values: Vec<u8> = self.pixels.chunks(3).map(|p| p[0]).collect();
            (png::ColorType::Grayscale, values)
        } else {
            (png::ColorType::Rgb, self.pixels.clone())
        };
        let mut out = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut out, self.width as u32, self.height as u32);
            encoder.set_color(colour);
            encoder.set_depth(png::BitDepth::Eight);
            encoder.set_compression(png::Compression::Best);
            let mut writer = encoder
                .write_header()
                .expect("writing to a Vec cannot fail");
            writer
                .write_image_data(&data)
                .expect("the buffer matches the header");
        }
        out
    }

    /// Writes the canvas as a PNG file, atomically.
    pub fn save_png(&self, path: &Path) -> Result<(), crate::atomic::WriteError> {
        crate::atomic::write(path, &self.to_png())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_decodes_to_the_same_pixels() {
        let mut canvas = Canvas::new(7, 5, WHITE);
        canvas.set(3, 2, [10, 20, 30]);
        let png = canvas.to_png();
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (7, 5));
        assert_eq!(&buf[..info.buffer_size()], canvas.pixels.as_slice());
    }

    #[test]
    fn a_grey_canvas_is_written_with_one_channel() {
        let mut canvas = Canvas::new(6, 4, WHITE);
        canvas.set(1, 1, [90, 90, 90]);
        let decoder = png::Decoder::new(std::io::Cursor::new(canvas.to_png()));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Grayscale);
        let grey: Vec<u8> = canvas.pixels.chunks(3).map(|p| p[0]).collect();
        assert_eq!(&buf[..info.buffer_size()], grey.as_slice());
    }

    #[test]
    fn text_marks_pixels() {
        let mut canvas = Canvas::new(40, 10, WHITE);
        canvas.text(1, 1, "W=3", 1, BLACK);
        assert!(canvas.pixels.iter().any(|&p| p == 0));
    }
}
