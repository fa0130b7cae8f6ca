//! The U-Net's self-attention op (one op with its own backward) against the candle ops it
//! replaced, and against finite differences.

use candle_core::{DType, Tensor};

use scorelab::rng::Rng;

use crate::kernels::{check_finite_differences, compare_with_candle, random};

/// candle's ops for one-head attention over qkv (n, 3c, positions): what the U-Net's
/// attention computed before it became one op.
fn reference_attention(qkv: &Tensor, c: usize) -> Tensor {
    let (n, _, positions) = qkv.dims3().unwrap();
    let qkv = qkv.reshape((n, 3, c, positions)).unwrap();
    let part = |i: usize| {
        qkv.narrow(1, i, 1)
            .unwrap()
            .reshape((n, c, positions))
            .unwrap()
    };
    let (q, k, v) = (part(0), part(1), part(2));
    let scores = (q.transpose(1, 2).unwrap().matmul(&k).unwrap() / (c as f64).sqrt()).unwrap();
    let weights = candle_nn::ops::softmax(&scores, candle_core::D::Minus1).unwrap();
    v.matmul(&weights.transpose(1, 2).unwrap().contiguous().unwrap())
        .unwrap()
}

fn our_attention(qkv: &Tensor, c: usize) -> Tensor {
    let op = scorelab::nn::attention_op::AttentionOp {
        scale: 1.0 / (c as f64).sqrt(),
    };
    qkv.apply_op1(op).unwrap()
}

/// (items, channels, positions), odd sizes included.
const ATTENTION_CASES: &[(usize, usize, usize)] = &[(2, 4, 16), (3, 3, 15), (1, 5, 7), (2, 32, 64)];

#[test]
fn attention_matches_candle_values_and_gradients() {
    let mut rng = Rng::from_seed(28);
    for &(n, c, positions) in ATTENTION_CASES {
        for dtype in [DType::F32, DType::F64] {
            let inputs = [random(&mut rng, &[n, 3 * c, positions], dtype)];
            let case = format!("n {n}, c {c}, positions {positions}, {dtype:?}");
            let ours = |t: &[Tensor]| our_attention(&t[0], c);
            let reference = |t: &[Tensor]| reference_attention(&t[0], c);
            compare_with_candle(&case, &ours, &reference, &inputs, &mut rng, (1e-5, 1e-4));
        }
    }
}

#[test]
fn attention_gradients_match_finite_differences() {
    let mut rng = Rng::from_seed(29);
    for &(n, c, positions) in &ATTENTION_CASES[..3] {
        let inputs = [random(&mut rng, &[n, 3 * c, positions], DType::F64)];
        let case = format!("n {n}, c {c}, positions {positions}");
        let f = |t: &[Tensor]| our_attention(&t[0], c);
        check_finite_differences(&case, &f, &inputs, &mut rng, 8);
    }
}
