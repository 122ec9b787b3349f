//! The detail-loss measure (ADM2) at four scales, with libvmaf's integer arithmetic
//! (`integer_adm`): a Daubechies-2 wavelet in fixed point, the decoupling of detail loss from
//! additive impairment with a reciprocal table, Watson's contrast sensitivity weights, contrast
//! masking, and the enhancement-gain limit.
//!
//! Scale 0 works on 16-bit bands, scales 1 to 3 on 32-bit bands, each with its own shifts, exactly
//! as libvmaf does; the values are kept in `i32` here and narrowed where libvmaf stores `int16_t`.

use super::buffers::Buf;
use super::dsp::{self, BandRows, DecoupledRows};

const DWT_LO: [i64; 4] = [15826, 27411, 7345, -4240];
const DWT_HI: [i64; 4] = [-4240, -7345, 27411, -15826];
const DWT_LO_SUM: i64 = 46342;

/// Fraction of the picture ignored on each side.
const BORDER_FACTOR: f64 = 0.1;
/// Weight of the noise floor added to the numerator and denominator sums.
const NOISE_WEIGHT: f64 = 0.03125;

/// The four subbands of one wavelet level.
#[derive(Clone, Debug)]
pub(crate) struct Bands {
    pub width: usize,
    pub height: usize,
    /// Low-pass both ways (the next level's input).
    pub a: Buf,
    /// Low-pass vertically, high-pass horizontally.
    pub v: Buf,
    /// High-pass vertically, low-pass horizontally.
    pub h: Buf,
    /// High-pass both ways.
    pub d: Buf,
}

impl Bands {
    /// Bands whose every value the caller writes.
    fn recycled(width: usize, height: usize) -> Self {
        let n = width * height;
        Bands {
            width,
            height,
            a: Buf::recycled(n),
            v: Buf::recycled(n),
            h: Buf::recycled(n),
            d: Buf::recycled(n),
        }
    }

    /// The orientation bands in libvmaf's order: h, v, d.
    fn hvd(&self) -> [&[i32]; 3] {
        [&self.h, &self.v, &self.d]
    }
}

/// Wavelet-domain mirror: index -1 reads 1, index n reads n-1 (the edge sample repeats at the
/// far end only).
#[inline]
fn dwt_mirror(index: isize, size: usize) -> usize {
    let size = size as isize;
    let m = if index < 0 {
        -index
    } else if index >= size {
        2 * size - index - 1
    } else {
        index
    };
    m.clamp(0, size - 1) as usize
}

/// Per-level fixed-point shifts: (vertical round, vertical shift, horizontal round, horizontal
/// shift, values narrowed to 16 bits).
struct DwtShifts {
    v_round: i64,
    v_shift: u32,
    h_round: i64,
    h_shift: u32,
    /// Level 0 subtracts the mid level before the vertical shift and stores 16-bit values.
    level0: bool,
}

fn dwt_shifts(scale: usize, bit_depth: u32) -> DwtShifts {
    match scale {
        0 => DwtShifts {
            v_round: 1 << (bit_depth - 1),
            v_shift: bit_depth,
            h_round: 32768,
            h_shift: 16,
            level0: true,
        },
        1 => DwtShifts {
            v_round: 0,
            v_shift: 0,
            h_round: 16384,
            h_shift: 15,
            level0: false,
        },
        2 => DwtShifts {
            v_round: 32768,
            v_shift: 16,
            h_round: 32768,
            h_shift: 16,
            level0: false,
        },
        _ => DwtShifts {
            v_round: 32768,
            v_shift: 16,
            h_round: 16384,
            h_shift: 15,
            level0: false,
        },
    }
}

#[inline]
fn narrow(value: i64, level0: bool) -> i32 {
    if level0 {
        value as i16 as i32
    } else {
        value as i32
    }
}

/// The vertical pass of one output row in 32-bit arithmetic (see [`dwt`] for the bounds), over
/// the four input rows `rows`; level 0 keeps 16-bit values.
#[inline(always)]
fn dwt_vertical_32<const LEVEL0: bool>(
    rows: [&[i32]; 4],
    lo: &mut [i32],
    hi: &mut [i32],
    mean: i32,
    round: i32,
    shift: u32,
) {
    let n = lo.len();
    let [r0, r1, r2, r3] = rows.map(|r| &r[..n]);
    let hi = &mut hi[..n];
    let narrow = |v: i32| if LEVEL0 { v as i16 as i32 } else { v };
    let c_lo = DWT_LO.map(|c| c as i32);
    let c_hi = DWT_HI.map(|c| c as i32);
    for j in 0..n {
        let x = [r0[j], r1[j], r2[j], r3[j]];
        let acc_lo = c_lo[0] * x[0] + c_lo[1] * x[1] + c_lo[2] * x[2] + c_lo[3] * x[3];
        let acc_hi = c_hi[0] * x[0] + c_hi[1] * x[1] + c_hi[2] * x[2] + c_hi[3] * x[3];
        lo[j] = narrow((acc_lo - mean + round) >> shift);
        hi[j] = narrow((acc_hi + round) >> shift);
    }
}

/// One level of the 2-D wavelet transform of `src` (`width` x `height`).
#[inline(always)]
fn dwt(src: &[i32], width: usize, height: usize, scale: usize, bit_depth: u32) -> Bands {
    let s = dwt_shifts(scale, bit_depth);
    let (out_w, out_h) = (width.div_ceil(2), height.div_ceil(2));
    let mut out = Bands::recycled(out_w, out_h);
    // The vertically filtered row at columns -1..=2·out_w (mirrored outside 0..width), so that
    // output j reads columns 2j-1..=2j+2 = padded[2j..2j+4]; split into odd (2t-1) and even (2t)
    // columns, those are odd[j], even[j], odd[j+1], even[j+1], from contiguous memory.
    let padded = 2 * out_w + 2;
    let mut lo = vec![0i32; padded];
    let mut hi = vec![0i32; padded];
    let mut lo_odd = vec![0i32; out_w + 1];
    let mut lo_even = vec![0i32; out_w + 1];
    let mut hi_odd = vec![0i32; out_w + 1];
    let mut hi_even = vec![0i32; out_w + 1];
    let mirrored_edges: Vec<(usize, usize)> = [-1, width as isize, width as isize + 1]
        .into_iter()
        .map(|column| ((column + 1) as usize, 1 + dwt_mirror(column, width)))
        .filter(|&(at, _)| at < padded)
        .collect();
    let mean = if s.level0 { DWT_LO_SUM * s.v_round } else { 0 };
    // 32-bit arithmetic where it cannot overflow, which vectorises far better than 64-bit
    // (AVX2 has no 64-bit multiply): the inputs of the vertical pass of levels 0 and 1 and of
    // the horizontal pass of level 0 are within 16 bits, and the taps' absolute sum is 54822,
    // so every sum stays within ±1.8·10^9.
    let vertical_32 = scale <= 1;
    let horizontal_32 = scale == 0;
    let taps32 = |c: &[i64; 4]| c.map(|v| v as i32);
    let (lo32, hi32) = (taps32(&DWT_LO), taps32(&DWT_HI));
    for i in 0..out_h {
        let rows: [usize; 4] =
            std::array::from_fn(|k| dwt_mirror(2 * i as isize - 1 + k as isize, height));
        let [r0, r1, r2, r3] = rows.map(|y| &src[y * width..(y + 1) * width]);
        let (lo_w, hi_w) = (&mut lo[1..=width], &mut hi[1..=width]);
        if vertical_32 {
            let (mean, round, shift) = (mean as i32, s.v_round as i32, s.v_shift);
            let rows = [r0, r1, r2, r3];
            if s.level0 {
                dwt_vertical_32::<true>(rows, lo_w, hi_w, mean, round, shift);
            } else {
                dwt_vertical_32::<false>(rows, lo_w, hi_w, mean, round, shift);
            }
        } else {
            for j in 0..width {
                let x = [r0[j], r1[j], r2[j], r3[j]].map(i64::from);
                let acc_lo =
                    DWT_LO[0] * x[0] + DWT_LO[1] * x[1] + DWT_LO[2] * x[2] + DWT_LO[3] * x[3];
                let acc_hi =
                    DWT_HI[0] * x[0] + DWT_HI[1] * x[1] + DWT_HI[2] * x[2] + DWT_HI[3] * x[3];
                lo_w[j] = narrow((acc_lo - mean + s.v_round) >> s.v_shift, s.level0);
                hi_w[j] = narrow((acc_hi + s.v_round) >> s.v_shift, s.level0);
            }
        }
        for &(at, from) in &mirrored_edges {
            lo[at] = lo[from];
            hi[at] = hi[from];
        }
        for (t, (l, h)) in lo.chunks_exact(2).zip(hi.chunks_exact(2)).enumerate() {
            (lo_odd[t], lo_even[t]) = (l[0], l[1]);
            (hi_odd[t], hi_even[t]) = (h[0], h[1]);
        }
        let o = i * out_w;
        let (oa, ov) = (&mut out.a[o..o + out_w], &mut out.v[o..o + out_w]);
        let (oh, od) = (&mut out.h[o..o + out_w], &mut out.d[o..o + out_w]);
        if horizontal_32 {
            let (round, shift) = (s.h_round as i32, s.h_shift);
            let f =
                |c: &[i32; 4], x: &[i32; 4]| c[0] * x[0] + c[1] * x[1] + c[2] * x[2] + c[3] * x[3];
            for j in 0..out_w {
                let l = [lo_odd[j], lo_even[j], lo_odd[j + 1], lo_even[j + 1]];
                let hh = [hi_odd[j], hi_even[j], hi_odd[j + 1], hi_even[j + 1]];
                // Level 0 keeps 16-bit values.
                oa[j] = ((f(&lo32, &l) + round) >> shift) as i16 as i32;
                ov[j] = ((f(&hi32, &l) + round) >> shift) as i16 as i32;
                oh[j] = ((f(&lo32, &hh) + round) >> shift) as i16 as i32;
                od[j] = ((f(&hi32, &hh) + round) >> shift) as i16 as i32;
            }
        } else {
            let f = |c: &[i64; 4], x: &[i32; 4]| {
                c[0] * i64::from(x[0])
                    + c[1] * i64::from(x[1])
                    + c[2] * i64::from(x[2])
                    + c[3] * i64::from(x[3])
            };
            for j in 0..out_w {
                let l = [lo_odd[j], lo_even[j], lo_odd[j + 1], lo_even[j + 1]];
                let hh = [hi_odd[j], hi_even[j], hi_odd[j + 1], hi_even[j + 1]];
                oa[j] = narrow((f(&DWT_LO, &l) + s.h_round) >> s.h_shift, s.level0);
                ov[j] = narrow((f(&DWT_HI, &l) + s.h_round) >> s.h_shift, s.level0);
                oh[j] = narrow((f(&DWT_LO, &hh) + s.h_round) >> s.h_shift, s.level0);
                od[j] = narrow((f(&DWT_HI, &hh) + s.h_round) >> s.h_shift, s.level0);
            }
        }
    }
    out
}

/// A rectangle of band coefficients: rows `top..bottom`, columns `left..right`.
#[derive(Clone, Copy, Debug)]
struct Region {
    top: usize,
    bottom: usize,
    left: usize,
    right: usize,
}

impl Region {
    /// The area scored: the band less `BORDER_FACTOR` on each side.
    fn scored(w: usize, h: usize) -> Self {
        let left = ((w as f64 * BORDER_FACTOR) - 0.5) as i64;
        let top = ((h as f64 * BORDER_FACTOR) - 0.5) as i64;
        let left = left.clamp(0, w as i64) as usize;
        let top = top.clamp(0, h as i64) as usize;
        Region {
            top,
            bottom: h.saturating_sub(top).max(top),
            left,
            right: w.saturating_sub(left).max(left),
        }
    }

    /// The scored area grown by the masking filter's taps.
    fn with_taps(w: usize, h: usize) -> Self {
        let left = ((w as f64 * BORDER_FACTOR) - 0.5 - 1.0) as i64;
        let top = ((h as f64 * BORDER_FACTOR) - 0.5 - 1.0) as i64;
        let right = (w as i64 - left + 2).min(w as i64);
        let bottom = (h as i64 - top + 2).min(h as i64);
        let left = left.max(0);
        let top = top.max(0);
        Region {
            top: top as usize,
            bottom: bottom.max(top) as usize,
            left: left as usize,
            right: right.max(left) as usize,
        }
    }

    fn area(&self) -> usize {
        (self.bottom - self.top) * (self.right - self.left)
    }
}

/// Watson's quantisation step for level `lambda` and orientation `theta` (1: h/v, 2: diagonal),
/// at the default viewing conditions (3 picture heights, 1080 lines), in libvmaf's precision.
fn quant_step(lambda: i32, theta: usize) -> f32 {
    const A: f32 = 0.495;
    const K: f32 = 0.466;
    const F0: f32 = 0.401;
    const G: [f32; 4] = [1.501, 1.0, 0.534, 1.0];
    const AMPLITUDES: [[f32; 4]; 4] = [
        [0.62171, 0.67234, 0.72709, 0.67234],
        [0.34537, 0.41317, 0.49428, 0.41317],
        [0.18004, 0.22727, 0.28688, 0.22727],
        [0.091401, 0.11792, 0.15214, 0.11792],
    ];
    let r = (3.0f64 * 1080.0 * std::f64::consts::PI / 180.0) as f32;
    let temp = (2.0f64.powi(lambda + 1) * f64::from(F0) * f64::from(G[theta]) / f64::from(r))
        .log10() as f32;
    (2.0 * f64::from(A) * 10.0f64.powf(f64::from(K) * f64::from(temp) * f64::from(temp))
        / f64::from(AMPLITUDES[lambda as usize][theta])) as f32
}

/// The contrast-sensitivity weights of a level: [h, v, d].
fn rfactors(scale: usize) -> [f32; 3] {
    let f1 = 1.0f32 / quant_step(scale as i32, 1);
    let f2 = 1.0f32 / quant_step(scale as i32, 2);
    [f1, f1, f2]
}

/// `(uint32_t)pow(2, e)` with libvmaf's unsigned exponent arithmetic (an exponent that wrapped
/// below zero converts to 0 on x86-64).
fn pow2_u32(exponent: u32) -> u32 {
    if exponent == 0 {
        1
    } else if exponent < 32 {
        1u32 << exponent
    } else {
        0
    }
}

fn ceil_log2(n: usize) -> u32 {
    ((n as f64).log2().ceil() as i64) as u32
}

/// Decoupling: the part of the distorted detail explained by the reference (`r`, restored) and
/// the rest (`a`, additive impairment), over `region`.
struct Decoupled {
    r: [Buf; 3],
    a: [Buf; 3],
}

#[inline(always)]
fn decouple(reference: &Bands, distorted: &Bands, gain_limit: f64, level0: bool) -> Decoupled {
    if level0 {
        decouple_level::<true>(reference, distorted, gain_limit)
    } else {
        decouple_level::<false>(reference, distorted, gain_limit)
    }
}

/// [`decouple`] for level 0 (16-bit values) or levels 1 to 3, row by row.
#[inline(always)]
fn decouple_level<const LEVEL0: bool>(
    reference: &Bands,
    distorted: &Bands,
    gain_limit: f64,
) -> Decoupled {
    let (w, h) = (reference.width, reference.height);
    let region = Region::with_taps(w, h);
    // Written, and read by `csf` and `cm`, only inside `region`.
    let mut r: [Buf; 3] = std::array::from_fn(|_| Buf::recycled(w * h));
    let mut a: [Buf; 3] = std::array::from_fn(|_| Buf::recycled(w * h));
    let o = reference.hvd();
    let t = distorted.hvd();
    let kernels = dsp::kernels();
    for i in region.top..region.bottom {
        let span = i * w + region.left..i * w + region.right;
        let bands = BandRows {
            reference: o.map(|band| &band[span.clone()]),
            distorted: t.map(|band| &band[span.clone()]),
        };
        let [r0, r1, r2] = &mut r;
        let [a0, a1, a2] = &mut a;
        let out = DecoupledRows {
            restored: [r0, r1, r2].map(|band| &mut band[span.clone()]),
            additive: [a0, a1, a2].map(|band| &mut band[span.clone()]),
        };
        if LEVEL0 {
            kernels.adm_decouple_row_level0(bands, gain_limit, out);
        } else {
            kernels.adm_decouple_row_level123(bands, gain_limit, out);
        }
    }
    Decoupled { r, a }
}

/// The denominator of a level: the reference's weighted detail energy plus the noise floor.
#[inline(always)]
fn csf_den(reference: &Bands, scale: usize) -> f32 {
    let (w, h) = (reference.width, reference.height);
    let region = Region::scored(w, h);
    let rf = rfactors(scale);
    let bands = reference.hvd();
    let mut accum = [0u64; 3];
    let csf: [f64; 3];
    if scale == 0 {
        let shift = (((region.area() as f64).log2() - 20.0).ceil() as i32).max(0) as u32;
        let round = if shift > 0 { 1u64 << (shift - 1) } else { 0 };
        for i in region.top..region.bottom {
            let span = i * w + region.left..i * w + region.right;
            let inner: [u64; 3] = std::array::from_fn(|b| {
                bands[b][span.clone()].iter().fold(0u64, |sum, &x| {
                    let x = u64::from(x.unsigned_abs() as u16);
                    sum.wrapping_add(x * x * x)
                })
            });
            for b in 0..3 {
                accum[b] = accum[b].wrapping_add(inner[b].wrapping_add(round) >> shift);
            }
        }
        let scale_down = 2f64.powi(18 - shift as i32);
        csf = std::array::from_fn(|b| (accum[b] as f64 / scale_down) * f64::from(rf[b]).powf(3.0));
    } else {
        const SHIFT_SQ: [u32; 3] = [31, 30, 31];
        const TO_FLOAT: [u32; 3] = [32, 27, 23];
        let shift_sq = SHIFT_SQ[scale - 1];
        let round_sq = 1u64 << shift_sq;
        let shift_cub = ceil_log2(region.right - region.left);
        let round_cub = u64::from(pow2_u32(shift_cub.wrapping_sub(1)));
        let shift_accum = ceil_log2(region.bottom - region.top);
        let round_accum = u64::from(pow2_u32(shift_accum.wrapping_sub(1)));
        for i in region.top..region.bottom {
            let span = i * w + region.left..i * w + region.right;
            let shift_cub = shift_cub.min(63);
            let inner: [u64; 3] = std::array::from_fn(|b| {
                bands[b][span.clone()].iter().fold(0u64, |sum, &x| {
                    let x = u64::from(x.unsigned_abs());
                    let v = ((((x * x).wrapping_add(round_sq) >> shift_sq) * x)
                        .wrapping_add(round_cub))
                        >> shift_cub;
                    sum.wrapping_add(v)
                })
            });
            for b in 0..3 {
                accum[b] = accum[b]
                    .wrapping_add(inner[b].wrapping_add(round_accum) >> shift_accum.min(63));
            }
        }
        let exponent = TO_FLOAT[scale - 1]
            .wrapping_sub(shift_accum)
            .wrapping_sub(shift_cub);
        let scale_down = 2f64.powf(f64::from(exponent));
        csf = std::array::from_fn(|b| (accum[b] as f64 / scale_down) * f64::from(rf[b]).powf(3.0));
    }
    let floor = ((region.area() as f64 * NOISE_WEIGHT) as f32).powf(1.0 / 3.0);
    let d: [f32; 3] = std::array::from_fn(|b| (csf[b] as f32).powf(1.0 / 3.0) + floor);
    d[0] + d[1] + d[2]
}

/// Contrast-sensitivity weighting of the additive impairment: the weighted values (`csf_a`) and
/// their masking contribution (`csf_f`).
struct Weighted {
    values: [Buf; 3],
    masking: [Buf; 3],
}

#[inline(always)]
fn csf(additive: &[Buf; 3], w: usize, h: usize, scale: usize) -> Weighted {
    let region = Region::with_taps(w, h);
    // Written only inside `region`; `cm` reads the thresholds' inputs only there (the scored
    // area grown by the 3x3 neighbourhood).
    let mut values: [Buf; 3] = std::array::from_fn(|_| Buf::recycled(w * h));
    let mut masking: [Buf; 3] = std::array::from_fn(|_| Buf::recycled(w * h));
    if scale == 0 {
        // Q21 (h, v) and Q23 (d) weights for the default viewing conditions.
        const RFACTOR: [i32; 3] = [36453, 36453, 49417];
        const SHIFT: [u32; 3] = [15, 15, 17];
        const ROUND: [i32; 3] = [16384, 16384, 65535];
        const ONE_BY_30: i32 = 4369;
        for b in 0..3 {
            let (rfactor, round, shift) = (RFACTOR[b], ROUND[b], SHIFT[b]);
            for i in region.top..region.bottom {
                let span = i * w + region.left..i * w + region.right;
                let src = &additive[b][span.clone()];
                let (vals, mask) = (&mut values[b][span.clone()], &mut masking[b][span]);
                for ((&x, val), m) in src.iter().zip(vals.iter_mut()).zip(mask.iter_mut()) {
                    let v = (rfactor.wrapping_mul(x).wrapping_add(round) >> shift) as i16;
                    *val = i32::from(v);
                    *m = i32::from(((ONE_BY_30 * i32::from(v).abs() + 2048) >> 12) as i16);
                }
            }
        }
    } else {
        let rf = rfactors(scale);
        let irf: [u32; 3] = rf.map(|f| (f64::from(f) * 4294967296.0) as u32);
        const ONE_BY_30: i64 = 143165577;
        // libvmaf keeps this rounding term in an int32_t, where 2^31 wraps to -2^31.
        const MASK_ROUND: i64 = -(1i64 << 31);
        for b in 0..3 {
            let irf = i64::from(irf[b]);
            for i in region.top..region.bottom {
                let span = i * w + region.left..i * w + region.right;
                let src = &additive[b][span.clone()];
                let (vals, mask) = (&mut values[b][span.clone()], &mut masking[b][span]);
                for ((&x, val), m) in src.iter().zip(vals.iter_mut()).zip(mask.iter_mut()) {
                    let v = ((irf * i64::from(x) + (1 << 27)) >> 28) as i32;
                    *val = v;
                    *m = ((ONE_BY_30 * i64::from(v.unsigned_abs()) + MASK_ROUND) >> 32) as i32;
                }
            }
        }
    }
    Weighted { values, masking }
}

/// The numerator of a level: restored detail after contrast masking, cubed and summed.
#[inline(always)]
fn cm(restored: &[Buf; 3], weighted: &Weighted, w: usize, h: usize, scale: usize) -> f32 {
    let region = Region::scored(w, h);
    let shift_inner = ceil_log2(h);
    let round_inner = i64::from(pow2_u32(shift_inner.wrapping_sub(1)));
    let mut accum = [0i64; 3];

    // Masking threshold at (i, j): the 3x3 neighbourhood of the masking values of all three
    // orientations (mirrored at the edges), the centre replaced by a fraction of the weighted
    // value itself. The sum over orientations comes first and the 3x3 sum is separable; integer
    // addition (wrapping, as in libvmaf's int32 sums) is associative, so the result is exact.
    let n = w * h;
    let [f0, f1, f2] = &weighted.masking;
    // Sums over the whole band; outside the region they add values left by earlier uses of the
    // buffers, which no threshold reads.
    let mut total = Buf::recycled(n);
    for (t, ((&a, &b), &c)) in total[..n]
        .iter_mut()
        .zip(f0[..n].iter().zip(&f1[..n]).zip(&f2[..n]))
    {
        *t = a.wrapping_add(b).wrapping_add(c);
    }
    let mut across = Buf::recycled(n);
    for i in 0..h {
        let t = &total[i * w..i * w + w];
        let out = &mut across[i * w..i * w + w];
        // Edges mirror (every level is at least 3 wide); the interior reads its neighbours directly.
        out[0] = t[1].wrapping_add(t[0]).wrapping_add(t[1]);
        out[w - 1] = t[w - 2].wrapping_add(t[w - 1]).wrapping_add(t[w - 1]);
        for ((o, &l), (&c, &r)) in out[1..w - 1]
            .iter_mut()
            .zip(&t[..w - 2])
            .zip(t[1..w - 1].iter().zip(&t[2..]))
        {
            *o = l.wrapping_add(c).wrapping_add(r);
        }
    }
    let [v0, v1, v2] = &weighted.values;
    let (left, right) = (region.left, region.right);
    let mut thr_row = vec![0i32; right - left];

    let f_accum: [f32; 3] = if scale == 0 {
        const RFACTOR: [i32; 3] = [36453, 36453, 49417];
        const ONE_BY_15: i32 = 8738;
        const SHIFT_SQ: [u32; 3] = [29, 29, 30];
        const SHIFT_SUB: [u32; 3] = [10, 10, 12];
        let wl = (w as f64).log2();
        let shift_cub: [u32; 3] = [
            ((wl - 4.0).ceil() as i64) as u32,
            ((wl - 4.0).ceil() as i64) as u32,
            ((wl - 3.0).ceil() as i64) as u32,
        ];
        let round_cub: [i64; 3] = shift_cub.map(|s| i64::from(pow2_u32(s.wrapping_sub(1))));
        fn center(x: i32) -> i32 {
            i32::from(((ONE_BY_15 * x.abs() + 2048) >> 12) as i16)
        }
        for i in region.top..region.bottom {
            masking_threshold_row(
                &mut thr_row,
                i,
                w,
                h,
                left,
                &across,
                &total,
                [v0, v1, v2],
                center,
            );
            let mut inner = [0i64; 3];
            for b in 0..3 {
                let rest = &restored[b][i * w + left..i * w + right];
                let (rfactor, shift_sub, shift_sq) = (RFACTOR[b], SHIFT_SUB[b], SHIFT_SQ[b]);
                let (round_cub, shift_cub) = (round_cub[b], shift_cub[b].min(63));
                let mut sum = 0i64;
                for (&r, &thr) in rest.iter().zip(&thr_row) {
                    let x = r.wrapping_mul(rfactor);
                    let x = (x.wrapping_abs() - (thr << shift_sub)).max(0);
                    let x_sq = ((i64::from(x) * i64::from(x) + (1i64 << (shift_sq - 1)))
                        >> shift_sq) as i32;
                    sum += (i64::from(x_sq) * i64::from(x) + round_cub) >> shift_cub;
                }
                inner[b] = sum;
            }
            for b in 0..3 {
                accum[b] += (inner[b] + round_inner) >> shift_inner.min(63);
            }
        }
        const TO_FLOAT: [u32; 3] = [52, 52, 57];
        std::array::from_fn(|b| {
            let e = TO_FLOAT[b]
                .wrapping_sub(shift_cub[b])
                .wrapping_sub(shift_inner);
            (accum[b] as f64 / 2f64.powf(f64::from(e))) as f32
        })
    } else {
        const ONE_BY_15: i64 = 286331153;
        const MASK_ROUND: i64 = -(1i64 << 31);
        let rf = rfactors(scale);
        let irf: [u32; 3] = rf.map(|f| (f64::from(f) * 4294967296.0) as u32);
        let shift_cub = ceil_log2(w);
        let round_cub = i64::from(pow2_u32(shift_cub.wrapping_sub(1)));
        fn center(x: i32) -> i32 {
            ((ONE_BY_15 * i64::from(x.unsigned_abs()) + MASK_ROUND) >> 32) as i32
        }
        let shift_cub = shift_cub.min(63);
        for i in region.top..region.bottom {
            masking_threshold_row(
                &mut thr_row,
                i,
                w,
                h,
                left,
                &across,
                &total,
                [v0, v1, v2],
                center,
            );
            let mut inner = [0i64; 3];
            for b in 0..3 {
                let rest = &restored[b][i * w + left..i * w + right];
                let irf = i64::from(irf[b]);
                let mut sum = 0i64;
                for (&r, &thr) in rest.iter().zip(&thr_row) {
                    let x = ((i64::from(r) * irf + (1 << 27)) >> 28) as i32;
                    let x = (x.wrapping_abs().wrapping_sub(thr)).max(0);
                    let x_sq = ((i64::from(x) * i64::from(x) + (1 << 29)) >> 30) as i32;
                    sum += (i64::from(x_sq) * i64::from(x) + round_cub) >> shift_cub;
                }
                inner[b] = sum;
            }
            for b in 0..3 {
                accum[b] += (inner[b] + round_inner) >> shift_inner.min(63);
            }
        }
        const TO_FLOAT: [u32; 3] = [45, 39, 36];
        let e = TO_FLOAT[scale - 1]
            .wrapping_sub(shift_cub)
            .wrapping_sub(shift_inner);
        let divisor = 2f64.powf(f64::from(e)) as f32;
        std::array::from_fn(|b| accum[b] as f32 / divisor)
    };
    let floor = ((region.area() as f64 * NOISE_WEIGHT) as f32).powf(1.0 / 3.0);
    let n: [f32; 3] = std::array::from_fn(|b| f_accum[b].powf(1.0 / 3.0) + floor);
    n[0] + n[1] + n[2]
}

/// The masking threshold of row `i` over the columns `left..left + thr.len()`: the 3x3 sums of
/// `total` (`across` holds its horizontal 3-sums; rows mirror at the edges) less the centre,
/// plus `center` of the three weighted values.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn masking_threshold_row(
    thr: &mut [i32],
    i: usize,
    w: usize,
    h: usize,
    left: usize,
    across: &[i32],
    total: &[i32],
    values: [&[i32]; 3],
    center: impl Fn(i32) -> i32,
) {
    let up = if i == 0 { 1 } else { i - 1 };
    let down = if i + 1 == h { h - 1 } else { i + 1 };
    let n = thr.len();
    let row = |y: usize| y * w + left..y * w + left + n;
    let (a_up, a_mid, a_down) = (&across[row(up)], &across[row(i)], &across[row(down)]);
    let (t, c0, c1, c2) = (
        &total[row(i)],
        &values[0][row(i)],
        &values[1][row(i)],
        &values[2][row(i)],
    );
    for (j, out) in thr.iter_mut().enumerate() {
        *out = a_up[j]
            .wrapping_add(a_mid[j])
            .wrapping_add(a_down[j])
            .wrapping_sub(t[j])
            .wrapping_add(center(c0[j]))
            .wrapping_add(center(c1[j]))
            .wrapping_add(center(c2[j]));
    }
}

/// ADM results for one gain limit.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct AdmScores {
    /// `integer_adm2`.
    pub adm2: f64,
    /// `integer_adm_scale0..3`: numerator over denominator of each level.
    pub scales: [f64; 4],
}

/// ADM of one luma pair for each gain limit in `gain_limits`.
pub(crate) fn adm(
    reference: &[i32],
    distorted: &[i32],
    width: usize,
    height: usize,
    bit_depth: u32,
    gain_limits: &[f64],
) -> Vec<AdmScores> {
    #[cfg(target_arch = "x86_64")]
    if dsp::active_isa() >= dsp::Isa::Avx2 {
        // SAFETY: the kernels' level is AVX2 only where the CPU supports it (`dsp::Kernels::new`),
        // the only requirement of `adm_avx2`.
        return unsafe { adm_avx2(reference, distorted, width, height, bit_depth, gain_limits) };
    }
    adm_portable(reference, distorted, width, height, bit_depth, gain_limits)
}

/// The same code compiled for AVX2 (the integer arithmetic is identical).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn adm_avx2(
    reference: &[i32],
    distorted: &[i32],
    width: usize,
    height: usize,
    bit_depth: u32,
    gain_limits: &[f64],
) -> Vec<AdmScores> {
    adm_portable(reference, distorted, width, height, bit_depth, gain_limits)
}

#[inline(always)]
pub(crate) fn adm_portable(
    reference: &[i32],
    distorted: &[i32],
    width: usize,
    height: usize,
    bit_depth: u32,
    gain_limits: &[f64],
) -> Vec<AdmScores> {
    let mut nums = vec![[0f32; 4]; gain_limits.len()];
    let mut dens = [0f32; 4];
    let mut ref_level = dwt(reference, width, height, 0, bit_depth);
    let mut dis_level = dwt(distorted, width, height, 0, bit_depth);
    for scale in 0..4 {
        if scale > 0 {
            ref_level = dwt(
                &ref_level.a,
                ref_level.width,
                ref_level.height,
                scale,
                bit_depth,
            );
            dis_level = dwt(
                &dis_level.a,
                dis_level.width,
                dis_level.height,
                scale,
                bit_depth,
            );
        }
        let (w, h) = (ref_level.width, ref_level.height);
        dens[scale] = csf_den(&ref_level, scale);
        for (n, &limit) in nums.iter_mut().zip(gain_limits) {
            let parts = decouple(&ref_level, &dis_level, limit, scale == 0);
            let weighted = csf(&parts.a, w, h, scale);
            n[scale] = cm(&parts.r, &weighted, w, h, scale);
        }
    }
    let limit = 1e-10 * (width * height) as f64 / (1920.0 * 1080.0);
    nums.iter()
        .map(|n| {
            let num: f64 = n.iter().map(|&x| f64::from(x)).sum();
            let den: f64 = dens.iter().map(|&x| f64::from(x)).sum();
            let num = if num < limit { 0.0 } else { num };
            let den = if den < limit { 0.0 } else { den };
            AdmScores {
                adm2: if den == 0.0 { 1.0 } else { num / den },
                scales: std::array::from_fn(|s| f64::from(n[s]) / f64::from(dens[s])),
            }
        })
        .collect()
}
