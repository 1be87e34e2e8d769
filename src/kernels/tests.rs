//! End-to-end tests of the kernel API against a plain float64 reference.

use super::*;

/// The loss and gradient of one element, straight from the formulas.
fn reference(loss: Loss, x: f64, y: f64, w: f64, p: f64) -> (f64, f64) {
    match loss {
        Loss::Focal { alpha, gamma } => {
            // The textbook form (fine for moderate logits), gradient by a
            // central difference of it.
            let value = |x: f64| {
                let s = 1.0 / (1.0 + (-x).exp());
                let ce = -(y * s.ln() + (1.0 - y) * (1.0 - s).ln());
                let m = 1.0 - (s * y + (1.0 - s) * (1.0 - y));
                let alpha_t = if alpha >= 0.0 { alpha * y + (1.0 - alpha) * (1.0 - y) } else { 1.0 };
                w * alpha_t * m.powf(gamma) * ce
            };
            let h = 1e-5;
            (value(x), (value(x + h) - value(x - h)) / (2.0 * h))
        }
        Loss::Logits => {
            let sp = |z: f64| z.max(0.0) + (-z.abs()).exp().ln_1p();
            let sig = |z: f64| if z >= 0.0 { 1.0 / (1.0 + (-z).exp()) } else { z.exp() / (1.0 + z.exp()) };
            let term = |c: f64, v: f64| if c == 0.0 { 0.0 } else { c * v };
            let (a, b) = (1.0 - y, p * y);
            (w * (term(a, sp(x)) + term(b, sp(-x))), w * (a * sig(x) - b * sig(-x)))
        }
        Loss::Probabilities => {
            let l = -(y * x.ln().max(-100.0) + (1.0 - y) * (-x).ln_1p().max(-100.0));
            (w * l, w * (x - y) / (x * (1.0 - x)).max(1e-12))
        }
    }
}

fn close(got: f64, want: f64, rtol: f64) -> bool {
    got == want || (got - want).abs() <= rtol * want.abs().max(1e-300)
}

fn logits(n: usize) -> Vec<f64> {
    (0..n).map(|i| ((i * 7919) % 2001) as f64 / 100.0 - 10.0).collect()
}

fn labels(n: usize) -> Vec<f64> {
    (0..n).map(|i| ((i * 31) % 11) as f64 / 10.0).collect()
}

#[test]
fn logits_sum_elements_and_gradient_match_reference() {
    let n = 1000;
    let (x, y) = (logits(n), labels(n));
    let w: Vec<f64> = (0..n).map(|i| 0.5 + (i % 3) as f64).collect();
    let p = [2.5f64];
    let mut loss_out = vec![0.0f64; n];
    let mut grad_out = vec![0.0f64; n];
    let mut req = LossRequest::new(Loss::Logits, ArrayRef::new(&x, &[n]).unwrap(), ArrayRef::new(&y, &[n]).unwrap());
    req.weight = Some(ArrayRef::new(&w, &[n]).unwrap());
    req.pos_weight = Some(ArrayRef::strided(&p, 0, &[n], &[0]).unwrap());
    req.grad_scale = 0.5;
    req.loss_out = Some(ArrayMut::new(&mut loss_out, &[n]).unwrap());
    req.grad_out = Some(ArrayMut::new(&mut grad_out, &[n]).unwrap());
    let total = loss(&mut req).unwrap();
    drop(req);
    let mut want_total = 0.0;
    for i in 0..n {
        let (l, g) = reference(Loss::Logits, x[i], y[i], w[i], p[0]);
        want_total += l;
        assert!(close(loss_out[i], l, 1e-14), "loss {i}: {} vs {l}", loss_out[i]);
        assert!(close(grad_out[i], 0.5 * g, 1e-13), "grad {i}: {} vs {}", grad_out[i], 0.5 * g);
    }
    assert!(close(total, want_total, 1e-12));
}

#[test]
fn probabilities_match_reference_and_reject_out_of_range() {
    let n = 300;
    let x: Vec<f32> = (0..n).map(|i| i as f32 / (n - 1) as f32).collect();
    let y: Vec<u8> = (0..n).map(|i| (i % 2) as u8).collect();
    let mut grad = vec![0.0f32; n];
    let mut req =
        LossRequest::new(Loss::Probabilities, ArrayRef::new(&x, &[n]).unwrap(), ArrayRef::new(&y, &[n]).unwrap());
    req.grad_out = Some(ArrayMut::new(&mut grad, &[n]).unwrap());
    let total = loss(&mut req).unwrap();
    drop(req);
    let want: f64 = (0..n).map(|i| reference(Loss::Probabilities, x[i] as f64, y[i] as f64, 1.0, 1.0).0).sum();
    assert!(close(total, want, 1e-6), "{total} vs {want}");
    for i in 0..n {
        let g = reference(Loss::Probabilities, x[i] as f64, y[i] as f64, 1.0, 1.0).1;
        assert!(close(grad[i] as f64, g, 1e-5), "grad {i}: {} vs {g}", grad[i]);
    }

    let bad = [0.5f64, 1.5];
    let t = [0.0f64, 1.0];
    let mut req =
        LossRequest::new(Loss::Probabilities, ArrayRef::new(&bad, &[2]).unwrap(), ArrayRef::new(&t, &[2]).unwrap());
    assert_eq!(loss(&mut req), Err(KernelError::InputOutOfRange));
    let ok = [0.5f64, 0.5];
    let bad_t = [0.0f64, f64::NAN];
    let mut req =
        LossRequest::new(Loss::Probabilities, ArrayRef::new(&ok, &[2]).unwrap(), ArrayRef::new(&bad_t, &[2]).unwrap());
    assert_eq!(loss(&mut req), Err(KernelError::TargetOutOfRange));
}

#[test]
fn second_derivatives_are_the_gradients_derivatives() {
    let n = 400;
    let x: Vec<f64> = (0..n).map(|i| i as f64 / 20.0 - 10.0).collect();
    let y: Vec<f64> = (0..n).map(|i| ((i * 7) % 5) as f64 / 4.0).collect();
    let p: Vec<f64> = (0..n).map(|i| i as f64 / (n + 1) as f64 + 0.001).collect();
    let run = |loss_kind: Loss, x: &[f64], pos_weight: bool| {
        let (mut grad, mut hess) = (vec![0.0; n], vec![0.0; n]);
        let input = if loss_kind == Loss::Probabilities { &p[..] } else { x };
        let mut req =
            LossRequest::new(loss_kind, ArrayRef::new(input, &[n]).unwrap(), ArrayRef::new(&y, &[n]).unwrap());
        let pw = [1.7f64];
        if pos_weight {
            req.pos_weight = Some(ArrayRef::strided(&pw, 0, &[n], &[0]).unwrap());
        }
        req.label_smoothing = 0.1;
        req.grad_out = Some(ArrayMut::new(&mut grad, &[n]).unwrap());
        req.hess_out = Some(ArrayMut::new(&mut hess, &[n]).unwrap());
        loss(&mut req).unwrap();
        drop(req);
        (grad, hess)
    };
    for kind in [Loss::Logits, Loss::Focal { alpha: 0.25, gamma: 2.0 }, Loss::Focal { alpha: -1.0, gamma: 0.5 }] {
        let h = 1e-6;
        let (_, hess) = run(kind, &x, kind == Loss::Logits);
        let (up, _) = run(kind, &x.iter().map(|v| v + h).collect::<Vec<_>>(), kind == Loss::Logits);
        let (down, _) = run(kind, &x.iter().map(|v| v - h).collect::<Vec<_>>(), kind == Loss::Logits);
        for i in 0..n {
            let want = (up[i] - down[i]) / (2.0 * h);
            assert!((hess[i] - want).abs() <= 1e-6 * (1.0 + want.abs()), "{kind:?} {i}: {} vs {want}", hess[i]);
        }
    }
}

#[test]
fn focal_loss_matches_the_textbook_form() {
    let n = 300;
    let x: Vec<f64> = (0..n).map(|i| i as f64 / 15.0 - 10.0).collect();
    let y: Vec<f64> = (0..n).map(|i| ((i * 3) % 5) as f64 / 4.0).collect();
    for (alpha, gamma) in [(0.25, 2.0), (-1.0, 0.0), (0.5, 0.25), (0.9, 5.0)] {
        let kind = Loss::Focal { alpha, gamma };
        let (mut value, mut grad) = (vec![0.0; n], vec![0.0; n]);
        let mut req = LossRequest::new(kind, ArrayRef::new(&x, &[n]).unwrap(), ArrayRef::new(&y, &[n]).unwrap());
        req.loss_out = Some(ArrayMut::new(&mut value, &[n]).unwrap());
        req.grad_out = Some(ArrayMut::new(&mut grad, &[n]).unwrap());
        loss(&mut req).unwrap();
        drop(req);
        for i in 0..n {
            let (l, g) = reference(kind, x[i], y[i], 1.0, 1.0);
            // (The textbook form cancels in `1 - p_t` by up to 1e-11 here.)
            assert!(close(value[i], l, 1e-9), "{kind:?} loss {i}: {} vs {l}", value[i]);
            assert!((grad[i] - g).abs() <= 1e-6 * (1.0 + g.abs()), "{kind:?} grad {i}: {} vs {g}", grad[i]);
        }
    }
}

#[test]
fn sums_are_bitwise_equal_for_any_thread_count() {
    let _guard = test_lock();
    let n = 3 * CHUNK * 7 + 123;
    let x: Vec<f32> = logits(n).iter().map(|&v| v as f32).collect();
    let y: Vec<f32> = labels(n).iter().map(|&v| v as f32).collect();
    let sum_with = |threads: usize| {
        set_num_threads(threads).unwrap();
        let mut req =
            LossRequest::new(Loss::Logits, ArrayRef::new(&x, &[n]).unwrap(), ArrayRef::new(&y, &[n]).unwrap());
        loss(&mut req).unwrap()
    };
    let one = sum_with(1);
    for threads in [2, 3, 4, 8] {
        assert_eq!(sum_with(threads).to_bits(), one.to_bits(), "{threads} threads");
    }
    set_num_threads(default_num_threads()).unwrap();
}

#[test]
fn every_layout_gives_the_contiguous_result() {
    // A (rows, cols) float64 batch stored transposed and reversed.
    let (rows, cols) = (37, 29);
    let n = rows * cols;
    let x = logits(n);
    let y: Vec<i64> = (0..n as i64).map(|i| i % 2).collect();
    let contiguous = {
        let mut out = vec![0.0; n];
        let mut req = LossRequest::new(
            Loss::Logits,
            ArrayRef::new(&x, &[rows, cols]).unwrap(),
            ArrayRef::new(&y, &[rows, cols]).unwrap(),
        );
        req.loss_out = Some(ArrayMut::new(&mut out, &[rows, cols]).unwrap());
        loss(&mut req).unwrap();
        drop(req);
        out
    };
    // Fortran order: element (r, c) at r + c * rows.
    let mut xf = vec![0.0; n];
    let mut yf = vec![0i64; n];
    for r in 0..rows {
        for c in 0..cols {
            xf[r + c * rows] = x[r * cols + c];
            yf[r + c * rows] = y[r * cols + c];
        }
    }
    let mut out = vec![0.0f64; n];
    let mut req = LossRequest::new(
        Loss::Logits,
        ArrayRef::strided(&xf, 0, &[rows, cols], &[1, rows as isize]).unwrap(),
        ArrayRef::strided(&yf, 0, &[rows, cols], &[1, rows as isize]).unwrap(),
    );
    req.loss_out = Some(ArrayMut::new(&mut out, &[rows, cols]).unwrap());
    loss(&mut req).unwrap();
    drop(req);
    assert_eq!(out, contiguous);

    // Both axes reversed, output written backwards too.
    let mut out = vec![0.0f64; n];
    let last = n - 1;
    let mut req = LossRequest::new(
        Loss::Logits,
        ArrayRef::strided(&x, last, &[rows, cols], &[-(cols as isize), -1]).unwrap(),
        ArrayRef::strided(&y, last, &[rows, cols], &[-(cols as isize), -1]).unwrap(),
    );
    req.loss_out = Some(ArrayMut::new(&mut out, &[rows, cols]).unwrap());
    loss(&mut req).unwrap();
    drop(req);
    let mut reversed = contiguous.clone();
    reversed.reverse();
    assert_eq!(out, reversed);
}

#[test]
fn in_place_output_reads_each_element_before_writing_it() {
    let n = PARALLEL_MIN_LEN_F32 + 5;
    let x = logits(n);
    let y = labels(n);
    let mut expected = vec![0.0; n];
    let mut req = LossRequest::new(Loss::Logits, ArrayRef::new(&x, &[n]).unwrap(), ArrayRef::new(&y, &[n]).unwrap());
    req.grad_out = Some(ArrayMut::new(&mut expected, &[n]).unwrap());
    loss(&mut req).unwrap();
    drop(req);

    let mut buf = x.clone();
    let ptr = buf.as_mut_ptr() as *mut u8;
    // SAFETY: `buf` outlives the call and is accessed only by the kernel,
    // through these two views of the very same array.
    let (input, out) =
        unsafe { (ArrayRef::from_raw(ptr, DType::F64, &[n], &[8]), ArrayMut::from_raw(ptr, DType::F64, &[n], &[8])) };
    let mut req = LossRequest::new(Loss::Logits, input, ArrayRef::new(&y, &[n]).unwrap());
    req.grad_out = Some(out);
    loss(&mut req).unwrap();
    drop(req);
    assert_eq!(buf, expected);
}

#[test]
fn partial_overlap_and_bad_shapes_are_refused() {
    let mut buf = vec![0.5f64; 10];
    let y = [1.0f64; 9];
    let ptr = buf.as_mut_ptr() as *mut u8;
    // SAFETY: `buf` outlives the call; the kernel must refuse to run.
    let (input, out) = unsafe {
        (ArrayRef::from_raw(ptr, DType::F64, &[9], &[8]), ArrayMut::from_raw(ptr.add(8), DType::F64, &[9], &[8]))
    };
    let mut req = LossRequest::new(Loss::Logits, input, ArrayRef::new(&y, &[9]).unwrap());
    req.loss_out = Some(out);
    assert!(matches!(loss(&mut req), Err(KernelError::Overlap(_))));

    let x = [0.0f32; 6];
    let t = [0.0f32; 6];
    let mut req =
        LossRequest::new(Loss::Logits, ArrayRef::new(&x, &[2, 3]).unwrap(), ArrayRef::new(&t, &[3, 2]).unwrap());
    assert_eq!(loss(&mut req), Err(KernelError::Shape { name: "target", shape: vec![3, 2], expected: vec![2, 3] }));
}

#[test]
fn float16_and_integer_inputs_use_their_compute_type() {
    let x16: Vec<half::f16> = [-2.0f32, 0.5, 3.0].iter().map(|&v| half::f16::from_f32(v)).collect();
    let t = [Bool8(0), Bool8(1), Bool8(1)];
    let mut out = vec![half::f16::ZERO; 3];
    let mut req = LossRequest::new(Loss::Logits, ArrayRef::new(&x16, &[3]).unwrap(), ArrayRef::new(&t, &[3]).unwrap());
    req.loss_out = Some(ArrayMut::new(&mut out, &[3]).unwrap());
    let total = loss(&mut req).unwrap();
    drop(req);
    let want: Vec<f64> =
        [(-2.0, 0.0), (0.5, 1.0), (3.0, 1.0)].iter().map(|&(x, y)| reference(Loss::Logits, x, y, 1.0, 1.0).0).collect();
    for (o, w) in out.iter().zip(&want) {
        assert!(close(o.to_f64(), *w, 1e-3));
    }
    assert!(close(total, want.iter().sum(), 1e-6));

    let xi = [0i32, 1, 1];
    let ti = [0u8, 1, 0];
    let mut req =
        LossRequest::new(Loss::Probabilities, ArrayRef::new(&xi, &[3]).unwrap(), ArrayRef::new(&ti, &[3]).unwrap());
    assert_eq!(loss(&mut req).unwrap(), 100.0);
}

#[test]
fn sigmoid_writes_stable_values() {
    let x = [-800.0f64, -20.0, 0.0, 20.0, f64::INFINITY];
    let mut out = [0.0f64; 5];
    sigmoid(&ArrayRef::new(&x, &[5]).unwrap(), &ArrayMut::new(&mut out, &[5]).unwrap(), false).unwrap();
    assert_eq!(out[0], 0.0);
    assert!(close(out[1], (-20.0f64).exp() / (1.0 + (-20.0f64).exp()), 1e-15));
    assert_eq!(&out[2..], &[0.5, 1.0 / (1.0 + (-20.0f64).exp()), 1.0]);
}

#[test]
fn repeating_operands_match_their_materialized_values() {
    // A per-class pos_weight and a per-row weight over a (rows, cols) batch,
    // against the same values written out in full: identical bits. The
    // class counts cover periods read at vector-aligned positions (37, 100),
    // a single value, and one too long for that (4093).
    for (rows, cols) in [(700, 37), (300, 100), (20_000, 1), (12, 4093)] {
        let x = logits(rows * cols);
        repeating_operands_case(rows, cols, &x);
        repeating_operands_case(rows, cols, &x.iter().map(|&v| v as f32).collect::<Vec<_>>());
    }
}

fn repeating_operands_case<T: elem::Elem>(rows: usize, cols: usize, x: &[T]) {
    let n = rows * cols;
    let y = labels(n);
    let per_class: Vec<f64> = (0..cols).map(|c| 0.5 + (c % 23) as f64 / 10.0).collect();
    let per_row: Vec<f32> = (0..rows).map(|r| 1.0 + (r % 7) as f32).collect();
    let full_class: Vec<f64> = (0..n).map(|i| per_class[i % cols]).collect();
    let full_row: Vec<f32> = (0..n).map(|i| per_row[i / cols]).collect();
    let run = |pw: ArrayRef<'_>, w: ArrayRef<'_>| {
        let mut grad = vec![0.0f64; n];
        let mut req = LossRequest::new(
            Loss::Logits,
            ArrayRef::new(x, &[rows, cols]).unwrap(),
            ArrayRef::new(&y, &[rows, cols]).unwrap(),
        );
        req.pos_weight = Some(pw);
        req.weight = Some(w);
        req.grad_out = Some(ArrayMut::new(&mut grad, &[rows, cols]).unwrap());
        let total = loss(&mut req).unwrap();
        drop(req);
        (total, grad)
    };
    let broadcast = run(
        ArrayRef::new(&per_class, &[cols]).unwrap().broadcast_to(&[rows, cols]).unwrap(),
        ArrayRef::new(&per_row, &[rows, 1]).unwrap().broadcast_to(&[rows, cols]).unwrap(),
    );
    let materialized =
        run(ArrayRef::new(&full_class, &[rows, cols]).unwrap(), ArrayRef::new(&full_row, &[rows, cols]).unwrap());
    assert_eq!(broadcast.0.to_bits(), materialized.0.to_bits(), "{rows} x {cols}");
    assert_eq!(broadcast.1, materialized.1, "{rows} x {cols}");
}

/// Sums of `f(i)` over the reduced axes of a C-ordered (rows, cols) batch.
fn axis_reference(rows: usize, cols: usize, per_row: bool, f: impl Fn(usize) -> f64) -> Vec<f64> {
    let mut out = vec![0.0; if per_row { rows } else { cols }];
    for i in 0..rows * cols {
        out[if per_row { i / cols } else { i % cols }] += f(i);
    }
    out
}

#[test]
fn axis_sums_per_row_and_per_column() {
    let _guard = test_lock();
    let (rows, cols) = (3001, 23);
    let n = rows * cols;
    let x: Vec<f32> = logits(n).iter().map(|&v| v as f32).collect();
    let y: Vec<u8> = (0..n).map(|i| (i % 3 == 0) as u8).collect();
    let element = |i: usize| reference(Loss::Logits, x[i] as f64, y[i] as f64, 1.0, 1.0).0;
    for (per_row, reduced) in [(true, [false, true]), (false, [true, false])] {
        let want = axis_reference(rows, cols, per_row, element);
        let mut results = Vec::new();
        for threads in [1, 2, 5] {
            set_num_threads(threads).unwrap();
            let mut sums = vec![0.0; want.len()];
            let mut req = LossRequest::new(
                Loss::Logits,
                ArrayRef::new(&x, &[rows, cols]).unwrap(),
                ArrayRef::new(&y, &[rows, cols]).unwrap(),
            );
            req.axis_sums = Some(AxisSums::new(&mut sums, &[rows, cols], &reduced).unwrap());
            let total = loss(&mut req).unwrap();
            drop(req);
            assert!(close(total, sums.iter().sum(), 1e-12));
            for (got, want) in sums.iter().zip(&want) {
                assert!(close(*got, *want, 1e-6), "per_row {per_row}: {got} vs {want}");
            }
            results.push(sums);
        }
        assert!(results.windows(2).all(|w| w[0] == w[1]), "per_row {per_row}: thread counts differ");
    }
    set_num_threads(default_num_threads()).unwrap();
}

#[test]
fn axis_sums_over_many_windows_do_not_depend_on_thread_count() {
    // Per-column sums of 4000 columns, and per-row sums of one column:
    // large chunk results, so the calls run in several windows of chunks.
    let _guard = test_lock();
    for (rows, cols, reduced) in [(205, 4000, [true, false]), (40 * CHUNK + 5, 1, [false, true])] {
        let n = rows * cols;
        let x: Vec<f32> = logits(n).iter().map(|&v| v as f32).collect();
        let y: Vec<u8> = (0..n).map(|i| (i % 3 == 0) as u8).collect();
        let element = |i: usize| reference(Loss::Logits, x[i] as f64, y[i] as f64, 1.0, 1.0).0;
        let want = axis_reference(rows, cols, reduced[1], element);
        let sums_with = |threads: usize| {
            set_num_threads(threads).unwrap();
            let mut sums = vec![0.0; want.len()];
            let shape = [rows, cols];
            let mut req =
                LossRequest::new(Loss::Logits, ArrayRef::new(&x, &shape).unwrap(), ArrayRef::new(&y, &shape).unwrap());
            req.axis_sums = Some(AxisSums::new(&mut sums, &shape, &reduced).unwrap());
            loss(&mut req).unwrap();
            drop(req);
            sums
        };
        let one = sums_with(1);
        for (got, want) in one.iter().zip(&want) {
            assert!(close(*got, *want, 1e-6), "{got} vs {want}");
        }
        for threads in [2, 3, 4] {
            assert_eq!(sums_with(threads), one, "{rows} x {cols}, {threads} threads");
        }
    }
    set_num_threads(default_num_threads()).unwrap();
}

#[test]
fn axis_sums_continue_bitwise_across_chunk_aligned_batches() {
    // Per-column sums of 4 * CHUNK rows of 3 columns: one call, or two calls
    // of 2 * CHUNK rows each (a multiple of CHUNK elements), the second
    // adding to the first's sums, give the same bits.
    let (rows, cols) = (4 * CHUNK, 3);
    let n = rows * cols;
    let (x, y) = (logits(n), labels(n));
    let sums_of = |lo: usize, hi: usize, sums: &mut Vec<f64>| {
        let shape = [(hi - lo) / cols, cols];
        let mut req = LossRequest::new(
            Loss::Logits,
            ArrayRef::new(&x[lo..hi], &shape).unwrap(),
            ArrayRef::new(&y[lo..hi], &shape).unwrap(),
        );
        req.axis_sums = Some(AxisSums::new(sums, &shape, &[true, false]).unwrap());
        loss(&mut req).unwrap();
    };
    let mut whole = vec![0.0; cols];
    sums_of(0, n, &mut whole);
    let mut batched = vec![0.0; cols];
    sums_of(0, n / 2, &mut batched);
    sums_of(n / 2, n, &mut batched);
    assert_eq!(whole, batched);
}
