//! Dormand–Prince 5(4): a fifth-order step with an embedded fourth-order estimate of its
//! error, the first-same-as-last property (6 new evaluations per accepted step), and the
//! standard step-size controller `h ← h · clamp(0.9 · err^(−1/5), 0.2, 5)`.

use super::{SolveError, SolveStats, State, VelocityField};

const C: [f64; 6] = [1.0 / 5.0, 3.0 / 10.0, 4.0 / 5.0, 8.0 / 9.0, 1.0, 1.0];
const A2: [f64; 1] = [1.0 / 5.0];
const A3: [f64; 2] = [3.0 / 40.0, 9.0 / 40.0];
const A4: [f64; 3] = [44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0];
const A5: [f64; 4] = [
    19372.0 / 6561.0,
    -25360.0 / 2187.0,
    64448.0 / 6561.0,
    -212.0 / 729.0,
];
const A6: [f64; 5] = [
    9017.0 / 3168.0,
    -355.0 / 33.0,
    46732.0 / 5247.0,
    49.0 / 176.0,
    -5103.0 / 18656.0,
];
/// Fifth-order weights (also the last stage's coefficients, hence FSAL).
const B: [f64; 6] = [
    35.0 / 384.0,
    0.0,
    500.0 / 1113.0,
    125.0 / 192.0,
    -2187.0 / 6784.0,
    11.0 / 84.0,
];
/// Fifth- minus fourth-order weights, for stages 1..=7.
const E: [f64; 7] = [
    71.0 / 57600.0,
    0.0,
    -71.0 / 16695.0,
    71.0 / 1920.0,
    -17253.0 / 339200.0,
    22.0 / 525.0,
    -1.0 / 40.0,
];

#[allow(clippy::too_many_arguments)]
pub(super) fn dopri5<S: State>(
    field: &mut dyn VelocityField<S>,
    mut x: S,
    t0: f64,
    t1: f64,
    rtol: f64,
    atol: f64,
    max_nfe: u64,
    on_step: &mut dyn FnMut(&S, f64),
) -> Result<(S, SolveStats), SolveError> {
    let mut stats = SolveStats::default();
    let mut t = t0;
    let mut h = (t1 - t0) / 10.0;
    let mut k1 = field.velocity(&x, t);
    stats.nfe += 1;

    while t < t1 {
        if stats.nfe + 6 > max_nfe {
            return Err(SolveError::NfeCap { max_nfe, t });
        }
        let last = t + h >= t1 - 1e-12;
        if last {
            h = t1 - t;
        }
        let stage = |coeffs: &[f64], ks: &[&S]| {
            let terms: Vec<(f64, &S)> = coeffs.iter().zip(ks).map(|(a, k)| (h * a, *k)).collect();
            x.add_scaled(&terms)
        };
        let k2 = field.velocity(&stage(&A2, &[&k1]), t + C[0] * h);
        let k3 = field.velocity(&stage(&A3, &[&k1, &k2]), t + C[1] * h);
        let k4 = field.velocity(&stage(&A4, &[&k1, &k2, &k3]), t + C[2] * h);
        let k5 = field.velocity(&stage(&A5, &[&k1, &k2, &k3, &k4]), t + C[3] * h);
        let k6 = field.velocity(&stage(&A6, &[&k1, &k2, &k3, &k4, &k5]), t + C[4] * h);
        let next = stage(&B, &[&k1, &k2, &k3, &k4, &k5, &k6]);
        let k7 = field.velocity(&next, t + h);
        stats.nfe += 6;

        let ks = [&k1, &k2, &k3, &k4, &k5, &k6, &k7];
        let zero = x.add_scaled(&[(-1.0, &x)]);
        let terms: Vec<(f64, &S)> = E.iter().zip(ks).map(|(e, k)| (h * e, k)).collect();
        let err = zero.add_scaled(&terms);
        let norm = x.error_norm(&next, &err, atol, rtol);

        let factor = if norm == 0.0 {
            5.0
        } else {
            (0.9 * norm.powf(-0.2)).clamp(0.2, 5.0)
        };
        if norm <= 1.0 {
            t = if last { t1 } else { t + h };
            x = next;
            k1 = k7;
            stats.steps += 1;
            on_step(&x, t);
        } else {
            stats.rejected += 1;
        }
        h *= factor;
    }
    Ok((x, stats))
}
