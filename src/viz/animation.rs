//! Animated GIFs of canvases, in 256 grey levels (the digits and text are grey anyway).

use super::canvas::Canvas;

/// Encodes frames of equal size as a looping GIF, each shown `delay` hundredths of a second
/// and the last one `hold` hundredths.
///
/// # Panics
/// If the frames differ in size or exceed 65,535 pixels a side (invariants of the callers).
pub fn gif(frames: &[Canvas], delay: u16, hold: u16) -> Vec<u8> {
    let first = frames.first().expect("an animation has at least one frame");
    let (w, h) = (first.width as u16, first.height as u16);
    let palette: Vec<u8> = (0..=255u8).flat_map(|v| [v, v, v]).collect();
    let mut out = Vec::new();
    {
        let mut encoder = gif::Encoder::new(&mut out, w, h, &palette).expect("writing to a Vec");
        encoder
            .set_repeat(gif::Repeat::Infinite)
            .expect("writing to a Vec");
        for (i, canvas) in frames.iter().enumerate() {
            assert_eq!((canvas.width, canvas.height), (first.width, first.height));
            let grey: Vec<u8> = canvas
                .pixels
                .chunks(3)
                .map(|p| ((p[0] as u32 * 299 + p[1] as u32 * 587 + p[2] as u32 * 114) / 1000) as u8)
                .collect();
            let mut frame = gif::Frame::from_indexed_pixels(w, h, grey, None);
            frame.delay = if i + 1 == frames.len() { hold } else { delay };
            encoder.write_frame(&frame).expect("writing to a Vec");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::viz::canvas::{BLACK, WHITE};

    #[test]
    fn frames_decode_back_in_order() {
        let mut a = Canvas::new(6, 4, WHITE);
        a.set(1, 1, BLACK);
        let b = Canvas::new(6, 4, BLACK);
        let bytes = gif(&[a, b], 5, 50);
        let mut options = gif::DecodeOptions::new();
        options.set_color_output(gif::ColorOutput::Indexed);
        let mut decoder = options.read_info(bytes.as_slice()).unwrap();
        let first = decoder.read_next_frame().unwrap().unwrap().clone();
        assert_eq!(first.buffer[6 + 1], 0);
        assert_eq!(first.buffer[0], 255);
        let second = decoder.read_next_frame().unwrap().unwrap();
        assert_eq!(second.delay, 50);
        assert!(decoder.read_next_frame().unwrap().is_none());
    }
}
