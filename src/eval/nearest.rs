//! Nearest-neighbour distances, to tell generalisation from memorisation.
//!
//! For each generated sample `x` the distance to the closest training image,
//!
//! ```text
//! NN(x) = min_j ‖x − t_j‖₂,
//! ```
//!
//! is found with blocked matrix products (see the private `distance` kernel) and then
//! recomputed directly for the winning pair, so reported distances carry no cancellation
//! error: an exact copy of a training image reports 0. A sample counts as memorised when
//! `NN(x)` falls below a threshold, typically a low [`percentile`] of the distances from
//! held-out real images (the test split) to the training set, which no model can have copied.
//!
//! Cost: 1,000 queries × 60,000 references × 784 pixels is 94 GFLOP of matrix product; on the
//! flex backend it took 1.7–2.0 s (release build, two cores shared with a training run).

use super::distance::{exact_squared, for_each_block};
use super::error::EvalError;
use super::features::Features;

/// The closest reference row of one query row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbour {
    /// Index of the reference row.
    pub index: usize,
    /// Euclidean distance to it.
    pub distance: f32,
}

/// For each query row, its nearest reference row and the distance to it.
///
/// Ties, and near-ties within the rounding of the blocked identity (a relative `~1e-6` of
/// the squared norms), may resolve to either row; the distance is exact for the row chosen.
pub fn nearest_neighbours(
    queries: &Features,
    references: &Features,
) -> Result<Vec<Neighbour>, EvalError> {
    if queries.dim() != references.dim() {
        return Err(EvalError::DimensionMismatch {
            what: "queries and references",
            expected: references.dim(),
            found: queries.dim(),
        });
    }
    let mut best = vec![(f32::INFINITY, 0usize); queries.rows()];
    for_each_block(queries, references, |block| {
        for i in 0..block.queries() {
            let slot = &mut best[block.query_start + i];
            for (j, &d) in block.row(i).iter().enumerate() {
                if d < slot.0 {
                    *slot = (d, block.reference_start + j);
                }
            }
        }
    });
    Ok(best
        .iter()
        .enumerate()
        .map(|(q, &(_, index))| Neighbour {
            index,
            distance: exact_squared(queries.row(q), references.row(index)).sqrt() as f32,
        })
        .collect())
}

/// The `p`-th percentile (`0 ≤ p ≤ 100`) of `values`, interpolating linearly between the
/// two nearest ranks (NumPy's default), so `p = 50` of an even count is the mean of the
/// middle two.
pub fn percentile(values: &[f32], p: f64) -> Result<f64, EvalError> {
    if !(0.0..=100.0).contains(&p) {
        return Err(EvalError::OutOfRange {
            what: "percentile",
            expected: "a value in [0, 100]",
            found: p,
        });
    }
    if values.is_empty() {
        return Err(EvalError::Empty {
            what: "values of a percentile",
            unit: "value",
        });
    }
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(EvalError::NonFinite {
            what: "values of a percentile",
            row: 0,
            col: i,
            value: values[i] as f64,
        });
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f32::total_cmp);
    let rank = p / 100.0 * (sorted.len() - 1) as f64;
    let (low, high) = (rank.floor() as usize, rank.ceil() as usize);
    let (a, b) = (sorted[low] as f64, sorted[high] as f64);
    Ok(a + (rank - low as f64) * (b - a))
}

/// The fraction of samples whose nearest-neighbour distance is at most `threshold`.
pub fn memorised_fraction(sample_nn: &[f32], threshold: f32) -> Result<f64, EvalError> {
    if sample_nn.is_empty() {
        return Err(EvalError::Empty {
            what: "nearest-neighbour distances",
            unit: "value",
        });
    }
    if !threshold.is_finite() {
        return Err(EvalError::OutOfRange {
            what: "memorisation threshold",
            expected: "a finite distance",
            found: threshold as f64,
        });
    }
    let close = sample_nn.iter().filter(|&&d| d <= threshold).count();
    Ok(close as f64 / sample_nn.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::super::features::random_features;
    use super::*;
    use rand::{Rng, SeedableRng};

    fn pixels(rows: usize, seed: u64) -> Features {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let values = (0..rows * 784).map(|_| rng.random::<f32>()).collect();
        Features::new(rows, 784, values).unwrap()
    }

    #[test]
    fn nearest_neighbours_match_a_brute_force_search() {
        // 5,000 references straddle a reference chunk boundary.
        let (queries, references) = (random_features(37, 20, 1), random_features(5_000, 20, 2));
        let found = nearest_neighbours(&queries, &references).unwrap();
        for (q, neighbour) in found.iter().enumerate() {
            let (index, squared) = (0..references.rows())
                .map(|r| (r, exact_squared(queries.row(q), references.row(r))))
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .unwrap();
            assert_eq!(neighbour.index, index);
            assert!((neighbour.distance as f64 - squared.sqrt()).abs() <= 1e-4);
        }
    }

    #[test]
    fn a_copy_of_a_reference_row_has_distance_zero() {
        let references = pixels(300, 3);
        let mut values = pixels(2, 4).values().to_vec();
        values.extend_from_slice(references.row(17));
        values.extend_from_slice(references.row(242));
        let queries = Features::new(4, 784, values).unwrap();
        let found = nearest_neighbours(&queries, &references).unwrap();
        assert_eq!(
            found[2],
            Neighbour {
                index: 17,
                distance: 0.0
            }
        );
        assert_eq!(
            found[3],
            Neighbour {
                index: 242,
                distance: 0.0
            }
        );
        assert!(
            found[0].distance > 5.0 && found[1].distance > 5.0,
            "{found:?}"
        );
        let distances: Vec<f32> = found.iter().map(|n| n.distance).collect();
        assert_eq!(memorised_fraction(&distances, 1.0).unwrap(), 0.5);
    }

    #[test]
    fn percentiles_interpolate_between_ranks() {
        let values = [5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(percentile(&values, 0.0).unwrap(), 1.0);
        assert_eq!(percentile(&values, 50.0).unwrap(), 3.0);
        assert_eq!(percentile(&values, 100.0).unwrap(), 5.0);
        assert!((percentile(&values, 10.0).unwrap() - 1.4).abs() < 1e-12);
        assert_eq!(percentile(&[1.0, 2.0], 50.0).unwrap(), 1.5);
        assert!(matches!(
            percentile(&values, 101.0),
            Err(EvalError::OutOfRange { .. })
        ));
        assert!(matches!(
            percentile(&[], 50.0),
            Err(EvalError::Empty { .. })
        ));
        assert!(matches!(
            memorised_fraction(&[], 1.0),
            Err(EvalError::Empty { .. })
        ));
    }

    #[test]
    fn mismatched_dimensions_are_an_error() {
        let err = nearest_neighbours(&random_features(3, 5, 5), &random_features(4, 6, 6));
        assert_eq!(
            err.unwrap_err().to_string(),
            "dimension mismatch between queries and references: expected 6, found 5"
        );
    }

    /// `cargo test --release --lib eval::nearest -- --ignored --nocapture`
    #[test]
    #[ignore = "timing, run by hand"]
    fn timing_of_one_thousand_samples_against_sixty_thousand_images() {
        let (queries, references) = (pixels(1_000, 7), pixels(60_000, 8));
        let start = std::time::Instant::now();
        let found = nearest_neighbours(&queries, &references).unwrap();
        let distances: Vec<f32> = found.iter().map(|n| n.distance).collect();
        let median = percentile(&distances, 50.0).unwrap();
        println!(
            "1k × 60k × 784: {:.2?}, median distance {median:.3}",
            start.elapsed()
        );
    }
}
