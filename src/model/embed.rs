//! Embeddings of the conditioning inputs: time through learned Fourier features
//! (Tancik et al., 2020), the class label through a table with an extra "no label" row.

use burn::module::{Module, Param};
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::activation::silu;
use burn::tensor::{Device, Distribution, Int, Tensor};

/// The token that stands for "no label" (the unconditional velocity).
pub const NO_LABEL: i64 = 10;

/// Rows in the label table: ten classes and the "no label" token.
pub const LABEL_TOKENS: usize = 11;

/// `sqrt(2) · [sin(2π t w), cos(2π t w)]` for a learned frequency vector `w ~ N(0, 1)`.
#[derive(Module, Debug)]
pub struct FourierTime {
    /// The frequencies, `dim / 2` of them.
    pub frequencies: Param<Tensor<1>>,
}

impl FourierTime {
    /// Features of width `dim` (even).
    pub fn new(dim: usize, device: &Device) -> Self {
        assert!(dim % 2 == 0, "Fourier features come in sine/cosine pairs");
        let w = Tensor::random([dim / 2], Distribution::Normal(0.0, 1.0), device);
        Self {
            frequencies: Param::from_tensor(w),
        }
    }

    /// # Shapes
    /// - `t`: `[batch]` → `[batch, dim]`
    pub fn forward(&self, t: Tensor<1>) -> Tensor<2> {
        let [batch] = t.dims();
        let [half] = self.frequencies.dims();
        let angles = t.reshape([batch, 1]) * self.frequencies.val().reshape([1, half]);
        let angles = angles * (2.0 * std::f32::consts::PI);
        Tensor::cat(vec![angles.clone().sin(), angles.cos()], 1) * std::f32::consts::SQRT_2
    }
}

/// The label table.
#[derive(Module, Debug)]
pub struct LabelEmbedding {
    /// `LABEL_TOKENS × dim`.
    pub table: Embedding,
}

impl LabelEmbedding {
    /// A table of width `dim`.
    pub fn new(dim: usize, device: &Device) -> Self {
        Self {
            table: EmbeddingConfig::new(LABEL_TOKENS, dim).init(device),
        }
    }

    /// # Shapes
    /// - `y`: `[batch]` of tokens in `0..=NO_LABEL` → `[batch, dim]`
    pub fn forward(&self, y: Tensor<1, Int>) -> Tensor<2> {
        let [batch] = y.dims();
        let out = self.table.forward(y.reshape([batch, 1]));
        let [_, _, dim] = out.dims();
        out.reshape([batch, dim])
    }
}

/// Linear, SiLU, Linear.
#[derive(Module, Debug)]
pub struct Mlp {
    /// First layer.
    pub inner: Linear,
    /// Second layer.
    pub outer: Linear,
}

impl Mlp {
    /// `input → hidden → output`.
    pub fn new(input: usize, hidden: usize, output: usize, device: &Device) -> Self {
        Self {
            inner: LinearConfig::new(input, hidden).init(device),
            outer: LinearConfig::new(hidden, output).init(device),
        }
    }

    /// # Shapes
    /// - `x`: `[batch, input]` → `[batch, output]`
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.outer.forward(silu(self.inner.forward(x)))
    }
}
