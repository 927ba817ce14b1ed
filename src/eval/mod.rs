//! Sample-quality metrics over feature vectors and pixels.
//!
//! The module owns everything that turns a set of generated samples into numbers, given
//! features computed elsewhere (a classifier's penultimate layer, or raw pixels):
//!
//! - [`frechet`]: the Fréchet distance between Gaussians fitted to real and generated
//!   features, `d² = |μ1 − μ2|² + tr(Σ1 + Σ2 − 2 (Σ1^{1/2} Σ2 Σ1^{1/2})^{1/2})`, the quantity
//!   FID reports (Heusel et al., 2017, "GANs Trained by a Two Time-Scale Update Rule
//!   Converge to a Local Nash Equilibrium"), with matrix square roots from the symmetric
//!   eigendecompositions of [`jacobi`];
//! - [`manifold`]: precision (fidelity) and recall (coverage) against k-nearest-neighbour
//!   manifolds (Kynkäänniemi et al., 2019, "Improved Precision and Recall Metric for
//!   Assessing Generative Models");
//! - [`nearest`]: nearest-training-image distances, to spot memorised samples.
//!
//! Inputs are [`Features`] (row-major `f32`, checked on construction); statistics are
//! accumulated in `f64`. Pairwise distances run as blocked matrix products on the burn
//! backend (the private `distance` kernel).

pub mod classifier;
mod distance;
pub mod error;
pub mod features;
pub mod fit;
pub mod frechet;
pub mod jacobi;
pub mod manifold;
pub mod nearest;
pub mod score;
pub mod weights;

pub use classifier::{Classifier, ClassifierConfig};
pub use error::EvalError;
pub use features::{Features, Gaussian};
pub use frechet::frechet_distance;
pub use jacobi::{symmetric_eigen, SymmetricEigen};
pub use manifold::{precision_recall, Manifold, PrecisionRecall, DEFAULT_K};
pub use nearest::{memorised_fraction, nearest_neighbours, percentile, Neighbour};
