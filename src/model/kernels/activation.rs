//! SiLU, `x·σ(x)`, and its gradient `dy·σ(x)·(1 + x·(1 − σ(x)))`, on plain `f32` slices, in
//! one pass each (burn's generic path makes several: sigmoid, product, and more backward).

use rayon::prelude::*;

use super::lanes::{self, Kernel};

/// Elements per work item.
const CHUNK: usize = 1 << 14;

struct Forward<'a> {
    y: &'a mut [f32],
    x: &'a [f32],
}

impl Kernel for Forward<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        for (y, &x) in self.y.iter_mut().zip(self.x) {
            *y = x * lanes::sigmoid(x);
        }
    }
}

struct Backward<'a> {
    dx: &'a mut [f32],
    x: &'a [f32],
    dy: &'a [f32],
}

impl Kernel for Backward<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        for ((dx, &x), &dy) in self.dx.iter_mut().zip(self.x).zip(self.dy) {
            let s = lanes::sigmoid(x);
            *dx = dy * s * (1.0 + x * (1.0 - s));
        }
    }
}

/// `x·σ(x)`, element by element.
pub fn silu(x: &[f32]) -> Vec<f32> {
    let mut y = vec![0.0; x.len()];
    y.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(y, x)| lanes::run(Forward { y, x }));
    y
}

/// The gradient with respect to `x`, given the output gradient `dy`.
pub fn silu_grad(x: &[f32], dy: &[f32]) -> Vec<f32> {
    assert_eq!(x.len(), dy.len(), "output gradient length");
    let mut dx = vec![0.0; x.len()];
    dx.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK).zip(dy.par_chunks(CHUNK)))
        .for_each(|(dx, (x, dy))| lanes::run(Backward { dx, x, dy }));
    dx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silu_and_its_gradient_match_the_definition() {
        let x: Vec<f32> = (-400..400).map(|i| i as f32 / 20.0).collect();
        let y = silu(&x);
        let dx = silu_grad(&x, &vec![1.0; x.len()]);
        for ((&x, &y), &dx) in x.iter().zip(&y).zip(&dx) {
            let x64 = x as f64;
            let s = 1.0 / (1.0 + (-x64).exp());
            assert!((y as f64 - x64 * s).abs() < 1e-5, "silu({x})");
            let h = 1e-3;
            let f = |v: f64| v / (1.0 + (-v).exp());
            let numeric = (f(x64 + h) - f(x64 - h)) / (2.0 * h);
            assert!(
                (dx as f64 - numeric).abs() < 1e-4,
                "silu'({x}): {dx} vs {numeric}"
            );
        }
    }
}
