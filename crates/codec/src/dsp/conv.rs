//! The reference of one convolution layer of the learned in-loop filter, in 16-bit activations
//! and 32-bit wrapping accumulators so that every implementation gives the same bits.

/// One layer's geometry: `inputs` planes of `width`×`height` activations in, `outputs` planes
/// of `(width - kernel + 1)`×`(height - kernel + 1)` out (a convolution without padding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvShape {
    pub inputs: usize,
    pub outputs: usize,
    pub kernel: usize,
    pub width: usize,
    pub height: usize,
}

impl ConvShape {
    pub fn out_width(&self) -> usize {
        self.width + 1 - self.kernel
    }

    pub fn out_height(&self) -> usize {
        self.height + 1 - self.kernel
    }

    /// Weights of one output plane: `inputs`·`kernel`².
    pub fn taps(&self) -> usize {
        self.inputs * self.kernel * self.kernel
    }
}

/// The accumulator of output `(x, y)` of the plane whose weights are `weights` (input-major,
/// then row, then column) and whose bias is `bias`: products are exact in 32 bits (weights
/// below 2^10, activations 16-bit) and their sum wraps, so its order does not matter.
#[inline]
pub(super) fn accumulate(
    shape: &ConvShape,
    input: &[i16],
    weights: &[i16],
    bias: i32,
    (x, y): (usize, usize),
) -> i32 {
    let k = shape.kernel;
    let plane_len = shape.width * shape.height;
    let mut acc = bias;
    for (i, plane_weights) in weights.chunks_exact(k * k).enumerate() {
        let plane = &input[i * plane_len..(i + 1) * plane_len];
        for (ky, row_weights) in plane_weights.chunks_exact(k).enumerate() {
            let row = &plane[(y + ky) * shape.width + x..][..k];
            for (&w, &a) in row_weights.iter().zip(row) {
                acc = acc.wrapping_add(i32::from(w) * i32::from(a));
            }
        }
    }
    acc
}

/// The activation an accumulator gives: rounded down by `shift` bits and clamped to
/// `floor..=i16::MAX` (a floor of 0 is the rectifier of hidden layers).
#[inline]
pub(super) fn activation(acc: i32, shift: u32, floor: i16) -> i16 {
    let round = (1i32 << shift) >> 1;
    (acc.wrapping_add(round) >> shift).clamp(i32::from(floor), i32::from(i16::MAX)) as i16
}

/// `output[o][y][x] = activation(biases[o] + Σ weights[o][i][ky][kx]·input[i][y + ky][x + kx])`.
pub fn conv_layer(
    shape: ConvShape,
    input: &[i16],
    weights: &[i16],
    biases: &[i32],
    (shift, floor): (u32, i16),
    output: &mut [i16],
) {
    let (ow, oh) = (shape.out_width(), shape.out_height());
    for (o, plane) in output
        .chunks_exact_mut(ow * oh)
        .take(shape.outputs)
        .enumerate()
    {
        let plane_weights = &weights[o * shape.taps()..(o + 1) * shape.taps()];
        for y in 0..oh {
            for x in 0..ow {
                let acc = accumulate(&shape, input, plane_weights, biases[o], (x, y));
                plane[y * ow + x] = activation(acc, shift, floor);
            }
        }
    }
}
