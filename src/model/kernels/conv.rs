//! The 3×3 convolution (padding 1, stride 1 or 2) on the CPU, on plain `f32` slices in NCHW
//! order: forward, input gradient, weight gradient and bias gradient.
//!
//! Every pass is a few matrix products per panel of images, each on one rayon thread, so a
//! step of a small network keeps both cores busy without splitting tiny matrices.
//!
//! At stride 1 the images of a panel are stacked into one tall image, with a zero row above,
//! between and below them, which supplies the vertical padding. That image is copied three
//! times, shifted by one column left, not at all and right (the horizontal taps); a kernel
//! row `kh` then reads those copies from row `kh` on, so the convolution is three products
//! `y += W_kh · shifted[kh..]` with no further copying. The output rows that fall on the
//! separators are computed and dropped.
//!
//! At stride 2 each image is unfolded into a `[cin·9, oh·ow]` matrix of patches (im2col):
//! `y = W · cols + bias`, `dcols = Wᵀ · dy` folded back onto the input (col2im), and
//! `dW = Σ dy · colsᵀ`.
//!
//! The stride-1 input gradient is itself a stride-1 convolution (below), so it runs as a
//! forward pass.

use std::cell::RefCell;
use std::mem::MaybeUninit;

use rayon::prelude::*;

/// Sizes of one 3×3 convolution with padding 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Images in the batch.
    pub batch: usize,
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// 1 or 2.
    pub stride: usize,
}

impl Geometry {
    /// Output height.
    pub fn oh(&self) -> usize {
        (self.h + 2 - 3) / self.stride + 1
    }

    /// Output width.
    pub fn ow(&self) -> usize {
        (self.w + 2 - 3) / self.stride + 1
    }

    /// Rows of an unfolded image: one per input channel and kernel tap.
    fn taps(&self) -> usize {
        self.cin * 9
    }

    /// Output pixels of one image.
    fn pixels(&self) -> usize {
        self.oh() * self.ow()
    }

    fn input_len(&self) -> usize {
        self.cin * self.h * self.w
    }

    fn output_len(&self) -> usize {
        self.cout * self.pixels()
    }
}

/// For output column `o` and tap offset `k` (0, 1, 2), the input column, if inside.
#[inline]
fn source(o: usize, k: usize, stride: usize, len: usize) -> Option<usize> {
    (o * stride + k).checked_sub(1).filter(|&i| i < len)
}

/// Images unfolded side by side into one matrix per work item: as many as fit in about a
/// megabyte, so that each matrix product is large but its operand stays in the core's cache.
fn panel_images(g: &Geometry) -> usize {
    ((1 << 20) / (4 * g.taps() * g.pixels())).clamp(1, 16)
}

/// Images stacked into one tall image per work item at stride 1: as many as make about a
/// megabyte of shifted copies.
fn stack_images(g: &Geometry) -> usize {
    ((1 << 20) / (4 * 3 * g.cin * (g.h + 1) * g.w)).clamp(1, 16)
}

/// Rows of the tall image of `m` stacked images: a zero row above each, and one below all.
fn stack_rows(g: &Geometry, m: usize) -> usize {
    m * (g.h + 1) + 1
}

/// Copies `m` images `[cin, h, w]` into `s`, laid out `[cin, 3, t·w]` with `t` the stacked
/// rows: per channel, the tall image three times, copy `kw` holding at column `x` the input
/// column `x + kw − 1` (zero past either edge).
fn stack_shifted(x: &[f32], g: &Geometry, m: usize, s: &mut [f32]) {
    let (h, w, hw) = (g.h, g.w, g.h * g.w);
    let t = stack_rows(g, m);
    for (c, planes) in s.chunks_exact_mut(3 * t * w).enumerate() {
        for (kw, plane) in planes.chunks_exact_mut(t * w).enumerate() {
            plane[..w].fill(0.0);
            for i in 0..m {
                let src = &x[i * g.input_len() + c * hw..][..hw];
                let at = (1 + i * (h + 1)) * w;
                let dst = &mut plane[at..at + hw];
                match kw {
                    0 => {
                        dst[1..].copy_from_slice(&src[..hw - 1]);
                        dst.iter_mut().step_by(w).for_each(|v| *v = 0.0);
                    }
                    1 => dst.copy_from_slice(src),
                    _ => {
                        dst[..hw - 1].copy_from_slice(&src[1..]);
                        dst[w - 1..].iter_mut().step_by(w).for_each(|v| *v = 0.0);
                    }
                }
                plane[at + hw..at + hw + w].fill(0.0);
            }
        }
    }
}

/// Copies `m` output gradients `[cout, h, w]` into `dz`, `[cout, (t − 2)·w]`: the tall
/// output of the stacked images, zero on the separator rows.
fn stack_output(dy: &[f32], g: &Geometry, m: usize, dz: &mut [f32]) {
    let (h, w, hw) = (g.h, g.w, g.h * g.w);
    let n = (stack_rows(g, m) - 2) * w;
    for (co, row) in dz.chunks_exact_mut(n).enumerate() {
        for i in 0..m {
            let at = i * (h + 1) * w;
            row[at..at + hw].copy_from_slice(&dy[i * g.output_len() + co * hw..][..hw]);
            if i + 1 < m {
                row[at + hw..at + hw + w].fill(0.0);
            }
        }
    }
}

/// The weight `[cout, cin, 3, 3]` as three matrices `[3][cout, cin·3]`, one per kernel row,
/// columns in the order `(ci, kw)` of the shifted copies.
fn by_kernel_row(weight: &[f32], g: &Geometry) -> Vec<f32> {
    let mut out = vec![0.0; weight.len()];
    for (i, v) in weight.iter().enumerate() {
        out[kernel_row_position(i, g)] = *v;
    }
    out
}

/// Where element `i` of a `[cout, cin, 3, 3]` weight sits in its [`by_kernel_row`] layout.
fn kernel_row_position(i: usize, g: &Geometry) -> usize {
    let (co, ci, kh, kw) = (i / (9 * g.cin), i / 9 % g.cin, i / 3 % 3, i % 3);
    (kh * g.cout + co) * 3 * g.cin + ci * 3 + kw
}

thread_local! {
    /// Each thread's operand (shifted copies or patch matrix) and product buffer, kept
    /// between calls: every element a call reads it has written first, so they are neither
    /// zeroed nor reallocated.
    static SCRATCH: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Runs `work` with this thread's scratch buffers, grown to `a` and `b` elements.
fn with_scratch<R>(a: usize, b: usize, work: impl FnOnce(&mut [f32], &mut [f32]) -> R) -> R {
    SCRATCH.with(|cell| {
        let (x, y) = &mut *cell.borrow_mut();
        if x.len() < a {
            x.resize(a, 0.0);
        }
        if y.len() < b {
            y.resize(b, 0.0);
        }
        work(&mut x[..a], &mut y[..b])
    })
}

/// Unfolds one image `[cin, h, w]` into columns `at..at + oh·ow` of `cols`, a
/// `[cin·9, ld]` matrix.
fn im2col(x: &[f32], g: &Geometry, cols: &mut [f32], ld: usize, at: usize) {
    let (oh, ow, s) = (g.oh(), g.ow(), g.stride);
    for row in 0..g.taps() {
        let (c, kh, kw) = (row / 9, row / 3 % 3, row % 3);
        let plane = &x[c * g.h * g.w..(c + 1) * g.h * g.w];
        let out = &mut cols[row * ld + at..row * ld + at + oh * ow];
        for (oy, line) in out.chunks_exact_mut(ow).enumerate() {
            let Some(iy) = source(oy, kh, s, g.h) else {
                line.fill(0.0);
                continue;
            };
            let src = &plane[iy * g.w..(iy + 1) * g.w];
            // Input column s·ox + kw − 1: only the first (kw = 0) or the last can fall outside.
            let first = usize::from(kw == 0);
            let last = ow.min((g.w + 1 - kw).div_ceil(s));
            line[..first].fill(0.0);
            for (ox, v) in line.iter_mut().enumerate().take(last).skip(first) {
                *v = src[ox * s + kw - 1];
            }
            line[last..].fill(0.0);
        }
    }
}

/// Adds columns `at..at + oh·ow` of the unfolded gradient `cols`, a `[cin·9, ld]` matrix,
/// back onto one image `[cin, h, w]`.
fn col2im(cols: &[f32], ld: usize, at: usize, g: &Geometry, dx: &mut [f32]) {
    let (oh, ow, s) = (g.oh(), g.ow(), g.stride);
    dx.fill(0.0);
    for row in 0..g.taps() {
        let (c, kh, kw) = (row / 9, row / 3 % 3, row % 3);
        let plane = &mut dx[c * g.h * g.w..(c + 1) * g.h * g.w];
        let src = &cols[row * ld + at..row * ld + at + oh * ow];
        for (oy, line) in src.chunks_exact(ow).enumerate() {
            let Some(iy) = source(oy, kh, s, g.h) else {
                continue;
            };
            let dst = &mut plane[iy * g.w..(iy + 1) * g.w];
            for (ox, v) in line.iter().enumerate() {
                if let Some(ix) = source(ox, kw, s, g.w) {
                    dst[ix] += v;
                }
            }
        }
    }
}

/// Copies the images of `y` (`[n, c, p]`) side by side into `panel`, a `[c, n·p]` matrix.
fn gather(y: &[f32], c: usize, p: usize, panel: &mut [f32]) {
    let ld = y.len() / c;
    for (i, image) in y.chunks_exact(c * p).enumerate() {
        for (ch, row) in image.chunks_exact(p).enumerate() {
            panel[ch * ld + i * p..ch * ld + (i + 1) * p].copy_from_slice(row);
        }
    }
}

/// Row-major matrix view: pointer, rows, columns, row stride, column stride.
#[derive(Clone, Copy)]
struct Mat {
    ptr: *const f32,
    rs: isize,
    cs: isize,
}

impl Mat {
    fn rows(s: &[f32], cols: usize) -> Self {
        Self {
            ptr: s.as_ptr(),
            rs: cols as isize,
            cs: 1,
        }
    }

    fn transposed(s: &[f32], cols: usize) -> Self {
        Self {
            ptr: s.as_ptr(),
            rs: 1,
            cs: cols as isize,
        }
    }
}

/// `dst[m×n] (+)= a[m×k] · b[k×n]` on the calling thread; `dst` is row-major.
fn matmul(dst: &mut [f32], accumulate: bool, a: Mat, b: Mat, m: usize, k: usize, n: usize) {
    debug_assert_eq!(dst.len(), m * n);
    // SAFETY: `dst` holds m×n elements; the callers build `a` and `b` over slices holding
    // m×k and k×n elements with these strides, and `dst` aliases neither.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.ptr,
            a.cs,
            a.rs,
            b.ptr,
            b.cs,
            b.rs,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// Checks that the slices fit the geometry.
fn check(g: &Geometry, x: Option<&[f32]>, w: Option<&[f32]>, y: Option<&[f32]>) {
    assert!(
        g.stride == 1 || g.stride == 2,
        "stride {} unsupported",
        g.stride
    );
    assert!(g.h >= 1 && g.w >= 1, "empty image");
    if let Some(x) = x {
        assert_eq!(x.len(), g.batch * g.input_len(), "input length");
    }
    if let Some(w) = w {
        assert_eq!(w.len(), g.cout * g.taps(), "weight length");
    }
    if let Some(y) = y {
        assert_eq!(y.len(), g.batch * g.output_len(), "output gradient length");
    }
}

/// `y = conv(x, weight) + bias`: `x` `[batch, cin, h, w]`, `weight` `[cout, cin, 3, 3]`,
/// `bias` `[cout]`; returns `[batch, cout, oh, ow]`.
pub fn forward(x: &[f32], weight: &[f32], bias: &[f32], g: &Geometry) -> Vec<f32> {
    check(g, Some(x), Some(weight), None);
    assert_eq!(bias.len(), g.cout, "bias length");
    let len = g.batch * g.output_len();
    let mut y = Vec::with_capacity(len);
    let out = &mut y.spare_capacity_mut()[..len];
    if g.stride == 1 {
        forward_stacked(x, weight, bias, g, out);
    } else {
        forward_unfolded(x, weight, bias, g, out);
    }
    // SAFETY: both write every element of `out`, the first `len` of `y`'s capacity.
    unsafe { y.set_len(len) };
    y
}

/// Writes `z + bias` into the NCHW images `y`, `z` being `[cout, n]` with image `i` from
/// column `i·every` on.
fn write_images(
    z: &[f32],
    n: usize,
    every: usize,
    bias: &[f32],
    g: &Geometry,
    y: &mut [MaybeUninit<f32>],
) {
    let p = g.pixels();
    for (i, y) in y.chunks_exact_mut(g.output_len()).enumerate() {
        for (co, (row, b)) in y.chunks_exact_mut(p).zip(bias).enumerate() {
            let src = &z[co * n + i * every..][..p];
            row.iter_mut().zip(src).for_each(|(d, s)| {
                d.write(s + b);
            });
        }
    }
}

/// Stride 1: three products per panel of stacked images.
fn forward_stacked(
    x: &[f32],
    weight: &[f32],
    bias: &[f32],
    g: &Geometry,
    out: &mut [MaybeUninit<f32>],
) {
    let (nb, k3) = (stack_images(g), 3 * g.cin);
    let rows = by_kernel_row(weight, g);
    out.par_chunks_mut(nb * g.output_len())
        .zip(x.par_chunks(nb * g.input_len()))
        .for_each(|(y, x)| {
            let m = x.len() / g.input_len();
            let t = stack_rows(g, m);
            let n = (t - 2) * g.w;
            with_scratch(k3 * t * g.w, g.cout * n, |s, z| {
                stack_shifted(x, g, m, s);
                for kh in 0..3 {
                    // Row (ci, kw) of this kernel row's operand starts kh rows into copy
                    // (ci, kw); the copies are t·w apart.
                    let b = Mat {
                        ptr: s[kh * g.w..].as_ptr(),
                        rs: (t * g.w) as isize,
                        cs: 1,
                    };
                    let a = Mat::rows(&rows[kh * g.cout * k3..(kh + 1) * g.cout * k3], k3);
                    matmul(z, kh > 0, a, b, g.cout, k3, n);
                }
                write_images(z, n, (g.h + 1) * g.w, bias, g, y);
            })
        });
}

/// Stride 2: one product per panel of unfolded images.
fn forward_unfolded(
    x: &[f32],
    weight: &[f32],
    bias: &[f32],
    g: &Geometry,
    out: &mut [MaybeUninit<f32>],
) {
    let (k, p, nb) = (g.taps(), g.pixels(), panel_images(g));
    out.par_chunks_mut(nb * g.output_len())
        .zip(x.par_chunks(nb * g.input_len()))
        .for_each(|(y, x)| {
            let n = x.len() / g.input_len() * p;
            with_scratch(k * n, g.cout * n, |cols, z| {
                for (i, x) in x.chunks_exact(g.input_len()).enumerate() {
                    im2col(x, g, cols, n, i * p);
                }
                matmul(
                    z,
                    false,
                    Mat::rows(weight, k),
                    Mat::rows(cols, n),
                    g.cout,
                    k,
                    n,
                );
                write_images(z, n, p, bias, g, y);
            })
        });
}

/// The gradient of the loss with respect to `x`, given its gradient `dy` with respect to the
/// output; `[batch, cin, h, w]`.
///
/// At stride 1 this is itself a 3×3 convolution, of `dy` with the weight transposed (input
/// and output channels swapped) and flipped: `dx[ci, y, x] = Σ dy[co, y + 1 − kh, x + 1 − kw]
/// · W[co, ci, kh, kw]`. It then runs as a forward pass, with no scatter. At stride 2 the
/// patch gradients `Wᵀ · dy` are folded back onto each image (col2im).
pub fn input_grad(weight: &[f32], dy: &[f32], g: &Geometry) -> Vec<f32> {
    check(g, None, Some(weight), Some(dy));
    if g.stride == 1 {
        let mut flipped = vec![0.0; weight.len()];
        for co in 0..g.cout {
            for ci in 0..g.cin {
                for k in 0..9 {
                    flipped[(ci * g.cout + co) * 9 + 8 - k] = weight[(co * g.cin + ci) * 9 + k];
                }
            }
        }
        let swapped = Geometry {
            cin: g.cout,
            cout: g.cin,
            ..*g
        };
        return forward(dy, &flipped, &vec![0.0; g.cin], &swapped);
    }
    let (k, p, nb) = (g.taps(), g.pixels(), panel_images(g));
    let mut dx = vec![0.0; g.batch * g.input_len()];
    dx.par_chunks_mut(nb * g.input_len())
        .zip(dy.par_chunks(nb * g.output_len()))
        .for_each(|(dx, dy)| {
            let n = dy.len() / g.output_len() * p;
            with_scratch(k * n, g.cout * n, |cols, panel| {
                let panel = &mut panel[..g.cout * n];
                gather(dy, g.cout, p, panel);
                let cols = &mut cols[..k * n];
                let wt = Mat::transposed(weight, k);
                matmul(cols, false, wt, Mat::rows(panel, n), k, g.cout, n);
                for (i, dx) in dx.chunks_exact_mut(g.input_len()).enumerate() {
                    col2im(cols, n, i * p, g, dx);
                }
            })
        });
    dx
}

/// The gradient with respect to the weight, `[cout, cin, 3, 3]`: `Σ dy · colsᵀ` over the
/// batch. The batch is cut into one fixed share per thread, each summed in order and the
/// shares added in order, so the result does not depend on scheduling.
pub fn weight_grad(x: &[f32], dy: &[f32], g: &Geometry) -> Vec<f32> {
    check(g, Some(x), None, Some(dy));
    let shares = rayon::current_num_threads().clamp(1, g.batch.max(1));
    let per = g.batch.div_ceil(shares).max(1);
    let partials: Vec<Vec<f32>> = x
        .par_chunks(per * g.input_len())
        .zip(dy.par_chunks(per * g.output_len()))
        .map(|(x, dy)| {
            if g.stride == 1 {
                weight_grad_stacked(x, dy, g)
            } else {
                weight_grad_unfolded(x, dy, g)
            }
        })
        .collect();
    let mut partials = partials.into_iter();
    let mut dw = partials
        .next()
        .unwrap_or_else(|| vec![0.0; g.cout * g.taps()]);
    for part in partials {
        dw.iter_mut().zip(&part).for_each(|(a, b)| *a += b);
    }
    dw
}

/// Stride 1, one share of the batch: per kernel row, `dW_kh = Σ dz · shifted[kh..]ᵀ` over
/// panels of stacked images, with `dz` the stacked output gradient.
fn weight_grad_stacked(x: &[f32], dy: &[f32], g: &Geometry) -> Vec<f32> {
    let (nb, k3) = (stack_images(g), 3 * g.cin);
    let mut rows = vec![0.0; 3 * g.cout * k3];
    let mut s = vec![0.0; k3 * stack_rows(g, nb) * g.w];
    let mut dz = vec![0.0; g.cout * (stack_rows(g, nb) - 2) * g.w];
    for (j, (x, dy)) in x
        .chunks(nb * g.input_len())
        .zip(dy.chunks(nb * g.output_len()))
        .enumerate()
    {
        let m = x.len() / g.input_len();
        let t = stack_rows(g, m);
        let n = (t - 2) * g.w;
        let s = &mut s[..k3 * t * g.w];
        let dz = &mut dz[..g.cout * n];
        stack_shifted(x, g, m, s);
        stack_output(dy, g, m, dz);
        for (kh, dw) in rows.chunks_exact_mut(g.cout * k3).enumerate() {
            let shifted_t = Mat {
                ptr: s[kh * g.w..].as_ptr(),
                rs: 1,
                cs: (t * g.w) as isize,
            };
            matmul(dw, j > 0, Mat::rows(dz, n), shifted_t, g.cout, n, k3);
        }
    }
    let mut dw = vec![0.0; rows.len()];
    for (i, v) in dw.iter_mut().enumerate() {
        *v = rows[kernel_row_position(i, g)];
    }
    dw
}

/// Stride 2, one share of the batch: `Σ dy · colsᵀ` over panels of unfolded images.
fn weight_grad_unfolded(x: &[f32], dy: &[f32], g: &Geometry) -> Vec<f32> {
    let (k, p, nb) = (g.taps(), g.pixels(), panel_images(g));
    let mut dw = vec![0.0; g.cout * k];
    let mut cols = vec![0.0; k * nb * p];
    let mut panel = vec![0.0; g.cout * nb * p];
    for (j, (x, dy)) in x
        .chunks(nb * g.input_len())
        .zip(dy.chunks(nb * g.output_len()))
        .enumerate()
    {
        let n = x.len() / g.input_len() * p;
        for (i, x) in x.chunks_exact(g.input_len()).enumerate() {
            im2col(x, g, &mut cols, n, i * p);
        }
        let panel = &mut panel[..g.cout * n];
        gather(dy, g.cout, p, panel);
        let cols_t = Mat::transposed(&cols[..k * n], n);
        matmul(&mut dw, j > 0, Mat::rows(panel, n), cols_t, g.cout, n, k);
    }
    dw
}

/// The gradient with respect to the bias, `[cout]`: `dy` summed over images and pixels.
pub fn bias_grad(dy: &[f32], g: &Geometry) -> Vec<f32> {
    check(g, None, None, Some(dy));
    let p = g.pixels();
    let mut db = vec![0.0f64; g.cout];
    for image in dy.chunks_exact(g.output_len()) {
        for (d, row) in db.iter_mut().zip(image.chunks_exact(p)) {
            *d += row.iter().map(|&v| v as f64).sum::<f64>();
        }
    }
    db.into_iter().map(|v| v as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, one multiply-add at a time.
    fn naive(x: &[f32], w: &[f32], b: &[f32], g: &Geometry) -> Vec<f32> {
        let (oh, ow) = (g.oh(), g.ow());
        let mut y = vec![0.0; g.batch * g.cout * oh * ow];
        for n in 0..g.batch {
            for co in 0..g.cout {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut acc = b[co] as f64;
                        for ci in 0..g.cin {
                            for kh in 0..3 {
                                for kw in 0..3 {
                                    let (Some(iy), Some(ix)) = (
                                        source(oy, kh, g.stride, g.h),
                                        source(ox, kw, g.stride, g.w),
                                    ) else {
                                        continue;
                                    };
                                    acc += (x[((n * g.cin + ci) * g.h + iy) * g.w + ix]
                                        * w[((co * g.cin + ci) * 3 + kh) * 3 + kw])
                                        as f64;
                                }
                            }
                        }
                        y[((n * g.cout + co) * oh + oy) * ow + ox] = acc as f32;
                    }
                }
            }
        }
        y
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| (((i as u32).wrapping_mul(2654435761) ^ seed) % 1000) as f32 / 500.0 - 1.0)
            .collect()
    }

    fn dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(a, b)| (*a as f64) * (*b as f64))
            .sum()
    }

    fn geometries() -> Vec<Geometry> {
        let mut out = Vec::new();
        for (h, w) in [(5, 7), (6, 6), (2, 3), (1, 1), (41, 50), (28, 25)] {
            for stride in [1, 2] {
                out.push(Geometry {
                    batch: 3,
                    cin: 2,
                    cout: 4,
                    h,
                    w,
                    stride,
                });
            }
        }
        // Wide enough that a batch of five makes panels of two stacked images (stride 1) or
        // three unfolded ones (stride 2), the last part-filled.
        for stride in [1, 2] {
            let g = Geometry {
                batch: 5,
                cin: 40,
                cout: 3,
                h: 30,
                w: 30,
                stride,
            };
            let per_panel = if stride == 1 {
                stack_images(&g)
            } else {
                panel_images(&g)
            };
            assert_eq!(per_panel, 1 + stride);
            out.push(g);
        }
        out
    }

    #[test]
    fn forward_matches_the_definition() {
        for g in geometries() {
            let x = values(g.batch * g.input_len(), 1);
            let w = values(g.cout * g.taps(), 2);
            let b = values(g.cout, 3);
            let fast = forward(&x, &w, &b, &g);
            let slow = naive(&x, &w, &b, &g);
            let err = fast
                .iter()
                .zip(&slow)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(err < 1e-5, "{g:?}: {err}");
        }
    }

    /// The gradients are the adjoints of the forward map: for any `dy`,
    /// `⟨dy, conv(x, w)⟩` = `⟨input_grad(dy), x⟩` = `⟨weight_grad(dy), w⟩` (bias zero).
    #[test]
    fn gradients_are_the_adjoints_of_the_forward_map() {
        for g in geometries() {
            let x = values(g.batch * g.input_len(), 4);
            let w = values(g.cout * g.taps(), 5);
            let zero = vec![0.0; g.cout];
            let dy = values(g.batch * g.output_len(), 6);
            let y = naive(&x, &w, &zero, &g);
            let lhs = dot(&dy, &y);
            let by_x = dot(&input_grad(&w, &dy, &g), &x);
            let by_w = dot(&weight_grad(&x, &dy, &g), &w);
            assert!((lhs - by_x).abs() < 1e-3, "{g:?}: {lhs} vs {by_x}");
            assert!((lhs - by_w).abs() < 1e-3, "{g:?}: {lhs} vs {by_w}");
            let ones = vec![1.0; g.batch * g.output_len()];
            let db = bias_grad(&ones, &g);
            assert!(db.iter().all(|&v| v == (g.batch * g.pixels()) as f32));
        }
    }

    /// Milliseconds (minimum and median of 30) of each pass for the convolutions of `small`
    /// at batch 128: `cargo test --release --lib conv_timings -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing, run by hand"]
    fn conv_timings() {
        let layers = [
            (4, 32, 14, 1),
            (32, 32, 14, 1),
            (32, 64, 14, 2),
            (64, 64, 7, 1),
            (96, 32, 14, 1),
            (32, 4, 14, 1),
        ];
        for (cin, cout, side, stride) in layers {
            let g = Geometry {
                batch: 128,
                cin,
                cout,
                h: side,
                w: side,
                stride,
            };
            let x = values(g.batch * g.input_len(), 7);
            let w = values(g.cout * g.taps(), 8);
            let b = values(g.cout, 9);
            let dy = values(g.batch * g.output_len(), 10);
            let time = |pass: &dyn Fn() -> Vec<f32>| {
                let mut ms: Vec<f64> = (0..30)
                    .map(|_| {
                        let start = std::time::Instant::now();
                        std::hint::black_box(pass());
                        start.elapsed().as_secs_f64() * 1e3
                    })
                    .collect();
                ms.sort_by(f64::total_cmp);
                format!("{:.2} / {:.2}", ms[0], ms[15])
            };
            println!(
                "{cin:>3} -> {cout:>3} at {side}x{side}, stride {stride}: forward {}, input gradient {}, weight gradient {} ms",
                time(&|| forward(&x, &w, &b, &g)),
                time(&|| input_grad(&w, &dy, &g)),
                time(&|| weight_grad(&x, &dy, &g)),
            );
        }
    }
}
