//! The table of the learned filter's kernels: 16-bit activations, the same at every sample
//! depth.

use super::conv::{self, ConvShape};
use super::{Isa, max_isa};
use std::sync::OnceLock;

/// `conv_layer(shape, input, weights, biases, (shift, floor), output)`.
type ConvLayerFn = unsafe fn(ConvShape, &[i16], &[i16], &[i32], (u32, i16), &mut [i16]);

/// Most weights of one output plane the kernels take: 16 input planes of 5x5.
pub const MAX_TAPS: usize = 16 * 25;

/// The network kernels at one instruction set level.
pub struct Network {
    isa: Isa,
    conv_layer: ConvLayerFn,
}

impl Network {
    /// The kernels at `isa`, clamped to the detected level.
    pub fn new(isa: Isa) -> Self {
        let mut kernels = Network {
            isa: Isa::Reference,
            conv_layer: conv::conv_layer,
        };
        #[cfg(target_arch = "x86_64")]
        {
            let level = isa.min(super::detect());
            if level >= Isa::Avx2 {
                kernels.isa = Isa::Avx2;
                kernels.conv_layer = super::x86_conv::conv_layer_avx2;
            }
            if level >= Isa::Avx512 {
                kernels.isa = Isa::Avx512;
                kernels.conv_layer = super::x86_conv_avx512::conv_layer_avx512;
            }
        }
        let _ = isa;
        kernels
    }

    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// One convolution layer without padding (see [`conv::conv_layer`]): `input` holds
    /// `shape.inputs` planes of `width`×`height`, `output` takes `shape.outputs` planes of the
    /// output size; `weights` are input-major, then row, then column, each below 2^10 in
    /// magnitude; the result is `(acc + round) >> shift` clamped to `floor..=i16::MAX`.
    #[inline]
    pub fn conv_layer(
        &self,
        shape: ConvShape,
        input: &[i16],
        weights: &[i16],
        biases: &[i32],
        (shift, floor): (u32, i16),
        output: &mut [i16],
    ) {
        assert!(shape.kernel >= 1 && shape.width >= shape.kernel && shape.height >= shape.kernel);
        assert!(shape.taps() <= MAX_TAPS && shift < 31);
        assert!(input.len() >= shape.inputs * shape.width * shape.height);
        assert!(output.len() >= shape.outputs * shape.out_width() * shape.out_height());
        assert!(weights.len() >= shape.outputs * shape.taps() && biases.len() >= shape.outputs);
        debug_assert!(weights.iter().all(|w| w.unsigned_abs() < 1 << 10));
        // SAFETY: the table holds only kernels of levels the CPU runs (see `new`), and the
        // slices hold what the shape says (asserted above).
        unsafe { (self.conv_layer)(shape, input, weights, biases, (shift, floor), output) }
    }
}

/// The network kernels of [`max_isa`], which the codec runs.
pub fn network() -> &'static Network {
    static NETWORK: OnceLock<Network> = OnceLock::new();
    NETWORK.get_or_init(|| Network::new(max_isa()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::Rng;

    #[test]
    fn conv_layer_of_every_level_equals_the_reference() {
        let mut rng = Rng(0x5EED_C0DE);
        for isa in max_isa().up_to() {
            let kernels = Network::new(isa);
            assert_eq!(kernels.isa(), isa, "every detected level has its own layer");
            for (inputs, outputs, kernel) in
                [(1, 8, 3), (8, 8, 3), (8, 1, 3), (3, 5, 5), (16, 16, 5)]
            {
                for (width, height) in [(20, 18), (70, 70), (kernel, kernel), (37, 5), (66, 9)] {
                    let shape = ConvShape {
                        inputs,
                        outputs,
                        kernel,
                        width,
                        height,
                    };
                    // Extremes too: the largest weights on the largest activations, where the
                    // 32-bit sums wrap.
                    let extreme = rng.next().is_multiple_of(3);
                    let input: Vec<i16> = (0..inputs * width * height)
                        .map(|_| if extreme { i16::MAX } else { rng.next() as i16 })
                        .collect();
                    let weights: Vec<i16> = (0..outputs * shape.taps())
                        .map(|_| {
                            if extreme {
                                511
                            } else {
                                (rng.next() % 1023) as i16 - 511
                            }
                        })
                        .collect();
                    let biases: Vec<i32> = (0..outputs).map(|_| rng.next() as i32 >> 6).collect();
                    for (shift, floor) in [(0, i16::MIN), (9, 0), (14, i16::MIN)] {
                        let len = outputs * shape.out_width() * shape.out_height();
                        let (mut got, mut want) = (vec![7i16; len], vec![0i16; len]);
                        kernels.conv_layer(
                            shape,
                            &input,
                            &weights,
                            &biases,
                            (shift, floor),
                            &mut got,
                        );
                        conv::conv_layer(
                            shape,
                            &input,
                            &weights,
                            &biases,
                            (shift, floor),
                            &mut want,
                        );
                        assert_eq!(got, want, "{isa:?} {shape:?} shift {shift}");
                    }
                }
            }
        }
    }

    #[test]
    fn conv_layer_computes_a_known_filter() {
        // A 3x3 box sum of a ramp, halved: every output is the centre sample times 9 / 2.
        let shape = ConvShape {
            inputs: 1,
            outputs: 1,
            kernel: 3,
            width: 5,
            height: 3,
        };
        let input: Vec<i16> = (0..15).map(|i| (i % 5) as i16 * 10).collect();
        let mut out = [0i16; 3];
        network().conv_layer(shape, &input, &[1; 9], &[0], (1, 0), &mut out);
        assert_eq!(out, [45, 90, 135]);
        network().conv_layer(shape, &input, &[-1; 9], &[0], (1, 0), &mut out);
        assert_eq!(out, [0, 0, 0]);
    }
}
