//! Coding-unit level syntax elements, each written through the `Writer` trait and read back by
//! the mirror-image function: split flags, skip, intra/inter, intra modes with most-probable-mode
//! prediction, merge indices, reference indices and vector differences.

use crate::entropy::{Contexts, Prob, RangeDecoder, Writer, read_exp_golomb, write_exp_golomb};
use crate::error::{CodecError, Result};
use crate::inter::Mv;
use crate::intra::{DC, HORIZONTAL, PLANAR, VERTICAL};
use crate::partition::UnitGrid;

/// Number of available neighbours (left, above) that satisfy `test`: a context index 0..=2.
pub fn neighbour_count(
    grid: &UnitGrid,
    cx: usize,
    cy: usize,
    test: impl Fn(&crate::partition::UnitInfo) -> bool,
) -> usize {
    let left = grid.neighbour(cx as isize - 1, cy as isize, cx, cy);
    let above = grid.neighbour(cx as isize, cy as isize - 1, cx, cy);
    usize::from(left.is_some_and(&test)) + usize::from(above.is_some_and(&test))
}

/// The QP a coding unit's difference is relative to: the mean of the left and above units'
/// QPs where decoded, else the frame's.
pub fn predicted_qp(grid: &UnitGrid, cx: usize, cy: usize, frame_qp: u8) -> u8 {
    let left = grid.neighbour(cx as isize - 1, cy as isize, cx, cy);
    let above = grid.neighbour(cx as isize, cy as isize - 1, cx, cy);
    match (left, above) {
        (Some(l), Some(a)) => ((u16::from(l.qp) + u16::from(a.qp) + 1) >> 1) as u8,
        (Some(one), None) | (None, Some(one)) => one.qp,
        (None, None) => frame_qp,
    }
}

/// Largest QP difference a coding unit can carry.
pub const MAX_DELTA_QP: u32 = crate::quant::MAX_QP as u32;

pub fn write_delta_qp<W: Writer>(w: &mut W, ctx: &mut Contexts, delta: i32) {
    let magnitude = delta.unsigned_abs().min(MAX_DELTA_QP);
    w.bit(&mut ctx.delta_qp[0], magnitude > 0);
    if magnitude == 0 {
        return;
    }
    for bin in 1..MAX_DELTA_QP {
        let more = magnitude > bin;
        let c = (bin as usize).min(2);
        if bin <= 2 {
            w.bit(&mut ctx.delta_qp[c], more);
        } else {
            w.bypass(u32::from(more), 1);
        }
        if !more {
            break;
        }
    }
    w.bypass(u32::from(delta < 0), 1);
}

pub fn read_delta_qp(r: &mut RangeDecoder, ctx: &mut Contexts) -> i32 {
    if !r.bit(&mut ctx.delta_qp[0]) {
        return 0;
    }
    let mut magnitude = 1u32;
    while magnitude < MAX_DELTA_QP {
        let more = if magnitude <= 2 {
            r.bit(&mut ctx.delta_qp[magnitude as usize])
        } else {
            r.bypass(1) == 1
        };
        if !more {
            break;
        }
        magnitude += 1;
    }
    let magnitude = magnitude as i32;
    if r.bypass(1) == 1 {
        -magnitude
    } else {
        magnitude
    }
}

/// Truncated unary code of `value` < `count`, one context per bin (the last one reused).
pub fn write_truncated_unary<W: Writer>(w: &mut W, ctx: &mut [Prob], value: usize, count: usize) {
    for bin in 0..count.saturating_sub(1) {
        let c = bin.min(ctx.len() - 1);
        w.bit(&mut ctx[c], bin < value);
        if bin >= value {
            break;
        }
    }
}

pub fn read_truncated_unary(r: &mut RangeDecoder, ctx: &mut [Prob], count: usize) -> usize {
    let mut value = 0;
    while value + 1 < count && r.bit(&mut ctx[value.min(ctx.len() - 1)]) {
        value += 1;
    }
    value
}

/// The three most probable luma modes given the left and above neighbours' modes (DC where a
/// neighbour is missing or inter).
pub fn most_probable_modes(left: u8, above: u8) -> [u8; 3] {
    if left == above {
        if left < 2 {
            [PLANAR, DC, VERTICAL]
        } else {
            let l = u32::from(left);
            [
                left,
                (2 + (l + 29) % 32) as u8,
                (2 + (l - 2 + 1) % 32) as u8,
            ]
        }
    } else {
        let third = if left != PLANAR && above != PLANAR {
            PLANAR
        } else if left != DC && above != DC {
            DC
        } else {
            VERTICAL
        };
        [left, above, third]
    }
}

pub fn write_luma_mode<W: Writer>(w: &mut W, ctx: &mut Contexts, mode: u8, mpm: [u8; 3]) {
    if let Some(index) = mpm.iter().position(|&m| m == mode) {
        w.bit(&mut ctx.mpm_flag, true);
        w.bit(&mut ctx.mpm_index[0], index > 0);
        if index > 0 {
            w.bit(&mut ctx.mpm_index[1], index > 1);
        }
    } else {
        w.bit(&mut ctx.mpm_flag, false);
        let below = mpm.iter().filter(|&&m| m < mode).count() as u8;
        w.bypass(u32::from(mode - below), 5);
    }
}

pub fn read_luma_mode(r: &mut RangeDecoder, ctx: &mut Contexts, mpm: [u8; 3]) -> u8 {
    if r.bit(&mut ctx.mpm_flag) {
        let index = if !r.bit(&mut ctx.mpm_index[0]) {
            0
        } else if !r.bit(&mut ctx.mpm_index[1]) {
            1
        } else {
            2
        };
        return mpm[index];
    }
    let mut sorted = mpm;
    sorted.sort_unstable();
    let mut mode = r.bypass(5) as u8;
    for m in sorted {
        if mode >= m {
            mode += 1;
        }
    }
    mode
}

/// Chroma modes besides "same as luma", in code order; one equal to the luma mode is replaced
/// by mode 34 so no two codes mean the same prediction.
const CHROMA_MODES: [u8; 4] = [PLANAR, VERTICAL, HORIZONTAL, DC];
pub const CHROMA_SUBSTITUTE: u8 = 34;

/// The chroma modes a block with `luma_mode` can signal: index 0 is "same as luma".
pub fn chroma_mode_options(luma_mode: u8) -> [u8; 5] {
    let mut options = [luma_mode; 5];
    for (i, &m) in CHROMA_MODES.iter().enumerate() {
        options[i + 1] = if m == luma_mode { CHROMA_SUBSTITUTE } else { m };
    }
    options
}

pub fn write_chroma_mode<W: Writer>(w: &mut W, ctx: &mut Contexts, option: usize) {
    w.bit(&mut ctx.chroma_dm, option != 0);
    if option != 0 {
        w.bypass(option as u32 - 1, 2);
    }
}

pub fn read_chroma_mode(r: &mut RangeDecoder, ctx: &mut Contexts) -> usize {
    if r.bit(&mut ctx.chroma_dm) {
        1 + r.bypass(2) as usize
    } else {
        0
    }
}

/// Longest Exp-Golomb prefix of a vector difference a valid stream contains.
const MAX_MVD_PREFIX: u32 = 18;

fn write_mvd_component<W: Writer>(w: &mut W, ctx: &mut [Prob; 2], v: i32) {
    let magnitude = v.unsigned_abs();
    w.bit(&mut ctx[0], magnitude > 0);
    if magnitude == 0 {
        return;
    }
    w.bit(&mut ctx[1], magnitude > 1);
    if magnitude > 1 {
        write_exp_golomb(w, magnitude - 2, 1);
    }
    w.bypass(u32::from(v < 0), 1);
}

fn read_mvd_component(r: &mut RangeDecoder, ctx: &mut [Prob; 2]) -> Result<i32> {
    if !r.bit(&mut ctx[0]) {
        return Ok(0);
    }
    let mut magnitude = 1u32;
    if r.bit(&mut ctx[1]) {
        magnitude = 2 + read_exp_golomb(r, 1, MAX_MVD_PREFIX)
            .ok_or(CodecError::Corrupt("vector difference too long"))?;
    }
    let negative = r.bypass(1) == 1;
    let magnitude = magnitude as i32;
    Ok(if negative { -magnitude } else { magnitude })
}

pub fn write_mvd<W: Writer>(w: &mut W, ctx: &mut Contexts, mvd: Mv) {
    write_mvd_component(w, &mut ctx.mvd[0], mvd.x);
    write_mvd_component(w, &mut ctx.mvd[1], mvd.y);
}

pub fn read_mvd(r: &mut RangeDecoder, ctx: &mut Contexts) -> Result<Mv> {
    let x = read_mvd_component(r, &mut ctx.mvd[0])?;
    let y = read_mvd_component(r, &mut ctx.mvd[1])?;
    Ok(Mv::new(x, y))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::RangeEncoder;

    #[test]
    fn elements_round_trip() {
        let modes: Vec<u8> = (0..35).collect();
        let mvds = [
            Mv::new(0, 0),
            Mv::new(1, -1),
            Mv::new(-300, 77),
            Mv::new(5000, -2),
        ];
        let mut w = RangeEncoder::new();
        let mut ctx = Contexts::default();
        for &mode in &modes {
            write_luma_mode(&mut w, &mut ctx, mode, most_probable_modes(mode / 2, 26));
            write_chroma_mode(&mut w, &mut ctx, usize::from(mode % 5));
            write_truncated_unary(&mut w, &mut ctx.merge_index, usize::from(mode % 5), 5);
        }
        for &mvd in &mvds {
            write_mvd(&mut w, &mut ctx, mvd);
        }
        let deltas = [0, 1, -1, 2, -3, 7, -51, 51];
        for &delta in &deltas {
            write_delta_qp(&mut w, &mut ctx, delta);
        }
        let bytes = w.finish();
        let mut r = RangeDecoder::new(&bytes);
        let mut ctx = Contexts::default();
        for &mode in &modes {
            assert_eq!(
                read_luma_mode(&mut r, &mut ctx, most_probable_modes(mode / 2, 26)),
                mode
            );
            assert_eq!(read_chroma_mode(&mut r, &mut ctx), usize::from(mode % 5));
            assert_eq!(
                read_truncated_unary(&mut r, &mut ctx.merge_index, 5),
                usize::from(mode % 5)
            );
        }
        for &mvd in &mvds {
            assert_eq!(read_mvd(&mut r, &mut ctx).unwrap(), mvd);
        }
        for &delta in &deltas {
            assert_eq!(read_delta_qp(&mut r, &mut ctx), delta);
        }
    }

    #[test]
    fn most_probable_modes_are_distinct() {
        for a in 0..35 {
            for b in 0..35 {
                let m = most_probable_modes(a, b);
                assert!(m[0] != m[1] && m[1] != m[2] && m[0] != m[2], "{a} {b}");
                assert!(m.iter().all(|&v| v < 35));
            }
        }
    }
}
