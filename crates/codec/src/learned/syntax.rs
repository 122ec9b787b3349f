//! The filter's syntax at the end of a frame's range-coded payload, after SAO:
//!
//! ```text
//! new model (1 bypass bit) | if new: shipped (1 bypass bit)
//!                           | shipped: its index (2 bits) | otherwise: the model
//! if a model is in force: applied (1 bypass bit) | strength − 1 (4 bits) | a flag per superblock
//! model: per layer, shift (5 bits) | weight and bias Exp-Golomb orders (4 and 5 bits)
//!        | weights, then biases, zigzag Exp-Golomb coded
//! ```
//!
//! Superblock flags are context coded by how many of the left and upper neighbours are on.

use super::inference::FrameFilter;
use super::shipped::{SHIPPED_INDEX_BITS, shipped_models};
use super::{FilterModel, FilterShape, Layer, MAX_BIAS, MAX_SHIFT, STRENGTH_BITS};
use crate::entropy::{
    CostCounter, Prob, RangeDecoder, Writer, exp_golomb_bins, read_exp_golomb, write_exp_golomb,
};
use crate::error::{CodecError, Result};

/// Longest Exp-Golomb code body: values of the model stay below 2^26.
const MAX_BODY_BITS: u32 = 26;

fn zigzag(v: i32) -> u32 {
    ((v << 1) ^ (v >> 31)) as u32
}

fn unzigzag(v: u32) -> i32 {
    (v >> 1) as i32 ^ -((v & 1) as i32)
}

/// A model value coded Exp-Golomb of order `k`, at most `MAX_BODY_BITS` bits past its prefix.
fn read_value(r: &mut RangeDecoder, k: u32) -> Result<u32> {
    read_exp_golomb(r, k, MAX_BODY_BITS.saturating_sub(k))
        .ok_or(CodecError::Corrupt("learned filter parameter too large"))
}

/// The Exp-Golomb order that codes `values` in the fewest bits, up to `most`.
fn best_order(values: impl Iterator<Item = u32> + Clone, most: u32) -> u32 {
    (0..=most)
        .min_by_key(|&k| {
            values
                .clone()
                .map(|v| u64::from(exp_golomb_bins(v, k)))
                .sum::<u64>()
        })
        .unwrap_or(0)
}

fn write_model<W: Writer>(w: &mut W, model: &FilterModel) {
    for layer in &model.layers {
        w.bypass(u32::from(layer.shift), 5);
        let weights = layer.weights.iter().map(|&v| zigzag(i32::from(v)));
        let biases = layer.biases.iter().map(|&v| zigzag(v));
        let (kw, kb) = (
            best_order(weights.clone(), 15),
            best_order(biases.clone(), 25),
        );
        w.bypass(kw, 4);
        w.bypass(kb, 5);
        weights.for_each(|v| write_exp_golomb(w, v, kw));
        biases.for_each(|v| write_exp_golomb(w, v, kb));
    }
}

fn read_model(r: &mut RangeDecoder, shape: FilterShape) -> Result<FilterModel> {
    let mut model = FilterModel::zero(shape);
    let max_weight = shape.max_weight();
    for layer in &mut model.layers {
        let Layer {
            weights,
            biases,
            shift,
        } = layer;
        *shift = r.bypass(5) as u8;
        if *shift > MAX_SHIFT {
            return Err(CodecError::Corrupt("learned filter shift out of range"));
        }
        let (kw, kb) = (r.bypass(4), r.bypass(5));
        if kb > MAX_BODY_BITS {
            return Err(CodecError::Corrupt(
                "learned filter code order out of range",
            ));
        }
        for weight in weights.iter_mut() {
            let value = unzigzag(read_value(r, kw)?);
            if value.abs() > max_weight {
                return Err(CodecError::Corrupt("learned filter weight out of range"));
            }
            *weight = value as i16;
        }
        for bias in biases.iter_mut() {
            *bias = unzigzag(read_value(r, kb)?);
            if bias.abs() > MAX_BIAS {
                return Err(CodecError::Corrupt("learned filter bias out of range"));
            }
        }
        if r.overrun() {
            return Err(CodecError::Truncated);
        }
    }
    Ok(model)
}

/// Context of a superblock's flag: how many of its left and upper neighbours are on.
fn flag_context(flags: &[bool], i: usize, cols: usize) -> usize {
    let left = !i.is_multiple_of(cols) && flags[i - 1];
    let up = i >= cols && flags[i - cols];
    usize::from(left) + usize::from(up)
}

/// A model a frame puts in force.
#[derive(Clone, Copy, Debug)]
pub enum NewModel<'a> {
    /// A shipped model (see [`super::shipped_models`]), named by its index.
    Shipped(u8),
    /// A model sent in full.
    Sent(&'a FilterModel),
}

/// Bits of a frame's new model, in 1/256 bit.
pub fn new_model_rate(model: NewModel<'_>) -> u64 {
    let mut counter = CostCounter::default();
    write_new_model(&mut counter, Some(model));
    counter.cost
}

fn write_new_model<W: Writer>(w: &mut W, new_model: Option<NewModel<'_>>) {
    w.bypass(u32::from(new_model.is_some()), 1);
    match new_model {
        Some(NewModel::Shipped(index)) => {
            w.bypass(1, 1);
            w.bypass(u32::from(index), SHIPPED_INDEX_BITS);
        }
        Some(NewModel::Sent(model)) => {
            w.bypass(0, 1);
            write_model(w, model);
        }
        None => {}
    }
}

/// Writes a frame's filter syntax: `new_model` when the frame puts one in force, and `frame`
/// when the model in force applies (`frame` needs a model in force).
pub fn write_frame<W: Writer>(
    w: &mut W,
    ctx: &mut [Prob; 3],
    new_model: Option<NewModel<'_>>,
    in_force: bool,
    frame: Option<&FrameFilter>,
    cols: usize,
) {
    write_new_model(w, new_model);
    if !in_force {
        debug_assert!(frame.is_none(), "no model is in force");
        return;
    }
    w.bypass(u32::from(frame.is_some()), 1);
    if let Some(frame) = frame {
        w.bypass(u32::from(frame.strength - 1), STRENGTH_BITS);
        for (i, &on) in frame.superblocks.iter().enumerate() {
            let c = flag_context(&frame.superblocks, i, cols);
            w.bit(&mut ctx[c], on);
        }
    }
}

/// Reads what [`write_frame`] wrote: the new model, if any, and the frame's filter when the
/// model in force (the new one, else `inherited`) applies.
pub fn read_frame(
    r: &mut RangeDecoder,
    ctx: &mut [Prob; 3],
    shape: FilterShape,
    inherited: bool,
    (cols, rows): (usize, usize),
) -> Result<(Option<FilterModel>, Option<FrameFilter>)> {
    let new_model = match r.bypass(1) {
        0 => None,
        _ if r.bypass(1) == 0 => Some(read_model(r, shape)?),
        _ => {
            let index = r.bypass(SHIPPED_INDEX_BITS) as usize;
            match shipped_models().get(index) {
                Some(model) if model.shape == shape => Some(model.clone()),
                Some(_) => {
                    return Err(CodecError::Corrupt(
                        "the shipped filter model has another shape",
                    ));
                }
                None => {
                    return Err(CodecError::Corrupt(
                        "no shipped filter model has that index",
                    ));
                }
            }
        }
    };
    if new_model.is_none() && !inherited {
        return Ok((None, None));
    }
    if r.bypass(1) == 0 {
        return Ok((new_model, None));
    }
    let strength = r.bypass(STRENGTH_BITS) as u8 + 1;
    let mut superblocks = vec![false; cols * rows];
    for i in 0..cols * rows {
        let c = flag_context(&superblocks, i, cols);
        superblocks[i] = r.bit(&mut ctx[c]);
    }
    if r.overrun() {
        return Err(CodecError::Truncated);
    }
    Ok((
        new_model,
        Some(FrameFilter {
            strength,
            superblocks,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::RangeEncoder;
    use crate::test_rng::Rng;

    fn shape() -> FilterShape {
        FilterShape {
            layers: 3,
            channels: 4,
            radius: 1,
            weight_bits: 8,
        }
    }

    fn random_model(rng: &mut Rng) -> FilterModel {
        let mut model = FilterModel::zero(shape());
        for layer in &mut model.layers {
            layer.shift = (rng.next() % 25) as u8;
            for w in &mut layer.weights {
                *w = (rng.next() % 255) as i16 - 127;
            }
            for b in &mut layer.biases {
                *b = (rng.next() % (2 * MAX_BIAS as u32 + 1)) as i32 - MAX_BIAS;
            }
        }
        model
    }

    #[test]
    fn models_and_flags_round_trip() {
        let mut rng = Rng(77);
        let model = random_model(&mut rng);
        let frame = FrameFilter {
            strength: 11,
            superblocks: (0..12).map(|_| rng.next().is_multiple_of(3)).collect(),
        };
        let mut w = RangeEncoder::new();
        write_frame(
            &mut w,
            &mut [Prob::default(); 3],
            Some(NewModel::Sent(&model)),
            true,
            Some(&frame),
            4,
        );
        write_frame(&mut w, &mut [Prob::default(); 3], None, true, None, 4);
        write_frame(&mut w, &mut [Prob::default(); 3], None, false, None, 4);
        let bytes = w.finish();
        let mut r = RangeDecoder::new(&bytes);
        let got = read_frame(&mut r, &mut [Prob::default(); 3], shape(), false, (4, 3)).unwrap();
        assert_eq!(got, (Some(model), Some(frame)));
        let got = read_frame(&mut r, &mut [Prob::default(); 3], shape(), true, (4, 3)).unwrap();
        assert_eq!(got, (None, None));
        let got = read_frame(&mut r, &mut [Prob::default(); 3], shape(), false, (4, 3)).unwrap();
        assert_eq!(got, (None, None));
    }

    #[test]
    fn weights_beyond_the_declared_bits_are_refused() {
        let mut model = FilterModel::zero(shape());
        model.layers[1].weights[5] = 300;
        let mut w = RangeEncoder::new();
        write_frame(
            &mut w,
            &mut [Prob::default(); 3],
            Some(NewModel::Sent(&model)),
            true,
            None,
            1,
        );
        let bytes = w.finish();
        let mut r = RangeDecoder::new(&bytes);
        let got = read_frame(&mut r, &mut [Prob::default(); 3], shape(), false, (1, 1));
        assert!(matches!(got, Err(CodecError::Corrupt(_))), "{got:?}");
    }

    #[test]
    fn a_shipped_model_is_named_by_its_index_for_its_shape_only() {
        let last = shipped_models().len() - 1;
        let mut w = RangeEncoder::new();
        let shipped = Some(NewModel::Shipped(last as u8));
        write_frame(&mut w, &mut [Prob::default(); 3], shipped, true, None, 1);
        let bytes = w.finish();
        let own = shipped_models()[last].shape;
        let mut r = RangeDecoder::new(&bytes);
        let got = read_frame(&mut r, &mut [Prob::default(); 3], own, false, (1, 1)).unwrap();
        assert_eq!(got, (Some(shipped_models()[last].clone()), None));
        let other = FilterShape {
            channels: own.channels - 1,
            ..own
        };
        let mut r = RangeDecoder::new(&bytes);
        let got = read_frame(&mut r, &mut [Prob::default(); 3], other, false, (1, 1));
        assert!(matches!(got, Err(CodecError::Corrupt(_))), "{got:?}");
    }

    #[test]
    fn endless_codes_are_refused() {
        // All ones: a new model whose first Exp-Golomb prefix never ends.
        let bytes = [0xFFu8; 64];
        let mut r = RangeDecoder::new(&bytes);
        let got = read_frame(&mut r, &mut [Prob::default(); 3], shape(), false, (1, 1));
        assert!(got.is_err(), "{got:?}");
    }
}
