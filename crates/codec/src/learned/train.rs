//! The encoder's training of the filter: a floating-point copy of the network, fitted with
//! Adam on patches of one reconstructed picture to predict the source minus the
//! reconstruction, then quantised to the integers the stream carries. Training uses the tensor
//! crate on the CPU; a seed fixes the patches and the initial weights, and the result does not
//! depend on the thread count, so the stream does not either.

use super::{
    ACTIVATION_BITS, FilterModel, FilterShape, Layer, MAX_BIAS, MAX_SHIFT, RESIDUAL_GAIN_LOG2,
};
use crate::picture::{PaddedPlane, Sample};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};

/// Side of the square of outputs each training patch covers.
const PATCH: usize = 32;
/// Patches per optimiser step.
const BATCH: usize = 16;
const LEARNING_RATE: f64 = 2e-3;
/// The seed the encoder trains with.
pub const SEED: u64 = 0x1EA2_4ED0;

/// A trained model and the loss of each optimiser step, before the step.
pub struct Trained {
    pub model: FilterModel,
    pub losses: Vec<f32>,
}

/// One picture to learn from: its reconstruction (the border, at least the network's reach,
/// replicating its edges), its source, and the visible area.
pub struct Example<'a, T: Sample> {
    pub reconstruction: &'a PaddedPlane<T>,
    pub source: &'a PaddedPlane<T>,
    pub visible: (usize, usize),
}

/// How to train: steps, the seed of patches and initial weights, and the model to start from
/// (random weights without one).
pub struct Schedule<'a> {
    pub steps: u32,
    pub seed: u64,
    pub start: Option<&'a FilterModel>,
}

/// A small deterministic generator (64-bit LCG), for patch positions and initial weights.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    /// Uniform in -1..1.
    fn symmetric(&mut self) -> f32 {
        (self.next() as f32 / (1u64 << 31) as f32) * 2.0 - 1.0
    }
}

/// The floating-point network: per layer, weights `(outputs, inputs, k, k)` and biases.
struct FloatNetwork {
    layers: Vec<(Var, Var)>,
}

impl FloatNetwork {
    /// He-uniform weights, zero biases; the last layer starts small, so the first correction
    /// is close to none.
    fn new(shape: FilterShape, rng: &mut Lcg, device: &Device) -> candle_core::Result<Self> {
        let k = shape.kernel();
        let count = shape.layers as usize;
        let mut layers = Vec::with_capacity(count);
        for (l, (inputs, outputs)) in shape.layer_planes().enumerate() {
            let fan_in = (inputs * k * k) as f32;
            let bound = (6.0 / fan_in).sqrt() * if l + 1 == count { 0.1 } else { 1.0 };
            let weights: Vec<f32> = (0..outputs * inputs * k * k)
                .map(|_| rng.symmetric() * bound)
                .collect();
            let weights =
                Var::from_tensor(&Tensor::from_vec(weights, (outputs, inputs, k, k), device)?)?;
            let biases = Var::zeros(outputs, DType::F32, device)?;
            layers.push((weights, biases));
        }
        Ok(FloatNetwork { layers })
    }

    /// The floating-point network an integer model stands for.
    fn from_model(model: &FilterModel, device: &Device) -> candle_core::Result<Self> {
        let k = model.shape.kernel();
        let activation_unit = (1u32 << ACTIVATION_BITS) as f32;
        let mut layers = Vec::with_capacity(model.layers.len());
        for (layer, (inputs, outputs)) in model.layers.iter().zip(model.shape.layer_planes()) {
            let scale = 1.0 / (1u32 << layer.shift) as f32;
            let weights: Vec<f32> = layer
                .weights
                .iter()
                .map(|&w| f32::from(w) * scale)
                .collect();
            let biases: Vec<f32> = layer
                .biases
                .iter()
                .map(|&b| b as f32 * scale / activation_unit)
                .collect();
            layers.push((
                Var::from_tensor(&Tensor::from_vec(weights, (outputs, inputs, k, k), device)?)?,
                Var::from_tensor(&Tensor::from_vec(biases, outputs, device)?)?,
            ));
        }
        Ok(FloatNetwork { layers })
    }

    fn forward(&self, input: &Tensor) -> candle_core::Result<Tensor> {
        let mut x = input.clone();
        let last = self.layers.len() - 1;
        for (l, (weights, biases)) in self.layers.iter().enumerate() {
            let outputs = biases.dims1()?;
            x = x
                .conv2d(weights.as_tensor(), 0, 1, 1, 1)?
                .broadcast_add(&biases.as_tensor().reshape((1, outputs, 1, 1))?)?;
            if l != last {
                x = x.relu()?;
            }
        }
        Ok(x)
    }

    fn vars(&self) -> Vec<Var> {
        self.layers
            .iter()
            .flat_map(|(w, b)| [w.clone(), b.clone()])
            .collect()
    }
}

// EVOLVE-BLOCK-START learned_filter_loss
/// What training minimises: the mean squared error of the predicted correction (the filter's
/// distortion, which the per-superblock decisions then weigh against rate).
fn loss(predicted: &Tensor, target: &Tensor) -> candle_core::Result<Tensor> {
    (predicted - target)?.sqr()?.mean_all()
}
// EVOLVE-BLOCK-END

/// One batch of patches from random examples: inputs (the reconstruction with the network's
/// reach around each patch, over -0.5..0.5) and targets (source minus reconstruction over the
/// sample range, times the residual gain), as the integer network sees them.
fn batch<T: Sample>(
    examples: &[Example<'_, T>],
    (patch, reach): (usize, usize),
    rng: &mut Lcg,
    device: &Device,
) -> candle_core::Result<(Tensor, Tensor)> {
    let side = patch + 2 * reach;
    let gain = (1u32 << RESIDUAL_GAIN_LOG2) as f32;
    let mut inputs = Vec::with_capacity(BATCH * side * side);
    let mut targets = Vec::with_capacity(BATCH * patch * patch);
    for _ in 0..BATCH {
        let example = &examples[rng.next() as usize % examples.len()];
        let (reconstruction, source) = (example.reconstruction, example.source);
        let unit = 1.0 / (1u32 << reconstruction.bit_depth) as f32;
        let x = rng.next() as usize % (example.visible.0 - patch + 1);
        let y = rng.next() as usize % (example.visible.1 - patch + 1);
        for row in 0..side {
            let at = reconstruction.index(
                x as isize - reach as isize,
                (y + row) as isize - reach as isize,
            );
            let samples = &reconstruction.data[at..at + side];
            inputs.extend(samples.iter().map(|s| s.to_i32() as f32 * unit - 0.5));
        }
        for row in 0..patch {
            let recon = reconstruction.row(x, y + row, patch);
            let orig = source.row(x, y + row, patch);
            targets.extend(
                recon
                    .iter()
                    .zip(orig)
                    .map(|(r, o)| (o.to_i32() - r.to_i32()) as f32 * unit * gain),
            );
        }
    }
    Ok((
        Tensor::from_vec(inputs, (BATCH, 1, side, side), device)?,
        Tensor::from_vec(targets, (BATCH, 1, patch, patch), device)?,
    ))
}

/// Trains a network of `shape` on `examples` to correct each reconstruction towards its
/// source, and quantises it.
pub fn train<T: Sample>(
    shape: FilterShape,
    examples: &[Example<'_, T>],
    schedule: &Schedule<'_>,
) -> candle_core::Result<Trained> {
    let device = Device::Cpu;
    let reach = shape.reach();
    assert!(!examples.is_empty());
    let mut patch = PATCH;
    for example in examples {
        assert!(example.reconstruction.border >= reach);
        patch = patch.min(example.visible.0).min(example.visible.1);
    }
    let mut rng = Lcg(schedule.seed);
    let network = match schedule.start.filter(|model| model.shape == shape) {
        Some(model) => FloatNetwork::from_model(model, &device)?,
        None => FloatNetwork::new(shape, &mut rng, &device)?,
    };
    let mut optimiser = AdamW::new(
        network.vars(),
        ParamsAdamW {
            lr: LEARNING_RATE,
            weight_decay: 0.0,
            ..Default::default()
        },
    )?;
    let mut losses = Vec::with_capacity(schedule.steps as usize);
    for step in 0..schedule.steps {
        // The rate falls linearly to a tenth by the last step, so the weights settle.
        let progress = f64::from(step) / f64::from(schedule.steps);
        optimiser.set_learning_rate(LEARNING_RATE * (1.0 - 0.9 * progress));
        let (input, target) = batch(examples, (patch, reach), &mut rng, &device)?;
        let loss = loss(&network.forward(&input)?, &target)?;
        losses.push(loss.to_scalar::<f32>()?);
        optimiser.backward_step(&loss)?;
    }
    Ok(Trained {
        model: quantise(shape, &network)?,
        losses,
    })
}

/// The integer model nearest the floating-point one: per layer, the largest shift (up to
/// [`MAX_SHIFT`]) whose weights fit the shape's bits and whose biases fit [`MAX_BIAS`].
fn quantise(shape: FilterShape, network: &FloatNetwork) -> candle_core::Result<FilterModel> {
    let max_weight = shape.max_weight() as f32;
    let activation_unit = (1u32 << ACTIVATION_BITS) as f32;
    let mut layers = Vec::with_capacity(network.layers.len());
    for (weights, biases) in &network.layers {
        let weights = weights.as_tensor().flatten_all()?.to_vec1::<f32>()?;
        let biases = biases.as_tensor().to_vec1::<f32>()?;
        let largest_weight = weights.iter().fold(0f32, |m, w| m.max(w.abs()));
        let largest_bias = biases.iter().fold(0f32, |m, b| m.max(b.abs())) * activation_unit;
        let mut shift = MAX_SHIFT;
        while shift > 0
            && (largest_weight * (1u32 << shift) as f32 > max_weight
                || largest_bias * (1u32 << shift) as f32 > MAX_BIAS as f32)
        {
            shift -= 1;
        }
        let scale = (1u32 << shift) as f32;
        layers.push(Layer {
            weights: weights
                .iter()
                .map(|w| (w * scale).round().clamp(-max_weight, max_weight) as i16)
                .collect(),
            biases: biases
                .iter()
                .map(|b| {
                    (b * activation_unit * scale)
                        .round()
                        .clamp(-(MAX_BIAS as f32), MAX_BIAS as f32) as i32
                })
                .collect(),
            shift,
        });
    }
    Ok(FilterModel { shape, layers })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learned::{FilterScratch, block_residual};
    use crate::picture::LUMA_BORDER;
    use crate::test_rng::Rng;

    /// A textured source (blocks of random grey with noise) and its reconstruction blurred
    /// horizontally, as coarse quantisation leaves it: a correction exists to be learned.
    fn pictures(width: usize, height: usize) -> (PaddedPlane<u8>, PaddedPlane<u8>) {
        let mut rng = Rng(99);
        let mut source = PaddedPlane::new(width, height, LUMA_BORDER, 8);
        let levels: Vec<i32> = (0..64).map(|_| (rng.next() % 200) as i32 + 28).collect();
        for y in 0..height {
            for x in 0..width {
                let level = levels[(y / 8 % 8) * 8 + x / 8 % 8];
                let noise = (rng.next() % 17) as i32 - 8;
                source.row_mut(x, y, 1)[0] = (level + noise).clamp(0, 255) as u8;
            }
        }
        source.extend_edges();
        let mut reconstruction = source.clone();
        for y in 0..height {
            for x in 0..width {
                let at = |dx: isize| source.data[source.index(x as isize + dx, y as isize)] as i32;
                reconstruction.row_mut(x, y, 1)[0] = ((at(-1) + 2 * at(0) + at(1) + 2) / 4) as u8;
            }
        }
        reconstruction.extend_edges();
        (source, reconstruction)
    }

    fn sse(a: &PaddedPlane<u8>, b: &PaddedPlane<u8>) -> u64 {
        (0..a.height)
            .flat_map(|y| a.row(0, y, a.width).iter().zip(b.row(0, y, b.width)))
            .map(|(&p, &q)| (i64::from(p) - i64::from(q)).pow(2) as u64)
            .sum()
    }

    #[test]
    fn training_lowers_the_loss_and_the_integer_filter_lowers_the_error() {
        let shape = FilterShape {
            layers: 3,
            channels: 6,
            radius: 1,
            weight_bits: 8,
        };
        let (source, reconstruction) = pictures(96, 64);
        let example = Example {
            reconstruction: &reconstruction,
            source: &source,
            visible: (96, 64),
        };
        let schedule = Schedule {
            steps: 150,
            seed: SEED,
            start: None,
        };
        let trained = train(shape, &[example], &schedule).unwrap();
        let mean = |losses: &[f32]| losses.iter().sum::<f32>() / losses.len() as f32;
        let (first, last) = (mean(&trained.losses[..10]), mean(&trained.losses[140..]));
        assert!(last < 0.7 * first, "loss {first} -> {last}");
        let mut filtered = reconstruction.clone();
        let mut scratch = FilterScratch::default();
        let mut residual = Vec::new();
        block_residual(
            &trained.model,
            &reconstruction,
            (0, 0, 96, 64),
            &mut scratch,
            &mut residual,
        );
        crate::learned::inference::correct_block(
            &reconstruction,
            &mut filtered,
            (0, 0, 96, 64),
            &residual,
            1 << crate::learned::STRENGTH_SHIFT,
        );
        let (before, after) = (sse(&reconstruction, &source), sse(&filtered, &source));
        assert!(after * 10 < before * 9, "squared error {before} -> {after}");
    }
}
