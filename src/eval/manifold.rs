//! Precision and recall against k-nearest-neighbour manifolds (Kynkäänniemi et al., 2019).
//!
//! A set of features `Φ` spans the manifold
//!
//! ```text
//! M(Φ) = ∪_{φ ∈ Φ} B(φ, NN_k(φ, Φ)),
//! ```
//!
//! the union of closed balls around each point with the distance to its k-th nearest *other*
//! point as radius. Precision is the fraction of generated features inside `M(real)` (are the
//! samples realistic?), recall the fraction of real features inside `M(generated)` (is every
//! mode of the data produced?). `k = 3` is the paper's default.
//!
//! The real radii cost a full `n × n` distance pass (≈ 25 GFLOP for 10,000 × 128), so a
//! [`Manifold`] is a value to build once per real set and keep; each evaluation then costs
//! the generated radii and two `n_real × n_generated` passes. Measured on the flex backend
//! (release, two cores shared with a training run), 10,000 real × 1,000 generated × 128:
//! real radii 0.7–1.8 s once, then 0.09–0.34 s per precision/recall evaluation.

use super::distance::for_each_block;
use super::error::EvalError;
use super::features::Features;

/// The neighbour count of the paper's experiments.
pub const DEFAULT_K: usize = 3;

/// A point set with the radii of its k-nearest-neighbour balls.
#[derive(Debug, Clone)]
pub struct Manifold {
    points: Features,
    squared_radii: Vec<f32>,
    k: usize,
}

/// Precision and recall of a generated set, each in `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrecisionRecall {
    /// Fraction of generated features inside the real manifold.
    pub precision: f64,
    /// Fraction of real features inside the generated manifold.
    pub recall: f64,
}

impl Manifold {
    /// The manifold of `points` with k-th-neighbour radii. Needs `1 ≤ k < rows`.
    pub fn new(points: Features, k: usize) -> Result<Self, EvalError> {
        check_k(&points, k)?;
        let rows = points.rows();
        // The k smallest squared distances to other points, ascending, per point.
        let mut best = vec![f32::INFINITY; rows * k];
        for_each_block(&points, &points, |block| {
            for i in 0..block.queries() {
                let q = block.query_start + i;
                let nearest = &mut best[q * k..(q + 1) * k];
                for (j, &d) in block.row(i).iter().enumerate() {
                    if d < nearest[k - 1] && block.reference_start + j != q {
                        insert_sorted(nearest, d);
                    }
                }
            }
        });
        let squared_radii = best.chunks_exact(k).map(|nearest| nearest[k - 1]).collect();
        Ok(Self {
            points,
            squared_radii,
            k,
        })
    }

    /// A manifold from radii computed earlier (say, read from a cache file), checked to be
    /// one finite, non-negative squared radius per point.
    pub fn from_squared_radii(
        points: Features,
        k: usize,
        squared_radii: Vec<f32>,
    ) -> Result<Self, EvalError> {
        check_k(&points, k)?;
        if squared_radii.len() != points.rows() {
            return Err(EvalError::Shape {
                what: format!("squared radii of {} points", points.rows()),
                expected: points.rows(),
                found: squared_radii.len(),
            });
        }
        if let Some(i) = squared_radii
            .iter()
            .position(|r| !(r.is_finite() && *r >= 0.0))
        {
            return Err(EvalError::OutOfRange {
                what: "squared radius",
                expected: "a finite value ≥ 0",
                found: squared_radii[i] as f64,
            });
        }
        Ok(Self {
            points,
            squared_radii,
            k,
        })
    }

    /// The points whose balls make up the manifold.
    pub fn points(&self) -> &Features {
        &self.points
    }

    /// The neighbour count behind the radii.
    pub fn k(&self) -> usize {
        self.k
    }

    /// The squared radius of each point's ball.
    pub fn squared_radii(&self) -> &[f32] {
        &self.squared_radii
    }

    /// For each query row, whether it lies in some ball of the manifold.
    pub fn contains(&self, queries: &Features) -> Result<Vec<bool>, EvalError> {
        if queries.dim() != self.points.dim() {
            return Err(EvalError::DimensionMismatch {
                what: "manifold points and queries",
                expected: self.points.dim(),
                found: queries.dim(),
            });
        }
        let mut inside = vec![false; queries.rows()];
        for_each_block(queries, &self.points, |block| {
            let radii = &self.squared_radii[block.reference_start..];
            for i in 0..block.queries() {
                let flag = &mut inside[block.query_start + i];
                *flag = *flag || block.row(i).iter().zip(radii).any(|(d, r)| d <= r);
            }
        });
        Ok(inside)
    }

    /// The fraction of query rows inside the manifold.
    pub fn coverage(&self, queries: &Features) -> Result<f64, EvalError> {
        let inside = self.contains(queries)?;
        Ok(inside.iter().filter(|&&b| b).count() as f64 / inside.len() as f64)
    }
}

/// Precision and recall of `generated` against the real manifold, whose `k` also builds the
/// generated one.
pub fn precision_recall(
    real: &Manifold,
    generated: &Features,
) -> Result<PrecisionRecall, EvalError> {
    if generated.dim() != real.points.dim() {
        return Err(EvalError::DimensionMismatch {
            what: "real and generated features",
            expected: real.points.dim(),
            found: generated.dim(),
        });
    }
    let precision = real.coverage(generated)?;
    let recall = Manifold::new(generated.clone(), real.k)?.coverage(&real.points)?;
    Ok(PrecisionRecall { precision, recall })
}

fn check_k(points: &Features, k: usize) -> Result<(), EvalError> {
    if k == 0 {
        return Err(EvalError::OutOfRange {
            what: "neighbour count k",
            expected: "at least 1",
            found: 0.0,
        });
    }
    if points.rows() <= k {
        return Err(EvalError::TooFewRows {
            what: "k-nearest-neighbour radii (k + 1 points)",
            expected: k + 1,
            found: points.rows(),
        });
    }
    Ok(())
}

/// Inserts `d` into the ascending `nearest`, dropping its largest entry.
fn insert_sorted(nearest: &mut [f32], d: f32) {
    let mut at = nearest.len() - 1;
    while at > 0 && nearest[at - 1] > d {
        nearest[at] = nearest[at - 1];
        at -= 1;
    }
    nearest[at] = d;
}

#[cfg(test)]
mod tests {
    use super::super::features::random_features;
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_distr::StandardNormal;

    /// `per_cluster` points of unit noise around each listed corner of a cube of side 20;
    /// corners are ≥ 20 apart, so no ball of one cluster reaches another.
    fn clusters(corners: &[usize], per_cluster: usize, seed: u64) -> Features {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut values = Vec::new();
        for &corner in corners {
            for _ in 0..per_cluster {
                for axis in 0..3 {
                    let centre = if corner >> axis & 1 == 1 { 20.0 } else { 0.0 };
                    values.push(centre + rng.sample::<f32, _>(StandardNormal));
                }
            }
        }
        Features::new(corners.len() * per_cluster, 3, values).unwrap()
    }

    #[test]
    fn radii_are_kth_distances_to_other_points() {
        let line = Features::new(5, 1, vec![0.0, 1.0, 3.0, 6.0, 10.0]).unwrap();
        let manifold = Manifold::new(line, 2).unwrap();
        assert_eq!(manifold.squared_radii(), &[9.0, 4.0, 9.0, 16.0, 49.0]);
    }

    #[test]
    fn identical_sets_have_full_precision_and_recall() {
        let real = random_features(600, 16, 1);
        let manifold = Manifold::new(real.clone(), DEFAULT_K).unwrap();
        let pr = precision_recall(&manifold, &real).unwrap();
        assert_eq!(
            pr,
            PrecisionRecall {
                precision: 1.0,
                recall: 1.0
            }
        );
    }

    #[test]
    fn a_distant_generated_set_has_zero_precision_and_recall() {
        let real = random_features(400, 8, 2);
        let far: Vec<f32> = random_features(300, 8, 3)
            .values()
            .iter()
            .map(|v| v + 100.0)
            .collect();
        let far = Features::new(300, 8, far).unwrap();
        let manifold = Manifold::new(real, DEFAULT_K).unwrap();
        let pr = precision_recall(&manifold, &far).unwrap();
        assert_eq!(
            pr,
            PrecisionRecall {
                precision: 0.0,
                recall: 0.0
            }
        );
    }

    #[test]
    fn covering_half_the_modes_gives_full_precision_and_half_recall() {
        let real = clusters(&[0, 1, 2, 3, 4, 5, 6, 7], 200, 4);
        let half = clusters(&[0, 3, 5, 6], 200, 5);
        let manifold = Manifold::new(real, DEFAULT_K).unwrap();
        let pr = precision_recall(&manifold, &half).unwrap();
        // Fresh draws of a cluster land inside its k = 3 balls about 96% of the time (tail
        // points fall outside), so "≈ 1" is a margin, not equality.
        assert!(pr.precision >= 0.9, "{pr:?}");
        // The missing four clusters are out of reach; the present four are nearly covered.
        assert!(pr.recall <= 0.5 && pr.recall >= 0.45, "{pr:?}");
    }

    #[test]
    fn bad_k_and_mismatched_dimensions_are_errors() {
        let points = random_features(3, 4, 6);
        assert!(matches!(
            Manifold::new(points.clone(), 3),
            Err(EvalError::TooFewRows {
                expected: 4,
                found: 3,
                ..
            })
        ));
        assert!(matches!(
            Manifold::new(points.clone(), 0),
            Err(EvalError::OutOfRange { .. })
        ));
        let manifold = Manifold::new(points, 2).unwrap();
        let err = precision_recall(&manifold, &random_features(5, 6, 7)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "dimension mismatch between real and generated features: expected 4, found 6"
        );
    }

    /// `cargo test --release --lib eval::manifold -- --ignored --nocapture`
    #[test]
    #[ignore = "timing, run by hand"]
    fn timing_of_ten_thousand_real_by_one_thousand_generated_in_128_dimensions() {
        let (real, generated) = (
            random_features(10_000, 128, 8),
            random_features(1_000, 128, 9),
        );
        let start = std::time::Instant::now();
        let manifold = Manifold::new(real, DEFAULT_K).unwrap();
        let radii = start.elapsed();
        let start = std::time::Instant::now();
        let pr = precision_recall(&manifold, &generated).unwrap();
        println!(
            "real radii {radii:.2?}, precision/recall {:.2?}: {pr:?}",
            start.elapsed()
        );
    }
}
