//! Line charts: the loss curves, and any other series against a shared x axis.

use super::canvas::{Canvas, Rgb, BLACK, GREY, WHITE};
use super::font;

/// Colours given to series in order.
pub const PALETTE: [Rgb; 6] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
];

/// One named series of `(x, y)` points.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// The points, in drawing order.
    pub points: Vec<(f64, f64)>,
}

/// A chart: title, axis names, whether y is drawn on a log scale.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Title above the plot.
    pub title: String,
    /// Name of the x axis.
    pub x_label: String,
    /// Name of the y axis.
    pub y_label: String,
    /// Draw y on a base-10 log scale (non-positive values are skipped).
    pub log_y: bool,
}

const W: usize = 720;
const H: usize = 440;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;

impl Chart {
    /// Draws the series; an empty chart (no finite point) still gets its frame and title.
    pub fn draw(&self, series: &[Series]) -> Canvas {
        let mut canvas = Canvas::new(W, H, WHITE);
        let ty = |y: f64| if self.log_y { y.log10() } else { y };
        let finite: Vec<(f64, f64)> = series
            .iter()
            .flat_map(|s| s.points.iter().copied())
            .filter(|&(x, y)| x.is_finite() && y.is_finite() && (!self.log_y || y > 0.0))
            .map(|(x, y)| (x, ty(y)))
            .collect();
        let (x0, x1) = padded_range(finite.iter().map(|p| p.0));
        let (y0, y1) = padded_range(finite.iter().map(|p| p.1));
        let (pw, ph) = (W as f64 - LEFT - RIGHT, H as f64 - TOP - BOTTOM);
        let px = |x: f64| LEFT + (x - x0) / (x1 - x0) * pw;
        let py = |y: f64| TOP + ph - (y - y0) / (y1 - y0) * ph;

        for fx in nice_ticks(x0, x1) {
            canvas.line((px(fx), TOP), (px(fx), TOP + ph), 1, GREY);
            canvas.text_centred(px(fx) as i64, (TOP + ph + 8.0) as i64, &tick(fx), 1, BLACK);
        }
        let y_ticks = if self.log_y {
            log_ticks(10f64.powf(y0), 10f64.powf(y1))
        } else {
            nice_ticks(y0, y1)
        };
        for value in y_ticks {
            let fy = ty(value);
            canvas.line((LEFT, py(fy)), (LEFT + pw, py(fy)), 1, GREY);
            let label = tick(value);
            let lw = font::text_width(&label, 1) as i64;
            canvas.text(LEFT as i64 - lw - 6, py(fy) as i64 - 3, &label, 1, BLACK);
        }
        canvas.line((LEFT, TOP), (LEFT, TOP + ph), 1, BLACK);
        canvas.line((LEFT, TOP + ph), (LEFT + pw, TOP + ph), 1, BLACK);

        for (s, colour) in series.iter().zip(PALETTE.iter().cycle()) {
            let pts: Vec<(f64, f64)> = s
                .points
                .iter()
                .filter(|&&(x, y)| x.is_finite() && y.is_finite() && (!self.log_y || y > 0.0))
                .map(|&(x, y)| (px(x), py(ty(y))))
                .collect();
            for pair in pts.windows(2) {
                canvas.line(pair[0], pair[1], 2, *colour);
            }
            if pts.len() == 1 {
                canvas.fill_rect(pts[0].0 as i64 - 2, pts[0].1 as i64 - 2, 5, 5, *colour);
            }
        }

        canvas.text_centred(W as i64 / 2, 12, &self.title, 2, BLACK);
        canvas.text_centred(W as i64 / 2, H as i64 - 20, &self.x_label, 1, BLACK);
        canvas.text(4, TOP as i64 - 14, &self.y_label, 1, BLACK);
        for (i, (s, colour)) in series.iter().zip(PALETTE.iter().cycle()).enumerate() {
            let (lx, ly) = (
                LEFT as i64 + pw as i64 - 150,
                TOP as i64 + 8 + 14 * i as i64,
            );
            canvas.fill_rect(lx, ly + 2, 14, 3, *colour);
            canvas.text(lx + 20, ly, &s.name, 1, BLACK);
        }
        canvas
    }
}

fn padded_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let span = (hi - lo).max(1e-9 * hi.abs().max(1.0));
    (lo - 0.03 * span, hi + 0.03 * span)
}

/// Round tick values inside `[lo, hi]`: multiples of 1, 2 or 5 times a power of ten, about
/// five of them, so that a reader sees 0, 200, 400 rather than -17.4, 113, 243.
fn nice_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = hi - lo;
    if !(span > 0.0 && span.is_finite()) {
        return vec![lo];
    }
    let raw = span / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|&s| s >= raw)
        .unwrap_or(10.0 * magnitude);
    // The slack keeps a tick that sits on an end despite rounding (0.7 / 0.1 < 7).
    let first = (lo / step - 1e-9).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

/// Ticks for a log axis over values in `[lo, hi]`: 1, 2 and 5 times each power of ten, or
/// round linear ticks when the range spans less than a factor of four.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    if !(lo > 0.0) || hi / lo < 4.0 {
        return nice_ticks(lo, hi)
            .into_iter()
            .filter(|&v| v > 0.0)
            .collect();
    }
    let mut ticks = Vec::new();
    let mut power = 10f64.powf(lo.log10().floor());
    while power <= hi {
        for m in [1.0, 2.0, 5.0] {
            let v = m * power;
            if (lo..=hi).contains(&v) {
                ticks.push(v);
            }
        }
        power *= 10.0;
    }
    ticks
}

fn tick(v: f64) -> String {
    let a = v.abs();
    if a < 1e-12 {
        "0".into()
    } else if !(1e-3..1e6).contains(&a) {
        format!("{v:.1e}")
    } else {
        // Enough decimals for the value's first three significant digits, without trailing
        // zeros: 0.25, 1.5, 400.
        let decimals = (2 - a.log10().floor() as i64).clamp(0, 6) as usize;
        let text = format!("{v:.decimals$}");
        if text.contains('.') {
            text.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_numbers_inside_the_range() {
        let close = |a: Vec<f64>, b: &[f64]| {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|(x, y)| (x - y).abs() <= 1e-9 * y.abs().max(1.0))
        };
        assert!(close(nice_ticks(-17.4, 632.0), &[0.0, 200.0, 400.0, 600.0]));
        assert!(close(log_ticks(0.25, 0.7), &[0.3, 0.4, 0.5, 0.6, 0.7]));
        assert!(close(log_ticks(0.2, 2.5), &[0.2, 0.5, 1.0, 2.0]));
        assert!(close(log_ticks(0.011, 0.9), &[0.02, 0.05, 0.1, 0.2, 0.5]));
        assert_eq!(tick(0.25), "0.25");
        assert_eq!(tick(400.0), "400");
        assert_eq!(tick(1.5), "1.5");
    }

    #[test]
    fn draws_series_in_their_colours() {
        let chart = Chart {
            title: "loss".into(),
            x_label: "step".into(),
            y_label: "mse".into(),
            log_y: true,
        };
        let series = Series {
            name: "train".into(),
            points: vec![(0.0, 1.0), (10.0, 0.1)],
        };
        let canvas = chart.draw(&[series]);
        let blue = canvas.pixels.chunks(3).filter(|p| *p == PALETTE[0]).count();
        assert!(blue > 100, "the line should be drawn, found {blue} pixels");
    }

    #[test]
    fn empty_and_non_finite_series_do_not_panic() {
        let chart = Chart {
            title: "t".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            log_y: true,
        };
        let bad = Series {
            name: "nan".into(),
            points: vec![(0.0, f64::NAN), (1.0, -1.0)],
        };
        chart.draw(&[bad]);
        chart.draw(&[]);
    }
}
