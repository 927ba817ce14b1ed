//! Grids of digits: sample sheets, the guidance comparison (one titled panel per scale) and
//! the probability-path strip.

use super::canvas::{Canvas, BLACK, WHITE};

/// A titled block of equally sized grey-scale images laid out in rows of `cols`.
#[derive(Debug, Clone)]
pub struct Panel {
    /// Drawn above the images (empty for none).
    pub title: String,
    /// Optional caption under each image (e.g. its label); empty for none.
    pub captions: Vec<String>,
    /// The images, `side × side` bytes each.
    pub images: Vec<Vec<u8>>,
    /// Images per row.
    pub cols: usize,
}

const GAP: usize = 2;
const MARGIN: usize = 12;
const TITLE_H: usize = 22;
const CAPTION_H: usize = 11;

/// Draws panels side by side; every image is `side × side` pixels enlarged `zoom` times.
///
/// # Panics
/// If an image does not hold `side × side` bytes (an invariant of the callers).
pub fn panels(panels: &[Panel], side: usize, zoom: usize) -> Canvas {
    let cell = side * zoom + GAP;
    let has_captions = panels.iter().any(|p| !p.captions.is_empty());
    let row_h = cell + if has_captions { CAPTION_H } else { 0 };
    let has_title = panels.iter().any(|p| !p.title.is_empty());
    let top = MARGIN + if has_title { TITLE_H } else { 0 };
    let size = |p: &Panel| {
        let cols = p.cols.max(1).min(p.images.len().max(1));
        let rows = p.images.len().div_ceil(cols);
        (cols * cell, rows * row_h)
    };
    let width = MARGIN + panels.iter().map(|p| size(p).0 + MARGIN).sum::<usize>();
    let height = top + panels.iter().map(|p| size(p).1).max().unwrap_or(0) + MARGIN;

    let mut canvas = Canvas::new(width, height, WHITE);
    let mut left = MARGIN;
    for panel in panels {
        let (w, _) = size(panel);
        let cols = panel.cols.max(1);
        canvas.text_centred((left + w / 2) as i64, MARGIN as i64, &panel.title, 2, BLACK);
        for (i, img) in panel.images.iter().enumerate() {
            assert_eq!(
                img.len(),
                side * side,
                "every image in a panel is side × side"
            );
            let x = (left + (i % cols) * cell) as i64;
            let y = (top + (i / cols) * row_h) as i64;
            canvas.blit_grey(x, y, img, side, side, zoom);
            if let Some(caption) = panel.captions.get(i) {
                let cx = x + (side * zoom / 2) as i64;
                canvas.text_centred(cx, y + (side * zoom) as i64 + 2, caption, 1, BLACK);
            }
        }
        left += w + MARGIN;
    }
    canvas
}

/// A single untitled grid of images.
pub fn grid(images: &[Vec<u8>], side: usize, cols: usize, zoom: usize) -> Canvas {
    let panel = Panel {
        title: String::new(),
        captions: Vec::new(),
        images: images.to_vec(),
        cols,
    };
    panels(&[panel], side, zoom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panels_are_laid_out_side_by_side() {
        let img = vec![0u8; 4];
        let panel = |t: &str| Panel {
            title: t.into(),
            captions: vec![],
            images: vec![img.clone(); 4],
            cols: 2,
        };
        let one = panels(&[panel("a")], 2, 3);
        let two = panels(&[panel("a"), panel("b")], 2, 3);
        assert_eq!(two.height, one.height);
        assert_eq!(two.width, 2 * one.width - MARGIN);
    }
}
