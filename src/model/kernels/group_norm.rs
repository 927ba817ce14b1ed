//! Group normalisation followed by SiLU and a per-image, per-channel shift,
//! `y = silu(γ·(x − μ)/√(σ² + ε) + β) + s[n, c]`, on plain `f32` slices in NCHW order: the
//! forward pass and all four gradients. (The residual block adds its time and label offsets
//! right after its first normalisation; the second passes no shift.)
//!
//! burn's generic path makes about seven passes over the tensor forward (mean, centring,
//! square, variance, scale, affine, activation) and more backward. Here the forward pass
//! reads each group twice (statistics, then output) and the backward pass reads it twice
//! (group sums, then input gradient), recomputing the normalised values instead of storing
//! them. Images are spread over the rayon threads; the per-channel sums for `γ` and `β` are
//! kept per image and added in batch order, so results do not depend on the thread count.

use rayon::prelude::*;

use super::lanes::{self, Kernel, LANES};

/// Sizes of one normalisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Groups {
    /// Images in the batch.
    pub batch: usize,
    /// Channels, a multiple of `groups`.
    pub channels: usize,
    /// Groups of consecutive channels sharing statistics.
    pub groups: usize,
    /// Pixels per channel (`h·w`).
    pub pixels: usize,
}

impl Groups {
    fn image(&self) -> usize {
        self.channels * self.pixels
    }

    fn per_group(&self) -> usize {
        self.channels / self.groups
    }

    fn check(&self, x: &[f32], gamma: &[f32], beta: &[f32]) {
        assert!(
            self.groups > 0 && self.channels % self.groups == 0,
            "{} channels do not split into {} groups",
            self.channels,
            self.groups
        );
        assert_eq!(x.len(), self.batch * self.image(), "input length");
        assert_eq!(gamma.len(), self.channels, "gamma length");
        assert_eq!(beta.len(), self.channels, "beta length");
    }
}

/// Mean and `1/√(σ² + ε)` of one group's values (two passes, for accuracy).
#[inline(always)]
fn statistics(values: &[f32], epsilon: f32) -> (f32, f32) {
    let m = values.len() as f32;
    let mean = lanes::sum(values) / m;
    let var = lanes::sum_squared_deviations(values, mean) / m;
    (mean, 1.0 / (var + epsilon).sqrt())
}

/// The forward pass over one image.
struct ForwardImage<'a> {
    y: &'a mut [f32],
    x: &'a [f32],
    shift: &'a [f32],
    stats: &'a mut [(f32, f32)],
    gamma: &'a [f32],
    beta: &'a [f32],
    s: &'a Groups,
    epsilon: f32,
}

impl Kernel for ForwardImage<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let (cg, p) = (self.s.per_group(), self.s.pixels);
        for (g, stat) in self.stats.iter_mut().enumerate() {
            let (mean, rstd) = statistics(&self.x[g * cg * p..(g + 1) * cg * p], self.epsilon);
            *stat = (mean, rstd);
            for c in g * cg..(g + 1) * cg {
                let a = self.gamma[c] * rstd;
                let b = self.beta[c] - mean * a;
                let shift = self.shift[c];
                let span = c * p..(c + 1) * p;
                for (y, &x) in self.y[span.clone()].iter_mut().zip(&self.x[span]) {
                    let z = a * x + b;
                    *y = z * lanes::sigmoid(z) + shift;
                }
            }
        }
    }
}

/// The forward pass, `shift` being `[batch, channels]`. Returns the output
/// `[batch, channels, h, w]` and, per image and group, the mean and inverse standard
/// deviation (`[batch·groups]` each) for the backward pass.
pub fn forward(
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    shift: &[f32],
    s: &Groups,
    epsilon: f32,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    s.check(x, gamma, beta);
    assert_eq!(shift.len(), s.batch * s.channels, "shift length");
    let mut y = vec![0.0; x.len()];
    let mut stats = vec![(0.0, 0.0); s.batch * s.groups];
    y.par_chunks_mut(s.image())
        .zip(x.par_chunks(s.image()))
        .zip(shift.par_chunks(s.channels))
        .zip(stats.par_chunks_mut(s.groups))
        .for_each(|(((y, x), shift), stats)| {
            lanes::run(ForwardImage {
                y,
                x,
                shift,
                stats,
                gamma,
                beta,
                s,
                epsilon,
            })
        });
    let (mean, rstd) = stats.into_iter().unzip();
    (y, mean, rstd)
}

/// The backward pass over one image; `sums` receives Σ dz·x̂ and then Σ dz per channel, and
/// `dshift` Σ dy per channel.
struct BackwardImage<'a> {
    dx: &'a mut [f32],
    x: &'a [f32],
    dy: &'a [f32],
    mean: &'a [f32],
    rstd: &'a [f32],
    sums: &'a mut [f32],
    dshift: &'a mut [f32],
    gamma: &'a [f32],
    beta: &'a [f32],
    s: &'a Groups,
}

/// Over one channel: writes `dz` into `dx` and returns `(Σ dz·x̂, Σ dz, Σ dy)`.
#[inline(always)]
fn channel_dz(
    dx: &mut [f32],
    x: &[f32],
    dy: &[f32],
    a: f32,
    b: f32,
    mu: f32,
    r: f32,
) -> (f32, f32, f32) {
    let (mut dg, mut db, mut ds) = ([0.0f32; LANES], [0.0f32; LANES], [0.0f32; LANES]);
    let step =
        |d: &mut f32, x: f32, dy: f32, i: usize, dg: &mut [f32], db: &mut [f32], ds: &mut [f32]| {
            let z = a * x + b;
            let sg = lanes::sigmoid(z);
            let dz = dy * sg * (1.0 + z * (1.0 - sg));
            *d = dz;
            dg[i] += dz * ((x - mu) * r);
            db[i] += dz;
            ds[i] += dy;
        };
    let n = x.len() / LANES * LANES;
    for ((d, x), dy) in dx[..n]
        .chunks_exact_mut(LANES)
        .zip(x[..n].chunks_exact(LANES))
        .zip(dy[..n].chunks_exact(LANES))
    {
        for i in 0..LANES {
            step(&mut d[i], x[i], dy[i], i, &mut dg, &mut db, &mut ds);
        }
    }
    for (i, ((d, &x), &dy)) in dx[n..].iter_mut().zip(&x[n..]).zip(&dy[n..]).enumerate() {
        step(d, x, dy, i, &mut dg, &mut db, &mut ds);
    }
    (lanes::fold(dg), lanes::fold(db), lanes::fold(ds))
}

impl Kernel for BackwardImage<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let (cg, p) = (self.s.per_group(), self.s.pixels);
        let m = (cg * p) as f32;
        let (dgamma, dbeta) = self.sums.split_at_mut(self.s.channels);
        for g in 0..self.s.groups {
            let (mu, r) = (self.mean[g], self.rstd[g]);
            // Pass 1: dz into dx; channel sums; the group's Σ dx̂ and Σ dx̂·x̂.
            let (mut s1, mut s2) = (0.0f32, 0.0f32);
            for c in g * cg..(g + 1) * cg {
                let a = self.gamma[c] * r;
                let b = self.beta[c] - mu * a;
                let span = c * p..(c + 1) * p;
                let (dg, db, ds) = channel_dz(
                    &mut self.dx[span.clone()],
                    &self.x[span.clone()],
                    &self.dy[span],
                    a,
                    b,
                    mu,
                    r,
                );
                dgamma[c] = dg;
                dbeta[c] = db;
                self.dshift[c] = ds;
                s1 += self.gamma[c] * db;
                s2 += self.gamma[c] * dg;
            }
            // Pass 2: dx = r·(γ·dz − mean(dx̂) − x̂·mean(dx̂·x̂)).
            let (k1, k2) = (s1 / m, s2 / m);
            for c in g * cg..(g + 1) * cg {
                let gc = self.gamma[c];
                let span = c * p..(c + 1) * p;
                for (d, &x) in self.dx[span.clone()].iter_mut().zip(&self.x[span]) {
                    let xhat = (x - mu) * r;
                    *d = r * (gc * *d - k1 - xhat * k2);
                }
            }
        }
    }
}

/// The gradients with respect to `x`, `γ`, `β` and the shift, given the output gradient
/// `dy` and the statistics the forward pass returned.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    rstd: &[f32],
    dy: &[f32],
    s: &Groups,
) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    s.check(x, gamma, beta);
    assert_eq!(dy.len(), x.len(), "output gradient length");
    assert_eq!(mean.len(), s.batch * s.groups, "statistics length");
    assert_eq!(rstd.len(), s.batch * s.groups, "statistics length");
    let mut dx = vec![0.0; x.len()];
    // Per image: Σ dz·x̂ then Σ dz for each channel.
    let mut sums = vec![0.0f32; s.batch * 2 * s.channels];
    let mut dshift = vec![0.0f32; s.batch * s.channels];
    dx.par_chunks_mut(s.image())
        .zip(x.par_chunks(s.image()))
        .zip(dy.par_chunks(s.image()))
        .zip(mean.par_chunks(s.groups).zip(rstd.par_chunks(s.groups)))
        .zip(
            sums.par_chunks_mut(2 * s.channels)
                .zip(dshift.par_chunks_mut(s.channels)),
        )
        .for_each(|((((dx, x), dy), (mean, rstd)), (sums, dshift))| {
            lanes::run(BackwardImage {
                dx,
                x,
                dy,
                mean,
                rstd,
                sums,
                dshift,
                gamma,
                beta,
                s,
            })
        });
    let mut dgamma = vec![0.0f32; s.channels];
    let mut dbeta = vec![0.0f32; s.channels];
    for image in sums.chunks_exact(2 * s.channels) {
        let (dg, db) = image.split_at(s.channels);
        dgamma.iter_mut().zip(dg).for_each(|(a, b)| *a += b);
        dbeta.iter_mut().zip(db).for_each(|(a, b)| *a += b);
    }
    (dx, dgamma, dbeta, dshift)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Central differences of a scalar loss agree with the analytic gradients.
    #[test]
    fn gradients_match_finite_differences() {
        let s = Groups {
            batch: 2,
            channels: 4,
            groups: 2,
            pixels: 3,
        };
        let n = s.batch * s.image();
        let x: Vec<f32> = (0..n).map(|i| ((i * 37 % 11) as f32 - 5.0) / 3.0).collect();
        let gamma = vec![1.3, -0.7, 0.9, 1.1];
        let beta = vec![0.2, -0.1, 0.4, 0.0];
        let dy: Vec<f32> = (0..n).map(|i| ((i * 13 % 7) as f32 - 3.0) / 4.0).collect();
        let shift: Vec<f32> = (0..s.batch * s.channels).map(|i| i as f32 / 10.0).collect();
        let loss = |x: &[f32], gamma: &[f32], beta: &[f32], shift: &[f32]| -> f64 {
            let (y, _, _) = forward(x, gamma, beta, shift, &s, 1e-5);
            y.iter()
                .zip(&dy)
                .map(|(a, b)| (*a as f64) * (*b as f64))
                .sum()
        };
        let (_, mean, rstd) = forward(&x, &gamma, &beta, &shift, &s, 1e-5);
        let (dx, dg, db, ds) = backward(&x, &gamma, &beta, &mean, &rstd, &dy, &s);
        let h = 1e-2f32;
        let numeric = |f: &dyn Fn(f32) -> f64| (f(h) - f(-h)) / (2.0 * h as f64);
        for i in 0..n {
            let d = numeric(&|e| {
                let mut x = x.clone();
                x[i] += e;
                loss(&x, &gamma, &beta, &shift)
            });
            assert!((d - dx[i] as f64).abs() < 2e-3, "dx[{i}]: {d} vs {}", dx[i]);
        }
        for c in 0..s.channels {
            let d = numeric(&|e| {
                let mut g = gamma.clone();
                g[c] += e;
                loss(&x, &g, &beta, &shift)
            });
            assert!(
                (d - dg[c] as f64).abs() < 2e-3,
                "dgamma[{c}]: {d} vs {}",
                dg[c]
            );
            let d = numeric(&|e| {
                let mut b = beta.clone();
                b[c] += e;
                loss(&x, &gamma, &b, &shift)
            });
            assert!(
                (d - db[c] as f64).abs() < 2e-3,
                "dbeta[{c}]: {d} vs {}",
                db[c]
            );
        }
        for i in 0..s.batch * s.channels {
            let d = numeric(&|e| {
                let mut sh = shift.clone();
                sh[i] += e;
                loss(&x, &gamma, &beta, &sh)
            });
            assert!(
                (d - ds[i] as f64).abs() < 2e-3,
                "dshift[{i}]: {d} vs {}",
                ds[i]
            );
        }
    }
}
