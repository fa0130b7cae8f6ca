//! Passes over whole planes for the Winograd transforms: each computes a few output planes
//! entry by entry from a few input planes, which is how every transform in this module
//! vectorises.

/// Planes of `len` entries of `buffer`, the first at `start` and each `step` after the one
/// before: where a pass writes its outputs.
pub(super) struct Planes<'a, T> {
    buffer: &'a mut [T],
    start: usize,
    step: usize,
    len: usize,
}

pub(super) fn planes<T>(buffer: &mut [T], start: usize, step: usize, len: usize) -> Planes<'_, T> {
    Planes {
        buffer,
        start,
        step,
        len,
    }
}

/// The four [`Planes`] at `start` … `start` + 3·step.
#[inline(always)]
pub(super) fn four_planes<T>(
    buffer: &mut [T],
    start: usize,
    step: usize,
    len: usize,
) -> [&mut [T]; 4] {
    let (p0, rest) = buffer[start..].split_at_mut(step);
    let (p1, rest) = rest.split_at_mut(step);
    let (p2, p3) = rest.split_at_mut(step);
    [
        &mut p0[..len],
        &mut p1[..len],
        &mut p2[..len],
        &mut p3[..len],
    ]
}

/// The six input planes `plane(0)` … `plane(5)` of a pass.
#[inline(always)]
pub(super) fn six<'a, T>(plane: impl Fn(usize) -> &'a [T]) -> [&'a [T]; 6] {
    [plane(0), plane(1), plane(2), plane(3), plane(4), plane(5)]
}

macro_rules! count {
    () => { 0 };
    ($head:ident $($tail:ident)*) => { 1 + count!($($tail)*) };
}

/// Defines `$name(inputs, outputs, f)`: outputs[k][e] = f(inputs[·][e])[k] for every entry e
/// of the output [`Planes`], in one pass that the compiler vectorises (`f` being a few
/// additions and multiplications by constants). The planes are handed on as separate
/// arguments, which the compiler takes as not overlapping; in arrays it would have to assume
/// they might (and the passes stayed scalar).
macro_rules! plane_pass {
    ($name:ident: [$($input:ident),+] => [$($output:ident),+]) => {
        #[inline(always)]
        pub(super) fn $name<T: Copy>(
            inputs: [&[T]; count!($($input)+)],
            outputs: Planes<'_, T>,
            f: impl Fn([T; count!($($input)+)]) -> [T; count!($($output)+)],
        ) {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn apart<T: Copy>(
                f: impl Fn([T; count!($($input)+)]) -> [T; count!($($output)+)],
                $($input: &[T],)+
                $($output: &mut [T],)+
            ) {
                let n = [$($output.len()),+][0];
                $(let $input = &$input[..n];)+
                $(let $output = &mut $output[..n];)+
                for e in 0..n {
                    let values = f([$($input[e]),+]);
                    let mut k = 0;
                    $(
                        $output[e] = values[k];
                        k += 1;
                    )+
                    let _ = k;
                }
            }
            let [$($input),+] = inputs;
            let Planes { buffer, start, step, len } = outputs;
            let mut rest = &mut buffer[start..];
            $(
                let taken = std::mem::take(&mut rest);
                let (plane, tail) = taken.split_at_mut(step.min(taken.len()));
                rest = tail;
                let $output = &mut plane[..len];
            )+
            let _ = rest;
            apart(f, $($input,)+ $($output,)+);
        }
    };
}

plane_pass!(six_to_six: [i0, i1, i2, i3, i4, i5] => [o0, o1, o2, o3, o4, o5]);
plane_pass!(six_to_four: [i0, i1, i2, i3, i4, i5] => [o0, o1, o2, o3]);
plane_pass!(six_to_three: [i0, i1, i2, i3, i4, i5] => [o0, o1, o2]);
plane_pass!(four_to_six: [i0, i1, i2, i3] => [o0, o1, o2, o3, o4, o5]);
plane_pass!(three_to_six: [i0, i1, i2] => [o0, o1, o2, o3, o4, o5]);
