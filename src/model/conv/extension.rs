//! The CPU kernel as a burn backend extension: a forward pass for the `Flex` backend and, for
//! `Autodiff<Flex>`, a recorded operation whose backward pass calls the kernel's gradients.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::NodeId;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Dispatch, Flex};
use burn::tensor::{Tensor, TensorData};
use burn_flex::FlexTensor;

use super::cpu::{self, Geometry};

/// A 3×3 convolution with padding 1, as one backend operation.
#[backend_extension(Flex, Autodiff)]
pub trait Conv3x3Backend: Backend {
    /// `x` `[batch, cin, h, w]`, `weight` `[cout, cin, 3, 3]`, `bias` `[cout]`.
    fn conv3x3(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stride: usize,
    ) -> FloatTensor<Self>;
}

/// The tensor-level entry point.
pub fn conv3x3(x: Tensor<4>, weight: Tensor<4>, bias: Tensor<1>, stride: usize) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as Conv3x3Backend>::conv3x3(
        x.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
        stride,
    ))
}

/// A contiguous copy-free view of a float tensor's values (copied only if strided).
fn values(t: &FlexTensor) -> (FlexTensor, usize, usize) {
    let t = t.to_contiguous();
    let (start, end) = t
        .layout()
        .contiguous_offsets()
        .expect("to_contiguous gives a contiguous layout");
    (t, start, end)
}

fn dims(t: &FlexTensor) -> Vec<usize> {
    t.layout().shape().iter().copied().collect()
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

fn tensor(values: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

impl Conv3x3Backend for Flex {
    fn conv3x3(x: FlexTensor, weight: FlexTensor, bias: FlexTensor, stride: usize) -> FlexTensor {
        let g = geometry(&x, &weight, stride);
        let (x, xa, xb) = values(&x);
        let (w, wa, wb) = values(&weight);
        let (b, ba, bb) = values(&bias);
        let y = cpu::forward(
            &x.storage::<f32>()[xa..xb],
            &w.storage::<f32>()[wa..wb],
            &b.storage::<f32>()[ba..bb],
            &g,
        );
        tensor(y, vec![g.batch, g.cout, g.oh(), g.ow()])
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
        let dy = grads.consume::<Flex>(&ops.node);
        let (x_state, w_state, stride) = ops.state;
        let x: FlexTensor = checkpointer.retrieve_node_output(x_state);
        let w: FlexTensor = checkpointer.retrieve_node_output(w_state);
        let g = geometry(&x, &w, stride);
        let (dy, da, db) = values(&dy);
        let dy = &dy.storage::<f32>()[da..db];

        if let Some(node) = node_x {
            let (w, wa, wb) = values(&w);
            let dx = cpu::input_grad(&w.storage::<f32>()[wa..wb], dy, &g);
            grads.register::<Flex>(node.id, tensor(dx, vec![g.batch, g.cin, g.h, g.w]));
        }
        if let Some(node) = node_w {
            let (x, xa, xb) = values(&x);
            let dw = cpu::weight_grad(&x.storage::<f32>()[xa..xb], dy, &g);
            grads.register::<Flex>(node.id, tensor(dw, vec![g.cout, g.cin, 3, 3]));
        }
        if let Some(node) = node_b {
            grads.register::<Flex>(node.id, tensor(cpu::bias_grad(dy, &g), vec![g.cout]));
        }
    }
}

impl<C: CheckpointStrategy> Conv3x3Backend for Autodiff<Flex, C> {
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
}
