//! Errors of the evaluation metrics. Each message says what was expected and what was found,
//! so a caller mixing up feature sets (say pixels against classifier features) sees both
//! sizes at once.

/// What went wrong in an evaluation metric.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    /// A buffer does not hold the number of values its declared shape needs.
    #[error("{what}: expected {expected} values, found {found}")]
    Shape {
        /// The buffer and its declared shape, e.g. "feature matrix of 10 × 64".
        what: String,
        /// Values the shape needs.
        expected: usize,
        /// Values present.
        found: usize,
    },
    /// A matrix or set that must not be empty is.
    #[error("{what} is empty: expected at least one {unit}")]
    Empty {
        /// What is empty.
        what: &'static str,
        /// What it should hold at least one of ("row", "dimension", "value").
        unit: &'static str,
    },
    /// A value is NaN or infinite.
    #[error("{what}: non-finite value {value} at row {row}, column {col}")]
    NonFinite {
        /// The matrix.
        what: &'static str,
        /// Row of the value.
        row: usize,
        /// Column of the value.
        col: usize,
        /// The value.
        value: f64,
    },
    /// Two inputs that must share a dimension do not.
    #[error("dimension mismatch between {what}: expected {expected}, found {found}")]
    DimensionMismatch {
        /// The two inputs, e.g. "real and generated features".
        what: &'static str,
        /// The dimension of the first.
        expected: usize,
        /// The dimension of the second.
        found: usize,
    },
    /// A set has fewer rows than the statistic needs.
    #[error("{what}: expected at least {expected} rows, found {found}")]
    TooFewRows {
        /// The statistic and its input, e.g. "covariance of features".
        what: &'static str,
        /// Rows needed.
        expected: usize,
        /// Rows present.
        found: usize,
    },
    /// A matrix that must be symmetric is not.
    #[error("{what} is not symmetric: entry ({row}, {col}) is {upper}, ({col}, {row}) is {lower}")]
    NotSymmetric {
        /// The matrix.
        what: &'static str,
        /// Row of the upper entry.
        row: usize,
        /// Column of the upper entry.
        col: usize,
        /// `a[row][col]`.
        upper: f64,
        /// `a[col][row]`.
        lower: f64,
    },
    /// A parameter lies outside its range.
    #[error("{what}: expected {expected}, found {found}")]
    OutOfRange {
        /// The parameter.
        what: &'static str,
        /// The accepted range, in words.
        expected: &'static str,
        /// The value given.
        found: f64,
    },
}
