//! Blocked squared Euclidean distances, the kernel shared by [`super::manifold`] and
//! [`super::nearest`].
//!
//! ```text
//! ‖a − b‖² = ‖a‖² + ‖b‖² − 2 a·b
//! ```
//!
//! The cross terms of a whole block are one matrix product, which the burn backend runs as
//! a tuned multi-threaded GEMM; the norms are computed once per row. The identity cancels
//! when `a ≈ b` (an absolute error of a few `ε·‖a‖²`), so results are clamped at zero and
//! callers that report distances recompute the few that matter with [`exact_squared`].

use burn::tensor::{Device, Tensor, TensorData};

use super::features::Features;

/// Query rows per matrix product.
const QUERY_CHUNK: usize = 1024;
/// Reference rows per matrix product; with [`QUERY_CHUNK`] a block is 16 MiB of `f32`.
const REFERENCE_CHUNK: usize = 4096;

/// Squared distances between query rows `query_start..` and reference rows
/// `reference_start..`, row-major `queries × references`.
pub(crate) struct Block<'a> {
    /// Index of the first query row.
    pub query_start: usize,
    /// Index of the first reference row.
    pub reference_start: usize,
    /// Number of reference rows, the row length of `values`.
    pub references: usize,
    /// The squared distances, clamped at zero.
    pub values: &'a [f32],
}

impl Block<'_> {
    /// Squared distances from query `query_start + i` to the block's references.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.references..(i + 1) * self.references]
    }

    /// Number of query rows.
    pub fn queries(&self) -> usize {
        self.values.len() / self.references
    }
}

/// Calls `visit` on blocks that together cover every (query, reference) pair exactly once.
///
/// The two sets must have the same dimension; callers check it and report the mismatch.
pub(crate) fn for_each_block(
    queries: &Features,
    references: &Features,
    mut visit: impl FnMut(&Block),
) {
    assert_eq!(queries.dim(), references.dim(), "callers check dimensions");
    let device = Device::default();
    let dim = queries.dim();
    let query_norms = queries.squared_norms();
    let reference_norms = references.squared_norms();
    let query_chunks: Vec<(usize, Tensor<2>)> = (0..queries.rows())
        .step_by(QUERY_CHUNK)
        .map(|start| {
            let end = (start + QUERY_CHUNK).min(queries.rows());
            (
                start,
                to_tensor(queries.row_range(start, end), end - start, dim, &device),
            )
        })
        .collect();

    for reference_start in (0..references.rows()).step_by(REFERENCE_CHUNK) {
        let reference_end = (reference_start + REFERENCE_CHUNK).min(references.rows());
        let count = reference_end - reference_start;
        let rows = references.row_range(reference_start, reference_end);
        let transposed = to_tensor(rows, count, dim, &device).transpose();
        let norms = &reference_norms[reference_start..reference_end];
        for (query_start, chunk) in &query_chunks {
            let cross = chunk.clone().matmul(transposed.clone());
            let mut values = cross
                .try_into_vec_as::<f32>()
                .expect("a float tensor reads back");
            for (row, &query_norm) in values
                .chunks_exact_mut(count)
                .zip(&query_norms[*query_start..])
            {
                row.iter_mut().zip(norms).for_each(|(v, &reference_norm)| {
                    *v = (query_norm + reference_norm - 2.0 * *v).max(0.0);
                });
            }
            visit(&Block {
                query_start: *query_start,
                reference_start,
                references: count,
                values: &values,
            });
        }
    }
}

/// `‖a − b‖²` summed directly in `f64`, free of the cancellation of the blocked identity.
pub(crate) fn exact_squared(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum()
}

fn to_tensor(values: &[f32], rows: usize, dim: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values.to_vec(), [rows, dim]), device)
}

#[cfg(test)]
mod tests {
    use super::super::features::random_features;
    use super::*;

    #[test]
    fn blocks_cover_every_pair_with_the_direct_distance() {
        // Sizes that straddle both chunk lengths exercise the ragged last blocks.
        let queries = random_features(QUERY_CHUNK + 3, 5, 1);
        let references = random_features(REFERENCE_CHUNK + 7, 5, 2);
        let mut seen = vec![0u8; queries.rows() * references.rows()];
        for_each_block(&queries, &references, |block| {
            for i in 0..block.queries() {
                let q = block.query_start + i;
                for (j, &d) in block.row(i).iter().enumerate() {
                    let r = block.reference_start + j;
                    seen[q * references.rows() + r] += 1;
                    let exact = exact_squared(queries.row(q), references.row(r));
                    assert!(
                        (d as f64 - exact).abs() < 1e-4 * (1.0 + exact),
                        "{d} vs {exact}"
                    );
                }
            }
        });
        assert!(seen.iter().all(|&s| s == 1));
    }
}
