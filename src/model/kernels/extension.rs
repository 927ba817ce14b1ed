//! The CPU kernels as a burn backend extension: forward passes for the `Flex` backend and,
//! for `Autodiff<Flex>`, recorded operations whose backward passes call the kernels'
//! gradients.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::NodeId;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Dispatch, Flex};
use burn::tensor::{Tensor, TensorData};
use burn_flex::FlexTensor;

use super::activation;
use super::conv::{self, Geometry};
use super::group_norm::{self, Groups};

/// The layers with their own CPU kernels, each as one backend operation.
#[backend_extension(Flex, Autodiff)]
pub trait KernelBackend: Backend {
    /// A 3×3 convolution with padding 1: `x` `[batch, cin, h, w]`, `weight`
    /// `[cout, cin, 3, 3]`, `bias` `[cout]`.
    fn conv3x3(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stride: usize,
    ) -> FloatTensor<Self>;

    /// `silu(group_norm(x)) + shift`, with affine `gamma`, `beta` (`[channels]`) and `shift`
    /// `[batch, channels]` broadcast over the pixels.
    fn group_norm_silu(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        shift: FloatTensor<Self>,
        groups: usize,
        epsilon: f32,
    ) -> FloatTensor<Self>;

    /// `x·σ(x)`.
    fn silu(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// The tensor-level convolution.
pub fn conv3x3(x: Tensor<4>, weight: Tensor<4>, bias: Tensor<1>, stride: usize) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as KernelBackend>::conv3x3(
        x.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
        stride,
    ))
}

/// The tensor-level normalisation, activation and shift.
pub fn group_norm_silu(
    x: Tensor<4>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    shift: Tensor<2>,
    groups: usize,
    epsilon: f32,
) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as KernelBackend>::group_norm_silu(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        shift.into_dispatch(),
        groups,
        epsilon,
    ))
}

/// The tensor-level SiLU.
pub fn silu(x: Tensor<4>) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as KernelBackend>::silu(x.into_dispatch()))
}

/// A float tensor's values in order, copied only where the layout is strided.
struct Values(FlexTensor);

impl Values {
    fn of(t: &FlexTensor) -> Self {
        Self(t.to_contiguous())
    }

    fn get(&self) -> &[f32] {
        let (start, end) = self
            .0
            .layout()
            .contiguous_offsets()
            .expect("to_contiguous gives a contiguous layout");
        &self.0.storage::<f32>()[start..end]
    }
}

fn dims(t: &FlexTensor) -> Vec<usize> {
    t.layout().shape().iter().copied().collect()
}

fn tensor(values: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

fn geometry(x: &FlexTensor, weight: &FlexTensor, stride: usize) -> Geometry {
    let (xd, wd) = (dims(x), dims(weight));
    assert_eq!(xd.len(), 4, "conv3x3 input must be [batch, cin, h, w]");
    assert_eq!(
        wd[1..],
        [xd[1], 3, 3],
        "conv3x3 weight must be [cout, cin, 3, 3]"
    );
    Geometry {
        batch: xd[0],
        cin: xd[1],
        cout: wd[0],
        h: xd[2],
        w: xd[3],
        stride,
    }
}

fn groups(x: &FlexTensor, groups: usize) -> Groups {
    let d = dims(x);
    assert_eq!(
        d.len(),
        4,
        "group_norm_silu input must be [batch, channels, h, w]"
    );
    Groups {
        batch: d[0],
        channels: d[1],
        groups,
        pixels: d[2] * d[3],
    }
}

/// The normalisation forward pass, with the statistics the backward pass needs.
fn norm_forward(
    x: &FlexTensor,
    gamma: &FlexTensor,
    beta: &FlexTensor,
    shift: &FlexTensor,
    g: usize,
    epsilon: f32,
) -> (FlexTensor, Vec<f32>, Vec<f32>) {
    let s = groups(x, g);
    let (xv, gv, bv, sv) = (
        Values::of(x),
        Values::of(gamma),
        Values::of(beta),
        Values::of(shift),
    );
    let (y, mean, rstd) = group_norm::forward(xv.get(), gv.get(), bv.get(), sv.get(), &s, epsilon);
    (tensor(y, dims(x)), mean, rstd)
}

impl KernelBackend for Flex {
    fn conv3x3(x: FlexTensor, weight: FlexTensor, bias: FlexTensor, stride: usize) -> FlexTensor {
        let g = geometry(&x, &weight, stride);
        let (x, w, b) = (Values::of(&x), Values::of(&weight), Values::of(&bias));
        let y = conv::forward(x.get(), w.get(), b.get(), &g);
        tensor(y, vec![g.batch, g.cout, g.oh(), g.ow()])
    }

    fn group_norm_silu(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        shift: FlexTensor,
        groups: usize,
        epsilon: f32,
    ) -> FlexTensor {
        norm_forward(&x, &gamma, &beta, &shift, groups, epsilon).0
    }

    fn silu(x: FlexTensor) -> FlexTensor {
        tensor(activation::silu(Values::of(&x).get()), dims(&x))
    }
}

/// The recorded convolution; its state is the checkpointed input and weight and the stride.
#[derive(Debug)]
struct Conv3x3Op;

impl Backward<Flex, 3> for Conv3x3Op {
    type State = (NodeId, NodeId, usize);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_w, node_b] = ops.parents;
        let dy = Values::of(&grads.consume::<Flex>(&ops.node));
        let (x_state, w_state, stride) = ops.state;
        let x: FlexTensor = checkpointer.retrieve_node_output(x_state);
        let w: FlexTensor = checkpointer.retrieve_node_output(w_state);
        let g = geometry(&x, &w, stride);

        if let Some(node) = node_x {
            let dx = conv::input_grad(Values::of(&w).get(), dy.get(), &g);
            grads.register::<Flex>(node.id, tensor(dx, vec![g.batch, g.cin, g.h, g.w]));
        }
        if let Some(node) = node_w {
            let dw = conv::weight_grad(Values::of(&x).get(), dy.get(), &g);
            grads.register::<Flex>(node.id, tensor(dw, vec![g.cout, g.cin, 3, 3]));
        }
        if let Some(node) = node_b {
            let db = conv::bias_grad(dy.get(), &g);
            grads.register::<Flex>(node.id, tensor(db, vec![g.cout]));
        }
    }
}

/// The recorded normalisation: its state is the input, `γ`, `β`, the group count and the
/// per-group statistics of the forward pass.
#[derive(Debug)]
struct GroupNormSiluOp;

#[derive(Debug, Clone)]
struct NormState {
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    groups: usize,
    mean: Vec<f32>,
    rstd: Vec<f32>,
}

impl Backward<Flex, 4> for GroupNormSiluOp {
    type State = NormState;

    fn backward(self, ops: Ops<Self::State, 4>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_g, node_b, node_s] = ops.parents;
        let dy = Values::of(&grads.consume::<Flex>(&ops.node));
        let st = ops.state;
        let s = groups(&st.x, st.groups);
        let (x, gamma, beta) = (
            Values::of(&st.x),
            Values::of(&st.gamma),
            Values::of(&st.beta),
        );
        let (dx, dgamma, dbeta, dshift) = group_norm::backward(
            x.get(),
            gamma.get(),
            beta.get(),
            &st.mean,
            &st.rstd,
            dy.get(),
            &s,
        );
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, tensor(dx, dims(&st.x)));
        }
        if let Some(node) = node_g {
            grads.register::<Flex>(node.id, tensor(dgamma, vec![s.channels]));
        }
        if let Some(node) = node_b {
            grads.register::<Flex>(node.id, tensor(dbeta, vec![s.channels]));
        }
        if let Some(node) = node_s {
            grads.register::<Flex>(node.id, tensor(dshift, vec![s.batch, s.channels]));
        }
    }
}

/// The recorded SiLU; its state is the input.
#[derive(Debug)]
struct SiluOp;

impl Backward<Flex, 1> for SiluOp {
    type State = FlexTensor;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let dy = Values::of(&grads.consume::<Flex>(&ops.node));
        if let Some(node) = node_x {
            let x = ops.state;
            let dx = activation::silu_grad(Values::of(&x).get(), dy.get());
            grads.register::<Flex>(node.id, tensor(dx, dims(&x)));
        }
    }
}

impl<C: CheckpointStrategy> KernelBackend for Autodiff<Flex, C> {
    fn conv3x3(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stride: usize,
    ) -> FloatTensor<Self> {
        let prep = Conv3x3Op
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful();
        match prep {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let w_state = prep.checkpoint(&weight);
                let y = Flex::conv3x3(
                    x.into_primitive(),
                    weight.into_primitive(),
                    bias.into_primitive(),
                    stride,
                );
                prep.finish((x_state, w_state, stride), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::conv3x3(
                x.into_primitive(),
                weight.into_primitive(),
                bias.into_primitive(),
                stride,
            )),
        }
    }

    fn group_norm_silu(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        shift: FloatTensor<Self>,
        groups: usize,
        epsilon: f32,
    ) -> FloatTensor<Self> {
        let prep = GroupNormSiluOp
            .prepare::<C>([x.node(), gamma.node(), beta.node(), shift.node()])
            .compute_bound()
            .stateful();
        match prep {
            OpsKind::Tracked(prep) => {
                let (x, gamma, beta) = (
                    x.into_primitive(),
                    gamma.into_primitive(),
                    beta.into_primitive(),
                );
                let (y, mean, rstd) =
                    norm_forward(&x, &gamma, &beta, shift.primitive(), groups, epsilon);
                let state = NormState {
                    x,
                    gamma,
                    beta,
                    groups,
                    mean,
                    rstd,
                };
                prep.finish(state, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::group_norm_silu(
                x.into_primitive(),
                gamma.into_primitive(),
                beta.into_primitive(),
                shift.into_primitive(),
                groups,
                epsilon,
            )),
        }
    }

    fn silu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let prep = SiluOp.prepare::<C>([x.node()]).compute_bound().stateful();
        match prep {
            OpsKind::Tracked(prep) => {
                let x = x.into_primitive();
                let y = Flex::silu(x.clone());
                prep.finish(x, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::silu(x.into_primitive())),
        }
    }
}
