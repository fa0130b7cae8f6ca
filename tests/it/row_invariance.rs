//! The linear layers' products are row-invariant: a row of x·Wᵀ, and of its input gradient,
//! is the same bit for bit whether computed alone, in chunks of 7 or with the whole batch,
//! for every path gemm takes (2-term sums, few output columns, sums split past 512 terms),
//! and agrees with candle's matmul to rounding.

use candle_core::{DType, Device, Tensor, Var};
use scorelab::nn::linear::{fewest_rows, times_transposed};
use scorelab::rng::Rng;

fn random(rng: &mut Rng, shape: (usize, usize), dtype: DType) -> Tensor {
    Tensor::from_vec(rng.normal_f32(shape.0 * shape.1), shape, &Device::Cpu)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
}

fn bits(t: &Tensor) -> Vec<u64> {
    let t = t.flatten_all().unwrap().to_dtype(DType::F64).unwrap();
    t.to_vec1::<f64>()
        .unwrap()
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

/// The rows of `whole` computed `chunk` rows at a time by `product`.
fn in_chunks(x: &Tensor, chunk: usize, product: impl Fn(&Tensor) -> Tensor) -> Tensor {
    let n = x.dim(0).unwrap();
    let parts: Vec<Tensor> = (0..n)
        .step_by(chunk)
        .map(|first| product(&x.narrow(0, first, chunk.min(n - first)).unwrap()))
        .collect();
    Tensor::cat(&parts, 0).unwrap()
}

fn largest_relative_gap(a: &Tensor, b: &Tensor) -> f64 {
    let scale = b.abs().unwrap().max_all().unwrap();
    let gap = (a - b).unwrap().abs().unwrap().max_all().unwrap();
    let scalar = |t: Tensor| t.to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap();
    scalar(gap) / scalar(scale).max(f64::MIN_POSITIVE)
}

/// x·Wᵀ and d(sum(x·Wᵀ ⊙ u))/dx, the gradient a likelihood's divergence takes.
fn product_and_input_gradient(x: &Tensor, weight: &Tensor, upstream: &Tensor) -> (Tensor, Tensor) {
    let input = Var::from_tensor(x).unwrap();
    let y = times_transposed(input.as_tensor(), weight).unwrap();
    let grads = y
        .mul(upstream)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    (y.detach(), grads.get(input.as_tensor()).unwrap().clone())
}

#[test]
fn rows_come_out_the_same_in_any_chunking() {
    let mut rng = Rng::from_seed(21);
    let n = 300;
    // (inputs, outputs): 2-term sums, the mlp's sizes, 2 and 1 outputs (gemm's horizontal and
    // matrix-vector kernels for few entries), 576 terms (split at 512 for small products) and
    // a wide layer.
    let shapes = [
        (2, 128),
        (32, 128),
        (128, 128),
        (128, 2),
        (16, 1),
        (576, 64),
        (600, 200),
    ];
    for (inputs, outputs) in shapes {
        let fewest = fewest_rows(outputs, inputs);
        let mut chunks = vec![1, 2, 7, 64, fewest - 1, fewest, fewest + 1, n];
        chunks.sort();
        chunks.dedup();
        for dtype in [DType::F32, DType::F64] {
            let case = format!("{inputs} -> {outputs}, {dtype:?}");
            let x = random(&mut rng, (n, inputs), dtype);
            let weight = random(&mut rng, (outputs, inputs), dtype);
            let upstream = random(&mut rng, (n, outputs), dtype);
            let (whole, whole_grad) = product_and_input_gradient(&x, &weight, &upstream);
            for &chunk in &chunks {
                let ys = in_chunks(&x, chunk, |rows| times_transposed(rows, &weight).unwrap());
                assert_eq!(bits(&ys), bits(&whole), "{case}: chunks of {chunk}");
                let rows: Vec<Tensor> = (0..n)
                    .step_by(chunk)
                    .map(|first| {
                        let len = chunk.min(n - first);
                        let part = |t: &Tensor| t.narrow(0, first, len).unwrap();
                        product_and_input_gradient(&part(&x), &weight, &part(&upstream)).1
                    })
                    .collect();
                let grads = Tensor::cat(&rows, 0).unwrap();
                assert_eq!(
                    bits(&grads),
                    bits(&whole_grad),
                    "{case}: gradient, chunks of {chunk}"
                );
            }
            let tolerance = if dtype == DType::F32 { 1e-5 } else { 1e-13 };
            let candle = x.matmul(&weight.t().unwrap()).unwrap();
            let gap = largest_relative_gap(&whole, &candle);
            assert!(gap < tolerance, "{case}: {gap} from candle's matmul");
            let candle_grad = upstream.matmul(&weight).unwrap();
            let gap = largest_relative_gap(&whole_grad, &candle_grad);
            assert!(gap < tolerance, "{case}: gradient {gap} from candle's");
        }
    }
}

/// The weight's gradient (a sum over rows) is candle's, and the op refuses what it cannot
/// take with a message naming the shapes.
#[test]
fn weight_gradient_and_shape_errors() {
    let mut rng = Rng::from_seed(22);
    let x = random(&mut rng, (70, 9), DType::F32);
    let weight = Var::from_tensor(&random(&mut rng, (5, 9), DType::F32)).unwrap();
    let upstream = random(&mut rng, (70, 5), DType::F32);
    let ours = times_transposed(&x, weight.as_tensor()).unwrap();
    let grads = ours
        .mul(&upstream)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let want = upstream.t().unwrap().matmul(&x).unwrap();
    let gap = largest_relative_gap(grads.get(weight.as_tensor()).unwrap(), &want);
    assert!(gap < 1e-6, "weight gradient {gap} from candle's");

    let wrong = random(&mut rng, (5, 8), DType::F32);
    let message = times_transposed(&x, &wrong).unwrap_err().to_string();
    assert!(
        message.contains("9 features") && message.contains("5 x 8"),
        "{message}"
    );
    // Leading dimensions are rows too.
    let batched = x.reshape((7, 10, 9)).unwrap();
    let y = times_transposed(&batched, weight.as_tensor()).unwrap();
    assert_eq!(y.dims(), [7, 10, 5]);
    assert_eq!(bits(&y.reshape((70, 5)).unwrap()), bits(&ours));
}

/// The 3x3 same convolutions are item-invariant too: an item's output, and its input gradient,
/// have the same bits alone, in chunks of 3 or in the whole batch. Winograd (64 channels or
/// more) on planes whose tiles fill one gemm call (16x16: 72 tiles with the spare column) and
/// planes whose calls are padded with zero tiles (2x2 and 5x3; with 576 input channels, gemm
/// splits a narrow product's sums at 512 terms and a wide one's at 288); the direct kernel
/// (fewer channels) on 16x16, 8x8 and 4x4 planes, with a remainder block of output channels.
#[test]
fn same_3x3_convolutions_come_out_the_same_in_any_chunking() {
    use scorelab::nn::conv::conv2d;
    let mut rng = Rng::from_seed(11);
    // (items, plane, (in, out) channels); 40 items of 2x2 make 80 tiles with spare columns.
    let cases = [
        (7, (16, 16), (64, 64)),
        (7, (2, 2), (64, 96)),
        (7, (5, 3), (96, 64)),
        (40, (2, 2), (576, 64)),
        (7, (16, 16), (16, 16)),
        (7, (8, 8), (48, 20)),
        (7, (4, 4), (3, 8)),
    ];
    for (n, size, (c, out)) in cases {
        let items = n * c * size.0 * size.1;
        let x =
            Tensor::from_vec(rng.normal_f32(items), (n, c, size.0, size.1), &Device::Cpu).unwrap();
        let weight =
            Tensor::from_vec(rng.normal_f32(out * c * 9), (out, c, 3, 3), &Device::Cpu).unwrap();
        let upstream = Tensor::from_vec(
            rng.normal_f32(n * out * size.0 * size.1),
            (n, out, size.0, size.1),
            &Device::Cpu,
        )
        .unwrap();
        // Output and input gradient of sum(conv(x) · upstream) for the items in `x`.
        let run = |x: &Tensor, upstream: &Tensor| {
            let x = Var::from_tensor(x).unwrap();
            let y = conv2d(x.as_tensor(), &weight, None, 1, 1).unwrap();
            let gradients = (&y * upstream)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            (y, gradients.get(x.as_tensor()).unwrap().clone())
        };
        let (whole, whole_gradient) = run(&x, &upstream);
        let reference = x.conv2d(&weight, 1, 1, 1, 1).unwrap();
        assert!(largest_relative_gap(&whole, &reference) < 1e-5, "{size:?}");
        for chunk in [1, 3] {
            let parts: Vec<(Tensor, Tensor)> = (0..n)
                .step_by(chunk)
                .map(|first| {
                    let len = chunk.min(n - first);
                    let narrow = |t: &Tensor| t.narrow(0, first, len).unwrap();
                    run(&narrow(&x), &narrow(&upstream))
                })
                .collect();
            let outputs: Vec<Tensor> = parts.iter().map(|p| p.0.clone()).collect();
            let gradients: Vec<Tensor> = parts.iter().map(|p| p.1.clone()).collect();
            let case = format!("{size:?}, {c} -> {out} channels, chunks of {chunk}");
            assert_eq!(
                bits(&Tensor::cat(&outputs, 0).unwrap()),
                bits(&whole),
                "{case}"
            );
            let gradient = Tensor::cat(&gradients, 0).unwrap();
            assert_eq!(bits(&gradient), bits(&whole_gradient), "{case}");
        }
    }
}
